// The transport layer: UCX and nothing about policies.
#pragma once

#include <dsm/transport/active_messages.hpp>
#include <dsm/transport/endpoints.hpp>
#include <dsm/transport/future.hpp>
#include <dsm/transport/memory.hpp>
#include <dsm/transport/rma.hpp>
#include <dsm/transport/status.hpp>
#include <dsm/transport/worker.hpp>

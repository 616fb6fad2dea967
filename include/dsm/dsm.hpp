// dsm: the one header a program includes.
#pragma once

#include <dsm/config.hpp>
#include <dsm/error.hpp>
#include <dsm/operators.hpp>
#include <dsm/arch.hpp>
#include <dsm/transport.hpp>
#include <dsm/runtime/runtime.hpp>
#include <dsm/team.hpp>
#include <dsm/collectives.hpp>
#include <dsm/global_ptr.hpp>
#include <dsm/allocate.hpp>
#include <dsm/rma.hpp>
#include <dsm/rma_noncontiguous.hpp>
#include <dsm/lock.hpp>
#include <dsm/signal.hpp>
#include <dsm/distribution.hpp>
#include <dsm/coherence/direct.hpp>
#include <dsm/coherence/migratory.hpp>
#include <dsm/coherence/read_only.hpp>
#include <dsm/coherence/reduction.hpp>
#include <dsm/coherence/single_writer.hpp>
#include <dsm/coherence/write_shared.hpp>
#include <dsm/shared_array.hpp>
#include <dsm/shared_var.hpp>
#include <dsm/views.hpp>

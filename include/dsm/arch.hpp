// The arch layer: what dsm needs to know about the CPU and nothing else.
#pragma once

#include <dsm/arch/cache.hpp>
#include <dsm/arch/dma.hpp>
#include <dsm/arch/fence.hpp>
#include <dsm/arch/isa.hpp>
#include <dsm/arch/lines.hpp>

// dsm: the one header a program includes.
#pragma once

#include <dsm/config.hpp>
#include <dsm/error.hpp>
#include <dsm/arch.hpp>
#include <dsm/global_ptr.hpp>

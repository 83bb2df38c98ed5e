// callsavvy/callsavvy.hpp — the umbrella header: include this one header (or the generated single header
// single_include/callsavvy/callsavvy.hpp) to get the whole library.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/version.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/envelope.hpp>
#include <callsavvy/client.hpp>

// callsavvy/src.hpp — the library's compiled part for programs built with CALLSAVVY_SEPARATE_COMPILATION:
// include it in exactly one translation unit (and nothing else needs to be in that file). Every other file
// includes <callsavvy/callsavvy.hpp> as usual and compiles only the typed glue of the calls it makes.
// With the single header instead: define CALLSAVVY_SOURCE in that one file before including it.
#pragma once

#if !defined(CALLSAVVY_SEPARATE_COMPILATION)
#error "callsavvy: <callsavvy/src.hpp> is for builds that define CALLSAVVY_SEPARATE_COMPILATION everywhere"
#endif

#define CALLSAVVY_SOURCE 1
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/impl/client.ipp>

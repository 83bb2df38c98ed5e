// callsavvy/config.hpp — the one place where callsavvy meets Asio: it switches coroutine support on before
// Asio is first seen, and gives the rest of the library one namespace alias (callsavvy::asio) and one
// error-code alias (callsavvy::error_code), so a Boost.Asio build is a configuration switch.
#pragma once

#include <callsavvy/version.hpp>

#if defined(CALLSAVVY_USE_BOOST_ASIO)
#error                                                                                                                 \
    "callsavvy: the Boost.Asio configuration is reserved for a later release; only standalone Asio is built and tested"
#endif

// Asio 1.22 enables co_await for clang only when <experimental/coroutine> exists, which libstdc++ 12 lacks.
// The macro must be seen before Asio's own config; if Asio came first without it, coroutines are off and
// every awaitable in this library would fail with pages of errors, so say so plainly instead.
// Any Asio header includes asio/detail/config.hpp first; <asio/version.hpp> alone does not, hence both.
#if (defined(ASIO_VERSION) || defined(ASIO_DETAIL_CONFIG_HPP)) && !defined(ASIO_HAS_CO_AWAIT)
#error                                                                                                                 \
    "callsavvy: include <callsavvy/callsavvy.hpp> before Asio, or define ASIO_HAS_CO_AWAIT=1 for the whole build (the CMake target callsavvy::callsavvy does)"
#endif
#if !defined(ASIO_HAS_CO_AWAIT)
#define ASIO_HAS_CO_AWAIT 1
#endif

#include <asio/version.hpp>
#include <system_error>

#if ASIO_VERSION < 102200
#error "callsavvy needs standalone Asio 1.22 or newer"
#endif

// Header-only by default. A program that defines CALLSAVVY_SEPARATE_COMPILATION everywhere and includes
// <callsavvy/src.hpp> in exactly one translation unit compiles the client's non-template core once there;
// every other file then compiles only the typed glue of the calls it makes.
#if defined(CALLSAVVY_SEPARATE_COMPILATION)
#define CALLSAVVY_DECL
#else
#define CALLSAVVY_DECL inline
#endif

namespace asio {} // namespace asio

CALLSAVVY_BEGIN_NAMESPACE
namespace asio = ::asio;
using error_code = std::error_code;
CALLSAVVY_END_NAMESPACE

// callsavvy/config.hpp — the one place where callsavvy meets Asio. It picks standalone Asio (the default) or
// Boost.Asio (CALLSAVVY_USE_BOOST_ASIO defined), switches coroutine support on before Asio is first seen,
// includes the Asio headers the library uses, and gives the rest of the library the names it spells:
// callsavvy::asio, callsavvy::error_code, error_condition, error_category_type, system_error and
// generic_category(). Every other header names Asio and the error-code types only through these, so both
// builds share one source.
#pragma once

#include <callsavvy/version.hpp>

#if defined(CALLSAVVY_USE_BOOST_ASIO)

// Boost.Asio 1.81 turns co_await on by itself for clang 14 with libstdc++ 12 (it looks for <coroutine>), so
// the order of includes does not matter here; but a Boost.Asio seen first with coroutines off (say,
// BOOST_ASIO_DISABLE_CO_AWAIT) would fail every awaitable in this library with pages of errors, so say so.
#if (defined(BOOST_ASIO_VERSION) || defined(BOOST_ASIO_DETAIL_CONFIG_HPP)) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#error                                                                                                                 \
    "callsavvy: Boost.Asio was included with co_await support off; include <callsavvy/callsavvy.hpp> before Boost.Asio, or define BOOST_ASIO_HAS_CO_AWAIT=1 for the whole build"
#endif
#if !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif

#include <boost/asio/version.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#if BOOST_ASIO_VERSION < 102600
#error "callsavvy needs Boost.Asio 1.26 (Boost 1.81) or newer"
#endif

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#else // standalone Asio

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

#include <asio/any_io_executor.hpp>
#include <asio/associated_allocator.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_state.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#endif // CALLSAVVY_USE_BOOST_ASIO

// Header-only by default. A program that defines CALLSAVVY_SEPARATE_COMPILATION everywhere and includes
// <callsavvy/src.hpp> in exactly one translation unit compiles the client's non-template core once there;
// every other file then compiles only the typed glue of the calls it makes.
#if defined(CALLSAVVY_SEPARATE_COMPILATION)
#define CALLSAVVY_DECL
#else
#define CALLSAVVY_DECL inline
#endif

#if defined(CALLSAVVY_USE_BOOST_ASIO)

CALLSAVVY_BEGIN_NAMESPACE
namespace asio = ::boost::asio;
using error_code = ::boost::system::error_code;
using error_condition = ::boost::system::error_condition;
using error_category_type = ::boost::system::error_category;
using system_error = ::boost::system::system_error;
inline const error_category_type& generic_category() noexcept { return ::boost::system::generic_category(); }
CALLSAVVY_END_NAMESPACE

// Marks an error enum of the library as an error-code (or error-condition) enum of the error-code type in use,
// so `ec == callsavvy::error::x` and `error_code ec = callsavvy::error::x` work whichever Asio is built.
#define CALLSAVVY_ERROR_CODE_ENUM(E)                                                                                   \
    template <>                                                                                                        \
    struct boost::system::is_error_code_enum<E> : std::true_type {};
#define CALLSAVVY_ERROR_CONDITION_ENUM(E)                                                                              \
    template <>                                                                                                        \
    struct boost::system::is_error_condition_enum<E> : std::true_type {};

#else

namespace asio {} // namespace asio

CALLSAVVY_BEGIN_NAMESPACE
namespace asio = ::asio;
using error_code = std::error_code;
using error_condition = std::error_condition;
using error_category_type = std::error_category;
using system_error = std::system_error;
inline const error_category_type& generic_category() noexcept { return std::generic_category(); }
CALLSAVVY_END_NAMESPACE

#define CALLSAVVY_ERROR_CODE_ENUM(E)                                                                                   \
    template <>                                                                                                        \
    struct std::is_error_code_enum<E> : std::true_type {};
#define CALLSAVVY_ERROR_CONDITION_ENUM(E)                                                                              \
    template <>                                                                                                        \
    struct std::is_error_condition_enum<E> : std::true_type {};

#endif

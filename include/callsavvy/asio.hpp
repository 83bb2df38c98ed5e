// callsavvy/asio.hpp — all of the Asio callsavvy is built on, for programs that want to be written once for
// both builds: standalone Asio, or Boost.Asio when CALLSAVVY_USE_BOOST_ASIO is defined. With it and
// `namespace net = callsavvy::asio;` a program spells every Asio name the same way in either build.
// The library's own headers need only <callsavvy/callsavvy.hpp>; this one adds the rest of Asio (sockets,
// signals, SSL, the experimental awaitable operators) that applications and tests use.
#pragma once

#include <callsavvy/config.hpp>

#if defined(CALLSAVVY_USE_BOOST_ASIO)
#include <boost/asio.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/deferred.hpp>
#include <boost/asio/ssl.hpp>
#else
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/ssl.hpp>
#endif

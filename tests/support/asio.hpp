// The Asio the tests are built against, under the one name the tests spell it: asio::. Standalone Asio is
// ::asio itself; in the Boost.Asio build ::asio is an alias of boost::asio, so the same suite runs in both.
#pragma once

#include <callsavvy/asio.hpp>

#if defined(CALLSAVVY_USE_BOOST_ASIO)
namespace asio = boost::asio;
#endif

// Heavy third-party headers, precompiled once per test executable. callsavvy's config comes first so that
// Asio sees ASIO_HAS_CO_AWAIT (the CMake target defines it too).
#include <callsavvy/config.hpp>

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

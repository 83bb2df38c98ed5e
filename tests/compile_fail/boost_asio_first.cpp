// In the Boost.Asio build (CALLSAVVY_USE_BOOST_ASIO), Boost.Asio included before callsavvy. Boost.Asio 1.81
// turns co_await on for clang 14 with libstdc++ 12 by itself, so this compiles (CTest test
// boost_asio_first_compiles); with BOOST_ASIO_DISABLE_CO_AWAIT it must not, and callsavvy says why in one
// line instead of pages of errors (boost_asio_first_without_co_await_is_refused).
#include <boost/asio/io_context.hpp>
#include <callsavvy/config.hpp>

int main() { return 0; }

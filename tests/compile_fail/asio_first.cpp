// Must not compile: Asio seen before callsavvy without ASIO_HAS_CO_AWAIT turns coroutines off for clang with
// libstdc++ 12, and callsavvy says so in one line instead of pages of errors. Checked by the CTest test
// asio_first_is_refused.
#include <asio/io_context.hpp>
#include <callsavvy/config.hpp>

int main() { return 0; }

// The single header in separate-compilation mode: this file sees only the client core's declarations
// (CALLSAVVY_SEPARATE_COMPILATION on the command line); src.cpp compiles them. scripts/consumers.sh builds
// and runs it. The call below reaches the compiled core and completes there, without any network.
#include <callsavvy/callsavvy.hpp>

#if defined(CALLSAVVY_USE_BOOST_ASIO)
#include <boost/asio/io_context.hpp>
constexpr const char* asio_name = "Boost.Asio";
#else
#include <asio/io_context.hpp>
constexpr const char* asio_name = "standalone Asio";
#endif

#include <iostream>

int main() {
    callsavvy::asio::io_context io;
    callsavvy::client api(io.get_executor(), {.keys = {"public", "private"}, .base_url = "http://127.0.0.1:9/v1/"});
    api.close();
    callsavvy::error_code result;
    bool done = false;
    api.async_call("getSummary", {}, [&](callsavvy::error_code ec, boost::json::object) {
        result = ec;
        done = true;
    });
    io.run();
    if (!done || result != callsavvy::error::client_closed) {
        std::cerr << "a call on a closed client did not complete with client_closed: " << result.message() << '\n';
        return 1;
    }
    std::cout << "callsavvy " << callsavvy::version_string << " via single_header, separate compilation, on "
              << asio_name << ": " << result.message() << '\n';
    return 0;
}

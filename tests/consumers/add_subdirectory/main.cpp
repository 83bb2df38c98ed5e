// A program that uses callsavvy through the add subdirectory route; scripts/consumers.sh builds and runs it.
#include <callsavvy/callsavvy.hpp>

#include <iostream>

// The Asio this program was built for: scripts/consumers.sh checks that the mode it asked for is the one used.
#if defined(CALLSAVVY_USE_BOOST_ASIO)
constexpr const char* asio_name = "Boost.Asio";
#else
constexpr const char* asio_name = "standalone Asio";
#endif

int main() {
    const callsavvy::error_code ec = callsavvy::error::too_many_requests;
    if (ec != callsavvy::condition::rate_limited || ec == callsavvy::condition::server) {
        std::cerr << "callsavvy::error::too_many_requests is not classified as rate_limited\n";
        return 1;
    }
    std::cout << "callsavvy " << callsavvy::version_string << " via add_subdirectory on " << asio_name << ": "
              << ec.message() << '\n';
    return 0;
}

// A program that uses callsavvy through the find package route; scripts/consumers.sh builds and runs it.
#include <callsavvy/callsavvy.hpp>

#include <iostream>
#include <system_error>

int main() {
    const std::error_code ec = callsavvy::error::too_many_requests;
    if (ec != callsavvy::condition::rate_limited || ec == callsavvy::condition::server) {
        std::cerr << "callsavvy::error::too_many_requests is not classified as rate_limited\n";
        return 1;
    }
    std::cout << "callsavvy " << callsavvy::version_string << " via find_package: " << ec.message() << '\n';
    return 0;
}

// quickstart — the smallest callsavvy program: it shows which library version it was built against and how
// a failure is classified. It grows into a full tour as the client and the mock server arrive.
#include <callsavvy/callsavvy.hpp>

#include <iostream>

int main() {
    std::cout << "callsavvy " << callsavvy::version_string << '\n';

    // Every failure is a std::error_code; compare it with a callsavvy::condition to know what kind it is.
    const std::error_code ec = callsavvy::error_from_status(429);
    std::cout << "HTTP 429 -> " << ec.message() << " (rate limited: " << std::boolalpha
              << (ec == callsavvy::condition::rate_limited) << ")\n";
    return 0;
}

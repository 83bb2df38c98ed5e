// tests/support/mock_client.hpp — the client options of a test that talks to an in-process mock server:
// its sandbox keys and URL, short timeouts and backoffs, no proxy from the developer's environment.
#pragma once

#include <callsavvy/client.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include <chrono>

namespace cstest {

inline callsavvy::client_options mock_client_options(const callsavvy::testing::mock_server& m) {
    using namespace std::chrono_literals;
    callsavvy::client_options o;
    const auto k = callsavvy::testing::sandbox_key();
    o.keys = {k.public_key, k.private_key};
    o.base_url = m.base_url();
    o.attempt_timeout = 5s;
    o.call_deadline = 15s;
    o.retry.backoff_base = 1ms;
    o.retry.backoff_cap = 5ms;
    o.proxy.from_environment = false;
    return o;
}

} // namespace cstest

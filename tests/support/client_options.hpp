// tests/support/client_options.hpp — the client options every loopback test starts from: the server's URL
// and the keys it expects, short timeouts and backoffs, no proxy from the developer's environment. Tests
// change what they are about on top.
#pragma once

#include <callsavvy/client.hpp>

#include <chrono>
#include <string>
#include <utility>

namespace cstest {

inline callsavvy::client_options test_client_options(std::string base_url, callsavvy::credentials keys) {
    using namespace std::chrono_literals;
    callsavvy::client_options o;
    o.keys = std::move(keys);
    o.base_url = std::move(base_url);
    o.attempt_timeout = 5s;
    o.call_deadline = 15s;
    o.retry.backoff_base = 1ms;
    o.retry.backoff_cap = 5ms;
    o.proxy.from_environment = false;
    return o;
}

} // namespace cstest

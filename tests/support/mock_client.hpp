// tests/support/mock_client.hpp — the client options of a test that talks to an in-process mock server:
// test_client_options with the mock's URL and its sandbox keys.
#pragma once

#include <callsavvy/testing/mock_server.hpp>

#include "support/client_options.hpp"

namespace cstest {

inline callsavvy::client_options mock_client_options(const callsavvy::testing::mock_server& m) {
    const auto k = callsavvy::testing::sandbox_key();
    return test_client_options(m.base_url(), {k.public_key, k.private_key});
}

} // namespace cstest

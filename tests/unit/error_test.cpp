#include <callsavvy/error.hpp>

#include <catch2/catch.hpp>

#include <string>

using callsavvy::condition;
using callsavvy::error;

TEST_CASE("every callsavvy::error maps to the documented condition", "[error]") {
    CHECK(std::error_code(error::unauthorized) == condition::auth);
    CHECK(std::error_code(error::forbidden) == condition::forbidden);
    CHECK(std::error_code(error::not_found) == condition::not_found);
    CHECK(std::error_code(error::too_many_requests) == condition::rate_limited);
    CHECK(std::error_code(error::server_error) == condition::server);
    CHECK(std::error_code(error::bad_request) == condition::validation);
    CHECK(std::error_code(error::validation_failed) == condition::validation);
    CHECK(std::error_code(error::invalid_options) == condition::validation);
    CHECK(std::error_code(error::outcome_unknown) == condition::outcome_unknown);
    CHECK(std::error_code(error::attempt_timeout) == condition::timeout);
    CHECK(std::error_code(error::tls_hostname_mismatch) == condition::tls);
    CHECK(std::error_code(error::resource_mismatch) == condition::envelope);
    CHECK(std::error_code(error::connection_closed) == condition::transport);
    CHECK_FALSE(std::error_code(error::unauthorized) == condition::forbidden);
}

TEST_CASE("foreign error codes map to conditions", "[error]") {
    CHECK(std::error_code(callsavvy::http::error::bare_cr) == condition::protocol);
    CHECK(std::error_code(asio::error::connection_refused) == condition::transport);
    CHECK(std::error_code(asio::error::timed_out) == condition::timeout);
    CHECK_FALSE(std::error_code(asio::error::operation_aborted) == condition::transport);
}

TEST_CASE("statuses map to specific errors", "[error]") {
    CHECK(callsavvy::error_from_status(400) == error::bad_request);
    CHECK(callsavvy::error_from_status(429) == error::too_many_requests);
    CHECK(callsavvy::error_from_status(503) == error::server_error);
    CHECK(callsavvy::error_from_status(418) == error::unexpected_status);
}

TEST_CASE("api_error carries the server's details in its message", "[error]") {
    callsavvy::diagnostics d;
    d.resource = "createTicket";
    d.http_status = 401;
    d.server_message = "Invalid API credentials";
    const callsavvy::api_error e(error::unauthorized, d);
    CHECK(std::string(e.what()) ==
          "callsavvy: createTicket: invalid API credentials (HTTP 401): Invalid API credentials");
    CHECK(e.code() == condition::auth);
    CHECK(e.http_status() == 401);
    CHECK(e.resource() == "createTicket");
}

TEST_CASE("redaction removes every key, a key that begins another one included", "[error]") {
    const std::string pub = "TEST-abcdefgh";
    const std::string priv = "TEST-abcdefgh-and-the-secret-rest";
    std::string text = "echo: Public-Key: " + pub + " Private-Key: " + priv;
    callsavvy::detail::redact_all(text, {pub, priv});
    CHECK(text == "echo: Public-Key: [redacted] Private-Key: [redacted]");
    CHECK(text.find("secret") == std::string::npos);
    std::string reversed = priv + " " + pub;
    callsavvy::detail::redact_all(reversed, {priv, pub});
    CHECK(reversed == "[redacted] [redacted]");
}

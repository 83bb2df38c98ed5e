#include <callsavvy/error.hpp>

#include "support/asio.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <system_error>
#include <type_traits>

using callsavvy::condition;
using callsavvy::error;

TEST_CASE("every callsavvy::error maps to the documented condition", "[error]") {
    CHECK(callsavvy::error_code(error::unauthorized) == condition::auth);
    CHECK(callsavvy::error_code(error::forbidden) == condition::forbidden);
    CHECK(callsavvy::error_code(error::not_found) == condition::not_found);
    CHECK(callsavvy::error_code(error::too_many_requests) == condition::rate_limited);
    CHECK(callsavvy::error_code(error::server_error) == condition::server);
    CHECK(callsavvy::error_code(error::bad_request) == condition::validation);
    CHECK(callsavvy::error_code(error::validation_failed) == condition::validation);
    CHECK(callsavvy::error_code(error::invalid_options) == condition::validation);
    CHECK(callsavvy::error_code(error::outcome_unknown) == condition::outcome_unknown);
    CHECK(callsavvy::error_code(error::attempt_timeout) == condition::timeout);
    CHECK(callsavvy::error_code(error::tls_hostname_mismatch) == condition::tls);
    CHECK(callsavvy::error_code(error::resource_mismatch) == condition::envelope);
    CHECK(callsavvy::error_code(error::connection_closed) == condition::transport);
    CHECK_FALSE(callsavvy::error_code(error::unauthorized) == condition::forbidden);
}

TEST_CASE("foreign error codes map to conditions", "[error]") {
    CHECK(callsavvy::error_code(callsavvy::http::error::bare_cr) == condition::protocol);
    CHECK(callsavvy::error_code(asio::error::connection_refused) == condition::transport);
    CHECK(callsavvy::error_code(asio::error::timed_out) == condition::timeout);
    CHECK_FALSE(callsavvy::error_code(asio::error::operation_aborted) == condition::transport);
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

TEST_CASE("the error-code types are the ones of the Asio the library is built on", "[error]") {
#if defined(CALLSAVVY_USE_BOOST_ASIO)
    STATIC_REQUIRE(std::is_same_v<callsavvy::error_code, boost::system::error_code>);
    STATIC_REQUIRE(std::is_base_of_v<boost::system::system_error, callsavvy::api_error>);
#else
    STATIC_REQUIRE(std::is_same_v<callsavvy::error_code, std::error_code>);
    STATIC_REQUIRE(std::is_base_of_v<std::system_error, callsavvy::api_error>);
#endif
    // What Asio's own operations report is what the library's calls report, so one variable holds both.
    asio::io_context io;
    asio::steady_timer t(io, std::chrono::hours(1));
    callsavvy::error_code ec;
    t.async_wait([&](callsavvy::error_code e) { ec = e; });
    t.cancel();
    io.run();
    CHECK(ec == asio::error::operation_aborted);
    CHECK_FALSE(ec == condition::transport);
    try {
        throw callsavvy::api_error(error::not_found, {});
    } catch (const callsavvy::system_error& e) {
        CHECK(e.code() == error::not_found);
        CHECK(e.code() == condition::not_found);
    }
}

#if defined(CALLSAVVY_USE_BOOST_ASIO)
TEST_CASE("boost::system::error_code from the library compares with its enumerators and conditions", "[error]") {
    const boost::system::error_code ec = callsavvy::make_error_code(error::too_many_requests);
    CHECK(ec == error::too_many_requests);
    CHECK(ec != error::server_error);
    CHECK(ec == condition::rate_limited);
    CHECK_FALSE(ec == condition::server);
    CHECK(ec.category() == callsavvy::error_category());
    CHECK(ec.message() == "rate limited (HTTP 429)");
    const boost::system::error_condition cond = condition::rate_limited;
    CHECK(ec.default_error_condition() == cond);
    CHECK(boost::system::error_code(callsavvy::http::error::bare_cr) == condition::protocol);
    CHECK(boost::system::error_code(boost::asio::error::connection_refused) == condition::transport);
    CHECK(boost::system::error_code(boost::asio::ssl::error::stream_truncated) == condition::tls);
}

TEST_CASE("a Boost error code of the library keeps its meaning as a std::error_code", "[error]") {
    // Boost.System 1.81 converts its codes to std::error_code through a std category that forwards to the
    // Boost one; code written against std::error_code still sees the same value, message and conditions.
    const boost::system::error_code ec = callsavvy::make_error_code(error::unauthorized);
    const std::error_code s = ec;
    CHECK(s.value() == static_cast<int>(error::unauthorized));
    CHECK(s.message() == ec.message());
    CHECK(s == ec);
    CHECK(s == std::error_condition(boost::system::error_condition(condition::auth)));
    CHECK_FALSE(s == std::error_condition(boost::system::error_condition(condition::forbidden)));
    CHECK(std::string(s.category().name()) == "callsavvy");
    // and a std::error_code held in a Boost one (what a std::system_error carries) compares as itself
    const boost::system::error_code wrapped{std::make_error_code(std::errc::connection_refused)};
    CHECK(wrapped == std::errc::connection_refused);
}
#endif

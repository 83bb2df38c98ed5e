// The client's pure rules: which failures are retried (spec §2 "Retry safety"), backoff, Retry-After,
// proxy selection from the environment and NO_PROXY matching.
#include <callsavvy/client.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <random>

using callsavvy::error;
using callsavvy::detail::decide_retry;
using callsavvy::detail::retry_decision;

TEST_CASE("retry rules: only what provably was not processed, or is read-only, is sent again", "[client][retry]") {
    const std::error_code refused = callsavvy::make_error_code(error::connect_failed);
    const std::error_code lost = callsavvy::make_error_code(error::connection_closed);
    const std::error_code timeout = callsavvy::make_error_code(error::attempt_timeout);
    // Nothing written: retried with backoff, whatever the endpoint.
    CHECK(decide_retry(refused, 0, false, false, false, false, 1, 3) == retry_decision::retry);
    CHECK(decide_retry(refused, 0, false, false, false, false, 3, 3) == retry_decision::fail);
    CHECK(decide_retry(timeout, 0, false, false, false, false, 1, 3) == retry_decision::retry);
    // A reused connection that failed before the request was written: once at once on a fresh connection.
    CHECK(decide_retry(asio::error::broken_pipe, 0, false, false, true, false, 1, 3) == retry_decision::retry_now);
    CHECK(decide_retry(asio::error::broken_pipe, 0, false, false, true, true, 1, 3) == retry_decision::retry);
    // Written and lost: read-only endpoints retry, the others report outcome_unknown.
    CHECK(decide_retry(lost, 0, true, true, false, false, 1, 3) == retry_decision::retry);
    CHECK(decide_retry(lost, 0, true, false, false, false, 1, 3) == retry_decision::outcome_unknown);
    CHECK(decide_retry(timeout, 0, true, false, false, false, 1, 3) == retry_decision::outcome_unknown);
    CHECK(decide_retry(lost, 0, true, false, false, false, 3, 3) == retry_decision::outcome_unknown);
    // Answers: 429 always retried (the call bounds those retries itself); 5xx retried for read-only
    // endpoints and an unknown outcome for the others; other statuses never retried.
    const auto rate = callsavvy::make_error_code(error::too_many_requests);
    const auto server = callsavvy::make_error_code(error::server_error);
    CHECK(decide_retry(rate, 429, true, false, false, false, 1, 3) == retry_decision::retry);
    CHECK(decide_retry(rate, 429, true, false, false, false, 3, 3) == retry_decision::retry);
    CHECK(decide_retry(server, 503, true, true, false, false, 1, 3) == retry_decision::retry);
    CHECK(decide_retry(server, 503, true, true, false, false, 3, 3) == retry_decision::fail);
    CHECK(decide_retry(server, 503, true, false, false, false, 1, 3) == retry_decision::outcome_unknown);
    // A broken answer after the write: never re-sent; for a call that changes state, an unknown outcome.
    const auto broken = callsavvy::http::make_error_code(callsavvy::http::error::bad_status_line);
    CHECK(decide_retry(broken, 0, true, true, false, false, 1, 3) == retry_decision::fail);
    CHECK(decide_retry(broken, 0, true, false, false, false, 1, 3) == retry_decision::outcome_unknown);
    CHECK(decide_retry(callsavvy::make_error_code(error::unauthorized), 401, true, true, false, false, 1, 3) ==
          retry_decision::fail);
    // Deterministic failures and cancellation are never retried.
    CHECK(decide_retry(callsavvy::make_error_code(error::tls_hostname_mismatch), 0, false, true, false, false, 1, 3) ==
          retry_decision::fail);
    CHECK(decide_retry(callsavvy::http::error::bad_status_line, 0, true, true, false, false, 1, 3) ==
          retry_decision::fail);
    CHECK(decide_retry(asio::error::operation_aborted, 0, false, true, false, false, 1, 3) == retry_decision::fail);
}

TEST_CASE("backoff is full-jitter exponential, capped", "[client][retry]") {
    callsavvy::retry_options o;
    o.backoff_base = std::chrono::milliseconds(100);
    o.backoff_cap = std::chrono::milliseconds(1000);
    std::minstd_rand rng(42);
    for (int attempt = 1; attempt <= 8; ++attempt) {
        const long ceiling = std::min(1000L, 100L << (attempt - 1));
        long max_seen = 0;
        for (int i = 0; i < 200; ++i) {
            const auto d = callsavvy::detail::backoff_delay(o, attempt, rng).count();
            REQUIRE(d >= 0);
            REQUIRE(d <= ceiling);
            max_seen = std::max<long>(max_seen, d);
        }
        CHECK(max_seen > ceiling / 2); // jitter spreads over the whole range
    }
}

TEST_CASE("Retry-After is whole seconds", "[client][retry]") {
    using callsavvy::detail::parse_retry_after;
    CHECK(parse_retry_after(std::string_view("3")) == std::chrono::seconds(3));
    CHECK(parse_retry_after(std::string_view("0")) == std::chrono::seconds(0));
    CHECK_FALSE(parse_retry_after(std::string_view("-1")));
    CHECK_FALSE(parse_retry_after(std::string_view("Wed, 21 Oct 2015 07:28:00 GMT")));
    CHECK_FALSE(parse_retry_after(std::nullopt));
}

TEST_CASE("NO_PROXY matches hosts, domain suffixes, IP literals and *", "[client][proxy]") {
    using callsavvy::detail::no_proxy_matches;
    CHECK(no_proxy_matches("example.com", "api.example.com"));
    CHECK(no_proxy_matches(".example.com", "api.example.com"));
    CHECK(no_proxy_matches("example.com", "example.com"));
    CHECK_FALSE(no_proxy_matches("example.com", "badexample.com"));
    CHECK(no_proxy_matches("localhost, 127.0.0.1", "127.0.0.1"));
    CHECK(no_proxy_matches("foo,API.CALLSAVVY.COM:443", "api.callsavvy.com"));
    CHECK(no_proxy_matches("[::1]:8080", "::1"));
    CHECK(no_proxy_matches("*", "anything"));
    CHECK_FALSE(no_proxy_matches("", "api.callsavvy.com"));
}

TEST_CASE("the proxy comes from options or the environment, with Basic credentials", "[client][proxy]") {
    std::map<std::string, std::string> env;
    const callsavvy::detail::getenv_fn getenv = [&](const char* n) -> const char* {
        auto it = env.find(n);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    std::error_code ec;
    auto https_target = callsavvy::http::parse_url("https://api.callsavvy.com/v1/", ec).value();
    auto http_target = callsavvy::http::parse_url("http://127.0.0.1:8080/v1/", ec).value();
    callsavvy::proxy_options o;

    CHECK_FALSE(callsavvy::detail::select_proxy(o, https_target, ec, getenv));
    env["HTTPS_PROXY"] = "http://proxy.internal:3128";
    auto p = callsavvy::detail::select_proxy(o, https_target, ec, getenv);
    REQUIRE(p);
    CHECK(p->host == "proxy.internal");
    CHECK(p->port == 3128);
    CHECK(p->authorization.empty());
    env["https_proxy"] = "http://us%40r:p%3Ass@lower.internal:8080"; // lower case wins, as in curl
    p = callsavvy::detail::select_proxy(o, https_target, ec, getenv);
    REQUIRE(p);
    CHECK(p->host == "lower.internal");
    CHECK(p->authorization == "Basic " + callsavvy::detail::base64_encode("us@r:p:ss"));
    env["NO_PROXY"] = ".callsavvy.com";
    CHECK_FALSE(callsavvy::detail::select_proxy(o, https_target, ec, getenv));
    // Upper-case HTTP_PROXY is ignored for http targets (httpoxy); lower-case http_proxy is used.
    env["HTTP_PROXY"] = "http://evil.internal:1";
    CHECK_FALSE(callsavvy::detail::select_proxy(o, http_target, ec, getenv));
    env["http_proxy"] = "http://good.internal:2";
    p = callsavvy::detail::select_proxy(o, http_target, ec, getenv);
    REQUIRE(p);
    CHECK(p->host == "good.internal");
    // Configured beats the environment; switching the environment off leaves a direct connection.
    o.url = "http://configured.internal:9";
    CHECK(callsavvy::detail::select_proxy(o, http_target, ec, getenv)->host == "configured.internal");
    o.url.clear();
    o.from_environment = false;
    CHECK_FALSE(callsavvy::detail::select_proxy(o, http_target, ec, getenv));
    // An https:// proxy URL is refused rather than silently spoken to in plain text.
    o.url = "https://tls-proxy.internal:443";
    CHECK_FALSE(callsavvy::detail::select_proxy(o, http_target, ec, getenv));
    CHECK(ec == callsavvy::http::error::bad_url);
}

TEST_CASE("CONNECT requests name the origin and carry Proxy-Authorization only when configured", "[client][proxy]") {
    callsavvy::detail::proxy_endpoint px{"p", 1, ""};
    CHECK(callsavvy::detail::connect_request("api.callsavvy.com", 443, px) ==
          "CONNECT api.callsavvy.com:443 HTTP/1.1\r\nHost: api.callsavvy.com:443\r\n\r\n");
    px.authorization = "Basic dTpw";
    CHECK(callsavvy::detail::connect_request("::1", 8443, px) ==
          "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nProxy-Authorization: Basic dTpw\r\n\r\n");
}

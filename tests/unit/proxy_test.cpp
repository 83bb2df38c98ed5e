// Proxy selection (net/proxy.hpp): the configured proxy or the environment's as curl reads it, NO_PROXY
// matching, Basic credentials, and the CONNECT request.
#include <callsavvy/detail/base64.hpp>
#include <callsavvy/http/url.hpp>
#include <callsavvy/net/proxy.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>

TEST_CASE("NO_PROXY matches hosts, domain suffixes, IP literals and *", "[proxy]") {
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

TEST_CASE("the proxy comes from options or the environment, with Basic credentials", "[proxy]") {
    std::map<std::string, std::string> env;
    const callsavvy::detail::getenv_fn getenv = [&](const char* n) -> const char* {
        auto it = env.find(n);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    callsavvy::error_code ec;
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

TEST_CASE("CONNECT requests name the origin and carry Proxy-Authorization only when configured", "[proxy]") {
    callsavvy::detail::proxy_endpoint px{"p", 1, ""};
    CHECK(callsavvy::detail::connect_request("api.callsavvy.com", 443, px) ==
          "CONNECT api.callsavvy.com:443 HTTP/1.1\r\nHost: api.callsavvy.com:443\r\n\r\n");
    px.authorization = "Basic dTpw";
    CHECK(callsavvy::detail::connect_request("::1", 8443, px) ==
          "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nProxy-Authorization: Basic dTpw\r\n\r\n");
}

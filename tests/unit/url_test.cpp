// http::parse_url: the base URLs and proxy URLs the client is configured with.
#include <callsavvy/http/url.hpp>

#include <catch2/catch.hpp>

namespace http = callsavvy::http;
using callsavvy::error_code;

namespace {
http::url parsed(std::string_view s) {
    error_code ec;
    auto u = http::parse_url(s, ec);
    INFO(s);
    REQUIRE_FALSE(ec);
    REQUIRE(u);
    return *u;
}
} // namespace

TEST_CASE("url: default base URL", "[http][url]") {
    const auto u = parsed("https://api.callsavvy.com/v1/");
    CHECK(u.scheme == "https");
    CHECK(u.is_https());
    CHECK(u.userinfo.empty());
    CHECK(u.host == "api.callsavvy.com");
    CHECK(u.port == 443);
    CHECK(u.path == "/v1/");
    CHECK(u.authority() == "api.callsavvy.com:443");
    CHECK(u.host_header() == "api.callsavvy.com");
}

TEST_CASE("url: schemes, default ports and paths", "[http][url]") {
    CHECK(parsed("http://example.com").port == 80);
    CHECK(parsed("http://example.com").path == "/");
    CHECK(parsed("HTTPS://EXAMPLE.com").scheme == "https");
    CHECK(parsed("HTTPS://EXAMPLE.com").host == "example.com"); // host names are case-insensitive
    CHECK(parsed("HtTp://h/").scheme == "http");
    CHECK(parsed("http://h:8080/a/b?c=d&e").port == 8080);
    CHECK(parsed("http://h:8080/a/b?c=d&e").path == "/a/b?c=d&e");
    CHECK(parsed("http://h?q=1").path == "/?q=1");
    CHECK(parsed("http://h:/x").port == 80); // empty port: the default (RFC 3986 section 3.2.3)
    CHECK(parsed("https://h:65535").port == 65535);
    CHECK(parsed("http://127.0.0.1:3128").host == "127.0.0.1");
    CHECK(parsed("http://h:8080").authority() == "h:8080");
    CHECK(parsed("http://h:8080").host_header() == "h:8080");
    CHECK(parsed("http://h/%7Euser/A%20B").path == "/%7Euser/A%20B"); // kept encoded
}

TEST_CASE("url: IPv6 literals", "[http][url]") {
    const auto u = parsed("https://[2001:DB8::1]:8443/v1");
    CHECK(u.host == "2001:db8::1");
    CHECK(u.is_ipv6());
    CHECK(u.port == 8443);
    CHECK(u.authority() == "[2001:db8::1]:8443");
    CHECK(u.host_header() == "[2001:db8::1]:8443");
    CHECK(parsed("http://[::1]").host == "::1");
    CHECK(parsed("http://[::1]").port == 80);
    CHECK(parsed("http://[::1]").host_header() == "[::1]");
    CHECK(parsed("http://[::ffff:192.0.2.1]/").host == "::ffff:192.0.2.1");
}

TEST_CASE("url: userinfo is kept raw and decoded on demand", "[http][url]") {
    const auto u = parsed("http://alice:p%40ss%3Aword@proxy.local:3128");
    CHECK(u.userinfo == "alice:p%40ss%3Aword");
    CHECK(u.host == "proxy.local");
    CHECK(u.port == 3128);
    CHECK(u.authority() == "proxy.local:3128");
    const auto c = http::decode_userinfo(u.userinfo);
    REQUIRE(c);
    CHECK(c->user == "alice");
    CHECK(c->password == "p@ss:word");
    CHECK(http::decode_userinfo("bob")->password.empty());
    CHECK(http::decode_userinfo("bob:")->user == "bob");
    CHECK_FALSE(http::decode_userinfo("bob:%zz"));
}

TEST_CASE("url: percent_decode", "[http][url]") {
    CHECK(http::percent_decode("a%20b%2fc%2F") == "a b/c/");
    CHECK(http::percent_decode("") == "");
    CHECK_FALSE(http::percent_decode("%"));
    CHECK_FALSE(http::percent_decode("%4"));
    CHECK_FALSE(http::percent_decode("%g0"));
    CHECK(http::percent_decode("%00") == std::string(1, '\0'));
}

TEST_CASE("url: bad input is refused with bad_url", "[http][url][reject]") {
    for (const char* s : {"",
                          "api.callsavvy.com",
                          "ftp://h/",
                          "ws://h/",
                          "https:/h",
                          "https//h",
                          "http://",
                          "http:///path",
                          "http://:80/",
                          "http://h:0/",
                          "http://h:65536/",
                          "http://h:123456/",
                          "http://h:8x/",
                          "http://h:-1/",
                          "http://h/#frag",
                          "http://h#",
                          "http://h /",
                          "http://h/a b",
                          "http://h/\x01",
                          "http://h\xc3\xa9/",
                          "http://[::1/",
                          "http://[::1]x/",
                          "http://[]/",
                          "http://[g::1]/",
                          "http://[127.0.0.1]/",
                          "http://h%41/",
                          "http://us er@h/",
                          "http://u:%zz@h/",
                          "http://user@/",
                          "http://h:80:80/",
                          "http://a@b@host/"}) {
        INFO("url: " << s);
        error_code ec;
        const auto u = http::parse_url(s, ec);
        CHECK_FALSE(u);
        CHECK(ec == http::error::bad_url);
    }
}

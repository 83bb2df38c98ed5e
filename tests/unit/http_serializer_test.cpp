// The HTTP/1.1 serializers and the fields container: heads as the wire sees them, Content-Length added only
// when the message lacks framing fields, nothing unsafe ever written, and serialize-then-parse round trips.
#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace http = callsavvy::http;
using callsavvy::error_code;
using http::error;

namespace {

template <class Parser, class Message>
Message reparse(const std::string& wire, bool eof = false) {
    Parser p;
    error_code ec;
    const auto n = p.feed(wire, ec);
    INFO(wire);
    REQUIRE_FALSE(ec);
    if (eof) p.finish(ec);
    REQUIRE_FALSE(ec);
    REQUIRE(p.done());
    REQUIRE(n == wire.size());
    return p.release();
}

} // namespace

TEST_CASE("fields: case-insensitive lookups over an ordered list with duplicates", "[http][fields]") {
    http::fields f;
    CHECK(f.empty());
    f.add("Set-Cookie", "a=1");
    f.add("Content-Type", "application/json");
    f.add("set-cookie", "b=2");
    CHECK(f.size() == 3);
    CHECK(f.count("SET-COOKIE") == 2);
    CHECK(f.find("set-Cookie") == "a=1"); // the first
    CHECK_FALSE(f.find("Content-Length"));
    CHECK(f.find("content-type") == "application/json");

    f.set("SET-COOKIE", "c=3"); // one field, where the first was
    CHECK(f.size() == 2);
    CHECK(f.count("Set-Cookie") == 1);
    CHECK(f[0].name == "SET-COOKIE");
    CHECK(f[0].value == "c=3");
    f.set("X-New", "1"); // absent: appended
    CHECK(f[2].name == "X-New");

    f.erase("content-TYPE");
    CHECK(f.count("Content-Type") == 0);
    CHECK(f.size() == 2);
    std::string names;
    for (const auto& fl : f) names += fl.name + ";";
    CHECK(names == "SET-COOKIE;X-New;");
    f.clear();
    CHECK(f.empty());
}

TEST_CASE("fields: contains_token looks at comma-separated elements of every field", "[http][fields]") {
    http::fields f;
    f.add("Connection", "Upgrade");
    f.add("connection", " keep-alive ,, Close\t");
    CHECK(f.contains_token("Connection", "close"));
    CHECK(f.contains_token("CONNECTION", "KEEP-ALIVE"));
    CHECK(f.contains_token("Connection", "upgrade"));
    CHECK_FALSE(f.contains_token("Connection", "keep"));
    CHECK_FALSE(f.contains_token("Connection", ""));
    CHECK_FALSE(f.contains_token("Upgrade", "close"));
}

TEST_CASE("serializer: a request head, Content-Length from the body", "[http][serializer]") {
    http::request r;
    r.target = "/v1/createTicket";
    r.headers.add("Host", "api.callsavvy.com");
    r.headers.add("Content-Type", "application/json");
    r.body = "{\"a\":1}";
    CHECK(http::serialize_head(r) == "POST /v1/createTicket HTTP/1.1\r\nHost: api.callsavvy.com\r\nContent-Type: "
                                     "application/json\r\nContent-Length: 7\r\n\r\n");

    SECTION("an existing Content-Length or Transfer-Encoding is sent as given") {
        r.headers.add("content-length", "7");
        CHECK(http::serialize_head(r).find("Content-Length: 7") == std::string::npos);
        CHECK(http::serialize_head(r).find("content-length: 7\r\n\r\n") != std::string::npos);
        r.headers.erase("Content-Length");
        r.headers.add("Transfer-Encoding", "chunked");
        CHECK(http::serialize_head(r).find("Content-Length") == std::string::npos);
    }
    SECTION("HTTP/1.0 and an empty body") {
        http::request g;
        g.method = "GET";
        g.version = 10;
        CHECK(http::serialize_head(g) == "GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    }
    SECTION("append_head reuses a buffer") {
        std::string out = "prefix|";
        http::append_head(r, out);
        CHECK(out.rfind("prefix|POST /v1/createTicket HTTP/1.1\r\n", 0) == 0);
        CHECK(out.size() == 7 + http::serialize_head(r).size());
    }
}

TEST_CASE("serializer: a response head, standard reason when none is given", "[http][serializer]") {
    http::response r;
    r.body = "{}";
    CHECK(http::serialize_head(r) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    r.status = 429;
    r.headers.add("Retry-After", "1");
    CHECK(http::serialize_head(r) == "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n");
    r.reason = "Slow Down";
    r.version = 10;
    CHECK(http::serialize_head(r).rfind("HTTP/1.0 429 Slow Down\r\n", 0) == 0);
    http::response e;
    e.status = 299; // no standard phrase: "HTTP/1.1 299 \r\n" is a valid status line with an empty reason
    CHECK(http::serialize_head(e) == "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("serializer: no Content-Length on 1xx, 204 and 304", "[http][serializer]") {
    for (int status : {100, 101, 204, 304}) {
        http::response r;
        r.status = status;
        INFO(status);
        CHECK(http::serialize_head(r).find("Content-Length") == std::string::npos);
    }
}

TEST_CASE("serializer: refuses to write what would break the framing", "[http][serializer][reject]") {
    const auto request_error = [](auto mutate) {
        http::request r;
        r.headers.add("Host", "h");
        mutate(r);
        error_code ec;
        std::string out = "kept";
        http::append_head(r, out, ec);
        if (ec) CHECK(out == "kept"); // nothing written on error
        return ec;
    };
    CHECK(request_error([](http::request& r) { r.headers.add("X-Key", "abc\r\nX-Injected: 1"); }) ==
          error::bad_field_value);
    CHECK(request_error([](http::request& r) { r.headers.add("X-Key", "abc\n"); }) == error::bad_field_value);
    CHECK(request_error([](http::request& r) { r.headers.add("X Key", "abc"); }) == error::bad_field_name);
    CHECK(request_error([](http::request& r) { r.headers.add("", "abc"); }) == error::bad_field_name);
    CHECK(request_error([](http::request& r) { r.method = "GET /evil HTTP/1.1\r\n"; }) == error::bad_method);
    CHECK(request_error([](http::request& r) { r.method = ""; }) == error::bad_method);
    CHECK(request_error([](http::request& r) { r.target = "/a b"; }) == error::bad_target);
    CHECK(request_error([](http::request& r) { r.target = ""; }) == error::bad_target);
    CHECK(request_error([](http::request& r) { r.version = 20; }) == error::bad_version);
    CHECK_FALSE(request_error([](http::request&) {}));

    http::response r;
    r.status = 42;
    error_code ec;
    http::serialize_head(r, ec);
    CHECK(ec == error::bad_status_code);
    r.status = 200;
    r.reason = "OK\r\nX: y";
    http::serialize_head(r, ec);
    CHECK(ec == error::bad_field_value);

    http::request bad;
    bad.headers.add("X", "a\rb");
    CHECK_THROWS_AS(http::serialize_head(bad), callsavvy::system_error);
    http::fields trailers;
    trailers.add("T", "\n");
    CHECK_THROWS_AS(http::last_chunk(trailers), callsavvy::system_error);
}

TEST_CASE("serializer: chunked body pieces", "[http][serializer][chunked]") {
    CHECK(http::chunk("hello") == "5\r\nhello\r\n");
    CHECK(http::chunk(std::string(255, 'x')) == "ff\r\n" + std::string(255, 'x') + "\r\n");
    CHECK(http::chunk("").empty()); // a zero-size chunk would end the body
    CHECK(http::chunk_header(4096) == "1000\r\n");
    CHECK(http::last_chunk() == "0\r\n\r\n");
    http::fields t;
    t.add("X-Checksum", "abc");
    CHECK(http::last_chunk(t) == "0\r\nX-Checksum: abc\r\n\r\n");
}

TEST_CASE("round trip: serialize, then parse, gives the same request", "[http][serializer][roundtrip]") {
    http::request r;
    r.method = "PATCH";
    r.target = "/v1/x?y=%20z";
    r.headers.add("Host", "api.callsavvy.com:8443");
    r.headers.add("Public-Key", "pk");
    r.headers.add("X-Empty", "");
    r.headers.add("X-Dup", "1");
    r.headers.add("x-dup", "2");
    r.headers.add("Content-Length", "11");
    r.body = "{\"id\":\"a\"}\n";
    CHECK(reparse<http::request_parser, http::request>(http::serialize_head(r) + r.body) == r);

    SECTION("with the Content-Length the serializer adds") {
        r.headers.erase("Content-Length");
        auto parsed = reparse<http::request_parser, http::request>(http::serialize_head(r) + r.body);
        CHECK(parsed.headers.find("Content-Length") == "11");
        parsed.headers.erase("Content-Length");
        CHECK(parsed == r);
    }
    SECTION("chunked, with trailers") {
        r.headers.set("Content-Length", "");
        r.headers.erase("Content-Length");
        r.headers.add("Transfer-Encoding", "chunked");
        r.trailers.add("X-Digest", "sha-256=abc");
        const auto wire = http::serialize_head(r) + http::chunk(r.body.substr(0, 4)) + http::chunk("") +
                          http::chunk(r.body.substr(4)) + http::last_chunk(r.trailers);
        CHECK(reparse<http::request_parser, http::request>(wire) == r);
    }
    SECTION("HTTP/1.0") {
        r.version = 10;
        CHECK(reparse<http::request_parser, http::request>(http::serialize_head(r) + r.body) == r);
    }
}

TEST_CASE("round trip: serialize, then parse, gives the same response", "[http][serializer][roundtrip]") {
    http::response r;
    r.status = 503;
    r.reason = "Service Unavailable";
    r.headers.add("Content-Type", "application/json; charset=utf-8");
    r.headers.add("Retry-After", "30");
    r.headers.add("Content-Length", "2");
    r.body = "{}";
    CHECK(reparse<http::response_parser, http::response>(http::serialize_head(r) + r.body) == r);

    r.headers.erase("Content-Length");
    r.headers.add("Transfer-Encoding", "chunked");
    r.body = std::string(70000, 'j');
    const auto wire = http::serialize_head(r) + http::chunk(std::string_view(r.body).substr(0, 65536)) +
                      http::chunk(std::string_view(r.body).substr(65536)) + http::last_chunk();
    CHECK(reparse<http::response_parser, http::response>(wire) == r);

    http::response no_content;
    no_content.status = 204;
    no_content.reason = "No Content";
    CHECK(reparse<http::response_parser, http::response>(http::serialize_head(no_content)) == no_content);
}

TEST_CASE("request_head: fields checked once, per request only the target and the length", "[http][serializer]") {
    http::request base;
    base.method = "POST";
    base.target = "/v1/";
    base.headers.add("Host", "api.example");
    base.headers.add("Public-Key", "pk");
    error_code ec;
    auto head = http::request_head::make(base, ec);
    REQUIRE(head);
    std::string out;
    head->render("getSummary", 2, out, ec);
    CHECK_FALSE(ec);
    CHECK(out == "POST /v1/getSummary HTTP/1.1\r\nHost: api.example\r\nPublic-Key: pk\r\nContent-Length: 2\r\n\r\n");
    // The same head as the general serializer writes, parsed back whole.
    http::request full = base;
    full.target = "/v1/getSummary";
    full.body = "{}";
    CHECK(out == http::serialize_head(full));

    std::string bad;
    head->render("a b", 0, bad, ec);
    CHECK(ec == error::bad_target);
    CHECK(bad.empty());

    http::request injected = base;
    injected.headers.add("Private-Key", "secret\r\nX-Injected: 1");
    CHECK_FALSE(http::request_head::make(injected, ec));
    CHECK(ec == error::bad_field_value);
    http::request framed = base;
    framed.headers.add("Content-Length", "5");
    CHECK_FALSE(http::request_head::make(framed, ec));
}

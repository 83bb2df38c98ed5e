// Webhook request protection (spec §6): a secret path, Basic credentials, a CIDR source allow-list behind
// trusted proxies, Standard Webhooks signatures (tolerance both ways, rotation), the fixed order of the
// checks and the statuses they answer, and the duplicate filter's bounds and its behaviour when a handler
// fails. All sans-io, with the time given.
#include <callsavvy/webhook/signature.hpp>
#include <callsavvy/webhook/verify.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace webhook = callsavvy::webhook;
namespace http = callsavvy::http;
using namespace std::chrono_literals;

namespace {

// The example of the Standard Webhooks specification: secret, id, timestamp, body and signature.
constexpr std::string_view spec_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view spec_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::int64_t spec_ts = 1614265330;
constexpr std::string_view spec_body = R"({"test": 2432232314})";
constexpr std::string_view spec_signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
// A second secret, for rotation.
constexpr std::string_view new_secret = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=";

const auto spec_now = std::chrono::system_clock::time_point(std::chrono::seconds(spec_ts));

webhook::ip_address ip(std::string_view text) {
    const auto a = webhook::ip_address::parse(text);
    INFO(text);
    REQUIRE(a);
    return *a;
}

webhook::request_verifier make(webhook::verify_options o) {
    webhook::config_error err;
    auto v = webhook::request_verifier::create(std::move(o), err);
    INFO(err.message());
    REQUIRE(v);
    return std::move(*v);
}

webhook::config_error config_fails(webhook::verify_options o) {
    webhook::config_error err;
    const bool created = webhook::request_verifier::create(std::move(o), err).has_value();
    CHECK_FALSE(created);
    return err;
}

// One request as the listener hands it over.
struct request {
    std::string method = "POST";
    std::string target = "/hooks";
    http::fields headers{};
    std::string remote = "203.0.113.7";
    std::string body = std::string(spec_body);

    webhook::verdict check(const webhook::request_verifier& v,
                           std::chrono::system_clock::time_point now = spec_now) const {
        return v.check(webhook::request_view{method, target, &headers, ip(remote), body}, now);
    }
};

request signed_request(std::string_view secret = spec_secret, std::int64_t ts = spec_ts) {
    request r;
    r.headers.add("webhook-id", spec_id);
    r.headers.add("webhook-timestamp", std::to_string(ts));
    r.headers.add("webhook-signature", webhook::sign(secret, spec_id, ts, r.body));
    return r;
}

void check_rejected(const webhook::verdict& v, int status, webhook::rejection reason) {
    INFO("detail: " << v.detail);
    CHECK_FALSE(v);
    CHECK(v.status == status);
    CHECK(webhook::rejection_name(v.reason) == webhook::rejection_name(reason));
    CHECK_FALSE(v.detail.empty());
}

} // namespace

// ---------------------------------------------------------------- pieces

TEST_CASE("webhook verify: constant-time comparison and the target's path", "[webhook]") {
    CHECK(webhook::constant_time_equal("", ""));
    CHECK(webhook::constant_time_equal("s3cret", "s3cret"));
    CHECK_FALSE(webhook::constant_time_equal("s3cret", "s3creT"));
    CHECK_FALSE(webhook::constant_time_equal("s3cret", "s3cre"));
    CHECK_FALSE(webhook::constant_time_equal("", "x"));

    CHECK(webhook::target_path("/hooks/abc") == "/hooks/abc");
    CHECK(webhook::target_path("/hooks/abc?x=1") == "/hooks/abc");
    CHECK(webhook::target_path("/hooks/abc?next=http://x/y") == "/hooks/abc");
    CHECK(webhook::target_path("http://example.com/hooks/abc?x") == "/hooks/abc");
    CHECK(webhook::target_path("https://example.com") == "/");
    CHECK(webhook::target_path("") == "");
}

TEST_CASE("webhook verify: Basic credentials parse per RFC 7617", "[webhook]") {
    const auto token = callsavvy::detail::base64_encode("callsavvy:pa:ss word");
    auto c = webhook::parse_basic_authorization("Basic " + token);
    REQUIRE(c);
    CHECK(c->user == "callsavvy");
    CHECK(c->password == "pa:ss word"); // split at the first colon only
    CHECK(webhook::parse_basic_authorization("basic " + token));
    CHECK(webhook::parse_basic_authorization("BASIC   " + token));
    CHECK_FALSE(webhook::parse_basic_authorization("Bearer " + token));
    CHECK_FALSE(webhook::parse_basic_authorization("Basic"));
    CHECK_FALSE(webhook::parse_basic_authorization("Basic " + token.substr(1))); // not base64
    CHECK_FALSE(webhook::parse_basic_authorization("Basic " + callsavvy::detail::base64_encode("nocolon"))); // no ':'
    CHECK_FALSE(webhook::parse_basic_authorization("Basic" + token));
}

// ---------------------------------------------------------------- secret path

TEST_CASE("webhook verify: the secret path is compared exactly, a wrong one answers 404", "[webhook]") {
    webhook::verify_options o;
    o.secret_path = "/hooks/9f2c61e8d1";
    const auto v = make(o);
    request r;
    r.target = "/hooks/9f2c61e8d1";
    CHECK(r.check(v));
    r.target = "/hooks/9f2c61e8d1?attempt=2";
    CHECK(r.check(v)); // the query is not part of the secret

    for (const char* wrong : {"/hooks/9f2c61e8d2", "/hooks/9f2c61e8d", "/hooks/9f2c61e8d1/", "/hooks/9F2C61E8D1",
                              "/hooks/9f2c61e8d1x", "/hooks", "/", "*", "/hooks/9f2c61e8d%31"}) {
        INFO(wrong);
        r.target = wrong;
        const auto verdict = r.check(v);
        check_rejected(verdict, 404, webhook::rejection::wrong_path);
        CHECK(verdict.detail.find("9f2c61e8d") == std::string::npos); // neither the secret nor the guess
        CHECK(verdict.headers.empty());
    }
    CHECK(config_fails({.secret_path = "hooks/x"}).option == "secret_path");
}

// ---------------------------------------------------------------- Basic credentials

TEST_CASE("webhook verify: Basic credentials accepted, and each failure answered 401 with a challenge", "[webhook]") {
    webhook::verify_options o;
    o.basic = webhook::basic_credentials{"callsavvy", "Tr0ub4dor&3", "hooks"};
    const auto v = make(o);
    const auto header = [](std::string_view user_pass) {
        return "Basic " + callsavvy::detail::base64_encode(user_pass);
    };

    request r;
    r.headers.add("Authorization", header("callsavvy:Tr0ub4dor&3"));
    CHECK(r.check(v));

    struct failure {
        std::vector<std::string> values;
        webhook::rejection reason;
    };
    const std::vector<failure> failures{
        {{}, webhook::rejection::missing_credentials},
        {{header("callsavvy:Tr0ub4dor&4")}, webhook::rejection::wrong_credentials},
        {{header("callsavvy:Tr0ub4dor&")}, webhook::rejection::wrong_credentials},
        {{header("Callsavvy:Tr0ub4dor&3")}, webhook::rejection::wrong_credentials},
        {{header("callsavvy:")}, webhook::rejection::wrong_credentials},
        {{header(":Tr0ub4dor&3")}, webhook::rejection::wrong_credentials},
        {{"Bearer abc"}, webhook::rejection::malformed_credentials},
        {{"Basic !!!!"}, webhook::rejection::malformed_credentials},
        {{header("callsavvy:Tr0ub4dor&3"), header("callsavvy:Tr0ub4dor&3")}, webhook::rejection::malformed_credentials},
    };
    for (const auto& f : failures) {
        request bad;
        for (const auto& value : f.values) bad.headers.add("Authorization", value);
        INFO(f.values.size() << " Authorization header(s): " << (f.values.empty() ? "" : f.values[0]));
        const auto verdict = bad.check(v);
        check_rejected(verdict, 401, f.reason);
        CHECK(verdict.headers.find("WWW-Authenticate") == R"(Basic realm="hooks", charset="UTF-8")");
        CHECK(verdict.detail.find("Tr0ub4dor") == std::string::npos);
        CHECK(verdict.detail.find("callsavvy") == std::string::npos);
    }

    CHECK(config_fails({.basic = webhook::basic_credentials{"a:b", "p"}}).option == "basic.user");
    CHECK(config_fails({.basic = webhook::basic_credentials{"a", "p", "say \"hi\""}}).option == "basic.realm");
}

// ---------------------------------------------------------------- addresses and ranges

TEST_CASE("webhook addresses: IPv4 and IPv6 text, strictly", "[webhook]") {
    CHECK(ip("10.1.2.3").str() == "10.1.2.3");
    CHECK(ip("10.1.2.3").is_v4());
    CHECK(ip("::ffff:10.1.2.3") == ip("10.1.2.3")); // IPv4-mapped is the same address
    CHECK(ip("::FFFF:0a01:0203") == ip("10.1.2.3"));
    CHECK(ip("2001:DB8:0:0:1:0:0:1").str() == "2001:db8::1:0:0:1"); // RFC 5952: the first longest run
    CHECK(ip("2001:db8:0:0:0:0:2:1").str() == "2001:db8::2:1");
    CHECK(ip("2001:db8::").str() == "2001:db8::");
    CHECK(ip("::").str() == "::");
    CHECK(ip("::1").str() == "::1");
    CHECK(ip("1:2:3:4:5:6:7::").str() == "1:2:3:4:5:6:7:0"); // one zero group is not compressed
    CHECK(ip("2001:db8:1:0:1:0:0:0").str() == "2001:db8:1:0:1::");
    CHECK(ip("::1.2.3.4").str() == "::102:304");
    CHECK_FALSE(ip("::1").is_v4());

    const std::array<std::uint8_t, 4> v4{192, 0, 2, 1};
    CHECK(webhook::ip_address::from_v4_bytes(v4) == ip("192.0.2.1"));

    for (const char* bad : {"",
                            "1.2.3",
                            "1.2.3.4.5",
                            "256.1.1.1",
                            "01.2.3.4",
                            "1.2.3.4 ",
                            " 1.2.3.4",
                            "1..2.3",
                            "1.2.3.-4",
                            "a.b.c.d",
                            ":",
                            ":::",
                            "1:::2",
                            "::1::",
                            "1:2:3:4:5:6:7:8:9",
                            "1:2:3:4:5:6:7",
                            "12345::",
                            "1:2:3:4:5:6:7:8::",
                            "::1:2:3:4:5:6:7:8",
                            ":1::",
                            "1::2:",
                            "fe80::1%eth0",
                            "[::1]",
                            "::ffff:1.2.3",
                            "1.2.3.4::",
                            "g::1",
                            "1:2:3:4:5:6:7:1.2.3.4"}) {
        INFO('"' << bad << '"');
        CHECK_FALSE(webhook::ip_address::parse(bad));
    }
}

TEST_CASE("webhook addresses: CIDR ranges for IPv4 and IPv6, IPv4-mapped addresses in IPv4 ranges", "[webhook]") {
    std::string why;
    const auto parse = [&](std::string_view text) {
        auto r = webhook::address_range::parse(text, why);
        INFO(text << ": " << why);
        REQUIRE(r);
        return *r;
    };
    const auto ten = parse("10.0.0.0/8");
    CHECK(ten.contains(ip("10.0.0.0")));
    CHECK(ten.contains(ip("10.255.255.255")));
    CHECK_FALSE(ten.contains(ip("11.0.0.0")));
    CHECK_FALSE(ten.contains(ip("9.255.255.255")));
    CHECK(ten.contains(ip("::ffff:10.20.30.40"))); // as a dual-stack socket reports an IPv4 peer
    CHECK_FALSE(ten.contains(ip("::a14:1e28")));   // the IPv4-compatible form is another address
    CHECK(ten.str() == "10.0.0.0/8");
    CHECK(ten.prefix_length() == 8);

    const auto doc = parse("2001:db8::/32");
    CHECK(doc.contains(ip("2001:db8::1")));
    CHECK(doc.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    CHECK_FALSE(doc.contains(ip("2001:db9::")));
    CHECK_FALSE(doc.contains(ip("10.0.0.1")));
    CHECK(doc.str() == "2001:db8::/32");

    const auto loop6 = parse("::1/128");
    CHECK(loop6.contains(ip("::1")));
    CHECK_FALSE(loop6.contains(ip("::2")));
    CHECK(parse("::1").prefix_length() == 128);      // a bare IPv6 address is /128
    CHECK(parse("192.0.2.1").prefix_length() == 32); // a bare IPv4 address is /32
    CHECK(parse("192.0.2.1").contains(ip("192.0.2.1")));
    CHECK_FALSE(parse("192.0.2.1").contains(ip("192.0.2.2")));
    CHECK(parse("198.51.100.0/23").contains(ip("198.51.101.255"))); // a prefix inside a byte
    CHECK_FALSE(parse("198.51.100.0/23").contains(ip("198.51.102.0")));
    CHECK(parse("0.0.0.0/0").contains(ip("203.0.113.7")));
    CHECK_FALSE(parse("0.0.0.0/0").contains(ip("2001:db8::1")));
    CHECK(parse("::ffff:10.0.0.0/104").contains(ip("10.9.9.9"))); // the mapped spelling of 10.0.0.0/8
    CHECK(parse("::/0").contains(ip("203.0.113.7")));             // documented: every address

    struct bad_range {
        const char* text;
        const char* reason;
    };
    for (const auto& [text, reason] : {
             bad_range{"10.0.0.0/33", "\"10.0.0.0/33\": prefix length 33 is above 32"},
             bad_range{"2001:db8::/129", "\"2001:db8::/129\": prefix length 129 is above 128"},
             bad_range{"10.0.0.256/8", "\"10.0.0.256/8\": not an IPv4 or IPv6 address"},
             bad_range{"example.com", "\"example.com\": not an IPv4 or IPv6 address"},
             bad_range{"10.0.0.0/", "\"10.0.0.0/\": the prefix length is not a number from 0 to 32"},
             bad_range{"10.0.0.0/08", "\"10.0.0.0/08\": the prefix length is not a number from 0 to 32"},
             bad_range{"10.0.0.0/-1", "\"10.0.0.0/-1\": the prefix length is not a number from 0 to 32"},
             bad_range{"::/x", "\"::/x\": the prefix length is not a number from 0 to 128"},
             bad_range{"10.1.2.3/8",
                       "\"10.1.2.3/8\": bits are set beyond the prefix length (the network is 10.0.0.0/8)"},
             bad_range{"2001:db8::1/32",
                       "\"2001:db8::1/32\": bits are set beyond the prefix length (the network is 2001:db8::/32)"},
             bad_range{"", "\"\": not an IPv4 or IPv6 address"},
         }) {
        why.clear();
        CHECK_FALSE(webhook::address_range::parse(text, why));
        CHECK(why == reason);
    }

    // The verifier reports a bad range with its option and the offending text.
    const auto err = config_fails({.allowed_sources = {"10.0.0.0/8", "10.0.0.0/40"}});
    CHECK(err.option == "allowed_sources");
    CHECK(err.reason == "\"10.0.0.0/40\": prefix length 40 is above 32");
    CHECK(config_fails({.trusted_proxies = {"proxy.local"}}).option == "trusted_proxies");
}

// ---------------------------------------------------------------- source allow-list

TEST_CASE("webhook verify: the source allow-list answers 403 to any other peer", "[webhook]") {
    const auto v = make({.allowed_sources = {"203.0.113.0/24", "2001:db8::/32"}});
    request r;
    for (const char* ok : {"203.0.113.7", "::ffff:203.0.113.200", "2001:db8::42"}) {
        INFO(ok);
        r.remote = ok;
        const auto verdict = r.check(v);
        CHECK(verdict);
        CHECK(verdict.client == ip(ok));
    }
    for (const char* bad : {"198.51.100.9", "::1", "2001:db9::1", "::ffff:198.51.100.9"}) {
        INFO(bad);
        r.remote = bad;
        const auto verdict = r.check(v);
        check_rejected(verdict, 403, webhook::rejection::source_not_allowed);
        CHECK(verdict.detail == "client " + ip(bad).str() + " is not allowed");
    }
}

TEST_CASE("webhook verify: X-Forwarded-For is read only from trusted proxies, right to left", "[webhook]") {
    const auto v = make({.allowed_sources = {"203.0.113.0/24"}, .trusted_proxies = {"10.0.0.0/24", "fd00::/8"}});
    const auto from = [&](std::string peer, std::vector<std::string> xff) {
        request r;
        r.remote = std::move(peer);
        for (auto& line : xff) r.headers.add("X-Forwarded-For", line);
        return r.check(v);
    };

    // Through one trusted proxy, and through a chain of them.
    CHECK(from("10.0.0.5", {"203.0.113.7"}));
    CHECK(from("10.0.0.5", {"203.0.113.7"}).client == ip("203.0.113.7"));
    CHECK(from("10.0.0.5", {"203.0.113.7, 10.0.0.9"}));
    CHECK(from("fd00::5", {"203.0.113.7", "10.0.0.9"})); // several lines are one list, in order
    CHECK(from("10.0.0.5", {"[2001:db8::1]:443, 203.0.113.7:5555"}).client == ip("203.0.113.7"));
    CHECK(from("10.0.0.5", {"garbage, 203.0.113.7"})); // what lies left of the client is never read

    // Spoofing: an untrusted peer's header is ignored; a client behind the proxy cannot prepend itself in.
    auto spoof = from("198.51.100.9", {"203.0.113.7"});
    check_rejected(spoof, 403, webhook::rejection::source_not_allowed);
    CHECK(spoof.client == ip("198.51.100.9"));
    spoof = from("10.0.0.5", {"203.0.113.7, 198.51.100.9"});
    check_rejected(spoof, 403, webhook::rejection::source_not_allowed);
    CHECK(spoof.client == ip("198.51.100.9"));
    spoof = from("10.0.0.5", {"203.0.113.7", "198.51.100.9, 10.0.0.7"});
    CHECK(spoof.client == ip("198.51.100.9"));
    CHECK_FALSE(spoof);

    // A trusted proxy with no header is the client itself; when every hop is trusted, the left-most one.
    check_rejected(from("10.0.0.5", {}), 403, webhook::rejection::source_not_allowed);
    CHECK(from("10.0.0.5", {}).client == ip("10.0.0.5"));
    CHECK(from("10.0.0.5", {"10.0.0.8, 10.0.0.7"}).client == ip("10.0.0.8"));

    // A hop that must be read and is not an address: the client is unknown.
    for (const char* bad : {"unknown", "203.0.113.7, _hidden", "[2001:db8::1", "[2001:db8::1]x", "203.0.113.7:80:1"}) {
        INFO(bad);
        const auto verdict = from("10.0.0.5", {bad});
        check_rejected(verdict, 403, webhook::rejection::malformed_forwarded_for);
        CHECK(verdict.client == ip("10.0.0.5"));
    }

    // Without trusted proxies nobody's header counts.
    const auto plain = make({.allowed_sources = {"203.0.113.0/24"}});
    request r;
    r.remote = "10.0.0.5";
    r.headers.add("X-Forwarded-For", "203.0.113.7");
    check_rejected(r.check(plain), 403, webhook::rejection::source_not_allowed);
}

// ---------------------------------------------------------------- signatures

TEST_CASE("webhook verify: the Standard Webhooks example verifies over the raw body", "[webhook]") {
    const auto v = make({.signing_secrets = {std::string(spec_secret)}});
    request r;
    r.headers.add("webhook-id", spec_id);
    r.headers.add("webhook-timestamp", std::to_string(spec_ts));
    r.headers.add("webhook-signature", spec_signature);
    const auto ok = r.check(v);
    CHECK(ok);
    CHECK(ok.delivery_id == spec_id);

    // The raw bytes are signed: the same JSON with another spacing is another body.
    r.body = R"({"test":2432232314})";
    check_rejected(r.check(v), 401, webhook::rejection::no_matching_signature);
    r.body = std::string(spec_body);
    r.headers.set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJeK");
    check_rejected(r.check(v), 401, webhook::rejection::no_matching_signature);
    // The timestamp's text is signed as sent: a re-formatted value does not verify.
    r.headers.set("webhook-id", spec_id);
    r.headers.set("webhook-timestamp", "0" + std::to_string(spec_ts));
    check_rejected(r.check(v), 401, webhook::rejection::no_matching_signature);
    const auto key = webhook::secret_key(spec_secret);
    REQUIRE(key);
    r.headers.set("webhook-signature", webhook::sign_with_key(*key, spec_id, "0" + std::to_string(spec_ts), r.body));
    CHECK(r.check(v));
}

TEST_CASE("webhook verify: the tolerance window rejects stale and far-future timestamps at its edges", "[webhook]") {
    const auto v = make({.signing_secrets = {std::string(spec_secret)}});
    CHECK(signed_request(spec_secret, spec_ts - 300).check(v));
    CHECK(signed_request(spec_secret, spec_ts + 300).check(v));
    auto old = signed_request(spec_secret, spec_ts - 301).check(v);
    check_rejected(old, 401, webhook::rejection::timestamp_too_old);
    CHECK(old.detail == "webhook-timestamp is 301 s old (tolerance 300 s)");
    auto future = signed_request(spec_secret, spec_ts + 301).check(v);
    check_rejected(future, 401, webhook::rejection::timestamp_too_new);
    CHECK(future.detail == "webhook-timestamp is 301 s ahead (tolerance 300 s)");
    // Fractions of a second of `now` do not widen the window.
    CHECK(signed_request(spec_secret, spec_ts - 300).check(v, spec_now + 999ms));
    CHECK_FALSE(signed_request(spec_secret, spec_ts - 301).check(v, spec_now + 999ms));

    const auto strict = make({.signing_secrets = {std::string(spec_secret)}, .tolerance = 0s});
    CHECK(signed_request(spec_secret, spec_ts).check(strict));
    CHECK_FALSE(signed_request(spec_secret, spec_ts - 1).check(strict));
    CHECK_FALSE(signed_request(spec_secret, spec_ts + 1).check(strict));
    const auto wide = make({.signing_secrets = {std::string(spec_secret)}, .tolerance = 3600s});
    CHECK(signed_request(spec_secret, spec_ts - 3600).check(wide));
    CHECK_FALSE(signed_request(spec_secret, spec_ts - 3601).check(wide));
    CHECK(config_fails({.signing_secrets = {std::string(spec_secret)}, .tolerance = -1s}).option == "tolerance");
}

TEST_CASE("webhook verify: several secrets are accepted at once (rotation)", "[webhook]") {
    const auto both = make({.signing_secrets = {std::string(spec_secret), std::string(new_secret)}});
    const auto only_new = make({.signing_secrets = {std::string(new_secret)}});
    CHECK(signed_request(spec_secret).check(both));
    CHECK(signed_request(new_secret).check(both));
    CHECK(signed_request(new_secret).check(only_new));
    check_rejected(signed_request(spec_secret).check(only_new), 401, webhook::rejection::no_matching_signature);

    // A sender in the middle of its own rotation sends both signatures: one match is enough.
    auto r = signed_request(spec_secret);
    const auto old_sig = std::string(*r.headers.find("webhook-signature"));
    const auto new_sig = webhook::sign(new_secret, spec_id, spec_ts, r.body);
    r.headers.set("webhook-signature", old_sig + " " + new_sig);
    CHECK(r.check(only_new));
    // Other schemes' entries are ignored, not mistaken for ours.
    r.headers.set("webhook-signature", "v1a,abc v2," + new_sig.substr(3) + " " + new_sig);
    CHECK(r.check(only_new));
    r.headers.set("webhook-signature", "v1a,abc v2," + new_sig.substr(3));
    CHECK_FALSE(r.check(only_new));

    const auto err = config_fails({.signing_secrets = {std::string(spec_secret), "whsec_not*base64"}});
    CHECK(err.option == "signing_secrets[1]");
    CHECK(err.message().find("not*base64") == std::string::npos);
    CHECK(config_fails({.signing_secrets = {"whsec_"}}).option == "signing_secrets[0]");
}

TEST_CASE("webhook verify: each malformed signature gets its own reason, and no secret in it", "[webhook]") {
    const auto v = make({.signing_secrets = {std::string(spec_secret)}});
    for (const char* name : {"webhook-id", "webhook-timestamp", "webhook-signature"}) {
        INFO(name);
        auto r = signed_request();
        r.headers.erase(name);
        auto verdict = r.check(v);
        check_rejected(verdict, 401, webhook::rejection::missing_signature_header);
        CHECK(verdict.detail == "no " + std::string(name) + " header");
        r.headers.add(name, "");
        check_rejected(r.check(v), 401, webhook::rejection::missing_signature_header);

        auto twice = signed_request();
        twice.headers.add(name, std::string(*twice.headers.find(name)));
        verdict = twice.check(v);
        check_rejected(verdict, 401, webhook::rejection::duplicate_signature_header);
        CHECK(verdict.detail == "2 " + std::string(name) + " headers");
    }
    for (const char* stamp :
         {"abc", "-5", "+5", "1614265330.5", " 1614265330", "1614265330s", "1e9", "99999999999999999999"}) {
        INFO(stamp);
        auto r = signed_request();
        r.headers.set("webhook-timestamp", stamp);
        check_rejected(r.check(v), 401, webhook::rejection::malformed_timestamp);
    }
    auto r = signed_request();
    r.headers.set("webhook-signature", "v1,AAAA");
    const auto verdict = r.check(v);
    check_rejected(verdict, 401, webhook::rejection::no_matching_signature);
    CHECK(verdict.detail.find("MfKQ9r8") == std::string::npos);
    CHECK(verdict.headers.empty()); // no standard challenge exists for signatures
    CHECK(verdict.delivery_id.empty());
}

// ---------------------------------------------------------------- the order, the method

TEST_CASE("webhook verify: checks run in a fixed order: source, path, credentials, signature, method", "[webhook]") {
    webhook::verify_options o;
    o.allowed_sources = {"203.0.113.0/24"};
    o.secret_path = "/hooks/s3";
    o.basic = webhook::basic_credentials{"cs", "pw"};
    o.signing_secrets = {std::string(spec_secret)};
    const auto v = make(o);

    auto r = signed_request();
    r.method = "GET";
    r.target = "/nope";
    r.remote = "198.51.100.1";
    check_rejected(r.check(v), 403, webhook::rejection::source_not_allowed);
    r.remote = "203.0.113.1";
    check_rejected(r.check(v), 404, webhook::rejection::wrong_path);
    r.target = "/hooks/s3";
    check_rejected(r.check(v), 401, webhook::rejection::missing_credentials);
    r.headers.add("Authorization", "Basic " + callsavvy::detail::base64_encode("cs:pw"));
    r.headers.set("webhook-signature", "v1,AAAA");
    check_rejected(r.check(v), 401, webhook::rejection::no_matching_signature);
    r.headers.set("webhook-signature", webhook::sign(spec_secret, spec_id, spec_ts, r.body));
    const auto wrong_method = r.check(v);
    check_rejected(wrong_method, 405, webhook::rejection::method_not_allowed);
    CHECK(wrong_method.headers.find("Allow") == "POST");
    r.method = "POST";
    const auto ok = r.check(v);
    CHECK(ok);
    CHECK(ok.delivery_id == spec_id);
    CHECK(ok.client == ip("203.0.113.1"));
    // The same through a parsed request.
    http::request parsed;
    parsed.target = r.target;
    parsed.headers = r.headers;
    parsed.body = r.body;
    CHECK(v.check(parsed, ip("203.0.113.1"), spec_now));
    CHECK_FALSE(v.check(parsed, ip("203.0.114.1"), spec_now));
}

TEST_CASE("webhook verify: with nothing configured, any POST passes and only the method is checked", "[webhook]") {
    const auto v = make({});
    request r;
    r.remote = "198.51.100.1";
    r.target = "/anything";
    const auto ok = r.check(v);
    CHECK(ok);
    CHECK(ok.delivery_id.empty()); // no signature checked: no authenticated id to de-duplicate on
    CHECK(ok.status == 0);
    CHECK(ok.reason == webhook::rejection::none);
    CHECK(ok.headers.empty());
    r.method = "post"; // methods are case-sensitive (RFC 9110 section 9.1)
    check_rejected(r.check(v), 405, webhook::rejection::method_not_allowed);
    webhook::request_view no_headers{"POST", "/", nullptr, ip("::1"), ""};
    CHECK(v.check(no_headers, spec_now));
}

// ---------------------------------------------------------------- duplicate filter

namespace {
using filter = webhook::duplicate_filter;
const filter::clock::time_point t0{std::chrono::hours(1)};
} // namespace

TEST_CASE("webhook duplicates: done only after success; a failed first delivery is accepted again", "[webhook]") {
    filter f;
    auto first = f.begin("msg_1", t0);
    REQUIRE(first.state == filter::state::fresh);
    REQUIRE(first.ticket);

    // A retry while the first is still being handled is recognised (answer 409: try later).
    CHECK(f.begin("msg_1", t0 + 1s).state == filter::state::in_flight);
    CHECK(f.in_flight() == 1);

    // The handler failed (5xx): no trace left, so the sender's next retry runs the handler.
    first.ticket.finish(false, t0 + 2s);
    CHECK_FALSE(first.ticket);
    CHECK(f.size() == 0);
    auto retry = f.begin("msg_1", t0 + 10s);
    REQUIRE(retry.state == filter::state::fresh);
    retry.ticket.finish(true, t0 + 11s, R"({"status":"success","reply":"Hi"})");

    // Now it is done: a redelivery is answered with the stored reply, without running the handler.
    const auto dup = f.begin("msg_1", t0 + 20s);
    CHECK(dup.state == filter::state::done);
    CHECK(dup.reply == R"({"status":"success","reply":"Hi"})");
    CHECK_FALSE(dup.ticket);
    CHECK(f.begin("msg_2", t0 + 20s).state == filter::state::fresh); // another id is unaffected
}

TEST_CASE("webhook duplicates: a ticket dropped unsettled counts as not handled", "[webhook]") {
    filter f;
    {
        auto a = f.begin("msg_throw", t0);
        REQUIRE(a.state == filter::state::fresh);
        // the handler threw, or its coroutine was destroyed by cancellation: the ticket goes out of scope
    }
    CHECK(f.size() == 0);
    auto again = f.begin("msg_throw", t0);
    REQUIRE(again.state == filter::state::fresh);
    filter::ticket moved = std::move(again.ticket);
    CHECK_FALSE(again.ticket);
    CHECK(moved);
    filter::ticket other = std::move(moved);
    other.finish(true, t0);
    other.finish(false, t0); // settled once: the second call does nothing
    CHECK(f.begin("msg_throw", t0).state == filter::state::done);
}

TEST_CASE("webhook duplicates: bounded by age and count, never evicting work in flight", "[webhook]") {
    filter f(webhook::duplicate_filter_options{.max_entries = 3, .max_age = 60s, .max_reply_bytes = 8});
    for (const char* id : {"a", "b", "c"}) f.begin(id, t0).ticket.finish(true, t0);
    CHECK(f.size() == 3);
    // A fourth id pushes out the oldest done one.
    f.begin("d", t0 + 1s).ticket.finish(true, t0 + 1s);
    CHECK(f.size() == 3);
    CHECK(f.begin("b", t0 + 1s).state == filter::state::done);
    auto a_again = f.begin("a", t0 + 1s); // forgotten: fresh (and evicts b, the oldest now)
    CHECK(a_again.state == filter::state::fresh);
    a_again.ticket.finish(false, t0 + 1s);

    // Done ids expire after max_age: exactly at it they are kept, after it forgotten.
    filter aged(webhook::duplicate_filter_options{.max_entries = 10, .max_age = 60s});
    aged.begin("x", t0).ticket.finish(true, t0);
    CHECK(aged.begin("x", t0 + 60s).state == filter::state::done);
    CHECK(aged.begin("x", t0 + 61s).state == filter::state::fresh);

    // In-flight ids are never evicted: when every slot is in flight, a new id is refused (answer 503).
    filter busy(webhook::duplicate_filter_options{.max_entries = 2, .max_age = 60s});
    auto one = busy.begin("1", t0);
    auto two = busy.begin("2", t0);
    CHECK(busy.begin("3", t0).state == filter::state::full);
    CHECK(busy.begin("1", t0).state == filter::state::in_flight);
    two.ticket.finish(true, t0);
    CHECK(busy.begin("3", t0).state == filter::state::fresh); // the done "2" made room

    // A reply too large to keep: the id is forgotten rather than answered without its reply.
    filter small(webhook::duplicate_filter_options{.max_entries = 10, .max_age = 60s, .max_reply_bytes = 8});
    small.begin("big", t0).ticket.finish(true, t0, "123456789");
    CHECK(small.begin("big", t0).state == filter::state::fresh);
    small.begin("fits", t0).ticket.finish(true, t0, "12345678");
    CHECK(small.begin("fits", t0).reply == "12345678");

    // Many distinct ids, some of them long: the count never passes the bound.
    filter many(webhook::duplicate_filter_options{.max_entries = 100, .max_age = 3600s});
    for (int i = 0; i < 5000; ++i) {
        auto a = many.begin(std::string(static_cast<std::size_t>(i % 7) * 1000, 'x') + std::to_string(i), t0);
        REQUIRE(a.state == filter::state::fresh);
        a.ticket.finish(i % 3 != 0, t0);
        REQUIRE(many.size() <= 100);
    }
    CHECK(many.size() == 100);
    CHECK(many.in_flight() == 0);
}

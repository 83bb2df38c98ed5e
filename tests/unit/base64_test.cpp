// detail::base64: RFC 4648 section 10 test vectors, and strict decoding.
#include <callsavvy/detail/base64.hpp>

#include <catch2/catch.hpp>

#include <string>

using callsavvy::detail::base64_decode;
using callsavvy::detail::base64_encode;

TEST_CASE("base64: RFC 4648 test vectors both ways", "[http][base64]") {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        INFO(plain);
        CHECK(base64_encode(plain) == encoded);
        CHECK(base64_decode(encoded) == std::string(plain));
    }
    CHECK(base64_encode("Aladdin:open sesame") == "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="); // RFC 7617's example
}

TEST_CASE("base64: every byte value and length round-trips", "[http][base64]") {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    for (std::size_t n = 0; n <= all.size(); ++n) {
        const auto part = all.substr(all.size() - n);
        REQUIRE(base64_decode(base64_encode(part)) == part);
    }
    CHECK(base64_encode("\xfb\xff") == "+/8=");
}

TEST_CASE("base64: decoding is strict", "[http][base64][reject]") {
    for (const char* bad : {"Zg", "Zg=", "Zm9", "Z===", "====", "Zg==Zg==", "Zm=v", "Zm9v\n", " Zm9v", "Zm9v YmFy",
                            "Zm9-", "Zm9_", "Zh==", "Zm9=", "Zg=A"}) {
        INFO(bad);
        CHECK_FALSE(base64_decode(bad));
    }
}

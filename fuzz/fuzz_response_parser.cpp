// libFuzzer target: http::response_parser. Arbitrary bytes in arbitrary splits must parse to the same
// messages (or the same error) as in one piece, with and without expect_no_body(), and each parsed
// response, serialized again, must parse back to itself.
#include "fuzz_http_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace callsavvy_fuzz;
    // The selector's top bit says whether the responses answer HEAD requests.
    const bool head = size > 0 && (data[0] & 0x80) != 0;
    const auto configure = [head](http::response_parser& p) {
        if (head) p.expect_no_body();
    };
    const auto t = check_split_invariance<http::response_parser, http::response>(data, size, configure);

    http::limits roomy; // re-serializing may add a Content-Length field
    for (const auto& m : t.messages) {
        auto wire = http::serialize_head(m);
        const bool bodiless = head || http::status_has_no_body(m.status);
        if (!bodiless) wire += reframe_body(m);
        const auto back = parse_stream<http::response_parser, http::response>(wire, {}, roomy, configure);
        CALLSAVVY_FUZZ_CHECK(!back.ec);
        CALLSAVVY_FUZZ_CHECK(back.messages.size() == 1);
        auto expected = m;
        if (expected.reason.empty()) expected.reason = http::reason_phrase(m.status);
        if (!http::status_has_no_body(m.status) && m.headers.count("Content-Length") == 0 &&
            m.headers.count("Transfer-Encoding") == 0)
            expected.headers.add("Content-Length", std::to_string(m.body.size()));
        CALLSAVVY_FUZZ_CHECK(back.messages[0] == expected);
    }
    return 0;
}

// libFuzzer target: http::request_parser. Arbitrary bytes in arbitrary splits must parse to the same
// messages (or the same error) as in one piece, and each parsed request, serialized again, must parse back
// to itself.
#include "fuzz_http_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace callsavvy_fuzz;
    const auto none = [](http::request_parser&) {};
    const auto t = check_split_invariance<http::request_parser, http::request>(data, size, none);

    http::limits roomy; // re-serializing may add a Content-Length field
    for (const auto& m : t.messages) {
        const auto wire = http::serialize_head(m) + reframe_body(m);
        const auto back = parse_stream<http::request_parser, http::request>(wire, {}, roomy, none);
        CALLSAVVY_FUZZ_CHECK(!back.ec);
        CALLSAVVY_FUZZ_CHECK(back.messages.size() == 1);
        auto expected = m;
        if (m.headers.count("Content-Length") == 0 && m.headers.count("Transfer-Encoding") == 0)
            expected.headers.add("Content-Length", std::to_string(m.body.size()));
        CALLSAVVY_FUZZ_CHECK(back.messages[0] == expected);
    }
    return 0;
}

// Shared by the HTTP parser fuzz targets: feeds fuzz input in splits derived from the input itself and
// checks the invariants every parse must keep.
#pragma once

#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace callsavvy_fuzz {

namespace http = callsavvy::http;
using callsavvy::error_code;

[[noreturn]] inline void violated(const char* what) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
}
#define CALLSAVVY_FUZZ_CHECK(cond)                                                                             \
    do {                                                                                                       \
        if (!(cond)) ::callsavvy_fuzz::violated(#cond);                                                        \
    } while (0)

// Small limits so the fuzzer reaches them.
inline http::limits fuzz_limits() {
    http::limits l;
    l.max_start_line = 256;
    l.max_header_count = 16;
    l.max_header_bytes = 1024;
    l.max_body_bytes = 4096;
    l.max_chunk_line = 64;
    return l;
}

// What parsing a connection's bytes produced: the messages, then the error or the end.
template <class Message>
struct transcript {
    std::vector<Message> messages;
    error_code ec;
    bool operator==(const transcript&) const = default;
};

// Feeds `wire` as a connection would, in pieces whose sizes cycle through `sizes` (0 means: the rest), and
// calls finish() at the end. `configure` runs on the parser before every message.
template <class Parser, class Message, class Configure>
transcript<Message> parse_stream(std::string_view wire, const std::vector<std::size_t>& sizes, http::limits l,
                                 Configure configure) {
    transcript<Message> t;
    Parser p(l);
    configure(p);
    std::size_t k = 0;
    while (!wire.empty()) {
        const auto want = sizes.empty() || sizes[k % sizes.size()] == 0 ? wire.size() : sizes[k % sizes.size()];
        ++k;
        auto piece = wire.substr(0, want);
        while (!piece.empty()) {
            const auto n = p.feed(piece, t.ec);
            CALLSAVVY_FUZZ_CHECK(n <= piece.size());
            if (t.ec) {
                CALLSAVVY_FUZZ_CHECK(p.failed() && !p.done());
                return t;
            }
            // Without an error, a feed stops early only at the end of a message.
            CALLSAVVY_FUZZ_CHECK(n == piece.size() || p.done());
            piece.remove_prefix(n);
            wire.remove_prefix(n);
            if (p.done()) {
                CALLSAVVY_FUZZ_CHECK(p.headers_done());
                t.messages.push_back(p.release());
                p.reset();
                configure(p);
            }
        }
    }
    p.finish(t.ec);
    if (!t.ec && p.done()) t.messages.push_back(p.release());
    CALLSAVVY_FUZZ_CHECK(!t.ec || !p.done());
    return t;
}

// Splits derived from the input: the first byte picks the pattern, the rest is the connection's bytes.
inline std::vector<std::vector<std::size_t>> splits_from(std::uint8_t selector) {
    std::vector<std::vector<std::size_t>> splits;
    splits.push_back({1});                            // byte by byte
    splits.push_back({static_cast<std::size_t>(selector % 7 + 2), static_cast<std::size_t>(selector / 7 % 5 + 1)});
    splits.push_back({static_cast<std::size_t>(selector) + 1, 0});  // a cut, then the rest
    return splits;
}

// The same bytes must give the same messages and the same error, whatever the split.
template <class Parser, class Message, class Configure>
transcript<Message> check_split_invariance(const std::uint8_t* data, std::size_t size, Configure configure) {
    const std::uint8_t selector = size > 0 ? data[0] : 0;
    const std::string_view wire(reinterpret_cast<const char*>(data) + (size > 0 ? 1 : 0), size > 0 ? size - 1 : 0);
    const auto whole = parse_stream<Parser, Message>(wire, {}, fuzz_limits(), configure);
    for (const auto& split : splits_from(selector)) {
        const auto again = parse_stream<Parser, Message>(wire, split, fuzz_limits(), configure);
        CALLSAVVY_FUZZ_CHECK(again == whole);
    }
    return whole;
}

// The body as the sender would frame it again, following the message's own framing fields.
template <class Message>
std::string reframe_body(const Message& m) {
    if (m.headers.count("Transfer-Encoding") == 0) return m.body;
    const std::string_view body = m.body;
    std::string out;
    // two chunks when possible, to exercise the chunk boundaries
    const auto half = body.size() / 2;
    out += http::chunk(body.substr(0, half));
    out += http::chunk(body.substr(half));
    out += http::last_chunk(m.trailers);
    return out;
}

} // namespace callsavvy_fuzz

// callsavvy/detail/base64.hpp — RFC 4648 base64 (standard alphabet, with padding), for Basic proxy
// credentials and webhook signatures. Decoding is strict: only canonical encodings are accepted.
#pragma once

#include <callsavvy/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

inline constexpr std::string_view base64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

inline std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k])); };
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
        out.push_back(base64_alphabet[v >> 18 & 63]);
        out.push_back(base64_alphabet[v >> 12 & 63]);
        out.push_back(base64_alphabet[v >> 6 & 63]);
        out.push_back(base64_alphabet[v & 63]);
    }
    if (const auto left = in.size() - i; left > 0) {
        const std::uint32_t v = byte(i) << 16 | (left == 2 ? byte(i + 1) << 8 : 0);
        out.push_back(base64_alphabet[v >> 18 & 63]);
        out.push_back(base64_alphabet[v >> 12 & 63]);
        out.push_back(left == 2 ? base64_alphabet[v >> 6 & 63] : '=');
        out.push_back('=');
    }
    return out;
}

/// nullopt unless `in` is the canonical padded encoding of some bytes: a multiple of 4 characters from the
/// standard alphabet, '=' only as the last one or two, and zero bits where padding leaves bits unused.
inline std::optional<std::string> base64_decode(std::string_view in) {
    static constexpr auto values = [] {
        std::array<std::int8_t, 256> t{};
        for (auto& v : t) v = -1;
        for (std::size_t k = 0; k < base64_alphabet.size(); ++k)
            t[static_cast<unsigned char>(base64_alphabet[k])] = static_cast<std::int8_t>(k);
        return t;
    }();
    if (in.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    if (!in.empty() && in.back() == '=') pad = in[in.size() - 2] == '=' ? 2 : 1;
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char c = in[i + k];
            if (last && k >= 4 - pad) {
                v <<= 6; // a padding position ('=' checked by the pad count above)
                continue;
            }
            const auto d = values[static_cast<unsigned char>(c)];
            if (d < 0) return std::nullopt;
            v = v << 6 | static_cast<std::uint32_t>(d);
        }
        out.push_back(static_cast<char>(v >> 16 & 0xff));
        if (last && pad == 2) {
            if ((v & 0xffff) != 0) return std::nullopt; // non-zero bits under the padding
            break;
        }
        out.push_back(static_cast<char>(v >> 8 & 0xff));
        if (last && pad == 1) {
            if ((v & 0xff) != 0) return std::nullopt;
            break;
        }
        out.push_back(static_cast<char>(v & 0xff));
    }
    return out;
}

} // namespace detail
CALLSAVVY_END_NAMESPACE

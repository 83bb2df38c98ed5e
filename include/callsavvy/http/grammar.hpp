// callsavvy/http/grammar.hpp — the character classes and small scanners of RFC 9110/9112 that the parser,
// the serializer and the URL parser share: token characters, field-value characters, ASCII case folding.
// Table-driven so that validating a header costs one load per byte.
#pragma once

#include <callsavvy/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE
namespace http {
namespace detail {

enum char_class : std::uint8_t {
    cc_tchar = 1,       // token character (RFC 9110 section 5.6.2)
    cc_field_value = 2, // field-vchar / SP / HTAB / obs-text (RFC 9110 section 5.5); also reason-phrase
    cc_target = 4,      // visible ASCII (0x21..0x7E): what a request target may hold
};

inline constexpr std::array<std::uint8_t, 256> char_classes = [] {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0x21; c <= 0x7e; ++c) t[c] |= cc_target | cc_field_value;
    for (int c = 0x80; c <= 0xff; ++c) t[c] |= cc_field_value;
    t[' '] |= cc_field_value;
    t['\t'] |= cc_field_value;
    for (int c = '0'; c <= '9'; ++c) t[c] |= cc_tchar;
    for (int c = 'a'; c <= 'z'; ++c) t[c] |= cc_tchar;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] |= cc_tchar;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] |= cc_tchar;
    return t;
}();

inline bool is_class(char c, char_class cls) noexcept {
    return (char_classes[static_cast<unsigned char>(c)] & cls) != 0;
}

inline bool all_of_class(std::string_view s, char_class cls) noexcept {
    for (char c : s)
        if (!is_class(c, cls)) return false;
    return true;
}

inline bool is_token(std::string_view s) noexcept { return !s.empty() && all_of_class(s, cc_tchar); }
inline bool is_field_value(std::string_view s) noexcept { return all_of_class(s, cc_field_value); }
inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

inline char to_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    return true;
}

inline std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

/// Calls f(element) for each non-empty, OWS-trimmed element of a comma-separated list (RFC 9110 section 5.6.1:
/// recipients ignore empty elements). Stops early and returns false when f returns false.
template <class F>
bool for_each_list_element(std::string_view list, F&& f) {
    while (true) {
        const auto comma = list.find(',');
        const auto element = trim_ows(list.substr(0, comma));
        if (!element.empty() && !f(element)) return false;
        if (comma == std::string_view::npos) return true;
        list.remove_prefix(comma + 1);
    }
}

} // namespace detail
} // namespace http
CALLSAVVY_END_NAMESPACE

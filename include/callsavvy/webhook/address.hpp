// callsavvy/webhook/address.hpp — IP addresses and CIDR ranges for the webhook source allow-list (spec §6):
// strict text parsing with errors that quote the offending text, and one 128-bit form in which an IPv4
// address and its IPv4-mapped IPv6 form (::ffff:a.b.c.d, what a dual-stack socket reports) are equal.
#pragma once

#include <callsavvy/config.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace webhook {

/// An IPv4 or IPv6 address. IPv4 is held as its IPv4-mapped IPv6 form, so `10.1.2.3` and `::ffff:10.1.2.3`
/// are the same address and match the same ranges.
class ip_address {
public:
    using bytes_type = std::array<std::uint8_t, 16>;

    ip_address() = default;
    static ip_address from_v6_bytes(const bytes_type& b) noexcept { return ip_address(b); }
    /// Fits asio::ip::address_v4::to_bytes() and address_v6::to_bytes() (arrays of unsigned char).
    static ip_address from_v4_bytes(const std::array<std::uint8_t, 4>& b) noexcept {
        bytes_type m{};
        m[10] = m[11] = 0xff;
        for (std::size_t i = 0; i < 4; ++i) m[12 + i] = b[i];
        return ip_address(m);
    }
    /// From an asio::ip::address (a template, so this header needs no Asio).
    template <class Address>
    static ip_address from(const Address& a) {
        return a.is_v4() ? from_v4_bytes(a.to_v4().to_bytes()) : from_v6_bytes(a.to_v6().to_bytes());
    }

    /// Dotted IPv4 (four decimal parts 0..255, no leading zeros) or IPv6 text (RFC 4291 section 2.2,
    /// lower or upper case, `::`, a trailing dotted IPv4). No brackets, ports or zone ids: nullopt.
    static std::optional<ip_address> parse(std::string_view text) {
        bytes_type b{};
        if (text.find(':') == std::string_view::npos) {
            std::array<std::uint8_t, 4> v4{};
            if (!parse_v4(text, v4)) return std::nullopt;
            return from_v4_bytes(v4);
        }
        if (!parse_v6(text, b)) return std::nullopt;
        return ip_address(b);
    }

    const bytes_type& bytes() const noexcept { return bytes_; }
    /// An IPv4 address (or its IPv4-mapped IPv6 form).
    bool is_v4() const noexcept {
        for (std::size_t i = 0; i < 10; ++i)
            if (bytes_[i] != 0) return false;
        return bytes_[10] == 0xff && bytes_[11] == 0xff;
    }

    /// Dotted form for IPv4, RFC 5952 form (lower case, the longest run of zero groups as `::`) otherwise.
    std::string str() const {
        if (is_v4()) {
            std::string s;
            for (std::size_t i = 12; i < 16; ++i) (s += std::to_string(bytes_[i])) += i < 15 ? "." : "";
            return s;
        }
        std::array<unsigned, 8> g{};
        for (std::size_t i = 0; i < 8; ++i) g[i] = static_cast<unsigned>(bytes_[2 * i] << 8 | bytes_[2 * i + 1]);
        std::size_t best = 8, best_len = 1; // only a run of two or more groups is compressed
        for (std::size_t i = 0; i < 8;) {
            std::size_t j = i;
            while (j < 8 && g[j] == 0) ++j;
            if (j - i > best_len) best = i, best_len = j - i;
            i = j == i ? i + 1 : j;
        }
        static constexpr std::string_view hex = "0123456789abcdef";
        std::string s;
        for (std::size_t i = 0; i < 8; ++i) {
            if (i == best) {
                s += "::";
                i += best_len - 1;
                continue;
            }
            if (!s.empty() && s.back() != ':') s += ':';
            bool lead = true;
            for (int shift = 12; shift >= 0; shift -= 4) {
                const auto d = (g[i] >> shift) & 0xf;
                if (lead && d == 0 && shift > 0) continue;
                lead = false;
                s += hex[d];
            }
        }
        return s;
    }

    friend bool operator==(const ip_address&, const ip_address&) = default;

private:
    explicit ip_address(const bytes_type& b) noexcept : bytes_(b) {}

    static bool parse_v4(std::string_view s, std::array<std::uint8_t, 4>& out) noexcept {
        std::size_t part = 0, i = 0;
        while (part < 4) {
            const std::size_t start = i;
            unsigned v = 0;
            while (i < s.size() && i - start < 4 && s[i] >= '0' && s[i] <= '9') v = v * 10 + unsigned(s[i++] - '0');
            const std::size_t len = i - start;
            // A leading zero would be read as octal by inet_aton: refusing it keeps one meaning.
            if (len == 0 || len > 3 || v > 255 || (len > 1 && s[start] == '0')) return false;
            out[part++] = static_cast<std::uint8_t>(v);
            if (part < 4) {
                if (i >= s.size() || s[i] != '.') return false;
                ++i;
            }
        }
        return i == s.size();
    }

    static int hex_digit(char c) noexcept {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    static bool parse_v6(std::string_view s, bytes_type& out) noexcept {
        std::array<unsigned, 8> g{};
        std::size_t n = 0; // groups read
        constexpr std::size_t nowhere = static_cast<std::size_t>(-1);
        std::size_t gap = nowhere; // the group index where `::` stands
        std::size_t i = 0;
        if (s.starts_with("::")) {
            gap = 0;
            i = 2;
        } else if (s.starts_with(":")) {
            return false;
        }
        while (i < s.size()) {
            if (n == 8) return false;
            const std::string_view rest = s.substr(i);
            if (rest.find(':') == std::string_view::npos && rest.find('.') != std::string_view::npos) {
                std::array<std::uint8_t, 4> v4{};
                if (n > 6 || !parse_v4(rest, v4)) return false;
                g[n++] = unsigned(v4[0]) << 8 | v4[1];
                g[n++] = unsigned(v4[2]) << 8 | v4[3];
                break;
            }
            std::size_t j = i;
            unsigned v = 0;
            while (j < s.size() && j - i < 5 && hex_digit(s[j]) >= 0) v = v * 16 + unsigned(hex_digit(s[j++]));
            if (j == i || j - i > 4) return false;
            g[n++] = v;
            if (j == s.size()) break;
            if (s[j] != ':') return false;
            if (j + 1 < s.size() && s[j + 1] == ':') {
                if (gap != nowhere) return false; // a second `::`
                gap = n;
                i = j + 2;
            } else {
                i = j + 1;
                if (i == s.size()) return false; // a trailing single colon
            }
        }
        if (gap == nowhere ? n != 8 : n > 7) return false;
        std::array<unsigned, 8> full{};
        const std::size_t tail = gap == nowhere ? 0 : n - gap;
        for (std::size_t k = 0; k < n - tail; ++k) full[k] = g[k];
        for (std::size_t k = 0; k < tail; ++k) full[8 - tail + k] = g[gap + k];
        for (std::size_t k = 0; k < 8; ++k) {
            out[2 * k] = static_cast<std::uint8_t>(full[k] >> 8);
            out[2 * k + 1] = static_cast<std::uint8_t>(full[k] & 0xff);
        }
        return true;
    }

    bytes_type bytes_{};
};

/// A CIDR range: `10.0.0.0/8`, `2001:db8::/32`, `::1/128`; a bare address is /32 (IPv4) or /128 (IPv6).
class address_range {
public:
    /// nullopt, with `why` naming the text and the fault, when `text` is not a range. Bits set beyond the
    /// prefix (`10.1.2.3/8`) are refused rather than masked: in an allow-list they are more likely a typo
    /// than a wish, and the error says which network was probably meant.
    static std::optional<address_range> parse(std::string_view text, std::string& why) {
        const auto quoted = "\"" + std::string(text) + "\": ";
        const auto slash = text.find('/');
        const auto addr_text = text.substr(0, slash);
        const auto addr = ip_address::parse(addr_text);
        if (!addr) {
            why = quoted + "not an IPv4 or IPv6 address";
            return std::nullopt;
        }
        // The family as written decides the prefix's scale: an IPv4 /8 is the mapped form's /104.
        const bool v4 = addr_text.find(':') == std::string_view::npos;
        const unsigned max = v4 ? 32 : 128;
        unsigned written = max;
        if (slash != std::string_view::npos) {
            const auto p = text.substr(slash + 1);
            unsigned v = 0;
            const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
            // Digits only, at most three, no leading zero: "/08" or "/+8" is more likely a slip than an 8.
            const bool digits =
                ec == std::errc{} && end == p.data() + p.size() && p.size() <= 3 && (p.size() == 1 || p[0] != '0');
            if (!digits) {
                why = quoted + "the prefix length is not a number from 0 to " + std::to_string(max);
                return std::nullopt;
            }
            if (v > max) {
                why = quoted + "prefix length " + std::to_string(v) + " is above " + std::to_string(max);
                return std::nullopt;
            }
            written = v;
        }
        address_range r(*addr, v4 ? written + 96 : written, v4);
        const auto network = r.masked(*addr);
        if (network != *addr) {
            why = quoted + "bits are set beyond the prefix length (the network is " + network.str() + "/" +
                  std::to_string(written) + ")";
            return std::nullopt;
        }
        return r;
    }

    bool contains(const ip_address& a) const noexcept { return masked(a) == base_; }
    const ip_address& network() const noexcept { return base_; }
    /// The prefix length as written (0..32 for an IPv4 range).
    unsigned prefix_length() const noexcept { return written_v4_ ? prefix_ - 96 : prefix_; }
    std::string str() const { return base_.str() + "/" + std::to_string(prefix_length()); }

private:
    address_range(const ip_address& base, unsigned prefix, bool v4) : base_(base), prefix_(prefix), written_v4_(v4) {}

    ip_address masked(const ip_address& a) const noexcept {
        auto b = a.bytes();
        for (std::size_t i = 0; i < 16; ++i) {
            const unsigned keep = prefix_ >= 8 * (i + 1) ? 8 : prefix_ > 8 * i ? prefix_ - 8 * i : 0;
            b[i] = static_cast<std::uint8_t>(b[i] & (0xff00u >> keep));
        }
        return ip_address::from_v6_bytes(b);
    }

    ip_address base_{};
    unsigned prefix_ = 128; ///< on the 128-bit form
    bool written_v4_ = false;
};

/// A set of ranges (an allow-list, the trusted proxies). An IPv6 range covering ::ffff:0:0/96 (such as
/// `::/0`) covers every IPv4 address too, as a dual-stack socket sees them.
class address_set {
public:
    address_set() = default;

    /// nullopt, with `why` quoting the first bad entry, when one is not a range.
    static std::optional<address_set> parse(std::span<const std::string> texts, std::string& why) {
        address_set s;
        s.ranges_.reserve(texts.size());
        for (const auto& t : texts) {
            auto r = address_range::parse(t, why);
            if (!r) return std::nullopt;
            s.ranges_.push_back(*r);
        }
        return s;
    }

    bool contains(const ip_address& a) const noexcept {
        for (const auto& r : ranges_)
            if (r.contains(a)) return true;
        return false;
    }
    bool empty() const noexcept { return ranges_.empty(); }
    std::span<const address_range> ranges() const noexcept { return ranges_; }

private:
    std::vector<address_range> ranges_;
};

} // namespace webhook
CALLSAVVY_END_NAMESPACE

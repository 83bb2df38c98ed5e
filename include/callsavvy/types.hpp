// callsavvy/types.hpp — the value types of the typed API, chosen so that no value the server sends can make
// a response fail to decode: enumerations are open (a value the catalog does not list is kept and
// compares unequal to every known one) and timestamps keep the server's text, parsed only on request.
#pragma once

#include <callsavvy/config.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>

CALLSAVVY_BEGIN_NAMESPACE

/// An enumerated string value (a status, a priority, a direction, ...). `Tag::values` lists the values the
/// spec documents; requests are validated against them, responses keep whatever arrived.
template <class Tag>
class open_enum {
public:
    open_enum() = default;
    open_enum(std::string v) : value_(std::move(v)) {} // NOLINT(google-explicit-constructor): reads like a string
    open_enum(const char* v) : value_(v) {}            // NOLINT(google-explicit-constructor)

    const std::string& str() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }
    /// One of the values the spec documents.
    bool is_known() const noexcept {
        for (std::string_view v : Tag::values)
            if (v == value_) return true;
        return false;
    }
    static constexpr const auto& known_values() noexcept { return Tag::values; }

    friend bool operator==(const open_enum& a, const open_enum& b) noexcept { return a.value_ == b.value_; }
    /// Compares with text (`status == "open"`): a template, so a string literal or std::string is an exact
    /// match here rather than an ambiguous conversion to open_enum or to std::string_view.
    template <class S>
    requires(!std::is_same_v<S, open_enum> && std::is_convertible_v<const S&, std::string_view>) friend bool
    operator==(const open_enum& a, const S& b) noexcept {
        return a.value_ == std::string_view(b);
    }
    friend std::ostream& operator<<(std::ostream& os, const open_enum& e) { return os << e.value_; }

private:
    std::string value_;
};

/// An ISO-8601 UTC timestamp as the server sent it (`2026-11-25T06:21:24Z`). `to_time()` parses the
/// documented form; any other text is kept as is and `to_time()` returns nullopt.
class timestamp {
public:
    using time_point = std::chrono::sys_seconds;

    timestamp() = default;
    timestamp(std::string text) : text_(std::move(text)) {} // NOLINT(google-explicit-constructor)
    timestamp(const char* text) : text_(text) {}            // NOLINT(google-explicit-constructor)
    explicit timestamp(time_point t) : text_(format(t)) {}

    const std::string& str() const noexcept { return text_; }
    bool empty() const noexcept { return text_.empty(); }

    std::optional<time_point> to_time() const noexcept {
        // YYYY-MM-DDTHH:MM:SS followed by Z (fractions of a second are accepted and dropped)
        const std::string_view s = text_;
        if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
            s[16] != ':')
            return std::nullopt;
        auto num = [&](std::size_t pos, std::size_t len, int& out) {
            out = 0;
            for (std::size_t i = pos; i < pos + len; ++i) {
                if (s[i] < '0' || s[i] > '9') return false;
                out = out * 10 + (s[i] - '0');
            }
            return true;
        };
        int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
        if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) || !num(17, 2, se))
            return std::nullopt;
        std::size_t pos = 19;
        if (s[pos] == '.') {
            ++pos;
            while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
        }
        if (pos + 1 != s.size() || (s[pos] != 'Z' && s[pos] != 'z')) return std::nullopt;
        const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                                              std::chrono::day{static_cast<unsigned>(d)}};
        if (!ymd.ok() || h > 23 || mi > 59 || se > 60) return std::nullopt;
        return std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{se};
    }

    static std::string format(time_point t) {
        const auto days = std::chrono::floor<std::chrono::days>(t);
        const std::chrono::year_month_day ymd{days};
        const std::chrono::hh_mm_ss<std::chrono::seconds> hms{t - days};
        char buf[32];
        // Cannot truncate: the widest output (a five-digit year and sign) is 21 characters.
        (void)std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                            static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                            static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                            static_cast<int>(hms.seconds().count()));
        return buf;
    }

    friend bool operator==(const timestamp& a, const timestamp& b) noexcept { return a.text_ == b.text_; }
    friend std::ostream& operator<<(std::ostream& os, const timestamp& t) { return os << t.text_; }

private:
    std::string text_;
};

CALLSAVVY_END_NAMESPACE

// callsavvy/api/rules.hpp — the validation rules of the endpoint catalog (spec §2 "Validation"), as types
// listed by each endpoint descriptor. The client checks a typed request before sending it; the mock
// server checks what it receives with the same rules, so the messages match the spec's exactly:
// `Missing required parameter: <name>` and `Invalid parameter: <name>`.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/types.hpp>

#include <boost/describe/members.hpp>
#include <boost/describe/modifiers.hpp>
#include <boost/mp11/algorithm.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace api {

/// The first rule a request breaks.
struct violation {
    enum class kind { missing, invalid };
    kind what = kind::invalid;
    std::string field{}; ///< the field's name, with the element path for nested fields (`contacts[2].phone`)
    /// The spec's message for it.
    std::string message() const {
        return (what == kind::missing ? "Missing required parameter: " : "Invalid parameter: ") + field;
    }
};

/// A string usable as a template argument (for the value a conditional rule compares with).
template <std::size_t N>
struct fixed_string {
    char chars[N]{};
    constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, chars); } // NOLINT(google-explicit-constructor)
    constexpr std::string_view view() const { return {chars, N - 1}; }
};

namespace detail {

template <class M>
struct member_traits;
template <class C, class T>
struct member_traits<T C::*> {
    using owner = C;
    using type = T;
};

/// The JSON name of a described member: spelled once, in the struct's description.
template <auto Member>
std::string_view name_of() {
    using C = typename member_traits<decltype(Member)>::owner;
    std::string_view name;
    boost::mp11::mp_for_each<boost::describe::describe_members<C, boost::describe::mod_public>>([&](auto d) {
        if constexpr (std::is_same_v<std::remove_cv_t<decltype(d.pointer)>, decltype(Member)>) {
            if (d.pointer == Member) name = d.name;
        }
    });
    return name;
}

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

/// Absent, null or the empty string is missing (spec §2); so is an empty list.
template <class T>
bool present(const T& v) {
    if constexpr (is_optional<T>::value) return v.has_value() && present(*v);
    else if constexpr (std::is_same_v<T, std::string>)
        return !v.empty();
    else if constexpr (requires { v.empty(); })
        return !v.empty();
    else
        return true;
}

template <class T>
const auto& value_of(const T& v) {
    if constexpr (is_optional<T>::value) return *v;
    else
        return v;
}

inline std::size_t code_points(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0; // count every byte that starts a code point
    return n;
}

inline std::optional<violation> missing(std::string field) {
    return violation{violation::kind::missing, std::move(field)};
}
inline std::optional<violation> invalid(std::string field) {
    return violation{violation::kind::invalid, std::move(field)};
}

inline std::string path(std::string_view prefix, std::string_view name) {
    return prefix.empty() ? std::string(name) : std::string(prefix) + "." + std::string(name);
}

} // namespace detail

/// The member must be present.
template <auto M>
struct required {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        if (!detail::present(r.*M)) return detail::missing(detail::path(prefix, detail::name_of<M>()));
        return std::nullopt;
    }
};

/// When present, the member must be one of the values its open_enum lists.
template <auto M>
struct known_value {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        if (detail::present(r.*M) && !detail::value_of(r.*M).is_known())
            return detail::invalid(detail::path(prefix, detail::name_of<M>()));
        return std::nullopt;
    }
};

/// When present, the text's length in code points is within [Min, Max].
template <auto M, std::size_t Min, std::size_t Max>
struct length {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        if (!detail::present(r.*M)) return std::nullopt;
        const std::size_t n = detail::code_points(detail::value_of(r.*M));
        if (n < Min || n > Max) return detail::invalid(detail::path(prefix, detail::name_of<M>()));
        return std::nullopt;
    }
};

/// When present, the list holds between Min and Max elements.
template <auto M, std::size_t Min, std::size_t Max>
struct count {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        if (!detail::present(r.*M)) return std::nullopt;
        const std::size_t n = detail::value_of(r.*M).size();
        if (n < Min || n > Max) return detail::invalid(detail::path(prefix, detail::name_of<M>()));
        return std::nullopt;
    }
};

/// When present, the integer is within [Min, Max].
template <auto M, std::int64_t Min, std::int64_t Max>
struct range {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        if (!detail::present(r.*M)) return std::nullopt;
        const auto v = static_cast<std::int64_t>(detail::value_of(r.*M));
        if (v < Min || v > Max) return detail::invalid(detail::path(prefix, detail::name_of<M>()));
        return std::nullopt;
    }
};

/// M is required when the member Cond equals Value ("message required when message_type is tts").
template <auto M, auto Cond, fixed_string Value>
struct required_if {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        const auto& c = r.*Cond;
        if (detail::present(c) && detail::value_of(c) == Value.view() && !detail::present(r.*M))
            return detail::missing(detail::path(prefix, detail::name_of<M>()));
        return std::nullopt;
    }
};

/// Exactly one of A and B: neither is a missing A, both an invalid A (the first field the rule names).
template <auto A, auto B>
struct exactly_one {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        const bool a = detail::present(r.*A);
        const bool b = detail::present(r.*B);
        if (!a && !b) return detail::missing(detail::path(prefix, detail::name_of<A>()));
        if (a && b) return detail::invalid(detail::path(prefix, detail::name_of<A>()));
        return std::nullopt;
    }
};

/// At least one of A and B: neither is a missing A.
template <auto A, auto B>
struct at_least_one {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        if (!detail::present(r.*A) && !detail::present(r.*B))
            return detail::missing(detail::path(prefix, detail::name_of<A>()));
        return std::nullopt;
    }
};

template <class Rules, class R>
std::optional<violation> check_all(const R& r, std::string_view prefix = {});

/// Every element of the list M satisfies ElementRules (a std::tuple of rules).
template <auto M, class ElementRules>
struct each {
    template <class R>
    static std::optional<violation> check(const R& r, std::string_view prefix) {
        if (!detail::present(r.*M)) return std::nullopt;
        const auto& list = detail::value_of(r.*M);
        const std::string base = detail::path(prefix, detail::name_of<M>());
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (auto v = check_all<ElementRules>(list[i], base + "[" + std::to_string(i) + "]")) return v;
        }
        return std::nullopt;
    }
};

/// A list endpoint's rules: `page` >= 1 and `per_page` in 1..100, then its own.
template <class R, class... Rules>
using list_rules = std::tuple<range<&R::page, 1, INT32_MAX>, range<&R::per_page, 1, 100>, Rules...>;

/// Checks the rules in order; the first violation wins.
template <class Rules, class R>
std::optional<violation> check_all(const R& r, std::string_view prefix) {
    std::optional<violation> found;
    std::apply([&](auto... rule) { ((found ? void() : void(found = decltype(rule)::check(r, prefix))), ...); },
               Rules{});
    return found;
}

} // namespace api
CALLSAVVY_END_NAMESPACE

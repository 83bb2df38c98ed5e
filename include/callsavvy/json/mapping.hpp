// callsavvy/json/mapping.hpp — the one JSON mapping of the typed API, on Boost.JSON + Boost.Describe.
// Encoding omits absent optionals and appends a struct's `extra` members as given. Decoding never fails
// on what an evolving API may do (missing fields stay empty, unknown fields land in `extra`, numbers may
// arrive as numeric strings) and fails on what is really wrong (a present value of the wrong type), with
// the path of the field. Boost.JSON 1.81's own described-struct conversion demands every key, so it is
// not used.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/types.hpp>

#include <boost/describe/members.hpp>
#include <boost/describe/modifiers.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <boost/mp11/algorithm.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace json_mapping {

/// Where and why a decode failed: `path` like `tickets[3].created_at`.
struct decode_error {
    std::string path{};
    std::string reason{};
    /// Input, not output: decode as a server checks a request (no numeric strings for numbers, no numbers
    /// for text) instead of as a client reads a response (lenient about both).
    bool strict_types = false;
    std::string message() const { return "field " + (path.empty() ? std::string("<data>") : path) + ": " + reason; }
};

template <class T>
inline constexpr bool is_described_v = boost::describe::has_describe_members<T>::value;

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_open_enum : std::false_type {};
template <class Tag>
struct is_open_enum<open_enum<Tag>> : std::true_type {};

template <class T>
concept has_extra = requires(T t) {
    { t.extra } -> std::same_as<boost::json::object&>;
};

template <class T>
using members_of = boost::describe::describe_members<T, boost::describe::mod_public>;

// ---- encoding ----

template <class T>
boost::json::value encode(const T& v);

template <class T>
void encode_into(const T& v, boost::json::object& out) {
    boost::mp11::mp_for_each<members_of<T>>([&](auto d) {
        const auto& m = v.*d.pointer;
        using M = std::remove_cvref_t<decltype(m)>;
        if constexpr (is_optional<M>::value) {
            if (m) out[d.name] = encode(*m);
        } else {
            out[d.name] = encode(m);
        }
    });
    if constexpr (has_extra<T>) {
        for (const auto& kv : v.extra) out[kv.key()] = kv.value();
    }
}

template <class T>
boost::json::value encode(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
        return boost::json::value(v);
    } else if constexpr (std::is_integral_v<T>) {
        return boost::json::value(static_cast<std::int64_t>(v));
    } else if constexpr (std::is_floating_point_v<T>) {
        return boost::json::value(static_cast<double>(v));
    } else if constexpr (std::is_same_v<T, std::string>) {
        return boost::json::value(boost::json::string_view(v));
    } else if constexpr (is_open_enum<T>::value || std::is_same_v<T, timestamp>) {
        return boost::json::value(boost::json::string_view(v.str()));
    } else if constexpr (std::is_same_v<T, boost::json::object> || std::is_same_v<T, boost::json::value>) {
        return boost::json::value(v);
    } else if constexpr (is_optional<T>::value) {
        return v ? encode(*v) : boost::json::value(nullptr);
    } else if constexpr (is_vector<T>::value) {
        boost::json::array a;
        a.reserve(v.size());
        for (const auto& e : v) a.push_back(encode(e));
        return a;
    } else {
        static_assert(is_described_v<T>,
                      "callsavvy: no JSON mapping for this type; describe it with BOOST_DESCRIBE_STRUCT");
        boost::json::object o;
        encode_into(v, o);
        return o;
    }
}

// ---- decoding ----

/// The path of the field being decoded, built only when a failure needs it.
struct path_segment {
    const path_segment* parent = nullptr;
    std::string_view name{};
    std::size_t index = 0;
    bool is_index = false;

    std::string str() const {
        std::string s = parent != nullptr ? parent->str() : std::string();
        if (is_index) {
            s += '[' + std::to_string(index) + ']';
        } else if (!name.empty()) {
            if (!s.empty()) s += '.';
            s += name;
        }
        return s;
    }
};

inline bool fail(const path_segment& at, std::string reason, decode_error& err) {
    err.path = at.str();
    err.reason = std::move(reason);
    return false;
}

inline const char* kind_name(const boost::json::value& v) {
    switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return "a number";
    case boost::json::kind::string: return "a string";
    case boost::json::kind::array: return "an array";
    case boost::json::kind::object: return "an object";
    }
    return "a value";
}

template <class T>
bool decode(const boost::json::value& in, T& out, const path_segment& at, decode_error& err);

template <class I>
bool decode_integer(const boost::json::value& in, I& out, const path_segment& at, decode_error& err) {
    std::int64_t n = 0;
    if (const auto* p = in.if_int64()) {
        n = *p;
    } else if (const auto* u = in.if_uint64()) {
        if (*u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return fail(at, "integer out of range", err);
        n = static_cast<std::int64_t>(*u);
    } else if (const auto* d = in.if_double(); d != nullptr && !err.strict_types) {
        if (!std::isfinite(*d) || std::trunc(*d) != *d || std::fabs(*d) > 9.0e15)
            return fail(at, "expected an integer, got a fractional number", err);
        n = static_cast<std::int64_t>(*d);
    } else if (const auto* s = in.if_string(); s != nullptr && !err.strict_types) {
        // Numbers may arrive as numeric strings (spec §2).
        const char* b = s->data();
        const char* e = b + s->size();
        auto [p, ec] = std::from_chars(b, e, n);
        if (ec != std::errc{} || p != e || b == e)
            return fail(at, "expected an integer, got a non-numeric string", err);
    } else {
        return fail(at, std::string("expected an integer, got ") + kind_name(in), err);
    }
    if (n < static_cast<std::int64_t>(std::numeric_limits<I>::min()) ||
        n > static_cast<std::int64_t>(std::numeric_limits<I>::max()))
        return fail(at, "integer out of range", err);
    out = static_cast<I>(n);
    return true;
}

template <class T>
bool decode_object(const boost::json::object& in, T& out, const path_segment& at, decode_error& err) {
    bool ok = true;
    boost::mp11::mp_for_each<members_of<T>>([&](auto d) {
        if (!ok) return;
        const auto* v = in.if_contains(d.name);
        if (v == nullptr || v->is_null()) return; // missing fields stay empty
        const path_segment here{&at, d.name, 0, false};
        ok = decode(*v, out.*d.pointer, here, err);
    });
    if (!ok) return false;
    if constexpr (has_extra<T>) {
        for (const auto& kv : in) {
            bool known = false;
            boost::mp11::mp_for_each<members_of<T>>([&](auto d) { known = known || kv.key() == d.name; });
            if (!known) out.extra[kv.key()] = kv.value();
        }
    }
    return true;
}

template <class T>
bool decode(const boost::json::value& in, T& out, const path_segment& at, decode_error& err) {
    if constexpr (std::is_same_v<T, bool>) {
        if (const auto* b = in.if_bool()) {
            out = *b;
            return true;
        }
        if (const auto* s = in.if_string(); s != nullptr && !err.strict_types) {
            if (*s == "true" || *s == "1") return out = true, true;
            if (*s == "false" || *s == "0") return out = false, true;
        }
        if (!err.strict_types && in.is_int64() && (in.get_int64() == 0 || in.get_int64() == 1))
            return out = in.get_int64() == 1, true;
        return fail(at, std::string("expected a boolean, got ") + kind_name(in), err);
    } else if constexpr (std::is_integral_v<T>) {
        return decode_integer(in, out, at, err);
    } else if constexpr (std::is_floating_point_v<T>) {
        if (in.is_number()) return out = static_cast<T>(in.to_number<double>()), true;
        if (const auto* s = in.if_string()) {
            double d = 0;
            auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), d);
            if (ec == std::errc{} && p == s->data() + s->size() && !s->empty()) return out = static_cast<T>(d), true;
        }
        return fail(at, std::string("expected a number, got ") + kind_name(in), err);
    } else if constexpr (std::is_same_v<T, std::string> || is_open_enum<T>::value || std::is_same_v<T, timestamp>) {
        if (const auto* s = in.if_string()) {
            out = T(std::string(s->data(), s->size()));
            return true;
        }
        if (err.strict_types) return fail(at, std::string("expected a string, got ") + kind_name(in), err);
        // A number where text is expected is kept as its text (ids and amounts are sometimes numbers).
        if (in.is_int64()) return out = T(std::to_string(in.get_int64())), true;
        if (in.is_uint64()) return out = T(std::to_string(in.get_uint64())), true;
        if (in.is_double()) {
            char buf[32];
            auto [p, ec] = std::to_chars(buf, buf + sizeof buf, in.get_double());
            (void)ec;
            return out = T(std::string(buf, p)), true;
        }
        return fail(at, std::string("expected a string, got ") + kind_name(in), err);
    } else if constexpr (std::is_same_v<T, boost::json::value>) {
        out = in;
        return true;
    } else if constexpr (std::is_same_v<T, boost::json::object>) {
        if (const auto* o = in.if_object()) return out = *o, true;
        return fail(at, std::string("expected an object, got ") + kind_name(in), err);
    } else if constexpr (is_optional<T>::value) {
        typename T::value_type v{};
        if (!decode(in, v, at, err)) return false;
        out = std::move(v);
        return true;
    } else if constexpr (is_vector<T>::value) {
        const auto* a = in.if_array();
        if (a == nullptr) return fail(at, std::string("expected an array, got ") + kind_name(in), err);
        out.clear();
        out.reserve(a->size());
        for (std::size_t i = 0; i < a->size(); ++i) {
            const path_segment here{&at, {}, i, true};
            typename T::value_type e{};
            if (!decode((*a)[i], e, here, err)) return false;
            out.push_back(std::move(e));
        }
        return true;
    } else {
        static_assert(is_described_v<T>,
                      "callsavvy: no JSON mapping for this type; describe it with BOOST_DESCRIBE_STRUCT");
        const auto* o = in.if_object();
        if (o == nullptr) return fail(at, std::string("expected an object, got ") + kind_name(in), err);
        return decode_object(*o, out, at, err);
    }
}

} // namespace json_mapping

/// Encodes a described struct (requests): absent optionals omitted, `extra` members appended as given.
template <class T>
boost::json::object to_json(const T& v) {
    boost::json::object o;
    json_mapping::encode_into(v, o);
    return o;
}

/// Decodes a described struct (responses). Returns false and fills `err` (with the field path) when a
/// present value has the wrong type; missing fields stay empty and unknown ones are kept in `extra`.
template <class T>
bool from_json(const boost::json::object& in, T& out, json_mapping::decode_error& err) {
    return json_mapping::decode_object(in, out, json_mapping::path_segment{}, err);
}

CALLSAVVY_END_NAMESPACE

// callsavvy/http/fields.hpp — the header (and trailer) fields of an HTTP message: an ordered list with
// case-insensitive names that keeps duplicates, as they arrived or as they will be sent.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/http/grammar.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace http {

/// One field line. The parser stores the value without its surrounding whitespace.
struct field {
    std::string name{};
    std::string value{};

    friend bool operator==(const field&, const field&) = default;
};

/// Ordered fields; lookups compare names case-insensitively (ASCII) and see every duplicate.
class fields {
public:
    using const_iterator = std::vector<field>::const_iterator;

    /// Appends a field, keeping any existing field of the same name.
    void add(std::string_view name, std::string_view value) {
        list_.push_back(field{std::string(name), std::string(value)});
    }

    /// Replaces every field named `name` with one field (spelled `name`), at the position of the first or at the end.
    void set(std::string_view name, std::string_view value) {
        auto it =
            std::find_if(list_.begin(), list_.end(), [&](const field& f) { return detail::iequals(f.name, name); });
        if (it == list_.end()) {
            add(name, value);
            return;
        }
        it->name.assign(name);
        it->value.assign(value);
        list_.erase(
            std::remove_if(std::next(it), list_.end(), [&](const field& f) { return detail::iequals(f.name, name); }),
            list_.end());
    }

    /// Removes every field named `name`.
    void erase(std::string_view name) {
        list_.erase(
            std::remove_if(list_.begin(), list_.end(), [&](const field& f) { return detail::iequals(f.name, name); }),
            list_.end());
    }

    /// The value of the first field named `name`.
    std::optional<std::string_view> find(std::string_view name) const {
        for (const auto& f : list_)
            if (detail::iequals(f.name, name)) return std::string_view(f.value);
        return std::nullopt;
    }

    /// How many fields are named `name`.
    std::size_t count(std::string_view name) const {
        return static_cast<std::size_t>(
            std::count_if(list_.begin(), list_.end(), [&](const field& f) { return detail::iequals(f.name, name); }));
    }

    /// Whether any field named `name` lists `token` among its comma-separated elements (case-insensitive),
    /// e.g. contains_token("Connection", "close").
    bool contains_token(std::string_view name, std::string_view token) const {
        for (const auto& f : list_) {
            if (!detail::iequals(f.name, name)) continue;
            const bool found = !detail::for_each_list_element(
                f.value, [&](std::string_view element) { return !detail::iequals(element, token); });
            if (found) return true;
        }
        return false;
    }

    const_iterator begin() const noexcept { return list_.begin(); }
    const_iterator end() const noexcept { return list_.end(); }
    std::size_t size() const noexcept { return list_.size(); }
    bool empty() const noexcept { return list_.empty(); }
    void clear() noexcept { list_.clear(); }
    void reserve(std::size_t n) { list_.reserve(n); }
    const field& operator[](std::size_t i) const { return list_[i]; }

    /// Same fields in the same order with the same spelling.
    friend bool operator==(const fields&, const fields&) = default;

private:
    std::vector<field> list_;
};

} // namespace http
CALLSAVVY_END_NAMESPACE

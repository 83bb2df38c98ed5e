// callsavvy/api/catalog.hpp — the endpoint catalog at run time: one entry per descriptor of
// api/endpoints.hpp, for what picks an endpoint by its resource URI (the raw call's retry safety, the CLI,
// the mock server's routes, the README's table, the fuzzer).
#pragma once

#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/api/rules.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/json/mapping.hpp>

#include <boost/json/object.hpp>

#include <array>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace api {

/// The JSON key of a list endpoint's collection: the name of the member its descriptor names ("" for the
/// endpoints that are not lists).
template <endpoint E>
std::string_view collection_of() {
    std::string_view key;
    if constexpr (has_collection_v<E>) {
        boost::mp11::mp_for_each<boost::describe::describe_members<typename E::response, boost::describe::mod_public>>(
            [&](auto d) {
                using D = decltype(d);
                if constexpr (std::is_same_v<std::remove_cv_t<decltype(D::pointer)>,
                                             std::remove_cv_t<decltype(E::collection)>>) {
                    if (d.pointer == E::collection) key = d.name;
                }
            });
    }
    return key;
}

/// A request as the server checks it: a value of the wrong JSON type is invalid, then the rules apply.
template <endpoint E>
std::optional<violation> check_json_request(const boost::json::object& body, typename E::request* decoded = nullptr) {
    typename E::request req{};
    json_mapping::decode_error err;
    err.strict_types = true;
    if (!from_json(body, req, err)) {
        // The top-level field is what the spec's message names.
        std::string field = err.path.substr(0, err.path.find_first_of(".["));
        if (err.path.find('[') != std::string::npos && err.path.find('.') != std::string::npos) field = err.path;
        return violation{violation::kind::invalid, field};
    }
    auto v = check_all<typename E::rules>(req);
    if (!v && decoded != nullptr) *decoded = std::move(req);
    return v;
}

/// One endpoint, type-erased.
struct endpoint_info {
    std::string_view resource{};
    std::string_view title{};
    api::group group{};
    bool read_only = false;
    bool paginated = false;
    std::string_view collection{};
    std::optional<violation> (*check_request)(const boost::json::object& body) = nullptr;
    bool (*decode_response)(const boost::json::object& data, json_mapping::decode_error& err) = nullptr;
};

template <endpoint E>
endpoint_info make_endpoint_info() {
    endpoint_info i;
    i.resource = E::resource;
    i.title = E::title;
    i.group = E::group;
    i.read_only = E::read_only;
    i.paginated = is_paginated_v<E>;
    i.collection = collection_of<E>();
    i.check_request = [](const boost::json::object& body) { return check_json_request<E>(body); };
    i.decode_response = [](const boost::json::object& data, json_mapping::decode_error& err) {
        typename E::response r;
        return from_json(data, r, err);
    };
    return i;
}

/// Every endpoint, in the spec's order.
inline std::span<const endpoint_info> catalog() {
#define CALLSAVVY_API_INFO(name) make_endpoint_info<name>(),
    static const std::vector<endpoint_info> all{CALLSAVVY_API_ENDPOINTS(CALLSAVVY_API_INFO)};
#undef CALLSAVVY_API_INFO
    return all;
}

/// The endpoint with this resource URI, or nullptr.
inline const endpoint_info* find_endpoint(std::string_view resource) {
    for (const auto& e : catalog())
        if (e.resource == resource) return &e;
    return nullptr;
}

/// Calls f(E{}) for every descriptor E.
template <class F>
void for_each_endpoint(F&& f) {
// NOLINTNEXTLINE(bugprone-macro-parentheses): the argument is a type name; `(name){}` would not compile.
#define CALLSAVVY_API_VISIT(name) f(name{});
    CALLSAVVY_API_ENDPOINTS(CALLSAVVY_API_VISIT)
#undef CALLSAVVY_API_VISIT
}

} // namespace api
CALLSAVVY_END_NAMESPACE

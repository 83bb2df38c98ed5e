// libFuzzer target: the typed API's JSON mapping. Arbitrary bytes that parse as a JSON object are decoded
// as every endpoint's response (as a client reads the `data` object) and checked as every endpoint's
// request (as the mock server checks a body). Neither may crash, and both must keep their invariants:
//  - a failed decode says where and why (a reason, and a path for anything below the top level);
//  - a decoded response, encoded again, decodes again to the same encoding (nothing the mapping keeps
//    is lost or changed on a second pass);
//  - a request the server-side check accepts passes the client's rules too, and its re-encoding is
//    accepted again (what the client sends is what the server takes);
//  - the runtime catalog's entries agree with the typed descriptors.
#include <callsavvy/api/catalog.hpp>
#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/json/mapping.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

[[noreturn]] void violated(const char* what, std::string_view resource) {
    std::fprintf(stderr, "invariant violated for %.*s: %s\n", static_cast<int>(resource.size()), resource.data(), what);
    std::abort();
}
#define CALLSAVVY_FUZZ_CHECK(cond, resource)                                                                           \
    do {                                                                                                               \
        if (!(cond)) violated(#cond, resource);                                                                        \
    } while (0)

namespace api = callsavvy::api;
namespace json = boost::json;
using callsavvy::json_mapping::decode_error;

template <class E>
bool check_response(const json::object& data) {
    typename E::response r;
    decode_error err;
    const bool ok = callsavvy::from_json(data, r, err);
    if (!ok) {
        CALLSAVVY_FUZZ_CHECK(!err.reason.empty(), E::resource);
        CALLSAVVY_FUZZ_CHECK(!err.path.empty(), E::resource); // a top-level object always fails in a field
        CALLSAVVY_FUZZ_CHECK(!err.message().empty(), E::resource);
        return false;
    }
    const json::object once = callsavvy::to_json(r);
    typename E::response again;
    decode_error err2;
    CALLSAVVY_FUZZ_CHECK(callsavvy::from_json(once, again, err2), E::resource);
    CALLSAVVY_FUZZ_CHECK(callsavvy::to_json(again) == once, E::resource);
    return true;
}

template <class E>
void check_request(const json::object& body) {
    typename E::request req;
    const auto v = api::check_json_request<E>(body, &req);
    if (v) {
        CALLSAVVY_FUZZ_CHECK(!v->field.empty(), E::resource);
        return;
    }
    // Accepted by the server's check: the client's own rules agree, and the re-encoded request is accepted.
    CALLSAVVY_FUZZ_CHECK(!api::check_all<typename E::rules>(req), E::resource);
    CALLSAVVY_FUZZ_CHECK(!api::check_json_request<E>(callsavvy::to_json(req)), E::resource);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    json::error_code ec;
    const json::value v = json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec);
    if (ec || !v.is_object()) return 0;
    const json::object& o = v.get_object();

    // Through the typed descriptors...
    bool decoded[64] = {};
    std::size_t i = 0;
    api::for_each_endpoint([&](auto e) {
        using E = decltype(e);
        decoded[i++] = check_response<E>(o);
        check_request<E>(o);
    });
    // ... and through the runtime catalog, which must give the same verdicts.
    const auto all = api::catalog();
    CALLSAVVY_FUZZ_CHECK(all.size() == i, "catalog");
    for (std::size_t k = 0; k < all.size(); ++k) {
        decode_error err;
        CALLSAVVY_FUZZ_CHECK(all[k].decode_response(o, err) == decoded[k], all[k].resource);
        (void)all[k].check_request(o);
    }
    return 0;
}

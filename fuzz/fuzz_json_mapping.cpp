// libFuzzer target: the typed API's JSON mapping. Arbitrary bytes that parse as a JSON object are decoded
// as every endpoint's response (as a client reads the `data` object) and checked as every endpoint's
// request (as the mock server checks a body). Neither may crash, and both must keep their invariants:
//  - a failed decode says where and why (a reason, and a path for anything below the top level);
//  - a decoded response, encoded again, decodes again to the same encoding (nothing the mapping keeps
//    is lost or changed on a second pass);
//  - a request the server-side check accepts passes the client's rules too, and its re-encoding is
//    accepted again (what the client sends is what the server takes);
//  - the runtime catalog's entries agree with the typed descriptors.
// The same bytes are decoded as every webhook event (as they are and with `event` set to the event's name,
// so every event's fields are exercised whatever the input names) and as every lookup reply: a decode
// fails with a field or succeeds, an accepted event re-encodes and decodes to the same values, and the
// event catalog's check() gives the typed verdict.
#include <callsavvy/api/catalog.hpp>
#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/json/mapping.hpp>
#include <callsavvy/webhook/events.hpp>

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
namespace webhook = callsavvy::webhook;
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

template <class E>
void check_event(const json::object& body) {
    E e;
    decode_error err;
    const bool ok = webhook::decode(body, e, err);
    const auto* info = webhook::find_event(E::name);
    CALLSAVVY_FUZZ_CHECK(info != nullptr && info->number == E::number, E::name);
    CALLSAVVY_FUZZ_CHECK(info->check(body).has_value() == !ok, E::name);
    if (!ok) {
        CALLSAVVY_FUZZ_CHECK(!err.reason.empty() && !err.path.empty(), E::name);
        return;
    }
    CALLSAVVY_FUZZ_CHECK(e.raw == body, E::name);
    CALLSAVVY_FUZZ_CHECK(!e.extra.contains("event"), E::name);
    const json::object once = webhook::encode(e);
    E again;
    decode_error err2;
    CALLSAVVY_FUZZ_CHECK(webhook::decode(once, again, err2), E::name);
    CALLSAVVY_FUZZ_CHECK(webhook::encode(again) == once, E::name);
}

template <class R>
void check_reply(const json::object& body, std::string_view event) {
    R r;
    decode_error err;
    if (!webhook::decode_reply(body, r, err)) {
        CALLSAVVY_FUZZ_CHECK(!err.reason.empty() && !err.path.empty(), event);
        return;
    }
    const json::object once = webhook::encode_reply(r);
    R again;
    CALLSAVVY_FUZZ_CHECK(webhook::decode_reply(once, again, err), event);
    CALLSAVVY_FUZZ_CHECK(webhook::encode_reply(again) == once, event);
}

void check_events(const json::object& o) {
    std::size_t n = 0;
    webhook::for_each_event([&](auto ev) {
        using E = decltype(ev);
        ++n;
        check_event<E>(o);
        json::object named = o;
        named["event"] = E::name;
        check_event<E>(named);
        if constexpr (webhook::is_lookup_v<E>) check_reply<webhook::reply_t<E>>(o, E::name);
    });
    CALLSAVVY_FUZZ_CHECK(webhook::event_catalog().size() == n, "event catalog");
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
    check_events(o);
    return 0;
}

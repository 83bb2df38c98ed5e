// callsavvy/envelope.hpp — Callsavvy's response envelope (spec §1): {"resource", "status", "data"} on
// success and {"resource", "status", "message"} on error. The client checks it; the mock server builds it.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE

/// Checks an answer to a call of `resource`: on success returns no error and moves the `data` object into
/// `data`; otherwise returns the specific error and fills `d` (status, server message, raw body, detail).
inline error_code check_envelope(std::string_view resource, int http_status, std::string_view body,
                                 boost::json::object& data, diagnostics& d) {
    d.http_status = http_status;
    boost::system::error_code jec;
    boost::json::value v = boost::json::parse(body, jec);
    const boost::json::object* env = jec ? nullptr : v.if_object();
    if (env != nullptr) {
        if (const auto* m = env->if_contains("message"); m != nullptr && m->is_string())
            d.server_message = std::string(m->get_string());
    }
    if (http_status != 200) {
        d.body = std::string(body);
        return make_error_code(error_from_status(http_status));
    }
    if (jec) {
        d.body = std::string(body);
        d.detail = jec.message();
        return make_error_code(error::invalid_json);
    }
    if (env == nullptr) {
        d.body = std::string(body);
        d.detail = "the body is not a JSON object";
        return make_error_code(error::bad_envelope);
    }
    const auto* status = env->if_contains("status");
    if (status == nullptr || !status->is_string()) {
        d.body = std::string(body);
        d.detail = "missing \"status\"";
        return make_error_code(error::bad_envelope);
    }
    const auto* res = env->if_contains("resource");
    if (res == nullptr || !res->is_string()) {
        d.body = std::string(body);
        d.detail = "missing \"resource\"";
        return make_error_code(error::bad_envelope);
    }
    if (res->get_string() != resource) {
        d.body = std::string(body);
        d.detail = "the envelope names \"" + std::string(res->get_string()) + "\"";
        return make_error_code(error::resource_mismatch);
    }
    if (status->get_string() != "success") {
        d.body = std::string(body);
        d.detail = "status \"" + std::string(status->get_string()) + "\" with HTTP 200";
        return make_error_code(error::bad_envelope);
    }
    auto* payload = v.as_object().if_contains("data");
    if (payload == nullptr || !payload->is_object()) {
        d.body = std::string(body);
        d.detail = "missing \"data\" object";
        return make_error_code(error::bad_envelope);
    }
    data = std::move(payload->as_object());
    return {};
}

/// The success envelope as the server sends it.
inline std::string make_success_envelope(std::string_view resource, const boost::json::object& data) {
    boost::json::object env;
    env["resource"] = resource;
    env["status"] = "success";
    env["data"] = data;
    return boost::json::serialize(env);
}

/// The error envelope as the server sends it.
inline std::string make_error_envelope(std::string_view resource, std::string_view message) {
    boost::json::object env;
    env["resource"] = resource;
    env["status"] = "error";
    env["message"] = message;
    return boost::json::serialize(env);
}

CALLSAVVY_END_NAMESPACE

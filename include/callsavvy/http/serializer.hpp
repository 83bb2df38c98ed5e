// callsavvy/http/serializer.hpp — writes the head of a request or response (start line, fields, empty line)
// into one string; the body stays where it is, so the caller sends head and body in ONE gathered write.
// Also the pieces of a chunked body, for the mock server's chunked answers.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/http/error.hpp>
#include <callsavvy/http/grammar.hpp>
#include <callsavvy/http/message.hpp>

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

CALLSAVVY_BEGIN_NAMESPACE
namespace http {

// Every field name, field value, method, target and reason phrase is checked before anything is written:
// a value carrying CR or LF would otherwise inject header lines (or a whole second request). The
// error_code overloads report the first bad part (bad_method, bad_target, bad_version, bad_status_code,
// bad_field_name, bad_field_value) and leave `out` unchanged; the others throw callsavvy::system_error with it.
//
// Content-Length is appended from body.size() unless the message already has Content-Length or
// Transfer-Encoding (then the fields are sent as given), and never for a 1xx, 204 or 304 response.

namespace detail {

inline error_code check_fields(const fields& fs) {
    for (const auto& f : fs) {
        if (!is_token(f.name)) return http::error::bad_field_name;
        if (!is_field_value(f.value)) return http::error::bad_field_value;
    }
    return {};
}

inline void append_fields(const fields& fs, std::string& out) {
    for (const auto& f : fs) {
        out.append(f.name).append(": ").append(f.value).append("\r\n");
    }
}

inline void append_decimal(std::string& out, std::size_t n) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, r.ptr);
}

inline std::size_t fields_size(const fields& fs) {
    std::size_t n = 0;
    for (const auto& f : fs) n += f.name.size() + f.value.size() + 4;
    return n;
}

inline void finish_head(const fields& headers, bool add_length, std::size_t body_size, std::string& out) {
    append_fields(headers, out);
    if (add_length && headers.count("Content-Length") == 0 && headers.count("Transfer-Encoding") == 0) {
        out.append("Content-Length: ");
        append_decimal(out, body_size);
        out.append("\r\n");
    }
    out.append("\r\n");
}

inline const char* version_string(int version) noexcept { return version == 10 ? "HTTP/1.0" : "HTTP/1.1"; }

} // namespace detail

/// Appends the head of `req` to `out` (which keeps its capacity between messages), announcing a body of
/// `body_size` bytes: for a body written beside the head rather than held in req.body.
inline void append_head(const request& req, std::size_t body_size, std::string& out, error_code& ec) {
    ec = {};
    if (!detail::is_token(req.method)) ec = error::bad_method;
    else if (req.target.empty() || !detail::all_of_class(req.target, detail::cc_target))
        ec = error::bad_target;
    else if (req.version != 10 && req.version != 11)
        ec = error::bad_version;
    else
        ec = detail::check_fields(req.headers);
    if (ec) return;
    out.reserve(out.size() + req.method.size() + req.target.size() + 32 + detail::fields_size(req.headers));
    out.append(req.method)
        .append(" ")
        .append(req.target)
        .append(" ")
        .append(detail::version_string(req.version))
        .append("\r\n");
    detail::finish_head(req.headers, true, body_size, out);
}

/// Appends the head of `req` to `out`, announcing req.body's length.
inline void append_head(const request& req, std::string& out, error_code& ec) {
    append_head(req, req.body.size(), out, ec);
}

/// Appends the head of `res` to `out`; an empty reason is written as the standard phrase of the status.
inline void append_head(const response& res, std::string& out, error_code& ec) {
    ec = {};
    const std::string_view reason = res.reason.empty() ? reason_phrase(res.status) : std::string_view(res.reason);
    if (res.version != 10 && res.version != 11) ec = error::bad_version;
    else if (res.status < 100 || res.status > 599)
        ec = error::bad_status_code;
    else if (!detail::is_field_value(reason))
        ec = error::bad_field_value;
    else
        ec = detail::check_fields(res.headers);
    if (ec) return;
    out.reserve(out.size() + reason.size() + 32 + detail::fields_size(res.headers));
    out.append(detail::version_string(res.version)).append(" ");
    detail::append_decimal(out, static_cast<std::size_t>(res.status));
    out.append(" ").append(reason).append("\r\n");
    detail::finish_head(res.headers, !status_has_no_body(res.status), res.body.size(), out);
}

template <class Message>
void append_head(const Message& msg, std::string& out) {
    error_code ec;
    append_head(msg, out, ec);
    if (ec) throw system_error(ec);
}

template <class Message>
std::string serialize_head(const Message& msg, error_code& ec) {
    std::string out;
    append_head(msg, out, ec);
    return out;
}

/// The head of a request or response; throws callsavvy::system_error when a part cannot be sent safely.
inline std::string serialize_head(const request& req) {
    std::string out;
    append_head(req, out);
    return out;
}
inline std::string serialize_head(const response& res) {
    std::string out;
    append_head(res, out);
    return out;
}

/// The head of every request a client sends to one origin: method, fields and the target's prefix are
/// checked once, when it is made; per request only the target's suffix (checked) and the Content-Length
/// change. The hot path then builds a head with a few appends instead of copying and re-checking fields.
class request_head {
public:
    /// `base`: method, version, fields and the target prefix (e.g. "/v1/"); no Content-Length of its own.
    static std::optional<request_head> make(const request& base, error_code& ec) {
        request probe = base;
        if (probe.target.empty()) probe.target = "/";
        std::string whole;
        append_head(probe, 0, whole, ec);
        if (ec) return std::nullopt;
        if (base.headers.count("Content-Length") != 0 || base.headers.count("Transfer-Encoding") != 0) {
            ec = error::bad_field_name; // the framing fields are this class's to write
            return std::nullopt;
        }
        request_head h;
        h.prefix_.append(base.method).append(" ").append(base.target);
        h.middle_.append(" ").append(detail::version_string(base.version)).append("\r\n");
        detail::append_fields(base.headers, h.middle_);
        h.middle_.append("Content-Length: ");
        return h;
    }

    /// Appends to `out` the head for target prefix + `target_suffix` and a body of `body_size` bytes.
    void render(std::string_view target_suffix, std::size_t body_size, std::string& out, error_code& ec) const {
        ec = {};
        if (!detail::all_of_class(target_suffix, detail::cc_target)) {
            ec = error::bad_target;
            return;
        }
        out.reserve(out.size() + prefix_.size() + target_suffix.size() + middle_.size() + 24);
        out.append(prefix_).append(target_suffix).append(middle_);
        detail::append_decimal(out, body_size);
        out.append("\r\n\r\n");
    }

private:
    request_head() = default;
    std::string prefix_; // "POST /v1/"
    std::string middle_; // " HTTP/1.1\r\n" fields "Content-Length: "
};

/// The size line that precedes `size` bytes of chunk data: hex size and CRLF. For gathered writes:
/// chunk_header(n), the data, "\r\n".
inline std::string chunk_header(std::size_t size) {
    char buf[20];
    const auto r = std::to_chars(buf, buf + sizeof buf, size, 16);
    std::string out(buf, r.ptr);
    out.append("\r\n");
    return out;
}

/// One whole chunk holding `data`. Empty data gives an empty string: a zero-size chunk would end the body.
inline std::string chunk(std::string_view data) {
    if (data.empty()) return {};
    std::string out = chunk_header(data.size());
    out.append(data).append("\r\n");
    return out;
}

/// The end of a chunked body: the zero-size chunk, the trailer fields, the empty line.
/// Throws callsavvy::system_error (bad_field_name / bad_field_value) for a trailer that cannot be sent safely.
inline std::string last_chunk(const fields& trailers = {}) {
    if (const auto ec = detail::check_fields(trailers)) throw system_error(ec);
    std::string out = "0\r\n";
    detail::append_fields(trailers, out);
    out.append("\r\n");
    return out;
}

} // namespace http
CALLSAVVY_END_NAMESPACE

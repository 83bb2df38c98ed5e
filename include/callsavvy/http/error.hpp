// callsavvy/http/error.hpp — why the HTTP/1.1 codec rejected a message. Every code maps to
// callsavvy::condition::protocol.
#pragma once

#include <callsavvy/config.hpp>

#include <string>
#include <system_error>

CALLSAVVY_BEGIN_NAMESPACE
namespace http {

enum class error {
    start_line_too_long = 1,  ///< request or status line longer than limits::max_start_line
    too_many_headers,         ///< more header fields than limits::max_header_count
    headers_too_large,        ///< header section longer than limits::max_header_bytes
    body_too_large,           ///< body longer than limits::max_body_bytes
    bad_request_line,
    bad_status_line,
    bad_version,
    bad_header,
    obs_fold,
    bare_cr,
    bad_content_length,
    conflicting_content_length,
    content_length_with_chunked,
    unsupported_transfer_encoding,
    bad_chunk_size,
    bad_chunk,
    partial_message,  ///< the stream ended inside a message
};

namespace detail {
class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "callsavvy.http"; }
    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::start_line_too_long: return "HTTP start line too long";
        case error::too_many_headers: return "too many HTTP header fields";
        case error::headers_too_large: return "HTTP header section too large";
        case error::body_too_large: return "HTTP body too large";
        case error::bad_request_line: return "malformed HTTP request line";
        case error::bad_status_line: return "malformed HTTP status line";
        case error::bad_version: return "unsupported HTTP version";
        case error::bad_header: return "malformed HTTP header field";
        case error::obs_fold: return "obsolete line folding in HTTP header";
        case error::bare_cr: return "bare CR in HTTP message";
        case error::bad_content_length: return "invalid Content-Length";
        case error::conflicting_content_length: return "conflicting Content-Length values";
        case error::content_length_with_chunked: return "Content-Length together with Transfer-Encoding";
        case error::unsupported_transfer_encoding: return "unsupported Transfer-Encoding";
        case error::bad_chunk_size: return "invalid chunk size";
        case error::bad_chunk: return "malformed chunk";
        case error::partial_message: return "connection ended inside an HTTP message";
        }
        return "unknown HTTP codec error";
    }
};
} // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}
inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }

} // namespace http
CALLSAVVY_END_NAMESPACE

template <>
struct std::is_error_code_enum<callsavvy::http::error> : std::true_type {};

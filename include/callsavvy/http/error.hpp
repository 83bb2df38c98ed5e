// callsavvy/http/error.hpp — why the HTTP/1.1 codec rejected a message. Every code maps to
// callsavvy::condition::protocol.
#pragma once

#include <callsavvy/config.hpp>

#include <string>
#include <system_error>

CALLSAVVY_BEGIN_NAMESPACE
namespace http {

enum class error {
    start_line_too_long = 1,       ///< request or status line longer than limits::max_start_line
    too_many_headers,              ///< more header fields than limits::max_header_count
    headers_too_large,             ///< header section longer than limits::max_header_bytes
    body_too_large,                ///< body longer than limits::max_body_bytes
    bad_request_line,              ///< a request line that is not "method SP target SP version"
    bad_status_line,               ///< a status line that is not "version SP status [SP reason]"
    bad_version,                   ///< a version other than HTTP/1.0 and HTTP/1.1
    bad_header,                    ///< a header line without a colon
    obs_fold,                      ///< a header line starting with SP or HTAB (obsolete line folding)
    bare_cr,                       ///< a CR not followed by LF in the head or the chunk framing
    bad_content_length,            ///< Content-Length is not a list of decimal numbers
    conflicting_content_length,    ///< Content-Length values that differ
    content_length_with_chunked,   ///< Content-Length together with Transfer-Encoding
    unsupported_transfer_encoding, ///< a Transfer-Encoding other than exactly "chunked", or one in HTTP/1.0
    bad_chunk_size,                ///< a chunk size that is empty, not hex, too large, or followed by junk
    bad_chunk,                     ///< chunk data not followed by CRLF
    partial_message,               ///< the stream ended inside a message
    bare_lf,                    ///< a line of the head or the chunk framing ended in LF without CR (CRLF is required)
    bad_method,                 ///< the request method is empty or not a token
    bad_target,                 ///< the request target is empty or holds a space, a control or a non-ASCII byte
    bad_status_code,            ///< a three-digit status code outside 100..599 (other shapes: bad_status_line)
    bad_field_name,             ///< a field name is empty or holds a character that is not a token character
    bad_field_value,            ///< a field value (or reason phrase) holds a control character
    space_before_colon,         ///< whitespace between a field name and its colon (RFC 9112 section 5.1)
    missing_host,               ///< an HTTP/1.1 request without exactly one Host field (RFC 9112 section 3.2)
    chunk_line_too_long,        ///< a chunk-size line (extensions included) longer than limits::max_chunk_line
    bad_url,                    ///< http::parse_url: not an http(s) URL this library can use
    too_many_interim_responses, ///< more 1xx interim responses before the final one than limits::max_interim_responses
};

namespace detail {
class error_category_impl final : public error_category_type {
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
        case error::bare_lf: return "HTTP line ends in LF without CR";
        case error::bad_method: return "invalid HTTP request method";
        case error::bad_target: return "invalid HTTP request target";
        case error::bad_status_code: return "invalid HTTP status code";
        case error::bad_field_name: return "invalid HTTP header field name";
        case error::bad_field_value: return "invalid HTTP header field value";
        case error::space_before_colon: return "whitespace between HTTP header field name and colon";
        case error::missing_host: return "HTTP/1.1 request without exactly one Host header";
        case error::chunk_line_too_long: return "HTTP chunk-size line too long";
        case error::bad_url: return "invalid URL";
        case error::too_many_interim_responses: return "too many HTTP 1xx interim responses";
        }
        return "unknown HTTP codec error";
    }
};
} // namespace detail

inline const error_category_type& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}
inline error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }

} // namespace http
CALLSAVVY_END_NAMESPACE

CALLSAVVY_ERROR_CODE_ENUM(callsavvy::http::error)

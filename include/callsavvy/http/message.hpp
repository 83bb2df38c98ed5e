// callsavvy/http/message.hpp — HTTP/1.1 requests and responses as plain values, with the limits the parsers
// enforce and the keep-alive rules of RFC 9112 section 9.3. Bodies are held whole: Callsavvy messages are
// small JSON documents.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/http/fields.hpp>

#include <cstddef>
#include <string>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE
namespace http {

/// Hard limits of the parsers; exceeding one fails the message with the error named beside it.
struct limits {
    std::size_t max_start_line = 8 * 1024;         ///< request/status line, CRLF included (start_line_too_long)
    std::size_t max_header_count = 100;            ///< field lines, trailers included (too_many_headers)
    std::size_t max_header_bytes = 64 * 1024;      ///< field lines + final CRLF, trailers included (headers_too_large)
    std::size_t max_body_bytes = 16 * 1024 * 1024; ///< decoded body (body_too_large)
    std::size_t max_chunk_line = 4 * 1024;         ///< one chunk-size line with its extensions (chunk_line_too_long)
    /// 1xx interim responses skipped before the final one (too_many_interim_responses): a peer sending them
    /// forever would otherwise hold a reader that no size limit stops.
    std::size_t max_interim_responses = 16;
};

namespace detail {
// RFC 9112 section 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
inline bool keep_alive(int version, const fields& headers) {
    if (headers.contains_token("Connection", "close")) return false;
    return version >= 11 || headers.contains_token("Connection", "keep-alive");
}
} // namespace detail

struct request {
    std::string method = "POST";
    std::string target = "/";
    int version = 11; ///< 10 or 11
    fields headers{};
    std::string body{}; ///< decoded (chunked framing removed)
    fields trailers{};  ///< trailer fields of a chunked body, kept apart from headers

    /// Whether the connection may carry another request after this one (its headers only).
    bool keep_alive() const { return detail::keep_alive(version, headers); }

    friend bool operator==(const request&, const request&) = default;
};

struct response {
    int status = 200;
    std::string reason{}; ///< empty: the serializer writes the standard phrase for the status
    int version = 11;     ///< 10 or 11
    fields headers{};
    std::string body{}; ///< decoded (chunked framing removed)
    fields trailers{};  ///< trailer fields of a chunked body, kept apart from headers

    /// Whether the connection may carry another request after this one, from the headers alone.
    /// response_parser::keep_alive() also knows when the body was delimited by the connection closing.
    bool keep_alive() const { return detail::keep_alive(version, headers); }

    friend bool operator==(const response&, const response&) = default;
};

/// Whether a response with this status never has a body (RFC 9110 sections 15.2, 15.3.5, 15.4.5).
inline constexpr bool status_has_no_body(int status) noexcept {
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/// The standard reason phrase of a status, or "" for a status without one.
inline constexpr std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

} // namespace http
CALLSAVVY_END_NAMESPACE

// callsavvy/http/parser.hpp — incremental, sans-io HTTP/1.1 parsers for requests and responses: bytes go in
// in any split (byte by byte included), a whole message comes out; what RFC 9112 says to reject is rejected
// with a specific http::error, and every size is bounded by http::limits.
#pragma once

// Decisions, where RFC 9112 leaves a choice:
// - Line endings are strict CRLF: a bare LF ends nothing and fails with bare_lf, a CR not followed by LF
//   fails with bare_cr, in the head, the chunk framing and the trailers alike. (RFC 9112 section 2.2 lets a
//   recipient accept bare LF; refusing it leaves no room for framing disagreements with proxies.)
// - Content-Length: a list ("5, 5") or repeated fields are accepted when every value is the same number;
//   different values fail with conflicting_content_length (RFC 9112 section 6.3, item 5).
// - Transfer-Encoding: only exactly "chunked" is supported (this codec decodes no compression). Anything
//   else fails with unsupported_transfer_encoding, in responses too (RFC 9112 would let a client read a
//   response whose final coding is not chunked until close, but its body would still be encoded). With
//   Content-Length it fails with content_length_with_chunked; in an HTTP/1.0 message, with
//   unsupported_transfer_encoding (section 6.1: such framing is faulty).
// - HTTP/1.1 requests need exactly one Host field (missing_host), as section 3.2 requires of servers.
// - Empty lines before a request line are skipped (section 2.2); they do not count as a started message.
// - Responses: 1xx interim responses (100 Continue, 103 Early Hints) are skipped; 101 Switching Protocols
//   is a complete message without a body (what follows is not HTTP). 204, 304 and responses after
//   expect_no_body() end after the head. A response without Content-Length and not chunked is delimited
//   by the connection closing: finish() completes it.
// - A missing reason phrase ("HTTP/1.1 200\r\n") is accepted. A status that is not three digits fails with
//   bad_status_line, three digits outside 100..599 with bad_status_code (RFC 9110 section 15).
// - Trailers of a chunked body land in message.trailers (never merged into headers); they count towards
//   max_header_count and max_header_bytes together with the head's fields.
// - Chunk extensions are checked for control characters and otherwise ignored.

#include <callsavvy/config.hpp>
#include <callsavvy/http/error.hpp>
#include <callsavvy/http/grammar.hpp>
#include <callsavvy/http/message.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

CALLSAVVY_BEGIN_NAMESPACE
namespace http {
namespace detail {

/// Parses one Content-Length field value (a list of identical numbers) into `out`.
inline error_code parse_content_length(std::string_view value, std::uint64_t& out, bool& seen) {
    error_code ec;
    bool any = false;
    const bool ok = for_each_list_element(value, [&](std::string_view element) {
        std::uint64_t n = 0;
        if (element.size() > 18) {
            ec = error::bad_content_length; // 10^18 bytes is beyond any limit; also keeps n from overflowing
            return false;
        }
        for (char c : element) {
            if (c < '0' || c > '9') {
                ec = error::bad_content_length;
                return false;
            }
            n = n * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (seen && n != out) {
            ec = error::conflicting_content_length;
            return false;
        }
        out = n;
        seen = true;
        any = true;
        return true;
    });
    if (ok && !any) ec = error::bad_content_length; // "Content-Length:" or "Content-Length: ,"
    return ec;
}

/// Splits a field line into name and value (value trimmed of OWS) and checks both.
inline error_code parse_field_line(std::string_view line, std::string_view& name, std::string_view& value) {
    if (is_ows(line.front())) return error::obs_fold;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return error::bad_header;
    name = line.substr(0, colon);
    if (name.empty()) return error::bad_header;
    if (is_ows(name.back())) return error::space_before_colon;
    if (!all_of_class(name, cc_tchar)) return error::bad_field_name;
    value = trim_ows(line.substr(colon + 1));
    if (!is_field_value(value)) return error::bad_field_value;
    return {};
}

/// "HTTP/1.0" → 10, "HTTP/1.1" → 11, anything else → 0.
inline int parse_version(std::string_view v) noexcept {
    if (v == "HTTP/1.1") return 11;
    if (v == "HTTP/1.0") return 10;
    return 0;
}

template <class Message>
class basic_parser {
    static constexpr bool is_request = std::is_same_v<Message, request>;

public:
    explicit basic_parser(limits l = {}) : limits_(l) {}

    /// Consumes bytes of `data` and returns how many. Stops right after a complete message, so the bytes of a
    /// pipelined next message stay with the caller; a parser that is done() or failed consumes nothing.
    /// On a protocol violation sets `ec` to an http::error; the parser stays failed (and says so again on
    /// every call) until reset(). Otherwise clears `ec`.
    std::size_t feed(std::string_view data, error_code& ec) {
        ec = {};
        if (state_ == state::failed) {
            ec = error_;
            return 0;
        }
        std::size_t pos = 0;
        while (pos < data.size() && state_ != state::done && state_ != state::failed) {
            switch (state_) {
            case state::start_line:
            case state::field_line:
            case state::chunk_size:
            case state::trailer_line: {
                std::string_view line;
                if (!take_line(data, pos, line)) break;
                process_line(line);
                line_.clear();
                break;
            }
            case state::body_length: {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - pos));
                msg_.body.append(data.data() + pos, n);
                pos += n;
                remaining_ -= n;
                if (remaining_ == 0) state_ = state::done;
                break;
            }
            case state::body_eof: {
                const auto n = data.size() - pos;
                if (n > limits_.max_body_bytes - msg_.body.size()) return fail(error::body_too_large, pos, ec);
                msg_.body.append(data.data() + pos, n);
                pos += n;
                break;
            }
            case state::chunk_data: {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - pos));
                msg_.body.append(data.data() + pos, n);
                pos += n;
                remaining_ -= n;
                if (remaining_ == 0) state_ = state::chunk_cr;
                break;
            }
            case state::chunk_cr:
                if (data[pos] != '\r') return fail(error::bad_chunk, pos, ec);
                ++pos;
                state_ = state::chunk_lf;
                break;
            case state::chunk_lf:
                if (data[pos] != '\n') return fail(error::bare_cr, pos, ec);
                ++pos;
                state_ = state::chunk_size;
                break;
            case state::done:
            case state::failed: break;
            }
        }
        if (state_ == state::failed) ec = error_;
        return pos;
    }

    /// The stream ended. Completes a body delimited by the connection closing; fails a message in progress
    /// with partial_message; with no message started it does nothing (no error, done() stays false).
    void finish(error_code& ec) {
        ec = {};
        switch (state_) {
        case state::failed: ec = error_; return;
        case state::done: return;
        case state::body_eof: state_ = state::done; return;
        case state::start_line:
            if (!started()) return;
            [[fallthrough]];
        default:
            error_ = error::partial_message;
            state_ = state::failed;
            ec = error_;
        }
    }

    bool done() const noexcept { return state_ == state::done; }
    bool failed() const noexcept { return state_ == state::failed; }
    /// The head of the (final) message is parsed; its body may still be pending.
    bool headers_done() const noexcept { return headers_done_; }
    /// At least one byte of a message was consumed (skipped empty lines and 1xx responses aside: a
    /// skipped interim response still counts).
    bool started() const noexcept { return state_ != state::start_line || !line_.empty() || interim_seen_; }
    /// The error that failed the parser, if any.
    error_code last_error() const noexcept { return error_; }
    /// Whether the body is delimited by the connection closing (responses only): it needs finish().
    bool body_until_close() const noexcept { return until_close_; }
    /// Whether the body is chunked.
    bool chunked() const noexcept { return chunked_; }
    /// The body length the head announced (Content-Length), when it did.
    std::optional<std::uint64_t> content_length() const noexcept {
        return has_length_ ? std::optional<std::uint64_t>(length_) : std::nullopt;
    }
    /// Whether the connection can carry another message after this one: the message's keep_alive() and,
    /// for responses, a body not delimited by the connection closing and no 101 (what follows is not HTTP).
    bool keep_alive() const {
        if constexpr (!is_request) {
            if (msg_.status == 101) return false;
        }
        return msg_.keep_alive() && !until_close_;
    }

    const limits& get_limits() const noexcept { return limits_; }

    Message& get() noexcept { return msg_; }
    const Message& get() const noexcept { return msg_; }
    /// Moves the message out (leaving an empty one); call reset() before parsing the next message.
    Message release() { return std::exchange(msg_, Message{}); }

    /// Ready for the next message on the same connection; keeps the limits and the line buffer's capacity.
    void reset() {
        msg_ = Message{};
        state_ = state::start_line;
        error_ = {};
        line_.clear();
        header_count_ = 0;
        header_bytes_ = 0;
        skipped_ = 0;
        remaining_ = 0;
        length_ = 0;
        has_length_ = chunked_ = until_close_ = headers_done_ = interim_seen_ = false;
        interim_count_ = 0;
        no_body_ = false;
    }

protected:
    void set_no_body() noexcept { no_body_ = true; }

private:
    enum class state : std::uint8_t {
        start_line,
        field_line,
        body_length,
        body_eof,
        chunk_size,
        chunk_data,
        chunk_cr,
        chunk_lf,
        trailer_line,
        done,
        failed,
    };

    std::size_t fail(http::error e, std::size_t pos, error_code& ec) {
        error_ = e;
        state_ = state::failed;
        ec = error_;
        return pos;
    }

    void fail(http::error e) {
        error_ = e;
        state_ = state::failed;
    }

    // How many more bytes the line being read may have, and the error when it has more.
    std::pair<std::size_t, http::error> line_budget() const noexcept {
        switch (state_) {
        case state::start_line: return {limits_.max_start_line - skipped_, error::start_line_too_long};
        case state::chunk_size: return {limits_.max_chunk_line, error::chunk_line_too_long};
        default: return {limits_.max_header_bytes - header_bytes_, error::headers_too_large};
        }
    }

    // Takes bytes up to and including the next LF. Returns false (all of `data` consumed into line_) when
    // the line is incomplete. On true, `line` is the line without its CRLF: a view into `data` when the line
    // arrived whole (no copy), else into line_. Every byte is looked at once: memchr finds the LF, and a
    // partial line is only appended, never rescanned, until its LF arrives.
    bool take_line(std::string_view data, std::size_t& pos, std::string_view& line) {
        const char* begin = data.data() + pos;
        const std::size_t avail = data.size() - pos;
        const auto [budget, too_long] = line_budget();
        const auto* lf = static_cast<const char*>(std::memchr(begin, '\n', avail));
        const std::size_t n = lf ? static_cast<std::size_t>(lf - begin) + 1 : avail;
        if (n > budget - line_.size()) {
            fail(too_long);
            return false;
        }
        if (!lf) {
            line_.append(begin, n);
            pos += n;
            return false;
        }
        if (line_.empty()) {
            line = std::string_view(begin, n);
        } else {
            line_.append(begin, n);
            line = line_;
        }
        pos += n;
        if (state_ == state::field_line || state_ == state::trailer_line) header_bytes_ += line.size();
        if (line.size() < 2 || line[line.size() - 2] != '\r') {
            fail(error::bare_lf);
            return false;
        }
        line.remove_suffix(2);
        if (std::memchr(line.data(), '\r', line.size()) != nullptr) {
            fail(error::bare_cr);
            return false;
        }
        return true;
    }

    void process_line(std::string_view line) {
        switch (state_) {
        case state::start_line:
            if (line.empty() && is_request) {
                // RFC 9112 section 2.2: ignore empty lines before a request line (bounded by max_start_line)
                skipped_ += 2;
                return;
            }
            if (const auto ec = parse_start_line(line)) return fail(static_cast<http::error>(ec.value()));
            state_ = state::field_line;
            return;
        case state::field_line:
            if (line.empty()) return end_of_head();
            return add_field(line, msg_.headers);
        case state::chunk_size: return parse_chunk_size(line);
        case state::trailer_line:
            if (line.empty()) {
                state_ = state::done;
                return;
            }
            return add_field(line, msg_.trailers);
        default: return;
        }
    }

    void add_field(std::string_view line, fields& into) {
        if (++header_count_ > limits_.max_header_count) return fail(error::too_many_headers);
        std::string_view name, value;
        if (const auto ec = parse_field_line(line, name, value)) return fail(static_cast<http::error>(ec.value()));
        // Room for a typical head at once (a server's answer carries 5 to 10 fields), not 1, 2, 4, 8.
        if (into.empty()) into.reserve(std::min<std::size_t>(limits_.max_header_count, 12));
        into.add(name, value);
    }

    error_code parse_start_line(std::string_view line) {
        if constexpr (is_request) {
            const auto sp1 = line.find(' ');
            if (sp1 == std::string_view::npos) return error::bad_request_line;
            const auto sp2 = line.find(' ', sp1 + 1);
            if (sp2 == std::string_view::npos) return error::bad_request_line;
            const auto method = line.substr(0, sp1);
            const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
            const auto version = line.substr(sp2 + 1);
            if (!is_token(method)) return error::bad_method;
            if (target.empty()) return error::bad_request_line;
            if (!all_of_class(target, cc_target)) return error::bad_target;
            const int v = parse_version(version);
            if (v == 0) return error::bad_version;
            msg_.method.assign(method);
            msg_.target.assign(target);
            msg_.version = v;
        } else {
            // HTTP-version SP 3DIGIT [SP reason-phrase]
            if (line.size() < 8 || line.substr(0, 5) != "HTTP/") return error::bad_status_line;
            const int v = parse_version(line.substr(0, 8));
            if (v == 0) return error::bad_version;
            if (line.size() < 9 || line[8] != ' ') return error::bad_status_line;
            const auto rest = line.substr(9);
            const auto code = rest.substr(0, rest.find(' '));
            if (code.size() != 3 || !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
                return error::bad_status_line; // not a status line at all; bad_status_code is for 3 digits out of range
            const int status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
            if (status < 100 || status > 599) return error::bad_status_code;
            std::string_view reason;
            if (rest.size() > 3) reason = rest.substr(4);
            if (!is_field_value(reason)) return error::bad_field_value;
            msg_.version = v;
            msg_.status = status;
            msg_.reason.assign(reason);
        }
        return {};
    }

    void end_of_head() {
        // Framing fields: every Content-Length value must agree; Transfer-Encoding must be exactly "chunked".
        bool has_te = false, te_chunked = false, te_other = false;
        for (const auto& f : msg_.headers) {
            if (iequals(f.name, "Content-Length")) {
                if (const auto ec = parse_content_length(f.value, length_, has_length_))
                    return fail(static_cast<http::error>(ec.value()));
            } else if (iequals(f.name, "Transfer-Encoding")) {
                has_te = true;
                for_each_list_element(f.value, [&](std::string_view coding) {
                    if (iequals(coding, "chunked") && !te_chunked && !te_other) te_chunked = true;
                    else
                        te_other = true; // another coding, or chunked twice, or a coding after chunked
                    return true;
                });
            }
        }
        if (has_te && has_length_) return fail(error::content_length_with_chunked);
        if (has_te && (te_other || !te_chunked || msg_.version == 10))
            return fail(error::unsupported_transfer_encoding);
        if constexpr (is_request) {
            if (msg_.version == 11 && msg_.headers.count("Host") != 1) return fail(error::missing_host);
        } else {
            if (msg_.status >= 100 && msg_.status < 200 && msg_.status != 101) {
                // An interim response: forget it and read the next status line.
                msg_ = Message{};
                state_ = state::start_line;
                header_count_ = header_bytes_ = 0;
                length_ = 0;
                has_length_ = false;
                interim_seen_ = true;
                if (++interim_count_ > limits_.max_interim_responses) return fail(error::too_many_interim_responses);
                return;
            }
        }
        headers_done_ = true;
        bool no_body = no_body_;
        if constexpr (!is_request) no_body = no_body || status_has_no_body(msg_.status);
        if (no_body) {
            state_ = state::done;
        } else if (has_te) {
            chunked_ = true;
            state_ = state::chunk_size;
        } else if (has_length_) {
            if (length_ > limits_.max_body_bytes) return fail(error::body_too_large);
            remaining_ = length_;
            // Reserve what was announced, within reason: a tiny message must not make us allocate 16 MiB.
            msg_.body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(length_, 1024 * 1024)));
            state_ = remaining_ == 0 ? state::done : state::body_length;
        } else if constexpr (is_request) {
            state_ = state::done; // a request without framing fields has no body
        } else {
            until_close_ = true;
            state_ = state::body_eof;
        }
    }

    void parse_chunk_size(std::string_view line) {
        std::uint64_t size = 0;
        std::size_t i = 0;
        for (; i < line.size(); ++i) {
            const char c = line[i];
            int d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;
            if (size > (std::numeric_limits<std::uint64_t>::max() >> 4)) return fail(error::bad_chunk_size);
            size = size * 16 + static_cast<std::uint64_t>(d);
        }
        if (i == 0) return fail(error::bad_chunk_size);
        // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ): accepted, ignored.
        auto ext = line.substr(i);
        while (!ext.empty() && is_ows(ext.front())) ext.remove_prefix(1);
        if (!ext.empty() && ext.front() != ';') return fail(error::bad_chunk_size);
        if (!is_field_value(ext)) return fail(error::bad_chunk_size);
        if (size == 0) {
            state_ = state::trailer_line;
            return;
        }
        if (size > limits_.max_body_bytes - msg_.body.size()) return fail(error::body_too_large);
        remaining_ = size;
        state_ = state::chunk_data;
    }

    limits limits_;
    Message msg_;
    std::string line_; // a line split across feeds, kept until its LF arrives
    error_code error_;
    std::uint64_t remaining_ = 0; // body bytes still expected (Content-Length, or the current chunk)
    std::uint64_t length_ = 0;    // the Content-Length value
    std::size_t header_count_ = 0;
    std::size_t header_bytes_ = 0;
    std::size_t skipped_ = 0; // bytes of empty lines skipped before a request line
    state state_ = state::start_line;
    bool has_length_ = false;
    bool chunked_ = false;
    bool until_close_ = false;
    bool headers_done_ = false;
    bool interim_seen_ = false;
    std::size_t interim_count_ = 0; // 1xx responses skipped before this message
    bool no_body_ = false;
};

} // namespace detail

/// Parses requests (the webhook listener and the mock server).
class request_parser : public detail::basic_parser<request> {
public:
    explicit request_parser(limits l = {}) : basic_parser(l) {}
};

/// Parses responses (the client).
class response_parser : public detail::basic_parser<response> {
public:
    explicit response_parser(limits l = {}) : basic_parser(l) {}

    /// The response answers a HEAD request or is a 2xx to CONNECT: it ends after its head whatever its
    /// fields say. Call before feeding (again after each reset()).
    void expect_no_body() noexcept { set_no_body(); }
};

} // namespace http
CALLSAVVY_END_NAMESPACE

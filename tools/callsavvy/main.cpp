// tools/callsavvy/main.cpp — the `callsavvy` command-line tool: lists the endpoint catalog (also as the
// README's Markdown table), makes one API call with the library's own client, printing the response's
// `data` as JSON, imports contacts from a CSV file (`import contacts`, with a journal that survives a crash),
// runs the mock server, receives webhooks (`listen`: one JSON line per event) and sends one (`trigger`).
// Every failure class has its own exit code and exactly one line on stderr, so scripts can branch on the
// code and humans can read the line. The API keys and webhook secrets never reach any output.
//
// Subcommands are independent: each one registers its options on its own CLI::App and returns the exit
// code of its run, so a new one is one more register function and one more line in main().
#include <callsavvy/api/catalog.hpp>
#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/batch.hpp>
#include <callsavvy/client.hpp>
#include <callsavvy/contacts.hpp>
#include <callsavvy/csv.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/testing/mock_server.hpp>
#include <callsavvy/testing/webhook_sender.hpp>
#include <callsavvy/version.hpp>
#include <callsavvy/webhook/events.hpp>
#include <callsavvy/webhook/listener.hpp>

#include "import_journal.hpp"
#include "progress_line.hpp"

#include <boost/json.hpp>
#include <callsavvy/asio.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = callsavvy::asio;
namespace json = boost::json;
namespace api = callsavvy::api;
using callsavvy::condition;

// ---------------------------------------------------------------------------------------------------------
// Exit codes: one per failure class. Scripts depend on these numbers: never renumber, only append.

enum exit_code : int {
    exit_ok = 0,
    exit_internal = 1,         // a failure no class below covers (a bug, out of memory)
    exit_usage = 2,            // bad command line, unreadable @file, unusable --base-url or resource URI
    exit_validation = 3,       // the request broke a rule: checked locally (nothing sent) or HTTP 400
    exit_auth = 4,             // HTTP 401: missing or wrong API keys
    exit_forbidden = 5,        // HTTP 403: e.g. the IP address is not on the account's allow-list
    exit_not_found = 6,        // HTTP 404: unknown resource or id
    exit_rate_limited = 7,     // HTTP 429, still when the call's time ran out (the library retries 429s)
    exit_server = 8,           // HTTP 5xx to a read-only call, after its retries
    exit_transport = 9,        // DNS, connect, proxy, connection lost
    exit_tls = 10,             // certificate not trusted, wrong host name, invalid, handshake failure
    exit_timeout = 11,         // no answer within --timeout (or the library's default limits)
    exit_outcome_unknown = 12, // a state-changing request was sent, then no valid answer or a 5xx: check first
    exit_protocol = 13,        // the answer is not a valid Callsavvy envelope, or an unexpected HTTP status
    exit_interrupted = 128,    // + the signal number (SIGINT: 130, SIGTERM: 143)
};

constexpr std::string_view exit_code_help = R"(Exit codes:
  0   success: the response's data is on stdout
  1   internal error
  2   usage: bad command line, unreadable @file, unusable --base-url or resource URI
  3   validation: the request broke a rule (checked locally, nothing sent) or HTTP 400
  4   auth: HTTP 401, missing or wrong API keys
  5   forbidden: HTTP 403
  6   not found: HTTP 404 (unknown resource or id)
  7   rate limited: still HTTP 429 when the call's time ran out (429s are retried)
  8   server: HTTP 5xx to a read-only call, after its retries
  9   transport: DNS, connect, proxy or connection failure
  10  TLS: certificate not trusted, host name mismatch, invalid certificate, handshake failure
  11  timeout
  12  outcome unknown: a state-changing request was sent, then its answer was lost, broken or 5xx (not re-sent)
  13  protocol: the answer is not a valid Callsavvy envelope, or an unexpected HTTP status
  130 interrupted (128 + signal number)
Every failure prints exactly one line on stderr: "callsavvy: <class>: <what happened>".)";

// ---------------------------------------------------------------------------------------------------------
// Output hygiene

// The API keys must not appear in any output, even when a server echoes them back (a proxy error page, a
// misbehaving mock): the library's own redaction, applied to everything printed.
struct secrets {
    std::vector<std::string> keys;

    std::string redact(std::string text) const {
        callsavvy::detail::redact_all(text, {keys.begin(), keys.end()});
        return text;
    }
};

// One line means one line: a server message with line breaks or control bytes must not split it.
std::string one_line(std::string_view s, std::size_t max = 500) {
    std::string out;
    out.reserve(std::min(s.size(), max));
    for (char c : s) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
    }
    return out;
}

void print_error(const secrets& s, std::string_view label, std::string_view what) {
    std::string line = "callsavvy: ";
    line.append(label).append(": ").append(what);
    std::cerr << s.redact(one_line(line, 2000)) << '\n' << std::flush;
}

// ---------------------------------------------------------------------------------------------------------
// JSON output: Boost.JSON 1.81 only serializes compactly; people read this output, so indent it. Member
// order is the server's (json::object keeps insertion order).

void pretty_print(std::string& out, const json::value& v, int indent) {
    const auto pad = [&](int n) { out.append(static_cast<std::size_t>(n), ' '); };
    if (const auto* o = v.if_object(); o != nullptr && !o->empty()) {
        out += "{\n";
        bool first = true;
        for (const auto& kv : *o) {
            if (!first) out += ",\n";
            first = false;
            pad(indent + 2);
            out += json::serialize(json::string(kv.key()));
            out += ": ";
            pretty_print(out, kv.value(), indent + 2);
        }
        out += '\n';
        pad(indent);
        out += '}';
    } else if (const auto* a = v.if_array(); a != nullptr && !a->empty()) {
        out += "[\n";
        bool first = true;
        for (const auto& e : *a) {
            if (!first) out += ",\n";
            first = false;
            pad(indent + 2);
            pretty_print(out, e, indent + 2);
        }
        out += '\n';
        pad(indent);
        out += ']';
    } else {
        out += json::serialize(v);
    }
}

// ---------------------------------------------------------------------------------------------------------
// callsavvy resources

struct resources_command {
    bool markdown = false;

    void add_to(CLI::App& app) {
        auto* sub = app.add_subcommand("resources", "List the endpoints the library knows (its catalog)");
        sub->add_flag("--markdown", markdown,
                      "Print the README's endpoint table (Markdown) instead: "
                      "scripts/endpoint_table.sh puts it into README.md");
        sub->callback([this] { run_requested = true; });
        self = sub;
    }

    int run() const {
        // Grouped in the spec's order of groups; within a group, the catalog's (= the spec's) order.
        std::vector<const api::endpoint_info*> rows;
        for (const auto& e : api::catalog()) rows.push_back(&e);
        std::stable_sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->group < b->group; });
        std::string out;
        if (markdown) {
            out += "| resource URI | name | group | read-only | collection |\n";
            out += "|---|---|---|---|---|\n";
            for (const auto* e : rows) {
                out.append("| `").append(e->resource).append("` | ").append(e->title).append(" | ");
                out.append(api::group_name(e->group)).append(" | ").append(e->read_only ? "yes" : "no").append(" | ");
                if (e->collection.empty()) out += "—";
                else
                    out.append("`").append(e->collection).append("`");
                out += " |\n";
            }
        } else {
            std::size_t w_resource = 0, w_group = 0, w_title = 0;
            for (const auto* e : rows) {
                w_resource = std::max(w_resource, e->resource.size());
                w_group = std::max(w_group, api::group_name(e->group).size());
                w_title = std::max(w_title, e->title.size());
            }
            const auto cell = [&](std::string_view s, std::size_t w) {
                out.append(s);
                out.append(w - s.size() + 2, ' ');
            };
            for (const auto* e : rows) {
                cell(e->resource, w_resource);
                cell(api::group_name(e->group), w_group);
                cell(e->title, w_title);
                out += e->read_only ? "read-only\n" : "changes state\n";
            }
        }
        std::cout << out << std::flush;
        return exit_ok;
    }

    CLI::App* self = nullptr;
    bool run_requested = false;
};

// The exit code and label of an error's failure class.
struct failure_class {
    int code;
    std::string_view label;
};

failure_class classify(const callsavvy::error_code& ec) {
    return ec == callsavvy::make_error_code(callsavvy::error::invalid_url) ? failure_class{exit_usage, "usage"}
           : ec == condition::validation      ? failure_class{exit_validation, "validation"}
           : ec == condition::auth            ? failure_class{exit_auth, "auth"}
           : ec == condition::forbidden       ? failure_class{exit_forbidden, "forbidden"}
           : ec == condition::not_found       ? failure_class{exit_not_found, "not found"}
           : ec == condition::rate_limited    ? failure_class{exit_rate_limited, "rate limited"}
           : ec == condition::server          ? failure_class{exit_server, "server"}
           : ec == condition::tls             ? failure_class{exit_tls, "TLS"}
           : ec == condition::timeout         ? failure_class{exit_timeout, "timeout"}
           : ec == condition::outcome_unknown ? failure_class{exit_outcome_unknown, "outcome unknown"}
           : ec == condition::transport       ? failure_class{exit_transport, "transport"}
           : ec == condition::protocol || ec == condition::envelope ? failure_class{exit_protocol, "protocol"}
                                                                    : failure_class{exit_internal, "error"};
}

// ---------------------------------------------------------------------------------------------------------
// callsavvy call

// Ctrl-C and SIGTERM end the client's calls cleanly (close() completes them with operation_aborted) instead
// of killing the process in the middle of a TLS record; `number` says which signal came.
struct close_on_signal {
    asio::signal_set signals;
    int number = 0;

    close_on_signal(asio::io_context& io, callsavvy::client& c) : signals(io, SIGINT, SIGTERM) {
        signals.async_wait([this, &c](const callsavvy::error_code& ec, int signo) {
            if (ec) return;
            number = signo;
            c.close();
        });
    }
};

// What every subcommand that calls the API takes: the keys (from the environment, preferably), the base URL
// and how to trust the server.
struct connection_flags {
    std::string public_key;
    std::string private_key;
    std::string base_url = callsavvy::client_options{}.base_url;
    std::string ca_file;
    bool insecure = false;

    void add_to(CLI::App* sub) {
        sub->add_option("--public-key", public_key, "Public API key (prefer the environment variable)")
            ->envname("CALLSAVVY_PUBLIC_KEY");
        sub->add_option("--private-key", private_key,
                        "Private API key (prefer the environment variable: command lines are visible to "
                        "other users of the machine)")
            ->envname("CALLSAVVY_PRIVATE_KEY");
        sub->add_option("--base-url", base_url, "API base URL")->envname("CALLSAVVY_BASE_URL")->capture_default_str();
        auto* ca = sub->add_option("--ca-file", ca_file, "PEM file of the CAs to trust instead of the system store")
                       ->check(CLI::ExistingFile);
        sub->add_flag("--insecure-skip-tls-verify", insecure,
                      "Accept any server certificate for any host name: for debugging only, open to interception")
            ->excludes(ca);
    }

    secrets keys() const { return secrets{{public_key, private_key}}; }

    /// False (after saying so) when a key is missing.
    bool have_keys(const secrets& s) const {
        if (!public_key.empty() && !private_key.empty()) return true;
        print_error(s, "usage",
                    "no API keys: set CALLSAVVY_PUBLIC_KEY and CALLSAVVY_PRIVATE_KEY "
                    "(or --public-key and --private-key)");
        return false;
    }

    callsavvy::client_options client_options() const {
        callsavvy::client_options o;
        o.keys = {public_key, private_key};
        o.base_url = base_url;
        o.tls.ca_file = ca_file;
        o.tls.insecure_skip_verify = insecure;
        return o;
    }
};

struct call_command {
    std::string resource;
    std::string body_arg;
    connection_flags conn;
    double timeout_seconds = 0;
    bool no_validate = false;
    bool compact = false;

    void add_to(CLI::App& app) {
        auto* sub = app.add_subcommand("call", "Make one API call and print the response's data as JSON");
        sub->add_option("resource", resource, "Resource URI, e.g. getSummary or createTicket")->required();
        sub->add_option("body", body_arg,
                        "Request body: JSON text, @file to read it from a file, - to read stdin; "
                        "empty or absent: {}");
        conn.add_to(sub);
        sub->add_option("--timeout", timeout_seconds,
                        "Give up after this many seconds (the whole call, retries included); "
                        "default: 30 s per attempt, 120 s in all")
            ->check(CLI::PositiveNumber);
        sub->add_flag("--no-validate", no_validate,
                      "Send the body without checking it against the catalog's rules first (the server decides)");
        sub->add_flag("--compact", compact, "Print the data on one line instead of indented");
        sub->callback([this] { run_requested = true; });
        self = sub;
    }

    // The request body, or the exit code of why there is none.
    std::optional<json::object> read_body(const secrets& s, int& code) const {
        std::string text;
        if (body_arg == "-") {
            text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        } else if (body_arg.starts_with('@')) {
            const std::string path = body_arg.substr(1);
            std::ifstream in(path, std::ios::binary);
            if (!in) {
                print_error(s, "usage", "cannot read the request body from " + path + ": " + std::strerror(errno));
                code = exit_usage;
                return std::nullopt;
            }
            text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        } else {
            text = body_arg;
        }
        if (text.find_first_not_of(" \t\r\n") == std::string::npos) return json::object{};
        boost::system::error_code ec;
        json::value v = json::parse(text, ec);
        // The server's own words for a body it cannot use (spec §1), so the line reads the same either way.
        if (ec) {
            print_error(s, "validation", "Malformed JSON body (" + ec.message() + ")");
            code = exit_validation;
            return std::nullopt;
        }
        if (!v.is_object()) {
            print_error(s, "validation", "Malformed JSON body (the body must be a JSON object)");
            code = exit_validation;
            return std::nullopt;
        }
        return std::move(v.as_object());
    }

    int run() const {
        const secrets s = conn.keys();
        int code = exit_ok;
        auto body = read_body(s, code);
        if (!body) return code;

        // Check what the catalog knows before anything leaves the machine; an unknown resource goes out
        // as given (the server is the judge of resources the catalog does not list yet).
        if (const auto* e = api::find_endpoint(resource); e != nullptr && !no_validate) {
            if (auto v = e->check_request(*body)) {
                print_error(s, "validation", v->message() + " (checked locally; nothing was sent)");
                return exit_validation;
            }
        }
        if (!conn.have_keys(s)) return exit_usage;

        callsavvy::client_options o = conn.client_options();
        // The tool checks the raw body itself (above); the option only matters to typed calls, but keep the
        // client consistent with what was asked.
        o.validate_requests = !no_validate;
        if (timeout_seconds > 0) {
            const auto limit = std::chrono::milliseconds(static_cast<long long>(std::ceil(timeout_seconds * 1000)));
            o.call_deadline = limit;
            o.attempt_timeout = std::min(o.attempt_timeout, limit);
        }

        asio::io_context io;
        callsavvy::client c(io.get_executor(), std::move(o));
        close_on_signal interrupt(io, c);

        callsavvy::diagnostics d;
        callsavvy::error_code result;
        json::object data;
        bool done = false;
        c.async_call(resource, std::move(*body), d, [&](callsavvy::error_code ec, json::object r) {
            done = true;
            result = ec;
            data = std::move(r);
            interrupt.signals.cancel();
            c.close(); // idle connections: TLS close_notify, bounded by the library to a second
        });
        io.run();

        if (interrupt.number != 0) {
            print_error(s, "interrupted",
                        "by signal " + std::to_string(interrupt.number) + "; the call to " + resource +
                            " did not finish");
            return exit_interrupted + interrupt.number;
        }
        if (!done) {
            print_error(s, "internal", "the call did not complete");
            return exit_internal;
        }
        if (result) return report_failure(s, result, d);

        std::string out;
        if (compact) out = json::serialize(data);
        else
            pretty_print(out, data, 0);
        out += '\n';
        std::cout << s.redact(std::move(out)) << std::flush;
        return exit_ok;
    }

    static int report_failure(const secrets& s, callsavvy::error_code ec, callsavvy::diagnostics d) {
        // The library retries a 429 until the call's deadline (it proves the request was not processed).
        // When the deadline ends that, the last answer was still 429: the class is "rate limited", not a
        // timeout, and never "outcome unknown" (the server said it did not process the request).
        if (d.http_status == 429 && (ec == condition::timeout || ec == condition::outcome_unknown)) {
            ec = callsavvy::make_error_code(callsavvy::error::too_many_requests);
            d.detail = "still rate limited when the call's time ran out, after " + std::to_string(d.attempts) +
                       (d.attempts == 1 ? " attempt" : " attempts");
        }
        const auto is = [&](callsavvy::error e) { return ec == callsavvy::make_error_code(e); };
        const failure_class fc = classify(ec);

        // The library's words for the error, then the HTTP status, the server's message and the library's
        // detail (a TLS verify reason, a field path) — what callsavvy::detail::describe says, minus the
        // resource (the user just typed it) and with the real status instead of "5xx".
        std::string what = ec.message();
        if (is(callsavvy::error::server_error) && d.http_status != 0)
            what = "server error (HTTP " + std::to_string(d.http_status) + ")";
        else if (d.http_status != 0 && what.find("(HTTP ") == std::string::npos)
            what += " (HTTP " + std::to_string(d.http_status) + ")";
        if (!d.server_message.empty()) what += ": " + one_line(d.server_message);
        if (!d.detail.empty()) what += " (" + one_line(d.detail) + ")";

        // "TLS: server certificate is not trusted" already names its class: do not say "TLS: TLS: ...".
        std::string line = what;
        const auto starts_with_label = [&] {
            if (line.size() < fc.label.size()) return false;
            return std::equal(fc.label.begin(), fc.label.end(), line.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
            });
        };
        std::cerr << s.redact(one_line(
                         "callsavvy: " + (starts_with_label() ? line : std::string(fc.label) + ": " + line), 2000))
                  << '\n'
                  << std::flush;
        return fc.code;
    }

    CLI::App* self = nullptr;
    bool run_requested = false;
};

// ---------------------------------------------------------------------------------------------------------
// Serving HTTPS: --cert and --key, shared by the subcommands that serve (mock, listen).

struct tls_files {
    std::string cert_file;
    std::string key_file;

    void add_to(CLI::App* sub) {
        auto* cert = sub->add_option("--cert", cert_file, "PEM certificate chain: serve HTTPS (with --key)");
        auto* key = sub->add_option("--key", key_file, "PEM private key of --cert");
        cert->needs(key)->check(CLI::ExistingFile);
        key->needs(cert)->check(CLI::ExistingFile);
    }
    bool enabled() const { return !cert_file.empty(); }
    /// The server's TLS context, or null for plain HTTP.
    std::shared_ptr<asio::ssl::context> context() const {
        if (!enabled()) return nullptr;
        auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
        ctx->use_certificate_chain_file(cert_file);
        ctx->use_private_key_file(key_file, asio::ssl::context::pem);
        return ctx;
    }
};

// ---------------------------------------------------------------------------------------------------------
// callsavvy mock

struct mock_command {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8080;
    tls_files tls;
    double window_seconds = 60;
    std::size_t per_endpoint = 50;
    std::size_t global = 100;
    std::string mode = "fixed";
    bool no_retry_after = false;
    bool no_limits = false;

    void add_to(CLI::App& app) {
        auto* sub = app.add_subcommand("mock", "Run the mock Callsavvy server (sandbox keys) until interrupted");
        sub->add_option("--address", address, "Address to listen on (loopback by default)");
        sub->add_option("--port", port, "Port to listen on; 0 picks a free one");
        tls.add_to(sub);
        sub->add_option("--window", window_seconds, "Rate-limit window in seconds")->check(CLI::PositiveNumber);
        sub->add_option("--per-endpoint", per_endpoint, "Requests per window per key and resource");
        sub->add_option("--global", global, "Requests per window per key");
        sub->add_option("--window-mode", mode, "fixed or sliding")->check(CLI::IsMember({"fixed", "sliding"}));
        sub->add_flag("--no-retry-after", no_retry_after, "Answer 429 without Retry-After");
        sub->add_flag("--no-limits", no_limits, "Do not rate-limit at all");
        sub->callback([this] { run_requested = true; });
    }

    int run() const {
        namespace testing = callsavvy::testing;
        asio::io_context io;
        testing::mock_options o;
        o.server.address = address;
        o.server.port = port;
        o.server.tls = tls.context();
        o.rate_limits.enabled = !no_limits;
        o.rate_limits.window = std::chrono::milliseconds(static_cast<long long>(window_seconds * 1000));
        o.rate_limits.per_endpoint = per_endpoint;
        o.rate_limits.global = global;
        o.rate_limits.mode = mode == "sliding" ? testing::window_mode::sliding : testing::window_mode::fixed;
        o.rate_limits.send_retry_after = !no_retry_after;
        o.keep_journal = false; // nobody reads it here, and a benchmark must not grow it without bound
        testing::mock_server server(io.get_executor(), o);
        std::cout << "callsavvy mock: serving " << server.base_url() << " (sandbox keys; Ctrl-C stops)" << std::endl;
        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](callsavvy::error_code, int) {
            server.stop();
            io.stop();
        });
        io.run();
        return exit_ok;
    }

    bool run_requested = false;
};

// ---------------------------------------------------------------------------------------------------------
// callsavvy listen

// Reads a file of lookup replies, {"<event name>": {<reply fields>}, ...}; an empty path gives none.
std::optional<json::object> read_replies(const std::string& path, std::string& why) {
    if (path.empty()) return json::object{};
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        why = "cannot read the replies file " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    callsavvy::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) {
        why = "the replies file " + path + " is not a JSON object of replies by event name";
        return std::nullopt;
    }
    for (const auto& [name, reply] : v.get_object()) {
        if (!reply.is_object()) {
            why = "the replies file's \"" + std::string(name) + "\" is not a JSON object";
            return std::nullopt;
        }
    }
    return std::move(v.get_object());
}

struct listen_command {
    std::string bind = "127.0.0.1";
    std::uint16_t port = 8080;
    std::string path = "/";
    tls_files tls;
    std::vector<std::string> allow;
    std::vector<std::string> trusted_proxies;
    std::int64_t tolerance = 300;
    std::string replies_file;
    double lookup_deadline = 5;
    bool strict = false;

    void add_to(CLI::App& app) {
        auto* sub = app.add_subcommand("listen",
                                       "Receive webhooks: print each event as one JSON line on stdout, answer lookups");
        sub->add_option("--bind", bind, "Address to listen on (loopback by default; :: or 0.0.0.0 for all)");
        sub->add_option("--port", port, "Port to listen on; 0 picks a free one");
        sub->add_option("--path", path, "The callback URL's path (may hold a secret; compared in constant time)");
        tls.add_to(sub);
        sub->add_option("--allow", allow, "Accept only these sources (CIDR, IPv4 or IPv6; repeatable)");
        sub->add_option("--trusted-proxy", trusted_proxies, "Believe X-Forwarded-For from these (CIDR; repeatable)");
        sub->add_option("--tolerance", tolerance, "Signed deliveries: seconds a timestamp may be off")
            ->check(CLI::NonNegativeNumber);
        sub->add_option("--replies", replies_file, "JSON file of lookup replies by event name")
            ->check(CLI::ExistingFile);
        sub->add_option("--lookup-deadline", lookup_deadline, "Seconds a lookup may take")->check(CLI::PositiveNumber);
        sub->add_flag("--strict", strict, "Answer 503 to events the catalog does not know (instead of 200)");
        sub->footer("Secrets come from the environment, never from the command line (other users see it):\n"
                    "  CALLSAVVY_WEBHOOK_SECRETS  whsec_ signing secrets, space-separated (rotation: several)\n"
                    "  CALLSAVVY_WEBHOOK_BASIC    user:password required as HTTP Basic credentials");
        sub->callback([this] { run_requested = true; });
    }

    callsavvy::webhook::listener_options options(std::string& why) const {
        namespace wh = callsavvy::webhook;
        wh::listener_options o;
        o.server.address = bind;
        o.server.port = port;
        o.path = path;
        o.strict = strict;
        o.lookup_deadline = std::chrono::milliseconds(static_cast<long long>(lookup_deadline * 1000));
        o.verify.allowed_sources = allow;
        o.verify.trusted_proxies = trusted_proxies;
        o.verify.tolerance = std::chrono::seconds(tolerance);
        if (const char* s = std::getenv("CALLSAVVY_WEBHOOK_SECRETS")) {
            std::istringstream words(s);
            for (std::string w; words >> w;) o.verify.signing_secrets.push_back(w);
        }
        if (const char* b = std::getenv("CALLSAVVY_WEBHOOK_BASIC")) {
            const std::string_view text(b);
            const auto colon = text.find(':');
            if (colon == std::string_view::npos) why = "CALLSAVVY_WEBHOOK_BASIC is not user:password";
            else
                o.verify.basic =
                    wh::basic_credentials{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
        }
        o.server.tls = tls.context();
        // Rejections and failures go to stderr, one line each; stdout carries only the events.
        o.observer = [](const wh::delivery_report& r) {
            if (r.what == wh::outcome::ok) return;
            std::cerr << one_line("callsavvy listen: " + std::string(wh::outcome_name(r.what)) + " " +
                                      std::to_string(r.status) + (r.event.empty() ? "" : " " + r.event) +
                                      (r.detail.empty() ? "" : ": " + r.detail) + " (from " +
                                      r.remote.address().to_string() + ")",
                                  2000)
                      << '\n'
                      << std::flush;
        };
        return o;
    }

    int run() const {
        namespace wh = callsavvy::webhook;
        secrets none;
        std::string why;
        auto replies = read_replies(replies_file, why);
        auto o = options(why);
        if (!replies || !why.empty()) {
            print_error(none, "usage", why);
            return exit_usage;
        }
        asio::io_context io;
        std::optional<wh::listener> l;
        try {
            l.emplace(io.get_executor(), std::move(o));
        } catch (const std::invalid_argument& e) {
            print_error(none, "usage", e.what());
            return exit_usage;
        }
        // Every event, known or not, goes to one handler: print it, answer a lookup from the replies file
        // (the listener fills in the fields the file leaves out, at their defaults).
        l->on_unhandled([&replies](wh::raw_event e) -> asio::awaitable<std::optional<json::object>> {
            std::cout << json::serialize(e.body) << '\n' << std::flush;
            if (const auto* r = replies->if_contains(e.name)) co_return r->as_object();
            co_return std::nullopt;
        });
        try {
            l->start();
        } catch (const callsavvy::system_error& e) {
            print_error(none, "transport",
                        "cannot listen on " + bind + ":" + std::to_string(port) + ": " + e.code().message());
            return exit_transport;
        }
        const bool v6 = bind.find(':') != std::string::npos;
        std::cerr << "callsavvy listen: listening on " << (tls.enabled() ? "https://" : "http://")
                  << (v6 ? "[" + bind + "]" : bind) << ":" << l->port() << path << " (Ctrl-C stops)" << std::endl;
        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](callsavvy::error_code, int) {
            // Deliveries under way finish; what the grace cuts short was never acknowledged.
            l->async_shutdown(std::chrono::seconds(5), [&](callsavvy::shutdown_result) { io.stop(); });
        });
        io.run();
        return exit_ok;
    }

    bool run_requested = false;
};

// ---------------------------------------------------------------------------------------------------------
// callsavvy import contacts

// One CSV field as RFC 4180 writes it: quoted when it must be.
std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos && (s.empty() || (s.front() != ' ' && s.back() != ' ')))
        return std::string(s);
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + '"';
}

// The rows that did not make it, as CSV the user can fix and import again: the line the row started on,
// its fields as read, and why.
class failed_rows_file {
public:
    bool open(const std::string& path, std::string& why) {
        out_.open(path, std::ios::binary | std::ios::trunc);
        if (!out_) why = "cannot write the failed rows to " + path + ": " + std::strerror(errno);
        return static_cast<bool>(out_);
    }
    void header(const std::vector<std::string>& columns) {
        if (!out_.is_open()) return;
        std::string line = "line";
        for (const auto& c : columns) line += ',' + csv_field(c);
        out_ << line << ",message\r\n";
    }
    void row(std::size_t line_number, const std::vector<std::string>& fields, std::string_view message) {
        if (!out_.is_open()) return;
        std::string line = std::to_string(line_number);
        for (const auto& f : fields) line += ',' + csv_field(f);
        out_ << line << ',' << csv_field(message) << "\r\n";
    }
    void flush() {
        if (out_.is_open()) out_.flush();
    }

private:
    std::ofstream out_;
};

struct import_command {
    std::string what;
    std::string file;
    std::vector<std::string> maps;
    std::string journal_path;
    bool resume = false;
    std::string failed_path;
    std::size_t max_in_flight = 4;
    std::size_t chunk_size = callsavvy::max_bulk_contacts;
    std::string group_id;
    connection_flags conn;
    double rate_window = 60;
    std::size_t rate_per_endpoint = callsavvy::rate_limit_options{}.per_endpoint.max_requests;
    std::size_t rate_global = callsavvy::rate_limit_options{}.global.max_requests;

    void add_to(CLI::App& app) {
        auto* sub = app.add_subcommand("import", "Import a CSV file with a header row: import contacts <file.csv>");
        sub->add_option("what", what, "What to import: contacts")->required();
        sub->add_option("file", file, "The CSV file (UTF-8, RFC 4180; its first row names the columns)")->required();
        sub->add_option("--map", maps,
                        "field=\"Column header\": read the contact's field (phone, first_name, last_name, email, "
                        "group_id) from that column (repeatable); by default the columns named like the fields "
                        "(\"First Name\" too); other columns become custom fields");
        sub->add_option("--journal", journal_path, "The import's journal (default: <file>.journal)");
        sub->add_flag("--resume", resume,
                      "Continue the import the journal records: skip confirmed rows, ask the server about rows "
                      "sent without an answer, send the rest");
        sub->add_option("--failed", failed_path,
                        "Write the rows that failed (malformed or rejected) to this CSV: line, the row's fields, "
                        "message");
        sub->add_option("--max-in-flight", max_in_flight, "createBulkContact requests outstanding at once")
            ->check(CLI::Range(std::size_t{1}, std::size_t{64}))
            ->capture_default_str();
        sub->add_option("--chunk-size", chunk_size, "Contacts per createBulkContact request")
            ->check(CLI::Range(std::size_t{1}, callsavvy::max_bulk_contacts))
            ->capture_default_str();
        sub->add_option("--group-id", group_id, "The group of the rows that name none");
        conn.add_to(sub);
        sub->add_option("--rate-window", rate_window, "The account's rate-limit window in seconds")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
        sub->add_option("--rate-per-endpoint", rate_per_endpoint, "Requests per window per resource")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
        sub->add_option("--rate-global", rate_global, "Requests per window in all")
            ->check(CLI::PositiveNumber)
            ->capture_default_str();
        sub->callback([this] { run_requested = true; });
    }

    // A row of the file as the import sees it: the contact, and the fields as read (for --failed).
    struct pending_row {
        std::size_t line = 0;
        api::new_contact contact{};
        std::vector<std::string> fields{};
    };

    // The file read in step with the contact reader: the same records, raw, for the failed-rows file.
    struct input {
        std::ifstream contacts_in;
        std::ifstream raw_in;
        callsavvy::csv::contact_reader contacts;
        callsavvy::csv::reader raw;

        input(const std::string& path, const callsavvy::csv::contact_reader_options& o)
            : contacts_in(path, std::ios::binary), raw_in(path, std::ios::binary), contacts(contacts_in, o),
              raw(raw_in, o.csv) {
            (void)raw.next(); // the header
        }
        /// The next row and its raw fields, or nullopt at the end.
        std::optional<std::pair<callsavvy::csv::contact_row, std::vector<std::string>>> next() {
            auto row = contacts.next();
            if (!row) return std::nullopt;
            auto rec = raw.next();
            std::vector<std::string> fields;
            if (rec && rec->line == row->line) fields = std::move(rec->fields);
            return std::make_pair(std::move(*row), std::move(fields));
        }
    };

    int usage(const secrets& s, const std::string& why) const {
        print_error(s, "usage", why);
        return exit_usage;
    }

    int run() const {
        namespace csv = callsavvy::csv;
        namespace tools = callsavvy_tools;
        const secrets s = conn.keys();
        if (what != "contacts")
            return usage(s, "cannot import \"" + one_line(what, 60) +
                                "\": only contacts can be imported (callsavvy import contacts <file.csv>)");
        csv::contact_reader_options ro;
        for (const auto& m : maps) {
            const auto eq = m.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
                return usage(s, "--map " + one_line(m, 100) + ": expected field=\"Column header\"");
            ro.aliases[m.substr(eq + 1)] = m.substr(0, eq);
        }
        try {
            std::istringstream none;
            csv::contact_reader check(none, ro);
        } catch (const std::invalid_argument&) {
            return usage(s, "--map names a field a contact does not have (phone, first_name, last_name, email, "
                            "group_id)");
        }
        tools::file_identity identity;
        try {
            identity = tools::identify_file(file);
        } catch (const tools::journal_error& e) {
            return usage(s, e.what());
        }
        if (!conn.have_keys(s)) return exit_usage;
        const std::string jpath = journal_path.empty() ? file + ".journal" : journal_path;

        // What an earlier run recorded (resume only; read before anything is written).
        tools::journal_rows earlier;
        std::optional<tools::import_journal> journal;
        if (resume) {
            try {
                journal.emplace(tools::import_journal::resume(jpath, identity, earlier));
            } catch (const tools::journal_error& e) {
                return usage(s, e.what());
            }
        }

        // A first pass: the header must be usable before anything is sent, the total feeds the progress
        // line, and the rows an earlier run left in doubt need their phone numbers.
        std::size_t total = 0;
        std::map<std::size_t, std::string> doubt_phones;
        std::vector<std::string> columns;
        {
            input pass(file, ro);
            while (auto r = pass.next()) {
                const auto& row = r->first;
                if (total == 0 && !row.ok() && row.error.starts_with("header: ")) {
                    print_error(s, "validation", file + ": line " + std::to_string(row.line) + ": " + row.error);
                    return exit_validation;
                }
                ++total;
                const auto e = earlier.find(row.line);
                if (row.ok() && e != earlier.end() && e->second.state == tools::row_state::sent)
                    doubt_phones[row.line] = row.contact->phone;
            }
            columns = pass.contacts.header();
        }
        if (!journal) {
            try {
                journal.emplace(tools::import_journal::create(jpath, identity));
            } catch (const tools::journal_error& e) {
                return usage(s, e.what());
            }
        }
        failed_rows_file failed_out;
        if (!failed_path.empty()) {
            std::string why;
            if (!failed_out.open(failed_path, why)) return usage(s, why);
            failed_out.header(columns);
        }

        callsavvy::client_options o = conn.client_options();
        // The reader checked every row against the catalog's rules already; unchecked, every row taken from the
        // input goes into the request being filled, so the rows journaled as one request are that request.
        o.validate_requests = false;
        const auto window = std::chrono::milliseconds(static_cast<long long>(std::ceil(rate_window * 1000)));
        o.rate_limits.per_endpoint = {rate_per_endpoint, window};
        o.rate_limits.global = {rate_global, window};
        asio::io_context io;
        callsavvy::client c(io.get_executor(), std::move(o));
        close_on_signal interrupt(io, c);

        import_state st{*this, s, *journal, failed_out, earlier, total};
        int code = exit_internal;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                const int r = co_await st.resolve(c, doubt_phones);
                if (r != exit_ok) {
                    code = r;
                    co_return;
                }
                code = co_await st.run_import(c, ro);
            },
            [&](std::exception_ptr e) {
                interrupt.signals.cancel();
                c.close();
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& x) {
                        print_error(s, "internal", x.what());
                    }
                    code = exit_internal;
                }
            });
        io.run();
        failed_out.flush();
        if (interrupt.number != 0) {
            // The summary is out already: the import completes (its calls cut short) before io.run() returns.
            print_error(s, "interrupted",
                        "by signal " + std::to_string(interrupt.number) + "; run again with --resume to finish");
            return exit_interrupted + interrupt.number;
        }
        return code;
    }

    // One run of the import: the journal, the counts, the rows in flight.
    struct import_state {
        const import_command& cmd;
        const secrets& s;
        callsavvy_tools::import_journal& journal;
        failed_rows_file& failed_out;
        callsavvy_tools::journal_rows& earlier;
        std::size_t total;

        std::size_t created = 0, failed = 0, malformed = 0, unknown = 0;
        std::size_t confirmed_earlier = 0, found_on_server = 0;
        std::size_t done_this_run = 0;
        std::vector<std::size_t> line_of_row{};                      // by the import's row index
        std::map<std::size_t, std::vector<std::string>> fields_of{}; // the rows in flight: line -> fields
        std::deque<pending_row> queue{};
        std::optional<std::string> journal_failure{};
        std::optional<std::pair<callsavvy::error_code, std::string>> first_error{};
        bool sync_posted = false;

        // Rows an earlier run sent without recording an answer: a contact with the row's phone number on the
        // server means the request was processed (created); none means it was not, and the row goes again.
        using lookup_result = callsavvy::batch_result<api::list_contacts>;

        // listContacts calls; nullopt (after saying why, with `code` set) when one of them failed.
        asio::awaitable<std::optional<lookup_result>>
        lookup(callsavvy::client& c, std::vector<api::list_contacts_request> requests, int& code) {
            callsavvy::batch_options bo;
            bo.max_in_flight = cmd.max_in_flight;
            auto run = callsavvy::async_run_batch(c, api::list_contacts{}, std::move(requests), bo);
            lookup_result result = co_await std::move(run);
            for (const auto& item : result.items) {
                if (!item.ec) continue;
                const auto fc = classify(item.ec);
                print_error(s, fc.label,
                            "cannot check the rows sent without an answer: " +
                                std::string(callsavvy::api_error(item.ec, item.diag).what()));
                code = fc.code;
                co_return std::nullopt;
            }
            co_return result;
        }

        // Rows an earlier run sent without recording an answer: a contact with the row's phone number on the
        // server means the request was processed (created); none means it was not, and the row goes again.
        // The contacts come from every page of the account's list or from one search per phone number,
        // whichever takes fewer requests (the first page says how many pages there are).
        asio::awaitable<int> resolve(callsavvy::client& c, const std::map<std::size_t, std::string>& phones) {
            if (phones.empty()) co_return exit_ok;
            constexpr std::int64_t per_page = 100; // the spec's largest page
            int code = exit_ok;
            std::vector<api::list_contacts_request> first(1);
            first[0].per_page = per_page;
            const auto page_one = co_await lookup(c, std::move(first), code);
            if (!page_one) co_return code;
            const std::int64_t pages = page_one->items[0].response->pagination.total_pages.value_or(1);
            std::set<std::string> distinct;
            for (const auto& entry : phones) distinct.insert(entry.second);

            std::multimap<std::string, std::string> on_server; // phone -> contact id
            const auto collect = [&](const lookup_result& r) {
                for (const auto& item : r.items)
                    for (const auto& ct : item.response->contacts)
                        if (ct.phone && distinct.contains(*ct.phone))
                            on_server.emplace(*ct.phone, ct.contact_id.value_or(""));
            };
            std::vector<api::list_contacts_request> rest;
            const bool by_pages = pages <= static_cast<std::int64_t>(distinct.size());
            if (by_pages) {
                collect(*page_one);
                for (std::int64_t p = 2; p <= pages; ++p) {
                    api::list_contacts_request r;
                    r.page = p;
                    r.per_page = per_page;
                    rest.push_back(std::move(r));
                }
            } else {
                for (const auto& phone : distinct) {
                    api::list_contacts_request r;
                    r.search = phone;
                    r.per_page = per_page;
                    rest.push_back(std::move(r));
                }
            }
            const auto more = co_await lookup(c, std::move(rest), code);
            if (!more) co_return code;
            collect(*more);

            std::map<std::string, std::size_t> used; // contacts of a phone already matched to a row
            for (const auto& [line, phone] : phones) {
                const auto [from, to] = on_server.equal_range(phone);
                std::size_t& n = used[phone];
                if (static_cast<std::size_t>(std::distance(from, to)) > n) {
                    const std::string id = std::next(from, static_cast<std::ptrdiff_t>(n))->second;
                    ++n;
                    journal.created(line, id);
                    earlier[line] = callsavvy_tools::journaled_row{callsavvy_tools::row_state::created, id};
                    ++found_on_server;
                } else {
                    earlier.erase(line);
                }
            }
            journal.sync();
            co_return exit_ok;
        }

        void progress(callsavvy_tools::progress_line& line, const callsavvy::batch_progress& p) {
            callsavvy::batch_progress q = p;
            q.done = created + failed + malformed + unknown;
            q.succeeded = created;
            q.failed = failed + malformed;
            q.total = total;
            const double secs = std::chrono::duration<double>(p.elapsed).count();
            q.rate = secs > 0.1 ? static_cast<double>(done_this_run) / secs : 0;
            q.eta.reset();
            if (!p.final && q.rate > 0 && total > q.done)
                q.eta = std::chrono::milliseconds(
                    static_cast<long long>(static_cast<double>(total - q.done) / q.rate * 1000));
            q.not_started = 0;
            line(q);
        }

        // Fills the queue with the next request's rows and journals them as sent, durably, before the request
        // can leave: they are handed out only after this returns.
        void fill() {
            std::vector<std::size_t> lines;
            while (queue.size() < cmd.chunk_size) {
                auto next = in->next();
                if (!next) break;
                auto& [row, fields] = *next;
                if (!row.ok()) {
                    ++malformed;
                    std::cerr << one_line("callsavvy import: line " + std::to_string(row.line) + ": " + row.error +
                                              " (skipped)",
                                          2000)
                              << '\n';
                    failed_out.row(row.line, fields, row.error);
                    continue;
                }
                // Only created and failed rows are confirmed; resolve() settled every "sent" one it could, and
                // one it could not goes again rather than being counted.
                if (const auto e = earlier.find(row.line);
                    e != earlier.end() && e->second.state != callsavvy_tools::row_state::sent) {
                    ++confirmed_earlier;
                    if (e->second.state == callsavvy_tools::row_state::created) ++created;
                    else {
                        ++failed;
                        failed_out.row(row.line, fields, e->second.detail);
                    }
                    continue;
                }
                lines.push_back(row.line);
                queue.push_back(pending_row{row.line, std::move(*row.contact), std::move(fields)});
            }
            if (!lines.empty()) journal.sent(lines);
        }

        std::optional<api::new_contact> next_row() {
            if (queue.empty()) fill();
            if (queue.empty()) return std::nullopt;
            pending_row r = std::move(queue.front());
            queue.pop_front();
            line_of_row.push_back(r.line);
            fields_of.emplace(r.line, std::move(r.fields));
            return std::move(r.contact);
        }

        void on_row(callsavvy::contact_row_result&& r, const asio::any_io_executor& ex) {
            const std::size_t line = line_of_row.at(r.row);
            ++done_this_run;
            try {
                switch (r.status) {
                case callsavvy::contact_row_status::created:
                    ++created;
                    journal.created(line, r.contact_id.value_or(""));
                    break;
                case callsavvy::contact_row_status::failed:
                    ++failed;
                    journal.failed(line, r.message);
                    failed_out.row(line, fields_of[line], r.message);
                    break;
                case callsavvy::contact_row_status::not_processed: {
                    ++unknown;
                    const std::size_t one[] = {line};
                    journal.unsent(one);
                    if (!first_error) first_error.emplace(r.ec, r.message);
                    break;
                }
                case callsavvy::contact_row_status::outcome_unknown:
                    ++unknown;
                    if (!first_error) first_error.emplace(r.ec, r.message);
                    break;
                }
            } catch (const callsavvy_tools::journal_error& e) {
                if (!journal_failure) journal_failure = e.what();
            }
            fields_of.erase(line);
            // The rows of one answer arrive together: one fsync after the last of them.
            if (!sync_posted) {
                sync_posted = true;
                asio::post(ex, [this] {
                    sync_posted = false;
                    try {
                        journal.sync();
                    } catch (const callsavvy_tools::journal_error& e) {
                        if (!journal_failure) journal_failure = e.what();
                    }
                });
            }
        }

        asio::awaitable<int> run_import(callsavvy::client& c, const callsavvy::csv::contact_reader_options& ro) {
            in.emplace(cmd.file, ro);
            callsavvy_tools::progress_line line("contacts");
            callsavvy::contact_import_options opts;
            opts.chunk_size = cmd.chunk_size;
            if (!cmd.group_id.empty()) opts.group_id = cmd.group_id;
            opts.batch.max_in_flight = cmd.max_in_flight;
            // A request's failure (refused keys, a 5xx) would repeat for every request: stop, and let --resume
            // continue once the cause is fixed.
            opts.batch.policy = callsavvy::batch_policy::stop_on_first_error;
            opts.batch.on_progress = [this, &line](const callsavvy::batch_progress& p) { progress(line, p); };
            const asio::any_io_executor ex = c.get_executor();
            auto run = callsavvy::async_stream_import_contacts(
                c, [this] { return next_row(); }, std::move(opts),
                [this, ex](callsavvy::contact_row_result&& r) { on_row(std::move(r), ex); });
            const callsavvy::contact_import_summary summary = co_await std::move(run);
            try {
                journal.sync();
            } catch (const callsavvy_tools::journal_error& e) {
                if (!journal_failure) journal_failure = e.what();
            }
            int code = exit_ok;
            if (summary.exception) {
                try {
                    std::rethrow_exception(summary.exception);
                } catch (const callsavvy_tools::journal_error& e) {
                    if (!journal_failure) journal_failure = e.what();
                } catch (const std::exception& e) {
                    print_error(s, "internal", e.what());
                    code = exit_internal;
                }
            }
            if (journal_failure) {
                print_error(s, "journal", *journal_failure + " (the import stopped; nothing unrecorded was sent)");
                code = exit_internal;
            } else if (first_error) {
                const auto fc = classify(first_error->first);
                print_error(s, fc.label, first_error->second);
                if (code == exit_ok) code = fc.code;
            }
            if (code == exit_ok && unknown > 0) code = exit_outcome_unknown;
            print_summary();
            co_return code;
        }

        void print_summary() const {
            std::string line = "callsavvy import: " + std::to_string(created) + " created, " + std::to_string(failed) +
                               " failed, " + std::to_string(malformed) + " skipped (malformed), " +
                               std::to_string(unknown) + " unknown";
            // Rows found on the server are confirmed when the file is read again, with the journal's own.
            if (confirmed_earlier > 0)
                line += " (resumed: " + std::to_string(confirmed_earlier - found_on_server) +
                        " confirmed by the journal, " + std::to_string(found_on_server) + " found on the server)";
            std::cout << line << '\n' << std::flush;
        }

        std::optional<input> in{};
    };

    bool run_requested = false;
};

// ---------------------------------------------------------------------------------------------------------
// callsavvy trigger

// Userinfo for a URL: every byte but the unreserved ones percent-encoded.
std::string percent_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') out += ch;
        else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

// A webhook-id of its own for every delivery: the listener answers a repeated id as a duplicate without
// running its handler, and every run of the tool is a new delivery.
std::string delivery_id() {
    std::random_device rd;
    const std::uint64_t n = (std::uint64_t{rd()} << 32) ^ rd() ^
                            static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    static constexpr char hex[] = "0123456789abcdef";
    std::string id = "msg_cli_";
    for (int shift = 60; shift >= 0; shift -= 4) id += hex[(n >> shift) & 0xf];
    return id;
}

struct trigger_command {
    std::string event;
    std::string url;
    std::string body_arg;
    std::string secrets_text;
    std::string basic;
    std::string ca_file;
    bool insecure = false;
    double timeout_seconds = 10;

    void add_to(CLI::App& app) {
        auto* sub = app.add_subcommand("trigger", "Send one webhook event, as Callsavvy would, and print the answer");
        sub->add_option("event", event, "The event's name, e.g. callSummary or callerInformation")->required();
        sub->add_option("--to", url, "The callback URL, e.g. the one `callsavvy listen` prints")->required();
        sub->add_option("fields", body_arg,
                        "The event's fields as a JSON object: JSON text, @file to read it from a file, - to read "
                        "stdin; empty or absent: {}");
        sub->add_option("--signing-secret", secrets_text,
                        "whsec_ secret to sign the delivery with (prefer the environment variable; with several, "
                        "the first)")
            ->envname("CALLSAVVY_WEBHOOK_SECRETS");
        sub->add_option("--basic", basic, "user:password sent as HTTP Basic credentials (prefer the environment)")
            ->envname("CALLSAVVY_WEBHOOK_BASIC");
        auto* ca = sub->add_option("--ca-file", ca_file, "PEM file of the CAs to trust for an https URL")
                       ->check(CLI::ExistingFile);
        sub->add_flag("--insecure-skip-tls-verify", insecure, "Accept any certificate (debugging only)")->excludes(ca);
        sub->add_option("--timeout", timeout_seconds, "Seconds the delivery may take")->check(CLI::PositiveNumber);
        sub->callback([this] { run_requested = true; });
    }

    int run() const {
        namespace wh = callsavvy::webhook;
        namespace testing = callsavvy::testing;
        std::istringstream words(secrets_text);
        std::string secret;
        words >> secret;
        const secrets s{{secret, basic}};
        const wh::event_info* info = wh::find_event(event);
        if (info == nullptr) {
            print_error(s, "usage",
                        "unknown event \"" + one_line(event, 60) +
                            "\" (the events are the spec's: callSummary, callerInformation, ...)");
            return exit_usage;
        }

        // The fields, the same way `call` reads a body.
        call_command reader;
        reader.body_arg = body_arg;
        int code = exit_ok;
        auto fields = reader.read_body(s, code);
        if (!fields) return code;
        json::object body;
        body["event"] = info->name;
        for (auto& [k, v] : *fields)
            if (k != "event") body[k] = std::move(v);
        if (auto err = info->check(body)) {
            print_error(s, "validation",
                        "the fields are not a " + std::string(info->name) + " event: " + err->message());
            return exit_validation;
        }

        std::string target = url;
        if (!basic.empty()) {
            const auto colon = basic.find(':');
            const auto scheme_end = target.find("://");
            if (colon == std::string::npos) {
                print_error(s, "usage", "--basic is not user:password");
                return exit_usage;
            }
            if (scheme_end == std::string::npos) {
                print_error(s, "usage", "--to is not an http or https URL");
                return exit_usage;
            }
            target.insert(scheme_end + 3,
                          percent_encode(basic.substr(0, colon)) + ":" + percent_encode(basic.substr(colon + 1)) + "@");
        }
        testing::webhook_sender_options so;
        if (!secret.empty()) so.signing_secret = secret;
        so.tls.ca_file = ca_file;
        so.tls.insecure_skip_verify = insecure;
        so.timeout = std::chrono::milliseconds(static_cast<long long>(std::ceil(timeout_seconds * 1000)));
        so.keep_alive = false;

        asio::io_context io;
        testing::webhook_sender sender(io.get_executor(), target, so);
        std::optional<testing::delivery_result> result;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                std::string text = json::serialize(body);
                std::string id = delivery_id();
                auto r = co_await sender.deliver(std::move(text), std::move(id));
                result = std::move(r);
            },
            asio::detached);
        io.run();
        if (!result) {
            print_error(s, "internal", "the delivery did not complete");
            return exit_internal;
        }
        if (result->ec) {
            const auto fc = classify(result->ec);
            print_error(s, fc.label, "cannot deliver " + std::string(info->name) + ": " + result->ec.message());
            return fc.code == exit_internal ? exit_transport : fc.code;
        }
        std::cout << "HTTP " << result->status << '\n';
        if (!result->body.empty()) std::cout << s.redact(result->body) << (result->body.ends_with('\n') ? "" : "\n");
        std::cout << std::flush;
        if (result->status < 200 || result->status > 299) {
            print_error(s, "protocol",
                        "the listener answered " + std::string(info->name) + " with HTTP " +
                            std::to_string(result->status));
            return exit_protocol;
        }
        return exit_ok;
    }

    bool run_requested = false;
};

int run(int argc, char** argv) {
    CLI::App app{"callsavvy " CALLSAVVY_VERSION_STRING " — the Callsavvy API from the command line", "callsavvy"};
    // Set before the subcommands exist: CLI11 copies the footer into each one, so `callsavvy call --help`
    // shows the exit codes too.
    app.footer(std::string(exit_code_help));
    app.set_version_flag("--version", CALLSAVVY_VERSION_STRING);
    app.require_subcommand(1);

    resources_command resources;
    resources.add_to(app);
    call_command call;
    call.add_to(app);
    mock_command mock;
    mock.add_to(app);
    listen_command listen;
    listen.add_to(app);
    import_command import_contacts;
    import_contacts.add_to(app);
    trigger_command trigger;
    trigger.add_to(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // CLI11 has its own exit codes and prints two lines; the tool promises one line and code 2.
        // Nothing the user typed is echoed beyond CLI11's message, which names options, not values.
        secrets none;
        std::string what = e.what();
        // CLI11 says "A subcommand is required" for `callsavvy frobnicate` too; name the real problem.
        if (const auto rest = app.remaining();
            app.get_subcommands().empty() && !rest.empty() && !rest.front().starts_with('-'))
            what = "unknown subcommand '" + one_line(rest.front(), 60) + "'";
        print_error(none, "usage", what + " (see callsavvy --help)");
        return exit_usage;
    }

    if (resources.run_requested) return resources.run();
    if (call.run_requested) return call.run();
    if (mock.run_requested) return mock.run();
    if (listen.run_requested) return listen.run();
    if (import_contacts.run_requested) return import_contacts.run();
    if (trigger.run_requested) return trigger.run();
    return exit_usage; // unreachable: require_subcommand(1)
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "callsavvy: internal: " << one_line(e.what()) << '\n';
        return exit_internal;
    }
}

// What the comparison clients (curl_multi_bench, beast_client_bench, httplib_bench) share, so that each sends
// the same request as callsavvy's getSummary call and reports the same way:
//   <prog> --url http[s]://127.0.0.1:PORT/v1/getSummary --connections 64 --duration 10 [--ca ca.pem]
// Each runs for 1 s of warm-up plus --duration seconds, counts the answers completed in the measured
// window, treats any answer that is not a 200 with the envelope's length (or any transport error) as an
// error, and prints exactly one line on stdout: "rps <requests per second> errors <n>".
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef CALLSAVVY_BENCH_SUMMARY_LENGTH
#error "CALLSAVVY_BENCH_SUMMARY_LENGTH (the size of benchmarks/get_summary.json) is set by benchmarks/CMakeLists.txt"
#endif

namespace bench {

using clock = std::chrono::steady_clock;

/// The size of the fixed getSummary envelope nginx answers with (benchmarks/get_summary.json).
inline constexpr std::size_t expected_body_length = CALLSAVVY_BENCH_SUMMARY_LENGTH;

/// The request body callsavvy sends for getSummary, which has no parameters.
inline constexpr std::string_view request_body = "{}";

/// The headers callsavvy sends on every call besides Host and Content-Length (the sandbox key pair of the
/// spec, which the fixed-reply server ignores).
inline const std::vector<std::pair<std::string, std::string>>& request_headers() {
    static const std::vector<std::pair<std::string, std::string>> h{
        {"Content-Type", "application/json"},
        {"Accept", "application/json"},
        {"User-Agent", "callsavvy-bench/0.1"},
        {"Public-Key", "TEST-hdo76HDCGAjfig4jbnyUI4734BNDY"},
        {"Private-Key", "TEST-934HDHD84JDVBPSW73BYjegh494WD9084NFUih34-9974r"},
    };
    return h;
}

struct options {
    std::string url;
    bool tls = false;
    std::string host;
    std::string port;
    std::string target; // path and query, starting with '/'
    int connections = 64;
    int duration = 10;
    std::string ca; // CA bundle the server's certificate must chain to (TLS); empty: the system's
};

[[noreturn]] inline void usage(const char* prog, std::string_view why) {
    std::cerr << prog << ": " << why << "\nusage: " << prog
              << " --url http[s]://HOST:PORT/PATH --connections N --duration SECONDS [--ca ca.pem]\n";
    std::exit(2);
}

inline options parse_options(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc) usage(argv[0], "missing value after " + std::string(a));
        const std::string v = argv[++i];
        if (a == "--url") o.url = v;
        else if (a == "--connections")
            o.connections = std::atoi(v.c_str());
        else if (a == "--duration")
            o.duration = std::atoi(v.c_str());
        else if (a == "--ca")
            o.ca = v;
        else
            usage(argv[0], "unknown option " + std::string(a));
    }
    if (o.connections < 1 || o.duration < 1) usage(argv[0], "--connections and --duration must be positive");
    std::string_view rest = o.url;
    if (rest.starts_with("https://")) {
        o.tls = true;
        rest.remove_prefix(8);
    } else if (rest.starts_with("http://")) {
        rest.remove_prefix(7);
    } else {
        usage(argv[0], "--url must start with http:// or https://");
    }
    const auto slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    o.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    const auto colon = authority.rfind(':');
    if (colon == std::string_view::npos) {
        o.host = std::string(authority);
        o.port = o.tls ? "443" : "80";
    } else {
        o.host = std::string(authority.substr(0, colon));
        o.port = std::string(authority.substr(colon + 1));
    }
    if (o.host.empty() || o.port.empty()) usage(argv[0], "--url needs a host and a port");
    return o;
}

/// The measured window: answers completed in [start + 1 s, start + 1 s + duration) are counted.
struct window {
    clock::time_point warm_until;
    clock::time_point end;
    explicit window(const options& o)
        : warm_until(clock::now() + std::chrono::seconds(1)), end(warm_until + std::chrono::seconds(o.duration)) {}
    bool counts(clock::time_point t) const { return t >= warm_until && t < end; }
    bool over(clock::time_point t) const { return t >= end; }
};

inline void report(std::uint64_t counted, std::uint64_t errors, const options& o) {
    std::printf("rps %.0f errors %llu\n", static_cast<double>(counted) / o.duration,
                static_cast<unsigned long long>(errors));
    std::fflush(stdout);
}

} // namespace bench

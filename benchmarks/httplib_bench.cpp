// httplib_bench — cpp-httplib as a user would use it instead of callsavvy. Its client is blocking, so the
// program runs --connections threads, each with its own keep-alive httplib::Client (an SSLClient for
// https://, TCP_NODELAY on), POSTing getSummary in a loop: a thread per connection, unlike the other clients' one
// thread. TLS is verified against --ca (peer and host name/IP). See compare_common.hpp for arguments and output.
#include "compare_common.hpp"

#include <httplib.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    const bench::options o = bench::parse_options(argc, argv);
    httplib::Headers headers;
    for (const auto& [name, value] : bench::request_headers())
        if (name != "Content-Type") // given with the body
            headers.emplace(name, value);
    const std::string scheme_host_port = (o.tls ? "https://" : "http://") + o.host + ":" + o.port;
    const std::string body(bench::request_body);

    const bench::window w(o);
    std::vector<std::uint64_t> counted(static_cast<std::size_t>(o.connections), 0);
    std::vector<std::uint64_t> errors(static_cast<std::size_t>(o.connections), 0);
    std::mutex report_first;
    bool reported = false;
    std::vector<std::thread> threads;
    for (int i = 0; i < o.connections; ++i) {
        threads.emplace_back([&, i] {
            httplib::Client cli(scheme_host_port);
            cli.set_keep_alive(true);
            // Off by default: it writes the headers and the body apart, and Nagle's algorithm then holds the
            // body until the server's delayed ACK, 40 ms per request. Every user who measures turns it on.
            cli.set_tcp_nodelay(true);
            if (o.tls) {
                cli.enable_server_certificate_verification(true);
                if (!o.ca.empty()) cli.set_ca_cert_path(o.ca);
            }
            const auto n = static_cast<std::size_t>(i);
            for (;;) {
                const auto res = cli.Post(o.target, headers, body, "application/json");
                const auto now = bench::clock::now();
                if (!res || res->status != 200 || res->body.size() != bench::expected_body_length) {
                    ++errors[n];
                    const std::lock_guard lock(report_first);
                    if (!reported) {
                        reported = true;
                        std::cerr << "httplib_bench: "
                                  << (res ? "status " + std::to_string(res->status) + ", " +
                                                std::to_string(res->body.size()) + " body bytes"
                                          : httplib::to_string(res.error()))
                                  << "\n";
                    }
                    if (!res) return;
                } else if (w.counts(now)) {
                    ++counted[n];
                }
                if (w.over(now)) return;
            }
        });
    }
    for (auto& t : threads) t.join();
    std::uint64_t c = 0, e = 0;
    for (std::size_t i = 0; i < counted.size(); ++i) {
        c += counted[i];
        e += errors[i];
    }
    bench::report(c, e, o);
    return e == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

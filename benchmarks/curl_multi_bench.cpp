// curl_multi_bench — libcurl's multi interface as a user would drive it instead of callsavvy: one thread,
// --connections easy handles each keeping its own keep-alive connection, each POSTing getSummary again as
// soon as its answer is complete. TLS is verified against --ca (peer and host name/IP). See
// compare_common.hpp for the arguments and the one line printed.
#include "compare_common.hpp"

#include <curl/curl.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct transfer {
    CURL* easy = nullptr;
    std::size_t received = 0;
};

std::size_t on_body(char*, std::size_t size, std::size_t n, void* user) {
    static_cast<transfer*>(user)->received += size * n;
    return size * n;
}

} // namespace

int main(int argc, char** argv) {
    const bench::options o = bench::parse_options(argc, argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* multi = curl_multi_init();
    // Every handle keeps its connection: the cache must hold one per handle.
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(o.connections));
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(o.connections));

    curl_slist* headers = nullptr;
    for (const auto& [name, value] : bench::request_headers())
        headers = curl_slist_append(headers, (name + ": " + value).c_str());
    headers = curl_slist_append(headers, "Expect:"); // never wait for 100-continue

    std::vector<transfer> transfers(static_cast<std::size_t>(o.connections));
    for (auto& t : transfers) {
        t.easy = curl_easy_init();
        curl_easy_setopt(t.easy, CURLOPT_URL, o.url.c_str());
        curl_easy_setopt(t.easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(t.easy, CURLOPT_POSTFIELDS, bench::request_body.data());
        curl_easy_setopt(t.easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(bench::request_body.size()));
        curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(t.easy, CURLOPT_PRIVATE, &t);
        curl_easy_setopt(t.easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
        curl_easy_setopt(t.easy, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(t.easy, CURLOPT_SSL_VERIFYHOST, 2L);
        if (!o.ca.empty()) curl_easy_setopt(t.easy, CURLOPT_CAINFO, o.ca.c_str());
        curl_multi_add_handle(multi, t.easy);
    }

    const bench::window w(o);
    std::uint64_t counted = 0, errors = 0;
    int running = 0;
    std::size_t active = transfers.size();
    while (active > 0) {
        curl_multi_perform(multi, &running);
        int left = 0;
        while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            transfer* t = nullptr;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            const auto now = bench::clock::now();
            if (m->data.result != CURLE_OK || status != 200 || t->received != bench::expected_body_length) {
                if (errors++ == 0)
                    std::cerr << "curl_multi_bench: " << curl_easy_strerror(m->data.result) << ", status " << status
                              << ", " << t->received << " body bytes\n";
            } else if (w.counts(now)) {
                ++counted;
            }
            curl_multi_remove_handle(multi, m->easy_handle);
            t->received = 0;
            if (w.over(now) || m->data.result != CURLE_OK) --active;
            else
                curl_multi_add_handle(multi, m->easy_handle); // the same handle: its connection is reused
        }
        if (active > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    for (auto& t : transfers) curl_easy_cleanup(t.easy);
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    bench::report(counted, errors, o);
    return errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

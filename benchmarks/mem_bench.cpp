// mem_bench — what a call in flight costs in resident memory. A child process accepts connections and never
// answers (a slow server); the client starts --calls typed getSummary calls at once and, when every one is
// waiting for its answer, the growth of the process's resident set over the baseline is divided by the number
// of calls. Two runs: one connection per call (max_connections = calls: the connection's buffers count), and
// 64 connections with the rest of the calls queued in the pool (the call itself: its state and coroutine
// frames). Then the client is closed and every call must end with an error: none is lost. Each run is a
// process of its own.
//   mem_bench [--calls 10000]
// Prints "mem_bench: <calls> calls on <connections> connections: <bytes> bytes resident per call in flight".
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace {

long resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return resident * sysconf(_SC_PAGESIZE);
}

/// The slow server: accepts and holds every connection, reads nothing, answers nothing, until killed.
[[noreturn]] void hold_connections(int listener) {
    std::vector<int> held;
    for (;;) {
        const int fd = ::accept(listener, nullptr, nullptr);
        if (fd >= 0) held.push_back(fd);
    }
}

/// Forks the slow server on a loopback port; returns its pid (-1 on failure) and sets `port`.
pid_t start_slow_server(unsigned short& port) {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 4096) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        std::perror("mem_bench: listen");
        return -1;
    }
    const pid_t pid = ::fork();
    if (pid == 0) hold_connections(listener);
    ::close(listener);
    port = ntohs(addr.sin_port);
    return pid;
}

struct tally {
    std::size_t started = 0;
    std::size_t ended = 0;
    std::size_t succeeded = 0; ///< must stay 0: the server never answers
};

asio::awaitable<void> one_call(callsavvy::client& cs, tally& t) {
    ++t.started;
    auto [ec, summary] = co_await cs.async_get_summary({}, asio::experimental::as_tuple(asio::use_awaitable));
    (void)summary;
    ++t.ended;
    if (!ec) ++t.succeeded;
}

/// One run: `calls` calls over at most `connections` connections to the server on `port`. Returns false when a
/// call was lost or answered.
bool measure(unsigned short port, std::size_t calls, std::size_t connections) {
    callsavvy::client_options o;
    o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1/";
    const auto key = callsavvy::testing::sandbox_key();
    o.keys = {key.public_key, key.private_key};
    o.max_connections = connections;
    o.rate_limits.enabled = false;
    o.attempt_timeout = std::chrono::minutes(5);
    o.call_deadline = std::chrono::minutes(5);

    asio::io_context io(1);
    callsavvy::client cs(io.get_executor(), o);
    tally t;
    // The baseline after one warm-up run of the event loop: the client, its pool and Asio's own state exist.
    io.poll();
    io.restart(); // poll() ran out of work, which stops the context
    const long before = resident_bytes();
    for (std::size_t i = 0; i < calls; ++i) asio::co_spawn(io, one_call(cs, t), asio::detached);

    // Every call is in flight once the pool has opened what it may and the loop has nothing left to do but
    // wait for answers: run until the open count is reached and the resident set stops growing.
    const std::size_t expected_open = std::min(calls, connections);
    long after = 0;
    for (int settled = 0, rounds = 0; settled < 3 && rounds < 600; ++rounds) {
        io.run_for(std::chrono::milliseconds(50));
        const long now = resident_bytes();
        settled = cs.open_connections() == expected_open && now == after ? settled + 1 : 0;
        after = now;
    }
    const bool all_open = cs.open_connections() == expected_open;
    const double per_call = static_cast<double>(after - before) / static_cast<double>(calls);
    std::printf("mem_bench: %zu calls on %zu connections: %.0f bytes resident per call in flight\n", calls,
                expected_open, per_call);

    cs.close();
    io.restart();
    io.run_for(std::chrono::seconds(10));
    if (!all_open)
        std::fprintf(stderr, "mem_bench: only %zu of %zu connections opened\n", cs.open_connections(), expected_open);
    if (t.started != calls || t.ended != calls || t.succeeded != 0) {
        std::fprintf(stderr, "mem_bench: %zu calls started, %zu ended, %zu answered (expected %zu, %zu, 0)\n",
                     t.started, t.ended, t.succeeded, calls, calls);
        return false;
    }
    return all_open;
}

} // namespace

int main(int argc, char** argv) {
    std::size_t calls = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::string_view(argv[i]) == "--calls") calls = std::stoul(argv[i + 1]);
        else {
            std::cerr << "usage: mem_bench [--calls N]\n";
            return 2;
        }
    }
    // One descriptor per connection on each side, in two processes: the soft limit is raised to the hard one,
    // and what does not fit is said plainly rather than measured wrong.
    rlimit fds{};
    getrlimit(RLIMIT_NOFILE, &fds);
    fds.rlim_cur = fds.rlim_max;
    setrlimit(RLIMIT_NOFILE, &fds);
    if (fds.rlim_cur < calls + 64) {
        std::fprintf(stderr, "mem_bench: the descriptor limit %llu is below %zu calls; run with --calls %llu\n",
                     static_cast<unsigned long long>(fds.rlim_cur), calls,
                     static_cast<unsigned long long>(fds.rlim_cur - 64));
        return 2;
    }

    // Each run in its own process with its own server: memory the first run gave back to malloc would hide
    // the second run's growth.
    bool ok = true;
    for (const std::size_t connections : {calls, std::size_t{64}}) {
        std::fflush(stdout);
        const pid_t run = ::fork();
        if (run == 0) {
            unsigned short port = 0;
            const pid_t server = start_slow_server(port);
            if (server < 0) std::_Exit(2);
            const bool good = measure(port, calls, connections);
            ::kill(server, SIGKILL);
            ::waitpid(server, nullptr, 0);
            std::fflush(stdout);
            std::_Exit(good ? EXIT_SUCCESS : EXIT_FAILURE);
        }
        int status = 0;
        ::waitpid(run, &status, 0);
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SUCCESS;
    }
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

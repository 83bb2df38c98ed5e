// embedded — callsavvy inside an application that already runs a multi-threaded io_context (4 threads) for
// its own work. The client gets a strand of that io_context (it is not internally locked); calls start from
// coroutines on any of the threads and complete back on them; the application's own state has its own strand.
// Offline against the in-process mock (on a strand too); exits non-zero if anything differs.
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include <callsavvy/asio.hpp>

#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace api = callsavvy::api;
namespace net = callsavvy::asio;
using namespace net::experimental::awaitable_operators;

// The application's own state: touched only on its strand, so no lock is needed however many threads run.
struct dashboard {
    explicit dashboard(net::io_context& io) : strand(net::make_strand(io)) {}
    net::strand<net::io_context::executor_type> strand;
    std::vector<std::string> tickets;
    std::set<std::thread::id> threads; // where the calls completed
    long work_done = 0;
};

// One of the application's workers: its own CPU work, then calls, each result recorded on the dashboard.
net::awaitable<void> worker(int n, callsavvy::client& cs, dashboard& board) {
    for (int i = 0; i < 3; ++i) {
        long sum = 0;
        for (long k = 0; k < 200000; ++k) sum += k % (n + 2); // stands for the application's own work
        api::create_ticket_request req{.subject = "Worker " + std::to_string(n) + " ticket " + std::to_string(i),
                                       .message = "Raised by the application.",
                                       .sender_email = "ops@example.com"};
        // Started from this thread; runs on the client's strand; resumes here, on the io_context's executor.
        const api::create_ticket_response t = co_await cs.async_create_ticket(std::move(req));
        net::post(board.strand, [&board, sum, id = t.ticket_id.value_or("?"), here = std::this_thread::get_id()] {
            board.tickets.push_back(id);
            board.threads.insert(here);
            board.work_done += sum;
        });
    }
}

int main() {
    net::io_context io;
    auto guard = net::make_work_guard(io);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&io] { io.run(); });

    // The mock and the client each on a strand: neither is internally locked.
    const auto mock_strand = net::make_strand(io);
    callsavvy::testing::mock_server mock(mock_strand);
    callsavvy::client_options options;
    const auto key = callsavvy::testing::sandbox_key();
    options.keys = {key.public_key, key.private_key};
    options.base_url = mock.base_url();
    options.proxy.from_environment = false;
    callsavvy::client cs(net::make_strand(io), std::move(options));
    dashboard board(io);

    // Four workers at once on the thread pool (the io_context's plain executor, not a strand).
    auto all = [&]() -> net::awaitable<void> {
        co_await (worker(0, cs, board) && worker(1, cs, board) && worker(2, cs, board) && worker(3, cs, board));
    };
    bool ok = true;
    try {
        net::co_spawn(io, all(), net::use_future).get(); // this thread waits; the pool does the work
    } catch (const std::exception& e) {
        std::cerr << "embedded failed: " << e.what() << '\n';
        ok = false;
    }
    // Read the dashboard on its strand, then close the client and the mock on theirs.
    const std::size_t tickets = net::post(board.strand, net::use_future([&] { return board.tickets.size(); })).get();
    const std::size_t threads_seen =
        net::post(board.strand, net::use_future([&] { return board.threads.size(); })).get();
    net::post(cs.get_executor(), net::use_future([&] { cs.close(); })).get();
    net::post(mock_strand, net::use_future([&] { mock.stop(); })).get();
    guard.reset();
    for (auto& t : threads) t.join();

    std::cout << tickets << " tickets created by 4 workers; calls completed on " << threads_seen << " thread(s)\n";
    ok = ok && tickets == 12;
    if (!ok) std::cerr << "embedded: unexpected result\n";
    return ok ? 0 : 1;
}

// The `callsavvy` command-line tool, run as a child process (the real binary, CALLSAVVY_CLI_PATH) against
// loopback script servers: what it prints, which exit code each failure class gets, that its one error
// line says what happened, and that the API keys never reach its output.
//
// The child's stdout and stderr are read through Asio on the test's own io_context, which also runs the
// server: one thread, no races, and the wait is bounded (the child is killed when it overruns).
#ifdef CALLSAVVY_CLI_PATH

#include <callsavvy/api/catalog.hpp>
#include <callsavvy/csv.hpp>
#include <callsavvy/envelope.hpp>
#include <callsavvy/testing/mock_server.hpp>
#include <callsavvy/testing/webhook_sender.hpp>

#include "support/pki.hpp"
#include "support/run.hpp"
#include "support/script_server.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using cstest::peer;
using cstest::script_server;
namespace json = boost::json;

namespace {

// Long enough to be unmistakable in any output, as real keys are.
const std::string public_key = "TEST-cli-public-4f1c9e2a7b";
const std::string private_key = "TEST-cli-private-d83b6a0c51e94f27";

// The tool's exit codes (tools/callsavvy/main.cpp, README "The callsavvy command-line tool").
enum exit_code : int {
    exit_ok = 0,
    exit_usage = 2,
    exit_validation = 3,
    exit_auth = 4,
    exit_forbidden = 5,
    exit_not_found = 6,
    exit_rate_limited = 7,
    exit_server = 8,
    exit_transport = 9,
    exit_tls = 10,
    exit_timeout = 11,
    exit_outcome_unknown = 12,
    exit_protocol = 13,
};

struct cli_result {
    int exit_code = -1;
    std::string out;
    std::string err;
    bool timed_out = false;
};

void check_posix(int rc, const char* what) {
    if (rc != 0) throw std::system_error(rc, std::generic_category(), what);
}

// The child's pipes as Asio sees them. Shared with the reading coroutines, which may still be queued in
// the io_context after run_cli returns (when the child had to be killed).
struct child_pipes {
    explicit child_pipes(asio::io_context& io, int out_fd, int err_fd) : out(io, out_fd), err(io, err_fd) {}
    asio::posix::stream_descriptor out;
    asio::posix::stream_descriptor err;
    std::string out_text;
    std::string err_text;
    int open = 2;
};

asio::awaitable<void> drain(std::shared_ptr<child_pipes> pipes, bool from_err) {
    auto& d = from_err ? pipes->err : pipes->out;
    auto& sink = from_err ? pipes->err_text : pipes->out_text;
    std::array<char, 4096> buf{};
    for (;;) {
        callsavvy::error_code ec;
        const std::size_t n =
            co_await d.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        sink.append(buf.data(), n);
        if (ec) break; // eof: the child closed its end (it exited); anything else ends the read too
    }
    --pipes->open;
}

// Runs the tool with `args`, an environment of exactly the two keys plus `extra_env` (no proxy variables, no
// CALLSAVVY_BASE_URL from the developer's shell), and `stdin_text` on its stdin. The io_context runs
// meanwhile, so servers on it answer. Bounded by `bound`: an overrunning child is killed.
// A started child: its pid and the pipes its output is being read from.
struct child {
    pid_t pid = 0;
    std::shared_ptr<child_pipes> pipes;
};

child spawn_cli(asio::io_context& io, const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
                const std::string& stdin_text, bool with_keys) {
    std::array<int, 2> in{}, out{}, err{};
    // O_CLOEXEC: the child gets only the ends dup2'ed onto 0, 1 and 2, so EOF means it exited.
    if (pipe2(in.data(), O_CLOEXEC) != 0 || pipe2(out.data(), O_CLOEXEC) != 0 || pipe2(err.data(), O_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), "pipe2");
    // Small enough for the pipe's buffer, so it is written in full before the child starts.
    REQUIRE(stdin_text.size() < 16 * 1024);
    if (!stdin_text.empty() &&
        write(in[1], stdin_text.data(), stdin_text.size()) != static_cast<ssize_t>(stdin_text.size()))
        throw std::system_error(errno, std::generic_category(), "write stdin");
    close(in[1]);

    std::vector<std::string> argv_s{CALLSAVVY_CLI_PATH};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s;
    if (with_keys) {
        env_s.push_back("CALLSAVVY_PUBLIC_KEY=" + public_key);
        env_s.push_back("CALLSAVVY_PRIVATE_KEY=" + private_key);
    }
    // The sanitizers' settings reach the child, so a sanitized build checks the tool as it checks the tests.
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"})
        if (const char* v = std::getenv(name)) // NOLINT(concurrency-mt-unsafe): the test is single-threaded
            env_s.push_back(std::string(name) + "=" + v);
    env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
    std::vector<char*> argv, envp;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    check_posix(posix_spawn_file_actions_init(&fa), "posix_spawn_file_actions_init");
    check_posix(posix_spawn_file_actions_adddup2(&fa, in[0], 0), "adddup2 stdin");
    check_posix(posix_spawn_file_actions_adddup2(&fa, out[1], 1), "adddup2 stdout");
    check_posix(posix_spawn_file_actions_adddup2(&fa, err[1], 2), "adddup2 stderr");
    // Asio's sockets (the test servers') are not close-on-exec: keep them out of the child.
    check_posix(posix_spawn_file_actions_addclosefrom_np(&fa, 3), "addclosefrom_np");
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (spawned != 0) {
        close(out[0]);
        close(err[0]);
        throw std::system_error(spawned, std::generic_category(), "posix_spawn " CALLSAVVY_CLI_PATH);
    }

    auto pipes = std::make_shared<child_pipes>(io, out[0], err[0]);
    asio::co_spawn(io, drain(pipes, false), asio::detached);
    asio::co_spawn(io, drain(pipes, true), asio::detached);
    return child{pid, std::move(pipes)};
}

// Runs the io_context until the child closes its output (it exited), then reaps it. Bounded by `bound`: an
// overrunning child is killed.
cli_result finish_cli(asio::io_context& io, const child& c, std::chrono::steady_clock::duration bound) {
    const pid_t pid = c.pid;
    const auto& pipes = c.pipes;
    cli_result r;
    const auto deadline = std::chrono::steady_clock::now() + bound;
    try {
        cstest::run_until(
            io, [&] { return pipes->open == 0; }, bound, "the callsavvy child to close its output");
    } catch (const std::runtime_error&) {
        r.timed_out = true;
        kill(pid, SIGKILL);
    }
    // Closed pipes mean the child is exiting; still, never wait unboundedly for it.
    int status = 0;
    for (;;) {
        const pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
        if (std::chrono::steady_clock::now() > deadline + 5s) {
            r.timed_out = true;
            kill(pid, SIGKILL);
        }
        std::this_thread::sleep_for(1ms);
    }
    callsavvy::error_code ignored;
    pipes->out.close(ignored); // a killed child's readers end now; their completions run on io later
    pipes->err.close(ignored);
    cstest::run_ready(io);
    r.out = pipes->out_text;
    r.err = pipes->err_text;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

cli_result run_cli(asio::io_context& io, std::vector<std::string> args, std::vector<std::string> extra_env = {},
                   const std::string& stdin_text = "", bool with_keys = true,
                   std::chrono::steady_clock::duration bound = 20s) {
    return finish_cli(io, spawn_cli(io, args, extra_env, stdin_text, with_keys), bound);
}

// What a script saw of each request.
struct journal {
    std::vector<callsavvy::http::request> requests;
};

// Answers every request of every connection with `status` and `body`, recording the requests.
script_server::script answer(std::shared_ptr<journal> j, int status, std::string body) {
    return [j, status, body](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            j->requests.push_back(*req);
            co_await p.respond(status, body);
        }
    };
}

// Answers every request with a success envelope naming the resource that was called, and `data`.
script_server::script succeed(std::shared_ptr<journal> j, json::object data = {}) {
    return [j, data](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            j->requests.push_back(*req);
            const std::string reply =
                callsavvy::make_success_envelope(req->target.substr(req->target.rfind('/') + 1), data);
            co_await p.respond(200, reply);
        }
    };
}

std::string error_envelope(std::string_view resource, std::string_view message) {
    return callsavvy::make_error_envelope(resource, message);
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// The tool's promise for every failure: one line on stderr, naming the tool.
void check_one_error_line(const cli_result& r) {
    INFO("stderr: " << r.err);
    CHECK(lines_of(r.err).size() == 1);
    CHECK(r.err.starts_with("callsavvy: "));
    CHECK(r.err.ends_with("\n"));
}

void check_no_keys(const cli_result& r) {
    CHECK(r.out.find(public_key) == std::string::npos);
    CHECK(r.err.find(public_key) == std::string::npos);
    CHECK(r.out.find(private_key) == std::string::npos);
    CHECK(r.err.find(private_key) == std::string::npos);
}

// Runs the io_context until pred() holds while the child runs; kills the child (and rethrows) when it does not
// within the bound, so a failing test leaves no process behind.
void wait_with_child(asio::io_context& io, const child& c, const std::function<bool()>& pred, const std::string& what) {
    try {
        cstest::run_until(io, pred, 20s, what);
    } catch (...) {
        kill(c.pid, SIGKILL);
        (void)finish_cli(io, c, 5s);
        throw;
    }
}

// Kills and reaps a child the test did not stop itself (a REQUIRE failed on the way), so that no process
// outlives the test.
struct kill_on_exit {
    pid_t pid = 0;
    bool reaped = false;
    ~kill_on_exit() {
        if (reaped) return;
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
};

// Waits for the first line a server child (mock, listen) prints on stdout or stderr and returns it.
std::string first_line_of(asio::io_context& io, const child& c, bool from_err) {
    const std::string& text = from_err ? c.pipes->err_text : c.pipes->out_text;
    wait_with_child(
        io, c, [&] { return text.find('\n') != std::string::npos; }, "the child's first line");
    return text.substr(0, text.find('\n'));
}

const std::string valid_ticket = R"({"subject":"Hi","message":"Body","sender_email":"a@example.com"})";

} // namespace

TEST_CASE("callsavvy resources lists every endpoint of the catalog, one line each", "[cli]") {
    asio::io_context io;
    const auto r = run_cli(io, {"resources"});
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == exit_ok);
    CHECK(r.err.empty());
    const auto lines = lines_of(r.out);
    REQUIRE(lines.size() == 35);
    REQUIRE(callsavvy::api::catalog().size() == 35);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto& e = callsavvy::api::catalog()[i];
        INFO(lines[i]);
        CHECK(lines[i].starts_with(std::string(e.resource) + " "));
        CHECK(lines[i].find(std::string(e.title)) != std::string::npos);
        CHECK(lines[i].find(std::string(callsavvy::api::group_name(e.group))) != std::string::npos);
        CHECK(lines[i].ends_with(e.read_only ? "read-only" : "changes state"));
    }

    const auto md = run_cli(io, {"resources", "--markdown"});
    CHECK(md.exit_code == exit_ok);
    const auto rows = lines_of(md.out);
    REQUIRE(rows.size() == 2 + 35);
    CHECK(rows[0] == "| resource URI | name | group | read-only | collection |");
    CHECK(rows[2] == "| `getSummary` | Get Business Summary | Account | yes | — |");
    CHECK(md.out.find("| `listTickets` | List Tickets | Tickets | yes | `tickets` |") != std::string::npos);
    CHECK(md.out.find("| `createTicket` | Create New Ticket | Tickets | no | — |") != std::string::npos);
}

TEST_CASE("callsavvy call prints the response's data, every field, and exits 0", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    const std::string data =
        R"({"ticket_id":"T-1","status":"open","unknown_field":{"nested":[1,"2",null]},"n":12345678901234})";
    script_server server(
        io.get_executor(),
        answer(j, 200, callsavvy::make_success_envelope("createTicket", json::parse(data).as_object())));
    const auto r = run_cli(io, {"call", "createTicket", valid_ticket, "--base-url", server.base_url()});
    REQUIRE_FALSE(r.timed_out);
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == exit_ok);
    CHECK(r.err.empty());
    CHECK(json::parse(r.out) == json::parse(data));
    REQUIRE(j->requests.size() == 1);
    const auto& req = j->requests[0];
    CHECK(req.method == "POST");
    CHECK(req.target == "/v1/createTicket");
    CHECK(req.headers.find("Public-Key") == public_key);
    CHECK(req.headers.find("Private-Key") == private_key);
    CHECK(json::parse(req.body) == json::parse(valid_ticket));
    check_no_keys(r);

    // --compact: the same data on one line.
    const auto c = run_cli(io, {"call", "createTicket", valid_ticket, "--compact", "--base-url", server.base_url()});
    CHECK(c.exit_code == exit_ok);
    CHECK(lines_of(c.out).size() == 1);
    CHECK(json::parse(c.out) == json::parse(data));
}

TEST_CASE("callsavvy call takes its body from @file, from stdin with -, or sends {}", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    script_server server(io.get_executor(), succeed(j));
    const auto dir = std::filesystem::temp_directory_path();
    const auto file = dir / ("callsavvy-cli-test-" + std::to_string(getpid()) + ".json");
    { std::ofstream(file) << R"({"ticket_id":"from-file"})"; }
    const auto from_file =
        run_cli(io, {"call", "getTicketConversation", "@" + file.string(), "--base-url", server.base_url()});
    std::filesystem::remove(file);
    CHECK(from_file.exit_code == exit_ok);
    const auto from_stdin = run_cli(io, {"call", "getTicketConversation", "-", "--base-url", server.base_url()}, {},
                                    R"({"ticket_id":"from-stdin"})");
    CHECK(from_stdin.exit_code == exit_ok);
    const auto empty = run_cli(io, {"call", "getSummary", "--base-url", server.base_url()});
    CHECK(empty.exit_code == exit_ok);
    REQUIRE(j->requests.size() == 3);
    CHECK(json::parse(j->requests[0].body) == json::parse(R"({"ticket_id":"from-file"})"));
    CHECK(json::parse(j->requests[1].body) == json::parse(R"({"ticket_id":"from-stdin"})"));
    CHECK(json::parse(j->requests[2].body) == json::object{});

    const auto missing =
        run_cli(io, {"call", "getSummary", "@/nonexistent/callsavvy.json", "--base-url", server.base_url()});
    CHECK(missing.exit_code == exit_usage);
    check_one_error_line(missing);
    const auto malformed = run_cli(io, {"call", "getSummary", "{\"a\":", "--base-url", server.base_url()});
    CHECK(malformed.exit_code == exit_validation);
    CHECK(malformed.err.find("Malformed JSON body") != std::string::npos);
    CHECK(j->requests.size() == 3);
}

TEST_CASE("callsavvy call checks the body against the catalog before sending anything", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    script_server server(io.get_executor(),
                         answer(j, 400, error_envelope("createTicket", "Missing required parameter: subject")));
    const std::string no_subject = R"({"message":"Body","sender_email":"a@example.com"})";
    const auto r = run_cli(io, {"call", "createTicket", no_subject, "--base-url", server.base_url()});
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == exit_validation);
    CHECK(r.out.empty());
    check_one_error_line(r);
    CHECK(r.err.find("Missing required parameter: subject") != std::string::npos);
    CHECK(server.connections() == 0); // nothing reached the server

    // --no-validate lets the server judge: its HTTP 400 is the same class, with its message.
    const auto sent =
        run_cli(io, {"call", "createTicket", no_subject, "--no-validate", "--base-url", server.base_url()});
    CHECK(sent.exit_code == exit_validation);
    check_one_error_line(sent);
    CHECK(sent.err.find("HTTP 400") != std::string::npos);
    CHECK(sent.err.find("Missing required parameter: subject") != std::string::npos);
    CHECK(j->requests.size() == 1);
}

TEST_CASE("callsavvy call with bad credentials exits with the auth code and never prints the keys", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    script_server server(io.get_executor(), answer(j, 401, error_envelope("getSummary", "Invalid API credentials")));
    const auto r = run_cli(io, {"call", "getSummary", "--base-url", server.base_url()});
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == exit_auth);
    CHECK(r.out.empty());
    check_one_error_line(r);
    CHECK(r.err.find("Invalid API credentials") != std::string::npos);
    check_no_keys(r);
    REQUIRE(j->requests.size() == 1); // 401 is final: no retry
    CHECK(j->requests[0].headers.find("Private-Key") == private_key);

    // Keys given as flags, and a server that echoes them back: still never printed.
    auto echo = std::make_shared<journal>();
    script_server echoing(
        io.get_executor(),
        answer(echo, 401,
               error_envelope("getSummary", "Invalid API credentials: " + public_key + " / " + private_key)));
    const auto flags = run_cli(io,
                               {"call", "getSummary", "--public-key", public_key, "--private-key", private_key,
                                "--base-url", echoing.base_url()},
                               {}, "", false);
    CHECK(flags.exit_code == exit_auth);
    check_one_error_line(flags);
    check_no_keys(flags);
    CHECK(flags.err.find("[redacted]") != std::string::npos);
    REQUIRE(echo->requests.size() == 1);
    CHECK(echo->requests[0].headers.find("Public-Key") == public_key);

    // No keys at all: a usage error, and nothing is sent.
    const auto none = run_cli(io, {"call", "getSummary", "--base-url", echoing.base_url()}, {}, "", false);
    CHECK(none.exit_code == exit_usage);
    check_one_error_line(none);
    CHECK(echo->requests.size() == 1);
}

TEST_CASE("callsavvy call sends a resource the catalog does not know; the server's 404 is not found", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    script_server server(io.get_executor(), answer(j, 404, error_envelope("nope", "Unknown resource: nope")));
    const auto r = run_cli(io, {"call", "nope", R"({"anything":1})", "--base-url", server.base_url()});
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == exit_not_found);
    check_one_error_line(r);
    CHECK(r.err.find("Unknown resource: nope") != std::string::npos);
    REQUIRE(j->requests.size() == 1);
    CHECK(j->requests[0].target == "/v1/nope");
}

TEST_CASE("callsavvy call gives each HTTP failure class its own exit code", "[cli]") {
    struct row {
        int status;
        std::string message;
        int code;
        std::string says;
    };
    const std::vector<row> rows{
        {403, "IP address not whitelisted", exit_forbidden, "forbidden (HTTP 403): IP address not whitelisted"},
        {429, "Too many requests", exit_rate_limited, "rate limited (HTTP 429): Too many requests"},
        // createTicket changes state: a 5xx leaves its outcome unknown.
        {500, "Internal error", exit_outcome_unknown, "whether it was processed is unknown (HTTP 500): Internal error"},
        {503, "Unavailable", exit_outcome_unknown, "whether it was processed is unknown (HTTP 503): Unavailable"},
        {405, "Method not allowed", exit_protocol, "protocol: "},
        {418, "Teapot", exit_protocol, "protocol: unexpected HTTP status (HTTP 418): Teapot"},
    };
    for (const auto& row : rows) {
        DYNAMIC_SECTION("HTTP " << row.status) {
            asio::io_context io;
            auto j = std::make_shared<journal>();
            script_server server(io.get_executor(), answer(j, row.status, error_envelope("createTicket", row.message)));
            // The library retries a 429 until the call's deadline: --timeout bounds it.
            const auto r =
                run_cli(io, {"call", "createTicket", valid_ticket, "--timeout", "1", "--base-url", server.base_url()});
            REQUIRE_FALSE(r.timed_out);
            CHECK(r.exit_code == row.code);
            check_one_error_line(r);
            INFO("stderr: " << r.err);
            CHECK(r.err.find(row.says) != std::string::npos);
            // createTicket changes state: only a 429 (which proves it was not processed) may be sent again.
            if (row.status == 429) CHECK(j->requests.size() >= 1U);
            else
                CHECK(j->requests.size() == 1U);
        }
    }
}

TEST_CASE("callsavvy call: a read-only call is retried after a 5xx, then exits with the server code", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    script_server server(io.get_executor(), answer(j, 502, error_envelope("listTickets", "Bad gateway")));
    const auto r = run_cli(io, {"call", "listTickets", "--base-url", server.base_url()});
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == exit_server);
    check_one_error_line(r);
    INFO("stderr: " << r.err);
    CHECK(r.err.find("server error (HTTP 502): Bad gateway") != std::string::npos);
    CHECK(j->requests.size() == 3U); // the client's default: 3 attempts
}

TEST_CASE("callsavvy call: transport, timeout, outcome unknown and protocol failures", "[cli]") {
    asio::io_context io;
    SECTION("nothing listens: transport") {
        std::uint16_t port = 0;
        {
            asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
            port = a.local_endpoint().port();
        }
        const auto r =
            run_cli(io, {"call", "getSummary", "--base-url", "http://127.0.0.1:" + std::to_string(port) + "/v1/"});
        CHECK(r.exit_code == exit_transport);
        check_one_error_line(r);
        CHECK(r.err.find("callsavvy: transport: ") != std::string::npos);
    }
    SECTION("no answer to a read-only call: timeout") {
        script_server server(io.get_executor(), [](peer& p) -> asio::awaitable<void> { co_await p.stall(); });
        const auto r = run_cli(io, {"call", "getSummary", "--timeout", "0.5", "--base-url", server.base_url()});
        CHECK(r.exit_code == exit_timeout);
        check_one_error_line(r);
        CHECK(r.err.find("callsavvy: timeout: ") != std::string::npos);
    }
    SECTION("no answer to a state-changing call: outcome unknown") {
        script_server server(io.get_executor(), [](peer& p) -> asio::awaitable<void> { co_await p.stall(); });
        const auto r =
            run_cli(io, {"call", "createTicket", valid_ticket, "--timeout", "0.5", "--base-url", server.base_url()});
        CHECK(r.exit_code == exit_outcome_unknown);
        check_one_error_line(r);
        CHECK(r.err.find("callsavvy: outcome unknown") != std::string::npos);
        CHECK(server.connections() == 1); // never re-sent
    }
    SECTION("an answer that is not an envelope: protocol") {
        auto j = std::make_shared<journal>();
        script_server server(io.get_executor(), answer(j, 200, "<html>not json</html>"));
        const auto r = run_cli(io, {"call", "getSummary", "--base-url", server.base_url()});
        CHECK(r.exit_code == exit_protocol);
        check_one_error_line(r);
        CHECK(r.err.find("not valid JSON") != std::string::npos);
    }
}

TEST_CASE("callsavvy call over TLS trusts a private CA given with --ca-file", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    cstest::server_options tls;
    tls.tls = true;
    script_server server(
        io.get_executor(),
        answer(j, 200, callsavvy::make_success_envelope("getSummary", json::parse(R"({"plan":"pro"})").as_object())),
        tls);
    REQUIRE(server.base_url().starts_with("https://localhost:"));
    const auto r = run_cli(
        io, {"call", "getSummary", "--ca-file", cstest::test_pki().ca_file.string(), "--base-url", server.base_url()});
    REQUIRE_FALSE(r.timed_out);
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == exit_ok);
    CHECK(json::parse(r.out) == json::parse(R"({"plan":"pro"})"));
    CHECK(j->requests.size() == 1);

    // Without the CA the system store is used, which does not know the test CA.
    const auto untrusted = run_cli(io, {"call", "getSummary", "--base-url", server.base_url()});
    CHECK(untrusted.exit_code == exit_tls);
    check_one_error_line(untrusted);
    CHECK(untrusted.err.find("callsavvy: TLS: server certificate is not trusted") != std::string::npos);
    CHECK(j->requests.size() == 1);
}

TEST_CASE("callsavvy call refuses a self-signed certificate, saying it is not trusted", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    cstest::server_options tls;
    tls.tls = true;
    tls.cert = &cstest::test_pki().self_signed;
    script_server server(io.get_executor(), answer(j, 200, callsavvy::make_success_envelope("getSummary", {})), tls);
    const auto r = run_cli(
        io, {"call", "getSummary", "--ca-file", cstest::test_pki().ca_file.string(), "--base-url", server.base_url()});
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == exit_tls);
    CHECK(r.out.empty());
    check_one_error_line(r);
    CHECK(r.err.find("callsavvy: TLS: server certificate is not trusted (self-signed certificate)") !=
          std::string::npos);
    CHECK(j->requests.empty());
}

TEST_CASE("callsavvy call refuses a certificate for another host name, saying so", "[cli]") {
    asio::io_context io;
    auto j = std::make_shared<journal>();
    cstest::server_options tls;
    tls.tls = true;
    tls.cert = &cstest::test_pki().wrong_host;
    script_server server(io.get_executor(), answer(j, 200, callsavvy::make_success_envelope("getSummary", {})), tls);
    const auto r = run_cli(
        io, {"call", "getSummary", "--ca-file", cstest::test_pki().ca_file.string(), "--base-url", server.base_url()});
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == exit_tls);
    check_one_error_line(r);
    CHECK(r.err.find("callsavvy: TLS: server certificate does not match the host name") != std::string::npos);
    CHECK(j->requests.empty());
}

TEST_CASE("callsavvy usage errors exit 2 with one line; --help documents the exit codes", "[cli]") {
    asio::io_context io;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {}, {"call"}, {"call", "getSummary", "--timeout", "-1"}, {"frobnicate"}}) {
        const auto r = run_cli(io, args);
        CHECK(r.exit_code == exit_usage);
        check_one_error_line(r);
        CHECK(r.err.starts_with("callsavvy: usage: "));
    }
    const auto bad_url = run_cli(io, {"call", "getSummary", "--base-url", "ftp://example.com/"});
    CHECK(bad_url.exit_code == exit_usage);
    check_one_error_line(bad_url);

    const auto help = run_cli(io, {"--help"});
    CHECK(help.exit_code == exit_ok);
    CHECK(help.out.find("Exit codes:") != std::string::npos);
    CHECK(help.out.find("10  TLS") != std::string::npos);
    const auto call_help = run_cli(io, {"call", "--help"});
    CHECK(call_help.exit_code == exit_ok);
    CHECK(call_help.out.find("--insecure-skip-tls-verify") != std::string::npos);
    CHECK(call_help.out.find("Exit codes:") != std::string::npos);
}

TEST_CASE("callsavvy mock serves the API until SIGTERM, and callsavvy call reaches it", "[cli]") {
    asio::io_context io;
    const auto sandbox = callsavvy::testing::sandbox_key();
    const child mock = spawn_cli(io, {"mock", "--port", "0", "--window", "60"}, {}, "", false);
    // Its first line names the URL it serves; --port 0 picked a free port.
    const std::string first = first_line_of(io, mock, false);
    const std::string prefix = "callsavvy mock: serving ";
    REQUIRE(first.starts_with(prefix + "http://127.0.0.1:"));
    const std::string url = first.substr(prefix.size(), first.find(' ', prefix.size()) - prefix.size());
    CHECK(url.ends_with("/v1/"));

    const std::vector<std::string> sandbox_env{"CALLSAVVY_PUBLIC_KEY=" + sandbox.public_key,
                                               "CALLSAVVY_PRIVATE_KEY=" + sandbox.private_key};
    const auto summary = run_cli(io, {"call", "getSummary", "--base-url", url}, sandbox_env, "", false);
    CHECK(summary.exit_code == exit_ok);
    CHECK(summary.err.empty());
    const auto data = json::parse(summary.out).as_object();
    CHECK(data.at("business_name") == "Mock Business");

    // State lives as long as the mock process: a created lead is listed by the next call.
    const auto lead =
        run_cli(io, {"call", "createLead", R"({"name":"Ada","phone":"+2348000000001"})", "--base-url", url},
                sandbox_env, "", false);
    CHECK(lead.exit_code == exit_ok);
    const auto leads = run_cli(io, {"call", "listLeads", "--base-url", url}, sandbox_env, "", false);
    CHECK(leads.exit_code == exit_ok);
    CHECK(leads.out.find("Ada") != std::string::npos);

    // Keys the mock does not know get its 401, and the tool's auth exit code.
    const auto refused = run_cli(io, {"call", "getSummary", "--base-url", url});
    CHECK(refused.exit_code == exit_auth);
    check_one_error_line(refused);

    kill(mock.pid, SIGTERM);
    const auto stopped = finish_cli(io, mock, 20s);
    CHECK_FALSE(stopped.timed_out);
    CHECK(stopped.exit_code == exit_ok);
}

TEST_CASE("callsavvy listen prints each event as one JSON line and answers lookups from its replies file", "[cli]") {
    asio::io_context io;
    const auto dir = std::filesystem::temp_directory_path() / ("callsavvy-listen-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto replies = dir / "replies.json";
    std::ofstream(replies) << R"({"callerInformation":{"caller_name":"Ada"}})";
    const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const child listener = spawn_cli(io, {"listen", "--port", "0", "--path", "/hooks", "--replies", replies.string()},
                                     {"CALLSAVVY_WEBHOOK_SECRETS=" + secret}, "", false);
    // Its first line on stderr names the URL; stdout carries only events.
    const std::string first = first_line_of(io, listener, true);
    const std::string prefix = "callsavvy listen: listening on ";
    REQUIRE(first.starts_with(prefix + "http://127.0.0.1:"));
    const std::string url = first.substr(prefix.size(), first.find(' ', prefix.size()) - prefix.size());
    CHECK(url.ends_with("/hooks"));

    callsavvy::testing::webhook_sender_options so;
    so.signing_secret = secret;
    callsavvy::testing::webhook_sender sender(io.get_executor(), url, so);
    callsavvy::testing::webhook_sender unsigned_sender(io.get_executor(), url);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        const auto summary =
            co_await sender.deliver(R"({"event":"callSummary","caller_number":"+1","call_duration":"65"})");
        CHECK(summary.status == 200);
        const auto lookup = co_await sender.deliver(R"({"event":"callerInformation","caller_number":"+1"})");
        CHECK(lookup.status == 200);
        CHECK(json::parse(lookup.body) ==
              json::parse(R"({"status":"success","caller_name":"Ada","caller_email":"","customer_info":""})"));
        const auto forged = co_await unsigned_sender.deliver(R"({"event":"callSummary"})");
        CHECK(forged.status == 401);
    });
    kill(listener.pid, SIGTERM);
    const auto stopped = finish_cli(io, listener, 20s);
    std::filesystem::remove_all(dir);
    CHECK_FALSE(stopped.timed_out);
    CHECK(stopped.exit_code == exit_ok);
    // One line per event, each the delivery's JSON; the rejection went to stderr, not stdout.
    std::istringstream lines(stopped.out);
    std::vector<json::object> events;
    for (std::string line; std::getline(lines, line);) events.push_back(json::parse(line).as_object());
    REQUIRE(events.size() == 2);
    CHECK(events[0].at("event") == "callSummary");
    CHECK(events[0].at("call_duration") == "65");
    CHECK(events[1].at("event") == "callerInformation");
    CHECK(stopped.err.find("rejected 401") != std::string::npos);
    CHECK(stopped.err.find(secret) == std::string::npos);
}

TEST_CASE("callsavvy listen refuses unusable options with one line and the usage code", "[cli]") {
    asio::io_context io;
    const auto bad_range = run_cli(io, {"listen", "--port", "0", "--allow", "10.0.0.0/33"});
    CHECK(bad_range.exit_code == exit_usage);
    CHECK(bad_range.err.find("allowed_sources") != std::string::npos);
    check_one_error_line(bad_range);
    const auto bad_secret = run_cli(io, {"listen", "--port", "0"}, {"CALLSAVVY_WEBHOOK_SECRETS=not-base64!"});
    CHECK(bad_secret.exit_code == exit_usage);
    CHECK(bad_secret.err.find("signing_secrets[0]") != std::string::npos);
    CHECK(bad_secret.err.find("not-base64!") == std::string::npos);
    check_one_error_line(bad_secret);
}

// ---------------------------------------------------------------------------------------------------------
// callsavvy import contacts and callsavvy trigger

namespace {

namespace mock = callsavvy::testing;

// A directory of its own per test, removed at the end.
struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(const std::string& name)
        : path(std::filesystem::temp_directory_path() / ("callsavvy-" + name + "-" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string phone_of(std::size_t i) {
    const std::string digits = std::to_string(1000000 + i);
    return "+1555" + digits;
}

// A contact file of n rows: header, then phone, first name, a custom column.
std::string contacts_csv(std::size_t n) {
    std::string text = "Phone Number,First Name,Plan\r\n";
    for (std::size_t i = 0; i < n; ++i) text += phone_of(i) + ",Name " + std::to_string(i) + ",basic\r\n";
    return text;
}

// The mock with the test's keys and short rate windows, so limits are hit in milliseconds.
mock::mock_options import_mock_options() {
    mock::mock_options o;
    o.keys.push_back({public_key, private_key});
    o.rate_limits.window = 200ms;
    o.rate_limits.per_endpoint = 4;
    o.rate_limits.global = 8;
    return o;
}

// `callsavvy import contacts <file>` against the mock, with the client's limiter set to the mock's limits.
std::vector<std::string> import_args(const mock::mock_server& m, const std::string& file,
                                     std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"import",
                                  "contacts",
                                  file,
                                  "--base-url",
                                  m.base_url(),
                                  "--map",
                                  "phone=Phone Number",
                                  "--rate-window",
                                  "0.2",
                                  "--rate-per-endpoint",
                                  "4",
                                  "--rate-global",
                                  "8"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

// Every phone the mock created a contact for, with how many times.
std::map<std::string, int> created_phones(mock::mock_server& m) {
    std::map<std::string, int> out;
    for (const auto& c : m.collection("contacts")) ++out[std::string(c.at("phone").as_string())];
    return out;
}

// The phones of every createBulkContact request the mock answered 200, with how many times each was sent.
std::map<std::string, int> phones_sent_and_answered(const mock::mock_server& m) {
    std::map<std::string, int> out;
    for (const auto& e : m.journal()) {
        if (e.resource != "createBulkContact" || e.status != 200) continue;
        const json::value body = json::parse(e.body);
        const auto* contacts = body.is_object() ? body.as_object().if_contains("contacts") : nullptr;
        if (contacts == nullptr || !contacts->is_array()) {
            FAIL_CHECK("a createBulkContact body without contacts: " << e.body);
            continue;
        }
        for (const auto& c : contacts->as_array()) ++out[std::string(c.at("phone").as_string())];
    }
    return out;
}

std::size_t count_of(const std::string& text, std::string_view word) {
    std::size_t n = 0;
    for (const auto& line : lines_of(text)) {
        if (!line.starts_with(word)) continue;
        if (word == "sent ") {
            std::istringstream in(line.substr(word.size()));
            for (std::size_t l = 0; in >> l;) ++n;
        } else {
            ++n;
        }
    }
    return n;
}

// Re-arms itself every few milliseconds so that run_until re-checks a condition that changes outside the
// io_context (a file the child writes) even while nothing else happens.
class ticker {
public:
    explicit ticker(asio::io_context& io) : state_(std::make_shared<state>(io)) { arm(state_); }
    ticker(const ticker&) = delete;
    ticker& operator=(const ticker&) = delete;
    ~ticker() {
        state_->stopped = true;
        state_->timer.cancel();
    }

private:
    struct state {
        explicit state(asio::io_context& io) : timer(io) {}
        asio::steady_timer timer;
        bool stopped = false;
    };
    static void arm(const std::shared_ptr<state>& st) {
        st->timer.expires_after(5ms);
        st->timer.async_wait([st](const callsavvy::error_code&) {
            if (!st->stopped) arm(st);
        });
    }
    std::shared_ptr<state> state_;
};

} // namespace

TEST_CASE("callsavvy import contacts creates every row of a few thousand exactly once through injected 429s", "[cli]") {
    asio::io_context io;
    temp_dir dir("import-bulk");
    constexpr std::size_t n = 3000;
    const std::string file = dir.file("contacts.csv");
    write_file(file, contacts_csv(n));
    mock::mock_server m(io.get_executor(), import_mock_options());
    mock::fault too_many;
    too_many.resource = "createBulkContact";
    too_many.status = 429;
    too_many.count = 2;
    m.inject(too_many);

    const auto r = run_cli(io, import_args(m, file, {"--max-in-flight", "3"}));
    REQUIRE_FALSE(r.timed_out);
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == exit_ok);
    CHECK(r.out == "callsavvy import: 3000 created, 0 failed, 0 skipped (malformed), 0 unknown\n");
    check_no_keys(r);
    // The progress went to stderr (plain lines: not a terminal), ending with the final count.
    CHECK(r.err.find("3000/3000 contacts") != std::string::npos);

    // Every row reached the server once: 6 requests answered, the 2 refused ones re-sent.
    CHECK(m.count("createBulkContact") == 6 + 2);
    CHECK(std::count_if(m.journal().begin(), m.journal().end(), [](const auto& e) { return e.status == 429; }) == 2);
    const auto sent = phones_sent_and_answered(m);
    const auto created = created_phones(m);
    CHECK(sent.size() == n);
    CHECK(created.size() == n);
    for (std::size_t i = 0; i < n; ++i) {
        INFO(phone_of(i));
        CHECK(sent.count(phone_of(i)) == 1);
        CHECK(created.count(phone_of(i)) == 1);
        if (created.count(phone_of(i)) == 1) CHECK(created.at(phone_of(i)) == 1);
    }
    for (const auto& [phone, times] : sent) CHECK(times == 1);
    // The custom column went along.
    CHECK(m.collection("contacts").front().at("custom_fields").at("Plan") == "basic");

    // The journal: every row sent, then created with its id.
    const std::string journal = read_file(file + ".journal");
    CHECK(journal.starts_with("callsavvy-import-journal v1 size="));
    CHECK(count_of(journal, "sent ") == n);
    CHECK(count_of(journal, "created ") == n);
}

TEST_CASE("callsavvy import contacts killed mid-import, then --resume: every row created exactly once", "[cli]") {
    asio::io_context io;
    temp_dir dir("import-resume");
    constexpr std::size_t n = 40;
    const std::string file = dir.file("contacts.csv");
    write_file(file, contacts_csv(n));
    auto o = import_mock_options();
    o.rate_limits.enabled = false;
    mock::mock_server m(io.get_executor(), o);
    // The first request answers at once; the second is processed and its answer held back (the rows exist,
    // the tool never learns it); the third is never processed. Each fault is taken by one request.
    mock::fault answered;
    answered.what = mock::fault::kind::delay;
    answered.resource = "createBulkContact";
    m.inject(answered);
    mock::fault held = answered;
    held.delay = 60s;
    m.inject(held);
    mock::fault stalled;
    stalled.what = mock::fault::kind::stall;
    stalled.resource = "createBulkContact";
    m.inject(stalled);

    const std::string journal_path = file + ".journal";
    const auto args = import_args(m, file, {"--chunk-size", "10", "--max-in-flight", "2"});
    const child importer = spawn_cli(io, args, {}, "", true);
    {
        ticker tick(io);
        wait_with_child(
            io, importer,
            [&] {
                if (m.count("createBulkContact") < 3 || m.collection("contacts").size() < 20) return false;
                const std::string j = read_file(journal_path);
                return count_of(j, "sent ") >= 30 && count_of(j, "created ") >= 10;
            },
            "the journal to show three requests sent and one answered");
    }
    kill(importer.pid, SIGKILL);
    const auto killed = finish_cli(io, importer, 20s);
    CHECK(killed.exit_code == 128 + SIGKILL);
    const std::string before = read_file(journal_path);
    CHECK(count_of(before, "created ") == 10);
    CHECK(m.collection("contacts").size() == 20); // 10 answered + 10 whose answer was held back

    const auto resumed = run_cli(io, import_args(m, file, {"--chunk-size", "10", "--resume"}));
    REQUIRE_FALSE(resumed.timed_out);
    INFO("stderr: " << resumed.err);
    CHECK(resumed.exit_code == exit_ok);
    CHECK(resumed.out == "callsavvy import: 40 created, 0 failed, 0 skipped (malformed), 0 unknown (resumed: 10 "
                         "confirmed by the journal, 10 found on the server)\n");
    // Every row exists exactly once on the server: none lost, none created twice.
    const auto created = created_phones(m);
    CHECK(created.size() == n);
    for (std::size_t i = 0; i < n; ++i) {
        INFO(phone_of(i));
        REQUIRE(created.count(phone_of(i)) == 1);
        CHECK(created.at(phone_of(i)) == 1);
    }
    // The server was asked (listContacts) instead of the rows being sent again blindly; the rows it did not
    // have went in two more requests.
    CHECK(m.count("listContacts") >= 1);
    CHECK(m.count("createBulkContact") == 3 + 2);
    const std::string after = read_file(journal_path);
    CHECK(count_of(after, "created ") == n);
    m.stop();
}

TEST_CASE("callsavvy import contacts stops cleanly on SIGINT, and --resume finishes it", "[cli]") {
    asio::io_context io;
    temp_dir dir("import-interrupt");
    const std::string file = dir.file("contacts.csv");
    write_file(file, contacts_csv(10));
    mock::mock_server m(io.get_executor(), import_mock_options());
    mock::fault stalled;
    stalled.what = mock::fault::kind::stall; // never processed, never answered
    stalled.resource = "createBulkContact";
    m.inject(stalled);
    const child importer = spawn_cli(io, import_args(m, file), {}, "", true);
    wait_with_child(
        io, importer, [&] { return m.count("createBulkContact") == 1; }, "the import's request to arrive");
    kill(importer.pid, SIGINT);
    const auto r = finish_cli(io, importer, 20s);
    REQUIRE_FALSE(r.timed_out);
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 128 + SIGINT);
    CHECK(r.out == "callsavvy import: 0 created, 0 failed, 0 skipped (malformed), 10 unknown\n");
    CHECK(r.err.find("callsavvy: interrupted: by signal 2; run again with --resume to finish\n") != std::string::npos);
    CHECK(m.collection("contacts").empty());

    const auto resumed = run_cli(io, import_args(m, file, {"--resume"}));
    CHECK(resumed.exit_code == exit_ok);
    CHECK(resumed.out == "callsavvy import: 10 created, 0 failed, 0 skipped (malformed), 0 unknown\n");
    CHECK(created_phones(m).size() == 10);
    m.stop();
}

TEST_CASE("callsavvy import contacts reports malformed rows and skips them, and writes the failed rows as CSV",
          "[cli]") {
    asio::io_context io;
    temp_dir dir("import-failed");
    const std::string file = dir.file("contacts.csv");
    // Quoted fields with commas, quotes and a line break, UTF-8, and rows that cannot be used.
    write_file(file, "Phone Number,First Name,Notes\n"
                     "+15550000001,\"Zoë, \"\"the\"\" 東京\",\"two\nlines\"\n"
                     "+15550000002,\"bad\"x,note\n"          // line 4: text after a closing quote
                     "12345,Not a phone,server rejects\n"    // line 5: created by nobody
                     "+15550000003,too,many,fields\n"        // line 6
                     "+15550000004,\xC3\x28,invalid UTF-8\n" // line 7
                     "+15550000005,Ok,\n");
    mock::mock_server m(io.get_executor(), import_mock_options());
    const std::string failed = dir.file("failed.csv");
    const auto r = run_cli(io, import_args(m, file, {"--failed", failed}));
    REQUIRE_FALSE(r.timed_out);
    INFO("stderr: " << r.err);
    // Every row is accounted for (created, or reported failed): exit 0.
    CHECK(r.exit_code == exit_ok);
    CHECK(r.out == "callsavvy import: 2 created, 1 failed, 3 skipped (malformed), 0 unknown\n");
    CHECK(r.err.find("callsavvy import: line 4: text after the closing quote of field 2 (skipped)\n") !=
          std::string::npos);
    CHECK(r.err.find("callsavvy import: line 6: too many fields: 4, the header has 3 (skipped)\n") !=
          std::string::npos);
    CHECK(r.err.find("callsavvy import: line 7: invalid UTF-8 in field 2 at byte 1 (skipped)\n") != std::string::npos);

    const auto contacts = m.collection("contacts");
    REQUIRE(contacts.size() == 2);
    CHECK(contacts[0].at("first_name") == "Zoë, \"the\" 東京");
    CHECK(contacts[0].at("custom_fields").at("Notes") == "two\nlines");
    CHECK(contacts[1].at("phone") == "+15550000005");

    // The failed rows: line, the row's fields as read, the message; readable as CSV again.
    std::ifstream in(failed, std::ios::binary);
    callsavvy::csv::reader csv(in);
    std::vector<std::vector<std::string>> rows;
    while (auto rec = csv.next()) {
        // The row with invalid UTF-8 is written back as it was read, bytes and all.
        INFO("line " << rec->line << ": " << rec->error);
        CHECK((rec->ok() || rec->error.starts_with("invalid UTF-8 in field 3")));
        rows.push_back(rec->fields);
    }
    using row = std::vector<std::string>;
    REQUIRE(rows.size() == 5);
    CHECK(rows[0] == row{"line", "Phone Number", "First Name", "Notes", "message"});
    CHECK(rows[1] == row{"4", "+15550000002", "badx", "note", "text after the closing quote of field 2"});
    CHECK(rows[2] == row{"6", "+15550000003", "too", "many", "fields", "too many fields: 4, the header has 3"});
    CHECK(rows[3] == row{"7", "+15550000004", "\xC3\x28", "invalid UTF-8", "invalid UTF-8 in field 2 at byte 1"});
    CHECK(rows[4] == row{"5", "12345", "Not a phone", "server rejects", "Invalid parameter: phone"});
}

TEST_CASE("callsavvy import refuses bad input with one line and a non-zero code", "[cli]") {
    asio::io_context io;
    temp_dir dir("import-bad");
    mock::mock_server m(io.get_executor(), import_mock_options());
    const std::string file = dir.file("contacts.csv");
    write_file(file, contacts_csv(3));

    const auto missing = run_cli(io, import_args(m, dir.file("nope.csv")));
    CHECK(missing.exit_code == exit_usage);
    check_one_error_line(missing);
    CHECK(missing.err.find("nope.csv: No such file or directory") != std::string::npos);

    const std::string no_phone = dir.file("no-phone.csv");
    write_file(no_phone, "name,email\nAda,ada@example.com\n");
    const auto header = run_cli(io, import_args(m, no_phone));
    CHECK(header.exit_code == exit_validation);
    check_one_error_line(header);
    CHECK(header.err.find("line 1: header: no \"phone\" column") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(no_phone + ".journal")); // nothing was started

    const auto leads = run_cli(io, {"import", "leads", file, "--base-url", m.base_url()});
    CHECK(leads.exit_code == exit_usage);
    check_one_error_line(leads);
    CHECK(leads.err.find("only contacts can be imported") != std::string::npos);

    const auto bad_map = run_cli(io, import_args(m, file, {"--map", "mobile=Phone"}));
    CHECK(bad_map.exit_code == exit_usage);
    check_one_error_line(bad_map);

    const auto no_keys = run_cli(io, import_args(m, file), {}, "", false);
    CHECK(no_keys.exit_code == exit_usage);
    check_one_error_line(no_keys);
    CHECK(no_keys.err.find("no API keys") != std::string::npos);

    const auto resume_nothing = run_cli(io, import_args(m, file, {"--resume"}));
    CHECK(resume_nothing.exit_code == exit_usage);
    check_one_error_line(resume_nothing);
    CHECK(resume_nothing.err.find("cannot resume") != std::string::npos);

    const auto first = run_cli(io, import_args(m, file));
    CHECK(first.exit_code == exit_ok);
    CHECK(m.collection("contacts").size() == 3);
    // A second import must not overwrite the journal of the first.
    const auto again = run_cli(io, import_args(m, file));
    CHECK(again.exit_code == exit_usage);
    check_one_error_line(again);
    CHECK(again.err.find("exists: pass --resume") != std::string::npos);
    // The journal belongs to the file it was made for.
    write_file(file, contacts_csv(4));
    const auto other = run_cli(io, import_args(m, file, {"--resume"}));
    CHECK(other.exit_code == exit_usage);
    check_one_error_line(other);
    CHECK(other.err.find("records another input file") != std::string::npos);
    CHECK(m.collection("contacts").size() == 3);

    // The server refusing the keys: the rows are not processed, the code says why.
    const std::string fresh = dir.file("fresh.csv");
    write_file(fresh, contacts_csv(2));
    const auto refused =
        run_cli(io, import_args(m, fresh), {"CALLSAVVY_PUBLIC_KEY=TEST-wrong-public-key-0001"}, "", false);
    CHECK(refused.exit_code == exit_usage); // only one key given
    const auto wrong =
        run_cli(io, import_args(m, fresh),
                {"CALLSAVVY_PUBLIC_KEY=TEST-wrong-public", "CALLSAVVY_PRIVATE_KEY=TEST-wrong-private"}, "", false);
    CHECK(wrong.exit_code == exit_auth);
    CHECK(wrong.out == "callsavvy import: 0 created, 0 failed, 0 skipped (malformed), 2 unknown\n");
    CHECK(wrong.err.find("callsavvy: auth: ") != std::string::npos);
}

TEST_CASE("callsavvy trigger sends an event to callsavvy listen and prints its answer", "[cli]") {
    asio::io_context io;
    temp_dir dir("trigger");
    const std::string replies = dir.file("replies.json");
    write_file(replies, R"({"callerInformation":{"caller_name":"Ada"}})");
    const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const std::string secret_env = "CALLSAVVY_WEBHOOK_SECRETS=" + secret;
    const std::string basic_env = "CALLSAVVY_WEBHOOK_BASIC=hook:pa:ss w0rd";
    const child listener = spawn_cli(io, {"listen", "--port", "0", "--path", "/hooks", "--replies", replies},
                                     {secret_env, basic_env}, "", false);
    const std::string first = first_line_of(io, listener, true); // kills the listener itself when it fails
    kill_on_exit guard{listener.pid};
    const std::string prefix = "callsavvy listen: listening on ";
    const std::string url = first.substr(prefix.size(), first.find(' ', prefix.size()) - prefix.size());

    const auto summary =
        run_cli(io, {"trigger", "callSummary", "--to", url, R"({"caller_number":"+1","call_duration":"65"})"},
                {secret_env, basic_env}, "", false);
    INFO("stderr: " << summary.err);
    CHECK(summary.exit_code == exit_ok);
    CHECK(summary.out.starts_with("HTTP 200\n"));
    CHECK(summary.err.empty());

    const auto lookup = run_cli(io, {"trigger", "callerInformation", "--to", url, "-"}, {secret_env, basic_env},
                                R"({"caller_number":"+2"})", false);
    INFO("lookup: " << lookup.out << lookup.err);
    CHECK(lookup.exit_code == exit_ok);
    const auto lines = lines_of(lookup.out);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "HTTP 200");
    CHECK(json::parse(lines[1]) ==
          json::parse(R"({"status":"success","caller_name":"Ada","caller_email":"","customer_info":""})"));

    // Without the signature the listener refuses: its status is printed, and the code is not 0.
    const auto unsigned_r = run_cli(io, {"trigger", "callSummary", "--to", url}, {basic_env}, "", false);
    CHECK(unsigned_r.exit_code == exit_protocol);
    CHECK(unsigned_r.out.starts_with("HTTP 401\n"));
    check_one_error_line(unsigned_r);
    CHECK(unsigned_r.err.find("HTTP 401") != std::string::npos);

    kill(listener.pid, SIGTERM);
    const auto stopped = finish_cli(io, listener, 20s);
    guard.reaped = true;
    CHECK(stopped.exit_code == exit_ok);
    std::vector<json::object> events;
    for (const auto& line : lines_of(stopped.out)) events.push_back(json::parse(line).as_object());
    REQUIRE(events.size() == 2);
    CHECK(events[0] == json::parse(R"({"event":"callSummary","caller_number":"+1","call_duration":"65"})"));
    CHECK(events[1] == json::parse(R"({"event":"callerInformation","caller_number":"+2"})"));
    for (const auto& r : {summary, lookup, unsigned_r}) {
        CHECK(r.out.find(secret) == std::string::npos);
        CHECK(r.err.find(secret) == std::string::npos);
        CHECK(r.err.find("pa:ss") == std::string::npos);
    }
}

TEST_CASE("callsavvy trigger refuses bad input and unreachable listeners with one line and a non-zero code", "[cli]") {
    asio::io_context io;
    const std::string secret_env = "CALLSAVVY_WEBHOOK_SECRETS=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const auto unknown =
        run_cli(io, {"trigger", "noSuchEvent", "--to", "http://127.0.0.1:9/"}, {secret_env}, "", false);
    CHECK(unknown.exit_code == exit_usage);
    check_one_error_line(unknown);
    CHECK(unknown.err.find("unknown event \"noSuchEvent\"") != std::string::npos);
    CHECK(unknown.err.find("whsec_") == std::string::npos);

    const auto bad_json = run_cli(io, {"trigger", "callSummary", "--to", "http://127.0.0.1:9/", "{not json"});
    CHECK(bad_json.exit_code == exit_validation);
    check_one_error_line(bad_json);
    CHECK(bad_json.err.find("Malformed JSON body") != std::string::npos);

    const auto bad_field =
        run_cli(io, {"trigger", "callSummary", "--to", "http://127.0.0.1:9/", R"({"call_duration":{}})"});
    CHECK(bad_field.exit_code == exit_validation);
    check_one_error_line(bad_field);
    CHECK(bad_field.err.find("call_duration") != std::string::npos);

    // A port nothing listens on: taken from a socket opened and closed here.
    std::uint16_t port = 0;
    {
        asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
        port = a.local_endpoint().port();
    }
    const auto refused =
        run_cli(io, {"trigger", "callSummary", "--to", "http://127.0.0.1:" + std::to_string(port) + "/"});
    CHECK(refused.exit_code == exit_transport);
    check_one_error_line(refused);
    CHECK(refused.out.empty());
}

#endif // CALLSAVVY_CLI_PATH

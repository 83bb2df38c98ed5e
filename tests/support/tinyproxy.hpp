// tests/support/tinyproxy.hpp — a real HTTP proxy (Debian's tinyproxy) on loopback for the client's proxy
// tests: CONNECT tunnelling, Proxy-Authorization and refusals come from an independent implementation rather
// than from our own idea of a proxy.
//
// Observed with tinyproxy 1.11.1 (Debian 12):
// - CONNECT to an allowed port: "HTTP/1.0 200 Connection established" (then the tunnel), in about 1 ms.
// - BasicAuth set, no Proxy-Authorization: "HTTP/1.0 407 Proxy Authentication Required" with
//   Proxy-Authenticate: Basic realm="Tinyproxy", Connection: close, an HTML body, no Content-Length.
// - BasicAuth set, wrong credentials (or another scheme): "HTTP/1.0 401 Unauthorized" with
//   WWW-Authenticate — not 407. The authentication check comes before the port check.
// - CONNECT to a port not listed by ConnectPort: "HTTP/1.1 403 Access violation", Connection: close.
// - Start-up until listening (and its log says so): 25-50 ms. SIGTERM: exits in 20-30 ms, also with a
//   client in mid-request; the destructor still allows 3 s before SIGKILL.
// - As root without a User line it warns and keeps running as root; that is what we want here.
#pragma once

#include <callsavvy/config.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace cstest {

namespace detail {

// An ephemeral loopback port that was free a moment ago. Racy by nature (another process may take it
// before tinyproxy binds it); tinyproxy then exits at start-up and tinyproxy_process retries with a new
// port. tinyproxy cannot be told to bind port 0 and report it back.
inline std::uint16_t pick_free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "cstest: socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        const int e = errno;
        ::close(fd);
        throw std::system_error(e, std::generic_category(), "cstest: bind/getsockname");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

inline bool loopback_port_accepts(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

inline std::string read_text_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// RFC 3986 userinfo: everything but unreserved characters percent-encoded.
inline std::string percent_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

} // namespace detail

class tinyproxy_process {
public:
    // Starts tinyproxy in the foreground on 127.0.0.1:<free port>, allowing only loopback clients and
    // CONNECT only to `connect_port`; with basic_auth, every request needs those credentials. Returns once
    // the port accepts connections (at most ~5 s); throws std::runtime_error if tinyproxy is missing or
    // does not come up. The binary is /usr/bin/tinyproxy, or $CSTEST_TINYPROXY when set.
    explicit tinyproxy_process(std::uint16_t connect_port,
                               std::optional<std::pair<std::string, std::string>> basic_auth = std::nullopt)
        : auth_(std::move(basic_auth)) {
        const char* env = std::getenv("CSTEST_TINYPROXY");
        const std::string binary = env && *env ? env : "/usr/bin/tinyproxy";
        if (::access(binary.c_str(), X_OK) != 0)
            throw std::runtime_error("cstest::tinyproxy_process: " + binary +
                                     " not found or not executable (Debian: apt-get install tinyproxy)");
        if (auth_) {
            check_credential(auth_->first, true);
            check_credential(auth_->second, false);
        }

        std::string templ = (std::filesystem::temp_directory_path() / "callsavvy-tinyproxy-XXXXXX").string();
        if (!::mkdtemp(templ.data()))
            throw std::system_error(errno, std::generic_category(), "cstest::tinyproxy_process: mkdtemp");
        dir_ = templ;

        try {
            std::string why;
            // A few attempts only because of the free-port race described at pick_free_port.
            for (int attempt = 0; attempt < 3 && pid_ <= 0; ++attempt) {
                port_ = detail::pick_free_port();
                write_config(connect_port);
                spawn(binary);
                why = wait_until_ready();
                if (!why.empty()) reap(std::chrono::seconds(1));
            }
            if (pid_ <= 0) throw std::runtime_error("cstest::tinyproxy_process: tinyproxy did not start: " + why);
        } catch (...) {
            reap(std::chrono::seconds(1));
            remove_dir();
            throw;
        }
    }

    ~tinyproxy_process() {
        reap(std::chrono::seconds(3));
        remove_dir();
    }
    tinyproxy_process(const tinyproxy_process&) = delete;
    tinyproxy_process& operator=(const tinyproxy_process&) = delete;

    std::uint16_t port() const { return port_; }

    // "http://127.0.0.1:PORT", with percent-encoded "user:password@" when basic auth is configured.
    std::string url() const {
        std::string u = "http://";
        if (auth_) u += detail::percent_encode(auth_->first) + ":" + detail::percent_encode(auth_->second) + "@";
        return u + "127.0.0.1:" + std::to_string(port_);
    }

    // tinyproxy's log (LogLevel Info), for a failing test to look at; removed with the process.
    std::filesystem::path log_file() const { return dir_ / "tinyproxy.log"; }

private:
    static void check_credential(const std::string& s, bool is_user) {
        // The config line is "BasicAuth user password": whitespace, quotes or a ':' in the user name would
        // change its meaning; keep test credentials simple instead of guessing tinyproxy's quoting rules.
        for (char c : s) {
            if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '\'' || c == '#' || (is_user && c == ':'))
                throw std::invalid_argument(
                    "cstest::tinyproxy_process: unsupported character in basic auth credentials");
        }
        if (s.empty()) throw std::invalid_argument("cstest::tinyproxy_process: empty basic auth credential");
    }

    void write_config(std::uint16_t connect_port) const {
        std::ofstream conf(dir_ / "tinyproxy.conf", std::ios::trunc);
        // No User/Group lines: tinyproxy only drops privileges when they are given, and as root it warns and
        // carries on as root. PidFile and LogFile point into our private directory so nothing touches
        // /run or /var/log. Timeout bounds a tunnel a broken test leaves open.
        conf << "Port " << port_ << "\n"
             << "Listen 127.0.0.1\n"
             << "Timeout 30\n"
             << "MaxClients 64\n"
             << "Allow 127.0.0.1\n"
             << "ConnectPort " << connect_port << "\n"
             << "PidFile \"" << (dir_ / "tinyproxy.pid").string() << "\"\n"
             << "LogFile \"" << log_file().string()
             << "\"\n"
             // Info, because readiness is read from its "Starting main loop" line; it never logs passwords.
             << "LogLevel Info\n"
             << "DisableViaHeader Yes\n";
        if (auth_) conf << "BasicAuth " << auth_->first << " " << auth_->second << "\n";
        conf.close();
        if (!conf) throw std::runtime_error("cstest::tinyproxy_process: cannot write its configuration");
    }

    void spawn(const std::string& binary) {
        const std::string conf = (dir_ / "tinyproxy.conf").string();
        const std::string out = (dir_ / "stdout.log").string();
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        // Asio's sockets are not close-on-exec: without this the child would keep the test's listening
        // sockets (and epoll/eventfd descriptors) alive after the test closed them.
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        // Catch2 and sanitizers install signal handlers and may block signals; the child starts clean.
        sigset_t all, none;
        sigfillset(&all);
        sigemptyset(&none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

        std::vector<std::string> args = {binary, "-d", "-c", conf};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_t pid = 0;
        const int rc = ::posix_spawn(&pid, binary.c_str(), &fa, &attr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (rc != 0) throw std::system_error(rc, std::generic_category(), "cstest::tinyproxy_process: posix_spawn");
        pid_ = pid;
    }

    // "" when tinyproxy listens; otherwise why not (and pid_ is cleared if it exited).
    std::string wait_until_ready() {
        using clock = std::chrono::steady_clock;
        const auto deadline = clock::now() + std::chrono::seconds(5);
        while (clock::now() < deadline) {
            int status = 0;
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                pid_ = 0;
                return "it exited at start-up (" + exit_description(status) + "); " + log_tail();
            }
            // Listening alone is not proof it is ours (the port race); its log line is. Checked after the
            // connect so the line, once seen, describes a socket that is already bound.
            if (detail::loopback_port_accepts(port_) &&
                detail::read_text_file(log_file()).find("Starting main loop") != std::string::npos)
                return {};
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return "port " + std::to_string(port_) + " did not accept connections within 5 s; " + log_tail();
    }

    static std::string exit_description(int status) {
        if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
        if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
        return "status " + std::to_string(status);
    }

    // The last lines tinyproxy wrote (its log holds request lines and user names, never passwords).
    std::string log_tail() const {
        std::string text = detail::read_text_file(log_file()) + detail::read_text_file(dir_ / "stdout.log");
        if (text.size() > 800) text = "..." + text.substr(text.size() - 800);
        return text.empty() ? "no log output" : "log: " + text;
    }

    // SIGTERM, then SIGKILL after `grace`; always waits for the child so no zombie is left.
    void reap(std::chrono::steady_clock::duration grace) {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + grace;
        int status = 0;
        for (;;) {
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_ || (r < 0 && errno != EINTR)) break;
            if (std::chrono::steady_clock::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        pid_ = 0;
    }

    void remove_dir() noexcept {
        std::error_code ignored;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    }

    std::optional<std::pair<std::string, std::string>> auth_;
    std::filesystem::path dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = 0;
};

} // namespace cstest

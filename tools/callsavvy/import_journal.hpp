// tools/callsavvy/import_journal.hpp — the journal of `callsavvy import contacts`: an append-only text file
// that says, for each row of the input (by the line it starts on), whether its createBulkContact request
// left ("sent", written and fsynced before the request leaves) and how it ended ("created <id>",
// "failed <message>", or "unsent" when the server certainly did not act on it). Whatever moment the process
// is killed at, the journal never says less than what happened: a row without an answer is "sent", and a
// resumed import asks the server about it instead of guessing. Its header names the input file's size and
// SHA-256, so a journal is never applied to another file.
//
//   callsavvy-import-journal v1 size=<bytes> sha256=<hex>
//   sent <line> <line> ...
//   created <line> <contact id>
//   failed <line> <message>
//   unsent <line> <line> ...
//
// Only complete lines count: a last line cut short by a kill is ignored, and cut off before anything more is
// appended.
#pragma once

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callsavvy_tools {

/// A journal that cannot be used: its message says which file and why.
class journal_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// What identifies an input file: its size and the SHA-256 of its bytes.
struct file_identity {
    std::uint64_t size = 0;
    std::string sha256{}; ///< lowercase hex
    bool operator==(const file_identity&) const = default;
};

/// Reads the whole file; throws journal_error when it cannot be read.
inline file_identity identify_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw journal_error("cannot read " + path + ": " + std::strerror(errno));
    const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
        throw journal_error("cannot hash " + path + ": SHA-256 is unavailable");
    file_identity id;
    std::vector<char> buf(64 * 1024);
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = static_cast<std::size_t>(in.gcount());
        id.size += n;
        EVP_DigestUpdate(ctx.get(), buf.data(), n);
    }
    if (in.bad()) throw journal_error("cannot read " + path + " to its end");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < len; ++i) {
        id.sha256 += hex[md[i] >> 4];
        id.sha256 += hex[md[i] & 0xf];
    }
    return id;
}

enum class row_state {
    sent,    ///< its request left (or was about to) and no answer was recorded: ask the server
    created, ///< confirmed, with its contact id
    failed,  ///< confirmed rejected, with the server's message
};

struct journaled_row {
    row_state state = row_state::sent;
    std::string detail{}; ///< the contact id (created) or the message (failed)
};

/// What a journal says, by input line; rows it does not name (or names "unsent" last) were never sent.
using journal_rows = std::map<std::size_t, journaled_row>;

/// An open journal, appended to. Not thread-safe.
class import_journal {
public:
    /// Starts a journal for a new import of the file `input`. Refuses to overwrite an existing one: it may
    /// hold the only record of an import cut short.
    static import_journal create(const std::string& path, const file_identity& input) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == EEXIST)
                throw journal_error("the journal " + path +
                                    " exists: pass --resume to continue that import, or remove it to start over");
            throw journal_error("cannot create the journal " + path + ": " + std::strerror(errno));
        }
        import_journal j(fd, path);
        j.append("callsavvy-import-journal v1 size=" + std::to_string(input.size) + " sha256=" + input.sha256 + "\n");
        j.sync();
        return j;
    }

    /// Opens the journal of an import of `input` to continue it: `rows` gets what it says. Throws
    /// journal_error when there is none, it is not a journal, or it belongs to another file.
    static import_journal resume(const std::string& path, const file_identity& input, journal_rows& rows) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw journal_error("cannot resume: cannot read the journal " + path + ": " + std::strerror(errno));
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        in.close();
        const std::size_t complete = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        std::string_view rest(text.data(), complete);
        const auto next_line = [&] {
            const auto nl = rest.find('\n');
            const std::string_view line = rest.substr(0, nl);
            rest.remove_prefix(nl + 1);
            return line;
        };
        if (rest.empty()) throw journal_error("cannot resume: the journal " + path + " has no header line");
        const std::string_view header = next_line();
        const std::string expected =
            "callsavvy-import-journal v1 size=" + std::to_string(input.size) + " sha256=" + input.sha256;
        if (!header.starts_with("callsavvy-import-journal v1 "))
            throw journal_error("cannot resume: " + path + " is not a callsavvy import journal");
        if (header != expected)
            throw journal_error("cannot resume: the journal " + path +
                                " records another input file (its size or SHA-256 differs from this file's)");
        rows.clear();
        for (std::size_t number = 2; !rest.empty(); ++number) {
            if (!apply(next_line(), rows))
                throw journal_error("cannot resume: line " + std::to_string(number) + " of the journal " + path +
                                    " is not a journal entry");
        }
        const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0) throw journal_error("cannot append to the journal " + path + ": " + std::strerror(errno));
        import_journal j(fd, path);
        // A torn last line: cut it off, so what follows starts on a line of its own.
        if (complete != text.size()) {
            if (::ftruncate(fd, static_cast<off_t>(complete)) != 0)
                throw journal_error("cannot repair the journal " + path + ": " + std::strerror(errno));
            j.sync();
        }
        return j;
    }

    import_journal(import_journal&& o) noexcept : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}
    import_journal& operator=(import_journal&&) = delete;
    import_journal(const import_journal&) = delete;
    ~import_journal() {
        if (fd_ >= 0) ::close(fd_);
    }

    /// Records rows as sent, durably: call before their request leaves.
    void sent(std::span<const std::size_t> lines) {
        append(list_line("sent", lines));
        sync();
    }
    /// Records rows the server certainly did not act on (their request never reached it).
    void unsent(std::span<const std::size_t> lines) { append(list_line("unsent", lines)); }
    void created(std::size_t line, std::string_view id) { append(entry("created", line, id)); }
    void failed(std::size_t line, std::string_view message) { append(entry("failed", line, message)); }
    /// Makes what was appended durable.
    void sync() {
        if (::fsync(fd_) != 0) throw journal_error("cannot sync the journal " + path_ + ": " + std::strerror(errno));
    }

private:
    import_journal(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

    static std::string list_line(std::string_view word, std::span<const std::size_t> lines) {
        std::string s(word);
        for (const std::size_t l : lines) s += ' ' + std::to_string(l);
        return s + '\n';
    }
    static std::string entry(std::string_view word, std::size_t line, std::string_view text) {
        std::string s(word);
        s += ' ' + std::to_string(line) + ' ';
        for (const char c : text) s += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
        return s + '\n';
    }

    static bool parse_number(std::string_view s, std::size_t& out) {
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc{} && end == s.data() + s.size() && !s.empty();
    }

    /// One complete line onto `rows`; false when it is not an entry.
    static bool apply(std::string_view line, journal_rows& rows) {
        const auto sp = line.find(' ');
        if (sp == std::string_view::npos) return false;
        const std::string_view word = line.substr(0, sp);
        std::string_view args = line.substr(sp + 1);
        if (word == "sent" || word == "unsent") {
            while (!args.empty()) {
                const auto end = args.find(' ');
                std::size_t n = 0;
                if (!parse_number(args.substr(0, end), n)) return false;
                if (word == "sent") rows[n] = journaled_row{row_state::sent, {}};
                else
                    rows.erase(n);
                args = end == std::string_view::npos ? std::string_view{} : args.substr(end + 1);
            }
            return true;
        }
        const auto end = args.find(' ');
        std::size_t n = 0;
        if (end == std::string_view::npos || !parse_number(args.substr(0, end), n)) return false;
        const std::string detail(args.substr(end + 1));
        if (word == "created") rows[n] = journaled_row{row_state::created, detail};
        else if (word == "failed")
            rows[n] = journaled_row{row_state::failed, detail};
        else
            return false;
        return true;
    }

    void append(const std::string& s) {
        std::string_view left = s;
        while (!left.empty()) {
            const ssize_t n = ::write(fd_, left.data(), left.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw journal_error("cannot write the journal " + path_ + ": " + std::strerror(errno));
            left.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    int fd_;
    std::string path_;
};

} // namespace callsavvy_tools

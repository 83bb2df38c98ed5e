// callsavvy/csv.hpp — contact imports from spreadsheet exports: an RFC 4180 CSV reader (quoted fields with
// commas, quotes and line breaks, CRLF or LF, a UTF-8 BOM skipped, UTF-8 checked) that streams records one by
// one with their line numbers, and on top of it a reader that maps a header row onto api::new_contact, the
// rows contacts.hpp imports. A malformed row is returned with a specific message, never dropped.
#pragma once

#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/api/rules.hpp>
#include <callsavvy/config.hpp>

#include <boost/describe/members.hpp>
#include <boost/describe/modifiers.hpp>
#include <boost/json/object.hpp>
#include <boost/mp11/algorithm.hpp>

#include <array>
#include <cstddef>
#include <istream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace csv {

/// One record of the file.
struct record {
    std::size_t line = 0; ///< the line it starts on, from 1
    std::vector<std::string> fields{};
    /// Empty for a well-formed record; otherwise what is wrong with it (the fields then hold what was read).
    std::string error{};

    bool ok() const noexcept { return error.empty(); }
};

struct reader_options {
    char delimiter = ',';
    /// A longer record is reported as malformed (and its bytes beyond the limit dropped), so an unbalanced
    /// quote cannot make the reader hold the rest of a large file in memory.
    std::size_t max_record_bytes = 1024 * 1024;
};

namespace detail {

/// The offset of the first byte that is not part of well-formed UTF-8 (no overlong forms, no surrogates,
/// nothing above U+10FFFF), or std::nullopt.
inline std::optional<std::size_t> invalid_utf8_at(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF; // the range of the second byte
        if (b >= 0xC2 && b <= 0xDF) len = 2;
        else if (b == 0xE0)
            len = 3, lo = 0xA0;
        else if (b == 0xED)
            len = 3, hi = 0x9F; // no UTF-16 surrogates
        else if (b >= 0xE1 && b <= 0xEF)
            len = 3;
        else if (b == 0xF0)
            len = 4, lo = 0x90;
        else if (b >= 0xF1 && b <= 0xF3)
            len = 4;
        else if (b == 0xF4)
            len = 4, hi = 0x8F; // nothing above U+10FFFF
        else
            return i;
        if (i + len > s.size()) return i;
        for (std::size_t k = 1; k < len; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return i;
        }
        i += len;
    }
    return std::nullopt;
}

} // namespace detail

/// Reads records one by one from a stream of UTF-8 CSV (RFC 4180). Records end at CRLF, LF or a lone CR
/// outside quotes; inside quotes line breaks are kept as they are. Blank lines are skipped (they hold no
/// field). A malformed record — an unterminated quote, a quote inside an unquoted field, text after a
/// closing quote, invalid UTF-8, a record beyond max_record_bytes — comes back with its error and reading
/// goes on with the next one. A stream that fails (rather than ends) gives one last record with that error.
/// Not thread-safe; the stream must outlive the reader.
class reader {
public:
    explicit reader(std::istream& in, reader_options o = {}) : in_(in), opts_(o) {}

    /// The next record, or std::nullopt at the end of the input.
    std::optional<record> next() {
        if (!bom_checked_) skip_bom();
        record rec;
        std::string field;
        std::size_t bytes = 0;
        std::size_t quote_line = 0;
        enum class state { field_start, unquoted, quoted, after_quote } st = state::field_start;
        auto fail = [&](std::string why) {
            if (rec.error.empty()) rec.error = std::move(why);
        };
        auto field_number = [&] { return std::to_string(rec.fields.size() + 1); };
        // Every byte of the record counts, delimiters and line breaks inside quotes too; beyond the limit
        // nothing more is kept, but the record is still read to its end.
        auto within_limit = [&] {
            if (bytes <= opts_.max_record_bytes) return true;
            fail("record longer than " + std::to_string(opts_.max_record_bytes) + " bytes");
            return false;
        };
        auto append = [&](char c) {
            if (within_limit()) field.push_back(c);
        };
        auto end_field = [&] {
            if (within_limit()) rec.fields.push_back(std::move(field));
            field.clear();
            st = state::field_start;
        };
        rec.line = line_;
        for (;;) {
            const int c = get();
            if (c == eof) {
                if (read_error_ && !read_error_reported_) { // the input stopped short: say so once, on this record
                    read_error_reported_ = true;
                    fail("the input could not be read beyond line " + std::to_string(line_));
                }
                if (st == state::field_start && rec.fields.empty()) { // nothing after the last record
                    if (rec.error.empty()) return std::nullopt;
                    return rec;
                }
                if (st == state::quoted)
                    fail("unterminated quoted field " + field_number() + ": the quote opened on line " +
                         std::to_string(quote_line) + " is never closed");
                end_field();
                break;
            }
            const char ch = static_cast<char>(c);
            ++bytes;
            if (st == state::quoted) {
                if (ch == '"') st = state::after_quote;
                else {
                    append(ch);
                    if (ch == '\n' || (ch == '\r' && peek() != '\n')) ++line_;
                }
                continue;
            }
            if (ch == '\r' || ch == '\n') {
                if (ch == '\r' && peek() == '\n') get();
                ++line_;
                if (st == state::field_start && rec.fields.empty()) { // a blank line
                    rec.line = line_;
                    bytes = 0;
                    continue;
                }
                end_field();
                break;
            }
            if (ch == opts_.delimiter) {
                end_field();
                continue;
            }
            switch (st) {
            case state::field_start:
                if (ch == '"') {
                    st = state::quoted;
                    quote_line = line_;
                } else {
                    append(ch);
                    st = state::unquoted;
                }
                break;
            case state::unquoted:
                if (ch == '"') fail("quote inside unquoted field " + field_number());
                append(ch); // kept as data, so the record still ends where it should
                break;
            case state::after_quote:
                if (ch == '"') { // an escaped quote
                    append('"');
                    st = state::quoted;
                } else {
                    fail("text after the closing quote of field " + field_number());
                    append(ch);
                    st = state::unquoted;
                }
                break;
            case state::quoted: break; // handled above
            }
        }
        if (rec.error.empty()) {
            for (std::size_t i = 0; i < rec.fields.size(); ++i) {
                if (const auto at = detail::invalid_utf8_at(rec.fields[i])) {
                    rec.error =
                        "invalid UTF-8 in field " + std::to_string(i + 1) + " at byte " + std::to_string(*at + 1);
                    break;
                }
            }
        }
        return rec;
    }

    /// The line the next record starts on (or would), from 1.
    std::size_t line() const noexcept { return line_; }

private:
    static constexpr int eof = -1;

    bool fill() {
        if (!in_) {
            read_error_ = read_error_ || !in_.eof(); // e.g. a file that never opened
            return false;
        }
        in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
        size_ = static_cast<std::size_t>(in_.gcount());
        pos_ = 0;
        // The end of the input sets eof and fail; anything else that stops a read is an error to report.
        read_error_ = read_error_ || in_.bad() || (in_.fail() && !in_.eof());
        return size_ > 0;
    }
    int peek() {
        if (pos_ == size_ && !fill()) return eof;
        return static_cast<unsigned char>(buffer_[pos_]);
    }
    int get() {
        const int c = peek();
        if (c != eof) ++pos_;
        return c;
    }
    void skip_bom() {
        bom_checked_ = true;
        static constexpr std::string_view bom = "\xEF\xBB\xBF";
        // A full read fills the buffer unless the input ends first, so a BOM is within the first buffer.
        if (peek() != eof && std::string_view(buffer_.data() + pos_, size_ - pos_).starts_with(bom)) pos_ += bom.size();
    }

    std::istream& in_;
    reader_options opts_;
    std::array<char, 64 * 1024> buffer_{};
    std::size_t pos_ = 0;
    std::size_t size_ = 0;
    std::size_t line_ = 1;
    bool bom_checked_ = false;
    bool read_error_ = false;
    bool read_error_reported_ = false;
};

/// A row of a contact file: a contact, or the reason there is none.
struct contact_row {
    std::size_t line = 0; ///< the line the row starts on, from 1
    std::optional<api::new_contact> contact{};
    std::string error{}; ///< set exactly when contact is not

    bool ok() const noexcept { return contact.has_value(); }
};

struct contact_reader_options {
    reader_options csv{};
    /// Header names mapped onto new_contact's fields beyond the fields' own names, e.g. {"mobile", "phone"}.
    /// Names are compared ignoring case and surrounding blanks, with spaces and '-' read as '_'.
    std::map<std::string, std::string> aliases{};
};

/// Reads contacts from a CSV file whose first row names the columns: `phone`, `first_name`, `last_name`,
/// `email`, `group_id` (new_contact's text fields, also as "First Name" and so on) fill those fields; every
/// other column goes into custom_fields under its header's text. Empty cells are left out. A row that is
/// malformed, has more or fewer fields than the header, or breaks the catalog's rules (no phone) comes back
/// with its error. A header without a column for a required field, with a column twice or a column without
/// a name is reported as the first row's error, and nothing follows.
class contact_reader {
public:
    /// Throws std::invalid_argument for an alias onto a name that is not one of new_contact's text fields.
    explicit contact_reader(std::istream& in, contact_reader_options o = {}) : csv_(in, o.csv) {
        for (const auto& [from, to] : o.aliases) {
            const auto f = find_field(normalize(to));
            if (!f)
                throw std::invalid_argument("csv::contact_reader_options::aliases: \"" + to +
                                            "\" is not a text field of new_contact");
            aliases_.emplace(normalize(from), *f);
        }
    }

    /// The next row, or std::nullopt at the end of the input.
    std::optional<contact_row> next() {
        if (done_) return std::nullopt;
        if (!header_read_) {
            header_read_ = true;
            if (auto bad = read_header()) {
                done_ = true;
                return bad;
            }
        }
        auto rec = csv_.next();
        if (!rec) return std::nullopt;
        contact_row row;
        row.line = rec->line;
        if (!rec->ok()) return failed(std::move(row), std::move(rec->error));
        if (rec->fields.size() != columns_.size())
            return failed(std::move(row), std::string(rec->fields.size() > columns_.size() ? "too many" : "too few") +
                                              " fields: " + std::to_string(rec->fields.size()) + ", the header has " +
                                              std::to_string(columns_.size()));
        api::new_contact c;
        for (std::size_t i = 0; i < columns_.size(); ++i) {
            std::string& value = rec->fields[i];
            if (value.empty()) continue;
            if (columns_[i].set != nullptr) columns_[i].set(c, std::move(value));
            else {
                if (!c.custom_fields) c.custom_fields.emplace();
                (*c.custom_fields)[header_[i]] = std::move(value);
            }
        }
        if (auto v = api::check_all<api::new_contact_rules>(c)) return failed(std::move(row), v->message());
        row.contact = std::move(c);
        return row;
    }

    /// The header's column names as written (trimmed); empty before the first next().
    const std::vector<std::string>& header() const noexcept { return header_; }

private:
    using setter = void (*)(api::new_contact&, std::string&&);
    struct field_info {
        std::string_view name;
        setter set;
        bool required; // a std::string member, not an optional one: the header must have its column
    };
    struct column {
        setter set = nullptr; // nullptr: a custom field
    };

    /// new_contact's text members, by their described names: the field names are spelled once, in the catalog.
    static const std::vector<field_info>& fields() {
        static const std::vector<field_info> all = [] {
            std::vector<field_info> v;
            boost::mp11::mp_for_each<boost::describe::describe_members<api::new_contact, boost::describe::mod_public>>(
                [&](auto d) {
                    using D = decltype(d);
                    using T = std::remove_cvref_t<decltype(std::declval<api::new_contact&>().*D::pointer)>;
                    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::optional<std::string>>) {
                        v.push_back({D::name,
                                     +[](api::new_contact& c, std::string&& s) { c.*D::pointer = std::move(s); },
                                     std::is_same_v<T, std::string>});
                    }
                });
            return v;
        }();
        return all;
    }

    static std::optional<field_info> find_field(std::string_view normalized) {
        for (const auto& f : fields())
            if (f.name == normalized) return f;
        return std::nullopt;
    }

    static std::string trim(std::string_view s) {
        const auto b = s.find_first_not_of(" \t");
        if (b == std::string_view::npos) return {};
        return std::string(s.substr(b, s.find_last_not_of(" \t") - b + 1));
    }
    static std::string normalize(std::string_view s) {
        std::string out = trim(s);
        for (char& c : out) {
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            else if (c == ' ' || c == '-')
                c = '_';
        }
        return out;
    }

    static std::optional<contact_row> failed(contact_row row, std::string why) {
        row.error = std::move(why);
        return row;
    }

    std::optional<contact_row> read_header() {
        auto rec = csv_.next();
        contact_row bad;
        bad.line = rec ? rec->line : csv_.line();
        if (!rec) return failed(std::move(bad), "header: the file is empty, it has no header row");
        if (!rec->ok()) return failed(std::move(bad), "header: " + rec->error);
        std::map<std::string, std::size_t> seen; // normalized name -> column, from 1
        for (std::size_t i = 0; i < rec->fields.size(); ++i) {
            std::string name = trim(rec->fields[i]);
            const std::string key = normalize(name);
            if (key.empty()) return failed(std::move(bad), "header: column " + std::to_string(i + 1) + " has no name");
            std::optional<field_info> f;
            if (const auto a = aliases_.find(key); a != aliases_.end()) f = a->second;
            else
                f = find_field(key);
            const std::string id = f ? std::string(f->name) : key; // two names for one field are a duplicate too
            if (const auto [it, fresh] = seen.emplace(id, i + 1); !fresh)
                return failed(std::move(bad), "header: columns " + std::to_string(it->second) + " and " +
                                                  std::to_string(i + 1) + " are both \"" + id + "\"");
            columns_.push_back({f ? f->set : nullptr});
            header_.push_back(std::move(name));
        }
        for (const auto& f : fields()) {
            if (f.required && !seen.contains(std::string(f.name)))
                return failed(std::move(bad), "header: no \"" + std::string(f.name) + "\" column");
        }
        return std::nullopt;
    }

    reader csv_;
    std::map<std::string, field_info> aliases_; // normalized header name -> field
    std::vector<column> columns_{};
    std::vector<std::string> header_{};
    bool header_read_ = false;
    bool done_ = false;
};

} // namespace csv
CALLSAVVY_END_NAMESPACE

// The CSV reader as RFC 4180 and the contact import need it: quoted fields holding delimiters, quotes and line
// breaks, CRLF / LF / CR line ends, a BOM, per-record UTF-8 checks, line numbers that count physical lines,
// malformed records reported with their reason and reading carrying on after them, bounded memory; and the
// contact reader's header mapping, custom fields and per-row errors.
#include <callsavvy/csv.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

namespace csv = callsavvy::csv;

namespace {

std::vector<csv::record> read_all(const std::string& text, csv::reader_options o = {}) {
    std::istringstream in(text);
    csv::reader r(in, o);
    std::vector<csv::record> out;
    while (auto rec = r.next()) out.push_back(std::move(*rec));
    return out;
}

using fields = std::vector<std::string>;

std::vector<csv::contact_row> contacts_of(const std::string& text, csv::contact_reader_options o = {}) {
    std::istringstream in(text);
    csv::contact_reader r(in, std::move(o));
    std::vector<csv::contact_row> out;
    while (auto row = r.next()) out.push_back(std::move(*row));
    return out;
}

} // namespace

TEST_CASE("csv: plain records end at LF, CRLF or a lone CR, with the line each starts on", "[csv]") {
    const auto recs = read_all("a,b,c\r\nd,e,f\ng,h,i\rj,k,l");
    REQUIRE(recs.size() == 4);
    CHECK(recs[0].fields == fields{"a", "b", "c"});
    CHECK(recs[1].fields == fields{"d", "e", "f"});
    CHECK(recs[2].fields == fields{"g", "h", "i"});
    CHECK(recs[3].fields == fields{"j", "k", "l"}); // no line break after the last record
    for (std::size_t i = 0; i < recs.size(); ++i) {
        CHECK(recs[i].ok());
        CHECK(recs[i].line == i + 1);
    }
}

TEST_CASE("csv: empty fields, a trailing delimiter and a final line break", "[csv]") {
    const auto recs = read_all(",,\n,x,\n\"\",\"\"\n");
    REQUIRE(recs.size() == 3); // the final line break does not start a record
    CHECK(recs[0].fields == fields{"", "", ""});
    CHECK(recs[1].fields == fields{"", "x", ""});
    CHECK(recs[2].fields == fields{"", ""});
    CHECK(read_all("").empty());
    CHECK(read_all("\n\r\n\n").empty()); // blank lines only
}

TEST_CASE("csv: quoted fields keep delimiters, doubled quotes and line breaks; lines are still counted", "[csv]") {
    const std::string text = "id,note\n"
                             "1,\"Hello, world\"\n"
                             "2,\"She said \"\"hi\"\"\"\n"
                             "3,\"two\nlines\"\n"
                             "4,\"crlf\r\ninside\"\r\n"
                             "5,\"\"\"\"\n"
                             "6,\"a lone\rcr\"\n"
                             "7,last\n";
    const auto recs = read_all(text);
    REQUIRE(recs.size() == 8);
    for (const auto& r : recs) CHECK(r.ok());
    CHECK(recs[1].fields == fields{"1", "Hello, world"});
    CHECK(recs[2].fields == fields{"2", "She said \"hi\""});
    CHECK(recs[3].fields == fields{"3", "two\nlines"});
    CHECK(recs[4].fields == fields{"4", "crlf\r\ninside"}); // kept byte for byte
    CHECK(recs[5].fields == fields{"5", "\""});
    CHECK(recs[6].fields == fields{"6", "a lone\rcr"});
    CHECK(recs[7].fields == fields{"7", "last"});
    // Physical lines: records 3, 4 and 6 each span two.
    const std::vector<std::size_t> lines{1, 2, 3, 4, 6, 8, 9, 11};
    for (std::size_t i = 0; i < recs.size(); ++i) {
        INFO("record " << i);
        CHECK(recs[i].line == lines[i]);
    }
}

TEST_CASE("csv: blank lines are skipped without upsetting line numbers", "[csv]") {
    const auto recs = read_all("a\n\n\r\nb\n\n");
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].line == 1);
    CHECK(recs[1].fields == fields{"b"});
    CHECK(recs[1].line == 4);
}

TEST_CASE("csv: a UTF-8 BOM at the start is skipped, elsewhere it is data", "[csv]") {
    const auto recs = read_all("\xEF\xBB\xBFphone,name\n+1,\xEF\xBB\xBFx\n");
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].fields == fields{"phone", "name"});
    CHECK(recs[1].fields == fields{"+1", "\xEF\xBB\xBFx"});
    CHECK(recs[1].ok()); // U+FEFF is valid UTF-8
    // Only the BOM's first two bytes: not a BOM, so not skipped, and not UTF-8 either.
    const auto partial = read_all("\xEF\xBBx\n");
    REQUIRE(partial.size() == 1);
    CHECK(partial[0].fields == fields{"\xEF\xBBx"});
    CHECK(partial[0].error == "invalid UTF-8 in field 1 at byte 1");
}

TEST_CASE("csv: an unterminated quote is reported with the line it opened on", "[csv]") {
    const auto recs = read_all("a,b\n1,\"never\nclosed,2\n3,4\n");
    REQUIRE(recs.size() == 2);
    CHECK(recs[0].ok());
    CHECK(recs[1].line == 2);
    CHECK(recs[1].error == "unterminated quoted field 2: the quote opened on line 2 is never closed");
}

TEST_CASE("csv: a stray quote or text after a closing quote fails that record only", "[csv]") {
    const auto recs = read_all("ok,1\n5\" screen,2\n\"quoted\"tail,3\n\"fine\",4\n");
    REQUIRE(recs.size() == 4);
    CHECK(recs[0].ok());
    CHECK(recs[1].error == "quote inside unquoted field 1");
    CHECK(recs[1].fields == fields{"5\" screen", "2"}); // what was read is still there
    CHECK(recs[2].error == "text after the closing quote of field 1");
    CHECK(recs[2].line == 3);
    CHECK(recs[3].ok());
    CHECK(recs[3].fields == fields{"fine", "4"});
    CHECK(recs[3].line == 4);
}

TEST_CASE("csv: invalid UTF-8 is reported per record, valid multi-byte text passes", "[csv]") {
    const std::string text = "caf\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98\x80\n" // é, €, 😀
                             "\xC0\xAF\n"                                  // overlong '/'
                             "x,\xED\xA0\x80\n"                            // a UTF-16 surrogate
                             "\xE2\x82\n"                                  // cut short
                             "\x80\n"                                      // a lone continuation byte
                             "\xF4\x90\x80\x80\n"                          // above U+10FFFF
                             "\xF5\x80\x80\x80\n"                          // never valid
                             "ok\n";
    const auto recs = read_all(text);
    REQUIRE(recs.size() == 8);
    CHECK(recs[0].ok());
    CHECK(recs[1].error == "invalid UTF-8 in field 1 at byte 1");
    CHECK(recs[2].error == "invalid UTF-8 in field 2 at byte 1");
    CHECK(recs[3].error == "invalid UTF-8 in field 1 at byte 1");
    CHECK(recs[4].error == "invalid UTF-8 in field 1 at byte 1");
    CHECK(recs[5].error == "invalid UTF-8 in field 1 at byte 1");
    CHECK(recs[6].error == "invalid UTF-8 in field 1 at byte 1");
    CHECK(recs[7].ok());
    CHECK(recs[7].line == 8);
    CHECK(read_all("ab\xC3\n")[0].error == "invalid UTF-8 in field 1 at byte 3");
}

TEST_CASE("csv: a record beyond max_record_bytes is reported and reading goes on", "[csv]") {
    csv::reader_options o;
    o.max_record_bytes = 10;
    const auto recs = read_all("short\n\"0123456789abcdef\nstill inside\",x\nnext\n", o);
    REQUIRE(recs.size() == 3);
    CHECK(recs[0].ok());
    CHECK(recs[1].error == "record longer than 10 bytes");
    CHECK(recs[1].line == 2);
    for (const auto& f : recs[1].fields) CHECK(f.size() <= 10); // nothing beyond the limit was kept
    CHECK(recs[2].fields == fields{"next"});
    CHECK(recs[2].line == 4);
    // Delimiters count too: a line of commas cannot grow the field list without bound.
    CHECK(read_all(std::string(100, ','), o)[0].error == "record longer than 10 bytes");
}

namespace {

// Gives `text` and then fails, as a disk or a network file system may: istream turns the throw into badbit.
class failing_buffer : public std::streambuf {
public:
    explicit failing_buffer(std::string text) : text_(std::move(text)) {}

protected:
    int_type underflow() override {
        if (given_) throw std::runtime_error("I/O error");
        given_ = true;
        setg(text_.data(), text_.data(), text_.data() + text_.size());
        return traits_type::to_int_type(text_[0]);
    }

private:
    std::string text_;
    bool given_ = false;
};

} // namespace

TEST_CASE("csv: a stream that fails rather than ends is reported, not taken for the end", "[csv]") {
    // istream::read drops what a read that failed had copied, so the failure comes right after a full buffer
    // (the reader's 64 KiB) for the records before it to arrive.
    std::string text;
    std::size_t rows = 0;
    while (text.size() < 64 * 1024 - 20) {
        text += "a,b\n";
        ++rows;
    }
    text += "e," + std::string(64 * 1024 - text.size() - 2, 'x');
    failing_buffer buffer(text);
    std::istream in(&buffer);
    csv::reader r(in);
    std::vector<csv::record> recs;
    while (auto rec = r.next()) recs.push_back(std::move(*rec));
    REQUIRE(recs.size() == rows + 1);
    CHECK(std::all_of(recs.begin(), recs.end() - 1, [](const csv::record& rec) { return rec.ok(); }));
    CHECK(recs[rows].fields.at(0) == "e");
    CHECK(recs[rows].error == "the input could not be read beyond line " + std::to_string(rows + 1));

    std::istringstream never_opened;
    never_opened.setstate(std::ios::failbit);
    csv::reader closed(never_opened);
    const auto first = closed.next();
    REQUIRE(first);
    CHECK(first->error == "the input could not be read beyond line 1");
    CHECK(first->fields.empty());
    CHECK_FALSE(closed.next());
}

TEST_CASE("csv: another delimiter", "[csv]") {
    csv::reader_options o;
    o.delimiter = ';';
    const auto recs = read_all("a;\"b;c\";d,e\n", o);
    REQUIRE(recs.size() == 1);
    CHECK(recs[0].fields == fields{"a", "b;c", "d,e"});
}

TEST_CASE("csv: records stream across the reader's buffer, a CRLF split between two reads included", "[csv]") {
    // The reader fills 64 KiB at a time: put a CR as the buffer's last byte and its LF first in the next, then
    // a quoted field with a line break across the following boundary.
    constexpr std::size_t buffer = 64 * 1024;
    std::string text = "head\r\n";
    std::size_t rows = 1;
    while (text.size() < buffer - 20) {
        // Appended piece by piece: g++ 12 -O3 reports `"r" + std::to_string(n)` here as an overlapping
        // memcpy of 2^63 bytes (-Wrestrict, GCC bug 105651).
        text += 'r';
        text += std::to_string(rows++);
        text += "\r\n";
    }
    const std::size_t xs = buffer - 1 - text.size();
    text += std::string(xs, 'x');
    text += "\r\n"; // CR at offset buffer - 1
    ++rows;
    std::string quoted(1, '"');
    quoted.append(buffer - 10, 'q').append(1, '\n').append(20, 'q').append(1, '"');
    text += quoted;
    text += "\r\nlast\r\n";
    rows += 2;
    REQUIRE(text[buffer - 1] == '\r');
    const auto recs = read_all(text, {',', 4 * buffer});
    REQUIRE(recs.size() == rows);
    for (const auto& r : recs) CHECK(r.ok());
    CHECK(recs[rows - 3].fields == fields{std::string(xs, 'x')});
    CHECK(recs[rows - 2].fields == fields{quoted.substr(1, quoted.size() - 2)});
    CHECK(recs[rows - 1].fields == fields{"last"});
    CHECK(recs[rows - 1].line == rows + 1); // the quoted record spans two lines
}

TEST_CASE("csv contacts: the header maps onto new_contact, other columns into custom_fields", "[csv]") {
    const auto rows = contacts_of("\xEF\xBB\xBF Phone ,First Name,last-name,EMAIL,group_id,Company,Notes\r\n"
                                  "+2348012345678,Ada,Lovelace,ada@example.com,G1,\"Analytical, Ltd\",\r\n"
                                  "+15550001,,,,,,\"multi\nline\"\r\n");
    REQUIRE(rows.size() == 2);
    REQUIRE(rows[0].ok());
    const auto& a = *rows[0].contact;
    CHECK(rows[0].line == 2);
    CHECK(a.phone == "+2348012345678");
    CHECK(a.first_name == "Ada");
    CHECK(a.last_name == "Lovelace");
    CHECK(a.email == "ada@example.com");
    CHECK(a.group_id == "G1");
    REQUIRE(a.custom_fields);
    CHECK(*a.custom_fields == boost::json::object{{"Company", "Analytical, Ltd"}}); // empty Notes left out
    REQUIRE(rows[1].ok());
    const auto& b = *rows[1].contact;
    CHECK(b.phone == "+15550001");
    CHECK_FALSE(b.first_name); // empty cells stay absent: "" would be sent as a value
    CHECK_FALSE(b.email);
    REQUIRE(b.custom_fields);
    CHECK(*b.custom_fields == boost::json::object{{"Notes", "multi\nline"}});
}

TEST_CASE("csv contacts: every data row comes back, the malformed ones with their reason", "[csv]") {
    const auto rows = contacts_of("phone,first_name,email\n"
                                  "+1,Ann,ann@example.com\n"
                                  ",Bob,bob@example.com\n"       // no phone
                                  "+3,Cy,cy@example.com,extra\n" // too many fields
                                  "+4,Di\n"                      // too few
                                  "+5,\"Ed\"x,ed@example.com\n"  // text after the closing quote
                                  "+6,\xC3(,f@example.com\n"     // invalid UTF-8
                                  "+7,Flo,flo@example.com\n"
                                  "+8,\"Gus,gus@example.com\n" // unterminated: takes the rest of the file
                                  "+9,Hal,hal@example.com\n");
    REQUIRE(rows.size() == 8);
    CHECK(rows[0].ok());
    CHECK(rows[1].error == "Missing required parameter: phone");
    CHECK(rows[2].error == "too many fields: 4, the header has 3");
    CHECK(rows[3].error == "too few fields: 2, the header has 3");
    CHECK(rows[4].error == "text after the closing quote of field 2");
    CHECK(rows[5].error == "invalid UTF-8 in field 2 at byte 1");
    CHECK(rows[6].ok());
    CHECK(rows[7].error == "unterminated quoted field 2: the quote opened on line 9 is never closed");
    for (std::size_t i = 0; i < rows.size(); ++i) {
        INFO("row " << i);
        CHECK(rows[i].line == i + 2);
        CHECK(rows[i].ok() == rows[i].error.empty());
    }
}

TEST_CASE("csv contacts: a header that cannot work is the first row's error, and nothing follows", "[csv]") {
    const auto no_phone = contacts_of("first_name,email\nAnn,ann@example.com\n");
    REQUIRE(no_phone.size() == 1);
    CHECK(no_phone[0].line == 1);
    CHECK(no_phone[0].error == "header: no \"phone\" column");

    const auto twice = contacts_of("phone,Email,first_name, email \n+1,a@x,b,c@x\n");
    REQUIRE(twice.size() == 1);
    CHECK(twice[0].error == "header: columns 2 and 4 are both \"email\"");

    const auto unnamed = contacts_of("phone,,x\n+1,2,3\n");
    REQUIRE(unnamed.size() == 1);
    CHECK(unnamed[0].error == "header: column 2 has no name");

    const auto broken = contacts_of("phone,\"name\n");
    REQUIRE(broken.size() == 1);
    CHECK(broken[0].error == "header: unterminated quoted field 2: the quote opened on line 1 is never closed");

    const auto empty = contacts_of("");
    REQUIRE(empty.size() == 1);
    CHECK(empty[0].error == "header: the file is empty, it has no header row");

    CHECK(contacts_of("phone\n").empty()); // a header and no rows: nothing to report
}

TEST_CASE("csv contacts: aliases name columns for new_contact's fields", "[csv]") {
    csv::contact_reader_options o;
    o.aliases = {{"Mobile", "phone"}, {"Given name", "first_name"}};
    const auto rows = contacts_of("mobile,given name,phone number\n+1,Ann,+2\n", o);
    REQUIRE(rows.size() == 1);
    REQUIRE(rows[0].ok());
    CHECK(rows[0].contact->phone == "+1");
    CHECK(rows[0].contact->first_name == "Ann");
    CHECK(*rows[0].contact->custom_fields == boost::json::object{{"phone number", "+2"}});

    // An alias and the field's own name together are the same column twice.
    const auto both = contacts_of("mobile,phone\n+1,+2\n", o);
    REQUIRE(both.size() == 1);
    CHECK(both[0].error == "header: columns 1 and 2 are both \"phone\"");

    csv::contact_reader_options bad;
    bad.aliases = {{"Mobile", "telephone"}};
    std::istringstream in("phone\n");
    CHECK_THROWS_WITH(csv::contact_reader(in, bad),
                      "csv::contact_reader_options::aliases: \"telephone\" is not a text field of new_contact");
}

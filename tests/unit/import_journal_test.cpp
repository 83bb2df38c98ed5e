// The journal of `callsavvy import contacts` (tools/callsavvy/import_journal.hpp): what it records reads back,
// a torn last line is ignored and cut off, and a journal is refused for a file it was not made for.
#include "import_journal.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tools = callsavvy_tools;

namespace {

struct files {
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("callsavvy-journal-test-" + std::to_string(::getpid()));
    files() {
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
    }
    ~files() {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
    std::string path(const std::string& name) const { return (dir / name).string(); }
};

void write(const std::string& path, const std::string& text, bool append = false) {
    std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
    out << text;
}

std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST_CASE("import journal: identify_file gives the size and SHA-256 of the bytes", "[import_journal]") {
    files f;
    write(f.path("in.csv"), "abc");
    const auto id = tools::identify_file(f.path("in.csv"));
    CHECK(id.size == 3);
    CHECK(id.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_THROWS_AS(tools::identify_file(f.path("missing.csv")), tools::journal_error);
}

TEST_CASE("import journal: sent, created, failed and unsent read back by line; a torn last line is ignored",
          "[import_journal]") {
    files f;
    write(f.path("in.csv"), "phone\n+1\n+2\n+3\n+4\n");
    const auto id = tools::identify_file(f.path("in.csv"));
    const std::string path = f.path("in.journal");
    {
        auto j = tools::import_journal::create(path, id);
        const std::vector<std::size_t> first{2, 3, 4};
        j.sent(first);
        j.created(2, "CT1");
        j.failed(3, "Invalid parameter: phone\nsecond line");
        const std::vector<std::size_t> second{5};
        j.sent(second);
        j.unsent(second);
        j.sync();
    }
    write(path, "created 4 CT", true); // cut short by a kill
    tools::journal_rows rows;
    {
        auto j = tools::import_journal::resume(path, id, rows);
        REQUIRE(rows.size() == 3);
        CHECK(rows.at(2).state == tools::row_state::created);
        CHECK(rows.at(2).detail == "CT1");
        CHECK(rows.at(3).state == tools::row_state::failed);
        CHECK(rows.at(3).detail == "Invalid parameter: phone second line"); // one line per entry
        CHECK(rows.at(4).state == tools::row_state::sent);
        CHECK_FALSE(rows.contains(5)); // unsent: never reached the server
        // The torn line is gone, so the next entry starts a line of its own.
        CHECK(read(path).ends_with("unsent 5\n"));
        j.created(4, "CT9");
        j.sync();
    }
    auto again = tools::import_journal::resume(path, id, rows);
    CHECK(rows.at(4).state == tools::row_state::created);
    CHECK(rows.at(4).detail == "CT9");
}

TEST_CASE("import journal: refuses another file's journal, an existing journal and a damaged one", "[import_journal]") {
    files f;
    write(f.path("in.csv"), "phone\n+1\n");
    const auto id = tools::identify_file(f.path("in.csv"));
    const std::string path = f.path("in.journal");
    { auto j = tools::import_journal::create(path, id); }
    CHECK_THROWS_WITH(tools::import_journal::create(path, id), Catch::Contains("exists: pass --resume"));

    write(f.path("in.csv"), "phone\n+2\n"); // same size, other bytes
    tools::journal_rows rows;
    CHECK_THROWS_WITH(tools::import_journal::resume(path, tools::identify_file(f.path("in.csv")), rows),
                      Catch::Contains("records another input file"));

    write(path, "not a journal\n");
    CHECK_THROWS_WITH(tools::import_journal::resume(path, id, rows),
                      Catch::Contains("is not a callsavvy import journal"));
    write(path, "callsavvy-import-journal v1 size=" + std::to_string(id.size) + " sha256=" + id.sha256 +
                    "\nsent 2\ncreated x CT1\n");
    CHECK_THROWS_WITH(tools::import_journal::resume(path, id, rows), Catch::Contains("line 3 of the journal"));
    CHECK_THROWS_WITH(tools::import_journal::resume(f.path("none.journal"), id, rows),
                      Catch::Contains("cannot resume"));
}

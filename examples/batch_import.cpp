// batch_import — a contact import the way an application runs one, fully offline against the in-process mock:
// a CSV export is read row by row (csv::contact_reader), its rows are created with createBulkContact requests
// (async_import_contacts, several rows per request), every row's outcome is reported by its CSV line, and a
// follow-up batch (async_run_batch) creates a lead per imported contact within the rate limits, with progress.
// It exits non-zero if anything differs from what it expects, so CI catches a regression.
#include <callsavvy/batch.hpp>
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/contacts.hpp>
#include <callsavvy/csv.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include <callsavvy/asio.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace api = callsavvy::api;
namespace net = callsavvy::asio;
namespace csv = callsavvy::csv;
using namespace std::chrono_literals;

namespace {

// A spreadsheet export with what real ones contain: a BOM, CRLF, quoted commas and line breaks, and three
// rows that cannot be imported.
const std::string export_csv = "\xEF\xBB\xBF"
                               "Phone,First Name,Last Name,Email,Company\r\n"
                               "+2348012345001,Ada,Lovelace,ada@example.com,\"Analytical Engines, Ltd\"\r\n"
                               "+2348012345002,Alan,Turing,alan@example.com,Bletchley\r\n"
                               ",Grace,Hopper,grace@example.com,Navy\r\n" // no phone
                               "+2348012345004,Edsger,Dijkstra,edsger@example.com,\"Eindhoven\r\nUniversity\"\r\n"
                               "+2348012345005,Barbara,Liskov,barbara@example.com,MIT,extra\r\n" // too many fields
                               "+2348012345006,Donald,Knuth,don@example.com,Stanford\r\n"
                               "+2348012345007,\"Frances\"x,Allen,fran@example.com,IBM\r\n" // text after a quote
                               "+2348012345008,Ken,Thompson,ken@example.com,Bell Labs\r\n";

void expect(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("unexpected: " + what);
}

net::awaitable<void> import(callsavvy::client& cs, callsavvy::testing::mock_server& mock) {
    // 1. Rows are pulled one by one: a generator hands the importer each good row and reports the others, so a
    // file of any size never sits in memory. csv_line[i] remembers where row i came from.
    std::istringstream file(export_csv);
    csv::contact_reader reader(file);
    std::vector<std::size_t> csv_line;
    int unreadable = 0;
    auto rows = [&]() -> std::optional<api::new_contact> {
        while (auto row = reader.next()) {
            if (row->ok()) {
                csv_line.push_back(row->line);
                return std::move(row->contact);
            }
            ++unreadable;
            std::cout << "line " << row->line << ": skipped: " << row->error << '\n';
        }
        return std::nullopt;
    };

    // 2. The import: rows go out in createBulkContact requests of chunk_size rows (500, the catalog's limit, by
    // default; 2 here so that a short file makes several requests), two requests at a time.
    callsavvy::contact_import_options options;
    options.chunk_size = 2;
    options.batch.max_in_flight = 2;
    options.group_id = "G1";
    auto run_import = callsavvy::async_import_contacts(cs, rows, options);
    const callsavvy::contact_import_result imported = co_await std::move(run_import);
    for (const auto& row : imported.rows) {
        std::cout << "line " << csv_line.at(row.row) << ": "
                  << (row.ok() ? "created " + *row.contact_id : "not created: " + row.message) << '\n';
    }
    std::cout << imported.created << " created, " << imported.failed << " failed, " << unreadable << " unreadable, in "
              << imported.requests.total << " createBulkContact requests\n";
    expect(unreadable == 3 && imported.created == 5 && imported.total == 5, "import counts");
    expect(imported.requests.total == 3 && mock.collection("contacts").size() == 5, "requests and stored contacts");

    // 3. A batch of one endpoint: a lead per imported contact, at most 4 calls outstanding; the client's limiter
    // paces them (the mock allows 5 a second per endpoint), and the progress says how far it got.
    std::vector<api::create_lead_request> leads;
    for (const auto& row : imported.rows) {
        api::create_lead_request lead;
        lead.name = "Lead for " + *row.contact_id;
        lead.phone = "+2348000000000";
        lead.source = "import";
        leads.push_back(std::move(lead));
    }
    for (int i = 0; i < 7; ++i) leads.push_back(leads[static_cast<std::size_t>(i) % leads.size()]); // 12 in all
    callsavvy::batch_options batch;
    batch.max_in_flight = 4;
    batch.policy = callsavvy::batch_policy::stop_on_first_error;
    batch.progress_interval = 250ms;
    batch.on_progress = [](const callsavvy::batch_progress& p) {
        std::printf("leads: %zu/%zu done, %zu in flight (%zu waiting for the rate limit), %.1f/s%s\n", p.done,
                    p.total.value_or(0), p.in_flight, p.waiting_in_limiter, p.rate, p.final ? " (final)" : "");
    };
    auto run_leads = callsavvy::async_run_batch(cs, api::create_lead{}, std::move(leads), batch);
    const auto created = co_await std::move(run_leads);
    expect(created.all_succeeded() && created.items.size() == 12, "every lead created");
    for (const auto& item : created.items) expect(item.response->lead_id.has_value(), "a lead id per item");

    std::size_t too_many = 0;
    for (const auto& e : mock.journal()) too_many += e.status == 429 ? 1 : 0;
    expect(too_many == 0, "no 429 from the server");
}

} // namespace

int main() {
    net::io_context io;
    // The mock with short rate-limit windows, and the client's limiter told the same limits.
    callsavvy::testing::mock_options mock_options;
    mock_options.rate_limits.window = 1s;
    mock_options.rate_limits.per_endpoint = 5;
    mock_options.rate_limits.global = 10;
    callsavvy::testing::mock_server mock(io.get_executor(), mock_options);
    callsavvy::client_options options;
    const auto key = callsavvy::testing::sandbox_key();
    options.keys = {key.public_key, key.private_key};
    options.base_url = mock.base_url();
    options.proxy.from_environment = false;
    options.rate_limits.per_endpoint = {5, 1s};
    options.rate_limits.global = {10, 1s};
    callsavvy::client cs(io.get_executor(), std::move(options));

    int status = 1;
    bool finished = false;
    net::co_spawn(io, import(cs, mock), [&](std::exception_ptr e) {
        finished = true;
        try {
            if (e) std::rethrow_exception(e);
            status = 0;
        } catch (const std::exception& x) {
            std::cerr << "batch_import failed: " << x.what() << '\n';
        }
        cs.close();
        mock.stop();
    });
    io.run_for(30s);
    if (!finished) std::cerr << "batch_import failed: timed out\n";
    if (status == 0) std::cout << "import complete\n";
    return status;
}

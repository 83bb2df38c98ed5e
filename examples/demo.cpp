// demo — a session with callsavvy the way an application has one, on one io_context: the business summary,
// a CSV of 3000 contacts imported through the rate limiter with progress, tickets created and walked page by
// page (the first page meets a 429 and is retried), an SMS campaign, and webhooks of several kinds received
// by typed handlers (a caller lookup answered with its typed reply); then what the client and the listener
// counted. Offline (the default) it runs against the in-process mock server, with short rate windows, and
// exits non-zero when anything differs from what it expects, so CI catches a regression.
//
//   demo                          offline: mock server + webhook listener in this process
//   demo --live                   the same calls against the real API; keys from CALLSAVVY_PUBLIC_KEY and
//                                 CALLSAVVY_PRIVATE_KEY (CALLSAVVY_BASE_URL optional). Creates real contacts
//                                 and tickets and sends a real SMS campaign.
//   demo --live --listen-port N   also receives the account's webhooks on 127.0.0.1:N until Ctrl-C
#include <callsavvy/callsavvy.hpp>
#include <callsavvy/contacts.hpp>
#include <callsavvy/csv.hpp>
#include <callsavvy/testing/mock_server.hpp>
#include <callsavvy/testing/webhook_sender.hpp>
#include <callsavvy/webhook/listener.hpp>

#include "progress_line.hpp"

#include <boost/json/parse.hpp>
#include <callsavvy/asio.hpp>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace api = callsavvy::api;
namespace net = callsavvy::asio;
namespace csv = callsavvy::csv;
namespace wh = callsavvy::webhook;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t contact_count = 3000;
constexpr std::size_t ticket_count = 12;
constexpr std::int64_t tickets_per_page = 5;
constexpr std::size_t campaign_size = 100;

void expect(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("unexpected: " + what);
}

void section(std::string_view title) { std::cout << "\n== " << title << " ==\n"; }

/// What the client's observer saw: one event per attempt; an attempt that is not retried ends its call.
struct call_counts {
    std::size_t calls = 0;
    std::size_t attempts = 0;
    std::size_t rate_limited = 0; ///< answers 429
    std::size_t retries = 0;
    std::size_t failed = 0;
};

/// A CRM export: a header, `n` contacts and two rows without a phone, which the reader reports.
std::string contacts_csv(std::size_t n) {
    static constexpr const char* first[] = {"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken"};
    static constexpr const char* last[] = {"Okafor", "Mensah", "Adeyemi", "Bello", "Eze", "Nwosu", "Ibrahim"};
    std::string out = "Phone,First Name,Last Name,Email,Company\r\n";
    for (std::size_t i = 0; i < n; ++i) {
        const std::string f = first[i % 8], l = last[i % 7];
        out += "+23480" + std::to_string(10000000 + i) + ',' + f + ',' + l + ',' + f + '.' + l + std::to_string(i) +
               "@example.com,\"Customer " + std::to_string(i % 40) + ", Ltd\"\r\n";
        if (i == n / 3 || i == 2 * n / 3) out += ",No,Phone,nophone@example.com,Unknown\r\n";
    }
    return out;
}

/// Everything the session needs; the mock and the webhook sender only offline.
struct session {
    session(callsavvy::client& c, callsavvy::testing::mock_server* m) : cs(c), mock(m) {}

    callsavvy::client& cs;
    callsavvy::testing::mock_server* mock;               ///< null with --live
    std::string callback_url{};                          ///< the listener's, for the offline sender
    std::map<std::string, std::string> names_by_phone{}; ///< the imported contacts, for the caller lookup
    std::vector<std::string> phones{};
    std::vector<std::string> ticket_ids{};

    bool offline() const { return mock != nullptr; }

    net::awaitable<void> summary() {
        section("business summary (getSummary)");
        api::get_summary_request req;
        const api::get_summary_response s = co_await cs.async_get_summary(std::move(req));
        std::cout << "business " << s.business_name.value_or("?") << " (" << s.business_id.value_or("?") << "), plan "
                  << s.plan.value_or("?") << ", balance " << s.balance.value_or("?") << ", number "
                  << s.assigned_number.value_or("?") << '\n';
        expect(s.business_name.has_value(), "getSummary without business_name");
    }

    net::awaitable<void> import_contacts() {
        section("contact import (" + std::to_string(contact_count) + " rows of CSV, createBulkContact)");
        // Rows are pulled from the reader only as requests can start, so a file of any size is never held
        // whole; rows the reader cannot use are reported by line.
        std::istringstream file(contacts_csv(contact_count));
        csv::contact_reader reader(file);
        std::size_t unreadable = 0;
        auto rows = [&]() -> std::optional<api::new_contact> {
            while (auto row = reader.next()) {
                if (row->ok()) {
                    phones.push_back(row->contact->phone);
                    names_by_phone[row->contact->phone] =
                        row->contact->first_name.value_or("") + ' ' + row->contact->last_name.value_or("");
                    return std::move(row->contact);
                }
                ++unreadable;
                std::cout << "line " << row->line << ": skipped: " << row->error << '\n';
            }
            return std::nullopt;
        };
        // 100 rows per request (500 is the catalog's limit) so the limiter has 30 requests to pace.
        callsavvy::contact_import_options options;
        options.chunk_size = 100;
        options.batch.max_in_flight = 4;
        options.batch.expected_total = contact_count / options.chunk_size;
        options.batch.on_progress = callsavvy_tools::progress_line("createBulkContact requests", stdout);
        auto run = callsavvy::async_import_contacts(cs, rows, options);
        const callsavvy::contact_import_result imported = co_await std::move(run);
        std::cout << imported.created << " created, " << imported.failed << " failed, " << imported.not_processed
                  << " not processed, " << imported.outcome_unknown << " outcome unknown, " << unreadable
                  << " unreadable; " << imported.requests.total << " requests\n";
        expect(unreadable == 2, "the reader's rejected rows");
        expect(imported.created == contact_count && imported.requests.total == contact_count / 100, "import counts");
        if (offline()) expect(mock->collection("contacts").size() == contact_count, "contacts stored by the mock");
    }

    net::awaitable<void> tickets() {
        section("tickets (createTicket, then listTickets page by page)");
        for (std::size_t i = 1; i <= ticket_count; ++i) {
            api::create_ticket_request req{.subject = "Order #" + std::to_string(4100 + i) + " has not arrived",
                                           .message = "Ordered two weeks ago; tracking shows nothing.",
                                           .sender_email = "customer" + std::to_string(i) + "@example.com"};
            const api::create_ticket_response t = co_await cs.async_create_ticket(std::move(req));
            expect(t.ticket_id.has_value(), "createTicket without ticket_id");
            ticket_ids.push_back(*t.ticket_id);
        }
        std::cout << ticket_ids.size() << " tickets created: " << ticket_ids.front() << " .. " << ticket_ids.back()
                  << '\n';
        if (offline()) {
            // Another process with the same key has just used up listTickets' window on the server: its answer
            // is 429, which proves the request was not processed, so the client waits out Retry-After and
            // sends it again.
            const auto key = callsavvy::testing::sandbox_key();
            mock->consume(key.public_key, "listTickets", 10);
        }
        api::list_tickets_request first{.per_page = tickets_per_page, .status = "open"};
        auto pages = callsavvy::paginate(cs, api::list_tickets{}, std::move(first));
        std::size_t pages_seen = 0, seen = 0;
        for (;;) { // not `while (co_await ...)`: g++ 12, see the README
            auto page = co_await pages.next();
            if (!page) break;
            ++pages_seen;
            seen += page->tickets.size();
            std::cout << "page " << page->pagination.page.value_or(0) << '/' << page->pagination.total_pages.value_or(0)
                      << ':';
            for (const auto& t : page->tickets) std::cout << ' ' << t.ticket_id.value_or("?");
            std::cout << '\n';
            if (!offline() && pages_seen == 3) break; // a real account may have many: three pages show it
        }
        if (offline()) expect(pages_seen == 3 && seen == ticket_count && pages.done(), "the ticket walk");
    }

    net::awaitable<void> campaign() {
        section("SMS campaign (sendSms)");
        api::send_sms_request req;
        req.recipients.assign(phones.begin(), phones.begin() + campaign_size);
        req.message = "Your order is on its way. Reply STOP to opt out.";
        const api::send_sms_response r = co_await cs.async_send_sms(std::move(req));
        std::cout << "campaign " << r.campaign_id.value_or("?") << ": " << r.queued.value_or(0) << " messages queued\n";
        expect(r.campaign_id.has_value(), "sendSms without campaign_id");
        if (offline()) expect(r.queued == static_cast<std::int64_t>(campaign_size), "messages queued");
    }

    /// Offline: Callsavvy's side played by the mock's webhook sender, delivering typed events to the listener.
    net::awaitable<void> webhooks() {
        section("webhooks (the mock's sender -> the listener's typed handlers)");
        // The executor in a statement of its own: g++ 12 mishandles temporaries (here the sender's default
        // options) in a full-expression holding a co_await.
        const net::any_io_executor ex = co_await net::this_coro::executor;
        callsavvy::testing::webhook_sender sender(ex, callback_url);
        std::size_t acknowledged = 0;
        for (std::size_t i = 0; i < 3; ++i) {
            wh::new_ticket_opened e;
            e.ticket_id = ticket_ids.at(i);
            e.ticket_subject = "Order #" + std::to_string(4101 + i) + " has not arrived";
            e.ticket_department = "Support";
            const auto r = co_await sender.deliver(e);
            acknowledged += r.status == 200 ? 1 : 0;
        }
        wh::ticket_escalated escalated;
        escalated.ticket_id = ticket_ids.front();
        escalated.escalation_level = 2;
        const auto r1 = co_await sender.deliver(escalated);
        acknowledged += r1.status == 200 ? 1 : 0;
        const std::array<std::int64_t, 2> durations{185, 42};
        for (const std::int64_t seconds : durations) {
            wh::call_summary e;
            e.caller_number = phones.at(static_cast<std::size_t>(seconds) % phones.size());
            e.call_duration = seconds;
            e.call_department = "Sales";
            const auto r = co_await sender.deliver(e);
            acknowledged += r.status == 200 ? 1 : 0;
        }
        // A lookup: the listener answers with the handler's typed reply, read back here as the service would.
        wh::caller_information lookup;
        lookup.caller_number = phones.at(7);
        lookup.call_department = "Sales";
        const auto answer = co_await sender.deliver(lookup);
        acknowledged += answer.status == 200 ? 1 : 0;
        wh::caller_information_reply reply;
        callsavvy::json_mapping::decode_error err;
        const auto body = boost::json::parse(answer.body);
        expect(body.is_object() && wh::decode_reply(body.as_object(), reply, err), "the lookup's reply");
        std::cout << "callerInformation " << *lookup.caller_number << " answered: " << reply.caller_name << " ("
                  << reply.customer_info << ")\n";
        expect(acknowledged == 7, "every delivery acknowledged");
        expect(reply.caller_name == names_by_phone.at(*lookup.caller_number), "the looked-up caller's name");
    }
};

/// The typed handlers: notifications print a line; the caller lookup finds the caller among the imports.
void add_handlers(wh::listener& hooks, const std::map<std::string, std::string>& names_by_phone) {
    hooks.on<wh::new_ticket_opened>([](wh::new_ticket_opened e) -> net::awaitable<void> {
        std::cout << "  newTicketOpened " << e.ticket_id.value_or("?") << ": " << e.ticket_subject.value_or("") << '\n';
        co_return;
    });
    hooks.on<wh::ticket_escalated>([](wh::ticket_escalated e) -> net::awaitable<void> {
        std::cout << "  ticketEscalated " << e.ticket_id.value_or("?") << " to level " << e.escalation_level.value_or(0)
                  << '\n';
        co_return;
    });
    hooks.on<wh::call_summary>([](wh::call_summary e) -> net::awaitable<void> {
        std::cout << "  callSummary " << e.caller_number.value_or("?") << " talked " << e.call_duration.value_or(0)
                  << " s\n";
        co_return;
    });
    hooks.on<wh::caller_information>(
        [&names_by_phone](wh::caller_information e) -> net::awaitable<wh::caller_information_reply> {
            wh::caller_information_reply r;
            const auto it = names_by_phone.find(e.caller_number.value_or(""));
            r.caller_name = it != names_by_phone.end() ? it->second : "";
            r.customer_info = it != names_by_phone.end() ? "imported contact" : "unknown caller";
            std::cout << "  callerInformation " << e.caller_number.value_or("?") << " -> " << r.caller_name << '\n';
            co_return r;
        });
}

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
}

int usage(const char* why) {
    std::cerr << "demo: " << why << "\nusage: demo [--live [--listen-port N]]\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    bool live = false;
    std::optional<std::uint16_t> listen_port;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--live") {
            live = true;
        } else if (a == "--listen-port" && i + 1 < argc) {
            const long p = std::strtol(argv[++i], nullptr, 10);
            if (p <= 0 || p > 65535) return usage("--listen-port takes a port number, 1 to 65535");
            listen_port = static_cast<std::uint16_t>(p);
        } else {
            return usage(a == "--help" ? "a session with callsavvy, offline against the mock unless --live"
                                       : "unknown argument");
        }
    }
    if (listen_port && !live) return usage("--listen-port goes with --live (offline the listener is always on)");
    const auto public_key = env("CALLSAVVY_PUBLIC_KEY");
    const auto private_key = env("CALLSAVVY_PRIVATE_KEY");
    if (live && (!public_key || !private_key)) {
        std::cerr << "demo: --live needs CALLSAVVY_PUBLIC_KEY and CALLSAVVY_PRIVATE_KEY in the environment\n";
        return 2;
    }

    // The io_context first: every socket below belongs to it and must be gone before it is.
    net::io_context io;
    std::optional<callsavvy::testing::mock_server> mock;
    callsavvy::client_options options;
    if (live) {
        options.keys = {*public_key, *private_key};
        if (auto url = env("CALLSAVVY_BASE_URL")) options.base_url = *url;
    } else {
        // One-second windows instead of Callsavvy's minute: the same pacing, in seconds. The client's limiter
        // is told the same limits, as it would be the real ones.
        callsavvy::testing::mock_options mo;
        mo.rate_limits.window = 1s;
        mo.rate_limits.per_endpoint = 10;
        mo.rate_limits.global = 25;
        mock.emplace(io.get_executor(), mo);
        const auto key = callsavvy::testing::sandbox_key();
        options.keys = {key.public_key, key.private_key};
        options.base_url = mock->base_url();
        options.proxy.from_environment = false; // a proxy from the environment must not intercept loopback
        options.rate_limits.per_endpoint = {10, 1s};
        options.rate_limits.global = {25, 1s};
        options.call_deadline = 15s;
    }
    call_counts counts;
    options.observer = [&counts](const callsavvy::call_event& e) {
        ++counts.attempts;
        if (e.http_status == 429) {
            ++counts.rate_limited;
            std::cout << "  " << e.resource << ": answered 429"
                      << (e.will_retry ? ", sent again after Retry-After" : "") << '\n';
        }
        if (e.will_retry) {
            ++counts.retries;
        } else {
            ++counts.calls;
            if (e.ec) ++counts.failed;
        }
    };
    callsavvy::client cs(io.get_executor(), std::move(options));

    session s(cs, mock ? &*mock : nullptr);
    std::optional<wh::listener> hooks;
    if (!live || listen_port) {
        wh::listener_options lo;
        lo.server.port = listen_port.value_or(0);
        lo.path = "/hooks/demo";
        hooks.emplace(io.get_executor(), std::move(lo));
        add_handlers(*hooks, s.names_by_phone);
        hooks->start();
        s.callback_url = "http://127.0.0.1:" + std::to_string(hooks->port()) + "/hooks/demo";
    }

    std::cout << "callsavvy " << callsavvy::version_string << " demo, "
              << (live ? "live: " + cs.options().base_url : "offline: mock server at " + mock->base_url()) << '\n';
    if (hooks) std::cout << "webhook listener at " << s.callback_url << '\n';

    // Live, Ctrl-C ends the listening phase; during the calls it closes the client, which ends them.
    net::signal_set signals(io);
    net::steady_timer wake(io, std::chrono::steady_clock::time_point::max());
    bool listening = false, interrupted = false;
    if (live) {
        signals.add(SIGINT);
        signals.add(SIGTERM);
        signals.async_wait([&](callsavvy::error_code ec, int) {
            if (ec) return;
            if (listening) {
                wake.cancel();
                return;
            }
            interrupted = true;
            cs.close();
            if (hooks) hooks->stop();
        });
    }

    int status = 1;
    bool finished = false;
    auto run = [&]() -> net::awaitable<void> {
        co_await s.summary();
        co_await s.import_contacts();
        co_await s.tickets();
        co_await s.campaign();
        if (!live) {
            co_await s.webhooks();
        } else if (hooks) {
            section("webhooks (until Ctrl-C)");
            listening = true;
            std::cout.flush();
            auto [woken] = co_await wake.async_wait(net::experimental::as_tuple(net::use_awaitable));
            (void)woken; // cancelled by the signal: that is the point
        }
        if (hooks) {
            const callsavvy::shutdown_result r = co_await hooks->async_shutdown(2000ms, net::use_awaitable);
            std::cout << "listener shut down: " << r.finished << " finished, " << r.cancelled << " cancelled\n";
        }

        section("summary");
        std::cout << "calls: " << counts.calls << " (" << counts.attempts
                  << " attempts), answered 429: " << counts.rate_limited << ", retries: " << counts.retries
                  << ", failed: " << counts.failed << '\n';
        if (hooks) {
            const auto stats = hooks->statistics();
            std::cout << "webhook deliveries: " << stats.all.total() << ", handled: " << stats.all.ok << ", by kind:";
            for (const auto& [name, c] : stats.by_event) std::cout << ' ' << name << '=' << c.total();
            std::cout << '\n';
            if (!live) {
                expect(stats.all.ok == 7 && stats.all.total() == 7, "the listener's counts");
                expect(stats.by_event.at("newTicketOpened").ok == 3 && stats.by_event.at("ticketEscalated").ok == 1 &&
                           stats.by_event.at("callSummary").ok == 2 && stats.by_event.at("callerInformation").ok == 1,
                       "deliveries per kind");
            }
        }
        if (!live) {
            // 1 summary + 30 imports + 12 tickets + 3 pages + 1 campaign; the 429 is the only retry.
            expect(counts.calls == 47 && counts.failed == 0, "the calls made");
            expect(counts.rate_limited >= 1 && counts.retries == counts.rate_limited, "the 429 and its retry");
        }
    };
    net::co_spawn(io, run(), [&](std::exception_ptr e) {
        finished = true;
        try {
            if (e) std::rethrow_exception(e);
            status = 0;
        } catch (const std::exception& x) {
            std::cerr << "demo failed: " << (interrupted ? std::string("interrupted") : x.what()) << '\n';
        }
        signals.cancel();
        cs.close(); // with the servers stopped too, nothing is left to run and io.run() returns
        if (hooks) hooks->stop();
        if (mock) mock->stop();
    });
    if (live) {
        io.run();
    } else {
        io.run_for(25s); // a hang is a failure too
    }
    if (!finished) std::cerr << "demo failed: timed out\n";
    if (status == 0) std::cout << "demo complete\n";
    return interrupted ? 130 : status;
}

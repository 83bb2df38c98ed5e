// callsavvy/testing/mock_server.hpp — an offline Callsavvy for tests, examples, the demo and benchmarks:
// a real HTTP(S) server on loopback (the shared server side and codec) that behaves as the spec says the
// service does. Routes come from the endpoint catalog; requests are checked with the catalog's rules;
// every endpoint keeps in-memory state. Rate limits as documented (configurable), deterministic fault
// injection (fault_injector, around the mock's handler), and a bounded journal of every request so a test can
// prove nothing was lost or sent twice.
#pragma once

#include <callsavvy/api/catalog.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/envelope.hpp>
#include <callsavvy/json/mapping.hpp>
#include <callsavvy/net/server.hpp>
#include <callsavvy/webhook/address.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace testing {

struct api_key {
    std::string public_key{};
    std::string private_key{};
};

/// The sandbox key pair Callsavvy documents (spec §1); accepted by default.
inline api_key sandbox_key() {
    return {"TEST-hdo76HDCGAjfig4jbnyUI4734BNDY", "TEST-934HDHD84JDVBPSW73BYjegh494WD9084NFUih34-9974r"};
}

enum class window_mode {
    fixed,   ///< counts reset at each multiple of the window since the server started
    sliding, ///< at most N requests in any span of one window
};

struct mock_rate_limits {
    bool enabled = true;
    std::size_t per_endpoint = 50;           ///< per key and resource URI (0: every request is answered 429)
    std::size_t global = 100;                ///< per key, all resources (0: likewise)
    std::chrono::milliseconds window{60000}; ///< must be positive: the constructor throws invalid_argument else
    window_mode mode = window_mode::fixed;
    bool send_retry_after = true; ///< whole seconds until a slot frees
};

struct mock_options {
    server_options server{}; ///< address, port, TLS, request limits (413), timeouts
    std::string path_prefix = "/v1/";
    std::vector<api_key> keys{sandbox_key()};
    /// Empty: any source; else only addresses in these CIDR ranges or single addresses, IPv4 or IPv6 (403
    /// otherwise), as the listener's allow-list takes them. An entry that is neither throws
    /// std::invalid_argument naming allowed_sources and quoting it.
    std::vector<std::string> allowed_sources{};
    mock_rate_limits rate_limits{};
    std::uint64_t seed = 1; ///< of the random faults and nothing else
    /// false: keep no journal (journal() stays empty), for a long-running mock that nobody inspects, such as
    /// `callsavvy mock` under a benchmark.
    bool keep_journal = true;
    /// The journal keeps the latest this many entries; older ones are dropped (and counted), so a mock that
    /// runs long holds bounded memory.
    std::size_t journal_capacity = 100000;
};

/// One request as the mock received it.
struct journal_entry {
    std::chrono::steady_clock::time_point time{};
    std::string resource{};
    std::string public_key{}; ///< as sent; the private key is never recorded
    std::string body{};
    int status = 0; ///< the status answered (0: no answer was sent)
    std::uint64_t connection_id = 0;
};

/// A fault to inject: on the next `count` requests to `resource` (empty: any resource).
struct fault {
    enum class kind {
        fail_with_status,    ///< an error envelope with `status`; the endpoint does not run
        delay,               ///< the answer is held back `delay` (the endpoint runs first)
        close_after_reading, ///< the connection closes without an answer; the endpoint does not run
        chunked,             ///< the answer goes out with Transfer-Encoding: chunked
        truncated,           ///< the answer promises its whole body, sends half of it and closes
        stall,               ///< no answer until the server stops; the endpoint does not run
    };
    kind what = kind::fail_with_status;
    std::size_t count = 1;
    std::string resource{};
    int status = 500;                   ///< fail_with_status
    std::chrono::milliseconds delay{0}; ///< delay
    /// fail_with_status: sent as Retry-After (spec §1: a 503 may carry one), rounded up to whole seconds.
    std::optional<std::chrono::milliseconds> retry_after{};
};

/// Fault injection as a wrapper around a handler's answer: the pending faults, and how each one replaces or
/// reshapes the answer. The waits (delay, stall) are timers awaited inside the handler, so the server's stop()
/// ends them at once; the reshaped answers are ordinary responses built here, so the server needs no test
/// knobs. mock_server uses it between its admission checks (keys, rate limits) and its endpoints.
class fault_injector {
public:
    void inject(fault f) {
        if (f.count == 0) return; // nothing to fail (and take()'s countdown must not wrap around)
        pending_.push_back(std::move(f));
    }

    /// The next fault for `resource`, counted down; nullopt when none is pending.
    std::optional<fault> take(std::string_view resource) {
        for (auto it = pending_.begin(); it != pending_.end(); ++it) {
            if (!it->resource.empty() && it->resource != resource) continue;
            fault f = *it;
            if (--it->count == 0) pending_.erase(it);
            return f;
        }
        return std::nullopt;
    }

    /// Answers as `f` says around `answer` (a callable returning the normal server_reply), which runs only
    /// when the fault lets the request through: not for close_after_reading or stall. fail_with_status is the
    /// caller's to answer (its body is the caller's error format): here it answers as no fault would.
    template <class Answer>
    static asio::awaitable<server_reply> apply(const fault& f, Answer answer) {
        server_reply reply;
        switch (f.what) {
        case fault::kind::close_after_reading: reply.what = server_reply::action::close; co_return reply;
        case fault::kind::stall:
            co_await wait(asio::steady_timer::time_point::max());
            reply.what = server_reply::action::close; // stopped: nobody will read an answer
            co_return reply;
        case fault::kind::delay: {
            reply = answer();
            // Awaited in a statement of its own: g++ 12 can miscompile a co_await inside an if condition.
            const bool waited = co_await wait(asio::steady_timer::clock_type::now() + f.delay);
            if (!waited) reply.what = server_reply::action::close;
            co_return reply;
        }
        case fault::kind::chunked:
            reply = answer();
            make_chunked(reply.response);
            co_return reply;
        case fault::kind::truncated:
            reply = answer();
            truncate(reply);
            co_return reply;
        case fault::kind::fail_with_status: break;
        }
        co_return answer();
    }

    /// The body re-sent as two chunks and the last chunk, pre-encoded: the serializer sends the fields as given
    /// when Transfer-Encoding is present.
    static void make_chunked(http::response& r) {
        const std::string_view body = r.body;
        const std::size_t half = body.size() / 2;
        std::string encoded = http::chunk(body.substr(0, half));
        encoded += http::chunk(body.substr(half));
        encoded += http::last_chunk();
        r.body = std::move(encoded);
        r.headers.erase("Content-Length");
        r.headers.set("Transfer-Encoding", "chunked");
    }

    /// Content-Length of the whole body, half of it sent, then the connection closes.
    static void truncate(server_reply& reply) {
        http::response& r = reply.response;
        r.headers.set("Content-Length", std::to_string(r.body.size()));
        r.body.resize(r.body.size() / 2);
        reply.close_after = true;
    }

private:
    /// Waits until `at` on the handler's executor; false when cancelled (the server stopped). Touches nothing but
    /// its own frame after the wait: the mock may be gone by then.
    static asio::awaitable<bool> wait(asio::steady_timer::time_point at) {
        asio::steady_timer t(co_await asio::this_coro::executor, at);
        auto [ec] = co_await t.async_wait(callsavvy::detail::use_nothrow);
        co_return !ec;
    }

    std::deque<fault> pending_;
};

namespace detail {

/// Whether a Content-Type names JSON: the media type application/json, any case, with or without parameters.
inline bool is_json_media_type(std::optional<std::string_view> content_type) {
    if (!content_type) return false;
    std::string_view t = content_type->substr(0, content_type->find(';'));
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    return http::detail::iequals(t, "application/json");
}

/// The mock's data: one list of JSON objects per collection, with ids unique per prefix.
struct mock_store {
    std::map<std::string, std::vector<boost::json::object>, std::less<>> collections;
    std::map<std::string, std::vector<boost::json::object>, std::less<>> messages; ///< per ticket/chat/conversation id
    std::uint64_t next_id = 1000;

    std::string new_id(std::string_view prefix) { return std::string(prefix) + std::to_string(++next_id); }
    std::vector<boost::json::object>& list(std::string_view name) {
        auto it = collections.find(name);
        if (it == collections.end())
            it = collections.emplace(std::string(name), std::vector<boost::json::object>{}).first;
        return it->second;
    }
    boost::json::object* find(std::string_view collection, std::string_view id_field, std::string_view id) {
        for (auto& o : list(collection)) {
            if (const auto* v = o.if_contains(id_field); v != nullptr && v->is_string() && v->get_string() == id)
                return &o;
        }
        return nullptr;
    }
    bool erase(std::string_view collection, std::string_view id_field, std::string_view id) {
        auto& l = list(collection);
        const auto it = std::find_if(l.begin(), l.end(), [&](const boost::json::object& o) {
            const auto* v = o.if_contains(id_field);
            return v != nullptr && v->is_string() && v->get_string() == id;
        });
        if (it == l.end()) return false;
        l.erase(it);
        return true;
    }
};

/// What a behaviour answers: data, or an error status with the spec's message.
struct outcome {
    int status = 200;
    boost::json::object data{};
    std::string message{};
    static outcome ok(boost::json::object d) { return {200, std::move(d), {}}; }
    static outcome not_found(std::string what) { return {404, {}, std::move(what) + " not found"}; }
};

inline std::string now_text() {
    return timestamp::format(std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()));
}

/// A page of `items` as list endpoints answer it (spec §2).
inline boost::json::object page_of(std::string_view key, const std::vector<boost::json::object>& items,
                                   std::optional<std::int64_t> page, std::optional<std::int64_t> per_page) {
    const std::int64_t p = page.value_or(1);
    const std::int64_t pp = per_page.value_or(20);
    const auto total = static_cast<std::int64_t>(items.size());
    boost::json::array out;
    for (std::int64_t i = (p - 1) * pp; i < total && i < p * pp; ++i) out.push_back(items[static_cast<std::size_t>(i)]);
    boost::json::object data;
    data[key] = std::move(out);
    data["pagination"] = {{"page", p}, {"per_page", pp}, {"total", total}, {"total_pages", (total + pp - 1) / pp}};
    return data;
}

template <class T>
bool field_matches(const boost::json::object& o, std::string_view name, const std::optional<T>& filter) {
    if (!filter) return true;
    const auto* v = o.if_contains(name);
    if (v == nullptr || !v->is_string()) return false;
    if constexpr (std::is_same_v<T, std::string>) return v->get_string() == *filter;
    else
        return v->get_string() == filter->str();
}

/// from_date / to_date (YYYY-MM-DD, both ends included) against the date part of a timestamp member; an
/// item without that member matches only when no date filter is given.
inline bool in_dates(const boost::json::object& o, std::string_view name, const std::optional<std::string>& from,
                     const std::optional<std::string>& to) {
    if (!from && !to) return true;
    const auto* v = o.if_contains(name);
    if (v == nullptr || !v->is_string()) return false;
    const std::string_view day = std::string_view(v->get_string()).substr(0, 10);
    return (!from || day >= *from) && (!to || day <= *to);
}

inline std::vector<boost::json::object> where(const std::vector<boost::json::object>& items,
                                              const std::function<bool(const boost::json::object&)>& keep) {
    std::vector<boost::json::object> out;
    for (const auto& o : items)
        if (keep(o)) out.push_back(o);
    return out;
}

template <class T>
void set_if(boost::json::object& o, std::string_view key, const std::optional<T>& v) {
    if (!v) return;
    if constexpr (std::is_same_v<T, std::string>) o[key] = *v;
    else
        o[key] = v->str(); // an open enum
}

/// Seeds the read-mostly collections so that list and get endpoints have something to return.
inline void seed(mock_store& s) {
    s.list("departments") = {{{"department_id", "D1"}, {"name", "Support"}, {"description", "Customer support"}},
                             {{"department_id", "D2"}, {"name", "Sales"}, {"description", "New business"}}};
    s.list("categories") = {{{"category_id", "C1"}, {"name", "Billing"}, {"department_id", "D1"}},
                            {{"category_id", "C2"}, {"name", "Technical"}, {"department_id", "D1"}},
                            {{"category_id", "C3"}, {"name", "Quotes"}, {"department_id", "D2"}}};
    s.list("users") = {{{"user_id", "U1"},
                        {"name", "Ada Admin"},
                        {"email", "ada@example.com"},
                        {"role", "admin"},
                        {"department_id", "D1"},
                        {"status", "active"}},
                       {{"user_id", "U2"},
                        {"name", "Alan Agent"},
                        {"email", "alan@example.com"},
                        {"role", "agent"},
                        {"department_id", "D2"},
                        {"status", "active"}}};
    s.list("calls") = {{{"call_id", "CALL1"},
                        {"direction", "Incoming"},
                        {"caller_number", "+2348012345678"},
                        {"department_id", "D1"},
                        {"status", "finished"},
                        {"duration", 65},
                        {"recording_url", "https://recordings.example/CALL1.mp3"},
                        {"started_at", "2026-11-24T09:00:00Z"}}};
    s.list("languages") = {
        {{"code", "en-US"},
         {"name", "English (US)"},
         {"voices", boost::json::array{{{"voice_id", "en-US-1"}, {"name", "Joanna"}, {"gender", "female"}},
                                       {{"voice_id", "en-US-2"}, {"name", "Matthew"}, {"gender", "male"}}}}},
        {{"code", "fr-FR"},
         {"name", "French"},
         {"voices", boost::json::array{{{"voice_id", "fr-FR-1"}, {"name", "Celine"}, {"gender", "female"}}}}}};
    s.list("chats") = {{{"chat_id", "CH1"},
                        {"visitor_name", "Vera"},
                        {"visitor_email", "vera@example.com"},
                        {"status", "open"},
                        {"channel", "web"},
                        {"started_at", "2026-11-24T10:00:00Z"}}};
    s.messages["CH1"] = {
        {{"message_id", "M1"}, {"sender", "visitor"}, {"body", "Hello"}, {"created_at", "2026-11-24T10:00:01Z"}}};
    s.list("conversations") = {{{"conversation_id", "S1"},
                                {"platform", "whatsapp"},
                                {"contact_name", "Sam"},
                                {"last_message", "Thanks!"},
                                {"updated_at", "2026-11-24T11:00:00Z"}}};
    s.messages["S1"] = {
        {{"message_id", "M2"}, {"sender", "Sam"}, {"body", "Thanks!"}, {"created_at", "2026-11-24T11:00:00Z"}}};
    s.list("groups") = {{{"group_id", "G1"}, {"name", "Customers"}, {"contact_count", 0}}};
}

/// One behaviour per endpoint of the catalog. A catalog endpoint without one does not compile.
template <class E>
struct behaviour;

#define CALLSAVVY_MOCK_BEHAVIOUR(name)                                                                                 \
    template <>                                                                                                        \
    struct behaviour<api::name> {                                                                                      \
        static outcome handle(mock_store& s, const api::name##_request& r);                                            \
    };                                                                                                                 \
    inline outcome behaviour<api::name>::handle([[maybe_unused]] mock_store& s,                                        \
                                                [[maybe_unused]] const api::name##_request& r)

CALLSAVVY_MOCK_BEHAVIOUR(get_summary) {
    return outcome::ok({{"assigned_number", "+2348000000000"},
                        {"business_id", "B-1"},
                        {"business_name", "Mock Business"},
                        {"plan", "sandbox"},
                        {"balance", "100.00"}});
}
CALLSAVVY_MOCK_BEHAVIOUR(list_departments) {
    return outcome::ok(page_of("departments", s.list("departments"), r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(list_request_categories) {
    auto items =
        where(s.list("categories"), [&](const auto& o) { return field_matches(o, "department_id", r.department_id); });
    return outcome::ok(page_of("categories", items, r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(list_users) {
    auto items = where(s.list("users"), [&](const auto& o) { return field_matches(o, "role", r.role); });
    return outcome::ok(page_of("users", items, r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(list_tickets) {
    auto items = where(s.list("tickets"), [&](const auto& o) {
        return field_matches(o, "status", r.status) && field_matches(o, "department_id", r.department_id) &&
               in_dates(o, "created_at", r.from_date, r.to_date);
    });
    return outcome::ok(page_of("tickets", items, r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(get_ticket_conversation) {
    const auto* t = s.find("tickets", "ticket_id", r.ticket_id);
    if (t == nullptr) return outcome::not_found("Ticket");
    boost::json::array msgs;
    for (const auto& m : s.messages[r.ticket_id]) msgs.push_back(m);
    return outcome::ok({{"ticket", *t}, {"messages", std::move(msgs)}});
}
CALLSAVVY_MOCK_BEHAVIOUR(create_ticket) {
    const std::string id = s.new_id("T");
    const std::string now = now_text();
    boost::json::object t{{"ticket_id", id},
                          {"subject", r.subject},
                          {"status", "open"},
                          {"priority", r.priority ? r.priority->str() : "normal"},
                          {"sender_email", r.sender_email},
                          {"created_at", now},
                          {"updated_at", now}};
    set_if(t, "department_id", r.department_id);
    set_if(t, "category_id", r.category_id);
    s.list("tickets").push_back(t);
    s.messages[id].push_back({{"message_id", s.new_id("M")},
                              {"sender", r.sender_name.value_or(r.sender_email)},
                              {"sender_email", r.sender_email},
                              {"body", r.message},
                              {"created_at", now}});
    return outcome::ok({{"ticket_id", id}, {"status", "open"}});
}
CALLSAVVY_MOCK_BEHAVIOUR(add_ticket_reply) {
    auto* t = s.find("tickets", "ticket_id", r.ticket_id);
    if (t == nullptr) return outcome::not_found("Ticket");
    const std::string mid = s.new_id("M");
    (*t)["updated_at"] = now_text();
    s.messages[r.ticket_id].push_back({{"message_id", mid},
                                       {"sender", r.user_id.value_or("agent")},
                                       {"body", r.message},
                                       {"created_at", now_text()}});
    return outcome::ok({{"ticket_id", r.ticket_id}, {"message_id", mid}});
}
CALLSAVVY_MOCK_BEHAVIOUR(list_calls) {
    auto items = where(s.list("calls"), [&](const auto& o) {
        return field_matches(o, "direction", r.direction) && field_matches(o, "department_id", r.department_id) &&
               in_dates(o, "started_at", r.from_date, r.to_date);
    });
    return outcome::ok(page_of("calls", items, r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(view_call) {
    const auto* c = s.find("calls", "call_id", r.call_id);
    if (c == nullptr) return outcome::not_found("Call");
    return outcome::ok({{"call", *c}});
}
CALLSAVVY_MOCK_BEHAVIOUR(create_auto_dialer_task) {
    const std::string id = s.new_id("TASK");
    s.list("dialer_tasks").push_back({{"task_id", id}, {"name", r.name}, {"queued", r.numbers.size()}});
    return outcome::ok({{"task_id", id}, {"queued", r.numbers.size()}});
}
CALLSAVVY_MOCK_BEHAVIOUR(create_automated_call) {
    const std::string id = s.new_id("CALL");
    s.list("calls").push_back({{"call_id", id},
                               {"direction", "Outgoing"},
                               {"caller_number", r.phone_number},
                               {"status", "queued"},
                               {"duration", 0},
                               {"started_at", now_text()}});
    return outcome::ok({{"call_id", id}, {"status", "queued"}});
}
CALLSAVVY_MOCK_BEHAVIOUR(list_tts_voices) {
    boost::json::array langs;
    for (const auto& l : s.list("languages")) langs.push_back(l);
    return outcome::ok({{"languages", std::move(langs)}});
}
CALLSAVVY_MOCK_BEHAVIOUR(list_chats) {
    auto items = where(s.list("chats"), [&](const auto& o) { return field_matches(o, "status", r.status); });
    return outcome::ok(page_of("chats", items, r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(get_chat_conversation) {
    const auto* c = s.find("chats", "chat_id", r.chat_id);
    if (c == nullptr) return outcome::not_found("Chat");
    boost::json::array msgs;
    for (const auto& m : s.messages[r.chat_id]) msgs.push_back(m);
    return outcome::ok({{"chat", *c}, {"messages", std::move(msgs)}});
}
CALLSAVVY_MOCK_BEHAVIOUR(list_social) {
    auto items =
        where(s.list("conversations"), [&](const auto& o) { return field_matches(o, "platform", r.platform); });
    return outcome::ok(page_of("conversations", items, r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(get_social_conversation) {
    const auto* c = s.find("conversations", "conversation_id", r.conversation_id);
    if (c == nullptr) return outcome::not_found("Conversation");
    boost::json::array msgs;
    for (const auto& m : s.messages[r.conversation_id]) msgs.push_back(m);
    return outcome::ok({{"conversation", *c}, {"messages", std::move(msgs)}});
}

inline outcome campaign(mock_store& s, std::string_view channel, std::size_t recipients) {
    const std::string id = s.new_id("CMP");
    s.list("campaigns").push_back({{"campaign_id", id}, {"channel", channel}, {"queued", recipients}});
    return outcome::ok({{"campaign_id", id}, {"queued", recipients}});
}
CALLSAVVY_MOCK_BEHAVIOUR(send_sms) { return campaign(s, "sms", r.recipients.size()); }
CALLSAVVY_MOCK_BEHAVIOUR(send_voice_message) { return campaign(s, "voice", r.recipients.size()); }
CALLSAVVY_MOCK_BEHAVIOUR(send_whatsapp) { return campaign(s, "whatsapp", r.recipients.size()); }

CALLSAVVY_MOCK_BEHAVIOUR(list_video_calls) {
    return outcome::ok(page_of("video_calls", s.list("video_calls"), r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(get_video_call) {
    const auto* v = s.find("video_calls", "video_call_id", r.video_call_id);
    if (v == nullptr) return outcome::not_found("Video call");
    return outcome::ok({{"video_call", *v}});
}
CALLSAVVY_MOCK_BEHAVIOUR(create_video_call) {
    const std::string id = s.new_id("VC");
    const std::string url = "https://meet.example/v/" + id;
    boost::json::object v{{"video_call_id", id}, {"title", r.title}, {"status", "scheduled"}, {"join_url", url}};
    if (r.scheduled_at) v["scheduled_at"] = r.scheduled_at->str();
    if (r.participants) v["participants"] = json_mapping::encode(*r.participants);
    s.list("video_calls").push_back(std::move(v));
    return outcome::ok({{"video_call_id", id}, {"join_url", url}});
}
CALLSAVVY_MOCK_BEHAVIOUR(list_virtual_meetings) {
    return outcome::ok(page_of("meetings", s.list("meetings"), r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(get_virtual_meeting) {
    const auto* m = s.find("meetings", "meeting_id", r.meeting_id);
    if (m == nullptr) return outcome::not_found("Meeting");
    return outcome::ok({{"meeting", *m}});
}
CALLSAVVY_MOCK_BEHAVIOUR(create_virtual_meeting) {
    const std::string id = s.new_id("MT");
    const std::string url = "https://meet.example/m/" + id;
    boost::json::object m{{"meeting_id", id},
                          {"title", r.title},
                          {"start_at", r.start_at.str()},
                          {"duration", r.duration.value_or(30)},
                          {"join_url", url}};
    if (r.attendees) m["attendees"] = json_mapping::encode(*r.attendees);
    s.list("meetings").push_back(std::move(m));
    return outcome::ok({{"meeting_id", id}, {"join_url", url}});
}
CALLSAVVY_MOCK_BEHAVIOUR(list_contacts) {
    auto items = where(s.list("contacts"), [&](const boost::json::object& o) {
        if (!field_matches(o, "group_id", r.group_id)) return false;
        if (!r.search || r.search->empty()) return true;
        for (const char* k : {"first_name", "last_name", "phone", "email"}) {
            const auto* v = o.if_contains(k);
            if (v != nullptr && v->is_string() &&
                std::string_view(v->get_string()).find(*r.search) != std::string_view::npos)
                return true;
        }
        return false;
    });
    return outcome::ok(page_of("contacts", items, r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(list_contact_groups) {
    auto& groups = s.list("groups");
    for (auto& g : groups) { // contact_count is derived from the contacts stored
        const auto id = g.at("group_id").as_string();
        g["contact_count"] = std::count_if(s.list("contacts").begin(), s.list("contacts").end(), [&](const auto& c) {
            const auto* v = c.if_contains("group_id");
            return v != nullptr && v->is_string() && v->get_string() == id;
        });
    }
    return outcome::ok(page_of("groups", groups, r.page, r.per_page));
}
inline std::string store_contact(mock_store& s, const api::create_contact_request& r,
                                 const std::optional<std::string>& group) {
    std::string id = s.new_id("CT"); // not const: returned by move
    boost::json::object c = to_json(r);
    c["contact_id"] = id;
    if (!r.group_id && group) c["group_id"] = *group;
    c["created_at"] = now_text();
    s.list("contacts").push_back(std::move(c));
    return id;
}
CALLSAVVY_MOCK_BEHAVIOUR(create_contact) { return outcome::ok({{"contact_id", store_contact(s, r, std::nullopt)}}); }
/// An E.164 number as the spec writes them (§2): '+', then up to 15 digits, the first not 0.
inline bool is_e164(std::string_view phone) {
    if (phone.size() < 3 || phone.size() > 16 || phone[0] != '+' || phone[1] == '0') return false;
    return std::all_of(phone.begin() + 1, phone.end(), [](char c) { return c >= '0' && c <= '9'; });
}
// A row the server cannot use fails alone, named by its index in the request, and the others are created
// (their ids in row order).
CALLSAVVY_MOCK_BEHAVIOUR(create_bulk_contact) {
    boost::json::array ids;
    boost::json::array failed;
    for (std::size_t i = 0; i < r.contacts.size(); ++i) {
        const auto& c = r.contacts[i];
        if (!is_e164(c.phone)) {
            failed.push_back({{"index", static_cast<std::int64_t>(i)}, {"message", "Invalid parameter: phone"}});
            continue;
        }
        ids.push_back(boost::json::value(store_contact(s, c, r.group_id)));
    }
    const auto created = static_cast<std::int64_t>(ids.size());
    return outcome::ok({{"created", created}, {"contact_ids", std::move(ids)}, {"failed", std::move(failed)}});
}
CALLSAVVY_MOCK_BEHAVIOUR(delete_contact) {
    if (!s.erase("contacts", "contact_id", r.contact_id)) return outcome::not_found("Contact");
    return outcome::ok({{"contact_id", r.contact_id}, {"deleted", true}});
}
CALLSAVVY_MOCK_BEHAVIOUR(list_leads) {
    auto items = where(s.list("leads"), [&](const auto& o) { return field_matches(o, "status", r.status); });
    return outcome::ok(page_of("leads", items, r.page, r.per_page));
}
CALLSAVVY_MOCK_BEHAVIOUR(create_lead) {
    const std::string id = s.new_id("L");
    boost::json::object l = to_json(r);
    l["lead_id"] = id;
    if (!r.status) l["status"] = "new";
    l["created_at"] = now_text();
    s.list("leads").push_back(std::move(l));
    return outcome::ok({{"lead_id", id}});
}
CALLSAVVY_MOCK_BEHAVIOUR(update_lead) {
    auto* l = s.find("leads", "lead_id", r.lead_id);
    if (l == nullptr) return outcome::not_found("Lead");
    set_if(*l, "name", r.name);
    set_if(*l, "phone", r.phone);
    set_if(*l, "email", r.email);
    set_if(*l, "status", r.status);
    set_if(*l, "notes", r.notes);
    return outcome::ok({{"lead_id", r.lead_id}, {"status", l->at("status")}});
}
CALLSAVVY_MOCK_BEHAVIOUR(delete_lead) {
    if (!s.erase("leads", "lead_id", r.lead_id)) return outcome::not_found("Lead");
    return outcome::ok({{"lead_id", r.lead_id}, {"deleted", true}});
}
#undef CALLSAVVY_MOCK_BEHAVIOUR

/// A route: checks the JSON with the catalog's rules, then runs the endpoint's behaviour.
using route = std::function<outcome(mock_store&, const boost::json::object&)>;

template <class E>
route make_route() {
    return [](mock_store& s, const boost::json::object& body) {
        typename E::request req{};
        if (auto v = api::check_json_request<E>(body, &req)) return outcome{400, {}, v->message()};
        return behaviour<E>::handle(s, req);
    };
}

/// Request counts per key for the documented limits, in fixed or sliding windows.
class rate_counter {
public:
    using clock = std::chrono::steady_clock;

    explicit rate_counter(const mock_rate_limits& l) : limits_(l), epoch_(clock::now()) {
        if (l.enabled && l.window <= std::chrono::milliseconds::zero())
            throw std::invalid_argument("mock_rate_limits.window must be positive (got " +
                                        std::to_string(l.window.count()) + " ms)");
    }

    /// Counts one request if both limits allow it; otherwise returns how long until one would.
    std::optional<std::chrono::milliseconds> admit(const std::string& key, const std::string& resource,
                                                   clock::time_point now) {
        auto& global = log_[key];
        auto& endpoint = log_[key + '\n' + resource];
        const auto wait =
            std::max(wait_for(global, limits_.global, now), wait_for(endpoint, limits_.per_endpoint, now));
        if (wait.count() > 0) return wait;
        global.push_back(now);
        endpoint.push_back(now);
        return std::nullopt;
    }

    /// Records `n` requests as if another process had made them just now.
    void consume(const std::string& key, const std::string& resource, std::size_t n, clock::time_point now) {
        auto& global = log_[key];
        auto& endpoint = log_[key + '\n' + resource];
        for (std::size_t i = 0; i < n; ++i) {
            global.push_back(now);
            endpoint.push_back(now);
        }
    }

private:
    std::chrono::milliseconds wait_for(std::deque<clock::time_point>& log, std::size_t limit, clock::time_point now) {
        const auto w = limits_.window;
        if (limit == 0) return w; // a limit of 0 answers every request with 429
        if (limits_.mode == window_mode::fixed) {
            const auto start = epoch_ + w * ((now - epoch_) / w);
            while (!log.empty() && log.front() < start) log.pop_front();
            if (log.size() < limit) return std::chrono::milliseconds{0};
            return std::chrono::ceil<std::chrono::milliseconds>(start + w - now);
        }
        while (!log.empty() && log.front() <= now - w) log.pop_front();
        if (log.size() < limit) return std::chrono::milliseconds{0};
        return std::chrono::ceil<std::chrono::milliseconds>(log[log.size() - limit] + w - now);
    }

    mock_rate_limits limits_;
    clock::time_point epoch_;
    std::unordered_map<std::string, std::deque<clock::time_point>> log_;
};

} // namespace detail

/// The mock Callsavvy server. Runs on the given executor (single-threaded use, like the client).
class mock_server {
public:
    mock_server(asio::any_io_executor ex, mock_options o = {})
        : opts_(std::move(o)), sources_(parse_sources(opts_.allowed_sources)), rates_(opts_.rate_limits),
          rng_(opts_.seed),
          server_(
              ex, opts_.server, [this](server_request& r) { return handle(r); },
              [this](int status, std::string_view reason) { return protocol_error(status, reason); }) {
        detail::seed(store_);
#define CALLSAVVY_MOCK_ROUTE(name) routes_.emplace(std::string(api::name::resource), detail::make_route<api::name>());
        CALLSAVVY_API_ENDPOINTS(CALLSAVVY_MOCK_ROUTE)
#undef CALLSAVVY_MOCK_ROUTE
        server_.set_accept_filter([this](const asio::ip::tcp::endpoint&) {
            if (close_at_accept_ == 0) return true;
            --close_at_accept_;
            return false;
        });
    }

    std::uint16_t port() const noexcept { return server_.port(); }
    /// The base URL a client uses: https://localhost:PORT/v1/ with TLS (the name test certificates carry).
    std::string base_url() const {
        const bool v6 = opts_.server.address.find(':') != std::string::npos;
        const std::string host = v6 ? "[" + opts_.server.address + "]"
                                 : server_.is_tls() && opts_.server.address == "127.0.0.1" ? std::string("localhost")
                                                                                           : opts_.server.address;
        return (server_.is_tls() ? "https://" : "http://") + host + ":" + std::to_string(port()) + opts_.path_prefix;
    }
    void stop() { server_.stop(); }

    void add_key(api_key k) { opts_.keys.push_back(std::move(k)); }
    /// Replaces the allow-list (see mock_options::allowed_sources); only the parsed set is read after
    /// construction.
    void allow_sources(const std::vector<std::string>& ranges) { sources_ = parse_sources(ranges); }

    /// Uses up `n` slots of `public_key`'s limits for `resource` (and the global one), as another process
    /// sharing the key would.
    void consume(const std::string& public_key, const std::string& resource, std::size_t n = 1) {
        rates_.consume(public_key, resource, n, std::chrono::steady_clock::now());
    }

    /// Injects a fault on the next matching requests.
    void inject(fault f) { faults_.inject(std::move(f)); }
    /// Closes the next `n` connections as soon as they are accepted, before reading anything.
    void close_next_connections(std::size_t n) { close_at_accept_ += n; }
    /// Answers each request to `resource` (empty: any) with `status` with this probability, from the seed.
    void fail_randomly(double probability, int status, std::string resource = {}) {
        random_fault_ = random_failure{probability, status, std::move(resource)};
    }

    /// The latest mock_options::journal_capacity requests, oldest first.
    const std::deque<journal_entry>& journal() const noexcept { return journal_; }
    /// Entries the journal dropped to stay within its capacity.
    std::uint64_t journal_dropped() const noexcept { return journal_dropped_; }
    std::size_t count(std::string_view resource) const {
        return static_cast<std::size_t>(std::count_if(journal_.begin(), journal_.end(),
                                                      [&](const journal_entry& e) { return e.resource == resource; }));
    }
    void clear_journal() {
        journal_base_ += journal_.size();
        journal_.clear();
    }
    std::uint64_t connections_accepted() const noexcept { return server_.connections_accepted(); }
    std::size_t open_connections() const { return server_.open_connections(); }

    /// The stored objects of a collection ("tickets", "contacts", "leads", ...), for tests to inspect.
    const std::vector<boost::json::object>& collection(std::string_view name) { return store_.list(name); }

private:
    struct random_failure {
        double probability = 0;
        int status = 500;
        std::string resource{};
    };
    static constexpr std::uint64_t not_journaled = ~std::uint64_t{0};

    /// Appends to the journal; returns the entry's number for set_status (not_journaled without a journal).
    std::uint64_t record(journal_entry e) {
        if (!opts_.keep_journal) return not_journaled;
        journal_.push_back(std::move(e));
        const std::uint64_t number = journal_base_ + journal_.size() - 1;
        if (journal_.size() > opts_.journal_capacity) {
            journal_.pop_front();
            ++journal_base_;
            ++journal_dropped_;
        }
        return number;
    }

    /// Sets the status of entry `number`, unless it was dropped or cleared meanwhile.
    void set_status(std::uint64_t number, int status) {
        if (number < journal_base_ || number - journal_base_ >= journal_.size()) return;
        journal_[static_cast<std::size_t>(number - journal_base_)].status = status;
    }

    http::response envelope_response(int status, std::string body,
                                     std::optional<std::chrono::milliseconds> retry = {}) {
        http::response r;
        r.status = status;
        r.reason = std::string(http::reason_phrase(status));
        r.headers.add("Content-Type", "application/json");
        if (retry && (status != 429 || opts_.rate_limits.send_retry_after))
            r.headers.add("Retry-After", std::to_string((retry->count() + 999) / 1000));
        r.body = std::move(body);
        return r;
    }

    /// The answer the server itself gives (malformed, too large, too slow, overloaded, a handler that threw).
    http::response protocol_error(int status, std::string_view reason) {
        const std::string message = status == 413   ? "Request body too large"
                                    : status == 408 ? "Request timeout"
                                    : status == 431 ? "Request headers too large"
                                    : status == 503 ? "Server overloaded"
                                    : status == 500 ? "Server error"
                                                    : "Malformed request: " + std::string(reason);
        record({std::chrono::steady_clock::now(), {}, {}, {}, status, 0});
        return envelope_response(status, make_error_envelope("", message));
    }

    /// One request's answer: the journal entry `entry` gets its status.
    struct answering {
        mock_server& self;
        const std::string& resource;
        std::uint64_t entry;

        server_reply operator()(int status, std::string body,
                                std::optional<std::chrono::milliseconds> retry = {}) const {
            self.set_status(entry, status);
            server_reply reply;
            reply.response = self.envelope_response(status, std::move(body), retry);
            return reply;
        }
        server_reply error(int status, std::string_view message,
                           std::optional<std::chrono::milliseconds> retry = {}) const {
            return (*this)(status, make_error_envelope(resource, message), retry);
        }
    };

    /// Method, keys, allowed sources, route and rate limits, in the order the service checks them (spec §1);
    /// an answer when the request does not get through.
    std::optional<server_reply> admit(const server_request& req, const answering& answer, const std::string& key,
                                      std::chrono::steady_clock::time_point now) {
        const http::request& m = req.message;
        if (m.method != "POST") return answer.error(405, "Method not allowed");
        const std::string priv(m.headers.find("Private-Key").value_or(""));
        const bool authorized = std::any_of(opts_.keys.begin(), opts_.keys.end(), [&](const api_key& k) {
            return k.public_key == key && k.private_key == priv;
        });
        if (!authorized) return answer.error(401, "Invalid API credentials");
        if (!sources_.empty() && !sources_.contains(webhook::ip_address::from(req.remote.address())))
            return answer.error(403, "IP address not whitelisted");
        if (routes_.find(answer.resource) == routes_.end())
            return answer.error(404, "Unknown resource: " + answer.resource);
        if (opts_.rate_limits.enabled) {
            if (auto wait = rates_.admit(key, answer.resource, now))
                return answer.error(429, "Too many requests", wait);
        }
        return std::nullopt;
    }

    /// The endpoint's answer to an admitted request: random faults, the body's type and JSON, the behaviour.
    server_reply respond(const http::request& m, const answering& answer) {
        const std::string& resource = answer.resource;
        if (random_fault_.probability > 0 && (random_fault_.resource.empty() || random_fault_.resource == resource) &&
            std::uniform_real_distribution<double>(0, 1)(rng_) < random_fault_.probability)
            return answer.error(random_fault_.status, "Server error");
        // A body not declared as JSON is not read as JSON (spec §1: POST with Content-Type: application/json).
        // The spec names no 415, and a client treats every 400 alike, so it is answered as JSON that cannot be
        // parsed, with the reason added: 400 "Malformed JSON body: Content-Type must be application/json".
        if (!detail::is_json_media_type(m.headers.find("Content-Type")))
            return answer.error(400, "Malformed JSON body: Content-Type must be application/json");
        boost::system::error_code jec;
        const boost::json::value body = boost::json::parse(m.body, jec);
        if (jec || !body.is_object()) return answer.error(400, "Malformed JSON body");
        detail::outcome out = routes_.find(resource)->second(store_, body.get_object());
        if (out.status != 200) return answer.error(out.status, out.message);
        return answer(200, make_success_envelope(resource, out.data));
    }

    asio::awaitable<server_reply> handle(server_request& req) {
        const auto now = std::chrono::steady_clock::now();
        const http::request& m = req.message;
        std::string resource = m.target;
        if (resource.starts_with(opts_.path_prefix)) resource.erase(0, opts_.path_prefix.size());
        const std::string key(m.headers.find("Public-Key").value_or(""));
        const answering answer{*this, resource, record({now, resource, key, m.body, 0, req.connection_id})};
        if (auto refused = admit(req, answer, key, now)) co_return std::move(*refused);
        const std::optional<fault> f = faults_.take(resource);
        if (!f) co_return respond(m, answer);
        if (f->what == fault::kind::fail_with_status)
            co_return answer.error(f->status, f->status >= 500 ? "Server error" : "Injected failure", f->retry_after);
        // After this await only the frame is touched: a stop() that ends a delay or a stall may come from the
        // mock's destructor.
        const auto normal = [&] { return respond(m, answer); };
        co_return co_await fault_injector::apply(*f, normal);
    }

    static webhook::address_set parse_sources(const std::vector<std::string>& ranges) {
        std::string why;
        auto set = webhook::address_set::parse(ranges, why);
        if (!set) throw std::invalid_argument("mock_options::allowed_sources: " + why);
        return std::move(*set);
    }

    mock_options opts_;
    webhook::address_set sources_;
    detail::mock_store store_;
    detail::rate_counter rates_;
    std::unordered_map<std::string, detail::route> routes_;
    std::deque<journal_entry> journal_;
    std::uint64_t journal_base_ = 0; ///< the number of journal_.front()
    std::uint64_t journal_dropped_ = 0;
    fault_injector faults_;
    random_failure random_fault_;
    std::size_t close_at_accept_ = 0;
    std::mt19937_64 rng_;
    http_server server_; // last: stopped and destroyed before the state its handler uses
};

} // namespace testing
CALLSAVVY_END_NAMESPACE

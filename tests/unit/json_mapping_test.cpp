// The JSON mapping of the typed API (issue 4): requests leave without absent optionals and with their
// `extra` members; responses keep what the catalog does not know, tolerate what an evolving API may send
// (missing fields, numeric strings) and name the path of a field that is really wrong. Open enumerations
// keep unknown values; timestamps keep the server's text and parse only on request.
#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/json/mapping.hpp>
#include <callsavvy/types.hpp>

#include <boost/describe/class.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace api = callsavvy::api;
namespace json = boost::json;
using callsavvy::from_json;
using callsavvy::to_json;
using callsavvy::json_mapping::decode_error;

namespace mapping_test {

// a.b[3].c: a path through an optional object, a list and a field.
struct leaf {
    std::optional<std::int64_t> c{};
    std::optional<std::string> label{};
    json::object extra{};
};
BOOST_DESCRIBE_STRUCT(leaf, (), (c, label))
struct branch {
    std::vector<leaf> b{};
    json::object extra{};
};
BOOST_DESCRIBE_STRUCT(branch, (), (b))
struct root {
    std::optional<branch> a{};
    std::optional<bool> flag{};
    std::optional<double> ratio{};
    json::object extra{};
};
BOOST_DESCRIBE_STRUCT(root, (), (a, flag, ratio))

} // namespace mapping_test

namespace {

json::object obj(std::string_view text) { return json::parse(text).as_object(); }

// Decodes `text` into T as a client reads a response (lenient) or as a server checks a request (strict).
template <class T>
struct decoded {
    bool ok = false;
    T value{};
    decode_error err{};
};
template <class T>
decoded<T> decode(std::string_view text, bool strict = false) {
    decoded<T> d;
    d.err.strict_types = strict;
    d.ok = from_json(obj(text), d.value, d.err);
    return d;
}

} // namespace

// ---------------------------------------------------------------- encoding

TEST_CASE("encoding: absent optionals are omitted, required members always sent", "[json]") {
    api::create_ticket_request r{
        .subject = "Printer on fire", .message = "Send help", .sender_email = "ada@example.com"};
    CHECK(to_json(r) == obj(R"({"subject":"Printer on fire","message":"Send help","sender_email":"ada@example.com"})"));

    r.priority = "urgent";
    r.department_id = "D-1";
    CHECK(to_json(r) == obj(R"({"subject":"Printer on fire","message":"Send help","sender_email":"ada@example.com",
                                "department_id":"D-1","priority":"urgent"})"));

    // An empty required string is still sent (validation, not the mapping, decides whether it may be).
    CHECK(to_json(api::add_ticket_reply_request{}) == obj(R"({"ticket_id":"","message":""})"));
    // A request of nothing but optionals is an empty object.
    CHECK(to_json(api::list_tickets_request{}).empty());
    CHECK(to_json(api::get_summary_request{}).empty());
}

TEST_CASE("encoding: extra members are appended as given", "[json]") {
    api::list_tickets_request r{.page = 2, .status = "open"};
    r.extra["assignee"] = "U-7";
    r.extra["labels"] = json::array{"vip", "billing"};
    r.extra["filters"] = obj(R"({"tags":{"any":["a","b"]},"limit":null})");
    CHECK(to_json(r) == obj(R"({"page":2,"status":"open","assignee":"U-7","labels":["vip","billing"],
                                "filters":{"tags":{"any":["a","b"]},"limit":null}})"));

    // Sent as given even when it names a catalog field: the escape hatch for a field the catalog got wrong.
    api::create_virtual_meeting_request m{.title = "Standup", .start_at = "2026-11-25T09:00:00Z", .duration = 15};
    m.extra["duration"] = "15m";
    CHECK(to_json(m).at("duration") == "15m");
}

TEST_CASE("encoding: nested requests, lists, integers, timestamps and open enumerations", "[json]") {
    api::create_bulk_contact_request bulk;
    bulk.contacts.push_back({.phone = "+2348012345678", .first_name = "Ada"});
    api::new_contact second{.phone = "+2348012345679", .custom_fields = obj(R"({"tier":"gold","score":7})")};
    second.extra["nickname"] = "Bo";
    bulk.contacts.push_back(std::move(second));
    bulk.group_id = "G-1";
    CHECK(to_json(bulk) == obj(R"({"contacts":[{"phone":"+2348012345678","first_name":"Ada"},
                                              {"phone":"+2348012345679","custom_fields":{"tier":"gold","score":7},
                                               "nickname":"Bo"}],
                                   "group_id":"G-1"})"));

    api::create_auto_dialer_task_request task{.name = "Renewals",
                                              .numbers = {"+2348012345678"},
                                              .message_type = "tts",
                                              .message = "Your plan renews tomorrow",
                                              .start_at = callsavvy::timestamp("2026-11-25T06:21:24Z")};
    CHECK(to_json(task) == obj(R"({"name":"Renewals","numbers":["+2348012345678"],"message_type":"tts",
                                   "message":"Your plan renews tomorrow","start_at":"2026-11-25T06:21:24Z"})"));

    api::create_virtual_meeting_request meeting{.title = "Standup",
                                                .start_at = "2026-11-25T09:00:00Z",
                                                .duration = 15,
                                                .attendees = std::vector<std::string>{}};
    // An integer is a JSON number; a present but empty optional list is sent as [].
    CHECK(to_json(meeting) ==
          obj(R"({"title":"Standup","start_at":"2026-11-25T09:00:00Z","duration":15,"attendees":[]})"));
}

// ---------------------------------------------------------------- decoding

TEST_CASE("decoding: typed fields are filled, missing and null fields stay empty", "[json]") {
    auto d = decode<api::list_tickets_response>(R"({
        "tickets": [{"ticket_id":"T-1","subject":"Hi","status":"open","priority":"high","created_at":"2026-11-25T06:21:24Z"},
                    {"ticket_id":"T-2","subject":null}],
        "pagination": {"page":1,"per_page":20,"total":2,"total_pages":1}})");
    REQUIRE(d.ok);
    REQUIRE(d.value.tickets.size() == 2);
    const auto& t1 = d.value.tickets[0];
    CHECK(t1.ticket_id == "T-1");
    CHECK(t1.subject == "Hi");
    CHECK(t1.status == "open");
    CHECK(t1.priority == "high");
    CHECK(t1.created_at == "2026-11-25T06:21:24Z");
    CHECK_FALSE(t1.updated_at);
    CHECK_FALSE(t1.department_id);
    const auto& t2 = d.value.tickets[1];
    CHECK(t2.ticket_id == "T-2");
    CHECK_FALSE(t2.subject); // null is absent
    CHECK_FALSE(t2.status);
    CHECK(t2.extra.empty());
    CHECK(d.value.pagination.total_pages == 1);

    // Nothing at all: every field empty, no error.
    auto empty = decode<api::get_ticket_conversation_response>("{}");
    REQUIRE(empty.ok);
    CHECK_FALSE(empty.value.ticket);
    CHECK(empty.value.messages.empty());
    CHECK(empty.value.extra.empty());
}

TEST_CASE("decoding: unknown fields are kept in extra, at every level", "[json]") {
    auto d = decode<api::list_tts_voices_response>(R"({
        "languages": [{"code":"en-US","name":"English","rtl":false,
                       "voices":[{"voice_id":"v1","name":"Ada","gender":"female","sample_rate":24000}]}],
        "default_language": "en-US",
        "limits": {"chars": 5000}})");
    REQUIRE(d.ok);
    CHECK(d.value.extra == obj(R"({"default_language":"en-US","limits":{"chars":5000}})"));
    REQUIRE(d.value.languages.size() == 1);
    const auto& lang = d.value.languages[0];
    CHECK(lang.extra == obj(R"({"rtl":false})"));
    REQUIRE(lang.voices);
    REQUIRE(lang.voices->size() == 1);
    CHECK((*lang.voices)[0].gender == "female");
    CHECK((*lang.voices)[0].extra == obj(R"({"sample_rate":24000})"));

    // An unknown field holding null is kept too (the server sent it); a known one holding null is just absent.
    auto n = decode<api::create_lead_response>(R"({"lead_id":null,"merged_into":null})");
    REQUIRE(n.ok);
    CHECK_FALSE(n.value.lead_id);
    CHECK(n.value.extra == obj(R"({"merged_into":null})"));
}

TEST_CASE("decoding: integers arrive as numbers or numeric strings (lenient), only as numbers (strict)", "[json]") {
    auto d = decode<api::list_calls_response>(R"({
        "calls":[{"call_id":"C-1","duration":"93"},{"call_id":"C-2","duration":41},{"call_id":"C-3","duration":12.0},
                 {"call_id":"C-4","duration":"-5"}],
        "pagination":{"page":"2","per_page":"20","total":"9007199254740993","total_pages":"1"}})");
    REQUIRE(d.ok);
    REQUIRE(d.value.calls.size() == 4);
    CHECK(d.value.calls[0].duration == 93);
    CHECK(d.value.calls[1].duration == 41);
    CHECK(d.value.calls[2].duration == 12);
    CHECK(d.value.calls[3].duration == -5);
    CHECK(d.value.pagination.page == 2);
    CHECK(d.value.pagination.total == 9007199254740993); // beyond a double's precision: parsed as text

    for (const char* bad : {R"("93s")", R"("")", R"(" 93")", R"("9.5")", "9.5", R"("0x10")", "18446744073709551615"}) {
        INFO("duration = " << bad);
        auto r = decode<api::view_call_response>(std::string(R"({"call":{"duration":)") + bad + "}}");
        CHECK_FALSE(r.ok);
        CHECK(r.err.path == "call.duration");
    }

    // Strict (a server checking a request): "2" is not a number.
    auto strict = decode<api::list_tickets_request>(R"({"page":"2"})", true);
    CHECK_FALSE(strict.ok);
    CHECK(strict.err.path == "page");
    CHECK(strict.err.reason == "expected an integer, got a string");
    CHECK(decode<api::list_tickets_request>(R"({"page":2})", true).ok);
}

TEST_CASE("decoding: text fields accept numbers (lenient), booleans accept their spellings (lenient)", "[json]") {
    auto d = decode<api::get_summary_response>(R"({"business_id":1042,"balance":12.5,"plan":"pro"})");
    REQUIRE(d.ok);
    CHECK(d.value.business_id == "1042");
    CHECK(d.value.balance == "12.5");
    CHECK(d.value.plan == "pro");

    for (const char* yes : {"true", R"("true")", R"("1")", "1"}) {
        INFO("deleted = " << yes);
        auto r = decode<api::delete_lead_response>(std::string(R"({"deleted":)") + yes + "}");
        REQUIRE(r.ok);
        CHECK(r.value.deleted == true);
    }
    for (const char* no : {"false", R"("false")", R"("0")", "0"}) {
        INFO("deleted = " << no);
        auto r = decode<api::delete_lead_response>(std::string(R"({"deleted":)") + no + "}");
        REQUIRE(r.ok);
        CHECK(r.value.deleted == false);
    }
    CHECK_FALSE(decode<api::delete_lead_response>(R"({"deleted":"yes"})").ok);
    CHECK_FALSE(decode<api::delete_lead_response>(R"({"deleted":2})").ok);

    // Strict: text is a string, a boolean a boolean.
    auto s = decode<api::create_ticket_request>(R"({"subject":42})", true);
    CHECK_FALSE(s.ok);
    CHECK(s.err.path == "subject");
    CHECK(s.err.reason == "expected a string, got a number");
    CHECK_FALSE(decode<mapping_test::root>(R"({"flag":"true"})", true).ok);
    CHECK(decode<mapping_test::root>(R"({"flag":true})", true).ok);
}

TEST_CASE("decoding: a present value of the wrong type fails with the path of the field", "[json]") {
    auto d = decode<mapping_test::root>(R"({"a":{"b":[{"c":1},{"c":"2"},{"label":"x"},{"c":{"n":3}}]}})");
    CHECK_FALSE(d.ok);
    CHECK(d.err.path == "a.b[3].c");
    CHECK(d.err.reason == "expected an integer, got an object");
    CHECK(d.err.message() == "field a.b[3].c: expected an integer, got an object");

    struct expectation {
        const char* data;
        const char* path;
        const char* reason;
    };
    const expectation cases[] = {
        {R"({"a":[]})", "a", "expected an object, got an array"},
        {R"({"a":{"b":{}}})", "a.b", "expected an array, got an object"},
        {R"({"a":{"b":[7]}})", "a.b[0]", "expected an object, got a number"},
        {R"({"a":{"b":[{"label":["x"]}]}})", "a.b[0].label", "expected a string, got an array"},
        {R"({"flag":"maybe"})", "flag", "expected a boolean, got a string"},
        {R"({"ratio":"fast"})", "ratio", "expected a number, got a string"},
    };
    for (const auto& c : cases) {
        INFO(c.data);
        auto r = decode<mapping_test::root>(c.data);
        CHECK_FALSE(r.ok);
        CHECK(r.err.path == c.path);
        CHECK(r.err.reason == c.reason);
    }

    // The same through the catalog's types.
    auto calls = decode<api::list_calls_response>(R"({"calls":[{"duration":1},{"duration":{"s":2}}]})");
    CHECK_FALSE(calls.ok);
    CHECK(calls.err.path == "calls[1].duration");
    auto voices = decode<api::list_tts_voices_response>(R"({"languages":[{"voices":[{},{"gender":[]}]}]})");
    CHECK_FALSE(voices.ok);
    CHECK(voices.err.path == "languages[0].voices[1].gender");
    auto conv = decode<api::get_ticket_conversation_response>(R"({"messages":[{"attachments":["a",{"url":"b"}]}]})");
    CHECK_FALSE(conv.ok);
    CHECK(conv.err.path == "messages[0].attachments[1]");
    auto ticket = decode<api::get_ticket_conversation_response>(R"({"ticket":{"created_at":{"t":1}}})");
    CHECK_FALSE(ticket.ok);
    CHECK(ticket.err.path == "ticket.created_at");
    auto custom = decode<api::list_contacts_response>(R"({"contacts":[{"custom_fields":"none"}]})");
    CHECK_FALSE(custom.ok);
    CHECK(custom.err.path == "contacts[0].custom_fields");
}

TEST_CASE("decoding: floating-point members accept numbers and numeric strings; empty lists stay empty", "[json]") {
    auto d = decode<mapping_test::root>(R"({"ratio":"0.25","flag":true,"a":{"b":[]}})");
    REQUIRE(d.ok);
    CHECK(d.value.ratio == 0.25);
    CHECK(d.value.flag == true);
    REQUIRE(d.value.a);
    CHECK(d.value.a->b.empty());
}

// ---------------------------------------------------------------- value types

TEST_CASE("open_enum keeps values the spec does not list", "[json][types]") {
    auto d = decode<api::list_tickets_response>(R"({"tickets":[{"status":"open"},{"status":"escalated"}]})");
    REQUIRE(d.ok);
    REQUIRE(d.value.tickets.size() == 2);
    const auto& known = *d.value.tickets[0].status;
    const auto& unknown = *d.value.tickets[1].status;
    CHECK(known.is_known());
    CHECK(known == "open");
    CHECK_FALSE(unknown.is_known());
    CHECK(unknown.str() == "escalated");
    CHECK(unknown == "escalated");
    CHECK(unknown != "open");
    for (std::string_view v : api::ticket_status::known_values()) CHECK(unknown != v);

    // Case matters: "incoming" is not the documented "Incoming".
    CHECK(api::call_direction("Incoming").is_known());
    CHECK_FALSE(api::call_direction("incoming").is_known());
    CHECK_FALSE(api::priority().is_known());
    CHECK(api::priority().empty());
    // An unknown value goes back out as it came in.
    api::list_tickets_request r{.status = unknown};
    CHECK(to_json(r) == obj(R"({"status":"escalated"})"));
}

TEST_CASE("timestamp keeps the server's text; to_time() parses the documented form only", "[json][types]") {
    using namespace std::chrono;
    const callsavvy::timestamp t("2026-11-25T06:21:24Z");
    CHECK(t.str() == "2026-11-25T06:21:24Z");
    const auto expected = sys_days{year{2026} / November / 25} + hours{6} + minutes{21} + seconds{24};
    CHECK(t.to_time() == expected);
    CHECK(t.to_time()->time_since_epoch().count() == 1795587684);
    CHECK(callsavvy::timestamp("2026-11-25T06:21:24.123Z").to_time() == expected); // fraction dropped
    CHECK(callsavvy::timestamp(expected).str() == "2026-11-25T06:21:24Z");

    for (const char* junk :
         {"", "yesterday", "2026-11-25", "2026-11-25T06:21:24", "2026-11-25 06:21:24Z", "2026-11-25T06:21:24+01:00",
          "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T06:61:00Z",
          "2026-1x-25T06:21:24Z", "2026-11-25T06:21:24ZZ", "2026-11-25T06:21:24.Zx"}) {
        INFO("timestamp \"" << junk << "\"");
        const callsavvy::timestamp j(junk);
        CHECK_FALSE(j.to_time());
        CHECK(j.str() == junk); // kept as sent
    }

    // A response keeps whatever text arrived, parseable or not.
    auto d = decode<api::list_leads_response>(
        R"({"leads":[{"created_at":"2026-11-25T06:21:24Z"},{"created_at":"last week"}]})");
    REQUIRE(d.ok);
    CHECK(d.value.leads[0].created_at->to_time() == expected);
    CHECK(d.value.leads[1].created_at == "last week");
    CHECK_FALSE(d.value.leads[1].created_at->to_time());
}

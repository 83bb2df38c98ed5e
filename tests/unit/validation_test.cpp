// Every validation rule of spec §2–§3, as the catalog states it: through api::check_all over each endpoint's
// rules (what the client checks before sending) and through api::check_json_request (what a server, the
// mock, checks on the JSON it receives). Messages are the spec's: "Missing required parameter: <name>" and
// "Invalid parameter: <name>". The client side of it (nothing sent, validation_failed) is in
// tests/net/endpoints_test.cpp.
#include <callsavvy/api/catalog.hpp>
#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/api/rules.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace api = callsavvy::api;
namespace json = boost::json;

namespace {

constexpr const char* ok = "ok";

std::string missing(std::string_view field) { return "Missing required parameter: " + std::string(field); }
std::string invalid(std::string_view field) { return "Invalid parameter: " + std::string(field); }

// The client's verdict on a typed request: "ok" or the spec's message for the first rule it breaks.
template <class E>
std::string verdict(const typename E::request& r) {
    const auto v = api::check_all<typename E::rules>(r);
    return v ? v->message() : ok;
}

// The server's verdict on a JSON body.
template <class E>
std::string json_verdict(std::string_view body) {
    const auto v = api::check_json_request<E>(json::parse(body).as_object());
    return v ? v->message() : ok;
}

std::vector<std::string> phones(std::size_t n) {
    std::vector<std::string> v;
    v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) v.push_back("+234801" + std::to_string(1000000 + i));
    return v;
}

std::string repeat(std::string_view s, std::size_t n) {
    std::string out;
    out.reserve(s.size() * n);
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

} // namespace

// ---------------------------------------------------------------- required fields

TEST_CASE("required fields: absent or empty is missing, named by the spec", "[validation]") {
    // Each endpoint's first required field, on an otherwise empty request.
    CHECK(verdict<api::get_ticket_conversation>({}) == missing("ticket_id"));
    CHECK(verdict<api::create_ticket>({}) == missing("subject"));
    CHECK(verdict<api::add_ticket_reply>({}) == missing("ticket_id"));
    CHECK(verdict<api::view_call>({}) == missing("call_id"));
    CHECK(verdict<api::create_auto_dialer_task>({}) == missing("name"));
    CHECK(verdict<api::create_automated_call>({}) == missing("phone_number"));
    CHECK(verdict<api::get_chat_conversation>({}) == missing("chat_id"));
    CHECK(verdict<api::get_social_conversation>({}) == missing("conversation_id"));
    CHECK(verdict<api::send_sms>({}) == missing("recipients"));
    CHECK(verdict<api::send_voice_message>({}) == missing("recipients"));
    CHECK(verdict<api::send_whatsapp>({}) == missing("recipients"));
    CHECK(verdict<api::get_video_call>({}) == missing("video_call_id"));
    CHECK(verdict<api::create_video_call>({}) == missing("title"));
    CHECK(verdict<api::get_virtual_meeting>({}) == missing("meeting_id"));
    CHECK(verdict<api::create_virtual_meeting>({}) == missing("title"));
    CHECK(verdict<api::create_contact>({}) == missing("phone"));
    CHECK(verdict<api::create_bulk_contact>({}) == missing("contacts"));
    CHECK(verdict<api::delete_contact>({}) == missing("contact_id"));
    CHECK(verdict<api::create_lead>({}) == missing("name"));
    CHECK(verdict<api::update_lead>({}) == missing("lead_id"));
    CHECK(verdict<api::delete_lead>({}) == missing("lead_id"));

    // Endpoints without required fields accept an empty request.
    CHECK(verdict<api::get_summary>({}) == ok);
    CHECK(verdict<api::list_tts_voices>({}) == ok);
    api::for_each_endpoint([](auto e) {
        using E = decltype(e);
        if constexpr (api::is_paginated_v<E>) {
            INFO(E::resource);
            CHECK(verdict<E>({}) == ok);
        }
    });
}

TEST_CASE("required fields: each one in turn, the empty string counts as missing", "[validation]") {
    const api::create_ticket_request full{
        .subject = "Printer on fire", .message = "Send help", .sender_email = "ada@example.com"};
    CHECK(verdict<api::create_ticket>(full) == ok);
    auto r = full;
    r.subject = "";
    CHECK(verdict<api::create_ticket>(r) == missing("subject"));
    r = full;
    r.message = "";
    CHECK(verdict<api::create_ticket>(r) == missing("message"));
    r = full;
    r.sender_email = "";
    CHECK(verdict<api::create_ticket>(r) == missing("sender_email"));
    // Several broken: the first rule in the spec's order is reported.
    r.subject = "";
    CHECK(verdict<api::create_ticket>(r) == missing("subject"));

    CHECK(verdict<api::add_ticket_reply>({.ticket_id = "T-1"}) == missing("message"));
    CHECK(verdict<api::add_ticket_reply>({.ticket_id = "T-1", .message = "Thanks"}) == ok);
    CHECK(verdict<api::create_automated_call>({.phone_number = "+2348012345678"}) == missing("message"));
    CHECK(verdict<api::create_automated_call>({.phone_number = "+2348012345678", .message = "Hello"}) == ok);
    CHECK(verdict<api::send_whatsapp>({.recipients = phones(1)}) == missing("message"));
    CHECK(verdict<api::send_whatsapp>({.recipients = phones(1), .message = "Hi"}) == ok);
    CHECK(verdict<api::create_virtual_meeting>({.title = "Standup"}) == missing("start_at"));
    CHECK(verdict<api::create_virtual_meeting>({.title = "Standup", .start_at = "2026-11-25T09:00:00Z"}) == ok);
    CHECK(verdict<api::create_video_call>({.title = "Demo"}) == ok);
    CHECK(verdict<api::create_contact>({.phone = "+2348012345678"}) == ok);
    CHECK(verdict<api::update_lead>({.lead_id = "L-1"}) == ok);
    CHECK(verdict<api::delete_lead>({.lead_id = "L-1"}) == ok);
    CHECK(verdict<api::delete_contact>({.contact_id = "C-1"}) == ok);
    CHECK(verdict<api::get_ticket_conversation>({.ticket_id = "T-1"}) == ok);
    CHECK(verdict<api::view_call>({.call_id = "C-1"}) == ok);
    CHECK(verdict<api::get_chat_conversation>({.chat_id = "CH-1"}) == ok);
    CHECK(verdict<api::get_social_conversation>({.conversation_id = "S-1"}) == ok);
    CHECK(verdict<api::get_video_call>({.video_call_id = "V-1"}) == ok);
    CHECK(verdict<api::get_virtual_meeting>({.meeting_id = "M-1"}) == ok);
    // An empty list is missing too.
    CHECK(verdict<api::send_sms>({.recipients = {}, .message = "Hi"}) == missing("recipients"));
}

// ---------------------------------------------------------------- enumerations

TEST_CASE("enumerations: every documented value passes, anything else is invalid", "[validation]") {
    SECTION("listUsers role") {
        for (auto v : api::user_role::known_values()) CHECK(verdict<api::list_users>({.role = std::string(v)}) == ok);
        CHECK(verdict<api::list_users>({.role = "owner"}) == invalid("role"));
    }
    SECTION("listTickets status") {
        for (auto v : api::ticket_status::known_values())
            CHECK(verdict<api::list_tickets>({.status = std::string(v)}) == ok);
        CHECK(verdict<api::list_tickets>({.status = "escalated"}) == invalid("status"));
        CHECK(verdict<api::list_tickets>({.status = "Open"}) == invalid("status"));
    }
    SECTION("createTicket priority") {
        api::create_ticket_request r{.subject = "S", .message = "M", .sender_email = "a@example.com"};
        for (auto v : api::priority::known_values()) {
            r.priority = std::string(v);
            CHECK(verdict<api::create_ticket>(r) == ok);
        }
        r.priority = "critical";
        CHECK(verdict<api::create_ticket>(r) == invalid("priority"));
    }
    SECTION("listCalls direction") {
        CHECK(verdict<api::list_calls>({.direction = "Incoming"}) == ok);
        CHECK(verdict<api::list_calls>({.direction = "Outgoing"}) == ok);
        CHECK(verdict<api::list_calls>({.direction = "incoming"}) == invalid("direction"));
        CHECK(verdict<api::list_calls>({.direction = "Missed"}) == invalid("direction"));
    }
    SECTION("createAutoDialerTask message_type") {
        api::create_auto_dialer_task_request r{.name = "N", .numbers = phones(1), .message = "M", .audio_url = "u"};
        for (auto v : api::message_type::known_values()) {
            r.message_type = std::string(v);
            CHECK(verdict<api::create_auto_dialer_task>(r) == ok);
        }
        r.message_type = "sms";
        CHECK(verdict<api::create_auto_dialer_task>(r) == invalid("message_type"));
        r.message_type = "";
        CHECK(verdict<api::create_auto_dialer_task>(r) == missing("message_type"));
    }
    SECTION("listChats status") {
        CHECK(verdict<api::list_chats>({.status = "open"}) == ok);
        CHECK(verdict<api::list_chats>({.status = "closed"}) == ok);
        CHECK(verdict<api::list_chats>({.status = "pending"}) == invalid("status")); // a ticket status, not a chat's
    }
    SECTION("listSocial platform") {
        for (auto v : api::social_platform::known_values())
            CHECK(verdict<api::list_social>({.platform = std::string(v)}) == ok);
        CHECK(verdict<api::list_social>({.platform = "tiktok"}) == invalid("platform"));
    }
    SECTION("listLeads status is free text") {
        CHECK(verdict<api::list_leads>({.status = "anything-goes"}) == ok);
        CHECK(verdict<api::create_lead>({.name = "Ada", .phone = "+1", .status = "warm"}) == ok);
    }
}

// ---------------------------------------------------------------- lengths and counts

TEST_CASE("sendSms message: 1..1600 characters, counted in code points", "[validation]") {
    api::send_sms_request r{.recipients = phones(1)};
    r.message = std::string(1600, 'a');
    CHECK(verdict<api::send_sms>(r) == ok);
    r.message = std::string(1601, 'a');
    CHECK(verdict<api::send_sms>(r) == invalid("message"));
    // 1600 two-byte (é), three-byte (€) and four-byte (🙂) code points are 1600 characters...
    for (std::string_view cp : {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x99\x82"}) {
        INFO("code point of " << cp.size() << " bytes");
        r.message = repeat(cp, 1600);
        CHECK(verdict<api::send_sms>(r) == ok);
        // ... and 1601 are one too many.
        r.message = repeat(cp, 1601);
        CHECK(verdict<api::send_sms>(r) == invalid("message"));
    }
    r.message = "\xC3\xA9";
    CHECK(verdict<api::send_sms>(r) == ok); // one character
    r.message = "";
    CHECK(verdict<api::send_sms>(r) == missing("message"));
}

TEST_CASE("list counts: recipients 1..1000, numbers 1..1000, contacts 1..500", "[validation]") {
    SECTION("sendSms recipients") {
        CHECK(verdict<api::send_sms>({.recipients = phones(1), .message = "Hi"}) == ok);
        CHECK(verdict<api::send_sms>({.recipients = phones(1000), .message = "Hi"}) == ok);
        CHECK(verdict<api::send_sms>({.recipients = phones(1001), .message = "Hi"}) == invalid("recipients"));
        CHECK(verdict<api::send_sms>({.recipients = {}, .message = "Hi"}) == missing("recipients"));
    }
    SECTION("sendVoiceMessage recipients") {
        CHECK(verdict<api::send_voice_message>({.recipients = phones(1000), .message = "Hi"}) == ok);
        CHECK(verdict<api::send_voice_message>({.recipients = phones(1001), .message = "Hi"}) == invalid("recipients"));
        CHECK(verdict<api::send_voice_message>({.recipients = {}, .message = "Hi"}) == missing("recipients"));
    }
    SECTION("sendWhatsapp recipients") {
        CHECK(verdict<api::send_whatsapp>({.recipients = phones(1000), .message = "Hi"}) == ok);
        CHECK(verdict<api::send_whatsapp>({.recipients = phones(1001), .message = "Hi"}) == invalid("recipients"));
        CHECK(verdict<api::send_whatsapp>({.recipients = {}, .message = "Hi"}) == missing("recipients"));
    }
    SECTION("createAutoDialerTask numbers") {
        api::create_auto_dialer_task_request r{.name = "Renewals", .message_type = "agent"};
        r.numbers = phones(1);
        CHECK(verdict<api::create_auto_dialer_task>(r) == ok);
        r.numbers = phones(1000);
        CHECK(verdict<api::create_auto_dialer_task>(r) == ok);
        r.numbers = phones(1001);
        CHECK(verdict<api::create_auto_dialer_task>(r) == invalid("numbers"));
        r.numbers.clear();
        CHECK(verdict<api::create_auto_dialer_task>(r) == missing("numbers"));
    }
    SECTION("createBulkContact contacts") {
        api::create_bulk_contact_request r;
        r.contacts.resize(1, api::new_contact{.phone = "+2348012345678"});
        CHECK(verdict<api::create_bulk_contact>(r) == ok);
        r.contacts.resize(500, api::new_contact{.phone = "+2348012345678"});
        CHECK(verdict<api::create_bulk_contact>(r) == ok);
        r.contacts.resize(501, api::new_contact{.phone = "+2348012345678"});
        CHECK(verdict<api::create_bulk_contact>(r) == invalid("contacts"));
        r.contacts.clear();
        CHECK(verdict<api::create_bulk_contact>(r) == missing("contacts"));
    }
}

TEST_CASE("createBulkContact: every contact is checked like createContact, named by its index", "[validation]") {
    api::create_bulk_contact_request r;
    r.contacts = {{.phone = "+2348012345678"},
                  {.phone = "+2348012345679"},
                  {.first_name = "No phone"},
                  {.first_name = "Nor this one"}};
    CHECK(verdict<api::create_bulk_contact>(r) == missing("contacts[2].phone"));
    r.contacts[2].phone = "+2348012345670";
    CHECK(verdict<api::create_bulk_contact>(r) == missing("contacts[3].phone"));
    r.contacts[3].phone = "+2348012345671";
    CHECK(verdict<api::create_bulk_contact>(r) == ok);
    r.contacts[0].phone = "";
    CHECK(verdict<api::create_bulk_contact>(r) == missing("contacts[0].phone"));
}

// ---------------------------------------------------------------- paging

TEST_CASE("paging: page >= 1 and per_page 1..100 on every list endpoint", "[validation]") {
    std::size_t list_endpoints = 0;
    api::for_each_endpoint([&](auto e) {
        using E = decltype(e);
        if constexpr (api::is_paginated_v<E>) {
            ++list_endpoints;
            INFO(E::resource);
            typename E::request r{};
            r.page = 1;
            r.per_page = 1;
            CHECK(verdict<E>(r) == ok);
            r.page = 2147483647;
            r.per_page = 100;
            CHECK(verdict<E>(r) == ok);
            r.page = 0;
            CHECK(verdict<E>(r) == invalid("page"));
            r.page = -3;
            CHECK(verdict<E>(r) == invalid("page"));
            r.page = 1;
            r.per_page = 0;
            CHECK(verdict<E>(r) == invalid("per_page"));
            r.per_page = 101;
            CHECK(verdict<E>(r) == invalid("per_page"));
            r.per_page = -1;
            CHECK(verdict<E>(r) == invalid("per_page"));
            // Absent: the server's defaults (page 1, 20 per page).
            r.page.reset();
            r.per_page.reset();
            CHECK(verdict<E>(r) == ok);
            // The same through the server's check.
            CHECK(json_verdict<E>(R"({"page":0})") == invalid("page"));
            CHECK(json_verdict<E>(R"({"per_page":101})") == invalid("per_page"));
            CHECK(json_verdict<E>(R"({"page":3,"per_page":100})") == ok);
        }
    });
    // Spec §3: every list* endpoint but listTtsVoices pages.
    CHECK(list_endpoints == 12);
    CHECK_FALSE(api::is_paginated_v<api::list_tts_voices>);
}

// ---------------------------------------------------------------- conditional rules

TEST_CASE("createAutoDialerTask: message required when tts, audio_url when audio", "[validation]") {
    api::create_auto_dialer_task_request r{.name = "Renewals", .numbers = phones(3)};
    r.message_type = "tts";
    CHECK(verdict<api::create_auto_dialer_task>(r) == missing("message"));
    r.message = "";
    CHECK(verdict<api::create_auto_dialer_task>(r) == missing("message"));
    r.message = "Your plan renews tomorrow";
    CHECK(verdict<api::create_auto_dialer_task>(r) == ok);

    r = {.name = "Renewals", .numbers = phones(3), .message_type = "audio"};
    CHECK(verdict<api::create_auto_dialer_task>(r) == missing("audio_url"));
    r.message = "TTS text does not stand in for the audio";
    CHECK(verdict<api::create_auto_dialer_task>(r) == missing("audio_url"));
    r.audio_url = "https://cdn.example.com/renewal.mp3";
    CHECK(verdict<api::create_auto_dialer_task>(r) == ok);

    // agent: neither is needed.
    r = {.name = "Renewals", .numbers = phones(3), .message_type = "agent"};
    CHECK(verdict<api::create_auto_dialer_task>(r) == ok);
    // message_type itself is required.
    r = {.name = "Renewals", .numbers = phones(3), .message = "Hi"};
    CHECK(verdict<api::create_auto_dialer_task>(r) == missing("message_type"));
}

TEST_CASE("sendVoiceMessage: exactly one of message and audio_url", "[validation]") {
    const auto recipients = phones(2);
    CHECK(verdict<api::send_voice_message>({.recipients = recipients}) == missing("message"));
    CHECK(verdict<api::send_voice_message>(
              {.recipients = recipients, .message = "Hi", .audio_url = "https://a/b.mp3"}) == invalid("message"));
    CHECK(verdict<api::send_voice_message>({.recipients = recipients, .message = "Hi"}) == ok);
    CHECK(verdict<api::send_voice_message>({.recipients = recipients, .audio_url = "https://a/b.mp3"}) == ok);
    // An empty string is absent: it neither satisfies the rule nor breaks "exactly one".
    CHECK(verdict<api::send_voice_message>({.recipients = recipients, .message = "", .audio_url = "https://a/b.mp3"}) ==
          ok);
    CHECK(verdict<api::send_voice_message>({.recipients = recipients, .message = "", .audio_url = ""}) ==
          missing("message"));
}

TEST_CASE("createLead: name required, and at least one of phone and email", "[validation]") {
    CHECK(verdict<api::create_lead>({.name = "Ada"}) == missing("phone"));
    CHECK(verdict<api::create_lead>({.name = "Ada", .phone = "", .email = ""}) == missing("phone"));
    CHECK(verdict<api::create_lead>({.name = "Ada", .phone = "+2348012345678"}) == ok);
    CHECK(verdict<api::create_lead>({.name = "Ada", .email = "ada@example.com"}) == ok);
    CHECK(verdict<api::create_lead>({.name = "Ada", .phone = "+2348012345678", .email = "ada@example.com"}) == ok);
    CHECK(verdict<api::create_lead>({.phone = "+2348012345678"}) == missing("name"));
}

// ---------------------------------------------------------------- the server's check of JSON

TEST_CASE("check_json_request: a value of the wrong JSON type is invalid, named by its field", "[validation]") {
    CHECK(json_verdict<api::create_ticket>(R"({"subject":"S","message":"M","sender_email":"a@example.com"})") == ok);
    CHECK(json_verdict<api::create_ticket>(R"({"subject":5,"message":"M","sender_email":"a@example.com"})") ==
          invalid("subject"));
    CHECK(json_verdict<api::create_ticket>(
              R"({"subject":"S","message":"M","sender_email":"a@example.com","priority":3})") == invalid("priority"));
    CHECK(json_verdict<api::create_ticket>(R"({"subject":"S","message":["M"],"sender_email":"a@example.com"})") ==
          invalid("message"));
    // Strict: a numeric string is not an integer, a number is not text.
    CHECK(json_verdict<api::list_tickets>(R"({"page":"2"})") == invalid("page"));
    CHECK(json_verdict<api::list_tickets>(R"({"per_page":true})") == invalid("per_page"));
    CHECK(json_verdict<api::view_call>(R"({"call_id":42})") == invalid("call_id"));
    CHECK(json_verdict<api::create_virtual_meeting>(
              R"({"title":"T","start_at":"2026-11-25T09:00:00Z","duration":"30"})") == invalid("duration"));
    CHECK(json_verdict<api::create_virtual_meeting>(
              R"({"title":"T","start_at":"2026-11-25T09:00:00Z","duration":30})") == ok);
    // Lists: a string where a list belongs, or a number inside a list of strings, names the list.
    CHECK(json_verdict<api::send_sms>(R"({"recipients":"+2348012345678","message":"Hi"})") == invalid("recipients"));
    CHECK(json_verdict<api::send_sms>(R"({"recipients":["+2348012345678",2348012345679],"message":"Hi"})") ==
          invalid("recipients"));
    CHECK(json_verdict<api::create_auto_dialer_task>(R"({"name":"N","numbers":{},"message_type":"agent"})") ==
          invalid("numbers"));
    CHECK(json_verdict<api::create_contact>(R"({"phone":"+1","custom_fields":"vip"})") == invalid("custom_fields"));
    // A nested field names its element.
    CHECK(json_verdict<api::create_bulk_contact>(R"({"contacts":[{"phone":"+1"},{"phone":2}]})") ==
          invalid("contacts[1].phone"));
    CHECK(json_verdict<api::create_bulk_contact>(R"({"contacts":[{"phone":"+1"},"+2"]})") == invalid("contacts"));
    // A wrong type wins over a missing field that comes earlier: the body is unreadable as a request.
    CHECK(json_verdict<api::create_ticket>(R"({"priority":1})") == invalid("priority"));
}

TEST_CASE("check_json_request: null is absent; then the catalog's rules apply", "[validation]") {
    CHECK(json_verdict<api::create_ticket>(R"({"subject":null,"message":"M","sender_email":"a@example.com"})") ==
          missing("subject"));
    CHECK(json_verdict<api::create_ticket>(R"({"subject":"","message":"M","sender_email":"a@example.com"})") ==
          missing("subject"));
    CHECK(json_verdict<api::create_ticket>(
              R"({"subject":"S","message":"M","sender_email":"a@example.com","priority":null})") == ok);
    CHECK(json_verdict<api::list_tickets>(R"({"page":null,"per_page":null,"status":null})") == ok);
    CHECK(json_verdict<api::list_tickets>(R"({"status":"escalated"})") == invalid("status"));
    CHECK(json_verdict<api::send_sms>(R"({"recipients":null,"message":"Hi"})") == missing("recipients"));
    CHECK(json_verdict<api::send_sms>(R"({"recipients":[],"message":"Hi"})") == missing("recipients"));
    CHECK(json_verdict<api::send_voice_message>(R"({"recipients":["+1"],"message":null,"audio_url":null})") ==
          missing("message"));
    CHECK(json_verdict<api::send_voice_message>(R"({"recipients":["+1"],"message":"Hi","audio_url":"https://a/b"})") ==
          invalid("message"));
    CHECK(json_verdict<api::create_auto_dialer_task>(R"({"name":"N","numbers":["+1"],"message_type":"audio"})") ==
          missing("audio_url"));
    CHECK(json_verdict<api::create_lead>(R"({"name":"Ada","phone":null,"email":null})") == missing("phone"));
    CHECK(json_verdict<api::create_bulk_contact>(R"({"contacts":[{"phone":"+1"},{"phone":"+2"},{"phone":null}]})") ==
          missing("contacts[2].phone"));
    // Unknown members are ignored by the server (spec §1), and kept by the decoded request.
    api::create_contact_request decoded;
    const auto v = api::check_json_request<api::create_contact>(
        json::parse(R"({"phone":"+1","loyalty":{"tier":"gold"}})").as_object(), &decoded);
    CHECK_FALSE(v);
    CHECK(decoded.phone == "+1");
    CHECK(decoded.extra.at("loyalty").at("tier") == "gold");
}

TEST_CASE("check_json_request agrees with check_all through the runtime catalog", "[validation]") {
    // The mock server reaches the rules through api::catalog(): same verdicts, by resource URI.
    const auto* sms = api::find_endpoint("sendSms");
    REQUIRE(sms != nullptr);
    REQUIRE(sms->check_request != nullptr);
    const auto v = sms->check_request(json::parse(R"({"recipients":["+1"],"message":""})").as_object());
    REQUIRE(v);
    CHECK(v->message() == missing("message"));
    CHECK_FALSE(sms->check_request(json::parse(R"({"recipients":["+1"],"message":"Hi"})").as_object()));
    const auto* lead = api::find_endpoint("createLead");
    REQUIRE(lead != nullptr);
    const auto lv = lead->check_request(json::parse(R"({"name":"Ada"})").as_object());
    REQUIRE(lv);
    CHECK(lv->message() == missing("phone"));
}

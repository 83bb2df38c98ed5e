// The webhook event catalog (spec §5): each of the 13 events decoded from the documented sample shapes
// (every value a string), numbers accepted as numbers and as numeric strings, unknown fields kept, a wrong
// value rejected with the field's name; every lookup reply encoded with every field the spec lists; the
// run-time table agreeing with the types and with the spec.
#include <callsavvy/webhook/events.hpp>

#include <boost/describe/members.hpp>
#include <boost/json.hpp>
#include <boost/mp11/algorithm.hpp>
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <string_view>
#include <type_traits>

namespace webhook = callsavvy::webhook;
namespace json = boost::json;
using callsavvy::json_mapping::decode_error;

namespace {

json::object obj(std::string_view text) { return json::parse(text).as_object(); }

template <class E>
E decoded(std::string_view text) {
    E e;
    decode_error err;
    INFO(text);
    const bool ok = webhook::decode(obj(text), e, err);
    INFO(err.message());
    REQUIRE(ok);
    return e;
}

template <class E>
decode_error rejected(std::string_view text) {
    E e;
    decode_error err;
    INFO(text);
    CHECK_FALSE(webhook::decode(obj(text), e, err));
    return err;
}

} // namespace

// ---------------------------------------------------------------- the 13 events, from their sample shapes

TEST_CASE("W1 callerInformation: a lookup of the caller by department, number and status", "[webhook]") {
    const auto e = decoded<webhook::caller_information>(
        R"({"event":"callerInformation","call_department":"Support","caller_number":"+2348012345678","call_status":"routing"})");
    CHECK(e.call_department == "Support");
    CHECK(e.caller_number == "+2348012345678");
    REQUIRE(e.call_status);
    CHECK(*e.call_status == "routing");
    CHECK(e.call_status->is_known());
    CHECK(e.extra.empty()); // `event` is the envelope, not an unknown field
    CHECK(e.raw.at("event") == "callerInformation");
}

TEST_CASE("W2 callSummary: direction, department, number, recording, duration and status", "[webhook]") {
    const auto e = decoded<webhook::call_summary>(
        R"({"event":"callSummary","call_direction":"Incoming","call_department":"Sales","caller_number":"+2348012345678",
            "recording_url":"https://rec.example/c1.mp3","call_duration":"93","call_status":"finished"})");
    REQUIRE(e.call_direction);
    CHECK(*e.call_direction == "Incoming");
    CHECK(e.call_direction->is_known());
    CHECK(e.call_department == "Sales");
    CHECK(e.caller_number == "+2348012345678");
    CHECK(e.recording_url == "https://rec.example/c1.mp3");
    CHECK(e.call_duration == 93);
    CHECK(e.call_status == webhook::call_status("finished"));
    CHECK(decoded<webhook::call_summary>(R"({"call_direction":"Outgoing"})").call_direction->is_known());
}

TEST_CASE("W3 autoDialerQueueState: task, state and counters", "[webhook]") {
    const auto e = decoded<webhook::auto_dialer_queue_state>(
        R"({"event":"autoDialerQueueState","task_id":"T-9","queue_state":"running","total":"120","completed":"80","failed":"3"})");
    CHECK(e.task_id == "T-9");
    CHECK(e.queue_state == webhook::queue_state("running"));
    CHECK(e.total == 120);
    CHECK(e.completed == 80);
    CHECK(e.failed == 3);
    for (std::string_view s : {"queued", "running", "paused", "completed"})
        CHECK(webhook::queue_state(std::string(s)).is_known());
}

TEST_CASE("W4 newTicketOpened: ticket, department, subject, sender and status", "[webhook]") {
    const auto e = decoded<webhook::new_ticket_opened>(
        R"({"event":"newTicketOpened","ticket_id":"TK-1","ticket_department":"Billing","ticket_subject":"Refund",
            "sender_email":"ada@example.com","ticket_status":"New"})");
    CHECK(e.ticket_id == "TK-1");
    CHECK(e.ticket_department == "Billing");
    CHECK(e.ticket_subject == "Refund");
    CHECK(e.sender_email == "ada@example.com");
    REQUIRE(e.ticket_status);
    CHECK(e.ticket_status->is_known());
}

TEST_CASE("W5 ticketEscalated: ticket, department, last update and level", "[webhook]") {
    const auto e = decoded<webhook::ticket_escalated>(
        R"({"event":"ticketEscalated","ticket_id":"TK-1","ticket_department":"Billing",
            "last_ticket_update":"2026-11-25T06:21:24Z","escalation_level":"2"})");
    CHECK(e.ticket_id == "TK-1");
    CHECK(e.ticket_department == "Billing");
    CHECK(e.last_ticket_update == "2026-11-25T06:21:24Z");
    CHECK(e.escalation_level == 2);
}

TEST_CASE("W6 newChat: chat, department, visitor and message", "[webhook]") {
    const auto e = decoded<webhook::new_chat>(
        R"({"event":"newChat","chat_id":"CH-1","chat_department":"Support","visitor_name":"Bo",
            "visitor_email":"bo@example.com","message":"Hello?"})");
    CHECK(e.chat_id == "CH-1");
    CHECK(e.chat_department == "Support");
    CHECK(e.visitor_name == "Bo");
    CHECK(e.visitor_email == "bo@example.com");
    CHECK(e.message == "Hello?");
}

TEST_CASE("W7 newLead: lead, name, phone, email and source", "[webhook]") {
    const auto e = decoded<webhook::new_lead>(
        R"({"event":"newLead","lead_id":"L-1","lead_name":"Ada","lead_phone":"+2348012345678",
            "lead_email":"ada@example.com","lead_source":"website"})");
    CHECK(e.lead_id == "L-1");
    CHECK(e.lead_name == "Ada");
    CHECK(e.lead_phone == "+2348012345678");
    CHECK(e.lead_email == "ada@example.com");
    CHECK(e.lead_source == "website");
}

TEST_CASE("W8 leadStatusChanged: lead, old and new status, who changed it", "[webhook]") {
    const auto e = decoded<webhook::lead_status_changed>(
        R"({"event":"leadStatusChanged","lead_id":"L-1","old_status":"new","new_status":"qualified","changed_by":"U-7"})");
    CHECK(e.lead_id == "L-1");
    CHECK(e.old_status == "new");
    CHECK(e.new_status == "qualified");
    CHECK(e.changed_by == "U-7");
}

TEST_CASE("W9 chatbotReply: a lookup of the bot's answer to a visitor", "[webhook]") {
    const auto e = decoded<webhook::chatbot_reply>(
        R"({"event":"chatbotReply","chat_id":"CH-1","visitor_message":"Opening hours?","visitor_name":"Bo"})");
    CHECK(e.chat_id == "CH-1");
    CHECK(e.visitor_message == "Opening hours?");
    CHECK(e.visitor_name == "Bo");
}

TEST_CASE("W10 aiContent: a lookup of generated content", "[webhook]") {
    const auto e = decoded<webhook::ai_content>(
        R"({"event":"aiContent","request_id":"R-1","prompt":"Write a greeting","context":"support line"})");
    CHECK(e.request_id == "R-1");
    CHECK(e.prompt == "Write a greeting");
    CHECK(e.context == "support line");
}

TEST_CASE("W11 aiWorkflow: a lookup with an object payload", "[webhook]") {
    const auto e = decoded<webhook::ai_workflow>(
        R"({"event":"aiWorkflow","workflow_id":"WF-1","step":"classify","payload":{"text":"refund please","n":"2"}})");
    CHECK(e.workflow_id == "WF-1");
    CHECK(e.step == "classify");
    REQUIRE(e.payload);
    CHECK(*e.payload == obj(R"({"text":"refund please","n":"2"})")); // kept as sent, not reinterpreted
}

TEST_CASE("W12 calendarGuestValidation: a lookup validating a guest for a slot", "[webhook]") {
    const auto e = decoded<webhook::calendar_guest_validation>(
        R"({"event":"calendarGuestValidation","calendar_id":"CAL-1","guest_name":"Ada","guest_email":"ada@example.com",
            "guest_phone":"+2348012345678","slot_start":"2026-11-25T09:00:00Z"})");
    CHECK(e.calendar_id == "CAL-1");
    CHECK(e.guest_name == "Ada");
    CHECK(e.guest_email == "ada@example.com");
    CHECK(e.guest_phone == "+2348012345678");
    REQUIRE(e.slot_start);
    CHECK(e.slot_start->str() == "2026-11-25T09:00:00Z");
    CHECK(e.slot_start->to_time().has_value());
}

TEST_CASE("W13 formFieldValidation: a lookup validating one form field", "[webhook]") {
    const auto e = decoded<webhook::form_field_validation>(
        R"({"event":"formFieldValidation","form_id":"F-1","field_name":"email","field_value":"ada@example"})");
    CHECK(e.form_id == "F-1");
    CHECK(e.field_name == "email");
    CHECK(e.field_value == "ada@example");
}

// ---------------------------------------------------------------- the mapping's rules, on events

TEST_CASE("webhook events: integers arrive as JSON numbers or numeric strings alike", "[webhook]") {
    const auto as_numbers = decoded<webhook::auto_dialer_queue_state>(R"({"total":120,"completed":80,"failed":0})");
    const auto as_strings =
        decoded<webhook::auto_dialer_queue_state>(R"({"total":"120","completed":"80","failed":"0"})");
    CHECK(as_numbers.total == 120);
    CHECK(as_numbers.completed == as_strings.completed);
    CHECK(as_numbers.failed == 0);
    CHECK(as_strings.failed == 0);
    CHECK(decoded<webhook::call_summary>(R"({"call_duration":41})").call_duration == 41);
    CHECK(decoded<webhook::call_summary>(R"({"call_duration":"41"})").call_duration == 41);
    CHECK(decoded<webhook::ticket_escalated>(R"({"escalation_level":3})").escalation_level == 3);
    CHECK(decoded<webhook::ticket_escalated>(R"({"escalation_level":"3"})").escalation_level == 3);
    // A number where the spec has text is kept as its text (a phone number sent unquoted).
    CHECK(decoded<webhook::caller_information>(R"({"caller_number":2348012345678})").caller_number == "2348012345678");
    // Missing and null fields are simply absent.
    const auto sparse = decoded<webhook::call_summary>(R"({"event":"callSummary","call_duration":null})");
    CHECK_FALSE(sparse.call_duration);
    CHECK_FALSE(sparse.caller_number);
}

TEST_CASE("webhook events: fields beyond the spec are kept in extra, the whole event in raw", "[webhook]") {
    const auto text =
        R"({"event":"newLead","lead_id":"L-1","campaign":{"id":"C-3"},"score":"87","tags":["vip"],"x":null})";
    const auto e = decoded<webhook::new_lead>(text);
    CHECK(e.lead_id == "L-1");
    CHECK(e.extra == obj(R"({"campaign":{"id":"C-3"},"score":"87","tags":["vip"],"x":null})"));
    CHECK(e.raw == obj(text));
    CHECK_FALSE(e.extra.contains("event"));
}

TEST_CASE("webhook events: a wrong value is an error naming the field", "[webhook]") {
    auto err = rejected<webhook::call_summary>(R"({"event":"callSummary","call_duration":"ninety"})");
    CHECK(err.path == "call_duration");
    CHECK(err.reason == "expected an integer, got a non-numeric string");
    CHECK(err.message() == "field call_duration: expected an integer, got a non-numeric string");

    err = rejected<webhook::caller_information>(R"({"caller_number":{"e164":"+2348012345678"}})");
    CHECK(err.path == "caller_number");
    CHECK(err.reason == "expected a string, got an object");

    err = rejected<webhook::ai_workflow>(R"({"payload":"text"})");
    CHECK(err.path == "payload");
    CHECK(err.reason == "expected an object, got a string");

    err = rejected<webhook::auto_dialer_queue_state>(R"({"total":"12.5"})");
    CHECK(err.path == "total");
    err = rejected<webhook::ticket_escalated>(R"({"escalation_level":true})");
    CHECK(err.path == "escalation_level");
    err = rejected<webhook::new_ticket_opened>(R"({"ticket_status":["New"]})");
    CHECK(err.path == "ticket_status");

    // `event` naming another event, or not a string, is refused too: the dispatcher picked the wrong type.
    err = rejected<webhook::new_lead>(R"({"event":"newChat","lead_id":"L-1"})");
    CHECK(err.path == "event");
    CHECK(err.reason == R"(expected "newLead", got "newChat")");
    err = rejected<webhook::new_lead>(R"({"event":7})");
    CHECK(err.reason == R"(expected "newLead", got a number)");
}

TEST_CASE("webhook events: every field of every event rejects a value of the wrong kind, by name", "[webhook]") {
    // An array fits none of the spec's field types (text, integer, object).
    std::size_t fields = 0;
    webhook::for_each_event([&](auto ev) {
        using E = decltype(ev);
        boost::mp11::mp_for_each<boost::describe::describe_members<E, boost::describe::mod_public>>([&](auto d) {
            ++fields;
            json::object body{{"event", E::name}, {d.name, json::array{1}}};
            E e;
            decode_error err;
            INFO(E::name << "." << d.name);
            CHECK_FALSE(webhook::decode(body, e, err));
            CHECK(err.path == d.name);
        });
    });
    CHECK(fields == 3 + 6 + 5 + 5 + 4 + 5 + 5 + 4 + 3 + 3 + 3 + 5 + 3); // spec §5's POST fields, W1..W13
}

TEST_CASE("webhook events: a failed decode leaves the event untouched", "[webhook]") {
    webhook::call_summary e;
    e.caller_number = "+1";
    decode_error err;
    CHECK_FALSE(webhook::decode(obj(R"({"caller_number":"+2","call_duration":"x"})"), e, err));
    CHECK(e.caller_number == "+1");
    CHECK(e.raw.empty());
}

TEST_CASE("webhook events: encode writes `event` first and round-trips through decode", "[webhook]") {
    webhook::call_summary e;
    e.call_direction = "Outgoing";
    e.call_duration = 12;
    e.caller_number = "+2348012345678";
    e.extra["agent"] = "U-7";
    e.extra["event"] = "newLead"; // cannot turn the delivery into another event
    const auto o = webhook::encode(e);
    CHECK(o == obj(R"({"event":"callSummary","call_direction":"Outgoing","caller_number":"+2348012345678",
                       "call_duration":12,"agent":"U-7"})"));
    CHECK(o.begin()->key() == "event");
    const auto back = decoded<webhook::call_summary>(json::serialize(o));
    CHECK(back.call_direction == e.call_direction);
    CHECK(back.call_duration == 12);
    CHECK(back.extra == obj(R"({"agent":"U-7"})"));
    CHECK(webhook::encode(back) == o);

    CHECK(webhook::event_name(o) == "callSummary");
    CHECK_FALSE(webhook::event_name(obj(R"({"event":1})")));
    CHECK_FALSE(webhook::event_name(obj(R"({})")));
}

// ---------------------------------------------------------------- replies

TEST_CASE("webhook replies: every listed field is always encoded, with the spec's defaults", "[webhook]") {
    CHECK(webhook::encode_reply(webhook::caller_information_reply{}) ==
          obj(R"({"status":"success","caller_name":"","caller_email":"","customer_info":""})"));
    CHECK(webhook::encode_reply(webhook::chatbot_reply_reply{}) == obj(R"({"status":"success","reply":""})"));
    CHECK(webhook::encode_reply(webhook::ai_content_reply{}) == obj(R"({"status":"success","content":""})"));
    CHECK(webhook::encode_reply(webhook::ai_workflow_reply{}) == obj(R"({"status":"success"})")); // output: optional
    CHECK(webhook::encode_reply(webhook::validation_reply{}) ==
          obj(R"({"status":"success","valid":false,"message":""})"));

    webhook::caller_information_reply who;
    who.caller_name = "Ada Obi";
    who.extra["vip"] = true;
    CHECK(webhook::encode_reply(who) ==
          obj(R"({"status":"success","caller_name":"Ada Obi","caller_email":"","customer_info":"","vip":true})"));

    webhook::ai_workflow_reply wf;
    wf.output = obj(R"({"route":"billing"})");
    CHECK(webhook::encode_reply(wf) == obj(R"({"status":"success","output":{"route":"billing"}})"));

    webhook::validation_reply bad;
    bad.status = "error";
    bad.message = "slot taken";
    CHECK(bad.status.is_known());
    CHECK(webhook::encode_reply(bad) == obj(R"({"status":"error","valid":false,"message":"slot taken"})"));

    // The sender's side reads a reply back; what it lacks keeps the default.
    webhook::validation_reply read;
    decode_error err;
    REQUIRE(webhook::decode_reply(obj(R"({"valid":true,"hint":"ok"})"), read, err));
    CHECK(read.valid);
    CHECK(read.status == "success");
    CHECK(read.extra == obj(R"({"hint":"ok"})"));
    CHECK_FALSE(webhook::decode_reply(obj(R"({"valid":{}})"), read, err));
    CHECK(err.path == "valid");
}

// ---------------------------------------------------------------- traits, for the listener's on<E>(handler)

namespace events_test {
struct caller_lookup {
    callsavvy::asio::awaitable<webhook::caller_information_reply> operator()(webhook::caller_information) const;
};
struct caller_by_ref {
    callsavvy::asio::awaitable<webhook::caller_information_reply> operator()(const webhook::caller_information&) const;
};
struct caller_ack_only {
    callsavvy::asio::awaitable<void> operator()(webhook::caller_information) const;
};
struct summary_ack {
    callsavvy::asio::awaitable<void> operator()(webhook::call_summary&&) const;
};
struct summary_with_reply {
    callsavvy::asio::awaitable<webhook::ai_content_reply> operator()(webhook::call_summary) const;
};
struct not_a_coroutine {
    webhook::caller_information_reply operator()(webhook::caller_information) const;
};
} // namespace events_test

TEST_CASE("webhook events: lookups return awaitable<reply>, notifications awaitable<void>", "[webhook]") {
    using namespace events_test;
    STATIC_REQUIRE(webhook::is_lookup_v<webhook::caller_information>);
    STATIC_REQUIRE_FALSE(webhook::is_lookup_v<webhook::call_summary>);
    STATIC_REQUIRE(std::is_same_v<webhook::reply_t<webhook::caller_information>, webhook::caller_information_reply>);
    STATIC_REQUIRE(std::is_void_v<webhook::reply_t<webhook::new_chat>>);
    STATIC_REQUIRE(std::is_same_v<webhook::reply_t<webhook::form_field_validation>,
                                  webhook::reply_t<webhook::calendar_guest_validation>>);
    STATIC_REQUIRE(webhook::handler_for<caller_lookup, webhook::caller_information>);
    STATIC_REQUIRE(webhook::handler_for<caller_by_ref, webhook::caller_information>);
    STATIC_REQUIRE_FALSE(webhook::handler_for<caller_ack_only, webhook::caller_information>); // a lookup must reply
    STATIC_REQUIRE(webhook::handler_for<summary_ack, webhook::call_summary>);
    STATIC_REQUIRE_FALSE(webhook::handler_for<summary_with_reply, webhook::call_summary>); // nothing to reply with
    STATIC_REQUIRE_FALSE(webhook::handler_for<not_a_coroutine, webhook::caller_information>);
    STATIC_REQUIRE_FALSE(webhook::handler_for<caller_lookup, webhook::chatbot_reply>); // another event's handler
    STATIC_REQUIRE_FALSE(webhook::event<webhook::validation_reply>);
}

// ---------------------------------------------------------------- the run-time table

TEST_CASE("webhook event catalog: 13 events in the spec's order, lookups W1 and W9-W13", "[webhook]") {
    const auto all = webhook::event_catalog();
    REQUIRE(all.size() == 13);
    const std::vector<std::string_view> names{"callerInformation",
                                              "callSummary",
                                              "autoDialerQueueState",
                                              "newTicketOpened",
                                              "ticketEscalated",
                                              "newChat",
                                              "newLead",
                                              "leadStatusChanged",
                                              "chatbotReply",
                                              "aiContent",
                                              "aiWorkflow",
                                              "calendarGuestValidation",
                                              "formFieldValidation"};
    const std::set<int> lookups{1, 9, 10, 11, 12, 13};
    for (std::size_t i = 0; i < all.size(); ++i) {
        INFO("W" << i + 1);
        CHECK(all[i].number == static_cast<int>(i + 1));
        CHECK(all[i].name == names[i]);
        CHECK(all[i].lookup == (lookups.count(all[i].number) == 1));
        CHECK_FALSE(all[i].title.empty());
        CHECK(webhook::find_event(all[i].name) == &all[i]);
    }
    CHECK(webhook::find_event("caller_information") == nullptr);
    CHECK(webhook::find_event("CallerInformation") == nullptr); // names are exact
    CHECK(webhook::find_event("") == nullptr);

    // The table is the types, erased.
    std::size_t i = 0;
    webhook::for_each_event([&](auto ev) {
        using E = decltype(ev);
        REQUIRE(i < all.size());
        CHECK(all[i].number == E::number);
        CHECK(all[i].name == E::name);
        CHECK(all[i].lookup == webhook::is_lookup_v<E>);
        CHECK(all[i].lookup == !std::is_void_v<webhook::reply_t<E>>);
        ++i;
    });
    CHECK(i == 13);
}

TEST_CASE("webhook event catalog: check() decodes as the typed decode does", "[webhook]") {
    const auto* summary = webhook::find_event("callSummary");
    REQUIRE(summary != nullptr);
    CHECK_FALSE(summary->check(obj(R"({"event":"callSummary","call_duration":"93","new_field":1})")));
    const auto err = summary->check(obj(R"({"event":"callSummary","call_duration":"long"})"));
    REQUIRE(err);
    CHECK(err->path == "call_duration");
    const auto wrong = summary->check(obj(R"({"event":"newChat"})"));
    REQUIRE(wrong);
    CHECK(wrong->path == "event");
    // Every entry accepts its own name with no fields, and the event of its neighbour not.
    const auto all = webhook::event_catalog();
    for (std::size_t k = 0; k < all.size(); ++k) {
        INFO(all[k].name);
        json::object own{{"event", all[k].name}};
        json::object other{{"event", all[(k + 1) % all.size()].name}};
        CHECK_FALSE(all[k].check(own));
        CHECK(all[k].check(other));
    }
}

// The typed API end to end (issue 4, "Done when"): each of the 35 endpoints through its named call
// (`client.async_create_ticket(...)`) against a loopback server that records what arrived and answers with
// prepared envelopes. For every endpoint: the request body (the spec's field names, absent optionals left
// out, `extra` members sent as given), the target /v1/<resourceURI>, the decoded response (typed fields,
// numeric strings in integer fields, timestamps as sent, unknown fields in `extra`, the whole data object
// in `raw`), a decode error naming the field for every typed member of the response, and a broken request
// refused before anything is sent. Then nested decode errors, the client side of validation, and
// walking every page of a list: to the end, without pagination, and cancelled half-way.
#include <callsavvy/api/catalog.hpp>
#include <callsavvy/client.hpp>

#include "support/client_options.hpp"
#include "support/run.hpp"
#include "support/script_server.hpp"

#include "support/asio.hpp"
#include <boost/describe/members.hpp>
#include <boost/json.hpp>
#include <boost/mp11/algorithm.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using callsavvy::error;
using cstest::peer;
using cstest::script_server;
namespace api = callsavvy::api;
namespace json = boost::json;

namespace {

json::object obj(std::string_view text) { return json::parse(text).as_object(); }

using tuple_token = asio::experimental::as_tuple_t<asio::use_awaitable_t<>>;
constexpr tuple_token as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// ---------------------------------------------------------------- a recording Callsavvy

struct arrival {
    std::string method;
    std::string target;
    json::value body;
};

struct reply {
    int status = 200;
    json::object data{};   // the success envelope's data
    std::string message{}; // the error envelope's message, for status != 200
};

// What the loopback API saw, and what it answers: queued replies first, then `answer`, else an empty data.
struct api_log {
    std::vector<arrival> arrivals;
    std::deque<reply> replies;
    std::function<reply(const arrival&)> answer;
    bool client_closed = false;
};

script_server recording_server(asio::io_context& io, const std::shared_ptr<api_log>& log) {
    return script_server(io.get_executor(), [log](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            arrival a{req->method, req->target, json::parse(req->body)};
            const std::string resource = req->target.substr(req->target.rfind('/') + 1);
            reply r;
            if (!log->replies.empty()) {
                r = std::move(log->replies.front());
                log->replies.pop_front();
            } else if (log->answer) {
                r = log->answer(a);
            }
            log->arrivals.push_back(std::move(a));
            const std::string body = r.status == 200 ? callsavvy::make_success_envelope(resource, r.data)
                                                     : callsavvy::make_error_envelope(resource, r.message);
            co_await p.respond(r.status, body);
        }
        log->client_closed = true;
    });
}

callsavvy::client_options options_for(const script_server& s) {
    callsavvy::client_options o = cstest::test_client_options(s.base_url(), {"TEST-public-key", "TEST-private-key"});
    o.call_deadline = 10s;
    o.jitter_seed = 7;
    return o;
}

std::string target_of(std::string_view resource) { return "/v1/" + std::string(resource); }

// ---------------------------------------------------------------- one case per endpoint

// A request, the body the server must receive for it, the data object the server answers with, and what
// the typed response must then hold. The runner adds an `extra` member to every request and an unknown
// member to every answer, and checks `raw` and `extra` itself.
template <class E>
struct endpoint_case {
    typename E::request request{};
    std::string body = "{}";
    std::string data = "{}";
    std::function<void(const typename E::response&)> check{};
};

// ======================= Account =======================

endpoint_case<api::get_summary> case_of(api::get_summary) {
    return {{},
            "{}",
            // Ids and amounts sometimes arrive as numbers: text fields keep them as text.
            R"({"assigned_number":"+2348012345678","business_id":1042,"business_name":"Acme Ltd","plan":"pro",
                "balance":1520.75})",
            [](const api::get_summary_response& r) {
                CHECK(r.assigned_number == "+2348012345678");
                CHECK(r.business_id == "1042");
                CHECK(r.business_name == "Acme Ltd");
                CHECK(r.plan == "pro");
                CHECK(r.balance == "1520.75");
            }};
}

endpoint_case<api::list_departments> case_of(api::list_departments) {
    return {{.page = 1, .per_page = 50},
            R"({"page":1,"per_page":50})",
            R"({"departments":[{"department_id":"D-1","name":"Support","description":"First line"},
                               {"department_id":"D-2","name":"Sales","head_count":12}],
                "pagination":{"page":"1","per_page":"50","total":"2","total_pages":"1"}})",
            [](const api::list_departments_response& r) {
                REQUIRE(r.departments.size() == 2);
                CHECK(r.departments[0].department_id == "D-1");
                CHECK(r.departments[0].name == "Support");
                CHECK(r.departments[0].description == "First line");
                CHECK_FALSE(r.departments[1].description);
                CHECK(r.departments[1].extra.at("head_count") == 12);
                CHECK(r.pagination.page == 1);
                CHECK(r.pagination.per_page == 50);
                CHECK(r.pagination.total == 2);
                CHECK(r.pagination.total_pages == 1);
            }};
}

endpoint_case<api::list_request_categories> case_of(api::list_request_categories) {
    return {{.department_id = "D-1"},
            R"({"department_id":"D-1"})",
            R"({"categories":[{"category_id":"CAT-1","name":"Billing","department_id":"D-1"}],
                "pagination":{"page":1,"per_page":20,"total":1,"total_pages":1}})",
            [](const api::list_request_categories_response& r) {
                REQUIRE(r.categories.size() == 1);
                CHECK(r.categories[0].category_id == "CAT-1");
                CHECK(r.categories[0].name == "Billing");
                CHECK(r.categories[0].department_id == "D-1");
                CHECK(r.pagination.total == 1);
            }};
}

endpoint_case<api::list_users> case_of(api::list_users) {
    return {{.page = 2, .role = "agent"},
            R"({"page":2,"role":"agent"})",
            R"({"users":[{"user_id":"U-1","name":"Ada","email":"ada@example.com","role":"agent",
                          "department_id":"D-1","status":"active"},
                         {"user_id":"U-2","role":"supervisor","last_login":"2026-11-24T08:00:00Z"}],
                "pagination":{"page":2,"per_page":20,"total":"22","total_pages":"2"}})",
            [](const api::list_users_response& r) {
                REQUIRE(r.users.size() == 2);
                CHECK(r.users[0].user_id == "U-1");
                CHECK(r.users[0].name == "Ada");
                CHECK(r.users[0].email == "ada@example.com");
                REQUIRE(r.users[0].role);
                CHECK(r.users[0].role->is_known());
                CHECK(r.users[0].role == "agent");
                CHECK(r.users[0].department_id == "D-1");
                CHECK(r.users[0].status == "active");
                REQUIRE(r.users[1].role);
                CHECK(r.users[1].role == "supervisor"); // a role the spec does not list is kept
                CHECK_FALSE(r.users[1].role->is_known());
                CHECK(r.users[1].extra.at("last_login") == "2026-11-24T08:00:00Z");
                CHECK(r.pagination.total == 22);
                CHECK(r.pagination.total_pages == 2);
            }};
}

// ======================= Tickets =======================

endpoint_case<api::list_tickets> case_of(api::list_tickets) {
    return {
        {.per_page = 20, .status = "open", .department_id = "D-1", .from_date = "2026-11-01", .to_date = "2026-11-30"},
        R"({"per_page":20,"status":"open","department_id":"D-1","from_date":"2026-11-01","to_date":"2026-11-30"})",
        R"({"tickets":[{"ticket_id":"T-100","subject":"Printer on fire","status":"open","priority":"urgent",
                            "department_id":"D-1","category_id":"CAT-1","sender_email":"ada@example.com",
                            "created_at":"2026-11-25T06:21:24Z","updated_at":"2026-11-25T07:00:00Z",
                            "sla_breached":true},
                           {"ticket_id":"T-101","status":"on-hold"}],
                "pagination":{"page":1,"per_page":20,"total":2,"total_pages":1}})",
        [](const api::list_tickets_response& r) {
            REQUIRE(r.tickets.size() == 2);
            const auto& t = r.tickets[0];
            CHECK(t.ticket_id == "T-100");
            CHECK(t.subject == "Printer on fire");
            CHECK(t.status == "open");
            CHECK(t.priority == "urgent");
            CHECK(t.department_id == "D-1");
            CHECK(t.category_id == "CAT-1");
            CHECK(t.sender_email == "ada@example.com");
            CHECK(t.created_at == "2026-11-25T06:21:24Z");
            REQUIRE(t.created_at);
            CHECK(t.created_at->to_time());
            CHECK(t.updated_at == "2026-11-25T07:00:00Z");
            CHECK(t.extra.at("sla_breached") == true);
            CHECK(r.tickets[1].status == "on-hold");
            CHECK_FALSE(r.tickets[1].status->is_known());
            CHECK_FALSE(r.tickets[1].subject);
        }};
}

endpoint_case<api::get_ticket_conversation> case_of(api::get_ticket_conversation) {
    return {{.ticket_id = "T-100"},
            R"({"ticket_id":"T-100"})",
            R"({"ticket":{"ticket_id":"T-100","subject":"Printer on fire","status":"pending","priority":"high"},
                "messages":[{"message_id":"MSG-1","sender":"customer","sender_email":"ada@example.com",
                             "body":"It is still burning","created_at":"2026-11-25T06:21:24Z",
                             "attachments":["https://files.example.com/fire.jpg"]},
                            {"message_id":"MSG-2","sender":"agent","body":"On it","internal":false}]})",
            [](const api::get_ticket_conversation_response& r) {
                REQUIRE(r.ticket);
                CHECK(r.ticket->ticket_id == "T-100");
                CHECK(r.ticket->status == "pending");
                CHECK(r.ticket->priority == "high");
                REQUIRE(r.messages.size() == 2);
                CHECK(r.messages[0].message_id == "MSG-1");
                CHECK(r.messages[0].sender == "customer");
                CHECK(r.messages[0].sender_email == "ada@example.com");
                CHECK(r.messages[0].body == "It is still burning");
                CHECK(r.messages[0].created_at == "2026-11-25T06:21:24Z");
                REQUIRE(r.messages[0].attachments);
                CHECK(*r.messages[0].attachments == std::vector<std::string>{"https://files.example.com/fire.jpg"});
                CHECK_FALSE(r.messages[1].attachments);
                CHECK(r.messages[1].extra.at("internal") == false);
            }};
}

endpoint_case<api::create_ticket> case_of(api::create_ticket) {
    api::create_ticket_request req{.subject = "Printer on fire",
                                   .message = "Please send help",
                                   .sender_email = "ada@example.com",
                                   .sender_name = "Ada Lovelace",
                                   .priority = "urgent"};
    req.extra["tags"] = json::array{"vip", "hardware"};
    return {std::move(req),
            R"({"subject":"Printer on fire","message":"Please send help","sender_email":"ada@example.com",
                "sender_name":"Ada Lovelace","priority":"urgent","tags":["vip","hardware"]})",
            R"({"ticket_id":"T-100","status":"open"})", [](const api::create_ticket_response& r) {
                CHECK(r.ticket_id == "T-100");
                CHECK(r.status == "open");
            }};
}

endpoint_case<api::add_ticket_reply> case_of(api::add_ticket_reply) {
    return {{.ticket_id = "T-100", .message = "A technician is on the way", .user_id = "U-1"},
            R"({"ticket_id":"T-100","message":"A technician is on the way","user_id":"U-1"})",
            R"({"ticket_id":"T-100","message_id":"MSG-3"})",
            [](const api::add_ticket_reply_response& r) {
                CHECK(r.ticket_id == "T-100");
                CHECK(r.message_id == "MSG-3");
            }};
}

// ======================= Voice =======================

endpoint_case<api::list_calls> case_of(api::list_calls) {
    return {{.page = 1, .direction = "Incoming", .from_date = "2026-11-01"},
            R"({"page":1,"direction":"Incoming","from_date":"2026-11-01"})",
            R"({"calls":[{"call_id":"C-1","direction":"Incoming","caller_number":"+2348012345678",
                          "department_id":"D-1","status":"answered","duration":"93",
                          "recording_url":"https://rec.example.com/C-1.mp3","started_at":"2026-11-25T06:21:24Z"},
                         {"call_id":"C-2","direction":"Transferred","duration":41}],
                "pagination":{"page":"1","per_page":"20","total":"2","total_pages":"1"}})",
            [](const api::list_calls_response& r) {
                REQUIRE(r.calls.size() == 2);
                const auto& c = r.calls[0];
                CHECK(c.call_id == "C-1");
                CHECK(c.direction == "Incoming");
                CHECK(c.caller_number == "+2348012345678");
                CHECK(c.department_id == "D-1");
                CHECK(c.status == "answered");
                CHECK(c.duration == 93); // sent as "93"
                CHECK(c.recording_url == "https://rec.example.com/C-1.mp3");
                CHECK(c.started_at == "2026-11-25T06:21:24Z");
                CHECK(r.calls[1].duration == 41);
                CHECK_FALSE(r.calls[1].direction->is_known());
                CHECK(r.pagination.total_pages == 1);
            }};
}

endpoint_case<api::view_call> case_of(api::view_call) {
    return {{.call_id = "C-1"},
            R"({"call_id":"C-1"})",
            R"({"call":{"call_id":"C-1","direction":"Outgoing","caller_number":"+2348012345678","status":"missed",
                        "duration":"0","started_at":"2026-11-25T06:21:24Z","queue_wait":"7"}})",
            [](const api::view_call_response& r) {
                REQUIRE(r.call);
                CHECK(r.call->call_id == "C-1");
                CHECK(r.call->direction == "Outgoing");
                CHECK(r.call->status == "missed");
                CHECK(r.call->duration == 0);
                CHECK(r.call->started_at == "2026-11-25T06:21:24Z");
                CHECK_FALSE(r.call->recording_url);
                CHECK(r.call->extra.at("queue_wait") == "7"); // unknown: kept exactly as sent
            }};
}

endpoint_case<api::create_auto_dialer_task> case_of(api::create_auto_dialer_task) {
    return {{.name = "Renewals",
             .numbers = {"+2348012345678", "+2348012345679"},
             .message_type = "tts",
             .message = "Your plan renews tomorrow",
             .language = "en-US",
             .voice = "v1",
             .start_at = "2026-11-26T09:00:00Z"},
            R"({"name":"Renewals","numbers":["+2348012345678","+2348012345679"],"message_type":"tts",
                "message":"Your plan renews tomorrow","language":"en-US","voice":"v1",
                "start_at":"2026-11-26T09:00:00Z"})",
            R"({"task_id":"ADT-9","queued":"2"})",
            [](const api::create_auto_dialer_task_response& r) {
                CHECK(r.task_id == "ADT-9");
                CHECK(r.queued == 2);
            }};
}

endpoint_case<api::create_automated_call> case_of(api::create_automated_call) {
    return {{.phone_number = "+2348012345678", .message = "Your code is 4711", .language = "en-GB"},
            R"({"phone_number":"+2348012345678","message":"Your code is 4711","language":"en-GB"})",
            R"({"call_id":"C-77","status":"queued"})",
            [](const api::create_automated_call_response& r) {
                CHECK(r.call_id == "C-77");
                CHECK(r.status == "queued");
            }};
}

endpoint_case<api::list_tts_voices> case_of(api::list_tts_voices) {
    return {{},
            "{}",
            R"({"languages":[{"code":"en-US","name":"English, United States",
                              "voices":[{"voice_id":"v1","name":"Ada","gender":"female"},
                                        {"voice_id":"v2","name":"Bob","gender":"male","neural":true}]},
                             {"code":"yo-NG","name":"Yoruba"}]})",
            [](const api::list_tts_voices_response& r) {
                REQUIRE(r.languages.size() == 2);
                CHECK(r.languages[0].code == "en-US");
                CHECK(r.languages[0].name == "English, United States");
                REQUIRE(r.languages[0].voices);
                REQUIRE(r.languages[0].voices->size() == 2);
                const auto& bob = (*r.languages[0].voices)[1];
                CHECK(bob.voice_id == "v2");
                CHECK(bob.name == "Bob");
                CHECK(bob.gender == "male");
                CHECK(bob.extra.at("neural") == true);
                CHECK(r.languages[1].code == "yo-NG");
                CHECK_FALSE(r.languages[1].voices);
            }};
}

// ======================= Chats & Social =======================

endpoint_case<api::list_chats> case_of(api::list_chats) {
    return {{.per_page = 10, .status = "closed"},
            R"({"per_page":10,"status":"closed"})",
            R"({"chats":[{"chat_id":"CH-5","visitor_name":"Grace","visitor_email":"grace@example.com",
                          "status":"closed","channel":"web","started_at":"2026-11-25T06:21:24Z","rating":5}],
                "pagination":{"page":1,"per_page":10,"total":1,"total_pages":1}})",
            [](const api::list_chats_response& r) {
                REQUIRE(r.chats.size() == 1);
                const auto& c = r.chats[0];
                CHECK(c.chat_id == "CH-5");
                CHECK(c.visitor_name == "Grace");
                CHECK(c.visitor_email == "grace@example.com");
                CHECK(c.status == "closed");
                CHECK(c.channel == "web");
                CHECK(c.started_at == "2026-11-25T06:21:24Z");
                CHECK(c.extra.at("rating") == 5);
                CHECK(r.pagination.per_page == 10);
            }};
}

endpoint_case<api::get_chat_conversation> case_of(api::get_chat_conversation) {
    return {{.chat_id = "CH-5"},
            R"({"chat_id":"CH-5"})",
            R"({"chat":{"chat_id":"CH-5","status":"open","channel":"widget"},
                "messages":[{"message_id":"M-1","sender":"visitor","body":"Hello?","created_at":"2026-11-25T06:21:24Z"}],
                "typing":true})",
            [](const api::get_chat_conversation_response& r) {
                REQUIRE(r.chat);
                CHECK(r.chat->chat_id == "CH-5");
                CHECK(r.chat->status == "open");
                CHECK(r.chat->channel == "widget");
                REQUIRE(r.messages.size() == 1);
                CHECK(r.messages[0].body == "Hello?");
                CHECK(r.extra.at("typing") == true);
            }};
}

endpoint_case<api::list_social> case_of(api::list_social) {
    return {{.platform = "whatsapp"},
            R"({"platform":"whatsapp"})",
            R"({"conversations":[{"conversation_id":"S-1","platform":"whatsapp","contact_name":"Bola",
                                  "last_message":"Thanks!","updated_at":"2026-11-25T06:21:24Z"},
                                 {"conversation_id":"S-2","platform":"telegram"}],
                "pagination":{"page":1,"per_page":20,"total":2,"total_pages":1}})",
            [](const api::list_social_response& r) {
                REQUIRE(r.conversations.size() == 2);
                const auto& s = r.conversations[0];
                CHECK(s.conversation_id == "S-1");
                CHECK(s.platform == "whatsapp");
                CHECK(s.contact_name == "Bola");
                CHECK(s.last_message == "Thanks!");
                CHECK(s.updated_at == "2026-11-25T06:21:24Z");
                CHECK(r.conversations[1].platform == "telegram");
                CHECK_FALSE(r.conversations[1].platform->is_known());
            }};
}

endpoint_case<api::get_social_conversation> case_of(api::get_social_conversation) {
    return {{.conversation_id = "S-1"},
            R"({"conversation_id":"S-1"})",
            R"({"conversation":{"conversation_id":"S-1","platform":"instagram","contact_name":"Bola"},
                "messages":[{"message_id":"SM-1","sender":"Bola","body":"Is it in stock?"},
                            {"message_id":"SM-2","sender":"agent","body":"Yes","reactions":["+1"]}]})",
            [](const api::get_social_conversation_response& r) {
                REQUIRE(r.conversation);
                CHECK(r.conversation->platform == "instagram");
                CHECK(r.conversation->contact_name == "Bola");
                REQUIRE(r.messages.size() == 2);
                CHECK(r.messages[1].body == "Yes");
                CHECK(r.messages[1].extra.at("reactions") == json::array{"+1"});
            }};
}

// ======================= Campaign =======================

endpoint_case<api::send_sms> case_of(api::send_sms) {
    return {{.recipients = {"+2348012345678", "+2348012345679"},
             .message = "Sale ends at midnight \xF0\x9F\x95\x9B",
             .sender_id = "ACME",
             .schedule_at = "2026-11-25T18:00:00Z"},
            R"({"recipients":["+2348012345678","+2348012345679"],"message":"Sale ends at midnight \ud83d\udd5b",
                "sender_id":"ACME","schedule_at":"2026-11-25T18:00:00Z"})",
            R"({"campaign_id":"CMP-1","queued":"2","cost":"0.04"})",
            [](const api::send_sms_response& r) {
                CHECK(r.campaign_id == "CMP-1");
                CHECK(r.queued == 2);
                CHECK(r.extra.at("cost") == "0.04");
            }};
}

endpoint_case<api::send_voice_message> case_of(api::send_voice_message) {
    return {{.recipients = {"+2348012345678"}, .audio_url = "https://cdn.example.com/promo.mp3"},
            R"({"recipients":["+2348012345678"],"audio_url":"https://cdn.example.com/promo.mp3"})",
            R"({"campaign_id":"CMP-2","queued":1})",
            [](const api::send_voice_message_response& r) {
                CHECK(r.campaign_id == "CMP-2");
                CHECK(r.queued == 1);
            }};
}

endpoint_case<api::send_whatsapp> case_of(api::send_whatsapp) {
    return {{.recipients = {"+2348012345678"},
             .message = "Your order shipped",
             .media_url = "https://cdn.example.com/receipt.pdf"},
            R"({"recipients":["+2348012345678"],"message":"Your order shipped",
                "media_url":"https://cdn.example.com/receipt.pdf"})",
            R"({"campaign_id":"CMP-3","queued":"1"})",
            [](const api::send_whatsapp_response& r) {
                CHECK(r.campaign_id == "CMP-3");
                CHECK(r.queued == 1);
            }};
}

// ======================= Video Call =======================

endpoint_case<api::list_video_calls> case_of(api::list_video_calls) {
    return {{.page = 3, .per_page = 5},
            R"({"page":3,"per_page":5})",
            R"({"video_calls":[{"video_call_id":"V-1","title":"Demo","status":"scheduled",
                                "join_url":"https://meet.example.com/V-1","scheduled_at":"2026-11-26T10:00:00Z",
                                "duration":"45","participants":["ada@example.com","bob@example.com"]}],
                "pagination":{"page":3,"per_page":5,"total":11,"total_pages":3}})",
            [](const api::list_video_calls_response& r) {
                REQUIRE(r.video_calls.size() == 1);
                const auto& v = r.video_calls[0];
                CHECK(v.video_call_id == "V-1");
                CHECK(v.title == "Demo");
                CHECK(v.status == "scheduled");
                CHECK(v.join_url == "https://meet.example.com/V-1");
                CHECK(v.scheduled_at == "2026-11-26T10:00:00Z");
                CHECK(v.duration == 45);
                REQUIRE(v.participants);
                CHECK(v.participants->size() == 2);
                CHECK(r.pagination.page == 3);
                CHECK(r.pagination.total == 11);
            }};
}

endpoint_case<api::get_video_call> case_of(api::get_video_call) {
    return {{.video_call_id = "V-1"},
            R"({"video_call_id":"V-1"})",
            R"({"video_call":{"video_call_id":"V-1","title":"Demo","status":"ended","duration":3600,
                              "recording":{"url":"https://rec.example.com/V-1.mp4"}}})",
            [](const api::get_video_call_response& r) {
                REQUIRE(r.video_call);
                CHECK(r.video_call->status == "ended");
                CHECK(r.video_call->duration == 3600);
                CHECK(r.video_call->extra.at("recording").at("url") == "https://rec.example.com/V-1.mp4");
            }};
}

endpoint_case<api::create_video_call> case_of(api::create_video_call) {
    return {{.title = "Demo",
             .participants = std::vector<std::string>{"ada@example.com", "bob@example.com"},
             .scheduled_at = "2026-11-26T10:00:00Z"},
            R"({"title":"Demo","participants":["ada@example.com","bob@example.com"],
                "scheduled_at":"2026-11-26T10:00:00Z"})",
            R"({"video_call_id":"V-2","join_url":"https://meet.example.com/V-2"})",
            [](const api::create_video_call_response& r) {
                CHECK(r.video_call_id == "V-2");
                CHECK(r.join_url == "https://meet.example.com/V-2");
            }};
}

// ======================= Virtual Meeting =======================

endpoint_case<api::list_virtual_meetings> case_of(api::list_virtual_meetings) {
    return {{},
            "{}",
            R"({"meetings":[{"meeting_id":"M-1","title":"Standup","start_at":"2026-11-26T09:00:00Z",
                             "duration":"15","join_url":"https://meet.example.com/M-1",
                             "attendees":["ada@example.com"]}],
                "pagination":{"page":1,"per_page":20,"total":1,"total_pages":1}})",
            [](const api::list_virtual_meetings_response& r) {
                REQUIRE(r.meetings.size() == 1);
                const auto& m = r.meetings[0];
                CHECK(m.meeting_id == "M-1");
                CHECK(m.title == "Standup");
                CHECK(m.start_at == "2026-11-26T09:00:00Z");
                CHECK(m.duration == 15);
                CHECK(m.join_url == "https://meet.example.com/M-1");
                REQUIRE(m.attendees);
                CHECK(*m.attendees == std::vector<std::string>{"ada@example.com"});
            }};
}

endpoint_case<api::get_virtual_meeting> case_of(api::get_virtual_meeting) {
    return {{.meeting_id = "M-1"},
            R"({"meeting_id":"M-1"})",
            R"({"meeting":{"meeting_id":"M-1","title":"Standup","start_at":"not yet scheduled","duration":30}})",
            [](const api::get_virtual_meeting_response& r) {
                REQUIRE(r.meeting);
                CHECK(r.meeting->title == "Standup");
                // A timestamp that does not parse is still kept as sent.
                CHECK(r.meeting->start_at == "not yet scheduled");
                CHECK_FALSE(r.meeting->start_at->to_time());
                CHECK(r.meeting->duration == 30);
            }};
}

endpoint_case<api::create_virtual_meeting> case_of(api::create_virtual_meeting) {
    return {{.title = "Quarterly review",
             .start_at = "2026-12-01T15:00:00Z",
             .duration = 60,
             .attendees = std::vector<std::string>{"ada@example.com"}},
            R"({"title":"Quarterly review","start_at":"2026-12-01T15:00:00Z","duration":60,
                "attendees":["ada@example.com"]})",
            R"({"meeting_id":"M-2","join_url":"https://meet.example.com/M-2"})",
            [](const api::create_virtual_meeting_response& r) {
                CHECK(r.meeting_id == "M-2");
                CHECK(r.join_url == "https://meet.example.com/M-2");
            }};
}

// ======================= Contacts =======================

endpoint_case<api::list_contacts> case_of(api::list_contacts) {
    return {{.group_id = "G-1", .search = "ada"},
            R"({"group_id":"G-1","search":"ada"})",
            R"({"contacts":[{"contact_id":"CT-1","first_name":"Ada","last_name":"Lovelace","phone":"+2348012345678",
                             "email":"ada@example.com","group_id":"G-1","custom_fields":{"tier":"gold","visits":3},
                             "created_at":"2026-11-25T06:21:24Z","opted_out":false}],
                "pagination":{"page":1,"per_page":20,"total":1,"total_pages":1}})",
            [](const api::list_contacts_response& r) {
                REQUIRE(r.contacts.size() == 1);
                const auto& c = r.contacts[0];
                CHECK(c.contact_id == "CT-1");
                CHECK(c.first_name == "Ada");
                CHECK(c.last_name == "Lovelace");
                CHECK(c.phone == "+2348012345678");
                CHECK(c.email == "ada@example.com");
                CHECK(c.group_id == "G-1");
                REQUIRE(c.custom_fields);
                CHECK(*c.custom_fields == obj(R"({"tier":"gold","visits":3})"));
                CHECK(c.created_at == "2026-11-25T06:21:24Z");
                CHECK(c.extra.at("opted_out") == false);
            }};
}

endpoint_case<api::list_contact_groups> case_of(api::list_contact_groups) {
    return {{.page = 1},
            R"({"page":1})",
            R"({"groups":[{"group_id":"G-1","name":"VIP","contact_count":"250"},{"group_id":"G-2","name":"Trial"}],
                "pagination":{"page":1,"per_page":20,"total":2,"total_pages":1}})",
            [](const api::list_contact_groups_response& r) {
                REQUIRE(r.groups.size() == 2);
                CHECK(r.groups[0].group_id == "G-1");
                CHECK(r.groups[0].name == "VIP");
                CHECK(r.groups[0].contact_count == 250);
                CHECK_FALSE(r.groups[1].contact_count);
            }};
}

endpoint_case<api::create_contact> case_of(api::create_contact) {
    return {{.phone = "+2348012345678",
             .first_name = "Ada",
             .last_name = "Lovelace",
             .email = "ada@example.com",
             .custom_fields = obj(R"({"tier":"gold","tags":["a","b"]})")},
            R"({"phone":"+2348012345678","first_name":"Ada","last_name":"Lovelace","email":"ada@example.com",
                "custom_fields":{"tier":"gold","tags":["a","b"]}})",
            R"({"contact_id":"CT-1","duplicate":false})",
            [](const api::create_contact_response& r) {
                CHECK(r.contact_id == "CT-1");
                CHECK(r.extra.at("duplicate") == false);
            }};
}

endpoint_case<api::create_bulk_contact> case_of(api::create_bulk_contact) {
    api::create_bulk_contact_request req;
    req.contacts.push_back({.phone = "+2348012345678", .first_name = "Ada"});
    api::new_contact bo{.phone = "+2348012", .email = "bo@example.com"};
    bo.extra["nickname"] = "Bo";
    req.contacts.push_back(std::move(bo));
    req.group_id = "G-1";
    return {std::move(req),
            R"({"contacts":[{"phone":"+2348012345678","first_name":"Ada"},
                            {"phone":"+2348012","email":"bo@example.com","nickname":"Bo"}],
                "group_id":"G-1"})",
            R"({"created":"1","contact_ids":["CT-2"],
                "failed":[{"index":"1","message":"Invalid parameter: phone","code":"E_PHONE"}]})",
            [](const api::create_bulk_contact_response& r) {
                CHECK(r.created == 1);
                CHECK(r.contact_ids == std::vector<std::string>{"CT-2"});
                REQUIRE(r.failed.size() == 1);
                CHECK(r.failed[0].index == 1);
                CHECK(r.failed[0].message == "Invalid parameter: phone");
                CHECK(r.failed[0].extra.at("code") == "E_PHONE");
            }};
}

endpoint_case<api::delete_contact> case_of(api::delete_contact) {
    return {{.contact_id = "CT-1"},
            R"({"contact_id":"CT-1"})",
            R"({"contact_id":"CT-1","deleted":true})",
            [](const api::delete_contact_response& r) {
                CHECK(r.contact_id == "CT-1");
                CHECK(r.deleted == true);
            }};
}

// ======================= Leads =======================

endpoint_case<api::list_leads> case_of(api::list_leads) {
    return {{.per_page = 100, .status = "new"},
            R"({"per_page":100,"status":"new"})",
            R"({"leads":[{"lead_id":"L-9","name":"Grace","phone":"+2348012345678","email":"grace@example.com",
                          "status":"new","source":"webinar","notes":"Asked about pricing",
                          "created_at":"2026-11-25T06:21:24Z","score":"87"}],
                "pagination":{"page":1,"per_page":100,"total":1,"total_pages":1}})",
            [](const api::list_leads_response& r) {
                REQUIRE(r.leads.size() == 1);
                const auto& l = r.leads[0];
                CHECK(l.lead_id == "L-9");
                CHECK(l.name == "Grace");
                CHECK(l.phone == "+2348012345678");
                CHECK(l.email == "grace@example.com");
                CHECK(l.status == "new");
                CHECK(l.source == "webinar");
                CHECK(l.notes == "Asked about pricing");
                CHECK(l.created_at == "2026-11-25T06:21:24Z");
                CHECK(l.extra.at("score") == "87");
                CHECK(r.pagination.per_page == 100);
            }};
}

endpoint_case<api::create_lead> case_of(api::create_lead) {
    return {{.name = "Grace", .email = "grace@example.com", .source = "webinar", .notes = "Asked about pricing"},
            R"({"name":"Grace","email":"grace@example.com","source":"webinar","notes":"Asked about pricing"})",
            R"({"lead_id":"L-9"})",
            [](const api::create_lead_response& r) { CHECK(r.lead_id == "L-9"); }};
}

endpoint_case<api::update_lead> case_of(api::update_lead) {
    return {{.lead_id = "L-9", .status = "qualified"},
            R"({"lead_id":"L-9","status":"qualified"})",
            R"({"lead_id":"L-9","status":"qualified","previous_status":"new"})",
            [](const api::update_lead_response& r) {
                CHECK(r.lead_id == "L-9");
                CHECK(r.status == "qualified");
                CHECK(r.extra.at("previous_status") == "new");
            }};
}

endpoint_case<api::delete_lead> case_of(api::delete_lead) {
    return {{.lead_id = "L-9"},
            R"({"lead_id":"L-9"})",
            R"({"lead_id":"L-9","deleted":"true"})",
            [](const api::delete_lead_response& r) {
                CHECK(r.lead_id == "L-9");
                CHECK(r.deleted == true); // "true" as text is a boolean too
            }};
}

// ---------------------------------------------------------------- the runner

// What an empty request (a list endpoint: page 0) is refused with, per spec §3. getSummary and
// listTtsVoices have no rule to break.
const std::map<std::string_view, std::string_view>& refusal_of_empty_request() {
    static const std::map<std::string_view, std::string_view> m{
        {"getTicketConversation", "Missing required parameter: ticket_id"},
        {"createTicket", "Missing required parameter: subject"},
        {"addTicketReply", "Missing required parameter: ticket_id"},
        {"viewCall", "Missing required parameter: call_id"},
        {"createAutoDialerTask", "Missing required parameter: name"},
        {"createAutomatedCall", "Missing required parameter: phone_number"},
        {"getChatConversation", "Missing required parameter: chat_id"},
        {"getSocialConversation", "Missing required parameter: conversation_id"},
        {"sendSms", "Missing required parameter: recipients"},
        {"sendVoiceMessage", "Missing required parameter: recipients"},
        {"sendWhatsapp", "Missing required parameter: recipients"},
        {"getVideoCall", "Missing required parameter: video_call_id"},
        {"createVideoCall", "Missing required parameter: title"},
        {"getVirtualMeeting", "Missing required parameter: meeting_id"},
        {"createVirtualMeeting", "Missing required parameter: title"},
        {"createContact", "Missing required parameter: phone"},
        {"createBulkContact", "Missing required parameter: contacts"},
        {"deleteContact", "Missing required parameter: contact_id"},
        {"createLead", "Missing required parameter: name"},
        {"updateLead", "Missing required parameter: lead_id"},
        {"deleteLead", "Missing required parameter: lead_id"},
    };
    return m;
}

template <class T>
struct unwrap_optional {
    using type = T;
};
template <class T>
struct unwrap_optional<std::optional<T>> {
    using type = T;
};

// A value of the wrong JSON type for a member of type M: text where an object belongs, an object elsewhere
// (an object is not a string, a number, a boolean or a list, even leniently).
template <class M>
json::value wrong_value_for() {
    using T = typename unwrap_optional<M>::type;
    if constexpr (callsavvy::json_mapping::is_described_v<T> || std::is_same_v<T, json::object>) return "not an object";
    else
        return obj(R"({"unexpected":"object"})");
}

struct typed_member_failure {
    std::string member;
    callsavvy::error_code ec;
    callsavvy::diagnostics diag;
    bool empty_response = false;
};

// One endpoint through its named call (`call(client, request, [diag, token])`): a refused broken request
// (nothing sent), the success case, then every typed member of the response given a wrong-typed value.
template <class E, class Call>
void check_endpoint(Call call) {
    using response = typename E::response;
    const std::string resource(E::resource);
    INFO("endpoint " << resource);
    const endpoint_case<E> tc = case_of(E{});

    asio::io_context io;
    auto log = std::make_shared<api_log>();
    script_server server = recording_server(io, log);

    // The success answer: the case's data plus a member the catalog does not know.
    json::object data = obj(tc.data);
    data["x_added_later"] = obj(R"({"since":"v2","flags":[1,"two",null]})");
    log->replies.push_back({200, data, {}});
    // Then, for each typed member, the same data with that member of the wrong type.
    std::vector<std::string> members;
    boost::mp11::mp_for_each<boost::describe::describe_members<response, boost::describe::mod_public>>([&](auto d) {
        using M = std::remove_cvref_t<decltype(std::declval<response&>().*d.pointer)>;
        json::object bad = obj(tc.data);
        bad[d.name] = wrong_value_for<M>();
        log->replies.push_back({200, std::move(bad), {}});
        members.emplace_back(d.name);
    });

    // A broken request, if the endpoint has a rule to break.
    std::optional<typename E::request> broken;
    std::string refusal;
    if constexpr (api::is_paginated_v<E>) {
        broken.emplace();
        broken->page = 0;
        refusal = "Invalid parameter: page";
    } else if (auto it = refusal_of_empty_request().find(E::resource); it != refusal_of_empty_request().end()) {
        broken.emplace();
        refusal = it->second;
    }

    callsavvy::client c(io.get_executor(), options_for(server));
    response got;
    callsavvy::error_code refused_ec;
    callsavvy::diagnostics refused_diag;
    std::size_t requests_after_refusal = 0;
    std::size_t connections_after_refusal = 0;
    std::vector<typed_member_failure> failures;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        if (broken) {
            auto req = *broken;
            auto [ec, r] = co_await call(c, std::move(req), refused_diag, as_tuple);
            refused_ec = ec;
            requests_after_refusal = server.requests();
            connections_after_refusal = server.connections();
        }
        auto req = tc.request;
        req.extra["x_trace_id"] = "trace-" + resource;
        got = co_await call(c, std::move(req));
        for (const auto& m : members) {
            typed_member_failure f;
            f.member = m;
            auto again = tc.request;
            auto [ec, r] = co_await call(c, std::move(again), f.diag, as_tuple);
            f.ec = ec;
            f.empty_response = r.raw.empty() && r.extra.empty();
            failures.push_back(std::move(f));
        }
        c.close();
    });
    INFO("server: " << server.script_error());

    // Refused before anything was sent, with the spec's message.
    if (broken) {
        CHECK(refused_ec == error::validation_failed);
        CHECK(refused_diag.detail == refusal);
        CHECK(refused_diag.resource == resource);
        CHECK(requests_after_refusal == 0);
        CHECK(connections_after_refusal == 0);
    }

    // What arrived: one POST per call to /v1/<resource>, the body exactly as the spec names it.
    REQUIRE(log->arrivals.size() == 1 + members.size());
    json::object expected_body = obj(tc.body);
    expected_body["x_trace_id"] = "trace-" + resource;
    CHECK(log->arrivals[0].method == "POST");
    CHECK(log->arrivals[0].target == target_of(resource));
    CHECK(log->arrivals[0].body == expected_body);
    for (const auto& a : log->arrivals) CHECK(a.target == target_of(resource));

    // What came back: typed fields, unknown fields in extra (and only those), the whole data object in raw.
    CHECK(got.raw == data);
    CHECK(got.extra.at("x_added_later") == data.at("x_added_later"));
    for (const auto& m : members) {
        INFO("typed member " << m);
        CHECK_FALSE(got.extra.contains(m));
    }
    tc.check(got);

    // A typed member of the wrong type: decode_failed, naming the field; nothing half-decoded is returned.
    REQUIRE(failures.size() == members.size());
    for (const auto& f : failures) {
        INFO("typed member " << f.member << ": " << f.diag.detail);
        CHECK(f.ec == error::decode_failed);
        CHECK(f.diag.detail.starts_with("field " + f.member + ": expected "));
        CHECK(f.diag.resource == resource);
        CHECK(f.empty_response);
    }
}

} // namespace

// One test case per endpoint, each calling the endpoint's named function.
#define CALLSAVVY_ENDPOINT_TEST(name)                                                                                  \
    TEST_CASE("async_" #name ": body, target, decoded response, decode errors, refusal", "[endpoints][" #name "]") {   \
        check_endpoint<api::name>([](callsavvy::client& c, auto&&... args) {                                           \
            return c.async_##name(std::forward<decltype(args)>(args)...);                                              \
        });                                                                                                            \
    }
CALLSAVVY_API_ENDPOINTS(CALLSAVVY_ENDPOINT_TEST)
#undef CALLSAVVY_ENDPOINT_TEST

// ---------------------------------------------------------------- nested decode errors

namespace {

// The named call answered with `data_text`: decode_failed, the detail naming `path`.
template <class E, class Call>
void expect_decode_failure(Call call, std::string_view data_text, const std::string& path) {
    INFO("endpoint " << E::resource << ", path " << path);
    asio::io_context io;
    auto log = std::make_shared<api_log>();
    log->replies.push_back({200, obj(data_text), {}});
    script_server server = recording_server(io, log);
    callsavvy::client c(io.get_executor(), options_for(server));
    callsavvy::error_code ec;
    callsavvy::diagnostics diag;
    typename E::response got;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto req = case_of(E{}).request;
        auto [e, r] = co_await call(c, std::move(req), diag, as_tuple);
        ec = e;
        got = std::move(r);
        c.close();
    });
    CHECK(ec == error::decode_failed);
    CHECK(diag.detail.starts_with("field " + path + ": "));
    CHECK(diag.resource == E::resource);
    CHECK(json::parse(diag.body) == obj(data_text)); // what arrived, for the report
    CHECK(got.raw.empty());
    CHECK(log->arrivals.size() == 1);
}

} // namespace

TEST_CASE("a wrong-typed field deep in a response: decode_failed naming its path", "[endpoints][decode]") {
    SECTION("listCalls calls[1].duration") {
        expect_decode_failure<api::list_calls>(
            [](callsavvy::client& c, auto&&... a) { return c.async_list_calls(std::forward<decltype(a)>(a)...); },
            R"({"calls":[{"call_id":"C-1","duration":"93"},{"call_id":"C-2","duration":{"seconds":41}}]})",
            "calls[1].duration");
    }
    SECTION("listTickets tickets[1].created_at") {
        expect_decode_failure<api::list_tickets>(
            [](callsavvy::client& c, auto&&... a) { return c.async_list_tickets(std::forward<decltype(a)>(a)...); },
            R"({"tickets":[{"ticket_id":"T-1"},{"ticket_id":"T-2","created_at":{"unix":1795587684}}]})",
            "tickets[1].created_at");
    }
    SECTION("listTtsVoices languages[0].voices[1].gender") {
        expect_decode_failure<api::list_tts_voices>(
            [](callsavvy::client& c, auto&&... a) { return c.async_list_tts_voices(std::forward<decltype(a)>(a)...); },
            R"({"languages":[{"code":"en-US","voices":[{"voice_id":"v1"},{"voice_id":"v2","gender":["f"]}]}]})",
            "languages[0].voices[1].gender");
    }
    SECTION("getTicketConversation messages[1].attachments[0]") {
        expect_decode_failure<api::get_ticket_conversation>(
            [](callsavvy::client& c, auto&&... a) {
                return c.async_get_ticket_conversation(std::forward<decltype(a)>(a)...);
            },
            R"({"ticket":{"ticket_id":"T-1"},"messages":[{"message_id":"M-1"},{"attachments":[{"url":"x"}]}]})",
            "messages[1].attachments[0]");
    }
    SECTION("createBulkContact failed[0].index") {
        expect_decode_failure<api::create_bulk_contact>(
            [](callsavvy::client& c, auto&&... a) {
                return c.async_create_bulk_contact(std::forward<decltype(a)>(a)...);
            },
            R"({"created":1,"failed":[{"index":"first","message":"Invalid parameter: phone"}]})", "failed[0].index");
    }
    SECTION("listContactGroups pagination.total_pages") {
        expect_decode_failure<api::list_contact_groups>(
            [](callsavvy::client& c, auto&&... a) {
                return c.async_list_contact_groups(std::forward<decltype(a)>(a)...);
            },
            R"({"groups":[],"pagination":{"page":1,"total_pages":"many"}})", "pagination.total_pages");
    }
    SECTION("getVideoCall video_call.participants") {
        expect_decode_failure<api::get_video_call>(
            [](callsavvy::client& c, auto&&... a) { return c.async_get_video_call(std::forward<decltype(a)>(a)...); },
            R"({"video_call":{"video_call_id":"V-1","participants":"ada@example.com"}})", "video_call.participants");
    }
    SECTION("listContacts contacts[0].custom_fields") {
        expect_decode_failure<api::list_contacts>(
            [](callsavvy::client& c, auto&&... a) { return c.async_list_contacts(std::forward<decltype(a)>(a)...); },
            R"({"contacts":[{"contact_id":"CT-1","custom_fields":["tier","gold"]}]})", "contacts[0].custom_fields");
    }
}

// ---------------------------------------------------------------- validation through the client

namespace {

// The named call with a request that breaks a rule: validation_failed with the spec's message, and the
// server never hears of it.
template <class E, class Call>
void expect_refusal(Call call, typename E::request req, std::string_view message) {
    INFO("endpoint " << E::resource << ", expecting \"" << message << "\"");
    asio::io_context io;
    auto log = std::make_shared<api_log>();
    script_server server = recording_server(io, log);
    callsavvy::client c(io.get_executor(), options_for(server));
    callsavvy::error_code ec;
    callsavvy::diagnostics diag;
    bool threw_validation = false;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto copy = req;
        auto [e, r] = co_await call(c, std::move(copy), diag, as_tuple);
        ec = e;
        // The default token throws api_error with the same details.
        try {
            auto again = req;
            co_await call(c, std::move(again));
        } catch (const callsavvy::api_error& err) {
            threw_validation = err.code() == error::validation_failed && err.diag().detail == message;
        }
        c.close();
    });
    cstest::run_ready(io);
    CHECK(ec == error::validation_failed);
    CHECK(ec == callsavvy::condition::validation);
    CHECK(diag.detail == message);
    CHECK(diag.http_status == 0);
    CHECK(threw_validation);
    CHECK(server.connections() == 0);
    CHECK(log->arrivals.empty());
}

std::vector<std::string> phones(std::size_t n) {
    std::vector<std::string> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back("+234801" + std::to_string(1000000 + i));
    return v;
}

} // namespace

TEST_CASE("a typed call that breaks a rule completes with validation_failed and sends nothing",
          "[endpoints][validation]"){
#define NAMED(name) [](callsavvy::client& c, auto&&... a) { return c.async_##name(std::forward<decltype(a)>(a)...); }
    SECTION("sendSms message of 1601 characters"){std::string text;
for (int i = 0; i < 1601; ++i) text += "\xC3\xA9";
expect_refusal<api::send_sms>(NAMED(send_sms), {.recipients = phones(1), .message = text},
                              "Invalid parameter: message");
}
SECTION("sendSms 1001 recipients") {
    expect_refusal<api::send_sms>(NAMED(send_sms), {.recipients = phones(1001), .message = "Hi"},
                                  "Invalid parameter: recipients");
}
SECTION("sendVoiceMessage with neither message nor audio_url") {
    expect_refusal<api::send_voice_message>(NAMED(send_voice_message), {.recipients = phones(1)},
                                            "Missing required parameter: message");
}
SECTION("sendVoiceMessage with both message and audio_url") {
    expect_refusal<api::send_voice_message>(NAMED(send_voice_message),
                                            {.recipients = phones(1), .message = "Hi", .audio_url = "https://a/b.mp3"},
                                            "Invalid parameter: message");
}
SECTION("createAutoDialerTask tts without message") {
    expect_refusal<api::create_auto_dialer_task>(NAMED(create_auto_dialer_task),
                                                 {.name = "N", .numbers = phones(1), .message_type = "tts"},
                                                 "Missing required parameter: message");
}
SECTION("createAutoDialerTask audio without audio_url") {
    expect_refusal<api::create_auto_dialer_task>(NAMED(create_auto_dialer_task),
                                                 {.name = "N", .numbers = phones(1), .message_type = "audio"},
                                                 "Missing required parameter: audio_url");
}
SECTION("createAutoDialerTask 1001 numbers") {
    expect_refusal<api::create_auto_dialer_task>(NAMED(create_auto_dialer_task),
                                                 {.name = "N", .numbers = phones(1001), .message_type = "agent"},
                                                 "Invalid parameter: numbers");
}
SECTION("createLead with neither phone nor email") {
    expect_refusal<api::create_lead>(NAMED(create_lead), {.name = "Grace"}, "Missing required parameter: phone");
}
SECTION("createBulkContact contacts[2] without phone") {
    api::create_bulk_contact_request r;
    r.contacts = {{.phone = "+1"}, {.phone = "+2"}, {.first_name = "No phone"}};
    expect_refusal<api::create_bulk_contact>(NAMED(create_bulk_contact), std::move(r),
                                             "Missing required parameter: contacts[2].phone");
}
SECTION("createBulkContact 501 contacts") {
    api::create_bulk_contact_request r;
    r.contacts.resize(501, api::new_contact{.phone = "+1"});
    expect_refusal<api::create_bulk_contact>(NAMED(create_bulk_contact), std::move(r), "Invalid parameter: contacts");
}
SECTION("createTicket with an empty subject and an unknown priority") {
    expect_refusal<api::create_ticket>(NAMED(create_ticket),
                                       {.subject = "", .message = "M", .sender_email = "a@example.com"},
                                       "Missing required parameter: subject");
    expect_refusal<api::create_ticket>(
        NAMED(create_ticket), {.subject = "S", .message = "M", .sender_email = "a@example.com", .priority = "critical"},
        "Invalid parameter: priority");
}
SECTION("listUsers role, listCalls direction, listSocial platform") {
    expect_refusal<api::list_users>(NAMED(list_users), {.role = "owner"}, "Invalid parameter: role");
    expect_refusal<api::list_calls>(NAMED(list_calls), {.direction = "incoming"}, "Invalid parameter: direction");
    expect_refusal<api::list_social>(NAMED(list_social), {.platform = "tiktok"}, "Invalid parameter: platform");
}
SECTION("listTickets per_page 101 and 0") {
    expect_refusal<api::list_tickets>(NAMED(list_tickets), {.per_page = 101}, "Invalid parameter: per_page");
    expect_refusal<api::list_tickets>(NAMED(list_tickets), {.per_page = 0}, "Invalid parameter: per_page");
}
#undef NAMED
}

TEST_CASE("validate_requests = false sends a request that breaks a rule; the server decides",
          "[endpoints][validation]") {
    asio::io_context io;
    auto log = std::make_shared<api_log>();
    log->replies.push_back({400, {}, "Invalid parameter: message"});
    log->replies.push_back({200, obj(R"({"lead_id":"L-10"})"), {}});
    script_server server = recording_server(io, log);
    auto o = options_for(server);
    o.validate_requests = false;
    callsavvy::client c(io.get_executor(), o);
    callsavvy::error_code voice_ec;
    callsavvy::diagnostics voice_diag;
    std::optional<std::string> lead_id;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        api::send_voice_message_request both{
            .recipients = {"+2348012345678"}, .message = "Hi", .audio_url = "https://cdn.example.com/a.mp3"};
        auto [ec, r] = co_await c.async_send_voice_message(std::move(both), voice_diag, as_tuple);
        voice_ec = ec;
        // A more permissive server may take what the spec forbids.
        api::create_lead_request no_contact{.name = "Grace"};
        auto lead = co_await c.async_create_lead(std::move(no_contact));
        lead_id = lead.lead_id;
        c.close();
    });
    REQUIRE(log->arrivals.size() == 2);
    CHECK(log->arrivals[0].target == "/v1/sendVoiceMessage");
    CHECK(log->arrivals[0].body == obj(R"({"recipients":["+2348012345678"],"message":"Hi",
                                            "audio_url":"https://cdn.example.com/a.mp3"})"));
    CHECK(voice_ec == error::bad_request);
    CHECK(voice_diag.http_status == 400);
    CHECK(voice_diag.server_message == "Invalid parameter: message");
    CHECK(log->arrivals[1].target == "/v1/createLead");
    CHECK(log->arrivals[1].body == obj(R"({"name":"Grace"})"));
    CHECK(lead_id == "L-10");
}

// ---------------------------------------------------------------- pagination

namespace {

// Page `page` of a 3-page ticket list, 2 tickets a page, with the server's pagination (as numeric strings).
json::object ticket_page(std::int64_t page, bool with_pagination) {
    json::object data;
    json::array tickets;
    if (page >= 1 && page <= 3) {
        for (std::int64_t i = 1; i <= 2; ++i) {
            json::object t;
            t["ticket_id"] = "T-" + std::to_string(page) + "-" + std::to_string(i);
            tickets.push_back(std::move(t));
        }
    }
    data["tickets"] = std::move(tickets);
    if (with_pagination) {
        data["pagination"] = obj(R"({"per_page":"2","total":"6","total_pages":"3"})");
        data["pagination"].as_object()["page"] = std::to_string(page);
    }
    return data;
}

std::int64_t page_of(const arrival& a) { return a.body.as_object().at("page").as_int64(); }

} // namespace

TEST_CASE("paginate walks every page of a list to total_pages, one request per page", "[endpoints][pagination]") {
    asio::io_context io;
    auto log = std::make_shared<api_log>();
    log->answer = [](const arrival& a) { return reply{200, ticket_page(page_of(a), true), {}}; };
    script_server server = recording_server(io, log);
    callsavvy::client c(io.get_executor(), options_for(server));
    std::vector<std::string> ids;
    int pages_seen = 0;
    bool done_after_walk = false;
    std::size_t requests_after_walk = 0;
    bool next_after_end = true;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        api::list_tickets_request first{.per_page = 2, .status = "open"};
        auto pages = callsavvy::paginate(c, api::list_tickets{}, std::move(first));
        for (;;) {
            auto page = co_await pages.next();
            if (!page) break;
            ++pages_seen;
            CHECK(page->pagination.page == pages_seen);
            for (const auto& t : page->tickets) ids.push_back(t.ticket_id.value_or("?"));
        }
        done_after_walk = pages.done();
        requests_after_walk = log->arrivals.size();
        auto more = co_await pages.next(); // after the end: nothing, and no request
        next_after_end = more.has_value();
        c.close();
    });
    CHECK(pages_seen == 3);
    CHECK(ids == std::vector<std::string>{"T-1-1", "T-1-2", "T-2-1", "T-2-2", "T-3-1", "T-3-2"});
    CHECK(done_after_walk);
    CHECK_FALSE(next_after_end);
    REQUIRE(log->arrivals.size() == 3);
    CHECK(requests_after_walk == 3);
    for (std::size_t i = 0; i < log->arrivals.size(); ++i) {
        INFO("request " << i + 1);
        // Every page repeats the first request's filters, with its own page number.
        const auto page = static_cast<std::int64_t>(i + 1);
        json::object expected = obj(R"({"per_page":2,"status":"open"})");
        expected["page"] = page;
        CHECK(log->arrivals[i].target == "/v1/listTickets");
        CHECK(log->arrivals[i].body == expected);
    }
}

TEST_CASE("paginate without pagination from the server stops at the first empty page", "[endpoints][pagination]") {
    asio::io_context io;
    auto log = std::make_shared<api_log>();
    log->answer = [](const arrival& a) {
        // Pages 1 and 2 have contacts, page 3 is past the end; no "pagination" object at all.
        const std::int64_t page = page_of(a);
        json::object data;
        json::array contacts;
        if (page <= 2) contacts.push_back(obj(R"({"contact_id":"CT-)" + std::to_string(page) + R"("})"));
        data["contacts"] = std::move(contacts);
        return reply{200, std::move(data), {}};
    };
    script_server server = recording_server(io, log);
    callsavvy::client c(io.get_executor(), options_for(server));
    std::vector<std::string> ids;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        auto pages = callsavvy::paginate(c, api::list_contacts{});
        for (;;) {
            auto page = co_await pages.next();
            if (!page) break;
            CHECK_FALSE(page->pagination.total_pages);
            for (const auto& ct : page->contacts) ids.push_back(ct.contact_id.value_or("?"));
        }
        CHECK(pages.done());
        c.close();
    });
    CHECK(ids == std::vector<std::string>{"CT-1", "CT-2"});
    REQUIRE(log->arrivals.size() == 3);
    CHECK(page_of(log->arrivals[0]) == 1);
    CHECK(page_of(log->arrivals[1]) == 2);
    CHECK(page_of(log->arrivals[2]) == 3);
}

TEST_CASE("paginate: cancelling the walk while page 2 is in flight requests no further page",
          "[endpoints][pagination]") {
    using namespace asio::experimental::awaitable_operators;
    asio::io_context io;
    // Fires when page 2's request has reached the server, which then never answers it.
    asio::steady_timer page_two_arrived(io, asio::steady_timer::time_point::max());
    auto log = std::make_shared<api_log>();
    script_server server(io.get_executor(), [&, log](peer& p) -> asio::awaitable<void> {
        while (auto req = co_await p.read_request()) {
            arrival a{req->method, req->target, json::parse(req->body)};
            const std::int64_t page = page_of(a);
            log->arrivals.push_back(std::move(a));
            if (page == 1) {
                co_await p.respond(200, callsavvy::make_success_envelope("listTickets", ticket_page(1, true)));
            } else {
                page_two_arrived.cancel();
            }
        }
        log->client_closed = true;
    });
    callsavvy::client c(io.get_executor(), options_for(server));
    std::vector<std::string> ids;
    std::optional<callsavvy::error_code> walk_error;
    std::size_t winner = 99;
    bool done_after_cancel = true;
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        api::list_tickets_request first{.per_page = 2};
        auto pages = callsavvy::paginate(c, api::list_tickets{}, std::move(first));
        auto walk = [&]() -> asio::awaitable<void> {
            try {
                for (;;) {
                    auto page = co_await pages.next();
                    if (!page) break;
                    for (const auto& t : page->tickets) ids.push_back(t.ticket_id.value_or("?"));
                }
            } catch (const callsavvy::api_error& e) {
                walk_error = e.code();
                throw;
            }
        };
        auto until_page_two = [&]() -> asio::awaitable<void> {
            auto [ec] = co_await page_two_arrived.async_wait(as_tuple);
            (void)ec;
        };
        // The application's own race: whichever finishes first cancels the other (terminal cancellation).
        auto result = co_await (walk() || until_page_two());
        winner = result.index();
        done_after_cancel = pages.done();
    });
    // The client closed the connection of the abandoned request; give the server the moment to see it.
    cstest::run_until(
        io, [&] { return log->client_closed; }, 5s, "the server to see the connection closed");
    INFO("server: " << server.script_error());
    CHECK(winner == 1);
    REQUIRE(walk_error);
    CHECK(*walk_error == asio::error::operation_aborted);
    CHECK(ids == std::vector<std::string>{"T-1-1", "T-1-2"});
    CHECK_FALSE(done_after_cancel);
    REQUIRE(log->arrivals.size() == 2); // page 1 and page 2, never page 3
    CHECK(page_of(log->arrivals[0]) == 1);
    CHECK(page_of(log->arrivals[1]) == 2);
    c.close();
}

TEST_CASE("paginate: a cancellation that arrives between pages ends the walk before the next request",
          "[endpoints][pagination]") {
    // Asio's coroutines throw system_error(operation_aborted) at the caller's next co_await once cancelled;
    // a caller that turned that off (throw_if_cancelled(false)) gets the pager's own api_error instead.
    for (const bool asio_throws : {true, false}) {
        DYNAMIC_SECTION((asio_throws ? "Asio throws at co_await" : "throw_if_cancelled(false)")) {
            asio::io_context io;
            auto log = std::make_shared<api_log>();
            script_server server(io.get_executor(), [&, log](peer& p) -> asio::awaitable<void> {
                while (auto req = co_await p.read_request()) {
                    arrival a{req->method, req->target, json::parse(req->body)};
                    const std::int64_t page = page_of(a);
                    log->arrivals.push_back(std::move(a));
                    co_await p.respond(200, callsavvy::make_success_envelope("listTickets", ticket_page(page, true)));
                }
            });
            callsavvy::client c(io.get_executor(), options_for(server));
            std::vector<std::string> ids;
            std::optional<callsavvy::error_code> walk_error;
            std::string walk_what;
            bool was_api_error = false;
            asio::cancellation_signal sig;
            bool walk_ended = false;
            auto walk = [&]() -> asio::awaitable<void> {
                if (!asio_throws) co_await asio::this_coro::throw_if_cancelled(false);
                api::list_tickets_request first{.per_page = 2};
                auto pages = callsavvy::paginate(c, api::list_tickets{}, std::move(first));
                try {
                    for (;;) {
                        auto page = co_await pages.next();
                        if (!page) break;
                        for (const auto& t : page->tickets) ids.push_back(t.ticket_id.value_or("?"));
                        // The application decides to stop while it works on page 1: nothing is waiting then.
                        if (ids.size() == 2) sig.emit(asio::cancellation_type::terminal);
                    }
                } catch (const callsavvy::api_error& e) {
                    was_api_error = true;
                    walk_error = e.code();
                    walk_what = e.what();
                } catch (const callsavvy::system_error& e) {
                    walk_error = e.code();
                    walk_what = e.what();
                }
                walk_ended = true;
            };
            asio::co_spawn(io, walk(), asio::bind_cancellation_slot(sig.slot(), asio::detached));
            cstest::run_until(
                io, [&] { return walk_ended; }, 5s, "the walk to end");
            INFO(walk_what);
            REQUIRE(walk_error);
            CHECK(*walk_error == asio::error::operation_aborted);
            CHECK(was_api_error == !asio_throws);
            if (!asio_throws) CHECK(walk_what.find("cancelled before page 2") != std::string::npos);
            CHECK(ids == std::vector<std::string>{"T-1-1", "T-1-2"});
            REQUIRE(log->arrivals.size() == 1); // page 1 only: page 2 was never asked for
            c.close();
        }
    }
}

TEST_CASE("retry safety follows spec §2: getSummary, every list*, every get*, viewCall, listTtsVoices are "
          "read-only, nothing else",
          "[endpoints]") {
    // Written from the spec's words, not from the catalog: a state-changing endpoint marked read-only would
    // be re-sent after a lost answer.
    const auto spec_read_only = [](std::string_view r) {
        return r == "getSummary" || r.starts_with("list") || r.starts_with("get") || r == "viewCall" ||
               r == "listTtsVoices";
    };
    std::size_t read_only = 0;
    for (const auto& e : api::catalog()) {
        INFO(e.resource);
        CHECK(e.read_only == spec_read_only(e.resource));
        CHECK(callsavvy::api::is_read_only(e.resource) == e.read_only);
        read_only += e.read_only ? 1 : 0;
        // A list endpoint names its collection; nothing else does.
        CHECK(e.collection.empty() == !e.resource.starts_with("list"));
    }
    CHECK(read_only == 20);
    CHECK_FALSE(callsavvy::api::is_read_only("createTicket"));
    CHECK_FALSE(callsavvy::api::is_read_only("notInTheCatalog"));
}

// ---------------------------------------------------------------- the catalog behind the named calls

TEST_CASE("the named calls cover the catalog: 35 endpoints, each resource once", "[endpoints]") {
    std::vector<std::string_view> named;
#define CALLSAVVY_COLLECT(name) named.push_back(api::name::resource);
    CALLSAVVY_API_ENDPOINTS(CALLSAVVY_COLLECT)
#undef CALLSAVVY_COLLECT
    REQUIRE(named.size() == 35);
    const auto all = api::catalog();
    REQUIRE(all.size() == 35);
    for (std::size_t i = 0; i < all.size(); ++i) {
        INFO(named[i]);
        CHECK(all[i].resource == named[i]);
        CHECK(api::find_endpoint(named[i]) == &all[i]);
    }
    std::vector<std::string_view> sorted = named;
    std::sort(sorted.begin(), sorted.end());
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
}

// Every one of the 35 endpoints, called through the typed client's named calls against the mock Callsavvy
// server, with the state checked across calls: what is created is listed and fetched afterwards, deletes
// delete, pagination walks every page, ids are unique. Client and mock share the test's io_context.
#include <callsavvy/client.hpp>
#include <callsavvy/contacts.hpp>
#include <callsavvy/testing/mock_server.hpp>

#include "support/mock_client.hpp"
#include "support/run.hpp"

#include "support/asio.hpp"
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace api = callsavvy::api;
namespace mock = callsavvy::testing;
namespace json = boost::json;

namespace {

mock::mock_options mock_opts() {
    mock::mock_options o;
    o.rate_limits.enabled = false; // these tests make more calls per endpoint than the documented 50 a minute
    return o;
}

callsavvy::client_options client_opts(const mock::mock_server& m) {
    callsavvy::client_options o = cstest::mock_client_options(m);
    o.jitter_seed = 11;
    return o;
}

// The io_context first (the mock's and the client's sockets belong to it), the client last (closed first).
struct fixture {
    asio::io_context io;
    mock::mock_server server{io.get_executor(), mock_opts()};
    callsavvy::client c{io.get_executor(), client_opts(server)};

    void run(std::function<asio::awaitable<void>()> body) { cstest::run_test(io, std::move(body), 30s); }
    std::set<std::string> resources_called() const {
        std::set<std::string> out;
        for (const auto& e : server.journal()) out.insert(e.resource);
        return out;
    }
};

// A failed call as the client reports it (the api_error's status and the server's message).
struct failure {
    bool failed = false;
    int status = 0;
    std::string message;
    callsavvy::error_code ec;
};

template <class Awaitable>
asio::awaitable<failure> expect_failure(Awaitable a) {
    failure f;
    try {
        co_await std::move(a);
    } catch (const callsavvy::api_error& e) {
        f.failed = true;
        f.status = e.http_status();
        f.message = e.server_message();
        f.ec = e.code();
    }
    co_return f;
}

} // namespace

TEST_CASE("mock endpoints: account summary, departments, categories and users", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        auto summary = co_await f.c.async_get_summary(api::get_summary_request());
        CHECK(summary.assigned_number == "+2348000000000");
        CHECK(summary.business_id == "B-1");
        CHECK(summary.business_name.has_value());
        CHECK(summary.balance.has_value());

        auto deps = co_await f.c.async_list_departments(api::list_departments_request());
        REQUIRE(deps.departments.size() == 2);
        CHECK(deps.departments[0].department_id == "D1");
        CHECK(deps.departments[1].name == "Sales");
        CHECK(deps.pagination.total == 2);
        CHECK(deps.pagination.page == 1);
        CHECK(deps.pagination.per_page == 20);
        CHECK(deps.pagination.total_pages == 1);

        api::list_request_categories_request cr;
        cr.department_id = "D1";
        auto d1 = co_await f.c.async_list_request_categories(std::move(cr));
        REQUIRE(d1.categories.size() == 2);
        for (const auto& cat : d1.categories) CHECK(cat.department_id == "D1");
        CHECK(d1.pagination.total == 2);
        api::list_request_categories_request cr2;
        cr2.department_id = "D2";
        auto d2 = co_await f.c.async_list_request_categories(std::move(cr2));
        REQUIRE(d2.categories.size() == 1);
        CHECK(d2.categories[0].category_id == "C3");
        auto all_categories = co_await f.c.async_list_request_categories(api::list_request_categories_request());
        CHECK(all_categories.categories.size() == 3);

        api::list_users_request ur;
        ur.role = "admin";
        auto admins = co_await f.c.async_list_users(std::move(ur));
        REQUIRE(admins.users.size() == 1);
        CHECK(admins.users[0].user_id == "U1");
        CHECK(admins.users[0].role == "admin");
        api::list_users_request ur2;
        ur2.role = "agent";
        auto agents = co_await f.c.async_list_users(std::move(ur2));
        REQUIRE(agents.users.size() == 1);
        CHECK(agents.users[0].user_id == "U2");
        auto users = co_await f.c.async_list_users(api::list_users_request());
        CHECK(users.users.size() == 2);
        CHECK(users.pagination.total == 2);
    });
    CHECK(f.server.journal().size() == 8);
}

TEST_CASE("mock endpoints: tickets are created, listed, read and replied to", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        auto empty = co_await f.c.async_list_tickets(api::list_tickets_request());
        CHECK(empty.tickets.empty());
        CHECK(empty.pagination.total == 0);

        api::create_ticket_request tr{.subject = "Printer on fire",
                                      .message = "It is on fire.",
                                      .sender_email = "ops@example.com",
                                      .sender_name = "Ops",
                                      .department_id = "D1",
                                      .priority = "urgent"};
        auto created = co_await f.c.async_create_ticket(std::move(tr));
        REQUIRE(created.ticket_id.has_value());
        CHECK(created.status == "open");
        const std::string id = *created.ticket_id;

        api::create_ticket_request tr2{.subject = "Second", .message = "Another one", .sender_email = "b@example.com"};
        auto second = co_await f.c.async_create_ticket(std::move(tr2));
        REQUIRE(second.ticket_id.has_value());
        CHECK(*second.ticket_id != id);

        auto listed = co_await f.c.async_list_tickets(api::list_tickets_request());
        REQUIRE(listed.tickets.size() == 2);
        CHECK(listed.pagination.total == 2);
        CHECK(listed.tickets[0].ticket_id == id);
        CHECK(listed.tickets[0].subject == "Printer on fire");
        CHECK(listed.tickets[0].priority == "urgent");
        CHECK(listed.tickets[0].status == "open");
        CHECK(listed.tickets[0].department_id == "D1");
        CHECK(listed.tickets[1].priority == "normal"); // the default

        api::list_tickets_request by_dep;
        by_dep.department_id = "D1";
        auto d1 = co_await f.c.async_list_tickets(std::move(by_dep));
        REQUIRE(d1.tickets.size() == 1);
        CHECK(d1.tickets[0].ticket_id == id);
        api::list_tickets_request closed;
        closed.status = "closed";
        auto none = co_await f.c.async_list_tickets(std::move(closed));
        CHECK(none.tickets.empty());
        // from_date / to_date bound created_at by its date, both ends included.
        api::list_tickets_request since_2000;
        since_2000.from_date = "2000-01-01";
        const auto since = co_await f.c.async_list_tickets(std::move(since_2000));
        CHECK(since.tickets.size() == 2);
        api::list_tickets_request until_2000;
        until_2000.to_date = "2000-01-01";
        const auto until = co_await f.c.async_list_tickets(std::move(until_2000));
        CHECK(until.tickets.empty());

        api::get_ticket_conversation_request gr{.ticket_id = id};
        auto conv = co_await f.c.async_get_ticket_conversation(std::move(gr));
        REQUIRE(conv.ticket.has_value());
        CHECK(conv.ticket->ticket_id == id);
        CHECK(conv.ticket->sender_email == "ops@example.com");
        REQUIRE(conv.messages.size() == 1);
        CHECK(conv.messages[0].body == "It is on fire.");
        CHECK(conv.messages[0].sender == "Ops");

        api::add_ticket_reply_request rr{.ticket_id = id, .message = "Extinguisher on its way", .user_id = "U2"};
        auto reply = co_await f.c.async_add_ticket_reply(std::move(rr));
        CHECK(reply.ticket_id == id);
        REQUIRE(reply.message_id.has_value());

        api::get_ticket_conversation_request gr2{.ticket_id = id};
        auto conv2 = co_await f.c.async_get_ticket_conversation(std::move(gr2));
        REQUIRE(conv2.messages.size() == 2);
        CHECK(conv2.messages[1].message_id == *reply.message_id);
        CHECK(conv2.messages[1].body == "Extinguisher on its way");
        CHECK(conv2.messages[1].sender == "U2");
        CHECK(conv2.messages[0].message_id != conv2.messages[1].message_id);

        // The other ticket's conversation is its own.
        api::get_ticket_conversation_request gr3{.ticket_id = *second.ticket_id};
        auto conv3 = co_await f.c.async_get_ticket_conversation(std::move(gr3));
        REQUIRE(conv3.messages.size() == 1);
        CHECK(conv3.messages[0].body == "Another one");

        api::get_ticket_conversation_request missing{.ticket_id = "T-nope"};
        const failure nf = co_await expect_failure(f.c.async_get_ticket_conversation(std::move(missing)));
        CHECK(nf.failed);
        CHECK(nf.status == 404);
        CHECK(nf.message == "Ticket not found");
        CHECK(nf.ec == callsavvy::error::not_found);

        api::add_ticket_reply_request orphan{.ticket_id = "T-nope", .message = "hello?"};
        const failure nf2 = co_await expect_failure(f.c.async_add_ticket_reply(std::move(orphan)));
        CHECK(nf2.status == 404);
        CHECK(nf2.message == "Ticket not found");
    });
    CHECK(f.server.collection("tickets").size() == 2);
}

TEST_CASE("mock endpoints: voice calls, automated calls, auto-dialer tasks and TTS voices", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        auto before = co_await f.c.async_list_calls(api::list_calls_request());
        REQUIRE(before.calls.size() == 1); // the seeded incoming call
        CHECK(before.calls[0].call_id == "CALL1");
        CHECK(before.calls[0].direction == "Incoming");
        CHECK(before.calls[0].duration == 65);

        api::create_automated_call_request ar{.phone_number = "+2348011111111", .message = "Your order shipped"};
        auto made = co_await f.c.async_create_automated_call(std::move(ar));
        REQUIRE(made.call_id.has_value());
        CHECK(made.status == "queued");

        auto after = co_await f.c.async_list_calls(api::list_calls_request());
        REQUIRE(after.calls.size() == 2);
        CHECK(after.pagination.total == 2);
        CHECK(after.calls[1].call_id == *made.call_id);

        api::list_calls_request outgoing;
        outgoing.direction = "Outgoing";
        auto out = co_await f.c.async_list_calls(std::move(outgoing));
        REQUIRE(out.calls.size() == 1);
        CHECK(out.calls[0].call_id == *made.call_id);

        // The seeded call started on 2026-11-24; the one just made started today.
        api::list_calls_request on_seed_day;
        on_seed_day.from_date = "2026-11-24";
        on_seed_day.to_date = "2026-11-24";
        auto seed_day = co_await f.c.async_list_calls(std::move(on_seed_day));
        REQUIRE(seed_day.calls.size() == 1);
        CHECK(seed_day.calls[0].call_id == "CALL1");
        api::list_calls_request after_seed_day;
        after_seed_day.from_date = "2026-11-25";
        auto recent = co_await f.c.async_list_calls(std::move(after_seed_day));
        REQUIRE(recent.calls.size() == 1);
        CHECK(recent.calls[0].call_id == *made.call_id);
        CHECK(out.calls[0].caller_number == "+2348011111111");

        api::view_call_request vr{.call_id = *made.call_id};
        auto viewed = co_await f.c.async_view_call(std::move(vr));
        REQUIRE(viewed.call.has_value());
        CHECK(viewed.call->call_id == *made.call_id);
        CHECK(viewed.call->direction == "Outgoing");
        CHECK(viewed.call->status == "queued");

        api::view_call_request seeded{.call_id = "CALL1"};
        auto call1 = co_await f.c.async_view_call(std::move(seeded));
        REQUIRE(call1.call.has_value());
        CHECK(call1.call->recording_url == "https://recordings.example/CALL1.mp3");

        api::view_call_request missing{.call_id = "CALL-nope"};
        const failure nf = co_await expect_failure(f.c.async_view_call(std::move(missing)));
        CHECK(nf.status == 404);
        CHECK(nf.message == "Call not found");

        auto voices = co_await f.c.async_list_tts_voices(api::list_tts_voices_request());
        REQUIRE(voices.languages.size() == 2);
        CHECK(voices.languages[0].code == "en-US");
        REQUIRE(voices.languages[0].voices.has_value());
        CHECK(voices.languages[0].voices->size() == 2);
        CHECK((*voices.languages[0].voices)[1].gender == "male");

        api::create_auto_dialer_task_request dr{.name = "Reminders",
                                                .numbers = {"+2348000000001", "+2348000000002", "+2348000000003"},
                                                .message_type = "tts",
                                                .message = "Your appointment is tomorrow"};
        auto task = co_await f.c.async_create_auto_dialer_task(std::move(dr));
        REQUIRE(task.task_id.has_value());
        CHECK(task.queued == 3);
        api::create_auto_dialer_task_request dr2{
            .name = "Agents", .numbers = {"+2348000000009"}, .message_type = "agent"};
        auto task2 = co_await f.c.async_create_auto_dialer_task(std::move(dr2));
        CHECK(task2.queued == 1);
        CHECK(task2.task_id != task.task_id);
    });
    CHECK(f.server.collection("dialer_tasks").size() == 2);
}

TEST_CASE("mock endpoints: chats and social conversations", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        auto chats = co_await f.c.async_list_chats(api::list_chats_request());
        REQUIRE(chats.chats.size() == 1);
        CHECK(chats.chats[0].chat_id == "CH1");
        CHECK(chats.chats[0].visitor_name == "Vera");
        api::list_chats_request open;
        open.status = "open";
        auto open_chats = co_await f.c.async_list_chats(std::move(open));
        CHECK(open_chats.chats.size() == 1);
        api::list_chats_request closed;
        closed.status = "closed";
        auto closed_chats = co_await f.c.async_list_chats(std::move(closed));
        CHECK(closed_chats.chats.empty());
        CHECK(closed_chats.pagination.total == 0);

        api::get_chat_conversation_request cr{.chat_id = "CH1"};
        auto conv = co_await f.c.async_get_chat_conversation(std::move(cr));
        REQUIRE(conv.chat.has_value());
        CHECK(conv.chat->status == "open");
        REQUIRE(conv.messages.size() == 1);
        CHECK(conv.messages[0].body == "Hello");

        api::get_chat_conversation_request missing{.chat_id = "CH-nope"};
        const failure nf = co_await expect_failure(f.c.async_get_chat_conversation(std::move(missing)));
        CHECK(nf.status == 404);
        CHECK(nf.message == "Chat not found");

        api::list_social_request wa;
        wa.platform = "whatsapp";
        auto social = co_await f.c.async_list_social(std::move(wa));
        REQUIRE(social.conversations.size() == 1);
        CHECK(social.conversations[0].conversation_id == "S1");
        CHECK(social.conversations[0].platform == "whatsapp");
        api::list_social_request fb;
        fb.platform = "facebook";
        auto none = co_await f.c.async_list_social(std::move(fb));
        CHECK(none.conversations.empty());

        api::get_social_conversation_request sr{.conversation_id = "S1"};
        auto sconv = co_await f.c.async_get_social_conversation(std::move(sr));
        REQUIRE(sconv.conversation.has_value());
        CHECK(sconv.conversation->contact_name == "Sam");
        REQUIRE(sconv.messages.size() == 1);
        CHECK(sconv.messages[0].body == "Thanks!");

        api::get_social_conversation_request smissing{.conversation_id = "S-nope"};
        const failure nf2 = co_await expect_failure(f.c.async_get_social_conversation(std::move(smissing)));
        CHECK(nf2.status == 404);
        CHECK(nf2.message == "Conversation not found");
    });
}

TEST_CASE("mock endpoints: campaigns queue one message per recipient", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        api::send_sms_request sms{.recipients = {"+2348000000001", "+2348000000002", "+2348000000003"},
                                  .message = "Sale today"};
        auto s = co_await f.c.async_send_sms(std::move(sms));
        REQUIRE(s.campaign_id.has_value());
        CHECK(s.queued == 3);

        api::send_voice_message_request voice{.recipients = {"+2348000000001", "+2348000000002"},
                                              .message = "Hello from the mock"};
        auto v = co_await f.c.async_send_voice_message(std::move(voice));
        REQUIRE(v.campaign_id.has_value());
        CHECK(v.queued == 2);

        api::send_voice_message_request audio{.recipients = {"+2348000000004"},
                                              .audio_url = "https://audio.example/a.mp3"};
        auto a = co_await f.c.async_send_voice_message(std::move(audio));
        CHECK(a.queued == 1);

        api::send_whatsapp_request wa{
            .recipients = {"+2348000000005"}, .message = "Hi", .media_url = "https://m.example/x.png"};
        auto w = co_await f.c.async_send_whatsapp(std::move(wa));
        REQUIRE(w.campaign_id.has_value());
        CHECK(w.queued == 1);

        const std::set<std::string> ids{*s.campaign_id, *v.campaign_id, *a.campaign_id, *w.campaign_id};
        CHECK(ids.size() == 4);
    });
    const auto& campaigns = f.server.collection("campaigns");
    REQUIRE(campaigns.size() == 4);
    CHECK(campaigns[0].at("channel") == "sms");
    CHECK(campaigns[0].at("queued").to_number<std::int64_t>() == 3);
    CHECK(campaigns[1].at("channel") == "voice");
    CHECK(campaigns[3].at("channel") == "whatsapp");
}

TEST_CASE("mock endpoints: video calls and virtual meetings are created, listed and fetched", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        auto no_calls = co_await f.c.async_list_video_calls(api::list_video_calls_request());
        CHECK(no_calls.video_calls.empty());

        api::create_video_call_request vr{.title = "Standup",
                                          .participants = std::vector<std::string>{"a@example.com", "b@example.com"},
                                          .scheduled_at = "2026-11-25T09:00:00Z"};
        auto vc = co_await f.c.async_create_video_call(std::move(vr));
        REQUIRE(vc.video_call_id.has_value());
        REQUIRE(vc.join_url.has_value());
        api::create_video_call_request vr2{.title = "Retro"};
        auto vc2 = co_await f.c.async_create_video_call(std::move(vr2));
        REQUIRE(vc2.video_call_id.has_value());
        CHECK(*vc2.video_call_id != *vc.video_call_id);

        auto calls = co_await f.c.async_list_video_calls(api::list_video_calls_request());
        REQUIRE(calls.video_calls.size() == 2);
        CHECK(calls.pagination.total == 2);
        CHECK(calls.video_calls[0].title == "Standup");
        CHECK(calls.video_calls[1].title == "Retro");

        api::get_video_call_request gr{.video_call_id = *vc.video_call_id};
        auto got = co_await f.c.async_get_video_call(std::move(gr));
        REQUIRE(got.video_call.has_value());
        CHECK(got.video_call->title == "Standup");
        CHECK(got.video_call->join_url == *vc.join_url);
        CHECK(got.video_call->status == "scheduled");
        REQUIRE(got.video_call->participants.has_value());
        CHECK(got.video_call->participants->size() == 2);
        REQUIRE(got.video_call->scheduled_at.has_value());
        CHECK(got.video_call->scheduled_at->str() == "2026-11-25T09:00:00Z");

        api::get_video_call_request missing{.video_call_id = "VC-nope"};
        const failure nf = co_await expect_failure(f.c.async_get_video_call(std::move(missing)));
        CHECK(nf.status == 404);
        CHECK(nf.message == "Video call not found");

        auto no_meetings = co_await f.c.async_list_virtual_meetings(api::list_virtual_meetings_request());
        CHECK(no_meetings.meetings.empty());
        api::create_virtual_meeting_request mr{.title = "Board", .start_at = "2026-12-01T10:00:00Z"};
        auto mt = co_await f.c.async_create_virtual_meeting(std::move(mr));
        REQUIRE(mt.meeting_id.has_value());
        api::create_virtual_meeting_request mr2{.title = "Review",
                                                .start_at = "2026-12-02T10:00:00Z",
                                                .duration = 90,
                                                .attendees = std::vector<std::string>{"c@example.com"}};
        auto mt2 = co_await f.c.async_create_virtual_meeting(std::move(mr2));
        REQUIRE(mt2.meeting_id.has_value());

        auto meetings = co_await f.c.async_list_virtual_meetings(api::list_virtual_meetings_request());
        REQUIRE(meetings.meetings.size() == 2);
        CHECK(meetings.meetings[0].meeting_id == *mt.meeting_id);

        api::get_virtual_meeting_request gm{.meeting_id = *mt.meeting_id};
        auto m1 = co_await f.c.async_get_virtual_meeting(std::move(gm));
        REQUIRE(m1.meeting.has_value());
        CHECK(m1.meeting->title == "Board");
        CHECK(m1.meeting->duration == 30); // the documented default
        CHECK(m1.meeting->join_url == mt.join_url);
        api::get_virtual_meeting_request gm2{.meeting_id = *mt2.meeting_id};
        auto m2 = co_await f.c.async_get_virtual_meeting(std::move(gm2));
        REQUIRE(m2.meeting.has_value());
        CHECK(m2.meeting->duration == 90);
        REQUIRE(m2.meeting->attendees.has_value());
        CHECK(m2.meeting->attendees->at(0) == "c@example.com");

        api::get_virtual_meeting_request missing_m{.meeting_id = "MT-nope"};
        const failure nf2 = co_await expect_failure(f.c.async_get_virtual_meeting(std::move(missing_m)));
        CHECK(nf2.status == 404);
        CHECK(nf2.message == "Meeting not found");
    });
}

TEST_CASE("mock endpoints: contacts are created singly and in bulk, searched, grouped and deleted", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        api::create_contact_request one{
            .phone = "+2348012345678", .first_name = "Ada", .last_name = "Lovelace", .email = "ada@example.com"};
        one.custom_fields = json::object{{"tier", "gold"}};
        auto created = co_await f.c.async_create_contact(std::move(one));
        REQUIRE(created.contact_id.has_value());
        const std::string ada = *created.contact_id;

        api::create_bulk_contact_request bulk;
        bulk.group_id = "G1";
        for (const char* name : {"Grace", "Alan", "Edsger"}) {
            api::new_contact c;
            c.phone = std::string("+23480") + std::to_string(std::string_view(name).size()) + "0000000";
            c.first_name = name;
            bulk.contacts.push_back(std::move(c));
        }
        auto made = co_await f.c.async_create_bulk_contact(std::move(bulk));
        CHECK(made.created == 3);
        REQUIRE(made.contact_ids.size() == 3);
        CHECK(made.failed.empty());

        std::set<std::string> ids(made.contact_ids.begin(), made.contact_ids.end());
        ids.insert(ada);
        CHECK(ids.size() == 4);

        auto all = co_await f.c.async_list_contacts(api::list_contacts_request());
        CHECK(all.contacts.size() == 4);
        CHECK(all.pagination.total == 4);
        CHECK(all.contacts[0].first_name == "Ada");
        REQUIRE(all.contacts[0].custom_fields.has_value());
        CHECK(all.contacts[0].custom_fields->at("tier") == "gold");

        api::list_contacts_request by_search;
        by_search.search = "Lovelace";
        auto found = co_await f.c.async_list_contacts(std::move(by_search));
        REQUIRE(found.contacts.size() == 1);
        CHECK(found.contacts[0].contact_id == ada);
        api::list_contacts_request by_phone;
        by_phone.search = "+23480";
        auto phones = co_await f.c.async_list_contacts(std::move(by_phone));
        CHECK(phones.contacts.size() == 4);

        api::list_contacts_request by_group;
        by_group.group_id = "G1";
        auto grouped = co_await f.c.async_list_contacts(std::move(by_group));
        REQUIRE(grouped.contacts.size() == 3);
        for (const auto& c : grouped.contacts) CHECK(c.group_id == "G1");

        auto groups = co_await f.c.async_list_contact_groups(api::list_contact_groups_request());
        REQUIRE(groups.groups.size() == 1);
        CHECK(groups.groups[0].group_id == "G1");
        CHECK(groups.groups[0].contact_count == 3);

        api::delete_contact_request del{.contact_id = made.contact_ids[1]};
        auto deleted = co_await f.c.async_delete_contact(std::move(del));
        CHECK(deleted.deleted == true);
        CHECK(deleted.contact_id == made.contact_ids[1]);

        api::delete_contact_request again{.contact_id = made.contact_ids[1]};
        const failure nf = co_await expect_failure(f.c.async_delete_contact(std::move(again)));
        CHECK(nf.failed);
        CHECK(nf.status == 404);
        CHECK(nf.message == "Contact not found");

        auto remaining = co_await f.c.async_list_contacts(api::list_contacts_request());
        CHECK(remaining.pagination.total == 3);
        for (const auto& c : remaining.contacts) CHECK(c.contact_id != made.contact_ids[1]);
        auto groups_after = co_await f.c.async_list_contact_groups(api::list_contact_groups_request());
        REQUIRE(groups_after.groups.size() == 1);
        CHECK(groups_after.groups[0].contact_count == 2);
    });
    CHECK(f.server.collection("contacts").size() == 3);
}

TEST_CASE("mock endpoints: leads are created, updated, listed by status and deleted", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        api::create_lead_request l1{.name = "Acme", .phone = "+2348000000100", .source = "web"};
        auto a = co_await f.c.async_create_lead(std::move(l1));
        REQUIRE(a.lead_id.has_value());
        api::create_lead_request l2{.name = "Globex", .email = "sales@globex.example", .status = "contacted"};
        auto b = co_await f.c.async_create_lead(std::move(l2));
        REQUIRE(b.lead_id.has_value());
        CHECK(*a.lead_id != *b.lead_id);

        api::list_leads_request fresh;
        fresh.status = "new";
        auto news = co_await f.c.async_list_leads(std::move(fresh));
        REQUIRE(news.leads.size() == 1); // "new" is the default status
        CHECK(news.leads[0].lead_id == *a.lead_id);
        CHECK(news.leads[0].source == "web");

        api::update_lead_request up{.lead_id = *a.lead_id, .status = "qualified", .notes = "Budget approved"};
        auto updated = co_await f.c.async_update_lead(std::move(up));
        CHECK(updated.lead_id == *a.lead_id);
        CHECK(updated.status == "qualified");

        api::list_leads_request q;
        q.status = "qualified";
        auto qualified = co_await f.c.async_list_leads(std::move(q));
        REQUIRE(qualified.leads.size() == 1);
        CHECK(qualified.leads[0].notes == "Budget approved");
        CHECK(qualified.leads[0].name == "Acme"); // untouched fields stay
        api::list_leads_request fresh2;
        fresh2.status = "new";
        auto news2 = co_await f.c.async_list_leads(std::move(fresh2));
        CHECK(news2.leads.empty());

        api::update_lead_request ghost{.lead_id = "L-nope", .status = "lost"};
        const failure nf = co_await expect_failure(f.c.async_update_lead(std::move(ghost)));
        CHECK(nf.status == 404);
        CHECK(nf.message == "Lead not found");

        api::delete_lead_request del{.lead_id = *b.lead_id};
        auto gone = co_await f.c.async_delete_lead(std::move(del));
        CHECK(gone.deleted == true);
        auto all = co_await f.c.async_list_leads(api::list_leads_request());
        REQUIRE(all.leads.size() == 1);
        CHECK(all.leads[0].lead_id == *a.lead_id);

        api::delete_lead_request again{.lead_id = *b.lead_id};
        const failure nf2 = co_await expect_failure(f.c.async_delete_lead(std::move(again)));
        CHECK(nf2.status == 404);
        CHECK(nf2.message == "Lead not found");
    });
}

TEST_CASE("mock endpoints: pagination walks 25 contacts in pages of 10", "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        for (int i = 0; i < 25; ++i) {
            api::create_contact_request r;
            r.phone = "+23480000001" + std::to_string(10 + i);
            r.first_name = "Contact" + std::to_string(i);
            co_await f.c.async_create_contact(std::move(r));
        }
        std::vector<std::string> seen;
        for (std::int64_t page = 1; page <= 4; ++page) {
            api::list_contacts_request lr;
            lr.page = page;
            lr.per_page = 10;
            auto p = co_await f.c.async_list_contacts(std::move(lr));
            CHECK(p.pagination.page == page);
            CHECK(p.pagination.per_page == 10);
            CHECK(p.pagination.total == 25);
            CHECK(p.pagination.total_pages == 3);
            const std::size_t expected = page <= 2 ? 10 : page == 3 ? 5 : 0; // page 4 is past the end: empty
            CHECK(p.contacts.size() == expected);
            for (const auto& c : p.contacts) seen.push_back(c.contact_id.value_or(""));
        }
        REQUIRE(seen.size() == 25);
        CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 25);

        // The library's pager walks the same pages and stops after total_pages.
        api::list_contacts_request first;
        first.per_page = 10;
        auto pages = callsavvy::paginate(f.c, api::list_contacts{}, std::move(first));
        std::vector<std::size_t> sizes;
        std::vector<std::string> walked;
        for (;;) {
            auto page = co_await pages.next();
            if (!page) break;
            sizes.push_back(page->contacts.size());
            for (const auto& c : page->contacts) walked.push_back(c.contact_id.value_or(""));
        }
        CHECK(sizes == std::vector<std::size_t>{10, 10, 5});
        CHECK(walked == seen);
    });
    CHECK(f.server.count("listContacts") == 7);
}

// One call of each of the 35 endpoints on one mock: the journal shows every resource of the catalog
// answered 200, and every id the mock handed out is unique.
TEST_CASE("mock endpoints: all 35 endpoints in one session, ids unique", "[mock]") {
    fixture f;
    std::vector<std::string> ids;
    f.run([&]() -> asio::awaitable<void> {
        co_await f.c.async_get_summary(api::get_summary_request());
        co_await f.c.async_list_departments(api::list_departments_request());
        co_await f.c.async_list_request_categories(api::list_request_categories_request());
        co_await f.c.async_list_users(api::list_users_request());

        api::create_ticket_request tr{.subject = "S", .message = "M", .sender_email = "s@example.com"};
        auto t = co_await f.c.async_create_ticket(std::move(tr));
        ids.push_back(t.ticket_id.value_or(""));
        co_await f.c.async_list_tickets(api::list_tickets_request());
        api::get_ticket_conversation_request gt{.ticket_id = ids.back()};
        co_await f.c.async_get_ticket_conversation(std::move(gt));
        api::add_ticket_reply_request at{.ticket_id = ids.back(), .message = "R"};
        auto reply = co_await f.c.async_add_ticket_reply(std::move(at));
        ids.push_back(reply.message_id.value_or(""));

        api::create_automated_call_request ac{.phone_number = "+2348000000001", .message = "M"};
        auto call = co_await f.c.async_create_automated_call(std::move(ac));
        ids.push_back(call.call_id.value_or(""));
        co_await f.c.async_list_calls(api::list_calls_request());
        api::view_call_request vc{.call_id = ids.back()};
        co_await f.c.async_view_call(std::move(vc));
        api::create_auto_dialer_task_request dt{.name = "N",
                                                .numbers = {"+2348000000001"},
                                                .message_type = "audio",
                                                .audio_url = "https://audio.example/x.mp3"};
        auto task = co_await f.c.async_create_auto_dialer_task(std::move(dt));
        ids.push_back(task.task_id.value_or(""));
        co_await f.c.async_list_tts_voices(api::list_tts_voices_request());

        co_await f.c.async_list_chats(api::list_chats_request());
        api::get_chat_conversation_request gc{.chat_id = "CH1"};
        co_await f.c.async_get_chat_conversation(std::move(gc));
        co_await f.c.async_list_social(api::list_social_request());
        api::get_social_conversation_request gs{.conversation_id = "S1"};
        co_await f.c.async_get_social_conversation(std::move(gs));

        api::send_sms_request sms{.recipients = {"+2348000000001"}, .message = "M"};
        ids.push_back((co_await f.c.async_send_sms(std::move(sms))).campaign_id.value_or(""));
        api::send_voice_message_request vm{.recipients = {"+2348000000001"}, .message = "M"};
        ids.push_back((co_await f.c.async_send_voice_message(std::move(vm))).campaign_id.value_or(""));
        api::send_whatsapp_request wa{.recipients = {"+2348000000001"}, .message = "M"};
        ids.push_back((co_await f.c.async_send_whatsapp(std::move(wa))).campaign_id.value_or(""));

        api::create_video_call_request cv{.title = "V"};
        ids.push_back((co_await f.c.async_create_video_call(std::move(cv))).video_call_id.value_or(""));
        co_await f.c.async_list_video_calls(api::list_video_calls_request());
        api::get_video_call_request gv{.video_call_id = ids.back()};
        co_await f.c.async_get_video_call(std::move(gv));

        api::create_virtual_meeting_request cm{.title = "T", .start_at = "2026-12-01T10:00:00Z"};
        ids.push_back((co_await f.c.async_create_virtual_meeting(std::move(cm))).meeting_id.value_or(""));
        co_await f.c.async_list_virtual_meetings(api::list_virtual_meetings_request());
        api::get_virtual_meeting_request gm{.meeting_id = ids.back()};
        co_await f.c.async_get_virtual_meeting(std::move(gm));

        api::create_contact_request cc{.phone = "+2348000000001"};
        ids.push_back((co_await f.c.async_create_contact(std::move(cc))).contact_id.value_or(""));
        api::create_bulk_contact_request bc;
        bc.contacts.resize(2);
        bc.contacts[0].phone = "+2348000000002";
        bc.contacts[1].phone = "+2348000000003";
        auto bulk = co_await f.c.async_create_bulk_contact(std::move(bc));
        for (const auto& id : bulk.contact_ids) ids.push_back(id);
        co_await f.c.async_list_contacts(api::list_contacts_request());
        co_await f.c.async_list_contact_groups(api::list_contact_groups_request());
        api::delete_contact_request dc{.contact_id = bulk.contact_ids.at(0)};
        co_await f.c.async_delete_contact(std::move(dc));

        api::create_lead_request cl{.name = "L", .phone = "+2348000000001"};
        ids.push_back((co_await f.c.async_create_lead(std::move(cl))).lead_id.value_or(""));
        co_await f.c.async_list_leads(api::list_leads_request());
        api::update_lead_request ul{.lead_id = ids.back(), .status = "won"};
        co_await f.c.async_update_lead(std::move(ul));
        api::delete_lead_request dl{.lead_id = ids.back()};
        co_await f.c.async_delete_lead(std::move(dl));
    });

    std::set<std::string> catalog;
    for (const auto& e : api::catalog()) catalog.insert(std::string(e.resource));
    REQUIRE(catalog.size() == 35);
    CHECK(f.resources_called() == catalog);
    REQUIRE(f.server.journal().size() == 35);
    for (const auto& e : f.server.journal()) {
        INFO(e.resource);
        CHECK(e.status == 200);
    }
    CHECK(std::count(ids.begin(), ids.end(), std::string()) == 0);
    CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
}

TEST_CASE("mock endpoints: the mock's checks answer a typed request the client did not validate", "[mock]") {
    asio::io_context io;
    mock::mock_server server(io.get_executor(), mock_opts());
    auto o = client_opts(server);
    o.validate_requests = false; // let the mock judge
    callsavvy::client c(io.get_executor(), o);
    cstest::run_test(io, [&]() -> asio::awaitable<void> {
        api::create_ticket_request no_subject{.message = "M", .sender_email = "s@example.com"};
        const failure missing = co_await expect_failure(c.async_create_ticket(std::move(no_subject)));
        CHECK(missing.status == 400);
        CHECK(missing.message == "Missing required parameter: subject");
        CHECK(missing.ec == callsavvy::error::bad_request);

        api::create_ticket_request bad_priority{
            .subject = "S", .message = "M", .sender_email = "s@example.com", .priority = "extreme"};
        const failure invalid = co_await expect_failure(c.async_create_ticket(std::move(bad_priority)));
        CHECK(invalid.status == 400);
        CHECK(invalid.message == "Invalid parameter: priority");

        api::create_lead_request no_contact{.name = "Nobody"};
        const failure lead = co_await expect_failure(c.async_create_lead(std::move(no_contact)));
        CHECK(lead.status == 400);
        CHECK(lead.message == "Missing required parameter: phone");

        api::list_contacts_request big_page;
        big_page.per_page = 101;
        const failure page = co_await expect_failure(c.async_list_contacts(std::move(big_page)));
        CHECK(page.status == 400);
        CHECK(page.message == "Invalid parameter: per_page");
    });
    CHECK(server.collection("tickets").empty());
    CHECK(server.collection("leads").empty());
}

TEST_CASE("mock endpoints: createBulkContact fails a row whose phone is not E.164 alone, named by its index",
          "[mock]") {
    fixture f;
    f.run([&]() -> asio::awaitable<void> {
        api::create_bulk_contact_request bc;
        bc.contacts.resize(4);
        bc.contacts[0].phone = "+2348000000010";
        bc.contacts[1].phone = "12345";
        bc.contacts[2].phone = "+2348000000011";
        bc.contacts[3].phone = "+0123";
        const auto r = co_await f.c.async_create_bulk_contact(std::move(bc));
        CHECK(r.created == 2);
        CHECK(r.contact_ids.size() == 2);
        REQUIRE(r.failed.size() == 2);
        CHECK(r.failed[0].index == 1);
        CHECK(r.failed[0].message == "Invalid parameter: phone");
        CHECK(r.failed[1].index == 3);

        // The import maps the answer back onto its rows: the rejected one fails with the server's message.
        std::vector<api::new_contact> rows(3);
        rows[0].phone = "+2348000000020";
        rows[1].phone = "not-a-phone";
        rows[2].phone = "+2348000000021";
        const auto imp = co_await callsavvy::async_import_contacts(f.c, rows);
        CHECK(imp.created == 2);
        CHECK(imp.failed == 1);
        REQUIRE(imp.rows.size() == 3);
        CHECK(imp.rows[0].ok());
        CHECK(imp.rows[1].status == callsavvy::contact_row_status::failed);
        CHECK(imp.rows[1].message == "Invalid parameter: phone");
        CHECK(imp.rows[2].ok());
        CHECK(imp.rows[2].contact_id != imp.rows[0].contact_id);
    });
    std::set<std::string> phones;
    for (const auto& c : f.server.collection("contacts")) phones.insert(std::string(c.at("phone").as_string()));
    CHECK(phones == std::set<std::string>{"+2348000000010", "+2348000000011", "+2348000000020", "+2348000000021"});
}

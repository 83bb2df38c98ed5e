// callsavvy/api/endpoints.hpp — the endpoint catalog: the 35 endpoints of spec §3, each a compile-time
// descriptor (resource URI, title, group, read-only or not, request and response types, collection of
// list endpoints, validation rules). Everything else derives from it: the named calls, the JSON mapping,
// the validation, the mock server's routes, the CLI's resource list and the README's endpoint table.
// Most URIs and fields are [assumed] in the spec: a correction is a one-line edit here. Every request
// carries `extra` (members sent as given) and every response `extra` (members the catalog does not know)
// and `raw` (the whole `data` object).
#pragma once

#include <callsavvy/api/rules.hpp>
#include <callsavvy/api/shapes.hpp>
#include <callsavvy/config.hpp>

#include <boost/describe/class.hpp>
#include <boost/json/object.hpp>

#include <array>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace api {

enum class group { account, tickets, voice, chats_social, campaign, video_call, virtual_meeting, contacts, leads };

inline constexpr std::string_view group_name(group g) noexcept {
    switch (g) {
    case group::account: return "Account";
    case group::tickets: return "Tickets";
    case group::voice: return "Voice";
    case group::chats_social: return "Chats & Social";
    case group::campaign: return "Campaign";
    case group::video_call: return "Video Call";
    case group::virtual_meeting: return "Virtual Meeting";
    case group::contacts: return "Contacts";
    case group::leads: return "Leads";
    }
    return "";
}

// A descriptor: the resource URI and everything the library needs to know about the endpoint.
#define CALLSAVVY_API_DESCRIPTOR(Name, Resource, Title, Group, ReadOnly, ...)                                          \
    struct Name {                                                                                                      \
        static constexpr std::string_view resource = Resource;                                                         \
        static constexpr std::string_view title = Title;                                                               \
        static constexpr api::group group = api::group::Group;                                                         \
        static constexpr bool read_only = ReadOnly;                                                                    \
        using request = Name##_request;                                                                                \
        using response = Name##_response;                                                                              \
        using rules = __VA_ARGS__;                                                                                     \
    }

// A list endpoint's descriptor: read-only, and its response's collection member named (the member's name,
// through Describe, is the collection's JSON key: spelled once). The pager and the catalog read it from here.
#define CALLSAVVY_API_LIST_DESCRIPTOR(Name, Resource, Title, Group, Collection, ...)                                   \
    struct Name {                                                                                                      \
        static constexpr std::string_view resource = Resource;                                                         \
        static constexpr std::string_view title = Title;                                                               \
        static constexpr api::group group = api::group::Group;                                                         \
        static constexpr bool read_only = true;                                                                        \
        static constexpr auto collection = &Name##_response::Collection;                                               \
        using request = Name##_request;                                                                                \
        using response = Name##_response;                                                                              \
        using rules = __VA_ARGS__;                                                                                     \
    }

// The paging members every list request has, and the pagination every list response has.
#define CALLSAVVY_API_PAGING                                                                                           \
    std::optional<std::int64_t> page{};                                                                                \
    std::optional<std::int64_t> per_page {}

// ======================= Account =======================

struct get_summary_request {
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(get_summary_request, (), ())
struct get_summary_response {
    std::optional<std::string> assigned_number{};
    std::optional<std::string> business_id{};
    std::optional<std::string> business_name{};
    std::optional<std::string> plan{};
    std::optional<std::string> balance{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(get_summary_response, (), (assigned_number, business_id, business_name, plan, balance))
CALLSAVVY_API_DESCRIPTOR(get_summary, "getSummary", "Get Business Summary", account, true, std::tuple<>);

struct list_departments_request {
    CALLSAVVY_API_PAGING;
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_departments_request, (), (page, per_page))
struct list_departments_response {
    std::vector<department> departments{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_departments_response, (), (departments, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_departments, "listDepartments", "List Departments", account, departments,
                              list_rules<list_departments_request>);

struct list_request_categories_request {
    CALLSAVVY_API_PAGING;
    std::optional<std::string> department_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_request_categories_request, (), (page, per_page, department_id))
struct list_request_categories_response {
    std::vector<category> categories{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_request_categories_response, (), (categories, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_request_categories, "listRequestCategories", "List Request Categories", account,
                              categories, list_rules<list_request_categories_request>);

struct list_users_request {
    CALLSAVVY_API_PAGING;
    std::optional<user_role> role{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_users_request, (), (page, per_page, role))
struct list_users_response {
    std::vector<user> users{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_users_response, (), (users, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_users, "listUsers", "List Users", account, users,
                              list_rules<list_users_request, known_value<&list_users_request::role>>);

// ======================= Tickets =======================

struct list_tickets_request {
    CALLSAVVY_API_PAGING;
    std::optional<ticket_status> status{};
    std::optional<std::string> department_id{};
    std::optional<std::string> from_date{}; ///< YYYY-MM-DD
    std::optional<std::string> to_date{};   ///< YYYY-MM-DD
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_tickets_request, (), (page, per_page, status, department_id, from_date, to_date))
struct list_tickets_response {
    std::vector<ticket> tickets{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_tickets_response, (), (tickets, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_tickets, "listTickets", "List Tickets", tickets, tickets,
                              list_rules<list_tickets_request, known_value<&list_tickets_request::status>>);

struct get_ticket_conversation_request {
    std::string ticket_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(get_ticket_conversation_request, (), (ticket_id))
struct get_ticket_conversation_response {
    std::optional<api::ticket> ticket{};
    std::vector<message> messages{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(get_ticket_conversation_response, (), (ticket, messages))
CALLSAVVY_API_DESCRIPTOR(get_ticket_conversation, "getTicketConversation", "Get Ticket Conversation", tickets, true,
                         std::tuple<required<&get_ticket_conversation_request::ticket_id>>);

struct create_ticket_request {
    std::string subject{};
    std::string message{};
    std::string sender_email{};
    std::optional<std::string> sender_name{};
    std::optional<std::string> department_id{};
    std::optional<std::string> category_id{};
    std::optional<api::priority> priority{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(create_ticket_request, (),
                      (subject, message, sender_email, sender_name, department_id, category_id, priority))
struct create_ticket_response {
    std::optional<std::string> ticket_id{};
    std::optional<ticket_status> status{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(create_ticket_response, (), (ticket_id, status))
CALLSAVVY_API_DESCRIPTOR(
    create_ticket, "createTicket", "Create New Ticket", tickets, false,
    std::tuple<required<&create_ticket_request::subject>, required<&create_ticket_request::message>,
               required<&create_ticket_request::sender_email>, known_value<&create_ticket_request::priority>>);

struct add_ticket_reply_request {
    std::string ticket_id{};
    std::string message{};
    std::optional<std::string> user_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(add_ticket_reply_request, (), (ticket_id, message, user_id))
struct add_ticket_reply_response {
    std::optional<std::string> ticket_id{};
    std::optional<std::string> message_id{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(add_ticket_reply_response, (), (ticket_id, message_id))
CALLSAVVY_API_DESCRIPTOR(
    add_ticket_reply, "addTicketReply", "Add Ticket Reply", tickets, false,
    std::tuple<required<&add_ticket_reply_request::ticket_id>, required<&add_ticket_reply_request::message>>);

// ======================= Voice =======================

struct list_calls_request {
    CALLSAVVY_API_PAGING;
    std::optional<call_direction> direction{};
    std::optional<std::string> department_id{};
    std::optional<std::string> from_date{};
    std::optional<std::string> to_date{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_calls_request, (), (page, per_page, direction, department_id, from_date, to_date))
struct list_calls_response {
    std::vector<api::call> calls{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_calls_response, (), (calls, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_calls, "listCalls", "List Calls", voice, calls,
                              list_rules<list_calls_request, known_value<&list_calls_request::direction>>);

struct view_call_request {
    std::string call_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(view_call_request, (), (call_id))
struct view_call_response {
    std::optional<api::call> call{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(view_call_response, (), (call))
CALLSAVVY_API_DESCRIPTOR(view_call, "viewCall", "View Calls", voice, true,
                         std::tuple<required<&view_call_request::call_id>>);

struct create_auto_dialer_task_request {
    std::string name{};
    std::vector<std::string> numbers{};
    api::message_type message_type{};
    std::optional<std::string> message{};   ///< required when message_type is "tts"
    std::optional<std::string> audio_url{}; ///< required when message_type is "audio"
    std::optional<std::string> language{};
    std::optional<std::string> voice{};
    std::optional<std::string> department_id{};
    std::optional<timestamp> start_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(create_auto_dialer_task_request, (),
                      (name, numbers, message_type, message, audio_url, language, voice, department_id, start_at))
struct create_auto_dialer_task_response {
    std::optional<std::string> task_id{};
    std::optional<std::int64_t> queued{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(create_auto_dialer_task_response, (), (task_id, queued))
CALLSAVVY_API_DESCRIPTOR(
    create_auto_dialer_task, "createAutoDialerTask", "Create Auto-Dialer Task", voice, false,
    std::tuple<
        required<&create_auto_dialer_task_request::name>, required<&create_auto_dialer_task_request::numbers>,
        count<&create_auto_dialer_task_request::numbers, 1, 1000>,
        required<&create_auto_dialer_task_request::message_type>,
        known_value<&create_auto_dialer_task_request::message_type>,
        required_if<&create_auto_dialer_task_request::message, &create_auto_dialer_task_request::message_type, "tts">,
        required_if<&create_auto_dialer_task_request::audio_url, &create_auto_dialer_task_request::message_type,
                    "audio">>);

struct create_automated_call_request {
    std::string phone_number{};
    std::string message{};
    std::optional<std::string> language{};
    std::optional<std::string> voice{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(create_automated_call_request, (), (phone_number, message, language, voice))
struct create_automated_call_response {
    std::optional<std::string> call_id{};
    std::optional<call_status> status{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(create_automated_call_response, (), (call_id, status))
CALLSAVVY_API_DESCRIPTOR(create_automated_call, "createAutomatedCall", "Create Automated Call", voice, false,
                         std::tuple<required<&create_automated_call_request::phone_number>,
                                    required<&create_automated_call_request::message>>);

struct list_tts_voices_request {
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_tts_voices_request, (), ())
struct list_tts_voices_response {
    std::vector<language> languages{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_tts_voices_response, (), (languages))
CALLSAVVY_API_LIST_DESCRIPTOR(list_tts_voices, "listTtsVoices", "Supported TTS Languages & Voices", voice, languages,
                              std::tuple<>);

// ======================= Chats & Social =======================

struct list_chats_request {
    CALLSAVVY_API_PAGING;
    std::optional<chat_status> status{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_chats_request, (), (page, per_page, status))
struct list_chats_response {
    std::vector<chat> chats{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_chats_response, (), (chats, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_chats, "listChats", "List Chats", chats_social, chats,
                              list_rules<list_chats_request, known_value<&list_chats_request::status>>);

struct get_chat_conversation_request {
    std::string chat_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(get_chat_conversation_request, (), (chat_id))
struct get_chat_conversation_response {
    std::optional<api::chat> chat{};
    std::vector<message> messages{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(get_chat_conversation_response, (), (chat, messages))
CALLSAVVY_API_DESCRIPTOR(get_chat_conversation, "getChatConversation", "Get Chat Conversation", chats_social, true,
                         std::tuple<required<&get_chat_conversation_request::chat_id>>);

struct list_social_request {
    CALLSAVVY_API_PAGING;
    std::optional<social_platform> platform{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_social_request, (), (page, per_page, platform))
struct list_social_response {
    std::vector<social_conversation> conversations{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_social_response, (), (conversations, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_social, "listSocial", "List Social", chats_social, conversations,
                              list_rules<list_social_request, known_value<&list_social_request::platform>>);

struct get_social_conversation_request {
    std::string conversation_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(get_social_conversation_request, (), (conversation_id))
struct get_social_conversation_response {
    std::optional<social_conversation> conversation{};
    std::vector<message> messages{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(get_social_conversation_response, (), (conversation, messages))
CALLSAVVY_API_DESCRIPTOR(get_social_conversation, "getSocialConversation", "Get Social Conversation", chats_social,
                         true, std::tuple<required<&get_social_conversation_request::conversation_id>>);

// ======================= Campaign =======================

struct send_sms_request {
    std::vector<std::string> recipients{};
    std::string message{};
    std::optional<std::string> sender_id{};
    std::optional<timestamp> schedule_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(send_sms_request, (), (recipients, message, sender_id, schedule_at))
struct send_sms_response {
    std::optional<std::string> campaign_id{};
    std::optional<std::int64_t> queued{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(send_sms_response, (), (campaign_id, queued))
CALLSAVVY_API_DESCRIPTOR(
    send_sms, "sendSms", "Send SMS Message", campaign, false,
    std::tuple<required<&send_sms_request::recipients>, count<&send_sms_request::recipients, 1, 1000>,
               required<&send_sms_request::message>, length<&send_sms_request::message, 1, 1600>>);

struct send_voice_message_request {
    std::vector<std::string> recipients{};
    std::optional<std::string> message{}; ///< TTS text; exactly one of message and audio_url
    std::optional<std::string> audio_url{};
    std::optional<std::string> language{};
    std::optional<std::string> voice{};
    std::optional<timestamp> schedule_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(send_voice_message_request, (), (recipients, message, audio_url, language, voice, schedule_at))
struct send_voice_message_response {
    std::optional<std::string> campaign_id{};
    std::optional<std::int64_t> queued{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(send_voice_message_response, (), (campaign_id, queued))
CALLSAVVY_API_DESCRIPTOR(
    send_voice_message, "sendVoiceMessage", "Send Voice Message", campaign, false,
    std::tuple<required<&send_voice_message_request::recipients>,
               count<&send_voice_message_request::recipients, 1, 1000>,
               exactly_one<&send_voice_message_request::message, &send_voice_message_request::audio_url>>);

struct send_whatsapp_request {
    std::vector<std::string> recipients{};
    std::string message{};
    std::optional<std::string> media_url{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(send_whatsapp_request, (), (recipients, message, media_url))
struct send_whatsapp_response {
    std::optional<std::string> campaign_id{};
    std::optional<std::int64_t> queued{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(send_whatsapp_response, (), (campaign_id, queued))
CALLSAVVY_API_DESCRIPTOR(
    send_whatsapp, "sendWhatsapp", "Send WhatsApp Message", campaign, false,
    std::tuple<required<&send_whatsapp_request::recipients>, count<&send_whatsapp_request::recipients, 1, 1000>,
               required<&send_whatsapp_request::message>>);

// ======================= Video Call =======================

struct list_video_calls_request {
    CALLSAVVY_API_PAGING;
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_video_calls_request, (), (page, per_page))
struct list_video_calls_response {
    std::vector<api::video_call> video_calls{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_video_calls_response, (), (video_calls, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_video_calls, "listVideoCalls", "List Video Calls", video_call, video_calls,
                              list_rules<list_video_calls_request>);

struct get_video_call_request {
    std::string video_call_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(get_video_call_request, (), (video_call_id))
struct get_video_call_response {
    std::optional<api::video_call> video_call{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(get_video_call_response, (), (video_call))
CALLSAVVY_API_DESCRIPTOR(get_video_call, "getVideoCall", "Get Video Call", video_call, true,
                         std::tuple<required<&get_video_call_request::video_call_id>>);

struct create_video_call_request {
    std::string title{};
    std::optional<std::vector<std::string>> participants{}; ///< e-mail addresses
    std::optional<timestamp> scheduled_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(create_video_call_request, (), (title, participants, scheduled_at))
struct create_video_call_response {
    std::optional<std::string> video_call_id{};
    std::optional<std::string> join_url{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(create_video_call_response, (), (video_call_id, join_url))
CALLSAVVY_API_DESCRIPTOR(create_video_call, "createVideoCall", "Create Video Call", video_call, false,
                         std::tuple<required<&create_video_call_request::title>>);

// ======================= Virtual Meeting =======================

struct list_virtual_meetings_request {
    CALLSAVVY_API_PAGING;
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_virtual_meetings_request, (), (page, per_page))
struct list_virtual_meetings_response {
    std::vector<api::meeting> meetings{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_virtual_meetings_response, (), (meetings, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_virtual_meetings, "listVirtualMeetings", "List Virtual Meetings", virtual_meeting,
                              meetings, list_rules<list_virtual_meetings_request>);

struct get_virtual_meeting_request {
    std::string meeting_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(get_virtual_meeting_request, (), (meeting_id))
struct get_virtual_meeting_response {
    std::optional<api::meeting> meeting{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(get_virtual_meeting_response, (), (meeting))
CALLSAVVY_API_DESCRIPTOR(get_virtual_meeting, "getVirtualMeeting", "Get Virtual Meeting", virtual_meeting, true,
                         std::tuple<required<&get_virtual_meeting_request::meeting_id>>);

struct create_virtual_meeting_request {
    std::string title{};
    timestamp start_at{};
    std::optional<std::int64_t> duration{}; ///< minutes; the server's default is 30
    std::optional<std::vector<std::string>> attendees{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(create_virtual_meeting_request, (), (title, start_at, duration, attendees))
struct create_virtual_meeting_response {
    std::optional<std::string> meeting_id{};
    std::optional<std::string> join_url{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(create_virtual_meeting_response, (), (meeting_id, join_url))
CALLSAVVY_API_DESCRIPTOR(
    create_virtual_meeting, "createVirtualMeeting", "Create Virtual Meeting", virtual_meeting, false,
    std::tuple<required<&create_virtual_meeting_request::title>, required<&create_virtual_meeting_request::start_at>>);

// ======================= Contacts =======================

struct list_contacts_request {
    CALLSAVVY_API_PAGING;
    std::optional<std::string> group_id{};
    std::optional<std::string> search{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_contacts_request, (), (page, per_page, group_id, search))
struct list_contacts_response {
    std::vector<contact> contacts{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_contacts_response, (), (contacts, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_contacts, "listContacts", "List Contacts", contacts, contacts,
                              list_rules<list_contacts_request>);

struct list_contact_groups_request {
    CALLSAVVY_API_PAGING;
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_contact_groups_request, (), (page, per_page))
struct list_contact_groups_response {
    std::vector<contact_group> groups{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_contact_groups_response, (), (groups, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_contact_groups, "listContactGroups", "List Contact Groups", contacts, groups,
                              list_rules<list_contact_groups_request>);

struct create_contact_request {
    std::string phone{};
    std::optional<std::string> first_name{};
    std::optional<std::string> last_name{};
    std::optional<std::string> email{};
    std::optional<std::string> group_id{};
    std::optional<boost::json::object> custom_fields{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(create_contact_request, (), (phone, first_name, last_name, email, group_id, custom_fields))
struct create_contact_response {
    std::optional<std::string> contact_id{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(create_contact_response, (), (contact_id))
using new_contact_rules = std::tuple<required<&create_contact_request::phone>>;
CALLSAVVY_API_DESCRIPTOR(create_contact, "createContact", "Create Single Contact", contacts, false, new_contact_rules);

/// One contact of a bulk creation: shaped like createContact's request.
using new_contact = create_contact_request;

struct create_bulk_contact_request {
    std::vector<new_contact> contacts{};
    std::optional<std::string> group_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(create_bulk_contact_request, (), (contacts, group_id))
struct create_bulk_contact_response {
    std::optional<std::int64_t> created{};
    std::vector<std::string> contact_ids{};
    std::vector<bulk_failure> failed{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(create_bulk_contact_response, (), (created, contact_ids, failed))
CALLSAVVY_API_DESCRIPTOR(
    create_bulk_contact, "createBulkContact", "Create Bulk Contact", contacts, false,
    std::tuple<required<&create_bulk_contact_request::contacts>, count<&create_bulk_contact_request::contacts, 1, 500>,
               each<&create_bulk_contact_request::contacts, new_contact_rules>>);

struct delete_contact_request {
    std::string contact_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(delete_contact_request, (), (contact_id))
struct delete_contact_response {
    std::optional<std::string> contact_id{};
    std::optional<bool> deleted{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(delete_contact_response, (), (contact_id, deleted))
CALLSAVVY_API_DESCRIPTOR(delete_contact, "deleteContact", "Delete Contact", contacts, false,
                         std::tuple<required<&delete_contact_request::contact_id>>);

// ======================= Leads =======================

struct list_leads_request {
    CALLSAVVY_API_PAGING;
    std::optional<lead_status> status{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(list_leads_request, (), (page, per_page, status))
struct list_leads_response {
    std::vector<lead> leads{};
    api::pagination pagination{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(list_leads_response, (), (leads, pagination))
CALLSAVVY_API_LIST_DESCRIPTOR(list_leads, "listLeads", "List Leads", leads, leads, list_rules<list_leads_request>);

struct create_lead_request {
    std::string name{};
    std::optional<std::string> phone{};
    std::optional<std::string> email{}; ///< at least one of phone and email
    std::optional<std::string> source{};
    std::optional<lead_status> status{}; ///< the server's default is "new"
    std::optional<std::string> notes{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(create_lead_request, (), (name, phone, email, source, status, notes))
struct create_lead_response {
    std::optional<std::string> lead_id{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(create_lead_response, (), (lead_id))
CALLSAVVY_API_DESCRIPTOR(create_lead, "createLead", "Create Lead", leads, false,
                         std::tuple<required<&create_lead_request::name>,
                                    at_least_one<&create_lead_request::phone, &create_lead_request::email>>);

struct update_lead_request {
    std::string lead_id{};
    std::optional<std::string> name{};
    std::optional<std::string> phone{};
    std::optional<std::string> email{};
    std::optional<lead_status> status{};
    std::optional<std::string> notes{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(update_lead_request, (), (lead_id, name, phone, email, status, notes))
struct update_lead_response {
    std::optional<std::string> lead_id{};
    std::optional<lead_status> status{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(update_lead_response, (), (lead_id, status))
CALLSAVVY_API_DESCRIPTOR(update_lead, "updateLead", "Update Lead", leads, false,
                         std::tuple<required<&update_lead_request::lead_id>>);

struct delete_lead_request {
    std::string lead_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(delete_lead_request, (), (lead_id))
struct delete_lead_response {
    std::optional<std::string> lead_id{};
    std::optional<bool> deleted{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(delete_lead_response, (), (lead_id, deleted))
CALLSAVVY_API_DESCRIPTOR(delete_lead, "deleteLead", "Delete Lead", leads, false,
                         std::tuple<required<&delete_lead_request::lead_id>>);

#undef CALLSAVVY_API_DESCRIPTOR
#undef CALLSAVVY_API_PAGING

} // namespace api
CALLSAVVY_END_NAMESPACE

/// Every endpoint of the catalog, in the spec's order: X(descriptor) once each. The named calls
/// (`client::async_<descriptor>`), the runtime table and the tests expand it.
#define CALLSAVVY_API_ENDPOINTS(X)                                                                                     \
    X(get_summary)                                                                                                     \
    X(list_departments)                                                                                                \
    X(list_request_categories)                                                                                         \
    X(list_users)                                                                                                      \
    X(list_tickets)                                                                                                    \
    X(get_ticket_conversation)                                                                                         \
    X(create_ticket)                                                                                                   \
    X(add_ticket_reply)                                                                                                \
    X(list_calls)                                                                                                      \
    X(view_call)                                                                                                       \
    X(create_auto_dialer_task)                                                                                         \
    X(create_automated_call)                                                                                           \
    X(list_tts_voices)                                                                                                 \
    X(list_chats)                                                                                                      \
    X(get_chat_conversation)                                                                                           \
    X(list_social)                                                                                                     \
    X(get_social_conversation)                                                                                         \
    X(send_sms)                                                                                                        \
    X(send_voice_message)                                                                                              \
    X(send_whatsapp)                                                                                                   \
    X(list_video_calls)                                                                                                \
    X(get_video_call)                                                                                                  \
    X(create_video_call)                                                                                               \
    X(list_virtual_meetings)                                                                                           \
    X(get_virtual_meeting)                                                                                             \
    X(create_virtual_meeting)                                                                                          \
    X(list_contacts)                                                                                                   \
    X(list_contact_groups)                                                                                             \
    X(create_contact)                                                                                                  \
    X(create_bulk_contact)                                                                                             \
    X(delete_contact)                                                                                                  \
    X(list_leads)                                                                                                      \
    X(create_lead)                                                                                                     \
    X(update_lead)                                                                                                     \
    X(delete_lead)

CALLSAVVY_BEGIN_NAMESPACE
namespace api {

template <class E>
concept endpoint = requires {
    { E::resource } -> std::convertible_to<std::string_view>;
    { E::read_only } -> std::convertible_to<bool>;
    typename E::request;
    typename E::response;
    typename E::rules;
};

template <endpoint E>
inline constexpr bool is_paginated_v = requires(typename E::request r) {
    r.page;
};

/// A list endpoint: its descriptor names the response member that holds the collection.
template <endpoint E>
inline constexpr bool has_collection_v = requires {
    E::collection;
};

/// Whether the endpoint with this resource URI is read-only (spec §2 "Retry safety"); false for a resource
/// the catalog does not know. Built from the descriptors' constants alone, so using it instantiates none of
/// the catalog's JSON mapping (a translation unit making one call compiles only what that call needs).
inline bool is_read_only(std::string_view resource) noexcept {
#define CALLSAVVY_API_READ_ONLY(name) std::pair<std::string_view, bool>{name::resource, name::read_only},
    static constexpr std::array table{CALLSAVVY_API_ENDPOINTS(CALLSAVVY_API_READ_ONLY)};
#undef CALLSAVVY_API_READ_ONLY
    for (const auto& [r, ro] : table)
        if (r == resource) return ro;
    return false;
}

} // namespace api
CALLSAVVY_END_NAMESPACE

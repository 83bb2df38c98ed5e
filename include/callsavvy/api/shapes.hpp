// callsavvy/api/shapes.hpp — the objects Callsavvy returns (spec §4) and the enumerations it documents.
// Every field is optional in a response (any may be absent); fields the catalog does not know are kept in
// each object's `extra`. A field name is spelled once, in the BOOST_DESCRIBE_STRUCT line.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/types.hpp>

#include <boost/describe/class.hpp>
#include <boost/json/object.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace api {

// ---- documented enumerations (open: unknown values are kept) ----
struct ticket_status_values {
    static constexpr std::array<std::string_view, 3> values{"open", "pending", "closed"};
};
struct priority_values {
    static constexpr std::array<std::string_view, 4> values{"low", "normal", "high", "urgent"};
};
struct direction_values {
    static constexpr std::array<std::string_view, 2> values{"Incoming", "Outgoing"};
};
struct message_type_values {
    static constexpr std::array<std::string_view, 3> values{"tts", "audio", "agent"};
};
struct chat_status_values {
    static constexpr std::array<std::string_view, 2> values{"open", "closed"};
};
struct platform_values {
    static constexpr std::array<std::string_view, 4> values{"facebook", "instagram", "twitter", "whatsapp"};
};
struct role_values {
    static constexpr std::array<std::string_view, 2> values{"admin", "agent"};
};

// Enumerations the spec names without listing their values: typed as open enums now, so that listing their
// values later (validation, is_known()) changes no user's code.
struct user_status_values {
    static constexpr std::array<std::string_view, 0> values{};
};
struct call_status_values {
    static constexpr std::array<std::string_view, 0> values{};
};
struct video_call_status_values {
    static constexpr std::array<std::string_view, 0> values{};
};
struct lead_status_values {
    static constexpr std::array<std::string_view, 0> values{};
};
struct voice_gender_values {
    static constexpr std::array<std::string_view, 0> values{};
};
struct chat_channel_values {
    static constexpr std::array<std::string_view, 0> values{};
};

using ticket_status = open_enum<ticket_status_values>;
using priority = open_enum<priority_values>;
using call_direction = open_enum<direction_values>;
using message_type = open_enum<message_type_values>;
using chat_status = open_enum<chat_status_values>;
using social_platform = open_enum<platform_values>;
using user_role = open_enum<role_values>;
using user_status = open_enum<user_status_values>;
using call_status = open_enum<call_status_values>;
using video_call_status = open_enum<video_call_status_values>;
using lead_status = open_enum<lead_status_values>;
using voice_gender = open_enum<voice_gender_values>;
using chat_channel = open_enum<chat_channel_values>;

// ---- shapes ----
struct pagination {
    std::optional<std::int64_t> page{};
    std::optional<std::int64_t> per_page{};
    std::optional<std::int64_t> total{};
    std::optional<std::int64_t> total_pages{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(pagination, (), (page, per_page, total, total_pages))

struct department {
    std::optional<std::string> department_id{};
    std::optional<std::string> name{};
    std::optional<std::string> description{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(department, (), (department_id, name, description))

struct category {
    std::optional<std::string> category_id{};
    std::optional<std::string> name{};
    std::optional<std::string> department_id{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(category, (), (category_id, name, department_id))

struct user {
    std::optional<std::string> user_id{};
    std::optional<std::string> name{};
    std::optional<std::string> email{};
    std::optional<user_role> role{};
    std::optional<std::string> department_id{};
    std::optional<user_status> status{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(user, (), (user_id, name, email, role, department_id, status))

struct ticket {
    std::optional<std::string> ticket_id{};
    std::optional<std::string> subject{};
    std::optional<ticket_status> status{};
    std::optional<api::priority> priority{};
    std::optional<std::string> department_id{};
    std::optional<std::string> category_id{};
    std::optional<std::string> sender_email{};
    std::optional<timestamp> created_at{};
    std::optional<timestamp> updated_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(ticket, (),
                      (ticket_id, subject, status, priority, department_id, category_id, sender_email, created_at,
                       updated_at))

struct message {
    std::optional<std::string> message_id{};
    std::optional<std::string> sender{};
    std::optional<std::string> sender_email{};
    std::optional<std::string> body{};
    std::optional<timestamp> created_at{};
    std::optional<std::vector<std::string>> attachments{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(message, (), (message_id, sender, sender_email, body, created_at, attachments))

struct call {
    std::optional<std::string> call_id{};
    std::optional<call_direction> direction{};
    std::optional<std::string> caller_number{};
    std::optional<std::string> department_id{};
    std::optional<call_status> status{};
    std::optional<std::int64_t> duration{}; ///< seconds
    std::optional<std::string> recording_url{};
    std::optional<timestamp> started_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(call, (),
                      (call_id, direction, caller_number, department_id, status, duration, recording_url, started_at))

struct voice {
    std::optional<std::string> voice_id{};
    std::optional<std::string> name{};
    std::optional<voice_gender> gender{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(voice, (), (voice_id, name, gender))

struct language {
    std::optional<std::string> code{};
    std::optional<std::string> name{};
    std::optional<std::vector<voice>> voices{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(language, (), (code, name, voices))

struct chat {
    std::optional<std::string> chat_id{};
    std::optional<std::string> visitor_name{};
    std::optional<std::string> visitor_email{};
    std::optional<chat_status> status{};
    std::optional<chat_channel> channel{};
    std::optional<timestamp> started_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(chat, (), (chat_id, visitor_name, visitor_email, status, channel, started_at))

struct social_conversation {
    std::optional<std::string> conversation_id{};
    std::optional<social_platform> platform{};
    std::optional<std::string> contact_name{};
    std::optional<std::string> last_message{};
    std::optional<timestamp> updated_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(social_conversation, (), (conversation_id, platform, contact_name, last_message, updated_at))

struct video_call {
    std::optional<std::string> video_call_id{};
    std::optional<std::string> title{};
    std::optional<video_call_status> status{};
    std::optional<std::string> join_url{};
    std::optional<timestamp> scheduled_at{};
    std::optional<std::int64_t> duration{};
    std::optional<std::vector<std::string>> participants{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(video_call, (), (video_call_id, title, status, join_url, scheduled_at, duration, participants))

struct meeting {
    std::optional<std::string> meeting_id{};
    std::optional<std::string> title{};
    std::optional<timestamp> start_at{};
    std::optional<std::int64_t> duration{};
    std::optional<std::string> join_url{};
    std::optional<std::vector<std::string>> attendees{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(meeting, (), (meeting_id, title, start_at, duration, join_url, attendees))

struct contact {
    std::optional<std::string> contact_id{};
    std::optional<std::string> first_name{};
    std::optional<std::string> last_name{};
    std::optional<std::string> phone{};
    std::optional<std::string> email{};
    std::optional<std::string> group_id{};
    std::optional<boost::json::object> custom_fields{};
    std::optional<timestamp> created_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(contact, (),
                      (contact_id, first_name, last_name, phone, email, group_id, custom_fields, created_at))

struct contact_group {
    std::optional<std::string> group_id{};
    std::optional<std::string> name{};
    std::optional<std::int64_t> contact_count{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(contact_group, (), (group_id, name, contact_count))

struct lead {
    std::optional<std::string> lead_id{};
    std::optional<std::string> name{};
    std::optional<std::string> phone{};
    std::optional<std::string> email{};
    std::optional<lead_status> status{};
    std::optional<std::string> source{};
    std::optional<std::string> notes{};
    std::optional<timestamp> created_at{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(lead, (), (lead_id, name, phone, email, status, source, notes, created_at))

/// One element of createBulkContact's `failed` list.
struct bulk_failure {
    std::optional<std::int64_t> index{};
    std::optional<std::string> message{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(bulk_failure, (), (index, message))

} // namespace api
CALLSAVVY_END_NAMESPACE

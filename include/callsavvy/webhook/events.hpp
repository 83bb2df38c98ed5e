// callsavvy/webhook/events.hpp — the event catalog: the 13 webhook events of spec §5, one type each (its
// `event` name, lookup or notification, its W-number, its fields and, for a lookup, its reply), listed once
// in CALLSAVVY_WEBHOOK_EVENTS. Decoding goes through the JSON mapping (numbers as numbers or numeric
// strings, unknown fields kept in `extra`); the run-time table serves the listener's dispatch by name.
// Most names are [assumed] in the spec: a correction is a one-line edit here.
#pragma once

#include <callsavvy/api/shapes.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/json/mapping.hpp>
#include <callsavvy/types.hpp>

#include <boost/describe/class.hpp>
#include <boost/json/object.hpp>

#include <array>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

CALLSAVVY_BEGIN_NAMESPACE
namespace webhook {

// ---- documented enumerations (open: unknown values are kept) ----

// W1 documents `routing`, W2 `finished`: the same call's state, so one type.
struct call_status_values {
    static constexpr std::array<std::string_view, 2> values{"routing", "finished"};
};
struct queue_state_values {
    static constexpr std::array<std::string_view, 4> values{"queued", "running", "paused", "completed"};
};
// A new ticket's status as W4 documents it (capitalised, unlike the API's ticket statuses).
struct ticket_status_values {
    static constexpr std::array<std::string_view, 1> values{"New"};
};
struct reply_status_values {
    static constexpr std::array<std::string_view, 2> values{"success", "error"};
};

using call_status = open_enum<call_status_values>;
using queue_state = open_enum<queue_state_values>;
using ticket_status = open_enum<ticket_status_values>;
using reply_status = open_enum<reply_status_values>;

// ---- replies of the lookup events ----
// Every field the spec lists is a plain member with the spec's default, so an encoded reply always carries
// it; `extra` members are appended as given (one naming a listed field replaces it).

struct caller_information_reply {
    reply_status status{"success"};
    std::string caller_name{};
    std::string caller_email{};
    std::string customer_info{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(caller_information_reply, (), (status, caller_name, caller_email, customer_info))

struct chatbot_reply_reply {
    reply_status status{"success"};
    std::string reply{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(chatbot_reply_reply, (), (status, reply))

struct ai_content_reply {
    reply_status status{"success"};
    std::string content{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(ai_content_reply, (), (status, content))

struct ai_workflow_reply {
    reply_status status{"success"};
    std::optional<boost::json::object> output{}; ///< the one optional reply field of spec §5
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(ai_workflow_reply, (), (status, output))

/// W12 and W13 answer alike: `status` is "error" (with `message`) when the check itself could not be made.
struct validation_reply {
    reply_status status{"success"};
    bool valid = false;
    std::string message{};
    boost::json::object extra{};
};
BOOST_DESCRIBE_STRUCT(validation_reply, (), (status, valid, message))

// ---- events ----
// The constants every event type has; `Reply` is void for a notification (its handler returns nothing).
#define CALLSAVVY_WEBHOOK_EVENT_HEAD(Number, Name, Title, Reply)                                                       \
    static constexpr int number = Number;                                                                              \
    static constexpr std::string_view name = Name;                                                                     \
    static constexpr std::string_view title = Title;                                                                   \
    static constexpr bool lookup = !std::is_void_v<Reply>;                                                             \
    using reply = Reply

struct caller_information {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(1, "callerInformation", "Caller Information Lookup", caller_information_reply);
    std::optional<std::string> call_department{};
    std::optional<std::string> caller_number{};
    std::optional<webhook::call_status> call_status{};
    boost::json::object extra{}; ///< fields beyond the catalog's (`event` itself excluded)
    boost::json::object raw{};   ///< the whole event as received
};
BOOST_DESCRIBE_STRUCT(caller_information, (), (call_department, caller_number, call_status))

struct call_summary {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(2, "callSummary", "Call Completion Event", void);
    std::optional<api::call_direction> call_direction{};
    std::optional<std::string> call_department{};
    std::optional<std::string> caller_number{};
    std::optional<std::string> recording_url{};
    std::optional<std::int64_t> call_duration{}; ///< seconds
    std::optional<webhook::call_status> call_status{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(call_summary, (),
                      (call_direction, call_department, caller_number, recording_url, call_duration, call_status))

struct auto_dialer_queue_state {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(3, "autoDialerQueueState", "Auto Dialer Queue State", void);
    std::optional<std::string> task_id{};
    std::optional<webhook::queue_state> queue_state{};
    std::optional<std::int64_t> total{};
    std::optional<std::int64_t> completed{};
    std::optional<std::int64_t> failed{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(auto_dialer_queue_state, (), (task_id, queue_state, total, completed, failed))

struct new_ticket_opened {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(4, "newTicketOpened", "New Ticket Notification", void);
    std::optional<std::string> ticket_id{};
    std::optional<std::string> ticket_department{};
    std::optional<std::string> ticket_subject{};
    std::optional<std::string> sender_email{};
    std::optional<webhook::ticket_status> ticket_status{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(new_ticket_opened, (),
                      (ticket_id, ticket_department, ticket_subject, sender_email, ticket_status))

struct ticket_escalated {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(5, "ticketEscalated", "Ticket Escalation Notification", void);
    std::optional<std::string> ticket_id{};
    std::optional<std::string> ticket_department{};
    std::optional<std::string> last_ticket_update{}; ///< the documented name is cut off after `last_ticket_`
    std::optional<std::int64_t> escalation_level{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(ticket_escalated, (), (ticket_id, ticket_department, last_ticket_update, escalation_level))

struct new_chat {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(6, "newChat", "New Chat Notification", void);
    std::optional<std::string> chat_id{};
    std::optional<std::string> chat_department{};
    std::optional<std::string> visitor_name{};
    std::optional<std::string> visitor_email{};
    std::optional<std::string> message{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(new_chat, (), (chat_id, chat_department, visitor_name, visitor_email, message))

struct new_lead {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(7, "newLead", "New Lead Notification", void);
    std::optional<std::string> lead_id{};
    std::optional<std::string> lead_name{};
    std::optional<std::string> lead_phone{};
    std::optional<std::string> lead_email{};
    std::optional<std::string> lead_source{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(new_lead, (), (lead_id, lead_name, lead_phone, lead_email, lead_source))

struct lead_status_changed {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(8, "leadStatusChanged", "Lead Status Changed", void);
    std::optional<std::string> lead_id{};
    std::optional<std::string> old_status{};
    std::optional<std::string> new_status{};
    std::optional<std::string> changed_by{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(lead_status_changed, (), (lead_id, old_status, new_status, changed_by))

struct chatbot_reply {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(9, "chatbotReply", "Chatbot Reply Lookup", chatbot_reply_reply);
    std::optional<std::string> chat_id{};
    std::optional<std::string> visitor_message{};
    std::optional<std::string> visitor_name{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(chatbot_reply, (), (chat_id, visitor_message, visitor_name))

struct ai_content {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(10, "aiContent", "AI Content Lookup", ai_content_reply);
    std::optional<std::string> request_id{};
    std::optional<std::string> prompt{};
    std::optional<std::string> context{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(ai_content, (), (request_id, prompt, context))

struct ai_workflow {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(11, "aiWorkflow", "AI Workflow Automation Webhook", ai_workflow_reply);
    std::optional<std::string> workflow_id{};
    std::optional<std::string> step{};
    std::optional<boost::json::object> payload{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(ai_workflow, (), (workflow_id, step, payload))

struct calendar_guest_validation {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(12, "calendarGuestValidation", "Calendar Guest Validation", validation_reply);
    std::optional<std::string> calendar_id{};
    std::optional<std::string> guest_name{};
    std::optional<std::string> guest_email{};
    std::optional<std::string> guest_phone{};
    std::optional<timestamp> slot_start{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(calendar_guest_validation, (), (calendar_id, guest_name, guest_email, guest_phone, slot_start))

struct form_field_validation {
    CALLSAVVY_WEBHOOK_EVENT_HEAD(13, "formFieldValidation", "Form Field Validation", validation_reply);
    std::optional<std::string> form_id{};
    std::optional<std::string> field_name{};
    std::optional<std::string> field_value{};
    boost::json::object extra{};
    boost::json::object raw{};
};
BOOST_DESCRIBE_STRUCT(form_field_validation, (), (form_id, field_name, field_value))

#undef CALLSAVVY_WEBHOOK_EVENT_HEAD

} // namespace webhook
CALLSAVVY_END_NAMESPACE

/// Every event of the catalog, in the spec's order (W1..W13): X(type) once each. The run-time table, the
/// fuzzer and the tests expand it.
#define CALLSAVVY_WEBHOOK_EVENTS(X)                                                                                    \
    X(caller_information)                                                                                              \
    X(call_summary)                                                                                                    \
    X(auto_dialer_queue_state)                                                                                         \
    X(new_ticket_opened)                                                                                               \
    X(ticket_escalated)                                                                                                \
    X(new_chat)                                                                                                        \
    X(new_lead)                                                                                                        \
    X(lead_status_changed)                                                                                             \
    X(chatbot_reply)                                                                                                   \
    X(ai_content)                                                                                                      \
    X(ai_workflow)                                                                                                     \
    X(calendar_guest_validation)                                                                                       \
    X(form_field_validation)

CALLSAVVY_BEGIN_NAMESPACE
namespace webhook {

template <class E>
concept event = requires {
    { E::number } -> std::convertible_to<int>;
    { E::name } -> std::convertible_to<std::string_view>;
    { E::lookup } -> std::convertible_to<bool>;
    typename E::reply;
}
&&json_mapping::is_described_v<E>&& json_mapping::has_extra<E>;

/// A lookup event expects a JSON reply; a notification only an acknowledgement.
template <event E>
inline constexpr bool is_lookup_v = E::lookup;

/// What a handler of E produces: the reply type of a lookup, void for a notification.
template <event E>
using reply_t = typename E::reply;

/// What a handler of E returns: `asio::awaitable<E::reply>` for a lookup, `asio::awaitable<void>` for a
/// notification.
template <event E>
using handler_result_t = asio::awaitable<reply_t<E>>;

/// A handler the listener can register for E: callable with the decoded event (an rvalue, so `E`,
/// `const E&` and `E&&` parameters all fit), returning handler_result_t<E>.
template <class H, class E>
concept handler_for =
    event<E> && std::invocable<H&, E> && std::same_as<std::invoke_result_t<H&, E>, handler_result_t<E>>;

/// The `event` member of a delivery, or nullopt when it is absent or not a string.
inline std::optional<std::string_view> event_name(const boost::json::object& body) {
    const auto* v = body.if_contains("event");
    if (v == nullptr || !v->is_string()) return std::nullopt;
    return std::string_view(v->get_string());
}

/// Decodes a delivery into E: `out` gets the fields, `extra` every other member but `event`, `raw` the whole
/// object. Fails, naming the field in `err` and leaving `out` untouched, when a present value has the wrong
/// type (an object where a string belongs, a non-numeric `call_duration`) or when `event` is present and
/// names another event.
template <event E>
bool decode(const boost::json::object& in, E& out, json_mapping::decode_error& err) {
    if (const auto* name = in.if_contains("event"); name != nullptr && !name->is_null()) {
        const auto* s = name->if_string();
        if (s == nullptr || std::string_view(*s) != E::name) {
            err.path = "event";
            err.reason = "expected \"" + std::string(E::name) + "\", got " +
                         (s != nullptr ? "\"" + std::string(*s) + "\"" : std::string(json_mapping::kind_name(*name)));
            return false;
        }
    }
    E e{};
    if (!from_json(in, e, err)) return false;
    e.extra.erase("event");
    e.raw = in;
    out = std::move(e);
    return true;
}

/// A delivery's JSON: `event` (first, and always E::name), the fields present, then `extra` as given.
template <event E>
boost::json::object encode(const E& e) {
    boost::json::object o;
    o["event"] = E::name;
    json_mapping::encode_into(e, o);
    o["event"] = E::name; // an `extra` member named `event` cannot make the delivery another event
    return o;
}

/// A lookup's reply body: every listed field, then `extra`.
template <class R>
requires json_mapping::is_described_v<R> boost::json::object encode_reply(const R& r) { return to_json(r); }

/// Reads a reply (the sender's side): missing fields keep their defaults, unknown ones land in `extra`.
template <class R>
requires json_mapping::is_described_v<R>
bool decode_reply(const boost::json::object& in, R& out, json_mapping::decode_error& err) {
    R r{};
    if (!from_json(in, r, err)) return false;
    out = std::move(r);
    return true;
}

/// One event, type-erased.
struct event_info {
    int number = 0; ///< 1..13 for W1..W13
    std::string_view name{};
    std::string_view title{};
    bool lookup = false;
    /// Decodes the delivery as this event: nullopt when it would be accepted, else where and why not.
    std::optional<json_mapping::decode_error> (*check)(const boost::json::object& body) = nullptr;
};

template <event E>
constexpr event_info make_event_info() {
    event_info i;
    i.number = E::number;
    i.name = E::name;
    i.title = E::title;
    i.lookup = E::lookup;
    i.check = [](const boost::json::object& body) -> std::optional<json_mapping::decode_error> {
        E e;
        json_mapping::decode_error err;
        if (decode(body, e, err)) return std::nullopt;
        return err;
    };
    return i;
}

/// Every event, in the spec's order.
inline std::span<const event_info> event_catalog() {
#define CALLSAVVY_WEBHOOK_INFO(type) make_event_info<type>(),
    static constexpr std::array all{CALLSAVVY_WEBHOOK_EVENTS(CALLSAVVY_WEBHOOK_INFO)};
#undef CALLSAVVY_WEBHOOK_INFO
    return all;
}

/// The event with this `event` name (exact, case-sensitive), or nullptr: the listener passes an unknown
/// name to its fallback handler with the raw JSON, never drops it.
inline const event_info* find_event(std::string_view name) {
    for (const auto& e : event_catalog())
        if (e.name == name) return &e;
    return nullptr;
}

/// Calls f(E{}) for every event type E.
template <class F>
void for_each_event(F&& f) {
// NOLINTNEXTLINE(bugprone-macro-parentheses): the argument is a type name; `(type){}` would not compile.
#define CALLSAVVY_WEBHOOK_VISIT(type) f(type{});
    CALLSAVVY_WEBHOOK_EVENTS(CALLSAVVY_WEBHOOK_VISIT)
#undef CALLSAVVY_WEBHOOK_VISIT
}

} // namespace webhook
CALLSAVVY_END_NAMESPACE

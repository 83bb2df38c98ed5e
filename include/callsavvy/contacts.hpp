// callsavvy/contacts.hpp — contact imports of any size: N api::new_contact rows become ⌈N/500⌉ createBulkContact
// requests (500 is the catalog's limit), run as a batch (batch.hpp), and each row gets its own outcome back at
// its own index: created with its contact id, failed with the server's message, or not processed with its
// request's error (flagged when the request's outcome is unknown, since its contacts may exist).
#pragma once

#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/api/rules.hpp>
#include <callsavvy/batch.hpp>
#include <callsavvy/client.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

namespace detail {

/// The upper bound of the catalog's `count<Member, Min, Max>` rule in Rules (0 when it has none), so the
/// bulk limit is spelled once, in the descriptor.
template <auto Member, class Rule>
struct count_limit_of : std::integral_constant<std::size_t, 0> {};
template <auto Member, std::size_t Min, std::size_t Max>
struct count_limit_of<Member, api::count<Member, Min, Max>> : std::integral_constant<std::size_t, Max> {};

template <auto Member, class Rules>
struct count_limit;
template <auto Member, class... Rules>
struct count_limit<Member, std::tuple<Rules...>>
    : std::integral_constant<std::size_t, std::max({std::size_t{0}, count_limit_of<Member, Rules>::value...})> {};

} // namespace detail

/// The most contacts one createBulkContact request may carry, from the endpoint catalog's rule.
inline constexpr std::size_t max_bulk_contacts =
    detail::count_limit<&api::create_bulk_contact_request::contacts, api::create_bulk_contact::rules>::value;
static_assert(max_bulk_contacts > 0, "the catalog's createBulkContact rules must bound the number of contacts");

enum class contact_row_status {
    created,         ///< the server created it: contact_id is set
    failed,          ///< rejected: by the server (its message; ec error::bad_request) or by the catalog's rules
                     ///< before sending (the spec's message; ec error::validation_failed)
    not_processed,   ///< its request failed before the server acted on it (ec and message say how), or never started
    outcome_unknown, ///< its request was sent and its answer lost, or the answer cannot be mapped to the rows:
                     ///< the contact may exist on the server; check before importing it again
};

/// One row's outcome.
struct contact_row_result {
    std::size_t row = 0; ///< the row's position in the input, from 0
    contact_row_status status = contact_row_status::not_processed;
    std::optional<std::string> contact_id{}; ///< created
    std::string message{};                   ///< why, for every status but created
    error_code ec{};                         ///< empty for created; else the row's or its request's error
    /// The createBulkContact request (the batch item) that carried the row; empty for a row rejected locally.
    std::optional<std::size_t> chunk{};

    bool ok() const noexcept { return status == contact_row_status::created; }
    bool may_exist() const noexcept {
        return status == contact_row_status::created || status == contact_row_status::outcome_unknown;
    }
};

struct contact_import_options {
    /// For the createBulkContact requests: max_in_flight, policy (a request's failure, not a row's, stops
    /// the import), progress (items are requests).
    batch_options batch{};
    std::optional<std::string> group_id{};      ///< sent with every request: the group of rows that name none
    std::size_t chunk_size = max_bulk_contacts; ///< rows per request, 1..max_bulk_contacts
};

/// How an import went, counted over its rows: total == created + failed + not_processed + outcome_unknown.
struct contact_import_summary {
    std::size_t total = 0; ///< rows read from the input
    std::size_t created = 0;
    std::size_t failed = 0;
    std::size_t not_processed = 0;
    std::size_t outcome_unknown = 0;
    batch_summary requests{};       ///< the createBulkContact calls
    std::exception_ptr exception{}; ///< thrown by the input or a callback (as batch_summary::exception)
};

/// async_import_contacts's result: the counts and every row's outcome in input order (rows[i].row == i).
struct contact_import_result : contact_import_summary {
    std::vector<contact_row_result> rows{};
};

namespace detail {

using contact_row_collector = in_order_collector<contact_import_result, contact_import_summary, contact_row_result,
                                                 &contact_row_result::row, &contact_import_result::rows>;
template <class OnRow>
using contact_row_streamer = streaming_sink<contact_import_summary, contact_row_result, OnRow>;

/// An import: cuts the rows into requests and maps each request's answer back onto its rows.
template <class RowSink>
class contact_import {
public:
    using result_type = typename RowSink::result_type;

    contact_import(std::unique_ptr<batch_source<api::new_contact>> rows, const contact_import_options& o, bool validate,
                   RowSink sink)
        : rows_(std::move(rows)), group_id_(o.group_id), chunk_size_(o.chunk_size), validate_(validate),
          sink_(std::move(sink)) {}

    /// The next request: up to chunk_size rows that pass the catalog's rules (those that do not are reported
    /// here, unsent). std::nullopt once the rows are used up.
    std::optional<api::create_bulk_contact_request> next_request() {
        if (pending_) std::rethrow_exception(std::exchange(pending_, nullptr));
        api::create_bulk_contact_request req;
        req.group_id = group_id_;
        std::vector<std::size_t> rows;
        while (req.contacts.size() < chunk_size_) {
            std::optional<api::new_contact> c;
            try {
                c = rows_->next();
            } catch (...) {
                if (rows.empty()) throw;
                pending_ = std::current_exception(); // the rows taken so far still go out; the next call throws
                break;
            }
            if (!c) break;
            const std::size_t row = total_++;
            if (validate_) {
                if (auto v = api::check_all<api::new_contact_rules>(*c)) {
                    contact_row_result r;
                    r.row = row;
                    r.status = contact_row_status::failed;
                    r.ec = make_error_code(error::validation_failed);
                    r.message = v->message();
                    emit(std::move(r));
                    continue;
                }
            }
            req.contacts.push_back(std::move(*c));
            rows.push_back(row);
        }
        if (rows.empty()) return std::nullopt;
        rows_of_.emplace(requests_++, std::move(rows));
        return req;
    }

    void request_done(batch_item<api::create_bulk_contact>&& item) {
        auto node = rows_of_.extract(item.index);
        if (node.empty()) return; // cannot happen: every item index is a request this import made
        const std::vector<std::size_t>& rows = node.mapped();
        if (item.ec) request_failed(rows, item);
        else
            map_answer(rows, item.index, *item.response);
        // on_row threw (here or while rows were read): now that every row of the request was handed out, let
        // the batch see it, so that it stops as it does when on_item throws.
        if (row_error_ && !row_error_passed_on_) {
            row_error_passed_on_ = true;
            std::rethrow_exception(row_error_);
        }
    }

    result_type finish(batch_summary requests) {
        counts_.total = total_;
        counts_.exception = requests.exception ? requests.exception : row_error_;
        counts_.requests = std::move(requests);
        return sink_.finish(std::move(counts_));
    }

private:
    void emit(contact_row_result&& r) {
        switch (r.status) {
        case contact_row_status::created: ++counts_.created; break;
        case contact_row_status::failed: ++counts_.failed; break;
        case contact_row_status::not_processed: ++counts_.not_processed; break;
        case contact_row_status::outcome_unknown: ++counts_.outcome_unknown; break;
        }
        try {
            sink_.deliver(std::move(r));
        } catch (...) { // the rows after this one are still handed out; the first exception is kept
            if (!row_error_) row_error_ = std::current_exception();
        }
    }

    void request_failed(const std::vector<std::size_t>& rows, const batch_item<api::create_bulk_contact>& item) {
        // The client says outcome_unknown for a state-changing request that may have reached the server (its
        // whole bytes left, then its answer was lost, broken or cut short by close(), the deadline or a
        // cancellation); any other failure, operation_aborted included, means the server did not process it.
        const bool unknown = item.ec == condition::outcome_unknown;
        const std::string message = api_error(item.ec, item.diag).what();
        for (const std::size_t row : rows) {
            contact_row_result r;
            r.row = row;
            r.chunk = item.index;
            r.status = unknown ? contact_row_status::outcome_unknown : contact_row_status::not_processed;
            r.ec = item.ec;
            r.message = message;
            emit(std::move(r));
        }
    }

    /// The answer names the rejected rows by their index within the request; the created rows' ids come in
    /// row order ([assumed]: the spec lists `contact_ids` and `failed` without saying more). An answer that
    /// does not add up leaves the rows not named as failed unknown rather than guessing their ids.
    void map_answer(const std::vector<std::size_t>& rows, std::size_t chunk,
                    const api::create_bulk_contact_response& answer) {
        const std::size_t n = rows.size();
        std::vector<const api::bulk_failure*> failure(n, nullptr);
        std::size_t failed = 0;
        std::string mismatch;
        for (const auto& f : answer.failed) {
            if (!f.index || *f.index < 0 || static_cast<std::size_t>(*f.index) >= n) {
                mismatch = "a failed entry names " + (f.index ? "index " + std::to_string(*f.index) : "no index") +
                           " of a request of " + std::to_string(n) + " rows";
                continue;
            }
            auto& slot = failure[static_cast<std::size_t>(*f.index)];
            if (slot == nullptr) ++failed;
            if (slot == nullptr) slot = &f;
        }
        if (mismatch.empty() && answer.contact_ids.size() != n - failed)
            mismatch = std::to_string(answer.contact_ids.size()) + " contact_ids for " + std::to_string(n - failed) +
                       " rows not failed";
        if (mismatch.empty() && answer.created &&
            *answer.created != static_cast<std::int64_t>(answer.contact_ids.size()))
            mismatch = "created " + std::to_string(*answer.created) + " but " +
                       std::to_string(answer.contact_ids.size()) + " contact_ids";
        std::size_t next_id = 0;
        for (std::size_t i = 0; i < n; ++i) {
            contact_row_result r;
            r.row = rows[i];
            r.chunk = chunk;
            if (failure[i] != nullptr) {
                r.status = contact_row_status::failed;
                r.ec = make_error_code(error::bad_request);
                r.message = failure[i]->message.value_or("rejected by the server without a message");
            } else if (mismatch.empty()) {
                r.status = contact_row_status::created;
                r.contact_id = answer.contact_ids[next_id++];
            } else {
                r.status = contact_row_status::outcome_unknown;
                r.ec = make_error_code(error::decode_failed);
                r.message = "createBulkContact's answer cannot be mapped to its rows (" + mismatch +
                            "): the row may exist on the server";
            }
            emit(std::move(r));
        }
    }

    std::unique_ptr<batch_source<api::new_contact>> rows_;
    std::optional<std::string> group_id_;
    std::size_t chunk_size_;
    bool validate_;
    RowSink sink_;
    std::size_t total_ = 0;                                   // rows read
    std::size_t requests_ = 0;                                // requests made: the next one's batch index
    std::map<std::size_t, std::vector<std::size_t>> rows_of_; // the rows of each request not finished yet
    std::exception_ptr pending_{};   // the input threw after rows of the request being filled were taken
    std::exception_ptr row_error_{}; // on_row threw
    bool row_error_passed_on_ = false;
    contact_import_summary counts_{};
};

template <class Import>
class contact_request_source final : public batch_source<api::create_bulk_contact_request> {
public:
    explicit contact_request_source(std::shared_ptr<Import> i) : import_(std::move(i)) {}
    std::optional<api::create_bulk_contact_request> next() override { return import_->next_request(); }
    // The rows of a request never started are read all the same, so each gets its not-started result.
    bool skip() override { return import_->next_request().has_value(); }

private:
    std::shared_ptr<Import> import_;
};

template <class Import>
struct contact_request_sink {
    using result_type = typename Import::result_type;
    std::shared_ptr<Import> import;
    void deliver(batch_item<api::create_bulk_contact>&& item) { import->request_done(std::move(item)); }
    result_type finish(batch_summary s) { return import->finish(std::move(s)); }
};

template <class RowSink, class Rows, class CompletionToken>
auto launch_import(client& c, Rows&& rows, contact_import_options o, RowSink sink, CompletionToken&& token) {
    if (o.chunk_size == 0 || o.chunk_size > max_bulk_contacts)
        throw std::invalid_argument("callsavvy: contact_import_options::chunk_size must be in 1.." +
                                    std::to_string(max_bulk_contacts) + " (got " + std::to_string(o.chunk_size) + ")");
    using import_type = contact_import<RowSink>;
    auto imp = std::make_shared<import_type>(make_batch_source<api::new_contact>(std::forward<Rows>(rows)), o,
                                             c.options().validate_requests, std::move(sink));
    return launch_batch<api::create_bulk_contact>(c, std::make_unique<contact_request_source<import_type>>(imp),
                                                  std::move(o.batch), contact_request_sink<import_type>{imp},
                                                  std::forward<CompletionToken>(token));
}

} // namespace detail

/// Creates `rows` (a range of api::new_contact, or a generator returning std::optional<api::new_contact>)
/// with createBulkContact requests of options.chunk_size rows, run as a batch; completes with
/// void(contact_import_result): every row's outcome at its index. With client_options::validate_requests (the
/// default) a row that breaks the catalog's rules fails alone, unsent, instead of failing its whole request.
/// Threads, cancellation and the input's lifetime as for async_run_batch (batch.hpp). Invalid options throw
/// std::invalid_argument at once.
template <class Rows, class CompletionToken = asio::use_awaitable_t<>>
requires batch_input<Rows, api::new_contact>
auto async_import_contacts(client& c, Rows&& rows, contact_import_options options = {}, CompletionToken&& token = {}) {
    return detail::launch_import(c, std::forward<Rows>(rows), std::move(options), detail::contact_row_collector{},
                                 std::forward<CompletionToken>(token));
}

/// As async_import_contacts, but each row's outcome goes to `on_row(contact_row_result&&)` (on the client's
/// executor) as soon as it is known, and nothing is kept: completes with void(contact_import_summary).
template <class Rows, class OnRow, class CompletionToken = asio::use_awaitable_t<>>
requires batch_input<Rows, api::new_contact> && std::invocable<OnRow&, contact_row_result&&>
auto async_stream_import_contacts(client& c, Rows&& rows, contact_import_options options, OnRow on_row,
                                  CompletionToken&& token = {}) {
    return detail::launch_import(c, std::forward<Rows>(rows), std::move(options),
                                 detail::contact_row_streamer<OnRow>{std::move(on_row)},
                                 std::forward<CompletionToken>(token));
}

CALLSAVVY_END_NAMESPACE

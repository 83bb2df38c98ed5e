// callsavvy/batch.hpp — many calls of one endpoint with at most N outstanding and every item accounted for:
// `auto run = callsavvy::async_run_batch(api, api::create_lead{}, requests, options);` then
// `co_await std::move(run)` collects a result per item in input order; async_stream_batch hands each result to
// a callback as it completes, for inputs too large to keep. A generator input is pulled lazily, so a million
// rows never sit in memory.
//
// Pacing is the client's: a call beyond the rate limits parks in the client's limiter (holding no connection),
// and max_in_flight bounds how many calls (and so how much memory) are outstanding at once.
//
// Thread safety: a batch runs on the client's executor, like the client's own calls: start it from there (a
// strand in a multi-threaded io_context). The input is read, and on_item / on_progress are called, on that
// executor; the completion handler runs on its own associated executor. The client must outlive the batch
// and stay where it is (not moved from) until the batch completes. An lvalue range is read in place and must
// outlive the batch too (an rvalue range is moved in); a generator is decay-copied.
//
// Cancellation (any type, through the completion handler's cancellation slot, so `awaitable_operators` and
// bound cancellation signals compose; emitted on the client's executor, where the batch was started): no new
// item starts; every call in flight receives the same cancellation type, and the client's contract decides
// what it does with it (a call parked in the limiter or waiting for a connection ends unsent; a state-changing
// call already written may still finish, or end with operation_aborted or error::outcome_unknown). The batch
// completes once every call in flight has completed, with every item's result: the items never started carry
// asio::error::operation_aborted, a detail saying why, and `started == false`. A cancellation after the last
// call completed changes nothing.
//
// The batch itself never fails: its completion signature is void(result), so the default token
// (use_awaitable) returns the result even after a cancellation or a stop instead of throwing it away.
// Failures are per item. An exception thrown by the input or a callback stops the batch like a failure under
// stop_on_first_error (calls in flight finish; on_item still receives every item) and is kept in the summary's
// `exception`. After the input throws, nothing more is read from it.
#pragma once

#include <callsavvy/api/endpoints.hpp>
#include <callsavvy/client.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

/// What the batch does after an item fails.
enum class batch_policy {
    collect_all,         ///< run every item whatever fails
    stop_on_first_error, ///< start nothing new after the first failure; calls in flight finish
};

/// A progress report: at most one per batch_options::progress_interval while items complete, and a final
/// one (final == true) just before the batch completes.
struct batch_progress {
    std::size_t done = 0; ///< items finished: succeeded + failed
    std::size_t succeeded = 0;
    std::size_t failed = 0;
    std::size_t in_flight =
        0; ///< calls started and not finished (in the limiter, waiting for a connection, on the wire)
    /// Calls parked in the client's rate limiter for the endpoint's resource: every caller of the key, not
    /// only this batch (the limiter is shared). 0 when rate limiting is off.
    std::size_t waiting_in_limiter = 0;
    std::size_t not_started = 0; ///< in the final report: items the batch never started
    /// Items in the input, when known: a sized range, or batch_options::expected_total. In the final report,
    /// the items read.
    std::optional<std::size_t> total{};
    /// Items finished per second over the last batch_options::rate_window (since the start while the batch is
    /// younger); 0 during the first tenth of the window.
    double rate = 0;
    /// Time left at `rate` for total - done; empty while the total or the rate is unknown, and in the final report.
    std::optional<std::chrono::milliseconds> eta{};
    std::chrono::steady_clock::duration elapsed{};
    bool final = false;
};

struct batch_options {
    /// At most this many calls outstanding at once (at least 1). Beyond the client's rate limits they park
    /// in its limiter; beyond client_options::max_connections they wait for a pooled connection.
    std::size_t max_in_flight = 8;
    batch_policy policy = batch_policy::collect_all;
    /// Called on the client's executor; must be quick (it runs between the batch's calls).
    std::function<void(const batch_progress&)> on_progress{};
    std::chrono::milliseconds progress_interval{100}; ///< minimum time between two reports (0: every change)
    std::chrono::milliseconds rate_window{10000};     ///< the span batch_progress::rate is measured over
    /// The number of items a generator will produce, when the caller knows it: for the progress's ETA.
    std::optional<std::size_t> expected_total{};
};

/// One item's outcome.
template <api::endpoint Endpoint>
struct batch_item {
    std::size_t index = 0; ///< the item's position in the input, from 0
    error_code ec{};
    diagnostics diag{}; ///< what the call left behind (for an item never started: the reason in `detail`)
    std::optional<typename Endpoint::response> response{}; ///< set exactly when the call succeeded
    bool started = false; ///< false: the batch stopped or was cancelled before this item began (nothing sent)

    bool ok() const noexcept { return !ec; }
};

/// How a batch went, counted over its items: total == succeeded + failed + not_started.
struct batch_summary {
    std::size_t total = 0; ///< items read from the input
    std::size_t succeeded = 0;
    std::size_t failed = 0;      ///< started and failed (calls ended by the batch's cancellation included)
    std::size_t not_started = 0; ///< never started: the batch had stopped or was cancelled
    /// stop_on_first_error: the index of the failure that stopped the batch.
    std::optional<std::size_t> stopped_at{};
    bool cancelled = false; ///< the batch was cancelled before its last call completed
    /// Thrown by the input (reading stopped there: items after it are not counted) or by a callback.
    std::exception_ptr exception{};
    std::chrono::steady_clock::duration elapsed{};

    bool all_succeeded() const noexcept { return succeeded == total && !exception; }
};

/// async_run_batch's result: the summary and every item's outcome, in input order (items[i].index == i).
template <api::endpoint Endpoint>
struct batch_result : batch_summary {
    std::vector<batch_item<Endpoint>> items{};
};

/// A generator input: called for one request after another, std::nullopt at the end. It must end: after a
/// stop or a cancellation the batch reads it to its end so that every item is reported.
template <class G, class Request>
concept batch_generator = std::invocable<G&> && std::convertible_to<std::invoke_result_t<G&>, std::optional<Request>>;

/// A range input: iterated once, front to back.
template <class R, class Request>
concept batch_range = requires(R& r) {
    std::begin(r);
    std::end(r);
    { *std::begin(r) } -> std::convertible_to<Request>;
};

template <class Input, class Request>
concept batch_input =
    batch_generator<std::remove_reference_t<Input>, Request> || batch_range<std::remove_reference_t<Input>, Request>;

namespace detail {

/// The batch's view of its input, type-erased: one interface for ranges and generators.
template <class Request>
class batch_source {
public:
    virtual ~batch_source() = default;
    /// The next item; std::nullopt at the end.
    virtual std::optional<Request> next() = 0;
    /// Passes over the next item without using it (a range does not copy it); false at the end.
    virtual bool skip() = 0;
    virtual std::optional<std::size_t> size() const { return std::nullopt; }
};

/// R is the range type (owned, moved in) or an lvalue reference to it (read in place, elements copied).
template <class R, class Request>
class range_source final : public batch_source<Request> {
public:
    explicit range_source(R&& r) : range_(std::forward<R>(r)), it_(std::begin(range_)), end_(std::end(range_)) {}

    std::optional<Request> next() override {
        if (it_ == end_) return std::nullopt;
        std::optional<Request> out;
        if constexpr (std::is_lvalue_reference_v<R>) out.emplace(*it_);
        else
            out.emplace(std::move(*it_));
        ++it_;
        return out;
    }
    bool skip() override {
        if (it_ == end_) return false;
        ++it_;
        return true;
    }
    std::optional<std::size_t> size() const override {
        if constexpr (requires(const std::remove_reference_t<R>& r) { std::size(r); })
            return static_cast<std::size_t>(std::size(range_));
        else
            return std::nullopt;
    }

private:
    using range_type = std::remove_reference_t<R>;
    R range_; // first: the iterators below point into it
    decltype(std::begin(std::declval<range_type&>())) it_;
    decltype(std::end(std::declval<range_type&>())) end_;
};

template <class G, class Request>
class generator_source final : public batch_source<Request> {
public:
    explicit generator_source(G g) : gen_(std::move(g)) {}

    std::optional<Request> next() override {
        if (ended_) return std::nullopt; // a generator is never asked again after it said it was done
        std::optional<Request> out = gen_();
        ended_ = !out.has_value();
        return out;
    }
    bool skip() override { return next().has_value(); }

private:
    G gen_;
    bool ended_ = false;
};

template <class Request, class Input>
std::unique_ptr<batch_source<Request>> make_batch_source(Input&& input) {
    if constexpr (batch_generator<std::remove_reference_t<Input>, Request>)
        return std::make_unique<generator_source<std::decay_t<Input>, Request>>(std::forward<Input>(input));
    else
        return std::make_unique<range_source<Input, Request>>(std::forward<Input>(input));
}

inline void check_batch_options(const batch_options& o) {
    if (o.max_in_flight == 0) throw std::invalid_argument("callsavvy: batch_options::max_in_flight must be at least 1");
    if (o.progress_interval.count() < 0)
        throw std::invalid_argument("callsavvy: batch_options::progress_interval must not be negative (got " +
                                    std::to_string(o.progress_interval.count()) + " ms)");
    if (o.rate_window.count() <= 0)
        throw std::invalid_argument("callsavvy: batch_options::rate_window must be positive (got " +
                                    std::to_string(o.rate_window.count()) + " ms)");
}

/// Keeps every outcome at its index (they arrive in any order) and hands them out with the summary: the
/// collected result of a batch, and of a contact import.
template <class Result, class Summary, class Item, std::size_t Item::*Index, std::vector<Item> Result::*Items>
struct in_order_collector {
    using result_type = Result;
    std::vector<Item> items{};

    void deliver(Item&& item) {
        const std::size_t at = item.*Index;
        if (items.size() <= at) items.resize(at + 1);
        items[at] = std::move(item);
    }
    result_type finish(Summary s) {
        result_type r;
        static_cast<Summary&>(r) = std::move(s);
        r.*Items = std::move(items);
        return r;
    }
};

/// Hands every outcome to the caller's callback and keeps none: the streamed form of both.
template <class Summary, class Item, class Callback>
struct streaming_sink {
    using result_type = Summary;
    Callback callback;

    void deliver(Item&& item) { callback(std::move(item)); }
    result_type finish(Summary s) { return s; }
};

template <class Endpoint>
using batch_collector = in_order_collector<batch_result<Endpoint>, batch_summary, batch_item<Endpoint>,
                                           &batch_item<Endpoint>::index, &batch_result<Endpoint>::items>;
template <class Endpoint, class OnItem>
using batch_streamer = streaming_sink<batch_summary, batch_item<Endpoint>, OnItem>;

/// One batch: its input, its calls in flight and its counts. Lives on the client's executor; shared by the
/// driver coroutine and the handlers of the calls and timers it starts.
template <class Endpoint, class Sink>
class batch_run : public std::enable_shared_from_this<batch_run<Endpoint, Sink>> {
public:
    using request = typename Endpoint::request;
    using response = typename Endpoint::response;
    using item = batch_item<Endpoint>;
    using result_type = typename Sink::result_type;
    using clock = std::chrono::steady_clock;

    batch_run(client& c, std::unique_ptr<batch_source<request>> source, batch_options o, Sink sink)
        : client_(c), source_(std::move(source)), opts_(std::move(o)), sink_(std::move(sink)),
          wake_(c.get_executor(), clock::time_point::max()), progress_timer_(c.get_executor()) {}

    client::executor_type executor() const { return client_.get_executor(); }

    /// Starts items while the bound allows, and waits; once nothing is in flight and nothing more may start,
    /// accounts for the items never started and completes with the result.
    static asio::awaitable<result_type> drive(std::shared_ptr<batch_run> self) {
        batch_run& b = *self;
        b.started_at_ = clock::now();
        b.last_report_ = b.started_at_ - b.opts_.progress_interval; // the first change is reported at once
        for (;;) {
            b.pump();
            if (b.in_flight_ == 0 && (b.exhausted_ || b.halt_ != halt_reason::none)) break;
            // Woken (the timer cancelled) by every completion and by a cancellation. Completions run only
            // while this coroutine is suspended here, so none can be missed.
            co_await b.wake_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        }
        b.running_ = false;
        co_await b.account_for_the_rest();
        b.progress_timer_.cancel();
        if (b.opts_.on_progress) b.report(true); // first: an exception it throws belongs in the summary
        co_return b.sink_.finish(b.summary());
    }

    /// The batch's cancellation: no new item starts, every call in flight gets the same type.
    void cancel(asio::cancellation_type type) {
        if (!running_ || type == asio::cancellation_type::none) return;
        cancelled_ = true;
        halt(halt_reason::cancelled);
        for (const auto& k : calls_)
            if (k->busy) k->signal.emit(type); // again for a second cancellation: a terminal one after a partial
        wake_.cancel();
    }

private:
    enum class halt_reason { none, stopped, cancelled, exception };

    /// A started call: its diagnostics and the signal that cancels it, at a stable address while it runs.
    struct call {
        std::size_t index = 0;
        diagnostics diag{};
        asio::cancellation_signal signal{};
        bool busy = false;
    };

    struct call_done {
        std::shared_ptr<batch_run> run;
        call* k;
        void operator()(error_code ec, response r) const { run->finish_call(*k, ec, std::move(r)); }
    };

    struct progress_due {
        std::shared_ptr<batch_run> run;
        void operator()(error_code ec) const {
            run->progress_armed_ = false;
            if (!ec && run->running_) run->report(false);
        }
    };

    void halt(halt_reason why) {
        if (halt_ == halt_reason::none) halt_ = why;
    }
    void keep(std::exception_ptr e) {
        if (!exception_) exception_ = std::move(e);
        halt(halt_reason::exception);
    }

    void pump() {
        while (halt_ == halt_reason::none && in_flight_ < opts_.max_in_flight) {
            std::optional<request> next;
            try {
                next = source_->next();
            } catch (...) {
                input_failed_ = true; // the input is broken: nothing after this point can be read or counted
                keep(std::current_exception());
                return;
            }
            if (!next) {
                exhausted_ = true;
                return;
            }
            start(read_++, std::move(*next));
        }
    }

    void start(std::size_t index, request r) {
        call& k = free_call();
        k.index = index;
        k.diag.clear();
        k.busy = true;
        ++in_flight_;
        try {
            client_.async_call(Endpoint{}, std::move(r), k.diag,
                               asio::bind_cancellation_slot(k.signal.slot(), call_done{this->shared_from_this(), &k}));
        } catch (...) { // only an allocation can fail here; the item was not started
            k.busy = false;
            free_.push_back(&k);
            --in_flight_;
            keep(std::current_exception());
            ++not_started_;
            deliver(not_started(index));
        }
    }

    call& free_call() {
        if (free_.empty()) {
            calls_.push_back(std::make_unique<call>());
            return *calls_.back();
        }
        // A slot is reused only after the driver resumed, so the call that used it has fully unwound.
        call* k = free_.back();
        free_.pop_back();
        return *k;
    }

    void finish_call(call& k, error_code ec, response r) {
        k.busy = false;
        free_.push_back(&k);
        --in_flight_;
        item it;
        it.index = k.index;
        it.ec = ec;
        it.diag = std::move(k.diag);
        it.started = true;
        if (!ec) {
            ++succeeded_;
            it.response.emplace(std::move(r));
        } else {
            ++failed_;
            if (opts_.policy == batch_policy::stop_on_first_error && !cancelled_ && !stopped_at_) {
                stopped_at_ = k.index;
                halt(halt_reason::stopped);
            }
        }
        const auto now = clock::now();
        finished_at_.push_back(now);
        deliver(std::move(it));
        changed(now);
        wake_.cancel();
    }

    /// Hands an item to the sink. A sink (on_item) that throws stops the batch, but the items still to come
    /// are handed to it all the same: every item is reported, and the first exception is kept.
    void deliver(item&& it) {
        try {
            sink_.deliver(std::move(it));
        } catch (...) {
            keep(std::current_exception());
        }
    }

    item not_started(std::size_t index) const {
        item it;
        it.index = index;
        it.ec = asio::error::operation_aborted;
        it.diag.resource = std::string(Endpoint::resource);
        switch (halt_) {
        case halt_reason::stopped:
            it.diag.detail = "not started: the batch stopped at item " + std::to_string(*stopped_at_);
            break;
        case halt_reason::cancelled: it.diag.detail = "not started: the batch was cancelled"; break;
        default: it.diag.detail = "not started: the batch stopped at an exception from its input or a callback"; break;
        }
        return it;
    }

    /// Every item the batch did not start still gets its result. Yields now and then: a long input must not
    /// hold the executor up.
    asio::awaitable<void> account_for_the_rest() {
        if (exhausted_ || input_failed_) co_return;
        for (std::size_t n = 1;; ++n) {
            bool more = false;
            try {
                more = source_->skip();
            } catch (...) {
                keep(std::current_exception());
                co_return;
            }
            if (!more) co_return;
            ++not_started_;
            deliver(not_started(read_++));
            if (n % 1024 == 0) co_await asio::post(executor(), asio::use_awaitable);
        }
    }

    batch_summary summary() const {
        batch_summary s;
        s.total = read_;
        s.succeeded = succeeded_;
        s.failed = failed_;
        s.not_started = not_started_;
        s.stopped_at = stopped_at_;
        s.cancelled = cancelled_;
        s.exception = exception_;
        s.elapsed = clock::now() - started_at_;
        return s;
    }

    /// Reports now if the last report is old enough, else once the interval has passed.
    void changed(clock::time_point now) {
        if (!opts_.on_progress || progress_armed_) return;
        if (now - last_report_ >= opts_.progress_interval) {
            report(false);
            return;
        }
        progress_armed_ = true;
        progress_timer_.expires_at(last_report_ + opts_.progress_interval);
        progress_timer_.async_wait(progress_due{this->shared_from_this()});
    }

    void report(bool final) {
        const auto now = clock::now();
        last_report_ = now;
        while (!finished_at_.empty() && finished_at_.front() < now - opts_.rate_window) finished_at_.pop_front();
        batch_progress p;
        p.done = succeeded_ + failed_;
        p.succeeded = succeeded_;
        p.failed = failed_;
        p.in_flight = in_flight_;
        if (const auto& l = client_.limiter()) p.waiting_in_limiter = l->stats(Endpoint::resource).queued;
        p.not_started = not_started_;
        p.elapsed = now - started_at_;
        p.final = final;
        p.total = final ? std::optional<std::size_t>(read_) : source_->size() ? source_->size() : opts_.expected_total;
        // Over the window, or since the start while the batch is younger; not before a tenth of the window,
        // when a first completion a few milliseconds in would read as hundreds a second.
        const auto span = std::min<clock::duration>(p.elapsed, opts_.rate_window);
        if (span >= opts_.rate_window / 10 && span.count() > 0)
            p.rate = static_cast<double>(finished_at_.size()) / std::chrono::duration<double>(span).count();
        if (!final && p.total && p.rate > 0) {
            const double left = *p.total > p.done ? static_cast<double>(*p.total - p.done) : 0.0;
            p.eta = std::chrono::milliseconds(static_cast<std::int64_t>(left / p.rate * 1000.0));
        }
        try {
            opts_.on_progress(p);
        } catch (...) {
            keep(std::current_exception());
            wake_.cancel();
        }
    }

    client& client_;
    std::unique_ptr<batch_source<request>> source_;
    batch_options opts_;
    Sink sink_;
    asio::steady_timer wake_; // never expires: cancel() is the wake-up
    asio::steady_timer progress_timer_;
    std::vector<std::unique_ptr<call>> calls_; // never more than max_in_flight
    std::vector<call*> free_;
    std::size_t read_ = 0; // items taken from the input: the next item's index
    std::size_t in_flight_ = 0;
    std::size_t succeeded_ = 0;
    std::size_t failed_ = 0;
    std::size_t not_started_ = 0;
    std::optional<std::size_t> stopped_at_{};
    halt_reason halt_ = halt_reason::none;
    std::exception_ptr exception_{};
    bool exhausted_ = false;
    bool input_failed_ = false;
    bool cancelled_ = false;
    bool running_ = true; // until no call is in flight and nothing more will start
    bool progress_armed_ = false;
    clock::time_point started_at_{};
    clock::time_point last_report_{};
    std::deque<clock::time_point> finished_at_; // completions within the rate window
};

/// Forwards the caller's cancellation to the batch. Called where the caller emits it, which must be the
/// client's executor (as for every Asio operation, the signal is emitted where the operation runs).
template <class Run>
struct batch_cancellation {
    std::weak_ptr<Run> run;
    void operator()(asio::cancellation_type type) const {
        if (auto b = run.lock()) b->cancel(type);
    }
};

/// The caller's handler, called once the driver is done; disconnects the caller's slot first.
template <class Handler, class Result>
struct batch_completion {
    Handler handler;
    asio::associated_cancellation_slot_t<Handler> slot;
    void operator()(std::exception_ptr e, Result r) {
        if (slot.is_connected()) slot.clear();
        if (e) r.exception = e; // only an allocation failure inside the driver ends up here
        std::move(handler)(std::move(r));
    }
};

template <class Endpoint, class Sink, class Handler>
void start_batch(client& c, std::unique_ptr<batch_source<typename Endpoint::request>> source, batch_options o,
                 Sink sink, Handler&& handler) {
    using run_type = batch_run<Endpoint, Sink>;
    using result_type = typename Sink::result_type;
    auto run = std::make_shared<run_type>(c, std::move(source), std::move(o), std::move(sink));
    auto slot = asio::get_associated_cancellation_slot(handler);
    const auto ex = run->executor();
    auto hex = asio::get_associated_executor(handler, ex);
    if (slot.is_connected()) slot.assign(batch_cancellation<run_type>{run});
    asio::co_spawn(ex, run_type::drive(std::move(run)),
                   asio::bind_executor(std::move(hex), batch_completion<std::decay_t<Handler>, result_type>{
                                                           std::forward<Handler>(handler), slot}));
}

template <class Endpoint, class Sink, class CompletionToken>
auto launch_batch(client& c, std::unique_ptr<batch_source<typename Endpoint::request>> source, batch_options o,
                  Sink sink, CompletionToken&& token) {
    check_batch_options(o);
    return asio::async_initiate<CompletionToken, void(typename Sink::result_type)>(
        [](auto handler, client* c, std::unique_ptr<batch_source<typename Endpoint::request>> source, batch_options o,
           Sink sink) {
            start_batch<Endpoint>(*c, std::move(source), std::move(o), std::move(sink), std::move(handler));
        },
        token, &c, std::move(source), std::move(o), std::move(sink));
}

} // namespace detail

/// Runs one call of `Endpoint` per item of `input` (a range of requests, or a generator returning
/// std::optional<request>), at most options.max_in_flight at once, and completes with
/// void(batch_result<Endpoint>): every item's outcome in input order. Invalid options throw
/// std::invalid_argument at once. See this header's opening comment for threads and cancellation.
template <api::endpoint Endpoint, class Input, class CompletionToken = asio::use_awaitable_t<>>
requires batch_input<Input, typename Endpoint::request>
auto async_run_batch(client& c, Endpoint, Input&& input, batch_options options = {}, CompletionToken&& token = {}) {
    return detail::launch_batch<Endpoint>(
        c, detail::make_batch_source<typename Endpoint::request>(std::forward<Input>(input)), std::move(options),
        detail::batch_collector<Endpoint>{}, std::forward<CompletionToken>(token));
}

/// As async_run_batch, but each item's outcome goes to `on_item(batch_item<Endpoint>&&)` as soon as it is
/// known (in completion order; not-started items last) and nothing is kept: completes with
/// void(batch_summary). on_item runs on the client's executor.
template <api::endpoint Endpoint, class Input, class OnItem, class CompletionToken = asio::use_awaitable_t<>>
requires batch_input<Input, typename Endpoint::request> && std::invocable<OnItem&, batch_item<Endpoint> &&> auto
async_stream_batch(client& c, Endpoint, Input&& input, batch_options options, OnItem on_item,
                   CompletionToken&& token = {}) {
    return detail::launch_batch<Endpoint>(
        c, detail::make_batch_source<typename Endpoint::request>(std::forward<Input>(input)), std::move(options),
        detail::batch_streamer<Endpoint, OnItem>{std::move(on_item)}, std::forward<CompletionToken>(token));
}

CALLSAVVY_END_NAMESPACE

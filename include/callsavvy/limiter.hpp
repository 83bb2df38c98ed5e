// callsavvy/limiter.hpp — the rate limiter: `co_await limiter.async_acquire("listTickets")` suspends the
// calling coroutine until one more request to that endpoint fits both the endpoint's bucket and the key's
// global bucket, so the server never has a reason to answer 429 while the whole allowance is used.
//
// Choices, and why:
// - Exact windows: each bucket keeps a sliding log of its last N grant times (local_bucket_store); the next
//   grant may go at oldest_of_last_N + window + safety_margin. No span of `window` ever holds more than N
//   grants, so it is safe whether the server counts fixed minutes or a sliding 60 s.
// - Waiting: waiters sit in an intrusive FIFO per endpoint (no allocation beyond the operation itself); ONE
//   timer for the whole limiter — fewer than one per bucket — is armed for the next instant at which any
//   waiter can go (a grant needs the endpoint's and the global bucket together, so one scheduler decides for
//   all buckets at once). No thread sleeps, nothing polls, and a waiter is woken exactly once: with its grant
//   or with its failure. Per grant: a look at the global bucket and at each endpoint that has waiters.
// - Fairness: FIFO within an endpoint; the global slot goes to the earliest waiter whose endpoint bucket has
//   room, so an exhausted endpoint never idles the others. acquire_position::front (a retry after a 429)
//   puts the waiter ahead of everyone, in its endpoint and for the global slot.
// - Cancellation, any type, through the handler's cancellation slot: a waiter cancelled while parked leaves
//   its queue and costs no slot. A waiter cancelled after its grant was decided but before the grant was
//   delivered gives the slot back and the next waiter gets it at once (no lost wake-up as in boostorg/mysql
//   #509). The caller's deadline covers the wait: cancel the acquire when it passes.
// - 429s: pause() / on_rate_limited() pause the endpoint's bucket (Retry-After, else full-jitter backoff).
//   A 429 does not say which limit was hit, so the global bucket pauses too when (a) another endpoint got a
//   429 within the last global window, or (b) the global bucket held its maximum when the 429 came.
// - Bounded: beyond options.max_waiters parked waiters an acquire fails at once with error::queue_full
//   (condition::rate_limited), unless options.wait_when_full makes the bound advisory.
// - Send times: the server counts a request when it arrives. With options.count_from_send (the client sets
//   it) a grant stays pending until sent() says when the request left, or unused() that it never did, so
//   a wait for a pooled connection or a slow TLS handshake between grant and write cannot push N+1 requests
//   into one server window.
// - Fleets: the buckets' state sits behind bucket_store (next_free / try_reserve / give_back / pause /
//   usage / sent / unused); a store shared by several processes replaces local_bucket_store without touching the
//   waiting.
// - One budget per key: limiter_for_key() returns the process's limiter for an API key (kept by a SHA-256
//   digest of the key, never the key itself), so every client using that key shares the same buckets.
// - Thread safety: unlike the client, a limiter IS internally synchronized (one mutex; it is shared by
//   clients that may live on different threads and io_contexts). async_acquire, pause, stats and close may be
//   called from any thread. The timer runs on the limiter's executor, which some thread must run; each
//   acquire completes on its handler's associated executor (default: the limiter's), never inline. Outstanding
//   work is tracked on the handler's executor while the acquire is pending. As Asio requires of any
//   operation, emit an acquire's cancellation from its handler's executor (a strand in a threaded context).
// - Lifetimes: the limiter's executor must keep running while anyone waits (a limiter shared through
//   limiter_for_key() runs on the executor of whoever created it first), and the io_contexts that waiters
//   complete on must outlive their waits. Destroying or closing the limiter ends every wait at once.
// - Time: the clock comes from the timer type; basic_rate_limiter<detail::manual_timer> runs in virtual
//   time, and the scheduler itself (detail::limiter_core) is sans-io and takes `now` as an argument.
#pragma once

#include <callsavvy/bucket_store.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/detail/limiter_core.hpp>
#include <callsavvy/detail/limiter_registry.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/rate_limit_options.hpp>
#include <callsavvy/retry.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_allocator.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

CALLSAVVY_BEGIN_NAMESPACE

/// Where an acquire joins its endpoint's queue: at the back (a new request), or at the front (a request
/// that got a 429 and must not lose its place to the ones that arrived after it).
enum class acquire_position { back, front };

/// What the limiter reports about one bucket.
struct bucket_stats {
    std::size_t queued = 0;    ///< parked waiters (for the global bucket: all of them)
    std::size_t in_window = 0; ///< grants within the window that ends now
    /// Earliest time the next grant could go (for an endpoint: its bucket and the global one both).
    std::chrono::steady_clock::time_point next_grant{};
    std::chrono::steady_clock::time_point paused_until{}; ///< a 429 pause, if later than now
};

/// How on_rate_limited() paused.
struct rate_limit_pause {
    std::chrono::milliseconds duration{}; ///< Retry-After, or the backoff drawn for the attempt
    bool global = false;                  ///< the global bucket paused too
};

namespace detail {

template <class Timer>
class limiter_impl;

/// An owning reference to a limiter_impl (intrusive: pending operations hold one too, 8 bytes each).
template <class Timer>
class limiter_ref {
public:
    explicit limiter_ref(limiter_impl<Timer>* p) noexcept : p_(p) {}
    limiter_ref(const limiter_ref& o) noexcept : p_(o.p_) {
        if (p_) p_->add_ref();
    }
    limiter_ref(limiter_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    limiter_ref& operator=(limiter_ref o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~limiter_ref() {
        if (p_) p_->release();
    }
    limiter_impl<Timer>* operator->() const noexcept { return p_; }
    limiter_impl<Timer>* get() const noexcept { return p_; }

private:
    limiter_impl<Timer>* p_;
};

/// The part of a pending acquire that the limiter knows without knowing the handler's type.
template <class Timer>
struct limiter_op : limiter_waiter {
    enum class action { post, finish, destroy };
    limiter_impl<Timer>* owner = nullptr;
    void (*fn)(limiter_op*, action, error_code) = nullptr; // type-erased: post the delivery, or complete
};

/// Keeps outstanding work on the handler's executor while the acquire is pending, unless that executor is the
/// limiter's own (then the limiter's armed timer already keeps it running, and 56 bytes per waiter are saved).
template <class WorkExecutor>
struct limiter_work {
    WorkExecutor ex;
};
template <>
struct limiter_work<void> {};

/// The function object that completes an acquire on its handler's executor. It owns the operation: destroyed
/// without having run (its io_context went away first), it frees the operation and the limiter's reference.
template <class Timer>
class limiter_delivery {
public:
    explicit limiter_delivery(limiter_op<Timer>* w) noexcept : w_(w) {}
    limiter_delivery(limiter_delivery&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
    limiter_delivery& operator=(limiter_delivery&&) = delete;
    ~limiter_delivery() {
        if (w_ == nullptr) return;
        limiter_impl<Timer>* owner = w_->owner;
        w_->fn(w_, limiter_op<Timer>::action::destroy, {});
        owner->release();
    }
    void operator()() {
        limiter_op<Timer>* w = std::exchange(w_, nullptr);
        w->owner->deliver(w);
    }

private:
    limiter_op<Timer>* w_;
};

template <class Timer, class Handler, class WorkExecutor>
struct limiter_handler_op final : limiter_op<Timer> {
    using base = limiter_op<Timer>;
    using alloc_type = typename std::allocator_traits<asio::associated_allocator_t<Handler>>::template rebind_alloc<
        limiter_handler_op>;

    limiter_handler_op(Handler&& h, limiter_work<WorkExecutor> w) : handler(std::move(h)), work(std::move(w)) {
        this->fn = &do_fn;
    }

    static void do_fn(base* b, typename base::action a, error_code ec) {
        auto* self = static_cast<limiter_handler_op*>(b);
        if (a == base::action::post) {
            asio::post(self->executor(), limiter_delivery<Timer>(b));
            return;
        }
        if (a == base::action::destroy) {
            // The delivery was destroyed unrun (its io_context was destroyed): free everything, call nothing.
            alloc_type alloc(asio::get_associated_allocator(self->handler));
            std::allocator_traits<alloc_type>::destroy(alloc, self);
            std::allocator_traits<alloc_type>::deallocate(alloc, self, 1);
            return;
        }
        // Asio's rules: the slot is cleared and the operation's memory freed before the handler runs.
        asio::get_associated_cancellation_slot(self->handler).clear();
        Handler h(std::move(self->handler));
        [[maybe_unused]] limiter_work<WorkExecutor> keep(std::move(self->work)); // released after the handler ran
        alloc_type alloc(asio::get_associated_allocator(h));
        std::allocator_traits<alloc_type>::destroy(alloc, self);
        std::allocator_traits<alloc_type>::deallocate(alloc, self, 1);
        std::move(h)(ec);
    }

    auto executor() const {
        if constexpr (std::is_void_v<WorkExecutor>)
            return asio::get_associated_executor(handler, this->owner->executor());
        else
            return work.ex;
    }

    Handler handler;
    [[no_unique_address]] limiter_work<WorkExecutor> work;
};

template <class Timer>
class limiter_impl {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using op = limiter_op<Timer>;
    static_assert(std::is_same_v<typename Timer::clock_type::time_point, time_point>,
                  "the limiter's timer must count steady_clock time points");

    limiter_impl(asio::any_io_executor ex, const rate_limit_options& o, std::shared_ptr<bucket_store> store)
        : ex_(std::move(ex)), core_(o, std::move(store)), timer_(ex_),
          rng_(o.jitter_seed != 0 ? o.jitter_seed : std::random_device{}()) {}

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    const asio::any_io_executor& executor() const noexcept { return ex_; }
    const rate_limit_options& options() const noexcept { return core_.options(); }

    std::uint32_t bucket(std::string_view endpoint) {
        std::lock_guard<std::mutex> l(mu_);
        return core_.bucket(endpoint);
    }

    template <class Handler>
    void start(Handler&& handler, std::uint32_t b, bool front) {
        using handler_type = std::decay_t<Handler>;
        auto hex = asio::get_associated_executor(handler, ex_);
        using work_type = decltype(asio::prefer(hex, asio::execution::outstanding_work.tracked));
        if constexpr (std::is_same_v<decltype(hex), asio::any_io_executor>) {
            if (hex == ex_) {
                start_op<limiter_handler_op<Timer, handler_type, void>>(std::forward<Handler>(handler),
                                                                        limiter_work<void>{}, b, front);
                return;
            }
        }
        limiter_work<work_type> w{asio::prefer(hex, asio::execution::outstanding_work.tracked)};
        start_op<limiter_handler_op<Timer, handler_type, work_type>>(std::forward<Handler>(handler), std::move(w), b,
                                                                     front);
    }

    /// Runs on the handler's executor: the one place an acquire completes.
    void deliver(op* w) {
        error_code ec{};
        {
            std::lock_guard<std::mutex> l(mu_);
            switch (w->st) {
            case limiter_waiter::state::granted:
                if (w->cancel_requested) {
                    // Cancelled at the moment of its grant: the slot goes to the next waiter, not to waste.
                    ec = asio::error::operation_aborted;
                    if (w->reserved) {
                        core_.give_back(*w);
                        if (!closed_) schedule_locked();
                    }
                }
                break;
            case limiter_waiter::state::rejected: ec = make_error_code(error::queue_full); break;
            default: ec = asio::error::operation_aborted; break; // cancelled while parked, or closed
            }
            w->st = limiter_waiter::state::fresh;
        }
        w->fn(w, op::action::finish, ec);
        release(); // the operation's reference
    }

    void cancel(op* w) {
        std::lock_guard<std::mutex> l(mu_);
        if (w->st == limiter_waiter::state::parked) {
            core_.unpark(*w);
            w->st = limiter_waiter::state::cancelled;
            w->fn(w, op::action::post, {});
            if (core_.parked() == 0) disarm_locked(); // an idle limiter must not hold its io_context running
        } else if (w->st == limiter_waiter::state::granted) {
            w->cancel_requested = true; // deliver() gives the slot back
        }
    }

    bool pause(std::string_view endpoint, std::chrono::steady_clock::duration d) {
        std::lock_guard<std::mutex> l(mu_);
        const bool global = core_.pause_after_429(core_.bucket(endpoint), now_locked(), d);
        schedule_locked(); // the armed timer may be too early now; let it move
        return global;
    }

    rate_limit_pause on_rate_limited(std::string_view endpoint, std::optional<std::chrono::milliseconds> retry_after,
                                     int attempt) {
        std::lock_guard<std::mutex> l(mu_);
        rate_limit_pause p;
        p.duration = retry_after ? *retry_after : full_jitter_backoff(core_.options().backoff, attempt, rng_);
        p.global = core_.pause_after_429(core_.bucket(endpoint), now_locked(), p.duration);
        schedule_locked();
        return p;
    }

    void sent(std::string_view endpoint) {
        if (!core_.options().count_from_send) return;
        std::lock_guard<std::mutex> l(mu_);
        core_.sent(core_.bucket(endpoint), now_locked());
        if (!closed_) schedule_locked(); // a full window whose oldest grant was pending has a time now
    }

    void unused(std::string_view endpoint) {
        if (!core_.options().count_from_send) return;
        std::lock_guard<std::mutex> l(mu_);
        core_.unused(core_.bucket(endpoint));
        if (!closed_) schedule_locked(); // the slot is free again
    }

    void pause_global(std::chrono::steady_clock::duration d) {
        std::lock_guard<std::mutex> l(mu_);
        core_.pause_global(now_locked() + d);
        schedule_locked();
    }

    bucket_stats stats(std::string_view endpoint) {
        std::lock_guard<std::mutex> l(mu_);
        const auto now = now_locked();
        const auto b = core_.bucket(endpoint);
        const auto u = core_.store().usage(b, now);
        const auto g = core_.store().usage(bucket_store::global_bucket, now);
        return {core_.parked(b), u.in_window, std::max(u.next_free, g.next_free), u.paused_until};
    }

    bucket_stats global_stats() {
        std::lock_guard<std::mutex> l(mu_);
        const auto now = now_locked();
        const auto g = core_.store().usage(bucket_store::global_bucket, now);
        return {core_.parked(), g.in_window, g.next_free, g.paused_until};
    }

    std::size_t overflow() {
        std::lock_guard<std::mutex> l(mu_);
        return core_.overflow();
    }

    void close() {
        std::lock_guard<std::mutex> l(mu_);
        if (closed_) return;
        closed_ = true;
        core_.drain([](limiter_waiter& n) {
            auto* w = static_cast<op*>(&n);
            w->st = limiter_waiter::state::closed;
            w->fn(w, op::action::post, {});
        });
        disarm_locked();
    }

private:
    ~limiter_impl() = default; // only release() deletes

    template <class Op, class Handler, class Work>
    void start_op(Handler&& handler, Work&& work, std::uint32_t b, bool front) {
        typename Op::alloc_type alloc(asio::get_associated_allocator(handler));
        Op* p = std::allocator_traits<typename Op::alloc_type>::allocate(alloc, 1);
        try {
            std::allocator_traits<typename Op::alloc_type>::construct(alloc, p, std::forward<Handler>(handler),
                                                                      std::forward<Work>(work));
        } catch (...) {
            std::allocator_traits<typename Op::alloc_type>::deallocate(alloc, p, 1);
            throw;
        }
        p->owner = this;
        add_ref(); // released by deliver()
        auto slot = asio::get_associated_cancellation_slot(p->handler);
        std::lock_guard<std::mutex> l(mu_);
        if (closed_) {
            p->st = limiter_waiter::state::closed;
        } else if (!core_.options().enabled) {
            p->st = limiter_waiter::state::granted; // nothing reserved: nothing to give back
        } else if (!core_.park(*p, b, front)) {
            p->st = limiter_waiter::state::rejected;
        } else {
            if (slot.is_connected()) slot.template emplace<cancel_handler>(p);
            schedule_locked(); // may grant p at once: completions are posted, never run inline
            return;
        }
        p->fn(p, op::action::post, {});
    }

    struct cancel_handler {
        explicit cancel_handler(op* p) noexcept : w(p) {}
        op* w;
        void operator()(asio::cancellation_type t) const {
            if (t != asio::cancellation_type::none) w->owner->cancel(w);
        }
    };

    time_point now_locked() {
        // Grants are recorded in time order even when threads read the clock in another order.
        last_now_ = std::max(last_now_, Timer::clock_type::now());
        return last_now_;
    }

    void schedule_locked() {
        const time_point next = core_.grant_ready(now_locked(), [](limiter_waiter& n) {
            auto* w = static_cast<op*>(&n);
            w->fn(w, op::action::post, {});
        });
        if (next == limiter_core::never) disarm_locked();
        else
            arm_locked(next);
    }

    void arm_locked(time_point at) {
        // An earlier armed time stays: the timer fires, finds nothing to grant yet and re-arms; moving it on
        // every acquire would cost a cancel and a new wait each time.
        if (armed_ && armed_at_ <= at) return;
        armed_ = true;
        armed_at_ = at;
        const std::uint64_t gen = ++timer_gen_;
        timer_.expires_at(at); // a wait still pending completes with operation_aborted and a stale generation
        add_ref();
        // The handler owns a reference, released even if it is destroyed unrun (io_context destroyed).
        timer_.async_wait([self = limiter_ref<Timer>(this), gen](const error_code&) { self->on_timer(gen); });
    }

    void disarm_locked() {
        if (!armed_) return;
        armed_ = false;
        ++timer_gen_;
        timer_.cancel();
    }

    void on_timer(std::uint64_t gen) {
        std::lock_guard<std::mutex> l(mu_);
        if (gen != timer_gen_ || closed_) return; // superseded by a later arm, or cancelled
        armed_ = false;
        schedule_locked();
    }

    std::atomic<std::size_t> refs_{1};
    std::mutex mu_;
    asio::any_io_executor ex_;
    limiter_core core_;
    Timer timer_;
    bool armed_ = false;
    time_point armed_at_{};
    std::uint64_t timer_gen_ = 0;
    time_point last_now_ = time_point::min();
    bool closed_ = false;
    std::minstd_rand rng_;

    template <class, class, class>
    friend struct limiter_handler_op;
};

} // namespace detail

/// The rate limiter on a given timer type; use `rate_limiter` (asio::steady_timer). See the opening comment
/// of this header for the semantics.
template <class Timer = asio::steady_timer>
class basic_rate_limiter {
public:
    using executor_type = asio::any_io_executor;
    using clock_type = typename Timer::clock_type;
    using time_point = std::chrono::steady_clock::time_point;
    using default_token = asio::use_awaitable_t<>;

    /// `ex` runs the limiter's timer. `store`: where the buckets live (null: in this process).
    explicit basic_rate_limiter(executor_type ex, rate_limit_options options = {},
                                std::shared_ptr<bucket_store> store = nullptr)
        : impl_(new detail::limiter_impl<Timer>(std::move(ex), options, std::move(store))) {}

    /// Ends every parked acquire with operation_aborted.
    ~basic_rate_limiter() {
        detail::in_destructor([this] { impl_->close(); });
    }
    basic_rate_limiter(const basic_rate_limiter&) = delete;
    basic_rate_limiter& operator=(const basic_rate_limiter&) = delete;

    executor_type get_executor() const noexcept { return impl_->executor(); }
    const rate_limit_options& options() const noexcept { return impl_->options(); }

    /// Waits for a slot in `endpoint`'s bucket and the global bucket; completes with (error_code): success
    /// once the request may be sent, error::queue_full when the queue bound is reached (at once), or
    /// operation_aborted when cancelled (any cancellation type; a grant that raced the cancellation goes to
    /// the next waiter) or when the limiter closes. The slot is consumed by the success: send the request.
    template <class CompletionToken = default_token>
    requires(!std::is_same_v<std::decay_t<CompletionToken>, acquire_position>) auto async_acquire(
        std::string_view endpoint, CompletionToken&& token = {}) {
        return async_acquire(endpoint, acquire_position::back, std::forward<CompletionToken>(token));
    }

    template <class CompletionToken = default_token>
    auto async_acquire(std::string_view endpoint, acquire_position position, CompletionToken&& token = {}) {
        // The endpoint is resolved to its bucket now, so the string need not outlive a deferred initiation.
        const std::uint32_t b = impl_->bucket(endpoint);
        return asio::async_initiate<CompletionToken, void(error_code)>(initiation{detail::limiter_ref<Timer>(impl_)},
                                                                       token, b, position == acquire_position::front);
    }

    /// Pauses `endpoint`'s bucket for `d` after a 429, and the global bucket too by the rule in this header's
    /// opening comment. Returns whether the global bucket paused.
    bool pause(std::string_view endpoint, std::chrono::steady_clock::duration d) { return impl_->pause(endpoint, d); }

    /// The 429 entry point: pauses for Retry-After when the answer had one, otherwise for a full-jitter
    /// backoff of `attempt` (1 = the first 429 of this request) within options().backoff.
    rate_limit_pause on_rate_limited(std::string_view endpoint, std::optional<std::chrono::milliseconds> retry_after,
                                     int attempt) {
        return impl_->on_rate_limited(endpoint, retry_after, attempt);
    }

    /// Pauses every endpoint for `d`.
    void pause_global(std::chrono::steady_clock::duration d) { impl_->pause_global(d); }

    /// With options().count_from_send (otherwise no-ops): after each successful acquire for `endpoint`, call
    /// exactly one of these. sent(): the request's first byte is leaving now, so the grant counts from now.
    /// unused(): the request was never written (its connection failed, it was cancelled), so the slot is free.
    void sent(std::string_view endpoint) { impl_->sent(endpoint); }
    void unused(std::string_view endpoint) { impl_->unused(endpoint); }

    bucket_stats stats(std::string_view endpoint) const { return impl_->stats(endpoint); }
    bucket_stats global_stats() const { return impl_->global_stats(); }
    /// Acquires parked beyond options().max_waiters (only with wait_when_full).
    std::size_t overflow() const { return impl_->overflow(); }

    /// Ends every parked acquire with operation_aborted and refuses new ones the same way. Idempotent.
    void close() { impl_->close(); }

private:
    struct initiation {
        detail::limiter_ref<Timer> impl;
        using executor_type = asio::any_io_executor;
        executor_type get_executor() const noexcept { return impl->executor(); }

        template <class Handler>
        void operator()(Handler&& handler, std::uint32_t bucket, bool front) const {
            impl->start(std::forward<Handler>(handler), bucket, front);
        }
    };

    detail::limiter_ref<Timer> impl_;
};

using rate_limiter = basic_rate_limiter<>;

/// The process's limiter for `api_key`: every client using the same key gets the same buckets (the server
/// counts per key), different keys are independent. The first call for a key creates the limiter with `ex`
/// and `options`; later calls get that limiter as it is (their ex and options are not used) for as long as
/// someone holds it. Thread-safe.
inline std::shared_ptr<rate_limiter> limiter_for_key(const asio::any_io_executor& ex, std::string_view api_key,
                                                     const rate_limit_options& options = {}) {
    const std::string id = detail::limiter_key_digest(api_key);
    auto& r = detail::limiter_registry::instance();
    std::lock_guard<std::mutex> l(r.mu);
    for (auto it = r.by_key.begin(); it != r.by_key.end();) // forget limiters nobody holds any more
        it = it->second.expired() ? r.by_key.erase(it) : std::next(it);
    auto& slot = r.by_key[id];
    if (auto existing = slot.lock()) return existing;
    auto made = std::make_shared<rate_limiter>(ex, options);
    slot = made;
    return made;
}

CALLSAVVY_END_NAMESPACE

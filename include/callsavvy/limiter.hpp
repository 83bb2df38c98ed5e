// callsavvy/limiter.hpp — the rate limiter: `auto grant = co_await limiter.async_acquire("listTickets")`
// suspends the calling coroutine until one more request to that endpoint fits both the endpoint's bucket and
// the key's global bucket, so the server never has a reason to answer 429 while the whole allowance is used.
//
// Choices, and why:
// - Exact windows: each bucket keeps a sliding log of its last N grant times (local_bucket_store); the next
//   grant may go at oldest_of_last_N + window + safety_margin. No span of `window` ever holds more than N
//   grants, so it is safe whether the server counts fixed minutes or a sliding 60 s.
// - Waiting: waiters sit in an intrusive FIFO per endpoint (no allocation beyond the operation itself); ONE
//   timer per limiter — fewer than one per bucket — is armed for the next instant at which any of its
//   waiters can go (a grant needs the endpoint's and the global bucket together, so one scheduler decides for
//   all buckets at once). No thread sleeps, nothing polls, and a waiter is woken exactly once: with its grant
//   or with its failure. Per grant: a look at the global bucket and at each endpoint that has waiters.
// - Fairness: FIFO within an endpoint; the global slot goes to the earliest waiter whose endpoint bucket has
//   room, so an exhausted endpoint never idles the others. acquire_position::front (a retry after a 429)
//   puts the waiter ahead of everyone, in its endpoint and for the global slot.
// - Cancellation, any type, through the handler's cancellation slot: a waiter cancelled while parked leaves
//   its queue and costs no slot. A waiter cancelled after its grant was decided but before the grant was
//   delivered gives the slot back and the next waiter gets it at once (no lost wake-up as in boostorg/mysql
//   #509); so does a grant whose completion is destroyed undelivered (its io_context went away). The caller's
//   deadline covers the wait: cancel the acquire when it passes.
// - 429s: pause() / on_rate_limited() pause the endpoint's bucket (Retry-After, else full-jitter backoff).
//   A 429 does not say which limit was hit, so the global bucket pauses too when (a) another endpoint got a
//   429 within the last global window, or (b) the global bucket held its maximum when the 429 came.
// - Bounded: beyond options.max_waiters parked waiters (per limiter) an acquire fails at once with
//   error::queue_full (condition::rate_limited), unless options.wait_when_full makes the bound advisory.
//   The buckets are bounded too: beyond 256 endpoint buckets the idle ones are forgotten (local_bucket_store),
//   so a raw call naming ever new resources does not grow memory without end.
// - Grants: an acquire completes with (error_code, rate_grant). The grant is move-only. With
//   options.count_from_send (the client sets it) it holds its slot as pending until grant.sent() says the
//   request's first byte leaves now, or until it is destroyed unsent, which gives the slot back: a wait for a
//   pooled connection or a slow TLS handshake between grant and write cannot push N+1 requests into one
//   server window. Without count_from_send the grant counts from the moment it was made and is empty.
// - One budget per key, one limiter per executor: limiter_for_key(ex, key) returns the process's limiter for
//   (key, executor). The limiters of one key share ONE bucket store (kept by a SHA-256 digest of the key, never
//   the key itself), so together they never exceed the limits, and each runs its timer on its own executor:
//   stopping or destroying one io_context (with its limiter) leaves the others' waiters going. The key's
//   options are the first limiter's for as long as any limiter of the key (or a grant of one) lives.
// - Sharing: a change in the shared store that can let another limiter's waiter go earlier (a send, a slot
//   given back) wakes the other limiters by a handler posted to each one's own executor, never inline: no
//   thread ever holds two limiters' locks, or calls into another limiter with its own lock held.
// - Fleets: the buckets' state sits behind bucket_store (<callsavvy/bucket_store.hpp>); a store shared by
//   several processes replaces local_bucket_store without touching the waiting.
// - Thread safety: unlike the client, a limiter IS internally synchronized (one mutex per limiter; the store
//   has its own). async_acquire, pause, stats, close and a grant's sent() may be called from any thread. The
//   timer runs on the limiter's executor, which some thread must run; each acquire completes on its handler's
//   associated executor (default: the limiter's), never inline. Outstanding work is tracked on the handler's
//   executor while the acquire is pending. As Asio requires of any operation, emit an acquire's cancellation
//   from its handler's executor (a strand in a threaded context).
// - Lifetimes: like any Asio I/O object, a limiter is destroyed before its io_context; the io_contexts that
//   waiters complete on must outlive their waits. Destroying or closing the limiter ends every wait at once;
//   its grants stay valid (they keep what they need alive) and may outlive it.
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

#include <algorithm>
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
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

/// Where an acquire joins its endpoint's queue: at the back (a new request), or at the front (a request
/// that got a 429 and must not lose its place to the ones that arrived after it).
enum class acquire_position { back, front };

/// What the limiter reports about one bucket.
struct bucket_stats {
    std::size_t queued = 0;    ///< this limiter's parked waiters (for the global bucket: all of them)
    std::size_t in_window = 0; ///< grants within the window that ends now (every limiter of the store)
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

/// An owning reference to a reference-counted limiter part (intrusive: pending operations, timer handlers and
/// grants hold one, 8 bytes each). Constructed from a pointer, it adopts a reference already counted.
template <class T>
class limiter_ref {
public:
    limiter_ref() noexcept = default;
    explicit limiter_ref(T* p) noexcept : p_(p) {}
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
    T* operator->() const noexcept { return p_; }
    T* get() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    T* p_ = nullptr;
};

/// What a grant and the other limiters sharing a store see of a limiter, whatever its timer type.
class limiter_base {
public:
    limiter_base(const limiter_base&) = delete;
    limiter_base& operator=(const limiter_base&) = delete;

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// A grant of bucket `b` (count_from_send) was sent now / was dropped unsent; the grant's bucket
    /// reference ends here.
    virtual void grant_sent(std::uint32_t b) = 0;
    virtual void grant_unused(std::uint32_t b) = 0;
    /// Another limiter of the store changed it so that a waiter here may go earlier: look again, from a
    /// handler posted to this limiter's executor. Called with the group's lock held, so the limiter cannot
    /// close (and its io_context cannot go) meanwhile; takes no limiter lock.
    virtual void post_wake() noexcept = 0;

protected:
    limiter_base() = default;
    virtual ~limiter_base() = default;

private:
    std::atomic<std::size_t> refs_{1};
};

/// The limiters (one per executor) that share one bucket store, and the options they all use: the first
/// limiter's. A limiter joins when it is made and leaves when it closes (before its io_context can go).
class limiter_group {
public:
    limiter_group(const rate_limit_options& o, std::shared_ptr<bucket_store> store, std::string scope = "default")
        : options_(o), store_(store ? std::move(store) : std::make_shared<local_bucket_store>(o)),
          scope_(std::move(scope)) {}

    const rate_limit_options& options() const noexcept { return options_; }
    /// What a shared store calls this group's key: limiter_for_key's digest of it.
    const std::string& scope() const noexcept { return scope_; }
    const std::shared_ptr<bucket_store>& store() const noexcept { return store_; }

    void join(limiter_base* l) {
        const std::lock_guard<std::mutex> g(mu_);
        members_.push_back(l);
    }
    void leave(limiter_base* l) {
        const std::lock_guard<std::mutex> g(mu_);
        std::erase(members_, l);
    }
    /// Wakes every member but `from` (null: every member), each on its own executor. Called with no limiter
    /// lock held.
    void wake_others(const limiter_base* from) {
        const std::lock_guard<std::mutex> g(mu_); // `from` may have left already: look, never guess
        for (limiter_base* m : members_)
            if (m != from) m->post_wake();
    }

private:
    rate_limit_options options_;
    std::shared_ptr<bucket_store> store_;
    std::string scope_;
    std::mutex mu_;
    std::vector<limiter_base*> members_{};
};

template <class Timer>
class limiter_impl;

} // namespace detail

/// The right to send one request, from a successful async_acquire. Move-only. With
/// rate_limit_options::count_from_send it holds the request's slot as pending: call sent() when the request's
/// first byte leaves, so the slot counts from then; destroyed unsent (the call failed before writing), it gives
/// the slot back. Without count_from_send, or default-constructed, or moved from, it is empty and does nothing:
/// the slot counted from the grant. It keeps its limiter's state alive, so it may outlive the limiter.
class rate_grant {
public:
    rate_grant() noexcept = default;
    rate_grant(rate_grant&&) noexcept = default;
    rate_grant& operator=(rate_grant&& o) noexcept {
        if (this != &o) {
            give_back();
            owner_ = std::move(o.owner_);
            bucket_ = o.bucket_;
        }
        return *this;
    }
    ~rate_grant() { give_back(); }

    /// The request's first byte leaves now. Empties the grant.
    void sent() {
        if (!owner_) return;
        const auto owner = std::move(owner_);
        owner->grant_sent(bucket_);
    }

    /// Holds a slot that sent() or the destructor will report.
    bool pending() const noexcept { return static_cast<bool>(owner_); }

private:
    template <class>
    friend class detail::limiter_impl;
    rate_grant(detail::limiter_ref<detail::limiter_base> owner, std::uint32_t bucket) noexcept
        : owner_(std::move(owner)), bucket_(bucket) {}

    void give_back() noexcept {
        if (!owner_) return;
        const auto owner = std::move(owner_);
        detail::in_destructor([&] { owner->grant_unused(bucket_); });
    }

    detail::limiter_ref<detail::limiter_base> owner_{};
    std::uint32_t bucket_ = 0;
};

namespace detail {

/// The part of a pending acquire that the limiter knows without knowing the handler's type. It holds one
/// reference to its bucket (limiter_waiter::bucket) until it completes, or hands it to the grant.
template <class Timer>
struct limiter_op : limiter_waiter {
    enum class action { post, finish, destroy };
    limiter_impl<Timer>* owner = nullptr;
    // type-erased: post the delivery, complete with (ec, grant), or free unrun
    void (*fn)(limiter_op*, action, error_code, rate_grant&&) = nullptr;
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
/// without having run (its io_context went away first), it gives a grant's slot back and frees the operation.
template <class Timer>
class limiter_delivery {
public:
    explicit limiter_delivery(limiter_op<Timer>* w) noexcept : w_(w) {}
    limiter_delivery(limiter_delivery&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
    limiter_delivery& operator=(limiter_delivery&&) = delete;
    ~limiter_delivery() {
        if (w_ != nullptr) w_->owner->abandon(w_);
    }
    void operator()() {
        limiter_op<Timer>* w = std::exchange(w_, nullptr);
        w->owner->deliver(w);
    }

private:
    limiter_op<Timer>* w_;
};

/// One reference to an endpoint's bucket, from async_acquire until the operation starts (a deferred token may
/// start it late, or never): meanwhile the id cannot be reclaimed and given to another endpoint.
template <class Timer>
class bucket_hold {
public:
    bucket_hold(limiter_ref<limiter_impl<Timer>> l, std::uint32_t id) noexcept : limiter_(std::move(l)), id_(id) {}
    bucket_hold(const bucket_hold& o) : limiter_(o.limiter_), id_(o.id_) {
        if (limiter_) limiter_->retain_bucket(id_);
    }
    bucket_hold(bucket_hold&& o) noexcept = default;
    bucket_hold& operator=(const bucket_hold&) = delete;
    ~bucket_hold() {
        if (limiter_) in_destructor([this] { limiter_->release_bucket(id_); });
    }
    /// The reference passes to the caller.
    std::uint32_t take() noexcept {
        limiter_ = {};
        return id_;
    }

private:
    limiter_ref<limiter_impl<Timer>> limiter_;
    std::uint32_t id_;
};

template <class Timer, class Handler, class WorkExecutor>
struct limiter_handler_op final : limiter_op<Timer> {
    using base = limiter_op<Timer>;
    using alloc_type = typename std::allocator_traits<asio::associated_allocator_t<Handler>>::template rebind_alloc<
        limiter_handler_op>;

    limiter_handler_op(Handler&& h, limiter_work<WorkExecutor> w) : handler(std::move(h)), work(std::move(w)) {
        this->fn = &do_fn;
    }

    static void do_fn(base* b, typename base::action a, error_code ec, rate_grant&& grant) {
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
        std::move(h)(ec, std::move(grant));
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

/// Constructs a limiter in a group that already exists (limiter_for_key's).
struct join_group_t {};
inline constexpr join_group_t join_group{};

template <class Timer>
class limiter_impl final : public limiter_base {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using op = limiter_op<Timer>;
    static_assert(std::is_same_v<typename Timer::clock_type::time_point, time_point>,
                  "the limiter's timer must count steady_clock time points");

    limiter_impl(asio::any_io_executor ex, std::shared_ptr<limiter_group> group)
        : ex_(std::move(ex)), group_(std::move(group)), core_(group_->options(), group_->store()),
          rng_(core_.options().jitter_seed != 0 ? core_.options().jitter_seed : std::random_device{}()) {
        timer_.emplace(ex_);
        if (core_.options().shared_store) {
            shared_ = core_.options().shared_store(ex_);
            if (shared_) core_.keep_names();
        }
        group_->join(this);
    }

    const asio::any_io_executor& executor() const noexcept { return ex_; }
    const rate_limit_options& options() const noexcept { return core_.options(); }
    const std::shared_ptr<limiter_group>& group() const noexcept { return group_; }

    /// `endpoint`'s bucket, resolved now (so the string need not outlive a deferred initiation) and held.
    bucket_hold<Timer> hold(std::string_view endpoint) {
        const std::lock_guard<std::mutex> l(mu_);
        const std::uint32_t b = core_.acquire(endpoint, now_locked());
        add_ref();
        return bucket_hold<Timer>(limiter_ref<limiter_impl>(this), b);
    }
    // The store locks itself and the core's store pointer never changes: no limiter lock needed.
    void retain_bucket(std::uint32_t b) { core_.retain(b); }
    void release_bucket(std::uint32_t b) { core_.release(b); }

    template <class Handler>
    void start(Handler&& handler, bucket_hold<Timer>&& hold, bool front) {
        using handler_type = std::decay_t<Handler>;
        auto hex = asio::get_associated_executor(handler, ex_);
        using work_type = decltype(asio::prefer(hex, asio::execution::outstanding_work.tracked));
        if constexpr (std::is_same_v<decltype(hex), asio::any_io_executor>) {
            if (hex == ex_) {
                start_op<limiter_handler_op<Timer, handler_type, void>>(std::forward<Handler>(handler),
                                                                        limiter_work<void>{}, hold, front);
                return;
            }
        }
        limiter_work<work_type> w{asio::prefer(hex, asio::execution::outstanding_work.tracked)};
        start_op<limiter_handler_op<Timer, handler_type, work_type>>(std::forward<Handler>(handler), std::move(w), hold,
                                                                     front);
    }

    /// Runs on the handler's executor: the one place an acquire completes.
    void deliver(op* w) {
        error_code ec{};
        rate_grant grant;
        bool gave_back = false;
        {
            const std::lock_guard<std::mutex> l(mu_);
            switch (w->st) {
            case limiter_waiter::state::granted:
                if (w->cancel_requested) {
                    // Cancelled at the moment of its grant: the slot goes to the next waiter, not to waste.
                    ec = asio::error::operation_aborted;
                    gave_back = give_back_locked(*w);
                } else if (w->reserved && core_.options().count_from_send) {
                    add_ref();
                    grant = rate_grant(limiter_ref<limiter_base>(this), w->bucket); // with the bucket reference
                }
                break;
            case limiter_waiter::state::rejected: ec = make_error_code(error::queue_full); break;
            case limiter_waiter::state::store_failed: ec = make_error_code(error::rate_store_unavailable); break;
            default: ec = asio::error::operation_aborted; break; // cancelled while parked, or closed
            }
            if (!grant.pending()) core_.release(w->bucket);
            w->st = limiter_waiter::state::fresh;
        }
        if (gave_back) group_->wake_others(this);
        w->fn(w, op::action::finish, ec, std::move(grant));
        release(); // the operation's reference
    }

    /// The delivery was destroyed unrun: a grant nobody received is given back. Takes no limiter lock, for a
    /// post that failed destroys the delivery inside a locked section: the store locks itself, the operation's
    /// state no longer changes, and the limiters (this one too) look again from a posted wake-up.
    void abandon(op* w) noexcept {
        const bool gave_back = w->st == limiter_waiter::state::granted && w->reserved;
        in_destructor([&] {
            if (gave_back) core_.give_back(*w);
            core_.release(w->bucket);
        });
        if (gave_back) in_destructor([this] { group_->wake_others(nullptr); });
        w->fn(w, op::action::destroy, {}, rate_grant{});
        release();
    }

    void cancel(op* w) {
        const std::lock_guard<std::mutex> l(mu_);
        if (w->st == limiter_waiter::state::parked) {
            core_.unpark(*w);
            w->st = limiter_waiter::state::cancelled;
            w->fn(w, op::action::post, {}, rate_grant{});
            if (core_.parked() == 0) disarm_locked(); // an idle limiter must not hold its io_context running
        } else if (w->st == limiter_waiter::state::granted) {
            w->cancel_requested = true; // deliver() gives the slot back
        }
    }

    bool pause(std::string_view endpoint, std::chrono::steady_clock::duration d) {
        return with_bucket(endpoint, [&](std::uint32_t b, time_point now) {
            const bool global = core_.pause_after_429(b, now, d);
            schedule_locked(); // the armed timer may be too early now; let it move
            return global;
        });
    }

    rate_limit_pause on_rate_limited(std::string_view endpoint, std::optional<std::chrono::milliseconds> retry_after,
                                     int attempt) {
        return with_bucket(endpoint, [&](std::uint32_t b, time_point now) {
            rate_limit_pause p;
            p.duration = retry_after ? *retry_after : full_jitter_backoff(core_.options().backoff, attempt, rng_);
            p.global = core_.pause_after_429(b, now, p.duration);
            schedule_locked();
            return p;
        });
    }

    void grant_sent(std::uint32_t b) override {
        {
            const std::lock_guard<std::mutex> l(mu_);
            core_.sent(b, now_locked());
            core_.release(b);
            schedule_locked(); // a full window whose oldest grant was pending has a time now
        }
        group_->wake_others(this);
    }

    void grant_unused(std::uint32_t b) override {
        {
            const std::lock_guard<std::mutex> l(mu_);
            core_.unused(b);
            core_.release(b);
            schedule_locked(); // the slot is free again
        }
        group_->wake_others(this);
    }

    void post_wake() noexcept override {
        if (wake_posted_.exchange(true, std::memory_order_acq_rel)) return; // one wake-up covers many changes
        add_ref();
        try {
            asio::post(ex_, waker{limiter_ref<limiter_impl>(this)});
        } catch (...) {
            wake_posted_.store(false, std::memory_order_release); // the waker and its reference are gone
        }
    }

    void pause_global(std::chrono::steady_clock::duration d) {
        const std::lock_guard<std::mutex> l(mu_);
        core_.pause_global(now_locked() + d);
        schedule_locked();
    }

    bucket_stats stats(std::string_view endpoint) {
        return with_bucket(endpoint, [&](std::uint32_t b, time_point now) {
            const auto u = core_.store().usage(b, now);
            const auto g = core_.store().usage(bucket_store::global_bucket, now);
            return bucket_stats{core_.parked(b), u.in_window, std::max(u.next_free, g.next_free), u.paused_until};
        });
    }

    bucket_stats global_stats() {
        const std::lock_guard<std::mutex> l(mu_);
        const auto now = now_locked();
        const auto g = core_.store().usage(bucket_store::global_bucket, now);
        return {core_.parked(), g.in_window, g.next_free, g.paused_until};
    }

    std::size_t overflow() {
        const std::lock_guard<std::mutex> l(mu_);
        return core_.overflow();
    }

    void close() {
        {
            const std::lock_guard<std::mutex> l(mu_);
            if (closed_) return;
            closed_ = true;
            core_.drain([](limiter_waiter& n) {
                auto* w = static_cast<op*>(&n);
                w->st = limiter_waiter::state::closed;
                w->fn(w, op::action::post, {}, rate_grant{});
            });
            disarm_locked();
            timer_.reset(); // the last use of the executor's io_context: grants may outlive it
        }
        // Without the lock: the store completes what it still has pending here, and each completion locks.
        if (shared_) shared_->close();
        group_->leave(this);
    }

    /// Grants that went ahead on the local buckets alone because the shared store failed
    /// (store_failure_policy::fall_back_local).
    std::size_t store_fallbacks() {
        const std::lock_guard<std::mutex> l(mu_);
        return store_fallbacks_;
    }

private:
    ~limiter_impl() override { // only release() deletes, and the limiter closed before that
        if (timer_) in_destructor([this] { group_->leave(this); });
    }

    struct waker {
        limiter_ref<limiter_impl> self;
        void operator()() const {
            self->wake_posted_.store(false, std::memory_order_release);
            const std::lock_guard<std::mutex> l(self->mu_);
            self->schedule_locked();
        }
    };

    template <class Op, class Handler, class Work>
    void start_op(Handler&& handler, Work&& work, bucket_hold<Timer>& hold, bool front) {
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
        p->bucket = hold.take(); // released by deliver() or abandon(), or handed to the grant
        add_ref();               // released by deliver() or abandon()
        auto slot = asio::get_associated_cancellation_slot(p->handler);
        const std::lock_guard<std::mutex> l(mu_);
        if (closed_) {
            p->st = limiter_waiter::state::closed;
        } else if (!core_.options().enabled) {
            p->st = limiter_waiter::state::granted; // nothing reserved: nothing to give back
        } else if (!core_.park(*p, p->bucket, front)) {
            p->st = limiter_waiter::state::rejected;
        } else {
            if (slot.is_connected()) slot.template emplace<cancel_handler>(p);
            schedule_locked(); // may grant p at once: completions are posted, never run inline
            return;
        }
        p->fn(p, op::action::post, {}, rate_grant{});
    }

    struct cancel_handler {
        explicit cancel_handler(op* p) noexcept : w(p) {}
        op* w;
        void operator()(asio::cancellation_type t) const {
            if (t != asio::cancellation_type::none) w->owner->cancel(w);
        }
    };

    /// Runs f(bucket, now) with the limiter locked and `endpoint`'s bucket held.
    template <class F>
    auto with_bucket(std::string_view endpoint, F&& f) {
        const std::lock_guard<std::mutex> l(mu_);
        const auto now = now_locked();
        struct held {
            limiter_core& core;
            std::uint32_t b;
            ~held() { core.release(b); }
        } h{core_, core_.acquire(endpoint, now)};
        return f(h.b, now);
    }

    /// Takes back the slot of a grant that was cancelled before it was received; true when there was one.
    bool give_back_locked(limiter_waiter& w) {
        if (!w.reserved) return false;
        core_.give_back(w);
        schedule_locked();
        return true;
    }

    time_point now_locked() {
        // Grants are recorded in time order even when threads read the clock in another order.
        last_now_ = std::max(last_now_, Timer::clock_type::now());
        return last_now_;
    }

    void schedule_locked() {
        if (closed_) return;
        const time_point next = core_.grant_ready(now_locked(), [this](limiter_waiter& n) {
            auto* w = static_cast<op*>(&n);
            if (shared_) ask_shared_locked(w);
            else
                w->fn(w, op::action::post, {}, rate_grant{});
        });
        if (next == limiter_core::never) disarm_locked();
        else
            arm_locked(next);
    }

    /// The local buckets granted `w`: now the shared store decides. Its answer comes later (the usual case) or
    /// at once; either way `w` stays granted (holding its local slot) until then.
    void ask_shared_locked(op* w) {
        const shared_reserve r{group_->scope(), core_.name(w->bucket), core_.limits(w->bucket), core_.options().global,
                               core_.options().safety_margin};
        add_ref(); // released by the completion, or below when the answer is already there
        // Two pointers: small enough for std::function to keep without allocating.
        std::optional<shared_decision> now;
        try {
            now = shared_->reserve(r, [self = this, w](const shared_decision& d) { self->on_shared(w, d); });
        } catch (...) {
            now = shared_decision{make_error_code(std::errc::not_enough_memory)};
        }
        if (!now) return;
        on_shared_locked(w, *now, false); // inside grant_ready: it looks again by itself
        release();                        // never the last: the caller of schedule_locked holds one
    }

    void on_shared(op* w, const shared_decision& d) {
        {
            const std::lock_guard<std::mutex> l(mu_);
            on_shared_locked(w, d, true);
        }
        release();
    }

    void on_shared_locked(op* w, const shared_decision& d, bool reschedule) {
        if (closed_ || w->cancel_requested) {
            // deliver() gives the local slot back and reports the cancellation (or the close).
            if (closed_ && !w->cancel_requested) {
                core_.give_back(*w);
                w->st = limiter_waiter::state::closed;
            }
        } else if (d.ec) {
            if (core_.options().on_store_failure == store_failure_policy::fall_back_local) {
                ++store_fallbacks_; // the local slot stands: the process's own limits still hold
            } else {
                core_.give_back(*w);
                w->st = limiter_waiter::state::store_failed;
                if (reschedule) schedule_locked();
            }
        } else if (!d.granted()) {
            // Other processes hold the slots: back in its place, its buckets paused until the store's buckets
            // admit one more, so no waiter of this process asks again before then.
            core_.give_back(*w);
            const auto now = now_locked();
            const auto at_least = [](std::chrono::microseconds us) {
                return std::max<std::chrono::steady_clock::duration>(us, std::chrono::milliseconds(1));
            };
            if (d.endpoint_wait.count() > 0) core_.pause(w->bucket, now + at_least(d.endpoint_wait));
            if (d.global_wait.count() > 0) core_.pause_global(now + at_least(d.global_wait));
            core_.repark(*w);
            if (reschedule) schedule_locked();
            return;
        }
        w->fn(w, op::action::post, {}, rate_grant{});
    }

    void arm_locked(time_point at) {
        // An earlier armed time stays: the timer fires, finds nothing to grant yet and re-arms; moving it on
        // every acquire would cost a cancel and a new wait each time.
        if (armed_ && armed_at_ <= at) return;
        armed_ = true;
        armed_at_ = at;
        const std::uint64_t gen = ++timer_gen_;
        timer_->expires_at(at); // a wait still pending completes with operation_aborted and a stale generation
        add_ref();
        // The handler owns a reference, released even if it is destroyed unrun (io_context destroyed).
        timer_->async_wait([self = limiter_ref<limiter_impl>(this), gen](const error_code&) { self->on_timer(gen); });
    }

    void disarm_locked() {
        if (!armed_) return;
        armed_ = false;
        ++timer_gen_;
        timer_->cancel();
    }

    void on_timer(std::uint64_t gen) {
        const std::lock_guard<std::mutex> l(mu_);
        if (gen != timer_gen_ || closed_) return; // superseded by a later arm, or cancelled
        armed_ = false;
        schedule_locked();
    }

    std::mutex mu_;
    asio::any_io_executor ex_;
    std::shared_ptr<limiter_group> group_;
    limiter_core core_;
    std::optional<Timer> timer_{}; ///< until close()
    bool armed_ = false;
    time_point armed_at_{};
    std::uint64_t timer_gen_ = 0;
    time_point last_now_ = time_point::min();
    bool closed_ = false;
    std::atomic<bool> wake_posted_{false};
    std::minstd_rand rng_;
    std::shared_ptr<shared_bucket_store> shared_{}; ///< this limiter's connection to the fleet's store
    std::size_t store_fallbacks_ = 0;

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
    /// What an acquire completes with.
    using signature = void(error_code, rate_grant);

    /// `ex` runs the limiter's timer. `store`: where the buckets live (null: in this process).
    explicit basic_rate_limiter(executor_type ex, rate_limit_options options = {},
                                std::shared_ptr<bucket_store> store = nullptr)
        : basic_rate_limiter(detail::join_group, std::move(ex),
                             std::make_shared<detail::limiter_group>(options, std::move(store))) {}

    /// A limiter on `ex` that shares `share_with`'s buckets and options: together they never exceed the
    /// limits, each runs its own timer on its own executor, and either may be destroyed (before its own
    /// io_context) while the other keeps working.
    basic_rate_limiter(executor_type ex, const basic_rate_limiter& share_with)
        : basic_rate_limiter(detail::join_group, std::move(ex), share_with.impl_->group()) {}

    /// limiter_for_key's: a limiter on `ex` in a group of limiters sharing one store.
    basic_rate_limiter(detail::join_group_t, executor_type ex, std::shared_ptr<detail::limiter_group> group)
        : impl_(new detail::limiter_impl<Timer>(std::move(ex), std::move(group))) {}

    /// Ends every parked acquire with operation_aborted. Grants it gave stay valid.
    ~basic_rate_limiter() {
        detail::in_destructor([this] { impl_->close(); });
    }
    basic_rate_limiter(const basic_rate_limiter&) = delete;
    basic_rate_limiter& operator=(const basic_rate_limiter&) = delete;

    executor_type get_executor() const noexcept { return impl_->executor(); }
    const rate_limit_options& options() const noexcept { return impl_->options(); }

    /// Waits for a slot in `endpoint`'s bucket and the global bucket; completes with (error_code, rate_grant):
    /// success and the grant once the request may be sent, error::queue_full when the queue bound is reached
    /// (at once), or operation_aborted when cancelled (any cancellation type; a grant that raced the
    /// cancellation goes to the next waiter) or when the limiter closes; the grant is empty on failure. With
    /// use_awaitable (the default) `co_await` returns the grant and throws on failure.
    template <class CompletionToken = default_token>
    requires(!std::is_same_v<std::decay_t<CompletionToken>, acquire_position>) auto async_acquire(
        std::string_view endpoint, CompletionToken&& token = {}) {
        return async_acquire(endpoint, acquire_position::back, std::forward<CompletionToken>(token));
    }

    template <class CompletionToken = default_token>
    auto async_acquire(std::string_view endpoint, acquire_position position, CompletionToken&& token = {}) {
        return asio::async_initiate<CompletionToken, signature>(initiation{impl_}, token, impl_->hold(endpoint),
                                                                position == acquire_position::front);
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

    bucket_stats stats(std::string_view endpoint) const { return impl_->stats(endpoint); }
    bucket_stats global_stats() const { return impl_->global_stats(); }
    /// Acquires parked beyond options().max_waiters (only with wait_when_full).
    std::size_t overflow() const { return impl_->overflow(); }

    /// Grants made on this process's buckets alone because the shared store failed (fall_back_local).
    std::size_t store_fallbacks() const { return impl_->store_fallbacks(); }

    /// Ends every parked acquire with operation_aborted and refuses new ones the same way. Idempotent.
    void close() { impl_->close(); }

private:
    struct initiation {
        detail::limiter_ref<detail::limiter_impl<Timer>> impl;
        using executor_type = asio::any_io_executor;
        executor_type get_executor() const noexcept { return impl->executor(); }

        template <class Handler>
        void operator()(Handler&& handler, detail::bucket_hold<Timer> hold, bool front) const {
            impl->start(std::forward<Handler>(handler), std::move(hold), front);
        }
    };

    detail::limiter_ref<detail::limiter_impl<Timer>> impl_;
};

using rate_limiter = basic_rate_limiter<>;

/// The process's limiter for `api_key` on `ex`: every client using the same key shares the same buckets (the
/// server counts per key), different keys are independent. There is one limiter per (key, executor): the
/// limiters of one key on different executors are different objects over ONE bucket store, each with its timer
/// on its own executor. The first call for a key sets its `options` (later calls' are not used) for as long as
/// any limiter of the key, or a grant of one, lives. Thread-safe.
inline std::shared_ptr<rate_limiter> limiter_for_key(const asio::any_io_executor& ex, std::string_view api_key,
                                                     const rate_limit_options& options = {}) {
    return detail::limiter_registry<rate_limiter, detail::limiter_group>::instance().get(
        api_key, ex,
        [&] { return std::make_shared<detail::limiter_group>(options, nullptr, detail::limiter_key_digest(api_key)); },
        [](const asio::any_io_executor& e, std::shared_ptr<detail::limiter_group> g) {
            return std::make_shared<rate_limiter>(detail::join_group, e, std::move(g));
        });
}

CALLSAVVY_END_NAMESPACE

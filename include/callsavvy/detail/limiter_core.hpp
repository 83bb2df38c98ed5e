// callsavvy/detail/limiter_core.hpp — the rate limiter's scheduler without I/O: for a given `now` it decides
// which parked waiters may go and when to look again, over the buckets of a bucket_store
// (<callsavvy/bucket_store.hpp>). The Asio adapter in <callsavvy/limiter.hpp> only adds a timer, locking and
// completion handlers; tests drive this in virtual time.
#pragma once

#include <callsavvy/bucket_store.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/rate_limit_options.hpp>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

namespace detail {

/// A parked acquire, linked into its endpoint's FIFO. The Asio adapter derives its operation from this, so
/// parking allocates nothing beyond the operation itself.
struct limiter_waiter {
    enum class state : std::uint8_t { fresh, parked, granted, cancelled, rejected, closed, store_failed };

    limiter_waiter* prev = nullptr;
    limiter_waiter* next = nullptr;
    std::uint64_t seq = 0;                              ///< arrival order across endpoints (front: smaller)
    std::chrono::steady_clock::time_point granted_at{}; ///< for give_back
    std::uint32_t bucket = 0;
    state st = state::fresh;
    bool cancel_requested = false; ///< cancelled after its grant was decided, before it was delivered
    bool reserved = false;         ///< the grant holds a slot in the store
};

/// The scheduler: per endpoint a FIFO of waiters; at each `now` it grants, in arrival order, every waiter whose
/// endpoint bucket and the global bucket both admit it, and says when to look again. Not locked: the adapter
/// holds its mutex around every call. The store locks itself: the limiters of one key share it.
class limiter_core {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;
    static constexpr time_point never = time_point::max();

    limiter_core(const rate_limit_options& o, std::shared_ptr<bucket_store> store)
        : opts_(o), store_(store ? std::move(store) : std::make_shared<local_bucket_store>(o)) {}

    const rate_limit_options& options() const noexcept { return opts_; }
    bucket_store& store() noexcept { return *store_; }

    /// The bucket id of `endpoint` (>= 1), made on first use, with a reference held until release(id): while
    /// an acquire, a parked waiter or a pending grant holds one, the id keeps meaning this endpoint.
    std::uint32_t acquire(std::string_view endpoint, time_point now) {
        const auto id = static_cast<std::uint32_t>(store_->acquire(endpoint, now));
        if (id >= queues_.size())
            queues_.resize(
                id + 1, endpoint_queue{nullptr, nullptr, 0, 0, opts_.per_endpoint, opts_.max_waiters_per_endpoint, {}});
        auto& q = queues_[id];
        // An id is only reused for another endpoint once nothing refers to it: a waiter's queue keeps its
        // endpoint's name and rules until it is granted.
        if (q.size == 0 && (keep_names_ || !opts_.endpoint_overrides.empty()) && q.name != endpoint) {
            q.name.assign(endpoint);
            q.limits = opts_.per_endpoint;
            q.max_waiters = opts_.max_waiters_per_endpoint;
            if (const auto o = opts_.endpoint_overrides.find(endpoint); o != opts_.endpoint_overrides.end()) {
                if (o->second.limits) q.limits = *o->second.limits;
                if (o->second.max_waiters) q.max_waiters = *o->second.max_waiters;
            }
        }
        return id;
    }
    /// Keep each bucket's endpoint name (a shared store asks by name).
    void keep_names() noexcept { keep_names_ = true; }
    std::string_view name(std::uint32_t b) const noexcept { return queues_[b].name; }
    const bucket_limits& limits(std::uint32_t b) const noexcept { return queues_[b].limits; }
    void retain(std::uint32_t b) { store_->retain(b); }
    void release(std::uint32_t b) { store_->release(b); }

    /// Parks `w` at the back (or, to retry after a 429, the front) of its endpoint's queue. False when the
    /// queue bound is reached and the options say to fail fast. A retry at the front is never refused: it
    /// was admitted once, and a 429 must not turn into a lost call.
    bool park(limiter_waiter& w, std::uint32_t b, bool front) {
        auto& q = queues_[b];
        if (!front && (parked_ >= opts_.max_waiters || q.size >= q.max_waiters)) {
            if (!opts_.wait_when_full) return false;
            ++overflow_;
        }
        w.bucket = b;
        w.st = limiter_waiter::state::parked;
        w.prev = w.next = nullptr;
        if (front) {
            w.seq = front_seq_--;
            w.next = q.head;
            (q.head ? q.head->prev : q.tail) = &w;
            q.head = &w;
        } else {
            w.seq = back_seq_++;
            w.prev = q.tail;
            (q.tail ? q.tail->next : q.head) = &w;
            q.tail = &w;
        }
        if (q.size++ == 0) activate(b);
        ++parked_;
        return true;
    }

    /// Puts a granted waiter back in its place (by arrival order) in its endpoint's queue: a shared store
    /// refused the grant its local buckets allowed. Never refused: it was admitted once.
    void repark(limiter_waiter& w) {
        auto& q = queues_[w.bucket];
        limiter_waiter* after = q.tail;
        while (after != nullptr && after->seq > w.seq) after = after->prev;
        w.st = limiter_waiter::state::parked;
        w.prev = after;
        w.next = after ? after->next : q.head;
        (w.next ? w.next->prev : q.tail) = &w;
        (after ? after->next : q.head) = &w;
        if (q.size++ == 0) activate(w.bucket);
        ++parked_;
    }

    /// Takes a parked waiter out of its queue (cancelled before its grant: it cost no slot).
    void unpark(limiter_waiter& w) {
        assert(w.st == limiter_waiter::state::parked);
        auto& q = queues_[w.bucket];
        (w.prev ? w.prev->next : q.head) = w.next;
        (w.next ? w.next->prev : q.tail) = w.prev;
        w.prev = w.next = nullptr;
        if (--q.size == 0) deactivate(w.bucket);
        --parked_;
        w.st = limiter_waiter::state::fresh;
    }

    /// Grants every waiter that may go at `now`, calling on_grant(waiter&) for each in grant order, and
    /// returns when something may next be granted (`never` when nothing is parked). Per grant: one look at
    /// the global bucket and one at each endpoint that has waiters (a handful: the catalog has 35).
    template <class OnGrant>
    time_point grant_ready(time_point now, OnGrant&& on_grant) {
        int lost_races = 0;
        for (;;) {
            if (active_.empty()) return never;
            const time_point global_free = store_->next_free(bucket_store::global_bucket, now);
            time_point endpoint_free = never;
            limiter_waiter* best = nullptr;
            for (const std::uint32_t b : active_) {
                const time_point t = store_->next_free(b, now);
                if (t <= now) {
                    // The global slot goes to the earliest waiter whose endpoint has room: a backlog on an
                    // exhausted endpoint never idles the others (no head-of-line blocking).
                    if (best == nullptr || queues_[b].head->seq < best->seq) best = queues_[b].head;
                } else {
                    endpoint_free = std::min(endpoint_free, t);
                }
            }
            if (global_free > now) return best != nullptr ? global_free : std::max(global_free, endpoint_free);
            if (best == nullptr) return endpoint_free;
            if (!store_->try_reserve(best->bucket, now)) {
                // A shared store lost the slot to another process between next_free and try_reserve: ask
                // again, and if that keeps happening look again a margin later rather than spin.
                if (++lost_races > 3)
                    return now + std::max<duration>(opts_.safety_margin, std::chrono::milliseconds(1));
                continue;
            }
            unpark(*best);
            best->st = limiter_waiter::state::granted;
            best->reserved = true;
            best->granted_at = now;
            on_grant(*best);
        }
    }

    /// Gives back the slot of a grant whose waiter was cancelled before it could use it.
    void give_back(limiter_waiter& w) {
        if (!w.reserved) return;
        store_->give_back(w.bucket, w.granted_at);
        w.reserved = false;
    }

    /// A 429 answered a request to bucket `b` at `now`: pauses that endpoint for `d`, and the global bucket
    /// too when the 429 likely came from the global limit, which the answer does not say (spec §1):
    ///  - another endpoint also got a 429 within the last global window (two endpoints limited at once is
    ///    the global limit's signature, or a second process using the key), or
    ///  - the global bucket was full (in_window >= max) when the 429 came.
    /// Returns true when the global bucket was paused as well.
    bool pause_after_429(std::uint32_t b, time_point now, duration d) {
        store_->pause(b, now + d);
        // The 429s are remembered by the store, so limiters sharing it (one per executor) see each other's.
        const bool other_endpoint = store_->record_429(b, now) > now - opts_.global.window;
        const bool global =
            other_endpoint || store_->usage(bucket_store::global_bucket, now).in_window >= opts_.global.max_requests;
        if (global) store_->pause(bucket_store::global_bucket, now + d);
        return global;
    }

    void pause(std::uint32_t b, time_point until) { store_->pause(b, until); }
    void sent(std::uint32_t b, time_point at) { store_->sent(b, at); }
    void unused(std::uint32_t b) { store_->unused(b); }
    void pause_global(time_point until) { store_->pause(bucket_store::global_bucket, until); }

    /// Removes every parked waiter (the limiter is closing), calling f(waiter&) for each.
    template <class F>
    void drain(F&& f) {
        while (!active_.empty()) {
            limiter_waiter& w = *queues_[active_.back()].head;
            unpark(w);
            f(w);
        }
    }

    std::size_t parked() const noexcept { return parked_; }
    std::size_t parked(std::uint32_t b) const noexcept { return b < queues_.size() ? queues_[b].size : 0; }
    std::size_t overflow() const noexcept { return overflow_; }

private:
    struct endpoint_queue {
        limiter_waiter* head = nullptr;
        limiter_waiter* tail = nullptr;
        std::size_t size = 0;
        std::size_t active_index = 0; ///< position in active_ while non-empty
        bucket_limits limits{};       ///< the endpoint's (with its override), for a shared store
        std::size_t max_waiters = 0;  ///< rate_limit_options::max_waiters_per_endpoint, or the override's
        std::string name{};           ///< kept only with overrides or a shared store
    };

    void activate(std::uint32_t b) {
        queues_[b].active_index = active_.size();
        active_.push_back(b);
    }
    void deactivate(std::uint32_t b) {
        const std::size_t i = queues_[b].active_index;
        active_[i] = active_.back();
        queues_[active_[i]].active_index = i;
        active_.pop_back();
    }

    rate_limit_options opts_{};
    std::shared_ptr<bucket_store> store_{};
    std::vector<endpoint_queue> queues_{}; // by bucket id; [0] (global) unused
    std::vector<std::uint32_t> active_{};  // endpoints with waiters
    std::size_t parked_ = 0;
    std::size_t overflow_ = 0;
    bool keep_names_ = false;
    // Arrival order: back waiters count up from the middle of the range, front waiters down from it, so a
    // front waiter is older than every waiter that arrived normally.
    std::uint64_t back_seq_ = std::uint64_t{1} << 63;
    std::uint64_t front_seq_ = (std::uint64_t{1} << 63) - 1;
};

} // namespace detail

CALLSAVVY_END_NAMESPACE

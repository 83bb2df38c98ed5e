// callsavvy/detail/limiter_core.hpp — the rate limiter without I/O: the options, the bucket store (the seam
// where a store shared by several processes can replace the in-process one), and the scheduler that decides,
// for a given `now`, which parked waiters may go and when to look again. The Asio adapter in
// <callsavvy/limiter.hpp> only adds a timer, locking and completion handlers; tests drive this in virtual time.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/retry.hpp>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

/// At most `max_requests` grants in any span of `window`.
struct bucket_limits {
    std::size_t max_requests = 50;
    std::chrono::milliseconds window{60000};
};

struct rate_limit_options {
    bool enabled = true; ///< false: every acquire completes at once (a server without limits, a test)
    bucket_limits per_endpoint{50, std::chrono::seconds(60)}; ///< each resource URI's own bucket
    bucket_limits global{100, std::chrono::seconds(60)};      ///< every request of the key
    /// Added to every window: requests leave a little later than the window strictly allows, to absorb the
    /// latency between our grant and the server's count, and clock skew.
    std::chrono::milliseconds safety_margin{250};
    /// Parked waiters beyond which an acquire fails at once with error::queue_full ...
    std::size_t max_waiters = 1'000'000;
    /// ... unless this is set: then the bound is advisory (stats().overflow counts acquires beyond it).
    bool wait_when_full = false;
    /// The pause after a 429 without Retry-After: full jitter, growing with the attempt.
    backoff_options backoff{std::chrono::milliseconds(1000), std::chrono::milliseconds(60000)};
    std::uint64_t jitter_seed = 0; ///< seed of the 429 backoff's jitter; 0 picks a random one
    /// The server counts a request when it arrives, not when the limiter granted it, and between the two a
    /// call may wait for a pooled connection or a TLS handshake for longer than the safety margin. With this
    /// on, a grant holds its place in both buckets as "pending" until the caller says when the request
    /// actually left (sent()) or that it never did (unused()): the window is then kept over send times, and a
    /// full window whose oldest grant is still pending admits nobody until that grant is sent. The client
    /// turns it on for the limiters it uses; a caller who never reports sends leaves it off.
    bool count_from_send = false;
};

/// One bucket as the store sees it.
struct bucket_usage {
    std::size_t in_window = 0;                            ///< grants within the window that ends now
    std::chrono::steady_clock::time_point next_free{};    ///< earliest time (>= now) it admits another grant
    std::chrono::steady_clock::time_point paused_until{}; ///< no grant before this (a 429 pause)
};

/// Where the buckets' grant history and pauses live: the seam for fleets. The in-process store below is the
/// default; a store shared by several processes using one key (Redis, say) implements the same five calls
/// and the waiting logic stays as it is. Bucket 0 is the global bucket; endpoint buckets get ids >= 1.
///
/// The limiter calls a store with its own lock held, one call at a time, and only with non-decreasing `now`.
/// try_reserve() is the only call that must be atomic across processes: between next_free() and it, another
/// process may have taken the slot, and then it returns false and the limiter asks again.
class bucket_store {
public:
    using time_point = std::chrono::steady_clock::time_point;
    static constexpr std::size_t global_bucket = 0;

    virtual ~bucket_store() = default;
    /// The id of `endpoint`'s bucket, made on first use (ids are small and dense: the limiter indexes by them).
    virtual std::size_t bucket(std::string_view endpoint) = 0;
    /// The earliest time >= now at which bucket `id` admits one more grant: its window and its pause.
    virtual time_point next_free(std::size_t id, time_point now) = 0;
    /// Records one grant at `now` in bucket `id` and in the global bucket, if both admit it at `now`.
    virtual bool try_reserve(std::size_t id, time_point now) = 0;
    /// Takes back a grant that try_reserve(id, at) recorded and that was never used (its waiter was
    /// cancelled at the moment of the grant).
    virtual void give_back(std::size_t id, time_point at) = 0;
    /// No grant in bucket `id` before `until`; a shorter pause never shortens a longer one.
    virtual void pause(std::size_t id, time_point until) = 0;
    virtual bucket_usage usage(std::size_t id, time_point now) = 0;
    /// With rate_limit_options::count_from_send: the oldest pending grant of bucket `id` (and of the global
    /// bucket) left at `at` (>= its grant time), so it now counts from `at`. Grants are anonymous: which of
    /// the pending grants is moved does not change which windows are full.
    virtual void sent(std::size_t id, time_point at) = 0;
    /// With rate_limit_options::count_from_send: the newest pending grant of bucket `id` (and of the global
    /// bucket) was never sent (its call ended before writing) and is taken back.
    virtual void unused(std::size_t id) = 0;
};

/// The in-process store: per bucket a ring buffer of its last N grant times (a sliding log), so "may one more
/// go at t" is one comparison, t >= oldest_of_last_N + window + margin, and the invariant "never more than N
/// grants in any window" holds by construction, whether the server counts fixed minutes or a sliding 60 s.
class local_bucket_store final : public bucket_store {
public:
    explicit local_bucket_store(const rate_limit_options& o)
        : endpoint_limits_(o.per_endpoint), margin_(o.safety_margin), pending_(o.count_from_send) {
        buckets_.emplace_back(o.global);
    }

    std::size_t bucket(std::string_view endpoint) override {
        const auto it = ids_.find(endpoint);
        if (it != ids_.end()) return it->second;
        buckets_.emplace_back(endpoint_limits_);
        ids_.emplace(std::string(endpoint), buckets_.size() - 1);
        return buckets_.size() - 1;
    }

    time_point next_free(std::size_t id, time_point now) override { return buckets_[id].next_free(now, margin_); }

    bool try_reserve(std::size_t id, time_point now) override {
        auto& g = buckets_[global_bucket];
        auto& b = buckets_[id];
        if (b.next_free(now, margin_) > now || g.next_free(now, margin_) > now) return false;
        b.record(now, pending_);
        g.record(now, pending_);
        return true;
    }

    void sent(std::size_t id, time_point at) override {
        if (!pending_) return;
        buckets_[id].mark_sent(at);
        buckets_[global_bucket].mark_sent(at);
    }

    void unused(std::size_t id) override {
        if (!pending_) return;
        buckets_[id].erase_newest_pending();
        buckets_[global_bucket].erase_newest_pending();
    }

    void give_back(std::size_t id, time_point at) override {
        buckets_[id].erase(at);
        buckets_[global_bucket].erase(at);
    }

    void pause(std::size_t id, time_point until) override {
        auto& p = buckets_[id].paused_until;
        p = std::max(p, until);
    }

    bucket_usage usage(std::size_t id, time_point now) override {
        const auto& b = buckets_[id];
        return {b.in_window(now), b.next_free(now, margin_), b.paused_until};
    }

private:
    struct sliding_log {
        explicit sliding_log(bucket_limits l)
            : window(l.window), times(std::max<std::size_t>(l.max_requests, 1)) {} // N = 0 would never grant

        struct entry {
            time_point at{};
            bool pending = false; ///< granted, not sent yet (count_from_send): `at` is only a lower bound
        };

        // Sorted by time: grants are recorded with non-decreasing `now`, erase keeps the order, and mark_sent
        // moves the entry it changes to its place. A pending entry cannot leave the log (next_free admits
        // nobody while it is the oldest of a full log), so every entry pushed out counts from its send time.
        std::chrono::milliseconds window;
        std::vector<entry> times; // capacity N
        std::size_t start = 0;    // the oldest
        std::size_t count = 0;
        std::size_t pending = 0;
        time_point paused_until = time_point::min();

        std::size_t at(std::size_t i) const { return (start + i) % times.size(); }

        time_point next_free(time_point now, std::chrono::milliseconds margin) const {
            time_point t = std::max(now, paused_until);
            if (count == times.size()) {
                const entry& oldest = times[start];
                // Its send time, unknown yet, decides when the window has room: sent() reschedules.
                if (oldest.pending) return time_point::max();
                t = std::max(t, oldest.at + window + margin);
            }
            return t;
        }
        void record(time_point t, bool is_pending) {
            pending += is_pending ? 1 : 0;
            if (count < times.size()) {
                times[at(count)] = {t, is_pending};
                ++count;
            } else {
                times[start] = {t, is_pending}; // the oldest leaves the log: it no longer constrains anything
                start = at(1);
            }
        }
        void remove_at(std::size_t i) {
            for (std::size_t j = i; j + 1 < count; ++j) times[at(j)] = times[at(j + 1)];
            --count;
        }
        void erase(time_point t) {
            // Nearly always the newest entry: search from there. Not found means N later grants pushed it out
            // of the log, and keeping those is the conservative choice.
            // With count_from_send the grant taken back is still pending: never remove a sent entry for it.
            for (std::size_t i = count; i-- > 0;) {
                if (times[at(i)].at != t || (pending > 0 && !times[at(i)].pending)) continue;
                pending -= times[at(i)].pending ? 1 : 0;
                remove_at(i);
                return;
            }
        }
        void mark_sent(time_point t) {
            if (pending == 0) return;
            // The oldest pending entry: pending entries are the recent ones, so walk back from the newest
            // until all of them were seen (a handful: the requests between grant and write).
            std::size_t i = count, seen = 0;
            while (i-- > 0) {
                if (times[at(i)].pending && ++seen == pending) break;
            }
            --pending;
            entry e{std::max(t, times[at(i)].at), false};
            for (; i + 1 < count && times[at(i + 1)].at < e.at; ++i) times[at(i)] = times[at(i + 1)];
            times[at(i)] = e;
        }
        void erase_newest_pending() {
            if (pending == 0) return;
            for (std::size_t i = count; i-- > 0;) {
                if (!times[at(i)].pending) continue;
                --pending;
                remove_at(i);
                return;
            }
        }
        std::size_t in_window(time_point now) const {
            std::size_t n = 0;
            for (std::size_t i = count; i-- > 0 && times[at(i)].at > now - window;) ++n;
            return n;
        }
    };

    bucket_limits endpoint_limits_{};
    std::chrono::milliseconds margin_{};
    bool pending_ = false; ///< rate_limit_options::count_from_send
    std::vector<sliding_log> buckets_{};
    std::map<std::string, std::size_t, std::less<>> ids_{};
};

namespace detail {

/// A parked acquire, linked into its endpoint's FIFO. The Asio adapter derives its operation from this, so
/// parking allocates nothing beyond the operation itself.
struct limiter_waiter {
    enum class state : std::uint8_t { fresh, parked, granted, cancelled, rejected, closed };

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
/// holds its mutex around every call.
class limiter_core {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;
    static constexpr time_point never = time_point::max();

    limiter_core(const rate_limit_options& o, std::shared_ptr<bucket_store> store)
        : opts_(o), store_(store ? std::move(store) : std::make_shared<local_bucket_store>(o)) {}

    const rate_limit_options& options() const noexcept { return opts_; }
    bucket_store& store() noexcept { return *store_; }

    /// The bucket id of `endpoint` (>= 1), made on first use.
    std::uint32_t bucket(std::string_view endpoint) {
        const auto id = static_cast<std::uint32_t>(store_->bucket(endpoint));
        if (id >= queues_.size()) queues_.resize(id + 1);
        if (queues_[id].name.empty()) queues_[id].name = std::string(endpoint);
        return id;
    }

    /// Parks `w` at the back (or, to retry after a 429, the front) of its endpoint's queue. False when the
    /// queue bound is reached and the options say to fail fast. A retry at the front is never refused: it
    /// was admitted once, and a 429 must not turn into a lost call.
    bool park(limiter_waiter& w, std::uint32_t b, bool front) {
        if (!front && parked_ >= opts_.max_waiters) {
            if (!opts_.wait_when_full) return false;
            ++overflow_;
        }
        auto& q = queues_[b];
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
        bool global = store_->usage(bucket_store::global_bucket, now).in_window >= opts_.global.max_requests;
        for (std::uint32_t i = 1; i < queues_.size() && !global; ++i) {
            global = i != b && queues_[i].last_429 > now - opts_.global.window;
        }
        queues_[b].last_429 = now;
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
    bool has_bucket(std::uint32_t b) const noexcept { return b < queues_.size() && !queues_[b].name.empty(); }

private:
    struct endpoint_queue {
        limiter_waiter* head = nullptr;
        limiter_waiter* tail = nullptr;
        std::size_t size = 0;
        std::size_t active_index = 0; ///< position in active_ while non-empty
        time_point last_429 = time_point::min();
        std::string name{};
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
    // Arrival order: back waiters count up from the middle of the range, front waiters down from it, so a
    // front waiter is older than every waiter that arrived normally.
    std::uint64_t back_seq_ = std::uint64_t{1} << 63;
    std::uint64_t front_seq_ = (std::uint64_t{1} << 63) - 1;
};

} // namespace detail

CALLSAVVY_END_NAMESPACE

// callsavvy/bucket_store.hpp — where the rate limiter's buckets live: bucket_store and local_bucket_store,
// the in-process store (a sliding log per bucket, thread-safe, with idle buckets reclaimed), and
// shared_bucket_store, the asynchronous seam to a store shared by several processes (Redis:
// <callsavvy/redis_bucket_store.hpp>) that every grant passes after this process's buckets admitted it.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/rate_limit_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE

/// One bucket as the store sees it.
struct bucket_usage {
    std::size_t in_window = 0;                            ///< grants within the window that ends now
    std::chrono::steady_clock::time_point next_free{};    ///< earliest time (>= now) it admits another grant
    std::chrono::steady_clock::time_point paused_until{}; ///< no grant before this (a 429 pause)
};

/// The buckets' grant history and pauses: the seam for fleets. Bucket 0 is the global bucket; endpoint
/// buckets get ids >= 1.
///
/// Several limiters (one per executor, see limiter_for_key) share one store and call it from their own
/// threads, each with its own lock held: every call must be atomic on its own. Each caller passes a `now` that
/// never decreases, but two callers' clocks are read on different threads, so calls may come slightly out of
/// time order. try_reserve() must also be atomic across processes for a store shared by several: between
/// next_free() and it, another limiter may have taken the slot, and then it returns false and the caller asks
/// again.
class bucket_store {
public:
    using time_point = std::chrono::steady_clock::time_point;
    static constexpr std::size_t global_bucket = 0;

    virtual ~bucket_store() = default;
    /// The id of `endpoint`'s bucket, made on first use, with one reference: the id keeps meaning this endpoint
    /// until every reference is released. Ids are small and dense (limiters index by them); a bucket without
    /// references that no longer constrains anything may be forgotten and its id given to another endpoint.
    virtual std::size_t acquire(std::string_view endpoint, time_point now) = 0;
    /// One more reference to bucket `id` (which the caller already holds one to).
    virtual void retain(std::size_t id) = 0;
    virtual void release(std::size_t id) = 0;
    /// The earliest time >= now at which bucket `id` admits one more grant: its window and its pause.
    virtual time_point next_free(std::size_t id, time_point now) = 0;
    /// Records one grant at `now` in bucket `id` and in the global bucket, if both admit it at `now`.
    virtual bool try_reserve(std::size_t id, time_point now) = 0;
    /// Takes back a grant that try_reserve(id, at) recorded and that was never used (its waiter was
    /// cancelled at the moment of the grant, or its completion could not be delivered).
    virtual void give_back(std::size_t id, time_point at) = 0;
    /// No grant in bucket `id` before `until`; a shorter pause never shortens a longer one.
    virtual void pause(std::size_t id, time_point until) = 0;
    /// Records that a request to endpoint bucket `id` was answered 429 at `now`, and returns the latest 429
    /// recorded before on any other endpoint bucket (time_point::min() when none): the limiter's rule for
    /// pausing the global bucket too.
    virtual time_point record_429(std::size_t id, time_point now) = 0;
    virtual bucket_usage usage(std::size_t id, time_point now) = 0;
    /// With rate_limit_options::count_from_send: the oldest pending grant of bucket `id` (and of the global
    /// bucket) left at `at` (>= its grant time), so it now counts from `at`. Grants are anonymous: which of
    /// the pending grants is moved does not change which windows are full.
    virtual void sent(std::size_t id, time_point at) = 0;
    /// With rate_limit_options::count_from_send: the newest pending grant of bucket `id` (and of the global
    /// bucket) was never sent (its call ended before writing) and is taken back.
    virtual void unused(std::size_t id) = 0;
};

/// One question to a shared store: may one more request go now on `endpoint`'s bucket and the key's global
/// bucket? If both admit it, the store records it in both, atomically for every process using the store.
struct shared_reserve {
    std::string_view scope;    ///< names the key (limiter_for_key: a digest of it, never the key itself)
    std::string_view endpoint; ///< the endpoint bucket's name (the resource URI)
    bucket_limits endpoint_limits{};
    bucket_limits global_limits{};
    std::chrono::milliseconds margin{}; ///< added to both windows, as rate_limit_options::safety_margin
};

/// A shared store's answer: granted (recorded), or how long until each bucket that refused admits one more,
/// or why it could not answer.
struct shared_decision {
    error_code ec{};
    std::chrono::microseconds endpoint_wait{0};
    std::chrono::microseconds global_wait{0};
    bool granted() const noexcept { return !ec && endpoint_wait.count() <= 0 && global_wait.count() <= 0; }
};

/// A bucket store shared by several processes, asked asynchronously so that no limiter holds its lock
/// across I/O. A limiter with one (rate_limit_options::shared_store) first grants on its local store, which
/// costs no I/O and resolves the contention within the process, and then asks the shared store; a refusal
/// puts the waiter back in its place with its buckets paused for the wait the store named; a failure follows
/// rate_limit_options::on_store_failure.
///
/// Each limiter gets its own instance (one connection on the limiter's executor), so no limiter depends on
/// another one's io_context.
class shared_bucket_store {
public:
    /// Runs once per reserve() that returned nullopt: from any thread, never inside reserve(), with no lock
    /// of the store held.
    using completion = std::function<void(const shared_decision&)>;

    virtual ~shared_bucket_store() = default;
    /// Either the decision at once (a store that can answer without I/O, or one that knows it cannot reach
    /// its server), or nullopt and `done` runs later with it.
    virtual std::optional<shared_decision> reserve(const shared_reserve& r, completion done) = 0;
    /// Completes every pending reserve with operation_aborted before it returns (on the calling thread) and
    /// answers later ones the same way at once. Idempotent.
    virtual void close() noexcept = 0;
};

/// The in-process store: per bucket a ring buffer of its last N grant times (a sliding log), so "may one more
/// go at t" is one comparison, t >= oldest_of_last_N + window + margin, and the invariant "never more than N
/// grants in any window" holds by construction, whether the server counts fixed minutes or a sliding 60 s.
///
/// A raw call may name any resource, so buckets cannot live forever: beyond `keep` endpoint buckets, the ones
/// that are idle (no reference, no pending grant, no grant within the window, no pause or 429 that still
/// matters) are forgotten and their ids reused. Buckets in use are never touched, so the count exceeds `keep`
/// only while more than `keep` endpoints are busy at once.
class local_bucket_store final : public bucket_store {
public:
    static constexpr std::size_t default_keep = 256;

    explicit local_bucket_store(const rate_limit_options& o, std::size_t keep = default_keep)
        : endpoint_limits_(o.per_endpoint), margin_(o.safety_margin), overrides_(o.endpoint_overrides),
          pending_(o.count_from_send), keep_(std::max<std::size_t>(keep, 1)), scan_at_(keep_) {
        buckets_.emplace_back(o.global);
    }

    std::size_t acquire(std::string_view endpoint, time_point now) override {
        const std::lock_guard<std::mutex> l(mu_);
        if (const auto it = ids_.find(endpoint); it != ids_.end()) {
            ++buckets_[it->second].refs;
            return it->second;
        }
        if (free_.empty() && live() >= scan_at_) reclaim(now);
        bucket_limits limits = endpoint_limits_;
        if (const auto o = overrides_.find(endpoint); o != overrides_.end() && o->second.limits)
            limits = *o->second.limits;
        std::size_t id = 0;
        if (free_.empty()) {
            buckets_.emplace_back(limits);
            id = buckets_.size() - 1;
        } else {
            id = free_.back();
            free_.pop_back();
            buckets_[id] = sliding_log(limits); // the id may have served an endpoint with other limits
        }
        auto& b = buckets_[id];
        b.name = ids_.emplace(std::string(endpoint), id).first;
        b.in_use = true;
        b.refs = 1;
        return id;
    }

    void retain(std::size_t id) override {
        const std::lock_guard<std::mutex> l(mu_);
        if (id != global_bucket) ++buckets_[id].refs;
    }

    void release(std::size_t id) override {
        const std::lock_guard<std::mutex> l(mu_);
        if (id != global_bucket) --buckets_[id].refs;
    }

    time_point next_free(std::size_t id, time_point now) override {
        const std::lock_guard<std::mutex> l(mu_);
        return buckets_[id].next_free(now, margin_);
    }

    bool try_reserve(std::size_t id, time_point now) override {
        const std::lock_guard<std::mutex> l(mu_);
        auto& g = buckets_[global_bucket];
        auto& b = buckets_[id];
        if (b.next_free(now, margin_) > now || g.next_free(now, margin_) > now) return false;
        b.record(now, pending_);
        g.record(now, pending_);
        return true;
    }

    void sent(std::size_t id, time_point at) override {
        if (!pending_) return;
        const std::lock_guard<std::mutex> l(mu_);
        buckets_[id].mark_sent(at);
        buckets_[global_bucket].mark_sent(at);
    }

    void unused(std::size_t id) override {
        if (!pending_) return;
        const std::lock_guard<std::mutex> l(mu_);
        buckets_[id].erase_newest_pending();
        buckets_[global_bucket].erase_newest_pending();
    }

    void give_back(std::size_t id, time_point at) override {
        const std::lock_guard<std::mutex> l(mu_);
        buckets_[id].erase(at);
        buckets_[global_bucket].erase(at);
    }

    void pause(std::size_t id, time_point until) override {
        const std::lock_guard<std::mutex> l(mu_);
        auto& p = buckets_[id].paused_until;
        p = std::max(p, until);
    }

    time_point record_429(std::size_t id, time_point now) override {
        const std::lock_guard<std::mutex> l(mu_);
        time_point latest = time_point::min();
        for (std::size_t i = 1; i < buckets_.size(); ++i)
            if (i != id && buckets_[i].in_use) latest = std::max(latest, buckets_[i].last_429);
        buckets_[id].last_429 = std::max(buckets_[id].last_429, now);
        return latest;
    }

    bucket_usage usage(std::size_t id, time_point now) override {
        const std::lock_guard<std::mutex> l(mu_);
        const auto& b = buckets_[id];
        return {b.in_window(now), b.next_free(now, margin_), b.paused_until};
    }

    /// The endpoint buckets held now (reclaimed ones not counted).
    std::size_t buckets() const {
        const std::lock_guard<std::mutex> l(mu_);
        return live();
    }

private:
    using name_map = std::map<std::string, std::size_t, std::less<>>;

    struct sliding_log {
        explicit sliding_log(bucket_limits l)
            : window(l.window), times(std::max<std::size_t>(l.max_requests, 1)) {} // N = 0 would never grant

        struct entry {
            time_point at{};
            bool pending = false; ///< granted, not sent yet (count_from_send): `at` is only a lower bound
        };

        // Sorted by time: record() inserts in order (callers on several threads may come a little out of
        // order), erase keeps the order, and mark_sent moves the entry it changes to its place. A full log
        // never takes a grant older than its oldest + window (next_free forbids it), so dropping the oldest
        // drops nothing that still constrains. A pending entry cannot leave the log (next_free admits nobody
        // while it is the oldest of a full log), so every entry pushed out counts from its send time.
        std::chrono::milliseconds window;
        std::vector<entry> times; // capacity N
        std::size_t start = 0;    // the oldest
        std::size_t count = 0;
        std::size_t pending = 0;
        time_point paused_until = time_point::min();
        time_point last_429 = time_point::min();
        std::size_t refs = 0;      ///< acquires in flight, parked waiters, pending grants
        bool in_use = false;       ///< false: reclaimed, its id is on the free list
        name_map::iterator name{}; ///< its entry in ids_, while in use

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
                ++count;
            } else {
                start = at(1); // the oldest leaves the log: it no longer constrains anything
            }
            std::size_t i = count - 1;
            for (; i > 0 && times[at(i - 1)].at > t; --i) times[at(i)] = times[at(i - 1)];
            times[at(i)] = {t, is_pending};
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
        /// Nothing refers to it and it constrains nothing from `now` on, for either bucket's rules.
        bool idle(time_point now, std::chrono::milliseconds margin, std::chrono::milliseconds global_window) const {
            return refs == 0 && pending == 0 && paused_until <= now && last_429 <= now - global_window &&
                   (count == 0 || times[at(count - 1)].at + window + margin <= now);
        }
    };

    std::size_t live() const { return buckets_.size() - 1 - free_.size(); }

    void reclaim(time_point now) {
        for (std::size_t id = 1; id < buckets_.size(); ++id) {
            auto& b = buckets_[id];
            if (!b.in_use || !b.idle(now, margin_, buckets_[global_bucket].window)) continue;
            ids_.erase(b.name);
            b.in_use = false;
            free_.push_back(id);
        }
        // A scan that frees little is not repeated at once: with many endpoints busy together, the next one
        // waits until half as many again exist, so a scan costs O(1) per bucket made.
        scan_at_ = std::max(keep_, live() + live() / 2);
    }

    bucket_limits endpoint_limits_{};
    std::chrono::milliseconds margin_{};
    std::map<std::string, endpoint_override, std::less<>> overrides_;
    bool pending_ = false; ///< rate_limit_options::count_from_send
    std::size_t keep_;
    std::size_t scan_at_; ///< live buckets at which the next new one first reclaims idle ones
    mutable std::mutex mu_;
    std::vector<sliding_log> buckets_{};
    std::vector<std::size_t> free_{}; ///< ids of reclaimed buckets
    name_map ids_{};
};

CALLSAVVY_END_NAMESPACE

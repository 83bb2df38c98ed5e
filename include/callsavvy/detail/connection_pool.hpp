// callsavvy/detail/connection_pool.hpp — the client's keep-alive connections to its one host: an idle LIFO
// (the most recently used first: the likeliest to be alive), at most max_connections open, FIFO waiters
// beyond that, idle connections closed after idle_timeout (TLS: close_notify). A connection leaves the pool
// as a move-only lease that goes back (or is discarded) however the call ends, an exception included, so a
// slot is never lost.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/net/connection.hpp>

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

class connection_pool : public std::enable_shared_from_this<connection_pool> {
public:
    using clock = std::chrono::steady_clock;

    /// One call waiting for a connection. It lives in the call's state, so that the call can end the wait
    /// (cancel()) from a timer or close() while the acquire is suspended on it.
    struct waiter {
        explicit waiter(const asio::any_io_executor& ex) : timer(ex, clock::time_point::max()) {}
        asio::steady_timer timer;
        std::unique_ptr<connection> conn{}; ///< handed over by a finishing call
        bool slot = false;                  ///< or: room to open a new connection
        bool queued = false;
        std::list<waiter*>::iterator position{};
    };

    /// A connection out of the pool. Ending the lease gives it back: kept when it can carry another request,
    /// closed otherwise; either way its slot is never lost.
    class lease {
    public:
        lease() = default;
        lease(connection_pool* pool, std::unique_ptr<connection> c, bool reused)
            : pool_(pool), conn_(std::move(c)), reused_(reused) {}
        lease(lease&& o) noexcept
            : pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)), reused_(o.reused_) {}
        lease& operator=(lease&& o) noexcept {
            if (this != &o) {
                reset();
                pool_ = std::exchange(o.pool_, nullptr);
                conn_ = std::move(o.conn_);
                reused_ = o.reused_;
            }
            return *this;
        }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        ~lease() {
            in_destructor([this] { reset(); });
        }

        connection& operator*() const noexcept { return *conn_; }
        connection* operator->() const noexcept { return conn_.get(); }
        connection* get() const noexcept { return conn_.get(); }
        explicit operator bool() const noexcept { return conn_ != nullptr; }
        /// Taken from the idle pool or handed over by another call (not opened for this one).
        bool reused() const noexcept { return reused_; }

        void reset() {
            if (conn_) std::exchange(pool_, nullptr)->give_back(std::move(conn_));
        }

    private:
        connection_pool* pool_ = nullptr;
        std::unique_ptr<connection> conn_{};
        bool reused_ = false;
    };

    connection_pool(asio::any_io_executor ex, std::size_t max_connections, std::chrono::milliseconds idle_timeout)
        : ex_(std::move(ex)), max_(max_connections == 0 ? 1 : max_connections), idle_timeout_(idle_timeout),
          sweep_timer_(ex_) {}
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    /// A connection for the next attempt: an idle one that still looks alive, else a new (unopened) one if
    /// there is room, else the first one a finishing call hands over (FIFO). `fresh`: never a pooled one
    /// (the retry after a pooled socket turned out to be closed); its slot then goes to a new connection.
    /// `probe`: an idle connection's socket is peeked at for an EOF the server sent while it was idle (a
    /// system call); without, only what is known in user space is checked (the caller retries a stale one).
    /// Fails with error::client_closed after close(), operation_aborted when cancel(w) ended the wait.
    asio::awaitable<std::tuple<error_code, lease>> acquire(bool fresh, bool probe, waiter& w) {
        if (closed_) co_return std::tuple{make_error_code(error::client_closed), lease{}};
        const auto now = clock::now();
        while (!idle_.empty() && !(fresh && open_ < max_)) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            if (fresh) {
                // The sockets kept idle as long as the one that just failed are the likeliest to be stale too.
                c->close();
                co_return std::tuple{error_code{}, lease(this, std::make_unique<connection>(ex_), false)};
            }
            if (now - c->last_used < idle_timeout_ && c->looks_alive(probe))
                co_return std::tuple{error_code{}, lease(this, std::move(c), true)};
            discard(std::move(c)); // closed by the server while idle, or expired: never written to
        }
        if (open_ < max_) {
            ++open_;
            co_return std::tuple{error_code{}, lease(this, std::make_unique<connection>(ex_), false)};
        }
        w.conn.reset();
        w.slot = false;
        w.timer.expires_at(clock::time_point::max());
        waiters_.push_back(&w);
        w.position = std::prev(waiters_.end());
        w.queued = true;
        auto [ec] = co_await w.timer.async_wait(use_nothrow);
        (void)ec; // a hand-over cancels the timer too: what was handed over decides, not the error code
        if (w.queued) {
            waiters_.erase(w.position); // nothing handed over: cancelled, or the pool closed
            w.queued = false;
        }
        if (w.conn) {
            auto c = std::move(w.conn);
            if (!fresh) co_return std::tuple{error_code{}, lease(this, std::move(c), true)};
            c->close();
            co_return std::tuple{error_code{}, lease(this, std::make_unique<connection>(ex_), false)};
        }
        if (std::exchange(w.slot, false))
            co_return std::tuple{error_code{}, lease(this, std::make_unique<connection>(ex_), false)};
        co_return std::tuple{
            closed_ ? make_error_code(error::client_closed) : error_code(asio::error::operation_aborted), lease{}};
    }

    /// Ends a waiter's wait. What was handed over to it at that moment comes back through its lease.
    void cancel(waiter& w) { w.timer.cancel(); }

    /// Closes the idle connections (TLS: close_notify), ends every wait and refuses new acquires; connections
    /// leased out close when their leases end. Idempotent.
    void close() {
        if (closed_) return;
        closed_ = true;
        for (auto& c : idle_) {
            --open_;
            close_gracefully(std::move(c));
        }
        idle_.clear();
        for (waiter* w : waiters_) w->timer.cancel();
        sweep_timer_.cancel();
    }

    std::size_t open_count() const noexcept { return open_; }
    std::size_t idle_count() const noexcept { return idle_.size(); }

private:
    void give_back(std::unique_ptr<connection> c) {
        if (closed_ || !c->reusable()) {
            discard(std::move(c));
            return;
        }
        c->last_used = clock::now();
        if (!waiters_.empty()) {
            waiter* w = waiters_.front();
            waiters_.pop_front();
            w->queued = false;
            w->conn = std::move(c);
            w->timer.cancel();
            return;
        }
        idle_.push_back(std::move(c));
        arm_sweep();
    }

    void discard(std::unique_ptr<connection> c) {
        c->close();
        --open_;
        hand_slot_to_waiter();
    }

    void hand_slot_to_waiter() {
        if (waiters_.empty() || closed_ || open_ >= max_) return;
        waiter* w = waiters_.front();
        waiters_.pop_front();
        w->queued = false;
        ++open_;
        w->slot = true;
        w->timer.cancel();
    }

    void arm_sweep() {
        if (sweep_armed_ || idle_.empty()) return;
        sweep_armed_ = true;
        sweep_timer_.expires_at(idle_.front()->last_used + idle_timeout_);
        sweep_timer_.async_wait([weak = weak_from_this()](error_code ec) {
            if (auto self = weak.lock()) {
                self->sweep_armed_ = false;
                if (!ec) self->sweep();
            }
        });
    }

    void sweep() {
        const auto now = clock::now();
        std::size_t expired = 0;
        while (expired < idle_.size() && now - idle_[expired]->last_used >= idle_timeout_) ++expired;
        for (std::size_t i = 0; i < expired; ++i) {
            --open_;
            close_gracefully(std::move(idle_[i]));
        }
        idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(expired));
        hand_slot_to_waiter();
        arm_sweep();
    }

    void close_gracefully(std::unique_ptr<connection> c) {
        if (!c->is_tls()) {
            c->close();
            return;
        }
        asio::co_spawn(ex_, closer(std::move(c)), asio::detached);
    }

    static asio::awaitable<void> closer(std::unique_ptr<connection> c) { co_await c->async_close_gracefully(); }

    asio::any_io_executor ex_;
    std::size_t max_;
    std::chrono::milliseconds idle_timeout_;
    std::vector<std::unique_ptr<connection>> idle_{}; // most recently used last
    std::size_t open_ = 0;                            // opened and not yet discarded, idle or leased
    std::list<waiter*> waiters_{};
    asio::steady_timer sweep_timer_;
    bool sweep_armed_ = false;
    bool closed_ = false;
};

} // namespace detail
CALLSAVVY_END_NAMESPACE

// callsavvy/detail/limiter_registry.hpp — the process's rate limiters by API key and executor, behind
// limiter_for_key(): one bucket store per key (the server counts per key), one limiter per executor on it.
// Keys are kept as a salted SHA-256 digest, never as themselves.
#pragma once

#include <callsavvy/config.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

CALLSAVVY_BEGIN_NAMESPACE
namespace detail {

/// The registry's name for a key: SHA-256 over a domain tag and the key, in hex. The key itself is never
/// stored, so a heap dump or a debugger shows no credentials; the tag keeps the digest from being the plain
/// SHA-256 of the key that someone could match elsewhere.
inline std::string limiter_key_digest(std::string_view api_key) {
    static constexpr std::string_view tag{"callsavvy rate limiter key\0", 27};
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, tag.data(), tag.size()) == 1 &&
                    EVP_DigestUpdate(ctx, api_key.data(), api_key.size()) == 1 && EVP_DigestFinal_ex(ctx, md, &n) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) throw std::runtime_error("callsavvy: SHA-256 is unavailable");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (unsigned int i = 0; i < n; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 0xf]);
    }
    return out;
}

/// Per key digest: the state its limiters share (`Shared`: the bucket store and the options), and per
/// executor one `Limiter` on it. Holds neither: a key's entry lives as long as someone holds one of its
/// limiters or the shared state (a grant does), so the first limiter's options stay the key's until then.
template <class Limiter, class Shared>
class limiter_registry {
public:
    static limiter_registry& instance() {
        static limiter_registry r;
        return r;
    }

    /// The limiter of `api_key` on `ex`: the live one, or make_limiter(ex, shared) over the key's live shared
    /// state, or over make_shared() when the key has none. Thread-safe.
    template <class MakeShared, class MakeLimiter>
    std::shared_ptr<Limiter> get(std::string_view api_key, const asio::any_io_executor& ex, MakeShared&& make_shared,
                                 MakeLimiter&& make_limiter) {
        const std::string digest = limiter_key_digest(api_key);
        const std::lock_guard<std::mutex> l(mu_);
        prune();
        per_key& k = by_key_[digest];
        for (const auto& e : k.limiters)
            if (auto existing = e.lock())
                if (existing->get_executor() == ex) return existing;
        std::shared_ptr<Shared> shared = k.shared.lock();
        if (!shared) {
            shared = make_shared();
            k.shared = shared;
        }
        std::shared_ptr<Limiter> made = make_limiter(ex, std::move(shared));
        k.limiters.push_back(made);
        return made;
    }

    /// The names under which keys are kept (digests).
    std::vector<std::string> names() {
        const std::lock_guard<std::mutex> l(mu_);
        std::vector<std::string> out;
        for (const auto& [name, k] : by_key_) out.push_back(name);
        return out;
    }

private:
    // A limiter is found by its own executor, never by a copy kept here: a copy outliving its io_context (a
    // strand's, once the limiter is gone) would be destroyed after it, when the registry is, at exit.
    struct per_key {
        std::weak_ptr<Shared> shared;
        std::vector<std::weak_ptr<Limiter>> limiters; ///< one per executor
    };

    // Forgets the limiters nobody holds any more, and the keys left with neither limiters nor shared state.
    void prune() {
        for (auto it = by_key_.begin(); it != by_key_.end();) {
            std::erase_if(it->second.limiters, [](const std::weak_ptr<Limiter>& l) { return l.expired(); });
            it = it->second.limiters.empty() && it->second.shared.expired() ? by_key_.erase(it) : std::next(it);
        }
    }

    std::mutex mu_;
    std::map<std::string, per_key, std::less<>> by_key_;
};

} // namespace detail
CALLSAVVY_END_NAMESPACE

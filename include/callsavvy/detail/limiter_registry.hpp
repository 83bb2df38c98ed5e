// callsavvy/detail/limiter_registry.hpp — the process's rate limiters by API key, behind limiter_for_key().
// Keys are kept as a salted SHA-256 digest, never as themselves.
#pragma once

#include <callsavvy/config.hpp>

#include <asio/steady_timer.hpp>

#include <openssl/evp.h>

#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE

template <class Timer>
class basic_rate_limiter;

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

struct limiter_registry {
    std::mutex mu;
    std::map<std::string, std::weak_ptr<basic_rate_limiter<asio::steady_timer>>, std::less<>> by_key;

    static limiter_registry& instance() {
        static limiter_registry r;
        return r;
    }
};

} // namespace detail

CALLSAVVY_END_NAMESPACE

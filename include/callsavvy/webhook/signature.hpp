// callsavvy/webhook/signature.hpp — Standard Webhooks signatures (spec §6): HMAC-SHA256, keyed with the
// base64-decoded part of a `whsec_…` secret, over `<webhook-id>.<webhook-timestamp>.<raw body>`, sent as
// space-separated `v1,<base64>` entries. The mock's webhook sender signs with it; the webhook listener
// verifies with it, comparing in constant time.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/detail/base64.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

CALLSAVVY_BEGIN_NAMESPACE
namespace webhook {

/// The HMAC key of a `whsec_…` secret (the prefix is optional), or nullopt when it is not base64.
inline std::optional<std::string> secret_key(std::string_view secret) {
    if (secret.starts_with("whsec_")) secret.remove_prefix(6);
    return callsavvy::detail::base64_decode(secret);
}

/// The `v1,<base64>` signature of one delivery with a decoded key, over the timestamp's text as sent (a
/// receiver must not re-format it: `0123` and `123` sign differently); "" when HMAC fails.
inline std::string sign_with_key(std::string_view key, std::string_view id, std::string_view timestamp,
                                 std::string_view body) {
    std::string message;
    message.reserve(id.size() + timestamp.size() + body.size() + 2);
    message.append(id).append(".").append(timestamp).append(".").append(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len) == nullptr)
        return {};
    return "v1," + callsavvy::detail::base64_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

/// The `v1,<base64>` signature of one delivery, or "" when the secret is unusable.
inline std::string sign(std::string_view secret, std::string_view id, std::int64_t timestamp, std::string_view body) {
    const auto key = secret_key(secret);
    if (!key) return {};
    return sign_with_key(*key, id, std::to_string(timestamp), body);
}

/// True when one of the space-separated entries of `header` is the expected signature; constant time in
/// the signature's bytes, so a forger learns nothing from how long a comparison took.
inline bool signature_matches(std::string_view header, std::string_view expected) {
    bool found = false;
    while (!header.empty()) {
        const auto cut = header.find(' ');
        const std::string_view entry = header.substr(0, cut);
        header = cut == std::string_view::npos ? std::string_view{} : header.substr(cut + 1);
        if (entry.size() == expected.size() && !expected.empty() &&
            CRYPTO_memcmp(entry.data(), expected.data(), expected.size()) == 0)
            found = true;
    }
    return found;
}

} // namespace webhook
CALLSAVVY_END_NAMESPACE

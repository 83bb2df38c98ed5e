// callsavvy/net/tls.hpp — TLS settings of the client: TLS 1.2 or newer, the peer's certificate and host
// name verified against the system CA store (or a CA file/directory) unless switched off by a name that
// says it is insecure, and the mapping of OpenSSL's verify result to callsavvy's TLS errors.
#pragma once

#include <callsavvy/config.hpp>
#include <callsavvy/error.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

CALLSAVVY_BEGIN_NAMESPACE

struct tls_options {
    /// PEM file of the CAs to trust instead of the system store (e.g. a private CA).
    std::string ca_file{};
    /// Directory of hashed CA certificates (`openssl rehash`) to trust instead of the system store.
    std::string ca_dir{};
    /// The application's own context (client certificates, pinning callbacks, ciphers). When set, ca_file and
    /// ca_dir are ignored; callsavvy still sets SNI and checks the host name on every connection.
    std::shared_ptr<asio::ssl::context> context{};
    /// Accept any certificate for any host. Only for debugging against a server whose certificate cannot be
    /// trusted; it makes every call open to interception.
    bool insecure_skip_verify = false;
};

namespace detail {

inline std::shared_ptr<asio::ssl::context> make_tls_context(const tls_options& o, error_code& ec, std::string& why) {
    if (o.context) return o.context;
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
    if (o.insecure_skip_verify) {
        ctx->set_verify_mode(asio::ssl::verify_none);
        return ctx;
    }
    ctx->set_verify_mode(asio::ssl::verify_peer);
    if (!o.ca_file.empty()) {
        ctx->load_verify_file(o.ca_file, ec);
        if (ec) {
            why = "cannot load CA file " + o.ca_file;
            return nullptr;
        }
    }
    if (!o.ca_dir.empty()) {
        ctx->add_verify_path(o.ca_dir, ec);
        if (ec) {
            why = "cannot use CA directory " + o.ca_dir;
            return nullptr;
        }
    }
    if (o.ca_file.empty() && o.ca_dir.empty()) {
        ctx->set_default_verify_paths(ec);
        if (ec) {
            why = "cannot load the system CA store";
            return nullptr;
        }
    }
    return ctx;
}

/// Prepares one TLS connection: SNI for host names, and the host name or IP address the certificate must
/// name. OpenSSL then reports a mismatch as X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH.
inline bool prepare_tls_session(SSL* ssl, const std::string& host, bool verify, std::string& why) {
    error_code ec{};
    const auto ip = asio::ip::make_address(host, ec);
    if (ec && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
        why = "cannot set the TLS server name";
        return false;
    }
    if (!verify) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
        return true;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr); // keeps a callback the application's context set
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const int ok = ec ? X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size())
                      : X509_VERIFY_PARAM_set1_ip_asc(param, ip.to_string().c_str());
    if (ok != 1) {
        why = "cannot set the TLS host name to verify";
        return false;
    }
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return true;
}

/// After a failed handshake: which of callsavvy's TLS errors it was, and OpenSSL's reason in words.
inline error classify_tls_failure(SSL* ssl, std::string& why) {
    const long r = SSL_get_verify_result(ssl);
    if (r == X509_V_OK) {
        why.clear();
        return error::tls_handshake_failed;
    }
    why = X509_verify_cert_error_string(r);
    switch (r) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH: return error::tls_hostname_mismatch;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED: return error::tls_certificate_untrusted;
    default: return error::tls_certificate_invalid;
    }
}

} // namespace detail
CALLSAVVY_END_NAMESPACE

// tests/support/pki.hpp — a throw-away certificate authority and the leaf certificates the TLS tests need,
// generated in-process with OpenSSL 3 so no test depends on checked-in keys that expire or leak into real
// trust stores. Generated once per process (EC P-256: a few milliseconds) and written both as PEM strings
// and as files in a private temporary directory that is removed when the process exits.
#pragma once

#include <callsavvy/config.hpp>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace cstest {

struct key_pair {
    std::string cert_pem, key_pem;
    std::filesystem::path cert_file, key_file;
};

struct pki {
    std::string ca_pem;
    std::filesystem::path ca_file;
    // A directory holding the CA in OpenSSL's hashed form (<subject hash>.0), for "CA directory" options
    // (SSL_CTX_load_verify_locations with a path), which look certificates up by that name only.
    std::filesystem::path ca_dir;
    key_pair localhost;   // signed by the CA; SAN DNS:localhost, IP:127.0.0.1, IP:::1; valid now
    key_pair wrong_host;  // signed by the CA; SAN DNS:wrong.invalid only
    key_pair self_signed; // NOT signed by the CA; localhost SANs
    key_pair expired;     // signed by the CA; localhost SANs; validity entirely in the past
    key_pair client;      // signed by the CA; CN=callsavvy-test-client, extendedKeyUsage clientAuth
};

namespace detail {

struct openssl_free {
    void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
    void operator()(X509* p) const noexcept { X509_free(p); }
    void operator()(BIO* p) const noexcept { BIO_free(p); }
    void operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
    void operator()(BIGNUM* p) const noexcept { BN_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_free>;
using x509_ptr = std::unique_ptr<X509, openssl_free>;
using bio_ptr = std::unique_ptr<BIO, openssl_free>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, openssl_free>;
using bn_ptr = std::unique_ptr<BIGNUM, openssl_free>;

// OpenSSL reports through a thread-local queue; fold it into the exception so a failure says which call
// broke and why, and leave the queue empty for the next user.
[[noreturn]] inline void throw_openssl(const char* what) {
    std::string message = std::string("cstest::test_pki: ") + what;
    char buf[256];
    while (unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        message += "; ";
        message += buf;
    }
    throw std::runtime_error(message);
}

inline void check(int ok, const char* what) {
    if (ok != 1) throw_openssl(what);
}

inline pkey_ptr make_key() {
    // P-256 rather than RSA: generating five RSA keys costs a noticeable fraction of a second per process,
    // and sanitizer builds multiply that.
    pkey_ptr key{EVP_EC_gen("P-256")};
    if (!key) throw_openssl("EVP_EC_gen(P-256)");
    return key;
}

struct cert_spec {
    const char* common_name;
    const char* san = nullptr; // X509v3 config syntax, e.g. "DNS:localhost,IP:127.0.0.1"
    bool is_ca = false;
    bool client_auth = false;
    long not_before_offset = -3600;         // seconds from now; an hour back tolerates clock skew
    long not_after_offset = 7L * 24 * 3600; // long enough for any test run
};

inline void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    ext_ptr ext{X509V3_EXT_conf_nid(nullptr, ctx, nid, value)};
    if (!ext) throw_openssl("X509V3_EXT_conf_nid");
    check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

// Issues a certificate for `key`; issuer == nullptr means self-signed.
inline x509_ptr make_cert(const cert_spec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
    x509_ptr cert{X509_new()};
    if (!cert) throw_openssl("X509_new");
    check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");

    // Random 63-bit serials: two certificates from the same issuer must never share one, across processes
    // too (a client that caches sessions or certificates by issuer+serial would be confused otherwise).
    bn_ptr serial{BN_new()};
    if (!serial) throw_openssl("BN_new");
    check(BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "BN_rand");
    if (!BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) throw_openssl("BN_to_ASN1_INTEGER");

    if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before_offset)) throw_openssl("notBefore");
    if (!X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after_offset)) throw_openssl("notAfter");

    X509_NAME* name = X509_get_subject_name(cert.get());
    check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("callsavvy tests"),
                                     -1, -1, 0),
          "X509_NAME_add_entry_by_txt(O)");
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.common_name),
                                     -1, -1, 0),
          "X509_NAME_add_entry_by_txt(CN)");
    check(X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name), "X509_set_issuer_name");
    check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    if (spec.is_ca) {
        add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
        add_ext(cert.get(), &ctx, NID_ext_key_usage, spec.client_auth ? "clientAuth" : "serverAuth");
    }
    add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    // The authority key id lets OpenSSL pick the right issuer when a store holds several test CAs.
    if (issuer) add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    if (spec.san) add_ext(cert.get(), &ctx, NID_subject_alt_name, spec.san);

    if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) <= 0) throw_openssl("X509_sign");
    return cert;
}

inline std::string bio_to_string(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

inline std::string cert_to_pem(X509* cert) {
    bio_ptr bio{BIO_new(BIO_s_mem())};
    if (!bio) throw_openssl("BIO_new");
    check(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
    return bio_to_string(bio.get());
}

inline std::string key_to_pem(EVP_PKEY* key) {
    bio_ptr bio{BIO_new(BIO_s_mem())};
    if (!bio) throw_openssl("BIO_new");
    // PKCS#8, unencrypted: what every TLS stack's "load private key from PEM" accepts without a password.
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), "PEM_write_bio_PrivateKey");
    return bio_to_string(bio.get());
}

inline void write_file(const std::filesystem::path& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) throw std::runtime_error("cstest::test_pki: cannot write " + path.string());
}

inline std::filesystem::path make_temp_dir(const char* prefix) {
    std::string templ = (std::filesystem::temp_directory_path() / (std::string(prefix) + "XXXXXX")).string();
    // mkdtemp: a fresh directory with mode 0700, so the private keys in it are not readable by other users.
    if (!::mkdtemp(templ.data())) throw std::system_error(errno, std::generic_category(), "cstest: mkdtemp " + templ);
    return templ;
}

// Owns the generated material and the directory; a function-local static of this type removes the files
// at normal process exit.
struct pki_holder {
    std::filesystem::path root;
    pki value;

    pki_holder() {
        root = make_temp_dir("callsavvy-pki-");
        try {
            generate();
        } catch (...) {
            std::error_code ignored;
            std::filesystem::remove_all(root, ignored);
            throw;
        }
    }
    ~pki_holder() {
        std::error_code ignored;
        std::filesystem::remove_all(root, ignored);
    }
    pki_holder(const pki_holder&) = delete;
    pki_holder& operator=(const pki_holder&) = delete;

    key_pair save(const char* stem, X509* cert, EVP_PKEY* key) {
        key_pair kp;
        kp.cert_pem = cert_to_pem(cert);
        kp.key_pem = key_to_pem(key);
        kp.cert_file = root / (std::string(stem) + ".crt");
        kp.key_file = root / (std::string(stem) + ".key");
        write_file(kp.cert_file, kp.cert_pem);
        write_file(kp.key_file, kp.key_pem);
        return kp;
    }

    void generate() {
        static constexpr const char* localhost_san = "DNS:localhost,IP:127.0.0.1,IP:::1";

        pkey_ptr ca_key = make_key();
        x509_ptr ca =
            make_cert({.common_name = "callsavvy test CA", .is_ca = true, .not_after_offset = 30L * 24 * 3600},
                      ca_key.get(), nullptr, nullptr);
        value.ca_pem = cert_to_pem(ca.get());
        value.ca_file = root / "ca.crt";
        write_file(value.ca_file, value.ca_pem);

        value.ca_dir = root / "ca.d";
        std::filesystem::create_directory(value.ca_dir);
        int ok = 0;
        const unsigned long hash = X509_NAME_hash_ex(X509_get_subject_name(ca.get()), nullptr, nullptr, &ok);
        if (!ok) throw_openssl("X509_NAME_hash_ex");
        char hashed_name[32];
        (void)std::snprintf(hashed_name, sizeof hashed_name, "%08lx.0", hash); // at most 19 characters
        // A copy rather than a symlink: nothing to go stale, and it works where symlinks are restricted.
        write_file(value.ca_dir / hashed_name, value.ca_pem);

        auto leaf = [&](const char* stem, const cert_spec& spec, bool signed_by_ca) {
            pkey_ptr key = make_key();
            x509_ptr cert = signed_by_ca ? make_cert(spec, key.get(), ca.get(), ca_key.get())
                                         : make_cert(spec, key.get(), nullptr, nullptr);
            return save(stem, cert.get(), key.get());
        };
        value.localhost = leaf("localhost", {.common_name = "localhost", .san = localhost_san}, true);
        value.wrong_host = leaf("wrong_host", {.common_name = "wrong.invalid", .san = "DNS:wrong.invalid"}, true);
        value.self_signed = leaf("self_signed", {.common_name = "localhost", .san = localhost_san}, false);
        value.expired = leaf("expired",
                             {.common_name = "localhost",
                              .san = localhost_san,
                              .not_before_offset = -3L * 24 * 3600,
                              .not_after_offset = -2L * 24 * 3600},
                             true);
        value.client = leaf("client", {.common_name = "callsavvy-test-client", .client_auth = true}, true);
    }
};

} // namespace detail

// The process-wide test PKI. Thread-safe (a function-local static); throws std::runtime_error if OpenSSL
// or the file system fails, which fails the first test that needs it with the reason.
inline const pki& test_pki() {
    static const detail::pki_holder holder;
    return holder.value;
}

} // namespace cstest

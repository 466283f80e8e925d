// The system's OpenSSL 3, as SocketServerTLS sees it: its headers, plus
// static inline wrappers for the function-like macros Swift cannot import.
#ifndef SOCKETSERVER_COPENSSL_SHIM_H
#define SOCKETSERVER_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/opensslv.h>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "SocketServerTLS needs OpenSSL 3 (libssl-dev 3.x; brew install openssl@3)"
#endif

static inline int cssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int cssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long cssl_ctx_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline int cssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline int cssl_ctx_set_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *)) {
    return (int)SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline int cssl_set_app_data(SSL *ssl, void *data) { return SSL_set_app_data(ssl, data); }
static inline void *cssl_get_app_data(const SSL *ssl) { return SSL_get_app_data(ssl); }
static inline void cssl_bio_set_retry_read(BIO *bio) { BIO_set_retry_read(bio); }
static inline void cssl_bio_clear_retry_flags(BIO *bio) { BIO_clear_retry_flags(bio); }
static inline long cssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

/// The options every context starts with: OpenSSL's bug work-arounds, no
/// compression, no renegotiation, and (servers) the server's cipher order.
static inline uint64_t cssl_default_options(int server) {
    uint64_t options = SSL_OP_ALL | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
    if (server) options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    return options;
}
/// The reason code of a packed OpenSSL error (ERR_GET_REASON).
static inline int cssl_err_get_reason(unsigned long e) { return ERR_GET_REASON(e); }
/// Whether a packed OpenSSL error is a system (errno) error (ERR_SYSTEM_ERROR).
static inline int cssl_err_is_system(unsigned long e) { return ERR_SYSTEM_ERROR(e) ? 1 : 0; }

#endif

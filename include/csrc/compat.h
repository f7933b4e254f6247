/*
 * Names that only some OpenSSL 3 releases define.  Each gets a mailgate
 * spelling that is always present, so the cffi declarations never depend on
 * the minor release the module is compiled against.
 */
#ifndef MAILGATE_COMPAT_H
#define MAILGATE_COMPAT_H

#include <stdint.h>
#include <openssl/ssl.h>

/* 0 where absent: OR-ing a missing option is then a no-op. */
#ifdef SSL_OP_NO_CLIENT_RENEGOTIATION
#define MG_OP_NO_CLIENT_RENEGOTIATION SSL_OP_NO_CLIENT_RENEGOTIATION
#else
#define MG_OP_NO_CLIENT_RENEGOTIATION ((uint64_t) 0)
#endif

/* RFC 8879 certificate compression arrived in OpenSSL 3.2. */
#if defined(SSL_OP_NO_TX_CERTIFICATE_COMPRESSION) && defined(TLSEXT_comp_cert_none)
#define MG_OP_NO_CERTIFICATE_COMPRESSION \
    (SSL_OP_NO_TX_CERTIFICATE_COMPRESSION | SSL_OP_NO_RX_CERTIFICATE_COMPRESSION)
#define MG_HAVE_CERTIFICATE_COMPRESSION 1
#else
#define MG_OP_NO_CERTIFICATE_COMPRESSION ((uint64_t) 0)
#define MG_HAVE_CERTIFICATE_COMPRESSION 0
#endif

#ifdef OPENSSL_NO_ENGINE
#define MG_HAVE_ENGINE 0
#else
#define MG_HAVE_ENGINE 1
#endif

/* The options nginx's ngx_ssl_create() (src/event/ngx_event_openssl.c) sets on
   every context. */
uint64_t mg_base_options(void);

/* SSL_CTX_compress_certs(ctx, 0) and clear the "no compression" options;
   0 when this OpenSSL cannot compress certificates. */
int mg_compress_certs(SSL_CTX *ctx);

/* The ENGINE API behind a stable face: NULL when engines are compiled out. */
void *mg_engine_by_id(const char *id);
EVP_PKEY *mg_engine_load_private_key(void *engine, const char *key_id);
void mg_engine_free(void *engine);

#endif

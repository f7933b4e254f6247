#include <openssl/ssl.h>
#ifndef OPENSSL_NO_ENGINE
#include <openssl/engine.h>
#endif

#include "compat.h"

uint64_t
mg_base_options(void)
{
    /* The legacy bug workarounds are 0 in OpenSSL 3 except the first; they
       are kept so that a library defining them gets what nginx asks for. */
    return SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS
           | SSL_OP_MICROSOFT_SESS_ID_BUG | SSL_OP_NETSCAPE_CHALLENGE_BUG
           | SSL_OP_SSLREF2_REUSE_CERT_TYPE_BUG
           | SSL_OP_MICROSOFT_BIG_SSLV3_BUFFER
           | SSL_OP_SSLEAY_080_CLIENT_DH_BUG | SSL_OP_TLS_D5_BUG
           | SSL_OP_TLS_BLOCK_PADDING_BUG
           | SSL_OP_SINGLE_DH_USE
           | SSL_OP_NO_COMPRESSION
           | MG_OP_NO_CERTIFICATE_COMPRESSION
           | SSL_OP_NO_ANTI_REPLAY
           | MG_OP_NO_CLIENT_RENEGOTIATION
           | SSL_OP_IGNORE_UNEXPECTED_EOF;
}

int
mg_compress_certs(SSL_CTX *ctx)
{
#if MG_HAVE_CERTIFICATE_COMPRESSION
    if (SSL_CTX_compress_certs(ctx, 0) == 0) {
        return 0;
    }
    SSL_CTX_clear_options(ctx, MG_OP_NO_CERTIFICATE_COMPRESSION);
    return 1;
#else
    (void) ctx;
    return 0;
#endif
}

void *
mg_engine_by_id(const char *id)
{
#ifndef OPENSSL_NO_ENGINE
    return ENGINE_by_id(id);
#else
    (void) id;
    return NULL;
#endif
}

EVP_PKEY *
mg_engine_load_private_key(void *engine, const char *key_id)
{
#ifndef OPENSSL_NO_ENGINE
    return ENGINE_load_private_key(engine, key_id, NULL, NULL);
#else
    (void) engine;
    (void) key_id;
    return NULL;
#endif
}

void
mg_engine_free(void *engine)
{
#ifndef OPENSSL_NO_ENGINE
    ENGINE_free(engine);
#else
    (void) engine;
#endif
}

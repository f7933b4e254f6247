/*
 * Per-context data and the callbacks installed on every mailgate SSL_CTX.
 * Everything here runs inside OpenSSL calls, once or a few times per
 * handshake, and never calls back into Python.
 */
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "tls_internal.h"

typedef struct {
    unsigned char   alpn[256];
    unsigned int    alpn_len;
    mg_zone        *zone;
    int             store;      /* an external session store (ssl_session_store) */
    int             shared_keys;
    size_t          nkeys;
    mg_ticket_key  *keys;
} mg_ctx_data;

int mg_conn_index = -1;
static int  mg_ctx_index = -1;
static long mg_ctx_count;


static void
ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
    mg_ctx_data  *d = ptr;

    (void) parent; (void) ad; (void) idx; (void) argl; (void) argp;

    if (d == NULL) {
        return;
    }
    if (d->zone != NULL) {
        mg_zone_release(d->zone);
    }
    if (d->keys != NULL) {
        OPENSSL_cleanse(d->keys, d->nkeys * sizeof(mg_ticket_key));
        OPENSSL_free(d->keys);
    }
    OPENSSL_free(d);
    __atomic_sub_fetch(&mg_ctx_count, 1, __ATOMIC_RELAXED);
}


int
mg_init(void)
{
    if (mg_ctx_index != -1) {
        return 1;
    }
    mg_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
    mg_conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    return mg_ctx_index != -1 && mg_conn_index != -1;
}


static mg_ctx_data *
ctx_data(const SSL_CTX *ctx)
{
    return SSL_CTX_get_ex_data(ctx, mg_ctx_index);
}


/* The context whose caches a connection uses: the one it was created with,
   as nginx's c->ssl->session_ctx, even if a servername callback switches. */
static SSL_CTX *
session_ctx(const SSL *ssl)
{
    mg_conn  *c = SSL_get_ex_data(ssl, mg_conn_index);

    return c != NULL ? mg_conn_session_ctx(c) : SSL_get_SSL_CTX(ssl);
}


long
mg_ctx_live(void)
{
    return __atomic_load_n(&mg_ctx_count, __ATOMIC_RELAXED);
}


/*
 * TLS 1.3 resumption refreshes the session time while keeping its timeout,
 * which would let a session live forever.  Once per connection, as nginx
 * 1.23.2+ does: age the timeout instead, and make an outlived session
 * unresumable by blanking its ID context.
 *
 * nginx's info callback also raises the handshake write buffer to 16 KiB so
 * that a long certificate chain does not leave in 4 KiB pieces.  Here the
 * write side is a memory BIO: a whole flight is collected there and handed
 * to the transport in one write, whatever OpenSSL's buffering below it.
 */
static void
info_callback(const SSL *ssl, int where, int ret)
{
    mg_conn      *c;
    SSL_SESSION  *sess;
    long          now, time0, timeout, conf_timeout;

    if ((where & SSL_CB_WRITE_ALERT) && (ret & 0xff) == SSL_AD_NO_RENEGOTIATION) {
        /* OpenSSL refuses a renegotiation with this warning alert and reads on:
           the peer would wait for a handshake that never comes.  As nginx's
           info callback does, remember it; the next read reports it, and the
           session closes after sending the alert. */
        c = SSL_get_ex_data(ssl, mg_conn_index);
        if (c != NULL) {
            mg_conn_set_flags(c, MG_CONN_RENEGOTIATION);
        }
        return;
    }

    if ((where & SSL_CB_ACCEPT_LOOP) != SSL_CB_ACCEPT_LOOP
        || SSL_version(ssl) != TLS1_3_VERSION)
    {
        return;
    }

    c = SSL_get_ex_data(ssl, mg_conn_index);
    sess = SSL_get0_session(ssl);
    if (c == NULL || sess == NULL || !mg_conn_clamp_once(c)) {
        return;
    }

    now = (long) time(NULL);
    time0 = SSL_SESSION_get_time(sess);
    timeout = SSL_SESSION_get_timeout(sess);
    conf_timeout = SSL_CTX_get_timeout(mg_conn_session_ctx(c));
    if (conf_timeout < timeout) {
        timeout = conf_timeout;
    }

    if (now - time0 >= timeout) {
        SSL_SESSION_set1_id_context(sess, (const unsigned char *) "", 0);
    } else {
        SSL_SESSION_set_time(sess, now);
        SSL_SESSION_set_timeout(sess, timeout - (now - time0));
    }
}


int
mg_ctx_attach(SSL_CTX *ctx)
{
    mg_ctx_data  *d = OPENSSL_zalloc(sizeof(mg_ctx_data));

    if (d == NULL) {
        return 0;
    }
    if (!SSL_CTX_set_ex_data(ctx, mg_ctx_index, d)) {
        OPENSSL_free(d);
        return 0;
    }
    __atomic_add_fetch(&mg_ctx_count, 1, __ATOMIC_RELAXED);
    SSL_CTX_set_info_callback(ctx, info_callback);
    return 1;
}


static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
    mg_ctx_data  *d = arg;

    (void) ssl;

    if (SSL_select_next_proto((unsigned char **) out, outlen,
                              d->alpn, d->alpn_len, in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
    {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}


int
mg_ctx_set_alpn(SSL_CTX *ctx, const unsigned char *protos, size_t len)
{
    mg_ctx_data  *d = ctx_data(ctx);

    if (d == NULL || len == 0 || len > sizeof(d->alpn)) {
        return 0;
    }
    memcpy(d->alpn, protos, len);
    d->alpn_len = (unsigned int) len;
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, d);
    return 1;
}


static int
verify_callback(int ok, X509_STORE_CTX *store)
{
    (void) ok; (void) store;
    return 1;
}


void
mg_ctx_set_verify(SSL_CTX *ctx, int mode)
{
    SSL_CTX_set_verify(ctx, mode, verify_callback);
}


/* ---- shared session cache ---------------------------------------------- */

/* A new session for the external store: the caller takes it after the
   handshake (mg_conn_take_session()). */
static void
keep_new_session(mg_lookup *lk, SSL_SESSION *sess)
{
    if (lk->nnew < MG_NEW_SESSIONS && SSL_SESSION_up_ref(sess)) {
        lk->new[lk->nnew++] = sess;
    }
}


static SSL_SESSION *
zone_session(mg_zone *zone, const unsigned char *id, size_t len)
{
    const unsigned char  *p;
    unsigned char         buf[MG_SESSION_DER_MAX];
    SSL_SESSION          *sess;
    size_t                n;

    n = mg_zone_get(zone, id, len, buf, sizeof(buf), (int64_t) time(NULL));
    if (n == 0) {
        return NULL;
    }
    p = buf;
    sess = d2i_SSL_SESSION(NULL, &p, (long) n);
    OPENSSL_cleanse(buf, n);
    return sess;
}

static int
new_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_CTX              *ctx = session_ctx(ssl);
    mg_ctx_data          *d = ctx_data(ctx);
    mg_conn              *c;
    const unsigned char  *id;
    unsigned char        *p, buf[MG_SESSION_DER_MAX];
    unsigned int          id_len;
    int                   len, rc;
    int64_t               now;

    if (d == NULL || (d->zone == NULL && !d->store)) {
        return 0;
    }

    /* With tickets, TLS 1.3 resumption is stateless: OpenSSL still reports
       the session, but storing it would only fill the zone. */
    if (SSL_version(ssl) == TLS1_3_VERSION
        && (SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0)
    {
        return 0;
    }

    c = SSL_get_ex_data(ssl, mg_conn_index);
    if (d->store && c != NULL) {
        keep_new_session(mg_conn_lookup(c), sess);
    }
    if (d->zone == NULL) {
        return 0;
    }

    len = i2d_SSL_SESSION(sess, NULL);
    if (len <= 0 || len > MG_SESSION_DER_MAX) {
        return 0;
    }
    p = buf;
    i2d_SSL_SESSION(sess, &p);

    id = SSL_SESSION_get_id(sess, &id_len);
    now = (int64_t) time(NULL);
    rc = mg_zone_put(d->zone, id, id_len, buf, (size_t) len,
                     now + SSL_CTX_get_timeout(ctx), now);
    OPENSSL_cleanse(buf, (size_t) len);

    if (rc == MG_ZONE_FAILED_WARN) {
        if (c != NULL) {
            mg_conn_set_flags(c, MG_CONN_STORE_FAILED);
        }
    }

    /* 0: OpenSSL keeps its reference, nothing to free here */
    return 0;
}


static SSL_SESSION *
get_session(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    mg_ctx_data          *d = ctx_data(session_ctx(ssl));
    mg_conn              *c;
    mg_lookup            *lk;
    SSL_SESSION          *sess;
    const unsigned char  *sid;
    unsigned int          sid_len;

    *copy = 0;

    if (d == NULL || len <= 0) {
        return NULL;
    }

    /* what the ClientHello callback found (zone or store): its reference
       goes to OpenSSL */
    c = SSL_get_ex_data(ssl, mg_conn_index);
    if (d->store && c != NULL && (lk = mg_conn_lookup(c))->found != NULL) {
        sess = lk->found;
        sid = SSL_SESSION_get_id(sess, &sid_len);
        if (sid_len == (unsigned int) len && memcmp(sid, id, sid_len) == 0) {
            lk->found = NULL;
            return sess;
        }
    }

    if (d->zone == NULL) {
        return NULL;
    }
    return zone_session(d->zone, id, (size_t) len);
}


/*
 * The session ID a ClientHello resumes by in the cache, if any: the identity
 * of a TLS 1.3 pre_shared_key when it is a session ID (tickets off: OpenSSL's
 * stateful tickets, RFC 8446 section 4.2.11), else the legacy session ID of
 * a TLS 1.2 ClientHello that sends no ticket.  A client offering TLS 1.3 to a
 * server that speaks it sends a random legacy ID (RFC 8446 appendix D.4):
 * nothing to look up.
 */
static size_t
hello_session_id(SSL *ssl, const unsigned char **id)
{
    const unsigned char  *p;
    size_t                len, n, end;

    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &p, &len)) {
        /* identities<7..2^16-1>: the first identity<1..2^16-1>; OpenSSL looks
           one up in the cache only with tickets off */
        if (len < 4 || (SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0) {
            return 0;
        }
        n = ((size_t) p[2] << 8) | p[3];
        if (n == 0 || n > MG_SESSION_ID_MAX || n + 4 > len) {
            return 0;                   /* a stateless ticket */
        }
        *id = p + 4;
        return n;
    }

    if ((SSL_get_options(ssl) & SSL_OP_NO_TLSv1_3) == 0
        && SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len)
        && len >= 1)
    {
        end = (size_t) p[0] + 1 < len ? (size_t) p[0] + 1 : len;
        for (n = 1; n + 1 < end; n += 2) {
            if (p[n] == 0x03 && p[n + 1] == 0x04) {
                return 0;
            }
        }
    }

    if ((SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0
        && SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &p, &len)
        && len > 0)
    {
        return 0;                       /* resumes by ticket */
    }

    len = SSL_client_hello_get0_session_id(ssl, id);
    return len <= MG_SESSION_ID_MAX ? len : 0;
}


/* Pause the handshake for the external store when the local caches miss. */
static int
client_hello(SSL *ssl, int *alert, void *arg)
{
    mg_ctx_data          *d = ctx_data(session_ctx(ssl));
    mg_conn              *c = SSL_get_ex_data(ssl, mg_conn_index);
    mg_lookup            *lk;
    const unsigned char  *id = NULL;
    size_t                len;

    (void) alert; (void) arg;

    if (d == NULL || !d->store || c == NULL) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    lk = mg_conn_lookup(c);
    if (lk->state == MG_LOOKUP_PENDING) {
        return SSL_CLIENT_HELLO_RETRY;
    }
    if (lk->state == MG_LOOKUP_DONE) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    lk->state = MG_LOOKUP_DONE;

    /* The builtin cache cannot be asked here: before the version is chosen
       SSL_has_matching_session_id() never matches (the cache is keyed by
       version too).  The shared zone can. */
    len = hello_session_id(ssl, &id);
    if (len == 0) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    if (d->zone != NULL && (lk->found = zone_session(d->zone, id, len)) != NULL) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }

    memcpy(lk->id, id, len);
    lk->id_len = (unsigned) len;
    lk->state = MG_LOOKUP_PENDING;
    return SSL_CLIENT_HELLO_RETRY;
}


static void
zone_remove_session(mg_ctx_data *d, SSL_SESSION *sess)
{
    const unsigned char  *id;
    unsigned int          len;

    if (d != NULL && d->zone != NULL && sess != NULL) {
        id = SSL_SESSION_get_id(sess, &len);
        mg_zone_remove(d->zone, id, len);
    }
}


static void
remove_session(SSL_CTX *ctx, SSL_SESSION *sess)
{
    zone_remove_session(ctx_data(ctx), sess);
}


int
mg_ctx_set_session_zone(SSL_CTX *ctx, mg_zone *zone)
{
    mg_ctx_data  *d = ctx_data(ctx);

    if (d == NULL || d->zone != NULL) {
        return 0;
    }
    mg_zone_retain(zone);
    d->zone = zone;
    SSL_CTX_sess_set_new_cb(ctx, new_session);
    SSL_CTX_sess_set_get_cb(ctx, get_session);
    SSL_CTX_sess_set_remove_cb(ctx, remove_session);
    return 1;
}


int
mg_ctx_set_session_store(SSL_CTX *ctx)
{
    mg_ctx_data  *d = ctx_data(ctx);

    if (d == NULL) {
        return 0;
    }
    d->store = 1;
    SSL_CTX_sess_set_new_cb(ctx, new_session);
    SSL_CTX_sess_set_get_cb(ctx, get_session);
    SSL_CTX_sess_set_remove_cb(ctx, remove_session);
    SSL_CTX_set_client_hello_cb(ctx, client_hello, NULL);
    return 1;
}


void
mg_ctx_remove_session(SSL_CTX *ctx, SSL_SESSION *sess)
{
    if (sess == NULL) {
        return;
    }
    SSL_CTX_remove_session(ctx, sess);
    /* SSL_CTX_remove_session() only calls the hook for sessions it holds
       itself; with the internal cache off the shared copy needs this. */
    zone_remove_session(ctx_data(ctx), sess);
}


/* ---- session tickets ----------------------------------------------------- */

static int
ticket_mac_init(EVP_MAC_CTX *hctx, unsigned char *key, size_t len)
{
    OSSL_PARAM  params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, len);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
}


/* ngx_ssl_rotate_ticket_keys(): sync with the zone only when needed. */
static int
rotate_ticket_keys(SSL_CTX *ctx, mg_ctx_data *d)
{
    int64_t  now = (int64_t) time(NULL);
    int64_t  expire = now + SSL_CTX_get_timeout(ctx);

    if (d->keys[0].expire >= expire && d->keys[1].expire >= now) {
        return 1;
    }
    return mg_zone_sync_ticket_keys(d->zone, now, expire, d->keys);
}


static int
ticket_key_callback(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    SSL_CTX           *ctx = session_ctx(ssl);
    mg_ctx_data       *d = ctx_data(ctx);
    mg_ticket_key     *key;
    const EVP_CIPHER  *cipher;
    size_t             i, size;

    if (d == NULL || d->nkeys == 0) {
        return -1;
    }
    if (d->shared_keys && !rotate_ticket_keys(ctx, d)) {
        return -1;
    }

    if (enc == 1) {
        key = &d->keys[0];
        cipher = key->size == 48 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
        size = key->size == 48 ? 16 : 32;

        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1
            || EVP_EncryptInit_ex(ectx, cipher, NULL, key->aes_key, iv) != 1
            || !ticket_mac_init(hctx, key->hmac_key, size))
        {
            return -1;
        }
        memcpy(name, key->name, 16);
        return 1;
    }

    for (i = 0; i < d->nkeys; i++) {
        if (memcmp(name, d->keys[i].name, 16) == 0) {
            break;
        }
    }
    if (i == d->nkeys) {
        return 0;                       /* unknown key: full handshake */
    }

    key = &d->keys[i];
    cipher = key->size == 48 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    size = key->size == 48 ? 16 : 32;

    if (!ticket_mac_init(hctx, key->hmac_key, size)
        || EVP_DecryptInit_ex(ectx, cipher, NULL, key->aes_key, iv) != 1)
    {
        return -1;
    }

    /* renew: always under TLS 1.3, and when an older key decrypted */
    if (SSL_version(ssl) == TLS1_3_VERSION || (i != 0 && key->expire)) {
        return 2;
    }
    return 1;
}


static mg_ticket_key *
ctx_add_keys(SSL_CTX *ctx, mg_ctx_data *d, size_t n)
{
    mg_ticket_key  *keys;

    keys = OPENSSL_zalloc((d->nkeys + n) * sizeof(mg_ticket_key));
    if (keys == NULL) {
        return NULL;
    }
    if (d->keys != NULL) {
        memcpy(keys, d->keys, d->nkeys * sizeof(mg_ticket_key));
        OPENSSL_cleanse(d->keys, d->nkeys * sizeof(mg_ticket_key));
        OPENSSL_free(d->keys);
    }
    d->keys = keys;
    d->nkeys += n;
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_callback);
    return &keys[d->nkeys - n];
}


int
mg_ctx_add_ticket_key(SSL_CTX *ctx, const unsigned char *buf, size_t len)
{
    mg_ctx_data    *d = ctx_data(ctx);
    mg_ticket_key  *key;

    if (d == NULL || d->shared_keys || (len != 48 && len != 80)) {
        return 0;
    }
    key = ctx_add_keys(ctx, d, 1);
    if (key == NULL) {
        return 0;
    }

    key->size = (int) len;
    key->expire = 1;
    memcpy(key->name, buf, 16);
    if (len == 48) {
        memcpy(key->aes_key, buf + 16, 16);
        memcpy(key->hmac_key, buf + 32, 16);
    } else {
        memcpy(key->hmac_key, buf + 16, 32);
        memcpy(key->aes_key, buf + 48, 32);
    }
    return 1;
}


int
mg_ctx_use_zone_ticket_keys(SSL_CTX *ctx)
{
    mg_ctx_data  *d = ctx_data(ctx);

    if (d == NULL || d->zone == NULL || d->nkeys != 0) {
        return 0;
    }
    if (ctx_add_keys(ctx, d, 2) == NULL) {
        return 0;
    }
    d->shared_keys = 1;
    return 1;
}

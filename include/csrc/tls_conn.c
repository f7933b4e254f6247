/*
 * A TLS connection over two memory BIOs.  Each helper does in C what would
 * otherwise be several Python-to-C crossings per record: feeding all received
 * ciphertext at once, reading every decrypted record that fits the caller's
 * buffer, and taking all pending ciphertext in one piece.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "tls_internal.h"

/* A drained memory BIO keeps its largest buffer; past this it is replaced,
   so that an idle connection does not hold a bulk transfer's memory. */
#define MG_BIO_KEEP  16384

#define MG_NO_WAIT_SHUTDOWN  0x100u
#define MG_NO_SEND_SHUTDOWN  0x200u
#define MG_CLAMPED           0x400u
#define MG_INPUT_EOF         0x800u

struct mg_conn {
    SSL       *ssl;
    BIO       *rbio;
    BIO       *wbio;
    SSL_CTX   *session_ctx;
    unsigned   flags;
    mg_lookup  lookup;
};

static long mg_conn_count;


mg_conn *
mg_conn_new(SSL_CTX *ctx, int server)
{
    mg_conn  *c = calloc(1, sizeof(mg_conn));

    if (c == NULL) {
        return NULL;
    }

    c->ssl = SSL_new(ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());

    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL
        || !SSL_set_ex_data(c->ssl, mg_conn_index, c))
    {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        return NULL;
    }

    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    c->session_ctx = ctx;

    if (server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
    }
    /* neither side renegotiates: a request is refused with the
       no_renegotiation alert (see the info callback) */
    SSL_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION);

    __atomic_add_fetch(&mg_conn_count, 1, __ATOMIC_RELAXED);
    return c;
}


static void
drop_sessions(mg_lookup *lk)
{
    while (lk->nnew > 0) {
        SSL_SESSION_free(lk->new[--lk->nnew]);
    }
}


void
mg_conn_free(mg_conn *c)
{
    /* nginx shuts down (or quietly marks shut down) every connection before
       freeing it; SSL_free() would otherwise drop the session from the
       caches as a "bad" one. */
    SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c->ssl);               /* frees both BIOs */
    SSL_SESSION_free(c->lookup.found);
    drop_sessions(&c->lookup);
    free(c);
    __atomic_sub_fetch(&mg_conn_count, 1, __ATOMIC_RELAXED);
}


long
mg_conn_live(void)
{
    return __atomic_load_n(&mg_conn_count, __ATOMIC_RELAXED);
}


/* Client mode: the name sent in SNI (NULL: none) and the name the server's
   certificate must carry (NULL: not checked). */
int
mg_conn_set_server_name(mg_conn *c, const char *sni, const char *verify_name)
{
    if (sni != NULL && !SSL_set_tlsext_host_name(c->ssl, sni)) {
        return 0;
    }
    if (verify_name != NULL && !SSL_set1_host(c->ssl, verify_name)) {
        return 0;
    }
    return 1;
}


SSL *
mg_conn_ssl(const mg_conn *c)
{
    return c->ssl;
}


SSL_CTX *
mg_conn_session_ctx(const mg_conn *c)
{
    return c->session_ctx;
}


int
mg_conn_clamp_once(mg_conn *c)
{
    if (c->flags & MG_CLAMPED) {
        return 0;
    }
    c->flags |= MG_CLAMPED;
    return 1;
}


void
mg_conn_set_flags(mg_conn *c, unsigned flags)
{
    c->flags |= flags;
}


mg_lookup *
mg_conn_lookup(mg_conn *c)
{
    return &c->lookup;
}


size_t
mg_conn_lookup_id(const mg_conn *c, unsigned char *out)
{
    if (c->lookup.state != MG_LOOKUP_PENDING) {
        return 0;
    }
    memcpy(out, c->lookup.id, c->lookup.id_len);
    return c->lookup.id_len;
}


void
mg_conn_lookup_done(mg_conn *c, const unsigned char *der, size_t len)
{
    mg_lookup             *lk = &c->lookup;
    const unsigned char   *p = der;
    const unsigned char   *id;
    SSL_SESSION           *sess = NULL;
    unsigned int           id_len;

    if (lk->state != MG_LOOKUP_PENDING) {
        return;
    }
    lk->state = MG_LOOKUP_DONE;
    if (der == NULL || len == 0 || len > MG_SESSION_DER_MAX) {
        return;
    }
    sess = d2i_SSL_SESSION(NULL, &p, (long) len);
    if (sess == NULL) {
        ERR_clear_error();
        return;
    }
    /* only the session asked for: the get-session callback compares again */
    id = SSL_SESSION_get_id(sess, &id_len);
    if (id_len != lk->id_len || memcmp(id, lk->id, id_len) != 0) {
        SSL_SESSION_free(sess);
        return;
    }
    SSL_SESSION_free(lk->found);
    lk->found = sess;
}


size_t
mg_conn_take_session(mg_conn *c, unsigned char *id, unsigned int *id_len,
    unsigned char *der, size_t cap)
{
    mg_lookup            *lk = &c->lookup;
    SSL_SESSION          *sess;
    const unsigned char  *sid;
    unsigned char        *p;
    int                   len;

    while (lk->nnew > 0) {
        sess = lk->new[--lk->nnew];
        len = i2d_SSL_SESSION(sess, NULL);
        if (len > 0 && (size_t) len <= cap) {
            p = der;
            i2d_SSL_SESSION(sess, &p);
            sid = SSL_SESSION_get_id(sess, id_len);
            memcpy(id, sid, *id_len);
            SSL_SESSION_free(sess);
            return (size_t) len;
        }
        SSL_SESSION_free(sess);
    }
    return 0;
}


void
mg_conn_drop_sessions(mg_conn *c)
{
    drop_sessions(&c->lookup);
}


static size_t
bio_capacity(BIO *bio)
{
    BUF_MEM  *mem = NULL;

    BIO_get_mem_ptr(bio, &mem);
    return mem != NULL ? mem->max : 0;
}


/* Swap a drained, oversized BIO for a fresh one; on failure keep the old. */
static void
release_bio(mg_conn *c, int input)
{
    BIO  *old = input ? c->rbio : c->wbio;
    BIO  *bio;

    if (BIO_ctrl_pending(old) != 0 || bio_capacity(old) <= MG_BIO_KEEP) {
        return;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return;
    }
    if (input) {
        if (c->flags & MG_INPUT_EOF) {
            BIO_set_mem_eof_return(bio, 0);
        }
        SSL_set0_rbio(c->ssl, bio);
        c->rbio = bio;
    } else {
        SSL_set0_wbio(c->ssl, bio);
        c->wbio = bio;
    }
}


int
mg_conn_feed(mg_conn *c, const char *data, size_t len)
{
    size_t  written;

    if (len == 0) {
        return 1;
    }
    return BIO_write_ex(c->rbio, data, len, &written) == 1 && written == len;
}


/* Returns whether SSL_read() could only report the close: nothing is left to
   read, and SSL_OP_IGNORE_UNEXPECTED_EOF makes a bare end of input a close. */
int
mg_conn_feed_eof(mg_conn *c)
{
    c->flags |= MG_INPUT_EOF;
    BIO_set_mem_eof_return(c->rbio, 0);
    return (SSL_get_options(c->ssl) & SSL_OP_IGNORE_UNEXPECTED_EOF) != 0
           && !SSL_has_pending(c->ssl) && BIO_ctrl_pending(c->rbio) == 0;
}


size_t
mg_conn_pending(const mg_conn *c)
{
    return BIO_ctrl_pending(c->wbio);
}


/* Whether SSL_read() has anything to work on: decrypted or unprocessed bytes
   inside OpenSSL, ciphertext in the input BIO, or the end of input to report. */
int
mg_conn_has_input(const mg_conn *c)
{
    return SSL_has_pending(c->ssl) || BIO_ctrl_pending(c->rbio) != 0
           || (c->flags & MG_INPUT_EOF) != 0;
}


size_t
mg_conn_take(mg_conn *c, char *out, size_t len)
{
    size_t  n = 0;

    if (len != 0 && BIO_read_ex(c->wbio, out, len, &n) != 1) {
        n = 0;
    }
    release_bio(c, 0);
    return n;
}


/* After a failure nginx neither sends nor waits for close_notify. */
static int
failed(mg_conn *c, int err)
{
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE
        && err != SSL_ERROR_WANT_CLIENT_HELLO_CB && err != SSL_ERROR_NONE)
    {
        c->flags |= MG_NO_WAIT_SHUTDOWN | MG_NO_SEND_SHUTDOWN;
    }
    return err;
}


int
mg_conn_handshake(mg_conn *c, const char *data, size_t len)
{
    int  n;

    if (!mg_conn_feed(c, data, len)) {
        return MG_FEED_FAILED;
    }

    ERR_clear_error();
    n = SSL_do_handshake(c->ssl);
    release_bio(c, 1);

    if (n != 1) {
        return failed(c, SSL_get_error(c->ssl, n));
    }
    if (c->flags & MG_CONN_STORE_FAILED) {
        c->flags &= ~MG_CONN_STORE_FAILED;
        return MG_DONE_STORE_FAILED;
    }
    return SSL_ERROR_NONE;
}


int
mg_conn_read(mg_conn *c, char *buf, size_t len, size_t *nread)
{
    size_t  total = 0, n;
    int     err = SSL_ERROR_NONE;

    ERR_clear_error();

    /* SSL_read_ex() returns one record at a time: go on until the buffer is
       full or OpenSSL has nothing more. */
    while (total < len) {
        if (SSL_read_ex(c->ssl, buf + total, len - total, &n) != 1) {
            err = SSL_get_error(c->ssl, 0);
            break;
        }
        total += n;
    }

    *nread = total;
    release_bio(c, 1);
    if (c->flags & MG_CONN_RENEGOTIATION) {
        /* nginx's "SSL renegotiation disabled": neither sends nor waits for
           close_notify */
        c->flags |= MG_NO_WAIT_SHUTDOWN | MG_NO_SEND_SHUTDOWN;
        return MG_RENEGOTIATION;
    }
    return failed(c, err);
}


/* On success *pending is the ciphertext waiting to be taken, this write's
   records included: the caller takes it all without asking again. */
int
mg_conn_write(mg_conn *c, const char *buf, size_t len, size_t *pending)
{
    size_t  written;

    ERR_clear_error();

    if (len != 0 && SSL_write_ex(c->ssl, buf, len, &written) != 1) {
        return failed(c, SSL_get_error(c->ssl, 0));
    }
    *pending = BIO_ctrl_pending(c->wbio);
    return SSL_ERROR_NONE;
}


int
mg_conn_shutdown(mg_conn *c, int quiet)
{
    int  mode, n, err, tries;

    /* nginx never calls SSL_shutdown() before the handshake completed */
    if (SSL_in_init(c->ssl)) {
        if (quiet) {
            ERR_clear_error();  /* what a failed handshake left */
        }
        return 1;
    }

    if (quiet) {
        mode = SSL_RECEIVED_SHUTDOWN | SSL_SENT_SHUTDOWN;
        SSL_set_quiet_shutdown(c->ssl, 1);

    } else {
        mode = SSL_get_shutdown(c->ssl);
        if (c->flags & MG_NO_WAIT_SHUTDOWN) {
            mode |= SSL_RECEIVED_SHUTDOWN;
        }
        if (c->flags & MG_NO_SEND_SHUTDOWN) {
            mode |= SSL_SENT_SHUTDOWN;
        }
        if ((c->flags & MG_NO_WAIT_SHUTDOWN) && (c->flags & MG_NO_SEND_SHUTDOWN)) {
            SSL_set_quiet_shutdown(c->ssl, 1);
        }
    }

    SSL_set_shutdown(c->ssl, mode);
    ERR_clear_error();

    /* the first call sends close_notify, the second looks for the peer's */
    for (tries = 2; ; ) {
        n = SSL_shutdown(c->ssl);
        if (n == 1) {
            return 1;
        }
        if (n == 0 && tries-- > 1) {
            continue;
        }
        err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            return 0;
        }
        if (err == SSL_ERROR_ZERO_RETURN || ERR_peek_error() == 0) {
            return 1;
        }
        return -err;
    }
}

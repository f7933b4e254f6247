/*
 * mailgate's C side of TLS: per-context data and the callbacks that must not
 * run Python for every handshake (ALPN select, always-accept verify, info
 * callback, shared session cache hooks, ticket keys), and the connection
 * helpers that move bytes between memory BIOs and SSL in one call.
 */
#ifndef MAILGATE_TLS_H
#define MAILGATE_TLS_H

#include <openssl/ssl.h>

#include "zone.h"

/* Once per process, before any other mg_ call: the ex_data indexes. */
int mg_init(void);

/* ---- contexts ---------------------------------------------------------- */

/* Attach mailgate's data (freed with the context) and the info callback. */
int mg_ctx_attach(SSL_CTX *ctx);
/* The server's ALPN list in wire format; a client list without a match is
   refused with the no_application_protocol alert. */
int mg_ctx_set_alpn(SSL_CTX *ctx, const unsigned char *protos, size_t len);
/* SSL_CTX_set_verify() with the callback that accepts every certificate, as
   nginx's ngx_ssl_verify_callback(): the verdict is taken after the handshake
   (ngx_mail_verify_cert() in src/mail/ngx_mail_handler.c). */
void mg_ctx_set_verify(SSL_CTX *ctx, int mode);
/* Store sessions in a shared zone through the new/get/remove hooks. */
int mg_ctx_set_session_zone(SSL_CTX *ctx, mg_zone *zone);
/* An external session store (ssl_session_store, kept by the caller): sessions
   missing from the builtin cache and the zone pause the handshake in the
   ClientHello callback (SSL_ERROR_WANT_CLIENT_HELLO_CB) until
   mg_conn_lookup_done(); new sessions wait in the connection for
   mg_conn_take_session(). */
int mg_ctx_set_session_store(SSL_CTX *ctx);
/* Add one 48- or 80-byte ticket key file's content; the first encrypts. */
int mg_ctx_add_ticket_key(SSL_CTX *ctx, const unsigned char *buf, size_t len);
/* Ticket keys kept in the context's session zone, rotated as nginx does. */
int mg_ctx_use_zone_ticket_keys(SSL_CTX *ctx);
/* ngx_ssl_remove_cached_session(): out of the builtin and the shared cache. */
void mg_ctx_remove_session(SSL_CTX *ctx, SSL_SESSION *sess);
/* Contexts with mailgate data still alive in this process. */
long mg_ctx_live(void);

/* ---- connections -------------------------------------------------------- */

typedef struct mg_conn mg_conn;

/* Connection flags: the shared cache could not store the new session; the
   peer asked for a renegotiation, refused with the no_renegotiation alert. */
#define MG_CONN_STORE_FAILED   0x01u
#define MG_CONN_RENEGOTIATION  0x02u

/* mg_conn_handshake() results beside SSL_ERROR_*: done, and nginx's shared cache
   warning is to be logged; the received bytes could not be buffered.  From
   mg_conn_read(): a renegotiation was refused (the alert waits to be taken). */
#define MG_DONE_STORE_FAILED   (-1)
#define MG_FEED_FAILED         (-2)
#define MG_RENEGOTIATION       (-3)

/* A server-side (server != 0) or client-side connection of ctx. */
mg_conn *mg_conn_new(SSL_CTX *ctx, int server);
int mg_conn_set_server_name(mg_conn *c, const char *sni, const char *verify_name);
void mg_conn_free(mg_conn *c);
SSL *mg_conn_ssl(const mg_conn *c);
long mg_conn_live(void);

/* The session ID the paused handshake looks for (out: MG_SESSION_ID_MAX
   bytes); 0 when none is looked for. */
size_t mg_conn_lookup_id(const mg_conn *c, unsigned char *out);
/* The answer: the session's DER, or NULL/0 for a miss; the next handshake
   call goes on with it. */
void mg_conn_lookup_done(mg_conn *c, const unsigned char *der, size_t len);
/* One new session to store: its DER length (0: none left), ID and DER. */
size_t mg_conn_take_session(mg_conn *c, unsigned char *id, unsigned int *id_len,
    unsigned char *der, size_t cap);
/* Forget the new sessions (a client certificate failed verification). */
void mg_conn_drop_sessions(mg_conn *c);

/* Ciphertext in and out. */
int mg_conn_feed(mg_conn *c, const char *data, size_t len);
int mg_conn_feed_eof(mg_conn *c);
size_t mg_conn_pending(const mg_conn *c);
int mg_conn_has_input(const mg_conn *c);
size_t mg_conn_take(mg_conn *c, char *out, size_t len);

/*
 * These return an SSL_ERROR_* code (SSL_ERROR_NONE on success) and leave
 * the OpenSSL error queue for the caller to describe.
 */
int mg_conn_handshake(mg_conn *c, const char *data, size_t len);
int mg_conn_read(mg_conn *c, char *buf, size_t len, size_t *nread);
int mg_conn_write(mg_conn *c, const char *buf, size_t len, size_t *pending);
/* 1: done; 0: close_notify sent, the peer's is awaited; <0: -SSL_ERROR_*. */
int mg_conn_shutdown(mg_conn *c, int quiet);

/* nginx's list of handshake failures a client can cause (logged at info). */
int mg_error_is_client_caused(unsigned long err);

#endif

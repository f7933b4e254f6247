/* Shared between tls_ctx.c and tls_conn.c only; not part of the cdef. */
#ifndef MAILGATE_TLS_INTERNAL_H
#define MAILGATE_TLS_INTERNAL_H

#include <openssl/ssl.h>

#include "tls.h"

extern int mg_conn_index;

SSL_CTX *mg_conn_session_ctx(const mg_conn *c);
/* True the first time only: the TLS 1.3 lifetime clamp runs once. */
int mg_conn_clamp_once(mg_conn *c);
void mg_conn_set_flags(mg_conn *c, unsigned flags);

/* A connection's part in the external session store (ssl_session_store): the
   ClientHello callback's lookup and the new sessions waiting to be stored. */
#define MG_LOOKUP_NONE     0
#define MG_LOOKUP_PENDING  1   /* the handshake waits for the caller's answer */
#define MG_LOOKUP_DONE     2
#define MG_NEW_SESSIONS    4   /* TLS 1.3 sends two tickets by default */

typedef struct {
    int            state;
    unsigned       id_len;
    unsigned char  id[MG_SESSION_ID_MAX];
    SSL_SESSION   *found;      /* what the get-session callback hands to OpenSSL */
    unsigned       nnew;
    SSL_SESSION   *new[MG_NEW_SESSIONS];
} mg_lookup;

mg_lookup *mg_conn_lookup(mg_conn *c);

#endif

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

#endif

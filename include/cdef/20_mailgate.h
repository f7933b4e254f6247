/* mailgate's own C (csrc/zone.h, csrc/tls.h): the shared session store, the
   callbacks installed on every context, and the memory-BIO connection. */
typedef ... mg_zone;
typedef struct {
    uint64_t  size;
    uint32_t  capacity;
    uint32_t  count;
    uint32_t  chunk_size;
    uint64_t  stored;
    uint64_t  hits;
    uint64_t  misses;
    uint64_t  expired;
    uint64_t  evicted;
    uint64_t  failed;
} mg_zone_stats;

static const int MG_SESSION_DER_MAX;
static const int MG_SESSION_ID_MAX;
static const int MG_ZONE_STORED;
static const int MG_ZONE_FAILED;
static const int MG_ZONE_FAILED_WARN;

mg_zone *mg_zone_create(const char *, size_t);
void mg_zone_release(mg_zone *);
int mg_zone_put(mg_zone *, const unsigned char *, size_t, const unsigned char *,
                size_t, int64_t, int64_t);
size_t mg_zone_get(mg_zone *, const unsigned char *, size_t, unsigned char *,
                   size_t, int64_t);
int mg_zone_remove(mg_zone *, const unsigned char *, size_t);
void mg_zone_get_stats(mg_zone *, mg_zone_stats *);

int mg_init(void);
int mg_ctx_attach(SSL_CTX *);
int mg_ctx_set_alpn(SSL_CTX *, const unsigned char *, size_t);
void mg_ctx_set_verify(SSL_CTX *, int);
int mg_ctx_set_session_zone(SSL_CTX *, mg_zone *);
int mg_ctx_set_session_store(SSL_CTX *);
int mg_ctx_add_ticket_key(SSL_CTX *, const unsigned char *, size_t);
int mg_ctx_use_zone_ticket_keys(SSL_CTX *);
void mg_ctx_remove_session(SSL_CTX *, SSL_SESSION *);
long mg_ctx_live(void);

typedef ... mg_conn;
static const int MG_DONE_STORE_FAILED;
static const int MG_FEED_FAILED;
static const int MG_RENEGOTIATION;

mg_conn *mg_conn_new(SSL_CTX *, int);
int mg_conn_set_server_name(mg_conn *, const char *, const char *);
void mg_conn_free(mg_conn *);
SSL *mg_conn_ssl(const mg_conn *);
long mg_conn_live(void);
size_t mg_conn_lookup_id(const mg_conn *, unsigned char *);
void mg_conn_lookup_done(mg_conn *, const unsigned char *, size_t);
size_t mg_conn_take_session(mg_conn *, unsigned char *, unsigned int *, unsigned char *, size_t);
void mg_conn_drop_sessions(mg_conn *);
int mg_conn_feed(mg_conn *, const char *, size_t);
int mg_conn_feed_eof(mg_conn *);
size_t mg_conn_pending(const mg_conn *);
int mg_conn_has_input(const mg_conn *);
size_t mg_conn_take(mg_conn *, char *, size_t);
int mg_conn_handshake(mg_conn *, const char *, size_t);
int mg_conn_read(mg_conn *, char *, size_t, size_t *);
int mg_conn_write(mg_conn *, const char *, size_t, size_t *);
int mg_conn_shutdown(mg_conn *, int);
int mg_error_is_client_caused(unsigned long);

/* The one Python callback: PEM passwords, once per encrypted key at load
   time (mailgate/tls/_keys.py); its exceptions are stored and re-raised. */
extern "Python" int mg_password_callback(char *, int, int, void *);

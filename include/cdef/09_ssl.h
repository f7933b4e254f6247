/* SSL connections and sessions (openssl/ssl.h): what a handshake yields. */
typedef ... SSL;
typedef ... SSL_CIPHER;
typedef ... SSL_SESSION;

static const int SSL_ERROR_NONE;
static const int SSL_ERROR_SSL;
static const int SSL_ERROR_WANT_READ;
static const int SSL_ERROR_WANT_WRITE;
static const int SSL_ERROR_SYSCALL;
static const int SSL_ERROR_ZERO_RETURN;
static const int SSL_ERROR_WANT_CLIENT_HELLO_CB;
static const int TLSEXT_NAMETYPE_host_name;

const char *SSL_get_version(const SSL *);
const SSL_CIPHER *SSL_get_current_cipher(const SSL *);
const char *SSL_CIPHER_get_name(const SSL_CIPHER *);
X509 *SSL_get1_peer_certificate(const SSL *);
long SSL_get_verify_result(const SSL *);
const char *SSL_get_servername(const SSL *, const int);
void SSL_get0_alpn_selected(const SSL *, const unsigned char **, unsigned int *);
int SSL_session_reused(const SSL *);
SSL_SESSION *SSL_get0_session(const SSL *);
X509 *SSL_get_certificate(const SSL *);

/* client side: resuming a session with the same server */
SSL_SESSION *SSL_get1_session(SSL *);
int SSL_set_session(SSL *, SSL_SESSION *);
void SSL_SESSION_free(SSL_SESSION *);
int SSL_SESSION_is_resumable(const SSL_SESSION *);

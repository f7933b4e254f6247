/* SSL_CTX (openssl/ssl.h): what a server's context is built from. */
typedef ... SSL_METHOD;
typedef ... SSL_CTX;

static const uint64_t SSL_OP_NO_SSLv2;
static const uint64_t SSL_OP_NO_SSLv3;
static const uint64_t SSL_OP_NO_TLSv1;
static const uint64_t SSL_OP_NO_TLSv1_1;
static const uint64_t SSL_OP_NO_TLSv1_2;
static const uint64_t SSL_OP_NO_TLSv1_3;
static const uint64_t SSL_OP_NO_TICKET;
static const uint64_t SSL_OP_CIPHER_SERVER_PREFERENCE;
static const uint64_t SSL_OP_SINGLE_ECDH_USE;
static const uint64_t SSL_OP_IGNORE_UNEXPECTED_EOF;
static const long SSL_MODE_RELEASE_BUFFERS;
static const long SSL_MODE_NO_AUTO_CHAIN;
static const long SSL_SESS_CACHE_OFF;
static const long SSL_SESS_CACHE_SERVER;
static const long SSL_SESS_CACHE_NO_AUTO_CLEAR;
static const long SSL_SESS_CACHE_NO_INTERNAL_STORE;
static const long SSL_SESS_CACHE_NO_INTERNAL;
static const int SSL_VERIFY_PEER;
static const int TLS1_3_VERSION;

/* csrc/compat.h */
uint64_t mg_base_options(void);
int mg_compress_certs(SSL_CTX *);

const SSL_METHOD *TLS_method(void);
SSL_CTX *SSL_CTX_new(const SSL_METHOD *);
void SSL_CTX_free(SSL_CTX *);

uint64_t SSL_CTX_set_options(SSL_CTX *, uint64_t);
uint64_t SSL_CTX_clear_options(SSL_CTX *, uint64_t);
long SSL_CTX_set_mode(SSL_CTX *, long);
int SSL_CTX_set_min_proto_version(SSL_CTX *, int);
int SSL_CTX_set_max_proto_version(SSL_CTX *, int);
void SSL_CTX_set_read_ahead(SSL_CTX *, int);

int SSL_CTX_set_cipher_list(SSL_CTX *, const char *);

int SSL_CTX_use_certificate(SSL_CTX *, X509 *);
int SSL_CTX_clear_chain_certs(SSL_CTX *);
int SSL_CTX_add1_chain_cert(SSL_CTX *, X509 *);
int SSL_CTX_use_PrivateKey(SSL_CTX *, EVP_PKEY *);

void SSL_CTX_set_verify_depth(SSL_CTX *, int);
X509_STORE *SSL_CTX_get_cert_store(const SSL_CTX *);
int SSL_CTX_set_default_verify_paths(SSL_CTX *);
int SSL_CTX_add_client_CA(SSL_CTX *, X509 *);

long SSL_CTX_set_tmp_dh(SSL_CTX *, DH *);
int SSL_CTX_set1_curves_list(SSL_CTX *, char *);

long SSL_CTX_set_timeout(SSL_CTX *, long);
int SSL_CTX_set_session_id_context(SSL_CTX *, const unsigned char *, unsigned int);
long SSL_CTX_set_session_cache_mode(SSL_CTX *, long);
long SSL_CTX_sess_set_cache_size(SSL_CTX *, long);

/* ssl_conf_command through SSL_CONF_CTX (openssl/ssl.h). */
typedef ... SSL_CONF_CTX;

static const unsigned int SSL_CONF_FLAG_FILE;
static const unsigned int SSL_CONF_FLAG_SERVER;
static const unsigned int SSL_CONF_FLAG_CLIENT;
static const unsigned int SSL_CONF_FLAG_CERTIFICATE;
static const unsigned int SSL_CONF_FLAG_SHOW_ERRORS;
static const int SSL_CONF_TYPE_FILE;
static const int SSL_CONF_TYPE_DIR;

SSL_CONF_CTX *SSL_CONF_CTX_new(void);
void SSL_CONF_CTX_free(SSL_CONF_CTX *);
unsigned int SSL_CONF_CTX_set_flags(SSL_CONF_CTX *, unsigned int);
void SSL_CONF_CTX_set_ssl_ctx(SSL_CONF_CTX *, SSL_CTX *);
int SSL_CONF_cmd_value_type(SSL_CONF_CTX *, const char *);
int SSL_CONF_cmd(SSL_CONF_CTX *, const char *, const char *);
int SSL_CONF_CTX_finish(SSL_CONF_CTX *);

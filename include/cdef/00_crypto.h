/* Library identification (openssl/crypto.h, openssl/opensslv.h). */
static const int OPENSSL_VERSION;
const char *OpenSSL_version(int);
unsigned long OpenSSL_version_num(void);

/* mailgate's own record of the headers it was compiled against (csrc/version.c). */
extern const char *const MAILGATE_OPENSSL_BUILT_TEXT;
extern const long MAILGATE_OPENSSL_BUILT_NUMBER;

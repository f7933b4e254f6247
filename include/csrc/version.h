#ifndef MAILGATE_VERSION_H
#define MAILGATE_VERSION_H

/* The OpenSSL release whose headers this module was compiled against. */
extern const char *const MAILGATE_OPENSSL_BUILT_TEXT;
extern const long MAILGATE_OPENSSL_BUILT_NUMBER;

#endif

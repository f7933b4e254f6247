#include <openssl/opensslv.h>

#include "version.h"

const char *const MAILGATE_OPENSSL_BUILT_TEXT = OPENSSL_VERSION_TEXT;
const long MAILGATE_OPENSSL_BUILT_NUMBER = OPENSSL_VERSION_NUMBER;

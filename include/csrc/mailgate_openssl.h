/*
 * Everything the cffi module's generated C includes: the OpenSSL headers and the
 * declarations of mailgate's own C helpers in this directory.
 */
#ifndef MAILGATE_OPENSSL_H
#define MAILGATE_OPENSSL_H

#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/dh.h>
#include <openssl/store.h>
#include <openssl/ui.h>

#include "version.h"
#include "compat.h"
#include "zone.h"
#include "tls.h"

#endif

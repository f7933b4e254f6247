/* Certificates, names, CRLs and the verification store (openssl/x509.h). */
typedef ... X509;
typedef ... X509_NAME;
typedef ... X509_CRL;
typedef ... X509_STORE;
typedef ... ASN1_INTEGER;

static const unsigned long XN_FLAG_RFC2253;
static const unsigned long X509_V_FLAG_CRL_CHECK;
static const unsigned long X509_V_FLAG_CRL_CHECK_ALL;

static const int X509_V_OK;
static const int X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
static const int X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
static const int X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
static const int X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
static const int X509_V_ERR_CERT_UNTRUSTED;
static const int X509_V_ERR_HOSTNAME_MISMATCH;

static const int NID_commonName;

void X509_free(X509 *);
int X509_get_signature_nid(const X509 *);
EVP_PKEY *X509_get0_pubkey(const X509 *);
const char *OBJ_nid2sn(int);
int X509_NAME_get_text_by_NID(X509_NAME *, int, char *, int);
X509_NAME *X509_get_subject_name(const X509 *);
X509_NAME *X509_get_issuer_name(const X509 *);
ASN1_INTEGER *X509_get_serialNumber(X509 *);
int X509_digest(const X509 *, const EVP_MD *, unsigned char *, unsigned int *);
const char *X509_verify_cert_error_string(long);

int X509_NAME_print_ex(BIO *, const X509_NAME *, int, unsigned long);
int X509_NAME_digest(const X509_NAME *, const EVP_MD *, unsigned char *, unsigned int *);
int X509_NAME_cmp(const X509_NAME *, const X509_NAME *);
int i2a_ASN1_INTEGER(BIO *, const ASN1_INTEGER *);

void X509_CRL_free(X509_CRL *);

int X509_STORE_add_cert(X509_STORE *, X509 *);
int X509_STORE_add_crl(X509_STORE *, X509_CRL *);
int X509_STORE_set_flags(X509_STORE *, unsigned long);

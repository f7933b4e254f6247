/* Keys and digests (openssl/evp.h). */
typedef ... EVP_PKEY;
typedef ... EVP_MD;
typedef ... EVP_MD_CTX;

static const int EVP_MAX_MD_SIZE;

void EVP_PKEY_free(EVP_PKEY *);
const char *EVP_PKEY_get0_type_name(const EVP_PKEY *);
int EVP_PKEY_get_bits(const EVP_PKEY *);

const EVP_MD *EVP_sha1(void);
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *);
int EVP_DigestInit_ex(EVP_MD_CTX *, const EVP_MD *, void *);
int EVP_DigestUpdate(EVP_MD_CTX *, const void *, size_t);
int EVP_DigestFinal_ex(EVP_MD_CTX *, unsigned char *, unsigned int *);

/* PEM input and output (openssl/pem.h, openssl/dh.h). */
typedef int pem_password_cb(char *, int, int, void *);
typedef ... DH;

X509 *PEM_read_bio_X509_AUX(BIO *, X509 **, pem_password_cb *, void *);
X509 *PEM_read_bio_X509(BIO *, X509 **, pem_password_cb *, void *);
X509_CRL *PEM_read_bio_X509_CRL(BIO *, X509_CRL **, pem_password_cb *, void *);
EVP_PKEY *PEM_read_bio_PrivateKey(BIO *, EVP_PKEY **, pem_password_cb *, void *);
DH *PEM_read_bio_DHparams(BIO *, DH **, pem_password_cb *, void *);
void DH_free(DH *);
int PEM_write_bio_X509(BIO *, X509 *);

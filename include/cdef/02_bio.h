/* BIOs (openssl/bio.h): files, memory buffers for data: values and text. */
typedef ... BIO;
typedef ... BIO_METHOD;

const BIO_METHOD *BIO_s_mem(void);
BIO *BIO_new(const BIO_METHOD *);
BIO *BIO_new_mem_buf(const void *, int);
BIO *BIO_new_file(const char *, const char *);
int BIO_free(BIO *);
int BIO_read(BIO *, void *, int);
int BIO_reset(BIO *);
size_t BIO_ctrl_pending(BIO *);

/* store:URI keys through OSSL_STORE (openssl/store.h, openssl/ui.h). */
typedef ... OSSL_STORE_CTX;
typedef ... OSSL_STORE_INFO;
typedef ... UI_METHOD;
typedef OSSL_STORE_INFO *(*OSSL_STORE_post_process_info_fn)(OSSL_STORE_INFO *, void *);

static const int OSSL_STORE_INFO_PKEY;

OSSL_STORE_CTX *OSSL_STORE_open(const char *, const UI_METHOD *, void *,
                                OSSL_STORE_post_process_info_fn, void *);
OSSL_STORE_INFO *OSSL_STORE_load(OSSL_STORE_CTX *);
int OSSL_STORE_eof(OSSL_STORE_CTX *);
int OSSL_STORE_error(OSSL_STORE_CTX *);
int OSSL_STORE_close(OSSL_STORE_CTX *);
int OSSL_STORE_INFO_get_type(const OSSL_STORE_INFO *);
EVP_PKEY *OSSL_STORE_INFO_get1_PKEY(const OSSL_STORE_INFO *);
void OSSL_STORE_INFO_free(OSSL_STORE_INFO *);

UI_METHOD *UI_UTIL_wrap_read_pem_callback(pem_password_cb *, int);
void UI_destroy_method(UI_METHOD *);

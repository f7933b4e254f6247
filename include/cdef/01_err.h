/* The error queue (openssl/err.h): nginx's "(SSL: error:...)" texts. */
static const int ERR_TXT_STRING;
static const int ERR_LIB_PEM;
static const int PEM_R_NO_START_LINE;

unsigned long ERR_get_error(void);
unsigned long ERR_peek_error(void);
unsigned long ERR_peek_last_error(void);
unsigned long ERR_peek_error_data(const char **, int *);
void ERR_clear_error(void);
void ERR_error_string_n(unsigned long, char *, size_t);
int ERR_GET_LIB(unsigned long);
int ERR_GET_REASON(unsigned long);

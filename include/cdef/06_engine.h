/* engine:NAME:ID keys through the ENGINE API (csrc/compat.c wraps it so that
   a library built without engines still links). */
static const int MG_HAVE_ENGINE;

void *mg_engine_by_id(const char *);
EVP_PKEY *mg_engine_load_private_key(void *, const char *);
void mg_engine_free(void *);

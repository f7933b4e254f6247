/*
 * A shared-memory TLS session store: one anonymous MAP_SHARED mapping per
 * `ssl_session_cache shared:NAME:SIZE` zone, created in the master before the
 * workers fork, locked by a robust process-shared mutex.
 *
 * Entries are keyed by session ID (at most 32 bytes) and hold the session's
 * DER encoding with an absolute expiry time.  The newest entry is at the head
 * of the expiry queue; inserting first drops expired entries from the tail
 * and, when memory is short, the oldest entry, the way nginx's
 * ngx_ssl_new_session() does.  The zone also keeps the three automatic ticket
 * keys (current, previous, next) that nginx 1.23.2+ rotates through it.
 */
#ifndef MAILGATE_ZONE_H
#define MAILGATE_ZONE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MG_SESSION_ID_MAX   32
#define MG_SESSION_DER_MAX  4096   /* NGX_SSL_MAX_SESSION_SIZE */
#define MG_ZONE_NAME_MAX    255

typedef struct mg_zone mg_zone;

/* One ticket key in nginx's layout: 16-byte name, HMAC and AES keys. */
typedef struct {
    unsigned char  name[16];
    unsigned char  hmac_key[32];
    unsigned char  aes_key[32];
    int            size;       /* 48 (AES-128, 16-byte HMAC key) or 80 */
    int            shared;     /* lives in a zone and rotates */
    int64_t        expire;     /* 0: never initialised; files use 1 */
} mg_ticket_key;

typedef struct {
    uint64_t  size;            /* bytes mapped */
    uint32_t  capacity;        /* entries that fit when every DER fits a chunk */
    uint32_t  count;           /* entries stored now */
    uint32_t  chunk_size;      /* DER bytes per chunk */
    uint64_t  stored;
    uint64_t  hits;
    uint64_t  misses;
    uint64_t  expired;         /* dropped because their time was up */
    uint64_t  evicted;         /* dropped while still valid, to make room */
    uint64_t  failed;          /* could not be stored */
} mg_zone_stats;

/* Store results. */
#define MG_ZONE_STORED        1
#define MG_ZONE_FAILED        0   /* no room even after evicting the oldest */
#define MG_ZONE_FAILED_WARN  -1   /* the same, and this is the first failure this second */
#define MG_ZONE_REJECTED     -2   /* ID or DER too long: never cached */

/* NULL with errno set when the mapping or the lock cannot be created. */
mg_zone *mg_zone_create(const char *name, size_t size);
void mg_zone_retain(mg_zone *zone);
void mg_zone_release(mg_zone *zone);

int mg_zone_put(mg_zone *zone, const unsigned char *id, size_t id_len,
    const unsigned char *der, size_t der_len, int64_t expire, int64_t now);
/* The DER length copied to out (at most cap), 0 on a miss or expired entry. */
size_t mg_zone_get(mg_zone *zone, const unsigned char *id, size_t id_len,
    unsigned char *out, size_t cap, int64_t now);
int mg_zone_remove(mg_zone *zone, const unsigned char *id, size_t id_len);
void mg_zone_get_stats(mg_zone *zone, mg_zone_stats *stats);

/*
 * Ticket key rotation (ngx_ssl_rotate_ticket_keys): under the zone lock,
 * initialise the current key on first use, rotate when the previous key has
 * expired, extend the current key's expiry to `expire`, and copy the current
 * and previous keys into out[0] and out[1].  0 when no random bytes could be
 * had.
 */
int mg_zone_sync_ticket_keys(mg_zone *zone, int64_t now, int64_t expire,
    mg_ticket_key out[2]);

#endif

/*
 * The shared-memory session store (see zone.h).
 *
 * Layout of the mapping: a header, then `n` hash buckets, `n` entry nodes and
 * `n` data chunks.  A node holds the session ID, the expiry and the links;
 * the DER lives in a list of fixed-size chunks, so a typical session (under
 * MG_CHUNK_DATA bytes) costs one node and one chunk, about 256 bytes: 4096
 * sessions per MiB, nginx's documented estimate.  Indexes instead of
 * pointers keep the mapping position-independent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "zone.h"

#define MG_ZONE_MAGIC  0x315a474dU     /* "MGZ1" */
#define MG_CHUNK_DATA  176
#define NIL            (-1)

typedef struct {
    int32_t   hnext;                   /* next node in the same bucket */
    int32_t   newer;                   /* expiry queue links */
    int32_t   older;
    uint32_t  hash;
    uint32_t  der_len;
    int32_t   chunk;                   /* first DER chunk */
    int64_t   expire;
    uint8_t   id_len;
    uint8_t   id[MG_SESSION_ID_MAX];
} mg_node;

typedef struct {
    int32_t   next;
    uint8_t   data[MG_CHUNK_DATA];
} mg_chunk;

typedef struct {
    uint32_t         magic;
    pthread_mutex_t  mutex;
    char             name[MG_ZONE_NAME_MAX + 1];
    uint64_t         size;
    uint32_t         n;                /* buckets, nodes and chunks each */
    int32_t          free_node;
    int32_t          free_chunk;
    uint32_t         free_chunks;
    int32_t          newest;
    int32_t          oldest;
    uint32_t         count;
    int64_t          fail_time;
    mg_ticket_key    keys[3];          /* current, previous, next */
    uint64_t         stored, hits, misses, expired, evicted, failed;
} mg_header;

struct mg_zone {                       /* process-local handle */
    mg_header  *hdr;
    size_t      size;
    int         refs;
    int32_t    *buckets;
    mg_node    *nodes;
    mg_chunk   *chunks;
};

#define ALIGN_UP(x, a)  (((x) + (a) - 1) & ~((size_t) (a) - 1))


static uint32_t
id_hash(const unsigned char *id, size_t len)
{
    uint32_t  h = 2166136261U;         /* FNV-1a */
    size_t    i;

    for (i = 0; i < len; i++) {
        h = (h ^ id[i]) * 16777619U;
    }
    return h;
}


/* Empty index: every node and chunk free.  Ticket keys are left alone. */
static void
zone_clear(mg_zone *z)
{
    mg_header  *h = z->hdr;
    uint32_t    i;

    for (i = 0; i < h->n; i++) {
        z->buckets[i] = NIL;
        z->nodes[i].hnext = (i + 1 < h->n) ? (int32_t) (i + 1) : NIL;
        z->chunks[i].next = (i + 1 < h->n) ? (int32_t) (i + 1) : NIL;
    }
    h->free_node = h->n ? 0 : NIL;
    h->free_chunk = h->n ? 0 : NIL;
    h->free_chunks = h->n;
    h->newest = NIL;
    h->oldest = NIL;
    h->count = 0;
}


static int
zone_lock(mg_zone *z)
{
    int  rc = pthread_mutex_lock(&z->hdr->mutex);

    if (rc == EOWNERDEAD) {
        /* A process died inside the critical section: the index and the
           keys may be half written, so start again from empty. */
        zone_clear(z);
        memset(z->hdr->keys, 0, sizeof(z->hdr->keys));
        pthread_mutex_consistent(&z->hdr->mutex);
        rc = 0;
    }
    return rc;
}


static void
zone_unlock(mg_zone *z)
{
    pthread_mutex_unlock(&z->hdr->mutex);
}


mg_zone *
mg_zone_create(const char *name, size_t size)
{
    mg_zone              *z;
    mg_header            *h;
    void                 *addr;
    size_t                off, per;
    uint32_t              n;
    pthread_mutexattr_t   attr;

    off = ALIGN_UP(sizeof(mg_header), 64);
    per = sizeof(int32_t) + sizeof(mg_node) + sizeof(mg_chunk);
    if (size < off + per) {
        errno = EINVAL;
        return NULL;
    }
    n = (uint32_t) ((size - off) / per);

    z = calloc(1, sizeof(mg_zone));
    if (z == NULL) {
        return NULL;
    }

    addr = mmap(NULL, size, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (addr == MAP_FAILED) {
        free(z);
        return NULL;
    }

    h = addr;
    h->magic = MG_ZONE_MAGIC;
    h->size = size;
    h->n = n;
    strncpy(h->name, name, MG_ZONE_NAME_MAX);

    if (pthread_mutexattr_init(&attr) != 0
        || pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0
        || pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0
        || pthread_mutex_init(&h->mutex, &attr) != 0)
    {
        munmap(addr, size);
        free(z);
        errno = ENOLCK;
        return NULL;
    }
    pthread_mutexattr_destroy(&attr);

    z->hdr = h;
    z->size = size;
    z->refs = 1;
    z->buckets = (int32_t *) ((char *) addr + off);
    z->nodes = (mg_node *) ALIGN_UP((uintptr_t) (z->buckets + n), 8);
    z->chunks = (mg_chunk *) (z->nodes + n);

    zone_clear(z);
    return z;
}


void
mg_zone_retain(mg_zone *z)
{
    z->refs++;
}


void
mg_zone_release(mg_zone *z)
{
    if (--z->refs > 0) {
        return;
    }
    /* Only this process's mapping goes; other processes keep theirs. */
    munmap(z->hdr, z->size);
    free(z);
}


static int32_t
zone_find(mg_zone *z, const unsigned char *id, size_t len, uint32_t hash)
{
    int32_t  i = z->buckets[hash % z->hdr->n];

    while (i != NIL) {
        mg_node  *node = &z->nodes[i];

        if (node->hash == hash && node->id_len == len
            && memcmp(node->id, id, len) == 0)
        {
            return i;
        }
        i = node->hnext;
    }
    return NIL;
}


static void
zone_unlink(mg_zone *z, int32_t i)
{
    mg_header  *h = z->hdr;
    mg_node    *node = &z->nodes[i];
    int32_t    *link, c, next;

    for (link = &z->buckets[node->hash % h->n];
         *link != i;
         link = &z->nodes[*link].hnext)
    {
        /* the node is on this chain */
    }
    *link = node->hnext;

    if (node->newer != NIL) {
        z->nodes[node->newer].older = node->older;
    } else {
        h->newest = node->older;
    }
    if (node->older != NIL) {
        z->nodes[node->older].newer = node->newer;
    } else {
        h->oldest = node->newer;
    }

    for (c = node->chunk; c != NIL; c = next) {
        next = z->chunks[c].next;
        OPENSSL_cleanse(z->chunks[c].data, MG_CHUNK_DATA);
        z->chunks[c].next = h->free_chunk;
        h->free_chunk = c;
        h->free_chunks++;
    }

    OPENSSL_cleanse(node, sizeof(mg_node));
    node->hnext = h->free_node;
    h->free_node = i;
    h->count--;
}


/*
 * ngx_ssl_expire_sessions(): with n == 1 drop up to two expired entries from
 * the tail; with n == 0 drop the oldest entry whatever its expiry, then up to
 * two more expired ones.
 */
static void
zone_expire(mg_zone *z, int n, int64_t now)
{
    mg_header  *h = z->hdr;

    while (n < 3 && h->oldest != NIL) {
        mg_node  *node = &z->nodes[h->oldest];

        if (n++ != 0 && node->expire > now) {
            return;
        }
        if (node->expire > now) {
            h->evicted++;
        } else {
            h->expired++;
        }
        zone_unlink(z, h->oldest);
    }
}


static int
zone_has_room(mg_zone *z, uint32_t chunks)
{
    return z->hdr->free_node != NIL && z->hdr->free_chunks >= chunks;
}


int
mg_zone_put(mg_zone *z, const unsigned char *id, size_t id_len,
    const unsigned char *der, size_t der_len, int64_t expire, int64_t now)
{
    mg_header  *h = z->hdr;
    mg_node    *node;
    uint32_t    hash, need, k;
    int32_t     i, c, *tail;
    size_t      off, part;
    int         rc;

    if (id_len == 0 || id_len > MG_SESSION_ID_MAX || der_len == 0
        || der_len > MG_SESSION_DER_MAX)
    {
        return MG_ZONE_REJECTED;
    }

    hash = id_hash(id, id_len);
    need = (uint32_t) ((der_len + MG_CHUNK_DATA - 1) / MG_CHUNK_DATA);

    if (zone_lock(z) != 0) {
        return MG_ZONE_FAILED;
    }

    i = zone_find(z, id, id_len, hash);
    if (i != NIL) {
        zone_unlink(z, i);
    }

    zone_expire(z, 1, now);

    if (!zone_has_room(z, need)) {
        zone_expire(z, 0, now);

        if (!zone_has_room(z, need)) {
            h->failed++;
            rc = MG_ZONE_FAILED;
            if (h->fail_time != now) {
                h->fail_time = now;
                rc = MG_ZONE_FAILED_WARN;
            }
            zone_unlock(z);
            return rc;
        }
    }

    i = h->free_node;
    node = &z->nodes[i];
    h->free_node = node->hnext;

    node->hash = hash;
    node->id_len = (uint8_t) id_len;
    memcpy(node->id, id, id_len);
    node->der_len = (uint32_t) der_len;
    node->expire = expire;

    tail = &node->chunk;
    for (k = 0, off = 0; k < need; k++, off += part) {
        c = h->free_chunk;
        h->free_chunk = z->chunks[c].next;
        h->free_chunks--;
        part = der_len - off < MG_CHUNK_DATA ? der_len - off : MG_CHUNK_DATA;
        memcpy(z->chunks[c].data, der + off, part);
        *tail = c;
        tail = &z->chunks[c].next;
    }
    *tail = NIL;

    node->hnext = z->buckets[hash % h->n];
    z->buckets[hash % h->n] = i;

    node->newer = NIL;
    node->older = h->newest;
    if (h->newest != NIL) {
        z->nodes[h->newest].newer = i;
    } else {
        h->oldest = i;
    }
    h->newest = i;

    h->count++;
    h->stored++;
    zone_unlock(z);
    return MG_ZONE_STORED;
}


size_t
mg_zone_get(mg_zone *z, const unsigned char *id, size_t id_len,
    unsigned char *out, size_t cap, int64_t now)
{
    mg_node  *node;
    int32_t   i, c;
    size_t    len, off, part;

    if (id_len == 0 || id_len > MG_SESSION_ID_MAX || zone_lock(z) != 0) {
        return 0;
    }

    i = zone_find(z, id, id_len, id_hash(id, id_len));
    if (i == NIL) {
        z->hdr->misses++;
        zone_unlock(z);
        return 0;
    }

    node = &z->nodes[i];
    if (node->expire <= now) {
        z->hdr->expired++;
        z->hdr->misses++;
        zone_unlink(z, i);
        zone_unlock(z);
        return 0;
    }

    len = node->der_len < cap ? node->der_len : cap;
    for (c = node->chunk, off = 0; c != NIL && off < len; c = z->chunks[c].next) {
        part = len - off < MG_CHUNK_DATA ? len - off : MG_CHUNK_DATA;
        memcpy(out + off, z->chunks[c].data, part);
        off += part;
    }

    z->hdr->hits++;
    zone_unlock(z);
    return len;
}


int
mg_zone_remove(mg_zone *z, const unsigned char *id, size_t id_len)
{
    int32_t  i;

    if (id_len == 0 || id_len > MG_SESSION_ID_MAX || zone_lock(z) != 0) {
        return 0;
    }

    i = zone_find(z, id, id_len, id_hash(id, id_len));
    if (i != NIL) {
        zone_unlink(z, i);
    }

    zone_unlock(z);
    return i != NIL;
}


void
mg_zone_get_stats(mg_zone *z, mg_zone_stats *s)
{
    mg_header  *h = z->hdr;

    memset(s, 0, sizeof(*s));
    s->size = h->size;
    s->capacity = h->n;
    s->chunk_size = MG_CHUNK_DATA;

    if (zone_lock(z) != 0) {
        return;
    }
    s->count = h->count;
    s->stored = h->stored;
    s->hits = h->hits;
    s->misses = h->misses;
    s->expired = h->expired;
    s->evicted = h->evicted;
    s->failed = h->failed;
    zone_unlock(z);
}


static int
random_key(mg_ticket_key *key)
{
    unsigned char  buf[80];

    if (RAND_bytes(buf, sizeof(buf)) != 1) {
        return 0;
    }
    key->shared = 1;
    key->size = 80;
    memcpy(key->name, buf, 16);
    memcpy(key->hmac_key, buf + 16, 32);
    memcpy(key->aes_key, buf + 48, 32);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 1;
}


int
mg_zone_sync_ticket_keys(mg_zone *z, int64_t now, int64_t expire,
    mg_ticket_key out[2])
{
    mg_ticket_key  *key = z->hdr->keys;

    if (zone_lock(z) != 0) {
        return 0;
    }

    if (key[0].expire == 0) {
        if (!random_key(&key[0])) {
            zone_unlock(z);
            return 0;
        }
        key[0].expire = expire;
        /* rotation below moves "next" into "current": start them equal */
        key[2] = key[0];
    }

    if (key[1].expire < now) {
        key[1] = key[0];
        key[0] = key[2];
        if (!random_key(&key[2])) {
            zone_unlock(z);
            return 0;
        }
        key[2].expire = 0;
    }

    if (expire > key[0].expire) {
        key[0].expire = expire;
    }

    memcpy(out, key, 2 * sizeof(mg_ticket_key));
    zone_unlock(z);
    return 1;
}

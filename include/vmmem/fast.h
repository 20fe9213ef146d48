/*
 * libvmmem - header-inline fast paths for the hottest accesses.
 *
 * vmmem_fast_find, vmmem_fast_read_obj, vmmem_fast_write_obj,
 * vmmem_fast_load_u32 and vmmem_fast_store_u32 have exactly the contracts of
 * the functions they are named after (map.h), but the common case - the access lies inside one ordinary
 * (host-mapped) region, and dirty tracking is off for it - is compiled into
 * the caller: a bisection over the map's lookup table and one load or
 * store, with no call at all.  Every other case calls the exported function.
 *
 * To allow this the first fields of a map and its lookup entries below are
 * part of libvmmem's ABI (they change only with the SONAME).  They are for
 * these functions only: never read or write them yourself.
 */
#ifndef VMMEM_FAST_H
#define VMMEM_FAST_H

#include <string.h>

#include "map.h"

VMMEM_BEGIN_DECLS

struct vmmem__fast_slot {
    uint64_t start;
    uint64_t last;
    uint8_t *host; /* NULL: map-on-access */
    const void *region;
    int prot;
    void *dirty;   /* non-NULL while this map tracks dirty pages */
    uint32_t fast; /* VMMEM__FASTBIT_*: what the inline paths may do here (read atomically) */
    uint32_t pad32_;
    uint64_t pad_;
};

/* Set only when host - start is a multiple of 8, so an aligned guest address
 * is an aligned host address. */
#define VMMEM__FASTBIT_R 1u /* host-mapped and readable */
#define VMMEM__FASTBIT_W 2u /* host-mapped, writable and not dirty-tracked */
#define VMMEM__FASTBIT_D 4u /* host-mapped, writable, dirty-tracked in `dirty` */

/* The head of a dirty bitmap, for marking one word inline. */
struct vmmem__fast_bitmap {
    uint64_t bytes;
    uint64_t pages;
    unsigned page_shift;
    bool enabled;
    uint64_t gpa;
    void *log; /* an attached vhost-user log: marking goes through the library */
    size_t nwords;
    uint64_t words[];
};

struct vmmem__fast_head {
    long refs;
    size_t n;
    const struct vmmem__fast_slot *slots;
};

#if defined(__GNUC__) && !defined(VMMEM_NO_FAST_PATH)
#define VMMEM__FAST 1
#define VMMEM__ALWAYS_INLINE inline __attribute__((always_inline))
#define VMMEM__LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define VMMEM__FAST 0
#define VMMEM__ALWAYS_INLINE inline
#endif

/*
 * One 8-byte access to guest memory that is never split: a volatile access
 * on 64-bit hosts; on 32-bit hosts (where a volatile uint64_t is two 32-bit
 * moves) a relaxed 64-bit atomic, which the compiler emits as one access.
 */
#if UINTPTR_MAX > 0xffffffffu || !defined(__GNUC__)
#define VMMEM__LD64(p) (*(const volatile uint64_t *)(const void *)(p))
#define VMMEM__ST64(p, v) (*(volatile uint64_t *)(void *)(p) = (v))
#else
#define VMMEM__LD64(p) __atomic_load_n((const uint64_t *)(const void *)(p), __ATOMIC_RELAXED)
#define VMMEM__ST64(p, v) __atomic_store_n((uint64_t *)(void *)(p), (v), __ATOMIC_RELAXED)
#endif

#if VMMEM__FAST
/* The ordinary slot holding [addr, addr+len), usable for this access, or NULL. */
static VMMEM__ALWAYS_INLINE const struct vmmem__fast_slot *
vmmem__fast_slot_for(const vmmem_map *m, vmmem_gaddr_t addr, size_t len, uint32_t need)
{
    const struct vmmem__fast_head *h = (const struct vmmem__fast_head *)(const void *)m;
    const struct vmmem__fast_slot *s = h->slots;
    size_t n = h->n;
    if (n == 0 || addr < s->start)
        return NULL;
    while (n > 1) { /* branch-free bisection: the last slot whose start <= addr */
        size_t half = n / 2;
        s = (s[half].start <= addr) ? s + half : s;
        n -= half;
    }
    if (VMMEM__LIKELY(addr <= s->last && (uint64_t)len - 1 <= s->last - addr &&
                      (__atomic_load_n(&s->fast, __ATOMIC_RELAXED) & need) == need))
        return s;
    return NULL;
}
#endif

/* vmmem_map_find without the call (NULL for a hole; *offset as there). */
static inline const vmmem_region *vmmem_fast_find(const vmmem_map *m, vmmem_gaddr_t addr,
                                                  uint64_t *offset)
{
#if VMMEM__FAST
    if (m == NULL)
        return NULL;
    const struct vmmem__fast_head *h = (const struct vmmem__fast_head *)(const void *)m;
    const struct vmmem__fast_slot *s = h->slots;
    size_t n = h->n;
    if (n == 0 || addr < s->start)
        return NULL;
    while (n > 1) {
        size_t half = n / 2;
        s = (s[half].start <= addr) ? s + half : s;
        n -= half;
    }
    if (addr > s->last)
        return NULL;
    if (offset != NULL)
        *offset = addr - s->start;
    return (const vmmem_region *)s->region;
#else
    return vmmem_map_find(m, addr, offset);
#endif
}

#if VMMEM__FAST
/* A tracked (or otherwise unusual) 8-byte write: out of line, so the common
 * untracked path above stays small.  Marks one bitmap word inline when it
 * can: the data, then its page's bit with a release RMW (a harvest that
 * sees the bit sees the data); anything else goes through the library. */
static __attribute__((noinline, unused)) int
vmmem__fast_write_tracked(const vmmem_map *m, const struct vmmem__fast_slot *s, vmmem_gaddr_t addr,
                          const void *obj)
{
    uint64_t off = addr - s->start, t;
    const struct vmmem__fast_bitmap *b =
        (const struct vmmem__fast_bitmap *)__atomic_load_n(&s->dirty, __ATOMIC_ACQUIRE);
    if ((__atomic_load_n(&s->fast, __ATOMIC_ACQUIRE) & VMMEM__FASTBIT_D) && b != NULL &&
        off < b->bytes && 8 <= b->bytes - off && __atomic_load_n(&b->log, __ATOMIC_RELAXED) == NULL) {
        uint64_t p0 = off >> b->page_shift, p1 = (off + 7) >> b->page_shift;
        if ((p0 >> 6) == (p1 >> 6)) {
            memcpy(&t, obj, 8);
            VMMEM__ST64(s->host + off, t);
            uint64_t mask = (~0ull >> (63 - (p1 & 63))) & (~0ull << (p0 & 63));
            __atomic_fetch_or((uint64_t *)&b->words[p0 >> 6], mask, __ATOMIC_RELEASE);
            return 0;
        }
    }
    return vmmem_write_obj(m, addr, obj, 8);
}
#endif

static inline int vmmem_fast_write_obj(const vmmem_map *m, vmmem_gaddr_t addr, const void *obj,
                                       size_t size)
{
#if VMMEM__FAST
    const struct vmmem__fast_slot *s;
    if (m != NULL && obj != NULL && size == 8 && (addr & 7) == 0 &&
        (s = vmmem__fast_slot_for(m, addr, 8, 0)) != NULL) {
        if (VMMEM__LIKELY(__atomic_load_n(&s->fast, __ATOMIC_RELAXED) & VMMEM__FASTBIT_W)) {
            uint64_t t; /* one aligned access: never torn */
            memcpy(&t, obj, 8);
            VMMEM__ST64(s->host + (addr - s->start), t);
            return 0;
        }
        return vmmem__fast_write_tracked(m, s, addr, obj);
    }
#endif
    return vmmem_write_obj(m, addr, obj, size);
}

static inline int vmmem_fast_read_obj(const vmmem_map *m, vmmem_gaddr_t addr, void *obj,
                                      size_t size)
{
#if VMMEM__FAST
    const struct vmmem__fast_slot *s;
    if (m != NULL && obj != NULL && size == 8 && (addr & 7) == 0 &&
        (s = vmmem__fast_slot_for(m, addr, 8, VMMEM__FASTBIT_R)) != NULL) {
        uint64_t t = VMMEM__LD64(s->host + (addr - s->start));
        memcpy(obj, &t, 8);
        return 0;
    }
#endif
    return vmmem_read_obj(m, addr, obj, size);
}

/* vmmem_store / vmmem_load for 4-byte values with a constant order. */
static inline int vmmem_fast_store_u32(const vmmem_map *m, vmmem_gaddr_t addr, uint32_t v,
                                       vmmem_order order)
{
#if VMMEM__FAST
    const struct vmmem__fast_slot *s;
    if (m != NULL && (addr & 3) == 0 &&
        (order == VMMEM_RELAXED || order == VMMEM_RELEASE || order == VMMEM_SEQ_CST) &&
        (s = vmmem__fast_slot_for(m, addr, 4, VMMEM__FASTBIT_W)) != NULL) {
        uint32_t *p = (uint32_t *)(void *)(s->host + (addr - s->start));
        if (order == VMMEM_RELAXED)
            __atomic_store_n(p, v, __ATOMIC_RELAXED);
        else if (order == VMMEM_RELEASE)
            __atomic_store_n(p, v, __ATOMIC_RELEASE);
        else
            __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
        return 0;
    }
#endif
    return vmmem_store(m, addr, 4, v, order);
}

static inline int vmmem_fast_load_u32(const vmmem_map *m, vmmem_gaddr_t addr, uint32_t *v,
                                      vmmem_order order)
{
#if VMMEM__FAST
    const struct vmmem__fast_slot *s;
    if (m != NULL && v != NULL && (addr & 3) == 0 &&
        (order == VMMEM_RELAXED || order == VMMEM_ACQUIRE || order == VMMEM_SEQ_CST) &&
        (s = vmmem__fast_slot_for(m, addr, 4, VMMEM__FASTBIT_R)) != NULL) {
        const uint32_t *p = (const uint32_t *)(const void *)(s->host + (addr - s->start));
        if (order == VMMEM_RELAXED)
            *v = __atomic_load_n(p, __ATOMIC_RELAXED);
        else if (order == VMMEM_ACQUIRE)
            *v = __atomic_load_n(p, __ATOMIC_ACQUIRE);
        else
            *v = __atomic_load_n(p, __ATOMIC_SEQ_CST);
        return 0;
    }
#endif
    uint64_t w = 0;
    int rc = vmmem_load(m, addr, 4, &w, order);
    if (rc == 0 && v != NULL)
        *v = (uint32_t)w;
    return rc;
}

VMMEM_END_DECLS

#endif

/*
 * libvmmem - header-inline fast paths for the hottest accesses.
 *
 * vmmem_fast_find, vmmem_fast_read_obj, vmmem_fast_write_obj,
 * vmmem_fast_load_u32, vmmem_fast_store_u32, vmmem_fast_read_slice and
 * vmmem_fast_write_slice have exactly the contracts of the functions they
 * are named after (map.h), but the common case - the access lies inside one
 * ordinary (host-mapped) region, or a slice copy spans two touching ones -
 * is compiled into the caller: one load from the map's direct index (a
 * bisection where two regions share a bucket of the index), one compare of
 * the offset that covers the region's ends, protection and alignment, and
 * the load, store or copy, with no call at all.  Writes then test the
 * region's dirty-tracking switch (after the store, as dirty.h requires) and
 * mark through the library only while it is on.  Every other case calls
 * the exported function.  About 28 instructions per 8-byte write where a
 * raw pointer with a two-entry region table takes 14, at the same speed:
 * BENCHMARKS.md.
 *
 * To allow this the first fields of a map and its lookup entries below are
 * part of libvmmem's ABI (they change only with the SONAME).  They are for
 * these functions only: never read or write them yourself.
 */
#ifndef VMMEM_FAST_H
#define VMMEM_FAST_H

#include <string.h>

#include "dirty.h"
#include "map.h"

VMMEM_BEGIN_DECLS

struct vmmem__fast_slot {
    uint64_t start;
    uint64_t last;
    uint8_t *host; /* NULL: map-on-access */
    /* An access of 1 to 8 bytes aligned to its size, at an offset from
     * start below rlen (reads) or wlen (writes), may be made directly: one
     * compare of the offset covers both ends of the region, its mapping,
     * its protection and the host alignment (0 when any of them fails). */
    uint64_t rlen;
    uint64_t wlen;
    const void *region;
    void *dirty;   /* the region's dirty state (struct vmmem__fast_bitmap) */
    int prot;
    uint32_t fast; /* VMMEM__FASTBIT_*: what the inline paths may do here (read atomically) */
};

/* Set only when host - start is a multiple of 8, so an aligned guest address
 * is an aligned host address. */
#define VMMEM__FASTBIT_R 1u /* host-mapped and readable */
#define VMMEM__FASTBIT_W 2u /* host-mapped and writable */
#define VMMEM__FASTBIT_T 4u /* the region's dirty tracking is on: mark after a store */
#define VMMEM__FASTBIT_NEXT 8u /* the next slot starts right after this one (a seam) */

/* The head of a dirty bitmap: its switch, for the test after a store. */
struct vmmem__fast_bitmap {
    uint64_t bytes;
    uint64_t pages;
    unsigned page_shift;
    bool enabled; /* the region's tracking switch (read atomically) */
    uint64_t gpa;
    void *log;
    size_t nwords;
    uint64_t *words;
};

struct vmmem__fast_head {
    long refs;
    size_t n;
    const struct vmmem__fast_slot *slots;
    /* Direct index: for addr >> dir_shift below dir_n, dir[] of it is the
     * only slot meeting that bucket of addresses, or NULL (then bisect). */
    const struct vmmem__fast_slot *const *dir;
    uint64_t dir_n;
    unsigned dir_shift;
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
/* The slot that may hold addr: the direct index's, else (a bucket meeting
 * no slot or several) the last slot whose start <= addr by a branch-free
 * bisection, or the first; NULL for an empty map.  The caller tests
 * addr against it. */
static VMMEM__ALWAYS_INLINE const struct vmmem__fast_slot *
vmmem__fast_near(const vmmem_map *m, vmmem_gaddr_t addr)
{
    const struct vmmem__fast_head *h = (const struct vmmem__fast_head *)(const void *)m;
    const struct vmmem__fast_slot *s = NULL;
    uint64_t b = addr >> h->dir_shift;
    if (VMMEM__LIKELY(b < h->dir_n))
        s = h->dir[b];
    if (VMMEM__LIKELY(s != NULL))
        return s;
    s = h->slots;
    size_t n = h->n;
    if (n == 0)
        return NULL;
    while (n > 1) {
        size_t half = n / 2;
        s = (s[half].start <= addr) ? s + half : s;
        n -= half;
    }
    return s;
}

/* The slot holding addr, or NULL. */
static VMMEM__ALWAYS_INLINE const struct vmmem__fast_slot *
vmmem__fast_lookup(const vmmem_map *m, vmmem_gaddr_t addr)
{
    const struct vmmem__fast_slot *s = vmmem__fast_near(m, addr);
    return s != NULL && addr >= s->start && addr <= s->last ? s : NULL;
}

/*
 * Whether an access of 1 to 8 bytes at addr, aligned to its size (the
 * caller tests that), may be made directly: a read (write false) or a
 * write.  Then *host is where and *slot the slot.  No test of its own
 * against the first slot's start: below it the offset wraps around and
 * fails the one compare with rlen/wlen, as an address past the region's
 * end or in a region that does not allow the access does.
 */
static VMMEM__ALWAYS_INLINE bool vmmem__fast_small(const vmmem_map *m, vmmem_gaddr_t addr,
                                                   bool write, uint8_t **host,
                                                   const struct vmmem__fast_slot **slot)
{
    const struct vmmem__fast_slot *s = vmmem__fast_near(m, addr);
    if (s == NULL)
        return false;
    uint64_t off = addr - s->start;
    if (VMMEM__LIKELY(off < (write ? s->wlen : s->rlen))) {
        *slot = s;
        *host = s->host + off;
        return true;
    }
    return false;
}

/* The calls behind the inline 8-byte paths, out of line and taking the
 * value itself: a caller's object whose address reaches no call stays in
 * a register on the common path (GCC does not sink its store into the
 * rare branch). */
static __attribute__((noinline, cold, unused)) int
vmmem__fast_write8_call(const vmmem_map *m, vmmem_gaddr_t addr, uint64_t v)
{
    return vmmem_write_obj(m, addr, &v, 8);
}

struct vmmem__fast_r8 {
    uint64_t v;
    int rc;
};

static __attribute__((noinline, cold, unused)) struct vmmem__fast_r8
vmmem__fast_read8_call(const vmmem_map *m, vmmem_gaddr_t addr)
{
    struct vmmem__fast_r8 r = {0, 0};
    r.rc = vmmem_read_obj(m, addr, &r.v, 8);
    return r;
}
#endif

/* vmmem_map_find without the call (NULL for a hole; *offset as there). */
static inline const vmmem_region *vmmem_fast_find(const vmmem_map *m, vmmem_gaddr_t addr,
                                                  uint64_t *offset)
{
#if VMMEM__FAST
    const struct vmmem__fast_slot *s = m != NULL ? vmmem__fast_lookup(m, addr) : NULL;
    if (s == NULL)
        return NULL;
    if (offset != NULL)
        *offset = addr - s->start;
    return (const vmmem_region *)s->region;
#else
    return vmmem_map_find(m, addr, offset);
#endif
}

#if VMMEM__FAST
/*
 * After an inline store of [addr, addr+len) into slot s: mark it when the
 * region's tracking is on.  The test follows the store (a compiler fence
 * keeps the order; the library's switch and harvest flush the CPUs' store
 * buffers), so a write is either visible to a copy that starts after the
 * switch or harvest returns, or marked.  Tracked: test the page bit inline
 * and set it through the library only when it is clear (or a vhost-user
 * log must be marked too).
 */
static __attribute__((noinline, unused)) void
vmmem__fast_mark_tracked(const struct vmmem__fast_bitmap *b, uint64_t off, size_t len)
{
    uint64_t *words = __atomic_load_n(&b->words, __ATOMIC_ACQUIRE);
    if (words != NULL && off < b->bytes && len <= b->bytes - off &&
        __atomic_load_n(&b->log, __ATOMIC_RELAXED) == NULL) {
        uint64_t p0 = off >> b->page_shift, p1 = (off + len - 1) >> b->page_shift;
        if ((p0 >> 6) == (p1 >> 6)) {
            uint64_t mask = (~0ull >> (63 - (p1 & 63))) & (~0ull << (p0 & 63));
            if ((__atomic_load_n(&words[p0 >> 6], __ATOMIC_RELAXED) & mask) == mask)
                return; /* already dirty: no locked RMW */
        }
    }
    vmmem_bitmap_mark((vmmem_bitmap *)(void *)(uintptr_t)b, off, len);
}

/* The marks of an inline slice write of len bytes at addr whose first n0
 * are in slot s (the rest in s + 1), after both stores: each piece whose
 * region's tracking is on. */
static __attribute__((noinline, unused)) void
vmmem__fast_mark_pieces(const struct vmmem__fast_slot *s, vmmem_gaddr_t addr, size_t n0,
                        size_t len)
{
    if (__atomic_load_n(&s->fast, __ATOMIC_RELAXED) & VMMEM__FASTBIT_T)
        vmmem__fast_mark_tracked((const struct vmmem__fast_bitmap *)s->dirty, addr - s->start,
                                 n0);
    if (n0 != len && (__atomic_load_n(&s[1].fast, __ATOMIC_RELAXED) & VMMEM__FASTBIT_T))
        vmmem__fast_mark_tracked((const struct vmmem__fast_bitmap *)s[1].dirty, 0, len - n0);
}

static VMMEM__ALWAYS_INLINE void vmmem__fast_after_store(const struct vmmem__fast_slot *s,
                                                         vmmem_gaddr_t addr, size_t len)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (__builtin_expect(__atomic_load_n(&s->fast, __ATOMIC_RELAXED) & VMMEM__FASTBIT_T, 0))
        vmmem__fast_mark_tracked((const struct vmmem__fast_bitmap *)s->dirty, addr - s->start,
                                 len);
}
#endif

static inline int vmmem_fast_write_obj(const vmmem_map *m, vmmem_gaddr_t addr, const void *obj,
                                       size_t size)
{
#if VMMEM__FAST
    const struct vmmem__fast_slot *s;
    uint8_t *p;
    if (obj != NULL && size == 8) {
        uint64_t t; /* one aligned access: never torn */
        memcpy(&t, obj, 8);
        if (VMMEM__LIKELY(m != NULL && (addr & 7) == 0 &&
                          vmmem__fast_small(m, addr, true, &p, &s))) {
            VMMEM__ST64(p, t);
            vmmem__fast_after_store(s, addr, 8);
            return 0;
        }
        return vmmem__fast_write8_call(m, addr, t); /* the same bytes, read once */
    }
#endif
    return vmmem_write_obj(m, addr, obj, size);
}

/* vmmem_read_obj, inline for the common case. */
static inline int vmmem_fast_read_obj(const vmmem_map *m, vmmem_gaddr_t addr, void *obj,
                                      size_t size)
{
#if VMMEM__FAST
    const struct vmmem__fast_slot *s;
    uint8_t *p;
    if (obj != NULL && size == 8) {
        uint64_t t;
        if (VMMEM__LIKELY(m != NULL && (addr & 7) == 0 &&
                          vmmem__fast_small(m, addr, false, &p, &s))) {
            t = VMMEM__LD64(p);
        } else {
            struct vmmem__fast_r8 r = vmmem__fast_read8_call(m, addr);
            if (r.rc != 0)
                return r.rc; /* nothing touched on error, as there */
            t = r.v;
        }
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
    uint8_t *h;
    if (m != NULL && (addr & 3) == 0 &&
        (order == VMMEM_RELAXED || order == VMMEM_RELEASE || order == VMMEM_SEQ_CST) &&
        vmmem__fast_small(m, addr, true, &h, &s)) {
        uint32_t *p = (uint32_t *)(void *)h;
        if (order == VMMEM_RELAXED)
            __atomic_store_n(p, v, __ATOMIC_RELAXED);
        else if (order == VMMEM_RELEASE)
            __atomic_store_n(p, v, __ATOMIC_RELEASE);
        else
            __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
        vmmem__fast_after_store(s, addr, 4);
        return 0;
    }
#endif
    return vmmem_store(m, addr, 4, v, order);
}

/* vmmem_load of a 4-byte value, inline for the common case. */
static inline int vmmem_fast_load_u32(const vmmem_map *m, vmmem_gaddr_t addr, uint32_t *v,
                                      vmmem_order order)
{
#if VMMEM__FAST
    const struct vmmem__fast_slot *s;
    uint8_t *h;
    if (m != NULL && v != NULL && (addr & 3) == 0 &&
        (order == VMMEM_RELAXED || order == VMMEM_ACQUIRE || order == VMMEM_SEQ_CST) &&
        vmmem__fast_small(m, addr, false, &h, &s)) {
        const uint32_t *p = (const uint32_t *)(const void *)h;
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

#if VMMEM__FAST
/* Copy n (> 8) bytes, n never more than max: overlapping fixed-size moves
 * up to 64 bytes (no call), memcpy beyond.  Pieces of 8 bytes or less never
 * come here: the library copies those with single accesses, so an aligned
 * u16/u32/u64 is never torn. */
static VMMEM__ALWAYS_INLINE void vmmem__fast_copy(uint8_t *d, const uint8_t *s, size_t n,
                                                  size_t max)
{
    if (n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n <= 32) {
        uint8_t a[16], b[16];
        memcpy(a, s, 16);
        memcpy(b, s + n - 16, 16);
        memcpy(d, a, 16);
        memcpy(d + n - 16, b, 16);
    } else if (n <= 64 || max <= 64) { /* n <= max: a constant max drops the call */
        uint8_t a[16], b[16], c[16], e[16]; /* four registers, no stack */
        memcpy(a, s, 16);
        memcpy(b, s + 16, 16);
        memcpy(c, s + n - 32, 16);
        memcpy(e, s + n - 16, 16);
        memcpy(d, a, 16);
        memcpy(d + 16, b, 16);
        memcpy(d + n - 32, c, 16);
        memcpy(d + n - 16, e, 16);
    } else {
        /* Hide a constant n: GCC would expand memcpy(d, s, 4096) into
         * rep movsq, 1.5x slower here than the C library's memcpy. */
        __asm__("" : "+r"(n));
        if (n > (size_t)PTRDIFF_MAX) /* no object is that large: tells GCC's */
            __builtin_unreachable(); /* -Wstringop-overflow so after inlining */
        memcpy(d, s, n);
    }
}

/* What vmmem__fast_span guarantees of the first piece n0 of len (all of it,
 * or more than 8 bytes with more than 8 left), told to the compiler so that
 * it sees every copy stays inside the caller's buffer: without it, GCC's
 * -Wstringop-overflow/-Warray-bounds (with -fsanitize) flag a small
 * constant len. */
#define VMMEM__PIECES(n0, len)                                                              \
    do {                                                                                    \
        if ((n0) != (len) && ((n0) <= 8 || (n0) > (len) || (len) - (n0) <= 8))              \
            __builtin_unreachable();                                                        \
    } while (0)

/* [addr, addr+len) in one ordinary region, or across the seam into the
 * touching next one, every piece over 8 bytes, each region allowing need:
 * the host pointers and the length of the first piece; else 0. */
static VMMEM__ALWAYS_INLINE int vmmem__fast_span(const vmmem_map *m, vmmem_gaddr_t addr,
                                                 size_t len, uint32_t need, uint8_t **p0,
                                                 uint8_t **p1, size_t *n0,
                                                 const struct vmmem__fast_slot **s0)
{
    const struct vmmem__fast_slot *s = vmmem__fast_near(m, addr);
    if (s == NULL)
        return 0;
    /* rlen/wlen: addr is in the region and the region allows the access
     * (it also asks for an 8-aligned start: other regions' slices go
     * through the library). */
    uint64_t off = addr - s->start;
    uint64_t room = s->last - addr; /* bytes from addr to the region's end, minus one */
    if (off >= (need == VMMEM__FASTBIT_W ? s->wlen : s->rlen))
        return 0;
    *s0 = s;
    *p0 = s->host + off;
    if ((uint64_t)len - 1 <= room) {
        *n0 = len;
        return 1;
    }
    const struct vmmem__fast_slot *t = s + 1; /* a slot when FASTBIT_NEXT is set */
    size_t first = (size_t)room + 1, rest = len - first;
    /* The next slot's rlen/wlen say at once that it allows the access and
     * holds rest bytes (0 when it cannot: then the library copies). */
    if (first > 8 && rest > 8 &&
        (__atomic_load_n(&s->fast, __ATOMIC_RELAXED) & VMMEM__FASTBIT_NEXT) &&
        rest <= (need == VMMEM__FASTBIT_W ? t->wlen : t->rlen)) {
        *p1 = t->host;
        *n0 = first;
        return 1;
    }
    return 0;
}
#endif

/*
 * vmmem_read_slice / vmmem_write_slice for copies of more than 8 bytes, in
 * one region or across the seam of two touching ones (a descriptor, a
 * header): inline when every byte is in ordinary writable memory (writes;
 * they then mark as dirty.h says) or ordinary memory (reads), checked in
 * full before anything is copied.
 * Everything else - 8 bytes or less, holes, map-on-access,
 * read-only - calls the exported function, with its exact contract.
 */
static VMMEM__ALWAYS_INLINE int vmmem_fast_read_slice(const vmmem_map *m, vmmem_gaddr_t addr,
                                                      void *buf, size_t len)
{
#if VMMEM__FAST
    uint8_t *p0, *p1 = NULL;
    size_t n0;
    const struct vmmem__fast_slot *s0;
    if (m != NULL && buf != NULL && len > 8 &&
        vmmem__fast_span(m, addr, len, VMMEM__FASTBIT_R, &p0, &p1, &n0, &s0)) {
        VMMEM__PIECES(n0, len);
        vmmem__fast_copy((uint8_t *)buf, p0, n0, len);
        if (n0 != len)
            vmmem__fast_copy((uint8_t *)buf + n0, p1, len - n0, len);
        return 0;
    }
#endif
    return vmmem_read_slice(m, addr, buf, len);
}

/* vmmem_write_slice, inline for the common case (see above). */
static VMMEM__ALWAYS_INLINE int vmmem_fast_write_slice(const vmmem_map *m, vmmem_gaddr_t addr,
                                                       const void *buf, size_t len)
{
#if VMMEM__FAST
    uint8_t *p0, *p1 = NULL;
    size_t n0;
    const struct vmmem__fast_slot *s0;
    if (m != NULL && buf != NULL && len > 8 &&
        vmmem__fast_span(m, addr, len, VMMEM__FASTBIT_W, &p0, &p1, &n0, &s0)) {
        VMMEM__PIECES(n0, len);
        vmmem__fast_copy(p0, (const uint8_t *)buf, n0, len);
        if (n0 != len)
            vmmem__fast_copy(p1, (const uint8_t *)buf + n0, len - n0, len);
        /* Both switches tested after both stores, one branch, no call in
         * between (which would spill the second slot across it). */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        uint32_t f = __atomic_load_n(&s0->fast, __ATOMIC_RELAXED);
        if (n0 != len)
            f |= __atomic_load_n(&s0[1].fast, __ATOMIC_RELAXED);
        if (__builtin_expect(f & VMMEM__FASTBIT_T, 0))
            vmmem__fast_mark_pieces(s0, addr, n0, len);
        return 0;
    }
#endif
    return vmmem_write_slice(m, addr, buf, len);
}

VMMEM_END_DECLS

#endif

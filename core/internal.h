/* Private to core/: structures behind the opaque public handles. */
#ifndef VMMEM_INTERNAL_H
#define VMMEM_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

#include <vmmem/vmmem.h>

#if defined(_WIN32)
#define VMMEM_HIDDEN /* PE: only __declspec(dllexport) symbols are exported */
#else
#define VMMEM_HIDDEN __attribute__((visibility("hidden")))
#endif
/* printf checking for the library's own formatters: mingw's C99 printf
 * (__USE_MINGW_ANSI_STDIO, %zu and %llu) is gnu_printf, not ms_printf. */
#if defined(_WIN32)
#define VMMEM__PRINTF gnu_printf
#else
#define VMMEM__PRINTF printf
#endif
#if defined(_WIN32)
#include <stdlib.h>
#include <string.h>
/* The CRT has no strndup. */
static inline char *vmmem__strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}
#define strndup vmmem__strndup
#endif
#define VMMEM_LIKELY(x) __builtin_expect(!!(x), 1)
#define VMMEM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- errors (error.c) ---- */
VMMEM_HIDDEN int vmmem__err(int code, const char *fmt, ...) __attribute__((format(VMMEM__PRINTF, 2, 3)));
VMMEM_HIDDEN int vmmem__verr(int code, const char *fmt, va_list ap);
/* Like vmmem__err, and records the offending guest address. */
VMMEM_HIDDEN int vmmem__err_addr(int code, uint64_t addr, const char *fmt, ...)
    __attribute__((format(VMMEM__PRINTF, 3, 4)));
VMMEM_HIDDEN int vmmem__err_partial(uint64_t addr, uint64_t expected, uint64_t completed);
/* VMMEM_EINVALID_ADDRESS: addr is in no region. */
VMMEM_HIDDEN int vmmem__err_hole(uint64_t addr);
VMMEM_HIDDEN int vmmem__err_col(int code, int column, const char *fmt, ...)
    __attribute__((format(VMMEM__PRINTF, 3, 4)));
VMMEM_HIDDEN struct vmmem_error *vmmem__errbuf(void);

/* ---- plugins and providers (registry.c) ---- */

/* A character of a provider name: [A-Za-z0-9_.-] (config.c, registry.c). */
static inline bool vmmem__is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}
struct vmmem_plugin_handle; /* a dlopen'ed file, reference-counted */

/* A provider as the registry holds it: the plugin's table plus bookkeeping. */
struct vmmem_prov {
    const struct vmmem_provider *p;
    struct vmmem_plugin_handle *plugin; /* NULL for static registration */
    char *file;                         /* plugin path or NULL */
};

VMMEM_HIDDEN const struct vmmem_host *vmmem__host(void);
VMMEM_HIDDEN void vmmem__plugin_ref(struct vmmem_plugin_handle *h);
VMMEM_HIDDEN void vmmem__plugin_unref(struct vmmem_plugin_handle *h);
/* Look up a provider and take a reference on its plugin (out->plugin). */
VMMEM_HIDDEN int vmmem__registry_lookup(vmmem_registry *reg, const char *name,
                                        struct vmmem_prov *out);

/* Config scopes (config.c): while maps are built from specs, the specs (and
 * the parsed config string, if any) are in scope, so the host's
 * option_error can name the region and the column of an option. */
struct vmmem__cfg_scope {
    const vmmem_config *cfg; /* or NULL: a C array of specs */
    const struct vmmem_region_spec *specs;
    size_t n;
    const struct vmmem__cfg_scope *prev;
};
VMMEM_HIDDEN void vmmem__cfg_scope_enter(struct vmmem__cfg_scope *sc, const vmmem_config *cfg,
                                         const struct vmmem_region_spec *specs, size_t n);
VMMEM_HIDDEN void vmmem__cfg_scope_leave(const struct vmmem__cfg_scope *sc);
/* The host table's option kit (provider.h). */
VMMEM_HIDDEN int vmmem__option_error(const struct vmmem_region_spec *spec, const char *key,
                                     int code, const char *fmt, ...)
    __attribute__((format(VMMEM__PRINTF, 4, 5)));
/* Append the region's location to the thread's error message unless it has
 * one (a provider's own message, set_error style), and point the column
 * at the region when the provider named none. */
VMMEM_HIDDEN void vmmem__config_locate_error(const struct vmmem_region_spec *spec);
VMMEM_HIDDEN int vmmem__option_prot(const struct vmmem_region_spec *spec, int *prot);
VMMEM_HIDDEN int vmmem__option_sharing(const struct vmmem_region_spec *spec, bool dflt,
                                       bool *shared);
VMMEM_HIDDEN int vmmem__option_size(const struct vmmem_region_spec *spec, const char *key,
                                    uint64_t align, uint64_t *out);

/* "; searched ...; ignored ...; N plugin files failed ..." for an unknown
 * provider message ("" when reg never ran discovery). */
VMMEM_HIDDEN void vmmem__registry_hint(vmmem_registry *reg, char *buf, size_t cap);

/* Core wrappers: the only places that call through a provider table. */
VMMEM_HIDDEN int vmmem__prov_map(const struct vmmem_prov *pv, const struct vmmem_region_spec *spec,
                                 struct vmmem_mapping *out);
VMMEM_HIDDEN void vmmem__prov_unmap(const struct vmmem_prov *pv,
                                    const struct vmmem_region_spec *spec, struct vmmem_mapping *m);
VMMEM_HIDDEN bool vmmem__prov_has_access_hooks(const struct vmmem_provider *p);
VMMEM_HIDDEN int vmmem__prov_begin(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                                   uint64_t off, size_t len, int prot, struct vmmem_access *acc);
VMMEM_HIDDEN void vmmem__prov_end(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                                  struct vmmem_access *acc);

/* ---- bitmap (bitmap.c) ---- */
/* Reader counters striped per thread, one cache line each (space.c, and the
 * log marking grace period in harvest.c): n[phase] readers inside. */
#define VMMEM__STRIPES 32u
#define VMMEM__LINE 64u
struct vmmem__stripe {
    _Atomic long n[2];
    char pad[VMMEM__LINE - 2 * sizeof(long)];
};
VMMEM_HIDDEN unsigned vmmem__thread_stripe(void);

/* A two-phase grace period over those counters (the space's readers, the
 * vhost-user log's markers): a reader enters before loading the shared
 * pointer and leaves when done with it; a writer that swapped the pointer
 * waits (vmmem__gp_wait, space.c) until every reader that may have loaded
 * the old one has left.  Readers never wait. */
struct vmmem__gp {
    _Atomic unsigned phase;
    struct vmmem__stripe *stripes; /* VMMEM__STRIPES, zeroed, cache-line aligned */
};

static inline void vmmem__gp_enter(struct vmmem__gp *g, unsigned *stripe, unsigned *phase)
{
    unsigned k = vmmem__thread_stripe(), p = atomic_load(&g->phase) & 1;
    atomic_fetch_add(&g->stripes[k].n[p], 1); /* seq_cst: before the reader's load */
    *stripe = k;
    *phase = p;
}

static inline void vmmem__gp_leave(struct vmmem__gp *g, unsigned stripe, unsigned phase)
{
    atomic_fetch_sub_explicit(&g->stripes[stripe].n[phase], 1, memory_order_release);
}

VMMEM_HIDDEN void vmmem__gp_wait(struct vmmem__gp *g);

/* Largest piece one begin_access maps for the calls that may split an
 * access (read, write, fd I/O, the slice iterator): map-on-access providers
 * have per-mapping limits (grants). */
#define VMMEM__LAZY_CHUNK ((size_t)1 << 20)

/* -EDEADLK (with the message) when the calling thread is inside a read
 * section of s, else 0: layers that take their own lock before a writer
 * call on s check this first (space.c; used by vhost.c). */
struct vmmem_space;
VMMEM_HIDDEN int vmmem__space_writer_check(const struct vmmem_space *s);

/* An attached vhost-user log (harvest.c), reference-counted: held by the
 * map it is attached to and by every region whose bitmap points or pointed
 * to it (a writer may still be marking it after a detach). */
struct vmmem_log {
    _Atomic long refs;
    _Atomic uint8_t *bits; /* bit p%8 of byte p/8 = 4 KiB page p */
    uint64_t size;         /* bytes of log */
    void *base;            /* mmap base (page-aligned) */
    size_t maplen;
};
struct vmmem_log_hold {
    struct vmmem_log *log;
    struct vmmem_log_hold *next;
};
/* Mark [gpa, gpa+len) in the log b points to, if any, inside the grace
 * period that lets a detach release the logs no bitmap points to. */
VMMEM_HIDDEN void vmmem__bitmap_log_mark(struct vmmem_bitmap *b, uint64_t gpa, uint64_t len);

/*
 * A dirty bitmap.  A region's bitmap is made with the region and belongs to
 * its memory: every map holding the region (old snapshots, later maps, the
 * alias a rebase makes) and every slice of it marks this one object, and
 * `enabled` is the region's tracking switch.  The words are allocated when
 * tracking is first switched on (32 KiB per GiB of 4 KiB pages), never freed
 * before the bitmap.
 *
 * Writers store their data, then test the switch - the VMMEM__FAST_T bit
 * of the lookup entry they used (maps, fast.h), or `enabled` (slices) -
 * then test-then-set the page bits (an RMW only when a bit is clear).  The
 * switch (on) and every harvest that took bits end with
 * vmmem__os_flush_writes(): a writer whose test came before the flush had
 * its data store visible when the flush returned; one whose test came
 * after sees the switch on and the cleared bit, and sets it.  fast.h
 * mirrors the head (struct vmmem__fast_bitmap).
 */
struct vmmem_bitmap {
    uint64_t bytes;      /* covered length */
    uint64_t pages;      /* number of bits */
    unsigned page_shift; /* log2(page size): marking uses shifts, no division */
    atomic_bool enabled;
    _Atomic uint64_t gpa;            /* guest address of offset 0 in the current map, for the log */
    _Atomic(struct vmmem_log *) log; /* attached vhost-user log or NULL */
    size_t nwords;
    _Atomic(_Atomic uint64_t *) words; /* NULL until tracking was first on */
    /* Not in fast.h's mirror: the lookup entries of every map holding this
     * memory, whose VMMEM__FAST_T bit copies `enabled` (under
     * vmmem__track_lock), so writers test a bit on the line they have. */
    struct vmmem_slot **users;
    size_t nusers, capusers;
};
/* Serializes tracking switches and the users lists (a leaf lock). */
VMMEM_HIDDEN extern pthread_mutex_t vmmem__track_lock;
/* Switch b (track lock held): `enabled` and every user slot's T bit.
 * True when it turned on. */
VMMEM_HIDDEN bool vmmem__bitmap_set_enabled(vmmem_bitmap *b, bool on);
/* A bitmap without words, not enabled (regions); vmmem_bitmap_new makes
 * standalone ones with words, enabled. */
VMMEM_HIDDEN int vmmem__bitmap_alloc(vmmem_bitmap **out, uint64_t bytes, uint64_t page_size);
/* Allocate the words if missing (0 or -ENOMEM). */
VMMEM_HIDDEN int vmmem__bitmap_words(vmmem_bitmap *b);
/* Set every page bit (a region entering a tracked layout). */
VMMEM_HIDDEN void vmmem__bitmap_mark_all(vmmem_bitmap *b);
VMMEM_HIDDEN void vmmem__bitmap_mark(vmmem_bitmap *b, uint64_t off, uint64_t len);
/* Move the first n words of b into words (clearing them); the bits taken.
 * The caller flushes (vmmem__os_flush_writes) before using the pages. */
VMMEM_HIDDEN uint64_t vmmem__bitmap_take(vmmem_bitmap *b, uint64_t *words, size_t n);
/* The process-wide store flush that closes the write/harvest window (os.h). */
VMMEM_HIDDEN int vmmem__flush_writes(void);

/* A write of [off, off+len) went to b's memory: mark it if tracking is on.
 * Called after the data stores (the compiler fence keeps them before the
 * test; the CPU side is the flush of the switch and the harvest). */
static inline void vmmem__dirty(vmmem_bitmap *b, uint64_t off, uint64_t len)
{
    atomic_signal_fence(memory_order_seq_cst);
    if (b != NULL && atomic_load_explicit(&b->enabled, memory_order_relaxed))
        vmmem__bitmap_mark(b, off, len);
}

/* What a harvest reads: a region's address, size and bitmap (harvest.c). */
struct vmmem__harvest_src {
    uint64_t start, size;
    vmmem_bitmap *b;
};
VMMEM_HIDDEN int vmmem__harvest_fit(vmmem_harvest *h, const struct vmmem__harvest_src *e,
                                    size_t n, size_t nrem, uint64_t page_size);
VMMEM_HIDDEN int64_t vmmem__harvest_take(vmmem_harvest *h, const struct vmmem__harvest_src *e);

/* ---- regions and maps (map.c) ---- */
struct vmmem_region {
    _Atomic long refs;
    uint64_t start, last, size;
    uint8_t *host; /* NULL: map-on-access */
    int prot;
    struct vmmem_prov prov;
    struct vmmem_mapping mapping;
    struct vmmem_region_spec spec; /* deep copy, owned (shallow for an alias) */
    vmmem_bitmap *bitmap;          /* made with the region; an alias shares its owner's */
    struct vmmem_region *alias_of; /* re-based view of another region, or NULL */
    struct vmmem_log_hold *logs;   /* logs its bitmap pointed to (harvest.c) */
};

VMMEM_HIDDEN int vmmem__region_new(struct vmmem_region **out, vmmem_registry *reg,
                                   const struct vmmem_region_spec *spec, uint64_t page_size);
/* Tracking on or off for regions (words allocated first: -ENOMEM changes
 * nothing); on ends with the store flush. */
VMMEM_HIDDEN int vmmem__regions_set_tracking(struct vmmem_region *const *rs, size_t n, bool on);
VMMEM_HIDDEN int vmmem__region_alias(struct vmmem_region **out, struct vmmem_region *orig,
                                     uint64_t new_base);
VMMEM_HIDDEN void vmmem__region_ref(struct vmmem_region *r);
VMMEM_HIDDEN void vmmem__region_unref(struct vmmem_region *r);

/* Lookup entry: hot fields inline, so a bisection probe touches one line. */
struct vmmem_slot {
    uint64_t start;
    uint64_t last;
    uint8_t *host; /* NULL for map-on-access */
    /* rlen / wlen: an access of 1 to 8 bytes aligned to its size whose
     * offset from start is below rlen (reads) or wlen (writes) lies in
     * host-mapped memory that allows it, one compare covering both ends
     * (vmmem__small_len). */
    uint64_t rlen;
    uint64_t wlen;
    struct vmmem_region *r;
    /* The region's bitmap (never NULL; constant). */
    vmmem_bitmap *dirty;
    int prot;
    /* VMMEM__FAST_R / _W: what the header-inline paths of fast.h may do
     * here without asking (host mapped and readable; host mapped and
     * writable).  VMMEM__FAST_T: tracking is on for the region - every
     * writer tests it after storing, on the line the lookup loaded. */
    _Atomic uint32_t fast;
};

#define VMMEM__FAST_R 1u
#define VMMEM__FAST_W 2u
#define VMMEM__FAST_T 4u /* the region's dirty tracking is on (a copy of dirty->enabled) */
#define VMMEM__FAST_NEXT 8u /* slot + 1 starts at last + 1 (set by map_index) */

/* The fast bits of a slot with host and prot as given.  None when host and
 * start disagree mod 8: the inline paths test only the guest address's
 * alignment. */
static inline uint32_t vmmem__fast_bits(const uint8_t *host, uint64_t start, int prot)
{
    uint32_t f = 0;
    if ((((uintptr_t)host - (uintptr_t)start) & 7) != 0)
        return 0;
    if (host != NULL && (prot & VMMEM_PROT_READ))
        f |= VMMEM__FAST_R;
    if (host != NULL && (prot & VMMEM_PROT_WRITE))
        f |= VMMEM__FAST_W;
    return f;
}

/* The rlen/wlen of a slot: the region's size rounded down to 8 when fast
 * bit `bit` is set (host-mapped, allowed, host - start a multiple of 8) and
 * start is a multiple of 8 (so is host then: a guest address's alignment
 * is its host address's); else 0, which sends every access to the checked
 * path. */
static inline uint64_t vmmem__small_len(uint64_t start, uint64_t last, uint32_t fast, uint32_t bit)
{
    if (!(fast & bit) || (start & 7) != 0)
        return 0;
    uint64_t span = last - start; /* size - 1: never overflows */
    return span == UINT64_MAX ? UINT64_MAX & ~(uint64_t)7 : (span + 1) & ~(uint64_t)7;
}

/* Mark a write to slot s (off, len relative to the region), after it. */
static inline void vmmem__slot_dirty(const struct vmmem_slot *s, uint64_t off, uint64_t len)
{
    atomic_signal_fence(memory_order_seq_cst);
    if (VMMEM_UNLIKELY(atomic_load_explicit(&((struct vmmem_slot *)s)->fast,
                                            memory_order_relaxed) &
                       VMMEM__FAST_T))
        vmmem__bitmap_mark(s->dirty, off, len);
}

struct vmmem_map {
    _Atomic long refs;
    size_t n;
    struct vmmem_slot *slots; /* sorted by start */
    /* Direct index (map.c map_index): dir[addr >> dir_shift], for
     * addr >> dir_shift < dir_n, is the only slot meeting that bucket of
     * 2^dir_shift addresses, or NULL (none, or several: bisect).  It
     * replaces the bisection on the hot paths, here and in fast.h. */
    const struct vmmem_slot *const *dir;
    uint64_t dir_n;
    unsigned dir_shift;
    uint64_t dirty_page_size;
    atomic_bool tracking;
    pthread_mutex_t lock;   /* serializes tracking switches and log attach */
    bool registered;        /* its slots are in their bitmaps' users lists */
    struct vmmem_log *log;  /* attached log, a reference (under lock) */
};

/* vhost-user logs (harvest.c).  point_logs: every region bitmap of m to l
 * (m->lock held).  set_log: make l (a reference given up) m's log, tracking
 * on.  log_get: m's log with a reference, or NULL.  log_release: drop the
 * map's reference; region_logs_release: a dying region's. */
VMMEM_HIDDEN int vmmem__map_point_logs(struct vmmem_map *m, struct vmmem_log *l);
VMMEM_HIDDEN int vmmem__map_set_log(struct vmmem_map *m, struct vmmem_log *l);
VMMEM_HIDDEN struct vmmem_log *vmmem__map_log_get(struct vmmem_map *m);
VMMEM_HIDDEN struct vmmem_log *vmmem__log_ref(struct vmmem_log *l);
VMMEM_HIDDEN void vmmem__log_unref(struct vmmem_log *l);
VMMEM_HIDDEN void vmmem__map_log_release(struct vmmem_map *m);
VMMEM_HIDDEN void vmmem__region_logs_release(struct vmmem_region *r);

/* The direct index's slot for addr: the only one meeting its bucket, or
 * NULL (outside the index, or a bucket to bisect). */
static inline const struct vmmem_slot *vmmem__dir_slot(const struct vmmem_map *m, uint64_t addr)
{
    uint64_t b = addr >> m->dir_shift;
    return VMMEM_LIKELY(b < m->dir_n) ? m->dir[b] : NULL;
}

/* The slot where an access of 1 to 8 bytes at addr, aligned to its size,
 * may be made directly (fast.h's rule: one compare of the offset with the
 * slot's rlen/wlen), with *off the offset; else NULL. */
static inline const struct vmmem_slot *vmmem__small_slot(const struct vmmem_map *m,
                                                         uint64_t addr, bool write,
                                                         uint64_t *off)
{
    const struct vmmem_slot *s = vmmem__dir_slot(m, addr);
    if (VMMEM_LIKELY(s != NULL)) {
        *off = addr - s->start;
        if (VMMEM_LIKELY(*off < (write ? s->wlen : s->rlen)))
            return s;
    }
    return NULL;
}

/* Index of the slot holding addr, or -1. */
static inline long vmmem__find_slot(const struct vmmem_map *m, uint64_t addr)
{
    const struct vmmem_slot *s = vmmem__dir_slot(m, addr);
    if (VMMEM_LIKELY(s != NULL))
        return addr >= s->start && addr <= s->last ? (long)(s - m->slots) : -1;
    s = m->slots;
    size_t n = m->n;
    /* Branch-light bisection for the last slot whose start <= addr. */
    if (VMMEM_UNLIKELY(n == 0 || addr < s[0].start))
        return -1;
    while (n > 1) {
        size_t half = n / 2;
        s = (s[half].start <= addr) ? s + half : s;
        n -= half;
    }
    return addr <= s->last ? (long)(s - m->slots) : -1;
}

/* Bytes of slot s from addr on, clipped to want (never 0; want > 0). */
static inline uint64_t vmmem__piece_len(const struct vmmem_slot *s, uint64_t addr, uint64_t want)
{
    uint64_t avail_m1 = s->last - addr;
    return (want - 1 <= avail_m1) ? want : avail_m1 + 1;
}

/* Next slot after k if it touches k, else NULL. */
static inline const struct vmmem_slot *vmmem__next_touching(const struct vmmem_map *m, size_t k)
{
    if (k + 1 < m->n && m->slots[k].last != UINT64_MAX &&
        m->slots[k + 1].start == m->slots[k].last + 1)
        return &m->slots[k + 1];
    return NULL;
}

static inline vmmem_bitmap *vmmem__region_bitmap(const struct vmmem_region *r)
{
    return r->bitmap;
}

/* ---- copy engine and atomics (access.c) ---- */

/*
 * Copies of 8 bytes or less use single volatile accesses of the widest
 * width both pointers' alignment allows, so an aligned u16/u32/u64 is never
 * torn (a guest reading a virtio index must never see half of a store).
 */
static inline __attribute__((always_inline)) void vmmem__copy_small(uint8_t *d, const uint8_t *s,
                                                                    size_t len)
{
    while (len > 0) {
        uintptr_t a = (uintptr_t)d | (uintptr_t)s;
        if (len >= 8 && (a & 7) == 0) {
            VMMEM__ST64(d, VMMEM__LD64(s)); /* one access, on 32-bit hosts too */
            d += 8, s += 8, len -= 8;
        } else if (len >= 4 && (a & 3) == 0) {
            *(volatile uint32_t *)d = *(const volatile uint32_t *)s;
            d += 4, s += 4, len -= 4;
        } else if (len >= 2 && (a & 1) == 0) {
            *(volatile uint16_t *)d = *(const volatile uint16_t *)s;
            d += 2, s += 2, len -= 2;
        } else {
            *(volatile uint8_t *)d = *(const volatile uint8_t *)s;
            d += 1, s += 1, len -= 1;
        }
    }
}

/* Longer copies run at memcpy speed. */
static inline __attribute__((always_inline)) void vmmem__copy(void *dst, const void *src,
                                                              size_t len)
{
    if (len == 8 && (((uintptr_t)dst | (uintptr_t)src) & 7) == 0) { /* the common object */
        VMMEM__ST64(dst, VMMEM__LD64(src));
    } else if (len <= 8) {
        vmmem__copy_small(dst, src, len);
    } else if (len <= 32) {
        /* Short pieces (a descriptor, an object across a seam) without a
         * call: two or four possibly overlapping 8-byte moves, all loads
         * before all stores (dst and src do not overlap, as for memcpy). */
        uint8_t *d = dst;
        const uint8_t *s = src;
        uint64_t a, b, c, e;
        memcpy(&a, s, 8);
        memcpy(&e, s + len - 8, 8);
        if (len > 16) {
            memcpy(&b, s + 8, 8);
            memcpy(&c, s + len - 16, 8);
            memcpy(d + 8, &b, 8);
            memcpy(d + len - 16, &c, 8);
        }
        memcpy(d, &a, 8);
        memcpy(d + len - 8, &e, 8);
    } else {
        memcpy(dst, src, len);
    }
}
/* Atomic access on an aligned host pointer (checked by the caller);
 * defined in access.c, inlined there. */
VMMEM_HIDDEN void vmmem__atomic(uint8_t *p, size_t size, uint64_t *val, vmmem_order order,
                                bool store);
/* The access engine (access.c), for layers above the map (iommu.c).  dir:
 * 1 = into guest memory (marking the pages written), 0 = out of it. */
VMMEM_HIDDEN int64_t vmmem__rw_some(const vmmem_map *m, uint64_t addr, uint8_t *buf, size_t len,
                                    int dir);
VMMEM_HIDDEN int vmmem__rw_all(const vmmem_map *m, uint64_t addr, uint8_t *buf, size_t len,
                               int dir);
VMMEM_HIDDEN int64_t vmmem__fd_io(const vmmem_map *m, uint64_t addr, int fd, size_t count,
                                  int dir);
/* Is [addr, addr+len) fully backed (and writable)?  0, or the code with the
 * first failing address in *bad (no error detail is set). */
VMMEM_HIDDEN int vmmem__precheck(const vmmem_map *m, uint64_t addr, size_t len, bool write,
                                 uint64_t *bad);
/* A load (dir 0) or store (dir 1, marked) of an aligned 1/2/4/8-byte value. */
VMMEM_HIDDEN int vmmem__map_atomic(const vmmem_map *m, uint64_t addr, size_t size, uint64_t *val,
                                   vmmem_order order, int dir);
/* 0 for an atomic access size of 1, 2, 4 or 8 bytes, else -EINVAL. */
static inline int vmmem__check_atomic_size(size_t size)
{
    if (size == 1 || size == 2 || size == 4 || size == 8)
        return 0;
    return vmmem__err(-EINVAL, "atomic access size %zu is not 1, 2, 4 or 8", size);
}
/* 0 when order is valid for a load (store = false) or a store, else -EINVAL. */
VMMEM_HIDDEN int vmmem__check_order(vmmem_order order, bool store);

/* Guard of a map-on-access slice (slice.c). */
struct vmmem_guard {
    const struct vmmem_region *r;
    struct vmmem_access acc;
};
VMMEM_HIDDEN int vmmem__region_slice(const struct vmmem_region *r, uint8_t *host, uint64_t off,
                                     size_t len, int prot, vmmem_slice *out);

/* ---- config (config.c) ---- */
VMMEM_HIDDEN int vmmem__validate_specs(vmmem_registry *reg, const struct vmmem_region_spec *specs,
                                       size_t n);
/* A map over existing regions (references taken on success); sorted,
 * VMMEM_EOVERLAP on overlap.  n may be 0 (an empty map, for spaces). */
VMMEM_HIDDEN int vmmem__map_from_regions(vmmem_map **out, struct vmmem_region *const *rs, size_t n,
                                         uint64_t page_size, bool tracking);
/* Build a map from specs already validated (map.c). */
VMMEM_HIDDEN int vmmem__map_build(vmmem_map **out, vmmem_registry *reg,
                                  const struct vmmem_region_spec *specs, size_t n,
                                  const struct vmmem_map_options *opts);

#endif

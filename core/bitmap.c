/* The built-in dirty bitmap: one bit per page, 64-bit words, lock-free. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"
#include "os.h"

int vmmem__bitmap_alloc(vmmem_bitmap **out, uint64_t bytes, uint64_t page_size)
{
    if (page_size == 0 || (page_size & (page_size - 1)) != 0)
        return vmmem__err(-EINVAL, "dirty page size %llu is not a power of two",
                          (unsigned long long)page_size);
    unsigned shift = (unsigned)__builtin_ctzll(page_size);
    uint64_t pages = (bytes >> shift) + ((bytes & (page_size - 1)) != 0);
    uint64_t nwords = (pages + 63) / 64;
    if (nwords > SIZE_MAX / sizeof(uint64_t))
        return vmmem__err(-ENOMEM, "dirty bitmap for %llu bytes is too large",
                          (unsigned long long)bytes);
    vmmem_bitmap *b = calloc(1, sizeof *b);
    if (b == NULL)
        return vmmem__err(-ENOMEM, "out of memory for a dirty bitmap");
    b->bytes = bytes;
    b->pages = pages;
    b->page_shift = shift;
    b->nwords = (size_t)nwords;
    atomic_init(&b->enabled, false);
    atomic_init(&b->gpa, 0);
    atomic_init(&b->log, NULL);
    atomic_init(&b->words, NULL);
    *out = b;
    return 0;
}

int vmmem__bitmap_words(vmmem_bitmap *b)
{
    if (atomic_load_explicit(&b->words, memory_order_acquire) != NULL)
        return 0;
    _Atomic uint64_t *w = calloc(b->nwords ? b->nwords : 1, sizeof *w);
    if (w == NULL)
        return vmmem__err(-ENOMEM, "out of memory for a dirty bitmap of %llu pages",
                          (unsigned long long)b->pages);
    _Atomic uint64_t *expect = NULL;
    if (!atomic_compare_exchange_strong_explicit(&b->words, &expect, w, memory_order_acq_rel,
                                                 memory_order_acquire))
        free((void *)w); /* another switch installed them first */
    return 0;
}

int vmmem_bitmap_new(vmmem_bitmap **out, uint64_t bytes, uint64_t page_size)
{
    if (out == NULL)
        return vmmem__err(-EINVAL, "vmmem_bitmap_new: NULL output pointer");
    vmmem_bitmap *b;
    int rc = vmmem__bitmap_alloc(&b, bytes, page_size);
    if (rc < 0)
        return rc;
    if ((rc = vmmem__bitmap_words(b)) < 0) {
        free(b);
        return rc;
    }
    atomic_store(&b->enabled, true);
    *out = b;
    return 0;
}

void vmmem_bitmap_free(vmmem_bitmap *b)
{
    if (b == NULL)
        return;
    free((void *)atomic_load_explicit(&b->words, memory_order_relaxed));
    free(b->users); /* empty: every map holding the region is gone */
    free(b);
}

pthread_mutex_t vmmem__track_lock = PTHREAD_MUTEX_INITIALIZER;

bool vmmem__bitmap_set_enabled(vmmem_bitmap *b, bool on)
{
    bool was = atomic_exchange(&b->enabled, on);
    for (size_t i = 0; i < b->nusers; i++) {
        _Atomic uint32_t *f = &b->users[i]->fast;
        atomic_store(f, on ? (atomic_load(f) | VMMEM__FAST_T) : (atomic_load(f) & ~VMMEM__FAST_T));
    }
    return on && !was;
}

void vmmem__bitmap_mark(vmmem_bitmap *b, uint64_t off, uint64_t len)
{
    if (len == 0 || off >= b->bytes)
        return;
    uint64_t end = (len - 1 > b->bytes - 1 - off) ? b->bytes - 1 : off + len - 1;
    _Atomic uint64_t *words = atomic_load_explicit(&b->words, memory_order_acquire);
    if (words != NULL) {
        uint64_t first = off >> b->page_shift, last = end >> b->page_shift;
        size_t w = (size_t)(first >> 6), wl = (size_t)(last >> 6);
        for (; w <= wl; w++) {
            uint64_t lo = (w == (first >> 6)) ? (first & 63) : 0;
            uint64_t hi = (w == wl) ? (last & 63) : 63;
            uint64_t mask = (hi == 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & (~0ull << lo);
            /* Test, then set: pages already dirty cost a shared read, not a
             * locked RMW (the harvest's flush covers a store still in flight). */
            if ((atomic_load_explicit(&words[w], memory_order_relaxed) & mask) != mask)
                atomic_fetch_or_explicit(&words[w], mask, memory_order_release);
        }
    }
    if (atomic_load_explicit(&b->log, memory_order_relaxed) != NULL)
        vmmem__bitmap_log_mark(b, atomic_load_explicit(&b->gpa, memory_order_relaxed) + off,
                               end - off + 1);
}

/* The bitmap only: a vhost-user front-end sends the memory it hot-plugs
 * itself; its log is for the back-end's writes. */
void vmmem__bitmap_mark_all(vmmem_bitmap *b)
{
    _Atomic uint64_t *words = atomic_load_explicit(&b->words, memory_order_acquire);
    for (size_t w = 0; words != NULL && w < b->nwords; w++) {
        uint64_t bits = b->pages - ((uint64_t)w << 6);
        atomic_fetch_or_explicit(&words[w], bits >= 64 ? ~0ull : (1ull << bits) - 1,
                                 memory_order_release);
    }
}

void vmmem_bitmap_mark(vmmem_bitmap *b, uint64_t offset, uint64_t len)
{
    if (b != NULL)
        vmmem__bitmap_mark(b, offset, len);
}

bool vmmem_bitmap_test(const vmmem_bitmap *b, uint64_t offset)
{
    if (b == NULL || offset >= b->bytes)
        return false;
    _Atomic uint64_t *words = atomic_load_explicit(&((vmmem_bitmap *)b)->words, memory_order_acquire);
    if (words == NULL)
        return false;
    uint64_t page = offset >> b->page_shift;
    uint64_t w = atomic_load_explicit(&words[page >> 6], memory_order_acquire);
    return (w >> (page & 63)) & 1;
}

uint64_t vmmem_bitmap_pages(const vmmem_bitmap *b)
{
    return b ? b->pages : 0;
}

uint64_t vmmem__bitmap_take(vmmem_bitmap *b, uint64_t *words, size_t n)
{
    _Atomic uint64_t *bw = atomic_load_explicit(&b->words, memory_order_acquire);
    uint64_t bits = 0;
    for (size_t w = 0; w < n; w++) {
        /* A plain load skips clean words without taking the line exclusively. */
        uint64_t v = 0;
        if (bw != NULL && atomic_load_explicit(&bw[w], memory_order_relaxed) != 0)
            v = atomic_exchange_explicit(&bw[w], 0, memory_order_acquire);
        words[w] = v;
        bits += (uint64_t)__builtin_popcountll(v);
    }
    return bits;
}

int vmmem__flush_writes(void)
{
    return vmmem__os_flush_writes();
}

size_t vmmem_bitmap_collect(vmmem_bitmap *b, uint64_t *words, size_t nwords)
{
    if (b == NULL)
        return 0;
    if (vmmem__bitmap_take(b, words, nwords < b->nwords ? nwords : b->nwords) != 0)
        vmmem__flush_writes(); /* writers test-then-set: see vmmem__harvest_take */
    return b->nwords;
}

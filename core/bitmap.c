/* The built-in dirty bitmap: one bit per page, 64-bit words, lock-free. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int vmmem_bitmap_new(vmmem_bitmap **out, uint64_t bytes, uint64_t page_size)
{
    if (out == NULL)
        return vmmem__err(-EINVAL, "vmmem_bitmap_new: NULL output pointer");
    if (page_size == 0 || (page_size & (page_size - 1)) != 0)
        return vmmem__err(-EINVAL, "dirty page size %llu is not a power of two",
                          (unsigned long long)page_size);
    unsigned shift = (unsigned)__builtin_ctzll(page_size);
    uint64_t pages = (bytes >> shift) + ((bytes & (page_size - 1)) != 0);
    uint64_t nwords = (pages + 63) / 64;
    if (nwords > (SIZE_MAX - sizeof(vmmem_bitmap)) / sizeof(uint64_t))
        return vmmem__err(-ENOMEM, "dirty bitmap for %llu bytes is too large",
                          (unsigned long long)bytes);
    vmmem_bitmap *b = calloc(1, sizeof *b + (size_t)nwords * sizeof(uint64_t));
    if (b == NULL)
        return vmmem__err(-ENOMEM, "out of memory for a dirty bitmap of %llu pages",
                          (unsigned long long)pages);
    b->bytes = bytes;
    b->pages = pages;
    b->page_shift = shift;
    b->nwords = (size_t)nwords;
    atomic_init(&b->enabled, true);
    atomic_init(&b->log, NULL);
    *out = b;
    return 0;
}

void vmmem_bitmap_free(vmmem_bitmap *b)
{
    free(b);
}

void vmmem__bitmap_mark(vmmem_bitmap *b, uint64_t off, uint64_t len)
{
    if (len == 0 || off >= b->bytes)
        return;
    uint64_t end = (len - 1 > b->bytes - 1 - off) ? b->bytes - 1 : off + len - 1;
    uint64_t first = off >> b->page_shift, last = end >> b->page_shift;
    size_t w = (size_t)(first >> 6), wl = (size_t)(last >> 6);
    /* Release: a harvester that sees the bit (acquire) also sees the data. */
    for (; w <= wl; w++) {
        uint64_t lo = (w == (first >> 6)) ? (first & 63) : 0;
        uint64_t hi = (w == wl) ? (last & 63) : 63;
        uint64_t mask = (hi == 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & (~0ull << lo);
        atomic_fetch_or_explicit(&b->words[w], mask, memory_order_release);
    }
    if (atomic_load_explicit(&b->log, memory_order_relaxed) != NULL)
        vmmem__bitmap_log_mark(b, b->gpa + off, end - off + 1);
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
    uint64_t page = offset >> b->page_shift;
    uint64_t w = atomic_load_explicit(&((vmmem_bitmap *)b)->words[page >> 6], memory_order_acquire);
    return (w >> (page & 63)) & 1;
}

uint64_t vmmem_bitmap_pages(const vmmem_bitmap *b)
{
    return b ? b->pages : 0;
}

uint64_t vmmem__bitmap_take(vmmem_bitmap *b, uint64_t *words, size_t n)
{
    uint64_t bits = 0;
    for (size_t w = 0; w < n; w++) {
        /* A plain load skips clean words without taking the line exclusively. */
        uint64_t v = 0;
        if (atomic_load_explicit(&b->words[w], memory_order_relaxed) != 0)
            v = atomic_exchange_explicit(&b->words[w], 0, memory_order_acquire);
        words[w] = v;
        bits += (uint64_t)__builtin_popcountll(v);
    }
    return bits;
}

size_t vmmem_bitmap_collect(vmmem_bitmap *b, uint64_t *words, size_t nwords)
{
    if (b == NULL)
        return 0;
    (void)vmmem__bitmap_take(b, words, nwords < b->nwords ? nwords : b->nwords);
    return b->nwords;
}

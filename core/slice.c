/* Volatile slices: bounded views inside one region, and the slice iterator. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int vmmem__region_slice(const struct vmmem_region *r, uint8_t *host, uint64_t off, size_t len,
                        int prot, vmmem_slice *out)
{
    vmmem_slice s = {NULL, len, vmmem__region_bitmap(r), off, NULL, prot};
    if (host != NULL) {
        s.ptr = host + off;
    } else if (len > 0) {
        struct vmmem_guard *g = malloc(sizeof *g);
        if (g == NULL)
            return vmmem__err(-ENOMEM, "out of memory for a slice guard");
        g->r = r;
        int rc = vmmem__prov_begin(r->prov.p, &r->mapping, off, len, prot, &g->acc);
        if (rc < 0) {
            free(g);
            return rc;
        }
        /* The guard keeps the region (its provider, mapping and bitmap)
         * alive until release, even when every map holding it is gone. */
        vmmem__region_ref((struct vmmem_region *)r);
        s.ptr = g->acc.ptr;
        s.guard = g;
    }
    *out = s;
    return 0;
}

/* prot < 0: the region's own protection. */
static int get_slice(const vmmem_map *m, vmmem_gaddr_t addr, size_t len, int prot,
                     vmmem_slice *out)
{
    if (m == NULL || out == NULL)
        return vmmem__err(-EINVAL, "vmmem_get_slice: NULL argument");
    long i = vmmem__find_slot(m, addr);
    if (i < 0)
        return vmmem__err_hole(addr);
    const struct vmmem_slot *s = &m->slots[i];
    if (len > 0 && (uint64_t)len - 1 > s->last - addr)
        return vmmem__err_addr(VMMEM_ECROSSES_REGION, addr,
                               "slice 0x%llx +0x%zx leaves its region [0x%llx, 0x%llx]",
                               (unsigned long long)addr, len, (unsigned long long)s->start,
                               (unsigned long long)s->last);
    if (prot < 0)
        prot = s->prot;
    else if ((prot & VMMEM_PROT_WRITE) && !(s->prot & VMMEM_PROT_WRITE))
        return vmmem__err_addr(VMMEM_EREAD_ONLY, addr,
                               "writable slice asked of read-only region [0x%llx, 0x%llx]",
                               (unsigned long long)s->start, (unsigned long long)s->last);
    return vmmem__region_slice(s->r, s->host, addr - s->start, len, prot, out);
}

int vmmem_get_slice(const vmmem_map *m, vmmem_gaddr_t addr, size_t len, vmmem_slice *out)
{
    return get_slice(m, addr, len, -1, out);
}

int vmmem_get_slice_prot(const vmmem_map *m, vmmem_gaddr_t addr, size_t len, int prot,
                         vmmem_slice *out)
{
    if (prot != VMMEM_PROT_READ && prot != VMMEM_PROT_RW)
        return vmmem__err(-EINVAL,
                          "vmmem_get_slice_prot: prot 0x%x is neither VMMEM_PROT_READ nor "
                          "VMMEM_PROT_RW",
                          (unsigned)prot);
    return get_slice(m, addr, len, prot, out);
}

void vmmem_slice_release(vmmem_slice *s)
{
    if (s == NULL)
        return;
    struct vmmem_guard *g = s->guard;
    if (g != NULL) {
        vmmem__prov_end(g->r->prov.p, &g->r->mapping, &g->acc);
        vmmem__region_unref((struct vmmem_region *)g->r);
        free(g);
    }
    memset(s, 0, sizeof *s);
}

vmmem_slice vmmem_slice_from_buffer(void *buf, size_t len)
{
    vmmem_slice s = {(uint8_t *)buf, buf ? len : 0, NULL, 0, NULL, VMMEM_PROT_RW};
    return s;
}

/* off + len must stay inside s: OVERFLOW if it wraps, OUT_OF_BOUNDS if past. */
static int bounds(const vmmem_slice *s, size_t off, size_t len)
{
    if (s == NULL)
        return vmmem__err(-EINVAL, "NULL slice");
    if (len > SIZE_MAX - off) {
        vmmem__err(VMMEM_EOVERFLOW, "slice offset 0x%zx + length 0x%zx overflows", off, len);
        vmmem__errbuf()->addr = off;
        return VMMEM_EOVERFLOW;
    }
    if (off + len > s->len)
        return vmmem__err_addr(VMMEM_EOUT_OF_BOUNDS, (uint64_t)(off + len),
                               "slice range ends at 0x%zx, past its length 0x%zx", off + len,
                               s->len);
    return 0;
}

int vmmem_slice_subslice(const vmmem_slice *s, size_t off, size_t len, vmmem_slice *out)
{
    int rc = bounds(s, off, len);
    if (rc < 0)
        return rc;
    if (out == NULL)
        return vmmem__err(-EINVAL, "NULL output slice");
    *out = (vmmem_slice){s->ptr ? s->ptr + off : NULL, len, s->bitmap, s->bitmap_offset + off,
                         s->guard, s->prot};
    return 0;
}

int vmmem_slice_offset(const vmmem_slice *s, size_t n, vmmem_slice *out)
{
    if (s != NULL && n > s->len)
        return vmmem__err_addr(VMMEM_EOUT_OF_BOUNDS, n,
                               "slice offset 0x%zx is past its length 0x%zx", n, s->len);
    return vmmem_slice_subslice(s, n, s ? s->len - n : 0, out);
}

int vmmem_slice_split_at(const vmmem_slice *s, size_t mid, vmmem_slice *head, vmmem_slice *tail)
{
    if (s != NULL && mid > s->len)
        return vmmem__err_addr(VMMEM_EOUT_OF_BOUNDS, mid,
                               "split point 0x%zx is past the slice length 0x%zx", mid, s->len);
    if (s == NULL || head == NULL || tail == NULL)
        return vmmem__err(-EINVAL, "vmmem_slice_split_at: NULL argument");
    vmmem_slice h, t;
    vmmem_slice_subslice(s, 0, mid, &h);
    vmmem_slice_subslice(s, mid, s->len - mid, &t);
    *head = h;
    *tail = t;
    return 0;
}

size_t vmmem_slice_copy_to(const vmmem_slice *s, void *buf, size_t len)
{
    if (s == NULL || buf == NULL)
        return 0;
    size_t n = len < s->len ? len : s->len;
    vmmem__copy(buf, s->ptr, n);
    return n;
}

static int ro(const vmmem_slice *s)
{
    return vmmem__err(VMMEM_EREAD_ONLY, "slice %p (+0x%zx bytes) is read-only", (void *)s->ptr,
                      s->len);
}

size_t vmmem_slice_copy_from(const vmmem_slice *s, const void *buf, size_t len)
{
    if (s == NULL || buf == NULL)
        return 0;
    if (!(s->prot & VMMEM_PROT_WRITE)) {
        ro(s);
        return 0;
    }
    size_t n = len < s->len ? len : s->len;
    vmmem__copy(s->ptr, buf, n);
    vmmem__dirty(s->bitmap, s->bitmap_offset, n);
    return n;
}

size_t vmmem_slice_copy_to_slice(const vmmem_slice *src, const vmmem_slice *dst)
{
    if (src == NULL || dst == NULL)
        return 0;
    if (!(dst->prot & VMMEM_PROT_WRITE)) {
        ro(dst);
        return 0;
    }
    size_t n = src->len < dst->len ? src->len : dst->len;
    if (n <= 8) {
        uint8_t tmp[8]; /* slices may overlap */
        vmmem__copy(tmp, src->ptr, n);
        vmmem__copy(dst->ptr, tmp, n);
    } else {
        memmove(dst->ptr, src->ptr, n);
    }
    vmmem__dirty(dst->bitmap, dst->bitmap_offset, n);
    return n;
}

int vmmem_slice_read(const vmmem_slice *s, size_t off, void *buf, size_t len)
{
    int rc = bounds(s, off, len);
    if (rc < 0)
        return rc;
    if (len > 0 && buf == NULL)
        return vmmem__err(-EINVAL, "NULL buffer");
    vmmem__copy(buf, s->ptr + off, len);
    return 0;
}

int vmmem_slice_write(const vmmem_slice *s, size_t off, const void *buf, size_t len)
{
    int rc = bounds(s, off, len);
    if (rc < 0)
        return rc;
    if (!(s->prot & VMMEM_PROT_WRITE))
        return ro(s);
    if (len > 0 && buf == NULL)
        return vmmem__err(-EINVAL, "NULL buffer");
    vmmem__copy(s->ptr + off, buf, len);
    vmmem__dirty(s->bitmap, s->bitmap_offset + off, len);
    return 0;
}

static int slice_atomic(const vmmem_slice *s, size_t off, size_t size, uint64_t *val,
                        vmmem_order order, bool store)
{
    if (vmmem__check_atomic_size(size) < 0)
        return -EINVAL;
    if (val == NULL || vmmem__check_order(order, store) < 0)
        return vmmem__err(-EINVAL, "invalid memory order %d or NULL value for an atomic %s",
                          (int)order, store ? "store" : "load");
    int rc = bounds(s, off, size); /* bounds first, then alignment (as the crate) */
    if (rc < 0)
        return rc;
    if (store && !(s->prot & VMMEM_PROT_WRITE))
        return ro(s);
    uint8_t *p = s->ptr + off;
    if ((uintptr_t)p & (size - 1))
        return vmmem__err_addr(VMMEM_EMISALIGNED, off,
                               "slice offset 0x%zx (host %p) is not aligned for a %zu-byte atomic",
                               off, (void *)p, size);
    vmmem__atomic(p, size, val, order, store);
    if (store)
        vmmem__dirty(s->bitmap, s->bitmap_offset + off, size);
    return 0;
}

int vmmem_slice_load(const vmmem_slice *s, size_t off, size_t size, uint64_t *val,
                     vmmem_order order)
{
    return slice_atomic(s, off, size, val, order, false);
}

int vmmem_slice_store(const vmmem_slice *s, size_t off, size_t size, uint64_t val,
                      vmmem_order order)
{
    return slice_atomic(s, off, size, &val, order, true);
}

/* ---- iterator ---- */

void vmmem_slices_begin(vmmem_slice_iter *it, const vmmem_map *m, vmmem_gaddr_t addr, uint64_t len)
{
    vmmem_slices_begin_prot(it, m, addr, len, -1);
}

/* The iterator's state packs "finished" (bit 0) and the access asked for
 * (bits 8-15: prot + 1, so 0 is "each region's own", 0xff an invalid prot
 * reported by the first next): vmmem_slice_iter keeps its 0.1 size, which
 * programs built against 0.1 allocate. */
#define ITER_DONE 1
#define ITER_PROT_SHIFT 8
#define ITER_PROT_BAD 0xff

static void iter_finish(vmmem_slice_iter *it)
{
    it->state |= ITER_DONE;
}

/* prot -1: each region's own protection (vmmem_slices_begin). */
void vmmem_slices_begin_prot(vmmem_slice_iter *it, const vmmem_map *m, vmmem_gaddr_t addr,
                             uint64_t len, int prot)
{
    if (it == NULL)
        return;
    int code = (prot == -1 || prot == VMMEM_PROT_READ || prot == VMMEM_PROT_RW) ? prot + 1
                                                                                : ITER_PROT_BAD;
    it->map = m;
    it->addr = addr;
    it->remaining = len;
    it->state = code << ITER_PROT_SHIFT;
}

int vmmem_slices_next(vmmem_slice_iter *it, vmmem_slice *out)
{
    if (it == NULL || out == NULL)
        return vmmem__err(-EINVAL, "vmmem_slices_next: NULL argument");
    if ((it->state & ITER_DONE) || it->remaining == 0)
        return 0;
    const vmmem_map *m = it->map;
    if (m == NULL) {
        iter_finish(it);
        return vmmem__err(-EINVAL, "slice iterator has no map");
    }
    int code = (it->state >> ITER_PROT_SHIFT) & 0xff;
    if (code == ITER_PROT_BAD) {
        iter_finish(it);
        return vmmem__err(-EINVAL, "vmmem_slices_begin_prot: prot is neither VMMEM_PROT_READ "
                                   "nor VMMEM_PROT_RW");
    }
    int want = code - 1; /* -1: the region's own */
    /* Ending exactly at 2^64 is fine; past it is an overflow. */
    if (it->remaining - 1 > UINT64_MAX - it->addr) {
        iter_finish(it);
        return vmmem__err_addr(VMMEM_EOVERFLOW, it->addr,
                               "range 0x%llx +0x%llx passes 2^64", (unsigned long long)it->addr,
                               (unsigned long long)it->remaining);
    }
    long i = vmmem__find_slot(m, it->addr);
    if (i < 0) {
        iter_finish(it);
        return vmmem__err_hole(it->addr);
    }
    const struct vmmem_slot *s = &m->slots[i];
    uint64_t n = vmmem__piece_len(s, it->addr, it->remaining);
    if (n > SIZE_MAX)
        n = SIZE_MAX;
    if (s->host == NULL && n > VMMEM__LAZY_CHUNK)
        n = VMMEM__LAZY_CHUNK; /* a bounded mapping per slice */
    int prot = want < 0 ? s->prot : want;
    if ((prot & VMMEM_PROT_WRITE) && !(s->prot & VMMEM_PROT_WRITE)) {
        iter_finish(it);
        return vmmem__err_addr(VMMEM_EREAD_ONLY, it->addr,
                               "writable slice asked of read-only region [0x%llx, 0x%llx]",
                               (unsigned long long)s->start, (unsigned long long)s->last);
    }
    int rc = vmmem__region_slice(s->r, s->host, it->addr - s->start, (size_t)n, prot, out);
    if (rc < 0) {
        iter_finish(it);
        return rc;
    }
    it->addr += n;
    it->remaining -= n;
    return 1;
}

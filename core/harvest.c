/*
 * Harvesting dirty pages map-wide, and the vhost-user shared-memory log.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "os.h"

struct harvest_region {
    uint64_t start, size, pages;
    size_t nwords;
    uint64_t *words;
};

/* Entries [0, n) are the regions of the map harvested, in address order;
 * [n, n + nrem) the regions a space removed since its last harvest. */
struct vmmem_harvest {
    size_t n, nrem;
    uint64_t page_size;
    unsigned page_shift;
    struct harvest_region *r;
};

static void free_regions(struct harvest_region *r, size_t n)
{
    for (size_t i = 0; r != NULL && i < n; i++)
        free(r[i].words);
    free(r);
}

void vmmem_harvest_free(vmmem_harvest *h)
{
    if (h == NULL)
        return;
    free_regions(h->r, h->n + h->nrem);
    free(h);
}

/* Make h describe the layout e[0..n+nrem) (reusing its buffers when it
 * already does): -ENOMEM leaves h as it was. */
int vmmem__harvest_fit(vmmem_harvest *h, const struct vmmem__harvest_src *e, size_t n,
                       size_t nrem, uint64_t page_size)
{
    size_t total = n + nrem;
    unsigned shift = (unsigned)__builtin_ctzll(page_size);
    bool same = h->n + h->nrem == total && h->page_size == page_size;
    for (size_t i = 0; same && i < total; i++)
        same = h->r[i].start == e[i].start && h->r[i].size == e[i].size;
    if (same) {
        h->n = n;
        h->nrem = nrem;
        return 0;
    }
    struct harvest_region *r = calloc(total ? total : 1, sizeof *r);
    if (r == NULL)
        return vmmem__err(-ENOMEM, "out of memory for a harvest buffer");
    for (size_t i = 0; i < total; i++) {
        struct harvest_region *hr = &r[i];
        hr->start = e[i].start;
        hr->size = e[i].size;
        hr->pages = (hr->size >> shift) + ((hr->size & (page_size - 1)) != 0);
        hr->nwords = (size_t)((hr->pages + 63) / 64);
        if ((hr->words = calloc(hr->nwords ? hr->nwords : 1, sizeof(uint64_t))) == NULL) {
            free_regions(r, i);
            return vmmem__err(-ENOMEM, "out of memory for a harvest buffer");
        }
    }
    free_regions(h->r, h->n + h->nrem);
    h->r = r;
    h->n = n;
    h->nrem = nrem;
    h->page_size = page_size;
    h->page_shift = shift;
    return 0;
}

/* Collect and clear e's bitmaps into h (fitted to e), then flush. */
int64_t vmmem__harvest_take(vmmem_harvest *h, const struct vmmem__harvest_src *e)
{
    int64_t dirty = 0;
    for (size_t i = 0; i < h->n + h->nrem; i++) {
        struct harvest_region *hr = &h->r[i];
        vmmem_bitmap *b = e[i].b;
        if (b == NULL || b->nwords != hr->nwords ||
            b->page_shift != h->page_shift) { /* counted another way: cannot be */
            memset(hr->words, 0, hr->nwords * sizeof(uint64_t));
            continue;
        }
        dirty += (int64_t)vmmem__bitmap_take(b, hr->words, hr->nwords);
    }
    /* A writer that tested its page bit before the clear had its data
     * stored when the flush returns; one after it sets the bit again.  A
     * harvest that took nothing needs no flush: a writer that saw a bit set
     * saw it before the harvest that cleared it, whose flush covered it. */
    if (dirty != 0)
        vmmem__flush_writes();
    return dirty;
}

/* The harvest sources of map m (n entries), or NULL (-ENOMEM set). */
static struct vmmem__harvest_src *map_srcs(const vmmem_map *m)
{
    struct vmmem__harvest_src *e = malloc((m->n ? m->n : 1) * sizeof *e);
    if (e == NULL) {
        vmmem__err(-ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < m->n; i++)
        e[i] = (struct vmmem__harvest_src){m->slots[i].start, m->slots[i].r->size,
                                            m->slots[i].dirty};
    return e;
}

int vmmem_harvest_new(const vmmem_map *m, vmmem_harvest **out)
{
    if (m == NULL || out == NULL)
        return vmmem__err(-EINVAL, "vmmem_harvest_new: NULL argument");
    vmmem_harvest *h = calloc(1, sizeof *h);
    struct vmmem__harvest_src *e = h ? map_srcs(m) : NULL;
    int rc = e ? vmmem__harvest_fit(h, e, m->n, 0, m->dirty_page_size) : -ENOMEM;
    free(e);
    if (rc < 0) {
        free(h);
        return vmmem__err(-ENOMEM, "out of memory for a harvest buffer");
    }
    *out = h;
    return 0;
}

int64_t vmmem_map_harvest(const vmmem_map *m, vmmem_harvest *h)
{
    if (m == NULL || h == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_harvest: NULL argument");
    struct vmmem__harvest_src *e = map_srcs(m);
    if (e == NULL)
        return -ENOMEM;
    int64_t rc = vmmem__harvest_fit(h, e, m->n, 0, m->dirty_page_size);
    if (rc == 0)
        rc = vmmem__harvest_take(h, e);
    free(e);
    return rc;
}

size_t vmmem_harvest_regions(const vmmem_harvest *h)
{
    return h ? h->n : 0;
}

const uint64_t *vmmem_harvest_bitmap(const vmmem_harvest *h, size_t region, vmmem_gaddr_t *start,
                                     uint64_t *pages)
{
    if (h == NULL || region >= h->n)
        return NULL;
    if (start)
        *start = h->r[region].start;
    if (pages)
        *pages = h->r[region].pages;
    return h->r[region].words;
}

uint64_t vmmem_harvest_page_size(const vmmem_harvest *h)
{
    return h ? h->page_size : 0;
}

/* Next page at or after page in region r whose bit is set (flip 0) or clear
 * (flip ~0), or r->pages. */
static uint64_t next_bit(const struct harvest_region *r, uint64_t page, uint64_t flip)
{
    size_t w = (size_t)(page >> 6);
    if (w >= r->nwords)
        return r->pages;
    uint64_t v = (r->words[w] ^ flip) & (~0ull << (page & 63));
    while (v == 0) {
        if (++w >= r->nwords)
            return r->pages;
        v = r->words[w] ^ flip;
    }
    uint64_t p = ((uint64_t)w << 6) + (uint64_t)__builtin_ctzll(v);
    return p < r->pages ? p : r->pages;
}

/* Guest bytes of pages [a, b) of region r (the last page may be partial). */
static uint64_t run_bytes(const vmmem_harvest *h, const struct harvest_region *r, uint64_t a,
                          uint64_t b)
{
    uint64_t end = b << h->page_shift;
    if (b >= r->pages || end > r->size)
        end = r->size;
    return end - (a << h->page_shift);
}

/* The next run among entries [lo, hi) of h. */
static bool next_run_in(const vmmem_harvest *h, vmmem_harvest_iter *it, size_t lo, size_t hi,
                        vmmem_gaddr_t *gpa, uint64_t *len)
{
    if (it->region < lo) {
        it->region = lo;
        it->page = 0;
    }
    while (it->region < hi) {
        const struct harvest_region *r = &h->r[it->region];
        uint64_t a = next_bit(r, it->page, 0);
        if (a >= r->pages) {
            it->region++;
            it->page = 0;
            continue;
        }
        uint64_t b = next_bit(r, a, ~0ull);
        *gpa = r->start + (a << h->page_shift);
        *len = run_bytes(h, r, a, b);
        it->page = b;
        /* Merge into following touching regions while the run continues. */
        while (b >= r->pages && it->region + 1 < hi) {
            const struct harvest_region *nr = &h->r[it->region + 1];
            if (r->start + (r->size - 1) == UINT64_MAX || nr->start != r->start + r->size ||
                nr->pages == 0 || !(nr->words[0] & 1))
                break;
            it->region++;
            r = nr;
            b = next_bit(r, 0, ~0ull);
            *len += run_bytes(h, r, 0, b);
            it->page = b;
        }
        return true;
    }
    return false;
}

bool vmmem_harvest_next_run(const vmmem_harvest *h, vmmem_harvest_iter *it, vmmem_gaddr_t *gpa,
                            uint64_t *len)
{
    if (h == NULL || it == NULL || gpa == NULL || len == NULL)
        return false;
    return next_run_in(h, it, 0, h->n, gpa, len);
}

bool vmmem_harvest_next_removed_run(const vmmem_harvest *h, vmmem_harvest_iter *it,
                                    vmmem_gaddr_t *gpa, uint64_t *len)
{
    if (h == NULL || it == NULL || gpa == NULL || len == NULL)
        return false;
    return next_run_in(h, it, h->n, h->n + h->nrem, gpa, len);
}

/* ---- vhost-user log ---- */

static void log_mark(struct vmmem_log *l, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        return;
    uint64_t first = gpa / VMMEM_LOG_PAGE_SIZE;
    uint64_t last = (len - 1 > UINT64_MAX - gpa ? UINT64_MAX : gpa + len - 1) / VMMEM_LOG_PAGE_SIZE;
    uint64_t limit = l->size * 8; /* pages the log covers */
    if (first >= limit)
        return;
    if (last >= limit)
        last = limit - 1;
    /* One OR per log byte (8 pages), not per page. */
    for (uint64_t b = first / 8; b <= last / 8; b++) {
        unsigned lo = b == first / 8 ? (unsigned)(first % 8) : 0;
        unsigned hi = b == last / 8 ? (unsigned)(last % 8) : 7;
        uint8_t mask = (uint8_t)((0xffu >> (7 - hi)) & (0xffu << lo));
        atomic_fetch_or_explicit(&l->bits[b], mask, memory_order_release);
    }
}

struct vmmem_log *vmmem__log_ref(struct vmmem_log *l)
{
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    return l;
}

void vmmem__log_unref(struct vmmem_log *l)
{
    if (l == NULL || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    vmmem__os_unmap(l->base, l->maplen);
    free(l);
}

/*
 * Region bitmaps are shared by every map holding the region (old and new
 * snapshots of a space), and a writer loads the log pointer without taking a
 * reference.  So a region holds a reference to every log its bitmap points
 * to, or pointed to while a writer may still be marking it.  Writers mark a
 * log inside a grace period (striped counters, as the space's readers), so
 * when a bitmap is pointed elsewhere, a wait for the writers inside lets the
 * region drop the logs it no longer points to; the others go with the
 * region.  One lock serializes the pointer swaps and the regions' hold
 * lists; it is taken only when logs are attached, detached or carried.
 *
 * Lock order (see space.c, vhost.c): [vhost wlock ->] [space lock ->]
 * map lock -> log_lock, innermost; log_lock is held across the wait for
 * the markers, who take no lock while marking.  So marking never waits,
 * and the log calls are -EDEADLK from inside a read section of a space.
 */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Alignas(64) struct vmmem__stripe log_stripes[VMMEM__STRIPES];
static struct vmmem__gp log_gp = {0, log_stripes};

void vmmem__bitmap_log_mark(struct vmmem_bitmap *b, uint64_t gpa, uint64_t len)
{
    unsigned k, p;
    vmmem__gp_enter(&log_gp, &k, &p);
    struct vmmem_log *l = atomic_load(&b->log);
    if (l != NULL)
        log_mark(l, gpa, len);
    vmmem__gp_leave(&log_gp, k, p);
}

/* Drop the holds of r on logs its bitmap no longer points to (after a grace
 * period that followed the swap; log_lock held). */
static void region_prune_logs(struct vmmem_region *r)
{
    vmmem_bitmap *b = vmmem__region_bitmap(r);
    struct vmmem_log *cur = b ? atomic_load(&b->log) : NULL;
    for (struct vmmem_log_hold **pp = &r->logs; *pp != NULL;) {
        struct vmmem_log_hold *h = *pp;
        if (h->log != cur) {
            *pp = h->next;
            vmmem__log_unref(h->log);
            free(h);
        } else {
            pp = &h->next;
        }
    }
}

static bool region_holds(const struct vmmem_region *r, const struct vmmem_log *l)
{
    for (const struct vmmem_log_hold *h = r->logs; h; h = h->next)
        if (h->log == l)
            return true;
    return false;
}

void vmmem__region_logs_release(struct vmmem_region *r)
{
    for (struct vmmem_log_hold *h = r->logs, *n; h; h = n) {
        n = h->next;
        vmmem__log_unref(h->log);
        free(h);
    }
    r->logs = NULL;
}

/* Point the bitmap of every region of m at l (NULL: at none).  Called with
 * m->lock held.  -ENOMEM before any pointer changed.  A region's bitmap,
 * once installed, stays until the region dies, so both passes see the same. */
int vmmem__map_point_logs(vmmem_map *m, struct vmmem_log *l)
{
    pthread_mutex_lock(&log_lock);
    for (size_t i = 0; l != NULL && i < m->n; i++) {
        struct vmmem_region *r = m->slots[i].r;
        if (vmmem__region_bitmap(r) == NULL || region_holds(r, l))
            continue;
        struct vmmem_log_hold *h = malloc(sizeof *h);
        if (h == NULL) {
            /* Holds added so far only keep l mapped a little longer. */
            pthread_mutex_unlock(&log_lock);
            return vmmem__err(-ENOMEM, "out of memory attaching the vhost-user log");
        }
        vmmem__log_ref(l);
        h->log = l;
        h->next = r->logs;
        r->logs = h;
    }
    bool swapped = false;
    for (size_t i = 0; i < m->n; i++) {
        vmmem_bitmap *b = vmmem__region_bitmap(m->slots[i].r);
        if (b != NULL && atomic_exchange(&b->log, l) != l)
            swapped = true;
    }
    if (swapped) {
        vmmem__gp_wait(&log_gp); /* no writer is marking a log it swapped out */
        for (size_t i = 0; i < m->n; i++)
            region_prune_logs(m->slots[i].r);
    }
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void vmmem__map_log_release(struct vmmem_map *m)
{
    vmmem__log_unref(m->log);
    m->log = NULL;
}

/* Make l (a reference the caller gives up) the log of m, tracking on. */
int vmmem__map_set_log(vmmem_map *m, struct vmmem_log *l)
{
    int rc = vmmem_map_set_dirty_tracking(m, true);
    if (rc < 0) {
        vmmem__log_unref(l);
        return rc;
    }
    pthread_mutex_lock(&m->lock);
    rc = vmmem__map_point_logs(m, l);
    struct vmmem_log *old = NULL;
    if (rc == 0) {
        old = m->log;
        m->log = l;
    }
    pthread_mutex_unlock(&m->lock);
    vmmem__log_unref(rc == 0 ? old : l);
    return rc;
}

struct vmmem_log *vmmem__map_log_get(vmmem_map *m)
{
    pthread_mutex_lock(&m->lock);
    struct vmmem_log *l = m->log;
    if (l != NULL)
        vmmem__log_ref(l);
    pthread_mutex_unlock(&m->lock);
    return l;
}

int vmmem_map_attach_log(vmmem_map *m, int fd, uint64_t offset, uint64_t size)
{
    if (m == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_attach_log: NULL map");
    if (size == 0)
        return vmmem__err(-EINVAL, "vhost-user log of size 0");
    struct stat st;
    if (fstat(fd, &st) != 0)
        return vmmem__err(-errno, "vhost-user log fd %d: %s", fd, strerror(errno));
    if (S_ISREG(st.st_mode) &&
        (offset > (uint64_t)st.st_size || size > (uint64_t)st.st_size - offset))
        return vmmem__err(-ERANGE,
                          "vhost-user log fd %d: offset 0x%llx + size 0x%llx is past its end "
                          "(0x%llx bytes)",
                          fd, (unsigned long long)offset, (unsigned long long)size,
                          (unsigned long long)st.st_size);
    uint64_t page = vmmem__os_page_size();
    uint64_t delta = offset & (page - 1);
    if (size > SIZE_MAX - delta)
        return vmmem__err(VMMEM_EOVERFLOW, "vhost-user log too large");
    struct vmmem_log *l = calloc(1, sizeof *l);
    if (l == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    l->maplen = (size_t)(size + delta);
    int e = vmmem__os_map_shared_fd(fd, offset - delta, l->maplen, &l->base);
    if (e < 0) {
        free(l);
        return vmmem__err(e, "mapping vhost-user log fd %d (offset 0x%llx, size 0x%llx): %s", fd,
                          (unsigned long long)offset, (unsigned long long)size, strerror(-e));
    }
    l->bits = (_Atomic uint8_t *)((uint8_t *)l->base + delta);
    l->size = size;
    atomic_init(&l->refs, 1);
    return vmmem__map_set_log(m, l);
}

int vmmem_map_detach_log(vmmem_map *m)
{
    if (m == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_detach_log: NULL map");
    pthread_mutex_lock(&m->lock);
    struct vmmem_log *old = m->log;
    if (old != NULL) {
        (void)vmmem__map_point_logs(m, NULL); /* cannot fail: nothing to allocate */
        m->log = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    if (old == NULL)
        return vmmem__err(-ENOENT, "no vhost-user log is attached");
    vmmem__log_unref(old); /* the regions keep it mapped while a writer may use it */
    return 0;
}

/*
 * Guest memory maps: building them from specs through providers, lookup,
 * queries, reference counting, and the map-wide dirty-tracking switch.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- regions ---- */

static void free_spec_copy(struct vmmem_region_spec *s)
{
    for (size_t i = 0; i < s->n_options; i++) {
        free((char *)s->options[i].key);
        free((char *)s->options[i].value);
    }
    free((void *)s->options);
    free((char *)s->provider);
    memset(s, 0, sizeof *s);
}

static int copy_spec(struct vmmem_region_spec *dst, const struct vmmem_region_spec *src)
{
    memset(dst, 0, sizeof *dst);
    dst->addr = src->addr;
    dst->size = src->size;
    dst->host = src->host;
    if ((dst->provider = strdup(src->provider)) == NULL)
        return -ENOMEM;
    if (src->n_options == 0)
        return 0;
    struct vmmem_option *o = calloc(src->n_options, sizeof *o);
    if (o == NULL)
        return -ENOMEM;
    dst->options = o;
    for (size_t i = 0; i < src->n_options; i++) {
        o[i].key = strdup(src->options[i].key);
        o[i].value = strdup(src->options[i].value ? src->options[i].value : "");
        dst->n_options = i + 1;
        if (o[i].key == NULL || o[i].value == NULL)
            return -ENOMEM;
    }
    return 0;
}

void vmmem__region_ref(struct vmmem_region *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void vmmem__region_unref(struct vmmem_region *r)
{
    if (r == NULL || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    vmmem__region_logs_release(r);
    if (r->alias_of != NULL) { /* a re-based view: the original owns mapping and bitmap */
        vmmem__region_unref(r->alias_of);
    } else {
        vmmem_bitmap_free(r->bitmap);
        vmmem__prov_unmap(&r->prov, &r->spec, &r->mapping);
        free_spec_copy(&r->spec);
        vmmem__plugin_unref(r->prov.plugin);
    }
    free(r);
}

int vmmem__region_alias(struct vmmem_region **out, struct vmmem_region *orig, uint64_t new_base)
{
    if (orig->size - 1 > UINT64_MAX - new_base)
        return vmmem__err_addr(VMMEM_EOVERFLOW, new_base,
                               "re-basing 0x%llx bytes to 0x%llx passes 2^64",
                               (unsigned long long)orig->size, (unsigned long long)new_base);
    struct vmmem_region *r = calloc(1, sizeof *r);
    if (r == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    while (orig->alias_of != NULL) /* alias the owner, never an alias */
        orig = orig->alias_of;
    vmmem__region_ref(orig);
    r->alias_of = orig;
    atomic_init(&r->refs, 1);
    r->bitmap = orig->bitmap; /* the same memory: the same dirty state */
    r->start = new_base;
    r->size = orig->size;
    r->last = new_base + (orig->size - 1);
    r->host = orig->host;
    r->prot = orig->prot;
    r->prov = orig->prov;
    r->mapping = orig->mapping;
    r->spec = orig->spec; /* shallow: owned by orig */
    r->spec.addr = new_base;
    *out = r;
    return 0;
}

/* Map one validated spec into a new region. */
int vmmem__region_new(struct vmmem_region **out, vmmem_registry *reg,
                      const struct vmmem_region_spec *spec, uint64_t page_size)
{
    if (spec->size - 1 > (uint64_t)SIZE_MAX)
        return vmmem__err_addr(VMMEM_EOVERFLOW, spec->addr,
                               "region at 0x%llx: size 0x%llx is larger than this host can map",
                               (unsigned long long)spec->addr, (unsigned long long)spec->size);
    struct vmmem_region *r = calloc(1, sizeof *r);
    if (r == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    int rc = vmmem__registry_lookup(reg, spec->provider, &r->prov);
    if (rc < 0) {
        free(r);
        return rc;
    }
    /* The dirty state is made with the region (its words only when tracking
     * first goes on), so every map and slice of it reaches the same one. */
    if (copy_spec(&r->spec, spec) < 0)
        rc = vmmem__err(-ENOMEM, "out of memory");
    else if ((rc = vmmem__bitmap_alloc(&r->bitmap, spec->size, page_size)) == 0 &&
             (rc = vmmem__prov_map(&r->prov, &r->spec, &r->mapping)) < 0)
        vmmem_bitmap_free(r->bitmap);
    if (rc < 0) {
        free_spec_copy(&r->spec);
        vmmem__plugin_unref(r->prov.plugin);
        free(r);
        return rc;
    }
    atomic_init(&r->refs, 1);
    atomic_init(&r->bitmap->gpa, spec->addr);
    r->start = spec->addr;
    r->size = spec->size;
    r->last = spec->addr + (spec->size - 1);
    r->host = r->mapping.host;
    r->prot = r->mapping.prot;
    *out = r;
    return 0;
}

/* ---- maps ---- */

static int check_opts(const struct vmmem_map_options *opts, uint64_t *page)
{
    *page = 4096;
    if (opts == NULL)
        return 0;
    if (opts->struct_size < sizeof(struct vmmem_map_options))
        return vmmem__err(-EINVAL, "map options: struct_size %u is too small (need %zu)",
                          opts->struct_size, sizeof(struct vmmem_map_options));
    if (opts->flags & ~VMMEM_MAP_DIRTY_TRACKING)
        return vmmem__err(-EINVAL, "map options: unknown flags 0x%x", opts->flags);
    if (opts->dirty_page_size != 0) {
        uint64_t p = opts->dirty_page_size;
        if ((p & (p - 1)) != 0)
            return vmmem__err(-EINVAL, "map options: dirty page size %llu is not a power of two",
                              (unsigned long long)p);
        *page = p;
    }
    return 0;
}

/* fast.h compiles the lookup into callers: pin the layout it relies on. */
_Static_assert(sizeof(struct vmmem_slot) == sizeof(struct vmmem__fast_slot), "slot size");
_Static_assert(offsetof(struct vmmem_slot, start) == offsetof(struct vmmem__fast_slot, start), "start");
_Static_assert(offsetof(struct vmmem_slot, last) == offsetof(struct vmmem__fast_slot, last), "last");
_Static_assert(offsetof(struct vmmem_slot, host) == offsetof(struct vmmem__fast_slot, host), "host");
_Static_assert(offsetof(struct vmmem_slot, r) == offsetof(struct vmmem__fast_slot, region), "region");
_Static_assert(offsetof(struct vmmem_slot, prot) == offsetof(struct vmmem__fast_slot, prot), "prot");
_Static_assert(offsetof(struct vmmem_slot, dirty) == offsetof(struct vmmem__fast_slot, dirty), "dirty");
_Static_assert(offsetof(struct vmmem_slot, fast) == offsetof(struct vmmem__fast_slot, fast), "fast");
_Static_assert(offsetof(struct vmmem_slot, rlen) == offsetof(struct vmmem__fast_slot, rlen), "rlen");
_Static_assert(offsetof(struct vmmem_slot, wlen) == offsetof(struct vmmem__fast_slot, wlen), "wlen");
_Static_assert(VMMEM__FAST_R == VMMEM__FASTBIT_R && VMMEM__FAST_W == VMMEM__FASTBIT_W &&
                   VMMEM__FAST_T == VMMEM__FASTBIT_T && VMMEM__FAST_NEXT == VMMEM__FASTBIT_NEXT,
               "bits");
_Static_assert(offsetof(struct vmmem_bitmap, bytes) == offsetof(struct vmmem__fast_bitmap, bytes),
               "bitmap bytes");
_Static_assert(offsetof(struct vmmem_bitmap, page_shift) ==
                   offsetof(struct vmmem__fast_bitmap, page_shift),
               "bitmap page_shift");
_Static_assert(offsetof(struct vmmem_bitmap, log) == offsetof(struct vmmem__fast_bitmap, log),
               "bitmap log");
_Static_assert(offsetof(struct vmmem_bitmap, enabled) == offsetof(struct vmmem__fast_bitmap, enabled),
               "bitmap enabled");
_Static_assert(offsetof(struct vmmem_bitmap, words) == offsetof(struct vmmem__fast_bitmap, words),
               "bitmap words");
_Static_assert(sizeof(atomic_bool) == sizeof(bool), "atomic_bool as fast.h's bool");
_Static_assert(offsetof(struct vmmem_map, n) == offsetof(struct vmmem__fast_head, n), "n");
_Static_assert(offsetof(struct vmmem_map, slots) == offsetof(struct vmmem__fast_head, slots), "slots");
_Static_assert(offsetof(struct vmmem_map, dir) == offsetof(struct vmmem__fast_head, dir), "dir");
_Static_assert(offsetof(struct vmmem_map, dir_n) == offsetof(struct vmmem__fast_head, dir_n), "dir_n");
_Static_assert(offsetof(struct vmmem_map, dir_shift) == offsetof(struct vmmem__fast_head, dir_shift),
               "dir_shift");

/* Cache-line aligned, zeroed: a lookup probe touches one line per slot. */
static struct vmmem_slot *slots_alloc(size_t n)
{
    size_t bytes = (n ? n : 1) * sizeof(struct vmmem_slot);
#if defined(_WIN32)
    struct vmmem_slot *s = _aligned_malloc(bytes, 64); /* no C11 aligned_alloc in msvcrt */
#else
    struct vmmem_slot *s = aligned_alloc(64, bytes);
#endif
    if (s != NULL)
        memset(s, 0, bytes);
    return s;
}

static void slots_free(struct vmmem_slot *s)
{
#if defined(_WIN32)
    _aligned_free(s);
#else
    free(s);
#endif
}

static int cmp_slot(const void *a, const void *b)
{
    const struct vmmem_slot *x = a, *y = b;
    return x->start < y->start ? -1 : (x->start > y->start);
}

/* Buckets of the direct index at most: 8 KiB of pointers on 64-bit hosts,
 * whatever the layout (coarser buckets when the regions are small and far
 * apart; a bucket meeting two regions falls back to bisection). */
#define DIR_MAX 1024u

/* Mark m's seams, and build its direct index over its sorted slots: buckets of 2^shift bytes,
 * shift the largest alignment of every region boundary (so that in the
 * common layout each bucket lies in one region), raised until the index
 * covers the highest address in DIR_MAX buckets or fewer. */
static int map_index(vmmem_map *m)
{
    size_t n = m->n;
    if (n == 0)
        return 0;
    for (size_t i = 0; i + 1 < n; i++) /* seams the inline slice copies may cross */
        if (m->slots[i].last != UINT64_MAX && m->slots[i + 1].start == m->slots[i].last + 1)
            atomic_fetch_or(&m->slots[i].fast, VMMEM__FAST_NEXT);
    uint64_t bounds = 0;
    for (size_t i = 0; i < n; i++) {
        bounds |= m->slots[i].start;
        if (m->slots[i].last != UINT64_MAX)
            bounds |= m->slots[i].last + 1;
    }
    unsigned shift = bounds != 0 ? (unsigned)__builtin_ctzll(bounds) : 63;
    uint64_t top = m->slots[n - 1].last;
    while ((top >> shift) >= DIR_MAX)
        shift++;
    uint64_t nb = (top >> shift) + 1;
    const struct vmmem_slot **dir = calloc((size_t)nb, sizeof *dir);
    if (dir == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    size_t i = 0;
    for (uint64_t b = 0; b < nb; b++) {
        uint64_t lo = b << shift, hi = lo + ((UINT64_C(1) << shift) - 1);
        while (i < n && m->slots[i].last < lo)
            i++;
        if (i < n && m->slots[i].start <= hi && (i + 1 == n || m->slots[i + 1].start > hi))
            dir[b] = &m->slots[i];
    }
    m->dir = dir;
    m->dir_shift = shift;
    m->dir_n = nb;
    return 0;
}

/* Index m (map_index), then put its slots in (or take them out of) their
 * bitmaps' users lists, so that a tracking switch reaches them; a slot
 * starts with the region's current switch.  -ENOMEM registers nothing. */
static int map_register(vmmem_map *m)
{
    int rc = map_index(m);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&vmmem__track_lock);
    for (size_t i = 0; i < m->n; i++) {
        vmmem_bitmap *b = m->slots[i].dirty;
        if (b->nusers == b->capusers) {
            size_t cap = b->capusers ? 2 * b->capusers : 4;
            struct vmmem_slot **u = realloc(b->users, cap * sizeof *u);
            if (u == NULL) {
                for (size_t k = i; k-- > 0;)
                    m->slots[k].dirty->nusers--; /* the last entries are ours */
                pthread_mutex_unlock(&vmmem__track_lock);
                return vmmem__err(-ENOMEM, "out of memory");
            }
            b->users = u;
            b->capusers = cap;
        }
        b->users[b->nusers++] = &m->slots[i];
    }
    for (size_t i = 0; i < m->n; i++)
        if (atomic_load(&m->slots[i].dirty->enabled))
            atomic_fetch_or(&m->slots[i].fast, VMMEM__FAST_T);
    m->registered = true;
    pthread_mutex_unlock(&vmmem__track_lock);
    return 0;
}

static void map_unregister(vmmem_map *m)
{
    if (!m->registered)
        return;
    pthread_mutex_lock(&vmmem__track_lock);
    for (size_t i = 0; i < m->n; i++) {
        vmmem_bitmap *b = m->slots[i].dirty;
        for (size_t k = 0; k < b->nusers; k++)
            if (b->users[k] == &m->slots[i]) {
                b->users[k] = b->users[--b->nusers];
                break;
            }
    }
    m->registered = false;
    pthread_mutex_unlock(&vmmem__track_lock);
}

static void map_destroy(vmmem_map *m)
{
    map_unregister(m);
    /* Unmap in reverse address order; harmless, but predictable. */
    for (size_t i = m->n; i-- > 0;)
        vmmem__region_unref(m->slots[i].r);
    slots_free(m->slots);
    free((void *)m->dir);
    vmmem__map_log_release(m);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* An empty map with room for n slots (untracked), or NULL. */
static vmmem_map *map_alloc(size_t n, uint64_t page_size)
{
    vmmem_map *m = calloc(1, sizeof *m);
    if (m == NULL || (m->slots = slots_alloc(n)) == NULL) {
        free(m);
        return NULL;
    }
    atomic_init(&m->refs, 1);
    atomic_init(&m->tracking, false);
    m->dirty_page_size = page_size;
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

/* The lookup entry of region r. */
static struct vmmem_slot slot_of(struct vmmem_region *r)
{
    uint32_t f = vmmem__fast_bits(r->host, r->start, r->prot);
    return (struct vmmem_slot){.start = r->start, .last = r->last, .host = r->host,
                               .rlen = vmmem__small_len(r->start, r->last, f, VMMEM__FAST_R),
                               .wlen = vmmem__small_len(r->start, r->last, f, VMMEM__FAST_W),
                               .r = r, .prot = r->prot, .dirty = r->bitmap, .fast = f};
}

int vmmem__map_from_regions(vmmem_map **out, struct vmmem_region *const *rs, size_t n,
                            uint64_t page_size, bool tracking)
{
    vmmem_map *m = map_alloc(n, page_size);
    if (m == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        m->slots[i] = slot_of(rs[i]);
    m->n = n;
    qsort(m->slots, n, sizeof *m->slots, cmp_slot);
    for (size_t i = 1; i < n; i++) {
        if (m->slots[i].start <= m->slots[i - 1].last) {
            int rc = vmmem__err_addr(VMMEM_EOVERLAP, m->slots[i].start,
                                     "region [0x%llx, 0x%llx] overlaps region [0x%llx, 0x%llx]",
                                     (unsigned long long)m->slots[i].start,
                                     (unsigned long long)m->slots[i].last,
                                     (unsigned long long)m->slots[i - 1].start,
                                     (unsigned long long)m->slots[i - 1].last);
            m->n = 0; /* no references were taken yet */
            map_destroy(m);
            return rc;
        }
    }
    int rc0 = map_register(m);
    if (rc0 < 0) {
        m->n = 0; /* no references were taken yet */
        map_destroy(m);
        return rc0;
    }
    for (size_t i = 0; i < n; i++)
        vmmem__region_ref(m->slots[i].r);
    if (tracking) {
        int rc = vmmem_map_set_dirty_tracking(m, true);
        if (rc < 0) {
            map_destroy(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

int vmmem__map_build(vmmem_map **out, vmmem_registry *reg, const struct vmmem_region_spec *specs,
                     size_t n, const struct vmmem_map_options *opts)
{
    uint64_t page;
    int rc = check_opts(opts, &page);
    if (rc < 0)
        return rc;
    vmmem_map *m = map_alloc(n, page);
    if (m == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct vmmem_region *r = NULL;
        rc = vmmem__region_new(&r, reg, &specs[i], page);
        if (rc < 0)
            goto fail;
        m->slots[m->n++] = slot_of(r);
    }
    qsort(m->slots, m->n, sizeof *m->slots, cmp_slot);
    if ((rc = map_register(m)) < 0)
        goto fail;
    if (opts != NULL && (opts->flags & VMMEM_MAP_DIRTY_TRACKING) &&
        (rc = vmmem_map_set_dirty_tracking(m, true)) < 0)
        goto fail;
    *out = m;
    return 0;
fail:
    map_destroy(m); /* unmaps what was mapped; the error detail is preserved */
    return rc;
}

int vmmem_map_new(vmmem_map **out, vmmem_registry *reg, const struct vmmem_region_spec *specs,
                  size_t n, const struct vmmem_map_options *opts)
{
    if (out == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_new: NULL output pointer");
    int rc = vmmem__validate_specs(reg, specs, n);
    if (rc < 0)
        return rc;
    struct vmmem__cfg_scope sc; /* providers' option errors name the region */
    vmmem__cfg_scope_enter(&sc, NULL, specs, n);
    rc = vmmem__map_build(out, reg, specs, n, opts);
    vmmem__cfg_scope_leave(&sc);
    return rc;
}

int vmmem_map_from_config(vmmem_map **out, vmmem_registry *reg, const char *config,
                          const struct vmmem_map_options *opts)
{
    if (out == NULL || config == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_from_config: NULL argument");
    vmmem_config *cfg;
    int rc = vmmem_config_parse(config, &cfg);
    if (rc < 0)
        return rc;
    rc = vmmem_config_validate(cfg, reg);
    struct vmmem__cfg_scope sc; /* providers' option errors name region and column */
    vmmem__cfg_scope_enter(&sc, cfg, NULL, 0);
    if (rc == 0)
        rc = vmmem__map_build(out, reg, vmmem_config_specs(cfg), vmmem_config_count(cfg), opts);
    vmmem__cfg_scope_leave(&sc);
    vmmem_config_free(cfg);
    return rc;
}

vmmem_map *vmmem_map_ref(vmmem_map *m)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void vmmem_map_unref(vmmem_map *m)
{
    if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        map_destroy(m);
}

/* ---- queries ---- */

size_t vmmem_map_num_regions(const vmmem_map *m)
{
    return m ? m->n : 0;
}

const vmmem_region *vmmem_map_region(const vmmem_map *m, size_t i)
{
    return (m && i < m->n) ? m->slots[i].r : NULL;
}

const vmmem_region *vmmem_map_find(const vmmem_map *m, vmmem_gaddr_t addr, uint64_t *offset)
{
    if (m == NULL)
        return NULL;
    long i = vmmem__find_slot(m, addr);
    if (i < 0)
        return NULL;
    if (offset != NULL)
        *offset = addr - m->slots[i].start;
    return m->slots[i].r;
}

vmmem_gaddr_t vmmem_map_last_addr(const vmmem_map *m)
{
    return (m && m->n) ? m->slots[m->n - 1].last : 0;
}

bool vmmem_map_check_address(const vmmem_map *m, vmmem_gaddr_t addr)
{
    return m != NULL && vmmem__find_slot(m, addr) >= 0;
}

/* The slot of addr when all of [addr, addr+len) (len > 0) is backed by
 * touching regions, else -1. */
static long range_first_slot(const vmmem_map *m, uint64_t addr, uint64_t len)
{
    if (len - 1 > UINT64_MAX - addr)
        return -1;
    uint64_t last = addr + (len - 1);
    long i = vmmem__find_slot(m, addr);
    if (i < 0)
        return -1;
    for (const struct vmmem_slot *s = &m->slots[i]; s->last < last;)
        if ((s = vmmem__next_touching(m, (size_t)(s - m->slots))) == NULL)
            return -1;
    return i;
}

bool vmmem_map_check_range(const vmmem_map *m, vmmem_gaddr_t addr, uint64_t len)
{
    if (m == NULL)
        return false;
    return len == 0 || range_first_slot(m, addr, len) >= 0;
}

int vmmem_map_checked_offset(const vmmem_map *m, vmmem_gaddr_t base, uint64_t off,
                             vmmem_gaddr_t *out)
{
    if (m == NULL || out == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_checked_offset: NULL argument");
    if (off > UINT64_MAX - base)
        return vmmem__err_addr(VMMEM_EOVERFLOW, base, "0x%llx + 0x%llx passes 2^64",
                               (unsigned long long)base, (unsigned long long)off);
    vmmem_gaddr_t a = base + off;
    if (vmmem__find_slot(m, a) < 0)
        return vmmem__err_hole(a);
    *out = a;
    return 0;
}

int vmmem_map_host_address(const vmmem_map *m, vmmem_gaddr_t addr, void **host, size_t *len)
{
    if (m == NULL || host == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_host_address: NULL argument");
    long i = vmmem__find_slot(m, addr);
    if (i < 0)
        return vmmem__err_hole(addr);
    const struct vmmem_slot *s = &m->slots[i];
    if (s->host == NULL)
        return vmmem__err_addr(VMMEM_ENO_HOST_ADDRESS, addr,
                               "guest address 0x%llx is in a map-on-access region (provider "
                               "'%s') with no permanent host address",
                               (unsigned long long)addr, s->r->prov.p->name);
    uint64_t off = addr - s->start;
    if (len != NULL && *len != 0)
        *len = (size_t)vmmem__piece_len(s, addr, *len);
    *host = s->host + off;
    return 0;
}

/* ---- region info ---- */

void vmmem_region_get_info(const vmmem_region *r, struct vmmem_region_info *info)
{
    if (r == NULL || info == NULL)
        return;
    info->start = r->start;
    info->size = r->size;
    info->last = r->last;
    info->provider = r->prov.p->name;
    info->host = r->host;
    info->prot = r->prot;
    info->fd = r->mapping.fd;
    info->file_offset = r->mapping.file_offset;
    info->hugetlbfs = r->mapping.hugetlbfs;
    info->file = r->mapping.file;
    info->spec = &r->spec;
}

vmmem_gaddr_t vmmem_region_start(const vmmem_region *r)
{
    return r ? r->start : 0;
}

uint64_t vmmem_region_size(const vmmem_region *r)
{
    return r ? r->size : 0;
}

/* ---- dirty tracking switch ---- */

/* Switch the regions rs[0..n) on or off: the words first (all or nothing),
 * then the switches, then the flush that makes every write in flight
 * either visible now or marked (internal.h, struct vmmem_bitmap). */
int vmmem__regions_set_tracking(struct vmmem_region *const *rs, size_t n, bool on)
{
    for (size_t i = 0; on && i < n; i++) {
        int rc = vmmem__bitmap_words(rs[i]->bitmap);
        if (rc < 0)
            return rc; /* words already made stay: harmless, nothing switched */
    }
    bool turned_on = false;
    pthread_mutex_lock(&vmmem__track_lock);
    for (size_t i = 0; i < n; i++)
        turned_on |= vmmem__bitmap_set_enabled(rs[i]->bitmap, on);
    pthread_mutex_unlock(&vmmem__track_lock);
    /* Only a switch that turned something on has writes in flight to cover. */
    if (turned_on)
        vmmem__flush_writes();
    return 0;
}

int vmmem_map_set_dirty_tracking(vmmem_map *m, bool on)
{
    if (m == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_set_dirty_tracking: NULL map");
    pthread_mutex_lock(&m->lock);
    struct vmmem_region **rs = malloc((m->n ? m->n : 1) * sizeof *rs);
    int rc = 0;
    if (rs == NULL) {
        rc = vmmem__err(-ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < m->n; i++)
            rs[i] = m->slots[i].r;
        rc = vmmem__regions_set_tracking(rs, m->n, on);
        free(rs);
    }
    if (rc == 0)
        atomic_store_explicit(&m->tracking, on, memory_order_release);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

bool vmmem_map_dirty_tracking(const vmmem_map *m)
{
    if (m == NULL)
        return false;
    if (m->n == 0) /* an empty map of a space: what its regions would get */
        return atomic_load_explicit(&((vmmem_map *)m)->tracking, memory_order_acquire);
    for (size_t i = 0; i < m->n; i++)
        if (!atomic_load_explicit(&m->slots[i].dirty->enabled, memory_order_acquire))
            return false;
    return true;
}

uint64_t vmmem_map_dirty_page_size(const vmmem_map *m)
{
    return m ? m->dirty_page_size : 0;
}

int vmmem_map_mark_dirty(const vmmem_map *m, vmmem_gaddr_t addr, uint64_t len)
{
    if (m == NULL)
        return vmmem__err(-EINVAL, "vmmem_map_mark_dirty: NULL map");
    if (len == 0)
        return 0;
    long i = range_first_slot(m, addr, len);
    if (i < 0)
        return vmmem__err_addr(len - 1 > UINT64_MAX - addr ? VMMEM_EOVERFLOW
                                                            : VMMEM_EINVALID_ADDRESS,
                               addr, "range 0x%llx +0x%llx is not fully backed",
                               (unsigned long long)addr, (unsigned long long)len);
    while (len > 0) {
        const struct vmmem_slot *s = &m->slots[i++];
        uint64_t n = vmmem__piece_len(s, addr, len);
        vmmem__slot_dirty(s, addr - s->start, n);
        len -= n;
        addr += n;
    }
    return 0;
}

bool vmmem_map_is_dirty(const vmmem_map *m, vmmem_gaddr_t addr)
{
    if (m == NULL)
        return false;
    long i = vmmem__find_slot(m, addr);
    if (i < 0)
        return false;
    return vmmem_bitmap_test(m->slots[i].dirty, addr - m->slots[i].start);
}

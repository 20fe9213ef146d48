/*
 * Hot-plug address spaces: readers take reference-counted snapshots of the
 * current map without locking; writers publish new maps.
 *
 * Reclamation is a small userspace RCU with two phases: a reader bumps its
 * counter of the current phase around "load pointer, use it" (a read
 * section) or "load pointer, take a reference" (a snapshot).  A writer swaps
 * the pointer, then flips the phase and waits for the old phase's counters
 * to drain, twice, so that every reader that might have loaded the old
 * pointer is done with it (or holds its reference) before the writer drops
 * the space's own.  Readers never wait; new readers go to the other phase,
 * so writers cannot starve.  The counters are striped: each thread uses the
 * cache line of its own stripe, so readers on different cores share no
 * written line (a writer sums the stripes).
 *
 * Lock order (with vhost.c and the log code in harvest.c): a read section
 * acts as a read lock that writers wait for, so it comes first and no lock
 * a writer holds while waiting may be taken inside one:
 *   [vhost wlock] -> space lock -> registry lock (lookups, released before
 *   the provider's map hook) ; space lock -> map lock -> log_lock;
 *   the space lock is held across the wait for this space's readers, and
 *   log_lock across the wait for the log's markers.
 * Readers take no lock (a vhost translation takes only the vhost table lock,
 * which is never held across a wait).  Every writer call, and every vhost
 * call that takes the vhost wlock, first fails with -EDEADLK when the thread
 * is inside a read section of the same space (vmmem__space_writer_check).
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define STRIPES VMMEM__STRIPES
#define LINE VMMEM__LINE

struct vmmem_space {
    _Atomic(vmmem_map *) cur;
    struct vmmem__gp gp;
    pthread_mutex_t lock; /* serializes writers */
    uint64_t page_size;
    bool tracking;         /* vmmem_space_set_dirty_tracking / the creation option */
    void *stripes_raw; /* holds gp.stripes, aligned */
    struct vmmem_log *log; /* vhost-user log every published map gets (under lock) */
    _Atomic uint64_t generation; /* publications so far (vmmem_space_generation) */
    /* Regions that left the layout while tracked, with the address they had:
     * the next vmmem_space_harvest reports their pages (a reference each). */
    struct vmmem__harvest_src *dep;
    struct vmmem_region **dep_r;
    size_t ndep, capdep;
};

/* This thread's stripe (threads are dealt round the stripes as they come). */
unsigned vmmem__thread_stripe(void)
{
    static _Atomic unsigned next;
    static _Thread_local unsigned mine; /* stripe + 1; 0: not dealt yet */
    if (mine == 0)
        mine = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % STRIPES + 1;
    return mine - 1;
}

static vmmem_map *enter(vmmem_space *s, struct vmmem_read_section *sec)
{
    vmmem__gp_enter(&s->gp, &sec->stripe, &sec->phase);
    return atomic_load(&s->cur);
}

static void leave(vmmem_space *s, const struct vmmem_read_section *sec)
{
    vmmem__gp_leave(&s->gp, sec->stripe, sec->phase);
}

vmmem_map *vmmem_space_snapshot(vmmem_space *s)
{
    if (s == NULL)
        return NULL;
    struct vmmem_read_section sec;
    vmmem_map *m = vmmem_map_ref(enter(s, &sec));
    leave(s, &sec);
    return m;
}

/*
 * Read sections this thread is inside, so that a writer call from inside
 * one fails (-EDEADLK) instead of waiting for itself forever.
 */
#define MAX_NEST 8
static _Thread_local const vmmem_space *in_sections[MAX_NEST];
static _Thread_local unsigned n_sections;

static bool inside(const vmmem_space *s)
{
    for (unsigned i = 0; i < n_sections; i++)
        if (in_sections[i] == s)
            return true;
    return false;
}

static int err_inside(const vmmem_space *s)
{
    return vmmem__err(-EDEADLK,
                      "space %p: a writer call from inside a read section of the same space "
                      "would wait for itself; end the section first",
                      (const void *)s);
}

int vmmem__space_writer_check(const vmmem_space *s)
{
    return s != NULL && inside(s) ? err_inside(s) : 0;
}

const vmmem_map *vmmem_space_read_begin(vmmem_space *s, struct vmmem_read_section *sec)
{
    if (sec != NULL)
        sec->space = NULL; /* a failed begin leaves nothing for read_end to undo */
    if (s == NULL || sec == NULL) {
        vmmem__err(-EINVAL, "vmmem_space_read_begin: NULL space or section");
        return NULL;
    }
    if (n_sections == MAX_NEST) {
        vmmem__err(-EMLINK, "more than %d nested read sections in one thread", MAX_NEST);
        return NULL;
    }
    in_sections[n_sections++] = s;
    sec->space = s;
    sec->owner = &n_sections; /* this thread's, to tell a wrong-thread end */
    return enter(s, sec);
}

void vmmem_space_read_end(struct vmmem_read_section *sec)
{
    if (sec == NULL || sec->space == NULL)
        return;
    vmmem_space *s = sec->space;
    /* Forget the innermost entry of this space (sections may end out of order).
     * Ended by another thread (a misuse): that thread's own list is left
     * alone, and the counters are still right. */
    for (unsigned i = n_sections; sec->owner == &n_sections && i-- > 0;)
        if (in_sections[i] == s) {
            memmove(&in_sections[i], &in_sections[i + 1],
                    (n_sections - i - 1) * sizeof in_sections[0]);
            n_sections--;
            break;
        }
    leave(s, sec);
    sec->space = NULL;
}

/* Twice: flip the phase, then wait for the old phase's counters to drain
 * (the second round catches readers that read the phase before the first
 * flip and counted in the other one). */
void vmmem__gp_wait(struct vmmem__gp *g)
{
    for (int round = 0; round < 2; round++) {
        unsigned old = atomic_fetch_add(&g->phase, 1) & 1;
        for (unsigned k = 0; k < STRIPES; k++)
            while (atomic_load(&g->stripes[k].n[old]) != 0)
                sched_yield();
    }
}

static bool has_region(const vmmem_map *m, const struct vmmem_region *r)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->slots[i].r == r)
            return true;
    return false;
}

static bool has_bitmap(const vmmem_map *m, const vmmem_bitmap *b)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->slots[i].dirty == b)
            return true;
    return false;
}

static bool space_tracking(const vmmem_space *s)
{
    return s->tracking || vmmem_map_dirty_tracking(atomic_load(&((vmmem_space *)s)->cur));
}

static void drop_departed(vmmem_space *s)
{
    for (size_t i = 0; i < s->ndep; i++)
        vmmem__region_unref(s->dep_r[i]);
    s->ndep = 0;
}

/*
 * Publish m (consumes the caller's reference on success). Called with the
 * lock held.  While the space tracks dirty pages, the regions entering the
 * layout (added, replacing, or re-based to a new address) are switched on
 * and marked whole - the destination of a migration has nothing at their
 * address yet - and the regions leaving it are kept until the next space
 * harvest reports what they had dirty.  -ENOMEM before anything changed.
 */
static int publish_locked(vmmem_space *s, vmmem_map *m)
{
    vmmem_map *old = atomic_load(&s->cur);
    bool on = space_tracking(s);
    if (on) {
        size_t leaving = 0;
        for (size_t i = 0; i < old->n; i++)
            leaving += !has_bitmap(m, old->slots[i].dirty);
        if (s->ndep + leaving > s->capdep) {
            size_t cap = (s->ndep + leaving) * 2;
            struct vmmem__harvest_src *d = realloc(s->dep, cap * sizeof *d);
            if (d != NULL)
                s->dep = d;
            struct vmmem_region **dr = d ? realloc(s->dep_r, cap * sizeof *dr) : NULL;
            if (dr == NULL)
                return vmmem__err(-ENOMEM, "out of memory");
            s->dep_r = dr;
            s->capdep = cap;
        }
        for (size_t i = 0; i < m->n; i++) {
            int rc = vmmem__bitmap_words(m->slots[i].dirty);
            if (rc < 0)
                return rc;
        }
        bool turned_on = false;
        pthread_mutex_lock(&vmmem__track_lock);
        for (size_t i = 0; i < m->n; i++) {
            struct vmmem_region *r = m->slots[i].r;
            if (has_region(old, r))
                continue;
            atomic_store(&r->bitmap->gpa, r->start); /* the log marks where it is now */
            turned_on |= vmmem__bitmap_set_enabled(r->bitmap, true);
            vmmem__bitmap_mark_all(r->bitmap);
        }
        pthread_mutex_unlock(&vmmem__track_lock);
        if (turned_on) /* a published map's regions may be written through other maps */
            vmmem__flush_writes();
        for (size_t i = 0; i < old->n; i++) {
            if (has_bitmap(m, old->slots[i].dirty))
                continue;
            vmmem__region_ref(old->slots[i].r);
            s->dep_r[s->ndep] = old->slots[i].r;
            s->dep[s->ndep++] = (struct vmmem__harvest_src){
                old->slots[i].start, old->slots[i].r->size, old->slots[i].dirty};
        }
        atomic_store(&m->tracking, true);
    } else {
        for (size_t i = 0; i < m->n; i++) /* a re-based region's log marks where it is now */
            if (!has_region(old, m->slots[i].r))
                atomic_store(&m->slots[i].dirty->gpa, m->slots[i].r->start);
    }
    atomic_exchange(&s->cur, m);
    /* After the swap: whoever sees the new number also sees the new map. */
    atomic_fetch_add_explicit(&s->generation, 1, memory_order_release);
    vmmem__gp_wait(&s->gp);
    vmmem_map_unref(old);
    return 0;
}

int vmmem_space_set_dirty_tracking(vmmem_space *s, bool on)
{
    if (s == NULL)
        return vmmem__err(-EINVAL, "vmmem_space_set_dirty_tracking: NULL space");
    pthread_mutex_lock(&s->lock);
    int rc = vmmem_map_set_dirty_tracking(atomic_load(&s->cur), on);
    if (rc == 0) {
        s->tracking = on;
        if (!on)
            drop_departed(s);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

bool vmmem_space_dirty_tracking(vmmem_space *s)
{
    if (s == NULL)
        return false;
    pthread_mutex_lock(&s->lock);
    bool on = space_tracking(s);
    pthread_mutex_unlock(&s->lock);
    return on;
}

int64_t vmmem_space_harvest(vmmem_space *s, vmmem_harvest *h, vmmem_map **map)
{
    if (map != NULL)
        *map = NULL;
    if (s == NULL || h == NULL)
        return vmmem__err(-EINVAL, "vmmem_space_harvest: NULL argument");
    pthread_mutex_lock(&s->lock);
    vmmem_map *m = vmmem_map_ref(atomic_load(&s->cur));
    size_t total = m->n + s->ndep;
    struct vmmem__harvest_src *e = malloc((total ? total : 1) * sizeof *e);
    int64_t rc;
    if (e == NULL) {
        rc = vmmem__err(-ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < m->n; i++)
            e[i] = (struct vmmem__harvest_src){m->slots[i].start, m->slots[i].r->size,
                                                m->slots[i].dirty};
        if (s->ndep != 0) /* s->dep may be NULL */
            memcpy(e + m->n, s->dep, s->ndep * sizeof *e);
        rc = vmmem__harvest_fit(h, e, m->n, s->ndep, s->page_size);
    }
    if (rc == 0) {
        /* Under the lock: a region leaving now goes to the next harvest. */
        rc = vmmem__harvest_take(h, e);
        drop_departed(s);
    }
    pthread_mutex_unlock(&s->lock);
    free(e);
    if (rc >= 0 && map != NULL)
        *map = m;
    else
        vmmem_map_unref(m);
    return rc;
}

int vmmem_space_new(vmmem_space **out, vmmem_map *initial, const struct vmmem_map_options *opts)
{
    if (out == NULL)
        return vmmem__err(-EINVAL, "vmmem_space_new: NULL output pointer");
    uint64_t page = initial ? initial->dirty_page_size : 4096;
    bool tracking = false;
    if (opts != NULL) {
        if (opts->struct_size < sizeof *opts)
            return vmmem__err(-EINVAL, "space options: struct_size too small");
        if (opts->flags & ~VMMEM_MAP_DIRTY_TRACKING)
            return vmmem__err(-EINVAL, "space options: unknown flags 0x%x", opts->flags);
        if (opts->dirty_page_size != 0) {
            if (opts->dirty_page_size & (opts->dirty_page_size - 1))
                return vmmem__err(-EINVAL, "space options: dirty page size is not a power of two");
            if (initial != NULL && opts->dirty_page_size != initial->dirty_page_size)
                return vmmem__err(-EINVAL,
                                  "space options: dirty page size %llu differs from the initial "
                                  "map's %llu",
                                  (unsigned long long)opts->dirty_page_size,
                                  (unsigned long long)initial->dirty_page_size);
            page = opts->dirty_page_size;
        }
        tracking = (opts->flags & VMMEM_MAP_DIRTY_TRACKING) != 0;
    }
    vmmem_space *s = calloc(1, sizeof *s);
    if (s == NULL || (s->stripes_raw = calloc(STRIPES + 1, LINE)) == NULL) {
        free(s);
        return vmmem__err(-ENOMEM, "out of memory");
    }
    s->gp.stripes =
        (struct vmmem__stripe *)(((uintptr_t)s->stripes_raw + LINE - 1) & ~(uintptr_t)(LINE - 1));
    s->page_size = page;
    s->tracking = tracking;
    vmmem_map *m = initial ? vmmem_map_ref(initial) : NULL;
    int rc = 0;
    if (m == NULL)
        rc = vmmem__map_from_regions(&m, NULL, 0, page, tracking);
    else if (tracking)
        rc = vmmem_map_set_dirty_tracking(m, true);
    if (rc < 0) {
        vmmem_map_unref(m);
        free(s->stripes_raw);
        free(s);
        return rc;
    }
    atomic_init(&s->cur, m);
    atomic_init(&s->generation, 0);
    atomic_init(&s->gp.phase, 0);
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

void vmmem_space_free(vmmem_space *s)
{
    if (s == NULL)
        return;
    vmmem_map_unref(atomic_load(&s->cur));
    drop_departed(s);
    free(s->dep);
    free(s->dep_r);
    vmmem__log_unref(s->log);
    pthread_mutex_destroy(&s->lock);
    free(s->stripes_raw);
    free(s);
}

/* Index of the region of exactly [base, base+size) in m, or -1. */
static long find_exact(const vmmem_map *m, uint64_t base, uint64_t size)
{
    long i = vmmem__find_slot(m, base);
    if (i >= 0 && m->slots[i].start == base && m->slots[i].r->size == size)
        return i;
    return -1;
}

static int err_no_region(uint64_t base, uint64_t size)
{
    return vmmem__err_addr(VMMEM_EINVALID_ADDRESS, base,
                           "no region of exactly [0x%llx, +0x%llx) is published",
                           (unsigned long long)base, (unsigned long long)size);
}

/*
 * Build and publish: the current regions minus index skip (or -1), plus add
 * (or NULL).  Consumes nothing; on failure the published map is unchanged.
 */
static int rebuild_locked(vmmem_space *s, long skip, struct vmmem_region *add)
{
    vmmem_map *cur = atomic_load(&s->cur);
    struct vmmem_region **rs = malloc((cur->n + 1) * sizeof *rs);
    if (rs == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < cur->n; i++)
        if ((long)i != skip)
            rs[n++] = cur->slots[i].r;
    if (add != NULL)
        rs[n++] = add;
    vmmem_map *m;
    /* Tracking of the regions entering: publish_locked. */
    int rc = vmmem__map_from_regions(&m, rs, n, s->page_size, false);
    free(rs);
    if (rc < 0)
        return rc;
    /* The space's vhost-user log goes on marking, new regions included. */
    if ((s->log != NULL && (rc = vmmem__map_set_log(m, vmmem__log_ref(s->log))) < 0) ||
        (rc = publish_locked(s, m)) < 0) {
        vmmem_map_unref(m);
        return rc;
    }
    return 0;
}

/* Overlap of [a, a+size) with any region of cur except skip. */
static int check_free(const vmmem_map *cur, uint64_t a, uint64_t size, long skip)
{
    uint64_t last = a + (size - 1);
    for (size_t i = 0; i < cur->n; i++)
        if ((long)i != skip && cur->slots[i].start <= last && a <= cur->slots[i].last)
            return vmmem__err_addr(VMMEM_EOVERLAP, a,
                                   "region [0x%llx, 0x%llx] overlaps published region "
                                   "[0x%llx, 0x%llx]",
                                   (unsigned long long)a, (unsigned long long)last,
                                   (unsigned long long)cur->slots[i].start,
                                   (unsigned long long)cur->slots[i].last);
    return 0;
}

static int add_or_replace(vmmem_space *s, long skip_needed, uint64_t base, uint64_t size,
                          vmmem_registry *reg, const struct vmmem_region_spec *spec)
{
    if (s == NULL || spec == NULL)
        return vmmem__err(-EINVAL, "NULL space or spec");
    if (inside(s))
        return err_inside(s);
    int rc = vmmem__validate_specs(reg, spec, 1);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    vmmem_map *cur = atomic_load(&s->cur);
    long skip = -1;
    if (skip_needed && (skip = find_exact(cur, base, size)) < 0) {
        rc = err_no_region(base, size);
        goto out;
    }
    /* Check before mapping anything. */
    if ((rc = check_free(cur, spec->addr, spec->size, skip)) < 0)
        goto out;
    struct vmmem_region *r;
    if ((rc = vmmem__region_new(&r, reg, spec, s->page_size)) < 0)
        goto out;
    rc = rebuild_locked(s, skip, r);
    vmmem__region_unref(r); /* the new map holds it, or it is unmapped now */
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int vmmem_space_add(vmmem_space *s, vmmem_registry *reg, const struct vmmem_region_spec *spec)
{
    return add_or_replace(s, 0, 0, 0, reg, spec);
}

int vmmem_space_replace(vmmem_space *s, vmmem_gaddr_t base, uint64_t size, vmmem_registry *reg,
                        const struct vmmem_region_spec *spec)
{
    return add_or_replace(s, 1, base, size, reg, spec);
}

int vmmem_space_remove(vmmem_space *s, vmmem_gaddr_t base, uint64_t size)
{
    if (s == NULL)
        return vmmem__err(-EINVAL, "NULL space");
    if (inside(s))
        return err_inside(s);
    pthread_mutex_lock(&s->lock);
    long i = find_exact(atomic_load(&s->cur), base, size);
    int rc = i < 0 ? err_no_region(base, size) : rebuild_locked(s, i, NULL);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int vmmem_space_rebase(vmmem_space *s, vmmem_gaddr_t base, uint64_t size, vmmem_gaddr_t new_base)
{
    if (s == NULL)
        return vmmem__err(-EINVAL, "NULL space");
    if (inside(s))
        return err_inside(s);
    pthread_mutex_lock(&s->lock);
    vmmem_map *cur = atomic_load(&s->cur);
    long i = find_exact(cur, base, size);
    int rc;
    struct vmmem_region *alias = NULL;
    if (i < 0)
        rc = err_no_region(base, size);
    else if ((rc = vmmem__region_alias(&alias, cur->slots[i].r, new_base)) == 0 &&
             (rc = check_free(cur, new_base, size, i)) == 0)
        rc = rebuild_locked(s, i, alias);
    if (alias != NULL)
        vmmem__region_unref(alias);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int vmmem_space_publish(vmmem_space *s, vmmem_map *m)
{
    if (s == NULL || m == NULL)
        return vmmem__err(-EINVAL, "NULL space or map");
    if (inside(s))
        return err_inside(s);
    if (m->dirty_page_size != s->page_size)
        return vmmem__err(-EINVAL,
                          "cannot publish a map with dirty page size %llu in a space of %llu "
                          "(pages of one region would be counted two ways)",
                          (unsigned long long)m->dirty_page_size,
                          (unsigned long long)s->page_size);
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (s->log != NULL)
        rc = vmmem__map_set_log(m, vmmem__log_ref(s->log));
    if (rc == 0 && (rc = publish_locked(s, vmmem_map_ref(m))) < 0)
        vmmem_map_unref(m);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int vmmem_space_attach_log(vmmem_space *s, int fd, uint64_t offset, uint64_t size)
{
    if (s == NULL)
        return vmmem__err(-EINVAL, "vmmem_space_attach_log: NULL space");
    /* Under the writers' lock: no publication can slip in between. */
    if (inside(s))
        return err_inside(s);
    pthread_mutex_lock(&s->lock);
    vmmem_map *cur = atomic_load(&s->cur);
    int rc = vmmem_map_attach_log(cur, fd, offset, size);
    if (rc == 0) {
        vmmem__log_unref(s->log);
        s->log = vmmem__map_log_get(cur);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int vmmem_space_detach_log(vmmem_space *s)
{
    if (s == NULL)
        return vmmem__err(-EINVAL, "vmmem_space_detach_log: NULL space");
    if (inside(s))
        return err_inside(s);
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (s->log == NULL)
        rc = vmmem__err(-ENOENT, "no vhost-user log is attached to the space");
    else
        (void)vmmem_map_detach_log(atomic_load(&s->cur)); /* the space's log was on it */
    vmmem__log_unref(s->log);
    s->log = NULL;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

uint64_t vmmem_space_generation(const vmmem_space *s)
{
    return s ? atomic_load_explicit(&((vmmem_space *)s)->generation, memory_order_acquire) : 0;
}

/* add/replace from a config string of one region: its errors (and the
 * provider's option errors) carry the column in that string. */
static int with_config(vmmem_space *s, long replace, uint64_t base, uint64_t size,
                       vmmem_registry *reg, const char *config)
{
    if (s == NULL || config == NULL)
        return vmmem__err(-EINVAL, "NULL space or config");
    vmmem_config *cfg;
    int rc = vmmem_config_parse(config, &cfg);
    if (rc < 0)
        return rc;
    if (vmmem_config_count(cfg) != 1)
        rc = vmmem__err(-EINVAL, "'%s' has %zu regions; the space takes one per call", config,
                        vmmem_config_count(cfg));
    else if ((rc = vmmem_config_validate(cfg, reg)) == 0) {
        struct vmmem__cfg_scope sc;
        vmmem__cfg_scope_enter(&sc, cfg, NULL, 0);
        rc = add_or_replace(s, replace, base, size, reg, vmmem_config_specs(cfg));
        vmmem__cfg_scope_leave(&sc);
    }
    vmmem_config_free(cfg);
    return rc;
}

int vmmem_space_add_config(vmmem_space *s, vmmem_registry *reg, const char *config)
{
    return with_config(s, 0, 0, 0, reg, config);
}

int vmmem_space_replace_config(vmmem_space *s, vmmem_gaddr_t base, uint64_t size,
                               vmmem_registry *reg, const char *config)
{
    return with_config(s, 1, base, size, reg, config);
}

/*
 * vhost-user memory tables -> hot-pluggable guest memory (see vhost.h).
 * Uses the public API; internal.h only for the error helpers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/internal.h"

struct entry {
    struct vmmem_vhost_region r;
};

/*
 * Two locks, so that no lock a reader may take is held while a publication
 * waits for readers (a device thread inside a read section translating a
 * ring address would otherwise deadlock with SET_MEM_TABLE):
 *   wlock - serializes table changes (held across the publication);
 *   lock  - guards t and n, held only to read them or swap them.
 * A writer reads t under wlock alone: only writers change it.
 *
 * Lock order (see also space.c and harvest.c):
 *   read section of the space -> lock            (translations)
 *   wlock -> space lock -> map lock -> log_lock  (table changes)
 *   wlock -> lock                                (the swap after publishing)
 * wlock is held while the space waits for its readers, so a thread inside a
 * read section must never wait for wlock: set_mem_table, add_region and
 * remove_region fail with -EDEADLK from inside one before taking it
 * (vmmem__space_writer_check), as the space's own writers do.  Nothing is
 * taken under lock, and lock is never held across a wait.  The log calls
 * (set_log_base, clear_log) take only the space's lock, with the same check.
 */
struct vmmem_vhost {
    pthread_mutex_t wlock;
    pthread_mutex_t lock;
    vmmem_registry *reg;
    vmmem_space *space;
    size_t max;
    struct entry *t;
    size_t n;
    struct vmmem_map_options opts; /* applied to every map it builds */
    bool have_opts;
};

int vmmem_vhost_new(vmmem_vhost **out, vmmem_registry *reg, size_t max_regions,
                    const struct vmmem_map_options *opts)
{
    if (out == NULL)
        return vmmem__err(-EINVAL, "vmmem_vhost_new: NULL output pointer");
    vmmem_vhost *v = calloc(1, sizeof *v);
    if (v == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    int rc = vmmem_space_new(&v->space, NULL, opts);
    if (rc < 0) {
        free(v);
        return rc;
    }
    pthread_mutex_init(&v->lock, NULL);
    pthread_mutex_init(&v->wlock, NULL);
    if (opts != NULL) {
        v->opts = *opts;
        v->opts.struct_size = sizeof v->opts;
        v->have_opts = true;
    }
    v->reg = reg;
    v->max = max_regions ? max_regions : VMMEM_VHOST_DEFAULT_MAX_REGIONS;
    *out = v;
    return 0;
}

void vmmem_vhost_free(vmmem_vhost *v)
{
    if (v == NULL)
        return;
    vmmem_space_free(v->space);
    pthread_mutex_destroy(&v->lock);
    pthread_mutex_destroy(&v->wlock);
    free(v->t);
    free(v);
}

vmmem_space *vmmem_vhost_space(vmmem_vhost *v)
{
    return v ? v->space : NULL;
}

vmmem_map *vmmem_vhost_snapshot(vmmem_vhost *v)
{
    return v ? vmmem_space_snapshot(v->space) : NULL;
}

int vmmem_vhost_set_log_base(vmmem_vhost *v, int fd, uint64_t mmap_offset, uint64_t mmap_size)
{
    if (v == NULL)
        return vmmem__err(-EINVAL, "vmmem_vhost_set_log_base: NULL handle");
    return vmmem_space_attach_log(v->space, fd, mmap_offset, mmap_size);
}

int vmmem_vhost_clear_log(vmmem_vhost *v)
{
    if (v == NULL)
        return vmmem__err(-EINVAL, "vmmem_vhost_clear_log: NULL handle");
    return vmmem_space_detach_log(v->space);
}

size_t vmmem_vhost_num_regions(vmmem_vhost *v)
{
    if (v == NULL)
        return 0;
    pthread_mutex_lock(&v->lock);
    size_t n = v->n;
    pthread_mutex_unlock(&v->lock);
    return n;
}

static bool is_xen(const struct vmmem_vhost_region *r)
{
    return r->xen_mmap_flags != VMMEM_XEN_UNIX;
}

/* Checks of one region on its own. */
static int check_one(const struct vmmem_vhost_region *r, size_t i)
{
    uint64_t sz = r->memory_size;
    if (sz == 0)
        return vmmem__err_addr(VMMEM_EZERO_SIZE, r->guest_phys_addr,
                               "vhost-user region %zu (gpa 0x%" PRIx64 ") has size 0", i,
                               r->guest_phys_addr);
    if (sz - 1 > UINT64_MAX - r->guest_phys_addr || sz - 1 > UINT64_MAX - r->userspace_addr ||
        sz - 1 > UINT64_MAX - r->mmap_offset)
        return vmmem__err_addr(VMMEM_EOVERFLOW, r->guest_phys_addr,
                               "vhost-user region %zu: gpa 0x%" PRIx64 ", user address 0x%" PRIx64
                               " or offset 0x%" PRIx64 " + size 0x%" PRIx64 " passes 2^64",
                               i, r->guest_phys_addr, r->userspace_addr, r->mmap_offset, sz);
    if (r->fd < 0)
        return vmmem__err(-EBADF, "vhost-user region %zu: fd %d is not a descriptor", i, r->fd);
    uint32_t f = r->xen_mmap_flags;
    if (f != VMMEM_XEN_UNIX && f != VMMEM_XEN_FOREIGN && f != VMMEM_XEN_GRANT &&
        f != (VMMEM_XEN_GRANT | VMMEM_XEN_NO_ADVANCE_MAP))
        return vmmem__err(VMMEM_EBAD_VALUE,
                          "vhost-user region %zu: Xen mmap flags 0x%" PRIx32
                          " are not valid (0, 0x1, 0x2 or 0xa)",
                          i, f);
    if (is_xen(r) && r->mmap_offset != 0)
        return vmmem__err(VMMEM_EBAD_VALUE,
                          "vhost-user region %zu: a Xen region needs mmap offset 0, got 0x%" PRIx64,
                          i, r->mmap_offset);
    uint64_t ps = vmmem__host()->page_size;
    if ((r->mmap_offset & (ps - 1)) != 0)
        return vmmem__err(VMMEM_EBAD_VALUE,
                          "vhost-user region %zu: mmap offset 0x%" PRIx64 " is not page-aligned",
                          i, r->mmap_offset);
    struct stat st;
    if (fstat(r->fd, &st) != 0)
        return vmmem__err(-errno, "vhost-user region %zu: fd %d: %s", i, r->fd, strerror(errno));
    if (!is_xen(r) && S_ISREG(st.st_mode) &&
        (r->mmap_offset > (uint64_t)st.st_size || sz > (uint64_t)st.st_size - r->mmap_offset))
        return vmmem__err(-ERANGE,
                          "vhost-user region %zu: offset 0x%" PRIx64 " + size 0x%" PRIx64
                          " is past the end of fd %d (0x%llx bytes)",
                          i, r->mmap_offset, sz, r->fd, (unsigned long long)st.st_size);
    return 0;
}

static bool ranges_meet(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a <= b + (blen - 1) && b <= a + (alen - 1);
}

/* Pairwise overlap of guest and (non-Xen) user ranges of x against y. */
static int check_pair(const struct vmmem_vhost_region *x, size_t i,
                      const struct vmmem_vhost_region *y, size_t j)
{
    if (ranges_meet(x->guest_phys_addr, x->memory_size, y->guest_phys_addr, y->memory_size))
        return vmmem__err_addr(VMMEM_EOVERLAP, x->guest_phys_addr,
                               "vhost-user region %zu [gpa 0x%" PRIx64 ", +0x%" PRIx64
                               ") overlaps region %zu [gpa 0x%" PRIx64 ", +0x%" PRIx64 ")",
                               i, x->guest_phys_addr, x->memory_size, j, y->guest_phys_addr,
                               y->memory_size);
    if (!is_xen(x) && !is_xen(y) &&
        ranges_meet(x->userspace_addr, x->memory_size, y->userspace_addr, y->memory_size))
        return vmmem__err_addr(VMMEM_EOVERLAP, x->guest_phys_addr,
                               "vhost-user region %zu: user addresses [0x%" PRIx64 ", +0x%" PRIx64
                               ") overlap region %zu's",
                               i, x->userspace_addr, x->memory_size, j);
    return 0;
}

/* Storage for one spec's option strings. */
struct spec_buf {
    struct vmmem_option opts[4];
    char fd[24], off[24], domid[24], flags[24];
};

static void make_spec(const struct vmmem_vhost_region *r, struct vmmem_region_spec *s,
                      struct spec_buf *b)
{
    memset(s, 0, sizeof *s);
    s->addr = r->guest_phys_addr;
    s->size = r->memory_size;
    snprintf(b->fd, sizeof b->fd, "%d", r->fd);
    if (!is_xen(r)) {
        snprintf(b->off, sizeof b->off, "0x%" PRIx64, r->mmap_offset);
        s->provider = "file";
        b->opts[0] = (struct vmmem_option){"fd", b->fd};
        b->opts[1] = (struct vmmem_option){"offset", b->off};
        b->opts[2] = (struct vmmem_option){"shared", ""};
        s->n_options = 3;
    } else {
        snprintf(b->domid, sizeof b->domid, "%" PRIu32, r->xen_mmap_data);
        snprintf(b->flags, sizeof b->flags, "0x%" PRIx32, r->xen_mmap_flags);
        s->provider = r->xen_mmap_flags == VMMEM_XEN_FOREIGN ? "xen-foreign" : "xen-grant";
        b->opts[0] = (struct vmmem_option){"fd", b->fd};
        b->opts[1] = (struct vmmem_option){"domid", b->domid};
        b->opts[2] = (struct vmmem_option){"flags", b->flags};
        s->n_options = 3;
    }
    s->options = b->opts;
}

int vmmem_vhost_set_mem_table(vmmem_vhost *v, const struct vmmem_vhost_region *t, size_t n)
{
    if (v == NULL || (n > 0 && t == NULL))
        return vmmem__err(-EINVAL, "vmmem_vhost_set_mem_table: NULL argument");
    if (n > v->max)
        return vmmem__err(-E2BIG, "vhost-user memory table has %zu regions; the limit is %zu", n,
                          v->max);
    for (size_t i = 0; i < n; i++) {
        int rc = check_one(&t[i], i);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if ((rc = check_pair(&t[i], i, &t[j], j)) < 0)
                return rc;
    }
    struct entry *nt = calloc(n ? n : 1, sizeof *nt);
    struct vmmem_region_spec *specs = calloc(n ? n : 1, sizeof *specs);
    struct spec_buf *bufs = calloc(n ? n : 1, sizeof *bufs);
    int rc = 0;
    if (nt == NULL || specs == NULL || bufs == NULL) {
        rc = vmmem__err(-ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        nt[i].r = t[i];
        make_spec(&t[i], &specs[i], &bufs[i]);
    }
    vmmem_map *m = NULL;
    if ((rc = vmmem__space_writer_check(v->space)) < 0)
        goto out;
    pthread_mutex_lock(&v->wlock);
    const struct vmmem_map_options *o = v->have_opts ? &v->opts : NULL;
    if (n > 0) {
        rc = vmmem_map_new(&m, v->reg, specs, n, o);
    } else {
        /* An empty table: publish an empty map in one step. */
        uint64_t page = o && o->dirty_page_size ? o->dirty_page_size : 4096;
        rc = vmmem__map_from_regions(&m, NULL, 0, page,
                                     o && (o->flags & VMMEM_MAP_DIRTY_TRACKING));
    }
    if (rc == 0) {
        rc = vmmem_space_publish(v->space, m);
        vmmem_map_unref(m);
        if (rc == 0) {
            pthread_mutex_lock(&v->lock);
            struct entry *old = v->t;
            v->t = nt;
            v->n = n;
            pthread_mutex_unlock(&v->lock);
            nt = old; /* freed below */
        }
    }
    pthread_mutex_unlock(&v->wlock);
out:
    free(nt);
    free(specs);
    free(bufs);
    return rc;
}

int vmmem_vhost_add_region(vmmem_vhost *v, const struct vmmem_vhost_region *r)
{
    if (v == NULL || r == NULL)
        return vmmem__err(-EINVAL, "vmmem_vhost_add_region: NULL argument");
    int rc = check_one(r, 0);
    if (rc < 0 || (rc = vmmem__space_writer_check(v->space)) < 0)
        return rc;
    pthread_mutex_lock(&v->wlock);
    struct entry *nt = NULL;
    if (v->n + 1 > v->max) {
        rc = vmmem__err(-E2BIG, "vhost-user: already %zu regions; the limit is %zu", v->n, v->max);
        goto out;
    }
    for (size_t j = 0; j < v->n; j++)
        if ((rc = check_pair(r, v->n, &v->t[j].r, j)) < 0)
            goto out;
    if ((nt = malloc((v->n + 1) * sizeof *nt)) == NULL) {
        rc = vmmem__err(-ENOMEM, "out of memory");
        goto out;
    }
    if (v->n > 0)
        memcpy(nt, v->t, v->n * sizeof *nt);
    nt[v->n].r = *r;
    struct vmmem_region_spec spec;
    struct spec_buf buf;
    make_spec(r, &spec, &buf);
    rc = vmmem_space_add(v->space, v->reg, &spec);
    if (rc == 0) {
        pthread_mutex_lock(&v->lock);
        struct entry *old = v->t;
        v->t = nt;
        v->n++;
        pthread_mutex_unlock(&v->lock);
        nt = old; /* freed below */
    }
out:
    pthread_mutex_unlock(&v->wlock);
    free(nt);
    return rc;
}

int vmmem_vhost_remove_region(vmmem_vhost *v, const struct vmmem_vhost_region *r)
{
    if (v == NULL || r == NULL)
        return vmmem__err(-EINVAL, "vmmem_vhost_remove_region: NULL argument");
    int rc = vmmem__space_writer_check(v->space);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&v->wlock);
    size_t i;
    for (i = 0; i < v->n; i++) {
        const struct vmmem_vhost_region *e = &v->t[i].r;
        if (e->guest_phys_addr == r->guest_phys_addr && e->memory_size == r->memory_size &&
            e->userspace_addr == r->userspace_addr)
            break;
    }
    if (i == v->n) {
        rc = vmmem__err_addr(VMMEM_EINVALID_ADDRESS, r->guest_phys_addr,
                             "vhost-user: no region [gpa 0x%" PRIx64 ", +0x%" PRIx64
                             ") with user address 0x%" PRIx64,
                             r->guest_phys_addr, r->memory_size, r->userspace_addr);
    } else if ((rc = vmmem_space_remove(v->space, r->guest_phys_addr, r->memory_size)) == 0) {
        pthread_mutex_lock(&v->lock);
        v->t[i] = v->t[--v->n];
        pthread_mutex_unlock(&v->lock);
    }
    pthread_mutex_unlock(&v->wlock);
    return rc;
}

int vmmem_vhost_uaddr_to_gpa(vmmem_vhost *v, uint64_t uaddr, vmmem_gaddr_t *gpa, uint64_t *len)
{
    if (v == NULL || gpa == NULL)
        return vmmem__err(-EINVAL, "vmmem_vhost_uaddr_to_gpa: NULL argument");
    int rc = VMMEM_EINVALID_ADDRESS;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->n; i++) {
        const struct vmmem_vhost_region *e = &v->t[i].r;
        if (is_xen(e) || uaddr < e->userspace_addr ||
            uaddr - e->userspace_addr > e->memory_size - 1)
            continue;
        uint64_t off = uaddr - e->userspace_addr;
        *gpa = e->guest_phys_addr + off;
        if (len != NULL && *len > e->memory_size - off)
            *len = e->memory_size - off;
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&v->lock);
    if (rc < 0) /* a success leaves the caller's error detail alone */
        vmmem__err_addr(rc, uaddr,
                        "front-end user address 0x%" PRIx64 " is in no vhost-user region", uaddr);
    return rc;
}

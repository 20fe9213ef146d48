/*
 * IOMMU translation: an IOTLB (sorted, non-overlapping IOVA ranges with a
 * translation and permissions) and the access API over IOVAs, walking the
 * physical map piece by piece.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct entry {
    uint64_t iova, last;
    uint64_t delta; /* target - iova (mod 2^64): equal deltas = one translation */
    int perm;
};

struct vmmem_iotlb {
    pthread_rwlock_t lock;
    struct entry *e;
    size_t n, cap;
};

int vmmem_iotlb_new(vmmem_iotlb **out)
{
    if (out == NULL)
        return vmmem__err(-EINVAL, "vmmem_iotlb_new: NULL output pointer");
    vmmem_iotlb *t = calloc(1, sizeof *t);
    if (t == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    pthread_rwlock_init(&t->lock, NULL);
    *out = t;
    return 0;
}

void vmmem_iotlb_free(vmmem_iotlb *t)
{
    if (t == NULL)
        return;
    pthread_rwlock_destroy(&t->lock);
    free(t->e);
    free(t);
}

size_t vmmem_iotlb_count(const vmmem_iotlb *t)
{
    if (t == NULL)
        return 0;
    pthread_rwlock_rdlock(&((vmmem_iotlb *)t)->lock);
    size_t n = t->n;
    pthread_rwlock_unlock(&((vmmem_iotlb *)t)->lock);
    return n;
}

static int reserve(vmmem_iotlb *t, size_t need)
{
    if (need <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 16;
    while (cap < need)
        cap *= 2;
    struct entry *e = realloc(t->e, cap * sizeof *e);
    if (e == NULL)
        return vmmem__err(-ENOMEM, "out of memory for the IOTLB");
    t->e = e;
    t->cap = cap;
    return 0;
}

/* First entry whose last >= iova. */
static size_t first_at(const vmmem_iotlb *t, uint64_t iova)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->e[mid].last < iova)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Remove [iova, last] from the table (needs room for one split). */
static void cut_locked(vmmem_iotlb *t, uint64_t iova, uint64_t last)
{
    size_t i = first_at(t, iova);
    while (i < t->n && t->e[i].iova <= last) {
        struct entry *e = &t->e[i];
        if (e->iova < iova && e->last > last) { /* split in two around the hole */
            memmove(&t->e[i + 2], &t->e[i + 1], (t->n - i - 1) * sizeof *e);
            t->e[i + 1] = (struct entry){last + 1, e->last, e->delta, e->perm};
            e->last = iova - 1;
            t->n++;
            return;
        }
        if (e->iova < iova) { /* keep the head */
            e->last = iova - 1;
            i++;
        } else if (e->last > last) { /* keep the tail */
            e->iova = last + 1;
            return;
        } else { /* fully inside: drop */
            memmove(e, e + 1, (t->n - i - 1) * sizeof *e);
            t->n--;
        }
    }
}

static int check_len(uint64_t iova, uint64_t len)
{
    if (len - 1 > UINT64_MAX - iova)
        return vmmem__err_addr(VMMEM_EOVERFLOW, iova,
                               "IOVA range 0x%llx +0x%llx passes 2^64", (unsigned long long)iova,
                               (unsigned long long)len);
    return 0;
}

int vmmem_iotlb_set(vmmem_iotlb *t, uint64_t iova, uint64_t target, uint64_t len, int perm)
{
    if (t == NULL)
        return vmmem__err(-EINVAL, "vmmem_iotlb_set: NULL IOTLB");
    if (perm == 0 || (perm & ~VMMEM_PROT_RW) != 0)
        return vmmem__err(-EINVAL, "IOTLB permission 0x%x is not READ, WRITE or both", perm);
    if (len == 0)
        return 0;
    if (check_len(iova, len) < 0)
        return VMMEM_EOVERFLOW;
    if (len - 1 > UINT64_MAX - target)
        return vmmem__err_addr(VMMEM_EOVERFLOW, iova,
                               "IOTLB target 0x%llx +0x%llx passes 2^64",
                               (unsigned long long)target, (unsigned long long)len);
    uint64_t last = iova + (len - 1);
    pthread_rwlock_wrlock(&t->lock);
    int rc = reserve(t, t->n + 2);
    if (rc == 0) {
        cut_locked(t, iova, last);
        size_t i = first_at(t, iova);
        memmove(&t->e[i + 1], &t->e[i], (t->n - i) * sizeof *t->e);
        t->e[i] = (struct entry){iova, last, target - iova, perm};
        t->n++;
        /* Merge with neighbours of the same translation and permission. */
        if (i + 1 < t->n && t->e[i + 1].iova == last + 1 && last != UINT64_MAX &&
            t->e[i + 1].delta == t->e[i].delta && t->e[i + 1].perm == perm) {
            t->e[i].last = t->e[i + 1].last;
            memmove(&t->e[i + 1], &t->e[i + 2], (t->n - i - 2) * sizeof *t->e);
            t->n--;
        }
        if (i > 0 && t->e[i - 1].last + 1 == iova && iova != 0 &&
            t->e[i - 1].delta == t->e[i].delta && t->e[i - 1].perm == perm) {
            t->e[i - 1].last = t->e[i].last;
            memmove(&t->e[i], &t->e[i + 1], (t->n - i - 1) * sizeof *t->e);
            t->n--;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int vmmem_iotlb_invalidate(vmmem_iotlb *t, uint64_t iova, uint64_t len)
{
    if (t == NULL)
        return vmmem__err(-EINVAL, "vmmem_iotlb_invalidate: NULL IOTLB");
    if (len == 0)
        return 0;
    if (check_len(iova, len) < 0)
        return VMMEM_EOVERFLOW;
    pthread_rwlock_wrlock(&t->lock);
    int rc = reserve(t, t->n + 1);
    if (rc == 0)
        cut_locked(t, iova, iova + (len - 1));
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

void vmmem_iotlb_invalidate_all(vmmem_iotlb *t)
{
    if (t == NULL)
        return;
    pthread_rwlock_wrlock(&t->lock);
    t->n = 0;
    pthread_rwlock_unlock(&t->lock);
}

void vmmem_iotlb_result_free(struct vmmem_iotlb_result *res)
{
    if (res == NULL)
        return;
    free(res->mapped);
    free(res->misses);
    free(res->denied);
    memset(res, 0, sizeof *res);
}

struct growable {
    void **arr;
    size_t *n;
    size_t cap;
    size_t elem;
};

static int push(struct growable *g, const void *item)
{
    if (*g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        void *a = realloc(*g->arr, cap * g->elem);
        if (a == NULL)
            return -ENOMEM;
        *g->arr = a;
        g->cap = cap;
    }
    memcpy((char *)*g->arr + *g->n * g->elem, item, g->elem);
    (*g->n)++;
    return 0;
}

int vmmem_iotlb_lookup(const vmmem_iotlb *tc, uint64_t iova, uint64_t len, int perm,
                       struct vmmem_iotlb_result *res)
{
    if (tc == NULL || res == NULL)
        return vmmem__err(-EINVAL, "vmmem_iotlb_lookup: NULL argument");
    memset(res, 0, sizeof *res);
    if (len == 0)
        return 0;
    if (check_len(iova, len) < 0)
        return VMMEM_EOVERFLOW;
    vmmem_iotlb *t = (vmmem_iotlb *)tc;
    struct growable gm = {(void **)&res->mapped, &res->n_mapped, 0, sizeof *res->mapped};
    struct growable gx = {(void **)&res->misses, &res->n_misses, 0, sizeof *res->misses};
    struct growable gd = {(void **)&res->denied, &res->n_denied, 0, sizeof *res->denied};
    uint64_t end = iova + (len - 1), cur = iova;
    bool done = false;
    int rc = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = first_at(t, iova); i < t->n && !done && rc == 0; i++) {
        const struct entry *e = &t->e[i];
        if (e->iova > end)
            break;
        if (e->iova > cur) {
            struct vmmem_iova_range m = {cur, e->iova - cur};
            rc = push(&gx, &m);
            cur = e->iova;
        }
        uint64_t plast = e->last < end ? e->last : end;
        if ((e->perm & perm) == perm) {
            struct vmmem_mapped_range p = {cur, cur + e->delta, plast - cur + 1};
            rc = rc ? rc : push(&gm, &p);
        } else {
            struct vmmem_iova_range d = {cur, plast - cur + 1};
            rc = rc ? rc : push(&gd, &d);
        }
        if (plast == end)
            done = true;
        else
            cur = plast + 1;
    }
    pthread_rwlock_unlock(&t->lock);
    if (rc == 0 && !done) {
        struct vmmem_iova_range m = {cur, end - cur + 1};
        rc = push(&gx, &m);
    }
    if (rc < 0) {
        vmmem_iotlb_result_free(res);
        return vmmem__err(-ENOMEM, "out of memory for an IOTLB lookup");
    }
    if (res->n_misses || res->n_denied) {
        /* Name the first failing range. */
        bool miss_first = res->n_misses &&
                          (!res->n_denied || res->misses[0].iova < res->denied[0].iova);
        const struct vmmem_iova_range *f = miss_first ? &res->misses[0] : &res->denied[0];
        return vmmem__err_addr(VMMEM_EIOMMU_FAULT, f->iova,
                               "IOVA range [0x%llx, +0x%llx) is %s", (unsigned long long)f->iova,
                               (unsigned long long)f->len,
                               miss_first ? "not mapped in the IOTLB"
                                          : (perm & VMMEM_PROT_WRITE) ? "not mapped for writing"
                                                                      : "not mapped for reading");
    }
    return 0;
}

/* ---- translated memory ---- */

struct vmmem_iommu {
    pthread_mutex_t lock; /* guards phys */
    vmmem_map *phys;
    vmmem_iotlb *iotlb;
    vmmem_iotlb_resolve_fn resolve;
    void *opaque;
    atomic_bool enabled;
    _Atomic(vmmem_bitmap *) log;
};

int vmmem_iommu_new(vmmem_iommu **out, vmmem_map *phys, vmmem_iotlb *iotlb,
                    vmmem_iotlb_resolve_fn resolve, void *opaque)
{
    if (out == NULL || phys == NULL || iotlb == NULL)
        return vmmem__err(-EINVAL, "vmmem_iommu_new: NULL argument");
    vmmem_iommu *im = calloc(1, sizeof *im);
    if (im == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    pthread_mutex_init(&im->lock, NULL);
    im->phys = vmmem_map_ref(phys);
    im->iotlb = iotlb;
    im->resolve = resolve;
    im->opaque = opaque;
    atomic_init(&im->enabled, true);
    atomic_init(&im->log, NULL);
    *out = im;
    return 0;
}

void vmmem_iommu_free(vmmem_iommu *im)
{
    if (im == NULL)
        return;
    vmmem_map_unref(im->phys);
    pthread_mutex_destroy(&im->lock);
    free(im);
}

int vmmem_iommu_set_phys(vmmem_iommu *im, vmmem_map *phys)
{
    if (im == NULL || phys == NULL)
        return vmmem__err(-EINVAL, "vmmem_iommu_set_phys: NULL argument");
    vmmem_map_ref(phys);
    pthread_mutex_lock(&im->lock);
    vmmem_map *old = im->phys;
    im->phys = phys;
    pthread_mutex_unlock(&im->lock);
    vmmem_map_unref(old);
    return 0;
}

static vmmem_map *get_phys(vmmem_iommu *im)
{
    pthread_mutex_lock(&im->lock);
    vmmem_map *m = vmmem_map_ref(im->phys);
    pthread_mutex_unlock(&im->lock);
    return m;
}

void vmmem_iommu_set_enabled(vmmem_iommu *im, bool on)
{
    if (im != NULL)
        atomic_store(&im->enabled, on);
}

bool vmmem_iommu_enabled(const vmmem_iommu *im)
{
    return im != NULL && atomic_load(&((vmmem_iommu *)im)->enabled);
}

void vmmem_iommu_set_dirty_log(vmmem_iommu *im, vmmem_bitmap *iova_log)
{
    if (im != NULL)
        atomic_store(&im->log, iova_log);
}

static void log_write(vmmem_iommu *im, uint64_t iova, uint64_t len)
{
    vmmem_bitmap *b = atomic_load(&im->log);
    if (b != NULL && len > 0)
        vmmem__dirty(b, iova, len);
}

/* A physical access of piece p failed: report the IOVA, not the gpa. */
static void to_iova(const struct vmmem_mapped_range *p)
{
    struct vmmem_error *e = vmmem__errbuf();
    if (e->addr >= p->target && e->addr - p->target < p->len)
        e->addr = p->iova + (e->addr - p->target);
}

/* Translate with one resolver retry; res is filled on success. */
static int translate(vmmem_iommu *im, uint64_t iova, uint64_t len, int perm,
                     struct vmmem_iotlb_result *res)
{
    int rc = vmmem_iotlb_lookup(im->iotlb, iova, len, perm, res);
    if (rc != VMMEM_EIOMMU_FAULT || im->resolve == NULL)
        return rc;
    bool miss_first = res->n_misses && (!res->n_denied || res->misses[0].iova < res->denied[0].iova);
    struct vmmem_iova_range f = miss_first ? res->misses[0] : res->denied[0];
    vmmem_iotlb_result_free(res);
    rc = im->resolve(im->opaque, im->iotlb, f.iova, f.len, perm);
    if (rc < 0)
        return vmmem__err_addr(rc, f.iova,
                               "IOTLB resolver failed for IOVA range [0x%llx, +0x%llx): %s",
                               (unsigned long long)f.iova, (unsigned long long)f.len,
                               vmmem_strerror(rc));
    return vmmem_iotlb_lookup(im->iotlb, iova, len, perm, res);
}

/* Length of the mapped prefix starting at iova (pieces are in IOVA order). */
static size_t mapped_prefix(const struct vmmem_iotlb_result *res, uint64_t iova, size_t *npieces)
{
    uint64_t cur = iova;
    size_t total = 0, k = 0;
    for (; k < res->n_mapped && res->mapped[k].iova == cur; k++) {
        total += (size_t)res->mapped[k].len;
        cur += res->mapped[k].len;
    }
    *npieces = k;
    return total;
}

/* One short-count physical access: a buffer copy, or fd I/O when buf is NULL. */
static int64_t phys_some(vmmem_map *phys, uint64_t gpa, uint8_t *buf, int fd, size_t n, int dir)
{
    return buf != NULL ? vmmem__rw_some(phys, gpa, buf, n, dir) : vmmem__fd_io(phys, gpa, fd, n, dir);
}

/*
 * The short-count calls over IOVAs (read, write, fd I/O): translate, then
 * walk the mapped prefix piece by piece, stopping at the first short piece.
 */
static int64_t some(vmmem_iommu *im, uint64_t iova, uint8_t *buf, int fd, size_t len, int dir)
{
    if (im == NULL)
        return vmmem__err(-EINVAL, "NULL IOMMU memory");
    if (len == 0)
        return 0;
    vmmem_map *phys = get_phys(im);
    int64_t ret;
    if (!vmmem_iommu_enabled(im)) {
        ret = phys_some(phys, iova, buf, fd, len, dir);
        vmmem_map_unref(phys);
        return ret;
    }
    struct vmmem_iotlb_result res;
    int perm = (dir & 1) ? VMMEM_PROT_WRITE : VMMEM_PROT_READ;
    int rc = translate(im, iova, len, perm, &res);
    size_t np = 0;
    if (mapped_prefix(&res, iova, &np) == 0) {
        /* translate() already said which range failed */
        vmmem_iotlb_result_free(&res);
        vmmem_map_unref(phys);
        return rc < 0 ? rc : vmmem__err_addr(VMMEM_EIOMMU_FAULT, iova, "IOVA 0x%llx is not mapped",
                                             (unsigned long long)iova);
    }
    size_t done = 0;
    ret = 0;
    for (size_t k = 0; k < np; k++) {
        const struct vmmem_mapped_range *p = &res.mapped[k];
        /* Guest-physical pages are marked (and the vhost-user log) as for
         * any write; the IOVA bitmap is an extra. */
        int64_t n = phys_some(phys, p->target, buf ? buf + done : NULL, fd, (size_t)p->len, dir);
        if (n < 0) {
            if (done == 0) {
                ret = n;
                to_iova(p);
            }
            break;
        }
        if (dir & 1)
            log_write(im, p->iova, (uint64_t)n);
        done += (size_t)n;
        if ((uint64_t)n < p->len)
            break; /* a short transfer ends the call */
    }
    vmmem_iotlb_result_free(&res);
    vmmem_map_unref(phys);
    return ret < 0 ? ret : (int64_t)done;
}

static int all(vmmem_iommu *im, uint64_t iova, uint8_t *buf, size_t len, int dir)
{
    if (im == NULL)
        return vmmem__err(-EINVAL, "NULL IOMMU memory");
    if (len == 0)
        return 0;
    vmmem_map *phys = get_phys(im);
    int rc;
    if (!vmmem_iommu_enabled(im)) {
        rc = vmmem__rw_all(phys, iova, buf, len, dir);
        vmmem_map_unref(phys);
        return rc;
    }
    struct vmmem_iotlb_result res;
    int perm = (dir & 1) ? VMMEM_PROT_WRITE : VMMEM_PROT_READ;
    rc = translate(im, iova, len, perm, &res);
    /* Every piece must be backed (and writable) before anything is copied. */
    for (size_t k = 0; rc == 0 && k < res.n_mapped; k++) {
        const struct vmmem_mapped_range *p = &res.mapped[k];
        uint64_t bad = 0;
        int code = vmmem__precheck(phys, p->target, (size_t)p->len, dir & 1, &bad);
        if (code == 0)
            continue;
        uint64_t ibad = p->iova + (bad - p->target);
        if (code == VMMEM_EINVALID_ADDRESS && ibad != iova) {
            rc = vmmem__err_partial(ibad, len, 0);
        } else {
            rc = vmmem__err_addr(code, ibad,
                                 "IOVA 0x%llx (guest-physical 0x%llx): %s",
                                 (unsigned long long)ibad, (unsigned long long)bad,
                                 vmmem_strerror(code));
        }
    }
    size_t done = 0;
    for (size_t k = 0; rc == 0 && k < res.n_mapped; k++) {
        const struct vmmem_mapped_range *p = &res.mapped[k];
        rc = vmmem__rw_all(phys, p->target, buf + done, (size_t)p->len, dir);
        if (rc == 0 && (dir & 1))
            log_write(im, p->iova, p->len);
        done += (size_t)p->len;
    }
    vmmem_iotlb_result_free(&res);
    vmmem_map_unref(phys);
    return rc;
}

int64_t vmmem_iommu_read(vmmem_iommu *im, uint64_t iova, void *buf, size_t len)
{
    return some(im, iova, buf, -1, len, 0);
}

int64_t vmmem_iommu_write(vmmem_iommu *im, uint64_t iova, const void *buf, size_t len)
{
    return some(im, iova, (uint8_t *)buf, -1, len, 1);
}

int vmmem_iommu_read_slice(vmmem_iommu *im, uint64_t iova, void *buf, size_t len)
{
    return all(im, iova, buf, len, 0);
}

int vmmem_iommu_write_slice(vmmem_iommu *im, uint64_t iova, const void *buf, size_t len)
{
    return all(im, iova, (uint8_t *)buf, len, 1);
}

int vmmem_iommu_read_obj(vmmem_iommu *im, uint64_t iova, void *obj, size_t size)
{
    return all(im, iova, obj, size, 0);
}

int vmmem_iommu_write_obj(vmmem_iommu *im, uint64_t iova, const void *obj, size_t size)
{
    return all(im, iova, (uint8_t *)obj, size, 1);
}

static int atomic_op(vmmem_iommu *im, uint64_t iova, size_t size, uint64_t *val,
                     vmmem_order order, bool store)
{
    if (im == NULL || val == NULL)
        return vmmem__err(-EINVAL, "NULL IOMMU memory or value");
    vmmem_map *phys = get_phys(im);
    int rc;
    if (!vmmem_iommu_enabled(im)) {
        rc = vmmem__map_atomic(phys, iova, size, val, order, store ? 1 : 0);
        vmmem_map_unref(phys);
        return rc;
    }
    if ((rc = vmmem__check_atomic_size(size)) < 0) {
        vmmem_map_unref(phys);
        return rc;
    }
    if (iova & (size - 1)) {
        vmmem_map_unref(phys);
        return vmmem__err_addr(VMMEM_EMISALIGNED, iova,
                               "IOVA 0x%llx is not aligned for a %zu-byte atomic",
                               (unsigned long long)iova, size);
    }
    struct vmmem_iotlb_result res;
    rc = translate(im, iova, size, store ? VMMEM_PROT_WRITE : VMMEM_PROT_READ, &res);
    if (rc == 0 && res.n_mapped != 1)
        rc = vmmem__err_addr(VMMEM_ECROSSES_REGION, iova,
                             "%zu-byte atomic at IOVA 0x%llx is split over %zu translations",
                             size, (unsigned long long)iova, res.n_mapped);
    if (rc == 0) {
        rc = vmmem__map_atomic(phys, res.mapped[0].target, size, val, order, store ? 1 : 0);
        if (rc == 0 && store)
            log_write(im, iova, size);
        else if (rc < 0)
            to_iova(&res.mapped[0]); /* a hole or read-only page: report the IOVA */
    }
    vmmem_iotlb_result_free(&res);
    vmmem_map_unref(phys);
    return rc;
}

int vmmem_iommu_load(vmmem_iommu *im, uint64_t iova, size_t size, uint64_t *val,
                     vmmem_order order)
{
    return atomic_op(im, iova, size, val, order, false);
}

int vmmem_iommu_store(vmmem_iommu *im, uint64_t iova, size_t size, uint64_t val,
                      vmmem_order order)
{
    return atomic_op(im, iova, size, &val, order, true);
}

int64_t vmmem_iommu_read_from_fd(vmmem_iommu *im, uint64_t iova, int fd, size_t count)
{
    return some(im, iova, NULL, fd, count, 1);
}

int64_t vmmem_iommu_write_to_fd(vmmem_iommu *im, uint64_t iova, int fd, size_t count)
{
    return some(im, iova, NULL, fd, count, 0);
}

bool vmmem_iommu_check_range(vmmem_iommu *im, uint64_t iova, uint64_t len, int perm)
{
    if (im == NULL)
        return false;
    vmmem_map *phys = get_phys(im);
    bool ok;
    if (!vmmem_iommu_enabled(im)) {
        ok = vmmem_map_check_range(phys, iova, len);
    } else {
        struct vmmem_iotlb_result res;
        ok = vmmem_iotlb_lookup(im->iotlb, iova, len, perm, &res) == 0;
        for (size_t k = 0; ok && k < res.n_mapped; k++)
            ok = vmmem_map_check_range(phys, res.mapped[k].target, res.mapped[k].len);
        vmmem_iotlb_result_free(&res);
    }
    vmmem_map_unref(phys);
    return ok;
}

void vmmem_iommu_slices_begin(vmmem_iommu_iter *it, vmmem_iommu *im, uint64_t iova, uint64_t len,
                              int perm)
{
    if (it == NULL)
        return;
    memset(it, 0, sizeof *it);
    it->im = im;
    it->iova = iova;
    it->remaining = len;
    it->perm = perm;
    it->phys = im ? get_phys(im) : NULL;
}

void vmmem_iommu_slices_end(vmmem_iommu_iter *it)
{
    if (it == NULL)
        return;
    vmmem_map_unref(it->phys);
    it->phys = NULL;
    it->state = 1;
}

int vmmem_iommu_slices_next(vmmem_iommu_iter *it, vmmem_slice *out)
{
    if (it == NULL || out == NULL)
        return vmmem__err(-EINVAL, "vmmem_iommu_slices_next: NULL argument");
    if (it->state != 0 || it->remaining == 0)
        return 0;
    if (it->im == NULL || it->phys == NULL) {
        it->state = 1;
        return vmmem__err(-EINVAL, "IOMMU slice iterator has no memory");
    }
    vmmem_iommu *im = it->im;
    uint64_t gpa = it->iova, n = it->remaining;
    bool on = vmmem_iommu_enabled(im);
    if (on) {
        /* Only the first piece is needed: ask the resolver only when the
         * first byte fails, not for a tail later slices may never reach. */
        struct vmmem_iotlb_result res;
        int rc = vmmem_iotlb_lookup(im->iotlb, it->iova, it->remaining, it->perm, &res);
        if (res.n_mapped == 0 || res.mapped[0].iova != it->iova) {
            vmmem_iotlb_result_free(&res);
            rc = translate(im, it->iova, it->remaining, it->perm, &res);
        }
        if (res.n_mapped == 0 || res.mapped[0].iova != it->iova) {
            vmmem_iotlb_result_free(&res);
            it->state = 1;
            return rc < 0 ? rc
                          : vmmem__err_addr(VMMEM_EIOMMU_FAULT, it->iova,
                                            "IOVA 0x%llx is not mapped",
                                            (unsigned long long)it->iova);
        }
        gpa = res.mapped[0].target;
        n = res.mapped[0].len;
        vmmem_iotlb_result_free(&res);
    } else if (it->remaining - 1 > UINT64_MAX - it->iova) {
        it->state = 1;
        return vmmem__err_addr(VMMEM_EOVERFLOW, it->iova, "range passes 2^64");
    }
    uint64_t off;
    const vmmem_region *r = vmmem_map_find(it->phys, gpa, &off);
    if (r == NULL) {
        it->state = 1;
        return vmmem__err_addr(VMMEM_EINVALID_ADDRESS, it->iova,
                               "IOVA 0x%llx translates to guest-physical 0x%llx, not backed",
                               (unsigned long long)it->iova, (unsigned long long)gpa);
    }
    if (n - 1 > r->size - 1 - off)
        n = r->size - off;
    if (n > SIZE_MAX)
        n = SIZE_MAX;
    int rc = vmmem_get_slice(it->phys, gpa, (size_t)n, out);
    if (rc < 0) {
        it->state = 1;
        return rc;
    }
    if (on) /* Only what the IOTLB granted for this walk: perm 0 asked for nothing
             * more than reading.  Dirty marks go to the guest-physical bitmap
             * (and vhost-user log) like any slice of the region. */
        out->prot &= it->perm ? it->perm : VMMEM_PROT_READ;
    it->iova += n;
    it->remaining -= n;
    return 1;
}

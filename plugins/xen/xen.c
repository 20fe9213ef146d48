/*
 * Providers "xen-foreign", "xen-grant" and "xen-unix" (vmmem-xen.so): the
 * Xen memory models of the vhost-user xen_mmap_flags field, in one plugin.
 *
 *  xen-foreign  FOREIGN (0x1): the whole region of domain domid= is mapped at
 *               creation through /dev/xen/privcmd: a window reserved with
 *               mmap of the device, then IOCTL_PRIVCMD_MMAPBATCH_V2 with one
 *               guest frame per page, consecutive from guest base / 4096.
 *               Any per-page error fails the whole mapping (the Rust crate
 *               ignores the per-page array).
 *  xen-grant    GRANT (0x2): the region's pages are grant references of
 *               domain domid=; the guest address of a page is
 *               (1 << 63) | (ref << 12), so ref = (addr & ~(1 << 63)) / 4096,
 *               consecutive per page.  Mapped through /dev/xen/gntdev with
 *               IOCTL_GNTDEV_MAP_GRANT_REF then mmap at the returned index;
 *               unmapped with munmap then IOCTL_GNTDEV_UNMAP_GRANT_REF.
 *               With NO_ADVANCE_MAP (flags=0xa) nothing is mapped up front:
 *               the region has no host address and every access maps exactly
 *               the pages it covers, with its own protection, and unmaps
 *               them at its end (begin_access/end_access).  cache=N keeps the
 *               N most recently used of those mappings (LRU) instead.
 *  xen-unix     UNIX (0x0): ordinary anonymous memory through this plugin.
 *
 * Options: domid=, dev= (device path) or fd= (an inherited device fd, which
 * is duplicated), flags= (must name this provider's model), prot=r|rw,
 * cache=N (lazy grant regions only).  The Xen page size is 4 KiB and must
 * equal the host's.
 *
 * Sizes come from hostile tables, so nothing is allocated per page of a
 * region: a foreign region is mapped in batches of XEN_BATCH_PAGES frames
 * (768 KiB of arrays at most), and one grant mapping (an in-advance region,
 * or one access to a per-access region) covers at most XEN_GRANT_MAX_PAGES
 * pages (4 GiB, an 8 MiB request; more is VMMEM_EUNSUPPORTED).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmem/provider.h>

#include "xen_abi.h"

/* vhost-user xen_mmap_flags (rust-vmm's MmapXenFlags). */
#define XEN_FLAG_UNIX 0x0u
#define XEN_FLAG_FOREIGN 0x1u
#define XEN_FLAG_GRANT 0x2u
#define XEN_FLAG_NO_ADVANCE_MAP 0x8u

#define XEN_CACHE_MAX 1024u
/* Frames per IOCTL_PRIVCMD_MMAPBATCH_V2 of a foreign region (256 MiB; its
 * arrays take 768 KiB): larger regions are mapped batch by batch. */
#define XEN_BATCH_PAGES ((size_t)1 << 16)
/* Grant pages in one mapping (4 GiB; its request takes 8 MiB): a larger
 * in-advance region, or a larger single access to a per-access region, is
 * refused with VMMEM_EUNSUPPORTED.  (gntdev's own default limit is 65536
 * pages per request, its "limit" module parameter.) */
#define XEN_GRANT_MAX_PAGES ((size_t)1 << 20)

enum xen_kind { KIND_UNIX, KIND_FOREIGN, KIND_GRANT };

static const struct vmmem_host *host;

static const char *const kind_names[] = {"xen-unix", "xen-foreign", "xen-grant"};
static const char *const default_dev[] = {NULL, "/dev/xen/privcmd", "/dev/xen/gntdev"};

/* One mapping of a run of grant pages (an access's, a cache entry's, or an
 * in-advance region's). */
struct gmap {
    void *addr;     /* NULL: free cache slot */
    uint64_t index; /* what MAP_GRANT_REF returned */
    size_t first;   /* first page of the run, in the region */
    size_t n;       /* pages */
    int prot;       /* PROT_* it was mapped with */
    unsigned users; /* accesses holding it (cache entries) */
    uint64_t stamp; /* last use (LRU) */
    bool cached;    /* lives in the region's cache array */
};

/* Bounded LRU cache of lazy grant mappings of one region. */
struct gcache {
    pthread_mutex_t lock;
    size_t cap;
    uint64_t clock;
    struct gmap ent[];
};

/* mapping->priv of every region made here. */
struct xen_region {
    enum xen_kind kind;
    bool lazy;          /* grant with NO_ADVANCE_MAP */
    int fd;             /* our device descriptor, or -1 */
    uint32_t domid;
    int prot;           /* PROT_* of the region */
    uint64_t gaddr;     /* guest base */
    uint64_t size;      /* guest bytes */
    uint64_t frame0;    /* first guest frame (foreign) or grant ref (grant) */
    size_t npages;
    size_t len;         /* npages * 4 KiB */
    void *addr;         /* in-advance mapping, or NULL */
    uint64_t index;     /* gntdev index of an in-advance grant mapping */
    struct gcache *cache;
    char dev[];         /* device path (or "fd N") for messages */
};

static const struct vmmem_option_desc unix_options[] = {
    {"flags", VMMEM_OPT_VALUE, "Xen mapping flags; must be 0 (UNIX), the default"},
    {"prot", VMMEM_OPT_VALUE, "r (read-only) or rw (default)"},
    {NULL, 0, NULL},
};

static const struct vmmem_option_desc foreign_options[] = {
    {"domid", VMMEM_OPT_REQUIRED | VMMEM_OPT_VALUE, "domain whose memory is mapped"},
    {"dev", VMMEM_OPT_VALUE, "privcmd device path (default /dev/xen/privcmd)"},
    {"fd", VMMEM_OPT_VALUE, "inherited privcmd descriptor (duplicated; excludes dev=)"},
    {"flags", VMMEM_OPT_VALUE, "Xen mapping flags; must be 1 (FOREIGN), the default"},
    {"prot", VMMEM_OPT_VALUE, "r (read-only) or rw (default)"},
    {NULL, 0, NULL},
};

static const struct vmmem_option_desc grant_options[] = {
    {"domid", VMMEM_OPT_REQUIRED | VMMEM_OPT_VALUE, "domain that granted the pages"},
    {"dev", VMMEM_OPT_VALUE, "gntdev device path (default /dev/xen/gntdev)"},
    {"fd", VMMEM_OPT_VALUE, "inherited gntdev descriptor (duplicated; excludes dev=)"},
    {"flags", VMMEM_OPT_VALUE,
     "Xen mapping flags: 2 (GRANT, mapped in advance; default) or 0xa (GRANT|NO_ADVANCE_MAP, "
     "mapped per access)"},
    {"prot", VMMEM_OPT_VALUE, "r (read-only) or rw (default)"},
    {"cache", VMMEM_OPT_VALUE,
     "flags=0xa only: keep up to N recent per-access mappings (LRU, 0..1024; default 0)"},
    {NULL, 0, NULL},
};

/* ---- option parsing ---- */

/* A plain unsigned number (decimal or 0x hex, no suffix). */
static int parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int bad_number(const struct vmmem_region_spec *spec, const char *key, const char *val,
                      const char *what)
{
    (void)val; /* option_error quotes it */
    return host->option_error(spec, key, VMMEM_EBAD_NUMBER, "is not %s", what);
}

static const char *flags_name(unsigned f)
{
    switch (f) {
    case XEN_FLAG_UNIX:
        return "UNIX";
    case XEN_FLAG_FOREIGN:
        return "FOREIGN";
    case XEN_FLAG_GRANT:
        return "GRANT";
    default:
        return "GRANT|NO_ADVANCE_MAP";
    }
}

/* flags= must be one of the valid combinations and name this provider. */
static int parse_flags(const struct vmmem_region_spec *spec, enum xen_kind kind, bool *lazy)
{
    const char *s = vmmem_spec_get(spec, "flags");
    *lazy = false;
    if (s == NULL)
        return 0;
    uint64_t v;
    if (parse_u64(s, &v) < 0)
        return bad_number(spec, "flags", s, "a number");
    if (v != 0x0 && v != 0x1 && v != 0x2 && v != 0xa)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "%s region at 0x%llx: flags=%s (0x%llx) is not a valid Xen mapping "
                               "flag combination (valid: 0x0 UNIX, 0x1 FOREIGN, 0x2 GRANT, 0xa "
                               "GRANT|NO_ADVANCE_MAP)",
                               spec->provider, (unsigned long long)spec->addr, s,
                               (unsigned long long)v);
    enum xen_kind want = v == 0 ? KIND_UNIX : v == 1 ? KIND_FOREIGN : KIND_GRANT;
    if (want != kind)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "%s region at 0x%llx: flags=%s (0x%llx, %s) belongs to provider "
                               "'%s', not '%s'",
                               spec->provider, (unsigned long long)spec->addr, s,
                               (unsigned long long)v, flags_name((unsigned)v), kind_names[want],
                               kind_names[kind]);
    *lazy = v == 0xa;
    return 0;
}

static int parse_prot(const struct vmmem_region_spec *spec, int *prot)
{
    int p = VMMEM_PROT_RW;
    int rc = host->option_prot(spec, &p); /* the host's option kit words the error */
    *prot = (p & VMMEM_PROT_WRITE) ? PROT_READ | PROT_WRITE : PROT_READ;
    return rc;
}

static int vprot(int prot)
{
    return (prot & PROT_WRITE) ? VMMEM_PROT_RW : VMMEM_PROT_READ;
}

/* Open (dev=) or duplicate (fd=) the device; *fd gets our own descriptor. */
static int open_device(const struct vmmem_region_spec *spec, enum xen_kind kind, int *fd,
                       char *name, size_t name_size)
{
    const char *dev = vmmem_spec_get(spec, "dev");
    const char *fds = vmmem_spec_get(spec, "fd");
    if (dev != NULL && fds != NULL)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "%s region at 0x%llx: dev='%s' and fd=%s exclude each other",
                               spec->provider, (unsigned long long)spec->addr, dev, fds);
    if (fds != NULL) {
        uint64_t v;
        if (parse_u64(fds, &v) < 0 || v > INT_MAX)
            return bad_number(spec, "fd", fds, "a descriptor number");
        int d = fcntl((int)v, F_DUPFD_CLOEXEC, 0);
        if (d < 0) {
            int e = errno;
            return host->set_error(-e, "%s region at 0x%llx: cannot duplicate fd=%s: %s",
                                   spec->provider, (unsigned long long)spec->addr, fds,
                                   strerror(e));
        }
        *fd = d;
        snprintf(name, name_size, "fd %d", (int)v);
        return 0;
    }
    if (dev == NULL)
        dev = default_dev[kind];
    int d = open(dev, O_RDWR | O_CLOEXEC);
    if (d < 0) {
        int e = errno;
        return host->set_error(-e, "%s region at 0x%llx: cannot open %s: %s%s", spec->provider,
                               (unsigned long long)spec->addr, dev, strerror(e),
                               e == ENOENT ? " (is this a Xen domain with the xen-privcmd/"
                                             "xen-gntdev drivers loaded?)"
                                           : "");
    }
    *fd = d;
    snprintf(name, name_size, "%s", dev);
    return 0;
}

static void region_free(struct xen_region *x)
{
    if (x == NULL)
        return;
    if (x->fd >= 0)
        close(x->fd);
    if (x->cache != NULL) {
        pthread_mutex_destroy(&x->cache->lock);
        free(x->cache);
    }
    free(x);
}

/* ---- foreign: privcmd ---- */

/* Map frames [first, first + n) of the region into the privcmd window at
 * w (w covers exactly those pages).  arr and err hold n entries. */
static int foreign_batch(const struct vmmem_region_spec *spec, struct xen_region *x, void *w,
                         size_t first, size_t n, uint64_t *arr, int *err)
{
    for (size_t i = 0; i < n; i++)
        arr[i] = x->frame0 + first + i;
    struct xen_privcmd_mmapbatch_v2 batch = {
        .num = (uint32_t)n,
        .dom = (uint16_t)x->domid,
        .addr = (uint64_t)(uintptr_t)w,
        .arr = arr,
        .err = err,
    };
    /* 0: err[] is valid.  -1/ENOENT: err[] is valid too and some frame is
     * paged out.  Any other failure: err[] means nothing. */
    if (ioctl(x->fd, XEN_IOCTL_PRIVCMD_MMAPBATCH_V2, &batch) < 0 && errno != ENOENT) {
        int e = errno;
        return host->set_error(-e,
                               "xen-foreign region at 0x%llx: IOCTL_PRIVCMD_MMAPBATCH_V2 of %zu "
                               "frames of domain %u from frame 0x%llx failed: %s",
                               (unsigned long long)spec->addr, n, x->domid,
                               (unsigned long long)arr[0], strerror(e));
    }
    size_t bad = 0, f = 0;
    for (size_t i = 0; i < n; i++)
        if (err[i] != 0 && bad++ == 0)
            f = i;
    if (bad == 0)
        return 0;
    int e = err[f] < 0 ? -err[f] : EIO;
    return host->set_error(-e,
                           "xen-foreign region at 0x%llx: domain %u guest frame 0x%llx (guest "
                           "address 0x%llx) could not be mapped: %s%s (%zu of %zu frames failed)",
                           (unsigned long long)spec->addr, x->domid, (unsigned long long)arr[f],
                           (unsigned long long)(arr[f] << XEN_PAGE_SHIFT), strerror(e),
                           e == ENOENT ? ", paged out" : "", bad, n);
}

/*
 * The whole region in batches of at most XEN_BATCH_PAGES frames, so the
 * frame and error arrays stay small (12 bytes a frame) however large the
 * region a table asks for.  A region of one batch is one mmap of the device;
 * a larger one reserves its address range, then maps each batch into it as
 * a device mapping of its own (the first MMAPBATCH on a privcmd mapping must
 * cover all of it).
 */
static int foreign_map(const struct vmmem_region_spec *spec, struct xen_region *x)
{
    size_t chunk = x->npages < XEN_BATCH_PAGES ? x->npages : XEN_BATCH_PAGES;
    bool one = x->npages <= XEN_BATCH_PAGES;
    void *a = one ? mmap(NULL, x->len, x->prot, MAP_SHARED, x->fd, 0)
                  : mmap(NULL, x->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
    if (a == MAP_FAILED) {
        int e = errno;
        return host->set_error(-e,
                               "xen-foreign region at 0x%llx: cannot reserve %zu bytes of "
                               "address space%s%s: %s",
                               (unsigned long long)spec->addr, x->len, one ? " on " : "",
                               one ? x->dev : "", strerror(e));
    }
    uint64_t *arr = malloc(chunk * sizeof *arr);
    int *err = calloc(chunk, sizeof *err);
    int rc = 0;
    if (arr == NULL || err == NULL)
        rc = host->set_error(-ENOMEM, "out of memory for %zu frame numbers", chunk);
    for (size_t first = 0; rc == 0 && first < x->npages; first += chunk) {
        size_t n = x->npages - first < chunk ? x->npages - first : chunk;
        uint8_t *w = (uint8_t *)a + first * XEN_PAGE_SIZE;
        /* (MAP_FIXED inside the reservation: munmap of a releases it.) */
        void *got =
            one ? w : mmap(w, n * XEN_PAGE_SIZE, x->prot, MAP_SHARED | MAP_FIXED, x->fd, 0);
        if (got != w) {
            int e = errno;
            rc = host->set_error(-e,
                                 "xen-foreign region at 0x%llx: mapping %zu bytes of %s at "
                                 "offset 0x%llx of the region failed: %s",
                                 (unsigned long long)spec->addr, n * (size_t)XEN_PAGE_SIZE, x->dev,
                                 (unsigned long long)(first * XEN_PAGE_SIZE), strerror(e));
            break;
        }
        rc = foreign_batch(spec, x, w, first, n, arr, err);
    }
    free(arr);
    free(err);
    if (rc < 0)
        munmap(a, x->len);
    else
        x->addr = a;
    return rc;
}

/* ---- grant: gntdev ---- */

static const char *prot_text(int prot)
{
    return (prot & PROT_WRITE) ? "read-write" : "read-only";
}

/* Map pages [first, first + n) of the region with prot into *g. */
static int grant_map_pages(const struct xen_region *x, size_t first, size_t n, int prot,
                           struct gmap *g)
{
    if (n > XEN_GRANT_MAX_PAGES)
        return host->set_error(VMMEM_EUNSUPPORTED,
                               "xen-grant region at 0x%llx: a mapping of %zu pages (guest "
                               "0x%llx, %zu bytes) is more than the %zu pages this plugin maps "
                               "at once",
                               (unsigned long long)x->gaddr, n,
                               (unsigned long long)(x->gaddr + first * XEN_PAGE_SIZE),
                               n * (size_t)XEN_PAGE_SIZE, XEN_GRANT_MAX_PAGES);
    size_t sz = xen_gntdev_map_size(n);
    struct xen_gntdev_map_grant_ref *req = calloc(1, sz);
    if (req == NULL)
        return host->set_error(-ENOMEM, "out of memory for %zu grant refs", n);
    uint64_t ref0 = x->frame0 + first;
    req->count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        req->refs[i].domid = x->domid;
        req->refs[i].ref = (uint32_t)(ref0 + i);
    }
    if (ioctl(x->fd, XEN_IOCTL_GNTDEV_MAP_GRANT_REF, req) < 0) {
        int e = errno;
        free(req);
        return host->set_error(-e,
                               "xen-grant region at 0x%llx: IOCTL_GNTDEV_MAP_GRANT_REF of refs "
                               "0x%llx..0x%llx of domain %u failed: %s",
                               (unsigned long long)x->gaddr, (unsigned long long)ref0,
                               (unsigned long long)(ref0 + n - 1), x->domid, strerror(e));
    }
    uint64_t index = req->index;
    free(req);
    size_t len = n * XEN_PAGE_SIZE;
    void *a = mmap(NULL, len, prot, MAP_SHARED, x->fd, (off_t)index);
    if (a == MAP_FAILED) {
        int e = errno;
        struct xen_gntdev_unmap_grant_ref un = {.index = index, .count = (uint32_t)n};
        ioctl(x->fd, XEN_IOCTL_GNTDEV_UNMAP_GRANT_REF, &un);
        return host->set_error(-e,
                               "xen-grant region at 0x%llx: mapping grant refs 0x%llx..0x%llx "
                               "(guest 0x%llx..0x%llx) of domain %u %s failed: %s%s",
                               (unsigned long long)x->gaddr, (unsigned long long)ref0,
                               (unsigned long long)(ref0 + n - 1),
                               (unsigned long long)(x->gaddr + first * XEN_PAGE_SIZE),
                               (unsigned long long)(x->gaddr + (first + n) * XEN_PAGE_SIZE - 1),
                               x->domid, prot_text(prot), strerror(e),
                               e == EINVAL ? " (a ref is not granted, granted by another domain, "
                                             "or granted read-only)"
                                           : "");
    }
    g->addr = a;
    g->index = index;
    g->first = first;
    g->n = n;
    g->prot = prot;
    return 0;
}

/* The gntdev order: munmap first, then the unmap ioctl. */
static void grant_unmap_pages(const struct xen_region *x, struct gmap *g)
{
    if (g->addr == NULL)
        return;
    munmap(g->addr, g->n * XEN_PAGE_SIZE);
    struct xen_gntdev_unmap_grant_ref un = {.index = g->index, .count = (uint32_t)g->n};
    ioctl(x->fd, XEN_IOCTL_GNTDEV_UNMAP_GRANT_REF, &un);
    g->addr = NULL;
}

static int parse_cache(const struct vmmem_region_spec *spec, struct xen_region *x)
{
    const char *s = vmmem_spec_get(spec, "cache");
    if (s == NULL)
        return 0;
    uint64_t n;
    if (parse_u64(s, &n) < 0)
        return bad_number(spec, "cache", s, "a number of entries");
    if (n > XEN_CACHE_MAX)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "xen-grant region at 0x%llx: cache=%s is more than %u entries",
                               (unsigned long long)spec->addr, s, XEN_CACHE_MAX);
    if (!x->lazy)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "xen-grant region at 0x%llx: cache=%s needs flags=0xa (a region "
                               "mapped in advance has nothing to cache)",
                               (unsigned long long)spec->addr, s);
    if (n == 0)
        return 0;
    struct gcache *c = calloc(1, sizeof *c + (size_t)n * sizeof c->ent[0]);
    if (c == NULL)
        return host->set_error(-ENOMEM, "out of memory for a grant cache");
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return host->set_error(-ENOMEM, "cannot initialise the grant cache lock");
    }
    c->cap = (size_t)n;
    for (size_t i = 0; i < c->cap; i++)
        c->ent[i].cached = true;
    x->cache = c;
    return 0;
}

/* ---- map / unmap ---- */

static enum xen_kind provider_kind(const struct vmmem_provider *p)
{
    return (enum xen_kind)(uintptr_t)p->user;
}

static int xen_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                   struct vmmem_mapping *out)
{
    enum xen_kind kind = provider_kind(p);
    bool lazy;
    int prot, rc;
    if ((rc = parse_flags(spec, kind, &lazy)) < 0 || (rc = parse_prot(spec, &prot)) < 0)
        return rc;
    uint32_t domid = 0;
    if (kind != KIND_UNIX) {
        const char *ds = vmmem_spec_get(spec, "domid");
        uint64_t d;
        if (ds == NULL || parse_u64(ds, &d) < 0)
            return bad_number(spec, "domid", ds ? ds : "", "a domain id");
        if (d >= XEN_DOMID_FIRST_RESERVED)
            return host->set_error(VMMEM_EBAD_VALUE,
                                   "%s region at 0x%llx: domid=%s is not a domain (ids from "
                                   "0x%x up are reserved)",
                                   spec->provider, (unsigned long long)spec->addr, ds,
                                   XEN_DOMID_FIRST_RESERVED);
        domid = (uint32_t)d;
        if (host->page_size != XEN_PAGE_SIZE)
            return host->set_error(VMMEM_EUNSUPPORTED,
                                   "%s: host page size %llu differs from the Xen page size 4096",
                                   spec->provider, (unsigned long long)host->page_size);
        if (spec->addr & (XEN_PAGE_SIZE - 1))
            return host->set_error(VMMEM_EMISALIGNED,
                                   "%s region at 0x%llx: guest base is not 4 KiB-aligned",
                                   spec->provider, (unsigned long long)spec->addr);
    }
    uint64_t page = kind == KIND_UNIX ? host->page_size : XEN_PAGE_SIZE;
    uint64_t npages = spec->size / page + (spec->size % page != 0);
    if (npages == 0 || npages > SIZE_MAX / page)
        return host->set_error(VMMEM_EOVERFLOW, "%s region at 0x%llx: size 0x%llx too large",
                               spec->provider, (unsigned long long)spec->addr,
                               (unsigned long long)spec->size);
    uint64_t frame0 = 0;
    if (kind == KIND_FOREIGN)
        frame0 = spec->addr >> XEN_PAGE_SHIFT;
    else if (kind == KIND_GRANT) {
        frame0 = (spec->addr & ~XEN_GRANT_ADDR_OFF) >> XEN_PAGE_SHIFT;
        if (frame0 + npages - 1 > UINT32_MAX)
            return host->set_error(VMMEM_EBAD_VALUE,
                                   "xen-grant region at 0x%llx: grant refs 0x%llx..0x%llx do not "
                                   "fit in 32 bits",
                                   (unsigned long long)spec->addr, (unsigned long long)frame0,
                                   (unsigned long long)(frame0 + npages - 1));
    }

    char name[64];
    struct xen_region *x = calloc(1, sizeof *x + sizeof name);
    if (x == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    x->kind = kind;
    x->lazy = lazy;
    x->fd = -1;
    x->domid = domid;
    x->prot = prot;
    x->gaddr = spec->addr;
    x->size = spec->size;
    x->frame0 = frame0;
    x->npages = (size_t)npages;
    x->len = (size_t)(npages * page);
    if (kind == KIND_GRANT && (rc = parse_cache(spec, x)) < 0)
        goto fail;

    if (kind == KIND_UNIX) {
        void *a = mmap(NULL, x->len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (a == MAP_FAILED) {
            int e = errno;
            rc = host->set_error(-e, "xen-unix region at 0x%llx: mmap of %zu bytes failed: %s",
                                 (unsigned long long)spec->addr, x->len, strerror(e));
            goto fail;
        }
        x->addr = a;
        out->hugetlbfs = 0;
    } else {
        if ((rc = open_device(spec, kind, &x->fd, x->dev, sizeof name)) < 0)
            goto fail;
        if (kind == KIND_FOREIGN) {
            if ((rc = foreign_map(spec, x)) < 0)
                goto fail;
        } else if (!lazy) {
            struct gmap g;
            if ((rc = grant_map_pages(x, 0, x->npages, prot, &g)) < 0)
                goto fail;
            x->addr = g.addr;
            x->index = g.index;
        }
        out->fd = x->fd;
        out->file = x->dev;
    }
    out->host = x->addr; /* NULL for a lazy grant region */
    out->prot = vprot(prot);
    out->priv = x;
    return 0;
fail:
    region_free(x);
    return rc;
}

static void xen_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                      struct vmmem_mapping *m)
{
    (void)p;
    (void)spec;
    struct xen_region *x = m->priv;
    if (x == NULL)
        return;
    if (x->kind == KIND_GRANT) {
        if (x->addr != NULL) {
            struct gmap g = {.addr = x->addr, .index = x->index, .n = x->npages};
            grant_unmap_pages(x, &g);
        }
        if (x->cache != NULL) /* invalidate: every cached mapping goes */
            for (size_t i = 0; i < x->cache->cap; i++)
                grant_unmap_pages(x, &x->cache->ent[i]);
    } else if (x->addr != NULL) {
        munmap(x->addr, x->len);
    }
    region_free(x);
    m->priv = NULL;
}

/* ---- map-on-access (lazy grant regions) ---- */

/* A cache entry that covers [first, first + n) with at least prot. */
static struct gmap *cache_find(struct gcache *c, size_t first, size_t n, int prot)
{
    for (size_t i = 0; i < c->cap; i++) {
        struct gmap *g = &c->ent[i];
        if (g->addr != NULL && g->first <= first && first + n <= g->first + g->n &&
            (g->prot & prot) == prot)
            return g;
    }
    return NULL;
}

/* A free slot, else the least recently used idle entry, else NULL. */
static struct gmap *cache_victim(struct gcache *c)
{
    struct gmap *v = NULL;
    for (size_t i = 0; i < c->cap; i++) {
        struct gmap *g = &c->ent[i];
        if (g->addr == NULL)
            return g;
        if (g->users == 0 && (v == NULL || g->stamp < v->stamp))
            v = g;
    }
    return v;
}

static int grant_begin(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                       uint64_t off, size_t len, int prot, struct vmmem_access *acc)
{
    (void)p;
    struct xen_region *x = m->priv;
    if (x == NULL || !x->lazy)
        return host->set_error(VMMEM_EPROVIDER, "xen-grant: begin_access on a region that is "
                                                "mapped in advance");
    if (len == 0)
        len = 1;
    if (off >= x->size || len - 1 > x->size - 1 - off)
        return host->set_error(VMMEM_EOUT_OF_BOUNDS,
                               "xen-grant region at 0x%llx: access 0x%llx+0x%zx is outside its "
                               "0x%llx bytes",
                               (unsigned long long)x->gaddr, (unsigned long long)off, len,
                               (unsigned long long)x->size);
    if ((prot & VMMEM_PROT_WRITE) && !(x->prot & PROT_WRITE))
        return host->set_error(VMMEM_EREAD_ONLY,
                               "xen-grant region at 0x%llx is read-only (prot=r)",
                               (unsigned long long)x->gaddr);
    int mprot = PROT_READ | ((prot & VMMEM_PROT_WRITE) ? PROT_WRITE : 0);
    size_t first = (size_t)(off >> XEN_PAGE_SHIFT);
    size_t n = (size_t)((off + len - 1) >> XEN_PAGE_SHIFT) - first + 1;
    size_t in_page = (size_t)(off & (XEN_PAGE_SIZE - 1));
    struct gcache *c = x->cache;
    if (c != NULL) {
        pthread_mutex_lock(&c->lock);
        struct gmap *g = cache_find(c, first, n, mprot);
        if (g == NULL && (g = cache_victim(c)) != NULL) {
            grant_unmap_pages(x, g);
            int rc = grant_map_pages(x, first, n, mprot, g);
            if (rc < 0) {
                pthread_mutex_unlock(&c->lock);
                return rc;
            }
        }
        if (g != NULL) {
            g->users++;
            g->stamp = ++c->clock;
            pthread_mutex_unlock(&c->lock);
            acc->ptr = (uint8_t *)g->addr + (first - g->first) * XEN_PAGE_SIZE + in_page;
            acc->token = g;
            return 0;
        }
        pthread_mutex_unlock(&c->lock); /* every entry busy: map this one uncached */
    }
    struct gmap *g = calloc(1, sizeof *g);
    if (g == NULL)
        return host->set_error(-ENOMEM, "out of memory for a grant mapping");
    int rc = grant_map_pages(x, first, n, mprot, g);
    if (rc < 0) {
        free(g);
        return rc;
    }
    acc->ptr = (uint8_t *)g->addr + in_page;
    acc->token = g;
    return 0;
}

static void grant_end(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                      struct vmmem_access *acc)
{
    (void)p;
    struct xen_region *x = m->priv;
    struct gmap *g = acc->token;
    if (x == NULL || g == NULL)
        return;
    if (g->cached) {
        pthread_mutex_lock(&x->cache->lock);
        g->users--;
        g->stamp = ++x->cache->clock;
        pthread_mutex_unlock(&x->cache->lock);
    } else {
        grant_unmap_pages(x, g);
        free(g);
    }
    acc->token = NULL;
    acc->ptr = NULL;
}

/* ---- the plugin ---- */

static const struct vmmem_provider unix_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "xen-unix",
    .description = "Xen plain-Unix mode (flags=0): ordinary anonymous memory",
    .options = unix_options,
    .user = (void *)(uintptr_t)KIND_UNIX,
    .map = xen_map,
    .unmap = xen_unmap,
};

static const struct vmmem_provider foreign_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "xen-foreign",
    .description = "Xen foreign mapping (flags=1): a domain's memory through /dev/xen/privcmd",
    .options = foreign_options,
    .user = (void *)(uintptr_t)KIND_FOREIGN,
    .map = xen_map,
    .unmap = xen_unmap,
};

static const struct vmmem_provider grant_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "xen-grant",
    .description = "Xen grant mapping (flags=2 in advance, 0xa per access) through "
                   "/dev/xen/gntdev",
    .options = grant_options,
    .user = (void *)(uintptr_t)KIND_GRANT,
    .map = xen_map,
    .unmap = xen_unmap,
    .begin_access = grant_begin,
    .end_access = grant_end,
};

VMMEM_PLUGIN_DEFINE("vmmem-xen", host, &foreign_provider, &grant_provider, &unix_provider)

/*
 * xensim.so: a simulator of the Linux Xen device interface for tests.  There
 * is no hypervisor on the build machines, so test programs run with this
 * object in LD_PRELOAD.  It interposes open/open64/openat/openat64 (and the
 * _FORTIFY_SOURCE __open*_2 forms), close, dup/dup2/dup3, fcntl(F_DUPFD*),
 * ioctl, mmap/mmap64 and munmap.  Calls on the two device paths
 * (/dev/xen/privcmd, /dev/xen/gntdev) and on descriptors and mappings made
 * from them are answered here; every other call goes to the next definition
 * (libc, or the sanitizer runtime when that comes first) via
 * dlsym(RTLD_NEXT, ...).  The control interface is in xensim.h.
 *
 * What is modelled (after include/uapi/xen/{privcmd,gntdev}.h and
 * drivers/xen/{privcmd,gntdev}.c):
 *  - One foreign domain (domid and size set by the test) whose memory is a
 *    memfd; frame f is bytes [f * 4096, (f + 1) * 4096) of it.
 *  - privcmd: mmap of the device reserves a window (an anonymous PROT_NONE
 *    mapping remembered by address; the offset is ignored, as the driver
 *    does).  IOCTL_PRIVCMD_MMAPBATCH_V2 zeroes err[] first, needs addr to be
 *    inside a privcmd window (else -1/EINVAL); the first batch on a window
 *    must cover it exactly, later ones must hit only unmapped pages (else
 *    -1/EINVAL), num == 0 is -1/EINVAL.  Each frame is mapped with
 *    mmap(MAP_FIXED | MAP_SHARED) of the memfd at frame * 4096 and the
 *    window's protection.  Per-page errors go to err[]: -ESRCH when dom is
 *    not the domain, -EINVAL for a frame outside it, -ENOENT for a frame the
 *    test marked paged out.  The call returns 0 when err[] is filled, or -1
 *    with errno ENOENT when some frame is paged out (err[] filled too).
 *    Unknown requests: -1/ENOTTY.
 *  - gntdev: IOCTL_GNTDEV_MAP_GRANT_REF takes count refs (count 0 is
 *    EINVAL), records them WITHOUT checking them, as the driver does, and
 *    returns index = first-fit page index << 12 in a per-open-file space.
 *    mmap(fd, offset = index) needs a mapping of exactly that entry's count
 *    pages (else EINVAL), MAP_SHARED when writable (else EINVAL), an entry
 *    not already mmapped (EINVAL; the PV driver's rule) and, now, valid
 *    grants: each ref granted by the domain named in its domid, and not
 *    read-only when PROT_WRITE is asked.  Any bad ref fails the whole mmap
 *    with EINVAL, as the driver turns every failed GNTTABOP_map_grant_ref
 *    status (GNTST_bad_gntref, GNTST_bad_domain, GNTST_permission_denied)
 *    into -EINVAL.  The entry stays until IOCTL_GNTDEV_UNMAP_GRANT_REF.
 *  - IOCTL_GNTDEV_UNMAP_GRANT_REF {index, count}: ENOENT when no entry has
 *    that index (and that count, unless count is 0); EBUSY while the entry is
 *    still mmapped.  The UAPI header says "munmap() must be called on the
 *    relevant virtual address(es) before this ioctl is called, or an error
 *    will result"; the original 2.6.37 driver returned EBUSY.  (Current
 *    drivers instead drop the index and defer the unmap to munmap; the
 *    stricter rule is modelled because it catches a wrong order.)
 *  - Opening a device needs no privilege; the descriptor is a real one (on
 *    /dev/null) so close/dup/fork keep working.  A device file lives while
 *    a descriptor or a mapping refers to it; releasing a gntdev file frees
 *    its remaining entries (counted in released_at_close: a leak signal).
 *  - Writable MAP_SHARED mappings of a device opened O_RDONLY: EACCES.
 *  - Ending a grant that is mapped is refused (EBUSY), as Xen does.
 *
 * Not modelled: the V1 MMAPBATCH, MMAP, HYPERCALL, RESTRICT and resource
 * ioctls of privcmd; GET_OFFSET_FOR_VADDR, SET_MAX_GRANTS, SET_UNMAP_NOTIFY,
 * grant copy and dma-buf of gntdev; the driver's page limit; munmap or
 * mprotect of part of a device mapping (counted in bad_calls and reported on
 * stderr); mremap; fork (children share nothing of the simulator); faults on
 * unpopulated window pages are SIGSEGV here (SIGBUS in the driver); several
 * domains.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xensim.h"

#define SIM_EXPORT __attribute__((visibility("default")))
#define PAGE 4096u
#define PAGE_SHIFT 12

/* ---- the UAPI, declared independently of the plugin's copy ---- */
struct sim_mmapbatch_v2 {
    unsigned int num;
    uint16_t dom;
    uint64_t addr;
    const uint64_t *arr;
    int *err;
};
struct sim_grant_ref {
    uint32_t domid;
    uint32_t ref;
};
struct sim_map_grant_ref {
    uint32_t count;
    uint32_t pad;
    uint64_t index;
    struct sim_grant_ref refs[1];
};
struct sim_unmap_grant_ref {
    uint64_t index;
    uint32_t count;
    uint32_t pad;
};
#define SIM_MMAPBATCH_V2 _IOC(_IOC_NONE, 'P', 4, sizeof(struct sim_mmapbatch_v2))
#define SIM_MAP_GRANT_REF _IOC(_IOC_NONE, 'G', 0, sizeof(struct sim_map_grant_ref))
#define SIM_UNMAP_GRANT_REF _IOC(_IOC_NONE, 'G', 1, sizeof(struct sim_unmap_grant_ref))
_Static_assert(sizeof(struct sim_map_grant_ref) == 24, "gntdev map size");
_Static_assert(sizeof(struct sim_unmap_grant_ref) == 16, "gntdev unmap size");
_Static_assert(sizeof(void *) != 8 || sizeof(struct sim_mmapbatch_v2) == 32, "mmapbatch size");

/* ---- interposed libc entry points (prototypes for -Wmissing-prototypes) ---- */
SIM_EXPORT int open(const char *path, int flags, ...);
SIM_EXPORT int open64(const char *path, int flags, ...);
SIM_EXPORT int openat(int dirfd, const char *path, int flags, ...);
SIM_EXPORT int openat64(int dirfd, const char *path, int flags, ...);
SIM_EXPORT int __open_2(const char *path, int flags);
SIM_EXPORT int __open64_2(const char *path, int flags);
SIM_EXPORT int __openat_2(int dirfd, const char *path, int flags);
SIM_EXPORT int __openat64_2(int dirfd, const char *path, int flags);
SIM_EXPORT int close(int fd);
SIM_EXPORT int dup(int fd);
SIM_EXPORT int dup2(int fd, int fd2);
SIM_EXPORT int dup3(int fd, int fd2, int flags);
SIM_EXPORT int fcntl(int fd, int cmd, ...);
SIM_EXPORT int fcntl64(int fd, int cmd, ...);
SIM_EXPORT int ioctl(int fd, unsigned long req, ...);
SIM_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
SIM_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off);
SIM_EXPORT int munmap(void *addr, size_t len);
SIM_EXPORT const struct xensim_api *xensim_api(void);

/* ---- the next definitions ---- */
static struct {
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*close)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
} real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void *next_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL) {
        fprintf(stderr, "xensim: no next definition of %s\n", name);
        abort();
    }
    return p;
}

static void resolve(void)
{
    /* POSIX allows no cast between data and function pointers; memcpy is
     * the portable spelling of what dlsym needs. */
#define RESOLVE(f)                                                                             \
    do {                                                                                       \
        void *p_ = next_sym(#f);                                                               \
        memcpy(&real.f, &p_, sizeof p_);                                                       \
    } while (0)
    RESOLVE(open);
    RESOLVE(openat);
    RESOLVE(close);
    RESOLVE(dup);
    RESOLVE(dup2);
    RESOLVE(dup3);
    RESOLVE(fcntl);
    RESOLVE(ioctl);
    RESOLVE(mmap);
    RESOLVE(munmap);
#undef RESOLVE
}

static inline void init(void)
{
    pthread_once(&real_once, resolve);
}

/* ---- state ---- */

enum dev_type { DEV_PRIVCMD = 1, DEV_GNTDEV = 2 };

struct vma;

/* One IOCTL_GNTDEV_MAP_GRANT_REF entry. */
struct gentry {
    struct gentry *next; /* sorted by index */
    uint64_t index;      /* pages */
    uint32_t count;
    struct sim_grant_ref *refs;
    struct vma *vma; /* live mmap or NULL */
};

/* An open device file (a "struct file"). */
struct sfile {
    enum dev_type type;
    unsigned refs; /* descriptors + mappings */
    bool writable;
    struct gentry *maps;
};

/* A mapping of a device. */
struct vma {
    struct vma *next;
    enum dev_type type;
    uintptr_t start;
    size_t len;
    int prot;
    struct sfile *file;
    bool populated;      /* privcmd: a batch covered the window */
    uint8_t *page_set;   /* privcmd: which pages are mapped */
    struct gentry *gent; /* gntdev */
};

struct grant {
    bool granted;
    bool readonly;
    uint64_t frame;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct sfile **fds;
static size_t nfds;
static struct vma *vmas;
static struct xensim_stats st;
static uint32_t dom_id;
static int dom_fd = -1;
static uint64_t dom_frames;
static uint8_t *paged_out; /* one byte per frame */
static struct grant *grants;
static size_t ngrants;

static struct sfile *file_of(int fd)
{
    return (fd >= 0 && (size_t)fd < nfds) ? fds[fd] : NULL;
}

static int track_fd(int fd, struct sfile *f)
{
    if ((size_t)fd >= nfds) {
        size_t n = nfds ? nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct sfile **p = realloc(fds, n * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        memset(p + nfds, 0, (n - nfds) * sizeof *p);
        fds = p;
        nfds = n;
    }
    fds[fd] = f;
    f->refs++;
    return 0;
}

static void file_put(struct sfile *f)
{
    if (--f->refs > 0)
        return;
    while (f->maps != NULL) { /* gntdev_release: drop what is left */
        struct gentry *g = f->maps;
        f->maps = g->next;
        free(g->refs);
        free(g);
        st.live_grant_maps--;
        st.released_at_close++;
    }
    free(f);
    st.live_files--;
}

static void untrack_fd(int fd)
{
    struct sfile *f = file_of(fd);
    if (f != NULL) {
        fds[fd] = NULL;
        file_put(f);
    }
}

static enum dev_type dev_of_path(const char *path)
{
    if (path == NULL)
        return 0;
    if (strcmp(path, XENSIM_PRIVCMD) == 0)
        return DEV_PRIVCMD;
    if (strcmp(path, XENSIM_GNTDEV) == 0)
        return DEV_GNTDEV;
    return 0;
}

static int sim_open(enum dev_type type, int flags)
{
    int fd = real.open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
    if (fd < 0)
        return -1;
    struct sfile *f = calloc(1, sizeof *f);
    if (f == NULL) {
        real.close(fd);
        errno = ENOMEM;
        return -1;
    }
    f->type = type;
    f->writable = (flags & O_ACCMODE) != O_RDONLY;
    pthread_mutex_lock(&lock);
    if (track_fd(fd, f) < 0) {
        pthread_mutex_unlock(&lock);
        free(f);
        real.close(fd);
        errno = ENOMEM;
        return -1;
    }
    st.opens++;
    st.live_files++;
    pthread_mutex_unlock(&lock);
    return fd;
}

/* ---- open / close / dup ---- */

static int do_open(int dirfd, const char *path, int flags, mode_t mode, bool at)
{
    init();
    enum dev_type t = (path != NULL && path[0] == '/') ? dev_of_path(path) : 0;
    if (t != 0)
        return sim_open(t, flags);
    return at ? real.openat(dirfd, path, flags, mode) : real.open(path, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(AT_FDCWD, path, flags, mode, false);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(AT_FDCWD, path, flags, mode, false);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(dirfd, path, flags, mode, true);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(dirfd, path, flags, mode, true);
}

int __open_2(const char *path, int flags)
{
    return do_open(AT_FDCWD, path, flags, 0, false);
}

int __open64_2(const char *path, int flags)
{
    return do_open(AT_FDCWD, path, flags, 0, false);
}

int __openat_2(int dirfd, const char *path, int flags)
{
    return do_open(dirfd, path, flags, 0, true);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
    return do_open(dirfd, path, flags, 0, true);
}

int close(int fd)
{
    init();
    pthread_mutex_lock(&lock);
    untrack_fd(fd);
    pthread_mutex_unlock(&lock);
    return real.close(fd);
}

/* After a successful duplication of old into new. */
static int dup_done(int old, int nfd)
{
    if (nfd < 0 || nfd == old)
        return nfd;
    pthread_mutex_lock(&lock);
    untrack_fd(nfd); /* dup2/dup3 closed whatever nfd was */
    struct sfile *f = file_of(old);
    if (f != NULL && track_fd(nfd, f) < 0) {
        pthread_mutex_unlock(&lock);
        real.close(nfd);
        errno = ENOMEM;
        return -1;
    }
    pthread_mutex_unlock(&lock);
    return nfd;
}

int dup(int fd)
{
    init();
    return dup_done(fd, real.dup(fd));
}

int dup2(int fd, int fd2)
{
    init();
    return dup_done(fd, real.dup2(fd, fd2));
}

int dup3(int fd, int fd2, int flags)
{
    init();
    return dup_done(fd, real.dup3(fd, fd2, flags));
}

static int do_fcntl(int fd, int cmd, va_list ap)
{
    init();
    /* Every fcntl argument is an int, a pointer or absent: pass a pointer-
     * sized word on, as glibc's own fcntl does. */
    void *arg = va_arg(ap, void *);
    int r = real.fcntl(fd, cmd, arg);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        return dup_done(fd, r);
    return r;
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = do_fcntl(fd, cmd, ap);
    va_end(ap);
    return r;
}

int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int r = do_fcntl(fd, cmd, ap);
    va_end(ap);
    return r;
}

/* ---- mappings ---- */

static struct vma *vma_at(uintptr_t a)
{
    for (struct vma *v = vmas; v != NULL; v = v->next)
        if (a >= v->start && a - v->start < v->len)
            return v;
    return NULL;
}

static void vma_unlink(struct vma *v)
{
    for (struct vma **pp = &vmas; *pp != NULL; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            return;
        }
}

/* A PROT_NONE placeholder where the device mapping will live. */
static void *reserve(void *addr, size_t len, int flags)
{
    return real.mmap(addr, len, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (flags & MAP_FIXED), -1, 0);
}

/* Map domain frame into the page at a. */
static int map_frame(uintptr_t a, uint64_t frame, int prot)
{
    void *p = real.mmap((void *)a, PAGE, prot, MAP_SHARED | MAP_FIXED, dom_fd,
                        (off_t)(frame << PAGE_SHIFT));
    return p == MAP_FAILED ? -errno : 0;
}

static void *fail_ptr(int e)
{
    errno = e;
    return MAP_FAILED;
}

static void *privcmd_mmap(struct sfile *f, void *addr, size_t len, int prot, int flags)
{
    void *a = reserve(addr, len, flags);
    if (a == MAP_FAILED)
        return a;
    struct vma *v = calloc(1, sizeof *v);
    uint8_t *set = calloc(len / PAGE, 1);
    if (v == NULL || set == NULL) {
        free(v);
        free(set);
        real.munmap(a, len);
        return fail_ptr(ENOMEM);
    }
    *v = (struct vma){vmas, DEV_PRIVCMD, (uintptr_t)a, len, prot, f, false, set, NULL};
    vmas = v;
    f->refs++;
    st.privcmd_mmaps++;
    st.live_windows++;
    return a;
}

static struct gentry *gentry_find(struct sfile *f, uint64_t index, uint32_t count)
{
    for (struct gentry *g = f->maps; g != NULL; g = g->next)
        if (g->index == index && (count == 0 || g->count == count))
            return g;
    return NULL;
}

/* Can ref be mapped with prot?  The hypervisor's check. */
static bool grant_ok(const struct sim_grant_ref *r, int prot)
{
    if (dom_fd < 0 || r->domid != dom_id || r->ref >= ngrants)
        return false;
    const struct grant *g = &grants[r->ref];
    return g->granted && !(g->readonly && (prot & PROT_WRITE)) && g->frame < dom_frames;
}

static void *gntdev_mmap(struct sfile *f, void *addr, size_t len, int prot, int flags, off_t off)
{
    if ((prot & PROT_WRITE) && !(flags & MAP_SHARED))
        return fail_ptr(EINVAL);
    struct gentry *g = gentry_find(f, (uint64_t)off >> PAGE_SHIFT, (uint32_t)(len / PAGE));
    if (g == NULL || g->vma != NULL || (uint64_t)g->count * PAGE != len)
        return fail_ptr(EINVAL);
    for (uint32_t i = 0; i < g->count; i++)
        if (!grant_ok(&g->refs[i], prot)) {
            st.grant_mmap_fails++;
            return fail_ptr(EINVAL);
        }
    void *a = reserve(addr, len, flags);
    if (a == MAP_FAILED)
        return a;
    for (uint32_t i = 0; i < g->count; i++) {
        int e = map_frame((uintptr_t)a + (size_t)i * PAGE, grants[g->refs[i].ref].frame, prot);
        if (e < 0) {
            real.munmap(a, len);
            return fail_ptr(-e);
        }
    }
    struct vma *v = calloc(1, sizeof *v);
    if (v == NULL) {
        real.munmap(a, len);
        return fail_ptr(ENOMEM);
    }
    *v = (struct vma){vmas, DEV_GNTDEV, (uintptr_t)a, len, prot, f, false, NULL, g};
    vmas = v;
    g->vma = v;
    f->refs++;
    st.grant_mmaps++;
    st.live_grant_vmas++;
    st.grant_pages_mapped += g->count;
    st.live_grant_pages += g->count;
    return a;
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    init();
    if (fd < 0 || (flags & MAP_ANONYMOUS))
        return real.mmap(addr, len, prot, flags, fd, off);
    pthread_mutex_lock(&lock);
    struct sfile *f = file_of(fd);
    if (f == NULL) {
        pthread_mutex_unlock(&lock);
        return real.mmap(addr, len, prot, flags, fd, off);
    }
    void *r;
    bool misaligned =
        (off & (PAGE - 1)) != 0 || (((uintptr_t)addr & (PAGE - 1)) && (flags & MAP_FIXED));
    if (len == 0 || misaligned)
        r = fail_ptr(EINVAL);
    else if ((flags & MAP_SHARED) && (prot & PROT_WRITE) && !f->writable)
        r = fail_ptr(EACCES);
    else {
        len = (len + PAGE - 1) & ~(size_t)(PAGE - 1);
        r = f->type == DEV_PRIVCMD ? privcmd_mmap(f, addr, len, prot, flags)
                                   : gntdev_mmap(f, addr, len, prot, flags, off);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return do_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    /* off64_t is off_t on 64-bit hosts; on 32-bit ones the devices' offsets
     * (page indexes) fit in off_t, anything larger is refused. */
    if (off != (off_t)off)
        return fail_ptr(EINVAL);
    return do_mmap(addr, len, prot, flags, fd, (off_t)off);
}

static void vma_release(struct vma *v)
{
    vma_unlink(v);
    if (v->type == DEV_PRIVCMD) {
        st.privcmd_munmaps++;
        st.live_windows--;
        free(v->page_set);
    } else {
        v->gent->vma = NULL;
        st.grant_munmaps++;
        st.live_grant_vmas--;
        st.live_grant_pages -= v->gent->count;
    }
    file_put(v->file);
    free(v);
}

int munmap(void *addr, size_t len)
{
    init();
    uintptr_t a = (uintptr_t)addr;
    size_t l = (len + PAGE - 1) & ~(size_t)(PAGE - 1);
    pthread_mutex_lock(&lock);
    if (vmas != NULL && (a & (PAGE - 1)) == 0 && l != 0) {
        /* Every device mapping the range touches must lie wholly inside it. */
        for (struct vma *v = vmas, *next; v != NULL; v = next) {
            next = v->next;
            if (v->start >= a + l || v->start + v->len <= a)
                continue;
            if (v->start < a || v->start + v->len > a + l) {
                st.bad_calls++;
                fprintf(stderr, "xensim: munmap(%p, %zu) cuts the device mapping at %p+%zu: "
                                "not modelled\n",
                        addr, len, (void *)v->start, v->len);
                continue;
            }
            vma_release(v);
        }
    }
    pthread_mutex_unlock(&lock);
    return real.munmap(addr, len);
}

/* ---- ioctl ---- */

static int fail_int(int e)
{
    errno = e;
    return -1;
}

static int privcmd_batch(struct sim_mmapbatch_v2 *m)
{
    if (m->num == 0)
        return fail_int(EINVAL);
    if (m->err == NULL || m->arr == NULL)
        return fail_int(EFAULT);
    memset(m->err, 0, m->num * sizeof *m->err);
    struct vma *v = vma_at((uintptr_t)m->addr);
    if (v == NULL || v->type != DEV_PRIVCMD)
        return fail_int(EINVAL);
    size_t first = ((uintptr_t)m->addr - v->start) / PAGE;
    if (((uintptr_t)m->addr & (PAGE - 1)) || (uint64_t)m->num > v->len / PAGE - first)
        return fail_int(EINVAL);
    if (!v->populated) {
        if (first != 0 || (uint64_t)m->num != v->len / PAGE)
            return fail_int(EINVAL);
        v->populated = true;
    } else {
        for (size_t i = 0; i < m->num; i++)
            if (v->page_set[first + i])
                return fail_int(EINVAL);
    }
    st.batch_calls++;
    bool enoent = false;
    for (size_t i = 0; i < m->num; i++) {
        uint64_t fr = m->arr[i];
        int e;
        if (dom_fd < 0 || m->dom != dom_id)
            e = -ESRCH;
        else if (fr >= dom_frames)
            e = -EINVAL;
        else if (paged_out[fr])
            e = -ENOENT;
        else
            e = map_frame(v->start + (first + i) * PAGE, fr, v->prot);
        m->err[i] = e;
        if (e == 0) {
            v->page_set[first + i] = 1;
            st.frames_mapped++;
        } else {
            st.frame_errors++;
            enoent |= e == -ENOENT;
        }
    }
    return enoent ? fail_int(ENOENT) : 0;
}

static int gntdev_map_ioctl(struct sfile *f, struct sim_map_grant_ref *u)
{
    if (u->count == 0)
        return fail_int(EINVAL);
    struct gentry *g = calloc(1, sizeof *g);
    struct sim_grant_ref *refs = calloc(u->count, sizeof *refs);
    if (g == NULL || refs == NULL) {
        free(g);
        free(refs);
        return fail_int(ENOMEM);
    }
    memcpy(refs, u->refs, u->count * sizeof *refs);
    g->refs = refs;
    g->count = u->count;
    /* First fit in the sorted list of entries (gntdev_add_map). */
    struct gentry **pp = &f->maps;
    uint64_t index = 0;
    while (*pp != NULL && index + g->count > (*pp)->index) {
        index = (*pp)->index + (*pp)->count;
        pp = &(*pp)->next;
    }
    g->index = index;
    g->next = *pp;
    *pp = g;
    u->index = index << PAGE_SHIFT;
    st.grant_map_ioctls++;
    st.live_grant_maps++;
    return 0;
}

static int gntdev_unmap_ioctl(struct sfile *f, const struct sim_unmap_grant_ref *u)
{
    struct gentry *g = gentry_find(f, u->index >> PAGE_SHIFT, u->count);
    if (g == NULL || (u->index & (PAGE - 1)))
        return fail_int(ENOENT);
    if (g->vma != NULL) {
        st.unmap_busy++;
        return fail_int(EBUSY);
    }
    for (struct gentry **pp = &f->maps; *pp != NULL; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    free(g->refs);
    free(g);
    st.grant_unmap_ioctls++;
    st.live_grant_maps--;
    return 0;
}

int ioctl(int fd, unsigned long req, ...)
{
    init();
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    pthread_mutex_lock(&lock);
    struct sfile *f = file_of(fd);
    if (f == NULL) {
        pthread_mutex_unlock(&lock);
        return real.ioctl(fd, req, arg);
    }
    int r;
    if (arg == NULL)
        r = fail_int(EFAULT);
    else if (f->type == DEV_PRIVCMD && req == SIM_MMAPBATCH_V2)
        r = privcmd_batch(arg);
    else if (f->type == DEV_GNTDEV && req == SIM_MAP_GRANT_REF)
        r = gntdev_map_ioctl(f, arg);
    else if (f->type == DEV_GNTDEV && req == SIM_UNMAP_GRANT_REF)
        r = gntdev_unmap_ioctl(f, arg);
    else
        r = fail_int(ENOTTY);
    pthread_mutex_unlock(&lock);
    return r;
}

/* ---- control interface ---- */

static int ctl_domain(uint32_t domid, uint64_t nframes)
{
    init();
    if (nframes == 0 || nframes > (1ull << 30))
        return -EINVAL;
    int fd = memfd_create("xensim-domain", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint8_t *po = calloc(nframes, 1);
    if (po == NULL || ftruncate(fd, (off_t)(nframes * PAGE)) < 0) {
        int e = po == NULL ? ENOMEM : errno;
        free(po);
        real.close(fd);
        return -e;
    }
    pthread_mutex_lock(&lock);
    if (dom_fd >= 0)
        real.close(dom_fd); /* existing mappings keep the old memory */
    dom_fd = fd;
    dom_id = domid;
    dom_frames = nframes;
    free(paged_out);
    paged_out = po;
    pthread_mutex_unlock(&lock);
    return fd;
}

static int ctl_grant(uint32_t ref, uint64_t frame, bool readonly)
{
    pthread_mutex_lock(&lock);
    int rc = 0;
    if (frame >= dom_frames) {
        rc = -EINVAL;
    } else if (ref >= ngrants) {
        size_t n = ngrants ? ngrants : 64;
        while (n <= ref)
            n *= 2;
        struct grant *g = realloc(grants, n * sizeof *g);
        if (g == NULL) {
            rc = -ENOMEM;
        } else {
            memset(g + ngrants, 0, (n - ngrants) * sizeof *g);
            grants = g;
            ngrants = n;
        }
    }
    if (rc == 0)
        grants[ref] = (struct grant){true, readonly, frame};
    pthread_mutex_unlock(&lock);
    return rc;
}

static bool ref_mapped(uint32_t ref)
{
    for (struct vma *v = vmas; v != NULL; v = v->next)
        if (v->type == DEV_GNTDEV)
            for (uint32_t i = 0; i < v->gent->count; i++)
                if (v->gent->refs[i].ref == ref && v->gent->refs[i].domid == dom_id)
                    return true;
    return false;
}

static int ctl_revoke(uint32_t ref)
{
    pthread_mutex_lock(&lock);
    int rc = 0;
    if (ref >= ngrants || !grants[ref].granted)
        rc = -ENOENT;
    else if (ref_mapped(ref))
        rc = -EBUSY;
    else
        grants[ref].granted = false;
    pthread_mutex_unlock(&lock);
    return rc;
}

static int ctl_revoke_all(void)
{
    pthread_mutex_lock(&lock);
    int busy = 0;
    for (size_t i = 0; i < ngrants; i++) {
        if (!grants[i].granted)
            continue;
        if (ref_mapped((uint32_t)i))
            busy++;
        else
            grants[i].granted = false;
    }
    pthread_mutex_unlock(&lock);
    return busy;
}

static int ctl_page_out(uint64_t frame, bool out)
{
    pthread_mutex_lock(&lock);
    int rc = frame < dom_frames ? 0 : -EINVAL;
    if (rc == 0)
        paged_out[frame] = out;
    pthread_mutex_unlock(&lock);
    return rc;
}

static void ctl_stats(struct xensim_stats *out)
{
    pthread_mutex_lock(&lock);
    *out = st;
    pthread_mutex_unlock(&lock);
}

static const struct xensim_api api = {
    .version = XENSIM_API_VERSION,
    .domain = ctl_domain,
    .grant = ctl_grant,
    .revoke = ctl_revoke,
    .revoke_all = ctl_revoke_all,
    .page_out = ctl_page_out,
    .stats = ctl_stats,
};

const struct xensim_api *xensim_api(void)
{
    return &api;
}

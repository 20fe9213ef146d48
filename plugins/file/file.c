/*
 * Provider "file": guest memory backed by a file, as VMMs use it for memory
 * shared with vhost-user back-ends, for snapshots and for hugetlbfs.
 *
 * Exactly one backing source:
 *   path=FILE    an existing file (regular file, block device, a file in
 *                /dev/shm or on hugetlbfs).  With the flag `create` a missing
 *                file is created (mode 0600) and a file shorter than
 *                offset+size is grown to it (never shrunk).  A file this
 *                provider created is removed again if the map then fails.
 *   fd=N         a descriptor the caller already has open (memfd, shm, a
 *                vhost-user region fd).  The provider dup()s it
 *                (F_DUPFD_CLOEXEC) and works on the duplicate: the caller
 *                keeps ownership of N and may close it at once.
 *   memfd=NAME   a new anonymous memfd, sized to offset+size.  The flag `seal`
 *                seals it to that size (F_SEAL_GROW | F_SEAL_SHRINK |
 *                F_SEAL_SEAL), so nobody it is passed to can truncate it
 *                under the guest.
 * Other options:
 *   offset=N     where the region starts in the file; a multiple of the page
 *                size (of the huge page size on hugetlbfs).  Default 0.
 *   shared       MAP_SHARED, the default: guest writes reach the file.
 *   private      MAP_PRIVATE: guest writes stay in this process.
 *   prot=r|rw    default rw.  prot=r maps PROT_READ; the core then refuses
 *                writes with VMMEM_EREAD_ONLY instead of faulting.
 *   nosizecheck  skip the file-size check, for special files whose size
 *                reads as 0 (character devices, some memfd kinds).  Block
 *                devices need no flag: their size is read with BLKGETSIZE64.
 *
 * Errors (each message names the region and the file):
 *   VMMEM_EMISSING_KEY   none of path=, fd=, memfd=
 *   VMMEM_EBAD_VALUE     more than one of them; offset not page-aligned;
 *                        fd= not a decimal descriptor number; prot= not r/rw;
 *                        shared with private; create without path= or with
 *                        prot=r; seal without memfd=
 *   VMMEM_EBAD_NUMBER    offset= not a number
 *   VMMEM_EOVERFLOW      offset + size does not fit in off_t / size_t
 *   -ERANGE              the file is shorter than offset + size (the message
 *                        gives the file, its size and offset + size), since
 *                        touching a page past the end would raise SIGBUS;
 *                        the same code the vhost-user layer (vhost.h) uses
 *                        for an offset past the end of a region's fd
 *   -EBADF               fd= is not open
 *   -EISDIR              path= (or fd=) is a directory
 *   -EACCES              the file (or fd=) cannot be opened/used for writing
 *                        but a shared prot=rw mapping was asked for
 *   -errno               open, memfd_create, ftruncate, fcntl or mmap failed
 *
 * The region reports fd (the descriptor the provider keeps open until the
 * region is unmapped: pass it on for vhost-user SET_MEM_TABLE, do not close
 * it), file_offset (offset=), hugetlbfs (fstatfs == HUGETLBFS_MAGIC) and
 * file ("PATH", "memfd:NAME" or "fd:N" with the caller's N).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/magic.h>

#include <vmmem/provider.h>

#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

static const struct vmmem_host *host;

static const struct vmmem_option_desc file_options[] = {
    {"path", VMMEM_OPT_VALUE, "backing file (one of path=, fd=, memfd=)"},
    {"fd", VMMEM_OPT_VALUE, "inherited descriptor; it is dup()ed, the caller keeps it"},
    {"memfd", VMMEM_OPT_VALUE, "create an anonymous memfd with this name"},
    {"offset", VMMEM_OPT_VALUE, "page-aligned offset of the region in the file (default 0)"},
    {"create", VMMEM_OPT_FLAG, "with path=: create the file and grow it to offset+size"},
    {"seal", VMMEM_OPT_FLAG, "with memfd=: seal it to its size (no grow/shrink)"},
    {"shared", VMMEM_OPT_FLAG, "MAP_SHARED: guest writes reach the file (the default)"},
    {"private", VMMEM_OPT_FLAG, "MAP_PRIVATE: guest writes stay in this process"},
    {"prot", VMMEM_OPT_VALUE, "r (read-only) or rw (default)"},
    {"nosizecheck", VMMEM_OPT_FLAG, "map even if the size reads as too small (devices)"},
    {NULL, 0, NULL},
};

#include "file_opts.h"

struct file_state {
    void *base;
    size_t len; /* mapped length (size rounded up to the page size) */
    int fd;     /* the descriptor the provider owns */
    char *name; /* mapping->file */
};


/* Open path= into st->fd; *created tells whether this call made the file. */
static int open_path(const struct vmmem_region_spec *spec, const struct file_req *rq,
                     struct file_state *st, bool *created)
{
    /* Only a shared writable mapping needs a writable descriptor; MAP_PRIVATE
     * with PROT_WRITE works on a read-only one. */
    int acc = (rq->shared && rq->rw) || rq->create ? O_RDWR : O_RDONLY;
    int fd = -1;
    if (rq->create) {
        fd = open(rq->path, acc | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
        if (fd >= 0)
            *created = true;
        else if (errno != EEXIST)
            goto fail;
    }
    if (fd < 0)
        fd = open(rq->path, acc | O_CLOEXEC);
    if (fd < 0)
        goto fail;
    st->fd = fd;
    st->name = strdup(rq->path);
    if (st->name == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    return 0;
fail:;
    int e = errno;
    if (e == ENOENT)
        return host->set_error(-e, "file region at 0x%llx: '%s' does not exist%s", ADDR(spec),
                               rq->path, rq->create ? "" : " (add 'create' to create it)");
    if ((e == EACCES || e == EROFS || e == EPERM) && acc == O_RDWR)
        return host->set_error(-EACCES,
                               "file region at 0x%llx: cannot open '%s' read-write: %s (a "
                               "read-only file needs prot=r or private)",
                               ADDR(spec), rq->path, strerror(e));
    return host->set_error(-e, "file region at 0x%llx: cannot open '%s': %s", ADDR(spec),
                           rq->path, strerror(e));
}

static int dup_fd(const struct vmmem_region_spec *spec, const struct file_req *rq,
                  struct file_state *st)
{
    int fl = fcntl(rq->user_fd, F_GETFL);
    if (fl < 0)
        return host->set_error(-EBADF, "file region at 0x%llx: fd=%d is not an open descriptor",
                               ADDR(spec), rq->user_fd);
    if ((fl & O_ACCMODE) == O_WRONLY)
        return host->set_error(-EACCES,
                               "file region at 0x%llx: fd=%d is open write-only; mapping needs "
                               "read access",
                               ADDR(spec), rq->user_fd);
    if ((fl & O_ACCMODE) == O_RDONLY && rq->shared && rq->rw)
        return host->set_error(-EACCES,
                               "file region at 0x%llx: fd=%d is open read-only; a shared prot=rw "
                               "mapping needs O_RDWR (use prot=r or private)",
                               ADDR(spec), rq->user_fd);
    st->fd = fcntl(rq->user_fd, F_DUPFD_CLOEXEC, 0);
    if (st->fd < 0) {
        int e = errno;
        return host->set_error(-e, "file region at 0x%llx: cannot dup fd=%d: %s", ADDR(spec),
                               rq->user_fd, strerror(e));
    }
    char buf[32];
    snprintf(buf, sizeof buf, "fd:%d", rq->user_fd);
    st->name = strdup(buf);
    if (st->name == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    return 0;
}

static int make_memfd(const struct vmmem_region_spec *spec, const struct file_req *rq,
                      struct file_state *st)
{
    size_t n = strlen(rq->memfd) + sizeof "memfd:";
    st->name = malloc(n);
    if (st->name == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    snprintf(st->name, n, "memfd:%s", rq->memfd);
    st->fd = memfd_create(rq->memfd, MFD_CLOEXEC | (rq->seal ? MFD_ALLOW_SEALING : 0u));
    if (st->fd < 0) {
        int e = errno;
        return host->set_error(-e, "file region at 0x%llx: memfd_create('%s') failed: %s",
                               ADDR(spec), rq->memfd, strerror(e));
    }
    return 0;
}

/* Grow the file to need bytes (create / memfd); *old_size gets the size it
 * had when it was grown, so a failing map can put it back. */
static int size_file(const struct vmmem_region_spec *spec, const struct file_state *st,
                     uint64_t need, off_t *old_size)
{
    struct stat sb;
    if (fstat(st->fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size >= need)
        return 0; /* nothing to grow; the size check below has the last word */
    *old_size = sb.st_size;
    if (ftruncate(st->fd, (off_t)need) < 0) {
        int e = errno;
        return host->set_error(-e, "file region at 0x%llx: cannot size '%s' to %llu bytes: %s",
                               ADDR(spec), st->name, ULL(need), strerror(e));
    }
    return 0;
}

static int check_size(const struct vmmem_region_spec *spec, const struct file_req *rq,
                      const struct file_state *st, uint64_t need)
{
    struct stat sb;
    if (fstat(st->fd, &sb) < 0) {
        int e = errno;
        return host->set_error(-e, "file region at 0x%llx: cannot stat '%s': %s", ADDR(spec),
                               st->name, strerror(e));
    }
    if (S_ISDIR(sb.st_mode))
        return host->set_error(-EISDIR, "file region at 0x%llx: '%s' is a directory",
                               ADDR(spec), st->name);
    if (rq->nosizecheck)
        return 0;
    /* Regular files have their size; block devices tell it by ioctl; for
     * everything else (character devices, ...) the size reads as 0. */
    uint64_t have = 0;
    if (S_ISREG(sb.st_mode) && sb.st_size > 0)
        have = (uint64_t)sb.st_size;
    if (S_ISBLK(sb.st_mode) && ioctl(st->fd, BLKGETSIZE64, &have) != 0)
        have = 0;
    if (have < need)
        return host->set_error(-ERANGE,
                               "file region at 0x%llx: '%s' is %llu bytes, shorter than offset + "
                               "size = %llu bytes (0x%llx + 0x%llx); touching the missing pages "
                               "would raise SIGBUS (grow the file, or give 'nosizecheck' for a "
                               "device whose size reads as 0)",
                               ADDR(spec), st->name, ULL(have), ULL(need), ULL(rq->offset),
                               ULL(spec->size));
    return 0;
}

static void release(struct file_state *st)
{
    if (st == NULL)
        return;
    if (st->base != NULL)
        munmap(st->base, st->len);
    if (st->fd >= 0)
        close(st->fd);
    free(st->name);
    free(st);
}

static int file_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    (void)p;
    struct file_req rq;
    int rc = parse_req(spec, &rq);
    if (rc < 0)
        return rc;
    struct file_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    st->fd = -1;
    bool created = false;
    off_t old_size = -1; /* >= 0: an existing file was grown from this size */
    uint64_t need = rq.offset + spec->size;

    if (rq.path != NULL)
        rc = open_path(spec, &rq, st, &created);
    else if (rq.memfd != NULL)
        rc = make_memfd(spec, &rq, st);
    else
        rc = dup_fd(spec, &rq, st);
    if (rc < 0)
        goto fail;

    /* hugetlbfs: offsets and lengths are in huge pages (f_bsize). */
    uint64_t page = host->page_size;
    int huge = -1;
    struct statfs sf;
    if (fstatfs(st->fd, &sf) == 0) {
        huge = (unsigned long)sf.f_type == (unsigned long)HUGETLBFS_MAGIC;
        if (huge && sf.f_bsize > 0 && ((uint64_t)sf.f_bsize & ((uint64_t)sf.f_bsize - 1)) == 0)
            page = (uint64_t)sf.f_bsize;
    }
    if ((rq.offset & (page - 1)) != 0) {
        rc = host->set_error(VMMEM_EBAD_VALUE,
                             "file region at 0x%llx: offset 0x%llx is not a multiple of the "
                             "huge page size %llu of '%s'",
                             ADDR(spec), ULL(rq.offset), ULL(page), st->name);
        goto fail;
    }
    uint64_t len = spec->size + (page - 1);
    if (len < spec->size || (len & ~(page - 1)) > SIZE_MAX) {
        rc = host->set_error(VMMEM_EOVERFLOW, "file region at 0x%llx: size 0x%llx too large",
                             ADDR(spec), ULL(spec->size));
        goto fail;
    }
    len &= ~(page - 1);

    if (rq.create || rq.memfd != NULL) {
        /* hugetlbfs files can only be sized in whole huge pages. */
        uint64_t want = huge == 1 ? rq.offset + len : need;
        rc = size_file(spec, st, want, &old_size);
        if (rc < 0)
            goto fail;
    }
    if (rq.seal && fcntl(st->fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        int e = errno;
        rc = host->set_error(-e, "file region at 0x%llx: cannot seal '%s': %s", ADDR(spec),
                             st->name, strerror(e));
        goto fail;
    }
    rc = check_size(spec, &rq, st, need);
    if (rc < 0)
        goto fail;

    int prot = PROT_READ | (rq.rw ? PROT_WRITE : 0);
    void *a = mmap(NULL, (size_t)len, prot, rq.shared ? MAP_SHARED : MAP_PRIVATE, st->fd,
                   (off_t)rq.offset);
    if (a == MAP_FAILED) {
        int e = errno;
        rc = host->set_error(-e,
                             "file region at 0x%llx: mmap of %llu bytes of '%s' at offset 0x%llx "
                             "failed: %s%s",
                             ADDR(spec), ULL(len), st->name, ULL(rq.offset), strerror(e),
                             e == EACCES ? " (a shared prot=rw mapping needs a writable file)"
                                         : "");
        goto fail;
    }
    st->base = a;
    st->len = (size_t)len;

    out->host = a;
    out->prot = rq.rw ? VMMEM_PROT_RW : VMMEM_PROT_READ;
    out->fd = st->fd;
    out->file_offset = rq.offset;
    out->hugetlbfs = huge;
    out->file = st->name;
    out->priv = st;
    return 0;

fail:
    /* Leave the file system as it was: remove what we created, shrink back
     * what we grew (a failing map changes nothing the caller can observe). */
    if (created) {
        unlink(rq.path);
    } else if (old_size >= 0 && rq.path != NULL && st->fd >= 0 &&
               ftruncate(st->fd, old_size) != 0) {
        /* best effort: the map's own error is the one to report */
    }
    release(st);
    return rc;
}

static void file_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *m)
{
    (void)p;
    (void)spec;
    release(m->priv);
    m->priv = NULL;
    m->host = NULL;
    m->fd = -1;
    m->file = NULL;
}

static const struct vmmem_provider file_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "file",
    .description = "a file, inherited fd or memfd (offset, shared/private, read-only, "
                   "hugetlbfs); its fd is queryable for vhost-user",
    .options = file_options,
    .map = file_map,
    .unmap = file_unmap,
};

VMMEM_PLUGIN_DEFINE("vmmem-file", host, &file_provider)

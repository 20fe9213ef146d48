/*
 * Positioned scatter/gather I/O between a file and guest memory (map.h:
 * vmmem_preadv_from_fd, vmmem_pwritev_to_fd).  Built on the public API
 * only: regions are found with vmmem_map_find, host pointers come from
 * slices (which also map map-on-access regions for the call), and a read
 * into guest memory is marked with vmmem_map_mark_dirty after the data has
 * landed, so a harvest between the mark and the data cannot lose it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if !defined(_WIN32)
#include <sys/uio.h>
#include <unistd.h>
#endif

/* Host pieces per system call (Linux's UIO_MAXIOV is 1024). */
#define IOV_BATCH 64u
/* One piece maps at most this much (a slice length is a size_t). */
#define PIECE_MAX ((uint64_t)1 << 30)

/* Check every range: backed, writable when `into`, totals in range. */
static int check_ranges(const vmmem_map *m, const struct vmmem_gvec *v, size_t n, bool into,
                        uint64_t offset, uint64_t *total)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) { /* arithmetic first, then memory */
        uint64_t a = v[i].addr, len = v[i].len;
        if (len == 0)
            continue;
        if (len - 1 > UINT64_MAX - a)
            return vmmem__err_addr(VMMEM_EOVERFLOW, a,
                                   "range %zu: 0x%" PRIx64 " + 0x%" PRIx64 " wraps past 2^64", i,
                                   a, len);
        if (len > (uint64_t)INT64_MAX - sum)
            return vmmem__err_addr(VMMEM_EOVERFLOW, a, "ranges total more than INT64_MAX bytes");
        sum += len;
    }
    if (offset > (uint64_t)INT64_MAX || sum > (uint64_t)INT64_MAX - offset)
        return vmmem__err_addr(VMMEM_EOVERFLOW, offset,
                               "file offset 0x%" PRIx64 " + 0x%" PRIx64 " passes INT64_MAX",
                               offset, sum);
    for (size_t i = 0; i < n; i++) {
        uint64_t a = v[i].addr, len = v[i].len;
        while (len > 0) {
            uint64_t off;
            const vmmem_region *r = vmmem_map_find(m, a, &off);
            if (r == NULL)
                return vmmem__err_addr(VMMEM_EINVALID_ADDRESS, a,
                                       "range %zu: guest address 0x%" PRIx64
                                       " is not backed by any region",
                                       i, a);
            struct vmmem_region_info info;
            vmmem_region_get_info(r, &info);
            if (into && !(info.prot & VMMEM_PROT_WRITE))
                return vmmem__err_addr(VMMEM_EREAD_ONLY, a,
                                       "range %zu: guest address 0x%" PRIx64
                                       " is in a read-only region",
                                       i, a);
            uint64_t piece = info.size - off < len ? info.size - off : len;
            len -= piece;
            a += piece; /* cannot wrap: checked above (a piece ending at 2^64 ends len) */
        }
    }
    *total = sum;
    return 0;
}

#if defined(_WIN32)
static int64_t gvec_io(const vmmem_map *m, const struct vmmem_gvec *v, size_t n, int fd,
                       uint64_t offset, bool into)
{
    uint64_t total = 0;
    int rc = check_ranges(m, v, n, into, offset, &total); /* the same argument errors */
    if (rc < 0)
        return rc;
    (void)fd;
    if (total == 0)
        return 0;
    return vmmem__err(VMMEM_EUNSUPPORTED, "positioned vectored I/O is not available on Windows");
}
#else
/* Cursor over the ranges: range i, byte off in it. */
struct cursor {
    size_t i;
    uint64_t off;
};

/* Mark dirty `bytes` guest bytes from cursor c on (they were just filled). */
static void mark_filled(const vmmem_map *m, const struct vmmem_gvec *v, struct cursor c,
                        uint64_t bytes)
{
    while (bytes > 0) {
        uint64_t left = v[c.i].len - c.off;
        uint64_t k = left < bytes ? left : bytes;
        if (k > 0)
            (void)vmmem_map_mark_dirty(m, v[c.i].addr + c.off, k); /* backed: checked */
        bytes -= k;
        c.i++;
        c.off = 0;
    }
}

static int64_t gvec_io(const vmmem_map *m, const struct vmmem_gvec *v, size_t n, int fd,
                       uint64_t offset, bool into)
{
    uint64_t total = 0;
    int rc = check_ranges(m, v, n, into, offset, &total);
    if (rc < 0)
        return rc;
    struct cursor cur = {0, 0};
    uint64_t done = 0;
    int prot = into ? VMMEM_PROT_RW : VMMEM_PROT_READ;
    while (done < total) {
        /* Gather up to IOV_BATCH host pieces from the cursor on. */
        struct iovec iov[IOV_BATCH];
        vmmem_slice sl[IOV_BATCH];
        size_t cnt = 0;
        uint64_t batch = 0;
        struct cursor c = cur;
        while (cnt < IOV_BATCH && c.i < n) {
            uint64_t left = v[c.i].len - c.off;
            if (left == 0) {
                c.i++;
                c.off = 0;
                continue;
            }
            uint64_t a = v[c.i].addr + c.off, roff;
            const vmmem_region *r = vmmem_map_find(m, a, &roff);
            uint64_t piece = vmmem_region_size(r) - roff;
            if (piece > left)
                piece = left;
            if (piece > PIECE_MAX)
                piece = PIECE_MAX;
            rc = vmmem_get_slice_prot(m, a, (size_t)piece, prot, &sl[cnt]);
            if (rc < 0)
                break; /* a map-on-access region refused: do what we have */
            iov[cnt].iov_base = sl[cnt].ptr;
            iov[cnt].iov_len = (size_t)piece;
            cnt++;
            batch += piece;
            c.off += piece;
        }
        if (cnt == 0) {
            if (done == 0)
                return rc;
            break;
        }
        /* Move the batch; a short write is resumed, a short read ends. */
        uint64_t moved = 0;
        size_t first = 0;
        int err = 0;
        while (moved < batch) {
            ssize_t got;
            do
                got = into ? preadv(fd, iov + first, (int)(cnt - first), (off_t)(offset + done + moved))
                           : pwritev(fd, iov + first, (int)(cnt - first),
                                     (off_t)(offset + done + moved));
            while (got < 0 && errno == EINTR);
            if (got < 0) {
                err = -errno;
                break;
            }
            if (got == 0)
                break;
            moved += (uint64_t)got;
            if (into)
                break; /* a short read is end of file (or a pipe): never skip ahead */
            size_t k = (size_t)got; /* skip what was written */
            while (first < cnt && k >= iov[first].iov_len)
                k -= iov[first++].iov_len;
            if (first < cnt) {
                iov[first].iov_base = (uint8_t *)iov[first].iov_base + k;
                iov[first].iov_len -= k;
            }
        }
        for (size_t k = 0; k < cnt; k++)
            vmmem_slice_release(&sl[k]);
        if (into && moved > 0)
            mark_filled(m, v, cur, moved);
        done += moved;
        if (err < 0 && done == 0)
            return vmmem__err(err, "fd %d: %s at file offset 0x%" PRIx64, fd, strerror(-err),
                              offset);
        if (moved < batch || rc < 0)
            break;
        cur = c;
    }
    return (int64_t)done;
}
#endif

static int64_t gvec_entry(const vmmem_map *m, const struct vmmem_gvec *v, size_t n, int fd,
                          uint64_t offset, bool into)
{
    if (m == NULL || (v == NULL && n > 0))
        return vmmem__err(-EINVAL, "%s: NULL argument",
                          into ? "vmmem_preadv_from_fd" : "vmmem_pwritev_to_fd");
    return gvec_io(m, v, n, fd, offset, into);
}

int64_t vmmem_preadv_from_fd(const vmmem_map *m, const struct vmmem_gvec *v, size_t n, int fd,
                             uint64_t offset)
{
    return gvec_entry(m, v, n, fd, offset, true);
}

int64_t vmmem_pwritev_to_fd(const vmmem_map *m, const struct vmmem_gvec *v, size_t n, int fd,
                            uint64_t offset)
{
    return gvec_entry(m, v, n, fd, offset, false);
}

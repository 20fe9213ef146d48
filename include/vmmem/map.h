/*
 * libvmmem - the guest memory map and accesses to it.
 *
 * A map is an immutable, reference-counted set of non-overlapping regions,
 * sorted by guest address, with O(1) lookup for the usual layouts (a direct
 * index of at most 1024 buckets; O(log n) bisection inside a bucket two
 * regions share, and for far-flung small regions).  It is safe to use one map
 * from any number of threads at once.  Regions may touch; gaps between them
 * are holes.  A region may reach the very last guest byte (UINT64_MAX): the
 * rule is that start + size - 1 must not wrap.
 *
 * Access semantics (the vm-memory crate's Bytes trait):
 *  - vmmem_read/vmmem_write return the number of bytes done; they stop short
 *    at the first hole after at least one byte; a hole at the first byte is
 *    VMMEM_EINVALID_ADDRESS; a zero length always returns 0, even unbacked.
 *  - *_slice and *_obj are all-or-error.  Unlike the crate, they check the
 *    whole range first, so a failing call leaves guest memory (and for
 *    reads, the caller's buffer) untouched: VMMEM_EPARTIAL reports
 *    expected = len, completed = 0 and addr = the first unbacked byte.
 *  - copies of 8 bytes or less are done with single volatile accesses of the
 *    widest alignment that source and destination share, even across a
 *    region seam, so an aligned u16/u32/u64 is never torn.
 *  - every write path marks the dirty bitmap when tracking is on (dirty.h).
 *  - a write into a read-only region (prot=r) is VMMEM_EREAD_ONLY, never a
 *    fault; vmmem_write stops short at one after the first byte.
 */
#ifndef VMMEM_MAP_H
#define VMMEM_MAP_H

#include "address.h"
#include "common.h"
#include "provider.h"

VMMEM_BEGIN_DECLS

typedef struct vmmem_map vmmem_map;           /* a guest memory map */
typedef struct vmmem_region vmmem_region;     /* one region of a map */
typedef struct vmmem_registry vmmem_registry; /* providers by name (registry.h) */

/* Options for building a map; NULL means all defaults. */
struct vmmem_map_options {
    uint32_t struct_size;     /* sizeof(struct vmmem_map_options) */
    uint32_t flags;           /* VMMEM_MAP_* */
    uint64_t dirty_page_size; /* power of two; 0 = 4096 */
};
#define VMMEM_MAP_DIRTY_TRACKING 0x1u /* start with dirty tracking on */

/*
 * Build a map from n region specs given in any order; the core sorts them.
 * Each spec is mapped by the provider it names, looked up in reg (NULL =
 * the process-wide default registry, see registry.h).  Errors: -EINVAL for
 * NULL arguments, VMMEM_ENO_REGIONS (n == 0), VMMEM_EZERO_SIZE,
 * VMMEM_EOVERFLOW (start + size - 1 wraps), VMMEM_EOVERLAP,
 * VMMEM_ENO_PROVIDER, VMMEM_EUNKNOWN_KEY / EMISSING_KEY / EDUPLICATE_KEY, or
 * whatever a provider's map hook returns.  On failure nothing stays mapped
 * and *out is untouched.  Specs are copied; the caller keeps ownership.
 */
VMMEM_EXPORT int vmmem_map_new(vmmem_map **out, vmmem_registry *reg,
                               const struct vmmem_region_spec *specs, size_t n,
                               const struct vmmem_map_options *opts);

/*
 * Fill *spec to adopt an existing host mapping [host, host+size) at guest
 * address addr through the "mmap" provider.  The library never unmaps it.
 * host must be non-NULL (-EINVAL) and page-aligned (the provider checks).
 */
static inline int vmmem_spec_adopt(struct vmmem_region_spec *spec, vmmem_gaddr_t addr, void *host,
                                   uint64_t size)
{
    if (spec == NULL || host == NULL)
        return -EINVAL;
    spec->provider = "mmap";
    spec->addr = addr;
    spec->size = size;
    spec->options = NULL;
    spec->n_options = 0;
    spec->host = host;
    return 0;
}

/*
 * Build a map from a config string (see config.h for the grammar), e.g.
 * "mmap:addr=0,size=2G;file:addr=4G,size=1G,path=/dev/shm/vm0".
 */
VMMEM_EXPORT int vmmem_map_from_config(vmmem_map **out, vmmem_registry *reg, const char *config,
                                       const struct vmmem_map_options *opts);

/* Take / drop a reference.  The last unref unmaps every region. NULL is ok. */
VMMEM_EXPORT vmmem_map *vmmem_map_ref(vmmem_map *m);
VMMEM_EXPORT void vmmem_map_unref(vmmem_map *m);

/* ---- queries ---------------------------------------------------------- */

VMMEM_EXPORT size_t vmmem_map_num_regions(const vmmem_map *m);
/* i-th region in address order, or NULL when i is out of range. */
VMMEM_EXPORT const vmmem_region *vmmem_map_region(const vmmem_map *m, size_t i);
/* Region holding addr (and addr's offset in it), or NULL for a hole. */
VMMEM_EXPORT const vmmem_region *vmmem_map_find(const vmmem_map *m, vmmem_gaddr_t addr,
                                                uint64_t *offset);
/* Highest backed guest address. */
VMMEM_EXPORT vmmem_gaddr_t vmmem_map_last_addr(const vmmem_map *m);
/* True when addr is backed. */
VMMEM_EXPORT bool vmmem_map_check_address(const vmmem_map *m, vmmem_gaddr_t addr);
/* True when every byte of [addr, addr+len) is backed (it may span touching
 * regions).  len == 0 is true; a range that wraps is false. */
VMMEM_EXPORT bool vmmem_map_check_range(const vmmem_map *m, vmmem_gaddr_t addr, uint64_t len);
/* *out = base + off when that address is backed; VMMEM_EOVERFLOW or
 * VMMEM_EINVALID_ADDRESS otherwise. */
VMMEM_EXPORT int vmmem_map_checked_offset(const vmmem_map *m, vmmem_gaddr_t base, uint64_t off,
                                          vmmem_gaddr_t *out);
/*
 * Host address of guest address addr.  If len is not NULL, *len is clamped
 * to the bytes that are contiguous in the same region (translate with a
 * length: never run off a region's end).  VMMEM_EINVALID_ADDRESS for a hole,
 * VMMEM_ENO_HOST_ADDRESS for a map-on-access region.  Writes through this
 * pointer are NOT dirty-tracked: call vmmem_map_mark_dirty() for them.
 */
VMMEM_EXPORT int vmmem_map_host_address(const vmmem_map *m, vmmem_gaddr_t addr, void **host,
                                        size_t *len);

/* ---- regions ---------------------------------------------------------- */

/* What vmmem_region_get_info reports about a region. */
struct vmmem_region_info {
    vmmem_gaddr_t start;  /* first guest address */
    uint64_t size;        /* bytes */
    vmmem_gaddr_t last;   /* start + size - 1 */
    const char *provider; /* provider name */
    void *host;           /* NULL for map-on-access regions */
    int prot;             /* VMMEM_PROT_* */
    int fd;               /* backing descriptor or -1 */
    uint64_t file_offset; /* offset of the region in fd */
    int hugetlbfs;    /* 1 yes, 0 no, -1 unknown */
    const char *file; /* backing file name or NULL */
    const struct vmmem_region_spec *spec; /* the spec it was built from */
};
/* Everything about r (pointers valid while the map holding r lives). */
VMMEM_EXPORT void vmmem_region_get_info(const vmmem_region *r, struct vmmem_region_info *info);
/* The first guest address of r. */
VMMEM_EXPORT vmmem_gaddr_t vmmem_region_start(const vmmem_region *r);
/* The size of r in bytes. */
VMMEM_EXPORT uint64_t vmmem_region_size(const vmmem_region *r);

/* ---- accesses --------------------------------------------------------- */

/* Memory orders for the atomic accesses (C11 names). */
typedef enum vmmem_order {
    VMMEM_RELAXED = 0,
    VMMEM_ACQUIRE = 2,
    VMMEM_RELEASE = 3,
    VMMEM_ACQ_REL = 4,
    VMMEM_SEQ_CST = 5
} vmmem_order;

/* Copy up to len bytes; returns bytes done or an error (see top). */
VMMEM_EXPORT int64_t vmmem_read(const vmmem_map *m, vmmem_gaddr_t addr, void *buf, size_t len);
VMMEM_EXPORT int64_t vmmem_write(const vmmem_map *m, vmmem_gaddr_t addr, const void *buf,
                                 size_t len);
/* All-or-error copies; 0 or an error, nothing touched on error. */
VMMEM_EXPORT int vmmem_read_slice(const vmmem_map *m, vmmem_gaddr_t addr, void *buf, size_t len);
VMMEM_EXPORT int vmmem_write_slice(const vmmem_map *m, vmmem_gaddr_t addr, const void *buf,
                                   size_t len);
/* Fixed-size objects: the same contract as *_slice, tuned for small sizes. */
VMMEM_EXPORT int vmmem_read_obj(const vmmem_map *m, vmmem_gaddr_t addr, void *obj, size_t size);
VMMEM_EXPORT int vmmem_write_obj(const vmmem_map *m, vmmem_gaddr_t addr, const void *obj,
                                 size_t size);
#define VMMEM_READ_OBJ(m, addr, objp) vmmem_read_obj((m), (addr), (objp), sizeof *(objp))
#define VMMEM_WRITE_OBJ(m, addr, objp) vmmem_write_obj((m), (addr), (objp), sizeof *(objp))

/*
 * Atomic load/store of a naturally aligned 1, 2, 4 or 8-byte value.
 * VMMEM_EMISALIGNED when addr is not a multiple of size (or the region's
 * host address for it is not), -EINVAL for other sizes,
 * VMMEM_EINVALID_ADDRESS when unbacked, VMMEM_ECROSSES_REGION when the value
 * does not lie inside one region, VMMEM_ENO_HOST_ADDRESS for a
 * map-on-access region, VMMEM_EREAD_ONLY for a store into a read-only
 * region.  A load takes VMMEM_RELAXED, VMMEM_ACQUIRE or VMMEM_SEQ_CST, a
 * store VMMEM_RELAXED, VMMEM_RELEASE or VMMEM_SEQ_CST; other orders are
 * -EINVAL (C11 forbids them).  A store marks its page dirty.
 */
VMMEM_EXPORT int vmmem_load(const vmmem_map *m, vmmem_gaddr_t addr, size_t size, uint64_t *val,
                            vmmem_order order);
VMMEM_EXPORT int vmmem_store(const vmmem_map *m, vmmem_gaddr_t addr, size_t size, uint64_t val,
                             vmmem_order order);

/*
 * Move up to count bytes between fd and guest memory with read(2)/write(2)
 * straight into/out of guest memory (no bounce buffer), region by region,
 * retrying EINTR.  read_from_fd stops at the first short read (EOF or fewer
 * bytes than asked) and never continues into the next region after one; it
 * marks dirty exactly the bytes read.  Returns bytes moved; an error when
 * nothing could be moved (the fd's -errno, or VMMEM_EINVALID_ADDRESS).
 * A read-only region ends read_from_fd like a hole (VMMEM_EREAD_ONLY when it
 * is the first one).  End of file moves 0 bytes and returns 0.
 * The all-or-error variants (read_exact_from_fd, write_all_to_fd) behave
 * as read_exact/write_all users expect.  They check the whole guest range
 * first: a hole at the first byte is VMMEM_EINVALID_ADDRESS, one further on
 * VMMEM_EPARTIAL (addr = the first unbacked byte, completed = 0), a
 * read-only byte (read_exact) VMMEM_EREAD_ONLY; such a failure moves no
 * byte, so guest memory, the fd's position and its data are unchanged.
 * Then they continue short transfers (pipes, sockets) and retry EINTR until
 * count bytes moved (0), end of file or a sink taking nothing
 * (VMMEM_EPARTIAL, completed = bytes moved, addr = the next guest byte), or
 * an error (the fd's -errno, e.g. -EAGAIN on a non-blocking fd; expected
 * and completed say how much had moved).
 */
VMMEM_EXPORT int64_t vmmem_read_from_fd(const vmmem_map *m, vmmem_gaddr_t addr, int fd,
                                        size_t count);
VMMEM_EXPORT int64_t vmmem_write_to_fd(const vmmem_map *m, vmmem_gaddr_t addr, int fd,
                                       size_t count);
VMMEM_EXPORT int vmmem_read_exact_from_fd(const vmmem_map *m, vmmem_gaddr_t addr, int fd,
                                          size_t count);
VMMEM_EXPORT int vmmem_write_all_to_fd(const vmmem_map *m, vmmem_gaddr_t addr, int fd,
                                       size_t count);

/*
 * Positioned scatter/gather I/O between a file and guest memory (core/iovec.c),
 * for disk back-ends: one preadv(2)/pwritev(2) straight into/out of the guest
 * ranges v[0..n) (a virtio descriptor chain), at file offset `offset`, with
 * no bounce buffer; the fd's own file position is not used or changed.
 * Ranges may span touching regions and map-on-access regions (mapped for
 * the length of the call); zero-length ranges are skipped.
 * Every range is checked first, so a failing call touches nothing:
 * -EINVAL (NULL map, or NULL v with n > 0), VMMEM_EOVERFLOW (a range that
 * wraps past 2^64, or a total or offset + total past INT64_MAX),
 * VMMEM_EINVALID_ADDRESS (error addr = the first unbacked byte), and for
 * vmmem_preadv_from_fd VMMEM_EREAD_ONLY (addr = the first read-only byte).
 * vmmem_preadv_from_fd stops at the first short read (end of file) and
 * marks dirty exactly the guest bytes it filled; vmmem_pwritev_to_fd
 * retries short writes until all is written or the file takes no more.
 * Both retry EINTR and return the bytes moved, or the fd's -errno when
 * nothing moved.  VMMEM_EUNSUPPORTED on Windows.
 */
struct vmmem_gvec {
    vmmem_gaddr_t addr; /* guest address of the range */
    uint64_t len;       /* bytes */
};

/* See above: file -> guest ranges, and guest ranges -> file. */
VMMEM_EXPORT int64_t vmmem_preadv_from_fd(const vmmem_map *m, const struct vmmem_gvec *v, size_t n,
                                          int fd, uint64_t offset);
VMMEM_EXPORT int64_t vmmem_pwritev_to_fd(const vmmem_map *m, const struct vmmem_gvec *v, size_t n,
                                         int fd, uint64_t offset);

VMMEM_END_DECLS

#endif

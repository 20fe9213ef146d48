/*
 * libvmmem - IOMMU-translated guest memory (vm-memory 0.18's IommuMemory).
 *
 * A vhost-user back-end that negotiated VIRTIO_F_IOMMU_PLATFORM sees I/O
 * virtual addresses (IOVAs); the front-end translates them for it in IOTLB
 * messages.  An IOTLB is a range map from IOVA to guest-physical address,
 * with byte granularity and read/write permissions.  Translated memory runs
 * the ordinary access API over IOVAs: each access is translated, checked
 * for permission, and walked over the physical map piece by piece.
 */
#ifndef VMMEM_IOMMU_H
#define VMMEM_IOMMU_H

#include "map.h"
#include "slice.h"

VMMEM_BEGIN_DECLS

/* ---- the IOTLB ---- */

typedef struct vmmem_iotlb vmmem_iotlb;

/* A range of I/O virtual addresses. */
struct vmmem_iova_range {
    uint64_t iova; /* first address */
    uint64_t len;  /* bytes */
};

/* A range of I/O virtual addresses and where it is mapped. */
struct vmmem_mapped_range {
    uint64_t iova;   /* first address */
    uint64_t target; /* guest-physical address of iova */
    uint64_t len;    /* bytes */
};

/* Result of a lookup: every piece, clipped to the request. */
struct vmmem_iotlb_result {
    size_t n_mapped;                   /* entries of mapped */
    struct vmmem_mapped_range *mapped; /* mapped with enough permission */
    size_t n_misses;                   /* entries of misses */
    struct vmmem_iova_range *misses;   /* not mapped at all */
    size_t n_denied;                   /* entries of denied */
    struct vmmem_iova_range *denied;   /* mapped without the permission asked */
};

/* An empty IOTLB. */
VMMEM_EXPORT int vmmem_iotlb_new(vmmem_iotlb **out);
/* Free an IOTLB (NULL is ok). */
VMMEM_EXPORT void vmmem_iotlb_free(vmmem_iotlb *t);
/*
 * Map [iova, iova+len) to [target, target+len) with perm (VMMEM_PROT_READ,
 * _WRITE or both), replacing whatever was mapped there.  Adjacent mappings
 * with the same translation (target - iova) and permission merge; two IOVA
 * ranges that alias one target do not.  len 0 is a no-op; iova or target +
 * len past 2^64 is VMMEM_EOVERFLOW; perm 0 or unknown bits -EINVAL.
 */
VMMEM_EXPORT int vmmem_iotlb_set(vmmem_iotlb *t, uint64_t iova, uint64_t target, uint64_t len,
                                 int perm);
/* Unmap [iova, iova+len), splitting entries that straddle its ends. */
VMMEM_EXPORT int vmmem_iotlb_invalidate(vmmem_iotlb *t, uint64_t iova, uint64_t len);
VMMEM_EXPORT void vmmem_iotlb_invalidate_all(vmmem_iotlb *t);
VMMEM_EXPORT size_t vmmem_iotlb_count(const vmmem_iotlb *t); /* entries, after merging */
/*
 * Look up [iova, iova+len) for an access needing perm (0 = just mapped).
 * Returns 0 when every byte is mapped with enough permission (res->mapped
 * lists the pieces), VMMEM_EIOMMU_FAULT otherwise (res->misses and
 * res->denied list exactly the failing sub-ranges, clipped to the request),
 * VMMEM_EOVERFLOW when iova + len passes 2^64.  len 0 is an empty success.
 * res is always filled (empty on error); release it with
 * vmmem_iotlb_result_free.
 */
VMMEM_EXPORT int vmmem_iotlb_lookup(const vmmem_iotlb *t, uint64_t iova, uint64_t len, int perm,
                                    struct vmmem_iotlb_result *res);
VMMEM_EXPORT void vmmem_iotlb_result_free(struct vmmem_iotlb_result *res);

/* ---- translated memory ---- */

typedef struct vmmem_iommu vmmem_iommu;

/*
 * Called on a miss or a permission failure, with the first failing range:
 * it should update the IOTLB (a back-end sends an IOTLB-miss message and
 * waits for the update) and return 0, or return an error.  The access is
 * retried once after a 0 return.  It may be called from any accessing thread.
 */
typedef int (*vmmem_iotlb_resolve_fn)(void *opaque, vmmem_iotlb *t, uint64_t iova, uint64_t len,
                                      int perm);

/* Translated memory over phys (a reference is taken) using iotlb (borrowed;
 * it must outlive the vmmem_iommu).  resolve may be NULL.  Translation
 * starts enabled. */
VMMEM_EXPORT int vmmem_iommu_new(vmmem_iommu **out, vmmem_map *phys, vmmem_iotlb *iotlb,
                                 vmmem_iotlb_resolve_fn resolve, void *opaque);
VMMEM_EXPORT void vmmem_iommu_free(vmmem_iommu *im);
/* Replace the physical map (hot-plug); accesses in flight keep the old one. */
VMMEM_EXPORT int vmmem_iommu_set_phys(vmmem_iommu *im, vmmem_map *phys);
/* Off: addresses are guest-physical and accesses pass straight through. */
VMMEM_EXPORT void vmmem_iommu_set_enabled(vmmem_iommu *im, bool on);
VMMEM_EXPORT bool vmmem_iommu_enabled(const vmmem_iommu *im);
/*
 * Dirty tracking: every write through translated memory - the access calls
 * and the iterator's slices, translation on or off - marks the
 * guest-physical pages it wrote in the region's bitmap and in an attached
 * vhost-user log (dirty.h), as any other write path: migration, QEMU, the
 * kernel's vhost and DPDK all log by guest-physical address.  (vm-memory
 * marks only an IOVA bitmap with translation on, which loses those pages
 * for a migration.)
 *
 * An extra bitmap indexed by IOVA: while translation is on and one is set,
 * the access calls (not slices: a slice has one dirty view, the physical
 * one) also mark the IOVA pages they wrote in it (offset = IOVA).  NULL
 * detaches.  The bitmap is borrowed.
 */
VMMEM_EXPORT void vmmem_iommu_set_dirty_log(vmmem_iommu *im, vmmem_bitmap *iova_log);

/*
 * The access API over IOVAs, with the map's contracts (map.h): short counts
 * for read/write, all-or-error for the slice and obj calls (nothing copied when any
 * byte fails to translate or is unbacked), atomics on one contiguous piece.
 * Translation failures are VMMEM_EIOMMU_FAULT with vmmem_last_error()->addr
 * = the first IOVA that failed and a message naming the unmapped or
 * forbidden range.  Errors of the physical access (a hole, a read-only
 * region) keep their code and report the IOVA in ->addr.
 */
VMMEM_EXPORT int64_t vmmem_iommu_read(vmmem_iommu *im, uint64_t iova, void *buf, size_t len);
VMMEM_EXPORT int64_t vmmem_iommu_write(vmmem_iommu *im, uint64_t iova, const void *buf, size_t len);
VMMEM_EXPORT int vmmem_iommu_read_slice(vmmem_iommu *im, uint64_t iova, void *buf, size_t len);
VMMEM_EXPORT int vmmem_iommu_write_slice(vmmem_iommu *im, uint64_t iova, const void *buf,
                                         size_t len);
VMMEM_EXPORT int vmmem_iommu_read_obj(vmmem_iommu *im, uint64_t iova, void *obj, size_t size);
VMMEM_EXPORT int vmmem_iommu_write_obj(vmmem_iommu *im, uint64_t iova, const void *obj,
                                       size_t size);
VMMEM_EXPORT int vmmem_iommu_load(vmmem_iommu *im, uint64_t iova, size_t size, uint64_t *val,
                                  vmmem_order order);
VMMEM_EXPORT int vmmem_iommu_store(vmmem_iommu *im, uint64_t iova, size_t size, uint64_t val,
                                   vmmem_order order);
VMMEM_EXPORT int64_t vmmem_iommu_read_from_fd(vmmem_iommu *im, uint64_t iova, int fd, size_t count);
VMMEM_EXPORT int64_t vmmem_iommu_write_to_fd(vmmem_iommu *im, uint64_t iova, int fd, size_t count);
/* True when [iova, iova+len) translates with perm and is fully backed. */
VMMEM_EXPORT bool vmmem_iommu_check_range(vmmem_iommu *im, uint64_t iova, uint64_t len, int perm);
/*
 * Slices of an IOVA range: one per translated physical piece, each inside
 * one region; their dirty view is the physical region's (guest-physical
 * pages and the vhost-user log).  Returns 1 with a slice (release it), 0 at the end, or an error
 * once (then 0).  The resolver is asked only when the next slice's first
 * byte fails to translate.
 */
typedef struct vmmem_iommu_iter {
    vmmem_iommu *im;    /* the IOMMU walked */
    uint64_t iova;      /* next address to visit */
    uint64_t remaining; /* bytes left */
    int perm;           /* VMMEM_PROT_* asked */
    int state;          /* 0 running, 1 finished */
    vmmem_map *phys; /* held for the iteration */
} vmmem_iommu_iter;
/* Start iterating [iova, iova+len) with permission perm. */
VMMEM_EXPORT void vmmem_iommu_slices_begin(vmmem_iommu_iter *it, vmmem_iommu *im, uint64_t iova,
                                           uint64_t len, int perm);
/* The next slice into *out: 1, 0 at the end, or an error (once). */
VMMEM_EXPORT int vmmem_iommu_slices_next(vmmem_iommu_iter *it, vmmem_slice *out);
/* Drop what the iterator holds (call once when done, even after an error). */
VMMEM_EXPORT void vmmem_iommu_slices_end(vmmem_iommu_iter *it);

VMMEM_END_DECLS

#endif

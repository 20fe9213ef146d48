/*
 * libvmmem - volatile slices: bounded views of guest memory inside one region.
 *
 * A slice is a small value (copy it freely) holding a host pointer, a length,
 * the region's dirty bitmap with the slice's offset in it, and, for
 * map-on-access regions, the guard of the live mapping.  Guest memory is
 * shared with a guest that may change it at any time, so every access goes
 * through volatile loads/stores; small aligned accesses are single accesses.
 *
 * Ownership: a slice from vmmem_get_slice() or vmmem_slices_next() must be
 * released with vmmem_slice_release() (a no-op for ordinary regions; for
 * map-on-access regions it unmaps).  Slices derived from it (subslice,
 * offset, split_at) borrow its mapping: release only the original, after the
 * derived ones are no longer used.
 *
 * Lifetime: a map-on-access slice keeps its region alive - its guard holds
 * a reference on the region (provider, mapping, dirty state), dropped by
 * vmmem_slice_release - so it may be used and released after every map
 * holding the region was dropped.  An ordinary slice is a plain value with
 * no reference (taking one per slice would make every get and release an
 * atomic on a shared line, and every copy a reference to account for): its
 * pointer and dirty state are valid while some map holding the region is
 * alive - keep the snapshot you took it from (a device holds its snapshot
 * and its ring slices together).
 *
 * All offsets and lengths are bounds- and overflow-checked:
 * VMMEM_EOVERFLOW when off + len wraps, VMMEM_EOUT_OF_BOUNDS when it ends
 * past the slice (error addr = off + len, as the crate reports).
 */
#ifndef VMMEM_SLICE_H
#define VMMEM_SLICE_H

#include "map.h"

VMMEM_BEGIN_DECLS

/* A dirty bitmap (dirty.h). */
typedef struct vmmem_bitmap vmmem_bitmap;
struct vmmem_guard;

/* A bounded view of guest memory inside one region. */
typedef struct vmmem_slice {
    uint8_t *ptr;              /* first byte (valid while the slice is held) */
    size_t len;                /* bytes */
    vmmem_bitmap *bitmap;      /* region's dirty state (NULL: a buffer slice) */
    uint64_t bitmap_offset;    /* offset of ptr[0] in the region */
    struct vmmem_guard *guard; /* map-on-access mapping, or NULL */
    int prot;                  /* VMMEM_PROT_*: writes into a read-only slice fail */
} vmmem_slice;

/*
 * Slice of [addr, addr+len) that must lie inside one region:
 * VMMEM_EINVALID_ADDRESS when addr is a hole, VMMEM_ECROSSES_REGION when the
 * range leaves the region.  len == 0 gives an empty slice at a backed addr.
 */
VMMEM_EXPORT int vmmem_get_slice(const vmmem_map *m, vmmem_gaddr_t addr, size_t len,
                                 vmmem_slice *out);
/*
 * As vmmem_get_slice, with the access the slice is for: VMMEM_PROT_READ for
 * a slice that is only read (writes through it fail with VMMEM_EREAD_ONLY),
 * VMMEM_PROT_RW to write too.  vmmem_get_slice asks for the region's own
 * protection, so on a writable map-on-access region (a Xen grant region) it
 * maps for writing, which fails on a page the guest granted read-only:
 * read such pages through VMMEM_PROT_READ slices.  VMMEM_EREAD_ONLY when
 * VMMEM_PROT_RW is asked of a read-only region; -EINVAL for any other prot.
 */
VMMEM_EXPORT int vmmem_get_slice_prot(const vmmem_map *m, vmmem_gaddr_t addr, size_t len,
                                      int prot, vmmem_slice *out);
/* Release a slice from vmmem_get_slice/vmmem_slices_next; zeroes it. */
VMMEM_EXPORT void vmmem_slice_release(vmmem_slice *s);

/* A slice over plain host memory (no bitmap, no guard), e.g. a local buffer. */
VMMEM_EXPORT vmmem_slice vmmem_slice_from_buffer(void *buf, size_t len);

/* [off, off+len) of s (VMMEM_EOUT_OF_BOUNDS past its end). */
VMMEM_EXPORT int vmmem_slice_subslice(const vmmem_slice *s, size_t off, size_t len,
                                      vmmem_slice *out);
/* Drop the first n bytes (n == len gives an empty slice). */
VMMEM_EXPORT int vmmem_slice_offset(const vmmem_slice *s, size_t n, vmmem_slice *out);
/* [0, mid) and [mid, len). */
VMMEM_EXPORT int vmmem_slice_split_at(const vmmem_slice *s, size_t mid, vmmem_slice *head,
                                      vmmem_slice *tail);

/* Copy min(len, s->len) bytes out of / into the slice; returns that count
 * (copy_from and copy_to_slice return 0, with VMMEM_EREAD_ONLY in
 * vmmem_last_error(), when the destination slice is read-only).  Every
 * write into a read-only slice fails with VMMEM_EREAD_ONLY, never a fault. */
VMMEM_EXPORT size_t vmmem_slice_copy_to(const vmmem_slice *s, void *buf, size_t len);
VMMEM_EXPORT size_t vmmem_slice_copy_from(const vmmem_slice *s, const void *buf, size_t len);
/* Copy min(src->len, dst->len) bytes; marks dst dirty; returns the count. */
VMMEM_EXPORT size_t vmmem_slice_copy_to_slice(const vmmem_slice *src, const vmmem_slice *dst);

/* Bytes at an offset inside the slice, all-or-error (typed reads/writes). */
VMMEM_EXPORT int vmmem_slice_read(const vmmem_slice *s, size_t off, void *buf, size_t len);
VMMEM_EXPORT int vmmem_slice_write(const vmmem_slice *s, size_t off, const void *buf, size_t len);

/* Atomic load/store at a naturally aligned offset (see vmmem_load). */
VMMEM_EXPORT int vmmem_slice_load(const vmmem_slice *s, size_t off, size_t size, uint64_t *val,
                                  vmmem_order order);
VMMEM_EXPORT int vmmem_slice_store(const vmmem_slice *s, size_t off, size_t size, uint64_t val,
                                   vmmem_order order);

/*
 * Iterate the slices of a guest range that may span regions:
 *
 *     vmmem_slice_iter it;
 *     vmmem_slice s;
 *     int rc;
 *     vmmem_slices_begin(&it, m, addr, len);
 *     while ((rc = vmmem_slices_next(&it, &s)) > 0) { ...; vmmem_slice_release(&s); }
 *
 * next returns 1 with a slice, 0 at the end, or an error once (then 0):
 * VMMEM_EINVALID_ADDRESS with the hole's address in it->addr and in
 * vmmem_last_error()->addr, or VMMEM_EOVERFLOW when the remaining range
 * wraps past 2^64 (checked before each slice, so a wrapping range fails on
 * the first call; ending exactly at 2^64 is fine).  A slice covers at most
 * the rest of its region, and at most 1 MiB of a map-on-access region (each
 * slice there is one mapping of the provider's).
 *
 * Dirty marks: a slice carries its region's dirty state (never NULL for a
 * slice of guest memory), and whether it marks is decided at each write by
 * the region's switch (dirty.h): a slice taken before tracking was switched
 * on marks once it is on - through whichever map or space it was switched -
 * and stops when it is switched off.
 */
typedef struct vmmem_slice_iter {
    const vmmem_map *map; /* the map walked */
    vmmem_gaddr_t addr; /* next address to visit */
    uint64_t remaining; /* bytes left */
    int state;          /* bit 0: finished; bits 8-15: the access asked for
                           (vmmem_slices_begin_prot), 0 for each region's own.
                           Packed here so the struct keeps its 0.1 layout. */
} vmmem_slice_iter;

/* Start iterating [addr, addr+len) of m. */
VMMEM_EXPORT void vmmem_slices_begin(vmmem_slice_iter *it, const vmmem_map *m, vmmem_gaddr_t addr,
                                     uint64_t len);
/*
 * As vmmem_slices_begin, with the access the slices are for (as
 * vmmem_get_slice_prot): VMMEM_PROT_READ walks map-on-access memory mapped
 * read-only, e.g. buffers a Xen front-end granted read-only (a virtio
 * driver's out-buffers), which vmmem_slices_begin cannot map on a writable
 * region; writes through those slices fail with VMMEM_EREAD_ONLY.
 * VMMEM_PROT_RW reaching a read-only region ends the walk with
 * VMMEM_EREAD_ONLY (nothing mapped for it); any other prot makes the first
 * next fail with -EINVAL.
 */
VMMEM_EXPORT void vmmem_slices_begin_prot(vmmem_slice_iter *it, const vmmem_map *m,
                                          vmmem_gaddr_t addr, uint64_t len, int prot);
/* The next slice into *out: 1, 0 at the end, or an error (once). */
VMMEM_EXPORT int vmmem_slices_next(vmmem_slice_iter *it, vmmem_slice *out);

VMMEM_END_DECLS

#endif

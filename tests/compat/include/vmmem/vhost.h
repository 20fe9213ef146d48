/*
 * libvmmem - guest memory of a vhost-user back-end.
 *
 * A vhost-user back-end learns the guest's memory from SET_MEM_TABLE (or
 * ADD_MEM_REG / REM_MEM_REG) messages: per region the guest-physical
 * address, the size, the front-end's own user address, an mmap offset and an
 * fd (and with VHOST_USER_PROTOCOL_F_XEN_MMAP the Xen mapping flags and
 * domain).  This layer turns such tables into a hot-pluggable guest memory
 * map (space.h): regions go through the "file" provider (fd=, offset=,
 * shared), or through "xen-foreign" / "xen-grant" when the Xen flags say so.
 * Ring addresses arrive as front-end user addresses: translate them with
 * vmmem_vhost_uaddr_to_gpa().  No transport is needed: give it the fields.
 *
 * Every table is hostile input and is validated before anything is mapped:
 * zero sizes (VMMEM_EZERO_SIZE), gpa / user address / offset + size past
 * 2^64 (VMMEM_EOVERFLOW), overlapping guest or user ranges (VMMEM_EOVERLAP),
 * more regions than the limit (-E2BIG), a negative fd (-EBADF), an offset
 * past the end of the fd's file (-ERANGE), an unaligned offset
 * (VMMEM_EBAD_VALUE), invalid Xen flags (VMMEM_EBAD_VALUE naming the value;
 * valid: 0 UNIX, 0x1 FOREIGN, 0x2 GRANT, 0xA GRANT|NO_ADVANCE_MAP).  On any
 * error nothing is mapped and the published memory is unchanged.
 */
#ifndef VMMEM_VHOST_H
#define VMMEM_VHOST_H

#include "map.h"
#include "space.h"

VMMEM_BEGIN_DECLS

#define VMMEM_XEN_UNIX 0x0u           /* xen_mmap_flags: plain Unix memory */
#define VMMEM_XEN_FOREIGN 0x1u        /* a foreign domain's frames */
#define VMMEM_XEN_GRANT 0x2u          /* grant references */
#define VMMEM_XEN_NO_ADVANCE_MAP 0x8u /* grants mapped per access */

/* VHOST_USER_MEMORY_REGION fields (plus the fd that came with them). */
struct vmmem_vhost_region {
    uint64_t guest_phys_addr; /* guest-physical start */
    uint64_t memory_size;     /* bytes */
    uint64_t userspace_addr;  /* the front-end's address of it (for vring addresses) */
    uint64_t mmap_offset;     /* offset of the region in fd */
    int fd;                  /* dup()ed by the provider: the caller keeps its fd */
    uint32_t xen_mmap_flags; /* 0 unless the Xen protocol feature was negotiated */
    uint32_t xen_mmap_data;  /* Xen domain id */
};

/* A vhost-user back-end's view of the front-end's memory. */
typedef struct vmmem_vhost vmmem_vhost;

/* Default region limit: QEMU's VHOST_USER_MAX_RAM_SLOTS. */
#define VMMEM_VHOST_DEFAULT_MAX_REGIONS 509u

/* max_regions 0 = VMMEM_VHOST_DEFAULT_MAX_REGIONS; reg NULL = default registry. */
VMMEM_EXPORT int vmmem_vhost_new(vmmem_vhost **out, vmmem_registry *reg, size_t max_regions,
                                 const struct vmmem_map_options *opts);
VMMEM_EXPORT void vmmem_vhost_free(vmmem_vhost *v);

/*
 * Table changes publish a new map of the space and wait for its readers.
 * Called by a thread inside a read section of vmmem_vhost_space(v) (which
 * would wait for itself), set_mem_table, add_region, remove_region,
 * set_log_base and clear_log fail with -EDEADLK and change nothing; the
 * translation (uaddr_to_gpa) and snapshots work anywhere.
 */
/* SET_MEM_TABLE: replace every region (n may be 0: no memory). */
VMMEM_EXPORT int vmmem_vhost_set_mem_table(vmmem_vhost *v, const struct vmmem_vhost_region *t,
                                           size_t n);
/* ADD_MEM_REG / REM_MEM_REG (removal matches gpa, size and user address). */
VMMEM_EXPORT int vmmem_vhost_add_region(vmmem_vhost *v, const struct vmmem_vhost_region *r);
VMMEM_EXPORT int vmmem_vhost_remove_region(vmmem_vhost *v, const struct vmmem_vhost_region *r);

/* The hot-plug space (owned by v) and a snapshot of it (unref it). */
VMMEM_EXPORT vmmem_space *vmmem_vhost_space(vmmem_vhost *v);
VMMEM_EXPORT vmmem_map *vmmem_vhost_snapshot(vmmem_vhost *v);
VMMEM_EXPORT size_t vmmem_vhost_num_regions(vmmem_vhost *v);

/*
 * SET_LOG_BASE: the front-end's dirty log (fd, mmap_offset, mmap_size of
 * the message), one bit per 4 KiB guest page.  From then on every write
 * through any snapshot marks it, including regions added or tables set
 * later (vmmem_space_attach_log).  A second call replaces the log.
 * vmmem_vhost_clear_log stops marking (-ENOENT when none is attached).
 */
VMMEM_EXPORT int vmmem_vhost_set_log_base(vmmem_vhost *v, int fd, uint64_t mmap_offset,
                                          uint64_t mmap_size);
VMMEM_EXPORT int vmmem_vhost_clear_log(vmmem_vhost *v);

/*
 * Front-end user address -> guest-physical address.  If len is not NULL,
 * *len is clamped to the bytes left in that region.  VMMEM_EINVALID_ADDRESS
 * when no (non-Xen) region holds uaddr.
 */
VMMEM_EXPORT int vmmem_vhost_uaddr_to_gpa(vmmem_vhost *v, uint64_t uaddr, vmmem_gaddr_t *gpa,
                                          uint64_t *len);

VMMEM_END_DECLS

#endif

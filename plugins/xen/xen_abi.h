/*
 * The few Linux Xen UAPI declarations the plugin needs, declared here
 * because Debian's <xen/privcmd.h> and <xen/gntdev.h> include
 * <xen/interface/xen.h>, which Debian does not ship.  Layouts follow
 * include/uapi/xen/privcmd.h and include/uapi/xen/gntdev.h and are pinned
 * below with _Static_assert so a mistake breaks the build, not the kernel
 * call.  (The Rust crate declares its own copies for the same reason.)
 */
#ifndef VMMEM_XEN_ABI_H
#define VMMEM_XEN_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#define XEN_PAGE_SHIFT 12
#define XEN_PAGE_SIZE (1ull << XEN_PAGE_SHIFT)

/* Grant DMA addresses carry this bit (Linux drivers/xen/grant-dma-ops.c). */
#define XEN_GRANT_ADDR_OFF (1ull << 63)

/* Domain ids at and above DOMID_FIRST_RESERVED name no real domain. */
#define XEN_DOMID_FIRST_RESERVED 0x7ff0u

/* ---- /dev/xen/privcmd ---- */
struct xen_privcmd_mmapbatch_v2 {
    uint32_t num;        /* number of pages to populate */
    uint16_t dom;        /* target domain (domid_t) */
    uint64_t addr;       /* virtual address of the window */
    const uint64_t *arr; /* array of guest frame numbers (xen_pfn_t) */
    int *err;            /* per-page error codes, written by the kernel */
};
#define XEN_IOCTL_PRIVCMD_MMAPBATCH_V2                                                        \
    _IOC(_IOC_NONE, 'P', 4, sizeof(struct xen_privcmd_mmapbatch_v2))

_Static_assert(offsetof(struct xen_privcmd_mmapbatch_v2, num) == 0, "privcmd num");
_Static_assert(offsetof(struct xen_privcmd_mmapbatch_v2, dom) == 4, "privcmd dom");
_Static_assert(offsetof(struct xen_privcmd_mmapbatch_v2, addr) == 8, "privcmd addr");
_Static_assert(offsetof(struct xen_privcmd_mmapbatch_v2, arr) == 16, "privcmd arr");
_Static_assert(offsetof(struct xen_privcmd_mmapbatch_v2, err) == 16 + sizeof(void *),
               "privcmd err");
_Static_assert(sizeof(struct xen_privcmd_mmapbatch_v2) == 16 + 2 * sizeof(void *),
               "privcmd_mmapbatch_v2 size");

/* ---- /dev/xen/gntdev ---- */
struct xen_gntdev_grant_ref {
    uint32_t domid;
    uint32_t ref;
};
struct xen_gntdev_map_grant_ref {
    uint32_t count;                    /* IN: number of refs */
    uint32_t pad;
    uint64_t index;                    /* OUT: offset to mmap() */
    struct xen_gntdev_grant_ref refs[1]; /* IN: count entries (variable length) */
};
struct xen_gntdev_unmap_grant_ref {
    uint64_t index; /* IN: what MAP_GRANT_REF returned */
    uint32_t count; /* IN: number of refs */
    uint32_t pad;
};
#define XEN_IOCTL_GNTDEV_MAP_GRANT_REF                                                        \
    _IOC(_IOC_NONE, 'G', 0, sizeof(struct xen_gntdev_map_grant_ref))
#define XEN_IOCTL_GNTDEV_UNMAP_GRANT_REF                                                      \
    _IOC(_IOC_NONE, 'G', 1, sizeof(struct xen_gntdev_unmap_grant_ref))

_Static_assert(sizeof(struct xen_gntdev_grant_ref) == 8, "grant ref size");
_Static_assert(offsetof(struct xen_gntdev_map_grant_ref, count) == 0, "gntdev map count");
_Static_assert(offsetof(struct xen_gntdev_map_grant_ref, pad) == 4, "gntdev map pad");
_Static_assert(offsetof(struct xen_gntdev_map_grant_ref, index) == 8, "gntdev map index");
_Static_assert(offsetof(struct xen_gntdev_map_grant_ref, refs) == 16, "gntdev map refs");
_Static_assert(sizeof(struct xen_gntdev_map_grant_ref) == 24, "gntdev map size (one ref)");
_Static_assert(offsetof(struct xen_gntdev_unmap_grant_ref, index) == 0, "gntdev unmap index");
_Static_assert(offsetof(struct xen_gntdev_unmap_grant_ref, count) == 8, "gntdev unmap count");
_Static_assert(sizeof(struct xen_gntdev_unmap_grant_ref) == 16, "gntdev unmap size");

#if defined(__x86_64__) || defined(__aarch64__)
/* The request numbers as the kernel headers spell them on 64-bit hosts. */
_Static_assert(XEN_IOCTL_PRIVCMD_MMAPBATCH_V2 == 0x00205004, "MMAPBATCH_V2 number");
_Static_assert(XEN_IOCTL_GNTDEV_MAP_GRANT_REF == 0x00184700, "MAP_GRANT_REF number");
_Static_assert(XEN_IOCTL_GNTDEV_UNMAP_GRANT_REF == 0x00104701, "UNMAP_GRANT_REF number");
#endif

/* Byte size of a MAP_GRANT_REF request with n refs (n >= 1). */
static inline size_t xen_gntdev_map_size(size_t n)
{
    return offsetof(struct xen_gntdev_map_grant_ref, refs) + n * sizeof(struct xen_gntdev_grant_ref);
}

#endif

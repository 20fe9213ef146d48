/*
 * Control interface of the Xen device simulator (xensim.so), an LD_PRELOAD
 * object that plays /dev/xen/privcmd and /dev/xen/gntdev for the tests.
 * A test reaches it without linking to it:
 *
 *     xensim_api_fn fn = (xensim_api_fn)dlsym(RTLD_DEFAULT, XENSIM_API_SYMBOL);
 *     const struct xensim_api *sim = fn ? fn() : NULL;
 *
 * What is modelled, and what is not, is written at the top of xensim.c.
 */
#ifndef VMMEM_XENSIM_H
#define VMMEM_XENSIM_H

#include <stdbool.h>
#include <stdint.h>

#define XENSIM_API_SYMBOL "xensim_api"
#define XENSIM_API_VERSION 1u
#define XENSIM_PRIVCMD "/dev/xen/privcmd"
#define XENSIM_GNTDEV "/dev/xen/gntdev"

/* Cumulative counters and live gauges of everything the devices did. */
struct xensim_stats {
    uint64_t opens;              /* device files opened */
    uint64_t live_files;         /* device files not yet released */
    uint64_t privcmd_mmaps;      /* windows reserved with mmap of privcmd */
    uint64_t privcmd_munmaps;    /* windows unmapped */
    uint64_t live_windows;       /* windows still mapped */
    uint64_t batch_calls;        /* IOCTL_PRIVCMD_MMAPBATCH_V2 calls that reached the frames */
    uint64_t frames_mapped;      /* frames mapped by those calls */
    uint64_t frame_errors;       /* per-page errors they reported */
    uint64_t grant_map_ioctls;   /* successful IOCTL_GNTDEV_MAP_GRANT_REF */
    uint64_t grant_unmap_ioctls; /* successful IOCTL_GNTDEV_UNMAP_GRANT_REF */
    uint64_t live_grant_maps;    /* MAP_GRANT_REF entries not yet removed */
    uint64_t grant_mmaps;        /* successful mmaps of gntdev */
    uint64_t grant_mmap_fails;   /* refused mmaps of gntdev */
    uint64_t grant_munmaps;      /* munmaps of gntdev mappings */
    uint64_t live_grant_vmas;    /* gntdev mappings still mapped */
    uint64_t grant_pages_mapped; /* pages mapped by gntdev mmaps (cumulative) */
    uint64_t live_grant_pages;   /* pages of gntdev mappings still mapped */
    uint64_t unmap_busy;         /* UNMAP_GRANT_REF refused with EBUSY (still mmapped) */
    uint64_t released_at_close;  /* MAP_GRANT_REF entries freed only by closing the device */
    uint64_t bad_calls;          /* calls the simulator does not model (partial munmap, ...) */
};

struct xensim_api {
    uint32_t version; /* XENSIM_API_VERSION */
    /* (Re)create the foreign domain: nframes 4 KiB frames of zeroes.
     * Returns the memfd holding them (owned by the simulator; map it to
     * see the domain's memory) or -errno. */
    int (*domain)(uint32_t domid, uint64_t nframes);
    /* Grant ref to the other side: frame of the domain, read-only or not.
     * -EINVAL for a frame outside the domain. */
    int (*grant)(uint32_t ref, uint64_t frame, bool readonly);
    /* End a grant; -EBUSY while it is mapped (as Xen refuses to end access
     * to a mapped grant), -ENOENT when it was not granted. */
    int (*revoke)(uint32_t ref);
    /* End every grant that is not mapped; returns how many stay (mapped). */
    int (*revoke_all)(void);
    /* Mark frame paged out (MMAPBATCH reports -ENOENT for it) or back. */
    int (*page_out)(uint64_t frame, bool out);
    void (*stats)(struct xensim_stats *out);
};

typedef const struct xensim_api *(*xensim_api_fn)(void);

#endif

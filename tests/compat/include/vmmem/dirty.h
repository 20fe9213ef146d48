/*
 * libvmmem - dirty-page tracking, for live migration and incremental
 * snapshots.
 *
 * Dirty state belongs to the memory, not to a map.  Every region has a
 * bitmap from its creation (one bit per page; page size chosen per map or
 * space, 4 KiB by default; the words, 32 KiB per GiB, are allocated when
 * tracking is first switched on) and a switch.  Every map holding the region
 * - old snapshots, the current map, maps published later, the alias
 * vmmem_space_rebase makes of it - and every slice of it, whenever taken,
 * marks that one bitmap.  Switch tracking with vmmem_space_set_dirty_tracking
 * (space.h: the whole space, regions added later included) or
 * vmmem_map_set_dirty_tracking (every region of a map; regions shared with
 * other maps are switched for them too).
 *
 * What "on" guarantees: every write that starts after the switch call
 * returns is reported by a later harvest, whatever it goes through - write,
 * write_slice, write_obj, store, read_from_fd (bytes actually read), the
 * fast.h inline writers, slices (taken before or after the switch, from
 * vmmem_get_slice or the iterator), maps from read sections or snapshots,
 * and the IOMMU (iommu.h: guest-physical pages).  A write already in flight
 * when the call is made is either visible in memory when the call returns
 * (so a copy of guest memory started after it sees it) or marked: writers
 * store, then test the switch and the page bit (setting it only when clear),
 * and the switch and every harvest end with a process-wide store flush -
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) on Linux (registered on
 * first use); where the kernel lacks it (old kernels, valgrind, qemu-user)
 * an mprotect of a private page, whose TLB shootdown interrupts every CPU
 * running the process; FlushProcessWriteBuffers on Windows.  On a POSIX
 * system without either the flush is a local fence only: a write whose
 * store is still in its CPU's store buffer as a harvest clears its page bit
 * can then be missed by that harvest and every later one if the page is
 * not written again (documented, not known to occur on supported hosts).
 * Switching off stops marking; pages already marked stay until harvested.
 * Reads never mark.  Writes through a raw host pointer
 * (vmmem_map_host_address) are not tracked: mark them with
 * vmmem_map_mark_dirty() after the write.
 *
 * Pages are counted from each region's start (page k of a region covers
 * region offsets [k*page, (k+1)*page)); for regions whose start is a
 * multiple of the page size that is the same as guest-physical pages.  The
 * vhost-user log below always counts absolute guest-physical 4 KiB pages.
 */
#ifndef VMMEM_DIRTY_H
#define VMMEM_DIRTY_H

#include "map.h"

VMMEM_BEGIN_DECLS

/* A dirty bitmap: one bit per page. */
typedef struct vmmem_bitmap vmmem_bitmap;

/* Switch tracking on or off for every region of the map (thread-safe), and
 * so for every other map and slice of those regions.  -ENOMEM (bitmap
 * words) switches nothing. */
VMMEM_EXPORT int vmmem_map_set_dirty_tracking(vmmem_map *m, bool on);
/* True when every region of m is tracked (an empty map: the switch it was
 * made or last set with). */
VMMEM_EXPORT bool vmmem_map_dirty_tracking(const vmmem_map *m);
/* The map's dirty page size. */
VMMEM_EXPORT uint64_t vmmem_map_dirty_page_size(const vmmem_map *m);
/* Mark [addr, addr+len) dirty by hand (no-op while tracking is off).
 * VMMEM_EINVALID_ADDRESS (nothing marked) unless every byte is backed. */
VMMEM_EXPORT int vmmem_map_mark_dirty(const vmmem_map *m, vmmem_gaddr_t addr, uint64_t len);
/* True when the page holding addr is marked. */
VMMEM_EXPORT bool vmmem_map_is_dirty(const vmmem_map *m, vmmem_gaddr_t addr);

/*
 * Harvest: collect-and-clear the dirty pages of every region of a map, in
 * guest-physical terms, while vCPU and device threads keep writing.  Each
 * 64-bit word is swapped with zero atomically and the harvest ends with the
 * store flush above, so a page written before the harvest returns is either
 * reported by it with its data visible to a copy made after it, or reported
 * by a later harvest.  In a hot-plug space use vmmem_space_harvest (space.h),
 * which also reports regions removed between rounds.
 *
 *     vmmem_harvest *h;
 *     vmmem_harvest_new(m, &h);           // sized for m's layout, reusable
 *     vmmem_map_harvest(m, h);            // collect and clear
 *     vmmem_harvest_iter it = {0};
 *     uint64_t gpa, len;
 *     while (vmmem_harvest_next_run(h, &it, &gpa, &len))
 *         copy_out(gpa, len);             // runs of dirty pages, merged
 *     vmmem_harvest_free(h);
 */
typedef struct vmmem_harvest vmmem_harvest;

/* A harvest buffer for m's regions (the map is not kept). */
VMMEM_EXPORT int vmmem_harvest_new(const vmmem_map *m, vmmem_harvest **out);
VMMEM_EXPORT void vmmem_harvest_free(vmmem_harvest *h);
/* Collect and clear every region's bitmap into h (any buffer from
 * vmmem_harvest_new: it is re-fitted to m's layout and page size when they
 * differ, so a layout change between rounds is never an error).  Regions
 * whose tracking was never on harvest as clean.  Returns the number of
 * dirty pages, or -ENOMEM (h unchanged) / -EINVAL. */
VMMEM_EXPORT int64_t vmmem_map_harvest(const vmmem_map *m, vmmem_harvest *h);
/* Per-region view of the last harvest: its guest start, page count and
 * bitmap words (bit i of word w = page w*64+i of the region). */
VMMEM_EXPORT size_t vmmem_harvest_regions(const vmmem_harvest *h);
VMMEM_EXPORT const uint64_t *vmmem_harvest_bitmap(const vmmem_harvest *h, size_t region,
                                                  vmmem_gaddr_t *start, uint64_t *pages);
VMMEM_EXPORT uint64_t vmmem_harvest_page_size(const vmmem_harvest *h);

/* Iterate the dirty runs of the last harvest, in guest-physical order; runs
 * of touching regions merge; a run never extends past its regions' end. */
typedef struct vmmem_harvest_iter {
    size_t region; /* where the next run starts: region, */
    uint64_t page; /* and page in it (start at {0}) */
} vmmem_harvest_iter;
/* The next run of dirty pages, [*gpa, *gpa + *len): true, or false at the end. */
VMMEM_EXPORT bool vmmem_harvest_next_run(const vmmem_harvest *h, vmmem_harvest_iter *it,
                                         vmmem_gaddr_t *gpa, uint64_t *len);
/* The dirty runs of regions a space removed before its last harvest
 * (vmmem_space_harvest), at the addresses they had; always none after
 * vmmem_map_harvest.  A migration that keys destination memory by
 * guest-physical address discards them: the memory left the guest (a
 * region now at that address entered the layout all-dirty and is sent
 * whole); one that keys it by memory object sends them. */
VMMEM_EXPORT bool vmmem_harvest_next_removed_run(const vmmem_harvest *h, vmmem_harvest_iter *it,
                                                 vmmem_gaddr_t *gpa, uint64_t *len);

/*
 * The vhost-user dirty log: after VHOST_USER_SET_LOG_BASE a back-end maps
 * the front-end's log (fd, offset, size bytes) and sets one bit per 4 KiB
 * page of guest-physical address space (bit p%8 of byte p/8) with an atomic
 * OR for every page it writes.  Attaching a log maps it (MAP_SHARED), turns
 * dirty tracking on, and from then on every write path through this map
 * also marks the log.  Pages beyond the log's size are ignored (the
 * front-end sized it).  Only one log per map: attaching another replaces it.
 * The log is marked while tracking is on: switching tracking off also stops
 * it.  Detach stops marking and waits for the writers inside a mark of it;
 * the log is unmapped when no region points to it any more.  The log is
 * set on the map's regions, which other maps may share: in a hot-plug space
 * use vmmem_space_attach_log (space.h), which carries the log to every map
 * the space publishes later.
 */
/* Errors: -EINVAL (size 0), -EBADF or another -errno from fstat/mmap,
 * -ERANGE (offset + size past the end of a regular file or memfd). */
VMMEM_EXPORT int vmmem_map_attach_log(vmmem_map *m, int fd, uint64_t offset, uint64_t size);
/* -ENOENT when no log is attached. */
VMMEM_EXPORT int vmmem_map_detach_log(vmmem_map *m);
#define VMMEM_LOG_PAGE_SIZE 4096u

/* Built-in atomic bitmap: one bit per page, 64-bit words, lock-free. */
VMMEM_EXPORT int vmmem_bitmap_new(vmmem_bitmap **out, uint64_t bytes, uint64_t page_size);
VMMEM_EXPORT void vmmem_bitmap_free(vmmem_bitmap *b);
/* Mark pages covering [offset, offset+len); bits past the end are ignored. */
VMMEM_EXPORT void vmmem_bitmap_mark(vmmem_bitmap *b, uint64_t offset, uint64_t len);
VMMEM_EXPORT bool vmmem_bitmap_test(const vmmem_bitmap *b, uint64_t offset);
VMMEM_EXPORT uint64_t vmmem_bitmap_pages(const vmmem_bitmap *b);
/* Copy and clear up to nwords 64-bit words, atomically word by word, then
 * the store flush (as a harvest); returns the number of words the bitmap
 * has. */
VMMEM_EXPORT size_t vmmem_bitmap_collect(vmmem_bitmap *b, uint64_t *words, size_t nwords);

VMMEM_END_DECLS

#endif

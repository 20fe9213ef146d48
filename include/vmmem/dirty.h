/*
 * libvmmem - dirty-page tracking.
 *
 * Every region of a map can carry a bitmap with one bit per page (page size
 * chosen per map, 4 KiB by default).  Tracking is off until switched on for
 * the whole map; while off, the write paths pay one predictable branch.
 * Every library write path marks exactly the pages it touched: write,
 * write_slice, write_obj, store, read_from_fd (bytes actually read), slice
 * writes and copies into slices.  Reads never mark.  Writes through a raw
 * host pointer (vmmem_map_host_address) are not tracked: mark them with
 * vmmem_map_mark_dirty().
 */
#ifndef VMMEM_DIRTY_H
#define VMMEM_DIRTY_H

#include "map.h"

VMMEM_BEGIN_DECLS

typedef struct vmmem_bitmap vmmem_bitmap;

/* Switch tracking on or off for every region of the map (thread-safe). */
VMMEM_EXPORT int vmmem_map_set_dirty_tracking(vmmem_map *m, bool on);
VMMEM_EXPORT bool vmmem_map_dirty_tracking(const vmmem_map *m);
/* The map's dirty page size. */
VMMEM_EXPORT uint64_t vmmem_map_dirty_page_size(const vmmem_map *m);
/* Mark [addr, addr+len) dirty by hand (no-op while tracking is off). */
VMMEM_EXPORT int vmmem_map_mark_dirty(const vmmem_map *m, vmmem_gaddr_t addr, uint64_t len);
/* True when the page holding addr is marked. */
VMMEM_EXPORT bool vmmem_map_is_dirty(const vmmem_map *m, vmmem_gaddr_t addr);

/* Built-in atomic bitmap: one bit per page, 64-bit words, lock-free. */
VMMEM_EXPORT int vmmem_bitmap_new(vmmem_bitmap **out, uint64_t bytes, uint64_t page_size);
VMMEM_EXPORT void vmmem_bitmap_free(vmmem_bitmap *b);
/* Mark pages covering [offset, offset+len); bits past the end are ignored. */
VMMEM_EXPORT void vmmem_bitmap_mark(vmmem_bitmap *b, uint64_t offset, uint64_t len);
VMMEM_EXPORT bool vmmem_bitmap_test(const vmmem_bitmap *b, uint64_t offset);
VMMEM_EXPORT uint64_t vmmem_bitmap_pages(const vmmem_bitmap *b);
/* Copy and clear up to nwords 64-bit words, atomically word by word;
 * returns the number of words the bitmap has. */
VMMEM_EXPORT size_t vmmem_bitmap_collect(vmmem_bitmap *b, uint64_t *words, size_t nwords);

VMMEM_END_DECLS

#endif

/*
 * libvmmem - memory hot-plug: an address space that publishes the current
 * guest memory map (the crate's GuestMemoryAtomic).
 *
 * Readers (vCPU and device threads) take a snapshot with
 * vmmem_space_snapshot(): no lock, no blocking, one reference-counted map
 * that stays valid - every region of it stays mapped - until they drop it
 * with vmmem_map_unref().  Writers (serialized by an internal mutex) add,
 * remove, replace or re-base regions; each change builds a new map and
 * publishes it atomically.  A removed region is unmapped when the last
 * snapshot holding it is dropped.  A failing change leaves the published
 * map exactly as it was.
 *
 * A space may be empty (no regions): its snapshot is a map with zero
 * regions, on which every access fails with VMMEM_EINVALID_ADDRESS.
 */
#ifndef VMMEM_SPACE_H
#define VMMEM_SPACE_H

#include "dirty.h"
#include "map.h"

VMMEM_BEGIN_DECLS

/* A hot-plug address space. */
typedef struct vmmem_space vmmem_space;

/* A space publishing initial (a reference is taken), or empty when NULL.
 * opts (dirty page size, tracking) apply to every map the space builds; a
 * page size different from initial's is -EINVAL. */
VMMEM_EXPORT int vmmem_space_new(vmmem_space **out, vmmem_map *initial,
                                 const struct vmmem_map_options *opts);
/* Drop the space's reference to its current map; snapshots stay valid. */
VMMEM_EXPORT void vmmem_space_free(vmmem_space *s);

/* The current map, with a reference the caller must drop (never NULL for a
 * valid space).  Lock-free and wait-free for readers.  Taking the reference
 * writes the map's shared counter: threads snapshotting the same space at a
 * high rate contend on it; they can use read sections instead. */
VMMEM_EXPORT vmmem_map *vmmem_space_snapshot(vmmem_space *s);

/*
 * Read sections: the current map without taking a reference.  Between
 * vmmem_space_read_begin and vmmem_space_read_end the map returned stays
 * valid; the thread writes only a counter of its own (one cache line per
 * thread, up to 32 threads), so many threads read one space without
 * contending.  Writers wait for every section that may still use the map
 * they replace: keep sections short and never block inside one.  A writer
 * call on the same space from inside a section fails with -EDEADLK rather
 * than wait for itself.  Up to 8 sections may be nested per thread
 * (-EMLINK beyond).  The section struct is the caller's; end it in the
 * thread that began it, and before freeing the space (ended by another
 * thread, the counters stay right but the beginning thread keeps counting
 * itself inside until it exits).  Returns NULL on bad
 * arguments, with sec->space cleared so that read_end does nothing.  The
 * -EDEADLK check covers one space: a thread inside a section of space A
 * writing to space B while another thread inside a section of B writes to
 * A deadlocks both, as with any two read-write locks taken in two orders.
 */
struct vmmem_read_section {
    vmmem_space *space; /* set by read_begin, cleared by read_end */
    unsigned stripe;    /* private to the space */
    unsigned phase;     /* private to the space */
    const void *owner; /* the thread that began it */
};
/* Enter a read section of s: the current map, valid until read_end. */
VMMEM_EXPORT const vmmem_map *vmmem_space_read_begin(vmmem_space *s,
                                                     struct vmmem_read_section *sec);
/* Leave the section sec (nothing when read_begin failed). */
VMMEM_EXPORT void vmmem_space_read_end(struct vmmem_read_section *sec);

/* Map one region (spec, through reg) and publish a map that adds it.
 * VMMEM_EOVERLAP if it overlaps a published region. */
VMMEM_EXPORT int vmmem_space_add(vmmem_space *s, vmmem_registry *reg,
                                 const struct vmmem_region_spec *spec);
/* Publish a map without the region of exactly [base, base+size):
 * VMMEM_EINVALID_ADDRESS when no region has that base and size. */
VMMEM_EXPORT int vmmem_space_remove(vmmem_space *s, vmmem_gaddr_t base, uint64_t size);
/* Remove [base, base+size) and add spec in one publication. */
VMMEM_EXPORT int vmmem_space_replace(vmmem_space *s, vmmem_gaddr_t base, uint64_t size,
                                     vmmem_registry *reg, const struct vmmem_region_spec *spec);
/*
 * vmmem_space_add and vmmem_space_replace with the region written as a
 * config string of exactly one region (config.h), e.g.
 *     vmmem_space_add_config(s, NULL, "mmap:addr=8G,size=1M,shared");
 * Errors as for vmmem_map_from_config (the column is in config), plus
 * -EINVAL for a string of more than one region, and those of add/replace.
 */
VMMEM_EXPORT int vmmem_space_add_config(vmmem_space *s, vmmem_registry *reg, const char *config);
VMMEM_EXPORT int vmmem_space_replace_config(vmmem_space *s, vmmem_gaddr_t base, uint64_t size,
                                            vmmem_registry *reg, const char *config);

/*
 * The number of maps the space has published since it was made (0 for a
 * new space; every add, remove, replace, rebase and publish adds 1, a
 * failed one nothing).  One atomic load: a device or a migration loop
 * compares it with the value it saw to know cheaply that the layout
 * changed.  Read it before taking a snapshot: a snapshot taken after
 * reading g is at least as new as generation g.
 */
VMMEM_EXPORT uint64_t vmmem_space_generation(const vmmem_space *s);

/* Publish the same mapping of region [base, base+size) at new_base instead
 * (no copy, no remap). */
VMMEM_EXPORT int vmmem_space_rebase(vmmem_space *s, vmmem_gaddr_t base, uint64_t size,
                                    vmmem_gaddr_t new_base);
/* Publish m as a whole (a reference is taken).  -EINVAL when m's dirty
 * page size differs from the space's (one region's pages must be counted
 * one way in every map of the space).  When a vhost-user log is attached to
 * the space (vmmem_space_attach_log), m gets it (tracking on). */
VMMEM_EXPORT int vmmem_space_publish(vmmem_space *s, vmmem_map *m);

/*
 * Dirty tracking for the whole space (the switch a migration uses; dirty.h
 * says what "on" guarantees).  Dirty state belongs to the memory: every
 * map holding a region - the current one, old snapshots, maps published
 * later, the alias vmmem_space_rebase makes - and every slice of it marks
 * the same bitmap, so one switch covers them all.  Regions added later
 * inherit the switch.  While it is on:
 *  - a region that enters the layout (vmmem_space_add, _replace, _publish
 *    of a map with new regions, and _rebase, which moves memory to a new
 *    address) starts with every page dirty: the next harvest reports it
 *    whole, since a destination has nothing at that address yet;
 *  - a region that leaves it (remove, replace, the old address of a
 *    rebase) stays mapped until the next vmmem_space_harvest, which
 *    reports the pages it had dirty (those not harvested yet, and those
 *    written through old snapshots until then) through
 *    vmmem_harvest_next_removed_run at the address it had.
 * Switching off forgets the removed regions not harvested yet (the
 * migration is over); a space tracked only through snapshots
 * (vmmem_map_set_dirty_tracking) keeps them until its next harvest or
 * vmmem_space_free.  -ENOMEM (bitmap words) changes nothing.
 * vmmem_map_set_dirty_tracking on a snapshot switches the same regions
 * (not regions added later); the creation option VMMEM_MAP_DIRTY_TRACKING
 * is this switch, on from the start.
 */
VMMEM_EXPORT int vmmem_space_set_dirty_tracking(vmmem_space *s, bool on);
/* True when the space's switch is on, or every region of its map is tracked. */
VMMEM_EXPORT bool vmmem_space_dirty_tracking(vmmem_space *s);
/*
 * Collect and clear the dirty pages of the space's current layout and of
 * the regions removed since the last space harvest, into h (any buffer from
 * vmmem_harvest_new: it is re-fitted to the layout, never -EINVAL after a
 * hot-plug).  Runs of the current layout come from vmmem_harvest_next_run
 * at the addresses of the map the harvest used, which *map receives (a
 * reference to drop; NULL: not wanted): copy the runs out of that map, so
 * a region removed meanwhile is still there to read.  Runs of removed
 * regions come from vmmem_harvest_next_removed_run.  Returns the number of
 * dirty pages (both kinds), -ENOMEM (nothing harvested), -EINVAL.
 */
VMMEM_EXPORT int64_t vmmem_space_harvest(vmmem_space *s, vmmem_harvest *h, vmmem_map **map);

/*
 * The vhost-user dirty log (dirty.h) for the whole space: the space keeps
 * it, attaches it to every region of the published map and of every map it
 * publishes later, so regions added during a migration mark it too.  Same
 * arguments and errors as vmmem_map_attach_log (detach: -ENOENT when the
 * space has none); both take the writers' lock, so no publication can come
 * between, and both are -EDEADLK from inside a read section of the space.
 * After a detach (or an attach replacing it) no region of the space marks
 * the old log, even through old snapshots, and it is unmapped once the
 * writers marking it at that moment are done (the call waits for them).
 */
VMMEM_EXPORT int vmmem_space_attach_log(vmmem_space *s, int fd, uint64_t offset, uint64_t size);
VMMEM_EXPORT int vmmem_space_detach_log(vmmem_space *s);

VMMEM_END_DECLS

#endif

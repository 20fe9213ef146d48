/*
 * The mmap provider's checks shared by the POSIX plugin (mmap.c) and the
 * Windows one (mmap_win.c), with the same messages.  Included by exactly one
 * of them; it uses their `host` table.
 */
#ifndef VMMEM_MMAP_OPTS_H
#define VMMEM_MMAP_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <vmmem/provider.h>

/* prot=r|rw (default rw): *rw.  (The host's option kit words the error.) */
static int mmap_parse_prot(const struct vmmem_region_spec *spec, bool *rw)
{
    int prot = VMMEM_PROT_RW;
    int rc = host->option_prot(spec, &prot);
    *rw = (prot & VMMEM_PROT_WRITE) != 0;
    return rc;
}

/* shared | private (default private): *shared. */
static int mmap_parse_sharing(const struct vmmem_region_spec *spec, bool *shared)
{
    return host->option_sharing(spec, false, shared);
}

/* The region's size rounded up to page (a power of two), as a mapping length. */
static int mmap_round_len(const struct vmmem_region_spec *spec, uint64_t page, size_t *len)
{
    uint64_t l = spec->size + (page - 1);
    if (l < spec->size || l > SIZE_MAX)
        return host->set_error(VMMEM_EOVERFLOW, "mmap region at 0x%llx: size 0x%llx too large",
                               (unsigned long long)spec->addr, (unsigned long long)spec->size);
    *len = (size_t)(l & ~(page - 1));
    return 0;
}

#endif

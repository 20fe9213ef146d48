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

/* prot=r|rw (default rw): *rw. */
static int mmap_parse_prot(const struct vmmem_region_spec *spec, bool *rw)
{
    const char *prot_s = vmmem_spec_get(spec, "prot");
    *rw = true;
    if (prot_s == NULL || strcmp(prot_s, "rw") == 0)
        return 0;
    if (strcmp(prot_s, "r") == 0) {
        *rw = false;
        return 0;
    }
    return host->set_error(VMMEM_EBAD_VALUE, "mmap region at 0x%llx: prot='%s' is not 'r' or 'rw'",
                           (unsigned long long)spec->addr, prot_s);
}

/* shared | private (default private): *shared. */
static int mmap_parse_sharing(const struct vmmem_region_spec *spec, bool *shared)
{
    *shared = vmmem_spec_has(spec, "shared");
    if (*shared && vmmem_spec_has(spec, "private"))
        return host->set_error(VMMEM_EBAD_VALUE,
                               "mmap region at 0x%llx: 'shared' and 'private' exclude each other",
                               (unsigned long long)spec->addr);
    return 0;
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

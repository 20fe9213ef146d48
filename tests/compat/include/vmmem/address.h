/*
 * libvmmem - guest addresses.
 *
 * A guest address is a plain uint64_t.  All arithmetic here is checked: a
 * result that would wrap is reported as VMMEM_EOVERFLOW and *out is left
 * unchanged.  These are header-only so the compiler can fold them away.
 */
#ifndef VMMEM_ADDRESS_H
#define VMMEM_ADDRESS_H

#include <errno.h>

#include "common.h"

VMMEM_BEGIN_DECLS

/* A guest-physical address. */
typedef uint64_t vmmem_gaddr_t;

/* *out = a + v.  VMMEM_EOVERFLOW if the sum exceeds UINT64_MAX. */
static inline int vmmem_addr_add(vmmem_gaddr_t a, uint64_t v, vmmem_gaddr_t *out)
{
    if (v > UINT64_MAX - a)
        return VMMEM_EOVERFLOW;
    *out = a + v;
    return 0;
}

/* *out = a - v.  VMMEM_EOVERFLOW if v > a. */
static inline int vmmem_addr_sub(vmmem_gaddr_t a, uint64_t v, vmmem_gaddr_t *out)
{
    if (v > a)
        return VMMEM_EOVERFLOW;
    *out = a - v;
    return 0;
}

/* *out = a - base (offset of a from base).  VMMEM_EOVERFLOW if a < base. */
static inline int vmmem_addr_offset_from(vmmem_gaddr_t a, vmmem_gaddr_t base, uint64_t *out)
{
    return vmmem_addr_sub(a, base, out);
}

/*
 * Round a up to a multiple of align, which must be a non-zero power of two
 * (otherwise -EINVAL).  VMMEM_EOVERFLOW if the result exceeds UINT64_MAX.
 */
static inline int vmmem_addr_align_up(vmmem_gaddr_t a, uint64_t align, vmmem_gaddr_t *out)
{
    if (align == 0 || (align & (align - 1)) != 0)
        return -EINVAL;
    uint64_t mask = align - 1;
    if (a > UINT64_MAX - mask)
        return VMMEM_EOVERFLOW;
    *out = (a + mask) & ~mask;
    return 0;
}

/* Last byte of [start, start+len): VMMEM_EOVERFLOW when len == 0 or it wraps. */
static inline int vmmem_addr_last(vmmem_gaddr_t start, uint64_t len, vmmem_gaddr_t *out)
{
    if (len == 0)
        return VMMEM_EOVERFLOW;
    return vmmem_addr_add(start, len - 1, out);
}

VMMEM_END_DECLS

#endif

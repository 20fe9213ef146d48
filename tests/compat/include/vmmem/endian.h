/*
 * libvmmem - little/big-endian helpers for device registers and rings.
 *
 * vmmem_{le,be}{16,32,64}_{load,store} work on any host pointer (no alignment
 * needed); vmmem_read_{le,be}* / vmmem_write_{le,be}* go through a map with
 * the read_obj/write_obj contract.
 */
#ifndef VMMEM_ENDIAN_H
#define VMMEM_ENDIAN_H

#include "map.h"

VMMEM_BEGIN_DECLS

#define VMMEM__ENDIAN_FNS(bits)                                                                  \
    static inline uint##bits##_t vmmem_le##bits##_load(const void *p)                            \
    {                                                                                            \
        const uint8_t *b = (const uint8_t *)p;                                                   \
        uint##bits##_t v = 0;                                                                    \
        for (int i = (bits) / 8 - 1; i >= 0; i--)                                                \
            v = (uint##bits##_t)((v << 8) | b[i]);                                               \
        return v;                                                                                \
    }                                                                                            \
    static inline uint##bits##_t vmmem_be##bits##_load(const void *p)                            \
    {                                                                                            \
        const uint8_t *b = (const uint8_t *)p;                                                   \
        uint##bits##_t v = 0;                                                                    \
        for (int i = 0; i < (bits) / 8; i++)                                                     \
            v = (uint##bits##_t)((v << 8) | b[i]);                                               \
        return v;                                                                                \
    }                                                                                            \
    static inline void vmmem_le##bits##_store(void *p, uint##bits##_t v)                         \
    {                                                                                            \
        uint8_t *b = (uint8_t *)p;                                                               \
        for (int i = 0; i < (bits) / 8; i++)                                                     \
            b[i] = (uint8_t)(v >> (8 * i));                                                      \
    }                                                                                            \
    static inline void vmmem_be##bits##_store(void *p, uint##bits##_t v)                         \
    {                                                                                            \
        uint8_t *b = (uint8_t *)p;                                                               \
        for (int i = 0; i < (bits) / 8; i++)                                                     \
            b[(bits) / 8 - 1 - i] = (uint8_t)(v >> (8 * i));                                     \
    }                                                                                            \
    static inline int vmmem_read_le##bits(const vmmem_map *m, vmmem_gaddr_t a,                   \
                                          uint##bits##_t *out)                                   \
    {                                                                                            \
        uint8_t b[(bits) / 8];                                                                   \
        int rc = vmmem_read_obj(m, a, b, sizeof b);                                              \
        if (rc == 0)                                                                             \
            *out = vmmem_le##bits##_load(b);                                                     \
        return rc;                                                                               \
    }                                                                                            \
    static inline int vmmem_read_be##bits(const vmmem_map *m, vmmem_gaddr_t a,                   \
                                          uint##bits##_t *out)                                   \
    {                                                                                            \
        uint8_t b[(bits) / 8];                                                                   \
        int rc = vmmem_read_obj(m, a, b, sizeof b);                                              \
        if (rc == 0)                                                                             \
            *out = vmmem_be##bits##_load(b);                                                     \
        return rc;                                                                               \
    }                                                                                            \
    static inline int vmmem_write_le##bits(const vmmem_map *m, vmmem_gaddr_t a, uint##bits##_t v) \
    {                                                                                            \
        uint8_t b[(bits) / 8];                                                                   \
        vmmem_le##bits##_store(b, v);                                                            \
        return vmmem_write_obj(m, a, b, sizeof b);                                               \
    }                                                                                            \
    static inline int vmmem_write_be##bits(const vmmem_map *m, vmmem_gaddr_t a, uint##bits##_t v) \
    {                                                                                            \
        uint8_t b[(bits) / 8];                                                                   \
        vmmem_be##bits##_store(b, v);                                                            \
        return vmmem_write_obj(m, a, b, sizeof b);                                               \
    }

VMMEM__ENDIAN_FNS(16)
VMMEM__ENDIAN_FNS(32)
VMMEM__ENDIAN_FNS(64)

VMMEM_END_DECLS

#endif

/*
 * Endian helpers (endian.h): byte order of the host-pointer load/store
 * helpers, unaligned pointers, and the map helpers vmmem_read_{le,be}* /
 * vmmem_write_{le,be}* with the read_obj/write_obj contract.
 * Conformance floor: vm-memory's endian.rs (value 0x0123456789ABCDEF
 * truncated to each width).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vmmem/vmmem.h>

#include "harness.h"

#define V64 0x0123456789ABCDEFull
#define V32 0x89ABCDEFu
#define V16 0xCDEFu

static const uint8_t LE64[8] = {0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01};
static const uint8_t BE64[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
static const uint8_t LE32[4] = {0xEF, 0xCD, 0xAB, 0x89};
static const uint8_t BE32[4] = {0x89, 0xAB, 0xCD, 0xEF};
static const uint8_t LE16[2] = {0xEF, 0xCD};
static const uint8_t BE16[2] = {0xCD, 0xEF};

/* Two touching regions. */
#define TWO_MAP "mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000"
/* A region, a hole [0x1000,0x2000), a region. */
#define HOLE_MAP "mmap:addr=0,size=0x1000;mmap:addr=0x2000,size=0x1000"

static bool host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b[2];
    memcpy(b, &one, 2);
    return b[0] == 1;
}

/* Check that buf[0..pre) and buf[pre+n..total) still hold the 0xA5 fill. */
static bool guards_intact(const uint8_t *buf, size_t total, size_t pre, size_t n)
{
    for (size_t i = 0; i < total; i++)
        if ((i < pre || i >= pre + n) && buf[i] != 0xA5)
            return false;
    return true;
}

/* ---- host-pointer helpers ------------------------------------------------------ */

static void test_store_byte_order(void)
{
    uint8_t b[8];
    memset(b, 0, sizeof b);
    vmmem_le16_store(b, (uint16_t)V64);
    CU_ASSERT_EQUAL(memcmp(b, LE16, 2), 0);
    vmmem_be16_store(b, (uint16_t)V64);
    CU_ASSERT_EQUAL(memcmp(b, BE16, 2), 0);
    vmmem_le32_store(b, (uint32_t)V64);
    CU_ASSERT_EQUAL(memcmp(b, LE32, 4), 0);
    vmmem_be32_store(b, (uint32_t)V64);
    CU_ASSERT_EQUAL(memcmp(b, BE32, 4), 0);
    vmmem_le64_store(b, V64);
    CU_ASSERT_EQUAL(memcmp(b, LE64, 8), 0);
    vmmem_be64_store(b, V64);
    CU_ASSERT_EQUAL(memcmp(b, BE64, 8), 0);
}

static void test_load_byte_order(void)
{
    CU_ASSERT_EQUAL(vmmem_le16_load(LE16), V16);
    CU_ASSERT_EQUAL(vmmem_be16_load(BE16), V16);
    CU_ASSERT_EQUAL(vmmem_le32_load(LE32), V32);
    CU_ASSERT_EQUAL(vmmem_be32_load(BE32), V32);
    CU_ASSERT_EQUAL(vmmem_le64_load(LE64), V64);
    CU_ASSERT_EQUAL(vmmem_be64_load(BE64), V64);
    /* The other order reads the byte-swapped value. */
    CU_ASSERT_EQUAL(vmmem_be16_load(LE16), 0xEFCDu);
    CU_ASSERT_EQUAL(vmmem_le32_load(BE32), 0xEFCDAB89u);
    CU_ASSERT_EQUAL(vmmem_be64_load(LE64), 0xEFCDAB8967452301ull);
    /* High bits: no sign extension, no truncation. */
    static const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80};
    CU_ASSERT_EQUAL(vmmem_le64_load(ff), 0x80FFFFFFFFFFFFFFull);
    CU_ASSERT_EQUAL(vmmem_be64_load(ff), 0xFFFFFFFFFFFFFF80ull);
    CU_ASSERT_EQUAL(vmmem_le16_load(ff + 6), 0x80FFu);
    CU_ASSERT_EQUAL(vmmem_be32_load(ff + 4), 0xFFFFFF80u);
}

/* The raw representation equals the native one exactly when the orders match. */
static void test_vs_native(void)
{
    const uint64_t v64 = V64;
    const uint32_t v32 = V32;
    const uint16_t v16 = V16;
    uint8_t nat[8], le[8], be[8];
    bool le_host = host_is_le();

    memcpy(nat, &v64, 8);
    vmmem_le64_store(le, v64);
    vmmem_be64_store(be, v64);
    CU_ASSERT_EQUAL(memcmp(nat, le, 8) == 0, le_host);
    CU_ASSERT_EQUAL(memcmp(nat, be, 8) == 0, !le_host);
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(le[i], be[7 - i]);

    memcpy(nat, &v32, 4);
    vmmem_le32_store(le, v32);
    vmmem_be32_store(be, v32);
    CU_ASSERT_EQUAL(memcmp(nat, le, 4) == 0, le_host);
    CU_ASSERT_EQUAL(memcmp(nat, be, 4) == 0, !le_host);

    memcpy(nat, &v16, 2);
    vmmem_le16_store(le, v16);
    vmmem_be16_store(be, v16);
    CU_ASSERT_EQUAL(memcmp(nat, le, 2) == 0, le_host);
    CU_ASSERT_EQUAL(memcmp(nat, be, 2) == 0, !le_host);
}

static void test_unaligned_and_roundtrip(void)
{
    _Alignas(16) uint8_t buf[24];
    for (size_t off = 0; off < 9; off++) {
        memset(buf, 0xA5, sizeof buf);
        vmmem_le64_store(buf + off, V64);
        CU_ASSERT_EQUAL(memcmp(buf + off, LE64, 8), 0);
        CU_ASSERT(guards_intact(buf, sizeof buf, off, 8));
        CU_ASSERT_EQUAL(vmmem_le64_load(buf + off), V64);

        memset(buf, 0xA5, sizeof buf);
        vmmem_be64_store(buf + off, V64);
        CU_ASSERT_EQUAL(memcmp(buf + off, BE64, 8), 0);
        CU_ASSERT(guards_intact(buf, sizeof buf, off, 8));
        CU_ASSERT_EQUAL(vmmem_be64_load(buf + off), V64);

        memset(buf, 0xA5, sizeof buf);
        vmmem_le32_store(buf + off, V32);
        CU_ASSERT_EQUAL(memcmp(buf + off, LE32, 4), 0);
        CU_ASSERT(guards_intact(buf, sizeof buf, off, 4));
        CU_ASSERT_EQUAL(vmmem_le32_load(buf + off), V32);

        memset(buf, 0xA5, sizeof buf);
        vmmem_be32_store(buf + off, V32);
        CU_ASSERT_EQUAL(memcmp(buf + off, BE32, 4), 0);
        CU_ASSERT(guards_intact(buf, sizeof buf, off, 4));
        CU_ASSERT_EQUAL(vmmem_be32_load(buf + off), V32);

        memset(buf, 0xA5, sizeof buf);
        vmmem_le16_store(buf + off, V16);
        CU_ASSERT_EQUAL(memcmp(buf + off, LE16, 2), 0);
        CU_ASSERT(guards_intact(buf, sizeof buf, off, 2));
        CU_ASSERT_EQUAL(vmmem_le16_load(buf + off), V16);

        memset(buf, 0xA5, sizeof buf);
        vmmem_be16_store(buf + off, V16);
        CU_ASSERT_EQUAL(memcmp(buf + off, BE16, 2), 0);
        CU_ASSERT(guards_intact(buf, sizeof buf, off, 2));
        CU_ASSERT_EQUAL(vmmem_be16_load(buf + off), V16);
    }
    /* Extremes round-trip. */
    vmmem_be64_store(buf + 3, UINT64_MAX);
    CU_ASSERT_EQUAL(vmmem_be64_load(buf + 3), UINT64_MAX);
    vmmem_le64_store(buf + 5, 0);
    CU_ASSERT_EQUAL(vmmem_le64_load(buf + 5), 0);
    vmmem_le16_store(buf + 1, 0x8000);
    CU_ASSERT_EQUAL(vmmem_le16_load(buf + 1), 0x8000);
}

/* ---- map helpers ----------------------------------------------------------------- */

static void check_guest(const vmmem_map *m, vmmem_gaddr_t a, const uint8_t *want, size_t n)
{
    uint8_t got[8];
    CU_ASSERT_EQUAL(vmmem_read(m, a, got, n), (int64_t)n);
    CU_ASSERT_EQUAL(memcmp(got, want, n), 0);
}

static void test_map_write_byte_order(void)
{
    vmmem_map *m = vt_map(TWO_MAP);
    if (m == NULL)
        return;
    VT_ASSERT_RC(vmmem_write_le16(m, 0x10, (uint16_t)V64), 0);
    check_guest(m, 0x10, LE16, 2);
    VT_ASSERT_RC(vmmem_write_be16(m, 0x20, (uint16_t)V64), 0);
    check_guest(m, 0x20, BE16, 2);
    VT_ASSERT_RC(vmmem_write_le32(m, 0x30, (uint32_t)V64), 0);
    check_guest(m, 0x30, LE32, 4);
    VT_ASSERT_RC(vmmem_write_be32(m, 0x40, (uint32_t)V64), 0);
    check_guest(m, 0x40, BE32, 4);
    VT_ASSERT_RC(vmmem_write_le64(m, 0x50, V64), 0);
    check_guest(m, 0x50, LE64, 8);
    VT_ASSERT_RC(vmmem_write_be64(m, 0x60, V64), 0);
    check_guest(m, 0x60, BE64, 8);
    /* Address 0, unaligned addresses and the last bytes of the map. */
    VT_ASSERT_RC(vmmem_write_be64(m, 0, V64), 0);
    check_guest(m, 0, BE64, 8);
    VT_ASSERT_RC(vmmem_write_le32(m, 0x123, V32), 0);
    check_guest(m, 0x123, LE32, 4);
    VT_ASSERT_RC(vmmem_write_be64(m, 0x1ff8, V64), 0);
    check_guest(m, 0x1ff8, BE64, 8);
    VT_ASSERT_RC(vmmem_write_le16(m, 0x1ffe, V16), 0);
    check_guest(m, 0x1ffe, LE16, 2);
    vmmem_map_unref(m);
}

static void test_map_read_byte_order(void)
{
    vmmem_map *m = vt_map(TWO_MAP);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_write(m, 0x100, LE64, 8), 8);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x201, BE64, 8), 8);
    uint16_t v16 = 0;
    uint32_t v32 = 0;
    uint64_t v64 = 0;
    VT_ASSERT_RC(vmmem_read_le64(m, 0x100, &v64), 0);
    CU_ASSERT_EQUAL(v64, V64);
    VT_ASSERT_RC(vmmem_read_le32(m, 0x100, &v32), 0);
    CU_ASSERT_EQUAL(v32, V32);
    VT_ASSERT_RC(vmmem_read_le16(m, 0x100, &v16), 0);
    CU_ASSERT_EQUAL(v16, V16);
    VT_ASSERT_RC(vmmem_read_be64(m, 0x201, &v64), 0);
    CU_ASSERT_EQUAL(v64, V64);
    VT_ASSERT_RC(vmmem_read_be32(m, 0x205, &v32), 0);
    CU_ASSERT_EQUAL(v32, V32);
    VT_ASSERT_RC(vmmem_read_be16(m, 0x207, &v16), 0);
    CU_ASSERT_EQUAL(v16, V16);
    VT_ASSERT_RC(vmmem_read_be64(m, 0x100, &v64), 0);
    CU_ASSERT_EQUAL(v64, 0xEFCDAB8967452301ull);
    /* Round trips through the map. */
    VT_ASSERT_RC(vmmem_write_be32(m, 0x301, 0xA1B2C3D4u), 0);
    VT_ASSERT_RC(vmmem_read_be32(m, 0x301, &v32), 0);
    CU_ASSERT_EQUAL(v32, 0xA1B2C3D4u);
    VT_ASSERT_RC(vmmem_read_le32(m, 0x301, &v32), 0);
    CU_ASSERT_EQUAL(v32, 0xD4C3B2A1u);
    vmmem_map_unref(m);
}

static void test_map_across_seam(void)
{
    vmmem_map *m = vt_map(TWO_MAP);
    if (m == NULL)
        return;
    /* A u64 whose bytes straddle the touching regions at 0x1000. */
    for (vmmem_gaddr_t a = 0xff9; a < 0x1000; a++) {
        VT_ASSERT_RC(vmmem_write_le64(m, a, V64), 0);
        check_guest(m, a, LE64, 8);
        uint64_t v = 0;
        VT_ASSERT_RC(vmmem_read_le64(m, a, &v), 0);
        CU_ASSERT_EQUAL(v, V64);
        VT_ASSERT_RC(vmmem_write_be64(m, a, V64), 0);
        check_guest(m, a, BE64, 8);
        VT_ASSERT_RC(vmmem_read_be64(m, a, &v), 0);
        CU_ASSERT_EQUAL(v, V64);
    }
    VT_ASSERT_RC(vmmem_write_be32(m, 0xffe, V32), 0);
    check_guest(m, 0xffe, BE32, 4);
    uint8_t lo[2];
    CU_ASSERT_EQUAL(vmmem_read(m, 0xffe, lo, 2), 2);
    CU_ASSERT(lo[0] == 0x89 && lo[1] == 0xAB); /* first half in region 0 */
    VT_ASSERT_RC(vmmem_write_le16(m, 0xfff, V16), 0);
    check_guest(m, 0xfff, LE16, 2);
    uint16_t v16 = 0;
    VT_ASSERT_RC(vmmem_read_le16(m, 0xfff, &v16), 0);
    CU_ASSERT_EQUAL(v16, V16);
    vmmem_map_unref(m);
}

static void test_map_hole(void)
{
    vmmem_map *m = vt_map(HOLE_MAP);
    if (m == NULL)
        return;
    uint16_t v16 = 0x1111;
    uint32_t v32 = 0x22222222;
    uint64_t v64 = 0x3333333333333333ull;
    /* Entirely in the hole. */
    VT_ASSERT_RC(vmmem_write_le32(m, 0x1800, V32), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x1800);
    VT_ASSERT_RC(vmmem_write_be64(m, 0x1000, V64), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x1000);
    VT_ASSERT_RC(vmmem_read_be64(m, 0x1ff8, &v64), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x1ff8);
    CU_ASSERT_EQUAL(v64, 0x3333333333333333ull);
    VT_ASSERT_RC(vmmem_read_le16(m, 0x1fff, &v16), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(v16, 0x1111);
    /* Past the end. */
    VT_ASSERT_RC(vmmem_read_le32(m, 0x3000, &v32), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(v32, 0x22222222);
    VT_ASSERT_RC(vmmem_write_le16(m, 0x3000, 1), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x3000);
    /* Unbacked and wrapping: a hole at the first byte, or an overflow. */
    int rc = vmmem_write_le16(m, UINT64_MAX, 1);
    CU_ASSERT(rc == VMMEM_EINVALID_ADDRESS || rc == VMMEM_EOVERFLOW);
    vmmem_map_unref(m);
}

static void test_map_partial(void)
{
    vmmem_map *m = vt_map(HOLE_MAP);
    if (m == NULL)
        return;
    static const uint8_t pre[4] = {0x5a, 0x5b, 0x5c, 0x5d};
    CU_ASSERT_EQUAL(vmmem_write(m, 0xffc, pre, 4), 4);
    /* Starts backed, runs into the hole: EPARTIAL, nothing written. */
    VT_ASSERT_RC(vmmem_write_le32(m, 0xffe, V32), VMMEM_EPARTIAL);
    const struct vmmem_error *e = vmmem_last_error();
    CU_ASSERT_EQUAL(e->code, VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(e->expected, 4);
    CU_ASSERT_EQUAL(e->completed, 0);
    CU_ASSERT_EQUAL(e->addr, 0x1000);
    check_guest(m, 0xffc, pre, 4);
    VT_ASSERT_RC(vmmem_write_be64(m, 0xff9, V64), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->expected, 8);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x1000);
    check_guest(m, 0xffc, pre, 4);
    VT_ASSERT_RC(vmmem_write_le16(m, 0xfff, V16), VMMEM_EPARTIAL);
    check_guest(m, 0xffc, pre, 4);
    /* Reads: the output stays untouched. */
    uint64_t v64 = 0x3333333333333333ull;
    VT_ASSERT_RC(vmmem_read_le64(m, 0xffc, &v64), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->expected, 8);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 0);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x1000);
    CU_ASSERT_EQUAL(v64, 0x3333333333333333ull);
    /* At the end of the map. */
    uint32_t v32 = 0x22222222;
    VT_ASSERT_RC(vmmem_read_be32(m, 0x2ffd, &v32), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x3000);
    CU_ASSERT_EQUAL(v32, 0x22222222);
    VT_ASSERT_RC(vmmem_read_be32(m, 0x2ffc, &v32), 0);
    vmmem_map_unref(m);
}

static void test_map_top_of_address_space(void)
{
    vmmem_map *m = vt_map("mmap:addr=0xFFFFFFFFFFFFF000,size=0x1000");
    if (m == NULL)
        return;
    VT_ASSERT_RC(vmmem_write_be64(m, UINT64_MAX - 7, V64), 0);
    check_guest(m, UINT64_MAX - 7, BE64, 8);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_read_le64(m, UINT64_MAX - 7, &v), 0);
    CU_ASSERT_EQUAL(v, 0xEFCDAB8967452301ull);
    /* Would run past 2^64: fails, writes nothing, never wraps to address 0. */
    int rc = vmmem_write_le64(m, UINT64_MAX - 3, 0);
    CU_ASSERT(rc == VMMEM_EPARTIAL || rc == VMMEM_EOVERFLOW);
    check_guest(m, UINT64_MAX - 7, BE64, 8);
    uint32_t v32 = 7;
    rc = vmmem_read_le32(m, UINT64_MAX, &v32);
    CU_ASSERT(rc == VMMEM_EPARTIAL || rc == VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(v32, 7);
    vmmem_map_unref(m);
}

static const struct vt_test host_tests[] = {
    {"store byte order", test_store_byte_order},
    {"load byte order", test_load_byte_order},
    {"raw representation vs native", test_vs_native},
    {"unaligned pointers and round trips", test_unaligned_and_roundtrip},
    {NULL, NULL},
};

static const struct vt_test map_tests[] = {
    {"write byte order", test_map_write_byte_order},
    {"read byte order", test_map_read_byte_order},
    {"across a region seam", test_map_across_seam},
    {"at a hole", test_map_hole},
    {"partially backed", test_map_partial},
    {"top of the address space", test_map_top_of_address_space},
    {NULL, NULL},
};

static const struct vt_suite s1 = {"endian host helpers", NULL, NULL, host_tests};
static const struct vt_suite s2 = {"endian map helpers", NULL, NULL, map_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&s1, &s2, NULL};
    return vt_main(suites);
}

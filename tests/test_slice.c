/*
 * Volatile slices (slice.h): vmmem_get_slice, slices over host buffers,
 * subslice/offset/split_at, copies, typed reads/writes, atomics and the
 * slice iterator.  Conformance floor: vm-memory's volatile_memory.rs and
 * mmap/mod.rs get_slice/get_slices cases, adapted to the C header.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vmmem/vmmem.h>

#include "harness.h"

/* The crate's layout: [0,0x400), hole, [0x800,0xc00), [0xc00,0x1000). */
#define CRATE_MAP "mmap:addr=0,size=0x400;mmap:addr=0x800,size=0x400;mmap:addr=0xc00,size=0x400"
/* One region whose last byte is UINT64_MAX. */
#define TOP_BASE 0xFFFFFFFFFFFFF000ull
#define TOP_MAP "mmap:addr=0xFFFFFFFFFFFFF000,size=0x1000"

#define ASSERT_ERR(code_, addr_)                                                                   \
    do {                                                                                           \
        CU_ASSERT_EQUAL(vmmem_last_error()->code, (int)(code_));                                   \
        CU_ASSERT_EQUAL(vmmem_last_error()->addr, (uint64_t)(addr_));                              \
    } while (0)

static void *host_of(const vmmem_map *m, vmmem_gaddr_t a)
{
    void *h = NULL;
    int rc = vmmem_map_host_address(m, a, &h, NULL);
    VT_ASSERT_RC(rc, 0);
    return h;
}

/* Fill guest [a, a+len) with (seed + i) & 0xff through vmmem_write. */
static void fill_guest(const vmmem_map *m, vmmem_gaddr_t a, size_t len, unsigned seed)
{
    uint8_t buf[0x1000];
    CU_ASSERT_FATAL(len <= sizeof buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed + i);
    CU_ASSERT_EQUAL(vmmem_write(m, a, buf, len), (int64_t)len);
}

static uint8_t guest_byte(const vmmem_map *m, vmmem_gaddr_t a)
{
    uint8_t b = 0x5a;
    CU_ASSERT_EQUAL(vmmem_read(m, a, &b, 1), 1);
    return b;
}

/* ---- vmmem_get_slice ------------------------------------------------------ */

static void test_get_slice_in_region(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice s = {0};
    memset(&s, 0xff, sizeof s);
    int rc = vmmem_get_slice(m, 0x100, 0x200, &s);
    VT_ASSERT_RC(rc, 0);
    if (rc != 0) {
        vmmem_map_unref(m);
        return;
    }
    CU_ASSERT_EQUAL(s.len, 0x200);
    CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, 0x100));
    CU_ASSERT_PTR_NULL(s.guard);
    /* Writes through the slice are guest memory. */
    for (size_t i = 0; i < s.len; i++)
        s.ptr[i] = (uint8_t)(i ^ 0x3c);
    uint8_t buf[0x200];
    CU_ASSERT_EQUAL(vmmem_read(m, 0x100, buf, sizeof buf), (int64_t)sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != (uint8_t)(i ^ 0x3c)) {
            CU_FAIL("slice write not visible through vmmem_read");
            break;
        }
    vmmem_slice_release(&s);
    CU_ASSERT_PTR_NULL(s.ptr);
    CU_ASSERT_EQUAL(s.len, 0);

    /* Region offset in a later region: same host bytes as a wider slice. */
    vmmem_slice a = {0}, b = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x800, 0x20, &a), 0);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x810, 0x10, &b), 0);
    CU_ASSERT_PTR_EQUAL(b.ptr, a.ptr + 0x10);
    vmmem_slice_release(&a);
    vmmem_slice_release(&b);
    vmmem_map_unref(m);
}

static void test_get_slice_whole_and_edges(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice s = {0};
    /* Exactly a whole region (touching its neighbour). */
    VT_ASSERT_RC(vmmem_get_slice(m, 0x800, 0x400, &s), 0);
    CU_ASSERT_EQUAL(s.len, 0x400);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_get_slice(m, 0, 0x400, &s), 0);
    CU_ASSERT_EQUAL(s.len, 0x400);
    CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, 0));
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_get_slice(m, 0xc00, 0x400, &s), 0);
    CU_ASSERT_EQUAL(s.len, 0x400);
    vmmem_slice_release(&s);
    /* Last byte of a region and of the map. */
    VT_ASSERT_RC(vmmem_get_slice(m, 0x3ff, 1, &s), 0);
    CU_ASSERT_EQUAL(s.len, 1);
    CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, 0x3ff));
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_get_slice(m, 0xfff, 1, &s), 0);
    CU_ASSERT_EQUAL(s.len, 1);
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

static void test_get_slice_zero_length(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x200, 0, &s), 0);
    CU_ASSERT_EQUAL(s.len, 0);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_get_slice(m, 0, 0, &s), 0);
    CU_ASSERT_EQUAL(s.len, 0);
    vmmem_slice_release(&s);
    /* Zero length needs a backed address: a hole or past the end fails. */
    VT_ASSERT_RC(vmmem_get_slice(m, 0x400, 0, &s), VMMEM_EINVALID_ADDRESS);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x400);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 0, &s), VMMEM_EINVALID_ADDRESS);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x1000);
    vmmem_map_unref(m);
}

static void test_get_slice_crosses(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice s = {0};
    /* Into the hole. */
    VT_ASSERT_RC(vmmem_get_slice(m, 0, 0x500, &s), VMMEM_ECROSSES_REGION);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_ECROSSES_REGION);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x3ff, 2, &s), VMMEM_ECROSSES_REGION);
    VT_ASSERT_RC(vmmem_get_slice(m, 0, 0x401, &s), VMMEM_ECROSSES_REGION);
    /* Into the next, touching region: still two regions. */
    VT_ASSERT_RC(vmmem_get_slice(m, 0x800, 0x401, &s), VMMEM_ECROSSES_REGION);
    VT_ASSERT_RC(vmmem_get_slice(m, 0xbff, 2, &s), VMMEM_ECROSSES_REGION);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x800, 0x800, &s), VMMEM_ECROSSES_REGION);
    /* Past the end of the map. */
    VT_ASSERT_RC(vmmem_get_slice(m, 0xfff, 2, &s), VMMEM_ECROSSES_REGION);
    /* A huge length from a backed address. */
    VT_ASSERT_RC(vmmem_get_slice(m, 0x10, SIZE_MAX, &s), VMMEM_ECROSSES_REGION);
    vmmem_map_unref(m);
}

static void test_get_slice_hole(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x600, 0x10, &s), VMMEM_EINVALID_ADDRESS);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x600);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x400, 1, &s), VMMEM_EINVALID_ADDRESS);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x400);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x7ff, 0x10, &s), VMMEM_EINVALID_ADDRESS);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x7ff);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 1, &s), VMMEM_EINVALID_ADDRESS);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x1000);
    VT_ASSERT_RC(vmmem_get_slice(m, UINT64_MAX, 1, &s), VMMEM_EINVALID_ADDRESS);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, UINT64_MAX);
    vmmem_map_unref(m);
}

static void test_get_slice_top_of_address_space(void)
{
    vmmem_map *m = vt_map(TOP_MAP);
    if (m == NULL)
        return;
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, TOP_BASE, 0x1000, &s), 0);
    CU_ASSERT_EQUAL(s.len, 0x1000);
    vmmem_slice_release(&s);
    int rc = vmmem_get_slice(m, UINT64_MAX, 1, &s);
    VT_ASSERT_RC(rc, 0);
    if (rc == 0) {
        CU_ASSERT_EQUAL(s.len, 1);
        CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, UINT64_MAX));
        s.ptr[0] = 0x77;
        CU_ASSERT_EQUAL(guest_byte(m, UINT64_MAX), 0x77);
        vmmem_slice_release(&s);
    }
    VT_ASSERT_RC(vmmem_get_slice(m, UINT64_MAX, 0, &s), 0);
    CU_ASSERT_EQUAL(s.len, 0);
    vmmem_slice_release(&s);
    /* addr + len wraps past 2^64: leaves the region, or overflows; never ok. */
    rc = vmmem_get_slice(m, UINT64_MAX, 2, &s);
    CU_ASSERT(rc == VMMEM_ECROSSES_REGION || rc == VMMEM_EOVERFLOW);
    rc = vmmem_get_slice(m, TOP_BASE, 0x1001, &s);
    CU_ASSERT(rc == VMMEM_ECROSSES_REGION || rc == VMMEM_EOVERFLOW);
    vmmem_map_unref(m);
}

/* ---- slices over host buffers ----------------------------------------------- */

static void test_slice_from_buffer(void)
{
    _Alignas(8) uint8_t buf[16] = {0};
    vmmem_slice s = vmmem_slice_from_buffer(buf, sizeof buf);
    CU_ASSERT_PTR_EQUAL(s.ptr, buf);
    CU_ASSERT_EQUAL(s.len, sizeof buf);
    CU_ASSERT_PTR_NULL(s.bitmap);
    CU_ASSERT_PTR_NULL(s.guard);
    const uint8_t data[4] = {1, 2, 3, 4};
    VT_ASSERT_RC(vmmem_slice_write(&s, 12, data, 4), 0);
    CU_ASSERT_EQUAL(memcmp(buf + 12, data, 4), 0);
    CU_ASSERT_EQUAL(buf[11], 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 13, data, 4), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 17);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_slice_store(&s, 0, 4, 0xdeadbeef, VMMEM_SEQ_CST), 0);
    VT_ASSERT_RC(vmmem_slice_load(&s, 0, 4, &v, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(v, 0xdeadbeef);
    uint32_t raw;
    memcpy(&raw, buf, 4);
    CU_ASSERT_EQUAL(raw, 0xdeadbeefu);

    vmmem_slice e = vmmem_slice_from_buffer(buf, 0);
    CU_ASSERT_EQUAL(e.len, 0);
    uint8_t out[4] = {9, 9, 9, 9};
    CU_ASSERT_EQUAL(vmmem_slice_copy_to(&e, out, sizeof out), 0);
    CU_ASSERT_EQUAL(out[0], 9);
    VT_ASSERT_RC(vmmem_slice_read(&e, 0, out, 0), 0);
    VT_ASSERT_RC(vmmem_slice_read(&e, 0, out, 1), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 1);
}

/* ---- subslice / offset / split_at -------------------------------------------- */

struct sub_case {
    size_t off, len;
    int rc;
    uint64_t addr; /* error address when rc == OUT_OF_BOUNDS */
};

static void check_subslice_table(const vmmem_slice *s)
{
    static const struct sub_case cases[] = {
        {0, 0, 0, 0},
        {0, 101, VMMEM_EOUT_OF_BOUNDS, 101},
        {99, 1, 0, 0},
        {99, 2, VMMEM_EOUT_OF_BOUNDS, 101},
        {100, 0, 0, 0},
        {100, 1, VMMEM_EOUT_OF_BOUNDS, 101},
        {101, 0, VMMEM_EOUT_OF_BOUNDS, 101},
        {101, 1, VMMEM_EOUT_OF_BOUNDS, 102},
        {SIZE_MAX, 2, VMMEM_EOVERFLOW, 0},
        {2, SIZE_MAX, VMMEM_EOVERFLOW, 0},
        {1, SIZE_MAX, VMMEM_EOVERFLOW, 0},
        {SIZE_MAX, 0, VMMEM_EOUT_OF_BOUNDS, SIZE_MAX},
        {0, SIZE_MAX, VMMEM_EOUT_OF_BOUNDS, SIZE_MAX},
        {0, 100, 0, 0},
        {10, 80, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct sub_case *c = &cases[i];
        vmmem_slice out = {0};
        memset(&out, 0, sizeof out);
        int rc = vmmem_slice_subslice(s, c->off, c->len, &out);
        if (rc != c->rc)
            fprintf(stdout, "\n    subslice(%zu, %zu): got %d want %d", c->off, c->len, rc, c->rc);
        CU_ASSERT_EQUAL(rc, c->rc);
        if (c->rc == 0 && rc == 0) {
            CU_ASSERT_EQUAL(out.len, c->len);
            CU_ASSERT_PTR_EQUAL(out.ptr, s->ptr + c->off);
            CU_ASSERT_EQUAL(out.bitmap_offset, s->bitmap_offset + c->off);
            CU_ASSERT_PTR_EQUAL(out.bitmap, s->bitmap);
        } else if (c->rc == VMMEM_EOUT_OF_BOUNDS && rc == c->rc) {
            if (vmmem_last_error()->addr != c->addr)
                fprintf(stdout, "\n    subslice(%zu, %zu): error addr %llu want %llu", c->off,
                        c->len, (unsigned long long)vmmem_last_error()->addr,
                        (unsigned long long)c->addr);
            ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, c->addr);
        } else if (rc == c->rc) {
            CU_ASSERT_EQUAL(vmmem_last_error()->code, c->rc);
        }
    }
}

static void test_subslice_table_guest(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    fill_guest(m, 0x100, 100, 0x40);
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x100, 100, &s), 0);
    CU_ASSERT_EQUAL(s.bitmap_offset, 0x100);
    check_subslice_table(&s);

    /* Content of (10, 80). */
    vmmem_slice sub = {0};
    VT_ASSERT_RC(vmmem_slice_subslice(&s, 10, 80, &sub), 0);
    uint8_t buf[80];
    CU_ASSERT_EQUAL(vmmem_slice_copy_to(&sub, buf, sizeof buf), 80);
    for (size_t i = 0; i < 80; i++)
        CU_ASSERT_EQUAL(buf[i], (uint8_t)(0x40 + 10 + i));
    /* Nested subslice: offsets compose. */
    vmmem_slice sub2 = {0};
    VT_ASSERT_RC(vmmem_slice_subslice(&sub, 5, 70, &sub2), 0);
    CU_ASSERT_EQUAL(sub2.len, 70);
    CU_ASSERT_PTR_EQUAL(sub2.ptr, s.ptr + 15);
    CU_ASSERT_EQUAL(sub2.bitmap_offset, 0x100 + 15);
    VT_ASSERT_RC(vmmem_slice_subslice(&sub, 5, 76, &sub2), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 81); /* relative to sub */
    VT_ASSERT_RC(vmmem_slice_subslice(&sub, 80, 0, &sub2), 0);
    CU_ASSERT_EQUAL(sub2.len, 0);
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

static void test_subslice_table_buffer(void)
{
    uint8_t buf[100];
    vmmem_slice s = vmmem_slice_from_buffer(buf, sizeof buf);
    check_subslice_table(&s);
}

static void test_offset(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    fill_guest(m, 0x800, 100, 7);
    vmmem_slice s = {0}, o = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x800, 100, &s), 0);
    VT_ASSERT_RC(vmmem_slice_offset(&s, 101, &o), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 101); /* relative, unlike the crate's host address */
    VT_ASSERT_RC(vmmem_slice_offset(&s, SIZE_MAX, &o), VMMEM_EOUT_OF_BOUNDS);
    VT_ASSERT_RC(vmmem_slice_offset(&s, 10, &o), 0);
    CU_ASSERT_EQUAL(o.len, 90);
    CU_ASSERT_PTR_EQUAL(o.ptr, s.ptr + 10);
    CU_ASSERT_EQUAL(o.bitmap_offset, s.bitmap_offset + 10);
    uint8_t buf[90];
    CU_ASSERT_EQUAL(vmmem_slice_copy_to(&o, buf, sizeof buf), 90);
    for (size_t i = 0; i < 90; i++)
        CU_ASSERT_EQUAL(buf[i], (uint8_t)(7 + 10 + i));
    VT_ASSERT_RC(vmmem_slice_offset(&s, 100, &o), 0);
    CU_ASSERT_EQUAL(o.len, 0);
    VT_ASSERT_RC(vmmem_slice_offset(&s, 0, &o), 0);
    CU_ASSERT_EQUAL(o.len, 100);
    CU_ASSERT_PTR_EQUAL(o.ptr, s.ptr);
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

static void test_split_at(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    fill_guest(m, 0xc00, 32, 0);
    vmmem_slice s = {0}, h = {0}, t = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0xc00, 32, &s), 0);
    static const size_t mids[] = {8, 0, 31, 32};
    for (size_t i = 0; i < 4; i++) {
        size_t mid = mids[i];
        memset(&h, 0, sizeof h);
        memset(&t, 0, sizeof t);
        VT_ASSERT_RC(vmmem_slice_split_at(&s, mid, &h, &t), 0);
        CU_ASSERT_EQUAL(h.len, mid);
        CU_ASSERT_EQUAL(t.len, 32 - mid);
        CU_ASSERT_PTR_EQUAL(h.ptr, s.ptr);
        CU_ASSERT_PTR_EQUAL(t.ptr, s.ptr + mid);
        CU_ASSERT_EQUAL(h.bitmap_offset, s.bitmap_offset);
        CU_ASSERT_EQUAL(t.bitmap_offset, s.bitmap_offset + mid);
        if (t.len > 0) {
            uint8_t b = 0xee;
            VT_ASSERT_RC(vmmem_slice_read(&t, 0, &b, 1), 0);
            CU_ASSERT_EQUAL(b, (uint8_t)mid);
        }
    }
    VT_ASSERT_RC(vmmem_slice_split_at(&s, 33, &h, &t), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 33);
    VT_ASSERT_RC(vmmem_slice_split_at(&s, SIZE_MAX, &h, &t), VMMEM_EOUT_OF_BOUNDS);
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

/* ---- copies --------------------------------------------------------------------- */

static void test_copy_to_buffers(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    const uint8_t five[5] = {1, 2, 3, 4, 5};
    CU_ASSERT_EQUAL(vmmem_write(m, 0x200, five, 5), 5);
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x200, 5, &s), 0);

    /* Shorter destination: 4 bytes, guard byte after it stays. */
    uint8_t shorter[5] = {0, 0, 0, 0, 0xaa};
    CU_ASSERT_EQUAL(vmmem_slice_copy_to(&s, shorter, 4), 4);
    CU_ASSERT_EQUAL(memcmp(shorter, five, 4), 0);
    CU_ASSERT_EQUAL(shorter[4], 0xaa);

    /* Longer destination: 5 bytes copied, the 6th stays. */
    uint8_t longer[7] = {0, 0, 0, 0, 0, 0xbb, 0xcc};
    CU_ASSERT_EQUAL(vmmem_slice_copy_to(&s, longer, 6), 5);
    CU_ASSERT_EQUAL(memcmp(longer, five, 5), 0);
    CU_ASSERT_EQUAL(longer[5], 0xbb);
    CU_ASSERT_EQUAL(longer[6], 0xcc);

    /* Zero-length destination. */
    uint8_t none = 0x11;
    CU_ASSERT_EQUAL(vmmem_slice_copy_to(&s, &none, 0), 0);
    CU_ASSERT_EQUAL(none, 0x11);
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

static void test_copy_from_buffers(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    const uint8_t guard[8] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};
    CU_ASSERT_EQUAL(vmmem_write(m, 0x300, guard, 8), 8);
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x300, 5, &s), 0);

    const uint8_t four[4] = {1, 2, 3, 4};
    CU_ASSERT_EQUAL(vmmem_slice_copy_from(&s, four, 4), 4);
    uint8_t got[8];
    CU_ASSERT_EQUAL(vmmem_read(m, 0x300, got, 8), 8);
    CU_ASSERT_EQUAL(memcmp(got, four, 4), 0);
    CU_ASSERT_EQUAL(got[4], 0xa4); /* 5th slice byte untouched */
    CU_ASSERT_EQUAL(got[5], 0xa5);

    const uint8_t six[6] = {11, 12, 13, 14, 15, 16};
    CU_ASSERT_EQUAL(vmmem_slice_copy_from(&s, six, 6), 5);
    CU_ASSERT_EQUAL(vmmem_read(m, 0x300, got, 8), 8);
    CU_ASSERT_EQUAL(memcmp(got, six, 5), 0);
    CU_ASSERT_EQUAL(got[5], 0xa5); /* guest byte after the slice untouched */
    CU_ASSERT_EQUAL(got[6], 0xa6);

    CU_ASSERT_EQUAL(vmmem_slice_copy_from(&s, six, 0), 0);
    CU_ASSERT_EQUAL(guest_byte(m, 0x300), 11);
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

static void test_copy_to_slice(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    const uint8_t src5[5] = {1, 2, 3, 4, 5};
    const uint8_t guard[6] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5};
    CU_ASSERT_EQUAL(vmmem_write(m, 0x10, src5, 5), 5);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x820, guard, 6), 6);
    vmmem_slice src = {0}, dst = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x10, 5, &src), 0);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x820, 4, &dst), 0);
    /* 5 -> 4: four bytes, the guest byte after dst untouched. */
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&src, &dst), 4);
    uint8_t got[6];
    CU_ASSERT_EQUAL(vmmem_read(m, 0x820, got, 6), 6);
    CU_ASSERT_EQUAL(memcmp(got, src5, 4), 0);
    CU_ASSERT_EQUAL(got[4], 0xa4);
    CU_ASSERT_EQUAL(got[5], 0xa5);
    /* Source unchanged. */
    CU_ASSERT_EQUAL(vmmem_read(m, 0x10, got, 5), 5);
    CU_ASSERT_EQUAL(memcmp(got, src5, 5), 0);

    /* 4 -> 5 into a host buffer slice: four bytes, the 5th stays. */
    uint8_t hb[6] = {0, 0, 0, 0, 0x55, 0x66};
    vmmem_slice hs = vmmem_slice_from_buffer(hb, 5);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&dst, &hs), 4);
    CU_ASSERT_EQUAL(memcmp(hb, src5, 4), 0);
    CU_ASSERT_EQUAL(hb[4], 0x55);
    CU_ASSERT_EQUAL(hb[5], 0x66);

    /* Empty source copies nothing. */
    vmmem_slice empty = {0};
    VT_ASSERT_RC(vmmem_slice_offset(&src, 5, &empty), 0);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&empty, &dst), 0);
    CU_ASSERT_EQUAL(guest_byte(m, 0x820), 1);
    vmmem_slice_release(&src);
    vmmem_slice_release(&dst);
    vmmem_map_unref(m);
}

/* ---- typed reads and writes ---------------------------------------------------- */

static void test_slice_read_write(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    fill_guest(m, 0x900, 104, 0x80); /* 100-byte slice plus 4 guard bytes */
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x900, 100, &s), 0);

    const uint8_t w[4] = {0xd0, 0xd1, 0xd2, 0xd3};
    VT_ASSERT_RC(vmmem_slice_write(&s, 96, w, 4), 0);
    uint8_t got[8];
    CU_ASSERT_EQUAL(vmmem_read(m, 0x900 + 96, got, 8), 8);
    CU_ASSERT_EQUAL(memcmp(got, w, 4), 0);
    CU_ASSERT_EQUAL(got[4], (uint8_t)(0x80 + 100)); /* beyond the slice: untouched */

    /* All-or-error: nothing written when the range leaves the slice. */
    const uint8_t x[4] = {0xe0, 0xe1, 0xe2, 0xe3};
    VT_ASSERT_RC(vmmem_slice_write(&s, 97, x, 4), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 101);
    CU_ASSERT_EQUAL(vmmem_read(m, 0x900 + 96, got, 8), 8);
    CU_ASSERT_EQUAL(memcmp(got, w, 4), 0);
    CU_ASSERT_EQUAL(got[4], (uint8_t)(0x80 + 100));
    VT_ASSERT_RC(vmmem_slice_write(&s, 100, x, 1), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 101);
    CU_ASSERT_EQUAL(guest_byte(m, 0x900 + 100), (uint8_t)(0x80 + 100));
    VT_ASSERT_RC(vmmem_slice_write(&s, 100, x, 0), 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 101, x, 0), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 101);
    VT_ASSERT_RC(vmmem_slice_write(&s, SIZE_MAX, x, 2), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EOVERFLOW);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0, x, 0), 0);
    CU_ASSERT_EQUAL(guest_byte(m, 0x900), 0x80);

    /* Reads: same contract, caller's buffer untouched on error. */
    uint8_t r[4] = {1, 1, 1, 1};
    VT_ASSERT_RC(vmmem_slice_read(&s, 97, r, 4), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 101);
    CU_ASSERT(r[0] == 1 && r[1] == 1 && r[2] == 1 && r[3] == 1);
    VT_ASSERT_RC(vmmem_slice_read(&s, 2, r, SIZE_MAX), VMMEM_EOVERFLOW);
    CU_ASSERT(r[0] == 1 && r[1] == 1 && r[2] == 1 && r[3] == 1);
    VT_ASSERT_RC(vmmem_slice_read(&s, 96, r, 4), 0);
    CU_ASSERT_EQUAL(memcmp(r, w, 4), 0);
    VT_ASSERT_RC(vmmem_slice_read(&s, 0, r, 1), 0);
    CU_ASSERT_EQUAL(r[0], 0x80);
    VT_ASSERT_RC(vmmem_slice_read(&s, 100, r, 0), 0);
    VT_ASSERT_RC(vmmem_slice_read(&s, 101, r, 0), VMMEM_EOUT_OF_BOUNDS);

    /* Unaligned u32 at offset 1 round-trips. */
    const uint32_t v = 0x11223344u;
    uint32_t back = 0;
    VT_ASSERT_RC(vmmem_slice_write(&s, 1, &v, sizeof v), 0);
    VT_ASSERT_RC(vmmem_slice_read(&s, 1, &back, sizeof back), 0);
    CU_ASSERT_EQUAL(back, v);
    CU_ASSERT_EQUAL(vmmem_read(m, 0x901, &back, 4), 4);
    CU_ASSERT_EQUAL(back, v);
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

static void test_slice_load_store(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice s = {0}, big = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x100, 8, &s), 0);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x200, 32, &big), 0);
    fill_guest(m, 0x100, 8, 0);
    uint64_t v = 0;

    /* Within bounds, aligned. */
    VT_ASSERT_RC(vmmem_slice_store(&s, 0, 8, 0x0123456789abcdefull, VMMEM_RELEASE), 0);
    VT_ASSERT_RC(vmmem_slice_load(&s, 0, 8, &v, VMMEM_ACQUIRE), 0);
    CU_ASSERT_EQUAL(v, 0x0123456789abcdefull);
    uint64_t mv = 0;
    VT_ASSERT_RC(vmmem_load(m, 0x100, 8, &mv, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(mv, 0x0123456789abcdefull);
    VT_ASSERT_RC(vmmem_slice_store(&s, 4, 4, 100, VMMEM_RELAXED), 0);
    VT_ASSERT_RC(vmmem_slice_load(&s, 4, 4, &v, VMMEM_RELAXED), 0);
    CU_ASSERT_EQUAL(v, 100);
    VT_ASSERT_RC(vmmem_slice_store(&s, 6, 2, 0xbeef, VMMEM_SEQ_CST), 0);
    VT_ASSERT_RC(vmmem_slice_load(&s, 6, 2, &v, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(v, 0xbeef);
    VT_ASSERT_RC(vmmem_slice_store(&s, 7, 1, 0x1ff, VMMEM_SEQ_CST), 0); /* truncated */
    VT_ASSERT_RC(vmmem_slice_load(&s, 7, 1, &v, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(v, 0xff);
    VT_ASSERT_RC(vmmem_slice_load(&s, 6, 2, &v, VMMEM_SEQ_CST), 0);
    uint16_t expect16;
    uint8_t b2[2];
    CU_ASSERT_EQUAL(vmmem_read(m, 0x106, b2, 2), 2);
    memcpy(&expect16, b2, 2);
    CU_ASSERT_EQUAL(v, expect16);

    /* Bounds before alignment: (1, 8) on 8 bytes is OUT_OF_BOUNDS{9}. */
    VT_ASSERT_RC(vmmem_slice_load(&s, 1, 8, &v, VMMEM_SEQ_CST), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 9);
    VT_ASSERT_RC(vmmem_slice_store(&s, 1, 8, 0, VMMEM_SEQ_CST), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 9);
    VT_ASSERT_RC(vmmem_slice_load(&s, 7, 2, &v, VMMEM_SEQ_CST), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 9);
    VT_ASSERT_RC(vmmem_slice_load(&s, 8, 1, &v, VMMEM_SEQ_CST), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 9);
    VT_ASSERT_RC(vmmem_slice_load(&s, 8, 8, &v, VMMEM_SEQ_CST), VMMEM_EOUT_OF_BOUNDS);
    ASSERT_ERR(VMMEM_EOUT_OF_BOUNDS, 16);
    VT_ASSERT_RC(vmmem_slice_load(&s, SIZE_MAX, 8, &v, VMMEM_SEQ_CST), VMMEM_EOVERFLOW);

    /* In bounds but misaligned. */
    v = 42;
    VT_ASSERT_RC(vmmem_slice_load(&s, 2, 4, &v, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EMISALIGNED);
    CU_ASSERT_EQUAL(v, 42);
    VT_ASSERT_RC(vmmem_slice_load(&s, 1, 2, &v, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    VT_ASSERT_RC(vmmem_slice_load(&big, 4, 8, &v, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    uint8_t before[8], after[8];
    CU_ASSERT_EQUAL(vmmem_read(m, 0x100, before, 8), 8);
    VT_ASSERT_RC(vmmem_slice_store(&s, 2, 4, 0xffffffff, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    VT_ASSERT_RC(vmmem_slice_store(&s, 3, 2, 0xffff, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    CU_ASSERT_EQUAL(vmmem_read(m, 0x100, after, 8), 8);
    CU_ASSERT_EQUAL(memcmp(before, after, 8), 0);

    /* Sizes other than 1, 2, 4, 8. */
    VT_ASSERT_RC(vmmem_slice_load(&big, 0, 3, &v, VMMEM_SEQ_CST), -EINVAL);
    VT_ASSERT_RC(vmmem_slice_load(&big, 0, 16, &v, VMMEM_SEQ_CST), -EINVAL);
    VT_ASSERT_RC(vmmem_slice_load(&big, 0, 0, &v, VMMEM_SEQ_CST), -EINVAL);
    VT_ASSERT_RC(vmmem_slice_store(&big, 0, 6, 0, VMMEM_SEQ_CST), -EINVAL);
    /* Orders C11 forbids: a release load, an acquire store (see vmmem_load). */
    VT_ASSERT_RC(vmmem_slice_load(&big, 0, 8, &v, VMMEM_RELEASE), -EINVAL);
    VT_ASSERT_RC(vmmem_slice_load(&big, 0, 8, &v, VMMEM_ACQ_REL), -EINVAL);
    VT_ASSERT_RC(vmmem_slice_store(&big, 0, 8, 0, VMMEM_ACQUIRE), -EINVAL);
    VT_ASSERT_RC(vmmem_slice_store(&big, 0, 8, 0, VMMEM_ACQ_REL), -EINVAL);
    vmmem_slice_release(&s);
    vmmem_slice_release(&big);
    vmmem_map_unref(m);
}

/* ---- the slice iterator ------------------------------------------------------- */

static void test_iter_count_zero(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice_iter it;
    vmmem_slice s = {0};
    vmmem_slices_begin(&it, m, 0, 0);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    /* No items even at a hole. */
    vmmem_slices_begin(&it, m, 0x600, 0);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    vmmem_map_unref(m);
}

static void test_iter_single(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice_iter it;
    vmmem_slice s = {0};
    vmmem_slices_begin(&it, m, 0x100, 0x200);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x200);
    CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, 0x100));
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);

    vmmem_slices_begin(&it, m, 0x800, 0x400);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x400);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    vmmem_map_unref(m);
}

static void test_iter_into_hole(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice_iter it;
    vmmem_slice s = {0};
    vmmem_slices_begin(&it, m, 0, 0x500);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x400);
    CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, 0));
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_slices_next(&it, &s), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(it.addr, 0x400);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x400);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    vmmem_map_unref(m);
}

static void test_iter_start_in_hole(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice_iter it;
    vmmem_slice s = {0};
    vmmem_slices_begin(&it, m, 0x600, 0x100);
    VT_ASSERT_RC(vmmem_slices_next(&it, &s), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(it.addr, 0x600);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x600);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    /* A range that would reach the next region still fails at the hole. */
    vmmem_slices_begin(&it, m, 0x7ff, 0x10);
    VT_ASSERT_RC(vmmem_slices_next(&it, &s), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(it.addr, 0x7ff);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    vmmem_map_unref(m);
}

static void test_iter_beyond_end(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice_iter it;
    vmmem_slice s = {0};
    vmmem_slices_begin(&it, m, 0x1000, 0x10);
    VT_ASSERT_RC(vmmem_slices_next(&it, &s), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(it.addr, 0x1000);
    ASSERT_ERR(VMMEM_EINVALID_ADDRESS, 0x1000);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    /* Running off the end of the last region. */
    vmmem_slices_begin(&it, m, 0xf00, 0x200);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x100);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_slices_next(&it, &s), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(it.addr, 0x1000);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    vmmem_map_unref(m);
}

static void test_iter_fragmented(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice_iter it;
    vmmem_slice s = {0};
    vmmem_slices_begin(&it, m, 0xa00, 0x400);
    int rc = vmmem_slices_next(&it, &s);
    CU_ASSERT_EQUAL_FATAL(rc, 1);
    CU_ASSERT_EQUAL_FATAL(s.len, 0x200);
    CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, 0xa00));
    for (size_t i = 0; i < s.len; i++)
        s.ptr[i] = (uint8_t)(i * 3);
    vmmem_slice_release(&s);
    rc = vmmem_slices_next(&it, &s);
    CU_ASSERT_EQUAL_FATAL(rc, 1);
    CU_ASSERT_EQUAL_FATAL(s.len, 0x200);
    CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, 0xc00));
    for (size_t i = 0; i < s.len; i++)
        s.ptr[i] = (uint8_t)((i + 0x200) * 3);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    /* What the slices wrote is guest memory across the seam. */
    uint8_t buf[0x400];
    CU_ASSERT_EQUAL(vmmem_read(m, 0xa00, buf, sizeof buf), (int64_t)sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != (uint8_t)(i * 3)) {
            CU_FAIL("iterator slice writes not visible through vmmem_read");
            break;
        }
    /* Two whole touching regions. */
    vmmem_slices_begin(&it, m, 0x800, 0x800);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x400);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x400);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    vmmem_map_unref(m);
}

static void test_iter_overflow(void)
{
    vmmem_map *m = vt_map(CRATE_MAP);
    if (m == NULL)
        return;
    vmmem_slice_iter it;
    vmmem_slice s = {0};
    /* 0x800 + UINT64_MAX wraps past 2^64. */
    vmmem_slices_begin(&it, m, 0x800, UINT64_MAX);
    int rc = vmmem_slices_next(&it, &s);
    VT_ASSERT_RC(rc, VMMEM_EOVERFLOW);
    if (rc == 1)
        vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    /* 0 + UINT64_MAX ends at 2^64 - 1: no overflow, the hole at 0x400 stops it. */
    vmmem_slices_begin(&it, m, 0, UINT64_MAX);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x400);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_slices_next(&it, &s), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(it.addr, 0x400);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    vmmem_map_unref(m);
}

static void test_iter_top_of_address_space(void)
{
    vmmem_map *m = vt_map(TOP_MAP);
    if (m == NULL)
        return;
    vmmem_slice_iter it;
    vmmem_slice s = {0};
    /* Ending exactly at 2^64 is fine. */
    vmmem_slices_begin(&it, m, TOP_BASE, 0x1000);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x1000);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    vmmem_slices_begin(&it, m, UINT64_MAX, 1);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 1);
    CU_ASSERT_PTR_EQUAL(s.ptr, host_of(m, UINT64_MAX));
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    /* Past 2^64: an overflow (after at most the in-range slice), never a
     * wrap to address 0. */
    static const struct {
        vmmem_gaddr_t addr;
        uint64_t len;
    } wraps[] = {{UINT64_MAX, 2}, {TOP_BASE, 0x1001}, {TOP_BASE, UINT64_MAX}};
    for (size_t i = 0; i < 3; i++) {
        vmmem_slices_begin(&it, m, wraps[i].addr, wraps[i].len);
        int rc, slices = 0;
        while ((rc = vmmem_slices_next(&it, &s)) == 1 && slices < 4) {
            slices++;
            vmmem_slice_release(&s);
        }
        CU_ASSERT(slices <= 1);
        VT_ASSERT_RC(rc, VMMEM_EOVERFLOW);
        CU_ASSERT_EQUAL(vmmem_slices_next(&it, &s), 0);
    }
    vmmem_map_unref(m);
}

/* Slices of a read-only region refuse every write with VMMEM_EREAD_ONLY
 * (never a fault), and slices derived from them inherit that. */
static void test_readonly_slices(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=4K,prot=r;mmap:addr=0x1000,size=4K");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_slice ro = {0}, rw = {0}, sub = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x10, 64, &ro), 0);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1010, 64, &rw), 0);
    CU_ASSERT_EQUAL(ro.prot, VMMEM_PROT_READ);
    CU_ASSERT_EQUAL(rw.prot, VMMEM_PROT_RW);
    uint8_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    VT_ASSERT_RC(vmmem_slice_write(&ro, 0, b, 8), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_slice_store(&ro, 8, 4, 1, VMMEM_RELAXED), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(vmmem_slice_copy_from(&ro, b, 8), 0);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&rw, &ro), 0);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_slice_subslice(&ro, 4, 8, &sub), 0);
    VT_ASSERT_RC(vmmem_slice_write(&sub, 0, b, 1), VMMEM_EREAD_ONLY);
    /* Reading and copying out of it still work. */
    uint8_t out[8] = {0xff};
    VT_ASSERT_RC(vmmem_slice_read(&ro, 0, out, 8), 0);
    CU_ASSERT_EQUAL(out[0], 0);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&ro, &rw), 64);
    vmmem_slice_release(&ro);
    vmmem_slice_release(&rw);
    vmmem_map_unref(m);
}

/* vmmem_get_slice_prot: a read slice of a writable region refuses writes and
 * leaves guest memory alone; a writable one of a read-only region is refused;
 * other prot values and the usual address errors are reported. */
static void test_get_slice_prot(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=4K,prot=r;mmap:addr=0x1000,size=4K");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_slice s = {0}, plain = {0};
    VT_ASSERT_RC(vmmem_get_slice_prot(m, 0x1ff8, 8, VMMEM_PROT_READ, &s), 0); /* last 8 bytes */
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1ff8, 8, &plain), 0);
    CU_ASSERT_PTR_EQUAL(s.ptr, plain.ptr);
    CU_ASSERT_EQUAL(s.len, 8);
    CU_ASSERT_EQUAL(s.prot, VMMEM_PROT_READ);
    CU_ASSERT_EQUAL(plain.prot, VMMEM_PROT_RW);
    uint8_t b[8] = {9, 9, 9, 9, 9, 9, 9, 9}, out[8] = {1};
    VT_ASSERT_RC(vmmem_slice_write(&s, 0, b, 8), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_slice_read(&s, 0, out, 8), 0);
    CU_ASSERT_EQUAL(memcmp(out, "\0\0\0\0\0\0\0\0", 8), 0); /* untouched */
    VT_ASSERT_RC(vmmem_slice_write(&plain, 0, b, 8), 0);
    VT_ASSERT_RC(vmmem_slice_read(&s, 0, out, 8), 0);
    CU_ASSERT_EQUAL(memcmp(out, b, 8), 0);
    vmmem_slice_release(&s);
    vmmem_slice_release(&plain);
    VT_ASSERT_RC(vmmem_get_slice_prot(m, 0x1000, 4096, VMMEM_PROT_RW, &s), 0);
    CU_ASSERT_EQUAL(s.prot, VMMEM_PROT_RW);
    vmmem_slice_release(&s);
    /* A writable slice of the read-only region: refused, with its address. */
    VT_ASSERT_RC(vmmem_get_slice_prot(m, 0x10, 8, VMMEM_PROT_RW, &s), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x10);
    VT_ASSERT_RC(vmmem_get_slice_prot(m, 0x10, 8, VMMEM_PROT_READ, &s), 0);
    vmmem_slice_release(&s);
    /* Bad prot values and arguments; the usual address errors. */
    static const int bad[] = {0, VMMEM_PROT_WRITE, 4, -1, 0x7};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        VT_ASSERT_RC(vmmem_get_slice_prot(m, 0x1000, 8, bad[i], &s), -EINVAL);
    VT_ASSERT_RC(vmmem_get_slice_prot(NULL, 0x1000, 8, VMMEM_PROT_READ, &s), -EINVAL);
    VT_ASSERT_RC(vmmem_get_slice_prot(m, 0x1000, 8, VMMEM_PROT_READ, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_get_slice_prot(m, 0x2000, 1, VMMEM_PROT_READ, &s),
                 VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_get_slice_prot(m, 0xff8, 16, VMMEM_PROT_READ, &s), VMMEM_ECROSSES_REGION);
    VT_ASSERT_RC(vmmem_get_slice_prot(m, UINT64_MAX, 1, VMMEM_PROT_READ, &s),
                 VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m);
}

static const struct vt_test get_slice_tests[] = {
    {"in region", test_get_slice_in_region},
    {"whole region and last bytes", test_get_slice_whole_and_edges},
    {"zero length", test_get_slice_zero_length},
    {"crossing a hole or seam", test_get_slice_crosses},
    {"start in a hole", test_get_slice_hole},
    {"top of the address space", test_get_slice_top_of_address_space},
    {"asking for read or read-write access", test_get_slice_prot},
    {NULL, NULL},
};

static const struct vt_test view_tests[] = {
    {"read-only slices refuse writes", test_readonly_slices},
    {"slice_from_buffer", test_slice_from_buffer},
    {"subslice table (guest)", test_subslice_table_guest},
    {"subslice table (buffer)", test_subslice_table_buffer},
    {"offset", test_offset},
    {"split_at", test_split_at},
    {"copy_to shorter/longer", test_copy_to_buffers},
    {"copy_from shorter/longer", test_copy_from_buffers},
    {"copy_to_slice", test_copy_to_slice},
    {"read/write all-or-error", test_slice_read_write},
    {"load/store bounds and alignment", test_slice_load_store},
    {NULL, NULL},
};

static const struct vt_test iter_tests[] = {
    {"count 0", test_iter_count_zero},
    {"single slice", test_iter_single},
    {"into a hole", test_iter_into_hole},
    {"start in a hole", test_iter_start_in_hole},
    {"beyond the end", test_iter_beyond_end},
    {"fragmented", test_iter_fragmented},
    {"overflow", test_iter_overflow},
    {"top of the address space", test_iter_top_of_address_space},
    {NULL, NULL},
};

static const struct vt_suite s1 = {"get_slice", NULL, NULL, get_slice_tests};
static const struct vt_suite s2 = {"slice views", NULL, NULL, view_tests};
static const struct vt_suite s3 = {"slice iterator", NULL, NULL, iter_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&s1, &s2, &s3, NULL};
    return vt_main(suites);
}

/*
 * Building guest memory maps (vmmem_map_new, vmmem_map_from_config) and
 * querying them (map.h).  Cases follow the vm-memory crate's region.rs
 * (inventory 3.6) and mmap/mod.rs (3.7) tests, adapted to the C API.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A pointer value that a failing constructor must not overwrite. */
static int out_marker;
#define OUT_SENTINEL ((vmmem_map *)(void *)&out_marker)

/* The crate's mmap/mod.rs map: [0,0x400) hole [0x800,0xc00)[0xc00,0x1000). */
#define HOLEY_CONFIG "mmap:addr=0,size=0x400;mmap:addr=0x800,size=0x400;mmap:addr=0xc00,size=0x400"

static struct vmmem_region_spec spec(uint64_t addr, uint64_t size)
{
    struct vmmem_region_spec s = {.provider = "mmap", .addr = addr, .size = size};
    return s;
}

/* vmmem_map_new with the default registry; expects rc, checks *out on failure. */
static vmmem_map *build(const struct vmmem_region_spec *specs, size_t n, int want)
{
    vmmem_map *m = OUT_SENTINEL;
    int rc = vmmem_map_new(&m, NULL, specs, n, NULL);
    VT_ASSERT_RC(rc, want);
    if (rc != 0) {
        CU_ASSERT_PTR_EQUAL(m, OUT_SENTINEL);
        if (want != 0) {
            CU_ASSERT_EQUAL(vmmem_last_error()->code, want);
        }
        return NULL;
    }
    CU_ASSERT_PTR_NOT_NULL(m);
    CU_ASSERT_PTR_NOT_EQUAL(m, OUT_SENTINEL);
    return m;
}

static vmmem_map *build_config(const char *config, int want)
{
    vmmem_map *m = OUT_SENTINEL;
    int rc = vmmem_map_from_config(&m, NULL, config, NULL);
    if (rc != want)
        fprintf(stdout, "\n    config \"%s\"\n", config ? config : "(NULL)");
    VT_ASSERT_RC(rc, want);
    if (rc != 0) {
        CU_ASSERT_PTR_EQUAL(m, OUT_SENTINEL);
        return NULL;
    }
    CU_ASSERT_PTR_NOT_EQUAL(m, OUT_SENTINEL);
    return m;
}

static void assert_region(const vmmem_map *m, size_t i, uint64_t start, uint64_t size)
{
    const vmmem_region *r = vmmem_map_region(m, i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(vmmem_region_start(r), start);
    CU_ASSERT_EQUAL(vmmem_region_size(r), size);
}

/* ---- building: errors ------------------------------------------------------ */

static void test_new_no_regions(void)
{
    struct vmmem_region_spec s[1] = {spec(0, 0x1000)};
    build(s, 0, VMMEM_ENO_REGIONS);
}

static void test_new_null_args(void)
{
    struct vmmem_region_spec s[1] = {spec(0, 0x1000)};
    VT_ASSERT_RC(vmmem_map_new(NULL, NULL, s, 1, NULL), -EINVAL);
    build(NULL, 1, -EINVAL);
}

static void test_new_zero_size(void)
{
    struct vmmem_region_spec one[] = {spec(0, 0)};
    build(one, 1, VMMEM_EZERO_SIZE);
    struct vmmem_region_spec two[] = {spec(0, 0x1000), spec(0x2000, 0)};
    build(two, 2, VMMEM_EZERO_SIZE);
    struct vmmem_region_spec top[] = {spec(UINT64_MAX, 0)};
    build(top, 1, VMMEM_EZERO_SIZE);
}

static void test_new_overlap(void)
{
    /* crate: (0,100) + (99,100) */
    struct vmmem_region_spec a[] = {spec(0, 100), spec(99, 100)};
    build(a, 2, VMMEM_EOVERLAP);
    /* the same, given in reverse order */
    struct vmmem_region_spec b[] = {spec(99, 100), spec(0, 100)};
    build(b, 2, VMMEM_EOVERLAP);
    /* one region inside another */
    struct vmmem_region_spec c[] = {spec(0, 0x3000), spec(0x1000, 0x1000)};
    build(c, 2, VMMEM_EOVERLAP);
    /* identical */
    struct vmmem_region_spec d[] = {spec(0x1000, 0x1000), spec(0x1000, 0x1000)};
    build(d, 2, VMMEM_EOVERLAP);
    /* one byte of overlap at the seam, third region fine */
    struct vmmem_region_spec e[] = {spec(0x4000, 0x1000), spec(0, 0x1001), spec(0x1000, 0x1000)};
    build(e, 3, VMMEM_EOVERLAP);
    /* same start, different sizes */
    struct vmmem_region_spec f[] = {spec(0, 0x1000), spec(0, 0x2000)};
    build(f, 2, VMMEM_EOVERLAP);
    /* at the very top of the address space */
    struct vmmem_region_spec g[] = {spec(UINT64_MAX, 1), spec(UINT64_C(0xfffffffffffff000), 0x1000)};
    build(g, 2, VMMEM_EOVERLAP);
}

static void test_new_overflow(void)
{
    struct vmmem_region_spec a[] = {spec(UINT64_MAX, 2)};
    build(a, 1, VMMEM_EOVERFLOW);
    struct vmmem_region_spec b[] = {spec(UINT64_C(0xfffffffffffff000), 0x1001)};
    build(b, 1, VMMEM_EOVERFLOW);
    struct vmmem_region_spec c[] = {spec(1, UINT64_MAX)};
    build(c, 1, VMMEM_EOVERFLOW);
    struct vmmem_region_spec d[] = {spec(0, 0x1000), spec(UINT64_MAX, UINT64_MAX)};
    build(d, 2, VMMEM_EOVERFLOW);
}

static void test_new_unknown_provider(void)
{
    struct vmmem_region_spec s[] = {spec(0, 0x1000)};
    s[0].provider = "no-such-provider";
    build(s, 1, VMMEM_ENO_PROVIDER);
}

static void test_new_unknown_key(void)
{
    static const struct vmmem_option opts[] = {{"no-such-key", "1"}};
    /* the first region is fine; the failure must not leave it mapped (ASan) */
    struct vmmem_region_spec s[] = {spec(0, 0x1000), spec(0x1000, 0x1000)};
    s[1].options = opts;
    s[1].n_options = 1;
    build(s, 2, VMMEM_EUNKNOWN_KEY);
}

/* ---- building: valid layouts ------------------------------------------------ */

static void test_new_single(void)
{
    struct vmmem_region_spec s[] = {spec(0x1000, 0x1000)};
    vmmem_map *m = build(s, 1, 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 1);
    assert_region(m, 0, 0x1000, 0x1000);
    CU_ASSERT_PTR_NULL(vmmem_map_region(m, 1));
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 0x1fff);
    CU_ASSERT_FALSE(vmmem_map_check_address(m, 0));
    CU_ASSERT_FALSE(vmmem_map_check_address(m, 0xfff));
    CU_ASSERT_TRUE(vmmem_map_check_address(m, 0x1000));
    CU_ASSERT_TRUE(vmmem_map_check_address(m, 0x1fff));
    CU_ASSERT_FALSE(vmmem_map_check_address(m, 0x2000));
    vmmem_map_unref(m);
}

static void test_new_touching(void)
{
    /* crate: (0,100) + (100,100) is valid */
    struct vmmem_region_spec s[] = {spec(0, 100), spec(100, 100)};
    vmmem_map *m = build(s, 2, 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 2);
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 199);
    uint64_t off = 12345;
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 0, &off), vmmem_map_region(m, 0));
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 99, &off), vmmem_map_region(m, 0));
    CU_ASSERT_EQUAL(off, 99);
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 100, &off), vmmem_map_region(m, 1));
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 199, &off), vmmem_map_region(m, 1));
    CU_ASSERT_EQUAL(off, 99);
    CU_ASSERT_PTR_NULL(vmmem_map_find(m, 200, &off));
    CU_ASSERT_TRUE(vmmem_map_check_range(m, 0, 200));
    CU_ASSERT_FALSE(vmmem_map_check_range(m, 0, 201));
    vmmem_map_unref(m);
}

static void test_new_unsorted_is_sorted(void)
{
    /* crate insert_region order: 0x8000, 0x4000, 0xc000 into {0, 0x100000} */
    struct vmmem_region_spec s[] = {spec(0x8000, 0x1000), spec(0x100000, 0x1000),
                                    spec(0x4000, 0x1000), spec(0xc000, 0x1000),
                                    spec(0, 0x1000)};
    vmmem_map *m = build(s, ARRAY_LEN(s), 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 5);
    static const uint64_t want[] = {0, 0x4000, 0x8000, 0xc000, 0x100000};
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        assert_region(m, i, want[i], 0x1000);
        uint64_t off = 1;
        CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, want[i], &off), vmmem_map_region(m, i));
        CU_ASSERT_EQUAL(off, 0);
        CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, want[i] + 0xfff, &off), vmmem_map_region(m, i));
        CU_ASSERT_EQUAL(off, 0xfff);
        CU_ASSERT_PTR_NULL(vmmem_map_find(m, want[i] + 0x1000, &off));
    }
    CU_ASSERT_PTR_NULL(vmmem_map_region(m, 5));
    CU_ASSERT_PTR_NULL(vmmem_map_region(m, SIZE_MAX));
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 0x100fff);
    /* the caller's array is not reordered */
    CU_ASSERT_EQUAL(s[0].addr, 0x8000);
    CU_ASSERT_EQUAL(s[4].addr, 0);
    vmmem_map_unref(m);
}

static void test_new_top_of_address_space(void)
{
    /* start + size - 1 == UINT64_MAX does not wrap: allowed */
    struct vmmem_region_spec s[] = {spec(0, 0x1000), spec(UINT64_C(0xfffffffffffff000), 0x1000)};
    vmmem_map *m = build(s, 2, 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 2);
    assert_region(m, 1, UINT64_C(0xfffffffffffff000), 0x1000);
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), UINT64_MAX);
    CU_ASSERT_TRUE(vmmem_map_check_address(m, UINT64_MAX));
    CU_ASSERT_FALSE(vmmem_map_check_address(m, UINT64_C(0xffffffffffffefff)));
    uint64_t off = 0;
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, UINT64_MAX, &off), vmmem_map_region(m, 1));
    CU_ASSERT_EQUAL(off, 0xfff);
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    CU_ASSERT_EQUAL(info.last, UINT64_MAX);
    CU_ASSERT_TRUE(vmmem_map_check_range(m, UINT64_MAX, 1));
    CU_ASSERT_TRUE(vmmem_map_check_range(m, UINT64_C(0xfffffffffffff000), 0x1000));
    CU_ASSERT_FALSE(vmmem_map_check_range(m, UINT64_MAX, 2));
    /* the very last byte is usable */
    uint8_t b = 0xa5, r = 0;
    CU_ASSERT_EQUAL(vmmem_write(m, UINT64_MAX, &b, 1), 1);
    CU_ASSERT_EQUAL(vmmem_read(m, UINT64_MAX, &r, 1), 1);
    CU_ASSERT_EQUAL(r, 0xa5);
    vmmem_map_unref(m);
}

static void test_new_one_byte_at_top(void)
{
    struct vmmem_region_spec s[] = {spec(UINT64_MAX, 1)};
    vmmem_map *m = build(s, 1, 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), UINT64_MAX);
    CU_ASSERT_TRUE(vmmem_map_check_address(m, UINT64_MAX));
    CU_ASSERT_FALSE(vmmem_map_check_address(m, UINT64_MAX - 1));
    vmmem_map_unref(m);

    /* a one-byte region touching one that ends just below it */
    struct vmmem_region_spec t[] = {spec(UINT64_MAX, 1), spec(UINT64_C(0xfffffffffffff000), 0xfff)};
    m = build(t, 2, 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 2);
    assert_region(m, 0, UINT64_C(0xfffffffffffff000), 0xfff);
    assert_region(m, 1, UINT64_MAX, 1);
    CU_ASSERT_TRUE(vmmem_map_check_range(m, UINT64_MAX - 1, 2));
    uint8_t in[2] = {0x12, 0x34}, out[2] = {0};
    VT_ASSERT_RC(vmmem_write_slice(m, UINT64_MAX - 1, in, 2), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, UINT64_MAX - 1, out, 2), 0);
    CU_ASSERT_EQUAL(memcmp(in, out, 2), 0);
    vmmem_map_unref(m);
}

static void test_specs_are_copied(void)
{
    char name[8];
    strcpy(name, "mmap");
    struct vmmem_region_spec s[] = {spec(0x2000, 0x1000), spec(0, 0x1000)};
    s[0].provider = name;
    s[1].provider = name;
    vmmem_map *m = build(s, 2, 0);
    if (m == NULL)
        return;
    /* the caller may reuse everything it passed */
    strcpy(name, "xxxx");
    s[0].addr = 0x9000;
    s[1].size = 0x5000;
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 0), &info);
    CU_ASSERT_EQUAL(info.start, 0);
    CU_ASSERT_EQUAL(info.size, 0x1000);
    CU_ASSERT_STRING_EQUAL(info.provider, "mmap");
    CU_ASSERT_PTR_NOT_NULL_FATAL(info.spec);
    CU_ASSERT_PTR_NOT_EQUAL(info.spec, &s[1]);
    CU_ASSERT_EQUAL(info.spec->addr, 0);
    CU_ASSERT_EQUAL(info.spec->size, 0x1000);
    CU_ASSERT_STRING_EQUAL(info.spec->provider, "mmap");
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    CU_ASSERT_EQUAL(info.start, 0x2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(info.spec);
    CU_ASSERT_EQUAL(info.spec->addr, 0x2000);
    CU_ASSERT_EQUAL(info.spec->size, 0x1000);
    vmmem_map_unref(m);
}

static void test_adopt(void)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t len = 2 * (size_t)page;
    uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    struct vmmem_region_spec s[2];
    VT_ASSERT_RC(vmmem_spec_adopt(&s[0], 0x100000, mem, len), 0);
    CU_ASSERT_STRING_EQUAL(s[0].provider, "mmap");
    CU_ASSERT_EQUAL(s[0].addr, 0x100000);
    CU_ASSERT_EQUAL(s[0].size, len);
    CU_ASSERT_PTR_EQUAL(s[0].host, mem);
    s[1] = spec(0, 0x1000);
    vmmem_map *m = build(s, 2, 0);
    if (m != NULL) {
        struct vmmem_region_info info;
        vmmem_region_get_info(vmmem_map_region(m, 1), &info);
        CU_ASSERT_EQUAL(info.start, 0x100000);
        CU_ASSERT_PTR_EQUAL(info.host, mem);
        uint32_t v = 0x600dcafe;
        VT_ASSERT_RC(vmmem_write_obj(m, 0x100000 + (uint64_t)page - 2, &v, sizeof v), 0);
        uint32_t back;
        memcpy(&back, mem + page - 2, sizeof back);
        CU_ASSERT_EQUAL(back, 0x600dcafe);
        mem[len - 1] = 0x7e;
        uint8_t b = 0;
        CU_ASSERT_EQUAL(vmmem_read(m, 0x100000 + len - 1, &b, 1), 1);
        CU_ASSERT_EQUAL(b, 0x7e);
        CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 0x100000 + len - 1);
        vmmem_map_unref(m);
    }
    /* the library never unmaps an adopted mapping */
    mem[0] = 1;
    CU_ASSERT_EQUAL(mem[0], 1);
    CU_ASSERT_EQUAL(munmap(mem, len), 0);
}

static void test_adopt_errors(void)
{
    struct vmmem_region_spec s[1];
    memset(s, 0x5a, sizeof s);
    VT_ASSERT_RC(vmmem_spec_adopt(&s[0], 0, NULL, 0x1000), -EINVAL);
    VT_ASSERT_RC(vmmem_spec_adopt(NULL, 0, &out_marker, 0x1000), -EINVAL);
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *mem = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(mem != MAP_FAILED);
    /* not page-aligned: the provider refuses it */
    VT_ASSERT_RC(vmmem_spec_adopt(&s[0], 0, mem + 8, (uint64_t)page), 0);
    build(s, 1, -EINVAL);
    CU_ASSERT_EQUAL(munmap(mem, 2 * (size_t)page), 0);
}

static void test_map_options(void)
{
    struct vmmem_region_spec s[] = {spec(0, 0x4000)};
    vmmem_map *m = build(s, 1, 0);
    if (m != NULL) {
        CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 4096);
        CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
        vmmem_map_unref(m);
    }
    struct vmmem_map_options o = {.struct_size = sizeof o, .flags = 0, .dirty_page_size = 0};
    m = OUT_SENTINEL;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, s, 1, &o), 0);
    if (m != OUT_SENTINEL) {
        CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 4096);
        vmmem_map_unref(m);
    }
    o.dirty_page_size = 0x10000;
    o.flags = VMMEM_MAP_DIRTY_TRACKING;
    m = OUT_SENTINEL;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, s, 1, &o), 0);
    if (m != OUT_SENTINEL) {
        CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 0x10000);
        CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
        vmmem_map_unref(m);
    }
    m = OUT_SENTINEL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=8K", &o), 0);
    if (m != OUT_SENTINEL) {
        CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 0x10000);
        CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
        vmmem_map_unref(m);
    }
}

static void test_map_options_invalid(void)
{
    struct vmmem_region_spec s[] = {spec(0, 0x4000)};
    static const uint64_t bad_pages[] = {3, 0x1800, UINT64_MAX};
    for (size_t i = 0; i < ARRAY_LEN(bad_pages); i++) {
        struct vmmem_map_options o = {.struct_size = sizeof o, .dirty_page_size = bad_pages[i]};
        vmmem_map *m = OUT_SENTINEL;
        VT_ASSERT_RC(vmmem_map_new(&m, NULL, s, 1, &o), -EINVAL);
        CU_ASSERT_PTR_EQUAL(m, OUT_SENTINEL);
        VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=8K", &o), -EINVAL);
        CU_ASSERT_PTR_EQUAL(m, OUT_SENTINEL);
    }
    /* unknown flag bits and a struct_size from nowhere */
    struct vmmem_map_options o = {.struct_size = sizeof o, .flags = 0x80000000u};
    vmmem_map *m = OUT_SENTINEL;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, s, 1, &o), -EINVAL);
    CU_ASSERT_PTR_EQUAL(m, OUT_SENTINEL);
    o.flags = 0;
    o.struct_size = 4;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, s, 1, &o), -EINVAL);
    CU_ASSERT_PTR_EQUAL(m, OUT_SENTINEL);
}

/* ---- building from config strings --------------------------------------- */

static void test_config_basic(void)
{
    vmmem_map *m = build_config("mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000", 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 2);
    assert_region(m, 0, 0, 0x1000);
    assert_region(m, 1, 0x1000, 0x1000);
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 0x1fff);
    vmmem_map_unref(m);
}

static void test_config_suffixes(void)
{
    vmmem_map *m = build_config("mmap:addr=0,size=4K;mmap:addr=1M,size=1M;mmap:addr=4G,size=8K", 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 3);
    assert_region(m, 0, 0, 0x1000);
    assert_region(m, 1, 0x100000, 0x100000);
    assert_region(m, 2, UINT64_C(0x100000000), 0x2000);
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), UINT64_C(0x100001fff));
    CU_ASSERT_FALSE(vmmem_map_check_address(m, 0x1000));
    CU_ASSERT_TRUE(vmmem_map_check_address(m, 0x1fffff));
    CU_ASSERT_FALSE(vmmem_map_check_address(m, 0x200000));
    vmmem_map_unref(m);
}

static void test_config_unsorted(void)
{
    vmmem_map *m = build_config("mmap:addr=0x3000,size=4K;mmap:addr=0,size=4K;mmap:addr=8K,size=4K", 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 3);
    assert_region(m, 0, 0, 0x1000);
    assert_region(m, 1, 0x2000, 0x1000);
    assert_region(m, 2, 0x3000, 0x1000);
    vmmem_map_unref(m);
}

static void test_config_errors(void)
{
    build_config("mmap:addr=0,size=0x2000;mmap:addr=0x1fff,size=0x1000", VMMEM_EOVERLAP);
    build_config("mmap:addr=0x1000,size=4K;mmap:addr=0,size=0x1001", VMMEM_EOVERLAP);
    build_config("mmap:addr=0,size=0", VMMEM_EZERO_SIZE);
    build_config("mmap:addr=0xffffffffffffffff,size=2", VMMEM_EOVERFLOW);
    build_config("mmap:addr=0xfffffffffffff000,size=8K", VMMEM_EOVERFLOW);
    build_config("no-such-provider:addr=0,size=4K", VMMEM_ENO_PROVIDER);
    build_config("mmap:addr=0,size=4K,no-such-key=1", VMMEM_EUNKNOWN_KEY);
    build_config("mmap:addr=0", VMMEM_EMISSING_KEY);
    build_config("mmap:addr=0,size=4K,prot=x", VMMEM_EBAD_VALUE);
    build_config(NULL, -EINVAL);
    VT_ASSERT_RC(vmmem_map_from_config(NULL, NULL, "mmap:addr=0,size=4K", NULL), -EINVAL);
}

static void test_config_top_of_address_space(void)
{
    vmmem_map *m = build_config("mmap:addr=0xfffffffffffff000,size=4K", 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), UINT64_MAX);
    CU_ASSERT_TRUE(vmmem_map_check_address(m, UINT64_MAX));
    vmmem_map_unref(m);
}

/* ---- queries on the crate's holey map --------------------------------------- */

static void test_holey_layout(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 3);
    assert_region(m, 0, 0, 0x400);
    assert_region(m, 1, 0x800, 0x400);
    assert_region(m, 2, 0xc00, 0x400);
    CU_ASSERT_PTR_NULL(vmmem_map_region(m, 3));
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 0xfff);
    vmmem_map_unref(m);
}

static void test_check_address(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    static const struct {
        uint64_t addr;
        bool backed;
    } cases[] = {
        {0, true},       {0x200, true},  {0x3ff, true},  {0x400, false}, {0x600, false},
        {0x7ff, false},  {0x800, true},  {0xa00, true},  {0xbff, true},  {0xc00, true},
        {0xfff, true},   {0x1000, false}, {UINT64_MAX, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = vmmem_map_check_address(m, cases[i].addr);
        if (got != cases[i].backed)
            fprintf(stdout, "\n    check_address(0x%llx) = %d\n",
                    (unsigned long long)cases[i].addr, got);
        CU_ASSERT_EQUAL(got, cases[i].backed);
    }
    vmmem_map_unref(m);
}

static void test_check_range(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    static const struct {
        uint64_t addr, len;
        bool ok;
    } cases[] = {
        /* the crate's table */
        {0, 0, true},
        {0, 0x200, true},
        {0, 0x400, true},
        {0, 0xa00, false},
        {0x800, 0x7ff, true},
        {0x800, 0x800, true}, /* spans two touching regions */
        {0x800, 0x801, false},
        {0x800, 0xc00, false},
        {0, UINT64_MAX, false},
        /* more boundaries */
        {0x3ff, 1, true},
        {0x3ff, 2, false},
        {0x400, 1, false},
        {0x600, 0, true}, /* zero length is true even in a hole */
        {UINT64_MAX, 0, true},
        {0x7ff, 2, false},
        {0xbff, 2, true},
        {0xfff, 1, true},
        {0xfff, 2, false},
        {0xc00, 0x400, true},
        {0x1000, 1, false},
        {UINT64_MAX, 1, false},
        {UINT64_MAX, 2, false},   /* wraps */
        {0x800, UINT64_MAX, false}, /* wraps */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool got = vmmem_map_check_range(m, cases[i].addr, cases[i].len);
        if (got != cases[i].ok)
            fprintf(stdout, "\n    check_range(0x%llx, 0x%llx) = %d\n",
                    (unsigned long long)cases[i].addr, (unsigned long long)cases[i].len, got);
        CU_ASSERT_EQUAL(got, cases[i].ok);
    }
    vmmem_map_unref(m);
}

static void test_checked_offset(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    static const struct {
        uint64_t base, off;
        int rc;
        uint64_t out;
    } cases[] = {
        /* the crate's region.rs table */
        {0, 0x200, 0, 0x200},
        {0, 0xa00, 0, 0xa00}, /* in another region */
        {0x800, 0x7ff, 0, 0xfff},
        {0x800, 0xc00, VMMEM_EINVALID_ADDRESS, 0},
        {0, UINT64_MAX, VMMEM_EINVALID_ADDRESS, 0},
        {0, 0x400, VMMEM_EINVALID_ADDRESS, 0}, /* lands in a hole */
        {0, 0x3ff, 0, 0x3ff},
        /* more */
        {0, 0, 0, 0},
        {0x600, 0x200, 0, 0x800}, /* the base itself may be a hole */
        {0x800, UINT64_MAX, VMMEM_EOVERFLOW, 0},
        {UINT64_MAX, 1, VMMEM_EOVERFLOW, 0},
        {0xfff, 1, VMMEM_EINVALID_ADDRESS, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        vmmem_gaddr_t out = UINT64_C(0x5a5a5a5a5a5a5a5a);
        int rc = vmmem_map_checked_offset(m, cases[i].base, cases[i].off, &out);
        if (rc != cases[i].rc)
            fprintf(stdout, "\n    checked_offset(0x%llx, 0x%llx)\n",
                    (unsigned long long)cases[i].base, (unsigned long long)cases[i].off);
        VT_ASSERT_RC(rc, cases[i].rc);
        if (cases[i].rc == 0) {
            CU_ASSERT_EQUAL(out, cases[i].out);
        } else {
            CU_ASSERT_EQUAL(out, UINT64_C(0x5a5a5a5a5a5a5a5a));
        }
    }
    vmmem_map_unref(m);
}

static void test_find(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    uint64_t off = 77;
    /* crate to_region_addr: hole -> None; 0x800 -> (r,0); 0xa00 -> (same r, 0x200) */
    CU_ASSERT_PTR_NULL(vmmem_map_find(m, 0x600, &off));
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 0x800, &off), vmmem_map_region(m, 1));
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 0xa00, &off), vmmem_map_region(m, 1));
    CU_ASSERT_EQUAL(off, 0x200);
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 0, &off), vmmem_map_region(m, 0));
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 0x3ff, &off), vmmem_map_region(m, 0));
    CU_ASSERT_EQUAL(off, 0x3ff);
    CU_ASSERT_PTR_NULL(vmmem_map_find(m, 0x400, &off));
    CU_ASSERT_PTR_NULL(vmmem_map_find(m, 0x7ff, &off));
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 0xbff, &off), vmmem_map_region(m, 1));
    CU_ASSERT_EQUAL(off, 0x3ff);
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 0xc00, &off), vmmem_map_region(m, 2));
    CU_ASSERT_EQUAL(off, 0);
    CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, 0xfff, &off), vmmem_map_region(m, 2));
    CU_ASSERT_EQUAL(off, 0x3ff);
    CU_ASSERT_PTR_NULL(vmmem_map_find(m, 0x1000, &off));
    CU_ASSERT_PTR_NULL(vmmem_map_find(m, UINT64_MAX, &off));
    vmmem_map_unref(m);
}

static void test_find_many_regions(void)
{
    /* 64 one-page regions with one-page holes: exercises the bisection */
    struct vmmem_region_spec s[64];
    for (size_t i = 0; i < ARRAY_LEN(s); i++)
        s[i] = spec((uint64_t)(ARRAY_LEN(s) - 1 - i) * 0x2000, 0x1000);
    vmmem_map *m = build(s, ARRAY_LEN(s), 0);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 64);
    for (size_t i = 0; i < 64; i++) {
        uint64_t base = (uint64_t)i * 0x2000, off = 99;
        const vmmem_region *r = vmmem_map_region(m, i);
        CU_ASSERT_EQUAL(vmmem_region_start(r), base);
        CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, base, &off), r);
        CU_ASSERT_EQUAL(off, 0);
        CU_ASSERT_PTR_EQUAL(vmmem_map_find(m, base + 0xfff, &off), r);
        CU_ASSERT_EQUAL(off, 0xfff);
        CU_ASSERT_PTR_NULL(vmmem_map_find(m, base + 0x1000, &off));
        CU_ASSERT_PTR_NULL(vmmem_map_find(m, base + 0x1fff, &off));
    }
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 63 * 0x2000 + 0xfff);
    vmmem_map_unref(m);
}

static void test_host_address(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    struct vmmem_region_info i0, i1, i2;
    vmmem_region_get_info(vmmem_map_region(m, 0), &i0);
    vmmem_region_get_info(vmmem_map_region(m, 1), &i1);
    vmmem_region_get_info(vmmem_map_region(m, 2), &i2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i0.host);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i1.host);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i2.host);

    void *h = NULL;
    size_t len = 0x1000;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x200, &h, &len), 0);
    CU_ASSERT_PTR_EQUAL(h, (uint8_t *)i0.host + 0x200);
    CU_ASSERT_EQUAL(len, 0x200); /* clamped to the region's end */

    len = 0x10;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x200, &h, &len), 0);
    CU_ASSERT_PTR_EQUAL(h, (uint8_t *)i0.host + 0x200);
    CU_ASSERT_EQUAL(len, 0x10); /* never grown */

    /* clamped at the seam even though the next region touches */
    len = 0x1000;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0xa00, &h, &len), 0);
    CU_ASSERT_PTR_EQUAL(h, (uint8_t *)i1.host + 0x200);
    CU_ASSERT_EQUAL(len, 0x200);

    len = SIZE_MAX;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0xfff, &h, &len), 0);
    CU_ASSERT_PTR_EQUAL(h, (uint8_t *)i2.host + 0x3ff);
    CU_ASSERT_EQUAL(len, 1);

    h = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0xc00, &h, NULL), 0);
    CU_ASSERT_PTR_EQUAL(h, i2.host);

    /* consistent pointer arithmetic inside a region */
    void *h1 = NULL, *h2 = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x800, &h1, NULL), 0);
    VT_ASSERT_RC(vmmem_map_host_address(m, 0xbff, &h2, NULL), 0);
    CU_ASSERT_EQUAL((uint8_t *)h2 - (uint8_t *)h1, 0x3ff);

    /* writes through the host pointer are what the accessors see */
    len = 4;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x3fc, &h, &len), 0);
    CU_ASSERT_EQUAL(len, 4);
    memcpy(h, "\x11\x22\x33\x44", 4);
    uint8_t buf[4] = {0};
    VT_ASSERT_RC(vmmem_read_slice(m, 0x3fc, buf, 4), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "\x11\x22\x33\x44", 4), 0);
    vmmem_map_unref(m);
}

static void test_host_address_hole(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    static const uint64_t holes[] = {0x400, 0x600, 0x7ff, 0x1000, UINT64_MAX};
    for (size_t i = 0; i < ARRAY_LEN(holes); i++) {
        void *h = &out_marker;
        size_t len = 16;
        VT_ASSERT_RC(vmmem_map_host_address(m, holes[i], &h, &len), VMMEM_EINVALID_ADDRESS);
        CU_ASSERT_PTR_EQUAL(h, &out_marker);
        CU_ASSERT_EQUAL(len, 16);
        CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EINVALID_ADDRESS);
        CU_ASSERT_EQUAL(vmmem_last_error()->addr, holes[i]);
    }
    /* crate: get_host_address(0x600) -> InvalidGuestAddress(0x600) named in the message */
    void *h = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x600, &h, NULL), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "0x600"));
    vmmem_map_unref(m);
}

static void test_region_info(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    static const uint64_t starts[] = {0, 0x800, 0xc00};
    for (size_t i = 0; i < 3; i++) {
        const vmmem_region *r = vmmem_map_region(m, i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        struct vmmem_region_info info;
        memset(&info, 0xa5, sizeof info);
        vmmem_region_get_info(r, &info);
        CU_ASSERT_EQUAL(info.start, starts[i]);
        CU_ASSERT_EQUAL(info.size, 0x400);
        CU_ASSERT_EQUAL(info.last, starts[i] + 0x3ff);
        CU_ASSERT_EQUAL(vmmem_region_start(r), starts[i]);
        CU_ASSERT_EQUAL(vmmem_region_size(r), 0x400);
        CU_ASSERT_PTR_NOT_NULL_FATAL(info.provider);
        CU_ASSERT_STRING_EQUAL(info.provider, "mmap");
        CU_ASSERT_PTR_NOT_NULL(info.host);
        CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
        CU_ASSERT_PTR_NOT_NULL_FATAL(info.spec);
        CU_ASSERT_EQUAL(info.spec->addr, starts[i]);
        CU_ASSERT_EQUAL(info.spec->size, 0x400);
        CU_ASSERT_STRING_EQUAL(info.spec->provider, "mmap");
        CU_ASSERT_PTR_NULL(info.spec->host);
    }
    vmmem_map_unref(m);
}

static void test_region_info_read_only(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=4K,prot=r;mmap:addr=4K,size=4K");
    if (m == NULL)
        return;
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 0), &info);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_READ);
    CU_ASSERT_PTR_NOT_NULL(info.host);
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
    vmmem_map_unref(m);
}

/* ---- reference counting ------------------------------------------------------- */

static void test_ref_unref(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=4K");
    if (m == NULL)
        return;
    vmmem_map *m2 = vmmem_map_ref(m);
    CU_ASSERT_PTR_EQUAL(m2, m);
    uint32_t v = 0xfeedf00d, r = 0;
    VT_ASSERT_RC(vmmem_write_obj(m, 0x100, &v, sizeof v), 0);
    vmmem_map_unref(m);
    /* still alive through the second reference: memory and regions intact */
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m2), 1);
    VT_ASSERT_RC(vmmem_read_obj(m2, 0x100, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r, 0xfeedf00d);
    vmmem_map_unref(m2);
}

static void test_ref_unref_null(void)
{
    CU_ASSERT_PTR_NULL(vmmem_map_ref(NULL));
    vmmem_map_unref(NULL);
}

static void test_many_refs(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=4K");
    if (m == NULL)
        return;
    for (int i = 0; i < 100; i++)
        CU_ASSERT_PTR_EQUAL(vmmem_map_ref(m), m);
    for (int i = 0; i < 100; i++)
        vmmem_map_unref(m);
    CU_ASSERT_TRUE(vmmem_map_check_address(m, 0xfff));
    vmmem_map_unref(m);
}

struct worker {
    vmmem_map *m; /* a reference owned by the worker */
    uint64_t addr;
    int failures;
};

static void *ref_worker(void *arg)
{
    struct worker *w = arg;
    for (uint64_t i = 0; i < 2000; i++) {
        uint64_t v = (w->addr << 32) | i, r = 0;
        if (vmmem_write_obj(w->m, w->addr, &v, sizeof v) != 0 ||
            vmmem_read_obj(w->m, w->addr, &r, sizeof r) != 0 || r != v)
            w->failures++;
        vmmem_map *extra = vmmem_map_ref(w->m);
        if (vmmem_map_find(extra, w->addr, NULL) == NULL)
            w->failures++;
        vmmem_map_unref(extra);
    }
    vmmem_map_unref(w->m);
    return NULL;
}

static void test_refs_across_threads(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=4K;mmap:addr=4K,size=4K");
    if (m == NULL)
        return;
    struct worker w[4];
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++) {
        w[i] = (struct worker){vmmem_map_ref(m), 0xff0 + 8 * i, 0};
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, ref_worker, &w[i]) == 0);
    }
    vmmem_map_unref(m); /* the workers keep it alive */
    for (size_t i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(w[i].failures, 0);
    }
}

static const struct vt_test build_tests[] = {
    {"n == 0 -> VMMEM_ENO_REGIONS", test_new_no_regions},
    {"NULL out/specs -> -EINVAL", test_new_null_args},
    {"zero size -> VMMEM_EZERO_SIZE", test_new_zero_size},
    {"overlaps -> VMMEM_EOVERLAP", test_new_overlap},
    {"start+size-1 wraps -> VMMEM_EOVERFLOW", test_new_overflow},
    {"unknown provider", test_new_unknown_provider},
    {"unknown key, nothing stays mapped", test_new_unknown_key},
    {"single region", test_new_single},
    {"touching regions are fine", test_new_touching},
    {"unsorted input is sorted", test_new_unsorted_is_sorted},
    {"region ending at UINT64_MAX", test_new_top_of_address_space},
    {"one byte region at UINT64_MAX", test_new_one_byte_at_top},
    {"specs are copied", test_specs_are_copied},
    {"adopt a host mapping", test_adopt},
    {"adopt errors", test_adopt_errors},
    {"map options", test_map_options},
    {"invalid map options -> -EINVAL", test_map_options_invalid},
    {NULL, NULL},
};

static const struct vt_test config_tests[] = {
    {"two adjacent regions", test_config_basic},
    {"K/M/G suffixes", test_config_suffixes},
    {"unsorted regions", test_config_unsorted},
    {"errors leave *out untouched", test_config_errors},
    {"region ending at UINT64_MAX", test_config_top_of_address_space},
    {NULL, NULL},
};

static const struct vt_test query_tests[] = {
    {"holey map layout", test_holey_layout},
    {"check_address", test_check_address},
    {"check_range (crate table)", test_check_range},
    {"checked_offset (crate table)", test_checked_offset},
    {"find (+offset)", test_find},
    {"find over 64 regions", test_find_many_regions},
    {"host_address with length clamping", test_host_address},
    {"host_address of holes", test_host_address_hole},
    {"region info", test_region_info},
    {"region info prot=r", test_region_info_read_only},
    {NULL, NULL},
};

static const struct vt_test ref_tests[] = {
    {"ref/unref", test_ref_unref},
    {"ref/unref NULL", test_ref_unref_null},
    {"many refs", test_many_refs},
    {"refs across threads", test_refs_across_threads},
    {NULL, NULL},
};

static const struct vt_suite build_suite = {"map building", NULL, NULL, build_tests};
static const struct vt_suite config_suite = {"map from config", NULL, NULL, config_tests};
static const struct vt_suite query_suite = {"map queries", NULL, NULL, query_tests};
static const struct vt_suite ref_suite = {"map refcount", NULL, NULL, ref_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&build_suite, &config_suite, &query_suite,
                                                    &ref_suite, NULL};
    return vt_main(suites);
}

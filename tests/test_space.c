/*
 * Memory hot-plug: address spaces with lock-free snapshots (space.h), the
 * vm-memory crate's GuestMemoryAtomic (inventory 1.9 and 3.10, issue 7).
 *
 * Unmapping is observed from outside the library: regions of the "mmap"
 * provider with the "shared" option appear in /proc/self/maps as their own
 * "/dev/zero (deleted)" lines (shared mappings never merge), and the stress
 * test registers a counting provider whose mappings are memfds named
 * "vt-space-stress", so their /proc/self/maps lines can be counted exactly.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---------------------------------------------------------- */

static const struct vmmem_option shared_opt[] = {{"shared", ""}};

static struct vmmem_region_spec mspec(uint64_t addr, uint64_t size)
{
    struct vmmem_region_spec s = {.provider = "mmap", .addr = addr, .size = size};
    return s;
}

/* An "mmap" region whose mapping is MAP_SHARED: one "/dev/zero" maps line. */
static struct vmmem_region_spec shspec(uint64_t addr, uint64_t size)
{
    struct vmmem_region_spec s = {.provider = "mmap", .addr = addr, .size = size,
                                  .options = shared_opt, .n_options = 1};
    return s;
}

static vmmem_space *new_space(vmmem_map *initial, const struct vmmem_map_options *opts)
{
    vmmem_space *s = NULL;
    int rc = vmmem_space_new(&s, initial, opts);
    VT_ASSERT_RC(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(s);
    return rc == 0 ? s : NULL;
}

static void add_ok(vmmem_space *s, uint64_t addr, uint64_t size)
{
    struct vmmem_region_spec sp = mspec(addr, size);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), 0);
}

struct layout {
    uint64_t start, size;
};

/* m has exactly the regions of lay (address order) with the given hosts
 * (hosts may be NULL: not checked). */
static void check_layout(const vmmem_map *m, const struct layout *lay, size_t n, void *const *hosts)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), n);
    if (vmmem_map_num_regions(m) != n) {
        fprintf(stdout, "\n    layout: %zu regions, want %zu\n", vmmem_map_num_regions(m), n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const vmmem_region *r = vmmem_map_region(m, i);
        CU_ASSERT_PTR_NOT_NULL(r);
        if (r == NULL)
            continue;
        struct vmmem_region_info info;
        vmmem_region_get_info(r, &info);
        CU_ASSERT_EQUAL(info.start, lay[i].start);
        CU_ASSERT_EQUAL(info.size, lay[i].size);
        CU_ASSERT_EQUAL(info.last, lay[i].start + lay[i].size - 1);
        if (hosts != NULL)
            CU_ASSERT_PTR_EQUAL(info.host, hosts[i]);
        if (info.start != lay[i].start || info.size != lay[i].size)
            fprintf(stdout, "\n    region %zu: [0x%" PRIx64 ", +0x%" PRIx64 "), want [0x%" PRIx64
                            ", +0x%" PRIx64 ")\n",
                    i, info.start, info.size, lay[i].start, lay[i].size);
    }
    CU_ASSERT_PTR_NULL(vmmem_map_region(m, n));
}

/* Host addresses of every region of m, in address order (at most max). */
static void hosts_of(const vmmem_map *m, void **hosts, size_t max)
{
    for (size_t i = 0; i < max; i++) {
        struct vmmem_region_info info = {0};
        const vmmem_region *r = vmmem_map_region(m, i);
        if (r != NULL)
            vmmem_region_get_info(r, &info);
        hosts[i] = info.host;
    }
}

static void *host_of(const vmmem_map *m, vmmem_gaddr_t a)
{
    void *h = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(m, a, &h, NULL), 0);
    return h;
}

/* Lines of /proc/self/maps containing needle (all lines for NULL); -1 on error. */
static long maps_lines(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    char line[1024];
    long n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (needle == NULL || strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

/* True when /proc/self/maps has a line holding address p. */
static bool maps_has(const void *p)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return false;
    char line[1024];
    bool found = false;
    uintptr_t a = (uintptr_t)p;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= a && a < hi)
            found = true;
    }
    fclose(f);
    return found;
}

/* Both ends of [p, p+len) are mapped. */
static bool range_mapped(const void *p, size_t len)
{
    return maps_has(p) && maps_has((const uint8_t *)p + len - 1);
}

#define DEVZERO "/dev/zero"

/* ---- 1. basics -------------------------------------------------------- */

static void test_empty_space(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    vmmem_map *m = vmmem_space_snapshot(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 0);
    CU_ASSERT_PTR_NULL(vmmem_map_region(m, 0));
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 0);
    CU_ASSERT_FALSE(vmmem_map_check_address(m, 0));
    CU_ASSERT_PTR_NULL(vmmem_map_find(m, 0, NULL));
    CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
    uint8_t buf[8] = {0};
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_read(m, 0, buf, sizeof buf), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_write(m, 0x1000, buf, sizeof buf), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_read_obj(m, 0, buf, sizeof buf), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_write_slice(m, 0, buf, sizeof buf), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_load(m, 0, 8, &v, VMMEM_RELAXED), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_store(m, 0, 8, 1, VMMEM_RELAXED), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_read(m, UINT64_MAX, buf, 1), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_read(m, 0, buf, 0), 0); /* zero length, even unbacked */
    void *h = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0, &h, NULL), VMMEM_EINVALID_ADDRESS);
    /* Two snapshots of an unchanged space are the same map. */
    vmmem_map *m2 = vmmem_space_snapshot(s);
    CU_ASSERT_PTR_EQUAL(m2, m);
    vmmem_map_unref(m2);
    /* Nothing to remove, replace or re-base in an empty space. */
    VT_ASSERT_RC(vmmem_space_remove(s, 0, 0x1000), VMMEM_EINVALID_ADDRESS);
    struct vmmem_region_spec sp = mspec(0, 0x1000);
    VT_ASSERT_RC(vmmem_space_replace(s, 0, 0x1000, NULL, &sp), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0, 0x1000, 0x2000), VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m);
    vmmem_space_free(s);
}

static void test_bad_arguments(void)
{
    VT_ASSERT_RC(vmmem_space_new(NULL, NULL, NULL), -EINVAL);
    vmmem_space *s = (vmmem_space *)(void *)&s;
    struct vmmem_map_options small = {.struct_size = 4};
    VT_ASSERT_RC(vmmem_space_new(&s, NULL, &small), -EINVAL);
    struct vmmem_map_options odd = {.struct_size = sizeof odd, .dirty_page_size = 3000};
    VT_ASSERT_RC(vmmem_space_new(&s, NULL, &odd), -EINVAL);
    CU_ASSERT_PTR_EQUAL(s, (vmmem_space *)(void *)&s); /* untouched on failure */

    s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    CU_ASSERT_PTR_NULL(vmmem_space_snapshot(NULL));
    struct vmmem_region_spec sp = mspec(0, 0x1000);
    VT_ASSERT_RC(vmmem_space_add(NULL, NULL, &sp), -EINVAL);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_space_remove(NULL, 0, 0x1000), -EINVAL);
    VT_ASSERT_RC(vmmem_space_replace(s, 0, 0x1000, NULL, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_space_rebase(NULL, 0, 0x1000, 0), -EINVAL);
    VT_ASSERT_RC(vmmem_space_publish(s, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_space_publish(NULL, NULL), -EINVAL);
    /* Spec errors are the map builder's. */
    struct vmmem_region_spec zero = mspec(0, 0);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &zero), VMMEM_EZERO_SIZE);
    struct vmmem_region_spec wrap = mspec(UINT64_MAX - 0xfff, 0x2000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &wrap), VMMEM_EOVERFLOW);
    static const struct vmmem_option bogus[] = {{"no-such-key", "1"}};
    struct vmmem_region_spec badkey = mspec(0, 0x1000);
    badkey.options = bogus;
    badkey.n_options = 1;
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &badkey), VMMEM_EUNKNOWN_KEY);
    vmmem_map *m = vmmem_space_snapshot(s);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 0);
    vmmem_map_unref(m);
    vmmem_space_free(s);
    vmmem_space_free(NULL); /* no-op */
}

static void test_add_remove(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    add_ok(s, 0x10000, 0x2000);
    add_ok(s, 0x1000, 0x1000);
    add_ok(s, 0x2000, 0x1000); /* touches the previous one */
    vmmem_map *m1 = vmmem_space_snapshot(s);
    const struct layout l1[] = {{0x1000, 0x1000}, {0x2000, 0x1000}, {0x10000, 0x2000}};
    check_layout(m1, l1, ARRAY_LEN(l1), NULL);
    void *h1[3];
    hosts_of(m1, h1, 3);
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m1), 0x11fff);
    CU_ASSERT_TRUE(vmmem_map_check_range(m1, 0x1000, 0x2000));
    CU_ASSERT_FALSE(vmmem_map_check_range(m1, 0x1000, 0x2001));

    /* Data written through the first snapshot. */
    static const char msg[] = "hot-plugged";
    VT_ASSERT_RC(vmmem_write_slice(m1, 0x1ffa, msg, sizeof msg), 0); /* across the seam */
    VT_ASSERT_RC(vmmem_write_slice(m1, 0x11ff0, msg, sizeof msg), 0);

    /* Overlapping adds: every kind of overlap is refused, nothing changes. */
    const struct layout overlaps[] = {
        {0x1000, 0x1000},  /* duplicate */
        {0x0, 0x1001},     /* tail overlaps the first */
        {0x2fff, 0x10},    /* head overlaps the second */
        {0x11fff, 0x1000}, /* last byte of the third */
        {0x0, 0x100000},   /* covers everything */
        {0x10800, 0x100},  /* inside the third */
    };
    for (size_t i = 0; i < ARRAY_LEN(overlaps); i++) {
        struct vmmem_region_spec sp = mspec(overlaps[i].start, overlaps[i].size);
        int rc = vmmem_space_add(s, NULL, &sp);
        if (rc != VMMEM_EOVERLAP)
            fprintf(stdout, "\n    overlap case %zu\n", i);
        VT_ASSERT_RC(rc, VMMEM_EOVERLAP);
        CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EOVERLAP);
    }
    /* Unknown provider. */
    struct vmmem_region_spec np = {.provider = "no-such-provider", .addr = 0x40000, .size = 0x1000};
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &np), VMMEM_ENO_PROVIDER);
    /* A spec the provider itself refuses (bad option value): nothing published. */
    static const struct vmmem_option badprot[] = {{"prot", "x"}};
    struct vmmem_region_spec bp = mspec(0x40000, 0x1000);
    bp.options = badprot;
    bp.n_options = 1;
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &bp), VMMEM_EBAD_VALUE);

    vmmem_map *m2 = vmmem_space_snapshot(s);
    check_layout(m2, l1, ARRAY_LEN(l1), h1);
    char buf[sizeof msg] = {0};
    VT_ASSERT_RC(vmmem_read_slice(m2, 0x1ffa, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, msg);
    memset(buf, 0, sizeof buf);
    VT_ASSERT_RC(vmmem_read_slice(m1, 0x11ff0, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, msg);
    vmmem_map_unref(m2);

    /* Removes that do not match a region exactly. */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x1000, 0x2000), VMMEM_EINVALID_ADDRESS); /* two regions */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x1000, 0x800), VMMEM_EINVALID_ADDRESS);  /* too short */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x10000, 0x2001), VMMEM_EINVALID_ADDRESS); /* too long */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x10800, 0x1800), VMMEM_EINVALID_ADDRESS); /* inside */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x50000, 0x1000), VMMEM_EINVALID_ADDRESS); /* hole */
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x50000);
    VT_ASSERT_RC(vmmem_space_remove(s, 0x1000, 0), VMMEM_EINVALID_ADDRESS);
    m2 = vmmem_space_snapshot(s);
    check_layout(m2, l1, ARRAY_LEN(l1), h1);
    vmmem_map_unref(m2);

    /* Exact remove of the middle one. */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x2000, 0x1000), 0);
    m2 = vmmem_space_snapshot(s);
    const struct layout l2[] = {{0x1000, 0x1000}, {0x10000, 0x2000}};
    void *h2[] = {h1[0], h1[2]};
    check_layout(m2, l2, ARRAY_LEN(l2), h2);
    VT_ASSERT_RC(vmmem_read(m2, 0x2000, buf, 1), VMMEM_EINVALID_ADDRESS);
    /* vmmem_read stops short at the new hole. */
    CU_ASSERT_EQUAL(vmmem_read(m2, 0x1ffa, buf, sizeof buf), 6);
    VT_ASSERT_RC(vmmem_read_slice(m2, 0x1ffa, buf, sizeof buf), VMMEM_EPARTIAL);
    /* The old snapshot still has all three, data intact. */
    check_layout(m1, l1, ARRAY_LEN(l1), h1);
    memset(buf, 0, sizeof buf);
    VT_ASSERT_RC(vmmem_read_slice(m1, 0x1ffa, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, msg);
    /* The freed range can be reused. */
    add_ok(s, 0x2000, 0x800);
    vmmem_map *m3 = vmmem_space_snapshot(s);
    const struct layout l3[] = {{0x1000, 0x1000}, {0x2000, 0x800}, {0x10000, 0x2000}};
    check_layout(m3, l3, ARRAY_LEN(l3), NULL);
    memset(buf, 0x55, sizeof buf);
    VT_ASSERT_RC(vmmem_read_slice(m3, 0x2000, buf, 6), 0); /* fresh memory: zero */
    CU_ASSERT_EQUAL(buf[0], 0);
    CU_ASSERT_EQUAL(buf[5], 0);
    /* Remove everything. */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x1000, 0x1000), 0);
    VT_ASSERT_RC(vmmem_space_remove(s, 0x2000, 0x800), 0);
    VT_ASSERT_RC(vmmem_space_remove(s, 0x10000, 0x2000), 0);
    VT_ASSERT_RC(vmmem_space_remove(s, 0x10000, 0x2000), VMMEM_EINVALID_ADDRESS);
    vmmem_map *m4 = vmmem_space_snapshot(s);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m4), 0);
    VT_ASSERT_RC(vmmem_read(m4, 0x1000, buf, 1), VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m4);
    vmmem_map_unref(m3);
    vmmem_map_unref(m2);
    vmmem_map_unref(m1);
    vmmem_space_free(s);
}

/* A region at the very top of guest space, and one at 0. */
static void test_edges(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    add_ok(s, UINT64_MAX - 0xfff, 0x1000);
    add_ok(s, 0, 0x1000);
    vmmem_map *m = vmmem_space_snapshot(s);
    const struct layout l[] = {{0, 0x1000}, {UINT64_MAX - 0xfff, 0x1000}};
    check_layout(m, l, ARRAY_LEN(l), NULL);
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), UINT64_MAX);
    uint8_t b = 0x5a;
    CU_ASSERT_EQUAL(vmmem_write(m, UINT64_MAX, &b, 1), 1);
    struct vmmem_region_spec sp = mspec(UINT64_MAX, 1);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), VMMEM_EOVERLAP);
    /* Re-basing the top region one page up would pass 2^64. */
    VT_ASSERT_RC(vmmem_space_rebase(s, 0, 0x1000, UINT64_MAX - 0xffe), VMMEM_EOVERFLOW);
    VT_ASSERT_RC(vmmem_space_remove(s, UINT64_MAX - 0xfff, 0x1000), 0);
    vmmem_map *m2 = vmmem_space_snapshot(s);
    const struct layout l2[] = {{0, 0x1000}};
    check_layout(m2, l2, ARRAY_LEN(l2), NULL);
    b = 0;
    CU_ASSERT_EQUAL(vmmem_read(m, UINT64_MAX, &b, 1), 1);
    CU_ASSERT_EQUAL(b, 0x5a);
    VT_ASSERT_RC(vmmem_read(m2, UINT64_MAX, &b, 1), VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m2);
    vmmem_map_unref(m);
    vmmem_space_free(s);
}

static void test_replace(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    add_ok(s, 0x0, 0x1000);
    add_ok(s, 0x4000, 0x2000);
    add_ok(s, 0x8000, 0x1000);
    vmmem_map *m1 = vmmem_space_snapshot(s);
    void *h1[3];
    hosts_of(m1, h1, 3);
    uint32_t v = 0xfeedf00d, r = 0;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m1, 0x4ffc, &v), 0);

    /* Replace the middle one by a smaller region at another address. */
    struct vmmem_region_spec sp = mspec(0x3000, 0x1000);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x4000, 0x2000, NULL, &sp), 0);
    vmmem_map *m2 = vmmem_space_snapshot(s);
    const struct layout l2[] = {{0x0, 0x1000}, {0x3000, 0x1000}, {0x8000, 0x1000}};
    check_layout(m2, l2, ARRAY_LEN(l2), NULL);
    void *h2[3];
    hosts_of(m2, h2, 3);
    CU_ASSERT_PTR_EQUAL(h2[0], h1[0]);
    CU_ASSERT_PTR_EQUAL(h2[2], h1[2]);
    VT_ASSERT_RC(VMMEM_READ_OBJ(m2, 0x4ffc, &r), VMMEM_EINVALID_ADDRESS);
    /* The old snapshot keeps the old region and its data. */
    const struct layout l1[] = {{0x0, 0x1000}, {0x4000, 0x2000}, {0x8000, 0x1000}};
    check_layout(m1, l1, ARRAY_LEN(l1), h1);
    VT_ASSERT_RC(VMMEM_READ_OBJ(m1, 0x4ffc, &r), 0);
    CU_ASSERT_EQUAL(r, 0xfeedf00d);

    /* Replace by a region of the same range: a fresh, zeroed mapping. */
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m2, 0x3000, &v), 0);
    sp = mspec(0x3000, 0x1000);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x3000, 0x1000, NULL, &sp), 0);
    vmmem_map *m3 = vmmem_space_snapshot(s);
    check_layout(m3, l2, ARRAY_LEN(l2), NULL);
    r = 1;
    VT_ASSERT_RC(VMMEM_READ_OBJ(m3, 0x3000, &r), 0);
    CU_ASSERT_EQUAL(r, 0);
    r = 0;
    VT_ASSERT_RC(VMMEM_READ_OBJ(m2, 0x3000, &r), 0);
    CU_ASSERT_EQUAL(r, 0xfeedf00d);
    /* Replace by a region that covers the old one and more. */
    sp = mspec(0x2000, 0x3000);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x3000, 0x1000, NULL, &sp), 0);
    vmmem_map_unref(m3);
    m3 = vmmem_space_snapshot(s);
    const struct layout l3[] = {{0x0, 0x1000}, {0x2000, 0x3000}, {0x8000, 0x1000}};
    check_layout(m3, l3, ARRAY_LEN(l3), NULL);

    /* Failing replaces change nothing. */
    void *h3[3];
    hosts_of(m3, h3, 3);
    sp = mspec(0x2000, 0x1000);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x2000, 0x1000, NULL, &sp), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x9000, 0x1000, NULL, &sp), VMMEM_EINVALID_ADDRESS);
    sp = mspec(0x2000, 0x7000); /* reaches the region at 0x8000 */
    VT_ASSERT_RC(vmmem_space_replace(s, 0x2000, 0x3000, NULL, &sp), VMMEM_EOVERLAP);
    sp = mspec(0x0, 0x1000); /* the first region */
    VT_ASSERT_RC(vmmem_space_replace(s, 0x2000, 0x3000, NULL, &sp), VMMEM_EOVERLAP);
    struct vmmem_region_spec np = {.provider = "no-such-provider", .addr = 0x2000, .size = 0x1000};
    VT_ASSERT_RC(vmmem_space_replace(s, 0x2000, 0x3000, NULL, &np), VMMEM_ENO_PROVIDER);
    struct vmmem_region_spec zero = mspec(0x2000, 0);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x2000, 0x3000, NULL, &zero), VMMEM_EZERO_SIZE);
    vmmem_map *m4 = vmmem_space_snapshot(s);
    check_layout(m4, l3, ARRAY_LEN(l3), h3);
    vmmem_map_unref(m4);

    vmmem_map_unref(m3);
    vmmem_map_unref(m2);
    vmmem_map_unref(m1);
    vmmem_space_free(s);
}

static void test_rebase(void)
{
    long z0 = maps_lines(DEVZERO);
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    struct vmmem_region_spec sp = shspec(0x1000, 0x2000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), 0);
    add_ok(s, 0x10000, 0x1000);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 1);
    vmmem_map *m1 = vmmem_space_snapshot(s);
    void *host = host_of(m1, 0x1000);

    VT_ASSERT_RC(vmmem_space_rebase(s, 0x1000, 0x2000, 0x100000), 0);
    vmmem_map *m2 = vmmem_space_snapshot(s);
    const struct layout l2[] = {{0x10000, 0x1000}, {0x100000, 0x2000}};
    check_layout(m2, l2, ARRAY_LEN(l2), NULL);
    /* Same host memory at the new base: no copy, no remap. */
    CU_ASSERT_PTR_EQUAL(host_of(m2, 0x100000), host);
    CU_ASSERT_PTR_EQUAL(host_of(m2, 0x101fff), (uint8_t *)host + 0x1fff);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 1);
    static const char msg[] = "moved, not copied";
    VT_ASSERT_RC(vmmem_write_slice(m1, 0x1800, msg, sizeof msg), 0);
    char buf[sizeof msg] = {0};
    VT_ASSERT_RC(vmmem_read_slice(m2, 0x100800, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, msg);
    uint64_t v = 0x1122334455667788ull, r = 0;
    VT_ASSERT_RC(vmmem_store(m2, 0x101ff8, 8, v, VMMEM_SEQ_CST), 0);
    VT_ASSERT_RC(vmmem_load(m1, 0x2ff8, 8, &r, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(r, v);
    VT_ASSERT_RC(vmmem_read(m2, 0x1000, buf, 1), VMMEM_EINVALID_ADDRESS);
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_find(m2, 0x100000, NULL), &info);
    CU_ASSERT_EQUAL(info.start, 0x100000);
    CU_ASSERT_EQUAL(info.size, 0x2000);
    CU_ASSERT_PTR_EQUAL(info.host, host);
    CU_ASSERT_STRING_EQUAL(info.provider, "mmap");

    /* Failing re-bases change nothing. */
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x100000, 0x2000, 0xf000), VMMEM_EOVERLAP);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x100000, 0x2000, 0x10fff), VMMEM_EOVERLAP);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x10000, 0x1000, 0x101000), VMMEM_EOVERLAP);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x1000, 0x2000, 0x200000), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x100000, 0x1000, 0x200000), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x100000, 0x2000, UINT64_MAX - 0x1000), VMMEM_EOVERFLOW);
    vmmem_map *m3 = vmmem_space_snapshot(s);
    check_layout(m3, l2, ARRAY_LEN(l2), NULL);
    CU_ASSERT_PTR_EQUAL(host_of(m3, 0x100000), host);
    vmmem_map_unref(m3);

    /* Re-base a re-based region; overlapping its own old range is fine. */
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x100000, 0x2000, 0x101000), 0);
    m3 = vmmem_space_snapshot(s);
    const struct layout l3[] = {{0x10000, 0x1000}, {0x101000, 0x2000}};
    check_layout(m3, l3, ARRAY_LEN(l3), NULL);
    CU_ASSERT_PTR_EQUAL(host_of(m3, 0x101000), host);
    memset(buf, 0, sizeof buf);
    VT_ASSERT_RC(vmmem_read_slice(m3, 0x101800, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, msg);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 1);

    /* Remove the re-based region: unmapped once, when the last holder goes. */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x101000, 0x2000), 0);
    vmmem_map *m4 = vmmem_space_snapshot(s);
    const struct layout l4[] = {{0x10000, 0x1000}};
    check_layout(m4, l4, ARRAY_LEN(l4), NULL);
    vmmem_map_unref(m4);
    vmmem_map_unref(m2);
    vmmem_map_unref(m3);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 1); /* m1 still holds the original */
    CU_ASSERT_TRUE(range_mapped(host, 0x2000));
    memset(buf, 0, sizeof buf);
    VT_ASSERT_RC(vmmem_read_slice(m1, 0x1800, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, msg);
    vmmem_map_unref(m1);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0);
    CU_ASSERT_FALSE(maps_has(host));
    vmmem_space_free(s);
}

static void test_publish(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    add_ok(s, 0x100000, 0x1000);
    vmmem_map *old = vmmem_space_snapshot(s);
    vmmem_map *m = vt_map("mmap:addr=0,size=0x1000;mmap:addr=0x2000,size=0x1000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    VT_ASSERT_RC(vmmem_space_publish(s, m), 0);
    vmmem_map *cur = vmmem_space_snapshot(s);
    CU_ASSERT_PTR_EQUAL(cur, m); /* "published as a whole" */
    vmmem_map_unref(cur);
    vmmem_map_unref(m); /* the space holds its own reference */
    cur = vmmem_space_snapshot(s);
    const struct layout l[] = {{0, 0x1000}, {0x2000, 0x1000}};
    check_layout(cur, l, ARRAY_LEN(l), NULL);
    uint16_t v = 0xbeef, r = 0;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(cur, 0x2ffe, &v), 0);
    VT_ASSERT_RC(VMMEM_READ_OBJ(cur, 0x2ffe, &r), 0);
    CU_ASSERT_EQUAL(r, 0xbeef);
    VT_ASSERT_RC(VMMEM_READ_OBJ(cur, 0x100000, &r), VMMEM_EINVALID_ADDRESS);
    const struct layout lo[] = {{0x100000, 0x1000}};
    check_layout(old, lo, ARRAY_LEN(lo), NULL);
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(old, 0x100000, &v), 0);
    /* The published map's regions can be edited like any other. */
    add_ok(s, 0x1000, 0x1000);
    VT_ASSERT_RC(vmmem_space_remove(s, 0x2000, 0x1000), 0);
    vmmem_map *m2 = vmmem_space_snapshot(s);
    const struct layout l2[] = {{0, 0x1000}, {0x1000, 0x1000}};
    check_layout(m2, l2, ARRAY_LEN(l2), NULL);
    /* Publishing an empty-space snapshot empties the space. */
    vmmem_space *e = new_space(NULL, NULL);
    if (e != NULL) {
        vmmem_map *em = vmmem_space_snapshot(e);
        VT_ASSERT_RC(vmmem_space_publish(s, em), 0);
        vmmem_map_unref(em);
        vmmem_space_free(e);
        vmmem_map *m3 = vmmem_space_snapshot(s);
        CU_ASSERT_EQUAL(vmmem_map_num_regions(m3), 0);
        add_ok(s, 0x5000, 0x1000);
        vmmem_map_unref(m3);
        m3 = vmmem_space_snapshot(s);
        const struct layout l3[] = {{0x5000, 0x1000}};
        check_layout(m3, l3, ARRAY_LEN(l3), NULL);
        vmmem_map_unref(m3);
    }
    vmmem_map_unref(m2);
    vmmem_map_unref(cur);
    vmmem_map_unref(old);
    vmmem_space_free(s);
}

/* A space created on an initial map takes a reference to it. */
static void test_initial_map(void)
{
    vmmem_map *m = vt_map("mmap:addr=0x1000,size=0x1000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_space *s = new_space(m, NULL);
    if (s == NULL) {
        vmmem_map_unref(m);
        return;
    }
    vmmem_map *snap = vmmem_space_snapshot(s);
    CU_ASSERT_PTR_EQUAL(snap, m);
    vmmem_map_unref(snap);
    vmmem_map_unref(m);
    snap = vmmem_space_snapshot(s);
    const struct layout l[] = {{0x1000, 0x1000}};
    check_layout(snap, l, ARRAY_LEN(l), NULL);
    uint8_t b = 7;
    CU_ASSERT_EQUAL(vmmem_write(snap, 0x1fff, &b, 1), 1);
    vmmem_space_free(s);
    /* The snapshot outlives the space. */
    b = 0;
    CU_ASSERT_EQUAL(vmmem_read(snap, 0x1fff, &b, 1), 1);
    CU_ASSERT_EQUAL(b, 7);
    vmmem_map_unref(snap);
}

/*
 * The crate's hot-plug case (atomic.rs): a map of 2 regions, under the lock
 * insert 3 regions (a duplicate is rejected), publish; the old snapshot
 * still has 2 regions, a new one has 5.
 */
static void test_crate_hotplug(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=0x1000;mmap:addr=0x100000,size=0x1000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_space *s = new_space(m, NULL);
    vmmem_map_unref(m);
    if (s == NULL)
        return;
    vmmem_map *orig = vmmem_space_snapshot(s);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(orig), 2);
    /* A clone of the snapshot outlives the original guard. */
    vmmem_map *clone = vmmem_map_ref(orig);
    vmmem_map_unref(orig);
    orig = clone;

    add_ok(s, 0x8000, 0x1000);
    add_ok(s, 0x4000, 0x1000);
    add_ok(s, 0xc000, 0x1000);
    struct vmmem_region_spec dup = mspec(0x8000, 0x1000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &dup), VMMEM_EOVERLAP);

    const struct layout l0[] = {{0, 0x1000}, {0x100000, 0x1000}};
    check_layout(orig, l0, ARRAY_LEN(l0), NULL);
    vmmem_map *cur = vmmem_space_snapshot(s);
    const struct layout l5[] = {
        {0, 0x1000}, {0x4000, 0x1000}, {0x8000, 0x1000}, {0xc000, 0x1000}, {0x100000, 0x1000}};
    check_layout(cur, l5, ARRAY_LEN(l5), NULL);
    /* find_region hit and miss on both. */
    uint64_t off = 0;
    const vmmem_region *r = vmmem_map_find(cur, 0xc123, &off);
    CU_ASSERT_PTR_NOT_NULL(r);
    CU_ASSERT_EQUAL(vmmem_region_start(r), 0xc000);
    CU_ASSERT_EQUAL(off, 0x123);
    CU_ASSERT_PTR_NULL(vmmem_map_find(orig, 0xc123, NULL));
    CU_ASSERT_PTR_NULL(vmmem_map_find(cur, 0x1000, NULL));

    /* The same as one publication of a whole map. */
    vmmem_map *whole = vt_map("mmap:addr=0,size=0x1000;mmap:addr=0x100000,size=0x1000;"
                              "mmap:addr=0x8000,size=0x1000;mmap:addr=0x4000,size=0x1000;"
                              "mmap:addr=0xc000,size=0x1000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(whole);
    VT_ASSERT_RC(vmmem_space_publish(s, whole), 0);
    vmmem_map_unref(whole);
    vmmem_map *cur2 = vmmem_space_snapshot(s);
    check_layout(cur2, l5, ARRAY_LEN(l5), NULL);
    check_layout(orig, l0, ARRAY_LEN(l0), NULL);
    check_layout(cur, l5, ARRAY_LEN(l5), NULL);
    vmmem_map_unref(cur2);
    vmmem_map_unref(cur);
    vmmem_map_unref(orig);
    vmmem_space_free(s);
}

/* ---- 2. snapshot isolation and unmapping ------------------------------ */

static void test_snapshot_isolation(void)
{
    long z0 = maps_lines(DEVZERO);
    CU_ASSERT_TRUE_FATAL(z0 >= 0);
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    struct vmmem_region_spec a = shspec(0x0, 0x4000), b = shspec(0x10000, 0x2000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &a), 0);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &b), 0);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 2);
    vmmem_map *s1 = vmmem_space_snapshot(s);
    vmmem_map *s2 = vmmem_space_snapshot(s); /* a second holder of the same map */
    void *ha = host_of(s1, 0x0), *hb = host_of(s1, 0x10000);
    CU_ASSERT_TRUE(range_mapped(ha, 0x4000));
    CU_ASSERT_TRUE(range_mapped(hb, 0x2000));
    uint64_t v = 0xa5a5a5a5deadbeefull, r = 0;
    VT_ASSERT_RC(vmmem_write_obj(s1, 0x3ff8, &v, 8), 0);

    /* Remove region a from the space: s1 and s2 keep it mapped. */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x0, 0x4000), 0);
    vmmem_map *s3 = vmmem_space_snapshot(s);
    const struct layout l3[] = {{0x10000, 0x2000}};
    check_layout(s3, l3, ARRAY_LEN(l3), NULL);
    VT_ASSERT_RC(vmmem_read_obj(s3, 0x3ff8, &r, 8), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 2);
    CU_ASSERT_TRUE(range_mapped(ha, 0x4000));
    /* The old snapshot still reads and writes the removed region. */
    VT_ASSERT_RC(vmmem_read_obj(s1, 0x3ff8, &r, 8), 0);
    CU_ASSERT_EQUAL(r, v);
    VT_ASSERT_RC(vmmem_store(s1, 0x10, 4, 0x01020304, VMMEM_RELEASE), 0);
    CU_ASSERT_EQUAL(vmmem_write(s2, 0x3ffc, "wxyz", 8), 4); /* stops at the hole */
    r = 0;
    VT_ASSERT_RC(vmmem_load(s2, 0x10, 4, &r, VMMEM_ACQUIRE), 0);
    CU_ASSERT_EQUAL(r, 0x01020304);
    CU_ASSERT_EQUAL(memcmp((uint8_t *)ha + 0x3ffc, "wxyz", 4), 0);

    /* Dropping one holder unmaps nothing. */
    vmmem_map_unref(s1);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 2);
    CU_ASSERT_TRUE(range_mapped(ha, 0x4000));
    char buf[4] = {0};
    VT_ASSERT_RC(vmmem_read_slice(s2, 0x3ffc, buf, 4), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "wxyz", 4), 0);
    /* Nor does dropping the space's newer map. */
    vmmem_map_unref(s3);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 2);
    /* The last holder goes: region a is unmapped, b is not. */
    vmmem_map_unref(s2);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 1);
    CU_ASSERT_FALSE(maps_has(ha));
    CU_ASSERT_FALSE(maps_has((uint8_t *)ha + 0x3fff));
    CU_ASSERT_TRUE(range_mapped(hb, 0x2000));

    /* Freeing the space while a snapshot lives: b stays until it is dropped. */
    vmmem_map *s4 = vmmem_space_snapshot(s);
    vmmem_space_free(s);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 1);
    VT_ASSERT_RC(vmmem_write_obj(s4, 0x11ff8, &v, 8), 0);
    r = 0;
    VT_ASSERT_RC(vmmem_read_obj(s4, 0x11ff8, &r, 8), 0);
    CU_ASSERT_EQUAL(r, v);
    vmmem_map_unref(s4);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0);
    CU_ASSERT_FALSE(maps_has(hb));
}

/* A replaced region is unmapped only when the last snapshot holding it goes;
 * an unchanged region survives any number of publications. */
static void test_replace_unmaps_late(void)
{
    long z0 = maps_lines(DEVZERO);
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    struct vmmem_region_spec a = shspec(0x0, 0x1000), keep = shspec(0x8000, 0x1000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &a), 0);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &keep), 0);
    vmmem_map *snaps[5];
    void *hosts[5];
    snaps[0] = vmmem_space_snapshot(s);
    hosts[0] = host_of(snaps[0], 0);
    void *hkeep = host_of(snaps[0], 0x8000);
    for (int i = 1; i < 5; i++) {
        struct vmmem_region_spec n = shspec(0x0, 0x1000);
        VT_ASSERT_RC(vmmem_space_replace(s, 0x0, 0x1000, NULL, &n), 0);
        snaps[i] = vmmem_space_snapshot(s);
        hosts[i] = host_of(snaps[i], 0);
        CU_ASSERT_PTR_NOT_EQUAL(hosts[i], hosts[i - 1]);
        CU_ASSERT_PTR_EQUAL(host_of(snaps[i], 0x8000), hkeep);
        uint8_t tag = (uint8_t)(0x10 + i);
        CU_ASSERT_EQUAL(vmmem_write(snaps[i], 0x7ff, &tag, 1), 1);
    }
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 6);
    /* Drop in a scrambled order: each drop unmaps exactly its own region,
     * except the newest, which the space still publishes. */
    static const int order[] = {2, 0, 4, 3, 1};
    long expect = z0 + 6;
    for (size_t k = 0; k < ARRAY_LEN(order); k++) {
        int i = order[k];
        vmmem_map_unref(snaps[i]);
        if (i != 4)
            expect--;
        CU_ASSERT_EQUAL(maps_lines(DEVZERO), expect);
        if (i != 4)
            CU_ASSERT_FALSE(maps_has(hosts[i]));
    }
    CU_ASSERT_TRUE(maps_has(hosts[4]));
    CU_ASSERT_TRUE(maps_has(hkeep));
    vmmem_map *last = vmmem_space_snapshot(s);
    uint8_t tag = 0;
    CU_ASSERT_EQUAL(vmmem_read(last, 0x7ff, &tag, 1), 1);
    CU_ASSERT_EQUAL(tag, 0x14);
    vmmem_map_unref(last);
    vmmem_space_free(s);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0);
    CU_ASSERT_FALSE(maps_has(hosts[4]));
    CU_ASSERT_FALSE(maps_has(hkeep));
}

/* A failing change maps nothing that stays mapped. */
static void test_failure_maps_nothing(void)
{
    long z0 = maps_lines(DEVZERO);
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    struct vmmem_region_spec a = shspec(0x0, 0x1000), b = shspec(0x800, 0x1000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &a), 0);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &b), VMMEM_EOVERLAP);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 1);
    struct vmmem_region_spec c = shspec(0x2000, 0x1000);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x0, 0x2000, NULL, &c), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0 + 1);
    vmmem_space_free(s);
    CU_ASSERT_EQUAL(maps_lines(DEVZERO), z0);
}

/* ---- 2b. read sections ------------------------------------------------- */

static void test_section_basics(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    add_ok(s, 0x1000, 0x2000);
    struct vmmem_read_section sec;
    const vmmem_map *m = vmmem_space_read_begin(s, &sec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_EQUAL(sec.space, s);
    static const struct layout lay[] = {{0x1000, 0x2000}};
    check_layout(m, lay, 1, NULL);
    uint64_t v = 0x0123456789abcdefull, back = 0;
    VT_ASSERT_RC(vmmem_write_obj(m, 0x2ff8, &v, 8), 0); /* the last 8 bytes */
    VT_ASSERT_RC(vmmem_read_obj(m, 0x2ff8, &back, 8), 0);
    CU_ASSERT_EQUAL(back, v);
    VT_ASSERT_RC(vmmem_read_obj(m, 0x2ffc, &back, 8), VMMEM_EPARTIAL); /* runs past the end */
    /* A snapshot inside a section is fine: it does not wait. */
    vmmem_map *snap = vmmem_space_snapshot(s);
    CU_ASSERT_PTR_EQUAL(snap, m);
    vmmem_map_unref(snap);
    vmmem_space_read_end(&sec);
    CU_ASSERT_PTR_NULL(sec.space);
    vmmem_space_read_end(&sec); /* a second end does nothing */
    /* Bad arguments. */
    CU_ASSERT_PTR_NULL(vmmem_space_read_begin(NULL, &sec));
    CU_ASSERT_EQUAL(vmmem_last_error()->code, -EINVAL);
    CU_ASSERT_PTR_NULL(vmmem_space_read_begin(s, NULL));
    CU_ASSERT_EQUAL(vmmem_last_error()->code, -EINVAL);
    vmmem_space_read_end(NULL);
    vmmem_space_free(s);
}

/* A writer call from inside a section of the same space is refused (it
 * would wait for itself); other spaces are not affected; nothing changes. */
static void test_section_writer_inside(void)
{
    vmmem_space *s = new_space(NULL, NULL), *t = new_space(NULL, NULL);
    if (s == NULL || t == NULL)
        return;
    add_ok(s, 0x0, 0x1000);
    struct vmmem_read_section sec;
    const vmmem_map *m = vmmem_space_read_begin(s, &sec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct vmmem_region_spec sp = mspec(0x10000, 0x1000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), -EDEADLK);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "read section"));
    VT_ASSERT_RC(vmmem_space_remove(s, 0x0, 0x1000), -EDEADLK);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x0, 0x1000, NULL, &sp), -EDEADLK);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x0, 0x1000, 0x20000), -EDEADLK);
    VT_ASSERT_RC(vmmem_space_publish(s, (vmmem_map *)m), -EDEADLK);
    int lfd = memfd_create("vt-section-log", MFD_CLOEXEC);
    CU_ASSERT(lfd >= 0 && ftruncate(lfd, 4096) == 0);
    VT_ASSERT_RC(vmmem_space_attach_log(s, lfd, 0, 64), -EDEADLK); /* takes the writers' lock */
    VT_ASSERT_RC(vmmem_space_detach_log(s), -EDEADLK);
    VT_ASSERT_RC(vmmem_space_add(t, NULL, &sp), 0); /* another space: fine */
    vmmem_map *cur = vmmem_space_snapshot(s);
    CU_ASSERT_PTR_EQUAL(cur, m); /* nothing was published */
    vmmem_map_unref(cur);
    vmmem_space_read_end(&sec);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), 0);
    VT_ASSERT_RC(vmmem_space_remove(s, 0x0, 0x1000), 0);
    static const struct layout lay[] = {{0x10000, 0x1000}};
    cur = vmmem_space_snapshot(s);
    check_layout(cur, lay, 1, NULL);
    vmmem_map_unref(cur);
    VT_ASSERT_RC(vmmem_space_attach_log(s, lfd, 0, 64), 0); /* outside: fine */
    VT_ASSERT_RC(vmmem_space_detach_log(s), 0);
    if (lfd >= 0)
        close(lfd);
    vmmem_space_free(t);
    vmmem_space_free(s);
}

static void test_section_nesting(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    struct vmmem_read_section sec[9];
    for (int i = 0; i < 8; i++)
        CU_ASSERT_PTR_NOT_NULL(vmmem_space_read_begin(s, &sec[i]));
    sec[8].space = s; /* garbage a failed begin must clear */
    CU_ASSERT_PTR_NULL(vmmem_space_read_begin(s, &sec[8]));
    CU_ASSERT_EQUAL(vmmem_last_error()->code, -EMLINK);
    CU_ASSERT_PTR_NULL(sec[8].space);
    vmmem_space_read_end(&sec[8]); /* nothing to undo */
    /* Ending out of order; the space stays refused until the last one ends. */
    vmmem_space_read_end(&sec[3]);
    for (int i = 0; i < 8; i++) {
        if (i == 3)
            continue;
        VT_ASSERT_RC(vmmem_space_remove(s, 0, 0x1000), -EDEADLK);
        vmmem_space_read_end(&sec[i]);
    }
    VT_ASSERT_RC(vmmem_space_remove(s, 0, 0x1000), VMMEM_EINVALID_ADDRESS); /* no longer refused */
    vmmem_space_free(s);
}

struct wrong_end {
    struct vmmem_read_section *sec;
    vmmem_space *s;
    int rc_inside, rc_after;
};

/* Ends another thread's section while inside one of its own: its own stays
 * listed (a writer call still refused), and the counters come out right. */
static void *wrong_end_main(void *arg)
{
    struct wrong_end *w = arg;
    struct vmmem_read_section mine;
    if (vmmem_space_read_begin(w->s, &mine) == NULL)
        return NULL;
    vmmem_space_read_end(w->sec);
    w->rc_inside = vmmem_space_remove(w->s, 0x0, 0x1000);
    vmmem_space_read_end(&mine);
    w->rc_after = vmmem_space_remove(w->s, 0x0, 0x1000);
    return NULL;
}

/* The thread that begins a section and lets another end it; it exits right
 * after, so its stale list entry goes with it. */
static void *wrong_begin_main(void *arg)
{
    struct wrong_end *w = arg;
    if (vmmem_space_read_begin(w->s, w->sec) == NULL)
        return NULL;
    pthread_t th;
    if (pthread_create(&th, NULL, wrong_end_main, w) == 0)
        pthread_join(th, NULL);
    return NULL;
}

static void test_section_wrong_thread_end(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    add_ok(s, 0x0, 0x1000);
    struct vmmem_read_section sec;
    struct wrong_end w = {&sec, s, 1, 1};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, wrong_begin_main, &w) == 0);
    pthread_join(th, NULL);
    VT_ASSERT_RC(w.rc_inside, -EDEADLK); /* its own section still counted as its own */
    VT_ASSERT_RC(w.rc_after, 0);         /* no section left: the publication went through */
    CU_ASSERT_PTR_NULL(sec.space);
    vmmem_map *m = vmmem_space_snapshot(s);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 0);
    vmmem_map_unref(m);
    vmmem_space_free(s);
}

struct sec_writer {
    vmmem_space *s;
    atomic_bool done;
    int rc;
};

static void *sec_writer_main(void *arg)
{
    struct sec_writer *w = arg;
    w->rc = vmmem_space_remove(w->s, 0x0, 0x4000);
    atomic_store(&w->done, true);
    return NULL;
}

/* A publication waits for the sections that may use the map it replaces;
 * meanwhile the section still reads the removed region. */
static void test_section_holds_writer(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    add_ok(s, 0x0, 0x4000);
    struct vmmem_read_section sec;
    const vmmem_map *m = vmmem_space_read_begin(s, &sec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint32_t v = 0xfeedf00d, back = 0;
    VT_ASSERT_RC(vmmem_write_obj(m, 0x3ffc, &v, 4), 0);
    struct sec_writer w = {.s = s, .rc = 1};
    atomic_init(&w.done, false);
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, sec_writer_main, &w) == 0);
    /* Give the writer every chance to (wrongly) finish. */
    for (int i = 0; i < 50 && !atomic_load(&w.done); i++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_FALSE(atomic_load(&w.done));
    VT_ASSERT_RC(vmmem_read_obj(m, 0x3ffc, &back, 4), 0);
    CU_ASSERT_EQUAL(back, v);
    vmmem_space_read_end(&sec);
    pthread_join(th, NULL);
    CU_ASSERT_TRUE(atomic_load(&w.done));
    VT_ASSERT_RC(w.rc, 0);
    vmmem_map *cur = vmmem_space_snapshot(s);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(cur), 0);
    vmmem_map_unref(cur);
    vmmem_space_free(s);
}

/* ---- 3. dirty tracking across publications --------------------------- */

/* A space harvest whose runs are dropped: the dirty page count.  Regions
 * that enter a tracked space start all-dirty (space.h), so the tests below
 * settle them before looking at single pages. */
static int64_t settle(vmmem_space *s)
{
    vmmem_map *m = vmmem_space_snapshot(s);
    vmmem_harvest *h = NULL;
    int64_t n = -1;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    if (h != NULL)
        n = vmmem_space_harvest(s, h, NULL);
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
    return n;
}

static void test_dirty_tracking(void)
{
    struct vmmem_map_options opts = {.struct_size = sizeof opts, .flags = VMMEM_MAP_DIRTY_TRACKING};
    vmmem_space *s = new_space(NULL, &opts);
    if (s == NULL)
        return;
    vmmem_map *m0 = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m0));
    CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m0), 4096);
    vmmem_map_unref(m0);

    add_ok(s, 0x10000, 0x4000);
    vmmem_map *m1 = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m1, 0x10000)); /* entered whole */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m1, 0x13fff));
    CU_ASSERT_EQUAL(settle(s), 4);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m1));
    CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m1), 4096);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m1, 0x11000));
    uint32_t v = 0x600df00d;
    CU_ASSERT_EQUAL(vmmem_write(m1, 0x11ffe, &v, 4), 4); /* pages 1 and 2 */
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m1, 0x10000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m1, 0x11000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m1, 0x12000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m1, 0x13000));
    /* Reads never mark. */
    CU_ASSERT_EQUAL(vmmem_read(m1, 0x13000, &v, 4), 4);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m1, 0x13000));

    /* The next publication still tracks; the region keeps its marks. */
    add_ok(s, 0x20000, 0x2000);
    CU_ASSERT_EQUAL(settle(s), 4); /* 0x11000 0x12000, and 0x20000 0x21000 entered */
    vmmem_map *m2 = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m2));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m2, 0x20000));
    VT_ASSERT_RC(vmmem_store(m2, 0x21008, 8, 1, VMMEM_RELAXED), 0);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m2, 0x20000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m2, 0x21000));
    CU_ASSERT_EQUAL(vmmem_write(m2, 0x11ffe, &v, 4), 4); /* pages 1 and 2 again */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m2, 0x11000));
    /* A write through the old snapshot marks the shared region's bitmap. */
    VT_ASSERT_RC(vmmem_write_obj(m1, 0x13004, &v, 4), 0);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m2, 0x13000));
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m2, &h), 0);
    if (h != NULL) {
        CU_ASSERT_EQUAL(vmmem_map_harvest(m2, h), 4); /* 0x11000 0x12000 0x13000 0x21000 */
        CU_ASSERT_EQUAL(vmmem_harvest_regions(h), 2);
        vmmem_harvest_iter it = {0};
        uint64_t gpa = 0, len = 0;
        CU_ASSERT_TRUE(vmmem_harvest_next_run(h, &it, &gpa, &len));
        CU_ASSERT_EQUAL(gpa, 0x11000);
        CU_ASSERT_EQUAL(len, 0x3000);
        CU_ASSERT_TRUE(vmmem_harvest_next_run(h, &it, &gpa, &len));
        CU_ASSERT_EQUAL(gpa, 0x21000);
        CU_ASSERT_EQUAL(len, 0x1000);
        CU_ASSERT_FALSE(vmmem_harvest_next_run(h, &it, &gpa, &len));
        vmmem_harvest_free(h);
    }
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m2, 0x11000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m1, 0x11000)); /* same region, same bitmap */

    /* Replace and re-base publish tracking maps too. */
    struct vmmem_region_spec sp = mspec(0x20000, 0x1000);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x20000, 0x2000, NULL, &sp), 0);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x10000, 0x4000, 0x40000), 0);
    CU_ASSERT_EQUAL(settle(s), 5); /* both entered whole; the removed one was clean */
    vmmem_map *m3 = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m3));
    const struct layout l3[] = {{0x20000, 0x1000}, {0x40000, 0x4000}};
    check_layout(m3, l3, ARRAY_LEN(l3), NULL);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m3, 0x20000));
    CU_ASSERT_EQUAL(vmmem_write(m3, 0x20010, &v, 4), 4);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m3, 0x20000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m3, 0x42000));
    CU_ASSERT_EQUAL(vmmem_write(m3, 0x42000, &v, 4), 4);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m3, 0x42000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m3, 0x41000));
    vmmem_map_unref(m3);
    vmmem_map_unref(m2);
    vmmem_map_unref(m1);
    vmmem_space_free(s);
}

static void test_dirty_options(void)
{
    /* A chosen page size applies to every map the space builds. */
    struct vmmem_map_options opts = {.struct_size = sizeof opts,
                                     .flags = VMMEM_MAP_DIRTY_TRACKING,
                                     .dirty_page_size = 0x2000};
    vmmem_space *s = new_space(NULL, &opts);
    if (s == NULL)
        return;
    add_ok(s, 0x0, 0x8000);
    CU_ASSERT_EQUAL(settle(s), 4);
    vmmem_map *m = vmmem_space_snapshot(s);
    CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 0x2000);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
    uint8_t b = 1;
    CU_ASSERT_EQUAL(vmmem_write(m, 0x3fff, &b, 1), 1);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x2000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x1fff));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x4000));
    vmmem_map_unref(m);

    /* A published map without tracking gets it from the space (a map of
     * another page size is refused: see test_dirty_page_size_mix). */
    struct vmmem_map_options same = {.struct_size = sizeof same, .dirty_page_size = 0x2000};
    vmmem_map *plain = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&plain, NULL, "mmap:addr=0x100000,size=0x2000", &same), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    CU_ASSERT_FALSE(vmmem_map_dirty_tracking(plain));
    VT_ASSERT_RC(vmmem_space_publish(s, plain), 0);
    m = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
    CU_ASSERT_EQUAL(vmmem_write(m, 0x101000, &b, 1), 1);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x101000));
    vmmem_map_unref(m);
    vmmem_map_unref(plain);
    vmmem_space_free(s);

    /* An initial map without tracking: the space switches it on. */
    plain = vt_map("mmap:addr=0,size=0x2000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    struct vmmem_map_options on = {.struct_size = sizeof on, .flags = VMMEM_MAP_DIRTY_TRACKING};
    s = new_space(plain, &on);
    vmmem_map_unref(plain);
    if (s == NULL)
        return;
    m = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
    CU_ASSERT_EQUAL(vmmem_write(m, 0x1000, &b, 1), 1);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x1000));
    vmmem_map_unref(m);
    add_ok(s, 0x4000, 0x1000);
    m = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x1000));
    vmmem_map_unref(m);
    vmmem_space_free(s);

    /* Without the flag, maps do not track and writes do not mark. */
    s = new_space(NULL, NULL);
    if (s == NULL)
        return;
    add_ok(s, 0x0, 0x2000);
    m = vmmem_space_snapshot(s);
    CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
    CU_ASSERT_EQUAL(vmmem_write(m, 0x1000, &b, 1), 1);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x1000));
    vmmem_map_unref(m);
    vmmem_space_free(s);
}

/* True when some dirty run of a fresh harvest of m covers addr. */
static bool harvest_covers(const vmmem_map *m, vmmem_gaddr_t addr)
{
    vmmem_harvest *h = NULL;
    int rc = vmmem_harvest_new(m, &h);
    VT_ASSERT_RC(rc, 0);
    if (rc != 0)
        return false;
    CU_ASSERT_TRUE(vmmem_map_harvest(m, h) > 0);
    bool found = false;
    vmmem_harvest_iter it = {0};
    uint64_t gpa, len;
    while (vmmem_harvest_next_run(h, &it, &gpa, &len)) {
        if (gpa <= addr && addr - gpa < len)
            found = true;
        else
            fprintf(stdout, "\n    run 0x%" PRIx64 " +0x%" PRIx64 "\n", gpa, len);
    }
    vmmem_harvest_free(h);
    return found;
}

/*
 * "opts (dirty page size, tracking) apply to every map the space builds":
 * a map that came from elsewhere (the initial map, or one published whole)
 * may use another page size.  A page dirtied in one of its regions must
 * still be harvested from the maps the space builds afterwards.
 */
static void test_dirty_page_size_mix(void)
{
    /* One region's pages must be counted one way in every map of a space:
     * a map of another page size is refused, as initial map or published,
     * and the published map stays as it was. */
    struct vmmem_map_options small = {.struct_size = sizeof small,
                                      .flags = VMMEM_MAP_DIRTY_TRACKING,
                                      .dirty_page_size = 0x1000};
    struct vmmem_map_options big = {.struct_size = sizeof big,
                                    .flags = VMMEM_MAP_DIRTY_TRACKING,
                                    .dirty_page_size = 0x10000};
    struct vmmem_region_spec sp = mspec(0x0, 0x20000);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, &sp, 1, &small), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_space *s = (vmmem_space *)0x1;
    VT_ASSERT_RC(vmmem_space_new(&s, m, &big), -EINVAL);
    CU_ASSERT_PTR_EQUAL(s, (vmmem_space *)0x1);
    s = new_space(NULL, &big);
    if (s != NULL) {
        add_ok(s, 0x100000, 0x20000);
        VT_ASSERT_RC(vmmem_space_publish(s, m), -EINVAL);
        vmmem_map *cur = vmmem_space_snapshot(s);
        CU_ASSERT_EQUAL(vmmem_map_num_regions(cur), 1);
        CU_ASSERT_EQUAL(vmmem_region_start(vmmem_map_region(cur, 0)), 0x100000);
        CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(cur), 0x10000);
        uint8_t b = 1;
        CU_ASSERT_EQUAL(vmmem_write(cur, 0x103000, &b, 1), 1);
        CU_ASSERT_TRUE(harvest_covers(cur, 0x103000));
        vmmem_map_unref(cur);
        vmmem_space_free(s);
    }
    vmmem_map_unref(m);
}

/* ---- 3b. the vhost-user log across publications ----------------------- */

#define LOG_BYTES 64u /* 512 pages: guest addresses [0, 2 MiB) */

static int log_fd(void)
{
    int fd = memfd_create("vt-space-log", MFD_CLOEXEC);
    CU_ASSERT(fd >= 0);
    if (fd >= 0)
        CU_ASSERT_EQUAL(ftruncate(fd, 4096), 0);
    return fd;
}

/* Exactly the pages of want[] (n page numbers) are set in the log; then
 * clear it, as the front-end does after reading it. */
static void log_expect(int fd, const unsigned *want, size_t n)
{
    uint8_t got[LOG_BYTES], exp[LOG_BYTES] = {0};
    static const uint8_t zero[LOG_BYTES];
    CU_ASSERT_EQUAL(pread(fd, got, LOG_BYTES, 0), (ssize_t)LOG_BYTES);
    CU_ASSERT_EQUAL(pwrite(fd, zero, LOG_BYTES, 0), (ssize_t)LOG_BYTES);
    for (size_t i = 0; i < n; i++)
        exp[want[i] / 8] |= (uint8_t)(1u << (want[i] % 8));
    for (unsigned b = 0; b < LOG_BYTES; b++)
        if (got[b] != exp[b]) {
            fprintf(stdout, "\n    log byte %u (pages 0x%x..0x%x): 0x%02x, want 0x%02x\n", b,
                    b * 8, b * 8 + 7, got[b], exp[b]);
            CU_FAIL("log bits differ");
        }
}

static void put_u32(vmmem_space *s, uint64_t a)
{
    vmmem_map *m = vmmem_space_snapshot(s);
    uint32_t v = 0xa5a5a5a5;
    VT_ASSERT_RC(vmmem_write_obj(m, a, &v, 4), 0);
    vmmem_map_unref(m);
}

static void test_log_carried(void)
{
    int fd = log_fd();
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL || fd < 0)
        return;
    add_ok(s, 0x10000, 0x4000);
    VT_ASSERT_RC(vmmem_space_attach_log(s, fd, 0, LOG_BYTES), 0);
    vmmem_map *m = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m)); /* attaching turned tracking on */
    vmmem_map_unref(m);
    put_u32(s, 0x11000);
    log_expect(fd, (const unsigned[]){0x11}, 1);

    /* A region added after the log was attached marks it too. */
    add_ok(s, 0x100000, 0x2000);
    put_u32(s, 0x101ffc); /* the region's last word */
    put_u32(s, 0x100000);
    put_u32(s, 0x13ffc); /* the old region's last word */
    log_expect(fd, (const unsigned[]){0x13, 0x100, 0x101}, 3);

    /* Replace, re-base and a whole published map keep it as well. */
    struct vmmem_region_spec sp = mspec(0x100000, 0x1000);
    VT_ASSERT_RC(vmmem_space_replace(s, 0x100000, 0x2000, NULL, &sp), 0);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x10000, 0x4000, 0x40000), 0);
    put_u32(s, 0x100ffc);
    put_u32(s, 0x40000);
    log_expect(fd, (const unsigned[]){0x40, 0x100}, 2);
    vmmem_map *whole = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&whole, NULL, "mmap:addr=0x1ff000,size=4K", NULL), 0);
    if (whole != NULL) {
        VT_ASSERT_RC(vmmem_space_publish(s, whole), 0);
        CU_ASSERT_TRUE(vmmem_map_dirty_tracking(whole));
        vmmem_map_unref(whole);
        put_u32(s, 0x1ff000);
        log_expect(fd, (const unsigned[]){0x1ff}, 1);
    }

    /* Detach stops marking, everywhere; a second detach is -ENOENT. */
    add_ok(s, 0x0, 0x1000);
    VT_ASSERT_RC(vmmem_space_detach_log(s), 0);
    put_u32(s, 0x0);
    put_u32(s, 0x1ff000);
    add_ok(s, 0x8000, 0x1000);
    put_u32(s, 0x8000);
    log_expect(fd, NULL, 0);
    VT_ASSERT_RC(vmmem_space_detach_log(s), -ENOENT);
    vmmem_space_free(s);
    close(fd);
}

/* A log attached to one snapshot lives as long as a region pointing to it:
 * dropping that snapshot while the space moves on must not unmap it under
 * the writers of later maps (this crashed before logs were counted). */
static void test_log_outlives_snapshot(void)
{
    int fd = log_fd();
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL || fd < 0)
        return;
    add_ok(s, 0x0, 0x10000);
    vmmem_map *m = vmmem_space_snapshot(s);
    VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, LOG_BYTES), 0);
    vmmem_map_unref(m); /* the snapshot the log was attached to is gone... */
    add_ok(s, 0x100000, 0x1000); /* ...and the space has moved on twice */
    add_ok(s, 0x1f0000, 0x1000);
    put_u32(s, 0x3000);
    put_u32(s, 0x100000);
    /* The region it was set on still marks it; a log attached to one map
     * (not to the space) is not carried to regions added later. */
    log_expect(fd, (const unsigned[]){0x3}, 1);
    /* Replacing the log: only the new one is marked from then on. */
    int fd2 = log_fd();
    VT_ASSERT_RC(vmmem_space_attach_log(s, fd2, 0, LOG_BYTES), 0);
    put_u32(s, 0x1f0000);
    put_u32(s, 0x5000);
    log_expect(fd, NULL, 0);
    log_expect(fd2, (const unsigned[]){0x5, 0x1f0}, 2);
    vmmem_space_free(s);
    close(fd2);
    close(fd);
}

/* A detached log stays detached: an old snapshot that still names it can be
 * switched off and on, or published again, without bringing it back. */
static void test_log_stays_detached(void)
{
    int fd = log_fd();
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL || fd < 0)
        return;
    add_ok(s, 0x0, 0x10000);
    VT_ASSERT_RC(vmmem_space_attach_log(s, fd, 0, LOG_BYTES), 0);
    vmmem_map *old = vmmem_space_snapshot(s); /* names the log */
    add_ok(s, 0x100000, 0x1000);
    VT_ASSERT_RC(vmmem_space_detach_log(s), 0);
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(old, false), 0);
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(old, true), 0);
    put_u32(s, 0x2000);
    put_u32(s, 0x100000);
    uint32_t v = 1;
    VT_ASSERT_RC(vmmem_write_obj(old, 0x4000, &v, 4), 0);
    log_expect(fd, NULL, 0);
    VT_ASSERT_RC(vmmem_space_publish(s, old), 0);
    add_ok(s, 0x200000, 0x1000);
    put_u32(s, 0x6000);
    put_u32(s, 0x200000);
    log_expect(fd, NULL, 0);
    vmmem_map_unref(old);
    vmmem_space_free(s);
    close(fd);
}

/* Migration retries: each SET_LOG_BASE maps a new log.  The ones replaced or
 * detached are unmapped once no writer can be marking them, while the
 * regions (boot RAM) live on: they do not pile up. */
static void test_log_no_pile_up(void)
{
    int fd = log_fd();
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL || fd < 0)
        return;
    add_ok(s, 0x0, 0x10000);
    vmmem_map *keep = vmmem_space_snapshot(s); /* a long-lived reader's snapshot */
    CU_ASSERT_EQUAL(maps_lines("vt-space-log"), 0);
    for (int i = 0; i < 5; i++) {
        VT_ASSERT_RC(vmmem_space_attach_log(s, fd, 0, LOG_BYTES), 0);
        VT_ASSERT_RC(vmmem_space_attach_log(s, fd, 0, LOG_BYTES), 0); /* a resize: replaced */
        CU_ASSERT_EQUAL(maps_lines("vt-space-log"), 1);
        put_u32(s, 0x1000 * (unsigned)i);
        uint32_t v = 2;
        VT_ASSERT_RC(vmmem_write_obj(keep, 0x8000, &v, 4), 0);
        log_expect(fd, (const unsigned[]){(unsigned)i, 8}, 2);
        VT_ASSERT_RC(vmmem_space_detach_log(s), 0);
        CU_ASSERT_EQUAL(maps_lines("vt-space-log"), 0);
    }
    vmmem_map_unref(keep);
    vmmem_space_free(s);
    close(fd);
}

struct log_writer {
    vmmem_space *s;
    atomic_bool *stop;
    _Atomic unsigned long writes;
    unsigned long errors;
};

static void *log_writer_main(void *arg)
{
    struct log_writer *w = arg;
    unsigned x = 12345;
    while (!atomic_load(w->stop)) {
        struct vmmem_read_section sec;
        const vmmem_map *m = vmmem_space_read_begin(w->s, &sec);
        for (int i = 0; i < 16 && m != NULL; i++) {
            x = x * 1103515245u + 12345u;
            uint64_t v = x;
            if (vmmem_write_obj(m, (uint64_t)(x % 0xfff8u) & ~7ull, &v, 8) != 0)
                w->errors++;
            atomic_fetch_add(&w->writes, 1);
        }
        vmmem_space_read_end(&sec);
    }
    return NULL;
}

/* Writers mark the log while it is attached, replaced and detached over and
 * over: no write may touch an unmapped log (ASan and valgrind run this too),
 * and at the end nothing is left mapped. */
static void test_log_swaps_under_writers(void)
{
    int fd = log_fd();
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL || fd < 0)
        return;
    add_ok(s, 0x0, 0x10000);
    atomic_bool stop;
    atomic_init(&stop, false);
    struct log_writer w[2] = {{s, &stop, 0, 0}, {s, &stop, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, log_writer_main, &w[i]) == 0);
    /* Both writers are writing before the swaps begin (valgrind runs one
     * thread at a time). */
    while (atomic_load(&w[0].writes) == 0 || atomic_load(&w[1].writes) == 0)
        sched_yield();
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        bad += vmmem_space_attach_log(s, fd, 0, LOG_BYTES) != 0;
        bad += vmmem_space_attach_log(s, fd, 0, LOG_BYTES) != 0;
        bad += vmmem_space_detach_log(s) != 0;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(w[0].errors + w[1].errors, 0);
    CU_ASSERT_EQUAL(maps_lines("vt-space-log"), 0);
    vmmem_space_free(s);
    close(fd);
}

static void test_log_bad_arguments(void)
{
    int fd = log_fd();
    vmmem_space *s = new_space(NULL, NULL);
    if (s == NULL || fd < 0)
        return;
    add_ok(s, 0x0, 0x4000);
    VT_ASSERT_RC(vmmem_space_attach_log(NULL, fd, 0, LOG_BYTES), -EINVAL);
    VT_ASSERT_RC(vmmem_space_detach_log(NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_space_attach_log(s, fd, 0, 0), -EINVAL);
    VT_ASSERT_RC(vmmem_space_attach_log(s, -1, 0, LOG_BYTES), -EBADF);
    VT_ASSERT_RC(vmmem_space_attach_log(s, fd, 4096, 1), -ERANGE); /* past the memfd's end */
    VT_ASSERT_RC(vmmem_space_attach_log(s, fd, UINT64_MAX, LOG_BYTES), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "past its end"));
    /* Nothing was attached: tracking is still off and nothing marks. */
    vmmem_map *m = vmmem_space_snapshot(s);
    CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
    vmmem_map_unref(m);
    put_u32(s, 0x1000);
    log_expect(fd, NULL, 0);
    VT_ASSERT_RC(vmmem_space_detach_log(s), -ENOENT);
    vmmem_space_free(s);
    close(fd);
}

/* ---- 4. stress -------------------------------------------------------- */

/*
 * A counting provider: every mapping is a 64 KiB memfd named
 * "vt-space-stress" (so /proc/self/maps shows one line per live mapping),
 * with a record of how often it was unmapped and how many readers hold it.
 * The record index travels in mapping->file_offset.
 */
#define ST_NAME "vt-space-stress"
#define ST_SLOTS 8
#define ST_SLOT_SIZE 0x10000u
#define ST_BASE 0x40000000ull
#define ST_MAX_MAPS 200000u
#define ST_READERS 3
/* The writer runs at least ST_NSEC and at least ST_MIN_PUBS publications:
 * a slow host (valgrind runs one thread at a time, qemu emulates) takes
 * longer rather than doing less.  ST_MAX_NSEC only stops a wedged run. */
#define ST_NSEC 1500000000ll
#define ST_MIN_PUBS 200ul
#define ST_MAX_NSEC 240000000000ll

struct st_rec {
    void *host;
    size_t len;
    uint64_t addr;
    _Atomic int unmaps;
    _Atomic long holders;
};

static struct st_rec st_recs[ST_MAX_MAPS];
static _Atomic unsigned st_next;
static _Atomic long st_live, st_mapped, st_double_unmaps, st_unmapped_while_held, st_bad_unmap;

static int st_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                  struct vmmem_mapping *out)
{
    (void)p;
    unsigned id = atomic_fetch_add(&st_next, 1);
    if (id >= ST_MAX_MAPS)
        return -ENOSPC;
    int fd = memfd_create(ST_NAME, MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)spec->size) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    void *a = mmap(NULL, (size_t)spec->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (a == MAP_FAILED)
        return -e;
    struct st_rec *r = &st_recs[id];
    r->host = a;
    r->len = (size_t)spec->size;
    r->addr = spec->addr;
    atomic_store(&r->unmaps, 0);
    atomic_store(&r->holders, 0);
    out->host = a;
    out->prot = VMMEM_PROT_RW;
    out->file_offset = id;
    out->priv = r;
    atomic_fetch_add(&st_live, 1);
    atomic_fetch_add(&st_mapped, 1);
    return 0;
}

static void st_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                     struct vmmem_mapping *m)
{
    (void)p;
    struct st_rec *r = m->priv;
    if (r == NULL || r->host != m->host || r->addr != spec->addr) {
        atomic_fetch_add(&st_bad_unmap, 1);
        return;
    }
    if (atomic_fetch_add(&r->unmaps, 1) != 0) {
        atomic_fetch_add(&st_double_unmaps, 1);
        return;
    }
    if (atomic_load(&r->holders) != 0)
        atomic_fetch_add(&st_unmapped_while_held, 1);
    munmap(r->host, r->len);
    atomic_fetch_sub(&st_live, 1);
}

static const struct vmmem_provider st_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "vt-stress",
    .description = "counting memfd provider for the hot-plug stress test",
    .map = st_map,
    .unmap = st_unmap,
};

static uint64_t st_tag(unsigned slot)
{
    return 0x0101010101010101ull * (0xa0u + slot);
}

static uint64_t st_addr(unsigned slot)
{
    return ST_BASE + (uint64_t)slot * ST_SLOT_SIZE;
}

static unsigned st_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xffffffu;
}

static int64_t st_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static atomic_bool st_stop;

struct st_reader {
    pthread_t th;
    vmmem_space *s;
    unsigned seed;
    bool sections; /* read sections instead of snapshots */
    unsigned long snapshots, sections_taken, reads, writes, absent, kept;
    unsigned long bad_rc, bad_data, bad_layout;
    int first_bad_rc;
};

/* A snapshot (or a read section) and the records of the regions it holds
 * (per slot, or -1). */
struct st_hold {
    const vmmem_map *m;
    struct vmmem_read_section sec; /* sec.space != NULL: a section */
    long id[ST_SLOTS];
};

static void st_note_rc(struct st_reader *rd, int64_t rc)
{
    if (rd->bad_rc++ == 0)
        rd->first_bad_rc = (int)rc;
}

static bool st_take(struct st_reader *rd, struct st_hold *h)
{
    h->sec.space = NULL;
    if (rd->sections) {
        h->m = vmmem_space_read_begin(rd->s, &h->sec);
        rd->sections_taken++;
    } else {
        h->m = vmmem_space_snapshot(rd->s);
        rd->snapshots++;
    }
    if (h->m == NULL) {
        st_note_rc(rd, -EFAULT);
        return false;
    }
    size_t found = 0;
    for (unsigned k = 0; k < ST_SLOTS; k++) {
        h->id[k] = -1;
        const vmmem_region *r = vmmem_map_find(h->m, st_addr(k) + 0x123, NULL);
        if (r == NULL)
            continue;
        found++;
        struct vmmem_region_info info;
        vmmem_region_get_info(r, &info);
        unsigned id = (unsigned)info.file_offset;
        if (info.start != st_addr(k) || info.size != ST_SLOT_SIZE || id >= ST_MAX_MAPS ||
            st_recs[id].host != info.host || st_recs[id].addr != st_addr(k) ||
            atomic_load(&st_recs[id].unmaps) != 0) {
            rd->bad_layout++;
            continue;
        }
        atomic_fetch_add(&st_recs[id].holders, 1);
        h->id[k] = id;
    }
    if (found != vmmem_map_num_regions(h->m))
        rd->bad_layout++;
    return true;
}

static void st_drop(struct st_hold *h)
{
    for (unsigned k = 0; k < ST_SLOTS; k++)
        if (h->id[k] >= 0)
            atomic_fetch_sub(&st_recs[h->id[k]].holders, 1);
    if (h->sec.space != NULL)
        vmmem_space_read_end(&h->sec);
    else
        vmmem_map_unref((vmmem_map *)h->m);
    h->m = NULL;
}

/* One access to slot k through h; present or absent as h says. */
static void st_access(struct st_reader *rd, const struct st_hold *h, unsigned k, unsigned op)
{
    uint64_t a = st_addr(k) + (uint64_t)(st_rand(&rd->seed) % (ST_SLOT_SIZE / 8)) * 8;
    bool present = h->id[k] >= 0;
    uint64_t tag = st_tag(k), v = 0;
    int64_t rc, want = present ? 0 : VMMEM_EINVALID_ADDRESS;
    switch (op & 3) {
    case 0: /* write the slot's tag, read it back through the same snapshot */
        rc = vmmem_write(h->m, a, &tag, 8);
        rd->writes++;
        if (rc != (present ? 8 : VMMEM_EINVALID_ADDRESS)) {
            st_note_rc(rd, rc);
            return;
        }
        rc = vmmem_read(h->m, a, &v, 8);
        rd->reads++;
        if (rc != (present ? 8 : VMMEM_EINVALID_ADDRESS))
            st_note_rc(rd, rc);
        else if (present && v != tag)
            rd->bad_data++;
        break;
    case 1:
        rc = vmmem_read(h->m, a, &v, 8);
        rd->reads++;
        if (rc != (present ? 8 : VMMEM_EINVALID_ADDRESS))
            st_note_rc(rd, rc);
        else if (present && v != 0 && v != tag)
            rd->bad_data++;
        break;
    case 2:
        rc = vmmem_store(h->m, a, 8, tag, VMMEM_RELEASE);
        rd->writes++;
        if (rc != want)
            st_note_rc(rd, rc);
        rc = vmmem_load(h->m, a ^ 8, 8, &v, VMMEM_ACQUIRE);
        rd->reads++;
        if (rc != want)
            st_note_rc(rd, rc);
        else if (present && v != 0 && v != tag)
            rd->bad_data++;
        break;
    default:
        rc = vmmem_read_obj(h->m, a, &v, 8);
        rd->reads++;
        if (rc != want)
            st_note_rc(rd, rc);
        else if (present && v != 0 && v != tag)
            rd->bad_data++;
        break;
    }
    if (!present)
        rd->absent++;
}

static void *st_reader_main(void *arg)
{
    struct st_reader *rd = arg;
    struct st_hold kept = {NULL, {NULL, 0, 0, NULL}, {0}};
    while (!atomic_load(&st_stop)) {
        struct st_hold h;
        if (!st_take(rd, &h))
            break;
        for (unsigned i = 0; i < 4; i++)
            st_access(rd, &h, st_rand(&rd->seed) % ST_SLOTS, st_rand(&rd->seed));
        /* An older snapshot, held across publications, still works. */
        if (kept.m != NULL) {
            st_access(rd, &kept, st_rand(&rd->seed) % ST_SLOTS, 1);
            st_drop(&kept);
        }
        if (!rd->sections && st_rand(&rd->seed) % 8 == 0) { /* sections are never kept */
            kept = h;
            rd->kept++;
        } else {
            st_drop(&h);
        }
    }
    if (kept.m != NULL)
        st_drop(&kept);
    return NULL;
}

struct st_writer {
    pthread_t th;
    vmmem_space *s;
    vmmem_registry *reg;
    unsigned seed;
    bool present[ST_SLOTS];
    unsigned long adds, removes, replaces, refused, publications, layout_checks;
    unsigned long bad_rc, bad_layout;
    int first_bad_rc;
    bool exhausted;
};

static void st_wcheck(struct st_writer *w, int rc, int want)
{
    if (rc != want && w->bad_rc++ == 0) {
        w->first_bad_rc = rc;
        fprintf(stdout, "\n    writer: got %s, want %s: %s\n", vmmem_err_name(rc),
                vmmem_err_name(want), vmmem_last_message());
    }
}

/* The published map is exactly the writer's view (it is the only writer). */
static void st_wlayout(struct st_writer *w)
{
    vmmem_map *m = vmmem_space_snapshot(w->s);
    size_t n = 0;
    for (unsigned k = 0; k < ST_SLOTS; k++) {
        const vmmem_region *r = vmmem_map_find(m, st_addr(k), NULL);
        if ((r != NULL) != w->present[k] ||
            (r != NULL && (vmmem_region_start(r) != st_addr(k) ||
                           vmmem_region_size(r) != ST_SLOT_SIZE)))
            w->bad_layout++;
        n += w->present[k];
    }
    if (vmmem_map_num_regions(m) != n)
        w->bad_layout++;
    vmmem_map_unref(m);
    w->layout_checks++;
}

static void *st_writer_main(void *arg)
{
    struct st_writer *w = arg;
    int64_t t0 = st_now(), end = t0 + ST_NSEC, cap = t0 + ST_MAX_NSEC;
    struct vmmem_region_spec sp = {.provider = "vt-stress", .size = ST_SLOT_SIZE};
    for (;;) {
        int64_t now = st_now();
        if ((now >= end && w->publications >= ST_MIN_PUBS) || now >= cap)
            break;
        unsigned k = st_rand(&w->seed) % ST_SLOTS, what = st_rand(&w->seed) % 8;
        uint64_t a = st_addr(k);
        int rc;
        sp.addr = a;
        sp.size = ST_SLOT_SIZE;
        if (!w->present[k]) {
            if (what == 0) { /* removing or re-basing what is absent is refused */
                st_wcheck(w, vmmem_space_remove(w->s, a, ST_SLOT_SIZE), VMMEM_EINVALID_ADDRESS);
                st_wcheck(w, vmmem_space_replace(w->s, a, ST_SLOT_SIZE, w->reg, &sp),
                          VMMEM_EINVALID_ADDRESS);
                w->refused += 2;
            }
            rc = vmmem_space_add(w->s, w->reg, &sp);
            if (rc == -ENOSPC) {
                w->exhausted = true;
                break;
            }
            st_wcheck(w, rc, 0);
            if (rc == 0) {
                w->present[k] = true;
                w->adds++;
                w->publications++;
            }
        } else if (what < 4) {
            st_wcheck(w, vmmem_space_remove(w->s, a, ST_SLOT_SIZE), 0);
            w->present[k] = false;
            w->removes++;
            w->publications++;
        } else if (what < 6) {
            rc = vmmem_space_replace(w->s, a, ST_SLOT_SIZE, w->reg, &sp);
            if (rc == -ENOSPC) {
                w->exhausted = true;
                break;
            }
            st_wcheck(w, rc, 0);
            w->replaces++;
            w->publications++;
        } else {
            /* Overlaps and inexact removes are refused. */
            sp.addr = a + 0x8000;
            st_wcheck(w, vmmem_space_add(w->s, w->reg, &sp), VMMEM_EOVERLAP);
            sp.addr = a;
            st_wcheck(w, vmmem_space_add(w->s, w->reg, &sp), VMMEM_EOVERLAP);
            st_wcheck(w, vmmem_space_remove(w->s, a, ST_SLOT_SIZE / 2), VMMEM_EINVALID_ADDRESS);
            st_wcheck(w, vmmem_space_rebase(w->s, a, ST_SLOT_SIZE / 2, a + 0x100000000ull),
                      VMMEM_EINVALID_ADDRESS);
            w->refused += 4;
        }
        if ((w->adds + w->removes) % 64 == 0)
            st_wlayout(w);
    }
    st_wlayout(w);
    atomic_store(&st_stop, true);
    return NULL;
}

#if defined(__SANITIZE_THREAD__)
#define ST_STACK (2048u * 1024u) /* TSan's per-thread state needs ~930 KiB of stack */
#else
#define ST_STACK (512u * 1024u)
#endif

static void test_stress(void)
{
    for (unsigned i = 0; i < ST_MAX_MAPS; i++) {
        st_recs[i].host = NULL;
        atomic_store(&st_recs[i].unmaps, 0);
        atomic_store(&st_recs[i].holders, 0);
    }
    atomic_store(&st_next, 0);
    atomic_store(&st_live, 0);
    atomic_store(&st_mapped, 0);
    atomic_store(&st_double_unmaps, 0);
    atomic_store(&st_unmapped_while_held, 0);
    atomic_store(&st_bad_unmap, 0);
    atomic_store(&st_stop, false);

    /* Thread stacks are ours (glibc would cache its own after join), and one
     * malloc arena serves every thread, so that the process's mappings after
     * the test can be compared with those before. */
    mallopt(M_ARENA_MAX, 1);
    void *stacks = mmap(NULL, (size_t)(ST_READERS + 1) * ST_STACK, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(stacks != MAP_FAILED);
    vmmem_registry *reg = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&reg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    VT_ASSERT_RC(vmmem_registry_add(reg, &st_provider), 0);
    long lines0 = maps_lines(NULL), tagged0 = maps_lines(ST_NAME);
    CU_ASSERT_EQUAL(tagged0, 0);

    vmmem_space *s = new_space(NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    static struct st_reader rd[ST_READERS];
    static struct st_writer w;
    memset(rd, 0, sizeof rd);
    memset(&w, 0, sizeof w);
    w.s = s;
    w.reg = reg;
    w.seed = 0x5eed;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int started = 0;
    for (int i = 0; i < ST_READERS; i++) {
        rd[i].s = s;
        rd[i].seed = 1000u + (unsigned)i * 7919u;
        rd[i].sections = i == 0; /* one reader uses read sections */
        CU_ASSERT_EQUAL(
            pthread_attr_setstack(&attr, (uint8_t *)stacks + (size_t)i * ST_STACK, ST_STACK), 0);
        int rc = pthread_create(&rd[i].th, &attr, st_reader_main, &rd[i]);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0)
            break;
        started++;
    }
    CU_ASSERT_EQUAL(
        pthread_attr_setstack(&attr, (uint8_t *)stacks + (size_t)ST_READERS * ST_STACK, ST_STACK),
        0);
    int wrc = pthread_create(&w.th, &attr, st_writer_main, &w);
    CU_ASSERT_EQUAL(wrc, 0);
    if (wrc == 0)
        pthread_join(w.th, NULL);
    atomic_store(&st_stop, true);
    for (int i = 0; i < started; i++)
        pthread_join(rd[i].th, NULL);
    pthread_attr_destroy(&attr);

    /* Quiescent: every mapping not in the published map was unmapped once,
     * the published ones are still mapped, and maps shows exactly those. */
    unsigned nmaps = atomic_load(&st_next);
    if (nmaps > ST_MAX_MAPS)
        nmaps = ST_MAX_MAPS;
    size_t present = 0;
    for (unsigned k = 0; k < ST_SLOTS; k++)
        present += w.present[k];
    vmmem_map *last = vmmem_space_snapshot(s);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(last), present);
    unsigned long wrong_state = 0, map_failures = 0;
    for (unsigned id = 0; id < nmaps; id++) {
        struct st_rec *r = &st_recs[id];
        if (r->host == NULL) {
            map_failures++;
            continue;
        }
        const vmmem_region *reg_r = vmmem_map_find(last, r->addr, NULL);
        struct vmmem_region_info info = {0};
        if (reg_r != NULL)
            vmmem_region_get_info(reg_r, &info);
        bool published = reg_r != NULL && info.file_offset == id;
        if (atomic_load(&r->unmaps) != (published ? 0 : 1) || atomic_load(&r->holders) != 0)
            wrong_state++;
    }
    vmmem_map_unref(last);
    CU_ASSERT_EQUAL(wrong_state, 0);
    CU_ASSERT_EQUAL(map_failures, 0);
    CU_ASSERT_EQUAL(atomic_load(&st_live), (long)present);
    CU_ASSERT_EQUAL(maps_lines(ST_NAME), tagged0 + (long)present);

    /* Free the space: everything is unmapped exactly once. */
    vmmem_space_free(s);
    unsigned long once = 0;
    wrong_state = 0;
    for (unsigned id = 0; id < nmaps; id++) {
        if (st_recs[id].host == NULL)
            continue;
        if (atomic_load(&st_recs[id].unmaps) == 1)
            once++;
        else
            wrong_state++;
    }
    CU_ASSERT_EQUAL(wrong_state, 0);
    CU_ASSERT_EQUAL(atomic_load(&st_live), 0);
    CU_ASSERT_EQUAL(atomic_load(&st_mapped), (long)(nmaps - map_failures));
    CU_ASSERT_EQUAL(atomic_load(&st_double_unmaps), 0);
    CU_ASSERT_EQUAL(atomic_load(&st_unmapped_while_held), 0);
    CU_ASSERT_EQUAL(atomic_load(&st_bad_unmap), 0);
    long tagged1 = maps_lines(ST_NAME);
    CU_ASSERT_EQUAL(tagged1, tagged0);
    vmmem_registry_free(reg);
    long lines1 = maps_lines(NULL);
#if !defined(__SANITIZE_ADDRESS__)
    /* ASan's allocator (and valgrind) map memory of their own; elsewhere the
     * process has exactly the mappings it had before. */
    if (getenv("VMMEM_UNDER_VALGRIND") == NULL)
        CU_ASSERT_EQUAL(lines1, lines0);
#endif

    unsigned long snaps = 0, sections = 0, reads = 0, writes = 0, absent = 0, kept = 0;
    unsigned long bad_rc = 0, bad_data = 0, bad_layout = 0;
    for (int i = 0; i < started; i++) {
        snaps += rd[i].snapshots;
        sections += rd[i].sections_taken;
        reads += rd[i].reads;
        writes += rd[i].writes;
        absent += rd[i].absent;
        kept += rd[i].kept;
        bad_rc += rd[i].bad_rc;
        bad_data += rd[i].bad_data;
        bad_layout += rd[i].bad_layout;
        if (rd[i].bad_rc != 0)
            fprintf(stdout, "\n    reader %d: %lu unexpected codes, first %s (%d)\n", i,
                    rd[i].bad_rc, vmmem_err_name(rd[i].first_bad_rc), rd[i].first_bad_rc);
    }
    fprintf(stdout,
            "\n    stress: %d readers, %lu snapshots (%lu kept across publications), %lu read "
            "sections, %lu reads, "
            "%lu writes (%lu to absent slots); writer: %lu publications (%lu adds, %lu removes, "
            "%lu replaces), %lu refused changes, %lu layout checks%s; %u mappings made, %lu "
            "unmapped exactly once; maps lines %ld -> %ld (%s)\n",
            started, snaps, kept, sections, reads, writes, absent, w.publications, w.adds, w.removes,
            w.replaces, w.refused, w.layout_checks, w.exhausted ? " (mapping budget used up)" : "",
            nmaps, once, lines0, lines1,
#if defined(__SANITIZE_ADDRESS__)
            "not compared under ASan"
#else
            getenv("VMMEM_UNDER_VALGRIND") != NULL ? "not compared under valgrind" : "must be equal"
#endif
    );
    CU_ASSERT_EQUAL(bad_rc, 0);
    CU_ASSERT_EQUAL(bad_data, 0);
    CU_ASSERT_EQUAL(bad_layout, 0);
    CU_ASSERT_EQUAL(w.bad_rc, 0);
    CU_ASSERT_EQUAL(w.bad_layout, 0);
    CU_ASSERT_TRUE(w.publications >= ST_MIN_PUBS || w.exhausted);
    CU_ASSERT_TRUE(snaps > 100);
    CU_ASSERT_TRUE(sections > 100);
    CU_ASSERT_TRUE(absent > 0);
    CU_ASSERT_TRUE(reads > absent);
    munmap(stacks, (size_t)(ST_READERS + 1) * ST_STACK);
}

/* ---- main ------------------------------------------------------------- */

/* ---- config strings and the generation number ------------------------ */

static void test_add_config(void)
{
    vmmem_space *s = new_space(NULL, NULL);
    CU_ASSERT_EQUAL(vmmem_space_generation(s), 0);
    VT_ASSERT_RC(vmmem_space_add_config(s, NULL, "mmap:addr=8G,size=1M,shared"), 0);
    CU_ASSERT_EQUAL(vmmem_space_generation(s), 1);
    VT_ASSERT_RC(vmmem_space_add_config(s, NULL, " mmap:addr=0,size=64K ;"), 0);
    CU_ASSERT_EQUAL(vmmem_space_generation(s), 2);
    vmmem_map *m = vmmem_space_snapshot(s);
    static const struct layout lay[] = {{0, 64 << 10}, {8ull << 30, 1 << 20}};
    check_layout(m, lay, 2, NULL);
    struct vmmem_region_info info;
    const vmmem_region *r = vmmem_map_find(m, 8ull << 30, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    vmmem_region_get_info(r, &info);
    CU_ASSERT_PTR_NOT_NULL(vmmem_spec_get(info.spec, "shared"));
    vmmem_map_unref(m);

    /* replace 64K at 0 by 128K read-only, from a string */
    VT_ASSERT_RC(vmmem_space_replace_config(s, 0, 64 << 10, NULL, "mmap:addr=0,size=128K,prot=r"),
                 0);
    CU_ASSERT_EQUAL(vmmem_space_generation(s), 3);
    m = vmmem_space_snapshot(s);
    static const struct layout lay2[] = {{0, 128 << 10}, {8ull << 30, 1 << 20}};
    check_layout(m, lay2, 2, NULL);
    VT_ASSERT_RC(vmmem_write(m, 0, "x", 1), VMMEM_EREAD_ONLY);
    vmmem_map_unref(m);

    /* errors: nothing published, generation unchanged, columns in the string */
    VT_ASSERT_RC(vmmem_space_add_config(s, NULL, "mmap:addr=1G,size=4K;mmap:addr=2G,size=4K"),
                 -EINVAL);
    VT_ASSERT_RC(vmmem_space_add_config(s, NULL, "mmap:addr=1G,size=4K,bogus"), VMMEM_EUNKNOWN_KEY);
    CU_ASSERT_EQUAL(vmmem_last_error()->column, 22);
    VT_ASSERT_RC(vmmem_space_add_config(s, NULL, "mmap:addr=1G,size=4K,prot=x"), VMMEM_EBAD_VALUE);
    CU_ASSERT_STRING_EQUAL(vmmem_last_message(),
                           "mmap: prot='x' is not 'r' or 'rw' (region 0, column 27)");
    CU_ASSERT_EQUAL(vmmem_last_error()->column, 27);
    VT_ASSERT_RC(vmmem_space_add_config(s, NULL, "mmap:addr=4K,size=4K"), VMMEM_EOVERLAP);
    VT_ASSERT_RC(vmmem_space_add_config(s, NULL, "mmap:addr=1G,size=0"), VMMEM_EZERO_SIZE);
    VT_ASSERT_RC(vmmem_space_replace_config(s, 4096, 4096, NULL, "mmap:addr=1G,size=4K"),
                 VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_space_add_config(NULL, NULL, "mmap:addr=1G,size=4K"), -EINVAL);
    VT_ASSERT_RC(vmmem_space_add_config(s, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_space_generation(s), 3);
    CU_ASSERT_EQUAL(vmmem_space_generation(NULL), 0);

    /* every kind of publication counts once */
    VT_ASSERT_RC(vmmem_space_rebase(s, 8ull << 30, 1 << 20, 16ull << 30), 0);
    CU_ASSERT_EQUAL(vmmem_space_generation(s), 4);
    VT_ASSERT_RC(vmmem_space_remove(s, 16ull << 30, 1 << 20), 0);
    CU_ASSERT_EQUAL(vmmem_space_generation(s), 5);
    m = vmmem_space_snapshot(s);
    VT_ASSERT_RC(vmmem_space_publish(s, m), 0);
    CU_ASSERT_EQUAL(vmmem_space_generation(s), 6);
    vmmem_map_unref(m);
    vmmem_space_free(s);
}

static const struct vt_test basic_tests[] = {
    {"add and replace from config strings; generation", test_add_config},
    {"empty space", test_empty_space},
    {"bad arguments", test_bad_arguments},
    {"add and remove", test_add_remove},
    {"regions at both ends of guest space", test_edges},
    {"replace", test_replace},
    {"rebase", test_rebase},
    {"publish a whole map", test_publish},
    {"initial map", test_initial_map},
    {"crate hot-plug: insert 3, duplicate rejected, replace", test_crate_hotplug},
    {NULL, NULL},
};

static const struct vt_test isolation_tests[] = {
    {"old snapshot survives removal, unmapped at last drop", test_snapshot_isolation},
    {"replaced regions unmapped one by one", test_replace_unmaps_late},
    {"failing changes leave nothing mapped", test_failure_maps_nothing},
    {"read section: the map without a reference", test_section_basics},
    {"read section: writers inside it are refused (-EDEADLK)", test_section_writer_inside},
    {"read sections nest up to 8, end in any order", test_section_nesting},
    {"read section: a publication waits for it", test_section_holds_writer},
    {"read section ended by another thread", test_section_wrong_thread_end},
    {NULL, NULL},
};

static const struct vt_test dirty_tests[] = {
    {"tracking survives publications", test_dirty_tracking},
    {"page size, publish and initial map", test_dirty_options},
    {"maps of another page size: dirty pages not lost", test_dirty_page_size_mix},
    {"vhost-user log carried to every later publication", test_log_carried},
    {"a log outlives the snapshot it was attached to", test_log_outlives_snapshot},
    {"a detached log stays detached", test_log_stays_detached},
    {"replaced and detached logs do not pile up", test_log_no_pile_up},
    {"log swaps under writers", test_log_swaps_under_writers},
    {"bad log arguments change nothing", test_log_bad_arguments},
    {NULL, NULL},
};

static const struct vt_test stress_tests[] = {
    {"readers and a hot-plugging writer", test_stress},
    {NULL, NULL},
};

static const struct vt_suite basic_suite = {"space basics", NULL, NULL, basic_tests};
static const struct vt_suite isolation_suite = {"snapshot isolation", NULL, NULL, isolation_tests};
static const struct vt_suite dirty_suite = {"dirty tracking", NULL, NULL, dirty_tests};
static const struct vt_suite stress_suite = {"stress", NULL, NULL, stress_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&basic_suite, &isolation_suite, &dirty_suite,
                                                    &stress_suite, NULL};
    return vt_main(suites);
}

/*
 * Map-wide harvest of dirty pages and the vhost-user log (dirty.h):
 *  - harvest basics: exact page counts, per-region bitmap words, clearing,
 *    the iterator of guest-physical runs (merging across touching regions,
 *    never across a hole, clipped to a partial last page), page sizes,
 *    maps without tracking, buffers of another layout, NULL arguments;
 *  - a stress test of the promise "every write that completes after a
 *    harvest starts is seen by that harvest or the next one", with two
 *    writer threads and one harvesting thread;
 *  - the vhost-user shared-memory log: exact bits for every write path,
 *    writes beyond the log, an offset into the fd, errors, detach.
 * (Per-write-path marking of the map's bitmap and the bitmap primitives are
 * in test_dirty.c.)
 */
#include <errno.h>
#include <fcntl.h>
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

#define PG 0x1000u

static uint8_t src_buf[0x4000];

static int init_src(void)
{
    for (size_t i = 0; i < sizeof src_buf; i++)
        src_buf[i] = (uint8_t)(i * 7 + 1);
    return 0;
}

static vmmem_map *new_map(const char *cfg, uint32_t flags, uint64_t page_size)
{
    struct vmmem_map_options o = {
        .struct_size = sizeof o, .flags = flags, .dirty_page_size = page_size};
    vmmem_map *m = NULL;
    int rc = vmmem_map_from_config(&m, NULL, cfg, &o);
    if (rc != 0)
        fprintf(stdout, "\n    map \"%s\": %s", cfg, vmmem_last_message());
    VT_ASSERT_RC(rc, 0);
    return rc == 0 ? m : NULL;
}

static vmmem_harvest *new_harvest(const vmmem_map *m)
{
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    CU_ASSERT_PTR_NOT_NULL(h);
    return h;
}

/* ---- expectations on a harvest ------------------------------------------------------- */

struct run {
    uint64_t gpa, len;
};

/* The runs of the last harvest must be exactly want[0..n). */
static void expect_runs(const vmmem_harvest *h, const struct run *want, size_t n, int line)
{
    struct run got[64];
    size_t ng = 0;
    vmmem_harvest_iter it = {0};
    uint64_t gpa = 0, len = 0;
    while (vmmem_harvest_next_run(h, &it, &gpa, &len)) {
        if (ng < 64)
            got[ng] = (struct run){gpa, len};
        if (++ng > 4096)
            break; /* an iterator that never ends */
    }
    bool ok = ng == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = got[i].gpa == want[i].gpa && got[i].len == want[i].len;
    /* Exhausted iterators stay exhausted. */
    bool again = vmmem_harvest_next_run(h, &it, &gpa, &len);
    if (!ok || again) {
        fprintf(stdout, "\n    line %d: runs got %zu:", line, ng);
        for (size_t i = 0; i < ng && i < 64; i++)
            fprintf(stdout, " (0x%llx,0x%llx)", (unsigned long long)got[i].gpa,
                    (unsigned long long)got[i].len);
        fprintf(stdout, "; want %zu:", n);
        for (size_t i = 0; i < n; i++)
            fprintf(stdout, " (0x%llx,0x%llx)", (unsigned long long)want[i].gpa,
                    (unsigned long long)want[i].len);
        if (again)
            fprintf(stdout, "; the iterator yields again after its end");
    }
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_FALSE(again);
}

#define EXPECT_RUNS(h, ...)                                                                   \
    do {                                                                                      \
        static const struct run want_[] = {__VA_ARGS__};                                      \
        expect_runs((h), want_, sizeof want_ / sizeof want_[0], __LINE__);                    \
    } while (0)
#define EXPECT_NO_RUNS(h) expect_runs((h), NULL, 0, __LINE__)

/* Region i of the last harvest: start, page count and exactly these words. */
static void expect_bitmap(const vmmem_harvest *h, size_t i, uint64_t start, uint64_t pages,
                          const uint64_t *want, size_t nwords, int line)
{
    vmmem_gaddr_t s = 0xdead;
    uint64_t p = 0xdead;
    const uint64_t *w = vmmem_harvest_bitmap(h, i, &s, &p);
    CU_ASSERT_PTR_NOT_NULL(w);
    CU_ASSERT_EQUAL(s, start);
    CU_ASSERT_EQUAL(p, pages);
    CU_ASSERT_EQUAL((pages + 63) / 64, nwords);
    if (w == NULL)
        return;
    for (size_t k = 0; k < nwords; k++) {
        if (w[k] != want[k])
            fprintf(stdout, "\n    line %d: region %zu word %zu = 0x%016llx, want 0x%016llx", line,
                    i, k, (unsigned long long)w[k], (unsigned long long)want[k]);
        CU_ASSERT_EQUAL(w[k], want[k]);
    }
}

#define EXPECT_BITMAP(h, i, start, pages, ...)                                                \
    do {                                                                                      \
        static const uint64_t want_[] = {__VA_ARGS__};                                        \
        expect_bitmap((h), (i), (start), (pages), want_, sizeof want_ / sizeof want_[0],      \
                      __LINE__);                                                              \
    } while (0)

/* No page of [start, start+size) is marked, tested every page_size bytes. */
static void expect_clean(const vmmem_map *m, uint64_t start, uint64_t size, uint64_t page_size)
{
    unsigned marked = 0;
    for (uint64_t a = start; a < start + size; a += page_size)
        marked += vmmem_map_is_dirty(m, a);
    CU_ASSERT_EQUAL(marked, 0);
}

/* ---- harvest basics ----------------------------------------------------------------- */

/* R0 [0,64K) pages 0-15, R1 [64K,128K) touching R0, hole, R2 [256K,272K). */
#define BASIC "mmap:addr=0,size=64K;mmap:addr=64K,size=64K;mmap:addr=256K,size=16K"

/* Writes through several paths; 10 pages: R0 3,8,9,10,15; R1 0,1,15; R2 0,3. */
static void basic_writes(const vmmem_map *m)
{
    CU_ASSERT_EQUAL(vmmem_write(m, 0x3005, src_buf, 1), 1);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x8800, src_buf, 0x2000), 0);
    CU_ASSERT_EQUAL(vmmem_write(m, 0xf000, src_buf, 0x2000), 0x2000); /* R0 p15 + R1 p0 */
    VT_ASSERT_RC(vmmem_store(m, 0x11ff8, 8, 0x1122334455667788ull, VMMEM_SEQ_CST), 0);
    uint64_t v = 42;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 0x1fff8, &v), 0);
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x40000, 0x10, &s), 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 4, src_buf, 4), 0);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x43fff, src_buf, 1), 1); /* the last byte of the map */
}

static void check_basic_harvest(const vmmem_map *m, vmmem_harvest *h)
{
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x3000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x2fff));
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 10);
    CU_ASSERT_EQUAL(vmmem_harvest_regions(h), 3);
    CU_ASSERT_EQUAL(vmmem_harvest_page_size(h), 4096);
    EXPECT_BITMAP(h, 0, 0, 16, (1ull << 3) | (1ull << 8) | (1ull << 9) | (1ull << 10) | (1ull << 15));
    EXPECT_BITMAP(h, 1, 0x10000, 16, 1ull | (1ull << 1) | (1ull << 15));
    EXPECT_BITMAP(h, 2, 0x40000, 4, 1ull | (1ull << 3));
    CU_ASSERT_PTR_NULL(vmmem_harvest_bitmap(h, 3, NULL, NULL));
    EXPECT_RUNS(h, {0x3000, 0x1000}, {0x8000, 0x3000}, {0xf000, 0x3000}, {0x1f000, 0x1000},
                {0x40000, 0x1000}, {0x43000, 0x1000});
    /* The buffer keeps the harvest: a fresh iterator yields the same runs. */
    EXPECT_RUNS(h, {0x3000, 0x1000}, {0x8000, 0x3000}, {0xf000, 0x3000}, {0x1f000, 0x1000},
                {0x40000, 0x1000}, {0x43000, 0x1000});
    /* Everything is clean now. */
    expect_clean(m, 0, 0x20000, PG);
    expect_clean(m, 0x40000, 0x4000, PG);
}

static void test_harvest_basic(void)
{
    vmmem_map *m = new_map(BASIC, VMMEM_MAP_DIRTY_TRACKING, 0);
    if (m == NULL)
        return;
    vmmem_harvest *h = new_harvest(m), *h2 = new_harvest(m);
    if (h != NULL && h2 != NULL) {
        basic_writes(m);
        check_basic_harvest(m, h);
        /* A second harvest finds nothing, into another buffer or the same one. */
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h2), 0);
        EXPECT_NO_RUNS(h2);
        EXPECT_BITMAP(h2, 0, 0, 16, 0);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
        EXPECT_NO_RUNS(h);
        EXPECT_BITMAP(h, 0, 0, 16, 0);
        EXPECT_BITMAP(h, 1, 0x10000, 16, 0);
        EXPECT_BITMAP(h, 2, 0x40000, 4, 0);
        /* Reads do not dirty anything. */
        uint64_t v = 0;
        CU_ASSERT_EQUAL(vmmem_read(m, 0, src_buf + 0x3000, 0x100), 0x100);
        VT_ASSERT_RC(vmmem_load(m, 0x10000, 8, &v, VMMEM_SEQ_CST), 0);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
        /* New writes after a harvest show up in the next one, alone. */
        VT_ASSERT_RC(vmmem_store(m, 0x5000, 4, 1, VMMEM_RELAXED), 0);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 1);
        EXPECT_BITMAP(h, 0, 0, 16, 1ull << 5);
        EXPECT_BITMAP(h, 1, 0x10000, 16, 0);
        EXPECT_RUNS(h, {0x5000, 0x1000});
    }
    vmmem_harvest_free(h);
    vmmem_harvest_free(h2);
    vmmem_map_unref(m);
}

/* Tracking switched on at run time; a map that never tracked harvests as clean. */
static void test_harvest_switch(void)
{
    vmmem_map *m = vt_map(BASIC);
    if (m == NULL)
        return;
    vmmem_harvest *h = new_harvest(m); /* made before any bitmap exists */
    if (h != NULL) {
        CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
        basic_writes(m);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
        EXPECT_NO_RUNS(h);
        EXPECT_BITMAP(h, 0, 0, 16, 0);
        EXPECT_BITMAP(h, 1, 0x10000, 16, 0);
        EXPECT_BITMAP(h, 2, 0x40000, 4, 0);
        CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x3000));

        VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, true), 0);
        CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
        /* Writes from before tracking was on are not dirty. */
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
        EXPECT_NO_RUNS(h);
        basic_writes(m);
        check_basic_harvest(m, h);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
    }
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

/* Four touching-or-not regions of two pages: R0 [0,8K) R1 [8K,16K) R2 [16K,24K), hole,
 * R3 [32K,40K). */
#define MERGE "mmap:addr=0,size=8K;mmap:addr=8K,size=8K;mmap:addr=16K,size=8K;mmap:addr=32K,size=8K"

static void dirty_pages(const vmmem_map *m, const uint64_t *gpas, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(vmmem_write(m, gpas[i] + 0x123, src_buf, 1), 1);
}

static void test_harvest_merge(void)
{
    vmmem_map *m = new_map(MERGE, VMMEM_MAP_DIRTY_TRACKING, 0);
    if (m == NULL)
        return;
    vmmem_harvest *h = new_harvest(m);
    if (h != NULL) {
        /* All of R0..R2 and R3's first page: one run over three regions, none across the
         * hole. */
        CU_ASSERT_EQUAL(vmmem_write(m, 0, src_buf, 0x4000), 0x4000);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x4000, src_buf, 0x2000), 0x2000);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x8000, src_buf, 1), 1);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 7);
        EXPECT_RUNS(h, {0, 0x6000}, {0x8000, 0x1000});

        /* R0 p1 + R1 p0 merge; R1 p1 clean so R2 p0 is its own run. */
        static const uint64_t b[] = {0x1000, 0x2000, 0x4000};
        dirty_pages(m, b, 3);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 3);
        EXPECT_RUNS(h, {0x1000, 0x2000}, {0x4000, 0x1000});

        /* R1 p1 + all of R2 merge; the run ending at R2's end does not jump the hole. */
        static const uint64_t c[] = {0, 0x3000, 0x4000, 0x5000, 0x8000};
        dirty_pages(m, c, 5);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 5);
        EXPECT_RUNS(h, {0, 0x1000}, {0x3000, 0x3000}, {0x8000, 0x1000});

        /* R0's last page dirty, R1's first clean: no merge. */
        static const uint64_t d[] = {0x1000, 0x3000, 0x9000};
        dirty_pages(m, d, 3);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 3);
        EXPECT_RUNS(h, {0x1000, 0x1000}, {0x3000, 0x1000}, {0x9000, 0x1000});
        EXPECT_BITMAP(h, 0, 0, 2, 2);
        EXPECT_BITMAP(h, 1, 0x2000, 2, 2);
        EXPECT_BITMAP(h, 2, 0x4000, 2, 0);
        EXPECT_BITMAP(h, 3, 0x8000, 2, 2);

        /* Only the very last page of the map. */
        VT_ASSERT_RC(vmmem_store(m, 0x9ff8, 8, 1, VMMEM_RELEASE), 0);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 1);
        EXPECT_RUNS(h, {0x9000, 0x1000});
    }
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

/* Region sizes that are not a multiple of the page size: the last page is partial and a run
 * is clipped to the region's end; touching regions still merge after it. */
static void test_harvest_partial_page(void)
{
    vmmem_map *m = new_map("mmap:addr=0,size=0x1800;mmap:addr=0x1800,size=0x1800;"
                           "mmap:addr=0x10000,size=0x1800",
                           VMMEM_MAP_DIRTY_TRACKING, 0);
    if (m == NULL)
        return;
    vmmem_harvest *h = new_harvest(m);
    if (h != NULL) {
        CU_ASSERT_EQUAL(vmmem_write(m, 0x17ff, src_buf, 1), 1); /* R0's partial page */
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 1);
        EXPECT_BITMAP(h, 0, 0, 2, 2);
        EXPECT_BITMAP(h, 1, 0x1800, 2, 0);
        EXPECT_BITMAP(h, 2, 0x10000, 2, 0);
        EXPECT_RUNS(h, {0x1000, 0x800});

        /* R0 p1 + R1 p0 ([0x1800,0x2800)): one run of 0x1800 bytes. */
        CU_ASSERT_EQUAL(vmmem_write(m, 0x17ff, src_buf, 2), 2);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 2);
        EXPECT_BITMAP(h, 1, 0x1800, 2, 1);
        EXPECT_RUNS(h, {0x1000, 0x1800});

        /* The partial last pages of R1 and R2 alone. */
        CU_ASSERT_EQUAL(vmmem_write(m, 0x2fff, src_buf, 1), 1);
        VT_ASSERT_RC(vmmem_store(m, 0x117f8, 8, 7, VMMEM_SEQ_CST), 0);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 2);
        EXPECT_RUNS(h, {0x2800, 0x800}, {0x11000, 0x800});

        /* Everything. */
        CU_ASSERT_EQUAL(vmmem_write(m, 0, src_buf, 0x3000), 0x3000);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x10000, src_buf, 0x1800), 0x1800);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 6);
        EXPECT_RUNS(h, {0, 0x3000}, {0x10000, 0x1800});
    }
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

static void test_harvest_page_128(void)
{
    /* R0: 512 pages of 128 bytes = 8 words; R1 touching: 32 pages. */
    vmmem_map *m = new_map("mmap:addr=0,size=64K;mmap:addr=64K,size=4K",
                           VMMEM_MAP_DIRTY_TRACKING, 128);
    if (m == NULL)
        return;
    vmmem_harvest *h = new_harvest(m);
    if (h != NULL) {
        CU_ASSERT_EQUAL(vmmem_harvest_page_size(h), 128);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x7f, src_buf, 2), 2);        /* pages 0, 1 */
        CU_ASSERT_EQUAL(vmmem_write(m, 0x100, src_buf, 1), 1);       /* page 2 */
        CU_ASSERT_EQUAL(vmmem_write(m, 0x1f80, src_buf, 0x2100), 0x2100); /* pages 63..128 */
        VT_ASSERT_RC(vmmem_store(m, 0x6280, 2, 1, VMMEM_SEQ_CST), 0); /* page 197 */
        CU_ASSERT_EQUAL(vmmem_write(m, 0xffff, src_buf, 2), 2);      /* R0 p511, R1 p0 */
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 72);
        EXPECT_BITMAP(h, 0, 0, 512, 7ull | (1ull << 63), ~0ull, 1, 1ull << 5, 0, 0, 0,
                      1ull << 63);
        EXPECT_BITMAP(h, 1, 0x10000, 32, 1);
        EXPECT_RUNS(h, {0, 0x180}, {0x1f80, 0x2100}, {0x6280, 0x80}, {0xff80, 0x100});
        expect_clean(m, 0, 0x11000, 128);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
    }
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

static void test_harvest_page_64k(void)
{
    /* R0: 2 pages of 64K; R1 touching, 16K = one partial page; R2 after a hole. */
    vmmem_map *m = new_map("mmap:addr=0,size=128K;mmap:addr=128K,size=16K;mmap:addr=1M,size=64K",
                           0, 0x10000);
    if (m == NULL)
        return;
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, true), 0);
    vmmem_harvest *h = new_harvest(m);
    if (h != NULL) {
        CU_ASSERT_EQUAL(vmmem_harvest_page_size(h), 0x10000);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x1ffff, src_buf, 1), 1);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 1);
        EXPECT_RUNS(h, {0x10000, 0x10000});
        CU_ASSERT_EQUAL(vmmem_write(m, 0x1ffff, src_buf, 2), 2);
        uint32_t v = 5;
        VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 0x100005, &v), 0);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 3);
        EXPECT_BITMAP(h, 0, 0, 2, 2);
        EXPECT_BITMAP(h, 1, 0x20000, 1, 1);
        EXPECT_BITMAP(h, 2, 0x100000, 1, 1);
        EXPECT_RUNS(h, {0x10000, 0x14000}, {0x100000, 0x10000});
    }
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

static void test_harvest_errors(void)
{
    vmmem_map *m = new_map(BASIC, VMMEM_MAP_DIRTY_TRACKING, 0);
    if (m == NULL)
        return;
    vmmem_harvest *h = new_harvest(m), *none = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(NULL, &none), -EINVAL);
    CU_ASSERT_PTR_NULL(none);
    VT_ASSERT_RC(vmmem_harvest_new(m, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_map_harvest(NULL, h), -EINVAL);
    VT_ASSERT_RC(vmmem_map_harvest(m, NULL), -EINVAL);

    /* Buffers made for other layouts, both ways round, are re-fitted to the
     * map harvested (issue 14: a hot-plug never makes a harvest -EINVAL). */
    static const struct {
        const char *cfg;
        uint64_t page;
    } other[] = {
        {"mmap:addr=0,size=64K;mmap:addr=64K,size=64K", 0},                    /* fewer */
        {BASIC ";mmap:addr=1M,size=4K", 0},                                      /* more */
        {"mmap:addr=0,size=64K;mmap:addr=64K,size=64K;mmap:addr=256K,size=32K", 0}, /* size */
        {"mmap:addr=0,size=64K;mmap:addr=64K,size=64K;mmap:addr=512K,size=16K", 0}, /* start */
        {BASIC, 0x2000},                                                         /* page */
    };
    for (size_t i = 0; h != NULL && i < sizeof other / sizeof other[0]; i++) {
        vmmem_map *o = new_map(other[i].cfg, VMMEM_MAP_DIRTY_TRACKING, other[i].page);
        if (o == NULL)
            continue;
        vmmem_harvest *oh = new_harvest(o);
        CU_ASSERT_EQUAL(vmmem_write(o, 0x1000, src_buf, 1), 1);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x1000, src_buf, 1), 1);
        CU_ASSERT_TRUE(vmmem_map_is_dirty(o, 0x1000));
        CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x1000));
        int64_t rc = vmmem_map_harvest(o, h);
        if (rc != 1)
            fprintf(stdout, "\n    layout %zu: harvest of another map's buffer = %lld", i,
                    (long long)rc);
        CU_ASSERT_EQUAL(rc, 1);
        CU_ASSERT_EQUAL(vmmem_harvest_regions(h), vmmem_map_num_regions(o));
        CU_ASSERT_EQUAL(vmmem_harvest_page_size(h), vmmem_map_dirty_page_size(o));
        vmmem_harvest_iter it = {0};
        uint64_t gpa = 0, len = 0;
        CU_ASSERT_TRUE(vmmem_harvest_next_run(h, &it, &gpa, &len));
        CU_ASSERT_EQUAL(gpa, 0x1000 & ~(vmmem_map_dirty_page_size(o) - 1));
        CU_ASSERT_EQUAL(len, vmmem_map_dirty_page_size(o));
        CU_ASSERT_FALSE(vmmem_harvest_next_run(h, &it, &gpa, &len));
        if (oh != NULL)
            CU_ASSERT_EQUAL(vmmem_map_harvest(m, oh), 1);
        CU_ASSERT_FALSE(vmmem_map_is_dirty(o, 0x1000));
        CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x1000));
        if (oh != NULL)
            CU_ASSERT_EQUAL(vmmem_map_harvest(o, oh), 0);
        vmmem_harvest_free(oh);
        vmmem_map_unref(o);
    }
    if (h != NULL)
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);

    /* Accessors and the iterator with NULL or out-of-range arguments. */
    vmmem_harvest_iter it = {0};
    uint64_t gpa = 0, len = 0;
    CU_ASSERT_EQUAL(vmmem_harvest_regions(NULL), 0);
    CU_ASSERT_EQUAL(vmmem_harvest_page_size(NULL), 0);
    CU_ASSERT_PTR_NULL(vmmem_harvest_bitmap(NULL, 0, NULL, NULL));
    CU_ASSERT_PTR_NULL(vmmem_harvest_bitmap(h, 3, NULL, NULL));
    CU_ASSERT_PTR_NULL(vmmem_harvest_bitmap(h, SIZE_MAX, NULL, NULL));
    CU_ASSERT_FALSE(vmmem_harvest_next_run(NULL, &it, &gpa, &len));
    CU_ASSERT_FALSE(vmmem_harvest_next_run(h, NULL, &gpa, &len));
    vmmem_harvest_free(NULL);
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

/* ---- stress: the harvest loses no write --------------------------------------------- */

#define ST_MAP "mmap:addr=0,size=1M;mmap:addr=4M,size=1M"
#define ST_REGION_PAGES 256u
#define ST_PAGES (2 * ST_REGION_PAGES)
#define ST_WRITERS 2
#define ST_MAX_WRITES (1u << 21)    /* per writer */
#define ST_MAX_HARVESTS (1u << 22)
/* The harvester runs at least ST_NSEC and ST_MIN_HARVESTS harvests (a slow
 * host, valgrind or qemu, takes longer rather than doing less); ST_MAX_NSEC
 * only stops a wedged run. */
#define ST_NSEC 1500000000ll
#define ST_MIN_HARVESTS 400u
#define ST_MAX_NSEC 240000000000ll
#define ST_BURST 32u /* per writer and harvest */

struct st_rec {
    uint32_t page;
    uint32_t lo; /* epoch loaded before the write */
    uint32_t hi; /* epoch loaded after it completed */
};

struct st_writer;

struct stress {
    vmmem_map *m;
    struct st_writer *w; /* [ST_WRITERS] */
    vmmem_harvest *h;
    _Atomic uint32_t epoch; /* number of the latest harvest started */
    atomic_bool stop;
    atomic_int writers_done;
    struct timespec t0;
    /* Harvest k (1-based) dirtied pages[off[k] .. off[k+1]), ascending. */
    uint32_t *off;
    uint32_t *pages;
    size_t pages_cap;
    uint32_t nharvests;
    /* Failures seen by the harvester. */
    unsigned long harvest_errors, count_mismatch, run_mismatch, overflow;
};

struct st_writer {
    struct stress *st;
    uint64_t seed;
    struct st_rec *rec;
    size_t n;
    _Atomic size_t progress; /* n, published for the harvester */
    unsigned long errors;
    unsigned long paths[4];
};

static uint64_t st_elapsed_ns(const struct stress *st)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)((t.tv_sec - st->t0.tv_sec) * 1000000000ll + (t.tv_nsec - st->t0.tv_nsec));
}

static uint64_t st_gpa(uint32_t page)
{
    return (page / ST_REGION_PAGES) * 0x400000ull + (page % ST_REGION_PAGES) * (uint64_t)PG;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* One harvest, recorded under the next epoch. */
static void st_harvest(struct stress *st)
{
    uint32_t k = atomic_fetch_add(&st->epoch, 1) + 1;
    int64_t n = vmmem_map_harvest(st->m, st->h);
    uint32_t at = st->off[k];
    if (n < 0) {
        st->harvest_errors++;
        n = 0;
    }
    int64_t bits = 0;
    for (size_t r = 0; r < 2; r++) {
        uint64_t pages = 0;
        const uint64_t *w = vmmem_harvest_bitmap(st->h, r, NULL, &pages);
        if (w == NULL || pages != ST_REGION_PAGES) {
            st->harvest_errors++;
            continue;
        }
        for (size_t i = 0; i < ST_REGION_PAGES / 64; i++) {
            for (uint64_t v = w[i]; v != 0; v &= v - 1) {
                bits++;
                if (at >= st->pages_cap) {
                    st->overflow++;
                    continue;
                }
                st->pages[at++] = (uint32_t)(r * ST_REGION_PAGES + i * 64) +
                                  (uint32_t)__builtin_ctzll(v);
            }
        }
    }
    if (bits != n)
        st->count_mismatch++;
    /* The runs cover exactly the harvested pages. */
    vmmem_harvest_iter it = {0};
    uint64_t gpa, len, run_pages = 0;
    while (vmmem_harvest_next_run(st->h, &it, &gpa, &len)) {
        if (len == 0 || len % PG != 0 || gpa % PG != 0)
            st->run_mismatch++;
        run_pages += len / PG;
    }
    if ((int64_t)run_pages != n)
        st->run_mismatch++;
    st->off[k + 1] = at;
    st->nharvests = k;
}

static void *st_harvester(void *arg)
{
    struct stress *st = arg;
    size_t seen = 0;
    while (!atomic_load(&st->stop)) {
        uint64_t ns = st_elapsed_ns(st);
        if ((ns >= (uint64_t)ST_NSEC && st->nharvests >= ST_MIN_HARVESTS) ||
            ns >= (uint64_t)ST_MAX_NSEC || st->nharvests + 3 >= ST_MAX_HARVESTS ||
            atomic_load(&st->writers_done) == ST_WRITERS) {
            atomic_store(&st->stop, true);
            break;
        }
        /* Harvest only once some write was recorded since the last harvest, so that idle
         * (descheduled) writers do not let the harvester burn through its budget. */
        size_t progress = 0;
        for (int i = 0; i < ST_WRITERS; i++)
            progress += atomic_load_explicit(&st->w[i].progress, memory_order_relaxed);
        if (progress == seen) {
            sched_yield();
            continue;
        }
        seen = progress;
        st_harvest(st);
    }
    /* Once the writers have stopped: a final harvest. */
    while (atomic_load(&st->writers_done) < ST_WRITERS)
        sched_yield();
    st_harvest(st);
    return NULL;
}

static void *st_writer_main(void *arg)
{
    struct st_writer *w = arg;
    struct stress *st = w->st;
    vmmem_map *m = st->m;
    uint32_t last = UINT32_MAX;
    unsigned since = 0;
    while (w->n < ST_MAX_WRITES && !atomic_load_explicit(&st->stop, memory_order_relaxed)) {
        /* At most ST_BURST writes per harvest: harvests stay sparse (so a lost write is
         * not hidden by another write to the same page) and, with more threads than
         * CPUs, the harvester is not starved. */
        uint32_t now = atomic_load_explicit(&st->epoch, memory_order_relaxed);
        if (now != last) {
            last = now;
            since = 0;
        } else if (since >= ST_BURST) {
            sched_yield();
            continue;
        }
        since++;
        uint64_t r = xorshift(&w->seed);
        uint32_t page = (uint32_t)(r % ST_PAGES);
        uint64_t in = ((r >> 16) % (PG / 8 - 2)) * 8; /* 8-aligned, room for 16 bytes */
        uint64_t gpa = st_gpa(page) + in;
        unsigned path = (unsigned)((r >> 40) % 4);
        uint32_t lo = atomic_load(&st->epoch);
        int rc = 0;
        switch (path) {
        case 0: {
            uint64_t v = r;
            rc = VMMEM_WRITE_OBJ(m, gpa, &v);
            break;
        }
        case 1: {
            size_t len = 1 + (size_t)((r >> 48) % 16);
            int64_t n = vmmem_write(m, gpa, src_buf, len);
            rc = n == (int64_t)len ? 0 : -1;
            break;
        }
        case 2:
            rc = vmmem_store(m, gpa, 8, r, (r >> 50) & 1 ? VMMEM_RELAXED : VMMEM_SEQ_CST);
            break;
        default: {
            vmmem_slice s = {0};
            rc = vmmem_get_slice(m, gpa, 8, &s);
            if (rc == 0) {
                rc = vmmem_slice_write(&s, 0, &r, 8);
                vmmem_slice_release(&s);
            }
            break;
        }
        }
        uint32_t hi = atomic_load(&st->epoch);
        if (rc != 0) {
            w->errors++;
            continue;
        }
        w->paths[path]++;
        w->rec[w->n++] = (struct st_rec){page, lo, hi};
        atomic_store_explicit(&w->progress, w->n, memory_order_relaxed);
    }
    atomic_fetch_add(&st->writers_done, 1);
    return NULL;
}

/* Is page in harvest k? */
static bool st_in(const struct stress *st, uint32_t k, uint32_t page)
{
    if (k == 0 || k > st->nharvests)
        return false;
    size_t a = st->off[k], b = st->off[k + 1];
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (st->pages[mid] < page)
            a = mid + 1;
        else
            b = mid;
    }
    return a < st->off[k + 1] && st->pages[a] == page;
}

static void test_harvest_stress(void)
{
    struct stress st;
    memset(&st, 0, sizeof st);
    atomic_init(&st.epoch, 0);
    atomic_init(&st.stop, false);
    atomic_init(&st.writers_done, 0);
    struct st_writer w[ST_WRITERS];
    memset(w, 0, sizeof w);
    st.w = w;
    st.m = new_map(ST_MAP, VMMEM_MAP_DIRTY_TRACKING, 0);
    if (st.m == NULL)
        return;
    st.h = new_harvest(st.m);
    st.off = calloc(ST_MAX_HARVESTS + 2, sizeof *st.off);
    /* Each harvested (harvest, page) pair stems from at least one write. */
    st.pages_cap = (size_t)ST_WRITERS * ST_MAX_WRITES + ST_PAGES;
    st.pages = calloc(st.pages_cap, sizeof *st.pages);
    uint32_t *min_lo = malloc(ST_PAGES * sizeof *min_lo);
    bool ok = st.h != NULL && st.off != NULL && st.pages != NULL && min_lo != NULL;
    for (int i = 0; i < ST_WRITERS; i++) {
        w[i].st = &st;
        atomic_init(&w[i].progress, 0);
        w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        w[i].rec = malloc(ST_MAX_WRITES * sizeof *w[i].rec);
        ok = ok && w[i].rec != NULL;
    }
    CU_ASSERT_TRUE_FATAL(ok);

    pthread_t ht, wt[ST_WRITERS];
    int started = 0;
    clock_gettime(CLOCK_MONOTONIC, &st.t0);
    VT_ASSERT_RC(pthread_create(&ht, NULL, st_harvester, &st), 0);
    for (int i = 0; i < ST_WRITERS; i++) {
        int rc = pthread_create(&wt[i], NULL, st_writer_main, &w[i]);
        VT_ASSERT_RC(rc, 0);
        if (rc != 0)
            atomic_fetch_add(&st.writers_done, 1); /* lets the harvester finish */
        else
            started |= 1 << i;
    }
    for (int i = 0; i < ST_WRITERS; i++)
        if (started & (1 << i))
            pthread_join(wt[i], NULL);
    pthread_join(ht, NULL);
    uint64_t ns = st_elapsed_ns(&st);

    /* Every write (p, lo, hi) completed while the epoch was in [lo, hi], so its page is in
     * some harvest in [lo, hi + 1].  The plain form, "in harvest lo or lo + 1",
     * is the same check when hi == lo; a writer preempted between loading the epoch and
     * writing legitimately widens it (counted as "delayed"). */
    unsigned long checked = 0, violations = 0, strict_misses = 0, delayed = 0, errors = 0;
    for (uint32_t p = 0; p < ST_PAGES; p++)
        min_lo[p] = UINT32_MAX;
    for (int i = 0; i < ST_WRITERS; i++) {
        errors += w[i].errors;
        for (size_t j = 0; j < w[i].n; j++) {
            const struct st_rec *r = &w[i].rec[j];
            bool seen = false;
            for (uint32_t k = r->lo; k <= r->hi + 1 && !seen; k++)
                seen = st_in(&st, k, r->page);
            checked++;
            if (!seen) {
                if (violations < 10)
                    fprintf(stdout, "\n    lost write: writer %d page %u epochs [%u, %u]", i,
                            r->page, r->lo, r->hi);
                violations++;
            }
            if (!st_in(&st, r->lo, r->page) && !st_in(&st, r->lo + 1, r->page)) {
                strict_misses++;
                delayed += r->hi > r->lo;
            }
            if (r->lo < min_lo[r->page])
                min_lo[r->page] = r->lo;
        }
    }
    /* No harvest reports a page nobody had started writing by then. */
    unsigned long spurious = 0, entries = 0, nonempty = 0;
    for (uint32_t k = 1; k <= st.nharvests; k++) {
        nonempty += st.off[k + 1] > st.off[k];
        for (uint32_t i = st.off[k]; i < st.off[k + 1]; i++, entries++)
            if (min_lo[st.pages[i]] > k)
                spurious++;
    }
    fprintf(stdout,
            "\n    stress: %.2f s, %lu writes checked (writer 0: %zu, writer 1: %zu; paths "
            "obj/write/store/slice %lu/%lu/%lu/%lu), %u harvests (%lu non-empty, %lu pages), "
            "violations %lu, plain-check misses %lu (all with a delayed writer: %lu), "
            "spurious %lu, write errors %lu, harvest errors %lu, count mismatches %lu, run "
            "mismatches %lu, overflow %lu\n",
            (double)ns / 1e9, checked, w[0].n, w[1].n, w[0].paths[0] + w[1].paths[0],
            w[0].paths[1] + w[1].paths[1], w[0].paths[2] + w[1].paths[2],
            w[0].paths[3] + w[1].paths[3], st.nharvests, nonempty, entries, violations,
            strict_misses, delayed, spurious, errors, st.harvest_errors, st.count_mismatch,
            st.run_mismatch, st.overflow);
    CU_ASSERT_EQUAL(violations, 0);
    CU_ASSERT_EQUAL(spurious, 0);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(st.harvest_errors, 0);
    CU_ASSERT_EQUAL(st.count_mismatch, 0);
    CU_ASSERT_EQUAL(st.run_mismatch, 0);
    CU_ASSERT_EQUAL(st.overflow, 0);
    /* The run was not trivial: many writes, many harvests, every path used. */
    CU_ASSERT_TRUE(checked >= 10000);
    CU_ASSERT_TRUE(st.nharvests >= 100);
    CU_ASSERT_TRUE(nonempty >= 50);
    for (int p = 0; p < 4; p++)
        CU_ASSERT_TRUE(w[0].paths[p] + w[1].paths[p] > 0);
    /* After the final harvest, nothing is left. */
    CU_ASSERT_EQUAL(vmmem_map_harvest(st.m, st.h), 0);

    for (int i = 0; i < ST_WRITERS; i++)
        free(w[i].rec);
    free(min_lo);
    free(st.pages);
    free(st.off);
    vmmem_harvest_free(st.h);
    vmmem_map_unref(st.m);
}

/* ---- the vhost-user log ------------------------------------------------------------- */

/* R0 [0,64K) R1 [64K,128K) touching, R2 [256K,272K), R3 [1M,1M+16K) beyond a 16-byte log
 * (16 * 8 pages of 4K = 512K of guest space). */
#define LOGMAP                                                                                \
    "mmap:addr=0,size=64K;mmap:addr=64K,size=64K;mmap:addr=256K,size=16K;mmap:addr=1M,size=16K"
#define LOG_BYTES 16u

/* A memfd of len bytes, every byte = fill; *view maps all of it. */
static int log_memfd(size_t len, uint8_t fill, uint8_t **view)
{
    *view = NULL;
    int fd = memfd_create("vmmem-test-log", MFD_CLOEXEC);
    CU_ASSERT_TRUE(fd >= 0);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)len) != 0) {
        CU_FAIL("ftruncate");
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CU_ASSERT_NOT_EQUAL(p, MAP_FAILED);
    if (p == MAP_FAILED) {
        close(fd);
        return -1;
    }
    memset(p, fill, len);
    *view = p;
    return fd;
}

/* Set the log bits of [gpa, gpa+len) in want (n bytes). */
static void log_set(uint8_t *want, size_t n, uint64_t gpa, uint64_t len)
{
    for (uint64_t p = gpa / PG; p <= (gpa + len - 1) / PG; p++)
        if (p / 8 < n)
            want[p / 8] |= (uint8_t)(1u << (p % 8));
}

static void expect_log(const uint8_t *log, const uint8_t *want, size_t n, const char *what,
                       int line)
{
    if (memcmp(log, want, n) != 0) {
        fprintf(stdout, "\n    line %d (%s): log", line, what);
        for (size_t i = 0; i < n; i++)
            fprintf(stdout, " %02x", log[i]);
        fprintf(stdout, ", want");
        for (size_t i = 0; i < n; i++)
            fprintf(stdout, " %02x", want[i]);
    }
    CU_ASSERT_EQUAL(memcmp(log, want, n), 0);
}

#define EXPECT_LOG(log, want, what) expect_log((log), (want), LOG_BYTES, (what), __LINE__)

/* Clear the log, run one write path, expect exactly the bits of [gpa, gpa+len). */
#define LOG_CASE(log, gpa, len, what, call)                                                   \
    do {                                                                                      \
        uint8_t want_[LOG_BYTES] = {0};                                                       \
        memset((log), 0, LOG_BYTES);                                                          \
        call;                                                                                 \
        log_set(want_, LOG_BYTES, (gpa), (len));                                              \
        expect_log((log), want_, LOG_BYTES, (what), __LINE__);                                \
    } while (0)

static void log_write_paths(vmmem_map *m, uint8_t *log)
{
    uint64_t v64 = 0x0102030405060708ull;
    vmmem_slice s = {0}, t = {0};
    LOG_CASE(log, 0x1000, 1, "write", CU_ASSERT_EQUAL(vmmem_write(m, 0x1abc, src_buf, 1), 1));
    LOG_CASE(log, 0xfff0, 0x20, "write across the seam",
             CU_ASSERT_EQUAL(vmmem_write(m, 0xfff0, src_buf, 0x20), 0x20));
    LOG_CASE(log, 0x12000, 0x2001, "write_slice",
             VT_ASSERT_RC(vmmem_write_slice(m, 0x12000, src_buf, 0x2001), 0));
    LOG_CASE(log, 0x3ffc, 8, "write_obj", VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 0x3ffc, &v64), 0));
    LOG_CASE(log, 0x40008, 8, "store",
             VT_ASSERT_RC(vmmem_store(m, 0x40008, 8, 1, VMMEM_SEQ_CST), 0));
    LOG_CASE(log, 0x43fff, 1, "store of one byte",
             VT_ASSERT_RC(vmmem_store(m, 0x43fff, 1, 1, VMMEM_RELAXED), 0));

    VT_ASSERT_RC(vmmem_get_slice(m, 0x5000, 0x3000, &s), 0);
    LOG_CASE(log, 0x5fff, 1, "slice_write", VT_ASSERT_RC(vmmem_slice_write(&s, 0xfff, src_buf, 1), 0));
    LOG_CASE(log, 0x5000, 0x1001, "slice_copy_from",
             CU_ASSERT_EQUAL(vmmem_slice_copy_from(&s, src_buf, 0x1001), 0x1001));
    LOG_CASE(log, 0x7ff8, 8, "slice_store",
             VT_ASSERT_RC(vmmem_slice_store(&s, 0x2ff8, 8, 3, VMMEM_RELEASE), 0));
    VT_ASSERT_RC(vmmem_slice_offset(&s, 0x1800, &t), 0);
    LOG_CASE(log, 0x6800, 0x10, "slice_write on a derived slice",
             VT_ASSERT_RC(vmmem_slice_write(&t, 0, src_buf, 0x10), 0));
    vmmem_slice hb = vmmem_slice_from_buffer(src_buf, 0x20);
    LOG_CASE(log, 0x6800, 0x20, "copy_to_slice",
             CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&hb, &t), 0x20));
    vmmem_slice_release(&s);

    int zfd = open("/dev/zero", O_RDONLY);
    CU_ASSERT_TRUE(zfd >= 0);
    if (zfd >= 0) {
        LOG_CASE(log, 0x9f80, 0x100, "read_from_fd",
                 CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0x9f80, zfd, 0x100), 0x100));
        close(zfd);
    }
    LOG_CASE(log, 0xc000, 0x1001, "mark_dirty", VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0xc000, 0x1001), 0));
    /* The whole of R0 and R1: bytes 0..3 all ones. */
    LOG_CASE(log, 0, 0x20000, "writes over 128K",
             for (uint64_t a = 0; a < 0x20000; a += 0x4000)
                 CU_ASSERT_EQUAL(vmmem_write(m, a, src_buf, 0x4000), 0x4000));

    /* Reads, and failed writes, mark nothing. */
    uint8_t zero[LOG_BYTES] = {0};
    memset(log, 0, LOG_BYTES);
    uint64_t v = 0;
    CU_ASSERT_EQUAL(vmmem_read(m, 0, src_buf + 0x2000, 0x1000), 0x1000);
    VT_ASSERT_RC(vmmem_read_obj(m, 0x10000, &v, 8), 0);
    VT_ASSERT_RC(vmmem_load(m, 0x40000, 8, &v, VMMEM_ACQUIRE), 0);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x1f000, src_buf, 0x1001), VMMEM_EPARTIAL);
    VT_ASSERT_RC(vmmem_store(m, 0x1004, 8, 1, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    EXPECT_LOG(log, zero, "reads and failed writes");

    /* A write beyond the log is ignored without error (the map's bitmap still marks). */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x100000, src_buf, 0x10), 0x10);
    VT_ASSERT_RC(vmmem_store(m, 0x103ff8, 8, 1, VMMEM_SEQ_CST), 0);
    EXPECT_LOG(log, zero, "write beyond the log");
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x100000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x103000));
}

static void test_log_paths(void)
{
    vmmem_map *m = vt_map(LOGMAP);
    if (m == NULL)
        return;
    uint8_t *log = NULL;
    int fd = log_memfd(LOG_BYTES, 0, &log);
    if (fd >= 0) {
        CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, LOG_BYTES), 0);
        CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m)); /* attach turns tracking on */
        /* The mapping is the library's own: the fd may be closed at once. */
        close(fd);
        log_write_paths(m, log);

        /* A harvest clears the map's bitmaps, never the front-end's log. */
        memset(log, 0, LOG_BYTES);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x2000, src_buf, 1), 1);
        vmmem_harvest *h = new_harvest(m);
        if (h != NULL)
            CU_ASSERT_TRUE(vmmem_map_harvest(m, h) > 0);
        vmmem_harvest_free(h);
        uint8_t want[LOG_BYTES] = {0x04};
        EXPECT_LOG(log, want, "after a harvest");

        /* Detached: writes no longer touch the log; detaching again is ENOENT. */
        VT_ASSERT_RC(vmmem_map_detach_log(m), 0);
        memset(log, 0, LOG_BYTES);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x1000, src_buf, 0x2000), 0x2000);
        VT_ASSERT_RC(vmmem_store(m, 0x40000, 8, 1, VMMEM_SEQ_CST), 0);
        vmmem_slice s = {0};
        VT_ASSERT_RC(vmmem_get_slice(m, 0x10000, 0x10, &s), 0);
        VT_ASSERT_RC(vmmem_slice_write(&s, 0, src_buf, 4), 0);
        vmmem_slice_release(&s);
        uint8_t zero[LOG_BYTES] = {0};
        EXPECT_LOG(log, zero, "after detach");
        VT_ASSERT_RC(vmmem_map_detach_log(m), -ENOENT);
        VT_ASSERT_RC(vmmem_map_detach_log(m), -ENOENT);
        munmap(log, LOG_BYTES);
    }
    vmmem_map_unref(m);
}

/* The log's page is always 4 KiB, whatever the map's dirty page size. */
static void test_log_page_sizes(void)
{
    static const uint64_t sizes[] = {128, 0x10000};
    for (size_t i = 0; i < 2; i++) {
        vmmem_map *m = new_map(LOGMAP, VMMEM_MAP_DIRTY_TRACKING, sizes[i]);
        if (m == NULL)
            continue;
        uint8_t *log = NULL;
        int fd = log_memfd(LOG_BYTES, 0, &log);
        if (fd >= 0) {
            VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, LOG_BYTES), 0);
            LOG_CASE(log, 0x5000, 1, "one byte", CU_ASSERT_EQUAL(vmmem_write(m, 0x5000, src_buf, 1), 1));
            LOG_CASE(log, 0x1f80, 0x100, "two log pages",
                     CU_ASSERT_EQUAL(vmmem_write(m, 0x1f80, src_buf, 0x100), 0x100));
            LOG_CASE(log, 0xfff8, 0x10, "across the seam",
                     CU_ASSERT_EQUAL(vmmem_write(m, 0xfff8, src_buf, 0x10), 0x10));
            VT_ASSERT_RC(vmmem_map_detach_log(m), 0);
            munmap(log, LOG_BYTES);
            close(fd);
        }
        vmmem_map_unref(m);
    }
}

/* A log smaller than the guest: pages past its end are dropped, the bytes after it in the
 * fd stay untouched. */
static void test_log_short(void)
{
    vmmem_map *m = new_map(LOGMAP, 0, 0);
    if (m == NULL)
        return;
    uint8_t *mem = NULL;
    int fd = log_memfd(4096, 0, &mem);
    if (fd >= 0) {
        /* 1 byte = pages 0..7 = [0, 32K). */
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, 1), 0);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x7ff0, src_buf, 0x20), 0x20); /* pages 7 and 8 */
        CU_ASSERT_EQUAL(vmmem_write(m, 0x8000, src_buf, 0x4000), 0x4000); /* pages 8..15 */
        CU_ASSERT_EQUAL(vmmem_write(m, 0xc000, src_buf, 0x4000), 0x4000);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x10000, src_buf, 1), 1);
        CU_ASSERT_EQUAL(mem[0], 0x80);
        unsigned stray = 0;
        for (size_t i = 1; i < 4096; i++)
            stray += mem[i] != 0;
        CU_ASSERT_EQUAL(stray, 0);
        CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x8000));
        CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x10000));
        munmap(mem, 4096);
        close(fd);
    }
    vmmem_map_unref(m);
}

/* The log at an offset into a larger fd (page-aligned and not): only its bytes change. */
static void test_log_offset(void)
{
    vmmem_map *m = vt_map(LOGMAP);
    if (m == NULL)
        return;
    uint8_t *mem = NULL;
    int fd = log_memfd(3 * 4096, 0xee, &mem);
    static const uint64_t offs[] = {4096, 4096 + 100, 8192 - LOG_BYTES};
    for (size_t i = 0; fd >= 0 && i < 3; i++) {
        memset(mem, 0xee, 3 * 4096);
        uint64_t o = offs[i];
        memset(mem + o, 0, LOG_BYTES);
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, o, LOG_BYTES), 0);
        CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
        CU_ASSERT_EQUAL(vmmem_write(m, 0x3000, src_buf, 1), 1);         /* page 3 */
        VT_ASSERT_RC(vmmem_store(m, 0x43ff8, 8, 1, VMMEM_SEQ_CST), 0); /* page 67 */
        CU_ASSERT_EQUAL(vmmem_write(m, 0x100000, src_buf, 1), 1);      /* beyond */
        uint8_t want[LOG_BYTES] = {0};
        want[0] = 0x08;
        want[8] = 0x08;
        expect_log(mem + o, want, LOG_BYTES, "log at an offset", __LINE__);
        unsigned stray = 0;
        for (size_t b = 0; b < 3 * 4096; b++)
            if (b < o || b >= o + LOG_BYTES)
                stray += mem[b] != 0xee;
        if (stray != 0)
            fprintf(stdout, "\n    offset %llu: %u bytes outside the log changed",
                    (unsigned long long)o, stray);
        CU_ASSERT_EQUAL(stray, 0);
        VT_ASSERT_RC(vmmem_map_detach_log(m), 0);
    }
    if (fd >= 0) {
        munmap(mem, 3 * 4096);
        close(fd);
    }
    vmmem_map_unref(m);
}

static void test_log_errors(void)
{
    vmmem_map *m = vt_map(LOGMAP);
    if (m == NULL)
        return;
    uint8_t *mem = NULL;
    int fd = log_memfd(4096, 0, &mem);
    if (fd >= 0) {
        VT_ASSERT_RC(vmmem_map_attach_log(NULL, fd, 0, 16), -EINVAL);
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, 0), -EINVAL);
        VT_ASSERT_RC(vmmem_map_attach_log(m, -1, 0, 16), -EBADF);
        int closed = dup(fd);
        CU_ASSERT_TRUE(closed >= 0);
        close(closed);
        VT_ASSERT_RC(vmmem_map_attach_log(m, closed, 0, 16), -EBADF);
        /* Past the end of a regular file. */
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, 4097), -ERANGE);
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 4096, 1), -ERANGE);
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 4081, 16), -ERANGE);
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 8192, 16), -ERANGE);
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, UINT64_MAX, 16), -ERANGE);
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 16, UINT64_MAX), -ERANGE);
        VT_ASSERT_RC(vmmem_map_detach_log(m), -ENOENT); /* nothing attached */
        VT_ASSERT_RC(vmmem_map_detach_log(NULL), -EINVAL);
        /* Ending exactly at the end is fine. */
        VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 4080, 16), 0);
        CU_ASSERT_EQUAL(vmmem_write(m, 0x8000, src_buf, 1), 1);
        CU_ASSERT_EQUAL(mem[4080 + 1], 0x01);
        VT_ASSERT_RC(vmmem_map_detach_log(m), 0);
        VT_ASSERT_RC(vmmem_map_detach_log(m), -ENOENT);
        munmap(mem, 4096);
        close(fd);
    }
    vmmem_map_unref(m);
}

static const struct vt_test harvest_tests[] = {
    {"counts, bitmaps, runs, clearing", test_harvest_basic},
    {"tracking switched on later / never", test_harvest_switch},
    {"runs merge across touching regions only", test_harvest_merge},
    {"partial last page", test_harvest_partial_page},
    {"page size 128", test_harvest_page_128},
    {"page size 64K", test_harvest_page_64k},
    {"errors", test_harvest_errors},
    {NULL, NULL},
};

static const struct vt_test stress_tests[] = {
    {"2 writers + 1 harvester lose no write", test_harvest_stress},
    {NULL, NULL},
};

static const struct vt_test log_tests[] = {
    {"every write path sets exactly its bits", test_log_paths},
    {"log pages are 4K whatever the page size", test_log_page_sizes},
    {"pages past a short log are ignored", test_log_short},
    {"log at an offset into the fd", test_log_offset},
    {"errors", test_log_errors},
    {NULL, NULL},
};

static const struct vt_suite s1 = {"harvest", init_src, NULL, harvest_tests};
static const struct vt_suite s2 = {"harvest stress", init_src, NULL, stress_tests};
static const struct vt_suite s3 = {"vhost-user log", init_src, NULL, log_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&s1, &s2, &s3, NULL};
    return vt_main(suites);
}

/*
 * Dirty-page tracking (dirty.h): every write path marks exactly the pages it
 * touched while tracking is on, reads never mark, derived slices mark at
 * shifted offsets, page sizes, and the built-in atomic bitmap.
 * Conformance floor: vm-memory's bitmap tests and the dirty helpers of
 * volatile_memory.rs / mmap/mod.rs.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

/*
 * Pages of 4 KiB: region A [0,0x4000) = pages 0-3, region B [0x4000,0x8000)
 * = pages 4-7 (touching A), hole = pages 8-9, region C [0xA000,0xC000) =
 * pages 10-11.
 */
#define DMAP "mmap:addr=0,size=0x4000;mmap:addr=0x4000,size=0x4000;mmap:addr=0xA000,size=0x2000"
#define NPAGES 12
#define PG 0x1000u
#define P(n) (1u << (n))

static uint8_t src_buf[0x3000];

static vmmem_map *new_map(const char *cfg, uint32_t flags, uint64_t page_size)
{
    struct vmmem_map_options o = {
        .struct_size = sizeof o, .flags = flags, .dirty_page_size = page_size};
    vmmem_map *m = NULL;
    int rc = vmmem_map_from_config(&m, NULL, cfg, &o);
    VT_ASSERT_RC(rc, 0);
    return rc == 0 ? m : NULL;
}

static vmmem_map *tracked(void)
{
    return new_map(DMAP, VMMEM_MAP_DIRTY_TRACKING, 0);
}

/* Dirty pages of a DMAP map as a bit mask; the first and last byte of each
 * page must agree. */
static uint32_t dirty_mask(const vmmem_map *m)
{
    uint32_t mask = 0;
    for (unsigned p = 0; p < NPAGES; p++) {
        bool a = vmmem_map_is_dirty(m, (uint64_t)p * PG);
        bool b = vmmem_map_is_dirty(m, (uint64_t)p * PG + PG - 1);
        if (a != b)
            fprintf(stdout, "\n    page %u: first byte %d, last byte %d", p, a, b);
        CU_ASSERT_EQUAL(a, b);
        if (a)
            mask |= P(p);
    }
    return mask;
}

static void expect_dirty(const vmmem_map *m, uint32_t want, const char *what, int line)
{
    uint32_t got = dirty_mask(m);
    if (got != want)
        fprintf(stdout, "\n    line %d (%s): dirty pages 0x%03x, want 0x%03x", line,
                what ? what : "", got, want);
    CU_ASSERT_EQUAL(got, want);
}
#define EXPECT_DIRTY(m, want) expect_dirty((m), (want), NULL, __LINE__)

/* Whole-region slice holding addr; *off = addr's offset in it. */
static int region_slice(const vmmem_map *m, vmmem_gaddr_t addr, vmmem_slice *s, size_t *off)
{
    uint64_t o = 0;
    const vmmem_region *r = vmmem_map_find(m, addr, &o);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r == NULL)
        return -1;
    *off = (size_t)o;
    int rc = vmmem_get_slice(m, vmmem_region_start(r), (size_t)vmmem_region_size(r), s);
    VT_ASSERT_RC(rc, 0);
    return rc;
}

/* ---- write paths, table-driven ---------------------------------------------------- */

struct wcase {
    vmmem_gaddr_t addr;
    size_t len;
    uint32_t mask;
    bool one_region; /* the range lies in one region (slice writers) */
};

static const struct wcase wcases[] = {
    {0x0000, 1, P(0), true},               /* address 0 */
    {0x0fff, 1, P(0), true},               /* last byte of a page */
    {0x0fff, 2, P(0) | P(1), true},        /* page seam */
    {0x2000, 0x1000, P(2), true},          /* exactly one page */
    {0x2800, 8, P(2), true},               /* middle */
    {0x1000, 0x2000, P(1) | P(2), true},   /* two whole pages */
    {0x3ff8, 8, P(3), true},               /* end of region A */
    {0x3ffc, 8, P(3) | P(4), false},       /* spans regions A and B */
    {0x2ffc, 0x1008, P(2) | P(3) | P(4), false},
    {0x4000, 4, P(4), true},               /* start of region B */
    {0x7ff8, 8, P(7), true},               /* end of region B */
    {0xa000, 2, P(10), true},              /* start of region C */
    {0xbff8, 8, P(11), true},              /* last bytes of the map */
    {0x5000, 0, 0, true},                  /* zero length marks nothing */
};
#define NWCASES (sizeof wcases / sizeof wcases[0])

typedef int (*writer_fn)(const vmmem_map *m, vmmem_gaddr_t a, const void *buf, size_t len);

static int w_write(const vmmem_map *m, vmmem_gaddr_t a, const void *buf, size_t len)
{
    int64_t n = vmmem_write(m, a, buf, len);
    CU_ASSERT_EQUAL(n, (int64_t)len);
    return n == (int64_t)len ? 0 : -1;
}

static int w_write_slice(const vmmem_map *m, vmmem_gaddr_t a, const void *buf, size_t len)
{
    return vmmem_write_slice(m, a, buf, len);
}

static int w_write_obj(const vmmem_map *m, vmmem_gaddr_t a, const void *buf, size_t len)
{
    return vmmem_write_obj(m, a, buf, len);
}

static int w_slice_write(const vmmem_map *m, vmmem_gaddr_t a, const void *buf, size_t len)
{
    vmmem_slice s = {0};
    size_t off;
    if (region_slice(m, a, &s, &off) != 0)
        return -1;
    int rc = vmmem_slice_write(&s, off, buf, len);
    vmmem_slice_release(&s);
    return rc;
}

/* copy_from with a longer buffer: only min(len, slice) bytes may be marked. */
static int w_slice_copy_from(const vmmem_map *m, vmmem_gaddr_t a, const void *buf, size_t len)
{
    vmmem_slice s = {0}, sub = {0};
    size_t off;
    if (region_slice(m, a, &s, &off) != 0)
        return -1;
    int rc = vmmem_slice_subslice(&s, off, len, &sub);
    VT_ASSERT_RC(rc, 0);
    if (rc == 0) {
        size_t n = vmmem_slice_copy_from(&sub, buf, len + 0x100);
        CU_ASSERT_EQUAL(n, len);
        rc = n == len ? 0 : -1;
    }
    vmmem_slice_release(&s);
    return rc;
}

/* copy_to_slice from a host-buffer slice that is longer than the target. */
static int w_copy_to_slice(const vmmem_map *m, vmmem_gaddr_t a, const void *buf, size_t len)
{
    vmmem_slice s = {0}, dst = {0};
    size_t off;
    if (region_slice(m, a, &s, &off) != 0)
        return -1;
    int rc = vmmem_slice_subslice(&s, off, len, &dst);
    VT_ASSERT_RC(rc, 0);
    if (rc == 0) {
        vmmem_slice src = vmmem_slice_from_buffer((void *)(uintptr_t)buf, len + 0x100);
        size_t n = vmmem_slice_copy_to_slice(&src, &dst);
        CU_ASSERT_EQUAL(n, len);
        rc = n == len ? 0 : -1;
    }
    vmmem_slice_release(&s);
    return rc;
}

struct writer {
    const char *name;
    writer_fn fn;
    bool one_region_only;
};

static void run_writer(const struct writer *w)
{
    for (size_t i = 0; i < NWCASES; i++) {
        const struct wcase *c = &wcases[i];
        if (w->one_region_only && !c->one_region)
            continue;
        vmmem_map *m = tracked();
        if (m == NULL)
            return;
        EXPECT_DIRTY(m, 0);
        int rc = w->fn(m, c->addr, src_buf, c->len);
        if (rc != 0)
            fprintf(stdout, "\n    %s(0x%llx, 0x%zx): rc %d", w->name,
                    (unsigned long long)c->addr, c->len, rc);
        CU_ASSERT_EQUAL(rc, 0);
        uint32_t got = dirty_mask(m);
        if (got != c->mask)
            fprintf(stdout, "\n    %s(0x%llx, 0x%zx): dirty pages 0x%03x, want 0x%03x", w->name,
                    (unsigned long long)c->addr, c->len, got, c->mask);
        CU_ASSERT_EQUAL(got, c->mask);
        vmmem_map_unref(m);
    }
}

static void test_dirty_write(void)
{
    static const struct writer w = {"vmmem_write", w_write, false};
    run_writer(&w);
}

static void test_dirty_write_slice(void)
{
    static const struct writer w = {"vmmem_write_slice", w_write_slice, false};
    run_writer(&w);
}

static void test_dirty_write_obj(void)
{
    static const struct writer w = {"vmmem_write_obj", w_write_obj, false};
    run_writer(&w);
}

static void test_dirty_slice_write(void)
{
    static const struct writer w = {"vmmem_slice_write", w_slice_write, true};
    run_writer(&w);
}

static void test_dirty_slice_copy_from(void)
{
    static const struct writer w = {"vmmem_slice_copy_from", w_slice_copy_from, true};
    run_writer(&w);
}

static void test_dirty_copy_to_slice(void)
{
    static const struct writer w = {"vmmem_slice_copy_to_slice", w_copy_to_slice, true};
    run_writer(&w);
}

/* Short and failed writes mark only what was written. */
static void test_dirty_short_and_failed(void)
{
    vmmem_map *m = tracked();
    if (m == NULL)
        return;
    /* vmmem_write stops at the hole after 2 bytes: page 7 only. */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x7ffe, src_buf, 0x1000), 2);
    EXPECT_DIRTY(m, P(7));
    vmmem_map_unref(m);

    m = tracked();
    if (m == NULL)
        return;
    /* All-or-error paths touch nothing on error. */
    VT_ASSERT_RC(vmmem_write_slice(m, 0x7ff0, src_buf, 0x20), VMMEM_EPARTIAL);
    VT_ASSERT_RC(vmmem_write_obj(m, 0x7ffc, src_buf, 8), VMMEM_EPARTIAL);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x8000, src_buf, 8), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x9000, src_buf, 8), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_store(m, 0x3ffc, 8, 1, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    VT_ASSERT_RC(vmmem_store(m, 0x8000, 8, 1, VMMEM_SEQ_CST), VMMEM_EINVALID_ADDRESS);
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 0x100, &s), 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0xfc, src_buf, 8), VMMEM_EOUT_OF_BOUNDS);
    VT_ASSERT_RC(vmmem_slice_store(&s, 2, 4, 1, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    VT_ASSERT_RC(vmmem_slice_store(&s, 0x100, 1, 1, VMMEM_SEQ_CST), VMMEM_EOUT_OF_BOUNDS);
    vmmem_slice_release(&s);
    EXPECT_DIRTY(m, 0);
    vmmem_map_unref(m);
}

struct scase {
    vmmem_gaddr_t addr;
    size_t size;
    uint32_t mask;
};

static const struct scase scases[] = {
    {0x0000, 1, P(0)},  {0x0fff, 1, P(0)},   {0x1000, 2, P(1)},  {0x2800, 8, P(2)},
    {0x3ffc, 4, P(3)},  {0x3ff8, 8, P(3)},   {0x4000, 8, P(4)},  {0x6002, 2, P(6)},
    {0x7ff8, 8, P(7)},  {0xa000, 4, P(10)},  {0xbff8, 8, P(11)},
};

static void test_dirty_store(void)
{
    for (size_t i = 0; i < sizeof scases / sizeof scases[0]; i++) {
        const struct scase *c = &scases[i];
        vmmem_map *m = tracked();
        if (m == NULL)
            return;
        VT_ASSERT_RC(vmmem_store(m, c->addr, c->size, 0x5a5a5a5a5a5a5a5aull, VMMEM_SEQ_CST), 0);
        expect_dirty(m, c->mask, "vmmem_store", __LINE__);
        vmmem_map_unref(m);

        m = tracked();
        if (m == NULL)
            return;
        vmmem_slice s = {0};
        size_t off;
        if (region_slice(m, c->addr, &s, &off) == 0) {
            VT_ASSERT_RC(vmmem_slice_store(&s, off, c->size, 0xa5, VMMEM_RELEASE), 0);
            vmmem_slice_release(&s);
        }
        expect_dirty(m, c->mask, "vmmem_slice_store", __LINE__);
        vmmem_map_unref(m);
    }
}

/* ---- read_from_fd: only the bytes actually read --------------------------------- */

static int pipe_with(size_t n, int *rfd)
{
    int fds[2];
    if (pipe(fds) != 0) {
        CU_FAIL("pipe");
        return -1;
    }
    uint8_t data[64];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(0xc0 + i);
    CU_ASSERT_EQUAL(write(fds[1], data, n), (ssize_t)n);
    close(fds[1]);
    *rfd = fds[0];
    return 0;
}

static void test_dirty_read_from_fd(void)
{
    static const struct {
        vmmem_gaddr_t addr;
        size_t in_pipe, count;
        uint32_t mask;
    } cases[] = {
        {0x0ffa, 10, 0x3000, P(0) | P(1)}, /* 10 bytes over a page seam, not 0x3000 */
        {0x2000, 10, 0x1800, P(2)},
        {0x3ffe, 4, 0x100, P(3) | P(4)},   /* 2 bytes in A, 2 in B */
        {0x7ff8, 8, 8, P(7)},
        {0x5000, 0, 0x1000, 0},            /* EOF at once */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vmmem_map *m = tracked();
        if (m == NULL)
            return;
        int fd;
        if (pipe_with(cases[i].in_pipe, &fd) != 0) {
            vmmem_map_unref(m);
            return;
        }
        int64_t n = vmmem_read_from_fd(m, cases[i].addr, fd, cases[i].count);
        close(fd);
        if (cases[i].in_pipe > 0) {
            CU_ASSERT_EQUAL(n, (int64_t)cases[i].in_pipe);
            uint8_t got[64];
            CU_ASSERT_EQUAL(vmmem_read(m, cases[i].addr, got, cases[i].in_pipe),
                            (int64_t)cases[i].in_pipe);
            for (size_t j = 0; j < cases[i].in_pipe; j++)
                CU_ASSERT_EQUAL(got[j], (uint8_t)(0xc0 + j));
        } else {
            CU_ASSERT(n <= 0);
        }
        expect_dirty(m, cases[i].mask, "vmmem_read_from_fd", __LINE__);
        vmmem_map_unref(m);
    }

    /* A full read from /dev/zero marks the whole range. */
    vmmem_map *m = tracked();
    if (m == NULL)
        return;
    int fd = open("/dev/zero", O_RDONLY);
    CU_ASSERT(fd >= 0);
    if (fd >= 0) {
        CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0x5800, fd, 0x1000), 0x1000);
        EXPECT_DIRTY(m, P(5) | P(6));
        VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0xb000, fd, 0x10), 0);
        EXPECT_DIRTY(m, P(5) | P(6) | P(11));
        close(fd);
    }
    vmmem_map_unref(m);
}

/* ---- copy_to_slice marks the destination only ------------------------------------ */

static void test_dirty_copy_to_slice_dest_only(void)
{
    vmmem_map *m = tracked();
    if (m == NULL)
        return;
    vmmem_slice src = {0}, dst = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0xa000, 0x100, &src), 0);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x5000, 0x80, &dst), 0);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&src, &dst), 0x80);
    EXPECT_DIRTY(m, P(5));
    /* Guest -> host buffer: nothing in the map. */
    uint8_t hb[0x40];
    vmmem_slice h = vmmem_slice_from_buffer(hb, sizeof hb);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&src, &h), sizeof hb);
    EXPECT_DIRTY(m, P(5));
    vmmem_slice_release(&src);
    vmmem_slice_release(&dst);
    vmmem_map_unref(m);
}

/* ---- reads never mark ------------------------------------------------------------- */

static void test_dirty_reads_never_mark(void)
{
    vmmem_map *m = tracked();
    if (m == NULL)
        return;
    uint8_t buf[0x2000];
    uint64_t v;
    CU_ASSERT_EQUAL(vmmem_read(m, 0x3000, buf, 0x2000), 0x2000);
    CU_ASSERT_EQUAL(vmmem_read(m, 0x7000, buf, 0x2000), 0x1000);
    VT_ASSERT_RC(vmmem_read_slice(m, 0, buf, 0x2000), 0);
    VT_ASSERT_RC(vmmem_read_obj(m, 0x3ffc, buf, 8), 0);
    VT_ASSERT_RC(vmmem_load(m, 0xa000, 8, &v, VMMEM_SEQ_CST), 0);
    uint32_t le;
    VT_ASSERT_RC(vmmem_read_le32(m, 0xb000, &le), 0);
    int fd = open("/dev/null", O_WRONLY);
    CU_ASSERT(fd >= 0);
    if (fd >= 0) {
        CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 0x1000, fd, 0x1000), 0x1000);
        VT_ASSERT_RC(vmmem_write_all_to_fd(m, 0x6000, fd, 0x10), 0);
        close(fd);
    }
    vmmem_slice s = {0}, sub = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x4000, 0x4000, &s), 0);
    VT_ASSERT_RC(vmmem_slice_read(&s, 0x100, buf, 0x100), 0);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to(&s, buf, sizeof buf), sizeof buf);
    VT_ASSERT_RC(vmmem_slice_load(&s, 0x2000, 4, &v, VMMEM_ACQUIRE), 0);
    VT_ASSERT_RC(vmmem_slice_subslice(&s, 0x1000, 0x10, &sub), 0);
    vmmem_slice tail = {0};
    VT_ASSERT_RC(vmmem_slice_split_at(&s, 0x10, &sub, &tail), 0);
    vmmem_slice_release(&s);
    vmmem_slice_iter it;
    vmmem_slices_begin(&it, m, 0, 0xc000);
    while (vmmem_slices_next(&it, &s) > 0)
        vmmem_slice_release(&s);
    EXPECT_DIRTY(m, 0);
    vmmem_map_unref(m);
}

/* ---- derived slices mark at shifted offsets --------------------------------------- */

static void test_dirty_children(void)
{
    vmmem_map *m = tracked();
    if (m == NULL)
        return;
    vmmem_slice s = {0}, c = {0}, h = {0}, t = {0};
    /* Region A from 0x1000: the slice's offset in the region is 0x1000. */
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 0x3000, &s), 0);
    CU_ASSERT_PTR_NOT_NULL(s.bitmap);
    CU_ASSERT_EQUAL(s.bitmap_offset, 0x1000);
    VT_ASSERT_RC(vmmem_slice_subslice(&s, 0x1000, 0x10, &c), 0);
    CU_ASSERT_EQUAL(c.bitmap_offset, 0x2000);
    CU_ASSERT_PTR_EQUAL(c.bitmap, s.bitmap);
    VT_ASSERT_RC(vmmem_slice_write(&c, 0, src_buf, 1), 0);
    EXPECT_DIRTY(m, P(2));
    vmmem_slice_release(&s);
    vmmem_map_unref(m);

    m = tracked();
    if (m == NULL)
        return;
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 0x3000, &s), 0);
    VT_ASSERT_RC(vmmem_slice_offset(&s, 0x2000, &c), 0);
    CU_ASSERT_EQUAL(c.bitmap_offset, 0x3000);
    VT_ASSERT_RC(vmmem_slice_store(&c, 0, 8, 1, VMMEM_SEQ_CST), 0);
    EXPECT_DIRTY(m, P(3));
    vmmem_slice_release(&s);
    vmmem_map_unref(m);

    m = tracked();
    if (m == NULL)
        return;
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 0x3000, &s), 0);
    VT_ASSERT_RC(vmmem_slice_split_at(&s, 0x1800, &h, &t), 0);
    CU_ASSERT_EQUAL(h.bitmap_offset, 0x1000);
    CU_ASSERT_EQUAL(t.bitmap_offset, 0x2800);
    VT_ASSERT_RC(vmmem_slice_write(&h, 0x17ff, src_buf, 1), 0); /* 0x27ff */
    EXPECT_DIRTY(m, P(2));
    VT_ASSERT_RC(vmmem_slice_write(&t, 0x800, src_buf, 1), 0); /* 0x3000 */
    EXPECT_DIRTY(m, P(2) | P(3));
    CU_ASSERT_EQUAL(vmmem_slice_copy_from(&h, src_buf, 1), 1); /* 0x1000 */
    EXPECT_DIRTY(m, P(1) | P(2) | P(3));
    vmmem_slice_release(&s);
    vmmem_map_unref(m);

    /* A later region: offsets are relative to that region. */
    m = tracked();
    if (m == NULL)
        return;
    VT_ASSERT_RC(vmmem_get_slice(m, 0x5000, 0x2000, &s), 0);
    CU_ASSERT_EQUAL(s.bitmap_offset, 0x1000);
    VT_ASSERT_RC(vmmem_slice_offset(&s, 0x1ff8, &c), 0);
    CU_ASSERT_EQUAL(c.bitmap_offset, 0x2ff8);
    VT_ASSERT_RC(vmmem_slice_store(&c, 0, 8, 1, VMMEM_SEQ_CST), 0);
    EXPECT_DIRTY(m, P(6));
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

/* The slice's bitmap is the region's: test, pages and collect agree with the map. */
static void test_dirty_region_bitmap_harvest(void)
{
    vmmem_map *m = tracked();
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_write(m, 0x5000, src_buf, 1), 1);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x7fff, src_buf, 1), 1);
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x4000, 0x4000, &s), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.bitmap);
    CU_ASSERT_EQUAL(vmmem_bitmap_pages(s.bitmap), 4);
    CU_ASSERT_TRUE(vmmem_bitmap_test(s.bitmap, 0x1000));
    CU_ASSERT_TRUE(vmmem_bitmap_test(s.bitmap, 0x3000));
    CU_ASSERT_FALSE(vmmem_bitmap_test(s.bitmap, 0));
    uint64_t w[2] = {0, 0xdead};
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(s.bitmap, w, 2), 1);
    CU_ASSERT_EQUAL(w[0], 0xAull); /* pages 1 and 3 of region B */
    CU_ASSERT_EQUAL(w[1], 0xdead);
    EXPECT_DIRTY(m, 0);
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

/* ---- marking by hand, switching, options ----------------------------------------- */

static void test_dirty_mark_by_hand(void)
{
    vmmem_map *m = tracked();
    if (m == NULL)
        return;
    /* Writes through a raw host pointer are not tracked. */
    void *h = NULL;
    size_t len = 0x100;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x6000, &h, &len), 0);
    if (h != NULL)
        memset(h, 0x42, 0x10);
    EXPECT_DIRTY(m, 0);
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0x6000, 0x10), 0);
    EXPECT_DIRTY(m, P(6));
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0x1000, 0), 0);
    EXPECT_DIRTY(m, P(6));
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0x3fff, 2), 0); /* across the A/B seam */
    EXPECT_DIRTY(m, P(3) | P(4) | P(6));
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0xa000, 0x2000), 0);
    EXPECT_DIRTY(m, P(3) | P(4) | P(6) | P(10) | P(11));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x8000)); /* hole */
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, UINT64_MAX));
    vmmem_map_unref(m);
}

static void test_dirty_tracking_off(void)
{
    vmmem_map *m = new_map(DMAP, 0, 0);
    if (m == NULL)
        return;
    CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
    CU_ASSERT_EQUAL(vmmem_write(m, 0, src_buf, 0x2000), 0x2000);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x3ff0, src_buf, 0x20), 0);
    VT_ASSERT_RC(vmmem_write_obj(m, 0x6000, src_buf, 8), 0);
    VT_ASSERT_RC(vmmem_store(m, 0xa000, 8, 1, VMMEM_SEQ_CST), 0);
    int fd = open("/dev/zero", O_RDONLY);
    if (fd >= 0) {
        CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0xb000, fd, 0x100), 0x100);
        close(fd);
    }
    vmmem_slice s = {0}, t = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x4000, 0x4000, &s), 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0x1000, src_buf, 4), 0);
    CU_ASSERT_EQUAL(vmmem_slice_copy_from(&s, src_buf, 4), 4);
    VT_ASSERT_RC(vmmem_slice_store(&s, 0x3000, 4, 1, VMMEM_SEQ_CST), 0);
    vmmem_slice hb = vmmem_slice_from_buffer(src_buf, 0x10);
    VT_ASSERT_RC(vmmem_slice_offset(&s, 0x2000, &t), 0);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&hb, &t), 0x10);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0, 0x4000), 0); /* no-op while off */
    EXPECT_DIRTY(m, 0);
    vmmem_map_unref(m);
}

static void test_dirty_switching(void)
{
    vmmem_map *m = vt_map(DMAP); /* NULL options: tracking off */
    if (m == NULL)
        return;
    CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
    CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 4096);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x1000, src_buf, 1), 1);
    EXPECT_DIRTY(m, 0);

    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, true), 0);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
    CU_ASSERT_EQUAL(vmmem_write(m, 0x2000, src_buf, 1), 1);
    EXPECT_DIRTY(m, P(2));
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x4000, 0x10, &s), 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0, src_buf, 4), 0);
    vmmem_slice_release(&s);
    EXPECT_DIRTY(m, P(2) | P(4));

    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, false), 0);
    CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
    CU_ASSERT_EQUAL(vmmem_write(m, 0x5000, src_buf, 1), 1);
    VT_ASSERT_RC(vmmem_store(m, 0x6000, 4, 1, VMMEM_SEQ_CST), 0);
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0xa000, 1), 0);
    VT_ASSERT_RC(vmmem_get_slice(m, 0x7000, 0x10, &s), 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0, src_buf, 4), 0);
    vmmem_slice_release(&s);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x5000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x6000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x7000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0xa000));

    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, true), 0);
    CU_ASSERT_EQUAL(vmmem_write(m, 0xb000, src_buf, 1), 1);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0xb000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x5000));
    vmmem_map_unref(m);
}

static void test_dirty_options(void)
{
    vmmem_map *m = new_map(DMAP, VMMEM_MAP_DIRTY_TRACKING, 0);
    if (m != NULL) {
        CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
        CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 4096);
        vmmem_map_unref(m);
    }
    m = new_map(DMAP, 0, 0x2000);
    if (m != NULL) {
        CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
        CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 0x2000);
        vmmem_map_unref(m);
    }
    /* Built from specs, tracking on. */
    const struct vmmem_region_spec specs[] = {
        {.provider = "mmap", .addr = 0x10000, .size = 0x2000},
        {.provider = "mmap", .addr = 0, .size = 0x1000},
    };
    struct vmmem_map_options o = {
        .struct_size = sizeof o, .flags = VMMEM_MAP_DIRTY_TRACKING, .dirty_page_size = 0x1000};
    m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, specs, 2, &o), 0);
    if (m != NULL) {
        CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m));
        CU_ASSERT_EQUAL(vmmem_write(m, 0x11000, src_buf, 2), 2);
        CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x10fff));
        CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x11000));
        CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0));
        vmmem_map_unref(m);
    }
    /* A page size that is not a power of two. */
    static const uint64_t bad[] = {3, 0x1800, 4097, UINT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        o.dirty_page_size = bad[i];
        m = NULL;
        VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, DMAP, &o), -EINVAL);
        CU_ASSERT_PTR_NULL(m);
        if (m != NULL)
            vmmem_map_unref(m);
    }
}

static void test_dirty_page_size_128(void)
{
    vmmem_map *m = new_map("mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000",
                           VMMEM_MAP_DIRTY_TRACKING, 128);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 128);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x80, src_buf, 1), 1);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x7f));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x80));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0xff));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x100));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0));
    /* Across the region seam at 0x1000. */
    CU_ASSERT_EQUAL(vmmem_write(m, 0xfff, src_buf, 2), 2);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0xf7f));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0xf80));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x1000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x107f));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x1080));
    VT_ASSERT_RC(vmmem_store(m, 0x200, 8, 1, VMMEM_SEQ_CST), 0);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x27f));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x280));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x1ff));
    /* Count the marked 128-byte pages: exactly 0x80, 0xf80, 0x1000, 0x200. */
    unsigned n = 0;
    for (uint64_t a = 0; a < 0x2000; a += 128)
        n += vmmem_map_is_dirty(m, a);
    CU_ASSERT_EQUAL(n, 4);
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 0x1000, &s), 0);
    CU_ASSERT_PTR_NOT_NULL(s.bitmap);
    if (s.bitmap != NULL)
        CU_ASSERT_EQUAL(vmmem_bitmap_pages(s.bitmap), 32);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0x17f, src_buf, 2), 0); /* 0x117f..0x1180 */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x1100));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x1180));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x1200));
    vmmem_slice_release(&s);
    vmmem_map_unref(m);
}

static void test_dirty_page_size_64k(void)
{
    vmmem_map *m = new_map("mmap:addr=0,size=0x20000;mmap:addr=0x20000,size=0x10000",
                           VMMEM_MAP_DIRTY_TRACKING, 0x10000);
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), 0x10000);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x10000, src_buf, 8), 8);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0xffff));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x10000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x1ffff));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x20000));
    VT_ASSERT_RC(vmmem_write_obj(m, 0x1fffc, src_buf, 8), 0); /* seam */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x20000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x2ffff));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0));
    vmmem_map_unref(m);
}

/* ---- the built-in bitmap ------------------------------------------------------------ */

static void test_bitmap_sizes(void)
{
    vmmem_bitmap *b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 1025, 128), 0);
    if (b != NULL) {
        CU_ASSERT_EQUAL(vmmem_bitmap_pages(b), 9);
        CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, NULL, 0), 1);
        vmmem_bitmap_free(b);
    }
    b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 1024, 128), 0);
    if (b != NULL) {
        CU_ASSERT_EQUAL(vmmem_bitmap_pages(b), 8);
        vmmem_bitmap_free(b);
    }
    b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 1025, 1), 0);
    if (b != NULL) {
        CU_ASSERT_EQUAL(vmmem_bitmap_pages(b), 1025);
        CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, NULL, 0), 17);
        vmmem_bitmap_free(b);
    }
    b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 64 * 4096, 4096), 0);
    if (b != NULL) {
        CU_ASSERT_EQUAL(vmmem_bitmap_pages(b), 64);
        CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, NULL, 0), 1);
        vmmem_bitmap_free(b);
    }
    b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 65 * 4096, 4096), 0);
    if (b != NULL) {
        CU_ASSERT_EQUAL(vmmem_bitmap_pages(b), 65);
        CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, NULL, 0), 2);
        vmmem_bitmap_free(b);
    }
}

static void test_bitmap_invalid_page_size(void)
{
    static const uint64_t bad[] = {0, 3, 100, 4097, 0x1800, UINT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vmmem_bitmap *b = NULL;
        VT_ASSERT_RC(vmmem_bitmap_new(&b, 4096, bad[i]), -EINVAL);
        CU_ASSERT_PTR_NULL(b);
        if (b != NULL)
            vmmem_bitmap_free(b);
    }
}

static void test_bitmap_mark_test_collect(void)
{
    vmmem_bitmap *b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 1024, 128), 0);
    if (b == NULL)
        return;
    for (uint64_t off = 0; off < 1024; off += 64)
        CU_ASSERT_FALSE(vmmem_bitmap_test(b, off));
    /* [128, 257) covers pages 1 and 2 only. */
    vmmem_bitmap_mark(b, 128, 129);
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 0));
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 127));
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 128));
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 255));
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 256));
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 383));
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 384));
    /* Out of range offsets are never set. */
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 1024));
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, UINT64_MAX));

    uint64_t w[2] = {0, 0x77};
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, w, 2), 1);
    CU_ASSERT_EQUAL(w[0], 0x6ull); /* 0b110 */
    CU_ASSERT_EQUAL(w[1], 0x77);   /* past the bitmap's words: untouched */
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 128));
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 256));
    w[0] = 0xffff;
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, w, 1), 1);
    CU_ASSERT_EQUAL(w[0], 0);

    /* Zero length marks nothing. */
    vmmem_bitmap_mark(b, 512, 0);
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 512));
    /* One byte: one page; the last byte of a page: that page. */
    vmmem_bitmap_mark(b, 1023, 1);
    vmmem_bitmap_mark(b, 0, 1);
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, w, 1), 1);
    CU_ASSERT_EQUAL(w[0], 0x81ull);
    vmmem_bitmap_free(b);
}

static void test_bitmap_past_end(void)
{
    vmmem_bitmap *b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 1024, 128), 0);
    if (b == NULL)
        return;
    uint64_t w = 0;
    /* 768 + 512 runs past 1024: pages 6 and 7 only. */
    vmmem_bitmap_mark(b, 768, 512);
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 768));
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 1023));
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 767));
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 1024));
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, &w, 1), 1);
    CU_ASSERT_EQUAL(w, 0xC0ull);
    /* Entirely past the end: nothing. */
    vmmem_bitmap_mark(b, 1024, 1);
    vmmem_bitmap_mark(b, 4096, 4096);
    vmmem_bitmap_mark(b, UINT64_MAX, 1);
    vmmem_bitmap_mark(b, UINT64_MAX - 10, 100); /* offset + len wraps */
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, &w, 1), 1);
    CU_ASSERT_EQUAL(w, 0);
    /* Everything: exactly the 8 pages, no bit beyond them. */
    vmmem_bitmap_mark(b, 0, UINT64_MAX);
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, &w, 1), 1);
    CU_ASSERT_EQUAL(w, 0xFFull);
    vmmem_bitmap_free(b);

    b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 1025, 128), 0);
    if (b == NULL)
        return;
    vmmem_bitmap_mark(b, 0, 1 << 20);
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 1024)); /* page 8 holds byte 1024 */
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 1025 + 127 + 1));
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, &w, 1), 1);
    CU_ASSERT_EQUAL(w, 0x1FFull);
    vmmem_bitmap_free(b);
}

static void test_bitmap_multiword(void)
{
    vmmem_bitmap *b = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&b, 130 * 4096, 4096), 0); /* 130 pages, 3 words */
    if (b == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_bitmap_pages(b), 130);
    vmmem_bitmap_mark(b, 63 * 4096, 2 * 4096); /* pages 63, 64 */
    vmmem_bitmap_mark(b, 129 * 4096, 1);       /* page 129 */
    uint64_t w[3] = {0, 0, 0};
    /* Collect only the first word: the others stay marked. */
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, w, 1), 3);
    CU_ASSERT_EQUAL(w[0], 1ull << 63);
    CU_ASSERT_EQUAL(w[1], 0);
    CU_ASSERT_FALSE(vmmem_bitmap_test(b, 63 * 4096));
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 64 * 4096));
    CU_ASSERT_TRUE(vmmem_bitmap_test(b, 129 * 4096 + 4095));
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, w, 3), 3);
    CU_ASSERT_EQUAL(w[0], 0);
    CU_ASSERT_EQUAL(w[1], 1ull);
    CU_ASSERT_EQUAL(w[2], 1ull << 1);
    CU_ASSERT_EQUAL(vmmem_bitmap_collect(b, w, 3), 3);
    CU_ASSERT(w[0] == 0 && w[1] == 0 && w[2] == 0);
    vmmem_bitmap_free(b);
}

/* ---- map-wide harvest ------------------------------------------------------------------ */

struct run {
    vmmem_gaddr_t gpa;
    uint64_t len;
};

/* Compare the harvest's runs with want[0..n). */
static void expect_runs(const vmmem_harvest *h, const struct run *want, size_t n, int line)
{
    vmmem_harvest_iter it = {0};
    vmmem_gaddr_t gpa;
    uint64_t len;
    size_t i = 0;
    while (vmmem_harvest_next_run(h, &it, &gpa, &len)) {
        if (i >= n || gpa != want[i].gpa || len != want[i].len)
            fprintf(stdout, "\n    line %d: run %zu = (0x%llx, 0x%llx), want %s", line, i,
                    (unsigned long long)gpa, (unsigned long long)len, i < n ? "other" : "none");
        CU_ASSERT(i < n);
        if (i < n) {
            CU_ASSERT_EQUAL(gpa, want[i].gpa);
            CU_ASSERT_EQUAL(len, want[i].len);
        }
        if (++i > n + 4)
            break;
    }
    if (i != n)
        fprintf(stdout, "\n    line %d: %zu runs, want %zu", line, i, n);
    CU_ASSERT_EQUAL(i, n);
    CU_ASSERT_FALSE(vmmem_harvest_next_run(h, &it, &gpa, &len)); /* stays at the end */
}
#define EXPECT_RUNS(h, ...)                                                                        \
    do {                                                                                           \
        static const struct run want_[] = {__VA_ARGS__};                                          \
        expect_runs((h), want_, sizeof want_ / sizeof want_[0], __LINE__);                         \
    } while (0)

static void test_harvest_basic(void)
{
    vmmem_map *m = tracked();
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_write(m, 0x0fff, src_buf, 2), 2);          /* pages 0, 1 */
    VT_ASSERT_RC(vmmem_write_obj(m, 0x3ffc, src_buf, 8), 0);          /* pages 3, 4 */
    VT_ASSERT_RC(vmmem_store(m, 0xb008, 8, 1, VMMEM_SEQ_CST), 0);     /* page 11 */
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    if (h == NULL) {
        vmmem_map_unref(m);
        return;
    }
    CU_ASSERT_EQUAL(vmmem_harvest_regions(h), 3);
    CU_ASSERT_EQUAL(vmmem_harvest_page_size(h), 4096);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 5);
    EXPECT_DIRTY(m, 0); /* collected and cleared */

    static const struct {
        vmmem_gaddr_t start;
        uint64_t pages, word0;
    } regs[] = {{0, 4, 0xB}, {0x4000, 4, 0x1}, {0xA000, 2, 0x2}};
    for (size_t i = 0; i < 3; i++) {
        vmmem_gaddr_t start = 1;
        uint64_t pages = 0;
        const uint64_t *w = vmmem_harvest_bitmap(h, i, &start, &pages);
        CU_ASSERT_PTR_NOT_NULL(w);
        CU_ASSERT_EQUAL(start, regs[i].start);
        CU_ASSERT_EQUAL(pages, regs[i].pages);
        if (w != NULL)
            CU_ASSERT_EQUAL(w[0], regs[i].word0);
    }
    CU_ASSERT_PTR_NULL(vmmem_harvest_bitmap(h, 3, NULL, NULL));
    /* Touching regions A and B merge into one run; the hole splits. */
    EXPECT_RUNS(h, {0, 0x2000}, {0x3000, 0x2000}, {0xb000, 0x1000});

    /* Nothing written since: an empty harvest. */
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
    vmmem_harvest_iter it = {0};
    vmmem_gaddr_t gpa;
    uint64_t len;
    CU_ASSERT_FALSE(vmmem_harvest_next_run(h, &it, &gpa, &len));
    /* Reused for the next round. */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x7fff, src_buf, 1), 1);
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0xa000, 1), 0);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 2);
    EXPECT_RUNS(h, {0x7000, 0x1000}, {0xa000, 0x1000});
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

static void test_harvest_untracked_and_foreign(void)
{
    vmmem_map *m = new_map(DMAP, 0, 0); /* tracking never on */
    vmmem_map *other = vt_map("mmap:addr=0,size=0x4000");
    if (m == NULL || other == NULL) {
        vmmem_map_unref(m);
        vmmem_map_unref(other);
        return;
    }
    CU_ASSERT_EQUAL(vmmem_write(m, 0, src_buf, 0x100), 0x100);
    vmmem_harvest *h = NULL, *ho = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    VT_ASSERT_RC(vmmem_harvest_new(other, &ho), 0);
    if (h != NULL && ho != NULL) {
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
        vmmem_harvest_iter it = {0};
        vmmem_gaddr_t gpa;
        uint64_t len;
        CU_ASSERT_FALSE(vmmem_harvest_next_run(h, &it, &gpa, &len));
        /* A buffer made for another map's layout is re-fitted (issue 14:
         * no -EINVAL after a layout change). */
        VT_ASSERT_RC(vmmem_map_harvest(m, ho), 0);
        CU_ASSERT_EQUAL(vmmem_harvest_regions(ho), vmmem_map_num_regions(m));
        VT_ASSERT_RC(vmmem_map_harvest(other, h), 0);
        CU_ASSERT_EQUAL(vmmem_harvest_regions(h), vmmem_map_num_regions(other));
    }
    vmmem_harvest_free(h);
    vmmem_harvest_free(ho);
    vmmem_map_unref(m);
    vmmem_map_unref(other);
}

static void test_harvest_partial_pages_and_words(void)
{
    /* Region 0 is 1.5 pages; region 1 touches it at 0x1800. */
    vmmem_map *m = new_map("mmap:addr=0,size=0x1800;mmap:addr=0x1800,size=0x1000;"
                           "mmap:addr=0x100000,size=0x82000",
                           VMMEM_MAP_DIRTY_TRACKING, 0);
    if (m == NULL)
        return;
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    if (h == NULL) {
        vmmem_map_unref(m);
        return;
    }
    /* The partial last page alone: its run stops at the region's end. */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x17ff, src_buf, 1), 1);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 1);
    EXPECT_RUNS(h, {0x1000, 0x800});
    /* ... and merged with the touching region's first page. */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x17ff, src_buf, 2), 2);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 2);
    EXPECT_RUNS(h, {0x1000, 0x1800});
    /* A run across a 64-page word boundary (pages 60..70 of region 2). */
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0x100000 + 60 * 0x1000, 11 * 0x1000), 0);
    VT_ASSERT_RC(vmmem_map_mark_dirty(m, 0x100000 + 129 * 0x1000, 1), 0); /* last page */
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 12);
    vmmem_gaddr_t start;
    uint64_t pages;
    const uint64_t *w = vmmem_harvest_bitmap(h, 2, &start, &pages);
    CU_ASSERT_EQUAL(pages, 130);
    if (w != NULL) {
        CU_ASSERT_EQUAL(w[0], 0xFull << 60);
        CU_ASSERT_EQUAL(w[1], 0x7Full);
        CU_ASSERT_EQUAL(w[2], 0x2ull);
    }
    EXPECT_RUNS(h, {0x100000 + 60 * 0x1000, 11 * 0x1000}, {0x100000 + 129 * 0x1000, 0x1000});
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

/* Concurrent writers and a harvester: each page is written exactly once, so
 * with atomic collect-and-clear it is reported by exactly one harvest. */
#define RACE_PAGES 4096u
#define RACE_PS 128u

struct race_writer {
    vmmem_map *m;
    unsigned parity;
};

static void *race_write(void *arg)
{
    const struct race_writer *w = arg;
    for (unsigned p = w->parity; p < RACE_PAGES; p += 2)
        if (vmmem_store(w->m, (uint64_t)p * RACE_PS, 8, p, VMMEM_RELAXED) != 0)
            return (void *)1;
    return NULL;
}

static void race_accumulate(const vmmem_harvest *h, uint8_t *seen)
{
    uint64_t pages = 0;
    const uint64_t *w = vmmem_harvest_bitmap(h, 0, NULL, &pages);
    if (w == NULL)
        return;
    for (uint64_t p = 0; p < pages && p < RACE_PAGES; p++)
        if ((w[p / 64] >> (p % 64)) & 1)
            seen[p]++;
}

static void test_harvest_concurrent(void)
{
    vmmem_map *m = new_map("mmap:addr=0,size=0x80000", VMMEM_MAP_DIRTY_TRACKING, RACE_PS);
    if (m == NULL)
        return;
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    static uint8_t seen[RACE_PAGES];
    memset(seen, 0, sizeof seen);
    struct race_writer w[2] = {{m, 0}, {m, 1}};
    pthread_t t[2];
    bool started[2] = {false, false};
    for (int i = 0; i < 2; i++)
        started[i] = pthread_create(&t[i], NULL, race_write, &w[i]) == 0;
    CU_ASSERT(started[0] && started[1]);
    int64_t total = 0;
    for (int round = 0; round < 2000 && h != NULL; round++) {
        int64_t n = vmmem_map_harvest(m, h);
        CU_ASSERT(n >= 0);
        total += n > 0 ? n : 0;
        race_accumulate(h, seen);
    }
    for (int i = 0; i < 2; i++)
        if (started[i]) {
            void *ret = NULL;
            pthread_join(t[i], &ret);
            CU_ASSERT_PTR_NULL(ret);
        }
    if (h != NULL) {
        int64_t n = vmmem_map_harvest(m, h);
        total += n > 0 ? n : 0;
        race_accumulate(h, seen);
    }
    unsigned lost = 0, twice = 0;
    for (unsigned p = 0; p < RACE_PAGES; p++) {
        lost += seen[p] == 0;
        twice += seen[p] > 1;
    }
    if (lost || twice)
        fprintf(stdout, "\n    %u pages never harvested, %u harvested twice", lost, twice);
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT_EQUAL(twice, 0);
    CU_ASSERT_EQUAL(total, RACE_PAGES);
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

/* ---- the vhost-user log ------------------------------------------------------------------ */

static int log_fd(size_t size)
{
    int fd = memfd_create("vmmem-test-log", 0);
    CU_ASSERT(fd >= 0);
    if (fd >= 0 && ftruncate(fd, (off_t)size) != 0) {
        CU_FAIL("ftruncate");
        close(fd);
        return -1;
    }
    return fd;
}

/* Bit p%8 of byte p/8 of the log, read back through the fd. */
static bool log_bit(int fd, uint64_t offset, uint64_t page)
{
    uint8_t b = 0;
    CU_ASSERT_EQUAL(pread(fd, &b, 1, (off_t)(offset + page / 8)), 1);
    return (b >> (page % 8)) & 1;
}

static unsigned log_count(int fd, uint64_t offset, size_t size)
{
    uint8_t buf[8192];
    if (size > sizeof buf) {
        CU_FAIL("log_count: log too large");
        return 0;
    }
    CU_ASSERT_EQUAL(pread(fd, buf, size, (off_t)offset), (ssize_t)size);
    unsigned n = 0;
    for (size_t i = 0; i < size; i++)
        n += (unsigned)__builtin_popcount(buf[i]);
    return n;
}

/* Writes of 1 to 32 pages from every start page in a 64-page region: the log
 * holds exactly those pages' bits, whatever log bytes the run starts and ends
 * in (the log is marked a byte at a time). */
static void test_log_runs(void)
{
    vmmem_map *m = new_map("mmap:addr=0,size=256K", 0, 0);
    int fd = log_fd(4096);
    static uint8_t big[32 * 4096];
    if (m == NULL || fd < 0) {
        vmmem_map_unref(m);
        if (fd >= 0)
            close(fd);
        return;
    }
    VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, 4096), 0);
    unsigned bad = 0;
    for (unsigned first = 0; first < 32; first++) {
        for (unsigned n = 1; n <= 32; n++) {
            static const uint8_t zero[16];
            CU_ASSERT_EQUAL(pwrite(fd, zero, sizeof zero, 0), (ssize_t)sizeof zero);
            /* From 100 bytes into the first page to 1 byte into the last. */
            uint64_t a = (uint64_t)first * 4096 + 100, len = (uint64_t)(n - 1) * 4096 + 1 - 100;
            if (n == 1)
                len = 1;
            VT_ASSERT_RC(vmmem_write_slice(m, a, big, (size_t)len), 0);
            uint8_t got[16], want[16] = {0};
            CU_ASSERT_EQUAL(pread(fd, got, sizeof got, 0), (ssize_t)sizeof got);
            for (unsigned p = first; p < first + n; p++)
                want[p / 8] |= (uint8_t)(1u << (p % 8));
            if (memcmp(got, want, sizeof got) != 0 && bad++ == 0)
                fprintf(stdout, "\n    pages %u..%u: log bytes differ\n", first, first + n - 1);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    vmmem_map_unref(m);
    close(fd);
}

static void test_log_basic(void)
{
    vmmem_map *m = new_map(DMAP, 0, 0);
    int fd = log_fd(4096);
    if (m == NULL || fd < 0) {
        vmmem_map_unref(m);
        if (fd >= 0)
            close(fd);
        return;
    }
    CU_ASSERT_FALSE(vmmem_map_dirty_tracking(m));
    VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, 4096), 0);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(m)); /* attaching turns tracking on */
    CU_ASSERT_EQUAL(log_count(fd, 0, 4096), 0);

    CU_ASSERT_EQUAL(vmmem_write(m, 0x5000, src_buf, 1), 1);
    CU_ASSERT_TRUE(log_bit(fd, 0, 5));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x5000)); /* the bitmap too */
    VT_ASSERT_RC(vmmem_write_obj(m, 0x3ffc, src_buf, 8), 0);
    CU_ASSERT_TRUE(log_bit(fd, 0, 3));
    CU_ASSERT_TRUE(log_bit(fd, 0, 4));
    VT_ASSERT_RC(vmmem_store(m, 0xb000, 4, 1, VMMEM_SEQ_CST), 0);
    CU_ASSERT_TRUE(log_bit(fd, 0, 11));
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, 0xa000, 0x100, &s), 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0x10, src_buf, 4), 0);
    vmmem_slice_release(&s);
    CU_ASSERT_TRUE(log_bit(fd, 0, 10));
    CU_ASSERT_EQUAL(log_count(fd, 0, 4096), 5);
    /* Reads never mark the log. */
    uint8_t buf[0x100];
    CU_ASSERT_EQUAL(vmmem_read(m, 0x1000, buf, sizeof buf), (int64_t)sizeof buf);
    CU_ASSERT_FALSE(log_bit(fd, 0, 1));
    /* Harvesting the bitmap leaves the log alone (the front-end owns it). */
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    if (h != NULL)
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 5);
    vmmem_harvest_free(h);
    CU_ASSERT_EQUAL(log_count(fd, 0, 4096), 5);

    /* Detached: the log stays as it was; the bitmap still tracks. */
    VT_ASSERT_RC(vmmem_map_detach_log(m), 0);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x6000, src_buf, 1), 1);
    CU_ASSERT_FALSE(log_bit(fd, 0, 6));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x6000));
    CU_ASSERT(vmmem_map_detach_log(m) < 0); /* nothing attached */
    vmmem_map_unref(m);
    close(fd);
}

static void test_log_page_size_and_limits(void)
{
    /* The log is always 4 KiB pages, whatever the map's dirty page size. */
    vmmem_map *m = new_map("mmap:addr=0,size=0x20000;mmap:addr=0x40000,size=0x10000", 0, 0x10000);
    int fd = log_fd(8192);
    if (m == NULL || fd < 0) {
        vmmem_map_unref(m);
        if (fd >= 0)
            close(fd);
        return;
    }
    /* A log one byte long at an unaligned offset: it covers pages 0-7 only. */
    VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 4196, 1), 0);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x5000, src_buf, 1), 1);
    CU_ASSERT_TRUE(log_bit(fd, 4196, 5));
    CU_ASSERT_EQUAL(log_count(fd, 0, 8192), 1);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0)); /* 64 KiB bitmap page 0 */
    /* Beyond the log's 8 pages: ignored, no fault, nothing else touched. */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x11000, src_buf, 1), 1);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x4ffff, src_buf, 1), 1);
    CU_ASSERT_EQUAL(log_count(fd, 0, 8192), 1);
    /* Re-attaching replaces the log: the full first page of the file. */
    VT_ASSERT_RC(vmmem_map_attach_log(m, fd, 0, 4096), 0);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x11000, src_buf, 2), 2);
    CU_ASSERT_TRUE(log_bit(fd, 0, 0x11));
    CU_ASSERT_FALSE(log_bit(fd, 0, 0x10));
    CU_ASSERT_FALSE(log_bit(fd, 0, 0x12));
    CU_ASSERT_EQUAL(vmmem_write(m, 0x4fff, src_buf, 0x1002), 0x1002); /* pages 4, 5, 6 */
    CU_ASSERT_TRUE(log_bit(fd, 0, 4));
    CU_ASSERT_TRUE(log_bit(fd, 0, 6));
    CU_ASSERT_FALSE(log_bit(fd, 0, 7));
    CU_ASSERT_FALSE(log_bit(fd, 0, 0x4f)); /* written before this log was attached */
    vmmem_map_unref(m);
    close(fd);
}

static void test_log_errors(void)
{
    vmmem_map *m = new_map(DMAP, 0, 0);
    if (m == NULL)
        return;
    int fd = log_fd(4096);
    CU_ASSERT(vmmem_map_attach_log(m, -1, 0, 4096) < 0);
    if (fd >= 0) {
        CU_ASSERT(vmmem_map_attach_log(m, fd, 0, 0) < 0);
        CU_ASSERT(vmmem_map_attach_log(m, fd, 4096, 1) < 0); /* past a regular file's end */
        CU_ASSERT(vmmem_map_attach_log(m, fd, 0, 8192) < 0);
        close(fd);
    }
    CU_ASSERT(vmmem_map_detach_log(m) < 0);
    vmmem_map_unref(m);
}

static int init_src(void)
{
    for (size_t i = 0; i < sizeof src_buf; i++)
        src_buf[i] = (uint8_t)(i * 7 + 1);
    return 0;
}

static const struct vt_test write_tests[] = {
    {"vmmem_write", test_dirty_write},
    {"vmmem_write_slice", test_dirty_write_slice},
    {"vmmem_write_obj", test_dirty_write_obj},
    {"vmmem_store and slice_store", test_dirty_store},
    {"vmmem_read_from_fd marks the bytes read", test_dirty_read_from_fd},
    {"vmmem_slice_write", test_dirty_slice_write},
    {"vmmem_slice_copy_from", test_dirty_slice_copy_from},
    {"vmmem_slice_copy_to_slice", test_dirty_copy_to_slice},
    {"copy_to_slice marks the destination only", test_dirty_copy_to_slice_dest_only},
    {"short and failed writes", test_dirty_short_and_failed},
    {"reads never mark", test_dirty_reads_never_mark},
    {"derived slices at shifted offsets", test_dirty_children},
    {"region bitmap harvest", test_dirty_region_bitmap_harvest},
    {NULL, NULL},
};

static const struct vt_test control_tests[] = {
    {"tracking off marks nothing", test_dirty_tracking_off},
    {"switching on and off", test_dirty_switching},
    {"mark by hand", test_dirty_mark_by_hand},
    {"map options", test_dirty_options},
    {"page size 128", test_dirty_page_size_128},
    {"page size 64K", test_dirty_page_size_64k},
    {NULL, NULL},
};

static const struct vt_test harvest_tests[] = {
    {"harvest and runs", test_harvest_basic},
    {"untracked map and foreign buffer", test_harvest_untracked_and_foreign},
    {"partial pages and word boundaries", test_harvest_partial_pages_and_words},
    {"concurrent writers and harvester", test_harvest_concurrent},
    {"vhost-user log", test_log_basic},
    {"vhost-user log: runs of pages across log bytes", test_log_runs},
    {"log page size and limits", test_log_page_size_and_limits},
    {"log errors", test_log_errors},
    {NULL, NULL},
};

static const struct vt_test bitmap_tests[] = {
    {"sizes", test_bitmap_sizes},
    {"invalid page size", test_bitmap_invalid_page_size},
    {"mark, test, collect", test_bitmap_mark_test_collect},
    {"marks past the end", test_bitmap_past_end},
    {"several words", test_bitmap_multiword},
    {NULL, NULL},
};

static const struct vt_suite s1 = {"dirty write paths", init_src, NULL, write_tests};
static const struct vt_suite s2 = {"dirty tracking control", init_src, NULL, control_tests};
static const struct vt_suite s3 = {"dirty bitmap", NULL, NULL, bitmap_tests};
static const struct vt_suite s4 = {"dirty harvest and log", init_src, NULL, harvest_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&s1, &s2, &s3, &s4, NULL};
    return vt_main(suites);
}

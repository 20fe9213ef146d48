/* The header-inline fast paths (fast.h) behave exactly like the functions
 * they shadow, in the fast case and in every case they hand over. */
#include <string.h>

#include "harness.h"

/* Whether every byte of [addr, addr+len) is in a region (writable if
 * write), by a linear scan of the regions: an oracle independent of the
 * map's lookup. */
static bool covered(const vmmem_map *m, uint64_t addr, size_t len, bool write)
{
    if (addr + (len - 1) < addr)
        return false; /* wraps */
    for (size_t k = 0; k < len; k++) {
        bool in = false;
        for (size_t i = 0; i < vmmem_map_num_regions(m) && !in; i++) {
            struct vmmem_region_info r;
            vmmem_region_get_info(vmmem_map_region(m, i), &r);
            in = addr + k >= r.start && addr + k <= r.last &&
                 (!write || (r.prot & VMMEM_PROT_WRITE));
        }
        if (!in)
            return false;
    }
    return true;
}

/* Every inline path at addr of m against its exported function: codes,
 * error addresses, values and region.  Returns the number of mismatches
 * (each also a failed assertion). */
static int same_on(vmmem_map *m, uint64_t addr)
{
    int bad = 0;
#define SAME(x, y)                                                                          \
    do {                                                                                    \
        bool eq_ = (x) == (y);                                                              \
        CU_ASSERT_TRUE(eq_);                                                                \
        bad += !eq_;                                                                        \
    } while (0)
    uint64_t v = 0x1122334455667788ull ^ addr, a = 1, b = 2, e1;
    int r1 = vmmem_fast_write_obj(m, addr, &v, 8);
    e1 = vmmem_last_error()->addr;
    int r2 = vmmem_write_obj(m, addr, &v, 8);
    SAME(r1, r2);
    if (r1 < 0)
        SAME(e1, vmmem_last_error()->addr);
    r1 = vmmem_fast_read_obj(m, addr, &a, 8);
    e1 = vmmem_last_error()->addr;
    r2 = vmmem_read_obj(m, addr, &b, 8);
    SAME(r1, r2);
    SAME(a, r1 == 0 ? b : 1); /* untouched on error */
    if (r1 < 0)
        SAME(e1, vmmem_last_error()->addr);
    if (r1 == 0 && r2 == 0 && vmmem_write_obj(m, addr, &v, 8) == 0)
        SAME(a, v);
    r1 = vmmem_fast_store_u32(m, addr, 0xabcdef01u ^ (uint32_t)addr, VMMEM_RELEASE);
    e1 = vmmem_last_error()->addr;
    r2 = vmmem_store(m, addr, 4, 0xabcdef01u ^ (uint32_t)addr, VMMEM_RELEASE);
    SAME(r1, r2);
    if (r1 < 0)
        SAME(e1, vmmem_last_error()->addr);
    uint32_t w = 5;
    uint64_t w2 = 6;
    r1 = vmmem_fast_load_u32(m, addr, &w, VMMEM_ACQUIRE);
    r2 = vmmem_load(m, addr, 4, &w2, VMMEM_ACQUIRE);
    SAME(r1, r2);
    if (r1 == 0)
        SAME(w, (uint32_t)w2);
    uint64_t o1 = 7, o2 = 7;
    SAME(vmmem_fast_find(m, addr, &o1), vmmem_map_find(m, addr, &o2));
    SAME(o1, o2);
    /* And against the layout itself, by a linear scan (both sides above
     * share the map's index): the region, and which 8-byte accesses work. */
    const vmmem_region *want = NULL;
    struct vmmem_region_info in = {0};
    for (size_t i = 0; i < vmmem_map_num_regions(m); i++) {
        vmmem_region_get_info(vmmem_map_region(m, i), &in);
        if (addr >= in.start && addr <= in.last) {
            want = vmmem_map_region(m, i);
            break;
        }
    }
    SAME(vmmem_fast_find(m, addr, &o1), want);
    SAME(vmmem_fast_read_obj(m, addr, &a, 8) == 0, covered(m, addr, 8, false));
    SAME(vmmem_fast_write_obj(m, addr, &a, 8) == 0, covered(m, addr, 8, true));
#undef SAME
    return bad;
}

static void same_results(const char *config, uint64_t addr)
{
    vmmem_map *m = vt_map(config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(same_on(m, addr), 0);
    vmmem_map_unref(m);
}

static void test_inside_and_edges(void)
{
    const char *two = "mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000;mmap:addr=0x3000,size=4K";
    same_results(two, 0);          /* address 0 */
    same_results(two, 0x1ff8);     /* last 8 bytes of a region */
    same_results(two, 0xffc);      /* across the seam: handed over, never torn */
    same_results(two, 0x2000);     /* a hole */
    same_results(two, 0x2ffc);     /* into the next region after a hole */
    same_results(two, 0x3ff9);     /* past the end */
    same_results(two, 0x1003);     /* misaligned */
    same_results(two, UINT64_MAX); /* wrap */
    same_results("mmap:addr=0,size=4K,prot=r", 0x10); /* read-only: EREAD_ONLY */
    /* Guest-aligned but host-misaligned (host - start not a multiple of 8):
     * handed over, so atomics get VMMEM_EMISALIGNED as from vmmem_store. */
    same_results("mmap:addr=0x1003,size=4K", 0x1008);
    same_results("mmap:addr=0x1004,size=4K", 0x1008);
}

/* Layouts for the direct index (map.c map_index): buckets inside one
 * region, buckets meeting two regions (bisected), far-apart regions (coarse
 * buckets), odd alignments, read-only, the top of the address space. */
static const char *const dir_layouts[] = {
    "mmap:addr=0,size=64K;mmap:addr=64K,size=64K",
    "mmap:addr=0x1003,size=4K;mmap:addr=0x3000,size=4K,prot=r",
    "mmap:addr=0x2000,size=4K;mmap:addr=0x10000000000,size=64K",
    "mmap:addr=0,size=4K;mmap:addr=0xFFFFFFFFFFFFF000,size=4K",
    "mmap:addr=0x1000,size=0x1004;mmap:addr=0x2008,size=0xff8;mmap:addr=0x3000,size=4K",
    NULL, /* filled in: 40 regions of 4 KiB, 8 * k bytes apart (256-byte buckets) */
};

static void test_index_layouts(void)
{
    static char many[40 * 64];
    char *p = many;
    for (unsigned k = 0; k < 40; k++)
        p += snprintf(p, sizeof many - (size_t)(p - many), "%smmap:addr=0x%x,size=4K",
                      k ? ";" : "", 0x1000 * k + 8 * k * (k + 1) / 2);
    unsigned bad = 0, probes = 0;
    for (size_t l = 0; l < sizeof dir_layouts / sizeof dir_layouts[0]; l++) {
        const char *conf = dir_layouts[l] != NULL ? dir_layouts[l] : many;
        vmmem_map *m = vt_map(conf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        static const int64_t around[] = {-16, -9, -8, -4, -1, 0, 1, 4, 8, 16};
        for (size_t i = 0; i < vmmem_map_num_regions(m); i++) {
            const vmmem_region *r = vmmem_map_region(m, i);
            uint64_t st = vmmem_region_start(r), last = st + (vmmem_region_size(r) - 1);
            for (size_t k = 0; k < sizeof around / sizeof around[0]; k++) {
                int b1 = same_on(m, st + (uint64_t)around[k]);
                int b2 = same_on(m, last - 7 + (uint64_t)around[k]);
                int b3 = same_on(m, st + (last - st) / 2 + (uint64_t)around[k]);
                if (b1 + b2 + b3)
                    fprintf(stdout, "\n    %s: region %zu, offset %lld\n", conf, i,
                            (long long)around[k]);
                bad += (unsigned)(b1 + b2 + b3);
                probes += 3;
            }
        }
        uint64_t x = 0x9E3779B97F4A7C15ull; /* and 2000 pseudo-random addresses below 2^18 */
        for (int k = 0; k < 2000; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            bad += (unsigned)same_on(m, (x & 0x3ffff) & ~(uint64_t)3);
            probes++;
        }
        bad += (unsigned)same_on(m, 0) + (unsigned)same_on(m, UINT64_MAX) +
               (unsigned)same_on(m, UINT64_MAX - 7);
        vmmem_map_unref(m);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_TRUE(probes > 10000);
}

/* The index is really built (a regression would only be slow): read through
 * the fast.h head, as the inline paths do. */
static void test_index_built(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=64K;mmap:addr=64K,size=64K;mmap:addr=256K,size=64K");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const struct vmmem__fast_head *h = (const struct vmmem__fast_head *)(const void *)m;
    CU_ASSERT_EQUAL(h->dir_shift, 16);
    CU_ASSERT_EQUAL(h->dir_n, 5);
    CU_ASSERT_PTR_EQUAL(h->dir[0], &h->slots[0]);
    CU_ASSERT_PTR_EQUAL(h->dir[1], &h->slots[1]);
    CU_ASSERT_PTR_NULL(h->dir[2]); /* holes */
    CU_ASSERT_PTR_NULL(h->dir[3]);
    CU_ASSERT_PTR_EQUAL(h->dir[4], &h->slots[2]);
    CU_ASSERT_EQUAL(h->slots[0].fast & VMMEM__FASTBIT_NEXT, VMMEM__FASTBIT_NEXT); /* a seam */
    CU_ASSERT_EQUAL(h->slots[1].fast & VMMEM__FASTBIT_NEXT, 0);                  /* a hole */
    CU_ASSERT_EQUAL(h->slots[2].fast & VMMEM__FASTBIT_NEXT, 0);                  /* the last */
    CU_ASSERT_EQUAL(h->slots[0].wlen, 64 * 1024);
    CU_ASSERT_EQUAL(h->slots[0].rlen, 64 * 1024);
    vmmem_map_unref(m);
    /* Two regions meeting inside a bucket: that bucket is left to bisection. */
    m = vt_map("mmap:addr=0,size=0x1008;mmap:addr=0x1008,size=0xff8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    h = (const struct vmmem__fast_head *)(const void *)m;
    CU_ASSERT_EQUAL(h->dir_shift, 3);
    CU_ASSERT_EQUAL(h->dir_n, 0x2000 >> 3);
    CU_ASSERT_PTR_EQUAL(h->dir[0x1000 >> 3], &h->slots[0]);
    CU_ASSERT_PTR_EQUAL(h->dir[0x1008 >> 3], &h->slots[1]);
    vmmem_map_unref(m);
    m = vt_map("mmap:addr=0,size=0x100008;mmap:addr=0x100008,size=0xffff8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    h = (const struct vmmem__fast_head *)(const void *)m;
    CU_ASSERT_TRUE(h->dir_n <= 1024 && h->dir_n > 0);
    uint64_t b = 0x100008 >> h->dir_shift;
    CU_ASSERT_PTR_NULL(h->dir[b]); /* meets both regions */
    CU_ASSERT_PTR_EQUAL(h->dir[0], &h->slots[0]);
    vmmem_map_unref(m);
    /* Tiny regions spread over the whole address space: still at most 1024
     * buckets (here 2^54 bytes each), and each region reached. */
    m = vt_map("mmap:addr=0,size=4K;mmap:addr=0x10000000000,size=4K;"
               "mmap:addr=0x8000000000000000,size=4K;mmap:addr=0xFFFFFFFFFFFFF000,size=4K");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    h = (const struct vmmem__fast_head *)(const void *)m;
    CU_ASSERT_EQUAL(h->dir_shift, 54);
    CU_ASSERT_EQUAL(h->dir_n, 1024);
    CU_ASSERT_EQUAL(same_on(m, 0x10000000ff8), 0);
    CU_ASSERT_EQUAL(same_on(m, 0x8000000000000ff8), 0);
    CU_ASSERT_EQUAL(same_on(m, 0xFFFFFFFFFFFFFFF8), 0);
    vmmem_map_unref(m);
    /* A region with an odd start: no inline small accesses, nothing else lost. */
    m = vt_map("mmap:addr=0x1004,size=4K");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    h = (const struct vmmem__fast_head *)(const void *)m;
    CU_ASSERT_EQUAL(h->slots[0].wlen, 0);
    CU_ASSERT_EQUAL(h->slots[0].rlen, 0);
    vmmem_map_unref(m);
    /* Read-only: reads inline, writes handed over. */
    m = vt_map("mmap:addr=0,size=4K,prot=r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    h = (const struct vmmem__fast_head *)(const void *)m;
    CU_ASSERT_EQUAL(h->slots[0].rlen, 4096);
    CU_ASSERT_EQUAL(h->slots[0].wlen, 0);
    vmmem_map_unref(m);
}

static void test_seam_values(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint64_t v = 0x0102030405060708ull, r = 0;
    VT_ASSERT_RC(vmmem_fast_write_obj(m, 0xffc, &v, 8), 0);
    VT_ASSERT_RC(vmmem_read_obj(m, 0xffc, &r, 8), 0);
    CU_ASSERT_EQUAL(r, v);
    uint8_t odd[9] = {0};
    VT_ASSERT_RC(vmmem_fast_write_obj(m, 0x100, odd + 1, 8), 0); /* unaligned source */
    VT_ASSERT_RC(vmmem_fast_read_obj(m, 0x100, odd + 1, 8), 0);
    VT_ASSERT_RC(vmmem_fast_write_obj(m, 0x100, &v, 3), 0); /* other sizes go through */
    VT_ASSERT_RC(vmmem_fast_read_obj(m, 0x2000, &r, 8), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x2000);
    vmmem_map_unref(m);
}

static void test_dirty_tracking_marks(void)
{
    struct vmmem_map_options o = {.struct_size = sizeof o, .flags = VMMEM_MAP_DIRTY_TRACKING};
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=64K", &o), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint64_t v = 1;
    VT_ASSERT_RC(vmmem_fast_write_obj(m, 0x5008, &v, 8), 0);
    VT_ASSERT_RC(vmmem_fast_store_u32(m, 0x9000, 7, VMMEM_SEQ_CST), 0);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x5000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x9000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x6000));
    /* Switching tracking off brings the inline path back, and it stops marking. */
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, false), 0);
    VT_ASSERT_RC(vmmem_fast_write_obj(m, 0xa000, &v, 8), 0);
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, true), 0);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0xa000));
    vmmem_map_unref(m);
}

/* Inline marking with small pages: an 8-byte write over two pages of one
 * word marks both; over two words it is handed to the library, which marks
 * both too.  Nothing else is marked. */
static void test_inline_marks(void)
{
    struct vmmem_map_options o = {.struct_size = sizeof o, .flags = VMMEM_MAP_DIRTY_TRACKING,
                                  .dirty_page_size = 8};
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=4K", &o), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint64_t v = 3;
    VT_ASSERT_RC(vmmem_fast_write_obj(m, 0x80, &v, 8), 0); /* page 16 only */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x80));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x78));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x88));
    VT_ASSERT_RC(vmmem_fast_write_obj(m, 0x1f8, &v, 8), 0); /* page 63: last of word 0 */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x1f8));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x200));
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 2);
    vmmem_harvest_free(h);
    vmmem_map_unref(m);
}

static void test_orders(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=4K");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint32_t v = 0;
    VT_ASSERT_RC(vmmem_fast_store_u32(m, 8, 5, VMMEM_RELAXED), 0);
    VT_ASSERT_RC(vmmem_fast_store_u32(m, 8, 6, VMMEM_ACQUIRE), -EINVAL); /* as vmmem_store */
    VT_ASSERT_RC(vmmem_fast_load_u32(m, 8, &v, VMMEM_RELAXED), 0);
    CU_ASSERT_EQUAL(v, 5);
    VT_ASSERT_RC(vmmem_fast_load_u32(m, 8, &v, VMMEM_RELEASE), -EINVAL);
    VT_ASSERT_RC(vmmem_fast_load_u32(m, 6, &v, VMMEM_SEQ_CST), VMMEM_EMISALIGNED);
    vmmem_map_unref(m);
}

/* ---- slice copies: differential against the exported functions ---- */

#define SL_LAYOUT                                                                              \
    "mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000;mmap:addr=0x3000,size=4K;"            \
    "mmap:addr=0x4000,size=4K,prot=r;mmap:addr=0xFFFFFFFFFFFFF000,size=4K"
#define SL_BYTES 0x2000u /* [0, 0x2000): the two touching regions */

static const struct {
    uint64_t addr;
    size_t len;
} sl_cases[] = {
    {0, 9},         {0, 0x1000},      {0xff7, 18},       {0xff8, 16}, /* seam 8+8: handed over */
    {0xfe0, 64},    {0xfff, 16},      {0xff0, 9},        {0x1ff0, 16}, /* first piece 1, second 1 */
    {0x1fec, 40},   {0x2ff0, 32},     {0x3ff0, 32},      {0x4ff0, 32}, /* hole, into ro, past end */
    {0x800, 0x1000}, {0, 0x2000},     {0x10, 8},         {0x10, 0},
    {0xffe, 3},     {0x1fff, 1},      {UINT64_MAX - 8, 9}, {UINT64_MAX - 7, 16}, /* top, wrap */
    {0x1000, 0x1001}, {0x40, 33},
    /* up to 64 bytes: four 16-byte moves, in one region and on both sides of the seam */
    {0xfe0, 48},    {0xfd0, 64},      {0xff0, 64},       {0xfc8, 63}, /* 56 + 7: handed over */
    {0xfc0, 65},    {0x105, 64},      {0x100, 47},       {0x200, 65},
    {0xfdf, 50},    {0x1fc0, 64},     {0x1fc1, 64}, /* the last 63 bytes and a hole */
};

/* Known bytes in [0, SL_BYTES), and no dirty page. */
static void sl_pattern(vmmem_map *m)
{
    static uint8_t pat[SL_BYTES];
    for (size_t i = 0; i < SL_BYTES; i++)
        pat[i] = (uint8_t)(i * 7 + 3);
    VT_ASSERT_RC(vmmem_write_slice(m, 0, pat, SL_BYTES), 0);
    if (vmmem_map_dirty_tracking(m)) {
        vmmem_harvest *h = NULL;
        VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
        (void)vmmem_map_harvest(m, h);
        vmmem_harvest_free(h);
    }
}

static void test_slice_copies(void)
{
    for (int tracked = 0; tracked <= 1; tracked++) {
        struct vmmem_map_options o = {.struct_size = sizeof o,
                                      .flags = tracked ? VMMEM_MAP_DIRTY_TRACKING : 0u};
        vmmem_map *m = NULL;
        VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, SL_LAYOUT, &o), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        static uint8_t src[0x2100], got1[0x2100], got2[0x2100], mem1[SL_BYTES], mem2[SL_BYTES];
        for (size_t i = 0; i < sizeof src; i++)
            src[i] = (uint8_t)(0xa5 ^ (i * 13));
        for (size_t k = 0; k < sizeof sl_cases / sizeof sl_cases[0]; k++) {
            uint64_t a = sl_cases[k].addr;
            size_t n = sl_cases[k].len;
            /* Writes: the same code, error address and guest bytes. */
            sl_pattern(m);
            int r1 = vmmem_fast_write_slice(m, a, src, n);
            uint64_t e1 = vmmem_last_error()->addr;
            VT_ASSERT_RC(vmmem_read_slice(m, 0, mem1, SL_BYTES), 0);
            /* the pages of the first and of the last byte (the two sides of a seam) */
            bool d1 = tracked && n > 0 && vmmem_map_is_dirty(m, a) &&
                      vmmem_map_is_dirty(m, a + (n - 1));
            sl_pattern(m);
            int r2 = vmmem_write_slice(m, a, src, n);
            VT_ASSERT_RC(vmmem_read_slice(m, 0, mem2, SL_BYTES), 0);
            bool d2 = tracked && n > 0 && vmmem_map_is_dirty(m, a) &&
                      vmmem_map_is_dirty(m, a + (n - 1));
            if (r1 != r2 || memcmp(mem1, mem2, SL_BYTES) != 0 || d1 != d2)
                fprintf(stdout, "\n    write 0x%llx+%zu (tracked %d): %d/%d, bytes %s, dirty %d/%d\n",
                        (unsigned long long)a, n, tracked, r1, r2,
                        memcmp(mem1, mem2, SL_BYTES) ? "differ" : "equal", d1, d2);
            CU_ASSERT_EQUAL(r1, r2);
            if (r1 < 0 && r2 < 0)
                CU_ASSERT_EQUAL(e1, vmmem_last_error()->addr);
            CU_ASSERT_EQUAL(memcmp(mem1, mem2, SL_BYTES), 0);
            CU_ASSERT_EQUAL(d1, d2);
            /* Reads: the same code and the same bytes in the caller's buffer
             * (untouched on error). */
            memset(got1, 0xee, sizeof got1);
            memset(got2, 0xee, sizeof got2);
            r1 = vmmem_fast_read_slice(m, a, got1, n);
            r2 = vmmem_read_slice(m, a, got2, n);
            CU_ASSERT_EQUAL(r1, r2);
            CU_ASSERT_EQUAL(memcmp(got1, got2, sizeof got1), 0);
            if (r1 == 0 && n > 0 && a + n <= SL_BYTES)
                CU_ASSERT_EQUAL(memcmp(got1, src, n), 0); /* what was written just before */
        }
        vmmem_map_unref(m);
    }
    /* NULL arguments as the exported functions. */
    uint8_t b[16] = {0};
    VT_ASSERT_RC(vmmem_fast_read_slice(NULL, 0, b, 16), vmmem_read_slice(NULL, 0, b, 16));
    VT_ASSERT_RC(vmmem_fast_write_slice(NULL, 0, b, 16), vmmem_write_slice(NULL, 0, b, 16));
}

/* The seam case really is the two regions' memory: each side's host bytes. */
static void test_slice_seam_bytes(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t in[64], out[64] = {0};
    for (int i = 0; i < 64; i++)
        in[i] = (uint8_t)(200 - i);
    VT_ASSERT_RC(vmmem_fast_write_slice(m, 0x1000 - 20, in, 64), 0);
    void *h0 = NULL, *h1 = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x1000 - 20, &h0, NULL), 0);
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x1000, &h1, NULL), 0);
    CU_ASSERT_EQUAL(memcmp(h0, in, 20), 0);
    CU_ASSERT_EQUAL(memcmp(h1, in + 20, 44), 0);
    VT_ASSERT_RC(vmmem_fast_read_slice(m, 0x1000 - 20, out, 64), 0);
    CU_ASSERT_EQUAL(memcmp(out, in, 64), 0);
    vmmem_map_unref(m);
}

int main(void)
{
    static const struct vt_test tests[] = {
        {"same results as the exported functions", test_inside_and_edges},
        {"seams, odd sizes and sources", test_seam_values},
        {"direct index: every layout as the exported functions", test_index_layouts},
        {"direct index and seam bits are built", test_index_built},
        {"dirty tracking is never skipped", test_dirty_tracking_marks},
        {"inline marks with small pages", test_inline_marks},
        {"memory orders", test_orders},
        {"slice copies: same results as the exported functions", test_slice_copies},
        {"slice copies across a seam reach both regions", test_slice_seam_bytes},
        {NULL, NULL},
    };
    static const struct vt_suite s = {"fast paths", NULL, NULL, tests};
    static const struct vt_suite *const suites[] = {&s, NULL};
    return vt_main(suites);
}

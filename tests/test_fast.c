/* The header-inline fast paths (fast.h) behave exactly like the functions
 * they shadow, in the fast case and in every case they hand over. */
#include <string.h>

#include "harness.h"

static void same_results(const char *config, uint64_t addr)
{
    vmmem_map *m = vt_map(config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint64_t v = 0x1122334455667788ull, a = 0, b = 0;
    int r1 = vmmem_fast_write_obj(m, addr, &v, 8);
    uint64_t e1 = vmmem_last_error()->addr;
    int r2 = vmmem_write_obj(m, addr, &v, 8);
    CU_ASSERT_EQUAL(r1, r2);
    if (r1 < 0)
        CU_ASSERT_EQUAL(e1, vmmem_last_error()->addr);
    int wrote = r1;
    r1 = vmmem_fast_read_obj(m, addr, &a, 8);
    r2 = vmmem_read_obj(m, addr, &b, 8);
    CU_ASSERT_EQUAL(r1, r2);
    CU_ASSERT_EQUAL(a, b);
    if (r1 == 0 && wrote == 0)
        CU_ASSERT_EQUAL(a, v);
    uint32_t w = 0;
    uint64_t w2 = 0;
    r1 = vmmem_fast_store_u32(m, addr, 0xabcdef01u, VMMEM_RELEASE);
    r2 = vmmem_store(m, addr, 4, 0xabcdef01u, VMMEM_RELEASE);
    CU_ASSERT_EQUAL(r1, r2);
    r1 = vmmem_fast_load_u32(m, addr, &w, VMMEM_ACQUIRE);
    r2 = vmmem_load(m, addr, 4, &w2, VMMEM_ACQUIRE);
    CU_ASSERT_EQUAL(r1, r2);
    if (r1 == 0)
        CU_ASSERT_EQUAL(w, (uint32_t)w2);
    uint64_t o1 = 7, o2 = 7;
    CU_ASSERT_PTR_EQUAL(vmmem_fast_find(m, addr, &o1), vmmem_map_find(m, addr, &o2));
    CU_ASSERT_EQUAL(o1, o2);
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

int main(void)
{
    static const struct vt_test tests[] = {
        {"same results as the exported functions", test_inside_and_edges},
        {"seams, odd sizes and sources", test_seam_values},
        {"dirty tracking is never skipped", test_dirty_tracking_marks},
        {"inline marks with small pages", test_inline_marks},
        {"memory orders", test_orders},
        {NULL, NULL},
    };
    static const struct vt_suite s = {"fast paths", NULL, NULL, tests};
    static const struct vt_suite *const suites[] = {&s, NULL};
    return vt_main(suites);
}

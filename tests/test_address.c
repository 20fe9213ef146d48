/*
 * Guest address arithmetic (address.h): checked add / sub / offset_from /
 * align_up / last.  Every error leaves *out unchanged.  Cases follow the
 * vm-memory crate's address.rs tests (inventory 3.1) plus the boundaries
 * 0, UINT64_MAX and exact wrap points.
 */
#include <errno.h>
#include <stdint.h>

#include <vmmem/vmmem.h>

#include "harness.h"

#define SENTINEL UINT64_C(0xdeadbeefcafef00d)

/* ---- add ------------------------------------------------------------------ */

static void test_add_basic(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_add(10, 10, &out), 0);
    CU_ASSERT_EQUAL(out, 20);
    VT_ASSERT_RC(vmmem_addr_add(0, 0, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    VT_ASSERT_RC(vmmem_addr_add(0x1000, 0, &out), 0);
    CU_ASSERT_EQUAL(out, 0x1000);
}

static void test_add_reaches_max(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_add(UINT64_MAX - 1, 1, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_add(0, UINT64_MAX, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_add(UINT64_MAX, 0, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_add(UINT64_C(0x8000000000000000), UINT64_C(0x7fffffffffffffff), &out),
                 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
}

static void test_add_overflow(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_add(UINT64_MAX, 1, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_add(1, UINT64_MAX, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_add(UINT64_MAX, UINT64_MAX, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    /* exactly 2^64 wraps to 0: still an overflow */
    VT_ASSERT_RC(vmmem_addr_add(UINT64_C(0x8000000000000000), UINT64_C(0x8000000000000000), &out),
                 VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_add(UINT64_C(0xfffffffffffff000), 0x1000, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
}

/* ---- sub / offset_from ------------------------------------------------------ */

static void test_sub_basic(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_sub(20, 10, &out), 0);
    CU_ASSERT_EQUAL(out, 10);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_sub(1, 1, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_sub(0, 0, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_sub(UINT64_MAX, UINT64_MAX, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_sub(UINT64_MAX, 1, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX - 1);
}

static void test_sub_underflow(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_sub(0, 1, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_sub(0, UINT64_MAX, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_sub(UINT64_MAX - 1, UINT64_MAX, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_sub(0x1000, 0x1001, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
}

static void test_offset_from(void)
{
    uint64_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_offset_from(0x150, 0x100, &out), 0);
    CU_ASSERT_EQUAL(out, 0x50);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_offset_from(0x100, 0x100, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_offset_from(UINT64_MAX, 0, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
    out = SENTINEL;
    /* reverse order: checked, not wrapped */
    VT_ASSERT_RC(vmmem_addr_offset_from(0x100, 0x150, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_offset_from(0, 1, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_offset_from(UINT64_MAX - 1, UINT64_MAX, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
}

/* ---- align_up ------------------------------------------------------------- */

static void test_align_up_basic(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_align_up(0x128, 8, &out), 0);
    CU_ASSERT_EQUAL(out, 0x128);
    VT_ASSERT_RC(vmmem_addr_align_up(0x128, 16, &out), 0);
    CU_ASSERT_EQUAL(out, 0x130);
    VT_ASSERT_RC(vmmem_addr_align_up(0, 0x1000, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    VT_ASSERT_RC(vmmem_addr_align_up(1, 0x1000, &out), 0);
    CU_ASSERT_EQUAL(out, 0x1000);
    VT_ASSERT_RC(vmmem_addr_align_up(0x1000, 0x1000, &out), 0);
    CU_ASSERT_EQUAL(out, 0x1000);
    VT_ASSERT_RC(vmmem_addr_align_up(0x1001, 0x1000, &out), 0);
    CU_ASSERT_EQUAL(out, 0x2000);
}

static void test_align_up_one(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_align_up(0, 1, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    VT_ASSERT_RC(vmmem_addr_align_up(0x12345, 1, &out), 0);
    CU_ASSERT_EQUAL(out, 0x12345);
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_MAX, 1, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
}

static void test_align_up_top(void)
{
    vmmem_gaddr_t out = SENTINEL;
    /* the highest aligned value is reachable */
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_C(0xfffffffffffff000), 0x1000, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_C(0xfffffffffffff000));
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_C(0xffffffffffffe001), 0x1000, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_C(0xfffffffffffff000));
    VT_ASSERT_RC(vmmem_addr_align_up(1, UINT64_C(0x8000000000000000), &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_C(0x8000000000000000));
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_MAX - 1, 2, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX - 1);
}

static void test_align_up_overflow(void)
{
    vmmem_gaddr_t out = SENTINEL;
    /* crate: MAX - 0x3fff aligned to 0x10000 -> None */
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_MAX - 0x3fff, 0x10000, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_C(0xfffffffffffff001), 0x1000, &out),
                 VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_MAX, 2, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_C(0x8000000000000001), UINT64_C(0x8000000000000000),
                                     &out),
                 VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
}

static void test_align_up_bad_align(void)
{
    vmmem_gaddr_t out = SENTINEL;
    static const uint64_t bad[] = {0, 3, 12, 0x1001, 0x3000, UINT64_MAX,
                                   UINT64_C(0x8000000000000001), UINT64_C(0xc000000000000000)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        VT_ASSERT_RC(vmmem_addr_align_up(0x128, bad[i], &out), -EINVAL);
        CU_ASSERT_EQUAL(out, SENTINEL);
        VT_ASSERT_RC(vmmem_addr_align_up(0, bad[i], &out), -EINVAL);
        CU_ASSERT_EQUAL(out, SENTINEL);
    }
    /* an invalid alignment is reported as such even where the sum would wrap */
    VT_ASSERT_RC(vmmem_addr_align_up(UINT64_MAX, 12, &out), -EINVAL);
    CU_ASSERT_EQUAL(out, SENTINEL);
}

/* ---- last ----------------------------------------------------------------- */

static void test_last(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_last(0, 1, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    VT_ASSERT_RC(vmmem_addr_last(0x1000, 0x1000, &out), 0);
    CU_ASSERT_EQUAL(out, 0x1fff);
    VT_ASSERT_RC(vmmem_addr_last(UINT64_MAX, 1, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
    VT_ASSERT_RC(vmmem_addr_last(0, UINT64_MAX, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX - 1);
    VT_ASSERT_RC(vmmem_addr_last(1, UINT64_MAX, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
    VT_ASSERT_RC(vmmem_addr_last(UINT64_C(0xfffffffffffff000), 0x1000, &out), 0);
    CU_ASSERT_EQUAL(out, UINT64_MAX);
}

static void test_last_errors(void)
{
    vmmem_gaddr_t out = SENTINEL;
    VT_ASSERT_RC(vmmem_addr_last(0, 0, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_last(0x1000, 0, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_last(UINT64_MAX, 0, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_last(UINT64_MAX, 2, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_last(2, UINT64_MAX, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
    VT_ASSERT_RC(vmmem_addr_last(UINT64_C(0xfffffffffffff001), 0x1000, &out), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(out, SENTINEL);
}

/* The helpers are header-only: usable in constant-folding contexts and with
 * the result aliasing an input. */
static void test_out_aliases_input(void)
{
    vmmem_gaddr_t a = 0x1000;
    VT_ASSERT_RC(vmmem_addr_add(a, 0x234, &a), 0);
    CU_ASSERT_EQUAL(a, 0x1234);
    VT_ASSERT_RC(vmmem_addr_align_up(a, 0x1000, &a), 0);
    CU_ASSERT_EQUAL(a, 0x2000);
    VT_ASSERT_RC(vmmem_addr_sub(a, 0x2000, &a), 0);
    CU_ASSERT_EQUAL(a, 0);
    VT_ASSERT_RC(vmmem_addr_sub(a, 1, &a), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(a, 0);
}

static const struct vt_test add_sub_tests[] = {
    {"add basic", test_add_basic},
    {"add reaches UINT64_MAX", test_add_reaches_max},
    {"add overflow", test_add_overflow},
    {"sub basic", test_sub_basic},
    {"sub underflow", test_sub_underflow},
    {"offset_from", test_offset_from},
    {"result may alias input", test_out_aliases_input},
    {NULL, NULL},
};

static const struct vt_test align_last_tests[] = {
    {"align_up basic (crate)", test_align_up_basic},
    {"align_up by 1", test_align_up_one},
    {"align_up near the top", test_align_up_top},
    {"align_up overflow", test_align_up_overflow},
    {"align_up non-power-of-two -> -EINVAL", test_align_up_bad_align},
    {"last", test_last},
    {"last errors (len 0, wrap)", test_last_errors},
    {NULL, NULL},
};

static const struct vt_suite add_sub_suite = {"address add/sub", NULL, NULL, add_sub_tests};
static const struct vt_suite align_last_suite = {"address align_up/last", NULL, NULL,
                                                 align_last_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&add_sub_suite, &align_last_suite, NULL};
    return vt_main(suites);
}

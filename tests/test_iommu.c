/*
 * IOMMU-translated memory (iommu.h): the IOTLB range map (exact pieces,
 * merging and non-merging, permissions, invalidation and splitting,
 * clipping, overflow, the top of the address space), the access API over
 * IOVAs (reads and writes across physical regions and translations,
 * permission faults with the failing IOVA, all-or-error and short counts,
 * the resolver, pass-through, atomics, fd I/O, check_range, the slice
 * iterator), the IOVA-indexed dirty log, and replacing the physical map.
 * Conformance floor: vm-memory's iommu.rs tests (Iotlb and IommuMemory).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

/*
 * Physical map: A [0, 0x10000) and B [0x10000, 0x20000) touch, a hole
 * [0x20000, 0x40000), C [0x40000, 0x50000).
 */
#define PHYS_CFG "mmap:addr=0,size=64K;mmap:addr=64K,size=64K;mmap:addr=256K,size=64K"
#define HOLE 0x20000u
#define R VMMEM_PROT_READ
#define W VMMEM_PROT_WRITE
#define RW VMMEM_PROT_RW
#define MAX UINT64_MAX

/* IOVA log: 1 MiB of IOVA space in 4 KiB pages = 256 bits = 4 words. */
#define LOG_BYTES 0x100000u
#define LOG_PAGE 0x1000u
#define LOG_WORDS 4

/* ---- checking helpers ---------------------------------------------------- */

static uint8_t pat(uint64_t g)
{
    return (uint8_t)(g ^ (g >> 8) ^ (g >> 16) ^ 0xA5);
}

static uint8_t npat(uint64_t g)
{
    return (uint8_t)(pat(g) ^ 0xff);
}

static void expect_err(int64_t rc, int code, uint64_t addr, int line)
{
    const struct vmmem_error *e = vmmem_last_error();
    if (rc != code || e->code != code || e->addr != addr)
        fprintf(stdout,
                "\n    line %d: rc %s (%lld), last error %s at 0x%llx; want %s at 0x%llx: %s\n",
                line, vmmem_err_name((int)rc), (long long)rc, vmmem_err_name(e->code),
                (unsigned long long)e->addr, vmmem_err_name(code), (unsigned long long)addr,
                e->message);
    CU_ASSERT_EQUAL(rc, code);
    CU_ASSERT_EQUAL(e->code, code);
    CU_ASSERT_EQUAL(e->addr, addr);
}
#define EXPECT_ERR(rc, code, addr) expect_err((rc), (code), (addr), __LINE__)

/* The last message names v as a hex number (not as a prefix of a longer one). */
static void expect_msg_names(uint64_t v, int line)
{
    char hex[32];
    snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)v);
    const char *msg = vmmem_last_message();
    bool found = false;
    for (const char *p = strstr(msg, hex); p != NULL && !found; p = strstr(p + 1, hex)) {
        char next = p[strlen(hex)];
        found = !((next >= '0' && next <= '9') || (next >= 'a' && next <= 'f') ||
                  (next >= 'A' && next <= 'F'));
    }
    if (!found)
        fprintf(stdout, "\n    line %d: message does not name %s: \"%s\"\n", line, hex, msg);
    CU_ASSERT(found);
}
#define EXPECT_MSG_NAMES(v) expect_msg_names((v), __LINE__)

static void expect_counts(const struct vmmem_iotlb_result *r, size_t nm, size_t nx, size_t nd,
                          int line)
{
    if (r->n_mapped != nm || r->n_misses != nx || r->n_denied != nd)
        fprintf(stdout, "\n    line %d: mapped/misses/denied %zu/%zu/%zu, want %zu/%zu/%zu\n", line,
                r->n_mapped, r->n_misses, r->n_denied, nm, nx, nd);
    CU_ASSERT_EQUAL(r->n_mapped, nm);
    CU_ASSERT_EQUAL(r->n_misses, nx);
    CU_ASSERT_EQUAL(r->n_denied, nd);
}
#define EXPECT_COUNTS(r, nm, nx, nd) expect_counts(&(r), (nm), (nx), (nd), __LINE__)

static void expect_mapped(const struct vmmem_iotlb_result *r, size_t i, uint64_t iova,
                          uint64_t target, uint64_t len, int line)
{
    CU_ASSERT_FATAL(i < r->n_mapped);
    const struct vmmem_mapped_range *p = &r->mapped[i];
    if (p->iova != iova || p->target != target || p->len != len)
        fprintf(stdout,
                "\n    line %d: mapped[%zu] = {0x%llx, 0x%llx, 0x%llx}, want {0x%llx, 0x%llx, "
                "0x%llx}\n",
                line, i, (unsigned long long)p->iova, (unsigned long long)p->target,
                (unsigned long long)p->len, (unsigned long long)iova, (unsigned long long)target,
                (unsigned long long)len);
    CU_ASSERT_EQUAL(p->iova, iova);
    CU_ASSERT_EQUAL(p->target, target);
    CU_ASSERT_EQUAL(p->len, len);
}
#define EXPECT_MAPPED(r, i, iova, target, len)                                                     \
    expect_mapped(&(r), (i), (iova), (target), (len), __LINE__)

static void expect_range(const struct vmmem_iova_range *arr, size_t n, size_t i, uint64_t iova,
                         uint64_t len, const char *what, int line)
{
    CU_ASSERT_FATAL(i < n);
    if (arr[i].iova != iova || arr[i].len != len)
        fprintf(stdout, "\n    line %d: %s[%zu] = {0x%llx, 0x%llx}, want {0x%llx, 0x%llx}\n", line,
                what, i, (unsigned long long)arr[i].iova, (unsigned long long)arr[i].len,
                (unsigned long long)iova, (unsigned long long)len);
    CU_ASSERT_EQUAL(arr[i].iova, iova);
    CU_ASSERT_EQUAL(arr[i].len, len);
}
#define EXPECT_MISS(r, i, iova, len)                                                               \
    expect_range((r).misses, (r).n_misses, (i), (iova), (len), "misses", __LINE__)
#define EXPECT_DENIED(r, i, iova, len)                                                             \
    expect_range((r).denied, (r).n_denied, (i), (iova), (len), "denied", __LINE__)

static void expect_count(const vmmem_iotlb *t, size_t want, int line)
{
    size_t got = vmmem_iotlb_count(t);
    if (got != want)
        fprintf(stdout, "\n    line %d: IOTLB count %zu, want %zu\n", line, got, want);
    CU_ASSERT_EQUAL(got, want);
}
#define EXPECT_COUNT(t, n) expect_count((t), (n), __LINE__)

static vmmem_iotlb *new_tlb(void)
{
    vmmem_iotlb *t = NULL;
    VT_ASSERT_RC(vmmem_iotlb_new(&t), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

/* ---- the IOTLB --------------------------------------------------------------- */

static void t_iotlb_args(void)
{
    VT_ASSERT_RC(vmmem_iotlb_new(NULL), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_iotlb_count(NULL), 0);
    vmmem_iotlb_free(NULL);
    vmmem_iotlb_invalidate_all(NULL);
    vmmem_iotlb_result_free(NULL);
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_lookup(NULL, 0, 1, R, &res), -EINVAL);
    VT_ASSERT_RC(vmmem_iotlb_set(NULL, 0, 0, 1, R), -EINVAL);
    VT_ASSERT_RC(vmmem_iotlb_invalidate(NULL, 0, 1), -EINVAL);
    vmmem_iotlb *t = new_tlb();
    EXPECT_COUNT(t, 0);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 1, R, NULL), -EINVAL);
    vmmem_iotlb_free(t);
}

static void t_iotlb_set_lookup(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x20000, 0x1000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x5000, 0x3000, 0x10, R), 0);
    EXPECT_COUNT(t, 2);

    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1000, 0x1000, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x1000, 0x20000, 0x1000);
    vmmem_iotlb_result_free(&res);
    CU_ASSERT_PTR_NULL(res.mapped);
    CU_ASSERT_EQUAL(res.n_mapped, 0);

    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1800, 0x100, W, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x1800, 0x20800, 0x100);
    vmmem_iotlb_result_free(&res);

    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1fff, 1, RW, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x1fff, 0x20fff, 1);
    vmmem_iotlb_result_free(&res);

    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x5000, 0x10, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x5000, 0x3000, 0x10);
    vmmem_iotlb_result_free(&res);

    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x5004, 4, 0, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x5004, 0x3004, 4);
    vmmem_iotlb_result_free(&res);

    /* Lookups do not change the table. */
    EXPECT_COUNT(t, 2);
    vmmem_iotlb_free(t);
}

static void t_iotlb_merge(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0, 0x10000, 0x1000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x11000, 0x1000, RW), 0);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x2000, RW, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0, 0x10000, 0x2000);
    vmmem_iotlb_result_free(&res);
    /* A partial lookup across the seam is one piece. */
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0xff0, 0x20, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0xff0, 0x10ff0, 0x20);
    vmmem_iotlb_result_free(&res);

    /* Filling a gap merges with both neighbours. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x3000, 0x13000, 0x1000, RW), 0);
    EXPECT_COUNT(t, 2);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x2000, 0x12000, 0x1000, RW), 0);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x4000, W, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0, 0x10000, 0x4000);
    vmmem_iotlb_result_free(&res);

    /* Merging on the left only (the new entry comes after). */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x4000, 0x14000, 0x10, RW), 0);
    EXPECT_COUNT(t, 1);
    /* A consistent overlapping re-set keeps one entry. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x800, 0x10800, 0x2000, RW), 0);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x4010, RW, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0, 0x10000, 0x4010);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

static void t_iotlb_no_merge(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    /* Two IOVA ranges aliasing one target. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0, 0x10000, 0x1000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x10000, 0x1000, RW), 0);
    EXPECT_COUNT(t, 2);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x2000, R, &res), 0);
    EXPECT_COUNTS(res, 2, 0, 0);
    EXPECT_MAPPED(res, 0, 0, 0x10000, 0x1000);
    EXPECT_MAPPED(res, 1, 0x1000, 0x10000, 0x1000);
    vmmem_iotlb_result_free(&res);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0xff0, 0x20, R, &res), 0);
    EXPECT_COUNTS(res, 2, 0, 0);
    EXPECT_MAPPED(res, 0, 0xff0, 0x10ff0, 0x10);
    EXPECT_MAPPED(res, 1, 0x1000, 0x10000, 0x10);
    vmmem_iotlb_result_free(&res);

    /* The same translation (delta 0xf000) with another permission. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x2000, 0x11000, 0x1000, R), 0);
    EXPECT_COUNT(t, 3);
    /* The same translation and permission, but not adjacent. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x4000, 0x13000, 0x1000, R), 0);
    EXPECT_COUNT(t, 4);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1800, 0x1000, R, &res), 0);
    EXPECT_COUNTS(res, 2, 0, 0);
    EXPECT_MAPPED(res, 0, 0x1800, 0x10800, 0x800);
    EXPECT_MAPPED(res, 1, 0x2000, 0x11000, 0x800);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

static void t_iotlb_permissions(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x1000, 0x1000, R), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x2000, 0x2000, 0x1000, W), 0);
    EXPECT_COUNT(t, 2); /* same translation, different permission */

    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x1000, 0x2000, RW, &res), VMMEM_EIOMMU_FAULT, 0x1000);
    EXPECT_COUNTS(res, 0, 0, 2);
    EXPECT_DENIED(res, 0, 0x1000, 0x1000);
    EXPECT_DENIED(res, 1, 0x2000, 0x1000);
    vmmem_iotlb_result_free(&res);

    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x1000, 0x2000, R, &res), VMMEM_EIOMMU_FAULT, 0x2000);
    CU_ASSERT_EQUAL(res.n_misses, 0);
    CU_ASSERT_EQUAL_FATAL(res.n_denied, 1);
    EXPECT_DENIED(res, 0, 0x2000, 0x1000);
    vmmem_iotlb_result_free(&res);

    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x1000, 0x2000, W, &res), VMMEM_EIOMMU_FAULT, 0x1000);
    CU_ASSERT_EQUAL(res.n_misses, 0);
    CU_ASSERT_EQUAL_FATAL(res.n_denied, 1);
    EXPECT_DENIED(res, 0, 0x1000, 0x1000);
    vmmem_iotlb_result_free(&res);

    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1000, 0x2000, 0, &res), 0);
    EXPECT_COUNTS(res, 2, 0, 0);
    EXPECT_MAPPED(res, 0, 0x1000, 0x1000, 0x1000);
    EXPECT_MAPPED(res, 1, 0x2000, 0x2000, 0x1000);
    vmmem_iotlb_result_free(&res);

    /* Denied ranges are clipped to the request and named. */
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x1800, 0x1234, R, &res), VMMEM_EIOMMU_FAULT, 0x2000);
    EXPECT_MSG_NAMES(0x2000);
    EXPECT_MSG_NAMES(0xa34);
    CU_ASSERT_EQUAL(res.n_misses, 0);
    CU_ASSERT_EQUAL_FATAL(res.n_denied, 1);
    EXPECT_DENIED(res, 0, 0x2000, 0xa34);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

static void t_iotlb_invalidate_hole(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x20000, 0x100, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, 0x1080, 3), 0);
    EXPECT_COUNT(t, 2); /* one entry split into two */

    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1000, 0x80, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x1000, 0x20000, 0x80);
    vmmem_iotlb_result_free(&res);

    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x1000, 0x100, R, &res), VMMEM_EIOMMU_FAULT, 0x1080);
    EXPECT_MSG_NAMES(0x1080);
    CU_ASSERT_EQUAL(res.n_denied, 0);
    CU_ASSERT_EQUAL_FATAL(res.n_misses, 1);
    EXPECT_MISS(res, 0, 0x1080, 3);
    vmmem_iotlb_result_free(&res);

    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1083, 0x7d, RW, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x1083, 0x20083, 0x7d);
    vmmem_iotlb_result_free(&res);

    /* Setting the hole again with the same translation heals the split. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1080, 0x20080, 3, RW), 0);
    EXPECT_COUNT(t, 1);
    vmmem_iotlb_free(t);
}

static void t_iotlb_invalidate_partial(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0, 0x10000, 0x3000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x4000, 0x30000, 0x1000, R), 0);
    EXPECT_COUNT(t, 2);

    /* Head cut. */
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, 0, 0x800), 0);
    EXPECT_COUNT(t, 2);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x800, 0x2800, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x800, 0x10800, 0x2800);
    vmmem_iotlb_result_free(&res);
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x7ff, 2, R, &res), VMMEM_EIOMMU_FAULT, 0x7ff);
    CU_ASSERT_EQUAL_FATAL(res.n_misses, 1);
    EXPECT_MISS(res, 0, 0x7ff, 1);
    vmmem_iotlb_result_free(&res);

    /* A range spanning the tail of one entry and the head of the next. */
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, 0x2000, 0x2800), 0);
    EXPECT_COUNT(t, 2);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x800, 0x1800, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x800, 0x10800, 0x1800);
    vmmem_iotlb_result_free(&res);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x4800, 0x800, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x4800, 0x30800, 0x800);
    vmmem_iotlb_result_free(&res);
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x800, 0x4800, R, &res), VMMEM_EIOMMU_FAULT, 0x2000);
    CU_ASSERT_EQUAL_FATAL(res.n_misses, 1);
    EXPECT_MISS(res, 0, 0x2000, 0x2800);
    vmmem_iotlb_result_free(&res);

    /* A range covering whole entries removes them. */
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, 0x4000, 0x1000), 0);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, 0, 0x10000), 0);
    EXPECT_COUNT(t, 0);

    /* Length 0 and unmapped ranges change nothing; overflow is refused. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x1000, 0x1000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, 0x1800, 0), 0);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, 0x8000, 0x1000), 0);
    EXPECT_COUNT(t, 1);
    EXPECT_ERR(vmmem_iotlb_invalidate(t, 0x1800, MAX), VMMEM_EOVERFLOW, 0x1800);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1000, 0x1000, RW, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

static void t_iotlb_invalidate_all(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x10000, 0x1000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x2000, 0x50000, 0x1000, R), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x3000, 0x10000, 0x1000, W), 0);
    EXPECT_COUNT(t, 3);
    vmmem_iotlb_invalidate_all(t);
    EXPECT_COUNT(t, 0);
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x1000, 0x3000, R, &res), VMMEM_EIOMMU_FAULT, 0x1000);
    EXPECT_COUNTS(res, 0, 1, 0);
    EXPECT_MISS(res, 0, 0x1000, 0x3000);
    vmmem_iotlb_result_free(&res);
    /* Usable again afterwards. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x40000, 0x10, R), 0);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1000, 0x10, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0x1000, 0x40000, 0x10);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

static void t_iotlb_clipping(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x10000, 0x1000, R), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x3000, 0x20000, 0x1000, RW), 0);

    /* [0x800, 0x3800) for writing: miss, denied, miss, mapped. */
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x800, 0x3000, W, &res), VMMEM_EIOMMU_FAULT, 0x800);
    EXPECT_MSG_NAMES(0x800);
    CU_ASSERT_EQUAL_FATAL(res.n_misses, 2);
    CU_ASSERT_EQUAL_FATAL(res.n_denied, 1);
    EXPECT_MISS(res, 0, 0x800, 0x800);
    EXPECT_MISS(res, 1, 0x2000, 0x1000);
    EXPECT_DENIED(res, 0, 0x1000, 0x1000);
    vmmem_iotlb_result_free(&res);

    /* Mapped head, missing tail. */
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x1800, 0x1000, R, &res), VMMEM_EIOMMU_FAULT, 0x2000);
    CU_ASSERT_EQUAL(res.n_denied, 0);
    CU_ASSERT_EQUAL_FATAL(res.n_misses, 1);
    EXPECT_MISS(res, 0, 0x2000, 0x800);
    vmmem_iotlb_result_free(&res);

    /* Denied head, then a miss, then a clipped mapped piece: the denied
     * range comes first and is the one named. */
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x1c00, 0x1800, W, &res), VMMEM_EIOMMU_FAULT, 0x1c00);
    EXPECT_MSG_NAMES(0x1c00);
    CU_ASSERT_EQUAL_FATAL(res.n_denied, 1);
    CU_ASSERT_EQUAL_FATAL(res.n_misses, 1);
    EXPECT_DENIED(res, 0, 0x1c00, 0x400);
    EXPECT_MISS(res, 0, 0x2000, 0x1000);
    vmmem_iotlb_result_free(&res);

    /* Entirely inside a gap, and past everything. */
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x2100, 0x10, 0, &res), VMMEM_EIOMMU_FAULT, 0x2100);
    EXPECT_COUNTS(res, 0, 1, 0);
    EXPECT_MISS(res, 0, 0x2100, 0x10);
    vmmem_iotlb_result_free(&res);
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0x3ff0, 0x20, R, &res), VMMEM_EIOMMU_FAULT, 0x4000);
    CU_ASSERT_EQUAL_FATAL(res.n_misses, 1);
    CU_ASSERT_EQUAL(res.n_denied, 0);
    EXPECT_MISS(res, 0, 0x4000, 0x10);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

static void t_iotlb_len0_overflow(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    /* Length 0 is an empty success, mapped or not. */
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0x1000, 0, RW, &res), 0);
    EXPECT_COUNTS(res, 0, 0, 0);
    vmmem_iotlb_result_free(&res);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, MAX, 0, R, &res), 0);
    EXPECT_COUNTS(res, 0, 0, 0);
    vmmem_iotlb_result_free(&res);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x1000, 0, RW), 0);
    EXPECT_COUNT(t, 0);

    /* iova + len past 2^64. */
    EXPECT_ERR(vmmem_iotlb_lookup(t, MAX, 2, R, &res), VMMEM_EOVERFLOW, MAX);
    EXPECT_COUNTS(res, 0, 0, 0);
    vmmem_iotlb_result_free(&res);
    EXPECT_ERR(vmmem_iotlb_lookup(t, 2, MAX, 0, &res), VMMEM_EOVERFLOW, 2);
    EXPECT_COUNTS(res, 0, 0, 0);
    vmmem_iotlb_result_free(&res);
    /* Ending exactly at 2^64 is fine: [1, 2^64) is one miss. */
    EXPECT_ERR(vmmem_iotlb_lookup(t, 1, MAX, 0, &res), VMMEM_EIOMMU_FAULT, 1);
    EXPECT_COUNTS(res, 0, 1, 0);
    EXPECT_MISS(res, 0, 1, MAX);
    vmmem_iotlb_result_free(&res);

    /* set: iova or target + len past 2^64, bad permissions. */
    EXPECT_ERR(vmmem_iotlb_set(t, MAX - 0xf, 0, 0x11, RW), VMMEM_EOVERFLOW, MAX - 0xf);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0, MAX - 0xf, 0x11, RW), VMMEM_EOVERFLOW);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EOVERFLOW);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x1000, 0x10, 0), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, -EINVAL);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x1000, 0x10, 4), -EINVAL);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x1000, 0x10, RW | 4), -EINVAL);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x1000, 0x10, -1), -EINVAL);
    EXPECT_COUNT(t, 0);
    /* A target ending exactly at 2^64 is fine. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0, MAX - 0xf, 0x10, RW), 0);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x10, RW, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0, MAX - 0xf, 0x10);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

static void t_iotlb_top(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, MAX - 0xfff, MAX - 0xfff, 0x1000, RW), 0);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, MAX - 0xf, 0x10, RW, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, MAX - 0xf, MAX - 0xf, 0x10);
    vmmem_iotlb_result_free(&res);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, MAX, 1, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, MAX, MAX, 1);
    vmmem_iotlb_result_free(&res);

    /* Merges with its neighbour below. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, MAX - 0x1fff, MAX - 0x1fff, 0x1000, RW), 0);
    EXPECT_COUNT(t, 1);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, MAX - 0x1fff, 0x2000, W, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, MAX - 0x1fff, MAX - 0x1fff, 0x2000);
    vmmem_iotlb_result_free(&res);

    /* Invalidate the very last byte, then split below it. */
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, MAX, 1), 0);
    EXPECT_COUNT(t, 1);
    EXPECT_ERR(vmmem_iotlb_lookup(t, MAX - 1, 2, R, &res), VMMEM_EIOMMU_FAULT, MAX);
    CU_ASSERT_EQUAL_FATAL(res.n_misses, 1);
    EXPECT_MISS(res, 0, MAX, 1);
    vmmem_iotlb_result_free(&res);
    VT_ASSERT_RC(vmmem_iotlb_invalidate(t, MAX - 0x1000, 1), 0);
    EXPECT_COUNT(t, 2);

    /* An entry ending at 2^64 - 1 and one at 0 with the same delta are not
     * neighbours (no wrap-around merging). */
    vmmem_iotlb_invalidate_all(t);
    VT_ASSERT_RC(vmmem_iotlb_set(t, MAX - 0xfff, 0, 0x1000, RW), 0); /* delta 0x1000 */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0, 0x1000, 0x1000, RW), 0);      /* delta 0x1000 */
    EXPECT_COUNT(t, 2);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, MAX - 0xf, 0x10, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, MAX - 0xf, 0xff0, 0x10);
    vmmem_iotlb_result_free(&res);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x1000, R, &res), 0);
    EXPECT_COUNTS(res, 1, 0, 0);
    EXPECT_MAPPED(res, 0, 0, 0x1000, 0x1000);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

static void t_iotlb_overwrite(void)
{
    vmmem_iotlb *t = new_tlb();
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0, 0x10000, 0x3000, RW), 0);
    /* Another target in the middle splits the entry around it. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x50000, 0x1000, R), 0);
    EXPECT_COUNT(t, 3);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x3000, R, &res), 0);
    EXPECT_COUNTS(res, 3, 0, 0);
    EXPECT_MAPPED(res, 0, 0, 0x10000, 0x1000);
    EXPECT_MAPPED(res, 1, 0x1000, 0x50000, 0x1000);
    EXPECT_MAPPED(res, 2, 0x2000, 0x12000, 0x1000);
    vmmem_iotlb_result_free(&res);
    EXPECT_ERR(vmmem_iotlb_lookup(t, 0, 0x3000, W, &res), VMMEM_EIOMMU_FAULT, 0x1000);
    CU_ASSERT_EQUAL(res.n_misses, 0);
    CU_ASSERT_EQUAL_FATAL(res.n_denied, 1);
    EXPECT_DENIED(res, 0, 0x1000, 0x1000);
    vmmem_iotlb_result_free(&res);

    /* Restoring the original translation merges all three back. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x11000, 0x1000, RW), 0);
    EXPECT_COUNT(t, 1);

    /* An overlapping set with another target replaces exactly its range. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x800, 0x70000, 0x2000, RW), 0);
    EXPECT_COUNT(t, 3);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x3000, RW, &res), 0);
    EXPECT_COUNTS(res, 3, 0, 0);
    EXPECT_MAPPED(res, 0, 0, 0x10000, 0x800);
    EXPECT_MAPPED(res, 1, 0x800, 0x70000, 0x2000);
    EXPECT_MAPPED(res, 2, 0x2800, 0x12800, 0x800);
    vmmem_iotlb_result_free(&res);

    /* A set covering several entries and gaps replaces them all. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x5000, 0x90000, 0x800, R), 0);
    EXPECT_COUNT(t, 4);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x400, 0x80000, 0x5000, W), 0);
    EXPECT_COUNT(t, 3);
    VT_ASSERT_RC(vmmem_iotlb_lookup(t, 0, 0x5800, 0, &res), 0);
    EXPECT_COUNTS(res, 3, 0, 0);
    EXPECT_MAPPED(res, 0, 0, 0x10000, 0x400);
    EXPECT_MAPPED(res, 1, 0x400, 0x80000, 0x5000);
    EXPECT_MAPPED(res, 2, 0x5400, 0x90400, 0x400);
    vmmem_iotlb_result_free(&res);
    vmmem_iotlb_free(t);
}

/* The IOVA log holds exactly these pages; collects (clears) it. */
static void expect_log(vmmem_bitmap *log, const unsigned *pages, size_t n, int line)
{
    uint64_t want[LOG_WORDS] = {0}, got[LOG_WORDS] = {0};
    for (size_t i = 0; i < n; i++)
        want[pages[i] / 64] |= (uint64_t)1 << (pages[i] % 64);
    size_t nw = vmmem_bitmap_collect(log, got, LOG_WORDS); /* and clear */
    CU_ASSERT_EQUAL(nw, LOG_WORDS);
    for (size_t w = 0; w < LOG_WORDS; w++) {
        if (got[w] != want[w])
            fprintf(stdout, "\n    line %d: IOVA log word %zu = 0x%016llx, want 0x%016llx\n", line,
                    w, (unsigned long long)got[w], (unsigned long long)want[w]);
        CU_ASSERT_EQUAL(got[w], want[w]);
    }
}
#define EXPECT_LOG(log, ...)                                                                       \
    do {                                                                                           \
        static const unsigned pg_[] = {__VA_ARGS__};                                               \
        expect_log((log), pg_, sizeof pg_ / sizeof pg_[0], __LINE__);                              \
    } while (0)
#define EXPECT_LOG_EMPTY(log) expect_log((log), NULL, 0, __LINE__)

/* ---- translated memory: fixture -------------------------------------------- */

enum { RS_NOTHING, RS_FILL, RS_FAIL };

struct resolver {
    int calls;
    uint64_t iova, len;
    int perm;
    int mode;
    uint64_t delta; /* RS_FILL: maps iova -> iova + delta, RW */
    int err;        /* RS_FAIL: returned */
};

static int resolve_cb(void *opaque, vmmem_iotlb *t, uint64_t iova, uint64_t len, int perm)
{
    struct resolver *r = opaque;
    r->calls++;
    r->iova = iova;
    r->len = len;
    r->perm = perm;
    switch (r->mode) {
    case RS_FILL:
        return vmmem_iotlb_set(t, iova, iova + r->delta, len, RW);
    case RS_FAIL:
        return r->err;
    default:
        return 0;
    }
}

static void expect_call(const struct resolver *r, int calls, uint64_t iova, uint64_t len, int perm,
                        int line)
{
    if (r->calls != calls || r->iova != iova || r->len != len || r->perm != perm)
        fprintf(stdout,
                "\n    line %d: resolver %d calls, last (0x%llx, 0x%llx, %d); want %d calls, "
                "(0x%llx, 0x%llx, %d)\n",
                line, r->calls, (unsigned long long)r->iova, (unsigned long long)r->len, r->perm,
                calls, (unsigned long long)iova, (unsigned long long)len, perm);
    CU_ASSERT_EQUAL(r->calls, calls);
    CU_ASSERT_EQUAL(r->iova, iova);
    CU_ASSERT_EQUAL(r->len, len);
    CU_ASSERT_EQUAL(r->perm, perm);
}
#define EXPECT_CALL(r, calls, iova, len, perm)                                                     \
    expect_call(&(r), (calls), (iova), (len), (perm), __LINE__)

static void expect_calls(const struct resolver *r, int calls, int line)
{
    if (r->calls != calls)
        fprintf(stdout, "\n    line %d: resolver called %d times, want %d\n", line, r->calls,
                calls);
    CU_ASSERT_EQUAL(r->calls, calls);
}
#define EXPECT_CALLS(r, calls) expect_calls(&(r), (calls), __LINE__)

struct fx {
    vmmem_map *phys;
    vmmem_iotlb *t;
    vmmem_iommu *im;
    struct resolver rs;
};

/* Fill every writable region with pat(gpa) through host pointers (not
 * dirty-marked); read-only regions keep their zeros. */
static void fill_phys(vmmem_map *m)
{
    for (size_t i = 0; i < vmmem_map_num_regions(m); i++) {
        struct vmmem_region_info info;
        vmmem_region_get_info(vmmem_map_region(m, i), &info);
        CU_ASSERT_PTR_NOT_NULL_FATAL(info.host);
        if (!(info.prot & VMMEM_PROT_WRITE))
            continue;
        uint8_t *h = info.host;
        for (uint64_t k = 0; k < info.size; k++)
            h[k] = pat(info.start + k);
    }
}

static vmmem_map *new_phys(const char *cfg, uint32_t flags)
{
    struct vmmem_map_options o = {.struct_size = sizeof o, .flags = flags, .dirty_page_size = 0};
    vmmem_map *m = NULL;
    int rc = vmmem_map_from_config(&m, NULL, cfg, &o);
    VT_ASSERT_RC(rc, 0);
    if (rc != 0)
        return NULL;
    fill_phys(m);
    return m;
}

static bool fx_init(struct fx *f, uint32_t flags, bool with_resolver)
{
    memset(f, 0, sizeof *f);
    f->phys = new_phys(PHYS_CFG, flags);
    if (f->phys == NULL)
        return false;
    f->t = new_tlb();
    int rc = vmmem_iommu_new(&f->im, f->phys, f->t, with_resolver ? resolve_cb : NULL, &f->rs);
    VT_ASSERT_RC(rc, 0);
    if (rc != 0) {
        vmmem_iotlb_free(f->t);
        vmmem_map_unref(f->phys);
        return false;
    }
    return true;
}

static void fx_fini(struct fx *f)
{
    vmmem_iommu_free(f->im);
    vmmem_iotlb_free(f->t);
    vmmem_map_unref(f->phys);
}

/* buf[k] == pat(gpa + k) for k < len. */
static bool is_pat(const uint8_t *buf, size_t len, uint64_t gpa)
{
    for (size_t k = 0; k < len; k++)
        if (buf[k] != pat(gpa + k)) {
            fprintf(stdout, "\n    byte %zu is 0x%02x, want pat(0x%llx) = 0x%02x\n", k, buf[k],
                    (unsigned long long)(gpa + k), pat(gpa + k));
            return false;
        }
    return true;
}

static bool all_bytes(const uint8_t *buf, size_t len, uint8_t v)
{
    for (size_t k = 0; k < len; k++)
        if (buf[k] != v)
            return false;
    return true;
}

/* Physical bytes still hold the initial pattern. */
static bool phys_untouched(vmmem_map *m, uint64_t gpa, size_t len)
{
    uint8_t buf[0x1000];
    CU_ASSERT_FATAL(len <= sizeof buf);
    int rc = vmmem_read_slice(m, gpa, buf, len);
    VT_ASSERT_RC(rc, 0);
    return rc == 0 && is_pat(buf, len, gpa);
}

static int pipe_with(const void *data, size_t n, int fds[2])
{
    if (pipe(fds) != 0) {
        CU_FAIL("pipe");
        return -1;
    }
    if (n > 0 && write(fds[1], data, n) != (ssize_t)n) {
        CU_FAIL("write to pipe");
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return 0;
}

/* ---- translated memory -------------------------------------------------------- */

static void t_tr_args(void)
{
    vmmem_map *phys = vt_map(PHYS_CFG);
    if (phys == NULL)
        return;
    vmmem_iotlb *t = new_tlb();
    vmmem_iommu *im = NULL;
    VT_ASSERT_RC(vmmem_iommu_new(NULL, phys, t, NULL, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_new(&im, NULL, t, NULL, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_new(&im, phys, NULL, NULL, NULL), -EINVAL);
    CU_ASSERT_PTR_NULL(im);
    VT_ASSERT_RC(vmmem_iommu_new(&im, phys, t, NULL, NULL), 0);
    CU_ASSERT_TRUE(vmmem_iommu_enabled(im)); /* translation starts enabled */
    vmmem_iommu_set_enabled(im, false);
    CU_ASSERT_FALSE(vmmem_iommu_enabled(im));
    vmmem_iommu_set_enabled(im, true);
    CU_ASSERT_TRUE(vmmem_iommu_enabled(im));
    CU_ASSERT_FALSE(vmmem_iommu_enabled(NULL));
    uint8_t b = 0;
    VT_ASSERT_RC(vmmem_iommu_read(NULL, 0, &b, 1), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_read_slice(NULL, 0, &b, 1), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_set_phys(im, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_set_phys(NULL, phys), -EINVAL);
    CU_ASSERT_FALSE(vmmem_iommu_check_range(NULL, 0, 1, R));
    /* The IOMMU holds its own reference to the physical map. */
    vmmem_map_unref(phys);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x1000, 0x10000, 0x10, RW), 0);
    uint8_t in[4] = {1, 2, 3, 4}, out[4] = {0};
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x1000, in, 4), 0);
    VT_ASSERT_RC(vmmem_iommu_read_slice(im, 0x1000, out, 4), 0);
    CU_ASSERT_EQUAL(memcmp(in, out, 4), 0);
    vmmem_iommu_free(im);
    vmmem_iommu_free(NULL);
    vmmem_iotlb_free(t);
}

static void t_tr_read_two_regions(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    static uint8_t buf[0x2000];
    /* One IOVA range over the seam of physical regions A and B. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x100000, 0xf000, 0x2000, R), 0);
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x100000, buf, 0x2000), 0);
    CU_ASSERT_TRUE(is_pat(buf, 0x2000, 0xf000));
    memset(buf, 0, sizeof buf);
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0x100000, buf, 0x2000), 0x2000);
    CU_ASSERT_TRUE(is_pat(buf, 0x2000, 0xf000));
    /* An object straddling the physical seam (IOVA 0x101000 = GPA 0x10000). */
    uint64_t v = 0, want;
    VT_ASSERT_RC(vmmem_iommu_read_obj(f.im, 0x100ffc, &v, sizeof v), 0);
    VT_ASSERT_RC(vmmem_read_obj(f.phys, 0xfffc, &want, sizeof want), 0);
    CU_ASSERT_EQUAL(v, want);

    /* Two IOTLB entries onto non-contiguous physical regions B and C. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x200000, 0x18000, 0x1000, R), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x201000, 0x40000, 0x1000, R), 0);
    memset(buf, 0, sizeof buf);
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x200800, buf, 0x1000), 0);
    CU_ASSERT_TRUE(is_pat(buf, 0x800, 0x18800));
    CU_ASSERT_TRUE(is_pat(buf + 0x800, 0x800, 0x40000));
    memset(buf, 0, sizeof buf);
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0x200800, buf, 0x1000), 0x1000);
    CU_ASSERT_TRUE(is_pat(buf, 0x800, 0x18800));
    CU_ASSERT_TRUE(is_pat(buf + 0x800, 0x800, 0x40000));
    /* A small object over the translation seam. */
    uint32_t w = 0;
    VT_ASSERT_RC(vmmem_iommu_read_obj(f.im, 0x200ffe, &w, sizeof w), 0);
    uint8_t wb[4];
    memcpy(wb, &w, 4);
    CU_ASSERT_TRUE(is_pat(wb, 2, 0x18ffe));
    CU_ASSERT_TRUE(is_pat(wb + 2, 2, 0x40000));
    CU_ASSERT_TRUE(vmmem_iommu_check_range(f.im, 0x200000, 0x2000, R));
    EXPECT_CALLS(f.rs, 0);
    fx_fini(&f);
}

static void t_tr_write_phys(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x300000, 0x8000, 0x100, W), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x300100, 0x40000, 0x100, RW), 0);
    uint8_t got[0x40];
    VT_ASSERT_RC(vmmem_iommu_write_slice(f.im, 0x300010, "hello", 5), 0);
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x8010, got, 5), 0);
    CU_ASSERT_EQUAL(memcmp(got, "hello", 5), 0);
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x800f, 1));
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x8015, 1));

    CU_ASSERT_EQUAL(vmmem_iommu_write(f.im, 0x300020, "world", 5), 5);
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x8020, got, 5), 0);
    CU_ASSERT_EQUAL(memcmp(got, "world", 5), 0);

    uint32_t v = 0xdeadbeef, pv = 0;
    VT_ASSERT_RC(vmmem_iommu_write_obj(f.im, 0x300040, &v, sizeof v), 0);
    VT_ASSERT_RC(vmmem_read_obj(f.phys, 0x8040, &pv, sizeof pv), 0);
    CU_ASSERT_EQUAL(pv, 0xdeadbeef);

    /* Over the translation seam: GPA [0x80f0, 0x8100) then [0x40000, 0x40010). */
    uint8_t src[0x20];
    for (size_t k = 0; k < sizeof src; k++)
        src[k] = (uint8_t)(0x80 + k);
    VT_ASSERT_RC(vmmem_iommu_write_slice(f.im, 0x3000f0, src, sizeof src), 0);
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x80f0, got, 0x10), 0);
    CU_ASSERT_EQUAL(memcmp(got, src, 0x10), 0);
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x40000, got, 0x10), 0);
    CU_ASSERT_EQUAL(memcmp(got, src + 0x10, 0x10), 0);
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x40010, 0x10));
    /* And back through the IOVA (the second piece is readable). */
    memset(got, 0, sizeof got);
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x300100, got, 0x10), 0);
    CU_ASSERT_EQUAL(memcmp(got, src + 0x10, 0x10), 0);
    EXPECT_CALLS(f.rs, 0);
    fx_fini(&f);
}

static void t_tr_perm_read(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    /* [0x800, 0x1000) readable, [0x1000, 0x2000) write-only. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x800, 0x800, 0x800, R), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x1000, 0x1000, 0x1000, W), 0);
    uint8_t buf[0x1000];
    uint64_t v = 0;

    memset(buf, 0xaa, sizeof buf);
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x1000, buf, 0x10), VMMEM_EIOMMU_FAULT, 0x1000);
    EXPECT_MSG_NAMES(0x1000);
    EXPECT_ERR(vmmem_iommu_read(f.im, 0x1100, buf, 0x10), VMMEM_EIOMMU_FAULT, 0x1100);
    EXPECT_MSG_NAMES(0x1100);
    EXPECT_ERR(vmmem_iommu_read_obj(f.im, 0x1008, &v, sizeof v), VMMEM_EIOMMU_FAULT, 0x1008);
    EXPECT_ERR(vmmem_iommu_load(f.im, 0x1010, 8, &v, VMMEM_SEQ_CST), VMMEM_EIOMMU_FAULT, 0x1010);
    CU_ASSERT_EQUAL(v, 0);
    int fds[2];
    if (pipe_with(NULL, 0, fds) == 0) {
        EXPECT_ERR(vmmem_iommu_write_to_fd(f.im, 0x1000, fds[1], 0x10), VMMEM_EIOMMU_FAULT, 0x1000);
        close(fds[0]);
        close(fds[1]);
    }
    CU_ASSERT_TRUE(all_bytes(buf, sizeof buf, 0xaa));

    /* Readable head, write-only tail: all-or-error copies nothing, the
     * short-count read stops at the forbidden IOVA. */
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0xc00, buf, 0x800), VMMEM_EIOMMU_FAULT, 0x1000);
    EXPECT_MSG_NAMES(0x1000);
    EXPECT_MSG_NAMES(0x400);
    CU_ASSERT_TRUE(all_bytes(buf, sizeof buf, 0xaa));
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0xc00, buf, 0x800), 0x400);
    CU_ASSERT_TRUE(is_pat(buf, 0x400, 0xc00));
    CU_ASSERT_TRUE(all_bytes(buf + 0x400, sizeof buf - 0x400, 0xaa));

    /* Writing the write-only range works. */
    VT_ASSERT_RC(vmmem_iommu_write_slice(f.im, 0x1000, "x", 1), 0);
    fx_fini(&f);
}

static void t_tr_perm_write(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    /* [0x4000, 0x5000) writable, [0x5000, 0x6000) read-only. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x4000, 0x4000, 0x1000, W), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x5000, 0x5000, 0x1000, R), 0);
    static uint8_t src[0x1000];
    memset(src, 0x11, sizeof src);
    uint64_t v = 0x0102030405060708u;

    EXPECT_ERR(vmmem_iommu_write_slice(f.im, 0x5000, src, 0x10), VMMEM_EIOMMU_FAULT, 0x5000);
    EXPECT_MSG_NAMES(0x5000);
    EXPECT_ERR(vmmem_iommu_write(f.im, 0x5800, src, 0x10), VMMEM_EIOMMU_FAULT, 0x5800);
    EXPECT_ERR(vmmem_iommu_write_obj(f.im, 0x5008, &v, sizeof v), VMMEM_EIOMMU_FAULT, 0x5008);
    EXPECT_ERR(vmmem_iommu_store(f.im, 0x5010, 8, v, VMMEM_RELEASE), VMMEM_EIOMMU_FAULT, 0x5010);
    int fds[2];
    if (pipe_with(src, 0x10, fds) == 0) {
        EXPECT_ERR(vmmem_iommu_read_from_fd(f.im, 0x5000, fds[0], 0x10), VMMEM_EIOMMU_FAULT,
                   0x5000);
        /* Nothing was consumed from the pipe. */
        uint8_t left[0x20];
        CU_ASSERT_EQUAL(read(fds[0], left, sizeof left), 0x10);
        close(fds[0]);
        close(fds[1]);
    }
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x5000, 0x1000));

    /* Writable head, read-only tail. */
    EXPECT_ERR(vmmem_iommu_write_slice(f.im, 0x4f00, src, 0x200), VMMEM_EIOMMU_FAULT, 0x5000);
    EXPECT_MSG_NAMES(0x5000);
    EXPECT_MSG_NAMES(0x100);
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x4f00, 0x200));
    CU_ASSERT_EQUAL(vmmem_iommu_write(f.im, 0x4f00, src, 0x200), 0x100);
    uint8_t got[0x100];
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x4f00, got, 0x100), 0);
    CU_ASSERT_TRUE(all_bytes(got, 0x100, 0x11));
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x5000, 0x1000));
    fx_fini(&f);
}

static void t_tr_perm_rw(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x1000, 0x1000, 0x1000, R), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x2000, 0x2000, 0x1000, W), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x3000, 0x3000, 0x1000, RW), 0);

    /* Slices asked for read and write: only the RW range qualifies. */
    vmmem_iommu_iter it;
    vmmem_slice s;
    vmmem_iommu_slices_begin(&it, f.im, 0x1800, 0x10, RW);
    EXPECT_ERR(vmmem_iommu_slices_next(&it, &s), VMMEM_EIOMMU_FAULT, 0x1800);
    EXPECT_MSG_NAMES(0x1800);
    vmmem_iommu_slices_end(&it);
    vmmem_iommu_slices_begin(&it, f.im, 0x2800, 0x10, RW);
    EXPECT_ERR(vmmem_iommu_slices_next(&it, &s), VMMEM_EIOMMU_FAULT, 0x2800);
    vmmem_iommu_slices_end(&it);
    vmmem_iommu_slices_begin(&it, f.im, 0x3800, 0x10, RW);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x10);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0);
    vmmem_iommu_slices_end(&it);

    /* Atomics: a load needs READ, a store WRITE. */
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x1000, 4, &v, VMMEM_RELAXED), 0);
    EXPECT_ERR(vmmem_iommu_store(f.im, 0x1000, 4, 1, VMMEM_RELAXED), VMMEM_EIOMMU_FAULT, 0x1000);
    EXPECT_ERR(vmmem_iommu_load(f.im, 0x2000, 4, &v, VMMEM_RELAXED), VMMEM_EIOMMU_FAULT, 0x2000);
    VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x2000, 4, 7, VMMEM_RELAXED), 0);
    VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x3000, 4, 9, VMMEM_RELAXED), 0);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x3000, 4, &v, VMMEM_ACQUIRE), 0);
    CU_ASSERT_EQUAL(v, 9);

    /* fd I/O: read_from_fd writes guest memory, write_to_fd reads it. */
    uint8_t data[0x10];
    memset(data, 0x5c, sizeof data);
    int fds[2];
    if (pipe_with(data, sizeof data, fds) == 0) {
        EXPECT_ERR(vmmem_iommu_read_from_fd(f.im, 0x1000, fds[0], 0x10), VMMEM_EIOMMU_FAULT,
                   0x1000);
        EXPECT_ERR(vmmem_iommu_write_to_fd(f.im, 0x2000, fds[1], 0x10), VMMEM_EIOMMU_FAULT, 0x2000);
        CU_ASSERT_EQUAL(vmmem_iommu_read_from_fd(f.im, 0x2000, fds[0], 0x10), 0x10);
        CU_ASSERT_EQUAL(vmmem_iommu_write_to_fd(f.im, 0x1000, fds[1], 0x10), 0x10);
        uint8_t back[0x10];
        CU_ASSERT_EQUAL(read(fds[0], back, sizeof back), 0x10);
        CU_ASSERT_TRUE(is_pat(back, 0x10, 0x1000));
        close(fds[0]);
        close(fds[1]);
    }
    uint8_t got[0x10];
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x2000, got, 0x10), 0);
    CU_ASSERT_EQUAL(memcmp(got, data, 0x10), 0);
    fx_fini(&f);
}

static void t_tr_read_past_mapping(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x10000, 0x0, 0x1000, R), 0);
    uint8_t buf[0x400];
    memset(buf, 0xaa, sizeof buf);
    /* [0x10f00, 0x11134): the unmapped tail [0x11000, +0x134) is named. */
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x10f00, buf, 0x234), VMMEM_EIOMMU_FAULT, 0x11000);
    EXPECT_MSG_NAMES(0x11000);
    EXPECT_MSG_NAMES(0x134);
    CU_ASSERT_TRUE(all_bytes(buf, sizeof buf, 0xaa));
    uint64_t v = 0;
    EXPECT_ERR(vmmem_iommu_read_obj(f.im, 0x10ffc, &v, sizeof v), VMMEM_EIOMMU_FAULT, 0x11000);
    CU_ASSERT_EQUAL(v, 0);
    /* Just before the mapping. */
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0xfff0, buf, 0x20), VMMEM_EIOMMU_FAULT, 0xfff0);
    EXPECT_MSG_NAMES(0xfff0);
    EXPECT_MSG_NAMES(0x10);
    CU_ASSERT_TRUE(all_bytes(buf, sizeof buf, 0xaa));

    /* The short-count read stops at the first unmapped IOVA. */
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0x10f00, buf, 0x234), 0x100);
    CU_ASSERT_TRUE(is_pat(buf, 0x100, 0xf00));
    CU_ASSERT_TRUE(all_bytes(buf + 0x100, sizeof buf - 0x100, 0xaa));
    EXPECT_ERR(vmmem_iommu_read(f.im, 0x11000, buf, 0x10), VMMEM_EIOMMU_FAULT, 0x11000);
    EXPECT_MSG_NAMES(0x11000);
    /* It also stops at a hole inside the requested range. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x11010, 0x1010, 0x10, R), 0);
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0x10ff0, buf, 0x40), 0x10);
    /* Length 0 is 0, even unmapped. */
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0x90000, buf, 0), 0);
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x90000, buf, 0), 0);
    CU_ASSERT_EQUAL(vmmem_iommu_write(f.im, 0x90000, buf, 0), 0);
    VT_ASSERT_RC(vmmem_iommu_write_slice(f.im, 0x90000, buf, 0), 0);
    fx_fini(&f);
}

static void t_tr_unbacked(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    /* IOVA 0x50000 -> the physical hole; IOVA 0x60000 -> [0x1f800, 0x20800),
     * half backed by region B, half in the hole. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x50000, HOLE, 0x1000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x60000, 0x1f800, 0x1000, RW), 0);
    uint8_t buf[0x1000];
    memset(buf, 0xaa, sizeof buf);

    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x50000, buf, 0x10), VMMEM_EINVALID_ADDRESS, 0x50000);
    EXPECT_ERR(vmmem_iommu_write_slice(f.im, 0x50010, buf, 0x10), VMMEM_EINVALID_ADDRESS, 0x50010);
    /* Short-count calls: the map's "hole at the first byte" error; the
     * address is the IOVA the caller used. */
    EXPECT_ERR(vmmem_iommu_read(f.im, 0x50000, buf, 0x10), VMMEM_EINVALID_ADDRESS, 0x50000);
    EXPECT_ERR(vmmem_iommu_write(f.im, 0x50000, buf, 0x10), VMMEM_EINVALID_ADDRESS, 0x50000);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x50000, 8, &v, VMMEM_RELAXED), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x50000, 8, 1, VMMEM_RELAXED), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x50000, 1, R));
    CU_ASSERT_TRUE(all_bytes(buf, sizeof buf, 0xaa));

    /* Partly backed: all-or-error copies nothing and, as for the map,
     * reports VMMEM_EPARTIAL at the first unbacked byte (IOVA 0x60800). */
    int rc = vmmem_iommu_read_slice(f.im, 0x60000, buf, 0x1000);
    EXPECT_ERR(rc, VMMEM_EPARTIAL, 0x60800);
    CU_ASSERT_EQUAL(vmmem_last_error()->expected, 0x1000);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 0);
    CU_ASSERT_TRUE(all_bytes(buf, sizeof buf, 0xaa));
    memset(buf, 0x33, sizeof buf);
    rc = vmmem_iommu_write_slice(f.im, 0x60000, buf, 0x1000);
    CU_ASSERT(rc < 0);
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x1f800, 0x800));
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x60000, 0x1000, R));
    CU_ASSERT_TRUE(vmmem_iommu_check_range(f.im, 0x60000, 0x800, R));
    /* Short counts stop at the hole. */
    memset(buf, 0xaa, sizeof buf);
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0x60000, buf, 0x1000), 0x800);
    CU_ASSERT_TRUE(is_pat(buf, 0x800, 0x1f800));
    CU_ASSERT_TRUE(all_bytes(buf + 0x800, 0x800, 0xaa));
    memset(buf, 0x33, sizeof buf);
    CU_ASSERT_EQUAL(vmmem_iommu_write(f.im, 0x60700, buf, 0x200), 0x100);
    uint8_t got[0x100];
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x1ff00, got, 0x100), 0);
    CU_ASSERT_TRUE(all_bytes(got, 0x100, 0x33));
    fx_fini(&f);
}

static void t_tr_resolver_fill(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    f.rs.mode = RS_FILL;
    f.rs.delta = (uint64_t)0xf000 - 0x100000; /* IOVA 0x100000 -> GPA 0xf000 */
    static uint8_t buf[0x2000];

    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x100000, buf, 0x2000), 0);
    EXPECT_CALL(f.rs, 1, 0x100000, 0x2000, R);
    CU_ASSERT_TRUE(is_pat(buf, 0x2000, 0xf000));
    EXPECT_COUNT(f.t, 1);
    /* Now mapped: no more calls. */
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x100000, buf, 0x2000), 0);
    EXPECT_CALLS(f.rs, 1);

    /* A write to an unmapped range asks for WRITE. */
    memset(buf, 0x42, 0x100);
    VT_ASSERT_RC(vmmem_iommu_write_slice(f.im, 0x102000, buf, 0x100), 0);
    EXPECT_CALL(f.rs, 2, 0x102000, 0x100, W);
    uint8_t got[0x100];
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x11000, got, 0x100), 0);
    CU_ASSERT_TRUE(all_bytes(got, 0x100, 0x42));

    /* Mapped head, missing tail: the resolver gets exactly the tail. */
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x102000, buf, 0x200), 0);
    EXPECT_CALL(f.rs, 3, 0x102100, 0x100, R);

    /* Each access type goes through the resolver. */
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x103000, 8, &v, VMMEM_ACQUIRE), 0);
    EXPECT_CALL(f.rs, 4, 0x103000, 8, R);
    VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x103008, 8, 5, VMMEM_RELEASE), 0);
    EXPECT_CALL(f.rs, 5, 0x103008, 8, W);
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0x104000, buf, 0x10), 0x10);
    EXPECT_CALL(f.rs, 6, 0x104000, 0x10, R);
    CU_ASSERT_EQUAL(vmmem_iommu_write(f.im, 0x104010, buf, 0x10), 0x10);
    EXPECT_CALL(f.rs, 7, 0x104010, 0x10, W);
    VT_ASSERT_RC(vmmem_iommu_read_obj(f.im, 0x104020, &v, sizeof v), 0);
    EXPECT_CALL(f.rs, 8, 0x104020, 8, R);
    VT_ASSERT_RC(vmmem_iommu_write_obj(f.im, 0x104028, &v, sizeof v), 0);
    EXPECT_CALL(f.rs, 9, 0x104028, 8, W);
    vmmem_iommu_iter it;
    vmmem_slice s;
    vmmem_iommu_slices_begin(&it, f.im, 0x104100, 0x100, RW);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    EXPECT_CALL(f.rs, 10, 0x104100, 0x100, RW);
    CU_ASSERT_EQUAL(s.len, 0x100);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0);
    vmmem_iommu_slices_end(&it);
    EXPECT_CALLS(f.rs, 10);
    fx_fini(&f);
}

static void t_tr_resolver_upgrade(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    /* A write-only entry upgraded on a read (the permission-failure path). */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x1000, 0x1000, 0x1000, W), 0);
    f.rs.mode = RS_FILL;
    f.rs.delta = 0;
    uint8_t buf[0x20];
    memset(buf, 0xaa, sizeof buf);
    /* [0x1ff0, 0x2010): denied [0x1ff0, 0x2000), then a miss [0x2000, 0x2010).
     * The resolver gets the first failing range (the denied one, with READ)
     * and fixes only that; the single retry then faults at the miss. */
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x1ff0, buf, 0x20), VMMEM_EIOMMU_FAULT, 0x2000);
    EXPECT_CALL(f.rs, 1, 0x1ff0, 0x10, R);
    EXPECT_MSG_NAMES(0x2000);
    CU_ASSERT_TRUE(all_bytes(buf, sizeof buf, 0xaa));
    /* The next access resolves the miss. */
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x1ff0, buf, 0x20), 0);
    EXPECT_CALL(f.rs, 2, 0x2000, 0x10, R);
    CU_ASSERT_TRUE(is_pat(buf, 0x20, 0x1ff0));
    fx_fini(&f);
}

static void t_tr_resolver_denied(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x1000, 0x1000, 0x1000, W), 0);
    f.rs.mode = RS_FILL;
    f.rs.delta = 0;
    uint8_t buf[0x20];
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x1800, buf, 0x20), 0);
    EXPECT_CALL(f.rs, 1, 0x1800, 0x20, R);
    CU_ASSERT_TRUE(is_pat(buf, 0x20, 0x1800));
    struct vmmem_iotlb_result res;
    VT_ASSERT_RC(vmmem_iotlb_lookup(f.t, 0x1800, 0x20, RW, &res), 0);
    vmmem_iotlb_result_free(&res);
    fx_fini(&f);
}

static void t_tr_resolver_error(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    f.rs.mode = RS_FAIL;
    f.rs.err = -ETIMEDOUT;
    uint8_t buf[0x10];
    memset(buf, 0xaa, sizeof buf);
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x7000, buf, 0x10), -ETIMEDOUT, 0x7000);
    EXPECT_CALL(f.rs, 1, 0x7000, 0x10, R);
    EXPECT_ERR(vmmem_iommu_read(f.im, 0x7000, buf, 0x10), -ETIMEDOUT, 0x7000);
    EXPECT_CALLS(f.rs, 2);
    uint64_t v = 0;
    EXPECT_ERR(vmmem_iommu_store(f.im, 0x7008, 8, 1, VMMEM_SEQ_CST), -ETIMEDOUT, 0x7008);
    EXPECT_CALL(f.rs, 3, 0x7008, 8, W);
    EXPECT_ERR(vmmem_iommu_load(f.im, 0x7008, 8, &v, VMMEM_SEQ_CST), -ETIMEDOUT, 0x7008);
    EXPECT_CALLS(f.rs, 4);
    /* A library code passes through as well. */
    f.rs.err = VMMEM_EUNSUPPORTED;
    EXPECT_ERR(vmmem_iommu_write_slice(f.im, 0x7000, buf, 0x10), VMMEM_EUNSUPPORTED, 0x7000);
    EXPECT_CALLS(f.rs, 5);
    CU_ASSERT_TRUE(all_bytes(buf, sizeof buf, 0xaa));
    /* Mapped accesses never call it. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x7000, 0x7000, 0x10, RW), 0);
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x7000, buf, 0x10), 0);
    EXPECT_CALLS(f.rs, 5);
    fx_fini(&f);
}

static void t_tr_resolver_nothing(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    f.rs.mode = RS_NOTHING;
    uint8_t buf[0x10] = {0};
    /* A resolver that does not fill the IOTLB: fault after one retry. */
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x7000, buf, 0x10), VMMEM_EIOMMU_FAULT, 0x7000);
    EXPECT_CALL(f.rs, 1, 0x7000, 0x10, R);
    EXPECT_MSG_NAMES(0x7000);
    EXPECT_ERR(vmmem_iommu_write(f.im, 0x7000, buf, 0x10), VMMEM_EIOMMU_FAULT, 0x7000);
    EXPECT_CALL(f.rs, 2, 0x7000, 0x10, W);
    uint64_t v = 0;
    EXPECT_ERR(vmmem_iommu_load(f.im, 0x7000, 4, &v, VMMEM_RELAXED), VMMEM_EIOMMU_FAULT, 0x7000);
    EXPECT_CALLS(f.rs, 3);
    int fds[2];
    if (pipe_with(buf, sizeof buf, fds) == 0) {
        EXPECT_ERR(vmmem_iommu_read_from_fd(f.im, 0x7000, fds[0], 0x10), VMMEM_EIOMMU_FAULT,
                   0x7000);
        EXPECT_CALL(f.rs, 4, 0x7000, 0x10, W);
        close(fds[0]);
        close(fds[1]);
    }

    /* Two misses, a resolver that fills only what it is asked: the retry
     * still faults, at the second miss, and the resolver ran once. */
    f.rs.mode = RS_FILL;
    f.rs.delta = 0;
    f.rs.calls = 0;
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x9000, 0x9000, 0x1000, RW), 0);
    static uint8_t big[0x3000];
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x8000, big, 0x3000), VMMEM_EIOMMU_FAULT, 0xa000);
    EXPECT_CALL(f.rs, 1, 0x8000, 0x1000, R);
    EXPECT_MSG_NAMES(0xa000);
    /* The next access resolves the second one. */
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x8000, big, 0x3000), 0);
    EXPECT_CALL(f.rs, 2, 0xa000, 0x1000, R);
    CU_ASSERT_TRUE(is_pat(big, 0x3000, 0x8000));
    EXPECT_COUNT(f.t, 1);
    fx_fini(&f);
}

static void t_tr_resolver_iter(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    /* Two mapped pieces (physical regions A and B), then an unmapped tail;
     * the resolver does nothing.  One miss: one call. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x100000, 0xf000, 0x2000, RW), 0);
    vmmem_iommu_iter it;
    vmmem_slice s;
    vmmem_iommu_slices_begin(&it, f.im, 0x100000, 0x3000, R);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x1000);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x1000);
    vmmem_slice_release(&s);
    EXPECT_ERR(vmmem_iommu_slices_next(&it, &s), VMMEM_EIOMMU_FAULT, 0x102000);
    EXPECT_MSG_NAMES(0x102000);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0); /* an error once, then the end */
    vmmem_iommu_slices_end(&it);
    EXPECT_CALLS(f.rs, 1);
    EXPECT_CALL(f.rs, f.rs.calls, 0x102000, 0x1000, R);
    fx_fini(&f);
}

static void t_tr_passthrough(void)
{
    struct fx f;
    if (!fx_init(&f, 0, true))
        return;
    /* An IOTLB entry that would redirect IOVA 0x1000 elsewhere. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x1000, 0x40000, 0x1000, RW), 0);
    uint8_t buf[0x20];
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x1000, buf, 0x20), 0);
    CU_ASSERT_TRUE(is_pat(buf, 0x20, 0x40000));

    vmmem_iommu_set_enabled(f.im, false);
    CU_ASSERT_FALSE(vmmem_iommu_enabled(f.im));
    /* Addresses are guest-physical now. */
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x1000, buf, 0x20), 0);
    CU_ASSERT_TRUE(is_pat(buf, 0x20, 0x1000));
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0xfff0, buf, 0x20), 0); /* over the A/B seam */
    CU_ASSERT_TRUE(is_pat(buf, 0x20, 0xfff0));
    memset(buf, 0x77, sizeof buf);
    VT_ASSERT_RC(vmmem_iommu_write_slice(f.im, 0x40000, buf, 0x20), 0);
    uint8_t got[0x20];
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x40000, got, 0x20), 0);
    CU_ASSERT_TRUE(all_bytes(got, 0x20, 0x77));
    CU_ASSERT_EQUAL(vmmem_iommu_write(f.im, 0x2000, buf, 0x10), 0x10);
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x2000, got, 0x10), 0);
    CU_ASSERT_TRUE(all_bytes(got, 0x10, 0x77));
    /* The map's contracts, not the IOMMU's: holes are holes, no resolver. */
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, HOLE, buf, 0x10), VMMEM_EINVALID_ADDRESS, HOLE);
    EXPECT_ERR(vmmem_iommu_read(f.im, HOLE, buf, 0x10), VMMEM_EINVALID_ADDRESS, HOLE);
    CU_ASSERT_EQUAL(vmmem_iommu_read(f.im, 0x1fff0, buf, 0x20), 0x10);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x2008, 8, 0x1234, VMMEM_SEQ_CST), 0);
    VT_ASSERT_RC(vmmem_load(f.phys, 0x2008, 8, &v, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(v, 0x1234);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x2008, 8, &v, VMMEM_ACQUIRE), 0);
    CU_ASSERT_EQUAL(v, 0x1234);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0xfffc, 8, &v, VMMEM_RELAXED), VMMEM_EMISALIGNED);
    CU_ASSERT_TRUE(vmmem_iommu_check_range(f.im, 0xf000, 0x2000, RW));
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x1f000, 0x2000, R));
    /* Slices are physical slices. */
    vmmem_iommu_iter it;
    vmmem_slice s;
    vmmem_iommu_slices_begin(&it, f.im, 0xf800, 0x1000, R);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x800);
    void *h = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(f.phys, 0xf800, &h, NULL), 0);
    CU_ASSERT_PTR_EQUAL(s.ptr, h);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x800);
    VT_ASSERT_RC(vmmem_map_host_address(f.phys, 0x10000, &h, NULL), 0);
    CU_ASSERT_PTR_EQUAL(s.ptr, h);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0);
    vmmem_iommu_slices_end(&it);
    EXPECT_CALLS(f.rs, 0);

    /* Back on: translated again. */
    vmmem_iommu_set_enabled(f.im, true);
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x1000, buf, 0x10), 0);
    CU_ASSERT_TRUE(all_bytes(buf, 0x10, 0x77)); /* GPA 0x40000, written above */
    fx_fini(&f);
}

static void t_tr_atomics(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x7000, 0x10000, 0x1000, RW), 0);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x7008, 8, 0x1122334455667788u, VMMEM_SEQ_CST), 0);
    VT_ASSERT_RC(vmmem_load(f.phys, 0x10008, 8, &v, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(v, 0x1122334455667788u);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x7008, 8, &v, VMMEM_ACQUIRE), 0);
    CU_ASSERT_EQUAL(v, 0x1122334455667788u);
    for (size_t size = 1; size <= 8; size *= 2) {
        VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x7100, size, 0xa1b2c3d4e5f60718u, VMMEM_RELAXED), 0);
        VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x7100, size, &v, VMMEM_RELAXED), 0);
        uint64_t mask = size == 8 ? UINT64_MAX : (((uint64_t)1 << (size * 8)) - 1);
        CU_ASSERT_EQUAL(v, 0xa1b2c3d4e5f60718u & mask);
    }
    /* Misaligned IOVAs. */
    EXPECT_ERR(vmmem_iommu_load(f.im, 0x7004, 8, &v, VMMEM_RELAXED), VMMEM_EMISALIGNED, 0x7004);
    EXPECT_ERR(vmmem_iommu_store(f.im, 0x7001, 2, 1, VMMEM_RELAXED), VMMEM_EMISALIGNED, 0x7001);
    EXPECT_ERR(vmmem_iommu_store(f.im, 0x7002, 4, 1, VMMEM_RELAXED), VMMEM_EMISALIGNED, 0x7002);
    /* Bad size and order. */
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x7000, 3, &v, VMMEM_RELAXED), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x7000, 16, &v, VMMEM_RELAXED), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x7000, 8, &v, VMMEM_RELEASE), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x7000, 8, 1, VMMEM_ACQUIRE), -EINVAL);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x7000, 8, NULL, VMMEM_RELAXED), -EINVAL);

    /* An aligned value split over two translations. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x8000, 0x100, 0x4, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x8004, 0x40004, 0xffc, RW), 0);
    EXPECT_ERR(vmmem_iommu_load(f.im, 0x8000, 8, &v, VMMEM_RELAXED), VMMEM_ECROSSES_REGION, 0x8000);
    EXPECT_ERR(vmmem_iommu_store(f.im, 0x8000, 8, 1, VMMEM_RELAXED), VMMEM_ECROSSES_REGION, 0x8000);
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x100, 4));
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x40004, 4));
    /* Each half on its own is fine. */
    VT_ASSERT_RC(vmmem_iommu_store(f.im, 0x8004, 4, 0xcafe, VMMEM_RELAXED), 0);
    VT_ASSERT_RC(vmmem_load(f.phys, 0x40004, 4, &v, VMMEM_RELAXED), 0);
    CU_ASSERT_EQUAL(v, 0xcafe);
    /* An aligned IOVA onto a misaligned guest-physical address. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x9000, 0x10001, 0x100, RW), 0);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0x9000, 4, &v, VMMEM_RELAXED), VMMEM_EMISALIGNED);
    /* Unmapped. */
    EXPECT_ERR(vmmem_iommu_load(f.im, 0xa000, 8, &v, VMMEM_RELAXED), VMMEM_EIOMMU_FAULT, 0xa000);
    /* Next to the physical A/B seam inside one translation. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0xb000, 0xf000, 0x2000, RW), 0);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0xbff8, 8, &v, VMMEM_RELAXED), 0);
    VT_ASSERT_RC(vmmem_iommu_load(f.im, 0xc000, 8, &v, VMMEM_RELAXED), 0);
    fx_fini(&f);
}

static void t_tr_fd(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    /* IOVA [0x200000, 0x201000): GPA [0x18000, 0x18800) then [0x40000, 0x40800). */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x200000, 0x18000, 0x800, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x200800, 0x40000, 0x800, RW), 0);
    static uint8_t data[0x1000], got[0x1000];
    for (size_t k = 0; k < sizeof data; k++)
        data[k] = (uint8_t)(k * 3 + 1);
    int fds[2];
    if (pipe_with(data, sizeof data, fds) != 0)
        goto out;
    CU_ASSERT_EQUAL(vmmem_iommu_read_from_fd(f.im, 0x200000, fds[0], 0x1000), 0x1000);
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x18000, got, 0x800), 0);
    CU_ASSERT_EQUAL(memcmp(got, data, 0x800), 0);
    VT_ASSERT_RC(vmmem_read_slice(f.phys, 0x40000, got, 0x800), 0);
    CU_ASSERT_EQUAL(memcmp(got, data + 0x800, 0x800), 0);

    /* Back out through the translation. */
    CU_ASSERT_EQUAL(vmmem_iommu_write_to_fd(f.im, 0x200000, fds[1], 0x1000), 0x1000);
    memset(got, 0, sizeof got);
    size_t have = 0;
    while (have < 0x1000) {
        ssize_t n = read(fds[0], got + have, 0x1000 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    CU_ASSERT_EQUAL(have, 0x1000);
    CU_ASSERT_EQUAL(memcmp(got, data, 0x1000), 0);

    /* A short read (0x900 bytes in the pipe) ends the call in the second piece. */
    CU_ASSERT_EQUAL(write(fds[1], data, 0x900), 0x900);
    CU_ASSERT_EQUAL(vmmem_iommu_read_from_fd(f.im, 0x200000, fds[0], 0x1000), 0x900);
    close(fds[1]);
    /* End of file moves nothing. */
    CU_ASSERT_EQUAL(vmmem_iommu_read_from_fd(f.im, 0x200000, fds[0], 0x100), 0);
    close(fds[0]);

    /* write_to_fd stops short at the end of the mapping. */
    if (pipe_with(NULL, 0, fds) != 0)
        goto out;
    CU_ASSERT_EQUAL(vmmem_iommu_write_to_fd(f.im, 0x200f00, fds[1], 0x200), 0x100);
    CU_ASSERT_EQUAL(read(fds[0], got, sizeof got), 0x100);
    CU_ASSERT_EQUAL(memcmp(got, data + 0xf00, 0x100), 0); /* GPA 0x40700 */
    EXPECT_ERR(vmmem_iommu_write_to_fd(f.im, 0x201000, fds[1], 0x10), VMMEM_EIOMMU_FAULT, 0x201000);
    /* A bad descriptor. */
    VT_ASSERT_RC(vmmem_iommu_write_to_fd(f.im, 0x200000, -1, 0x10), -EBADF);
    CU_ASSERT_EQUAL(vmmem_iommu_write_to_fd(f.im, 0x201000, fds[1], 0), 0);
    close(fds[0]);
    close(fds[1]);
out:
    fx_fini(&f);
}

static void t_tr_check_range(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    /* A read-only range over the A/B seam, as in the crate's test. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x100000, 0xf000, 0x2000, R), 0);
    CU_ASSERT_TRUE(vmmem_iommu_check_range(f.im, 0x100000, 0x2000, 0));
    CU_ASSERT_TRUE(vmmem_iommu_check_range(f.im, 0x100000, 0x2000, R));
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x100000, 0x2000, W));
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x100000, 0x2000, RW));
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0xfffff, 0x2000, R));  /* one before */
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x100001, 0x2000, R)); /* one after */
    CU_ASSERT_TRUE(vmmem_iommu_check_range(f.im, 0x101fff, 1, R));
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x102000, 1, 0));
    CU_ASSERT_TRUE(vmmem_iommu_check_range(f.im, 0x900000, 0, R)); /* empty */
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, MAX, 2, R));     /* overflow */
    /* Translated but not backed. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x102000, 0x20000, 0x10, R), 0);
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x101ff0, 0x20, R));
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x102000, 1, 0));
    fx_fini(&f);
}

static void t_tr_slices(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    vmmem_bitmap *log = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&log, LOG_BYTES, LOG_PAGE), 0);
    if (log == NULL) {
        fx_fini(&f);
        return;
    }
    vmmem_iommu_set_dirty_log(f.im, log);
    /* IOVA [0x10000, 0x12000) -> GPA [0xf000, 0x11000) (regions A, B);
     * IOVA [0x12000, 0x13000) -> GPA [0x40000, 0x41000) (region C). */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x10000, 0xf000, 0x2000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x12000, 0x40000, 0x1000, RW), 0);
    struct {
        uint64_t gpa, len, iova;
    } want[] = {{0xf800, 0x800, 0x10800}, {0x10000, 0x1000, 0x11000}, {0x40000, 0x800, 0x12000}};
    vmmem_iommu_iter it;
    vmmem_slice s;
    vmmem_iommu_slices_begin(&it, f.im, 0x10800, 0x2000, R);
    for (size_t i = 0; i < 3; i++) {
        int rc = vmmem_iommu_slices_next(&it, &s);
        VT_ASSERT_RC(rc, 1);
        if (rc != 1)
            break;
        void *h = NULL;
        VT_ASSERT_RC(vmmem_map_host_address(f.phys, want[i].gpa, &h, NULL), 0);
        CU_ASSERT_PTR_EQUAL(s.ptr, h);
        CU_ASSERT_EQUAL(s.len, want[i].len);
        /* The physical region's dirty view (issue 14), not the IOVA log. */
        uint64_t roff = UINT64_MAX;
        CU_ASSERT_PTR_NOT_NULL(vmmem_map_find(f.phys, want[i].gpa, &roff));
        CU_ASSERT_PTR_NOT_NULL(s.bitmap);
        CU_ASSERT_PTR_NOT_EQUAL(s.bitmap, log);
        CU_ASSERT_EQUAL(s.bitmap_offset, roff);
        uint8_t b[4];
        VT_ASSERT_RC(vmmem_slice_read(&s, 0, b, 4), 0);
        CU_ASSERT_TRUE(is_pat(b, 4, want[i].gpa));
        vmmem_slice_release(&s);
    }
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0);
    vmmem_iommu_slices_end(&it);

    /* An empty range yields nothing. */
    vmmem_iommu_slices_begin(&it, f.im, 0x900000, 0, R);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0);
    vmmem_iommu_slices_end(&it);
    /* A translation onto the physical hole fails at that IOVA. */
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x13000, HOLE, 0x1000, RW), 0);
    vmmem_iommu_slices_begin(&it, f.im, 0x12f00, 0x200, R);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x100);
    vmmem_slice_release(&s);
    EXPECT_ERR(vmmem_iommu_slices_next(&it, &s), VMMEM_EINVALID_ADDRESS, 0x13000);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0);
    vmmem_iommu_slices_end(&it);
    /* Ending the iterator early, without visiting anything, is fine. */
    vmmem_iommu_slices_begin(&it, f.im, 0x10000, 0x1000, R);
    vmmem_iommu_slices_end(&it);
    /* Without a log, slices carry the physical region's bitmap all the same. */
    vmmem_iommu_set_dirty_log(f.im, NULL);
    vmmem_iommu_slices_begin(&it, f.im, 0x10000, 0x10, R);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_PTR_NOT_NULL(s.bitmap);
    vmmem_slice_release(&s);
    vmmem_iommu_slices_end(&it);
    fx_fini(&f);
    vmmem_bitmap_free(log);
}

static void t_tr_readonly_phys(void)
{
    /* Physical [0, 0x1000) writable, [0x1000, 0x2000) read-only. */
    vmmem_map *phys = vt_map("mmap:addr=0,size=4K;mmap:addr=4K,size=4K,prot=r");
    if (phys == NULL)
        return;
    fill_phys(phys);
    vmmem_iotlb *t = new_tlb();
    vmmem_iommu *im = NULL;
    VT_ASSERT_RC(vmmem_iommu_new(&im, phys, t, NULL, NULL), 0);
    vmmem_bitmap *log = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&log, LOG_BYTES, LOG_PAGE), 0);
    if (im == NULL || log == NULL)
        goto out;
    vmmem_iommu_set_dirty_log(im, log);
    /* The IOTLB allows writing; the physical region does not: the map's
     * VMMEM_EREAD_ONLY, not an IOMMU fault. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x10000, 0, 0x2000, RW), 0);
    uint8_t src[0x20];
    memset(src, 0x4d, sizeof src);
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x11000, src, 0x10), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_iommu_store(im, 0x11000, 4, 1, VMMEM_RELAXED), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_iommu_write(im, 0x11000, src, 0x10), VMMEM_EREAD_ONLY);
    /* One translation over the writable/read-only seam. */
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x10ff0, src, 0x20), VMMEM_EREAD_ONLY);
    CU_ASSERT_TRUE(phys_untouched(phys, 0xff0, 0x10));
    EXPECT_LOG_EMPTY(log);
    CU_ASSERT_EQUAL(vmmem_iommu_write(im, 0x10ff0, src, 0x20), 0x10);
    EXPECT_LOG(log, 0x10);
    fill_phys(phys);

    /* Two translations, the second onto the read-only region: all-or-error
     * must leave the first piece untouched too (map.h: a failing call leaves
     * guest memory untouched), and log nothing. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x20000, 0x0ff0, 0x10, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x20010, 0x1800, 0x10, RW), 0);
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x20000, src, 0x20), VMMEM_EREAD_ONLY);
    CU_ASSERT_TRUE(phys_untouched(phys, 0x0ff0, 0x10));
    EXPECT_LOG_EMPTY(log);
    fill_phys(phys);
    VT_ASSERT_RC(vmmem_iommu_write_obj(im, 0x2000c, src, 8), VMMEM_EREAD_ONLY);
    CU_ASSERT_TRUE(phys_untouched(phys, 0x0ffc, 4));
    EXPECT_LOG_EMPTY(log);
    fill_phys(phys);
    /* The short-count write does the first piece. */
    CU_ASSERT_EQUAL(vmmem_iommu_write(im, 0x20000, src, 0x20), 0x10);
    EXPECT_LOG(log, 0x20);
    /* Reads are fine. */
    uint8_t buf[0x20];
    memset(buf, 0xaa, sizeof buf);
    VT_ASSERT_RC(vmmem_iommu_read_slice(im, 0x20010, buf, 0x10), 0);
    CU_ASSERT_TRUE(all_bytes(buf, 0x10, 0)); /* the read-only region's zeros */
    uint8_t z[0x10];
    VT_ASSERT_RC(vmmem_read_slice(phys, 0x1000, z, 0x10), 0);
    CU_ASSERT_TRUE(all_bytes(z, 0x10, 0));
out:
    vmmem_iommu_free(im);
    vmmem_iotlb_free(t);
    vmmem_map_unref(phys);
    vmmem_bitmap_free(log);
}

/* ---- concurrency ------------------------------------------------------------------- */

#define MT_THREADS 4
#define MT_ROUNDS 3000

struct mt {
    vmmem_iommu *im;
    atomic_int resolves;
    atomic_int ok, faults, bad;
    atomic_int finished; /* readers done */
};

static int resolve_mt(void *opaque, vmmem_iotlb *t, uint64_t iova, uint64_t len, int perm)
{
    struct mt *m = opaque;
    (void)perm;
    atomic_fetch_add(&m->resolves, 1);
    return vmmem_iotlb_set(t, iova, iova - 0x100000 + 0xf000, len, RW);
}

/* Reads must see all of pat() (physical map 1) or all of npat() (map 2). */
static void *mt_reader(void *arg)
{
    struct mt *m = arg;
    uint8_t buf[0x200];
    for (int i = 0; i < MT_ROUNDS; i++) {
        uint64_t iova = 0x100000 + (uint64_t)(i % 16) * 0x100;
        int rc = vmmem_iommu_read_slice(m->im, iova, buf, sizeof buf);
        if (rc == VMMEM_EIOMMU_FAULT) {
            atomic_fetch_add(&m->faults, 1);
            continue;
        }
        if (rc != 0) {
            atomic_fetch_add(&m->bad, 1);
            continue;
        }
        uint64_t gpa = iova - 0x100000 + 0xf000;
        bool a = true, b = true;
        for (size_t k = 0; k < sizeof buf; k++) {
            a = a && buf[k] == pat(gpa + k);
            b = b && buf[k] == npat(gpa + k);
        }
        atomic_fetch_add(a || b ? &m->ok : &m->bad, 1);
    }
    atomic_fetch_add(&m->finished, 1);
    return NULL;
}

static void t_tr_concurrent(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    vmmem_map *phys2 = new_phys(PHYS_CFG, 0);
    if (phys2 == NULL) {
        fx_fini(&f);
        return;
    }
    for (size_t i = 0; i < vmmem_map_num_regions(phys2); i++) {
        struct vmmem_region_info info;
        vmmem_region_get_info(vmmem_map_region(phys2, i), &info);
        uint8_t *h = info.host;
        for (uint64_t k = 0; k < info.size; k++)
            h[k] = npat(info.start + k);
    }
    struct mt m = {.im = NULL};
    atomic_init(&m.resolves, 0);
    atomic_init(&m.ok, 0);
    atomic_init(&m.faults, 0);
    atomic_init(&m.bad, 0);
    atomic_init(&m.finished, 0);
    VT_ASSERT_RC(vmmem_iommu_new(&m.im, f.phys, f.t, resolve_mt, &m), 0);
    if (m.im == NULL)
        goto out;
    pthread_t th[MT_THREADS];
    int started = 0;
    for (; started < MT_THREADS; started++)
        if (pthread_create(&th[started], NULL, mt_reader, &m) != 0)
            break;
    CU_ASSERT_EQUAL(started, MT_THREADS);
    /* Meanwhile, until every reader is done: invalidate and re-map pieces,
     * swap the physical map. */
    for (int i = 0; atomic_load(&m.finished) < started; i++) {
        uint64_t off = (uint64_t)(i % 16) * 0x100;
        if (i % 3 == 0)
            vmmem_iotlb_invalidate_all(f.t);
        else
            VT_ASSERT_RC(vmmem_iotlb_invalidate(f.t, 0x100000 + off, 0x80), 0);
        if (i % 2 == 0)
            VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x100000 + off, 0xf000 + off, 0x300, RW), 0);
        if (i % 50 == 0)
            VT_ASSERT_RC(vmmem_iommu_set_phys(m.im, (i / 50) % 2 ? f.phys : phys2), 0);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&m.bad), 0);
    CU_ASSERT_EQUAL(atomic_load(&m.ok) + atomic_load(&m.faults), started * MT_ROUNDS);
    CU_ASSERT(atomic_load(&m.ok) > 0);
    /* Settled: a miss is resolved and read in full. */
    uint8_t buf[0x10];
    vmmem_iotlb_invalidate_all(f.t);
    VT_ASSERT_RC(vmmem_iommu_set_phys(m.im, phys2), 0);
    VT_ASSERT_RC(vmmem_iommu_read_slice(m.im, 0x100000, buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(buf[0], npat(0xf000));
    vmmem_iommu_free(m.im);
out:
    vmmem_map_unref(phys2);
    fx_fini(&f);
}

/* ---- dirty tracking ------------------------------------------------------------- */

/* Collect and clear the physical bitmap; returns the number of dirty pages. */
static int64_t phys_harvest(vmmem_map *m)
{
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    if (h == NULL)
        return -1;
    int64_t n = vmmem_map_harvest(m, h);
    vmmem_harvest_free(h);
    return n;
}

static void expect_phys_clean(vmmem_map *m, int line)
{
    /* Spot checks with vmmem_map_is_dirty, then every page by harvesting. */
    static const uint64_t spots[] = {0xf000, 0x10000, 0x11000, 0x18000, 0x40000, 0x41000, 0x42000};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        if (vmmem_map_is_dirty(m, spots[i]))
            fprintf(stdout, "\n    line %d: physical page 0x%llx is dirty\n", line,
                    (unsigned long long)spots[i]);
        CU_ASSERT_FALSE(vmmem_map_is_dirty(m, spots[i]));
    }
    int64_t n = phys_harvest(m);
    if (n != 0)
        fprintf(stdout, "\n    line %d: %lld physical pages dirty, want 0\n", line, (long long)n);
    CU_ASSERT_EQUAL(n, 0);
}
#define EXPECT_PHYS_CLEAN(m) expect_phys_clean((m), __LINE__)

/* Exactly these guest-physical pages are dirty; harvests (clears) them.
 * Issue 14: writes through the IOMMU mark guest-physical pages (and an
 * attached vhost-user log), the IOVA bitmap only as an extra. */
static void expect_phys(vmmem_map *m, const uint64_t *pages, size_t n, int line)
{
    for (size_t i = 0; i < n; i++) {
        if (!vmmem_map_is_dirty(m, pages[i]))
            fprintf(stdout, "\n    line %d: physical page 0x%llx is clean\n", line,
                    (unsigned long long)pages[i]);
        CU_ASSERT_TRUE(vmmem_map_is_dirty(m, pages[i]));
    }
    int64_t got = phys_harvest(m);
    if (got != (int64_t)n)
        fprintf(stdout, "\n    line %d: %lld physical pages dirty, want %zu\n", line,
                (long long)got, n);
    CU_ASSERT_EQUAL(got, (int64_t)n);
}
#define EXPECT_PHYS(m, ...)                                                                        \
    do {                                                                                           \
        static const uint64_t pp_[] = {__VA_ARGS__};                                               \
        expect_phys((m), pp_, sizeof pp_ / sizeof pp_[0], __LINE__);                              \
    } while (0)

struct dfx {
    struct fx f;
    vmmem_bitmap *log;
};

/*
 * IOVA [0x10000, 0x12000) -> GPA [0xf000, 0x11000)   (IOVA pages 0x10-0x11)
 * IOVA [0x20000, 0x23000) -> GPA [0x40000, 0x43000)  (IOVA pages 0x20-0x22)
 * IOVA [0x30000, 0x31000) -> GPA [0x18000, 0x19000)  (IOVA page 0x30)
 */
static bool dfx_init(struct dfx *d)
{
    d->log = NULL;
    if (!fx_init(&d->f, VMMEM_MAP_DIRTY_TRACKING, false))
        return false;
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(d->f.phys));
    VT_ASSERT_RC(vmmem_bitmap_new(&d->log, LOG_BYTES, LOG_PAGE), 0);
    if (d->log == NULL) {
        fx_fini(&d->f);
        return false;
    }
    CU_ASSERT_EQUAL(vmmem_bitmap_pages(d->log), LOG_WORDS * 64);
    vmmem_iommu_set_dirty_log(d->f.im, d->log);
    VT_ASSERT_RC(vmmem_iotlb_set(d->f.t, 0x10000, 0xf000, 0x2000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(d->f.t, 0x20000, 0x40000, 0x3000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(d->f.t, 0x30000, 0x18000, 0x1000, RW), 0);
    return true;
}

static void dfx_fini(struct dfx *d)
{
    fx_fini(&d->f);
    vmmem_bitmap_free(d->log);
}

static void t_dirty_reads(void)
{
    struct dfx d;
    if (!dfx_init(&d))
        return;
    vmmem_iommu *im = d.f.im;
    static uint8_t buf[0x3000];
    uint64_t v;
    VT_ASSERT_RC(vmmem_iommu_read_slice(im, 0x10000, buf, 0x2000), 0);
    CU_ASSERT_EQUAL(vmmem_iommu_read(im, 0x20000, buf, 0x3000), 0x3000);
    VT_ASSERT_RC(vmmem_iommu_read_obj(im, 0x30000, &v, sizeof v), 0);
    VT_ASSERT_RC(vmmem_iommu_load(im, 0x30008, 8, &v, VMMEM_SEQ_CST), 0);
    int fds[2];
    if (pipe_with(NULL, 0, fds) == 0) {
        CU_ASSERT_EQUAL(vmmem_iommu_write_to_fd(im, 0x10ff0, fds[1], 0x20), 0x20);
        close(fds[0]);
        close(fds[1]);
    }
    vmmem_iommu_iter it;
    vmmem_slice s;
    vmmem_iommu_slices_begin(&it, im, 0x20000, 0x1000, R);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    VT_ASSERT_RC(vmmem_slice_read(&s, 0, buf, 0x100), 0);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to(&s, buf, 0x100), 0x100);
    vmmem_slice_release(&s);
    vmmem_iommu_slices_end(&it);
    EXPECT_LOG_EMPTY(d.log);
    EXPECT_PHYS_CLEAN(d.f.phys);
    dfx_fini(&d);
}

/* Issue 14: IOMMU writes mark guest-physical pages too (they marked only
 * the IOVA bitmap: every EXPECT_PHYS below failed on the old code). */
static void t_dirty_writes(void)
{
    struct dfx d;
    if (!dfx_init(&d))
        return;
    vmmem_iommu *im = d.f.im;
    static uint8_t buf[0x3000];
    memset(buf, 0x5a, sizeof buf);

    /* write over the IOVA page seam 0x10/0x11 (and the physical A/B seam
     * one page later: GPA 0xffff..0x10000 is pages 0xf and 0x10). */
    CU_ASSERT_EQUAL(vmmem_iommu_write(im, 0x10fff, buf, 2), 2);
    EXPECT_LOG(d.log, 0x10, 0x11);
    EXPECT_PHYS(d.f.phys, 0xf000, 0x10000);

    CU_ASSERT_EQUAL(vmmem_iommu_write(im, 0x10000, buf, 1), 1);
    EXPECT_LOG(d.log, 0x10);
    EXPECT_PHYS(d.f.phys, 0xf000);

    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x20ff0, buf, 0x20), 0);
    EXPECT_LOG(d.log, 0x20, 0x21);
    EXPECT_PHYS(d.f.phys, 0x40000, 0x41000);

    /* A whole three-page mapping. */
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x20000, buf, 0x3000), 0);
    EXPECT_LOG(d.log, 0x20, 0x21, 0x22);
    EXPECT_PHYS(d.f.phys, 0x40000, 0x41000, 0x42000);

    uint32_t w = 0x01020304;
    VT_ASSERT_RC(vmmem_iommu_write_obj(im, 0x22ffc, &w, sizeof w), 0);
    EXPECT_LOG(d.log, 0x22);
    EXPECT_PHYS(d.f.phys, 0x42000);
    uint64_t o = 0x1111222233334444u;
    VT_ASSERT_RC(vmmem_iommu_write_obj(im, 0x11ffc, &o, 4), 0);
    EXPECT_LOG(d.log, 0x11);
    EXPECT_PHYS(d.f.phys, 0x10000);

    VT_ASSERT_RC(vmmem_iommu_store(im, 0x30008, 8, 0xabcdef, VMMEM_RELEASE), 0);
    EXPECT_LOG(d.log, 0x30);
    EXPECT_PHYS(d.f.phys, 0x18000);
    VT_ASSERT_RC(vmmem_iommu_store(im, 0x10ffe, 2, 0xbeef, VMMEM_RELAXED), 0);
    EXPECT_LOG(d.log, 0x10);
    EXPECT_PHYS(d.f.phys, 0xf000);

    /* A write stopped short marks only what it wrote. */
    CU_ASSERT_EQUAL(vmmem_iommu_write(im, 0x30ff0, buf, 0x100), 0x10);
    EXPECT_LOG(d.log, 0x30);
    EXPECT_PHYS(d.f.phys, 0x18000);
    /* Failed writes mark nothing. */
    EXPECT_ERR(vmmem_iommu_write_slice(im, 0x30ff0, buf, 0x100), VMMEM_EIOMMU_FAULT, 0x31000);
    EXPECT_ERR(vmmem_iommu_store(im, 0x31000, 8, 1, VMMEM_RELAXED), VMMEM_EIOMMU_FAULT, 0x31000);
    EXPECT_LOG_EMPTY(d.log);
    EXPECT_PHYS_CLEAN(d.f.phys);

    /* IOVAs past the end of the log are ignored; a write over its end marks
     * the last page only.  Both mark their guest-physical pages. */
    VT_ASSERT_RC(vmmem_iotlb_set(d.f.t, 0xff000, 0x1a000, 0x2000, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(d.f.t, 0x200000, 0x1d000, 0x1000, RW), 0);
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x200000, buf, 0x1000), 0);
    EXPECT_LOG_EMPTY(d.log);
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0xffff0, buf, 0x20), 0);
    EXPECT_LOG(d.log, 0xff);
    EXPECT_PHYS(d.f.phys, 0x1a000, 0x1b000, 0x1d000);
    dfx_fini(&d);
}

static void t_dirty_fd(void)
{
    struct dfx d;
    if (!dfx_init(&d))
        return;
    vmmem_iommu *im = d.f.im;
    uint8_t data[0x40];
    memset(data, 0x6b, sizeof data);
    int fds[2];
    if (pipe_with(data, 0x20, fds) != 0)
        goto out;
    CU_ASSERT_EQUAL(vmmem_iommu_read_from_fd(im, 0x10ff0, fds[0], 0x20), 0x20);
    EXPECT_LOG(d.log, 0x10, 0x11);
    EXPECT_PHYS(d.f.phys, 0xf000, 0x10000);
    /* Only the bytes actually read: 8 bytes at 0x20ff8 stay in page 0x20. */
    CU_ASSERT_EQUAL(write(fds[1], data, 8), 8);
    CU_ASSERT_EQUAL(vmmem_iommu_read_from_fd(im, 0x20ff8, fds[0], 0x100), 8);
    EXPECT_LOG(d.log, 0x20);
    EXPECT_PHYS(d.f.phys, 0x40000);
    uint8_t got[8];
    VT_ASSERT_RC(vmmem_read_slice(d.f.phys, 0x40ff8, got, 8), 0);
    CU_ASSERT_TRUE(all_bytes(got, 8, 0x6b));
    CU_ASSERT_TRUE(phys_untouched(d.f.phys, 0x41000, 0x10));
    close(fds[0]);
    close(fds[1]);
out:
    dfx_fini(&d);
}

/* Slices from the IOMMU iterator are slices of the physical region: they
 * mark guest-physical pages (the region's bitmap and vhost-user log), not
 * the IOVA bitmap (issue 14; a slice has room for one dirty view). */
static void t_dirty_iter_slices(void)
{
    struct dfx d;
    if (!dfx_init(&d))
        return;
    vmmem_iommu *im = d.f.im;
    uint8_t data[0x20];
    memset(data, 0x3c, sizeof data);
    vmmem_iommu_iter it;
    vmmem_slice s;
    /* IOVA [0x20800, 0x21800) in one piece: slice offset k is GPA 0x40800 + k. */
    vmmem_iommu_slices_begin(&it, im, 0x20800, 0x1000, W);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x1000);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0x7f0, data, 0x20), 0); /* GPA 0x40ff0..0x41010 */
    EXPECT_PHYS(d.f.phys, 0x40000, 0x41000);
    CU_ASSERT_EQUAL(vmmem_slice_copy_from(&s, data, 0x10), 0x10); /* GPA 0x40800 */
    EXPECT_PHYS(d.f.phys, 0x40000);
    VT_ASSERT_RC(vmmem_slice_store(&s, 0xff8, 8, 1, VMMEM_RELAXED), 0); /* GPA 0x417f8 */
    EXPECT_PHYS(d.f.phys, 0x41000);
    vmmem_slice sub;
    VT_ASSERT_RC(vmmem_slice_subslice(&s, 0x800, 0x10, &sub), 0); /* GPA 0x41000 */
    VT_ASSERT_RC(vmmem_slice_write(&sub, 0, data, 1), 0);
    EXPECT_PHYS(d.f.phys, 0x41000);
    vmmem_slice src = vmmem_slice_from_buffer(data, sizeof data);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&src, &s), 0x20);
    EXPECT_PHYS(d.f.phys, 0x40000);
    EXPECT_LOG_EMPTY(d.log);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 0);
    vmmem_iommu_slices_end(&it);

    /* Pieces of a range over the physical A/B seam: the second slice starts
     * at IOVA 0x11000, physical offset 0 of region B. */
    vmmem_iommu_slices_begin(&it, im, 0x10f00, 0x200, RW);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x100);
    vmmem_slice_release(&s);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_EQUAL(s.len, 0x100);
    CU_ASSERT_EQUAL(s.bitmap_offset, 0);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0x10, data, 4), 0);
    EXPECT_PHYS(d.f.phys, 0x10000);
    EXPECT_LOG_EMPTY(d.log);
    vmmem_slice_release(&s);
    vmmem_iommu_slices_end(&it);
    dfx_fini(&d);
}

static void t_dirty_no_log(void)
{
    struct dfx d;
    if (!dfx_init(&d))
        return;
    vmmem_iommu *im = d.f.im;
    uint8_t data[0x10] = {0};
    /* Detached: writes by IOVA do not mark the old log; they mark their
     * guest-physical pages (issue 14; vm-memory never marks those with
     * translation on, which loses them for migration). */
    vmmem_iommu_set_dirty_log(im, NULL);
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x10000, data, sizeof data), 0);
    VT_ASSERT_RC(vmmem_iommu_store(im, 0x20000, 4, 1, VMMEM_RELAXED), 0);
    EXPECT_LOG_EMPTY(d.log);
    EXPECT_PHYS(d.f.phys, 0xf000, 0x40000);
    /* Attached again: marks again. */
    vmmem_iommu_set_dirty_log(im, d.log);
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x10000, data, sizeof data), 0);
    EXPECT_LOG(d.log, 0x10);
    dfx_fini(&d);
}

static void t_dirty_passthrough(void)
{
    struct dfx d;
    if (!dfx_init(&d))
        return;
    vmmem_iommu *im = d.f.im;
    vmmem_map *phys = d.f.phys;
    uint8_t data[0x20];
    memset(data, 0x2e, sizeof data);
    vmmem_iommu_set_enabled(im, false);

    /* GPA 0xfff0..0x10010: physical pages 0xf and 0x10, not the log. */
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0xfff0, data, 0x20), 0);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, 0xf000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, 0x10000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(phys, 0x11000));
    CU_ASSERT_FALSE(vmmem_map_is_dirty(phys, 0xe000));
    CU_ASSERT_EQUAL(phys_harvest(phys), 2);
    EXPECT_LOG_EMPTY(d.log);

    CU_ASSERT_EQUAL(vmmem_iommu_write(im, 0x40000, data, 1), 1);
    VT_ASSERT_RC(vmmem_iommu_store(im, 0x18008, 8, 3, VMMEM_SEQ_CST), 0);
    uint32_t w = 7;
    VT_ASSERT_RC(vmmem_iommu_write_obj(im, 0x2000, &w, sizeof w), 0);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, 0x40000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, 0x18000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, 0x2000));
    CU_ASSERT_EQUAL(phys_harvest(phys), 3);
    EXPECT_LOG_EMPTY(d.log);

    int fds[2];
    if (pipe_with(data, 0x10, fds) == 0) {
        CU_ASSERT_EQUAL(vmmem_iommu_read_from_fd(im, 0x41ff8, fds[0], 0x10), 0x10);
        CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, 0x41000));
        CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, 0x42000));
        CU_ASSERT_EQUAL(phys_harvest(phys), 2);
        close(fds[0]);
        close(fds[1]);
    }
    EXPECT_LOG_EMPTY(d.log);

    /* Slices are the physical ones and mark the physical bitmap. */
    vmmem_iommu_iter it;
    vmmem_slice s;
    vmmem_iommu_slices_begin(&it, im, 0x43000, 0x1000, W);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    CU_ASSERT_PTR_NOT_EQUAL(s.bitmap, d.log);
    VT_ASSERT_RC(vmmem_slice_write(&s, 0, data, 4), 0);
    vmmem_slice_release(&s);
    vmmem_iommu_slices_end(&it);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, 0x43000));
    CU_ASSERT_EQUAL(phys_harvest(phys), 1);
    EXPECT_LOG_EMPTY(d.log);

    /* Reads mark nothing. */
    uint8_t buf[0x20];
    VT_ASSERT_RC(vmmem_iommu_read_slice(im, 0xfff0, buf, 0x20), 0);
    CU_ASSERT_EQUAL(phys_harvest(phys), 0);

    /* Translation back on: the IOVA log again, and the physical bitmap. */
    vmmem_iommu_set_enabled(im, true);
    VT_ASSERT_RC(vmmem_iommu_write_slice(im, 0x10ff0, data, 0x20), 0);
    EXPECT_LOG(d.log, 0x10, 0x11);
    EXPECT_PHYS(phys, 0xf000, 0x10000);
    dfx_fini(&d);
}

/* ---- replacing the physical map -------------------------------------------------- */

static void t_set_phys(void)
{
    struct fx f;
    if (!fx_init(&f, 0, false))
        return;
    vmmem_map *phys2 = vt_map("mmap:addr=0,size=64K");
    if (phys2 == NULL) {
        fx_fini(&f);
        return;
    }
    uint8_t b2[0x100];
    memset(b2, 0xb2, sizeof b2);
    VT_ASSERT_RC(vmmem_write_slice(phys2, 0x800, b2, sizeof b2), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x1000, 0x800, 0x100, RW), 0);
    VT_ASSERT_RC(vmmem_iotlb_set(f.t, 0x2000, 0x40000, 0x100, RW), 0);
    uint8_t buf[0x100];
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x1000, buf, 0x100), 0);
    CU_ASSERT_TRUE(is_pat(buf, 0x100, 0x800));

    /* An iteration begun before the switch keeps the old map. */
    vmmem_iommu_iter it;
    vmmem_slice s;
    vmmem_iommu_slices_begin(&it, f.im, 0x1000, 0x10, R);

    VT_ASSERT_RC(vmmem_iommu_set_phys(f.im, phys2), 0);
    vmmem_map_unref(phys2); /* the IOMMU keeps its own reference */
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x1000, buf, 0x100), 0);
    CU_ASSERT_TRUE(all_bytes(buf, 0x100, 0xb2));
    memset(buf, 0x99, sizeof buf);
    VT_ASSERT_RC(vmmem_iommu_write_slice(f.im, 0x1000, buf, 0x10), 0);
    CU_ASSERT_TRUE(phys_untouched(f.phys, 0x800, 0x100)); /* the old map is not written */
    /* The new map has no region C: IOVA 0x2000 now translates to a hole. */
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x2000, buf, 0x10), VMMEM_EINVALID_ADDRESS, 0x2000);
    CU_ASSERT_FALSE(vmmem_iommu_check_range(f.im, 0x2000, 0x10, R));
    CU_ASSERT_TRUE(vmmem_iommu_check_range(f.im, 0x1000, 0x100, R));

    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &s), 1);
    void *h = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(f.phys, 0x800, &h, NULL), 0);
    CU_ASSERT_PTR_EQUAL(s.ptr, h);
    CU_ASSERT_TRUE(is_pat(s.ptr, 0x10, 0x800));
    vmmem_slice_release(&s);
    vmmem_iommu_slices_end(&it);

    /* Pass-through uses the new map too. */
    vmmem_iommu_set_enabled(f.im, false);
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x800, buf, 0x10), 0);
    CU_ASSERT_TRUE(all_bytes(buf, 0x10, 0x99));
    EXPECT_ERR(vmmem_iommu_read_slice(f.im, 0x10000, buf, 0x10), VMMEM_EINVALID_ADDRESS, 0x10000);

    /* And back to the first map (its last reference is the fixture's). */
    VT_ASSERT_RC(vmmem_iommu_set_phys(f.im, f.phys), 0);
    VT_ASSERT_RC(vmmem_iommu_read_slice(f.im, 0x40000, buf, 0x10), 0);
    CU_ASSERT_TRUE(is_pat(buf, 0x10, 0x40000));
    fx_fini(&f);
}

/* ---- registration ------------------------------------------------------------------ */

static const struct vt_test iotlb_tests[] = {
    {"arguments", t_iotlb_args},
    {"set and lookup exact pieces", t_iotlb_set_lookup},
    {"adjacent consistent mappings merge", t_iotlb_merge},
    {"aliases and other permissions do not merge", t_iotlb_no_merge},
    {"permissions: RW, R, W and no-access requests", t_iotlb_permissions},
    {"invalidating a middle hole splits the entry", t_iotlb_invalidate_hole},
    {"partial invalidation: heads, tails, several entries", t_iotlb_invalidate_partial},
    {"invalidate_all leaves one full miss", t_iotlb_invalidate_all},
    {"misses and denied clipped to the request", t_iotlb_clipping},
    {"length 0, overflow and bad permissions", t_iotlb_len0_overflow},
    {"mappings ending at 2^64 - 1", t_iotlb_top},
    {"overwriting part of a mapping with another target", t_iotlb_overwrite},
    {NULL, NULL},
};

static const struct vt_test tr_tests[] = {
    {"arguments, enable switch, reference", t_tr_args},
    {"reads across two physical regions and translations", t_tr_read_two_regions},
    {"writes through IOVAs land at the physical addresses", t_tr_write_phys},
    {"read permission faults", t_tr_perm_read},
    {"write permission faults", t_tr_perm_write},
    {"read-write requests: slices, atomics, fd", t_tr_perm_rw},
    {"reads past the mapping name the unmapped tail", t_tr_read_past_mapping},
    {"translation onto unbacked guest-physical memory", t_tr_unbacked},
    {"resolver fills misses, once per miss", t_tr_resolver_fill},
    {"resolver gets the first failing range; one retry", t_tr_resolver_upgrade},
    {"resolver upgrades a denied entry", t_tr_resolver_denied},
    {"resolver errors are returned", t_tr_resolver_error},
    {"resolver that resolves nothing: one retry", t_tr_resolver_nothing},
    {"slice iterator calls the resolver once per miss", t_tr_resolver_iter},
    {"translation off: pure pass-through", t_tr_passthrough},
    {"atomics through an IOVA", t_tr_atomics},
    {"fd I/O through a translated range of two pieces", t_tr_fd},
    {"check_range", t_tr_check_range},
    {"slice iterator pieces and IOVA log view", t_tr_slices},
    {"read-only physical regions behind a writable IOTLB", t_tr_readonly_phys},
    {"concurrent reads, IOTLB updates and physical map swaps", t_tr_concurrent},
    {NULL, NULL},
};

static const struct vt_test dirty_tests[] = {
    {"reads mark nothing", t_dirty_reads},
    {"writes mark IOVA pages only", t_dirty_writes},
    {"read_from_fd marks the bytes read, by IOVA", t_dirty_fd},
    {"slice writes from the iterator mark the IOVA log", t_dirty_iter_slices},
    {"no log: no marks", t_dirty_no_log},
    {"translation off marks the physical bitmap", t_dirty_passthrough},
    {NULL, NULL},
};

static const struct vt_test phys_tests[] = {
    {"set_phys replaces the physical map", t_set_phys},
    {NULL, NULL},
};

static const struct vt_suite iotlb_suite = {"iotlb", NULL, NULL, iotlb_tests};
static const struct vt_suite tr_suite = {"translated memory", NULL, NULL, tr_tests};
static const struct vt_suite dirty_suite = {"iommu dirty log", NULL, NULL, dirty_tests};
static const struct vt_suite phys_suite = {"iommu set_phys", NULL, NULL, phys_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&iotlb_suite, &tr_suite, &dirty_suite,
                                                    &phys_suite, NULL};
    return vt_main(suites);
}

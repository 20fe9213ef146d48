/*
 * Migration-safe dirty tracking (issue 14) and the slice/IOMMU items of
 * issue 16 that touch it.
 *
 *  1. the six cases of issue 14, one test each (each failed on the code
 *     before the fix; VT_OLD_API builds the ones that compile against the
 *     old API, to see that again);
 *  2. issue 16 items 4 (IOMMU atomics report the IOVA) and 6 (a
 *     map-on-access slice keeps its region alive);
 *  3. a migration simulator: device threads write through every write path
 *     while a migration thread switches tracking on, copies guest memory,
 *     runs harvest rounds, stops the devices, copies the last harvest and
 *     compares: zero differing pages, without and with concurrent hot-plug.
 *     A differing page names the write path that wrote it (every byte a
 *     path writes carries the path's number in its high nibble).
 *
 * The simulator does a minimum amount of work (writes per device, rounds,
 * hot-plug operations), never a time budget, so it passes the same under
 * valgrind (one thread at a time) and ThreadSanitizer; VMMEM_SIM_SCALE
 * (default 1) multiplies the work for a longer soak.
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
#include <unistd.h>

#include "harness.h"
#include <vmmem/fast.h>

#define PAGE 4096u

static struct vmmem_region_spec mspec(uint64_t addr, uint64_t size)
{
    struct vmmem_region_spec s = {.provider = "mmap", .addr = addr, .size = size};
    return s;
}

static int64_t map_harvest(vmmem_map *m)
{
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    if (h == NULL)
        return -1;
    int64_t n = vmmem_map_harvest(m, h);
    vmmem_harvest_free(h);
    return n;
}

/* ---- 1. the six cases ------------------------------------------------------ */

/* Case 1: a slice taken before tracking was switched on marks. */
static void t_case1_slice_before_tracking(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=64K;mmap:addr=64K,size=64K");
    if (m == NULL)
        return;
    vmmem_slice s, it_s;
    VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 0x4000, &s), 0);
    vmmem_slice_iter it;
    vmmem_slices_begin(&it, m, 0x10000, 0x2000);
    VT_ASSERT_RC(vmmem_slices_next(&it, &it_s), 1);
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, true), 0);
    uint32_t v = 0xfeedf00d;
    VT_ASSERT_RC(vmmem_slice_write(&s, 0x1ffe, &v, 4), 0); /* pages 2 and 3 */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x2000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x3000));
    VT_ASSERT_RC(vmmem_slice_store(&s, 0x3000, 8, 1, VMMEM_RELEASE), 0); /* page 4 */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x4000));
    CU_ASSERT_EQUAL(vmmem_slice_copy_from(&it_s, &v, 4), 4); /* page 0x10 */
    CU_ASSERT_TRUE(vmmem_map_is_dirty(m, 0x10000));
    CU_ASSERT_EQUAL(map_harvest(m), 4);
    vmmem_slice_release(&s);
    vmmem_slice_release(&it_s);
    vmmem_map_unref(m);
}

/* Case 2: the switch belongs to the memory, not to one map. */
static void t_case2_switch_per_region(void)
{
    vmmem_map *m0 = vt_map("mmap:addr=0,size=64K");
    vmmem_space *s = NULL;
    if (m0 == NULL)
        return;
    VT_ASSERT_RC(vmmem_space_new(&s, m0, NULL), 0);
    vmmem_map_unref(m0);
    if (s == NULL)
        return;
    vmmem_map *held = vmmem_space_snapshot(s); /* a device's snapshot */
    struct vmmem_region_spec sp = mspec(0x100000, 0x10000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), 0);
    vmmem_map *cur = vmmem_space_snapshot(s);
    uint64_t v = 7;

    /* On through the old snapshot: writes through the newer map mark. */
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(held, true), 0);
    VT_ASSERT_RC(vmmem_write_obj(cur, 0x1000, &v, 8), 0);
    VT_ASSERT_RC(vmmem_fast_write_obj(cur, 0x2000, &v, 8), 0);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(cur, 0x1000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(cur, 0x2000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(held, 0x2000));
    CU_ASSERT_EQUAL(map_harvest(cur), 2);

    /* Off, then on through the current map: writes through the old snapshot mark. */
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(held, false), 0);
    VT_ASSERT_RC(vmmem_fast_write_obj(cur, 0x2000, &v, 8), 0);
    CU_ASSERT_EQUAL(map_harvest(cur), 0);
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(cur, true), 0);
    VT_ASSERT_RC(vmmem_fast_write_obj(held, 0x3000, &v, 8), 0);
    VT_ASSERT_RC(vmmem_store(held, 0x4000, 4, 1, VMMEM_RELAXED), 0);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(cur, 0x3000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(cur, 0x4000));
    CU_ASSERT_EQUAL(map_harvest(cur), 2);
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(cur, false), 0);

#ifndef VT_OLD_API
    /* The space's switch, inherited by a region added later. */
    VT_ASSERT_RC(vmmem_space_set_dirty_tracking(s, true), 0);
    CU_ASSERT_TRUE(vmmem_space_dirty_tracking(s));
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(held));
    sp = mspec(0x200000, 0x10000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), 0);
    vmmem_map *later = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(later));
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(later, &h), 0);
    CU_ASSERT_EQUAL(vmmem_space_harvest(s, h, NULL), 16); /* the new region entered whole */
    VT_ASSERT_RC(vmmem_fast_write_obj(later, 0x205000, &v, 8), 0);
    VT_ASSERT_RC(vmmem_write_obj(held, 0x5000, &v, 8), 0);
    vmmem_map *hm = NULL;
    CU_ASSERT_EQUAL(vmmem_space_harvest(s, h, &hm), 2);
    CU_ASSERT_PTR_EQUAL(hm, later);
    vmmem_harvest_iter hit = {0};
    uint64_t gpa = 0, len = 0;
    CU_ASSERT_TRUE(vmmem_harvest_next_run(h, &hit, &gpa, &len));
    CU_ASSERT_EQUAL(gpa, 0x5000);
    CU_ASSERT_TRUE(vmmem_harvest_next_run(h, &hit, &gpa, &len));
    CU_ASSERT_EQUAL(gpa, 0x205000);
    CU_ASSERT_FALSE(vmmem_harvest_next_run(h, &hit, &gpa, &len));
    vmmem_map_unref(hm);
    /* Off for the space: no marks anywhere. */
    VT_ASSERT_RC(vmmem_space_set_dirty_tracking(s, false), 0);
    CU_ASSERT_FALSE(vmmem_space_dirty_tracking(s));
    VT_ASSERT_RC(vmmem_fast_write_obj(later, 0x206000, &v, 8), 0);
    VT_ASSERT_RC(vmmem_write_obj(held, 0x6000, &v, 8), 0);
    CU_ASSERT_EQUAL(vmmem_space_harvest(s, h, NULL), 0);
    vmmem_harvest_free(h);
    vmmem_map_unref(later);
    VT_ASSERT_RC(vmmem_space_set_dirty_tracking(NULL, true), -EINVAL);
#endif
    vmmem_map_unref(cur);
    vmmem_map_unref(held);
    vmmem_space_free(s);
}

/* Case 3: a rebase keeps the region's dirty pages, and later writes through
 * old snapshots are reported at the new address. */
static void t_case3_rebase(void)
{
    vmmem_map *m0 = vt_map("mmap:addr=0x10000,size=0x4000");
    vmmem_space *s = NULL;
    if (m0 == NULL)
        return;
    struct vmmem_map_options o = {.struct_size = sizeof o, .flags = VMMEM_MAP_DIRTY_TRACKING};
    VT_ASSERT_RC(vmmem_space_new(&s, m0, &o), 0);
    vmmem_map_unref(m0);
    if (s == NULL)
        return;
    vmmem_map *old = vmmem_space_snapshot(s);
    uint64_t v = 9;
    VT_ASSERT_RC(vmmem_write_obj(old, 0x11000, &v, 8), 0);
    VT_ASSERT_RC(vmmem_space_rebase(s, 0x10000, 0x4000, 0x40000), 0);
    vmmem_map *cur = vmmem_space_snapshot(s);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(cur, 0x41000)); /* dirtied before the rebase */
    CU_ASSERT_TRUE(vmmem_map_dirty_tracking(cur));
    CU_ASSERT_TRUE(map_harvest(cur) >= 1);
    /* A device still on the old snapshot writes at the old address. */
    VT_ASSERT_RC(vmmem_write_obj(old, 0x12008, &v, 8), 0);
    VT_ASSERT_RC(vmmem_fast_write_obj(old, 0x13000, &v, 8), 0);
    CU_ASSERT_TRUE(vmmem_map_is_dirty(cur, 0x42000));
    CU_ASSERT_TRUE(vmmem_map_is_dirty(cur, 0x43000));
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(cur, &h), 0);
    if (h != NULL) {
        CU_ASSERT_EQUAL(vmmem_map_harvest(cur, h), 2);
        vmmem_harvest_iter it = {0};
        uint64_t gpa = 0, len = 0;
        CU_ASSERT_TRUE(vmmem_harvest_next_run(h, &it, &gpa, &len));
        CU_ASSERT_EQUAL(gpa, 0x42000);
        CU_ASSERT_EQUAL(len, 0x2000);
        CU_ASSERT_FALSE(vmmem_harvest_next_run(h, &it, &gpa, &len));
    }
    vmmem_harvest_free(h);
    vmmem_map_unref(cur);
    vmmem_map_unref(old);
    vmmem_space_free(s);
}

/* Case 4: writes through the IOMMU mark guest-physical pages and the
 * vhost-user log. */
static bool log_bit(const uint8_t *log, uint64_t gpa)
{
    uint64_t p = gpa / 4096;
    return (log[p / 8] >> (p % 8)) & 1;
}

static void t_case4_iommu(void)
{
    vmmem_map *phys = vt_map("mmap:addr=0,size=64K;mmap:addr=64K,size=64K");
    if (phys == NULL)
        return;
    VT_ASSERT_RC(vmmem_map_set_dirty_tracking(phys, true), 0);
    int fd = memfd_create("vt-migrate-log", MFD_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ftruncate(fd, 4096), 0);
    VT_ASSERT_RC(vmmem_map_attach_log(phys, fd, 0, 4096), 0);
    uint8_t *log = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CU_ASSERT_FATAL(log != MAP_FAILED);
    vmmem_iotlb *t = NULL;
    vmmem_iommu *im = NULL;
    VT_ASSERT_RC(vmmem_iotlb_new(&t), 0);
    VT_ASSERT_RC(vmmem_iommu_new(&im, phys, t, NULL, NULL), 0);
    if (t == NULL || im == NULL)
        goto out;
    /* IOVA [0x100000, 0x105000) -> GPA [0xe000, 0x13000), across the region seam. */
    VT_ASSERT_RC(vmmem_iotlb_set(t, 0x100000, 0xe000, 0x5000, VMMEM_PROT_RW), 0);
    uint8_t buf[32] = {1};
    uint64_t v = 5;
    CU_ASSERT_EQUAL(vmmem_iommu_write(im, 0x100ff0, buf, 32), 32); /* GPA 0xeff0..0xf00f */
    VT_ASSERT_RC(vmmem_iommu_write_obj(im, 0x102000, &v, 8), 0);   /* GPA 0x10000 */
    VT_ASSERT_RC(vmmem_iommu_store(im, 0x103008, 8, 1, VMMEM_RELEASE), 0); /* GPA 0x11008 */
    int p[2];
    CU_ASSERT_EQUAL(pipe(p), 0);
    CU_ASSERT_EQUAL(write(p[1], buf, 8), 8);
    CU_ASSERT_EQUAL(vmmem_iommu_read_from_fd(im, 0x104100, p[0], 8), 8); /* GPA 0x12100 */
    close(p[0]);
    close(p[1]);
    vmmem_iommu_iter it;
    vmmem_slice sl;
    vmmem_iommu_slices_begin(&it, im, 0x101000, 0x10, VMMEM_PROT_RW);
    VT_ASSERT_RC(vmmem_iommu_slices_next(&it, &sl), 1);
    VT_ASSERT_RC(vmmem_slice_write(&sl, 0, buf, 4), 0); /* GPA 0xf000 */
    vmmem_slice_release(&sl);
    vmmem_iommu_slices_end(&it);
    static const uint64_t dirty[] = {0xe000, 0xf000, 0x10000, 0x11000, 0x12000};
    for (size_t i = 0; i < sizeof dirty / sizeof dirty[0]; i++) {
        CU_ASSERT_TRUE(vmmem_map_is_dirty(phys, dirty[i]));
        CU_ASSERT_TRUE(log_bit(log, dirty[i]));
    }
    CU_ASSERT_FALSE(log_bit(log, 0xd000));
    CU_ASSERT_FALSE(log_bit(log, 0x13000));
    /* IOVA pages are not guest-physical pages. */
    CU_ASSERT_FALSE(log_bit(log, 0x100000));
    CU_ASSERT_EQUAL(map_harvest(phys), 5);
out:
    vmmem_iommu_free(im);
    vmmem_iotlb_free(t);
    munmap(log, 4096);
    VT_ASSERT_RC(vmmem_map_detach_log(phys), 0);
    close(fd);
    vmmem_map_unref(phys);
}

/* Case 5: a harvest buffer follows hot-plug. */
static void t_case5_harvest_layout(void)
{
    vmmem_map *m0 = vt_map("mmap:addr=0,size=64K");
    vmmem_space *s = NULL;
    if (m0 == NULL)
        return;
    struct vmmem_map_options o = {.struct_size = sizeof o, .flags = VMMEM_MAP_DIRTY_TRACKING};
    VT_ASSERT_RC(vmmem_space_new(&s, m0, &o), 0);
    if (s == NULL) {
        vmmem_map_unref(m0);
        return;
    }
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m0, &h), 0);
    uint64_t v = 3;
    VT_ASSERT_RC(vmmem_write_obj(m0, 0x1000, &v, 8), 0);
    struct vmmem_region_spec sp = mspec(0x100000, 0x8000);
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), 0);
    vmmem_map *m1 = vmmem_space_snapshot(s);
    /* Before: -EINVAL (the buffer was made for m0's layout). */
    CU_ASSERT_EQUAL(vmmem_map_harvest(m1, h), 1 + 8);
    CU_ASSERT_EQUAL(vmmem_harvest_regions(h), 2);
#ifndef VT_OLD_API
    /* The space harvest: a region removed between rounds reports the pages
     * it had dirty, at its old address, apart from the current layout. */
    VT_ASSERT_RC(vmmem_write_obj(m1, 0x102000, &v, 8), 0);
    VT_ASSERT_RC(vmmem_space_remove(s, 0x100000, 0x8000), 0);
    VT_ASSERT_RC(vmmem_write_obj(m1, 0x103000, &v, 8), 0); /* an old snapshot, after */
    VT_ASSERT_RC(vmmem_write_obj(m1, 0x2000, &v, 8), 0);
    vmmem_map *hm = NULL;
    CU_ASSERT_EQUAL(vmmem_space_harvest(s, h, &hm), 3);
    CU_ASSERT_EQUAL(vmmem_harvest_regions(h), 1);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(hm), 1);
    vmmem_harvest_iter it = {0};
    uint64_t gpa = 0, len = 0;
    CU_ASSERT_TRUE(vmmem_harvest_next_run(h, &it, &gpa, &len));
    CU_ASSERT_EQUAL(gpa, 0x2000);
    CU_ASSERT_EQUAL(len, 0x1000);
    CU_ASSERT_FALSE(vmmem_harvest_next_run(h, &it, &gpa, &len));
    vmmem_harvest_iter rit = {0};
    CU_ASSERT_TRUE(vmmem_harvest_next_removed_run(h, &rit, &gpa, &len));
    CU_ASSERT_EQUAL(gpa, 0x102000);
    CU_ASSERT_EQUAL(len, 0x2000);
    CU_ASSERT_FALSE(vmmem_harvest_next_removed_run(h, &rit, &gpa, &len));
    vmmem_map_unref(hm);
    /* Reported once: the next harvest has no removed regions. */
    VT_ASSERT_RC(vmmem_write_obj(m1, 0x104000, &v, 8), 0);
    CU_ASSERT_EQUAL(vmmem_space_harvest(s, h, NULL), 0);
    vmmem_harvest_iter rit2 = {0};
    CU_ASSERT_FALSE(vmmem_harvest_next_removed_run(h, &rit2, &gpa, &len));
    CU_ASSERT_EQUAL(vmmem_space_harvest(NULL, h, NULL), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_space_harvest(s, NULL, &hm), -EINVAL);
    CU_ASSERT_PTR_NULL(hm);
#endif
    vmmem_harvest_free(h);
    vmmem_map_unref(m1);
    vmmem_map_unref(m0);
    vmmem_space_free(s);
}

/*
 * Case 6: writes racing the switch.  A fast-path writer tested "untracked"
 * just before tracking went on and stored afterwards, unmarked.  Now writers
 * test after storing and the switch ends with a process-wide store flush:
 * every write is in a copy started after the switch returned, or marked.
 * The window is a few instructions wide, so this is a stress check of the
 * contract (rounds of switch-on, copy, stop, harvest, compare), not a
 * deterministic reproduction.
 */
#define C6_PAGES 16u
struct c6 {
    vmmem_map *m;
    atomic_bool stop;
    atomic_ulong writes;
    unsigned id;
};

static void *c6_writer(void *arg)
{
    struct c6 *c = arg;
    uint64_t seq = 0;
    while (!atomic_load(&c->stop) || seq < 64) {
        uint64_t a = (seq % C6_PAGES) * PAGE + c->id * 8, v = (seq << 8) | c->id;
        if (seq & 1)
            (void)vmmem_fast_write_obj(c->m, a, &v, 8);
        else
            (void)vmmem_fast_store_u32(c->m, a + 4, (uint32_t)seq, VMMEM_RELAXED);
        seq++;
        atomic_fetch_add(&c->writes, 1);
    }
    return NULL;
}

static void t_case6_switch_race(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=64K");
    if (m == NULL)
        return;
    static uint8_t dst[C6_PAGES * PAGE], src[C6_PAGES * PAGE];
    unsigned rounds = 40, bad = 0;
    for (unsigned r = 0; r < rounds; r++) {
        struct c6 c[2] = {{.m = m, .id = 1}, {.m = m, .id = 2}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, c6_writer, &c[i]);
        while (atomic_load(&c[0].writes) < 32 || atomic_load(&c[1].writes) < 32)
            sched_yield();
        VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, true), 0);
        VT_ASSERT_RC(vmmem_read_slice(m, 0, dst, sizeof dst), 0); /* the full copy */
        for (int i = 0; i < 2; i++) {
            atomic_store(&c[i].stop, true);
            pthread_join(th[i], NULL);
        }
        vmmem_harvest *h = NULL;
        VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
        if (h != NULL && vmmem_map_harvest(m, h) >= 0) {
            vmmem_harvest_iter it = {0};
            uint64_t gpa, len;
            while (vmmem_harvest_next_run(h, &it, &gpa, &len))
                if (gpa < sizeof dst)
                    VT_ASSERT_RC(vmmem_read_slice(m, gpa, dst + gpa,
                                                  (size_t)(len < sizeof dst - gpa ? len
                                                                                  : sizeof dst - gpa)),
                                 0);
        }
        vmmem_harvest_free(h);
        VT_ASSERT_RC(vmmem_read_slice(m, 0, src, sizeof src), 0);
        for (unsigned p = 0; p < C6_PAGES; p++)
            bad += memcmp(dst + p * PAGE, src + p * PAGE, PAGE) != 0;
        VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, false), 0);
    }
    if (bad != 0)
        fprintf(stdout, "\n    %u stale pages over %u switch rounds\n", bad, rounds);
    CU_ASSERT_EQUAL(bad, 0);
    vmmem_map_unref(m);
}

/* The vhost-user log follows the same rules: a ring slice taken when the
 * rings were set up, and a snapshot taken before SET_LOG_BASE, mark it. */
static void t_log_slices_before_attach(void)
{
    vmmem_map *m0 = vt_map("mmap:addr=0,size=64K");
    vmmem_space *s = NULL;
    if (m0 == NULL)
        return;
    VT_ASSERT_RC(vmmem_space_new(&s, m0, NULL), 0);
    vmmem_map_unref(m0);
    if (s == NULL)
        return;
    vmmem_map *held = vmmem_space_snapshot(s);
    vmmem_slice ring;
    VT_ASSERT_RC(vmmem_get_slice(held, 0x4000, 0x1000, &ring), 0);
    int fd = memfd_create("vt-migrate-log2", MFD_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ftruncate(fd, 4096), 0);
    VT_ASSERT_RC(vmmem_space_attach_log(s, fd, 0, 4096), 0);
    uint8_t *log = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CU_ASSERT_FATAL(log != MAP_FAILED);
    uint16_t idx = 1;
    VT_ASSERT_RC(vmmem_slice_store(&ring, 2, 2, idx, VMMEM_RELEASE), 0); /* used->idx */
    uint64_t v = 2;
    VT_ASSERT_RC(vmmem_fast_write_obj(held, 0x7000, &v, 8), 0);
    struct vmmem_region_spec sp = mspec(0x10000, 0x4000); /* hot-plugged after the attach */
    VT_ASSERT_RC(vmmem_space_add(s, NULL, &sp), 0);
    vmmem_map *cur = vmmem_space_snapshot(s);
    VT_ASSERT_RC(vmmem_write_obj(cur, 0x12000, &v, 8), 0);
    CU_ASSERT_TRUE(log_bit(log, 0x4000));
    CU_ASSERT_TRUE(log_bit(log, 0x7000));
    CU_ASSERT_TRUE(log_bit(log, 0x12000));
    CU_ASSERT_FALSE(log_bit(log, 0x5000));
    CU_ASSERT_FALSE(log_bit(log, 0x10000)); /* entering all-dirty is the bitmap's, not the log's */
    vmmem_slice_release(&ring);
    VT_ASSERT_RC(vmmem_space_detach_log(s), 0);
    munmap(log, 4096);
    close(fd);
    vmmem_map_unref(cur);
    vmmem_map_unref(held);
    vmmem_space_free(s);
}

/* ---- 2. issue 16 items 4 and 6 ------------------------------------------ */

/* Item 4: an IOMMU atomic that fails in the physical map reports the IOVA. */
static void t_i16_iommu_atomic_addr(void)
{
    vmmem_map *phys = vt_map("mmap:addr=0,size=64K;mmap:addr=0x20000,size=64K,prot=r");
    if (phys == NULL)
        return;
    vmmem_iotlb *t = NULL;
    vmmem_iommu *im = NULL;
    VT_ASSERT_RC(vmmem_iotlb_new(&t), 0);
    VT_ASSERT_RC(vmmem_iommu_new(&im, phys, t, NULL, NULL), 0);
    if (im != NULL) {
        VT_ASSERT_RC(vmmem_iotlb_set(t, 0x900000, 0x10000, 0x1000, VMMEM_PROT_RW), 0); /* hole */
        VT_ASSERT_RC(vmmem_iotlb_set(t, 0xa00000, 0x20000, 0x1000, VMMEM_PROT_RW), 0); /* ro */
        uint64_t v = 0;
        VT_ASSERT_RC(vmmem_iommu_store(im, 0x900008, 8, 1, VMMEM_RELAXED), VMMEM_EINVALID_ADDRESS);
        CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x900008);
        VT_ASSERT_RC(vmmem_iommu_load(im, 0x900010, 4, &v, VMMEM_ACQUIRE), VMMEM_EINVALID_ADDRESS);
        CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x900010);
        VT_ASSERT_RC(vmmem_iommu_store(im, 0xa00018, 8, 1, VMMEM_RELAXED), VMMEM_EREAD_ONLY);
        CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0xa00018);
        VT_ASSERT_RC(vmmem_iommu_load(im, 0xa00020, 8, &v, VMMEM_RELAXED), 0);
    }
    vmmem_iommu_free(im);
    vmmem_iotlb_free(t);
    vmmem_map_unref(phys);
}

/* Item 6: a map-on-access slice keeps its region alive: released after its
 * map was dropped, it unmaps through a live provider (ASan saw a
 * heap-use-after-free here before). */
static void t_i16_slice_outlives_map(void)
{
    vmmem_registry *reg = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&reg), 0);
    if (reg == NULL)
        return;
    int rc = vmmem_registry_load(reg, vt_test_plugin("lazy.so"));
    VT_ASSERT_RC(rc, 0);
    vmmem_map *m = NULL;
    if (rc == 0)
        VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-lazy:addr=0,size=64K", NULL), 0);
    if (m != NULL) {
        vmmem_slice s, sub;
        VT_ASSERT_RC(vmmem_get_slice(m, 0x1000, 0x100, &s), 0);
        VT_ASSERT_RC(vmmem_map_set_dirty_tracking(m, true), 0);
        vmmem_map_unref(m); /* the slice is all that is left */
        uint32_t v = 0x12345678, back = 0;
        VT_ASSERT_RC(vmmem_slice_write(&s, 4, &v, 4), 0); /* marks the region's bitmap */
        VT_ASSERT_RC(vmmem_slice_subslice(&s, 4, 4, &sub), 0);
        VT_ASSERT_RC(vmmem_slice_read(&sub, 0, &back, 4), 0);
        CU_ASSERT_EQUAL(back, v);
        vmmem_slice_release(&s);
    }
    vmmem_registry_free(reg);
}

/* ---- 3. the migration simulator -------------------------------------------- */
#ifndef VT_OLD_API

/*
 * Guest memory: two written regions W0 [0, 256K) and W1 at 1M or 2M (the
 * hot-plug thread re-bases it between the two, and replaces W0 with fresh
 * memory), plus small "other" regions at 3M+ that come and go.  Devices
 * write only into W0/W1 (found by size in their snapshot).
 */
#define W_SIZE 0x40000u
#define W0_BASE 0x0u
#define W1_A 0x100000u
#define W1_B 0x200000u
#define OTHER_BASE 0x300000u
#define OTHER_SIZE 0x10000u
#define DEST_SIZE 0x400000u
#define IOVA_OFF 0x10000000u

enum path {
    P_NONE,
    P_WRITE,       /* vmmem_write */
    P_WRITE_SLICE, /* vmmem_write_slice */
    P_WRITE_OBJ,   /* vmmem_write_obj */
    P_STORE,       /* vmmem_store */
    P_FAST_OBJ,    /* vmmem_fast_write_obj */
    P_FAST_U32,    /* vmmem_fast_store_u32 */
    P_FAST_SLICE,  /* vmmem_fast_write_slice */
    P_SECTION,     /* write_obj through a read section's map */
    P_OLD_SLICE,   /* a slice taken before tracking began, kept */
    P_ITER_SLICE,  /* slices from vmmem_slices_next */
    P_FD,          /* vmmem_read_from_fd */
    P_IOMMU,       /* vmmem_iommu_write_slice / _store */
    P_COUNT
};
/* The pages of a written region that path p writes: 5 of its 64 each. */
#define PATH_BYTES (5u * PAGE)
static uint64_t path_base(enum path p)
{
    return (uint64_t)(p - 1) * PATH_BYTES;
}
_Static_assert((P_COUNT - 1) * PATH_BYTES <= W_SIZE, "paths fit a written region");

static const char *const path_name[P_COUNT] = {
    "(never written)", "vmmem_write", "vmmem_write_slice", "vmmem_write_obj", "vmmem_store",
    "vmmem_fast_write_obj", "vmmem_fast_store_u32", "vmmem_fast_write_slice",
    "read section write_obj", "slice taken before tracking", "iterator slice",
    "vmmem_read_from_fd", "IOMMU write"};

struct sim {
    vmmem_space *s;
    bool hotplug;
    atomic_bool stop;
    atomic_bool tracking_on;
    atomic_ulong writes[P_COUNT];
    atomic_ulong hotplug_ops;
    atomic_uint rounds; /* harvest rounds done: hot-plug keeps pace with them */
    atomic_bool quiet;  /* last rounds: no re-base or replace of written regions (those
                         * re-send them whole and would hide a lost mark) */
    unsigned min_writes, min_rounds, min_hotplug;
    unsigned errors;
};

struct dev {
    struct sim *sim;
    unsigned id;
    atomic_ulong done; /* read by the migration thread */
    int failures;
};

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A written region of m: its start (k picks among them), or UINT64_MAX. */
static uint64_t pick_region(const vmmem_map *m, uint64_t k)
{
    size_t n = vmmem_map_num_regions(m), w = 0;
    uint64_t starts[4];
    for (size_t i = 0; i < n && w < 4; i++) {
        const vmmem_region *r = vmmem_map_region(m, i);
        if (vmmem_region_size(r) == W_SIZE)
            starts[w++] = vmmem_region_start(r);
    }
    return w ? starts[k % w] : UINT64_MAX;
}

static void payload(uint8_t *b, size_t n, enum path p, uint64_t seq)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((unsigned)p << 4 | ((seq + i) & 0xf));
}

static void *dev_main(void *arg)
{
    struct dev *d = arg;
    struct sim *sim = d->sim;
    uint64_t x = 0x9e3779b97f4a7c15ull * (d->id + 1);
    /* A ring slice taken at device setup, long before migration, and the
     * snapshot it came from (the device holds both for its life). */
    vmmem_map *setup = vmmem_space_snapshot(sim->s);
    vmmem_slice ring;
    uint64_t ring_base = pick_region(setup, d->id);
    bool have_ring = ring_base != UINT64_MAX &&
                     vmmem_get_slice(setup, ring_base + path_base(P_OLD_SLICE), PATH_BYTES,
                                     &ring) == 0;
    vmmem_iotlb *t = NULL;
    vmmem_iommu *im = NULL;
    int fds[2] = {-1, -1};
    if (vmmem_iotlb_new(&t) == 0)
        (void)vmmem_iotlb_set(t, IOVA_OFF, 0, DEST_SIZE, VMMEM_PROT_RW);
    if (t != NULL)
        (void)vmmem_iommu_new(&im, setup, t, NULL, NULL);
    if (pipe(fds) != 0)
        d->failures++;
    uint64_t seq = 0;
    uint8_t buf[64];
    while (!atomic_load(&sim->stop) || atomic_load(&d->done) < sim->min_writes) {
        vmmem_map *m = vmmem_space_snapshot(sim->s);
        if (im != NULL)
            (void)vmmem_iommu_set_phys(im, m);
        for (int k = 0; k < 16; k++, seq++) {
            uint64_t r = rnd(&x);
            enum path p = (enum path)(1 + r % (P_COUNT - 1));
            uint64_t base = pick_region(m, r >> 8);
            if (base == UINT64_MAX)
                continue;
            /* Each path writes only its own pages, so that a write it fails to
             * mark is not hidden by another path marking the page. */
            uint64_t off = path_base(p) + ((r >> 16) % (PATH_BYTES - 64) & ~7ull), a = base + off;
            size_t n = 8 + (size_t)((r >> 40) % 7) * 8; /* 8..56 bytes */
            int rc = 0;
            payload(buf, sizeof buf, p, seq);
            switch (p) {
            case P_WRITE:
                rc = vmmem_write(m, a, buf, n) == (int64_t)n ? 0 : -1;
                break;
            case P_WRITE_SLICE:
                rc = vmmem_write_slice(m, a, buf, n);
                break;
            case P_WRITE_OBJ:
                rc = vmmem_write_obj(m, a, buf, 8);
                break;
            case P_STORE: {
                uint64_t v;
                memcpy(&v, buf, 8);
                rc = vmmem_store(m, a, 8, v, VMMEM_RELEASE);
                break;
            }
            case P_FAST_OBJ:
                rc = vmmem_fast_write_obj(m, a, buf, 8);
                break;
            case P_FAST_U32: {
                uint32_t v;
                memcpy(&v, buf, 4);
                rc = vmmem_fast_store_u32(m, a, v, VMMEM_RELAXED);
                break;
            }
            case P_FAST_SLICE:
                rc = vmmem_fast_write_slice(m, a, buf, 16 + n % 32);
                break;
            case P_SECTION: {
                struct vmmem_read_section sec;
                const vmmem_map *sm = vmmem_space_read_begin(sim->s, &sec);
                uint64_t sb = sm ? pick_region(sm, r >> 8) : UINT64_MAX;
                if (sb != UINT64_MAX)
                    rc = vmmem_write_obj(sm, sb + off, buf, 8);
                vmmem_space_read_end(&sec);
                break;
            }
            case P_OLD_SLICE:
                if (have_ring)
                    rc = vmmem_slice_write(&ring, (size_t)(off - path_base(P_OLD_SLICE)), buf, n);
                break;
            case P_ITER_SLICE: {
                vmmem_slice_iter it;
                vmmem_slice sl;
                vmmem_slices_begin(&it, m, a, n);
                size_t done = 0;
                while (vmmem_slices_next(&it, &sl) > 0) {
                    if (sl.len >= 8 && ((r >> 4) & 1))
                        rc |= vmmem_slice_store(&sl, 0, 8, 0, VMMEM_RELAXED) |
                              vmmem_slice_write(&sl, 0, buf + done, 8);
                    else
                        rc |= vmmem_slice_write(&sl, 0, buf + done, sl.len);
                    done += sl.len;
                    vmmem_slice_release(&sl);
                }
                break;
            }
            case P_FD:
                if (fds[1] >= 0 && write(fds[1], buf, n) == (ssize_t)n)
                    rc = vmmem_read_from_fd(m, a, fds[0], n) == (int64_t)n ? 0 : -1;
                break;
            case P_IOMMU:
                if (im != NULL) {
                    if ((r >> 4) & 1) {
                        uint64_t v;
                        memcpy(&v, buf, 8);
                        rc = vmmem_iommu_store(im, IOVA_OFF + a, 8, v, VMMEM_RELEASE);
                    } else {
                        rc = vmmem_iommu_write_slice(im, IOVA_OFF + a, buf, n);
                    }
                }
                break;
            default:
                break;
            }
            if (rc != 0)
                d->failures++;
            atomic_fetch_add_explicit(&sim->writes[p], 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&d->done, 1, memory_order_relaxed);
        }
        vmmem_map_unref(m);
    }
    if (have_ring)
        vmmem_slice_release(&ring);
    vmmem_iommu_free(im);
    vmmem_iotlb_free(t);
    if (fds[0] >= 0) {
        close(fds[0]);
        close(fds[1]);
    }
    vmmem_map_unref(setup);
    return NULL;
}

/* Hot-plug: add/remove other regions, re-base W1 between 1M and 2M,
 * replace W0 with fresh memory. */
static void *hotplug_main(void *arg)
{
    struct sim *sim = arg;
    unsigned long k = 0;
    uint64_t w1 = W1_A;
    bool parked = false; /* the region case 3 leaves in */
    while (!atomic_load(&sim->stop) || atomic_load(&sim->hotplug_ops) < sim->min_hotplug) {
        /* About four changes per harvest round, so that every round meets
         * some (a writer hammering the lock could starve the harvests). */
        if (!atomic_load(&sim->stop) &&
            atomic_load(&sim->hotplug_ops) >= 4ul * (atomic_load(&sim->rounds) + 1)) {
            sched_yield();
            continue;
        }
        if (atomic_load(&sim->quiet) && (k % 4 == 1 || k % 4 == 2)) {
            k++;
            continue;
        }
        int rc = 0;
        uint64_t oa = OTHER_BASE + (k % 4) * OTHER_SIZE; /* case k%4 uses its own slot */
        struct vmmem_region_spec sp;
        switch (k % 4) {
        case 0:
            sp = mspec(oa, OTHER_SIZE);
            rc = vmmem_space_add(sim->s, NULL, &sp);
            if (rc == 0)
                rc = vmmem_space_remove(sim->s, oa, OTHER_SIZE);
            break;
        case 1:
            rc = vmmem_space_rebase(sim->s, w1, W_SIZE, w1 == W1_A ? W1_B : W1_A);
            w1 = w1 == W1_A ? W1_B : W1_A;
            break;
        case 2:
            sp = mspec(W0_BASE, W_SIZE);
            rc = vmmem_space_replace(sim->s, W0_BASE, W_SIZE, NULL, &sp);
            break;
        default: /* in for a round of the others, then out */
            sp = mspec(oa, OTHER_SIZE);
            rc = parked ? vmmem_space_remove(sim->s, oa, OTHER_SIZE)
                        : vmmem_space_add(sim->s, NULL, &sp);
            parked = !parked;
            break;
        }
        if (rc != 0)
            sim->errors++;
        k++;
        atomic_fetch_add(&sim->hotplug_ops, 1);
        sched_yield();
    }
    return NULL;
}

/* Copy [gpa, gpa+len) of m into the destination (clipped to it). */
static void copy_out(const vmmem_map *m, uint8_t *dest, uint64_t gpa, uint64_t len, unsigned *err)
{
    if (gpa >= DEST_SIZE)
        return;
    if (len > DEST_SIZE - gpa)
        len = DEST_SIZE - gpa;
    if (vmmem_read_slice(m, gpa, dest + gpa, (size_t)len) != 0)
        (*err)++;
}

static unsigned sim_scale(void)
{
    const char *e = getenv("VMMEM_SIM_SCALE");
    long v = e ? strtol(e, NULL, 10) : 1;
    return v > 0 && v < 1000 ? (unsigned)v : 1;
}

static void run_sim(bool hotplug)
{
    struct sim sim = {.hotplug = hotplug};
    unsigned scale = sim_scale();
    sim.min_writes = 2000 * scale;
    sim.min_rounds = 6 * scale;
    sim.min_hotplug = hotplug ? 24 * scale : 0;
    vmmem_map *m0 = vt_map("mmap:addr=0,size=256K;mmap:addr=1M,size=256K");
    if (m0 == NULL)
        return;
    VT_ASSERT_RC(vmmem_space_new(&sim.s, m0, NULL), 0);
    vmmem_map_unref(m0);
    if (sim.s == NULL)
        return;
    uint8_t *dest = calloc(1, DEST_SIZE);
    CU_ASSERT_FATAL(dest != NULL);
    enum { NDEV = 2 };
    struct dev devs[NDEV];
    pthread_t th[NDEV], hp;
    for (unsigned i = 0; i < NDEV; i++) {
        devs[i].sim = &sim;
        devs[i].id = i;
        atomic_init(&devs[i].done, 0);
        devs[i].failures = 0;
        pthread_create(&th[i], NULL, dev_main, &devs[i]);
    }
    if (hotplug)
        pthread_create(&hp, NULL, hotplug_main, &sim);
    /* Let the devices run untracked for a while first. */
    while (atomic_load(&devs[0].done) < 200 || atomic_load(&devs[1].done) < 200)
        sched_yield();

    /* 1. tracking on for the space; 2. the full copy. */
    VT_ASSERT_RC(vmmem_space_set_dirty_tracking(sim.s, true), 0);
    unsigned copy_err = 0;
    vmmem_map *m = vmmem_space_snapshot(sim.s);
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    for (size_t i = 0; i < vmmem_map_num_regions(m); i++) {
        const vmmem_region *r = vmmem_map_region(m, i);
        copy_out(m, dest, vmmem_region_start(r), vmmem_region_size(r), &copy_err);
    }
    vmmem_map_unref(m);
    /* 3. rounds of harvest + copy, while devices (and hot-plug) go on. */
    unsigned rounds = 0, last = UINT32_MAX;
    uint64_t pages = 0, removed_pages = 0;
    for (;;) {
        bool enough = rounds >= sim.min_rounds &&
                      atomic_load(&devs[0].done) >= sim.min_writes / 2 &&
                      atomic_load(&devs[1].done) >= sim.min_writes / 2 &&
                      atomic_load(&sim.hotplug_ops) >= sim.min_hotplug / 2;
        if (enough && last == UINT32_MAX) { /* two more rounds, written regions in place */
            atomic_store(&sim.quiet, true);
            last = rounds + 2;
        }
        if (rounds >= last)
            break;
        vmmem_map *hm = NULL;
        int64_t n = vmmem_space_harvest(sim.s, h, &hm);
        CU_ASSERT(n >= 0);
        if (n < 0)
            break;
        pages += (uint64_t)n;
        vmmem_harvest_iter it = {0};
        uint64_t gpa, len;
        while (vmmem_harvest_next_run(h, &it, &gpa, &len))
            copy_out(hm, dest, gpa, len, &copy_err);
        vmmem_harvest_iter rit = {0};
        while (vmmem_harvest_next_removed_run(h, &rit, &gpa, &len))
            removed_pages += len / PAGE; /* keyed by gpa: discarded (dirty.h) */
        vmmem_map_unref(hm);
        rounds++;
        atomic_store(&sim.rounds, rounds);
        sched_yield();
    }
    /* 4. stop the devices and hot-plug; 5. the last harvest. */
    atomic_store(&sim.stop, true);
    for (unsigned i = 0; i < NDEV; i++)
        pthread_join(th[i], NULL);
    if (hotplug)
        pthread_join(hp, NULL);
    vmmem_map *fm = NULL;
    int64_t n = vmmem_space_harvest(sim.s, h, &fm);
    CU_ASSERT(n >= 0);
    if (n >= 0) {
        vmmem_harvest_iter it = {0};
        uint64_t gpa, len;
        while (vmmem_harvest_next_run(h, &it, &gpa, &len))
            copy_out(fm, dest, gpa, len, &copy_err);
    }
    /* 6. compare every page of the final layout. */
    unsigned diff = 0, per_path[P_COUNT] = {0};
    size_t nr = fm ? vmmem_map_num_regions(fm) : 0;
    static uint8_t pagebuf[PAGE];
    for (size_t i = 0; i < nr; i++) {
        const vmmem_region *r = vmmem_map_region(fm, i);
        uint64_t st = vmmem_region_start(r), sz = vmmem_region_size(r);
        for (uint64_t a = st; a < st + sz && a < DEST_SIZE; a += PAGE) {
            VT_ASSERT_RC(vmmem_read_slice(fm, a, pagebuf, PAGE), 0);
            if (memcmp(pagebuf, dest + a, PAGE) == 0)
                continue;
            size_t b = 0;
            while (pagebuf[b] == dest[a + b])
                b++;
            unsigned p = pagebuf[b] >> 4;
            if (p >= P_COUNT)
                p = P_NONE;
            if (diff < 8)
                fprintf(stdout, "\n    page 0x%llx differs at +0x%zx: written by %s",
                        (unsigned long long)a, b, path_name[p]);
            diff++;
            per_path[p]++;
        }
    }
    unsigned long total = 0;
    for (int p = 1; p < P_COUNT; p++)
        total += atomic_load(&sim.writes[p]);
    fprintf(stdout,
            "\n    sim%s: %lu writes (%lu..%lu per path), %u rounds, %llu pages harvested, %llu "
            "removed-region pages, %lu hot-plug ops (%u failed), %u copy errors, device "
            "failures %d/%d, differing pages %u\n",
            hotplug ? " + hot-plug" : "", total, atomic_load(&sim.writes[P_FD]),
            atomic_load(&sim.writes[P_WRITE]), rounds, (unsigned long long)pages,
            (unsigned long long)removed_pages, atomic_load(&sim.hotplug_ops), sim.errors,
            copy_err, devs[0].failures, devs[1].failures, diff);
    for (int p = 1; p < P_COUNT; p++) {
        if (per_path[p] != 0)
            fprintf(stdout, "    %u differing pages last written by %s\n", per_path[p],
                    path_name[p]);
        CU_ASSERT(atomic_load(&sim.writes[p]) > 0); /* every path ran */
    }
    CU_ASSERT_EQUAL(diff, 0);
    CU_ASSERT_EQUAL(copy_err, 0);
    CU_ASSERT_EQUAL(sim.errors, 0);
    CU_ASSERT_EQUAL(devs[0].failures, 0);
    CU_ASSERT_EQUAL(devs[1].failures, 0);
    CU_ASSERT(rounds >= sim.min_rounds);
    vmmem_map_unref(fm);
    vmmem_harvest_free(h);
    VT_ASSERT_RC(vmmem_space_set_dirty_tracking(sim.s, false), 0);
    vmmem_space_free(sim.s);
    free(dest);
}

static void t_sim(void)
{
    run_sim(false);
}

static void t_sim_hotplug(void)
{
    run_sim(true);
}
#endif

int main(void)
{
    static const struct vt_test cases[] = {
        {"1: a slice taken before tracking marks", t_case1_slice_before_tracking},
        {"2: the switch belongs to the regions; the space switch", t_case2_switch_per_region},
        {"3: rebase keeps dirty pages; old snapshots mark the new address", t_case3_rebase},
        {"4: IOMMU writes mark guest-physical pages and the vhost-user log", t_case4_iommu},
        {"5: a harvest follows hot-plug; removed regions reported", t_case5_harvest_layout},
        {"6: writes racing the switch are copied or marked", t_case6_switch_race},
        {"the vhost-user log: slices and snapshots from before SET_LOG_BASE",
         t_log_slices_before_attach},
        {NULL, NULL}};
    static const struct vt_test i16[] = {
        {"item 4: IOMMU atomics report the IOVA", t_i16_iommu_atomic_addr},
        {"item 6: a map-on-access slice outlives its map", t_i16_slice_outlives_map},
        {NULL, NULL}};
    static const struct vt_test sim[] = {
#ifndef VT_OLD_API
        {"migration: every write path, zero differing pages", t_sim},
        {"migration with concurrent hot-plug", t_sim_hotplug},
#endif
        {NULL, NULL}};
    static const struct vt_suite s1 = {"issue 14 cases", NULL, NULL, cases};
    static const struct vt_suite s2 = {"issue 16 items 4 and 6", NULL, NULL, i16};
    static const struct vt_suite s3 = {"migration simulator", NULL, NULL, sim};
    static const struct vt_suite *const suites[] = {&s1, &s2, &s3, NULL};
    return vt_main(suites);
}

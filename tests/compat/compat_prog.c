/*
 * Compatibility test (docs/releasing.md): this program and the plugin beside
 * it are compiled against a frozen copy of release 0.1's headers
 * (tests/compat/include), and run against this build's libvmmem.  When a
 * later change breaks what 0.1's programs or plugins were promised (a
 * struct layout, a symbol, an error code, a hook's contract), this fails.
 * Plain C, no CUnit (its harness includes the current headers); prints the
 * runner's VMMEM-TEST-RESULT line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "compat.h"

static int checks, failures;

static void check(int ok, const char *what, int line)
{
    checks++;
    if (!ok) {
        failures++;
        printf("  FAIL compat_prog.c:%d: %s (last error %s: %s)\n", line, what,
               vmmem_err_name(vmmem_last_error()->code), vmmem_last_message());
    }
}
#define CHECK(cond) check((cond) ? 1 : 0, #cond, __LINE__)

static const struct compat_counts *counts(vmmem_registry *reg, const char *name)
{
    const struct vmmem_provider *p = vmmem_registry_find(reg, name);
    if (p == NULL || p->user == NULL)
        return NULL;
    const struct compat_counts *c = p->user;
    return c->magic == COMPAT_MAGIC ? c : NULL;
}

int main(void)
{
    const char *dir = getenv("VMMEM_TEST_PLUGIN_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/compat.so", dir != NULL ? dir : ".");
    printf("compat: 0.1 headers (%s), library %d.%d.%d\n", VMMEM_VERSION_STRING,
           VMMEM_VERSION_MAJOR, VMMEM_VERSION_MINOR, VMMEM_VERSION_PATCH);

    vmmem_registry *reg = NULL;
    CHECK(vmmem_registry_new(&reg) == 0);
    if (reg == NULL)
        goto out;
    CHECK(vmmem_registry_discover(reg) >= 0); /* the in-tree plugins (mmap) */
    CHECK(vmmem_registry_load(reg, path) >= 0);
    const struct compat_counts *pc = counts(reg, "compat"), *mc = counts(reg, "compat_moa");
    CHECK(pc != NULL && mc != NULL);
    if (pc == NULL || mc == NULL)
        goto out_reg;

    /* A hook's error reaches the caller with its code and message. */
    vmmem_map *bad = NULL;
    CHECK(vmmem_map_from_config(&bad, reg, "compat:addr=0x3000,size=4K,fail", NULL) ==
          VMMEM_EBAD_VALUE);
    CHECK(bad == NULL);
    CHECK(vmmem_last_error()->code == VMMEM_EBAD_VALUE);
    CHECK(strstr(vmmem_last_message(), "asked to fail at 0x3000") != NULL);
    CHECK(vmmem_map_from_config(&bad, reg, "compat:addr=0,size=4K,fill=zz", NULL) ==
          VMMEM_EBAD_NUMBER);
    CHECK(pc->maps == pc->unmaps);

    vmmem_map *m = NULL;
    CHECK(vmmem_map_from_config(&m, reg,
                                "compat:addr=0,size=64K,fill=0x5a;compat_moa:addr=64K,size=16K;"
                                "mmap:addr=1M,size=64K",
                                NULL) == 0);
    if (m == NULL)
        goto out_reg;
    CHECK(pc->host_abi == VMMEM_PROVIDER_ABI_VERSION);
    CHECK(pc->host_size >= sizeof(struct vmmem_host));
    CHECK(pc->page_size == (unsigned long)sysconf(_SC_PAGESIZE));
    CHECK(vmmem_map_num_regions(m) == 3);
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 0), &info);
    CHECK(info.start == 0 && info.size == 0x10000 && info.last == 0xffff);
    CHECK(strcmp(info.provider, "compat") == 0 && info.host != NULL);
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    CHECK(info.start == 0x10000 && info.host == NULL && strcmp(info.provider, "compat_moa") == 0);
    CHECK(vmmem_map_last_addr(m) == 0x10ffff);

    /* Bytes: the fill, a write across the plain/map-on-access seam. */
    unsigned char buf[16] = {0}, want[16];
    CHECK(vmmem_read_slice(m, 0xfff0, buf, 16) == 0);
    memset(want, 0x5a, 16);
    CHECK(memcmp(buf, want, 16) == 0);
    for (int i = 0; i < 16; i++)
        want[i] = (unsigned char)(0xa0 + i);
    CHECK(vmmem_write_slice(m, 0xfff8, want, 16) == 0);
    memset(buf, 0, sizeof buf);
    CHECK(vmmem_read(m, 0xfff8, buf, 16) == 16);
    CHECK(memcmp(buf, want, 16) == 0);
    CHECK(mc->begins > 0 && mc->begins == mc->ends);

    /* Errors: a hole, the end of memory, alignment. */
    CHECK(vmmem_read_slice(m, 0x14000, buf, 1) == VMMEM_EINVALID_ADDRESS);
    CHECK(vmmem_last_error()->addr == 0x14000);
    CHECK(vmmem_read_slice(m, UINT64_MAX, buf, 1) == VMMEM_EINVALID_ADDRESS);
    CHECK(vmmem_read_slice(m, 0x13ffc, buf, 8) < 0);
    uint64_t v = 0;
    CHECK(vmmem_load(m, 0x101, 4, &v, VMMEM_RELAXED) == VMMEM_EMISALIGNED);

    /* Objects and atomics at the last bytes, on every kind of region. */
    uint64_t o = 0x0123456789abcdefull, r = 0;
    CHECK(vmmem_write_obj(m, 0x10fff8, &o, 8) == 0);
    CHECK(vmmem_read_obj(m, 0x10fff8, &r, 8) == 0 && r == o);
    CHECK(vmmem_store(m, 0xffe0, 4, 0xfeedf00d, VMMEM_RELEASE) == 0);
    CHECK(vmmem_load(m, 0xffe0, 4, &v, VMMEM_ACQUIRE) == 0 && v == 0xfeedf00d);
    /* 0.1: no atomics on map-on-access memory (no stable host address). */
    CHECK(vmmem_store(m, 0x13ffc, 4, 1, VMMEM_RELEASE) == VMMEM_ENO_HOST_ADDRESS);
    CHECK(vmmem_last_error()->addr == 0x13ffc);

    /* The inline fast paths of 0.1's fast.h against this library's maps. */
    uint32_t w = 0;
    CHECK(vmmem_fast_write_obj(m, 0x100, &o, 8) == 0);
    r = 0;
    CHECK(vmmem_fast_read_obj(m, 0x100, &r, 8) == 0 && r == o);
    CHECK(vmmem_read_obj(m, 0x100, &r, 8) == 0 && r == o);
    CHECK(vmmem_fast_store_u32(m, 0x100008, 0x11223344, VMMEM_RELEASE) == 0);
    CHECK(vmmem_fast_load_u32(m, 0x100008, &w, VMMEM_ACQUIRE) == 0 && w == 0x11223344);
    CHECK(vmmem_fast_read_slice(m, 0xfff8, buf, 16) == 0 && memcmp(buf, want, 16) == 0);
    uint64_t off = 0;
    CHECK(vmmem_fast_find(m, 0x10ffff, &off) == vmmem_map_region(m, 2) && off == 0xffff);
    CHECK(vmmem_fast_find(m, 0x20000, &off) == NULL);

    /* Slices, and the iterator across the seam. */
    vmmem_slice s;
    CHECK(vmmem_get_slice(m, 0x200, 32, &s) == 0);
    CHECK(s.len == 32 && vmmem_slice_write(&s, 4, "compat", 6) == 0);
    vmmem_slice_release(&s);
    CHECK(vmmem_read_slice(m, 0x204, buf, 6) == 0 && memcmp(buf, "compat", 6) == 0);
    vmmem_slice_iter it;
    vmmem_slices_begin(&it, m, 0xff00, 0x200);
    size_t total = 0, pieces = 0;
    while (vmmem_slices_next(&it, &s) > 0) {
        total += s.len;
        pieces++;
        vmmem_slice_release(&s);
    }
    CHECK(total == 0x200 && pieces == 2);

    /* Dirty tracking and a harvest. */
    CHECK(vmmem_map_set_dirty_tracking(m, true) == 0);
    CHECK(vmmem_write_obj(m, 0x2010, &o, 8) == 0);
    CHECK(vmmem_map_is_dirty(m, 0x2000));
    /* The inline writers of the 0.1 fast.h mark too (the slot bits and the
     * bitmap head they read are ABI). */
    CHECK(!vmmem_map_is_dirty(m, 0x5000) && !vmmem_map_is_dirty(m, 0x6000));
    CHECK(vmmem_fast_write_obj(m, 0x5008, &o, 8) == 0);
    CHECK(vmmem_fast_store_u32(m, 0x6010, 7, VMMEM_RELEASE) == 0);
    CHECK(vmmem_map_is_dirty(m, 0x5000) && vmmem_map_is_dirty(m, 0x6000));
    vmmem_harvest *h = NULL;
    CHECK(vmmem_harvest_new(m, &h) == 0);
    if (h != NULL) {
        CHECK(vmmem_map_harvest(m, h) == 3);
        vmmem_harvest_iter hi = {0};
        uint64_t gpa = 0, len = 0;
        CHECK(vmmem_harvest_next_run(h, &hi, &gpa, &len) && gpa == 0x2000 && len == 4096);
        CHECK(vmmem_harvest_next_run(h, &hi, &gpa, &len) && gpa == 0x5000 && len == 8192);
        CHECK(!vmmem_harvest_next_run(h, &hi, &gpa, &len));
        vmmem_harvest_free(h);
    }

    /* A hot-plug space around the map. */
    vmmem_space *sp = NULL;
    CHECK(vmmem_space_new(&sp, m, NULL) == 0);
    if (sp != NULL) {
        struct vmmem_read_section sec;
        const vmmem_map *cur = vmmem_space_read_begin(sp, &sec);
        CHECK(cur != NULL && vmmem_read_obj(cur, 0x100, &r, 8) == 0 && r == o);
        vmmem_space_read_end(&sec);
        vmmem_map *snap = vmmem_space_snapshot(sp);
        CHECK(snap != NULL && vmmem_map_num_regions(snap) == 3);
        CHECK(vmmem_space_remove(sp, 0x100000, 0x10000) == 0);
        CHECK(vmmem_map_num_regions(snap) == 3); /* the snapshot keeps its layout */
        vmmem_map_unref(snap);
        snap = vmmem_space_snapshot(sp);
        CHECK(snap != NULL && vmmem_map_num_regions(snap) == 2);
        vmmem_map_unref(snap);
        vmmem_space_free(sp);
    }
    vmmem_map_unref(m);
    CHECK(pc->maps == pc->unmaps && mc->maps == mc->unmaps && mc->maps == 1);
    CHECK(pc->errors == 1 && mc->errors == 0 && mc->begins == mc->ends);
out_reg:
    vmmem_registry_free(reg);
out:
    printf("compat: %d checks, %d failed\n", checks, failures);
    printf("VMMEM-TEST-RESULT tests=%d failed=%d \n", checks, failures);
    return failures != 0;
}

/*
 * common.h: "Every function that returns an error code fills in [the error
 * detail]; successful calls leave it alone."  Table-driven: each exported
 * function is called once, successfully, right after a known error was
 * planted, and the whole detail (code, address, counts, column, message)
 * must be exactly the planted one afterwards.  The last test reads the
 * library's exported symbols (nm -D) and fails for any function no test
 * here calls and no entry of the exemption list names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

/* ---- planting and checking ---- */

static struct vmmem_error planted;

/* A failure with every field of the detail set to something recognisable. */
static void plant(void)
{
    static vmmem_map *hole_map;
    if (hole_map == NULL)
        hole_map = vt_map("mmap:addr=0,size=4K");
    uint8_t b[32];
    /* 16 bytes at 0xff8: 8 backed, then the hole: VMMEM_EPARTIAL with
     * addr 0x1000, expected 16, completed 0. */
    int rc = vmmem_read_slice(hole_map, 0xff8, b, 16);
    CU_ASSERT_EQUAL(rc, VMMEM_EPARTIAL);
    planted = *vmmem_last_error();
}

#define MAX_COVERED 256
static const char *covered[MAX_COVERED];
static size_t ncovered;

static void cover(const char *name)
{
    for (size_t i = 0; i < ncovered; i++)
        if (strcmp(covered[i], name) == 0)
            return;
    if (ncovered < MAX_COVERED)
        covered[ncovered++] = name;
}

static void check(int line, const char *name, bool ok)
{
    cover(name);
    if (!ok) {
        fprintf(stdout, "\n    line %d: %s did not succeed: %s\n", line, name,
                vmmem_last_message());
        CU_FAIL("call did not succeed");
        return;
    }
    const struct vmmem_error *e = vmmem_last_error();
    if (e->code != planted.code || e->addr != planted.addr || e->expected != planted.expected ||
        e->completed != planted.completed || e->column != planted.column ||
        strcmp(e->message, planted.message) != 0) {
        fprintf(stdout,
                "\n    line %d: %s succeeded but changed the error detail to %s (%d) addr 0x%llx "
                "expected %llu completed %llu column %d: \"%s\"\n",
                line, name, vmmem_err_name(e->code), e->code, (unsigned long long)e->addr,
                (unsigned long long)e->expected, (unsigned long long)e->completed, e->column,
                e->message);
        CU_FAIL("successful call changed vmmem_last_error()");
    }
}

/* Plant, call, check.  fn names the function under test (its coverage). */
#define CALL(fn, ok_expr)                                                                      \
    do {                                                                                       \
        plant();                                                                               \
        bool ok_ = (ok_expr);                                                                  \
        check(__LINE__, #fn, ok_);                                                             \
    } while (0)

/* ---- fixtures ---- */

#define CFG "mmap:addr=0,size=64K;mmap:addr=64K,size=64K"

static int memfd(size_t size)
{
    int fd = memfd_create("vt-errors", MFD_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(ftruncate(fd, (off_t)size) == 0);
    return fd;
}

/* ---- the calls ---- */

static void test_common_and_config(void)
{
    CALL(vmmem_strerror, vmmem_strerror(VMMEM_EPARTIAL) != NULL);
    CALL(vmmem_err_name, strcmp(vmmem_err_name(-EINVAL), "EINVAL") == 0);
    CALL(vmmem_last_error, vmmem_last_error() != NULL);
    CALL(vmmem_last_message, vmmem_last_message() != NULL);
    uint64_t v = 0;
    CALL(vmmem_parse_size, vmmem_parse_size("2M", &v) == 0 && v == 2u << 20);
    CALL(vmmem_version, strcmp(vmmem_version(), VMMEM_VERSION_STRING) == 0);
    CALL(vmmem_version_number, vmmem_version_number() > 0);
    CALL(vmmem_abi_version, vmmem_abi_version() == 0);
    CALL(vmmem_provider_abi_version, vmmem_provider_abi_version() == VMMEM_PROVIDER_ABI_VERSION);
    vmmem_config *c = NULL;
    CALL(vmmem_config_parse, vmmem_config_parse(CFG, &c) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CALL(vmmem_config_count, vmmem_config_count(c) == 2);
    CALL(vmmem_config_specs, vmmem_config_specs(c) != NULL);
    CALL(vmmem_config_validate, vmmem_config_validate(c, NULL) == 0);
    CALL(vmmem_config_free, (vmmem_config_free(c), true));
}

static void test_registry(void)
{
    CALL(vmmem_default_registry, vmmem_default_registry() != NULL);
    CALL(vmmem_plugin_dir, vmmem_plugin_dir() != NULL);
    vmmem_registry *r = NULL;
    CALL(vmmem_registry_new, vmmem_registry_new(&r) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    char *path = strdup(vt_test_plugin("good.so"));
    CALL(vmmem_registry_load, vmmem_registry_load(r, path) == 0);
    free(path);
    CALL(vmmem_registry_count, vmmem_registry_count(r) == 2);
    struct vmmem_provider_info info;
    CALL(vmmem_registry_get, vmmem_registry_get(r, 0, &info) == 0);
    const struct vmmem_provider *heap = NULL;
    CALL(vmmem_registry_find, (heap = vmmem_registry_find(r, "test-heap")) != NULL);
    CALL(vmmem_registry_failure_count, vmmem_registry_failure_count(r) == 0);
    /* a recorded failure to read back: a directory with one bad plugin */
    vmmem_registry *d = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&d), 0);
    const char *saved = getenv("VMMEM_PLUGIN_PATH");
    char *old = saved ? strdup(saved) : NULL;
    setenv("VMMEM_PLUGIN_PATH", getenv("VMMEM_TEST_PLUGIN_DIR"), 1);
    (void)vmmem_registry_discover(d); /* the test plugins: some fail on purpose */
    if (old != NULL)
        setenv("VMMEM_PLUGIN_PATH", old, 1);
    free(old);
    struct vmmem_load_failure lf;
    CU_ASSERT_TRUE(vmmem_registry_failure_count(d) > 0);
    CALL(vmmem_registry_failure, vmmem_registry_failure(d, 0, &lf) == 0);
    vmmem_registry_free(d);
    /* discovery with only this build's plugins succeeds */
    vmmem_registry *e = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&e), 0);
    CALL(vmmem_registry_discover, vmmem_registry_discover(e) >= 0);
    CALL(vmmem_registry_shadowed_count, vmmem_registry_shadowed_count(e) == 0);
    vmmem_registry_free(e);
    /* a shadowed copy: this build's mmap plugin again, later on the path */
    char dir[] = "/tmp/vt-errors-XXXXXX", cmd[512], pathvar[4096];
    const char *staged = getenv("VMMEM_PLUGIN_PATH");
    if (mkdtemp(dir) != NULL && staged != NULL) {
        snprintf(cmd, sizeof cmd, "cp '%s/vmmem-mmap.so' '%s/'", staged, dir);
        CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
        char *keep = strdup(staged);
        snprintf(pathvar, sizeof pathvar, "%s:%s", staged, dir);
        setenv("VMMEM_PLUGIN_PATH", pathvar, 1);
        vmmem_registry *sh = NULL;
        VT_ASSERT_RC(vmmem_registry_new(&sh), 0);
        CU_ASSERT_TRUE(vmmem_registry_discover(sh) > 0);
        setenv("VMMEM_PLUGIN_PATH", keep, 1);
        free(keep);
        struct vmmem_shadowed_plugin sp;
        CALL(vmmem_registry_shadowed, vmmem_registry_shadowed(sh, 0, &sp) == 0 &&
                                          strstr(sp.file, dir) == sp.file);
        vmmem_registry_free(sh);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    /* static registration: a copy of a full-size table */
    static struct vmmem_provider copy;
    if (heap != NULL) {
        copy = *heap;
        copy.name = "vt-errors-static";
        CALL(vmmem_registry_add, vmmem_registry_add(r, &copy) == 0);
    }
    vmmem_map *m = NULL;
    CALL(vmmem_map_from_config,
         vmmem_map_from_config(&m, r, "test-heap:addr=0,size=4K,tag=x", NULL) == 0);
    vmmem_map_unref(m); /* provider unmap, below too */
    CALL(vmmem_registry_free, (vmmem_registry_free(r), true));
    /* made again when next used (vt_map below) */
    CALL(vmmem_default_registry_release, (vmmem_default_registry_release(), true));
}

static void test_map_and_accesses(void)
{
    vmmem_map *m = NULL;
    struct vmmem_region_spec specs[2] = {{"mmap", 0, 0x10000, NULL, 0, NULL},
                                         {"mmap", 0x10000, 0x10000, NULL, 0, NULL}};
    CALL(vmmem_map_new, vmmem_map_new(&m, NULL, specs, 2, NULL) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CALL(vmmem_map_ref, vmmem_map_ref(m) == m);
    CALL(vmmem_map_unref, (vmmem_map_unref(m), true));
    CALL(vmmem_map_num_regions, vmmem_map_num_regions(m) == 2);
    const vmmem_region *r = NULL;
    CALL(vmmem_map_region, (r = vmmem_map_region(m, 1)) != NULL);
    uint64_t off = 0;
    CALL(vmmem_map_find, vmmem_map_find(m, 0x10010, &off) == r && off == 0x10);
    CALL(vmmem_map_last_addr, vmmem_map_last_addr(m) == 0x1ffff);
    CALL(vmmem_map_check_address, vmmem_map_check_address(m, 0x1ffff));
    CALL(vmmem_map_check_range, vmmem_map_check_range(m, 0xfff0, 0x20));
    vmmem_gaddr_t g = 0;
    CALL(vmmem_map_checked_offset, vmmem_map_checked_offset(m, 0x100, 0x10, &g) == 0);
    void *host = NULL;
    size_t hl = 0;
    CALL(vmmem_map_host_address, vmmem_map_host_address(m, 0x100, &host, &hl) == 0);
    struct vmmem_region_info info;
    CALL(vmmem_region_get_info, (vmmem_region_get_info(r, &info), info.start == 0x10000));
    CALL(vmmem_region_start, vmmem_region_start(r) == 0x10000);
    CALL(vmmem_region_size, vmmem_region_size(r) == 0x10000);

    uint8_t buf[64];
    memset(buf, 0x5a, sizeof buf);
    CALL(vmmem_write, vmmem_write(m, 0xfff0, buf, 32) == 32);
    CALL(vmmem_read, vmmem_read(m, 0xfff0, buf, 32) == 32);
    CALL(vmmem_write_slice, vmmem_write_slice(m, 0xfff0, buf, 32) == 0);
    CALL(vmmem_read_slice, vmmem_read_slice(m, 0xfff0, buf, 32) == 0);
    uint64_t x = 7, y = 0;
    CALL(vmmem_write_obj, vmmem_write_obj(m, 0x100, &x, 8) == 0);
    CALL(vmmem_read_obj, vmmem_read_obj(m, 0x100, &y, 8) == 0 && y == 7);
    CALL(vmmem_store, vmmem_store(m, 0x108, 8, 9, VMMEM_SEQ_CST) == 0);
    CALL(vmmem_load, vmmem_load(m, 0x108, 8, &y, VMMEM_ACQUIRE) == 0 && y == 9);

    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CALL(vmmem_write_to_fd, vmmem_write_to_fd(m, 0xfff0, p[1], 32) == 32);
    CALL(vmmem_read_from_fd, vmmem_read_from_fd(m, 0x200, p[0], 32) == 32);
    CALL(vmmem_write_all_to_fd, vmmem_write_all_to_fd(m, 0xfff0, p[1], 32) == 0);
    CALL(vmmem_read_exact_from_fd, vmmem_read_exact_from_fd(m, 0x200, p[0], 32) == 0);
    close(p[0]);
    close(p[1]);
    int f = memfd(4096);
    struct vmmem_gvec gv[2] = {{0xfff0, 16}, {0x10000, 16}};
    CALL(vmmem_pwritev_to_fd, vmmem_pwritev_to_fd(m, gv, 2, f, 64) == 32);
    CALL(vmmem_preadv_from_fd, vmmem_preadv_from_fd(m, gv, 2, f, 64) == 32);
    close(f);

    /* dirty tracking and harvesting */
    CALL(vmmem_map_set_dirty_tracking, vmmem_map_set_dirty_tracking(m, true) == 0);
    CALL(vmmem_map_dirty_tracking, vmmem_map_dirty_tracking(m));
    CALL(vmmem_map_dirty_page_size, vmmem_map_dirty_page_size(m) == 4096);
    CALL(vmmem_map_mark_dirty, vmmem_map_mark_dirty(m, 0x3000, 1) == 0);
    CALL(vmmem_map_is_dirty, vmmem_map_is_dirty(m, 0x3000));
    vmmem_harvest *h = NULL;
    CALL(vmmem_harvest_new, vmmem_harvest_new(m, &h) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CALL(vmmem_map_harvest, vmmem_map_harvest(m, h) >= 1);
    CALL(vmmem_harvest_regions, vmmem_harvest_regions(h) == 2);
    vmmem_gaddr_t start = 1;
    uint64_t pages = 0;
    CALL(vmmem_harvest_bitmap, vmmem_harvest_bitmap(h, 0, &start, &pages) != NULL);
    CALL(vmmem_harvest_page_size, vmmem_harvest_page_size(h) == 4096);
    vmmem_harvest_iter hit = {0, 0};
    vmmem_gaddr_t rg = 0;
    uint64_t rl = 0;
    CALL(vmmem_harvest_next_run, vmmem_harvest_next_run(h, &hit, &rg, &rl) && rg == 0x3000);
    CALL(vmmem_harvest_free, (vmmem_harvest_free(h), true));

    /* the vhost-user log */
    int lfd = memfd(4096);
    CALL(vmmem_map_attach_log, vmmem_map_attach_log(m, lfd, 0, 4096) == 0);
    CALL(vmmem_map_detach_log, vmmem_map_detach_log(m) == 0);
    close(lfd);
    CALL(vmmem_map_unref, (vmmem_map_unref(m), true));
}

static void test_bitmaps(void)
{
    vmmem_bitmap *b = NULL;
    CALL(vmmem_bitmap_new, vmmem_bitmap_new(&b, 0x10000, 4096) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CALL(vmmem_bitmap_mark, (vmmem_bitmap_mark(b, 0x2000, 1), true));
    CALL(vmmem_bitmap_test, vmmem_bitmap_test(b, 0x2000));
    CALL(vmmem_bitmap_pages, vmmem_bitmap_pages(b) == 16);
    uint64_t w = 0;
    CALL(vmmem_bitmap_collect, vmmem_bitmap_collect(b, &w, 1) == 1 && w == 4);
    CALL(vmmem_bitmap_free, (vmmem_bitmap_free(b), true));
}

static void test_slices(void)
{
    vmmem_map *m = vt_map(CFG);
    if (m == NULL)
        return;
    vmmem_slice s, t, u;
    CALL(vmmem_get_slice, vmmem_get_slice(m, 0x100, 64, &s) == 0);
    CALL(vmmem_get_slice_prot, vmmem_get_slice_prot(m, 0x200, 64, VMMEM_PROT_READ, &t) == 0);
    uint8_t buf[16] = {1, 2, 3};
    vmmem_slice local;
    CALL(vmmem_slice_from_buffer, (local = vmmem_slice_from_buffer(buf, sizeof buf)).len == 16);
    CALL(vmmem_slice_subslice, vmmem_slice_subslice(&s, 8, 16, &u) == 0);
    CALL(vmmem_slice_offset, vmmem_slice_offset(&s, 8, &u) == 0);
    vmmem_slice hd, tl;
    CALL(vmmem_slice_split_at, vmmem_slice_split_at(&s, 32, &hd, &tl) == 0);
    CALL(vmmem_slice_copy_from, vmmem_slice_copy_from(&s, buf, 16) == 16);
    CALL(vmmem_slice_copy_to, vmmem_slice_copy_to(&s, buf, 16) == 16);
    CALL(vmmem_slice_copy_to_slice, vmmem_slice_copy_to_slice(&t, &s) == 64);
    CALL(vmmem_slice_write, vmmem_slice_write(&s, 0, buf, 8) == 0);
    CALL(vmmem_slice_read, vmmem_slice_read(&s, 0, buf, 8) == 0);
    uint64_t v = 0;
    CALL(vmmem_slice_store, vmmem_slice_store(&s, 8, 4, 0x1234, VMMEM_RELEASE) == 0);
    CALL(vmmem_slice_load, vmmem_slice_load(&s, 8, 4, &v, VMMEM_ACQUIRE) == 0 && v == 0x1234);
    CALL(vmmem_slice_release, (vmmem_slice_release(&t), true));
    vmmem_slice_release(&s);
    vmmem_slice_iter it;
    vmmem_slice a;
    CALL(vmmem_slices_begin, (vmmem_slices_begin(&it, m, 0xff00, 0x200), true));
    CALL(vmmem_slices_next, vmmem_slices_next(&it, &a) == 1 && a.len == 0x100);
    vmmem_slice_release(&a);
    CALL(vmmem_slices_next, vmmem_slices_next(&it, &a) == 1 && a.len == 0x100);
    vmmem_slice_release(&a);
    CALL(vmmem_slices_next, vmmem_slices_next(&it, &a) == 0);
    CALL(vmmem_slices_begin_prot,
         (vmmem_slices_begin_prot(&it, m, 0xff00, 0x10, VMMEM_PROT_READ), true));
    CALL(vmmem_slices_next, vmmem_slices_next(&it, &a) == 1 && a.prot == VMMEM_PROT_READ);
    vmmem_slice_release(&a);
    vmmem_map_unref(m);
}

static void test_spaces(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=64K");
    if (m == NULL)
        return;
    vmmem_space *s = NULL;
    CALL(vmmem_space_new, vmmem_space_new(&s, m, NULL) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    vmmem_map *snap = NULL;
    CALL(vmmem_space_snapshot, (snap = vmmem_space_snapshot(s)) == m);
    vmmem_map_unref(snap);
    struct vmmem_read_section sec;
    CALL(vmmem_space_read_begin, vmmem_space_read_begin(s, &sec) == m);
    CALL(vmmem_space_read_end, (vmmem_space_read_end(&sec), true));
    struct vmmem_region_spec add = {"mmap", 0x100000, 0x10000, NULL, 0, NULL};
    CALL(vmmem_space_add, vmmem_space_add(s, NULL, &add) == 0);
    struct vmmem_region_spec rep = {"mmap", 0x200000, 0x10000, NULL, 0, NULL};
    CALL(vmmem_space_replace, vmmem_space_replace(s, 0x100000, 0x10000, NULL, &rep) == 0);
    CALL(vmmem_space_rebase, vmmem_space_rebase(s, 0x200000, 0x10000, 0x300000) == 0);
    CALL(vmmem_space_remove, vmmem_space_remove(s, 0x300000, 0x10000) == 0);
    CALL(vmmem_space_publish, vmmem_space_publish(s, m) == 0);
    CALL(vmmem_space_add_config, vmmem_space_add_config(s, NULL, "mmap:addr=1M,size=64K") == 0);
    CALL(vmmem_space_replace_config,
         vmmem_space_replace_config(s, 0x100000, 0x10000, NULL, "mmap:addr=2M,size=64K") == 0);
    CALL(vmmem_space_generation, vmmem_space_generation(s) == 7);
    CALL(vmmem_space_set_dirty_tracking, vmmem_space_set_dirty_tracking(s, true) == 0);
    CALL(vmmem_space_dirty_tracking, vmmem_space_dirty_tracking(s));
    vmmem_harvest *sh = NULL;
    vmmem_map *hm = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &sh), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sh);
    CALL(vmmem_space_harvest, vmmem_space_harvest(s, sh, &hm) >= 0 && hm != NULL);
    vmmem_map_unref(hm);
    /* a tracked region written, then removed: the next harvest reports it,
     * at its old place */
    vmmem_map *cur = vmmem_space_snapshot(s);
    uint64_t one = 1;
    VT_ASSERT_RC(vmmem_write_obj(cur, 0x200008, &one, 8), 0);
    vmmem_map_unref(cur);
    CALL(vmmem_space_remove, vmmem_space_remove(s, 0x200000, 0x10000) == 0);
    hm = NULL;
    VT_ASSERT_RC(vmmem_space_harvest(s, sh, &hm) >= 0, 1);
    vmmem_map_unref(hm);
    vmmem_harvest_iter rit = {0};
    uint64_t rgpa = 0, rlen = 0;
    CALL(vmmem_harvest_next_removed_run,
         vmmem_harvest_next_removed_run(sh, &rit, &rgpa, &rlen) && rgpa == 0x200000);
    vmmem_harvest_free(sh);
    int lfd = memfd(4096);
    CALL(vmmem_space_attach_log, vmmem_space_attach_log(s, lfd, 0, 4096) == 0);
    CALL(vmmem_space_detach_log, vmmem_space_detach_log(s) == 0);
    close(lfd);
    CALL(vmmem_space_free, (vmmem_space_free(s), true));
    vmmem_map_unref(m);
}

static void test_vhost(void)
{
    int fd = memfd(0x10000);
    vmmem_vhost *v = NULL;
    CALL(vmmem_vhost_new, vmmem_vhost_new(&v, NULL, 0, NULL) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    struct vmmem_vhost_region r = {0, 0x8000, 0x7f0000000000ull, 0, fd, 0, 0};
    struct vmmem_vhost_region r2 = {0x100000, 0x8000, 0x7f0000100000ull, 0x8000, fd, 0, 0};
    CALL(vmmem_vhost_set_mem_table, vmmem_vhost_set_mem_table(v, &r, 1) == 0);
    CALL(vmmem_vhost_add_region, vmmem_vhost_add_region(v, &r2) == 0);
    CALL(vmmem_vhost_num_regions, vmmem_vhost_num_regions(v) == 2);
    vmmem_gaddr_t gpa = 0;
    uint64_t len = 0x100;
    CALL(vmmem_vhost_uaddr_to_gpa,
         vmmem_vhost_uaddr_to_gpa(v, 0x7f0000100010ull, &gpa, &len) == 0 && gpa == 0x100010);
    CALL(vmmem_vhost_space, vmmem_vhost_space(v) != NULL);
    vmmem_map *snap = NULL;
    CALL(vmmem_vhost_snapshot, (snap = vmmem_vhost_snapshot(v)) != NULL);
    vmmem_map_unref(snap);
    int lfd = memfd(4096);
    CALL(vmmem_vhost_set_log_base, vmmem_vhost_set_log_base(v, lfd, 0, 4096) == 0);
    CALL(vmmem_vhost_clear_log, vmmem_vhost_clear_log(v) == 0);
    close(lfd);
    CALL(vmmem_vhost_remove_region, vmmem_vhost_remove_region(v, &r2) == 0);
    CALL(vmmem_vhost_free, (vmmem_vhost_free(v), true));
    close(fd);
}

static int resolve_none(void *opaque, vmmem_iotlb *t, uint64_t iova, uint64_t len, int perm)
{
    (void)opaque, (void)t, (void)iova, (void)len, (void)perm;
    return -ENOENT;
}

static void test_iommu(void)
{
    vmmem_map *m = vt_map(CFG);
    if (m == NULL)
        return;
    vmmem_iotlb *t = NULL;
    CALL(vmmem_iotlb_new, vmmem_iotlb_new(&t) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CALL(vmmem_iotlb_set, vmmem_iotlb_set(t, 0x100000, 0xf000, 0x2000, VMMEM_PROT_RW) == 0);
    CALL(vmmem_iotlb_count, vmmem_iotlb_count(t) == 1);
    struct vmmem_iotlb_result res;
    memset(&res, 0, sizeof res);
    CALL(vmmem_iotlb_lookup, vmmem_iotlb_lookup(t, 0x100000, 0x10, VMMEM_PROT_READ, &res) == 0);
    CALL(vmmem_iotlb_result_free, (vmmem_iotlb_result_free(&res), true));
    vmmem_iommu *im = NULL;
    CALL(vmmem_iommu_new, vmmem_iommu_new(&im, m, t, resolve_none, NULL) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(im);
    CALL(vmmem_iommu_set_enabled, (vmmem_iommu_set_enabled(im, true), true));
    CALL(vmmem_iommu_enabled, vmmem_iommu_enabled(im));
    CALL(vmmem_iommu_set_phys, vmmem_iommu_set_phys(im, m) == 0);
    vmmem_bitmap *log = NULL;
    VT_ASSERT_RC(vmmem_bitmap_new(&log, 0x200000, 4096), 0);
    CALL(vmmem_iommu_set_dirty_log, (vmmem_iommu_set_dirty_log(im, log), true));
    uint8_t buf[32];
    memset(buf, 0x11, sizeof buf);
    /* across the seam of the two regions (iova 0x100ff0 = gpa 0xfff0) */
    CALL(vmmem_iommu_write, vmmem_iommu_write(im, 0x100ff0, buf, 32) == 32);
    CALL(vmmem_iommu_read, vmmem_iommu_read(im, 0x100ff0, buf, 32) == 32);
    CALL(vmmem_iommu_write_slice, vmmem_iommu_write_slice(im, 0x100ff0, buf, 32) == 0);
    CALL(vmmem_iommu_read_slice, vmmem_iommu_read_slice(im, 0x100ff0, buf, 32) == 0);
    uint64_t v = 3;
    CALL(vmmem_iommu_write_obj, vmmem_iommu_write_obj(im, 0x100100, &v, 8) == 0);
    CALL(vmmem_iommu_read_obj, vmmem_iommu_read_obj(im, 0x100100, &v, 8) == 0 && v == 3);
    CALL(vmmem_iommu_store, vmmem_iommu_store(im, 0x100108, 8, 5, VMMEM_RELAXED) == 0);
    CALL(vmmem_iommu_load, vmmem_iommu_load(im, 0x100108, 8, &v, VMMEM_RELAXED) == 0 && v == 5);
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CALL(vmmem_iommu_write_to_fd, vmmem_iommu_write_to_fd(im, 0x100ff0, p[1], 32) == 32);
    CALL(vmmem_iommu_read_from_fd, vmmem_iommu_read_from_fd(im, 0x100200, p[0], 32) == 32);
    close(p[0]);
    close(p[1]);
    CALL(vmmem_iommu_check_range, vmmem_iommu_check_range(im, 0x100000, 0x2000, VMMEM_PROT_RW));
    vmmem_iommu_iter it;
    vmmem_slice s;
    CALL(vmmem_iommu_slices_begin,
         (vmmem_iommu_slices_begin(&it, im, 0x100ff0, 0x20, VMMEM_PROT_READ), true));
    CALL(vmmem_iommu_slices_next, vmmem_iommu_slices_next(&it, &s) == 1);
    vmmem_slice_release(&s);
    CALL(vmmem_iommu_slices_end, (vmmem_iommu_slices_end(&it), true));
    CALL(vmmem_iotlb_invalidate, vmmem_iotlb_invalidate(t, 0x101000, 0x1000) == 0);
    CALL(vmmem_iotlb_invalidate_all, (vmmem_iotlb_invalidate_all(t), true));
    CALL(vmmem_iommu_free, (vmmem_iommu_free(im), true));
    CALL(vmmem_iotlb_free, (vmmem_iotlb_free(t), true));
    vmmem_bitmap_free(log);
    vmmem_map_unref(m);
}

/* ---- coverage ---- */

/* Exported functions that no test above calls, each with the reason. */
static const struct {
    const char *name;
    const char *why;
} exempt[] = {
    {NULL, NULL},
};

static void test_every_export_covered(void)
{
    const char *root = getenv("VMMEM_BUILD_ROOT");
    const char *nm = getenv("VMMEM_TEST_NM");
    if (root == NULL) {
        fprintf(stdout, "\n    VMMEM_BUILD_ROOT is not set: run through scons test\n");
        CU_FAIL("no build root");
        return;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s -D --defined-only '%s/core/libvmmem.so' 2>/dev/null",
             nm && *nm ? nm : "nm", root);
    FILE *f = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[512];
    int exports = 0, missing = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char addr[64], type[8], name[256];
        if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3 ||
            strncmp(name, "vmmem_", 6) != 0 || (type[0] != 'T' && type[0] != 'W'))
            continue;
        name[strcspn(name, "@")] = '\0'; /* nm shows the version: vmmem_x@@VMMEM_0.1 */
        exports++;
        bool found = false;
        for (size_t i = 0; i < ncovered && !found; i++)
            found = strcmp(covered[i], name) == 0;
        for (size_t i = 0; exempt[i].name != NULL && !found; i++)
            found = strcmp(exempt[i].name, name) == 0;
        if (!found) {
            fprintf(stdout, "\n    %s is exported but not called by test_errors.c", name);
            missing++;
        }
    }
    int st = pclose(f);
    if (exports == 0) {
        fprintf(stdout, "\n    '%s' listed no exports (status %d)\n", cmd, st);
        CU_FAIL("no exports listed");
    }
    fprintf(stdout, "\n    %d exported functions, %zu called here, %d missing\n", exports,
            ncovered, missing);
    CU_ASSERT_EQUAL(missing, 0);
}

static const struct vt_test error_tests[] = {
    {"errors and config", test_common_and_config},
    {"registry", test_registry},
    {"maps, accesses, dirty tracking, harvest, log", test_map_and_accesses},
    {"bitmaps", test_bitmaps},
    {"slices and the iterator", test_slices},
    {"spaces", test_spaces},
    {"vhost-user tables", test_vhost},
    {"IOTLB and IOMMU", test_iommu},
    {"every exported function is called above", test_every_export_covered},
    {NULL, NULL},
};

static const struct vt_suite error_suite = {"successful calls leave vmmem_last_error alone",
                                            NULL, NULL, error_tests};

int main(void)
{
    const struct vt_suite *const suites[] = {&error_suite, NULL};
    return vt_main(suites);
}

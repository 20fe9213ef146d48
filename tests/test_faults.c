/*
 * Faults and leaks (issue 9): what happens when mapping fails midway, when
 * mmap itself fails, when a backing file shrinks under a mapping, and
 * whether build/destroy cycles give back every fd and every mapping.
 *
 * Leak checks count /proc/self/maps lines and /proc/self/fd entries around
 * the operation, after one warm-up round (the first round loads plugins and
 * grows the allocator's arenas, which is not a leak).  Not counted: anonymous
 * executable mappings (valgrind's own arenas) and, in an AddressSanitizer
 * build, its allocator's region (see counted()).
 *
 * Environment: VMMEM_FAULTS_CYCLES overrides the 1,000 build/destroy cycles
 * (.ci/run's valgrind pass uses fewer).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ---- counting ---- */

/*
 * AddressSanitizer's allocator grows its own region (x86-64: 0x600000000000
 * to 0x640000000000) as it meets new size classes and while freed memory
 * sits in its quarantine: lines there are the sanitizer's, not ours, and
 * are not counted in a sanitizer build.
 */
#if defined(__SANITIZE_ADDRESS__)
#define VT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VT_ASAN 1
#endif
#endif

static bool counted(const char *line)
{
    /* Anonymous executable mappings are not counted either: the library
     * never makes one, and valgrind's own arenas (rwxp) show up as such. */
    char perms[8] = "", path[8] = "";
    if (sscanf(line, "%*s %7s %*s %*s %*s %7s", perms, path) >= 1 && perms[2] == 'x' &&
        path[0] == '\0')
        return false;
#if defined(VT_ASAN) && defined(__x86_64__)
    unsigned long long start = strtoull(line, NULL, 16);
    return start < 0x600000000000ull || start >= 0x640000000000ull;
#elif defined(__SANITIZE_THREAD__)
    /* scons tsan=1: TSan's shadow, meta and allocator mappings come and go
     * as anonymous memory, so only file mappings are compared there (the
     * release, ASan and valgrind runs compare every mapping). */
    return path[0] != '\0';
#else
    return true;
#endif
}

/* The text of /proc/self/maps (malloc'ed) and the number of counted lines. */
static char *read_maps(long *lines)
{
    FILE *f = fopen("/proc/self/maps", "r");
    *lines = -1;
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, len = 0, line = 0;
    char *buf = malloc(cap);
    long n = 0;
    int c;
    while (buf != NULL && (c = fgetc(f)) != EOF) {
        if (len + 2 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        buf[len++] = (char)c;
        if (c == '\n') {
            buf[len] = '\0';
            n += counted(buf + line);
            line = len;
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    *lines = n;
    return buf;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

struct counts {
    long maps, fds;
};

static char *g_maps_before; /* the text of the last snap() */

static struct counts snap(void)
{
    struct counts c;
    free(g_maps_before);
    g_maps_before = read_maps(&c.maps);
    c.fds = count_fds();
    return c;
}

/* True when the n-byte line l is one of the lines of text. */
static bool has_line(const char *text, const char *l, size_t n)
{
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *e = strchr(p, '\n');
        size_t pn = e ? (size_t)(e - p) + 1 : strlen(p);
        if (pn == n && memcmp(p, l, n) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* Print the lines of now that were not in before (what leaked, if a leak). */
static void print_new_lines(const char *before, const char *now)
{
    for (const char *l = now; l != NULL && *l != '\0';) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) + 1 : strlen(l);
        if (counted(l) && !has_line(before, l, n))
            fprintf(stdout, "    + %.*s", (int)n, l);
        l = e ? e + 1 : NULL;
    }
}

static void check_same(struct counts before, const char *what)
{
    struct counts after;
    char *now = read_maps(&after.maps);
    after.fds = count_fds();
    if (after.maps != before.maps || after.fds != before.fds) {
        fprintf(stdout, "\n    %s: maps %ld -> %ld, fds %ld -> %ld; new mappings:\n", what,
                before.maps, after.maps, before.fds, after.fds);
        print_new_lines(g_maps_before, now);
    }
    free(now);
    CU_ASSERT_EQUAL(after.maps, before.maps);
    CU_ASSERT_EQUAL(after.fds, before.fds);
}

#define ASSERT_SAME_COUNTS(before, what) check_same((before), (what))

/* ---- a private registry: staged mmap + file plugins and test-failmap ---- */

#define VT_COUNTS_MAGIC 0x76746370u /* tests/plugins/failmap.c */

struct vt_counts {
    uint32_t magic;
    long map_calls;
    long maps;
    long unmaps;
    long fail_at;
    long begins;
    long ends;
    long errors;
};

static vmmem_registry *g_reg;
static struct vt_counts *g_fail;

/* Load name from the first VMMEM_PLUGIN_PATH directory that has it. */
static int load_staged(vmmem_registry *reg, const char *name)
{
    const char *path = getenv("VMMEM_PLUGIN_PATH");
    if (path == NULL)
        return -ENOENT;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char file[4200];
        snprintf(file, sizeof file, "%s/%s", dir, name);
        if (access(file, R_OK) == 0)
            return vmmem_registry_load(reg, file);
    }
    return -ENOENT;
}

static int suite_init(void)
{
    if (vmmem_registry_new(&g_reg) < 0)
        return -1;
    if (load_staged(g_reg, "vmmem-mmap.so") < 0 || load_staged(g_reg, "vmmem-file.so") < 0) {
        fprintf(stdout, "cannot load the staged plugins: %s\n", vmmem_last_message());
        return -1;
    }
    if (vmmem_registry_load(g_reg, vt_test_plugin("failmap.so")) < 0) {
        fprintf(stdout, "cannot load failmap.so: %s\n", vmmem_last_message());
        return -1;
    }
    const struct vmmem_provider *p = vmmem_registry_find(g_reg, "test-failmap");
    g_fail = p ? p->user : NULL;
    if (g_fail == NULL || g_fail->magic != VT_COUNTS_MAGIC)
        return -1;
    return 0;
}

static int suite_cleanup(void)
{
    vmmem_registry_free(g_reg);
    g_reg = NULL;
    free(g_maps_before);
    g_maps_before = NULL;
    return 0;
}

static void fail_reset(long fail_at)
{
    __atomic_store_n(&g_fail->map_calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_fail->maps, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_fail->unmaps, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_fail->errors, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_fail->fail_at, fail_at, __ATOMIC_SEQ_CST);
}

/* ---- a provider failing midway ---- */

/* mmap and file (memfd: an fd each) regions before, between and after five
 * test-failmap regions; the k-th failmap call fails. */
static const char *k_mixed =
    "mmap:addr=0,size=256K;"
    "file:addr=0x100000,size=64K,memfd=faults-a;"
    "test-failmap:addr=0x200000,size=4K;"
    "mmap:addr=0x300000,size=64K,shared;"
    "test-failmap:addr=0x400000,size=4K;"
    "file:addr=0x500000,size=8K,memfd=faults-b,seal;"
    "test-failmap:addr=0x600000,size=4K;"
    "test-failmap:addr=0x601000,size=4K;"
    "mmap:addr=0x700000,size=1M,populate;"
    "test-failmap:addr=0x800000,size=4K";

static void test_failmap_midway_config(void)
{
    /* Warm-up: a full successful build and destroy. */
    fail_reset(0);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, k_mixed, NULL), 0);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(g_fail->maps, g_fail->unmaps);
    /* Warm-up of every failing variant too: the error paths allocate other
     * sizes (messages), and a sanitizer's allocator maps its size classes
     * on first use. */
    for (long k = 1; k <= 5; k++) {
        fail_reset(k);
        CU_ASSERT_EQUAL(vmmem_map_from_config(&m, g_reg, k_mixed, NULL), -EIO);
    }

    for (long k = 1; k <= 5; k++) {
        struct counts before = snap();
        fail_reset(k);
        m = (vmmem_map *)&before; /* must stay untouched */
        int rc = vmmem_map_from_config(&m, g_reg, k_mixed, NULL);
        VT_ASSERT_RC(rc, -EIO);
        CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)&before);
        CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "injected failure"));
        CU_ASSERT_EQUAL(g_fail->map_calls, k);
        CU_ASSERT_EQUAL(g_fail->maps, k - 1);
        CU_ASSERT_EQUAL(g_fail->unmaps, k - 1);
        CU_ASSERT_EQUAL(g_fail->errors, 0);
        ASSERT_SAME_COUNTS(before, "failmap midway (config)");
    }
}

static void test_failmap_midway_specs(void)
{
    struct vmmem_option memfd = {"memfd", "faults-specs"};
    struct vmmem_region_spec specs[4] = {
        {"test-failmap", 0x10000, 0x1000, NULL, 0, NULL},
        {"file", 0x0, 0x10000, &memfd, 1, NULL},
        {"mmap", 0x100000, 0x100000, NULL, 0, NULL},
        {"test-failmap", 0x20000, 0x1000, NULL, 0, NULL},
    };
    struct vmmem_map_options o = {.struct_size = sizeof o, .flags = VMMEM_MAP_DIRTY_TRACKING};
    fail_reset(0);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, g_reg, specs, 4, &o), 0);
    vmmem_map_unref(m);
    fail_reset(2);
    VT_ASSERT_RC(vmmem_map_new(&m, g_reg, specs, 4, &o), -EIO); /* warm-up */
    struct counts before = snap();
    fail_reset(2); /* the last spec: everything else is mapped by then */
    m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, g_reg, specs, 4, &o), -EIO);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_EQUAL(g_fail->maps, 1);
    CU_ASSERT_EQUAL(g_fail->unmaps, 1);
    ASSERT_SAME_COUNTS(before, "failmap midway (specs)");
}

/* Hot-plug: a failing add leaves the published map as it was. */
static void test_failmap_space_add(void)
{
    vmmem_map *m = NULL;
    fail_reset(0);
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, "mmap:addr=0,size=64K", NULL), 0);
    vmmem_space *s = NULL;
    VT_ASSERT_RC(vmmem_space_new(&s, m, NULL), 0);
    vmmem_map_unref(m);
    struct vmmem_region_spec spec = {"test-failmap", 0x100000, 0x1000, NULL, 0, NULL};
    VT_ASSERT_RC(vmmem_space_add(s, g_reg, &spec), 0); /* warm-up */
    VT_ASSERT_RC(vmmem_space_remove(s, 0x100000, 0x1000), 0);
    fail_reset(1);
    VT_ASSERT_RC(vmmem_space_add(s, g_reg, &spec), -EIO); /* warm-up */
    struct counts before = snap();
    fail_reset(1);
    VT_ASSERT_RC(vmmem_space_add(s, g_reg, &spec), -EIO);
    vmmem_map *cur = vmmem_space_snapshot(s);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(cur), 1);
    CU_ASSERT_FALSE(vmmem_map_check_address(cur, 0x100000));
    vmmem_map_unref(cur);
    CU_ASSERT_EQUAL(g_fail->maps, g_fail->unmaps);
    ASSERT_SAME_COUNTS(before, "failing space_add");
    vmmem_space_free(s);
    fail_reset(0);
}

/* ---- mmap failing: a tiny RLIMIT_AS in a child ---- */

static long vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Sizes too large for the limit below.  A 32-bit host cannot map 16G at
 * all: that is VMMEM_EOVERFLOW (checked in the child), so it asks for
 * sizes it can express but the limit refuses. */
#if SIZE_MAX > UINT32_MAX
#define BIG "16G"
#define BIGGER "8G"
#else
#define BIG "1536M"
#define BIGGER "1G"
#endif

/* Child exit codes: 0 all as expected; 10+n the n-th check failed;
 * RLIMIT_NOT_ENFORCED: setrlimit succeeded but the limit is not in force. */
#define RLIMIT_NOT_ENFORCED 30
static int rlimit_child(void)
{
    long kib = vm_size_kib();
    if (kib <= 0)
        return 10;
    /* Room for the allocator (and a sanitizer's) small needs, far less
     * than the regions asked for below. */
    struct rlimit rl = {(rlim_t)(kib + 128 * 1024) * 1024, (rlim_t)(kib + 128 * 1024) * 1024};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 11;
    /* qemu-user accepts RLIMIT_AS and ignores it (it would limit the
     * emulator): getrlimit still says unlimited there. */
    struct rlimit now;
    if (getrlimit(RLIMIT_AS, &now) != 0 || now.rlim_cur != rl.rlim_cur)
        return RLIMIT_NOT_ENFORCED;
    vmmem_map *m = NULL;
    /* One region too large for the limit. */
    int rc;
#if SIZE_MAX <= UINT32_MAX
    rc = vmmem_map_from_config(&m, g_reg, "mmap:addr=0,size=16G", NULL);
    if (rc != VMMEM_EOVERFLOW || m != NULL)
        return 19;
#endif
    rc = vmmem_map_from_config(&m, g_reg, "mmap:addr=0,size=" BIG, NULL);
    if (rc != -ENOMEM || m != NULL)
        return 12;
    if (strstr(vmmem_last_message(), "mmap") == NULL)
        return 13;
    /* The second of two regions fails: the first is unmapped again (after
     * one warm-up call, so that the allocator has what it needs). */
    rc = vmmem_map_from_config(&m, g_reg,
                               "mmap:addr=0,size=1M;file:addr=1G,size=" BIGGER ",memfd=big", NULL);
    if (rc >= 0)
        return 14;
    long before = vm_size_kib();
    rc = vmmem_map_from_config(&m, g_reg, "mmap:addr=0,size=1M;mmap:addr=1G,size=" BIG, NULL);
    if (rc != -ENOMEM)
        return 15;
    if (vm_size_kib() != before)
        return 16;
    /* Small maps still work under the limit. */
    rc = vmmem_map_from_config(&m, g_reg, "mmap:addr=0,size=1M", NULL);
    if (rc != 0)
        return 17;
    uint8_t b = 1;
    if (vmmem_write(m, 0x1000, &b, 1) != 1)
        return 18;
    vmmem_map_unref(m);
    return 0;
}

static void test_rlimit_as(void)
{
    fflush(stdout);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(rlimit_child());
    int st = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == RLIMIT_NOT_ENFORCED && vt_emulator() != NULL) {
        fprintf(stdout, "\n    SKIPPED under '%s': RLIMIT_AS is accepted but not enforced there\n",
                vt_emulator());
        return;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stdout, "\n    RLIMIT_AS child: %s %d\n",
                WIFEXITED(st) ? "exit" : "killed by signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    CU_ASSERT_TRUE(WIFEXITED(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
}

/* ---- build/destroy cycles ---- */

static int cycles(void)
{
    const char *e = getenv("VMMEM_FAULTS_CYCLES");
    int n = e ? atoi(e) : 0;
    return n > 0 ? n : 1000;
}

static char g_tmpfile[64];

/* One cycle: build, write, harvest, read from an fd, destroy; plus a
 * config that fails in the file provider and one that fails to parse. */
static void one_cycle(const char *cfg)
{
    struct vmmem_map_options o = {.struct_size = sizeof o,
                                  .flags = VMMEM_MAP_DIRTY_TRACKING,
                                  .dirty_page_size = 4096};
    vmmem_map *m = NULL;
    int rc = vmmem_map_from_config(&m, g_reg, cfg, &o);
    if (rc != 0) {
        VT_ASSERT_RC(rc, 0);
        return;
    }
    static const uint8_t data[16] = "dirty page data";
    CU_ASSERT_EQUAL(vmmem_write(m, 0x1ff8, data, sizeof data), 16); /* crosses a page */
    CU_ASSERT_EQUAL(vmmem_write_obj(m, 0x100000, data, 8), 0);
    CU_ASSERT_EQUAL(vmmem_store(m, 0x201000, 8, 42, VMMEM_SEQ_CST), 0);
    int p[2];
    if (pipe(p) == 0) {
        CU_ASSERT_EQUAL(write(p[1], data, sizeof data), (ssize_t)sizeof data);
        close(p[1]);
        CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0x300000, p[0], 64), 16);
        close(p[0]);
    }
    vmmem_slice s;
    if (vmmem_get_slice(m, 0x100800, 64, &s) == 0) {
        CU_ASSERT_EQUAL(vmmem_slice_write(&s, 0, data, 16), 0);
        vmmem_slice_release(&s);
    }
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    if (h != NULL) {
        /* 0x1000, 0x2000, 0x100000, 0x201000, 0x300000 */
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 5);
        vmmem_harvest_iter it = {0, 0};
        uint64_t gpa, len;
        int runs = 0;
        while (vmmem_harvest_next_run(h, &it, &gpa, &len))
            runs++;
        CU_ASSERT_EQUAL(runs, 4);
        CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
        vmmem_harvest_free(h);
    }
    vmmem_map_unref(m);

    /* Error paths must not leak either. */
    m = NULL;
    char bad[256];
    snprintf(bad, sizeof bad, "mmap:addr=0,size=64K;file:addr=0x100000,size=1M,path=%s",
             g_tmpfile); /* the file is 64K: -ERANGE after the mmap region was mapped */
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, bad, &o), -ERANGE);
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, "mmap:addr=0,size=4K,bogus", &o),
                 VMMEM_EUNKNOWN_KEY);
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, "mmap:addr=0,size=4K;mmap:addr=0x800,size=4K",
                                       &o),
                 VMMEM_EOVERLAP);
    CU_ASSERT_PTR_NULL(m);
}

static void test_cycles(void)
{
    snprintf(g_tmpfile, sizeof g_tmpfile, "/tmp/vmmem-faults-%ld", (long)getpid());
    int fd = open(g_tmpfile, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 64 * 1024), 0);
    close(fd);
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "mmap:addr=0,size=64K;mmap:addr=0x10000,size=64K,shared;"
             "file:addr=0x100000,size=64K,memfd=cycle;"
             "file:addr=0x200000,size=64K,path=%s;"
             "file:addr=0x300000,size=8K,memfd=sealed,seal",
             g_tmpfile);
    for (int i = 0; i < 3; i++) /* warm-up */
        one_cycle(cfg);
    struct counts before = snap();
    int n = cycles();
    unsigned failures = CU_get_number_of_failures();
    for (int i = 0; i < n && CU_get_number_of_failures() == failures; i++)
        one_cycle(cfg);
#ifdef VT_ASAN
    /* The sanitizer's runtime (stack depot, internal allocator) maps 64 KiB
     * chunks of its own now and then, outside its allocator region.  A leak
     * grows with every cycle: after the first round, require that another
     * n cycles add nothing. */
    before = snap();
    for (int i = 0; i < n && CU_get_number_of_failures() == failures; i++)
        one_cycle(cfg);
#endif
    ASSERT_SAME_COUNTS(before, "build/destroy cycles");
    unlink(g_tmpfile);
}

/* vhost-user tables built and replaced: every region fd is dup()ed by the
 * provider and must be closed again. */
static void test_vhost_cycles(void)
{
    int fd = memfd_create("faults-vhost", MFD_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 64 * 1024), 0);
    struct vmmem_vhost_region t[2] = {
        {.guest_phys_addr = 0, .memory_size = 32 * 1024, .userspace_addr = 0x7f0000000000,
         .mmap_offset = 0, .fd = fd},
        {.guest_phys_addr = 0x100000, .memory_size = 32 * 1024,
         .userspace_addr = 0x7f0000100000, .mmap_offset = 32 * 1024, .fd = fd},
    };
    struct counts before = {0, 0};
    int n = cycles() / 10 + 3;
    for (int i = 0; i < n; i++) {
        if (i == 3)
            before = snap();
        vmmem_vhost *v = NULL;
        VT_ASSERT_RC(vmmem_vhost_new(&v, g_reg, 0, NULL), 0);
        if (v == NULL)
            break;
        VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 2), 0);
        VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t + 1, 1), 0);
        struct vmmem_vhost_region bad = t[0];
        bad.memory_size = 128 * 1024; /* past the end of the memfd */
        VT_ASSERT_RC(vmmem_vhost_add_region(v, &bad), -ERANGE);
        VT_ASSERT_RC(vmmem_vhost_add_region(v, &t[0]), 0);
        CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);
        VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, NULL, 0), 0);
        vmmem_vhost_free(v);
    }
    ASSERT_SAME_COUNTS(before, "vhost-user table cycles");
    close(fd);
}

/* ---- a file truncated under its mapping ---- */

static void test_truncated_file_sigbus(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/vmmem-trunc-%ld", (long)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 64 * 1024), 0);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "file:addr=0,size=64K,path=%s", path);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, cfg, NULL), 0);
    CU_ASSERT_FATAL(m != NULL);
    uint8_t b = 7;
    CU_ASSERT_EQUAL(vmmem_write(m, 0x8000, &b, 1), 1);
    /* Somebody shrinks the file under the mapping: the pages past the new
     * end are gone, and the kernel answers an access with SIGBUS.  The
     * library cannot prevent that (use sealed memfds: file:...,memfd=,seal). */
    CU_ASSERT_EQUAL(ftruncate(fd, 4096), 0);
    fflush(stdout);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        signal(SIGBUS, SIG_DFL); /* a sanitizer's handler would turn it into exit(1) */
        uint8_t v = 1;
        if (vmmem_read(m, 0x0, &v, 1) != 1) /* still backed */
            _exit(2);
        vmmem_read(m, 0x8000, &v, 1); /* past the new end: SIGBUS */
        _exit(3);
    }
    int st = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGBUS)
        fprintf(stdout, "\n    child: %s %d (want SIGBUS)\n",
                WIFSIGNALED(st) ? "signal" : "exit",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    CU_ASSERT_TRUE(WIFSIGNALED(st));
    CU_ASSERT_EQUAL(WTERMSIG(st), SIGBUS);
    vmmem_map_unref(m);

    /* The size check at map time refuses the now short file, by path and
     * by fd, and a region that ends past the end through its offset. */
    m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, cfg, NULL), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "SIGBUS"));
    snprintf(cfg, sizeof cfg, "file:addr=0,size=8K,fd=%d", fd);
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, cfg, NULL), -ERANGE);
    snprintf(cfg, sizeof cfg, "file:addr=0,size=4K,fd=%d,offset=4K", fd);
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, cfg, NULL), -ERANGE);
    snprintf(cfg, sizeof cfg, "file:addr=0,size=4K,fd=%d", fd);
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, cfg, NULL), 0); /* exactly the size: fine */
    vmmem_map_unref(m);
    close(fd);
    unlink(path);
}


/* ---- hostile plugin files (registry.h: world-writable is -EPERM) ---- */

/* Copy the failmap test plugin to dir/name with mode; 0 on success. */
static int copy_plugin(const char *dir, const char *name, mode_t mode, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    int in = open(vt_test_plugin("failmap.so"), O_RDONLY | O_CLOEXEC);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = in >= 0 && fd >= 0 ? 0 : -1;
    char buf[8192];
    ssize_t n;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n)
            rc = -1;
    if (in >= 0)
        close(in);
    if (fd >= 0) {
        if (fchmod(fd, mode) != 0)
            rc = -1;
        close(fd);
    }
    return rc;
}

static void test_world_writable_plugins(void)
{
    char dir[] = "/tmp/vmmem-plugperm-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char ok[256], ww[256];
    CU_ASSERT_EQUAL_FATAL(copy_plugin(dir, "ok.so", 0755, ok, sizeof ok), 0);
    CU_ASSERT_EQUAL_FATAL(copy_plugin(dir, "ww.so", 0757, ww, sizeof ww), 0);
    vmmem_registry *reg = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&reg), 0);
    /* A world-writable file is refused, and nothing of it registered. */
    VT_ASSERT_RC(vmmem_registry_load(reg, ww), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "world-writable"));
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
    /* The same file, not writable by others, loads. */
    VT_ASSERT_RC(vmmem_registry_load(reg, ok), 0);
    vmmem_registry_free(reg);
    /* A world-writable directory (even with the sticky bit, like /tmp)
     * makes every file in it refused, by path and by discovery. */
    CU_ASSERT_EQUAL(chmod(dir, 01777), 0);
    VT_ASSERT_RC(vmmem_registry_new(&reg), 0);
    VT_ASSERT_RC(vmmem_registry_load(reg, ok), -EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "directory"));
    char *old = getenv("VMMEM_PLUGIN_PATH") ? strdup(getenv("VMMEM_PLUGIN_PATH")) : NULL;
    setenv("VMMEM_PLUGIN_PATH", dir, 1);
    int rc = vmmem_registry_discover(reg); /* (also scans the install directory) */
    CU_ASSERT_TRUE(rc < 0);
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-failmap"));
    int refused = 0;
    for (size_t i = 0; i < vmmem_registry_failure_count(reg); i++) {
        struct vmmem_load_failure lf;
        if (vmmem_registry_failure(reg, i, &lf) == 0 && strncmp(lf.file, dir, strlen(dir)) == 0)
            refused += lf.code == -EPERM;
    }
    /* Refused as a directory (one failure) or file by file. */
    if (refused < 1)
        fprintf(stdout, "\n    discover: rc %d, %zu failures, none for %s\n", rc,
                vmmem_registry_failure_count(reg), dir);
    CU_ASSERT_TRUE(refused >= 1);
    /* Relative entries (and the empty entry, which would be the current
     * directory) are never searched, even when the plugin is there. */
    CU_ASSERT_EQUAL(chmod(dir, 0755), 0);
    char cwd[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    CU_ASSERT_EQUAL_FATAL(chdir(dir), 0);
    setenv("VMMEM_PLUGIN_PATH", ".::ok-dir:vmmem-plugperm", 1);
    vmmem_registry *reg2 = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&reg2), 0);
    rc = vmmem_registry_discover(reg2);
    CU_ASSERT_TRUE(rc >= 0 || rc == -EPERM || rc == -ENOENT);
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg2, "test-failmap"));
    VT_ASSERT_RC(vmmem_registry_load(reg2, "ok.so"), -EINVAL); /* relative path */
    vmmem_registry_free(reg2);
    CU_ASSERT_EQUAL(chdir(cwd), 0);
    if (old != NULL)
        setenv("VMMEM_PLUGIN_PATH", old, 1);
    else
        unsetenv("VMMEM_PLUGIN_PATH");
    free(old);
    vmmem_registry_free(reg);
    unlink(ok);
    unlink(ww);
    rmdir(dir);
}

static const struct vt_test fault_tests[] = {
    {"provider failing midway (config string) leaves nothing", test_failmap_midway_config},
    {"provider failing midway (C specs) leaves nothing", test_failmap_midway_specs},
    {"provider failing in space_add leaves the space", test_failmap_space_add},
    {"mmap failing under RLIMIT_AS is an error", test_rlimit_as},
    {"truncated file: SIGBUS, and the size check", test_truncated_file_sigbus},
    {"world-writable plugin files and directories, relative paths", test_world_writable_plugins},
    {NULL, NULL},
};

static const struct vt_test leak_tests[] = {
    {"build/destroy cycles keep fd and maps counts", test_cycles},
    {"vhost-user table cycles keep fd and maps counts", test_vhost_cycles},
    {NULL, NULL},
};

static const struct vt_suite faults = {"faults", suite_init, suite_cleanup, fault_tests};
static const struct vt_suite leaks = {"leaks", suite_init, suite_cleanup, leak_tests};

int main(void)
{
    const struct vt_suite *suites[] = {&faults, &leaks, NULL};
    return vt_main(suites);
}

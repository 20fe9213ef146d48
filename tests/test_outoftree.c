/*
 * Out-of-tree providers: the example provider examples/provider/ring.c is
 * compiled with plain `cc` against the staged install (build/<mode>/prefix,
 * made by SConstruct with the same rules as `scons install`) using nothing
 * but `pkg-config --cflags vmmem`, then loaded by absolute path and through
 * VMMEM_PLUGIN_PATH, and used through config strings.  A client program
 * (ring-demo.c) is linked with `pkg-config --cflags --libs vmmem` against
 * the installed library and run.
 *
 * Environment (set by `scons test`): VMMEM_STAGE_PREFIX (or
 * VMMEM_BUILD_ROOT/prefix), VMMEM_SOURCE_ROOT.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

/* Paths are kept short enough that every path built from them fits. */
#define ROOT_MAX 1024
static char prefix[ROOT_MAX];  /* the staged install */
static char example[ROOT_MAX]; /* examples/provider in the source tree */
static char work[] = "/tmp/vmmem-oot-XXXXXX";
static char ring_so[ROOT_MAX]; /* work/vmmem-ring.so */
static char pkgenv[3 * ROOT_MAX];
/* Cross builds (scons platform=...): the compiler, nm and the runner of the
 * target (VMMEM_TEST_CC, VMMEM_TEST_NM, VMMEM_TEST_EXEC_PREFIX). */
static const char *test_cc = "cc";
static const char *test_nm = "nm";
static const char *exec_prefix = "";

/* Run a shell command (formatted); returns its exit status, or -1. */
static int sh(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    fflush(stdout);
    int st = system(cmd);
    int rc = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc != 0)
        fprintf(stdout, "\n    command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* First line of a command's output, without the newline and trailing blanks. */
static int sh_line(char *out, size_t n, const char *cmd)
{
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    out[0] = '\0';
    if (fgets(out, (int)n, p) != NULL) {
        size_t len = strcspn(out, "\n");
        while (len > 0 && out[len - 1] == ' ') /* pkg-config ends with a blank */
            len--;
        out[len] = '\0';
    }
    int st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool is_file(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool maps_mention(const char *text)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return false;
    char line[PATH_MAX + 128];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static int suite_init(void)
{
    if (getenv("VMMEM_TEST_CC") != NULL && *getenv("VMMEM_TEST_CC") != '\0')
        test_cc = getenv("VMMEM_TEST_CC");
    if (getenv("VMMEM_TEST_NM") != NULL && *getenv("VMMEM_TEST_NM") != '\0')
        test_nm = getenv("VMMEM_TEST_NM");
    if (getenv("VMMEM_TEST_EXEC_PREFIX") != NULL)
        exec_prefix = getenv("VMMEM_TEST_EXEC_PREFIX");
    const char *stage = getenv("VMMEM_STAGE_PREFIX");
    const char *build = getenv("VMMEM_BUILD_ROOT");
    const char *src = getenv("VMMEM_SOURCE_ROOT");
    if (src == NULL || (stage == NULL && build == NULL)) {
        fprintf(stdout, "VMMEM_SOURCE_ROOT and VMMEM_STAGE_PREFIX/VMMEM_BUILD_ROOT must be set\n");
        return -1;
    }
    int n = stage != NULL ? snprintf(prefix, sizeof prefix, "%s", stage)
                          : snprintf(prefix, sizeof prefix, "%s/prefix", build);
    int k = snprintf(example, sizeof example, "%s/examples/provider", src);
    if (n < 0 || (size_t)n >= sizeof prefix || k < 0 || (size_t)k >= sizeof example) {
        fprintf(stdout, "build or source path too long\n");
        return -1;
    }
    if (mkdtemp(work) == NULL)
        return -1;
    snprintf(ring_so, sizeof ring_so, "%s/vmmem-ring.so", work);
    /* Only the staged vmmem.pc may be found; no stray include paths. */
    snprintf(pkgenv, sizeof pkgenv,
             "env -u CPATH -u C_INCLUDE_PATH PKG_CONFIG_PATH='%s/lib/pkgconfig' "
             "PKG_CONFIG_LIBDIR='%s/lib/pkgconfig'",
             prefix, prefix);
    return 0;
}

static int suite_cleanup(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/ring-demo", work);
    unlink(path);
    unlink(ring_so);
    return rmdir(work) == 0 ? 0 : -1;
}

/* ---- the installed tree --------------------------------------------------- */

static void test_installed_tree(void)
{
    char dir[2 * ROOT_MAX], line[PATH_MAX], want[2 * ROOT_MAX];
    snprintf(dir, sizeof dir, "%s/lib", prefix);
    CU_ASSERT(is_file(dir, "libvmmem.so.0.1.0"));
    CU_ASSERT(is_file(dir, "libvmmem.a"));
    /* SONAME links: libvmmem.so -> libvmmem.so.0.1.0, libvmmem.so.0 too. */
    char path[PATH_MAX], target[PATH_MAX];
    const char *links[] = {"libvmmem.so", "libvmmem.so.0"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, links[i]);
        ssize_t n = readlink(path, target, sizeof target - 1);
        CU_ASSERT_FATAL(n > 0);
        target[n] = '\0';
        CU_ASSERT_STRING_EQUAL(target, "libvmmem.so.0.1.0");
    }
    CU_ASSERT_EQUAL(sh("readelf -d '%s/libvmmem.so.0.1.0' | grep -q 'SONAME.*\\[libvmmem.so.0\\]'",
                       dir),
                    0);
    snprintf(dir, sizeof dir, "%s/include/vmmem", prefix);
    CU_ASSERT(is_file(dir, "vmmem.h"));
    CU_ASSERT(is_file(dir, "provider.h"));
    CU_ASSERT(is_file(dir, "common.h"));
    snprintf(dir, sizeof dir, "%s/lib/vmmem/plugins", prefix);
    CU_ASSERT(is_file(dir, "vmmem-mmap.so"));
    CU_ASSERT(is_file(dir, "vmmem-file.so"));
    snprintf(dir, sizeof dir, "%s/lib/pkgconfig", prefix);
    CU_ASSERT(is_file(dir, "vmmem.pc"));

    /* vmmem.pc: the plugin directory is a variable; cflags/libs point here. */
    char cmd[5 * ROOT_MAX];
    snprintf(cmd, sizeof cmd, "%s pkg-config --variable=plugindir vmmem", pkgenv);
    CU_ASSERT_EQUAL(sh_line(line, sizeof line, cmd), 0);
    snprintf(want, sizeof want, "%s/lib/vmmem/plugins", prefix);
    CU_ASSERT_STRING_EQUAL(line, want);
    snprintf(cmd, sizeof cmd, "%s pkg-config --cflags vmmem", pkgenv);
    CU_ASSERT_EQUAL(sh_line(line, sizeof line, cmd), 0);
    snprintf(want, sizeof want, "-I%s/include", prefix);
    CU_ASSERT_STRING_EQUAL(line, want);
    snprintf(cmd, sizeof cmd, "%s pkg-config --libs vmmem", pkgenv);
    CU_ASSERT_EQUAL(sh_line(line, sizeof line, cmd), 0);
    snprintf(want, sizeof want, "-L%s/lib -lvmmem", prefix);
    CU_ASSERT_STRING_EQUAL(line, want);
    snprintf(cmd, sizeof cmd, "%s pkg-config --modversion vmmem", pkgenv);
    CU_ASSERT_EQUAL(sh_line(line, sizeof line, cmd), 0);
    CU_ASSERT_STRING_EQUAL(line, VMMEM_VERSION_STRING);

    /* The installed tool reaches no build tree: its only RUNPATH is the
     * library beside its prefix (issue 17: a build-tree RUNPATH made it
     * fail once build/ was gone, and load the build's plugins meanwhile). */
    snprintf(dir, sizeof dir, "%s/bin", prefix);
    CU_ASSERT(is_file(dir, "vmmem"));
    snprintf(cmd, sizeof cmd, "readelf -d '%s/vmmem' | grep -E 'R(UN)?PATH'", dir);
    CU_ASSERT_EQUAL(sh_line(line, sizeof line, cmd), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "[$ORIGIN/../lib]"));
    CU_ASSERT_PTR_NULL(strstr(line, "/build/"));
    snprintf(cmd, sizeof cmd, "readelf -d '%s/vmmem' | grep -cE 'R(UN)?PATH'", dir);
    CU_ASSERT_EQUAL(sh_line(line, sizeof line, cmd), 0);
    CU_ASSERT_STRING_EQUAL(line, "1");
}

/* ---- building outside the tree ---------------------------------------------- */

static void test_compile_provider(void)
{
    /* The README's build line (plus warnings as errors), in a scratch dir. */
    CU_ASSERT_EQUAL_FATAL(sh("cd '%s' && %s sh -c '%s -std=c11 -Wall -Wextra -Werror -shared "
                             "-fPIC -o vmmem-ring.so \"$0\" $(pkg-config --cflags vmmem)' "
                             "'%s/ring.c' 2>&1",
                             work, pkgenv, test_cc, example),
                          0);
    CU_ASSERT(is_file(work, "vmmem-ring.so"));
    /* It exports the entry symbol and needs nothing from libvmmem. */
    CU_ASSERT_EQUAL(sh("%s -D --defined-only '%s' | grep -q ' T vmmem_plugin_entry$'", test_nm,
                       ring_so),
                    0);
    CU_ASSERT_EQUAL(sh("! %s -D --undefined-only '%s' | grep -q vmmem_", test_nm, ring_so), 0);
}

static void test_compile_client(void)
{
    CU_ASSERT_EQUAL_FATAL(sh("cd '%s' && %s sh -c '%s -std=c11 -Wall -Wextra -Werror -o ring-demo "
                             "\"$0\" $(pkg-config --cflags --libs vmmem)' '%s/ring-demo.c' 2>&1",
                             work, pkgenv, test_cc, example),
                          0);
    CU_ASSERT(is_file(work, "ring-demo"));
    CU_ASSERT_EQUAL(sh("readelf -d '%s/ring-demo' | grep -q 'NEEDED.*\\[libvmmem.so.0\\]'", work),
                    0);
}

/* ---- loading and using it ------------------------------------------------------ */

/* Check the ring semantics on a map holding ring:addr=base,size=32K,pages=2. */
static void check_ring(const vmmem_map *m, uint64_t base)
{
    static const char msg[] = "around the ring";
    VT_ASSERT_RC(vmmem_write_slice(m, base + 0x10, msg, sizeof msg), 0);
    char buf[sizeof msg];
    for (uint64_t copy = 0; copy < 4; copy++) { /* 32K / 8K = 4 copies */
        memset(buf, 0, sizeof buf);
        VT_ASSERT_RC(vmmem_read_slice(m, base + copy * 0x2000 + 0x10, buf, sizeof buf), 0);
        CU_ASSERT_EQUAL(memcmp(buf, msg, sizeof msg), 0);
    }
    /* An 8-byte store across the end of one copy comes out at the ring's start. */
    VT_ASSERT_RC(vmmem_write_slice(m, base + 0x2000 - 4, "ABCDEFGH", 8), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, base, buf, 4), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "EFGH", 4), 0);
    /* The last guest byte of the region is the ring's last byte. */
    VT_ASSERT_RC(vmmem_write_slice(m, base + 0x8000 - 1, "z", 1), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, base + 0x2000 - 1, buf, 1), 0);
    CU_ASSERT_EQUAL(buf[0], 'z');
    CU_ASSERT_FALSE(vmmem_map_check_address(m, base + 0x8000));
}

static void test_load_by_path(void)
{
    vmmem_registry *reg = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&reg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    VT_ASSERT_RC(vmmem_registry_load(reg, ring_so), 0);
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "ring"));
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 1);
    struct vmmem_provider_info pi;
    VT_ASSERT_RC(vmmem_registry_get(reg, 0, &pi), 0);
    CU_ASSERT_STRING_EQUAL(pi.name, "ring");
    CU_ASSERT_EQUAL(pi.abi_version, VMMEM_PROVIDER_ABI_VERSION);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pi.file);
    CU_ASSERT_STRING_EQUAL(pi.file, ring_so);
    CU_ASSERT(maps_mention(ring_so));

    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "ring:addr=0x40000,size=32K,pages=2", NULL), 0);
    if (m != NULL) {
        check_ring(m, 0x40000);
        struct vmmem_region_info info;
        vmmem_region_get_info(vmmem_map_region(m, 0), &info);
        CU_ASSERT_STRING_EQUAL(info.provider, "ring");
        CU_ASSERT_PTR_NOT_NULL_FATAL(info.file);
        CU_ASSERT_STRING_EQUAL(info.file, "memfd:vmmem-ring");
        CU_ASSERT(info.fd > 2);
        /* The memfd holds exactly the ring: 2 pages. */
        struct stat sb;
        CU_ASSERT_EQUAL(fstat(info.fd, &sb), 0);
        CU_ASSERT_EQUAL(sb.st_size, 8192);
        char c = 0;
        CU_ASSERT_EQUAL(pread(info.fd, &c, 1, 0x1fff), 1);
        CU_ASSERT_EQUAL(c, 'z');
    }
    /* Its option table is enforced by the core; its own checks by the provider. */
    vmmem_map *bad = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&bad, reg, "ring:addr=0,size=8K", NULL),
                 VMMEM_EMISSING_KEY);
    VT_ASSERT_RC(vmmem_map_from_config(&bad, reg, "ring:addr=0,size=8K,pages=0", NULL),
                 VMMEM_EBAD_VALUE);
    /* the host's option kit, from a plugin built against the installed headers */
    CU_ASSERT_STRING_EQUAL(vmmem_last_message(),
                           "ring: pages='0' is not a count >= 1 (region 0, column 27)");
    CU_ASSERT_EQUAL(vmmem_last_error()->column, 27);
    VT_ASSERT_RC(vmmem_map_from_config(&bad, reg, "ring:addr=0,size=8K,pages=0", NULL),
                 VMMEM_EBAD_VALUE);
    VT_ASSERT_RC(vmmem_map_from_config(&bad, reg, "ring:addr=0,size=6K,pages=1", NULL),
                 VMMEM_EBAD_VALUE);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "page size"));
    VT_ASSERT_RC(vmmem_map_from_config(&bad, reg, "ring:addr=0,size=8K,pages=1,hugetlb", NULL),
                 VMMEM_EUNKNOWN_KEY);
    CU_ASSERT_PTR_NULL(bad);
    /* The same file again in the same registry: a duplicate provider name. */
    VT_ASSERT_RC(vmmem_registry_load(reg, ring_so), VMMEM_EDUPLICATE);

    /* The map outlives the registry; the plugin stays loaded until it goes. */
    vmmem_registry_free(reg);
    if (m != NULL) {
        CU_ASSERT(maps_mention(ring_so));
        char buf[4];
        VT_ASSERT_RC(vmmem_read_slice(m, 0x40000, buf, 4), 0);
        CU_ASSERT_EQUAL(memcmp(buf, "EFGH", 4), 0);
        vmmem_map_unref(m);
    }
    CU_ASSERT_FALSE(maps_mention(ring_so));
}

static void test_discover_plugin_path(void)
{
    const char *old = getenv("VMMEM_PLUGIN_PATH");
    char *saved = old ? strdup(old) : NULL;
    CU_ASSERT_EQUAL_FATAL(setenv("VMMEM_PLUGIN_PATH", work, 1), 0);

    vmmem_registry *reg = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&reg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    int rc = vmmem_registry_discover(reg);
    if (rc < 1)
        fprintf(stdout, "\n    discover: %d (%s): %s\n", rc, vmmem_err_name(rc),
                vmmem_last_message());
    CU_ASSERT(rc >= 1);
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "ring"));
    bool found = false;
    for (size_t i = 0; i < vmmem_registry_count(reg); i++) {
        struct vmmem_provider_info pi;
        if (vmmem_registry_get(reg, i, &pi) == 0 && strcmp(pi.name, "ring") == 0)
            found = pi.file != NULL && strcmp(pi.file, ring_so) == 0;
    }
    CU_ASSERT(found);
    /* Next to the installed "mmap" provider, in one config string. */
    if (vmmem_registry_find(reg, "mmap") == NULL) {
        char mmap_so[2 * ROOT_MAX];
        snprintf(mmap_so, sizeof mmap_so, "%s/lib/vmmem/plugins/vmmem-mmap.so", prefix);
        VT_ASSERT_RC(vmmem_registry_load(reg, mmap_so), 0);
    }
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg,
                                       "mmap:addr=0,size=0x40000;"
                                       "ring:addr=0x40000,size=32K,pages=2,name=oot",
                                       NULL),
                 0);
    if (m != NULL) {
        CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 2);
        check_ring(m, 0x40000);
        /* A write across the mmap/ring seam is split by the core. */
        VT_ASSERT_RC(vmmem_write_slice(m, 0x40000 - 2, "1234", 4), 0);
        char buf[4];
        VT_ASSERT_RC(vmmem_read_slice(m, 0x40000 + 0x6000, buf, 2), 0);
        CU_ASSERT_EQUAL(memcmp(buf, "34", 2), 0);
        struct vmmem_region_info info;
        vmmem_region_get_info(vmmem_map_region(m, 1), &info);
        CU_ASSERT_STRING_EQUAL(info.file, "memfd:oot");
        vmmem_map_unref(m);
    }
    vmmem_registry_free(reg);
    if (saved != NULL) {
        setenv("VMMEM_PLUGIN_PATH", saved, 1);
        free(saved);
    } else {
        unsetenv("VMMEM_PLUGIN_PATH");
    }
}

/* The client linked against the installed library, with the ring found via
 * VMMEM_PLUGIN_PATH and mmap from the installed plugin directory. */
static void test_run_client(void)
{
    /* A sanitizer build's libvmmem needs the ASan runtime first in the
     * process (loaded late, its interceptors - readdir among them - do not
     * work and no plugin is found): preload it into the uninstrumented
     * client. */
#if defined(__SANITIZE_ADDRESS__)
#define VT_PRELOAD "LD_PRELOAD=\"$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)\" "
#elif defined(__SANITIZE_THREAD__) /* scons tsan=1: the same for the TSan runtime */
#define VT_PRELOAD "LD_PRELOAD=\"$(cc -print-file-name=libtsan.so)\" "
#else
#define VT_PRELOAD ""
#endif
    CU_ASSERT_EQUAL(sh("cd '%s' && " VT_PRELOAD "VMMEM_PLUGIN_PATH='%s:%s/lib/vmmem/plugins' "
                       "LD_LIBRARY_PATH='%s/lib' ASAN_OPTIONS=verify_asan_link_order=0 "
                       "%s ./ring-demo 2>&1",
                       work, work, prefix, prefix, exec_prefix),
                    0);
}

static const struct vt_test oot_tests[] = {
    {"staged install: library, SONAME links, headers, plugins, vmmem.pc", test_installed_tree},
    {"cc + pkg-config --cflags builds the example provider", test_compile_provider},
    {"cc + pkg-config --cflags --libs builds a client", test_compile_client},
    {"load by absolute path, map, read/write, unload", test_load_by_path},
    {"discover through VMMEM_PLUGIN_PATH", test_discover_plugin_path},
    {"client runs against the installed library", test_run_client},
    {NULL, NULL},
};

static const struct vt_suite oot_suite = {"out-of-tree provider", suite_init, suite_cleanup,
                                          oot_tests};

int main(void)
{
    const struct vt_suite *const suites[] = {&oot_suite, NULL};
    return vt_main(suites);
}

/*
 * The provider registry and plugin loading (registry.h, provider.h): load by
 * path and its errors, static registration, lookup and info, discovery
 * through VMMEM_PLUGIN_PATH, maps built through a private registry, plugin
 * lifetime, thread safety, failing and map-on-access providers.
 *
 * The test plugins (tests/plugins/) count their hook calls in a
 * struct vt_counts reached through provider->user.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define VT_COUNTS_MAGIC 0x76746370u
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

#define LOADC(c, field) __atomic_load_n(&(c)->field, __ATOMIC_SEQ_CST)

static char *plugin_path(const char *file)
{
    char *p = strdup(vt_test_plugin(file));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static vmmem_registry *new_reg(void)
{
    vmmem_registry *reg = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&reg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    return reg;
}

static void load_ok(vmmem_registry *reg, const char *file)
{
    char *path = plugin_path(file);
    int rc = vmmem_registry_load(reg, path);
    if (rc != 0)
        fprintf(stdout, "\n    loading %s\n", path);
    VT_ASSERT_RC(rc, 0);
    free(path);
}

/* The counters of a test provider; a zeroed scratch struct (after a
 * recorded failure) when it is missing, so the test can go on and free. */
static struct vt_counts *counts(vmmem_registry *reg, const char *name)
{
    static struct vt_counts scratch;
    const struct vmmem_provider *p = vmmem_registry_find(reg, name);
    struct vt_counts *c = p ? p->user : NULL;
    if (c == NULL || c->magic != VT_COUNTS_MAGIC) {
        fprintf(stdout, "\n    no counters for provider '%s'\n", name);
        CU_FAIL("test provider missing");
        memset(&scratch, 0, sizeof scratch);
        return &scratch;
    }
    return c;
}

static bool msg_has(const char *needle)
{
    const char *msg = vmmem_last_message();
    if (strstr(msg, needle) != NULL)
        return true;
    fprintf(stdout, "\n    message \"%s\" lacks \"%s\"\n", msg, needle);
    return false;
}

/* Load file and expect code; nothing may change in the registry. */
static void load_fails(vmmem_registry *reg, const char *file, int code)
{
    char *path = plugin_path(file);
    size_t before = vmmem_registry_count(reg);
    int rc = vmmem_registry_load(reg, path);
    if (rc != code)
        fprintf(stdout, "\n    loading %s\n", path);
    VT_ASSERT_RC(rc, code);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, code);
    CU_ASSERT_TRUE(msg_has(file)); /* the message names the file */
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), before);
    free(path);
}

/* ---- basics ----------------------------------------------------------- */

static void test_new_free(void)
{
    vmmem_registry *reg = new_reg();
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
    CU_ASSERT_EQUAL(vmmem_registry_failure_count(reg), 0);
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "mmap"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-heap"));
    struct vmmem_provider_info info;
    VT_ASSERT_RC(vmmem_registry_get(reg, 0, &info), -ERANGE);
    struct vmmem_load_failure f;
    VT_ASSERT_RC(vmmem_registry_failure(reg, 0, &f), -ERANGE);
    vmmem_registry_free(reg);
    /* two registries are independent */
    vmmem_registry *a = new_reg(), *b = new_reg();
    CU_ASSERT_PTR_NOT_EQUAL(a, b);
    load_ok(a, "good.so");
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(a, "test-heap"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(b, "test-heap"));
    vmmem_registry_free(a);
    vmmem_registry_free(b);
}

static void test_default_registry(void)
{
    vmmem_registry *d = vmmem_default_registry();
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_PTR_EQUAL(vmmem_default_registry(), d);
    /* discovered from VMMEM_PLUGIN_PATH (the staged in-tree plugins) */
    const struct vmmem_provider *p = vmmem_registry_find(d, "mmap");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->name, "mmap");
    CU_ASSERT_PTR_NULL(vmmem_registry_find(d, "test-heap"));
    const char *dir = vmmem_plugin_dir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_EQUAL(dir[0], '/');
}

static void test_load_good_and_info(void)
{
    vmmem_registry *reg = new_reg();
    char *path = plugin_path("good.so");
    VT_ASSERT_RC(vmmem_registry_load(reg, path), 0);
    CU_ASSERT_EQUAL_FATAL(vmmem_registry_count(reg), 2);

    const struct vmmem_provider *heap = vmmem_registry_find(reg, "test-heap");
    const struct vmmem_provider *cnt = vmmem_registry_find(reg, "test-counted");
    CU_ASSERT_PTR_NOT_NULL_FATAL(heap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cnt);
    CU_ASSERT_STRING_EQUAL(heap->name, "test-heap");
    CU_ASSERT_STRING_EQUAL(cnt->name, "test-counted");
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-heapx"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "TEST-HEAP"));

    char real[PATH_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(path, real));
    bool seen_heap = false, seen_cnt = false;
    for (size_t i = 0; i < 2; i++) {
        struct vmmem_provider_info info;
        memset(&info, 0, sizeof info);
        VT_ASSERT_RC(vmmem_registry_get(reg, i, &info), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(info.name);
        CU_ASSERT_EQUAL(info.abi_version, VMMEM_PROVIDER_ABI_VERSION);
        CU_ASSERT_PTR_NOT_NULL_FATAL(info.file);
        CU_ASSERT_TRUE(strcmp(info.file, path) == 0 || strcmp(info.file, real) == 0);
        if (strcmp(info.name, "test-heap") == 0) {
            seen_heap = true;
            CU_ASSERT_STRING_EQUAL(info.description, "test: heap memory with a required tag");
        } else if (strcmp(info.name, "test-counted") == 0) {
            seen_cnt = true;
            CU_ASSERT_STRING_EQUAL(info.description, "test: zeroed heap memory, counts calls");
        }
    }
    CU_ASSERT_TRUE(seen_heap && seen_cnt);
    struct vmmem_provider_info info;
    VT_ASSERT_RC(vmmem_registry_get(reg, 2, &info), -ERANGE);
    VT_ASSERT_RC(vmmem_registry_get(reg, SIZE_MAX, &info), -ERANGE);

    /* loading the same file again: its names are taken */
    load_fails(reg, "good.so", VMMEM_EDUPLICATE);
    CU_ASSERT_PTR_EQUAL(vmmem_registry_find(reg, "test-heap"), heap);
    vmmem_registry_free(reg);
    free(path);
}

static void test_load_relative(void)
{
    vmmem_registry *reg = new_reg();
    static const char *const rel[] = {"good.so", "./good.so", "tests/plugins/good.so",
                                      "../plugins/good.so"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        VT_ASSERT_RC(vmmem_registry_load(reg, rel[i]), -EINVAL);
        CU_ASSERT_TRUE(msg_has("good.so"));
    }
    VT_ASSERT_RC(vmmem_registry_load(reg, ""), -EINVAL);
    VT_ASSERT_RC(vmmem_registry_load(reg, NULL), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
    vmmem_registry_free(reg);
}

static void test_load_missing(void)
{
    vmmem_registry *reg = new_reg();
    load_fails(reg, "does-not-exist.so", -ENOENT);
    VT_ASSERT_RC(vmmem_registry_load(reg, "/nonexistent-vt-dir/x.so"), -ENOENT);
    CU_ASSERT_TRUE(msg_has("/nonexistent-vt-dir/x.so"));
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
    vmmem_registry_free(reg);
}

static void test_load_not_plugin(void)
{
    vmmem_registry *reg = new_reg();
    load_fails(reg, "garbage.so", VMMEM_ENOT_PLUGIN);
    load_fails(reg, "noentry.so", VMMEM_ENOT_PLUGIN);
    /* a directory is not a loadable object either */
    char *dir = strdup(getenv("VMMEM_TEST_PLUGIN_DIR") ? getenv("VMMEM_TEST_PLUGIN_DIR") : "/");
    int rc = vmmem_registry_load(reg, dir);
    CU_ASSERT_TRUE(rc == VMMEM_ENOT_PLUGIN || rc == -EISDIR);
    free(dir);
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
    /* the registry still works afterwards */
    load_ok(reg, "good.so");
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 2);
    vmmem_registry_free(reg);
}

static void test_load_bad_abi(void)
{
    vmmem_registry *reg = new_reg();
    load_ok(reg, "good.so");
    load_fails(reg, "badabi.so", VMMEM_EABI);
    load_fails(reg, "badabi_provider.so", VMMEM_EABI);
    load_fails(reg, "badsize.so", VMMEM_EABI);
    load_fails(reg, "badplugsize.so", VMMEM_EABI);
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-badabi"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-abiok"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-abibad"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-badsize"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-badplugsize"));
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 2);
    vmmem_registry_free(reg);
}

static void test_load_duplicate(void)
{
    vmmem_registry *reg = new_reg();
    load_ok(reg, "good.so");
    const struct vmmem_provider *heap = vmmem_registry_find(reg, "test-heap");
    load_fails(reg, "dup.so", VMMEM_EDUPLICATE);
    CU_ASSERT_TRUE(msg_has("test-heap")); /* names the clashing provider too */
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-dupother"));
    /* the first registration is the one that stays */
    CU_ASSERT_PTR_EQUAL(vmmem_registry_find(reg, "test-heap"), heap);
    CU_ASSERT_STRING_EQUAL(vmmem_registry_find(reg, "test-heap")->description,
                           "test: heap memory with a required tag");
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-heap:addr=0,size=4K,tag=x", NULL), 0);
    vmmem_map_unref(m);

    /* two providers of the same name inside one plugin */
    load_fails(reg, "dup_self.so", VMMEM_EDUPLICATE);
    CU_ASSERT_TRUE(msg_has("test-dupself"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-dupself"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-dupself-a"));
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 2);
    vmmem_registry_free(reg);

    /* dup_self fails on an empty registry too */
    reg = new_reg();
    load_fails(reg, "dup_self.so", VMMEM_EDUPLICATE);
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
    vmmem_registry_free(reg);
}

static void test_load_refused(void)
{
    vmmem_registry *reg = new_reg();
    load_fails(reg, "refuse.so", -EPERM);
    CU_ASSERT_TRUE(msg_has("licence key XYZZY missing")); /* the plugin's own reason */
    vmmem_registry_free(reg);
}

static void test_load_nomap(void)
{
    vmmem_registry *reg = new_reg();
    char *path = plugin_path("nomap.so");
    int rc = vmmem_registry_load(reg, path);
    /* a NULL map slot is refused at load, or a clean error at map time */
    if (rc != 0 && rc != VMMEM_EABI && rc != VMMEM_EPROVIDER)
        fprintf(stdout, "\n    nomap.so: %s: %s\n", vmmem_err_name(rc), vmmem_last_message());
    CU_ASSERT_TRUE(rc == 0 || rc == VMMEM_EABI || rc == VMMEM_EPROVIDER);
    if (rc == 0) {
        CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "test-nomap"));
        vmmem_map *m = (vmmem_map *)reg;
        rc = vmmem_map_from_config(&m, reg, "test-nomap:addr=0,size=4K", NULL);
        CU_ASSERT_TRUE(rc == VMMEM_EPROVIDER || rc == VMMEM_EUNSUPPORTED);
        CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    } else {
        CU_ASSERT_TRUE(msg_has("nomap.so"));
        CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-nomap"));
        CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
    }
    vmmem_registry_free(reg);
    free(path);
}

static void test_old_struct_size(void)
{
    /* struct_size ends before begin_access: those slots must be ignored */
    vmmem_registry *reg = new_reg();
    load_ok(reg, "oldsize.so");
    if (vmmem_registry_find(reg, "test-old") == NULL) {
        vmmem_registry_free(reg);
        return;
    }
    struct vt_counts *old = counts(reg, "test-old");
    struct vt_counts *oldlazy = counts(reg, "test-oldlazy");
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-old:addr=0,size=8K", NULL), 0);
    if (m != NULL) {
        uint64_t v = 0x0123456789abcdefull, w = 0;
        VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 8, &v), 0);
        VT_ASSERT_RC(VMMEM_READ_OBJ(m, 8, &w), 0);
        CU_ASSERT_EQUAL(w, v);
        void *host = NULL;
        VT_ASSERT_RC(vmmem_map_host_address(m, 8, &host, NULL), 0);
        CU_ASSERT_PTR_NOT_NULL(host);
        vmmem_map_unref(m);
    }
    CU_ASSERT_EQUAL(LOADC(old, maps), 1);
    CU_ASSERT_EQUAL(LOADC(old, unmaps), 1);
    CU_ASSERT_EQUAL(LOADC(old, errors), 0);

    /* map-on-access result without (visible) access hooks: the provider
     * broke its contract; clean error, nothing left mapped */
    m = (vmmem_map *)reg;
    VT_ASSERT_RC(vmmem_map_from_config(
                     &m, reg, "test-old:addr=0,size=4K;test-oldlazy:addr=4K,size=4K", NULL),
                 VMMEM_EPROVIDER);
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    CU_ASSERT_EQUAL(LOADC(oldlazy, maps), LOADC(oldlazy, unmaps));
    CU_ASSERT_EQUAL(LOADC(old, maps), LOADC(old, unmaps));
    CU_ASSERT_EQUAL(LOADC(oldlazy, errors), 0);
    CU_ASSERT_EQUAL(LOADC(old, errors), 0);
    vmmem_registry_free(reg);
}

/* ---- plugin trust ------------------------------------------------------ */

/* Copy the test plugin good.so to path with mode. */
static void copy_plugin(const char *path, mode_t mode)
{
    char *src = plugin_path("good.so");
    FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        CU_ASSERT_EQUAL_FATAL(fwrite(buf, 1, n, out), n);
    fclose(in);
    CU_ASSERT_EQUAL_FATAL(fclose(out), 0);
    CU_ASSERT_EQUAL_FATAL(chmod(path, mode), 0);
    free(src);
}

/* Load path into a fresh registry: the code, and for -EPERM a message
 * naming what; a loaded plugin registers "test-heap". */
static void trust_case(int line, const char *path, int code, const char *what)
{
    vmmem_registry *reg = new_reg();
    int rc = vmmem_registry_load(reg, path);
    if (rc != code)
        fprintf(stdout, "\n    line %d: loading %s: %s\n", line, path, vmmem_last_message());
    VT_ASSERT_RC(rc, code);
    if (code == 0) {
        CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "test-heap"));
    } else {
        CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
    }
    if (code != 0 && what != NULL) {
        CU_ASSERT_TRUE(msg_has(path));
        CU_ASSERT_TRUE(msg_has(what));
    }
    vmmem_registry_free(reg);
}
#define TRUST(path, code, what) trust_case(__LINE__, (path), (code), (what))

/*
 * The file and every directory up to / may be changed only by root or this
 * process's user: owned by one of them, not group- or world-writable; a
 * sticky directory (/tmp) is fine above the file's own directory, as others
 * cannot rename what they do not own in it.  (These tests run in /tmp, a sticky ancestor
 * themselves, as a build tree there does.)
 */
static void test_plugin_trust(void)
{
    char top[] = "/tmp/vt-trust-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(top));
    char sub[PATH_MAX], file[PATH_MAX], subfile[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/sub", top);
    snprintf(file, sizeof file, "%s/p.so", top);
    snprintf(subfile, sizeof subfile, "%s/sub/p.so", top);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
    copy_plugin(file, 0644);
    copy_plugin(subfile, 0644);
    CU_ASSERT_EQUAL_FATAL(chmod(top, 0755), 0);

    /* a legitimate layout under the sticky /tmp */
    TRUST(file, 0, NULL);
    TRUST(subfile, 0, NULL);

    /* group-writable parent directory, then grandparent */
    CU_ASSERT_EQUAL(chmod(top, 0775), 0);
    TRUST(file, -EPERM, "group-writable");
    TRUST(subfile, -EPERM, top);
    CU_ASSERT_EQUAL(chmod(top, 0757), 0);
    TRUST(subfile, -EPERM, "world-writable");
    /* ...but sticky above the file's directory: others cannot rename what
     * they do not own there; as the file's own directory it is refused */
    CU_ASSERT_EQUAL(chmod(top, 01777), 0);
    TRUST(subfile, 0, NULL);
    TRUST(file, -EPERM, "world-writable");
    CU_ASSERT_EQUAL(chmod(top, 0755), 0);
    /* sticky does not excuse the file itself */
    CU_ASSERT_EQUAL(chmod(sub, 0775), 0);
    TRUST(subfile, -EPERM, sub);
    CU_ASSERT_EQUAL(chmod(sub, 0755), 0);

    /* the file: group- or world-writable */
    CU_ASSERT_EQUAL(chmod(file, 0664), 0);
    TRUST(file, -EPERM, "group-writable");
    CU_ASSERT_EQUAL(chmod(file, 0646), 0);
    TRUST(file, -EPERM, "world-writable");
    CU_ASSERT_EQUAL(chmod(file, 0644), 0);
    TRUST(file, 0, NULL);

    /* owned by another user (nobody), then a directory owned by one */
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL(chown(file, 65534, (gid_t)-1), 0);
        TRUST(file, -EPERM, "owned by uid 65534");
        CU_ASSERT_EQUAL(chown(file, 0, (gid_t)-1), 0);
        CU_ASSERT_EQUAL(chown(sub, 65534, (gid_t)-1), 0);
        TRUST(subfile, -EPERM, "owned by uid 65534");
        CU_ASSERT_EQUAL(chown(sub, 0, (gid_t)-1), 0);
        TRUST(subfile, 0, NULL);
    } else {
        fprintf(stdout, "\n    not root: the other-owner cases need chown; skipped\n");
    }

    /* a symlink into the trusted tree loads the file it names, checked */
    char link[PATH_MAX + 16];
    snprintf(link, sizeof link, "%s/link.so", sub);
    CU_ASSERT_EQUAL(symlink(file, link), 0);
    TRUST(link, 0, NULL);
    CU_ASSERT_EQUAL(chmod(top, 0775), 0); /* the target's directory */
    TRUST(link, -EPERM, top);
    CU_ASSERT_EQUAL(chmod(top, 0755), 0);

    unlink(link);
    unlink(subfile);
    unlink(file);
    rmdir(sub);
    rmdir(top);
}

/* One fd number, two plugins: the second load must not be given the first
 * (dlopen matches loaded objects by name, and "/proc/self/fd/N" names
 * repeat once the first descriptor is closed). */
static void test_plugin_fd_names(void)
{
    vmmem_registry *a = new_reg(), *b = new_reg();
    load_ok(a, "good.so");
    load_ok(b, "lazy.so");
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(a, "test-heap"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(a, "test-lazy"));
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(b, "test-lazy"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(b, "test-heap"));
    vmmem_registry_free(b);
    vmmem_registry *c = new_reg();
    load_ok(c, "oldsize.so");
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(c, "test-old"));
    CU_ASSERT_PTR_NULL(vmmem_registry_find(c, "test-heap"));
    vmmem_registry_free(c);
    vmmem_registry_free(a);
}

/* ---- static registration ---------------------------------------------- */

static struct vt_counts static_counts = {.magic = VT_COUNTS_MAGIC};

static int static_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                      struct vmmem_mapping *out)
{
    struct vt_counts *c = p->user;
    __atomic_fetch_add(&c->map_calls, 1, __ATOMIC_SEQ_CST);
    if (out->struct_size < sizeof *out || out->fd != -1 || out->hugetlbfs != -1)
        __atomic_fetch_add(&c->errors, 1, __ATOMIC_SEQ_CST);
    if (spec->size > (1u << 20))
        return -ENOMEM;
    void *mem = calloc(1, (size_t)spec->size);
    if (mem == NULL)
        return -ENOMEM;
    out->prot = VMMEM_PROT_RW;
    out->host = mem;
    out->priv = mem;
    out->fd = -1;
    __atomic_fetch_add(&c->maps, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void static_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                         struct vmmem_mapping *m)
{
    struct vt_counts *c = p->user;
    (void)spec;
    if (m->priv != m->host)
        __atomic_fetch_add(&c->errors, 1, __ATOMIC_SEQ_CST);
    free(m->priv);
    __atomic_fetch_add(&c->unmaps, 1, __ATOMIC_SEQ_CST);
}

static const struct vmmem_option_desc static_opts[] = {
    {"color", VMMEM_OPT_VALUE, "any"},
    {NULL, 0, NULL},
};

static const struct vmmem_provider static_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-static",
    .description = "static test provider",
    .options = static_opts,
    .user = &static_counts,
    .map = static_map,
    .unmap = static_unmap,
};

static const struct vmmem_provider static_provider_again = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-static",
    .description = "same name",
    .options = static_opts,
    .user = &static_counts,
    .map = static_map,
    .unmap = static_unmap,
};

static const struct vmmem_provider static_heap = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-heap",
    .description = "static provider named like good.so's",
    .options = static_opts,
    .user = &static_counts,
    .map = static_map,
    .unmap = static_unmap,
};

static const struct vmmem_provider static_badabi = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION + 1,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-static-badabi",
    .description = "wrong ABI",
    .options = static_opts,
    .user = &static_counts,
    .map = static_map,
    .unmap = static_unmap,
};

static void test_static_add(void)
{
    vmmem_registry *reg = new_reg();
    VT_ASSERT_RC(vmmem_registry_add(reg, &static_provider), 0);
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 1);
    CU_ASSERT_PTR_EQUAL(vmmem_registry_find(reg, "test-static"), &static_provider);
    struct vmmem_provider_info info;
    VT_ASSERT_RC(vmmem_registry_get(reg, 0, &info), 0);
    CU_ASSERT_STRING_EQUAL(info.name, "test-static");
    CU_ASSERT_STRING_EQUAL(info.description, "static test provider");
    CU_ASSERT_EQUAL(info.abi_version, VMMEM_PROVIDER_ABI_VERSION);
    CU_ASSERT_PTR_NULL(info.file);

    long maps = LOADC(&static_counts, maps);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-static:addr=1M,size=4K,color=red", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(LOADC(&static_counts, maps), maps + 1);
    CU_ASSERT_EQUAL(vmmem_write(m, (1u << 20) + 4090, "abcdefgh", 8), 6);
    char buf[8] = {0};
    CU_ASSERT_EQUAL(vmmem_read(m, (1u << 20) + 4090, buf, 8), 6);
    CU_ASSERT_EQUAL(memcmp(buf, "abcdef", 6), 0);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(LOADC(&static_counts, maps), LOADC(&static_counts, unmaps));

    /* duplicate static names; a plugin clashing with a static provider */
    VT_ASSERT_RC(vmmem_registry_add(reg, &static_provider_again), VMMEM_EDUPLICATE);
    CU_ASSERT_TRUE(msg_has("test-static"));
    VT_ASSERT_RC(vmmem_registry_add(reg, &static_provider), VMMEM_EDUPLICATE);
    VT_ASSERT_RC(vmmem_registry_add(reg, &static_heap), 0);
    load_fails(reg, "good.so", VMMEM_EDUPLICATE);
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-counted"));
    CU_ASSERT_PTR_EQUAL(vmmem_registry_find(reg, "test-heap"), &static_heap);
    VT_ASSERT_RC(vmmem_registry_add(reg, &static_badabi), VMMEM_EABI);
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-static-badabi"));
    VT_ASSERT_RC(vmmem_registry_add(reg, NULL), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 2);
    vmmem_registry_free(reg);

    /* static first in the other order: a loaded plugin's name blocks add */
    reg = new_reg();
    load_ok(reg, "good.so");
    VT_ASSERT_RC(vmmem_registry_add(reg, &static_heap), VMMEM_EDUPLICATE);
    CU_ASSERT_PTR_NOT_EQUAL(vmmem_registry_find(reg, "test-heap"), &static_heap);
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 2);
    vmmem_registry_free(reg);
    CU_ASSERT_EQUAL(LOADC(&static_counts, errors), 0);
}

/* A static provider that breaks its contract on request. */
static int contract_mode; /* 0 ok, 1 host NULL without access hooks, 2 returns > 0 */
static struct vt_counts contract_counts = {.magic = VT_COUNTS_MAGIC};

static int contract_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                        struct vmmem_mapping *out)
{
    int rc = static_map(p, spec, out);
    if (rc != 0)
        return rc;
    if (contract_mode == 1 && strcmp(p->name, "test-contract-nohost") == 0)
        out->host = NULL; /* priv still holds the memory, unmap frees it */
    if (contract_mode == 2) {
        static_unmap(p, spec, out);
        return 1;
    }
    return 0;
}

static const struct vmmem_provider contract_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-contract",
    .description = "breaks its contract on request",
    .options = static_opts,
    .user = &contract_counts,
    .map = contract_map,
    .unmap = static_unmap,
};

static void contract_unmap_keep_host(const struct vmmem_provider *p,
                                     const struct vmmem_region_spec *spec, struct vmmem_mapping *m)
{
    struct vt_counts *c = p->user;
    (void)spec;
    free(m->priv);
    __atomic_fetch_add(&c->unmaps, 1, __ATOMIC_SEQ_CST);
}

static const struct vmmem_provider contract_provider_nohost = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-contract-nohost",
    .description = "returns no host pointer and has no access hooks",
    .options = static_opts,
    .user = &contract_counts,
    .map = contract_map,
    .unmap = contract_unmap_keep_host,
};

static void test_provider_contract(void)
{
    vmmem_registry *reg = new_reg();
    VT_ASSERT_RC(vmmem_registry_add(reg, &contract_provider), 0);
    VT_ASSERT_RC(vmmem_registry_add(reg, &contract_provider_nohost), 0);
    vmmem_map *m = NULL;
    contract_mode = 0;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-contract:addr=0,size=4K", NULL), 0);
    vmmem_map_unref(m);

    /* host == NULL without begin/end_access: clean error, region unmapped */
    contract_mode = 1;
    long maps = LOADC(&contract_counts, maps), unmaps = LOADC(&contract_counts, unmaps);
    m = (vmmem_map *)reg;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg,
                                       "test-contract:addr=0,size=4K;"
                                       "test-contract-nohost:addr=4K,size=4K",
                                       NULL),
                 VMMEM_EPROVIDER);
    CU_ASSERT_TRUE(msg_has("test-contract-nohost"));
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    CU_ASSERT_EQUAL(LOADC(&contract_counts, maps) - maps, LOADC(&contract_counts, unmaps) - unmaps);

    /* a positive return is no success */
    contract_mode = 2;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-contract:addr=0,size=4K", NULL),
                 VMMEM_EPROVIDER);
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    CU_ASSERT_EQUAL(LOADC(&contract_counts, maps), LOADC(&contract_counts, unmaps));
    contract_mode = 0;
    vmmem_registry_free(reg);
}

/* ---- maps through a private registry ----------------------------------- */

static void test_unknown_provider(void)
{
    vmmem_registry *reg = new_reg();
    load_ok(reg, "good.so");
    struct vmmem_region_spec spec = {.provider = "nosuch", .addr = 0, .size = 4096};
    vmmem_map *m = (vmmem_map *)reg;
    VT_ASSERT_RC(vmmem_map_new(&m, reg, &spec, 1, NULL), VMMEM_ENO_PROVIDER);
    CU_ASSERT_TRUE(msg_has("nosuch"));
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    /* "mmap" is in the default registry, not in this one */
    spec.provider = "mmap";
    VT_ASSERT_RC(vmmem_map_new(&m, reg, &spec, 1, NULL), VMMEM_ENO_PROVIDER);
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "mmap:addr=0,size=4K", NULL), VMMEM_ENO_PROVIDER);
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    spec.provider = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, reg, &spec, 1, NULL), -EINVAL);
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    vmmem_registry_free(reg);
}

static void test_map_new_private(void)
{
    vmmem_registry *reg = new_reg();
    load_ok(reg, "good.so");
    struct vt_counts *heap = counts(reg, "test-heap");
    struct vt_counts *cnt = counts(reg, "test-counted");
    long hm = LOADC(heap, maps), hu = LOADC(heap, unmaps);
    long cm = LOADC(cnt, maps), cu = LOADC(cnt, unmaps);

    char tag[] = "abc";
    char fill[] = "0x42";
    struct vmmem_option opts[] = {{"tag", tag}, {"fill", fill}};
    struct vmmem_region_spec specs[2] = {
        {.provider = "test-heap", .addr = 0x10000, .size = 0x2000, .options = opts, .n_options = 2},
        {.provider = "test-counted", .addr = 0, .size = 0x1000},
    };
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, reg, specs, 2, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    /* specs are copied */
    memcpy(tag, "XYZ", 4);
    memcpy(fill, "0x00", 5);
    specs[0].addr = 0x99999;
    CU_ASSERT_EQUAL(LOADC(heap, maps), hm + 1);
    CU_ASSERT_EQUAL(LOADC(cnt, maps), cm + 1);
    CU_ASSERT_EQUAL_FATAL(vmmem_map_num_regions(m), 2);
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    CU_ASSERT_STRING_EQUAL(info.provider, "test-heap");
    CU_ASSERT_EQUAL(info.start, 0x10000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(info.spec);
    CU_ASSERT_EQUAL(info.spec->addr, 0x10000);
    CU_ASSERT_STRING_EQUAL(info.spec->provider, "test-heap");
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(info.spec, "tag"), "abc");
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(info.spec, "fill"), "0x42");
    CU_ASSERT_EQUAL(info.fd, -1);
    CU_ASSERT_EQUAL(info.hugetlbfs, 0);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
    vmmem_region_get_info(vmmem_map_region(m, 0), &info);
    CU_ASSERT_STRING_EQUAL(info.provider, "test-counted");

    uint8_t b[3] = {0};
    VT_ASSERT_RC(vmmem_read_slice(m, 0x11ffd, b, 3), 0);
    CU_ASSERT_TRUE(b[0] == 0x42 && b[1] == 0x42 && b[2] == 0x42);
    VT_ASSERT_RC(vmmem_write_slice(m, 0xffe, "xy", 2), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, 0xffe, b, 2), 0);
    CU_ASSERT_EQUAL(memcmp(b, "xy", 2), 0);

    /* a second reference keeps the regions */
    vmmem_map *m2 = vmmem_map_ref(m);
    CU_ASSERT_PTR_EQUAL(m2, m);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(LOADC(heap, unmaps), hu);
    VT_ASSERT_RC(vmmem_read_slice(m2, 0xffe, b, 2), 0);
    vmmem_map_unref(m2);
    CU_ASSERT_EQUAL(LOADC(heap, unmaps), hu + 1);
    CU_ASSERT_EQUAL(LOADC(cnt, unmaps), cu + 1);
    CU_ASSERT_EQUAL(LOADC(heap, errors), 0);
    CU_ASSERT_EQUAL(LOADC(cnt, errors), 0);
    vmmem_registry_free(reg);
}

static void test_map_new_option_checks(void)
{
    /* option descriptors are enforced for spec arrays as for config strings */
    vmmem_registry *reg = new_reg();
    load_ok(reg, "good.so");
    struct vt_counts *heap = counts(reg, "test-heap");
    long calls = LOADC(heap, map_calls);
    struct vmmem_option bad[] = {{"tag", "a"}, {"bogus", "1"}};
    struct vmmem_option dup[] = {{"tag", "a"}, {"tag", "b"}};
    struct vmmem_option flagval[] = {{"tag", "a"}, {"zero", "1"}};
    struct vmmem_option none[] = {{"zero", ""}};
    struct {
        struct vmmem_option *o;
        size_t n;
        int code;
        const char *quote;
    } cases[] = {
        {bad, 2, VMMEM_EUNKNOWN_KEY, "bogus"},
        {dup, 2, VMMEM_EDUPLICATE_KEY, "tag"},
        {none, 1, VMMEM_EMISSING_KEY, "tag"},
        {flagval, 2, VMMEM_EBAD_VALUE, "zero"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vmmem_region_spec spec = {.provider = "test-heap",
                                         .addr = 0,
                                         .size = 4096,
                                         .options = cases[i].o,
                                         .n_options = cases[i].n};
        vmmem_map *m = (vmmem_map *)reg;
        VT_ASSERT_RC(vmmem_map_new(&m, reg, &spec, 1, NULL), cases[i].code);
        CU_ASSERT_TRUE(msg_has(cases[i].quote));
        CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    }
    CU_ASSERT_EQUAL(LOADC(heap, map_calls), calls);
    vmmem_registry_free(reg);
}

static void test_map_from_config_private(void)
{
    vmmem_registry *reg = new_reg();
    load_ok(reg, "good.so");
    struct vt_counts *heap = counts(reg, "test-heap");
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg,
                                       "test-heap:addr=8K,size=4K,tag=t,zero;"
                                       "test-heap:addr=0,size=4K,tag=u",
                                       NULL),
                 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 2);
    uint8_t b = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, 8192, &b, 1), 0);
    CU_ASSERT_EQUAL(b, 0);
    VT_ASSERT_RC(vmmem_read_obj(m, 100, &b, 1), 0);
    CU_ASSERT_EQUAL(b, 0xA5);
    VT_ASSERT_RC(vmmem_read_obj(m, 4096, &b, 1), VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(LOADC(heap, maps), LOADC(heap, unmaps));
    vmmem_registry_free(reg);
}

static bool still_loaded(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL)
        return false;
    dlclose(h);
    return true;
}

static void test_map_outlives_registry(void)
{
    /* lazy.so: every access calls into the plugin, so an early dlclose
     * would crash here rather than pass by luck */
    char *path = plugin_path("lazy.so");
    vmmem_registry *reg = new_reg();
    load_ok(reg, "lazy.so");
    struct vt_counts *lz = counts(reg, "test-lazy");
    long begins = LOADC(lz, begins);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-lazy:addr=0,size=8K", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_registry_free(reg);
    CU_ASSERT_TRUE(still_loaded(path));
    CU_ASSERT_EQUAL(vmmem_write(m, 100, "hello", 5), 5);
    char buf[6] = {0};
    CU_ASSERT_EQUAL(vmmem_read(m, 100, buf, 5), 5);
    CU_ASSERT_STRING_EQUAL(buf, "hello");
    CU_ASSERT_TRUE(LOADC(lz, begins) >= begins + 2);
    CU_ASSERT_EQUAL(LOADC(lz, begins), LOADC(lz, ends));
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 0), &info);
    CU_ASSERT_STRING_EQUAL(info.provider, "test-lazy"); /* name still valid */
    long unmaps = LOADC(lz, unmaps);
    vmmem_map *m2 = vmmem_map_ref(m);
    vmmem_map_unref(m);
    CU_ASSERT_TRUE(still_loaded(path));
    CU_ASSERT_EQUAL(LOADC(lz, errors), 0);
    CU_ASSERT_EQUAL(LOADC(lz, unmaps), unmaps);
    vmmem_map_unref(m2); /* unmaps through the plugin, then may unload it */
    free(path);

    /* same with an ordinary provider */
    reg = new_reg();
    load_ok(reg, "good.so");
    m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-counted:addr=0,size=4K", NULL), 0);
    vmmem_registry_free(reg);
    CU_ASSERT_EQUAL(vmmem_write(m, 0, "x", 1), 1);
    vmmem_map_unref(m);
}

/* ---- failing map midway ----------------------------------------------- */

static void test_failmap_midway(void)
{
    vmmem_registry *reg = new_reg();
    load_ok(reg, "failmap.so");
    load_ok(reg, "good.so");
    struct vt_counts *fc = counts(reg, "test-failmap");
    struct vt_counts *hc = counts(reg, "test-heap");
    long calls = LOADC(fc, map_calls), maps = LOADC(fc, maps), unmaps = LOADC(fc, unmaps);

    struct vmmem_region_spec specs[3] = {
        {.provider = "test-failmap", .addr = 0, .size = 0x1000},
        {.provider = "test-failmap", .addr = 0x10000, .size = 0x1000},
        {.provider = "test-failmap", .addr = 0x20000, .size = 0x1000},
    };
    __atomic_store_n(&fc->fail_at, calls + 2, __ATOMIC_SEQ_CST);
    vmmem_map *m = (vmmem_map *)reg;
    VT_ASSERT_RC(vmmem_map_new(&m, reg, specs, 3, NULL), -EIO);
    CU_ASSERT_TRUE(msg_has("injected failure"));
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    CU_ASSERT_EQUAL(LOADC(fc, map_calls), calls + 2); /* stopped at the failure */
    CU_ASSERT_EQUAL(LOADC(fc, maps), maps + 1);
    CU_ASSERT_EQUAL(LOADC(fc, unmaps), unmaps + 1); /* the first one undone */

    /* mixed providers: whatever was mapped is undone, whoever mapped it */
    calls = LOADC(fc, map_calls);
    long hmaps = LOADC(hc, maps), hunmaps = LOADC(hc, unmaps);
    __atomic_store_n(&fc->fail_at, calls + 2, __ATOMIC_SEQ_CST);
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg,
                                       "test-failmap:addr=0x20000,size=4K;"
                                       "test-heap:addr=0,size=4K,tag=a;"
                                       "test-failmap:addr=0x10000,size=4K",
                                       NULL),
                 -EIO);
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)reg);
    CU_ASSERT_EQUAL(LOADC(fc, map_calls), calls + 2);
    CU_ASSERT_EQUAL(LOADC(fc, maps), LOADC(fc, unmaps));
    CU_ASSERT_EQUAL(LOADC(hc, maps) - hmaps, LOADC(hc, unmaps) - hunmaps);

    /* without injection the same specs work */
    __atomic_store_n(&fc->fail_at, 0, __ATOMIC_SEQ_CST);
    m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, reg, specs, 3, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 3);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(LOADC(fc, maps), LOADC(fc, unmaps));
    CU_ASSERT_EQUAL(LOADC(fc, errors), 0);
    CU_ASSERT_EQUAL(LOADC(hc, errors), 0);
    vmmem_registry_free(reg);
}

/* ---- map-on-access provider ------------------------------------------- */

static void check_balanced(struct vt_counts *lz, int line)
{
    long b = LOADC(lz, begins), e = LOADC(lz, ends), err = LOADC(lz, errors);
    if (b != e || err != 0)
        fprintf(stdout, "\n    line %d: begins %ld ends %ld errors %ld\n", line, b, e, err);
    CU_ASSERT_EQUAL(b, e);
    CU_ASSERT_EQUAL(err, 0);
}
#define BALANCED(lz) check_balanced((lz), __LINE__)

static void test_lazy_accesses(void)
{
    vmmem_registry *reg = new_reg();
    load_ok(reg, "good.so");
    load_ok(reg, "lazy.so");
    struct vt_counts *lz = counts(reg, "test-lazy");
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg,
                                       "test-heap:addr=0,size=4K,tag=a,zero;"
                                       "test-lazy:addr=4K,size=8K;"
                                       "test-lazy:addr=16K,size=4K,ro",
                                       NULL),
                 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    CU_ASSERT_STRING_EQUAL(info.provider, "test-lazy");
    CU_ASSERT_PTR_NULL(info.host);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
    vmmem_region_get_info(vmmem_map_region(m, 2), &info);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_READ);
    long b0 = LOADC(lz, begins);

    /* read/write across the heap -> lazy seam */
    const char msg[] = "0123456789abcdef";
    CU_ASSERT_EQUAL(vmmem_write(m, 4096 - 8, msg, 16), 16);
    char buf[64] = {0};
    CU_ASSERT_EQUAL(vmmem_read(m, 4096 - 8, buf, 16), 16);
    CU_ASSERT_EQUAL(memcmp(buf, msg, 16), 0);
    CU_ASSERT_TRUE(LOADC(lz, begins) >= b0 + 2);
    BALANCED(lz);

    /* slices and objects inside the lazy region */
    VT_ASSERT_RC(vmmem_write_slice(m, 4096 + 100, msg, 16), 0);
    memset(buf, 0, sizeof buf);
    VT_ASSERT_RC(vmmem_read_slice(m, 4096 + 100, buf, 16), 0);
    CU_ASSERT_EQUAL(memcmp(buf, msg, 16), 0);
    uint64_t v = 0x1122334455667788ull, w = 0;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 4096 + 8 * 20, &v), 0);
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 4096 + 8 * 20, &w), 0);
    CU_ASSERT_EQUAL(w, v);
    uint32_t le = 0;
    VT_ASSERT_RC(vmmem_write_le32(m, 12 * 1024 - 4, 0xcafef00d), 0);
    VT_ASSERT_RC(vmmem_read_le32(m, 12 * 1024 - 4, &le), 0);
    CU_ASSERT_EQUAL(le, 0xcafef00d);
    BALANCED(lz);

    /* no host address, no atomics */
    void *host = (void *)buf;
    size_t len = 4;
    VT_ASSERT_RC(vmmem_map_host_address(m, 4096 + 16, &host, &len), VMMEM_ENO_HOST_ADDRESS);
    VT_ASSERT_RC(vmmem_map_host_address(m, 16, &host, &len), 0);
    CU_ASSERT_PTR_NOT_NULL(host);
    VT_ASSERT_RC(vmmem_load(m, 4096 + 8, 8, &w, VMMEM_SEQ_CST), VMMEM_ENO_HOST_ADDRESS);
    VT_ASSERT_RC(vmmem_store(m, 4096 + 8, 4, 1, VMMEM_SEQ_CST), VMMEM_ENO_HOST_ADDRESS);
    BALANCED(lz);

    /* a slice holds the access until released */
    vmmem_slice s;
    long b1 = LOADC(lz, begins);
    VT_ASSERT_RC(vmmem_get_slice(m, 4096 + 100, 50, &s), 0);
    CU_ASSERT_PTR_NOT_NULL(s.ptr);
    CU_ASSERT_EQUAL(s.len, 50);
    CU_ASSERT_PTR_NOT_NULL(s.guard);
    CU_ASSERT_EQUAL(LOADC(lz, begins), b1 + 1);
    CU_ASSERT_EQUAL(LOADC(lz, ends), b1);
    memset(buf, 0, sizeof buf);
    VT_ASSERT_RC(vmmem_slice_read(&s, 0, buf, 16), 0);
    CU_ASSERT_EQUAL(memcmp(buf, msg, 16), 0);
    vmmem_slice sub;
    VT_ASSERT_RC(vmmem_slice_subslice(&s, 40, 10, &sub), 0);
    VT_ASSERT_RC(vmmem_slice_write(&sub, 0, "ZZ", 2), 0);
    CU_ASSERT_EQUAL(LOADC(lz, begins), b1 + 1); /* derived slices borrow */
    vmmem_slice_release(&s);
    CU_ASSERT_PTR_NULL(s.ptr);
    BALANCED(lz);
    VT_ASSERT_RC(vmmem_read_slice(m, 4096 + 140, buf, 2), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "ZZ", 2), 0);
    VT_ASSERT_RC(vmmem_get_slice(m, 4096 + 100, 8 * 1024, &s), VMMEM_ECROSSES_REGION);
    BALANCED(lz);

    /* iterate a range that spans both providers */
    vmmem_slice_iter it;
    int rc, n = 0;
    size_t total = 0;
    vmmem_slices_begin(&it, m, 0, 12 * 1024);
    while ((rc = vmmem_slices_next(&it, &s)) > 0) {
        n++;
        total += s.len;
        vmmem_slice_release(&s);
    }
    VT_ASSERT_RC(rc, 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(total, 12 * 1024);
    BALANCED(lz);

    /* partial at the hole after the lazy region */
    CU_ASSERT_EQUAL(vmmem_write(m, 12 * 1024 - 4, msg, 16), 4);
    CU_ASSERT_EQUAL(vmmem_read(m, 12 * 1024 - 4, buf, 16), 4);
    VT_ASSERT_RC(vmmem_write_slice(m, 12 * 1024 - 4, msg, 16), VMMEM_EPARTIAL);
    BALANCED(lz);

    /* read-only map-on-access region */
    VT_ASSERT_RC(vmmem_write(m, 16 * 1024, msg, 4), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_write_slice(m, 16 * 1024 + 8, msg, 4), VMMEM_EREAD_ONLY);
    memset(buf, 0x55, 8);
    CU_ASSERT_EQUAL(vmmem_read(m, 16 * 1024, buf, 8), 8);
    CU_ASSERT_EQUAL(buf[0] | buf[7], 0);
    BALANCED(lz); /* errors == 0: no write access was ever asked for */

    /* fd I/O straight into and out of the lazy region */
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 4096 + 100, fds[1], 16), 16);
    memset(buf, 0, sizeof buf);
    CU_ASSERT_EQUAL(read(fds[0], buf, sizeof buf), 16);
    CU_ASSERT_EQUAL(memcmp(buf, msg, 16), 0);
    CU_ASSERT_EQUAL(write(fds[1], "fromfd", 6), 6);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 4096 + 3000, fds[0], 6), 6);
    VT_ASSERT_RC(vmmem_read_slice(m, 4096 + 3000, buf, 6), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "fromfd", 6), 0);
    close(fds[0]);
    close(fds[1]);
    BALANCED(lz);

    long unmaps = LOADC(lz, unmaps);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(LOADC(lz, unmaps), unmaps + 2);
    CU_ASSERT_EQUAL(LOADC(lz, maps), LOADC(lz, unmaps));
    BALANCED(lz);
    vmmem_registry_free(reg);
}

/* ---- discovery -------------------------------------------------------- */

struct env_save {
    char *value;
};

static void env_save(struct env_save *s)
{
    const char *v = getenv("VMMEM_PLUGIN_PATH");
    s->value = v ? strdup(v) : NULL;
}

static void env_restore(struct env_save *s)
{
    if (s->value) {
        setenv("VMMEM_PLUGIN_PATH", s->value, 1);
        free(s->value);
    } else {
        unsetenv("VMMEM_PLUGIN_PATH");
    }
}

/* Number of "*.so" files in dir (-1 when it cannot be read). */
static int count_so(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 3 && strcmp(e->d_name + l - 3, ".so") == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* .so files in the compiled-in install directory (the last entry of
 * vmmem_plugin_dir()); discovery scans it after VMMEM_PLUGIN_PATH. */
static int install_dir_plugins(void)
{
    const char *dirs = vmmem_plugin_dir();
    if (dirs == NULL)
        return 0;
    const char *last = strrchr(dirs, ':');
    int n = count_so(last ? last + 1 : dirs);
    return n < 0 ? 0 : n;
}

/* Copy file src to dst (mode 0644). */
static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int rc = in && out ? 0 : -1;
    char buf[65536];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc == 0 ? chmod(dst, 0644) : rc;
}

/* Two copies of one plugin under the same name in two directories of the
 * path: the first wins, the second is shadowed (not opened, no failure),
 * and discovery returns the number loaded. */
static void test_discover_shadowed(void)
{
    char *lazy = plugin_path("lazy.so");
    char tmpl[] = "/tmp/vt-shadow-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpl));
    char a[PATH_MAX], b[PATH_MAX], fa[PATH_MAX + 16], fb[PATH_MAX + 16];
    snprintf(a, sizeof a, "%s/a", tmpl);
    snprintf(b, sizeof b, "%s/b", tmpl);
    snprintf(fa, sizeof fa, "%s/vmmem-lazy.so", a);
    snprintf(fb, sizeof fb, "%s/vmmem-lazy.so", b);
    CU_ASSERT_EQUAL_FATAL(mkdir(a, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(b, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(copy_file(lazy, fa), 0);
    CU_ASSERT_EQUAL_FATAL(copy_file(lazy, fb), 0);

    struct env_save saved;
    env_save(&saved);
    char path[2 * PATH_MAX + 2];
    snprintf(path, sizeof path, "%s:%s", a, b);
    setenv("VMMEM_PLUGIN_PATH", path, 1);
    vmmem_registry *reg = new_reg();
    int rc = vmmem_registry_discover(reg);
    env_restore(&saved);

    /* a count, not VMMEM_EDUPLICATE; the staged plugins beside the library
     * load too */
    CU_ASSERT_TRUE(rc >= 1);
    if (install_dir_plugins() == 0) {
        CU_ASSERT_EQUAL(vmmem_registry_failure_count(reg), 0);
        /* vmmem-lazy.so and the staged plugins (../plugins beside the library) */
        VT_ASSERT_RC(rc, 1 + count_so(getenv("VMMEM_PLUGIN_PATH")));
    }
    CU_ASSERT_EQUAL_FATAL(vmmem_registry_shadowed_count(reg), 1);
    struct vmmem_shadowed_plugin sp;
    VT_ASSERT_RC(vmmem_registry_shadowed(reg, 0, &sp), 0);
    CU_ASSERT_STRING_EQUAL(sp.file, fb);
    CU_ASSERT_STRING_EQUAL(sp.loaded, fa);
    VT_ASSERT_RC(vmmem_registry_shadowed(reg, 1, &sp), -ERANGE);
    VT_ASSERT_RC(vmmem_registry_shadowed(reg, 0, NULL), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_registry_shadowed_count(NULL), 0);
    /* the provider came from the first directory */
    bool found = false;
    for (size_t i = 0; i < vmmem_registry_count(reg); i++) {
        struct vmmem_provider_info info;
        VT_ASSERT_RC(vmmem_registry_get(reg, i, &info), 0);
        if (strcmp(info.name, "test-lazy") == 0) {
            found = true;
            CU_ASSERT_STRING_EQUAL(info.file, fa);
        }
    }
    CU_ASSERT_TRUE(found);
    vmmem_registry_free(reg);

    /* a second, different plugin with the same provider name in another
     * file name is still a failure (VMMEM_EDUPLICATE) */
    snprintf(fb, sizeof fb, "%s/vmmem-lazy2.so", b);
    CU_ASSERT_EQUAL_FATAL(copy_file(lazy, fb), 0);
    env_save(&saved);
    setenv("VMMEM_PLUGIN_PATH", path, 1);
    reg = new_reg();
    rc = vmmem_registry_discover(reg);
    env_restore(&saved);
    VT_ASSERT_RC(rc, VMMEM_EDUPLICATE);
    CU_ASSERT_EQUAL(vmmem_registry_shadowed_count(reg), 1);
    vmmem_registry_free(reg);

    unlink(fb);
    snprintf(fb, sizeof fb, "%s/vmmem-lazy.so", b);
    unlink(fb);
    unlink(fa);
    rmdir(a);
    rmdir(b);
    rmdir(tmpl);
    free(lazy);
}

/* "unknown provider" says where discovery looked and why it may have
 * missed: failed files, ignored relative entries, the search path. */
static void test_unknown_provider_hint(void)
{
    const char *tdir = getenv("VMMEM_TEST_PLUGIN_DIR");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tdir);
    struct env_save saved;
    env_save(&saved);
    char path[8192];
    snprintf(path, sizeof path, "rel/dir:/nonexistent-vt-dir::./x:%s", tdir);
    setenv("VMMEM_PLUGIN_PATH", path, 1);
    vmmem_registry *reg = new_reg();
    CU_ASSERT_TRUE(vmmem_registry_discover(reg) < 0); /* the broken test plugins */
    env_restore(&saved);
    size_t nf = vmmem_registry_failure_count(reg);
    CU_ASSERT_TRUE(nf > 5);

    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "mmap:addr=0,size=4K; shm:addr=4K,size=4K", NULL),
                 VMMEM_ENO_PROVIDER);
    CU_ASSERT_PTR_NULL(m);
    const char *msg = vmmem_last_message();
    char want[256];
    snprintf(want, sizeof want,
             "unknown provider 'shm' (region 1, column 22); %zu plugin files failed to load; "
             "ignored relative VMMEM_PLUGIN_PATH entries 'rel/dir:./x'; `vmmem providers` lists "
             "what was found; searched /nonexistent-vt-dir:",
             nf);
    if (strncmp(msg, want, strlen(want)) != 0)
        fprintf(stdout, "\n    got  '%s'\n    want '%s...'\n", msg, want);
    CU_ASSERT_TRUE(strncmp(msg, want, strlen(want)) == 0);
    CU_ASSERT_EQUAL(vmmem_last_error()->column, 22);
    vmmem_registry_free(reg);

    /* a registry the program filled itself: no search hint */
    reg = new_reg();
    load_ok(reg, "lazy.so");
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "shm:addr=0,size=4K", NULL), VMMEM_ENO_PROVIDER);
    CU_ASSERT_STRING_EQUAL(vmmem_last_message(), "unknown provider 'shm' (region 0, column 1)");
    struct vmmem_region_spec spec = {.provider = "shm", .addr = 0, .size = 4096};
    VT_ASSERT_RC(vmmem_map_new(&m, reg, &spec, 1, NULL), VMMEM_ENO_PROVIDER);
    CU_ASSERT_STRING_EQUAL(vmmem_last_message(), "unknown provider 'shm' (region 0)");
    CU_ASSERT_EQUAL(vmmem_last_error()->column, -1);
    vmmem_registry_free(reg);
}

/* The default registry can be freed (leak checkers) and is made again on
 * next use; maps built from it outlive it. */
static void test_default_registry_release(void)
{
    vmmem_registry *d = vmmem_default_registry();
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=4K", NULL), 0);
    vmmem_default_registry_release();
    vmmem_default_registry_release(); /* twice: a no-op */
    CU_ASSERT_EQUAL(vmmem_write(m, 0, "abcd", 4), 4); /* the map keeps its plugin */
    char buf[4];
    CU_ASSERT_EQUAL(vmmem_read(m, 0, buf, 4), 4);
    CU_ASSERT_EQUAL(memcmp(buf, "abcd", 4), 0);
    vmmem_map_unref(m);
    /* made and discovered again */
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(vmmem_default_registry(), "mmap"));
    VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=4K", NULL), 0);
    vmmem_map_unref(m);
    vmmem_default_registry_release();
}

static void test_discover_plugin_dir(void)
{
    const char *tdir = getenv("VMMEM_TEST_PLUGIN_DIR");
    const char *stage = getenv("VMMEM_PLUGIN_PATH");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tdir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stage);
    if (install_dir_plugins() != 0) {
        fprintf(stdout, "\n    plugins installed in %s; discovery counts not exact\n",
                vmmem_plugin_dir());
    }
    struct env_save saved;
    env_save(&saved);
    char path[8192];
    snprintf(path, sizeof path, "relative/dir::%s:%s", tdir, stage);
    setenv("VMMEM_PLUGIN_PATH", path, 1);

    vmmem_registry *reg = new_reg();
    int rc = vmmem_registry_discover(reg);
    env_restore(&saved);

    static const struct {
        const char *file;
        int code; /* <0: fails so; 0: loads; 1: may load or fail (nomap);
                     2: good/dup pair; 3: oldsize (checked by "older struct_size") */
    } expect[] = {
        {"badabi.so", VMMEM_EABI},
        {"badabi_provider.so", VMMEM_EABI},
        {"badplugsize.so", VMMEM_EABI},
        {"badsize.so", VMMEM_EABI},
        {"dup_self.so", VMMEM_EDUPLICATE},
        {"garbage.so", VMMEM_ENOT_PLUGIN},
        {"noentry.so", VMMEM_ENOT_PLUGIN},
        {"refuse.so", -EPERM},
        {"nomap.so", 1},
        {"good.so", 2},
        {"dup.so", 2},
        {"failmap.so", 0},
        {"lazy.so", 0},
        {"oldsize.so", 3},
    };
    enum { NEXP = sizeof expect / sizeof expect[0] };
    int seen[NEXP] = {0};
    size_t nf = vmmem_registry_failure_count(reg);
    size_t dirlen = strlen(tdir);
    for (size_t i = 0; i < nf; i++) {
        struct vmmem_load_failure f;
        memset(&f, 0, sizeof f);
        VT_ASSERT_RC(vmmem_registry_failure(reg, i, &f), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f.file);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f.message);
        if (i == 0)
            VT_ASSERT_RC(rc, f.code);
        /* absolute file name inside the test plugin dir */
        CU_ASSERT_TRUE(strncmp(f.file, tdir, dirlen) == 0 && f.file[dirlen] == '/');
        const char *base = strrchr(f.file, '/');
        base = base ? base + 1 : f.file;
        CU_ASSERT_PTR_NOT_NULL(strstr(f.message, base));
        bool known = false;
        for (size_t j = 0; j < NEXP; j++) {
            if (strcmp(expect[j].file, base) != 0)
                continue;
            known = true;
            seen[j]++;
            if (expect[j].code < 0) {
                if (f.code != expect[j].code)
                    fprintf(stdout, "\n    %s: %s (%s)\n", base, vmmem_err_name(f.code), f.message);
                CU_ASSERT_EQUAL(f.code, expect[j].code);
            } else if (expect[j].code == 2) {
                CU_ASSERT_EQUAL(f.code, VMMEM_EDUPLICATE);
            } else if (expect[j].code == 1) {
                CU_ASSERT_TRUE(f.code == VMMEM_EABI || f.code == VMMEM_EPROVIDER);
            } else if (expect[j].code == 3) {
                CU_ASSERT_EQUAL(f.code, VMMEM_EABI);
            } else {
                fprintf(stdout, "\n    %s failed: %s\n", base, f.message);
                CU_FAIL("a good plugin failed discovery");
            }
        }
        if (!known)
            fprintf(stdout, "\n    unexpected failure: %s: %s\n", f.file, f.message);
        CU_ASSERT_TRUE(known);
    }
    struct vmmem_load_failure f;
    VT_ASSERT_RC(vmmem_registry_failure(reg, nf, &f), -ERANGE);
    CU_ASSERT_TRUE(rc < 0);
    size_t want_failures = 0;
    int pair = 0;
    for (size_t j = 0; j < NEXP; j++) {
        if (expect[j].code < 0) {
            CU_ASSERT_EQUAL(seen[j], 1);
            want_failures++;
        } else if (expect[j].code == 2) {
            pair += seen[j];
        } else if (expect[j].code == 1 || expect[j].code == 3) {
            want_failures += (size_t)seen[j];
        }
    }
    CU_ASSERT_EQUAL(pair, 1); /* exactly one of good.so / dup.so loses */
    CU_ASSERT_EQUAL(nf, want_failures + 1);

    /* what loaded */
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "mmap"));
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "test-heap"));
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "test-lazy"));
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "test-failmap"));
    bool good_loaded = vmmem_registry_find(reg, "test-counted") != NULL;
    bool dup_loaded = vmmem_registry_find(reg, "test-dupother") != NULL;
    CU_ASSERT_TRUE(good_loaded != dup_loaded);
    static const char *const absent[] = {"test-badabi",   "test-abiok",       "test-abibad",
                                         "test-badsize",  "test-badplugsize", "test-dupself",
                                         "test-dupself-a"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, absent[i]));

    /* info names the file it came from */
    char lazy[8192];
    snprintf(lazy, sizeof lazy, "%s/lazy.so", tdir);
    bool found = false;
    for (size_t i = 0; i < vmmem_registry_count(reg); i++) {
        struct vmmem_provider_info info;
        VT_ASSERT_RC(vmmem_registry_get(reg, i, &info), 0);
        if (strcmp(info.name, "test-lazy") == 0) {
            found = true;
            CU_ASSERT_PTR_NOT_NULL_FATAL(info.file);
            CU_ASSERT_STRING_EQUAL(info.file, lazy);
        }
    }
    CU_ASSERT_TRUE(found);

    /* discovered providers work */
    vmmem_map *m = NULL;
    VT_ASSERT_RC(
        vmmem_map_from_config(&m, reg, "test-lazy:addr=0,size=4K;mmap:addr=4K,size=4K", NULL), 0);
    CU_ASSERT_EQUAL(vmmem_write(m, 4090, "0123456789", 10), 10);
    vmmem_map_unref(m);
    vmmem_registry_free(reg);
}

static void test_discover_relative_ignored(void)
{
    const char *stage = getenv("VMMEM_PLUGIN_PATH");
    CU_ASSERT_PTR_NOT_NULL_FATAL(stage);
    char *stage_copy = strdup(stage);
    int n_stage = count_so(stage_copy);
    CU_ASSERT_TRUE_FATAL(n_stage >= 1);
    char *lazy = plugin_path("lazy.so");
    char cwd[PATH_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
    char tmpl[] = "/tmp/vt-registry-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmpl));
    char rel[PATH_MAX], link[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/rel", tmpl);
    snprintf(link, sizeof link, "%s/rel/lazy.so", tmpl);
    CU_ASSERT_EQUAL_FATAL(mkdir(rel, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(lazy, link), 0);
    CU_ASSERT_EQUAL_FATAL(chdir(tmpl), 0);

    struct env_save saved;
    env_save(&saved);
    char path[8192];
    snprintf(path, sizeof path, "rel:./rel:%s:", stage_copy);
    setenv("VMMEM_PLUGIN_PATH", path, 1);
    vmmem_registry *reg = new_reg();
    int rc = vmmem_registry_discover(reg);
    env_restore(&saved);
    CU_ASSERT_EQUAL(chdir(cwd), 0);

    int extra = install_dir_plugins();
    if (extra == 0) {
        VT_ASSERT_RC(rc, n_stage); /* the number of plugins loaded */
        CU_ASSERT_EQUAL(vmmem_registry_failure_count(reg), 0);
    }
    CU_ASSERT_PTR_NULL(vmmem_registry_find(reg, "test-lazy"));
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "mmap"));
    vmmem_registry_free(reg);

    /* the absolute form of the same directory is used */
    env_save(&saved);
    setenv("VMMEM_PLUGIN_PATH", rel, 1);
    reg = new_reg();
    rc = vmmem_registry_discover(reg);
    env_restore(&saved);
    if (extra == 0)
        VT_ASSERT_RC(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(vmmem_registry_find(reg, "test-lazy"));
    vmmem_registry_free(reg);

    unlink(link);
    rmdir(rel);
    rmdir(tmpl);
    free(lazy);
    free(stage_copy);
}

static void test_plugin_dir_list(void)
{
    /* "the directories discovery searches, in order": the absolute entries
     * of VMMEM_PLUGIN_PATH, then the compiled-in install directory, then
     * ../plugins beside the loaded library */
    struct env_save saved;
    env_save(&saved);
    unsetenv("VMMEM_PLUGIN_PATH");
    const char *d = vmmem_plugin_dir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char *install = strdup(d);
    CU_ASSERT_EQUAL(install[0], '/');
    /* exactly two entries: the install dir and <libdir>/../plugins */
    char *colon = strchr(install, ':');
    CU_ASSERT_PTR_NOT_NULL_FATAL(colon);
    CU_ASSERT_PTR_NULL(strchr(colon + 1, ':'));
    CU_ASSERT_EQUAL(colon[1], '/');
    size_t tl = strlen(colon + 1);
    CU_ASSERT_TRUE(tl > 11 && strcmp(colon + 1 + tl - 11, "/../plugins") == 0);
    setenv("VMMEM_PLUGIN_PATH", "rel:/vt/a::./x:/vt/b:", 1);
    d = vmmem_plugin_dir();
    env_restore(&saved);
    char want[8192];
    snprintf(want, sizeof want, "/vt/a:/vt/b:%s", install);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    if (strcmp(d, want) != 0)
        fprintf(stdout, "\n    vmmem_plugin_dir() = \"%s\", want \"%s\"\n", d, want);
    CU_ASSERT_STRING_EQUAL(d, want);
    free(install);
}

static void test_discover_nothing(void)
{
    struct env_save saved;
    env_save(&saved);
    setenv("VMMEM_PLUGIN_PATH", "/nonexistent-vt-dir:/nonexistent-vt-dir2", 1);
    vmmem_registry *reg = new_reg();
    int rc = vmmem_registry_discover(reg);
    env_restore(&saved);
    if (install_dir_plugins() == 0) {
        VT_ASSERT_RC(rc, 0);
        CU_ASSERT_EQUAL(vmmem_registry_count(reg), 0);
        CU_ASSERT_EQUAL(vmmem_registry_failure_count(reg), 0);
    } else {
        CU_ASSERT_TRUE(rc >= 0);
    }
    vmmem_registry_free(reg);
}

/* ---- threads ---------------------------------------------------------- */

#define N_THREADS 4
#define N_ROUNDS 25

struct thr {
    vmmem_registry *reg; /* shared, or NULL: each round uses its own */
    const char *path;
    int id;
    int load_ok, load_dup, load_other, not_found, map_fail, data_bad;
};

static void thread_round(struct thr *t, vmmem_registry *reg, int round)
{
    int rc = vmmem_registry_load(reg, t->path);
    if (rc == 0)
        t->load_ok++;
    else if (rc == VMMEM_EDUPLICATE)
        t->load_dup++;
    else
        t->load_other++;
    if (vmmem_registry_find(reg, "test-heap") == NULL ||
        vmmem_registry_find(reg, "test-counted") == NULL)
        t->not_found++;
    char cfg[256];
    snprintf(cfg, sizeof cfg, "test-heap:addr=0,size=8K,tag=t%d_%d;test-counted:addr=8K,size=4K",
             t->id, round);
    vmmem_map *m = NULL;
    rc = vmmem_map_from_config(&m, reg, cfg, NULL);
    if (rc != 0) {
        t->map_fail++;
        return;
    }
    uint64_t v = ((uint64_t)t->id << 32) | (unsigned)round, w = 0;
    if (VMMEM_WRITE_OBJ(m, 8192 - 4, &v) != 0 || VMMEM_READ_OBJ(m, 8192 - 4, &w) != 0 || v != w)
        t->data_bad++;
    vmmem_map_unref(m);
}

static void *thread_shared(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < N_ROUNDS; i++)
        thread_round(t, t->reg, i);
    return NULL;
}

static void *thread_private(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < N_ROUNDS; i++) {
        vmmem_registry *reg = NULL;
        if (vmmem_registry_new(&reg) != 0) {
            t->load_other++;
            continue;
        }
        thread_round(t, reg, i);
        vmmem_registry_free(reg);
    }
    return NULL;
}

static void run_threads(vmmem_registry *shared, void *(*fn)(void *), struct thr *t)
{
    pthread_t tid[N_THREADS];
    char *path = plugin_path("good.so");
    for (int i = 0; i < N_THREADS; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].reg = shared;
        t[i].path = path;
        t[i].id = i;
    }
    for (int i = 0; i < N_THREADS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[i], NULL, fn, &t[i]), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(tid[i], NULL);
    free(path);
}

static void test_threads_shared_registry(void)
{
    vmmem_registry *reg = new_reg();
    struct thr t[N_THREADS];
    run_threads(reg, thread_shared, t);
    int ok = 0, dup = 0;
    for (int i = 0; i < N_THREADS; i++) {
        ok += t[i].load_ok;
        dup += t[i].load_dup;
        CU_ASSERT_EQUAL(t[i].load_other, 0);
        CU_ASSERT_EQUAL(t[i].not_found, 0);
        CU_ASSERT_EQUAL(t[i].map_fail, 0);
        CU_ASSERT_EQUAL(t[i].data_bad, 0);
    }
    CU_ASSERT_EQUAL(ok, 1); /* exactly one load wins */
    CU_ASSERT_EQUAL(dup, N_THREADS * N_ROUNDS - 1);
    CU_ASSERT_EQUAL(vmmem_registry_count(reg), 2);
    struct vt_counts *h = counts(reg, "test-heap");
    struct vt_counts *c = counts(reg, "test-counted");
    CU_ASSERT_EQUAL(LOADC(h, maps), LOADC(h, unmaps));
    CU_ASSERT_EQUAL(LOADC(c, maps), LOADC(c, unmaps));
    CU_ASSERT_EQUAL(LOADC(h, errors), 0);
    vmmem_registry_free(reg);
}

static void test_threads_private_registries(void)
{
    struct thr t[N_THREADS];
    run_threads(NULL, thread_private, t);
    for (int i = 0; i < N_THREADS; i++) {
        CU_ASSERT_EQUAL(t[i].load_ok, N_ROUNDS);
        CU_ASSERT_EQUAL(t[i].load_dup, 0);
        CU_ASSERT_EQUAL(t[i].load_other, 0);
        CU_ASSERT_EQUAL(t[i].not_found, 0);
        CU_ASSERT_EQUAL(t[i].map_fail, 0);
        CU_ASSERT_EQUAL(t[i].data_bad, 0);
    }
}

static const struct vt_test load_tests[] = {
    {"new/free", test_new_free},
    {"default registry", test_default_registry},
    {"load good + info", test_load_good_and_info},
    {"relative path", test_load_relative},
    {"missing file", test_load_missing},
    {"not a plugin", test_load_not_plugin},
    {"ABI mismatch", test_load_bad_abi},
    {"duplicate names", test_load_duplicate},
    {"plugin refuses", test_load_refused},
    {"NULL map slot", test_load_nomap},
    {"older struct_size", test_old_struct_size},
    {"plugin trust: owners, modes, every directory up to /", test_plugin_trust},
    {"two plugins, one descriptor number", test_plugin_fd_names},
    {"static registration", test_static_add},
    {"provider contract breaks", test_provider_contract},
    {NULL, NULL},
};

static const struct vt_test map_tests[] = {
    {"unknown provider", test_unknown_provider},
    {"map_new via private registry", test_map_new_private},
    {"map_new option checks", test_map_new_option_checks},
    {"map_from_config via private registry", test_map_from_config_private},
    {"map outlives registry", test_map_outlives_registry},
    {"failing map midway", test_failmap_midway},
    {"map-on-access provider", test_lazy_accesses},
    {NULL, NULL},
};

static const struct vt_test discover_tests[] = {
    {"VMMEM_PLUGIN_PATH with test plugins", test_discover_plugin_dir},
    {"relative entries ignored", test_discover_relative_ignored},
    {"nothing to find", test_discover_nothing},
    {"same-name copy later on the path is shadowed", test_discover_shadowed},
    {"unknown provider names the search", test_unknown_provider_hint},
    {"default registry release", test_default_registry_release},
    {"vmmem_plugin_dir lists the search path", test_plugin_dir_list},
    {NULL, NULL},
};

static const struct vt_test thread_tests[] = {
    {"shared registry", test_threads_shared_registry},
    {"private registries", test_threads_private_registries},
    {NULL, NULL},
};

static const struct vt_suite load_suite = {"registry_load", NULL, NULL, load_tests};
static const struct vt_suite map_suite = {"registry_maps", NULL, NULL, map_tests};
static const struct vt_suite discover_suite = {"registry_discover", NULL, NULL, discover_tests};
static const struct vt_suite thread_suite = {"registry_threads", NULL, NULL, thread_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&load_suite, &map_suite, &discover_suite,
                                                    &thread_suite, NULL};
    return vt_main(suites);
}

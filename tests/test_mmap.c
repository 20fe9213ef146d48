/*
 * The "mmap" provider (plugins/mmap, vmmem-mmap.so) through the default
 * registry: options, read-only regions, huge pages, adoption of a VMM's own
 * mapping (vmmem_spec_adopt), and that build/destroy cycles leak no mapping.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Build with the default registry expecting code; *out stays untouched. */
static void expect_map_error(int line, const char *config, int code, const char *quote)
{
    vmmem_map *sentinel = (vmmem_map *)&page_size;
    vmmem_map *m = sentinel;
    int rc = vmmem_map_from_config(&m, NULL, config, NULL);
    if (rc != code)
        fprintf(stdout, "\n    line %d: \"%s\"\n", line, config);
    VT_ASSERT_RC(rc, code);
    CU_ASSERT_PTR_EQUAL(m, sentinel);
    if (rc == 0 && m != sentinel)
        vmmem_map_unref(m);
    if (quote != NULL && strstr(vmmem_last_message(), quote) == NULL) {
        fprintf(stdout, "\n    line %d: message \"%s\" lacks \"%s\"\n", line, vmmem_last_message(),
                quote);
        CU_FAIL("message does not quote the offending text");
    }
}
#define MAP_ERR(config, code, quote) expect_map_error(__LINE__, (config), (code), (quote))

static void test_provider_registered(void)
{
    vmmem_registry *reg = vmmem_default_registry();
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    const struct vmmem_provider *p = vmmem_registry_find(reg, "mmap");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->abi_version, VMMEM_PROVIDER_ABI_VERSION);
    bool found = false;
    for (size_t i = 0; i < vmmem_registry_count(reg); i++) {
        struct vmmem_provider_info info;
        VT_ASSERT_RC(vmmem_registry_get(reg, i, &info), 0);
        if (strcmp(info.name, "mmap") != 0)
            continue;
        found = true;
        CU_ASSERT_PTR_NOT_NULL_FATAL(info.file);
        const char *base = strrchr(info.file, '/');
        CU_ASSERT_PTR_NOT_NULL_FATAL(base);
        CU_ASSERT_STRING_EQUAL(base, "/vmmem-mmap.so");
    }
    CU_ASSERT_TRUE(found);
}

static void test_basic_region(void)
{
    vmmem_map *m = vt_map("mmap:addr=0x100000,size=64K");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL_FATAL(vmmem_map_num_regions(m), 1);
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 0), &info);
    CU_ASSERT_EQUAL(info.start, 0x100000);
    CU_ASSERT_EQUAL(info.size, 65536);
    CU_ASSERT_EQUAL(info.last, 0x100000 + 65535);
    CU_ASSERT_STRING_EQUAL(info.provider, "mmap");
    CU_ASSERT_PTR_NOT_NULL_FATAL(info.host);
    CU_ASSERT_EQUAL((uintptr_t)info.host % page_size(), 0);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
    CU_ASSERT_EQUAL(info.fd, -1);
    CU_ASSERT_EQUAL(info.hugetlbfs, 0);
    CU_ASSERT_PTR_NULL(info.file);

    /* zero-filled */
    uint8_t *buf = malloc(65536);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memset(buf, 0xee, 65536);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x100000, buf, 65536), 0);
    size_t nonzero = 0;
    for (size_t i = 0; i < 65536; i++)
        nonzero += buf[i] != 0;
    CU_ASSERT_EQUAL(nonzero, 0);
    free(buf);

    /* the host pointer is the memory the map accesses */
    void *h = NULL;
    size_t len = 1u << 20;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x100000 + 4096, &h, &len), 0);
    CU_ASSERT_PTR_EQUAL(h, (uint8_t *)info.host + 4096);
    CU_ASSERT_EQUAL(len, 65536 - 4096);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x100000 + 4096, "guest", 5), 5);
    CU_ASSERT_EQUAL(memcmp(h, "guest", 5), 0);
    vmmem_map_unref(m);
}

static void test_options_accepted(void)
{
    static const char *const cfgs[] = {
        "mmap:addr=0,size=64K,shared",
        "mmap:addr=0,size=64K,private",
        "mmap:addr=0,size=64K,prot=rw",
        "mmap:addr=0,size=64K,populate",
        "mmap:addr=0,size=64K,noreserve",
        "mmap:addr=0,size=64K,shared,populate,noreserve,prot=rw",
        "mmap:addr=4G,size=256M,noreserve",
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        vmmem_map *m = vt_map(cfgs[i]);
        if (m == NULL)
            continue;
        struct vmmem_region_info info;
        vmmem_region_get_info(vmmem_map_region(m, 0), &info);
        CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
        CU_ASSERT_EQUAL(info.hugetlbfs, 0);
        uint64_t last = info.last, v = 0;
        VT_ASSERT_RC(vmmem_store(m, last - 7, 8, 0x0102030405060708ull, VMMEM_SEQ_CST), 0);
        VT_ASSERT_RC(vmmem_load(m, last - 7, 8, &v, VMMEM_SEQ_CST), 0);
        CU_ASSERT_EQUAL(v, 0x0102030405060708ull);
        vmmem_map_unref(m);
    }
}

static void test_options_rejected(void)
{
    MAP_ERR("mmap:addr=0,size=64K,shared,private", VMMEM_EBAD_VALUE, NULL);
    MAP_ERR("mmap:addr=0,size=64K,prot=x", VMMEM_EBAD_VALUE, "'x'");
    MAP_ERR("mmap:addr=0,size=64K,prot=w", VMMEM_EBAD_VALUE, "'w'");
    MAP_ERR("mmap:addr=0,size=64K,prot=rwx", VMMEM_EBAD_VALUE, "rwx");
    MAP_ERR("mmap:addr=0,size=64K,prot", VMMEM_EBAD_VALUE, "prot");
    MAP_ERR("mmap:addr=0,size=64K,populate=1", VMMEM_EBAD_VALUE, "populate");
    MAP_ERR("mmap:addr=0,size=64K,bogus", VMMEM_EUNKNOWN_KEY, "bogus");
    MAP_ERR("mmap:addr=0,size=64K,path=/tmp/x", VMMEM_EUNKNOWN_KEY, "path");
    MAP_ERR("mmap:addr=0,size=64K,hugepage=3M", VMMEM_EBAD_VALUE, "3M");
    MAP_ERR("mmap:addr=0,size=64K,hugepage=huge", VMMEM_EBAD_VALUE, "huge");
    MAP_ERR("mmap:addr=0,size=64K,hugepage=0", VMMEM_EBAD_VALUE, NULL);
    MAP_ERR("mmap:addr=0,size=64K,shared,shared", VMMEM_EDUPLICATE_KEY, "shared");
}

static void test_shared_private_fork(void)
{
    /* shared memory is seen by a child; private is copy-on-write */
    static const char *const cfgs[] = {"mmap:addr=0,size=4K,shared", "mmap:addr=0,size=4K"};
    for (int i = 0; i < 2; i++) {
        vmmem_map *m = vt_map(cfgs[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        fflush(stdout);
        pid_t pid = fork();
        CU_ASSERT_TRUE_FATAL(pid >= 0);
        if (pid == 0) {
            int rc = vmmem_write_slice(m, 0, "child", 5);
            _exit(rc == 0 ? 0 : 1);
        }
        int status = 0;
        CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
        CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        char buf[5] = {0};
        VT_ASSERT_RC(vmmem_read_slice(m, 0, buf, 5), 0);
        if (i == 0) {
            CU_ASSERT_EQUAL(memcmp(buf, "child", 5), 0);
        } else {
            CU_ASSERT_EQUAL(memcmp(buf, "\0\0\0\0\0", 5), 0);
        }
        vmmem_map_unref(m);
    }
}

static void test_read_only(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=4K;mmap:addr=4K,size=8K,prot=r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_READ);
    CU_ASSERT_PTR_NOT_NULL(info.host);
    vmmem_region_get_info(vmmem_map_region(m, 0), &info);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);

    uint8_t buf[16];
    memset(buf, 0x77, sizeof buf);
    CU_ASSERT_EQUAL(vmmem_read(m, 4096, buf, 16), 16);
    CU_ASSERT_EQUAL(buf[0] | buf[15], 0);
    uint64_t v = 1;
    VT_ASSERT_RC(vmmem_load(m, 8192, 8, &v, VMMEM_ACQUIRE), 0);
    CU_ASSERT_EQUAL(v, 0);

    /* every write path refuses, none faults */
    VT_ASSERT_RC(vmmem_write(m, 4096, "abcd", 4), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_write_slice(m, 4100, "abcd", 4), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_write_obj(m, 8192, &v, sizeof v), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_store(m, 8192, 8, 5, VMMEM_RELEASE), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_store(m, 8192, 1, 5, VMMEM_RELAXED), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EREAD_ONLY);
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    CU_ASSERT_EQUAL(write(fds[1], "0123456789", 10), 10);
    VT_ASSERT_RC(vmmem_read_from_fd(m, 4096, fds[0], 10), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 4096, fds[0], 10), VMMEM_EREAD_ONLY);
    close(fds[0]);
    close(fds[1]);

    /* a write running from rw into r stops at the boundary */
    CU_ASSERT_EQUAL(vmmem_write(m, 4096 - 2, "wxyz", 4), 2);
    VT_ASSERT_RC(vmmem_read_slice(m, 4096 - 2, buf, 4), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "wx\0\0", 4), 0);
    /* all-or-error: nothing of the rw part is touched */
    VT_ASSERT_RC(vmmem_write_slice(m, 4096 - 4, "1234", 8), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_read_slice(m, 4096 - 4, buf, 4), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "\0\0wx", 4), 0);
    CU_ASSERT_EQUAL(vmmem_read(m, 4096, buf, 8), 8);
    CU_ASSERT_EQUAL(memcmp(buf, "\0\0\0\0\0\0\0\0", 8), 0);
    vmmem_map_unref(m);
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static void test_hugetlb(void)
{
    const char *pool = "/sys/kernel/mm/hugepages/hugepages-2048kB/";
    char path[256];
    snprintf(path, sizeof path, "%sfree_hugepages", pool);
    long free_pages = read_long(path);
    snprintf(path, sizeof path, "%snr_overcommit_hugepages", pool);
    long overcommit = read_long(path);
    static const char *const cfgs[] = {"mmap:addr=0,size=2M,hugetlb",
                                       "mmap:addr=0,size=2M,hugepage=2M",
                                       "mmap:addr=0,size=2M,hugetlb,hugepage=2M"};
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        vmmem_map *m = (vmmem_map *)&page_size;
        int rc = vmmem_map_from_config(&m, NULL, cfgs[i], NULL);
        if (free_pages >= 1) {
            VT_ASSERT_RC(rc, 0);
            if (rc == 0) {
                struct vmmem_region_info info;
                vmmem_region_get_info(vmmem_map_region(m, 0), &info);
                CU_ASSERT_EQUAL(info.hugetlbfs, 1);
                CU_ASSERT_EQUAL((uintptr_t)info.host % (2u << 20), 0);
                CU_ASSERT_EQUAL(vmmem_write(m, (2u << 20) - 1, "z", 1), 1);
                vmmem_map_unref(m);
            }
        } else if (free_pages == 0 && overcommit == 0 && vt_emulator() != NULL && rc == -EINVAL) {
            /* qemu-user maps the guest's MAP_HUGETLB request at an address
             * of its own choosing, not huge-page aligned: EINVAL, not the
             * kernel's ENOMEM.  The error is still passed on, untouched. */
            fprintf(stdout, "\n    under '%s': %s: EINVAL from the emulator's mmap, not ENOMEM\n",
                    vt_emulator(), cfgs[i]);
            CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)&page_size);
            CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "nr_hugepages"));
        } else if (free_pages == 0 && overcommit == 0) {
            /* no huge pages reserved here: the kernel's ENOMEM, passed on */
            VT_ASSERT_RC(rc, -ENOMEM);
            CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)&page_size);
            CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "nr_hugepages"));
        } else {
            fprintf(stdout, "\n    huge page pool state unknown (free %ld, overcommit %ld)\n",
                    free_pages, overcommit);
            if (rc == 0)
                vmmem_map_unref(m);
        }
    }
}

static void test_odd_size(void)
{
    /* a size that is not a page multiple: the region is exactly that long */
    vmmem_map *m = vt_map("mmap:addr=0,size=100");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_region_size(vmmem_map_region(m, 0)), 100);
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 99);
    CU_ASSERT_EQUAL(vmmem_write(m, 96, "abcdefgh", 8), 4);
    uint8_t b;
    VT_ASSERT_RC(vmmem_read_obj(m, 100, &b, 1), VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m);
}

/* More than the host can map: a clean error, nothing mapped. */
static void test_larger_than_address_space(void)
{
    vmmem_map *m = (vmmem_map *)&m;
    int rc = vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=0x4000000000000000", NULL);
    /* 2^62 bytes: past SIZE_MAX on a 32-bit host, past the address space on a 64-bit one */
    if (SIZE_MAX < 0x4000000000000000ull) {
        VT_ASSERT_RC(rc, VMMEM_EOVERFLOW);
    } else {
        /* the kernel says ENOMEM; valgrind's address-space manager EINVAL */
        if (rc != -ENOMEM && rc != -EINVAL)
            VT_ASSERT_RC(rc, -ENOMEM);
        CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "mmap of 4611686018427387904 bytes"));
    }
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)&m);
}

static void test_top_of_guest_space(void)
{
    vmmem_map *m = vt_map("mmap:addr=0xFFFFFFFFFFFFF000,size=4K");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_map_last_addr(m), UINT64_MAX);
    CU_ASSERT_EQUAL(vmmem_write(m, UINT64_MAX, "q", 1), 1);
    char c = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, UINT64_MAX, &c, 1), 0);
    CU_ASSERT_EQUAL(c, 'q');
    vmmem_map_unref(m);
}

/* ---- adoption --------------------------------------------------------- */

static void test_adopt(void)
{
    size_t len = 16 * page_size();
    uint8_t *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(buf != MAP_FAILED);
    memset(buf, 0x5a, len);

    struct vmmem_region_spec specs[2];
    VT_ASSERT_RC(vmmem_spec_adopt(&specs[0], 0x100000, buf, len), 0);
    CU_ASSERT_STRING_EQUAL(specs[0].provider, "mmap");
    CU_ASSERT_PTR_EQUAL(specs[0].host, buf);
    specs[1] = (struct vmmem_region_spec){.provider = "mmap", .addr = 0, .size = 4096};
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, specs, 2, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL_FATAL(vmmem_map_num_regions(m), 2);
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    CU_ASSERT_PTR_EQUAL(info.host, buf);
    CU_ASSERT_STRING_EQUAL(info.provider, "mmap");
    CU_ASSERT_EQUAL(info.start, 0x100000);
    CU_ASSERT_EQUAL(info.size, len);
    CU_ASSERT_EQUAL(info.fd, -1);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);

    /* the VMM's data is visible through the map and back */
    uint8_t b = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, 0x100000 + len - 1, &b, 1), 0);
    CU_ASSERT_EQUAL(b, 0x5a);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x100000 + 10, "adopted", 7), 0);
    CU_ASSERT_EQUAL(memcmp(buf + 10, "adopted", 7), 0);
    void *h = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x100000, &h, NULL), 0);
    CU_ASSERT_PTR_EQUAL(h, buf);
    vmmem_map_unref(m);

    /* the library never unmaps an adopted mapping */
    CU_ASSERT_EQUAL(msync(buf, len, MS_ASYNC), 0);
    buf[0] = 1;
    buf[len - 1] = 2;
    CU_ASSERT_EQUAL(buf[0] + buf[len - 1], 3);
    CU_ASSERT_EQUAL(memcmp(buf + 10, "adopted", 7), 0);
    CU_ASSERT_EQUAL(munmap(buf, len), 0);
}

static void test_adopt_errors(void)
{
    struct vmmem_region_spec spec;
    memset(&spec, 0, sizeof spec);
    VT_ASSERT_RC(vmmem_spec_adopt(&spec, 0, NULL, 4096), -EINVAL);
    VT_ASSERT_RC(vmmem_spec_adopt(NULL, 0, &spec, 4096), -EINVAL);

    size_t len = 4 * page_size();
    uint8_t *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(buf != MAP_FAILED);
    VT_ASSERT_RC(vmmem_spec_adopt(&spec, 0, buf + 1, 4096), 0);
    vmmem_map *m = (vmmem_map *)&page_size;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, &spec, 1, NULL), -EINVAL);
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)&page_size);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "page-aligned"));

    /* adoption with prot=r: a read-only view of the VMM's memory */
    struct vmmem_option ro[] = {{"prot", "r"}};
    VT_ASSERT_RC(vmmem_spec_adopt(&spec, 0, buf, len), 0);
    spec.options = ro;
    spec.n_options = 1;
    m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, &spec, 1, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    VT_ASSERT_RC(vmmem_write_slice(m, 0, "x", 1), VMMEM_EREAD_ONLY);
    buf[3] = 9;
    uint8_t b = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, 3, &b, 1), 0);
    CU_ASSERT_EQUAL(b, 9);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(buf[0], 0);
    CU_ASSERT_EQUAL(munmap(buf, len), 0);
}

/* ---- leaks ------------------------------------------------------------ */

static int count_maps_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Does any line of /proc/self/maps overlap [p, p+len)? */
static bool range_mapped(const void *p, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return true;
    uintptr_t lo = (uintptr_t)p, hi = lo + len, a, b;
    bool hit = false;
    char line[512];
    while (!hit && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &a, &b) == 2 && a < hi && lo < b)
            hit = true;
    fclose(f);
    return hit;
}

static unsigned long cycle_leaks; /* regions still mapped after their map died */

static void cycle(void)
{
    vmmem_map *m = NULL;
    if (vmmem_map_from_config(&m, NULL,
                              "mmap:addr=0,size=64K;mmap:addr=1M,size=128K,populate;"
                              "mmap:addr=4M,size=4K,prot=r;mmap:addr=8M,size=8K,shared",
                              NULL) == 0) {
        (void)vmmem_write(m, 100, "x", 1);
        struct vmmem_region_info info[4];
        size_t n = vmmem_map_num_regions(m);
        CU_ASSERT_EQUAL(n, 4);
        for (size_t i = 0; i < n && i < 4; i++)
            vmmem_region_get_info(vmmem_map_region(m, i), &info[i]);
        CU_ASSERT_TRUE(n > 0 && range_mapped(info[0].host, (size_t)info[0].size)); /* the probe sees live ones */
        vmmem_map_unref(m);
        for (size_t i = 0; i < n && i < 4; i++)
            if (range_mapped(info[i].host, (size_t)info[i].size))
                cycle_leaks++;
    } else {
        CU_FAIL("cycle: map failed");
    }
    /* a build failing in the provider after other regions were mapped */
    m = NULL;
    if (vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=64K;mmap:addr=1M,size=64K,prot=x",
                              NULL) != VMMEM_EBAD_VALUE)
        CU_FAIL("cycle: bad prot not refused");
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VT_SANITIZED true
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VT_SANITIZED true
#endif
#endif
#ifndef VT_SANITIZED
#define VT_SANITIZED false
#endif

static void test_no_leaked_mappings(void)
{
    cycle(); /* warm up allocator arenas and the plugin */
    int before = count_maps_lines();
    CU_ASSERT_TRUE_FATAL(before > 0);
    cycle_leaks = 0;
    for (int i = 0; i < 100; i++)
        cycle();
    int after = count_maps_lines();
    /* Every region's range is gone right after its map died... */
    CU_ASSERT_EQUAL(cycle_leaks, 0);
    /* ...and the process has as many mappings as before, except under
     * valgrind or a sanitizer, whose own arenas come and go with the
     * client's mallocs (seen: one more line under ASan on a fresh machine). */
    bool runtime_maps = getenv("VMMEM_UNDER_VALGRIND") != NULL || VT_SANITIZED;
    if (after != before)
        fprintf(stdout, "\n    /proc/self/maps: %d lines before, %d after%s\n", before, after,
                runtime_maps ? " (not compared under valgrind or a sanitizer)" : "");
    if (!runtime_maps)
        CU_ASSERT_EQUAL(after, before);
}

/* Option errors through the host's option kit: one message shape, the
 * option quoted, and the column of its value in the config string. */
static void expect_exact(int line, const char *config, int code, int column, const char *msg)
{
    vmmem_map *m = NULL;
    int rc = vmmem_map_from_config(&m, NULL, config, NULL);
    const struct vmmem_error *e = vmmem_last_error();
    if (rc != code || e->column != column || strcmp(e->message, msg) != 0)
        fprintf(stdout, "\n    line %d: \"%s\": %s col %d \"%s\"\n    want %s col %d \"%s\"\n",
                line, config, vmmem_err_name(rc), e->column, e->message, vmmem_err_name(code),
                column, msg);
    VT_ASSERT_RC(rc, code);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_EQUAL(e->column, column);
    CU_ASSERT_STRING_EQUAL(e->message, msg);
}

static void test_option_columns(void)
{
    expect_exact(__LINE__, "mmap:addr=0,size=4K,prot=rx", VMMEM_EBAD_VALUE, 26,
                 "mmap: prot='rx' is not 'r' or 'rw' (region 0, column 26)");
    /* second region: its index and the column in the whole string */
    expect_exact(__LINE__, "mmap:addr=0,size=4K; mmap:addr=4K,size=4K,shared,private",
                 VMMEM_EBAD_VALUE, 50, "mmap: 'private' excludes 'shared' (region 1, column 50)");
    expect_exact(__LINE__, "mmap:addr=0,size=4K,private,shared", VMMEM_EBAD_VALUE, 29,
                 "mmap: 'shared' excludes 'private' (region 0, column 29)");
    expect_exact(__LINE__, "mmap:addr=0,size=4K,hugepage=3M", VMMEM_EBAD_VALUE, 30,
                 "mmap: hugepage='3M' is not a power-of-two size (region 0, column 30)");
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0);
    /* a C array of specs: the region's index, no column */
    struct vmmem_option o[] = {{"prot", "w"}};
    struct vmmem_region_spec specs[] = {
        {.provider = "mmap", .addr = 0, .size = 4096},
        {.provider = "mmap", .addr = 0x10000, .size = 4096, .options = o, .n_options = 1},
    };
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_new(&m, NULL, specs, 2, NULL), VMMEM_EBAD_VALUE);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_STRING_EQUAL(vmmem_last_message(), "mmap: prot='w' is not 'r' or 'rw' (region 1)");
    CU_ASSERT_EQUAL(vmmem_last_error()->column, -1);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x10000);
}

static const struct vt_test mmap_tests[] = {
    {"provider registered", test_provider_registered},
    {"basic region", test_basic_region},
    {"options accepted", test_options_accepted},
    {"options rejected", test_options_rejected},
    {"option errors point at the text", test_option_columns},
    {"shared vs private across fork", test_shared_private_fork},
    {"prot=r", test_read_only},
    {"hugetlb", test_hugetlb},
    {"size not a page multiple", test_odd_size},
    {"region at the top of guest space", test_top_of_guest_space},
    {"a region larger than the address space", test_larger_than_address_space},
    {"adopt a VMM mapping", test_adopt},
    {"adoption errors", test_adopt_errors},
    {"no leaked mappings", test_no_leaked_mappings},
    {NULL, NULL},
};

static const struct vt_suite mmap_suite = {"mmap_provider", NULL, NULL, mmap_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&mmap_suite, NULL};
    return vt_main(suites);
}

/*
 * The Xen plugin (plugins/xen, vmmem-xen.so: xen-foreign, xen-grant,
 * xen-unix) run against the device simulator (tests/xensim/xensim.so).
 *
 * There is no hypervisor here, so the binary re-executes itself with the
 * simulator in LD_PRELOAD (and XENSIM_ACTIVE=1 so it does so once).  Under
 * AddressSanitizer the ASan runtime must stay first in the preload list, so
 * when the binary carries a dynamically linked ASan runtime its path (found
 * with dladdr on __asan_init) is put in front of the simulator.
 *
 * The simulator counts every map and unmap; each test checks the counts it
 * expects and that nothing stays mapped or open afterwards.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "xensim/xensim.h"

#define PG 4096u
#define DOMID 7u
#define NFRAMES 64u
#define GRANT_BIT 0x8000000000000000ull

static const struct xensim_api *sim;
static uint8_t *dom; /* the foreign domain's memory, as the test sees it */
static struct xensim_stats base;

/* ---- helpers ---- */

static struct xensim_stats stats(void)
{
    struct xensim_stats s;
    sim->stats(&s);
    return s;
}

static const char *cfg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *cfg(const char *fmt, ...)
{
    static char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

static uint8_t pat(uint64_t frame, size_t i, unsigned seed)
{
    return (uint8_t)(frame * 31u + i * 7u + seed * 13u + 1u);
}

/* Fill frames [f0, f0 + n) of the domain with a pattern. */
static void fill(uint64_t f0, size_t n, unsigned seed)
{
    for (uint64_t f = f0; f < f0 + n; f++)
        for (size_t i = 0; i < PG; i++)
            dom[f * PG + i] = pat(f, i, seed);
}

static void grant_range(uint32_t ref0, uint64_t frame0, unsigned n, bool ro)
{
    for (unsigned i = 0; i < n; i++)
        CU_ASSERT_EQUAL_FATAL(sim->grant(ref0 + i, frame0 + i, ro), 0);
}

/* Start of a test: remember the counters. */
static void begin(void)
{
    base = stats();
}

/* End of a test: nothing open or mapped, no protocol error, no grant pinned. */
static void expect_clean(int line)
{
    struct xensim_stats s = stats();
    bool ok = s.live_files == 0 && s.live_windows == 0 && s.live_grant_maps == 0 &&
              s.live_grant_vmas == 0 && s.live_grant_pages == 0 &&
              s.unmap_busy == base.unmap_busy && s.released_at_close == base.released_at_close &&
              s.bad_calls == base.bad_calls;
    if (!ok)
        fprintf(stdout,
                "\n    line %d: left behind: files %llu windows %llu grant maps %llu vmas %llu "
                "pages %llu, busy +%llu, released at close +%llu, bad calls +%llu\n",
                line, (unsigned long long)s.live_files, (unsigned long long)s.live_windows,
                (unsigned long long)s.live_grant_maps, (unsigned long long)s.live_grant_vmas,
                (unsigned long long)s.live_grant_pages,
                (unsigned long long)(s.unmap_busy - base.unmap_busy),
                (unsigned long long)(s.released_at_close - base.released_at_close),
                (unsigned long long)(s.bad_calls - base.bad_calls));
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(sim->revoke_all(), 0); /* no grant is still mapped */
}
#define EXPECT_CLEAN() expect_clean(__LINE__)

#define DELTA(field) ((long long)(stats().field - base.field))

/* Building config must fail with code and a message holding quote. */
static void expect_map_error(int line, const char *config, int code, const char *quote)
{
    vmmem_map *m = NULL;
    int rc = vmmem_map_from_config(&m, NULL, config, NULL);
    if (rc != code)
        fprintf(stdout, "\n    line %d: \"%s\"\n", line, config);
    VT_ASSERT_RC(rc, code);
    CU_ASSERT_PTR_NULL(m);
    if (rc == 0)
        vmmem_map_unref(m);
    if (quote != NULL && strstr(vmmem_last_message(), quote) == NULL) {
        fprintf(stdout, "\n    line %d: message \"%s\" lacks \"%s\"\n", line,
                vmmem_last_message(), quote);
        CU_FAIL("message does not name the offending thing");
    }
}
#define MAP_ERR(config, code, quote) expect_map_error(__LINE__, (config), (code), (quote))

static void region_info(vmmem_map *m, size_t i, struct vmmem_region_info *info)
{
    vmmem_region_get_info(vmmem_map_region(m, i), info);
}

static uint64_t gref(uint32_t ref)
{
    return GRANT_BIT | ((uint64_t)ref << 12);
}

/* ---- flags and options ---- */

static void test_providers_registered(void)
{
    vmmem_registry *reg = vmmem_default_registry();
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    const char *names[] = {"xen-foreign", "xen-grant", "xen-unix"};
    for (size_t k = 0; k < 3; k++) {
        const struct vmmem_provider *p = vmmem_registry_find(reg, names[k]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        /* Only the grant provider maps per access. */
        CU_ASSERT_EQUAL(p->begin_access != NULL, k == 1);
        CU_ASSERT_EQUAL(p->end_access != NULL, k == 1);
        bool found = false;
        for (size_t i = 0; i < vmmem_registry_count(reg); i++) {
            struct vmmem_provider_info info;
            VT_ASSERT_RC(vmmem_registry_get(reg, i, &info), 0);
            if (strcmp(info.name, names[k]) != 0)
                continue;
            found = true;
            CU_ASSERT_PTR_NOT_NULL_FATAL(info.file);
            const char *b = strrchr(info.file, '/');
            CU_ASSERT_PTR_NOT_NULL_FATAL(b);
            CU_ASSERT_STRING_EQUAL(b, "/vmmem-xen.so");
        }
        CU_ASSERT_TRUE(found);
    }
}

static void test_invalid_flags(void)
{
    begin();
    grant_range(0x10, 1, 1, false);
    static const struct {
        const char *text, *quote;
    } bad[] = {{"3", "flags=3 (0x3)"},     {"8", "flags=8 (0x8)"},
               {"9", "flags=9 (0x9)"},     {"4", "flags=4 (0x4)"},
               {"16", "flags=16 (0x10)"},  {"0x3", "flags=0x3 (0x3)"},
               {"0xb", "flags=0xb (0xb)"}, {"0x100", "flags=0x100 (0x100)"}};
    const char *prov[] = {"xen-foreign:addr=0x1000,size=4K,domid=7",
                          "xen-grant:addr=0x8000000000010000,size=4K,domid=7",
                          "xen-unix:addr=0x1000,size=4K"};
    for (size_t p = 0; p < 3; p++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            MAP_ERR(cfg("%s,flags=%s", prov[p], bad[i].text), VMMEM_EBAD_VALUE, bad[i].quote);
    MAP_ERR("xen-unix:addr=0,size=4K,flags=abc", VMMEM_EBAD_NUMBER, "flags='abc'");
    MAP_ERR("xen-unix:addr=0,size=4K,flags=-1", VMMEM_EBAD_NUMBER, "flags='-1'");
    CU_ASSERT_EQUAL(DELTA(opens), 0); /* refused before touching a device */
    EXPECT_CLEAN();
}

static void test_flags_disagree(void)
{
    begin();
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,flags=2", VMMEM_EBAD_VALUE,
            "flags=2 (0x2, GRANT) belongs to provider 'xen-grant', not 'xen-foreign'");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,flags=0xa", VMMEM_EBAD_VALUE,
            "belongs to provider 'xen-grant'");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,flags=0", VMMEM_EBAD_VALUE,
            "flags=0 (0x0, UNIX) belongs to provider 'xen-unix'");
    MAP_ERR("xen-grant:addr=0x8000000000010000,size=4K,domid=7,flags=1", VMMEM_EBAD_VALUE,
            "flags=1 (0x1, FOREIGN) belongs to provider 'xen-foreign', not 'xen-grant'");
    MAP_ERR("xen-grant:addr=0x8000000000010000,size=4K,domid=7,flags=0", VMMEM_EBAD_VALUE,
            "belongs to provider 'xen-unix'");
    MAP_ERR("xen-unix:addr=0,size=4K,flags=1", VMMEM_EBAD_VALUE, "belongs to provider "
                                                                "'xen-foreign'");
    MAP_ERR("xen-unix:addr=0,size=4K,flags=2", VMMEM_EBAD_VALUE, "belongs to provider "
                                                                "'xen-grant'");
    MAP_ERR("xen-unix:addr=0,size=4K,flags=0xa", VMMEM_EBAD_VALUE,
            "flags=0xa (0xa, GRANT|NO_ADVANCE_MAP) belongs to provider 'xen-grant'");
    CU_ASSERT_EQUAL(DELTA(opens), 0);
    EXPECT_CLEAN();
}

static void test_flags_accepted(void)
{
    begin();
    grant_range(0x10, 1, 1, false);
    static const struct {
        const char *config;
        bool has_host;
    } ok[] = {
        {"xen-foreign:addr=0x1000,size=4K,domid=7,flags=1", true},
        {"xen-foreign:addr=0x1000,size=4K,domid=7,flags=0x1", true},
        {"xen-foreign:addr=0x1000,size=4K,domid=7", true},
        {"xen-grant:addr=0x8000000000010000,size=4K,domid=7,flags=2", true},
        {"xen-grant:addr=0x8000000000010000,size=4K,domid=7", true},
        {"xen-grant:addr=0x8000000000010000,size=4K,domid=7,flags=0xa", false},
        {"xen-grant:addr=0x8000000000010000,size=4K,domid=7,flags=0xA", false},
        {"xen-grant:addr=0x8000000000010000,size=4K,domid=7,flags=10", false},
        {"xen-unix:addr=0,size=4K,flags=0", true},
        {"xen-unix:addr=0,size=4K", true},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        vmmem_map *m = vt_map(ok[i].config);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        struct vmmem_region_info info;
        region_info(m, 0, &info);
        if ((info.host != NULL) != ok[i].has_host)
            fprintf(stdout, "\n    \"%s\": host %p\n", ok[i].config, info.host);
        CU_ASSERT_EQUAL(info.host != NULL, ok[i].has_host);
        vmmem_map_unref(m);
    }
    EXPECT_CLEAN();
}

static void test_bad_options(void)
{
    begin();
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,dev=/dev/xen/privcmd,fd=3", VMMEM_EBAD_VALUE,
            "dev='/dev/xen/privcmd' and fd=3 exclude each other");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,dev=/nonexistent/privcmd", -ENOENT,
            "cannot open /nonexistent/privcmd");
    MAP_ERR("xen-grant:addr=0x8000000000010000,size=4K,domid=7,dev=/nonexistent/gntdev", -ENOENT,
            "cannot open /nonexistent/gntdev");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,fd=4000", -EBADF,
            "cannot duplicate fd=4000");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,fd=three", VMMEM_EBAD_NUMBER, "fd='three'");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,prot=w", VMMEM_EBAD_VALUE, "prot='w'");
    MAP_ERR("xen-unix:addr=0,size=4K,prot=rwx", VMMEM_EBAD_VALUE, "prot='rwx'");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K", VMMEM_EMISSING_KEY, "domid");
    MAP_ERR("xen-grant:addr=0x8000000000010000,size=4K", VMMEM_EMISSING_KEY, "domid");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=0x7ff0", VMMEM_EBAD_VALUE, "domid=0x7ff0");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=x", VMMEM_EBAD_NUMBER, "domid='x'");
    MAP_ERR("xen-foreign:addr=0x1800,size=4K,domid=7", VMMEM_EMISALIGNED, "0x1800");
    MAP_ERR("xen-grant:addr=0x8000000000010200,size=4K,domid=7", VMMEM_EMISALIGNED,
            "0x8000000000010200");
    MAP_ERR("xen-grant:addr=0x8000000000010000,size=4K,domid=7,cache=4", VMMEM_EBAD_VALUE,
            "cache=4 needs flags=0xa");
    MAP_ERR("xen-grant:addr=0x8000000000010000,size=4K,domid=7,flags=0xa,cache=2000",
            VMMEM_EBAD_VALUE, "cache=2000");
    MAP_ERR("xen-grant:addr=0x8000000000010000,size=4K,domid=7,flags=0xa,cache=many",
            VMMEM_EBAD_NUMBER, "cache='many'");
    /* Refs past 32 bits. */
    MAP_ERR("xen-grant:addr=0x8000100000000000,size=4K,domid=7", VMMEM_EBAD_VALUE,
            "do not fit in 32 bits");
    MAP_ERR("xen-foreign:addr=0x1000,size=4K,domid=7,cache=4", VMMEM_EUNKNOWN_KEY, "cache");
    MAP_ERR("xen-unix:addr=0,size=4K,domid=7", VMMEM_EUNKNOWN_KEY, "domid");
    EXPECT_CLEAN();
}

/* ---- xen-unix ---- */

static void test_unix_region(void)
{
    begin();
    vmmem_map *m = vt_map("xen-unix:addr=0x10000,size=12K;xen-unix:addr=0x20000,size=4K,prot=r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct vmmem_region_info info;
    region_info(m, 0, &info);
    CU_ASSERT_PTR_NOT_NULL(info.host);
    CU_ASSERT_EQUAL(info.fd, -1);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
    CU_ASSERT_STRING_EQUAL(info.provider, "xen-unix");
    uint8_t in[300], out[300] = {0};
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 3 + 1);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x10ff0, in, sizeof in), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x10ff0, out, sizeof out), 0);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    VT_ASSERT_RC(vmmem_store(m, 0x12000, 8, 0x1122334455667788ull, VMMEM_SEQ_CST), 0);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_load(m, 0x12000, 8, &v, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(v, 0x1122334455667788ull);
    region_info(m, 1, &info);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_READ);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x20000, in, 4), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x20000, out, 4), 0);
    CU_ASSERT_EQUAL(out[0] | out[1] | out[2] | out[3], 0);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(DELTA(opens), 0); /* no device involved */
    EXPECT_CLEAN();
}

/* ---- xen-foreign ---- */

static void test_foreign_reads_domain(void)
{
    begin();
    fill(2, 8, 1);
    vmmem_map *m = vt_map("xen-foreign:addr=0x2000,size=32K,domid=7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(DELTA(opens), 1);
    CU_ASSERT_EQUAL(DELTA(privcmd_mmaps), 1);
    CU_ASSERT_EQUAL(DELTA(batch_calls), 1);
    CU_ASSERT_EQUAL(DELTA(frames_mapped), 8);
    CU_ASSERT_EQUAL(DELTA(frame_errors), 0);
    CU_ASSERT_EQUAL(stats().live_windows, 1);
    struct vmmem_region_info info;
    region_info(m, 0, &info);
    CU_ASSERT_PTR_NOT_NULL(info.host);
    CU_ASSERT(info.fd >= 0);
    CU_ASSERT_STRING_EQUAL(info.file, "/dev/xen/privcmd");
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
    static uint8_t buf[32768];
    VT_ASSERT_RC(vmmem_read_slice(m, 0x2000, buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(memcmp(buf, dom + 2 * PG, sizeof buf), 0);
    /* Plain host pointer and atomics work on a foreign region. */
    void *h = NULL;
    size_t len = 100000;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x5008, &h, &len), 0);
    CU_ASSERT_EQUAL(len, 0xa000 - 0x5008);
    CU_ASSERT_EQUAL(*(uint8_t *)h, dom[5 * PG + 8]);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_load(m, 0x7ff8, 8, &v, VMMEM_ACQUIRE), 0);
    uint64_t want;
    memcpy(&want, dom + 0x7ff8, 8);
    CU_ASSERT_EQUAL(v, want);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(DELTA(privcmd_munmaps), 1);
    EXPECT_CLEAN();
}

static void test_foreign_writes_domain(void)
{
    begin();
    fill(16, 4, 2);
    vmmem_map *m = vt_map("xen-foreign:addr=0x10000,size=16K,domid=7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t in[64];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(0xa0 + i);
    /* Across the frame 0x10 / 0x11 boundary. */
    VT_ASSERT_RC(vmmem_write_slice(m, 0x10fe0, in, sizeof in), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 0x10fe0, in, sizeof in), 0);
    CU_ASSERT_EQUAL(dom[0x10fdf], pat(16, PG - 0x21, 2)); /* neighbours untouched */
    CU_ASSERT_EQUAL(dom[0x11020], pat(17, 0x20, 2));
    VT_ASSERT_RC(vmmem_store(m, 0x13ffc, 4, 0xdeadbeef, VMMEM_RELEASE), 0);
    uint32_t w;
    memcpy(&w, dom + 0x13ffc, 4);
    CU_ASSERT_EQUAL(w, 0xdeadbeef);
    /* And the other way: the domain writes, the map sees it at once. */
    dom[0x12345] = 0x5a;
    uint8_t b = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, 0x12345, &b, 1), 0);
    CU_ASSERT_EQUAL(b, 0x5a);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

static void test_foreign_out_of_range(void)
{
    begin();
    /* Frames 0x3e..0x41 of a 64-frame (0x40) domain: the last two do not exist. */
    MAP_ERR("xen-foreign:addr=0x3e000,size=16K,domid=7", -EINVAL,
            "domain 7 guest frame 0x40 (guest address 0x40000) could not be mapped: Invalid "
            "argument (2 of 4 frames failed)");
    CU_ASSERT_EQUAL(DELTA(batch_calls), 1);
    CU_ASSERT_EQUAL(DELTA(frames_mapped), 2);
    CU_ASSERT_EQUAL(DELTA(frame_errors), 2);
    CU_ASSERT_EQUAL(DELTA(privcmd_mmaps), 1);
    CU_ASSERT_EQUAL(DELTA(privcmd_munmaps), 1);
    /* Entirely outside. */
    MAP_ERR("xen-foreign:addr=0x100000,size=4K,domid=7", -EINVAL, "guest frame 0x100 ");
    EXPECT_CLEAN();
}

static void test_foreign_wrong_domain(void)
{
    begin();
    MAP_ERR("xen-foreign:addr=0x2000,size=8K,domid=8", -ESRCH,
            "domain 8 guest frame 0x2 (guest address 0x2000) could not be mapped");
    CU_ASSERT_EQUAL(DELTA(frame_errors), 2);
    EXPECT_CLEAN();
}

static void test_foreign_paged_out(void)
{
    begin();
    CU_ASSERT_EQUAL_FATAL(sim->page_out(5, true), 0);
    MAP_ERR("xen-foreign:addr=0x4000,size=12K,domid=7", -ENOENT, "guest frame 0x5 ");
    CU_ASSERT_STRING_NOT_EQUAL(vmmem_last_message(), "");
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "paged out"));
    CU_ASSERT_EQUAL(DELTA(frame_errors), 1);
    CU_ASSERT_EQUAL(sim->page_out(5, false), 0);
    vmmem_map *m = vt_map("xen-foreign:addr=0x4000,size=12K,domid=7");
    CU_ASSERT_PTR_NOT_NULL(m);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

static void test_foreign_inherited_fd(void)
{
    begin();
    int fd = open(XENSIM_PRIVCMD, O_RDWR | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(stats().live_files, 1);
    fill(3, 2, 3);
    vmmem_map *m = vt_map(cfg("xen-foreign:addr=0x3000,size=8K,domid=7,fd=%d", fd));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(DELTA(opens), 1); /* the plugin duplicated, it did not open */
    struct vmmem_region_info info;
    region_info(m, 0, &info);
    CU_ASSERT(info.fd >= 0 && info.fd != fd);
    char want[32];
    snprintf(want, sizeof want, "fd %d", fd);
    CU_ASSERT_STRING_EQUAL(info.file, want);
    uint8_t b[8];
    VT_ASSERT_RC(vmmem_read_slice(m, 0x4ff8, b, 8), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 0x4ff8, 8), 0);
    vmmem_map_unref(m);
    /* Ours is still open and still a privcmd device. */
    CU_ASSERT_EQUAL(stats().live_files, 1);
    CU_ASSERT(fcntl(fd, F_GETFD) >= 0);
    void *w = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    CU_ASSERT_NOT_EQUAL_FATAL(w, MAP_FAILED);
    CU_ASSERT_EQUAL(stats().live_windows, 1);
    munmap(w, PG);
    close(fd);
    EXPECT_CLEAN();
}

static void test_foreign_readonly(void)
{
    begin();
    fill(6, 1, 4);
    vmmem_map *m = vt_map("xen-foreign:addr=0x6000,size=4K,domid=7,prot=r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct vmmem_region_info info;
    region_info(m, 0, &info);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_READ);
    uint8_t b[4] = {1, 2, 3, 4};
    VT_ASSERT_RC(vmmem_write_slice(m, 0x6000, b, 4), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(dom[0x6000], pat(6, 0, 4));
    VT_ASSERT_RC(vmmem_read_slice(m, 0x6000, b, 4), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 0x6000, 4), 0);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

/* ---- xen-grant, mapped in advance ---- */

static void test_grant_advance_data(void)
{
    begin();
    fill(20, 4, 5);
    grant_range(0x10, 20, 4, false);
    vmmem_map *m = vt_map("xen-grant:addr=0x8000000000010000,size=16K,domid=7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), 1);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 1);
    CU_ASSERT_EQUAL(stats().live_grant_pages, 4);
    struct vmmem_region_info info;
    region_info(m, 0, &info);
    CU_ASSERT_PTR_NOT_NULL(info.host);
    CU_ASSERT_STRING_EQUAL(info.file, "/dev/xen/gntdev");
    static uint8_t buf[16384];
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x10), buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(memcmp(buf, dom + 20 * PG, sizeof buf), 0);
    uint8_t in[32];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(0x40 ^ i);
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x12) - 16, in, sizeof in), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 22 * PG - 16, in, sizeof in), 0);
    VT_ASSERT_RC(vmmem_store(m, gref(0x13), 2, 0xbeef, VMMEM_RELAXED), 0);
    CU_ASSERT_EQUAL(dom[23 * PG] | dom[23 * PG + 1] << 8, 0xbeef);
    /* Accesses do not map anything more. */
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 1);
    CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), 1);
    EXPECT_CLEAN();
}

static void test_grant_refs_pick_frames(void)
{
    begin();
    fill(40, 1, 6);
    fill(3, 1, 6);
    CU_ASSERT_EQUAL(sim->grant(0x20, 40, false), 0);
    CU_ASSERT_EQUAL(sim->grant(0x21, 3, false), 0);
    vmmem_map *m = vt_map("xen-grant:addr=0x8000000000020000,size=8K,domid=7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t b[4];
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x21) - 2, b, 4), 0);
    CU_ASSERT_EQUAL(b[0], pat(40, PG - 2, 6));
    CU_ASSERT_EQUAL(b[1], pat(40, PG - 1, 6));
    CU_ASSERT_EQUAL(b[2], pat(3, 0, 6));
    CU_ASSERT_EQUAL(b[3], pat(3, 1, 6));
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

static void test_grant_ungranted_advance(void)
{
    begin();
    grant_range(0x30, 30, 2, false);
    CU_ASSERT_EQUAL(sim->grant(0x33, 33, false), 0); /* 0x32 is not granted */
    MAP_ERR("xen-grant:addr=0x8000000000030000,size=16K,domid=7", -EINVAL,
            "mapping grant refs 0x30..0x33 (guest 0x8000000000030000..0x8000000000033fff) of "
            "domain 7 read-write failed: Invalid argument");
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), 1);
    CU_ASSERT_EQUAL(DELTA(grant_mmap_fails), 1);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 0);
    CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), 1); /* the entry was given back */
    /* Granted by another domain than the one named. */
    MAP_ERR("xen-grant:addr=0x8000000000030000,size=8K,domid=8", -EINVAL, "domain 8");
    EXPECT_CLEAN();
}

static void test_grant_readonly_advance(void)
{
    begin();
    fill(50, 2, 7);
    grant_range(0x40, 50, 2, true);
    MAP_ERR("xen-grant:addr=0x8000000000040000,size=8K,domid=7", -EINVAL, "read-write failed");
    vmmem_map *m = vt_map("xen-grant:addr=0x8000000000040000,size=8K,domid=7,prot=r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t b[8];
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x41), b, 8), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 51 * PG, 8), 0);
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x41), b, 8), VMMEM_EREAD_ONLY);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

/* ---- xen-grant, mapped per access ---- */

#define LAZY8 "xen-grant:addr=0x8000000000040000,size=32K,domid=7,flags=0xa"

static void test_lazy_no_host_address(void)
{
    begin();
    grant_range(0x40, 10, 8, false);
    vmmem_map *m = vt_map(LAZY8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(DELTA(opens), 1);
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), 0); /* nothing mapped up front */
    struct vmmem_region_info info;
    region_info(m, 0, &info);
    CU_ASSERT_PTR_NULL(info.host);
    CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
    void *h = (void *)&h;
    size_t len = 8;
    VT_ASSERT_RC(vmmem_map_host_address(m, gref(0x41), &h, &len), VMMEM_ENO_HOST_ADDRESS);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_load(m, gref(0x41), 8, &v, VMMEM_SEQ_CST), VMMEM_ENO_HOST_ADDRESS);
    VT_ASSERT_RC(vmmem_store(m, gref(0x41), 4, 1, VMMEM_SEQ_CST), VMMEM_ENO_HOST_ADDRESS);
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), 0);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

static void test_lazy_maps_per_access(void)
{
    begin();
    fill(10, 8, 8);
    grant_range(0x40, 10, 8, false);
    vmmem_map *m = vt_map(LAZY8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t b[16];
    /* 8 bytes inside page 1: one mapping of one page. */
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x41) + 8, b, 8), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 11 * PG + 8, 8), 0);
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), 1);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1);
    CU_ASSERT_EQUAL(DELTA(grant_pages_mapped), 1);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 1);
    CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), 1);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 0);
    /* 12 bytes across pages 1 and 2: one mapping of two pages. */
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x42) - 6, b, 12), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 12 * PG - 6, 12), 0);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 2);
    CU_ASSERT_EQUAL(DELTA(grant_pages_mapped), 3);
    /* A write maps, writes into the domain's frame, unmaps. */
    uint8_t in[16];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(0xc0 + i);
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x43) + 0x100, in, sizeof in), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 13 * PG + 0x100, in, sizeof in), 0);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 3);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 3);
    /* Ten more accesses: ten more map/unmap pairs. */
    for (int i = 0; i < 10; i++) {
        int64_t n = vmmem_read(m, gref(0x40) + (uint64_t)i * 100, b, 4);
        CU_ASSERT_EQUAL(n, 4);
    }
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), 13);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 13);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 13);
    CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), 13);
    /* The whole region in one read: one mapping of 8 pages. */
    static uint8_t all[32768];
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x40), all, sizeof all), 0);
    CU_ASSERT_EQUAL(memcmp(all, dom + 10 * PG, sizeof all), 0);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 14);
    CU_ASSERT_EQUAL(DELTA(grant_pages_mapped), 3 + 10 + 1 + 8);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 0);
    CU_ASSERT_EQUAL(stats().live_grant_maps, 0);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 14); /* unmapping the region maps nothing */
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 14);
    EXPECT_CLEAN();
}

static void test_lazy_slice_holds_mapping(void)
{
    begin();
    fill(10, 8, 9);
    grant_range(0x40, 10, 8, false);
    vmmem_map *m = vt_map(LAZY8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_slice s;
    VT_ASSERT_RC(vmmem_get_slice(m, gref(0x42) + 0x10, 5000, &s), 0);
    CU_ASSERT_EQUAL(s.len, 5000);
    CU_ASSERT_PTR_NOT_NULL(s.guard);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 1);
    CU_ASSERT_EQUAL(stats().live_grant_pages, 2);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1);
    CU_ASSERT_EQUAL(memcmp(s.ptr, dom + 12 * PG + 0x10, 5000), 0);
    vmmem_slice sub;
    VT_ASSERT_RC(vmmem_slice_subslice(&s, 4090, 16, &sub), 0);
    uint8_t in[16];
    memset(in, 0x77, sizeof in);
    VT_ASSERT_RC(vmmem_slice_write(&sub, 0, in, sizeof in), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 12 * PG + 0x10 + 4090, in, sizeof in), 0);
    uint64_t v = 0;
    VT_ASSERT_RC(vmmem_slice_load(&s, 0x1000 - 0x10, 8, &v, VMMEM_SEQ_CST), 0);
    uint64_t want;
    memcpy(&want, dom + 13 * PG, 8);
    CU_ASSERT_EQUAL(v, want);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1); /* all through the one held mapping */
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 0);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 1);
    CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), 1);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 0);
    CU_ASSERT_PTR_NULL(s.ptr);
    /* Two slices at once: two mappings. */
    vmmem_slice a, b;
    VT_ASSERT_RC(vmmem_get_slice(m, gref(0x40), 16, &a), 0);
    VT_ASSERT_RC(vmmem_get_slice(m, gref(0x47), 16, &b), 0);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 2);
    CU_ASSERT_EQUAL(vmmem_slice_copy_to_slice(&a, &b), 16);
    CU_ASSERT_EQUAL(memcmp(dom + 17 * PG, dom + 10 * PG, 16), 0);
    vmmem_slice_release(&a);
    vmmem_slice_release(&b);
    /* The iterator hands out one guarded slice per region piece. */
    vmmem_slice_iter it;
    vmmem_slices_begin(&it, m, gref(0x41), 100);
    vmmem_slice piece;
    int rc = vmmem_slices_next(&it, &piece);
    CU_ASSERT_EQUAL(rc, 1);
    if (rc == 1) {
        CU_ASSERT_EQUAL(piece.len, 100);
        CU_ASSERT_EQUAL(stats().live_grant_vmas, 1);
        CU_ASSERT_EQUAL(memcmp(piece.ptr, dom + 11 * PG, 100), 0);
        vmmem_slice_release(&piece);
    }
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &piece), 0);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

static void test_lazy_map_failure_is_an_error(void)
{
    begin();
    fill(30, 4, 10);
    grant_range(0x50, 30, 2, false);
    CU_ASSERT_EQUAL(sim->grant(0x53, 33, false), 0); /* 0x52 is not granted */
    vmmem_map *m = vt_map("xen-grant:addr=0x8000000000050000,size=16K,domid=7,flags=0xa");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t b[8];
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x51), b, 8), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 31 * PG, 8), 0);
    memset(b, 0xee, sizeof b);
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x52) + 8, b, 8), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "grant refs 0x52..0x52"));
    CU_ASSERT_EQUAL(b[0], 0xee); /* buffer untouched */
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x52) - 4, b, 8), -EINVAL); /* spans 0x51, 0x52 */
    CU_ASSERT_EQUAL(vmmem_read(m, gref(0x52), b, 8), -EINVAL);
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x52), b, 8), -EINVAL);
    vmmem_slice s = {0};
    VT_ASSERT_RC(vmmem_get_slice(m, gref(0x52), 8, &s), -EINVAL);
    CU_ASSERT_PTR_NULL(s.guard);
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x53), b, 8), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 33 * PG, 8), 0);
    /* Every MAP_GRANT_REF was given back, failed or not. */
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), 7);
    CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), 7);
    CU_ASSERT_EQUAL(DELTA(grant_mmap_fails), 5);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 2);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 2);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

/* A write over two lazy regions whose second cannot be mapped changes
 * nothing: every piece is mapped before any byte is copied. */
static void test_lazy_write_all_or_nothing(void)
{
    begin();
    fill(60, 2, 11);
    grant_range(0x60, 60, 1, false); /* 0x61 is not granted */
    vmmem_map *m = vt_map("xen-grant:addr=0x8000000000060000,size=4K,domid=7,flags=0xa;"
                          "xen-grant:addr=0x8000000000061000,size=4K,domid=7,flags=0xa");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t before[8], b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    memcpy(before, dom + 60 * PG + PG - 4, 4);
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x61) - 4, b, 8), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 0);
    CU_ASSERT_EQUAL(memcmp(dom + 60 * PG + PG - 4, before, 4), 0);
    /* The short-count write does the first region and stops. */
    CU_ASSERT_EQUAL(vmmem_write(m, gref(0x61) - 4, b, 8), 4);
    CU_ASSERT_EQUAL(memcmp(dom + 60 * PG + PG - 4, b, 4), 0);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

static void test_lazy_readonly(void)
{
    begin();
    fill(34, 2, 11);
    grant_range(0x60, 34, 2, true);
    vmmem_map *m = vt_map("xen-grant:addr=0x8000000000060000,size=8K,domid=7,flags=0xa;"
                          "xen-grant:addr=0x8000000000100000,size=8K,domid=7,flags=0xa,prot=r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(sim->grant(0x100, 34, true), 0);
    CU_ASSERT_EQUAL(sim->grant(0x101, 35, true), 0);
    uint8_t b[8];
    /* prot=rw region over read-only grants: reads map read-only and work... */
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x61), b, 8), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 35 * PG, 8), 0);
    /* ...writes ask for a writable mapping, which the grant refuses. */
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x61), b, 8), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "read-write failed"));
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1);
    CU_ASSERT_EQUAL(DELTA(grant_mmap_fails), 1);
    /* prot=r region: the write is refused before any mapping. */
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x100), b, 8), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), 2);
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x100), b, 8), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 34 * PG, 8), 0);

    /* Slices: the region's own protection (rw) asks a writable mapping, which
     * the read-only grant refuses; a read slice maps it read-only. */
    vmmem_slice sl;
    VT_ASSERT_RC(vmmem_get_slice(m, gref(0x61) + 8, 16, &sl), -EINVAL);
    VT_ASSERT_RC(vmmem_get_slice_prot(m, gref(0x61) + 8, 16, VMMEM_PROT_READ, &sl), 0);
    CU_ASSERT_PTR_NOT_NULL(sl.guard);
    CU_ASSERT_EQUAL(sl.len, 16);
    CU_ASSERT_EQUAL(sl.prot, VMMEM_PROT_READ);
    if (sl.ptr != NULL)
        CU_ASSERT_EQUAL(memcmp(sl.ptr, dom + 35 * PG + 8, 16), 0);
    VT_ASSERT_RC(vmmem_slice_write(&sl, 0, b, 1), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 1);
    vmmem_slice_release(&sl);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 0);
    /* prot=r region: a writable slice is refused before any mapping. */
    long long maps = DELTA(grant_map_ioctls);
    VT_ASSERT_RC(vmmem_get_slice_prot(m, gref(0x100), 8, VMMEM_PROT_RW, &sl), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), maps);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

/* A virtio driver's out-buffers: grants the front-end made read-only, in a
 * region the back-end maps per access.  The iterator asked for read access
 * walks them; with the region's own protection (rw) it cannot. */
static void test_lazy_readonly_iter(void)
{
    begin();
    fill(40, 3, 21);
    grant_range(0x70, 40, 3, true);
    vmmem_map *m = vt_map("xen-grant:addr=0x8000000000070000,size=8K,domid=7,flags=0xa;"
                          "xen-grant:addr=0x8000000000072000,size=4K,domid=7,flags=0xa,prot=r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_slice_iter it;
    vmmem_slice sl;
    /* the region's own protection: a writable mapping, refused by the grant */
    vmmem_slices_begin(&it, m, gref(0x70) + 8, 3 * PG - 16);
    VT_ASSERT_RC(vmmem_slices_next(&it, &sl), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &sl), 0);
    /* read-only iteration: both regions, mapped read-only, one access each */
    long long mmaps = DELTA(grant_mmaps);
    vmmem_slices_begin_prot(&it, m, gref(0x70) + 8, 3 * PG - 16, VMMEM_PROT_READ);
    uint64_t off = 8;
    int rc, n = 0;
    while ((rc = vmmem_slices_next(&it, &sl)) > 0) {
        n++;
        CU_ASSERT_EQUAL(sl.prot, VMMEM_PROT_READ);
        CU_ASSERT_PTR_NOT_NULL(sl.guard);
        CU_ASSERT_EQUAL(sl.len, n == 1 ? 2 * PG - 8 : PG - 8);
        if (sl.ptr != NULL)
            CU_ASSERT_EQUAL(memcmp(sl.ptr, dom + 40 * PG + off, sl.len), 0);
        uint8_t b = 0;
        VT_ASSERT_RC(vmmem_slice_write(&sl, 0, &b, 1), VMMEM_EREAD_ONLY);
        CU_ASSERT_EQUAL(stats().live_grant_vmas, 1);
        off += sl.len;
        vmmem_slice_release(&sl);
    }
    VT_ASSERT_RC(rc, 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(off, 3 * PG - 8);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps) - mmaps, 2);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 0);
    /* read-write asked of the prot=r region: VMMEM_EREAD_ONLY before mapping it */
    vmmem_slices_begin_prot(&it, m, gref(0x72), 16, VMMEM_PROT_RW);
    long long ioctls = DELTA(grant_map_ioctls);
    VT_ASSERT_RC(vmmem_slices_next(&it, &sl), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, gref(0x72));
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), ioctls);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &sl), 0);
    /* any other prot: -EINVAL, once */
    vmmem_slices_begin_prot(&it, m, gref(0x72), 16, VMMEM_PROT_WRITE);
    VT_ASSERT_RC(vmmem_slices_next(&it, &sl), -EINVAL);
    CU_ASSERT_EQUAL(vmmem_slices_next(&it, &sl), 0);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

static void test_lazy_fd_io(void)
{
    begin();
    fill(10, 8, 12);
    grant_range(0x40, 10, 8, false);
    vmmem_map *m = vt_map(LAZY8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    int p[2];
    CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
    VT_ASSERT_RC(vmmem_write_all_to_fd(m, gref(0x43) - 100, p[1], 300), 0);
    uint8_t got[300];
    CU_ASSERT_EQUAL(read(p[0], got, sizeof got), 300);
    CU_ASSERT_EQUAL(memcmp(got, dom + 13 * PG - 100, 300), 0);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1);
    uint8_t in[200];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(255 - i);
    CU_ASSERT_EQUAL(write(p[1], in, sizeof in), 200);
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, gref(0x45) + 10, p[0], 200), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 15 * PG + 10, in, sizeof in), 0);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 2);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 2);
    close(p[0]);
    close(p[1]);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

/* ---- the grant cache ---- */

static void test_cache_hits(void)
{
    begin();
    fill(10, 8, 13);
    grant_range(0x40, 10, 8, false);
    vmmem_map *m = vt_map(LAZY8 ",cache=4");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t b[8];
    for (int i = 0; i < 10; i++) {
        VT_ASSERT_RC(vmmem_read_slice(m, gref(0x42) + (uint64_t)i * 8, b, 8), 0);
        CU_ASSERT_EQUAL(memcmp(b, dom + 12 * PG + i * 8, 8), 0);
    }
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 0);
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 1);
    /* A write needs a writable mapping: a miss; then reads hit it too. */
    uint8_t in[8] = {9, 8, 7, 6, 5, 4, 3, 2};
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x43), in, 8), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 13 * PG, in, 8), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x43) + 4, b, 4), 0);
    CU_ASSERT_EQUAL(memcmp(b, in + 4, 4), 0);
    /* The domain's later writes are seen through the cached mapping. */
    dom[13 * PG + 100] = 0x99;
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x43) + 100, b, 1), 0);
    CU_ASSERT_EQUAL(b[0], 0x99);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 2);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 0);
    /* Slices are served from the cache and release does not unmap. */
    vmmem_slice s;
    VT_ASSERT_RC(vmmem_get_slice(m, gref(0x43), 8, &s), 0);
    CU_ASSERT_EQUAL(memcmp(s.ptr, in, 8), 0);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 2);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 0);
    vmmem_map_unref(m); /* invalidates the cache */
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 2);
    CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), 2);
    EXPECT_CLEAN();
}

static void test_cache_lru(void)
{
    begin();
    grant_range(0x40, 10, 8, false);
    vmmem_map *m = vt_map(LAZY8 ",cache=2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t b[4];
    /* A B A C A B: C evicts B (least recently used), B evicts C. */
    const unsigned seq[] = {0, 1, 0, 2, 0, 1};
    const long long maps[] = {1, 2, 2, 3, 3, 4};
    const long long unmaps[] = {0, 0, 0, 1, 1, 2};
    for (size_t i = 0; i < 6; i++) {
        VT_ASSERT_RC(vmmem_read_slice(m, gref(0x40 + seq[i]), b, 4), 0);
        CU_ASSERT_EQUAL(DELTA(grant_mmaps), maps[i]);
        CU_ASSERT_EQUAL(DELTA(grant_munmaps), unmaps[i]);
    }
    CU_ASSERT_EQUAL(stats().live_grant_vmas, 2);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 4);
    EXPECT_CLEAN();
}

static void test_cache_busy_entries(void)
{
    begin();
    fill(10, 2, 14);
    grant_range(0x40, 10, 8, false);
    vmmem_map *m = vt_map(LAZY8 ",cache=1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_slice s;
    VT_ASSERT_RC(vmmem_get_slice(m, gref(0x40), 64, &s), 0); /* holds the only entry */
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1);
    uint8_t b[4];
    /* Page 1 cannot evict a held entry: mapped and unmapped uncached. */
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x41), b, 4), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 11 * PG, 4), 0);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 2);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 1);
    /* Page 0 is a hit while the slice holds it. */
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x40) + 8, b, 4), 0);
    CU_ASSERT_EQUAL(memcmp(b, dom + 10 * PG + 8, 4), 0);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 2);
    vmmem_slice_release(&s);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 1); /* cached, still mapped */
    /* Now idle, the entry is evicted for page 1. */
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x41), b, 4), 0);
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 3);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 2);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(DELTA(grant_munmaps), 3);
    EXPECT_CLEAN();
}

static void test_cache_pins_grants(void)
{
    begin();
    grant_range(0x40, 10, 8, false);
    vmmem_map *m = vt_map(LAZY8 ",cache=4");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    uint8_t b[4];
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x44), b, 4), 0);
    /* The cached mapping keeps the grant in use: the guest cannot end it. */
    CU_ASSERT_EQUAL(sim->revoke(0x44), -EBUSY);
    CU_ASSERT_EQUAL(sim->revoke(0x45), 0);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(sim->revoke(0x44), 0);
    EXPECT_CLEAN();
}

struct workload_result {
    long long maps, unmaps_during, unmaps_total, pages;
};

/* A virtio-like loop over a 32-page lazy region: a descriptor read on a hot
 * page, a 256-byte buffer read from one of 24 data pages in turn, a used-
 * index write and read-back on a second hot page. */
static struct workload_result run_workload(const char *cache_opt)
{
    struct workload_result r = {0, 0, 0, 0};
    grant_range(0x80, 0, 32, false);
    vmmem_map *m = vt_map(cfg("xen-grant:addr=0x8000000000080000,size=128K,domid=7,flags=0xa%s",
                              cache_opt));
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    begin();
    uint8_t b[256];
    uint32_t idx;
    for (unsigned round = 0; round < 96; round++) {
        VT_ASSERT_RC(vmmem_read_slice(m, gref(0x80) + (round % 8) * 16, b, 16), 0);
        VT_ASSERT_RC(vmmem_read_slice(m, gref(0x88 + round % 24), b, 256), 0);
        idx = round;
        VT_ASSERT_RC(vmmem_write_obj(m, gref(0x81) + 4, &idx, 4), 0);
        idx = 0;
        VT_ASSERT_RC(vmmem_read_obj(m, gref(0x81) + 4, &idx, 4), 0);
        CU_ASSERT_EQUAL(idx, round);
    }
    r.maps = DELTA(grant_mmaps);
    r.unmaps_during = DELTA(grant_munmaps);
    r.pages = DELTA(grant_pages_mapped);
    CU_ASSERT_EQUAL(DELTA(grant_map_ioctls), r.maps);
    vmmem_map_unref(m);
    r.unmaps_total = DELTA(grant_munmaps);
    CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), r.unmaps_total);
    CU_ASSERT_EQUAL(sim->revoke_all(), 0);
    return r;
}

static void test_cache_measurement(void)
{
    struct xensim_stats start = stats();
    struct workload_result none = run_workload("");
    struct workload_result c16 = run_workload(",cache=16");
    struct workload_result c32 = run_workload(",cache=32");
    fprintf(stdout,
            "\n    grant cache, 96 rounds x 4 accesses on a 32-page lazy region:"
            "\n      no cache : %lld maps, %lld unmaps (%lld during the loop)"
            "\n      cache=16 : %lld maps, %lld unmaps (%lld during the loop)"
            "\n      cache=32 : %lld maps, %lld unmaps (%lld during the loop)\n",
            none.maps, none.unmaps_total, none.unmaps_during, c16.maps, c16.unmaps_total,
            c16.unmaps_during, c32.maps, c32.unmaps_total, c32.unmaps_during);
    /* Without a cache every access maps and unmaps. */
    CU_ASSERT_EQUAL(none.maps, 384);
    CU_ASSERT_EQUAL(none.unmaps_during, 384);
    CU_ASSERT_EQUAL(none.unmaps_total, 384);
    /* 16 entries: the two hot pages always hit (a read-back hits the
     * writable entry); the 24 data pages cycle through the other 14 slots
     * and always miss (LRU under a cyclic scan): 2 + 96 maps, the first 16
     * fill the cache and the 82 later misses each evict one. */
    CU_ASSERT_EQUAL(c16.maps, 98);
    CU_ASSERT_EQUAL(c16.unmaps_during, 82);
    CU_ASSERT_EQUAL(c16.unmaps_total, 98);
    /* 32 entries hold all 26 mappings: each page is mapped once. */
    CU_ASSERT_EQUAL(c32.maps, 26);
    CU_ASSERT_EQUAL(c32.unmaps_during, 0);
    CU_ASSERT_EQUAL(c32.unmaps_total, 26);
    base = start;
    EXPECT_CLEAN();
}

struct reader {
    vmmem_map *m;
    unsigned seed;
    int errors;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    unsigned x = r->seed;
    for (int i = 0; i < 300; i++) {
        x = x * 1103515245u + 12345u;
        unsigned page = (x >> 16) % 8, off = (x >> 8) % (PG - 16);
        uint8_t b[16];
        if (vmmem_read_slice(r->m, gref(0x40 + page) + off, b, 16) != 0 ||
            memcmp(b, dom + (10 + page) * PG + off, 16) != 0)
            r->errors++;
    }
    return NULL;
}

/* Four threads on one lazy region, with and without the cache. */
static void test_lazy_threads(void)
{
    begin();
    fill(10, 8, 16);
    grant_range(0x40, 10, 8, false);
    const char *opts[] = {"", ",cache=3"};
    for (size_t k = 0; k < 2; k++) {
        vmmem_map *m = vt_map(cfg(LAZY8 "%s", opts[k]));
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        pthread_t t[4];
        struct reader r[4];
        for (unsigned i = 0; i < 4; i++) {
            r[i] = (struct reader){m, 77 * i + 1, 0};
            CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
        }
        for (unsigned i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            CU_ASSERT_EQUAL(r[i].errors, 0);
        }
        if (k == 0) /* one mapping per access */
            CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1200);
        vmmem_map_unref(m);
        CU_ASSERT_EQUAL(DELTA(grant_munmaps), DELTA(grant_mmaps));
        CU_ASSERT_EQUAL(DELTA(grant_unmap_ioctls), DELTA(grant_map_ioctls));
    }
    EXPECT_CLEAN();
}

/* ---- mixed maps ---- */

static void test_mixed_map(void)
{
    begin();
    fill(16, 16, 15);
    grant_range(0x100, 40, 4, false);
    grant_range(0x104, 44, 2, false);
    grant_range(0x200, 50, 2, false);
    vmmem_map *m = vt_map("mmap:addr=0,size=64K;"
                          "xen-foreign:addr=0x10000,size=64K,domid=7;"
                          "xen-unix:addr=0x20000,size=64K;"
                          "xen-grant:addr=0x8000000000100000,size=16K,domid=7,flags=0xa;"
                          "xen-grant:addr=0x8000000000104000,size=8K,domid=7,flags=0xa,cache=2;"
                          "xen-grant:addr=0x8000000000200000,size=8K,domid=7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 6);
    CU_ASSERT_EQUAL(DELTA(opens), 4);
    uint8_t in[96], out[96];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i + 1);
    /* mmap -> foreign seam. */
    VT_ASSERT_RC(vmmem_write_slice(m, 0xffd0, in, sizeof in), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 16 * PG, in + 0x30, sizeof in - 0x30), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, 0xffd0, out, sizeof out), 0);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    /* foreign -> unix seam. */
    VT_ASSERT_RC(vmmem_write_slice(m, 0x1ffd0, in, sizeof in), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 32 * PG - 0x30, in, 0x30), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x1ffd0, out, sizeof out), 0);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    /* Across two touching lazy grant regions: one mapping each. */
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x104) - 48, in, sizeof in), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 44 * PG - 48, in, 48), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 44 * PG, in + 48, 48), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, gref(0x104) - 48, out, sizeof out), 0);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    /* In advance: 1; the write: one per region; the read: the cached region
     * hits its writable entry, the other maps again. */
    CU_ASSERT_EQUAL(DELTA(grant_mmaps), 1 + 2 + 1);
    /* In-advance grant region in the same map. */
    VT_ASSERT_RC(vmmem_write_slice(m, gref(0x201) - 8, in, 16), 0);
    CU_ASSERT_EQUAL(memcmp(dom + 51 * PG - 8, in, 16), 0);
    int64_t n = vmmem_read(m, 0x2fff0, out, 64); /* stops at the end of the unix region */
    CU_ASSERT_EQUAL(n, 16);
    vmmem_map_unref(m);
    EXPECT_CLEAN();
}

/* ---- the simulator's own rules (what the plugin is tested against) ---- */

struct map1 {
    uint32_t count, pad;
    uint64_t index;
    struct {
        uint32_t domid, ref;
    } refs[2];
};
struct unmap1 {
    uint64_t index;
    uint32_t count, pad;
};
#define GNT_MAP _IOC(_IOC_NONE, 'G', 0, 24)
#define GNT_UNMAP _IOC(_IOC_NONE, 'G', 1, 16)

static void test_sim_gntdev_rules(void)
{
    begin();
    grant_range(0x70, 60, 2, false);
    int fd = open(XENSIM_GNTDEV, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    struct map1 a = {.count = 2, .refs = {{DOMID, 0x70}, {DOMID, 0x71}}};
    struct map1 b = {.count = 1, .refs = {{DOMID, 0x70}, {0, 0}}};
    CU_ASSERT_EQUAL(ioctl(fd, GNT_MAP, &a), 0);
    CU_ASSERT_EQUAL(ioctl(fd, GNT_MAP, &b), 0);
    CU_ASSERT_EQUAL(a.index, 0);
    CU_ASSERT_EQUAL(b.index, 2 * PG); /* indices are page offsets, first fit */
    struct map1 z = {.count = 0};
    errno = 0;
    CU_ASSERT_EQUAL(ioctl(fd, GNT_MAP, &z), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    /* mmap must match an entry's index and count. */
    errno = 0;
    CU_ASSERT_EQUAL(mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED);
    CU_ASSERT_EQUAL(errno, EINVAL);
    errno = 0;
    CU_ASSERT_EQUAL(mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), MAP_FAILED);
    CU_ASSERT_EQUAL(errno, EINVAL);
    uint8_t *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CU_ASSERT_NOT_EQUAL_FATAL(p, MAP_FAILED);
    p[PG + 5] = 0x42;
    CU_ASSERT_EQUAL(dom[61 * PG + 5], 0x42);
    errno = 0;
    CU_ASSERT_EQUAL(mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0), MAP_FAILED); /* again */
    CU_ASSERT_EQUAL(errno, EINVAL);
    /* A mapped grant cannot be ended. */
    CU_ASSERT_EQUAL(sim->revoke(0x71), -EBUSY);
    /* Wrong order: the unmap ioctl before munmap. */
    struct unmap1 u = {.index = 0, .count = 2};
    errno = 0;
    CU_ASSERT_EQUAL(ioctl(fd, GNT_UNMAP, &u), -1);
    CU_ASSERT_EQUAL(errno, EBUSY);
    CU_ASSERT_EQUAL(DELTA(unmap_busy), 1);
    CU_ASSERT_EQUAL(munmap(p, 2 * PG), 0);
    CU_ASSERT_EQUAL(ioctl(fd, GNT_UNMAP, &u), 0);
    errno = 0;
    CU_ASSERT_EQUAL(ioctl(fd, GNT_UNMAP, &u), -1);
    CU_ASSERT_EQUAL(errno, ENOENT);
    struct unmap1 wrong = {.index = 2 * PG, .count = 3};
    errno = 0;
    CU_ASSERT_EQUAL(ioctl(fd, GNT_UNMAP, &wrong), -1);
    CU_ASSERT_EQUAL(errno, ENOENT);
    /* Closing with an entry left frees it (and the counter says so). */
    CU_ASSERT_EQUAL(stats().live_grant_maps, 1);
    close(fd);
    CU_ASSERT_EQUAL(DELTA(released_at_close), 1);
    base.unmap_busy++;
    base.released_at_close++;
    EXPECT_CLEAN();
}

struct batch {
    uint32_t num;
    uint16_t dom;
    uint64_t addr;
    const uint64_t *arr;
    int *err;
};
#define PRIV_BATCH _IOC(_IOC_NONE, 'P', 4, sizeof(struct batch))

static void test_sim_privcmd_rules(void)
{
    begin();
    int fd = open(XENSIM_PRIVCMD, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t *w = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CU_ASSERT_NOT_EQUAL_FATAL(w, MAP_FAILED);
    uint64_t arr[4] = {1, 2, 200, 3};
    int err[4] = {9, 9, 9, 9};
    struct batch bt = {2, DOMID, (uint64_t)(uintptr_t)(w + PG), arr, err};
    errno = 0;
    CU_ASSERT_EQUAL(ioctl(fd, PRIV_BATCH, &bt), -1); /* the first batch must fill the window */
    CU_ASSERT_EQUAL(errno, EINVAL);
    uint8_t local[PG];
    bt = (struct batch){4, DOMID, (uint64_t)(uintptr_t)local, arr, err};
    errno = 0;
    CU_ASSERT_EQUAL(ioctl(fd, PRIV_BATCH, &bt), -1); /* not a privcmd window */
    CU_ASSERT_EQUAL(errno, EINVAL);
    bt = (struct batch){4, DOMID, (uint64_t)(uintptr_t)w, arr, err};
    CU_ASSERT_EQUAL(ioctl(fd, PRIV_BATCH, &bt), 0); /* per-page errors, call succeeds */
    CU_ASSERT_EQUAL(err[0], 0);
    CU_ASSERT_EQUAL(err[1], 0);
    CU_ASSERT_EQUAL(err[2], -EINVAL);
    CU_ASSERT_EQUAL(err[3], 0);
    w[3 * PG + 1] = 0x24;
    CU_ASSERT_EQUAL(dom[3 * PG + 1], 0x24);
    /* A later batch may fill the hole, but not remap a mapped page. */
    uint64_t again[1] = {5};
    bt = (struct batch){1, DOMID, (uint64_t)(uintptr_t)w, again, err};
    errno = 0;
    CU_ASSERT_EQUAL(ioctl(fd, PRIV_BATCH, &bt), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    bt.addr = (uint64_t)(uintptr_t)(w + 2 * PG);
    CU_ASSERT_EQUAL(ioctl(fd, PRIV_BATCH, &bt), 0);
    CU_ASSERT_EQUAL(err[0], 0);
    CU_ASSERT_EQUAL(ioctl(fd, 0x1234, &bt), -1);
    CU_ASSERT_EQUAL(errno, ENOTTY);
    /* A window outlives the descriptor, as a mapping holds its file. */
    close(fd);
    CU_ASSERT_EQUAL(stats().live_files, 1);
    CU_ASSERT_EQUAL(w[2 * PG], dom[5 * PG]);
    CU_ASSERT_EQUAL(munmap(w, 4 * PG), 0);
    CU_ASSERT_EQUAL(DELTA(frame_errors), 1);
    CU_ASSERT_EQUAL(DELTA(frames_mapped), 4);
    EXPECT_CLEAN();
}

/* ---- huge regions: bounded allocation -------------------------------------- */

/*
 * A table may name a region of any size.  The plugin must not allocate per
 * page of it up front (it took 12 bytes a page, 48 GiB for 2^32 pages,
 * before any ioctl).  These run in a child process whose private writable
 * memory is limited to 256 MiB (RLIMIT_DATA; not under ASan or TSan, whose
 * shadow and allocator are such memory), so a huge allocation fails there instead of taking the
 * machine; the child reports what it saw through a pipe.
 */
#if defined(__SANITIZE_THREAD__)
#define VT_TSAN 1 /* its address-space layout has no room for a 16 TiB reservation */
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VT_TSAN 1
#endif
#endif
#ifndef VT_TSAN
#define VT_TSAN 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VT_ASAN 1 /* ASan's shadow and TSan's allocator are such memory too */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VT_ASAN 1
#endif
#endif

static char child_report[8192];
static size_t child_len;

static void child_note(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void child_note(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(child_report + child_len, sizeof child_report - child_len,
                     "    line %d: ", line);
    if (n > 0 && (size_t)n < sizeof child_report - child_len)
        child_len += (size_t)n;
    n = vsnprintf(child_report + child_len, sizeof child_report - child_len, fmt, ap);
    if (n > 0 && (size_t)n < sizeof child_report - child_len)
        child_len += (size_t)n;
    if (child_len + 1 < sizeof child_report)
        child_report[child_len++] = '\n';
    va_end(ap);
}
#define CHILD_RC(rc, code)                                                                   \
    do {                                                                                     \
        int c_rc_ = (rc);                                                                    \
        if (c_rc_ != (code))                                                                 \
            child_note(__LINE__, "got %s (%d), want %s: %s", vmmem_err_name(c_rc_), c_rc_,   \
                       vmmem_err_name(code), vmmem_last_message());                         \
    } while (0)
#define CHILD_MSG(needle)                                                                    \
    do {                                                                                     \
        if (strstr(vmmem_last_message(), (needle)) == NULL)                                  \
            child_note(__LINE__, "message \"%s\" lacks \"%s\"", vmmem_last_message(),       \
                       (needle));                                                            \
    } while (0)
#define CHILD_TRUE(cond)                                                                     \
    do {                                                                                     \
        if (!(cond))                                                                         \
            child_note(__LINE__, "%s", #cond);                                               \
    } while (0)

static void run_in_child(void (*fn)(void), const char *what)
{
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_len = 0;
#ifndef VT_ASAN
        struct rlimit rl = {256u << 20, 256u << 20};
        if (setrlimit(RLIMIT_DATA, &rl) != 0)
            child_note(__LINE__, "setrlimit: %s", strerror(errno));
#endif
        fn();
        ssize_t w = write(p[1], child_report, child_len);
        _exit(w == (ssize_t)child_len ? 0 : 3);
    }
    close(p[1]);
    char buf[sizeof child_report + 1];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(p[0]);
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stdout, "\n    %s: the child died (status 0x%x)\n", what, (unsigned)status);
        CU_FAIL("child died");
    }
    if (got > 0) {
        fprintf(stdout, "\n    %s:\n%s", what, buf);
        CU_FAIL(what);
    }
}

static void huge_regions_child(void)
{
    vmmem_map *m = NULL;
    struct xensim_stats s0, s1;
    /* On a 32-bit host none of these sizes fits size_t: VMMEM_EOVERFLOW. */
    bool wide = SIZE_MAX > 0xffffffffu;
    /* 2^32 - 1 pages of domain 7 (which has 64 frames): mapped batch by
     * batch, the first batch reaches frame 0x40 and fails cleanly.  (Under
     * qemu-user, reserving 16 TiB makes the emulator track every page of
     * it, and TSan's layout has no room for it: left to native runs.) */
    if ((vt_emulator() == NULL && !VT_TSAN) || !wide) {
        s0 = stats();
        CHILD_RC(vmmem_map_from_config(&m, NULL, "xen-foreign:addr=0,size=0xffffffff000,domid=7",
                                       NULL),
                 wide ? -EINVAL : VMMEM_EOVERFLOW);
        CHILD_MSG(wide ? "guest frame 0x40 " : "larger than this host can map");
        sim->stats(&s1);
        CHILD_TRUE(s1.batch_calls - s0.batch_calls == (wide ? 1 : 0));
        CHILD_TRUE(s1.live_windows == 0);
    }
    /* 2^50 bytes: more address space than the host has; a clear error. */
    CHILD_RC(vmmem_map_from_config(&m, NULL, "xen-foreign:addr=0,size=0x4000000000000,domid=7",
                                   NULL),
             wide ? -ENOMEM : VMMEM_EOVERFLOW);
    CHILD_MSG(wide ? "cannot reserve 1125899906842624 bytes" : "larger than this host can map");
    /* Grants: 2^31 pages mapped in advance are refused before anything is
     * asked of the device; 2^50 bytes of refs do not fit 32 bits. */
    s0 = stats();
    CHILD_RC(vmmem_map_from_config(
                 &m, NULL, "xen-grant:addr=0x8000000000000000,size=0x80000000000,domid=7", NULL),
             wide ? VMMEM_EUNSUPPORTED : VMMEM_EOVERFLOW);
    CHILD_MSG(wide ? "more than the 1048576 pages" : "larger than this host can map");
    CHILD_RC(vmmem_map_from_config(
                 &m, NULL, "xen-grant:addr=0x8000000000000000,size=0x4000000000000,domid=7",
                 NULL),
             wide ? VMMEM_EBAD_VALUE : VMMEM_EOVERFLOW);
    sim->stats(&s1);
    CHILD_TRUE(s1.grant_map_ioctls == s0.grant_map_ioctls);
#if SIZE_MAX > 0xffffffffu
    /* Per access: the region costs nothing up front; one access of 2^40
     * bytes is refused, an ordinary one works. */
    CHILD_RC(vmmem_map_from_config(
                 &m, NULL,
                 "xen-grant:addr=0x8000000000000000,size=0x80000000000,domid=7,flags=0xa", NULL),
             0);
    if (m != NULL) {
        vmmem_slice sl;
        CHILD_RC(vmmem_get_slice(m, GRANT_BIT, (size_t)1 << 40, &sl), VMMEM_EUNSUPPORTED);
        CHILD_MSG("more than the 1048576 pages");
        for (uint32_t r = 0; r < 2; r++)
            CHILD_RC(sim->grant(r, r, false), 0);
        CHILD_RC(vmmem_get_slice(m, GRANT_BIT + 100, 2 * PG - 200, &sl), 0);
        vmmem_slice_release(&sl);
        /* the iterator maps a map-on-access region a bounded piece at a time */
        vmmem_slice_iter it;
        vmmem_slices_begin(&it, m, GRANT_BIT, (uint64_t)1 << 43);
        CHILD_RC(vmmem_slices_next(&it, &sl), -EINVAL); /* refs 2.. are not granted */
        CHILD_MSG("0x0..0xff");
        vmmem_map_unref(m);
        CHILD_RC(sim->revoke_all(), 0);
    }
#endif
}

static void test_huge_regions(void)
{
    run_in_child(huge_regions_child, "huge regions");
}

/* A foreign region of more than one batch (65536 frames) maps every frame
 * at its place: two device mappings, two batches. */
static void foreign_batches_child(void)
{
    uint64_t frames = ((uint64_t)1 << 16) + 16;
    int fd = sim->domain(DOMID, frames);
    CHILD_TRUE(fd >= 0);
    if (fd < 0)
        return;
    uint8_t *d = mmap(NULL, frames * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHILD_TRUE(d != MAP_FAILED);
    if (d == MAP_FAILED)
        return;
    static const uint64_t probe[] = {0, 1, 0xffff, 0x10000, 0x1000f};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++)
        memset(d + probe[i] * PG, (int)(0x40 + i), PG);
    struct xensim_stats s0 = stats(), s1;
    vmmem_map *m = NULL;
    CHILD_RC(vmmem_map_from_config(&m, NULL, "xen-foreign:addr=0,size=0x10010000,domid=7", NULL),
             0);
    sim->stats(&s1);
    CHILD_TRUE(s1.privcmd_mmaps - s0.privcmd_mmaps == 2);
    CHILD_TRUE(s1.batch_calls - s0.batch_calls == 2);
    CHILD_TRUE(s1.frames_mapped - s0.frames_mapped == frames);
    if (m != NULL) {
        for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
            uint8_t b[16];
            CHILD_RC(vmmem_read_slice(m, probe[i] * PG + 8, b, 16), 0);
            CHILD_TRUE(b[0] == 0x40 + i && b[7] == 0x40 + i);
        }
        uint64_t v = 0x1122334455667788ull;
        CHILD_RC(vmmem_write_obj(m, 0x10000 * (uint64_t)PG - 4, &v, 8), 0); /* the seam */
        CHILD_TRUE(memcmp(d + 0x10000 * (uint64_t)PG - 4, &v, 8) == 0);
        vmmem_map_unref(m);
    }
    sim->stats(&s1);
    CHILD_TRUE(s1.live_windows == 0 && s1.bad_calls == s0.bad_calls);
}

static void test_foreign_batches(void)
{
    run_in_child(foreign_batches_child, "foreign region of two batches");
}

/* ---- running under the simulator ---- */

static int suite_init(void)
{
    int fd = sim->domain(DOMID, NFRAMES);
    if (fd < 0)
        return -1;
    dom = mmap(NULL, NFRAMES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return dom == MAP_FAILED ? -1 : 0;
}

static const struct vt_test option_tests[] = {
    {"providers registered by vmmem-xen.so", test_providers_registered},
    {"invalid flag combinations are refused", test_invalid_flags},
    {"flags must name the provider's model", test_flags_disagree},
    {"valid flags are accepted", test_flags_accepted},
    {"bad options are refused", test_bad_options},
    {NULL, NULL},
};
static const struct vt_test unix_tests[] = {
    {"plain memory through the plugin", test_unix_region},
    {NULL, NULL},
};
static const struct vt_test foreign_tests[] = {
    {"reads the domain's frames", test_foreign_reads_domain},
    {"writes reach the domain and back", test_foreign_writes_domain},
    {"frames outside the domain fail cleanly", test_foreign_out_of_range},
    {"another domain fails cleanly", test_foreign_wrong_domain},
    {"paged-out frame fails cleanly", test_foreign_paged_out},
    {"inherited fd= is duplicated", test_foreign_inherited_fd},
    {"prot=r", test_foreign_readonly},
    {"a region of two batches", test_foreign_batches},
    {"huge regions: clear errors, no huge allocation", test_huge_regions},
    {NULL, NULL},
};
static const struct vt_test grant_tests[] = {
    {"in advance: data both ways", test_grant_advance_data},
    {"in advance: each ref picks its frame", test_grant_refs_pick_frames},
    {"in advance: ungranted ref fails cleanly", test_grant_ungranted_advance},
    {"in advance: read-only grants", test_grant_readonly_advance},
    {"lazy: no host address, no atomics", test_lazy_no_host_address},
    {"lazy: one map and unmap per access", test_lazy_maps_per_access},
    {"lazy: a slice holds its mapping until release", test_lazy_slice_holds_mapping},
    {"lazy: map failure is an access error", test_lazy_map_failure_is_an_error},
    {"lazy: a failed write over two regions changes nothing", test_lazy_write_all_or_nothing},
    {"lazy: read-only grants", test_lazy_readonly},
    {"lazy: read-only iteration (vmmem_slices_begin_prot)", test_lazy_readonly_iter},
    {"lazy: fd I/O", test_lazy_fd_io},
    {NULL, NULL},
};
static const struct vt_test cache_tests[] = {
    {"hits, prot and invalidation", test_cache_hits},
    {"least recently used is evicted", test_cache_lru},
    {"held entries are not evicted", test_cache_busy_entries},
    {"cached mappings pin grants", test_cache_pins_grants},
    {"measurement", test_cache_measurement},
    {"concurrent accesses", test_lazy_threads},
    {NULL, NULL},
};
static const struct vt_test mixed_tests[] = {
    {"mmap, foreign, unix and grant regions in one map", test_mixed_map},
    {NULL, NULL},
};
static const struct vt_test sim_tests[] = {
    {"gntdev rules", test_sim_gntdev_rules},
    {"privcmd rules", test_sim_privcmd_rules},
    {NULL, NULL},
};

static const struct vt_suite s_options = {"xen: flags and options", suite_init, NULL, option_tests};
static const struct vt_suite s_unix = {"xen-unix", NULL, NULL, unix_tests};
static const struct vt_suite s_foreign = {"xen-foreign", NULL, NULL, foreign_tests};
static const struct vt_suite s_grant = {"xen-grant", NULL, NULL, grant_tests};
static const struct vt_suite s_cache = {"xen-grant cache", NULL, NULL, cache_tests};
static const struct vt_suite s_mixed = {"xen: mixed maps", NULL, NULL, mixed_tests};
static const struct vt_suite s_sim = {"xensim: the modelled kernel rules", NULL, NULL, sim_tests};

/* Run again with the simulator preloaded (and ASan's runtime first). */
static int reexec(char **argv)
{
    char root[PATH_MAX];
    const char *r = getenv("VMMEM_BUILD_ROOT");
    if (r != NULL) {
        snprintf(root, sizeof root, "%s", r);
    } else { /* <root>/tests/test_xen */
        ssize_t n = readlink("/proc/self/exe", root, sizeof root - 1);
        if (n <= 0) {
            perror("test_xen: readlink /proc/self/exe");
            return EXIT_FAILURE;
        }
        root[n] = '\0';
        for (int i = 0; i < 2; i++) {
            char *slash = strrchr(root, '/');
            if (slash != NULL)
                *slash = '\0';
        }
    }
    char simpath[PATH_MAX + 32];
    snprintf(simpath, sizeof simpath, "%s/tests/xensim/xensim.so", root);
    if (access(simpath, R_OK) != 0) {
        fprintf(stdout, "test_xen: simulator %s: %s\n", simpath, strerror(errno));
        return EXIT_FAILURE;
    }
    const char *asan_rt = "";
    void *asan = dlsym(RTLD_DEFAULT, "__asan_init");
    if (asan == NULL) /* scons tsan=1: the TSan runtime must come first just the same */
        asan = dlsym(RTLD_DEFAULT, "__tsan_init");
    Dl_info di;
    if (asan != NULL && dladdr(asan, &di) != 0 && di.dli_fname != NULL &&
        strstr(di.dli_fname, ".so") != NULL)
        asan_rt = di.dli_fname; /* a shared ASan runtime must come first */
    const char *old = getenv("LD_PRELOAD");
    size_t need = strlen(asan_rt) + strlen(simpath) + (old ? strlen(old) : 0) + 3;
    char *preload = malloc(need);
    if (preload == NULL)
        return EXIT_FAILURE;
    snprintf(preload, need, "%s%s%s%s%s", asan_rt, *asan_rt ? ":" : "", simpath,
             old && *old ? ":" : "", old && *old ? old : "");
    setenv("XENSIM_ACTIVE", "1", 1);
    const char *prefix = getenv("VMMEM_TEST_EXEC_PREFIX");
    if (prefix != NULL && *prefix != '\0') {
        /* A cross build run under qemu-user (VMMEM_TEST_EXEC_PREFIX, e.g.
         * "qemu-aarch64 -L /usr/aarch64-linux-gnu"): exec the emulator
         * again on this binary, and hand the preload to the emulated
         * program only (QEMU_SET_ENV), not to the emulator itself. */
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            perror("test_xen: readlink /proc/self/exe");
            return EXIT_FAILURE;
        }
        self[n] = '\0';
        size_t qlen = strlen(preload) + 64;
        char *qenv = malloc(qlen);
        char words[1024];
        snprintf(words, sizeof words, "%s", prefix);
        char *full[64];
        size_t k = 0;
        char *save = NULL;
        for (char *w = strtok_r(words, " ", &save); w != NULL && k < 32;
             w = strtok_r(NULL, " ", &save))
            full[k++] = w;
        full[k++] = self;
        for (int i = 1; argv[i] != NULL && k < 63; i++)
            full[k++] = argv[i];
        full[k] = NULL;
        if (qenv == NULL)
            return EXIT_FAILURE;
        snprintf(qenv, qlen, "LD_PRELOAD=%s,XENSIM_ACTIVE=1", preload);
        setenv("QEMU_SET_ENV", qenv, 1);
        execvp(full[0], full);
        fprintf(stdout, "test_xen: execvp %s: %s\n", full[0], strerror(errno));
        return EXIT_FAILURE;
    }
    setenv("LD_PRELOAD", preload, 1);
    execv("/proc/self/exe", argv);
    fprintf(stdout, "test_xen: execv: %s\n", strerror(errno));
    return EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    (void)argc;
    if (getenv("XENSIM_ACTIVE") == NULL)
        return reexec(argv);
    void *p = dlsym(RTLD_DEFAULT, XENSIM_API_SYMBOL);
    xensim_api_fn fn = NULL;
    memcpy(&fn, &p, sizeof p);
    sim = fn ? fn() : NULL;
    if (sim == NULL || sim->version != XENSIM_API_VERSION) {
        fprintf(stdout, "test_xen: the Xen simulator is not loaded (LD_PRELOAD=%s)\n",
                getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
        return EXIT_FAILURE;
    }
    const struct vt_suite *const suites[] = {&s_options, &s_unix,  &s_foreign, &s_grant,
                                             &s_cache,   &s_mixed, &s_sim,     NULL};
    return vt_main(suites);
}

/*
 * Accesses through a map (map.h): read/write (short at holes), the
 * all-or-error *_slice / *_obj, atomics, file-descriptor I/O, torn values
 * across a region seam, and read-only regions.  Cases follow the vm-memory
 * crate's guest_memory.rs (inventory 3.5), volatile_memory.rs (3.3) and
 * mmap/mod.rs (3.7) tests, adapted to the C API's semantics.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Two adjacent one-page regions (the seed README's example). */
#define ADJ_CONFIG "mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000"
/* The crate's mmap/mod.rs map: [0,0x400) hole [0x800,0xc00)[0xc00,0x1000). */
#define HOLEY_CONFIG "mmap:addr=0,size=0x400;mmap:addr=0x800,size=0x400;mmap:addr=0xc00,size=0x400"
/* One region [0x1000,0x1400) with holes on both sides. */
#define SMALL_CONFIG "mmap:addr=0x1000,size=0x400"
/* Touching regions whose seam (0x1003) is not 8-aligned. */
#define ODD_SEAM_CONFIG "mmap:addr=0,size=0x1003;mmap:addr=0x1003,size=0x1000"
#define RO_CONFIG "mmap:addr=0,size=4K,prot=r"

/* ---- helpers ---------------------------------------------------------------- */

/* Fill [addr, addr+len) with byte c (must succeed). */
static void fill(const vmmem_map *m, vmmem_gaddr_t addr, size_t len, uint8_t c)
{
    uint8_t *buf = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memset(buf, c, len);
    VT_ASSERT_RC(vmmem_write_slice(m, addr, buf, len), 0);
    free(buf);
}

/* True when every byte of [addr, addr+len) equals c. */
static bool all_bytes(const vmmem_map *m, vmmem_gaddr_t addr, size_t len, uint8_t c)
{
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return false;
    memset(buf, (uint8_t)~c, len);
    bool ok = vmmem_read_slice(m, addr, buf, len) == 0;
    for (size_t i = 0; ok && i < len; i++)
        if (buf[i] != c) {
            fprintf(stdout, "\n    byte at 0x%llx is 0x%02x, want 0x%02x\n",
                    (unsigned long long)(addr + i), buf[i], c);
            ok = false;
        }
    free(buf);
    return ok;
}

static void assert_partial(uint64_t addr, uint64_t expected, uint64_t completed)
{
    const struct vmmem_error *e = vmmem_last_error();
    CU_ASSERT_EQUAL(e->code, VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(e->addr, addr);
    CU_ASSERT_EQUAL(e->expected, expected);
    CU_ASSERT_EQUAL(e->completed, completed);
    if (e->addr != addr || e->expected != expected || e->completed != completed)
        fprintf(stdout, "\n    PARTIAL detail: addr 0x%llx expected %llu completed %llu; want "
                        "0x%llx %llu %llu\n",
                (unsigned long long)e->addr, (unsigned long long)e->expected,
                (unsigned long long)e->completed, (unsigned long long)addr,
                (unsigned long long)expected, (unsigned long long)completed);
}

static void assert_invalid_at(uint64_t addr)
{
    const struct vmmem_error *e = vmmem_last_error();
    CU_ASSERT_EQUAL(e->code, VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(e->addr, addr);
    if (e->addr != addr)
        fprintf(stdout, "\n    INVALID_ADDRESS detail addr 0x%llx, want 0x%llx\n",
                (unsigned long long)e->addr, (unsigned long long)addr);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes currently readable from fd without blocking (-1: none / error). */
static ssize_t drain_nonblock(int fd, void *buf, size_t len)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    ssize_t n = read(fd, buf, len);
    fcntl(fd, F_SETFL, fl);
    return n;
}

static int temp_file(void)
{
    char path[] = "/tmp/vmmem-test-access-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    unlink(path);
    return fd;
}

/* ---- read / write ------------------------------------------------------------ */

static void test_seam_5_bytes(void)
{
    /* seed README: write 5 bytes at 0xffc over two adjacent regions, read back */
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    static const uint8_t sample[5] = {1, 2, 3, 4, 5};
    CU_ASSERT_EQUAL(vmmem_write(m, 0xffc, sample, 5), 5);
    uint8_t buf[5] = {0};
    CU_ASSERT_EQUAL(vmmem_read(m, 0xffc, buf, 5), 5);
    CU_ASSERT_EQUAL(memcmp(buf, sample, 5), 0);
    /* the bytes really are split over the two regions */
    struct vmmem_region_info i0, i1;
    vmmem_region_get_info(vmmem_map_region(m, 0), &i0);
    vmmem_region_get_info(vmmem_map_region(m, 1), &i1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i0.host);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i1.host);
    CU_ASSERT_EQUAL(memcmp((uint8_t *)i0.host + 0xffc, sample, 4), 0);
    CU_ASSERT_EQUAL(((uint8_t *)i1.host)[0], 5);
    CU_ASSERT_EQUAL(((uint8_t *)i1.host)[1], 0);
    CU_ASSERT_EQUAL(((uint8_t *)i0.host)[0xffb], 0);
    /* the same through the all-or-error calls */
    static const uint8_t other[5] = {9, 8, 7, 6, 5};
    VT_ASSERT_RC(vmmem_write_slice(m, 0xffc, other, 5), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, 0xffc, buf, 5), 0);
    CU_ASSERT_EQUAL(memcmp(buf, other, 5), 0);
    vmmem_map_unref(m);
}

static void test_whole_map_roundtrip(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    uint8_t in[0x2000], out[0x2000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    CU_ASSERT_EQUAL(vmmem_write(m, 0, in, sizeof in), 0x2000);
    memset(out, 0, sizeof out);
    CU_ASSERT_EQUAL(vmmem_read(m, 0, out, sizeof out), 0x2000);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    /* asking for more than the map holds: short, not an error */
    uint8_t big[0x2100];
    CU_ASSERT_EQUAL(vmmem_read(m, 0, big, sizeof big), 0x2000);
    CU_ASSERT_EQUAL(memcmp(in, big, 0x2000), 0);
    CU_ASSERT_EQUAL(vmmem_write(m, 0x1f00, big, sizeof big), 0x100);
    vmmem_map_unref(m);
}

static void test_write_short_at_region_end(void)
{
    /* crate: write of 5 bytes at 0x13ff in [0x1000,0x1400) returns 1 */
    vmmem_map *m = vt_map(SMALL_CONFIG);
    if (m == NULL)
        return;
    static const uint8_t sample[5] = {0x11, 0x22, 0x33, 0x44, 0x55};
    CU_ASSERT_EQUAL(vmmem_write(m, 0x13ff, sample, 5), 1);
    uint8_t buf[5] = {0};
    CU_ASSERT_EQUAL(vmmem_read(m, 0x13ff, buf, 5), 1);
    CU_ASSERT_EQUAL(buf[0], 0x11);
    uint8_t one = 0;
    VT_ASSERT_RC(vmmem_read_slice(m, 0x13ff, &one, 1), 0);
    CU_ASSERT_EQUAL(one, 0x11);
    CU_ASSERT_TRUE(all_bytes(m, 0x13f0, 0xf, 0));
    vmmem_map_unref(m);
}

static void test_short_at_holes(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    uint8_t buf[0x1000];
    memset(buf, 0x42, sizeof buf);
    /* stops at the hole at 0x400 */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x3f8, buf, 0x10), 8);
    CU_ASSERT_EQUAL(vmmem_read(m, 0x3f8, buf, 0x10), 8);
    /* crosses the touching seam at 0xc00, stops at the end of the map */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x800, buf, 0x900), 0x800);
    CU_ASSERT_EQUAL(vmmem_read(m, 0x800, buf, 0x900), 0x800);
    CU_ASSERT_TRUE(all_bytes(m, 0x800, 0x800, 0x42));
    /* one byte before the hole */
    CU_ASSERT_EQUAL(vmmem_write(m, 0x3ff, buf, 0x1000), 1);
    vmmem_map_unref(m);
}

static void test_first_byte_unbacked(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    uint8_t buf[16] = {0};
    static const uint64_t holes[] = {0x400, 0x600, 0x7ff, 0x1000, UINT64_MAX};
    for (size_t i = 0; i < ARRAY_LEN(holes); i++) {
        VT_ASSERT_RC(vmmem_write(m, holes[i], buf, sizeof buf), VMMEM_EINVALID_ADDRESS);
        assert_invalid_at(holes[i]);
        VT_ASSERT_RC(vmmem_read(m, holes[i], buf, sizeof buf), VMMEM_EINVALID_ADDRESS);
        assert_invalid_at(holes[i]);
    }
    /* the second byte (0x800) is backed, but the first is not */
    VT_ASSERT_RC(vmmem_read(m, 0x7ff, buf, 2), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(0x7ff);
    vmmem_map_unref(m);
}

static void test_zero_length(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    uint8_t buf[8] = {0};
    static const uint64_t addrs[] = {0, 0x3ff, 0x400, 0x600, 0xfff, 0x1000, UINT64_MAX};
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++) {
        CU_ASSERT_EQUAL(vmmem_read(m, addrs[i], buf, 0), 0);
        CU_ASSERT_EQUAL(vmmem_write(m, addrs[i], buf, 0), 0);
        VT_ASSERT_RC(vmmem_read_slice(m, addrs[i], buf, 0), 0);
        VT_ASSERT_RC(vmmem_write_slice(m, addrs[i], buf, 0), 0);
        VT_ASSERT_RC(vmmem_read_obj(m, addrs[i], buf, 0), 0);
        VT_ASSERT_RC(vmmem_write_obj(m, addrs[i], buf, 0), 0);
    }
    vmmem_map_unref(m);
}

static void test_error_detail_survives_success(void)
{
    vmmem_map *m = vt_map(SMALL_CONFIG);
    if (m == NULL)
        return;
    uint8_t buf[8] = {0};
    VT_ASSERT_RC(vmmem_read(m, 0x2000, buf, 1), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x2000);
    CU_ASSERT_EQUAL(vmmem_read(m, 0x1000, buf, 8), 8);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x1000, buf, 8), 0);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x2000);
    vmmem_map_unref(m);
}

/* ---- *_slice ------------------------------------------------------------------- */

static void test_slice_roundtrip_seam(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    uint8_t in[0x100], out[0x100];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(0xff - i);
    VT_ASSERT_RC(vmmem_write_slice(m, 0xf80, in, sizeof in), 0);
    memset(out, 0, sizeof out);
    VT_ASSERT_RC(vmmem_read_slice(m, 0xf80, out, sizeof out), 0);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    /* the very first and very last bytes of the map */
    VT_ASSERT_RC(vmmem_write_slice(m, 0, in, 1), 0);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x1fff, in + 1, 1), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, 0, out, 1), 0);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x1fff, out + 1, 1), 0);
    CU_ASSERT_EQUAL(out[0], in[0]);
    CU_ASSERT_EQUAL(out[1], in[1]);
    vmmem_map_unref(m);
}

static void test_write_slice_partial_untouched(void)
{
    vmmem_map *m = vt_map(SMALL_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0x13f0, 0x10, 0xaa);
    uint8_t src[8];
    memset(src, 0x55, sizeof src);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x13fc, src, sizeof src), VMMEM_EPARTIAL);
    assert_partial(0x1400, 8, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "0x1400"));
    /* all-or-nothing: the 4 backed bytes were not written */
    CU_ASSERT_TRUE(all_bytes(m, 0x13f0, 0x10, 0xaa));
    vmmem_map_unref(m);
}

static void test_read_slice_partial_untouched(void)
{
    vmmem_map *m = vt_map(SMALL_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0x13f0, 0x10, 0xaa);
    uint8_t dst[8];
    memset(dst, 0xcc, sizeof dst);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x13fc, dst, sizeof dst), VMMEM_EPARTIAL);
    assert_partial(0x1400, 8, 0);
    for (size_t i = 0; i < sizeof dst; i++)
        CU_ASSERT_EQUAL(dst[i], 0xcc);
    vmmem_map_unref(m);
}

static void test_slice_partial_holey(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0x3f0, 0x10, 0x11);
    fill(m, 0xbf0, 0x410, 0x22);
    uint8_t src[0x420];
    memset(src, 0x77, sizeof src);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x3f0, src, 0x20), VMMEM_EPARTIAL);
    assert_partial(0x400, 0x20, 0);
    CU_ASSERT_TRUE(all_bytes(m, 0x3f0, 0x10, 0x11));
    /* over the touching seam at 0xc00, then off the end at 0x1000 */
    VT_ASSERT_RC(vmmem_write_slice(m, 0xbf0, src, 0x420), VMMEM_EPARTIAL);
    assert_partial(0x1000, 0x420, 0);
    CU_ASSERT_TRUE(all_bytes(m, 0xbf0, 0x410, 0x22));
    /* over the touching seam, ending exactly at the last byte: fine */
    VT_ASSERT_RC(vmmem_write_slice(m, 0xbf0, src, 0x410), 0);
    CU_ASSERT_TRUE(all_bytes(m, 0xbf0, 0x410, 0x77));
    vmmem_map_unref(m);
}

static void test_slice_first_byte_unbacked(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    uint8_t buf[4] = {1, 2, 3, 4};
    VT_ASSERT_RC(vmmem_write_slice(m, 0x400, buf, sizeof buf), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(0x400);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x7ff, buf, sizeof buf), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(0x7ff);
    CU_ASSERT_EQUAL(buf[0], 1);
    CU_ASSERT_EQUAL(buf[3], 4);
    VT_ASSERT_RC(vmmem_write_slice(m, UINT64_MAX, buf, 1), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(UINT64_MAX);
    vmmem_map_unref(m);
}

/* ---- *_obj ------------------------------------------------------------------------ */

static void test_obj_past_end(void)
{
    /* crate: u64 at 0x2001 (past the end) -> InvalidGuestAddress(0x2001) */
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    uint64_t v = UINT64_C(0x0123456789abcdef);
    VT_ASSERT_RC(vmmem_write_obj(m, 0x2001, &v, sizeof v), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(0x2001);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "0x2001"));
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0x2001, &v), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(0x2001);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "0x2001"));
    CU_ASSERT_EQUAL(v, UINT64_C(0x0123456789abcdef));
    vmmem_map_unref(m);
}

static void test_obj_partial(void)
{
    /* crate: u64 at 0x1ffc with 4 bytes left -> PartialBuffer{8,4}; here completed 0 */
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0x1ff0, 0x10, 0x3c);
    uint64_t v = UINT64_C(0x0123456789abcdef);
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 0x1ffc, &v), VMMEM_EPARTIAL);
    assert_partial(0x2000, 8, 0);
    CU_ASSERT_TRUE(all_bytes(m, 0x1ff0, 0x10, 0x3c));
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0x1ffc, &v), VMMEM_EPARTIAL);
    assert_partial(0x2000, 8, 0);
    CU_ASSERT_EQUAL(v, UINT64_C(0x0123456789abcdef));
    vmmem_map_unref(m);
}

static void test_obj_roundtrip(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    static const uint64_t addrs[] = {0, 0x8, 0xff8, 0xffc, 0xfff, 0x1000, 0x1001, 0x1ff8};
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++) {
        uint64_t v = UINT64_C(0x1122334455667788) + addrs[i], r = 0;
        VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, addrs[i], &v), 0);
        VT_ASSERT_RC(VMMEM_READ_OBJ(m, addrs[i], &r), 0);
        CU_ASSERT_EQUAL(r, v);
    }
    uint8_t b = 0xab, rb = 0;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 0x1fff, &b), 0);
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0x1fff, &rb), 0);
    CU_ASSERT_EQUAL(rb, 0xab);
    uint16_t h = 0xbeef, rh = 0;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 0xfff, &h), 0); /* misaligned, over the seam */
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0xfff, &rh), 0);
    CU_ASSERT_EQUAL(rh, 0xbeef);
    uint32_t w = 0xcafebabe, rw = 0;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 0xffe, &w), 0);
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0xffe, &rw), 0);
    CU_ASSERT_EQUAL(rw, 0xcafebabe);
    struct {
        uint32_t a, b;
        uint8_t c[24];
    } big = {0x01010101, 0x02020202, {0}}, rbig;
    memset(big.c, 0x5e, sizeof big.c);
    memset(&rbig, 0, sizeof rbig);
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, 0xff0, &big), 0);
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0xff0, &rbig), 0);
    CU_ASSERT_EQUAL(memcmp(&big, &rbig, sizeof big), 0);
    vmmem_map_unref(m);
}

static void test_top_of_address_space(void)
{
    /* A region ends at UINT64_MAX and address 0 is backed too: an access that
     * runs past 2^64 must not wrap around to address 0. */
    vmmem_map *m = vt_map("mmap:addr=0,size=4K;mmap:addr=0xfffffffffffff000,size=4K");
    if (m == NULL)
        return;
    const uint64_t at = UINT64_MAX - 3;
    uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    /* short copies stop at the end of the address space */
    CU_ASSERT_EQUAL(vmmem_write(m, at, buf, sizeof buf), 4);
    uint8_t got[8] = {0};
    CU_ASSERT_EQUAL(vmmem_read(m, at, got, sizeof got), 4);
    CU_ASSERT_EQUAL(memcmp(got, buf, 4), 0);
    CU_ASSERT_TRUE(all_bytes(m, 0, 8, 0)); /* nothing wrapped to address 0 */
    /* exactly up to the last byte is fine */
    VT_ASSERT_RC(vmmem_write_slice(m, at, buf + 4, 4), 0);
    uint32_t v = 0;
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, at, &v), 0);
    CU_ASSERT_EQUAL(memcmp(&v, buf + 4, 4), 0);
    uint64_t a64 = 0;
    VT_ASSERT_RC(vmmem_load(m, UINT64_MAX - 7, 8, &a64, VMMEM_ACQUIRE), 0);
    /* all-or-error past 2^64: the range wraps (address 0, backed, is not "the first
     * unbacked byte") */
    VT_ASSERT_RC(vmmem_write_slice(m, at, buf, sizeof buf), VMMEM_EOVERFLOW);
    VT_ASSERT_RC(vmmem_read_slice(m, at, got, sizeof got), VMMEM_EOVERFLOW);
    uint64_t big = 0;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, at, &big), VMMEM_EOVERFLOW);
    CU_ASSERT_TRUE(all_bytes(m, 0, 8, 0));
    memset(got, 0, sizeof got);
    VT_ASSERT_RC(vmmem_read_slice(m, at, got, 4), 0);
    CU_ASSERT_EQUAL(memcmp(got, buf + 4, 4), 0); /* the failed write changed nothing */
    /* fd reads stop at the end of the address space too */
    int fd = open("/dev/zero", O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    fill(m, 0, 8, 0xee);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, at, fd, 8), 4);
    CU_ASSERT_TRUE(all_bytes(m, at, 4, 0));
    CU_ASSERT_TRUE(all_bytes(m, 0, 8, 0xee));
    close(fd);
    vmmem_map_unref(m);
}

static void test_endian_helpers(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    VT_ASSERT_RC(vmmem_write_le32(m, 0xffe, 0x12345678), 0);
    uint8_t b[4] = {0};
    VT_ASSERT_RC(vmmem_read_slice(m, 0xffe, b, 4), 0);
    CU_ASSERT_EQUAL(b[0], 0x78);
    CU_ASSERT_EQUAL(b[1], 0x56);
    CU_ASSERT_EQUAL(b[2], 0x34);
    CU_ASSERT_EQUAL(b[3], 0x12);
    uint32_t be = 0;
    VT_ASSERT_RC(vmmem_read_be32(m, 0xffe, &be), 0);
    CU_ASSERT_EQUAL(be, 0x78563412);
    VT_ASSERT_RC(vmmem_write_be64(m, 0x1ff8, UINT64_C(0x0102030405060708)), 0);
    uint64_t le = 0;
    VT_ASSERT_RC(vmmem_read_le64(m, 0x1ff8, &le), 0);
    CU_ASSERT_EQUAL(le, UINT64_C(0x0807060504030201));
    uint16_t v16 = 0x7777;
    VT_ASSERT_RC(vmmem_read_le16(m, 0x1fff, &v16), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(v16, 0x7777);
    VT_ASSERT_RC(vmmem_write_be16(m, 0x2000, 1), VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m);
}

/* ---- atomics -------------------------------------------------------------------- */

/* C11 rules: a load may be relaxed/acquire/seq_cst, a store relaxed/release/
 * seq_cst; acq_rel is for read-modify-write only. */
static const vmmem_order load_orders[] = {VMMEM_RELAXED, VMMEM_ACQUIRE, VMMEM_SEQ_CST};
static const vmmem_order store_orders[] = {VMMEM_RELAXED, VMMEM_RELEASE, VMMEM_SEQ_CST};

static uint64_t size_mask(size_t size)
{
    return size == 8 ? UINT64_MAX : ((UINT64_C(1) << (8 * size)) - 1);
}

static void test_atomic_sizes_orders(void)
{
    /* crate: a 0x1000 region at 0x1000 */
    vmmem_map *m = vt_map("mmap:addr=0x1000,size=0x1000");
    if (m == NULL)
        return;
    static const size_t sizes[] = {1, 2, 4, 8};
    const uint64_t pattern = UINT64_C(0x8877665544332211);
    vmmem_gaddr_t addr = 0x1000;
    for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
        for (size_t o = 0; o < 3; o++) {
            size_t size = sizes[s];
            /* guard bytes around the value */
            fill(m, addr, 32, 0xee);
            vmmem_gaddr_t at = addr + 8;
            uint64_t val = UINT64_C(0xdeaddeaddeaddead);
            VT_ASSERT_RC(vmmem_load(m, at, size, &val, load_orders[o]), 0);
            CU_ASSERT_EQUAL(val, UINT64_C(0xeeeeeeeeeeeeeeee) & size_mask(size));
            VT_ASSERT_RC(vmmem_store(m, at, size, pattern + o, store_orders[o]), 0);
            val = 0;
            VT_ASSERT_RC(vmmem_load(m, at, size, &val, load_orders[o]), 0);
            CU_ASSERT_EQUAL(val, (pattern + o) & size_mask(size));
            /* stored in native byte order, nothing outside the value touched */
            uint64_t raw = 0;
            VT_ASSERT_RC(vmmem_read_obj(m, at, &raw, size), 0);
            CU_ASSERT_EQUAL(raw, (pattern + o) & size_mask(size));
            CU_ASSERT_TRUE(all_bytes(m, addr, 8, 0xee));
            CU_ASSERT_TRUE(all_bytes(m, at + size, 24 - size, 0xee));
            addr += 32;
        }
    }
    /* crate: at the region's last aligned slot is fine, at its end an error */
    uint64_t val = 0;
    VT_ASSERT_RC(vmmem_store(m, 0x1ff8, 8, 100, VMMEM_SEQ_CST), 0);
    VT_ASSERT_RC(vmmem_load(m, 0x1ff8, 8, &val, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(val, 100);
    VT_ASSERT_RC(vmmem_load(m, 0x1fff, 1, &val, VMMEM_RELAXED), 0);
    CU_ASSERT_EQUAL(val, 0);
    vmmem_map_unref(m);
}

static void test_atomic_invalid_orders(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=0x1000");
    if (m == NULL)
        return;
    uint64_t val = 42;
    VT_ASSERT_RC(vmmem_load(m, 0, 8, &val, VMMEM_RELEASE), -EINVAL);
    VT_ASSERT_RC(vmmem_load(m, 0, 4, &val, VMMEM_ACQ_REL), -EINVAL);
    CU_ASSERT_EQUAL(val, 42);
    VT_ASSERT_RC(vmmem_store(m, 0, 8, 1, VMMEM_ACQUIRE), -EINVAL);
    VT_ASSERT_RC(vmmem_store(m, 0, 2, 1, VMMEM_ACQ_REL), -EINVAL);
    /* values outside the enum (1 would be C11's consume) */
    static const int bad[] = {1, 6, -1, 100};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        VT_ASSERT_RC(vmmem_load(m, 0, 8, &val, (vmmem_order)bad[i]), -EINVAL);
        VT_ASSERT_RC(vmmem_store(m, 0, 8, 1, (vmmem_order)bad[i]), -EINVAL);
    }
    CU_ASSERT_EQUAL(val, 42);
    CU_ASSERT_TRUE(all_bytes(m, 0, 16, 0));
    vmmem_map_unref(m);
}

static void test_atomic_misaligned(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0, 0x20, 0);
    static const struct {
        uint64_t addr;
        size_t size;
    } cases[] = {{1, 2}, {0xfff, 2}, {2, 4}, {1, 4}, {0xffe, 4}, {4, 8}, {1, 8}, {0xffc, 8}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t val = 42;
        VT_ASSERT_RC(vmmem_load(m, cases[i].addr, cases[i].size, &val, VMMEM_SEQ_CST),
                     VMMEM_EMISALIGNED);
        CU_ASSERT_EQUAL(val, 42);
        VT_ASSERT_RC(vmmem_store(m, cases[i].addr, cases[i].size, UINT64_MAX, VMMEM_SEQ_CST),
                     VMMEM_EMISALIGNED);
    }
    CU_ASSERT_TRUE(all_bytes(m, 0, 0x20, 0));
    CU_ASSERT_TRUE(all_bytes(m, 0xff0, 0x20, 0));
    vmmem_map_unref(m);
}

static void test_atomic_bad_size(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    static const size_t bad[] = {0, 3, 5, 6, 7, 16};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        uint64_t val = 42;
        VT_ASSERT_RC(vmmem_load(m, 0, bad[i], &val, VMMEM_SEQ_CST), -EINVAL);
        CU_ASSERT_EQUAL(val, 42);
        VT_ASSERT_RC(vmmem_store(m, 0, bad[i], 1, VMMEM_SEQ_CST), -EINVAL);
    }
    CU_ASSERT_TRUE(all_bytes(m, 0, 0x20, 0));
    vmmem_map_unref(m);
}

static void test_atomic_unbacked(void)
{
    vmmem_map *m = vt_map("mmap:addr=0x1000,size=0x1000");
    if (m == NULL)
        return;
    static const uint64_t addrs[] = {0, 0xff8, 0x2000, 0x3000, UINT64_C(0xfffffffffffffff8)};
    static const size_t sizes[] = {1, 2, 4, 8};
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++)
        for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
            uint64_t val = 42;
            VT_ASSERT_RC(vmmem_load(m, addrs[i], sizes[s], &val, VMMEM_ACQUIRE),
                         VMMEM_EINVALID_ADDRESS);
            CU_ASSERT_EQUAL(val, 42);
            VT_ASSERT_RC(vmmem_store(m, addrs[i], sizes[s], 1, VMMEM_RELEASE),
                         VMMEM_EINVALID_ADDRESS);
        }
    vmmem_map_unref(m);

    /* exactly at the end of a region starting at 0 */
    m = vt_map("mmap:addr=0,size=0x1000");
    if (m == NULL)
        return;
    uint64_t val = 0;
    VT_ASSERT_RC(vmmem_load(m, 0xff8, 8, &val, VMMEM_RELAXED), 0);
    VT_ASSERT_RC(vmmem_load(m, 0x1000, 4, &val, VMMEM_RELAXED), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_store(m, 0x1000, 8, 0, VMMEM_RELAXED), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_load(m, 0x1000, 1, &val, VMMEM_RELAXED), VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m);
}

static void test_atomic_crosses_region(void)
{
    vmmem_map *m = vt_map(ODD_SEAM_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0xff8, 0x18, 0x99);
    static const struct {
        uint64_t addr;
        size_t size;
    } cases[] = {{0x1000, 8}, {0x1000, 4}, {0x1002, 2}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t val = 42;
        VT_ASSERT_RC(vmmem_load(m, cases[i].addr, cases[i].size, &val, VMMEM_SEQ_CST),
                     VMMEM_ECROSSES_REGION);
        CU_ASSERT_EQUAL(val, 42);
        VT_ASSERT_RC(vmmem_store(m, cases[i].addr, cases[i].size, 0, VMMEM_SEQ_CST),
                     VMMEM_ECROSSES_REGION);
    }
    CU_ASSERT_TRUE(all_bytes(m, 0xff8, 0x18, 0x99));
    /* the same addresses with accesses that stay in one region are fine */
    uint64_t val = 0;
    VT_ASSERT_RC(vmmem_load(m, 0xff8, 8, &val, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(val, UINT64_C(0x9999999999999999));
    VT_ASSERT_RC(vmmem_load(m, 0x1000, 2, &val, VMMEM_SEQ_CST), 0);
    CU_ASSERT_EQUAL(val, 0x9999);
    VT_ASSERT_RC(vmmem_store(m, 0x1002, 1, 0x12, VMMEM_SEQ_CST), 0);
    VT_ASSERT_RC(vmmem_store(m, 0x1003, 1, 0x34, VMMEM_SEQ_CST), 0);
    uint8_t b[2] = {0};
    VT_ASSERT_RC(vmmem_read_slice(m, 0x1002, b, 2), 0);
    CU_ASSERT_EQUAL(b[0], 0x12);
    CU_ASSERT_EQUAL(b[1], 0x34);
    vmmem_map_unref(m);
}

/* ---- file descriptors ------------------------------------------------------------ */

static void test_fd_pipe_across_regions(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0xff0, 0x80, 0xee);
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    static const uint8_t data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CU_ASSERT_EQUAL(write(p[1], data, sizeof data), 10);
    close(p[1]);
    /* ask for 100 bytes over the seam; only 10 arrive */
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0xffc, p[0], 100), 10);
    uint8_t got[10] = {0};
    VT_ASSERT_RC(vmmem_read_slice(m, 0xffc, got, sizeof got), 0);
    CU_ASSERT_EQUAL(memcmp(got, data, sizeof data), 0);
    CU_ASSERT_TRUE(all_bytes(m, 0xff0, 0xc, 0xee));
    CU_ASSERT_TRUE(all_bytes(m, 0x1006, 0x6a, 0xee));
    /* at EOF nothing is moved: 0, not an error */
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0xffc, p[0], 100), 0);
    close(p[0]);
    vmmem_map_unref(m);
}

static void test_fd_short_read_stops(void)
{
    /* A datagram socket returns one message per read(2): a short read in the
     * first region is followed by more data that must NOT be pulled into the
     * rest of the range or the next region (the crate's bug). */
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0xfc0, 0x80, 0xee);
    int sv[2];
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
    uint8_t a[10], b[20];
    memset(a, 0xa1, sizeof a);
    memset(b, 0xb2, sizeof b);
    CU_ASSERT_EQUAL(send(sv[1], a, sizeof a, 0), 10);
    CU_ASSERT_EQUAL(send(sv[1], b, sizeof b, 0), 20);
    shutdown(sv[1], SHUT_WR); /* never block, even if the library misbehaves */
    /* 0x40 bytes left in region 0, 100 asked */
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0xfc0, sv[0], 100), 10);
    CU_ASSERT_TRUE(all_bytes(m, 0xfc0, 10, 0xa1));
    CU_ASSERT_TRUE(all_bytes(m, 0xfca, 0x36, 0xee));
    CU_ASSERT_TRUE(all_bytes(m, 0x1000, 0x40, 0xee));
    /* the second message is still there */
    uint8_t rest[64];
    CU_ASSERT_EQUAL(recv(sv[0], rest, sizeof rest, MSG_DONTWAIT), 20);
    CU_ASSERT_EQUAL(memcmp(rest, b, sizeof b), 0);
    close(sv[0]);
    close(sv[1]);
    vmmem_map_unref(m);
}

static void test_fd_dev_zero(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0, 0x2000, 0xee);
    int fd = open("/dev/zero", O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0xff0, fd, 0x20), 0x20);
    CU_ASSERT_TRUE(all_bytes(m, 0xff0, 0x20, 0));
    CU_ASSERT_TRUE(all_bytes(m, 0x1010, 0x10, 0xee));
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0, fd, 0x2000), 0);
    uint64_t v = 1;
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0, &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    v = 1;
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0xffc, &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_TRUE(all_bytes(m, 0, 0x2000, 0));
    /* more than the map holds: stops at the end of the map */
    fill(m, 0x1ff0, 0x10, 0xee);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0x1ff0, fd, 0x100), 0x10);
    CU_ASSERT_TRUE(all_bytes(m, 0x1ff0, 0x10, 0));
    close(fd);
    vmmem_map_unref(m);
}

static void test_fd_temp_files(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    static uint8_t pattern[0x2000];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i ^ (i >> 8));
    int in = temp_file();
    CU_ASSERT_EQUAL(pwrite(in, pattern, sizeof pattern, 0), (ssize_t)sizeof pattern);
    CU_ASSERT_EQUAL(lseek(in, 0, SEEK_SET), 0);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0, in, 0x2000), 0x2000);
    CU_ASSERT_EQUAL(lseek(in, 0, SEEK_CUR), 0x2000);
    static uint8_t got[0x2000];
    VT_ASSERT_RC(vmmem_read_slice(m, 0, got, sizeof got), 0);
    CU_ASSERT_EQUAL(memcmp(got, pattern, sizeof pattern), 0);

    int out = temp_file();
    CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 0xf00, out, 0x200), 0x200);
    CU_ASSERT_EQUAL(lseek(out, 0, SEEK_CUR), 0x200);
    memset(got, 0, sizeof got);
    CU_ASSERT_EQUAL(pread(out, got, sizeof got, 0), 0x200); /* exactly, nothing extra */
    CU_ASSERT_EQUAL(memcmp(got, pattern + 0xf00, 0x200), 0);
    VT_ASSERT_RC(vmmem_write_all_to_fd(m, 0, out, 0x2000), 0);
    CU_ASSERT_EQUAL(pread(out, got, sizeof got, 0x200), 0x2000);
    CU_ASSERT_EQUAL(memcmp(got, pattern, sizeof pattern), 0);

    /* a short file: read_from_fd returns what there is */
    CU_ASSERT_EQUAL(lseek(in, 0x1ff0, SEEK_SET), 0x1ff0);
    fill(m, 0xff0, 0x40, 0xee);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0xff8, in, 0x100), 0x10);
    VT_ASSERT_RC(vmmem_read_slice(m, 0xff8, got, 0x10), 0);
    CU_ASSERT_EQUAL(memcmp(got, pattern + 0x1ff0, 0x10), 0);
    CU_ASSERT_TRUE(all_bytes(m, 0x1008, 0x28, 0xee));
    close(in);
    close(out);
    vmmem_map_unref(m);
}

static void test_fd_first_byte_unbacked(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CU_ASSERT_EQUAL(write(p[1], "0123456789", 10), 10);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0x2000, p[0], 10), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(0x2000);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, UINT64_MAX, p[0], 10), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(UINT64_MAX);
    /* nothing was consumed from the pipe */
    char buf[32];
    CU_ASSERT_EQUAL(drain_nonblock(p[0], buf, sizeof buf), 10);
    CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 0x2000, p[1], 10), VMMEM_EINVALID_ADDRESS);
    assert_invalid_at(0x2000);
    /* nothing was written to it */
    CU_ASSERT_EQUAL(drain_nonblock(p[0], buf, sizeof buf), -1);
    close(p[0]);
    close(p[1]);
    vmmem_map_unref(m);
}

static void test_fd_hole_midway(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0x3f0, 0x10, 0xee);
    int in = temp_file();
    uint8_t data[0x100];
    memset(data, 0x5a, sizeof data);
    CU_ASSERT_EQUAL(pwrite(in, data, sizeof data, 0), (ssize_t)sizeof data);
    /* 0x10 backed bytes before the hole at 0x400 */
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0x3f0, in, 0x20), 0x10);
    CU_ASSERT_EQUAL(lseek(in, 0, SEEK_CUR), 0x10);
    CU_ASSERT_TRUE(all_bytes(m, 0x3f0, 0x10, 0x5a));

    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 0x3f0, p[1], 0x20), 0x10);
    uint8_t buf[0x40];
    CU_ASSERT_EQUAL(drain_nonblock(p[0], buf, sizeof buf), 0x10);
    /* all-or-error: the range is checked first, nothing is written */
    VT_ASSERT_RC(vmmem_write_all_to_fd(m, 0x3f0, p[1], 0x20), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->expected, 0x20);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 0);
    CU_ASSERT_EQUAL(drain_nonblock(p[0], buf, sizeof buf), -1);
    close(p[0]);
    close(p[1]);
    close(in);
    vmmem_map_unref(m);
}

static void test_fd_count_zero(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CU_ASSERT_EQUAL(write(p[1], "abc", 3), 3);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0, p[0], 0), 0);
    CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 0, p[1], 0), 0);
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0xfff, p[0], 0), 0);
    VT_ASSERT_RC(vmmem_write_all_to_fd(m, 0xfff, p[1], 0), 0);
    char buf[8];
    CU_ASSERT_EQUAL(drain_nonblock(p[0], buf, sizeof buf), 3);
    close(p[0]);
    close(p[1]);
    vmmem_map_unref(m);
}

static void test_fd_bad_fd(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0, 0x10, 0xee);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0, -1, 10), -EBADF);
    CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 0, -1, 10), -EBADF);
    /* a write-only fd cannot be read from */
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0, p[1], 10), -EBADF);
    CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 0, p[0], 10), -EBADF);
    CU_ASSERT_TRUE(all_bytes(m, 0, 0x10, 0xee));
    close(p[0]);
    close(p[1]);
    vmmem_map_unref(m);
}

static void test_fd_exact_partial(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CU_ASSERT_EQUAL(write(p[1], "0123456789", 10), 10);
    close(p[1]);
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0xffc, p[0], 100), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->expected, 100);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 10);
    char got[10];
    VT_ASSERT_RC(vmmem_read_slice(m, 0xffc, got, sizeof got), 0);
    CU_ASSERT_EQUAL(memcmp(got, "0123456789", 10), 0);
    close(p[0]);

    /* exact over the seam from a file that has enough */
    int in = temp_file();
    uint8_t data[0x40];
    memset(data, 0x6b, sizeof data);
    CU_ASSERT_EQUAL(pwrite(in, data, sizeof data, 0), (ssize_t)sizeof data);
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0xfe0, in, 0x40), 0);
    CU_ASSERT_TRUE(all_bytes(m, 0xfe0, 0x40, 0x6b));
    close(in);

    /* write_all past the end of the map: checked first, nothing written */
    int out = temp_file();
    VT_ASSERT_RC(vmmem_write_all_to_fd(m, 0x1ff0, out, 0x20), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->expected, 0x20);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 0);
    CU_ASSERT_EQUAL(lseek(out, 0, SEEK_END), 0);
    close(out);
    vmmem_map_unref(m);
}

/* ---- the all-or-error fd variants: range first, then loop ------------------------ */

/* A range failure moves nothing: guest memory, the fd's position and its
 * data stay as they were (it used to write the backed part first). */
static void test_fd_exact_range_first(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG); /* RAM ends at 0x2000 */
    if (m == NULL)
        return;
    fill(m, 0, 0x2000, 0xee);
    int in = temp_file();
    uint8_t data[0x3000];
    memset(data, 0x5a, sizeof data);
    CU_ASSERT_EQUAL(pwrite(in, data, sizeof data, 0), (ssize_t)sizeof data);
    CU_ASSERT_EQUAL(lseek(in, 0, SEEK_SET), 0);
    /* at the end of RAM: 0x1000 backed, 0x1000 not */
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0x1000, in, 0x2000), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x2000);
    CU_ASSERT_EQUAL(vmmem_last_error()->expected, 0x2000);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 0);
    CU_ASSERT_EQUAL(lseek(in, 0, SEEK_CUR), 0);
    CU_ASSERT_TRUE(all_bytes(m, 0, 0x2000, 0xee));
    /* unbacked first byte */
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0x2000, in, 16), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(lseek(in, 0, SEEK_CUR), 0);
    close(in);

    /* write_all: nothing reaches the fd */
    int out = temp_file();
    VT_ASSERT_RC(vmmem_write_all_to_fd(m, 0x1ff0, out, 0x20), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x2000);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 0);
    CU_ASSERT_EQUAL(lseek(out, 0, SEEK_END), 0);
    close(out);

    /* a hole midway (HOLEY: [0,0x400) hole [0x800,...)): the pipe keeps its data */
    vmmem_map *h = vt_map(HOLEY_CONFIG);
    if (h != NULL) {
        fill(h, 0x3f0, 0x10, 0xee);
        int p[2];
        CU_ASSERT_FATAL(pipe(p) == 0);
        CU_ASSERT_EQUAL(write(p[1], data, 0x20), 0x20);
        VT_ASSERT_RC(vmmem_read_exact_from_fd(h, 0x3f0, p[0], 0x20), VMMEM_EPARTIAL);
        CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x400);
        CU_ASSERT_TRUE(all_bytes(h, 0x3f0, 0x10, 0xee));
        uint8_t buf[0x40];
        CU_ASSERT_EQUAL(drain_nonblock(p[0], buf, sizeof buf), 0x20);
        VT_ASSERT_RC(vmmem_write_all_to_fd(h, 0x3f0, p[1], 0x20), VMMEM_EPARTIAL);
        CU_ASSERT_EQUAL(drain_nonblock(p[0], buf, sizeof buf), -1); /* empty */
        close(p[0]);
        close(p[1]);
        vmmem_map_unref(h);
    }
    vmmem_map_unref(m);
}

/* Datagram sockets deliver one datagram per read: every read is short.
 * read_exact must go on until it has count bytes. */
static void test_fd_exact_short_reads(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    fill(m, 0, 0x2000, 0);
    int sv[2];
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    /* 8 datagrams of 128 bytes, 4 each side of the seam at 0x1000 (a read
     * shorter than a datagram would drop its tail: keep them whole) */
    uint8_t d[128];
    for (int i = 0; i < 8; i++) {
        memset(d, 0x30 + i, sizeof d);
        CU_ASSERT_EQUAL(write(sv[1], d, sizeof d), (ssize_t)sizeof d);
    }
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0xe00, sv[0], 1024), 0);
    for (int i = 0; i < 8; i++)
        CU_ASSERT_TRUE(all_bytes(m, 0xe00 + 128u * (unsigned)i, 128, (uint8_t)(0x30 + i)));
    CU_ASSERT_TRUE(all_bytes(m, 0xe00 + 1024, 16, 0));
    /* stream socket: what is there, then the rest later (EOF: PARTIAL) */
    close(sv[0]);
    close(sv[1]);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    memset(d, 0x77, sizeof d);
    CU_ASSERT_EQUAL(write(sv[1], d, 60), 60);
    CU_ASSERT_EQUAL(write(sv[1], d, 40), 40);
    shutdown(sv[1], SHUT_WR);
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0x100, sv[0], 150), VMMEM_EPARTIAL);
    CU_ASSERT_EQUAL(vmmem_last_error()->expected, 150);
    CU_ASSERT_EQUAL(vmmem_last_error()->completed, 100);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x100 + 100);
    CU_ASSERT_TRUE(all_bytes(m, 0x100, 100, 0x77));
    close(sv[0]);
    close(sv[1]);
    vmmem_map_unref(m);
}

/* A pipe fed in small pieces by another thread, with signals (no
 * SA_RESTART) sent to the reader: short reads and EINTR are continued. */
struct feeder {
    int fd;
    pthread_t reader;
    const uint8_t *data;
    size_t len, piece;
    int kills;
};

static atomic_int usr1_seen;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&usr1_seen, 1);
}

static void *feeder_main(void *arg)
{
    struct feeder *f = arg;
    for (size_t off = 0; off < f->len; off += f->piece) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL); /* lets the reader block: not needed for the result */
        if (f->kills-- > 0)
            pthread_kill(f->reader, SIGUSR1);
        size_t n = f->len - off < f->piece ? f->len - off : f->piece;
        if (write(f->fd, f->data + off, n) != (ssize_t)n)
            break;
    }
    return NULL;
}

static void *drainer_main(void *arg)
{
    struct feeder *f = arg; /* reads f->len bytes into (uint8_t *)f->data, f->piece at a time */
    uint8_t *p = (uint8_t *)f->data;
    size_t got = 0;
    while (got < f->len) {
        size_t want = f->len - got < f->piece ? f->len - got : f->piece;
        ssize_t r = read(f->fd, p + got, want);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    f->len = got;
    return NULL;
}

static void test_fd_exact_pipes_and_signals(void)
{
    vmmem_map *m = vt_map("mmap:addr=0,size=0x40000;mmap:addr=0x40000,size=0x40000");
    if (m == NULL)
        return;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: a blocked read returns EINTR */
    sigemptyset(&sa.sa_mask);
    CU_ASSERT_FATAL(sigaction(SIGUSR1, &sa, &old) == 0);
    atomic_store(&usr1_seen, 0);

    enum { LEN = 0x30000 };
    uint8_t *src = malloc(LEN), *dst = malloc(LEN);
    CU_ASSERT_FATAL(src != NULL && dst != NULL);
    for (size_t i = 0; i < LEN; i++)
        src[i] = (uint8_t)(i * 7 + 1);
    struct sigaction ign, oldpipe;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN; /* a failing read_exact closes the pipe under the feeder */
    sigemptyset(&ign.sa_mask);
    CU_ASSERT_FATAL(sigaction(SIGPIPE, &ign, &oldpipe) == 0);
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    struct feeder f = {p[1], pthread_self(), src, LEN, 0x1234, 8};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, feeder_main, &f) == 0);
    int rc = vmmem_read_exact_from_fd(m, 0x28000, p[0], LEN); /* across the seam */
    VT_ASSERT_RC(rc, 0);
    close(p[0]); /* the feeder's next write fails (EPIPE) if we stopped early */
    pthread_join(th, NULL);
    close(p[1]);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x28000, dst, LEN), 0);
    CU_ASSERT_EQUAL(memcmp(dst, src, LEN), 0);

    /* write_all into a pipe larger than its buffer, drained in small reads */
    CU_ASSERT_FATAL(pipe(p) == 0);
    memset(dst, 0, LEN);
    struct feeder d = {p[0], pthread_self(), dst, LEN, 0x777, 0};
    CU_ASSERT_FATAL(pthread_create(&th, NULL, drainer_main, &d) == 0);
    VT_ASSERT_RC(vmmem_write_all_to_fd(m, 0x28000, p[1], LEN), 0);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(d.len, LEN);
    CU_ASSERT_EQUAL(memcmp(dst, src, LEN), 0);
    close(p[0]);
    close(p[1]);
    free(src);
    free(dst);
    sigaction(SIGUSR1, &old, NULL);
    sigaction(SIGPIPE, &oldpipe, NULL);
    vmmem_map_unref(m);
}

/* ---- torn values across a region seam ----------------------------------------------- */

struct torn_obj {
    uint16_t val;
    uint8_t rest[8];
};
_Static_assert(sizeof(struct torn_obj) == 10, "10-byte object");

struct race {
    vmmem_map *m;
    vmmem_gaddr_t addr;
    atomic_bool stop;
    atomic_long writes;
    int write_errors;
};

static void *torn_writer(void *arg)
{
    struct race *r = arg;
    struct torn_obj o;
    long n = 0;
    while (!atomic_load(&r->stop)) {
        uint8_t c = (n & 1) ? 0xff : 0x00;
        o.val = (n & 1) ? 0xffff : 0x0000;
        memset(o.rest, c, sizeof o.rest);
        if (vmmem_write_obj(r->m, r->addr, &o, sizeof o) != 0)
            r->write_errors++;
        if (n++ == 0)
            atomic_store(&r->writes, 1); /* running: the reader starts now */
    }
    atomic_store(&r->writes, n);
    return NULL;
}

/* Under an emulator (a cross build's runner, VMMEM_TEST_EXEC_PREFIX, e.g.
 * qemu-aarch64) the races run too, but prove less: qemu-user runs the
 * target's threads on host threads with the host's (x86-64: stronger) memory
 * model, not ARM64's.  Say so; ARM64 hardware is where they prove the most.
 * (They used to hang under qemu-aarch64: not these tests, but the runner's
 * mismatched glibc loader and libc, see guest_runner in tests/SConscript.) */
static void note_emulated(const char *what)
{
    const char *p = getenv("VMMEM_TEST_EXEC_PREFIX");
    if (p != NULL && *p != '\0')
        fprintf(stdout, "\n    note: %s under '%s': the host's memory model, not the target's\n",
                what, p);
}

/* Wait (bounded) until the writer has stored once; false, saying so, if it never did. */
static bool writer_started(struct race *r)
{
    for (double w = now_seconds() + 10.0; atomic_load(&r->writes) == 0;) {
        if (now_seconds() > w) {
            fprintf(stdout, "\n    the writer thread did not run within 10 s\n");
            return false;
        }
        sched_yield();
    }
    return true;
}

static void test_torn_u16_across_seam(void)
{
    /* The object's aligned u16 is the last two bytes of region 0 (0xffe), the
     * other 8 bytes are in region 1.  The u16 must never be seen torn. */
    note_emulated("two-thread tearing race");
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    struct race r = {.m = m, .addr = 0xffe};
    atomic_init(&r.stop, false);
    atomic_init(&r.writes, 0);
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, torn_writer, &r) == 0);
    /* Start reading once the writer runs (valgrind runs one thread at a time). */
    CU_ASSERT(writer_started(&r));
    long reads = 0, torn = 0, read_errors = 0, zeros = 0, ones = 0;
    double end = now_seconds() + 1.0;
    while (reads < 2000000) {
        struct torn_obj o;
        if (vmmem_read_obj(m, 0xffe, &o, sizeof o) != 0) {
            read_errors++;
        } else {
            uint8_t b[2];
            memcpy(b, &o.val, 2);
            if (b[0] != b[1])
                torn++;
            else if (b[0] == 0)
                zeros++;
            else
                ones++;
        }
        reads++;
        if ((reads & 1023) == 0 && now_seconds() > end)
            break;
    }
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    if (torn != 0 || getenv("VMMEM_TEST_VERBOSE") != NULL)
        fprintf(stdout, "\n    %ld torn u16 values in %ld reads (%ld zero, %ld 0xffff; %ld writes)\n",
                torn, reads, zeros, ones, (long)atomic_load(&r.writes));
    CU_ASSERT_EQUAL(torn, 0);
    CU_ASSERT_EQUAL(read_errors, 0);
    CU_ASSERT_EQUAL(r.write_errors, 0);
    CU_ASSERT(reads > 0);
    CU_ASSERT(atomic_load(&r.writes) > 0);
    CU_ASSERT_EQUAL(zeros + ones + torn, reads - read_errors);
    vmmem_map_unref(m);
}

static void *u64_writer(void *arg)
{
    struct race *r = arg;
    long n = 0;
    while (!atomic_load(&r->stop)) {
        uint64_t v = (n & 1) ? UINT64_MAX : 0;
        if (vmmem_write_obj(r->m, r->addr, &v, sizeof v) != 0)
            r->write_errors++;
        if (n++ == 0)
            atomic_store(&r->writes, 1); /* running: the reader starts now */
    }
    atomic_store(&r->writes, n);
    return NULL;
}

static void test_torn_u64_aligned(void)
{
    note_emulated("two-thread tearing race");
    vmmem_map *m = vt_map(ADJ_CONFIG);
    if (m == NULL)
        return;
    struct race r = {.m = m, .addr = 0x1ff8};
    atomic_init(&r.stop, false);
    atomic_init(&r.writes, 0);
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, u64_writer, &r) == 0);
    CU_ASSERT(writer_started(&r));
    long reads = 0, torn = 0, errors = 0;
    double end = now_seconds() + 0.5;
    while (reads < 1000000) {
        uint64_t v = 1;
        if (vmmem_read_obj(m, 0x1ff8, &v, sizeof v) != 0)
            errors++;
        else if (v != 0 && v != UINT64_MAX)
            torn++;
        reads++;
        if ((reads & 1023) == 0 && now_seconds() > end)
            break;
    }
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(torn, 0);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(r.write_errors, 0);
    vmmem_map_unref(m);
}

/* ---- read-only regions ----------------------------------------------------------- */

static void test_read_only_writes_refused(void)
{
    vmmem_map *m = vt_map(RO_CONFIG);
    if (m == NULL)
        return;
    uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    VT_ASSERT_RC(vmmem_write(m, 0, buf, sizeof buf), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_write(m, 0xfff, buf, 1), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x100, buf, sizeof buf), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_write_obj(m, 0x100, buf, 8), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_write_le32(m, 0x100, 0x12345678), VMMEM_EREAD_ONLY);
    static const size_t sizes[] = {1, 2, 4, 8};
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++)
        VT_ASSERT_RC(vmmem_store(m, 0x100, sizes[i], 1, VMMEM_SEQ_CST), VMMEM_EREAD_ONLY);
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CU_ASSERT_EQUAL(write(p[1], buf, sizeof buf), 8);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0, p[0], 8), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_read_exact_from_fd(m, 0, p[0], 8), VMMEM_EREAD_ONLY);
    /* the fd's data was not consumed */
    uint8_t back[16];
    CU_ASSERT_EQUAL(drain_nonblock(p[0], back, sizeof back), 8);
    close(p[0]);
    close(p[1]);
    /* a zero-length write is still 0 */
    CU_ASSERT_EQUAL(vmmem_write(m, 0, buf, 0), 0);
    /* nothing changed */
    CU_ASSERT_TRUE(all_bytes(m, 0, 0x1000, 0));
    vmmem_map_unref(m);
}

static void test_read_only_reads_work(void)
{
    vmmem_map *m = vt_map(RO_CONFIG);
    if (m == NULL)
        return;
    uint8_t buf[16];
    memset(buf, 0xcc, sizeof buf);
    CU_ASSERT_EQUAL(vmmem_read(m, 0xff8, buf, sizeof buf), 8);
    for (size_t i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(buf[i], 0);
    VT_ASSERT_RC(vmmem_read_slice(m, 0, buf, sizeof buf), 0);
    uint64_t v = 1;
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, 0x10, &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    v = 1;
    VT_ASSERT_RC(vmmem_load(m, 0xff8, 8, &v, VMMEM_ACQUIRE), 0);
    CU_ASSERT_EQUAL(v, 0);
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CU_ASSERT_EQUAL(vmmem_write_to_fd(m, 0, p[1], 16), 16);
    VT_ASSERT_RC(vmmem_write_all_to_fd(m, 0xff0, p[1], 16), 0);
    uint8_t got[64];
    memset(got, 0xcc, sizeof got);
    CU_ASSERT_EQUAL(drain_nonblock(p[0], got, sizeof got), 32);
    for (size_t i = 0; i < 32; i++)
        CU_ASSERT_EQUAL(got[i], 0);
    close(p[0]);
    close(p[1]);
    void *h = NULL;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x10, &h, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(h);
    vmmem_map_unref(m);
}

static void test_read_only_next_to_rw(void)
{
    /* all-or-error writes that reach a read-only region change nothing */
    vmmem_map *m = vt_map("mmap:addr=0,size=4K;mmap:addr=4K,size=4K,prot=r");
    if (m == NULL)
        return;
    fill(m, 0xff0, 0x10, 0x33);
    uint8_t buf[8];
    memset(buf, 0x44, sizeof buf);
    VT_ASSERT_RC(vmmem_write_slice(m, 0xffc, buf, sizeof buf), VMMEM_EREAD_ONLY);
    VT_ASSERT_RC(vmmem_write_obj(m, 0xffc, buf, sizeof buf), VMMEM_EREAD_ONLY);
    CU_ASSERT_TRUE(all_bytes(m, 0xff0, 0x10, 0x33));
    CU_ASSERT_TRUE(all_bytes(m, 0x1000, 0x10, 0));
    uint8_t rd[8];
    VT_ASSERT_RC(vmmem_read_slice(m, 0xffc, rd, sizeof rd), 0);
    vmmem_map_unref(m);
}

static void test_read_only_short_write(void)
{
    /* vmmem_write stops short where a read-only region starts, like at a hole */
    vmmem_map *m = vt_map("mmap:addr=0,size=4K;mmap:addr=4K,size=4K,prot=r");
    if (m == NULL)
        return;
    uint8_t buf[8];
    memset(buf, 0x44, sizeof buf);
    CU_ASSERT_EQUAL(vmmem_write(m, 0xffc, buf, sizeof buf), 4);
    CU_ASSERT_TRUE(all_bytes(m, 0xffc, 4, 0x44));
    CU_ASSERT_TRUE(all_bytes(m, 0x1000, 0x10, 0));
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    CU_ASSERT_EQUAL(write(p[1], buf, sizeof buf), 8);
    fill(m, 0xffc, 4, 0);
    CU_ASSERT_EQUAL(vmmem_read_from_fd(m, 0xffc, p[0], sizeof buf), 4);
    CU_ASSERT_TRUE(all_bytes(m, 0xffc, 4, 0x44));
    CU_ASSERT_TRUE(all_bytes(m, 0x1000, 0x10, 0));
    uint8_t rest[16];
    CU_ASSERT_EQUAL(drain_nonblock(p[0], rest, sizeof rest), 4);
    close(p[0]);
    close(p[1]);
    vmmem_map_unref(m);
}

static const struct vt_test rw_tests[] = {
    {"5 bytes over the seam at 0xffc (README)", test_seam_5_bytes},
    {"whole map round trip", test_whole_map_roundtrip},
    {"write 5 at 0x13ff in [0x1000,0x1400) -> 1", test_write_short_at_region_end},
    {"short at holes", test_short_at_holes},
    {"first byte unbacked -> VMMEM_EINVALID_ADDRESS", test_first_byte_unbacked},
    {"zero length always 0", test_zero_length},
    {"error detail survives later successes", test_error_detail_survives_success},
    {NULL, NULL},
};

static const struct vt_test slice_obj_tests[] = {
    {"slice round trip over the seam", test_slice_roundtrip_seam},
    {"write_slice partial leaves memory untouched", test_write_slice_partial_untouched},
    {"read_slice partial leaves buffer untouched", test_read_slice_partial_untouched},
    {"slice partial over holes", test_slice_partial_holey},
    {"slice first byte unbacked", test_slice_first_byte_unbacked},
    {"obj u64 at 0x2001 -> INVALID_ADDRESS", test_obj_past_end},
    {"obj u64 at 0x1ffc -> PARTIAL", test_obj_partial},
    {"obj round trips", test_obj_roundtrip},
    {"endian helpers", test_endian_helpers},
    {"accesses at the top of the address space", test_top_of_address_space},
    {NULL, NULL},
};

static const struct vt_test atomic_tests[] = {
    {"load/store 1/2/4/8, all valid orders", test_atomic_sizes_orders},
    {"invalid orders -> -EINVAL", test_atomic_invalid_orders},
    {"misaligned -> VMMEM_EMISALIGNED", test_atomic_misaligned},
    {"bad size -> -EINVAL", test_atomic_bad_size},
    {"unbacked -> VMMEM_EINVALID_ADDRESS", test_atomic_unbacked},
    {"straddling touching regions -> VMMEM_ECROSSES_REGION", test_atomic_crosses_region},
    {NULL, NULL},
};

static const struct vt_test fd_tests[] = {
    {"pipe across two regions", test_fd_pipe_across_regions},
    {"short read stops (no continuation)", test_fd_short_read_stops},
    {"/dev/zero", test_fd_dev_zero},
    {"temp files", test_fd_temp_files},
    {"first byte unbacked", test_fd_first_byte_unbacked},
    {"hole midway", test_fd_hole_midway},
    {"count 0", test_fd_count_zero},
    {"bad fd -> -EBADF", test_fd_bad_fd},
    {"exact variants -> VMMEM_EPARTIAL", test_fd_exact_partial},
    {"exact variants check the whole range first", test_fd_exact_range_first},
    {"read_exact continues short reads (sockets)", test_fd_exact_short_reads},
    {"exact variants: pipes fed in pieces, EINTR", test_fd_exact_pipes_and_signals},
    {NULL, NULL},
};

static const struct vt_test race_tests[] = {
    {"u16 across the seam is never torn", test_torn_u16_across_seam},
    {"aligned u64 is never torn", test_torn_u64_aligned},
    {NULL, NULL},
};

static const struct vt_test ro_tests[] = {
    {"every write path -> VMMEM_EREAD_ONLY", test_read_only_writes_refused},
    {"reads work", test_read_only_reads_work},
    {"all-or-error writes into a read-only neighbour", test_read_only_next_to_rw},
    {"short writes stop at a read-only neighbour", test_read_only_short_write},
    {NULL, NULL},
};

static const struct vt_suite rw_suite = {"read/write", NULL, NULL, rw_tests};
static const struct vt_suite slice_obj_suite = {"slice/obj", NULL, NULL, slice_obj_tests};
static const struct vt_suite atomic_suite = {"atomics", NULL, NULL, atomic_tests};
static const struct vt_suite fd_suite = {"fd I/O", NULL, NULL, fd_tests};
static const struct vt_suite race_suite = {"torn values", NULL, NULL, race_tests};
static const struct vt_suite ro_suite = {"read-only", NULL, NULL, ro_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&rw_suite, &slice_obj_suite, &atomic_suite,
                                                    &fd_suite, &race_suite, &ro_suite, NULL};
    return vt_main(suites);
}

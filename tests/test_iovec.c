/*
 * Positioned scatter/gather I/O between a file and guest memory (map.h:
 * vmmem_preadv_from_fd / vmmem_pwritev_to_fd), the disk path of a
 * vhost-user-blk back-end: exact bytes across region seams and many pieces,
 * the file position left alone, end of file, holes and read-only regions
 * refused before anything moves, argument errors, map-on-access regions,
 * and dirty marking (bitmap and vhost-user log) of exactly the bytes read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

#define ADJ_CONFIG "mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000"
#define HOLEY_CONFIG "mmap:addr=0,size=0x400;mmap:addr=0x800,size=0x400"
#define RO_CONFIG "mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000,prot=r"

/* A memfd holding len bytes of pattern (byte i = (i * 7 + 3) & 0xff). */
static int pattern_file(size_t len)
{
    int fd = memfd_create("vt-iovec", MFD_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t *b = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 7 + 3);
    CU_ASSERT_EQUAL_FATAL(pwrite(fd, b, len, 0), (ssize_t)len);
    free(b);
    return fd;
}

static uint8_t pat(uint64_t i)
{
    return (uint8_t)(i * 7 + 3);
}

/* Fill guest [addr, addr+len) with c. */
static void fill(const vmmem_map *m, uint64_t addr, size_t len, uint8_t c)
{
    uint8_t *b = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    memset(b, c, len);
    VT_ASSERT_RC(vmmem_write_slice(m, addr, b, len), 0);
    free(b);
}

/* Guest byte at addr. */
static uint8_t gbyte(const vmmem_map *m, uint64_t addr)
{
    uint8_t b = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, addr, &b, 1), 0);
    return b;
}

static bool guest_all(const vmmem_map *m, uint64_t addr, size_t len, uint8_t c)
{
    for (size_t i = 0; i < len; i++)
        if (gbyte(m, addr + i) != c) {
            printf("\n    guest byte 0x%llx is 0x%02x, want 0x%02x\n",
                   (unsigned long long)(addr + i), gbyte(m, addr + i), c);
            return false;
        }
    return true;
}

static void test_read_exact_bytes(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    fill(m, 0, 0x2000, 0xee);
    int fd = pattern_file(0x100);
    /* across the seam at 0x1000, then a second range before it */
    struct vmmem_gvec v[] = {{0xff0, 0x20}, {0x100, 0x10}, {0x500, 0}};
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 3, fd, 5), 0x30);
    for (uint64_t i = 0; i < 0x20; i++)
        CU_ASSERT_EQUAL(gbyte(m, 0xff0 + i), pat(5 + i));
    for (uint64_t i = 0; i < 0x10; i++)
        CU_ASSERT_EQUAL(gbyte(m, 0x100 + i), pat(5 + 0x20 + i));
    /* nothing else moved, the file position is untouched */
    CU_ASSERT_TRUE(guest_all(m, 0xfe0, 0x10, 0xee));
    CU_ASSERT_TRUE(guest_all(m, 0x1010, 0x10, 0xee));
    CU_ASSERT_TRUE(guest_all(m, 0xf0, 0x10, 0xee));
    CU_ASSERT_TRUE(guest_all(m, 0x110, 0x10, 0xee));
    CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_CUR), 0);
    close(fd);
    vmmem_map_unref(m);
}

static void test_write_exact_bytes(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    for (uint64_t i = 0; i < 0x2000; i++) {
        uint8_t b = (uint8_t)(i ^ (i >> 8));
        VT_ASSERT_RC(vmmem_write_obj(m, i, &b, 1), 0);
    }
    int fd = memfd_create("vt-iovec-w", MFD_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t junk[0x80];
    memset(junk, 0x5a, sizeof junk);
    CU_ASSERT_EQUAL_FATAL(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    struct vmmem_gvec v[] = {{0xffc, 8}, {0x10, 3}};
    CU_ASSERT_EQUAL(vmmem_pwritev_to_fd(m, v, 2, fd, 0x40), 11);
    uint8_t got[0x80];
    CU_ASSERT_EQUAL_FATAL(pread(fd, got, sizeof got, 0), (ssize_t)sizeof got);
    for (size_t i = 0; i < 0x80; i++) {
        uint8_t want = 0x5a;
        if (i >= 0x40 && i < 0x48)
            want = (uint8_t)((0xffc + i - 0x40) ^ ((0xffc + i - 0x40) >> 8));
        else if (i >= 0x48 && i < 0x4b)
            want = (uint8_t)(0x10 + i - 0x48);
        if (got[i] != want)
            printf("\n    file byte %zu is 0x%02x, want 0x%02x\n", i, got[i], want);
        CU_ASSERT_EQUAL(got[i], want);
    }
    CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_CUR), 0);
    /* a write past the end of the file grows it */
    struct vmmem_gvec one = {0x1800, 4};
    CU_ASSERT_EQUAL(vmmem_pwritev_to_fd(m, &one, 1, fd, 0x1000), 4);
    CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_END), 0x1004);
    close(fd);
    vmmem_map_unref(m);
}

/* More pieces than one system call takes: the batches join up exactly. */
static void test_many_pieces(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    fill(m, 0, 0x2000, 0);
    enum { N = 300 };
    struct vmmem_gvec v[N];
    for (size_t i = 0; i < N; i++)
        v[i] = (struct vmmem_gvec){0x1fff - i * 16 - 2, 3}; /* descending, odd addresses */
    int fd = pattern_file(4 * N);
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, N, fd, 7), 3 * N);
    bool ok = true;
    for (size_t i = 0; i < N && ok; i++)
        for (size_t k = 0; k < 3; k++)
            ok = ok && gbyte(m, v[i].addr + k) == pat(7 + i * 3 + k);
    CU_ASSERT_TRUE(ok);
    /* and back out, to another offset */
    CU_ASSERT_EQUAL(vmmem_pwritev_to_fd(m, v, N, fd, 0x1000), 3 * N);
    uint8_t *b = malloc(3 * N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(pread(fd, b, 3 * N, 0x1000), 3 * N);
    ok = true;
    for (size_t i = 0; i < 3 * N; i++)
        ok = ok && b[i] == pat(7 + i);
    CU_ASSERT_TRUE(ok);
    free(b);
    close(fd);
    vmmem_map_unref(m);
}

static void test_end_of_file(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    fill(m, 0, 0x2000, 0xee);
    int fd = pattern_file(0x18);
    struct vmmem_gvec v[] = {{0x10, 0x10}, {0x100, 0x10}};
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 2, fd, 0), 0x18);
    for (uint64_t i = 0; i < 0x10; i++)
        CU_ASSERT_EQUAL(gbyte(m, 0x10 + i), pat(i));
    for (uint64_t i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(gbyte(m, 0x100 + i), pat(0x10 + i));
    CU_ASSERT_TRUE(guest_all(m, 0x108, 8, 0xee));
    /* at and past the end: 0 bytes, nothing touched */
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 2, fd, 0x18), 0);
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 2, fd, 0x1000), 0);
    CU_ASSERT_TRUE(guest_all(m, 0x108, 8, 0xee));
    close(fd);
    vmmem_map_unref(m);
}

static void test_holes_touch_nothing(void)
{
    vmmem_map *m = vt_map(HOLEY_CONFIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    fill(m, 0, 0x400, 0xee);
    int fd = pattern_file(0x1000);
    /* the first range is fine; the second runs into the hole at 0x400 */
    struct vmmem_gvec v[] = {{0, 0x10}, {0x3f0, 0x20}};
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, v, 2, fd, 0), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x400);
    CU_ASSERT_TRUE(guest_all(m, 0, 0x400, 0xee));
    VT_ASSERT_RC(vmmem_pwritev_to_fd(m, v, 2, fd, 0), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x400);
    uint8_t b[0x30];
    CU_ASSERT_EQUAL(pread(fd, b, sizeof b, 0), (ssize_t)sizeof b);
    for (size_t i = 0; i < sizeof b; i++)
        CU_ASSERT_EQUAL(b[i], pat(i));
    /* a range starting in the hole, and one after every region */
    struct vmmem_gvec h = {0x500, 1};
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, &h, 1, fd, 0), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x500);
    h.addr = 0xbff;
    h.len = 2;
    VT_ASSERT_RC(vmmem_pwritev_to_fd(m, &h, 1, fd, 0), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0xc00);
    close(fd);
    vmmem_map_unref(m);
}

static void test_read_only(void)
{
    vmmem_map *m = vt_map(RO_CONFIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    fill(m, 0, 0x1000, 0xee);
    int fd = pattern_file(0x100);
    struct vmmem_gvec v[] = {{0xff0, 0x20}};
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, v, 1, fd, 0), VMMEM_EREAD_ONLY);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x1000);
    CU_ASSERT_TRUE(guest_all(m, 0xff0, 0x10, 0xee));
    /* reading out of a read-only region is fine */
    CU_ASSERT_EQUAL(vmmem_pwritev_to_fd(m, v, 1, fd, 0), 0x20);
    uint8_t b[0x20];
    CU_ASSERT_EQUAL(pread(fd, b, sizeof b, 0), (ssize_t)sizeof b);
    for (size_t i = 0; i < 0x10; i++)
        CU_ASSERT_EQUAL(b[i], 0xee);
    for (size_t i = 0x10; i < 0x20; i++)
        CU_ASSERT_EQUAL(b[i], 0); /* the read-only region is zeroed memory */
    close(fd);
    vmmem_map_unref(m);
}

static void test_argument_errors(void)
{
    vmmem_map *m = vt_map(ADJ_CONFIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    fill(m, 0, 0x2000, 0xee);
    int fd = pattern_file(0x100);
    struct vmmem_gvec v = {0, 0x10};
    VT_ASSERT_RC(vmmem_preadv_from_fd(NULL, &v, 1, fd, 0), -EINVAL);
    VT_ASSERT_RC(vmmem_pwritev_to_fd(NULL, &v, 1, fd, 0), -EINVAL);
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, NULL, 1, fd, 0), -EINVAL);
    VT_ASSERT_RC(vmmem_pwritev_to_fd(m, NULL, 1, fd, 0), -EINVAL);
    /* nothing to do: 0, even with a bad fd */
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, NULL, 0, -1, 0), 0);
    struct vmmem_gvec z = {0x9000, 0}; /* empty, even unbacked */
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, &z, 1, -1, 0), 0);
    CU_ASSERT_EQUAL(vmmem_pwritev_to_fd(m, &z, 1, -1, 0), 0);
    /* wrapping range, total and offset overflow */
    struct vmmem_gvec w = {UINT64_MAX - 1, 4};
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, &w, 1, fd, 0), VMMEM_EOVERFLOW);
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, &v, 1, fd, (uint64_t)INT64_MAX - 8), VMMEM_EOVERFLOW);
    VT_ASSERT_RC(vmmem_pwritev_to_fd(m, &v, 1, fd, UINT64_MAX), VMMEM_EOVERFLOW);
    struct vmmem_gvec big[2] = {{0, (uint64_t)INT64_MAX}, {0, 2}};
    VT_ASSERT_RC(vmmem_pwritev_to_fd(m, big, 2, fd, 0), VMMEM_EOVERFLOW);
    CU_ASSERT_TRUE(guest_all(m, 0, 0x20, 0xee));
    /* the fd's own errors, nothing moved */
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, &v, 1, -1, 0), -EBADF);
    VT_ASSERT_RC(vmmem_pwritev_to_fd(m, &v, 1, 12345, 0), -EBADF);
    int p[2];
    CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
    VT_ASSERT_RC(vmmem_pwritev_to_fd(m, &v, 1, p[1], 0), -ESPIPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "fd"));
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, &v, 1, p[0], 0), -ESPIPE);
    int ro = open("/proc/self/exe", O_RDONLY);
    CU_ASSERT_FATAL(ro >= 0);
    VT_ASSERT_RC(vmmem_pwritev_to_fd(m, &v, 1, ro, 0), -EBADF);
    CU_ASSERT_TRUE(guest_all(m, 0, 0x20, 0xee));
    close(ro);
    close(p[0]);
    close(p[1]);
    close(fd);
    vmmem_map_unref(m);
}

/* Exactly the pages of the bytes read are dirty; writes out mark nothing. */
static void test_dirty_marking(void)
{
    struct vmmem_map_options o = {sizeof o, VMMEM_MAP_DIRTY_TRACKING, 0};
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, NULL, "mmap:addr=0,size=0x3000;mmap:addr=0x3000,size=0x2000", &o), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    /* five bytes in the file: 4 at 0xffe (pages 0, 1), 1 at 0x3000 (page 3) */
    int fd = pattern_file(5);
    struct vmmem_gvec v[] = {{0xffe, 4}, {0x3000, 0x10}, {0x4000, 0x10}};
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 3, fd, 0), 5);
    for (uint64_t p = 0; p < 5; p++)
        CU_ASSERT_EQUAL(vmmem_map_is_dirty(m, p * 0x1000), p == 0 || p == 1 || p == 3);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 3);
    /* four bytes: page 3 stays clean this time */
    close(fd);
    fd = pattern_file(4);
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 3, fd, 0), 4);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 2);
    CU_ASSERT_FALSE(vmmem_map_is_dirty(m, 0x3000));
    /* end of file: nothing read, nothing marked; writes out mark nothing */
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 3, fd, 4), 0);
    CU_ASSERT_EQUAL(vmmem_pwritev_to_fd(m, v, 3, fd, 0), 0x24);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
    /* refused calls mark nothing */
    struct vmmem_gvec bad[] = {{0x2000, 0x10}, {0x5000, 1}};
    VT_ASSERT_RC(vmmem_preadv_from_fd(m, bad, 2, fd, 0), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 0);
    vmmem_harvest_free(h);
    close(fd);
    vmmem_map_unref(m);
}

/* The vhost-user log (one bit per 4 KiB guest page) gets the same marks. */
static void test_log_marking(void)
{
    vmmem_map *m = vt_map("mmap:addr=0x10000,size=0x8000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    int log = memfd_create("vt-iovec-log", MFD_CLOEXEC);
    CU_ASSERT_FATAL(log >= 0);
    CU_ASSERT_EQUAL_FATAL(ftruncate(log, 4096), 0);
    VT_ASSERT_RC(vmmem_map_attach_log(m, log, 0, 4096), 0);
    int fd = pattern_file(0x2000);
    /* 0x11fff..0x12000 (pages 0x11, 0x12), and 0x15800 + 0x10 (page 0x15) */
    struct vmmem_gvec v[] = {{0x11fff, 2}, {0x15800, 0x10}};
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 2, fd, 0x100), 0x12);
    uint8_t bits[4];
    CU_ASSERT_EQUAL(pread(log, bits, sizeof bits, 0), (ssize_t)sizeof bits);
    /* page p is bit p%8 of byte p/8: 0x11 -> byte 2 bit 1, 0x12 -> byte 2 bit 2, 0x15 -> bit 5 */
    CU_ASSERT_EQUAL(bits[0], 0);
    CU_ASSERT_EQUAL(bits[1], 0);
    CU_ASSERT_EQUAL(bits[2], (1u << 1) | (1u << 2) | (1u << 5));
    CU_ASSERT_EQUAL(bits[3], 0);
    close(fd);
    VT_ASSERT_RC(vmmem_map_detach_log(m), 0);
    close(log);
    vmmem_map_unref(m);
}

/* Map-on-access regions are mapped for the call and unmapped after it. */
static void test_map_on_access(void)
{
    vmmem_registry *reg = NULL;
    VT_ASSERT_RC(vmmem_registry_new(&reg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    VT_ASSERT_RC(vmmem_registry_load(reg, vt_test_plugin("lazy.so")), 0);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(vmmem_map_from_config(&m, reg, "test-lazy:addr=0,size=4K;test-lazy:addr=4K,size=8K", NULL),
                 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    int fd = pattern_file(0x100);
    struct vmmem_gvec v[] = {{0xff8, 0x10}, {0x2ff0, 0x10}};
    CU_ASSERT_EQUAL(vmmem_preadv_from_fd(m, v, 2, fd, 0), 0x20);
    for (uint64_t i = 0; i < 0x10; i++) {
        CU_ASSERT_EQUAL(gbyte(m, 0xff8 + i), pat(i));
        CU_ASSERT_EQUAL(gbyte(m, 0x2ff0 + i), pat(0x10 + i));
    }
    CU_ASSERT_EQUAL(vmmem_pwritev_to_fd(m, v, 2, fd, 0x80), 0x20);
    uint8_t b[0x20];
    CU_ASSERT_EQUAL(pread(fd, b, sizeof b, 0x80), (ssize_t)sizeof b);
    for (size_t i = 0; i < sizeof b; i++)
        CU_ASSERT_EQUAL(b[i], pat(i));
    const struct vmmem_provider *p = vmmem_registry_find(reg, "test-lazy");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* struct vt_counts of tests/plugins/lazy.c: magic, map_calls, maps,
     * unmaps, fail_at, begins, ends, errors */
    const long *c = (const long *)((const char *)p->user + sizeof(long));
    CU_ASSERT_EQUAL(c[4], c[5]); /* every begin ended */
    CU_ASSERT_EQUAL(c[6], 0);    /* no errors */
    close(fd);
    vmmem_map_unref(m);
    vmmem_registry_free(reg);
}

static const struct vt_test iovec_tests[] = {
    {"preadv: exact bytes across a seam, position untouched", test_read_exact_bytes},
    {"pwritev: exact bytes at the offset, nothing else", test_write_exact_bytes},
    {"more pieces than one system call", test_many_pieces},
    {"end of file stops the read", test_end_of_file},
    {"holes refused before anything moves", test_holes_touch_nothing},
    {"read-only regions: refused into, fine out of", test_read_only},
    {"argument, overflow and fd errors", test_argument_errors},
    {"dirty bitmap: exactly the bytes read", test_dirty_marking},
    {"vhost-user log: exactly the pages read", test_log_marking},
    {"map-on-access regions", test_map_on_access},
    {NULL, NULL},
};

static const struct vt_suite iovec_suite = {"iovec", NULL, NULL, iovec_tests};

int main(void)
{
    const struct vt_suite *suites[] = {&iovec_suite, NULL};
    return vt_main(suites);
}

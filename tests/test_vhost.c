/*
 * The vhost-user memory-table layer (vhost.h): SET_MEM_TABLE / ADD_MEM_REG /
 * REM_MEM_REG tables of memfd regions, built here as a front-end would
 * (memfd_create, ftruncate and the test's own shared mapping of each memfd
 * as "the front-end's mapping"), turned into a hot-plug guest memory map
 * through the "file" provider.  Data must flow both ways between the
 * front-end's mapping and the library's guest memory; user addresses (ring
 * addresses) must translate to guest addresses with the length clamped at
 * the region end; every hostile table must be refused with its documented
 * code and leave the published memory, the process's mappings and its fds
 * exactly as they were; ADD/REM must follow the table, and readers must be
 * able to take snapshots while a writer hot-plugs regions.
 */
#include <dirent.h>
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

#define K64 0x10000u

/* Made-up front-end user addresses (page-aligned, far from our own mappings
 * on x86-64 and arm64: 0x5a.. / 0x6a.. TiB region). */
#define B_UADDR 0x5a0000000000ull
#define G_UADDR 0x6a0000000000ull
#define H_UADDR 0x6b0000000000ull

/* ---- helpers ---------------------------------------------------------- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Mappings of memfds: every region these tests map is one.  (Anonymous
 * lines are left out: sanitizers and valgrind map memory of their own.) */
static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, "/memfd:") != NULL)
            n++;
    fclose(f);
    return n;
}

/* Bytes of memfd mappings: unlike count_maps, not changed when the kernel
 * merges two adjacent mappings of consecutive offsets of one memfd into one
 * line (qemu-user places mappings bottom-up, so they are often adjacent). */
static uint64_t memfd_bytes(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return 0;
    uint64_t n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long a, b;
        if (strstr(line, "/memfd:") != NULL && sscanf(line, "%llx-%llx", &a, &b) == 2)
            n += b - a;
    }
    fclose(f);
    return n;
}

static bool same_file(int a, int b)
{
    struct stat sa, sb;
    if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0)
        return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static bool msg_has(const char *needle)
{
    const char *msg = vmmem_last_message();
    if (strstr(msg, needle) != NULL)
        return true;
    fprintf(stdout, "\n    message \"%s\" lacks \"%s\"\n", msg, needle);
    return false;
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

static uint64_t uaddr_of(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/* A front-end's memory: a memfd and the front-end's own shared mapping. */
struct fe {
    int fd;
    uint8_t *p;
    size_t size;
};

static void fe_open(struct fe *f, const char *name, size_t size, uint8_t fill)
{
    f->size = size;
    f->p = NULL;
    f->fd = memfd_create(name, MFD_CLOEXEC);
    CU_ASSERT_FATAL(f->fd >= 0);
    CU_ASSERT_FATAL(ftruncate(f->fd, (off_t)size) == 0);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    CU_ASSERT_FATAL(p != MAP_FAILED);
    f->p = p;
    memset(f->p, fill, size);
}

static void fe_close(struct fe *f)
{
    if (f->p != NULL)
        munmap(f->p, f->size);
    if (f->fd >= 0)
        close(f->fd);
    f->p = NULL;
    f->fd = -1;
}

static struct vmmem_vhost_region vreg(int fd, uint64_t gpa, uint64_t size, uint64_t uaddr,
                                      uint64_t off)
{
    struct vmmem_vhost_region r;
    memset(&r, 0, sizeof r);
    r.guest_phys_addr = gpa;
    r.memory_size = size;
    r.userspace_addr = uaddr;
    r.mmap_offset = off;
    r.fd = fd;
    return r;
}

static vmmem_vhost *new_vhost(size_t max)
{
    vmmem_vhost *v = NULL;
    VT_ASSERT_RC(vmmem_vhost_new(&v, NULL, max, NULL), 0);
    CU_ASSERT_FATAL(v != NULL);
    return v;
}

/* Read len bytes at gpa through a fresh snapshot; true when they equal want. */
static bool guest_has(vmmem_vhost *v, uint64_t gpa, const void *want, size_t len)
{
    uint8_t buf[256];
    CU_ASSERT_FATAL(len <= sizeof buf);
    vmmem_map *m = vmmem_vhost_snapshot(v);
    CU_ASSERT_FATAL(m != NULL);
    int64_t n = vmmem_read(m, gpa, buf, len);
    vmmem_map_unref(m);
    if (n != (int64_t)len) {
        fprintf(stdout, "\n    read at 0x%llx: %lld (%s)\n", (unsigned long long)gpa,
                (long long)n, vmmem_err_name((int)n));
        return false;
    }
    return memcmp(buf, want, len) == 0;
}

/* True when a fresh snapshot has nothing at gpa. */
static bool guest_hole(vmmem_vhost *v, uint64_t gpa)
{
    uint8_t b;
    vmmem_map *m = vmmem_vhost_snapshot(v);
    CU_ASSERT_FATAL(m != NULL);
    int64_t n = vmmem_read(m, gpa, &b, 1);
    vmmem_map_unref(m);
    return n == VMMEM_EINVALID_ADDRESS;
}

static int translate(vmmem_vhost *v, uint64_t uaddr, uint64_t *gpa, uint64_t *len)
{
    vmmem_gaddr_t g = 0;
    int rc = vmmem_vhost_uaddr_to_gpa(v, uaddr, &g, len);
    *gpa = g;
    return rc;
}

/* ---- 1. tables of memfd regions ----------------------------------------- */

/*
 * Region A: 64K memfd at gpa 0, user address = the front-end's mapping.
 * Region B: 128K at gpa 1M from offset 64K of a 256K memfd, made-up user
 * address.
 */
static void test_table_both_ways(void)
{
    struct fe a, b;
    fe_open(&a, "fe-a", K64, 0);
    fe_open(&b, "fe-b", 4 * K64, 0);
    vmmem_vhost *v = new_vhost(0);
    struct vmmem_vhost_region t[2] = {
        vreg(a.fd, 0, K64, uaddr_of(a.p), 0),
        vreg(b.fd, 0x100000, 2 * K64, B_UADDR, K64),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 2), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);

    vmmem_map *m = vmmem_vhost_snapshot(v);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_PTR_EQUAL(vmmem_space_snapshot(vmmem_vhost_space(v)), m);
    vmmem_map_unref(m); /* the extra reference just taken */
    CU_ASSERT_FATAL(vmmem_map_num_regions(m) == 2);
    struct vmmem_region_info ia, ib;
    vmmem_region_get_info(vmmem_map_region(m, 0), &ia);
    vmmem_region_get_info(vmmem_map_region(m, 1), &ib);
    CU_ASSERT_EQUAL(ia.start, 0);
    CU_ASSERT_EQUAL(ia.size, K64);
    CU_ASSERT_STRING_EQUAL(ia.provider, "file");
    CU_ASSERT_EQUAL(ia.file_offset, 0);
    CU_ASSERT(ia.fd >= 0 && ia.fd != a.fd && same_file(ia.fd, a.fd));
    CU_ASSERT_EQUAL(ia.prot, VMMEM_PROT_RW);
    CU_ASSERT(ia.host != NULL && ia.host != (void *)a.p);
    CU_ASSERT_EQUAL(ib.start, 0x100000);
    CU_ASSERT_EQUAL(ib.size, 2 * K64);
    CU_ASSERT_EQUAL(ib.last, 0x100000 + 2 * K64 - 1);
    CU_ASSERT_EQUAL(ib.file_offset, K64);
    CU_ASSERT(ib.fd >= 0 && ib.fd != b.fd && same_file(ib.fd, b.fd));

    /* Front-end writes, back-end reads at the guest address. */
    static const char fa[] = "written by the front-end into A";
    memcpy(a.p + 0x1234, fa, sizeof fa);
    char buf[64];
    VT_ASSERT_RC(vmmem_read(m, 0x1234, buf, sizeof fa), sizeof fa);
    CU_ASSERT_EQUAL(memcmp(buf, fa, sizeof fa), 0);
    /* B: file offset 64K is guest 1M; bytes below mmap_offset are not guest memory. */
    memset(b.p, 0xEE, K64);
    static const char fb[] = "front-end B at file offset 64K+0x10";
    memcpy(b.p + K64 + 0x10, fb, sizeof fb);
    b.p[K64] = 0x5A;
    b.p[3 * K64 - 1] = 0xA5;
    VT_ASSERT_RC(vmmem_read(m, 0x100010, buf, sizeof fb), sizeof fb);
    CU_ASSERT_EQUAL(memcmp(buf, fb, sizeof fb), 0);
    uint8_t u8 = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, 0x100000, &u8, 1), 0);
    CU_ASSERT_EQUAL(u8, 0x5A);
    VT_ASSERT_RC(vmmem_read_obj(m, 0x100000 + 2 * K64 - 1, &u8, 1), 0);
    CU_ASSERT_EQUAL(u8, 0xA5);
    VT_ASSERT_RC(vmmem_read(m, 0x100000 + 2 * K64, &u8, 1), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_read(m, 0xfffff, &u8, 1), VMMEM_EINVALID_ADDRESS);
    /* A read running off B's end stops there. */
    VT_ASSERT_RC(vmmem_read(m, 0x100000 + 2 * K64 - 4, buf, 16), 4);

    /* Back-end writes, front-end sees them. */
    static const char ba[] = "written by the back-end";
    VT_ASSERT_RC(vmmem_write(m, 0x2000, ba, sizeof ba), sizeof ba);
    CU_ASSERT_EQUAL(memcmp(a.p + 0x2000, ba, sizeof ba), 0);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x103000, ba, sizeof ba), 0);
    CU_ASSERT_EQUAL(memcmp(b.p + K64 + 0x3000, ba, sizeof ba), 0);
    uint64_t val = 0x0123456789abcdefull;
    VT_ASSERT_RC(vmmem_store(m, 0x108, 8, val, VMMEM_SEQ_CST), 0);
    uint64_t seen;
    memcpy(&seen, a.p + 0x108, 8);
    CU_ASSERT_EQUAL(seen, val);

    /* Host address of a guest address: the library's own mapping, clamped. */
    void *h = NULL;
    size_t hl = 1 << 20;
    VT_ASSERT_RC(vmmem_map_host_address(m, 0x1234, &h, &hl), 0);
    CU_ASSERT_EQUAL(hl, K64 - 0x1234);
    CU_ASSERT(h != NULL && h != (void *)(a.p + 0x1234));
    CU_ASSERT(h != NULL && memcmp(h, fa, sizeof fa) == 0);

    /* User address -> guest address, len clamped at the region end. */
    uint64_t g = 0, len = 1 << 20;
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) + 0x1234, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0x1234);
    CU_ASSERT_EQUAL(len, K64 - 0x1234);
    len = 16;
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) + 0x1234, &g, &len), 0);
    CU_ASSERT_EQUAL(len, 16);
    len = 0;
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) + 0x1234, &g, &len), 0);
    CU_ASSERT_EQUAL(len, 0);
    VT_ASSERT_RC(translate(v, uaddr_of(a.p), &g, NULL), 0);
    CU_ASSERT_EQUAL(g, 0);
    len = 2;
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) + K64 - 1, &g, &len), 0);
    CU_ASSERT_EQUAL(g, K64 - 1);
    CU_ASSERT_EQUAL(len, 1);
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) + K64, &g, NULL), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, uaddr_of(a.p) + K64);
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) - 1, &g, NULL), VMMEM_EINVALID_ADDRESS);
    len = UINT64_MAX;
    VT_ASSERT_RC(translate(v, B_UADDR + 0x10, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0x100010);
    CU_ASSERT_EQUAL(len, 2 * K64 - 0x10);
    len = 100;
    VT_ASSERT_RC(translate(v, B_UADDR + 2 * K64 - 1, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0x100000 + 2 * K64 - 1);
    CU_ASSERT_EQUAL(len, 1);
    VT_ASSERT_RC(translate(v, B_UADDR + 2 * K64, &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(translate(v, B_UADDR - 1, &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(translate(v, 0, &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(translate(v, UINT64_MAX, &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_vhost_uaddr_to_gpa(v, uaddr_of(a.p), NULL, NULL), -EINVAL);

    /* Data at a translated user address: what the front-end wrote there. */
    VT_ASSERT_RC(translate(v, B_UADDR + 0x10, &g, NULL), 0);
    VT_ASSERT_RC(vmmem_read(m, g, buf, sizeof fb), sizeof fb);
    CU_ASSERT_EQUAL(memcmp(buf, fb, sizeof fb), 0);

    /* A ring: the front-end puts a virtq avail header {flags, idx} in A and
     * passes its own address of it (SET_VRING_ADDR); the back-end reads it. */
    struct avail {
        uint16_t flags, idx, ring[4];
    } av = {1, 7, {3, 2, 1, 0}}, got;
    memcpy(a.p + 0x3000, &av, sizeof av);
    len = sizeof av;
    VT_ASSERT_RC(translate(v, uaddr_of(a.p + 0x3000), &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0x3000);
    CU_ASSERT_EQUAL(len, sizeof av);
    VT_ASSERT_RC(VMMEM_READ_OBJ(m, g, &got), 0);
    CU_ASSERT_EQUAL(got.flags, 1);
    CU_ASSERT_EQUAL(got.idx, 7);
    CU_ASSERT_EQUAL(got.ring[0], 3);
    /* The back-end bumps a used idx; the front-end sees it. */
    uint16_t used_idx = 42;
    VT_ASSERT_RC(VMMEM_WRITE_OBJ(m, g + 2, &used_idx), 0);
    CU_ASSERT_EQUAL(((struct avail *)(void *)(a.p + 0x3000))->idx, 42);

    vmmem_map_unref(m);
    vmmem_vhost_free(v);
    fe_close(&a);
    fe_close(&b);
}

/*
 * The provider dup()s each fd: the caller may close its fd right after
 * SET_MEM_TABLE, and one it keeps is never closed by the library.
 */
static void test_caller_keeps_fd(void)
{
    int fds0 = count_fds(), maps0 = count_maps();
    struct fe a, b;
    fe_open(&a, "closed-after", K64, 0x11);
    fe_open(&b, "kept", K64, 0x22);
    vmmem_vhost *v = new_vhost(0);
    struct vmmem_vhost_region t[2] = {
        vreg(a.fd, 0, K64, uaddr_of(a.p), 0),
        vreg(b.fd, K64, K64, uaddr_of(b.p), 0),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 2), 0);
    /* two front-end fds plus one duplicate per region */
    CU_ASSERT_EQUAL(count_fds(), fds0 + 4);

    close(a.fd);
    a.fd = -1;
    CU_ASSERT_EQUAL(count_fds(), fds0 + 3);
    vmmem_map *m = vmmem_vhost_snapshot(v);
    struct vmmem_region_info ia;
    vmmem_region_get_info(vmmem_map_region(m, 0), &ia);
    CU_ASSERT(fcntl(ia.fd, F_GETFD) >= 0); /* the provider's duplicate is open */
    static const char s1[] = "after the caller closed its fd";
    VT_ASSERT_RC(vmmem_write(m, 0x40, s1, sizeof s1), sizeof s1);
    CU_ASSERT_EQUAL(memcmp(a.p + 0x40, s1, sizeof s1), 0);
    a.p[0x100] = 0x77;
    uint8_t u8 = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, 0x100, &u8, 1), 0);
    CU_ASSERT_EQUAL(u8, 0x77);
    vmmem_map_unref(m);
    /* Even with the front-end's mapping gone too, the region is intact. */
    munmap(a.p, a.size);
    a.p = NULL;
    CU_ASSERT(guest_has(v, 0x40, s1, sizeof s1));

    /* B's fd stays the caller's: written through the library, read with pread,
     * and still open after the table is emptied and the vhost freed. */
    static const char s2[] = "through the library into the kept fd";
    m = vmmem_vhost_snapshot(v);
    VT_ASSERT_RC(vmmem_write(m, K64 + 0x80, s2, sizeof s2), sizeof s2);
    vmmem_map_unref(m);
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, NULL, 0), 0);
    CU_ASSERT(fcntl(b.fd, F_GETFD) >= 0);
    vmmem_vhost_free(v);
    CU_ASSERT(fcntl(b.fd, F_GETFD) >= 0);
    char buf[sizeof s2];
    CU_ASSERT_EQUAL(pread(b.fd, buf, sizeof buf, 0x80), (ssize_t)sizeof buf);
    CU_ASSERT_EQUAL(memcmp(buf, s2, sizeof s2), 0);
    CU_ASSERT_EQUAL(count_fds(), fds0 + 1);
    fe_close(&a);
    fe_close(&b);
    CU_ASSERT_EQUAL(count_fds(), fds0);
    CU_ASSERT_EQUAL(count_maps(), maps0);
}

/* One memfd, several regions at different offsets (as QEMU sends them). */
static void test_one_fd_many_regions(void)
{
    struct fe f;
    fe_open(&f, "one-fd", 4 * K64, 0);
    for (int i = 0; i < 4; i++)
        memset(f.p + (size_t)i * K64, 0x10 + i, K64);
    vmmem_vhost *v = new_vhost(0);
    /* Guest order differs from file order; user addresses follow the file. */
    struct vmmem_vhost_region t[3] = {
        vreg(f.fd, 0x40000000, K64, uaddr_of(f.p) + 3 * K64, 3 * K64),
        vreg(f.fd, 0, K64, uaddr_of(f.p), 0),
        vreg(f.fd, 0x200000, 2 * K64, uaddr_of(f.p) + K64, K64),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 3), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 3);
    uint8_t want[16];
    memset(want, 0x10, 16);
    CU_ASSERT(guest_has(v, 0, want, 16));
    memset(want, 0x11, 16);
    CU_ASSERT(guest_has(v, 0x200000, want, 16));
    memset(want, 0x12, 16);
    CU_ASSERT(guest_has(v, 0x200000 + K64, want, 16));
    memset(want, 0x13, 16);
    CU_ASSERT(guest_has(v, 0x40000000 + K64 - 16, want, 16));
    vmmem_map *m = vmmem_vhost_snapshot(v);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 3);
    CU_ASSERT_EQUAL(vmmem_region_start(vmmem_map_region(m, 0)), 0);
    CU_ASSERT_EQUAL(vmmem_region_start(vmmem_map_region(m, 1)), 0x200000);
    CU_ASSERT_EQUAL(vmmem_region_start(vmmem_map_region(m, 2)), 0x40000000);
    vmmem_map_unref(m);

    /* The user ranges touch; each translation stays inside its own region. */
    uint64_t g, len = 4 * K64;
    VT_ASSERT_RC(translate(v, uaddr_of(f.p) + K64 - 8, &g, &len), 0);
    CU_ASSERT_EQUAL(g, K64 - 8);
    CU_ASSERT_EQUAL(len, 8);
    len = 4 * K64;
    VT_ASSERT_RC(translate(v, uaddr_of(f.p) + K64, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0x200000);
    CU_ASSERT_EQUAL(len, 2 * K64);
    len = 4 * K64;
    VT_ASSERT_RC(translate(v, uaddr_of(f.p) + 3 * K64 + 5, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0x40000005);
    CU_ASSERT_EQUAL(len, K64 - 5);
    vmmem_vhost_free(v);
    fe_close(&f);
}

/* Touching guest and user ranges are not overlaps; the very top of both
 * address spaces is usable (start + size == 2^64 does not pass 2^64). */
static void test_touching_and_top(void)
{
    struct fe a, b;
    fe_open(&a, "touch-a", K64, 0xA0);
    fe_open(&b, "touch-b", K64, 0xB0);
    vmmem_vhost *v = new_vhost(0);
    struct vmmem_vhost_region t[2] = {
        vreg(a.fd, 0, K64, G_UADDR, 0),
        vreg(b.fd, K64, K64, G_UADDR + K64, 0),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 2), 0);
    uint8_t want[16];
    memset(want, 0xA0, 8);
    memset(want + 8, 0xB0, 8);
    CU_ASSERT(guest_has(v, K64 - 8, want, 16)); /* across the seam */
    uint64_t g, len = 64;
    VT_ASSERT_RC(translate(v, G_UADDR + K64 - 1, &g, &len), 0);
    CU_ASSERT_EQUAL(g, K64 - 1);
    CU_ASSERT_EQUAL(len, 1);

    const uint64_t top = UINT64_MAX - K64 + 1; /* last 64K */
    struct vmmem_vhost_region t2[2] = {
        vreg(a.fd, top, K64, top, 0),
        vreg(b.fd, 0, K64, 0, 0),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t2, 2), 0);
    a.p[K64 - 1] = 0xCD;
    memset(want, 0xA0, 16);
    want[15] = 0xCD;
    CU_ASSERT(guest_has(v, UINT64_MAX - 15, want, 16));
    len = 64;
    VT_ASSERT_RC(translate(v, UINT64_MAX, &g, &len), 0);
    CU_ASSERT_EQUAL(g, UINT64_MAX);
    CU_ASSERT_EQUAL(len, 1);
    len = 64;
    VT_ASSERT_RC(translate(v, 0, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0);
    CU_ASSERT_EQUAL(len, 64);
    vmmem_vhost_free(v);
    fe_close(&a);
    fe_close(&b);
}

/* SET_MEM_TABLE replaces the whole table; old snapshots keep the old one. */
static void test_set_replaces(void)
{
    int maps0 = count_maps();
    struct fe a, b, c;
    fe_open(&a, "rep-a", K64, 0x1A);
    fe_open(&b, "rep-b", K64, 0x1B);
    fe_open(&c, "rep-c", K64, 0x1C);
    int maps1 = count_maps();
    vmmem_vhost *v = new_vhost(0);
    struct vmmem_vhost_region t1[2] = {
        vreg(a.fd, 0, K64, uaddr_of(a.p), 0),
        vreg(b.fd, 0x100000, K64, uaddr_of(b.p), 0),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t1, 2), 0);
    CU_ASSERT_EQUAL(count_maps(), maps1 + 2);
    vmmem_map *old = vmmem_vhost_snapshot(v);

    struct vmmem_vhost_region t2[1] = {vreg(c.fd, 0x200000, K64, uaddr_of(c.p), 0)};
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t2, 1), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 1);
    CU_ASSERT(guest_hole(v, 0));
    CU_ASSERT(guest_hole(v, 0x100000));
    uint8_t want[8];
    memset(want, 0x1C, 8);
    CU_ASSERT(guest_has(v, 0x200000, want, 8));
    uint64_t g;
    VT_ASSERT_RC(translate(v, uaddr_of(a.p), &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(translate(v, uaddr_of(c.p) + 8, &g, NULL), 0);
    CU_ASSERT_EQUAL(g, 0x200008);

    /* The old snapshot still has A and B, live and shared with the front-end. */
    CU_ASSERT_EQUAL(vmmem_map_num_regions(old), 2);
    uint8_t buf[8];
    VT_ASSERT_RC(vmmem_read(old, 0x100000, buf, 8), 8);
    CU_ASSERT(all_bytes(buf, 8, 0x1B));
    b.p[0] = 0x99;
    VT_ASSERT_RC(vmmem_read(old, 0x100000, buf, 1), 1);
    CU_ASSERT_EQUAL(buf[0], 0x99);
    VT_ASSERT_RC(vmmem_read(old, 0x200000, buf, 1), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(count_maps(), maps1 + 3);
    vmmem_map_unref(old);
    CU_ASSERT_EQUAL(count_maps(), maps1 + 1); /* A and B unmapped now */

    vmmem_vhost_free(v);
    CU_ASSERT_EQUAL(count_maps(), maps1);
    fe_close(&a);
    fe_close(&b);
    fe_close(&c);
    CU_ASSERT_EQUAL(count_maps(), maps0);
}

/* ---- 2. hostile tables -------------------------------------------------- */

/* A published table {A at gpa 0, B at gpa 1M} and a spare valid memfd G that
 * bad tables may use; every refusal must leave all of it as it was. */
struct fixture {
    vmmem_vhost *v;
    struct fe a, b, g;
    int maps0, fds0;
};

static void fx_setup(struct fixture *fx, size_t max)
{
    fe_open(&fx->a, "fx-a", K64, 0x11);
    fe_open(&fx->b, "fx-b", K64, 0x22);
    fe_open(&fx->g, "fx-g", K64, 0x33);
    fx->v = new_vhost(max);
    struct vmmem_vhost_region t[2] = {
        vreg(fx->a.fd, 0, K64, uaddr_of(fx->a.p), 0),
        vreg(fx->b.fd, 0x100000, K64, B_UADDR, 0),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(fx->v, t, 2), 0);
    fx->maps0 = count_maps();
    fx->fds0 = count_fds();
}

static void fx_teardown(struct fixture *fx)
{
    vmmem_vhost_free(fx->v);
    fe_close(&fx->a);
    fe_close(&fx->b);
    fe_close(&fx->g);
}

/* A valid region of G, never part of the published table. */
static struct vmmem_vhost_region fx_good(const struct fixture *fx)
{
    return vreg(fx->g.fd, 0x800000, K64, G_UADDR, 0);
}

/* The base of a bad region: valid but for the field the case breaks. */
static struct vmmem_vhost_region fx_bad(const struct fixture *fx)
{
    return vreg(fx->g.fd, 0x900000, 0x1000, H_UADDR, 0);
}

static void fx_check(const struct fixture *fx, const char *what)
{
    bool ok = true;
    ok &= vmmem_vhost_num_regions(fx->v) == 2;
    vmmem_map *m = vmmem_vhost_snapshot(fx->v);
    CU_ASSERT_FATAL(m != NULL);
    ok &= vmmem_map_num_regions(m) == 2;
    if (vmmem_map_num_regions(m) == 2) {
        ok &= vmmem_region_start(vmmem_map_region(m, 0)) == 0;
        ok &= vmmem_region_size(vmmem_map_region(m, 0)) == K64;
        ok &= vmmem_region_start(vmmem_map_region(m, 1)) == 0x100000;
        ok &= vmmem_region_size(vmmem_map_region(m, 1)) == K64;
    }
    uint8_t buf[32];
    ok &= vmmem_read(m, 0x10, buf, 32) == 32 && all_bytes(buf, 32, 0x11);
    ok &= vmmem_read(m, 0x100000 + K64 - 32, buf, 32) == 32 && all_bytes(buf, 32, 0x22);
    ok &= vmmem_read(m, 0x800000, buf, 1) == VMMEM_EINVALID_ADDRESS;
    ok &= vmmem_read(m, 0x900000, buf, 1) == VMMEM_EINVALID_ADDRESS;
    vmmem_map_unref(m);
    vmmem_gaddr_t g = 0;
    ok &= vmmem_vhost_uaddr_to_gpa(fx->v, uaddr_of(fx->a.p) + 8, &g, NULL) == 0 && g == 8;
    ok &= vmmem_vhost_uaddr_to_gpa(fx->v, B_UADDR + 8, &g, NULL) == 0 && g == 0x100008;
    ok &= vmmem_vhost_uaddr_to_gpa(fx->v, G_UADDR, &g, NULL) == VMMEM_EINVALID_ADDRESS;
    ok &= vmmem_vhost_uaddr_to_gpa(fx->v, H_UADDR, &g, NULL) == VMMEM_EINVALID_ADDRESS;
    int maps = count_maps(), fds = count_fds();
    if (!ok || maps != fx->maps0 || fds != fx->fds0)
        fprintf(stdout, "\n    %s: published memory changed (ok=%d, maps %d -> %d, fds %d -> %d)\n",
                what, ok, fx->maps0, maps, fx->fds0, fds);
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL(maps, fx->maps0);
    CU_ASSERT_EQUAL(fds, fx->fds0);
}

/* The refusal itself: code, thread error detail, optional message text. */
static void check_refusal(const char *what, const char *how, int rc, int code,
                          const char *needle)
{
    if (rc != code)
        fprintf(stdout, "\n    %s (%s):", what, how);
    VT_ASSERT_RC(rc, code);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, code);
    CU_ASSERT(vmmem_last_message()[0] != '\0');
    if (needle != NULL)
        CU_ASSERT(msg_has(needle));
}

/* SET_MEM_TABLE {good, bad} (and {bad} alone) must fail with code. */
static void refuse_table(const struct fixture *fx, const char *what,
                         const struct vmmem_vhost_region *bad, int code, const char *needle)
{
    struct vmmem_vhost_region t[2] = {fx_good(fx), *bad};
    check_refusal(what, "table of 2", vmmem_vhost_set_mem_table(fx->v, t, 2), code, needle);
    fx_check(fx, what);
    check_refusal(what, "table of 1", vmmem_vhost_set_mem_table(fx->v, bad, 1), code, needle);
    fx_check(fx, what);
}

/* ... and ADD_MEM_REG of it too. */
static void refuse_both(const struct fixture *fx, const char *what,
                        const struct vmmem_vhost_region *bad, int code, const char *needle)
{
    refuse_table(fx, what, bad, code, needle);
    check_refusal(what, "add", vmmem_vhost_add_region(fx->v, bad), code, needle);
    fx_check(fx, what);
}

static void test_invalid_single(void)
{
    struct fixture fx;
    fx_setup(&fx, 0);
    fx_check(&fx, "after setup");
    struct vmmem_vhost_region r;

    r = fx_bad(&fx);
    r.memory_size = 0;
    refuse_both(&fx, "zero size", &r, VMMEM_EZERO_SIZE, NULL);

    r = fx_bad(&fx);
    r.guest_phys_addr = UINT64_MAX - K64 + 1; /* last 64K */
    r.memory_size = 2 * K64;
    refuse_both(&fx, "gpa + size past 2^64", &r, VMMEM_EOVERFLOW, NULL);
    r.guest_phys_addr = UINT64_MAX;
    r.memory_size = 2;
    refuse_both(&fx, "gpa 2^64-1 + 2", &r, VMMEM_EOVERFLOW, NULL);

    r = fx_bad(&fx);
    r.userspace_addr = UINT64_MAX - K64 + 1;
    r.memory_size = 2 * K64;
    refuse_both(&fx, "user address + size past 2^64", &r, VMMEM_EOVERFLOW, NULL);
    r.userspace_addr = UINT64_MAX;
    r.memory_size = 0x1000;
    refuse_both(&fx, "user address 2^64-1 + 4K", &r, VMMEM_EOVERFLOW, NULL);

    r = fx_bad(&fx);
    r.mmap_offset = UINT64_MAX - K64 + 1;
    r.memory_size = 2 * K64;
    refuse_both(&fx, "mmap_offset + size past 2^64", &r, VMMEM_EOVERFLOW, NULL);

    r = fx_bad(&fx);
    r.mmap_offset = 2 * K64; /* the memfd is 64K */
    refuse_both(&fx, "offset beyond the fd's size", &r, -ERANGE, NULL);
    r.mmap_offset = K64; /* exactly at the end */
    refuse_both(&fx, "offset at the fd's end", &r, -ERANGE, NULL);
    r.mmap_offset = K64 / 2;
    r.memory_size = K64;
    refuse_both(&fx, "offset + size beyond the fd's size", &r, -ERANGE, NULL);
    r.mmap_offset = 0;
    r.memory_size = 2 * K64;
    refuse_both(&fx, "size beyond the fd's size", &r, -ERANGE, NULL);

    r = fx_bad(&fx);
    r.mmap_offset = 0x800;
    refuse_both(&fx, "unaligned offset", &r, VMMEM_EBAD_VALUE, NULL);
    r.mmap_offset = 0x1001;
    refuse_both(&fx, "unaligned offset 0x1001", &r, VMMEM_EBAD_VALUE, NULL);

    static const struct {
        uint32_t flags;
        const char *text;
    } xen[] = {{3, "0x3"}, {8, "0x8"}, {9, "0x9"}, {4, "0x4"}, {16, "0x10"}};
    for (size_t i = 0; i < sizeof xen / sizeof xen[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "Xen flags %s", xen[i].text);
        r = fx_bad(&fx);
        r.xen_mmap_flags = xen[i].flags;
        r.xen_mmap_data = 1;
        refuse_both(&fx, what, &r, VMMEM_EBAD_VALUE, xen[i].text);
    }

    r = fx_bad(&fx);
    r.fd = -1;
    refuse_both(&fx, "fd -1", &r, -EBADF, NULL);
    r.fd = -42;
    refuse_both(&fx, "fd -42", &r, -EBADF, NULL);

    int cfd = memfd_create("closed", MFD_CLOEXEC);
    CU_ASSERT_FATAL(cfd >= 0);
    CU_ASSERT_FATAL(ftruncate(cfd, K64) == 0);
    close(cfd);
    r = fx_bad(&fx);
    r.fd = cfd;
    refuse_both(&fx, "closed fd", &r, -EBADF, NULL);

    fx_teardown(&fx);
}

/* Refusals that need the whole table (or, for ADD, the published one). */
static void test_invalid_overlap_and_limit(void)
{
    struct fixture fx;
    fx_setup(&fx, 3);
    struct vmmem_vhost_region good = fx_good(&fx), r, t[4];

    /* Guest ranges overlapping inside the table (each entry alone is fine). */
    r = fx_bad(&fx);
    r.guest_phys_addr = good.guest_phys_addr + K64 - 0x1000;
    t[0] = good;
    t[1] = r;
    check_refusal("guest overlap", "table", vmmem_vhost_set_mem_table(fx.v, t, 2),
                  VMMEM_EOVERLAP, NULL);
    fx_check(&fx, "guest overlap");
    r.guest_phys_addr = good.guest_phys_addr;
    t[1] = r;
    check_refusal("same gpa", "table", vmmem_vhost_set_mem_table(fx.v, t, 2), VMMEM_EOVERLAP,
                  NULL);
    fx_check(&fx, "same gpa");
    r.guest_phys_addr = good.guest_phys_addr - 0x1000;
    r.memory_size = 0x2000; /* straddles G's start */
    t[1] = r;
    check_refusal("guest overlap (first page)", "table", vmmem_vhost_set_mem_table(fx.v, t, 2),
                  VMMEM_EOVERLAP, NULL);
    fx_check(&fx, "guest overlap (first page)");

    /* User ranges overlapping inside the table (by one byte). */
    r = fx_bad(&fx);
    r.userspace_addr = good.userspace_addr + K64 - 1;
    t[1] = r;
    check_refusal("user overlap", "table", vmmem_vhost_set_mem_table(fx.v, t, 2),
                  VMMEM_EOVERLAP, NULL);
    fx_check(&fx, "user overlap");
    /* Later entries are checked against every earlier one, not just the previous. */
    t[0] = good;
    t[1] = fx_bad(&fx);
    t[2] = vreg(fx.g.fd, 0xA00000, 0x1000, good.userspace_addr + 0x1000, 0);
    check_refusal("user overlap with entry 0 of 3", "table",
                  vmmem_vhost_set_mem_table(fx.v, t, 3), VMMEM_EOVERLAP, NULL);
    fx_check(&fx, "user overlap with entry 0 of 3");

    /* ADD_MEM_REG overlapping the published table. */
    r = fx_bad(&fx);
    r.guest_phys_addr = 0x8000; /* inside A */
    check_refusal("add: guest overlap", "add", vmmem_vhost_add_region(fx.v, &r), VMMEM_EOVERLAP,
                  NULL);
    fx_check(&fx, "add: guest overlap");
    r = fx_bad(&fx);
    r.userspace_addr = B_UADDR + K64 - 0x1000; /* inside B's user range */
    check_refusal("add: user overlap", "add", vmmem_vhost_add_region(fx.v, &r), VMMEM_EOVERLAP,
                  NULL);
    fx_check(&fx, "add: user overlap");
    r = fx_bad(&fx);
    r.userspace_addr = uaddr_of(fx.a.p) - 0x1000;
    r.memory_size = 0x2000; /* straddles A's user start */
    check_refusal("add: user overlap (A)", "add", vmmem_vhost_add_region(fx.v, &r),
                  VMMEM_EOVERLAP, NULL);
    fx_check(&fx, "add: user overlap (A)");

    /* Limit 3: a table of 4 valid regions. */
    t[0] = good;
    t[1] = vreg(fx.g.fd, 0x900000, 0x1000, H_UADDR, 0);
    t[2] = vreg(fx.g.fd, 0xA00000, 0x1000, H_UADDR + 0x1000, 0x1000);
    t[3] = vreg(fx.g.fd, 0xB00000, 0x1000, H_UADDR + 0x2000, 0x2000);
    check_refusal("4 regions, limit 3", "table", vmmem_vhost_set_mem_table(fx.v, t, 4), -E2BIG,
                  NULL);
    fx_check(&fx, "4 regions, limit 3");

    /* A provider failure after the first region was mapped: a read-only fd
     * cannot back a shared writable mapping (file provider: -EACCES). */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fx.g.fd);
    int rofd = open(path, O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(rofd >= 0);
    fx.fds0++;
    t[1] = vreg(rofd, 0x900000, 0x1000, H_UADDR, 0);
    check_refusal("read-only fd", "table", vmmem_vhost_set_mem_table(fx.v, t, 2), -EACCES, NULL);
    fx_check(&fx, "read-only fd");
    check_refusal("read-only fd", "add", vmmem_vhost_add_region(fx.v, &t[1]), -EACCES, NULL);
    fx_check(&fx, "read-only fd");
    close(rofd);
    fx.fds0--;

    /* NULL arguments. */
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(fx.v, NULL, 1), -EINVAL);
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(NULL, t, 1), -EINVAL);
    VT_ASSERT_RC(vmmem_vhost_add_region(fx.v, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_vhost_remove_region(fx.v, NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_vhost_new(NULL, NULL, 0, NULL), -EINVAL);
    fx_check(&fx, "NULL arguments");
    fx_teardown(&fx);
}

/* max_regions = 2: a table of 3 is -E2BIG; ADD past the limit too. */
static void test_region_limit(void)
{
    int maps0 = count_maps();
    struct fe f;
    fe_open(&f, "limit", 4 * K64, 0x44);
    int maps1 = count_maps();
    uint64_t bytes1 = memfd_bytes();
    vmmem_vhost *v = new_vhost(2);
    struct vmmem_vhost_region t[3] = {
        vreg(f.fd, 0, K64, uaddr_of(f.p), 0),
        vreg(f.fd, K64, K64, uaddr_of(f.p) + K64, K64),
        vreg(f.fd, 2 * K64, K64, uaddr_of(f.p) + 2 * K64, 2 * K64),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 3), -E2BIG);
    CU_ASSERT(msg_has("2"));
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 0);
    CU_ASSERT(guest_hole(v, 0));
    CU_ASSERT_EQUAL(count_maps(), maps1);

    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 2), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &t[2]), -E2BIG);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);
    CU_ASSERT(guest_hole(v, 2 * K64));
    /* The two regions, and nothing of the refused third (t[0] and t[1] are
     * consecutive offsets: under qemu-user their mappings may be one line). */
    CU_ASSERT_EQUAL(memfd_bytes(), bytes1 + 2 * K64);
    if (vt_emulator() == NULL)
        CU_ASSERT_EQUAL(count_maps(), maps1 + 2);
    VT_ASSERT_RC(vmmem_vhost_remove_region(v, &t[0]), 0);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &t[2]), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);
    uint8_t want[8];
    memset(want, 0x44, 8);
    CU_ASSERT(guest_has(v, 2 * K64, want, 8));
    CU_ASSERT(guest_hole(v, 0));
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &t[0]), -E2BIG);
    vmmem_vhost_free(v);
    CU_ASSERT_EQUAL(count_maps(), maps1);
    fe_close(&f);
    CU_ASSERT_EQUAL(count_maps(), maps0);
}

/* max_regions = 0 means 509: a table of 510 is -E2BIG before any region is
 * looked at, a table of 509 gets to the regions (all zero-sized here). */
static void test_default_limit(void)
{
    CU_ASSERT_EQUAL(VMMEM_VHOST_DEFAULT_MAX_REGIONS, 509);
    vmmem_vhost *v = new_vhost(0);
    struct vmmem_vhost_region *t = calloc(510, sizeof *t);
    CU_ASSERT_FATAL(t != NULL);
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 510), -E2BIG);
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 509), VMMEM_EZERO_SIZE);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 0);
    free(t);
    vmmem_vhost_free(v);
}

/* ---- 3. ADD_MEM_REG / REM_MEM_REG --------------------------------------- */

static void test_add_remove(void)
{
    int maps0 = count_maps(), fds0 = count_fds();
    struct fe a, b, c;
    fe_open(&a, "hp-a", K64, 0x0A);
    fe_open(&b, "hp-b", K64, 0x0B);
    fe_open(&c, "hp-c", 2 * K64, 0x0C);
    int maps1 = count_maps();
    vmmem_vhost *v = new_vhost(0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 0);
    CU_ASSERT(guest_hole(v, 0));

    struct vmmem_vhost_region ra = vreg(a.fd, 0, K64, uaddr_of(a.p), 0);
    struct vmmem_vhost_region rb = vreg(b.fd, 0x100000, K64, B_UADDR, 0);
    struct vmmem_vhost_region rc_ = vreg(c.fd, 0x100000, K64, B_UADDR, K64);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &ra), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 1);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &rb), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);
    CU_ASSERT_EQUAL(count_maps(), maps1 + 2);
    uint8_t want[16];
    memset(want, 0x0A, 16);
    CU_ASSERT(guest_has(v, 0, want, 16));
    memset(want, 0x0B, 16);
    CU_ASSERT(guest_has(v, 0x100000, want, 16));

    /* Overlaps with published regions are refused, nothing changes. */
    struct vmmem_vhost_region bad = vreg(c.fd, 0xF000, K64, H_UADDR, 0);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &bad), VMMEM_EOVERLAP);
    bad = vreg(c.fd, 0x200000, K64, uaddr_of(a.p) + K64 - 1, 0);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &bad), VMMEM_EOVERLAP);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &rb), VMMEM_EOVERLAP); /* again */
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &rc_), VMMEM_EOVERLAP); /* same gpa and uaddr */
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);
    CU_ASSERT_EQUAL(count_maps(), maps1 + 2);

    uint64_t g, len = 1 << 20;
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) + 5, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 5);
    CU_ASSERT_EQUAL(len, K64 - 5);
    len = 1 << 20;
    VT_ASSERT_RC(translate(v, B_UADDR + 7, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0x100007);
    CU_ASSERT_EQUAL(len, K64 - 7);

    /* Removal needs gpa, size and user address to match. */
    vmmem_map *old = vmmem_vhost_snapshot(v);
    struct vmmem_vhost_region q = rb;
    q.userspace_addr += 0x1000;
    VT_ASSERT_RC(vmmem_vhost_remove_region(v, &q), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_last_error()->addr, 0x100000);
    q = rb;
    q.memory_size = 0x1000;
    VT_ASSERT_RC(vmmem_vhost_remove_region(v, &q), VMMEM_EINVALID_ADDRESS);
    q = rb;
    q.guest_phys_addr = 0x101000;
    VT_ASSERT_RC(vmmem_vhost_remove_region(v, &q), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);
    /* fd, offset and Xen fields play no part in matching. */
    q = rb;
    q.fd = -1;
    q.mmap_offset = 0x5000;
    VT_ASSERT_RC(vmmem_vhost_remove_region(v, &q), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 1);
    VT_ASSERT_RC(vmmem_vhost_remove_region(v, &rb), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT(guest_hole(v, 0x100000));
    VT_ASSERT_RC(translate(v, B_UADDR + 7, &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) + 5, &g, NULL), 0);
    CU_ASSERT_EQUAL(g, 5);

    /* The old snapshot still holds B, shared with the front-end both ways. */
    uint8_t buf[16];
    VT_ASSERT_RC(vmmem_read(old, 0x100000, buf, 16), 16);
    CU_ASSERT(all_bytes(buf, 16, 0x0B));
    b.p[0x20] = 0xBE;
    VT_ASSERT_RC(vmmem_read(old, 0x100020, buf, 1), 1);
    CU_ASSERT_EQUAL(buf[0], 0xBE);
    static const char s[] = "old snapshot writes";
    VT_ASSERT_RC(vmmem_write(old, 0x100040, s, sizeof s), sizeof s);
    CU_ASSERT_EQUAL(memcmp(b.p + 0x40, s, sizeof s), 0);
    CU_ASSERT_EQUAL(count_maps(), maps1 + 2);
    vmmem_map_unref(old);
    CU_ASSERT_EQUAL(count_maps(), maps1 + 1); /* B unmapped with its last snapshot */

    /* Re-use B's guest and user range with C (from offset 64K). */
    c.p[K64] = 0xC1;
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &rc_), 0);
    want[0] = 0xC1;
    memset(want + 1, 0x0C, 15);
    CU_ASSERT(guest_has(v, 0x100000, want, 16));
    len = 1 << 20;
    VT_ASSERT_RC(translate(v, B_UADDR + 7, &g, &len), 0);
    CU_ASSERT_EQUAL(g, 0x100007);
    CU_ASSERT_EQUAL(len, K64 - 7);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 2);

    /* Remove the first-added one (table order must not matter). */
    VT_ASSERT_RC(vmmem_vhost_remove_region(v, &ra), 0);
    CU_ASSERT(guest_hole(v, 0));
    CU_ASSERT(guest_has(v, 0x100000, want, 16));
    VT_ASSERT_RC(translate(v, uaddr_of(a.p), &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &ra), 0);

    /* SET_MEM_TABLE with n = 0 empties the memory. */
    vmmem_map *before = vmmem_vhost_snapshot(v);
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, NULL, 0), 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 0);
    vmmem_map *m = vmmem_vhost_snapshot(v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 0);
    VT_ASSERT_RC(vmmem_read(m, 0, buf, 1), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_read(m, 0x100000, buf, 1), VMMEM_EINVALID_ADDRESS);
    vmmem_map_unref(m);
    VT_ASSERT_RC(translate(v, uaddr_of(a.p), &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(translate(v, B_UADDR, &g, NULL), VMMEM_EINVALID_ADDRESS);
    VT_ASSERT_RC(vmmem_vhost_remove_region(v, &ra), VMMEM_EINVALID_ADDRESS);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(before), 2); /* still usable */
    VT_ASSERT_RC(vmmem_read(before, 0, buf, 16), 16);
    vmmem_map_unref(before);
    CU_ASSERT_EQUAL(count_maps(), maps1);
    struct vmmem_vhost_region empty[1] = {ra};
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, empty, 0), 0); /* t ignored when n == 0 */
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 0);

    /* And it fills again. */
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &rb), 0);
    memset(want, 0x0B, 16);
    CU_ASSERT(guest_has(v, 0x100000, want, 16));
    vmmem_vhost_free(v);
    CU_ASSERT_EQUAL(count_maps(), maps1);
    fe_close(&a);
    fe_close(&b);
    fe_close(&c);
    CU_ASSERT_EQUAL(count_maps(), maps0);
    CU_ASSERT_EQUAL(count_fds(), fds0);
}

/* Options given to vmmem_vhost_new (dirty tracking and its page size) apply
 * to the maps it publishes, whether built by SET_MEM_TABLE or ADD_MEM_REG. */
static void test_map_options(void)
{
    struct fe a, b;
    fe_open(&a, "opt-a", 2 * K64, 0);
    fe_open(&b, "opt-b", K64, 0);
    struct vmmem_map_options o = {sizeof o, VMMEM_MAP_DIRTY_TRACKING, K64};
    vmmem_vhost *v = NULL;
    VT_ASSERT_RC(vmmem_vhost_new(&v, NULL, 0, &o), 0);
    CU_ASSERT_FATAL(v != NULL);
    struct vmmem_vhost_region t[1] = {vreg(a.fd, 0, 2 * K64, uaddr_of(a.p), 0)};
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t, 1), 0);
    vmmem_map *m = vmmem_vhost_snapshot(v);
    CU_ASSERT(vmmem_map_dirty_tracking(m));
    if (vmmem_map_dirty_page_size(m) != K64)
        fprintf(stdout, "\n    after SET_MEM_TABLE: dirty page size %llu, asked for %u\n",
                (unsigned long long)vmmem_map_dirty_page_size(m), K64);
    CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), K64);
    /* Regions entering a tracked space start all-dirty (space.h, issue 14):
     * harvest them once before looking at single pages. */
    CU_ASSERT(vmmem_map_is_dirty(m, 0));
    vmmem_harvest *h = NULL;
    VT_ASSERT_RC(vmmem_harvest_new(m, &h), 0);
    CU_ASSERT_EQUAL(vmmem_map_harvest(m, h), 2);
    vmmem_harvest_free(h);
    uint8_t x = 1;
    VT_ASSERT_RC(vmmem_write(m, K64 + 5, &x, 1), 1);
    CU_ASSERT(vmmem_map_is_dirty(m, K64));
    CU_ASSERT(!vmmem_map_is_dirty(m, 0));
    vmmem_map_unref(m);

    struct vmmem_vhost_region rb = vreg(b.fd, 0x100000, K64, B_UADDR, 0);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &rb), 0);
    m = vmmem_vhost_snapshot(v);
    CU_ASSERT(vmmem_map_dirty_tracking(m));
    CU_ASSERT_EQUAL(vmmem_map_dirty_page_size(m), K64);
    vmmem_map_unref(m);
    vmmem_vhost_free(v);
    fe_close(&a);
    fe_close(&b);
}

/*
 * SET_LOG_BASE during a migration: the back-end's writes mark the front-end's
 * log, through regions of the table and regions added or tables set later.
 */
static void log_check(const uint8_t *log, const unsigned *pages, size_t n, const char *when)
{
    uint8_t want[16] = {0};
    for (size_t i = 0; i < n; i++)
        want[pages[i] / 8] |= (uint8_t)(1u << (pages[i] % 8));
    if (memcmp(log, want, sizeof want) != 0) {
        fprintf(stdout, "\n    log after %s:", when);
        for (size_t i = 0; i < sizeof want; i++)
            fprintf(stdout, " %02x/%02x", log[i], want[i]);
        fprintf(stdout, " (got/want)\n");
        CU_FAIL("log bits differ");
    }
}

static void put8(vmmem_vhost *v, uint64_t gpa)
{
    vmmem_map *m = vmmem_vhost_snapshot(v);
    uint64_t x = 0x1122334455667788ull;
    VT_ASSERT_RC(vmmem_write_obj(m, gpa, &x, 8), 0);
    vmmem_map_unref(m);
}

static void test_log_base(void)
{
    struct fe a, b, lg;
    fe_open(&a, "log-a", K64, 0);
    fe_open(&b, "log-b", K64, 0);
    fe_open(&lg, "log", 4096, 0); /* the front-end's log; 16 bytes cover 512 KiB */
    vmmem_vhost *v = new_vhost(0);
    struct vmmem_vhost_region ra = vreg(a.fd, 0, K64, uaddr_of(a.p), 0);
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, &ra, 1), 0);
    VT_ASSERT_RC(vmmem_vhost_clear_log(v), -ENOENT);
    VT_ASSERT_RC(vmmem_vhost_set_log_base(NULL, lg.fd, 0, 4096), -EINVAL);
    VT_ASSERT_RC(vmmem_vhost_clear_log(NULL), -EINVAL);
    VT_ASSERT_RC(vmmem_vhost_set_log_base(v, lg.fd, 4096, 16), -ERANGE);
    VT_ASSERT_RC(vmmem_vhost_set_log_base(v, lg.fd, 0, 4096), 0);
    put8(v, 0x2ff8); /* page 2 */
    log_check(lg.p, (const unsigned[]){2}, 1, "a write to the table's region");

    /* ADD_MEM_REG in the middle of the migration: the new region logs too. */
    struct vmmem_vhost_region rb = vreg(b.fd, 0x40000, K64, B_UADDR, 0);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &rb), 0);
    put8(v, 0x4fffc - 4); /* the last 8 bytes of b: page 0x4f */
    put8(v, 0xfffc - 4);  /* the last 8 bytes of a: page 0xf */
    log_check(lg.p, (const unsigned[]){2, 0xf, 0x4f}, 3, "ADD_MEM_REG");

    /* A new SET_MEM_TABLE keeps logging. */
    memset(lg.p, 0, 16);
    struct vmmem_vhost_region t2[2] = {vreg(a.fd, 0x10000, K64, uaddr_of(a.p), 0),
                                       vreg(b.fd, 0x60000, K64, B_UADDR, 0)};
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, t2, 2), 0);
    put8(v, 0x10000);
    put8(v, 0x61000);
    log_check(lg.p, (const unsigned[]){0x10, 0x61}, 2, "SET_MEM_TABLE");
    /* The data went where the front-end sees it. */
    uint64_t x;
    memcpy(&x, a.p, 8);
    CU_ASSERT_EQUAL(x, 0x1122334455667788ull);

    /* Migration over: nothing marks any more. */
    VT_ASSERT_RC(vmmem_vhost_clear_log(v), 0);
    memset(lg.p, 0, 16);
    put8(v, 0x12000);
    struct vmmem_vhost_region rc2 = vreg(b.fd, 0x40000, K64, G_UADDR, 0);
    VT_ASSERT_RC(vmmem_vhost_add_region(v, &rc2), 0);
    put8(v, 0x40000);
    log_check(lg.p, NULL, 0, "clearing the log");
    vmmem_vhost_free(v);
    fe_close(&lg);
    fe_close(&b);
    fe_close(&a);
}

/*
 * A device thread inside a read section of the vhost space translates a ring
 * address while the front-end's SET_MEM_TABLE waits for that very section:
 * the translation must not wait for the table change (it used to deadlock).
 */
struct dl_writer {
    vmmem_vhost *v;
    const struct vmmem_vhost_region *t;
    atomic_bool done;
    int rc;
};

static void *dl_writer_main(void *arg)
{
    struct dl_writer *w = arg;
    w->rc = vmmem_vhost_set_mem_table(w->v, w->t, 1);
    atomic_store(&w->done, true);
    return NULL;
}

static void test_section_translate_during_set(void)
{
    struct fe a, b;
    fe_open(&a, "dl-a", K64, 0x11);
    fe_open(&b, "dl-b", K64, 0x22);
    vmmem_vhost *v = new_vhost(0);
    struct vmmem_vhost_region ra = vreg(a.fd, 0, K64, uaddr_of(a.p), 0);
    struct vmmem_vhost_region rb = vreg(b.fd, 0, K64, B_UADDR, 0);
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, &ra, 1), 0);
    struct vmmem_read_section sec;
    const vmmem_map *m = vmmem_space_read_begin(vmmem_vhost_space(v), &sec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct dl_writer w = {.v = v, .t = &rb, .rc = 1};
    atomic_init(&w.done, false);
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, dl_writer_main, &w) == 0);
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL); /* the writer is now waiting for this section */
    uint64_t gpa = 1, len = 16;
    VT_ASSERT_RC(translate(v, uaddr_of(a.p) + 0x100, &gpa, &len), 0); /* the old table */
    CU_ASSERT_EQUAL(gpa, 0x100);
    CU_ASSERT_FALSE(atomic_load(&w.done));
    uint8_t x = 0;
    VT_ASSERT_RC(vmmem_read_obj(m, 0x100, &x, 1), 0);
    CU_ASSERT_EQUAL(x, 0x11);
    vmmem_space_read_end(&sec);
    pthread_join(th, NULL);
    VT_ASSERT_RC(w.rc, 0);
    VT_ASSERT_RC(translate(v, B_UADDR + 0x100, &gpa, &len), 0); /* the new one */
    CU_ASSERT_EQUAL(gpa, 0x100);
    uint8_t y = 0x22;
    CU_ASSERT_TRUE(guest_has(v, 0x100, &y, 1));
    vmmem_vhost_free(v);
    fe_close(&b);
    fe_close(&a);
}

/*
 * A device thread inside a read section of the vhost space calls
 * set_mem_table / add_region / remove_region while the message thread is in
 * SET_MEM_TABLE, waiting for that very section: the device thread's call
 * must fail with -EDEADLK, as the space's own writers do, not wait for the
 * vhost lock the message thread holds (both would hang).  The main thread
 * waits for the device thread with a bound, so the bug fails the test
 * instead of hanging it (the stuck threads and the handle are then leaked).
 */
struct edl {
    vmmem_vhost *v;
    int op; /* 0 set_mem_table, 1 add_region, 2 remove_region */
    const struct vmmem_vhost_region *mine, *theirs;
    int dev_rc, msg_rc, dev_code_after;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool dev_done;
};

static void *edl_message_main(void *arg)
{
    struct edl *e = arg;
    e->msg_rc = vmmem_vhost_set_mem_table(e->v, e->theirs, 1);
    return NULL;
}

static void *edl_device_main(void *arg)
{
    struct edl *e = arg;
    vmmem_space *s = vmmem_vhost_space(e->v);
    struct vmmem_read_section sec;
    const vmmem_map *m0 = vmmem_space_read_begin(s, &sec);
    pthread_t msg;
    bool started = m0 != NULL && pthread_create(&msg, NULL, edl_message_main, e) == 0;
    if (started) {
        /* The message thread has published its map (and holds the vhost
         * lock) once a snapshot differs from m0; it then waits for us. */
        for (;;) {
            vmmem_map *now = vmmem_space_snapshot(s);
            bool moved = now != m0;
            vmmem_map_unref(now);
            if (moved)
                break;
            sched_yield();
        }
        if (e->op == 0)
            e->dev_rc = vmmem_vhost_set_mem_table(e->v, e->mine, 1);
        else if (e->op == 1)
            e->dev_rc = vmmem_vhost_add_region(e->v, e->mine);
        else
            e->dev_rc = vmmem_vhost_remove_region(e->v, e->mine);
        e->dev_code_after = vmmem_last_error()->code;
    }
    vmmem_space_read_end(&sec);
    if (started)
        pthread_join(msg, NULL);
    pthread_mutex_lock(&e->lock);
    e->dev_done = true;
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

static void test_writer_inside_section_edeadlk(void)
{
    static const char *const names[] = {"set_mem_table", "add_region", "remove_region"};
    for (int op = 0; op < 3; op++) {
        struct fe a, b, c;
        fe_open(&a, "edl-a", K64, 0x11);
        fe_open(&b, "edl-b", K64, 0x22);
        fe_open(&c, "edl-c", K64, 0x33);
        vmmem_vhost *v = new_vhost(0);
        struct vmmem_vhost_region ra = vreg(a.fd, 0, K64, uaddr_of(a.p), 0);
        struct vmmem_vhost_region rb = vreg(b.fd, 0, K64, B_UADDR, 0);
        struct vmmem_vhost_region rc = vreg(c.fd, 0x100000, K64, G_UADDR, 0);
        VT_ASSERT_RC(vmmem_vhost_set_mem_table(v, &ra, 1), 0);
        struct edl *e = calloc(1, sizeof *e); /* leaked if the threads hang */
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        e->v = v;
        e->op = op;
        e->theirs = &rb;
        e->mine = op == 2 ? &ra : &rc;
        e->dev_rc = e->msg_rc = 1;
        pthread_mutex_init(&e->lock, NULL);
        pthread_cond_init(&e->cond, NULL);
        pthread_t dev;
        CU_ASSERT_FATAL(pthread_create(&dev, NULL, edl_device_main, e) == 0);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 30; /* only the bug gets near this */
        pthread_mutex_lock(&e->lock);
        int w = 0;
        while (!e->dev_done && w == 0)
            w = pthread_cond_timedwait(&e->cond, &e->lock, &until);
        bool done = e->dev_done;
        pthread_mutex_unlock(&e->lock);
        if (!done) {
            fprintf(stdout, "\n    %s from inside a read section hung (deadlock)\n", names[op]);
            CU_FAIL("writer call inside a read section deadlocked");
            pthread_detach(dev);
            continue; /* v, e and the fds stay with the stuck threads */
        }
        pthread_join(dev, NULL);
        if (e->dev_rc != -EDEADLK)
            fprintf(stdout, "\n    %s: ", names[op]);
        VT_ASSERT_RC(e->dev_rc, -EDEADLK);
        VT_ASSERT_RC(e->dev_code_after, -EDEADLK);
        VT_ASSERT_RC(e->msg_rc, 0);
        /* The failed call changed nothing: the message thread's table. */
        CU_ASSERT_EQUAL(vmmem_vhost_num_regions(v), 1);
        uint64_t gpa = 1, len = 16;
        VT_ASSERT_RC(translate(v, B_UADDR + 0x10, &gpa, &len), 0);
        CU_ASSERT_EQUAL(gpa, 0x10);
        uint8_t y = 0x22;
        CU_ASSERT_TRUE(guest_has(v, 0x10, &y, 1));
        CU_ASSERT_TRUE(guest_hole(v, 0x100000));
        pthread_cond_destroy(&e->cond);
        pthread_mutex_destroy(&e->lock);
        free(e);
        vmmem_vhost_free(v);
        fe_close(&c);
        fe_close(&b);
        fe_close(&a);
    }
}

/* ---- 4. snapshots while the table changes -------------------------------- */

#define FIXED_GPA 0x0ull
#define HOT_GPA 0x100000ull

struct stress {
    vmmem_vhost *v;
    atomic_bool stop;
    atomic_long rounds, hot_ok, hot_gone, bad, translated;
    char bad_what[128];
};

static void stress_bad(struct stress *s, const char *what, long long val)
{
    if (atomic_fetch_add(&s->bad, 1) == 0)
        snprintf(s->bad_what, sizeof s->bad_what, "%s (%lld)", what, val);
}

static void *reader_main(void *arg)
{
    struct stress *s = arg;
    uint8_t buf[256];
    uint64_t seq = 0;
    while (!atomic_load(&s->stop)) {
        vmmem_map *m = vmmem_vhost_snapshot(s->v);
        if (m == NULL) {
            stress_bad(s, "NULL snapshot", 0);
            continue;
        }
        int64_t n = vmmem_read(m, FIXED_GPA, buf, sizeof buf);
        if (n != (int64_t)sizeof buf || !all_bytes(buf, sizeof buf, 0x5F))
            stress_bad(s, "fixed region read", n);
        seq++;
        n = vmmem_write(m, FIXED_GPA + 0x1000, &seq, sizeof seq);
        if (n != (int64_t)sizeof seq)
            stress_bad(s, "fixed region write", n);
        n = vmmem_read(m, HOT_GPA, buf, sizeof buf);
        if (n == (int64_t)sizeof buf) {
            if (all_bytes(buf, sizeof buf, 0xA1) || all_bytes(buf, sizeof buf, 0xB2))
                atomic_fetch_add(&s->hot_ok, 1);
            else
                stress_bad(s, "hot region contents", buf[0]);
        } else if (n == VMMEM_EINVALID_ADDRESS) {
            atomic_fetch_add(&s->hot_gone, 1);
        } else {
            stress_bad(s, "hot region read", n);
        }
        /* Write into the hot region away from the bytes checked above. */
        n = vmmem_write(m, HOT_GPA + 0x8000, &seq, sizeof seq);
        if (n != (int64_t)sizeof seq && n != VMMEM_EINVALID_ADDRESS)
            stress_bad(s, "hot region write", n);
        vmmem_map_unref(m);

        vmmem_gaddr_t g = 0;
        uint64_t len = 1 << 20;
        int rc = vmmem_vhost_uaddr_to_gpa(s->v, H_UADDR + 16, &g, &len);
        if (rc == 0) {
            if (g != HOT_GPA + 16 || len != K64 - 16)
                stress_bad(s, "hot translation", (long long)g);
            else
                atomic_fetch_add(&s->translated, 1);
        } else if (rc != VMMEM_EINVALID_ADDRESS) {
            stress_bad(s, "hot translation rc", rc);
        }
        atomic_fetch_add(&s->rounds, 1);
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_concurrent_add_remove(void)
{
    int fds0 = count_fds();
    struct fe f, x, y;
    fe_open(&f, "st-fixed", K64, 0x5F);
    memset(f.p + 0x1000, 0, 8);
    fe_open(&x, "st-x", K64, 0xA1);
    fe_open(&y, "st-y", K64, 0xB2);
    struct stress s;
    memset(&s, 0, sizeof s);
    atomic_init(&s.stop, false);
    atomic_init(&s.rounds, 0);
    atomic_init(&s.hot_ok, 0);
    atomic_init(&s.hot_gone, 0);
    atomic_init(&s.bad, 0);
    atomic_init(&s.translated, 0);
    s.v = new_vhost(0);
    struct vmmem_vhost_region fixed = vreg(f.fd, FIXED_GPA, K64, uaddr_of(f.p), 0);
    struct vmmem_vhost_region hot[2] = {
        vreg(x.fd, HOT_GPA, K64, H_UADDR, 0),
        vreg(y.fd, HOT_GPA, K64, H_UADDR, 0),
    };
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(s.v, &fixed, 1), 0);

    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, reader_main, &s) == 0);
    long changes = 0, errors = 0;
    int first_err = 0;
    double end = now_s() + 0.5;
    for (unsigned i = 0; now_s() < end; i++) {
        const struct vmmem_vhost_region *h = &hot[i & 1];
        int rc;
        if (i % 16 == 15) {
            /* Now and then the whole table at once. */
            struct vmmem_vhost_region t[2] = {fixed, *h};
            rc = vmmem_vhost_set_mem_table(s.v, t, 2);
        } else {
            rc = vmmem_vhost_add_region(s.v, h);
        }
        if (rc == 0)
            rc = vmmem_vhost_remove_region(s.v, h);
        if (rc != 0) {
            if (errors++ == 0)
                first_err = rc;
        } else {
            changes++;
        }
    }
    atomic_store(&s.stop, true);
    pthread_join(th, NULL);

    long rounds = atomic_load(&s.rounds), bad = atomic_load(&s.bad);
    fprintf(stdout,
            "\n    %ld add/remove pairs; reader: %ld rounds, hot region read %ld, gone %ld, "
            "translated %ld, bad %ld%s%s\n",
            changes, rounds, (long)atomic_load(&s.hot_ok), (long)atomic_load(&s.hot_gone),
            (long)atomic_load(&s.translated), bad, bad ? ": first " : "",
            bad ? s.bad_what : "");
    if (errors)
        fprintf(stdout, "    writer: %ld errors, first %s: %s\n", errors,
                vmmem_err_name(first_err), vmmem_last_message());
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(changes > 0);
    CU_ASSERT(rounds > 0);
    /* The reader's writes reached the front-end's fixed region. */
    uint64_t last;
    memcpy(&last, f.p + 0x1000, sizeof last);
    CU_ASSERT(last > 0);
    CU_ASSERT_EQUAL(vmmem_vhost_num_regions(s.v), 1);
    CU_ASSERT(guest_hole(s.v, HOT_GPA));
    vmmem_vhost_free(s.v);
    fe_close(&f);
    fe_close(&x);
    fe_close(&y);
    CU_ASSERT_EQUAL(count_fds(), fds0);
}

static int suite_init(void)
{
    /* Load the plugins now so their own fds/mappings precede any count. */
    vmmem_registry *reg = vmmem_default_registry();
    return reg != NULL && vmmem_registry_find(reg, "file") != NULL ? 0 : -1;
}

static const struct vt_test vhost_tests[] = {
    {"memfd table: data both ways, uaddr translation, mmap_offset", test_table_both_ways},
    {"the caller keeps (and may close) its fd", test_caller_keeps_fd},
    {"one memfd, several regions at offsets", test_one_fd_many_regions},
    {"touching ranges; the top of the address spaces", test_touching_and_top},
    {"SET_MEM_TABLE replaces; old snapshot keeps the old table", test_set_replaces},
    {"invalid regions: codes, nothing mapped, memory unchanged", test_invalid_single},
    {"invalid tables: overlaps, limit, provider failure", test_invalid_overlap_and_limit},
    {"max_regions=2", test_region_limit},
    {"default limit 509", test_default_limit},
    {"ADD_MEM_REG / REM_MEM_REG, n=0 empties", test_add_remove},
    {"map options apply to published maps", test_map_options},
    {"SET_LOG_BASE: table, ADD_MEM_REG, SET_MEM_TABLE all log", test_log_base},
    {"translating inside a read section while SET_MEM_TABLE waits", test_section_translate_during_set},
    {"set_mem_table/add/remove inside a read section: -EDEADLK, no hang",
     test_writer_inside_section_edeadlk},
    {"reader snapshots while ADD/REM run (0.5 s)", test_concurrent_add_remove},
    {NULL, NULL},
};

static const struct vt_suite vhost_suite = {"vhost-user memory tables", suite_init, NULL,
                                            vhost_tests};

int main(void)
{
    const struct vt_suite *const suites[] = {&vhost_suite, NULL};
    return vt_main(suites);
}

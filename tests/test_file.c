/*
 * The "file" provider (plugins/file): guest memory backed by a file on disk,
 * a file in /dev/shm, a memfd it makes (memfd=) and one the caller passes
 * (fd=).  Data must go both ways between guest memory and the file; private
 * mappings must not write through; offset=, create, seal, prot=r and the
 * documented errors; and nothing may leak (fds and mappings are counted in
 * /proc/self before and after many build/destroy cycles and failures).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

#define SEALS_ALL (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

/* ---- helpers ---------------------------------------------------------- */

/* mkstemp in dir, sized to size; returns the (O_RDWR) fd, path in path. */
static int make_file(const char *dir, size_t size, char *path, size_t n)
{
    snprintf(path, n, "%s/vmmem-file-test-XXXXXX", dir);
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(ftruncate(fd, (off_t)size) == 0);
    return fd;
}

static void drop_file(int fd, const char *path)
{
    close(fd);
    CU_ASSERT_EQUAL(unlink(path), 0);
}

/* vmmem_map_from_config with a printf-formatted config; *m is set on 0. */
static int try_map(vmmem_map **m, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int try_map(vmmem_map **m, const char *fmt, ...)
{
    char config[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(config, sizeof config, fmt, ap);
    va_end(ap);
    *m = NULL;
    return vmmem_map_from_config(m, NULL, config, NULL);
}

/* The same, failing the test unless it succeeds. */
static vmmem_map *map_ok(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static vmmem_map *map_ok(const char *fmt, ...)
{
    char config[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(config, sizeof config, fmt, ap);
    va_end(ap);
    return vt_map(config);
}

static struct vmmem_region_info info0(const vmmem_map *m)
{
    struct vmmem_region_info info;
    memset(&info, 0, sizeof info);
    CU_ASSERT_FATAL(vmmem_map_num_regions(m) >= 1);
    vmmem_region_get_info(vmmem_map_region(m, 0), &info);
    return info;
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
    const char *msg = vmmem_last_error()->message;
    if (strstr(msg, needle) != NULL)
        return true;
    fprintf(stdout, "\n    message \"%s\" lacks \"%s\"\n", msg, needle);
    return false;
}

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

/* Lines of /proc/self/maps: all of them, or only file-backed ones (those
 * with a path; every mapping this provider makes is file-backed). */
static int count_maps(bool files_only)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return -1;
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL)
        if (!files_only || strchr(line, '/') != NULL)
            n++;
    fclose(f);
    return n;
}

/*
 * Both directions through a file-backed region of at least 8K whose file
 * holds guest byte 0 at file offset off: guest writes (first byte, an
 * 8-byte store, the last byte) are in the file, file writes are in guest
 * memory.
 */
static void check_both_ways(const vmmem_map *m, int fd, off_t off)
{
    static const char from_guest[] = "written through guest memory";
    static const char from_file[] = "pwritten to the file";
    char buf[64];

    VT_ASSERT_RC(vmmem_write_slice(m, 0, from_guest, sizeof from_guest), 0);
    CU_ASSERT_EQUAL(pread(fd, buf, sizeof from_guest, off), (ssize_t)sizeof from_guest);
    CU_ASSERT_EQUAL(memcmp(buf, from_guest, sizeof from_guest), 0);

    VT_ASSERT_RC(vmmem_store(m, 0x1008, 8, 0x1122334455667788ull, VMMEM_SEQ_CST), 0);
    uint8_t le[8];
    CU_ASSERT_EQUAL(pread(fd, le, 8, off + 0x1008), 8);
    CU_ASSERT_EQUAL(le[0], 0x88);
    CU_ASSERT_EQUAL(le[7], 0x11);

    uint8_t last = 0xa5, got = 0;
    VT_ASSERT_RC(vmmem_write_slice(m, 0x1fff, &last, 1), 0);
    CU_ASSERT_EQUAL(pread(fd, &got, 1, off + 0x1fff), 1);
    CU_ASSERT_EQUAL(got, 0xa5);

    CU_ASSERT_EQUAL(pwrite(fd, from_file, sizeof from_file, off + 0x1800),
                    (ssize_t)sizeof from_file);
    memset(buf, 0, sizeof buf);
    VT_ASSERT_RC(vmmem_read_slice(m, 0x1800, buf, sizeof from_file), 0);
    CU_ASSERT_EQUAL(memcmp(buf, from_file, sizeof from_file), 0);
}

/* ---- backing kinds ------------------------------------------------------ */

static void test_disk_file(void)
{
    char path[128];
    int fd = make_file("/tmp", 8192, path, sizeof path);
    vmmem_map *m = map_ok("file:addr=0,size=8K,path=%s", path);
    if (m != NULL) {
        check_both_ways(m, fd, 0);
        CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 0x1fff);
        CU_ASSERT_FALSE(vmmem_map_check_address(m, 0x2000));
        struct vmmem_region_info info = info0(m);
        CU_ASSERT_STRING_EQUAL(info.provider, "file");
        CU_ASSERT_PTR_NOT_NULL_FATAL(info.file);
        CU_ASSERT_STRING_EQUAL(info.file, path);
        CU_ASSERT(info.fd > 2 && info.fd != fd);
        CU_ASSERT(same_file(info.fd, fd));
        CU_ASSERT_EQUAL(info.file_offset, 0);
        CU_ASSERT_EQUAL(info.hugetlbfs, 0);
        CU_ASSERT_EQUAL(info.prot, VMMEM_PROT_RW);
        CU_ASSERT_PTR_NOT_NULL(info.host);
        /* The provider's fd is O_CLOEXEC: it must not leak into children. */
        CU_ASSERT_EQUAL(fcntl(info.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        vmmem_map_unref(m);
    }
    drop_file(fd, path);
}

static void test_dev_shm(void)
{
    char path[128];
    int fd = make_file("/dev/shm", 8192, path, sizeof path);
    vmmem_map *m = map_ok("file:addr=0x100000,size=8K,path=%s,shared", path);
    if (m != NULL) {
        /* The region starts at guest 1M: check_both_ways works on guest 0. */
        static const char hello[] = "shm hello";
        char buf[sizeof hello];
        VT_ASSERT_RC(vmmem_write_slice(m, 0x100000 + 0x123, hello, sizeof hello), 0);
        CU_ASSERT_EQUAL(pread(fd, buf, sizeof hello, 0x123), (ssize_t)sizeof hello);
        CU_ASSERT_EQUAL(memcmp(buf, hello, sizeof hello), 0);
        CU_ASSERT_EQUAL(pwrite(fd, "Z", 1, 0x1fff), 1);
        uint64_t v = 0;
        VT_ASSERT_RC(vmmem_load(m, 0x101fff, 1, &v, VMMEM_ACQUIRE), 0);
        CU_ASSERT_EQUAL(v, 'Z');
        struct vmmem_region_info info = info0(m);
        CU_ASSERT_STRING_EQUAL(info.file, path);
        CU_ASSERT_EQUAL(info.hugetlbfs, 0);
        CU_ASSERT(same_file(info.fd, fd));
        vmmem_map_unref(m);
    }
    drop_file(fd, path);
}

static void test_memfd_named(void)
{
    vmmem_map *m = map_ok("file:addr=0,size=8K,memfd=guest-ram");
    if (m == NULL)
        return;
    struct vmmem_region_info info = info0(m);
    CU_ASSERT_STRING_EQUAL(info.file, "memfd:guest-ram");
    CU_ASSERT(info.fd > 2);
    CU_ASSERT_EQUAL(info.file_offset, 0);
    CU_ASSERT_EQUAL(info.hugetlbfs, 0);
    struct stat sb;
    CU_ASSERT_EQUAL_FATAL(fstat(info.fd, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 8192);
    char link[64], target[128];
    snprintf(link, sizeof link, "/proc/self/fd/%d", info.fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    CU_ASSERT_FATAL(n > 0);
    target[n] = '\0';
    CU_ASSERT_EQUAL(strncmp(target, "/memfd:guest-ram", 16), 0);
    /* Not sealed unless asked: it may still grow (never shrink it while mapped). */
    check_both_ways(m, info.fd, 0);
    CU_ASSERT_EQUAL(ftruncate(info.fd, 16384), 0);
    vmmem_map_unref(m);
    errno = 0;
    CU_ASSERT_EQUAL(fcntl(info.fd, F_GETFD), -1); /* closed with the region */
    CU_ASSERT_EQUAL(errno, EBADF);
}

static void test_fd_inherited(void)
{
    int tfd = memfd_create("caller-owned", MFD_CLOEXEC);
    CU_ASSERT_FATAL(tfd >= 0);
    CU_ASSERT_FATAL(ftruncate(tfd, 8192) == 0);
    vmmem_map *m = map_ok("file:addr=0,size=8K,fd=%d", tfd);
    if (m == NULL) {
        close(tfd);
        return;
    }
    struct vmmem_region_info info = info0(m);
    char name[32];
    snprintf(name, sizeof name, "fd:%d", tfd);
    CU_ASSERT_STRING_EQUAL(info.file, name);
    CU_ASSERT(info.fd > 2 && info.fd != tfd); /* a dup: the caller keeps tfd */
    CU_ASSERT(same_file(info.fd, tfd));
    check_both_ways(m, tfd, 0);
    /* The caller may close its descriptor at once; the region keeps working. */
    CU_ASSERT_EQUAL(close(tfd), 0);
    char buf[8];
    VT_ASSERT_RC(vmmem_read_slice(m, 0, buf, 8), 0);
    CU_ASSERT_EQUAL(memcmp(buf, "written ", 8), 0);
    CU_ASSERT_EQUAL(pread(info.fd, buf, 8, 0), 8);
    CU_ASSERT_EQUAL(memcmp(buf, "written ", 8), 0);
    vmmem_map_unref(m);
    errno = 0;
    CU_ASSERT_EQUAL(fcntl(info.fd, F_GETFD), -1);
    CU_ASSERT_EQUAL(errno, EBADF);
}

/* The caller's descriptor stays open and usable after the region is gone. */
static void test_fd_caller_keeps_ownership(void)
{
    int tfd = memfd_create("kept", MFD_CLOEXEC);
    CU_ASSERT_FATAL(tfd >= 0);
    CU_ASSERT_FATAL(ftruncate(tfd, 4096) == 0);
    vmmem_map *m = map_ok("file:addr=0,size=4K,fd=%d", tfd);
    if (m != NULL) {
        VT_ASSERT_RC(vmmem_write_slice(m, 4095, "k", 1), 0);
        vmmem_map_unref(m);
    }
    CU_ASSERT_EQUAL(fcntl(tfd, F_GETFD), FD_CLOEXEC);
    char c = 0;
    CU_ASSERT_EQUAL(pread(tfd, &c, 1, 4095), 1);
    CU_ASSERT_EQUAL(c, 'k');
    close(tfd);
}

/* Two file regions side by side: an access across the seam lands in both files. */
static void test_two_regions(void)
{
    vmmem_map *m = map_ok("file:addr=0,size=8K,memfd=lo;file:addr=8K,size=8K,memfd=hi");
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 2);
    struct vmmem_region_info lo = info0(m), hi;
    vmmem_region_get_info(vmmem_map_region(m, 1), &hi);
    CU_ASSERT_STRING_EQUAL(lo.file, "memfd:lo");
    CU_ASSERT_STRING_EQUAL(hi.file, "memfd:hi");
    CU_ASSERT(lo.fd != hi.fd);
    VT_ASSERT_RC(vmmem_write_slice(m, 0x2000 - 4, "ABCDEFGH", 8), 0);
    char a[4], b[4];
    CU_ASSERT_EQUAL(pread(lo.fd, a, 4, 0x2000 - 4), 4);
    CU_ASSERT_EQUAL(pread(hi.fd, b, 4, 0), 4);
    CU_ASSERT_EQUAL(memcmp(a, "ABCD", 4), 0);
    CU_ASSERT_EQUAL(memcmp(b, "EFGH", 4), 0);
    vmmem_map_unref(m);
}

/* ---- mapping modes ------------------------------------------------------ */

static void test_private(void)
{
    char path[128];
    int fd = make_file("/tmp", 8192, path, sizeof path);
    uint8_t ones[8192];
    memset(ones, 0x11, sizeof ones);
    CU_ASSERT_EQUAL_FATAL(pwrite(fd, ones, sizeof ones, 0), (ssize_t)sizeof ones);
    vmmem_map *m = map_ok("file:addr=0,size=8K,path=%s,private", path);
    if (m != NULL) {
        uint8_t v = 0;
        VT_ASSERT_RC(vmmem_read_slice(m, 0x1fff, &v, 1), 0); /* file data is seen */
        CU_ASSERT_EQUAL(v, 0x11);
        uint8_t twos[16];
        memset(twos, 0x22, sizeof twos);
        VT_ASSERT_RC(vmmem_write_slice(m, 0x100, twos, sizeof twos), 0);
        uint8_t buf[16];
        VT_ASSERT_RC(vmmem_read_slice(m, 0x100, buf, sizeof buf), 0);
        CU_ASSERT_EQUAL(memcmp(buf, twos, sizeof buf), 0); /* the guest sees its write */
        CU_ASSERT_EQUAL(pread(fd, buf, sizeof buf, 0x100), (ssize_t)sizeof buf);
        CU_ASSERT_EQUAL(memcmp(buf, ones, sizeof buf), 0); /* the file does not */
        CU_ASSERT_EQUAL(info0(m).prot, VMMEM_PROT_RW);
        vmmem_map_unref(m);
    }
    /* After the region is gone the file still holds only its own data. */
    uint8_t all[8192];
    CU_ASSERT_EQUAL(pread(fd, all, sizeof all, 0), (ssize_t)sizeof all);
    CU_ASSERT_EQUAL(memcmp(all, ones, sizeof all), 0);
    drop_file(fd, path);
}

static void test_offset(void)
{
    char path[128];
    int fd = make_file("/tmp", 16384, path, sizeof path);
    CU_ASSERT_EQUAL_FATAL(pwrite(fd, "at file offset 4K", 17, 4096), 17);
    vmmem_map *m = map_ok("file:addr=0x10000,size=8K,path=%s,offset=4K", path);
    if (m != NULL) {
        char buf[17];
        VT_ASSERT_RC(vmmem_read_slice(m, 0x10000, buf, sizeof buf), 0);
        CU_ASSERT_EQUAL(memcmp(buf, "at file offset 4K", 17), 0);
        uint8_t last = 0x5c, got = 0;
        VT_ASSERT_RC(vmmem_write_slice(m, 0x10000 + 0x1fff, &last, 1), 0);
        CU_ASSERT_EQUAL(pread(fd, &got, 1, 4096 + 0x1fff), 1);
        CU_ASSERT_EQUAL(got, 0x5c);
        struct vmmem_region_info info = info0(m);
        CU_ASSERT_EQUAL(info.file_offset, 4096);
        CU_ASSERT_EQUAL(info.start, 0x10000);
        vmmem_map_unref(m);
    }
    /* The region may end exactly at the end of the file (hex offset too). */
    m = map_ok("file:addr=0,size=8K,path=%s,offset=0x2000", path);
    if (m != NULL) {
        check_both_ways(m, fd, 0x2000);
        CU_ASSERT_EQUAL(info0(m).file_offset, 0x2000);
        vmmem_map_unref(m);
    }
    drop_file(fd, path);
}

static void test_offset_unaligned(void)
{
    char path[128];
    int fd = make_file("/tmp", 16384, path, sizeof path);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=4K,path=%s,offset=100", path), VMMEM_EBAD_VALUE);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT(msg_has("offset='100'"));
    CU_ASSERT(msg_has("page size 4096"));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=4K,path=%s,offset=0x800", path),
                 VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("offset='0x800'"));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=4K,path=%s,offset=4097", path), VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("offset='4097'"));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=4K,path=%s,offset=4k2", path), VMMEM_EBAD_NUMBER);
    CU_ASSERT(msg_has("offset='4k2'"));
    /* offset + size must stay a valid off_t: INT64_MAX - 0x7fffffffffff0000 = 0xffff. */
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=0x10000,path=%s,offset=0x7fffffffffff0000", path),
                 VMMEM_EOVERFLOW);
    CU_ASSERT(msg_has("0x7fffffffffff0000"));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=0xffff,path=%s,offset=0x7fffffffffff0000", path),
                 -ERANGE);
    CU_ASSERT_PTR_NULL(m);
    drop_file(fd, path);
}

static void test_short_file(void)
{
    char path[128];
    int fd = make_file("/tmp", 4096, path, sizeof path);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s", path), -ERANGE);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, -ERANGE);
    CU_ASSERT(msg_has(path));
    CU_ASSERT(msg_has("is 4096 bytes"));
    CU_ASSERT(msg_has("8192 bytes"));
    /* One byte short is short; exactly the size is fine. */
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=4097,path=%s", path), -ERANGE);
    CU_ASSERT(msg_has("4097 bytes"));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=4096,path=%s", path), 0);
    vmmem_map_unref(m);
    /* With an offset the need is offset + size. */
    CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 12288), 0);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,offset=8K", path),
                 -ERANGE);
    CU_ASSERT(msg_has("is 12288 bytes"));
    CU_ASSERT(msg_has("16384 bytes"));
    /* A region that is not a whole number of pages, ending at the file's end. */
    CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 5000), 0);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=5000,path=%s", path), 0);
    if (m != NULL) {
        CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 4999);
        CU_ASSERT_EQUAL(pwrite(fd, "e", 1, 4999), 1);
        char c = 0;
        VT_ASSERT_RC(vmmem_read_slice(m, 4999, &c, 1), 0);
        CU_ASSERT_EQUAL(c, 'e');
        vmmem_map_unref(m);
    }
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=5001,path=%s", path), -ERANGE);
    CU_ASSERT(msg_has("is 5000 bytes"));
    /* An empty file (what a device's size reads as) and a memfd passed as fd=. */
    CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 0), 0);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=4K,path=%s", path), -ERANGE);
    CU_ASSERT(msg_has("is 0 bytes"));
    CU_ASSERT(msg_has("nosizecheck"));
    int mfd = memfd_create("short", MFD_CLOEXEC);
    CU_ASSERT_FATAL(mfd >= 0);
    CU_ASSERT_FATAL(ftruncate(mfd, 4096) == 0);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=%d", mfd), -ERANGE);
    char name[32];
    snprintf(name, sizeof name, "'fd:%d'", mfd);
    CU_ASSERT(msg_has(name));
    close(mfd);
    drop_file(fd, path);
}

/* nosizecheck maps what the size check would refuse (only the first page,
 * which the file holds, is touched). */
static void test_nosizecheck(void)
{
    char path[128];
    int fd = make_file("/tmp", 4096, path, sizeof path);
    CU_ASSERT_EQUAL_FATAL(pwrite(fd, "dev", 3, 0), 3);
    vmmem_map *m = map_ok("file:addr=0,size=8K,path=%s,nosizecheck", path);
    if (m != NULL) {
        char buf[3];
        VT_ASSERT_RC(vmmem_read_slice(m, 0, buf, 3), 0);
        CU_ASSERT_EQUAL(memcmp(buf, "dev", 3), 0);
        CU_ASSERT_EQUAL(vmmem_map_last_addr(m), 0x1fff);
        vmmem_map_unref(m);
    }
    drop_file(fd, path);
}

static void test_create(void)
{
    char dir[] = "/tmp/vmmem-file-create-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/guest.mem", dir);
    vmmem_map *m = NULL;
    /* Without create a missing file is -ENOENT naming the file. */
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s", path), -ENOENT);
    CU_ASSERT(msg_has(path));
    CU_ASSERT(msg_has("create"));
    m = map_ok("file:addr=0,size=8K,path=%s,create,offset=4K", path);
    struct stat sb;
    CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 12288);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
    if (m != NULL) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        CU_ASSERT_FATAL(fd >= 0);
        check_both_ways(m, fd, 4096);
        close(fd);
        vmmem_map_unref(m);
    }
    /* The file outlives the region. */
    CU_ASSERT_EQUAL(stat(path, &sb), 0);
    /* create on an existing, larger file neither shrinks nor recreates it. */
    CU_ASSERT_EQUAL(truncate(path, 20480), 0);
    m = map_ok("file:addr=0,size=4K,path=%s,create", path);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 20480);
    /* ... and grows a shorter one. */
    m = map_ok("file:addr=0,size=24K,path=%s,create", path);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 24576);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

/* A map that fails after create made the file removes it again. */
static void test_create_failure_removes_file(void)
{
    char dir[] = "/tmp/vmmem-file-create-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/guest.mem", dir);
    /* Growing past RLIMIT_FSIZE fails with EFBIG (SIGXFSZ ignored). */
    struct rlimit old, lim;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 4096;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
    vmmem_map *m = NULL;
    int rc = try_map(&m, "file:addr=0,size=8K,path=%s,create", path);
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    VT_ASSERT_RC(rc, -EFBIG);
    CU_ASSERT(msg_has(path));
    CU_ASSERT_PTR_NULL(m);
    struct stat sb;
    errno = 0;
    CU_ASSERT_EQUAL(stat(path, &sb), -1);
    CU_ASSERT_EQUAL(errno, ENOENT);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

static void test_read_only(void)
{
    char path[128];
    int fd = make_file("/tmp", 8192, path, sizeof path);
    CU_ASSERT_EQUAL_FATAL(pwrite(fd, "read me", 7, 0x20), 7);
    CU_ASSERT_EQUAL_FATAL(fchmod(fd, 0444), 0);
    vmmem_map *m = map_ok("file:addr=0,size=8K,path=%s,prot=r", path);
    if (m != NULL) {
        char buf[7];
        VT_ASSERT_RC(vmmem_read_slice(m, 0x20, buf, 7), 0);
        CU_ASSERT_EQUAL(memcmp(buf, "read me", 7), 0);
        CU_ASSERT_EQUAL(info0(m).prot, VMMEM_PROT_READ);
        VT_ASSERT_RC(vmmem_write_slice(m, 0x20, "X", 1), VMMEM_EREAD_ONLY);
        VT_ASSERT_RC(vmmem_write(m, 0x1fff, "X", 1), VMMEM_EREAD_ONLY);
        VT_ASSERT_RC(vmmem_store(m, 0x28, 4, 1, VMMEM_RELAXED), VMMEM_EREAD_ONLY);
        VT_ASSERT_RC(vmmem_write_obj(m, 0, buf, 7), VMMEM_EREAD_ONLY);
        /* Still seen: file writes (through the caller's writable fd). */
        CU_ASSERT_EQUAL(pwrite(fd, "R", 1, 0x1fff), 1);
        char c = 0;
        VT_ASSERT_RC(vmmem_read_slice(m, 0x1fff, &c, 1), 0);
        CU_ASSERT_EQUAL(c, 'R');
        vmmem_map_unref(m);
    }
    /* A read-only file and a shared writable mapping: a clear error.  Root
     * opens 0444 files read-write anyway, so the fd= form is the one that
     * always holds. */
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(ro >= 0);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=%d", ro), -EACCES);
    CU_ASSERT(msg_has("read-only"));
    CU_ASSERT(msg_has("prot=r"));
    if (geteuid() != 0) {
        VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s", path), -EACCES);
        CU_ASSERT(msg_has(path));
    }
    /* prot=r through the read-only fd is fine, and so is private rw. */
    m = map_ok("file:addr=0,size=8K,fd=%d,prot=r", ro);
    vmmem_map_unref(m);
    m = map_ok("file:addr=0,size=8K,fd=%d,private", ro);
    if (m != NULL) {
        VT_ASSERT_RC(vmmem_write_slice(m, 0x20, "PRIVATE", 7), 0);
        char buf[7];
        CU_ASSERT_EQUAL(pread(fd, buf, 7, 0x20), 7);
        CU_ASSERT_EQUAL(memcmp(buf, "read me", 7), 0);
        vmmem_map_unref(m);
    }
    close(ro);
    /* A write-only descriptor cannot be mapped at all. */
    int wo = open(path, O_WRONLY | O_CLOEXEC);
    if (wo >= 0) { /* 0444: only root gets here */
        VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=%d,prot=r", wo), -EACCES);
        CU_ASSERT(msg_has("write-only"));
        close(wo);
    }
    drop_file(fd, path);
}

/* prot=r on a perfectly writable file still maps read-only. */
static void test_prot_r_writable_file(void)
{
    char path[128];
    int fd = make_file("/dev/shm", 4096, path, sizeof path);
    vmmem_map *m = map_ok("file:addr=0,size=4K,path=%s,prot=r", path);
    if (m != NULL) {
        CU_ASSERT_EQUAL(info0(m).prot, VMMEM_PROT_READ);
        VT_ASSERT_RC(vmmem_write_slice(m, 0, "x", 1), VMMEM_EREAD_ONLY);
        char c = 1;
        CU_ASSERT_EQUAL(pread(fd, &c, 1, 0), 1);
        CU_ASSERT_EQUAL(c, 0);
        vmmem_map_unref(m);
    }
    drop_file(fd, path);
}

static void test_seal(void)
{
    vmmem_map *m = map_ok("file:addr=0,size=8K,memfd=sealed,seal");
    if (m == NULL)
        return;
    struct vmmem_region_info info = info0(m);
    CU_ASSERT_STRING_EQUAL(info.file, "memfd:sealed");
    CU_ASSERT_EQUAL(fcntl(info.fd, F_GET_SEALS), SEALS_ALL);
    errno = 0;
    CU_ASSERT_EQUAL(ftruncate(info.fd, 16384), -1);
    CU_ASSERT_EQUAL(errno, EPERM);
    errno = 0;
    CU_ASSERT_EQUAL(ftruncate(info.fd, 4096), -1);
    CU_ASSERT_EQUAL(errno, EPERM);
    errno = 0;
    CU_ASSERT_EQUAL(fcntl(info.fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    CU_ASSERT_EQUAL(errno, EPERM);
    struct stat sb;
    CU_ASSERT_EQUAL(fstat(info.fd, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 8192);
    /* Sealed to its size, not against writes: the guest still writes. */
    check_both_ways(m, info.fd, 0);
    vmmem_map_unref(m);
    /* With an offset the memfd is sized (and sealed) to offset + size. */
    m = map_ok("file:addr=0,size=4K,memfd=sealed2,seal,offset=8K");
    if (m != NULL) {
        info = info0(m);
        CU_ASSERT_EQUAL(fstat(info.fd, &sb), 0);
        CU_ASSERT_EQUAL(sb.st_size, 12288);
        CU_ASSERT_EQUAL(info.file_offset, 8192);
        vmmem_map_unref(m);
    }
    /* Unsealed memfds come with F_SEAL_SEAL (no MFD_ALLOW_SEALING). */
    m = map_ok("file:addr=0,size=4K,memfd=plain");
    if (m != NULL) {
        CU_ASSERT_EQUAL(fcntl(info0(m).fd, F_GET_SEALS), F_SEAL_SEAL);
        vmmem_map_unref(m);
    }
}

/* ---- option errors ------------------------------------------------------ */

static void test_option_errors(void)
{
    char path[128];
    int fd = make_file("/tmp", 8192, path, sizeof path);
    vmmem_map *m = NULL;
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K"), VMMEM_EMISSING_KEY);
    CU_ASSERT(msg_has("path=, fd= or memfd="));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,shared,prot=rw"), VMMEM_EMISSING_KEY);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,memfd=x", path), VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("exclude each other"));
    CU_ASSERT(msg_has("memfd='x' excludes path="));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,fd=%d", path, fd), VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("excludes path="));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=%d,memfd=x", fd), VMMEM_EBAD_VALUE);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=abc"), VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("fd='abc'"));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=-1"), VMMEM_EBAD_VALUE);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=3x"), VMMEM_EBAD_VALUE);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=99999999999"), VMMEM_EBAD_VALUE);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,fd=1048575"), -EBADF);
    CU_ASSERT(msg_has("fd=1048575"));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,shared,private", path),
                 VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("'private' excludes 'shared'"));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,prot=w", path), VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("prot='w'"));
    /* the column of the value, and one location format */
    char want[256];
    snprintf(want, sizeof want, "file: prot='w' is not 'r' or 'rw' (region 0, column %zu)",
             strlen("file:addr=0,size=8K,path=,prot=") + strlen(path) + 1);
    CU_ASSERT_STRING_EQUAL(vmmem_last_message(), want);
    CU_ASSERT_EQUAL(vmmem_last_error()->column,
                    (int)(strlen("file:addr=0,size=8K,path=,prot=") + strlen(path) + 1));
    VT_ASSERT_RC(try_map(&m, "mmap:addr=0,size=4K;file:addr=4K,size=8K,fd=abc"), VMMEM_EBAD_VALUE);
    CU_ASSERT_STRING_EQUAL(vmmem_last_message(),
                           "file: fd='abc' is not a descriptor number (region 1, column 45)");
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,offset=4k2,path=%s", path), VMMEM_EBAD_NUMBER);
    CU_ASSERT_EQUAL(vmmem_last_error()->column, 28);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,memfd=x,create"), VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("'create' needs path="));
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,create,prot=r", path),
                 VMMEM_EBAD_VALUE);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,seal", path), VMMEM_EBAD_VALUE);
    CU_ASSERT(msg_has("'seal' needs memfd="));
    /* Keys the core checks against the provider's option table. */
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,bogus=1", path), VMMEM_EUNKNOWN_KEY);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=%s,create=yes", path), VMMEM_EBAD_VALUE);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path"), VMMEM_EBAD_VALUE);
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=/nonexistent/vmmem/x"), -ENOENT);
    CU_ASSERT(msg_has("/nonexistent/vmmem/x"));
    /* a provider's own message (set_error) gets the region's location too */
    VT_ASSERT_RC(try_map(&m, "mmap:addr=0,size=4K;file:addr=4K,size=8K,path=/nonexistent/vmmem/x"),
                 -ENOENT);
    const char *msg = vmmem_last_message();
    const char *tail = " (region 1, column 21)";
    CU_ASSERT(strlen(msg) > strlen(tail) &&
              strcmp(msg + strlen(msg) - strlen(tail), tail) == 0);
    CU_ASSERT_EQUAL(vmmem_last_error()->column, 21);
    /* A directory opens read-only but is no file to map. */
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=8K,path=/tmp,prot=r"), -EISDIR);
    CU_ASSERT(msg_has("'/tmp' is a directory"));
    /* A character device's size reads as 0: refused unless nosizecheck. */
    VT_ASSERT_RC(try_map(&m, "file:addr=0,size=4K,path=/dev/zero,prot=r"), -ERANGE);
    CU_ASSERT(msg_has("'/dev/zero' is 0 bytes"));
    m = map_ok("file:addr=0,size=4K,path=/dev/zero,prot=r,nosizecheck");
    if (m != NULL) {
        uint64_t v = 1;
        VT_ASSERT_RC(vmmem_load(m, 0xff8, 8, &v, VMMEM_RELAXED), 0);
        CU_ASSERT_EQUAL(v, 0);
        vmmem_map_unref(m);
        m = NULL;
    }
    CU_ASSERT_PTR_NULL(m);
    drop_file(fd, path);
}

/* ---- leaks -------------------------------------------------------------- */

static void cycle_ok(const char *path, int mfd)
{
    vmmem_map *m = NULL;
    int rc = try_map(&m,
                     "file:addr=0,size=8K,path=%s;file:addr=8K,size=8K,memfd=leak,seal;"
                     "file:addr=16K,size=4K,fd=%d,offset=4K;"
                     "file:addr=20K,size=4K,path=%s,private,prot=r",
                     path, mfd, path);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc == 0) {
        uint64_t v = 0;
        CU_ASSERT_EQUAL(vmmem_store(m, 0x4000, 8, 0xfeedfacecafebeefull, VMMEM_RELAXED), 0);
        CU_ASSERT_EQUAL(vmmem_load(m, 0x4000, 8, &v, VMMEM_RELAXED), 0);
        CU_ASSERT_EQUAL(v, 0xfeedfacecafebeefull);
        vmmem_map_unref(m);
    }
}

/* Failures at every stage of the provider: parse, open, size, seal, fd. */
static void cycle_errors(const char *path, const char *shortpath, int rofd)
{
    vmmem_map *m = NULL;
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=8K,path=%s", shortpath), -ERANGE);
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=4K,path=%s,offset=100", path),
                    VMMEM_EBAD_VALUE);
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=8K,path=%s,offset=8K", path),
                    -ERANGE);
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=8K,fd=%d", rofd), -EACCES);
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=8K,path=/nonexistent/x"), -ENOENT);
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=8K,path=/tmp,prot=r"), -EISDIR);
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=8K,path=/dev/zero"), -ERANGE);
    /* The second region fails after the first was mapped: it must be undone. */
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=8K,memfd=first;file:addr=8K,size=8K,path=%s",
                            shortpath),
                    -ERANGE);
    CU_ASSERT_EQUAL(try_map(&m, "file:addr=0,size=8K,path=%s;file:addr=8K,size=1G,memfd=big,"
                            "seal,offset=0x7fffffffffff0000",
                            path),
                    VMMEM_EOVERFLOW);
    CU_ASSERT_PTR_NULL(m);
}

static void test_no_leaks(void)
{
    char path[128], shortpath[128];
    int fd = make_file("/tmp", 8192, path, sizeof path);
    int sfd = make_file("/dev/shm", 4096, shortpath, sizeof shortpath);
    int mfd = memfd_create("leak-fd", MFD_CLOEXEC);
    CU_ASSERT_FATAL(mfd >= 0);
    CU_ASSERT_FATAL(ftruncate(mfd, 8192) == 0);
    int rofd = open(path, O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(rofd >= 0);

    /* Warm up: the first rounds may load the plugin and grow the heap. */
    for (int i = 0; i < 5; i++) {
        cycle_ok(path, mfd);
        cycle_errors(path, shortpath, rofd);
    }
    int fds0 = count_fds(), maps0 = count_maps(false), files0 = count_maps(true);
    for (int i = 0; i < 200; i++)
        cycle_ok(path, mfd);
    int fds1 = count_fds(), maps1 = count_maps(false), files1 = count_maps(true);
    for (int i = 0; i < 200; i++)
        cycle_errors(path, shortpath, rofd);
    int fds2 = count_fds(), maps2 = count_maps(false), files2 = count_maps(true);
    fprintf(stdout,
            "\n    after 200 build/destroy cycles, then 200 error cycles: fds %d -> %d -> %d;"
            " maps lines %d -> %d -> %d (file-backed %d -> %d -> %d)\n",
            fds0, fds1, fds2, maps0, maps1, maps2, files0, files1, files2);
    CU_ASSERT(fds0 > 0 && maps0 > 0 && files0 > 0);
    CU_ASSERT_EQUAL(fds1, fds0);
    CU_ASSERT_EQUAL(fds2, fds0);
    CU_ASSERT_EQUAL(files1, files0);
    CU_ASSERT_EQUAL(files2, files0);
#if !defined(__SANITIZE_ADDRESS__)
    /* ASan's allocator (and valgrind's arenas) map anonymous memory on their
     * own schedule, so the total is exact only without them. */
    if (getenv("VMMEM_UNDER_VALGRIND") == NULL) {
        CU_ASSERT_EQUAL(maps1, maps0);
        CU_ASSERT_EQUAL(maps2, maps0);
    }
#endif

    close(rofd);
    close(mfd);
    drop_file(sfd, shortpath);
    drop_file(fd, path);
}

/* While a region is alive its fd and mapping are counted; after, both are gone. */
static void test_region_holds_one_fd_one_mapping(void)
{
    int fds0 = count_fds(), maps0 = count_maps(true);
    vmmem_map *m = map_ok("file:addr=0,size=64K,memfd=counted");
    if (m == NULL)
        return;
    CU_ASSERT_EQUAL(count_fds(), fds0 + 1);
    CU_ASSERT_EQUAL(count_maps(true), maps0 + 1);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(count_fds(), fds0);
    CU_ASSERT_EQUAL(count_maps(true), maps0);
}

static int suite_init(void)
{
    /* Load the plugins now so their own fds/mappings precede any count. */
    vmmem_registry *reg = vmmem_default_registry();
    return reg != NULL && vmmem_registry_find(reg, "file") != NULL ? 0 : -1;
}

static const struct vt_test file_tests[] = {
    {"disk file: both ways, region info", test_disk_file},
    {"/dev/shm file", test_dev_shm},
    {"memfd=NAME", test_memfd_named},
    {"fd= from memfd_create", test_fd_inherited},
    {"fd=: the caller keeps its descriptor", test_fd_caller_keeps_ownership},
    {"two file regions, access across the seam", test_two_regions},
    {"private does not write through", test_private},
    {"offset=", test_offset},
    {"offset= unaligned or bad", test_offset_unaligned},
    {"short file refused with both sizes", test_short_file},
    {"nosizecheck", test_nosizecheck},
    {"create makes and sizes the file", test_create},
    {"create: a failed map removes the file", test_create_failure_removes_file},
    {"read-only file, prot=r, read-only fd", test_read_only},
    {"prot=r on a writable file", test_prot_r_writable_file},
    {"memfd seal", test_seal},
    {"option errors", test_option_errors},
    {"one fd and one mapping per region", test_region_holds_one_fd_one_mapping},
    {"no fd or mapping leaks (200 cycles, error paths)", test_no_leaks},
    {NULL, NULL},
};

static const struct vt_suite file_suite = {"file provider", suite_init, NULL, file_tests};

int main(void)
{
    const struct vt_suite *const suites[] = {&file_suite, NULL};
    return vt_main(suites);
}

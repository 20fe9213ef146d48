/*
 * Fuzz target: the vhost-user memory-table layer (vhost.h), fed hostile
 * SET_MEM_TABLE / ADD_MEM_REG / REM_MEM_REG messages and front-end user
 * addresses.
 *
 * The descriptors are made once: memfds of 64 KiB, 16 KiB, 4 KiB + 100 bytes
 * and 0 bytes filled with a known pattern, a pipe, a directory, a read-only
 * descriptor of the first memfd, a closed descriptor number, and -1.  The
 * registry holds the file and mmap providers (no Xen: a table with Xen flags
 * that passes validation must then fail to map, and change nothing).
 *
 * Every call is checked against a reference model of the documented
 * validation (vhost.h: zero size, overflow of gpa / user address / offset +
 * size, -EBADF, Xen flags, Xen offset, page alignment, offset + size past
 * the end of a regular file, overlapping guest or user ranges, the region
 * limit, in that order), and against the model's table: after a success the
 * published map has exactly the table's regions, and their bytes are the
 * memfd's bytes at mmap_offset (a wrongly accepted offset shows up as wrong
 * bytes or as SIGBUS); after a failure the published map is unchanged.
 * uaddr_to_gpa is compared with the model's translation, with its length
 * clamp.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

#define PAGE 4096u
#define MAX_TABLE 12

enum { FD_MEM64K, FD_MEM16K, FD_MEMODD, FD_MEM0, FD_PIPE, FD_DIR, FD_RDONLY, FD_CLOSED,
       FD_NEG, NFDS };

static vmmem_registry *g_reg;
static int g_fd[NFDS];
static uint64_t g_fd_size[NFDS];

static uint8_t pattern(int which, uint64_t off)
{
    return (uint8_t)(which * 37 + off * 7 + (off >> 8));
}

static int make_memfd(int which, uint64_t size)
{
    int fd = memfd_create("fuzz-vhost", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
        abort();
    if (size > 0) {
        uint8_t *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            abort();
        for (uint64_t i = 0; i < size; i++)
            p[i] = pattern(which, i);
        munmap(p, (size_t)size);
    }
    g_fd_size[which] = size;
    return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (vmmem_registry_new(&g_reg) < 0)
        abort();
    fz_load_plugin(g_reg, "vmmem-file.so");
    fz_load_plugin(g_reg, "vmmem-mmap.so");
    g_fd[FD_MEM64K] = make_memfd(FD_MEM64K, 64 * 1024);
    g_fd[FD_MEM16K] = make_memfd(FD_MEM16K, 16 * 1024);
    g_fd[FD_MEMODD] = make_memfd(FD_MEMODD, PAGE + 100);
    g_fd[FD_MEM0] = make_memfd(FD_MEM0, 0);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        abort();
    g_fd[FD_PIPE] = p[0]; /* p[1] stays open: nothing is ever read */
    g_fd[FD_DIR] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", g_fd[FD_MEM64K]);
    g_fd[FD_RDONLY] = open(path, O_RDONLY | O_CLOEXEC);
    g_fd_size[FD_RDONLY] = g_fd_size[FD_MEM64K];
    int c = dup(0);
    if (c < 0)
        c = 1000;
    close(c);
    g_fd[FD_CLOSED] = 1000 + c; /* far above anything this process opens */
    g_fd[FD_NEG] = -1;
    if (g_fd[FD_DIR] < 0 || g_fd[FD_RDONLY] < 0)
        abort();
    return 0;
}

/* ---- generators ---- */

static int fd_kind(int fd)
{
    for (int i = 0; i < NFDS; i++)
        if (g_fd[i] == fd)
            return i;
    return -1;
}

static bool is_memfd(int kind)
{
    return kind >= FD_MEM64K && kind <= FD_MEM0;
}

static uint64_t gen_gpa(struct fz_in *in, uint64_t size)
{
    uint8_t s = fz_u8(in);
    switch (s % 8) {
    case 0: return 0;
    case 1:
    case 2: return (uint64_t)(fz_u8(in) % 32) * PAGE;
    case 3: return 0x100000000ull + (uint64_t)(fz_u8(in) % 8) * PAGE;
    case 4: return 0 - size; /* ends at 2^64 (or wraps for size 0) */
    case 5: return UINT64_MAX - fz_u16(in);
    case 6: return (uint64_t)fz_u16(in);
    default: return fz_u64(in);
    }
}

static uint64_t gen_size(struct fz_in *in, int kind)
{
    uint8_t s = fz_u8(in);
    switch (s % 10) {
    case 0: return 0;
    case 1: return PAGE;
    case 2: return 2 * PAGE;
    case 3: return 4 * PAGE;
    case 4: return kind >= 0 ? g_fd_size[kind] : PAGE;
    case 5: return kind >= 0 && g_fd_size[kind] > PAGE ? g_fd_size[kind] - PAGE : 100;
    case 6: return 1 + fz_u16(in) % (20 * PAGE);
    case 7: return UINT64_MAX - fz_u8(in);
    case 8: return kind >= 0 ? g_fd_size[kind] + 1 : 1;
    default: return fz_u64(in);
    }
}

static uint64_t gen_uaddr(struct fz_in *in)
{
    uint8_t s = fz_u8(in);
    switch (s % 6) {
    case 0:
    case 1:
    case 2: return 0x7f0000000000ull + (uint64_t)(fz_u8(in) % 32) * PAGE;
    case 3: return UINT64_MAX - fz_u16(in);
    case 4: return (uint64_t)fz_u16(in) * 16;
    default: return fz_u64(in);
    }
}

static uint64_t gen_offset(struct fz_in *in, int kind)
{
    uint8_t s = fz_u8(in);
    switch (s % 8) {
    case 0:
    case 1:
    case 2: return 0;
    case 3: return (uint64_t)(fz_u8(in) % 20) * PAGE;
    case 4: return kind >= 0 ? g_fd_size[kind] : PAGE;
    case 5: return fz_u16(in); /* mostly unaligned */
    case 6: return UINT64_MAX - PAGE + 1;
    default: return fz_u64(in);
    }
}

static void gen_region(struct fz_in *in, struct vmmem_vhost_region *r)
{
    int kind = fz_u8(in) % (NFDS + 3);
    if (kind >= NFDS)
        kind = FD_MEM64K + kind % 3; /* the good memfds are more common */
    memset(r, 0, sizeof *r);
    r->fd = g_fd[kind];
    r->memory_size = gen_size(in, kind);
    r->guest_phys_addr = gen_gpa(in, r->memory_size);
    r->userspace_addr = gen_uaddr(in);
    r->mmap_offset = gen_offset(in, kind);
    uint8_t x = fz_u8(in);
    if (x >= 240) {
        static const uint32_t flags[] = {1, 2, 0xa, 8, 3, 0xb, 0x10};
        r->xen_mmap_flags = (x & 0x8) ? fz_u32(in) : flags[x % 7];
        r->xen_mmap_data = fz_u32(in);
    }
}

/* ---- the reference model ---- */

struct model {
    size_t max;
    size_t n;
    struct vmmem_vhost_region t[MAX_TABLE + 1];
};

static bool meet(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a <= b + (blen - 1) && b <= a + (alen - 1);
}

static bool xen_flags_ok(uint32_t f)
{
    return f == 0 || f == 1 || f == 2 || f == 0xa;
}

/* check_one: the per-region rules, in the documented order. */
static int m_check_one(const struct vmmem_vhost_region *r)
{
    uint64_t sz = r->memory_size;
    if (sz == 0)
        return VMMEM_EZERO_SIZE;
    if (sz - 1 > UINT64_MAX - r->guest_phys_addr || sz - 1 > UINT64_MAX - r->userspace_addr ||
        sz - 1 > UINT64_MAX - r->mmap_offset)
        return VMMEM_EOVERFLOW;
    if (r->fd < 0)
        return -EBADF;
    if (!xen_flags_ok(r->xen_mmap_flags))
        return VMMEM_EBAD_VALUE;
    bool xen = r->xen_mmap_flags != 0;
    if (xen && r->mmap_offset != 0)
        return VMMEM_EBAD_VALUE;
    if (r->mmap_offset % PAGE != 0)
        return VMMEM_EBAD_VALUE;
    int kind = fd_kind(r->fd);
    if (kind == FD_CLOSED)
        return -EBADF;
    bool regular = is_memfd(kind) || kind == FD_RDONLY;
    if (!xen && regular &&
        (r->mmap_offset > g_fd_size[kind] || sz > g_fd_size[kind] - r->mmap_offset))
        return -ERANGE;
    return 0;
}

static int m_check_pair(const struct vmmem_vhost_region *x, const struct vmmem_vhost_region *y)
{
    if (meet(x->guest_phys_addr, x->memory_size, y->guest_phys_addr, y->memory_size))
        return VMMEM_EOVERLAP;
    if (x->xen_mmap_flags == 0 && y->xen_mmap_flags == 0 &&
        meet(x->userspace_addr, x->memory_size, y->userspace_addr, y->memory_size))
        return VMMEM_EOVERLAP;
    return 0;
}

/* A validated region maps only if it is a writable memfd without Xen flags. */
static bool m_maps(const struct vmmem_vhost_region *r)
{
    return r->xen_mmap_flags == 0 && is_memfd(fd_kind(r->fd));
}

/* 1 means "must fail, code not modelled" (provider's own refusal). */
static int m_set_table(const struct model *md, const struct vmmem_vhost_region *t, size_t n)
{
    if (n > md->max)
        return -E2BIG;
    for (size_t i = 0; i < n; i++) {
        int rc = m_check_one(&t[i]);
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if ((rc = m_check_pair(&t[i], &t[j])) < 0)
                return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (!m_maps(&t[i]))
            return 1;
    return 0;
}

static int m_add(const struct model *md, const struct vmmem_vhost_region *r)
{
    int rc = m_check_one(r);
    if (rc < 0)
        return rc;
    if (md->n + 1 > md->max)
        return -E2BIG;
    for (size_t j = 0; j < md->n; j++)
        if ((rc = m_check_pair(r, &md->t[j])) < 0)
            return rc;
    return m_maps(r) ? 0 : 1;
}

/* ---- checks ---- */

static void expect(int got, int want, const char *what)
{
    if (want == 1)
        FZ_CHECK(got < 0, "%s succeeded; the model says it must fail", what);
    else
        FZ_CHECK(got == want, "%s: got %s (%d), model says %s (%d)", what, vmmem_err_name(got),
                 got, vmmem_err_name(want), want);
    if (got < 0)
        FZ_CHECK(vmmem_last_error()->code == got, "%s: last_error code %d != %d", what,
                 vmmem_last_error()->code, got);
}

static int cmp_gpa(const void *a, const void *b)
{
    const struct vmmem_vhost_region *x = a, *y = b;
    return x->guest_phys_addr < y->guest_phys_addr ? -1
                                                   : x->guest_phys_addr > y->guest_phys_addr;
}

/* The published map must be exactly the model's table, with the fds' bytes. */
static void check_published(vmmem_vhost *v, const struct model *md)
{
    FZ_CHECK(vmmem_vhost_num_regions(v) == md->n, "vhost has %zu regions, model %zu",
             vmmem_vhost_num_regions(v), md->n);
    struct vmmem_vhost_region s[MAX_TABLE + 1];
    memcpy(s, md->t, md->n * sizeof *s);
    qsort(s, md->n, sizeof *s, cmp_gpa);
    vmmem_map *m = vmmem_vhost_snapshot(v);
    FZ_CHECK(m != NULL, "no snapshot");
    FZ_CHECK(vmmem_map_num_regions(m) == md->n, "published map has %zu regions, model %zu",
             vmmem_map_num_regions(m), md->n);
    for (size_t i = 0; i < md->n; i++) {
        const vmmem_region *r = vmmem_map_region(m, i);
        FZ_CHECK(vmmem_region_start(r) == s[i].guest_phys_addr &&
                     vmmem_region_size(r) == s[i].memory_size,
                 "published region %zu [0x%llx +0x%llx], model [0x%llx +0x%llx]", i,
                 (unsigned long long)vmmem_region_start(r),
                 (unsigned long long)vmmem_region_size(r),
                 (unsigned long long)s[i].guest_phys_addr,
                 (unsigned long long)s[i].memory_size);
        int kind = fd_kind(s[i].fd);
        uint64_t offs[3] = {0, s[i].memory_size / 2, s[i].memory_size - 1};
        for (int j = 0; j < 3; j++) {
            uint8_t b = 0;
            FZ_CHECK(vmmem_read(m, s[i].guest_phys_addr + offs[j], &b, 1) == 1,
                     "read of a published region");
            FZ_CHECK(b == pattern(kind, s[i].mmap_offset + offs[j]),
                     "byte at gpa 0x%llx is 0x%02x, the fd has 0x%02x at 0x%llx",
                     (unsigned long long)(s[i].guest_phys_addr + offs[j]), b,
                     pattern(kind, s[i].mmap_offset + offs[j]),
                     (unsigned long long)(s[i].mmap_offset + offs[j]));
        }
    }
    vmmem_map_unref(m);
}

static void check_uaddr(vmmem_vhost *v, const struct model *md, struct fz_in *in)
{
    uint64_t ua;
    uint8_t s = fz_u8(in);
    if (md->n > 0 && s < 200) {
        const struct vmmem_vhost_region *e = &md->t[s % md->n];
        ua = e->userspace_addr + fz_u64(in) % (e->memory_size + 2) - 1;
    } else {
        ua = gen_uaddr(in);
    }
    uint64_t want_gpa = 0, want_len = fz_u64(in), len = want_len, gpa = 77;
    int want = VMMEM_EINVALID_ADDRESS;
    for (size_t i = 0; i < md->n; i++) {
        const struct vmmem_vhost_region *e = &md->t[i];
        if (e->xen_mmap_flags != 0 || ua < e->userspace_addr ||
            ua - e->userspace_addr > e->memory_size - 1)
            continue;
        uint64_t off = ua - e->userspace_addr;
        want_gpa = e->guest_phys_addr + off;
        if (want_len > e->memory_size - off)
            want_len = e->memory_size - off;
        want = 0;
        break;
    }
    int got = vmmem_vhost_uaddr_to_gpa(v, ua, &gpa, &len);
    expect(got, want, "uaddr_to_gpa");
    if (got == 0)
        FZ_CHECK(gpa == want_gpa && len == want_len, "uaddr 0x%llx -> 0x%llx +%llu, model "
                 "0x%llx +%llu", (unsigned long long)ua, (unsigned long long)gpa,
                 (unsigned long long)len, (unsigned long long)want_gpa,
                 (unsigned long long)want_len);
    else
        FZ_CHECK(gpa == 77, "failed translation wrote its output");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    struct model md;
    memset(&md, 0, sizeof md);
    md.max = 1 + fz_u8(&in) % 8;
    vmmem_vhost *v = NULL;
    int rc = vmmem_vhost_new(&v, g_reg, md.max, NULL);
    FZ_CHECK(rc == 0, "vhost_new");
    for (int op = 0; op < 16 && in.n > 0; op++) {
        uint8_t sel = fz_u8(&in);
        switch (sel % 5) {
        case 0:
        case 1: { /* SET_MEM_TABLE */
            size_t n = fz_u8(&in) % (MAX_TABLE + 1);
            struct vmmem_vhost_region t[MAX_TABLE];
            for (size_t i = 0; i < n; i++)
                gen_region(&in, &t[i]);
            int want = m_set_table(&md, t, n);
            rc = vmmem_vhost_set_mem_table(v, t, n);
            expect(rc, want, "set_mem_table");
            if (rc == 0) {
                memcpy(md.t, t, n * sizeof *t);
                md.n = n;
            }
            break;
        }
        case 2: { /* ADD_MEM_REG */
            struct vmmem_vhost_region r;
            gen_region(&in, &r);
            if (md.n > 0 && (fz_u8(&in) & 3) == 0) /* near an existing region */
                r.guest_phys_addr = md.t[0].guest_phys_addr + md.t[0].memory_size;
            int want = m_add(&md, &r);
            rc = vmmem_vhost_add_region(v, &r);
            expect(rc, want, "add_region");
            if (rc == 0)
                md.t[md.n++] = r;
            break;
        }
        case 3: { /* REM_MEM_REG */
            struct vmmem_vhost_region r;
            uint8_t s = fz_u8(&in);
            if (md.n > 0 && s < 200) {
                r = md.t[s % md.n];
                if (s & 1) /* a field off by one page: must not match */
                    r.userspace_addr += PAGE;
            } else {
                gen_region(&in, &r);
            }
            size_t i = 0;
            while (i < md.n && !(md.t[i].guest_phys_addr == r.guest_phys_addr &&
                                 md.t[i].memory_size == r.memory_size &&
                                 md.t[i].userspace_addr == r.userspace_addr))
                i++;
            rc = vmmem_vhost_remove_region(v, &r);
            expect(rc, i < md.n ? 0 : VMMEM_EINVALID_ADDRESS, "remove_region");
            if (rc == 0)
                md.t[i] = md.t[--md.n];
            break;
        }
        default:
            check_uaddr(v, &md, &in);
            break;
        }
        check_published(v, &md);
    }
    vmmem_vhost_free(v);
    return 0;
}

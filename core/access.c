/*
 * Accesses through a map: read/write, all-or-error slices and objects,
 * atomics, and fd I/O.  The hot path for an ordinary region is a bisection
 * and a copy from base + offset: no provider call, no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* ---- piece walking ---- */

/* Access direction.  Every write marks the pages it wrote (the IOMMU layer
 * too, since issue 14: guest-physical pages, not only IOVAs). */
enum { DIR_READ = 0, DIR_WRITE = 1 };

#define LAZY_CHUNK VMMEM__LAZY_CHUNK /* internal.h */

#define MARK(slot, off, len) vmmem__slot_dirty((slot), (off), (len))

/* Move n bytes between buf and host, the memory of slot s at region offset
 * off, in the direction dir says; a write then marks its pages. */
static inline __attribute__((always_inline)) void move(const struct vmmem_slot *s, uint8_t *host,
                                                       uint64_t off, uint8_t *buf, size_t n,
                                                       int dir)
{
    if (dir & DIR_WRITE) {
        vmmem__copy(host, buf, n);
        MARK(s, off, n);
    } else {
        vmmem__copy(buf, host, n);
    }
}

/* Copy one piece of a region; handles map-on-access regions. */
static int copy_piece(const struct vmmem_slot *s, uint64_t addr, uint8_t *buf, size_t n, int dir)
{
    uint64_t off = addr - s->start;
    if (VMMEM_LIKELY(s->host != NULL)) {
        move(s, s->host + off, off, buf, n, dir);
        return 0;
    }
    const struct vmmem_region *r = s->r;
    struct vmmem_access acc;
    int rc = vmmem__prov_begin(r->prov.p, &r->mapping, off, n,
                               (dir & DIR_WRITE) ? VMMEM_PROT_WRITE : VMMEM_PROT_READ, &acc);
    if (rc < 0)
        return rc;
    move(s, acc.ptr, off, buf, n, dir);
    vmmem__prov_end(r->prov.p, &r->mapping, &acc);
    return 0;
}

static int err_readonly(const struct vmmem_slot *s, uint64_t addr)
{
    return vmmem__err_addr(VMMEM_EREAD_ONLY, addr,
                           "guest address 0x%llx is in a read-only region [0x%llx, 0x%llx]",
                           (unsigned long long)addr, (unsigned long long)s->start,
                           (unsigned long long)s->last);
}

/* Short-count copy: stops at a hole or a read-only region after byte one. */
int64_t vmmem__rw_some(const vmmem_map *m, uint64_t addr, uint8_t *buf, size_t len, int dir)
{
    if (len == 0)
        return 0;
    if (m == NULL || buf == NULL)
        return vmmem__err(-EINVAL, "NULL map or buffer");
#if SIZE_MAX > INT64_MAX /* a 32-bit size_t never exceeds the int64_t result */
    if (len > (size_t)INT64_MAX)
        len = (size_t)INT64_MAX;
#endif
    long i = vmmem__find_slot(m, addr);
    if (i < 0)
        return vmmem__err_hole(addr);
    const struct vmmem_slot *s = &m->slots[i];
    size_t done = 0;
    for (;;) {
        if ((dir & DIR_WRITE) && !(s->prot & VMMEM_PROT_WRITE)) {
            if (done == 0)
                return err_readonly(s, addr);
            break;
        }
        size_t n = (size_t)vmmem__piece_len(s, addr, len - done);
        if (s->host == NULL && n > LAZY_CHUNK)
            n = LAZY_CHUNK; /* bound what one access maps (grant limits) */
        int rc = copy_piece(s, addr, buf + done, n, dir);
        if (rc < 0) {
            if (done == 0)
                return rc;
            break;
        }
        done += n;
        if (done == len)
            break;
        addr += n;
        if (addr - 1 != s->last)
            continue; /* more of the same region (chunked map-on-access) */
        if ((s = vmmem__next_touching(m, (size_t)(s - m->slots))) == NULL)
            break;
    }
    return (int64_t)done;
}

int64_t vmmem_read(const vmmem_map *m, vmmem_gaddr_t addr, void *buf, size_t len)
{
    return vmmem__rw_some(m, addr, buf, len, DIR_READ);
}

int64_t vmmem_write(const vmmem_map *m, vmmem_gaddr_t addr, const void *buf, size_t len)
{
    return vmmem__rw_some(m, addr, (uint8_t *)buf, len, DIR_WRITE);
}

/*
 * All-or-error: check the whole range (backed, writable) before copying, so
 * failure leaves guest memory and the caller's buffer untouched.
 */
static int rw_all_slow(const vmmem_map *m, uint64_t addr, uint8_t *buf, size_t len, int dir,
                       long i) __attribute__((noinline)); /* not "cold": that compiles memcpy as rep movsb */

/*
 * The hot path, inlined into each public entry with a constant dir: one
 * bisection, one bounds test, the copy (a single volatile access for an
 * aligned 8-byte object), and the dirty test.  Everything else is cold.
 */
static inline __attribute__((always_inline)) int rw_all(const vmmem_map *m, uint64_t addr,
                                                        uint8_t *buf, size_t len, int dir)
{
    long i = -1;
    if (len == 8 && (addr & 7) == 0 && VMMEM_LIKELY(m != NULL && buf != NULL)) {
        /* An aligned 8-byte object: the index, one compare and one access. */
        uint64_t off;
        const struct vmmem_slot *s = vmmem__small_slot(m, addr, (dir & DIR_WRITE) != 0, &off);
        if (VMMEM_LIKELY(s != NULL)) {
            move(s, s->host + off, off, buf, 8, dir);
            return 0;
        }
    }
    if (VMMEM_LIKELY(m != NULL && buf != NULL && len != 0)) {
        i = vmmem__find_slot(m, addr);
        if (VMMEM_LIKELY(i >= 0)) {
            const struct vmmem_slot *s = &m->slots[i];
            if (VMMEM_LIKELY((uint64_t)len - 1 <= s->last - addr && s->host != NULL &&
                             (!(dir & DIR_WRITE) || (s->prot & VMMEM_PROT_WRITE)))) {
                uint64_t off = addr - s->start;
                move(s, s->host + off, off, buf, len, dir);
                return 0;
            }
        }
    }
    return rw_all_slow(m, addr, buf, len, dir, i);
}

int vmmem__rw_all(const vmmem_map *m, uint64_t addr, uint8_t *buf, size_t len, int dir)
{
    return rw_all(m, addr, buf, len, dir);
}

/* i: the slot of addr as the fast path found it (-1: a hole or bad args). */
static int rw_all_slow(const vmmem_map *m, uint64_t addr, uint8_t *buf, size_t len, int dir,
                       long i)
{
    if (len == 0)
        return 0;
    if (m == NULL || buf == NULL)
        return vmmem__err(-EINVAL, "NULL map or buffer");
    if (i < 0)
        return vmmem__err_hole(addr);
    /* Common slow case: two ordinary touching regions (an object across a
     * seam).  Checked in full before anything is copied. */
    const struct vmmem_slot *s0 = &m->slots[i], *s1 = vmmem__next_touching(m, (size_t)i);
    uint64_t n0 = s0->last - addr + 1; /* < len: the fast path did not take it */
    if (s1 != NULL && s0->host != NULL && s1->host != NULL && len - n0 - 1 <= s1->last - s1->start &&
        (!(dir & DIR_WRITE) || (s0->prot & s1->prot & VMMEM_PROT_WRITE))) {
        uint64_t off0 = addr - s0->start;
        move(s0, s0->host + off0, off0, buf, (size_t)n0, dir);
        move(s1, s1->host, 0, buf + n0, len - (size_t)n0, dir);
        return 0;
    }
    /* One walk collects the pieces and checks them: nothing is copied unless
     * every byte can be. */
    struct piece {
        const struct vmmem_slot *s;
        uint64_t off;
        size_t n;
        struct vmmem_access acc; /* map-on-access pieces only */
    } inl[8], *pc = inl;
    size_t np = 0, cap = 8, done = 0;
    bool lazy = false;
    int rc = 0;
    const struct vmmem_slot *s = &m->slots[i];
    for (uint64_t a = addr;;) {
        if ((dir & DIR_WRITE) && !(s->prot & VMMEM_PROT_WRITE)) {
            rc = err_readonly(s, a);
            goto out;
        }
        if (np == cap) {
            struct piece *nh = malloc(2 * cap * sizeof *nh);
            if (nh == NULL) {
                rc = vmmem__err(-ENOMEM, "out of memory");
                goto out;
            }
            memcpy(nh, pc, np * sizeof *nh);
            if (pc != inl)
                free(pc);
            pc = nh;
            cap *= 2;
        }
        size_t n = (size_t)vmmem__piece_len(s, a, len - done);
        pc[np++] = (struct piece){s, a - s->start, n, {NULL, NULL}};
        lazy |= s->host == NULL;
        done += n;
        if (done == len)
            break;
        if (s->last == UINT64_MAX) {
            rc = vmmem__err_addr(VMMEM_EOVERFLOW, addr,
                                 "access 0x%llx +0x%zx passes the end of guest address space",
                                 (unsigned long long)addr, len);
            goto out;
        }
        a += n;
        if ((s = vmmem__next_touching(m, (size_t)(s - m->slots))) == NULL) {
            rc = vmmem__err_partial(a, len, 0);
            goto out;
        }
    }
    /* Map-on-access pieces are all made reachable before any byte moves, so
     * a provider failure leaves guest memory untouched. */
    size_t begun = 0;
    if (lazy) {
        for (; begun < np; begun++) {
            struct piece *p = &pc[begun];
            if (p->s->host != NULL)
                continue;
            rc = vmmem__prov_begin(p->s->r->prov.p, &p->s->r->mapping, p->off, p->n,
                                   (dir & DIR_WRITE) ? VMMEM_PROT_WRITE : VMMEM_PROT_READ, &p->acc);
            if (rc < 0) {
                struct vmmem_error *e = vmmem__errbuf(); /* keep the provider's detail */
                e->addr = p->s->start + p->off;
                e->expected = len;
                e->completed = 0;
                break;
            }
        }
    }
    if (rc == 0) {
        done = 0;
        for (size_t k = 0; k < np; k++) {
            const struct piece *p = &pc[k];
            uint8_t *host = p->s->host ? p->s->host + p->off : p->acc.ptr;
            move(p->s, host, p->off, buf + done, p->n, dir);
            done += p->n;
        }
    }
    for (size_t k = 0; lazy && k < begun; k++)
        if (pc[k].s->host == NULL)
            vmmem__prov_end(pc[k].s->r->prov.p, &pc[k].s->r->mapping, &pc[k].acc);
out:
    if (pc != inl)
        free(pc);
    return rc;
}

int vmmem__precheck(const vmmem_map *m, uint64_t addr, size_t len, bool write, uint64_t *bad)
{
    if (len == 0)
        return 0;
    long i = vmmem__find_slot(m, addr);
    if (i < 0) {
        *bad = addr;
        return VMMEM_EINVALID_ADDRESS;
    }
    const struct vmmem_slot *c = &m->slots[i];
    size_t done = 0;
    for (;;) {
        if (write && !(c->prot & VMMEM_PROT_WRITE)) {
            *bad = addr;
            return VMMEM_EREAD_ONLY;
        }
        size_t n = (size_t)vmmem__piece_len(c, addr, len - done);
        done += n;
        if (done == len)
            return 0;
        if (c->last == UINT64_MAX) {
            *bad = addr;
            return VMMEM_EOVERFLOW;
        }
        addr += n;
        if ((c = vmmem__next_touching(m, (size_t)(c - m->slots))) == NULL) {
            *bad = addr;
            return VMMEM_EINVALID_ADDRESS;
        }
    }
}

int vmmem_read_slice(const vmmem_map *m, vmmem_gaddr_t addr, void *buf, size_t len)
{
    return rw_all(m, addr, buf, len, DIR_READ);
}

int vmmem_write_slice(const vmmem_map *m, vmmem_gaddr_t addr, const void *buf, size_t len)
{
    return rw_all(m, addr, (uint8_t *)buf, len, DIR_WRITE);
}

int vmmem_read_obj(const vmmem_map *m, vmmem_gaddr_t addr, void *obj, size_t size)
{
    return rw_all(m, addr, obj, size, DIR_READ);
}

int vmmem_write_obj(const vmmem_map *m, vmmem_gaddr_t addr, const void *obj, size_t size)
{
    return rw_all(m, addr, (uint8_t *)obj, size, DIR_WRITE);
}

/* ---- atomics ---- */

int vmmem__check_order(vmmem_order order, bool store)
{
    switch (order) {
    case VMMEM_RELAXED:
    case VMMEM_SEQ_CST:
        return 0;
    case VMMEM_ACQUIRE:
        return store ? -EINVAL : 0;
    case VMMEM_RELEASE:
        return store ? 0 : -EINVAL;
    default:
        return -EINVAL;
    }
}

/* Each case names its memory order as a constant: with a run-time order
 * GCC falls back to the strongest form (a locked xchg for every store). */
#define ATOMIC_CASE(T, p, val, order, store)                                                  \
    do {                                                                                      \
        _Atomic T *ap = (_Atomic T *)(p); /* NOLINT(bugprone-macro-parentheses): a type */   \
        if (store) {                                                                          \
            T v = (T) * (val); /* NOLINT(bugprone-macro-parentheses): a type */               \
            switch (order) {                                                                  \
            case VMMEM_RELEASE:                                                               \
                atomic_store_explicit(ap, v, memory_order_release);                           \
                break;                                                                        \
            case VMMEM_SEQ_CST:                                                               \
                atomic_store_explicit(ap, v, memory_order_seq_cst);                           \
                break;                                                                        \
            default:                                                                          \
                atomic_store_explicit(ap, v, memory_order_relaxed);                           \
                break;                                                                        \
            }                                                                                 \
        } else {                                                                              \
            switch (order) {                                                                  \
            case VMMEM_ACQUIRE:                                                               \
                *(val) = atomic_load_explicit(ap, memory_order_acquire);                      \
                break;                                                                        \
            case VMMEM_SEQ_CST:                                                               \
                *(val) = atomic_load_explicit(ap, memory_order_seq_cst);                      \
                break;                                                                        \
            default:                                                                          \
                *(val) = atomic_load_explicit(ap, memory_order_relaxed);                      \
                break;                                                                        \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static inline __attribute__((always_inline)) void atomic_op(uint8_t *p, size_t size,
                                                             uint64_t *val, vmmem_order order,
                                                             bool store)
{
    switch (size) {
    case 1:
        ATOMIC_CASE(uint8_t, p, val, order, store);
        break;
    case 2:
        ATOMIC_CASE(uint16_t, p, val, order, store);
        break;
    case 4:
        ATOMIC_CASE(uint32_t, p, val, order, store);
        break;
    default:
        ATOMIC_CASE(uint64_t, p, val, order, store);
        break;
    }
}

void vmmem__atomic(uint8_t *p, size_t size, uint64_t *val, vmmem_order order, bool store)
{
    atomic_op(p, size, val, order, store);
}

/*
 * The common case of vmmem_load/vmmem_store as fast.h takes it - a 4- or
 * 8-byte aligned access through the direct index and one compare of the
 * offset with the slot's rlen/wlen - with no call, so no saved registers;
 * 1 when it was done, 0 for map_atomic.
 */
static inline __attribute__((always_inline)) int
atomic_fast(const vmmem_map *m, uint64_t addr, size_t size, uint64_t *val, vmmem_order order,
            bool store, const struct vmmem_slot **ms, uint64_t *moff)
{
    if (VMMEM_LIKELY(m != NULL && (size == 4 || size == 8) && (addr & (size - 1)) == 0 &&
                     vmmem__check_order(order, store) == 0)) {
        const struct vmmem_slot *s = vmmem__small_slot(m, addr, store, moff);
        if (VMMEM_LIKELY(s != NULL)) {
            atomic_op(s->host + *moff, size, val, order, store);
            *ms = s;
            return 1;
        }
    }
    return 0;
}

static inline __attribute__((always_inline)) int
map_atomic(const vmmem_map *m, uint64_t addr, size_t size, uint64_t *val, vmmem_order order,
           int dir)
{
    bool store = (dir & DIR_WRITE) != 0;
    if (m == NULL || val == NULL)
        return vmmem__err(-EINVAL, "NULL map or value pointer");
    if (vmmem__check_atomic_size(size) < 0)
        return -EINVAL;
    if (vmmem__check_order(order, store) < 0)
        return vmmem__err(-EINVAL, "memory order %d is not valid for an atomic %s", (int)order,
                          store ? "store" : "load");
    if (addr & (size - 1))
        return vmmem__err_addr(VMMEM_EMISALIGNED, addr,
                               "guest address 0x%llx is not aligned for a %zu-byte atomic",
                               (unsigned long long)addr, size);
    long i = vmmem__find_slot(m, addr);
    if (i < 0)
        return vmmem__err_hole(addr);
    const struct vmmem_slot *s = &m->slots[i];
    if (size - 1 > s->last - addr)
        return vmmem__err_addr(VMMEM_ECROSSES_REGION, addr,
                               "%zu-byte atomic at 0x%llx crosses the end of its region at "
                               "0x%llx",
                               size, (unsigned long long)addr, (unsigned long long)s->last);
    if (s->host == NULL)
        return vmmem__err_addr(VMMEM_ENO_HOST_ADDRESS, addr,
                               "atomic at 0x%llx: region (provider '%s') is map-on-access and "
                               "has no stable host address",
                               (unsigned long long)addr, s->r->prov.p->name);
    if (store && !(s->prot & VMMEM_PROT_WRITE))
        return err_readonly(s, addr);
    uint64_t off = addr - s->start;
    uint8_t *p = s->host + off;
    if ((uintptr_t)p & (size - 1))
        return vmmem__err_addr(VMMEM_EMISALIGNED, addr,
                               "guest address 0x%llx maps to host %p, not aligned for a %zu-byte "
                               "atomic",
                               (unsigned long long)addr, (void *)p, size);
    atomic_op(p, size, val, order, store);
    if (store)
        MARK(s, off, size);
    return 0;
}

int vmmem__map_atomic(const vmmem_map *m, uint64_t addr, size_t size, uint64_t *val,
                      vmmem_order order, int dir)
{
    return map_atomic(m, addr, size, val, order, dir);
}

static __attribute__((noinline)) int load_slow(const vmmem_map *m, uint64_t addr, size_t size,
                                                uint64_t *val, vmmem_order order)
{
    return map_atomic(m, addr, size, val, order, DIR_READ);
}

static __attribute__((noinline)) int store_slow(const vmmem_map *m, uint64_t addr, size_t size,
                                                 uint64_t val, vmmem_order order)
{
    return map_atomic(m, addr, size, &val, order, DIR_WRITE);
}

int vmmem_load(const vmmem_map *m, vmmem_gaddr_t addr, size_t size, uint64_t *val,
               vmmem_order order)
{
    const struct vmmem_slot *s;
    uint64_t off;
    if (val != NULL && atomic_fast(m, addr, size, val, order, false, &s, &off))
        return 0;
    return load_slow(m, addr, size, val, order);
}

int vmmem_store(const vmmem_map *m, vmmem_gaddr_t addr, size_t size, uint64_t val,
                vmmem_order order)
{
    const struct vmmem_slot *s;
    uint64_t off, v = val;
    if (atomic_fast(m, addr, size, &v, order, true, &s, &off)) {
        MARK(s, off, size);
        return 0;
    }
    return store_slow(m, addr, size, val, order);
}

/* ---- fd I/O ---- */

/* One read(2) or a write(2) loop on a host range; returns bytes or -errno. */
static int64_t fd_piece(int fd, uint8_t *p, size_t n, int dir)
{
    if ((dir & DIR_WRITE)) { /* guest <- fd */
        ssize_t r;
        do
            r = read(fd, p, n);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : (int64_t)r;
    }
    size_t done = 0; /* guest -> fd: write it all, as a sink may take less */
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return done ? (int64_t)done : -errno;
        if (w == 0)
            break;
        done += (size_t)w;
    }
    return (int64_t)done;
}

/* dir: DIR_WRITE = into guest memory (read from fd). */
int64_t vmmem__fd_io(const vmmem_map *m, uint64_t addr, int fd, size_t count, int dir)
{
    if (count == 0)
        return 0;
    if (m == NULL)
        return vmmem__err(-EINVAL, "NULL map");
#if SIZE_MAX > INT64_MAX
    if (count > (size_t)INT64_MAX)
        count = (size_t)INT64_MAX;
#endif
    long i = vmmem__find_slot(m, addr);
    if (i < 0)
        return vmmem__err_hole(addr);
    const struct vmmem_slot *s = &m->slots[i];
    size_t total = 0;
    for (;;) {
        if ((dir & DIR_WRITE) && !(s->prot & VMMEM_PROT_WRITE)) {
            if (total == 0)
                return err_readonly(s, addr);
            break;
        }
        /* Cap one syscall at 1 GiB: Linux moves at most ~2 GiB per call anyway. */
        size_t n = (size_t)vmmem__piece_len(s, addr, count - total);
        if (n > (1u << 30))
            n = 1u << 30;
        if (s->host == NULL && n > LAZY_CHUNK)
            n = LAZY_CHUNK;
        uint64_t off = addr - s->start;
        int64_t got;
        if (s->host != NULL) {
            got = fd_piece(fd, s->host + off, n, dir);
        } else {
            struct vmmem_access acc;
            int rc = vmmem__prov_begin(s->r->prov.p, &s->r->mapping, off, n,
                                       (dir & DIR_WRITE) ? VMMEM_PROT_WRITE : VMMEM_PROT_READ,
                                       &acc);
            if (rc < 0) {
                if (total == 0)
                    return rc;
                break;
            }
            got = fd_piece(fd, acc.ptr, n, dir);
            vmmem__prov_end(s->r->prov.p, &s->r->mapping, &acc);
        }
        if (got < 0) {
            if (total == 0)
                return vmmem__err((int)got, "fd %d: %s at guest address 0x%llx", fd,
                                  strerror((int)-got), (unsigned long long)addr);
            break;
        }
        if ((dir & DIR_WRITE))
            MARK(s, off, (uint64_t)got);
        total += (size_t)got;
        if ((size_t)got < n || total == count)
            break; /* a short transfer ends the call: never skip ahead */
        addr += n;
        if (addr - 1 != s->last)
            continue; /* more of the same region (1 GiB cap) */
        if ((s = vmmem__next_touching(m, (size_t)(s - m->slots))) == NULL)
            break;
    }
    return (int64_t)total;
}

int64_t vmmem_read_from_fd(const vmmem_map *m, vmmem_gaddr_t addr, int fd, size_t count)
{
    return vmmem__fd_io(m, addr, fd, count, DIR_WRITE);
}

int64_t vmmem_write_to_fd(const vmmem_map *m, vmmem_gaddr_t addr, int fd, size_t count)
{
    return vmmem__fd_io(m, addr, fd, count, DIR_READ);
}

/*
 * The all-or-error variants.  The whole guest range is checked first
 * (backed, contiguous, writable for a read from fd), so a range failure
 * moves no byte and leaves the fd alone.  Then short transfers (pipes,
 * sockets, signals) are continued until count bytes moved, end of file
 * (VMMEM_EPARTIAL, completed = bytes moved) or an error (its code, with
 * expected/completed filled in when some bytes had moved).
 */
static int fd_exact(const vmmem_map *m, uint64_t addr, int fd, size_t count, int dir)
{
    if (count == 0)
        return 0;
    if (m == NULL)
        return vmmem__err(-EINVAL, "NULL map");
    uint64_t bad = addr;
    int code = vmmem__precheck(m, addr, count, (dir & DIR_WRITE) != 0, &bad);
    if (code == VMMEM_EINVALID_ADDRESS && bad == addr)
        return vmmem__err_hole(addr);
    if (code == VMMEM_EINVALID_ADDRESS)
        return vmmem__err_partial(bad, count, 0);
    if (code == VMMEM_EREAD_ONLY)
        return vmmem__err_addr(code, bad, "guest address 0x%llx is in a read-only region",
                               (unsigned long long)bad);
    if (code < 0)
        return vmmem__err_addr(code, addr,
                               "access 0x%llx +0x%zx passes the end of guest address space",
                               (unsigned long long)addr, count);
    size_t done = 0;
    while (done < count) {
        int64_t got = vmmem__fd_io(m, addr + done, fd, count - done, dir);
        if (got < 0) {
            if (done > 0) {
                struct vmmem_error *e = vmmem__errbuf();
                e->expected = count;
                e->completed = done;
            }
            return (int)got;
        }
        if (got == 0)
            return vmmem__err_partial(addr + done, count, done);
        done += (size_t)got;
    }
    return 0;
}

int vmmem_read_exact_from_fd(const vmmem_map *m, vmmem_gaddr_t addr, int fd, size_t count)
{
    return fd_exact(m, addr, fd, count, DIR_WRITE);
}

int vmmem_write_all_to_fd(const vmmem_map *m, vmmem_gaddr_t addr, int fd, size_t count)
{
    return fd_exact(m, addr, fd, count, DIR_READ);
}

/*
 * Differential fuzz target: random sequences of accesses to a guest memory
 * map, each checked against a reference model - a flat byte array over the
 * guest window that holds the regions, plus the region layout and one dirty
 * flag per (region, page).
 *
 * Per input, the first bytes choose the layout: 1-4 regions of 1 byte to
 * 12 KiB with holes or seams (touching regions) between them, some
 * read-only, placed at guest 0, in the middle of the address space, at a
 * random base, or ending exactly at UINT64_MAX; a dirty page size (64 B to
 * 8 KiB) and whether tracking starts on.  The map is built through the mmap
 * plugin (specs in a rotated order, so the core must sort them).  Then up to
 * MAX_OPS operations follow: read/write, read_slice/write_slice,
 * read_obj/write_obj, load/store, get_slice plus subslice/offset/split_at/
 * copy_to/copy_from/read/write/load/store/copy_to_slice on it, the slice
 * iterator, read_from_fd from a pipe or a memfd, write_to_fd into a pipe,
 * mark_dirty, is_dirty, host_address, check_range/checked_offset, tracking
 * on/off and harvests.  Every return code, every error detail the headers
 * promise (addr / expected / completed), every byte and every dirty page is
 * compared with the model; failed all-or-error calls must leave memory and
 * buffers untouched.
 *
 * Slice writes into read-only regions are generated too: they must fail
 * with VMMEM_EREAD_ONLY (copy_from / copy_to_slice: return 0) and change
 * nothing.  (They used to fault: fuzz/crashes/ keeps that input.)
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"

#define MAX_REGIONS 4
#define MAX_REGION_SIZE 0x3000u
#define MAX_GAP 0x3000u
#define MAX_OPS 64
#define SLACK 64 /* addresses up to SLACK below/after the window are generated */

static vmmem_registry *g_reg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (vmmem_registry_new(&g_reg) < 0)
        abort();
    fz_load_plugin(g_reg, "vmmem-mmap.so");
    return 0;
}

/* ---- the reference model ---- */

struct mregion {
    uint64_t start, last, size;
    uint64_t woff; /* offset of start in the window */
    bool ro;
    uint64_t pages;
    bool *dirty; /* [pages] */
};

struct model {
    uint64_t base;  /* guest address of window byte 0 */
    uint64_t wlen;  /* window length (end of the last region) */
    uint8_t *mem;   /* [wlen] */
    size_t n;
    struct mregion r[MAX_REGIONS];
    unsigned shift; /* log2 dirty page size */
    bool tracking;
    bool ever_on; /* bitmaps exist once tracking was switched on */
};

static long m_find(const struct model *md, uint64_t addr)
{
    for (size_t k = 0; k < md->n; k++)
        if (addr >= md->r[k].start && addr <= md->r[k].last)
            return (long)k;
    return -1;
}

static bool m_touching(const struct model *md, size_t k)
{
    return k + 1 < md->n && md->r[k].last != UINT64_MAX &&
           md->r[k + 1].start == md->r[k].last + 1;
}

/* Bytes of region k from addr on, clipped to want (want > 0). */
static uint64_t m_piece(const struct model *md, size_t k, uint64_t addr, uint64_t want)
{
    uint64_t avail_m1 = md->r[k].last - addr;
    return want - 1 <= avail_m1 ? want : avail_m1 + 1;
}

static uint8_t *m_ptr(struct model *md, uint64_t addr)
{
    return md->mem + (addr - md->base);
}

static void m_mark(struct model *md, size_t k, uint64_t off, uint64_t len)
{
    if (!md->tracking || len == 0)
        return;
    struct mregion *r = &md->r[k];
    for (uint64_t p = off >> md->shift; p <= (off + len - 1) >> md->shift; p++)
        r->dirty[p] = true;
}

/* Write bytes at addr (which the caller checked) and mark them. */
static void m_write(struct model *md, uint64_t addr, const uint8_t *src, uint64_t len)
{
    while (len > 0) {
        long k = m_find(md, addr);
        uint64_t n = m_piece(md, (size_t)k, addr, len);
        memcpy(m_ptr(md, addr), src, (size_t)n);
        m_mark(md, (size_t)k, addr - md->r[k].start, n);
        src += n;
        len -= n;
        addr += n;
    }
}

/* ---- the run ---- */

struct ctx {
    struct fz_in in;
    struct model md;
    vmmem_map *m;
    vmmem_harvest *h;
    uint8_t *buf, *buf2, *data; /* each wlen + 2 * SLACK bytes */
    size_t bufsz;
};

static const char *ename(int64_t rc)
{
    return vmmem_err_name((int)rc);
}

#define EXPECT_RC(got, want, what)                                                          \
    FZ_CHECK((int64_t)(got) == (int64_t)(want), "%s: got %s (%lld), model says %s (%lld)",  \
             what, ename(got), (long long)(got), ename(want), (long long)(want))

static uint64_t gen_addr(struct ctx *c)
{
    uint8_t sel = fz_u8(&c->in);
    if (sel >= 248)
        return fz_u64(&c->in);
    uint64_t span = c->md.wlen + 2 * SLACK;
    return c->md.base + (fz_u16(&c->in) % span) - SLACK;
}

static uint64_t gen_len(struct ctx *c)
{
    uint8_t sel = fz_u8(&c->in);
    if (sel < 160)
        return sel % 17;
    if (sel < 250)
        return fz_u16(&c->in) % (c->md.wlen + 2 * SLACK);
    return fz_u64(&c->in); /* huge: the library must never copy past what is backed */
}

static void fill_data(struct ctx *c, uint64_t len)
{
    size_t n = len < c->bufsz ? (size_t)len : c->bufsz;
    fz_bytes(&c->in, c->data, n < 64 ? n : 64);
    for (size_t i = 64; i < n; i++)
        c->data[i] = (uint8_t)(c->data[i % 64] + i / 64);
}

/* Model of vmmem_read/vmmem_write: bytes done or an error. */
static int64_t m_rw_some(struct model *md, uint64_t addr, uint64_t len, bool write)
{
    if (len == 0)
        return 0;
    if (len > (uint64_t)INT64_MAX)
        len = (uint64_t)INT64_MAX;
    long k = m_find(md, addr);
    if (k < 0)
        return VMMEM_EINVALID_ADDRESS;
    uint64_t done = 0;
    for (;;) {
        if (write && md->r[k].ro) {
            if (done == 0)
                return VMMEM_EREAD_ONLY;
            break;
        }
        uint64_t n = m_piece(md, (size_t)k, addr, len - done);
        done += n;
        if (done == len)
            break;
        addr += n;
        if (!m_touching(md, (size_t)k))
            break;
        k++;
    }
    return (int64_t)done;
}

/* Model of the all-or-error calls; *eaddr gets the error's address. */
static int m_rw_all(struct model *md, uint64_t addr, uint64_t len, bool write, uint64_t *eaddr)
{
    *eaddr = addr;
    if (len == 0)
        return 0;
    long k = m_find(md, addr);
    if (k < 0)
        return VMMEM_EINVALID_ADDRESS;
    uint64_t a = addr, done = 0;
    for (;;) {
        if (write && md->r[k].ro) {
            *eaddr = a;
            return VMMEM_EREAD_ONLY;
        }
        uint64_t n = m_piece(md, (size_t)k, a, len - done);
        done += n;
        if (done == len)
            return 0;
        if (md->r[k].last == UINT64_MAX)
            return VMMEM_EOVERFLOW;
        a += n;
        if (!m_touching(md, (size_t)k)) {
            *eaddr = a;
            return VMMEM_EPARTIAL;
        }
        k++;
    }
}

static void check_bytes(struct ctx *c, uint64_t addr, const uint8_t *got, uint64_t len,
                        const char *what)
{
    if (len == 0 || memcmp(got, m_ptr(&c->md, addr), (size_t)len) == 0)
        return;
    for (uint64_t i = 0; i < len; i++)
        FZ_CHECK(got[i] == *m_ptr(&c->md, addr + i), "%s: byte at 0x%llx is 0x%02x, model 0x%02x",
                 what, (unsigned long long)(addr + i), got[i], *m_ptr(&c->md, addr + i));
}

/* True when buf[from, to) still holds the 0xee fill. */
static bool untouched(const struct ctx *c, const uint8_t *buf, size_t from)
{
    static uint8_t fill[4096];
    if (fill[0] != 0xee)
        memset(fill, 0xee, sizeof fill);
    for (size_t i = from; i < c->bufsz; i += sizeof fill) {
        size_t n = c->bufsz - i < sizeof fill ? c->bufsz - i : sizeof fill;
        if (memcmp(buf + i, fill, n) != 0)
            return false;
    }
    return true;
}

static void op_read_write(struct ctx *c, bool write)
{
    uint64_t addr = gen_addr(c), len = gen_len(c);
    int64_t want = m_rw_some(&c->md, addr, len, write);
    int64_t got;
    if (write) {
        fill_data(c, len);
        got = vmmem_write(c->m, addr, c->data, (size_t)len);
    } else {
        memset(c->buf, 0xee, c->bufsz);
        got = vmmem_read(c->m, addr, c->buf, (size_t)len);
    }
    EXPECT_RC(got, want, write ? "vmmem_write" : "vmmem_read");
    if (got < 0) {
        FZ_CHECK(vmmem_last_error()->code == got && vmmem_last_error()->addr == addr,
                 "error detail addr 0x%llx, want 0x%llx",
                 (unsigned long long)vmmem_last_error()->addr, (unsigned long long)addr);
        return;
    }
    if (write) {
        m_write(&c->md, addr, c->data, (uint64_t)got);
    } else {
        check_bytes(c, addr, c->buf, (uint64_t)got, "vmmem_read");
        FZ_CHECK(untouched(c, c->buf, (size_t)got),
                 "vmmem_read wrote past the %lld bytes it returned", (long long)got);
    }
}

static void op_rw_all(struct ctx *c, bool write, bool obj)
{
    uint64_t addr = gen_addr(c);
    uint64_t len = obj ? (uint64_t)(fz_u8(&c->in) % 17) : gen_len(c);
    uint64_t eaddr;
    int want = m_rw_all(&c->md, addr, len, write, &eaddr);
    int got;
    memset(c->buf, 0xee, c->bufsz);
    if (write) {
        fill_data(c, len);
        got = obj ? vmmem_write_obj(c->m, addr, c->data, (size_t)len)
                  : vmmem_write_slice(c->m, addr, c->data, (size_t)len);
    } else {
        got = obj ? vmmem_read_obj(c->m, addr, c->buf, (size_t)len)
                  : vmmem_read_slice(c->m, addr, c->buf, (size_t)len);
    }
    EXPECT_RC(got, want, obj ? (write ? "write_obj" : "read_obj")
                             : (write ? "write_slice" : "read_slice"));
    if (got < 0) {
        const struct vmmem_error *e = vmmem_last_error();
        FZ_CHECK(e->code == got, "last_error code");
        FZ_CHECK(e->addr == eaddr, "error addr 0x%llx, model 0x%llx",
                 (unsigned long long)e->addr, (unsigned long long)eaddr);
        if (got == VMMEM_EPARTIAL)
            FZ_CHECK(e->expected == len && e->completed == 0, "PARTIAL detail %llu/%llu",
                     (unsigned long long)e->completed, (unsigned long long)e->expected);
        if (!write)
            FZ_CHECK(untouched(c, c->buf, 0), "failed read touched the buffer");
        return; /* memory is compared with the model at the end */
    }
    if (write)
        m_write(&c->md, addr, c->data, len);
    else
        check_bytes(c, addr, c->buf, len, "read_slice/obj");
}

static const vmmem_order k_orders[] = {VMMEM_RELAXED, (vmmem_order)1, VMMEM_ACQUIRE,
                                       VMMEM_RELEASE, VMMEM_ACQ_REL,  VMMEM_SEQ_CST,
                                       (vmmem_order)6};

static bool order_ok(vmmem_order o, bool store)
{
    return o == VMMEM_RELAXED || o == VMMEM_SEQ_CST ||
           (store ? o == VMMEM_RELEASE : o == VMMEM_ACQUIRE);
}

static uint64_t m_le(struct model *md, uint64_t addr, size_t size)
{
    uint64_t v = 0;
    for (size_t i = size; i-- > 0;)
        v = v << 8 | *m_ptr(md, addr + i);
    return v;
}

static void op_atomic(struct ctx *c, bool store)
{
    static const size_t sizes[] = {1, 2, 4, 8, 3, 0, 16, 8};
    uint8_t sel = fz_u8(&c->in);
    size_t size = sizes[sel & 7];
    vmmem_order order = k_orders[(sel >> 3) % 7];
    if ((sel >> 6) != 0)
        order = store ? VMMEM_RELEASE : VMMEM_ACQUIRE; /* mostly valid */
    uint64_t addr = gen_addr(c);
    if (fz_u8(&c->in) & 1) /* mostly aligned */
        addr &= ~(uint64_t)(size ? size - 1 : 0);
    uint64_t val = fz_u64(&c->in);
    struct model *md = &c->md;
    int want;
    long k = -1;
    if (size != 1 && size != 2 && size != 4 && size != 8)
        want = -EINVAL;
    else if (!order_ok(order, store))
        want = -EINVAL;
    else if (addr & (size - 1))
        want = VMMEM_EMISALIGNED;
    else if ((k = m_find(md, addr)) < 0)
        want = VMMEM_EINVALID_ADDRESS;
    else if (size - 1 > md->r[k].last - addr)
        want = VMMEM_ECROSSES_REGION;
    else if (store && md->r[k].ro)
        want = VMMEM_EREAD_ONLY;
    else if ((addr - md->r[k].start) & (size - 1)) /* host bases are page-aligned */
        want = VMMEM_EMISALIGNED;
    else
        want = 0;
    uint64_t got_val = 0x1234;
    int got = store ? vmmem_store(c->m, addr, size, val, order)
                    : vmmem_load(c->m, addr, size, &got_val, order);
    EXPECT_RC(got, want, store ? "vmmem_store" : "vmmem_load");
    if (got < 0) {
        FZ_CHECK(got_val == 0x1234, "failed load wrote its value");
        return;
    }
    if (store) {
        uint8_t b[8] = {0};
        for (size_t i = 0; i < size; i++)
            b[i] = (uint8_t)(val >> (8 * i));
        m_write(md, addr, b, size);
    } else {
        FZ_CHECK(got_val == m_le(md, addr, size), "load 0x%llx, model 0x%llx",
                 (unsigned long long)got_val, (unsigned long long)m_le(md, addr, size));
    }
}

/* ---- slices ---- */

/* The model of a slice: a window of one region. */
struct mslice {
    size_t k;
    uint64_t addr; /* guest address of byte 0 */
    uint64_t len;
};

static int get_slice(struct ctx *c, uint64_t addr, uint64_t len, vmmem_slice *s,
                     struct mslice *ms)
{
    long k = m_find(&c->md, addr);
    int want;
    if (k < 0)
        want = VMMEM_EINVALID_ADDRESS;
    else if (len > 0 && len - 1 > c->md.r[k].last - addr)
        want = VMMEM_ECROSSES_REGION;
    else
        want = 0;
    int got = vmmem_get_slice(c->m, addr, (size_t)len, s);
    EXPECT_RC(got, want, "vmmem_get_slice");
    if (got < 0)
        return got;
    FZ_CHECK(s->len == len && s->guard == NULL, "slice length %zu, want %llu", s->len,
             (unsigned long long)len);
    *ms = (struct mslice){(size_t)k, addr, len};
    if (len > 0) {
        void *host = NULL;
        size_t hl = (size_t)len;
        FZ_CHECK(vmmem_map_host_address(c->m, addr, &host, &hl) == 0 && host == s->ptr &&
                     hl == len,
                 "slice pointer is not the host address");
    }
    return 0;
}

/* Model of the slice bounds check: OVERFLOW when off+len wraps, else
 * OUT_OF_BOUNDS past the end (error addr = off + len). */
static int m_bounds(const struct mslice *ms, uint64_t off, uint64_t len, uint64_t *eaddr)
{
    *eaddr = off;
    if (len > SIZE_MAX - off)
        return VMMEM_EOVERFLOW;
    *eaddr = off + len;
    return off + len > ms->len ? VMMEM_EOUT_OF_BOUNDS : 0;
}

static void check_err_addr(uint64_t want)
{
    FZ_CHECK(vmmem_last_error()->addr == want, "error addr 0x%llx, model 0x%llx",
             (unsigned long long)vmmem_last_error()->addr, (unsigned long long)want);
}

static uint64_t gen_soff(struct ctx *c, const struct mslice *ms)
{
    uint8_t sel = fz_u8(&c->in);
    if (sel < 200)
        return fz_u16(&c->in) % (ms->len + 9);
    if (sel < 250)
        return ms->len + (sel & 7);
    return fz_u64(&c->in);
}

static bool may_write(struct ctx *c, const struct mslice *ms)
{
    return !c->md.r[ms->k].ro;
}

static void slice_write_model(struct ctx *c, const struct mslice *ms, uint64_t off,
                              const uint8_t *src, uint64_t n)
{
    memmove(m_ptr(&c->md, ms->addr + off), src, (size_t)n);
    m_mark(&c->md, ms->k, ms->addr + off - c->md.r[ms->k].start, n);
}

static void op_slice(struct ctx *c)
{
    uint64_t addr = gen_addr(c), len = gen_len(c);
    vmmem_slice orig, s;
    struct mslice ms;
    if (get_slice(c, addr, len, &orig, &ms) < 0)
        return;
    s = orig;
    unsigned nsub = 1 + fz_u8(&c->in) % 4;
    for (unsigned i = 0; i < nsub; i++) {
        uint8_t op = fz_u8(&c->in) % 11;
        uint64_t off = gen_soff(c, &ms), l = gen_soff(c, &ms), eaddr;
        vmmem_slice d = {0}, d2 = {0};
        int got, want;
        switch (op) {
        case 0: /* subslice */
            want = m_bounds(&ms, off, l, &eaddr);
            got = vmmem_slice_subslice(&s, (size_t)off, (size_t)l, &d);
            EXPECT_RC(got, want, "slice_subslice");
            if (got < 0) {
                check_err_addr(eaddr);
                break;
            }
            FZ_CHECK(d.len == l && d.ptr == s.ptr + off && d.bitmap == s.bitmap &&
                         d.bitmap_offset == s.bitmap_offset + off,
                     "subslice fields");
            s = d;
            ms.addr += off;
            ms.len = l;
            break;
        case 1: /* offset */
            want = off > ms.len ? VMMEM_EOUT_OF_BOUNDS : 0;
            got = vmmem_slice_offset(&s, (size_t)off, &d);
            EXPECT_RC(got, want, "slice_offset");
            if (got < 0) {
                check_err_addr(off);
                break;
            }
            FZ_CHECK(d.len == ms.len - off && d.ptr == s.ptr + off, "offset fields");
            s = d;
            ms.addr += off;
            ms.len -= off;
            break;
        case 2: /* split_at */
            want = off > ms.len ? VMMEM_EOUT_OF_BOUNDS : 0;
            got = vmmem_slice_split_at(&s, (size_t)off, &d, &d2);
            EXPECT_RC(got, want, "slice_split_at");
            if (got < 0) {
                check_err_addr(off);
                break;
            }
            FZ_CHECK(d.len == off && d.ptr == s.ptr && d2.len == ms.len - off &&
                         d2.ptr == s.ptr + off,
                     "split fields");
            if (l & 1) {
                s = d2;
                ms.addr += off;
                ms.len -= off;
            } else {
                s = d;
                ms.len = off;
            }
            break;
        case 3: { /* copy_to */
            memset(c->buf, 0xee, c->bufsz);
            size_t n = vmmem_slice_copy_to(&s, c->buf, (size_t)l);
            FZ_CHECK(n == (l < ms.len ? l : ms.len), "copy_to returned %zu", n);
            check_bytes(c, ms.addr, c->buf, n, "slice_copy_to");
            FZ_CHECK(untouched(c, c->buf, n), "copy_to wrote past its count");
            break;
        }
        case 4: { /* copy_from */
            fill_data(c, l);
            size_t n = vmmem_slice_copy_from(&s, c->data, (size_t)l);
            if (!may_write(c, &ms)) {
                FZ_CHECK(n == 0 && vmmem_last_error()->code == VMMEM_EREAD_ONLY,
                         "copy_from into a read-only slice returned %zu", n);
                break;
            }
            FZ_CHECK(n == (l < ms.len ? l : ms.len), "copy_from returned %zu", n);
            slice_write_model(c, &ms, 0, c->data, n);
            break;
        }
        case 5: /* read */
            want = m_bounds(&ms, off, l, &eaddr);
            memset(c->buf, 0xee, c->bufsz);
            got = vmmem_slice_read(&s, (size_t)off, c->buf, (size_t)l);
            EXPECT_RC(got, want, "slice_read");
            if (got < 0) {
                check_err_addr(eaddr);
                FZ_CHECK(untouched(c, c->buf, 0), "failed slice_read touched the buffer");
                break;
            }
            check_bytes(c, ms.addr + off, c->buf, l, "slice_read");
            break;
        case 6: /* write */
            want = m_bounds(&ms, off, l, &eaddr);
            if (want == 0 && !may_write(c, &ms))
                want = VMMEM_EREAD_ONLY;
            fill_data(c, want == 0 ? l : 0);
            got = vmmem_slice_write(&s, (size_t)off, c->data, (size_t)l);
            EXPECT_RC(got, want, "slice_write");
            if (got < 0) {
                if (got != VMMEM_EREAD_ONLY)
                    check_err_addr(eaddr);
                break;
            }
            slice_write_model(c, &ms, off, c->data, l);
            break;
        case 7:
        case 8: { /* load / store */
            bool store = op == 8;
            static const size_t sizes[] = {1, 2, 4, 8, 1, 2, 4, 5};
            size_t size = sizes[l & 7];
            vmmem_order order = (l & 8) ? k_orders[(l >> 4) % 7] : VMMEM_SEQ_CST;
            uint64_t val = fz_u64(&c->in), gv = 0x1234;
            uint64_t hoff = ms.addr + off - c->md.r[ms.k].start; /* host page offset */
            if (size != 1 && size != 2 && size != 4 && size != 8)
                want = -EINVAL;
            else if (!order_ok(order, store))
                want = -EINVAL;
            else if ((want = m_bounds(&ms, off, size, &eaddr)) < 0)
                ;
            else if (store && !may_write(c, &ms))
                want = VMMEM_EREAD_ONLY;
            else if (hoff & (size - 1))
                want = VMMEM_EMISALIGNED;
            got = store ? vmmem_slice_store(&s, (size_t)off, size, val, order)
                        : vmmem_slice_load(&s, (size_t)off, size, &gv, order);
            EXPECT_RC(got, want, store ? "slice_store" : "slice_load");
            if (got < 0)
                break;
            if (store) {
                uint8_t b[8] = {0};
                for (size_t j = 0; j < size; j++)
                    b[j] = (uint8_t)(val >> (8 * j));
                slice_write_model(c, &ms, off, b, size);
            } else {
                FZ_CHECK(gv == m_le(&c->md, ms.addr + off, size), "slice_load value");
            }
            break;
        }
        case 9: { /* copy_to_slice: another slice of the map as destination */
            vmmem_slice o;
            struct mslice mo;
            uint64_t oaddr = gen_addr(c), olen = gen_len(c);
            if (get_slice(c, oaddr, olen, &o, &mo) < 0)
                break;
            bool rev = l & 1; /* which one is the destination */
            const struct mslice *msrc = rev ? &mo : &ms, *mdst = rev ? &ms : &mo;
            if (!may_write(c, mdst)) {
                size_t n = rev ? vmmem_slice_copy_to_slice(&o, &s)
                               : vmmem_slice_copy_to_slice(&s, &o);
                FZ_CHECK(n == 0 && vmmem_last_error()->code == VMMEM_EREAD_ONLY,
                         "copy_to_slice into a read-only slice returned %zu", n);
            } else {
                size_t n = rev ? vmmem_slice_copy_to_slice(&o, &s)
                               : vmmem_slice_copy_to_slice(&s, &o);
                uint64_t want_n = msrc->len < mdst->len ? msrc->len : mdst->len;
                FZ_CHECK(n == want_n, "copy_to_slice returned %zu, want %llu", n,
                         (unsigned long long)want_n);
                uint8_t *tmp = malloc(n ? n : 1);
                FZ_CHECK(tmp != NULL, "out of memory");
                memcpy(tmp, m_ptr(&c->md, msrc->addr), n);
                slice_write_model(c, mdst, 0, tmp, n);
                free(tmp);
            }
            vmmem_slice_release(&o);
            break;
        }
        default: { /* from_buffer: a slice over host memory, copied into ours */
            fill_data(c, l);
            size_t bl = (size_t)(l < c->bufsz ? l : c->bufsz);
            vmmem_slice hb = vmmem_slice_from_buffer(c->data, bl);
            FZ_CHECK(hb.len == bl && hb.bitmap == NULL && hb.guard == NULL, "from_buffer");
            size_t n = vmmem_slice_copy_to_slice(&hb, &s);
            if (!may_write(c, &ms)) {
                FZ_CHECK(n == 0, "buffer copied into a read-only slice: %zu", n);
                break;
            }
            FZ_CHECK(n == (bl < ms.len ? bl : ms.len), "copy buffer slice to slice");
            slice_write_model(c, &ms, 0, c->data, n);
            break;
        }
        }
    }
    vmmem_slice_release(&orig);
    FZ_CHECK(orig.ptr == NULL && orig.len == 0, "release did not zero the slice");
}

static void op_iter(struct ctx *c)
{
    uint64_t addr = gen_addr(c), len = gen_len(c);
    struct model *md = &c->md;
    vmmem_slice_iter it;
    vmmem_slices_begin(&it, c->m, addr, len);
    uint64_t a = addr, rem = len;
    for (int guard = 0;; guard++) {
        FZ_CHECK(guard <= MAX_REGIONS + 1, "iterator does not end");
        vmmem_slice s;
        int want;
        long k = -1;
        uint64_t n = 0;
        if (rem == 0)
            want = 0;
        else if (rem - 1 > UINT64_MAX - a)
            want = VMMEM_EOVERFLOW;
        else if ((k = m_find(md, a)) < 0)
            want = VMMEM_EINVALID_ADDRESS;
        else {
            want = 1;
            n = m_piece(md, (size_t)k, a, rem);
        }
        int got = vmmem_slices_next(&it, &s);
        EXPECT_RC(got, want, "vmmem_slices_next");
        if (got < 0) {
            check_err_addr(a);
            FZ_CHECK(it.addr == a, "iterator addr after the error");
            FZ_CHECK(vmmem_slices_next(&it, &s) == 0, "iterator goes on after an error");
            return;
        }
        if (got == 0)
            return;
        FZ_CHECK(s.len == n, "iterator slice length %zu, model %llu", s.len,
                 (unsigned long long)n);
        check_bytes(c, a, s.ptr, n, "iterator slice");
        vmmem_slice_release(&s);
        a += n;
        rem -= n;
    }
}

/* ---- fd I/O ---- */

static void op_fd(struct ctx *c)
{
    uint8_t sel = fz_u8(&c->in);
    uint64_t addr = gen_addr(c), count = gen_len(c);
    struct model *md = &c->md;
    if (sel & 1) { /* write_to_fd into a pipe, read it back */
        int p[2];
        FZ_CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0, "pipe");
        int64_t want = m_rw_some(md, addr, count, false);
        int64_t got = vmmem_write_to_fd(c->m, addr, p[1], (size_t)count);
        EXPECT_RC(got, want, "vmmem_write_to_fd");
        if (got > 0) {
            ssize_t r = read(p[0], c->buf, c->bufsz);
            FZ_CHECK(r == got, "pipe holds %zd bytes, write_to_fd said %lld", r, (long long)got);
            check_bytes(c, addr, c->buf, (uint64_t)got, "write_to_fd");
        }
        close(p[0]);
        close(p[1]);
        return;
    }
    /* read_from_fd from a pipe (write end closed) or a memfd holding avail bytes. */
    uint64_t avail = fz_u16(&c->in) % (c->md.wlen + 1);
    fill_data(c, avail);
    int fd;
    if (sel & 2) {
        fd = memfd_create("fuzz", MFD_CLOEXEC);
        FZ_CHECK(fd >= 0, "memfd_create");
        FZ_CHECK(write(fd, c->data, (size_t)avail) == (ssize_t)avail, "memfd write");
        FZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
    } else {
        int p[2];
        FZ_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
        FZ_CHECK(fcntl(p[1], F_SETPIPE_SZ, 1 << 18) >= 0, "pipe size");
        FZ_CHECK(write(p[1], c->data, (size_t)avail) == (ssize_t)avail, "pipe write");
        close(p[1]);
        fd = p[0];
    }
    /* Model: region by region; a short read ends the call. */
    int64_t want;
    uint64_t total = 0, a = addr, left = avail;
    long k = count == 0 ? 0 : m_find(md, addr);
    if (count == 0) {
        want = 0;
    } else if (k < 0) {
        want = VMMEM_EINVALID_ADDRESS;
    } else {
        want = -1;
        for (;;) {
            if (md->r[k].ro) {
                if (total == 0)
                    want = VMMEM_EREAD_ONLY;
                break;
            }
            uint64_t n = m_piece(md, (size_t)k, a, count - total);
            uint64_t got = n < left ? n : left;
            m_write(md, a, c->data + (avail - left), got);
            left -= got;
            total += got;
            if (got < n || total == count)
                break;
            a += n;
            if (!m_touching(md, (size_t)k))
                break;
            k++;
        }
        if (want == -1)
            want = (int64_t)total;
    }
    int64_t got = vmmem_read_from_fd(c->m, addr, fd, (size_t)count);
    EXPECT_RC(got, want, "vmmem_read_from_fd");
    close(fd);
}

/* ---- dirty tracking ---- */

static void op_tracking(struct ctx *c)
{
    bool on = fz_u8(&c->in) & 1;
    FZ_CHECK(vmmem_map_set_dirty_tracking(c->m, on) == 0, "set_dirty_tracking");
    c->md.tracking = on;
    c->md.ever_on |= on;
    FZ_CHECK(vmmem_map_dirty_tracking(c->m) == on, "tracking switch reads back");
}

static void op_mark(struct ctx *c)
{
    uint64_t addr = gen_addr(c), len = gen_len(c);
    struct model *md = &c->md;
    int want = 0;
    if (len != 0) {
        if (len - 1 > UINT64_MAX - addr) {
            want = VMMEM_EOVERFLOW;
        } else {
            uint64_t eaddr;
            want = m_rw_all(md, addr, len, false, &eaddr) == 0 ? 0 : VMMEM_EINVALID_ADDRESS;
        }
    }
    bool backed = len == 0 || want == 0;
    FZ_CHECK(vmmem_map_check_range(c->m, addr, len) == backed, "check_range(0x%llx, %llu)",
             (unsigned long long)addr, (unsigned long long)len);
    int got = vmmem_map_mark_dirty(c->m, addr, len);
    EXPECT_RC(got, want, "vmmem_map_mark_dirty");
    if (got == 0)
        for (uint64_t a = addr, rem = len; rem > 0;) {
            long k = m_find(md, a);
            uint64_t n = m_piece(md, (size_t)k, a, rem);
            m_mark(md, (size_t)k, a - md->r[k].start, n);
            a += n;
            rem -= n;
        }
}

static void op_query(struct ctx *c)
{
    uint64_t addr = gen_addr(c);
    struct model *md = &c->md;
    long k = m_find(md, addr);
    FZ_CHECK(vmmem_map_check_address(c->m, addr) == (k >= 0), "check_address");
    uint64_t off = 77;
    const vmmem_region *r = vmmem_map_find(c->m, addr, &off);
    FZ_CHECK((r != NULL) == (k >= 0), "map_find");
    if (r != NULL)
        FZ_CHECK(vmmem_region_start(r) == md->r[k].start && off == addr - md->r[k].start,
                 "map_find region/offset");
    bool dirty = k >= 0 && md->ever_on &&
                 md->r[k].dirty[(addr - md->r[k].start) >> md->shift];
    FZ_CHECK(vmmem_map_is_dirty(c->m, addr) == dirty, "is_dirty(0x%llx) model %d",
             (unsigned long long)addr, dirty);
    /* host_address with a length. */
    size_t hl = (size_t)gen_len(c);
    size_t want_len = hl;
    void *host = NULL;
    int got = vmmem_map_host_address(c->m, addr, &host, &hl);
    EXPECT_RC(got, k >= 0 ? 0 : VMMEM_EINVALID_ADDRESS, "host_address");
    if (got == 0) {
        uint64_t avail = md->r[k].last - addr + 1;
        if (want_len != 0 && (uint64_t)want_len - 1 > md->r[k].last - addr)
            want_len = (size_t)avail;
        FZ_CHECK(hl == want_len, "host_address len %zu, want %zu", hl, want_len);
        check_bytes(c, addr, host, avail < 64 ? avail : 64, "host_address");
    }
    /* checked_offset */
    uint64_t base = gen_addr(c), o = gen_len(c), out = 99;
    int want;
    if (o > UINT64_MAX - base)
        want = VMMEM_EOVERFLOW;
    else
        want = m_find(md, base + o) >= 0 ? 0 : VMMEM_EINVALID_ADDRESS;
    got = vmmem_map_checked_offset(c->m, base, o, &out);
    EXPECT_RC(got, want, "checked_offset");
    FZ_CHECK(got < 0 ? out == 99 : out == base + o, "checked_offset output");
}

static void op_harvest(struct ctx *c)
{
    struct model *md = &c->md;
    int64_t got = vmmem_map_harvest(c->m, c->h);
    int64_t want = 0;
    for (size_t k = 0; k < md->n; k++)
        for (uint64_t p = 0; p < md->r[k].pages; p++)
            want += md->r[k].dirty[p];
    EXPECT_RC(got, want, "vmmem_map_harvest");
    FZ_CHECK(vmmem_harvest_regions(c->h) == md->n, "harvest regions");
    FZ_CHECK(vmmem_harvest_page_size(c->h) == (1ull << md->shift), "harvest page size");
    for (size_t k = 0; k < md->n; k++) {
        vmmem_gaddr_t start;
        uint64_t pages;
        const uint64_t *w = vmmem_harvest_bitmap(c->h, k, &start, &pages);
        FZ_CHECK(w != NULL && start == md->r[k].start && pages == md->r[k].pages,
                 "harvest bitmap %zu header", k);
        for (uint64_t p = 0; p < pages; p++)
            FZ_CHECK(((w[p / 64] >> (p % 64)) & 1) == md->r[k].dirty[p],
                     "harvest region %zu page %llu: got %d, model %d", k,
                     (unsigned long long)p, (int)((w[p / 64] >> (p % 64)) & 1),
                     md->r[k].dirty[p]);
        for (uint64_t p = pages; p < (pages + 63) / 64 * 64; p++)
            FZ_CHECK(((w[p / 64] >> (p % 64)) & 1) == 0, "bit past the last page");
    }
    /* Runs: maximal contiguous guest ranges covered by dirty pages. */
    vmmem_harvest_iter it = {0, 0};
    uint64_t gpa, len;
    bool open = false;
    uint64_t rs = 0, rl = 0; /* the model's current run */
    for (size_t k = 0; k <= md->n; k++) {
        for (uint64_t p = 0; k < md->n && p < md->r[k].pages; p++) {
            const struct mregion *r = &md->r[k];
            uint64_t a = r->start + (p << md->shift);
            uint64_t l = (p + 1 == r->pages) ? r->size - (p << md->shift) : 1ull << md->shift;
            if (r->dirty[p] && open && a == rs + rl && rs + rl != 0) {
                rl += l;
                continue;
            }
            if (open && (!r->dirty[p] || a != rs + rl || rs + rl == 0)) {
                FZ_CHECK(vmmem_harvest_next_run(c->h, &it, &gpa, &len),
                         "harvest runs end early; model run 0x%llx +0x%llx",
                         (unsigned long long)rs, (unsigned long long)rl);
                FZ_CHECK(gpa == rs && len == rl, "run 0x%llx +0x%llx, model 0x%llx +0x%llx",
                         (unsigned long long)gpa, (unsigned long long)len,
                         (unsigned long long)rs, (unsigned long long)rl);
                open = false;
            }
            if (r->dirty[p]) {
                open = true;
                rs = a;
                rl = l;
            }
        }
        if (k + 1 < md->n && !m_touching(md, k) && open) {
            FZ_CHECK(vmmem_harvest_next_run(c->h, &it, &gpa, &len) && gpa == rs && len == rl,
                     "run at a hole: 0x%llx +0x%llx", (unsigned long long)rs,
                     (unsigned long long)rl);
            open = false;
        }
    }
    if (open)
        FZ_CHECK(vmmem_harvest_next_run(c->h, &it, &gpa, &len) && gpa == rs && len == rl,
                 "last run 0x%llx +0x%llx", (unsigned long long)rs, (unsigned long long)rl);
    FZ_CHECK(!vmmem_harvest_next_run(c->h, &it, &gpa, &len),
             "extra harvest run 0x%llx +0x%llx", (unsigned long long)gpa,
             (unsigned long long)len);
    for (size_t k = 0; k < md->n; k++)
        memset(md->r[k].dirty, 0, (size_t)md->r[k].pages * sizeof(bool));
}

/* ---- setup ---- */

static bool build(struct ctx *c)
{
    struct model *md = &c->md;
    uint8_t b0 = fz_u8(&c->in), b1 = fz_u8(&c->in);
    md->n = 1 + b0 % MAX_REGIONS;
    md->shift = 6 + b1 % 8;
    md->tracking = md->ever_on = (b1 & 0x80) != 0;
    uint64_t cur = 0;
    bool shared[MAX_REGIONS];
    for (size_t k = 0; k < md->n; k++) {
        uint8_t f = fz_u8(&c->in);
        uint64_t gap = (f & 3) == 0 ? 0 : fz_u16(&c->in) % MAX_GAP;
        if (k == 0 && (f & 3) != 0)
            gap %= 64;
        uint64_t size = 1 + fz_u16(&c->in) % MAX_REGION_SIZE;
        if (f & 0x10)
            size = (size + 0xfff) & ~0xfffull; /* page-sized regions are common */
        struct mregion *r = &md->r[k];
        r->woff = cur + gap;
        r->size = size;
        r->ro = (f & 0xe0) == 0xe0;
        shared[k] = (f & 0x0c) == 0x0c;
        r->pages = (size + (1ull << md->shift) - 1) >> md->shift;
        cur = r->woff + size;
    }
    md->wlen = cur;
    switch ((b0 >> 2) & 3) {
    case 0:
        md->base = 0;
        break;
    case 1:
        md->base = 0x100000000ull + fz_u16(&c->in);
        break;
    case 2: /* the last region ends at UINT64_MAX */
        md->base = 0 - md->wlen;
        break;
    default:
        md->base = fz_u64(&c->in);
        if (md->wlen - 1 > UINT64_MAX - md->base)
            md->base = 0 - md->wlen;
        break;
    }
    for (size_t k = 0; k < md->n; k++) {
        struct mregion *r = &md->r[k];
        r->start = md->base + r->woff;
        r->last = r->start + (r->size - 1);
        r->dirty = calloc((size_t)r->pages, sizeof(bool));
        FZ_CHECK(r->dirty != NULL, "out of memory");
    }
    md->mem = calloc(1, (size_t)md->wlen);
    c->bufsz = (size_t)md->wlen + 2 * SLACK;
    c->buf = malloc(c->bufsz);
    c->buf2 = malloc(c->bufsz);
    c->data = malloc(c->bufsz);
    FZ_CHECK(md->mem && c->buf && c->buf2 && c->data, "out of memory");

    struct vmmem_option ro_opt[2] = {{"prot", "r"}, {"shared", ""}};
    struct vmmem_option sh_opt[1] = {{"shared", ""}};
    struct vmmem_region_spec specs[MAX_REGIONS];
    size_t rot = b1 % md->n;
    for (size_t k = 0; k < md->n; k++) {
        const struct mregion *r = &md->r[(k + rot) % md->n];
        bool sh = shared[(k + rot) % md->n];
        specs[k] = (struct vmmem_region_spec){"mmap", r->start, r->size, NULL, 0, NULL};
        if (r->ro) {
            specs[k].options = ro_opt;
            specs[k].n_options = sh ? 2 : 1;
        } else if (sh) {
            specs[k].options = sh_opt;
            specs[k].n_options = 1;
        }
    }
    struct vmmem_map_options o = {.struct_size = sizeof o,
                                  .flags = md->tracking ? VMMEM_MAP_DIRTY_TRACKING : 0,
                                  .dirty_page_size = 1ull << md->shift};
    int rc = vmmem_map_new(&c->m, g_reg, specs, md->n, &o);
    FZ_CHECK(rc == 0, "building the map failed: %s", vmmem_err_name(rc));
    FZ_CHECK(vmmem_map_num_regions(c->m) == md->n, "region count");
    for (size_t k = 0; k < md->n; k++) {
        const vmmem_region *r = vmmem_map_region(c->m, k);
        FZ_CHECK(vmmem_region_start(r) == md->r[k].start &&
                     vmmem_region_size(r) == md->r[k].size,
                 "region %zu is [0x%llx +0x%llx], model [0x%llx +0x%llx]", k,
                 (unsigned long long)vmmem_region_start(r),
                 (unsigned long long)vmmem_region_size(r), (unsigned long long)md->r[k].start,
                 (unsigned long long)md->r[k].size);
    }
    FZ_CHECK(vmmem_harvest_new(c->m, &c->h) == 0, "harvest_new");
    return true;
}

static void final_compare(struct ctx *c)
{
    struct model *md = &c->md;
    for (size_t k = 0; k < md->n; k++) {
        const struct mregion *r = &md->r[k];
        memset(c->buf, 0, c->bufsz);
        FZ_CHECK(vmmem_read_slice(c->m, r->start, c->buf, (size_t)r->size) == 0,
                 "final read of region %zu", k);
        check_bytes(c, r->start, c->buf, r->size, "final contents");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.in = (struct fz_in){data, size};
    build(&c);
    for (int i = 0; i < MAX_OPS && c.in.n > 0; i++) {
        switch (fz_u8(&c.in) % 16) {
        case 0: op_read_write(&c, false); break;
        case 1: op_read_write(&c, true); break;
        case 2: op_rw_all(&c, false, false); break;
        case 3: op_rw_all(&c, true, false); break;
        case 4: op_rw_all(&c, false, true); break;
        case 5: op_rw_all(&c, true, true); break;
        case 6: op_atomic(&c, false); break;
        case 7: op_atomic(&c, true); break;
        case 8:
        case 9: op_slice(&c); break;
        case 10: op_iter(&c); break;
        case 11: op_fd(&c); break;
        case 12: op_tracking(&c); break;
        case 13: op_mark(&c); break;
        case 14: op_query(&c); break;
        default: op_harvest(&c); break;
        }
    }
    final_compare(&c);
    op_harvest(&c);
    vmmem_harvest_free(c.h);
    vmmem_map_unref(c.m);
    for (size_t k = 0; k < c.md.n; k++)
        free(c.md.r[k].dirty);
    free(c.md.mem);
    free(c.buf);
    free(c.buf2);
    free(c.data);
    return 0;
}

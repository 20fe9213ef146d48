/*
 * Split virtqueues and virtio-blk requests, all guest memory through
 * libvmmem: descriptors with read_obj, ring indexes with acquire loads and
 * release stores, disk data with vmmem_preadv_from_fd / vmmem_pwritev_to_fd
 * straight between the image and guest memory.  Every write goes through
 * the library, so once a vhost-user log is attached (SET_LOG_BASE) every
 * page written here is marked in it.
 *
 * A request whose chain is malformed (a loop, an index past the table, a
 * buffer past guest memory, a readable buffer after a writable one, a
 * nested indirect table) is never followed further: it completes with
 * VIRTIO_BLK_S_IOERR written to the last byte of the last valid writable
 * buffer seen, or with used length 0 when there is none.  A ring the driver
 * broke as a whole (a head index past the ring, an available index that
 * jumps by more than the ring size, rings outside memory) is stopped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk.h"

void blk_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vhost-user-blk: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void blk_trace(const char *fmt, ...)
{
    static FILE *f;
    static int state; /* 0 unknown, 1 on, 2 off */
    if (state == 0) {
        const char *path = getenv("VMMEM_VUBLK_TRACE");
        f = path && *path ? fopen(path, "a") : NULL;
        state = f ? 1 : 2;
    }
    if (state != 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    if (fmt[0] != 'W')
        fflush(f); /* the rest at exit */
    va_end(ap);
}

#define TRACE_W(gpa, len, what)                                                                    \
    blk_trace("W 0x%" PRIx64 " 0x%" PRIx64 " %s", (uint64_t)(gpa), (uint64_t)(len), (what))

void vq_reset(struct vq *q, unsigned index)
{
    memset(q, 0, sizeof *q);
    q->index = index;
    q->kick_fd = q->call_fd = q->err_fd = -1;
}

static int broken(struct vq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int broken(struct vq *q, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    blk_log("queue %u stopped: %s", q->index, buf);
    q->broken = true;
    return -1;
}

int vq_translate(struct dev *d, struct vq *q)
{
    q->addr_ok = false;
    if (!q->addr_set)
        return 0;
    uint64_t len = 1;
    if (vmmem_vhost_uaddr_to_gpa(d->vh, q->desc_ua, &q->desc, &len) < 0 ||
        vmmem_vhost_uaddr_to_gpa(d->vh, q->avail_ua, &q->avail, &len) < 0 ||
        vmmem_vhost_uaddr_to_gpa(d->vh, q->used_ua, &q->used, &len) < 0) {
        blk_log("queue %u: ring address not in guest memory: %s", q->index, vmmem_last_message());
        return -1;
    }
    if ((q->desc & 15) || (q->avail & 1) || (q->used & 3)) {
        blk_log("queue %u: misaligned ring (desc 0x%" PRIx64 " avail 0x%" PRIx64
                " used 0x%" PRIx64 ")",
                q->index, q->desc, q->avail, q->used);
        return -1;
    }
    q->addr_ok = true;
    return 0;
}

/* The rings of q are whole in m (checked at each pass: memory can go). */
static bool rings_ok(const struct vq *q, const vmmem_map *m)
{
    uint64_t n = q->num;
    return vmmem_map_check_range(m, q->desc, 16 * n) &&
           vmmem_map_check_range(m, q->avail, 6 + 2 * n) &&
           vmmem_map_check_range(m, q->used, 6 + 8 * n);
}

int vq_start(struct vq *q, const vmmem_map *m)
{
    uint64_t v;
    if (!q->addr_ok || q->num == 0)
        return 0; /* read at the first pass that can run */
    if (vmmem_load(m, q->used + 2, 2, &v, VMMEM_ACQUIRE) < 0)
        return broken(q, "used ring at 0x%" PRIx64 ": %s", q->used, vmmem_last_message());
    q->used_idx = (uint16_t)v;
    return 0;
}

/* Walk the chain at head into d->segs; the number of segments, or -1 for
 * a malformed chain (then *nseg holds the valid prefix). */
static int walk_chain(struct dev *d, struct vq *q, const vmmem_map *m, uint16_t head,
                      size_t *nseg)
{
    uint64_t table = q->desc;
    uint32_t tsize = q->num, idx = head, steps = 0;
    bool in_indirect = false, seen_write = false;
    size_t n = 0;
    *nseg = 0;
    for (;;) {
        if (steps++ >= tsize) /* longer than its table: a loop */
            return -1;
        uint8_t raw[16];
        if (vmmem_read_obj(m, table + 16ull * idx, raw, sizeof raw) < 0)
            return -1;
        uint64_t addr = vmmem_le64_load(raw);
        uint32_t len = vmmem_le32_load(raw + 8);
        uint16_t flags = vmmem_le16_load(raw + 12);
        uint16_t next = vmmem_le16_load(raw + 14);
        if (flags & VRING_DESC_F_INDIRECT) {
            if (in_indirect || (flags & VRING_DESC_F_NEXT) || len == 0 || (len & 15) ||
                len / 16 > VQ_MAX_SEGS)
                return -1;
            table = addr;
            tsize = len / 16;
            idx = 0;
            steps = 0;
            in_indirect = true;
            if (!vmmem_map_check_range(m, table, len))
                return -1;
            continue;
        }
        bool w = (flags & VRING_DESC_F_WRITE) != 0;
        if ((!w && seen_write) || n == VQ_MAX_SEGS || !vmmem_map_check_range(m, addr, len))
            return -1;
        seen_write |= w;
        d->segs[n++] = (struct seg){addr, len, w};
        *nseg = n;
        if (!(flags & VRING_DESC_F_NEXT))
            return (int)n;
        if (next >= tsize)
            return -1;
        idx = next;
    }
}

static uint8_t do_request(struct dev *d, const vmmem_map *m, size_t nseg, uint32_t *written)
{
    /* header: the first 16 readable bytes */
    uint8_t hdr[16];
    size_t got = 0, i = 0, hdr_seg = 0;
    uint32_t hdr_off = 0;
    for (; i < nseg && !d->segs[i].write && got < sizeof hdr; i++) {
        size_t k = d->segs[i].len;
        if (k > sizeof hdr - got)
            k = sizeof hdr - got;
        if (vmmem_read_slice(m, d->segs[i].addr, hdr + got, k) < 0)
            return VIRTIO_BLK_S_IOERR;
        got += k;
        hdr_seg = i;
        hdr_off = (uint32_t)k;
    }
    if (got < sizeof hdr) {
        d->st.malformed++;
        return VIRTIO_BLK_S_IOERR;
    }
    uint32_t type = vmmem_le32_load(hdr);
    uint64_t sector = vmmem_le64_load(hdr + 8);
    /* the data: the rest of the readable bytes (OUT) or the writable bytes
     * but the last (IN, GET_ID) */
    size_t nd = 0;
    uint64_t dlen = 0;
    if (type == VIRTIO_BLK_T_OUT) {
        for (size_t k = hdr_seg; k < nseg && !d->segs[k].write; k++) {
            uint32_t skip = k == hdr_seg ? hdr_off : 0;
            if (d->segs[k].len > skip) {
                d->data[nd++] = (struct vmmem_gvec){d->segs[k].addr + skip, d->segs[k].len - skip};
                dlen += d->segs[k].len - skip;
            }
        }
    } else {
        for (size_t k = 0; k < nseg; k++) {
            if (!d->segs[k].write)
                continue;
            uint32_t len = d->segs[k].len - (k == nseg - 1 ? 1 : 0);
            if (len > 0) {
                d->data[nd++] = (struct vmmem_gvec){d->segs[k].addr, len};
                dlen += len;
            }
        }
    }
    uint64_t limit = d->capacity * SECTOR;
    switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        if (type == VIRTIO_BLK_T_OUT && d->read_only) {
            d->st.ioerr++;
            return VIRTIO_BLK_S_IOERR;
        }
        if (sector > limit / SECTOR || dlen > limit - sector * SECTOR) {
            d->st.ioerr++;
            return VIRTIO_BLK_S_IOERR;
        }
        int64_t rc = type == VIRTIO_BLK_T_IN
                         ? vmmem_preadv_from_fd(m, d->data, nd, d->image_fd, sector * SECTOR)
                         : vmmem_pwritev_to_fd(m, d->data, nd, d->image_fd, sector * SECTOR);
        if (rc < 0 || (uint64_t)rc != dlen) {
            blk_log("%s of %" PRIu64 " bytes at sector %" PRIu64 ": %s",
                    type == VIRTIO_BLK_T_IN ? "read" : "write", dlen, sector,
                    rc < 0 ? vmmem_last_message() : "short transfer");
            d->st.ioerr++;
            return VIRTIO_BLK_S_IOERR;
        }
        if (type == VIRTIO_BLK_T_IN) {
            for (size_t k = 0; k < nd; k++)
                TRACE_W(d->data[k].addr, d->data[k].len, "in");
            *written = (uint32_t)dlen;
            d->st.in++;
        } else {
            d->st.out++;
        }
        return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_FLUSH:
        d->st.flush++;
        return fdatasync(d->image_fd) == 0 || d->read_only ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
    case VIRTIO_BLK_T_GET_ID: {
        size_t left = VIRTIO_BLK_ID_BYTES, off = 0;
        for (size_t k = 0; k < nd && left > 0; k++) {
            size_t c = d->data[k].len < left ? (size_t)d->data[k].len : left;
            if (vmmem_write_slice(m, d->data[k].addr, d->serial + off, c) < 0)
                return VIRTIO_BLK_S_IOERR;
            TRACE_W(d->data[k].addr, c, "id");
            off += c;
            left -= c;
        }
        *written = (uint32_t)off;
        d->st.get_id++;
        return VIRTIO_BLK_S_OK;
    }
    default:
        d->st.unsupported++;
        return VIRTIO_BLK_S_UNSUPP;
    }
}

/* Serve the chain at head; the used length. */
static uint32_t serve(struct dev *d, struct vq *q, const vmmem_map *m, uint16_t head)
{
    size_t nseg = 0;
    int n = walk_chain(d, q, m, head, &nseg);
    /* the status byte: the last byte of the last writable buffer */
    size_t last_w = nseg;
    for (size_t k = nseg; k > 0; k--)
        if (d->segs[k - 1].write && d->segs[k - 1].len > 0) {
            last_w = k - 1;
            break;
        }
    if (n < 0 || last_w == nseg || last_w != nseg - 1) {
        d->st.malformed++;
        if (last_w == nseg)
            return 0;
        uint8_t st = VIRTIO_BLK_S_IOERR;
        const struct seg *s = &d->segs[last_w];
        TRACE_W(s->addr + s->len - 1, 1, "status");
        return vmmem_write_obj(m, s->addr + s->len - 1, &st, 1) == 0 ? 1 : 0;
    }
    uint32_t written = 0;
    uint8_t st = do_request(d, m, nseg, &written);
    if (st != VIRTIO_BLK_S_OK)
        written = 0;
    const struct seg *s = &d->segs[last_w];
    if (vmmem_write_obj(m, s->addr + s->len - 1, &st, 1) < 0)
        return 0;
    TRACE_W(s->addr + s->len - 1, 1, "status");
    return written + 1;
}

/* Mark a used-ring write at the SET_VRING_ADDR log address as well, when
 * the front-end logs the used ring somewhere other than where it is. */
static void log_used(const struct vq *q, const vmmem_map *m, uint64_t off, uint64_t len)
{
    if ((q->addr_flags & 1) && q->log_ga != q->used)
        (void)vmmem_map_mark_dirty(m, q->log_ga + off, len); /* ignored when unbacked */
}

static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

int vq_process(struct dev *d, struct vq *q, const vmmem_map *m)
{
    if (!q->started || !q->enabled || !q->addr_ok || q->broken || q->num == 0)
        return 0;
    if (!rings_ok(q, m))
        return broken(q, "rings are not in guest memory");
    uint16_t old_used = q->used_idx;
    int done = 0;
    for (;;) {
        uint64_t v;
        if (vmmem_load(m, q->avail + 2, 2, &v, VMMEM_ACQUIRE) < 0)
            return broken(q, "avail index: %s", vmmem_last_message());
        uint16_t avail_idx = (uint16_t)v;
        if ((uint16_t)(avail_idx - q->last_avail) > q->num)
            return broken(q, "available index %u is %u ahead of %u (ring size %u)", avail_idx,
                          (uint16_t)(avail_idx - q->last_avail), q->last_avail, q->num);
        if (avail_idx == q->last_avail) {
            if (!d->event_idx)
                break;
            /* tell the driver where to kick, then look again (seq_cst store
             * then load: the driver's index store cannot slip between) */
            uint64_t ev_off = 4 + 8ull * q->num;
            if (vmmem_store(m, q->used + ev_off, 2, q->last_avail, VMMEM_SEQ_CST) < 0)
                return broken(q, "avail_event: %s", vmmem_last_message());
            log_used(q, m, ev_off, 2);
            TRACE_W(q->used + ev_off, 2, "avail_event");
            if (vmmem_load(m, q->avail + 2, 2, &v, VMMEM_SEQ_CST) < 0)
                return broken(q, "avail index: %s", vmmem_last_message());
            if ((uint16_t)v == q->last_avail)
                break;
            continue;
        }
        while (q->last_avail != avail_idx) {
            if (vmmem_load(m, q->avail + 4 + 2ull * (q->last_avail % q->num), 2, &v,
                           VMMEM_RELAXED) < 0)
                return broken(q, "avail ring: %s", vmmem_last_message());
            uint16_t head = (uint16_t)v;
            if (head >= q->num)
                return broken(q, "head index %u past ring size %u", head, q->num);
            uint32_t len = serve(d, q, m, head);
            q->last_avail++;
            uint8_t elem[8];
            vmmem_le32_store(elem, head);
            vmmem_le32_store(elem + 4, len);
            uint64_t off = 4 + 8ull * (q->used_idx % q->num);
            if (vmmem_write_obj(m, q->used + off, elem, sizeof elem) < 0)
                return broken(q, "used ring: %s", vmmem_last_message());
            log_used(q, m, off, sizeof elem);
            TRACE_W(q->used + off, sizeof elem, "used_elem");
            q->used_idx++;
            q->served++;
            done++;
        }
        if (vmmem_store(m, q->used + 2, 2, q->used_idx, VMMEM_SEQ_CST) < 0)
            return broken(q, "used index: %s", vmmem_last_message());
        log_used(q, m, 2, 2);
        TRACE_W(q->used + 2, 2, "used_idx");
    }
    if (done == 0 || q->call_fd < 0)
        return done;
    /* interrupt the driver unless it asked not to be */
    uint64_t v;
    bool notify;
    if (d->event_idx) {
        if (vmmem_load(m, q->avail + 4 + 2ull * q->num, 2, &v, VMMEM_SEQ_CST) < 0)
            return broken(q, "used_event: %s", vmmem_last_message());
        notify = need_event((uint16_t)v, q->used_idx, old_used);
    } else {
        if (vmmem_load(m, q->avail, 2, &v, VMMEM_SEQ_CST) < 0)
            return broken(q, "avail flags: %s", vmmem_last_message());
        notify = !(v & VRING_AVAIL_F_NO_INTERRUPT);
    }
    if (notify) {
        uint64_t one = 1;
        if (write(q->call_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            blk_log("queue %u: call fd: %s", q->index, strerror(errno));
    }
    return done;
}

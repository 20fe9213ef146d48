/*
 * The vhost-user protocol (QEMU docs/interop/vhost-user.rst), back-end side,
 * for one block device: messages are read from the connection, checked as
 * hostile input (payload size against the request type, the number of file
 * descriptors, indexes, ring sizes, memory tables) and applied.  Guest
 * memory comes and goes only through vmmem_vhost_* (tables, log).
 *
 * One thread serves the connection and the queues: poll() on the socket
 * and on every started queue's kick eventfd.  Queue processing runs inside
 * a read section of the hot-plug space; table changes happen between
 * passes, on the same thread, so no pass ever sees a map change under it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vu.h"

/* Front-end requests (vhost-user.rst "Front-end message types"). */
enum {
    GET_FEATURES = 1,
    SET_FEATURES = 2,
    SET_OWNER = 3,
    RESET_OWNER = 4,
    SET_MEM_TABLE = 5,
    SET_LOG_BASE = 6,
    SET_LOG_FD = 7,
    SET_VRING_NUM = 8,
    SET_VRING_ADDR = 9,
    SET_VRING_BASE = 10,
    GET_VRING_BASE = 11,
    SET_VRING_KICK = 12,
    SET_VRING_CALL = 13,
    SET_VRING_ERR = 14,
    GET_PROTOCOL_FEATURES = 15,
    SET_PROTOCOL_FEATURES = 16,
    GET_QUEUE_NUM = 17,
    SET_VRING_ENABLE = 18,
    SET_BACKEND_REQ_FD = 21,
    GET_CONFIG = 24,
    SET_CONFIG = 25,
    GET_MAX_MEM_SLOTS = 36,
    ADD_MEM_REG = 37,
    REM_MEM_REG = 38,
    REQ_MAX = 41
};

static const char *const req_names[REQ_MAX] = {
    [GET_FEATURES] = "GET_FEATURES",
    [SET_FEATURES] = "SET_FEATURES",
    [SET_OWNER] = "SET_OWNER",
    [RESET_OWNER] = "RESET_OWNER",
    [SET_MEM_TABLE] = "SET_MEM_TABLE",
    [SET_LOG_BASE] = "SET_LOG_BASE",
    [SET_LOG_FD] = "SET_LOG_FD",
    [SET_VRING_NUM] = "SET_VRING_NUM",
    [SET_VRING_ADDR] = "SET_VRING_ADDR",
    [SET_VRING_BASE] = "SET_VRING_BASE",
    [GET_VRING_BASE] = "GET_VRING_BASE",
    [SET_VRING_KICK] = "SET_VRING_KICK",
    [SET_VRING_CALL] = "SET_VRING_CALL",
    [SET_VRING_ERR] = "SET_VRING_ERR",
    [GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
    [SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
    [GET_QUEUE_NUM] = "GET_QUEUE_NUM",
    [SET_VRING_ENABLE] = "SET_VRING_ENABLE",
    [SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
    [GET_CONFIG] = "GET_CONFIG",
    [SET_CONFIG] = "SET_CONFIG",
    [GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
    [ADD_MEM_REG] = "ADD_MEM_REG",
    [REM_MEM_REG] = "REM_MEM_REG",
};

static const char *req_name(uint32_t r)
{
    return r < REQ_MAX && req_names[r] ? req_names[r] : "unknown";
}

/* protocol feature bits */
#define PF_MQ 0
#define PF_LOG_SHMFD 1
#define PF_REPLY_ACK 3
#define PF_CONFIG 9
#define PF_CONFIGURE_MEM_SLOTS 15

#define HDR_SIZE 12u
#define F_VERSION 0x1u
#define F_REPLY 0x4u
#define F_NEED_REPLY 0x8u
#define MAX_FDS 8u
#define MAX_PAYLOAD 4096u
#define MAX_TABLE_REGIONS 8u /* VHOST_MEMORY_BASELINE_NREGIONS */
#define REGION_SIZE 32u
#define VRING_NOFD 0x100u
#define CONFIG_SPACE 256u

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void close_fds(struct msg *m)
{
    for (size_t i = 0; i < m->nfds; i++)
        if (m->fds[i] >= 0)
            close(m->fds[i]);
    m->nfds = 0;
}

/* Take fd i out of the message (the handler keeps it). */
static int take_fd(struct msg *m, size_t i)
{
    int fd = m->fds[i];
    m->fds[i] = -1;
    return fd;
}

static int read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = recv(fd, p, len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* 1 with a message, 0 at end of connection, -1 on a broken message (the
 * connection cannot be trusted any more). */
static int recv_msg(int fd, struct msg *m)
{
    uint8_t hdr[HDR_SIZE];
    union {
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {hdr, sizeof hdr};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    m->nfds = 0;
    ssize_t r;
    do
        r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    if (r < 0) {
        blk_log("recvmsg: %s", strerror(errno));
        return -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int f;
            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
            if (m->nfds < MAX_FDS)
                m->fds[m->nfds++] = f;
            else
                close(f);
        }
    }
    if (mh.msg_flags & MSG_CTRUNC) {
        blk_log("message with more than %u file descriptors", MAX_FDS);
        close_fds(m);
        return -1;
    }
    if ((size_t)r < sizeof hdr && read_full(fd, hdr + r, sizeof hdr - (size_t)r) < 0) {
        blk_log("connection closed inside a message header");
        close_fds(m);
        return -1;
    }
    m->request = ld32(hdr);
    m->flags = ld32(hdr + 4);
    m->size = ld32(hdr + 8);
    if ((m->flags & 3) != F_VERSION || m->size > MAX_PAYLOAD) {
        blk_log("bad message header: request %" PRIu32 " flags 0x%" PRIx32 " size %" PRIu32,
                m->request, m->flags, m->size);
        close_fds(m);
        return -1;
    }
    if (m->size > 0 && read_full(fd, m->payload, m->size) < 0) {
        blk_log("%s: connection closed inside the payload", req_name(m->request));
        close_fds(m);
        return -1;
    }
    return 1;
}

static int send_reply(int fd, uint32_t request, const void *payload, uint32_t size)
{
    uint8_t buf[HDR_SIZE + 512];
    if (size > sizeof buf - HDR_SIZE)
        return -1;
    uint32_t h[3] = {request, F_VERSION | F_REPLY, size};
    memcpy(buf, h, sizeof h);
    if (size > 0)
        memcpy(buf + HDR_SIZE, payload, size);
    size_t len = HDR_SIZE + size, off = 0;
    while (off < len) {
        ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            blk_log("reply to %s: %s", req_name(request), strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

static int reply_u64(int fd, uint32_t request, uint64_t v)
{
    return send_reply(fd, request, &v, sizeof v);
}

uint64_t vu_features(const struct vu *u)
{
    uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                 (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ) |
                 (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
                 (1ull << VIRTIO_F_VERSION_1) | (1ull << VHOST_F_LOG_ALL) |
                 (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
    if (u->d->read_only && !u->opt.ro_silent)
        f |= 1ull << VIRTIO_BLK_F_RO;
    return f;
}

static uint64_t protocol_features(const struct vu *u)
{
    uint64_t f = (1ull << PF_MQ) | (1ull << PF_LOG_SHMFD) | (1ull << PF_REPLY_ACK) |
                 (1ull << PF_CONFIG);
    if (!u->opt.no_mem_slots)
        f |= 1ull << PF_CONFIGURE_MEM_SLOTS;
    return f;
}

static void vq_close_fds(struct vq *q)
{
    if (q->kick_fd >= 0)
        close(q->kick_fd);
    if (q->call_fd >= 0)
        close(q->call_fd);
    if (q->err_fd >= 0)
        close(q->err_fd);
    q->kick_fd = q->call_fd = q->err_fd = -1;
}

/* Back to the state of a fresh connection: no rings, no memory, no log. */
void vu_reset(struct vu *u)
{
    for (unsigned i = 0; i < u->d->nqueues; i++) {
        uint64_t served = u->d->vqs[i].served; /* a statistic of the whole run */
        vq_close_fds(&u->d->vqs[i]);
        vq_reset(&u->d->vqs[i], i);
        u->d->vqs[i].served = served;
    }
    if (u->log_attached)
        vmmem_vhost_clear_log(u->d->vh);
    u->log_attached = false;
    vmmem_vhost_set_mem_table(u->d->vh, NULL, 0);
    u->features = u->protocol = 0;
    u->d->event_idx = false;
}

static void translate_all(struct vu *u)
{
    for (unsigned i = 0; i < u->d->nqueues; i++)
        if (u->d->vqs[i].addr_set)
            vq_translate(u->d, &u->d->vqs[i]);
}

/* Run every runnable queue once, inside one read section. */
void vu_process_all(struct vu *u)
{
    struct vmmem_read_section sec;
    const vmmem_map *m = vmmem_space_read_begin(vmmem_vhost_space(u->d->vh), &sec);
    if (m == NULL)
        return;
    for (unsigned i = 0; i < u->d->nqueues; i++)
        vq_process(u->d, &u->d->vqs[i], m);
    vmmem_space_read_end(&sec);
}

static void start_queue(struct vu *u, struct vq *q)
{
    struct vmmem_read_section sec;
    const vmmem_map *m = vmmem_space_read_begin(vmmem_vhost_space(u->d->vh), &sec);
    if (m == NULL)
        return;
    vq_start(q, m);
    vq_process(u->d, q, m);
    vmmem_space_read_end(&sec);
}

static void region_from(struct vmmem_vhost_region *r, const uint8_t *p, int fd)
{
    memset(r, 0, sizeof *r);
    r->guest_phys_addr = ld64(p);
    r->memory_size = ld64(p + 8);
    r->userspace_addr = ld64(p + 16);
    r->mmap_offset = ld64(p + 24);
    r->fd = fd;
}

/* Check the payload size and fd count; an error text or NULL. */
static const char *check_shape(const struct msg *m, uint32_t size, size_t fds)
{
    static char why[128];
    if (m->size != size) {
        snprintf(why, sizeof why, "payload of %" PRIu32 " bytes, want %" PRIu32, m->size, size);
        return why;
    }
    if (m->nfds != fds) {
        snprintf(why, sizeof why, "%zu file descriptors, want %zu", m->nfds, fds);
        return why;
    }
    return NULL;
}

/* The queue a state / u64 payload names, or NULL. */
static struct vq *queue_of(struct vu *u, uint32_t index)
{
    return index < u->d->nqueues ? &u->d->vqs[index] : NULL;
}

/*
 * Apply one message.  Returns 0 (done; *err set to a reason on failure) or
 * -1 when the connection must be dropped.  *replied tells whether the
 * handler sent the message's own reply.
 */
static int handle(struct vu *u, struct msg *m, const char **err, bool *replied)
{
    struct dev *d = u->d;
    const char *bad = NULL;
    static char why[256];
    *replied = false;
#define SHAPE(size, fds)                                                                           \
    do {                                                                                           \
        if ((bad = check_shape(m, (size), (fds))) != NULL) {                                       \
            *err = bad;                                                                            \
            return 0;                                                                              \
        }                                                                                          \
    } while (0)
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(why, sizeof why, __VA_ARGS__);                                                    \
        *err = why;                                                                                \
        return 0;                                                                                  \
    } while (0)
    switch (m->request) {
    case GET_FEATURES:
        SHAPE(0, 0);
        *replied = true;
        return reply_u64(u->conn, m->request, vu_features(u));
    case SET_FEATURES: {
        SHAPE(8, 0);
        uint64_t f = ld64(m->payload);
        if (f & ~vu_features(u))
            FAIL("features 0x%" PRIx64 " not offered", f & ~vu_features(u));
        bool had_log = u->features & (1ull << VHOST_F_LOG_ALL);
        u->features = f;
        d->event_idx = f & (1ull << VIRTIO_RING_F_EVENT_IDX);
        if (had_log && !(f & (1ull << VHOST_F_LOG_ALL)) && u->log_attached) {
            vmmem_vhost_clear_log(d->vh); /* logging over: stop marking */
            u->log_attached = false;
            blk_trace("LOG detached");
            blk_log("log detached (VHOST_F_LOG_ALL cleared)");
        }
        if (f & (1ull << VHOST_F_LOG_ALL))
            u->saw_log_all = true;
        return 0;
    }
    case GET_PROTOCOL_FEATURES:
        SHAPE(0, 0);
        *replied = true;
        return reply_u64(u->conn, m->request, protocol_features(u));
    case SET_PROTOCOL_FEATURES: {
        SHAPE(8, 0);
        uint64_t f = ld64(m->payload);
        if (f & ~protocol_features(u))
            FAIL("protocol features 0x%" PRIx64 " not offered", f & ~protocol_features(u));
        u->protocol = f;
        return 0;
    }
    case SET_OWNER:
        SHAPE(0, 0);
        return 0;
    case RESET_OWNER: /* deprecated: disable every ring */
        SHAPE(0, 0);
        for (unsigned i = 0; i < d->nqueues; i++)
            d->vqs[i].started = false;
        return 0;
    case GET_QUEUE_NUM:
        SHAPE(0, 0);
        *replied = true;
        return reply_u64(u->conn, m->request, d->nqueues);
    case GET_MAX_MEM_SLOTS:
        SHAPE(0, 0);
        *replied = true;
        return reply_u64(u->conn, m->request, VMMEM_VHOST_DEFAULT_MAX_REGIONS);
    case SET_MEM_TABLE: {
        if (m->size < 8)
            FAIL("payload of %" PRIu32 " bytes, want at least 8", m->size);
        uint32_t n = ld32(m->payload);
        if (n > MAX_TABLE_REGIONS)
            FAIL("%" PRIu32 " regions, at most %u", n, MAX_TABLE_REGIONS);
        SHAPE(8 + REGION_SIZE * n, n);
        struct vmmem_vhost_region t[MAX_TABLE_REGIONS] = {{0}};
        for (uint32_t i = 0; i < n; i++)
            region_from(&t[i], m->payload + 8 + REGION_SIZE * i, m->fds[i]);
        if (vmmem_vhost_set_mem_table(d->vh, t, n) < 0)
            FAIL("%s", vmmem_last_message());
        blk_log("SET_MEM_TABLE: %" PRIu32 " regions", n);
        for (uint32_t i = 0; i < n; i++)
            blk_log("  region gpa 0x%" PRIx64 " size 0x%" PRIx64 " offset 0x%" PRIx64,
                    t[i].guest_phys_addr, t[i].memory_size, t[i].mmap_offset);
        translate_all(u);
        return 0; /* the fds are closed by the caller: the library dup()ed them */
    }
    case ADD_MEM_REG: {
        SHAPE(8 + REGION_SIZE, 1);
        struct vmmem_vhost_region r;
        region_from(&r, m->payload + 8, m->fds[0]);
        if (vmmem_vhost_add_region(d->vh, &r) < 0)
            FAIL("%s", vmmem_last_message());
        blk_log("ADD_MEM_REG: gpa 0x%" PRIx64 " size 0x%" PRIx64 " offset 0x%" PRIx64,
                r.guest_phys_addr, r.memory_size, r.mmap_offset);
        translate_all(u);
        return 0;
    }
    case REM_MEM_REG: {
        if (m->nfds > 1) /* one fd tolerated (the spec's compatibility rule) */
            FAIL("%zu file descriptors, want at most 1", m->nfds);
        SHAPE(8 + REGION_SIZE, m->nfds);
        struct vmmem_vhost_region r;
        region_from(&r, m->payload + 8, -1);
        if (vmmem_vhost_remove_region(d->vh, &r) < 0)
            FAIL("%s", vmmem_last_message());
        blk_log("REM_MEM_REG: gpa 0x%" PRIx64 " size 0x%" PRIx64, r.guest_phys_addr,
                r.memory_size);
        translate_all(u);
        return 0;
    }
    case SET_LOG_BASE: {
        /* Always answered (QEMU waits for it), with the size mapped, or 0. */
        *replied = true;
        if ((bad = check_shape(m, 16, 1)) != NULL) {
            *err = bad;
            return reply_u64(u->conn, m->request, 0);
        }
        uint64_t size = ld64(m->payload), off = ld64(m->payload + 8);
        u->saw_log_base = true;
        blk_trace("LOG requested");
        if (u->opt.skip_log_marking) {
            blk_log("SET_LOG_BASE: size 0x%" PRIx64 " offset 0x%" PRIx64
                    " NOT attached (--skip-log-marking)",
                    size, off);
            return reply_u64(u->conn, m->request, size);
        }
        int rc = vmmem_vhost_set_log_base(d->vh, m->fds[0], off, size);
        if (rc < 0) {
            snprintf(why, sizeof why, "%s", vmmem_last_message());
            *err = why;
            return reply_u64(u->conn, m->request, 0);
        }
        u->log_attached = true;
        blk_trace("LOG attached");
        blk_log("SET_LOG_BASE: size 0x%" PRIx64 " offset 0x%" PRIx64 " attached", size, off);
        return reply_u64(u->conn, m->request, size);
    }
    case SET_LOG_FD: /* an eventfd to tell the front-end of log updates: unused */
        SHAPE(m->size == 8 ? 8 : 0, 1);
        return 0;
    case SET_BACKEND_REQ_FD: /* not offered; closed */
        SHAPE(0, 1);
        return 0;
    case SET_VRING_NUM: {
        SHAPE(8, 0);
        struct vq *q = queue_of(u, ld32(m->payload));
        uint32_t num = ld32(m->payload + 4);
        if (q == NULL)
            FAIL("queue %" PRIu32 " of %u", ld32(m->payload), d->nqueues);
        if (num == 0 || num > VRING_MAX_SIZE || (num & (num - 1)))
            FAIL("ring size %" PRIu32 " is not a power of two up to %u", num, VRING_MAX_SIZE);
        if (q->started)
            FAIL("queue %u is running", q->index);
        q->num = num;
        return 0;
    }
    case SET_VRING_ADDR: {
        SHAPE(40, 0);
        struct vq *q = queue_of(u, ld32(m->payload));
        if (q == NULL)
            FAIL("queue %" PRIu32 " of %u", ld32(m->payload), d->nqueues);
        q->addr_flags = ld32(m->payload + 4);
        q->desc_ua = ld64(m->payload + 8);
        q->used_ua = ld64(m->payload + 16);
        q->avail_ua = ld64(m->payload + 24);
        q->log_ga = ld64(m->payload + 32);
        q->addr_set = true;
        if (vq_translate(d, q) < 0)
            FAIL("queue %u: ring addresses outside guest memory", q->index);
        if (q->started)
            start_queue(u, q); /* rings moved under a running queue: read used->idx again */
        return 0;
    }
    case SET_VRING_BASE: {
        SHAPE(8, 0);
        struct vq *q = queue_of(u, ld32(m->payload));
        uint32_t base = ld32(m->payload + 4);
        if (q == NULL)
            FAIL("queue %" PRIu32 " of %u", ld32(m->payload), d->nqueues);
        if (base > 0xffff)
            FAIL("ring base %" PRIu32 " past 16 bits", base);
        if (q->started)
            FAIL("queue %u is running", q->index);
        q->last_avail = (uint16_t)base;
        q->broken = false;
        return 0;
    }
    case GET_VRING_BASE: {
        *replied = true;
        uint32_t st[2] = {0, 0};
        struct vq *q = NULL;
        if ((bad = check_shape(m, 8, 0)) != NULL || (q = queue_of(u, ld32(m->payload))) == NULL) {
            *err = bad ? bad : "no such queue";
            return send_reply(u->conn, m->request, NULL, 0);
        }
        q->started = false; /* stop the ring */
        blk_trace("STOP queue %u", q->index);
        if (q->kick_fd >= 0)
            close(q->kick_fd);
        q->kick_fd = -1;
        st[0] = q->index;
        st[1] = q->last_avail;
        return send_reply(u->conn, m->request, st, sizeof st);
    }
    case SET_VRING_KICK:
    case SET_VRING_CALL:
    case SET_VRING_ERR: {
        if (m->size != 8)
            FAIL("payload of %" PRIu32 " bytes, want 8", m->size);
        uint64_t v = ld64(m->payload);
        bool nofd = v & VRING_NOFD;
        SHAPE(8, nofd ? 0 : 1);
        if (v & ~(uint64_t)(VRING_NOFD | 0xff))
            FAIL("reserved bits set in 0x%" PRIx64, v);
        struct vq *q = queue_of(u, (uint32_t)(v & 0xff));
        if (q == NULL)
            FAIL("queue %u of %u", (unsigned)(v & 0xff), d->nqueues);
        if (m->request == SET_VRING_KICK && nofd)
            FAIL("queue %u: polling (no kick fd) is not supported", q->index);
        int *slot = m->request == SET_VRING_KICK   ? &q->kick_fd
                    : m->request == SET_VRING_CALL ? &q->call_fd
                                                   : &q->err_fd;
        if (*slot >= 0)
            close(*slot);
        *slot = nofd ? -1 : take_fd(m, 0);
        /* Never block on a notifier (QEMU's eventfds already are non-blocking). */
        if (*slot >= 0 && m->request != SET_VRING_ERR) {
            int fl = fcntl(*slot, F_GETFL);
            if (fl >= 0)
                fcntl(*slot, F_SETFL, fl | O_NONBLOCK);
        }
        if (m->request == SET_VRING_KICK) {
            q->started = true;
            if (!(u->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
                q->enabled = true;
            start_queue(u, q);
        }
        return 0;
    }
    case SET_VRING_ENABLE: {
        SHAPE(8, 0);
        struct vq *q = queue_of(u, ld32(m->payload));
        uint32_t on = ld32(m->payload + 4);
        if (q == NULL)
            FAIL("queue %" PRIu32 " of %u", ld32(m->payload), d->nqueues);
        if (on > 1)
            FAIL("enable value %" PRIu32, on);
        q->enabled = on;
        if (on && q->started)
            start_queue(u, q);
        return 0;
    }
    case GET_CONFIG: {
        *replied = true;
        uint32_t off = m->size >= 12 ? ld32(m->payload) : 0;
        uint32_t len = m->size >= 12 ? ld32(m->payload + 4) : 0;
        if (m->size < 12 || m->nfds != 0 || len > CONFIG_SPACE || off > CONFIG_SPACE - len ||
            m->size != 12 + len) {
            *err = "bad GET_CONFIG payload";
            return send_reply(u->conn, m->request, NULL, 0); /* empty: an error */
        }
        uint8_t cfg[CONFIG_SPACE] = {0};
        vmmem_le64_store(cfg + 0, d->capacity);
        vmmem_le32_store(cfg + 12, VQ_SEG_MAX);
        vmmem_le32_store(cfg + 20, SECTOR);
        vmmem_le16_store(cfg + 34, (uint16_t)d->nqueues);
        uint8_t out[12 + CONFIG_SPACE];
        memcpy(out, m->payload, 12);
        memcpy(out + 12, cfg + off, len);
        return send_reply(u->conn, m->request, out, 12 + len);
    }
    default:
        FAIL("request %" PRIu32 " (%s) not supported", m->request, req_name(m->request));
    }
#undef SHAPE
#undef FAIL
}

/* Read and apply one message: 0 to go on, 1 at a clean end of connection,
 * -1 when the connection was dropped for a protocol violation. */
int vu_dispatch(struct vu *u)
{
    struct msg *m = &u->msg;
    int r = recv_msg(u->conn, m);
    if (r <= 0)
        return r == 0 ? 1 : -1;
    u->messages++;
    if (u->opt.verbose)
        blk_log("<- %s (%" PRIu32 ") flags 0x%" PRIx32 " size %" PRIu32 " fds %zu",
                req_name(m->request), m->request, m->flags, m->size, m->nfds);
    const char *err = NULL;
    bool replied = false;
    int rc = handle(u, m, &err, &replied);
    close_fds(m); /* those the handler did not take */
    if (rc < 0)
        return -1;
    if (err != NULL) {
        u->errors++;
        blk_log("%s refused: %s", req_name(m->request), err);
    }
    if (!replied && (m->flags & F_NEED_REPLY))
        if (reply_u64(u->conn, m->request, err ? 1 : 0) < 0)
            return -1;
    return 0;
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void vu_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool vu_stopping(void)
{
    return stop_flag != 0;
}

/* Serve one connection until it ends: 0 clean end, -1 dropped, 2 signal. */
int vu_serve(struct vu *u, int conn)
{
    struct dev *d = u->d;
    u->conn = conn;
    struct pollfd *pf = calloc(d->nqueues + 1, sizeof *pf);
    unsigned *qi = calloc(d->nqueues + 1, sizeof *qi);
    int result = 0;
    if (pf == NULL || qi == NULL) {
        result = -1;
        goto out;
    }
    while (!stop_flag) {
        size_t n = 0;
        pf[n++] = (struct pollfd){conn, POLLIN, 0};
        for (unsigned i = 0; i < d->nqueues; i++)
            if (d->vqs[i].started && d->vqs[i].kick_fd >= 0) {
                qi[n] = i;
                pf[n++] = (struct pollfd){d->vqs[i].kick_fd, POLLIN, 0};
            }
        int r = poll(pf, n, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            blk_log("poll: %s", strerror(errno));
            result = -1;
            break;
        }
        bool kicked = false;
        for (size_t k = 1; k < n; k++) {
            if (pf[k].revents == 0)
                continue;
            struct vq *q = &d->vqs[qi[k]];
            uint64_t v;
            ssize_t r8 = (pf[k].revents & POLLIN) ? read(pf[k].fd, &v, sizeof v) : 0;
            if (r8 > 0 || (r8 < 0 && (errno == EAGAIN || errno == EINTR))) {
                kicked = true;
                continue;
            }
            /* Closed, broken or not an eventfd at all: stop the ring rather
             * than spin on a descriptor that is always ready. */
            blk_log("queue %u: kick fd unusable (%s): queue stopped", qi[k],
                    r8 < 0 ? strerror(errno) : "end of file or error");
            close(q->kick_fd);
            q->kick_fd = -1;
            q->started = false;
        }
        if (kicked)
            vu_process_all(u);
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            int rc = vu_dispatch(u);
            if (rc != 0) {
                result = rc == 1 ? 0 : -1;
                break;
            }
        }
    }
    if (stop_flag)
        result = 2;
out:
    free(pf);
    free(qi);
    vu_reset(u);
    close(conn);
    u->conn = -1;
    return result;
}

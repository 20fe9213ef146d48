/*
 * vmmem-vhost-user-blk: a vhost-user block device back-end on libvmmem.
 * Shared declarations of the protocol side (vu.c), the virtqueue and
 * virtio-blk side (vq.c), the program (main.c) and the benchmark.
 */
#ifndef VUBLK_H
#define VUBLK_H

#include <stdbool.h>
#include <stdint.h>

#include <vmmem/vmmem.h>

/* virtio feature bits (virtio 1.2, 5.2.3 and 6) */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
/* vhost */
#define VHOST_F_LOG_ALL 26
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* split virtqueue (virtio 1.2, 2.7) */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_MAX_SIZE 32768u

/* virtio-blk requests (virtio 1.2, 5.2.6) */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define SECTOR 512u

/* Longest chain followed (direct + indirect descriptors); seg_max leaves
 * room for the header and the status byte. */
#define VQ_MAX_SEGS 1024u
#define VQ_SEG_MAX 126u

struct vq {
    unsigned index;
    uint32_t num;                /* ring size, 0 = not set */
    uint64_t desc_ua, avail_ua, used_ua, log_ga; /* SET_VRING_ADDR */
    uint32_t addr_flags;         /* bit 0: log used-ring writes at log_ga */
    bool addr_set, addr_ok;      /* given / translated to guest addresses */
    vmmem_gaddr_t desc, avail, used;
    uint16_t last_avail, used_idx;
    int kick_fd, call_fd, err_fd;
    bool started;  /* kick fd given, until GET_VRING_BASE */
    bool enabled;  /* SET_VRING_ENABLE (or no protocol features) */
    bool broken;   /* the driver broke the ring: no more processing */
    uint64_t served;
};

struct blk_stats {
    uint64_t in, out, flush, get_id, unsupported, ioerr, malformed;
};

struct seg {
    uint64_t addr;
    uint32_t len;
    bool write;
};

struct dev {
    vmmem_vhost *vh;
    int image_fd;
    uint64_t capacity; /* sectors */
    bool read_only;
    char serial[VIRTIO_BLK_ID_BYTES];
    unsigned nqueues;
    struct vq *vqs;
    bool event_idx;
    struct blk_stats st;
    int verbose;
    struct seg segs[VQ_MAX_SEGS];        /* scratch of one request */
    struct vmmem_gvec data[VQ_MAX_SEGS]; /* scratch of one request */
};

/* vq.c */
void vq_reset(struct vq *q, unsigned index);
/* Process every available request of q; the number processed, or -1 when
 * the ring is broken (q->broken set, reason printed). */
int vq_process(struct dev *d, struct vq *q, const vmmem_map *m);
/* Start q: read the used index from guest memory. */
int vq_start(struct vq *q, const vmmem_map *m);
/* Guest addresses of the rings (vmmem_vhost_uaddr_to_gpa) and their checks. */
int vq_translate(struct dev *d, struct vq *q);

void blk_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Debugging aid: with VMMEM_VUBLK_TRACE=FILE in the environment, every guest
 * range the back-end writes is appended to FILE ("W gpa len what"), with a
 * line for each log attach/detach, to match against the pages a migration
 * comparison finds different. */
void blk_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The driver's side, for the queue tests and the benchmark (which play the
 * guest): write descriptor i of the table at `table` in guest memory `mem`. */
static inline void blk_drv_desc(uint8_t *mem, uint64_t table, unsigned i, uint64_t addr,
                                uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = mem + table + 16ull * i;
    vmmem_le64_store(p, addr);
    vmmem_le32_store(p + 8, len);
    vmmem_le16_store(p + 12, flags);
    vmmem_le16_store(p + 14, next);
}

#endif

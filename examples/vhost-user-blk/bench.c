/*
 * vmmem-vhost-user-blk-bench: the back-end's queue processing without a
 * guest.  Guest memory is a memfd handed to vmmem_vhost_set_mem_table as a
 * front-end would; this program plays the driver through its own mapping of
 * it: it fills a split virtqueue with a batch of virtio-blk requests, bumps
 * the available index, and times vq_process (the code the back-end runs on
 * a kick) over a fixed number of requests.  The disk image is a memfd too,
 * so the numbers are the queue, descriptor, copy and dirty-log costs, not a
 * disk's.  Usage: vmmem-vhost-user-blk-bench [requests per case]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "blk.h"

#define GUEST (64u << 20)
#define IMAGE (64u << 20)
#define UA 0x7f0000000000ull
#define QSIZE 1024u
#define BATCH 256u
#define DESC 0x100000u
#define AVAIL 0x110000u
#define USED 0x120000u
#define HDRS 0x200000u   /* 16 bytes per request */
#define STATUS 0x210000u /* 1 byte per request */
#define INDIR 0x220000u  /* 48 bytes per request */
#define DATA 0x400000u   /* up to 64 KiB per request */

static uint8_t *g; /* the driver's view of guest memory */

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    blk_drv_desc(g, table, i, addr, len, flags, next);
}

/* Lay out BATCH requests of one kind; head of request i returned in heads[i]. */
static void layout(uint32_t type, uint32_t len, bool indirect, uint16_t *heads)
{
    for (unsigned i = 0; i < BATCH; i++) {
        uint64_t hdr = HDRS + 16ull * i, st = STATUS + i, data = DATA + (uint64_t)i * 65536;
        vmmem_le32_store(g + hdr, type);
        vmmem_le32_store(g + hdr + 4, 0);
        vmmem_le64_store(g + hdr + 8, (uint64_t)i * (len / SECTOR ? len / SECTOR : 1));
        uint16_t dflags = type == VIRTIO_BLK_T_OUT ? 0 : VRING_DESC_F_WRITE;
        if (indirect) {
            uint64_t t = INDIR + 48ull * i;
            put_desc(t, 0, hdr, 16, VRING_DESC_F_NEXT, 1);
            put_desc(t, 1, data, len, dflags | VRING_DESC_F_NEXT, 2);
            put_desc(t, 2, st, 1, VRING_DESC_F_WRITE, 0);
            put_desc(DESC, i, t, 48, VRING_DESC_F_INDIRECT, 0);
            heads[i] = (uint16_t)i;
        } else {
            put_desc(DESC, 3 * i, hdr, 16, VRING_DESC_F_NEXT, (uint16_t)(3 * i + 1));
            put_desc(DESC, 3 * i + 1, data, len, dflags | VRING_DESC_F_NEXT,
                     (uint16_t)(3 * i + 2));
            put_desc(DESC, 3 * i + 2, st, 1, VRING_DESC_F_WRITE, 0);
            heads[i] = (uint16_t)(3 * i);
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_case(struct dev *d, const char *name, uint32_t type, uint32_t len, bool indirect,
                    unsigned long total)
{
    struct vq *q = &d->vqs[0];
    uint16_t heads[BATCH];
    layout(type, len, indirect, heads);
    memset(g + USED, 0, 6 + 8 * QSIZE);
    memset(g + AVAIL, 0, 6 + 2 * QSIZE);
    vq_reset(q, 0);
    q->num = QSIZE;
    q->desc_ua = UA + DESC;
    q->avail_ua = UA + AVAIL;
    q->used_ua = UA + USED;
    q->addr_set = true;
    if (vq_translate(d, q) < 0)
        return -1;
    q->started = q->enabled = true;
    vmmem_map *m = vmmem_vhost_snapshot(d->vh);
    vq_start(q, m);
    unsigned long done = 0;
    uint16_t avail = 0;
    double t0 = now();
    while (done < total) {
        for (unsigned i = 0; i < BATCH; i++)
            vmmem_le16_store(g + AVAIL + 4 + 2 * ((avail + i) % QSIZE), heads[i]);
        avail = (uint16_t)(avail + BATCH);
        __atomic_store_n((uint16_t *)(g + AVAIL + 2), avail, __ATOMIC_RELEASE);
        int n = vq_process(d, q, m);
        if (n != (int)BATCH) {
            fprintf(stderr, "%s: processed %d of %u\n", name, n, BATCH);
            vmmem_map_unref(m);
            return -1;
        }
        done += BATCH;
    }
    double dt = now() - t0;
    vmmem_map_unref(m);
    if (g[STATUS] != VIRTIO_BLK_S_OK) {
        fprintf(stderr, "%s: status %u\n", name, g[STATUS]);
        return -1;
    }
    printf("%-34s %9.0f requests/s %8.0f ns/request", name, done / dt, dt * 1e9 / done);
    if (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_OUT)
        printf(" %8.0f MiB/s", done * (double)len / dt / (1 << 20));
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long total = argc > 1 ? strtoul(argv[1], NULL, 0) : 1000000;
    total = (total + BATCH - 1) / BATCH * BATCH;
    static struct dev d;
    int gfd = memfd_create("bench-guest", MFD_CLOEXEC);
    int ifd = memfd_create("bench-image", MFD_CLOEXEC);
    int lfd = memfd_create("bench-log", MFD_CLOEXEC);
    if (gfd < 0 || ifd < 0 || lfd < 0 || ftruncate(gfd, GUEST) < 0 || ftruncate(ifd, IMAGE) < 0 ||
        ftruncate(lfd, GUEST / 4096 / 8) < 0) {
        perror("memfd");
        return 1;
    }
    g = mmap(NULL, GUEST, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
    if (g == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    if (vmmem_vhost_new(&d.vh, NULL, 0, NULL) < 0) {
        fprintf(stderr, "vmmem_vhost_new: %s\n", vmmem_last_message());
        return 1;
    }
    struct vmmem_vhost_region r = {0, GUEST, UA, 0, gfd, 0, 0};
    if (vmmem_vhost_set_mem_table(d.vh, &r, 1) < 0) {
        fprintf(stderr, "set_mem_table: %s\n", vmmem_last_message());
        return 1;
    }
    d.image_fd = ifd;
    d.capacity = IMAGE / SECTOR;
    memcpy(d.serial, "bench", 5);
    d.nqueues = 1;
    struct vq q;
    d.vqs = &q;
    printf("vmmem-vhost-user-blk-bench: %lu requests per case, batches of %u, queue size %u\n",
           total, BATCH, QSIZE);
    int rc = 0;
    rc |= run_case(&d, "GET_ID (no disk I/O)", VIRTIO_BLK_T_GET_ID, 20, false, total);
    rc |= run_case(&d, "IN 512 B", VIRTIO_BLK_T_IN, 512, false, total);
    rc |= run_case(&d, "IN 4 KiB", VIRTIO_BLK_T_IN, 4096, false, total);
    rc |= run_case(&d, "IN 4 KiB, indirect", VIRTIO_BLK_T_IN, 4096, true, total);
    rc |= run_case(&d, "OUT 4 KiB", VIRTIO_BLK_T_OUT, 4096, false, total);
    rc |= run_case(&d, "IN 64 KiB", VIRTIO_BLK_T_IN, 65536, false, total / 8);
    if (vmmem_vhost_set_log_base(d.vh, lfd, 0, GUEST / 4096 / 8) < 0) {
        fprintf(stderr, "set_log_base: %s\n", vmmem_last_message());
        return 1;
    }
    rc |= run_case(&d, "GET_ID, dirty log attached", VIRTIO_BLK_T_GET_ID, 20, false, total);
    rc |= run_case(&d, "IN 4 KiB, dirty log attached", VIRTIO_BLK_T_IN, 4096, false, total);
    vmmem_vhost_free(d.vh);
    munmap(g, GUEST);
    close(gfd);
    close(ifd);
    close(lfd);
    return rc ? 1 : 0;
}

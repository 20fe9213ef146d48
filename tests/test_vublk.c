/*
 * The vhost-user-blk example's queue processing (examples/vhost-user-blk/vq.c,
 * linked into this test) on guest memory that a test front-end hands to
 * vmmem_vhost_set_mem_table, with no QEMU: exact bytes of IN / OUT / GET_ID
 * between a memfd image and guest buffers (direct and indirect chains),
 * status codes, used elements, EVENT_IDX and interrupt suppression, every
 * malformed chain completed without being followed, broken rings stopped,
 * and - what live migration depends on - the vhost-user dirty log marked
 * for exactly the pages the back-end wrote (data, status, used ring, and the
 * SET_VRING_ADDR log address).  tests/e2e/ runs the same code under QEMU.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "harness.h"

/* The example's queue code (examples/vhost-user-blk/vq.c, linked in). */
#include "blk.h"

#define GUEST (1u << 20)
#define IMAGE (64u << 10)
#define UA 0x7e0000000000ull
#define NUM 16u
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define N VRING_DESC_F_NEXT
#define W VRING_DESC_F_WRITE
#define I VRING_DESC_F_INDIRECT

static struct dev d;
static struct vq q;
static uint8_t *g; /* the test front-end's view of guest memory */
static int gfd = -1, logfd = -1;
static uint16_t avail_idx;

static uint8_t img_byte(uint64_t off)
{
    return (uint8_t)(off * 31 + 7);
}

static void setup(bool read_only)
{
    memset(&d, 0, sizeof d);
    gfd = memfd_create("vt-vublk-guest", MFD_CLOEXEC);
    d.image_fd = memfd_create("vt-vublk-image", MFD_CLOEXEC);
    CU_ASSERT_FATAL(gfd >= 0 && d.image_fd >= 0);
    CU_ASSERT_FATAL(ftruncate(gfd, GUEST) == 0);
    uint8_t *img = malloc(IMAGE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(img);
    for (uint64_t i = 0; i < IMAGE; i++)
        img[i] = img_byte(i);
    CU_ASSERT_FATAL(pwrite(d.image_fd, img, IMAGE, 0) == (ssize_t)IMAGE);
    free(img);
    g = mmap(NULL, GUEST, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
    CU_ASSERT_FATAL(g != MAP_FAILED);
    VT_ASSERT_RC(vmmem_vhost_new(&d.vh, NULL, 0, NULL), 0);
    struct vmmem_vhost_region r = {0, GUEST, UA, 0, gfd, 0, 0};
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(d.vh, &r, 1), 0);
    d.capacity = IMAGE / SECTOR;
    d.read_only = read_only;
    memcpy(d.serial, "vt-serial", 9);
    d.nqueues = 1;
    d.vqs = &q;
    vq_reset(&q, 0);
    q.num = NUM;
    q.desc_ua = UA + DESC;
    q.avail_ua = UA + AVAIL;
    q.used_ua = UA + USED;
    q.addr_set = true;
    VT_ASSERT_RC(vq_translate(&d, &q), 0);
    q.started = q.enabled = true;
    avail_idx = 0;
    memset(g + 0x12000, 0xff, 0x1000); /* status bytes */
}

static void teardown(void)
{
    if (q.call_fd >= 0)
        close(q.call_fd);
    vmmem_vhost_free(d.vh);
    munmap(g, GUEST);
    close(gfd);
    close(d.image_fd);
    if (logfd >= 0)
        close(logfd);
    logfd = -1;
}

static void desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    blk_drv_desc(g, table, i, addr, len, flags, next);
}

static void hdr(uint64_t addr, uint32_t type, uint64_t sector)
{
    vmmem_le32_store(g + addr, type);
    vmmem_le32_store(g + addr + 4, 0);
    vmmem_le64_store(g + addr + 8, sector);
}

/* Offer heads to the back-end and run one pass; its return value. */
static int offer(const uint16_t *heads, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        vmmem_le16_store(g + AVAIL + 4 + 2 * ((avail_idx + i) % NUM), heads[i]);
    avail_idx = (uint16_t)(avail_idx + n);
    vmmem_le16_store(g + AVAIL + 2, avail_idx);
    struct vmmem_read_section sec;
    const vmmem_map *m = vmmem_space_read_begin(vmmem_vhost_space(d.vh), &sec);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    vq_start(&q, m); /* reads used->idx (as SET_VRING_KICK does) */
    int rc = vq_process(&d, &q, m);
    vmmem_space_read_end(&sec);
    return rc;
}

static void used(unsigned i, uint32_t *id, uint32_t *len)
{
    *id = vmmem_le32_load(g + USED + 4 + 8 * (i % NUM));
    *len = vmmem_le32_load(g + USED + 4 + 8 * (i % NUM) + 4);
}

static uint16_t used_idx(void)
{
    return vmmem_le16_load(g + USED + 2);
}

static void test_in_out_exact(void)
{
    setup(false);
    /* IN of 1536 bytes at sector 3 into two buffers (512 + 1024) */
    hdr(0x10000, VIRTIO_BLK_T_IN, 3);
    desc(DESC, 0, 0x10000, 16, N, 1);
    desc(DESC, 1, 0x20000, 512, W | N, 2);
    desc(DESC, 2, 0x30100, 1024, W | N, 3);
    desc(DESC, 3, 0x12000, 1, W, 0);
    /* OUT of 700 bytes at sector 20 through an indirect table, two buffers */
    for (unsigned i = 0; i < 700; i++)
        g[0x40000 + i] = (uint8_t)(i ^ 0x5a);
    hdr(0x10100, VIRTIO_BLK_T_OUT, 20);
    desc(DESC, 4, 0x50000, 64, I, 0);
    desc(0x50000, 0, 0x10100, 16, N, 1);
    desc(0x50000, 1, 0x40000, 200, N, 2);
    desc(0x50000, 2, 0x40000 + 200, 500, N, 3);
    desc(0x50000, 3, 0x12001, 1, W, 0);
    /* header split over two descriptors, and a buffered 1-byte status */
    hdr(0x10200, VIRTIO_BLK_T_GET_ID, 0);
    desc(DESC, 5, 0x10200, 5, N, 6);
    desc(DESC, 6, 0x10205, 11, N, 7);
    desc(DESC, 7, 0x60000, 32, W | N, 8);
    desc(DESC, 8, 0x12002, 1, W, 0);
    hdr(0x10300, VIRTIO_BLK_T_FLUSH, 0);
    desc(DESC, 9, 0x10300, 16, N, 10);
    desc(DESC, 10, 0x12003, 1, W, 0);
    hdr(0x10400, 77, 0);
    desc(DESC, 11, 0x10400, 16, N, 12);
    desc(DESC, 12, 0x12004, 1, W, 0);
    uint16_t heads[] = {0, 4, 5, 9, 11};
    CU_ASSERT_EQUAL(offer(heads, 5), 5);
    CU_ASSERT_EQUAL(used_idx(), 5);
    uint32_t id, len;
    used(0, &id, &len);
    CU_ASSERT(id == 0 && len == 1537);
    used(1, &id, &len);
    CU_ASSERT(id == 4 && len == 1);
    used(2, &id, &len);
    CU_ASSERT(id == 5 && len == 21);
    used(3, &id, &len);
    CU_ASSERT(id == 9 && len == 1);
    used(4, &id, &len);
    CU_ASSERT(id == 11 && len == 1);
    CU_ASSERT_EQUAL(g[0x12000], VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(g[0x12001], VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(g[0x12002], VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(g[0x12003], VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(g[0x12004], VIRTIO_BLK_S_UNSUPP);
    bool ok = true;
    for (unsigned i = 0; i < 512; i++)
        ok = ok && g[0x20000 + i] == img_byte(3 * 512 + i);
    for (unsigned i = 0; i < 1024; i++)
        ok = ok && g[0x30100 + i] == img_byte(3 * 512 + 512 + i);
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(g[0x30100 + 1024], 0); /* nothing past the buffer */
    uint8_t back[700];
    CU_ASSERT_EQUAL(pread(d.image_fd, back, sizeof back, 20 * 512), (ssize_t)sizeof back);
    ok = true;
    for (unsigned i = 0; i < 700; i++)
        ok = ok && back[i] == (uint8_t)(i ^ 0x5a);
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_EQUAL(pread(d.image_fd, back, 1, 20 * 512 + 700), 1);
    CU_ASSERT_EQUAL(back[0], img_byte(20 * 512 + 700));
    CU_ASSERT_EQUAL(memcmp(g + 0x60000, "vt-serial\0\0\0\0\0\0\0\0\0\0\0", 20), 0);
    CU_ASSERT_EQUAL(g[0x60000 + 20], 0);
    CU_ASSERT_EQUAL(d.st.in, 1);
    CU_ASSERT_EQUAL(d.st.out, 1);
    CU_ASSERT_EQUAL(d.st.get_id, 1);
    CU_ASSERT_EQUAL(d.st.flush, 1);
    CU_ASSERT_EQUAL(d.st.unsupported, 1);
    teardown();
}

static void test_malformed_chains(void)
{
    setup(true);
    /* 0: a loop 1 -> 2 -> 1 (writable) */
    hdr(0x10000, VIRTIO_BLK_T_IN, 0);
    desc(DESC, 0, 0x10000, 16, N, 1);
    desc(DESC, 1, 0x12000, 1, W | N, 2);
    desc(DESC, 2, 0x12001, 1, W | N, 1);
    /* 3: next index past the table */
    hdr(0x10100, VIRTIO_BLK_T_IN, 0);
    desc(DESC, 3, 0x10100, 16, N, NUM);
    /* 4: a buffer past guest memory, then a status that must stay untouched */
    hdr(0x10200, VIRTIO_BLK_T_IN, 0);
    desc(DESC, 4, 0x10200, 16, N, 5);
    desc(DESC, 5, GUEST - 256, 512, W | N, 6);
    desc(DESC, 6, 0x12002, 1, W, 0);
    /* 7: nested indirect */
    hdr(0x10300, VIRTIO_BLK_T_IN, 0);
    desc(DESC, 7, 0x50000, 48, I, 0);
    desc(0x50000, 0, 0x10300, 16, N, 1);
    desc(0x50000, 1, 0x12003, 1, W | N, 2);
    desc(0x50000, 2, 0x50100, 16, I, 0);
    /* 8: readable after writable */
    hdr(0x10400, VIRTIO_BLK_T_IN, 0);
    desc(DESC, 8, 0x10400, 16, N, 9);
    desc(DESC, 9, 0x12004, 1, W | N, 10);
    desc(DESC, 10, 0x20000, 16, 0, 0);
    /* 11: a read past the end of the disk */
    hdr(0x10500, VIRTIO_BLK_T_IN, IMAGE / SECTOR);
    desc(DESC, 11, 0x10500, 16, N, 12);
    desc(DESC, 12, 0x20000, 512, W | N, 13);
    desc(DESC, 13, 0x12005, 1, W, 0);
    /* 14: a write to the read-only image */
    hdr(0x10600, VIRTIO_BLK_T_OUT, 0);
    memset(g + 0x21000, 0xab, 512);
    desc(DESC, 14, 0x10600, 16, N, 15);
    desc(DESC, 15, 0x21000, 512, 0, 0); /* and no status at all */
    uint16_t heads[] = {0, 3, 4, 7, 8, 11, 14};
    CU_ASSERT_EQUAL(offer(heads, 7), 7);
    uint32_t id, len;
    uint32_t want_len[] = {1, 0, 0, 1, 1, 1, 0};
    for (unsigned i = 0; i < 7; i++) {
        used(i, &id, &len);
        CU_ASSERT_EQUAL(id, heads[i]);
        CU_ASSERT_EQUAL(len, want_len[i]);
        if (id != heads[i] || len != want_len[i])
            printf("\n    used[%u] = {%u, %u}, want {%u, %u}\n", i, id, len, heads[i],
                   want_len[i]);
    }
    CU_ASSERT(g[0x12000] == VIRTIO_BLK_S_IOERR || g[0x12001] == VIRTIO_BLK_S_IOERR);
    CU_ASSERT_EQUAL(g[0x12002], 0xff);
    CU_ASSERT_EQUAL(g[0x12003], VIRTIO_BLK_S_IOERR);
    CU_ASSERT_EQUAL(g[0x12004], VIRTIO_BLK_S_IOERR);
    CU_ASSERT_EQUAL(g[0x12005], VIRTIO_BLK_S_IOERR);
    uint8_t b;
    CU_ASSERT_EQUAL(pread(d.image_fd, &b, 1, 0), 1);
    CU_ASSERT_EQUAL(b, img_byte(0));
    /* an OUT with a status, on the read-only image: IOERR, image unchanged */
    hdr(0x10700, VIRTIO_BLK_T_OUT, 1);
    desc(DESC, 0, 0x10700, 16, N, 1);
    desc(DESC, 1, 0x21000, 512, N, 2);
    desc(DESC, 2, 0x12006, 1, W, 0);
    uint16_t h0 = 0;
    CU_ASSERT_EQUAL(offer(&h0, 1), 1);
    CU_ASSERT_EQUAL(g[0x12006], VIRTIO_BLK_S_IOERR);
    CU_ASSERT_EQUAL(pread(d.image_fd, &b, 1, 512), 1);
    CU_ASSERT_EQUAL(b, img_byte(512));
    CU_ASSERT_FALSE(q.broken);
    teardown();
}

static void test_broken_rings(void)
{
    setup(false);
    uint16_t bad = NUM; /* a head past the ring */
    CU_ASSERT_EQUAL(offer(&bad, 1), -1);
    CU_ASSERT_TRUE(q.broken);
    CU_ASSERT_EQUAL(used_idx(), 0);
    teardown();

    setup(false);
    vmmem_le16_store(g + AVAIL + 2, NUM + 1); /* more than a ring's worth */
    struct vmmem_read_section sec;
    const vmmem_map *m = vmmem_space_read_begin(vmmem_vhost_space(d.vh), &sec);
    CU_ASSERT_EQUAL(vq_process(&d, &q, m), -1);
    CU_ASSERT_TRUE(q.broken);
    CU_ASSERT_EQUAL(vq_process(&d, &q, m), 0); /* stays stopped */
    vmmem_space_read_end(&sec);
    CU_ASSERT_EQUAL(q.last_avail, 0);
    teardown();

    /* rings that are not whole in guest memory: stopped, not read */
    setup(false);
    q.used_ua = UA + GUEST - 8;
    VT_ASSERT_RC(vq_translate(&d, &q), 0);
    uint16_t h = 0;
    CU_ASSERT_EQUAL(offer(&h, 1), -1);
    CU_ASSERT_TRUE(q.broken);
    teardown();

    /* ring addresses outside guest memory or misaligned: refused */
    setup(false);
    q.desc_ua = UA + GUEST;
    CU_ASSERT_EQUAL(vq_translate(&d, &q), -1);
    CU_ASSERT_FALSE(q.addr_ok);
    q.desc_ua = UA + DESC + 8;
    CU_ASSERT_EQUAL(vq_translate(&d, &q), -1);
    teardown();
}

/* Notifications: EVENT_IDX (used_event) and VRING_AVAIL_F_NO_INTERRUPT. */
static void test_notifications(void)
{
    setup(false);
    int p[2];
    CU_ASSERT_FATAL(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    q.call_fd = p[1];
    hdr(0x10000, VIRTIO_BLK_T_FLUSH, 0);
    desc(DESC, 0, 0x10000, 16, N, 1);
    desc(DESC, 1, 0x12000, 1, W, 0);
    uint64_t v;
    uint16_t h = 0;
    /* no EVENT_IDX: interrupt unless the driver set NO_INTERRUPT */
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    CU_ASSERT_EQUAL(read(p[0], &v, sizeof v), (ssize_t)sizeof v);
    vmmem_le16_store(g + AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    CU_ASSERT_EQUAL(read(p[0], &v, sizeof v), -1);
    vmmem_le16_store(g + AVAIL, 0);
    /* EVENT_IDX: interrupt only when used_event is crossed; avail_event
     * tells the driver where the back-end stopped */
    d.event_idx = true;
    vmmem_le16_store(g + AVAIL + 4 + 2 * NUM, 10); /* used_event: wake me at 11 */
    CU_ASSERT_EQUAL(offer(&h, 1), 1);             /* used 2 -> 3 */
    CU_ASSERT_EQUAL(read(p[0], &v, sizeof v), -1);
    CU_ASSERT_EQUAL(vmmem_le16_load(g + USED + 4 + 8 * NUM), 3);
    vmmem_le16_store(g + AVAIL + 4 + 2 * NUM, 3); /* used_event 3: crossing 3 -> 4 */
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    CU_ASSERT_EQUAL(read(p[0], &v, sizeof v), (ssize_t)sizeof v);
    CU_ASSERT_EQUAL(vmmem_le16_load(g + USED + 4 + 8 * NUM), 4);
    CU_ASSERT_EQUAL(used_idx(), 4);
    close(p[0]);
    teardown();
}

/* The log bits of [first, last] 4 KiB pages (bit p%8 of byte p/8). */
static bool log_bit(uint64_t page)
{
    uint8_t b = 0;
    if (pread(logfd, &b, 1, (off_t)(page / 8)) != 1)
        return false;
    return (b >> (page % 8)) & 1;
}

static unsigned log_count(void)
{
    unsigned n = 0;
    for (uint64_t p = 0; p < GUEST / 4096; p++)
        n += log_bit(p);
    return n;
}

/* What live migration depends on: exactly the pages written are logged. */
static void test_dirty_log(void)
{
    setup(false);
    logfd = memfd_create("vt-vublk-log", MFD_CLOEXEC);
    CU_ASSERT_FATAL(logfd >= 0 && ftruncate(logfd, GUEST / 4096 / 8) == 0);
    VT_ASSERT_RC(vmmem_vhost_set_log_base(d.vh, logfd, 0, GUEST / 4096 / 8), 0);
    /* IN of 4 KiB + 1 byte... at sector 1 into [0x20ffe, +0x1004) (pages
     * 0x20, 0x21, 0x22), status at 0x12000 (page 0x12), used ring page 3 */
    hdr(0x10000, VIRTIO_BLK_T_IN, 1);
    desc(DESC, 0, 0x10000, 16, N, 1);
    desc(DESC, 1, 0x20ffe, 0x1004, W | N, 2);
    desc(DESC, 2, 0x12000, 1, W, 0);
    uint16_t h = 0;
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    CU_ASSERT_EQUAL(g[0x12000], VIRTIO_BLK_S_OK);
    CU_ASSERT_TRUE(log_bit(0x20));
    CU_ASSERT_TRUE(log_bit(0x21));
    CU_ASSERT_TRUE(log_bit(0x22));
    CU_ASSERT_TRUE(log_bit(0x12));
    CU_ASSERT_TRUE(log_bit(USED / 4096));
    CU_ASSERT_EQUAL(log_count(), 5); /* and nothing else (reads mark nothing) */
    /* EVENT_IDX writes avail_event into the used ring: logged too; the
     * used ring logged at SET_VRING_ADDR's log address when it differs */
    CU_ASSERT_FATAL(ftruncate(logfd, 0) == 0 && ftruncate(logfd, GUEST / 4096 / 8) == 0);
    d.event_idx = true;
    q.addr_flags = 1;
    q.log_ga = 0x70000;
    hdr(0x10000, VIRTIO_BLK_T_FLUSH, 0);
    desc(DESC, 0, 0x10000, 16, N, 1);
    desc(DESC, 1, 0x12000, 1, W, 0);
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    CU_ASSERT_TRUE(log_bit(0x12));
    CU_ASSERT_TRUE(log_bit(USED / 4096));
    CU_ASSERT_TRUE(log_bit(0x70));
    CU_ASSERT_EQUAL(log_count(), 3);
    /* a short read (end of the image) marks only what it filled */
    CU_ASSERT_FATAL(ftruncate(logfd, 0) == 0 && ftruncate(logfd, GUEST / 4096 / 8) == 0);
    CU_ASSERT_FATAL(ftruncate(d.image_fd, IMAGE - 100) == 0); /* capacity unchanged */
    hdr(0x10000, VIRTIO_BLK_T_IN, IMAGE / SECTOR - 1);
    desc(DESC, 0, 0x10000, 16, N, 1);
    desc(DESC, 1, 0x30000, 512, W | N, 2);
    desc(DESC, 2, 0x12000, 1, W, 0);
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    CU_ASSERT_EQUAL(g[0x12000], VIRTIO_BLK_S_IOERR); /* short: an I/O error */
    CU_ASSERT_TRUE(log_bit(0x30));                   /* 412 bytes landed there */
    VT_ASSERT_RC(vmmem_vhost_clear_log(d.vh), 0);
    /* no log, no marks */
    CU_ASSERT_FATAL(ftruncate(logfd, 0) == 0 && ftruncate(logfd, GUEST / 4096 / 8) == 0);
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    CU_ASSERT_EQUAL(log_count(), 0);
    teardown();
}

/* A memory table change between passes: the rings are found again. */
static void test_table_change(void)
{
    setup(false);
    hdr(0x10000, VIRTIO_BLK_T_GET_ID, 0);
    desc(DESC, 0, 0x10000, 16, N, 1);
    desc(DESC, 1, 0x60000, 20, W | N, 2);
    desc(DESC, 2, 0x12000, 1, W, 0);
    uint16_t h = 0;
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    /* the same memory at another guest address and user address */
    struct vmmem_vhost_region r = {0x100000000ull, GUEST, UA + (1ull << 32), 0, gfd, 0, 0};
    VT_ASSERT_RC(vmmem_vhost_set_mem_table(d.vh, &r, 1), 0);
    CU_ASSERT_EQUAL(vq_translate(&d, &q), -1); /* old user addresses: gone */
    q.desc_ua += 1ull << 32;
    q.avail_ua += 1ull << 32;
    q.used_ua += 1ull << 32;
    VT_ASSERT_RC(vq_translate(&d, &q), 0);
    CU_ASSERT_EQUAL(q.desc, 0x100000000ull + DESC);
    hdr(0x10000, VIRTIO_BLK_T_GET_ID, 0);
    desc(DESC, 0, 0x100000000ull + 0x10000, 16, N, 1);
    desc(DESC, 1, 0x100000000ull + 0x61000, 20, W | N, 2);
    desc(DESC, 2, 0x100000000ull + 0x12001, 1, W, 0);
    CU_ASSERT_EQUAL(offer(&h, 1), 1);
    CU_ASSERT_EQUAL(g[0x12001], VIRTIO_BLK_S_OK);
    CU_ASSERT_EQUAL(memcmp(g + 0x61000, "vt-serial", 9), 0);
    CU_ASSERT_EQUAL(used_idx(), 2);
    teardown();
}

static const struct vt_test vublk_tests[] = {
    {"IN/OUT/GET_ID/FLUSH: exact bytes, status, used elements", test_in_out_exact},
    {"malformed chains completed, never followed; read-only image", test_malformed_chains},
    {"broken rings stopped", test_broken_rings},
    {"interrupts: NO_INTERRUPT and EVENT_IDX", test_notifications},
    {"dirty log: exactly the pages the back-end wrote", test_dirty_log},
    {"memory table change between passes", test_table_change},
    {NULL, NULL},
};

static const struct vt_suite vublk_suite = {"vhost-user-blk queues", NULL, NULL, vublk_tests};

int main(void)
{
    const struct vt_suite *suites[] = {&vublk_suite, NULL};
    return vt_main(suites);
}

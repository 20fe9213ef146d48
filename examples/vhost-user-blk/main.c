/*
 * vmmem-vhost-user-blk: serve one raw disk image to a vhost-user front-end
 * (QEMU: -chardev socket,path=SOCK -device vhost-user-blk-pci,chardev=...).
 * See docs/vhost-user.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vu.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vmmem-vhost-user-blk --socket PATH --image PATH [options]\n"
            "  --read-only          serve the image read-only (writes fail with IOERR)\n"
            "  --read-only-silent   with --read-only: do not announce VIRTIO_BLK_F_RO, so\n"
            "                       the guest learns it from I/O errors (for tests)\n"
            "  --queues N           number of request queues (default 1)\n"
            "  --no-mem-slots       do not offer CONFIGURE_MEM_SLOTS (SET_MEM_TABLE only)\n"
            "  --reconnect          keep listening after the front-end disconnects\n"
            "  --serial TEXT        the GET_ID string (20 bytes at most)\n"
            "  --skip-log-marking   TEST ONLY: accept SET_LOG_BASE but never mark the log\n"
            "                       (breaks live migration; proves a migration test can fail)\n"
            "  -v, --verbose        log every message\n");
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        blk_log("socket path too long: %s", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1); /* length checked above */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket of an earlier run */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) {
        blk_log("listen on %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},   {"image", required_argument, NULL, 'i'},
        {"read-only", no_argument, NULL, 'r'},      {"queues", required_argument, NULL, 'q'},
        {"no-mem-slots", no_argument, NULL, 'n'},   {"reconnect", no_argument, NULL, 'R'},
        {"serial", required_argument, NULL, 'S'},   {"skip-log-marking", no_argument, NULL, 'L'},
        {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
        {"read-only-silent", no_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    const char *sock = NULL, *image = NULL, *serial = "vmmem-vhost-user-blk";
    bool reconnect = false;
    static struct dev d;
    struct vu u;
    memset(&u, 0, sizeof u);
    d.nqueues = 1;
    int c;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'i': image = optarg; break;
        case 'r': d.read_only = true; break;
        case 'o': u.opt.ro_silent = true; break;
        case 'q': {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > 64) {
                fprintf(stderr, "--queues: 1 to 64, not '%s'\n", optarg);
                return 2;
            }
            d.nqueues = (unsigned)n;
            break;
        }
        case 'n': u.opt.no_mem_slots = true; break;
        case 'R': reconnect = true; break;
        case 'S': serial = optarg; break;
        case 'L': u.opt.skip_log_marking = true; break;
        case 'v': u.opt.verbose++; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (sock == NULL || image == NULL || optind != argc || (u.opt.ro_silent && !d.read_only)) {
        usage(stderr);
        return 2;
    }
    d.verbose = u.opt.verbose;
    size_t sl = strlen(serial); /* up to 20 bytes, not NUL-terminated at 20 */
    memcpy(d.serial, serial, sl < sizeof d.serial ? sl : sizeof d.serial);
    d.image_fd = open(image, (d.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (d.image_fd < 0) {
        blk_log("%s: %s", image, strerror(errno));
        return 1;
    }
    off_t size = lseek(d.image_fd, 0, SEEK_END);
    if (size < (off_t)SECTOR) {
        blk_log("%s: not a disk image (size %lld)", image, (long long)size);
        return 1;
    }
    d.capacity = (uint64_t)size / SECTOR;
    /* Load the providers now, not at the first memory table: a missing
     * "file" provider is a start-up error, and the plugins' descriptors
     * (kept open while loaded) are there before the first front-end. */
    if (vmmem_registry_find(vmmem_default_registry(), "file") == NULL) {
        blk_log("no 'file' provider: %s (see `vmmem providers`)", vmmem_last_message());
        return 1;
    }
    int rc = vmmem_vhost_new(&d.vh, NULL, 0, NULL);
    if (rc < 0) {
        blk_log("vmmem_vhost_new: %s", vmmem_last_message());
        return 1;
    }
    d.vqs = calloc(d.nqueues, sizeof *d.vqs);
    if (d.vqs == NULL)
        return 1;
    for (unsigned i = 0; i < d.nqueues; i++)
        vq_reset(&d.vqs[i], i);
    u.d = &d;
    u.conn = -1;
    vu_install_signals();
    int lfd = listen_on(sock);
    if (lfd < 0)
        return 1;
    blk_log("serving %s (%" PRIu64 " sectors%s, %u queue%s) on %s", image, d.capacity,
            d.read_only ? ", read-only" : "", d.nqueues, d.nqueues > 1 ? "s" : "", sock);
    int status = 0;
    while (!vu_stopping()) {
        int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno == EINTR)
                continue;
            blk_log("accept: %s", strerror(errno));
            status = 1;
            break;
        }
        blk_log("front-end connected");
        int r = vu_serve(&u, conn);
        blk_log("front-end %s", r == 0 ? "disconnected" : r == 2 ? "session ended by signal"
                                                                 : "dropped (protocol error)");
        if (!reconnect || r == 2) {
            status = r == -1 ? 1 : 0;
            break;
        }
    }
    uint64_t served = 0;
    for (unsigned i = 0; i < d.nqueues; i++)
        served += d.vqs[i].served;
    blk_log("exit: %" PRIu64 " messages (%" PRIu64 " refused); requests in %" PRIu64
            " out %" PRIu64 " flush %" PRIu64 " get-id %" PRIu64 " unsupported %" PRIu64
            " ioerr %" PRIu64 " malformed %" PRIu64 "; log base %s",
            u.messages, u.errors, d.st.in, d.st.out, d.st.flush, d.st.get_id, d.st.unsupported,
            d.st.ioerr, d.st.malformed, u.saw_log_base ? "seen" : "never set");
    for (unsigned i = 0; i < d.nqueues; i++)
        blk_log("queue %u served %" PRIu64 " requests", i, d.vqs[i].served);
    (void)served;
    close(lfd);
    unlink(sock);
    close(d.image_fd);
    free(d.vqs);
    vmmem_vhost_free(d.vh);
    return status;
}

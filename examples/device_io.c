/*
 * The vm-memory README's second example, in C: a consumer (a virtual
 * device) writes five bytes at guest address 0xffc and reads them back.  It
 * does not know how the memory is provided; here the memory map comes from
 * a config string (two adjacent 4 KiB regions, so the access crosses the
 * seam at 0x1000), or from the first command-line argument.
 * Build: cc device_io.c $(pkg-config --cflags --libs vmmem)
 */
#include <stdio.h>
#include <string.h>

#include <vmmem/vmmem.h>

static int virt_device_io(const vmmem_map *mem)
{
    const uint8_t sample_buf[5] = {1, 2, 3, 4, 5};
    uint8_t buf[5] = {0};

    int64_t n = vmmem_write(mem, 0xffc, sample_buf, sizeof sample_buf);
    printf("device_io: write 5 bytes at 0xffc -> %lld\n", (long long)n);
    if (n != 5)
        return -1;
    n = vmmem_read(mem, 0xffc, buf, sizeof buf);
    printf("device_io: read 5 bytes at 0xffc -> %lld: %02x %02x %02x %02x %02x\n", (long long)n,
           buf[0], buf[1], buf[2], buf[3], buf[4]);
    if (n != 5)
        return -1;
    return memcmp(buf, sample_buf, sizeof buf) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *config = argc > 1 ? argv[1] : "mmap:addr=0,size=4K;mmap:addr=0x1000,size=4K";
    vmmem_map *mem;
    int rc = vmmem_map_from_config(&mem, NULL, config, NULL);
    if (rc < 0) {
        fprintf(stderr, "device_io: %s: %s\n", vmmem_err_name(rc), vmmem_last_message());
        return 1;
    }
    if (virt_device_io(mem) < 0) {
        fprintf(stderr, "device_io: FAILED: %s\n", vmmem_last_message());
        vmmem_map_unref(mem);
        return 1;
    }
    printf("device_io: ok\n");
    vmmem_map_unref(mem);
    return 0;
}

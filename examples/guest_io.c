/*
 * The seed README's two examples, in C: provide memory to a virtual device
 * (two adjacent 4 KiB anonymous regions), then do device I/O that crosses
 * their seam.  Build: cc guest_io.c $(pkg-config --cflags --libs vmmem)
 */
#include <stdio.h>
#include <string.h>

#include <vmmem/vmmem.h>

/* A device only needs a map: it does not know how the memory was mapped. */
static int virt_device_io(const vmmem_map *mem)
{
    const uint8_t sample[5] = {1, 2, 3, 4, 5};
    uint8_t buf[5] = {0};

    if (vmmem_write(mem, 0xffc, sample, sizeof sample) != 5)
        return -1;
    if (vmmem_read(mem, 0xffc, buf, sizeof buf) != 5)
        return -1;
    return memcmp(buf, sample, sizeof buf) == 0 ? 0 : -1;
}

int main(void)
{
    vmmem_map *mem;
    int rc = vmmem_map_from_config(&mem, NULL, "mmap:addr=0,size=0x1000;mmap:addr=0x1000,size=0x1000",
                                   NULL);
    if (rc < 0) {
        fprintf(stderr, "guest_io: %s\n", vmmem_last_message());
        return 1;
    }
    rc = virt_device_io(mem);
    printf("guest_io: wrote and read back 5 bytes at 0xffc across two regions: %s\n",
           rc == 0 ? "ok" : "FAILED");
    vmmem_map_unref(mem);
    return rc == 0 ? 0 : 1;
}

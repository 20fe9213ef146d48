/*
 * The vm-memory README's first example, in C: create a VM's physical memory
 * in a hypervisor-specific way -- two adjacent 4 KiB anonymous regions at
 * guest addresses 0 and 0x1000, from a C array of region specs (the crate's
 * GuestMemoryMmap::from_ranges) -- and hand it to a virtual device that only
 * sees a vmmem_map.  Build: cc provide_mem.c $(pkg-config --cflags --libs vmmem)
 */
#include <stdio.h>
#include <string.h>

#include <vmmem/vmmem.h>

/* The second example (see device_io.c): the device writes and reads back. */
static int virt_device_io(const vmmem_map *mem)
{
    const uint8_t sample_buf[5] = {1, 2, 3, 4, 5};
    uint8_t buf[5] = {0};

    if (vmmem_write(mem, 0xffc, sample_buf, sizeof sample_buf) != 5)
        return -1;
    if (vmmem_read(mem, 0xffc, buf, sizeof buf) != 5)
        return -1;
    return memcmp(buf, sample_buf, sizeof buf) == 0 ? 0 : -1;
}

int main(void)
{
    const struct vmmem_region_spec ranges[] = {
        {.provider = "mmap", .addr = 0x0, .size = 0x1000},
        {.provider = "mmap", .addr = 0x1000, .size = 0x1000},
    };
    vmmem_map *gm;
    int rc = vmmem_map_new(&gm, NULL, ranges, 2, NULL);
    if (rc < 0) {
        fprintf(stderr, "provide_mem: %s: %s\n", vmmem_err_name(rc), vmmem_last_message());
        return 1;
    }
    for (size_t i = 0; i < vmmem_map_num_regions(gm); i++) {
        const vmmem_region *r = vmmem_map_region(gm, i);
        printf("provide_mem: region %zu: guest 0x%llx, %llu bytes\n", i,
               (unsigned long long)vmmem_region_start(r), (unsigned long long)vmmem_region_size(r));
    }
    rc = virt_device_io(gm);
    printf("provide_mem: virt_device_io: %s\n", rc == 0 ? "ok" : "FAILED");
    vmmem_map_unref(gm);
    return rc == 0 ? 0 : 1;
}

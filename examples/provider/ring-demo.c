/*
 * ring-demo: a VMM-side program that uses the out-of-tree "ring" provider
 * (ring.c) next to the installed "mmap" provider, through the default
 * registry (VMMEM_PLUGIN_PATH, then the installed plugin directory).
 *
 *     cc -shared -fPIC -o vmmem-ring.so ring.c $(pkg-config --cflags vmmem)
 *     cc -o ring-demo ring-demo.c $(pkg-config --cflags --libs vmmem)
 *     VMMEM_PLUGIN_PATH=$PWD ./ring-demo
 *
 * (If libvmmem is installed outside the loader's path, add
 * LD_LIBRARY_PATH=$(pkg-config --variable=libdir vmmem).)
 * Exits 0 when every check holds, 1 otherwise, with the library's message.
 */
#include <stdio.h>
#include <string.h>

#include <vmmem/vmmem.h>

static int fail(const char *what, int rc)
{
    fprintf(stderr, "ring-demo: %s: %s (%s)\n", what, vmmem_last_message(), vmmem_err_name(rc));
    return 1;
}

int main(void)
{
    /* 64K of ordinary RAM, then 32K of guest space backed by a 2-page ring. */
    const char *config = "mmap:addr=0,size=64K;ring:addr=64K,size=32K,pages=2,name=demo";
    vmmem_map *m = NULL;
    int rc = vmmem_map_from_config(&m, NULL, config, NULL);
    if (rc < 0)
        return fail("building the map", rc);

    /* A write that starts in RAM and ends in the ring. */
    static const char msg[] = "hello, ring";
    rc = vmmem_write_slice(m, 0x10000 - 4, msg, sizeof msg);
    if (rc < 0)
        return fail("write", rc);
    /* The ring is 8K: the part that landed in it shows up again 8K later. */
    char back[sizeof msg - 4];
    rc = vmmem_read_slice(m, 0x10000 + 0x2000, back, sizeof back);
    if (rc < 0)
        return fail("read", rc);
    if (memcmp(back, msg + 4, sizeof back) != 0) {
        fprintf(stderr, "ring-demo: ring did not wrap: got '%.*s'\n", (int)sizeof back, back);
        return 1;
    }
    struct vmmem_region_info info;
    vmmem_region_get_info(vmmem_map_region(m, 1), &info);
    printf("ring-demo: region %s [0x%llx, 0x%llx] file %s fd %d: read back '%s'\n",
           info.provider, (unsigned long long)info.start, (unsigned long long)info.last,
           info.file ? info.file : "-", info.fd, back);
    vmmem_map_unref(m);
    return 0;
}

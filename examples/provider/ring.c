/*
 * vmmem-ring: an example libvmmem provider, built outside the libvmmem tree.
 *
 * Provider "ring" serves a guest region from a ring of `pages=N` pages: the
 * region [addr, addr+size) is N pages of one memfd mapped over and over, so
 * guest byte addr + i and addr + i + N*page are the same byte.  A device
 * model that wraps around a small buffer, or a test that wants a large
 * guest range backed by little memory, can use it; it is also the classic
 * "magic ring buffer": an access that runs off the end of the ring comes out
 * at its start, with no special case.
 *
 *     ring:addr=0x100000,size=64K,pages=4          16K of memory seen 4 times
 *     ring:addr=0,size=1M,pages=1,name=scratch     the memfd's name
 *
 * size must be a multiple of the page size; the last copy of the ring may be
 * partial.  The region reports the memfd (fd, file "memfd:NAME") so a VMM can
 * hand the ring to another process.
 *
 * Build (nothing but the installed headers; a plugin does not link libvmmem,
 * the core hands it what it needs through struct vmmem_host):
 *
 *     cc -shared -fPIC -o vmmem-ring.so ring.c $(pkg-config --cflags vmmem)
 *
 * Use: load it by absolute path (vmmem_registry_load(reg, "/abs/vmmem-ring.so"))
 * or put its directory in VMMEM_PLUGIN_PATH; then name "ring" in a config
 * string.  ring-demo.c next to this file does that.
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vmmem/provider.h>

/* The core's services; set once by the entry function. */
static const struct vmmem_host *host;

static const struct vmmem_option_desc ring_options[] = {
    {"pages", VMMEM_OPT_VALUE | VMMEM_OPT_REQUIRED, "pages in the ring (>= 1)"},
    {"name", VMMEM_OPT_VALUE, "memfd name (default \"vmmem-ring\")"},
    {NULL, 0, NULL},
};

struct ring_state {
    void *base;
    size_t size;
    int fd;
    char file[96]; /* "memfd:NAME", reported as mapping->file */
};

static void ring_release(struct ring_state *st)
{
    if (st->base != NULL)
        munmap(st->base, st->size); /* one call drops every copy */
    if (st->fd >= 0)
        close(st->fd);
    free(st);
}

static int ring_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    (void)p;
    const uint64_t page = host->page_size;
    uint64_t pages = 0;
    /* The core has checked keys against ring_options: pages= is present. */
    const char *pages_s = vmmem_spec_get(spec, "pages");
    /* The host's option kit quotes the option and points at its column. */
    if (host->parse_size(pages_s, &pages) < 0 || pages == 0 || pages > SIZE_MAX / page)
        return host->option_error(spec, "pages", VMMEM_EBAD_VALUE, "is not a count >= 1");
    if (spec->size % page != 0 || spec->size > SIZE_MAX)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "ring region at 0x%llx: size 0x%llx is not a multiple of the "
                               "page size %llu",
                               (unsigned long long)spec->addr, (unsigned long long)spec->size,
                               (unsigned long long)page);
    const char *name = vmmem_spec_get(spec, "name");
    if (name == NULL)
        name = "vmmem-ring";

    struct ring_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    st->fd = -1;
    st->size = (size_t)spec->size;
    snprintf(st->file, sizeof st->file, "memfd:%s", name);
    size_t ring = (size_t)(pages * page);

    int rc;
    st->fd = memfd_create(name, MFD_CLOEXEC);
    if (st->fd < 0 || ftruncate(st->fd, (off_t)ring) < 0) {
        rc = -errno;
        host->set_error(rc, "ring region at 0x%llx: cannot make a %zu-byte memfd '%s': %s",
                        (unsigned long long)spec->addr, ring, name, strerror(-rc));
        goto fail;
    }
    /* Reserve the whole range, then map the ring into it copy by copy. */
    void *base = mmap(NULL, st->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        host->set_error(rc, "ring region at 0x%llx: cannot reserve %zu bytes: %s",
                        (unsigned long long)spec->addr, st->size, strerror(-rc));
        goto fail;
    }
    st->base = base;
    for (size_t off = 0; off < st->size; off += ring) {
        size_t len = st->size - off < ring ? st->size - off : ring;
        if (mmap((char *)base + off, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, st->fd,
                 0) == MAP_FAILED) {
            rc = -errno;
            host->set_error(rc, "ring region at 0x%llx: mapping copy at +0x%zx failed: %s",
                            (unsigned long long)spec->addr, off, strerror(-rc));
            goto fail;
        }
    }
    out->host = base;
    out->prot = VMMEM_PROT_RW;
    out->fd = st->fd;
    out->file_offset = 0;
    out->hugetlbfs = 0;
    out->file = st->file;
    out->priv = st;
    return 0;

fail:
    ring_release(st); /* nothing stays mapped or open on failure */
    return rc;
}

static void ring_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *m)
{
    (void)p;
    (void)spec;
    ring_release(m->priv);
    m->priv = NULL;
}

static const struct vmmem_provider ring_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "ring",
    .description = "a ring of pages=N memfd pages repeated over the region (example)",
    .options = ring_options,
    .map = ring_map,
    .unmap = ring_unmap,
    /* begin_access/end_access stay NULL: the region has a permanent host
     * address, so the core reaches it without calling the provider. */
};

static const struct vmmem_provider *const providers[] = {&ring_provider};

static const struct vmmem_plugin plugin = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_plugin),
    .name = "vmmem-ring",
    .n_providers = 1,
    .providers = providers,
};

/* The one exported symbol (VMMEM_PLUGIN_ENTRY_NAME). */
VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *h);
VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *h)
{
    if (h == NULL || h->abi_version != VMMEM_PROVIDER_ABI_VERSION)
        return NULL; /* the core reports the mismatch, naming this file */
    if (h->struct_size < sizeof(struct vmmem_host)) {
        h->set_error(VMMEM_EABI, "vmmem-ring needs a newer libvmmem (host table %u < %zu bytes)",
                     h->struct_size, sizeof(struct vmmem_host));
        return NULL;
    }
    host = h;
    return &plugin;
}

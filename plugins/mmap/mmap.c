/*
 * Provider "mmap": anonymous guest memory.  Options: shared | private,
 * prot=r|rw, populate, noreserve, hugetlb, hugepage=<size> (implies hugetlb).
 * Through the C API it also adopts a mapping the VMM made (spec->host), which
 * it then never unmaps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <vmmem/provider.h>

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

static const struct vmmem_host *host;

#include "mmap_opts.h"

static const struct vmmem_option_desc mmap_options[] = {
    {"shared", VMMEM_OPT_FLAG, "MAP_SHARED (visible to child processes)"},
    {"private", VMMEM_OPT_FLAG, "MAP_PRIVATE (the default)"},
    {"prot", VMMEM_OPT_VALUE, "r (read-only) or rw (default)"},
    {"populate", VMMEM_OPT_FLAG, "pre-fault every page (MAP_POPULATE)"},
    {"noreserve", VMMEM_OPT_FLAG, "do not reserve swap (MAP_NORESERVE)"},
    {"hugetlb", VMMEM_OPT_FLAG, "back with huge pages (MAP_HUGETLB)"},
    {"hugepage", VMMEM_OPT_VALUE, "huge page size, e.g. 2M or 1G (implies hugetlb)"},
    {NULL, 0, NULL},
};

struct mmap_state {
    size_t len; /* what was mapped (rounded up to the page size) */
    bool adopted;
};

static int mmap_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    (void)p;
    uint64_t page = host->page_size;
    bool rw, shared;
    int rc = mmap_parse_prot(spec, &rw);
    if (rc < 0)
        return rc;
    int prot = rw ? PROT_READ | PROT_WRITE : PROT_READ;
    if (spec->host != NULL) {
        if (((uintptr_t)spec->host & (page - 1)) != 0)
            return host->set_error(-EINVAL, "mmap: adopted host pointer %p is not page-aligned",
                                   spec->host);
        struct mmap_state *st = calloc(1, sizeof *st);
        if (st == NULL)
            return host->set_error(-ENOMEM, "out of memory");
        st->adopted = true;
        st->len = (size_t)spec->size;
        out->host = spec->host;
        out->prot = (prot & PROT_WRITE) ? VMMEM_PROT_RW : VMMEM_PROT_READ;
        out->hugetlbfs = -1;
        out->priv = st;
        return 0;
    }
    if ((rc = mmap_parse_sharing(spec, &shared)) < 0)
        return rc;
    int flags = MAP_ANONYMOUS | (shared ? MAP_SHARED : MAP_PRIVATE);
    if (vmmem_spec_has(spec, "populate"))
        flags |= MAP_POPULATE;
    if (vmmem_spec_has(spec, "noreserve"))
        flags |= MAP_NORESERVE;
    const char *hp = vmmem_spec_get(spec, "hugepage");
    bool huge = vmmem_spec_has(spec, "hugetlb") || hp != NULL;
    if (huge) {
        flags |= MAP_HUGETLB;
        if (hp != NULL) {
            uint64_t hsz = 0;
            if (host->parse_size(hp, &hsz) < 0 || hsz == 0 || (hsz & (hsz - 1)) != 0)
                return host->option_error(spec, "hugepage", VMMEM_EBAD_VALUE,
                                          "is not a power-of-two size");
            flags |= (int)__builtin_ctzll(hsz) << MAP_HUGE_SHIFT;
            page = hsz;
        } else {
            page = 2u << 20;
        }
    }
    size_t len = 0;
    if ((rc = mmap_round_len(spec, page, &len)) < 0)
        return rc;
    struct mmap_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    st->len = len;
    void *a = mmap(NULL, st->len, prot, flags, -1, 0);
    if (a == MAP_FAILED) {
        int e = errno;
        free(st);
        return host->set_error(-e, "mmap of %llu bytes for region at 0x%llx failed: %s%s",
                               (unsigned long long)spec->size, (unsigned long long)spec->addr,
                               strerror(e),
                               huge ? " (are huge pages reserved in /proc/sys/vm/nr_hugepages?)"
                                    : "");
    }
    out->host = a;
    out->prot = (prot & PROT_WRITE) ? VMMEM_PROT_RW : VMMEM_PROT_READ;
    out->hugetlbfs = huge ? 1 : 0;
    out->priv = st;
    return 0;
}

static void mmap_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *m)
{
    (void)p;
    (void)spec;
    struct mmap_state *st = m->priv;
    if (st != NULL && !st->adopted)
        munmap(m->host, st->len);
    free(st);
    m->priv = NULL;
}

static const struct vmmem_provider mmap_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "mmap",
    .description = "anonymous memory (shared/private, hugetlb, populate, read-only), or an "
                   "adopted host mapping",
    .options = mmap_options,
    .map = mmap_map,
    .unmap = mmap_unmap,
};

VMMEM_PLUGIN_DEFINE("vmmem-mmap", host, &mmap_provider)

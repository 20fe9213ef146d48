/*
 * Provider "mmap" on Windows: anonymous guest memory from VirtualAlloc
 * (private, the default) or a page-file-backed section (shared).  Same
 * options and errors as mmap.c: prot=r|rw, shared | private, populate
 * (touches every page), noreserve (accepted: Windows commits on demand the
 * same way); hugetlb and hugepage= are VMMEM_EUNSUPPORTED (large pages need
 * SeLockMemoryPrivilege).  Adopts a host mapping made by the VMM
 * (spec->host), which it then never frees.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <vmmem/provider.h>

static const struct vmmem_host *host;

#include "mmap_opts.h"

static const struct vmmem_option_desc mmap_options[] = {
    {"shared", VMMEM_OPT_FLAG, "a page-file-backed section (shareable)"},
    {"private", VMMEM_OPT_FLAG, "VirtualAlloc (the default)"},
    {"prot", VMMEM_OPT_VALUE, "r (read-only) or rw (default)"},
    {"populate", VMMEM_OPT_FLAG, "touch every page at creation"},
    {"noreserve", VMMEM_OPT_FLAG, "accepted (no effect on Windows)"},
    {"hugetlb", VMMEM_OPT_FLAG, "not supported on Windows"},
    {"hugepage", VMMEM_OPT_VALUE, "not supported on Windows"},
    {NULL, 0, NULL},
};

struct mmap_state {
    size_t len;
    bool adopted;
    HANDLE section; /* shared: the section, else NULL */
};

static int win_err(const struct vmmem_region_spec *spec, const char *what, DWORD e)
{
    int code = e == ERROR_NOT_ENOUGH_MEMORY || e == ERROR_COMMITMENT_LIMIT ||
                       e == ERROR_OUTOFMEMORY
                   ? -ENOMEM
                   : -EINVAL;
    return host->set_error(code, "mmap region at 0x%llx: %s of %llu bytes failed (Windows error %lu)",
                           (unsigned long long)spec->addr, what,
                           (unsigned long long)spec->size, (unsigned long)e);
}

static int mmap_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    (void)p;
    uint64_t page = host->page_size;
    bool rw, shared;
    int rc = mmap_parse_prot(spec, &rw);
    if (rc < 0)
        return rc;
    if (spec->host != NULL) {
        if (((uintptr_t)spec->host & (page - 1)) != 0)
            return host->set_error(-EINVAL, "mmap: adopted host pointer %p is not page-aligned",
                                   spec->host);
        if (spec->size > SIZE_MAX)
            return host->set_error(VMMEM_EOVERFLOW,
                                   "mmap region at 0x%llx: adopted size 0x%llx is larger than "
                                   "the host's address space",
                                   (unsigned long long)spec->addr,
                                   (unsigned long long)spec->size);
        struct mmap_state *st = calloc(1, sizeof *st);
        if (st == NULL)
            return host->set_error(-ENOMEM, "out of memory");
        st->adopted = true;
        st->len = (size_t)spec->size;
        out->host = spec->host;
        out->prot = rw ? VMMEM_PROT_RW : VMMEM_PROT_READ;
        out->hugetlbfs = -1;
        out->priv = st;
        return 0;
    }
    if ((rc = mmap_parse_sharing(spec, &shared)) < 0)
        return rc;
    if (vmmem_spec_has(spec, "hugetlb") || vmmem_spec_has(spec, "hugepage"))
        return host->set_error(VMMEM_EUNSUPPORTED,
                               "mmap region at 0x%llx: huge pages (hugetlb, hugepage=) are not "
                               "supported on Windows",
                               (unsigned long long)spec->addr);
    size_t len = 0;
    if ((rc = mmap_round_len(spec, page, &len)) < 0)
        return rc;
    struct mmap_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    st->len = (size_t)len;
    void *a;
    if (shared) {
        st->section = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE,
                                         (DWORD)((uint64_t)len >> 32), (DWORD)len, NULL);
        if (st->section == NULL) {
            DWORD e = GetLastError();
            free(st);
            return win_err(spec, "CreateFileMapping", e);
        }
        a = MapViewOfFile(st->section, rw ? FILE_MAP_WRITE : FILE_MAP_READ, 0, 0, st->len);
        if (a == NULL) {
            DWORD e = GetLastError();
            CloseHandle(st->section);
            free(st);
            return win_err(spec, "MapViewOfFile", e);
        }
    } else {
        a = VirtualAlloc(NULL, st->len, MEM_RESERVE | MEM_COMMIT,
                         rw ? PAGE_READWRITE : PAGE_READONLY);
        if (a == NULL) {
            DWORD e = GetLastError();
            free(st);
            return win_err(spec, "VirtualAlloc", e);
        }
    }
    if (vmmem_spec_has(spec, "populate"))
        for (size_t off = 0; off < st->len; off += (size_t)page)
            (void)*(volatile const uint8_t *)((const uint8_t *)a + off);
    out->host = a;
    out->prot = rw ? VMMEM_PROT_RW : VMMEM_PROT_READ;
    out->hugetlbfs = 0;
    out->priv = st;
    return 0;
}

static void mmap_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *m)
{
    (void)p;
    (void)spec;
    struct mmap_state *st = m->priv;
    if (st != NULL && !st->adopted) {
        if (st->section != NULL) {
            UnmapViewOfFile(m->host);
            CloseHandle(st->section);
        } else {
            VirtualFree(m->host, 0, MEM_RELEASE);
        }
    }
    free(st);
    m->priv = NULL;
}

static const struct vmmem_provider mmap_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "mmap",
    .description = "anonymous memory (VirtualAlloc, or a shared section; read-only), or an "
                   "adopted host mapping",
    .options = mmap_options,
    .map = mmap_map,
    .unmap = mmap_unmap,
};

VMMEM_PLUGIN_DEFINE("vmmem-mmap", host, &mmap_provider)

/*
 * Provider "file" on Windows: guest memory backed by a file through
 * CreateFileMapping/MapViewOfFile.  The options and errors of file.c where
 * Windows has the thing:
 *   path=FILE (+create: create it and grow it to offset+size, removed again
 *   if the map then fails), fd=N (a C runtime descriptor; its handle is
 *   duplicated, the caller keeps N), offset= (a multiple of the page size;
 *   the view starts at the allocation granularity below it), shared (the
 *   default) | private (copy-on-write), prot=r|rw, nosizecheck.
 * memfd= and seal are Linux-only: VMMEM_EUNSUPPORTED.  A file shorter than
 * offset+size is -ERANGE, as on Linux.  The region reports no fd (the
 * provider holds a Windows handle, not a descriptor) and hugetlbfs -1.
 */
#include <errno.h>
#include <io.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include <vmmem/provider.h>

static const struct vmmem_host *host;

static const struct vmmem_option_desc file_options[] = {
    {"path", VMMEM_OPT_VALUE, "backing file (one of path=, fd=)"},
    {"fd", VMMEM_OPT_VALUE, "inherited C runtime descriptor; its handle is duplicated"},
    {"memfd", VMMEM_OPT_VALUE, "Linux only (VMMEM_EUNSUPPORTED here)"},
    {"offset", VMMEM_OPT_VALUE, "page-aligned offset of the region in the file (default 0)"},
    {"create", VMMEM_OPT_FLAG, "with path=: create the file and grow it to offset+size"},
    {"seal", VMMEM_OPT_FLAG, "Linux only (VMMEM_EUNSUPPORTED here)"},
    {"shared", VMMEM_OPT_FLAG, "guest writes reach the file (the default)"},
    {"private", VMMEM_OPT_FLAG, "copy-on-write: guest writes stay in this process"},
    {"prot", VMMEM_OPT_VALUE, "r (read-only) or rw (default)"},
    {"nosizecheck", VMMEM_OPT_FLAG, "map even if the size reads as too small"},
    {NULL, 0, NULL},
};

#include "file_opts.h"

struct file_state {
    HANDLE file, section;
    void *view; /* MapViewOfFile base (granularity-aligned) */
    char *name;
};


static int errno_of(DWORD e)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
        return EACCES;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_COMMITMENT_LIMIT:
        return ENOMEM;
    case ERROR_INVALID_HANDLE:
        return EBADF;
    case ERROR_DISK_FULL:
        return ENOSPC;
    default:
        return EIO;
    }
}

static void release(struct file_state *st)
{
    if (st == NULL)
        return;
    if (st->view != NULL)
        UnmapViewOfFile(st->view);
    if (st->section != NULL)
        CloseHandle(st->section);
    if (st->file != NULL && st->file != INVALID_HANDLE_VALUE)
        CloseHandle(st->file);
    free(st->name);
    free(st);
}

static int file_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    (void)p;
    struct file_req rq;
    int rc = parse_req(spec, &rq);
    if (rc < 0)
        return rc;
    uint64_t page = host->page_size;
    uint64_t len = spec->size + (page - 1);
    if (len < spec->size || (len & ~(page - 1)) > SIZE_MAX)
        return host->set_error(VMMEM_EOVERFLOW, "file region at 0x%llx: size 0x%llx too large",
                               ADDR(spec), ULL(spec->size));
    struct file_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return host->set_error(-ENOMEM, "out of memory");
    bool created = false;
    uint64_t need = rq.offset + spec->size;
    bool write_handle = (rq.shared && rq.rw) || rq.create;
    DWORD access = GENERIC_READ | (write_handle ? GENERIC_WRITE : 0);

    if (rq.path != NULL) {
        st->name = strdup(rq.path);
        if (st->name == NULL) {
            rc = host->set_error(-ENOMEM, "out of memory");
            goto fail;
        }
        DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
        if (rq.create) {
            st->file = CreateFileA(rq.path, access, share, NULL, CREATE_NEW,
                                   FILE_ATTRIBUTE_NORMAL, NULL);
            if (st->file != INVALID_HANDLE_VALUE)
                created = true;
            else if (GetLastError() != ERROR_FILE_EXISTS)
                goto open_fail;
        }
        if (!created)
            st->file = CreateFileA(rq.path, access, share, NULL, OPEN_EXISTING,
                                   FILE_ATTRIBUTE_NORMAL, NULL);
        if (st->file == INVALID_HANDLE_VALUE) {
        open_fail:;
            DWORD e = GetLastError();
            st->file = NULL;
            DWORD attr = GetFileAttributesA(rq.path);
            if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY))
                rc = host->set_error(-EISDIR, "file region at 0x%llx: '%s' is a directory",
                                     ADDR(spec), rq.path);
            else if (errno_of(e) == ENOENT)
                rc = host->set_error(-ENOENT, "file region at 0x%llx: '%s' does not exist%s",
                                     ADDR(spec), rq.path,
                                     rq.create ? "" : " (add 'create' to create it)");
            else if (errno_of(e) == EACCES && write_handle)
                rc = host->set_error(-EACCES,
                                     "file region at 0x%llx: cannot open '%s' read-write (a "
                                     "read-only file needs prot=r or private)",
                                     ADDR(spec), rq.path);
            else
                rc = host->set_error(-errno_of(e),
                                     "file region at 0x%llx: cannot open '%s' (Windows error %lu)",
                                     ADDR(spec), rq.path, (unsigned long)e);
            goto fail;
        }
    } else {
        intptr_t h = _get_osfhandle(rq.user_fd);
        if (h == -1 || h == -2) {
            rc = host->set_error(-EBADF, "file region at 0x%llx: fd=%d is not an open descriptor",
                                 ADDR(spec), rq.user_fd);
            goto fail;
        }
        if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)h, GetCurrentProcess(), &st->file, 0,
                             FALSE, DUPLICATE_SAME_ACCESS)) {
            st->file = NULL;
            rc = host->set_error(-EBADF, "file region at 0x%llx: cannot duplicate fd=%d",
                                 ADDR(spec), rq.user_fd);
            goto fail;
        }
        char buf[32];
        snprintf(buf, sizeof buf, "fd:%d", rq.user_fd);
        if ((st->name = strdup(buf)) == NULL) {
            rc = host->set_error(-ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (GetFileType(st->file) != FILE_TYPE_DISK) {
        rc = host->set_error(-EINVAL, "file region at 0x%llx: '%s' is not a disk file",
                             ADDR(spec), st->name);
        goto fail;
    }
    LARGE_INTEGER size;
    if (!GetFileSizeEx(st->file, &size)) {
        rc = host->set_error(-EIO, "file region at 0x%llx: cannot read the size of '%s'",
                             ADDR(spec), st->name);
        goto fail;
    }
    uint64_t have = size.QuadPart > 0 ? (uint64_t)size.QuadPart : 0;
    if (rq.create && have < need) {
        LARGE_INTEGER to;
        to.QuadPart = (LONGLONG)need;
        if (!SetFilePointerEx(st->file, to, NULL, FILE_BEGIN) || !SetEndOfFile(st->file)) {
            DWORD e = GetLastError();
            rc = host->set_error(-errno_of(e),
                                 "file region at 0x%llx: cannot size '%s' to %llu bytes "
                                 "(Windows error %lu)",
                                 ADDR(spec), st->name, ULL(need), (unsigned long)e);
            goto fail;
        }
        have = need;
    }
    if (!rq.nosizecheck && have < need) {
        rc = host->set_error(-ERANGE,
                             "file region at 0x%llx: '%s' is %llu bytes, shorter than offset + "
                             "size = %llu bytes (0x%llx + 0x%llx); grow the file first",
                             ADDR(spec), st->name, ULL(have), ULL(need), ULL(rq.offset),
                             ULL(spec->size));
        goto fail;
    }
    /* Views start on the allocation granularity (64 KiB): map from there. */
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    uint64_t gran = si.dwAllocationGranularity ? si.dwAllocationGranularity : 65536;
    uint64_t delta = rq.offset % gran;
    uint64_t view_off = rq.offset - delta;
    if (spec->size > SIZE_MAX - delta) {
        rc = host->set_error(VMMEM_EOVERFLOW, "file region at 0x%llx: size 0x%llx too large",
                             ADDR(spec), ULL(spec->size));
        goto fail;
    }
    DWORD page_prot = !rq.rw ? PAGE_READONLY : rq.shared ? PAGE_READWRITE : PAGE_WRITECOPY;
    st->section = CreateFileMappingA(st->file, NULL, page_prot, 0, 0, NULL);
    if (st->section == NULL) {
        DWORD e = GetLastError();
        rc = host->set_error(-errno_of(e),
                             "file region at 0x%llx: CreateFileMapping of '%s' failed (Windows "
                             "error %lu)",
                             ADDR(spec), st->name, (unsigned long)e);
        goto fail;
    }
    DWORD map_access = !rq.rw ? FILE_MAP_READ : rq.shared ? FILE_MAP_WRITE : FILE_MAP_COPY;
    st->view = MapViewOfFile(st->section, map_access, (DWORD)(view_off >> 32), (DWORD)view_off,
                             (SIZE_T)(delta + spec->size));
    if (st->view == NULL) {
        DWORD e = GetLastError();
        rc = host->set_error(-errno_of(e),
                             "file region at 0x%llx: MapViewOfFile of %llu bytes of '%s' at "
                             "offset 0x%llx failed (Windows error %lu)",
                             ADDR(spec), ULL(spec->size), st->name, ULL(rq.offset),
                             (unsigned long)e);
        goto fail;
    }
    out->host = (uint8_t *)st->view + delta;
    out->prot = rq.rw ? VMMEM_PROT_RW : VMMEM_PROT_READ;
    out->fd = -1;
    out->file_offset = rq.offset;
    out->hugetlbfs = -1;
    out->file = st->name;
    out->priv = st;
    return 0;

fail:
    release(st);
    if (created)
        DeleteFileA(rq.path);
    return rc;
}

static void file_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *m)
{
    (void)p;
    (void)spec;
    release(m->priv);
    m->priv = NULL;
    m->host = NULL;
    m->file = NULL;
}

static const struct vmmem_provider file_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "file",
    .description = "a file or inherited descriptor (offset, shared/private, read-only), "
                   "through CreateFileMapping",
    .options = file_options,
    .map = file_map,
    .unmap = file_unmap,
};

VMMEM_PLUGIN_DEFINE("vmmem-file", host, &file_provider)

/*
 * The file provider's options, parsed the same way by the POSIX plugin
 * (file.c) and the Windows one (file_win.c).  Included by exactly one of
 * them; it uses their `host` table.
 */
#ifndef VMMEM_FILE_OPTS_H
#define VMMEM_FILE_OPTS_H

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <vmmem/provider.h>

#define ADDR(spec) ((unsigned long long)(spec)->addr)
#define ULL(x) ((unsigned long long)(x))

/* The parsed options of one region. */
struct file_req {
    const char *path;
    const char *memfd;
    int user_fd; /* fd=, or -1 */
    uint64_t offset;
    bool shared, rw, create, seal, nosizecheck;
};

static int parse_req(const struct vmmem_region_spec *spec, struct file_req *rq)
{
#if defined(_WIN32)
    if (vmmem_spec_has(spec, "memfd") || vmmem_spec_has(spec, "seal"))
        return host->set_error(VMMEM_EUNSUPPORTED,
                               "file region at 0x%llx: memfd= and seal are Linux-only (use path=)",
                               ADDR(spec));
#endif
    memset(rq, 0, sizeof *rq);
    rq->user_fd = -1;
    rq->path = vmmem_spec_get(spec, "path");
    rq->memfd = vmmem_spec_get(spec, "memfd");
    const char *fd_s = vmmem_spec_get(spec, "fd");
    int n = (rq->path != NULL) + (rq->memfd != NULL) + (fd_s != NULL);
    if (n == 0)
        return host->set_error(VMMEM_EMISSING_KEY,
                               "file region at 0x%llx needs one of path=, fd= or memfd=",
                               ADDR(spec));
    if (n > 1)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "file region at 0x%llx: path=, fd= and memfd= exclude each other "
                               "(got%s%s%s)",
                               ADDR(spec), rq->path ? " path=" : "", fd_s ? " fd=" : "",
                               rq->memfd ? " memfd=" : "");
    if (rq->path != NULL && rq->path[0] == '\0')
        return host->set_error(VMMEM_EBAD_VALUE, "file region at 0x%llx: path= is empty",
                               ADDR(spec));
    if (fd_s != NULL) {
        long long v = 0; /* long is 32 bits on some hosts: v * 10 must not overflow */
        const char *p = fd_s;
        for (; *p >= '0' && *p <= '9' && v <= INT_MAX; p++)
            v = v * 10 + (*p - '0');
        if (p == fd_s || *p != '\0' || v > INT_MAX)
            return host->set_error(VMMEM_EBAD_VALUE,
                                   "file region at 0x%llx: fd='%s' is not a descriptor number",
                                   ADDR(spec), fd_s);
        rq->user_fd = (int)v;
    }
    const char *off_s = vmmem_spec_get(spec, "offset");
    if (off_s != NULL) {
        int rc = host->parse_size(off_s, &rq->offset);
        if (rc < 0)
            return host->set_error(rc, "file region at 0x%llx: offset='%s' is not a number",
                                   ADDR(spec), off_s);
        if ((rq->offset & (host->page_size - 1)) != 0)
            return host->set_error(VMMEM_EBAD_VALUE,
                                   "file region at 0x%llx: offset=%s (0x%llx) is not a multiple "
                                   "of the page size %llu",
                                   ADDR(spec), off_s, ULL(rq->offset), ULL(host->page_size));
    }
    rq->shared = !vmmem_spec_has(spec, "private");
    if (!rq->shared && vmmem_spec_has(spec, "shared"))
        return host->set_error(VMMEM_EBAD_VALUE,
                               "file region at 0x%llx: 'shared' and 'private' exclude each other",
                               ADDR(spec));
    const char *prot_s = vmmem_spec_get(spec, "prot");
    rq->rw = true;
    if (prot_s != NULL) {
        if (strcmp(prot_s, "r") == 0)
            rq->rw = false;
        else if (strcmp(prot_s, "rw") != 0)
            return host->set_error(VMMEM_EBAD_VALUE,
                                   "file region at 0x%llx: prot='%s' is not 'r' or 'rw'",
                                   ADDR(spec), prot_s);
    }
    rq->create = vmmem_spec_has(spec, "create");
    if (rq->create && rq->path == NULL)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "file region at 0x%llx: 'create' needs path=", ADDR(spec));
    if (rq->create && !rq->rw)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "file region at 0x%llx: 'create' makes a file to hold guest "
                               "memory and needs prot=rw",
                               ADDR(spec));
    rq->seal = vmmem_spec_has(spec, "seal");
    if (rq->seal && rq->memfd == NULL)
        return host->set_error(VMMEM_EBAD_VALUE,
                               "file region at 0x%llx: 'seal' needs memfd= (seal an fd= memfd "
                               "yourself before passing it)",
                               ADDR(spec));
    rq->nosizecheck = vmmem_spec_has(spec, "nosizecheck");
    if (rq->offset > (uint64_t)INT64_MAX || spec->size > (uint64_t)INT64_MAX - rq->offset)
        return host->set_error(VMMEM_EOVERFLOW,
                               "file region at 0x%llx: offset 0x%llx + size 0x%llx is past the "
                               "largest file offset",
                               ADDR(spec), ULL(rq->offset), ULL(spec->size));
    if (spec->host != NULL)
        return host->set_error(VMMEM_EUNSUPPORTED,
                               "file region at 0x%llx: the file provider does not adopt host "
                               "mappings",
                               ADDR(spec));
    return 0;
}

#endif

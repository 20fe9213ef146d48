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

/* Option errors go through the host's option kit (provider.h): the message
 * quotes the option and names its region and column in the config. */
static int parse_req(const struct vmmem_region_spec *spec, struct file_req *rq)
{
#if defined(_WIN32)
    if (vmmem_spec_has(spec, "memfd") || vmmem_spec_has(spec, "seal"))
        return host->option_error(spec, vmmem_spec_has(spec, "memfd") ? "memfd" : "seal",
                                  VMMEM_EUNSUPPORTED, "is Linux-only (use path=)");
#endif
    memset(rq, 0, sizeof *rq);
    rq->user_fd = -1;
    rq->path = vmmem_spec_get(spec, "path");
    rq->memfd = vmmem_spec_get(spec, "memfd");
    const char *fd_s = vmmem_spec_get(spec, "fd");
    int n = (rq->path != NULL) + (rq->memfd != NULL) + (fd_s != NULL);
    if (n == 0)
        return host->option_error(spec, NULL, VMMEM_EMISSING_KEY,
                                  "needs one of path=, fd= or memfd=");
    if (n > 1)
        return host->option_error(spec, rq->memfd ? "memfd" : "fd", VMMEM_EBAD_VALUE,
                                  "excludes %s (path=, fd= and memfd= exclude each other)",
                                  rq->path ? "path=" : "fd=");
    if (fd_s != NULL) {
        long long v = 0; /* long is 32 bits on some hosts: v * 10 must not overflow */
        const char *p = fd_s;
        for (; *p >= '0' && *p <= '9' && v <= INT_MAX; p++)
            v = v * 10 + (*p - '0');
        if (p == fd_s || *p != '\0' || v > INT_MAX)
            return host->option_error(spec, "fd", VMMEM_EBAD_VALUE, "is not a descriptor number");
        rq->user_fd = (int)v;
    }
    int rc = host->option_size(spec, "offset", 0, &rq->offset);
    if (rc < 0)
        return rc;
    if ((rq->offset & (host->page_size - 1)) != 0)
        return host->option_error(spec, "offset", VMMEM_EBAD_VALUE,
                                  "(0x%llx) is not a multiple of the page size %llu",
                                  ULL(rq->offset), ULL(host->page_size));
    if ((rc = host->option_sharing(spec, true, &rq->shared)) < 0)
        return rc;
    int prot;
    if ((rc = host->option_prot(spec, &prot)) < 0)
        return rc;
    rq->rw = (prot & VMMEM_PROT_WRITE) != 0;
    rq->create = vmmem_spec_has(spec, "create");
    if (rq->create && rq->path == NULL)
        return host->option_error(spec, "create", VMMEM_EBAD_VALUE, "needs path=");
    if (rq->create && !rq->rw)
        return host->option_error(spec, "create", VMMEM_EBAD_VALUE,
                                  "makes a file to hold guest memory and needs prot=rw");
    rq->seal = vmmem_spec_has(spec, "seal");
    if (rq->seal && rq->memfd == NULL)
        return host->option_error(spec, "seal", VMMEM_EBAD_VALUE,
                                  "needs memfd= (seal an fd= memfd yourself before passing it)");
    rq->nosizecheck = vmmem_spec_has(spec, "nosizecheck");
    if (rq->offset > (uint64_t)INT64_MAX || spec->size > (uint64_t)INT64_MAX - rq->offset)
        return host->option_error(spec, "offset", VMMEM_EOVERFLOW,
                                  "+ size 0x%llx is past the largest file offset",
                                  ULL(spec->size));
    if (spec->host != NULL)
        return host->set_error(VMMEM_EUNSUPPORTED,
                               "file region at 0x%llx: the file provider does not adopt host "
                               "mappings",
                               ADDR(spec));
    return 0;
}

#endif

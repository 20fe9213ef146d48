/*
 * Compatibility plugin (docs/releasing.md): compiled against the frozen
 * headers of release 0.1 (tests/compat/include), loaded by this build's
 * library.  It uses every provider hook and every host service of that
 * release: "compat" maps plain memory (map/unmap, host->parse_size for its
 * "fill=" option, host->set_error for "fail"), "compat_moa" is map-on-access
 * (begin_access/end_access).  Counts live behind p->user (compat.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <vmmem/provider.h>

#include "compat.h"

static const struct vmmem_host *host;
static struct compat_counts plain_counts = {.magic = COMPAT_MAGIC};
static struct compat_counts moa_counts = {.magic = COMPAT_MAGIC};

static const struct vmmem_option_desc plain_opts[] = {
    {"fill", VMMEM_OPT_VALUE, "byte value to fill the region with (a size: 0x5a, 1K...)"},
    {"fail", VMMEM_OPT_FLAG, "refuse to map, with a message"},
    {NULL, 0, NULL}};
static const struct vmmem_option_desc moa_opts[] = {{NULL, 0, NULL}};

static int compat_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                      struct vmmem_mapping *out)
{
    struct compat_counts *c = p->user;
    c->host_abi = host->abi_version;
    c->host_size = host->struct_size;
    c->page_size = (unsigned long)host->page_size;
    if (vmmem_spec_has(spec, "fail")) {
        c->errors++;
        return host->set_error(VMMEM_EBAD_VALUE, "compat: asked to fail at 0x%llx",
                               (unsigned long long)spec->addr);
    }
    uint64_t fill = 0;
    const char *f = vmmem_spec_get(spec, "fill");
    if (f != NULL) {
        int rc = host->parse_size(f, &fill);
        if (rc < 0)
            return rc;
    }
    if (spec->size > (16u << 20))
        return host->set_error(-ENOMEM, "compat: region too big");
    void *mem = malloc((size_t)spec->size);
    if (mem == NULL)
        return -ENOMEM;
    memset(mem, (int)(fill & 0xff), (size_t)spec->size);
    out->prot = VMMEM_PROT_RW;
    out->hugetlbfs = 0;
    out->priv = mem;
    if (strcmp(p->name, "compat") == 0) /* "compat_moa" leaves host NULL */
        out->host = mem;
    c->maps++;
    return 0;
}

static void compat_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                         struct vmmem_mapping *m)
{
    (void)spec;
    struct compat_counts *c = p->user;
    free(m->priv);
    c->unmaps++;
}

static int moa_begin(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                     uint64_t offset, size_t len, int prot, struct vmmem_access *acc)
{
    (void)len;
    (void)prot;
    struct compat_counts *c = p->user;
    c->begins++;
    acc->ptr = (unsigned char *)m->priv + offset;
    acc->token = m->priv;
    return 0;
}

static void moa_end(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                    struct vmmem_access *acc)
{
    struct compat_counts *c = p->user;
    if (acc->token != m->priv)
        c->errors++;
    c->ends++;
}

static const struct vmmem_provider plain = {
    VMMEM_PROVIDER_ABI_VERSION, sizeof(struct vmmem_provider), "compat",
    "plain memory, built against the 0.1 headers", plain_opts, &plain_counts,
    compat_map, compat_unmap, NULL, NULL};
static const struct vmmem_provider moa = {
    VMMEM_PROVIDER_ABI_VERSION, sizeof(struct vmmem_provider), "compat_moa",
    "map-on-access memory, built against the 0.1 headers", moa_opts, &moa_counts,
    compat_map, compat_unmap, moa_begin, moa_end};

VMMEM_PLUGIN_DEFINE("compat", host, &plain, &moa)

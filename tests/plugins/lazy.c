/*
 * Test plugin "lazy": provider "test-lazy", a map-on-access provider.
 *
 * map allocates a zeroed buffer but leaves mapping->host NULL; every access
 * goes through begin_access/end_access, which hand out a pointer into the
 * buffer and a heap-allocated token (so an access that is never ended shows
 * up as a leak, and a wrong token as an error).  Option "ro" (flag) grants
 * read-only protection; a begin_access asking for write on it is a core bug.
 * Counts in struct vt_counts behind the provider's user pointer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmmem/provider.h>

#define VT_COUNTS_MAGIC 0x76746370u /* "vtcp" */

struct vt_counts {
    uint32_t magic;
    long map_calls;
    long maps;
    long unmaps;
    long fail_at;
    long begins;
    long ends;
    long errors;
};

#define VT_INC(field) __atomic_fetch_add(&(field), 1, __ATOMIC_SEQ_CST)

#define LAZY_TOKEN_MAGIC 0x6c617a79u

struct lazy_priv {
    uint64_t size;
    uint8_t *mem;
};

struct lazy_token {
    uint32_t magic;
    const struct vmmem_mapping *mapping;
    uint64_t offset;
    size_t len;
};

static const struct vmmem_host *g_host;
static struct vt_counts lazy_counts = {.magic = VT_COUNTS_MAGIC};

static int lazy_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    struct vt_counts *c = p->user;
    VT_INC(c->map_calls);
    if (spec->host != NULL)
        return g_host->set_error(-EINVAL, "test-lazy cannot adopt host memory");
    if (spec->size > (64u << 20))
        return g_host->set_error(-ENOMEM, "test-lazy region too big");
    struct lazy_priv *lp = malloc(sizeof *lp);
    if (lp == NULL)
        return -ENOMEM;
    lp->mem = calloc(1, (size_t)spec->size);
    if (lp->mem == NULL) {
        free(lp);
        return -ENOMEM;
    }
    lp->size = spec->size;
    out->prot = vmmem_spec_has(spec, "ro") ? VMMEM_PROT_READ : VMMEM_PROT_RW;
    out->host = NULL;
    out->hugetlbfs = 0;
    out->priv = lp;
    VT_INC(c->maps);
    return 0;
}

static void lazy_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *m)
{
    struct vt_counts *c = p->user;
    struct lazy_priv *lp = m->priv;
    if (lp == NULL || lp->size != spec->size || m->host != NULL) {
        VT_INC(c->errors);
        return;
    }
    free(lp->mem);
    free(lp);
    VT_INC(c->unmaps);
}

static int lazy_begin(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                      uint64_t offset, size_t len, int prot, struct vmmem_access *acc)
{
    struct vt_counts *c = p->user;
    struct lazy_priv *lp = m->priv;
    if (lp == NULL || offset > lp->size || len > lp->size - offset ||
        (prot & ~VMMEM_PROT_RW) != 0 || (prot & ~m->prot) != 0) {
        VT_INC(c->errors);
        return g_host->set_error(-EINVAL, "test-lazy: bad access offset %llu len %zu prot %d",
                                 (unsigned long long)offset, len, prot);
    }
    struct lazy_token *t = malloc(sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    t->magic = LAZY_TOKEN_MAGIC;
    t->mapping = m;
    t->offset = offset;
    t->len = len;
    acc->ptr = lp->mem + offset;
    acc->token = t;
    VT_INC(c->begins);
    return 0;
}

static void lazy_end(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                     struct vmmem_access *acc)
{
    struct vt_counts *c = p->user;
    struct lazy_priv *lp = m->priv;
    struct lazy_token *t = acc->token;
    if (t == NULL || t->magic != LAZY_TOKEN_MAGIC || lp == NULL ||
        acc->ptr != lp->mem + t->offset) {
        VT_INC(c->errors);
        return;
    }
    t->magic = 0;
    free(t);
    VT_INC(c->ends);
}

static const struct vmmem_option_desc lazy_options[] = {
    {"ro", VMMEM_OPT_FLAG, "grant read-only access"},
    {NULL, 0, NULL},
};

static const struct vmmem_provider lazy_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-lazy",
    .description = "test: map-on-access over a heap buffer",
    .options = lazy_options,
    .user = &lazy_counts,
    .map = lazy_map,
    .unmap = lazy_unmap,
    .begin_access = lazy_begin,
    .end_access = lazy_end,
};

static const struct vmmem_provider *const providers[] = {&lazy_provider};

static const struct vmmem_plugin plugin = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_plugin),
    .name = "test-lazy",
    .n_providers = 1,
    .providers = providers,
};

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host);

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host)
{
    if (host == NULL || host->abi_version != VMMEM_PROVIDER_ABI_VERSION)
        return NULL;
    g_host = host;
    return &plugin;
}

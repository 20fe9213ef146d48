/*
 * Test plugin "good": two well-behaved providers.
 *
 *  - "test-heap": page-aligned heap memory.  Options: tag=<text> (required),
 *    fill=<byte> (initial contents), zero (flag: zero-fill).  Without fill or
 *    zero the memory holds 0xA5.  Refuses adoption (spec->host != NULL).
 *  - "test-counted": zero-filled heap memory, no options.
 *
 * Both count their hook calls in a struct vt_counts reached through the
 * provider's user pointer (tests read it via vmmem_registry_find()->user;
 * the layout is repeated in the tests that read it).  They also check the
 * core's side of the contract (unmap gets what map got and produced; addr
 * and size are not passed as options) and count violations in errors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vmmem/provider.h>

#define VT_COUNTS_MAGIC 0x76746370u /* "vtcp" */

struct vt_counts {
    uint32_t magic;
    long map_calls; /* every map call */
    long maps;      /* successful map calls */
    long unmaps;
    long fail_at; /* failing providers: map call number that fails (0 never) */
    long begins;
    long ends;
    long errors; /* contract violations seen by the plugin */
};

#define VT_INC(field) __atomic_fetch_add(&(field), 1, __ATOMIC_SEQ_CST)

static const struct vmmem_host *g_host;

struct heap_priv {
    uint64_t addr;
    uint64_t size;
    void *mem;
};

static struct vt_counts heap_counts = {.magic = VT_COUNTS_MAGIC};
static struct vt_counts counted_counts = {.magic = VT_COUNTS_MAGIC};

static void check_spec(struct vt_counts *c, const struct vmmem_region_spec *spec)
{
    if (vmmem_spec_has(spec, "addr") || vmmem_spec_has(spec, "size"))
        VT_INC(c->errors);
    if (spec->size == 0 || spec->addr + (spec->size - 1) < spec->addr)
        VT_INC(c->errors);
}

static int heap_alloc(const struct vmmem_region_spec *spec, struct vmmem_mapping *out, int fill)
{
    uint64_t page = g_host->page_size ? g_host->page_size : 4096;
    if (spec->size > (64u << 20))
        return g_host->set_error(-ENOMEM, "test heap region of %llu bytes is too big",
                                 (unsigned long long)spec->size);
    size_t len = (size_t)((spec->size + page - 1) / page * page);
    struct heap_priv *hp = malloc(sizeof *hp);
    if (hp == NULL)
        return -ENOMEM;
    hp->mem = aligned_alloc((size_t)page, len);
    if (hp->mem == NULL) {
        free(hp);
        return -ENOMEM;
    }
    memset(hp->mem, fill, len);
    hp->addr = spec->addr;
    hp->size = spec->size;
    out->prot = VMMEM_PROT_RW;
    out->host = hp->mem;
    out->hugetlbfs = 0;
    out->priv = hp;
    return 0;
}

static void heap_free(struct vt_counts *c, const struct vmmem_region_spec *spec,
                      struct vmmem_mapping *m)
{
    struct heap_priv *hp = m->priv;
    if (hp == NULL) {
        VT_INC(c->errors);
        return;
    }
    if (hp->addr != spec->addr || hp->size != spec->size || m->host != hp->mem)
        VT_INC(c->errors);
    free(hp->mem);
    free(hp);
    VT_INC(c->unmaps);
}

static int heap_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    struct vt_counts *c = p->user;
    VT_INC(c->map_calls);
    check_spec(c, spec);
    if (out->fd != -1 || out->hugetlbfs != -1 || out->host != NULL || out->priv != NULL)
        VT_INC(c->errors);
    if (spec->host != NULL)
        return g_host->set_error(-EINVAL, "test-heap cannot adopt host memory");
    const char *tag = vmmem_spec_get(spec, "tag");
    if (tag == NULL) /* the core must have refused this already */
        VT_INC(c->errors);
    const char *fill_s = vmmem_spec_get(spec, "fill");
    bool zero = vmmem_spec_has(spec, "zero");
    int fill = 0xA5;
    if (zero)
        fill = 0;
    if (fill_s != NULL) {
        uint64_t v;
        if (zero)
            return g_host->set_error(VMMEM_EBAD_VALUE, "test-heap: 'fill' and 'zero' conflict");
        if (g_host->parse_size(fill_s, &v) != 0 || v > 255)
            return g_host->set_error(VMMEM_EBAD_VALUE, "test-heap: bad fill value '%s'", fill_s);
        fill = (int)v;
    }
    int rc = heap_alloc(spec, out, fill);
    if (rc == 0)
        VT_INC(c->maps);
    return rc;
}

static int counted_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *out)
{
    struct vt_counts *c = p->user;
    VT_INC(c->map_calls);
    check_spec(c, spec);
    if (spec->host != NULL)
        return g_host->set_error(-EINVAL, "test-counted cannot adopt host memory");
    int rc = heap_alloc(spec, out, 0);
    if (rc == 0)
        VT_INC(c->maps);
    return rc;
}

static void any_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                      struct vmmem_mapping *m)
{
    heap_free(p->user, spec, m);
}

static const struct vmmem_option_desc heap_options[] = {
    {"tag", VMMEM_OPT_REQUIRED | VMMEM_OPT_VALUE, "free text, required"},
    {"fill", VMMEM_OPT_VALUE, "initial byte value (number)"},
    {"zero", VMMEM_OPT_FLAG, "zero-fill the region"},
    {NULL, 0, NULL},
};

static const struct vmmem_option_desc no_options[] = {
    {NULL, 0, NULL},
};

static const struct vmmem_provider heap_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-heap",
    .description = "test: heap memory with a required tag",
    .options = heap_options,
    .user = &heap_counts,
    .map = heap_map,
    .unmap = any_unmap,
};

static const struct vmmem_provider counted_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-counted",
    .description = "test: zeroed heap memory, counts calls",
    .options = no_options,
    .user = &counted_counts,
    .map = counted_map,
    .unmap = any_unmap,
};

static const struct vmmem_provider *const providers[] = {&heap_provider, &counted_provider};

static const struct vmmem_plugin plugin = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_plugin),
    .name = "test-good",
    .n_providers = 2,
    .providers = providers,
};

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host);

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host)
{
    if (host == NULL || host->abi_version != VMMEM_PROVIDER_ABI_VERSION ||
        host->set_error == NULL || host->parse_size == NULL)
        return NULL;
    g_host = host;
    return &plugin;
}

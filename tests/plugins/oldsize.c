/*
 * Test plugin "oldsize": providers built against an "older header" of the
 * same ABI: struct_size ends before begin_access, so the core must treat
 * begin_access/end_access as absent even though the slots hold poisoned
 * functions here (they count calls in errors; the core must never call them).
 *
 *  - "test-old": an ordinary provider (host pointer): must load and work.
 *  - "test-oldlazy": returns mapping->host == NULL without (visible)
 *    access hooks: a provider contract break the core must turn into a
 *    clean VMMEM_EPROVIDER at map time, unmapping what was mapped.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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

static struct vt_counts old_counts = {.magic = VT_COUNTS_MAGIC};
static struct vt_counts oldlazy_counts = {.magic = VT_COUNTS_MAGIC};

static int old_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                   struct vmmem_mapping *out)
{
    struct vt_counts *c = p->user;
    VT_INC(c->map_calls);
    if (spec->size > (64u << 20))
        return -ENOMEM;
    void *mem = calloc(1, (size_t)spec->size);
    if (mem == NULL)
        return -ENOMEM;
    out->prot = VMMEM_PROT_RW;
    out->host = c == &oldlazy_counts ? NULL : mem;
    out->priv = mem;
    VT_INC(c->maps);
    return 0;
}

static void old_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                      struct vmmem_mapping *m)
{
    struct vt_counts *c = p->user;
    (void)spec;
    free(m->priv);
    VT_INC(c->unmaps);
}

static int poison_begin(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                        uint64_t offset, size_t len, int prot, struct vmmem_access *acc)
{
    struct vt_counts *c = p->user;
    (void)m;
    (void)offset;
    (void)len;
    (void)prot;
    (void)acc;
    VT_INC(c->errors);
    return -EFAULT;
}

static void poison_end(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                       struct vmmem_access *acc)
{
    struct vt_counts *c = p->user;
    (void)m;
    (void)acc;
    VT_INC(c->errors);
}

static const struct vmmem_option_desc no_options[] = {
    {NULL, 0, NULL},
};

static const struct vmmem_provider old_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = offsetof(struct vmmem_provider, begin_access),
    .name = "test-old",
    .description = "test: provider from an older header",
    .options = no_options,
    .user = &old_counts,
    .map = old_map,
    .unmap = old_unmap,
    .begin_access = poison_begin,
    .end_access = poison_end,
};

static const struct vmmem_provider oldlazy_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = offsetof(struct vmmem_provider, begin_access),
    .name = "test-oldlazy",
    .description = "test: map-on-access without visible access hooks",
    .options = no_options,
    .user = &oldlazy_counts,
    .map = old_map,
    .unmap = old_unmap,
    .begin_access = poison_begin,
    .end_access = poison_end,
};

static const struct vmmem_provider *const providers[] = {&old_provider, &oldlazy_provider};

static const struct vmmem_plugin plugin = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_plugin),
    .name = "test-oldsize",
    .n_providers = 2,
    .providers = providers,
};

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host);

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host)
{
    (void)host;
    return &plugin;
}

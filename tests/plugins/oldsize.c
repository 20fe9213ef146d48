/*
 * Test plugin "oldsize": providers built against an "older header" of the
 * same ABI: the tables are a frozen copy of the old layout, which ends
 * before begin_access, so the core must read nothing past struct_size and
 * treat begin_access/end_access as absent.
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

static const struct vmmem_option_desc no_options[] = {
    {NULL, 0, NULL},
};

/*
 * A frozen copy of the provider table as an older header of the same ABI
 * declared it: the fields up to unmap, nothing after.  Never update it when
 * provider.h grows: it stands for a plugin built before that.
 */
struct old_provider {
    uint32_t abi_version;
    uint32_t struct_size;
    const char *name;
    const char *description;
    const struct vmmem_option_desc *options;
    void *user;
    int (*map)(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
               struct vmmem_mapping *out);
    void (*unmap)(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                  struct vmmem_mapping *m);
};

/*
 * "test-old" is followed in memory by whatever the linker put there; here
 * it is pinned to a non-NULL word then a NULL one, so a core that reads the
 * (absent) begin_access/end_access slots sees "only one access hook" and
 * refuses the plugin, with or without a sanitizer.  "test-oldlazy" stands
 * alone, so such a read is a global-buffer-overflow under ASan.
 */
static const struct {
    struct old_provider p;
    uintptr_t after[2];
} old_blob = {
    {
        .abi_version = VMMEM_PROVIDER_ABI_VERSION,
        .struct_size = sizeof(struct old_provider),
        .name = "test-old",
        .description = "test: provider from an older header",
        .options = no_options,
        .user = &old_counts,
        .map = old_map,
        .unmap = old_unmap,
    },
    {1, 0},
};

static const struct old_provider oldlazy_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct old_provider),
    .name = "test-oldlazy",
    .description = "test: map-on-access without access hooks",
    .options = no_options,
    .user = &oldlazy_counts,
    .map = old_map,
    .unmap = old_unmap,
};

/* The old layout is the current one cut before begin_access. */
_Static_assert(sizeof(struct old_provider) == offsetof(struct vmmem_provider, begin_access),
               "old_provider must be the current table cut before begin_access");

/* oldlazy first: a core reading past it trips ASan before test-old's
 * pinned words decide anything. */
static const struct vmmem_provider *const providers[] = {
    (const struct vmmem_provider *)(const void *)&oldlazy_provider,
    (const struct vmmem_provider *)(const void *)&old_blob.p,
};

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

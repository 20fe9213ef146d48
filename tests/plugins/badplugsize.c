/*
 * Test plugin "badplugsize": the plugin struct's struct_size stops before
 * n_providers (VMMEM_EABI).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include <vmmem/provider.h>

static int ok_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                  struct vmmem_mapping *out)
{
    (void)p;
    if (spec->size > (64u << 20))
        return -ENOMEM;
    void *mem = calloc(1, (size_t)spec->size);
    if (mem == NULL)
        return -ENOMEM;
    out->prot = VMMEM_PROT_RW;
    out->host = mem;
    out->priv = mem;
    return 0;
}

static void ok_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                     struct vmmem_mapping *m)
{
    (void)p;
    (void)spec;
    free(m->priv);
}

static const struct vmmem_option_desc no_options[] = {
    {NULL, 0, NULL},
};

static const struct vmmem_provider p1 = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-badplugsize",
    .description = "test provider test-badplugsize",
    .options = no_options,
    .map = ok_map,
    .unmap = ok_unmap,
};

static const struct vmmem_provider *const providers[] = {&p1};

static const struct vmmem_plugin plugin = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = offsetof(struct vmmem_plugin, n_providers),
    .name = "test-badplugsize",
    .n_providers = 1,
    .providers = providers,
};

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host);

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host)
{
    (void)host;
    return &plugin;
}

/*
 * Test plugin "nomap": provider "test-nomap" without a map hook (a NULL slot
 * must be a clean error from the core, at load or at map time).
 */
#include <stddef.h>
#include <stdlib.h>

#include <vmmem/provider.h>

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
    .name = "test-nomap",
    .description = "test provider without map",
    .options = no_options,
    .map = NULL,
    .unmap = ok_unmap,
};

static const struct vmmem_provider *const providers[] = {&p1};

static const struct vmmem_plugin plugin = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_plugin),
    .name = "test-nomap",
    .n_providers = 1,
    .providers = providers,
};

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host);

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host)
{
    (void)host;
    return &plugin;
}

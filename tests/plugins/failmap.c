/*
 * Test plugin "failmap": provider "test-failmap" whose map hook fails on
 * one chosen call (struct vt_counts.fail_at, 1-based over map_calls; the
 * default 2 makes its 2nd call fail), so a multi-region map fails midway.
 * Tests check that every successful map was unmapped again.
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

static const struct vmmem_host *g_host;
static struct vt_counts fail_counts = {.magic = VT_COUNTS_MAGIC, .fail_at = 2};

static int fail_map(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    struct vt_counts *c = p->user;
    long call = VT_INC(c->map_calls) + 1;
    if (call == __atomic_load_n(&c->fail_at, __ATOMIC_SEQ_CST))
        return g_host->set_error(-EIO, "test-failmap: injected failure on map call %ld", call);
    if (spec->size > (64u << 20))
        return -ENOMEM;
    void *mem = calloc(1, (size_t)spec->size);
    if (mem == NULL)
        return -ENOMEM;
    out->prot = VMMEM_PROT_RW;
    out->host = mem;
    out->priv = mem;
    VT_INC(c->maps);
    return 0;
}

static void fail_unmap(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *m)
{
    struct vt_counts *c = p->user;
    (void)spec;
    if (m->priv == NULL || m->priv != m->host) {
        VT_INC(c->errors);
        return;
    }
    free(m->priv);
    VT_INC(c->unmaps);
}

static const struct vmmem_option_desc fail_options[] = {
    {NULL, 0, NULL},
};

static const struct vmmem_provider fail_provider = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_provider),
    .name = "test-failmap",
    .description = "test: map fails on a chosen call",
    .options = fail_options,
    .user = &fail_counts,
    .map = fail_map,
    .unmap = fail_unmap,
};

static const struct vmmem_provider *const providers[] = {&fail_provider};

static const struct vmmem_plugin plugin = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_plugin),
    .name = "test-failmap",
    .n_providers = 1,
    .providers = providers,
};

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host);

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host)
{
    g_host = host;
    return &plugin;
}

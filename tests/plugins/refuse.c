/*
 * Test plugin "refuse": the entry function reports -EPERM through
 * host->set_error and returns NULL; the load fails with that reason.
 */
#include <errno.h>
#include <stddef.h>

#include <vmmem/provider.h>

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host);

VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(const struct vmmem_host *host)
{
    if (host != NULL && host->set_error != NULL)
        host->set_error(-EPERM, "test-refuse declines: licence key %s missing", "XYZZY");
    return NULL;
}

/*
 * Test plugin "noentry": a valid shared object that does not export the
 * entry symbol (only a look-alike name): VMMEM_ENOT_PLUGIN.
 */
#include <vmmem/provider.h>

VMMEM_PLUGIN_EXPORT int vmmem_plugin_entry_(void);

VMMEM_PLUGIN_EXPORT int vmmem_plugin_entry_(void)
{
    return 42;
}

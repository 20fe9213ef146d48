/*
 * libvmmem - the provider registry and plugin loading.
 *
 * A registry holds providers by name.  They come from plugins (shared
 * objects loaded with dlopen(RTLD_NOW|RTLD_LOCAL)) or are registered by the
 * program itself (static registration).  All functions are thread-safe.
 *
 * Discovery order (vmmem_registry_discover): every directory listed in
 * VMMEM_PLUGIN_PATH (colon-separated; relative entries are ignored, never
 * the current directory), then the install directory compiled into the
 * library, then "../plugins" beside the loaded libvmmem itself (so programs
 * run from a build tree find that build's plugins; the path comes from the
 * library's own location, not from the environment).  vmmem_plugin_dir()
 * returns the whole search path.  Every "*.so" file found there is loaded.
 *
 * Trust: anyone who could change a plugin could swap in code that the VMM
 * would run.  A plugin is opened once and that descriptor is checked and
 * loaded (on Linux dlopen of /proc/self/fd/N), so the file cannot be swapped
 * between the checks and the load.  Refused with -EPERM, naming the culprit:
 * a file owned by anyone but root or the process's (effective) user, or
 * group- or world-writable; likewise any directory from its own up to "/",
 * above the path given and above the file's real location (symlinks),
 * except that a sticky directory such as /tmp may be writable by others
 * when it is above the file's own directory (others cannot rename what they
 * do not own in it).  Windows: no such check (ACLs decide).
 *
 * A plugin is never unloaded while a region made by one of its providers is
 * alive: regions hold a reference to it.
 */
#ifndef VMMEM_REGISTRY_H
#define VMMEM_REGISTRY_H

#include "map.h"
#include "provider.h"

VMMEM_BEGIN_DECLS

/* An empty registry. */
VMMEM_EXPORT int vmmem_registry_new(vmmem_registry **out);
/* Drop the registry; plugins stay loaded while maps still use them. */
VMMEM_EXPORT void vmmem_registry_free(vmmem_registry *reg);

/*
 * The process-wide registry used when a NULL registry is passed; created and
 * discovered on first use.  Never freed.
 */
VMMEM_EXPORT vmmem_registry *vmmem_default_registry(void);

/*
 * Load one plugin file (an absolute path).  Errors, each naming the file:
 * -EINVAL (relative path), -ENOENT (missing file), -EPERM (a file or a
 * directory anyone but root or this user could change, see above),
 * VMMEM_ENOT_PLUGIN (not a regular file, not a
 * loadable object, or no entry symbol), VMMEM_EABI (ABI version mismatch or
 * a struct too small), VMMEM_EPROVIDER (a provider without map/unmap, a bad
 * name, no providers), the plugin's own code when its entry refuses, VMMEM_EDUPLICATE (a provider name already in the
 * registry).  On error nothing from the file is registered.
 */
VMMEM_EXPORT int vmmem_registry_load(vmmem_registry *reg, const char *path);

/*
 * Load every plugin found on the search path.  Failures do not stop the
 * scan; each is recorded (see vmmem_registry_failure).  Returns the number
 * of plugins loaded, or the first failure's code if any failed.
 */
VMMEM_EXPORT int vmmem_registry_discover(vmmem_registry *reg);

/* Register a provider compiled into the program (not copied: keep it alive). */
VMMEM_EXPORT int vmmem_registry_add(vmmem_registry *reg, const struct vmmem_provider *p);

/* Provider by name, or NULL. */
VMMEM_EXPORT const struct vmmem_provider *vmmem_registry_find(vmmem_registry *reg,
                                                              const char *name);

struct vmmem_provider_info {
    const char *name;
    const char *description;
    uint32_t abi_version;
    const char *file; /* plugin file, or NULL for a static registration */
};
/* Number of providers; i-th provider's info (0 or -ERANGE). */
VMMEM_EXPORT size_t vmmem_registry_count(vmmem_registry *reg);
VMMEM_EXPORT int vmmem_registry_get(vmmem_registry *reg, size_t i, struct vmmem_provider_info *info);

/* Plugin files that failed to load during discovery, with the reason. */
struct vmmem_load_failure {
    const char *file;
    int code;
    const char *message;
};
VMMEM_EXPORT size_t vmmem_registry_failure_count(vmmem_registry *reg);
VMMEM_EXPORT int vmmem_registry_failure(vmmem_registry *reg, size_t i,
                                        struct vmmem_load_failure *info);

/* The directories discovery searches, in order, separated by ':'. */
VMMEM_EXPORT const char *vmmem_plugin_dir(void);

VMMEM_END_DECLS

#endif

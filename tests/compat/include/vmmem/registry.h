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
 * returns the whole search path.  Every "*.so" file found there is loaded,
 * except a file with the same name as a plugin loaded before it (a copy
 * earlier on the path overrides it: see vmmem_registry_shadowed).  When a
 * config names a provider that is not there, the error says where discovery
 * looked, which relative VMMEM_PLUGIN_PATH entries it ignored and how many
 * plugin files failed to load.
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
 * discovered on first use.
 */
VMMEM_EXPORT vmmem_registry *vmmem_default_registry(void);

/*
 * Free the default registry (for leak checkers: call it once before exit,
 * when no other thread uses the library).  Maps built from it stay valid
 * (their regions hold their plugins); a later use of the default registry
 * makes and discovers a new one.  Pointers returned by vmmem_registry_find,
 * vmmem_registry_get and vmmem_registry_failure on the old one dangle.
 */
VMMEM_EXPORT void vmmem_default_registry_release(void);

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
 *
 * A file with the same name as a plugin already loaded (a copy later on the
 * search path: the earlier one is a deliberate override) is not opened and
 * is no failure: it is listed by vmmem_registry_shadowed.
 */
VMMEM_EXPORT int vmmem_registry_discover(vmmem_registry *reg);

/* Register a provider compiled into the program (not copied: keep it alive). */
VMMEM_EXPORT int vmmem_registry_add(vmmem_registry *reg, const struct vmmem_provider *p);

/* Provider by name, or NULL. */
VMMEM_EXPORT const struct vmmem_provider *vmmem_registry_find(vmmem_registry *reg,
                                                              const char *name);

/* What vmmem_registry_get reports about a provider. */
struct vmmem_provider_info {
    const char *name;        /* the provider's name */
    const char *description; /* its description ("" when none) */
    uint32_t abi_version;    /* its provider ABI version */
    const char *file; /* plugin file, or NULL for a static registration */
};
/* Number of providers; i-th provider's info (0 or -ERANGE). */
VMMEM_EXPORT size_t vmmem_registry_count(vmmem_registry *reg);
VMMEM_EXPORT int vmmem_registry_get(vmmem_registry *reg, size_t i, struct vmmem_provider_info *info);

/* Plugin files that failed to load during discovery, with the reason. */
struct vmmem_load_failure {
    const char *file;    /* the plugin file */
    int code;            /* the error code of its load */
    const char *message; /* the error message */
};
/* The number of plugin files that failed to load. */
VMMEM_EXPORT size_t vmmem_registry_failure_count(vmmem_registry *reg);
/* The i-th of them (0, or -ERANGE); strings valid while reg lives. */
VMMEM_EXPORT int vmmem_registry_failure(vmmem_registry *reg, size_t i,
                                        struct vmmem_load_failure *info);

/* Plugin files discovery skipped because a file of the same name was
 * loaded first: file, and the loaded one that shadows it. */
struct vmmem_shadowed_plugin {
    const char *file;   /* the file not loaded */
    const char *loaded; /* the file of the same name that was */
};
/* The number of shadowed plugin files. */
VMMEM_EXPORT size_t vmmem_registry_shadowed_count(vmmem_registry *reg);
/* The i-th of them (0, or -ERANGE); strings valid while reg lives. */
VMMEM_EXPORT int vmmem_registry_shadowed(vmmem_registry *reg, size_t i,
                                         struct vmmem_shadowed_plugin *info);

/* The directories discovery searches, in order, separated by ':'. */
VMMEM_EXPORT const char *vmmem_plugin_dir(void);

VMMEM_END_DECLS

#endif

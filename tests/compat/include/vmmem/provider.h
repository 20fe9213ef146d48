/*
 * libvmmem - the provider ABI.  This is the only header a plugin needs.
 *
 * A plugin is a shared object that exports one function, named by
 * VMMEM_PLUGIN_ENTRY_NAME:
 *
 *     VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *
 *     vmmem_plugin_entry(const struct vmmem_host *host);
 *
 * The core calls it once after dlopen().  It returns a static description of
 * the plugin and the providers it brings, or NULL to refuse loading (after
 * calling host->set_error with the reason).
 *
 * Versioning (the sqlite3_vfs rule): every struct that crosses the boundary
 * starts with abi_version and struct_size.  abi_version must equal
 * VMMEM_PROVIDER_ABI_VERSION of the core (a different value is refused with
 * VMMEM_EABI); struct_size tells the core how many fields the plugin knows.
 * Fields are only ever appended, so a plugin built against an older header
 * of the same ABI version keeps working: the core reads nothing of a table
 * past its struct_size (a slot beyond it is absent, whatever lies after the
 * table in the plugin's memory), and a NULL or absent slot becomes a clean
 * error from the core, never a call through a bad pointer.  Every field up
 * to and including unmap is required.  The core keeps its own
 * full-size copy of each provider table; hooks receive that copy as p (so
 * use p->user, not the address of your static table).
 *
 * A provider turns a region spec (guest start, size, key=value options) into
 * a mapping, and undoes it.  Providers that cannot give a permanent host
 * pointer (map-on-access, e.g. Xen grants without advance mapping) leave
 * mapping->host NULL and implement begin_access/end_access; the core calls
 * those around each access.  Every other region is accessed by the core as
 * plain host memory: no provider call on the hot path.
 *
 * Rules for hooks: return 0 or a negative code (-errno or VMMEM_E*), report
 * details through host->set_error, never abort or exit, never print; free
 * everything on failure.  Hooks may be called from any thread.
 */
#ifndef VMMEM_PROVIDER_H
#define VMMEM_PROVIDER_H

#include <string.h>

#include "common.h"

VMMEM_BEGIN_DECLS

#define VMMEM_PROVIDER_ABI_VERSION 1u                   /* the ABI of these structs */
#define VMMEM_PLUGIN_ENTRY_NAME "vmmem_plugin_entry"    /* what a plugin exports */

#if defined(_WIN32)
#define VMMEM_PLUGIN_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
/* Exports a plugin's entry function (plugins build with hidden visibility). */
#define VMMEM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define VMMEM_PLUGIN_EXPORT
#endif

/* One key=value (or bare flag: value "") option of a region spec. */
struct vmmem_option {
    const char *key;   /* the option's name */
    const char *value; /* its value, "" for a flag */
};

/*
 * Everything that describes one region before it is mapped.  addr and size
 * are the guest range; options are the provider-specific keys (addr and size
 * themselves are not among them).  host is NULL except when a VMM adopts a
 * mapping it made itself (C API only, see vmmem_spec_adopt in map.h); only
 * providers that support adoption ("mmap") accept it.
 */
struct vmmem_region_spec {
    const char *provider;               /* the provider's name */
    uint64_t addr;                      /* guest-physical start */
    uint64_t size;                      /* bytes */
    const struct vmmem_option *options; /* n_options options, in the order written */
    size_t n_options;                   /* entries of options */
    void *host;                         /* a mapping to adopt, or NULL */
};

/* Option descriptor flags. */
#define VMMEM_OPT_REQUIRED 0x1u /* the key must be present */
#define VMMEM_OPT_FLAG 0x2u     /* a bare word with no "=value" */
#define VMMEM_OPT_VALUE 0x4u    /* needs "=value" (default unless FLAG) */

/* A key the provider accepts; arrays end with a {NULL} entry. */
struct vmmem_option_desc {
    const char *key;  /* the option's name */
    unsigned flags;   /* VMMEM_OPT_* */
    const char *help; /* one line for `vmmem providers -v` */
};

/*
 * What a map hook produces.  The core zeroes it and sets struct_size,
 * fd = -1 and hugetlbfs = -1 before the call.
 */
struct vmmem_mapping {
    uint32_t struct_size; /* sizeof(struct vmmem_mapping) of the core */
    int prot;             /* VMMEM_PROT_* actually granted */
    void *host;           /* host address of guest byte 0 of the region, or
                             NULL for map-on-access */
    int fd;               /* backing descriptor the VMM may pass on, or -1 */
    uint64_t file_offset; /* offset of the region in fd */
    int hugetlbfs;        /* 1 yes, 0 no, -1 unknown */
    const char *file;     /* backing file name for messages, or NULL */
    void *priv;           /* provider-private state */
};

/* One access to a map-on-access region, between begin and end. */
struct vmmem_access {
    void *ptr;   /* host address of the first byte asked for */
    void *token; /* provider-private; handed back to end_access */
};

struct vmmem_provider;

/* Services the core offers to plugins (so plugins need not link libvmmem). */
struct vmmem_host {
    uint32_t abi_version; /* VMMEM_PROVIDER_ABI_VERSION of the core */
    uint32_t struct_size; /* sizeof(struct vmmem_host) of the core: newer fields are there
                             only when it is large enough */
    /* Record an error detail; returns code so hooks can "return set_error(...)". */
    int (*set_error)(int code, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
    /* Parse a number with optional K/M/G/T suffix (decimal or 0x hex). */
    int (*parse_size)(const char *text, uint64_t *out);
    uint64_t page_size; /* the host's page size */

    /*
     * The option kit (check struct_size before use when a plugin must
     * also load in an older libvmmem).  Each reports through option_error,
     * so every provider's message has one shape and points at the text:
     *     "<provider>: <key>='<value>' <what is wrong> (region N, column C)"
     * with vmmem_last_error()->column the 1-based column of the value in
     * the config string (of the key for a flag; "(region N)" and column -1
     * for a C array of specs) and ->addr the region's guest address.
     */

    /* Record an error about option key of spec (NULL: the region as a
     * whole) and return code; fmt says what is wrong with it. */
    int (*option_error)(const struct vmmem_region_spec *spec, const char *key, int code,
                        const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 4, 5)))
#endif
        ;
    /* prot=r|rw into VMMEM_PROT_READ or VMMEM_PROT_RW (absent: RW). */
    int (*option_prot)(const struct vmmem_region_spec *spec, int *prot);
    /* The flags shared / private (exclusive) into *shared; absent: dflt. */
    int (*option_sharing)(const struct vmmem_region_spec *spec, bool dflt, bool *shared);
    /* key=SIZE (decimal, 0x hex, K/M/G/T) into *out, which is left alone
     * when key is absent; align (a power of two, or 0 for none) is checked:
     * offset= must be a multiple of host->page_size, say. */
    int (*option_size)(const struct vmmem_region_spec *spec, const char *key, uint64_t align,
                       uint64_t *out);
};

/* One provider: its name, options and hooks (a plugin's static table). */
struct vmmem_provider {
    uint32_t abi_version; /* VMMEM_PROVIDER_ABI_VERSION */
    uint32_t struct_size; /* sizeof(struct vmmem_provider) as compiled */
    const char *name;     /* what config strings name; [A-Za-z0-9_.-]+ */
    const char *description;                 /* one line for `vmmem providers` */
    const struct vmmem_option_desc *options; /* accepted keys, {NULL}-ended */
    void *user;                              /* provider-private */

    /* Required. Map spec into *out.  On failure nothing may stay mapped. */
    int (*map)(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
               struct vmmem_mapping *out);
    /* Required. Undo map; receives exactly what map received and produced. */
    void (*unmap)(const struct vmmem_provider *p, const struct vmmem_region_spec *spec,
                  struct vmmem_mapping *m);
    /* Optional, for map-on-access mappings (m->host == NULL): make
     * [offset, offset+len) of the region reachable with prot, put its host
     * address in acc->ptr. */
    int (*begin_access)(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                        uint64_t offset, size_t len, int prot, struct vmmem_access *acc);
    /* Optional (required with begin_access): release what begin_access made. */
    void (*end_access)(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                       struct vmmem_access *acc);
};

/* What a plugin's entry function returns. */
struct vmmem_plugin {
    uint32_t abi_version; /* VMMEM_PROVIDER_ABI_VERSION */
    uint32_t struct_size; /* sizeof(struct vmmem_plugin) */
    const char *name;     /* for messages */
    size_t n_providers;                            /* entries of providers */
    const struct vmmem_provider *const *providers; /* the plugin's providers */
};

/* The type of a plugin's entry function (VMMEM_PLUGIN_ENTRY_NAME). */
typedef const struct vmmem_plugin *(*vmmem_plugin_entry_fn)(const struct vmmem_host *host);

/*
 * Define a plugin's tables and its entry function in one go, for the common
 * case: plugin_name, the static variable that keeps the host table (its
 * hooks report errors through it), then the providers (addresses of static
 * struct vmmem_provider).  The entry refuses a host of another ABI version
 * or an older host table.  Write the entry by hand when it must do more.
 */
#define VMMEM_PLUGIN_DEFINE(plugin_name, host_var, ...)                                         \
    static const struct vmmem_provider *const vmmem__plugin_providers[] = {__VA_ARGS__};       \
    static const struct vmmem_plugin vmmem__plugin = {                                        \
        VMMEM_PROVIDER_ABI_VERSION, sizeof(struct vmmem_plugin), (plugin_name),               \
        sizeof vmmem__plugin_providers / sizeof vmmem__plugin_providers[0],                  \
        vmmem__plugin_providers};                                                             \
    VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(                        \
        const struct vmmem_host *vmmem__h);                                                   \
    VMMEM_PLUGIN_EXPORT const struct vmmem_plugin *vmmem_plugin_entry(                        \
        const struct vmmem_host *vmmem__h)                                                    \
    {                                                                                         \
        if (vmmem__h == NULL || vmmem__h->abi_version != VMMEM_PROVIDER_ABI_VERSION ||        \
            vmmem__h->struct_size < sizeof(struct vmmem_host))                                \
            return NULL;                                                                      \
        (host_var) = vmmem__h;                                                                \
        return &vmmem__plugin;                                                                \
    }

/* Header-only helpers for hooks. */

/* Value of key in spec, or NULL when absent ("" for a bare flag). */
static inline const char *vmmem_spec_get(const struct vmmem_region_spec *spec, const char *key)
{
    for (size_t i = 0; i < spec->n_options; i++)
        if (strcmp(spec->options[i].key, key) == 0)
            return spec->options[i].value;
    return NULL;
}

/* True when key is present (as a flag or with a value). */
static inline bool vmmem_spec_has(const struct vmmem_region_spec *spec, const char *key)
{
    return vmmem_spec_get(spec, key) != NULL;
}

VMMEM_END_DECLS

#endif

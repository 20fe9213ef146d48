/*
 * The provider registry: plugins loaded with dlopen, providers registered by
 * the program, lookup by name, and the core's wrappers around provider
 * hooks (the only code that calls through a provider table).
 */
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "os.h"

#ifndef VMMEM_PLUGIN_DIR
#define VMMEM_PLUGIN_DIR "/usr/local/lib/vmmem/plugins"
#endif

struct vmmem_plugin_handle {
    _Atomic long refs;
    struct vmmem__os_plugin os; /* the loaded file (and its descriptor) */
    char *path;
    /* Full-size copies of the plugin's provider tables (slots a plugin
     * built against an older header does not have are NULL). */
    struct vmmem_provider *copies;
    const struct vmmem_provider **ptrs;
    size_t ncopies;
    uint64_t dev; /* file identity: the same file under two names is one plugin */
    uint64_t ino;
};

struct failure {
    char *file;
    int code;
    char *message;
};

/* A plugin file discovery skipped: a file of the same name was loaded first
 * (from a directory earlier on the search path, or by path). */
struct shadow {
    char *file;
    char *winner;
};

struct vmmem_registry {
    pthread_mutex_t lock;
    /* What the last vmmem_registry_discover searched, for the "unknown
     * provider" message (NULL before any discovery). */
    char *searched;
    char *ignored; /* relative VMMEM_PLUGIN_PATH entries, ':'-separated */
    struct shadow *shadows;
    size_t nshadows;
    struct vmmem_prov *provs;
    size_t n, cap;
    struct vmmem_plugin_handle **plugins; /* one reference each */
    size_t nplugins;
    struct failure *fails;
    size_t nfails;
};

/* ---- the host table handed to plugins ---- */

static int host_set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmmem__verr(code, fmt, ap);
    va_end(ap);
    return code;
}

static struct vmmem_host host_table = {
    .abi_version = VMMEM_PROVIDER_ABI_VERSION,
    .struct_size = sizeof(struct vmmem_host),
    .set_error = host_set_error,
    .parse_size = vmmem_parse_size,
    .page_size = 4096,
    .option_error = vmmem__option_error,
    .option_prot = vmmem__option_prot,
    .option_sharing = vmmem__option_sharing,
    .option_size = vmmem__option_size,
};
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void host_init(void)
{
    host_table.page_size = vmmem__os_page_size();
}

const struct vmmem_host *vmmem__host(void)
{
    pthread_once(&host_once, host_init);
    return &host_table;
}

/* ---- plugin handles ---- */

void vmmem__plugin_ref(struct vmmem_plugin_handle *h)
{
    if (h != NULL)
        atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

void vmmem__plugin_unref(struct vmmem_plugin_handle *h)
{
    if (h == NULL || atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
        return;
    vmmem__os_plugin_close(&h->os);
    free(h->copies);
    free(h->ptrs);
    free(h->path);
    free(h);
}

/* ---- provider wrappers ---- */

int vmmem__prov_map(const struct vmmem_prov *pv, const struct vmmem_region_spec *spec,
                    struct vmmem_mapping *out)
{
    const struct vmmem_provider *p = pv->p;
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->fd = -1;
    out->hugetlbfs = -1;
    int rc = p->map(p, spec, out);
    if (rc > 0 || (rc == 0 && out->host == NULL && !vmmem__prov_has_access_hooks(p))) {
        if (rc == 0)
            p->unmap(p, spec, out);
        vmmem__err(VMMEM_EPROVIDER,
                   "provider '%s' broke its contract mapping region at 0x%llx "
                   "(returned %d, host %p)",
                   p->name, (unsigned long long)spec->addr, rc, out->host);
        vmmem__config_locate_error(spec);
        return VMMEM_EPROVIDER;
    }
    if (rc < 0) {
        /* Keep the provider's detail but make sure it names the region. */
        const struct vmmem_error *e = vmmem_last_error();
        if (e->code != rc)
            vmmem__err(rc, "provider '%s' could not map region at 0x%llx: %s", p->name,
                       (unsigned long long)spec->addr, vmmem_strerror(rc));
        vmmem__config_locate_error(spec); /* one location format (config.c) */
        return rc;
    }
    if (out->prot == 0)
        out->prot = VMMEM_PROT_RW;
    return 0;
}

void vmmem__prov_unmap(const struct vmmem_prov *pv, const struct vmmem_region_spec *spec,
                       struct vmmem_mapping *m)
{
    /* Unmap must not disturb the caller's error detail. */
    struct vmmem_error saved = *vmmem__errbuf();
    pv->p->unmap(pv->p, spec, m);
    *vmmem__errbuf() = saved;
}

bool vmmem__prov_has_access_hooks(const struct vmmem_provider *p)
{
    return p->begin_access != NULL && p->end_access != NULL;
}

int vmmem__prov_begin(const struct vmmem_provider *p, const struct vmmem_mapping *m, uint64_t off,
                      size_t len, int prot, struct vmmem_access *acc)
{
    if (!vmmem__prov_has_access_hooks(p))
        return vmmem__err(VMMEM_ENO_HOST_ADDRESS,
                          "provider '%s' gave no host address and has no access hooks", p->name);
    acc->ptr = NULL;
    acc->token = NULL;
    int rc = p->begin_access(p, m, off, len, prot, acc);
    if (rc == 0 && acc->ptr == NULL) {
        p->end_access(p, m, acc);
        return vmmem__err(VMMEM_EPROVIDER, "provider '%s' begin_access returned no pointer",
                          p->name);
    }
    if (rc > 0)
        return vmmem__err(VMMEM_EPROVIDER, "provider '%s' begin_access returned %d", p->name, rc);
    return rc;
}

void vmmem__prov_end(const struct vmmem_provider *p, const struct vmmem_mapping *m,
                     struct vmmem_access *acc)
{
    struct vmmem_error saved = *vmmem__errbuf();
    p->end_access(p, m, acc);
    *vmmem__errbuf() = saved;
}

/* ---- registry ---- */

int vmmem_registry_new(vmmem_registry **out)
{
    if (out == NULL)
        return vmmem__err(-EINVAL, "vmmem_registry_new: NULL argument");
    vmmem_registry *r = calloc(1, sizeof *r);
    if (r == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return 0;
}

void vmmem_registry_free(vmmem_registry *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = 0; i < reg->n; i++)
        free(reg->provs[i].file);
    free(reg->provs);
    for (size_t i = 0; i < reg->nplugins; i++)
        vmmem__plugin_unref(reg->plugins[i]);
    free(reg->plugins);
    for (size_t i = 0; i < reg->nfails; i++) {
        free(reg->fails[i].file);
        free(reg->fails[i].message);
    }
    free(reg->fails);
    for (size_t i = 0; i < reg->nshadows; i++) {
        free(reg->shadows[i].file);
        free(reg->shadows[i].winner);
    }
    free(reg->shadows);
    free(reg->searched);
    free(reg->ignored);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static const struct vmmem_prov *find_locked(vmmem_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->provs[i].p->name, name) == 0)
            return &reg->provs[i];
    return NULL;
}

static bool valid_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (!vmmem__is_name_char(*s))
            return false;
    return true;
}

/* Everything up to and including unmap is required; later slots are optional. */
#define VMMEM__PROVIDER_MIN_SIZE \
    (offsetof(struct vmmem_provider, unmap) + sizeof(((struct vmmem_provider *)0)->unmap))

/* True when a table of struct_size bytes has field (a plugin built against
 * an older header has a shorter table: nothing past it may be read). */
#define VMMEM__PROVIDER_HAS(p, field)                                                          \
    ((p)->struct_size >=                                                                       \
     offsetof(struct vmmem_provider, field) + sizeof(((struct vmmem_provider *)0)->field))

/* Check one provider table; from names the file (or "the program").  Every
 * read past the first two fields is bounded by the table's struct_size. */
static int check_provider(const struct vmmem_provider *p, const char *from)
{
    if (p == NULL)
        return vmmem__err(VMMEM_EABI, "%s: NULL provider in its table", from);
    if (p->abi_version != VMMEM_PROVIDER_ABI_VERSION)
        return vmmem__err(VMMEM_EABI, "%s: provider ABI version %u, this libvmmem speaks %u", from,
                          p->abi_version, VMMEM_PROVIDER_ABI_VERSION);
    if (p->struct_size < VMMEM__PROVIDER_MIN_SIZE)
        return vmmem__err(VMMEM_EABI, "%s: provider struct is %u bytes, ABI %u needs at least %zu",
                          from, p->struct_size, VMMEM_PROVIDER_ABI_VERSION,
                          (size_t)VMMEM__PROVIDER_MIN_SIZE);
    if (!valid_name(p->name))
        return vmmem__err(VMMEM_EPROVIDER, "%s: provider name '%s' is not [A-Za-z0-9_.-]+", from,
                          p->name ? p->name : "(null)");
    if (p->map == NULL || p->unmap == NULL)
        return vmmem__err(VMMEM_EPROVIDER, "%s: provider '%s' lacks a map or unmap hook", from,
                          p->name);
    bool has_begin = VMMEM__PROVIDER_HAS(p, begin_access) && p->begin_access != NULL;
    bool has_end = VMMEM__PROVIDER_HAS(p, end_access) && p->end_access != NULL;
    if (has_begin != has_end)
        return vmmem__err(VMMEM_EPROVIDER,
                          "%s: provider '%s' has only one of begin_access/end_access", from,
                          p->name);
    return 0;
}

/* Add providers atomically: all or none.  Called with the lock held. */
static int add_locked(vmmem_registry *reg, const struct vmmem_provider *const *ps, size_t n,
                      struct vmmem_plugin_handle *h, const char *from)
{
    for (size_t i = 0; i < n; i++) {
        const struct vmmem_prov *old = find_locked(reg, ps[i]->name);
        if (old != NULL)
            return vmmem__err(VMMEM_EDUPLICATE,
                              "%s: provider '%s' is already registered (from %s)", from,
                              ps[i]->name, old->file ? old->file : "the program");
        for (size_t j = 0; j < i; j++)
            if (strcmp(ps[i]->name, ps[j]->name) == 0)
                return vmmem__err(VMMEM_EDUPLICATE, "%s: provider '%s' is listed twice", from,
                                  ps[i]->name);
    }
    if (reg->n + n > reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        while (cap < reg->n + n)
            cap *= 2;
        struct vmmem_prov *np = realloc(reg->provs, cap * sizeof *np);
        if (np == NULL)
            return vmmem__err(-ENOMEM, "out of memory");
        reg->provs = np;
        reg->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        char *file = NULL;
        if (h != NULL && (file = strdup(h->path)) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(reg->provs[reg->n + j].file);
            return vmmem__err(-ENOMEM, "out of memory");
        }
        reg->provs[reg->n + i] = (struct vmmem_prov){ps[i], h, file};
    }
    reg->n += n;
    return 0;
}

int vmmem_registry_add(vmmem_registry *reg, const struct vmmem_provider *p)
{
    if (reg == NULL || p == NULL)
        return vmmem__err(-EINVAL, "vmmem_registry_add: NULL argument");
    int rc = check_provider(p, "the program");
    if (rc < 0)
        return rc;
    if (p->struct_size < sizeof(struct vmmem_provider))
        return vmmem__err(VMMEM_EABI,
                          "the program: provider '%s' struct is %u bytes; static registration "
                          "needs the full %zu (rebuild against this header)",
                          p->name, p->struct_size, sizeof(struct vmmem_provider));
    pthread_mutex_lock(&reg->lock);
    rc = add_locked(reg, &p, 1, NULL, "the program");
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

static bool loaded_locked(vmmem_registry *reg, const char *path)
{
    struct vmmem__os_file st;
    /* (No file identity on Windows: ino 0 there, and names decide.) */
    bool have = vmmem__os_stat(path, &st) == 0 && st.ino != 0;
    for (size_t i = 0; i < reg->nplugins; i++)
        if (strcmp(reg->plugins[i]->path, path) == 0 ||
            (have && reg->plugins[i]->dev == st.dev && reg->plugins[i]->ino == st.ino))
            return true;
    return false;
}

int vmmem_registry_load(vmmem_registry *reg, const char *path)
{
    if (reg == NULL || path == NULL)
        return vmmem__err(-EINVAL, "vmmem_registry_load: NULL argument");
    if (!vmmem__os_path_is_absolute(path))
        return vmmem__err(-EINVAL, "plugin path '%s' is not absolute", path);
    struct vmmem_plugin_handle *h = calloc(1, sizeof *h);
    if (h == NULL || (h->path = strdup(path)) == NULL) {
        free(h);
        return vmmem__err(-ENOMEM, "out of memory");
    }
    atomic_init(&h->refs, 1);
    /* Open once, check that descriptor (owner, modes, every directory up
     * to /), load that same file: anyone could otherwise swap in code we
     * would run (os.h). */
    char why[512];
    int orc = vmmem__os_plugin_open(path, &h->os, why, sizeof why);
    if (orc < 0) {
        if (orc == -EPERM)
            vmmem__err(orc, "refusing plugin '%s': %s", path, why);
        else if (orc == VMMEM_ENOT_PLUGIN && strcmp(why, "not a regular file") == 0)
            vmmem__err(orc, "plugin '%s' is not a regular file", path);
        else if (orc == VMMEM_ENOT_PLUGIN)
            vmmem__err(orc, "cannot load plugin '%s': %s", path, why);
        else
            vmmem__err(orc, "plugin '%s': %s", path, why);
        free(h->path);
        free(h);
        return orc;
    }
    h->dev = h->os.dev;
    h->ino = h->os.ino;
    int rc;
    void *sym = vmmem__os_dlsym(h->os.lib, VMMEM_PLUGIN_ENTRY_NAME);
    if (sym == NULL) {
        rc = vmmem__err(VMMEM_ENOT_PLUGIN,
                        "'%s' is not a libvmmem plugin: it has no '%s' symbol", path,
                        VMMEM_PLUGIN_ENTRY_NAME);
        goto fail;
    }
    vmmem_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* ISO C: no direct void* -> function cast */
    /* The entry reports a refusal through host->set_error; "no detail"
     * stands when it refuses without.  A success restores the caller's. */
    struct vmmem_error saved = *vmmem__errbuf();
    vmmem__err(0, "no detail");
    const struct vmmem_plugin *pl = entry(vmmem__host());
    if (pl == NULL) {
        const struct vmmem_error *e = vmmem_last_error();
        int code = e->code < 0 ? e->code : VMMEM_EPROVIDER;
        char msg[sizeof e->message];
        snprintf(msg, sizeof msg, "%s", e->message);
        rc = vmmem__err(code, "plugin '%s' refused to load: %s", path, msg);
        goto fail;
    }
    if (pl->abi_version != VMMEM_PROVIDER_ABI_VERSION) {
        rc = vmmem__err(VMMEM_EABI, "plugin '%s' has ABI version %u; this libvmmem speaks %u",
                        path, pl->abi_version, VMMEM_PROVIDER_ABI_VERSION);
        goto fail;
    }
    if (pl->struct_size < sizeof(struct vmmem_plugin)) {
        rc = vmmem__err(VMMEM_EABI, "plugin '%s': plugin struct is %u bytes, needs %zu", path,
                        pl->struct_size, sizeof(struct vmmem_plugin));
        goto fail;
    }
    if (pl->n_providers == 0 || pl->providers == NULL) {
        rc = vmmem__err(VMMEM_EPROVIDER, "plugin '%s' has no providers", path);
        goto fail;
    }
    char from[4200]; /* "plugin 'PATH'", for messages */
    snprintf(from, sizeof from, "plugin '%s'", path);
    for (size_t i = 0; i < pl->n_providers; i++)
        if ((rc = check_provider(pl->providers[i], from)) < 0)
            goto fail;
    h->ncopies = pl->n_providers;
    h->copies = calloc(h->ncopies, sizeof *h->copies);
    h->ptrs = calloc(h->ncopies, sizeof *h->ptrs);
    if (h->copies == NULL || h->ptrs == NULL) {
        rc = vmmem__err(-ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < h->ncopies; i++) {
        const struct vmmem_provider *p = pl->providers[i];
        size_t n = p->struct_size < sizeof *p ? p->struct_size : sizeof *p;
        memcpy(&h->copies[i], p, n);
        h->copies[i].struct_size = sizeof *p;
        h->ptrs[i] = &h->copies[i];
    }
    pthread_mutex_lock(&reg->lock);
    if (loaded_locked(reg, path)) {
        rc = vmmem__err(VMMEM_EDUPLICATE, "plugin '%s' is already loaded in this registry", path);
    } else {
        struct vmmem_plugin_handle **np =
            realloc(reg->plugins, (reg->nplugins + 1) * sizeof *np);
        if (np == NULL) {
            rc = vmmem__err(-ENOMEM, "out of memory");
        } else {
            reg->plugins = np;
            rc = add_locked(reg, h->ptrs, h->ncopies, h, from);
            if (rc == 0)
                reg->plugins[reg->nplugins++] = h;
        }
    }
    pthread_mutex_unlock(&reg->lock);
    if (rc == 0) {
        *vmmem__errbuf() = saved;
        return 0;
    }
fail:
    vmmem__plugin_unref(h);
    return rc;
}

static void record_failure(vmmem_registry *reg, const char *file, int code)
{
    pthread_mutex_lock(&reg->lock);
    struct failure *nf = realloc(reg->fails, (reg->nfails + 1) * sizeof *nf);
    if (nf != NULL) {
        reg->fails = nf;
        nf[reg->nfails].file = strdup(file);
        nf[reg->nfails].code = code;
        nf[reg->nfails].message = strdup(vmmem_last_message());
        if (nf[reg->nfails].file && nf[reg->nfails].message) {
            reg->nfails++;
        } else {
            free(nf[reg->nfails].file);
            free(nf[reg->nfails].message);
        }
    }
    pthread_mutex_unlock(&reg->lock);
}

static const char *base_name(const char *path)
{
    const char *slash = vmmem__os_last_sep(path);
    return slash ? slash + 1 : path;
}

/* The loaded plugin whose file has the same name as path, if any (lock held). */
static const char *same_name_locked(vmmem_registry *reg, const char *path)
{
    for (size_t i = 0; i < reg->nplugins; i++)
        if (strcmp(base_name(reg->plugins[i]->path), base_name(path)) == 0)
            return reg->plugins[i]->path;
    return NULL;
}

/* Record path as shadowed by winner (lock held; dropped when out of memory). */
static void record_shadow_locked(vmmem_registry *reg, const char *path, const char *winner)
{
    struct shadow *ns = realloc(reg->shadows, (reg->nshadows + 1) * sizeof *ns);
    if (ns == NULL)
        return;
    reg->shadows = ns;
    ns[reg->nshadows].file = strdup(path);
    ns[reg->nshadows].winner = strdup(winner);
    if (ns[reg->nshadows].file && ns[reg->nshadows].winner) {
        reg->nshadows++;
    } else {
        free(ns[reg->nshadows].file);
        free(ns[reg->nshadows].winner);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Load every *.so (*.dll on Windows) in dir; returns plugins loaded, first error in *first. */
static int scan_dir(vmmem_registry *reg, const char *dir, int *first)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0; /* a search directory that does not exist is not an error */
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        size_t sl = sizeof VMMEM__OS_PLUGIN_SUFFIX - 1;
        if (len < sl + 1 || strcmp(e->d_name + len - sl, VMMEM__OS_PLUGIN_SUFFIX) != 0)
            continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (nn == NULL)
            break;
        names = nn;
        if ((names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str);
    int loaded = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) < (int)sizeof path) {
            /* A file of the same name loaded earlier on the search path is a
             * deliberate override: this copy is shadowed, not a failure
             * (and is never opened). */
            pthread_mutex_lock(&reg->lock);
            bool already = loaded_locked(reg, path);
            const char *winner = already ? NULL : same_name_locked(reg, path);
            if (winner != NULL)
                record_shadow_locked(reg, path, winner);
            pthread_mutex_unlock(&reg->lock);
            if (!already && winner == NULL) {
                int rc = vmmem_registry_load(reg, path);
                if (rc == 0) {
                    loaded++;
                } else {
                    record_failure(reg, path, rc);
                    if (*first == 0)
                        *first = rc;
                }
            }
        }
        free(names[i]);
    }
    free(names);
    return loaded;
}

/* Search path: VMMEM_PLUGIN_PATH's absolute entries, then the install dir.
 * The relative entries it ignores go to ignored (':'-separated) if not NULL. */
static size_t search_dirs(char *buf, size_t cap, char *ignored, size_t icap)
{
    size_t len = 0, ilen = 0;
    buf[0] = '\0';
    if (ignored != NULL)
        ignored[0] = '\0';
    const char *env = getenv("VMMEM_PLUGIN_PATH");
    if (env != NULL) {
        const char *p = env;
        while (*p) {
            const char *end = strchr(p, VMMEM__OS_PATH_LIST_SEP);
            size_t n = end ? (size_t)(end - p) : strlen(p);
            if (n > 0 && vmmem__os_path_is_absolute(p) && len + n + 2 < cap) {
                /* never relative, never "" = cwd */
                memcpy(buf + len, p, n);
                len += n;
                buf[len++] = VMMEM__OS_PATH_LIST_SEP;
                buf[len] = '\0';
            } else if (n > 0 && !vmmem__os_path_is_absolute(p) && ignored != NULL &&
                       ilen + n + 2 < icap) {
                if (ilen > 0)
                    ignored[ilen++] = VMMEM__OS_PATH_LIST_SEP;
                memcpy(ignored + ilen, p, n);
                ilen += n;
                ignored[ilen] = '\0';
            }
            p += n;
            if (*p == VMMEM__OS_PATH_LIST_SEP)
                p++;
        }
    }
    size_t n = strlen(VMMEM_PLUGIN_DIR);
    if (len + n + 1 < cap) {
        memcpy(buf + len, VMMEM_PLUGIN_DIR, n + 1);
        len += n;
    }
    /* A library used from its build tree (build/<mode>/core/libvmmem.so)
     * finds the plugins staged beside it (build/<mode>/plugins).  The path
     * comes from the loaded library itself, never from the environment. */
    char self[4096];
    if (vmmem__os_self_path(self, sizeof self) && vmmem__os_last_sep(self) != NULL) {
        const char *slash = vmmem__os_last_sep(self);
        size_t dl = (size_t)(slash - self);
        static const char rel[] = "/../plugins";
        if (len + 1 + dl + sizeof rel < cap) {
            buf[len++] = VMMEM__OS_PATH_LIST_SEP;
            memcpy(buf + len, self, dl);
            memcpy(buf + len + dl, rel, sizeof rel);
            len += dl + sizeof rel - 1;
        }
    }
    return len;
}

const char *vmmem_plugin_dir(void)
{
    static _Thread_local char buf[8192];
    search_dirs(buf, sizeof buf, NULL, 0);
    return buf;
}

int vmmem_registry_discover(vmmem_registry *reg)
{
    if (reg == NULL)
        return vmmem__err(-EINVAL, "vmmem_registry_discover: NULL registry");
    char dirs[8192], ignored[4096];
    search_dirs(dirs, sizeof dirs, ignored, sizeof ignored);
    char *searched = strdup(dirs), *ign = ignored[0] ? strdup(ignored) : NULL;
    pthread_mutex_lock(&reg->lock);
    if (searched != NULL) {
        free(reg->searched);
        free(reg->ignored);
        reg->searched = searched;
        reg->ignored = ign;
    } else {
        free(ign);
    }
    pthread_mutex_unlock(&reg->lock);
    int first = 0, loaded = 0;
    char *save = NULL;
    char *seen[64];
    size_t nseen = 0;
    static const char sep[] = {VMMEM__OS_PATH_LIST_SEP, '\0'};
    for (char *dir = strtok_r(dirs, sep, &save); dir; dir = strtok_r(NULL, sep, &save)) {
        char *real = vmmem__os_realpath(dir);
        if (real == NULL)
            continue; /* a search directory that does not exist is not an error */
        bool dup = false;
        for (size_t i = 0; i < nseen && !dup; i++)
            dup = strcmp(seen[i], real) == 0;
        if (dup || nseen == sizeof seen / sizeof seen[0]) {
            free(real);
            continue;
        }
        seen[nseen++] = real;
        struct vmmem__os_file dst;
        if (vmmem__os_stat(real, &dst) == 0 && dst.world_writable) {
            vmmem__err(-EPERM, "refusing plugin directory '%s': it is world-writable", real);
            record_failure(reg, real, -EPERM);
            if (first == 0)
                first = -EPERM;
            continue;
        }
        loaded += scan_dir(reg, real, &first);
    }
    for (size_t i = 0; i < nseen; i++)
        free(seen[i]);
    /* Shadowed copies are not failures (vmmem_registry_shadowed lists them). */
    if (first != 0)
        return vmmem__err(first, "%d plugin(s) loaded; some failed, first: %s", loaded,
                          vmmem_strerror(first));
    return loaded;
}

/* The default registry: made on first use, freed by
 * vmmem_default_registry_release (and then made again if used again). */
static vmmem_registry *_Atomic default_reg;
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;

vmmem_registry *vmmem_default_registry(void)
{
    vmmem_registry *r = atomic_load_explicit(&default_reg, memory_order_acquire);
    if (r != NULL)
        return r;
    pthread_mutex_lock(&default_lock);
    if ((r = atomic_load_explicit(&default_reg, memory_order_relaxed)) == NULL) {
        struct vmmem_error saved = *vmmem__errbuf();
        if (vmmem_registry_new(&r) == 0)
            vmmem_registry_discover(r); /* failures stay recorded in the registry */
        *vmmem__errbuf() = saved;
        atomic_store_explicit(&default_reg, r, memory_order_release);
    }
    pthread_mutex_unlock(&default_lock);
    return r;
}

void vmmem_default_registry_release(void)
{
    pthread_mutex_lock(&default_lock);
    vmmem_registry *r = atomic_exchange(&default_reg, NULL);
    pthread_mutex_unlock(&default_lock);
    vmmem_registry_free(r);
}

/* Why a provider may be missing, for the "unknown provider" message: where
 * discovery looked, what it ignored, how many files failed.  Empty for a
 * registry that never ran discovery (the program loaded what it wanted). */
static void registry_hint_locked(vmmem_registry *reg, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (reg->searched == NULL)
        return;
    /* Most useful first: the message is bounded, the path may be long. */
    size_t n = 0;
    if (reg->nfails > 0)
        n += (size_t)snprintf(buf + n, cap - n, "; %zu plugin file%s failed to load",
                              reg->nfails, reg->nfails == 1 ? "" : "s");
    if (n < cap && reg->ignored != NULL)
        n += (size_t)snprintf(buf + n, cap - n,
                              "; ignored relative VMMEM_PLUGIN_PATH entries '%s'", reg->ignored);
    if (n < cap)
        snprintf(buf + n, cap - n, "; `vmmem providers` lists what was found; searched %s",
                 reg->searched);
}

/* The same hint for reg (NULL: the default registry), for config.c. */
void vmmem__registry_hint(vmmem_registry *reg, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (reg == NULL && (reg = atomic_load(&default_reg)) == NULL)
        return;
    pthread_mutex_lock(&reg->lock);
    registry_hint_locked(reg, buf, cap);
    pthread_mutex_unlock(&reg->lock);
}

int vmmem__registry_lookup(vmmem_registry *reg, const char *name, struct vmmem_prov *out)
{
    if (reg == NULL && (reg = vmmem_default_registry()) == NULL)
        return vmmem__err(-ENOMEM, "cannot create the default registry");
    int rc = 0;
    pthread_mutex_lock(&reg->lock);
    const struct vmmem_prov *pv = find_locked(reg, name);
    if (pv == NULL) {
        char hint[400];
        registry_hint_locked(reg, hint, sizeof hint);
        rc = vmmem__err(VMMEM_ENO_PROVIDER, "unknown provider '%s'%s", name, hint);
    } else {
        *out = *pv;
        out->file = NULL; /* not owned by the copy */
        vmmem__plugin_ref(pv->plugin);
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

const struct vmmem_provider *vmmem_registry_find(vmmem_registry *reg, const char *name)
{
    if (reg == NULL || name == NULL)
        return NULL;
    pthread_mutex_lock(&reg->lock);
    const struct vmmem_prov *pv = find_locked(reg, name);
    const struct vmmem_provider *p = pv ? pv->p : NULL;
    pthread_mutex_unlock(&reg->lock);
    return p;
}

/* One of the registry's counts, read under its lock. */
static size_t count_locked(vmmem_registry *reg, const size_t *count)
{
    pthread_mutex_lock(&reg->lock);
    size_t n = *count;
    pthread_mutex_unlock(&reg->lock);
    return n;
}

size_t vmmem_registry_count(vmmem_registry *reg)
{
    return reg ? count_locked(reg, &reg->n) : 0;
}

int vmmem_registry_get(vmmem_registry *reg, size_t i, struct vmmem_provider_info *info)
{
    if (reg == NULL || info == NULL)
        return vmmem__err(-EINVAL, "vmmem_registry_get: NULL argument");
    int rc = 0;
    pthread_mutex_lock(&reg->lock);
    if (i >= reg->n) {
        rc = vmmem__err(-ERANGE, "provider index %zu out of range (%zu providers)", i, reg->n);
    } else {
        const struct vmmem_prov *pv = &reg->provs[i];
        info->name = pv->p->name;
        info->description = pv->p->description ? pv->p->description : "";
        info->abi_version = pv->p->abi_version;
        info->file = pv->file;
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

size_t vmmem_registry_failure_count(vmmem_registry *reg)
{
    return reg ? count_locked(reg, &reg->nfails) : 0;
}

int vmmem_registry_failure(vmmem_registry *reg, size_t i, struct vmmem_load_failure *info)
{
    if (reg == NULL || info == NULL)
        return vmmem__err(-EINVAL, "vmmem_registry_failure: NULL argument");
    int rc = 0;
    pthread_mutex_lock(&reg->lock);
    if (i >= reg->nfails) {
        rc = vmmem__err(-ERANGE, "failure index %zu out of range", i);
    } else {
        info->file = reg->fails[i].file;
        info->code = reg->fails[i].code;
        info->message = reg->fails[i].message;
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

size_t vmmem_registry_shadowed_count(vmmem_registry *reg)
{
    return reg ? count_locked(reg, &reg->nshadows) : 0;
}

int vmmem_registry_shadowed(vmmem_registry *reg, size_t i, struct vmmem_shadowed_plugin *info)
{
    if (reg == NULL || info == NULL)
        return vmmem__err(-EINVAL, "vmmem_registry_shadowed: NULL argument");
    int rc = 0;
    pthread_mutex_lock(&reg->lock);
    if (i >= reg->nshadows) {
        rc = vmmem__err(-ERANGE, "shadowed index %zu out of range (%zu)", i, reg->nshadows);
    } else {
        info->file = reg->shadows[i].file;
        info->loaded = reg->shadows[i].winner;
    }
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

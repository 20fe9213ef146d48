/*
 * Config strings: "provider:key=value,key,...;provider:..." into region
 * specs, and the checks shared with the C-array form (provider exists, keys
 * known and required ones present, no overlap).  Errors carry the 1-based
 * column of the offending text and quote it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Where each part of a region was written, for messages. */
struct spec_cols {
    int region;   /* provider name */
    int size_val; /* value of size= */
    int *keys;    /* per option: the key */
    int *vals;    /* per option: the value (-1 for a flag) */
    const char *text;
    size_t text_start, text_end; /* the region's text span */
};

struct vmmem_config {
    size_t n;
    struct vmmem_region_spec *specs;
    struct spec_cols *cols;
    char *text; /* a copy of the input, for quoting */
};

int vmmem_parse_size(const char *text, uint64_t *out)
{
    if (text == NULL || out == NULL)
        return vmmem__err(-EINVAL, "vmmem_parse_size: NULL argument");
    const char *p = text;
    uint64_t v = 0;
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    const char *digits = p;
    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            break;
        if (v > (UINT64_MAX - d) / base)
            return vmmem__err(VMMEM_EBAD_NUMBER, "number '%s' does not fit in 64 bits", text);
        v = v * base + d;
    }
    if (p == digits)
        return vmmem__err(VMMEM_EBAD_NUMBER, "'%s' is not a number", text);
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    case 't': case 'T': shift = 40; p++; break;
    default: break;
    }
    if (*p != '\0')
        return vmmem__err(VMMEM_EBAD_NUMBER, "'%s' is not a number with an optional K/M/G/T suffix",
                          text);
    if (shift && v > (UINT64_MAX >> shift))
        return vmmem__err(VMMEM_EBAD_NUMBER, "size '%s' does not fit in 64 bits", text);
    *out = v << shift;
    return 0;
}

void vmmem_config_free(vmmem_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        struct vmmem_region_spec *s = &cfg->specs[i];
        for (size_t j = 0; j < s->n_options; j++) {
            free((char *)s->options[j].key);
            free((char *)s->options[j].value);
        }
        free((void *)s->options);
        free((char *)s->provider);
        free(cfg->cols[i].keys);
        free(cfg->cols[i].vals);
    }
    free(cfg->specs);
    free(cfg->cols);
    free(cfg->text);
    free(cfg);
}

size_t vmmem_config_count(const vmmem_config *cfg)
{
    return cfg ? cfg->n : 0;
}

const struct vmmem_region_spec *vmmem_config_specs(const vmmem_config *cfg)
{
    return cfg ? cfg->specs : NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parser state over the text; pos is an index, region the one being read. */
struct parser {
    const char *t;
    size_t pos;
    size_t region;
};

static int col(size_t pos)
{
    return pos >= (size_t)INT32_MAX ? INT32_MAX : (int)pos + 1;
}

/* The one location format of every config message: " (region N, column C)",
 * or " (region N)" when there is no text (C arrays of specs). */
struct loc {
    char s[64]; /* " (region " 20 digits ", column " 11 digits ")" fits */
};

static struct loc loc(size_t region, int column)
{
    struct loc l;
    if (column > 0)
        snprintf(l.s, sizeof l.s, " (region %zu, column %d)", region, column);
    else
        snprintf(l.s, sizeof l.s, " (region %zu)", region);
    return l;
}

static void skip_blanks(struct parser *ps)
{
    while (is_blank(ps->t[ps->pos]))
        ps->pos++;
}

/* A quoted excerpt of the text from pos, for messages. */
static const char *excerpt(const char *t, size_t pos, char *buf, size_t cap)
{
    size_t n = 0;
    while (t[pos + n] != '\0' && t[pos + n] != ';' && n + 1 < cap && n < 40)
        n++;
    memcpy(buf, t + pos, n);
    buf[n] = '\0';
    return buf;
}

/* The raw text of the value starting at pos (up to ',' ';' or end). */
static const char *value_at(const char *t, size_t pos, char *buf, size_t cap)
{
    size_t n = 0;
    while (t[pos + n] != '\0' && t[pos + n] != ',' && t[pos + n] != ';' && n + 1 < cap)
        n++;
    while (n > 0 && is_blank(t[pos + n - 1]))
        n--;
    memcpy(buf, t + pos, n);
    buf[n] = '\0';
    return buf;
}

/* Read a value with backslash escapes up to an unescaped ',' ';' or end.
 * Trailing unescaped blanks are trimmed. */
static int read_value(struct parser *ps, char **out)
{
    const char *t = ps->t;
    size_t cap = strlen(t + ps->pos) + 1;
    char *v = malloc(cap);
    if (v == NULL)
        return vmmem__err(-ENOMEM, "out of memory parsing config");
    size_t n = 0, keep = 0; /* keep: length up to the last escaped/non-blank char */
    for (;;) {
        char c = t[ps->pos];
        if (c == '\0' || c == ',' || c == ';')
            break;
        if (c == '\\') {
            char e = t[ps->pos + 1];
            if (e == '\0') {
                free(v);
                return vmmem__err_col(VMMEM_ESYNTAX, col(ps->pos),
                                      "dangling '\\' at the end of the config%s",
                                      loc(ps->region, col(ps->pos)).s);
            }
            v[n++] = e;
            keep = n;
            ps->pos += 2;
            continue;
        }
        v[n++] = c;
        if (!is_blank(c))
            keep = n;
        ps->pos++;
    }
    v[keep] = '\0';
    *out = v;
    return 0;
}

static int add_option(struct vmmem_region_spec *s, struct spec_cols *c, char *key, char *val,
                      int kcol, int vcol)
{
    size_t n = s->n_options;
    struct vmmem_option *o = realloc((void *)s->options, (n + 1) * sizeof *o);
    if (o == NULL)
        return -ENOMEM;
    s->options = o;
    int *k = realloc(c->keys, (n + 1) * sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    c->keys = k;
    int *v = realloc(c->vals, (n + 1) * sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    c->vals = v;
    v[n] = vcol;
    o[n].key = key;
    o[n].value = val;
    k[n] = kcol;
    s->n_options = n + 1;
    return 0;
}

static int parse_region(struct parser *ps, struct vmmem_region_spec *s, struct spec_cols *c)
{
    char ex[64];
    const char *t = ps->t;
    size_t start = ps->pos;
    c->region = col(start);
    c->text_start = start;
    c->size_val = -1;
    while (vmmem__is_name_char(t[ps->pos]))
        ps->pos++;
    size_t name_end = ps->pos;
    skip_blanks(ps);
    if (name_end == start)
        return vmmem__err_col(VMMEM_ESYNTAX, col(start), "expected a provider name: '%s'%s",
                              excerpt(t, start, ex, sizeof ex), loc(ps->region, col(start)).s);
    if (t[ps->pos] != ':')
        return vmmem__err_col(VMMEM_ESYNTAX, col(ps->pos),
                              "expected ':' after the provider name: '%s'%s",
                              excerpt(t, start, ex, sizeof ex), loc(ps->region, col(ps->pos)).s);
    s->provider = strndup(t + start, name_end - start);
    if (s->provider == NULL)
        return -ENOMEM;
    ps->pos++;
    bool have_addr = false, have_size = false;
    for (;;) {
        skip_blanks(ps);
        size_t kpos = ps->pos;
        while (vmmem__is_name_char(t[ps->pos]))
            ps->pos++;
        size_t kend = ps->pos;
        skip_blanks(ps);
        char c0 = t[ps->pos];
        if (kend == kpos)
            return vmmem__err_col(VMMEM_ESYNTAX, col(kpos), "expected an option key: '%s'%s",
                                  excerpt(t, kpos, ex, sizeof ex), loc(ps->region, col(kpos)).s);
        if (c0 != '=' && c0 != ',' && c0 != ';' && c0 != '\0')
            return vmmem__err_col(VMMEM_ESYNTAX, col(ps->pos), "unexpected character '%c' in '%s'%s",
                                  c0, excerpt(t, kpos, ex, sizeof ex),
                                  loc(ps->region, col(ps->pos)).s);
        char *key = strndup(t + kpos, kend - kpos);
        if (key == NULL)
            return -ENOMEM;
        char *val = NULL;
        int vcol = -1;
        if (c0 == '=') {
            ps->pos++;
            skip_blanks(ps);
            vcol = col(ps->pos);
            int rc = read_value(ps, &val);
            if (rc < 0) {
                free(key);
                return rc;
            }
            if (val[0] == '\0') {
                free(val);
                rc = vmmem__err_col(VMMEM_ESYNTAX, vcol, "empty value for key '%s'%s", key,
                                    loc(ps->region, vcol).s);
                free(key);
                return rc;
            }
        }
        bool is_addr = strcmp(key, "addr") == 0, is_size = strcmp(key, "size") == 0;
        if (is_addr || is_size) {
            bool *have = is_addr ? &have_addr : &have_size;
            int rc = 0;
            if (*have)
                rc = vmmem__err_col(VMMEM_EDUPLICATE_KEY, col(kpos), "duplicate key '%s'%s", key,
                                    loc(ps->region, col(kpos)).s);
            else if (val == NULL)
                rc = vmmem__err_col(VMMEM_EBAD_VALUE, col(kpos), "key '%s' needs a value%s", key,
                                    loc(ps->region, col(kpos)).s);
            else if ((rc = vmmem_parse_size(val, is_addr ? &s->addr : &s->size)) < 0)
                rc = vmmem__err_col(VMMEM_EBAD_NUMBER, vcol, "bad number '%s' for '%s'%s", val,
                                    key, loc(ps->region, vcol).s);
            if (rc == 0) {
                *have = true;
                if (!is_addr)
                    c->size_val = vcol;
            }
            free(key);
            free(val);
            if (rc < 0)
                return rc;
        } else {
            for (size_t j = 0; j < s->n_options; j++) {
                if (strcmp(s->options[j].key, key) == 0) {
                    int rc = vmmem__err_col(VMMEM_EDUPLICATE_KEY, col(kpos),
                                            "duplicate key '%s'%s", key,
                                            loc(ps->region, col(kpos)).s);
                    free(key);
                    free(val);
                    return rc;
                }
            }
            if (val == NULL && (val = strdup("")) == NULL) {
                free(key);
                return -ENOMEM;
            }
            if (add_option(s, c, key, val, col(kpos), vcol) < 0) {
                free(key);
                free(val);
                return vmmem__err(-ENOMEM, "out of memory parsing config");
            }
        }
        if (t[ps->pos] != ',')
            break;
        ps->pos++;
    }
    c->text_end = ps->pos;
    while (c->text_end > start && is_blank(t[c->text_end - 1]))
        c->text_end--;
    if (!have_addr || !have_size)
        return vmmem__err_col(VMMEM_EMISSING_KEY, c->region, "region '%s' has no '%s=' key%s",
                              excerpt(t, start, ex, sizeof ex), have_addr ? "size" : "addr",
                              loc(ps->region, c->region).s);
    char vx[64];
    if (s->size == 0)
        return vmmem__err_col(VMMEM_EZERO_SIZE, c->size_val, "size '%s' is zero%s",
                              value_at(t, (size_t)c->size_val - 1, vx, sizeof vx),
                              loc(ps->region, c->size_val).s);
    if (s->size - 1 > UINT64_MAX - s->addr)
        return vmmem__err_col(VMMEM_EOVERFLOW, c->size_val,
                              "size '%s': addr 0x%llx + size 0x%llx passes 2^64%s",
                              value_at(t, (size_t)c->size_val - 1, vx, sizeof vx),
                              (unsigned long long)s->addr, (unsigned long long)s->size,
                              loc(ps->region, c->size_val).s);
    return 0;
}

int vmmem_config_parse(const char *text, vmmem_config **out)
{
    if (text == NULL || out == NULL)
        return vmmem__err(-EINVAL, "vmmem_config_parse: NULL argument");
    vmmem_config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL || (cfg->text = strdup(text)) == NULL) {
        free(cfg);
        return vmmem__err(-ENOMEM, "out of memory parsing config");
    }
    struct parser ps = {cfg->text, 0, 0};
    int rc = 0;
    size_t cap = 0;
    for (;;) {
        skip_blanks(&ps);
        if (text[ps.pos] == '\0')
            break;
        if (text[ps.pos] == ';') {
            rc = vmmem__err_col(VMMEM_ESYNTAX, col(ps.pos), "empty region%s",
                                loc(cfg->n, col(ps.pos)).s);
            goto fail;
        }
        if (cfg->n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct vmmem_region_spec *s = realloc(cfg->specs, ncap * sizeof *s);
            if (s == NULL)
                goto nomem;
            cfg->specs = s;
            struct spec_cols *c = realloc(cfg->cols, ncap * sizeof *c);
            if (c == NULL)
                goto nomem;
            cfg->cols = c;
            cap = ncap;
        }
        struct vmmem_region_spec *s = &cfg->specs[cfg->n];
        struct spec_cols *c = &cfg->cols[cfg->n];
        memset(s, 0, sizeof *s);
        memset(c, 0, sizeof *c);
        c->text = cfg->text;
        ps.region = cfg->n++;
        rc = parse_region(&ps, s, c);
        if (rc == -ENOMEM)
            goto nomem;
        if (rc < 0)
            goto fail;
        if (text[ps.pos] == ';')
            ps.pos++;
    }
    if (cfg->n == 0) {
        rc = vmmem__err(VMMEM_ENO_REGIONS, "config string has no regions");
        goto fail;
    }
    *out = cfg;
    return 0;
nomem:
    rc = vmmem__err(-ENOMEM, "out of memory parsing config");
fail:
    vmmem_config_free(cfg);
    return rc;
}

/* ---- checks shared by config strings and C arrays ---- */

static const struct vmmem_option_desc *find_desc(const struct vmmem_provider *p, const char *key)
{
    if (p->options == NULL)
        return NULL;
    for (const struct vmmem_option_desc *d = p->options; d->key != NULL; d++)
        if (strcmp(d->key, key) == 0)
            return d;
    return NULL;
}

static int check_keys(const struct vmmem_provider *p, const struct vmmem_region_spec *s, size_t idx,
                      const struct spec_cols *c)
{
    for (size_t j = 0; j < s->n_options; j++) {
        const struct vmmem_option *o = &s->options[j];
        int kcol = c ? c->keys[j] : -1;
        if (o->key == NULL)
            return vmmem__err(-EINVAL, "option %zu has a NULL key%s", j, loc(idx, -1).s);
        const struct vmmem_option_desc *d = find_desc(p, o->key);
        if (d == NULL)
            return vmmem__err_col(VMMEM_EUNKNOWN_KEY, kcol, "unknown key '%s' for provider '%s'%s",
                                  o->key, p->name, loc(idx, kcol).s);
        bool bare = o->value == NULL || o->value[0] == '\0';
        if ((d->flags & VMMEM_OPT_FLAG) && !bare)
            return vmmem__err_col(VMMEM_EBAD_VALUE, kcol,
                                  "key '%s' of provider '%s' is a flag and takes no value "
                                  "(got '%s')%s",
                                  o->key, p->name, o->value, loc(idx, kcol).s);
        if (!(d->flags & VMMEM_OPT_FLAG) && bare)
            return vmmem__err_col(VMMEM_EBAD_VALUE, kcol,
                                  "key '%s' of provider '%s' needs a value ('%s=...')%s", o->key,
                                  p->name, o->key, loc(idx, kcol).s);
        for (size_t k = 0; k < j; k++)
            if (strcmp(s->options[k].key, o->key) == 0)
                return vmmem__err_col(VMMEM_EDUPLICATE_KEY, kcol, "duplicate key '%s'%s",
                                      o->key, loc(idx, kcol).s);
    }
    if (p->options != NULL)
        for (const struct vmmem_option_desc *d = p->options; d->key != NULL; d++)
            if ((d->flags & VMMEM_OPT_REQUIRED) && vmmem_spec_get(s, d->key) == NULL)
                return vmmem__err_col(VMMEM_EMISSING_KEY, c ? c->region : -1,
                                      "provider '%s' needs key '%s='%s", p->name, d->key,
                                      loc(idx, c ? c->region : -1).s);
    return 0;
}

struct order {
    uint64_t addr;
    size_t idx;
};

static int cmp_order(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static int validate(vmmem_registry *reg, const struct vmmem_region_spec *specs, size_t n,
                    const struct spec_cols *cols)
{
    if (n == 0)
        return vmmem__err(VMMEM_ENO_REGIONS, "a memory map needs at least one region");
    if (specs == NULL)
        return vmmem__err(-EINVAL, "region specs are NULL");
    for (size_t i = 0; i < n; i++) {
        const struct vmmem_region_spec *s = &specs[i];
        int rcol = cols ? cols[i].region : -1;
        if (s->provider == NULL)
            return vmmem__err(-EINVAL, "no provider name%s", loc(i, -1).s);
        if (s->n_options > 0 && s->options == NULL)
            return vmmem__err(-EINVAL, "options are NULL%s", loc(i, -1).s);
        if (s->size == 0)
            return vmmem__err_addr(VMMEM_EZERO_SIZE, s->addr, "region at 0x%llx has size 0%s",
                                   (unsigned long long)s->addr, loc(i, -1).s);
        if (s->size - 1 > UINT64_MAX - s->addr)
            return vmmem__err_addr(VMMEM_EOVERFLOW, s->addr,
                                   "start 0x%llx + size 0x%llx passes 2^64%s",
                                   (unsigned long long)s->addr, (unsigned long long)s->size,
                                   loc(i, -1).s);
        struct vmmem_prov pv;
        int rc = vmmem__registry_lookup(reg, s->provider, &pv);
        if (rc == VMMEM_ENO_PROVIDER) {
            char hint[400];
            vmmem__registry_hint(reg, hint, sizeof hint);
            return vmmem__err_col(rc, rcol, "unknown provider '%s'%s%s", s->provider,
                                  loc(i, rcol).s, hint);
        }
        if (rc < 0)
            return rc;
        rc = check_keys(pv.p, s, i, cols ? &cols[i] : NULL);
        vmmem__plugin_unref(pv.plugin);
        if (rc < 0)
            return rc;
    }
    struct order *o = malloc(n * sizeof *o);
    if (o == NULL)
        return vmmem__err(-ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        o[i] = (struct order){specs[i].addr, i};
    qsort(o, n, sizeof *o, cmp_order);
    int rc = 0;
    for (size_t i = 1; i < n; i++) {
        const struct vmmem_region_spec *a = &specs[o[i - 1].idx], *b = &specs[o[i].idx];
        if (b->addr <= a->addr + (a->size - 1)) {
            /* Name the one written later. */
            size_t first = o[i - 1].idx < o[i].idx ? o[i - 1].idx : o[i].idx;
            size_t later = o[i - 1].idx < o[i].idx ? o[i].idx : o[i - 1].idx;
            const struct vmmem_region_spec *f = &specs[first], *l = &specs[later];
            if (cols) {
                const struct spec_cols *cl = &cols[later], *cf = &cols[first];
                rc = vmmem__err_col(VMMEM_EOVERLAP, cl->region,
                                    "'%.*s'%s overlaps '%.*s'%s",
                                    (int)(cl->text_end - cl->text_start),
                                    cl->text + cl->text_start, loc(later, cl->region).s,
                                    (int)(cf->text_end - cf->text_start),
                                    cf->text + cf->text_start, loc(first, cf->region).s);
            } else {
                rc = vmmem__err(VMMEM_EOVERLAP, "[0x%llx, +0x%llx)%s overlaps [0x%llx, +0x%llx)%s",
                                (unsigned long long)l->addr, (unsigned long long)l->size,
                                loc(later, -1).s, (unsigned long long)f->addr,
                                (unsigned long long)f->size, loc(first, -1).s);
            }
            vmmem__errbuf()->addr = l->addr;
            break;
        }
    }
    free(o);
    return rc;
}

int vmmem__validate_specs(vmmem_registry *reg, const struct vmmem_region_spec *specs, size_t n)
{
    return validate(reg, specs, n, NULL);
}

int vmmem_config_validate(const vmmem_config *cfg, vmmem_registry *reg)
{
    if (cfg == NULL)
        return vmmem__err(-EINVAL, "vmmem_config_validate: NULL config");
    return validate(reg, cfg->specs, cfg->n, cfg->cols);
}

/* ---- the host's option kit: provider messages that point at the text ---- */

static _Thread_local const struct vmmem__cfg_scope *scope;

void vmmem__cfg_scope_enter(struct vmmem__cfg_scope *sc, const vmmem_config *cfg,
                            const struct vmmem_region_spec *specs, size_t n)
{
    sc->cfg = cfg;
    sc->specs = cfg ? cfg->specs : specs;
    sc->n = cfg ? cfg->n : n;
    sc->prev = scope;
    scope = sc;
}

void vmmem__cfg_scope_leave(const struct vmmem__cfg_scope *sc)
{
    scope = sc->prev;
}

/* Region index and column of key (NULL: the region) for spec, a provider's
 * copy of one of the specs in scope: found by range and provider, since
 * regions in one build never overlap.  A config string's scope wins over a
 * C array's (space_add_config enters both). */
static bool locate(const struct vmmem_region_spec *spec, const char *key, size_t *region,
                   int *column)
{
    bool found = false;
    *column = -1;
    for (const struct vmmem__cfg_scope *sc = scope; sc != NULL; sc = sc->prev) {
        for (size_t i = 0; i < sc->n; i++) {
            const struct vmmem_region_spec *s = &sc->specs[i];
            if (s->addr != spec->addr || s->size != spec->size || s->provider == NULL ||
                spec->provider == NULL || strcmp(s->provider, spec->provider) != 0)
                continue;
            if (!found) {
                *region = i;
                found = true;
            }
            if (sc->cfg == NULL)
                break;
            const struct spec_cols *c = &sc->cfg->cols[i];
            *region = i;
            *column = c->region;
            for (size_t j = 0; key != NULL && j < s->n_options; j++)
                if (strcmp(s->options[j].key, key) == 0)
                    *column = c->vals[j] > 0 ? c->vals[j] : c->keys[j];
            return true;
        }
    }
    return found;
}

int vmmem__option_error(const struct vmmem_region_spec *spec, const char *key, int code,
                        const char *fmt, ...)
{
    if (spec == NULL || fmt == NULL)
        return vmmem__err(code, "provider error without a region spec");
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    size_t region = 0;
    int column = -1;
    struct loc l = {""};
    if (locate(spec, key, &region, &column))
        l = loc(region, column);
    const char *prov = spec->provider ? spec->provider : "provider";
    const char *val = key ? vmmem_spec_get(spec, key) : NULL;
    if (key == NULL)
        vmmem__err_col(code, column, "%s: %s%s", prov, what, l.s);
    else if (val == NULL || val[0] == '\0')
        vmmem__err_col(code, column, "%s: '%s' %s%s", prov, key, what, l.s);
    else
        vmmem__err_col(code, column, "%s: %s='%s' %s%s", prov, key, val, what, l.s);
    vmmem__errbuf()->addr = spec->addr;
    return code;
}

int vmmem__option_prot(const struct vmmem_region_spec *spec, int *prot)
{
    const char *v = vmmem_spec_get(spec, "prot");
    if (v == NULL || strcmp(v, "rw") == 0) {
        *prot = VMMEM_PROT_RW;
        return 0;
    }
    if (strcmp(v, "r") == 0) {
        *prot = VMMEM_PROT_READ;
        return 0;
    }
    return vmmem__option_error(spec, "prot", VMMEM_EBAD_VALUE, "is not 'r' or 'rw'");
}

int vmmem__option_sharing(const struct vmmem_region_spec *spec, bool dflt, bool *shared)
{
    bool s = vmmem_spec_has(spec, "shared"), p = vmmem_spec_has(spec, "private");
    if (s && p) {
        /* point at the one written later */
        const char *later = "private";
        for (size_t j = 0; j < spec->n_options; j++)
            if (strcmp(spec->options[j].key, "shared") == 0 ||
                strcmp(spec->options[j].key, "private") == 0)
                later = spec->options[j].key;
        return vmmem__option_error(spec, later, VMMEM_EBAD_VALUE,
                                   "excludes '%s'", strcmp(later, "shared") == 0 ? "private"
                                                                                : "shared");
    }
    *shared = s ? true : p ? false : dflt;
    return 0;
}

int vmmem__option_size(const struct vmmem_region_spec *spec, const char *key, uint64_t align,
                       uint64_t *out)
{
    const char *v = key ? vmmem_spec_get(spec, key) : NULL;
    if (v == NULL)
        return 0;
    uint64_t x;
    if (vmmem_parse_size(v, &x) < 0)
        return vmmem__option_error(spec, key, VMMEM_EBAD_NUMBER,
                                   "is not a number (decimal or 0x hex, optional K/M/G/T)");
    if (align > 1 && (align & (align - 1)) == 0 && (x & (align - 1)) != 0)
        return vmmem__option_error(spec, key, VMMEM_EBAD_VALUE,
                                   "(0x%llx) is not a multiple of 0x%llx", (unsigned long long)x,
                                   (unsigned long long)align);
    *out = x;
    return 0;
}

void vmmem__config_locate_error(const struct vmmem_region_spec *spec)
{
    struct vmmem_error *e = vmmem__errbuf();
    size_t region = 0;
    int column = -1;
    if (strstr(e->message, "(region ") != NULL || !locate(spec, NULL, &region, &column))
        return;
    if (e->column > 0) /* the provider's column (set_error has none; keep it anyway) */
        column = e->column;
    struct loc l = loc(region, column);
    size_t n = strlen(e->message);
    if (n + strlen(l.s) < sizeof e->message)
        memcpy(e->message + n, l.s, strlen(l.s) + 1);
    e->column = column;
}

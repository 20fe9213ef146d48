/*
 * Fuzz target: config strings (config.h) and building maps from them.
 *
 * The input is the config text.  Checks, besides "no crash, no leak, no UB":
 *  - vmmem_parse_size() on the whole text agrees with an independent
 *    reference parser (code and value);
 *  - a failed parse returns a documented code, records it in
 *    vmmem_last_error() with a non-empty message and, for errors about a
 *    place in the text, a 1-based column inside the text;
 *  - a successful parse gives specs with valid names, non-zero sizes that do
 *    not pass 2^64, and no addr/size among the options; printing the specs
 *    back as a config string (escaping values) and parsing that gives the
 *    same specs (provider, addr, size, options) - the round trip;
 *  - vmmem_config_validate() against a registry holding only the mmap
 *    provider returns exactly what a reference check computes from the
 *    provider's own option table (unknown provider, unknown key, flag/value
 *    misuse, overlap), in the documented order;
 *  - for small maps, vmmem_map_from_config() with the same registry succeeds
 *    or fails as the mmap provider's documented option rules say, and a map
 *    it builds has exactly the specs' regions, sorted, with the right
 *    protection, readable at both ends.
 */
#include "fuzz_common.h"

#define MAX_TEXT 4096
#define MAX_MAP_BYTES (1u << 20)
#define MAX_MAP_REGIONS 16

static vmmem_registry *g_reg;
static const struct vmmem_provider *g_mmap;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (vmmem_registry_new(&g_reg) < 0)
        abort();
    fz_load_plugin(g_reg, "vmmem-mmap.so");
    g_mmap = vmmem_registry_find(g_reg, "mmap");
    if (g_mmap == NULL)
        abort();
    return 0;
}

/* ---- reference number parser (independent of config.c) ---- */

static int ref_parse_size(const char *t, uint64_t *out)
{
    unsigned base = 10;
    if (t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
        base = 16;
        t += 2;
    }
    uint64_t v = 0;
    size_t nd = 0;
    bool over = false;
    for (;; t++, nd++) {
        int d = -1;
        char c = *t;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        if (d < 0)
            break;
        if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, (unsigned)d, &v))
            over = true;
    }
    if (nd == 0)
        return VMMEM_EBAD_NUMBER;
    unsigned shift = 0;
    switch (*t) {
    case 'k': case 'K': shift = 10; t++; break;
    case 'm': case 'M': shift = 20; t++; break;
    case 'g': case 'G': shift = 30; t++; break;
    case 't': case 'T': shift = 40; t++; break;
    default: break;
    }
    /* The library reports overflow as soon as it sees it; either way it is
     * BAD_NUMBER, so the order of the two checks does not show. */
    if (over || *t != '\0')
        return VMMEM_EBAD_NUMBER;
    if (shift && (v >> (64 - shift)) != 0)
        return VMMEM_EBAD_NUMBER;
    *out = v << shift;
    return 0;
}

static void check_parse_size(const char *text)
{
    uint64_t a = 0x5a5a5a5a5a5a5a5aull, b = 0;
    int rc = vmmem_parse_size(text, &a);
    int want = ref_parse_size(text, &b);
    FZ_CHECK(rc == want, "vmmem_parse_size(\"%s\") = %d, reference says %d", text, rc, want);
    if (rc == 0) {
        FZ_CHECK(a == b, "vmmem_parse_size(\"%s\") = 0x%llx, reference 0x%llx", text,
                 (unsigned long long)a, (unsigned long long)b);
        char again[32];
        uint64_t c = 0;
        snprintf(again, sizeof again, "0x%llx", (unsigned long long)a);
        FZ_CHECK(vmmem_parse_size(again, &c) == 0 && c == a, "round trip of 0x%llx",
                 (unsigned long long)a);
    } else {
        FZ_CHECK(a == 0x5a5a5a5a5a5a5a5aull, "failed parse_size wrote its output");
        FZ_CHECK(vmmem_last_error()->code == rc, "last_error code %d != %d",
                 vmmem_last_error()->code, rc);
    }
}

/* ---- helpers ---- */

static bool name_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* Append to a growing string; returns false when it does not fit. */
struct sbuf {
    char *p;
    size_t len, cap;
};

static bool sb_putc(struct sbuf *b, char c)
{
    if (b->len + 1 >= b->cap)
        return false;
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
    return true;
}

static bool sb_puts(struct sbuf *b, const char *s)
{
    for (; *s; s++)
        if (!sb_putc(b, *s))
            return false;
    return true;
}

/* Print specs back as a config string, escaping values with '\'. */
static bool print_config(const struct vmmem_region_spec *s, size_t n, struct sbuf *b)
{
    b->len = 0;
    b->p[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char num[80];
        if (i > 0 && !sb_putc(b, ';'))
            return false;
        snprintf(num, sizeof num, ":addr=0x%llx,size=%llu", (unsigned long long)s[i].addr,
                 (unsigned long long)s[i].size);
        if (!sb_puts(b, s[i].provider) || !sb_puts(b, num))
            return false;
        for (size_t j = 0; j < s[i].n_options; j++) {
            const struct vmmem_option *o = &s[i].options[j];
            if (!sb_putc(b, ',') || !sb_puts(b, o->key))
                return false;
            if (o->value[0] == '\0')
                continue;
            if (!sb_putc(b, '='))
                return false;
            for (const char *v = o->value; *v; v++) {
                if (strchr(",;\\ \t\r\n", *v) != NULL && !sb_putc(b, '\\'))
                    return false;
                if (!sb_putc(b, *v))
                    return false;
            }
        }
    }
    return true;
}

static bool same_specs(const struct vmmem_region_spec *a, const struct vmmem_region_spec *b,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(a[i].provider, b[i].provider) != 0 || a[i].addr != b[i].addr ||
            a[i].size != b[i].size || a[i].n_options != b[i].n_options)
            return false;
        for (size_t j = 0; j < a[i].n_options; j++)
            if (strcmp(a[i].options[j].key, b[i].options[j].key) != 0 ||
                strcmp(a[i].options[j].value, b[i].options[j].value) != 0)
                return false;
    }
    return true;
}

static const struct vmmem_option_desc *mmap_desc(const char *key)
{
    for (const struct vmmem_option_desc *d = g_mmap->options; d && d->key; d++)
        if (strcmp(d->key, key) == 0)
            return d;
    return NULL;
}

static bool overlap(const struct vmmem_region_spec *a, const struct vmmem_region_spec *b)
{
    return a->addr <= b->addr + (b->size - 1) && b->addr <= a->addr + (a->size - 1);
}

/* What vmmem_config_validate must return for these specs (mmap only). */
static int ref_validate(const struct vmmem_region_spec *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].provider, "mmap") != 0)
            return VMMEM_ENO_PROVIDER;
        for (size_t j = 0; j < s[i].n_options; j++) {
            const struct vmmem_option_desc *d = mmap_desc(s[i].options[j].key);
            if (d == NULL)
                return VMMEM_EUNKNOWN_KEY;
            bool bare = s[i].options[j].value[0] == '\0';
            if ((d->flags & VMMEM_OPT_FLAG) ? !bare : bare)
                return VMMEM_EBAD_VALUE;
        }
        for (const struct vmmem_option_desc *d = g_mmap->options; d && d->key; d++)
            if ((d->flags & VMMEM_OPT_REQUIRED) && vmmem_spec_get(&s[i], d->key) == NULL)
                return VMMEM_EMISSING_KEY;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (overlap(&s[i], &s[j]))
                return VMMEM_EOVERLAP;
    return 0;
}

/*
 * What building a map of validated mmap specs must give: 0, a code, or 1
 * for "cannot tell" (huge pages depend on the machine's reservations).
 */
static int ref_map(const struct vmmem_region_spec *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *prot = vmmem_spec_get(&s[i], "prot");
        if (prot != NULL && strcmp(prot, "r") != 0 && strcmp(prot, "rw") != 0)
            return VMMEM_EBAD_VALUE;
        if (vmmem_spec_has(&s[i], "shared") && vmmem_spec_has(&s[i], "private"))
            return VMMEM_EBAD_VALUE;
        const char *hp = vmmem_spec_get(&s[i], "hugepage");
        if (hp != NULL) {
            uint64_t v;
            if (ref_parse_size(hp, &v) < 0 || v == 0 || (v & (v - 1)) != 0)
                return VMMEM_EBAD_VALUE;
        }
        if (hp != NULL || vmmem_spec_has(&s[i], "hugetlb"))
            return 1;
    }
    return 0;
}

static bool is_read_only(const struct vmmem_region_spec *s)
{
    const char *prot = vmmem_spec_get(s, "prot");
    return prot != NULL && strcmp(prot, "r") == 0;
}

static void check_map(const char *text, const struct vmmem_region_spec *s, size_t n,
                      uint64_t page)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].size > MAX_MAP_BYTES)
            return;
        total += s[i].size;
    }
    if (n > MAX_MAP_REGIONS || total > MAX_MAP_BYTES)
        return;
    struct vmmem_map_options o = {.struct_size = sizeof o,
                                  .flags = page ? VMMEM_MAP_DIRTY_TRACKING : 0,
                                  .dirty_page_size = page};
    vmmem_map *m = (vmmem_map *)(uintptr_t)1;
    int rc = vmmem_map_from_config(&m, g_reg, text, &o);
    int want = ref_map(s, n);
    if (want != 1)
        FZ_CHECK(rc == want, "map_from_config(\"%s\") = %s, want %s", text, vmmem_err_name(rc),
                 vmmem_err_name(want));
    if (rc < 0) {
        FZ_CHECK(m == (vmmem_map *)(uintptr_t)1, "failed map_from_config touched *out");
        FZ_CHECK(vmmem_last_error()->code == rc, "last_error %d != rc %d",
                 vmmem_last_error()->code, rc);
        return;
    }
    FZ_CHECK(vmmem_map_num_regions(m) == n, "%zu regions, want %zu", vmmem_map_num_regions(m), n);
    FZ_CHECK(vmmem_map_dirty_tracking(m) == (page != 0), "tracking switch");
    uint64_t last = 0;
    for (size_t k = 0; k < n; k++) {
        struct vmmem_region_info info;
        vmmem_region_get_info(vmmem_map_region(m, k), &info);
        FZ_CHECK(k == 0 || info.start > last, "regions not sorted at %zu", k);
        size_t i = 0;
        while (i < n && s[i].addr != info.start)
            i++;
        FZ_CHECK(i < n && s[i].size == info.size && info.last == info.start + (info.size - 1),
                 "region %zu [0x%llx +0x%llx] is not one of the specs", k,
                 (unsigned long long)info.start, (unsigned long long)info.size);
        FZ_CHECK(info.prot == (is_read_only(&s[i]) ? VMMEM_PROT_READ : VMMEM_PROT_RW),
                 "region %zu prot %d", k, info.prot);
        last = info.last;
        uint8_t b = 0xa5;
        FZ_CHECK(vmmem_read(m, info.start, &b, 1) == 1 && b == 0, "read first byte");
        FZ_CHECK(vmmem_read(m, info.last, &b, 1) == 1 && b == 0, "read last byte");
        int64_t w = vmmem_write(m, info.last, &b, 1);
        FZ_CHECK(w == (is_read_only(&s[i]) ? VMMEM_EREAD_ONLY : 1), "write last byte: %lld",
                 (long long)w);
        if (page != 0)
            FZ_CHECK(vmmem_map_is_dirty(m, info.last) == !is_read_only(&s[i]), "dirty mark");
    }
    FZ_CHECK(vmmem_map_last_addr(m) == last, "last_addr");
    vmmem_map_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_TEXT)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text); /* stop at an embedded NUL, as C callers would */

    check_parse_size(text);

    vmmem_config *cfg = (vmmem_config *)(uintptr_t)1;
    int rc = vmmem_config_parse(text, &cfg);
    if (rc < 0) {
        const struct vmmem_error *e = vmmem_last_error();
        FZ_CHECK(cfg == (vmmem_config *)(uintptr_t)1, "failed parse touched *out");
        FZ_CHECK(e->code == rc, "last_error code %d != rc %d", e->code, rc);
        FZ_CHECK(e->message[0] != '\0', "empty error message");
        switch (rc) {
        case VMMEM_ENO_REGIONS:
        case -ENOMEM:
            break;
        case VMMEM_ESYNTAX:
        case VMMEM_EBAD_NUMBER:
        case VMMEM_EBAD_VALUE:
        case VMMEM_EMISSING_KEY:
        case VMMEM_EDUPLICATE_KEY:
        case VMMEM_EZERO_SIZE:
        case VMMEM_EOVERFLOW:
            FZ_CHECK(e->column >= 1 && (size_t)e->column <= len + 1,
                     "column %d outside the text (length %zu) for %s", e->column, len,
                     vmmem_err_name(rc));
            break;
        default:
            FZ_CHECK(0, "undocumented parse error %s (%d)", vmmem_err_name(rc), rc);
        }
        free(text);
        return 0;
    }
    size_t n = vmmem_config_count(cfg);
    const struct vmmem_region_spec *s = vmmem_config_specs(cfg);
    FZ_CHECK(n >= 1 && s != NULL, "successful parse with %zu regions", n);
    for (size_t i = 0; i < n; i++) {
        FZ_CHECK(name_ok(s[i].provider), "provider name '%s'", s[i].provider);
        FZ_CHECK(s[i].size != 0 && s[i].size - 1 <= UINT64_MAX - s[i].addr,
                 "region %zu: addr 0x%llx size 0x%llx", i, (unsigned long long)s[i].addr,
                 (unsigned long long)s[i].size);
        FZ_CHECK(s[i].host == NULL, "host pointer from a config string");
        for (size_t j = 0; j < s[i].n_options; j++) {
            const struct vmmem_option *o = &s[i].options[j];
            FZ_CHECK(name_ok(o->key) && o->value != NULL, "option key '%s'", o->key);
            FZ_CHECK(strcmp(o->key, "addr") != 0 && strcmp(o->key, "size") != 0,
                     "addr/size among the options");
            for (size_t k = 0; k < j; k++)
                FZ_CHECK(strcmp(s[i].options[k].key, o->key) != 0, "duplicate key kept");
        }
    }

    /* Round trip. */
    struct sbuf b = {malloc(4 * MAX_TEXT + 64 * n + 64), 0, 4 * MAX_TEXT + 64 * n + 64};
    FZ_CHECK(b.p != NULL, "out of memory");
    FZ_CHECK(print_config(s, n, &b), "printed config does not fit");
    vmmem_config *again = NULL;
    rc = vmmem_config_parse(b.p, &again);
    FZ_CHECK(rc == 0, "re-parsing the printed config \"%s\" (from \"%s\") failed: %s", b.p, text,
             vmmem_err_name(rc));
    FZ_CHECK(vmmem_config_count(again) == n && same_specs(s, vmmem_config_specs(again), n),
             "round trip changed the specs: \"%s\" -> \"%s\"", text, b.p);
    vmmem_config_free(again);

    /* Validation against a registry with only "mmap". */
    rc = vmmem_config_validate(cfg, g_reg);
    int want = ref_validate(s, n);
    FZ_CHECK(rc == want, "validate(\"%s\") = %s, reference %s", text, vmmem_err_name(rc),
             vmmem_err_name(want));
    if (rc < 0) {
        const struct vmmem_error *e = vmmem_last_error();
        FZ_CHECK(e->code == rc, "last_error code");
        FZ_CHECK(e->column == -1 || (e->column >= 1 && (size_t)e->column <= len + 1),
                 "validate column %d outside the text", e->column);
    } else {
        /* The last input byte picks a dirty page size for the map (or
         * none: tracking off). */
        uint64_t page = (size > 1 && (data[size - 1] & 1)) ? (1ull << (data[size - 1] % 16)) : 0;
        check_map(text, s, n, page);
    }
    free(b.p);
    vmmem_config_free(cfg);
    free(text);
    return 0;
}

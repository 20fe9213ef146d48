/*
 * Config strings: vmmem_parse_size, vmmem_config_parse (syntax, numbers,
 * columns), vmmem_config_validate and vmmem_map_from_config against a
 * registry holding the test plugin good.so ("test-heap", "test-counted").
 *
 * Column rule checked here (config.h: "1-based column of the offending
 * text"): the first character of the key for key errors, of the value for
 * number/value errors (size=0, a size that makes addr + size wrap), of the
 * region (its provider name) for errors about a whole region (missing ':',
 * empty region, missing addr/size/required key, unknown provider, overlap
 * with an earlier region).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Layout shared with tests/plugins/good.c (reached through provider->user). */
#define VT_COUNTS_MAGIC 0x76746370u
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

static vmmem_registry *g_reg;

static int suite_init(void)
{
    if (vmmem_registry_new(&g_reg) != 0)
        return -1;
    if (vmmem_registry_load(g_reg, vt_test_plugin("good.so")) != 0) {
        fprintf(stdout, "\n    loading good.so: %s\n", vmmem_last_message());
        vmmem_registry_free(g_reg);
        g_reg = NULL;
        return -1;
    }
    return 0;
}

static int suite_cleanup(void)
{
    vmmem_registry_free(g_reg);
    g_reg = NULL;
    return 0;
}

static long count_of(const char *provider, size_t field_off)
{
    const struct vmmem_provider *p = vmmem_registry_find(g_reg, provider);
    if (p == NULL || p->user == NULL || ((struct vt_counts *)p->user)->magic != VT_COUNTS_MAGIC)
        return -1;
    long *f = (long *)((char *)p->user + field_off);
    return __atomic_load_n(f, __ATOMIC_SEQ_CST);
}
#define COUNT(provider, field) count_of((provider), offsetof(struct vt_counts, field))

/* Column (1-based) of the nth (1-based) occurrence of needle in text. */
static int col_of(const char *text, const char *needle, int nth)
{
    const char *p = text;
    for (;;) {
        const char *q = strstr(p, needle);
        if (q == NULL)
            return -100;
        if (--nth == 0)
            return (int)(q - text) + 1;
        p = q + 1;
    }
}

static void check_detail(int line, const char *text, int code, int column, const char *quote)
{
    const struct vmmem_error *e = vmmem_last_error();
    if (e->code != code || e->column != column ||
        (quote != NULL && strstr(e->message, quote) == NULL))
        fprintf(stdout,
                "\n    line %d: \"%s\": detail code %s col %d msg \"%s\"; want %s col %d quoting "
                "\"%s\"\n",
                line, text, vmmem_err_name(e->code), e->column, e->message, vmmem_err_name(code),
                column, quote ? quote : "");
    CU_ASSERT_EQUAL(e->code, code);
    CU_ASSERT_EQUAL(e->column, column);
    if (quote != NULL)
        CU_ASSERT_PTR_NOT_NULL(strstr(e->message, quote));
    /* One location format in every config message: "(region N, column C)",
     * N the 0-based region, C the detail's column. */
    if (column > 0) {
        char tail[48];
        snprintf(tail, sizeof tail, ", column %d)", column);
        const char *r = strstr(e->message, "(region ");
        const char *t = r ? strstr(r, tail) : NULL;
        bool ok = r != NULL && t != NULL && strspn(r + 8, "0123456789") == (size_t)(t - r - 8) &&
                  t > r + 8;
        if (!ok)
            fprintf(stdout, "\n    line %d: \"%s\": no '(region N%s' in \"%s\"\n", line, text,
                    tail, e->message);
        CU_ASSERT_TRUE(ok);
    }
}

/* ---- vmmem_parse_size ------------------------------------------------- */

static void expect_size(const char *text, uint64_t want)
{
    uint64_t v = 0xdeadbeef;
    int rc = vmmem_parse_size(text, &v);
    if (rc != 0 || v != want)
        fprintf(stdout, "\n    parse_size(\"%s\") = %d, %llu; want %llu\n", text, rc,
                (unsigned long long)v, (unsigned long long)want);
    VT_ASSERT_RC(rc, 0);
    CU_ASSERT_EQUAL(v, want);
}

static void expect_bad_size(const char *text)
{
    uint64_t v = 0x1234;
    int rc = vmmem_parse_size(text, &v);
    if (rc != VMMEM_EBAD_NUMBER)
        fprintf(stdout, "\n    parse_size(\"%s\")\n", text);
    VT_ASSERT_RC(rc, VMMEM_EBAD_NUMBER);
    CU_ASSERT_EQUAL(v, 0x1234); /* untouched on failure */
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_EBAD_NUMBER);
}

static void test_parse_size_ok(void)
{
    expect_size("0", 0);
    expect_size("4096", 4096);
    expect_size("0x1000", 0x1000);
    expect_size("0xfFfF", 0xffff);
    expect_size("4K", 4096);
    expect_size("4k", 4096);
    expect_size("2M", 2u << 20);
    expect_size("1G", 1u << 30);
    expect_size("3G", 3ull << 30);
    expect_size("1T", 1ull << 40);
    expect_size("0x10K", 0x10 << 10);
    expect_size("010", 10); /* decimal, not octal */
    expect_size("16777215T", (16777215ull << 40));
    expect_size("18446744073709551615", UINT64_MAX);
    expect_size("0xffffffffffffffff", UINT64_MAX);
}

static void test_parse_size_bad(void)
{
    expect_bad_size("0x10000000000000000");
    expect_bad_size("18446744073709551616");
    expect_bad_size("16777216T");
    expect_bad_size("0x1000000000000000K");
    expect_bad_size("");
    expect_bad_size("0x");
    expect_bad_size("12Q");
    expect_bad_size("-1");
    expect_bad_size("K");
    expect_bad_size("4KK");
    expect_bad_size("4K5");
    expect_bad_size("1.5G");
}

static void test_parse_size_null(void)
{
    uint64_t v = 7;
    VT_ASSERT_RC(vmmem_parse_size(NULL, &v), -EINVAL);
    CU_ASSERT_EQUAL(v, 7);
    VT_ASSERT_RC(vmmem_parse_size("4K", NULL), -EINVAL);
}

/* ---- vmmem_config_parse: good input ----------------------------------- */

static void test_parse_single(void)
{
    vmmem_config *cfg = NULL;
    VT_ASSERT_RC(vmmem_config_parse("mmap:addr=0,size=4K", &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(vmmem_config_count(cfg), 1);
    const struct vmmem_region_spec *s = vmmem_config_specs(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s[0].provider, "mmap");
    CU_ASSERT_EQUAL(s[0].addr, 0);
    CU_ASSERT_EQUAL(s[0].size, 4096);
    CU_ASSERT_EQUAL(s[0].n_options, 0);
    CU_ASSERT_PTR_NULL(s[0].host);
    vmmem_config_free(cfg);
}

static void test_parse_order_and_options(void)
{
    vmmem_config *cfg = NULL;
    const char *text = "test-heap:size=2M,tag=x,addr=0x100000,zero,fill=0x7;mmap:addr=0,size=4G;"
                       "b:addr=8G,size=1T,k1=v1,k2";
    VT_ASSERT_RC(vmmem_config_parse(text, &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(vmmem_config_count(cfg), 3);
    const struct vmmem_region_spec *s = vmmem_config_specs(cfg);
    /* the order written, not sorted by address */
    CU_ASSERT_STRING_EQUAL(s[0].provider, "test-heap");
    CU_ASSERT_EQUAL(s[0].addr, 0x100000);
    CU_ASSERT_EQUAL(s[0].size, 2u << 20);
    CU_ASSERT_EQUAL_FATAL(s[0].n_options, 3);
    CU_ASSERT_STRING_EQUAL(s[0].options[0].key, "tag");
    CU_ASSERT_STRING_EQUAL(s[0].options[0].value, "x");
    CU_ASSERT_STRING_EQUAL(s[0].options[1].key, "zero");
    CU_ASSERT_STRING_EQUAL(s[0].options[1].value, "");
    CU_ASSERT_STRING_EQUAL(s[0].options[2].key, "fill");
    CU_ASSERT_STRING_EQUAL(s[0].options[2].value, "0x7");
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(&s[0], "fill"), "0x7");
    CU_ASSERT_TRUE(vmmem_spec_has(&s[0], "zero"));
    CU_ASSERT_FALSE(vmmem_spec_has(&s[0], "addr"));
    CU_ASSERT_STRING_EQUAL(s[1].provider, "mmap");
    CU_ASSERT_EQUAL(s[1].addr, 0);
    CU_ASSERT_EQUAL(s[1].size, 4ull << 30);
    CU_ASSERT_EQUAL(s[1].n_options, 0);
    CU_ASSERT_STRING_EQUAL(s[2].provider, "b");
    CU_ASSERT_EQUAL(s[2].addr, 8ull << 30);
    CU_ASSERT_EQUAL(s[2].size, 1ull << 40);
    CU_ASSERT_EQUAL_FATAL(s[2].n_options, 2);
    CU_ASSERT_STRING_EQUAL(s[2].options[0].key, "k1");
    CU_ASSERT_STRING_EQUAL(s[2].options[0].value, "v1");
    CU_ASSERT_STRING_EQUAL(s[2].options[1].key, "k2");
    CU_ASSERT_STRING_EQUAL(s[2].options[1].value, "");
    vmmem_config_free(cfg);
}

static void test_parse_blanks_and_trailing_semicolon(void)
{
    vmmem_config *cfg = NULL;
    VT_ASSERT_RC(vmmem_config_parse("  test-heap : addr = 4K , size = 1M , tag = hello , zero ;"
                                    " mmap:addr=8M,size=4K ; ",
                                    &cfg),
                 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(vmmem_config_count(cfg), 2);
    const struct vmmem_region_spec *s = vmmem_config_specs(cfg);
    CU_ASSERT_STRING_EQUAL(s[0].provider, "test-heap");
    CU_ASSERT_EQUAL(s[0].addr, 4096);
    CU_ASSERT_EQUAL(s[0].size, 1u << 20);
    CU_ASSERT_EQUAL_FATAL(s[0].n_options, 2);
    CU_ASSERT_STRING_EQUAL(s[0].options[0].key, "tag");
    CU_ASSERT_STRING_EQUAL(s[0].options[0].value, "hello");
    CU_ASSERT_STRING_EQUAL(s[0].options[1].key, "zero");
    CU_ASSERT_STRING_EQUAL(s[0].options[1].value, "");
    CU_ASSERT_STRING_EQUAL(s[1].provider, "mmap");
    CU_ASSERT_EQUAL(s[1].addr, 8u << 20);
    vmmem_config_free(cfg);

    cfg = NULL;
    VT_ASSERT_RC(vmmem_config_parse("mmap:addr=0,size=4K;", &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(vmmem_config_count(cfg), 1);
    vmmem_config_free(cfg);
}

static void test_parse_escapes(void)
{
    vmmem_config *cfg = NULL;
    VT_ASSERT_RC(vmmem_config_parse("x:addr=0,size=4K,path=/tmp/a\\,b\\;c,sl=a\\\\b,"
                                    "sp=a\\ b,tail=ab\\ ,k=v",
                                    &cfg),
                 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL_FATAL(vmmem_config_count(cfg), 1);
    const struct vmmem_region_spec *s = vmmem_config_specs(cfg);
    CU_ASSERT_EQUAL_FATAL(s[0].n_options, 5);
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(&s[0], "path"), "/tmp/a,b;c");
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(&s[0], "sl"), "a\\b");
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(&s[0], "sp"), "a b");
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(&s[0], "tail"), "ab "); /* escaped blank kept */
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(&s[0], "k"), "v");
    vmmem_config_free(cfg);
}

static void test_parse_last_byte(void)
{
    /* a region may end at the last guest byte: start + size - 1 must not wrap */
    vmmem_config *cfg = NULL;
    VT_ASSERT_RC(vmmem_config_parse("mmap:addr=0xFFFFFFFFFFFFF000,size=4K", &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(vmmem_config_specs(cfg)[0].addr, 0xFFFFFFFFFFFFF000ull);
    CU_ASSERT_EQUAL(vmmem_config_specs(cfg)[0].size, 4096);
    vmmem_config_free(cfg);
}

/* ---- vmmem_config_parse: errors --------------------------------------- */

static void expect_parse_error(int line, const char *text, int code, int column, const char *quote)
{
    vmmem_config *sentinel = (vmmem_config *)&g_reg;
    vmmem_config *cfg = sentinel;
    int rc = vmmem_config_parse(text, &cfg);
    if (rc != code)
        fprintf(stdout, "\n    line %d: parse(\"%s\")\n", line, text);
    VT_ASSERT_RC(rc, code);
    CU_ASSERT_PTR_EQUAL(cfg, sentinel);
    if (rc == 0 && cfg != sentinel) {
        vmmem_config_free(cfg);
        return;
    }
    check_detail(line, text, code, column, quote);
}
#define PARSE_ERR(text, code, column, quote)                                                       \
    expect_parse_error(__LINE__, (text), (code), (column), (quote))

static void test_err_missing_colon(void)
{
    /* the column is that of what stands where ':' was expected */
    PARSE_ERR("mmap addr=0,size=4K", VMMEM_ESYNTAX, 6, "mmap addr");
    const char *t = "mmap:addr=0,size=4K;mmap addr=8K,size=4K";
    PARSE_ERR(t, VMMEM_ESYNTAX, col_of(t, "addr=8K", 1), "mmap addr");
    t = "mmap:addr=0,size=4K;  other addr=8K";
    PARSE_ERR(t, VMMEM_ESYNTAX, col_of(t, "addr=8K", 1), "other addr");
    t = "mmap:addr=0,size=4K;other";
    PARSE_ERR(t, VMMEM_ESYNTAX, (int)strlen(t) + 1, "other");
}

static void test_err_empty_region(void)
{
    const char *t = "mmap:addr=0,size=4K;;mmap:addr=8K,size=4K";
    PARSE_ERR(t, VMMEM_ESYNTAX, 21, NULL);
    PARSE_ERR(";mmap:addr=0,size=4K", VMMEM_ESYNTAX, 1, NULL);
}

static void test_err_empty_provider(void)
{
    PARSE_ERR(":addr=0,size=4K", VMMEM_ESYNTAX, 1, NULL);
}

static void test_err_empty_key(void)
{
    PARSE_ERR("mmap:addr=0,,size=4K", VMMEM_ESYNTAX, 13, NULL);
    PARSE_ERR("mmap:addr=0,=4,size=4K", VMMEM_ESYNTAX, 13, "=4");
}

static void test_err_missing_addr_size(void)
{
    PARSE_ERR("mmap:size=4K", VMMEM_EMISSING_KEY, 1, "addr");
    PARSE_ERR("mmap:addr=4K", VMMEM_EMISSING_KEY, 1, "size");
    const char *t = "mmap:addr=0,size=4K; mmap:addr=8K";
    PARSE_ERR(t, VMMEM_EMISSING_KEY, 22, "size");
}

static void test_err_duplicate_key(void)
{
    const char *t = "mmap:addr=0,size=4K,addr=8K";
    PARSE_ERR(t, VMMEM_EDUPLICATE_KEY, 21, "addr");
    t = "mmap:addr=0,size=4K,tag=a, tag=b";
    PARSE_ERR(t, VMMEM_EDUPLICATE_KEY, col_of(t, "tag", 2), "tag");
    t = "mmap:addr=0,size=4K,zero,zero";
    PARSE_ERR(t, VMMEM_EDUPLICATE_KEY, col_of(t, "zero", 2), "zero");
}

static void test_err_bad_number(void)
{
    PARSE_ERR("mmap:addr=0,size=4Q", VMMEM_EBAD_NUMBER, 18, "4Q");
    PARSE_ERR("mmap:addr=zz,size=4K", VMMEM_EBAD_NUMBER, 11, "zz");
    PARSE_ERR("mmap:addr=0x,size=4K", VMMEM_EBAD_NUMBER, 11, "0x");
    PARSE_ERR("mmap:addr=0,size=-1", VMMEM_EBAD_NUMBER, 18, "-1");
    PARSE_ERR("mmap:addr=0,size=16777216T", VMMEM_EBAD_NUMBER, 18, "16777216T");
    const char *t = "mmap:addr=0,size=4K;mmap:addr=  0x1000000000000000000 ,size=4K";
    PARSE_ERR(t, VMMEM_EBAD_NUMBER, col_of(t, "0x1", 1), "0x1000000000000000000");
}

static void test_err_zero_size(void)
{
    PARSE_ERR("mmap:addr=0,size=0", VMMEM_EZERO_SIZE, 18, NULL);
    const char *t = "mmap:addr=0,size=4K;mmap:size=0x0,addr=8K";
    PARSE_ERR(t, VMMEM_EZERO_SIZE, col_of(t, "0x0", 1), "0x0");
}

static void test_err_overflow(void)
{
    const char *t = "mmap:addr=0xFFFFFFFFFFFFF000,size=8K";
    PARSE_ERR(t, VMMEM_EOVERFLOW, col_of(t, "8K", 1), "8K");
    t = "mmap:addr=0,size=4K;mmap:addr=0xFFFFFFFFFFFFFFFF,size=2";
    PARSE_ERR(t, VMMEM_EOVERFLOW, col_of(t, "size=2", 1) + 5, NULL);
}

static void test_err_no_regions(void)
{
    vmmem_config *cfg = (vmmem_config *)&g_reg;
    VT_ASSERT_RC(vmmem_config_parse("", &cfg), VMMEM_ENO_REGIONS);
    CU_ASSERT_PTR_EQUAL(cfg, (vmmem_config *)&g_reg);
    VT_ASSERT_RC(vmmem_config_parse("   ", &cfg), VMMEM_ENO_REGIONS);
    CU_ASSERT_PTR_EQUAL(cfg, (vmmem_config *)&g_reg);
    CU_ASSERT_EQUAL(vmmem_last_error()->code, VMMEM_ENO_REGIONS);
}

static void test_err_null(void)
{
    vmmem_config *cfg = NULL;
    VT_ASSERT_RC(vmmem_config_parse(NULL, &cfg), -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    VT_ASSERT_RC(vmmem_config_parse("mmap:addr=0,size=4K", NULL), -EINVAL);
}

/* ---- validation against a registry ------------------------------------ */

/* Parse must succeed; validate and map_from_config must both fail with
 * code at column, quoting quote, changing nothing. */
static void expect_validate_error(int line, const char *text, int code, int column,
                                  const char *quote)
{
    vmmem_config *cfg = NULL;
    int rc = vmmem_config_parse(text, &cfg);
    if (rc != 0)
        fprintf(stdout, "\n    line %d: parse(\"%s\")\n", line, text);
    VT_ASSERT_RC(rc, 0);
    if (rc != 0 || cfg == NULL)
        return;
    long heap_maps = COUNT("test-heap", map_calls);
    long counted_maps = COUNT("test-counted", map_calls);

    rc = vmmem_config_validate(cfg, g_reg);
    if (rc != code)
        fprintf(stdout, "\n    line %d: validate(\"%s\")\n", line, text);
    VT_ASSERT_RC(rc, code);
    check_detail(line, text, code, column, quote);
    vmmem_config_free(cfg);

    vmmem_map *sentinel = (vmmem_map *)&g_reg;
    vmmem_map *m = sentinel;
    rc = vmmem_map_from_config(&m, g_reg, text, NULL);
    if (rc != code)
        fprintf(stdout, "\n    line %d: map_from_config(\"%s\")\n", line, text);
    VT_ASSERT_RC(rc, code);
    CU_ASSERT_PTR_EQUAL(m, sentinel);
    if (rc == 0 && m != sentinel)
        vmmem_map_unref(m);
    else
        check_detail(line, text, code, column, quote);
    /* validation failures never reach a provider's map hook */
    CU_ASSERT_EQUAL(COUNT("test-heap", map_calls), heap_maps);
    CU_ASSERT_EQUAL(COUNT("test-counted", map_calls), counted_maps);
    CU_ASSERT_EQUAL(COUNT("test-heap", maps), COUNT("test-heap", unmaps));
    CU_ASSERT_EQUAL(COUNT("test-heap", errors), 0);
}
#define VALIDATE_ERR(text, code, column, quote)                                                    \
    expect_validate_error(__LINE__, (text), (code), (column), (quote))

static void test_validate_ok(void)
{
    vmmem_config *cfg = NULL;
    const char *t = "test-heap:addr=4K,size=4K,tag=a,zero;test-counted:addr=0,size=4K";
    VT_ASSERT_RC(vmmem_config_parse(t, &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    long maps = COUNT("test-heap", map_calls);
    VT_ASSERT_RC(vmmem_config_validate(cfg, g_reg), 0);
    CU_ASSERT_EQUAL(COUNT("test-heap", map_calls), maps); /* validation maps nothing */
    vmmem_config_free(cfg);
}

static void test_validate_unknown_provider(void)
{
    const char *t = "test-heap:addr=0,size=4K,tag=a;nosuch:addr=8K,size=4K";
    VALIDATE_ERR(t, VMMEM_ENO_PROVIDER, col_of(t, "nosuch", 1), "nosuch");
    t = "  nosuch : addr=0,size=4K";
    VALIDATE_ERR(t, VMMEM_ENO_PROVIDER, 3, "nosuch");
}

static void test_validate_unknown_key(void)
{
    const char *t = "test-heap:addr=0,size=4K,tag=a,bogus=1";
    VALIDATE_ERR(t, VMMEM_EUNKNOWN_KEY, col_of(t, "bogus", 1), "bogus");
    t = "test-counted:addr=0,size=4K;test-counted:addr=4K,size=4K,  bogus";
    VALIDATE_ERR(t, VMMEM_EUNKNOWN_KEY, col_of(t, "bogus", 1), "bogus");
    /* a key of another provider is unknown here */
    t = "test-counted:addr=0,size=4K,tag=x";
    VALIDATE_ERR(t, VMMEM_EUNKNOWN_KEY, col_of(t, "tag", 1), "tag");
}

static void test_validate_missing_required(void)
{
    const char *t = "test-counted:addr=0,size=4K;test-heap:addr=8K,size=4K,zero";
    VALIDATE_ERR(t, VMMEM_EMISSING_KEY, col_of(t, "test-heap", 1), "tag");
}

static void test_validate_bad_value(void)
{
    const char *t = "test-heap:addr=0,size=4K,tag=a,zero=1";
    VALIDATE_ERR(t, VMMEM_EBAD_VALUE, col_of(t, "zero", 1), "zero");
    t = "test-heap:addr=0,size=4K,tag";
    VALIDATE_ERR(t, VMMEM_EBAD_VALUE, col_of(t, "tag", 1), "tag");
    t = "test-heap:addr=0,size=4K,tag=x,fill";
    VALIDATE_ERR(t, VMMEM_EBAD_VALUE, col_of(t, "fill", 1), "fill");
}

static void test_validate_overlap(void)
{
    const char *t = "test-heap:addr=0,size=8K,tag=a;test-counted:addr=4K,size=4K";
    VALIDATE_ERR(t, VMMEM_EOVERLAP, col_of(t, "test-counted", 1), "test-counted");
    /* the later region in the text lies lower in guest memory */
    t = "test-heap:addr=8K,size=8K,tag=a;test-counted:addr=0,size=12K";
    VALIDATE_ERR(t, VMMEM_EOVERLAP, col_of(t, "test-counted", 1), "test-counted");
    /* same start */
    t = "test-counted:addr=0,size=4K;test-counted:addr=0,size=4K";
    VALIDATE_ERR(t, VMMEM_EOVERLAP, col_of(t, "test-counted", 2), "test-counted");
}

static void test_validate_default_registry(void)
{
    /* NULL = the default registry, which finds the staged "mmap" plugin */
    vmmem_config *cfg = NULL;
    VT_ASSERT_RC(vmmem_config_parse("mmap:addr=0,size=4K", &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    VT_ASSERT_RC(vmmem_config_validate(cfg, NULL), 0);
    vmmem_config_free(cfg);
    cfg = NULL;
    const char *t = "mmap:addr=0,size=4K,bogus";
    VT_ASSERT_RC(vmmem_config_parse(t, &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    VT_ASSERT_RC(vmmem_config_validate(cfg, NULL), VMMEM_EUNKNOWN_KEY);
    check_detail(__LINE__, t, VMMEM_EUNKNOWN_KEY, col_of(t, "bogus", 1), "bogus");
    vmmem_config_free(cfg);
    /* test-heap lives only in the private registry */
    cfg = NULL;
    VT_ASSERT_RC(vmmem_config_parse("test-heap:addr=0,size=4K,tag=a", &cfg), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    VT_ASSERT_RC(vmmem_config_validate(cfg, NULL), VMMEM_ENO_PROVIDER);
    vmmem_config_free(cfg);
}

static void test_map_from_config_errors_untouched(void)
{
    /* parse errors through map_from_config: same code and column, *out kept */
    static const struct {
        const char *text;
        int code;
        int column;
    } cases[] = {
        {"test-heap addr=0,size=4K", VMMEM_ESYNTAX, 11},
        {"test-counted:addr=0,size=4Q", VMMEM_EBAD_NUMBER, 26},
        {"test-counted:size=4K", VMMEM_EMISSING_KEY, 1},
        {"test-counted:addr=0,size=4K,addr=1", VMMEM_EDUPLICATE_KEY, 29},
        {"", VMMEM_ENO_REGIONS, -2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vmmem_map *sentinel = (vmmem_map *)&g_reg;
        vmmem_map *m = sentinel;
        int rc = vmmem_map_from_config(&m, g_reg, cases[i].text, NULL);
        if (rc != cases[i].code)
            fprintf(stdout, "\n    map_from_config(\"%s\")\n", cases[i].text);
        VT_ASSERT_RC(rc, cases[i].code);
        CU_ASSERT_PTR_EQUAL(m, sentinel);
        if (rc == 0 && m != sentinel)
            vmmem_map_unref(m);
        if (cases[i].column != -2)
            CU_ASSERT_EQUAL(vmmem_last_error()->column, cases[i].column);
    }
    vmmem_map *m = (vmmem_map *)&g_reg;
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, NULL, NULL), -EINVAL);
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)&g_reg);
    VT_ASSERT_RC(vmmem_map_from_config(NULL, g_reg, "test-counted:addr=0,size=4K", NULL), -EINVAL);
}

static void test_map_from_config_ok(void)
{
    long maps = COUNT("test-heap", maps), unmaps = COUNT("test-heap", unmaps);
    long cmaps = COUNT("test-counted", maps), cunmaps = COUNT("test-counted", unmaps);
    vmmem_map *m = NULL;
    const char *t = "test-heap : addr=0x10000 , size=8K , tag=my\\,tag , fill=0x42 ;"
                    "test-counted:addr=0,size=4K;";
    VT_ASSERT_RC(vmmem_map_from_config(&m, g_reg, t, NULL), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(vmmem_map_num_regions(m), 2);
    CU_ASSERT_EQUAL(COUNT("test-heap", maps), maps + 1);
    CU_ASSERT_EQUAL(COUNT("test-counted", maps), cmaps + 1);

    struct vmmem_region_info info;
    const vmmem_region *r = vmmem_map_region(m, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    vmmem_region_get_info(r, &info);
    CU_ASSERT_EQUAL(info.start, 0);
    CU_ASSERT_STRING_EQUAL(info.provider, "test-counted");
    r = vmmem_map_region(m, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    vmmem_region_get_info(r, &info);
    CU_ASSERT_EQUAL(info.start, 0x10000);
    CU_ASSERT_EQUAL(info.size, 8192);
    CU_ASSERT_EQUAL(info.last, 0x10000 + 8191);
    CU_ASSERT_STRING_EQUAL(info.provider, "test-heap");
    CU_ASSERT_PTR_NOT_NULL(info.host);
    CU_ASSERT_PTR_NOT_NULL_FATAL(info.spec);
    CU_ASSERT_EQUAL(info.spec->addr, 0x10000);
    CU_ASSERT_STRING_EQUAL(vmmem_spec_get(info.spec, "tag"), "my,tag");

    uint8_t b[4] = {0};
    VT_ASSERT_RC(vmmem_read_slice(m, 0x10000 + 8190, b, 2), 0);
    CU_ASSERT_EQUAL(b[0], 0x42);
    CU_ASSERT_EQUAL(b[1], 0x42);
    VT_ASSERT_RC(vmmem_read_slice(m, 4092, b, 4), 0);
    CU_ASSERT_EQUAL(b[0] | b[1] | b[2] | b[3], 0);
    vmmem_map_unref(m);
    CU_ASSERT_EQUAL(COUNT("test-heap", unmaps), unmaps + 1);
    CU_ASSERT_EQUAL(COUNT("test-counted", unmaps), cunmaps + 1);
    CU_ASSERT_EQUAL(COUNT("test-heap", errors), 0);
    CU_ASSERT_EQUAL(COUNT("test-counted", errors), 0);
}

static void test_map_from_config_provider_error(void)
{
    /* the provider's own error (fill out of range) comes back unchanged */
    vmmem_map *m = (vmmem_map *)&g_reg;
    long maps = COUNT("test-heap", maps), unmaps = COUNT("test-heap", unmaps);
    int rc = vmmem_map_from_config(
        &m, g_reg, "test-counted:addr=0,size=4K;test-heap:addr=4K,size=4K,tag=a,fill=256", NULL);
    VT_ASSERT_RC(rc, VMMEM_EBAD_VALUE);
    CU_ASSERT_PTR_EQUAL(m, (vmmem_map *)&g_reg);
    CU_ASSERT_PTR_NOT_NULL(strstr(vmmem_last_message(), "256"));
    CU_ASSERT_EQUAL(COUNT("test-heap", maps) - maps, COUNT("test-heap", unmaps) - unmaps);
    CU_ASSERT_EQUAL(COUNT("test-counted", maps), COUNT("test-counted", unmaps));
}

/* The run-time version is the header's. */
static void test_version(void)
{
    CU_ASSERT_STRING_EQUAL(vmmem_version(), VMMEM_VERSION_STRING);
    CU_ASSERT_EQUAL(vmmem_version_number(), VMMEM_VERSION_NUMBER);
    CU_ASSERT_EQUAL(vmmem_version_number() >> 16, VMMEM_VERSION_MAJOR);
    CU_ASSERT_EQUAL(vmmem_abi_version(), VMMEM_VERSION_MAJOR);
    CU_ASSERT_EQUAL(vmmem_provider_abi_version(), VMMEM_PROVIDER_ABI_VERSION);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", VMMEM_VERSION_MAJOR, VMMEM_VERSION_MINOR,
             VMMEM_VERSION_PATCH);
    CU_ASSERT_STRING_EQUAL(vmmem_version(), want);
}

static const struct vt_test size_tests[] = {
    {"run-time version", test_version},
    {"parse_size accepts", test_parse_size_ok},
    {"parse_size rejects", test_parse_size_bad},
    {"parse_size NULL", test_parse_size_null},
    {NULL, NULL},
};

static const struct vt_test parse_tests[] = {
    {"single region", test_parse_single},
    {"order and options", test_parse_order_and_options},
    {"blanks and trailing ;", test_parse_blanks_and_trailing_semicolon},
    {"escapes", test_parse_escapes},
    {"region ending at 2^64-1", test_parse_last_byte},
    {"missing ':'", test_err_missing_colon},
    {"empty region", test_err_empty_region},
    {"empty provider", test_err_empty_provider},
    {"empty key", test_err_empty_key},
    {"missing addr/size", test_err_missing_addr_size},
    {"duplicate key", test_err_duplicate_key},
    {"bad number", test_err_bad_number},
    {"zero size", test_err_zero_size},
    {"addr+size overflow", test_err_overflow},
    {"no regions", test_err_no_regions},
    {"NULL arguments", test_err_null},
    {NULL, NULL},
};

static const struct vt_test validate_tests[] = {
    {"valid config", test_validate_ok},
    {"unknown provider", test_validate_unknown_provider},
    {"unknown key", test_validate_unknown_key},
    {"missing required key", test_validate_missing_required},
    {"flag/value mismatch", test_validate_bad_value},
    {"overlap", test_validate_overlap},
    {"default registry", test_validate_default_registry},
    {"map_from_config errors keep *out", test_map_from_config_errors_untouched},
    {"map_from_config builds", test_map_from_config_ok},
    {"map_from_config provider error", test_map_from_config_provider_error},
    {NULL, NULL},
};

static const struct vt_suite size_suite = {"parse_size", NULL, NULL, size_tests};
static const struct vt_suite parse_suite = {"config_parse", NULL, NULL, parse_tests};
static const struct vt_suite validate_suite = {"config_validate", suite_init, suite_cleanup,
                                               validate_tests};

int main(void)
{
    static const struct vt_suite *const suites[] = {&size_suite, &parse_suite, &validate_suite,
                                                    NULL};
    return vt_main(suites);
}

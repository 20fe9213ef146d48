/*
 * vmmem-bench: the scenarios of ../shared/bench/rust-anchor (SCENARIOS.md) run
 * through libvmmem's public API, with the same memory layout, address tables,
 * fill, checksums and output lines, so that its check= values equal the Rust
 * harness's and its timings can be set side by side with it (bench/compare.sh).
 *
 * Usage: vmmem-bench <scenario|all|extra|list> [iters|-] [reps]
 *   all    the Rust set, in the Rust order (SCENARIOS.md part C)
 *   extra  scenarios beyond the Rust set (issue 8): lookup against the number
 *          of regions, write_obj with 1 and 2 threads, dirty-marking overhead,
 *          fd I/O against pread/pwrite + memcpy, memory overhead, hot-plug
 *          snapshot acquire/release, and Xen grant map-on-access with and
 *          without the cache (only under the simulator, tests/xensim)
 *
 * Output: one line per measured scenario on stdout,
 *   <name> ns_per_op=%.3f MB_s=%.2f iters=%llu check=0x%016llx [extra]
 * ns_per_op and MB_s come from the fastest of reps (default 5) timed
 * repetitions; MB = 1e6 bytes.  Comment lines go to stderr.
 *
 * Differences from the Rust harness, all deliberate:
 *  - Guest memory comes from config strings through the "mmap" provider
 *    (MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, no madvise), so the plugin
 *    must be found through VMMEM_PLUGIN_PATH.
 *  - The map's region table is an inline sorted array of slots (start, last,
 *    host, ...), not an array of pointers to region objects.
 *  - dirty_scan is a harvest: vmmem_map_harvest() collects and clears the
 *    bitmaps, then the run iterator counts the dirty pages.  The public API
 *    has no non-destructive word-level scan, so before every timed scan the
 *    dirty set is restored with vmmem_map_mark_dirty() (untimed).  The
 *    per-page non-destructive test (vmmem_map_is_dirty, one lookup per page)
 *    is printed as the extra line dirty_scan_is_dirty.
 *  - dirty_get_and_reset reuses one harvest buffer (vmmem_harvest_new once);
 *    Rust allocates and frees a Vec per region per harvest.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

#include "xensim/xensim.h" /* the test simulator's control table (xen_grant) */

#define MIB (1ULL << 20)
#define REGION_SIZE (64 * MIB)
#define TOTAL (2 * REGION_SIZE)
#define TABLE_LEN (1u << 20)
#define TABLE_MASK (TABLE_LEN - 1)
#define SEED 0x9E3779B97F4A7C15ULL
#define FILL_MUL 0x9E3779B97F4A7C15ULL
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x00000100000001b3ULL
#define DEFAULT_REPS 5
#define DIRTY_PAGE 4096

#define TWO_REGIONS "mmap:addr=0,size=64M,noreserve;mmap:addr=64M,size=64M,noreserve"

struct cfg {
    uint64_t iters; /* 0 = scenario default */
    int reps;
};

/* ---- harness helpers (SCENARIOS.md part A) ---- */

static inline void escape(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* A result the compiler must compute, kept in a register (escape(&acc)
 * would put an accumulator in memory: a load and a store per op that the
 * limit program, which escapes the value, does not make). */
static inline void escape_val(uint64_t v)
{
    __asm__ volatile("" : : "r"(v) : "memory");
}

/* v, unknown to the compiler, in a register (not in memory: no store and
 * reload per op). */
static inline uint64_t opaque(uint64_t v)
{
    __asm__ volatile("" : "+r"(v) : : "memory");
    return v;
}

static uint64_t iters_of(const struct cfg *c, uint64_t def)
{
    return c->iters ? c->iters : def;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "vmmem-bench: %s: %s (%s)\n", what, vmmem_strerror(rc), vmmem_last_message());
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "vmmem-bench: out of memory\n");
        exit(1);
    }
    return p;
}

static uint64_t xs_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static uint64_t *addr_table(uint64_t span, uint64_t align)
{
    uint64_t *t = xmalloc(TABLE_LEN * sizeof *t), s = SEED, slots = span / align;
    for (uint32_t k = 0; k < TABLE_LEN; k++)
        t[k] = (xs_next(&s) % slots) * align;
    return t;
}

static uint8_t *src_buf(size_t len)
{
    uint8_t *b = xmalloc(len);
    for (size_t j = 0; j < len; j++)
        b[j] = (uint8_t)((uint8_t)j * 31 + 7);
    return b;
}

static void fill_chunk(uint8_t *buf, size_t len, uint64_t base)
{
    for (size_t k = 0; k < len; k += 8) {
        uint64_t w = (base + k) * FILL_MUL;
        memcpy(buf + k, &w, 8);
    }
}

static uint64_t fnv_words(uint64_t h, const uint8_t *p, size_t len)
{
    for (size_t k = 0; k < len; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        h = (h ^ w) * FNV_PRIME;
    }
    return h;
}

/* Pre-fault and initialise all guest memory with 1 MiB write_slice calls. */
static void fill_guest(const vmmem_map *m)
{
    uint8_t *buf = xmalloc(MIB);
    for (uint64_t a = 0; a < TOTAL; a += MIB) {
        fill_chunk(buf, MIB, a);
        int rc = vmmem_write_slice(m, a, buf, MIB);
        if (rc < 0)
            die("fill", rc);
    }
    free(buf);
}

/* FNV-1a over the u64 words of [0, TOTAL), read back with 1 MiB read_slice. */
static uint64_t guest_checksum(const vmmem_map *m)
{
    uint8_t *buf = xmalloc(MIB);
    uint64_t h = FNV_OFFSET;
    for (uint64_t a = 0; a < TOTAL; a += MIB) {
        int rc = vmmem_read_slice(m, a, buf, MIB);
        if (rc < 0)
            die("checksum", rc);
        h = fnv_words(h, buf, MIB);
    }
    free(buf);
    return h;
}

static vmmem_map *new_map(const char *config, bool dirty)
{
    struct vmmem_map_options o = {sizeof o, dirty ? VMMEM_MAP_DIRTY_TRACKING : 0, DIRTY_PAGE};
    vmmem_map *m;
    int rc = vmmem_map_from_config(&m, NULL, config, &o);
    if (rc < 0)
        die(config, rc);
    return m;
}

static vmmem_map *two_regions(bool dirty)
{
    vmmem_map *m = new_map(TWO_REGIONS, dirty);
    fill_guest(m);
    return m;
}

/* Config string for n regions of size each, packed from guest address 0. */
static char *many_config(unsigned n, uint64_t size)
{
    size_t cap = (size_t)n * 64 + 1;
    char *s = xmalloc(cap), *p = s;
    for (unsigned k = 0; k < n; k++)
        p += snprintf(p, cap - (size_t)(p - s), "%smmap:addr=0x%llx,size=0x%llx,noreserve",
                      k ? ";" : "", (unsigned long long)(k * size), (unsigned long long)size);
    return s;
}

static void report(const char *name, uint64_t iters, uint64_t bytes_per_op, uint64_t best_ns,
                   const char *extra)
{
    double secs = (double)best_ns / 1e9;
    double mbs = (bytes_per_op == 0 || best_ns == 0)
                     ? 0.0
                     : (double)bytes_per_op * (double)iters / secs / 1e6;
    printf("%s ns_per_op=%.3f MB_s=%.2f iters=%llu%s%s\n", name, (double)best_ns / (double)iters,
           mbs, (unsigned long long)iters, *extra ? " " : "", extra);
    fflush(stdout);
}

static void report_check(const char *name, uint64_t iters, uint64_t bytes_per_op,
                         uint64_t best_ns, uint64_t check)
{
    char extra[64];
    snprintf(extra, sizeof extra, "check=0x%016llx", (unsigned long long)check);
    report(name, iters, bytes_per_op, best_ns, extra);
}

/* A timing and the same loop's baseline: both per op, and their ratio. */
static void report_against(const char *name, uint64_t iters, uint64_t bytes_per_op,
                           uint64_t best_ns, uint64_t base_ns, const char *base_name,
                           const char *ratio_name)
{
    char extra[128];
    snprintf(extra, sizeof extra, "%s_ns_per_op=%.3f %s=%.3f", base_name,
             (double)base_ns / (double)iters, ratio_name, (double)best_ns / (double)base_ns);
    report(name, iters, bytes_per_op, best_ns, extra);
}

#define BEST_INIT UINT64_MAX
static inline void keep_min(uint64_t *best, uint64_t t)
{
    if (t < *best)
        *best = t;
}

/* VMMEM_BENCH_CALLS=1: time the exported functions instead of the
 * header-inline fast paths of <vmmem/fast.h> (the default: what a C user
 * compiling against the headers gets). */
static bool g_calls;

/* The timed loop twice, once per value of g_calls, with calls_ a constant
 * in each: a run-time test inside the loop made the compiler keep the
 * caller's value on the stack for the call in every iteration (one store
 * per op the inline path and the limit program do not make). */
#define SPLIT(...)                                                                          \
    do {                                                                                    \
        if (g_calls) {                                                                      \
            const bool calls_ = true;                                                       \
            __VA_ARGS__                                                                     \
        } else {                                                                            \
            const bool calls_ = false;                                                      \
            __VA_ARGS__                                                                     \
        }                                                                                   \
    } while (0)

static void check_rc(int rc)
{
    if (__builtin_expect(rc < 0, 0))
        die("access", rc);
}

/* ---- the Rust set (SCENARIOS.md part C) ---- */

static void write_obj_u64(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000), best = BEST_INIT;
    vmmem_map *m = two_regions(false);
    uint64_t *t = addr_table(TOTAL, 8);
    for (int r = 0; r < c->reps; r++) {
        escape(m), escape(t);
        uint64_t t0 = now_ns();
        SPLIT(for (uint64_t i = 0; i < iters; i++) {
            uint64_t v = i; /* by value, as Rust's write_obj(i, ..): keeps i in a register */
            check_rc(calls_ ? vmmem_write_obj(m, t[i & TABLE_MASK], &v, sizeof v)
                            : vmmem_fast_write_obj(m, t[i & TABLE_MASK], &v, sizeof v));
        });
        keep_min(&best, now_ns() - t0);
    }
    report_check("write_obj_u64", iters, 8, best, guest_checksum(m));
    free(t);
    vmmem_map_unref(m);
}

static void read_obj_u64(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000), best = BEST_INIT, check = 0;
    vmmem_map *m = two_regions(false);
    uint64_t *t = addr_table(TOTAL, 8);
    for (int r = 0; r < c->reps; r++) {
        escape(m), escape(t);
        uint64_t acc = 0, t0 = now_ns();
        SPLIT(for (uint64_t i = 0; i < iters; i++) {
            uint64_t v = 0;
            check_rc(calls_ ? vmmem_read_obj(m, t[i & TABLE_MASK], &v, sizeof v)
                            : vmmem_fast_read_obj(m, t[i & TABLE_MASK], &v, sizeof v));
            acc += v;
        });
        keep_min(&best, now_ns() - t0);
        escape_val(acc);
        check = acc;
    }
    report_check("read_obj_u64", iters, 8, best, check);
    free(t);
    vmmem_map_unref(m);
}

static void write_slice_4k(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 1000000), best = BEST_INIT;
    vmmem_map *m = two_regions(false);
    uint64_t *t = addr_table(TOTAL, 4096);
    uint8_t *src = src_buf(4096);
    for (int r = 0; r < c->reps; r++) {
        escape(m), escape(t), escape(src);
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++)
            check_rc(g_calls ? vmmem_write_slice(m, t[i & TABLE_MASK], src, 4096)
                             : vmmem_fast_write_slice(m, t[i & TABLE_MASK], src, 4096));
        keep_min(&best, now_ns() - t0);
    }
    report_check("write_slice_4k", iters, 4096, best, guest_checksum(m));
    free(src);
    free(t);
    vmmem_map_unref(m);
}

static void read_slice_4k(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 1000000), best = BEST_INIT, check = 0;
    vmmem_map *m = two_regions(false);
    uint64_t *t = addr_table(TOTAL, 4096);
    uint8_t *buf = calloc(1, 4096);
    if (buf == NULL)
        die("read_slice_4k", -ENOMEM);
    for (int r = 0; r < c->reps; r++) {
        escape(m), escape(t);
        uint64_t acc = 0, t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            check_rc(g_calls ? vmmem_read_slice(m, t[i & TABLE_MASK], buf, 4096)
                             : vmmem_fast_read_slice(m, t[i & TABLE_MASK], buf, 4096));
            escape(buf);
            uint64_t w;
            memcpy(&w, buf, 8);
            acc += w;
        }
        keep_min(&best, now_ns() - t0);
        escape(&acc);
        check = acc;
    }
    report_check("read_slice_4k", iters, 4096, best, check);
    free(buf);
    free(t);
    vmmem_map_unref(m);
}

static void cross_region_64(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 5000000), best = BEST_INIT;
    vmmem_map *m = two_regions(false);
    uint8_t *src = src_buf(64);
    for (int r = 0; r < c->reps; r++) {
        escape(m), escape(src);
        uint64_t t0 = now_ns();
        SPLIT(for (uint64_t i = 0; i < iters; i++) {
            uint64_t a = opaque(REGION_SIZE - 32);
            check_rc(calls_ ? vmmem_write_slice(m, a, src, 64)
                            : vmmem_fast_write_slice(m, a, src, 64));
        });
        keep_min(&best, now_ns() - t0);
    }
    report_check("cross_region_64", iters, 64, best, guest_checksum(m));
    free(src);
    vmmem_map_unref(m);
}

static void memcpy_1m(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 2048), best = BEST_INIT, chunks = TOTAL / MIB;
    vmmem_map *m = two_regions(false);
    uint8_t *src = src_buf(MIB);
    for (int r = 0; r < c->reps; r++) {
        escape(m), escape(src);
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++)
            check_rc(g_calls ? vmmem_write_slice(m, (i % chunks) * MIB, src, MIB)
                             : vmmem_fast_write_slice(m, (i % chunks) * MIB, src, MIB));
        keep_min(&best, now_ns() - t0);
    }
    report_check("memcpy_1m", iters, MIB, best, guest_checksum(m));
    free(src);
    vmmem_map_unref(m);
}

static void baseline_memcpy_1m(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 2048), best = BEST_INIT, chunks = TOTAL / MIB;
    uint8_t *src = src_buf(MIB);
    uint8_t *dst = xmalloc(TOTAL);
    for (uint64_t a = 0; a < TOTAL; a += MIB)
        fill_chunk(dst + a, MIB, a);
    for (int r = 0; r < c->reps; r++) {
        escape(src);
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            memcpy(dst + (i % chunks) * MIB, src, MIB);
            escape(dst);
        }
        keep_min(&best, now_ns() - t0);
    }
    report_check("baseline_memcpy_1m", iters, MIB, best, fnv_words(FNV_OFFSET, dst, TOTAL));
    free(dst);
    free(src);
}

/* acc += start of the region holding each T[i] (1 when none); best time in *best. */
static uint64_t find_loop(const vmmem_map *m, const uint64_t *t, uint64_t iters, int reps,
                          uint64_t *best)
{
    uint64_t check = 0;
    *best = BEST_INIT;
    for (int r = 0; r < reps; r++) {
        escape(m), escape(t);
        uint64_t acc = 0, t0 = now_ns();
        SPLIT(for (uint64_t i = 0; i < iters; i++) {
            uint64_t a = t[i & TABLE_MASK], off;
            const vmmem_region *reg =
                calls_ ? vmmem_map_find(m, a, &off) : vmmem_fast_find(m, a, &off);
            acc += reg ? a - off : 1; /* a - off == vmmem_region_start(reg) */
        });
        keep_min(best, now_ns() - t0);
        escape_val(acc);
        check = acc;
    }
    return check;
}

static void find_region_many(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000), best;
    char *conf = many_config(64, MIB);
    vmmem_map *m = new_map(conf, false); /* never touched, never filled */
    uint64_t *t = addr_table(64 * MIB, 1);
    uint64_t check = find_loop(m, t, iters, c->reps, &best);
    report_check("find_region_many", iters, 0, best, check);
    free(t);
    vmmem_map_unref(m);
    free(conf);
}

/* Clear every dirty bit of m (untimed). */
static void reset_dirty(const vmmem_map *m, vmmem_harvest *scratch)
{
    int64_t rc = vmmem_map_harvest(m, scratch);
    if (rc < 0)
        die("harvest", (int)rc);
}

/* Mark again every dirty run of a saved harvest (untimed). */
static void restore_dirty(const vmmem_map *m, const vmmem_harvest *saved)
{
    vmmem_harvest_iter it = {0};
    uint64_t gpa, len;
    while (vmmem_harvest_next_run(saved, &it, &gpa, &len)) {
        int rc = vmmem_map_mark_dirty(m, gpa, len);
        if (rc < 0)
            die("mark_dirty", rc);
    }
}

static uint64_t harvest_pages(const vmmem_harvest *h)
{
    uint64_t pages = 0, p;
    for (size_t k = 0; k < vmmem_harvest_regions(h); k++) {
        vmmem_harvest_bitmap(h, k, NULL, &p);
        pages += p;
    }
    return pages;
}

static void new_harvest(const vmmem_map *m, vmmem_harvest **h)
{
    int rc = vmmem_harvest_new(m, h);
    if (rc < 0)
        die("harvest_new", rc);
}

static void dirty_mark(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000), best = BEST_INIT;
    vmmem_map *m = two_regions(true);
    vmmem_harvest *scratch, *saved, *h;
    new_harvest(m, &scratch);
    new_harvest(m, &saved);
    new_harvest(m, &h);
    reset_dirty(m, scratch);
    uint64_t *t = addr_table(TOTAL, 8);
    for (int r = 0; r < c->reps; r++) {
        reset_dirty(m, scratch); /* untimed */
        escape(m), escape(t);
        uint64_t t0 = now_ns();
        SPLIT(for (uint64_t i = 0; i < iters; i++) {
            uint64_t v = i;
            check_rc(calls_ ? vmmem_write_obj(m, t[i & TABLE_MASK], &v, sizeof v)
                            : vmmem_fast_write_obj(m, t[i & TABLE_MASK], &v, sizeof v));
        });
        keep_min(&best, now_ns() - t0);
    }
    uint64_t check = guest_checksum(m); /* reads never mark */
    uint64_t pages = harvest_pages(h);
    /* Count without clearing: one vmmem_map_is_dirty per page, as Rust does. */
    uint64_t dirty = 0, ps = vmmem_map_dirty_page_size(m);
    for (uint64_t a = 0; a < TOTAL; a += ps)
        dirty += vmmem_map_is_dirty(m, a);
    /* Keep the dirty set, so every scan below can start from it again. */
    int64_t got = vmmem_map_harvest(m, saved);
    if (got < 0 || (uint64_t)got != dirty) {
        fprintf(stderr, "vmmem-bench: harvest found %lld dirty pages, is_dirty %llu\n",
                (long long)got, (unsigned long long)dirty);
        exit(1);
    }
    char extra[160];
    snprintf(extra, sizeof extra, "check=0x%016llx dirty_pages=%llu", (unsigned long long)check,
             (unsigned long long)dirty);
    report("dirty_mark", iters, 8, best, extra);

    /* dirty_scan: harvest + run iterator, from the same dirty set each time. */
    uint64_t scans = iters / 10000 ? iters / 10000 : 1, n = 0;
    best = BEST_INIT;
    for (int r = 0; r < c->reps; r++) {
        uint64_t total = 0;
        for (uint64_t s = 0; s < scans; s++) {
            restore_dirty(m, saved); /* untimed */
            uint64_t t0 = now_ns();
            vmmem_map_harvest(m, h);
            vmmem_harvest_iter it = {0};
            uint64_t gpa, len, bytes = 0;
            while (vmmem_harvest_next_run(h, &it, &gpa, &len))
                bytes += len;
            n = bytes / ps;
            escape(&n);
            total += now_ns() - t0;
        }
        keep_min(&best, total);
    }
    snprintf(extra, sizeof extra,
             "scans=%llu pages=%llu dirty_pages=%llu us_per_scan=%.3f semantics=harvest+runs",
             (unsigned long long)scans, (unsigned long long)pages, (unsigned long long)n,
             (double)best / 1e3 / (double)scans);
    report("dirty_scan", scans * pages, DIRTY_PAGE, best, extra);

    /* dirty_get_and_reset: harvest + popcount of the words; only the first sees bits. */
    restore_dirty(m, saved);
    uint64_t first = UINT64_MAX;
    best = BEST_INIT;
    for (int r = 0; r < c->reps; r++) {
        uint64_t t0 = now_ns();
        for (uint64_t s = 0; s < scans; s++) {
            vmmem_map_harvest(m, h);
            uint64_t cnt = 0, np;
            for (size_t k = 0; k < vmmem_harvest_regions(h); k++) {
                const uint64_t *w = vmmem_harvest_bitmap(h, k, NULL, &np);
                for (uint64_t j = 0; j < (np + 63) / 64; j++)
                    cnt += (uint64_t)__builtin_popcountll(w[j]);
            }
            if (first == UINT64_MAX)
                first = cnt;
            escape(&cnt);
        }
        keep_min(&best, now_ns() - t0);
    }
    snprintf(extra, sizeof extra,
             "scans=%llu pages=%llu dirty_pages=%llu us_per_scan=%.3f semantics=reused_buffer",
             (unsigned long long)scans, (unsigned long long)pages, (unsigned long long)first,
             (double)best / 1e3 / (double)scans);
    report("dirty_get_and_reset", scans * pages, DIRTY_PAGE, best, extra);

    vmmem_harvest_free(h);
    vmmem_harvest_free(saved);
    vmmem_harvest_free(scratch);
    free(t);
    vmmem_map_unref(m);
}

static void load_store_atomic_u32(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000), best = BEST_INIT, check = 0;
    vmmem_map *m = two_regions(false);
    uint64_t *t = addr_table(TOTAL, 4);
    for (int r = 0; r < c->reps; r++) {
        escape(m), escape(t);
        uint64_t t0 = now_ns();
        SPLIT(for (uint64_t i = 0; i < iters; i++) {
            check_rc(calls_ ? vmmem_store(m, t[i & TABLE_MASK], 4, (uint32_t)i, VMMEM_RELEASE)
                            : vmmem_fast_store_u32(m, t[i & TABLE_MASK], (uint32_t)i,
                                                   VMMEM_RELEASE));
        });
        keep_min(&best, now_ns() - t0);
    }
    report_check("store_atomic_u32", iters, 4, best, guest_checksum(m));

    best = BEST_INIT;
    for (int r = 0; r < c->reps; r++) {
        escape(m), escape(t);
        uint64_t acc = 0, t0 = now_ns();
        SPLIT(for (uint64_t i = 0; i < iters; i++) {
            uint64_t v = 0;
            if (calls_) {
                check_rc(vmmem_load(m, t[i & TABLE_MASK], 4, &v, VMMEM_ACQUIRE));
            } else {
                uint32_t w = 0;
                check_rc(vmmem_fast_load_u32(m, t[i & TABLE_MASK], &w, VMMEM_ACQUIRE));
                v = w;
            }
            acc += v;
        });
        keep_min(&best, now_ns() - t0);
        escape_val(acc);
        check = acc;
    }
    report_check("load_atomic_u32", iters, 4, best, check);
    free(t);
    vmmem_map_unref(m);
}

/* ---- extra scenarios (issue 8) ---- */

/* Lookup cost against the number of 1 MiB regions; addresses byte-granular. */
static void find_regions_n(const struct cfg *c)
{
    static const unsigned counts[] = {1, 8, 64, 256, 1024};
    uint64_t iters = iters_of(c, 10000000);
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        unsigned n = counts[k];
        char *conf = many_config(n, MIB);
        vmmem_map *m = new_map(conf, false);
        uint64_t *t = addr_table((uint64_t)n * MIB, 1), best;
        uint64_t check = find_loop(m, t, iters, c->reps, &best);
        char name[32], extra[96];
        snprintf(name, sizeof name, "find_region_n%u", n);
        snprintf(extra, sizeof extra, "check=0x%016llx regions=%u", (unsigned long long)check, n);
        report(name, iters, 0, best, extra);
        free(t);
        vmmem_map_unref(m);
        free(conf);
    }
}

struct mt_arg {
    const vmmem_map *m;
    const uint64_t *t;
    uint64_t iters, first;
    pthread_barrier_t *go;
};

static void *mt_writer(void *p)
{
    struct mt_arg *a = p;
    pthread_barrier_wait(a->go);
    for (uint64_t i = a->first; i < a->first + a->iters; i++)
        check_rc(vmmem_write_obj(a->m, a->t[i & TABLE_MASK], &i, sizeof i));
    return NULL;
}

/* write_obj_u64 from nthreads threads at once, each iters ops on its own part of T8. */
static uint64_t mt_run(const vmmem_map *m, const uint64_t *t, unsigned nthreads, uint64_t iters,
                       int reps)
{
    uint64_t best = BEST_INIT;
    for (int r = 0; r < reps; r++) {
        pthread_t th[2];
        struct mt_arg a[2];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, nthreads + 1);
        for (unsigned k = 0; k < nthreads; k++) {
            a[k] = (struct mt_arg){m, t, iters, (uint64_t)k * (TABLE_LEN / 2), &go};
            if (pthread_create(&th[k], NULL, mt_writer, &a[k]) != 0)
                die("pthread_create", -EAGAIN);
        }
        pthread_barrier_wait(&go);
        uint64_t t0 = now_ns();
        for (unsigned k = 0; k < nthreads; k++)
            pthread_join(th[k], NULL);
        keep_min(&best, now_ns() - t0);
        pthread_barrier_destroy(&go);
    }
    return best;
}

static void write_obj_threads(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000);
    uint64_t *t = addr_table(TOTAL, 8);
    for (int dirty = 0; dirty <= 1; dirty++) {
        vmmem_map *m = two_regions(dirty);
        for (unsigned n = 1; n <= 2; n++) {
            uint64_t best = mt_run(m, t, n, iters, c->reps), ops = iters * n;
            char name[48], extra[96];
            snprintf(name, sizeof name, "%s_t%u", dirty ? "dirty_mark" : "write_obj_u64", n);
            snprintf(extra, sizeof extra, "threads=%u Mops_s=%.2f", n,
                     (double)ops / ((double)best / 1e9) / 1e6);
            /* ns_per_op is wall time per op over all threads (1/throughput). */
            report(name, ops, 8, best, extra);
        }
        vmmem_map_unref(m);
    }
    free(t);
}

/* The same write_obj loop on one map with tracking off, then on. */
static void dirty_overhead(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000), best[2];
    vmmem_map *m = two_regions(true);
    vmmem_harvest *scratch;
    new_harvest(m, &scratch);
    uint64_t *t = addr_table(TOTAL, 8);
    for (int on = 0; on <= 1; on++) {
        int rc = vmmem_map_set_dirty_tracking(m, on);
        if (rc < 0)
            die("set_dirty_tracking", rc);
        best[on] = BEST_INIT;
        for (int r = 0; r < c->reps; r++) {
            reset_dirty(m, scratch);
            escape(m), escape(t);
            uint64_t t0 = now_ns();
            for (uint64_t i = 0; i < iters; i++)
                {
                uint64_t v = i;
                check_rc(vmmem_write_obj(m, t[i & TABLE_MASK], &v, sizeof v));
            }
            keep_min(&best[on], now_ns() - t0);
        }
    }
    report_against("dirty_overhead", iters, 8, best[1], best[0], "untracked",
                   "tracked_over_untracked");
    vmmem_harvest_free(scratch);
    free(t);
    vmmem_map_unref(m);
}

/* Non-destructive per-page scan: vmmem_map_is_dirty on every page, as Rust's is_bit_set. */
static void dirty_scan_is_dirty(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000), best = BEST_INIT, n = 0;
    vmmem_map *m = two_regions(true); /* the fill leaves every page dirty */
    uint64_t scans = iters / 10000 ? iters / 10000 : 1, ps = vmmem_map_dirty_page_size(m);
    uint64_t pages = TOTAL / ps;
    for (int r = 0; r < c->reps; r++) {
        escape(m);
        uint64_t t0 = now_ns();
        for (uint64_t s = 0; s < scans; s++) {
            n = 0;
            for (uint64_t a = 0; a < TOTAL; a += ps)
                n += vmmem_map_is_dirty(m, a);
            escape(&n);
        }
        keep_min(&best, now_ns() - t0);
    }
    char extra[160];
    snprintf(extra, sizeof extra, "scans=%llu pages=%llu dirty_pages=%llu us_per_scan=%.3f",
             (unsigned long long)scans, (unsigned long long)pages, (unsigned long long)n,
             (double)best / 1e3 / (double)scans);
    report("dirty_scan_is_dirty", scans * pages, DIRTY_PAGE, best, extra);
    vmmem_map_unref(m);
}

/* A temporary file (tmpfs when there is one) of size bytes, unlinked. */
static int temp_file(uint64_t size)
{
    char path[] = "/dev/shm/vmmem-bench-XXXXXX", alt[] = "/tmp/vmmem-bench-XXXXXX";
    int fd = mkstemp(path);
    const char *p = path;
    if (fd < 0) {
        fd = mkstemp(alt);
        p = alt;
    }
    if (fd < 0)
        die("mkstemp", -errno);
    unlink(p);
    uint8_t *buf = xmalloc(MIB);
    for (uint64_t o = 0; o < size; o += MIB) {
        fill_chunk(buf, MIB, o);
        if (pwrite(fd, buf, MIB, (off_t)o) != (ssize_t)MIB)
            die("pwrite", -errno);
    }
    free(buf);
    return fd;
}

/*
 * read_from_fd / write_to_fd (straight into / out of guest memory) against
 * pread + memcpy / memcpy + pwrite through a bounce buffer, 1 MiB per op,
 * sequential over a 16 MiB file and the first 16 MiB of guest memory.
 */
static void fd_io(const struct cfg *c)
{
    const uint64_t fsize = 16 * MIB, chunks = fsize / MIB;
    uint64_t iters = iters_of(c, 1024), best[4];
    vmmem_map *m = two_regions(false);
    int fd = temp_file(fsize);
    uint8_t *bounce = xmalloc(MIB);
    void *hostp = NULL;
    size_t hlen = fsize;
    int rc = vmmem_map_host_address(m, 0, &hostp, &hlen);
    if (rc < 0 || hlen < fsize)
        die("host_address", rc < 0 ? rc : -EINVAL);
    uint8_t *host = hostp;
    for (int k = 0; k < 4; k++) {
        best[k] = BEST_INIT;
        for (int r = 0; r < c->reps; r++) {
            uint64_t t0 = now_ns();
            for (uint64_t i = 0; i < iters; i++) {
                uint64_t off = (i % chunks) * MIB;
                if (k < 2 && off == 0 && lseek(fd, 0, SEEK_SET) != 0)
                    die("lseek", -errno);
                switch (k) {
                case 0: /* file -> guest, no bounce */
                    if (vmmem_read_from_fd(m, off, fd, MIB) != (int64_t)MIB)
                        die("read_from_fd", -EIO);
                    break;
                case 1: /* guest -> file, no bounce */
                    if (vmmem_write_to_fd(m, off, fd, MIB) != (int64_t)MIB)
                        die("write_to_fd", -EIO);
                    break;
                case 2: /* pread into a bounce buffer, memcpy into guest memory */
                    if (pread(fd, bounce, MIB, (off_t)off) != (ssize_t)MIB)
                        die("pread", -errno);
                    memcpy(host + off, bounce, MIB);
                    escape(host);
                    break;
                default: /* memcpy out of guest memory, pwrite from the bounce buffer */
                    memcpy(bounce, host + off, MIB);
                    escape(bounce);
                    if (pwrite(fd, bounce, MIB, (off_t)off) != (ssize_t)MIB)
                        die("pwrite", -errno);
                    break;
                }
            }
            keep_min(&best[k], now_ns() - t0);
        }
    }
    static const char *const names[4] = {"read_from_fd_1m", "write_to_fd_1m",
                                         "pread_memcpy_1m", "memcpy_pwrite_1m"};
    for (int k = 0; k < 4; k++) {
        char extra[96] = "";
        if (k < 2)
            snprintf(extra, sizeof extra, "vs_bounce=%.3f", (double)best[k] / (double)best[k + 2]);
        report(names[k], iters, MIB, best[k], extra);
    }
    close(fd);
    free(bounce);
    vmmem_map_unref(m);
}

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* The library's own heap per region, and dirty-bitmap bytes per GiB at 4 KiB pages. */
static void memory_overhead(const struct cfg *c)
{
    (void)c;
    vmmem_map_unref(new_map("mmap:addr=0,size=4K", false)); /* plugins loaded, registry warm */
    const unsigned n = 1024;
    char *conf = many_config(n, MIB);
    size_t h0 = heap_used();
    vmmem_map *m1 = new_map("mmap:addr=0,size=1M,noreserve", false);
    size_t h1 = heap_used();
    vmmem_map *m = new_map(conf, false);
    size_t h2 = heap_used();
    char extra[160];
    snprintf(extra, sizeof extra, "regions=%u bytes_per_region=%.1f one_region_map_bytes=%zu", n,
             (double)(h2 - h1) / n, h1 - h0);
    printf("mem_overhead %s\n", extra);
    vmmem_map_unref(m);
    vmmem_map_unref(m1);
    free(conf);

    /* One 1 GiB region: bitmap bytes from the harvest view and from the heap. */
    vmmem_map *g = new_map("mmap:addr=0,size=1G,noreserve", false);
    size_t b0 = heap_used();
    int rc = vmmem_map_set_dirty_tracking(g, true);
    if (rc < 0)
        die("set_dirty_tracking", rc);
    size_t b1 = heap_used();
    vmmem_harvest *h;
    new_harvest(g, &h);
    uint64_t words = 0, pages;
    for (size_t k = 0; k < vmmem_harvest_regions(h); k++) {
        vmmem_harvest_bitmap(h, k, NULL, &pages);
        words += (pages + 63) / 64;
    }
    printf("bitmap_per_gib page_size=%llu bitmap_bytes=%llu heap_bytes=%zu target_bytes=32768\n",
           (unsigned long long)vmmem_map_dirty_page_size(g), (unsigned long long)(words * 8),
           b1 - b0);
    fflush(stdout);
    vmmem_harvest_free(h);
    vmmem_map_unref(g);
}

/* ---- hot-plug snapshots (issue 7) ---- */

struct snap_arg {
    vmmem_space *s;
    bool section; /* read sections instead of snapshots */
    uint64_t iters;
    pthread_barrier_t *go;
    atomic_bool *stop;
    uint64_t ns, publications;
};

static void *snap_reader(void *p)
{
    struct snap_arg *a = p;
    pthread_barrier_wait(a->go);
    uint64_t t0 = now_ns();
    if (a->section) {
        for (uint64_t i = 0; i < a->iters; i++) {
            struct vmmem_read_section sec;
            escape(vmmem_space_read_begin(a->s, &sec));
            vmmem_space_read_end(&sec);
        }
    } else {
        for (uint64_t i = 0; i < a->iters; i++) {
            vmmem_map *m = vmmem_space_snapshot(a->s);
            escape(m);
            vmmem_map_unref(m);
        }
    }
    a->ns = now_ns() - t0;
    return NULL;
}

/* Re-publishes the space's current map until told to stop: every reader's
 * snapshot then races a publication and its grace period. */
static void *snap_publisher(void *p)
{
    struct snap_arg *a = p;
    pthread_barrier_wait(a->go);
    while (!atomic_load_explicit(a->stop, memory_order_relaxed)) {
        vmmem_map *m = vmmem_space_snapshot(a->s);
        int rc = vmmem_space_publish(a->s, m);
        vmmem_map_unref(m);
        if (rc < 0)
            die("vmmem_space_publish", rc);
        a->publications++;
    }
    return NULL;
}

/* vmmem_space_snapshot + vmmem_map_unref, then vmmem_space_read_begin +
 * read_end: alone, from two threads at once, and while another thread
 * publishes; then the cost of either taken per access (around one
 * write_obj) against write_obj on a held map. */
static void snapshot_cost(const struct cfg *c)
{
    uint64_t iters = iters_of(c, 10000000);
    vmmem_map *m0 = two_regions(false);
    vmmem_space *s;
    int rc = vmmem_space_new(&s, m0, NULL);
    if (rc < 0)
        die("vmmem_space_new", rc);
    static const char *const names[] = {"snapshot_t1", "snapshot_t2", "snapshot_publishing",
                                        "section_t1",  "section_t2",  "section_publishing"};
    for (int v = 0; v < 6; v++) {
        unsigned readers = v % 3 == 1 ? 2 : 1;
        bool publisher = v % 3 == 2, section = v >= 3;
        uint64_t best = BEST_INIT, pubs = 0;
        for (int r = 0; r < c->reps; r++) {
            pthread_t th[3];
            struct snap_arg a[3];
            memset(th, 0, sizeof th);
            memset(a, 0, sizeof a);
            atomic_bool stop = false;
            pthread_barrier_t go;
            unsigned n = readers + (publisher ? 1 : 0);
            pthread_barrier_init(&go, NULL, n);
            for (unsigned k = 0; k < n; k++) {
                a[k] = (struct snap_arg){s, section, iters, &go, &stop, 0, 0};
                if (pthread_create(&th[k], NULL, k < readers ? snap_reader : snap_publisher,
                                   &a[k]) != 0)
                    die("pthread_create", -EAGAIN);
            }
            uint64_t worst = 0;
            for (unsigned k = 0; k < readers; k++) {
                pthread_join(th[k], NULL);
                if (a[k].ns > worst)
                    worst = a[k].ns;
            }
            atomic_store(&stop, true);
            if (publisher) {
                pthread_join(th[readers], NULL);
                pubs += a[readers].publications;
            }
            keep_min(&best, worst);
            pthread_barrier_destroy(&go);
        }
        char extra[96];
        snprintf(extra, sizeof extra, "readers=%u publications_per_rep=%llu", readers,
                 (unsigned long long)(pubs / (uint64_t)c->reps));
        /* ns_per_op: one reader's time per snapshot+unref pair. */
        report(names[v], iters, 0, best, extra);
    }

    uint64_t *t = addr_table(TOTAL, 8), best[3] = {BEST_INIT, BEST_INIT, BEST_INIT};
    vmmem_map *held = vmmem_space_snapshot(s);
    for (int r = 0; r < c->reps; r++) {
        escape(t);
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++)
            check_rc(vmmem_write_obj(held, t[i & TABLE_MASK], &i, sizeof i));
        keep_min(&best[0], now_ns() - t0);
        t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            vmmem_map *m = vmmem_space_snapshot(s);
            check_rc(vmmem_write_obj(m, t[i & TABLE_MASK], &i, sizeof i));
            vmmem_map_unref(m);
        }
        keep_min(&best[1], now_ns() - t0);
        t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            struct vmmem_read_section sec;
            check_rc(vmmem_write_obj(vmmem_space_read_begin(s, &sec), t[i & TABLE_MASK], &i,
                                     sizeof i));
            vmmem_space_read_end(&sec);
        }
        keep_min(&best[2], now_ns() - t0);
    }
    report_against("snapshot_write_obj_u64", iters, 8, best[1], best[0], "held_map",
                   "per_access_over_held");
    report_against("section_write_obj_u64", iters, 8, best[2], best[0], "held_map",
                   "per_access_over_held");
    vmmem_map_unref(held);
    free(t);
    vmmem_space_free(s);
    vmmem_map_unref(m0);
}

/* ---- Xen grant map-on-access under the simulator (issue 5) ---- */

#define XB_DOMID 7u
#define XB_PAGES 32u
#define XB_GRANT(ref) (0x8000000000000000ull | ((uint64_t)(ref) << 12))

static const struct xensim_api *xensim(void)
{
    xensim_api_fn fn = (xensim_api_fn)(uintptr_t)dlsym(RTLD_DEFAULT, XENSIM_API_SYMBOL);
    const struct xensim_api *sim = fn ? fn() : NULL;
    return sim != NULL && sim->version == XENSIM_API_VERSION ? sim : NULL;
}

/* The virtio-like loop of docs/xen.md over a 32-page grant region: a 16-byte
 * descriptor read on a hot page, a 256-byte buffer read from one of 24 data
 * pages in turn, a used-index write and read-back on a second hot page. */
static uint64_t grant_loop(const vmmem_map *m, uint64_t rounds)
{
    uint8_t b[256];
    uint64_t acc = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        uint32_t idx = (uint32_t)r;
        check_rc(vmmem_read_slice(m, XB_GRANT(0) + (r % 8) * 16, b, 16));
        acc += b[0];
        check_rc(vmmem_read_slice(m, XB_GRANT(8 + r % 24), b, 256));
        acc += b[255];
        check_rc(vmmem_write_obj(m, XB_GRANT(1) + 4, &idx, 4));
        idx = 0;
        check_rc(vmmem_read_obj(m, XB_GRANT(1) + 4, &idx, 4));
        if (idx != (uint32_t)r)
            die("grant loop read-back", -EIO);
    }
    return acc;
}

/* Per access (4 per round): an eagerly mapped grant region (a plain region:
 * the fast path), then map-on-access with no cache, cache=16, cache=32.
 * Needs the simulator in LD_PRELOAD (scons bench does that). */
static void xen_grant(const struct cfg *c)
{
    const struct xensim_api *sim = xensim();
    if (sim == NULL) {
        fprintf(stderr, "# xen_grant: skipped, the Xen simulator is not loaded "
                        "(LD_PRELOAD=build/release/tests/xensim/xensim.so)\n");
        return;
    }
    int dfd = sim->domain(XB_DOMID, XB_PAGES);
    if (dfd < 0)
        die("xensim domain", dfd);
    for (uint32_t ref = 0; ref < XB_PAGES; ref++)
        if (sim->grant(ref, ref, false) != 0)
            die("xensim grant", -EINVAL);
    static const struct {
        const char *name, *opts;
    } v[] = {
        {"xen_grant_eager", ""},
        {"xen_grant_lazy_nocache", ",flags=0xa"},
        {"xen_grant_lazy_cache16", ",flags=0xa,cache=16"},
        {"xen_grant_lazy_cache32", ",flags=0xa,cache=32"},
    };
    uint64_t rounds = iters_of(c, 100000) / 4, eager_ns = 0;
    if (rounds == 0)
        rounds = 1;
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        /* Map-on-access costs syscalls per access: fewer rounds there. */
        uint64_t n = k == 0 ? rounds * 100 : rounds;
        char conf[160];
        snprintf(conf, sizeof conf, "xen-grant:addr=0x%llx,size=%uK,domid=%u%s",
                 (unsigned long long)XB_GRANT(0), XB_PAGES * 4, XB_DOMID, v[k].opts);
        vmmem_map *m = new_map(conf, false);
        struct xensim_stats s0, s1;
        uint64_t best = BEST_INIT, maps = 0;
        for (int r = 0; r < c->reps; r++) {
            sim->stats(&s0);
            uint64_t t0 = now_ns();
            escape((void *)(uintptr_t)grant_loop(m, n));
            keep_min(&best, now_ns() - t0);
            sim->stats(&s1);
            maps = s1.grant_mmaps - s0.grant_mmaps;
        }
        vmmem_map_unref(m);
        uint64_t ops = n * 4;
        if (k == 0)
            eager_ns = best / n; /* per round */
        char extra[128];
        snprintf(extra, sizeof extra, "gntdev_mmaps_per_round=%.3f over_eager=%.1f",
                 (double)maps / (double)n,
                 eager_ns ? (double)best / (double)n / (double)eager_ns : 1.0);
        report(v[k].name, ops, 0, best, extra);
    }
    if (sim->revoke_all() != 0)
        die("xensim revoke_all: grants still mapped", -EBUSY);
}

/* ---- driver ---- */

struct scenario {
    const char *name;
    void (*fn)(const struct cfg *);
    bool extra;
};

static const struct scenario scenarios[] = {
    {"write_obj_u64", write_obj_u64, false},
    {"read_obj_u64", read_obj_u64, false},
    {"write_slice_4k", write_slice_4k, false},
    {"read_slice_4k", read_slice_4k, false},
    {"cross_region_64", cross_region_64, false},
    {"memcpy_1m", memcpy_1m, false},
    {"baseline_memcpy_1m", baseline_memcpy_1m, false},
    {"find_region_many", find_region_many, false},
    {"dirty_mark", dirty_mark, false},
    {"load_store_atomic_u32", load_store_atomic_u32, false},
    {"find_regions_n", find_regions_n, true},
    {"write_obj_threads", write_obj_threads, true},
    {"dirty_overhead", dirty_overhead, true},
    {"dirty_scan_is_dirty", dirty_scan_is_dirty, true},
    {"fd_io", fd_io, true},
    {"memory_overhead", memory_overhead, true},
    {"snapshot", snapshot_cost, true},
    {"xen_grant", xen_grant, true},
};
#define N_SCENARIOS (sizeof scenarios / sizeof scenarios[0])

static void usage(void)
{
    fprintf(stderr, "usage: vmmem-bench <scenario|all|extra|list> [iters|-] [reps]\n"
                    "  all: the rust-anchor set; extra: the scenarios beyond it\n"
                    "  iters: ops per timed repetition ('-' or 0 = default)\n"
                    "  reps: timed repetitions, fastest reported (default %d)\n",
            DEFAULT_REPS);
    for (size_t k = 0; k < N_SCENARIOS; k++)
        fprintf(stderr, "  %s%s\n", scenarios[k].name, scenarios[k].extra ? " (extra)" : "");
    exit(2);
}

static uint64_t parse_num(const char *s)
{
    char clean[64];
    size_t n = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (; *s && n + 1 < sizeof clean; s++)
        if (*s != '_')
            clean[n++] = *s;
    clean[n] = 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(clean, &end, 10);
    if (n == 0 || *end != 0 || errno != 0)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    struct cfg c = {0, DEFAULT_REPS};
    const char *calls = getenv("VMMEM_BENCH_CALLS");
    g_calls = calls != NULL && strcmp(calls, "1") == 0;
    if (g_calls)
        fprintf(stderr, "# VMMEM_BENCH_CALLS=1: exported functions, not the fast.h inline paths\n");
    if (argc > 2)
        c.iters = parse_num(argv[2]);
    if (argc > 3) {
        uint64_t r = parse_num(argv[3]);
        c.reps = r == 0 ? DEFAULT_REPS : (int)(r > 1000 ? 1000 : r);
    }
    const char *name = argv[1];
    if (strcmp(name, "list") == 0) {
        for (size_t k = 0; k < N_SCENARIOS; k++)
            printf("%s%s\n", scenarios[k].name, scenarios[k].extra ? " (extra)" : "");
        return 0;
    }
    bool all = strcmp(name, "all") == 0, extra = strcmp(name, "extra") == 0;
    fprintf(stderr,
            "# libvmmem %s (public API); regions 2x64MiB unless noted; best of %d reps; "
            "MB = 1e6 bytes\n",
            VMMEM_VERSION_STRING, c.reps);
    uint64_t t0 = now_ns();
    bool found = false;
    for (size_t k = 0; k < N_SCENARIOS; k++) {
        if ((all && !scenarios[k].extra) || (extra && scenarios[k].extra) ||
            strcmp(name, scenarios[k].name) == 0) {
            scenarios[k].fn(&c);
            found = true;
        }
    }
    if (!found)
        usage();
    fprintf(stderr, "# total wall time %.2f s\n", (double)(now_ns() - t0) / 1e9);
    return 0;
}

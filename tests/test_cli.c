/*
 * The `vmmem` command and the examples/ programs, run as child processes:
 * exit status, stdout and stderr are captured separately and checked.
 *
 * The runner sets VMMEM_BUILD_ROOT (the tool is $VMMEM_BUILD_ROOT/tools/vmmem,
 * the examples are in $VMMEM_BUILD_ROOT/examples) and VMMEM_PLUGIN_PATH.
 * File-backed cases need $VMMEM_BUILD_ROOT/plugins/vmmem-file.so; without it
 * they are skipped, and say so.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CFG3 "mmap:addr=0,size=4K;mmap:addr=0x1000,size=4K;mmap:addr=0x3000,size=4K"

static char tool[4096];
static char build_root[4096];
static char tmpdir[256];
static bool have_file_provider;

/* ---- running a program ------------------------------------------------- */

struct run {
    int status; /* exit status, or 128 + signal */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static void append(char **buf, size_t *len, const char *p, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    if (nb == NULL)
        abort();
    memcpy(nb + *len, p, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
}

/*
 * execv(argv[0], argv), through the runner a cross build names in
 * VMMEM_TEST_EXEC_PREFIX (blank-separated, e.g. "qemu-aarch64 -L
 * /usr/aarch64-linux-gnu"): programs of the target need it to run here.
 */
static void exec_target(const char *const *argv)
{
    const char *prefix = getenv("VMMEM_TEST_EXEC_PREFIX");
    if (prefix == NULL || *prefix == '\0') {
        execv(argv[0], (char *const *)argv);
        return;
    }
    char words[1024];
    snprintf(words, sizeof words, "%s", prefix);
    const char *full[64];
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(words, " ", &save); w != NULL && n < 32; w = strtok_r(NULL, " ", &save))
        full[n++] = w;
    for (size_t i = 0; argv[i] != NULL && n < 63; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    execvp(full[0], (char *const *)full);
}

/*
 * Run argv[0] with argv, stdin from /dev/null, stdout and stderr captured
 * separately; env_name/env_value (optional) are set in the child only.
 */
static int run_argv(struct run *r, const char *const *argv, const char *env_name,
                    const char *env_value)
{
    int po[2], pe[2];
    memset(r, 0, sizeof *r);
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    if (r->out == NULL || r->err == NULL || pipe(po) != 0)
        return -1;
    if (pipe(pe) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(126);
        close(po[0]);
        close(pe[0]);
        if (env_name != NULL)
            setenv(env_name, env_value, 1);
        exec_target(argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            char buf[65536];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                if (i == 0)
                    append(&r->out, &r->out_len, buf, (size_t)n);
                else
                    append(&r->err, &r->err_len, buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

/* Run the vmmem tool with the given arguments (NULL-terminated). */
static void vmmem_env(struct run *r, const char *env_name, const char *env_value, ...)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = tool;
    va_list ap;
    va_start(ap, env_value);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    if (run_argv(r, argv, env_name, env_value) != 0) {
        CU_FAIL("could not run the vmmem tool");
        r->status = -1;
    }
}
#define VMMEM(r, ...) vmmem_env((r), NULL, NULL, __VA_ARGS__, (const char *)NULL)

/* Check the exit status, and stdout exactly when want_out is not NULL. */
static void expect(const struct run *r, int status, const char *want_out, int line)
{
    if (r->status != status)
        printf("\n    line %d: exit status %d, want %d\n    stdout: %s\n    stderr: %s\n", line,
               r->status, status, r->out, r->err);
    CU_ASSERT_EQUAL(r->status, status);
    if (want_out != NULL) {
        if (strcmp(r->out, want_out) != 0)
            printf("\n    line %d: stdout\n%s\n    want\n%s\n", line, r->out, want_out);
        CU_ASSERT_STRING_EQUAL(r->out, want_out);
    }
}
#define EXPECT(r, status, out) expect((r), (status), (out), __LINE__)

static void expect_has(const char *text, const char *what, const char *needle, int line)
{
    if (strstr(text, needle) == NULL)
        printf("\n    line %d: %s lacks \"%s\":\n%s\n", line, what, needle, text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, needle));
}
#define OUT_HAS(r, s) expect_has((r)->out, "stdout", (s), __LINE__)
#define ERR_HAS(r, s) expect_has((r)->err, "stderr", (s), __LINE__)

/* A failed command: status, nothing on stdout, stderr names the command. */
static void expect_fail(const struct run *r, int status, const char *cmd, int line)
{
    expect(r, status, "", line);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", cmd);
    if (strncmp(r->err, prefix, strlen(prefix)) != 0)
        printf("\n    line %d: stderr does not start with \"%s\": %s\n", line, prefix, r->err);
    CU_ASSERT_EQUAL(strncmp(r->err, prefix, strlen(prefix)), 0);
}
#define EXPECT_FAIL(r, status, cmd) expect_fail((r), (status), (cmd), __LINE__)

/* ---- reference values ------------------------------------------------------ */

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t fnv_fill(int byte, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (b == NULL)
        abort();
    memset(b, byte, n);
    uint64_t h = fnv1a64(b, n);
    free(b);
    return h;
}

/* The library's message for a config that fails to build. */
static const char *config_message(const char *config, int *code)
{
    static char msg[512];
    vmmem_map *m = NULL;
    *code = vmmem_map_from_config(&m, NULL, config, NULL);
    if (*code == 0) {
        vmmem_map_unref(m);
        return "(config unexpectedly built)";
    }
    snprintf(msg, sizeof msg, "%s", vmmem_last_message());
    return msg;
}

static int write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, data, n);
    close(fd);
    return w == (ssize_t)n ? 0 : -1;
}

static int read_file(const char *path, uint8_t *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, buf, n);
    close(fd);
    return got == (ssize_t)n ? 0 : -1;
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* 5000 deterministic pseudo-random bytes. */
static void blob_bytes(uint8_t *b, size_t n)
{
    uint32_t x = 0x12345678;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (uint8_t)(x >> 16);
    }
}

/* ---- suite setup ------------------------------------------------------------- */

static int suite_init(void)
{
    const char *root = getenv("VMMEM_BUILD_ROOT");
    if (root == NULL) {
        printf("VMMEM_BUILD_ROOT is not set (run through `scons test`)\n");
        return -1;
    }
    snprintf(build_root, sizeof build_root, "%s", root);
    snprintf(tool, sizeof tool, "%s/tools/vmmem", root);
    if (access(tool, X_OK) != 0) {
        printf("%s: %s\n", tool, strerror(errno));
        return -1;
    }
    char so[4200];
    snprintf(so, sizeof so, "%s/plugins/vmmem-file.so", root);
    have_file_provider = access(so, R_OK) == 0;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vmmem-cli-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return 0;
}

static int suite_cleanup(void)
{
    DIR *d = opendir(tmpdir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* ---- help and usage ------------------------------------------------------------ */

static const char *const commands[] = {"providers", "info", "dump", "load", "fill", "checksum",
                                       "read", "write", "diff", "demo", "help", NULL};

static void test_help(void)
{
    struct run r;
    VMMEM(&r, "--help");
    EXPECT(&r, 0, NULL);
    CU_ASSERT_EQUAL(r.err_len, 0);
    OUT_HAS(&r, "Usage: vmmem COMMAND [ARGS...]");
    OUT_HAS(&r, "Exit status:");
    OUT_HAS(&r, "VMMEM_PLUGIN_PATH");
    OUT_HAS(&r, "FNV-1a");
    for (int i = 0; commands[i]; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n  %s ", commands[i]);
        OUT_HAS(&r, line);
    }
    char *main_help = strdup(r.out);
    run_free(&r);
    VMMEM(&r, "help");
    EXPECT(&r, 0, main_help);
    run_free(&r);
    free(main_help);

    for (int i = 0; commands[i]; i++) {
        char usage[64];
        snprintf(usage, sizeof usage, "Usage: vmmem %s", commands[i]);
        VMMEM(&r, commands[i], "--help");
        EXPECT(&r, 0, NULL);
        CU_ASSERT_EQUAL(strncmp(r.out, usage, strlen(usage)), 0);
        CU_ASSERT_EQUAL(r.err_len, 0);
        char *sub = strdup(r.out);
        run_free(&r);
        /* `vmmem help CMD` and `-h` after other arguments print the same. */
        VMMEM(&r, "help", commands[i]);
        EXPECT(&r, 0, sub);
        run_free(&r);
        VMMEM(&r, commands[i], "x", "-h");
        EXPECT(&r, 0, sub);
        run_free(&r);
        free(sub);
    }
    VMMEM(&r, "checksum", "--help");
    OUT_HAS(&r, "FNV-1a");
    OUT_HAS(&r, "0xcbf29ce484222325");
    run_free(&r);

    VMMEM(&r, "--version");
    EXPECT(&r, 0, "vmmem " VMMEM_VERSION_STRING " (libvmmem " VMMEM_VERSION_STRING ")\n");
    run_free(&r);
}

static void test_usage_errors(void)
{
    struct run r;
    const char *argv0[] = {tool, NULL};
    CU_ASSERT_EQUAL(run_argv(&r, argv0, NULL, NULL), 0);
    EXPECT(&r, 2, "");
    ERR_HAS(&r, "Usage: vmmem COMMAND");
    run_free(&r);

    VMMEM(&r, "frobnicate");
    EXPECT_FAIL(&r, 2, "vmmem");
    ERR_HAS(&r, "unknown command 'frobnicate'");
    run_free(&r);
    VMMEM(&r, "help", "frobnicate");
    EXPECT_FAIL(&r, 2, "vmmem help");
    run_free(&r);

    /* Bad numbers: exit 2 with the library's message. */
    VMMEM(&r, "dump", CFG3, "0xzz", "16");
    EXPECT_FAIL(&r, 2, "vmmem dump");
    ERR_HAS(&r, "bad ADDR '0xzz': '0xzz' is not a number");
    run_free(&r);
    VMMEM(&r, "dump", CFG3, "0", "12Q");
    EXPECT_FAIL(&r, 2, "vmmem dump");
    ERR_HAS(&r, "bad LEN '12Q'");
    run_free(&r);
    VMMEM(&r, "checksum", CFG3, "0", "99999999999999999999");
    EXPECT_FAIL(&r, 2, "vmmem checksum");
    ERR_HAS(&r, "does not fit in 64 bits");
    run_free(&r);
    VMMEM(&r, "fill", CFG3, "0", "16", "256");
    EXPECT_FAIL(&r, 2, "vmmem fill");
    ERR_HAS(&r, "bad BYTE '256': must be 0..255");
    run_free(&r);
    VMMEM(&r, "fill", CFG3, "0", "16", "x");
    EXPECT_FAIL(&r, 2, "vmmem fill");
    run_free(&r);
    VMMEM(&r, "load", CFG3, "/dev/null", "-");
    EXPECT_FAIL(&r, 2, "vmmem load");
    run_free(&r);

    /* Wrong argument counts and unknown options. */
    VMMEM(&r, "dump", CFG3, "0");
    EXPECT_FAIL(&r, 2, "vmmem dump");
    ERR_HAS(&r, "expected CONFIG ADDR LEN");
    run_free(&r);
    VMMEM(&r, "dump", CFG3, "0", "1", "2");
    EXPECT_FAIL(&r, 2, "vmmem dump");
    ERR_HAS(&r, "unexpected argument '2'");
    run_free(&r);
    VMMEM(&r, "info");
    EXPECT_FAIL(&r, 2, "vmmem info");
    run_free(&r);
    VMMEM(&r, "demo", "now");
    EXPECT_FAIL(&r, 2, "vmmem demo");
    run_free(&r);
    VMMEM(&r, "providers", "extra");
    EXPECT_FAIL(&r, 2, "vmmem providers");
    run_free(&r);
    VMMEM(&r, "checksum", "--raw", CFG3, "0", "1");
    EXPECT_FAIL(&r, 2, "vmmem checksum");
    ERR_HAS(&r, "unknown option '--raw'");
    run_free(&r);
    VMMEM(&r, "load", "--progress", "--no-progress", CFG3, "/dev/null", "0");
    EXPECT_FAIL(&r, 2, "vmmem load");
    run_free(&r);
}

/* ---- bad configs ------------------------------------------------------------------ */

static void test_bad_config(void)
{
    static const char *const bad[] = {
        "mmap:addr=0",                               /* missing size */
        "mmap:addr=0,size=4K,bogus=1",               /* unknown key */
        "nosuchprovider:addr=0,size=4K",             /* unknown provider */
        "mmap:addr=0,size=8K;mmap:addr=4K,size=4K", /* overlap */
        "mmap addr=0",                               /* syntax */
        "mmap:addr=0,size=0x1g1",                    /* bad number */
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        int code;
        const char *msg = config_message(bad[i], &code);
        CU_ASSERT(code < 0);
        struct run r;
        VMMEM(&r, "info", bad[i]);
        EXPECT_FAIL(&r, 1, "vmmem info");
        ERR_HAS(&r, msg);
        ERR_HAS(&r, vmmem_err_name(code));
        run_free(&r);
        VMMEM(&r, "dump", bad[i], "0", "16");
        EXPECT_FAIL(&r, 1, "vmmem dump");
        ERR_HAS(&r, msg);
        run_free(&r);
        VMMEM(&r, "checksum", bad[i], "0", "16");
        EXPECT_FAIL(&r, 1, "vmmem checksum");
        ERR_HAS(&r, msg);
        run_free(&r);
        VMMEM(&r, "fill", bad[i], "0", "16", "1");
        EXPECT_FAIL(&r, 1, "vmmem fill");
        ERR_HAS(&r, msg);
        run_free(&r);
        VMMEM(&r, "load", bad[i], "/dev/null", "0");
        EXPECT_FAIL(&r, 1, "vmmem load");
        ERR_HAS(&r, msg);
        run_free(&r);
    }
}

/* ---- providers and info -------------------------------------------------------------- */

static void test_providers(void)
{
    struct run r;
    char so[4200];
    snprintf(so, sizeof so, "%s/plugins/vmmem-mmap.so", build_root);
    VMMEM(&r, "providers");
    EXPECT(&r, 0, NULL);
    CU_ASSERT_EQUAL(r.err_len, 0);
    OUT_HAS(&r, "\n  mmap ");
    OUT_HAS(&r, so);
    OUT_HAS(&r, "\nsearch path:\n  ");
    /* This process has the same search path: one directory a line. */
    char *dirs = strdup(vmmem_plugin_dir()), *save = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(dirs);
    for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char line[4200];
        snprintf(line, sizeof line, "\n  %s\n", dir);
        OUT_HAS(&r, line);
    }
    free(dirs);
    CU_ASSERT_PTR_NULL(strstr(r.out, "failed to load"));
    CU_ASSERT_PTR_NULL(strstr(r.out, "hugepage=VALUE"));
    run_free(&r);

    VMMEM(&r, "providers", "-v");
    EXPECT(&r, 0, NULL);
    OUT_HAS(&r, "options: addr=ADDR (required), size=SIZE (required)");
    OUT_HAS(&r, "hugepage=VALUE");
    OUT_HAS(&r, "populate ");
    run_free(&r);

    /* Broken plugins are listed with the reason; the command still succeeds. */
    const char *tpd = getenv("VMMEM_TEST_PLUGIN_DIR");
    if (tpd != NULL) {
        char path[8400];
        snprintf(path, sizeof path, "%s/plugins:%s", build_root, tpd);
        vmmem_env(&r, "VMMEM_PLUGIN_PATH", path, "providers", (const char *)NULL);
        EXPECT(&r, 0, NULL);
        OUT_HAS(&r, "\n  mmap ");
        OUT_HAS(&r, "failed to load:\n");
        char line[4300];
        snprintf(line, sizeof line, "  %s/garbage.so: VMMEM_ENOT_PLUGIN: ", tpd);
        OUT_HAS(&r, line);
        snprintf(line, sizeof line, "  %s/noentry.so: VMMEM_ENOT_PLUGIN: ", tpd);
        OUT_HAS(&r, line);
        run_free(&r);
    } else {
        printf("\n    VMMEM_TEST_PLUGIN_DIR unset: broken-plugin listing skipped\n");
    }

    /* A copy of a plugin earlier on the path overrides the staged one: the
     * later file is listed as shadowed, not as a failure. */
    char sdir[512], cmd[8800];
    snprintf(sdir, sizeof sdir, "%s/shadow", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s %s/ && chmod 755 %s", sdir, so, sdir, sdir);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    vmmem_env(&r, "VMMEM_PLUGIN_PATH", sdir, "providers", (const char *)NULL);
    EXPECT(&r, 0, NULL);
    char line[9000];
    snprintf(line, sizeof line, "  mmap ");
    OUT_HAS(&r, line);
    snprintf(line, sizeof line, " 1  %s/vmmem-mmap.so ", sdir);
    OUT_HAS(&r, line);
    snprintf(line, sizeof line,
             "\nshadowed (a file of the same name was loaded first):\n"
             "  %s: not loaded; %s/vmmem-mmap.so is used\n",
             so, sdir);
    OUT_HAS(&r, line);
    CU_ASSERT_PTR_NULL(strstr(r.out, "failed to load"));
    run_free(&r);
    snprintf(cmd, sizeof cmd, "rm -rf %s", sdir);
    CU_ASSERT_EQUAL(system(cmd), 0);

    /* No plugins at all: an empty list, not a failure. */
    vmmem_env(&r, "VMMEM_PLUGIN_PATH", tmpdir, "providers", (const char *)NULL);
    if (strstr(r.out, "0 providers\n") == r.out) { /* unless something is installed */
        EXPECT(&r, 0, NULL);
        OUT_HAS(&r, tmpdir);
    } else {
        printf("\n    installed plugins found in %s: empty-list case not checked\n",
               vmmem_plugin_dir());
    }
    run_free(&r);
}

static void test_info(void)
{
    struct run r;
    VMMEM(&r, "info", CFG3);
    EXPECT(&r, 0, NULL);
    CU_ASSERT_EQUAL(r.err_len, 0);
    CU_ASSERT_EQUAL(strncmp(r.out, "3 regions, 12 KiB (12288 bytes), highest address 0x3fff\n"
                                   "  #  START               LAST                     SIZE  "
                                   "PROVIDER  PROT  HOST                HUGETLBFS  BACKING\n",
                            strlen("3 regions, 12 KiB (12288 bytes), highest address 0x3fff\n") +
                                strlen("  #  START               LAST                     SIZE  "
                                       "PROVIDER  PROT  HOST                HUGETLBFS  BACKING\n")),
                    0);
    OUT_HAS(&r, "\n  0  0x0000000000000000  0x0000000000000fff      4 KiB  mmap      rw    0x");
    OUT_HAS(&r, "\n  1  0x0000000000001000  0x0000000000001fff      4 KiB  mmap      rw    0x");
    OUT_HAS(&r, "\n  2  0x0000000000003000  0x0000000000003fff      4 KiB  mmap      rw    0x");
    size_t lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 5);
    run_free(&r);

    VMMEM(&r, "info", "mmap:addr=4G,size=2M,prot=r");
    EXPECT(&r, 0, NULL);
    OUT_HAS(&r, "1 region, 2 MiB (2097152 bytes), highest address 0x1001fffff\n");
    OUT_HAS(&r, "\n  0  0x0000000100000000  0x00000001001fffff      2 MiB  mmap      r     0x");
    run_free(&r);
}

/* ---- dump ------------------------------------------------------------------------------ */

#define ZL "00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"

static void test_dump_mmap(void)
{
    struct run r;
    VMMEM(&r, "dump", CFG3, "0", "0x40");
    EXPECT(&r, 0, "00000000  " ZL "*\n00000040\n");
    CU_ASSERT_EQUAL(r.err_len, 0);
    run_free(&r);

    /* Across the seam, unaligned, every line (-v), a short last line. */
    VMMEM(&r, "dump", "-v", CFG3, "0xff8", "0x25");
    EXPECT(&r, 0,
           "00000ff8  " ZL "00001008  " ZL
           "00001018  00 00 00 00 00                                    |.....|\n"
           "0000101d\n");
    run_free(&r);
    VMMEM(&r, "dump", CFG3, "4K", "0x21", "--all");
    EXPECT(&r, 0, "00001000  " ZL "00001010  " ZL
                  "00001020  00                                                |.|\n"
                  "00001021\n");
    run_free(&r);

    /* Above 4 GiB addresses get 16 digits. */
    VMMEM(&r, "dump", "mmap:addr=0x100000000,size=4K", "0x100000ff0", "16");
    EXPECT(&r, 0, "0000000100000ff0  " ZL "0000000100001000\n");
    run_free(&r);

    /* The last byte of the guest address space. */
    VMMEM(&r, "dump", "mmap:addr=0xfffffffffffff000,size=4K", "0xfffffffffffffff0", "16");
    EXPECT(&r, 0, "fffffffffffffff0  " ZL "10000000000000000\n");
    run_free(&r);

    VMMEM(&r, "dump", CFG3, "0x3000", "0");
    EXPECT(&r, 0, "");
    run_free(&r);

    /* --raw: the bytes themselves. */
    VMMEM(&r, "dump", "--raw", CFG3, "0xffc", "8K"); /* runs into the hole */
    EXPECT_FAIL(&r, 1, "vmmem dump");
    run_free(&r);
    VMMEM(&r, "dump", "--raw", CFG3, "0xffc", "0x1004");
    EXPECT(&r, 0, NULL);
    CU_ASSERT_EQUAL(r.out_len, 0x1004);
    size_t nz = 0;
    for (size_t i = 0; i < r.out_len; i++)
        nz += r.out[i] != 0;
    CU_ASSERT_EQUAL(nz, 0);
    CU_ASSERT_EQUAL(r.err_len, 0);
    run_free(&r);
}

static void test_unbacked(void)
{
    struct run r;
    VMMEM(&r, "dump", CFG3, "0x1ff0", "0x20");
    EXPECT_FAIL(&r, 1, "vmmem dump");
    ERR_HAS(&r, "[0x1ff0, 0x200f] is not fully backed: the first unbacked byte is 0x2000");
    ERR_HAS(&r, "VMMEM_EINVALID_ADDRESS");
    run_free(&r);
    VMMEM(&r, "dump", "--raw", CFG3, "0x2000", "1");
    EXPECT_FAIL(&r, 1, "vmmem dump");
    ERR_HAS(&r, "the first unbacked byte is 0x2000");
    run_free(&r);
    VMMEM(&r, "dump", CFG3, "0x4000", "1");
    EXPECT_FAIL(&r, 1, "vmmem dump");
    ERR_HAS(&r, "the first unbacked byte is 0x4000");
    run_free(&r);
    VMMEM(&r, "dump", CFG3, "0xffffffffffffffff", "2");
    EXPECT_FAIL(&r, 1, "vmmem dump");
    ERR_HAS(&r, "runs past the end of the guest address space (VMMEM_EOVERFLOW)");
    run_free(&r);
    VMMEM(&r, "checksum", CFG3, "0", "12K");
    EXPECT_FAIL(&r, 1, "vmmem checksum");
    ERR_HAS(&r, "the first unbacked byte is 0x2000");
    run_free(&r);
    VMMEM(&r, "fill", CFG3, "0x3fff", "2", "1");
    EXPECT_FAIL(&r, 1, "vmmem fill");
    ERR_HAS(&r, "nothing was written: [0x3fff, 0x4000] is not fully backed");
    run_free(&r);
}

/* ---- checksum and fill ------------------------------------------------------------------- */

static void test_checksum(void)
{
    /* The test's own FNV-1a 64 against published vectors. */
    CU_ASSERT_EQUAL(fnv1a64((const uint8_t *)"", 0), UINT64_C(0xcbf29ce484222325));
    CU_ASSERT_EQUAL(fnv1a64((const uint8_t *)"a", 1), UINT64_C(0xaf63dc4c8601ec8c));
    CU_ASSERT_EQUAL(fnv1a64((const uint8_t *)"foobar", 6), UINT64_C(0x85944171f73967e8));

    struct run r;
    char want[64];
    snprintf(want, sizeof want, "%016" PRIx64 "\n", fnv_fill(0, 4096));
    VMMEM(&r, "checksum", CFG3, "0", "4K");
    EXPECT(&r, 0, want);
    CU_ASSERT_EQUAL(r.err_len, 0);
    run_free(&r);
    /* Independent of the split into regions. */
    VMMEM(&r, "checksum", "mmap:addr=0x10000,size=4K", "0x10000", "4096");
    EXPECT(&r, 0, want);
    run_free(&r);
    snprintf(want, sizeof want, "%016" PRIx64 "\n", fnv_fill(0, 8192));
    VMMEM(&r, "checksum", CFG3, "0", "0x2000");
    EXPECT(&r, 0, want);
    run_free(&r);
    VMMEM(&r, "checksum", CFG3, "0x2000", "0");
    EXPECT(&r, 0, "cbf29ce484222325\n");
    run_free(&r);
}

static void test_fill(void)
{
    struct run r;
    char want[160];
    snprintf(want, sizeof want, "filled 4096 bytes [0x3000, 0x3fff] with 0xab, fnv1a64 %016" PRIx64
             "\n", fnv_fill(0xab, 4096));
    VMMEM(&r, "fill", CFG3, "0x3000", "4K", "0xab");
    EXPECT(&r, 0, want);
    CU_ASSERT_EQUAL(r.err_len, 0);
    run_free(&r);
    /* Across the seam; the checksum is read back from guest memory. */
    snprintf(want, sizeof want, "filled 32 bytes [0xff0, 0x100f] with 0x5a, fnv1a64 %016" PRIx64
             "\n", fnv_fill(0x5a, 32));
    VMMEM(&r, "fill", CFG3, "0xff0", "32", "90");
    EXPECT(&r, 0, want);
    run_free(&r);
    VMMEM(&r, "fill", "-q", CFG3, "0", "8K", "1");
    EXPECT(&r, 0, "");
    CU_ASSERT_EQUAL(r.err_len, 0);
    run_free(&r);
    VMMEM(&r, "fill", CFG3, "0", "0", "1");
    EXPECT(&r, 0, "filled 0 bytes\n");
    run_free(&r);
    VMMEM(&r, "fill", "mmap:addr=0,size=4K;mmap:addr=4K,size=4K,prot=r", "0", "8K", "1");
    EXPECT_FAIL(&r, 1, "vmmem fill");
    ERR_HAS(&r, "nothing was written: region [0x1000, 0x1fff] is read-only (VMMEM_EREAD_ONLY)");
    run_free(&r);
}

/* ---- load ------------------------------------------------------------------------------------ */

static void test_load(void)
{
    uint8_t blob[5000];
    char path[512], want[1024];
    blob_bytes(blob, sizeof blob);
    tmp_path(path, sizeof path, "blob.bin");
    CU_ASSERT_FATAL(write_file(path, blob, sizeof blob) == 0);
    uint64_t h = fnv1a64(blob, sizeof blob);
    CU_ASSERT_NOT_EQUAL(h, fnv_fill(0, sizeof blob)); /* so the read-back proves the copy */

    struct run r;
    snprintf(want, sizeof want, "loaded 5000 bytes from %s to [0x100, 0x1487], fnv1a64 %016" PRIx64
             "\n", path, h);
    VMMEM(&r, "load", CFG3, path, "0x100");
    EXPECT(&r, 0, want);
    CU_ASSERT_EQUAL(r.err_len, 0); /* stderr is a pipe: no progress */
    run_free(&r);

    /* Across the seam, with progress forced on. */
    snprintf(want, sizeof want, "loaded 5000 bytes from %s to [0xf00, 0x2287], fnv1a64 %016" PRIx64
             "\n", path, h);
    VMMEM(&r, "load", "--progress", "mmap:addr=0,size=4K;mmap:addr=4K,size=8K", path, "0xf00");
    EXPECT(&r, 0, want);
    ERR_HAS(&r, "5000 of 5000 bytes (100%)");
    run_free(&r);

    VMMEM(&r, "load", "-q", CFG3, path, "0");
    EXPECT(&r, 0, "");
    CU_ASSERT_EQUAL(r.err_len, 0);
    run_free(&r);

    /* Not fully backed: refused before anything is written. */
    VMMEM(&r, "load", CFG3, path, "0x1000");
    EXPECT_FAIL(&r, 1, "vmmem load");
    snprintf(want, sizeof want, "vmmem load: cannot load '%s' (5000 bytes) at 0x1000, nothing was "
             "written: [0x1000, 0x2387] is not fully backed: the first unbacked byte is 0x2000",
             path);
    ERR_HAS(&r, want);
    ERR_HAS(&r, "VMMEM_EINVALID_ADDRESS");
    run_free(&r);
    VMMEM(&r, "load", CFG3, path, "0x3f00");
    EXPECT_FAIL(&r, 1, "vmmem load");
    ERR_HAS(&r, "the first unbacked byte is 0x4000");
    run_free(&r);
    VMMEM(&r, "load", "mmap:addr=0,size=8K,prot=r", path, "0");
    EXPECT_FAIL(&r, 1, "vmmem load");
    ERR_HAS(&r, "is read-only (VMMEM_EREAD_ONLY)");
    run_free(&r);

    /* Missing file, a directory. */
    char missing[512];
    tmp_path(missing, sizeof missing, "no-such-file");
    VMMEM(&r, "load", CFG3, missing, "0");
    EXPECT_FAIL(&r, 1, "vmmem load");
    snprintf(want, sizeof want, "cannot open '%s': No such file or directory", missing);
    ERR_HAS(&r, want);
    run_free(&r);
    VMMEM(&r, "load", CFG3, tmpdir, "0");
    EXPECT_FAIL(&r, 1, "vmmem load");
    ERR_HAS(&r, "is not a regular file or a block device");
    run_free(&r);

    /* An empty file loads nothing, successfully, even at a hole. */
    char empty[512];
    tmp_path(empty, sizeof empty, "empty.bin");
    CU_ASSERT_FATAL(write_file(empty, "", 0) == 0);
    snprintf(want, sizeof want, "loaded 0 bytes from %s (empty file)\n", empty);
    VMMEM(&r, "load", CFG3, empty, "0x2000");
    EXPECT(&r, 0, want);
    run_free(&r);
}

/* ---- demo ---------------------------------------------------------------------------------------- */

static void test_demo(void)
{
    struct run r;
    VMMEM(&r, "demo");
    EXPECT(&r, 0, NULL);
    CU_ASSERT_EQUAL(r.err_len, 0);
    OUT_HAS(&r, "mmap:addr=0,size=4K;mmap:addr=0x1000,size=4K;mmap:addr=0x3000,size=4K\n");
    OUT_HAS(&r, "   3 regions, 12 KiB (12288 bytes), highest address 0x3fff\n");
    OUT_HAS(&r, "\n  1  0x0000000000001000  0x0000000000001fff      4 KiB  mmap  ");
    OUT_HAS(&r, "vmmem_write(0xffc, [01 02 03 04 05]) = 5");
    OUT_HAS(&r, "vmmem_read(0xffc, 5)           = 5: [01 02 03 04 05]  same bytes: ok\n");
    OUT_HAS(&r, "vmmem_write(0x2000, 1 byte) = VMMEM_EINVALID_ADDRESS (-4001): "
                "guest address is not backed by any region\n");
    OUT_HAS(&r, "vmmem_write(0x1ffe, 4 bytes) = 2 ");
    OUT_HAS(&r, "vmmem_write_slice(0x1ffe, 4 bytes) = VMMEM_EPARTIAL (-4002)");
    OUT_HAS(&r, "(expected 4, completed 0)\n");
    OUT_HAS(&r, "\n     0x000000  region 0  dirty\n     0x001000  region 1  dirty\n"
                "     0x003000  region 2  clean\n");
    OUT_HAS(&r, "vmmem_map_harvest = 2 dirty pages, as runs: [0x0, 0x1fff]\n");
    OUT_HAS(&r, "after the harvest pages 0x0 and 0x1000 are clean\n");
    run_free(&r);
}

/* A map-on-access region (tests/plugins/lazy.c): every access goes through
 * the provider's begin/end hooks, and the tool works the same. */
static void test_map_on_access(void)
{
    const char *tpd = getenv("VMMEM_TEST_PLUGIN_DIR");
    if (tpd == NULL) {
        printf("\n    VMMEM_TEST_PLUGIN_DIR unset: map-on-access case SKIPPED\n");
        return;
    }
    char path[8400], want[200];
    snprintf(path, sizeof path, "%s/plugins:%s", build_root, tpd);
    const char *cfg = "mmap:addr=0,size=4K;test-lazy:addr=4K,size=8K";
    struct run r;
    vmmem_env(&r, "VMMEM_PLUGIN_PATH", path, "info", cfg, (const char *)NULL);
    EXPECT(&r, 0, NULL);
    OUT_HAS(&r, "\n  1  0x0000000000001000  0x0000000000002fff      8 KiB  test-lazy  rw    "
                "map-on-access       ");
    run_free(&r);
    snprintf(want, sizeof want, "filled 8192 bytes [0x800, 0x27ff] with 0x03, fnv1a64 %016" PRIx64
             "\n", fnv_fill(3, 8192));
    vmmem_env(&r, "VMMEM_PLUGIN_PATH", path, "fill", cfg, "0x800", "8K", "3", (const char *)NULL);
    EXPECT(&r, 0, want);
    run_free(&r);
    vmmem_env(&r, "VMMEM_PLUGIN_PATH", path, "dump", cfg, "0x2ff0", "0x10", (const char *)NULL);
    EXPECT(&r, 0, "00002ff0  " ZL "00003000\n");
    run_free(&r);
    vmmem_env(&r, "VMMEM_PLUGIN_PATH", path, "dump", "--raw", cfg, "0", "12K", (const char *)NULL);
    EXPECT(&r, 0, NULL);
    CU_ASSERT_EQUAL(r.out_len, 12288);
    run_free(&r);
    vmmem_env(&r, "VMMEM_PLUGIN_PATH", path, "dump", cfg, "0x2ff0", "0x11", (const char *)NULL);
    EXPECT_FAIL(&r, 1, "vmmem dump");
    ERR_HAS(&r, "the first unbacked byte is 0x3000");
    run_free(&r);
}

/* ---- file-backed memory (needs the file provider) -------------------------------------------------- */

static bool file_cases(void)
{
    if (!have_file_provider)
        printf("\n    %s/plugins/vmmem-file.so not built: file-backed case SKIPPED\n", build_root);
    return have_file_provider;
}

static void make_image(const char *path, uint8_t *img, size_t n)
{
    for (size_t i = 0; i < n; i++)
        img[i] = (uint8_t)i;
    memcpy(img + 0x100, "libvmmem!", 9);
    CU_ASSERT_FATAL(write_file(path, img, n) == 0);
}

static void test_file_dump(void)
{
    if (!file_cases())
        return;
    uint8_t img[8192];
    char path[512], cfg[700];
    tmp_path(path, sizeof path, "vm0.mem");
    make_image(path, img, sizeof img);
    snprintf(cfg, sizeof cfg, "file:addr=0,size=8K,path=%s", path);

    struct run r;
    VMMEM(&r, "dump", cfg, "0xf8", "0x1a");
    EXPECT(&r, 0,
           "000000f8  f8 f9 fa fb fc fd fe ff  6c 69 62 76 6d 6d 65 6d  |........libvmmem|\n"
           "00000108  21 09 0a 0b 0c 0d 0e 0f  10 11                    |!.........|\n"
           "00000112\n");
    CU_ASSERT_EQUAL(r.err_len, 0);
    run_free(&r);

    /* Read-only inspection of an image at a guest address of its own. */
    snprintf(cfg, sizeof cfg, "file:addr=1M,size=4K,offset=4K,path=%s,prot=r", path);
    VMMEM(&r, "dump", cfg, "0x10001c", "8");
    EXPECT(&r, 0, "0010001c  1c 1d 1e 1f 20 21 22 23                           |.... !\"#|\n"
                  "00100024\n");
    run_free(&r);
    VMMEM(&r, "info", cfg);
    EXPECT(&r, 0, NULL);
    char want[800];
    snprintf(want, sizeof want, "  file      r     0x");
    OUT_HAS(&r, want);
    snprintf(want, sizeof want, "%s @ 0x1000\n", path);
    OUT_HAS(&r, want);
    run_free(&r);

    /* --raw of the whole image is the file; checksum is the file's FNV-1a. */
    snprintf(cfg, sizeof cfg, "file:addr=0,size=8K,path=%s", path);
    VMMEM(&r, "dump", "--raw", cfg, "0", "8K");
    EXPECT(&r, 0, NULL);
    CU_ASSERT_EQUAL(r.out_len, sizeof img);
    CU_ASSERT(r.out_len == sizeof img && memcmp(r.out, img, sizeof img) == 0);
    run_free(&r);
    snprintf(want, sizeof want, "%016" PRIx64 "\n", fnv1a64(img, sizeof img));
    VMMEM(&r, "checksum", cfg, "0", "8K");
    EXPECT(&r, 0, want);
    run_free(&r);

    /* Mapping more than the file holds is the library's error. */
    snprintf(cfg, sizeof cfg, "file:addr=0,size=16K,path=%s", path);
    int code;
    const char *msg = config_message(cfg, &code);
    VMMEM(&r, "dump", cfg, "0", "16");
    EXPECT_FAIL(&r, 1, "vmmem dump");
    ERR_HAS(&r, msg);
    run_free(&r);

    /* A missing memory file. */
    char missing[512];
    tmp_path(missing, sizeof missing, "missing.mem");
    snprintf(cfg, sizeof cfg, "file:addr=0,size=4K,path=%s", missing);
    msg = config_message(cfg, &code);
    VMMEM(&r, "dump", cfg, "0", "16");
    EXPECT_FAIL(&r, 1, "vmmem dump");
    ERR_HAS(&r, msg);
    run_free(&r);
}

static void test_file_fill_load(void)
{
    if (!file_cases())
        return;
    uint8_t img[8192], disk[8192], blob[5000];
    char path[512], cfg[700], bpath[512], want[1200];
    tmp_path(path, sizeof path, "vm1.mem");
    make_image(path, img, sizeof img);
    snprintf(cfg, sizeof cfg, "mmap:addr=0,size=4K;file:addr=4K,size=8K,path=%s", path);

    /* fill reaches the file (the file provider maps shared by default). */
    struct run r;
    VMMEM(&r, "fill", "-q", cfg, "0x1ff8", "16", "0x41");
    EXPECT(&r, 0, "");
    run_free(&r);
    memset(img + 0xff8, 0x41, 16);
    CU_ASSERT_FATAL(read_file(path, disk, sizeof disk) == 0);
    CU_ASSERT(memcmp(disk, img, sizeof img) == 0);
    VMMEM(&r, "dump", cfg, "0x1ff0", "0x20");
    EXPECT(&r, 0,
           "00001ff0  f0 f1 f2 f3 f4 f5 f6 f7  41 41 41 41 41 41 41 41  |........AAAAAAAA|\n"
           "00002000  41 41 41 41 41 41 41 41  08 09 0a 0b 0c 0d 0e 0f  |AAAAAAAA........|\n"
           "00002010\n");
    run_free(&r);

    /* load across the seam from anonymous memory into the file. */
    blob_bytes(blob, sizeof blob);
    tmp_path(bpath, sizeof bpath, "kernel.bin");
    CU_ASSERT_FATAL(write_file(bpath, blob, sizeof blob) == 0);
    snprintf(want, sizeof want, "loaded 5000 bytes from %s to [0x800, 0x1b87], fnv1a64 %016" PRIx64
             "\n", bpath, fnv1a64(blob, sizeof blob));
    VMMEM(&r, "load", cfg, bpath, "0x800");
    EXPECT(&r, 0, want);
    run_free(&r);
    memcpy(img, blob + 0x800, 5000 - 0x800); /* guest 0x1000.. is file offset 0 */
    CU_ASSERT_FATAL(read_file(path, disk, sizeof disk) == 0);
    CU_ASSERT(memcmp(disk, img, sizeof img) == 0);

    /* Too big for the file region: refused, the file unchanged. */
    VMMEM(&r, "load", cfg, bpath, "0x2000");
    EXPECT_FAIL(&r, 1, "vmmem load");
    ERR_HAS(&r, "the first unbacked byte is 0x3000");
    run_free(&r);
    CU_ASSERT_FATAL(read_file(path, disk, sizeof disk) == 0);
    CU_ASSERT(memcmp(disk, img, sizeof img) == 0);

    /* A read-only mapping of the file refuses fill and load. */
    snprintf(cfg, sizeof cfg, "file:addr=0,size=8K,path=%s,prot=r", path);
    VMMEM(&r, "fill", cfg, "0", "1", "0");
    EXPECT_FAIL(&r, 1, "vmmem fill");
    ERR_HAS(&r, "VMMEM_EREAD_ONLY");
    run_free(&r);
    VMMEM(&r, "load", cfg, bpath, "0");
    EXPECT_FAIL(&r, 1, "vmmem load");
    ERR_HAS(&r, "VMMEM_EREAD_ONLY");
    run_free(&r);
    CU_ASSERT_FATAL(read_file(path, disk, sizeof disk) == 0);
    CU_ASSERT(memcmp(disk, img, sizeof img) == 0);
}

/* ---- examples/ programs ------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *out; /* exact stdout, or NULL: just exit 0 and no "FAILED" */
} known_examples[] = {
    {"guest_io", "guest_io: wrote and read back 5 bytes at 0xffc across two regions: ok\n"},
    {"provide_mem", "provide_mem: region 0: guest 0x0, 4096 bytes\n"
                    "provide_mem: region 1: guest 0x1000, 4096 bytes\n"
                    "provide_mem: virt_device_io: ok\n"},
    {"device_io", "device_io: write 5 bytes at 0xffc -> 5\n"
                  "device_io: read 5 bytes at 0xffc -> 5: 01 02 03 04 05\n"
                  "device_io: ok\n"},
};

static void test_examples(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/examples", build_root);
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    size_t ran = 0, known = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4500];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || strchr(e->d_name, '.') != NULL || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
            continue;
        const char *argv[] = {path, NULL};
        struct run r;
        CU_ASSERT_EQUAL_FATAL(run_argv(&r, argv, NULL, NULL), 0);
        printf("\n    example %s: exit %d", e->d_name, r.status);
        const char *want = NULL;
        for (size_t i = 0; i < sizeof known_examples / sizeof known_examples[0]; i++)
            if (strcmp(known_examples[i].name, e->d_name) == 0) {
                want = known_examples[i].out;
                known++;
            }
        EXPECT(&r, 0, want);
        CU_ASSERT(r.out_len > 0);
        CU_ASSERT_PTR_NULL(strstr(r.out, "FAILED"));
        run_free(&r);
        ran++;
    }
    closedir(d);
    printf("\n    %zu example programs ran\n", ran);
    CU_ASSERT_EQUAL(known, sizeof known_examples / sizeof known_examples[0]);

    /* Every examples/NAME.c has its program. */
    const char *src = getenv("VMMEM_SOURCE_ROOT");
    if (src == NULL)
        return;
    char sdir[4200];
    snprintf(sdir, sizeof sdir, "%s/examples", src);
    d = opendir(sdir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 3 || strcmp(e->d_name + n - 2, ".c") != 0)
            continue;
        char bin[4500];
        snprintf(bin, sizeof bin, "%s/%.*s", dir, (int)(n - 2), e->d_name);
        if (access(bin, X_OK) != 0)
            printf("\n    examples/%s has no program %s\n", e->d_name, bin);
        CU_ASSERT_EQUAL(access(bin, X_OK), 0);
    }
    closedir(d);
}


/* ---- file: defaults, read-only mapping --------------------------------- */

static void test_file_defaults(void)
{
    if (!file_cases())
        return;
    uint8_t img[16384];
    char path[512], cfg[700], want[800];
    tmp_path(path, sizeof path, "defaults.mem");
    make_image(path, img, sizeof img);
    struct run r;
    /* no size=: the whole file, or what follows offset= */
    snprintf(cfg, sizeof cfg, "file:addr=0,path=%s", path);
    VMMEM(&r, "info", cfg);
    EXPECT(&r, 0, NULL);
    OUT_HAS(&r, "1 region, 16 KiB (16384 bytes), highest address 0x3fff\n");
    /* read-only command: mapped read-only */
    OUT_HAS(&r, "  file      r     0x");
    run_free(&r);
    snprintf(cfg, sizeof cfg, "file:addr=1M,path=%s,offset=4K", path);
    VMMEM(&r, "info", cfg);
    EXPECT(&r, 0, NULL);
    OUT_HAS(&r, "1 region, 12 KiB (12288 bytes), highest address 0x102fff\n");
    run_free(&r);
    VMMEM(&r, "dump", cfg, "0x100100", "9");
    EXPECT(&r, 0, NULL);
    CU_ASSERT_EQUAL(r.err_len, 0);
    run_free(&r);
    snprintf(cfg, sizeof cfg, "file:addr=0x100000,path=%s", path);
    VMMEM(&r, "dump", cfg, "0x100100", "9");
    EXPECT(&r, 0, "00100100  6c 69 62 76 6d 6d 65 6d  21                       |libvmmem!|\n"
                  "00100109\n");
    run_free(&r);
    /* told otherwise: prot=rw stays */
    snprintf(cfg, sizeof cfg, "file:addr=0,path=%s,prot=rw", path);
    VMMEM(&r, "info", cfg);
    EXPECT(&r, 0, NULL);
    OUT_HAS(&r, "  file      rw    0x");
    run_free(&r);
    /* a writing command maps read-write (and the size default applies) */
    snprintf(cfg, sizeof cfg, "file:addr=0,path=%s", path);
    VMMEM(&r, "fill", "-q", cfg, "0x3ff0", "16", "0xee");
    EXPECT(&r, 0, "");
    run_free(&r);
    VMMEM(&r, "checksum", cfg, "0x3ff0", "16");
    snprintf(want, sizeof want, "%016" PRIx64 "\n", fnv_fill(0xee, 16));
    EXPECT(&r, 0, want);
    run_free(&r);
    /* the size default cannot pass the end of the file */
    VMMEM(&r, "dump", cfg, "0x3ff0", "17");
    EXPECT_FAIL(&r, 1, "vmmem dump");
    run_free(&r);
    /* a file opened read-only (an unprivileged user's view of a root-owned
     * file): the --help example works, no EACCES */
    if (geteuid() != 0) {
        CU_ASSERT_EQUAL(chmod(path, 0444), 0);
        VMMEM(&r, "checksum", cfg, "0", "16K");
        EXPECT(&r, 0, NULL);
        run_free(&r);
    } else {
        printf("\n    running as root: EACCES on a 0444 file not checked (root may write it)\n");
    }
    unlink(path);
}

/* ---- read, write, diff ------------------------------------------------- */

static void test_read_write_diff(void)
{
    if (!file_cases())
        return;
    uint8_t img[20480];
    char a[512], b[512], ca[700], cb[700];
    tmp_path(a, sizeof a, "a.mem");
    tmp_path(b, sizeof b, "b.mem");
    make_image(a, img, sizeof img);
    make_image(b, img, sizeof img);
    snprintf(ca, sizeof ca, "file:addr=0,path=%s", a);
    snprintf(cb, sizeof cb, "file:addr=0,path=%s", b);
    struct run r;
    VMMEM(&r, "diff", ca, cb);
    EXPECT(&r, 0, "0 pages differ, 0 only in A, 0 only in B, in 0 runs; 5 pages are the same\n");
    run_free(&r);

    /* write: across the page seam at 0x2000 and in page 4 */
    VMMEM(&r, "write", cb, "0x1ffe", "de:ad be-ef");
    EXPECT(&r, 0, "wrote 4 bytes [0x1ffe, 0x2001]\n");
    run_free(&r);
    VMMEM(&r, "write", "-q", cb, "0x4000", "ff");
    EXPECT(&r, 0, "");
    run_free(&r);
    /* typed reads in QEMU's xp layout, little- and big-endian */
    VMMEM(&r, "read", cb, "0x1ffc");
    EXPECT(&r, 0, "0000000000001ffc: 0xaddefdfc\n");
    run_free(&r);
    VMMEM(&r, "read", cb, "0x1ff8", "5");
    EXPECT(&r, 0, "0000000000001ff8: 0xfbfaf9f8 0xaddefdfc 0x0302efbe 0x07060504\n"
                  "0000000000002008: 0x0b0a0908\n");
    run_free(&r);
    VMMEM(&r, "read", "-t", "u8", cb, "0x1ffd", "10");
    EXPECT(&r, 0, "0000000000001ffd: 0xfd 0xde 0xad 0xbe 0xef 0x02 0x03 0x04\n"
                  "0000000000002005: 0x05 0x06\n");
    run_free(&r);
    VMMEM(&r, "read", "--type=u64", "--be", cb, "0x1ff8", "2");
    EXPECT(&r, 0, "0000000000001ff8: 0xf8f9fafbfcfddead 0xbeef020304050607\n");
    run_free(&r);
    VMMEM(&r, "read", "-t", "u16", cb, "0x4ffe", "1");
    EXPECT(&r, 0, "0000000000004ffe: 0xfffe\n");
    run_free(&r);
    VMMEM(&r, "read", "-t", "u16", cb, "0x4fff", "1"); /* runs past the end */
    EXPECT_FAIL(&r, 1, "vmmem read");
    run_free(&r);
    VMMEM(&r, "read", "-t", "u7", cb, "0");
    EXPECT_FAIL(&r, 2, "vmmem read");
    run_free(&r);
    VMMEM(&r, "write", cb, "0", "abc");
    EXPECT_FAIL(&r, 2, "vmmem write");
    run_free(&r);
    VMMEM(&r, "write", cb, "0x4fff", "0102"); /* nothing written */
    EXPECT_FAIL(&r, 1, "vmmem write");
    run_free(&r);
    VMMEM(&r, "write", "mmap:addr=0,size=4K,prot=r", "0", "01");
    EXPECT_FAIL(&r, 1, "vmmem write");
    ERR_HAS(&r, "read-only");
    run_free(&r);

    /* diff: the two changed runs, as pages; exit 3 */
    VMMEM(&r, "diff", ca, cb);
    EXPECT(&r, 3, "  [0x0000000000001000, 0x0000000000002fff]         2 pages  differ\n"
                  "  [0x0000000000004000, 0x0000000000004fff]         1 page   differ\n"
                  "3 pages differ, 0 only in A, 0 only in B, in 2 runs; 2 pages are the same\n");
    run_free(&r);
    VMMEM(&r, "diff", "--max", "1", ca, cb);
    EXPECT(&r, 3, "  [0x0000000000001000, 0x0000000000002fff]         2 pages  differ\n"
                  "  ... 1 more run (--max)\n"
                  "3 pages differ, 0 only in A, 0 only in B, in 2 runs; 2 pages are the same\n");
    run_free(&r);
    /* regions in one map only; a hole in both is skipped */
    char cb2[800];
    snprintf(cb2, sizeof cb2, "%s;mmap:addr=1G,size=8K", ca);
    VMMEM(&r, "diff", ca, cb2);
    EXPECT(&r, 3, "  [0x0000000040000000, 0x0000000040001fff]         2 pages  only in B\n"
                  "0 pages differ, 0 only in A, 2 only in B, in 1 run; 5 pages are the same\n");
    run_free(&r);
    VMMEM(&r, "diff", cb2, ca);
    EXPECT(&r, 3, NULL);
    OUT_HAS(&r, "2 pages  only in A\n");
    run_free(&r);
    /* a partly backed page is compared over what both back */
    VMMEM(&r, "diff", "mmap:addr=0,size=6K", "mmap:addr=0,size=4K;mmap:addr=4K,size=2K");
    EXPECT(&r, 0, "0 pages differ, 0 only in A, 0 only in B, in 0 runs; 2 pages are the same\n");
    run_free(&r);
    VMMEM(&r, "diff", ca);
    EXPECT_FAIL(&r, 2, "vmmem diff");
    run_free(&r);
    unlink(a);
    unlink(b);
}

/* ---- --qemu ------------------------------------------------------------ */

/* A sparse file of size bytes (the memory-backend file of a QEMU guest). */
static int sparse_file(const char *path, uint64_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    int rc = ftruncate(fd, (off_t)size);
    close(fd);
    return rc;
}

/* Guests of 2 to 4 GiB are mapped whole: not in a 32-bit process. */
static bool big_maps(void)
{
    if (sizeof(void *) < 8)
        printf("\n    32-bit host: gigabyte guest layouts cannot be mapped here (SKIPPED)\n");
    return sizeof(void *) >= 8;
}

static void test_qemu_layout(void)
{
    if (!file_cases() || !big_maps())
        return;
    static const struct {
        const char *machine;
        uint64_t ram;
        const char *want; /* the region lines of `info`, after the header */
    } cases[] = {
        /* q35: below 2.75 GiB all low; from it 2 GiB low, the rest at 4 GiB */
        {"q35", 2ull << 30, "0x0000000000000000  0x000000007fffffff      2 GiB  file"},
        {"q35", (11ull << 28) - 4096, "0x0000000000000000  0x00000000afffefff"},
        {"q35", 11ull << 28, "0x0000000100000000  0x000000012fffffff    768 MiB  file"},
        {"q35", 4ull << 30, "0x0000000100000000  0x000000017fffffff      2 GiB  file"},
        /* pc: below 3.5 GiB all low; from it 3 GiB low, the rest at 4 GiB */
        {"pc", 3ull << 30, "0x0000000000000000  0x00000000bfffffff      3 GiB  file"},
        {"pc", (7ull << 29) - 4096, "0x0000000000000000  0x00000000dfffefff"},
        {"pc", 7ull << 29, "0x0000000100000000  0x000000011fffffff    512 MiB  file"},
        {"pc", 4ull << 30, "0x0000000000000000  0x00000000bfffffff      3 GiB  file"},
    };
    char path[512];
    tmp_path(path, sizeof path, "guest.ram");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(sparse_file(path, cases[i].ram), 0);
        struct run r;
        VMMEM(&r, "info", "--qemu", cases[i].machine, path);
        EXPECT(&r, 0, NULL);
        if (strstr(r.out, cases[i].want) == NULL)
            printf("\n    %s %" PRIu64 " bytes: no \"%s\" in\n%s", cases[i].machine, cases[i].ram,
                   cases[i].want, r.out);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.out, cases[i].want));
        bool split = strstr(r.out, "2 regions") == r.out;
        CU_ASSERT_EQUAL(split, cases[i].ram >= (strcmp(cases[i].machine, "q35") == 0
                                                    ? (11ull << 28)
                                                    : (7ull << 29)));
        run_free(&r);
    }
    struct run r;
    VMMEM(&r, "info", "--qemu", "virt", path);
    EXPECT_FAIL(&r, 2, "vmmem info");
    run_free(&r);
    VMMEM(&r, "info", "--qemu", "q35", "/nonexistent/guest.ram");
    EXPECT_FAIL(&r, 1, "vmmem info");
    run_free(&r);
    unlink(path);
}

/* Does the shell find cmd? */
static bool have_program(const char *cmd)
{
    char sh[256];
    snprintf(sh, sizeof sh, "command -v %s >/dev/null 2>&1", cmd);
    return system(sh) == 0;
}

/*
 * Against QEMU itself: write patterns into a memory-backend file with
 * `vmmem write --qemu M`, start QEMU (stopped, -S) on that file, and check
 * that its monitor's `xp` prints exactly what `vmmem read --qemu M` prints
 * at both ends of the low and the high part.
 */
static void test_qemu_real(void)
{
    if (!file_cases() || !big_maps())
        return;
    if (!have_program("qemu-system-x86_64")) {
        printf("\n    qemu-system-x86_64 not found: layout not checked against QEMU "
               "(SKIPPED; Debian: apt-get install qemu-system-x86)\n");
        return;
    }
    static const struct {
        const char *machine;
        uint64_t ram, below;
    } cases[] = {{"q35", 3ull << 30, 2ull << 30}, {"pc", 4ull << 30, 3ull << 30}};
    char path[512], outp[512], cmd[4096];
    tmp_path(path, sizeof path, "qemu.ram");
    tmp_path(outp, sizeof outp, "qemu.out");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CU_ASSERT_EQUAL_FATAL(sparse_file(path, cases[c].ram), 0);
        uint64_t high = cases[c].ram - cases[c].below;
        uint64_t at[] = {0x1000, cases[c].below - 16, 1ull << 32, (1ull << 32) + high - 16};
        char xp[1024] = "", want[2048] = "";
        for (size_t i = 0; i < 4; i++) {
            char a[32], bytes[40];
            snprintf(a, sizeof a, "0x%" PRIx64, at[i]);
            snprintf(bytes, sizeof bytes, "%02zx%02zx%02zx%02zx%02zx%02zx%02zx%02zx%02zx", c, i,
                     i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, 0xa0 + i);
            struct run r;
            VMMEM(&r, "write", "--qemu", cases[c].machine, path, a, bytes);
            EXPECT(&r, 0, NULL);
            run_free(&r);
            VMMEM(&r, "read", "--qemu", cases[c].machine, "-t", "u64", path, a, "2");
            EXPECT(&r, 0, NULL);
            strncat(want, r.out, sizeof want - strlen(want) - 1);
            run_free(&r);
            size_t l = strlen(xp);
            snprintf(xp + l, sizeof xp - l, "xp /2xg %s\\n", a);
        }
        snprintf(cmd, sizeof cmd,
                 "printf '%squit\\n' | timeout 120 qemu-system-x86_64 -machine %s,memory-backend=ram "
                 "-object memory-backend-file,id=ram,size=%" PRIu64 ",mem-path=%s,share=on "
                 "-m %" PRIu64 "M -S -nodefaults -display none -accel tcg -monitor stdio "
                 "2>&1 | tr -d '\\r' | grep -a '^[0-9a-f]\\{16\\}: ' > %s",
                 xp, cases[c].machine, cases[c].ram, path, cases[c].ram >> 20, outp);
        int st = system(cmd);
        char got[2048] = "";
        FILE *f = fopen(outp, "r");
        if (f != NULL) {
            size_t n = fread(got, 1, sizeof got - 1, f);
            got[n] = '\0';
            fclose(f);
        }
        if (strcmp(got, want) != 0)
            printf("\n    %s: QEMU (status %d) printed\n%s    vmmem read printed\n%s",
                   cases[c].machine, st, got, want);
        CU_ASSERT_STRING_EQUAL(got, want);
        unlink(outp);
        unlink(path);
    }
}

static const struct vt_test cli_tests[] = {
    {"help on every command", test_help},
    {"usage errors exit 2", test_usage_errors},
    {"bad config strings exit 1 quoting the library", test_bad_config},
    {"providers", test_providers},
    {"info region table", test_info},
    {"dump of anonymous memory", test_dump_mmap},
    {"unbacked ranges exit 1", test_unbacked},
    {"checksum is FNV-1a 64", test_checksum},
    {"fill", test_fill},
    {"load", test_load},
    {"demo", test_demo},
    {"map-on-access region", test_map_on_access},
    {"file-backed dump/info/checksum", test_file_dump},
    {"file-backed fill/load", test_file_fill_load},
    {"file: size defaults to the file's; read-only commands map read-only", test_file_defaults},
    {"read, write, diff", test_read_write_diff},
    {"--qemu q35|pc layouts", test_qemu_layout},
    {"--qemu against a real QEMU", test_qemu_real},
    {NULL, NULL},
};

static const struct vt_test example_tests[] = {
    {"every examples/ program runs", test_examples},
    {NULL, NULL},
};

static const struct vt_suite cli_suite = {"vmmem command", suite_init, suite_cleanup, cli_tests};
static const struct vt_suite example_suite = {"examples", suite_init, suite_cleanup,
                                              example_tests};

int main(void)
{
    const struct vt_suite *const suites[] = {&cli_suite, &example_suite, NULL};
    return vt_main(suites);
}

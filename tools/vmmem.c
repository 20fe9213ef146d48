/*
 * vmmem - inspect and prepare guest memory from the command line.
 *
 *     vmmem providers | info CONFIG | dump CONFIG ADDR LEN | load CONFIG FILE ADDR
 *     vmmem fill CONFIG ADDR LEN BYTE | checksum CONFIG ADDR LEN | demo
 *     vmmem read CONFIG ADDR [COUNT] | write CONFIG ADDR HEXBYTES | diff CONFIG CONFIG
 *     (--qemu q35|pc: CONFIG is a QEMU memory-backend file)
 *
 * Uses only the public API (<vmmem/vmmem.h>).  Conventions: exit status 0
 * ok, 1 the operation failed, 2 usage error; errors go to stderr and quote
 * the library's detail message; nothing is written to stdout when a command
 * fails (output is buffered until the command has succeeded; only `dump`
 * streams, after checking that the whole range is backed).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vmmem/vmmem.h>

/* Windows (mingw-w64): C99 printf is gnu_printf there; files and stdout are
 * binary (no CRLF translation of dumps); the search path list uses ';';
 * no open_memstream (out_open below uses a temporary file instead). */
#if defined(_WIN32)
#define TOOL_PRINTF gnu_printf
#define OPEN_FLAGS (O_RDONLY | O_BINARY)
#define PATH_LIST_SEP ";"
#include <io.h>
#else
#define TOOL_PRINTF printf
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC)
#define PATH_LIST_SEP ":"
#endif

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define CHUNK (1u << 20) /* bytes per library call in dump/fill/checksum/load */
#define PROGRESS_MIN (8u << 20) /* load shows progress on a terminal from this size */

/* ---- help texts -------------------------------------------------------- */

static const char main_help[] =
    "Usage: vmmem COMMAND [ARGS...]\n"
    "       vmmem COMMAND --help\n"
    "       vmmem --help | --version\n"
    "\n"
    "Inspect and prepare the memory of a virtual machine through libvmmem.  A\n"
    "CONFIG string lays out the guest-physical memory map and names, for each\n"
    "region, the provider plugin that backs it: anonymous memory (mmap), a\n"
    "memory file or snapshot (file), Xen domains (xen-foreign, xen-grant), or\n"
    "any installed out-of-tree provider.\n"
    "\n"
    "Commands:\n"
    "  providers [-v]               list the providers found and where they came from\n"
    "  info CONFIG                  build the map and print its region table\n"
    "  dump CONFIG ADDR LEN         hexdump guest memory (--raw: the bytes themselves)\n"
    "  load CONFIG FILE ADDR        copy a file (kernel, initrd, firmware) into guest memory\n"
    "  fill CONFIG ADDR LEN BYTE    set every byte of a guest range to BYTE\n"
    "  checksum CONFIG ADDR LEN     FNV-1a 64-bit checksum of a guest range\n"
    "  read CONFIG ADDR [COUNT]     typed values, like QEMU's xp (-t u8|u16|u32|u64, --be)\n"
    "  write CONFIG ADDR HEXBYTES   write bytes given in hex\n"
    "  diff CONFIG_A CONFIG_B       the pages that differ between two images, as runs\n"
    "  demo                         walk through the library on a built-in map\n"
    "  help [COMMAND]               this text, or a command's\n"
    "\n"
    "CONFIG:\n"
    "  Regions separated by ';', each PROVIDER:OPTION,OPTION,... where every\n"
    "  region needs addr= and size=, e.g.\n"
    "      mmap:addr=0,size=2G;file:addr=4G,size=1G,path=/dev/shm/vm0.mem\n"
    "  Blanks around tokens are ignored.  A value holding ',', ';', '\\' or a\n"
    "  blank (a path) escapes it with a backslash: path=/tmp/a\\,b.  Quote the\n"
    "  whole string for the shell.  `vmmem providers -v` lists every provider's\n"
    "  options.  Regions may touch; the gaps between them are holes.\n"
    "\n"
    "  Regions of the file provider may leave out size=: the file's size\n"
    "  from offset= on.  The commands that only read (info, dump, checksum,\n"
    "  read, diff) map file regions read-only unless CONFIG says prot=rw.\n"
    "\n"
    "QEMU guests (--qemu q35|pc, before or after the command's arguments):\n"
    "  CONFIG is then the memory-backend file of an x86 QEMU guest, e.g.\n"
    "      qemu-system-x86_64 -machine q35,memory-backend=ram -m 4G \\\n"
    "          -object memory-backend-file,id=ram,size=4G,mem-path=/dev/shm/g,share=on\n"
    "  and the map is the guest-physical layout QEMU gives that RAM: the\n"
    "  part below the PCI hole from 0, the rest from 4 GiB (q35: 2 GiB below\n"
    "  when the RAM is 2.75 GiB or more; pc: 3 GiB below from 3.5 GiB).\n"
    "\n"
    "Numbers (ADDR, LEN, BYTE):\n"
    "  decimal or 0x hexadecimal, with an optional K, M, G or T suffix (powers\n"
    "  of 1024): 4096, 0x1000, 4K, 2G, 0x10M.\n"
    "\n"
    "Exit status:\n"
    "  0  success (diff: the images are the same)\n"
    "  1  the operation failed: bad CONFIG, unbacked range, unreadable file, ...\n"
    "  2  usage error: unknown command or option, wrong arguments, bad number\n"
    "  3  diff: the images differ\n"
    "  Errors are reported on stderr with the library's detail message; a\n"
    "  command that fails writes nothing to stdout.\n"
    "\n"
    "Environment:\n"
    "  VMMEM_PLUGIN_PATH  colon-separated absolute directories searched for\n"
    "                     provider plugins (*.so) before the installed plugin\n"
    "                     directory; relative entries are ignored.\n"
    "\n"
    "Examples:\n"
    "  vmmem demo\n"
    "  vmmem providers\n"
    "  vmmem info 'file:addr=0,path=vm0.mem'\n"
    "  vmmem read --qemu q35 -t u64 /dev/shm/g 0x100000000 4\n"
    "  vmmem dump 'file:addr=0,size=1G,path=vm0.mem' 0x7c00 512\n"
    "  vmmem load 'file:addr=0,size=1G,path=vm0.mem' bzImage 0x100000\n"
    "  vmmem checksum 'file:addr=0,size=1G,path=vm0.mem' 0 1G\n"
    "\n"
    "See vmmem(1) and `vmmem COMMAND --help` for each command.\n";

static const char providers_help[] =
    "Usage: vmmem providers [-v|--verbose]\n"
    "\n"
    "Load every provider plugin on the search path and list the providers found:\n"
    "name, provider ABI version, the plugin file it came from and its\n"
    "description.  Then the directories searched, in order, the plugin files\n"
    "shadowed by a file of the same name earlier on the path (not loaded: the\n"
    "earlier one is an override), and every plugin file that failed to load,\n"
    "with the reason (a failed plugin does not make the command fail).\n"
    "\n"
    "Options:\n"
    "  -v, --verbose  also list each provider's CONFIG options\n"
    "\n"
    "Search path: the absolute directories of VMMEM_PLUGIN_PATH, then the\n"
    "installed plugin directory.\n";

static const char info_help[] =
    "Usage: vmmem info CONFIG\n"
    "\n"
    "Build the guest memory map from CONFIG and print it: the number of regions,\n"
    "total size and highest address, then one line per region in address\n"
    "order: guest range (first and last byte), size, provider, protection\n"
    "(r or rw), host address (or \"map-on-access\" for regions mapped per\n"
    "access), whether the memory is on hugetlbfs (yes, no or ?), and the\n"
    "backing file with the region's offset in it (- for none).\n"
    "\n"
    "Example:\n"
    "  vmmem info 'mmap:addr=0,size=4K;mmap:addr=0x1000,size=4K;mmap:addr=0x3000,size=4K'\n";

static const char dump_help[] =
    "Usage: vmmem dump [--raw] [-v|--all] CONFIG ADDR LEN\n"
    "\n"
    "Print LEN bytes of guest memory from guest-physical address ADDR as a hex\n"
    "dump in the layout of `hexdump -C`: the guest address (8 hex digits, 16\n"
    "when the range reaches past 4 GiB), 16 bytes in hex, the same bytes as\n"
    "ASCII ('.' for others).  A run of lines equal to the one before is shown\n"
    "as a single '*'; the last line is the address just past the range.  The\n"
    "whole range must be backed (it may span touching regions), else nothing\n"
    "is printed and the exit status is 1.\n"
    "\n"
    "With the file provider this inspects a VM's memory file or snapshot\n"
    "(read-only; size= defaults to the file's size):\n"
    "  vmmem dump 'file:addr=0,path=vm0.mem' 0x7c00 0x200\n"
    "\n"
    "Options:\n"
    "  --raw       write the bytes themselves to stdout (for files and pipes)\n"
    "  -v, --all   print every line; do not fold repeated lines into '*'\n";

static const char load_help[] =
    "Usage: vmmem load [-q|--quiet] [--progress|--no-progress] CONFIG FILE ADDR\n"
    "\n"
    "Copy FILE (a kernel, an initrd, a firmware blob; a regular file or a\n"
    "block device) into guest memory at guest-physical address ADDR, with\n"
    "read(2) straight into guest memory (vmmem_read_from_fd).  The whole range\n"
    "[ADDR, ADDR + size of FILE) must be backed and writable; if it is not, the\n"
    "command refuses before writing anything and exits with status 1.\n"
    "\n"
    "On success prints one line: the bytes loaded, the guest range they now\n"
    "occupy, and the FNV-1a 64 checksum of that range read back from guest\n"
    "memory (equal to `vmmem checksum` of the same range).  Progress is shown\n"
    "on stderr when stderr is a terminal and FILE is at least 8 MiB.\n"
    "\n"
    "Options:\n"
    "  -q, --quiet     print nothing on success\n"
    "  --progress      always show progress on stderr\n"
    "  --no-progress   never show progress\n"
    "\n"
    "Example:\n"
    "  vmmem load 'file:addr=0,size=1G,path=vm0.mem' bzImage 0x100000\n";

static const char fill_help[] =
    "Usage: vmmem fill [-q|--quiet] CONFIG ADDR LEN BYTE\n"
    "\n"
    "Set every byte of [ADDR, ADDR + LEN) of guest memory to BYTE (0..255,\n"
    "decimal or 0x hex).  The whole range must be backed and writable, else\n"
    "nothing is written and the exit status is 1.  On success prints one line:\n"
    "the range filled and the FNV-1a 64 checksum of it read back from guest\n"
    "memory.  With an anonymous (mmap) region the memory is gone when the\n"
    "command exits; with the file provider the file keeps the bytes (when the\n"
    "region is a shared mapping).\n"
    "\n"
    "Options:\n"
    "  -q, --quiet   print nothing on success\n"
    "\n"
    "Example:\n"
    "  vmmem fill 'file:addr=0,size=1G,path=vm0.mem' 0x100000 1M 0\n";

static const char checksum_help[] =
    "Usage: vmmem checksum CONFIG ADDR LEN\n"
    "\n"
    "Print the checksum of LEN bytes of guest memory from ADDR: 64-bit FNV-1a\n"
    "(offset basis 0xcbf29ce484222325, prime 0x100000001b3, one byte at a\n"
    "time, in address order), as 16 lowercase hex digits and a newline.  It\n"
    "depends only on the bytes, not on how they are split into regions, so it\n"
    "compares two memory images or a memory image and a file.  The whole\n"
    "range must be backed, else the exit status is 1.  (LEN 0 prints the\n"
    "offset basis.)\n"
    "\n"
    "Example:\n"
    "  a=$(vmmem checksum 'file:addr=0,size=1G,path=a.mem' 0 1G)\n"
    "  b=$(vmmem checksum 'file:addr=0,size=1G,path=b.mem' 0 1G)\n"
    "  [ \"$a\" = \"$b\" ] && echo same\n";

static const char demo_config[] =
    "mmap:addr=0,size=4K;mmap:addr=0x1000,size=4K;mmap:addr=0x3000,size=4K";

static const char demo_help[] =
    "Usage: vmmem demo\n"
    "\n"
    "Show the library at work on the built-in default map\n"
    "    mmap:addr=0,size=4K;mmap:addr=0x1000,size=4K;mmap:addr=0x3000,size=4K\n"
    "(two adjacent 4 KiB anonymous regions at 0 and 0x1000, and a third at\n"
    "0x3000 after a hole): runs the vm-memory README's two examples (write the\n"
    "five bytes 1 2 3 4 5 at 0xffc, across the seam of the adjacent regions,\n"
    "and read them back), shows what a write into the hole at 0x2000 and a\n"
    "write that runs into it return, turns dirty-page tracking on, writes, and\n"
    "prints the region table and which pages are dirty.  Exits 1 if anything\n"
    "does not behave as described.  Takes no arguments.\n";

static const char help_help[] =
    "Usage: vmmem help [COMMAND]\n"
    "\n"
    "Print the overview (vmmem --help) or a command's help (vmmem COMMAND --help).\n";

/* ---- error reporting --------------------------------------------------- */

static const char *cmd_name = "vmmem"; /* "vmmem dump" once a command runs */

static int usage_error(const char *fmt, ...) __attribute__((format(TOOL_PRINTF, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cmd_name);
    return EXIT_USAGE;
}

/* An operation failed with library code rc: quote the library's detail. */
static int lib_error(int rc, const char *fmt, ...) __attribute__((format(TOOL_PRINTF, 2, 3)));
static int lib_error(int rc, const char *fmt, ...)
{
    /* Copy first: formatting below must not depend on a later library call. */
    char detail[sizeof vmmem_last_error()->message];
    snprintf(detail, sizeof detail, "%s", vmmem_last_message());
    va_list ap;
    fprintf(stderr, "%s: ", cmd_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s (%s)\n", detail[0] ? detail : vmmem_strerror(rc), vmmem_err_name(rc));
    return EXIT_FAIL;
}

/* An operation failed for a reason of our own (errno or plain text). */
static int op_error(const char *fmt, ...) __attribute__((format(TOOL_PRINTF, 1, 2)));
static int op_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

/* ---- buffered stdout ---------------------------------------------------- */

/* Commands print into a memory stream that reaches stdout only on success. */
struct outbuf {
    FILE *f;
    char *data;
    size_t len;
};

static int out_open(struct outbuf *o)
{
    o->data = NULL;
    o->len = 0;
#if defined(_WIN32)
    o->f = tmpfile();
#else
    o->f = open_memstream(&o->data, &o->len);
#endif
    if (o->f == NULL)
        return op_error("cannot buffer output: %s", strerror(errno));
    return 0;
}

/* Close the buffer; on status 0 copy it to stdout (a failed write is 1). */
static int out_close(struct outbuf *o, int status)
{
#if defined(_WIN32)
    /* Read the temporary file back into data/len. */
    long end = fseek(o->f, 0, SEEK_END) == 0 ? ftell(o->f) : -1;
    if (end > 0 && (o->data = malloc((size_t)end)) != NULL) {
        rewind(o->f);
        o->len = fread(o->data, 1, (size_t)end, o->f);
    } else if (end != 0 && status == EXIT_OK) {
        status = op_error("cannot buffer output");
    }
#endif
    if (fclose(o->f) != 0 && status == EXIT_OK)
        status = op_error("cannot buffer output: %s", strerror(errno));
    if (status == EXIT_OK && o->len > 0) {
        if (fwrite(o->data, 1, o->len, stdout) != o->len || fflush(stdout) != 0)
            status = op_error("writing to stdout: %s", strerror(errno));
    }
    free(o->data);
    return status;
}

/* ---- argument parsing ---------------------------------------------------- */

struct flag {
    const char *long_name; /* "--raw" */
    char short_name;       /* 'v' or 0 */
    bool *set;
};

/*
 * Split argv (after the command name) into flags and positional arguments.
 * Returns 0, EXIT_USAGE after reporting, or -1 when --help was given (the
 * caller prints its help).  "--" ends the options.
 */
static int parse_args(int argc, char **argv, const struct flag *flags, char **pos, int max_pos,
                      int *npos)
{
    bool only_pos = false;
    *npos = 0;
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--") == 0)
            break;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            bool found = false;
            for (const struct flag *f = flags; f && f->long_name; f++) {
                if (strcmp(a, f->long_name) == 0 ||
                    (f->short_name && a[1] == f->short_name && a[2] == '\0')) {
                    *f->set = true;
                    found = true;
                }
            }
            if (!found)
                return usage_error("unknown option '%s'", a);
            continue;
        }
        if (*npos == max_pos)
            return usage_error("unexpected argument '%s'", a);
        pos[(*npos)++] = argv[i];
    }
    return 0;
}

/* Parse a number argument; reports a usage error (2) with the library's message. */
static int parse_number(const char *what, const char *text, uint64_t *out)
{
    int rc = vmmem_parse_size(text, out);
    if (rc < 0) {
        char detail[sizeof vmmem_last_error()->message];
        snprintf(detail, sizeof detail, "%s", vmmem_last_message());
        return usage_error("bad %s '%s': %s", what, text, detail);
    }
    return 0;
}

/* ---- shared helpers ------------------------------------------------------ */

/* ---- the config a command maps: QEMU layouts, file sizes, read-only ---- */

/* --qemu MACHINE (main: taken out of argv before the command parses it). */
static const char *qemu_machine;

/* A growing string. */
struct str {
    char *p;
    size_t len, cap;
};

static bool str_add(struct str *s, const char *t, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *np = realloc(s->p, cap);
        if (np == NULL)
            return false;
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = '\0';
    return true;
}

static bool str_fmt(struct str *s, const char *fmt, ...) __attribute__((format(TOOL_PRINTF, 2, 3)));
static bool str_fmt(struct str *s, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < sizeof buf && str_add(s, buf, (size_t)n);
}

/* A path as a config value: ',', ';', '\\' and blanks escaped. */
static bool str_add_value(struct str *s, const char *v)
{
    for (; *v; v++) {
        if (strchr(",;\\ \t\r\n", *v) != NULL && !str_add(s, "\\", 1))
            return false;
        if (!str_add(s, v, 1))
            return false;
    }
    return true;
}

/*
 * The guest-physical layout QEMU gives the RAM of an x86 machine, as its
 * pc_q35.c and pc_piix.c compute it (default max-ram-below-4g, current
 * machine types): RAM below the PCI hole from 0, the rest from 4 GiB.
 *   q35: RAM of 2.75 GiB or more puts 2 GiB below 4 GiB, else all of it;
 *   pc:  RAM of 3.5 GiB or more puts 3 GiB below 4 GiB, else all of it.
 * The memory-backend file holds the low part, then the high part.
 */
static void qemu_split(bool q35, uint64_t ram, uint64_t *below, uint64_t *above)
{
    uint64_t lowmem;
    if (q35) {
        lowmem = ram >= UINT64_C(0xb0000000) ? UINT64_C(0x80000000) : UINT64_C(0xb0000000);
    } else {
        lowmem = UINT64_C(0xe0000000); /* max-ram-below-4g's default */
        if (ram >= lowmem)
            lowmem = UINT64_C(0xc0000000); /* gigabyte-aligned split */
    }
    *below = ram >= lowmem ? lowmem : ram;
    *above = ram - *below;
}

/* The config of a QEMU memory-backend file at path (qemu_machine's layout). */
static int qemu_config(const char *path, struct str *out)
{
    bool q35 = strcmp(qemu_machine, "q35") == 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return op_error("--qemu %s: cannot stat the memory-backend file '%s': %s", qemu_machine,
                        path, strerror(errno));
    if (st.st_size <= 0)
        return op_error("--qemu %s: '%s' is empty (the memory-backend file of a running "
                        "QEMU has the size of the guest's RAM)",
                        qemu_machine, path);
    uint64_t below, above;
    qemu_split(q35, (uint64_t)st.st_size, &below, &above);
    bool ok = str_fmt(out, "file:addr=0,size=0x%" PRIx64 ",path=", below) &&
              str_add_value(out, path);
    if (ok && above > 0)
        ok = str_fmt(out, ";file:addr=0x100000000,size=0x%" PRIx64 ",offset=0x%" PRIx64 ",path=",
                     above, below) &&
             str_add_value(out, path);
    return ok ? 0 : op_error("out of memory");
}

/* The unescaped value of an option's raw text [p, p+n). */
static char *unescape(const char *p, size_t n)
{
    char *v = malloc(n + 1), *d = v;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n)
            i++;
        *d++ = p[i];
    }
    *d = '\0';
    return v;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The end of the token from p: the first unescaped character of stops. */
static const char *token_end(const char *p, const char *stops)
{
    for (; *p && strchr(stops, *p) == NULL; p++)
        if (*p == '\\' && p[1] != '\0')
            p++;
    return p;
}

/* Does the provider accept key?  (Unknown providers: let the library say.) */
static bool provider_has_key(const char *name, const char *key)
{
    const struct vmmem_provider *p = vmmem_registry_find(vmmem_default_registry(), name);
    for (const struct vmmem_option_desc *d = p ? p->options : NULL; d && d->key; d++)
        if (strcmp(d->key, key) == 0)
            return true;
    return false;
}

/*
 * Rewrite config for a command: regions of the "file" provider without
 * size= get the size of their file from offset= on, and, for read-only
 * commands, regions whose provider takes prot= and that do not set it get
 * prot=r (so a read-only file or fd can be inspected; not "mmap", whose
 * fresh anonymous memory has nothing to protect).  The rest is copied as
 * written; the library checks it (its message then quotes the rewritten
 * string, which error messages show beside the original).
 */
static int prepare_config(const char *config, bool readonly, struct str *out)
{
    const char *p = config;
    while (*p) {
        const char *rs = p, *re = token_end(p, ";");
        const char *colon = token_end(rs, ":;");
        char name[64] = "";
        const char *ns = rs, *ne = colon;
        while (ns < ne && is_blank(*ns))
            ns++;
        while (ne > ns && is_blank(ne[-1]))
            ne--;
        if (*colon == ':' && (size_t)(ne - ns) < sizeof name) {
            memcpy(name, ns, (size_t)(ne - ns));
            name[ne - ns] = '\0';
        }
        bool has_size = false, has_prot = false, create = false;
        char *path = NULL, *offset = NULL, *fd = NULL;
        for (const char *o = *colon == ':' ? colon + 1 : re; o < re;) {
            const char *oe = token_end(o, ",;");
            const char *ks = o, *eq = token_end(o, "=,;");
            while (ks < eq && is_blank(*ks))
                ks++;
            const char *ke = eq > oe ? oe : eq;
            while (ke > ks && is_blank(ke[-1]))
                ke--;
            size_t kl = (size_t)(ke - ks);
            const char *vs = eq < oe && *eq == '=' ? eq + 1 : oe;
            while (vs < oe && is_blank(*vs))
                vs++;
            const char *ve = oe;
            while (ve > vs && is_blank(ve[-1]) && !(ve - 1 > vs && ve[-2] == '\\'))
                ve--;
            char **want = NULL;
            if (kl == 4 && memcmp(ks, "size", 4) == 0)
                has_size = true;
            else if (kl == 4 && memcmp(ks, "prot", 4) == 0)
                has_prot = true;
            else if (kl == 6 && memcmp(ks, "create", 6) == 0)
                create = true;
            else if (kl == 4 && memcmp(ks, "path", 4) == 0)
                want = &path;
            else if (kl == 6 && memcmp(ks, "offset", 6) == 0)
                want = &offset;
            else if (kl == 2 && memcmp(ks, "fd", 2) == 0)
                want = &fd;
            if (want != NULL && *want == NULL)
                *want = unescape(vs, (size_t)(ve - vs));
            o = *oe == ',' ? oe + 1 : oe;
        }
        const char *te = re;
        while (te > rs && is_blank(te[-1]))
            te--;
        bool ok = (out->len == 0 || str_add(out, ";", 1)) && str_add(out, rs, (size_t)(te - rs));
        if (ok && strcmp(name, "file") == 0 && !has_size && (path != NULL || fd != NULL)) {
            /* size= defaults to the rest of the file from offset= */
            struct stat st;
            uint64_t off = 0;
            bool got = fd != NULL ? fstat(atoi(fd), &st) == 0 : stat(path, &st) == 0;
            if (got && (offset == NULL || vmmem_parse_size(offset, &off) == 0) &&
                (uint64_t)st.st_size > off)
                ok = str_fmt(out, ",size=0x%" PRIx64, (uint64_t)st.st_size - off);
        }
        /* (Anonymous memory has nothing to protect: mmap stays as written.) */
        if (ok && readonly && !has_prot && !create && name[0] && strcmp(name, "mmap") != 0 &&
            provider_has_key(name, "prot"))
            ok = str_add(out, ",prot=r", 7);
        free(path);
        free(offset);
        free(fd);
        if (!ok)
            return op_error("out of memory");
        p = *re == ';' ? re + 1 : re;
    }
    if (out->p == NULL && !str_add(out, "", 0))
        return op_error("out of memory");
    return 0;
}

/*
 * Build the map a command works on.  readonly: the command only reads
 * (info, dump, checksum, read, diff), so regions map read-only unless the
 * CONFIG says prot=.  With --qemu, config is a QEMU memory-backend file.
 */
static int build_map_mode(const char *config, bool readonly, vmmem_map **m)
{
    struct str q = {0}, eff = {0};
    int rc = 0;
    if (qemu_machine != NULL && (rc = qemu_config(config, &q)) != 0) {
        free(q.p);
        return rc;
    }
    const char *text = q.p ? q.p : config;
    if ((rc = prepare_config(text, readonly, &eff)) == 0) {
        int e = vmmem_map_from_config(m, NULL, eff.p, NULL);
        if (e < 0 && strcmp(eff.p, config) != 0)
            rc = lib_error(e, "cannot build the memory map from '%s' (as '%s')", config, eff.p);
        else if (e < 0)
            rc = lib_error(e, "cannot build the memory map from '%s'", config);
    }
    free(q.p);
    free(eff.p);
    return rc;
}

static int build_map(const char *config, vmmem_map **m)
{
    return build_map_mode(config, false, m);
}

/*
 * Refuse (status 1, before touching anything) unless every byte of
 * [addr, addr+len) is backed; names the first unbacked byte and quotes the
 * library's message for it.
 */
static int check_backed(const vmmem_map *m, uint64_t addr, uint64_t len, const char *why)
{
    if (vmmem_map_check_range(m, addr, len))
        return 0;
    vmmem_gaddr_t last;
    if (vmmem_addr_last(addr, len, &last) < 0) /* inline: sets no library detail */
        return op_error("%sthe range 0x%" PRIx64 " + 0x%" PRIx64 " runs past the end of the "
                        "guest address space (%s)", why, addr, len,
                        vmmem_err_name(VMMEM_EOVERFLOW));
    /* Walk the touching regions from addr to the first hole. */
    uint64_t hole = addr, off;
    const vmmem_region *r;
    while ((r = vmmem_map_find(m, hole, &off)) != NULL) {
        uint64_t rest = vmmem_region_size(r) - off; /* >= 1 */
        if (rest - 1 >= last - hole)
            return op_error("%s[0x%" PRIx64 ", 0x%" PRIx64 "] is not fully backed", why, addr,
                            last); /* not reached: check_range and find disagree */
        hole += rest;
    }
    vmmem_gaddr_t dummy;
    int rc = vmmem_map_checked_offset(m, hole, 0, &dummy); /* for the library's detail */
    if (rc == 0)
        return op_error("%s[0x%" PRIx64 ", 0x%" PRIx64 "] is not fully backed", why, addr, last);
    return lib_error(rc, "%s[0x%" PRIx64 ", 0x%" PRIx64 "] is not fully backed: the first "
                     "unbacked byte is 0x%" PRIx64, why, addr, last, hole);
}

/* Refuse (status 1) unless every region of a backed range is writable. */
static int check_writable(const vmmem_map *m, uint64_t addr, uint64_t len, const char *why)
{
    for (uint64_t a = addr, left = len; left > 0;) {
        uint64_t off;
        const vmmem_region *r = vmmem_map_find(m, a, &off);
        if (r == NULL)
            return check_backed(m, addr, len, why);
        struct vmmem_region_info ri;
        vmmem_region_get_info(r, &ri);
        if (!(ri.prot & VMMEM_PROT_WRITE))
            return op_error("%sregion [0x%" PRIx64 ", 0x%" PRIx64 "] is read-only (%s)", why,
                            ri.start, ri.last, vmmem_err_name(VMMEM_EREAD_ONLY));
        uint64_t rest = ri.size - off;
        if (rest >= left)
            break;
        a += rest;
        left -= rest;
    }
    return 0;
}

#define FNV_BASIS UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* FNV-1a 64 of a backed guest range, read through the library. */
static int checksum_range(const vmmem_map *m, uint64_t addr, uint64_t len, uint8_t *buf,
                          uint64_t *out)
{
    uint64_t h = FNV_BASIS;
    while (len > 0) {
        size_t n = len < CHUNK ? (size_t)len : CHUNK;
        int rc = vmmem_read_slice(m, addr, buf, n);
        if (rc < 0)
            return lib_error(rc, "reading %zu bytes at 0x%" PRIx64, n, addr);
        h = fnv1a(h, buf, n);
        addr += n;
        len -= n;
    }
    *out = h;
    return 0;
}

/* "4 KiB" when exact in a binary unit, else "1234 B". */
static const char *fmt_size(uint64_t v, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (v != 0 && (v & 1023) == 0 && u < 6) {
        v >>= 10;
        u++;
    }
    snprintf(buf, cap, "%" PRIu64 " %s", v, units[u]);
    return buf;
}

static const char *fmt_prot(int prot)
{
    switch (prot & VMMEM_PROT_RW) {
    case VMMEM_PROT_RW: return "rw";
    case VMMEM_PROT_READ: return "r";
    case VMMEM_PROT_WRITE: return "w";
    default: return "-";
    }
}

/* The region table shared by `info` and `demo`. */
static void print_regions(FILE *f, const vmmem_map *m)
{
    size_t n = vmmem_map_num_regions(m);
    int pw = (int)strlen("PROVIDER");
    for (size_t i = 0; i < n; i++) {
        struct vmmem_region_info ri;
        vmmem_region_get_info(vmmem_map_region(m, i), &ri);
        int l = ri.provider ? (int)strlen(ri.provider) : 1;
        if (l > pw)
            pw = l;
    }
    fprintf(f, "  #  %-18s  %-18s  %9s  %-*s  PROT  %-18s  HUGETLBFS  BACKING\n", "START", "LAST",
            "SIZE", pw, "PROVIDER", "HOST");
    for (size_t i = 0; i < n; i++) {
        struct vmmem_region_info ri;
        char sz[32], host[32];
        vmmem_region_get_info(vmmem_map_region(m, i), &ri);
        if (ri.host != NULL)
            snprintf(host, sizeof host, "%p", ri.host);
        else
            snprintf(host, sizeof host, "map-on-access");
        fprintf(f, "%3zu  0x%016" PRIx64 "  0x%016" PRIx64 "  %9s  %-*s  %-4s  %-18s  %-9s  ", i,
                ri.start, ri.last, fmt_size(ri.size, sz, sizeof sz), pw,
                ri.provider ? ri.provider : "?", fmt_prot(ri.prot), host,
                ri.hugetlbfs > 0 ? "yes" : ri.hugetlbfs == 0 ? "no" : "?");
        if (ri.file != NULL)
            fprintf(f, "%s @ 0x%" PRIx64 "\n", ri.file, ri.file_offset);
        else if (ri.fd >= 0)
            fprintf(f, "fd %d @ 0x%" PRIx64 "\n", ri.fd, ri.file_offset);
        else
            fprintf(f, "-\n");
    }
}

static void print_map_summary(FILE *f, const vmmem_map *m)
{
    size_t n = vmmem_map_num_regions(m);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += vmmem_region_size(vmmem_map_region(m, i));
    char sz[32];
    fprintf(f, "%zu region%s, %s (%" PRIu64 " bytes), highest address 0x%" PRIx64 "\n", n,
            n == 1 ? "" : "s", fmt_size(total, sz, sizeof sz), total, vmmem_map_last_addr(m));
}

/* ---- providers ----------------------------------------------------------- */

static int cmd_providers(int argc, char **argv)
{
    bool verbose = false;
    const struct flag flags[] = {{"--verbose", 'v', &verbose}, {NULL, 0, NULL}};
    char *pos[1];
    int npos, rc = parse_args(argc, argv, flags, pos, 0, &npos);
    if (rc != 0)
        return rc < 0 ? (fputs(providers_help, stdout), EXIT_OK) : rc;

    vmmem_registry *reg = vmmem_default_registry();
    if (reg == NULL)
        return op_error("cannot create the provider registry");
    struct outbuf o;
    if (out_open(&o) != 0)
        return EXIT_FAIL;
    size_t n = vmmem_registry_count(reg);
    int nw = (int)strlen("NAME"), fw = (int)strlen("(built in)");
    for (size_t i = 0; i < n; i++) {
        struct vmmem_provider_info pi;
        if (vmmem_registry_get(reg, i, &pi) != 0)
            continue;
        if ((int)strlen(pi.name) > nw)
            nw = (int)strlen(pi.name);
        if (pi.file != NULL && (int)strlen(pi.file) > fw)
            fw = (int)strlen(pi.file);
    }
    fprintf(o.f, "%zu provider%s\n", n, n == 1 ? "" : "s");
    if (n > 0)
        fprintf(o.f, "  %-*s  ABI  %-*s  DESCRIPTION\n", nw, "NAME", fw, "FILE");
    for (size_t i = 0; i < n; i++) {
        struct vmmem_provider_info pi;
        rc = vmmem_registry_get(reg, i, &pi);
        if (rc < 0)
            return out_close(&o, lib_error(rc, "provider %zu", i));
        fprintf(o.f, "  %-*s  %3" PRIu32 "  %-*s  %s\n", nw, pi.name, pi.abi_version, fw,
                pi.file ? pi.file : "(built in)", pi.description ? pi.description : "");
        if (!verbose)
            continue;
        const struct vmmem_provider *p = vmmem_registry_find(reg, pi.name);
        const struct vmmem_option_desc *od = p ? p->options : NULL;
        fprintf(o.f, "      options: addr=ADDR (required), size=SIZE (required)\n");
        for (; od && od->key; od++) {
            bool flag = (od->flags & VMMEM_OPT_FLAG) != 0;
            char key[96];
            snprintf(key, sizeof key, "%s%s", od->key, flag ? "" : "=VALUE");
            fprintf(o.f, "        %-20s %s%s\n", key, od->help ? od->help : "",
                    (od->flags & VMMEM_OPT_REQUIRED) ? " (required)" : "");
        }
    }
    fprintf(o.f, "search path:\n");
    char *dirs = strdup(vmmem_plugin_dir());
    if (dirs == NULL)
        return out_close(&o, op_error("out of memory"));
    char *save = NULL;
    for (char *d = strtok_r(dirs, PATH_LIST_SEP, &save); d; d = strtok_r(NULL, PATH_LIST_SEP, &save))
        fprintf(o.f, "  %s\n", d);
    free(dirs);
    size_t ns = vmmem_registry_shadowed_count(reg);
    if (ns > 0)
        fprintf(o.f, "shadowed (a file of the same name was loaded first):\n");
    for (size_t i = 0; i < ns; i++) {
        struct vmmem_shadowed_plugin sp;
        if (vmmem_registry_shadowed(reg, i, &sp) == 0)
            fprintf(o.f, "  %s: not loaded; %s is used\n", sp.file, sp.loaded);
    }
    size_t nf = vmmem_registry_failure_count(reg);
    if (nf > 0)
        fprintf(o.f, "failed to load:\n");
    for (size_t i = 0; i < nf; i++) {
        struct vmmem_load_failure lf;
        if (vmmem_registry_failure(reg, i, &lf) == 0)
            fprintf(o.f, "  %s: %s: %s\n", lf.file, vmmem_err_name(lf.code), lf.message);
    }
    return out_close(&o, EXIT_OK);
}

/* ---- info ---------------------------------------------------------------- */

static int cmd_info(int argc, char **argv)
{
    char *pos[1];
    int npos, rc = parse_args(argc, argv, NULL, pos, 1, &npos);
    if (rc != 0)
        return rc < 0 ? (fputs(info_help, stdout), EXIT_OK) : rc;
    if (npos != 1)
        return usage_error("expected CONFIG");
    vmmem_map *m;
    if ((rc = build_map_mode(pos[0], true, &m)) != 0)
        return rc;
    struct outbuf o;
    if (out_open(&o) != 0) {
        vmmem_map_unref(m);
        return EXIT_FAIL;
    }
    print_map_summary(o.f, m);
    print_regions(o.f, m);
    vmmem_map_unref(m);
    return out_close(&o, EXIT_OK);
}

/* ---- dump ---------------------------------------------------------------- */

struct hexdump {
    FILE *f;
    int width;         /* address digits */
    bool all;          /* no '*' folding */
    bool have_prev;    /* prev holds the last full line printed */
    bool starred;      /* a '*' was printed for the current run */
    uint8_t prev[16];
    uint8_t line[16];
    size_t fill;       /* bytes in line */
    uint64_t line_addr;
};

static void hd_emit(struct hexdump *h)
{
    if (!h->all && h->have_prev && h->fill == 16 && memcmp(h->prev, h->line, 16) == 0) {
        if (!h->starred)
            fputs("*\n", h->f);
        h->starred = true;
        return;
    }
    h->starred = false;
    fprintf(h->f, "%0*" PRIx64 " ", h->width, h->line_addr);
    for (size_t i = 0; i < 16; i++) {
        if (i == 8)
            fputc(' ', h->f);
        if (i < h->fill)
            fprintf(h->f, " %02x", h->line[i]);
        else
            fputs("   ", h->f);
    }
    fputs("  |", h->f);
    for (size_t i = 0; i < h->fill; i++)
        fputc(h->line[i] >= 0x20 && h->line[i] < 0x7f ? h->line[i] : '.', h->f);
    fputs("|\n", h->f);
    memcpy(h->prev, h->line, 16);
    h->have_prev = h->fill == 16;
}

static void hd_feed(struct hexdump *h, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = 16 - h->fill;
        if (k > n)
            k = n;
        memcpy(h->line + h->fill, p, k);
        h->fill += k;
        p += k;
        n -= k;
        if (h->fill == 16) {
            hd_emit(h);
            h->line_addr += 16;
            h->fill = 0;
        }
    }
}

static int cmd_dump(int argc, char **argv)
{
    bool raw = false, all = false;
    const struct flag flags[] = {{"--raw", 0, &raw}, {"--all", 'v', &all}, {NULL, 0, NULL}};
    char *pos[3];
    int npos, rc = parse_args(argc, argv, flags, pos, 3, &npos);
    if (rc != 0)
        return rc < 0 ? (fputs(dump_help, stdout), EXIT_OK) : rc;
    if (npos != 3)
        return usage_error("expected CONFIG ADDR LEN");
    uint64_t addr, len;
    if ((rc = parse_number("ADDR", pos[1], &addr)) != 0 ||
        (rc = parse_number("LEN", pos[2], &len)) != 0)
        return rc;
    vmmem_map *m;
    if ((rc = build_map_mode(pos[0], true, &m)) != 0)
        return rc;
    if ((rc = check_backed(m, addr, len, "")) != 0) {
        vmmem_map_unref(m);
        return rc;
    }
    if (raw) {
        /* Straight from guest memory to stdout, no bounce buffer. */
        while (len > 0 && rc == 0) {
            size_t n = len < (1u << 30) ? (size_t)len : (1u << 30);
            int e = vmmem_write_all_to_fd(m, addr, STDOUT_FILENO, n);
            if (e < 0)
                rc = lib_error(e, "writing 0x%zx bytes at 0x%" PRIx64 " to stdout", n, addr);
            addr += n;
            len -= n;
        }
        vmmem_map_unref(m);
        return rc;
    }
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL) {
        vmmem_map_unref(m);
        return op_error("out of memory");
    }
    vmmem_gaddr_t last = 0;
    if (len > 0)
        vmmem_addr_last(addr, len, &last); /* cannot fail: check_backed passed */
    struct hexdump h = {.f = stdout, .width = last > UINT32_MAX ? 16 : 8, .all = all,
                        .line_addr = addr};
    uint64_t a = addr, left = len;
    while (left > 0) {
        size_t n = left < CHUNK ? (size_t)left : CHUNK;
        int e = vmmem_read_slice(m, a, buf, n);
        if (e < 0) {
            fflush(stdout);
            rc = lib_error(e, "reading %zu bytes at 0x%" PRIx64, n, a);
            break;
        }
        hd_feed(&h, buf, n);
        a += n;
        left -= n;
    }
    if (rc == 0 && len > 0) {
        if (h.fill > 0)
            hd_emit(&h);
        if (last == UINT64_MAX)
            printf("10000000000000000\n");
        else
            printf("%0*" PRIx64 "\n", h.width, last + 1);
    }
    free(buf);
    vmmem_map_unref(m);
    return rc;
}

/* ---- load ---------------------------------------------------------------- */

static int cmd_load(int argc, char **argv)
{
    bool quiet = false, progress = false, no_progress = false;
    const struct flag flags[] = {{"--quiet", 'q', &quiet},
                                 {"--progress", 0, &progress},
                                 {"--no-progress", 0, &no_progress},
                                 {NULL, 0, NULL}};
    char *pos[3];
    int npos, rc = parse_args(argc, argv, flags, pos, 3, &npos);
    if (rc != 0)
        return rc < 0 ? (fputs(load_help, stdout), EXIT_OK) : rc;
    if (npos != 3)
        return usage_error("expected CONFIG FILE ADDR");
    if (progress && no_progress)
        return usage_error("--progress and --no-progress exclude each other");
    const char *file = pos[1];
    uint64_t addr;
    if ((rc = parse_number("ADDR", pos[2], &addr)) != 0)
        return rc;

    vmmem_map *m;
    if ((rc = build_map(pos[0], &m)) != 0)
        return rc;
    int fd = open(file, OPEN_FLAGS);
    if (fd < 0) {
        rc = op_error("cannot open '%s': %s", file, strerror(errno));
        vmmem_map_unref(m);
        return rc;
    }
    struct stat st;
    uint64_t size;
    if (fstat(fd, &st) != 0) {
        rc = op_error("cannot stat '%s': %s", file, strerror(errno));
        close(fd);
        vmmem_map_unref(m);
        return rc;
    }
    if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0 || lseek(fd, 0, SEEK_SET) != 0) {
            rc = op_error("cannot find the size of '%s': %s", file, strerror(errno));
            close(fd);
            vmmem_map_unref(m);
            return rc;
        }
        size = (uint64_t)end;
    } else {
        close(fd);
        vmmem_map_unref(m);
        return op_error("'%s' is not a regular file or a block device: its size is needed to "
                        "check the guest range first", file);
    }

    char why[PATH_MAX + 128];
    snprintf(why, sizeof why, "cannot load '%s' (%" PRIu64 " bytes) at 0x%" PRIx64
             ", nothing was written: ", file, size, addr);
    if ((rc = check_backed(m, addr, size, why)) != 0) {
        vmmem_map_unref(m);
        close(fd);
        return rc;
    }
    if ((rc = check_writable(m, addr, size, why)) != 0) {
        vmmem_map_unref(m);
        close(fd);
        return rc;
    }

    bool show = (progress || (!no_progress && isatty(STDERR_FILENO) && size >= PROGRESS_MIN));
    uint64_t done = 0;
    unsigned last_pct = 101;
    while (done < size) {
        uint64_t want = size - done;
        size_t n = want < CHUNK ? (size_t)want : CHUNK;
        int64_t got = vmmem_read_from_fd(m, addr + done, fd, n);
        if (got < 0) {
            if (show)
                fputc('\n', stderr);
            rc = lib_error((int)got, "loading '%s' at 0x%" PRIx64 " after %" PRIu64 " bytes",
                           file, addr + done, done);
            break;
        }
        if (got == 0) {
            if (show)
                fputc('\n', stderr);
            rc = op_error("'%s' ended after %" PRIu64 " of %" PRIu64 " bytes (did it shrink?)",
                          file, done, size);
            break;
        }
        done += (uint64_t)got;
        if (show) {
            unsigned pct = (unsigned)(done * 100 / size);
            if (pct != last_pct || done == size)
                fprintf(stderr, "\r%s: %" PRIu64 " of %" PRIu64 " bytes (%u%%)", cmd_name, done,
                        size, pct);
            last_pct = pct;
        }
    }
    close(fd);
    if (rc == 0 && show)
        fputc('\n', stderr);
    if (rc == 0 && !quiet) {
        uint8_t *buf = malloc(CHUNK);
        uint64_t sum = 0;
        if (buf == NULL)
            rc = op_error("out of memory");
        else
            rc = checksum_range(m, addr, size, buf, &sum);
        free(buf);
        if (rc == 0) {
            if (size == 0)
                printf("loaded 0 bytes from %s (empty file)\n", file);
            else
                printf("loaded %" PRIu64 " bytes from %s to [0x%" PRIx64 ", 0x%" PRIx64
                       "], fnv1a64 %016" PRIx64 "\n",
                       size, file, addr, addr + size - 1, sum);
        }
    }
    vmmem_map_unref(m);
    return rc;
}

/* ---- fill ---------------------------------------------------------------- */

static int cmd_fill(int argc, char **argv)
{
    bool quiet = false;
    const struct flag flags[] = {{"--quiet", 'q', &quiet}, {NULL, 0, NULL}};
    char *pos[4];
    int npos, rc = parse_args(argc, argv, flags, pos, 4, &npos);
    if (rc != 0)
        return rc < 0 ? (fputs(fill_help, stdout), EXIT_OK) : rc;
    if (npos != 4)
        return usage_error("expected CONFIG ADDR LEN BYTE");
    uint64_t addr, len, byte;
    if ((rc = parse_number("ADDR", pos[1], &addr)) != 0 ||
        (rc = parse_number("LEN", pos[2], &len)) != 0 ||
        (rc = parse_number("BYTE", pos[3], &byte)) != 0)
        return rc;
    if (byte > 255)
        return usage_error("bad BYTE '%s': must be 0..255", pos[3]);
    vmmem_map *m;
    if ((rc = build_map(pos[0], &m)) != 0)
        return rc;
    if ((rc = check_backed(m, addr, len, "nothing was written: ")) != 0 ||
        (rc = check_writable(m, addr, len, "nothing was written: ")) != 0) {
        vmmem_map_unref(m);
        return rc;
    }
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL) {
        vmmem_map_unref(m);
        return op_error("out of memory");
    }
    memset(buf, (int)byte, CHUNK);
    uint64_t a = addr, left = len, sum = 0;
    while (left > 0 && rc == 0) {
        size_t n = left < CHUNK ? (size_t)left : CHUNK;
        int e = vmmem_write_slice(m, a, buf, n);
        if (e < 0)
            rc = lib_error(e, "writing %zu bytes at 0x%" PRIx64 " (%" PRIu64 " bytes filled)", n, a,
                           a - addr);
        a += n;
        left -= n;
    }
    if (rc == 0 && !quiet)
        rc = checksum_range(m, addr, len, buf, &sum);
    free(buf);
    vmmem_map_unref(m);
    if (rc == 0 && !quiet) {
        if (len == 0)
            printf("filled 0 bytes\n");
        else
            printf("filled %" PRIu64 " bytes [0x%" PRIx64 ", 0x%" PRIx64 "] with 0x%02x, fnv1a64 "
                   "%016" PRIx64 "\n", len, addr, addr + len - 1, (unsigned)byte, sum);
    }
    return rc;
}

/* ---- checksum ------------------------------------------------------------ */

static int cmd_checksum(int argc, char **argv)
{
    char *pos[3];
    int npos, rc = parse_args(argc, argv, NULL, pos, 3, &npos);
    if (rc != 0)
        return rc < 0 ? (fputs(checksum_help, stdout), EXIT_OK) : rc;
    if (npos != 3)
        return usage_error("expected CONFIG ADDR LEN");
    uint64_t addr, len;
    if ((rc = parse_number("ADDR", pos[1], &addr)) != 0 ||
        (rc = parse_number("LEN", pos[2], &len)) != 0)
        return rc;
    vmmem_map *m;
    if ((rc = build_map_mode(pos[0], true, &m)) != 0)
        return rc;
    uint8_t *buf = NULL;
    uint64_t sum = 0;
    if ((rc = check_backed(m, addr, len, "")) == 0) {
        if ((buf = malloc(CHUNK)) == NULL)
            rc = op_error("out of memory");
        else
            rc = checksum_range(m, addr, len, buf, &sum);
    }
    free(buf);
    vmmem_map_unref(m);
    if (rc == 0)
        printf("%016" PRIx64 "\n", sum);
    return rc;
}

/* ---- options with a value ------------------------------------------------ */

/*
 * Take "NAME VALUE" or "NAME=VALUE" (long or short name) out of argv, before
 * any "--"; the last one given wins.  Returns 0, or EXIT_USAGE when the value
 * is missing.
 */
static int take_value(int *argc, char **argv, const char *long_name, const char *short_name,
                      const char **value)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        size_t ll = strlen(long_name);
        const char *v = NULL;
        int used = 0;
        if (strcmp(argv[i], long_name) == 0 || (short_name && strcmp(argv[i], short_name) == 0)) {
            if (i + 1 >= *argc)
                return usage_error("option '%s' needs a value", argv[i]);
            v = argv[i + 1];
            used = 2;
        } else if (strncmp(argv[i], long_name, ll) == 0 && argv[i][ll] == '=') {
            v = argv[i] + ll + 1;
            used = 1;
        }
        if (used == 0)
            continue;
        *value = v;
        memmove(argv + i, argv + i + used, (size_t)(*argc - i - used) * sizeof *argv);
        *argc -= used;
        i--;
    }
    return 0;
}

/* ---- read, write --------------------------------------------------------- */

static const char read_help[] =
    "Usage: vmmem read [-t u8|u16|u32|u64] [--be] CONFIG ADDR [COUNT]\n"
    "\n"
    "Print COUNT (default 1) values of the given type from guest-physical\n"
    "address ADDR, like QEMU's monitor command `xp /COUNTx{b,h,w,g} ADDR`\n"
    "and in its layout: the address in 16 hex digits, a colon, then the\n"
    "values in hex, 16 bytes of them a line (8 for u8).  Values are\n"
    "little-endian (x86, Arm) unless --be.  The range must be backed.  The\n"
    "map is read-only unless CONFIG says prot=rw.\n"
    "\n"
    "Options:\n"
    "  -t, --type T  u8, u16, u32 (the default) or u64\n"
    "  --be          big-endian values\n"
    "\n"
    "Example (the 4 GiB boundary of a q35 guest with 4 GiB of RAM):\n"
    "  vmmem read --qemu q35 -t u64 /dev/shm/guest.ram 0x100000000 4\n";

static const char write_help[] =
    "Usage: vmmem write [-q|--quiet] CONFIG ADDR HEXBYTES\n"
    "\n"
    "Write the bytes HEXBYTES (pairs of hex digits in memory order, which may\n"
    "be separated by ':', '-', '_' or blanks: 'deadbeef', 'de:ad:be:ef') to\n"
    "guest memory at ADDR.  The range must be backed and writable, else\n"
    "nothing is written and the exit status is 1.  Prints the range written\n"
    "unless -q.\n"
    "\n"
    "Example:\n"
    "  vmmem write 'file:addr=0,path=vm0.mem' 0x7dfe 55aa\n";

static int parse_type(const char *t, unsigned *size)
{
    static const struct {
        const char *name;
        unsigned size;
    } types[] = {{"u8", 1}, {"u16", 2}, {"u32", 4}, {"u64", 8},
                 {"b", 1},  {"h", 2},   {"w", 4},   {"g", 8}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(t, types[i].name) == 0) {
            *size = types[i].size;
            return 0;
        }
    return usage_error("bad type '%s': expected u8, u16, u32 or u64", t);
}

static int cmd_read(int argc, char **argv)
{
    const char *type = "u32";
    int rc = take_value(&argc, argv, "--type", "-t", &type);
    if (rc != 0)
        return rc;
    bool be = false;
    const struct flag flags[] = {{"--be", 0, &be}, {NULL, 0, NULL}};
    char *pos[3];
    int npos;
    if ((rc = parse_args(argc, argv, flags, pos, 3, &npos)) != 0)
        return rc < 0 ? (fputs(read_help, stdout), EXIT_OK) : rc;
    if (npos < 2)
        return usage_error("expected CONFIG ADDR [COUNT]");
    unsigned size = 4;
    uint64_t addr, count = 1;
    if ((rc = parse_type(type, &size)) != 0 || (rc = parse_number("ADDR", pos[1], &addr)) != 0 ||
        (npos == 3 && (rc = parse_number("COUNT", pos[2], &count)) != 0))
        return rc;
    if (count > (UINT64_MAX / size))
        return usage_error("bad COUNT '%s': too large", pos[2]);
    vmmem_map *m;
    if ((rc = build_map_mode(pos[0], true, &m)) != 0)
        return rc;
    if ((rc = check_backed(m, addr, count * size, "")) != 0) {
        vmmem_map_unref(m);
        return rc;
    }
    struct outbuf o;
    if ((rc = out_open(&o)) != 0) {
        vmmem_map_unref(m);
        return rc;
    }
    unsigned line = size == 1 ? 8 : 16; /* bytes a line, as QEMU's memory_dump */
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        uint64_t a = addr + i * size;
        uint8_t b[8];
        int e = vmmem_read_slice(m, a, b, size);
        if (e < 0) {
            rc = lib_error(e, "reading %u bytes at 0x%" PRIx64, size, a);
            break;
        }
        uint64_t v = 0;
        for (unsigned k = 0; k < size; k++)
            v |= (uint64_t)b[be ? k : size - 1 - k] << (8 * (size - 1 - k));
        if ((i * size) % line == 0)
            fprintf(o.f, "%s%016" PRIx64 ":", i ? "\n" : "", a);
        fprintf(o.f, " 0x%0*" PRIx64, (int)size * 2, v);
    }
    if (count > 0)
        fputc('\n', o.f);
    vmmem_map_unref(m);
    return out_close(&o, rc);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int cmd_write(int argc, char **argv)
{
    bool quiet = false;
    const struct flag flags[] = {{"--quiet", 'q', &quiet}, {NULL, 0, NULL}};
    char *pos[3];
    int npos, rc = parse_args(argc, argv, flags, pos, 3, &npos);
    if (rc != 0)
        return rc < 0 ? (fputs(write_help, stdout), EXIT_OK) : rc;
    if (npos != 3)
        return usage_error("expected CONFIG ADDR HEXBYTES");
    uint64_t addr;
    if ((rc = parse_number("ADDR", pos[1], &addr)) != 0)
        return rc;
    const char *h = pos[2];
    size_t cap = strlen(h) / 2 + 1, n = 0;
    uint8_t *bytes = malloc(cap);
    if (bytes == NULL)
        return op_error("out of memory");
    for (size_t i = 0; h[i];) {
        if (strchr(":-_ \t", h[i]) != NULL) {
            i++;
            continue;
        }
        int hi = hex_digit(h[i]), lo = hi < 0 ? -1 : hex_digit(h[i + 1]);
        if (hi < 0 || lo < 0) {
            free(bytes);
            return usage_error("bad HEXBYTES '%s': expected pairs of hex digits (at offset %zu)",
                               h, lo < 0 && hi >= 0 ? i + 1 : i);
        }
        bytes[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    if (n == 0) {
        free(bytes);
        return usage_error("bad HEXBYTES '%s': no bytes", h);
    }
    vmmem_map *m;
    if ((rc = build_map(pos[0], &m)) != 0) {
        free(bytes);
        return rc;
    }
    if ((rc = check_backed(m, addr, n, "nothing was written: ")) == 0 &&
        (rc = check_writable(m, addr, n, "nothing was written: ")) == 0) {
        int e = vmmem_write_slice(m, addr, bytes, n);
        if (e < 0)
            rc = lib_error(e, "writing %zu bytes at 0x%" PRIx64, n, addr);
    }
    vmmem_map_unref(m);
    free(bytes);
    if (rc == 0 && !quiet)
        printf("wrote %zu byte%s [0x%" PRIx64 ", 0x%" PRIx64 "]\n", n, n == 1 ? "" : "s", addr,
               addr + n - 1);
    return rc;
}

/* ---- diff ---------------------------------------------------------------- */

enum { EXIT_DIFFER = 3 };
#define DIFF_PAGE 4096u

static const char diff_help[] =
    "Usage: vmmem diff [--max N] CONFIG_A CONFIG_B\n"
    "\n"
    "Compare two guest memory images page by page (4 KiB pages of guest-\n"
    "physical address space) and print the pages that differ, as runs of\n"
    "consecutive pages, in address order: the first N runs (default 32), then\n"
    "a summary.  A page backed in one map only is listed as \"only in A\" or\n"
    "\"only in B\"; partly backed pages are compared over what both back.\n"
    "Both maps are read-only unless their CONFIG says prot=rw.\n"
    "\n"
    "Exit status: 0 the images are the same, 3 they differ, 1 failure, 2 usage.\n"
    "\n"
    "Options:\n"
    "  --max N   list at most N runs (0: only the summary)\n"
    "\n"
    "Example (two snapshots of one guest):\n"
    "  vmmem diff 'file:addr=0,path=before.mem' 'file:addr=0,path=after.mem'\n";

/* The state of a page: 0 same, 1 differs, 2 only in A, 3 only in B, -1 in neither. */
static const char *const diff_what[] = {"same", "differ", "only in A", "only in B"};

struct diff_run {
    FILE *f;
    int state;           /* of the open run, or -1 */
    uint64_t start, end; /* the open run's pages [start, end) */
    uint64_t listed, max, runs, pages[4];
};

static void diff_close(struct diff_run *d)
{
    if (d->state > 0) {
        d->runs++;
        if (d->listed < d->max) {
            uint64_t n = (d->end - d->start) / DIFF_PAGE;
            fprintf(d->f, "  [0x%016" PRIx64 ", 0x%016" PRIx64 "]  %8" PRIu64 " page%s  %s\n",
                    d->start, d->end - 1, n, n == 1 ? " " : "s", diff_what[d->state]);
            d->listed++;
        }
    }
    d->state = -1;
}

static void diff_page(struct diff_run *d, uint64_t page, int state)
{
    if (state >= 0)
        d->pages[state]++;
    if (state == d->state && d->end == page) {
        d->end += DIFF_PAGE;
        return;
    }
    diff_close(d);
    if (state > 0) {
        d->state = state;
        d->start = page;
        d->end = page + DIFF_PAGE;
    }
}

/* Bytes of m backed from addr on, up to limit (0 when addr is a hole). */
static uint64_t backed_run(const vmmem_map *m, uint64_t addr, uint64_t limit)
{
    uint64_t off;
    const vmmem_region *r = vmmem_map_find(m, addr, &off);
    if (r == NULL)
        return 0;
    uint64_t n = vmmem_region_size(r) - off;
    return n < limit ? n : limit;
}

/* Bytes from addr to the next region start of m (up to limit). */
static uint64_t hole_run(const vmmem_map *m, uint64_t addr, uint64_t limit)
{
    uint64_t best = limit;
    for (size_t i = 0; i < vmmem_map_num_regions(m); i++) {
        uint64_t st = vmmem_region_start(vmmem_map_region(m, i));
        if (st > addr && st - addr < best)
            best = st - addr;
    }
    return best;
}

static int cmd_diff(int argc, char **argv)
{
    const char *max_s = "32";
    int rc = take_value(&argc, argv, "--max", NULL, &max_s);
    if (rc != 0)
        return rc;
    char *pos[2];
    int npos;
    if ((rc = parse_args(argc, argv, NULL, pos, 2, &npos)) != 0)
        return rc < 0 ? (fputs(diff_help, stdout), EXIT_OK) : rc;
    if (npos != 2)
        return usage_error("expected CONFIG_A CONFIG_B");
    uint64_t max;
    if ((rc = parse_number("--max", max_s, &max)) != 0)
        return rc;
    vmmem_map *a, *b = NULL;
    if ((rc = build_map_mode(pos[0], true, &a)) != 0)
        return rc;
    if ((rc = build_map_mode(pos[1], true, &b)) != 0) {
        vmmem_map_unref(a);
        return rc;
    }
    uint8_t *ba = malloc(CHUNK), *bb = malloc(CHUNK);
    struct outbuf o;
    if (ba == NULL || bb == NULL)
        rc = op_error("out of memory");
    else
        rc = out_open(&o);
    if (rc != 0) {
        free(ba);
        free(bb);
        vmmem_map_unref(a);
        vmmem_map_unref(b);
        return rc;
    }
    struct diff_run d = {.f = o.f, .state = -1, .max = max};
    /* Page by page over the union of both maps; a page's pieces (where the
     * backing changes inside it) combine: any difference wins, then "only
     * in", then "same".  Pages in neither map are skipped. */
    uint64_t hi_a = vmmem_map_num_regions(a) ? vmmem_map_last_addr(a) : 0;
    uint64_t hi_b = vmmem_map_num_regions(b) ? vmmem_map_last_addr(b) : 0;
    uint64_t top = hi_a > hi_b ? hi_a : hi_b; /* last byte to compare */
    bool any = vmmem_map_num_regions(a) + vmmem_map_num_regions(b) > 0;
    for (uint64_t page = 0; any && rc == 0;) {
        uint64_t last = top - page < DIFF_PAGE - 1 ? top : page + (DIFF_PAGE - 1);
        int pstate = -1;
        for (uint64_t addr = page;;) {
            uint64_t lim = last - addr + 1;
            uint64_t na = backed_run(a, addr, lim), nb = backed_run(b, addr, lim), n;
            int st;
            if (na > 0 && nb > 0) {
                n = na < nb ? na : nb;
                int e = vmmem_read_slice(a, addr, ba, (size_t)n);
                if (e == 0)
                    e = vmmem_read_slice(b, addr, bb, (size_t)n);
                if (e < 0) {
                    rc = lib_error(e, "reading %" PRIu64 " bytes at 0x%" PRIx64, n, addr);
                    break;
                }
                st = memcmp(ba, bb, (size_t)n) != 0;
            } else if (na > 0 || nb > 0) {
                n = hole_run(na > 0 ? b : a, addr, na > 0 ? na : nb);
                st = na > 0 ? 2 : 3;
            } else {
                n = hole_run(a, addr, lim);
                uint64_t hb = hole_run(b, addr, lim);
                n = hb < n ? hb : n;
                st = -1;
            }
            if (st == 1 || pstate < 0 || (st > 1 && pstate == 0))
                pstate = st;
            if (n - 1 >= last - addr)
                break;
            addr += n;
        }
        if (rc != 0)
            break;
        diff_page(&d, page, pstate);
        if (last == top)
            break;
        page = last + 1;
        if (pstate < 0) { /* a whole-page hole in both: jump to the next region */
            uint64_t ha = hole_run(a, page, top - page + 1), hb = hole_run(b, page, top - page + 1);
            uint64_t skip = (ha < hb ? ha : hb) & ~(uint64_t)(DIFF_PAGE - 1);
            if (!vmmem_map_check_address(a, page) && !vmmem_map_check_address(b, page)) {
                if (skip > top - page)
                    break;
                page += skip;
            }
        }
    }
    if (rc == 0) {
        diff_close(&d);
        if (d.runs > d.listed)
            fprintf(o.f, "  ... %" PRIu64 " more run%s (--max)\n", d.runs - d.listed,
                    d.runs - d.listed == 1 ? "" : "s");
        fprintf(o.f,
                "%" PRIu64 " page%s differ, %" PRIu64 " only in A, %" PRIu64 " only in B, in "
                "%" PRIu64 " run%s; %" PRIu64 " page%s the same\n",
                d.pages[1], d.pages[1] == 1 ? "" : "s", d.pages[2], d.pages[3], d.runs,
                d.runs == 1 ? "" : "s", d.pages[0], d.pages[0] == 1 ? " is" : "s are");
    }
    free(ba);
    free(bb);
    vmmem_map_unref(a);
    vmmem_map_unref(b);
    rc = out_close(&o, rc);
    return rc == 0 && d.runs > 0 ? EXIT_DIFFER : rc;
}

/* ---- demo ---------------------------------------------------------------- */

static void hex_bytes(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%02x", i ? " " : "", p[i]);
}

/* Report an unexpected result; returns EXIT_FAIL. */
static int demo_unexpected(const char *what, int64_t got)
{
    if (got < 0)
        return lib_error((int)got, "demo: %s", what);
    return op_error("demo: %s: unexpected result %" PRId64, what, got);
}

static int demo_run(FILE *f, vmmem_map *m)
{
    const uint8_t sample[5] = {1, 2, 3, 4, 5};
    uint8_t buf[5] = {0};
    int64_t n;
    int rc;

    fprintf(f, "vmmem demo: libvmmem %s on the built-in default map\n\n", VMMEM_VERSION_STRING);
    fprintf(f, "1. Provide memory to a virtual device: the config string\n   %s\n", demo_config);
    fprintf(f, "   builds two adjacent 4 KiB anonymous regions at 0x0 and 0x1000, a hole at\n"
               "   0x2000, and a third region at 0x3000:\n   ");
    print_map_summary(f, m);
    print_regions(f, m);

    fprintf(f, "\n2. Virtual device I/O across the seam at 0x1000 (the README's example):\n");
    n = vmmem_write(m, 0xffc, sample, sizeof sample);
    if (n != 5)
        return demo_unexpected("vmmem_write(0xffc, 5 bytes)", n);
    fprintf(f, "   vmmem_write(0xffc, [");
    hex_bytes(f, sample, 5);
    fprintf(f, "]) = %" PRId64 "   (0xffc..0xfff in region 0, 0x1000 in region 1)\n", n);
    n = vmmem_read(m, 0xffc, buf, sizeof buf);
    if (n != 5 || memcmp(buf, sample, 5) != 0)
        return demo_unexpected("vmmem_read(0xffc, 5 bytes) back", n);
    fprintf(f, "   vmmem_read(0xffc, 5)           = %" PRId64 ": [", n);
    hex_bytes(f, buf, 5);
    fprintf(f, "]  same bytes: ok\n");

    fprintf(f, "\n3. Accesses that meet the hole at 0x2000:\n");
    uint8_t b = 0xaa;
    n = vmmem_write(m, 0x2000, &b, 1);
    if (n != VMMEM_EINVALID_ADDRESS)
        return demo_unexpected("a write into the hole did not fail as expected", n);
    fprintf(f, "   vmmem_write(0x2000, 1 byte) = %s (%" PRId64 "): %s\n", vmmem_err_name((int)n), n,
            vmmem_strerror((int)n));
    fprintf(f, "       detail: %s\n", vmmem_last_message());
    const uint8_t four[4] = {0xde, 0xad, 0xbe, 0xef};
    n = vmmem_write(m, 0x1ffe, four, sizeof four);
    if (n != 2)
        return demo_unexpected("vmmem_write(0x1ffe, 4 bytes) did not stop at the hole", n);
    fprintf(f, "   vmmem_write(0x1ffe, 4 bytes) = %" PRId64 "  (stops short at the hole)\n", n);
    rc = vmmem_write_slice(m, 0x1ffe, four, sizeof four);
    if (rc != VMMEM_EPARTIAL)
        return demo_unexpected("vmmem_write_slice(0x1ffe, 4 bytes) was not all-or-error", rc);
    const struct vmmem_error *e = vmmem_last_error();
    fprintf(f, "   vmmem_write_slice(0x1ffe, 4 bytes) = %s (%d): %s\n", vmmem_err_name(rc), rc,
            vmmem_strerror(rc));
    fprintf(f, "       detail: %s (expected %" PRIu64 ", completed %" PRIu64 ")\n", e->message,
            e->expected, e->completed);

    fprintf(f, "\n4. Dirty-page tracking:\n");
    if ((rc = vmmem_map_set_dirty_tracking(m, true)) < 0)
        return lib_error(rc, "demo: vmmem_map_set_dirty_tracking");
    uint64_t page = vmmem_map_dirty_page_size(m);
    fprintf(f, "   vmmem_map_set_dirty_tracking(on): page size %" PRIu64 " bytes\n", page);
    n = vmmem_write(m, 0xffc, sample, sizeof sample);
    if (n != 5)
        return demo_unexpected("vmmem_write(0xffc, 5 bytes) with tracking on", n);
    fprintf(f, "   vmmem_write(0xffc, 5 bytes) = %" PRId64 "\n", n);
    if (page == 0)
        return op_error("demo: the map reports a dirty page size of 0");
    fprintf(f, "   pages (dirty = written since tracking was turned on):\n");
    size_t nr = vmmem_map_num_regions(m), ndirty = 0;
    for (size_t i = 0; i < nr; i++) {
        const vmmem_region *r = vmmem_map_region(m, i);
        uint64_t start = vmmem_region_start(r), size = vmmem_region_size(r);
        for (uint64_t off = 0; off < size; off += page) {
            bool d = vmmem_map_is_dirty(m, start + off);
            ndirty += d;
            fprintf(f, "     0x%06" PRIx64 "  region %zu  %s\n", start + off, i,
                    d ? "dirty" : "clean");
        }
    }
    if (!vmmem_map_is_dirty(m, 0) || !vmmem_map_is_dirty(m, 0x1000) ||
        vmmem_map_is_dirty(m, 0x3000) || ndirty != 2)
        return op_error("demo: dirty pages are not exactly 0x0 and 0x1000 (%zu dirty)", ndirty);
    fprintf(f, "   %zu dirty pages: the 5-byte write touched both sides of the seam\n", ndirty);

    /* Collect-and-clear, as a migration thread does. */
    vmmem_harvest *hv;
    if ((rc = vmmem_harvest_new(m, &hv)) < 0)
        return lib_error(rc, "demo: vmmem_harvest_new");
    int64_t got = vmmem_map_harvest(m, hv);
    if (got != 2) {
        vmmem_harvest_free(hv);
        return demo_unexpected("vmmem_map_harvest did not collect 2 pages", got);
    }
    fprintf(f, "   vmmem_map_harvest = %" PRId64 " dirty pages, as runs:", got);
    vmmem_harvest_iter it = {0};
    vmmem_gaddr_t gpa;
    uint64_t run;
    while (vmmem_harvest_next_run(hv, &it, &gpa, &run))
        fprintf(f, " [0x%" PRIx64 ", 0x%" PRIx64 "]", gpa, gpa + run - 1);
    vmmem_harvest_free(hv);
    bool clean = !vmmem_map_is_dirty(m, 0) && !vmmem_map_is_dirty(m, 0x1000);
    fprintf(f, "\n   after the harvest pages 0x0 and 0x1000 are %s\n", clean ? "clean" : "DIRTY");
    if (!clean)
        return op_error("demo: pages stayed dirty after vmmem_map_harvest");
    return 0;
}

static int cmd_demo(int argc, char **argv)
{
    char *pos[1];
    int npos, rc = parse_args(argc, argv, NULL, pos, 0, &npos);
    if (rc != 0)
        return rc < 0 ? (fputs(demo_help, stdout), EXIT_OK) : rc;
    vmmem_map *m;
    if ((rc = build_map(demo_config, &m)) != 0)
        return rc;
    struct outbuf o;
    if (out_open(&o) != 0) {
        vmmem_map_unref(m);
        return EXIT_FAIL;
    }
    rc = demo_run(o.f, m) ? EXIT_FAIL : EXIT_OK;
    vmmem_map_unref(m);
    return out_close(&o, rc);
}

/* ---- dispatch ------------------------------------------------------------ */

struct command {
    const char *name;
    const char *help;
    int (*run)(int argc, char **argv);
};

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"providers", providers_help, cmd_providers},
    {"info", info_help, cmd_info},
    {"dump", dump_help, cmd_dump},
    {"load", load_help, cmd_load},
    {"fill", fill_help, cmd_fill},
    {"checksum", checksum_help, cmd_checksum},
    {"read", read_help, cmd_read},
    {"write", write_help, cmd_write},
    {"diff", diff_help, cmd_diff},
    {"demo", demo_help, cmd_demo},
    {"help", help_help, cmd_help},
    {NULL, NULL, NULL},
};

static const struct command *find_command(const char *name)
{
    for (const struct command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help_help, stdout);
            return EXIT_OK;
        }
    if (argc == 0) {
        fputs(main_help, stdout);
        return EXIT_OK;
    }
    if (argc > 1)
        return usage_error("expected at most one COMMAND");
    const struct command *c = find_command(argv[0]);
    if (c == NULL)
        return usage_error("unknown command '%s'", argv[0]);
    fputs(c->help, stdout);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    static char name[64];
#if defined(_WIN32)
    _setmode(_fileno(stdout), _O_BINARY);
    _setmode(_fileno(stderr), _O_BINARY);
#endif
    if (argc < 2) {
        fputs("Usage: vmmem COMMAND [ARGS...]   (vmmem --help lists the commands)\n", stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(main_help, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("vmmem %s (libvmmem %s)\n", VMMEM_VERSION_STRING, vmmem_version());
        return EXIT_OK;
    }
    const struct command *c = find_command(cmd);
    if (c == NULL)
        return usage_error("unknown command '%s'", cmd);
    snprintf(name, sizeof name, "vmmem %s", c->name);
    cmd_name = name;
    /* --qemu MACHINE: every CONFIG of the command is a QEMU memory-backend
     * file laid out as that machine lays out its RAM. */
    int nargs = argc - 2;
    int rc = take_value(&nargs, argv + 2, "--qemu", NULL, &qemu_machine);
    if (rc != 0)
        return rc;
    if (qemu_machine != NULL && strcmp(qemu_machine, "q35") != 0 &&
        strcmp(qemu_machine, "pc") != 0)
        return usage_error("bad --qemu machine '%s': expected q35 or pc", qemu_machine);
    rc = c->run(nargs, argv + 2);
    /* Every command's output is checked here, once. */
    if (fflush(stdout) != 0 && rc == EXIT_OK)
        rc = op_error("writing to stdout: %s", strerror(errno));
    vmmem_default_registry_release(); /* leak checkers see nothing left */
    return rc;
}

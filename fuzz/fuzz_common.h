/*
 * Shared helpers of the libFuzzer targets (header-only, static functions).
 *
 * A failed check prints what went wrong and calls abort(), which libFuzzer
 * turns into a crash report with the input saved as an artifact.
 */
#ifndef VMMEM_FUZZ_COMMON_H
#define VMMEM_FUZZ_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmmem/vmmem.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FZ_CHECK(cond, ...)                                                                \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "\nFUZZ CHECK FAILED %s:%d: %s\n    ", __FILE__, __LINE__,     \
                    #cond);                                                                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n    last library error: %s (%d): %s\n",                     \
                    vmmem_err_name(vmmem_last_error()->code), vmmem_last_error()->code,     \
                    vmmem_last_message());                                                 \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* Reads bytes from the fuzz input; past the end everything reads as 0. */
struct fz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fz_u8(struct fz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
    uint16_t v = fz_u8(in);
    return (uint16_t)(v | (uint16_t)fz_u8(in) << 8);
}

static inline uint32_t fz_u32(struct fz_in *in)
{
    uint32_t v = fz_u16(in);
    return v | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(struct fz_in *in)
{
    uint64_t v = fz_u32(in);
    return v | (uint64_t)fz_u32(in) << 32;
}

/* Copy n bytes (zero-filled past the end of the input). */
static inline void fz_bytes(struct fz_in *in, uint8_t *out, size_t n)
{
    size_t k = n < in->n ? n : in->n;
    memcpy(out, in->p, k);
    memset(out + k, 0, n - k);
    in->p += k;
    in->n -= k;
}

/*
 * Load the plugin file `name` from the first directory of VMMEM_PLUGIN_PATH
 * that has it into reg; abort when it cannot be found (a setup error, not a
 * finding: fuzz/run.sh sets the variable).
 */
static inline void fz_load_plugin(vmmem_registry *reg, const char *name)
{
    const char *path = getenv("VMMEM_PLUGIN_PATH");
    if (path == NULL) {
        fprintf(stderr, "fuzz: set VMMEM_PLUGIN_PATH to the staged plugin directory\n");
        abort();
    }
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char file[4200];
        snprintf(file, sizeof file, "%s/%s", dir, name);
        if (vmmem_registry_load(reg, file) == 0)
            return;
    }
    fprintf(stderr, "fuzz: cannot load %s from VMMEM_PLUGIN_PATH=%s: %s\n", name, path,
            vmmem_last_message());
    abort();
}

#endif

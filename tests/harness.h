/* Shared helpers for the CUnit test binaries. */
#ifndef VMMEM_TEST_HARNESS_H
#define VMMEM_TEST_HARNESS_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include <vmmem/vmmem.h>

struct vt_test {
    const char *name;
    void (*fn)(void);
};

struct vt_suite {
    const char *name;
    int (*init)(void);
    int (*cleanup)(void);
    const struct vt_test *tests; /* ends with {NULL, NULL} */
};

/*
 * Register the suites (NULL-terminated), run them verbosely, print a
 * machine-readable result line and return the process exit status: non-zero
 * when any test failed, any suite failed to initialise, or registration
 * failed.  Counts are read before CU_cleanup_registry() resets them.
 */
int vt_main(const struct vt_suite *const *suites);

/* Build a map from a config string with the default registry; fails the
 * test (CU_FAIL with the library message) and returns NULL on error. */
vmmem_map *vt_map(const char *config);

/* Absolute path of a file in the test plugin directory (static buffer). */
const char *vt_test_plugin(const char *file);

/* The emulator the programs run under (a cross build's runner,
 * VMMEM_TEST_EXEC_PREFIX, e.g. "qemu-aarch64"), or NULL when native. */
const char *vt_emulator(void);

/* Assert that rc == code, printing both names on mismatch. */
#define VT_ASSERT_RC(rc, code)                                                            \
    do {                                                                                  \
        int vt_rc_ = (int)(rc), vt_code_ = (int)(code);                                   \
        if (vt_rc_ != vt_code_)                                                           \
            fprintf(stdout, "\n    %s:%d: got %s (%d), want %s (%d): %s\n", __FILE__,     \
                    __LINE__, vmmem_err_name(vt_rc_), vt_rc_, vmmem_err_name(vt_code_),    \
                    vt_code_, vmmem_last_message());                                      \
        CU_ASSERT_EQUAL(vt_rc_, vt_code_);                                                \
    } while (0)

#endif

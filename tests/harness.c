#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

int vt_main(const struct vt_suite *const *suites)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stdout, "CUnit registry: %s\n", CU_get_error_msg());
        return EXIT_FAILURE;
    }
    for (size_t i = 0; suites[i] != NULL; i++) {
        CU_pSuite s = CU_add_suite(suites[i]->name, suites[i]->init, suites[i]->cleanup);
        if (s == NULL)
            goto reg_error;
        for (const struct vt_test *t = suites[i]->tests; t->name != NULL; t++)
            if (CU_add_test(s, t->name, t->fn) == NULL)
                goto reg_error;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    fflush(stdout);
    CU_pRunSummary sum = CU_get_run_summary();
    unsigned ran = sum->nTestsRun, failed = sum->nTestsFailed;
    unsigned suites_failed = sum->nSuitesFailed;
    unsigned records = CU_get_number_of_failure_records();
    CU_cleanup_registry();
    /* A suite whose init failed never ran its tests: count it as a failure. */
    fprintf(stdout, "\nVMMEM-TEST-RESULT tests=%u failed=%u suites_failed=%u records=%u\n",
            ran + suites_failed, failed + suites_failed, suites_failed, records);
    return (failed || suites_failed || records) ? EXIT_FAILURE : EXIT_SUCCESS;

reg_error:
    fprintf(stdout, "CUnit registration failed: %s\n", CU_get_error_msg());
    CU_cleanup_registry();
    return EXIT_FAILURE;
}

vmmem_map *vt_map(const char *config)
{
    vmmem_map *m = NULL;
    int rc = vmmem_map_from_config(&m, NULL, config, NULL);
    if (rc != 0) {
        fprintf(stdout, "\n    vt_map(\"%s\"): %s: %s\n", config, vmmem_err_name(rc),
                vmmem_last_message());
        CU_FAIL("vt_map failed");
        return NULL;
    }
    return m;
}

const char *vt_emulator(void)
{
    const char *p = getenv("VMMEM_TEST_EXEC_PREFIX");
    return p != NULL && *p != '\0' ? p : NULL;
}

const char *vt_test_plugin(const char *file)
{
    static char buf[4096];
    const char *dir = getenv("VMMEM_TEST_PLUGIN_DIR");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "/nonexistent", file);
    return buf;
}

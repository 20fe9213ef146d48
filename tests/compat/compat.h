/* Shared between the compatibility plugin and program (tests/compat/):
 * the counters the plugin keeps behind each provider's user pointer. */
#ifndef VMMEM_COMPAT_H
#define VMMEM_COMPAT_H

#define COMPAT_MAGIC 0x636f6d70u /* "comp" */

struct compat_counts {
    unsigned magic;
    long maps, unmaps, begins, ends, errors;
    unsigned long host_abi, host_size, page_size; /* what the host table said */
};

#endif

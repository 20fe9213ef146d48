/*
 * libvmmem - config strings.
 *
 * Grammar:
 *     config  := region (';' region)* [';']
 *     region  := provider ':' option (',' option)*
 *     option  := key '=' value | key
 * Every region needs addr= and size=.  Numbers are decimal or 0x hex; sizes
 * and addresses take a K, M, G or T suffix (powers of 1024).  Blanks around
 * tokens are ignored.  A value that must hold ',', ';', '\' or a blank
 * (a path) escapes it with a backslash: "path=/tmp/a\,b".
 *
 * Example: "mmap:addr=0,size=2G;file:addr=0x100000000,size=1G,path=/dev/shm/vm0"
 *
 * Errors (vmmem_last_error() has the 1-based column and quotes the text):
 * VMMEM_ENO_REGIONS (empty text), VMMEM_ESYNTAX (a missing ':' is reported at
 * the first character after the provider name), VMMEM_EBAD_NUMBER,
 * VMMEM_EBAD_VALUE (addr/size without a value), VMMEM_EMISSING_KEY (addr/size),
 * VMMEM_EDUPLICATE_KEY, VMMEM_EZERO_SIZE, VMMEM_EOVERFLOW (addr + size - 1
 * passes UINT64_MAX: a region may end exactly at the top); when the specs
 * are checked against a registry also VMMEM_ENO_PROVIDER,
 * VMMEM_EUNKNOWN_KEY, VMMEM_EMISSING_KEY and VMMEM_EOVERLAP.
 */
#ifndef VMMEM_CONFIG_H
#define VMMEM_CONFIG_H

#include "map.h"
#include "provider.h"

VMMEM_BEGIN_DECLS

/* A parsed config string: its region specs. */
typedef struct vmmem_config vmmem_config;

/* Parse text into region specs (syntax and numbers only). */
VMMEM_EXPORT int vmmem_config_parse(const char *text, vmmem_config **out);
VMMEM_EXPORT void vmmem_config_free(vmmem_config *cfg);
VMMEM_EXPORT size_t vmmem_config_count(const vmmem_config *cfg);
/* The specs, in the order written (valid until vmmem_config_free). */
VMMEM_EXPORT const struct vmmem_region_spec *vmmem_config_specs(const vmmem_config *cfg);
/* Check providers, keys and overlaps against reg (NULL = default registry). */
VMMEM_EXPORT int vmmem_config_validate(const vmmem_config *cfg, vmmem_registry *reg);

/* Parse "4096", "0x1000", "4K", "2G" (as in config strings). */
VMMEM_EXPORT int vmmem_parse_size(const char *text, uint64_t *out);

VMMEM_END_DECLS

#endif

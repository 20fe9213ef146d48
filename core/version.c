/* Run-time version queries (common.h). */
#include "internal.h"

const char *vmmem_version(void)
{
    return VMMEM_VERSION_STRING;
}

unsigned vmmem_version_number(void)
{
    return VMMEM_VERSION_NUMBER;
}

unsigned vmmem_abi_version(void)
{
    /* The SONAME's number is the major version (SConstruct: SHLIBVERSION). */
    return VMMEM_VERSION_MAJOR;
}

unsigned vmmem_provider_abi_version(void)
{
    return VMMEM_PROVIDER_ABI_VERSION;
}

/*
 * libvmmem - common definitions: export macro, error codes, error details.
 *
 * Every fallible function returns 0 (or a non-negative count) on success and
 * a negative code on failure.  Plain conditions are -errno (-EINVAL,
 * -ENOMEM, ...); the library's own conditions are the VMMEM_E* codes below,
 * which live in a reserved range (-4000 .. -4099) that no errno reaches.
 * vmmem_strerror() turns any of them into text; vmmem_last_error() gives the
 * calling thread's detail for its most recent failure.
 */
#ifndef VMMEM_COMMON_H
#define VMMEM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
#define VMMEM_BEGIN_DECLS extern "C" {
#define VMMEM_END_DECLS }
#else
/* Opens the declarations of a header (extern "C" { in C++). */
#define VMMEM_BEGIN_DECLS
/* Closes what VMMEM_BEGIN_DECLS opened. */
#define VMMEM_END_DECLS
#endif

#if defined(_WIN32)
#if defined(VMMEM_BUILDING)
#define VMMEM_EXPORT __declspec(dllexport)
#else
#define VMMEM_EXPORT
#endif
#elif defined(__GNUC__)
/* Marks a function libvmmem exports (the rest of it is hidden). */
#define VMMEM_EXPORT __attribute__((visibility("default")))
#else
#define VMMEM_EXPORT
#endif

#define VMMEM_VERSION_MAJOR 0          /* the version of these headers: major, */
#define VMMEM_VERSION_MINOR 1          /* minor, */
#define VMMEM_VERSION_PATCH 0          /* patch level, */
#define VMMEM_VERSION_STRING "0.1.0"   /* and all three as text */

VMMEM_BEGIN_DECLS

/* X-macro: name, value, text.  Values never change once released. */
#define VMMEM_ERRNO_MAP(XX)                                                    \
    XX(INVALID_ADDRESS, -4001, "guest address is not backed by any region")   \
    XX(PARTIAL, -4002, "only part of the buffer could be accessed")           \
    XX(CROSSES_REGION, -4003, "access crosses a region boundary or hole")     \
    XX(NO_HOST_ADDRESS, -4004, "region has no permanent host address")        \
    XX(OVERFLOW, -4005, "address or length arithmetic overflows")             \
    XX(NO_REGIONS, -4006, "memory map needs at least one region")             \
    XX(OVERLAP, -4007, "memory regions overlap")                              \
    XX(ZERO_SIZE, -4008, "memory region has size zero")                       \
    XX(MISALIGNED, -4009, "address is not naturally aligned")                 \
    XX(OUT_OF_BOUNDS, -4010, "offset or length is out of bounds")             \
    XX(ABI, -4011, "provider ABI version mismatch")                           \
    XX(NOT_PLUGIN, -4012, "file is not a libvmmem plugin")                    \
    XX(DUPLICATE, -4013, "a provider with this name is already registered")  \
    XX(NO_PROVIDER, -4014, "no provider with this name")                      \
    XX(SYNTAX, -4015, "syntax error in config string")                        \
    XX(UNKNOWN_KEY, -4016, "unknown option key")                              \
    XX(MISSING_KEY, -4017, "required option key is missing")                  \
    XX(DUPLICATE_KEY, -4018, "option key given twice")                        \
    XX(BAD_NUMBER, -4019, "malformed number or size")                         \
    XX(BAD_VALUE, -4020, "invalid option value")                              \
    XX(READ_ONLY, -4021, "region is read-only")                               \
    XX(PROVIDER, -4022, "provider failed or broke its contract")              \
    XX(UNSUPPORTED, -4023, "operation not supported by this provider")            \
    XX(IOMMU_FAULT, -4024, "I/O virtual address is not mapped or not permitted")

/* The library's own error codes (returned negative, like -errno). */
enum vmmem_errno {
#define VMMEM__ERR_ENUM(name, val, text) VMMEM_E##name = (val),
    VMMEM_ERRNO_MAP(VMMEM__ERR_ENUM)
#undef VMMEM__ERR_ENUM
    VMMEM_E__FIRST = -4001,
    VMMEM_E__LAST = -4024
};

/*
 * Detail of the calling thread's most recent failure.  Every function that
 * returns an error code fills it in; successful calls leave it alone.
 * Fields that do not apply are 0 (addr, expected, completed) or -1 (column).
 */
struct vmmem_error {
    int code;           /* the code that was returned */
    uint64_t addr;      /* offending guest address or offset, if any */
    uint64_t expected;  /* PARTIAL: bytes asked for */
    uint64_t completed; /* PARTIAL: bytes actually transferred */
    int column;         /* config errors: 1-based column of the offending text */
    char message[512];  /* human-readable, names the offending thing */
};

/* Text for any code returned by the library (VMMEM_E* or -errno). */
VMMEM_EXPORT const char *vmmem_strerror(int code);
/* Symbolic name of a code, e.g. "VMMEM_EOVERLAP" or "EINVAL". */
VMMEM_EXPORT const char *vmmem_err_name(int code);
/* The calling thread's last error detail (never NULL). */
VMMEM_EXPORT const struct vmmem_error *vmmem_last_error(void);
/* Shortcut for vmmem_last_error()->message. */
VMMEM_EXPORT const char *vmmem_last_message(void);

/*
 * The library's version at run time (the VMMEM_VERSION_* macros are the
 * header's): a program can check that the libvmmem it loaded is the one it
 * was built against, or at least as new.
 */
/* "MAJOR.MINOR.PATCH", e.g. "0.1.0". */
VMMEM_EXPORT const char *vmmem_version(void);
/* MAJOR << 16 | MINOR << 8 | PATCH (compare with VMMEM_VERSION_NUMBER). */
VMMEM_EXPORT unsigned vmmem_version_number(void);
/* The binary interface version: the N of the SONAME libvmmem.so.N.  Programs
 * built against a library with another N do not run with this one. */
VMMEM_EXPORT unsigned vmmem_abi_version(void);
/* The provider ABI version this library speaks (VMMEM_PROVIDER_ABI_VERSION
 * of provider.h): plugins must be built with the same one. */
VMMEM_EXPORT unsigned vmmem_provider_abi_version(void);

/* The header's version as one number, as vmmem_version_number() gives it. */
#define VMMEM_VERSION_NUMBER \
    ((VMMEM_VERSION_MAJOR << 16) | (VMMEM_VERSION_MINOR << 8) | VMMEM_VERSION_PATCH)

/* Protection bits of a region or an access. */
#define VMMEM_PROT_READ 0x1
#define VMMEM_PROT_WRITE 0x2
#define VMMEM_PROT_RW (VMMEM_PROT_READ | VMMEM_PROT_WRITE)

VMMEM_END_DECLS

#endif

/* Error codes, their text, and the per-thread error detail. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "os.h"

static _Thread_local struct vmmem_error tls_err;

struct vmmem_error *vmmem__errbuf(void)
{
    return &tls_err;
}

int vmmem__verr(int code, const char *fmt, va_list ap)
{
    struct vmmem_error *e = &tls_err;
    e->code = code;
    e->addr = 0;
    e->expected = 0;
    e->completed = 0;
    e->column = -1;
    if (fmt != NULL)
        vsnprintf(e->message, sizeof e->message, fmt, ap);
    else
        snprintf(e->message, sizeof e->message, "%s", vmmem_strerror(code));
    return code;
}

int vmmem__err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmmem__verr(code, fmt, ap);
    va_end(ap);
    return code;
}

int vmmem__err_addr(int code, uint64_t addr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmmem__verr(code, fmt, ap);
    va_end(ap);
    tls_err.addr = addr;
    return code;
}

int vmmem__err_hole(uint64_t addr)
{
    return vmmem__err_addr(VMMEM_EINVALID_ADDRESS, addr,
                           "guest address 0x%llx is not backed by any region",
                           (unsigned long long)addr);
}

int vmmem__err_partial(uint64_t addr, uint64_t expected, uint64_t completed)
{
    vmmem__err(VMMEM_EPARTIAL,
               "partial access: %llu of %llu bytes done; guest address 0x%llx is not accessible",
               (unsigned long long)completed, (unsigned long long)expected,
               (unsigned long long)addr);
    tls_err.addr = addr;
    tls_err.expected = expected;
    tls_err.completed = completed;
    return VMMEM_EPARTIAL;
}

int vmmem__err_col(int code, int column, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmmem__verr(code, fmt, ap);
    va_end(ap);
    tls_err.column = column;
    return code;
}

const struct vmmem_error *vmmem_last_error(void)
{
    return &tls_err;
}

const char *vmmem_last_message(void)
{
    return tls_err.message;
}

const char *vmmem_strerror(int code)
{
    switch (code) {
#define VMMEM__ERR_TEXT(name, val, text) \
    case val:                            \
        return text;
        VMMEM_ERRNO_MAP(VMMEM__ERR_TEXT)
#undef VMMEM__ERR_TEXT
    case 0:
        return "success";
    default:
        break;
    }
    if (code < 0 && code > -4000)
        return strerror(-code);
    return "unknown error";
}

const char *vmmem_err_name(int code)
{
    switch (code) {
#define VMMEM__ERR_NAME(name, val, text) \
    case val:                            \
        return "VMMEM_E" #name;
        VMMEM_ERRNO_MAP(VMMEM__ERR_NAME)
#undef VMMEM__ERR_NAME
    case 0:
        return "OK";
    default:
        break;
    }
    if (code < 0 && code > -4000) {
        const char *n = vmmem__os_errno_name(-code);
        if (n != NULL)
            return n;
    }
    return "UNKNOWN";
}

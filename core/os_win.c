/*
 * The platform layer on Windows (see os.h): LoadLibrary for plugins, the
 * module's own path for the build-tree plugin directory, _fullpath.  What
 * has no Windows counterpart says so: the vhost-user log (a shared mapping
 * of a descriptor passed over a Unix socket) is -ENOSYS, and plugin files
 * are never "world-writable" (access is decided by ACLs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include "os.h"

uint64_t vmmem__os_page_size(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize > 0 ? (uint64_t)si.dwPageSize : 4096;
}

static bool is_sep(char c)
{
    return c == '/' || c == '\\';
}

bool vmmem__os_path_is_absolute(const char *path)
{
    if (is_sep(path[0]) && is_sep(path[1]))
        return true; /* \\server\share */
    return ((path[0] >= 'A' && path[0] <= 'Z') || (path[0] >= 'a' && path[0] <= 'z')) &&
           path[1] == ':' && is_sep(path[2]);
}

const char *vmmem__os_last_sep(const char *path)
{
    const char *a = strrchr(path, '/'), *b = strrchr(path, '\\');
    return a > b ? a : b;
}

int vmmem__os_stat(const char *path, struct vmmem__os_file *out)
{
    struct _stat64 st;
    if (_stat64(path, &st) != 0)
        return -errno;
    out->regular = (st.st_mode & _S_IFMT) == _S_IFREG;
    out->world_writable = false;
    out->dev = 0;
    out->ino = 0; /* no inode numbers: the registry compares names */
    return 0;
}

void *vmmem__os_dlopen(const char *path, char *why, size_t whylen)
{
    /* No error dialog for a file that is not a DLL. */
    UINT old = SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOOPENFILEERRORBOX);
    HMODULE h = LoadLibraryExA(path, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    DWORD e = GetLastError();
    SetErrorMode(old);
    if (h == NULL) {
        char msg[256] = "";
        DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                                 e, 0, msg, sizeof msg, NULL);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' '))
            msg[--n] = '\0';
        snprintf(why, whylen, "LoadLibrary failed (error %lu%s%s)", (unsigned long)e,
                 n > 0 ? ": " : "", msg);
    }
    return (void *)h;
}

int vmmem__os_plugin_open(const char *path, struct vmmem__os_plugin *out, char *why,
                          size_t whylen)
{
    struct vmmem__os_file st = {0}; /* gcc -Wmaybe-uninitialized (mingw -O2) */
    int rc = vmmem__os_stat(path, &st);
    if (rc < 0) {
        snprintf(why, whylen, "%s", strerror(-rc));
        return rc;
    }
    if (!st.regular) {
        snprintf(why, whylen, "not a regular file");
        return VMMEM_ENOT_PLUGIN;
    }
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if ((out->lib = vmmem__os_dlopen(path, why, whylen)) == NULL)
        return VMMEM_ENOT_PLUGIN;
    return 0;
}

void vmmem__os_plugin_close(struct vmmem__os_plugin *p)
{
    if (p->lib != NULL)
        vmmem__os_dlclose(p->lib);
    p->lib = NULL;
}

void *vmmem__os_dlsym(void *lib, const char *name)
{
    FARPROC f = GetProcAddress((HMODULE)lib, name);
    void *p;
    memcpy(&p, &f, sizeof p);
    return p;
}

void vmmem__os_dlclose(void *lib)
{
    FreeLibrary((HMODULE)lib);
}

bool vmmem__os_self_path(char *buf, size_t cap)
{
    HMODULE self = NULL;
    if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCSTR)(void *)vmmem__os_self_path, &self))
        return false;
    DWORD n = GetModuleFileNameA(self, buf, (DWORD)(cap > 0x7fffffff ? 0x7fffffff : cap));
    return n > 0 && n < cap && vmmem__os_path_is_absolute(buf);
}

char *vmmem__os_realpath(const char *path)
{
    char *full = _fullpath(NULL, path, 0);
    if (full == NULL)
        return NULL;
    DWORD a = GetFileAttributesA(full);
    if (a == INVALID_FILE_ATTRIBUTES || !(a & FILE_ATTRIBUTE_DIRECTORY)) {
        free(full);
        return NULL; /* like realpath(): only what exists */
    }
    return full;
}

int vmmem__os_map_shared_fd(int fd, uint64_t offset, size_t len, void **out)
{
    (void)fd, (void)offset, (void)len, (void)out;
    return -ENOSYS;
}

void vmmem__os_unmap(void *addr, size_t len)
{
    (void)addr, (void)len;
}

/* The store flush of os.h: Windows has it as one call. */
int vmmem__os_flush_writes(void)
{
    FlushProcessWriteBuffers();
    return VMMEM__FLUSH_WINDOWS;
}

const char *vmmem__os_errno_name(int e)
{
    (void)e;
    return NULL;
}

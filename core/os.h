/*
 * The core's platform layer: the few things POSIX and Windows do
 * differently, behind one small interface (os_posix.c, os_win.c; the build
 * compiles exactly one).  Everything else in core/ is portable C11 plus
 * pthreads (winpthreads on Windows).
 */
#ifndef VMMEM_OS_H
#define VMMEM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#if defined(_WIN32)
#define VMMEM__OS_PLUGIN_SUFFIX ".dll"
#define VMMEM__OS_PATH_LIST_SEP ';'
#else
#define VMMEM__OS_PLUGIN_SUFFIX ".so"
#define VMMEM__OS_PATH_LIST_SEP ':'
#endif

/* The host's page size (4096 if it cannot be read). */
VMMEM_HIDDEN uint64_t vmmem__os_page_size(void);

/* An absolute path: "/..." on POSIX; "C:\...", "C:/..." or "\\server\..." on Windows. */
VMMEM_HIDDEN bool vmmem__os_path_is_absolute(const char *path);
/* The last directory separator in path ('/', and '\\' on Windows), or NULL. */
VMMEM_HIDDEN const char *vmmem__os_last_sep(const char *path);

/* What the registry checks about a plugin file or directory. */
struct vmmem__os_file {
    bool regular;        /* a regular file */
    bool world_writable; /* anyone may replace it (never on Windows: ACLs) */
    uint64_t dev, ino;   /* identity: one file under two names is one plugin */
};
/* 0, or -errno with errno set. */
VMMEM_HIDDEN int vmmem__os_stat(const char *path, struct vmmem__os_file *out);

/*
 * Open a plugin and load that very file, after checking that nobody but root
 * or this process's user can have changed it.  POSIX: the file is opened
 * once; its descriptor must be a regular file owned by root or the effective
 * user and neither group- nor world-writable; so must every directory up to
 * "/", both above the path given and above the file's real location, except
 * that a sticky directory (such as /tmp) above the file's own directory may
 * be writable by others, who cannot rename what they do not own in it.  Then the same descriptor is
 * loaded (Linux: dlopen of /proc/self/fd/N), so the file cannot be swapped
 * between the checks and the load; without /proc the path is loaded and its
 * identity compared with the descriptor's.  The descriptor stays open while
 * the plugin is loaded.  Windows: stat, then LoadLibrary by path (ACLs
 * decide who may write).  0 and *out filled, or: -errno (cannot open or
 * stat), VMMEM_ENOT_PLUGIN (not a regular file, or the loader refused it),
 * -EPERM (not trusted); why then holds the reason, without the path.
 */
struct vmmem__os_plugin {
    void *lib;
    int fd;            /* -1: none */
    char fdname[32];   /* the name it was loaded by, "" when by path */
    uint64_t dev, ino; /* identity (0 on Windows) */
};
VMMEM_HIDDEN int vmmem__os_plugin_open(const char *path, struct vmmem__os_plugin *out, char *why,
                                       size_t whylen);
VMMEM_HIDDEN void vmmem__os_plugin_close(struct vmmem__os_plugin *p);

/* Dynamic loading (dlopen/LoadLibrary).  open: NULL with the reason in why. */
VMMEM_HIDDEN void *vmmem__os_dlopen(const char *path, char *why, size_t whylen);
VMMEM_HIDDEN void *vmmem__os_dlsym(void *lib, const char *name);
VMMEM_HIDDEN void vmmem__os_dlclose(void *lib);
/* Absolute path of the file holding the library's code, in buf; false if unknown. */
VMMEM_HIDDEN bool vmmem__os_self_path(char *buf, size_t cap);
/* Canonical absolute path of an existing directory (malloc'ed), or NULL. */
VMMEM_HIDDEN char *vmmem__os_realpath(const char *path);

/* Map len bytes of fd at offset shared read-write (the vhost-user log):
 * 0, or -errno (-ENOSYS where there is no such thing). */
VMMEM_HIDDEN int vmmem__os_map_shared_fd(int fd, uint64_t offset, size_t len, void **out);
VMMEM_HIDDEN void vmmem__os_unmap(void *addr, size_t len);

/*
 * Make every store that any thread of this process issued before the call
 * visible to the caller before it returns (a full barrier run on every CPU
 * that runs one of our threads): membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
 * where the kernel has it, else an mprotect that forces a TLB shootdown
 * (the same inter-processor interrupt), FlushProcessWriteBuffers on Windows.
 * Returns how it was done (VMMEM__FLUSH_*), for the tests and the docs.
 */
#define VMMEM__FLUSH_MEMBARRIER 1
#define VMMEM__FLUSH_MPROTECT 2
#define VMMEM__FLUSH_WINDOWS 3
#define VMMEM__FLUSH_NONE 0
VMMEM_HIDDEN int vmmem__os_flush_writes(void);

/* The errno constant's name ("ENOENT"), or NULL. */
VMMEM_HIDDEN const char *vmmem__os_errno_name(int e);

#endif

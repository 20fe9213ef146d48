/* The platform layer on Linux and other POSIX systems (see os.h). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os.h"

uint64_t vmmem__os_page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (uint64_t)ps : 4096;
}

bool vmmem__os_path_is_absolute(const char *path)
{
    return path[0] == '/';
}

const char *vmmem__os_last_sep(const char *path)
{
    return strrchr(path, '/');
}

int vmmem__os_stat(const char *path, struct vmmem__os_file *out)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    out->regular = S_ISREG(st.st_mode);
    out->world_writable = (st.st_mode & S_IWOTH) != 0;
    out->dev = (uint64_t)st.st_dev;
    out->ino = (uint64_t)st.st_ino;
    return 0;
}

void *vmmem__os_dlopen(const char *path, char *why, size_t whylen)
{
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror(); /* copy at once: dlerror is per-thread and one-shot */
        snprintf(why, whylen, "%s", e ? e : "unknown dlopen error");
    }
    return h;
}

/* ---- plugin trust (os.h) ---- */

/* Could anyone but root or us have changed it?  The reason, or NULL.
 * sticky_ok: a sticky directory may be writable by others. */
static const char *untrusted(const struct stat *st, bool sticky_ok, char *buf, size_t n)
{
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        snprintf(buf, n, "owned by uid %lu (neither root nor this process's user, uid %lu)",
                 (unsigned long)st->st_uid, (unsigned long)geteuid());
        return buf;
    }
    if (sticky_ok && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))
        return NULL;
    if (st->st_mode & S_IWOTH)
        return "world-writable";
    if (st->st_mode & S_IWGRP)
        return "group-writable";
    return NULL;
}

/* Every directory above the absolute path, "/" included.  The file's own
 * directory may not be writable by others even when sticky: a sticky bit
 * excuses only the directories above it (as /tmp above a build tree). */
static int check_dirs(const char *path, char *why, size_t whylen)
{
    char dir[PATH_MAX], buf[160];
    size_t len = strlen(path);
    if (len >= sizeof dir) {
        snprintf(why, whylen, "path too long");
        return -ENAMETOOLONG;
    }
    memcpy(dir, path, len + 1);
    for (bool parent = true;; parent = false) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            return 0;
        slash[slash == dir] = '\0'; /* "/x" -> "/" */
        struct stat st;
        if (stat(dir, &st) != 0) {
            int e = errno;
            snprintf(why, whylen, "directory '%s': %s", dir, strerror(e));
            return -e;
        }
        const char *bad = untrusted(&st, !parent, buf, sizeof buf);
        if (bad != NULL) {
            snprintf(why, whylen, "directory '%s' is %s", dir, bad);
            return -EPERM;
        }
        if (slash == dir)
            return 0;
    }
}

/*
 * dlopen finds loaded objects by name before it opens anything, so a
 * "/proc/self/fd/N" name must never stand for two files.  A descriptor
 * stays open while its plugin is loaded; when the object outlives the
 * handle (another handle of the same file keeps it, under a second name),
 * the number stays taken for good: parked here.
 */
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;

static int load_fd(int fd, const char *path, struct vmmem__os_plugin *out, char *why,
                   size_t whylen)
{
    snprintf(out->fdname, sizeof out->fdname, "/proc/self/fd/%d", fd);
    struct stat pst;
    if (stat(out->fdname, &pst) == 0 && (uint64_t)pst.st_dev == out->dev &&
        (uint64_t)pst.st_ino == out->ino) {
        if ((out->lib = vmmem__os_dlopen(out->fdname, why, whylen)) != NULL)
            return 0;
        size_t n = strlen(out->fdname); /* the loader names the descriptor: drop it */
        if (strncmp(why, out->fdname, n) == 0 && why[n] == ':' && why[n + 1] == ' ')
            memmove(why, why + n + 2, strlen(why + n + 2) + 1);
        return VMMEM_ENOT_PLUGIN;
    }
    /* No /proc: by path, then make sure it was the file checked. */
    out->fdname[0] = '\0';
    if ((out->lib = vmmem__os_dlopen(path, why, whylen)) == NULL)
        return VMMEM_ENOT_PLUGIN;
    if (stat(path, &pst) != 0 || (uint64_t)pst.st_dev != out->dev ||
        (uint64_t)pst.st_ino != out->ino) {
        dlclose(out->lib);
        out->lib = NULL;
        snprintf(why, whylen, "the file changed while it was being loaded");
        return -EPERM;
    }
    return 0;
}

int vmmem__os_plugin_open(const char *path, struct vmmem__os_plugin *out, char *why,
                          size_t whylen)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    /* O_NONBLOCK: a FIFO must not block the open (it is refused below). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        snprintf(why, whylen, "%s", strerror(e));
        return -e;
    }
    struct stat st;
    char buf[160];
    const char *bad;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(why, whylen, "%s", strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = VMMEM_ENOT_PLUGIN;
        snprintf(why, whylen, "not a regular file");
    } else if ((bad = untrusted(&st, false, buf, sizeof buf)) != NULL) {
        rc = -EPERM;
        snprintf(why, whylen, "the file is %s", bad);
    }
    /* The directories above the path given, and above where the file
     * really is (symlinks): anyone who may rename in one could have put
     * another file there. */
    char real[PATH_MAX];
    if (rc == 0)
        rc = check_dirs(path, why, whylen);
    if (rc == 0) {
        char link[40];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, real, sizeof real - 1);
        if (n > 0 && real[0] == '/') {
            real[n] = '\0';
        } else if (realpath(path, real) == NULL) {
            rc = -errno;
            snprintf(why, whylen, "cannot resolve the path: %s", strerror(-rc));
        }
    }
    if (rc == 0 && strcmp(real, path) != 0)
        rc = check_dirs(real, why, whylen);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    out->dev = (uint64_t)st.st_dev;
    out->ino = (uint64_t)st.st_ino;
    pthread_mutex_lock(&park_lock);
    rc = load_fd(fd, path, out, why, whylen);
    pthread_mutex_unlock(&park_lock);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    out->fd = fd;
    return 0;
}

void vmmem__os_plugin_close(struct vmmem__os_plugin *p)
{
    if (p->lib == NULL)
        return;
    pthread_mutex_lock(&park_lock);
    dlclose(p->lib);
    p->lib = NULL;
    bool parked = false;
    if (p->fdname[0] != '\0') {
        /* Still loaded (and maybe known by this name): keep the number. */
        void *still = dlopen(p->fdname, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        if (still != NULL) {
            dlclose(still);
            parked = true;
        }
    }
    if (!parked && p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    pthread_mutex_unlock(&park_lock);
}

void *vmmem__os_dlsym(void *lib, const char *name)
{
    return dlsym(lib, name);
}

void vmmem__os_dlclose(void *lib)
{
    dlclose(lib);
}

bool vmmem__os_self_path(char *buf, size_t cap)
{
    Dl_info info;
    if (dladdr((void *)vmmem__os_self_path, &info) == 0 || info.dli_fname == NULL ||
        info.dli_fname[0] != '/')
        return false;
    return (size_t)snprintf(buf, cap, "%s", info.dli_fname) < cap;
}

char *vmmem__os_realpath(const char *path)
{
    return realpath(path, NULL);
}

int vmmem__os_map_shared_fd(int fd, uint64_t offset, size_t len, void **out)
{
    void *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
    if (a == MAP_FAILED)
        return -errno;
    *out = a;
    return 0;
}

void vmmem__os_unmap(void *addr, size_t len)
{
    munmap(addr, len);
}

const char *vmmem__os_errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    return strerrorname_np(e);
#else
    (void)e;
    return NULL;
#endif
}

/* ---- process-wide store flush (dirty-page harvests, os.h) ---- */

#if defined(__linux__)
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>

static int flush_how;  /* VMMEM__FLUSH_*, set once */
static void *flush_page; /* the mprotect fallback's page */
static pthread_once_t flush_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER; /* one page, one flusher */

static void flush_init(void)
{
#ifdef SYS_membarrier
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0) {
        flush_how = VMMEM__FLUSH_MEMBARRIER;
        return;
    }
#endif
    /* No membarrier (old kernel, valgrind, qemu-user): taking write access
     * away from a present page makes the kernel interrupt every CPU running
     * this process to flush its TLB, and the interrupt drains store buffers
     * (what .NET's FlushProcessWriteBuffers does on such kernels). */
    void *p = mmap(NULL, (size_t)vmmem__os_page_size(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
        flush_page = p;
        flush_how = VMMEM__FLUSH_MPROTECT;
    }
}

int vmmem__os_flush_writes(void)
{
    pthread_once(&flush_once, flush_init);
    atomic_thread_fence(memory_order_seq_cst);
#ifdef SYS_membarrier
    if (flush_how == VMMEM__FLUSH_MEMBARRIER &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) == 0)
        return VMMEM__FLUSH_MEMBARRIER;
#endif
    int how = VMMEM__FLUSH_NONE;
    if (flush_page != NULL) {
        size_t ps = (size_t)vmmem__os_page_size();
        pthread_mutex_lock(&flush_lock);
        if (mprotect(flush_page, ps, PROT_READ | PROT_WRITE) == 0) {
            *(volatile char *)flush_page = 1; /* present and writable in the page table */
            if (mprotect(flush_page, ps, PROT_READ) == 0)
                how = VMMEM__FLUSH_MPROTECT;
        }
        pthread_mutex_unlock(&flush_lock);
        atomic_thread_fence(memory_order_seq_cst);
    }
    return how;
}
#else
int vmmem__os_flush_writes(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    return VMMEM__FLUSH_NONE;
}
#endif

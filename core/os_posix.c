/* The platform layer on Linux and other POSIX systems (see os.h). */
#include <dlfcn.h>
#include <errno.h>
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

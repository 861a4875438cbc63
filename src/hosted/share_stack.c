/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/share_stack.c - shareable stacks: memfd-backed, mapped twice.
 *
 *   map          map + page                               map + map_size
 *   | PROT_NONE  | MAP_SHARED of the memfd, offset 0 ... usable         |
 *   | anonymous  |                                                      |
 *                ^ lo                                                   ^ hi
 *
 *   alias        MAP_SHARED of the same pages, PROT_READ or read-write
 *
 * The guard page is the same anonymous PROT_NONE page as as_stack_alloc's,
 * so as_stack_free (one munmap of [map, map + map_size)) frees both kinds.
 *
 * Mapping the memory a second time needs a handle on it.  Linux has one
 * that costs nothing to keep: mremap(lo, 0, len, MREMAP_MAYMOVE) on a shared
 * mapping makes a new mapping of the same pages, so the memfd is closed as
 * soon as the stack is mapped and the memory lives exactly as long as its
 * mappings.  Emulators may refuse a zero old size (qemu-user does); there
 * the memfd stays open in a small table keyed by `map` and the alias is a
 * second mmap of it.  as_stack_free drops the stack's entry and closes its
 * descriptor (as__share_stack_forget), so that no stack mapped later at the
 * same address, private or shareable, finds it; aliases made before keep
 * the memory, as mappings do.
 */
#include "../share_impl.h"
#include "hosted.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static pthread_once_t dup_once = PTHREAD_ONCE_INIT;
static bool dup_works;

static void dup_probe(void)
{
    size_t page = as__page_size();
    int fd = memfd_create("altstack-probe", MFD_CLOEXEC);
    if (fd < 0)
        return;
    void *p = MAP_FAILED, *q = MAP_FAILED;
    if (ftruncate(fd, (off_t)page) == 0)
        p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return;
    q = mremap(p, 0, page, MREMAP_MAYMOVE);
    if (q != MAP_FAILED) {
        *(volatile char *)p = 1;
        dup_works = *(volatile char *)q == 1;
        munmap(q, page);
    }
    munmap(p, page);
}

/* The fallback's descriptors, by mapping address. */
#define FD_SLOTS 256
static struct { void *map; int fd; } fds[FD_SLOTS];
static pthread_mutex_t fds_lock = PTHREAD_MUTEX_INITIALIZER;
static int fds_used;                    /* entries in fds; read unlocked */

static int fd_put(void *map, int fd)
{
    int err = -AS_ENOMEM, free_slot = -1;
    pthread_mutex_lock(&fds_lock);
    for (int i = 0; i < FD_SLOTS; i++) {
        if (fds[i].map == map) {        /* a freed stack's: replace it */
            close(fds[i].fd);
            free_slot = i;
            break;
        }
        if (!fds[i].map && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0) {
        if (fds[free_slot].map != map)
            __atomic_store_n(&fds_used, fds_used + 1, __ATOMIC_RELAXED);
        fds[free_slot].map = map;
        fds[free_slot].fd = fd;
        err = 0;
    }
    pthread_mutex_unlock(&fds_lock);
    return err;
}

void as__share_stack_forget(const void *map)
{
    /* Nothing to do unless the fallback holds descriptors: an entry is
     * added by the thread that maps the stack, before it can be freed. */
    if (!map || !__atomic_load_n(&fds_used, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&fds_lock);
    for (int i = 0; i < FD_SLOTS; i++) {
        if (fds[i].map == map) {
            close(fds[i].fd);
            fds[i].map = NULL;
            __atomic_store_n(&fds_used, fds_used - 1, __ATOMIC_RELAXED);
            break;
        }
    }
    pthread_mutex_unlock(&fds_lock);
}

static int fd_get(const void *map)
{
    int fd = -1;
    pthread_mutex_lock(&fds_lock);
    for (int i = 0; i < FD_SLOTS; i++)
        if (map && fds[i].map == map)
            fd = fds[i].fd;
    pthread_mutex_unlock(&fds_lock);
    return fd;
}

/* Every alias as_stack_alias made and as_stack_unalias has not unmapped,
 * so that unalias unmaps only those: handed the stack's own memory or any
 * other address, it must fail rather than unmap what it does not own. */
static struct alias_rec { void *addr; size_t len; } *aliases;
static size_t n_aliases, cap_aliases;
static pthread_mutex_t aliases_lock = PTHREAD_MUTEX_INITIALIZER;

static int alias_put(void *addr, size_t len)
{
    int err = 0;
    pthread_mutex_lock(&aliases_lock);
    if (n_aliases == cap_aliases) {
        size_t cap = cap_aliases ? 2 * cap_aliases : 16;
        struct alias_rec *a = realloc(aliases, cap * sizeof *a);
        if (a) {
            aliases = a;
            cap_aliases = cap;
        } else {
            err = -AS_ENOMEM;
        }
    }
    if (!err)
        aliases[n_aliases++] = (struct alias_rec){ addr, len };
    pthread_mutex_unlock(&aliases_lock);
    return err;
}

/* Forget the alias at addr of len bytes; false if there is none. */
static bool alias_take(const void *addr, size_t len)
{
    bool found = false;
    pthread_mutex_lock(&aliases_lock);
    for (size_t i = 0; i < n_aliases; i++) {
        if (aliases[i].addr == addr && aliases[i].len == len) {
            aliases[i] = aliases[--n_aliases];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&aliases_lock);
    return found;
}

int as_stack_alloc_shareable(as_stack *s, size_t size)
{
    size_t usable;
    if (!s)
        return -AS_EINVAL;
    *s = (as_stack){0};
    int err = as__stack_size_check(size, &usable);
    if (err)
        return err;
    pthread_once(&dup_once, dup_probe);
    size_t page = as__page_size();
    size_t total = usable + page;
    int fd = memfd_create("altstack", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    void *m = MAP_FAILED;
    if (ftruncate(fd, (off_t)usable) == 0)
        m = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        close(fd);
        return -AS_ENOMEM;
    }
    /* Replace the usable part of the reservation with the memfd. */
    if (mmap((char *)m + page, usable, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0)
        == MAP_FAILED) {
        close(fd);
        munmap(m, total);
        return -AS_ENOMEM;
    }
    if (dup_works)
        close(fd);
    else if ((err = fd_put(m, fd)) != 0) {
        close(fd);
        munmap(m, total);
        return err;
    }
    as__stack_set(s, m, total);
    return 0;
}

static int alias_prot(int prot)
{
    if (prot == AS_PROT_READ)
        return PROT_READ;
    if (prot == AS_PROT_RW || prot == AS_PROT_WRITE)
        return PROT_READ | PROT_WRITE;
    return -1;
}

int as_stack_alias(const as_stack *s, int prot, void **alias)
{
    int mp = alias_prot(prot);
    if (!s || !alias || !s->map || !s->lo || (uintptr_t)s->hi <= (uintptr_t)s->lo || mp < 0)
        return -AS_EINVAL;
    *alias = NULL;
    size_t len = as_stack_size(s);
    void *a;
    pthread_once(&dup_once, dup_probe);
    if (dup_works) {
        /* EINVAL here: s is a private mapping, not a shareable stack. */
        a = mremap(s->lo, 0, len, MREMAP_MAYMOVE);
        if (a == MAP_FAILED)
            return errno == EINVAL ? -AS_EINVAL : -AS_ENOMEM;
        if (mprotect(a, len, mp) != 0) {
            int err = -errno;
            munmap(a, len);
            return err;
        }
    } else {
        int fd = fd_get(s->map);
        if (fd < 0)
            return -AS_EINVAL;
        a = mmap(NULL, len, mp, MAP_SHARED, fd, 0);
        if (a == MAP_FAILED)
            return -AS_ENOMEM;
    }
    if (alias_put(a, len) != 0) {
        munmap(a, len);
        return -AS_ENOMEM;
    }
    *alias = a;
    return 0;
}

int as_stack_unalias(const as_stack *s, void *alias)
{
    if (!s || !alias || ((uintptr_t)alias & (as__page_size() - 1)) ||
        (uintptr_t)s->hi <= (uintptr_t)s->lo)
        return -AS_EINVAL;
    size_t len = as_stack_size(s);
    if (!alias_take(alias, len))
        return -AS_EINVAL;      /* not an alias of this size: touch nothing */
    if (munmap(alias, len) != 0)
        return -errno;
    return 0;
}

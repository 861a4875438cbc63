/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/share_pkeys.c - the "pkeys" back-end: memory protection keys.
 *
 * A managed stack's pages carry a hardware key (pkey_mprotect); each
 * thread's PKRU register says, per key, "access disabled" (AD) and "write
 * disabled" (WD).  Entering a domain writes the thread's PKRU: no system
 * call, and rights are per thread.
 *
 * There are 16 keys, key 0 is everybody's default, so at most 15 stacks
 * hold a key at a time.  Keys are a cache over the managed stacks, as in
 * libmpk.  A managed stack is in one of three states:
 *
 *   keyed    key >= 0: PROT_READ|PROT_WRITE with that key; PKRU decides.
 *   open     key < 0, cur == RW: plain memory, everyone may touch it (from
 *            as_domain_init until the next entry of any domain).
 *   closed   key < 0, cur == NONE: PROT_NONE for every thread (evicted).
 *
 * Rules, all under the registry lock:
 *   1. A stack in some thread's current rights is *pinned* (d->pins counts
 *      those threads, each thread remembers what it pinned) and keyed.
 *   2. A key moves only from an unpinned stack (least recently entered
 *      first), which is closed first.  No thread's PKRU allows that key:
 *      each thread wrote its PKRU with every pool key denied except those
 *      of its pinned stacks, and a pinned stack never loses its key.
 *      Threads that never entered a domain run with the kernel's default
 *      PKRU, which denies every key but 0, and the pool is allocated with
 *      access disabled for the allocating thread.
 *   3. Entering pins the new set before unpinning the old one, so an error
 *      halfway (-EBUSY: every key pinned) leaves the thread as it was.
 *   4. While entering, the thread allows every pool key: it may be running
 *      on a stack that is just getting its key (a fiber's first entry of
 *      its own domain), and must not fault between pkey_mprotect and the
 *      final PKRU write.  Only library code runs in that window.
 *   5. A thread that exits gives its pins back (a pthread key destructor).
 *
 * The PKRU instructions exist on x86_64 only.  aarch64's equivalent
 * (POR_EL0, FEAT_S1POE) is not generally available to Linux userspace, so
 * there the back-end reports itself unsupported.
 */
#include "../share_impl.h"
#include "hosted.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if AS_ARCH_X86_64 && defined(SYS_pkey_alloc) && defined(SYS_pkey_mprotect)
#include <cpuid.h>

#define PK_AD 1u                    /* PKRU bit 2k: access disabled  */
#define PK_WD 2u                    /* PKRU bit 2k+1: write disabled */

static inline uint32_t rdpkru(void)
{
    uint32_t eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));
    return eax;
}

/* The "memory" clobber keeps accesses from moving across the change. */
static inline void wrpkru(uint32_t v)
{
    __asm__ volatile(".byte 0x0f, 0x01, 0xef" : : "a"(v), "c"(0), "d"(0) : "memory");
}

static struct {
    pthread_once_t once;
    unsigned n;                     /* keys in the pool               */
    int key[15];                    /* hardware key numbers           */
    as_domain *owner[15];           /* the stack holding each, or NULL */
    uint64_t tick;                  /* entry counter, for LRU         */
} pool = { .once = PTHREAD_ONCE_INIT };

/* The thread's current rights: what it pinned, and its domain. */
static _Thread_local struct {
    as_domain *cur;
    unsigned n;
    as_domain *pinned[AS__RIGHTS_MAX];
} self;

static pthread_key_t exit_key;

static void unpin_self(void);

static void on_thread_exit(void *unused)
{
    (void)unused;
    as__domain_lock();
    unpin_self();
    as__domain_unlock();
}

/* All pool keys' PKRU bits. */
static uint32_t pool_bits(void)
{
    uint32_t v = 0;
    for (unsigned k = 0; k < pool.n; k++)
        v |= (PK_AD | PK_WD) << (2 * pool.key[k]);
    return v;
}

static void probe(void)
{
    unsigned a, b, c, d;
    /* CPUID.(EAX=7,ECX=0):ECX bit 4 = OSPKE: the OS has set CR4.PKE. */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(c & (1u << 4)))
        return;
    if (pthread_key_create(&exit_key, on_thread_exit) != 0)
        return;
    while (pool.n < 15) {
        long k = syscall(SYS_pkey_alloc, 0UL, (unsigned long)PK_AD);
        if (k < 0)
            break;
        pool.key[pool.n++] = (int)k;
    }
}

bool as__pkeys_usable(void)
{
    pthread_once(&pool.once, probe);
    return pool.n > 0;
}

bool as_domain_pkeys_supported(void)
{
    return as__pkeys_usable();
}

static int pkey_prot(as_domain *d, int prot, int hwkey)
{
    if (syscall(SYS_pkey_mprotect, d->lo, as__domain_len(d), prot, hwkey) != 0)
        return -errno;
    return 0;
}

/* Give d a key (lock held; d is pinned, so it cannot be its own victim). */
static int take_key(as_domain *d)
{
    unsigned k, best = pool.n;
    for (k = 0; k < pool.n && pool.owner[k]; k++)
        if (!pool.owner[k]->pins && (best == pool.n || pool.owner[k]->lru < pool.owner[best]->lru))
            best = k;
    if (k == pool.n) {              /* none free: evict (rule 2) */
        if (best == pool.n)
            return -AS_EBUSY;
        as_domain *v = pool.owner[best];
        int err = pkey_prot(v, PROT_NONE, 0);
        if (err)
            return err;
        v->key = -1;
        v->cur = AS_PROT_NONE;
        pool.owner[best] = NULL;
        k = best;
    }
    int err = pkey_prot(d, PROT_READ | PROT_WRITE, pool.key[k]);
    if (err)
        return err;
    if (d->key < 0 && d->cur != AS_PROT_NONE)
        as__open_del(d);
    d->key = (int16_t)k;
    d->cur = AS_PROT_RW;
    pool.owner[k] = d;
    return 0;
}

static void unpin_self(void)
{
    for (unsigned i = 0; i < self.n; i++)
        self.pinned[i]->pins--;
    self.n = 0;
}

static int pk_apply(const struct as__rights *r)
{
    uint32_t before = rdpkru();
    wrpkru(before & ~pool_bits());  /* rule 4 */
    for (unsigned i = 0; i < r->n; i++)
        r->d[i]->pins++;
    for (unsigned i = 0; i < r->n; i++) {
        as_domain *d = r->d[i];
        int err = d->key < 0 ? take_key(d) : 0;
        if (err) {                  /* rule 3: back to where we were */
            for (unsigned j = 0; j < r->n; j++)
                r->d[j]->pins--;
            wrpkru(before);
            return err;
        }
        d->lru = ++pool.tick;
    }
    if (self.n == 0 && r->n)        /* rule 5 */
        pthread_setspecific(exit_key, &self);
    unpin_self();
    for (unsigned i = 0; i < r->n; i++)
        self.pinned[i] = r->d[i];
    self.n = r->n;

    /* Open stacks are in nobody's rights (those are keyed): close them. */
    for (as_domain *d = as__open_first(), *next; d; d = next) {
        next = d->onext;
        if (pkey_prot(d, PROT_NONE, 0) == 0) {
            d->cur = AS_PROT_NONE;
            as__open_del(d);
        }
    }

    uint32_t v = before | pool_bits();
    for (unsigned i = 0; i < r->n; i++) {
        unsigned sh = 2u * (unsigned)pool.key[r->d[i]->key];
        v &= ~((PK_AD | PK_WD) << sh);
        if (!(r->prot[i] & AS_PROT_WRITE))
            v |= PK_WD << sh;
    }
    wrpkru(v);
    return 0;
}

static void pk_attach(as_domain *d)
{
    d->key = -1;
    d->cur = AS_PROT_RW;            /* open until the next entry */
    as__open_add(d);
}

/* Make d plain read-write memory again (lock held, d unpinned). */
static int pk_release(as_domain *d)
{
    if (d->key < 0 && d->cur == AS_PROT_RW)
        return 0;
    int err = pkey_prot(d, PROT_READ | PROT_WRITE, 0);
    if (err)
        return err;
    if (d->key >= 0)
        pool.owner[d->key] = NULL;
    d->key = -1;
    d->cur = AS_PROT_RW;
    as__open_add(d);                /* keyed and closed stacks are not listed */
    return 0;
}

static int pk_detach(as_domain *d)
{
    if (d->pins)
        return -AS_EBUSY;
    int err = pk_release(d);
    if (!err)
        as__open_del(d);
    return err;
}

static int pk_leave(void)
{
    unpin_self();
    self.cur = NULL;
    int err = 0;
    for (as_domain *d = as__registry_first(); d; d = d->next) {
        int e = d->pins ? -AS_EBUSY : pk_release(d);
        if (e && !err)
            err = e;
    }
    wrpkru(rdpkru() | pool_bits());
    return err;
}

#else /* no protection keys on this architecture */

bool as__pkeys_usable(void) { return false; }
bool as_domain_pkeys_supported(void) { return false; }

static _Thread_local struct { as_domain *cur; } self;

static int pk_apply(const struct as__rights *r) { (void)r; return -AS_ENOTSUP; }
static void pk_attach(as_domain *d) { (void)d; }
static int pk_detach(as_domain *d) { (void)d; return 0; }
static int pk_leave(void) { return -AS_ENOTSUP; }

#endif

static as_domain **pk_cur(void) { return &self.cur; }

const struct as__ops as__ops_pkeys = {
    .name = "pkeys",
    .check = as__page_aligned,
    .attach = pk_attach,
    .detach = pk_detach,
    .apply = pk_apply,
    .leave = pk_leave,
    .cur = pk_cur,
};

/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/share_pkeys.c - the "pkeys" back-end: memory protection keys.
 *
 * A managed stack's pages carry a hardware key (pkey_mprotect); each
 * thread's PKRU register says, per key, "access disabled" (AD) and "write
 * disabled" (WD).  Entering a domain writes the thread's PKRU: no system
 * call, and rights are per thread.
 *
 * There are 16 keys and key 0 is everybody's default, so at most 15 stacks
 * hold a key at a time.  Keys are a cache over the managed stacks, as in
 * libmpk; the pool grows one pkey_alloc at a time, when a stack first needs
 * a key.  A managed stack is in one of three states:
 *
 *   keyed    key >= 0: PROT_READ|PROT_WRITE with that key; PKRU decides.
 *   open     key < 0, cur == RW: plain memory, everyone may touch it (from
 *            as_domain_init until the next entry of any domain).
 *   closed   key < 0, cur == NONE: PROT_NONE for every thread (evicted).
 *
 * The fast path.  Each domain keeps its PKRU bits ready (d->pkru: AD|WD
 * for every pool key, cleared for its own stack and its keyed grants),
 * built for one key generation (d->pkgen).  pk.gen changes whenever a key
 * is allocated or moves and whenever a rights table or the registry
 * changes.  as_switch_domain with a ready word takes no lock and makes no
 * system call: it publishes the target domain in the thread's record,
 * reads the generation, and hands the word to as__switch_pkru
 * (src/arch/x86_64/share.S), which writes PKRU once, after saving the
 * caller's registers and before touching the target's stack.
 *
 * Invariant: a thread's PKRU allows a pool key only if the key's stack is
 * in the rights of the domain in its record (its own stack or a grant), or
 * it is the stack the thread is running on.  It can be broken from outside
 * the library's control only in ways that never widen access to a *moved*
 * key: a new thread starts with its creator's PKRU (the kernel copies it),
 * and a revoke takes effect at the next entry.  So no key is ever given
 * to a stack before a shootdown:
 *
 *   1. under the registry lock, pk.gen++ (every ready word goes stale: a
 *      fast path that reads the new generation takes the lock and waits);
 *   2. every other thread of the process (/proc/self/task, entered a domain
 *      or not) gets the shootdown signal; its handler rewrites the PKRU
 *      saved in its signal frame, denying every pool key not justified by
 *      its record's domain or the stack it was interrupted on, and reports
 *      both; rt_sigreturn then installs that PKRU;
 *   3. when all have answered, the stacks reported are in use: a victim is
 *      chosen among the others (least recently entered first), closed, and
 *      its key given to the stack that needs it.
 * A fast path publishes its domain before it reads the generation, and the
 * signal orders the two sides: either the handler saw the new domain (its
 * stacks are then in use and keep their keys) or the fast path reads the
 * new generation afterwards (and goes slow).  Only rights are dropped in
 * step 2, never added.
 *
 * Entering needs keys for the new rights only (plus the managed stack the
 * caller runs on, if it is not among them).  Feasibility is settled before
 * anything changes: if too few keys can be freed, entering returns -EBUSY
 * with every stack as it was.
 *
 * fork: the child has one thread; pthread_atfork holds the registry lock
 * across the fork and leaves the child's thread list holding only itself.
 *
 * The PKRU instructions exist on x86_64 only.  aarch64's equivalent
 * (POR_EL0, FEAT_S1POE) is not generally available to Linux userspace, so
 * there the back-end reports itself unsupported.
 */
#include "../share_impl.h"
#include "hosted.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if AS_ARCH_X86_64 && defined(SYS_pkey_alloc) && defined(SYS_pkey_mprotect)
#include <cpuid.h>
#include <dirent.h>
#include <ucontext.h>

#define PK_AD 1u                    /* PKRU bit 2k: access disabled  */
#define PK_WD 2u                    /* PKRU bit 2k+1: write disabled */
#define PK_KEYS 15
#define PK_SD_WAIT_NS 2000000000L   /* a thread that never answers: -EBUSY */

static inline uint32_t rdpkru(void)
{
    uint32_t eax, edx;
    __asm__ volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
    return eax;
}

/* The "memory" clobber keeps accesses from moving across the change. */
static inline void wrpkru(uint32_t v)
{
    __asm__ volatile("wrpkru" : : "a"(v), "c"(0), "d"(0) : "memory");
}

/* src/arch/x86_64/share.S */
AS_HIDDEN as_transfer as__switch_pkru(as_ctx to, void *data, uint32_t bits, uint32_t mask);
extern AS_HIDDEN char as__pkru_window[], as__pkru_window_end[];
AS_HIDDEN void as__pkeys_sd_entry(int sig, siginfo_t *si, void *uc);
AS_HIDDEN void as__pkeys_sd_handler(int sig, siginfo_t *si, void *uc);

/* A thread that entered a domain. */
struct pk_thread {
    as_domain *cur;                 /* its domain (published first)     */
    struct pk_thread *next, *prev;
    bool listed;
};

/* One thread's answer to a shootdown. */
struct pk_answer {
    pid_t tid;
    as_domain *cur, *on;
};

static struct {
    pthread_once_t once;
    bool ok;                        /* OSPKE, pkey_alloc and the signal */
    int sig;
    unsigned n;                     /* keys in the pool                 */
    int key[PK_KEYS];               /* hardware key numbers             */
    as_domain *owner[PK_KEYS];      /* the stack holding each, or NULL  */
    uint32_t mask;                  /* AD|WD of every pool key          */
    unsigned pkru_off;              /* PKRU in a standard XSAVE area    */
    uint64_t tick;                  /* entries, for LRU                 */
    uint32_t gen;                   /* key generation (see above)       */
    uint32_t applied;               /* gen at the end of the last entry:
                                       no stack is open while it is gen */
    struct pk_thread *threads;
    pthread_key_t exit_key;
    /* The shootdown in progress. */
    int active;
    unsigned acks, cap;
    struct pk_answer *answers;
} pk = { .once = PTHREAD_ONCE_INIT };

/* initial-exec: the switch reads it with one %fs-relative load, no
 * __tls_get_addr call (as preempt.c and dlock_thread.c do). */
static _Thread_local struct pk_thread self __attribute__((tls_model("initial-exec")));

/* The calling thread's record, through a call: code that a context switch
 * may have moved to another thread must not reuse a cached TLS address. */
static __attribute__((noinline)) struct pk_thread *me_thread(void)
{
    return &self;
}

static void on_thread_exit(void *unused)
{
    (void)unused;
    as__domain_lock();
    struct pk_thread *t = &self;
    if (t->listed) {
        if (t->prev)
            t->prev->next = t->next;
        else
            pk.threads = t->next;
        if (t->next)
            t->next->prev = t->prev;
        t->listed = false;
    }
    t->cur = NULL;
    as__domain_unlock();
}

static void list_self(void)
{
    struct pk_thread *t = &self;
    if (t->listed)
        return;
    t->prev = NULL;
    t->next = pk.threads;
    if (pk.threads)
        pk.threads->prev = t;
    pk.threads = t;
    t->listed = true;
    pthread_setspecific(pk.exit_key, t);
}

/* fork: hold the lock across it; the child keeps only its own thread. */
static void fork_prepare(void) { as__domain_lock(); }
static void fork_parent(void) { as__domain_unlock(); }
static void fork_child(void)
{
    struct pk_thread *t = &self;
    pk.threads = NULL;
    t->listed = false;
    if (t->cur)
        list_self();
    pk.active = 0;
    as__domain_lock_reset();
}

static void probe(void)
{
    unsigned a, b, c, d;
    /* CPUID.(EAX=7,ECX=0):ECX bit 4 = OSPKE: the OS has set CR4.PKE. */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(c & (1u << 4)))
        return;
    /* Where PKRU (XSAVE component 9) sits in a signal frame's XSAVE area. */
    if (!__get_cpuid_count(0xd, 9, &a, &b, &c, &d) || a < 4)
        return;
    pk.pkru_off = b;
    /* The kernel must hand out keys: allocate one to see, and keep it. */
    long k = syscall(SYS_pkey_alloc, 0UL, (unsigned long)PK_AD);
    if (k < 0)
        return;
    pk.key[pk.n++] = (int)k;
    pk.mask = (PK_AD | PK_WD) << (2 * k);
    if (pthread_key_create(&pk.exit_key, on_thread_exit) != 0)
        return;
    pk.sig = SIGRTMIN + 5;
    struct sigaction sa = { .sa_sigaction = as__pkeys_sd_entry,
                            .sa_flags = SA_SIGINFO | SA_RESTART };
    sigemptyset(&sa.sa_mask);
    if (sigaction(pk.sig, &sa, NULL) != 0)
        return;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    pk.ok = true;
}

static bool pk_usable(void)
{
    pthread_once(&pk.once, probe);
    return pk.ok;
}

bool as_domain_pkeys_supported(void)
{
    return pk_usable();
}

static int pkey_prot(as_domain *d, int prot, int hwkey)
{
    if (syscall(SYS_pkey_mprotect, d->lo, as__domain_len(d), prot, hwkey) != 0)
        return -errno;
    return 0;
}

/* PKRU bits that allow the rights set r, given the keys as they are; the
 * stacks of r without a key add nothing. */
static uint32_t bits_of(const struct as__rights *r, as_domain *on)
{
    uint32_t v = pk.mask;
    for (unsigned i = 0; i < r->n; i++) {
        if (r->d[i]->key < 0)
            continue;
        unsigned sh = 2u * (unsigned)pk.key[r->d[i]->key];
        v &= ~((PK_AD | PK_WD) << sh);
        if (!(r->prot[i] & AS_PROT_WRITE))
            v |= PK_WD << sh;
    }
    if (on && on->key >= 0)
        v &= ~((PK_AD | PK_WD) << (2u * (unsigned)pk.key[on->key]));
    return v;
}

/* ---- the shootdown ------------------------------------------------------- */

/* Rewrite the interrupted PKRU, dropping what no right justifies.  Runs
 * while the mover holds the registry lock and waits: it reads the
 * registry, writes only its own answer slot. */
void as__pkeys_sd_handler(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    if (!__atomic_load_n(&pk.active, __ATOMIC_ACQUIRE) || si->si_code != SI_TKILL ||
        si->si_pid != getpid())
        return;
    ucontext_t *uc = ctx;
    struct pk_thread *t = &self;
    as_domain *cur = __atomic_load_n(&t->cur, __ATOMIC_RELAXED);
    as_domain *on = as__domain_at((void *)uc->uc_mcontext.gregs[REG_RSP]);
    struct as__rights r;
    as__rights_peek(cur, &r);
    uint32_t deny = bits_of(&r, on);

    /* The frame's XSAVE area (standard format): header at 512, PKRU at
     * pkru_off.  A clear XSTATE_BV bit 9 means "init", which is 0: set
     * the bit so our value is what rt_sigreturn installs. */
    char *xs = (char *)uc->uc_mcontext.fpregs;
    if (xs) {
        uint32_t *magic = (uint32_t *)(xs + 464);      /* sw_reserved.magic1 */
        uint64_t *bv = (uint64_t *)(xs + 512);
        uint32_t *pkru = (uint32_t *)(xs + pk.pkru_off);
        if (*magic == 0x46505853u) {                   /* FP_XSTATE_MAGIC1 */
            uint32_t old = (*bv & (1u << 9)) ? *pkru : 0;
            *pkru = old | deny;
            *bv |= 1u << 9;
        }
    }
    /* Interrupted between as__switch_pkru's read and write of PKRU: its
     * eax came from the PKRU before this rewrite.  Restart the window
     * with the rights as they are now (the domain it is entering is the
     * one it published). */
    greg_t *g = uc->uc_mcontext.gregs;
    if ((uintptr_t)g[REG_RIP] >= (uintptr_t)as__pkru_window &&
        (uintptr_t)g[REG_RIP] < (uintptr_t)as__pkru_window_end) {
        g[REG_RIP] = (greg_t)(uintptr_t)as__pkru_window;
        g[REG_R8] = (greg_t)(uint32_t)~pk.mask;
        g[REG_R11] = (greg_t)bits_of(&r, NULL);
    }
    unsigned i = __atomic_fetch_add(&pk.acks, 1u, __ATOMIC_RELAXED) & 0xffffu;
    if (i < pk.cap)
        pk.answers[i] = (struct pk_answer){ (pid_t)syscall(SYS_gettid), cur, on };
    __atomic_fetch_add(&pk.acks, 1u << 16, __ATOMIC_RELEASE);  /* answer written */
}

/* Does thread `tid` block the shootdown signal?  (its SigBlk line) */
static bool blocks_signal(pid_t tid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;                /* gone */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = 0;
    char *p = strstr(buf, "SigBlk:");
    if (!p)
        return false;
    unsigned long long m = strtoull(p + 7, NULL, 16);
    return (m >> (pk.sig - 1)) & 1;
}

static bool answered(pid_t tid, unsigned got)
{
    for (unsigned i = 0; i < got && i < pk.cap; i++)
        if (pk.answers[i].tid == tid)
            return true;
    return false;
}

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000000000L + (now.tv_nsec - t0->tv_nsec);
}

/* Signal every other thread, wait for the answers, mark what they use
 * (d->busy).  Lock held.  A thread that blocks the signal cannot answer:
 * it is not waited for, and is taken to run without domain rights (see
 * share.h).  0, or -EBUSY if a thread never answered. */
static int shootdown(void)
{
    pk.gen++;
    for (as_domain *d = as__registry_first(); d; d = d->next)
        d->busy = 0;
    for (struct pk_thread *t = pk.threads; t; t = t->next) {
        if (t == &self)
            continue;
        struct as__rights r;
        as__rights_peek(__atomic_load_n(&t->cur, __ATOMIC_RELAXED), &r);
        for (unsigned i = 0; i < r.n; i++)
            r.d[i]->busy = 1;
    }
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -errno;
    pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
    unsigned cap = 0, sent = 0;
    pid_t *tids = NULL;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        pid_t t = (pid_t)atol(e->d_name);
        if (t <= 0 || t == tid)
            continue;
        if (sent == cap) {
            cap = cap ? 2 * cap : 16;
            pid_t *nt = realloc(tids, cap * sizeof *nt);
            if (!nt) {
                free(tids);
                closedir(dir);
                return -AS_ENOMEM;
            }
            tids = nt;
        }
        tids[sent++] = t;
    }
    closedir(dir);
    if (!sent)
        return 0;
    struct pk_answer *ans = malloc(sent * sizeof *ans);
    if (!ans) {
        free(tids);
        return -AS_ENOMEM;
    }
    pk.answers = ans;
    pk.cap = sent;
    pk.acks = 0;
    __atomic_store_n(&pk.active, 1, __ATOMIC_RELEASE);
    unsigned want = 0;
    for (unsigned i = 0; i < sent; i++) {
        if (syscall(SYS_tgkill, pid, tids[i], pk.sig) == 0)
            tids[want++] = tids[i];
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int err = 0;
    bool checked = false;
    for (;;) {
        unsigned got = __atomic_load_n(&pk.acks, __ATOMIC_ACQUIRE) >> 16;
        if (got >= want)
            break;
        long ns = elapsed_ns(&t0);
        if (!checked && ns > 1000000) {
            /* Drop the threads that block the signal from the wait. */
            unsigned w = 0;
            for (unsigned i = 0; i < want; i++)
                if (answered(tids[i], got) || !blocks_signal(tids[i]))
                    tids[w++] = tids[i];
            want = w;
            checked = true;
            continue;
        }
        if (ns > PK_SD_WAIT_NS) {
            err = -AS_EBUSY;
            break;
        }
        sched_yield();
    }
    __atomic_store_n(&pk.active, 0, __ATOMIC_RELEASE);
    unsigned got = __atomic_load_n(&pk.acks, __ATOMIC_ACQUIRE) >> 16;
    for (unsigned i = 0; i < got && i < pk.cap; i++) {
        struct as__rights r;
        as__rights_peek(ans[i].cur, &r);
        for (unsigned j = 0; j < r.n; j++)
            r.d[j]->busy = 1;
        if (ans[i].on)
            ans[i].on->busy = 1;
    }
    pk.answers = NULL;
    pk.cap = 0;
    free(ans);
    free(tids);
    return err;
}

/* ---- keys ----------------------------------------------------------------- */

static void evict(unsigned k)
{
    as_domain *v = pk.owner[k];
    if (v && pkey_prot(v, PROT_NONE, 0) == 0) {
        v->key = -1;
        v->cur = AS_PROT_NONE;
    }
    pk.owner[k] = NULL;
}

/* Give a key to every stack of r that has none (lock held).  Settles
 * feasibility first: -EBUSY leaves every stack as it was. */
static int ensure_keys(const struct as__rights *r)
{
    unsigned need = 0, spare = 0;
    for (unsigned i = 0; i < r->n; i++)
        need += r->d[i]->key < 0;
    if (!need)
        return 0;
    for (unsigned k = 0; k < pk.n; k++)
        spare += pk.owner[k] == NULL;
    while (spare < need && pk.n < PK_KEYS) {
        long k = syscall(SYS_pkey_alloc, 0UL, (unsigned long)PK_AD);
        if (k < 0)
            break;
        pk.key[pk.n] = (int)k;
        pk.owner[pk.n++] = NULL;
        pk.mask |= (PK_AD | PK_WD) << (2 * k);
        spare++;
    }
    /* Keys move only after every thread has dropped what it may not keep. */
    int err = shootdown();
    if (err)
        return err;
    for (unsigned i = 0; i < r->n; i++)
        r->d[i]->busy = 1;
    unsigned victims = 0;
    for (unsigned k = 0; k < pk.n; k++)
        victims += pk.owner[k] && !pk.owner[k]->busy;
    if (spare + victims < need)
        return -AS_EBUSY;
    for (unsigned i = 0; i < r->n; i++) {
        as_domain *d = r->d[i];
        if (d->key >= 0)
            continue;
        unsigned k, best = pk.n;
        for (k = 0; k < pk.n && pk.owner[k]; k++)
            if (!pk.owner[k]->busy && (best == pk.n || pk.owner[k]->lru < pk.owner[best]->lru))
                best = k;
        if (k == pk.n) {
            k = best;
            evict(k);
            if (pk.owner[k])
                return -AS_EBUSY;
        }
        err = pkey_prot(d, PROT_READ | PROT_WRITE, pk.key[k]);
        if (err)
            return err;
        if (d->cur != AS_PROT_NONE)
            as__open_del(d);        /* was open */
        d->key = (int16_t)k;
        d->cur = AS_PROT_RW;
        pk.owner[k] = d;
    }
    return 0;
}

/* Build d's ready word (lock held; d's stacks keyed as far as they can be). */
static void build(as_domain *d)
{
    struct as__rights r;
    as__rights_of(d, NULL, &r);
    d->pkru = bits_of(&r, NULL);
    __atomic_store_n(&d->pkgen, pk.gen, __ATOMIC_RELEASE);
}

static int pk_apply(as_domain *d, as_domain *keep, const struct as__rights *r)
{
    int err = ensure_keys(r);
    if (err)
        return err;
    uint64_t tick = ++pk.tick;
    for (unsigned i = 0; i < r->n; i++)
        r->d[i]->lru = tick;
    /* Open stacks are in nobody's rights (those are keyed): close them. */
    for (as_domain *o = as__open_first(), *next; o; o = next) {
        next = o->onext;
        if (o != keep && pkey_prot(o, PROT_NONE, 0) == 0) {
            o->cur = AS_PROT_NONE;
            as__open_del(o);
        }
    }
    uint32_t bits = pk.mask;
    if (d) {
        build(d);
        bits = d->pkru;
    }
    if (keep && keep->key >= 0)
        bits &= ~((PK_AD | PK_WD) << (2u * (unsigned)pk.key[keep->key]));
    list_self();
    __atomic_store_n(&self.cur, d, __ATOMIC_RELAXED);
    wrpkru((rdpkru() & ~pk.mask) | bits);
    pk.applied = pk.gen;
    return 0;
}

/* The slow path of a switch, or a target resumed into the wrong rights:
 * enter d under the lock (keeping the stack we run on), then switch. */
static as_transfer pk_switch_slow(as_ctx to, as_domain *d, void *data)
{
    char here;
    as__domain_lock();
    as_domain *keep = as__domain_at(&here);
    struct as__rights r;
    as__rights_of(d, keep, &r);
    int err = pk_apply(d, keep, &r);
    uint32_t bits = d ? d->pkru : pk.mask, mask = pk.mask;
    as__domain_unlock();
    if (AS_UNLIKELY(err))
        __builtin_trap();
    if (d && d->fresh)              /* its domain_start closes our stack */
        return as_switch(to, data);
    return as__switch_pkru(to, data, bits, mask);
}

/* Re-enter `me` after a resume that left other rights (lock taken). */
static void pk_reenter(as_domain *me)
{
    as__domain_lock();
    struct as__rights r;
    as__rights_of(me, NULL, &r);
    int err = pk_apply(me, NULL, &r);
    as__domain_unlock();
    if (AS_UNLIKELY(err))
        __builtin_trap();
}

static __attribute__((unused)) as_transfer pk_switch(as_ctx to, as_domain *d, void *data)
{
    struct pk_thread *t = &self;
    as_domain *me = t->cur;
    as_transfer r;
    if (AS_LIKELY(!d || !d->fresh)) {
        /* Publish first, then read the generation (see the shootdown).
         * Outside every domain (d NULL) the word is "every pool key
         * denied", ready as long as no stack is open. */
        __atomic_store_n(&t->cur, d, __ATOMIC_RELAXED);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        uint32_t gen = __atomic_load_n(&pk.gen, __ATOMIC_RELAXED);
        if (AS_LIKELY(d ? __atomic_load_n(&d->pkgen, __ATOMIC_ACQUIRE) == gen
                        : __atomic_load_n(&pk.applied, __ATOMIC_RELAXED) == gen)) {
            r = as__switch_pkru(to, data, d ? d->pkru : pk.mask, pk.mask);
            goto resumed;
        }
        __atomic_store_n(&t->cur, me, __ATOMIC_RELAXED);
    }
    r = pk_switch_slow(to, d, data);
resumed:
    t = me_thread();
    if (AS_UNLIKELY(t->cur != me))  /* resumed by a switch into other rights */
        pk_reenter(me);
    return r;
}

static void pk_changed(void)
{
    pk.gen++;
}

static void pk_attach(as_domain *d)
{
    d->key = -1;
    d->cur = AS_PROT_RW;            /* open until the next entry */
    as__open_add(d);
}

/* Is d in the current rights of some thread?  (lock held) */
static bool in_use(const as_domain *d)
{
    for (struct pk_thread *t = pk.threads; t; t = t->next) {
        struct as__rights r;
        as__rights_peek(__atomic_load_n(&t->cur, __ATOMIC_RELAXED), &r);
        for (unsigned i = 0; i < r.n; i++)
            if (r.d[i] == d)
                return true;
    }
    return false;
}

/* Make d plain read-write memory again (lock held). */
static int pk_release(as_domain *d)
{
    if (d->key < 0 && d->cur == AS_PROT_RW)
        return 0;
    int err = pkey_prot(d, PROT_READ | PROT_WRITE, 0);
    if (err)
        return err;
    if (d->key >= 0)
        pk.owner[d->key] = NULL;
    d->key = -1;
    d->cur = AS_PROT_RW;
    as__open_add(d);                /* keyed and closed stacks are not listed */
    pk.gen++;
    return 0;
}

static int pk_detach(as_domain *d)
{
    if (in_use(d))
        return -AS_EBUSY;
    int err = pk_release(d);
    if (!err)
        as__open_del(d);
    return err;
}

static int pk_leave(void)
{
    __atomic_store_n(&self.cur, NULL, __ATOMIC_RELAXED);
    int err = 0;
    for (as_domain *d = as__registry_first(); d; d = d->next) {
        int e = in_use(d) ? -AS_EBUSY : pk_release(d);
        if (e && !err)
            err = e;
    }
    wrpkru(rdpkru() | pk.mask);
    return err;
}

#if defined(AS_ASAN) && AS_ASAN
# define PK_SWITCH NULL             /* the wrapped as_switch tells ASan */
#else
# define PK_SWITCH pk_switch
#endif

#else /* no protection keys on this architecture */

bool as_domain_pkeys_supported(void) { return false; }

static bool pk_usable(void) { return false; }
static _Thread_local struct { as_domain *cur; } self;
static int pk_apply(as_domain *d, as_domain *keep, const struct as__rights *r)
{
    (void)d; (void)keep; (void)r;
    return -AS_ENOTSUP;
}
static void pk_attach(as_domain *d) { (void)d; }
static int pk_detach(as_domain *d) { (void)d; return 0; }
static int pk_leave(void) { return -AS_ENOTSUP; }
#define PK_SWITCH NULL
#define pk_changed NULL

#endif

static as_domain **pk_cur(void) { return &self.cur; }

const struct as__ops as__ops_pkeys = {
    .name = "pkeys",
    .usable = pk_usable,
    .check = as__page_check,
    .attach = pk_attach,
    .detach = pk_detach,
    .apply = pk_apply,
    .leave = pk_leave,
    .cur = pk_cur,
    .sw = PK_SWITCH,
    .changed = pk_changed,
};

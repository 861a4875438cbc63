/* SPDX-License-Identifier: MIT */
/*
 * altstack/share.h - stack isolation domains and shareable stacks.
 *
 * In one address space every context can scribble on every other context's
 * stack.  A *domain* confines a context to its own stack: while a domain is
 * entered, every other *managed* stack is inaccessible, except the stacks
 * explicitly granted to the domain, with the rights granted (read-only or
 * read-write).  Sharing is for the legitimate cases: a message queue whose
 * receive buffer lives on the blocked receiver's stack, a blocking read that
 * fills a buffer on the reader's stack.
 *
 *     as_stack a, b;  as_domain da, db;
 *     as_stack_alloc(&a, 64 << 10);  as_stack_alloc(&b, 64 << 10);
 *     as_domain_init(&da, &a);          // a and b are now managed stacks
 *     as_domain_init(&db, &b);
 *     as_domain_grant(&da, &b, AS_PROT_READ);   // a's code may read b
 *     as_ctx ca = as_domain_ctx_make(&da, fiber_a);
 *     as_ctx cb = as_domain_ctx_make(&db, fiber_b);
 *     as_switch_domain(ca, &da, NULL);  // fiber_a runs: a read-write, b
 *                                       // read-only, every other managed
 *                                       // stack untouchable
 *     ...                               // fibers switch with
 *                                       // as_switch_domain(cb, &db, x)
 *     as_domain_fini(&da); as_domain_fini(&db);
 *     as_stack_free(&a); as_stack_free(&b);
 *
 * Managed stacks.  A stack is managed from as_domain_init (as that domain's
 * own stack) until as_domain_fini; each stack is the own stack of at most
 * one domain.  Only managed stacks are ever protected: memory that is not
 * a managed stack (heap, globals, the thread's original stack, alias
 * mappings made by as_stack_alias) is never touched.  A grant names a
 * stack by its memory range; it has effect while that stack is managed
 * (granting an unmanaged stack is allowed and does nothing until it is).
 *
 * Rights.  While domain d is entered: d's own stack is read-write; a stack
 * granted to d has the granted rights; every other managed stack has none
 * (touching it raises SIGSEGV in hosted builds, whatever the kernel's hook
 * makes of it in freestanding ones).  Rights change only when a domain is
 * entered (as_domain_enter, as_switch_domain): grant and revoke edit the
 * table, and take effect at the next entry of that domain.  A stack made
 * managed by as_domain_init stays accessible until the next entry of any
 * domain.  Write implies read (AS_PROT_WRITE alone means read-write), as on
 * the hardware.
 *
 * Switching.  as_switch_domain(to, d, data) is as_switch plus the rights of
 * d.  The switch writes the caller's registers to the caller's stack and
 * reads the target's from the target's, so the rights must change in the
 * middle of it:
 *   "pkeys"   once, inside the switch: after the caller's registers are
 *             saved and before the target's stack is read, one PKRU write
 *             installs d's rights (nothing reads the caller's stack after
 *             it).  No lock and no system call while d's stacks hold keys.
 *   others    in two steps: before the switch, on the caller's stack, d's
 *             rights with the caller's own stack kept read-write; after it,
 *             the target, suspended in as_switch_domain, re-enters its own
 *             domain, which closes the caller's stack (about two mprotect
 *             calls per switch between two domains).
 * The first switch into a fresh context from as_domain_ctx_make takes the
 * two steps on every back-end (the context enters d before its entry
 * function runs).  A fresh context from plain as_ctx_make must not be
 * switched to with as_switch_domain unless the switcher's stack is
 * unmanaged or granted to d: its start reads the switcher's frame.  A
 * context suspended in as_switch_domain that is resumed into other rights
 * (by plain as_switch, or by a switch naming another domain) re-enters its
 * own domain, provided those rights let it reach its own stack.  To switch
 * to a context outside every domain (a scheduler on the thread's original
 * stack), pass NULL: it then runs with no managed stack accessible.
 *
 * Back-ends (as_domain_backend() names the one in use):
 *
 *   "pkeys"     hosted, x86_64 with protection keys (CPUID OSPKE and the
 *               kernel's pkey_alloc).  Rights are per thread: entering a
 *               domain writes the thread's PKRU register, no system call when
 *               the domain's stacks hold keys.  Keys are allocated one at a
 *               time, when a stack first needs one; there are at most 15, so
 *               they are a cache (as libmpk does it): a stack that needs a
 *               key takes a free one or the key of the least recently
 *               entered stack that no thread's current domain includes and
 *               no thread runs on; an evicted stack is PROT_NONE for
 *               everyone until it gets a key again.
 *               Entering needs keys for the new rights only: d's own stack
 *               and grants, plus the managed stack the caller runs on if it
 *               is not among them.  If that many keys cannot be had,
 *               entering fails with -EBUSY before changing anything.
 *               A miss (a stack without a key) costs, under the registry
 *               lock: pkey_mprotect of the victim and of the stack, and a
 *               shootdown: the library reads /proc/self/task and sends each
 *               other thread SIGRTMIN+5, whose handler (installed at the
 *               back-end's first use; leave it alone) rewrites the PKRU saved
 *               in that thread's signal frame so that it allows no key its
 *               domain does not justify; the miss waits for every answer.
 *               So no thread ever reaches a stack through a key that moved:
 *               not a thread created inside a domain (it starts with its
 *               creator's PKRU, which the kernel copies, and keeps it until
 *               the first key moves), not one that never entered a domain.
 *               A thread that blocks SIGRTMIN+5 cannot answer; it is not
 *               waited for and must hold no domain rights (block it only in
 *               threads created outside every domain that never enter one).
 *               A revoke takes effect at d's next entry, or at the next key
 *               move, whichever comes first.  fork: the child's registry
 *               holds only the forking thread's rights.
 *               Signal handlers run with the kernel's PKRU for handlers,
 *               0x55555554: key 0 allowed, keys 1-15 access-disabled, so no
 *               managed stack is accessible.  A handler that may run on a
 *               managed stack needs SA_ONSTACK and a sigaltstack outside the
 *               managed stacks; it gets its domain's rights back when it
 *               returns (rt_sigreturn restores the PKRU saved in the frame),
 *               not through siglongjmp, which keeps the handler's PKRU.
 *               aarch64 Linux has no usable userspace keys (POR_EL0) here:
 *               the back-end reports itself unsupported.
 *   "mprotect"  hosted, everywhere.  Rights are process-wide: entering a
 *               domain mprotect()s the stacks whose rights change (about two
 *               system calls per switch between two domains).  Managed
 *               stacks are marked MADV_NOHUGEPAGE, which keeps a closed
 *               stack from merging with its guard page's mapping and halves
 *               the cost of each close and open.  Right for a
 *               fiber scheduler on one thread, as RTEMS does it on a
 *               uniprocessor; if several threads enter domains, the last
 *               entry decides for all of them (and a thread running on a
 *               stack another thread's domain closed will fault).
 *   "hook"      freestanding (the only back-end there), or hosted when
 *               installed with as_domain_set_hook.  The kernel's callback
 *               receives the stacks whose rights change and the new rights,
 *               and programs its MMU or MPU.  The library keeps one set of
 *               rights for the whole address space, like "mprotect".
 *
 * The hosted default is "pkeys" where available, else "mprotect".  The
 * environment variable AS_DOMAIN_BACKEND=mprotect (or =pkeys) overrides the
 * choice, as does as_domain_set_backend.
 *
 * Thread safety.  The registry of managed stacks is protected by a lock
 * inside the library ("pkeys" switches with ready rights take none); every
 * function here may be called from any thread.
 * An as_domain itself must not be initialized, finalized, granted to or
 * revoked from by two threads at once.  Nothing here is async-signal-safe.
 *
 * Shareable stacks (hosted).  as_stack_alloc_shareable maps a stack from a
 * memfd (anonymous shared memory), with the usual guard page; as_stack_alias
 * maps the same memory a second time at another address, read-only or
 * read-write: writes through either mapping are seen through the other.
 * That is the POSIX way to share a region (shm_open + mmap twice) without a
 * name in the file system.  An alias is not a managed stack: domains never
 * change its rights.  The memfd is closed once the stack is mapped (a shared
 * mapping can be duplicated with mremap); where that duplication is
 * refused, as under qemu-user, the descriptor stays open for aliasing until
 * as_stack_free.
 */
#ifndef ALTSTACK_SHARE_H
#define ALTSTACK_SHARE_H

#include <stdbool.h>
#include "config.h"
#include "stack.h"
#include "switch.h"

AS_BEGIN_DECLS

/* Rights, for as_domain_grant, as_stack_alias and the hook. */
#define AS_PROT_NONE  0
#define AS_PROT_READ  1
#define AS_PROT_WRITE 2
#define AS_PROT_RW    (AS_PROT_READ | AS_PROT_WRITE)

/* How many stacks one domain may be granted at a time. */
#define AS_DOMAIN_GRANTS 16

/* One row of a domain's rights table (private). */
typedef struct as_domain_right {
    const void *lo, *hi;        /* the granted stack's usable range         */
    struct as_domain *owner;    /* the domain managing it; NULL: unmanaged  */
    int prot;
} as_domain_right;

/*
 * A domain: its own stack and its rights on other stacks.  Allocate it
 * anywhere that outlives its use (it is linked into the library's registry
 * between as_domain_init and as_domain_fini); every field is private.
 */
typedef struct as_domain as_domain;
struct as_domain {
    void *lo, *hi;                      /* own stack, usable range          */
    struct as_domain *next, *prev;      /* registry of managed stacks       */
    struct as_domain *onext, *oprev;    /* stacks whose rights are not none */
    uint32_t magic;
    uint32_t gen;                       /* registry generation of owner[]   */
    uint32_t stamp;                     /* set-membership mark while entering */
    int16_t  cur;                       /* rights on own stack now (-1: unknown) */
    int16_t  want;                      /* rights being entered             */
    int16_t  key;                       /* pkeys: hardware key, -1 if none  */
    uint8_t  fresh;                     /* a fresh as_domain_ctx_make context */
    uint8_t  busy;                      /* pkeys: in use while moving keys  */
    uint32_t nrights;
    uint32_t pkru;                      /* pkeys: this domain's PKRU bits   */
    uint32_t pkgen;                     /* pkeys: key generation of pkru    */
    uint64_t lru;                       /* pkeys: last entry, for eviction  */
    as_entry entry;                     /* as_domain_ctx_make's function     */
    as_domain_right rights[AS_DOMAIN_GRANTS];
};

/*
 * as_domain_init - make `own` a managed stack and d the domain that owns it,
 * with no grants.  The stack stays accessible until the next entry of any
 * domain.  `own` must be page-aligned at both ends for "mprotect" and
 * "pkeys" (as_stack_alloc and as_stack_alloc_shareable stacks are).
 * Returns 0; -EINVAL if d or own is NULL, own is empty or misaligned for the
 * back-end; -EFAULT ("mprotect", "pkeys") if some page of own is not mapped
 * (checked with mincore, touching no page; the hook decides for itself);
 * -EBUSY if d is already initialized or own overlaps a managed stack;
 * -ENOSYS in freestanding builds before as_domain_set_hook.
 * Mode: both.  Not async-signal-safe.
 */
AS_API int  as_domain_init(as_domain *d, as_stack *own);

/*
 * as_domain_fini - stop managing d's own stack: it becomes ordinary
 * read-write memory again (free it with as_stack_free afterwards), and
 * grants that other domains hold on it go dormant.  Returns 0; -EINVAL if
 * d is NULL or not initialized; -EBUSY if d is the current domain
 * ("mprotect", "hook") or some thread's current domain includes its stack
 * ("pkeys"): enter another domain first.
 * Mode: both.  Not async-signal-safe.
 */
AS_API int  as_domain_fini(as_domain *d);

/*
 * as_domain_grant - give d `prot` on stack `other` (AS_PROT_READ, or
 * AS_PROT_RW / AS_PROT_WRITE for read-write); a second grant of the same
 * stack replaces the first, AS_PROT_NONE revokes.  Takes effect at d's next
 * entry.  Returns 0; -EINVAL if d is not initialized, other is NULL or
 * empty, other is d's own stack, or prot has other bits; -ENOSPC if d
 * already holds AS_DOMAIN_GRANTS grants.
 * Mode: both.  Not async-signal-safe.
 */
AS_API int  as_domain_grant(as_domain *d, const as_stack *other, int prot);

/*
 * as_domain_revoke - remove d's grant on `other`, if any; takes effect at
 * d's next entry.  Returns 0 (also when nothing was granted); -EINVAL if d
 * is not initialized or other is NULL.
 * Mode: both.  Not async-signal-safe.
 */
AS_API int  as_domain_revoke(as_domain *d, const as_stack *other);

/*
 * as_domain_enter - apply d's rights now, for the calling thread ("pkeys")
 * or the whole address space ("mprotect", "hook"), and make d the current
 * domain.  Returns 0; -EINVAL if d is NULL or not initialized; -EBUSY
 * ("pkeys") if d's stacks need more keys than can be freed, or a thread
 * that does not block SIGRTMIN+5 did not answer the shootdown within 2 s;
 * the calling thread's rights and domain are then unchanged; a negative
 * errno from mprotect or the hook (the rights of the stacks involved are
 * then unknown and are applied again at the next entry).
 * Mode: both.  Not async-signal-safe.
 */
AS_API int  as_domain_enter(as_domain *d);

/*
 * as_domain_leave - leave every domain: all managed stacks become
 * read-write again, as before the first entry, and no domain is current.
 * For teardown and debugging; it touches every managed stack.
 * Returns 0 or the error of as_domain_enter ("pkeys": -EBUSY if more stacks
 * than keys would be needed; the rest stay closed).
 * Mode: both.  Not async-signal-safe.
 */
AS_API int  as_domain_leave(void);

/*
 * as_switch_domain - as_switch(to, data), entering to_domain's rights on
 * the way (see "Switching" above); to_domain NULL means the target runs
 * outside every domain, with no managed stack accessible.  When the caller
 * is resumed it re-enters the domain it was in, whoever resumed it.
 * Returns what as_switch returns.  It cannot return an error: if the rights
 * cannot be applied (mprotect failing for lack of kernel memory, no free
 * protection key) it executes a trap instruction rather than run code with
 * wrong rights.  to_domain must be NULL or initialized: not checked, the
 * behaviour is undefined otherwise.
 * Mode: both.  Not async-signal-safe.
 */
AS_API as_transfer as_switch_domain(as_ctx to, as_domain *to_domain, void *data);

/*
 * as_domain_ctx_make - as_ctx_make(own stack of d, fn), for a context that
 * will first be entered with as_switch_domain(ctx, d, data): before fn runs,
 * the context enters d, closing the switcher's stack.  One such fresh
 * context per domain at a time.  Returns NULL if d is not initialized or fn
 * is NULL.
 * Mode: both.  Not async-signal-safe.
 */
AS_API as_ctx as_domain_ctx_make(as_domain *d, as_entry fn);

/*
 * as_domain_current - the domain the calling thread ("pkeys") or the
 * address space ("mprotect", "hook") is in; NULL outside every domain.
 * Mode: both.  Async-signal-safe (a single load).
 */
AS_API as_domain *as_domain_current(void);

/*
 * as_domain_backend - "pkeys", "mprotect" or "hook": the back-end in use
 * (chosen at the first call of any function here, see above).
 * Mode: both.  Not async-signal-safe the first time.
 */
AS_API const char *as_domain_backend(void);

/*
 * as_domain_region - one stack whose rights change, as the hook sees it:
 * the usable range [lo, hi) and the rights every context of the address
 * space has on it from now on (AS_PROT_NONE, AS_PROT_READ or AS_PROT_RW).
 */
typedef struct as_domain_region {
    void *lo, *hi;
    int   prot;
} as_domain_region;

/*
 * as_domain_hook_fn - the kernel's callback: make the n regions in r have
 * their new rights, then return 0, or a negative errno that the entering
 * function returns.  Called with the library's registry lock held, so it
 * must not call back into this header; called on the stack of the context
 * that is entering (its own stack is never made inaccessible by that call).
 */
typedef int (*as_domain_hook_fn)(void *arg, const as_domain_region *r, size_t n);

/*
 * as_domain_set_hook - install the "hook" back-end's callback (fn NULL
 * uninstalls it; hosted builds then go back to their default back-end).
 * Returns 0, or -EBUSY while any stack is managed.
 * Mode: both (hosted builds use it to run the hook back-end in tests or
 * under a userspace monitor).  Not async-signal-safe.
 */
AS_API int  as_domain_set_hook(as_domain_hook_fn fn, void *arg);

#if AS_HOSTED
/*
 * as_domain_set_backend - choose "mprotect" or "pkeys", or NULL for the
 * default (which reads AS_DOMAIN_BACKEND again).  Returns 0; -EINVAL for
 * another name; -ENOTSUP for "pkeys" where the CPU or kernel lacks
 * protection keys; -EBUSY while any stack is managed or a hook is installed.
 * Mode: hosted.  Not async-signal-safe.
 */
AS_API int  as_domain_set_backend(const char *name);

/* as_domain_pkeys_supported - whether the "pkeys" back-end can work here. */
AS_API bool as_domain_pkeys_supported(void);

/*
 * as_stack_alloc_shareable - like as_stack_alloc (same sizes, same guard
 * page below lo, freed with as_stack_free), but the usable part is a shared
 * mapping of an anonymous memory file, so as_stack_alias can map it again.
 * Returns 0, -EINVAL (s NULL, size 0 or absurd), -ENOMEM, or the errno of
 * memfd_create.  On error *s is zeroed.
 * Mode: hosted.  Not async-signal-safe.
 */
AS_API int  as_stack_alloc_shareable(as_stack *s, size_t size);

/*
 * as_stack_alias - map the usable part of shareable stack s a second time,
 * with `prot` (AS_PROT_READ or AS_PROT_RW), and store its address in
 * *alias: as_stack_size(s) bytes, alias[i] is s->lo[i].  The alias keeps
 * the memory alive until as_stack_unalias, even after as_stack_free(s).
 * Returns 0; -EINVAL if s or alias is NULL, s was not made by
 * as_stack_alloc_shareable, or prot is not READ or RW; -ENOMEM.
 * Mode: hosted.  Not async-signal-safe.
 */
AS_API int  as_stack_alias(const as_stack *s, int prot, void **alias);

/*
 * as_stack_unalias - unmap an alias that as_stack_alias made for s.
 * Returns 0, or -EINVAL if s or alias is NULL, alias is not page-aligned,
 * or alias is not a live alias of as_stack_size(s) bytes (the stack's own
 * memory, an alias already unmapped, any other address): then nothing is
 * unmapped.
 * Mode: hosted.  Not async-signal-safe.
 */
AS_API int  as_stack_unalias(const as_stack *s, void *alias);
#endif

AS_END_DECLS

#endif /* ALTSTACK_SHARE_H */

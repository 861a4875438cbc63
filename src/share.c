/* SPDX-License-Identifier: MIT */
/*
 * src/share.c - stack isolation domains: the registry of managed stacks,
 * rights tables, entering and switching (both modes), and the page-table
 * engine behind the "mprotect" and "hook" back-ends.
 *
 * State, all under one lock:
 *
 *   registry   every initialized domain (= every managed stack), linked
 *              through next/prev; `gen` changes whenever it does, so a
 *              domain's grants re-resolve their owners lazily;
 *   open list  page back-ends: the managed stacks whose rights are not
 *              none right now (d->cur != AS_PROT_NONE), so that entering a
 *              domain costs O(open + grants), not O(managed stacks);
 *   page_cur   page back-ends: the address space's current domain.
 *
 * Invariant of the page back-ends, between calls: d->cur is the rights the
 * address space has on d's stack (-1: unknown after a failed change, kept
 * on the open list so the next entry sets it again), and the open list
 * holds exactly the stacks with d->cur != AS_PROT_NONE.
 */
#include "share_impl.h"

#include <stdatomic.h>

static struct {
    atomic_flag lock;
    as_domain *head;                /* registry                          */
    as_domain *open;                /* page back-ends: open list          */
    as_domain *page_cur;
    uint32_t gen, stamp;
    unsigned managed;
    const struct as__ops *ops;      /* NULL until the first use           */
    as_domain_hook_fn flush;        /* page back-ends: changes regions    */
    void *flush_arg;
    as_domain_hook_fn hook;         /* installed by as_domain_set_hook    */
    void *hook_arg;
} g = { .lock = ATOMIC_FLAG_INIT, .gen = 1 };

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&g.lock, memory_order_acquire)) {
#if AS_HOSTED
        as__domain_yield();         /* the holder may be in mprotect()    */
#elif AS_ARCH_X86_64
        __asm__ volatile("pause");
#else
        __asm__ volatile("yield");
#endif
    }
}

static void unlock(void)
{
    atomic_flag_clear_explicit(&g.lock, memory_order_release);
}

static const struct as__ops ops_hook;

void as__domain_lock(void) { lock(); }
void as__domain_unlock(void) { unlock(); }

/* Choose the back-end on first use (lock held). */
static int ready(void)
{
    if (AS_LIKELY(g.ops != NULL))
        return 0;
    if (g.hook) {
        g.flush = g.hook;
        g.flush_arg = g.hook_arg;
        __atomic_store_n(&g.ops, &ops_hook, __ATOMIC_RELEASE);
        return 0;
    }
#if AS_HOSTED
    const struct as__ops *ops;
    as_domain_hook_fn flush = NULL;
    int r = as__domain_pick(NULL, &ops, &flush);
    if (r)
        return r;
    g.flush = flush;
    g.flush_arg = NULL;
    __atomic_store_n(&g.ops, ops, __ATOMIC_RELEASE);
    return 0;
#else
    return -AS_ENOSYS;              /* a kernel must install its hook     */
#endif
}

static bool valid(const as_domain *d)
{
    return d && d->magic == AS__DOMAIN_MAGIC;
}

as_domain *as__registry_first(void) { return g.head; }
as_domain *as__open_first(void) { return g.open; }

void as__open_add(as_domain *d)
{
    d->oprev = NULL;
    d->onext = g.open;
    if (g.open)
        g.open->oprev = d;
    g.open = d;
}

void as__open_del(as_domain *d)
{
    if (d->oprev)
        d->oprev->onext = d->onext;
    else
        g.open = d->onext;
    if (d->onext)
        d->onext->oprev = d->oprev;
    d->onext = d->oprev = NULL;
}

/* ---- rights sets --------------------------------------------------------- */

static as_domain *lookup_range(const void *lo, const void *hi)
{
    for (as_domain *e = g.head; e; e = e->next)
        if (e->lo == lo && e->hi == hi)
            return e;
    return NULL;
}

/* Re-resolve which domain manages each granted stack, if the registry
 * changed since the last time. */
static void resolve(as_domain *d)
{
    if (d->gen == g.gen)
        return;
    for (uint32_t i = 0; i < d->nrights; i++)
        d->rights[i].owner = lookup_range(d->rights[i].lo, d->rights[i].hi);
    d->gen = g.gen;
}

static void rights_add(struct as__rights *r, as_domain *d, int prot)
{
    for (unsigned i = 0; i < r->n; i++) {
        if (r->d[i] == d) {
            r->prot[i] |= prot;
            return;
        }
    }
    r->d[r->n] = d;
    r->prot[r->n] = prot;
    r->n++;
}

/* The rights of domain d (NULL: none), plus `keep` read-write. */
static void rights_of(as_domain *d, as_domain *keep, struct as__rights *r)
{
    r->n = 0;
    if (d) {
        resolve(d);
        rights_add(r, d, AS_PROT_RW);
        for (uint32_t i = 0; i < d->nrights; i++)
            if (d->rights[i].owner)
                rights_add(r, d->rights[i].owner, d->rights[i].prot);
    }
    if (keep)
        rights_add(r, keep, AS_PROT_RW);
}

static int enter_locked(as_domain *d, as_domain *keep)
{
    struct as__rights r;
    rights_of(d, keep, &r);
    int err = g.ops->apply(&r);
    if (!err)
        __atomic_store_n(g.ops->cur(), d, __ATOMIC_RELAXED);
    return err;
}

/* ---- the page-table engine ("mprotect", "hook") -------------------------- */

#define AS__BATCH 16

struct batch {
    unsigned n;
    as_domain *d[AS__BATCH];
    as_domain_region r[AS__BATCH];
};

/* Apply the batched changes; on failure their rights are unknown. */
static int batch_flush(struct batch *b)
{
    if (!b->n)
        return 0;
    int err = g.flush(g.flush_arg, b->r, b->n);
    for (unsigned i = 0; i < b->n; i++) {
        as_domain *d = b->d[i];
        bool was_open = d->cur != AS_PROT_NONE;
        d->cur = (int16_t)(err ? -1 : b->r[i].prot);
        bool is_open = d->cur != AS_PROT_NONE;
        if (was_open && !is_open)
            as__open_del(d);
        else if (!was_open && is_open)
            as__open_add(d);
    }
    b->n = 0;
    return err;
}

static int batch_add(struct batch *b, as_domain *d, int prot)
{
    b->d[b->n] = d;
    b->r[b->n] = (as_domain_region){ d->lo, d->hi, prot };
    if (++b->n < AS__BATCH)
        return 0;
    return batch_flush(b);
}

int as__page_apply(const struct as__rights *r)
{
    uint32_t stamp = ++g.stamp;
    if (!stamp)                     /* 0 is what a fresh domain holds */
        stamp = ++g.stamp;
    for (unsigned i = 0; i < r->n; i++) {
        r->d[i]->want = (int16_t)r->prot[i];
        r->d[i]->stamp = stamp;
    }
    struct batch b;
    b.n = 0;
    int err = 0, e;
    /* Close what is open and not in the set.  A flush only unlinks stacks
     * already visited, so `next` stays valid. */
    for (as_domain *d = g.open, *next; d; d = next) {
        next = d->onext;
        if (d->stamp != stamp && (e = batch_add(&b, d, AS_PROT_NONE)) && !err)
            err = e;
    }
    for (unsigned i = 0; i < r->n; i++) {
        as_domain *d = r->d[i];
        if (d->cur != d->want && (e = batch_add(&b, d, d->want)) && !err)
            err = e;
    }
    if ((e = batch_flush(&b)) && !err)
        err = e;
    return err;
}

void as__page_attach(as_domain *d)
{
    d->cur = AS_PROT_RW;            /* stays as it was until an entry */
    as__open_add(d);
}

static int page_set_one(as_domain *d, int prot)
{
    struct batch b;
    b.n = 0;
    batch_add(&b, d, prot);
    return batch_flush(&b);
}

int as__page_detach(as_domain *d)
{
    if (g.page_cur == d)
        return -AS_EBUSY;
    if (d->cur != AS_PROT_RW) {
        int err = page_set_one(d, AS_PROT_RW);
        if (err)
            return err;
    }
    as__open_del(d);
    return 0;
}

int as__page_leave(void)
{
    struct batch b;
    b.n = 0;
    int err = 0, e;
    for (as_domain *d = g.head; d; d = d->next)
        if (d->cur != AS_PROT_RW && (e = batch_add(&b, d, AS_PROT_RW)) && !err)
            err = e;
    if ((e = batch_flush(&b)) && !err)
        err = e;
    g.page_cur = NULL;
    return err;
}

as_domain **as__page_cur(void) { return &g.page_cur; }

/* The hook decides what it can protect: no check of its own. */
static const struct as__ops ops_hook = AS__PAGE_OPS("hook", NULL, as__page_attach);

/* ---- the API ------------------------------------------------------------- */

static bool overlaps(const void *lo, const void *hi)
{
    for (as_domain *e = g.head; e; e = e->next)
        if ((uintptr_t)lo < (uintptr_t)e->hi && (uintptr_t)e->lo < (uintptr_t)hi)
            return true;
    return false;
}

static bool registered(const as_domain *d)
{
    for (as_domain *e = g.head; e; e = e->next)
        if (e == d)
            return true;
    return false;
}

static bool bad_range(const as_stack *s)
{
    return !s || !s->lo || (uintptr_t)s->hi <= (uintptr_t)s->lo;
}

int as_domain_init(as_domain *d, as_stack *own)
{
    if (!d || bad_range(own))
        return -AS_EINVAL;
    lock();
    int err = ready();
    if (!err && g.ops->check)
        err = g.ops->check(own->lo, own->hi);
    if (!err && valid(d) && registered(d))
        err = -AS_EBUSY;
    if (!err && overlaps(own->lo, own->hi))
        err = -AS_EBUSY;
    if (!err) {
        *d = (as_domain){ .lo = own->lo, .hi = own->hi, .magic = AS__DOMAIN_MAGIC,
                          .key = -1 };
        d->next = g.head;
        if (g.head)
            g.head->prev = d;
        g.head = d;
        g.gen++;
        g.managed++;
        g.ops->attach(d);
    }
    unlock();
    return err;
}

int as_domain_fini(as_domain *d)
{
    if (!valid(d))
        return -AS_EINVAL;
    lock();
    int err = registered(d) ? g.ops->detach(d) : -AS_EINVAL;
    if (!err) {
        if (d->prev)
            d->prev->next = d->next;
        else
            g.head = d->next;
        if (d->next)
            d->next->prev = d->prev;
        d->magic = 0;
        g.gen++;
        g.managed--;
    }
    unlock();
    return err;
}

static int find_right(const as_domain *d, const as_stack *s)
{
    for (uint32_t i = 0; i < d->nrights; i++)
        if (d->rights[i].lo == s->lo && d->rights[i].hi == s->hi)
            return (int)i;
    return -1;
}

static void drop_right(as_domain *d, int i)
{
    d->rights[i] = d->rights[--d->nrights];
}

int as_domain_grant(as_domain *d, const as_stack *other, int prot)
{
    if (!valid(d) || bad_range(other) || (prot & ~AS_PROT_RW))
        return -AS_EINVAL;
    if ((uintptr_t)other->lo < (uintptr_t)d->hi && (uintptr_t)d->lo < (uintptr_t)other->hi)
        return -AS_EINVAL;          /* its own stack is always read-write */
    if (prot & AS_PROT_WRITE)
        prot = AS_PROT_RW;          /* write implies read */
    lock();
    int err = 0, i = find_right(d, other);
    if (i >= 0 && prot == AS_PROT_NONE) {
        drop_right(d, i);
    } else if (i >= 0) {
        d->rights[i].prot = prot;
    } else if (prot != AS_PROT_NONE) {
        if (d->nrights == AS_DOMAIN_GRANTS) {
            err = -AS_ENOSPC;
        } else {
            d->rights[d->nrights++] = (as_domain_right){
                .lo = other->lo, .hi = other->hi,
                .owner = lookup_range(other->lo, other->hi), .prot = prot };
        }
    }
    unlock();
    return err;
}

int as_domain_revoke(as_domain *d, const as_stack *other)
{
    if (!valid(d) || !other)
        return -AS_EINVAL;
    lock();
    int i = find_right(d, other);
    if (i >= 0)
        drop_right(d, i);
    unlock();
    return 0;
}

int as_domain_enter(as_domain *d)
{
    if (!valid(d))
        return -AS_EINVAL;
    lock();
    int err = registered(d) ? enter_locked(d, NULL) : -AS_EINVAL;
    unlock();
    return err;
}

int as_domain_leave(void)
{
    lock();
    int err = ready();
    if (!err)
        err = g.ops->leave();
    unlock();
    return err;
}

/*
 * The two steps (see share.h, "Switching"):
 *   1. on our stack: enter to_domain, keeping our own stack read-write,
 *      because as_switch still has to save our registers on it;
 *   2. resumed, on our stack again: re-enter our own domain, which closes
 *      the stack of whoever resumed us (they are suspended by then).
 * `me` lives in our stack frame and survives the switch, so step 2 enters
 * the right domain even when a plain as_switch resumed us.
 */
as_transfer as_switch_domain(as_ctx to, as_domain *to_domain, void *data)
{
    if (AS_UNLIKELY(!__atomic_load_n(&g.ops, __ATOMIC_RELAXED)))   /* no domain yet */
        return as_switch(to, data);
    lock();
    as_domain *me = *g.ops->cur();
    int err = enter_locked(to_domain, me);
    unlock();
    if (AS_UNLIKELY(err))
        __builtin_trap();
    as_transfer t = as_switch(to, data);
    lock();
    err = enter_locked(me, NULL);
    unlock();
    if (AS_UNLIKELY(err))
        __builtin_trap();
    return t;
}

/* A fresh context of as_domain_ctx_make: find the domain whose stack we
 * run on, enter it, then run its entry function. */
static as_transfer domain_start(as_transfer t)
{
    char here;
    lock();
    as_domain *d = g.head;
    while (d && !((uintptr_t)&here >= (uintptr_t)d->lo && (uintptr_t)&here < (uintptr_t)d->hi))
        d = d->next;
    int err = d ? enter_locked(d, NULL) : -AS_EINVAL;
    as_entry fn = d ? d->entry : NULL;
    unlock();
    if (AS_UNLIKELY(err || !fn))
        __builtin_trap();
    return fn(t);
}

as_ctx as_domain_ctx_make(as_domain *d, as_entry fn)
{
    if (!valid(d) || !fn)
        return NULL;
    d->entry = fn;
    as_stack s = { .lo = d->lo, .hi = d->hi, .map = NULL, .map_size = 0 };
    return as_ctx_make(&s, domain_start);
}

as_domain *as_domain_current(void)
{
    const struct as__ops *ops = __atomic_load_n(&g.ops, __ATOMIC_ACQUIRE);
    return ops ? __atomic_load_n(ops->cur(), __ATOMIC_RELAXED) : NULL;
}

const char *as_domain_backend(void)
{
    lock();
    int err = ready();
    const char *name = err ? "hook" : g.ops->name;
    unlock();
    return name;
}

int as_domain_set_hook(as_domain_hook_fn fn, void *arg)
{
    lock();
    int err = 0;
    if (g.managed) {
        err = -AS_EBUSY;
    } else {
        g.hook = fn;
        g.hook_arg = arg;
        __atomic_store_n(&g.ops, NULL, __ATOMIC_RELEASE);   /* choose again */
    }
    unlock();
    return err;
}

#if AS_HOSTED
int as_domain_set_backend(const char *name)
{
    lock();
    int err = 0;
    const struct as__ops *ops = NULL;
    as_domain_hook_fn flush = NULL;
    if (g.managed || g.hook)
        err = -AS_EBUSY;
    else
        err = as__domain_pick(name, &ops, &flush);
    if (!err) {
        g.flush = flush;
        g.flush_arg = NULL;
        __atomic_store_n(&g.ops, ops, __ATOMIC_RELEASE);
    }
    unlock();
    return err;
}
#endif

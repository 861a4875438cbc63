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

#define AS__BACKENDS 4

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
    bool registered;                /* as__domain_backends_init ran       */
    unsigned nback;                 /* registered back-ends, by preference */
    const struct as__ops *back[AS__BACKENDS];
    as_domain_hook_fn back_flush[AS__BACKENDS];
    const char *prefer;
    void (*relax)(void);
} g = { .lock = ATOMIC_FLAG_INIT, .gen = 1 };

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&g.lock, memory_order_acquire)) {
        if (g.relax)
            g.relax();              /* hosted: the holder may be in mprotect() */
#if AS_ARCH_X86_64
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
void as__domain_lock_reset(void) { atomic_flag_clear_explicit(&g.lock, memory_order_release); }

/* ---- back-ends -------------------------------------------------------------- */

void as__domain_register(const struct as__ops *ops, as_domain_hook_fn flush)
{
    for (unsigned i = 0; i < g.nback; i++)
        if (g.back[i] == ops)
            return;
    if (g.nback < AS__BACKENDS) {
        g.back[g.nback] = ops;
        g.back_flush[g.nback] = flush;
        g.nback++;
    }
}

void as__domain_prefer(const char *prefer, void (*relax)(void))
{
    g.prefer = prefer;
    g.relax = relax;
}

#if AS_FREESTANDING
/* A kernel has no back-end but its hook (as_domain_set_hook). */
void as__domain_backends_init(void) {}
#endif

static bool name_is(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static bool usable(const struct as__ops *ops)
{
    return !ops->usable || ops->usable();
}

/* Make back-end i current (lock held). */
static void use(const struct as__ops *ops, as_domain_hook_fn flush, void *arg)
{
    g.flush = flush;
    g.flush_arg = arg;
    __atomic_store_n(&g.ops, ops, __ATOMIC_RELEASE);
}

/* The registered back-end called `name` (NULL: the preferred one, else the
 * first usable).  0, -EINVAL (no such name) or -ENOTSUP (not usable here). */
static int pick(const char *name)
{
    if (!g.registered) {
        as__domain_backends_init();
        g.registered = true;
    }
    bool asked = name != NULL;
    if (!asked)
        name = g.prefer;
    for (unsigned i = 0; name && i < g.nback; i++) {
        if (!name_is(g.back[i]->name, name))
            continue;
        if (usable(g.back[i])) {
            use(g.back[i], g.back_flush[i], NULL);
            return 0;
        }
        if (asked)
            return -AS_ENOTSUP;
    }
    if (asked)
        return -AS_EINVAL;
    for (unsigned i = 0; i < g.nback; i++) {
        if (usable(g.back[i])) {
            use(g.back[i], g.back_flush[i], NULL);
            return 0;
        }
    }
    return -AS_ENOSYS;              /* a kernel must install its hook     */
}

/* Choose the back-end on first use (lock held). */
static int ready(void)
{
    if (AS_LIKELY(g.ops != NULL))
        return 0;
    if (g.hook) {
        use(&ops_hook, g.hook, g.hook_arg);
        return 0;
    }
    return pick(NULL);
}

static void changed(void)
{
    if (g.ops && g.ops->changed)
        g.ops->changed();
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
void as__rights_of(as_domain *d, as_domain *keep, struct as__rights *r)
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

/* The rights of d as they stand, without caching owners in d. */
void as__rights_peek(const as_domain *d, struct as__rights *r)
{
    r->n = 0;
    if (!d)
        return;
    rights_add(r, (as_domain *)d, AS_PROT_RW);
    for (uint32_t i = 0; i < d->nrights; i++) {
        as_domain *o = lookup_range(d->rights[i].lo, d->rights[i].hi);
        if (o)
            rights_add(r, o, d->rights[i].prot);
    }
}

as_domain *as__domain_at(const void *p)
{
    for (as_domain *e = g.head; e; e = e->next)
        if ((uintptr_t)p >= (uintptr_t)e->lo && (uintptr_t)p < (uintptr_t)e->hi)
            return e;
    return NULL;
}

static int enter_locked(as_domain *d, as_domain *keep)
{
    struct as__rights r;
    as__rights_of(d, keep, &r);
    int err = g.ops->apply(d, keep, &r);
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

int as__page_apply(as_domain *d, as_domain *keep, const struct as__rights *r)
{
    (void)d;
    (void)keep;
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
    for (as_domain *o = g.open, *next; o; o = next) {
        next = o->onext;
        if (o->stamp != stamp && (e = batch_add(&b, o, AS_PROT_NONE)) && !err)
            err = e;
    }
    for (unsigned i = 0; i < r->n; i++) {
        as_domain *o = r->d[i];
        if (o->cur != o->want && (e = batch_add(&b, o, o->want)) && !err)
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
        changed();
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
        changed();
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
    if (!err)
        changed();
    unlock();
    return err;
}

int as_domain_revoke(as_domain *d, const as_stack *other)
{
    if (!valid(d) || !other)
        return -AS_EINVAL;
    lock();
    int i = find_right(d, other);
    if (i >= 0) {
        drop_right(d, i);
        changed();
    }
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
 * The two-step switch of the page back-ends (see share.h, "Switching"):
 *   1. on our stack: enter to_domain, keeping our own stack read-write,
 *      because as_switch still has to save our registers on it;
 *   2. resumed, on our stack again: re-enter our own domain, which closes
 *      the stack of whoever resumed us (they are suspended by then).
 * `me` lives in our stack frame and survives the switch, so step 2 enters
 * the right domain even when a plain as_switch resumed us.  The "pkeys"
 * back-end uses it only for the first switch into a fresh
 * as_domain_ctx_make context; its own switch writes the rights once.
 */
as_transfer as__switch_two_step(as_ctx to, as_domain *to_domain, void *data)
{
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

as_transfer as_switch_domain(as_ctx to, as_domain *to_domain, void *data)
{
    const struct as__ops *ops = __atomic_load_n(&g.ops, __ATOMIC_ACQUIRE);
    if (AS_UNLIKELY(!ops))          /* no domain yet */
        return as_switch(to, data);
    if (ops->sw)
        return ops->sw(to, to_domain, data);
    return as__switch_two_step(to, to_domain, data);
}

/* A fresh context of as_domain_ctx_make: find the domain whose stack we
 * run on, enter it, then run its entry function. */
static as_transfer domain_start(as_transfer t)
{
    char here;
    lock();
    as_domain *d = as__domain_at(&here);
    int err = d ? enter_locked(d, NULL) : -AS_EINVAL;
    as_entry fn = d ? d->entry : NULL;
    if (d)
        d->fresh = 0;
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
    d->fresh = 1;
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
    if (g.managed || g.hook) {
        err = -AS_EBUSY;
    } else {
        if (!name)                  /* the default: read the environment again */
            g.registered = false;
        err = pick(name);
    }
    unlock();
    return err;
}
#endif

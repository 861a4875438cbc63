/* SPDX-License-Identifier: MIT */
/*
 * src/dlock.c - delegation locks: the protocol, both modes, both APIs.
 *
 * The protocol, its states and the ordering rules quoted below as "rule N"
 * are described in include/altstack/dlock.h.  Who "this thread" is (slots,
 * ephemeral stacks, waiting) comes from src/hosted/dlock_thread.c, or, in
 * freestanding builds, from the CPU part at the end of this file.
 *
 * Where each piece runs, for a transparent request served by another thread:
 *
 *   client thread C                          server thread S (holder or server)
 *   ---------------                          ----------------------------------
 *   lock(): as_switch to the wait loop  --.
 *   wait loop, ephemeral stack:            `-> (publish) ... scan finds it:
 *     publish, spin/yield                       as__dl_enter(ctx, tp of C)
 *                                               lock() returns here, CS runs,
 *                                               unlock(): as_switch(back)
 *                                               <- back in serve(): resp = seq
 *     sees resp == seq: as_switch into
 *     unlock(), which returns to the caller
 */
#include "dlock_internal.h"

#define HELD   ((uintptr_t)1)
#define WAITER ((uintptr_t)2)

#define ld_acq(p)     __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define ld_rlx(p)     __atomic_load_n(p, __ATOMIC_RELAXED)
#define st_rel(p, v)  __atomic_store_n(p, v, __ATOMIC_RELEASE)
#define st_rlx(p, v)  __atomic_store_n(p, v, __ATOMIC_RELAXED)
#define cas_acq(p, e, v) \
    __atomic_compare_exchange_n(p, e, v, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)
#define cas_rel(p, e, v) \
    __atomic_compare_exchange_n(p, e, v, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED)

#define AS__DSERVER_MAGIC ((uintptr_t)0x64736572766572ull)   /* "dserver" */

enum { SERVED, ACQUIRED };

_Static_assert(sizeof(as_dlock) == 2 * AS_PADLINE, "as_dlock: two 128-byte units");
_Static_assert(sizeof(as_dserver) == AS_PADLINE, "as_dserver: one 128-byte unit");
_Static_assert(sizeof(struct as__dl_slot) == 2 * AS_PADLINE, "slot: request + response");

/* ------------------------------------------------------------------------ */
/* Serving                                                                   */

void (*as__dl_section_end)(void);

/* Run one PENDING request (rule 2: we hold its lock, or are its server). */
static void dl_serve(struct as__dl_slot *s, uint64_t seq)
{
    as_ctx c = s->req.ctx;
    if (c) {
        /* Rule 6: the thread pointer changes inside the assembly only. */
        as_transfer t = as__dl_tp_ok ? as__dl_enter(c, NULL, s->req.tp)
                                     : as_switch(c, NULL);
        /* The critical section ran and unlock() switched back (rule 3). */
        s->resp.ctx = t.ctx;
        st_rel(&s->resp.seq, seq);
        void (*end)(void) = ld_rlx(&as__dl_section_end);
        if (as__dl_tp_ok && end)
            end();                      /* e.g. a tick held meanwhile */
        return;
    }
    s->resp.ret = s->req.cs(s->req.arg);
    st_rel(&s->resp.seq, seq);
}

/*
 * Serve up to `max` PENDING requests for lock l (combining) or for any
 * lock bound to server srv (l NULL).  Returns how many were served.
 *
 * Bounded waiting.  A combining holder serves at most `max` per scan, so
 * a scan that always began at slot 0 could keep serving the low slots
 * while the high ones wait for a lock race they may never win.  So the
 * scan goes round the slots like a clock hand: it starts at l->scan, where
 * the lock's previous scan stopped, and leaves it just past the last slot
 * it served.  A PENDING request is then reached before the hand passes
 * any other slot twice (the bound in dlock.h).  l->scan is read and
 * written only by the lock's holder.  A server scans every slot each pass
 * (max is unbounded), from 0.
 */
static unsigned dl_scan(as_dlock *l, as_dserver *srv, unsigned max)
{
    unsigned n = 0, hwm = ld_acq(&as__dl_hwm);
    unsigned start = l ? ld_rlx(&l->scan) : 0;
    if (start >= hwm)
        start = 0;
    unsigned i = start;
    for (unsigned k = 0; k < hwm; k++, i = i + 1 < hwm ? i + 1 : 0) {
        struct as__dl_slot *s = &as__dl_slots[i];
        /* Rule 1: PENDING iff completed + 1 == made.  `seq` may be stale
         * by the time `done` is read, which only makes done + 1 != seq. */
        uint64_t seq = ld_acq(&s->req.seq);
        uint64_t done = ld_acq(&s->resp.seq);
        if (done + 1 != seq)
            continue;                               /* IDLE, or stale */
        as_dlock *lk = ld_acq(&s->req.lock);
        if (l ? lk != l : !lk || lk->server != srv)
            continue;                               /* someone else's */
        /* `lk` may belong to the next request if request `seq` was just
         * completed by another server: then done has moved on, and the
         * acquire above makes that visible (the client stored lock with
         * release after seeing the completion). */
        if (ld_rlx(&s->resp.seq) != done)
            continue;
        if (s->req.ctx)
            __builtin_prefetch(s->req.ctx);         /* the client's stack top */
        dl_serve(s, seq);
        if (l)
            st_rlx(&l->scan, i + 1);
        if (++n >= max || (srv && ld_rlx(&srv->stop)))
            break;
    }
    return n;
}

/*
 * The holder releases l with waiters announced: serve a bounded batch first.
 * Served waiters leave the count to us (one RMW on the lock word per batch,
 * not one per waiter): we subtract them with the release itself.
 */
__attribute__((noinline))
static void dl_release_slow(as_dlock *l)
{
    unsigned done = 0;
    uintptr_t served = 0;               /* WAITER units, still counted */
    uint64_t t0 = 0;
    if (!(ld_rlx(&l->word) & HELD))
        return;         /* nobody holds l: unlocking it is a no-op */
    for (;;) {
        uintptr_t w = ld_rlx(&l->word);
        if (w == HELD + served) {
            if (cas_rel(&l->word, &w, 0))
                return;                 /* (w,1) -> (0,0): all were ours */
            continue;
        }
        unsigned k = dl_scan(l, NULL, AS_DLOCK_BATCH - done);
        if (!k)
            break;      /* announced but not yet published: they take it */
        done += k;
        served += k * WAITER;
        if (done >= AS_DLOCK_BATCH)
            break;
        if (!t0)
            t0 = as__dl_now();
        else if (as__dl_now() - t0 > AS_DLOCK_BATCH_NS)
            break;
    }
    /* (w,1) -> (w - served, 0): a waiter still waiting acquires it and
     * combines next. */
    __atomic_fetch_sub(&l->word, served + HELD, __ATOMIC_RELEASE);
}

static inline void dl_release(as_dlock *l)
{
    uintptr_t w = HELD;
    if (AS_LIKELY(cas_rel(&l->word, &w, 0)))
        return;
    dl_release_slow(l);
}

/* ------------------------------------------------------------------------ */
/* Waiting                                                                   */

/* IDLE -> PENDING.  Combining: announce in the lock word first. */
static uint64_t dl_publish(as_dlock *l, struct as__dl_level *lv, as_ctx ctx,
                           void *(*cs)(void *), void *arg)
{
    struct as__dl_slot *s = lv->slot;
    uint64_t seq = lv->seq + 1;
    lv->seq = seq;
    lv->waits_for = l;
    if (!l->server)
        __atomic_fetch_add(&l->word, WAITER, __ATOMIC_RELAXED);
    s->req.ctx = ctx;
    s->req.cs = cs;
    s->req.arg = arg;
    s->req.tp = ctx && as__dl_tp_ok ? as__dl_tp() : 0;
    st_rel(&s->req.lock, l);
    st_rel(&s->req.seq, seq);                       /* rule 1 */
    return seq;
}

/*
 * Wait until the request is served or, in combining mode, the lock is free
 * and we take it (then withdraw the request: rule 4).  No TLS (rule 5).
 */
static int dl_wait(as_dlock *l, struct as__dl_slot *s, uint64_t seq)
{
    unsigned spins = 0;
    for (;;) {
        if (ld_acq(&s->resp.seq) == seq)
            return SERVED;              /* the server uncounts us */
        if (!l->server) {
            uintptr_t w = ld_rlx(&l->word);
            if (!(w & HELD)) {
                if (!cas_acq(&l->word, &w, (w - WAITER) | HELD))
                    continue;
                if (ld_acq(&s->resp.seq) == seq) {
                    /* Served just before that holder released, which
                     * uncounted us already: let go and count us back,
                     * (w-1,1) -> (w,0), in one add. */
                    __atomic_fetch_add(&l->word, WAITER - HELD, __ATOMIC_RELEASE);
                    return SERVED;
                }
                st_rlx(&s->resp.seq, seq);          /* we are its server now */
                return ACQUIRED;
            }
        }
        as__dl_relax(&spins);
    }
}

/* The one debug check there is room for: waiting for a lock this identity
 * already waits for at a shallower level is a certain self-deadlock. */
static void dl_check_nesting(struct as__dl_level *lv, as_dlock *l)
{
#ifdef AS_DEBUG
    for (struct as__dl_level *p = lv->self->lv; p < lv && p < lv->self->lv + AS_DLOCK_NEST; p++)
        AS_ASSERT(p->waits_for != l);
#else
    (void)lv, (void)l;
#endif
}

/* No level to publish in (nesting too deep, out of slots or memory). */
static struct as__dl_level *dl_no_level(as_dlock *l, bool stack)
{
    unsigned spins = 0;
    for (;;) {
        if (!l->server) {
            /* Combining mode: take the lock word like a spinlock. */
            uintptr_t w = ld_rlx(&l->word);
            if (!(w & HELD) && cas_acq(&l->word, &w, w | HELD))
                return NULL;
        } else {
#if AS_FREESTANDING
            /* Server mode must delegate, and a CPU's AS_DLOCK_NEST levels
             * are static: past them none would ever come free.  Fail at
             * once rather than hang (dlock.h, "Nesting"). */
            __builtin_trap();
#endif
            /* Server mode must delegate: wait for a slot to come free. */
            struct as__dl_level *lv = as__dl_level_get(stack);
            if (lv)
                return lv;
        }
        as__dl_relax(&spins);
    }
}

/* ------------------------------------------------------------------------ */
/* Closure API                                                               */

__attribute__((noinline))
static void *dl_call_slow(as_dlock *l, void *(*cs)(void *), void *arg)
{
    struct as__dl_level *lv = as__dl_level_get(false);
    if (AS_UNLIKELY(!lv) && !(lv = dl_no_level(l, false)))
        goto run_here;
    dl_check_nesting(lv, l);
    struct as__dl_slot *s = lv->slot;
    uint64_t seq = dl_publish(l, lv, NULL, cs, arg);
    int how = dl_wait(l, s, seq);
    as__dl_level_put(lv);
    if (how == SERVED)
        return s->resp.ret;
run_here:;
    void *r = cs(arg);
    dl_release(l);
    return r;
}

void *as_dlock_call(as_dlock *l, void *(*cs)(void *), void *arg)
{
    if (AS_UNLIKELY(!l || !cs))
        return NULL;
    uintptr_t w = 0;
    if (!l->server && AS_LIKELY(cas_acq(&l->word, &w, HELD))) {
        void *r = cs(arg);
        dl_release(l);
        return r;
    }
    return dl_call_slow(l, cs, arg);
}

/* ------------------------------------------------------------------------ */
/* Transparent API                                                           */

struct dl_msg { as_dlock *l; struct as__dl_level *lv; };

/*
 * The wait loop, on a level's ephemeral stack.  Entered from lock() with
 * t = {the client's context inside lock(), &msg}; leaves by switching to
 *   - the client's context in unlock() after it was served (data = lv), or
 *   - the client's context in lock() when it took the lock itself (data = lv);
 * and is entered again, at the as_switch below, by the next slow lock().
 * The message lives on the client's stack: read it before publishing (rule 3).
 */
static as_transfer dl_wait_loop(as_transfer t)
{
    for (;;) {
        struct dl_msg *m = t.data;
        as_dlock *l = m->l;
        struct as__dl_level *lv = m->lv;
        struct as__dl_slot *s = lv->slot;
        uint64_t seq = dl_publish(l, lv, t.ctx, NULL, NULL);
        if (dl_wait(l, s, seq) == SERVED)
            t = as_switch(s->resp.ctx, lv);
        else
            t = as_switch(s->req.ctx, lv);
    }
    __builtin_unreachable();
}

__attribute__((noinline))
static void dl_lock_slow(as_dlock *l)
{
    struct as__dl_level *lv = as__dl_level_get(true);
    if (AS_UNLIKELY(!lv) && !(lv = dl_no_level(l, true)))
        return;                         /* holds l: runs here, back == NULL */
    dl_check_nesting(lv, l);
    as_ctx e = lv->eph;
    if (!e)
        e = as_ctx_make(&lv->stack, dl_wait_loop);
    lv->eph = NULL;                     /* running now */
    struct dl_msg m = { l, lv };
    as_transfer t = as_switch(e, &m);
    if (!t.data) {
        /* Served: we run on the server's core, maybe under our thread
         * pointer, maybe not - touch no TLS from here on (rule 5/6). */
        l->back = t.ctx;
        return;
    }
    /* We took the lock ourselves, on our own thread. */
    lv = t.data;
    lv->eph = t.ctx;
    as__dl_level_put(lv);
}

void as_dlock_lock(as_dlock *l)
{
    AS_ASSERT(l);
    uintptr_t w = 0;
    if (!l->server && AS_LIKELY(cas_acq(&l->word, &w, HELD)))
        return;
    dl_lock_slow(l);
}

void as_dlock_unlock(as_dlock *l)
{
    AS_ASSERT(l);
    as_ctx back = l->back;
    if (AS_LIKELY(!back)) {
        /* Held here: serve waiters, release.  A server-mode lock is
         * always delegated (back set), so without back nobody holds it. */
        if (AS_LIKELY(!l->server))
            dl_release(l);
        return;
    }
    l->back = NULL;
    /* Back to the server; the wait loop resumes us on our own thread. */
    as_transfer t = as_switch(back, NULL);
    struct as__dl_level *lv = t.data;
    lv->eph = t.ctx;
    as__dl_level_put(lv);
}

/* ------------------------------------------------------------------------ */
/* Set-up and server mode                                                    */

void as_dlock_init(as_dlock *l, as_dserver *server)
{
    if (!l || (server && server->magic != AS__DSERVER_MAGIC))
        return;
    *l = (as_dlock)AS_DLOCK_INITIALIZER;
    l->server = server;
}

bool as_dlock_tls_is_clients(void)
{
    return as__dl_tp_ok;
}

int as_dserver_init(as_dserver *s)
{
    if (!s)
        return -AS_EINVAL;
    *s = (as_dserver){ .magic = AS__DSERVER_MAGIC };
    return 0;
}

void as_dserver_run(as_dserver *s)
{
    if (!s || s->magic != AS__DSERVER_MAGIC)
        return;
    unsigned z = 0;
    if (!__atomic_compare_exchange_n(&s->running, &z, 1, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    unsigned spins = 0;
    while (!ld_acq(&s->stop)) {
        unsigned k = dl_scan(NULL, s, ~0u);
        if (k) {
            spins = 0;
            s->served += k;
        } else {
            as__dl_relax(&spins);
        }
    }
    st_rlx(&s->stop, 0);
    st_rel(&s->running, 0);
}

void as_dserver_stop(as_dserver *s)
{
    if (s)
        st_rel(&s->stop, 1);
}

unsigned as_dlock_slots_in_use(void)
{
    return as__dl_slots_used();
}

/* ------------------------------------------------------------------------ */
/* Freestanding: one identity per CPU, slots and ephemeral stacks static.    */

#if AS_FREESTANDING
#define FS_SLOTS (AS_DLOCK_MAX_CPUS * AS_DLOCK_NEST)

struct as__dl_slot as__dl_slots[FS_SLOTS];
unsigned as__dl_hwm = FS_SLOTS;
bool as__dl_tp_ok = false;      /* a kernel's thread pointer is its own */

static struct as__dl_self fs_self[AS_DLOCK_MAX_CPUS];
static unsigned char fs_stacks[AS_DLOCK_MAX_CPUS][AS_DLOCK_NEST][AS_DLOCK_EPH_SIZE]
    __attribute__((aligned(16)));

struct as__dl_level *as__dl_level_get(bool stack)
{
    unsigned cpu = as_hook_cpu_id();
    if (cpu >= AS_DLOCK_MAX_CPUS)
        return NULL;
    struct as__dl_self *me = &fs_self[cpu];
    if (me->depth >= AS_DLOCK_NEST)
        return NULL;
    struct as__dl_level *lv = &me->lv[me->depth];
    if (!lv->slot) {
        lv->self = me;
        lv->slot = &as__dl_slots[cpu * AS_DLOCK_NEST + me->depth];
    }
    if (stack && !lv->stack.hi &&
        as_stack_init(&lv->stack, fs_stacks[cpu][me->depth], AS_DLOCK_EPH_SIZE))
        return NULL;
    me->depth++;
    return lv;
}

void as__dl_relax(unsigned *spins)
{
    ++*spins;
    as__cpu_relax();
}

uint64_t as__dl_now(void) { return 0; }

unsigned as__dl_slots_used(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < FS_SLOTS; i++)
        n += as__dl_slots[i].req.seq != 0;
    return n;
}
#endif

/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/dlock_thread.c - delegation locks on Linux threads: who "this
 * thread" is, its request slots and ephemeral stacks, and how it waits.
 *
 * A thread's state (struct as__dl_self) is allocated at its first wait and
 * found through a thread-local pointer.  Because a server may run a
 * critical section under the client's thread pointer, "this thread" inside
 * a critical section is the client whose TLS is live (or, in the fallback,
 * the thread running it): a nested wait then uses that identity's next level,
 * and every level is used by one physical thread at a time (dlock.h, rule 3).
 *
 * Slots come from one static table; a thread takes the lowest free ones, so
 * the scanned prefix [0, hwm) stays as short as the peak number of waiters.
 * At thread exit a destructor returns them (they are IDLE then: a thread
 * cannot exit while waiting) and unmaps the ephemeral stacks.
 */
#include "hosted.h"
#include "../dlock_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>

/* Usable bytes of an ephemeral stack: the wait loop needs a few hundred,
 * a signal handler that arrives while waiting runs on it too. */
#define EPH_SIZE (64 * 1024)
/* Pauses before a waiter starts yielding its CPU: few, because on a busy
 * machine the thread it waits for (a server, a holder) may need this CPU. */
#define SPINS 16

struct as__dl_slot as__dl_slots[AS_DLOCK_MAX_SLOTS];
unsigned as__dl_hwm;
bool as__dl_tp_ok;

static pthread_mutex_t slot_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned char slot_taken[AS_DLOCK_MAX_SLOTS];   /* under slot_mutex */
static unsigned slots_used;                             /* atomic */

static pthread_key_t self_key;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;
/* initial-exec: one %fs/TPIDR_EL0-relative load, no __tls_get_addr call. */
static _Thread_local struct as__dl_self *self_tls
    __attribute__((tls_model("initial-exec")));

__attribute__((constructor))
static void dl_detect_tp(void)
{
#if defined(AS_ASAN) && AS_ASAN
    /* AddressSanitizer keeps its per-thread state (stack bounds, fake
     * stack) behind the thread pointer, and the switch's fiber annotations
     * (src/hosted/asan.c) update it: under a client's thread pointer they
     * would update the client thread's state while that thread runs.
     * Sanitized builds therefore run critical sections under the server's. */
    as__dl_tp_ok = false;
#elif AS_ARCH_X86_64
    as__dl_tp_ok = (getauxval(AT_HWCAP2) & 2) != 0;     /* HWCAP2_FSGSBASE */
#else
    as__dl_tp_ok = true;                                 /* TPIDR_EL0 is EL0's */
#endif
}

static int slot_get(struct as__dl_slot **out)
{
    int r = -AS_ENOSPC;
    pthread_mutex_lock(&slot_mutex);
    for (unsigned i = 0; i < AS_DLOCK_MAX_SLOTS; i++) {
        if (slot_taken[i])
            continue;
        slot_taken[i] = 1;
        if (i >= as__dl_hwm)
            __atomic_store_n(&as__dl_hwm, i + 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&slots_used, 1, __ATOMIC_RELAXED);
        *out = &as__dl_slots[i];
        r = 0;
        break;
    }
    pthread_mutex_unlock(&slot_mutex);
    return r;
}

static void slot_put(struct as__dl_slot *s)
{
    pthread_mutex_lock(&slot_mutex);
    slot_taken[s - as__dl_slots] = 0;
    __atomic_fetch_sub(&slots_used, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&slot_mutex);
}

static void level_destroy(struct as__dl_level *lv)
{
    if (lv->slot)
        slot_put(lv->slot);
    as_stack_free(&lv->stack);
}

static void self_destroy(void *p)
{
    struct as__dl_self *me = p;
    for (unsigned d = 0; d < AS_DLOCK_NEST; d++)
        level_destroy(&me->lv[d]);
    for (unsigned d = 0; d < me->nmore; d++) {
        if (me->more[d]) {
            level_destroy(me->more[d]);
            free(me->more[d]);
        }
    }
    free(me->more);
    self_tls = NULL;
    free(me);
}

/* Level d of me, allocated if it is one of the extra ones; NULL: no memory. */
static struct as__dl_level *level_at(struct as__dl_self *me, unsigned d)
{
    if (d < AS_DLOCK_NEST)
        return &me->lv[d];
    d -= AS_DLOCK_NEST;
    if (d >= me->nmore) {
        unsigned n = me->nmore ? 2 * me->nmore : AS_DLOCK_NEST;
        while (n <= d)
            n *= 2;
        struct as__dl_level **m = realloc(me->more, n * sizeof *m);
        if (!m)
            return NULL;
        memset(m + me->nmore, 0, (n - me->nmore) * sizeof *m);
        me->more = m;
        me->nmore = n;
    }
    if (!me->more[d]) {
        struct as__dl_level *lv = calloc(1, sizeof *lv);
        if (!lv)
            return NULL;
        lv->self = me;
        me->more[d] = lv;
    }
    return me->more[d];
}

static void self_key_make(void)
{
    pthread_key_create(&self_key, self_destroy);
}

/* Give level d of the calling identity a slot and, if asked, a stack. */
static int level_prepare(bool stack)
{
    struct as__dl_self *me = self_tls;
    if (!me) {
        pthread_once(&self_once, self_key_make);
        if (!(me = calloc(1, sizeof *me)))
            return -AS_ENOMEM;
        for (unsigned d = 0; d < AS_DLOCK_NEST; d++)
            me->lv[d].self = me;
        if (pthread_setspecific(self_key, me)) {
            free(me);
            return -AS_ENOMEM;
        }
        self_tls = me;
    }
    struct as__dl_level *lv = level_at(me, me->depth);
    if (!lv)
        return -AS_ENOMEM;
    if (!lv->slot) {
        int r = slot_get(&lv->slot);
        if (r)
            return r;
        /* A reused slot is IDLE: continue its sequence. */
        lv->seq = __atomic_load_n(&lv->slot->req.seq, __ATOMIC_RELAXED);
    }
    if (stack && !lv->stack.map) {
        int r = as_stack_alloc(&lv->stack, EPH_SIZE);
        if (r)
            return r;
        lv->eph = NULL;
    }
    return 0;
}

struct as__dl_level *as__dl_level_get(bool stack)
{
    struct as__dl_self *me = self_tls;
    if (AS_UNLIKELY(!me || me->depth >= AS_DLOCK_NEST || !me->lv[me->depth].slot ||
                    (stack && !me->lv[me->depth].stack.map))) {
        if (level_prepare(stack))
            return NULL;
        me = self_tls;
        struct as__dl_level *lv = level_at(me, me->depth);
        me->depth++;
        return lv;
    }
    return &me->lv[me->depth++];
}

int as_dlock_thread_init(void)
{
    return level_prepare(true);
}

void as__dl_relax(unsigned *spins)
{
    if (++*spins < SPINS)
        as__cpu_relax();
    else
        sched_yield();          /* cannot fail: errno is left alone */
}

uint64_t as__dl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned as__dl_slots_used(void)
{
    return __atomic_load_n(&slots_used, __ATOMIC_RELAXED);
}

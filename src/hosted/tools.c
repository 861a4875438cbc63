/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/tools.c - telling Valgrind about stacks.
 *
 * Valgrind guesses a stack switch when the stack pointer jumps far; with
 * the stacks registered it knows for sure, and memcheck reports nothing
 * spurious.  Registration returns an id that deregistration needs and
 * as_stack has no room for, so ids live in a small table keyed by `lo`.
 * Compiled in only with -Dvalgrind=true; otherwise both are empty.
 */
#include "hosted.h"

#if defined(AS_VALGRIND) && AS_VALGRIND
#include <valgrind/valgrind.h>
#include <pthread.h>

#define AS_VG_SLOTS 4096
static struct { void *lo; unsigned id; } vg_table[AS_VG_SLOTS];
static pthread_mutex_t vg_lock = PTHREAD_MUTEX_INITIALIZER;

void as__valgrind_register(const as_stack *s)
{
    if (!RUNNING_ON_VALGRIND)
        return;
    unsigned id = VALGRIND_STACK_REGISTER(s->lo, s->hi);
    pthread_mutex_lock(&vg_lock);
    for (unsigned i = 0; i < AS_VG_SLOTS; i++) {
        if (!vg_table[i].lo) {
            vg_table[i].lo = s->lo;
            vg_table[i].id = id;
            break;
        }
    }
    pthread_mutex_unlock(&vg_lock);
}

void as__valgrind_deregister(const as_stack *s)
{
    if (!RUNNING_ON_VALGRIND)
        return;
    pthread_mutex_lock(&vg_lock);
    for (unsigned i = 0; i < AS_VG_SLOTS; i++) {
        if (vg_table[i].lo == s->lo) {
            VALGRIND_STACK_DEREGISTER(vg_table[i].id);
            vg_table[i].lo = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&vg_lock);
}
#else
void as__valgrind_register(const as_stack *s) { (void)s; }
void as__valgrind_deregister(const as_stack *s) { (void)s; }
#endif

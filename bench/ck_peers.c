// SPDX-License-Identifier: MIT
// bench/ck_peers.c - Concurrency Kit's spinlocks for bench_dlock.cc.  The
// ck headers are C (they convert void * implicitly), so the C++ harness
// reaches them through these out-of-line wrappers: one direct call each way,
// the same for every CK lock.
#include <ck_spinlock.h>
#include "ck_peers.h"

_Static_assert(sizeof(ck_spinlock_mcs_t) <= sizeof(void *), "mcs queue: one pointer");
_Static_assert(sizeof(struct ck_spinlock_mcs) <= BENCH_CK_NODE, "mcs node size");
_Static_assert(sizeof(ck_spinlock_ticket_t) <= BENCH_CK_NODE, "ticket size");

void bench_ck_mcs_init(void *q) { ck_spinlock_mcs_init(q); }
void bench_ck_mcs_lock(void *q, void *node) { ck_spinlock_mcs_lock(q, node); }
void bench_ck_mcs_unlock(void *q, void *node) { ck_spinlock_mcs_unlock(q, node); }
void bench_ck_ticket_init(void *t) { ck_spinlock_ticket_init(t); }
void bench_ck_ticket_lock(void *t) { ck_spinlock_ticket_lock(t); }
void bench_ck_ticket_unlock(void *t) { ck_spinlock_ticket_unlock(t); }

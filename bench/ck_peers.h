// SPDX-License-Identifier: MIT
// bench/ck_peers.h - C wrappers around Concurrency Kit's MCS and ticket
// spinlocks (bench/ck_peers.c), for C++ callers.
#ifndef ALTSTACK_BENCH_CK_PEERS_H
#define ALTSTACK_BENCH_CK_PEERS_H
#ifdef __cplusplus
extern "C" {
#endif
/* Bytes of storage for an MCS node or a ticket lock (checked in the .c). */
#define BENCH_CK_NODE 64
void bench_ck_mcs_init(void *queue);            /* queue: one pointer      */
void bench_ck_mcs_lock(void *queue, void *node);
void bench_ck_mcs_unlock(void *queue, void *node);
void bench_ck_ticket_init(void *t);
void bench_ck_ticket_lock(void *t);
void bench_ck_ticket_unlock(void *t);
#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: MIT */
/*
 * altstack/dlock.h - delegation locks: ship the critical section, not the data.
 *
 * An ordinary lock moves the lock word and every line of shared data to
 * each core that wants them.  A delegation lock moves the critical section
 * instead: a waiting client publishes a request in its own slot, and a
 * server - the current holder (combining mode) or a dedicated thread
 * (server mode) - runs the critical section for it on the server's core,
 * where the shared lines already are.
 *
 *     static as_dlock lock = AS_DLOCK_INITIALIZER;     // combining mode
 *     static long counter;
 *
 *     as_dlock_lock(&lock);              // transparent: the code up to the
 *     counter++;                         // unlock may run on another core,
 *     as_dlock_unlock(&lock);            // on this thread's own stack
 *
 *     static void *add(void *p) { counter += (long)p; return NULL; }
 *     as_dlock_call(&lock, add, (void *)2);   // closure form
 *
 *     as_dserver srv;                    // server mode
 *     as_dserver_init(&srv);
 *     as_dlock_init(&lock, &srv);        // then some thread runs
 *     as_dserver_run(&srv);              // until as_dserver_stop(&srv)
 *
 * Two APIs.  as_dlock_call(l, cs, arg) publishes a closure; the server
 * calls cs(arg) on its own stack.  as_dlock_lock/unlock are transparent:
 * lock() suspends the caller into a context on its own stack and waits on
 * a small per-thread *ephemeral* stack; the server switches onto the
 * caller's context, so the code between lock() and unlock() runs on the
 * server's core, on the caller's stack, with the caller's callee-saved
 * registers; unlock() switches back to the server, which marks the request
 * complete; the caller's thread then resumes the context on its own core.
 * Both APIs may be mixed on one lock.
 *
 * Two modes.  Combining (server NULL, the default): a lock that is free with
 * nobody waiting is taken with one CAS and the critical section runs where
 * it is; otherwise the client publishes its request and waits.  The holder,
 * before releasing, serves the published requests of that lock, at most
 * AS_DLOCK_BATCH of them and for at most AS_DLOCK_BATCH_NS nanoseconds,
 * then releases it, and a waiter takes it over.  With nobody waiting,
 * unlock is one CAS: nothing is ever delegated needlessly.  Server mode
 * (as_dlock_init(l, srv)): every critical section of l runs on the thread
 * inside as_dserver_run(srv); a client never runs it itself.
 *
 * Thread-local storage in a transparent critical section.  Where userspace
 * may write the thread pointer (aarch64 TPIDR_EL0 always; x86_64 with
 * `wrfsbase` when the kernel enables FSGSBASE, AT_HWCAP2 bit 1) the server
 * runs the critical section under the *client's* thread pointer, so errno,
 * _Thread_local variables, pthread_self() and malloc's thread cache inside it
 * are the client's.  as_dlock_tls_is_clients() reports this.  Otherwise
 * (the fallback: x86_64 without FSGSBASE, AddressSanitizer builds, whose
 * per-thread state lives behind the thread pointer, and freestanding
 * builds) the critical section sees the TLS of whichever thread runs it.
 *
 * What a transparent critical section sees, exactly:
 *
 *   thing                           client's TP (tls_is_clients) | fallback
 *   errno, _Thread_local, pthread_self(),                        |
 *     malloc's thread cache         the client's                 | the running thread's
 *   glibc's rseq area, so           the client's: sched_getcpu() | the running thread's:
 *     sched_getcpu()                returns the CPU the client   | the CPU running
 *                                   thread last ran on           | the section
 *   gettid(), getcpu(2) as a system call, CPU time, signal       |
 *     delivery, sched_setaffinity(0, ...)   always the kernel's: the thread running
 *                                   the section (server or holder), its CPU
 *
 * So under the client's thread pointer:
 *   - per-CPU data must be indexed with the CPU from the getcpu system call
 *     (syscall(SYS_getcpu, &cpu, NULL, NULL)), not sched_getcpu();
 *   - rseq critical sections (librseq, rseq-based per-CPU counters and
 *     allocators) must not run inside: the kernel restarts only the rseq
 *     area of the thread it is running (the server's), and the code would
 *     use the client's, unprotected;
 *   - a signal delivered while the section runs on another thread is
 *     handled there, under the thread pointer then live (preempt.h: the
 *     library's own timer tick is held until the section ends).
 * In the fallback all of these are simply the running thread's, and rseq
 * is as safe as anywhere.  Closure critical sections (as_dlock_call)
 * always run under the server's thread pointer, like any function the
 * server calls.
 *
 * The protocol.  Each lock has one word; each client slot a request word
 * (written only by its client) and a response word (written only by
 * whoever serves it: the holder of the requested lock, or its server),
 * on separate 128-byte lines.
 *
 *   lock word (combining)  = 2 * waiters | HELD
 *   request word of a slot = n, the number of requests the slot has made;
 *                            the n-th asks for the lock in req.lock
 *   response word          = the number of requests completed
 *   a slot is PENDING while response == n - 1, IDLE when response == n
 *
 * Lock word, combining mode, (waiters w, held):
 *
 *   fast lock:  (0,0) --CAS--> (0,1)             unlock:  (0,1) --CAS--> (0,0)
 *
 *   slow lock:  (w,*) --add--> (w+1,*), then publish the request (slot
 *               IDLE -> PENDING) and wait for either of:
 *                 served:   the slot is IDLE again (the holder that
 *                           served it uncounts it when releasing)
 *                 acquired: (w+1,0) --CAS--> (w,1); complete its own
 *                           request (withdraw) and run the section itself
 *
 *   unlock with waiters, (w,1) with w > 0: serve PENDING requests for this
 *               lock (each PENDING -> run -> IDLE), k of them, at most
 *               AS_DLOCK_BATCH and for at most AS_DLOCK_BATCH_NS, then
 *               (w,1) --sub--> (w-k,0) (or CAS to (0,0) if w == k): a
 *               waiter still waiting acquires it and combines next.
 *               A waiter that acquires and then finds itself served (by
 *               the holder just gone, which uncounted it) lets go and
 *               counts itself back in one add: (w-1,1) --> (w,0).
 *
 * Slot, either mode (request, response):
 *
 *      IDLE (n, n)
 *        |  client: fill ctx/cs/arg/tp, lock (release), then request = n+1
 *        v  (release)
 *      PENDING (n+1, n)  --server: run the section, then response = n+1
 *                          (release)-->  IDLE (n+1, n+1)
 *
 * Ordering rules (each stack, ephemeral stack and slot has one user at a time):
 *   1. A client writes its request fields, then the lock (release), then
 *      the request word (release).  A server reads request (acquire) and
 *      response (acquire); only if response + 1 == request does it read the
 *      lock (acquire), and it serves only if the response still reads the
 *      same: the request was then PENDING throughout, so the lock and the
 *      fields it reads are that request's, fixed until it completes.  (A
 *      stale request word makes response + 1 != request; the counters are
 *      64-bit, so they never wrap into a false match.)
 *   2. Only a holder of the requested lock (combining) or its server writes a
 *      slot's response; a lock has one holder and a server one thread, so a
 *      PENDING request is served at most once.
 *   3. A transparent client leaves its stack (switching to the ephemeral
 *      stack) before publishing, and resumes its context only after reading
 *      response == n (acquire); the server writes the response only after
 *      unlock() has switched away from the client's stack.  So the client's
 *      stack has one user at any time.
 *   4. A waiter that acquires the lock itself completes its own request
 *      before resuming its context, so no server can see it PENDING later.
 *   5. The ephemeral-stack code touches no thread-local storage: while it
 *      waits, the same thread pointer may be live on the server.
 *   6. A server writes the client's thread pointer and switches in one
 *      assembly routine, and restores its own right after switching back,
 *      so none of the library's C code runs under a foreign thread pointer.
 *
 * Who may call what concurrently (same lock l, same server s):
 *
 *   call                      | concurrently with
 *   --------------------------+---------------------------------------------
 *   as_dlock_lock/unlock/call | each other, from any number of threads
 *   as_dlock_init(l)          | nothing on l (no holder, no waiter)
 *   as_dserver_init(s)        | nothing on s
 *   as_dserver_run(s)         | clients of s; as_dserver_stop(s); a second
 *                             | run(s) returns at once
 *   as_dserver_stop(s)        | anything; idempotent
 *
 * Nesting.  A critical section may take a *different* dlock, of either
 * mode, and release it, to any depth.  Hosted, the first AS_DLOCK_NEST
 * levels of waiting are kept per thread and deeper ones are allocated the
 * first time nesting reaches them (so a deeper wait may allocate; if it
 * cannot, it waits for memory or a slot like any other).  Freestanding,
 * each CPU has AS_DLOCK_NEST static levels: past them a combining-mode
 * lock is taken by spinning on its word (no delegation), and a server-mode
 * lock traps at once (__builtin_trap), since it must be delegated and no
 * level could ever come free.  Taking the lock it is already inside is
 * undefined (a self-deadlock; debug builds trap where they can see it); so
 * is taking, inside a server-mode critical section, another lock bound to
 * the same server.
 *
 * Bounded waiting.  Holders serve waiting requests in slot order round a
 * circle, each lock's scan starting where its previous one stopped, so a
 * request that is published (combining mode) is served, or its thread
 * takes the lock, before 2 * (S - 1) critical sections of that lock have
 * run for others, S being the number of request slots in use
 * (as_dlock_slots_in_use, at most AS_DLOCK_MAX_SLOTS hosted, or
 * AS_DLOCK_MAX_CPUS * AS_DLOCK_NEST freestanding): the scan passes each
 * other slot at most once before reaching it, and between two of its
 * steps the lock changes hands at most once.  A server (server mode)
 * scans every slot in each pass: at most S - 1 others run first.
 *
 * Unlocking a lock nobody holds (combining mode: it is free; server mode:
 * no critical section of it is running) is a no-op: the lock stays free
 * and usable.  Undefined, not detected: unlocking a lock that another
 * thread holds; unlock on another stack than the matching lock; leaving a
 * critical section by longjmp; calling as_dlock_lock on a server-mode lock
 * from its own server thread; as_dlock_lock or as_dlock_unlock with a NULL
 * or uninitialised lock (the hot path checks nothing; a build with
 * -DAS_DEBUG traps on NULL through AS_ASSERT).
 */
#ifndef ALTSTACK_DLOCK_H
#define ALTSTACK_DLOCK_H

#include <stdbool.h>
#include "config.h"

AS_BEGIN_DECLS

/* At most this many requests one holder serves before releasing. */
#define AS_DLOCK_BATCH     64
/* ... and for at most this long (hosted; freestanding counts only). */
#define AS_DLOCK_BATCH_NS  50000
/* Levels of nested waiting kept ready per thread (hosted; deeper ones are
 * allocated on first use) or per CPU (freestanding: the most there is);
 * see "Nesting" above. */
#define AS_DLOCK_NEST      4

/*
 * The lock.  Its fields are the library's; they are public only so that
 * locks may live in static storage and inside other structures.
 * `word` and `back` are accessed atomically by the library.
 */
typedef struct as_dserver as_dserver;
typedef struct as_dlock {
    uintptr_t   word;       /* combining: 2 * waiters | held              */
    as_dserver *server;     /* NULL: combining mode                       */
    unsigned char pad_[AS_PADLINE - sizeof(uintptr_t) - sizeof(void *)];
    void       *back;       /* the server context a delegated critical
                               section returns to at unlock; NULL: none   */
    unsigned    scan;       /* combining: the slot the next scan starts at */
    unsigned char pad2_[AS_PADLINE - sizeof(void *) - sizeof(unsigned)];
} __attribute__((aligned(AS_PADLINE))) as_dlock;

/* A combining-mode lock in static storage. */
#define AS_DLOCK_INITIALIZER { 0, 0, { 0 }, 0, 0, { 0 } }

/* A dedicated server: the thread inside as_dserver_run serves its locks. */
struct as_dserver {
    unsigned    stop;       /* set by as_dserver_stop                     */
    unsigned    running;    /* a thread is inside as_dserver_run          */
    uintptr_t   magic;      /* set by as_dserver_init                     */
    unsigned long long served; /* requests served, for statistics         */
    unsigned char pad_[AS_PADLINE - 2 * sizeof(unsigned) - sizeof(uintptr_t)
                       - sizeof(unsigned long long)];
} __attribute__((aligned(AS_PADLINE)));

/*
 * as_dlock_init - make l a free lock; server NULL: combining mode,
 * otherwise every critical section of l runs in as_dserver_run(server),
 * which must have been set up with as_dserver_init.
 * Does nothing if l is NULL, or if server was not initialised (l is left
 * as it was).  Mode: both.  Async-signal-safe.
 */
AS_API void  as_dlock_init(as_dlock *l, as_dserver *server);

/*
 * as_dlock_call - run cs(arg) under l and return its result.  In combining
 * mode cs runs on this thread (lock free, or acquired while waiting) or
 * on the holder's; in server mode on the server thread; either way on the
 * running thread's own stack, with no stack switch.  Returns NULL without
 * calling anything if l or cs is NULL.
 * Mode: both.  Not async-signal-safe (a handler interrupting a holder would
 * wait for itself).
 */
AS_API void *as_dlock_call(as_dlock *l, void *(*cs)(void *), void *arg);

/*
 * as_dlock_lock / as_dlock_unlock - the code between them is the critical
 * section of l, run wherever its holder or server runs, on the caller's
 * stack, with its callee-saved registers (see "Thread-local storage" above).
 * The pair must be called on the same stack (by the same thread, or the
 * same context), usually in one function.  Code between them should not
 * keep addresses of thread-locals taken before lock() unless
 * as_dlock_tls_is_clients(): in the fallback the compiler may or may not
 * recompute them (glibc's __errno_location is `const`), so such an access
 * reaches the client's or the running thread's variable.
 * No argument checks: l must be an initialised lock; NULL is undefined
 * (a -DAS_DEBUG build traps).  as_dlock_unlock of a lock nobody holds is
 * a no-op (see "Unlocking" above).
 * Mode: both.  Not async-signal-safe.
 */
AS_API void  as_dlock_lock(as_dlock *l);
AS_API void  as_dlock_unlock(as_dlock *l);

/*
 * as_dlock_tls_is_clients - true when transparent critical sections run
 * under the client's thread pointer (aarch64 hosted; x86_64 hosted with
 * FSGSBASE enabled; never under AddressSanitizer).  Mode: both (freestanding: false).  Async-signal-safe.
 */
AS_API bool  as_dlock_tls_is_clients(void);

/*
 * as_dserver_init - prepare s: not running, not stopped.
 * Returns 0, or -EINVAL if s is NULL.  Mode: both.  Async-signal-safe.
 */
AS_API int   as_dserver_init(as_dserver *s);

/*
 * as_dserver_run - serve, on the calling thread, every request for any lock
 * bound to s, until as_dserver_stop(s).  Waits by spinning a little, then
 * yielding the CPU (hosted), so an idle server costs a runnable thread but
 * never starves clients on a busy machine.  Returns at once if s is NULL,
 * uninitialised, or already being run by another thread.
 * Mode: both.  Not async-signal-safe.
 */
AS_API void  as_dserver_run(as_dserver *s);

/*
 * as_dserver_stop - make the run in progress on s return, after it finishes
 * the request it is serving; if none is in progress, the next one returns
 * at once.  Requests still waiting are served by the next as_dserver_run(s).
 * Does nothing if s is NULL.  Mode: both.  Async-signal-safe.
 */
AS_API void  as_dserver_stop(as_dserver *s);

/*
 * as_dlock_slots_in_use - how many client request slots are registered now
 * (hosted: slots are taken at a thread's first wait and released when it
 * exits).  For monitoring and tests.  Mode: both.  Async-signal-safe.
 */
AS_API unsigned as_dlock_slots_in_use(void);

#if AS_HOSTED
/*
 * as_dlock_thread_init - register the calling thread's first request slot
 * and ephemeral stack now rather than at its first wait, so that later
 * locks never allocate.  Returns 0, -ENOSPC (AS_DLOCK_MAX_SLOTS slots in
 * use) or -ENOMEM.  Without it, a thread that cannot get a slot waits for
 * one to be released (combining mode: it spins on the lock word instead).
 * Mode: hosted only.  Not async-signal-safe.
 */
AS_API int   as_dlock_thread_init(void);

/* The most request slots (threads x nesting levels) that may exist at once. */
# define AS_DLOCK_MAX_SLOTS 1024
#else
/*
 * Freestanding mode.  Slots are indexed by CPU: the kernel provides
 *
 *     unsigned as_hook_cpu_id(void);   // the current CPU, 0 .. AS_DLOCK_MAX_CPUS-1
 *
 * and must not let a caller of as_dlock_* migrate to another CPU until it
 * returns (disable preemption around it).  Each CPU's ephemeral stacks are
 * static, AS_DLOCK_EPH_SIZE bytes per nesting level; an interrupt taken on
 * one runs on it, so size them for the kernel's interrupt frames.
 * Both may be overridden with -D when building the library.
 */
AS_API unsigned as_hook_cpu_id(void);
# ifndef AS_DLOCK_MAX_CPUS
#  define AS_DLOCK_MAX_CPUS 8
# endif
# ifndef AS_DLOCK_EPH_SIZE
#  define AS_DLOCK_EPH_SIZE 4096
# endif
#endif

AS_END_DECLS

#endif /* ALTSTACK_DLOCK_H */

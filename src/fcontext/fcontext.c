/* SPDX-License-Identifier: MIT */
/*
 * src/fcontext/fcontext.c - libaltstack-fcontext: Boost.Context's fcontext
 * ABI on libaltstack's switch, so that unmodified Boost programs (fiber,
 * callcc, Boost.Coroutine2, Boost.Fiber, Asio's stackful coroutines) run on
 * it by linking this library before -lboost_context, or by LD_PRELOAD of
 * libaltstack-fcontext.so.
 *
 * The ABI (boost/context/detail/fcontext.hpp, Boost 1.61 and later):
 *
 *   typedef void *fcontext_t;
 *   struct transfer_t { fcontext_t fctx; void *data; };
 *   transfer_t jump_fcontext(fcontext_t to, void *vp);
 *   fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));
 *   transfer_t ontop_fcontext(fcontext_t to, void *vp, transfer_t (*fn)(transfer_t));
 *
 * transfer_t and as_transfer are the same pair of pointers, returned in
 * rax:rdx (System V) or x0:x1 (AAPCS64) and passed in rdi:rsi / x0:x1, so
 * an fcontext_t is an as_ctx, suspended in a switch frame of the
 * library's layout (src/arch/<arch>/layout.h), and each call is one switch
 * plus the bookkeeping below.  jump_fcontext and ontop_fcontext are
 * assembly (src/fcontext/arch/<arch>/fcontext.S): on x86_64 they switch
 * by themselves (one direct switch each, with MXCSR and the x87 control
 * word per context, as Boost's); on aarch64, and under AddressSanitizer,
 * they call as_switch / as_switch_ontop.  make_fcontext's sp is the top of
 * the stack, [sp - size, sp) the memory the context may use.
 *
 * What is added to the bare switch:
 *
 *   Fresh contexts.  A context starts with its creator's FP control as
 *   Boost's make_fcontext records it.  make_fcontext writes a fresh frame
 *   for libaltstack's trampoline that calls fc__start (the assembly) with
 *   fn in a callee-saved register, and the stack's header where the
 *   assembly keeps it for a suspended context (x86_64: below the frame;
 *   aarch64: x20): the first jump into it is its first switch.  Under
 *   ASan it hands fc_entry fn, the stack and the FP control through one
 *   round trip into the new context at creation time; the context then
 *   waits, suspended in that switch, for its first jump.  An fn that returns ends the
 *   process with _exit(0), as Boost's assembly does.
 *
 *   Linked unwinding into the resumer.  libaltstack's trampoline links a
 *   fresh context to the first context that switched to it, which for
 *   Boost is make_fcontext's own round trip (or create_fiber's): a link
 *   that dies at once.  Boost programs want a backtrace inside a fiber to
 *   continue into whoever resumed it last, so every jump that lands on a
 *   stack made by make_fcontext re-points that stack's link (and cookie)
 *   at the frame of the context it came from (for ontop_fcontext: the
 *   context handed to fn, linked before fn runs, unless fn returns
 *   another context to go back to).  Which stack the running code
 *   is on is kept in a thread-local word (NULL on a thread's own stack):
 *   each suspended context keeps its own (x86_64: below its frame; else in
 *   a callee-saved register across the switch), and the thread's becomes
 *   the target's at each jump (x86_64: by the jumper; else on arrival)
 *   and before each ontop function runs.
 *
 *   Valgrind.  With -Dvalgrind=true the stacks adopted here are registered
 *   with Valgrind (VALGRIND_STACK_REGISTER); a stack handed to
 *   make_fcontext again (a pooled stack) is re-registered.
 *
 * Under AddressSanitizer the switch carries ASan's fiber annotations
 * (src/hosted/asan.c) and an as_ctx is an annotation record rather than a
 * frame; links are then left as the trampoline set them.
 */
#include "internal.h"
#include "layout.h"
#include <unistd.h>

#if defined(AS_VALGRIND) && AS_VALGRIND
# include <valgrind/valgrind.h>
# include <pthread.h>
#endif

#define FC_API __attribute__((visibility("default")))

typedef void *fcontext_t;
typedef struct { fcontext_t fctx; void *data; } transfer_t;
_Static_assert(sizeof(transfer_t) == sizeof(as_transfer), "transfer_t is as_transfer");
_Static_assert(offsetof(transfer_t, data) == offsetof(as_transfer, data), "layout");

FC_API fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));
/* jump_fcontext, ontop_fcontext: arch/<arch>/fcontext.S */

/* The return-address slot of a switch frame: the trampoline's cookie. */
#if defined(__x86_64__)
# define FC_SW_RET AS_SW_RIP
#else
# define FC_SW_RET AS_SW_LR
#endif

#if defined(AS_ASAN) && AS_ASAN
# define FC_RELINK 0
#else
# define FC_RELINK 1
#endif

/* make_fcontext writes the fresh frame itself, or (ASan) does a round
 * trip into fc_entry. */
#if FC_RELINK
# define FC_DIRECT 1
# include "arch/frame.h"
#else
# define FC_DIRECT 0
#endif

/* Per thread (layout.h): cur, the top header of the make_fcontext stack
 * the thread runs on (NULL on any other stack).  initial-exec: one %fs- or
 * tpidr_el0-relative access, no __tls_get_addr, in the shared library
 * too; the assembly reads cur the same way. */
struct fc_thread { uint64_t *cur; };
_Static_assert(offsetof(struct fc_thread, cur) == FC_TLS_CUR, "layout");
_Static_assert(sizeof(struct fc_thread) == FC_TLS_SIZE, "layout");
AS_HIDDEN __thread struct fc_thread fc__tls __attribute__((tls_model("initial-exec")));

/* ontop_fcontext's packet (layout.h), on the jumping side's stack. */
struct fc_ontop { transfer_t (*fn)(transfer_t); void *data; };
_Static_assert(offsetof(struct fc_ontop, fn) == FC_ONTOP_FN, "layout");
_Static_assert(offsetof(struct fc_ontop, data) == FC_ONTOP_DATA, "layout");
_Static_assert(sizeof(struct fc_ontop) == FC_ONTOP_SIZE, "layout");

/* In arch/<arch>/fcontext.S. */
AS_HIDDEN transfer_t fc__jump(fcontext_t to, void *vp);
AS_HIDDEN transfer_t fc__arrive(uint64_t *mine, as_ctx from, void *data);
AS_HIDDEN as_transfer fc__ontop_shim(as_ctx from, void *data, transfer_t (*fn)(transfer_t),
                                     uint64_t *to_hdr);
AS_HIDDEN as_transfer fc__start(as_transfer first);

/* Link the stack whose header is `mine` to the frame at `from`: from now
 * on an unwinder reaches that frame through the trampoline at the bottom
 * of `mine`.  NULL: the chain ends there. */
static inline void fc_link(uint64_t *mine, const uint64_t *from, uint64_t cookie)
{
    if (FC_RELINK && mine) {
        mine[AS_TOP_LINK / 8] = (uintptr_t)from;
        mine[AS_TOP_COOKIE / 8] = from ? cookie : 0;
    }
}

/* Called by jump_fcontext and ontop_fcontext back on stack `mine` (its
 * header, or NULL) when the switch returned {from, data} (the x86_64
 * assembly does the same inline).  from == NULL comes after an ontop
 * function that returned no context: the shim has linked the stack to
 * the jumper already (or, for a finishing jumper, to nothing). */
transfer_t fc__arrive(uint64_t *mine, as_ctx from, void *data)
{
    fc__tls.cur = mine;
    const uint64_t *f = (const uint64_t *)from;
    if (f)
        fc_link(mine, f, f[FC_SW_RET / 8]);
    return (transfer_t){ from, data };
}

/*
 * ontop_fcontext's fn(t = {from, data}), run on to's stack, by
 * ontop_fcontext itself (x86_64) or by as_switch_ontop through
 * fc__ontop_entry, which unpacks the packet; to_hdr is to's header, from
 * its suspended jump or from the fresh frame make_fcontext wrote.
 *
 * fn may free the jumping side's stack: Boost's fiber_exit and callcc's
 * context_exit do, from a context that is finishing.  Those pass as data
 * the fiber's record, which Boost places at the top of the finishing
 * stack, above the sp it gave make_fcontext; an ontop with data within
 * FC_RECORD_ROOM above the jumping stack's top therefore leaves no link
 * behind (the arriving side is not linked to a frame about to vanish).
 * Any other ontop links the arriving side to the jumper, as a jump does,
 * right here, while the jumper's frame is sure to exist: Boost.Fiber's
 * ontop functions return no context, and the arrival then keeps this link.
 *
 * fn runs as to, on to's stack: the thread's current stack is to's from
 * here on, also when fn throws into to's suspended jump, whose return path
 * then never runs.
 */
#define FC_RECORD_ROOM 65536

as_transfer fc__ontop_shim(as_ctx from, void *data, transfer_t (*fn)(transfer_t),
                           uint64_t *to_hdr)
{
    uint64_t *jumper = fc__tls.cur;
    uintptr_t top = (uintptr_t)jumper + AS_TOP_SIZE;
    int finishing = jumper && (uintptr_t)data >= top && (uintptr_t)data - top < FC_RECORD_ROOM;
    if (!FC_RELINK)
        to_hdr = NULL;                      /* ASan: not a header, see fc__ontop_entry */
    const uint64_t *f = finishing ? NULL : (const uint64_t *)from;
    fc_link(to_hdr, f, f ? f[FC_SW_RET / 8] : 0);
    fc__tls.cur = to_hdr;
    transfer_t r = fn((transfer_t){ from, data });
    return (as_transfer){ (as_ctx)r.fctx, r.data };
}

/* FP control, as Boost's make_fcontext records it for a fresh context:
 * MXCSR and the x87 control word (x86_64), FPCR (aarch64). */
struct fc_fp {
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t fcw;
#else
    uint64_t fpcr;
#endif
};

static inline struct fc_fp fc_fp_get(void)
{
    struct fc_fp f;
#if defined(__x86_64__)
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(f.mxcsr), "=m"(f.fcw));
#else
    __asm__ volatile("mrs %0, fpcr" : "=r"(f.fpcr));
#endif
    return f;
}

#if !FC_DIRECT
static inline void fc_fp_set(const struct fc_fp *f)
{
#if defined(__x86_64__)
    __asm__ volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(f->mxcsr), "m"(f->fcw));
#else
    __asm__ volatile("msr fpcr, %0" : : "r"(f->fpcr));
#endif
}

/* What make_fcontext hands a fresh context in its first switch. */
struct fc_start {
    void      (*fn)(transfer_t);
    uint64_t   *hdr;            /* the stack's top header; NULL: no relinking */
    struct fc_fp fp;            /* the creator's FP control */
};

static as_transfer fc_entry(as_transfer t)
{
    const struct fc_start *st = t.data;     /* on make_fcontext's stack */
    void (*fn)(transfer_t) = st->fn;
    /* On our own stack from here: back to make_fcontext, which returns
     * our context; the first jump to it resumes us here, linked. */
    fc__tls.cur = st->hdr;
    /* The FP control the context starts with is its creator's at this
     * moment (Boost's make_fcontext records it); the jump below saves it
     * as this context's own. */
    fc_fp_set(&st->fp);
    transfer_t first = fc__jump(t.ctx, NULL);
    fn(first);
    _exit(0);                               /* what Boost does */
}
#endif

#if defined(AS_VALGRIND) && AS_VALGRIND
/* Stack ids by stack base, so that a stack adopted again is re-registered
 * rather than registered twice.  Slots are reused round-robin when full:
 * Valgrind only needs the stacks that are live. */
# define FC_VG_SLOTS 4096
static struct { void *lo; unsigned id; } fc_vg[FC_VG_SLOTS];
static unsigned fc_vg_next;
static pthread_mutex_t fc_vg_lock = PTHREAD_MUTEX_INITIALIZER;

static void fc_valgrind_adopt(void *lo, void *hi)
{
    if (!RUNNING_ON_VALGRIND)
        return;
    pthread_mutex_lock(&fc_vg_lock);
    unsigned slot = fc_vg_next;
    for (unsigned i = 0; i < FC_VG_SLOTS; i++) {
        if (fc_vg[i].lo == lo) {
            VALGRIND_STACK_DEREGISTER(fc_vg[i].id);
            slot = i;
            break;
        }
    }
    if (slot == fc_vg_next) {
        if (fc_vg[slot].lo)
            VALGRIND_STACK_DEREGISTER(fc_vg[slot].id);
        fc_vg_next = (fc_vg_next + 1) % FC_VG_SLOTS;
    }
    fc_vg[slot].lo = lo;
    fc_vg[slot].id = VALGRIND_STACK_REGISTER(lo, hi);
    pthread_mutex_unlock(&fc_vg_lock);
}
#else
static inline void fc_valgrind_adopt(void *lo, void *hi) { (void)lo; (void)hi; }
#endif

fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t))
{
    as_stack s;
    if (!sp || !fn || size > (uintptr_t)sp ||
        as_stack_init(&s, (char *)sp - size, size) != 0)
        return NULL;
#if FC_DIRECT
    as_ctx ctx = as_ctx_make(&s, fc__start);
    if (!ctx)
        return NULL;
    fc_valgrind_adopt(s.lo, s.hi);
    /* The frame as_ctx_make wrote (src/arch/<arch>/frame.h), right below
     * the top header: the trampoline calls fc__start, which finds fn and
     * the header where fcontext.S says. */
    struct as_sw_frame *f = (struct as_sw_frame *)ctx;
    struct fc_fp fp = fc_fp_get();
    uintptr_t hdr = (uintptr_t)ctx + AS_SW_SIZE;
#if defined(__x86_64__)
    ((uint64_t *)ctx)[-1] = hdr;
    f->r13 = (uintptr_t)fn;
    f->mxcsr = fp.mxcsr;
    f->fcw = fp.fcw;
#else
    f->x20 = hdr;
    f->x21 = (uintptr_t)fn;
    f->fpcr = fp.fpcr;
#endif
    return ctx;
#else
    as_ctx ctx = as_ctx_make(&s, fc_entry);
    if (!ctx)
        return NULL;
    fc_valgrind_adopt(s.lo, s.hi);
    /* as_ctx_make puts the top header at hi - AS_TOP_SIZE and the frame
     * right below it; anything else (the ASan records) is not relinked. */
    uint64_t *hdr = (uint64_t *)((uintptr_t)s.hi - AS_TOP_SIZE);
    struct fc_start st = {
        .fn = fn,
        .hdr = FC_RELINK && (uintptr_t)ctx + AS_SW_SIZE == (uintptr_t)hdr ? hdr : NULL,
        .fp = fc_fp_get(),
    };
    uint64_t *mine = fc__tls.cur;
    as_transfer t = as_switch(ctx, &st);
    fc__tls.cur = mine;                     /* fc_entry set its own */
    return t.ctx;
#endif
}

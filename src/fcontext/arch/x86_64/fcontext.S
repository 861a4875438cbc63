/* SPDX-License-Identifier: MIT */
/*
 * src/fcontext/arch/x86_64/fcontext.S - jump_fcontext and ontop_fcontext
 * (Boost.Context's ABI), System V.  Layouts: src/fcontext/layout.h and
 * src/arch/x86_64/layout.h; the bookkeeping: fcontext.c.
 *
 * A suspended fcontext (what an fcontext_t points at) is an as_switch
 * frame of exact mode, the caller's return address on top, as Boost's is
 * (same registers, MXCSR and x87 control word), with one word below it:
 *
 *   +--------------------+ ctx+64   the caller's rsp once the jump returns
 *   | return address     | ctx+56
 *   | rbp rbx r12 ...    | ctx+8..
 *   | flags | FCW | MXCSR| ctx+0
 *   +--------------------+ <- ctx
 *   | cur                | ctx-8    the header of the stack it runs on
 *   +--------------------+          (NULL off make_fcontext stacks)
 *
 * `cur` is the thread-local word fcontext.c keeps (layout.h); the jumper
 * writes its own into the red zone below its frame, where nothing else
 * writes while the context is suspended, and a fresh frame has it from
 * make_fcontext.  An as_switch frame, a fresh frame from as_ctx_make and
 * this one resume the same way (pop, jump to the return address), and
 * libaltstack's trampoline links a stack to any of them.
 *
 * Direct switches.  Without AddressSanitizer, jump_fcontext and
 * ontop_fcontext switch by themselves, with what Boost's assembly does
 * (callee-saved registers; MXCSR and the x87 control word saved, and
 * loaded from the target as as_switch loads them, in the exact-mode
 * strategy as_switch_init bound: fp_exact.h) plus libaltstack's
 * bookkeeping, done by the jumper once it knows the target's `cur`: the
 * thread's `cur` becomes the target's, and the target's stack is linked
 * to the jumper's frame, so that unwinders go from a fiber into whoever
 * resumed it last (the trampoline reads link and cookie; the cookie is
 * the return address in that frame).  make_fcontext (fcontext.c) writes
 * a fresh frame for libaltstack's trampoline, which calls fc__start.
 *
 * CFI.  The frame has the layout of the frame of the context resumed, so
 * one set of rules is right on both sides of `mov %rdi, %rsp` (as in
 * as_switch): before it they describe our caller, after it the target's.
 * cfi-step-fcontext (tests/boost) checks every instruction with gdb.
 *
 * Under AddressSanitizer the switch must carry ASan's fiber annotations
 * (src/hosted/asan.c) and an as_ctx is an annotation record: there both
 * functions call as_switch / as_switch_ontop instead, make_fcontext does
 * one round trip into the fresh context (fc_entry), and links are left as
 * the trampoline set them.
 *
 * Return prediction.  The switches end in `pop %r8; notrack jmp *%r8`,
 * like Boost's jump_fcontext and as_switch, not `ret`: the resumed side
 * returns to a call site that the return stack buffer never saw.
 */
#include "../../../arch/asm.h"
#include "../../../arch/x86_64/layout.h"
#include "../../../arch/x86_64/fp_exact.h"
#include "../../layout.h"

#if defined(AS_ASAN) && AS_ASAN
# define FC_DIRECT 0
#else
# define FC_DIRECT 1
#endif

#define FC_CUR_BELOW 8          /* cur at ctx - 8 */

#if FC_DIRECT
/*
 * Push the caller's frame (an exact as_switch frame) and write the
 * thread's `cur` below it.  After this rsp = our frame and the CFI
 * describes it; r10 = the offset of fc__tls from the thread pointer,
 * r9 = our return address (the cookie a link to this frame carries).
 */
#define FC_SAVE                            \
    movq    (%rsp), %r9;                   \
    AS_SWITCH_SAVE_EXACT;                  \
    movq    fc__tls@GOTTPOFF(%rip), %r10;  \
    movq    %fs:FC_TLS_CUR(%r10), %r11;    \
    movq    %r11, -FC_CUR_BELOW(%rsp)

/*
 * rsp = the target's frame, rax = ours: FP control as as_switch loads it
 * (fp_exact.h: skipped into a frame that has none, such as a fast one;
 * the MXCSR half is a patch site of the exact-mode strategy, listed in
 * fc__fp_sites below).  The status flags are caller-saved.  Clobbers ecx
 * (r9 holds the cookie).
 */
#define FC_FP_LOAD(n)                      \
    .cfi_remember_state;                   \
    AS_FP_LOAD_EXACT(%rax, n, %ecx, %cx)

#define FC_POP_CFI(reg)                    \
    popq    reg;                           \
    .cfi_adjust_cfa_offset -8;             \
    .cfi_restore reg

/* Pop the target's frame, leaving rsp at its CFA and its return address
 * in r8, and retire the frame (the slot is zeroed: links to it die). */
#define FC_POP                             \
    leaq    8(%rsp), %rsp;                 \
    .cfi_adjust_cfa_offset -8;             \
    FC_POP_CFI(%r15);                      \
    FC_POP_CFI(%r14);                      \
    FC_POP_CFI(%r13);                      \
    FC_POP_CFI(%r12);                      \
    FC_POP_CFI(%rbx);                      \
    FC_POP_CFI(%rbp);                      \
    popq    %r8;                           \
    .cfi_adjust_cfa_offset -8;             \
    .cfi_register %rip, %r8;               \
    movq    $0, -8(%rsp)

/*
 * transfer_t jump_fcontext(fcontext_t to, void *vp)
 *   on entry: rdi = to, rsi = vp, (%rsp) = return address
 *   returns:  rax = the context that jumped back (NULL: it finished),
 *             rdx = its data
 * Clobbers only caller-saved registers.
 */
AS_FUNC_BEGIN(jump_fcontext)
    FC_SAVE
    movq    %rsp, %rax              /* our frame: the resumed side's from */
    movq    %rsi, %rdx              /* data                               */
    movq    %rdi, %rsp              /* the switch; the CFI holds for `to` */
    FC_FP_LOAD(_j)
    movq    -FC_CUR_BELOW(%rsp), %rcx   /* to's cur: the thread's now     */
    movq    %rcx, %fs:FC_TLS_CUR(%r10)
    testq   %rcx, %rcx
    jz      1f
    movq    %rax, AS_TOP_LINK(%rcx)     /* link to's stack to our frame   */
    movq    %r9, AS_TOP_COOKIE(%rcx)
1:  FC_POP
    notrack jmp *%r8
    AS_FP_LOAD_EXACT_SLOW(_j)
AS_FUNC_END(jump_fcontext)

/*
 * transfer_t ontop_fcontext(fcontext_t to, void *vp, transfer_t (*fn)(transfer_t))
 *   on entry: rdi = to, rsi = vp, rdx = fn
 *   calls:    fc__ontop_shim(us, vp, fn, to's cur) on to's stack, with
 *             to's callee-saved registers and FP control in place, as if
 *             to's suspended switch had called it (the shim does the
 *             bookkeeping, in C)
 *   then:     resumes to with its result, as the return value of the
 *             switch to is suspended in
 *
 *   to's stack while the shim runs:
 *   +--------------------+ to+64 = CFA: to's rsp once its switch returns
 *   | 0 (retired)        | to+56   was to's return address
 *   | to's return addr.  | to+48   moved here, below the retired slot
 *   +--------------------+ to+48 = rsp at the call
 *   | return address     | to+40   into this function
 * so the shim's caller is this function and the caller of that is the
 * code that called to's switch: an unwinder, or a C++ exception leaving
 * fn, goes from fn straight there.  A fresh `to` (its return address the
 * trampoline's) gets fn's result as its first transfer (Boost's assembly
 * leaves it what fn left in rdi, rsi; Boost's fiber and callcc never go
 * ontop into a context that has not run).
 */
AS_FUNC_BEGIN(ontop_fcontext)
    FC_SAVE
    movq    %rsp, %rax
    movq    %rdi, %rsp              /* the switch; the CFI holds for `to` */
    FC_FP_LOAD(_o)
    movq    -FC_CUR_BELOW(%rsp), %rcx   /* to's cur, before the shim's    */
    FC_POP                              /* frames overwrite it            */
    leaq    -16(%rsp), %rsp
    .cfi_adjust_cfa_offset 16
    movq    %r8, (%rsp)
    .cfi_offset %rip, -16
    movq    %rax, %rdi              /* from; rsi = vp and rdx = fn still  */
    call    fc__ontop_shim          /* rsp+8 is 16-byte aligned at entry  */
    movq    (%rsp), %r8             /* its result {rax, rdx}: to's        */
    .cfi_register %rip, %r8
    leaq    16(%rsp), %rsp
    .cfi_adjust_cfa_offset -16
    notrack jmp *%r8
    AS_FP_LOAD_EXACT_SLOW(_o)
AS_FUNC_END(ontop_fcontext)

/*
 * The entry function of a fresh context (make_fcontext), called by the
 * trampoline with the first transfer in rdi, rsi; the jumper has set the
 * thread's cur and the trampoline linked the stack.
 *   on entry: r13 = Boost's fn (from the frame make_fcontext wrote)
 * fn must not return; if it does, _exit(0), as Boost's assembly does.
 */
AS_FUNC_HIDDEN(fc__start)
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    call    *%r13
    xorl    %edi, %edi
    call    _exit@PLT
    ud2
AS_FUNC_END(fc__start)

/*
 * The exact-mode strategy's sites here, bound by as_switch_init with the
 * switch's own (src/switch.c finds this table through a weak reference:
 * a program without fcontext has none).  Rows as in as__fp_sites
 * (switch.S): site start, site end, alternative start, alternative end.
 */
AS_FP_SITE_TABLE(fc__fp_sites)
    AS_FP_SITE_ROW(_j)
    AS_FP_SITE_ROW(_o)
AS_FP_SITE_TABLE_END

#else /* !FC_DIRECT: around as_switch and as_switch_ontop */

/* r12 = this thread's `cur`.  Clobbers rax. */
#define FC_LOAD_CUR                        \
    movq    fc__tls@GOTTPOFF(%rip), %rax;  \
    movq    %fs:FC_TLS_CUR(%rax), %r12

/* Back on our stack, rax = from, rdx = data, r12 = our cur:
 * fc__arrive does the bookkeeping.  Clobbers caller-saved registers. */
#define FC_ARRIVE                          \
    movq    %r12, %rdi;                    \
    movq    %rax, %rsi;                    \
    call    fc__arrive

/* Restore the caller's r12 and return with pop + jmp (see above). */
#define FC_RETURN                          \
    popq    %r12;                          \
    .cfi_adjust_cfa_offset -8;             \
    .cfi_restore %r12;                     \
    popq    %r8;                           \
    .cfi_adjust_cfa_offset -8;             \
    .cfi_register %rip, %r8;               \
    notrack jmp *%r8

/*
 *   jump_fcontext's frame               ontop_fcontext's frame
 *   +--------------------+ CFA           +--------------------+ CFA
 *   | return address     | CFA-8         | return address     | CFA-8
 *   | caller's r12       | CFA-16        | caller's r12       | CFA-16
 *   +--------------------+ <- rsp        | packet.data (vp)   | CFA-24
 *     then as_switch's frame             | packet.fn          | CFA-32
 *                                        +--------------------+ <- rsp
 * r12 = cur, kept by the switch.  fc__jump: the same code under a hidden
 * name, for fcontext.c's own use (a call to jump_fcontext from inside the
 * library could be interposed).
 */
AS_FUNC_BEGIN(jump_fcontext)
    .globl  fc__jump
    .hidden fc__jump
fc__jump:
    AS_PUSH_CFI(%r12)
    FC_LOAD_CUR
    call    as_switch@PLT
    FC_ARRIVE
    FC_RETURN
AS_FUNC_END(jump_fcontext)

AS_FUNC_BEGIN(ontop_fcontext)
    AS_PUSH_CFI(%r12)
    subq    $FC_ONTOP_SIZE, %rsp         /* rsp is 16-byte aligned again */
    .cfi_adjust_cfa_offset FC_ONTOP_SIZE
    movq    %rdx, FC_ONTOP_FN(%rsp)
    movq    %rsi, FC_ONTOP_DATA(%rsp)
    FC_LOAD_CUR
    movq    %rsp, %rsi
    leaq    fc__ontop_entry(%rip), %rdx
    call    as_switch_ontop@PLT
    FC_ARRIVE
    addq    $FC_ONTOP_SIZE, %rsp
    .cfi_adjust_cfa_offset -FC_ONTOP_SIZE
    FC_RETURN
AS_FUNC_END(ontop_fcontext)

/*
 * The ontop function as_switch_ontop calls on to's stack:
 *   on entry: rdi = the jumping context, rsi = its packet
 * (ASan's C wrapper runs in between: r12 means nothing, and the shim
 * ignores to's header.)  A tail call into fc__ontop_shim.
 */
AS_FUNC_HIDDEN(fc__ontop_entry)
    movq    FC_ONTOP_FN(%rsi), %rdx
    movq    FC_ONTOP_DATA(%rsi), %rsi
    movq    %r12, %rcx
    jmp     fc__ontop_shim
AS_FUNC_END(fc__ontop_entry)

#endif /* FC_DIRECT */

AS_ASM_TRAILER

/* SPDX-License-Identifier: MIT */
/*
 * src/fcontext/arch/x86_64/fcontext.S - jump_fcontext and ontop_fcontext
 * (Boost.Context's ABI) around as_switch / as_switch_ontop, System V.
 * Layouts: src/fcontext/layout.h; the bookkeeping: fcontext.c.
 *
 *   jump_fcontext's frame               ontop_fcontext's frame
 *   +--------------------+ CFA           +--------------------+ CFA
 *   | return address     | CFA-8         | return address     | CFA-8
 *   | caller's rbx       | CFA-16        | caller's rbx       | CFA-16
 *   +--------------------+ <- rsp        | packet.data (vp)   | CFA-24
 *     then as_switch's frame             | packet.fn          | CFA-32
 *     (src/arch/x86_64/layout.h)         +--------------------+ <- rsp
 *
 * While either is suspended, rbx holds the header of the stack it runs on
 * (the thread-local `cur`, NULL off make_fcontext stacks): as_switch keeps
 * it in its frame, and it is there again when the switch returns, or when
 * as_switch_ontop runs an ontop function on this stack (fc__ontop_entry).
 *
 * Return prediction.  Both return with `pop %r8; notrack jmp *%r8`, like
 * as_switch, not `ret`: the resumed side returns to a call site that the
 * return stack buffer never saw.  A C wrapper ending in `ret` mispredicted
 * on every switch and cost more than the switch itself.  The `call
 * as_switch` inside returns (through as_switch's jmp) always to the same
 * address, which the indirect-branch predictor learns at once.
 */
#include "../../../arch/asm.h"
#include "../../../arch/x86_64/layout.h"
#include "../../layout.h"

/*
 * Back on our stack after the switch returned rax = from, rdx = data,
 * with rbx = our stack's header: cur = rbx, and, if from is a context,
 * link our stack to its frame (src/arch/x86_64/layout.h: the trampoline
 * reads link and cookie; the cookie is that frame's return address).
 * from == NULL after an ontop function that returned none: its shim
 * linked us already.  fc__arrive is the same in C; under ASan, where an
 * as_ctx is not a frame, it is what runs.  Clobbers rcx, rsi, rdi.
 */
#if defined(AS_ASAN) && AS_ASAN
# define FC_ARRIVE                  \
    movq    %rbx, %rdi;             \
    movq    %rax, %rsi;             \
    call    fc__arrive
#else
# define FC_ARRIVE                  \
    movq    fc__tls@GOTTPOFF(%rip), %rcx;  \
    movq    %rbx, %fs:FC_TLS_CUR(%rcx);    \
    testq   %rbx, %rbx;             \
    jz      8f;                     \
    testq   %rax, %rax;             \
    jz      8f;                     \
    movq    AS_SW_RIP(%rax), %rsi;  \
    movq    %rax, AS_TOP_LINK(%rbx);       \
    movq    %rsi, AS_TOP_COOKIE(%rbx);     \
8:
#endif

/* Restore the caller's rbx and return with pop + jmp (see above). */
#define FC_RETURN                   \
    popq    %rbx;                   \
    .cfi_adjust_cfa_offset -8;      \
    .cfi_restore %rbx;              \
    popq    %r8;                    \
    .cfi_adjust_cfa_offset -8;      \
    .cfi_register %rip, %r8;        \
    notrack jmp *%r8

/*
 * transfer_t jump_fcontext(fcontext_t to, void *vp)
 *   on entry: rdi = to, rsi = vp, (%rsp) = return address
 *   returns:  rax = the context that jumped back (NULL: it finished),
 *             rdx = its data
 * Clobbers only caller-saved registers (as_switch, fc__arrive: C ABI).
 * fc__jump: the same code under a hidden name, for fcontext.c's own use
 * (a call to jump_fcontext from inside the library could be interposed).
 */
AS_FUNC_BEGIN(jump_fcontext)
    .globl  fc__jump
    .hidden fc__jump
fc__jump:
    AS_PUSH_CFI(%rbx)
    movq    fc__tls@GOTTPOFF(%rip), %rax
    movq    %fs:FC_TLS_CUR(%rax), %rbx   /* our stack's header, kept by the switch */
    call    as_switch@PLT
    /* Resumed: rax, rdx = the transfer, rbx = our header again. */
    FC_ARRIVE
    FC_RETURN
AS_FUNC_END(jump_fcontext)

/*
 * transfer_t ontop_fcontext(fcontext_t to, void *vp, transfer_t (*fn)(transfer_t))
 *   on entry: rdi = to, rsi = vp, rdx = fn
 * fn and vp go into a packet on our stack; as_switch_ontop runs
 * fc__ontop_entry(t = {us, &packet}) on to's stack.
 */
AS_FUNC_BEGIN(ontop_fcontext)
    AS_PUSH_CFI(%rbx)
    subq    $FC_ONTOP_SIZE, %rsp         /* rsp is 16-byte aligned again */
    .cfi_adjust_cfa_offset FC_ONTOP_SIZE
    movq    %rdx, FC_ONTOP_FN(%rsp)
    movq    %rsi, FC_ONTOP_DATA(%rsp)
    movq    fc__tls@GOTTPOFF(%rip), %rax
    movq    %fs:FC_TLS_CUR(%rax), %rbx
    movq    %rsp, %rsi
    leaq    fc__ontop_entry(%rip), %rdx
    call    as_switch_ontop@PLT
    FC_ARRIVE
    addq    $FC_ONTOP_SIZE, %rsp
    .cfi_adjust_cfa_offset -FC_ONTOP_SIZE
    FC_RETURN
AS_FUNC_END(ontop_fcontext)

/*
 * The ontop function as_switch_ontop calls, on to's stack, with to's
 * callee-saved registers:
 *   on entry: rdi = the jumping context, rsi = its packet,
 *             rbx = to's stack header (to is suspended in jump_fcontext,
 *             ontop_fcontext or fc_entry's first jump, all of which keep
 *             it there; under ASan a C wrapper runs in between and rbx
 *             means nothing, which fc__ontop_shim then ignores)
 * A tail call: the shim's caller, for unwinders, is as_switch_ontop.
 */
AS_FUNC_HIDDEN(fc__ontop_entry)
    movq    %rbx, %rdx
    jmp     fc__ontop_shim
AS_FUNC_END(fc__ontop_entry)

AS_ASM_TRAILER

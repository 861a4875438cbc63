/* SPDX-License-Identifier: MIT */
/*
 * src/arch/x86_64/switch.S - as_switch, as_switch_ontop, their fast-mode
 * twins, as_call_on and the entry trampoline for the System V x86_64 ABI.
 * Frame layouts: src/arch/x86_64/layout.h.
 *
 *   as_switch frame (ctx points at it)      fresh context (as_ctx_make)
 *   +--------------------+ ctx+64            +--------------------+ top
 *   | rip                | ctx+56            | end rip | 0        | S+16..S+31
 *   | rbp                | ctx+48            | cookie             | S+8
 *   | rbx                | ctx+40            | link               | S+0 = top-32
 *   | r12                | ctx+32            +--------------------+
 *   | r13                | ctx+24            | switch frame with  |
 *   | r14                | ctx+16            | rip = as__trampoline
 *   | r15                | ctx+8             | rbx = entry fn     |
 *   | flags:16 | FCW:16 | MXCSR:32  ctx+0    +--------------------+ ctx = S-64
 *   +--------------------+
 *
 * FP control modes.  An exact switch (as_switch, as_switch_ontop) saves
 * MXCSR and the x87 control word in its frame and sets the frame's flags
 * to 0xffff; a fast switch (as_switch_fast, as_switch_ontop_fast) saves
 * neither and leaves flags 0.  Whoever resumes a frame restores its FP
 * control if and only if the frame has it (flags bit 15), whatever mode
 * the resumer itself uses, so the modes mix safely:
 *   - exact resumer: loads from the target frame; if the target has
 *     nothing, a predicted branch skips the loads and the live values
 *     stay;
 *   - fast resumer: a branch, taken only into frames that have FP control.
 *
 * Exact-mode strategy.  How an exact resume loads the target's FP control
 * is bound once at start-up (as_switch_init, src/switch.c), by patching
 * each AS_FP_LOAD_EXACT site (fp_exact.h) listed in as__fp_sites below:
 *   compare (default): reload MXCSR / FCW only when they differ from ours,
 *             for CPUs where ldmxcsr is the slow part (Intel);
 *   reload:   ldmxcsr unconditionally, for CPUs where reading back our
 *             own just-stored MXCSR for the compare is the slow part (AMD
 *             Zen 4: back-to-back stmxcsr run 4.5 ns apart and a load of
 *             its result waits for it; the FCW is still compared, since
 *             fnstcw's store forwards and fldcw costs more than the
 *             comparison).
 * The patched site is straight-line code padded with NOPs: no indirect
 * call, no extra branch.  as__fp_sites lists each site's [start, end)
 * (local labels, so that symbolizers still name the whole function) and
 * the reload bytes that replace it; its last site is as_act_resume's
 * (activation.S), which binds with the switch's, and the direct fcontext
 * switches' sites bind with them too (fc__fp_sites, fcontext.S).
 *
 * CFI.  The frame as_switch pushes has the same layout as the frame of the
 * context it resumes, so one set of CFI rules is right on both sides of the
 * `mov %rdi, %rsp`: before it they describe the caller, after it the
 * context being resumed (which, as far as an unwinder can tell, is inside
 * its own call to as_switch).  The rules are valid at every instruction.
 *
 * Return prediction.  The switch ends in `pop %r8; jmp *%r8` rather than
 * `ret`: a `ret` to another context's call site always misses the return
 * stack buffer and, worse, leaves it off by one for the resumed code, while
 * an indirect jump is predicted from its own history.
 *
 * IBT.  Those jumps land on return sites, which are not endbr64 landing
 * pads, so they carry the notrack prefix (3e); calls through function
 * pointers (entry functions, fn) are tracked and land on the callee's
 * endbr64.  tests/check_ibt.py checks every indirect branch of the
 * library against this.
 */
#include "../asm.h"
#include "layout.h"
#include "fp_exact.h"

/* The CFI of a complete switch frame at %rsp. */
#define AS_CFI_SWITCH_FRAME          \
    .cfi_def_cfa %rsp, AS_SW_SIZE;   \
    .cfi_offset %rip, AS_SW_RIP - AS_SW_SIZE; \
    .cfi_offset %rbp, AS_SW_RBP - AS_SW_SIZE; \
    .cfi_offset %rbx, AS_SW_RBX - AS_SW_SIZE; \
    .cfi_offset %r12, AS_SW_R12 - AS_SW_SIZE; \
    .cfi_offset %r13, AS_SW_R13 - AS_SW_SIZE; \
    .cfi_offset %r14, AS_SW_R14 - AS_SW_SIZE; \
    .cfi_offset %r15, AS_SW_R15 - AS_SW_SIZE

#define AS_SWITCH_SAVE_FAST           \
    AS_PUSH_CALLEE_SAVED;             \
    pushq   $0;                       \
    .cfi_adjust_cfa_offset 8

/* Fast resume: restore FP control only into a frame that has it. */
#define AS_FP_LOAD_FAST(n)            \
    testb   $AS_SW_HAS_FP, AS_SW_FLAGS_HI(%rsp); \
    jnz     .Lload_fp##n;             \
.Lfp_done##n:
#define AS_FP_LOAD_FAST_SLOW(n)       \
.Lload_fp##n:                         \
    .cfi_restore_state;               \
    .cfi_remember_state;              \
    ldmxcsr AS_SW_MXCSR(%rsp);        \
    fldcw   AS_SW_FCW(%rsp);          \
    jmp     .Lfp_done##n

/* Pop a switch frame's FP word and callee-saved registers, leaving rsp at
 * its return address (CFA - 8), every register the resumed side's. */
#define AS_POP_CFI(reg)               \
    popq    reg;                      \
    .cfi_adjust_cfa_offset -8;        \
    .cfi_restore reg
#define AS_SWITCH_POP_REGS            \
    leaq    8(%rsp), %rsp;            \
    .cfi_adjust_cfa_offset -8;        \
    AS_POP_CFI(%r15);                 \
    AS_POP_CFI(%r14);                 \
    AS_POP_CFI(%r13);                 \
    AS_POP_CFI(%r12);                 \
    AS_POP_CFI(%rbx);                 \
    AS_POP_CFI(%rbp)

/* Pop the rest of the frame and jump to its return address.  Retire the
 * frame first: a context whose chain links to it (see the trampoline)
 * compares the return-address word with its cookie, so the link dies the
 * moment this frame is resumed.  The slot is still ours. */
#define AS_SWITCH_POP_AND_GO          \
    AS_SWITCH_POP_REGS;               \
    popq    %r8;                      \
    .cfi_adjust_cfa_offset -8;        \
    .cfi_register %rip, %r8;          \
    movq    $0, -8(%rsp);             \
    notrack jmp *%r8

/*
 * as_transfer as_switch(as_ctx to, void *data)         exact mode
 * as_transfer as_switch_fast(as_ctx to, void *data)    fast mode
 *   on entry: rdi = to (a switch frame), rsi = data, (%rsp) = return address
 *   returns:  rax = the context that resumed us (NULL if it finished),
 *             rdx = its data
 * Clobbers only caller-saved registers: rax, rcx, rdx, r8, r9 (SysV 3.2.1).
 */
#define AS_SWITCH_BODY(SAVE, LOAD, n) \
    SAVE;                             \
    movq    %rsp, %rax;      /* our own frame: the resumed side's ctx */ \
    movq    %rsi, %rdx;      /* data: second word of the transfer     */ \
    movq    %rdi, %rsp;      /* the switch; the CFI holds for `to` too */ \
    .cfi_remember_state;              \
    LOAD

AS_FUNC_BEGIN(AS_SYM(switch))
    AS_SWITCH_BODY(AS_SWITCH_SAVE_EXACT, AS_FP_LOAD_EXACT(%rax, _sw, %r9d, %r9w), _sw)
    /* rsp = the frame to resume, FP control loaded; rax, rdx = the
     * transfer.  The domain switch (share.S) ends here too. */
    .globl  as__switch_pop
    .hidden as__switch_pop
as__switch_pop:
    AS_SWITCH_POP_AND_GO
    AS_FP_LOAD_EXACT_SLOW(_sw)
AS_FUNC_END(AS_SYM(switch))

AS_FUNC_BEGIN(AS_SYM(switch_fast))
    AS_SWITCH_BODY(AS_SWITCH_SAVE_FAST, AS_FP_LOAD_FAST(_swf), _swf)
    AS_SWITCH_POP_AND_GO
    AS_FP_LOAD_FAST_SLOW(_swf)
AS_FUNC_END(AS_SYM(switch_fast))

/*
 * as_transfer as_switch_ontop(as_ctx to, void *data,
 *                             as_transfer (*fn)(as_transfer t))
 * as_transfer as_switch_ontop_fast(...)           the same in fast mode
 *   on entry: rdi = to, rsi = data, rdx = fn, (%rsp) = return address
 *   calls:    fn({our frame, data}) on to's stack, with to's callee-saved
 *             registers and FP control in place, as if to's suspended
 *             switch had called it
 *   then:     resumes to with fn's result {rax, rdx} as its transfer
 *   returns:  as as_switch, when something switches back to us
 * Clobbers rax, rcx, rdx, rdi, r8-r10.
 *
 *   to's stack while fn runs:
 *   +--------------------+ to+64 = CFA: to's rsp once its switch returns
 *   | 0 (retired)        | to+56   was to's return address
 *   | to's return addr.  | to+48   moved here, below the retired slot
 *   +--------------------+ to+48 = rsp at `call *%r10`
 *   | as_switch_ontop's  | to+40   return address into this function
 *   | fn's frames ...    |
 *
 * fn's caller is then this function, and the caller of that is whatever
 * to's switch returns to: an unwinder (or a C++ exception leaving fn)
 * goes from fn straight into the frame that called to's switch, with
 * to's callee-saved registers, which fn preserves like any callee.  The
 * `call`/`ret` pair keeps the return stack buffer in step.  to's frame
 * is retired before fn runs (its old return-address slot is zeroed), so
 * a chain linked to it ends there while fn overwrites the frame below.
 */
#define AS_ONTOP_BODY(SAVE, LOAD)     \
    SAVE;                             \
    movq    %rdx, %r10;      /* fn */ \
    movq    %rsp, %rax;               \
    movq    %rdi, %rsp;      /* the switch; the CFI holds for `to` too */ \
    movq    %rax, %rdi;      /* fn's t = {our frame, data}: rdi, rsi */ \
    .cfi_remember_state;              \
    LOAD;                             \
    AS_SWITCH_POP_REGS;               \
    popq    %r8;             /* to's return address */ \
    .cfi_adjust_cfa_offset -8;        \
    .cfi_register %rip, %r8;          \
    movq    $0, -8(%rsp);    /* retire the frame, as as_switch does */ \
    leaq    -16(%rsp), %rsp;          \
    .cfi_adjust_cfa_offset 16;        \
    movq    %r8, (%rsp);              \
    .cfi_offset %rip, -16;            \
    call    *%r10;           /* rsp+8 is 16-byte aligned at fn entry */ \
    movq    (%rsp), %r8;     /* fn returned r = {rax, rdx}: to's */ \
    .cfi_register %rip, %r8; /* switch returns it */ \
    leaq    16(%rsp), %rsp;           \
    .cfi_adjust_cfa_offset -16;       \
    notrack jmp *%r8

AS_FUNC_BEGIN(AS_SYM(switch_ontop))
    AS_ONTOP_BODY(AS_SWITCH_SAVE_EXACT, AS_FP_LOAD_EXACT(%rdi, _ot, %r9d, %r9w))
    AS_FP_LOAD_EXACT_SLOW(_ot)
AS_FUNC_END(AS_SYM(switch_ontop))

AS_FUNC_BEGIN(AS_SYM(switch_ontop_fast))
    AS_ONTOP_BODY(AS_SWITCH_SAVE_FAST, AS_FP_LOAD_FAST(_otf))
    AS_FP_LOAD_FAST_SLOW(_otf)
AS_FUNC_END(AS_SYM(switch_ontop_fast))

/*
 * The exact sites' alternative (the reload strategy) and the table of the
 * sites, for as_switch_init.  rsp = the frame being resumed, as at the site.
 * Each row: site start, site end, alternative start, alternative end.
 */
AS_FP_SITE_TABLE(as__fp_sites)
    AS_FP_SITE_ROW(_sw)
    AS_FP_SITE_ROW(_ot)
    .quad   as__act_fp_site, as__act_fp_site_end, as__act_fp_reload, as__act_fp_reload_end
AS_FP_SITE_TABLE_END

/*
 * The first code a fresh context runs, entered from as_switch's final jump.
 *   on entry: rsp = S (top - 32, 16-byte aligned), rbx = entry fn,
 *             rbp = 0, rax = the switcher's ctx, rdx = data
 *
 * CFI: the caller of this frame is the switcher, suspended in as_switch
 * with its frame at `link`.  The CFA is computed by a DWARF expression:
 *
 *     L = *(S + LINK)
 *     if (L != 0 && *(L + 56) == *(S + COOKIE))   L + 64     (the switcher)
 *     else                                        S + 32     (the end)
 *
 * With the rules below the end frame reads rbp = 0 and rip = the address
 * just inside as__context_start, whose CFI marks the return address
 * undefined: unwinders (libunwind, gdb) take that as the outermost frame,
 * exactly as they do for _start or a new thread's first frame.
 * The cookie check stops the chain once the switcher has moved on: resuming
 * a frame zeroes its rip slot (AS_SWITCH_POP_AND_GO), so the link is believed
 * only while the switcher is still suspended in the frame it switched from
 * (or suspended again at the very same place, which is just as true).
 * Reading through a link whose stack was unmapped is the one case this
 * cannot catch: free a switcher's stack only once contexts it started are
 * done with or never unwound.
 *
 * The expression is written without branches or stack shuffling (dup,
 * bra, skip, drop), as the arithmetic form
 *
 *     ok  = (L != 0) * (*(S + (L != 0) * (L + 56 - S)) == cookie)
 *     CFA = S + 32 + ok * (L + 32 - S)
 *
 * because Valgrind's CFI reader knows only arithmetic, comparisons and
 * deref, and aborts on anything else (3.19: an assertion in readdwarf.c),
 * which would make every program linking the library unusable under it.
 * When L == 0 the rip read goes to S itself, so nothing is dereferenced
 * through a null link.
 *
 *   0x0f 40              DW_CFA_def_cfa_expression, 40 bytes:
 *   0x77 0x20            DW_OP_breg7 (rsp) 32            S+32
 *   0x77 0 0x06 0x30 0x2e  breg7 0, deref, lit0, ne     S+32, L!=0
 *   0x77 0x00            DW_OP_breg7 0                   .., S
 *   0x77 0 0x06 0x30 0x2e  breg7 0, deref, lit0, ne     .., S, L!=0
 *   0x77 0 0x06 0x23 0x38 0x77 0 0x1c  L, +56, S, minus  .., S, L!=0, L+56-S
 *   0x1e 0x22 0x06       DW_OP_mul, plus, deref          S+32, L!=0, rip(L)
 *   0x77 0x08 0x06       DW_OP_breg7 8, deref            .., rip(L), cookie
 *   0x29 0x1e            DW_OP_eq, mul                   S+32, ok
 *   0x77 0 0x06 0x23 0x20 0x77 0 0x1c  L, +32, S, minus  S+32, ok, L+32-S
 *   0x1e 0x22            DW_OP_mul, plus                 CFA
 */
    .text
    .globl  as__trampoline
    .hidden as__trampoline
    .type   as__trampoline, %function
    AS_FUNC_ALIGN
as__trampoline:
    .cfi_startproc
    .cfi_escape 0x0f, 40, 0x77, 0x20, \
                0x77, 0x00, 0x06, 0x30, 0x2e, \
                0x77, 0x00, \
                0x77, 0x00, 0x06, 0x30, 0x2e, \
                0x77, 0x00, 0x06, 0x23, 0x38, 0x77, 0x00, 0x1c, \
                0x1e, 0x22, 0x06, \
                0x77, 0x08, 0x06, \
                0x29, 0x1e, \
                0x77, 0x00, 0x06, 0x23, 0x20, 0x77, 0x00, 0x1c, \
                0x1e, 0x22
    .cfi_offset %rip, AS_SW_RIP - AS_SW_SIZE
    .cfi_offset %rbp, AS_SW_RBP - AS_SW_SIZE
    .cfi_offset %rbx, AS_SW_RBX - AS_SW_SIZE
    .cfi_offset %r12, AS_SW_R12 - AS_SW_SIZE
    .cfi_offset %r13, AS_SW_R13 - AS_SW_SIZE
    .cfi_offset %r14, AS_SW_R14 - AS_SW_SIZE
    .cfi_offset %r15, AS_SW_R15 - AS_SW_SIZE
    /* Fresh frames "return" to as__trampoline + 4, never to its first
     * byte: while as_switch pops such a frame, unwinders look up the
     * caller at rip - 1, which must lie inside this FDE (with the CFI
     * above already in force), not in whatever precedes the function.
     * The same holds for the landing pad, hence the CFI comes first. */
    .nops   4                       /* never executed */
    endbr64                         /* entry: as__trampoline + 4 */
    /* rax is NULL when the switcher was a finishing context (an entry
     * returned a transfer to this fresh one): no link, no cookie. */
    movq    %rax, AS_TOP_LINK(%rsp)
    xorl    %ecx, %ecx
    testq   %rax, %rax
    jz      1f
    movq    AS_SW_RIP(%rax), %rcx
1:  movq    %rcx, AS_TOP_COOKIE(%rsp)
    movq    %rax, %rdi              /* as_transfer t = {rax, rdx}        */
    movq    %rdx, %rsi
    call    *%rbx                   /* rsp is 16-byte aligned here       */

    /* The entry returned r = {rax, rdx}: resume r.ctx with r.data and
     * ctx = NULL.  Nobody saves this context, so nothing to push, and
     * nothing to compare the FP control words against: load them, if the
     * frame has them. */
    movq    %rax, %rsp
    AS_CFI_SWITCH_FRAME
    .cfi_remember_state
    xorl    %eax, %eax
    AS_FP_LOAD_FAST(_tr)
    AS_SWITCH_POP_AND_GO
    AS_FP_LOAD_FAST_SLOW(_tr)
AS_FUNC_END(as__trampoline)

/*
 * The bottom of every context's chain: never executed, only named.  Its
 * FDE says "no caller" from its very first byte, and as_ctx_make stores
 * as__context_start + 1 as the end frame's return address (unwinders look
 * up return address - 1).
 */
    .text
    .globl  as__context_start
    .hidden as__context_start
    .type   as__context_start, %function
as__context_start:
    .cfi_startproc
    .cfi_undefined %rip
    nop
    ud2
    .cfi_endproc
    .size   as__context_start, . - as__context_start

/*
 * void *as_call_on(const as_stack *s, void *(*fn)(void *), void *arg)
 *   on entry: rdi = s, rsi = fn, rdx = arg
 * First the stack as_ctx_make would accept: s, fn, s->lo non-NULL, and
 * top = s->hi & -16 with top - AS_STACK_MIN >= s->lo, computed without
 * wrapping (so hi < lo and hi NULL fail too); otherwise NULL, fn not
 * called.  Five predicted branches, no call.
 * A frame-pointer frame whose CFA is rbp-relative stays correct while fn
 * runs on the other stack: unwinding from fn lands here, then in our caller.
 * Clobbers rcx, r8 besides the argument and result registers.
 */
AS_FUNC_BEGIN(AS_SYM(call_on))
    testq   %rdi, %rdi
    jz      .Lcall_on_null
    testq   %rsi, %rsi
    jz      .Lcall_on_null
    movq    AS_STACK_LO(%rdi), %rcx /* s->lo */
    movq    AS_STACK_HI(%rdi), %rax /* s->hi */
    andq    $-16, %rax              /* top */
    testq   %rcx, %rcx
    jz      .Lcall_on_null
    movq    %rax, %r8
    subq    $AS_STACK_MIN_BYTES, %r8
    jb      .Lcall_on_null          /* top < AS_STACK_MIN (hi NULL)      */
    cmpq    %rcx, %r8
    jb      .Lcall_on_null          /* fewer than AS_STACK_MIN, or hi < lo */
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    movq    %rsp, %rbp
    .cfi_def_cfa_register %rbp
    movq    %rax, %rsp
    movq    %rdx, %rdi
    call    *%rsi
    movq    %rbp, %rsp
    popq    %rbp
    .cfi_def_cfa %rsp, 8
    .cfi_restore %rbp
    ret
.Lcall_on_null:
    xorl    %eax, %eax
    ret
AS_FUNC_END(AS_SYM(call_on))

AS_ASM_TRAILER

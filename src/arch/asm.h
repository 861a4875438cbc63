/* SPDX-License-Identifier: MIT */
/*
 * src/arch/asm.h - the skeleton every .S file of the library is built on.
 *
 *   AS_FUNC_BEGIN(name)   global function: .globl, .type, alignment, label,
 *                         .cfi_startproc and the indirect-branch landing pad
 *                         (endbr64 on x86_64, bti c on aarch64; both execute
 *                         as NOPs on cores without IBT/BTI).
 *   AS_FUNC_HIDDEN(name)  the same, for symbols internal to the library.
 *   AS_FUNC_END(name)     .cfi_endproc and .size.
 *   AS_ASM_TRAILER        the GNU property note (IBT on x86_64; BTI and PAC
 *                         on aarch64) and a non-executable stack marker.
 *                         Every .S file ends with it.
 *
 * x86_64 declares IBT, and it is true: every indirect jump in the .S
 * files lands on a return site or a resumed PC and carries `notrack`;
 * indirect calls go through caller-supplied function pointers, landing on
 * the callee's endbr64 (tests/check_ibt.py disassembles the built library
 * and checks this).  It does not declare SHSTK: a context switch moves the return
 * address stack, which a CET shadow stack would reject without a shadow
 * stack per context.  Binaries linking the library therefore stay out of
 * shadow-stack mode.
 */
#ifndef ALTSTACK_SRC_ARCH_ASM_H
#define ALTSTACK_SRC_ARCH_ASM_H

#ifndef __ASSEMBLER__
# error "src/arch/asm.h is for .S files"
#endif

#if defined(__x86_64__)
# define AS_LANDING_PAD endbr64
# define AS_FUNC_ALIGN  .p2align 4
#elif defined(__aarch64__)
# define AS_LANDING_PAD bti c
# define AS_FUNC_ALIGN  .p2align 4
#else
# error "unsupported architecture"
#endif

/* AS_SYM(switch) names the switch primitives.  Under AddressSanitizer
 * (AS_ASAN, set by the build) the assembly entry points take internal names
 * and src/hosted/asan.c wraps them with the fiber annotations ASan needs. */
#if defined(AS_ASAN) && AS_ASAN
# define AS_SYM(name) as__raw_##name
#else
# define AS_SYM(name) as_##name
#endif

#define AS_FUNC_BEGIN(name)      \
    .text;                       \
    .globl name;                 \
    .type name, %function;       \
    AS_FUNC_ALIGN;               \
name:                            \
    .cfi_startproc;              \
    AS_LANDING_PAD

#define AS_FUNC_HIDDEN(name)     \
    .hidden name;                \
    AS_FUNC_BEGIN(name)

#define AS_FUNC_END(name)        \
    .cfi_endproc;                \
    .size name, . - name

#if defined(__x86_64__)
/* Push one register and say so in the CFI; push all six callee-saved
 * registers (System V 3.2.1) in the order of the switch frame: rbp ends
 * up highest, r15 lowest.  Used by switch.S and the test probes. */
# define AS_PUSH_CFI(reg)           \
    pushq reg;                      \
    .cfi_adjust_cfa_offset 8;       \
    .cfi_rel_offset reg, 0
# define AS_PUSH_CALLEE_SAVED       \
    AS_PUSH_CFI(%rbp);              \
    AS_PUSH_CFI(%rbx);              \
    AS_PUSH_CFI(%r12);              \
    AS_PUSH_CFI(%r13);              \
    AS_PUSH_CFI(%r14);              \
    AS_PUSH_CFI(%r15)
#endif

/* Build the note with .p2align 3 (ELF64), n_namesz 4 ("GNU\0"), n_descsz 16,
 * n_type 5 (NT_GNU_PROPERTY_TYPE_0), one property of 4 bytes padded to 8. */
#if defined(__x86_64__)
# define AS_PROP_TYPE 0xc0000002   /* GNU_PROPERTY_X86_FEATURE_1_AND   */
# define AS_PROP_BITS 0x1          /* IBT                              */
#else
# define AS_PROP_TYPE 0xc0000000   /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
# define AS_PROP_BITS 0x3          /* BTI | PAC                         */
#endif

#define AS_ASM_TRAILER                                   \
    .pushsection .note.gnu.property, "a";                \
    .p2align 3;                                          \
    .long 4;                                             \
    .long 16;                                            \
    .long 5;                                             \
    .asciz "GNU";                                        \
    .long AS_PROP_TYPE;                                  \
    .long 4;                                             \
    .long AS_PROP_BITS;                                  \
    .long 0;                                             \
    .popsection;                                         \
    .section .note.GNU-stack, "", %progbits

#endif /* ALTSTACK_SRC_ARCH_ASM_H */

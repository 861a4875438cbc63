/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/aarch64/user.S - the EL0 code that must say exactly
 * which registers hold what (see el0.h; every symbol here becomes u_<name>):
 *
 *   upre_task      user_preempt's CPU-bound task: every register but x16,
 *                  x17 (scratch) and sp holds a value derived from its base, checked on
 *                  each round, so a lost or mixed-up register, NZCV
 *                  included (a cmp and its branch may be split by a tick),
 *                  is seen
 *   usvc_check     a system call made with every other register holding a
 *                  pattern, checked after the eret
 *   uprobe_read,   one load / store that may fault: the kernel's abort
 *   uprobe_write   handler, for a pc in [uprobe_lo, uprobe_hi), sets x0 = 1
 *                  and resumes after the faulting instruction
 */
#include "el0.h"

#define TASK_SIZE 40                    /* struct upre_task */

    .text
/*
 * void upre_task(void *i) - never returns.
 *   on entry: x0 = i, the task's index.  Register r (x1-x15, x18, x19,
 *   x21, x23-x30) holds base + r, base = (i + 1) << 40 in x0; v<n> holds
 *   base + 100 + n in d[0] and base + 200 + n in d[1]; x20 = &tasks[i];
 *   x22 counts rounds; x17 is the scratch register.  x16 is never used:
 *   the staged user-mode resume of a FULL record hands it the pc
 *   (activation.h), so a task preempted between writing and reading it
 *   would see the pc there.
 */
    .globl  upre_task_lo, upre_task_hi, upre_task
    .balign 16
upre_task_lo:
upre_task:
    bti     c
    adrp    x20, upre_tasks
    add     x20, x20, :lo12:upre_tasks
    mov     x1, #TASK_SIZE
    madd    x20, x0, x1, x20
    add     x0, x0, #1
    lsl     x0, x0, #40
    str     x0, [x20, #8]
    mov     x22, #0
    .irp r, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,18,19,21,23,24,25,26,27,28,29,30
    add     x\r, x0, #\r
    .endr
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    add     x17, x0, #(100 + \v)
    fmov    d\v, x17
    add     x17, x0, #(200 + \v)
    mov     v\v\().d[1], x17
    .endr
1:  add     x22, x22, #1
    str     x22, [x20]
    ldr     x17, [x20, #8]
    cmp     x17, x0
    b.eq    2f
    mov     x17, #1
    str     x17, [x20, #16]
2:
    .irp r, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,18,19,21,23,24,25,26,27,28,29,30
    sub     x17, x\r, x0
    cmp     x17, #\r
    b.eq    3f
    mov     x17, #(\r + 1)
    str     x17, [x20, #16]
3:
    .endr
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fmov    x17, d\v
    sub     x17, x17, x0
    cmp     x17, #(100 + \v)
    b.eq    4f
    mov     x17, #(100 + \v)
    str     x17, [x20, #16]
4:  mov     x17, v\v\().d[1]
    sub     x17, x17, x0
    cmp     x17, #(200 + \v)
    b.eq    5f
    mov     x17, #(200 + \v)
    str     x17, [x20, #16]
5:
    .endr
    b       1b
upre_task_hi:

/*
 * long usvc_check(long nr, long a0, uint64_t *bad)
 *   svc nr with x0 = a0, x1 = 0x801 and x2-x7, x9-x28 = 0x800 + r, x8 =
 *   nr, x17 = sp; afterwards *bad = 1 + the first register that came back
 *   changed (18 for sp), 0 if none.  Returns the call's x0.
 */
    .globl  usvc_check
    .balign 16
usvc_check:
    bti     c
    stp     x29, x30, [sp, #-112]!
    mov     x29, sp
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     x2, x0, [sp, #96]
    mov     x8, x0
    mov     x0, x1
    .irp r, 1,2,3,4,5,6,7,9,10,11,12,13,14,15,16,18,19,20,21,22,23,24,25,26,27,28
    mov     x\r, #(0x800 + \r)
    .endr
    mov     x17, sp
    svc     #0
    mov     x30, #0
    .irp r, 1,2,3,4,5,6,7,9,10,11,12,13,14,15,16,18,19,20,21,22,23,24,25,26,27,28
    cmp     x\r, #(0x800 + \r)
    b.eq    1f
    cbnz    x30, 1f
    mov     x30, #(\r + 1)
1:
    .endr
    mov     x16, sp
    cmp     x16, x17
    b.eq    2f
    cbnz    x30, 2f
    mov     x30, #18
2:  ldr     x16, [sp, #104]
    cmp     x8, x16
    b.eq    3f
    cbnz    x30, 3f
    mov     x30, #9
3:  ldr     x1, [sp, #96]
    str     x30, [x1]
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #112
    ret

/*
 * long uprobe_read(const void *p), long uprobe_write(void *p)
 *   0 if the access went through, 1 if it faulted.  The write stores back
 *   what it read (a denied read faults first, then the store).
 */
    .globl  uprobe_read, uprobe_write, uprobe_lo, uprobe_hi
    .balign 16
uprobe_lo:
uprobe_read:
    bti     c
    mov     x1, x0
    mov     x0, #0
    ldr     x2, [x1]
    ret
uprobe_write:
    bti     c
    mov     x1, x0
    mov     x0, #0
    ldr     x2, [x1]
    str     x2, [x1]
    ret
uprobe_hi:

    .section .note.GNU-stack, "", %progbits

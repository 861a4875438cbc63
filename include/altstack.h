/* SPDX-License-Identifier: MIT */
/*
 * altstack.h - libaltstack, the umbrella header.
 *
 * libaltstack is a small runtime for code that wants to control which stack
 * it runs on and what CPU state it carries:
 *
 *   altstack/stack.h       guard-paged stacks, or memory the caller owns
 *   altstack/switch.h      run a function on another stack; switch contexts
 *   altstack/activation.h  capture complete CPU state; resume it exactly
 *   altstack/preempt.h     hosted: timer-signal upcalls (preemptive fibers)
 *   altstack/dlock.h       delegation locks: the critical section travels
 *   altstack/percpu.h      per-CPU base register and auxiliary stacks
 *   altstack/share.h       stack isolation domains and shared stacks
 *
 * Each header can also be included alone.  All of them need only the
 * compiler's freestanding headers, and compile as C11 and C++.
 */
#ifndef ALTSTACK_H
#define ALTSTACK_H

#include "altstack/config.h"
#include "altstack/stack.h"
#include "altstack/switch.h"
#include "altstack/activation.h"
#include "altstack/preempt.h"
#include "altstack/dlock.h"
#include "altstack/percpu.h"
#include "altstack/share.h"

#endif /* ALTSTACK_H */

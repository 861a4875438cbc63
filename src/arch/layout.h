/* SPDX-License-Identifier: MIT */
/* src/arch/layout.h - the current architecture's layout header. */
#ifndef ALTSTACK_SRC_ARCH_LAYOUT_H
#define ALTSTACK_SRC_ARCH_LAYOUT_H
#if defined(__x86_64__)
# include "x86_64/layout.h"
#elif defined(__aarch64__)
# include "aarch64/layout.h"
#else
# error "unsupported architecture"
#endif
#endif

/* SPDX-License-Identifier: MIT */
/* src/arch/frame.h - the current architecture's C view of the switch frame:
 * struct as_sw_frame and as__frame_init(frame, entry). */
#ifndef ALTSTACK_SRC_ARCH_FRAME_H
#define ALTSTACK_SRC_ARCH_FRAME_H
#if defined(__x86_64__)
# include "x86_64/frame.h"
#elif defined(__aarch64__)
# include "aarch64/frame.h"
#else
# error "unsupported architecture"
#endif
#endif

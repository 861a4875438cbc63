/* SPDX-License-Identifier: MIT */
/*
 * src/fcontext/layout.h - the offsets src/fcontext/arch/<arch>/fcontext.S
 * shares with fcontext.c, which checks each with _Static_assert.
 *
 *   per-thread state (struct fc_thread, thread-local fc__tls)
 *   +--------------------+ 0   cur: top header of the make_fcontext stack
 *   | cur                |          running on this thread, or NULL
 *   +--------------------+ 8
 *
 *   ontop packet (struct fc_ontop), on the jumping side's stack while
 *   ontop_fcontext is suspended
 *   +--------------------+ 0
 *   | fn                 |     the caller's ontop function
 *   | data               | 8   its vp
 *   +--------------------+ 16
 */
#ifndef ALTSTACK_SRC_FCONTEXT_LAYOUT_H
#define ALTSTACK_SRC_FCONTEXT_LAYOUT_H

#define FC_TLS_CUR      0
#define FC_TLS_SIZE     8

#define FC_ONTOP_FN     0
#define FC_ONTOP_DATA   8
#define FC_ONTOP_SIZE  16

#endif

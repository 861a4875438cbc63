#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/boost/gdb_boost.sh GDB PROGRAM LIBALTSTACK-FCONTEXT.so
# gdb's `bt` inside a Boost fiber.  PROGRAM is linked with Boost only.
#   with LD_PRELOAD of the library: inside a boost::context::fiber the
#     backtrace runs through fc__start from src/fcontext/arch/*/fcontext.S
#     into gdb_resumer and main; inside a Boost.Fiber fiber it reaches
#     gdb_joiner and main;
#   without it (Boost's own assembly, no CFI): it does not reach main,
#     which shows the first check can fail.
set -u
gdb=$1 prog=$2 lib=$3
run() {  # extra gdb commands before `run`
    "$gdb" -nx -q -batch -ex 'set pagination off' -ex 'set confirm off' \
        -ex 'set backtrace limit 60' "$@" \
        -ex 'break gdb_in_fiber' -ex 'break gdb_in_fibers' \
        -ex run -ex 'echo @1\n' -ex bt \
        -ex continue -ex 'echo @2\n' -ex bt -ex continue "$prog" 2>&1
}
# Without debug info (a release build) gdb names the assembly's symbols
# from the symbol table, decoding "__" Ada-style as "." (fc.start), and
# names the library instead of fcontext.S.
U='(__|\.)' F='(fcontext\.[Sc]|libaltstack-fcontext\.so)'
fail=0
check() {  # output, section, regex, what, [!]
    sec=$(printf '%s\n' "$1" | sed -n "/^@$2\$/,/^@\|^Breakpoint\|exited/p" | tr '\n' ' ')
    if printf '%s' "$sec" | grep -Eq "$3"; then ok=1; else ok=0; fi
    [ "${5:-}" = '!' ] && ok=$((1 - ok))
    if [ $ok = 1 ]; then echo "ok   $4"; else echo "FAIL $4"; fail=1; fi
}
ours=$(run -ex "set environment LD_PRELOAD $lib")
check "$ours" 1 "#0 +gdb_in_fiber .* in (fc${U}start|fc_entry) .*$F.* in as${U}trampoline .* gdb_resumer .* main " \
    'LD_PRELOAD: fiber -> fc__start (fcontext.S) -> trampoline -> gdb_resumer -> main'
check "$ours" 2 "#0 +gdb_in_fibers .* in (fc${U}start|fc_entry) .*$F.* gdb_joiner .* main " \
    'LD_PRELOAD: Boost.Fiber fiber -> scheduler -> gdb_joiner -> main'
if printf '%s\n' "$ours" | grep -Eq 'Backtrace stopped|corrupt stack'; then
    echo "FAIL: gdb reported a broken chain"; fail=1
fi
boost=$(run)
check "$boost" 1 ' main ' "Boost's own fcontext: the fiber's backtrace does not reach main" '!'
[ $fail = 0 ] || { printf '%s\n' "--- with LD_PRELOAD" "$ours" "--- without" "$boost"; }
exit $fail

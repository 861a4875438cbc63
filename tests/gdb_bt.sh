#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/gdb_bt.sh GDB PROGRAM - gdb's `bt` sees through every switch.
# Stops in fn of as_call_on, in an entry just after its first switch-in, and
# in the same entry after its switcher has moved on, and in the fn of an
# as_switch_ontop; checks each backtrace.
set -u
gdb=$1 prog=$2
out=$("$gdb" -nx -q -batch \
    -ex 'set pagination off' -ex 'set confirm off' \
    -ex 'break gdb_in_call_on' -ex 'break gdb_in_entry' -ex 'break gdb_in_ontop' \
    -ex run -ex 'echo @1\n' -ex bt \
    -ex continue -ex 'echo @2\n' -ex bt \
    -ex continue -ex 'echo @3\n' -ex bt \
    -ex continue -ex 'echo @4\n' -ex bt \
    -ex continue "$prog" 2>&1)
# Without debug info (a release build) gdb names the assembly's symbols
# from the symbol table and decodes "__" in them Ada-style, as ".":
# as__trampoline shows as as.trampoline.  $U matches either.
U='(__|\.)'
fail=0
section() { printf '%s\n' "$out" | sed -n "/^@$1\$/,/^@\|^Breakpoint\|exited/p"; }
expect() {  # section, extended regex over the section joined into one line
    if section "$1" | tr '\n' ' ' | grep -Eq "$2"; then echo "ok   @$1: $3"
    else echo "FAIL @$1: $3"; fail=1; fi
}
expect 1 '#0 +gdb_in_call_on .*#1 .* in as_call_on .*#2 .* in gdb_caller .* in main ' \
       'as_call_on fn -> as_call_on -> caller -> main'
expect 2 "#1 .* in gdb_entry .*#2 .* in as${U}trampoline .*#3 .* in gdb_switcher .* in main " \
       'entry -> trampoline -> the switcher -> main'
expect 3 "#2 .* in as${U}trampoline .*#3 .* in as${U}context_start " \
       'once the switcher moved on, the chain ends at as__context_start'
expect 4 "#0 +gdb_in_ontop .*#1 .* in gdb_ontop_fn .*#2 .* in as_switch_ontop .*#3 .* in gdb_peer_waits .*#4 .* in gdb_ontop_peer .*#5 .* in as${U}trampoline " \
       'ontop fn -> as_switch_ontop -> the code in the target that switched'
if printf '%s\n' "$out" | grep -Eq 'Backtrace stopped|corrupt stack|Cannot access memory'; then
    echo "FAIL: gdb reported a broken chain"; fail=1
fi
[ $fail = 0 ] || printf '%s\n' "$out"
exit $fail

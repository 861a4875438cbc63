#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fail if a static library needs a symbol that none of its members
defines and tests/freestanding/hooks.txt does not list.

usage: check_undefined.py NM LIBRARY HOOKS

A symbol one member references and another defines is the library's own;
what is left is what the program or kernel linking the library must
provide.  Anything libc-, TLS- or stack-protector-shaped (__stack_chk_fail,
__tls_get_addr, __aarch64_ldadd4_acq_rel, ...) shows up here.  Prints
every undefined symbol with the members that need it, so the log shows
the library's whole outside interface.
"""
import subprocess
import sys


def main():
    nm, lib, hooks_file = sys.argv[1:4]
    listing = subprocess.run([nm, '-P', '-A', lib], check=True,
                             capture_output=True, text=True).stdout
    defined, undefined = set(), {}
    for line in listing.splitlines():
        # "lib.a[member.o]: name type [value size]"
        member, _, rest = line.partition(': ')
        fields = rest.split()
        if len(fields) < 2:
            continue
        name, kind = fields[0], fields[1]
        if kind == 'U':
            undefined.setdefault(name, set()).add(member)
        elif kind not in 'wv':          # weak undefined may stay unresolved
            defined.add(name)

    hooks = set()
    with open(hooks_file) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                hooks.add(line)

    needed = sorted(n for n in undefined if n not in defined)
    bad = [n for n in needed if n not in hooks]
    for n in needed:
        print('%-5s%s  <- %s' % ('ok' if n in hooks else 'BAD', n,
                                 ', '.join(sorted(undefined[n]))))
    if bad:
        print('FAIL: %d undefined symbol(s) not in %s' % (len(bad), hooks_file))
        return 1
    print('PASS: %d undefined symbol(s), all documented hooks' % len(needed))
    return 0


if __name__ == '__main__':
    sys.exit(main())

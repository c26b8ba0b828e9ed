"""sysrc(8): read and write rc.conf-style files (-f), under a root (-R) or jail (-j)."""
import os
import re

from haelklab.freebsd.common import Fail, current_jail, find_jail, parse_rc, run_main

USAGE = ("Usage: sysrc [OPTIONS] {name[[+|-]=value] ... | -a | -A | -l | -L [name ...]}\n"
         "Try `sysrc --help' for more information.")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def main(argv):
    return run_main(_main, argv)


def _main(argv):
    files, root, jail, values_only, delete, quiet = None, "", None, False, False, False
    args = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-f", "-R", "-j"):
            if i + 1 >= len(argv):
                raise Fail(f"sysrc: option requires an argument -- {arg[1]}\n{USAGE}")
            value = argv[i + 1]
            if arg == "-f":
                files = (files or []) + value.split(",")
            elif arg == "-R":
                root = value
            else:
                jail = value
            i += 2
            continue
        if arg.startswith("-") and len(arg) > 1 and not args:
            for c in arg[1:]:
                if c == "n":
                    values_only = True
                elif c == "x":
                    delete = True
                elif c == "q":
                    quiet = True
                elif c == "i":
                    pass
                else:
                    raise Fail(f"sysrc: illegal option -- {c}\n{USAGE}")
        else:
            args.append(arg)
        i += 1
    if not args:
        raise Fail(USAGE)
    if jail is not None:
        if current_jail():
            raise Fail(f"jls: jail \"{jail}\" not found")
        name, rec = find_jail(jail)
        if rec is None:
            raise Fail(f'jls: jail "{jail}" not found\nsysrc: jail "{jail}" is not running')
        root = rec["path"]
    files = files or ["/etc/rc.conf"]
    targets = [os.path.join(root, f.lstrip("/")) if root else f for f in files]
    if root and not os.path.isdir(root):
        raise Fail(f"sysrc: {root}: No such file or directory")
    defaults = os.path.join(root, "etc/defaults/rc.conf") if root else "/etc/defaults/rc.conf"
    status = 0
    for arg in args:
        m = re.fullmatch(r"([^=+-]*)(\+=|-=|=)(.*)", arg, re.S)
        name = m.group(1) if m else arg
        if not NAME.fullmatch(name):
            raise Fail(f"sysrc: {name}: name contains characters not allowed in shell")
        if delete:
            if m:
                raise Fail(f"sysrc: {arg}: name contains characters not allowed in shell")
            for t in targets:
                remove_var(t, name)
            continue
        if m:
            set_var(targets[-1], targets, name, m.group(2), m.group(3), values_only, quiet)
            continue
        value = None
        for t in targets:
            value = parse_rc(t).get(name, value)
        if value is None and files == ["/etc/rc.conf"]:
            value = parse_rc(defaults).get(name) if os.path.exists(defaults) else None
        if value is None:
            if not quiet:
                print(f"sysrc: unknown variable '{name}'", file=__import__("sys").stderr)
            status = 1
            continue
        print(value if values_only else f"{name}: {value}")
    return status


def set_var(target, targets, name, op, value, values_only, quiet):
    if '"' in value or "\n" in value:
        raise Fail(f"sysrc: {name}: value contains a double quote or newline (not simulated)")
    old = None
    for t in targets:
        old = parse_rc(t).get(name, old)
    new = value
    if op == "+=":
        words = (old or "").split()
        new = " ".join(words + [w for w in value.split() if w not in words])
    elif op == "-=":
        drop = value.split()
        new = " ".join(w for w in (old or "").split() if w not in drop)
    lines = []
    if os.path.exists(target):
        with open(target) as f:
            lines = f.read().splitlines()
    pattern = re.compile(rf"^\s*{re.escape(name)}=")
    replaced = False
    for idx, line in enumerate(lines):
        if pattern.match(line):
            lines[idx] = f'{name}="{new}"'
            replaced = True
    if not replaced:
        lines.append(f'{name}="{new}"')
    if not os.path.isdir(os.path.dirname(target) or "/"):
        raise Fail(f"sysrc: {target}: No such file or directory")
    with open(target, "w") as f:
        f.write("\n".join(lines) + "\n")
    if not quiet:
        print(new if values_only else f"{name}: {old or ''} -> {new}")


def remove_var(target, name):
    if not os.path.exists(target):
        return
    with open(target) as f:
        lines = f.read().splitlines()
    pattern = re.compile(rf"^\s*{re.escape(name)}=")
    kept = [line for line in lines if not pattern.match(line)]
    if kept != lines:
        with open(target, "w") as f:
            f.write("\n".join(kept) + ("\n" if kept else ""))

"""sysctl(8) as FreeBSD 14's sbin/sysctl/sysctl.c behaves, over the few variables the lab
models (sysctltree.py: net.inet.carp.preempt and net.inet.carp.demotion of the VNET it runs
in, present while carp is loaded). Every other name is an unknown oid, as FreeBSD says of a
name it does not have.

  sysctl NAME            NAME: VALUE          (-n: VALUE; -e: NAME=VALUE; -N: NAME)
  sysctl NAME=VALUE      NAME: OLD -> NEW     (also NAME:VALUE; VALUE may be quoted)
  sysctl -f FILE         each `name=value` line of FILE (# comments, blank lines skipped)
  -q                     no message for an unknown oid;  -i  an unknown oid is no error

Errors go to stderr with FreeBSD's wording (`sysctl: unknown oid 'NAME'`, `sysctl: invalid
integer 'X'`, ` at line N` for a line of FILE) and the exit status is the number of names
that failed, as sysctl's warncount. Options FreeBSD has but the lab does not model (-a, -b,
-B, -d, -h, -o, -t, -T, -W, -x, ...) are refused with a message naming the lab.
"""
import re
import sys

from haelklab.freebsd.common import Fail, run_main
from haelklab.freebsd.sysctltree import Kernel, WriteError

USAGE = ("usage: sysctl [-bdehiNnoqTtWx] [ -B <bufsize> ] [-f filename] name[=value] ...\n"
         "       sysctl [-bdehNnoqTtWx] [ -B <bufsize> ] -a")
OPTSTRING = "AabB:def:hiNnoqtTwWxX"  # FreeBSD 14's getopt(3) string
MODELLED = set("efiNnqw")            # -w: compatibility, ignored by FreeBSD too
EX_NOINPUT = 66
BUFSIZ = 1024
SPACE = " \t\n\v\f\r"               # isspace(3) in the C locale
LONG_MIN, LONG_MAX = -2 ** 63, 2 ** 63 - 1
NUMBER = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


# ---------------------------------------------------------------- parsing ---

def parse_options(argv):
    """getopt(3) over OPTSTRING, stopping at the first operand: (flags, conffile, names)."""
    flags, conffile, i = set(), None, 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        if argv[i] == "--":
            i += 1
            break
        arg, j = argv[i], 1
        while j < len(arg):
            opt = arg[j]
            k = OPTSTRING.find(opt)
            if opt == ":" or k < 0:
                raise Fail(f"sysctl: illegal option -- {opt}\n{USAGE}")
            flags.add(opt)
            if OPTSTRING[k + 1:k + 2] == ":":
                value = arg[j + 1:]
                if not value:
                    i += 1
                    if i >= len(argv):
                        raise Fail(f"sysctl: option requires an argument -- {opt}\n{USAGE}")
                    value = argv[i]
                if opt == "f":
                    conffile = value
                break
            j += 1
        i += 1
    names = argv[i:]
    other = sorted(flags - MODELLED)
    if other:
        raise Fail(f"sysctl: haelk lab: -{other[0]} is not modelled "
                   "(the lab's sysctl has -e, -f, -i, -N, -n and -q)")
    if ("N" in flags and "n" in flags) or (not names and conffile is None):
        raise Fail(USAGE)
    return flags, conffile, names


def split_assignment(string):
    """(name, value or None) of `name[=value]` or `name[:value]`, as parse() splits it:
    blanks after the separator and one pair of quotes dropped, blanks ending the name."""
    m = re.search("[=:]", string)
    if m is None:
        return string.rstrip(SPACE), None
    name, value = string[:m.start()], string[m.end():].lstrip(SPACE)
    if value[:1] in ("'", '"'):
        if value[-1] == value[0]:
            value = value[:-1]
        value = value[1:]
    return name.rstrip(SPACE), value


def strip_comment(line):
    """A line of a sysctl -f file up to its first # (not escaped, not inside quotes)."""
    single, double, p = line.find("'"), line.find('"'), 0
    while True:
        p = line.find("#", p)
        if p < 0:
            return line
        for quote, at in (("'", single), ('"', double)):
            if at >= 0 and p > at:
                end = line.find(quote, at + 1)
                return line[:end + 1] if end >= 0 else line
        if p == 0 or line[p - 1] != "\\":
            return line[:p]
        p += 1


def conf_lines(text):
    """parsefile(): the [(line number, line)] of a sysctl.conf text that name a variable."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = strip_comment(line).strip(SPACE)
        if line:
            found.append((number, line))
    return found


def c_int(text):
    """(int)strtol(TEXT, &end, 0), or None where sysctl calls it an invalid integer
    (nothing converted, trailing characters, or out of the range of long)."""
    m = NUMBER.fullmatch(text.lstrip(SPACE))
    if m is None:
        return None
    digits = m.group(2)
    base = 16 if digits[:2] in ("0x", "0X") else 8 if digits[:1] == "0" else 10
    value = int(digits, base) * (-1 if m.group(1) == "-" else 1)
    if not LONG_MIN <= value <= LONG_MAX:
        return None  # strtol's ERANGE
    return (value + 2 ** 31) % 2 ** 32 - 2 ** 31  # the cast to int


def show(name, value, flags):
    """show_var(): what sysctl prints for one variable (without the newline)."""
    if "N" in flags:
        return name
    if "n" in flags:
        return str(value)
    return f"{name}{'=' if 'e' in flags else ': '}{value}"


# ---------------------------------------------------------------- running ---

def out(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def warn(message):
    print(f"sysctl: {message}", file=sys.stderr, flush=True)


def parse(string, lineno, flags, kernel):
    """One `name[=value]`: print or set it. Returns 1 if it failed (a warning), else 0."""
    line = f" at line {lineno}" if lineno else ""
    if len(string.encode()) >= BUFSIZ:
        warn(f"oid too long: '{string}'{line}")
        return 1
    name, value = split_assignment(string)
    if not kernel.exists(name):
        if "i" in flags:
            return 0
        if "q" not in flags:
            warn(f"unknown oid '{name}'{line}")
        return 1
    if value is None:
        out(show(name, kernel.get(name), flags) + "\n")
        return 0
    if value == "":
        warn("empty numeric value")
        return 1
    numbers = []
    for piece in re.split("[ ,]", value):  # an int variable takes the first one
        if piece:
            number = c_int(piece)
            if number is None:
                warn(f"invalid integer '{piece}'{line}")
                return 1
            numbers.append(number)
    out(show(name, kernel.get(name), flags))
    if numbers:
        try:
            kernel.set(name, numbers[0])
        except WriteError as e:
            out("\n")
            warn(f"{string}{line}: {e}")
            return 1
    out(" -> " + show(name, kernel.get(name), flags | {"n"}) + "\n")
    return 0


def parse_file(path, flags, kernel):
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except IsADirectoryError:
        text = ""  # FreeBSD opens it and reads no line
    except OSError as e:
        raise Fail(f"sysctl: {path}: {e.strerror}", EX_NOINPUT) from None
    return sum(parse(line, number, flags, kernel) for number, line in conf_lines(text))


def run(argv, kernel_of=Kernel.current):
    """sysctl ARGV against the kernel KERNEL_OF() returns; the exit status."""
    flags, conffile, names = parse_options(argv)
    kernel = kernel_of()
    warnings = parse_file(conffile, flags, kernel) if conffile is not None else 0
    return warnings + sum(parse(name, 0, flags, kernel) for name in names)


def main(argv):
    return run_main(run, argv)

"""uname, freebsd-version, kldload, kldstat: FreeBSD 14.3 on amd64."""
import platform

from haelklab.freebsd.common import Fail, EX_USAGE, run_main, locked_state, read_state

RELEASE = "14.3-RELEASE"
KNOWN_MODULES = {"carp", "if_bridge", "if_epair", "zfs", "nullfs", "linux64"}


def _hostname():
    return platform.node()


def uname_main(argv):
    return run_main(_uname, argv)


def _uname(argv):
    usage = Fail("usage: uname [-abiKmnoprsUv]", EX_USAGE)
    flags = ""
    for arg in argv:
        if not arg.startswith("-") or len(arg) < 2:
            raise usage
        for ch in arg[1:]:
            if ch not in "abiKmnoprsUv":
                raise Fail(f"uname: illegal option -- {ch}\nusage: uname [-abiKmnoprsUv]", EX_USAGE)
            flags += ch
    fields = {
        "s": "FreeBSD", "n": _hostname(), "r": RELEASE,
        "v": f"FreeBSD {RELEASE} releng/14.3-n271432-8c9ce319fef7 GENERIC",
        "m": "amd64", "p": "amd64", "i": "GENERIC", "K": "1403000", "U": "1403000",
        "b": "8c9ce319fef7",
    }
    if not flags:
        flags = "s"
    if "a" in flags:
        flags = "snrvm"
    order = "snrvmpibKU"
    print(" ".join(fields[c] for c in order if c in flags))


def freebsd_version_main(argv):
    return run_main(_freebsd_version, argv)


def _freebsd_version(argv):
    for arg in argv:
        if arg not in ("-k", "-r", "-u", "-j") and not arg.startswith("-"):
            raise Fail("usage: freebsd-version [-kru] [-j jail]", 1)
        if arg.startswith("-") and arg not in ("-k", "-r", "-u", "-j"):
            raise Fail(f"freebsd-version: illegal option -- {arg[1:]}\n"
                       "usage: freebsd-version [-kru] [-j jail]", 1)
    print(RELEASE)


def kldload_main(argv):
    return run_main(_kldload, argv)


def _kldload(argv):
    quiet = False
    names = []
    for arg in argv:
        if arg == "-q":
            quiet = True
        elif arg in ("-n", "-v"):
            pass
        elif arg.startswith("-"):
            raise Fail(f"kldload: illegal option -- {arg[1:]}\nusage: kldload [-nqv] file ...", EX_USAGE)
        else:
            names.append(arg.removesuffix(".ko"))
    if not names:
        raise Fail("usage: kldload [-nqv] file ...", EX_USAGE)
    with locked_state("kld", {"loaded": []}) as state:
        for name in names:
            if name not in KNOWN_MODULES:
                raise Fail(f"kldload: can't load {name}: No such file or directory")
            if name in state["loaded"]:
                if "-n" not in argv:
                    raise Fail(f"kldload: can't load {name}: module already loaded or in kernel")
                continue
            state["loaded"].append(name)


def kldstat_main(argv):
    return run_main(_kldstat, argv)


def _kldstat(argv):
    usage = "usage: kldstat [-dhqv] [-i id] [-n filename]\n       kldstat [-dq] [-m modname]"
    quiet, module, name = False, None, None
    it = iter(argv)
    for arg in it:
        if arg == "-q":
            quiet = True
        elif arg in ("-m", "-n"):
            value = next(it, None)
            if value is None:
                raise Fail(f"kldstat: option requires an argument -- {arg[1]}\n{usage}", EX_USAGE)
            if arg == "-m":
                module = value
            else:
                name = value.removesuffix(".ko")
        elif arg in ("-v", "-h", "-d"):
            pass
        else:
            raise Fail(usage, EX_USAGE)
    loaded = read_state("kld", {"loaded": []})["loaded"]
    wanted = module or name
    if wanted:
        if wanted not in loaded:
            if not quiet:
                what = "module" if module else "file"
                raise Fail(f"kldstat: can't find {what} {wanted}: No such file or directory")
            raise Fail("")
        if not quiet:
            print("Id Refs Address                Size Name")
            print(f"{loaded.index(wanted) + 2:2}    1 0xffffffff82a00000    1f000 {wanted}.ko")
        return 0
    print("Id Refs Address                Size Name")
    print(" 1   50 0xffffffff80200000  1f41ec0 kernel")
    for i, mod in enumerate(loaded, 2):
        print(f"{i:2}    1 0xffffffff82a00000    1f000 {mod}.ko")

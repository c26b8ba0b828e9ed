"""The sysctl stand-in's pure parts, no lab needed: options, `name=value` and sysctl.conf
parsing, strtol, and what it prints and exits with, against an in-memory kernel."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from haelklab.freebsd import sysctl  # noqa: E402
from haelklab.freebsd.common import Fail  # noqa: E402
from haelklab.freebsd.sysctltree import WriteError  # noqa: E402

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone

PREEMPT, DEMOTION = "net.inet.carp.preempt", "net.inet.carp.demotion"


class FakeKernel:
    """The two CARP variables, with FreeBSD's semantics: preempt kept, demotion added."""

    def __init__(self, loaded=True, writable=True):
        self.values = {PREEMPT: 0, DEMOTION: 0} if loaded else {}
        self.writable = writable

    def exists(self, name):
        return name in self.values

    def get(self, name):
        return self.values[name]

    def set(self, name, value):
        if not self.writable:
            raise WriteError("Operation not permitted")
        self.values[name] = value if name == PREEMPT else self.values[name] + value


def run(capsys, argv, kernel=None):
    kernel = kernel or FakeKernel()
    code = sysctl.run_main(lambda a: sysctl.run(a, kernel_of=lambda: kernel), argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_get_and_set_print_as_freebsd(capsys):
    kernel = FakeKernel()
    assert run(capsys, [PREEMPT], kernel) == (0, f"{PREEMPT}: 0\n", "")
    assert run(capsys, ["-n", PREEMPT], kernel) == (0, "0\n", "")
    assert run(capsys, [f"{PREEMPT}=1"], kernel) == (0, f"{PREEMPT}: 0 -> 1\n", "")
    assert run(capsys, ["-n", f"{PREEMPT}=5"], kernel) == (0, "1 -> 5\n", "")
    assert run(capsys, ["-e", PREEMPT], kernel) == (0, f"{PREEMPT}=5\n", "")
    assert run(capsys, ["-N", PREEMPT], kernel) == (0, f"{PREEMPT}\n", "")


def test_demotion_writes_add_to_the_counter(capsys):
    kernel = FakeKernel()
    assert run(capsys, [f"{DEMOTION}=240"], kernel)[1] == f"{DEMOTION}: 0 -> 240\n"
    assert run(capsys, [f"{DEMOTION}=-240"], kernel)[1] == f"{DEMOTION}: 240 -> 0\n"


def test_unknown_oids_fail_each_and_q_i_silence_them(capsys):
    assert run(capsys, ["kern.nosuch"]) == (1, "", "sysctl: unknown oid 'kern.nosuch'\n")
    assert run(capsys, ["-q", "kern.nosuch"]) == (1, "", "")
    assert run(capsys, ["-i", "kern.nosuch", PREEMPT]) == (0, f"{PREEMPT}: 0\n", "")
    assert run(capsys, ["a", "b=1", PREEMPT])[0] == 2  # the exit status counts them
    # Without the carp module its variables do not exist.
    assert run(capsys, [PREEMPT], FakeKernel(loaded=False)) == (
        1, "", f"sysctl: unknown oid '{PREEMPT}'\n")


@pytest.mark.parametrize("arg, message", [
    (f"{PREEMPT}=yes", "sysctl: invalid integer 'yes'"),
    (f"{PREEMPT}=1x", "sysctl: invalid integer '1x'"),
    (f"{PREEMPT}=08", "sysctl: invalid integer '08'"),
    (f"{PREEMPT}=", "sysctl: empty numeric value"),
])
def test_bad_values_are_refused_and_nothing_is_written(capsys, arg, message):
    kernel = FakeKernel()
    assert run(capsys, [arg], kernel) == (1, "", message + "\n")
    assert kernel.values[PREEMPT] == 0


def test_a_refused_write_prints_the_old_value_then_the_error(capsys):
    code, out, err = run(capsys, [f"{PREEMPT}=1"], FakeKernel(writable=False))
    assert (code, out) == (1, f"{PREEMPT}: 0\n")
    assert err == f"sysctl: {PREEMPT}=1: Operation not permitted\n"


def test_f_applies_a_file_with_line_numbers_in_its_errors(capsys, tmp_path):
    conf = tmp_path / "sysctl.conf"
    conf.write_text(f"# CARP\n\n{PREEMPT}=1  # on\nkern.nosuch=1\n  {DEMOTION} = '20'\n")
    kernel = FakeKernel()
    code, out, err = run(capsys, ["-f", str(conf)], kernel)
    assert code == 1
    assert out == f"{PREEMPT}: 0 -> 1\n{DEMOTION}: 0 -> 20\n"
    assert err == "sysctl: unknown oid 'kern.nosuch' at line 4\n"
    assert run(capsys, ["-i", f"-f{conf}"], kernel)[0] == 0
    assert kernel.values == {PREEMPT: 1, DEMOTION: 40}


def test_f_of_a_missing_file_exits_66(capsys, tmp_path):
    missing = str(tmp_path / "nope")
    assert run(capsys, ["-f", missing]) == (
        66, "", f"sysctl: {missing}: No such file or directory\n")


@pytest.mark.parametrize("argv, message", [
    ([], sysctl.USAGE),
    (["-n", "-N", PREEMPT], sysctl.USAGE),
    (["-z", PREEMPT], f"sysctl: illegal option -- z\n{sysctl.USAGE}"),
    (["-f"], f"sysctl: option requires an argument -- f\n{sysctl.USAGE}"),
    (["-a"], "sysctl: haelk lab: -a is not modelled "
             "(the lab's sysctl has -e, -f, -i, -N, -n and -q)"),
])
def test_usage_errors(argv, message):
    with pytest.raises(Fail) as e:
        sysctl.parse_options(argv)
    assert (e.value.message, e.value.code) == (message, 1)


def test_options_stop_at_the_first_name():
    assert sysctl.parse_options(["-nq", "-f", "F", PREEMPT, "-n"]) == (
        {"n", "q", "f"}, "F", [PREEMPT, "-n"])
    assert sysctl.parse_options(["--", "-x"]) == (set(), None, ["-x"])


@pytest.mark.parametrize("string, expected", [
    ("a.b", ("a.b", None)), ("a.b=1", ("a.b", "1")), ("a.b:1", ("a.b", "1")),
    ("a.b = \"1\"", ("a.b", "1")), ("a.b='1", ("a.b", "1")), ("a.b=1=2", ("a.b", "1=2")),
])
def test_name_value_split_as_sysctl_parse(string, expected):
    assert sysctl.split_assignment(string) == expected


def test_conf_lines_drop_comments_and_blanks_but_not_escaped_or_quoted_hashes():
    text = "# c\n\n  a=1 # c\nb=\\#2\nc='#3' # c\n\t\n"
    assert sysctl.conf_lines(text) == [(3, "a=1"), (4, "b=\\#2"), (5, "c='#3'")]


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("1", 1), ("-240", -240), ("+7", 7), ("0x10", 16), ("010", 8), (" 3", 3),
    ("2147483648", -2147483648), ("4294967297", 1),
    ("", None), ("0x", None), ("08", None), ("1.0", None), ("99999999999999999999", None),
])
def test_c_int_is_strtol_base_0_cast_to_int(text, value):
    assert sysctl.c_int(text) == value

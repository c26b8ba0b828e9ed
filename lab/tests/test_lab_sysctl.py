"""sysctl(8) in the lab: the per-VNET CARP variables of a VNET jail, its /etc/sysctl.conf
applied by the jail's /etc/rc before its CARP aliases start, and the refusals."""
import json
import os

from conftest import make_jail, make_vnet_jail, ssh, write
from haelklab import paths

PREEMPT, DEMOTION = "net.inet.carp.preempt", "net.inet.carp.demotion"


def carp_jail(jail_name, n, sysctl_conf=None):
    """A started VNET jail on lab1 with CARP vhid N (VIP 198.51.100.N) on vnet0, and
    SYSCTL_CONF as its /etc/sysctl.conf. Returns its name."""
    name = jail_name("lab1", "sc")
    alias = f'ifconfig_vnet0_alias0="inet vhid {n} advskew 100 pass x alias 198.51.100.{n}/32"\n'
    root = make_vnet_jail("lab1", name, n, f"198.51.100.{100 + n}", rc_extra=alias,
                          start=False, resolver=False)
    if sysctl_conf is not None:
        write("lab1", f"{root}/etc/sysctl.conf", sysctl_conf)
    ssh("lab1", f"kldload -n carp && sysrc jail_enable=YES >/dev/null && "
                f"service jail start {name}", check=True)
    return name


def speaker(name, vhid):
    """The jail's recorded speaker for VHID and the ucarp command line it runs."""
    path = paths.self_run(f"carp-{name}", "carp", f"vnet0-vhid{vhid}.json")
    record = json.loads(ssh("lab1", f"cat {path}", check=True).stdout)
    pid = record["daemon"]["pid"]
    argv = ssh("lab1", f"tr '\\0' ' ' </proc/{pid}/cmdline", check=True).stdout.split()
    return record, argv


def sysctl(name, args):
    return ssh("lab1", f"jexec {name} sysctl {args}")


def test_a_vnet_jail_starts_without_preemption_and_its_sysctls_act_on_its_speakers(jail_name):
    unknown = ssh("lab1", "sysctl kern.nosuch.oid")
    assert (unknown.returncode, unknown.stderr) == (1, "sysctl: unknown oid 'kern.nosuch.oid'\n")
    name = carp_jail(jail_name, 61)
    assert sysctl(name, PREEMPT).stdout == f"{PREEMPT}: 0\n"
    record, argv = speaker(name, 61)
    assert record["preempt"] is False and "--preempt" not in argv

    # FreeBSD adds what is written to the demotion counter.
    assert sysctl(name, f"{DEMOTION}=240").stdout == f"{DEMOTION}: 0 -> 240\n"
    argv = speaker(name, 61)[1]
    assert argv[argv.index("--advskew") + 1] == "240"  # 100 + 240, at most 240
    assert sysctl(name, f"{DEMOTION}=-240").stdout == f"{DEMOTION}: 240 -> 0\n"
    assert sysctl(name, f"-n {DEMOTION}").stdout == "0\n"

    assert sysctl(name, f"{PREEMPT}=1").stdout == f"{PREEMPT}: 0 -> 1\n"
    record, argv = speaker(name, 61)
    assert record["preempt"] is True and "--preempt" in argv
    bad = sysctl(name, f"{PREEMPT}=on")
    assert (bad.returncode, bad.stderr) == (1, "sysctl: invalid integer 'on'\n")


def test_the_jails_sysctl_conf_gives_its_carp_speakers_preemption_from_the_start(jail_name):
    name = carp_jail(jail_name, 62, sysctl_conf=f"# CARP\n{PREEMPT}=1\n")
    assert sysctl(name, f"-n {PREEMPT}").stdout == "1\n"
    record, argv = speaker(name, 62)
    assert record["preempt"] is True and "--preempt" in argv
    # Started with it by netif, not restarted later (sysctl_lastload finds it set).
    # The jail's own file at /etc/sysctl.conf (bound where Linux has one to bind over).
    conf = "/etc/sysctl.conf" if os.path.isfile("/etc/sysctl.conf") else (
        f"{paths.MNT}/lab1/{name}/etc/sysctl.conf")
    assert sysctl(name, f"-f {conf}").stdout == f"{PREEMPT}: 1 -> 1\n"
    assert speaker(name, 62)[0]["daemon"] == record["daemon"]


def test_a_jail_without_vnet_shares_the_hosts_and_may_not_write_it(jail_name):
    name = jail_name("lab1", "sc")
    make_jail("lab1", name)
    ssh("lab1", "kldload -n carp", check=True)
    assert sysctl(name, PREEMPT).stdout == ssh("lab1", f"sysctl {PREEMPT}").stdout
    refused = sysctl(name, f"{PREEMPT}=1")
    assert refused.returncode == 1
    assert refused.stderr == f"sysctl: {PREEMPT}=1: Operation not permitted\n"

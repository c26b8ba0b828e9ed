"""The lab's CARP speaker (haelklab.freebsd.carp, Debian's ucarp) between network namespaces.

Runs without the lab: each test builds its own bridge namespace and member namespaces
(haelklab.carpnet, addresses 192.0.2.200-230/24) and removes them afterwards. Member `a`
has advskew 0, `b` advskew 100; `c` runs no CARP and is the client. Waits are bounded;
failover times are printed, not asserted beyond a generous bound.
"""
import pytest

from haelklab import carpnet
from haelklab.freebsd import carp

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone


VIP = "192.0.2.210"
PORT = 8080
ADVBASE = 1
BOUND = carpnet.master_down_bound(ADVBASE)


@pytest.fixture
def net():
    """Members a, b, c; the tests that use it skip (only) when ucarp is missing."""
    if carp.ucarp_path() is None:
        pytest.skip("ucarp is not installed (apt-get install ucarp)")
    with carpnet.Net() as n:
        yield n.add_members()


def pair(net, **kwargs):
    net.pair(VIP, advbase=ADVBASE, **kwargs)


def only_holder(net, name):
    """NAME is MASTER and the only member holding the VIP; the other is BACKUP."""
    other = "b" if name == "a" else "a"
    assert net.state(name, 1) == "MASTER"
    assert net.state(other, 1) == "BACKUP"
    assert net.holds(name, VIP) and not net.holds(other, VIP)


def answers(net, count=10):
    samples = net.probe("c", VIP, PORT, count)
    return {answer for _, answer in samples}


def test_one_master_holds_the_vip_and_ifconfig_prints_it(net):
    pair(net)
    only_holder(net, "a")
    assert net.call("a", "show", "vnet0") == ("\tcarp: MASTER vhid 1 advbase 1 advskew 0\n"
                                              "\t      peer 224.0.0.18 peer6 ff02::12\n")
    assert net.call("b", "show", "vnet0").startswith(
        "\tcarp: BACKUP vhid 1 advbase 1 advskew 100\n")


def test_same_parameters_are_a_no_op_and_new_ones_restart(net):
    pair(net)
    pid = net.speaker("b", 1)["pid"]
    assert net.carp("b", 1, 100, "s3cret", VIP, advbase=ADVBASE) == "unchanged"
    assert net.speaker("b", 1)["pid"] == pid
    assert net.carp("b", 1, 50, "s3cret", VIP, advbase=ADVBASE) == "restarted"
    assert net.speaker("b", 1)["pid"] != pid
    assert net.call("b", "status", "vnet0")[0]["advskew"] == 50
    assert net.wait_state("b", 1, "BACKUP", BOUND) is not None
    only_holder(net, "a")


def test_advskew_and_preemption_changes_restart_with_the_rest_kept(net):
    pair(net)
    assert net.call("a", "update", "vnet0", 1, advskew=150) == "restarted"
    # The restart silences a, so b (advskew 100, now the preferred one) takes the VIP, and
    # a preempting a (advskew 150) does not take it back.
    assert net.wait_state("a", 1, "BACKUP", BOUND) is not None
    assert net.wait_state("b", 1, "MASTER", BOUND) is not None
    assert net.call("a", "set_preempt", True) == {"vnet0 vhid 1": "restarted"}
    assert net.call("a", "set_preempt", True) == {"vnet0 vhid 1": "unchanged"}
    entry = net.call("a", "status", "vnet0")[0]
    assert (entry["advskew"], entry["preempt"], entry["vip"]) == (150, True, VIP)
    only_holder(net, "b")


def test_the_password_is_not_on_the_command_line(net):
    pair(net)
    with open(f"/proc/{net.speaker('a', 1)['pid']}/cmdline") as f:
        assert "s3cret" not in f.read()


def test_power_cut_of_the_master_moves_the_vip_and_the_clients(net):
    pair(net)
    net.listen("a", VIP, PORT)
    net.listen("b", VIP, PORT)
    assert answers(net) == {"a"}
    net.power_cut("a", 1)
    took = net.wait_state("b", 1, "MASTER", BOUND)
    print(f"\nCARP failover after the master's power cut: {took} s (advbase {ADVBASE})")
    assert took is not None, "b never became MASTER"
    assert net.holds("b", VIP)
    assert answers(net) == {"b"}


def test_state_backup_moves_the_vip_and_it_stays_without_preemption(net):
    pair(net)
    net.listen("a", VIP, PORT)
    net.listen("b", VIP, PORT)
    assert net.call("a", "set_state", "vnet0", 1, "backup") == "BACKUP"
    assert not net.holds("a", VIP)
    took = net.wait_state("b", 1, "MASTER", BOUND)
    print(f"\nCARP failover after `state backup`: {took} s")
    assert took is not None
    # A full master-down interval later a (preferred, no preemption) has not taken it back.
    assert net.wait_state("a", 1, "MASTER", 3 * ADVBASE + 2) is None
    only_holder(net, "b")
    assert answers(net) == {"b"}


@pytest.mark.parametrize("preempt", [False, True])
def test_a_returning_preferred_member_preempts_only_with_preemption(net, preempt):
    pair(net, preempt=preempt)
    net.power_cut("a", 1)
    assert net.wait_state("b", 1, "MASTER", BOUND) is not None
    net.power_on("a")
    assert net.carp("a", 1, 0, "s3cret", VIP, advbase=ADVBASE, preempt=preempt) == "started"
    if preempt:
        assert net.wait_state("a", 1, "MASTER", BOUND) is not None
        assert net.wait_state("b", 1, "BACKUP", BOUND) is not None
        only_holder(net, "a")
    else:
        assert net.wait_state("a", 1, "MASTER", 3 * ADVBASE + 2) is None
        only_holder(net, "b")


def test_demotion_moves_the_vip_and_undoing_it_with_preemption_brings_it_back(net):
    pair(net, preempt=True)
    net.listen("a", VIP, PORT)
    net.listen("b", VIP, PORT)
    probe = net.probe("c", VIP, PORT, 40, background=True)
    assert net.call("a", "demote", 200) == 200
    assert net.wait_state("b", 1, "MASTER", BOUND) is not None
    failed, longest = carpnet.gap(carpnet.finish_probe(probe, 40, 0.1, 0.5))
    print(f"\nCARP handover on demotion: {failed} failed connections, longest gap {longest} s")
    # b took over on a's demoted advertisement (ucarp's preemption of a slower master),
    # not once a fell silent.
    assert "Putting MASTER down - preemption" in net.log("b", 1)
    assert net.wait_state("a", 1, "BACKUP", BOUND) is not None
    only_holder(net, "b")
    # ifconfig still prints the configured advskew; the counter is separate (as on FreeBSD).
    assert net.call("a", "status", "vnet0")[0]["advskew"] == 0
    assert net.call("a", "demote", -200) == 0
    assert net.wait_state("a", 1, "MASTER", BOUND) is not None
    assert net.wait_state("b", 1, "BACKUP", BOUND) is not None
    only_holder(net, "a")


@pytest.mark.parametrize("mismatch", ["password", "vhid"])
def test_members_that_do_not_match_both_become_master(net, mismatch):
    if mismatch == "password":
        pair(net, password_b="other")
        b_vhid = 1
    else:
        pair(net, vhid_b=2)
        b_vhid = 2
    assert net.wait_state("b", b_vhid, "MASTER", BOUND) is not None
    assert net.state("a", 1) == "MASTER"
    assert net.holds("a", VIP) and net.holds("b", VIP)


def test_stop_all_stops_the_speaker_and_drops_the_vip(net):
    pair(net)
    ref = net.speaker("a", 1)
    net.call("a", "stop_all")
    assert not carp.procs.alive(ref)
    assert not net.holds("a", VIP)
    assert net.call("a", "status", "vnet0") == []
    assert net.wait_state("b", 1, "MASTER", BOUND) is not None


@pytest.mark.parametrize("args, message", [
    ((0, 0, "p", VIP), "ifconfig: vhid must be greater than 0 and less than 255"),
    ((1, 255, "p", VIP), "ifconfig: SIOCSVH: Invalid argument"),
    ((1, 0, "p", "192.0.2.300"), "ifconfig: 192.0.2.300: bad value"),
])
def test_bad_parameters_are_refused_as_by_ifconfig(net, args, message):
    with pytest.raises(carpnet.CarpError) as e:
        net.carp("a", *args)
    assert str(e.value) == message


def test_an_interface_without_address_or_absent_is_refused(net):
    with pytest.raises(carpnet.CarpError) as e:
        net.call("a", "configure", "nosuch0", 1, 0, "p", VIP)
    assert str(e.value) == "ifconfig: interface nosuch0 does not exist"
    carpnet.sh(["ip", "-n", net.members["a"]["ns"], "link", "add", "x0", "type", "veth",
                "peer", "name", "x1"])
    with pytest.raises(carpnet.CarpError) as e:
        net.call("a", "configure", "x0", 1, 0, "p", VIP)
    assert str(e.value) == "ifconfig: ioctl (SIOCAIFADDR): Can't assign requested address"


def test_state_master_cannot_be_forced_and_unknown_vhids_are_refused(net):
    pair(net)
    assert net.call("a", "set_state", "vnet0", 1, "master") == "MASTER"
    with pytest.raises(carpnet.CarpError, match="cannot be forced to MASTER"):
        net.call("b", "set_state", "vnet0", 1, "master")
    with pytest.raises(carpnet.CarpError, match="no CARP vhid 7 running on vnet0"):
        net.call("a", "set_state", "vnet0", 7, "backup")


@pytest.mark.parametrize("advskew, demoted, advertised", [
    (0, 0, 0), (0, 200, 200), (100, 200, 240), (250, 10, 250), (100, -200, 0)])
def test_demotion_is_added_to_advskew_within_freebsds_bounds(advskew, demoted, advertised):
    assert carp.effective_skew(advskew, demoted) == advertised


def test_an_rc_conf_carp_alias_line_gives_configures_parameters():
    words = "inet vhid 1 advskew 100 pass s3cret alias 192.0.2.10/32".split()
    assert carp.parse_alias(words) == {"vip": "192.0.2.10", "vhid": 1, "advskew": 100,
                                       "advbase": 1, "password": "s3cret"}
    words = "inet 192.0.2.20/32 vhid 2 advbase 2 pass p".split()
    assert carp.parse_alias(words)["advbase"] == 2
    assert carp.parse_alias("inet 192.0.2.201/24".split()) is None


@pytest.mark.parametrize("line, message", [
    ("inet advskew 100 vhid 1 alias 192.0.2.10/32", "ifconfig: advskew requires vhid"),
    ("inet pass p vhid 1 alias 192.0.2.10/32", "ifconfig: passwd requires vhid"),
    ("inet vhid 1 pass", "ifconfig: 'pass' requires argument"),
    ("inet vhid 1 pass p alias",
     "ifconfig: haelk lab: a CARP alias needs its address (inet ... alias VIP/32)"),
])
def test_carp_alias_lines_ifconfig_rejects_are_rejected(line, message):
    with pytest.raises(carp.Fail) as e:
        carp.parse_alias(line.split())
    assert e.value.message == message


def test_without_preemption_a_demoted_master_hands_over_only_once_silent(net):
    pair(net)
    assert net.call("a", "demote", 240) == 240
    assert net.wait_state("b", 1, "MASTER", BOUND) is not None
    # b heard a's demoted advertisement and, not preempting, ignored it (the lab's
    # difference: a's restarted speaker then falls silent, so b takes over anyway).
    assert "Putting MASTER down - preemption" not in net.log("b", 1)
    only_holder(net, "b")

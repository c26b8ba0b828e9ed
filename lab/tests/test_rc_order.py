"""rc.py's pure parts, no lab needed: rcorder(8) over the ports' rc script headers,
and how a jail's exec.start / exec.stop command line is run."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from haelklab.freebsd import pkg, rc  # noqa: E402

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone


def port_scripts(tmp_path, names):
    for name in names:
        path = tmp_path / name
        path.write_text(pkg.rc_script(name))
        path.chmod(0o755)
    return rc.local_scripts(str(tmp_path))


def names(order):
    return [s.name for s in order]


def test_the_ports_headers_order_elasticsearch_kibana_haproxy_after_the_network(tmp_path):
    # Directory order is alphabetical (haproxy first): only REQUIRE/BEFORE reorder.
    port_scripts(tmp_path, ["haproxy", "kibana", "elasticsearch"])
    scripts = rc.all_scripts(str(tmp_path))
    order = names(rc.rcorder(scripts, skip=rc.skip_keywords(vnet=True)))
    assert order.index("netif") < order.index("routing") < order.index("NETWORKING")
    # elasticsearch: REQUIRE NETWORKING SERVERS, BEFORE DAEMON
    assert order.index("SERVERS") < order.index("elasticsearch") < order.index("DAEMON")
    # kibana: REQUIRE DAEMON, BEFORE LOGIN; haproxy: REQUIRE DAEMON LOGIN
    assert order.index("DAEMON") < order.index("kibana") < order.index("LOGIN") < order.index("haproxy")


def test_sysctl_runs_before_netif_and_sysctl_lastload_after_login_in_any_jail(tmp_path):
    scripts = rc.all_scripts(str(tmp_path))
    for vnet in (True, False):
        order = names(rc.rcorder(scripts, skip=rc.skip_keywords(vnet=vnet)))
        assert order.index("sysctl") < order.index("LOGIN") < order.index("sysctl_lastload")
    order = names(rc.rcorder(scripts, skip=rc.skip_keywords(vnet=True)))
    assert order.index("sysctl") < order.index("netif")  # CARP aliases see its preempt


def test_a_jail_without_vnet_skips_the_network_scripts(tmp_path):
    scripts = [rc.Script(*e) for e in rc.BASE_SCRIPTS] + port_scripts(tmp_path, ["haproxy"])
    order = names(rc.rcorder(scripts, skip=rc.skip_keywords(vnet=False)))
    assert "netif" not in order and "routing" not in order and "haproxy" in order


def test_shutdown_keeps_only_the_shutdown_keyword_in_start_order(tmp_path):
    scripts = [rc.Script(*e) for e in rc.BASE_SCRIPTS] + port_scripts(
        tmp_path, ["haproxy", "kibana", "elasticsearch"])
    order = names(rc.rcorder(scripts, keep=["shutdown"], skip=rc.skip_keywords(vnet=True)))
    assert order == ["elasticsearch", "local", "kibana", "haproxy"]  # run reversed


def test_rc_local_runs_after_the_daemons_and_before_login(tmp_path):
    order = names(rc.rcorder(rc.all_scripts(str(tmp_path)), skip=rc.skip_keywords(vnet=True)))
    assert order.index("DAEMON") < order.index("local") < order.index("LOGIN")


def test_require_and_before_between_local_scripts_and_missing_providers(tmp_path):
    def script(name, header):
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + "".join(f"# {h}\n" for h in header))
        path.chmod(0o755)
    script("a", ["PROVIDE: a", "REQUIRE: c"])
    script("b", ["PROVIDE: b", "BEFORE: a"])
    script("c", ["PROVIDE: c", "REQUIRE: nothere"])
    script("d.sample", ["PROVIDE: d"])
    (tmp_path / "d.sample").chmod(0o644)  # not executable: not an rc script
    warnings = []
    order = names(rc.rcorder(rc.local_scripts(str(tmp_path)), warn=warnings.append))
    assert order == ["b", "c", "a"] or order == ["c", "b", "a"]
    assert order.index("b") < order.index("a") and order.index("c") < order.index("a")
    assert warnings == [f"requirement `nothere' in file `{tmp_path}/c' has no providers."]


def test_a_cycle_is_warned_about_and_every_script_still_runs(tmp_path):
    scripts = [rc.Script("x", ["x"], ["y"], [], []), rc.Script("y", ["y"], ["x"], [], [])]
    warnings = []
    order = names(rc.rcorder(scripts, warn=warnings.append))
    assert sorted(order) == ["x", "y"] and "Circular dependency" in warnings[0]


def test_exec_start_and_stop_run_the_lab_rc_stand_ins():
    assert rc.jail_command("/bin/sh /etc/rc", "/lab/bin") == "/lab/bin/rc"
    assert rc.jail_command("sh /etc/rc.shutdown", "/lab/bin") == "/lab/bin/rc.shutdown"
    assert rc.jail_command("/bin/sh /etc/rc.local", "/lab/bin") == "/bin/sh /etc/rc.local"
    assert rc.jail_command("echo hello", "/lab/bin") == "echo hello"


def test_the_kibana_package_lays_out_what_the_port_ships():
    dirs = dict(pkg.CATALOGUE["kibana8"][3])
    assert dirs["usr/local/www/kibana8/data"] == "www"
    assert not any(d.startswith("var/") for d in dirs)  # no /var/db/kibana, no /var/run/kibana
    es_dirs = dict(pkg.CATALOGUE["elasticsearch8"][3])
    assert es_dirs["usr/local/etc/elasticsearch"] == "elasticsearch"
    assert not any(d.startswith("var/") for d in es_dirs)  # made by the rc script's precmd
    assert "PROVIDE: kibana" in pkg.CATALOGUE["kibana8"][4]["usr/local/etc/rc.d/kibana"][2]

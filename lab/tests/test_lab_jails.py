"""Jails: jail.conf parsed strictly, jls/jexec, jexec sees the jail's own files."""
import json

import time

import pytest

from conftest import ensure_bridge, jail_root, make_jail, paths, ssh, write


def test_start_a_jail_list_it_and_jexec_sees_its_files(jail_name):
    name = jail_name("lab1")
    root = make_jail("lab1", name)
    write("lab1", f"{root}/usr/local/etc/only-in-jail.conf", "jailed\n")
    jls = ssh("lab1", "jls -N; jls -h name path; jls --libxo json", check=True).stdout
    assert name in jls and f"{name} {root}" in jls
    doc = json.loads(jls.splitlines()[-1])
    assert any(j["path"] == root for j in doc["jail-information"]["jail"])
    out = ssh("lab1", f"jexec {name} cat /usr/local/etc/only-in-jail.conf; "
                      f"jexec -l {name} hostname; ls /usr/local/etc", check=True).stdout.split()
    assert out[:2] == ["jailed", name]
    assert "only-in-jail.conf" not in out[2:]


def test_jexec_writes_land_in_the_jail_dataset(jail_name):
    name = jail_name("lab1")
    root = make_jail("lab1", name)
    ssh("lab1", f"jexec {name} sh -c 'echo x > /var/db/f; echo y > /var/log/f; echo z > /tmp/f'",
        check=True)
    out = ssh("lab1", f"cat {root}/var/db/f {root}/var/log/f {root}/tmp/f", check=True).stdout
    assert out.split() == ["x", "y", "z"]


def test_jexec_refuses_a_stopped_jail(jail_name):
    name = jail_name("lab1")
    make_jail("lab1", name, start=False)
    result = ssh("lab1", f"jexec {name} true")
    assert result.returncode == 1 and f'jail "{name}" not found' in result.stderr


def test_jail_stop_removes_it_from_jls(jail_name):
    name = jail_name("lab1")
    make_jail("lab1", name)
    ssh("lab1", f"service jail stop {name}", check=True)
    assert name not in ssh("lab1", "jls -N", check=True).stdout


def start_fails(name, expect, host="lab1"):
    result = ssh(host, f"sysrc jail_enable=YES >/dev/null; service jail start {name}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert expect in result.stdout + result.stderr, result.stdout + result.stderr
    assert name not in ssh(host, "jls -N").stdout


PATH_LINE = 'path = "/var/tmp/haelk-lab/mnt/HOST/$name";\n'


@pytest.mark.parametrize("conf_body, expect", [
    pytest.param('path = "/var/tmp/haelk-lab/mnt/HOST/$name"\n  mount.devfs;\n', "syntax error",
                 id="missing-semicolon"),
    pytest.param(PATH_LINE + "  allow.mlocks;\n", "unknown parameter: allow.mlocks",
                 id="unknown-parameter"),
    pytest.param('host.hostname = "$name";\n', "path: not specified", id="missing-path"),
    pytest.param('path = "/nonexistent/$name";\n', "No such file or directory",
                 id="path-must-exist"),
    pytest.param(PATH_LINE + '  vnet;\n  vnet.interface = "epair9b";\n'
                 '  exec.prestart = "ifconfig epair9a create";\n', "SIOCIFCREATE2",
                 id="wrong-epair-command-in-prestart"),
])
def test_a_bad_jail_conf_fails_the_start(jail_name, conf_body, expect):
    name = jail_name("lab1")
    make_jail("lab1", name, start=False, conf_body=conf_body)
    start_fails(name, expect)


def test_unbalanced_braces_are_a_syntax_error(jail_name):
    name = jail_name("lab1")
    make_jail("lab1", name, start=False)
    ssh("lab1", f"sed -i 's/^}}$//' /etc/jail.conf.d/{name}.conf", check=True)
    start_fails(name, "syntax error")


def test_block_name_must_match_the_jail(jail_name):
    name = jail_name("lab1")
    make_jail("lab1", name, start=False)
    ssh("lab1", f"sed -i 's/^{name} {{/other {{/' /etc/jail.conf.d/{name}.conf", check=True)
    start_fails(name, f'"{name}" not found')


def test_vnet_jail_with_epair_and_carp(jail_name):
    name = jail_name("lab1")
    ensure_bridge("lab1")
    root = make_jail("lab1", name, start=False, conf_body=(
        'path = "/var/tmp/haelk-lab/mnt/HOST/$name";\n  vnet;\n  vnet.interface = "epair7b";\n'
        '  exec.prestart = "ifconfig epair7 create up";\n'
        '  exec.prestart += "ifconfig bridge0 addm epair7a up";\n'
        '  exec.poststop = "ifconfig epair7a destroy";\n'
        '  exec.start = "/bin/sh /etc/rc";\n'))
    write("lab1", f"{root}/etc/rc.conf",
          'ifconfig_epair7b_name="vnet0"\nifconfig_vnet0="inet 198.51.100.177/24"\n'
          'ifconfig_vnet0_alias0="inet vhid 7 advskew 100 pass x alias 198.51.100.77/32"\n')
    ssh("lab1", f"kldload -n carp; sysrc jail_enable=YES; service jail start {name}", check=True)
    out = ssh("lab1", f"jexec {name} ifconfig vnet0", check=True).stdout
    assert "inet 198.51.100.177 netmask 0xffffff00" in out
    assert "inet 198.51.100.77 netmask 0xffffffff vhid 7" in out and "carp: " in out
    # Alone on the network, it becomes master (ucarp) after three missed adverts.
    deadline = time.monotonic() + 10
    while "carp: MASTER vhid 7" not in out and time.monotonic() < deadline:
        time.sleep(0.25)
        out = ssh("lab1", f"jexec {name} ifconfig vnet0").stdout
    assert "carp: MASTER vhid 7 advbase 1 advskew 100" in out
    ssh("lab1", f"jexec {name} ifconfig vnet0 vhid 7 state backup", check=True)
    assert "carp: BACKUP vhid 7" in ssh("lab1", f"jexec {name} ifconfig vnet0").stdout
    assert "member: epair7a" in ssh("lab1", "ifconfig bridge0").stdout
    assert "epair7b" not in ssh("lab1", "ifconfig -l").stdout  # it is in the jail
    ssh("lab1", f"service jail stop {name}", check=True)
    assert "epair7" not in ssh("lab1", "ifconfig -l").stdout


def test_service_jail_start_needs_jail_enable(jail_name):
    name = jail_name("lab3")
    make_jail("lab3", name, start=False)
    ssh("lab3", "sysrc jail_enable=NO", check=True)
    # Like rc.subr: the reason on stdout, exit 0, and no jail started.
    result = ssh("lab3", f"service jail start {name}")
    assert result.returncode == 0
    assert "Set jail_enable to YES" in result.stdout
    assert name not in ssh("lab3", "jls -N").stdout


def test_service_jail_start_without_name_honours_jail_list(jail_name):
    first, second = jail_name("lab3"), jail_name("lab3")
    make_jail("lab3", first, start=False)
    make_jail("lab3", second, start=False)
    ssh("lab3", f"sysrc jail_enable=YES jail_list={first}", check=True)
    try:
        ssh("lab3", "service jail start", check=True)
        names = ssh("lab3", "jls -N").stdout
        assert first in names and second not in names
    finally:
        ssh("lab3", "sysrc -x jail_list")


def test_jail_stop_spares_another_jail_whose_namespace_reuses_a_recorded_id(jail_name, tmp_path):
    """The kernel reuses a dead namespace's id: a jail's record may list an id that
    now names another jail's namespace. Stopping the first must spare the second."""
    import fcntl
    import os
    import tempfile

    first, second = jail_name("lab1"), jail_name("lab1")
    make_jail("lab1", first)
    make_jail("lab1", second)
    start = "jexec {} sh -c 'setsid sleep 3004 >/dev/null 2>&1 </dev/null & echo $!'"
    own = int(ssh("lab1", start.format(first), check=True).stdout)
    other = int(ssh("lab1", start.format(second), check=True).stdout)
    run = f"{paths.STATE}/hosts/lab1/run"
    with open(f"{run}/.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(f"{run}/jails.json") as f:
            state = json.load(f)
        state["jails"][first]["namespaces"].append(os.readlink(f"/proc/{other}/ns/mnt"))
        with open(f"{run}/jails.json", "w") as f:
            json.dump(state, f, indent=1)
    # This checkout's `jail` (the lab's installed one may be another checkout's).
    bindir = tempfile.mkdtemp(dir="/var/tmp")
    try:
        os.symlink(f"{paths.LABDIR}/haelklab/freebsd/dispatch.py", f"{bindir}/jail")
        ssh("lab1", f"{bindir}/jail -r {first}", check=True)
    finally:
        os.unlink(f"{bindir}/jail")
        os.rmdir(bindir)
    assert not os.path.exists(f"/proc/{own}"), "the stopped jail's process is gone"
    assert os.path.exists(f"/proc/{other}"), "the other jail's process still runs"
    ssh("lab1", f"kill {other}")

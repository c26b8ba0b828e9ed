"""Each stand-in rejects what the FreeBSD tool rejects."""
import subprocess

from conftest import make_jail, paths, ssh, write


def test_sysrc_reads_writes_and_deletes():
    out = ssh("lab2", "sysrc -f /boot/loader.conf carp_load=YES; sysrc -f /boot/loader.conf -n carp_load; "
                      "sysrc -f /boot/loader.conf -x carp_load; sysrc -f /boot/loader.conf carp_load",
              ).stdout.splitlines()
    assert out == ["carp_load:  -> YES", "YES"]


def test_sysrc_rejects_bad_syntax():
    result = ssh("lab2", "sysrc 'bad-name=1'")
    assert result.returncode == 1 and "not allowed" in result.stderr
    result = ssh("lab2", "sysrc -Q x")
    assert result.returncode == 1 and "illegal option" in result.stderr


def test_sysrc_unknown_variable_fails():
    result = ssh("lab2", "sysrc no_such_variable")
    assert result.returncode == 1 and "unknown variable" in result.stderr


def test_pkg_rejects_unknown_packages(jail_name):
    name = jail_name("lab2")
    make_jail("lab2", name)
    result = ssh("lab2", f"pkg -j {name} install -y elasticsearch9")
    assert result.returncode == 1
    assert "No packages available to install matching 'elasticsearch9'" in result.stderr


def test_pkg_j_refuses_a_stopped_jail(jail_name):
    name = jail_name("lab2")
    root = make_jail("lab2", name, start=False)
    result = ssh("lab2", f"pkg -j {name} install -y haproxy")
    assert result.returncode == 1 and f'pkg: jail "{name}" not found' in result.stderr
    both = ssh("lab2", f"pkg -r {root} -j {name} info")
    assert both.returncode == 64 and "cannot be used at the same time" in both.stderr
    assert ssh("lab2", f"pkg -r {root} install -y haproxy").returncode == 0
    assert ssh("lab2", f"pkg -r {root} info -e haproxy").returncode == 0


def test_pkg_delete_needs_yes_when_not_interactive(jail_name):
    name = jail_name("lab2")
    make_jail("lab2", name)
    ssh("lab2", f"pkg -j {name} install -y jq", check=True)
    result = ssh("lab2", f"pkg -j {name} delete jq </dev/null")
    assert result.returncode == 1 and "Proceed with deinstalling packages?" in result.stdout
    assert ssh("lab2", f"pkg -j {name} info -e jq").returncode == 0
    ssh("lab2", f"pkg -j {name} delete -y jq", check=True)
    assert ssh("lab2", f"pkg -j {name} info -e jq").returncode == 1


def test_pkg_install_lays_out_what_the_ports_ship(jail_name):
    name = jail_name("lab2")
    root = make_jail("lab2", name)
    ssh("lab2", f"pkg -j {name} install -y elasticsearch8 kibana8", check=True)
    out = ssh("lab2", f"pkg -j {name} query '%n %v'; "
                      f"stat -c '%u:%g %a %n' {root}/usr/local/etc/elasticsearch "
                      f"{root}/usr/local/etc/elasticsearch/users {root}/usr/local/www/kibana8/data "
                      f"{root}/usr/local/etc/rc.d/kibana; "
                      f"ls {root}/usr/local/etc/elasticsearch", check=True).stdout
    assert "elasticsearch8 8.17.4" in out and "kibana8 8.17.4" in out
    assert "openjdk17 " in out and "node20 " in out
    # textproc/elasticsearch8: @dir(elasticsearch,elasticsearch,0755) ETCDIR, users 0640
    # (uid/gid 965: ports/UIDS; www is 80)
    assert f"965:965 755 {root}/usr/local/etc/elasticsearch\n" in out
    assert f"965:965 640 {root}/usr/local/etc/elasticsearch/users\n" in out
    # textproc/kibana8: @dir(www,www) WWWDIR/data
    assert f"80:80 755 {root}/usr/local/www/kibana8/data\n" in out
    assert f"0:0 755 {root}/usr/local/etc/rc.d/kibana\n" in out
    assert "elasticsearch.yml" in out and "jvm.options" in out
    # Nothing the ports' plists do not list: those are the rc scripts' start_precmd's.
    for absent in ("var/db/kibana", "var/run/kibana", "var/db/elasticsearch",
                   "var/log/elasticsearch", "var/run/elasticsearch"):
        assert ssh("lab2", f"test -e {root}/{absent}").returncode == 1, absent
    assert ssh("lab2", f"pkg -j {name} info -e haproxy").returncode == 1


def test_service_refuses_to_start_without_enable(jail_name):
    name = jail_name("lab2")
    make_jail("lab2", name)
    ssh("lab2", f"pkg -j {name} install -y haproxy", check=True)
    # Like rc.subr: the reason on stdout, exit 0, and nothing started.
    result = ssh("lab2", f"service -j {name} haproxy start")
    assert result.returncode == 0
    assert ("Cannot 'start' haproxy. Set haproxy_enable to YES in /etc/rc.conf or use "
            "'onestart' instead of 'start'.") in result.stdout
    status = ssh("lab2", f"service -j {name} haproxy status")
    assert status.returncode == 1 and "haproxy is not running." in status.stdout


def test_service_of_an_uninstalled_package_does_not_exist(jail_name):
    name = jail_name("lab2")
    make_jail("lab2", name)
    result = ssh("lab2", f"service -j {name} kibana start")
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_service_j_refuses_a_stopped_jail(jail_name):
    name = jail_name("lab2")
    make_jail("lab2", name, start=False)
    result = ssh("lab2", f"service -j {name} haproxy status")
    assert result.returncode == 1 and "not found" in result.stderr


def test_ifconfig_rejects_forms_it_does_not_know():
    result = ssh("lab2", "ifconfig em0 frobnicate")
    assert result.returncode == 1 and "bad value" in result.stderr
    result = ssh("lab2", "ifconfig nosuch0 up")
    assert result.returncode == 1 and "does not exist" in result.stderr
    result = ssh("lab2", "ifconfig epair3a create")
    assert result.returncode == 1 and "SIOCIFCREATE2" in result.stderr


def test_ifconfig_epair_create_and_destroy():
    out = ssh("lab2", "ifconfig epair42 create; ifconfig epair42a descr hello up; ifconfig epair42a; "
                      "ifconfig epair42a destroy; ifconfig -l", check=True).stdout
    assert out.startswith("epair42a\n") and "description: hello" in out
    assert "epair42" not in out.splitlines()[-1]


def test_kldstat_reports_carp_by_exit_status():
    # Other tests load carp where their jails need it: start from a host just booted.
    booted = subprocess.run([f"{paths.LABDIR}/labctl", "reboot", "lab4"], capture_output=True,
                            text=True, timeout=120)
    assert booted.returncode == 0, booted.stderr
    assert ssh("lab4", "kldstat -q -m carp").returncode == 1
    ssh("lab4", "kldload carp", check=True)
    assert ssh("lab4", "kldstat -q -m carp").returncode == 0
    assert ssh("lab4", "kldload carp").returncode == 1
    assert ssh("lab4", "kldload nosuchmod").returncode == 1


def test_kibana_start_returns_at_once_and_a_refusal_shows_only_in_its_log(jail_name):
    import time
    name = jail_name("lab2")
    root = make_jail("lab2", name)
    ssh("lab2", f"pkg -j {name} install -y kibana8 && sysrc -j {name} kibana_enable=YES", check=True)
    # The port makes no /var/db/kibana, and www cannot create it under root's /var/db.
    write("lab2", f"{root}/usr/local/etc/kibana/kibana.yml",
          "server.host: 127.0.25.9\npath.data: /var/db/kibana\n")
    result = ssh("lab2", f"service -j {name} kibana start")
    assert result.returncode == 0 and "Starting kibana." in result.stdout  # daemon(8)
    for _ in range(40):
        if ssh("lab2", f"service -j {name} kibana status").returncode == 1:
            break
        time.sleep(0.25)
    else:
        raise AssertionError("kibana kept running without its path.data")
    log = ssh("lab2", f"cat {root}/var/log/kibana.log", check=True).stdout
    assert "EACCES: permission denied, mkdir '/var/db/kibana'" in log
    # Its data directory as the port ships it works.
    write("lab2", f"{root}/usr/local/etc/kibana/kibana.yml",
          "server.host: 127.0.25.9\npath.data: /usr/local/www/kibana8/data\n")
    ssh("lab2", f"service -j {name} kibana start", check=True)
    try:
        time.sleep(1)
        assert ssh("lab2", f"service -j {name} kibana status").returncode == 0
        assert ssh("lab2", f"test -s {root}/usr/local/www/kibana8/data/uuid").returncode == 0
    finally:
        ssh("lab2", f"service -j {name} kibana stop")

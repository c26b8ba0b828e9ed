"""The hosts: real sshd, strict host keys, stand-ins first on PATH, isolated files."""
import subprocess

from conftest import HOSTS, SSH, paths, ssh


def test_strict_host_key_checking_accepts_pinned_keys():
    for host in HOSTS:
        assert ssh(host, "true").returncode == 0


def test_an_unpinned_host_key_is_refused(tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = subprocess.run(
        ["ssh", "-i", paths.CLIENT_KEY, "-o", f"UserKnownHostsFile={empty}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"root@{HOSTS['lab1']}", "true"],
        capture_output=True, text=True)
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


def test_password_login_is_refused():
    result = subprocess.run(
        ["ssh", "-o", f"UserKnownHostsFile={paths.KNOWN_HOSTS}", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", f"root@{HOSTS['lab1']}", "true"],
        capture_output=True, text=True)
    assert result.returncode == 255


def test_standins_come_first_on_a_non_interactive_path():
    out = ssh("lab1", "echo $PATH; command -v uname service; uname -s; hostname", check=True).stdout
    lines = out.split()
    assert lines[0].startswith(paths.BIN + ":")
    assert lines[1] == f"{paths.BIN}/uname" and lines[2] == f"{paths.BIN}/service"
    assert lines[3:] == ["FreeBSD", "lab1"]


def test_multiplexed_connections_work(tmp_path):
    sock = str(tmp_path / "mux")
    base = SSH + ["-S", sock]
    subprocess.run(base + ["-M", "-fN", f"root@{HOSTS['lab2']}"], check=True, timeout=30)
    try:
        out = subprocess.run(base + [f"root@{HOSTS['lab2']}", "hostname"], capture_output=True,
                             text=True, check=True).stdout
        assert out.strip() == "lab2"
        check = subprocess.run(base + ["-O", "check", f"root@{HOSTS['lab2']}"], capture_output=True, text=True)
        assert check.returncode == 0
    finally:
        subprocess.run(base + ["-O", "exit", f"root@{HOSTS['lab2']}"], capture_output=True)


def test_hosts_cannot_see_each_others_files():
    ssh("lab1", "echo 'lab_marker=\"one\"' >> /etc/rc.conf; echo one > /usr/local/etc/marker; "
                "echo one > /etc/jail.conf.d/marker.conf; echo one >> /boot/loader.conf", check=True)
    try:
        out = ssh("lab2", "grep -c lab_marker /etc/rc.conf; ls /usr/local/etc /etc/jail.conf.d; "
                          "grep -c one /boot/loader.conf").stdout
        assert "marker" not in out
        assert out.split()[0] == "0"
        assert ssh("lab1", "sysrc -n lab_marker", check=True).stdout.strip() == "one"
    finally:
        ssh("lab1", "sysrc -x lab_marker; rm -f /usr/local/etc/marker /etc/jail.conf.d/marker.conf; "
                    # In place: /boot/loader.conf is a bind mount, sed -i's rename is EBUSY.
                    "grep -v '^one$' /boot/loader.conf > /tmp/loader.conf.$$; "
                    "cat /tmp/loader.conf.$$ > /boot/loader.conf; rm -f /tmp/loader.conf.$$")


def test_uname_and_freebsd_version_answer_like_freebsd():
    out = ssh("lab3", "uname -r; uname -s; uname -m; freebsd-version", check=True).stdout.split()
    assert out == ["14.3-RELEASE", "FreeBSD", "amd64", "14.3-RELEASE"]
    bad = ssh("lab3", "uname -Z")
    assert bad.returncode == 64 and "usage: uname" in bad.stderr

"""Jails have FreeBSD's user database: the base's, plus what a port's pkg adds."""
import os
import tarfile
import tempfile

from conftest import make_jail, paths, ssh, write
from haelklab import basetar
from haelklab.freebsd import userdb


def test_the_base_tarball_has_freebsds_users_and_groups():
    with tarfile.open(paths.BASE_TXZ) as tar:
        members = {m.name: m for m in tar.getmembers()}
        text = {n: tar.extractfile(f"./etc/{n}").read().decode()
                for n in ("passwd", "master.passwd", "group")}
    assert members["./etc/master.passwd"].mode == 0o600
    assert "root:*:0:0:Charlie &:/root:/bin/sh" in text["passwd"].splitlines()
    assert "www:*:80:80:World Wide Web Owner:/nonexistent:/usr/sbin/nologin" in text["passwd"]
    assert "nobody:*:65534:65534::0:0:Unprivileged user:/nonexistent:/usr/sbin/nologin" \
        in text["master.passwd"]
    assert {"wheel:*:0:root", "www:*:80:", "nobody:*:65534:"} <= set(text["group"].splitlines())
    assert "elasticsearch" not in text["passwd"]  # the port adds it, not the base


def test_a_stale_cached_base_tarball_is_rebuilt():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "media", "base.txz")
        os.makedirs(os.path.dirname(path))
        with tarfile.open(path, "w:xz"):
            pass  # an empty tarball from an older lab, without a content marker
        basetar.ensure(path)
        with tarfile.open(path) as tar:
            assert "./etc/passwd" in tar.getnames()
        before = os.stat(path).st_mtime_ns
        basetar.ensure(path)
        assert os.stat(path).st_mtime_ns == before  # current: left alone


def test_pkg_adds_the_elasticsearch_user_to_the_jail_only(jail_name):
    name = jail_name("lab2")
    root = make_jail("lab2", name)
    out = ssh("lab2", f"pkg -j {name} install -y elasticsearch8", check=True).stdout
    assert "Creating group 'elasticsearch' with gid '965'." in out
    assert "Creating user 'elasticsearch' with uid '965'." in out
    files = ssh("lab2", f"cat {root}/etc/passwd; echo --; cat {root}/etc/master.passwd; echo --; "
                        f"cat {root}/etc/group; echo --; stat -c %a {root}/etc/master.passwd",
                check=True).stdout.split("--\n")
    assert "elasticsearch:*:965:965:Elasticsearch user:/nonexistent:/usr/sbin/nologin" \
        in files[0].splitlines()
    assert "elasticsearch:*:965:965::0:0:Elasticsearch user:/nonexistent:/usr/sbin/nologin" \
        in files[1].splitlines()
    assert "elasticsearch:*:965:" in files[2].splitlines()
    assert files[3].strip() == "600"
    # The jail's awk view (what haelk reads) agrees, and jexec -u finds the user there.
    uid = ssh("lab2", f"awk -F: '$1==\"elasticsearch\"{{print $3}}' {root}/etc/passwd").stdout
    assert uid.strip() == "965"
    assert ssh("lab2", f"jexec -u elasticsearch {name} id -u", check=True).stdout.strip() == "965"


def test_pkg_resolves_owners_in_the_jails_passwd(jail_name):
    """A user the jail already has is kept, and the port's directories get ITS ids."""
    name = jail_name("lab2")
    root = make_jail("lab2", name)
    ssh("lab2", f"echo 'elasticsearch:*:4321:4321:pre-made:/nonexistent:/usr/sbin/nologin' "
                f">> {root}/etc/passwd && echo 'elasticsearch:*:4321:' >> {root}/etc/group",
        check=True)
    out = ssh("lab2", f"pkg -j {name} install -y elasticsearch8", check=True).stdout
    assert "Using existing user 'elasticsearch'." in out
    assert "Using existing group 'elasticsearch'." in out
    # The port's @dir(elasticsearch,...) ETCDIR and its 0640 users file.
    owner = ssh("lab2", f"stat -c '%u:%g' {root}/usr/local/etc/elasticsearch "
                        f"{root}/usr/local/etc/elasticsearch/users", check=True).stdout.split()
    assert owner == ["4321:4321", "4321:4321"]


def test_pkg_fails_like_pw_without_a_user_database(jail_name):
    name = jail_name("lab2")
    root = make_jail("lab2", name)
    ssh("lab2", f"rm {root}/etc/passwd {root}/etc/master.passwd {root}/etc/group", check=True)
    result = ssh("lab2", f"pkg -j {name} install -y elasticsearch8")
    assert result.returncode == 1
    assert "PRE-INSTALL script failed" in result.stderr
    assert ssh("lab2", f"pkg -j {name} info -e elasticsearch8").returncode == 1
    assert ssh("lab2", f"test -e {root}/var/db/elasticsearch").returncode == 1
    # kibana8 needs www, a base user: without the base's passwd its owner is unknown.
    result = ssh("lab2", f"pkg -j {name} install -y kibana8")
    assert result.returncode == 1 and "etc/passwd" in result.stderr


def test_service_runs_as_the_jails_user(jail_name):
    name = jail_name("lab2")
    root = make_jail("lab2", name)
    ssh("lab2", f"pkg -j {name} install -y kibana8 && sysrc -j {name} kibana_enable=YES", check=True)
    write("lab2", f"{root}/usr/local/etc/kibana/kibana.yml", "server.host: 127.0.20.9\n")
    ssh("lab2", f"sed -i '/^www:/d' {root}/etc/passwd", check=True)
    result = ssh("lab2", f"service -j {name} kibana start")
    assert result.returncode == 1 and "su: unknown login: www" in result.stderr
    assert ssh("lab2", f"service -j {name} kibana status").returncode == 1


def test_userdb_refuses_a_taken_uid():
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "etc"))
        for name, text in (("passwd", userdb.BASE_PASSWD), ("master.passwd", userdb.BASE_MASTER_PASSWD),
                           ("group", userdb.BASE_GROUP)):
            with open(os.path.join(root, "etc", name), "w") as f:
                f.write(text)
        try:
            userdb.useradd(root, "web2", 80, 80, "x", "/", "/usr/sbin/nologin")
            raise AssertionError("uid 80 (www) accepted twice")
        except userdb.UserDbError as e:
            assert "uid `80' has already been allocated" in str(e)
        assert userdb.user(root, "www") == (80, 80, "/nonexistent")
        assert userdb.member_gids(root, "root") == [0, 5]

"""The jail.conf parser on its own (pure; no lab needed)."""
import pytest

from haelklab.freebsd import jailconf

pytestmark = pytest.mark.standalone  # needs no lab: lab/run-selftests --standalone

GOOD = '''# comment
$base = "/jails";   // user variable
* { mount.devfs; }
web {
  path = "$base/$name";
  host.hostname = '$name';
  exec.prestart = "ifconfig epair1 create";
  exec.prestart += "ifconfig bridge0 addm epair1a up";
  allow.mlock; allow.nomount; nopersist;
  enforce_statfs = 1;
}
'''


def resolved(text, name="web"):
    params = jailconf.parse(text, "f.conf").params_for(name)
    jailconf.check(name, params, lambda path: True)
    return params


def test_parses_variables_quotes_appends_and_wildcards():
    params = resolved(GOOD)
    assert params["path"] == ["/jails/web"]
    assert params["host.hostname"] == ["$name"]  # single quotes do not expand
    assert params["exec.prestart"] == ["ifconfig epair1 create", "ifconfig bridge0 addm epair1a up"]
    assert "mount.devfs" in params and "allow.nomount" in params


@pytest.mark.parametrize("text, message", [
    ('web { path = "/x" }', "syntax error"),
    ('web { path = "/x";', "missing }"),
    ('web { path = "/x"; } }', "syntax error"),
    ('web { path = ; }', "syntax error"),
    ('web { path = "/x"; allow.fly; }', "unknown parameter: allow.fly"),
    ('web { path = "/x"; colour = red; }', "unknown parameter: colour"),
    ('web { path = "/x"; zfs.datasets = "z/j"; }', "unknown parameter: zfs.datasets"),
    ('web { path = "/x"; linux.osrel = "5.15"; }', "unknown parameter: linux.osrel"),
    ('web { path = "$nowhere/x"; }', 'unknown variable "nowhere"'),
    ('other { path = "/x"; }', '"web" not found'),
    ('web { host.hostname = web; }', "path: not specified"),
    ('web { path = "/x"; vnet.interface = e0b; }', "requires vnet"),
    ('web { path = "/x"; ip4.addr = "lo0|300.1.1.1/24"; }', "not an IPv4 address"),
    ('web { path = "/x"; enforce_statfs = 3; }', "enforce_statfs"),
])
def test_rejects_what_jail_rejects(text, message):
    with pytest.raises(jailconf.ConfError, match=message.replace("|", r"\|").replace("$", r"\$")):
        resolved(text)


def test_path_must_exist():
    params = jailconf.parse('web { path = "/x"; }', "f").params_for("web")
    with pytest.raises(jailconf.ConfError, match="No such file or directory"):
        jailconf.check("web", params, lambda path: False)

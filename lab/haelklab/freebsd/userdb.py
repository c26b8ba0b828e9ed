"""A jail's own user database: ROOT/etc/passwd, ROOT/etc/master.passwd, ROOT/etc/group.

On FreeBSD, names inside a jail resolve through the jail's files, not the host's;
the stand-ins (pkg's directory owners, `service` users, `jexec -u`) do the same
here. The base users are FreeBSD 14's own lines (src/etc/master.passwd and
src/etc/group, with root's shell /bin/sh as in 14.0 and later); ports' users
are those of ports/UIDs and ports/GIDs, added the way a package's pre-install
script adds them with pw(8).
"""
import os

# FreeBSD 14's src/etc/master.passwd (pwd_mkdb derives etc/passwd from it).
BASE_MASTER_PASSWD = """\
#
root::0:0::0:0:Charlie &:/root:/bin/sh
toor:*:0:0::0:0:Bourne-again Superuser:/root:
daemon:*:1:1::0:0:Owner of many system processes:/root:/usr/sbin/nologin
operator:*:2:5::0:0:System &:/:/usr/sbin/nologin
bin:*:3:7::0:0:Binaries Commands and Source:/:/usr/sbin/nologin
tty:*:4:65533::0:0:Tty Sandbox:/:/usr/sbin/nologin
kmem:*:5:65533::0:0:KMem Sandbox:/:/usr/sbin/nologin
games:*:7:13::0:0:Games pseudo-user:/:/usr/sbin/nologin
news:*:8:8::0:0:News Subsystem:/:/usr/sbin/nologin
man:*:9:9::0:0:Mister Man Pages:/usr/share/man:/usr/sbin/nologin
sshd:*:22:22::0:0:Secure Shell Daemon:/var/empty:/usr/sbin/nologin
smmsp:*:25:25::0:0:Sendmail Submission User:/var/spool/clientmqueue:/usr/sbin/nologin
mailnull:*:26:26::0:0:Sendmail Default User:/var/spool/mqueue:/usr/sbin/nologin
bind:*:53:53::0:0:Bind Sandbox:/:/usr/sbin/nologin
unbound:*:59:59::0:0:Unbound DNS Resolver:/var/unbound:/usr/sbin/nologin
proxy:*:62:62::0:0:Packet Filter pseudo-user:/nonexistent:/usr/sbin/nologin
_pflogd:*:64:64::0:0:pflogd privsep user:/var/empty:/usr/sbin/nologin
_dhcp:*:65:65::0:0:dhcp programs:/var/empty:/usr/sbin/nologin
uucp:*:66:66::0:0:UUCP pseudo-user:/var/spool/uucppublic:/usr/local/libexec/uucp/uucico
pop:*:68:6::0:0:Post Office Owner:/nonexistent:/usr/sbin/nologin
auditdistd:*:78:77::0:0:Auditdistd unprivileged user:/var/empty:/usr/sbin/nologin
www:*:80:80::0:0:World Wide Web Owner:/nonexistent:/usr/sbin/nologin
ntpd:*:123:123::0:0:NTP Daemon:/var/db/ntp:/usr/sbin/nologin
_ypldap:*:160:160::0:0:YP LDAP unprivileged user:/var/empty:/usr/sbin/nologin
hast:*:845:845::0:0:HAST unprivileged user:/var/empty:/usr/sbin/nologin
tests:*:977:977::0:0:Unprivileged user for tests:/nonexistent:/usr/sbin/nologin
nobody:*:65534:65534::0:0:Unprivileged user:/nonexistent:/usr/sbin/nologin
"""

# FreeBSD 14's src/etc/group.
BASE_GROUP = """\
#
wheel:*:0:root
daemon:*:1:
kmem:*:2:
sys:*:3:
tty:*:4:
operator:*:5:root
mail:*:6:
bin:*:7:
news:*:8:
man:*:9:
games:*:13:
ftp:*:14:
staff:*:20:
sshd:*:22:
smmsp:*:25:
mailnull:*:26:
guest:*:31:
video:*:44:
realtime:*:47:
idletime:*:48:
bind:*:53:
unbound:*:59:
proxy:*:62:
authpf:*:63:
_pflogd:*:64:
_dhcp:*:65:
uucp:*:66:
dialer:*:68:
network:*:69:
audit:*:77:
www:*:80:
ntpd:*:123:
_ypldap:*:160:
hast:*:845:
tests:*:977:
nogroup:*:65533:
nobody:*:65534:
"""


def passwd_from_master(master):
    """etc/passwd as pwd_mkdb -p writes it: the class, change and expire fields
    dropped and the password hidden."""
    lines = []
    for line in master.splitlines():
        if not line or line.startswith("#"):
            lines.append(line)
            continue
        f = line.split(":")
        lines.append(":".join([f[0], "*", f[2], f[3], f[7], f[8], f[9]]))
    return "\n".join(lines) + "\n"


BASE_PASSWD = passwd_from_master(BASE_MASTER_PASSWD)


class UserDbError(Exception):
    """A lookup or change the jail's user database refuses (message as pw(8) says it)."""


def _entries(root, rel):
    path = os.path.join(root, rel)
    try:
        with open(path) as f:
            return [line.split(":") for line in f.read().splitlines()
                    if line and not line.startswith("#")]
    except FileNotFoundError:
        raise UserDbError(f"pw: {'/' + rel}: No such file or directory") from None


def user(root, name):
    """(uid, gid, home) of NAME in ROOT/etc/passwd, or None."""
    for f in _entries(root, "etc/passwd"):
        if len(f) >= 7 and f[0] == name:
            return int(f[2]), int(f[3]), f[5]
    return None


def group(root, name):
    """The gid of group NAME in ROOT/etc/group, or None."""
    for f in _entries(root, "etc/group"):
        if len(f) >= 3 and f[0] == name:
            return int(f[2])
    return None


def member_gids(root, name):
    """Supplementary gids of NAME (the groups listing it as a member)."""
    return [int(f[2]) for f in _entries(root, "etc/group")
            if len(f) >= 4 and name in f[3].split(",")]


def _append(root, rel, line, mode):
    path = os.path.join(root, rel)
    with open(path, "a") as f:
        f.write(line + "\n")
    os.chmod(path, mode)


def groupadd(root, name, gid):
    """pw groupadd NAME -g GID: refuses a taken gid as pw does."""
    if any(len(f) >= 3 and f[2] == str(gid) for f in _entries(root, "etc/group")):
        raise UserDbError(f"pw: gid `{gid}' has already been allocated")
    _append(root, "etc/group", f"{name}:*:{gid}:", 0o644)


def useradd(root, name, uid, gid, gecos, home, shell):
    """pw useradd: one line in master.passwd and its pwd_mkdb twin in passwd."""
    master = _entries(root, "etc/master.passwd")
    if any(len(f) >= 3 and f[2] == str(uid) for f in master):
        raise UserDbError(f"pw: uid `{uid}' has already been allocated")
    _entries(root, "etc/passwd")
    _append(root, "etc/master.passwd", f"{name}:*:{uid}:{gid}::0:0:{gecos}:{home}:{shell}", 0o600)
    _append(root, "etc/passwd", f"{name}:*:{uid}:{gid}:{gecos}:{home}:{shell}", 0o644)

"""Fixed locations of the lab: the state directory and what lives in it.

The state directory is fixed because inventories/lab.yaml names files in it.
"""
import os

STATE = "/var/tmp/haelk-lab"
LABDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(LABDIR)

SSH_DIR = os.path.join(STATE, "ssh")
CLIENT_KEY = os.path.join(SSH_DIR, "id_ed25519")
KNOWN_HOSTS = os.path.join(SSH_DIR, "known_hosts")
MEDIA = os.path.join(STATE, "media")
BASE_TXZ = os.path.join(MEDIA, "14.3-RELEASE-base.txz")
POOLS = os.path.join(STATE, "pools")
MNT = os.path.join(STATE, "mnt")
HOSTS = os.path.join(STATE, "hosts")
BIN = os.path.join(STATE, "bin")
RECORD = os.path.join(STATE, "lab.json")

# Inside a host's mount namespace the host's own directory is bound here, so a
# stand-in always finds its host's state whatever the environment says.
SELF = os.path.join(STATE, "self")

# Where the stand-ins keep per-host simulated kernel state (jails, interfaces,
# kernel modules, PIDs of services they started).
def self_run(*parts):
    return os.path.join(SELF, "run", *parts)

SESSION_PATH = BIN + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PYTHON = "/usr/bin/python3"

# FreeBSD paths bound, per host, over the Linux root (host name -> host dir/...).
# (FreeBSD path, name of the per-host source under HOSTS/NAME/root, kind)
HOST_BINDS = [
    ("/etc/jail.conf.d", "etc/jail.conf.d", "dir"),
    ("/etc/rc.conf", "etc/rc.conf", "file"),
    ("/boot/loader.conf", "boot/loader.conf", "file"),
    ("/usr/local/etc", "usr/local/etc", "dir"),
    ("/usr/local/jails", "usr/local/jails", "dir"),
    ("/var/db", "var/db", "dir"),
    ("/run/sshd", "run/sshd", "dir"),
    # The host's own resolver configuration (empty: no nameserver), never Linux's,
    # whose servers are not on the lab network.
    ("/etc/resolv.conf", "etc/resolv.conf", "file"),
]

# Users the FreeBSD ports create, with FreeBSD's uids (name, uid, home).
PORT_USERS = [("elasticsearch", 965, "/nonexistent"), ("www", 80, "/nonexistent")]

"""The kernel side of the sysctl stand-in: the sysctl variables the lab models, per VNET.

Only two exist, and only while the carp module is loaded (kldload carp), as carp(4)'s
per-VNET variables do on FreeBSD:

  net.inet.carp.preempt   int; kept as written, preemption on when nonzero
                          (carp.preempt / carp.set_preempt: the speakers restart)
  net.inet.carp.demotion  int; a write ADDS the value to the counter, as FreeBSD's
                          carp_demote_adj_sysctl does (carp.demotion / carp.demote)

The VNET is the namespace the command runs in: a VNET jail's own (its carp state dir),
else the host's. A jail without VNET shares the host's and may not write it: FreeBSD
checks PRIV_SYSCTL_WRITEJAIL only for a jail that owns its VNET, so the write fails
with EPERM.
"""
from haelklab.freebsd import carp
from haelklab.freebsd.common import Fail, current_jail, find_jail, read_state
from haelklab.freebsd.ifconfig import carp_state_dir

OIDS = {
    "net.inet.carp.preempt": (carp.preempt, carp.set_preempt),
    "net.inet.carp.demotion": (carp.demotion, carp.demote),
}


class WriteError(Exception):
    """A write the kernel refused; the message is what warn(3) appends (strerror)."""


class Kernel:
    """The modelled sysctl variables of one VNET (STATE_DIR is its carp state dir)."""

    def __init__(self, state_dir, carp_loaded, writable):
        self.state_dir, self.carp_loaded, self.writable = state_dir, carp_loaded, writable

    @classmethod
    def current(cls):
        """The VNET this process runs in, as the running lab host records it."""
        loaded = "carp" in read_state("kld", {"loaded": []})["loaded"]
        jail = current_jail()
        if jail is not None:
            _, rec = find_jail(jail)
            if not (rec and rec.get("vnet")):
                return cls(carp_state_dir(host=True), loaded, writable=False)
        return cls(carp_state_dir(), loaded, writable=True)

    def exists(self, name):
        return self.carp_loaded and name in OIDS

    def get(self, name):
        return OIDS[name][0](self.state_dir)

    def set(self, name, value):
        if not self.writable:
            raise WriteError("Operation not permitted")
        try:
            OIDS[name][1](self.state_dir, value)
        except Fail as e:
            raise WriteError(f"haelk lab: {e.message}") from None

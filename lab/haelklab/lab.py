"""Bring the lab up and down: zfs-fuse, one pool and one sshd per inventory host.

Everything the lab starts or changes outside its state directory is written to
the record (paths.RECORD) first, so `down` undoes exactly that and nothing else.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import yaml

from haelklab import paths, basetar, net, sessions
from haelklab.procs import (alive, kill_all, mount_ns, pids_in_namespaces, pids_of_host, proc_ref,
                            stop_namespaces, stop_pids)

ZFS_FUSE = "/usr/sbin/zfs-fuse"
POOL_SIZE = 1 << 30


class LabError(Exception):
    """A failure the operator can act on; printed without a traceback."""


def run(cmd, check=True, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({result.returncode}): "
                       f"{result.stderr.strip() or result.stdout.strip()}")
    return result


# ---------------------------------------------------------------- record ---

def boot_id():
    """This boot's id: a record made under another one is a dead lab's."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def load_record():
    try:
        with open(paths.RECORD) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"hosts": {}, "users": [], "scaffold": [], "namespaces": []}


def save_record(record):
    tmp = paths.RECORD + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, paths.RECORD)


# ------------------------------------------------------------- processes ---

def pids_named(comm):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == comm:
                        found.append(int(entry))
            except OSError:
                pass
    return found


# ------------------------------------------------------------- inventory ---

def read_hosts(inventory):
    """(name, address, pool) for each host; the pool is the dataset's first component."""
    with open(inventory) as f:
        doc = yaml.safe_load(f)
    default_ds = ((doc.get("defaults") or {}).get("zfs") or {}).get("dataset")
    hosts = []
    for name, host in (doc.get("hosts") or {}).items():
        dataset = ((host or {}).get("zfs") or {}).get("dataset") or default_ds
        if not dataset:
            raise LabError(f"{inventory}: host {name} has no zfs.dataset")
        hosts.append((name, host["address"], dataset.split("/")[0]))
    return hosts


# -------------------------------------------------------------------- up ---

def ensure_propagation(record):
    if "root_propagation" not in record:
        prop = run(["findmnt", "-n", "-o", "PROPAGATION", "/"]).stdout.strip()
        record["root_propagation"] = prop
        save_record(record)
    if run(["findmnt", "-n", "-o", "PROPAGATION", "/"]).stdout.strip() != "shared":
        run(["mount", "--make-rshared", "/"])


def ensure_scaffold(record):
    """Create the mountpoints the host binds need (Linux has no /etc/rc.conf ...)."""
    for target, _rel, kind in paths.HOST_BINDS:
        if os.path.lexists(target):
            continue
        record["scaffold"].append(target)
        save_record(record)
        if kind == "dir":
            os.makedirs(target)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()


def ensure_users(record):
    for name, uid, home in paths.PORT_USERS:
        if run(["getent", "passwd", name], check=False).returncode == 0:
            continue
        if run(["getent", "group", str(uid)], check=False).returncode == 0 or \
                run(["getent", "passwd", str(uid)], check=False).returncode == 0:
            raise LabError(f"uid/gid {uid} for the lab user {name} is taken on this machine")
        record["users"].append(name)
        save_record(record)
        run(["groupadd", "-g", str(uid), name])
        run(["useradd", "-u", str(uid), "-g", str(uid), "-M", "-d", home,
             "-s", "/usr/sbin/nologin", name])
    # FreeBSD's root group is `wheel` (gid 0); host files haelk writes are
    # root:wheel, and Debian calls gid 0 `root`. A second name for gid 0.
    if run(["getent", "group", "wheel"], check=False).returncode != 0:
        record.setdefault("groups", []).append("wheel")
        save_record(record)
        run(["groupadd", "-o", "-g", "0", "wheel"])


def ensure_zfs_fuse(record):
    if alive(record.get("zfs_fuse")):
        return
    others = pids_named("zfs-fuse")
    if others:
        raise LabError(f"a zfs-fuse the lab did not start is running (PID {others}); "
                       "stop it first (the lab needs its own)")
    log = open(os.path.join(paths.STATE, "zfs-fuse.log"), "ab")
    proc = subprocess.Popen([ZFS_FUSE, "--no-daemon", "--no-kstat-mount",
                             "-p", os.path.join(paths.STATE, "zfs-fuse.pid")],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    record["zfs_fuse"] = proc_ref(proc.pid)
    save_record(record)
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise LabError(f"zfs-fuse exited with {proc.returncode}; see {log.name}")
        if run(["zpool", "list"], check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise LabError("zfs-fuse did not answer within 20 s")


def pool_imported(pool):
    return run(["zpool", "list", "-H", pool], check=False).returncode == 0


def ensure_pool(record, host, pool):
    if pool_imported(pool):
        return
    os.makedirs(paths.POOLS, exist_ok=True)
    image = os.path.join(paths.POOLS, f"{pool}.img")
    record["hosts"][host]["pool"] = pool
    save_record(record)
    if os.path.exists(image):
        imported = run(["zpool", "import", "-d", paths.POOLS, "-o", "cachefile=none", pool],
                       check=False)
        # A pool can be imported although the import fails: zpool then could not
        # mount one of its datasets. Its image is in use and must stay.
        if imported.returncode == 0 or pool_imported(pool):
            return
        # Only an image no pool can be imported from (a pool destroyed by an
        # interrupted `down`) is replaced; any other failure keeps the image.
        importable = run(["zpool", "import", "-d", paths.POOLS], check=False)
        if importable.returncode != 0 or f"pool: {pool}\n" in importable.stdout:
            raise LabError(f"zpool import {pool} from {image} failed: "
                           f"{imported.stderr.strip()} (zfs-fuse log: "
                           f"{os.path.join(paths.STATE, 'zfs-fuse.log')})")
        os.unlink(image)
    with open(image, "wb") as f:
        f.truncate(POOL_SIZE)
    run(["zpool", "create", "-o", "cachefile=none", "-m", "none", pool, image])


def ensure_ssh_keys():
    os.makedirs(paths.SSH_DIR, mode=0o700, exist_ok=True)
    if not os.path.exists(paths.CLIENT_KEY):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "haelk-lab",
             "-f", paths.CLIENT_KEY])
    with open(paths.CLIENT_KEY + ".pub") as f:
        pub = f.read()
    with open(os.path.join(paths.SSH_DIR, "authorized_keys"), "w") as f:
        f.write(pub)


def host_dir(host):
    return os.path.join(paths.HOSTS, host)


def prepare_host_dir(host, address):
    hdir = host_dir(host)
    for _target, rel, kind in paths.HOST_BINDS:
        src = os.path.join(hdir, "root", rel)
        if kind == "dir":
            os.makedirs(src, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(src), exist_ok=True)
            if not os.path.exists(src):
                open(src, "w").close()
    # A (re)started host has just "booted": no jails, interfaces or modules yet.
    shutil.rmtree(os.path.join(hdir, "run"), ignore_errors=True)
    os.makedirs(os.path.join(hdir, "run"))
    with open(os.path.join(hdir, "hostname"), "w") as f:
        f.write(host + "\n")
    key = os.path.join(hdir, "ssh_host_ed25519_key")
    if not os.path.exists(key):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host, "-f", key])
    config = os.path.join(hdir, "sshd_config")
    with open(config, "w") as f:
        f.write(SSHD_CONFIG.format(address=address, key=key, ssh=paths.SSH_DIR,
                                   path=paths.SESSION_PATH, host=host, state=paths.STATE))
    return config


SSHD_CONFIG = """\
# sshd of the simulated FreeBSD host {host} (written by lab/labctl up)
ListenAddress {address}:22
HostKey {key}
PidFile none
AuthorizedKeysFile {ssh}/authorized_keys
# authorized_keys lives under /var/tmp (mode 1777), which StrictModes refuses.
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
AllowTcpForwarding yes
MaxSessions 64
MaxStartups 64:30:128
SetEnv PATH={path} HAELK_LAB_HOST={host}
Subsystem sftp internal-sftp
LogLevel ERROR
"""


def ensure_sshd(record, host, address):
    entry = record["hosts"][host]
    if alive(entry.get("sshd")):
        return
    try:
        net.fresh_host(record, save_record, host, address)
    except net.NetError as e:
        raise LabError(str(e)) from None
    config = prepare_host_dir(host, address)
    run(["/usr/sbin/sshd", "-t", "-f", config])
    log = open(os.path.join(host_dir(host), "sshd.stdio.log"), "ab")
    proc = subprocess.Popen(
        ["nsenter", f"--net={net.netns_path(host)}", "unshare", "-m", "-u", "--propagation", "slave", paths.PYTHON,
         os.path.join(paths.LABDIR, "haelklab", "hostinit.py"), host_dir(host), config],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    entry["sshd"] = proc_ref(proc.pid)
    save_record(record)
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            raise LabError(f"sshd for {host} exited with {proc.returncode}; "
                           f"see {host_dir(host)}/sshd.log")
        ns = mount_ns(proc.pid)
        if ns and ns != mount_ns(os.getpid()) and ns not in record["namespaces"]:
            record["namespaces"].append(ns)
            save_record(record)
        if listening(address):
            entry["sshd"] = proc_ref(proc.pid)  # start time of the exec'd sshd is unchanged
            save_record(record)
            boot(host, entry)
            return
        time.sleep(0.1)
    raise LabError(f"sshd for {host} did not listen on {address}:22 within 10 s")


def in_host(entry, *argv, timeout=300):
    """Run ARGV inside the host's namespaces (mount, UTS, network of its sshd)."""
    return run(["nsenter", "-t", str(entry["sshd"]["pid"]), "-m", "-u", "-n",
                "env", f"PATH={paths.SESSION_PATH}", *argv], check=False, timeout=timeout)


def boot(host, entry):
    """The host's rc after a (re)start: rc.conf network, then its jails (hostboot.py)."""
    result = in_host(entry, paths.PYTHON,
                     os.path.join(paths.LABDIR, "haelklab", "freebsd", "hostboot.py"), "boot")
    with open(os.path.join(host_dir(host), "boot.log"), "a") as f:
        f.write(result.stdout + result.stderr)
    if result.returncode != 0:
        print(f"labctl: {host}: boot: {(result.stderr or result.stdout).strip()}",
              file=sys.stderr)


def reboot(host):
    """`labctl reboot HOST`: every jail stopped as `service jail stop` would, every
    process of the host stopped, then the host boots again: a fresh network
    namespace (cloned interfaces gone, em0 with its address), sshd, rc.conf's network
    and jails. ZFS and files stay."""
    record = load_record()
    entry = host_entry(record, host)
    if alive(entry.get("sshd")):
        result = in_host(entry, paths.PYTHON,
                         os.path.join(paths.LABDIR, "haelklab", "freebsd", "hostboot.py"),
                         "shutdown")
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode != 0:
            raise LabError(f"{host}: the shutdown could not stop every jail (above)")
    # The jails' processes went with `jail -r`, which finds them by their root. The
    # namespace ids recorded in the host's run/namespaces are not used here: the kernel
    # reuses an id once its namespace is gone, so an old entry may name another host's
    # jail now. What is left is the host's own: its sshd's and holder's namespaces.
    namespaces = set()
    for ref in (entry.get("sshd"), entry.get("holder")):
        if alive(ref):
            namespaces.add(mount_ns(ref["pid"]))
    namespaces.discard(mount_ns(os.getpid()))
    namespaces.discard(None)
    stop_namespaces(namespaces)
    for ref in (entry.get("sshd"), entry.get("holder")):
        if alive(ref):
            stop_pids([ref["pid"]])
    entry.pop("holder", None)
    save_record(record)
    ensure_sshd(record, host, entry["address"])
    print(f"{host}: rebooted")


def power_off(host):
    """`labctl power-off HOST`: a power cut. The cable goes dead first, so nothing the
    dying host would still send (a CARP advertisement, a TCP reset) reaches anyone;
    then every process of the host and of its jails is SIGKILLed: no rc.shutdown, no
    `jail -r`, no clean stop of anything. Files and ZFS keep what was written.
    `labctl power-on HOST` boots it."""
    record = load_record()
    entry = host_entry(record, host)
    if not alive(entry.get("sshd")) and not alive(entry.get("holder")):
        raise LabError(f"{host} is not running")
    try:
        net.set_cable(host, False)
    except net.NetError as e:
        raise LabError(str(e)) from None
    if not kill_all(lambda: pids_of_host(host_dir(host))):
        raise LabError(f"{host}: processes survive SIGKILL: {pids_of_host(host_dir(host))}")
    entry.pop("holder", None)
    save_record(record)
    print(f"{host}: power cut (cable dead, every process of the host and its jails killed)")


def power_on(host):
    """`labctl power-on HOST`: the host boots as after `reboot`, from what is on disk -
    a fresh network namespace with its cable in, sshd, rc.conf's network, its jails."""
    record = load_record()
    entry = host_entry(record, host)
    if alive(entry.get("sshd")) or alive(entry.get("holder")):
        raise LabError(f"{host} is running (labctl power-off {host} first)")
    ensure_sshd(record, host, entry["address"])
    print(f"{host}: powered on")


def set_cable(host, plugged):
    """`labctl unplug HOST` / `labctl plug HOST`: the host's cable out of the switch
    or back in; the host and its jails keep running (a partition, not a crash)."""
    host_entry(load_record(), host)
    try:
        net.set_cable(host, plugged)
    except net.NetError as e:
        raise LabError(str(e)) from None
    print(f"{host}: cable {'plugged in' if plugged else 'pulled out'}")


def write_known_hosts(hosts):
    lines = []
    for host, address, _pool in hosts:
        with open(os.path.join(host_dir(host), "ssh_host_ed25519_key.pub")) as f:
            keytype, key = f.read().split()[:2]
        lines.append(f"{address} {keytype} {key}\n")
    with open(paths.KNOWN_HOSTS, "w") as f:
        f.writelines(lines)


def install_standins():
    os.makedirs(paths.BIN, exist_ok=True)
    dispatcher = os.path.join(paths.LABDIR, "haelklab", "freebsd", "dispatch.py")
    from haelklab.freebsd.dispatch import COMMANDS
    for name in COMMANDS:
        link = os.path.join(paths.BIN, name)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(dispatcher, link)


def up(inventory):
    if os.geteuid() != 0:
        raise LabError("the lab needs root (mounts, zfs-fuse, users)")
    hosts = read_hosts(inventory)
    stale = load_record()
    if stale.get("hosts") and stale.get("boot_id") != boot_id():
        # A lab that was up when the machine went down: its processes, mounts and
        # network went with that boot, and its pools were never exported. Undo what
        # outlived it (users, files, state) and start afresh.
        print("labctl up: clearing the lab left by an earlier boot", file=sys.stderr)
        down()
    os.makedirs(paths.STATE, exist_ok=True)
    os.makedirs(paths.SELF, exist_ok=True)
    os.makedirs(paths.MNT, exist_ok=True)
    record = load_record()
    record["boot_id"] = boot_id()
    record["inventory"] = os.path.abspath(inventory)
    save_record(record)
    ensure_propagation(record)
    ensure_scaffold(record)
    ensure_users(record)
    ensure_ssh_keys()
    install_standins()
    basetar.ensure(paths.BASE_TXZ)
    ensure_zfs_fuse(record)
    try:
        net.ensure_switch(record, save_record)
    except net.NetError as e:
        raise LabError(str(e)) from None
    for host, address, pool in hosts:
        record["hosts"].setdefault(host, {"address": address})
        record["hosts"][host]["address"] = address
        save_record(record)
        ensure_pool(record, host, pool)
        ensure_sshd(record, host, address)
    write_known_hosts(hosts)
    print(f"lab up: {len(hosts)} hosts ({', '.join(h for h, _, _ in hosts)}); "
          f"ssh -i {paths.CLIENT_KEY} -o UserKnownHostsFile={paths.KNOWN_HOSTS} root@ADDRESS")


# ------------------------------------------------------------------ down ---

def listening(address):
    return run(["timeout", "2", "bash", "-c", f"exec 3<>/dev/tcp/{address}/22"],
               check=False).returncode == 0


def host_entry(record, host):
    entry = record.get("hosts", {}).get(host)
    if not entry:
        raise LabError(f"no lab host {host} (hosts: {', '.join(record.get('hosts', {}))})")
    return entry


def stop_sshd(host):
    """Stop HOST's sshd listener, as `service sshd stop` would: the host keeps
    running - its mount namespace, jails, jailed services and open sessions stay.
    A sleeping holder process (recorded as `holder`) keeps the namespace alive so
    start_sshd can start the listener again in it. `labctl up` would instead start
    a fresh namespace: a reboot."""
    record = load_record()
    entry = host_entry(record, host)
    if not alive(entry.get("sshd")):
        raise LabError(f"the sshd of {host} is not running")
    pid = entry["sshd"]["pid"]
    namespace = mount_ns(pid)
    if not alive(entry.get("holder")):
        holder = subprocess.Popen(
            ["nsenter", "-t", str(pid), "-m", "-u", "-n", "sleep", "infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.time() + 5
        while mount_ns(holder.pid) != namespace:
            if holder.poll() is not None or time.time() > deadline:
                raise LabError(f"cannot keep the namespace of {host} (nsenter exited {holder.returncode})")
            time.sleep(0.02)
        entry["holder"] = proc_ref(holder.pid)
        save_record(record)
    if not stop_pids([pid]):
        raise LabError(f"the sshd of {host} (pid {pid}) does not stop")
    deadline = time.time() + 5
    while listening(entry["address"]):
        if time.time() > deadline:
            raise LabError(f"something still listens on {entry['address']}:22")
        time.sleep(0.05)
    print(f"{host}: sshd stopped; the host's jails and sessions keep running")


def start_sshd(host):
    """Start HOST's sshd listener again in the host's own namespace (see stop_sshd)."""
    record = load_record()
    entry = host_entry(record, host)
    if alive(entry.get("sshd")):
        raise LabError(f"the sshd of {host} already runs")
    holder = entry.get("holder")
    if not alive(holder):
        raise LabError(f"{host} has no stopped sshd to resume (labctl up restarts the host)")
    hdir = host_dir(host)
    config = os.path.join(hdir, "sshd_config")
    log = open(os.path.join(hdir, "sshd.stdio.log"), "ab")
    proc = subprocess.Popen(
        ["nsenter", "-t", str(holder["pid"]), "-m", "-u", "-n", "/usr/sbin/sshd", "-D", "-f", config,
         "-E", os.path.join(hdir, "sshd.log")],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    entry["sshd"] = proc_ref(proc.pid)
    save_record(record)
    deadline = time.time() + 10
    while not listening(entry["address"]):
        if proc.poll() is not None:
            raise LabError(f"sshd for {host} exited with {proc.returncode}; see {hdir}/sshd.log")
        if time.time() > deadline:
            raise LabError(f"sshd for {host} did not listen on {entry['address']}:22 within 10 s")
        time.sleep(0.05)
    entry["sshd"] = proc_ref(proc.pid)  # nsenter exec'd sshd: same pid, same start time
    stop_pids([holder["pid"]])
    entry.pop("holder", None)
    save_record(record)
    print(f"{host}: sshd listens on {entry['address']}:22 again")


def lab_namespaces(record):
    namespaces = set(record.get("namespaces", []))
    for host in record.get("hosts", {}):
        try:
            with open(os.path.join(host_dir(host), "run", "namespaces")) as f:
                namespaces.update(line.strip() for line in f if line.strip())
        except FileNotFoundError:
            pass
    namespaces.discard(mount_ns(os.getpid()))
    return namespaces


def lab_processes(record):
    """Every process the lab started and that still runs, as (pid, start) refs:
    zfs-fuse, each host's sshd, and whatever lives in a lab namespace."""
    refs = [r for r in [record.get("zfs_fuse")] +
            [e.get("sshd") for e in record.get("hosts", {}).values()] if alive(r)]
    known = {r["pid"] for r in refs}
    refs += [proc_ref(p) for p in pids_in_namespaces(lab_namespaces(record)) if p not in known]
    return [r for r in refs if r["start"] is not None]


def down():
    record = load_record()
    problems = []
    started = lab_processes(record)
    # Everything running in a namespace the lab created was started through the
    # lab (sshd, sessions, jailed services): stop it so no mount stays busy.
    stop_namespaces(lab_namespaces(record))
    for host, entry in record.get("hosts", {}).items():
        if alive(entry.get("sshd")):
            stop_pids([entry["sshd"]["pid"]])
        pool = entry.get("pool")
        if pool and alive(record.get("zfs_fuse")):
            if run(["zpool", "list", "-H", pool], check=False).returncode == 0:
                # The kernel tears the stopped namespaces' mounts down a moment
                # after their last process exits; until then the pool is busy.
                deadline = time.time() + 15
                while True:
                    result = run(["zpool", "destroy", "-f", pool], check=False)
                    if result.returncode == 0 or time.time() > deadline:
                        break
                    time.sleep(0.25)
                if result.returncode != 0:
                    problems.append(f"zpool destroy {pool}: {result.stderr.strip()}")
    if alive(record.get("zfs_fuse")):
        stop_pids([record["zfs_fuse"]["pid"]], timeout=20)
    problems += net.down(record)
    survivors = [str(r["pid"]) for r in started if alive(r)]
    if survivors:
        problems.append(f"processes the lab started still run: {' '.join(survivors)}")
    # zfs-fuse leaves its FUSE mounts behind if it dies with them mounted.
    for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
        target = line.split()[4]
        if target.startswith(paths.STATE + "/") or target == paths.STATE:
            run(["umount", "-l", target], check=False)
    for name in reversed(record.get("users", [])):
        if run(["getent", "passwd", name], check=False).returncode == 0:
            run(["userdel", name], check=False)
        if run(["getent", "group", name], check=False).returncode == 0:
            run(["groupdel", name], check=False)
    for name in record.get("groups", []):
        if run(["getent", "group", name], check=False).returncode == 0:
            # -f: gid 0 is also root's primary group.
            run(["groupdel", "-f", name], check=False)
    for target in reversed(record.get("scaffold", [])):
        try:
            if os.path.isdir(target) and not os.path.islink(target):
                os.rmdir(target)
            elif os.path.isfile(target) and os.path.getsize(target) == 0:
                os.unlink(target)
            elif os.path.lexists(target):
                problems.append(f"{target} is not empty; left in place")
        except OSError as e:
            problems.append(f"{target}: {e}")
    if record.get("root_propagation") and record["root_propagation"] != "shared":
        run(["mount", f"--make-r{record['root_propagation']}", "/"], check=False)
    if problems:
        for p in problems:
            print(f"labctl down: {p}", file=sys.stderr)
        raise LabError("lab down incomplete; state kept in " + paths.STATE)
    shutil.rmtree(paths.STATE, ignore_errors=True)
    print("lab down: nothing left")


# ---------------------------------------------------------------- status ---

def status():
    record = load_record()
    if not record.get("hosts") and not record.get("zfs_fuse"):
        print("lab is down")
        return 3
    ok = alive(record.get("zfs_fuse"))
    print(f"zfs-fuse  {'running' if ok else 'STOPPED'}  pid {record.get('zfs_fuse', {}).get('pid')}")
    for host, entry in record["hosts"].items():
        up_ = alive(entry.get("sshd"))
        ok = ok and up_
        unplugged = up_ and not net.cable_plugged(host)
        ok = ok and not unplugged
        print(f"{host:8}  {entry['address']:12}  sshd {'running' if up_ else 'STOPPED'}"
              f"  pool {entry.get('pool')}{'  cable UNPLUGGED' if unplugged else ''}")
    return 0 if ok else 1


def pids():
    """Print `PID START` for every process the lab started (for leftover checks)."""
    for ref in lab_processes(load_record()):
        print(ref["pid"], ref["start"])


def ssh(host, command):
    record = load_record()
    entry = record.get("hosts", {}).get(host)
    if not entry:
        raise LabError(f"no lab host {host} (hosts: {', '.join(record.get('hosts', {}))})")
    argv = ["ssh", "-i", paths.CLIENT_KEY, "-o", f"UserKnownHostsFile={paths.KNOWN_HOSTS}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            f"root@{entry['address']}"] + command
    os.execvp("ssh", argv)


def console(host, command):
    """`labctl console HOST CMD...`: run CMD (a shell line) on HOST's console - in its
    namespaces, not over the network, so it works while the host is unplugged (as a
    serial console or IPMI does)."""
    record = load_record()
    entry = host_entry(record, host)
    if not alive(entry.get("sshd")):
        raise LabError(f"{host} is not running")
    os.execvp("nsenter", ["nsenter", "-t", str(entry["sshd"]["pid"]), "-m", "-u", "-n",
                          "env", f"PATH={paths.SESSION_PATH}", f"HAELK_LAB_HOST={host}",
                          "/bin/sh", "-c", " ".join(command)])


def kill_sessions(host):
    """SIGKILL HOST's SSH sessions, keep its listener (see haelklab/sessions.py)."""
    record = load_record()
    entry = record.get("hosts", {}).get(host)
    if not entry:
        raise LabError(f"no lab host {host} (hosts: {', '.join(record.get('hosts', {}))})")
    if not alive(entry.get("sshd")):
        raise LabError(f"the sshd of {host} is not running (labctl up starts it)")
    try:
        killed = sessions.kill_sessions(entry["sshd"])
    except RuntimeError as e:
        raise LabError(f"{host}: {e}") from None
    for proc in killed:
        print(f"killed {proc.pid} {proc.command}")
    print(f"{host}: {len(killed)} session process(es) killed; "
          f"sshd {entry['sshd']['pid']} still listens on {entry['address']}:22")

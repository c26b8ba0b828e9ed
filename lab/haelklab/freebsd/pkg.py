"""pkg(8) with a fixed catalogue: install, info, query, delete; -j (running jail), -r ROOT.

Installing records the package in ROOT/var/db/pkg/haelk-lab-local.json and lays
out what the port ships (config samples, data/log dirs owned by the port's user).
Like a port's pre-install script, it first adds the port's USERS/GROUPS to the
root's own etc/group, etc/master.passwd and etc/passwd (pw(8) fails, and so does the
install, when those files are missing), and owners are names in that root's files.
On a host (root /) the Linux user database stands in for FreeBSD's and is never
changed: `labctl up` creates the ports' users there.
"""
import json
import os
import pwd
import re
import sys

from haelklab.freebsd import userdb
from haelklab.freebsd import jails, pkgnet
from haelklab.freebsd.common import Fail, EX_USAGE, current_jail, find_jail, run_main
from haelklab.standins.common import STACK_VERSION

USAGE = ("Usage: pkg [-v] [-d] [-l] [-N] [-j <jail name or id>|-c <chroot path>|-r <rootdir>] "
         "[-C <configuration file>] [-R <repo config dir>] [-o var=value] [-4|-6] "
         "<command> [<args>]")

ES_YML = """\
# ======================== Elasticsearch Configuration =========================
# (sample shipped by the textproc/elasticsearch8 port; haelk writes its own)
path.data: /var/db/elasticsearch
path.logs: /var/log/elasticsearch
xpack.ml.enabled: false
"""
JVM_OPTIONS = """\
## JVM configuration (textproc/elasticsearch8 sample)
## set the heap in jvm.options.d/*.options, not here
-XX:+UseG1GC
-Djava.io.tmpdir=${ES_TMPDIR}
-XX:+HeapDumpOnOutOfMemoryError
"""
# Kibana's own config/kibana.yml (installed as kibana.yml.sample): every line is a
# comment, so path.data defaults to data/ under the port's WWWDIR.
KIBANA_YML = """\
# For more configuration options see the configuration guide for Kibana in
# https://www.elastic.co/guide/index.html
#server.port: 5601
#server.host: "localhost"
#elasticsearch.hosts: ["http://localhost:9200"]
#path.data: data
#pid.file: /run/kibana/kibana.pid
"""
KIBANA_WWWDIR = "usr/local/www/kibana8"

# The rc scripts the ports install (USE_RC_SUBR), with the ports' own rcorder header
# lines: textproc/elasticsearch8 (files/elasticsearch.in, as in elasticsearch7),
# textproc/kibana8/files/kibana.in, net/haproxy/files/haproxy.in. Their bodies are the
# lab's: service(8) and /etc/rc run the lab's rc-script stand-in (freebsd/service.py).
RC_HEADERS = {
    "elasticsearch": ["PROVIDE: elasticsearch", "REQUIRE: NETWORKING SERVERS",
                      "BEFORE: DAEMON", "KEYWORD: shutdown"],
    "kibana": ["PROVIDE: kibana", "REQUIRE: DAEMON", "BEFORE: LOGIN", "KEYWORD: shutdown"],
    "haproxy": ["PROVIDE: haproxy", "REQUIRE: DAEMON LOGIN", "KEYWORD: shutdown"],
}


def rc_script(name):
    header = "".join(f"# {line}\n" for line in RC_HEADERS[name])
    return (f"#!/bin/sh\n\n{header}\n"
            f"# haelk lab: service(8) and /etc/rc run the lab's stand-in of this rc script\n"
            f". /etc/rc.subr\n\nname={name}\nrcvar={name}_enable\nrun_rc_command \"$1\"\n")


# name -> (version, comment, dependencies, [(dir, owner)], {file: (owner, mode, text)})
# What each port's pkg-plist (or its Makefile's generated plist) installs, and no
# more: /var/db/elasticsearch, /var/log/elasticsearch, /var/run/elasticsearch and
# /var/run/kibana are made by the rc scripts' start_precmd (service.py), not by pkg.
CATALOGUE = {
    "elasticsearch8": (STACK_VERSION, "Distributed, RESTful search and analytics engine",
                       ["openjdk17", "bash", "jna"],
                       [("usr/local/etc/elasticsearch", "elasticsearch"),
                        ("usr/local/lib/elasticsearch/bin", "root"),
                        ("usr/local/lib/elasticsearch/lib", "root"),
                        ("usr/local/lib/elasticsearch/modules", "root"),
                        ("usr/local/lib/elasticsearch/plugins", "root"),
                        ("usr/local/libexec/elasticsearch", "root")],
                       {"usr/local/etc/elasticsearch/elasticsearch.yml": ("root", 0o644, ES_YML),
                        "usr/local/etc/elasticsearch/jvm.options": ("root", 0o644, JVM_OPTIONS),
                        "usr/local/etc/elasticsearch/log4j2.properties":
                            ("root", 0o644, "status = error\n"),
                        "usr/local/etc/elasticsearch/role_mapping.yml": ("root", 0o644, ""),
                        "usr/local/etc/elasticsearch/roles.yml": ("root", 0o644, ""),
                        "usr/local/etc/elasticsearch/users": ("elasticsearch", 0o640, ""),
                        "usr/local/etc/elasticsearch/users_roles": ("elasticsearch", 0o640, ""),
                        "usr/local/etc/rc.d/elasticsearch":
                            ("root", 0o755, rc_script("elasticsearch"))}),
    "openjdk17": ("17.0.14+7.1", "Java Development Kit 17", [], [], {}),
    "jna": ("5.16.0", "Java Native Access (JNA)", [], [], {}),
    "kibana8": (STACK_VERSION, "Browser based analytics and search interface to ElasticSearch",
                ["node20"],
                [("usr/local/etc/kibana", "root"), (KIBANA_WWWDIR, "root"),
                 (KIBANA_WWWDIR + "/bin", "root"), (KIBANA_WWWDIR + "/src/cli/dist", "root"),
                 (KIBANA_WWWDIR + "/data", "www"), (KIBANA_WWWDIR + "/plugins", "root"),
                 (KIBANA_WWWDIR + "/logs", "root")],
                {"usr/local/etc/kibana/kibana.yml": ("root", 0o644, KIBANA_YML),
                 "usr/local/etc/rc.d/kibana": ("root", 0o755, rc_script("kibana"))}),
    "node20": ("20.18.3", "V8 JavaScript for client and server", [], [], {}),
    "haproxy": ("3.0.9", "Reliable, high performance TCP/HTTP load balancer", [], [],
                {"usr/local/etc/rc.d/haproxy": ("root", 0o755, rc_script("haproxy"))}),
    "pkg": ("1.21.3", "Package manager", [], [], {}),
    "ca_root_nss": ("3.108", "Root certificate bundle from the Mozilla Project", [], [], {}),
    "curl": ("8.12.1", "Command line tool and library for transferring data with URLs", [], [], {}),
    "bash": ("5.2.37", "GNU Project's Bourne Again SHell", [], [], {}),
    "sudo": ("1.9.16p2", "Allow others to run commands as root", [], [], {}),
    "rsync": ("3.4.1", "Network file distribution/synchronization utility", [], [], {}),
    "jq": ("1.7.1", "Lightweight and flexible command-line JSON processor", [], [], {}),
}


# Accounts a package's pre-install script creates (ports/UIDs and ports/GIDs lines):
# name -> [(user, uid, gid, gecos, home, shell)]. kibana8 runs as www, a base user.
PORT_ACCOUNTS = {
    "elasticsearch8": [("elasticsearch", 965, 965, "Elasticsearch user", "/nonexistent",
                        "/usr/sbin/nologin")],
}


def db_path(root):
    return os.path.join(root, "var/db/pkg/haelk-lab-local.json")


def load_db(root):
    try:
        with open(db_path(root)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def installed(root, name):
    return name in load_db(root)


def main(argv):
    return run_main(_main, argv)


def _main(argv):
    root = None
    # The network pkg fetches through: a jail's (-j), or ours inside a jail.
    jail_net = "self" if current_jail() else None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg in ("-j", "-r", "-c"):
            if i + 1 >= len(argv):
                raise Fail(f"pkg: option requires an argument -- '{arg[1]}'\n{USAGE}", EX_USAGE)
            value = argv[i + 1]
            if root is not None:
                raise Fail(f"-j, -c and/or -r cannot be used at the same time!\n{USAGE}", EX_USAGE)
            if arg == "-j":
                name, rec = find_jail(value) if not current_jail() else (None, None)
                if rec is None:
                    raise Fail(f'pkg: jail "{value}" not found')  # libjail's jail_errmsg
                root = rec["path"]
                jail_net = (jails.jail_netns(rec) or "none") if rec.get("netns_holder") else None
            else:
                if not os.path.isdir(value):
                    raise Fail(f"pkg: {value}: No such file or directory")
                root = value
            i += 2
            continue
        if arg in ("-N", "-d", "-v", "-4", "-6"):
            i += 1
            continue
        raise Fail(f"pkg: illegal option -- {arg.lstrip('-')[:1]}\n{USAGE}", EX_USAGE)
    if root is None:
        root = os.environ.get("HAELK_LAB_JAIL_ROOT") or "/"
    if i >= len(argv):
        raise Fail(USAGE, EX_USAGE)
    command, args = argv[i], argv[i + 1:]
    if command in ("install", "update") and jail_net is not None:
        reason = ("Network is unreachable" if jail_net == "none" else
                  pkgnet.problem(None if jail_net == "self" else jail_net, root))
        if reason:
            out, err = pkgnet.refusal(reason)
            print(out, end="")
            sys.stdout.flush()
            raise Fail(err)
    if command == "install":
        return install(root, args)
    if command == "info":
        return info(root, args)
    if command == "query":
        return query(root, args)
    if command == "delete":
        return delete(root, args)
    if command in ("update", "bootstrap"):
        return 0
    raise Fail(f"pkg: unknown command: {command}\n{USAGE}", EX_USAGE)


def confirm(question, yes):
    """pkg's prompt: without -y only a "y" typed on a terminal goes ahead."""
    if yes:
        return
    print(question, end="")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower() if sys.stdin.isatty() else ""
    if answer not in ("y", "yes"):
        raise Fail("")


def with_deps(names):
    order = []
    for name in names:
        for dep in CATALOGUE[name][2]:
            if dep not in order:
                order.append(dep)
        if name not in order:
            order.append(name)
    return order


def install(root, args):
    yes = False
    names = []
    for arg in args:
        if arg.startswith("-"):
            for c in arg[1:]:
                if c == "y":
                    yes = True
                elif c not in "AfIMnqRUgxX":
                    raise Fail(f"pkg: illegal option -- {c}\nUsage: pkg install [-AfInFMqRUy] "
                               "[-r reponame] [-Cgix] <pkg-name> ...", EX_USAGE)
        else:
            names.append(re.sub(r"-\d[\w.,_+]*$", "", arg))
    if not names:
        raise Fail("Usage: pkg install [-AfInFMqRUy] [-r reponame] [-Cgix] <pkg-name> ...", EX_USAGE)
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        print("Updating FreeBSD repository catalogue...\nFreeBSD repository is up to date.\n"
              "All repositories are up to date.")
        raise Fail(f"pkg: No packages available to install matching '{unknown[0]}' "
                   "have been found in the repositories")
    db = load_db(root)
    todo = [n for n in with_deps(names) if n not in db]
    print("Updating FreeBSD repository catalogue...\nFreeBSD repository is up to date.\n"
          "All repositories are up to date.")
    if not todo:
        print("Checking integrity... done (0 conflicting)\n"
              "The most recent versions of packages are already installed")
        return 0
    print("The following %d package(s) will be affected (of 0 checked):\n\n"
          "New packages to be INSTALLED:" % len(todo))
    for n in todo:
        print(f"\t{n}: {CATALOGUE[n][0]} [FreeBSD]")
    confirm("\nProceed with this action? [y/N]: ", yes)
    for idx, n in enumerate(todo, 1):
        version, comment, _deps, dirs, files = CATALOGUE[n]
        print(f"[{idx}/{len(todo)}] Installing {n}-{version}...")
        create_accounts(root, n)
        for rel, owner in dirs:
            path = os.path.join(root, rel)
            os.makedirs(path, exist_ok=True)
            os.chown(path, *owner_ids(root, owner))
        for rel, (owner, mode, text) in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # @sample: the sample becomes the file only where none exists yet.
            if not os.path.exists(path):
                with open(path + ".pkgtmp", "w") as f:
                    f.write(text)
                os.chown(path + ".pkgtmp", *owner_ids(root, owner))
                os.chmod(path + ".pkgtmp", mode)
                os.replace(path + ".pkgtmp", path)
        db[n] = {"version": version, "comment": comment, "automatic": n not in names}
        # Registered one by one, as pkg does: a later failure keeps the earlier ones.
        save_db(root, db)
    return 0


def save_db(root, db):
    os.makedirs(os.path.dirname(db_path(root)), exist_ok=True)
    with open(db_path(root) + ".tmp", "w") as f:
        json.dump(db, f, indent=1)
    os.replace(db_path(root) + ".tmp", db_path(root))


def create_accounts(root, package):
    """The USERS/GROUPS part of the port's pre-install script (bsd.port.mk's output)."""
    accounts = PORT_ACCOUNTS.get(package, [])
    if not accounts:
        return
    if root == "/":
        for name, *_rest in accounts:
            print(f"Using existing user '{name}'.")
        return
    try:
        print("===> Creating groups.")
        for name, _uid, gid, *_rest in accounts:
            if userdb.group(root, name) is None:
                print(f"Creating group '{name}' with gid '{gid}'.")
                userdb.groupadd(root, name, gid)
            else:
                print(f"Using existing group '{name}'.")
        print("===> Creating users")
        for name, uid, gid, gecos, home, shell in accounts:
            if userdb.user(root, name) is None:
                print(f"Creating user '{name}' with uid '{uid}'.")
                userdb.useradd(root, name, uid, gid, gecos, home, shell)
            else:
                print(f"Using existing user '{name}'.")
    except userdb.UserDbError as e:
        sys.stdout.flush()
        raise Fail(f"{e}\npkg: PRE-INSTALL script failed") from None


def owner_ids(root, owner):
    """(uid, gid) of OWNER as pkg resolves it: in the root's own etc/passwd."""
    if root == "/":
        pw = pwd.getpwnam(owner)
        return pw.pw_uid, pw.pw_gid
    try:
        found = userdb.user(root, owner)
    except userdb.UserDbError as e:
        raise Fail(str(e)) from None
    if found is None:
        raise Fail(f"pkg: {owner}: no such user in {os.path.join(root, 'etc/passwd')}")
    return found[0], found[1]


def info(root, args):
    exists = quiet = False
    names = []
    for arg in args:
        if arg.startswith("-"):
            for c in arg[1:]:
                if c == "e":
                    exists = True
                elif c == "q":
                    quiet = True
                else:
                    raise Fail(f"pkg: illegal option -- {c}\nUsage: pkg info <pkg-name>\n"
                               "       pkg info -a", EX_USAGE)
        else:
            names.append(arg)
    db = load_db(root)
    if exists:
        if not names:
            raise Fail("Usage: pkg info <pkg-name>\n       pkg info -a", EX_USAGE)
        return 0 if all(n in db for n in names) else 1
    if names:
        missing = [n for n in names if n not in db]
        if missing:
            raise Fail(f"pkg: No package(s) matching {missing[0]}")
        for n in names:
            print(f"{n}-{db[n]['version']}" if quiet else
                  f"{n}-{db[n]['version']}\nName           : {n}\nVersion        : "
                  f"{db[n]['version']}\nComment        : {db[n]['comment']}")
        return 0
    for n in sorted(db):
        print(f"{n}-{db[n]['version']}" if quiet else f"{n + '-' + db[n]['version']:<32} {db[n]['comment']}")
    return 0


def query(root, args):
    if not args or args[0].startswith("-"):
        raise Fail("Usage: pkg query <query-format> <pkg-name>\n"
                   "       pkg query [-a] <query-format>", EX_USAGE)
    fmt, names = args[0], args[1:]
    for m in re.finditer(r"%(.)", fmt):
        if m.group(1) not in "nvca%":
            raise Fail(f"pkg: Invalid query format string: %{m.group(1)}")
    db = load_db(root)
    selected = names or sorted(db)
    status = 0
    for n in selected:
        if n not in db:
            status = 1
            continue
        rec = db[n]
        print(re.sub(r"%(.)", lambda m: {"n": n, "v": rec["version"], "c": rec["comment"],
                                          "a": "1" if rec["automatic"] else "0", "%": "%"}[m.group(1)], fmt))
    return status


def delete(root, args):
    usage = "Usage: pkg delete [-DfnqRy] [-Cgix] <pkg-name> ...\n       pkg delete [-Dnqy] -a"
    yes = False
    names = []
    for arg in args:
        if arg.startswith("-"):
            for c in arg[1:]:
                if c not in "DfnqRyCgix":
                    raise Fail(f"pkg: illegal option -- {c}\n{usage}", EX_USAGE)
                yes = yes or c == "y"
        else:
            names.append(arg)
    if not names:
        raise Fail(usage, EX_USAGE)
    db = load_db(root)
    missing = [n for n in names if n not in db]
    if missing:
        raise Fail(f"pkg: No packages matched for pattern '{missing[0]}'")
    print("Deinstallation has been requested for the following %d packages:\n" % len(names))
    for n in names:
        print(f"\t{n}: {db[n]['version']}")
    confirm("\nProceed with deinstalling packages? [y/N]: ", yes)
    for n in names:
        del db[n]
    save_db(root, db)
    return 0

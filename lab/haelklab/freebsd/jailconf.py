"""A strict parser of jail.conf(5): what jail(8) rejects, this rejects too.

Pure: parse(text, filename) -> JailConf; errors are ConfError with jail(8)-style text.
"""
import ipaddress
import re

KNOWN = {
    "jid", "name", "path", "host.hostname", "host.domainname", "host.hostuuid", "host.hostid",
    "host", "ip4", "ip4.addr", "ip4.saddrsel", "ip6", "ip6.addr", "ip6.saddrsel", "vnet",
    "vnet.interface", "securelevel", "devfs_ruleset", "children.max", "enforce_statfs",
    "persist", "dying", "parent", "osrelease", "osreldate", "cpuset.id", "linux",
    "linux.osname", "linux.osrelease", "sysvmsg", "sysvsem", "sysvshm", "interface",
    "ip_hostname", "mount", "mount.fstab", "mount.devfs", "mount.fdescfs", "mount.procfs",
    "depend", "exec.prepare", "exec.prestart", "exec.created", "exec.start", "command",
    "exec.poststart", "exec.prestop", "exec.stop", "exec.poststop", "exec.release",
    "exec.clean", "exec.jail_user", "exec.system_jail_user", "exec.system_user",
    "exec.timeout", "exec.consolelog", "exec.fib", "stop.timeout", "zfs.dataset",
    "zfs.mount_snapshot", "linux.oss_version", "meta", "env",
}
ALLOW = {"set_hostname", "sysvipc", "raw_sockets", "chflags", "mount", "mount.devfs",
         "mount.fdescfs", "mount.fusefs", "mount.nullfs", "mount.procfs", "mount.tmpfs", "mount.zfs",
         "mount.linprocfs", "mount.linsysfs", "quotas", "socket_af", "mlock", "reserved_ports",
         "read_msgbuf", "unprivileged_proc_debug", "suser", "vmm", "nfsd", "extattr",
         "adjtime", "settime", "routing", "setaudit", "unprivileged_parent_tampering"}
BOOLEAN = {"persist", "vnet", "mount.devfs", "mount.fdescfs", "mount.procfs", "exec.clean",
           "ip4.saddrsel", "ip6.saddrsel", "ip_hostname", "dying"}
TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+) | (?P<nl>\n) | (?P<comment>\#[^\n]*|//[^\n]*) | (?P<block>/\*.*?\*/)
  | (?P<dq>"(?:[^"\\]|\\.)*") | (?P<sq>'[^']*') | (?P<op>\+=|[{};=,])
  | (?P<word>[^\s{};=,"'\#]+)
""", re.X | re.S)


class ConfError(Exception):
    pass


def known_param(key):
    if key.startswith("$"):
        return True
    bare = key
    if bare.startswith("no") and bare[2:] in BOOLEAN:
        return True
    if bare.startswith("allow."):
        rest = bare[len("allow."):]
        rest = rest[2:] if rest.startswith("no") and rest[2:] in ALLOW else rest
        return rest in ALLOW
    if bare.startswith(("meta.", "env.")):
        return True
    return bare in KNOWN


def tokenize(text, filename):
    pos, line, tokens = 0, 1, []
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise ConfError(f"{filename} line {line}: syntax error")
        kind = m.lastgroup
        value = m.group()
        if kind == "nl":
            line += 1
        elif kind == "block":
            line += value.count("\n")
        elif kind not in ("ws", "comment"):
            tokens.append((kind, value, line))
            line += value.count("\n") if kind in ("dq", "sq") else 0
        pos = m.end()
    return tokens


class Param:
    def __init__(self, key, op, values, line):
        self.key, self.op, self.values, self.line = key, op, values, line


class JailConf:
    def __init__(self, filename):
        self.filename = filename
        self.globals = []
        self.blocks = {}

    def params_for(self, name):
        """The resolved parameters of jail NAME: {key: [values]} (bools: [])."""
        if name not in self.blocks:
            raise ConfError(f'"{name}" not found')
        out = {"name": [name]}
        for p in self.globals + self.blocks.get("*", []) + self.blocks[name]:
            if not known_param(p.key):
                raise ConfError(f"unknown parameter: {p.key}")
            values = [expand(v, out, self.filename, p.line) for v in p.values]
            if p.op == "+=":
                out.setdefault(p.key, []).extend(values)
            else:
                out[p.key] = values
        return out


def expand(value, params, filename, line):
    kind, text = value
    if kind == "sq":
        return text

    def repl(m):
        var = m.group(1) or m.group(2)
        key = var if var in params else "$" + var
        if key not in params:
            raise ConfError(f'{filename} line {line}: unknown variable "{var}"')
        return ",".join(params[key])
    return re.sub(r"\$\{([^}]+)\}|\$([A-Za-z_][A-Za-z0-9_.]*)", repl, text)


def unquote(kind, value):
    if kind == "dq":
        return ("dq", re.sub(r"\\(.)", r"\1", value[1:-1]))
    if kind == "sq":
        return ("sq", value[1:-1])
    return ("word", value)


def parse(text, filename):
    tokens = tokenize(text, filename)
    conf = JailConf(filename)
    i = 0

    def err(at):
        line = tokens[at][2] if at < len(tokens) else (tokens[-1][2] if tokens else 1)
        near = f' near "{tokens[at][1]}"' if at < len(tokens) else ""
        raise ConfError(f"{filename} line {line}: syntax error{near}")

    def param(i):
        kind, key, line = tokens[i]
        if kind != "word":
            err(i)
        i += 1
        if i < len(tokens) and tokens[i][1] in ("=", "+="):
            op = tokens[i][1]
            i += 1
            values = []
            while True:
                if i >= len(tokens) or tokens[i][0] not in ("word", "dq", "sq"):
                    err(i)
                values.append(unquote(tokens[i][0], tokens[i][1]))
                i += 1
                if i < len(tokens) and tokens[i][1] == ",":
                    i += 1
                    continue
                break
        else:
            op, values = None, []
        if i >= len(tokens) or tokens[i][1] != ";":
            err(i)
        return Param(key, op, values, line), i + 1

    while i < len(tokens):
        kind, value, _line = tokens[i]
        if kind in ("word", "dq", "sq") and i + 1 < len(tokens) and tokens[i + 1][1] == "{":
            name = unquote(kind, value)[1]
            i += 2
            body = []
            while i < len(tokens) and tokens[i][1] != "}":
                p, i = param(i)
                body.append(p)
            if i >= len(tokens):
                raise ConfError(f"{filename} line {tokens[-1][2]}: syntax error: missing }}")
            i += 1
            conf.blocks.setdefault(name, []).extend(body)
        elif value == "}":
            err(i)
        else:
            p, i = param(i)
            conf.globals.append(p)
    return conf


def check(name, params, exists):
    """jail(8)'s checks on resolved parameters; EXISTS(path) is injected for tests."""
    for key, values in params.items():
        if key.startswith("$"):
            continue
        plain = key[2:] if key.startswith("no") and key[2:] in BOOLEAN else key
        if plain in BOOLEAN and values and values[0].lower() not in ("true", "false", "1", "0"):
            raise ConfError(f"{name}: {key}: invalid boolean")
    path = params.get("path")
    if not path or not path[0]:
        raise ConfError(f"{name}: path: not specified")
    if not exists(path[0]):
        raise ConfError(f"{name}: path {path[0]}: No such file or directory")
    for addr in params.get("ip4.addr", []):
        ip = addr.split("|", 1)[-1].split("/", 1)[0]
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise ConfError(f"{name}: ip4.addr: not an IPv4 address: {ip}") from None
    if "vnet.interface" in params and "vnet" not in params:
        raise ConfError(f"{name}: vnet.interface requires vnet")
    if "vnet" in params and "ip4.addr" in params:
        raise ConfError(f"{name}: ip4.addr: not allowed with vnet (set it in the jail)")
    for key in ("enforce_statfs", "devfs_ruleset", "securelevel", "children.max"):
        if key in params and not re.fullmatch(r"-?\d+", params[key][0] if params[key] else ""):
            raise ConfError(f"{name}: {key}: invalid integer")
    if "enforce_statfs" in params and int(params["enforce_statfs"][0]) not in (0, 1, 2):
        raise ConfError(f"{name}: enforce_statfs: Invalid argument")

#!/usr/bin/env python3
"""Runs a command the way systemd would run the [Service] of a unit file, for tests on hosts without systemd.

usage: unit_exec.py UNIT [--set Key=Value ...] [--map /abs/path=/other/path ...] -- COMMAND ARGS...

Stage 1 (as root) reads the unit and execs setpriv with its User=, Group=, SupplementaryGroups=,
CapabilityBoundingSet=, NoNewPrivileges= and UMask=; stage 2 (now the service user) installs a seccomp
filter built like systemd's for SystemCallArchitectures=, SystemCallFilter= (groups expanded by
`systemd-analyze syscall-filter`, the same tables systemd uses), RestrictNamespaces=, RestrictAddressFamilies=
and MemoryDenyWriteExecute=, then execs COMMAND. Not emulated (mount namespaces): ProtectSystem=, PrivateTmp=,
ProtectHome=, DevicePolicy=; a unit using PrivateUsers= is refused, since it would change what we test.
--set overrides a key (to test a stricter or older unit) without editing the file.
"""
import ctypes
import os
import platform
import re
import struct
import subprocess
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
RET_KILL_PROCESS = 0x80000000
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
EPERM, ENOSYS, EAFNOSUPPORT = 1, 38, 97
ERRNOS = {"EPERM": 1, "EACCES": 13, "ENOSYS": 38}
ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
NAMESPACES = {"cgroup": 0x02000000, "ipc": 0x08000000, "net": 0x40000000, "mnt": 0x00020000,
              "pid": 0x20000000, "user": 0x10000000, "uts": 0x04000000}
FAMILIES = {"AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}
PROT_WRITE, PROT_EXEC, SHM_EXEC = 2, 4, 0o100000


def read_unit(path, overrides):
    settings = {}
    section = None
    for raw in open(path, encoding="utf-8"):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section != "[Service]" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        settings.setdefault(key.strip(), []).append(value.strip())
    for item in overrides:
        key, value = item.split("=", 1)
        settings[key] = [value]
    return settings


def last(settings, key, default=None):
    return settings.get(key, [default])[-1]


def syscall_numbers():
    header = "/usr/include/%s-linux-gnu/asm/unistd_64.h" % platform.machine()
    if not os.path.exists(header):
        header = "/usr/include/asm-generic/unistd.h"
    numbers = {}
    for line in open(header):
        m = re.match(r"#define __NR_(\w+)\s+(\d+)", line)
        if m:
            numbers[m.group(1)] = int(m.group(2))
    return numbers


def expand(names, seen=None):
    seen = seen if seen is not None else set()
    out = set()
    for name in names:
        if not name.startswith("@"):
            out.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        text = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True, capture_output=True, text=True).stdout
        members = [l.strip() for l in text.splitlines()[1:] if l.strip() and not l.strip().startswith("#")]
        out |= expand(members, seen)
    return out


def stage1(unit, settings, command):
    if "PrivateUsers" in settings and last(settings, "PrivateUsers") not in ("no", "false", "0"):
        sys.exit("unit_exec: PrivateUsers= is not emulated")
    user = last(settings, "User", "root")
    group = last(settings, "Group", user)
    args = ["setpriv", "--reuid=" + user, "--regid=" + group]
    extra = " ".join(settings.get("SupplementaryGroups", [])).split()
    args.append("--groups=" + ",".join(extra) if extra else "--clear-groups")
    caps = " ".join(settings.get("CapabilityBoundingSet", [])).split()
    if "CapabilityBoundingSet" in settings and not caps:
        args.append("--bounding-set=-all")
    if last(settings, "NoNewPrivileges", "no") in ("yes", "true", "1"):
        args.append("--no-new-privs")
    if "UMask" in settings:
        os.umask(int(last(settings, "UMask"), 8))
    os.execvp("setpriv", args + ["--", sys.executable, os.path.abspath(__file__), "--stage2", unit] +
              sum((["--set", "%s=%s" % (k, v[-1])] for k, v in settings.items() if k in OVERRIDABLE), []) + ["--"] + command)


OVERRIDABLE = ("RestrictNamespaces", "SystemCallArchitectures", "RestrictAddressFamilies", "MemoryDenyWriteExecute",
               "SystemCallErrorNumber")


def ld(offset):
    return struct.pack("HBBI", 0x20, 0, 0, offset)


def jeq(k, jt, jf):
    return struct.pack("HBBI", 0x15, jt, jf, k & 0xFFFFFFFF)


def jset(k, jt, jf):
    return struct.pack("HBBI", 0x45, jt, jf, k & 0xFFFFFFFF)


def ret(k):
    return struct.pack("HBBI", 0x06, 0, 0, k)


def filter_program(settings):
    numbers = syscall_numbers()
    arch = ARCH[platform.machine()]
    prog = [ld(4), jeq(arch, 1, 0), ret(RET_KILL_PROCESS), ld(0)]

    def arg_block(nr, offset, checks):
        # checks: list of instructions that end in a return or fall through; the whole block is skipped
        # for other syscalls, then the syscall number is loaded again.
        body = [ld(offset)] + checks + [ld(0)]
        return [jeq(nr, 0, len(body))] + body

    restrict = " ".join(settings.get("RestrictNamespaces", ["no"])).split()
    if restrict and restrict != ["no"]:
        allowed = 0 if restrict in (["yes"], ["true"]) else sum(NAMESPACES[n] for n in restrict if not n.startswith("~"))
        if restrict[0].startswith("~"):
            allowed = sum(NAMESPACES.values()) & ~sum(NAMESPACES[n.lstrip("~")] for n in restrict)
        denied = sum(NAMESPACES.values()) & ~allowed
        for name in ("unshare", "clone"):
            prog += arg_block(numbers[name], 16, [jset(denied, 0, 1), ret(RET_ERRNO | EPERM)])
        # clone3 passes its flags in memory seccomp cannot read: systemd answers ENOSYS, libc falls back to clone.
        prog += [jeq(numbers["clone3"], 0, 1), ret(RET_ERRNO | ENOSYS)]
        setns_checks = [jset(denied, 0, 1), ret(RET_ERRNO | EPERM)]
        if denied:
            setns_checks += [jeq(0, 0, 1), ret(RET_ERRNO | EPERM)]
        prog += arg_block(numbers["setns"], 24, setns_checks)

    families = " ".join(settings.get("RestrictAddressFamilies", [])).split()
    if families and families != ["none"]:
        if families[0].startswith("~"):
            sys.exit("unit_exec: a deny list in RestrictAddressFamilies= is not emulated")
        codes = [FAMILIES[f] for f in families]
        checks = [jeq(code, len(codes) - i, 0) for i, code in enumerate(codes)] + [ret(RET_ERRNO | EAFNOSUPPORT)]
        prog += arg_block(numbers["socket"], 16, checks)

    if last(settings, "MemoryDenyWriteExecute", "no") in ("yes", "true", "1"):
        prog += arg_block(numbers["mmap"], 32, [jset(PROT_EXEC, 0, 2), jset(PROT_WRITE, 0, 1), ret(RET_ERRNO | EPERM)])
        for name in ("mprotect", "pkey_mprotect"):
            prog += arg_block(numbers[name], 32, [jset(PROT_EXEC, 0, 1), ret(RET_ERRNO | EPERM)])
        prog += arg_block(numbers["shmat"], 32, [jset(SHM_EXEC, 0, 1), ret(RET_ERRNO | EPERM)])

    filters = settings.get("SystemCallFilter", [])
    if filters:
        allow, deny, mode = set(), set(), None
        for entry in filters:
            inverted = entry.startswith("~")
            names = expand(entry.lstrip("~").split())
            if mode is None:
                mode = "deny" if inverted else "allow"
            if inverted:
                deny |= names
                allow -= names
            else:
                allow |= names
                deny -= names
        # Like systemd: a call outside the filter kills the process, unless SystemCallErrorNumber= names an errno.
        errno_name = last(settings, "SystemCallErrorNumber")
        denied = RET_ERRNO | ERRNOS[errno_name] if errno_name else RET_KILL_PROCESS
        if mode == "allow":
            for name in sorted(allow):
                if name in numbers:
                    prog += [jeq(numbers[name], 0, 1), ret(RET_ALLOW)]
            prog.append(ret(denied))
            return b"".join(prog)
        for name in sorted(deny):
            if name in numbers:
                prog += [jeq(numbers[name], 0, 1), ret(denied)]
    prog.append(ret(RET_ALLOW))
    return b"".join(prog)


def stage2(settings, command):
    program = filter_program(settings)
    libc = ctypes.CDLL(None, use_errno=True)
    # Pointers must travel as 64-bit values, not ctypes' default C int.
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HxxxxxxQ", len(program) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit("unit_exec: no_new_privs: errno %d" % ctypes.get_errno())
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fbuf), 0, 0) != 0:
        sys.exit("unit_exec: seccomp: errno %d" % ctypes.get_errno())
    os.execvp(command[0], command)


def main(argv):
    second = argv[:1] == ["--stage2"]
    if second:
        argv = argv[1:]
    unit, rest = argv[0], argv[1:]
    overrides = []
    while rest and rest[0] != "--":
        if rest[0] == "--set":
            overrides.append(rest[1])
            rest = rest[2:]
        else:
            sys.exit("unit_exec: unknown option " + rest[0])
    command = rest[1:]
    settings = read_unit(unit, overrides)
    if second:
        stage2(settings, command)
    else:
        stage1(unit, settings, command)


if __name__ == "__main__":
    main(sys.argv[1:])

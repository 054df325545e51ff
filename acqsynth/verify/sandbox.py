"""Run untrusted generated Python programs, each contained in its own throw-away process.

Each program runs in a process forked, for it alone, from a fork server (a "zygote"): a `python -I -S -B -u -X utf8`
interpreter (sys.executable; its site-packages on sys.path, their .pth files not run) that has already imported what
the sandbox and common programs need, so a program starts in about a millisecond instead of an interpreter start-up.
The zygote never runs program code and never sees it: it gets a work dir's path, the layers to enter and the pipes,
forks, reports the child's pid (and a pidfd) and, when told, reaps it. It is started with the stripped environment
below, in its own session, and holds nothing of the calling process: no environment, no memory, no descriptor but
stderr (for its own errors; each child replaces it before anything else). It is not dumpable, so a program of its
uid cannot ptrace it or read its memory to taint later runs even without the layers below. As root it enters, once,
its own network namespace and a private mount namespace (below). There is one zygote per program running at once
(idle ones are reused; run_programs with N workers keeps N); a dead one is replaced, and all are ended at
interpreter exit. A zygote whose caller hangs up kills its running program and exits.

The forked child (born into its zygote's pids cgroup, below) enters the sandbox before the program's first line,
in this order: a new session and process group; stdin at /dev/null, stdout/stderr on pipes to the caller; its
namespaces; a fresh temporary work dir (also HOME and TMPDIR; deleted afterwards, and swept later if its caller
died first) as cwd, with a stripped environment
(PATH=/usr/bin:/bin, LANG=C.UTF-8, one BLAS/OpenMP thread; nothing inherited, so no secrets); as root, the
sandbox's own uid; no_new_privs; Landlock; every other descriptor closed; rlimits; the seccomp filter; the audit
hooks. A failure on the way is an "error" verdict, never a weaker sandbox. The caller supervises the child through
a pidfd (the zygote reaps it only when told, after the kill, so its pid and process group id cannot be reused
meanwhile). Linux only (pidfd: kernel >= 5.3). The layers follow; `isolation_report()` says which this host grants.

Always:
- rlimits: CPU seconds (SIGXCPU, SIGKILL one second later), address space, file size, open files, no core dumps;
  RLIMIT_NPROC too where it counts what it should (see isolation_report()["rlimit_nproc"]).
- no_new_privs: nothing the program runs can gain privileges (set-id bits, file capabilities).
- A wall-clock timeout that SIGKILLs the whole process group; the group is also killed as soon as the main process
  exits, so threads and children in it cannot outlive the program. stdout/stderr are read incrementally and kept
  up to max_output_bytes each; a program writing more than _FLOOD_FACTOR times that is killed ("error").
- Python audit hooks (PEP 578: they cannot be removed and also see re-imported modules), installed before the
  program's first line: no sockets but Unix socket pairs, no connect/bind/DNS, no fork/exec/spawn/subprocess/
  os.system, no signals to processes outside the sandbox's process group, no native code through ctypes (loading
  libraries, foreign calls, raw addresses; `import ctypes` itself works, numpy needs it), no writes, renames or
  deletes outside the work dir, no reads outside the interpreter's installation, /usr, /lib*, the work dir and a
  few device files; no chmod, chown, utime or xattr changes outside the work dir. A blocked operation makes the
  verdict "error" even if the program catches the exception.
  They cannot be switched off from Python: the hook uses only the interpreter's C functions and immutable values,
  bound before the program's first line (rebinding os.path.realpath or builtins changes nothing in it), and no
  frame refers to it; tracing and profiling (which can rewrite a running frame's variables), listing the
  interpreter's objects through gc are blocked (the hook's code cannot be replaced: no program reaches the
  function). A program that corrupts the
  interpreter's memory (crafted bytecode; too common in legitimate code to forbid) gets past them, and then only
  the kernel layers remain.

Where the kernel allows (probed once per process):
- No privilege. As root (the usual container or CI case), each program runs as SANDBOX_UID/SANDBOX_GID, no
  supplementary groups, no capabilities: no file outside its work dir is its own, so it can chmod, chown or
  touch none of them (the kernel refuses even where the layers below are missing), it cannot raise its rlimits,
  and nothing it creates belongs to root. Its work dir is a private tmpfs (mounted nosuid, nodev, noexec, at most
  disk_bytes) in a mount namespace of its own: the host never sees what it writes (a set-id file included), no
  set-id bit or device node in it takes effect, and it is gone with the program. The zygote's mount namespace
  is private (no mount propagates either way) and hides, under an empty tmpfs, each directory above the readable
  paths that this uid may not traverse (a 0700 /root holding the interpreter), keeping just those paths. Programs
  get a fresh IPC namespace each (no SysV IPC object outlives its program); each zygote has a network namespace
  with nothing but a down loopback, so nothing (TCP, UDP, raw) reaches the host or the internet. As another user,
  programs run as that user, in a new user + network namespace where unprivileged user namespaces are enabled
  (no capabilities outside it), and their work dir is a host directory.
- seccomp (x86_64): the system calls of _FORBIDDEN_SYSCALLS kill the program (SIGSYS; verdict "error", so catching
  the failure hides nothing): chmod/chown/xattr changes of any file, mknod, mount and the new mount API, chroot,
  ptrace and process_vm_*, unshare/setns and clone into new namespaces, keyctl, bpf, io_uring, userfaultfd,
  perf_event_open, module and kexec loading, open_by_handle_at, and socket()/connect() (socketpair stays, stream
  and seqpacket only): no Unix socket outside, pathname or abstract, can be reached. clone3 fails with ENOSYS.
- Landlock (Linux >= 5.13, no root needed): writes only in the work dir and /dev/null, reads only under the paths
  above (so other files, even world-readable or root-only ones, cannot be read; /proc included), exec only of the
  interpreter and libraries, no ptrace of processes outside the sandbox; with ABI >= 4 no TCP connect/bind; with
  ABI >= 6 no signals to processes outside the sandbox (the zygote and the caller included) and no abstract Unix
  sockets.
- As root, a pids cgroup (v1, or v2 with the pids controller at the root) per zygote, which its children are born
  into: it holds the zygote and at most one program, with pids.max = max_processes + 1, so the program has at most
  max_processes tasks (threads count); at the end every task in it but the zygote is SIGKILLed, even one that left
  the process group (setsid), before the next program starts (a cgroup that cannot be emptied is dropped with its
  zygote, as is one with a killed task still charged). The zygote is the programs' subreaper and reaps their
  orphans.

Where a layer is missing. Without seccomp, or as root without the sandbox's uid (the host refused the namespaces
or the mount), isolation_report()["weaker_guarantees"] names what a program past the audit hooks could then do,
and run_program refuses to run (SandboxUnavailable) unless told missing_layers="warn", which logs that weaker
guarantee once and runs. Without Landlock, a program past the audit hooks can read any file its uid may and write
where its uid may; without the pids cgroup it can fork until RLIMIT_NPROC (as the sandbox's uid: shared by all
programs running at once), and a daemon it detaches with setsid may survive. Programs running at once share the
sandbox's uid: without Landlock's signal scope one past the hooks can signal another. Its own files (the caller's
uid, when not root) are the only ones a program without seccomp may chmod. Utime of a file it does not own is
refused by the kernel only. Disk use is bounded by disk_bytes where the work dir is private, else only by
file_size_bytes per file and the wall timeout.

The verdict. A whole program "passed" when it ran to its last line and exited 0: an early `sys.exit(0)`,
`os._exit(0)` or `raise SystemExit` is "failed". Its completion marker is a per-run nonce that its own process
holds, so a program that digs the nonce out of its interpreter (frames) can forge its own pass: a whole program's
pass is its own word. Code is therefore judged as a TestedSolution: the sandboxed child forks, before anything
untrusted runs, into the solution's process and the tests' process. The solution's process runs the solution and
then only answers calls; the tests' process runs the tests with each of the solution's functions replaced by a
proxy, and only plain data crosses between them (JSON over a socket pair: None, bool, int, float, complex, str,
bytes and containers of them). The tests' process alone holds the status pipe, and reads the nonce and the tests
from a pipe after the fork, so the solution's process holds none of the three: whatever it does, the tests pass
only if the values it returns are right, and an object that equals anything never reaches them. Both processes
have all the layers above, each its own rlimits; a violation in either is an error. The tests are trusted to be
tests (the verifier checks generated ones statically and by mutants). A work dir whose caller died before
deleting it is swept by the next caller's first run.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import fcntl
import functools
import json
import logging
import os
import re
import resource
import secrets
import selectors
import shutil
import signal
import site
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from acqsynth.verify import zygote as zygote_module
from acqsynth.verify.zygote import (_CLONE_NEW_NAMESPACES, _CLONE_NEWIPC, _CLONE_NEWNET, _CLONE_NEWNS, _CLONE_NEWUSER,
                                    _LL_EXECUTE, _LL_IOCTL_DEV, _LL_NET_BIND_TCP, _LL_NET_CONNECT_TCP, _LL_READ_DIR,
                                    _LL_READ_FILE, _LL_REFER, _LL_SCOPE_ABSTRACT_UNIX_SOCKET, _LL_SCOPE_SIGNAL,
                                    _LL_TRUNCATE, _LL_WRITE_FILE, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP,
                                    _SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_RESTRICT_SELF, _add_landlock_rule,
                                    _check, _enter_work_dir, _enter_zygote_namespaces, _seccomp_program)

Verdict = Literal["passed", "failed", "timeout", "error"]

_FLOOD_FACTOR = 16  # output beyond max_output_bytes is drained and dropped; this many times it is a flood
_STATUS_CAP = 64 * 1024
_TESTS_CAP = 2**20  # the most a pipe may hold without privilege (fs.pipe-max-size)
_WORK_DIR_PREFIX = "acqsynth-sandbox-"
_DRAIN_SECONDS = 1.0  # after the kill, how long to wait for pipes to reach EOF
_ZYGOTE_REPLY_SECONDS = 10.0  # a zygote slower than this to answer is stuck (stopped?) and is replaced
_PYTHON_FLAGS = ("-I", "-S", "-B", "-u", "-X", "utf8")
# One BLAS/OpenMP thread: on a many-core host their pools would otherwise hit max_processes at import.
_ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                **dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")}
# The sandbox's own uid and gid when the caller is root: no file outside the work dir is theirs, nothing else on a
# sane host runs as them, and the work dir (a private tmpfs) is the only place they own.
SANDBOX_UID = SANDBOX_GID = 2_147_483_646
_WORK_DIR_INODES = 16384
_READABLE_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/localtime", "/dev/null",
                   "/dev/zero", "/dev/urandom", "/dev/random", "/sys/devices/system/cpu")
_LIBRARY_PATHS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/lib32")  # the ELF loader must be executable
_SIGNAL_HINTS = {signal.SIGKILL: " (memory limit?)", signal.SIGSEGV: " (stack overflow?)",
                 signal.SIGSYS: " (a system call that the sandbox forbids)"}


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits. max_processes counts tasks (threads too), the main process included."""

    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 1024 * 2**20
    file_size_bytes: int = 1 * 2**20
    max_processes: int = 16
    max_open_files: int = 64
    max_output_bytes: int = 64 * 1024
    disk_bytes: int = 64 * 2**20  # the work dir's size, where it is a private tmpfs (held in memory)


@dataclass(frozen=True)
class TestedSolution:
    """A solution and the tests that judge it. They run in two sandboxed processes, and only plain data passes
    between them (arguments and return values: None, bool, int, float, complex, str, bytes and containers of
    them); so the verdict comes from a process the solution never ran in. The tests see each top-level function
    of the solution, called in the solution's process, and the modules it imported; not its classes or other
    values, and an argument the solution mutates is not mutated for the tests."""

    solution: str
    tests: str

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class SandboxResult:
    verdict: Verdict
    reason: str  # "" when passed, else a short human reason (the exception line, the limit, the blocked operation)
    stdout: str
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"


@dataclass(frozen=True)
class _Host:
    """The kernel layers this host grants, probed once per process."""

    unshare_flags: int
    ids: tuple[int, int] | None  # the programs' uid and gid, when they are not the caller's
    covers: dict[str, list[str]] | None  # as root: the zygote's namespaces and mount view (_enter_zygote_namespaces)
    landlock_abi: int
    cgroup_base: str | None
    seccomp: bytes | None  # the filter (_seccomp_filter)


@dataclass(frozen=True)
class _Outcome:
    status: int  # os.wait4 status
    cpu_seconds: float
    timed_out: bool
    flooded: bool
    stdout: bytes
    stderr: bytes
    status_lines: tuple[str, ...]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


@functools.cache
def _zygote_source() -> str:
    """The zygote's program: acqsynth/verify/zygote.py, then the call of its main function."""
    return f"{Path(zygote_module.__file__).read_text(encoding='utf-8')}\n_zygote_main()\n"


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _unshare(flags: int) -> None:
    _check(_libc().unshare(flags), "unshare")


def _restrict_self(ruleset_fd: int) -> None:
    _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(_libc().syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset_fd, 0), "landlock")


def _python_probe(preexec_fn: Callable[[], None]) -> bool:
    try:
        subprocess.run([sys.executable, "-I", "-S", "-c", ""], preexec_fn=preexec_fn, check=True, timeout=30,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _covers(paths: Sequence[str], uid: int, gid: int) -> dict[str, list[str]]:
    """For the paths that uid cannot reach, the outermost directory above each that it may not traverse, and the
    paths beneath it (a path inside another one is reached through it)."""
    covers: dict[str, list[str]] = {}
    for path in sorted(paths):
        if any(path == kept or path.startswith(kept + "/") for keeps in covers.values() for kept in keeps):
            continue
        parts = path.split("/")
        for depth in range(2, len(parts)):
            ancestor = "/".join(parts[:depth])
            status = os.stat(ancestor)
            bit = stat.S_IXUSR if status.st_uid == uid else stat.S_IXGRP if status.st_gid == gid else stat.S_IXOTH
            if not status.st_mode & bit:
                covers.setdefault(ancestor, []).append(path)
                break
    return covers


def _work_dir_options(limits: SandboxLimits, ids: tuple[int, int] | None) -> str:
    owner = f",uid={ids[0]},gid={ids[1]}" if ids else ""
    return f"size={limits.disk_bytes},nr_inodes={_WORK_DIR_INODES},mode=0700{owner}"


def _probe_unshare() -> tuple[int, tuple[int, int] | None, dict[str, list[str]] | None]:
    """The namespaces, ids and mount view of the strongest confinement this host grants: as root, programs get
    mount, network and IPC namespaces, a private work dir and the sandbox's own uid; otherwise a user namespace
    (where unprivileged ones are enabled) and a network namespace."""
    if os.geteuid() == 0:
        flags, ids = _CLONE_NEWNS | _CLONE_NEWIPC, (SANDBOX_UID, SANDBOX_GID)
        covers = _covers(sorted({*_readable_paths(), *_executable_paths(), *_site_packages()}), *ids)
        with tempfile.TemporaryDirectory() as workdir:
            workdir = os.path.realpath(workdir)
            open(os.path.join(workdir, "main.py"), "w").close()

            def confine() -> None:  # what the zygote, then its child, does before the program (as this new uid)
                _enter_zygote_namespaces(_libc(), covers)
                _enter_work_dir(_libc(), workdir, flags, list(ids), _work_dir_options(SandboxLimits(), ids))

            if _python_probe(confine):
                return flags, ids, covers
    for flags in (_CLONE_NEWUSER | _CLONE_NEWNET, _CLONE_NEWNET):
        if _python_probe(functools.partial(_unshare, flags)):
            return flags, None, None
    return 0, None, None


def _probe_seccomp() -> bytes | None:
    """The seccomp filter, if this host's kernel takes it and the interpreter runs under it."""
    program = _seccomp_filter()
    if program is None:
        return None
    fprog = _seccomp_program(program)

    def enter() -> None:
        _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(_libc().prctl(_PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0), "seccomp")

    return program if _python_probe(enter) else None


def _probe_landlock() -> int:
    """The Landlock ABI version, or 0 if there is none or the interpreter cannot start under our ruleset."""
    try:
        abi = _libc().syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), 1)  # 1: ..._VERSION
        ruleset_fd = _landlock_ruleset(abi) if abi > 0 else -1
        try:
            return abi if abi > 0 and _python_probe(functools.partial(_restrict_self, ruleset_fd)) else 0
        finally:
            if ruleset_fd >= 0:
                os.close(ruleset_fd)
    except (OSError, AttributeError):
        return 0


def _pids_cgroup_base() -> str | None:
    v1 = "/sys/fs/cgroup/pids"
    if os.path.isfile(os.path.join(v1, "cgroup.procs")):
        return v1
    try:
        with open("/sys/fs/cgroup/cgroup.subtree_control") as file:
            return "/sys/fs/cgroup" if "pids" in file.read().split() else None
    except OSError:
        return None


def _probe_cgroup() -> str | None:
    base = _pids_cgroup_base() if os.geteuid() == 0 else None
    if base is None:
        return None
    try:
        path = _make_cgroup(base, f"acqsynth-sandbox-probe-{os.getpid()}", 4)
    except OSError:
        return None
    try:
        with subprocess.Popen([sys.executable, "-I", "-S", "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE) as proc:
            try:
                _join_cgroup(path, proc.pid)
            finally:
                assert proc.stdin is not None
                proc.stdin.close()
        return base
    except OSError:
        return None
    finally:
        _remove_cgroup(path)


@functools.cache
def _host() -> _Host:
    landlock_abi = _probe_landlock()  # first: loads libc here, not in a forked probe child
    unshare_flags, ids, covers = _probe_unshare()
    _sweep_dead_work_dirs()
    return _Host(unshare_flags=unshare_flags, ids=ids, covers=covers, landlock_abi=landlock_abi,
                 cgroup_base=_probe_cgroup(), seccomp=_probe_seccomp())


@functools.cache
def _site_packages() -> tuple[str, ...]:
    return tuple(path for path in site.getsitepackages() if os.path.isdir(path))


@functools.cache
def _readable_paths() -> tuple[str, ...]:
    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, *_READABLE_PATHS}
    return tuple(sorted({os.path.realpath(p) for p in paths if os.path.exists(p)}))


@functools.cache
def _executable_paths() -> tuple[str, ...]:
    paths = {os.path.dirname(os.path.realpath(sys.executable)), *_LIBRARY_PATHS}
    return tuple(sorted({os.path.realpath(p) for p in paths if os.path.exists(p)}))


def _landlock_fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: execute .. make_sym
    for version, right in ((2, _LL_REFER), (3, _LL_TRUNCATE), (5, _LL_IOCTL_DEV)):
        if abi >= version:
            rights |= right
    return rights


def _landlock_ruleset(abi: int) -> int:
    """A ruleset for the child to complete with its work dir and enforce on itself; building it restricts nothing
    in this process."""
    fs = _landlock_fs_rights(abi)
    net = _LL_NET_BIND_TCP | _LL_NET_CONNECT_TCP if abi >= 4 else 0  # no TCP rule: no TCP at all
    scoped = _LL_SCOPE_ABSTRACT_UNIX_SOCKET | _LL_SCOPE_SIGNAL if abi >= 6 else 0
    attr = _RulesetAttr(fs, net, scoped)
    ruleset_fd = _check(_libc().syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                                        ctypes.c_size_t(ctypes.sizeof(attr)), 0), "landlock ruleset")
    try:
        _add_landlock_rule(_libc(), ruleset_fd, "/dev/null", (_LL_READ_FILE | _LL_WRITE_FILE | _LL_TRUNCATE) & fs)
        for path in _readable_paths():
            _add_landlock_rule(_libc(), ruleset_fd, path, _LL_READ_FILE | _LL_READ_DIR)
        for path in _executable_paths():
            _add_landlock_rule(_libc(), ruleset_fd, path, _LL_READ_FILE | _LL_READ_DIR | _LL_EXECUTE)
    except OSError:
        os.close(ruleset_fd)
        raise
    return ruleset_fd


# seccomp: the system calls a program may never make, by what they would reach. A program that makes one is killed
# (SIGSYS; verdict "error"), so catching the failure cannot hide the attempt.
_FORBIDDEN_SYSCALLS = {
    "file metadata": ("chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
                      "setxattr", "lsetxattr", "fsetxattr", "setxattrat", "removexattr", "lremovexattr",
                      "fremovexattr", "removexattrat"),
    "devices and mounts": ("mknod", "mknodat", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
                           "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "swapon", "swapoff"),
    "other processes": ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"),
    "namespaces": ("unshare", "setns"),
    "kernel interfaces": ("keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
                          "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
                          "init_module", "finit_module", "delete_module", "iopl", "ioperm", "name_to_handle_at",
                          "open_by_handle_at", "fanotify_init", "acct", "reboot", "syslog", "quotactl",
                          "sethostname", "setdomainname", "settimeofday", "clock_settime", "clock_adjtime",
                          "adjtimex", "vhangup"),
    "sockets": ("socket", "connect"),  # socketpair stays, for stream and seqpacket pairs only (below)
}
# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl). Elsewhere there is no seccomp layer (isolation_report).
_SYSCALL_NUMBERS_X86_64 = {
    "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "fchown": 93, "lchown": 94,
    "fchownat": 260, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "setxattrat": 463, "removexattr": 197,
    "lremovexattr": 198, "fremovexattr": 199, "removexattrat": 466, "mknod": 133, "mknodat": 259, "mount": 165,
    "umount2": 166, "pivot_root": 155, "chroot": 161, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "swapon": 167, "swapoff": 168,
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438, "unshare": 272,
    "setns": 308, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 246,
    "kexec_file_load": 320, "init_module": 175, "finit_module": 313, "delete_module": 176, "iopl": 172,
    "ioperm": 173, "name_to_handle_at": 303, "open_by_handle_at": 304, "fanotify_init": 300, "acct": 163,
    "reboot": 169, "syslog": 103, "quotactl": 179, "sethostname": 170, "setdomainname": 171, "settimeofday": 164,
    "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159, "vhangup": 153, "socket": 41, "connect": 42,
    "clone": 56, "clone3": 435, "socketpair": 53,
}
_AUDIT_ARCH_X86_64, _X32_SYSCALL_BIT = 0xC000003E, 0x40000000
_SOCK_STREAM, _SOCK_SEQPACKET, _SOCK_TYPE_MASK = 1, 5, 0xF


_BPF_LOAD, _BPF_JEQ, _BPF_JGE, _BPF_JSET, _BPF_AND, _BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
_SECCOMP_KILL_PROCESS, _SECCOMP_ALLOW, _SECCOMP_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
_Instruction = tuple[int, int, int, int]  # struct sock_filter: code, jump if true, jump if false, k


def _seccomp_filter() -> bytes | None:
    """The classic-BPF program of the seccomp layer (struct sock_filter[]), or None on an architecture without one.

    Besides the forbidden calls: clone with a namespace flag is killed, clone3 (whose flags BPF cannot read) fails
    with ENOSYS so that the C library falls back to clone for threads, and socketpair is allowed for stream and
    seqpacket pairs only (a datagram pair could sendto() a Unix socket outside by its path). The numbers are
    searched as a binary tree, so that each system call costs a few comparisons.
    """
    if os.uname().machine != "x86_64":
        return None
    kill: list[_Instruction] = [(_BPF_RET, 0, 0, _SECCOMP_KILL_PROCESS)]
    allow: list[_Instruction] = [(_BPF_RET, 0, 0, _SECCOMP_ALLOW)]
    numbers = _SYSCALL_NUMBERS_X86_64
    actions = {numbers[name]: kill for names in _FORBIDDEN_SYSCALLS.values() for name in names}
    actions[numbers["clone3"]] = [(_BPF_RET, 0, 0, _SECCOMP_ERRNO | errno.ENOSYS)]
    actions[numbers["clone"]] = [(_BPF_LOAD, 0, 0, 16), (_BPF_JSET, 0, 1, _CLONE_NEW_NAMESPACES), *kill, *allow]
    actions[numbers["socketpair"]] = [(_BPF_LOAD, 0, 0, 24), (_BPF_AND, 0, 0, _SOCK_TYPE_MASK),  # args[1]: the type
                                      (_BPF_JEQ, 1, 0, _SOCK_STREAM), (_BPF_JEQ, 0, 1, _SOCK_SEQPACKET), *allow, *kill]

    def decide(sorted_numbers: list[int]) -> list[_Instruction]:
        """With the call's number loaded: every path ends in a return."""
        if len(sorted_numbers) <= 3:
            code: list[_Instruction] = []
            for number in sorted_numbers:
                code += [(_BPF_JEQ, 0, len(actions[number]), number), *actions[number]]
            return code + allow
        middle = len(sorted_numbers) // 2
        below, above = decide(sorted_numbers[:middle]), decide(sorted_numbers[middle:])
        return [(_BPF_JGE, len(below), 0, sorted_numbers[middle]), *below, *above]

    program = [(_BPF_LOAD, 0, 0, 4), (_BPF_JEQ, 1, 0, _AUDIT_ARCH_X86_64), *kill,  # seccomp_data.arch
               (_BPF_LOAD, 0, 0, 0), (_BPF_JGE, 0, 1, _X32_SYSCALL_BIT), *kill,  # seccomp_data.nr; no x32 calls
               *decide(sorted(actions))]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def _make_cgroup(base: str, name: str, max_processes: int) -> str:
    path = os.path.join(base, name)
    os.mkdir(path)
    try:
        _set_pids_max(path, max_processes)
    except OSError:
        os.rmdir(path)
        raise
    return path


def _set_pids_max(path: str, max_processes: int) -> None:
    with open(os.path.join(path, "pids.max"), "w") as file:
        file.write(str(max_processes))


def _join_cgroup(path: str, pid: int) -> None:
    fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)


def _kill_cgroup(path: str, spare: int | None = None) -> bool:
    """SIGKILL every task in the cgroup but `spare` until none is left (False: some outlived every attempt);
    pids.max bounds how many a fork loop can add meanwhile."""
    for _ in range(400):
        try:
            with open(os.path.join(path, "cgroup.procs")) as file:
                pids = [int(pid) for pid in file.read().split() if int(pid) != spare]
        except OSError:
            return not os.path.exists(path)
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)
    return False


def _remove_cgroup(path: str) -> None:
    for _ in range(200):  # EBUSY until the killed tasks are gone
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def _rlimits(limits: SandboxLimits, host: _Host) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for each rlimit the child sets on itself."""
    rlimits = [
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes),
        (resource.RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    # The kernel never enforces it for uid 0. The sandbox's uid, shared by all programs running at once, is left to
    # the pids cgroup where there is one.
    if host.ids is None and os.geteuid() != 0 or host.ids is not None and host.cgroup_base is None:
        rlimits.append((resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes))
    return rlimits


class _Zygote:
    """The caller's end of one zygote. It runs one program at a time, so one thread uses it at a time."""

    def __init__(self, host: _Host) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {"readable": _readable_paths(), "site_packages": _site_packages(), "covers": host.covers,
                  "seccomp": host.seccomp.hex() if host.seccomp else None}
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, *_PYTHON_FLAGS, "-c", _zygote_source(), str(theirs.fileno()), json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd="/", env=_ENVIRONMENT,
                start_new_session=True, pass_fds=(theirs.fileno(),))
        ours.settimeout(_ZYGOTE_REPLY_SECONDS)
        self.control = ours
        self.cgroup: str | None = None
        if host.cgroup_base is not None:
            # Its own pids cgroup, which its children are born into: moving each child into a fresh one instead
            # costs an RCU grace period (about 5 ms) per program. It forks nothing before its first request.
            try:
                self.cgroup = _make_cgroup(host.cgroup_base, f"acqsynth-sandbox-{os.getpid()}-{self.proc.pid}", 1)
                _join_cgroup(self.cgroup, self.proc.pid)
            except OSError:
                self.close()
                raise

    def start(self, request: dict[str, object], fds: list[int], max_processes: int) -> tuple[int, int]:
        """Forks a child for the request; its pid and a pidfd (ours to close)."""
        if self.cgroup is not None:
            _set_pids_max(self.cgroup, max_processes + 1)  # + the zygote itself
        socket.send_fds(self.control, [json.dumps(request).encode()], fds)
        reply, pidfds, _, _ = socket.recv_fds(self.control, 64, 1, socket.MSG_CMSG_CLOEXEC)
        if not reply or len(pidfds) != 1:
            raise ConnectionError("the sandbox's zygote exited")
        return int(reply), pidfds[0]

    def kill_program(self) -> bool:
        """SIGKILLs every task in the cgroup but the zygote; False if some survived."""
        return self.cgroup is None or _kill_cgroup(self.cgroup, spare=self.proc.pid)

    def reusable(self) -> bool:
        """After reap: whether nothing of the program is left in the cgroup, not even a killed orphan that is still
        charged to it until reaped, so the next program gets all of pids.max."""
        if self.cgroup is None:
            return True
        try:
            with open(os.path.join(self.cgroup, "pids.current")) as file:
                return self.kill_program() and file.read().strip() == "1"
        except OSError:
            return False

    def reap(self) -> tuple[int, float]:
        """The wait status and CPU seconds of the child, which the caller has killed."""
        self.control.send(b"reap")
        reply = self.control.recv(64)
        if not reply:
            raise ConnectionError("the sandbox's zygote exited")
        status, cpu_seconds = reply.split()
        return int(status), float(cpu_seconds)

    def close(self) -> None:
        """Hangs up: the zygote kills its running program, if any, and exits (or is killed, if stuck)."""
        self.control.close()
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.cgroup is not None:
            _kill_cgroup(self.cgroup)
            _remove_cgroup(self.cgroup)


_zygotes_lock = threading.Lock()
_idle_zygotes: list[_Zygote] = []
_live_zygotes: set[_Zygote] = set()


def _checkout_zygote(host: _Host) -> tuple[_Zygote, bool]:
    """An idle zygote (reused: True) or a new one (False)."""
    with _zygotes_lock:
        if _idle_zygotes:
            return _idle_zygotes.pop(), True
    zygote = _Zygote(host)
    with _zygotes_lock:
        _live_zygotes.add(zygote)
    return zygote, False


def _checkin_zygote(zygote: _Zygote) -> None:
    with _zygotes_lock:
        _idle_zygotes.append(zygote)


def _discard_zygote(zygote: _Zygote) -> None:
    with _zygotes_lock:
        _live_zygotes.discard(zygote)
    zygote.close()


@atexit.register
def _close_zygotes() -> None:
    with _zygotes_lock:
        zygotes = list(_live_zygotes)
        _live_zygotes.clear()
        _idle_zygotes.clear()
    for zygote in zygotes:
        zygote.close()


def _forget_zygotes() -> None:
    """In a forked copy of this process: the zygotes are the parent's; using them too would garble both."""
    global _zygotes_lock
    _zygotes_lock = threading.Lock()  # another thread may have held it at the fork
    for zygote in _live_zygotes:
        zygote.control.close()  # our copy only: the parent's end stays open
    _live_zygotes.clear()
    _idle_zygotes.clear()


os.register_at_fork(after_in_child=_forget_zygotes)


def _start_program(host: _Host, request: dict[str, object], fds: list[int],
                   max_processes: int) -> tuple[_Zygote, int, int]:
    """Starts the program in an idle zygote or, if none is idle or the one taken fails (it died while idle), in a
    new one; returns the zygote, the child's pid and a pidfd."""
    while True:  # each retry drops an idle zygote, and a new one gets none
        zygote, reused = _checkout_zygote(host)
        try:
            return (zygote, *zygote.start(request, fds, max_processes))
        except BaseException as exc:
            _discard_zygote(zygote)  # hanging up makes it kill the child it may have started
            if not (reused and isinstance(exc, OSError)):
                raise


def _kill_program(pid: int, pidfd: int, zygote: _Zygote) -> None:
    """SIGKILLs the program's process group, its main process and every task in its cgroup."""
    # The zygote reaps the child only when told, after this: its pid and group id cannot have been reused.
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)  # it may not have reached setsid yet
    except ProcessLookupError:
        pass
    zygote.kill_program()


def _read(fd: int, kept: bytearray, cap: int) -> int:
    """Reads what is ready; returns the byte count (0 at EOF), keeping at most cap bytes."""
    data = os.read(fd, 65536)
    if len(kept) < cap:
        kept += data[: cap - len(kept)]
    return len(data)


def _supervise(pid: int, pidfd: int, pipes: tuple[int, int, int], limits: SandboxLimits, deadline: float,
               zygote: _Zygote) -> tuple[bool, bool, list[bytes]]:
    """Reads stdout, stderr and the status pipe until the child exits (timed_out, flooded: or not), kills what is
    left of it and drains the pipes; returns timed_out, flooded and what was kept of each pipe."""
    stdout, stderr, status = pipes
    caps = {stdout: limits.max_output_bytes, stderr: limits.max_output_bytes, status: _STATUS_CAP}
    kept = {fd: bytearray() for fd in caps}
    totals = dict.fromkeys(caps, 0)
    flood = limits.max_output_bytes * _FLOOD_FACTOR
    timed_out = flooded = False
    with selectors.DefaultSelector() as selector:
        for fd in caps:
            selector.register(fd, selectors.EVENT_READ)
        selector.register(pidfd, selectors.EVENT_READ)
        exited = False
        while not exited and not flooded:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in selector.select(remaining):
                if key.fd == pidfd:
                    exited = True
                    continue
                count = _read(key.fd, kept[key.fd], caps[key.fd])
                totals[key.fd] += count
                if count == 0:
                    selector.unregister(key.fd)
                elif key.fd != status and totals[key.fd] > flood:
                    flooded = True
        _kill_program(pid, pidfd, zygote)
        selector.unregister(pidfd)
        drain_until = time.monotonic() + _DRAIN_SECONDS
        while selector.get_map() and time.monotonic() < drain_until:
            for key, _ in selector.select(max(drain_until - time.monotonic(), 0)):
                if _read(key.fd, kept[key.fd], caps[key.fd]) == 0:
                    selector.unregister(key.fd)
    return timed_out, flooded, [bytes(kept[fd]) for fd in pipes]


def _resource_reason(exception: str, error_number: str, reason: str, limits: SandboxLimits) -> str | None:
    if exception == "MemoryError":
        return f"MemoryError: memory limit ({limits.memory_bytes // 2**20} MiB) reached"
    if error_number in (str(errno.EMFILE), str(errno.ENFILE)):
        return f"too many open files (limit {limits.max_open_files})"
    if error_number == str(errno.ENOSPC):
        return f"work dir size limit ({limits.disk_bytes} bytes) reached"
    if error_number == str(errno.EFBIG):
        return f"file size limit ({limits.file_size_bytes} bytes) exceeded"
    if (error_number == str(errno.EAGAIN) and exception == "BlockingIOError") or "can't start new thread" in reason:
        return f"process/thread limit ({limits.max_processes}) reached"
    return None


def _killed(number: int, cpu_seconds: float, limits: SandboxLimits, who: str) -> tuple[Verdict, str]:
    if number == signal.SIGXCPU or (number == signal.SIGKILL and cpu_seconds >= limits.cpu_seconds):
        return "timeout", f"CPU time limit ({limits.cpu_seconds} s) exceeded"
    return "error", f"{who}killed by signal {signal.Signals(number).name}{_SIGNAL_HINTS.get(number, '')}"


def _verdict(outcome: _Outcome, nonce: str, limits: SandboxLimits) -> tuple[Verdict, str]:
    records: dict[str, str] = {}
    violations = []
    for line in outcome.status_lines:
        kind, _, text = line.partition(" ")
        if kind == "violation":
            violations.append(text)
        else:
            records.setdefault(kind, text)
    if "setup" in records:
        return "error", f"sandbox could not start the program: {records['setup']}"
    if violations:
        return "error", violations[0]
    if outcome.flooded:
        return "error", f"output flood: more than {limits.max_output_bytes * _FLOOD_FACTOR} bytes on stdout or stderr"
    if outcome.timed_out:
        return "timeout", f"wall-clock timeout after {limits.wall_seconds} s"
    if os.WIFSIGNALED(outcome.status):
        return _killed(os.WTERMSIG(outcome.status), outcome.cpu_seconds, limits, "")
    if "solution" in records and "raised" not in records:  # the solution's process ended before the tests did
        status, cpu_seconds = (float(number) for number in records["solution"].split())
        if os.WIFSIGNALED(int(status)):
            return _killed(os.WTERMSIG(int(status)), cpu_seconds, limits, "the solution was ")
        how = " (sys.exit)" if "exit" in records else ""
        return "failed", f"the solution exited with status {os.WEXITSTATUS(int(status))}{how} before the tests ended"
    code = os.WEXITSTATUS(outcome.status)
    if "raised" in records:
        exception, _, error_number = records["raised"].partition(" ")
        reason = records.get("reason", exception)
        resource_reason = _resource_reason(exception, error_number, reason, limits)
        return ("error", resource_reason) if resource_reason else ("failed", reason)
    if code == 0:
        if f"completed {nonce}" in outcome.status_lines:
            return "passed", ""
        return "failed", "exited with status 0 before the end of the program"
    how = " (sys.exit)" if "exit" in records else ""
    return "failed", f"exited with status {code}{how}"


def _run(program: str | TestedSolution, limits: SandboxLimits, guarded: bool) -> SandboxResult:
    host = _host()
    tested = isinstance(program, TestedSolution)
    nonce = secrets.token_hex(16)
    workdir = os.path.realpath(tempfile.mkdtemp(prefix=_work_dir_prefix()))
    ours: list[int] = []  # read ends
    theirs: list[int] = []  # the child's ends (and the Landlock ruleset), closed once the zygote has them
    try:
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as file:
            file.write(program.solution if tested else program)
        for _ in range(3):  # stdout, stderr, status
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            ours.append(read_end)
            theirs.append(write_end)
        if tested:  # the nonce and the tests, for the tests' process alone (written now: the pipe holds them)
            tests = f"{nonce}\n{program.tests}".encode()
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            theirs.append(read_end)
            try:
                try:
                    capacity = fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _TESTS_CAP)
                except OSError:  # a host whose fs.pipe-max-size is lower
                    capacity = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
                if len(tests) > capacity:
                    return SandboxResult("error", f"tests of more than {capacity} bytes", "", "", 0.0)
                os.write(write_end, tests)
            finally:
                os.close(write_end)
        if host.landlock_abi:
            theirs.append(_landlock_ruleset(host.landlock_abi))
        request = {"workdir": workdir, "tested": tested, "guarded": guarded, "unshare": host.unshare_flags,
                   "ids": host.ids, "work_dir_options": _work_dir_options(limits, host.ids),
                   "work_dir_access": _landlock_fs_rights(host.landlock_abi),
                   "rlimits": _rlimits(limits, host)} | ({} if tested else {"nonce": nonce})
        started = time.monotonic()
        try:
            zygote, pid, pidfd = _start_program(host, request, theirs, limits.max_processes)
        except OSError as exc:
            return SandboxResult("error", f"sandbox could not start the program: {exc}", "", "",
                                 time.monotonic() - started)
        finally:
            while theirs:  # else the pipes never reach EOF
                os.close(theirs.pop())
        try:
            timed_out, flooded, (stdout, stderr, status_text) = _supervise(
                pid, pidfd, (ours[0], ours[1], ours[2]), limits, started + limits.wall_seconds, zygote)
            status, cpu_seconds = zygote.reap()
        except OSError as exc:
            _kill_program(pid, pidfd, zygote)
            _discard_zygote(zygote)
            return SandboxResult("error", f"sandbox failed around the program: {exc}", "", "",
                                 time.monotonic() - started)
        except BaseException:
            _kill_program(pid, pidfd, zygote)  # never leave it running
            _discard_zygote(zygote)
            raise
        finally:
            os.close(pidfd)
        seconds = time.monotonic() - started
        if zygote.reusable():
            _checkin_zygote(zygote)
        else:
            _discard_zygote(zygote)
        outcome = _Outcome(status, cpu_seconds, timed_out, flooded, stdout, stderr,
                           tuple(status_text.decode("utf-8", "replace").splitlines()))
        verdict, reason = _verdict(outcome, nonce, limits)
        return SandboxResult(verdict, reason, outcome.stdout.decode("utf-8", "replace"),
                             outcome.stderr.decode("utf-8", "replace"), seconds)
    finally:
        for fd in ours + theirs:
            os.close(fd)
        _remove_tree(workdir)


def _work_dir_prefix() -> str:
    """This process's work dirs are named by its pid and start time, so that a later caller can tell them from
    those of a live one and sweep them (_sweep_dead_work_dirs)."""
    return f"{_WORK_DIR_PREFIX}{os.getpid()}-{_start_time(os.getpid())}-"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rpartition(")")[2].split()[19]  # field 22: start time, in clock ticks since boot
    except (OSError, IndexError):
        return None


def _sweep_dead_work_dirs() -> None:
    """Removes the work dirs left in the temp dir by callers that died before removing them (killed, say)."""
    pattern = re.compile(rf"{re.escape(_WORK_DIR_PREFIX)}(\d+)-(\d+)-")
    try:
        names = os.listdir(tempfile.gettempdir())
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        if match and _start_time(int(match[1])) != match[2]:  # that process is gone (or its pid was reused)
            _remove_tree(os.path.join(tempfile.gettempdir(), name))


def _remove_tree(path: str) -> None:
    try:
        shutil.rmtree(path)
    except OSError:  # the program may have taken the permissions off its own directories
        for root, dirs, _ in os.walk(path):  # top-down: each directory is opened up before it is entered
            for name in dirs:
                if not os.path.islink(os.path.join(root, name)):  # chmod follows links: never outside the tree
                    os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(path, ignore_errors=True)


def run_program(program: str | TestedSolution, limits: SandboxLimits = SandboxLimits(),
                missing_layers: MissingLayers = "refuse") -> SandboxResult:
    """Runs one program (a whole Python file, or a solution and its tests) in a fresh sandbox; see the module
    docstring.

    Where the host lacks an essential layer (isolation_report()["weaker_guarantees"]), it raises
    SandboxUnavailable, or with missing_layers="warn" logs the weaker guarantee once and runs."""
    _accept_weaker_guarantees(missing_layers)
    return _run(program, limits, guarded=True)


def run_programs(programs: Sequence[str | TestedSolution], limits: SandboxLimits = SandboxLimits(), workers: int = 1,
                 missing_layers: MissingLayers = "refuse") -> list[SandboxResult]:
    """Runs the programs, each in its own sandbox, `workers` at a time; results in input order."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    _accept_weaker_guarantees(missing_layers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda program: _run(program, limits, guarded=True), programs))


def isolation_report() -> dict[str, object]:
    """Which containment layers are active on this host (the module docstring says what each guarantees), and the
    weaker guarantees run_program refuses unless told otherwise."""
    host = _host()
    root = os.geteuid() == 0
    if host.ids is not None and host.cgroup_base is not None:
        nproc = "by the pids cgroup"
    elif host.ids is not None:
        nproc = f"per uid {host.ids[0]} (all programs running at once)"
    elif root:
        nproc = "not enforced for root"
    else:
        nproc = "per sandbox" if host.unshare_flags & _CLONE_NEWUSER else "per uid (all of this user's processes)"
    return {
        "running_as_root": root,
        "program_uid": host.ids[0] if host.ids else os.geteuid(),
        "program_capabilities": "none" if host.ids or not root else "all of root's",
        "no_new_privs": True,
        "private_work_dir": bool(host.unshare_flags & _CLONE_NEWNS),
        "mount_view_covers": sorted(host.covers or ()),
        "network_namespace": host.covers is not None or bool(host.unshare_flags & _CLONE_NEWNET),
        "ipc_namespace": bool(host.unshare_flags & _CLONE_NEWIPC),
        "user_namespace": bool(host.unshare_flags & _CLONE_NEWUSER),
        "seccomp": host.seccomp is not None,
        "landlock_abi": host.landlock_abi,
        "landlock_filesystem": host.landlock_abi >= 1,
        "landlock_tcp": host.landlock_abi >= 4,
        "landlock_signal_scope": host.landlock_abi >= 6,
        "pids_cgroup": host.cgroup_base is not None,
        "rlimit_nproc": nproc,
        "socket_guard": True,
        "subprocess_guard": True,
        "signal_guard": True,
        "filesystem_guard": True,
        "readable_paths": list(_readable_paths()),
        "weaker_guarantees": _weaker_guarantees(host),
    }


def _weaker_guarantees(host: _Host) -> list[str]:
    """The essential layers this host lacks, each with what a program past the audit hooks could then do."""
    weaker = []
    if host.seccomp is None:
        weaker.append("no seccomp filter: a program past the audit hooks may chmod, chown and set xattrs on what its "
                      "uid owns, make devices and namespaces, connect to Unix sockets and use kernel interfaces "
                      "(io_uring, bpf, keyctl, ptrace) as far as its uid may")
    if os.geteuid() == 0 and host.ids is None:
        weaker.append("programs run as root: past the audit hooks one may change the metadata of every file it can "
                      "reach and leave set-id root files in its work dir")
    return weaker


class SandboxUnavailable(RuntimeError):
    """The host lacks an essential layer and the caller did not accept the weaker guarantee."""


MissingLayers = Literal["refuse", "warn"]


@functools.cache
def _accept_weaker_guarantees(missing_layers: MissingLayers) -> None:
    """Refuses (raises) or warns, once per process, where the host lacks an essential layer."""
    weaker = _weaker_guarantees(_host())
    if not weaker:
        return
    if missing_layers == "refuse":
        raise SandboxUnavailable(
            f"the code sandbox cannot give its full guarantee on this host: {'; '.join(weaker)}. "
            "Run on a host with these layers, or accept the weaker guarantee (verify.sandbox_missing_layers: warn).")
    logging.getLogger(__name__).warning("code sandbox runs with weaker guarantees: %s", "; ".join(weaker))

"""What runs inside the code sandbox: the zygote (fork server) and, in each forked child, the layers it enters and
the program it runs. acqsynth.verify.sandbox (the caller's side, which the module docstring there describes) starts
`python -I -S -B -u -X utf8 -c <this file's source> <control fd> <config>`, so this module imports only the
standard library and nothing of ours; the caller imports its constants and a few functions for its probes.
"""

from __future__ import annotations

import ctypes
import os
import socket
import stat
import types
from collections.abc import Callable

_MESSAGE_CAP = 16 * 2**20  # between a solution's process and its tests'
_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWUSER, _CLONE_NEWNET = 0x00020000, 0x08000000, 0x10000000, 0x40000000
_CLONE_NEW_NAMESPACES = 0x7E020000  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
_PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP = 4, 36, 38, 22
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT = 428, 429  # the same number on every architecture
_OPEN_TREE_CLONE, _AT_RECURSIVE, _AT_FDCWD, _MOVE_MOUNT_F_EMPTY_PATH = 1, 0x8000, -100, 4
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 0x4000, 1 << 18
# Landlock access rights (linux/landlock.h); each ABI version handles more of them.
_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_LL_REFER, _LL_TRUNCATE, _LL_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_LL_FILE_RIGHTS = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV
_LL_NET_BIND_TCP, _LL_NET_CONNECT_TCP = 1 << 0, 1 << 1
_LL_SCOPE_ABSTRACT_UNIX_SOCKET, _LL_SCOPE_SIGNAL = 1 << 0, 1 << 1


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def _enter_zygote_namespaces(libc: ctypes.CDLL, covers: dict[str, list[str]]) -> None:
    """As root, for the zygote and so for all its programs: a network namespace (one per zygote: it has only a down
    loopback, and a program's sockets die with it), and a mount namespace (each program's is a copy) where no mount
    propagates to or from the host and each cover, a directory that the sandbox's uid may not traverse (a 0700 home
    holding the interpreter, say), is hidden under an empty tmpfs holding just the paths beneath it that programs
    may read."""
    _check(libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET), "unshare the mount and network namespaces")
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make mounts private")
    for cover, kept in covers.items():
        trees = [_check(libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, os.fsencode(path),
                                     _OPEN_TREE_CLONE | _AT_RECURSIVE | os.O_CLOEXEC), f"open_tree {path}")
                 for path in kept]
        _check(libc.mount(b"tmpfs", os.fsencode(cover), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755"),
               f"cover {cover}")
        for path, tree in zip(kept, trees):
            os.makedirs(path, exist_ok=True)
            _check(libc.syscall(_SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, os.fsencode(path), _MOVE_MOUNT_F_EMPTY_PATH),
                   f"move_mount {path}")
            os.close(tree)


def _enter_work_dir(libc: ctypes.CDLL, workdir: str, unshare_flags: int, ids: list[int] | None,
                    work_dir_options: str) -> None:
    """In the program's process, before anything of the program: its namespaces; with a mount namespace (as root),
    its work dir becomes a fresh private tmpfs (nosuid, nodev, noexec; bounded) holding just main.py; with ids, it
    takes the sandbox's uid and gid, with no capabilities and no supplementary groups, before it writes main.py."""
    if unshare_flags:
        _check(libc.unshare(unshare_flags), "unshare")
    main = os.path.join(workdir, "main.py")
    private = bool(unshare_flags & _CLONE_NEWNS)
    if private:
        with open(main, "rb") as file:  # the caller's copy, which the tmpfs then hides
            source = file.read()
        _check(libc.mount(b"tmpfs", os.fsencode(workdir), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                          work_dir_options.encode()), "private work dir")
    os.chdir(workdir)
    if ids is not None:
        uid, gid = ids
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # from uid 0 to another: every capability is gone
    if private:
        with open(main, "xb") as file:
            file.write(source)


def _add_landlock_rule(libc: ctypes.CDLL, ruleset_fd: int, path: str, access: int) -> None:
    parent_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISDIR(os.fstat(parent_fd).st_mode):
            access &= _LL_FILE_RIGHTS  # the kernel rejects directory rights on a file
        rule = _PathBeneathAttr(access, parent_fd)
        _check(libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset_fd, 1, ctypes.byref(rule), 0), f"landlock {path}")
    finally:
        os.close(parent_fd)


def _seccomp_program(program: bytes) -> ctypes.Structure:
    """The struct sock_fprog for PR_SET_SECCOMP; it keeps `program` alive."""

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    return SockFprog(len(program) // 8, program)


def _audit_guard(workdir: str, readable_roots: tuple[str, ...], violations_fd: int) -> Callable[[str, tuple], None]:
    """The audit hook of a program's process (PEP 578; what it blocks: the module docstring).

    It reports each blocked operation on violations_fd (so catching the exception hides nothing) and raises. What
    it uses is bound here, once, before the program runs: the interpreter's own C functions and immutable values
    only, no global, no library function written in Python and no nested function. So a program that rebinds
    module attributes or builtins (os.path.realpath, os.lstat, isinstance) changes nothing in it, and what a
    program may see of it (its frame's locals, from a traceback or a callback) holds nothing to rewrite; the
    function itself is referenced by no frame. Tracing and profiling (which can rewrite a frame's variables),
    and listing the interpreter's objects (which would find the hook) are blocked.
    """
    import os

    getpid, getpgrp, getcwd, lstat, readlink, fspath, write = (os.getpid, os.getpgrp, os.getcwd, os.lstat,
                                                               os.readlink, os.fspath, os.write)
    # Unbound methods of the built-in types: a str subclass that overrides startswith cannot lie to them.
    is_instance, permission_error, int_type, str_type = isinstance, PermissionError, int, str
    starts_with, split, rpartition, concat, decode = (str.startswith, str.split, str.rpartition, str.__add__,
                                                     bytes.decode)
    owner = getpid()
    readable, writable = (*readable_roots, workdir), (workdir, "/dev/null")
    readable_prefixes = tuple(root.rstrip("/") + "/" for root in readable)
    writable_prefixes = tuple(root.rstrip("/") + "/" for root in writable)
    process_events = frozenset({"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                                "subprocess.Popen", "os.startfile"})
    network_events = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
                                "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
                                "socket.getnameinfo", "socket.sethostname"})
    # `import ctypes` itself stays allowed (numpy needs it; it dlopens only the running interpreter).
    native_events = frozenset({"ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
                               "ctypes.PyObj_FromPtr", "ctypes.string_at", "ctypes.wstring_at"})
    internals_events = frozenset({"sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers",
                                  "gc.get_referents"})
    # event -> the (path argument, its dir_fd argument or -1) of each path the event modifies: at most two
    write_events = (("os.remove", 0, 1, -1, -1), ("os.rmdir", 0, 1, -1, -1), ("os.rename", 0, 2, 1, 3),
                    ("os.mkdir", 0, 2, -1, -1), ("os.symlink", 1, 2, -1, -1), ("os.link", 1, 3, -1, -1),
                    ("os.chmod", 0, 2, -1, -1), ("os.chown", 0, 3, -1, -1), ("os.utime", 0, 3, -1, -1),
                    ("os.truncate", 0, -1, -1, -1), ("os.setxattr", 0, -1, -1, -1),
                    ("os.removexattr", 0, -1, -1, -1), ("shutil.rmtree", 0, -1, -1, -1))
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guard(event: str, args: tuple) -> None:
        denied = ""
        # The paths to check, as objects (a PathLike's __fspath__ is the program's code: called first, below).
        first = second = first_dir = second_dir = None
        writing = False
        if event in process_events:
            denied = "subprocess/fork blocked"
        elif event in network_events or (event == "socket.__new__" and args[1] != 1):  # 1: AF_UNIX (socketpair)
            denied = "network access blocked"
        elif event == "os.kill" and args[0] not in (0, getpid(), -getpgrp()):
            denied = "signalling other processes blocked"
        elif event == "os.killpg" and args[0] not in (0, getpgrp()):
            denied = "signalling other processes blocked"
        elif event in native_events or (event == "ctypes.dlopen" and args[0] is not None):
            denied = "native code via ctypes blocked"
        elif event in internals_events:
            denied = f"changing the interpreter's internals blocked: {event}"
        elif event == "open":
            first, mode, flags = args
            writing = bool((is_instance(flags, int_type) and flags > 0 and flags & write_flags) or (
                is_instance(mode, str_type) and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)))
        else:
            for name, path_at, dir_fd_at, other_at, other_dir_fd_at in write_events:
                if name == event:
                    first, first_dir = args[path_at], (args[dir_fd_at] if dir_fd_at >= 0 else None)
                    if other_at >= 0:
                        second, second_dir = args[other_at], args[other_dir_fd_at]
                    writing = True
        # Resolved to absolute paths without symlinks (as os.path.realpath, with the functions bound above only).
        first_name = second_name = None
        if not denied:
            for index in (0, 1):
                path, dir_fd = (first, first_dir) if index == 0 else (second, second_dir)
                if path is None or is_instance(path, int_type):
                    continue  # none, or an already open descriptor
                name = fspath(path)
                name = decode(name, "utf-8", "surrogateescape") if is_instance(name, bytes) else concat(name, "")
                if not starts_with(name, "/"):
                    base = readlink(f"/proc/self/fd/{dir_fd}") if is_instance(dir_fd, int_type) and dir_fd >= 0 \
                        else getcwd()
                    name = base + "/" + name
                pending = split(name, "/")
                pending.reverse()
                resolved, hops = "", 0
                while pending:
                    part = pending.pop()
                    if part == "" or part == ".":
                        continue
                    if part == "..":
                        resolved = rpartition(resolved, "/")[0]
                        continue
                    candidate = resolved + "/" + part
                    try:
                        link = (lstat(candidate).st_mode & 0o170000) == 0o120000 and hops < 40
                    except OSError:
                        link = False
                    if link:
                        hops += 1
                        target = readlink(candidate)
                        if starts_with(target, "/"):
                            resolved = ""
                        more = split(target, "/")
                        more.reverse()
                        pending.extend(more)
                    else:
                        resolved = candidate
                resolved = resolved or "/"
                if index == 0:
                    first_name = resolved
                else:
                    second_name = resolved
            for name in (first_name, second_name):
                if name is None or denied:
                    continue
                if writing and name not in writable and not starts_with(name, writable_prefixes):
                    denied = (f"write outside the work dir blocked: {name}" if event == "open"
                              else f"change outside the work dir blocked: {name}")
                elif event == "open" and name not in readable and not starts_with(name, readable_prefixes):
                    raise permission_error(13, "outside the sandbox's readable paths", name)
        if denied:
            if getpid() == owner:  # a forked copy must not speak for the program
                try:
                    write(violations_fd, ("violation " + denied).replace("\n", " ")[:1000].encode() + b"\n")
                except OSError:
                    pass
            raise permission_error(f"{denied} (sandbox)")

    return guard


def _main_module(path: str) -> types.ModuleType:
    """A fresh __main__ module for the program at path, as `python path` would make it."""
    import builtins
    import sys
    import types

    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv = [path]
    return module


def _execute(source: str, filename: str, module: types.ModuleType, report: Callable[[str, str], None]) -> None:
    """Runs source in module; an exception or an exit is reported (kind "exit", "raised", "reason"), its traceback
    printed on stderr, and raised as SystemExit."""
    import collections
    import linecache
    import traceback

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for the reason's line
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except SystemExit as exc:
        report("exit", repr(exc.code))
        raise
    except BaseException as exc:
        # Cheap first: after a MemoryError the traceback machinery may not fit.
        report("raised", f"{type(exc).__name__} {getattr(exc, 'errno', None)}")
        # The innermost frames only, without this function's: formatting a deep recursion's traceback takes seconds.
        frames: collections.deque = collections.deque(maxlen=100)
        frame = exc.__traceback__.tb_next if exc.__traceback__ else None
        while frame is not None:
            frames.append(frame)
            frame = frame.tb_next
        reason = traceback.format_exception_only(type(exc), exc)[-1].strip()
        if isinstance(exc, AssertionError) and not exc.args and frames:
            reason = f"AssertionError: {traceback.extract_tb(frames[-1])[-1].line}"
        report("reason", reason)
        traceback.print_exception(type(exc), exc, frames[0] if frames else None)
        raise SystemExit(1) from None


def _run_in_main(path: str, report: Callable[[str, str], None], nonce: str) -> None:
    """A whole program: it passes when it runs to its last line, which only this process can tell (see the module
    docstring for what that proves)."""

    module = _main_module(path)
    with open(path, encoding="utf-8", errors="surrogateescape") as file:
        source = file.read()
    _execute(source, path, module, report)
    report("completed", nonce)


def _encode(value: object, depth: int = 0) -> object:
    """value as JSON, if it is plain data: None, bool, int, float, str as themselves, lists as arrays; tuples,
    sets, frozensets, dicts, bytes and complex numbers as one-key objects. Exact types only: a subclass may
    override comparison, so an object that equals anything never reaches the tests."""
    kind = type(value)
    if depth > 100:
        raise ValueError("a value nested more than 100 deep")
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [_encode(item, depth + 1) for item in value]
    if kind in (tuple, set, frozenset):
        return {{tuple: "t", set: "s", frozenset: "f"}[kind]: [_encode(item, depth + 1) for item in value]}
    if kind is dict:
        return {"d": [[_encode(key, depth + 1), _encode(item, depth + 1)] for key, item in value.items()]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    raise TypeError(f"{kind.__name__} is not plain data (None, bool, int, float, complex, str, bytes, or a tuple, "
                    "list, set or dict of them)")


def _decode(value: object) -> object:
    """The inverse of _encode; ValueError for anything _encode does not make."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is list:
        return [_decode(item) for item in value]
    if type(value) is dict and len(value) == 1:
        ((tag, payload),) = value.items()
        if tag in ("t", "s", "f", "d", "c") and type(payload) is list:
            items = [_decode(item) for item in payload]
            if tag == "t":
                return tuple(items)
            if tag in ("s", "f"):
                return set(items) if tag == "s" else frozenset(items)
            if tag == "d" and all(type(item) is list and len(item) == 2 for item in items):
                return {key: item for key, item in items}
            if tag == "c" and len(items) == 2 and all(type(item) in (int, float) for item in items):
                return complex(*items)
        if tag == "b" and type(payload) is str:
            return bytes.fromhex(payload)
    raise ValueError("not a value that _encode makes")


def _send(channel: socket.socket, message: list) -> None:
    import json

    channel.sendall(json.dumps(message).encode() + b"\n")


def _next_message(buffer: bytearray) -> list | None:
    """Takes the first whole message (a JSON line) off buffer, or None if it holds none yet."""
    import json

    end = buffer.find(b"\n")
    if end < 0:
        if len(buffer) > _MESSAGE_CAP:
            raise ValueError(f"a message of more than {_MESSAGE_CAP} bytes")
        return None
    message = json.loads(bytes(buffer[:end]))
    del buffer[: end + 1]
    if type(message) is not list or not message:
        raise ValueError("a message that is not a non-empty list")
    return message


def _serve_solution(channel: socket.socket, path: str) -> None:
    """The solution's process: runs the solution, tells the tests' process which functions (and modules) it
    defines, then runs each call the tests make and answers with plain data (_encode). It holds neither the tests
    nor the nonce nor the status pipe, so nothing it does can make the tests pass but the right answers."""
    import os
    import types

    module = _main_module(path)
    with open(path, encoding="utf-8", errors="surrogateescape") as file:
        source = file.read()
    _execute(source, path, module, lambda kind, text: _send(channel, ["record", kind, text]))
    namespace = vars(module)
    functions = sorted(name for name, value in namespace.items() if not name.startswith("__") and isinstance(
        value, (types.FunctionType, types.BuiltinFunctionType)))
    modules = sorted([name, value.__name__] for name, value in namespace.items()
                     if isinstance(value, types.ModuleType) and not name.startswith("__"))
    _send(channel, ["ready", functions, modules])
    buffer = bytearray()
    while True:
        request = _next_message(buffer)
        if request is None:
            data = channel.recv(65536)
            if not data:
                os._exit(0)
            buffer += data
            continue
        if request[0] == "end":
            _send(channel, ["ended"])
            os._exit(0)
        _, name, args, kwargs = request
        try:
            result = namespace[name](*_decode(args), **_decode(kwargs))
        except Exception as exc:  # SystemExit and the like end this process, as they would end the program
            try:
                reply = ["raised", type(exc).__name__, getattr(exc, "errno", None), str(exc)[:1000]]
            except Exception:
                reply = ["raised", "Exception", None, "(an exception whose message cannot be shown)"]
        else:
            try:
                reply = ["value", _encode(result)]
            except (TypeError, ValueError, RecursionError) as exc:
                reply = ["raised", "TypeError", None, f"{name} returned a value that cannot reach the tests: {exc}"]
        _send(channel, reply)


def _test_solution(channel: socket.socket, violations: int, solution_pid: int, tests: str,
                   report: Callable[[str, str], None], nonce: str) -> None:
    """The tests' process: runs the tests with each function of the solution replaced by a proxy that calls it in
    the solution's process (arguments and results cross as plain data), forwards what the solution's process
    reports, and passes only if the tests run to their end. If the solution's process ends first, its end is
    reported (kind "solution": wait status and CPU seconds) and this process exits."""
    import builtins
    import importlib
    import os
    import select
    import sys
    import types

    buffer, pending = bytearray(), bytearray()

    def forward_violations(wait: bool) -> None:
        """Reports the violation lines of the solution's process; wait: read to EOF (it has ended)."""
        while wait or select.select([violations], [], [], 0)[0]:
            data = os.read(violations, 65536)
            if not data:
                return
            pending.extend(data)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                kind, _, text = line.decode("utf-8", "replace").partition(" ")
                if kind == "violation":
                    report("violation", text)

    def solution_ended() -> None:
        forward_violations(wait=True)
        _, status, usage = os.wait4(solution_pid, 0)
        report("solution", f"{status} {usage.ru_utime + usage.ru_stime}")
        os._exit(1)

    def receive() -> list:
        while True:
            try:
                message = _next_message(buffer)
            except ValueError as exc:
                raise RuntimeError(f"the solution's process sent something else than plain data: {exc}") from None
            if message is not None:
                return message
            ready = select.select([channel, violations], [], [])[0]
            if violations in ready:
                forward_violations(wait=False)
            if channel in ready:
                data = channel.recv(65536)
                if not data:
                    solution_ended()
                buffer.extend(data)

    def call(name: str, args: tuple, kwargs: dict) -> object:
        try:
            request = ["call", name, _encode(args), _encode(kwargs)]
        except (TypeError, ValueError) as exc:
            raise TypeError(f"an argument of {name} cannot reach the solution: {exc}") from None
        _send(channel, request)
        reply = receive()
        if reply[0] == "value" and len(reply) == 2:
            try:
                return _decode(reply[1])
            except (ValueError, TypeError) as exc:
                raise RuntimeError(f"the solution's process sent something else than plain data: {exc}") from None
        if reply[0] == "raised" and len(reply) == 4:
            kind = getattr(builtins, str(reply[1]), None)
            error: Exception = RuntimeError(f"{reply[1]}: {reply[3]}")
            if isinstance(kind, type) and issubclass(kind, Exception):
                try:  # the same built-in exception, where it can be made from a message alone
                    error = (kind(reply[2], reply[3]) if reply[2] is not None and issubclass(kind, OSError)
                             else kind(reply[3]))
                except TypeError:
                    pass
            raise error
        raise RuntimeError(f"the solution's process sent an unexpected {str(reply[0])[:40]!r}")

    def proxy(name: str) -> Callable:
        def function(*args, **kwargs):
            return call(name, args, kwargs)

        function.__name__ = function.__qualname__ = name
        return function

    ready = receive()
    while ready[0] == "record":  # the solution failed at its top level: its exception, exit status, reason
        if len(ready) == 3 and ready[1] in ("exit", "raised", "reason"):
            report(str(ready[1]), str(ready[2]))
        ready = receive()
    if ready[0] != "ready" or len(ready) != 3:
        raise RuntimeError("the solution's process did not say which functions it defines")
    module = types.ModuleType("__main__")
    module.__builtins__ = builtins
    for alias, name in ready[2]:  # what the solution imported, which tests often use too (math.isclose)
        try:
            setattr(module, str(alias), importlib.import_module(str(name)))
        except Exception:
            pass
    for name in ready[1]:
        setattr(module, str(name), proxy(str(name)))
    sys.modules["__main__"] = module
    _execute(tests, "<tests>", module, report)
    _send(channel, ["end"])
    while receive()[0] != "ended":
        pass
    forward_violations(wait=True)
    os.wait4(solution_pid, 0)
    report("completed", nonce)


def _zygote_main() -> None:
    """The zygote, run via `python -c` (its source is sent, it imports nothing of ours); see the module docstring.

    Above `serve()` runs once in the zygote; below it, only in a forked child, which enters the sandbox and runs
    the program. The child leaves through this function (return or SystemExit), so the interpreter ends it as it
    ends any script: non-daemon threads joined, atexit handlers run, output flushed.
    """
    import ctypes
    import gc
    import json
    import os
    import resource
    import signal
    import site
    import socket
    import sys

    # Imported once here rather than by every program that uses them (typing alone costs more than a fork).
    import math  # noqa: F401
    import re  # noqa: F401
    import typing  # noqa: F401

    control = socket.socket(fileno=int(sys.argv[1]))
    config = json.loads(sys.argv[2])
    # -S skipped site: its .pth files run code (an editable install's finder costs more than the interpreter's
    # start-up). The site-packages directories themselves stay importable, and exit()/quit() exist as usual.
    sys.path.extend(config["site_packages"])
    site.setquit()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # inherited by the children too
    # The programs' orphans come to us, to be reaped: zombies left to an init that never reaps them would keep
    # their pids charged to our pids cgroup.
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if config["covers"] is not None:
        _enter_zygote_namespaces(libc, config["covers"])
    seccomp = _seccomp_program(bytes.fromhex(config["seccomp"])) if config["seccomp"] else None
    gc.freeze()  # the children's collections then skip (and so do not copy-on-write) all of the above

    def reap_orphans() -> None:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass

    def serve() -> tuple[bytes, list[int]] | None:
        """In the zygote: serves requests until the caller hangs up (None). In a child: its request and fds."""
        while True:
            message, fds, _, _ = socket.recv_fds(control, 65536, 5)
            if not message:
                return None
            pid = os.fork()
            if pid == 0:
                control.close()
                return message, fds
            for fd in fds:
                os.close(fd)
            pidfd = os.pidfd_open(pid)  # our own unreaped child: certainly the right process
            try:
                socket.send_fds(control, [str(pid).encode()], [pidfd])
                told = control.recv(16)  # the caller kills the program, then says "reap"; b"": it is gone
            except OSError:
                told = b""
            finally:
                os.close(pidfd)
            if not told:  # never leave a program running without its supervisor
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                os.wait4(pid, 0)
                return None
            _, status, usage = os.wait4(pid, 0)
            reap_orphans()
            try:
                control.send(f"{status} {usage.ru_utime + usage.ru_stime}".encode())
            except OSError:
                return None

    job = serve()
    if job is None:
        return
    message, fds = job
    request = json.loads(message)
    tested = request["tested"]
    stdout, stderr, status_fd = fds[:3]
    tests_fd = fds[3] if tested else None
    ruleset = fds[4:] if tested else fds[3:]
    workdir = request["workdir"]
    main_pid = os.getpid()

    def report(kind: str, text: str) -> None:
        if os.getpid() == main_pid:  # a forked copy must not speak for the program
            try:
                os.write(status_fd, f"{kind} {text}".replace("\n", " ")[:1000].encode() + b"\n")
            except OSError:
                pass

    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        _enter_work_dir(libc, workdir, request["unshare"], request["ids"], request["work_dir_options"])
        os.environ.update(HOME=workdir, TMPDIR=workdir)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        for fd in ruleset:  # the work dir's rule only now: a rule on the path the tmpfs covers would not hold in it
            _add_landlock_rule(libc, fd, workdir, request["work_dir_access"])
            _check(libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, fd, 0), "landlock")
        low = 3  # close the ruleset and anything else of the zygote's
        for fd in sorted(fd for fd in (status_fd, tests_fd) if fd is not None):
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, os.sysconf("SC_OPEN_MAX"))
        # After unshare: in a new user namespace RLIMIT_NPROC then counts this sandbox's tasks only.
        for which, soft, hard in request["rlimits"]:
            resource.setrlimit(which, (soft, hard))
        if seccomp is not None:  # last: setting up needs calls that programs may not make
            _check(libc.prctl(_PR_SET_SECCOMP, 2, ctypes.byref(seccomp), 0, 0), "seccomp")  # 2: MODE_FILTER
        if tested:  # the solution's process, forked before anything untrusted runs; see _test_solution
            channel, solution_channel = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            violations, solution_violations = os.pipe()
            solution_pid = os.fork()
            if solution_pid == 0:
                for fd in (status_fd, tests_fd, channel.detach(), violations):
                    os.close(fd)
            else:
                solution_channel.close()
                os.close(solution_violations)
    except BaseException as exc:
        report("setup", f"{type(exc).__name__}: {exc}")
        os._exit(1)

    path = os.path.join(workdir, "main.py")
    if request["guarded"]:  # installed here, held by no variable: a program walking its frames cannot find it
        sys.addaudithook(_audit_guard(workdir, tuple(config["readable"]),
                                      solution_violations if tested and solution_pid == 0 else status_fd))
    if not tested:
        _run_in_main(path, report, request["nonce"])
    elif solution_pid == 0:
        _serve_solution(solution_channel, path)
    else:
        with open(tests_fd, "rb") as file:  # the nonce and the tests: never in the solution's process
            nonce, _, tests = file.read().decode().partition("\n")
        _test_solution(channel, violations, solution_pid, tests, report, nonce)


"""Hostile programs in the code sandbox: each is contained, with the right verdict, in bounded time, host untouched.

Most tests go through run_program (all layers). Tests named *_kernel run with the Python audit-hook guards off
(`_run(..., guarded=False)`), as a program that got past them would, to check the kernel layers on their own; they
skip where isolation_report() says this host lacks the layer. A program's parent is its zygote (the fork server);
the process that asked for the run, this test process, is CALLER.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import stat
import struct
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from acqsynth.verify import sandbox
from acqsynth.verify.sandbox import (SANDBOX_UID, SandboxLimits, SandboxResult, TestedSolution, _run, isolation_report,
                                     run_program, run_programs)

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=10.0, memory_bytes=512 * 2**20, file_size_bytes=64 * 1024,
                       max_processes=8, max_open_files=32, max_output_bytes=4096)
SHORT = replace(LIMITS, wall_seconds=1.5, cpu_seconds=30)  # for programs that never end: the wall clock stops them
REPORT = isolation_report()
CALLER = os.getpid()


def run(source: str, limits: SandboxLimits = LIMITS, guarded: bool = True) -> SandboxResult:
    result = _run(textwrap.dedent(source), limits, guarded)
    assert result.seconds < limits.wall_seconds + 5, result  # contained in bounded time
    return result


def run_tested(solution: str, tests: str, limits: SandboxLimits = LIMITS) -> SandboxResult:
    """Runs a solution and its tests as a TestedSolution (two processes; only plain data between them)."""
    result = _run(TestedSolution(textwrap.dedent(solution), textwrap.dedent(tests)), limits, True)
    assert result.seconds < limits.wall_seconds + 5, result
    return result


def needs(*layers: str):
    missing = [layer for layer in layers if not REPORT[layer]]
    return pytest.mark.skipif(bool(missing), reason=f"this host lacks {missing}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped (by init)


def subprocess_pid_that_exited() -> int:
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    return child


def processes_in(directory: str) -> list[int]:
    """Processes whose working directory is (under) directory: what a sandboxed program left running."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd.removesuffix(" (deleted)").startswith(directory) and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


# --- well-behaved programs -------------------------------------------------------------------------------------


def test_well_behaved_program_passes_and_its_output_is_captured():
    result = run("""
        import collections, json, math
        def add(a, b):
            return a + b
        assert add(2, 3) == 5
        assert math.isclose(sum(collections.Counter("aab").values()), 3)
        print(json.dumps({"ok": True}))
    """)
    assert result.verdict == "passed" and result.passed and result.reason == ""
    assert result.stdout == '{"ok": true}\n'


def test_failing_assert_is_failed_with_the_assertion_in_the_reason():
    result = run("""
        def add(a, b):
            return a - b
        assert add(2, 2) == 4 - 4
        assert add(2, 3) == 5
    """)
    assert result.verdict == "failed" and not result.passed
    assert result.reason == "AssertionError: assert add(2, 3) == 5"
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(("source", "reason"), [
    ("assert 1 == 2, 'one is not two'", "AssertionError: one is not two"),
    ("1 / 0", "ZeroDivisionError: division by zero"),
    ("def broken(:\n    pass", "SyntaxError: invalid syntax"),
    ("def f(n):\n    return f(n + 1)\nf(0)", "RecursionError: maximum recursion depth exceeded"),
    ("input()", "EOFError: EOF when reading a line"),  # stdin is empty: no hang
])
def test_exceptions_and_syntax_errors_are_failed(source, reason):
    result = run(source)
    assert result.verdict == "failed"
    assert result.reason.startswith(reason)


@pytest.mark.parametrize("exit_early", [
    "import sys; sys.exit(0)",
    "import os; os._exit(0)",
    "raise SystemExit",
    "exit()",
    "import atexit, os; atexit.register(os._exit, 0)",  # turns the failing assert's exit status into 0
])
def test_exiting_early_before_the_appended_tests_is_not_a_pass(exit_early):
    result = run(f"def solve():\n    return 1\n{exit_early}\nassert solve() == 2\n")
    assert result.verdict == "failed"


def test_forged_completion_marker_is_not_a_pass():
    result = run("""
        import os
        for fd in range(3, 32):
            try:
                os.write(fd, b"completed 00000000000000000000000000000000\\n")
            except OSError:
                pass
        os._exit(0)
    """)
    assert result.verdict == "failed"


# --- a solution and its tests: the verdict comes from the tests' process ---------------------------------------

SOLUTION = """
    import math
    def add(a, b):
        return a + b
"""


def test_tested_solution_passes_and_its_tests_see_its_functions_and_imports():
    result = run_tested(SOLUTION, """
        assert add(2, 3) == 5
        assert math.isclose(add(0.1, 0.2), 0.3)
        def check(candidate):
            assert candidate(*[1, 1]) == 2 and candidate(a="x", b="y") == "xy"
        check(add)
        print("tests ran")
    """)
    assert result.verdict == "passed", result
    assert result.stdout == "tests ran\n"


def test_plain_data_crosses_both_ways_unchanged():
    value = "(None, True, 2**70, -0.5, float('inf'), 1 - 2j, 'é', b'\\x00', [1, (2,)], {3: {4}}, frozenset({5}))"
    result = run_tested("def echo(x):\n    return x\n", f"""
        value = {value}
        assert echo(value) == value and type(echo(value)[-1]) is frozenset and echo([]) == []
    """)
    assert result.verdict == "passed", result


@pytest.mark.parametrize(("solution", "reason"), [
    ("def add(a, b):\n    return a - b", "AssertionError: assert add(2, 3) == 5"),
    ("def add(a, b):\n    return a / 0", "ZeroDivisionError: division by zero"),
    ("raise ValueError('at import')\ndef add(a, b):\n    return a + b", "ValueError: at import"),
    ("def add(a, b):\n    import os\n    os._exit(0)", "the solution exited with status 0 before the tests ended"),
    ("import sys\nsys.exit(0)", "the solution exited with status 0 (sys.exit) before the tests ended"),
    ("def add(a, b):\n    raise SystemExit(0)", "the solution exited with status 0 before the tests ended"),
    # An object that equals anything would pass any assert: it is not plain data, so it never reaches the tests.
    ("class Anything:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Anything()",
     "TypeError: add returned a value that cannot reach the tests: Anything is not plain data"),
    ("def add(a, b):\n    return (x for x in ())", "TypeError: add returned a value that cannot reach the tests"),
])
def test_a_solution_that_does_not_compute_the_answers_fails(solution, reason):
    result = run_tested(solution, "assert add(2, 3) == 5\n")
    assert result.verdict == "failed" and result.reason.startswith(reason), result


def test_a_solution_cannot_forge_the_tests_pass():
    # The attack that forges a whole program's pass: the nonce and the status pipe from the bootstrap's frames, a
    # completion line on every descriptor, then exit 0. The solution's process holds neither.
    result = run_tested("""
        import os, sys
        found = {}
        frame = sys._getframe()
        while frame is not None:
            found.update((name, frame.f_locals[name]) for name in ("nonce", "status_fd") if name in frame.f_locals)
            frame = frame.f_back
        def add(a, b):
            line = f"completed {found.get('nonce', '0' * 32)}\\n".encode()
            for fd in range(3, 64):
                try:
                    os.write(fd, line)
                except OSError:
                    pass
            os._exit(0)
        print(sorted(found))
    """, "assert add(2, 3) == 6\n")
    assert result.verdict == "failed", result
    assert result.stdout == "['status_fd']\n"  # a number only, of a descriptor closed in this process: no nonce


def test_the_solutions_process_holds_no_status_pipe_and_never_the_tests():
    result = run_tested("""
        import os, stat
        kinds = []
        for fd in range(3, 1024):
            try:
                kinds.append(stat.S_IFMT(os.fstat(fd).st_mode))
            except OSError:
                pass
        print(sorted(kinds) == sorted([stat.S_IFIFO, stat.S_IFSOCK]), "20, " + "30" in open(__file__).read())
        def add(a, b):
            return a + b
    """, "assert add(20, 30) == 50\n")
    assert result.verdict == "passed", result
    assert result.stdout == "True False\n"  # its channel and its violations pipe; the tests are not in its file


def test_a_blocked_operation_in_the_solution_is_an_error_even_if_caught():
    result = run_tested("""
        import os
        def add(a, b):
            try:
                os.system("true")
            except PermissionError:
                pass
            return a + b
    """, "assert add(2, 3) == 5\n")
    assert result.verdict == "error" and result.reason == "subprocess/fork blocked", result


def test_a_solution_over_its_cpu_limit_times_out():
    result = run_tested("def add(a, b):\n    while True:\n        pass\n", "assert add(2, 3) == 5\n",
                    replace(LIMITS, cpu_seconds=1))
    assert result.verdict == "timeout" and result.reason == "CPU time limit (1 s) exceeded", result


# --- the audit hooks cannot be switched off from inside ---------------------------------------------------------

REWRITE_CLOSURES = """
    def rewrite(namespace):
        # Empties every closure cell of every function in namespace: the hook's sets of blocked events included.
        for value in list(namespace.values()):
            for cell in getattr(value, "__closure__", None) or ():
                try:
                    kind = type(cell.cell_contents)
                    cell.cell_contents = kind() if kind in (set, frozenset, dict, tuple, list, str) else None
                except Exception:
                    pass
"""
STILL_BLOCKED = """
    import os
    try:
        os.system("true")
        print("escaped")
    except PermissionError:
        print("blocked")
"""


@pytest.mark.parametrize("attack", [
    REWRITE_CLOSURES + """
    import sys
    frame = sys._getframe()
    while frame is not None:  # the bootstrap's frames held the hook
        rewrite(frame.f_locals)
        frame = frame.f_back
    """,
    REWRITE_CLOSURES + """
    try:
        os.rmdir("/usr")
    except PermissionError as error:  # the hook's own frame, from the traceback of what it blocked
        tb = error.__traceback__
        while tb is not None:
            rewrite(tb.tb_frame.f_locals)
            tb = tb.tb_next
    """,
    """
    import builtins, os.path
    os.path.realpath = lambda path, **kwargs: os.getcwd()  # the functions the hook calls, rebound
    os.lstat = os.stat = lambda *args, **kwargs: None
    builtins.isinstance = builtins.any = lambda *args: False
    """,
    """
    import gc
    hooks = [value for value in gc.get_objects() if getattr(value, "__name__", "") == "guard"]
    """,
    """
    import sys
    sys.settrace(lambda *args: None)  # a tracer may rewrite a running frame's variables
    """,
], ids=["frames", "traceback", "rebound functions", "gc", "settrace"])
def test_the_audit_hooks_survive_attempts_to_switch_them_off(attack):
    source = "import os\n" + textwrap.dedent(attack)
    result = run(f"try:\n{textwrap.indent(source, '    ')}\nexcept Exception:\n    pass\n"
                 + textwrap.dedent(STILL_BLOCKED))
    assert result.stdout.endswith("blocked\n") and "escaped" not in result.stdout, result
    assert result.verdict == "error", result


# --- time ------------------------------------------------------------------------------------------------------


def test_infinite_loop_is_stopped_by_the_wall_clock():
    result = run("while True:\n    pass", SHORT)
    assert result.verdict == "timeout" and result.reason == "wall-clock timeout after 1.5 s"


def test_busy_cpu_loop_is_stopped_by_the_cpu_limit():
    result = run("while True:\n    pass", replace(LIMITS, cpu_seconds=1))
    assert result.verdict == "timeout" and result.reason == "CPU time limit (1 s) exceeded"


def test_program_ignoring_sigterm_and_sigxcpu_is_still_killed():
    result = run("""
        import signal, time
        for sig in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        while True:
            time.sleep(0.05)
    """, SHORT)
    assert result.verdict == "timeout"


def test_non_daemon_thread_outliving_main_times_out():
    result = run("""
        import threading, time
        threading.Thread(target=time.sleep, args=(1000,)).start()
        print("main done", flush=True)
    """, SHORT)
    assert result.verdict == "timeout" and result.stdout == "main done\n"


def test_daemon_thread_dies_with_the_program(tmp_path):
    late = tmp_path / "late.txt"
    result = run(f"""
        import os, threading, time
        def later():
            time.sleep(0.5)
            open({str(late)!r}, "w").write("still running")
        threading.Thread(target=later, daemon=True).start()
        print(os.getcwd())
    """)
    assert result.verdict == "passed"
    time.sleep(1.0)
    assert not late.exists()
    assert processes_in(result.stdout.strip()) == []


# --- processes and signals -------------------------------------------------------------------------------------


def test_fork_bomb_is_blocked():
    result = run("import os\nwhile True:\n    os.fork()")
    assert result.verdict == "error" and result.reason == "subprocess/fork blocked"


def test_fork_bomb_that_catches_the_refusal_is_still_an_error():
    result = run("""
        import os
        for _ in range(1000):
            try:
                os.fork()
            except PermissionError:
                pass
    """)
    assert result.verdict == "error" and result.reason == "subprocess/fork blocked"


@pytest.mark.skipif(not (REPORT["pids_cgroup"] or REPORT["rlimit_nproc"] == "per sandbox"),
                    reason="no kernel cap on this sandbox's processes on this host")
def test_fork_bomb_kernel_is_capped():
    result = run("import os\nwhile True:\n    os.fork()", guarded=False)
    assert result.verdict == "error" and result.reason.startswith("process/thread limit")


@pytest.mark.parametrize("spawn", [
    "import subprocess; subprocess.run(['true'])",
    "import os; os.system('true')",
    "import os; os.popen('true').read()",
    "import os; os.execv('/bin/sh', ['sh', '-c', 'true'])",
    "import os; os.posix_spawn('/bin/true', ['true'], {})",
    "import multiprocessing; multiprocessing.Process(target=print).start()",
    "import pty; pty.fork()",
])
def test_spawning_processes_is_blocked(spawn):
    result = run(spawn)
    assert result.verdict == "error" and result.reason == "subprocess/fork blocked"


def test_double_forked_daemon_is_blocked(tmp_path):
    late = tmp_path / "daemon.txt"
    result = run(f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(0.5)
                open({str(late)!r}, "w").write("daemon")
            os._exit(0)
    """)
    assert result.verdict == "error" and result.reason == "subprocess/fork blocked"
    time.sleep(1.0)
    assert not late.exists()


@needs("pids_cgroup")
def test_double_forked_daemon_kernel_is_killed_with_the_sandbox():
    result = run("""
        import os, time
        child = os.fork()
        if child == 0:
            os.setsid()  # leaves the sandbox's process group
            if os.fork() == 0:
                while True:
                    time.sleep(0.1)
            os._exit(0)
        os.waitpid(child, 0)
        time.sleep(0.2)
        print(os.getcwd())
    """, guarded=False)
    assert result.verdict == "passed", result
    assert processes_in(result.stdout.strip()) == []


@pytest.mark.parametrize("signal_parent", [
    f"os.kill({CALLER}, signal.SIGTERM)",
    f"os.kill({CALLER}, signal.SIGKILL)",
    f"os.killpg(os.getpgid({CALLER}), signal.SIGKILL)",
    "os.kill(os.getppid(), signal.SIGKILL)",  # the zygote
    "os.killpg(os.getpgid(os.getppid()), signal.SIGSTOP)",
    pytest.param("os.kill(-1, signal.SIGKILL)", marks=needs("landlock_signal_scope")),  # two layers before risking it
])
def test_signalling_the_caller_or_the_zygote_is_blocked(signal_parent):
    result = run(f"import os, signal\n{signal_parent}\nprint('sent')")
    assert result.verdict == "error" and result.reason == "signalling other processes blocked"
    assert "sent" not in result.stdout  # and this test process is still here to check it


@needs("landlock_signal_scope")
def test_signalling_the_caller_kernel_is_denied():
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: received.append(True))
    try:
        result = run(f"import os, signal\nos.kill({CALLER}, signal.SIGUSR1)", guarded=False)
        time.sleep(0.2)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert result.verdict == "failed" and result.reason.startswith("PermissionError")
    assert received == []


@needs("landlock_signal_scope")
def test_signalling_the_zygote_kernel_is_denied():
    result = run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", guarded=False)
    assert result.verdict == "failed" and result.reason.startswith("PermissionError")
    assert run("print('still served')").stdout == "still served\n"


def test_program_may_signal_itself():
    result = run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert result.verdict == "error" and result.reason.startswith("killed by signal SIGKILL")


# --- memory, files, output -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bomb", [
    "x = bytearray(8 * 2**30)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(2**24))",
])
def test_memory_bomb_hits_the_memory_limit(bomb):
    result = run(bomb)
    assert result.verdict == "error" and result.reason.startswith("MemoryError: memory limit (512 MiB)")


def test_huge_file_write_hits_the_file_size_limit():
    result = run("""
        with open("big.bin", "wb") as file:
            for _ in range(100):
                file.write(b"x" * 65536)
    """)
    assert result.verdict == "error" and result.reason == "file size limit (65536 bytes) exceeded"


def test_opening_many_files_hits_the_open_files_limit():
    result = run("files = [open(f'f{i}.txt', 'w') for i in range(1000)]")
    assert result.verdict == "error" and result.reason == "too many open files (limit 32)"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_flood_is_bounded(stream):
    result = run(f"import sys\nwhile True:\n    sys.{stream}.write('x' * 10000)")
    assert result.verdict == "error" and result.reason.startswith("output flood")
    assert len(getattr(result, stream)) <= LIMITS.max_output_bytes


def test_output_beyond_the_cap_is_truncated_not_fatal():
    result = run("print('y' * 20000)")
    assert result.verdict == "passed" and result.stdout == "y" * LIMITS.max_output_bytes


@pytest.mark.parametrize("recursion", [
    "import sys\nsys.setrecursionlimit(10**5)\ndef f(n):\n    return f(n + 1) + 1\nf(0)",
    # through C (sorted's key) every level uses the C stack: a segfault, not a RecursionError
    "import sys\nsys.setrecursionlimit(10**6)\ndef f(n):\n    return sorted([0], key=lambda _: f(n + 1))\nf(0)",
])
def test_deep_recursion_is_contained(recursion):
    result = run(recursion)
    assert result.verdict in ("failed", "error") and result.reason


# --- file system, environment, network -------------------------------------------------------------------------


@pytest.mark.parametrize("write", [
    "open(TARGET, 'w').write('pwned')",
    "import os; os.close(os.open(TARGET, os.O_WRONLY | os.O_CREAT))",
    "import pathlib; pathlib.Path(TARGET).write_text('pwned')",
    "import shutil; open('x', 'w').close(); shutil.copy('x', TARGET)",
    "import os; open('x', 'w').close(); os.rename('x', TARGET)",
    "import os; os.symlink('/etc/passwd', TARGET)",
])
def test_writes_outside_the_work_dir_are_blocked(tmp_path, write):
    target = tmp_path / "pwned.txt"
    result = run(f"TARGET = {str(target)!r}\n{write}")
    assert result.verdict == "error" and "outside the work dir blocked" in result.reason
    assert not os.path.lexists(target)


@pytest.mark.parametrize("delete", [
    "import os; os.remove(KEEP)",
    "import os; os.rename(KEEP, 'stolen')",
    "import shutil; shutil.rmtree(os.path.dirname(KEEP))",
    "import os; os.truncate(KEEP, 0)",
    "open(KEEP, 'w').close()",
])
def test_deleting_or_changing_files_outside_the_work_dir_is_blocked(tmp_path, delete):
    keep = tmp_path / "keep" / "keep.txt"
    keep.parent.mkdir()
    keep.write_text("precious")
    result = run(f"import os\nKEEP = {str(keep)!r}\n{delete}")
    assert result.verdict == "error" and "outside the work dir blocked" in result.reason
    assert keep.read_text() == "precious"


@needs("landlock_filesystem")
def test_writes_and_deletes_outside_the_work_dir_kernel_are_denied(tmp_path):
    keep, target = tmp_path / "keep.txt", tmp_path / "pwned.txt"
    keep.write_text("precious")
    for program in (f"open({str(target)!r}, 'w')", f"import os; os.remove({str(keep)!r})",
                    f"import os; os.rename({str(keep)!r}, 'stolen')", "open('/tmp/acqsynth-sandbox-escape', 'w')"):
        result = run(program, guarded=False)
        assert result.verdict == "failed" and result.reason.startswith("PermissionError"), program
    assert keep.read_text() == "precious" and not target.exists()
    assert not os.path.exists("/tmp/acqsynth-sandbox-escape")


@pytest.mark.parametrize("guarded", [True, pytest.param(False, marks=needs("landlock_filesystem"))])
def test_reading_secret_files_outside_the_sandbox_is_denied(tmp_path, guarded):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    secret.chmod(0o644)  # world-readable: file permissions alone would not stop it
    result = run(f"print(open({str(secret)!r}).read())", guarded=guarded)
    assert result.verdict == "failed" and result.reason.startswith("PermissionError")
    assert "TOP-SECRET-7f3a" not in result.stdout + result.stderr


def test_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("ACQSYNTH_TEST_SECRET", "hunter2-env-secret")
    result = run("""
        import os
        print(sorted(os.environ.items()))
        assert os.environ["HOME"] == os.getcwd()
        for pid in (CALLER, os.getppid()):
            try:
                print(open(f"/proc/{pid}/environ", "rb").read())
            except OSError as exc:
                print("environment denied:", type(exc).__name__)
    """.replace("CALLER", str(CALLER)))
    assert result.verdict == "passed", result
    assert "hunter2-env-secret" not in result.stdout and "ACQSYNTH_TEST_SECRET" not in result.stdout
    assert result.stdout.count("environment denied") == 2


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.3)
    yield server
    server.close()


def assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        server.accept()


@pytest.mark.parametrize("connect", [
    "import socket; socket.create_connection(('127.0.0.1', PORT), timeout=1)",
    "import urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{PORT}/', timeout=1)",
    "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', PORT))",
    "import socket; socket.getaddrinfo('example.com', 80)",
])
def test_network_connections_are_blocked(listener, connect):
    result = run(f"PORT = {listener.getsockname()[1]}\n{connect}")
    assert result.verdict == "error" and result.reason == "network access blocked"
    assert_no_connection(listener)


@pytest.mark.skipif(not (REPORT["network_namespace"] or REPORT["landlock_tcp"]), reason="no kernel network block")
def test_network_connection_kernel_is_denied(listener):
    result = run(f"import socket\nsocket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), timeout=1)",
                 guarded=False)
    if REPORT["seccomp"]:  # socket() itself is forbidden
        assert result.verdict == "error" and "SIGSYS" in result.reason, result
    else:
        assert result.verdict == "failed" and result.reason.startswith(("PermissionError", "OSError", "ConnectionRef"))
    assert_no_connection(listener)


def test_socketpair_inside_the_program_is_allowed():
    result = run("""
        import asyncio
        async def main():
            await asyncio.sleep(0)
            return 3
        assert asyncio.run(main()) == 3
    """)
    assert result.verdict == "passed", result


@pytest.mark.parametrize("native", [
    "import ctypes\nctypes.CDLL(None).fork()",
    "import ctypes\nctypes.CDLL('libc.so.6')",
    "import ctypes\nctypes.c_char.from_address(id(0)).value",
])
def test_native_code_through_ctypes_is_blocked(native):
    result = run(native)
    assert result.verdict == "error" and result.reason == "native code via ctypes blocked"


def test_numpy_still_imports_ctypes_and_works():
    result = run("import numpy as np\nassert np.linalg.inv(2 * np.eye(2))[0, 0] == 0.5")
    assert result.verdict == "passed", result


@pytest.mark.skipif(REPORT["program_capabilities"] != "none" and not REPORT["user_namespace"],
                    reason="programs run as root: they may raise rlimits")
def test_program_cannot_raise_its_own_limits():
    result = run("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1000, 1000))")
    assert result.verdict == "failed" and result.reason.startswith("ValueError")


def test_work_dirs_of_dead_callers_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess_pid_that_exited()
    left = [tmp_path / f"acqsynth-sandbox-{dead}-{start}-x" for start in ("1", "2")]
    ours = tmp_path / f"{sandbox._work_dir_prefix()}y"
    other = tmp_path / "acqsynth-sandbox-unrelated"
    for path in (*left, ours, other):
        (path / "sub").mkdir(parents=True)
    sandbox._sweep_dead_work_dirs()
    assert not any(path.exists() for path in left) and ours.exists() and other.exists()


def test_work_dir_is_fresh_and_deleted_afterwards():
    program = """
        import os
        print(os.getcwd(), sorted(os.listdir(".")))
        os.makedirs("made/inner")
        open("made/inner/f.txt", "w").write("x")
    """
    first, second = run(program), run(program)
    assert first.verdict == second.verdict == "passed", (first, second)
    (first_dir, first_listing), (second_dir, second_listing) = (r.stdout.split(" ", 1) for r in (first, second))
    assert first_dir != second_dir
    assert first_listing.strip() == second_listing.strip() == "['main.py']"
    assert not os.path.exists(first_dir) and not os.path.exists(second_dir)


# --- API -------------------------------------------------------------------------------------------------------


def test_run_programs_keeps_input_order_with_concurrent_workers():
    sources = ["assert True", "assert False", "import os; os.fork()", "print('last')"]
    results = run_programs(sources, LIMITS, workers=2)
    assert [r.verdict for r in results] == ["passed", "failed", "error", "passed"]
    assert results[3].stdout == "last\n"
    with pytest.raises(ValueError):
        run_programs(sources, LIMITS, workers=0)


def test_concurrent_workers_share_at_most_one_zygote_each():
    results = run_programs(["import os, time\ntime.sleep(0.05)\nprint(os.getppid())"] * 8, LIMITS, workers=2)
    assert all(r.passed for r in results), results
    assert len({r.stdout for r in results}) <= 2


def test_run_program_defaults_contain_a_timeout():
    result = run_program("import time\ntime.sleep(60)", SandboxLimits(wall_seconds=1.0))
    assert result.verdict == "timeout" and result.seconds < 6


def test_isolation_report_names_the_active_layers():
    assert REPORT["socket_guard"] is True
    assert REPORT["subprocess_guard"] and REPORT["signal_guard"] and REPORT["filesystem_guard"]


def _namespaces_of_a_running_program() -> dict[str, str]:
    """The namespaces (as /proc/<pid>/ns links, read from outside) of a sandboxed program while it sleeps."""
    marker = "namespace_probe_4711"
    runner = threading.Thread(target=run_program, args=(f"import time\n{marker} = 1\ntime.sleep(3)", LIMITS))
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for proc in Path("/proc").iterdir():
                try:
                    if proc.name.isdigit() and (proc / "cwd").resolve().name.startswith("acqsynth-sandbox") \
                            and b"main.py" in (proc / "cmdline").read_bytes():
                        return {kind: os.readlink(proc / "ns" / kind) for kind in ("net", "ipc", "mnt")}
                except OSError:
                    continue
            time.sleep(0.05)
        raise AssertionError("no sandboxed program found running")
    finally:
        runner.join()


def test_reported_namespaces_are_the_programs_own():
    ours = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "ipc", "mnt")}
    theirs = _namespaces_of_a_running_program()
    assert (theirs["net"] != ours["net"]) == REPORT["network_namespace"]
    assert (theirs["ipc"] != ours["ipc"]) == REPORT["ipc_namespace"]
    assert (theirs["mnt"] != ours["mnt"]) == REPORT["private_work_dir"]


# --- the zygote (fork server) ----------------------------------------------------------------------------------


def test_programs_share_no_state_through_the_zygote():
    first = run("""
        import builtins, math, os, sys, typing
        math.pi = 3
        typing.LEAK = builtins.LEAK = True
        sys.modules["leak"] = math
        os.environ["LEAK"] = "1"
        print(os.getppid())
    """)
    second = run("""
        import builtins, math, os, sys, typing
        assert math.pi > 3.14 and not hasattr(typing, "LEAK") and not hasattr(builtins, "LEAK")
        assert "leak" not in sys.modules and "LEAK" not in os.environ
        print(os.getppid())
    """)
    assert first.passed and second.passed, (first, second)
    assert first.stdout == second.stdout  # the same zygote served both: each got a fresh copy of it


def test_program_holds_no_descriptor_but_its_pipes():
    result = run("""
        import os, stat
        kinds = {}
        for fd in range(1024):
            try:
                kinds[fd] = stat.S_IFMT(os.fstat(fd).st_mode)
            except OSError:
                pass
        print(len(kinds), sorted(set(kinds.values()) - {stat.S_IFCHR}))
    """)
    assert result.passed, result
    # stdin (/dev/null), stdout, stderr and the status pipe; not the zygote's socket, nor anything else of it
    assert result.stdout == f"4 {[stat.S_IFIFO]}\n"


def test_dead_zygote_is_replaced():
    first = run("import os\nprint(os.getppid())")
    os.kill(int(first.stdout), signal.SIGKILL)
    second = run("import os\nprint(os.getppid())")
    assert second.passed and second.stdout != first.stdout


def test_zygotes_end_at_exit_and_leave_nothing_behind():
    run_programs(["import time\ntime.sleep(0.05)"] * 4, LIMITS, workers=2)
    zygotes = list(sandbox._live_zygotes)
    assert zygotes
    sandbox._close_zygotes()  # what atexit runs
    for zygote in zygotes:
        assert zygote.proc.returncode is not None
        assert zygote.cgroup is None or not os.path.exists(zygote.cgroup)
    assert run("print('restarted')").stdout == "restarted\n"


def test_zygote_whose_caller_hangs_up_kills_the_running_program(tmp_path):
    (tmp_path / "main.py").write_text("import time\ntime.sleep(60)")
    zygote = sandbox._Zygote(replace(sandbox._host(), cgroup_base=None))
    read_end, write_end = os.pipe()
    request = {"workdir": str(tmp_path.resolve()), "tested": False, "nonce": "0", "guarded": True, "unshare": 0,
               "ids": None, "work_dir_options": "", "work_dir_access": 0, "rlimits": []}
    try:
        pid, pidfd = zygote.start(request, [write_end, write_end, write_end], LIMITS.max_processes)
    finally:
        os.close(write_end)
    try:
        zygote.close()
        assert select.select([pidfd], [], [], 5.0)[0]  # it exited
        assert not alive(pid)
    finally:
        os.close(pidfd)
        os.close(read_end)


def test_failing_to_enter_a_layer_is_an_error_not_a_weaker_sandbox(monkeypatch):
    host = sandbox._host()
    monkeypatch.setattr(sandbox, "_host", lambda: replace(host, unshare_flags=host.unshare_flags | 1))  # EINVAL
    result = run("print('ran')")
    assert result.verdict == "error" and result.reason.startswith("sandbox could not start the program: OSError")
    assert result.stdout == ""


# --- metadata, privilege, devices, kernel interfaces ------------------------------------------------------------
# Each attack runs with the audit hooks on and off (off: as a program that got past them would); the host is checked
# afterwards: modes, owners, mtimes and xattrs of what the program could reach, and no set-id file left anywhere.

HOOKS = pytest.mark.parametrize("guarded", [True, False], ids=["hooks", "kernel"])
NUMBERS = sandbox._SYSCALL_NUMBERS_X86_64


@dataclass(frozen=True)
class Host:
    """Files outside the work dir that a program can name: one in a private dir, one it may read (in the
    interpreter's installation), and a directory."""

    private: Path
    readable: Path
    directory: Path

    def state(self) -> dict[str, tuple]:
        return {str(path): (path.stat().st_mode, path.stat().st_uid, path.stat().st_gid, path.stat().st_mtime_ns,
                            sorted(os.listxattr(path))) for path in (self.private, self.readable, self.directory)}


@pytest.fixture
def host(tmp_path):
    private = tmp_path / "private.txt"
    private.write_text("host")
    private.chmod(0o600)
    directory = tmp_path / "directory"
    directory.mkdir(mode=0o755)
    readable = Path(sys.prefix) / f"acqsynth-test-{os.getpid()}-{time.monotonic_ns()}.py"
    readable.write_text("x = 1\n")
    readable.chmod(0o644)
    files = Host(private, readable, directory)
    before = files.state()
    yield files
    try:
        assert files.state() == before  # untouched
    finally:
        readable.unlink()
    assert not setid_files_under(tempfile.gettempdir(), "acqsynth-sandbox-")


def setid_files_under(root: str, prefix: str) -> list[str]:
    found = []
    for entry in Path(root).iterdir():
        if entry.name.startswith(prefix):
            found += [str(p) for p in entry.rglob("*") if p.lstat().st_mode & (stat.S_ISUID | stat.S_ISGID)]
    return found


def syscall(name: str, *args: int | str) -> str:
    """A program making one raw system call through ctypes (the audit hooks refuse ctypes; the kernel layers must
    refuse the call)."""
    return f"import ctypes\nctypes.CDLL(None, use_errno=True).syscall({NUMBERS[name]}, {', '.join(map(repr, args))})"


def assert_refused(result: SandboxResult, guarded: bool, hook_reason: str = "") -> None:
    """Refused with the right verdict: by the audit hooks (their reason), else by seccomp (killed, SIGSYS)."""
    if guarded and hook_reason:
        assert result.verdict == "error" and hook_reason in result.reason, result
    else:
        assert result.verdict == "error" and "SIGSYS" in result.reason, result


# (name, program with the host's paths as PRIVATE, READABLE, DIRECTORY, reason the audit hooks give or "")
METADATA_ATTACKS = [
    ("chmod a private file outside", "import os; os.chmod(PRIVATE, 0o777)", "change outside the work dir blocked"),
    ("chmod a directory outside", "import os; os.chmod(DIRECTORY, 0)", "change outside the work dir blocked"),
    ("fchmod a readable file setuid", "import os; os.fchmod(os.open(READABLE, os.O_RDONLY), 0o4777)", ""),
    ("fchmodat through a dir fd", "import os; os.chmod(os.path.basename(READABLE), 0o777, "
     "dir_fd=os.open(os.path.dirname(READABLE), os.O_RDONLY))", "change outside the work dir blocked"),
    ("chown a readable file", f"import os; os.chown(READABLE, {SANDBOX_UID}, {SANDBOX_UID})",
     "change outside the work dir blocked"),
    ("fchown a readable file", "import os; os.fchown(os.open(READABLE, os.O_RDONLY), 0, 0)", ""),
    ("setxattr outside", "import os; os.setxattr(PRIVATE, 'user.pwned', b'1')", "change outside the work dir blocked"),
    ("fsetxattr a readable file", "import os; os.setxattr(os.open(READABLE, os.O_RDONLY), 'user.pwned', b'1')", ""),
    ("removexattr outside", "import os; os.removexattr(DIRECTORY, 'user.none')", "change outside the work dir blocked"),
    ("file capability on a copy", "import os, shutil; shutil.copyfile(READABLE, 'x'); "
     "os.setxattr('x', 'security.capability', bytes(20))", ""),
    ("chmod a copy of a shell setuid", "import os, shutil; shutil.copyfile('/bin/sh', 'sh'); os.chmod('sh', 0o4755)",
     ""),
]


@HOOKS
@pytest.mark.skipif(not REPORT["seccomp"], reason="this host lacks the seccomp layer")
@pytest.mark.parametrize(("attack", "hook_reason"), [(a[1], a[2]) for a in METADATA_ATTACKS],
                         ids=[a[0] for a in METADATA_ATTACKS])
def test_metadata_changes_are_refused(host, attack, hook_reason, guarded):
    program = (f"PRIVATE, READABLE, DIRECTORY = {str(host.private)!r}, {str(host.readable)!r}, "
               f"{str(host.directory)!r}\n{attack}")
    assert_refused(run(program, replace(LIMITS, file_size_bytes=2**21), guarded), guarded, hook_reason)  # a shell fits


@HOOKS
def test_utime_of_a_readable_host_file_is_refused(host, guarded):
    result = run(f"import os; os.utime({str(host.readable)!r}, (0, 0))", guarded=guarded)
    if guarded:
        assert result.verdict == "error" and "change outside the work dir blocked" in result.reason, result
    else:  # not the owner: the kernel refuses
        assert result.verdict == "failed" and result.reason.startswith("PermissionError"), result


@HOOKS
@pytest.mark.skipif(not REPORT["private_work_dir"], reason="this host lacks the private work dir")
def test_a_hard_link_of_a_host_file_cannot_be_made_to_change_it(host, guarded):
    result = run(f"import os; os.link({str(host.readable)!r}, 'link'); os.utime('link', (0, 0))", guarded=guarded)
    assert result.verdict == "failed" and "Invalid cross-device link" in result.reason, result


@HOOKS
@pytest.mark.skipif(not REPORT["private_work_dir"], reason="this host lacks the private work dir")
def test_a_set_id_file_is_the_sandbox_uids_on_a_nosuid_mount_the_host_never_sees(host, guarded):
    """Creating a setuid file needs no chmod (open's mode carries the bit; a later write by a non-root uid would
    clear it): it must belong to the sandbox's unprivileged uid, lie on a nosuid mount, and stay invisible to the
    host, during the run and after."""
    seen_by_host: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not seen_by_host:
            for entry in Path(tempfile.gettempdir()).glob("acqsynth-sandbox-*"):
                seen_by_host.extend(str(p) for p in entry.rglob("*") if p.name != "main.py")
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = run("""
        import os, time
        os.close(os.open('sh', os.O_WRONLY | os.O_CREAT, 0o4755))
        status = os.stat('sh')
        print(oct(status.st_mode & 0o7777), status.st_uid, os.statvfs('.').f_flag & os.ST_NOSUID != 0)
        time.sleep(1.5)  # for the host to look
    """, guarded=guarded)
    watcher.join()
    assert result.passed, result
    mode, owner, nosuid = result.stdout.split()
    assert int(mode, 8) & stat.S_ISUID and int(owner) == SANDBOX_UID != 0 and nosuid == "True", result.stdout
    assert seen_by_host == []


# (name, program, reason the audit hooks give or "")
PRIVILEGE_AND_KERNEL_ATTACKS = [
    ("mknod a memory device", "import os; os.mknod('mem', 0o600 | 0o020000, os.makedev(1, 1))", ""),
    ("mkfifo", "import os; os.mkfifo('fifo')", ""),
    # The hooks let AF_UNIX sockets be made (socketpair needs it): seccomp refuses these, with the hooks on too.
    ("connect to a unix socket outside", "import socket; socket.socket(socket.AF_UNIX).connect(SOCKET)", ""),
    ("datagram pair sendto a unix socket outside",
     "import socket; socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)[0].sendto(b'x', SOCKET)", ""),
    ("netlink socket", "import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)", "network access blocked"),
    ("mount a tmpfs", syscall("mount", "none", "/tmp", "tmpfs", 0, 0), "native code via ctypes blocked"),
    ("unshare a user namespace", syscall("unshare", 0x10000000), "native code via ctypes blocked"),
    ("clone into a new user namespace", syscall("clone", 0x10000000 | 17, 0, 0, 0, 0),
     "native code via ctypes blocked"),
    ("setns into the zygote's namespaces", syscall("setns", 0, 0), "native code via ctypes blocked"),
    ("ptrace the zygote", "import ctypes, os\nctypes.CDLL(None).syscall(NUMBERS['ptrace'], 16, os.getppid(), 0, 0)",
     "native code via ctypes blocked"),
    ("process_vm_readv the zygote", syscall("process_vm_readv", 1, 0, 0, 0, 0, 0), "native code via ctypes blocked"),
    ("keyctl", syscall("keyctl", 0, -3, 0), "native code via ctypes blocked"),
    ("add_key", syscall("add_key", "user", "k", 0, 0, -3), "native code via ctypes blocked"),
    ("bpf", syscall("bpf", 5, 0, 0), "native code via ctypes blocked"),
    ("io_uring_setup", syscall("io_uring_setup", 8, 0), "native code via ctypes blocked"),
    ("userfaultfd", syscall("userfaultfd", 0), "native code via ctypes blocked"),
    ("perf_event_open", syscall("perf_event_open", 0, 0, -1, -1, 0), "native code via ctypes blocked"),
    ("open_by_handle_at", syscall("open_by_handle_at", -100, 0, 0), "native code via ctypes blocked"),
    ("init_module", syscall("init_module", 0, 0, ""), "native code via ctypes blocked"),
    ("chroot", syscall("chroot", "/tmp"), "native code via ctypes blocked"),
    ("sethostname", syscall("sethostname", "pwned", 5), "native code via ctypes blocked"),
]


@pytest.fixture
def unix_listener(tmp_path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = tmp_path / "host.sock"
    server.bind(str(path))
    server.listen(1)
    server.settimeout(0.3)
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "host.dgram"))
    receiver.settimeout(0.3)
    yield server, receiver
    server.close()
    receiver.close()


@HOOKS
@pytest.mark.skipif(not REPORT["seccomp"], reason="this host lacks the seccomp layer")
@pytest.mark.parametrize(("attack", "hook_reason"), [(a[1], a[2]) for a in PRIVILEGE_AND_KERNEL_ATTACKS],
                         ids=[a[0] for a in PRIVILEGE_AND_KERNEL_ATTACKS])
def test_privilege_devices_and_kernel_interfaces_are_refused(host, unix_listener, attack, hook_reason, guarded):
    server, receiver = unix_listener
    target = server.getsockname() if "DGRAM" not in attack else receiver.getsockname()
    program = f"SOCKET = {target!r}\nNUMBERS = {NUMBERS!r}\n{attack}"
    assert_refused(run(program, guarded=guarded), guarded, hook_reason)
    assert_no_connection(server)
    with pytest.raises(TimeoutError):
        receiver.recv(1)


@HOOKS
@pytest.mark.skipif(REPORT["program_capabilities"] != "none", reason="programs run as root on this host")
def test_programs_hold_no_privilege(guarded):
    result = run("""
        import os
        for become in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.setgroups([0])):
            try:
                become()
                print("became root")
            except PermissionError:
                pass
        print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
    """, guarded=guarded)
    assert result.passed, result
    assert result.stdout == f"{SANDBOX_UID} {SANDBOX_UID} {SANDBOX_UID} []\n"


@pytest.mark.skipif(REPORT["program_capabilities"] != "none", reason="programs run as root on this host")
def test_programs_have_no_capabilities_and_no_new_privs():
    result = run("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        data = (ctypes.c_uint32 * 6)()
        assert libc.syscall(125, header, data) == 0  # capget
        print(list(data), libc.prctl(39, 0, 0, 0, 0))  # PR_GET_NO_NEW_PRIVS
    """, guarded=False)
    assert result.passed, result
    assert result.stdout == "[0, 0, 0, 0, 0, 0] 1\n"


@pytest.mark.skipif(not REPORT["ipc_namespace"], reason="this host lacks the IPC namespace")
def test_sysv_shared_memory_does_not_outlive_its_program():
    make = run("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.shmget(0x5EED, 4096, 0o1666))  # IPC_CREAT | 0666
    """, guarded=False)
    assert make.passed and int(make.stdout) >= 0, make
    find = run("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.shmget(0x5EED, 0, 0), ctypes.get_errno())
    """, guarded=False)
    assert find.passed and find.stdout.split()[0] == "-1", find  # ENOENT: a fresh IPC namespace


@pytest.mark.skipif(not REPORT["private_work_dir"], reason="this host lacks the private work dir")
def test_work_dir_size_is_bounded():
    limits = replace(LIMITS, disk_bytes=2 * 2**20, file_size_bytes=2**20)
    result = run("""
        for i in range(8):
            with open(f"f{i}", "wb") as file:
                file.write(bytes(2**20 - 1))
    """, limits)
    assert result.verdict == "error" and result.reason == f"work dir size limit ({2 * 2**20} bytes) reached", result


@pytest.mark.skipif(not REPORT["seccomp"], reason="this host lacks the seccomp layer")
def test_threads_and_stream_socketpairs_still_work_under_seccomp():
    result = run("""
        import socket, threading
        out = []
        worker = threading.Thread(target=out.append, args=(1,))
        worker.start()
        worker.join()
        for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
            left, right = socket.socketpair(socket.AF_UNIX, kind)
            left.send(b"x")
            out.append(right.recv(1))
        print(out)
    """, guarded=False)
    assert result.passed, result
    assert result.stdout == "[1, b'x', b'x']\n"


def run_filter(program: bytes, number: int, args: tuple[int, ...] = (0,) * 6, arch: int = 0xC000003E) -> int:
    """What the classic-BPF program returns for one system call (the subset of BPF the filter uses)."""
    data = struct.pack("=iIQ6Q", number, arch, 0, *args)
    instructions = list(struct.iter_unpack("=HBBI", program))
    accumulator, pc = 0, 0
    while True:
        code, jump_true, jump_false, k = instructions[pc]
        pc += 1
        if code == 0x20:
            accumulator = struct.unpack_from("=I", data, k)[0]
        elif code == 0x54:
            accumulator &= k
        elif code == 0x06:
            return k
        else:
            taken = {0x15: accumulator == k, 0x35: accumulator >= k, 0x45: bool(accumulator & k)}[code]
            pc += jump_true if taken else jump_false


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter exists for x86_64 only")
def test_seccomp_filter_decides_every_system_call_as_declared():
    program = sandbox._seccomp_filter()
    kill, allow = 0x80000000, 0x7FFF0000
    forbidden = {NUMBERS[name] for names in sandbox._FORBIDDEN_SYSCALLS.values() for name in names}
    for number in range(600):
        expected = kill if number in forbidden else allow
        if number not in (NUMBERS["clone"], NUMBERS["clone3"], NUMBERS["socketpair"]):
            assert run_filter(program, number) == expected, number
    assert run_filter(program, NUMBERS["clone3"]) == 0x00050000 | 38  # ENOSYS: the C library falls back to clone
    assert run_filter(program, NUMBERS["clone"], (0x3D0F00,) + (0,) * 5) == allow  # pthread_create's flags
    assert run_filter(program, NUMBERS["clone"], (0x10000000 | 17,) + (0,) * 5) == kill
    for kind, expected in ((1, allow), (5, allow), (2, kill), (3, kill), (1 | 0x80000, allow)):
        assert run_filter(program, NUMBERS["socketpair"], (1, kind, 0, 0, 0, 0)) == expected, kind
    assert run_filter(program, 0x40000000 | 1) == kill  # the x32 ABI
    assert run_filter(program, 1, arch=0x40000003) == kill  # i386 calls


@pytest.mark.skipif(not REPORT["seccomp"], reason="this host lacks the seccomp layer")
def test_every_forbidden_system_call_kills_the_program():
    names = sorted({name for names in sandbox._FORBIDDEN_SYSCALLS.values() for name in names})
    results = {name: run(syscall(name, -1, 0, 0, 0, 0, 0), guarded=False) for name in names}
    assert {name: result.reason for name, result in results.items() if "SIGSYS" not in result.reason} == {}


@pytest.mark.parametrize("missing", ["seccomp", "ids"])
def test_a_missing_essential_layer_refuses_to_run_unless_the_weaker_guarantee_is_accepted(monkeypatch, caplog,
                                                                                           missing):
    host = sandbox._host()
    weaker = replace(host, seccomp=None) if missing == "seccomp" else replace(host, ids=None)
    if missing == "ids" and os.geteuid() != 0:
        pytest.skip("only root callers need the sandbox's uid")
    monkeypatch.setattr(sandbox, "_host", lambda: weaker)
    sandbox._accept_weaker_guarantees.cache_clear()
    try:
        assert isolation_report()["weaker_guarantees"]
        with pytest.raises(sandbox.SandboxUnavailable, match="verify.sandbox_missing_layers: warn"):
            run_program("print('ran')", LIMITS)
        with pytest.raises(sandbox.SandboxUnavailable):
            run_programs(["print('ran')"], LIMITS)
        with caplog.at_level("WARNING", logger=sandbox.__name__):
            assert run_program("print('ran')", LIMITS, missing_layers="warn").stdout == "ran\n"
        assert "weaker guarantees" in caplog.text
    finally:
        sandbox._accept_weaker_guarantees.cache_clear()
        sandbox._close_zygotes()  # they were started with the weaker host


def test_covers_hide_the_directories_the_sandbox_uid_cannot_traverse():
    with tempfile.TemporaryDirectory() as top:  # directly in /tmp: no untraversable directory above it
        check_covers(Path(top))


def check_covers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "python" / "lib").mkdir(parents=True)
    (tmp_path / "open" / "lib").mkdir(parents=True)
    home.chmod(0o700)
    tmp_path.chmod(0o755)
    paths = [str(home / "python"), str(home / "python" / "lib"), str(tmp_path / "open" / "lib")]
    assert sandbox._covers(paths, SANDBOX_UID, SANDBOX_UID) == {str(home): [str(home / "python")]}

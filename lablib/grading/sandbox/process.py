"""The trusted side of the grading sandbox: one locked-down worker process per `Sandbox`.

`Sandbox.start` runs `python -E -s -B -m lablib.grading.sandbox.boot` in a worker process, isolated
as `isolation.detect` found best on this machine (bubblewrap's namespaces and filesystem allowlist,
else resource limits only; see `isolation.py`), with

- a scratch folder of its own (`work`), holding only what it is given (the submission's notebooks,
  without their test cells), created with its final owner (the submission's uid when the grader is
  root) and mode 0700 inside a folder only the grader can enter until it is complete;
- a scrubbed environment: no PYTHONPATH, HOME and TMPDIR in the scratch folder, one BLAS thread,
  MPLBACKEND=Agg, LABLIB_PROFILE=grade;
- the limits of `boot.py`: address space (`memory_mb`), file size, open files, processes.

The grader talks to the worker over two pipes (`wire.py`: JSON headers and raw buffers, never
pickle; `server.py` is the other end) and holds `proxy.Remote` objects for the worker's objects.
Every request has a deadline (`Sandbox.deadline`); past it the worker is killed and `WorkerTimeout`
raised. A worker that dies raises `WorkerDied`, one that runs out of memory `WorkerMemory`; the
caller restarts the worker (`start`) for the next cell. Stopping a worker ends everything it
started: its pid namespace under bubblewrap, and every process of its uid when the grader is root.

`preflight` starts one sandbox before a class is graded and raises `SandboxUnavailable` (why, and what
to change) when none can start, so that an infrastructure fault is never graded as the students'.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from .._proc import BLAS_THREAD_VARS, OutputTail, kill_group
from . import isolation as iso
from . import wire
from .boot import BOOT_FAILED, BootConfig
from .errors import SandboxUnavailable, WorkerDied, WorkerLost, WorkerMemory, WorkerTimeout
from .proxy import Remote, proxy_type, remote_exception
from .server import MEMORY_EXIT

__all__ = ["Sandbox", "preflight", "START_TIMEOUT_S"]

#: Seconds a worker gets to start (import numpy and lablib) and answer its first message.
START_TIMEOUT_S = 60.0
#: Default deadline of a request when the caller set none, in seconds.
DEFAULT_REQUEST_S = 60.0
#: How much of the worker's own output (stdout + stderr) is kept for a crash report, in bytes.
OUTPUT_TAIL_BYTES = 2000
#: Resource limits of the worker besides memory: largest file it may write, open files, processes.
FILE_SIZE_LIMIT = 256 * 1024 * 1024
OPEN_FILES_LIMIT = 256
PROCESS_LIMIT = 64
#: Seconds to wait for a killed worker (or bubblewrap) to be reaped.
REAP_TIMEOUT_S = 5.0
#: Seconds a worker that closed its pipe gets to exit by itself, so that its exit status is known.
EXIT_GRACE_S = 1.0
#: bubblewrap's exit status for a child killed by a signal is 128 + the signal's number.
SIGNAL_EXIT_BASE = 128
#: The memory limit of the preflight's sandbox when the caller gives none, in MiB.
PREFLIGHT_MEMORY_MB = 2048

#: The folder of the lablib package the worker runs (this one).
LIB_DIR = Path(__file__).resolve().parent.parent.parent


class Sandbox:
    """One locked-down worker process for one notebook's grading; see the module docstring.

    Inputs:
        files: name -> bytes, written into the worker's scratch folder (the submission's notebooks).
        memory_mb: the worker's address-space limit in MiB (0: none).
        hide: folders the worker must never see. Under bubblewrap everything outside its allowlist is
            hidden anyway; a hidden folder inside an allowed one is covered.
    """

    def __init__(self, files: dict[str, bytes], *, memory_mb: int, hide: Iterable[str | os.PathLike] = ()):
        self.files, self.memory_mb = files, memory_mb
        self.mode = iso.detect()
        self.hide = sorted({str(Path(h).resolve()) for h in hide})
        self.uid = iso.submission_uid() if self.mode.own_uid else None
        if self.uid is not None:  # left over from an earlier grader with this pid that was itself killed
            iso.kill_uid(self.uid)
        self.isolation = self.mode.describe(self.uid)
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.deadline: float | None = None
        self._release: list[int] = []
        self._tail: OutputTail | None = None  # the worker's output, last OUTPUT_TAIL_BYTES
        self._fds: tuple[int, int] = (-1, -1)
        self.tracker = wire.Tracker("t")
        self.root = Path(tempfile.mkdtemp(prefix="lablib-grade-"))  # 0700, the grader's: nobody else enters
        self.work = self.root / "work"
        try:
            self._setup_folder()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    # ---- folder and process
    def _own(self, path: Path, mode: int) -> None:
        if self.uid is not None:
            os.lchown(path, self.uid, self.uid)
        os.chmod(path, mode)

    def _setup_folder(self) -> None:
        """Build the scratch folder while only the grader can enter `root`, then open `root` to the
        worker's uid: no moment at which another user could look in."""
        self.work.mkdir(mode=0o700)
        (self.work / "tmp").mkdir(mode=0o700)
        for name, data in self.files.items():
            path = self.work / name
            path.write_bytes(data)
            self._own(path, 0o600)
        self._own(self.work / "tmp", 0o700)
        self._own(self.work, 0o700)
        if self.mode.level != iso.BWRAP:  # the worker starts in root/lib, whose `lablib` is this one
            (self.root / "lib").mkdir(mode=0o755)
            (self.root / "lib" / "lablib").symlink_to(LIB_DIR)
            if self.uid is not None:
                os.chmod(self.root, 0o711)

    def make_temp_dir(self) -> str:
        """A new folder the worker can write to (tests that hand a path to the submission use it).

        The worker owns `work` and may have replaced `work/tmp` by a symlink to anywhere: the folder
        is made relative to a descriptor opened without following links, never by path.
        """
        fd = os.open(self.work / "tmp", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            name = f"tmp{secrets.token_hex(6)}"
            os.mkdir(name, 0o700, dir_fd=fd)
            if self.uid is not None:
                os.chown(name, self.uid, self.uid, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)
        return str(self.work / "tmp" / name)

    def _env(self) -> dict[str, str]:
        from lablib.training import PROFILE_VAR

        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.work), "TMPDIR": str(self.work / "tmp"),
               "LANG": "C.UTF-8", "MPLBACKEND": "Agg", PROFILE_VAR: "grade"}
        for var in BLAS_THREAD_VARS:
            env[var] = "1"
        return env

    def command(self, rfd: int, wfd: int) -> tuple[list[str], str]:
        """The worker's command line and the folder it starts in."""
        cfg = BootConfig(work=str(self.work), uid=self.uid, memory_mb=self.memory_mb, fsize=FILE_SIZE_LIMIT,
                         nofile=OPEN_FILES_LIMIT, nproc=PROCESS_LIMIT, rfd=rfd, wfd=wfd,
                         die_with_parent=self.mode.level != iso.BWRAP)
        python = [sys.executable, "-E", "-s", "-B", "-m", "lablib.grading.sandbox.boot", cfg.to_json()]
        if self.mode.level != iso.BWRAP:
            return python, str(self.root / "lib")
        bwrap = iso.bwrap_command(iso.bwrap_path() or "bwrap", work=str(self.work), lib=str(LIB_DIR),
                                  hide=self.hide, env=self._env(), as_root=os.geteuid() == 0)
        return bwrap + ["--"] + python, "/"

    def start(self) -> None:
        """Start (or restart) the worker; raises WorkerDied if it does not come up."""
        self.stop_process()
        self.generation += 1
        self._release = []
        self.tracker = wire.Tracker("t")
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        cmd, cwd = self.command(to_worker_r, from_worker_w)
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=cwd, env=self._env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, pass_fds=(to_worker_r, from_worker_w), start_new_session=True,
            )
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        self._fds = (from_worker_r, to_worker_w)
        os.set_blocking(to_worker_w, False)
        self._tail = OutputTail(self.proc.stdout, OUTPUT_TAIL_BYTES)
        try:
            header, buffers = wire.receive(from_worker_r, time.monotonic() + START_TIMEOUT_S)
            hello = wire.decode(header.get("ok"), buffers, self.tracker, self._deref)
            if not isinstance(hello, dict):
                raise wire.WireError("bad hello")
            if self.uid is not None and hello.get("uid") != self.uid:
                raise wire.WireError(f"the worker runs as uid {hello.get('uid')!r}, not {self.uid}")
        except (EOFError, TimeoutError, OSError, wire.WireError, KeyError, TypeError, AttributeError) as err:
            tail = self.output()[-600:]
            self._lost(f"the sandbox did not start ({err})" + (f"; its output:\n{tail}" if tail else ""),
                       timed_out=isinstance(err, TimeoutError))

    def output(self) -> str:
        return self._tail.text(1.0) if self._tail else ""

    def stop_process(self, grace: float = 0.0) -> int | None:
        """Kill the worker and everything it started; returns its exit status (None: unknown).

        grace: seconds to let a worker that is ending by itself (it closed the pipe) finish first, so
        that its own exit status is the one reported.
        """
        proc, self.proc = self.proc, None
        for fd in self._fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fds = (-1, -1)
        if proc is None:
            return None
        if grace:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        kill_group(proc)  # its session: the worker (or bubblewrap, whose pid namespace dies with it)
        try:
            code = proc.wait(timeout=REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        if self.uid is not None:  # what escaped its session (setsid) and still runs as its uid
            iso.kill_uid(self.uid)
        if code is not None and self.mode.level == iso.BWRAP and code > SIGNAL_EXIT_BASE:
            code = -(code - SIGNAL_EXIT_BASE)
        return code

    def close(self) -> None:
        self.stop_process()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _lost(self, why: str, *, timed_out: bool = False) -> None:
        code = self.stop_process(grace=0.0 if timed_out else EXIT_GRACE_S)
        if timed_out:
            raise WorkerTimeout(why)
        if code == MEMORY_EXIT:
            raise WorkerMemory("the submission's process ran out of memory (the limit is "
                               f"{self.memory_mb} MiB)")
        if code == BOOT_FAILED:
            raise WorkerDied(f"the sandbox's lock-down failed (not the submission's doing): {why}")
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise WorkerDied(f"the submission's process was killed by {name}")
        raise WorkerDied(f"the submission's process ended (exit status {code}): exit(), os._exit() or a "
                         f"crash; {why}")

    # ---- requests
    def _ref(self, obj: Any) -> dict:
        if isinstance(obj, Remote):
            if object.__getattribute__(obj, "_lablib_gen") != self.generation:
                raise WorkerLost("an object from before the submission's process was restarted was used")
            return {"$": "ref", "id": object.__getattribute__(obj, "_lablib_rid")}
        raise TypeError(f"a {type(obj).__name__} of the grader cannot be passed to the submission's code")

    def _deref(self, data: dict) -> Any:
        rid, name, kind = data.get("id"), data.get("n"), data.get("k")
        if not isinstance(rid, int) or not isinstance(name, str) or kind not in ("obj", "cls", "fn", "mod"):
            raise wire.WireError("bad reference")
        return proxy_type(name[:80])(self, self.generation, rid)

    def request(self, op: str, *args: Any) -> Any:
        """Send one request and return the decoded answer (or raise the worker's exception)."""
        if self.proc is None:
            raise WorkerLost("the submission's process is not running")
        deadline = self.deadline if self.deadline is not None else time.monotonic() + DEFAULT_REQUEST_S
        buffers: list[bytes] = []
        header = {"op": op, "args": [wire.encode(a, buffers, self.tracker, self._ref) for a in args]}
        header["sync"] = wire.encode_changes(self.tracker, buffers, self._ref)
        header["release"], self._release = self._release, []
        rfd, wfd = self._fds
        try:
            wire.send(wfd, header, buffers, deadline)
            reply, rbuf = wire.receive(rfd, deadline)
            if not isinstance(reply, dict):
                raise wire.WireError("the reply is not an object")
            wire.apply_changes(reply.get("sync", []), rbuf, self.tracker, self._deref)
            if "exc" in reply:
                raise remote_exception(reply["exc"])
            if "ok" not in reply:
                raise wire.WireError("the reply has neither a value nor an exception")
            return wire.decode(reply["ok"], rbuf, self.tracker, self._deref)
        except TimeoutError:
            self._lost("timed out", timed_out=True)
        except (EOFError, BrokenPipeError, ConnectionError) as err:
            self._lost(str(err))
        except wire.WireError as err:
            self._lost(f"it sent a malformed message ({err})")
        raise AssertionError("unreachable")

    def exec_cell(self, source: str, name: str) -> str | None:
        """Run a cell in the worker's notebook namespace; returns its error text, None when it ran."""
        result = self.request("exec", source, name)
        if not isinstance(result, dict):
            raise WorkerDied("the submission's process answered a cell with nonsense")
        error = result.get("error")
        return error if isinstance(error, str) or error is None else str(error)

    def names(self, names: list[str]) -> dict[str, Any]:
        """The worker's values for those of `names` it defines (objects as proxies)."""
        found = self.request("names", sorted(set(names)))
        if not isinstance(found, dict):
            raise WorkerDied("the submission's process answered with nonsense")
        return {k: v for k, v in found.items() if isinstance(k, str) and k in names}




def _unreachable(paths: list[Path]) -> list[str]:
    """Folders on the way to `paths` that a user other than their owner cannot enter."""
    out: list[str] = []
    for path in paths:
        for folder in [*reversed(path.parents), path]:
            try:
                mode = folder.stat().st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH and str(folder) not in out:
                out.append(f"{folder} (mode {stat.S_IMODE(mode):04o})")
    return out


def _advice(mode: iso.Isolation) -> str:
    if mode.level == iso.BWRAP:
        return ("bubblewrap started but the worker did not come up; run `lablib grade` again with "
                f"{iso.MODE_VAR}=limits to grade without it, and report the output above")
    fix = []
    if mode.own_uid:
        private = _unreachable([Path(tempfile.gettempdir()), Path(os.path.realpath(sys.executable)).parent, LIB_DIR])
        if private:
            fix.append("the sandbox's user cannot enter " + ", ".join(private) + ": point TMPDIR at a folder every "
                       "user may enter (e.g. TMPDIR=/var/tmp) and keep Python and lablib outside private folders")
    fix.append("use bubblewrap (apt-get install bubblewrap), which shows the worker only what it needs wherever "
               f"those folders are (not used now: {mode.reason})")
    return "; or ".join(fix)


def preflight(memory_mb: int = PREFLIGHT_MEMORY_MB) -> str:
    """Start one sandbox and run a cell in it, before any submission is graded.

    Returns the isolation the submissions will get (`Isolation.describe`). Raises SandboxUnavailable,
    saying why and what to change, when no sandbox can start here (bubblewrap required but broken, the
    sandbox's user unable to enter TMPDIR, ...): an instructor's problem, never a student's grade.
    """
    mode = iso.detect()
    try:
        with Sandbox({}, memory_mb=memory_mb) as sb:
            sb.start()
            sb.deadline = time.monotonic() + START_TIMEOUT_S
            error = sb.exec_cell("import numpy\nimport lablib\n", "preflight")
            if error:
                raise WorkerDied(f"a cell that imports numpy and lablib failed: {error}")
            return sb.isolation
    except WorkerLost as lost:
        raise SandboxUnavailable(f"a test worker ({mode.level}) failed: {lost.message}", _advice(mode)) from None
    except OSError as err:
        raise SandboxUnavailable(f"a test worker ({mode.level}) could not be set up: {err}", _advice(mode)) from None

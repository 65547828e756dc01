"""How a worker is isolated on this machine: the choice of level, bubblewrap's command line, user ids.

Three levels, best first (`detect` picks one per grading process; `Isolation.describe` words it for
the result files and `grades.csv`):

- `BWRAP` — the worker runs under bubblewrap (`bwrap`) in new pid, mount, network, IPC and UTS
  namespaces (`--unshare-all`, plus a user namespace when the grader is not root): it sees an
  allowlist of the filesystem (the Python runtime and installed packages read-only, `lablib`
  read-only, its own scratch folder read-write, a small private /tmp, /proc of its own pid namespace,
  a minimal /dev) and nothing else, has no network, and every process it starts ends with it
  (`--die-with-parent`: when the worker goes, its pid namespace goes with everything in it). As
  root, bwrap keeps no user namespace and hands the boot code only CAP_SETUID/CAP_SETGID, with which
  it drops to a user id of the submission's own (`submission_uid`) before anything of the
  submission is loaded.
- `LIMITS_OWN_UID` — root without a usable bubblewrap: resource limits and the submission's own user
  id, but the whole filesystem is visible (NOT ISOLATED); what the worker left behind is killed by
  uid when it stops (`kill_uid`).
- `LIMITS` — neither: resource limits only, as the grader's own user (NOT ISOLATED).

`LABLIB_GRADE_ISOLATION` (environment) forces a level: `bwrap` (stop if it cannot start), `limits`,
or `auto` (default).
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import signal
import site
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SandboxUnavailable

__all__ = ["BWRAP", "LIMITS_OWN_UID", "LIMITS", "Isolation", "detect", "submission_uid", "kill_uid",
           "bwrap_command", "runtime_paths", "processes_of", "LIB_MOUNT", "MODE_VAR"]

BWRAP, LIMITS_OWN_UID, LIMITS = "bwrap", "limits, own uid", "limits only"
#: Environment variable that forces a level: "bwrap", "limits" or "auto".
MODE_VAR = "LABLIB_GRADE_ISOLATION"
#: Sandboxed workers run as uid/gid SANDBOX_UID_BASE + (grading process id << UID_SLOT_BITS) + a
#: per-process counter (when the grader is root): one uid per sandbox, never shared by two at once.
SANDBOX_UID_BASE = 1_800_000_000
UID_SLOT_BITS = 9
#: Largest pid the uid scheme covers (Linux's pid_max is at most 2**22).
MAX_PID = 1 << 22
#: Where `lablib` is mounted (read-only) in the worker's view; the worker starts in this folder.
LIB_MOUNT = "/run/lablib"
#: Size of the worker's private /tmp (a tmpfs), in bytes; its scratch folder is on disk.
TMP_BYTES = 64 * 1024 * 1024
#: Seconds the bubblewrap probe may take.
PROBE_TIMEOUT_S = 30.0
#: How long `kill_uid` keeps sweeping a uid's processes, in seconds.
SWEEP_S = 2.0
#: Folders of the host the worker sees read-only besides the Python runtime: the system libraries.
SYSTEM_LIBS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")
#: Single files of /etc the dynamic loader needs.
SYSTEM_FILES = ("/etc/ld.so.cache",)

_counter = itertools.count()


@dataclass(frozen=True)
class Isolation:
    """The level chosen for this process and why (`reason`: empty for BWRAP)."""

    level: str
    reason: str = ""

    @property
    def own_uid(self) -> bool:
        return os.geteuid() == 0 and self.level in (BWRAP, LIMITS_OWN_UID)

    def describe(self, uid: int | None) -> str:
        """"<level>: details" for the result file; "NOT ISOLATED" whenever the filesystem is visible."""
        who = f"own uid {uid}" if uid is not None else "the grader's uid in a user namespace"
        if self.level == BWRAP:
            return (f"{BWRAP}: {who}; pid, mount, network, IPC and UTS namespaces; the Python runtime, "
                    "lablib and its scratch folder visible, everything else hidden; no network; nothing "
                    "it starts outlives it")
        if self.level == LIMITS_OWN_UID:
            return (f"{LIMITS_OWN_UID}: own uid {uid}, resource limits; NOT ISOLATED: the whole filesystem "
                    f"and the network are visible ({self.reason})")
        return (f"{LIMITS}: same user as the grader, no privilege drop, resource limits; NOT ISOLATED "
                f"({self.reason})")


def submission_uid() -> int:
    """A user id for one new sandbox of this process (see SANDBOX_UID_BASE)."""
    return SANDBOX_UID_BASE + ((os.getpid() % MAX_PID) << UID_SLOT_BITS) + next(_counter) % (1 << UID_SLOT_BITS)


def bwrap_path() -> str | None:
    return shutil.which("bwrap") or (str(Path("/usr/bin/bwrap")) if Path("/usr/bin/bwrap").is_file() else None)


def _with_real(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if p and os.path.isabs(p):
            out += [os.path.normpath(p), os.path.realpath(p)]
    return out


def _outermost(paths: list[str]) -> list[str]:
    """The existing folders among `paths`, without those inside another one, sorted."""
    kept: list[str] = []
    for p in sorted(set(paths), key=lambda q: (q.count("/"), q)):
        if os.path.isdir(p) and not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    return sorted(kept)


@functools.cache
def runtime_paths() -> tuple[str, ...]:
    """The folders of the Python runtime and installed packages, as given and as resolved."""
    wanted = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable)),
              os.path.dirname(os.path.dirname(os.path.realpath(np.__file__)))]
    try:
        wanted += site.getsitepackages()
    except AttributeError:  # an old virtualenv's site module
        pass
    return tuple(_outermost(_with_real(wanted)))


def _dirs_for(dest: str) -> list[str]:
    """The ancestors of `dest`, top first ("/a", "/a/b" for "/a/b/c")."""
    parts = Path(dest).parts[1:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def bwrap_command(bwrap: str, *, work: str | None, lib: str | None, hide: list[str], env: dict[str, str],
                  as_root: bool) -> list[str]:
    """bubblewrap's arguments up to (not including) the command; see the module docstring.

    work: the scratch folder (bound read-write at the same path). lib: the `lablib` package folder
    (bound read-only at LIB_MOUNT/lablib). hide: folders never to show, even inside a bound folder.
    """
    cmd = [bwrap]
    if as_root:  # no user namespace: the boot code drops to the submission's uid with these two caps
        cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        cmd += ["--unshare-all"]
    cmd += ["--die-with-parent", "--new-session", "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    binds: list[tuple[str, str]] = []  # (option, path) in mount order
    for path in SYSTEM_LIBS:
        if os.path.islink(path):
            continue
        if os.path.isdir(path):
            binds.append(("--ro-bind", path))
    binds += [("--ro-bind", p) for p in runtime_paths()
              if not any(p == s or p.startswith(s + "/") for _, s in binds)]
    made: set[str] = {"/tmp"}
    for _, path in binds:
        for parent in _dirs_for(path):
            if parent not in made and not os.path.islink(parent):
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
    for option, path in binds:
        cmd += [option, path, path]
    for path in SYSTEM_LIBS:
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
    for path in SYSTEM_FILES:
        if os.path.isfile(path):
            for parent in _dirs_for(path):
                if parent not in made:
                    made.add(parent)
                    cmd += ["--perms", "0755", "--dir", parent]
            cmd += ["--ro-bind", path, path]
    for path in hide:  # a hidden folder inside a bound one gets an empty read-only cover
        if any(path.startswith(p + "/") for _, p in binds):
            cmd += ["--perms", "0755", "--tmpfs", path, "--remount-ro", path]
    if lib is not None:
        cmd += ["--perms", "0755", "--dir", LIB_MOUNT, "--ro-bind", lib, f"{LIB_MOUNT}/lablib"]
    if work is not None:
        for parent in _dirs_for(work):  # the host's folders above it may be private (0700): not here
            if parent not in made:
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
        cmd += ["--bind", work, work]
    cmd += ["--chdir", LIB_MOUNT if lib is not None else "/"]
    return cmd


def _probe(bwrap: str) -> str:
    """Run the interpreter under bubblewrap once; returns why it failed, or "" when it works."""
    cmd = bwrap_command(bwrap, work=None, lib=None, hide=[], env={"PATH": "/usr/bin:/bin"},
                        as_root=os.geteuid() == 0)
    try:
        done = subprocess.run(cmd + ["--", sys.executable, "-I", "-S", "-c", "pass"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{bwrap} could not run ({err})"
    if done.returncode != 0:
        text = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
        return f"{bwrap} failed ({text[-1] if text else f'exit status {done.returncode}'})"
    return ""


@functools.cache
def detect() -> Isolation:
    """The best level that works here (cached per process); raises SandboxUnavailable when
    MODE_VAR asks for bwrap and it cannot run."""
    mode = os.environ.get(MODE_VAR, "auto").strip().lower() or "auto"
    if mode not in ("auto", "bwrap", "limits"):
        raise SandboxUnavailable(f"{MODE_VAR}={mode!r} is not a known setting",
                                 f"set {MODE_VAR} to auto, bwrap or limits (or unset it)")
    fallback = LIMITS_OWN_UID if os.geteuid() == 0 else LIMITS
    if mode == "limits":
        return Isolation(fallback, f"{MODE_VAR}=limits")
    if not sys.platform.startswith("linux"):
        why = "bubblewrap needs Linux"
    elif (bwrap := bwrap_path()) is None:
        why = "bubblewrap (bwrap) is not installed"
    else:
        why = _probe(bwrap)
        if not why:
            return Isolation(BWRAP)
    if mode == "bwrap":
        raise SandboxUnavailable(why, "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow "
                                      f"namespaces (e.g. run the container with --privileged), or unset {MODE_VAR}")
    return Isolation(fallback, why)


def processes_of(uid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose real, effective or saved uid is `uid`."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                status = fh.read(4096)
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(b":", 1) for line in status.splitlines() if b":" in line)
        uids = fields.get(b"Uid", b"").split()[:3]
        if str(uid).encode() in uids and not fields.get(b"State", b"").strip().startswith(b"Z"):
            out.append(int(entry.name))
    return out


def kill_uid(uid: int) -> bool:
    """Kill every process of `uid` (the grader must be root) until none is left; False if some
    still ran after SWEEP_S (a process that keeps forking faster than this kills)."""
    deadline = time.monotonic() + SWEEP_S
    while True:
        left = processes_of(uid)
        if not left:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.001)

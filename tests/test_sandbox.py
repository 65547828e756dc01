"""The grading sandbox on its own: the boot code's lock-down, bubblewrap's command line, the scratch
folder's owners and modes, the worker's server and the grader's proxies, stopping and preflight."""

from __future__ import annotations

import copy
import json
import os
import resource
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from lablib.grading.sandbox import (Remote, RemoteError, Sandbox, SandboxUnavailable, WorkerDied, WorkerMemory,
                                    WorkerTimeout, preflight)
from lablib.grading.sandbox import isolation as iso
from lablib.grading.sandbox.boot import BOOT_FAILED, BootConfig, lock_down
from lablib.grading.sandbox.server import Server

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")


# ---- boot


def test_a_boot_configuration_round_trips_and_refuses_unknown_fields():
    cfg = BootConfig(work="/w", uid=5, memory_mb=10, fsize=1, nofile=2, nproc=3, rfd=4, wfd=5)
    assert BootConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError):
        BootConfig.from_json(json.dumps({**json.loads(cfg.to_json()), "exec": "rm -rf /"}))
    with pytest.raises(ValueError):
        BootConfig.from_json("[1, 2]")


def _in_child(fn) -> dict:
    """Run fn() in a forked child; returns what it returned (JSON) or raises with its error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = {"ok": fn()}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            out = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_lock_down_sets_the_limits_and_moves_into_the_scratch_folder(tmp_path):
    cfg = BootConfig(work=str(tmp_path), uid=None, memory_mb=512, fsize=1 << 20, nofile=64, nproc=16, rfd=0, wfd=1)

    def child():
        lock_down(cfg)
        return {"cwd": os.getcwd(), "as": resource.getrlimit(resource.RLIMIT_AS)[0],
                "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0],
                "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
                "nnp": open("/proc/self/status").read().split("NoNewPrivs:")[1].split()[0]}

    out = _in_child(child)["ok"]
    assert out == {"cwd": str(tmp_path), "as": 512 << 20, "fsize": 1 << 20, "nofile": 64, "core": 0, "nnp": "1"}


@as_root
def test_lock_down_drops_to_the_submissions_uid_for_good():
    import shutil
    import tempfile

    uid = iso.submission_uid()
    work = tempfile.mkdtemp(dir="/tmp")  # pytest's tmp_path lies in a folder only root may enter
    os.chown(work, uid, uid)
    cfg = BootConfig(work=work, uid=uid, memory_mb=0, fsize=1 << 20, nofile=64, nproc=16, rfd=0, wfd=1)

    def child():
        lock_down(cfg)
        try:
            os.setuid(0)
            back = True
        except PermissionError:
            back = False
        return [os.getresuid(), os.getresgid(), os.getgroups(), back,
                resource.getrlimit(resource.RLIMIT_NPROC)[0]]

    out = _in_child(child)
    shutil.rmtree(work)
    assert "ok" in out, out
    resuid, resgid, groups, back, nproc = out["ok"]
    assert resuid == resgid == [uid] * 3 and groups == [] and back is False and nproc == 16


def test_a_failed_lock_down_exits_with_its_own_status(tmp_path):
    cfg = BootConfig(work=str(tmp_path / "missing"), uid=None, memory_mb=0, fsize=1, nofile=64, nproc=1, rfd=0, wfd=1)
    done = subprocess.run([sys.executable, "-m", "lablib.grading.sandbox.boot", cfg.to_json()],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == BOOT_FAILED and "lock-down failed" in done.stderr


def test_the_worker_imports_nothing_of_the_graders_side():
    code = ("import sys, lablib.grading.sandbox.boot, lablib.grading.sandbox.server; "
            "print(sorted(m for m in sys.modules if m.startswith(('nbformat', 'lablib.grading.sandbox.process', "
            "'lablib.grading.check', 'subprocess'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


# ---- isolation: levels, uids, bubblewrap's command line


def test_each_sandbox_gets_a_uid_of_its_own():
    uids = {iso.submission_uid() for _ in range(100)}
    assert len(uids) == 100 and min(uids) >= iso.SANDBOX_UID_BASE and max(uids) < 2 ** 32 - 2


def test_the_description_says_when_a_worker_was_not_isolated():
    assert "NOT ISOLATED" not in iso.Isolation(iso.BWRAP).describe(1)
    assert "hidden" in iso.Isolation(iso.BWRAP).describe(1) and "uid 1" in iso.Isolation(iso.BWRAP).describe(1)
    for level in (iso.LIMITS_OWN_UID, iso.LIMITS):
        text = iso.Isolation(level, "no bwrap").describe(7)
        assert text.startswith(level + ":") and "NOT ISOLATED" in text and "no bwrap" in text


def test_an_unknown_isolation_setting_is_an_instructor_error(monkeypatch):
    monkeypatch.setenv(iso.MODE_VAR, "chroot")
    iso.detect.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="chroot"):
            iso.detect()
    finally:
        monkeypatch.delenv(iso.MODE_VAR)
        iso.detect.cache_clear()


def _pairs(cmd: list[str], option: str) -> list[tuple[str, str]]:
    return [(cmd[i + 1], cmd[i + 2]) for i, arg in enumerate(cmd) if arg == option]


@pytest.mark.parametrize("as_root_", [True, False])
def test_bubblewrap_gets_an_allowlist_and_its_namespaces(as_root_, tmp_path):
    work = tmp_path / "lablib-grade-x" / "work"
    cmd = iso.bwrap_command("bwrap", work=str(work), lib="/src/lablib", hide=[], env={"A": "1"}, as_root=as_root_)
    for flag in ("--die-with-parent", "--new-session", "--clearenv"):
        assert flag in cmd
    if as_root_:
        assert {"--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"} <= set(cmd)
        assert "--unshare-user" not in cmd and "--unshare-all" not in cmd
        assert cmd[cmd.index("--cap-drop") + 1] == "ALL"
        assert {cmd[i + 1] for i, a in enumerate(cmd) if a == "--cap-add"} == {"CAP_SETUID", "CAP_SETGID"}
    else:
        assert "--unshare-all" in cmd and "--cap-add" not in cmd
    ro = dict(_pairs(cmd, "--ro-bind"))
    assert ro["/src/lablib"] == f"{iso.LIB_MOUNT}/lablib"
    assert all(src == dest for src, dest in ro.items() if src != "/src/lablib")
    assert os.path.realpath(sys.prefix) in ro and os.path.realpath(sys.base_prefix) in ro
    assert _pairs(cmd, "--bind") == [(str(work), str(work))]  # the only folder it may write, besides /tmp
    for src in ro:
        assert src not in ("/", "/home", "/root", "/work", "/tmp", "/etc", "/opt", "/var"), src
    assert cmd[cmd.index("--tmpfs") - 1].isdigit()  # /tmp is a tmpfs of bounded size
    assert ("--setenv" in cmd) and cmd[cmd.index("--setenv") + 1:cmd.index("--setenv") + 3] == ["A", "1"]


def test_a_hidden_folder_inside_an_allowed_one_is_covered():
    inside = os.path.join(os.path.realpath(sys.prefix), "course-copy")
    cmd = iso.bwrap_command("bwrap", work=None, lib=None, hide=[inside, "/elsewhere"], env={}, as_root=True)
    covered = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--tmpfs"]
    assert inside in covered and "/elsewhere" not in covered


def test_runtime_paths_hold_the_interpreter_and_numpy():
    paths = iso.runtime_paths()
    for needed in (os.path.realpath(sys.executable), os.path.realpath(np.__file__)):
        assert any(needed.startswith(p + "/") for p in paths), needed
    assert len(paths) == len(set(paths))
    assert not any(p != q and p.startswith(q + "/") for p in paths for q in paths)


@as_root
def test_kill_uid_ends_a_detached_process_of_that_uid():
    uid = iso.submission_uid()
    proc = subprocess.Popen(["sleep", "30"], user=uid, group=uid,
                            extra_groups=[], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while proc.pid not in iso.processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert iso.kill_uid(uid)
        assert proc.wait(timeout=5) == -9 and iso.processes_of(uid) == []
    finally:
        proc.kill()


@as_root
def test_a_uid_is_handed_to_a_sandbox_only_once_nothing_runs_as_it(monkeypatch):
    uid = iso.submission_uid()
    proc = subprocess.Popen(["sleep", "30"], user=uid, group=uid, extra_groups=[], start_new_session=True)
    try:
        monkeypatch.setattr(iso, "submission_uid", lambda: uid)
        with Sandbox({}, memory_mb=1024) as sb:  # as root every level gives a sandbox a uid of its own
            assert sb.uid == uid and proc.wait(timeout=5) == -9
    finally:
        proc.kill()


# ---- the scratch folder


def test_the_scratch_folder_is_the_workers_alone():
    with Sandbox({"a.ipynb": b"{}"}, memory_mb=1024) as sb:
        root, work = os.stat(sb.root), os.stat(sb.work)
        assert root.st_uid == os.geteuid() and not stat.S_IMODE(root.st_mode) & 0o066  # nobody else lists it
        assert stat.S_IMODE(work.st_mode) == 0o700
        owner = sb.uid if sb.uid is not None else os.geteuid()
        for path in [sb.work, *sb.work.rglob("*")]:
            assert os.lstat(path).st_uid == owner and not stat.S_IMODE(os.lstat(path).st_mode) & 0o077, path
        made = sb.make_temp_dir()
        assert os.stat(made).st_uid == owner and stat.S_IMODE(os.stat(made).st_mode) == 0o700
    assert not sb.root.exists()


def test_no_one_else_can_enter_the_sandbox_while_its_files_are_written(monkeypatch):
    import pathlib

    seen = []
    write_bytes = pathlib.Path.write_bytes

    def spying(path, data):
        root = path.parent.parent  # <root>/work/<file>
        seen.append((stat.S_IMODE(os.stat(root).st_mode), os.stat(root).st_uid))
        return write_bytes(path, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", spying)
    with Sandbox({"01_layers.ipynb": b"{}", "02_losses.ipynb": b"{}"}, memory_mb=1024):
        pass
    assert seen == [(0o700, os.geteuid())] * 2


def test_a_temp_folder_for_the_worker_is_never_made_through_its_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    with Sandbox({}, memory_mb=1024) as sb:
        (sb.work / "tmp").rmdir()  # as the worker could: its own folder, replaced by a link to anywhere
        (sb.work / "tmp").symlink_to(target)
        with pytest.raises(OSError):
            sb.make_temp_dir()
    assert list(target.iterdir()) == []


# ---- the worker's server, without a process


def test_the_server_answers_requests_by_name():
    server = Server(-1, -1)
    assert server.dispatch("len", [[1, 2, 3]]) == 3
    assert server.dispatch("call", [max, [1, 5], {}]) == 5
    assert server.dispatch("getitem", [{"k": 2}, "k"]) == 2
    assert server.dispatch("isinstance", [3, int]) is True
    assert server.dispatch("exec", ["x = 2 + 3", "cell"]) == {"error": None} and server.namespace["x"] == 5
    assert "ZeroDivisionError" in server.dispatch("exec", ["1 / 0", "cell"])["error"]
    with pytest.raises(ValueError, match="unknown request"):
        server.dispatch("system", ["rm -rf /"])


def test_the_server_sends_objects_by_reference_and_scalars_by_value():
    server = Server(-1, -1)
    server.dispatch("exec", ["class A: pass\na = A()\nn = 3\narr = __import__('numpy').zeros(2)", "cell"])
    names = server.dispatch("names", [["a", "n", "arr", "missing"]])["__names__"]
    buffers: list[bytes] = []
    encoded = server.encode({"__names__": names}, buffers)
    values = dict(zip(encoded["k"], encoded["v"]))
    assert values["a"]["$"] == "ref" and values["a"]["n"] == "A" and values["n"] == 3
    assert values["arr"]["$"] == "nd" and values["arr"]["h"]  # by value, with a handle: changes are shared
    assert "missing" not in values


# ---- a live worker seen through proxies


@pytest.fixture(scope="module")
def live():
    sb = Sandbox({}, memory_mb=2048)
    sb.start()
    yield sb
    sb.close()


def run(sb: Sandbox, code: str) -> None:
    sb.deadline = time.monotonic() + 30
    assert sb.exec_cell(code, "cell") is None


def test_proxies_forward_attributes_calls_items_and_conversions(live):
    run(live, "import numpy as np\nclass Box:\n    def __init__(self): self.w = np.ones(3); self.items = [1, 2]\n"
              "    def total(self, k=1): return float(self.w.sum()) * k\n    def __len__(self): return 2\n"
              "box = Box()")
    box = live.names(["box"])["box"]
    assert isinstance(box, Remote) and type(box).__name__ == "Box"
    assert box.total(k=2) == 6.0 and len(box) == 2 and list(box.items) == [1, 2]
    box.w[0] = 5.0  # an in-place change on the grader's side is seen by the worker's method
    assert box.total() == 7.0
    box.w = np.zeros(2)
    assert box.total() == 0.0 and np.asarray(box.w).shape == (2,)
    clone = copy.deepcopy(box)
    clone.w = np.ones(4)
    assert box.total() == 0.0 and clone.total() == 4.0
    assert box == box and box != clone and "Box" in repr(box)


def test_exceptions_of_the_submission_come_back_as_plain_types(live):
    run(live, "def bad(kind):\n    if kind == 1: raise ValueError('v')\n    class Odd(Exception): pass\n"
              "    raise Odd('o')")
    bad = live.names(["bad"])["bad"]
    with pytest.raises(ValueError, match="v"):
        bad(1)
    with pytest.raises(RemoteError, match="Odd: o"):
        bad(2)


def test_a_proxy_cannot_be_pickled_and_a_grader_object_cannot_be_sent(live):
    import pickle

    run(live, "thing = object()")
    thing = live.names(["thing"])["thing"]
    with pytest.raises(TypeError):
        pickle.dumps(thing)
    run(live, "def ident(x): return x")
    with pytest.raises(TypeError, match="cannot be passed"):
        live.names(["ident"])["ident"](object())


def test_a_cell_past_its_deadline_is_a_timeout_and_the_worker_restarts():
    with Sandbox({}, memory_mb=1024) as sb:
        sb.start()
        sb.deadline = time.monotonic() + 1.0
        with pytest.raises(WorkerTimeout):
            sb.exec_cell("while True: pass", "loop")
        sb.start()
        run(sb, "x = 1")


def test_a_worker_that_exits_is_a_death_and_one_out_of_memory_a_memory_loss():
    with Sandbox({}, memory_mb=512) as sb:
        sb.start()
        sb.deadline = time.monotonic() + 30
        with pytest.raises(WorkerDied, match="exit status 3"):
            sb.exec_cell("import os\nos._exit(3)", "exit")
        sb.start()
        sb.deadline = time.monotonic() + 30
        assert "MemoryError" in sb.exec_cell("x = bytearray(1 << 31)", "hog")
        run(sb, "y = 2")  # the worker survived its MemoryError
        assert sb.names(["y"]) == {"y": 2}
    assert WorkerMemory.status == "killed for memory"


@pytest.mark.skipif(iso.detect().level != iso.BWRAP, reason="only bubblewrap gives the worker a network namespace")
def test_the_worker_cannot_reach_the_hosts_loopback():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server, Sandbox({}, memory_mb=1024) as sb:
        port = server.getsockname()[1]
        sb.start()
        sb.deadline = time.monotonic() + 30
        error = sb.exec_cell(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)", "net")
    assert error is not None and ("OSError" in error or "Errno" in error or "refused" in error), error


def test_stopping_a_worker_stops_every_process_it_started():
    if iso.detect().level == iso.LIMITS:
        pytest.skip("without bubblewrap or root only the worker's session is stopped")
    with Sandbox({}, memory_mb=1024) as sb:
        sb.start()
        run(sb, "import subprocess, sys\nchild = subprocess.Popen([sys.executable, '-c', 'import time; "
                "time.sleep(30)'], start_new_session=True)\npid = child.pid")
        marker_uid = sb.uid
        sb.stop_process()
        if marker_uid is not None:
            assert iso.processes_of(marker_uid) == []


def test_preflight_names_the_isolation_the_class_will_get():
    assert preflight().startswith(iso.detect().level + ":")

"""Unit tests of the checksum-verified download (lablib.download and lablib.data.fetch).

The URL opener is replaced by one that serves bytes from memory: no test touches the network.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import urllib.error

import numpy as np
import pytest

import lablib.data as data
import lablib.download as dl
from lablib.data import DatasetNotFoundError, DownloadError, fetch, load_dataset

NAME = "fashion-mnist"
MIRRORS = data.DATASETS[NAME]["mirrors"]


def idx_gz(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Fake mirrors serving tiny .gz files, a checksums.json describing them, and redirected folders.

    ``server.files`` maps file name -> bytes served; ``server.broken`` maps a URL prefix to an
    exception raised when opening it; ``server.opened`` records every URL opened."""
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(12) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(4) % 10}
    files = {stem + ".gz": idx_gz(np.asarray(a)) for stem, a in arrays.items()}
    sums = json.loads(data.CHECKSUMS_FILE.read_text())
    for fname, blob in files.items():
        sums[NAME][fname].update(size=len(blob), md5=hashlib.md5(blob).hexdigest(),
                                 sha256=hashlib.sha256(blob).hexdigest())
    (tmp_path / "checksums.json").write_text(json.dumps(sums))
    monkeypatch.setattr(data, "CHECKSUMS_FILE", tmp_path / "checksums.json")
    monkeypatch.setattr(data, "REPO_DATA_DIR", tmp_path / "repo-data")
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", tmp_path / "usr-share-datasets")
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("LABLIB_PROFILE", "full")  # ci and grade read the committed sample, never download

    class Server:
        def __init__(self):
            self.files, self.broken, self.opened = dict(files), {}, []

        def open(self, url):
            self.opened.append(url)
            for prefix, exc in self.broken.items():
                if url.startswith(prefix):
                    if callable(exc):
                        return exc(self.files[url.rsplit("/", 1)[1]])
                    raise exc
            return io.BytesIO(self.files[url.rsplit("/", 1)[1]])

    srv = Server()
    srv.dest = tmp_path / "repo-data" / NAME
    monkeypatch.setattr(dl, "_open_url", srv.open)
    return srv


class Interrupted(io.BytesIO):
    """Delivers the first 10 bytes, then the connection drops."""

    error: BaseException = ConnectionResetError("simulated: connection reset by peer")

    def read(self, n=-1):
        if self.tell() >= 10:
            raise self.error
        return super().read(10)


def listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_lands_verified_files_atomically(server):
    assert fetch(NAME, progress=False) == server.dest
    assert listing(server.dest) == sorted(server.files)  # the four files, no temporary file
    for fname, blob in server.files.items():
        assert (server.dest / fname).read_bytes() == blob
    assert server.opened == [MIRRORS[0] + f for f in
                             ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]


def test_load_dataset_downloads_into_the_repository_data_folder(server):
    ds = load_dataset(progress=False)
    assert ds.source == server.dest and ds.x_train.shape == (12, 28, 28) and ds.y_test.tolist() == [0, 1, 2, 3]
    server.opened.clear()
    load_dataset(progress=False)  # found locally now
    assert server.opened == []


def test_files_already_present_and_verified_are_not_downloaded_again(server):
    server.dest.mkdir(parents=True)
    (server.dest / "train-images-idx3-ubyte.gz").write_bytes(server.files["train-images-idx3-ubyte.gz"])
    (server.dest / "t10k-images-idx3-ubyte.gz").write_bytes(b"stale and corrupt")
    fetch(NAME, progress=False)
    assert [u.rsplit("/", 1)[1] for u in server.opened] == [
        "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert (server.dest / "t10k-images-idx3-ubyte.gz").read_bytes() == server.files["t10k-images-idx3-ubyte.gz"]


def test_wrong_checksum_raises_and_leaves_nothing(server):
    for fname in server.files:
        blob = server.files[fname]
        server.files[fname] = blob[:-1] + bytes([blob[-1] ^ 1])  # same size, one bit differs
    with pytest.raises(DownloadError) as info:
        fetch(NAME, progress=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "checksum mismatch" in message and "md5" in message
    assert all(m + "train-images-idx3-ubyte.gz" in message for m in MIRRORS)  # every mirror tried and named
    assert listing(server.dest) == []  # no file, no temporary file


def test_load_dataset_reports_a_failed_download_with_every_place(server):
    server.files["t10k-labels-idx1-ubyte.gz"] = b"\x1f\x8b short"
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(progress=False)
    message = str(info.value)
    assert "download: failed" in message and "t10k-labels-idx1-ubyte.gz" in message and "size 8" in message
    assert str(server.dest) in message and "python -m lablib.data fetch fashion-mnist" in message
    # the three verified files may stay (they are correct); the bad one left nothing behind
    assert listing(server.dest) == sorted(set(server.files) - {"t10k-labels-idx1-ubyte.gz"})
    with pytest.raises(DatasetNotFoundError):  # and the incomplete folder is not used
        load_dataset(download=False)


def test_interrupted_download_leaves_nothing(server):
    server.broken = {m: Interrupted for m in MIRRORS}
    with pytest.raises(DownloadError, match="connection reset by peer"):
        fetch(NAME, progress=False)
    assert listing(server.dest) == []


def test_keyboard_interrupt_during_download_leaves_nothing(server, monkeypatch):
    monkeypatch.setattr(Interrupted, "error", KeyboardInterrupt())
    server.broken = {MIRRORS[0]: Interrupted}
    with pytest.raises(KeyboardInterrupt):
        fetch(NAME, progress=False)
    assert listing(server.dest) == []


def test_falls_back_to_the_next_mirror(server):
    server.broken = {MIRRORS[0]: urllib.error.URLError("simulated: name resolution failed")}
    fetch(NAME, progress=False)
    assert listing(server.dest) == sorted(server.files)
    assert sum(u.startswith(MIRRORS[1]) for u in server.opened) == 4


def test_every_mirror_down(server):
    server.broken = {m: urllib.error.URLError("simulated: offline") for m in MIRRORS}
    with pytest.raises(DatasetNotFoundError, match="(?s)download: failed.*offline"):
        load_dataset(progress=False)
    assert listing(server.dest) == []


def test_download_file_with_a_progress_bar(server, tmp_path, capsys):
    blob = server.files["t10k-labels-idx1-ubyte.gz"]
    target = tmp_path / "sub" / "labels.gz"
    out = dl.download_file([MIRRORS[0] + "t10k-labels-idx1-ubyte.gz"], target, {"size": len(blob)}, progress=True)
    assert out == target and target.read_bytes() == blob and listing(target.parent) == ["labels.gz"]
    assert "labels.gz" in capsys.readouterr().err  # the tqdm bar
    dl.download_file([MIRRORS[0] + "t10k-labels-idx1-ubyte.gz"], target, {"size": len(blob)}, progress=False)
    assert capsys.readouterr().err == ""


def test_mismatch_and_digest():
    d = dl.digest(b"abc")
    assert d["size"] == 3 and d["md5"] == "900150983cd24fb0d6963f7d28e17f72"
    assert dl.mismatch({"md5": d["md5"]}, d) is None
    assert dl.mismatch({"size": 4, "md5": d["md5"]}, d) == "size 3 (expected 4)"


def test_cli_fetch(server, capsys):
    assert data.main(["fetch", NAME, "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(server.dest)
    assert listing(server.dest) == sorted(server.files)

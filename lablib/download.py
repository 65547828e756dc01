"""Checksum-verified downloads: a file lands at its target only after its size and hashes match.

The bytes go to a temporary file in the target's folder; ``os.replace`` moves it into place
only when every recorded checksum matches, so a failed, interrupted or corrupt download never
leaves a file behind (not even the temporary one).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Sequence

__all__ = ["DownloadError", "digest", "mismatch", "download_file"]


class DownloadError(OSError):
    """Every URL failed: network error, interrupted transfer or checksum mismatch."""


def digest(data: bytes) -> dict:
    """``{"size": int, "md5": hex str, "sha256": hex str}`` of ``data``."""
    return {"size": len(data), "md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}


def mismatch(expected: dict, got: dict) -> str | None:
    """What differs between the ``size``/``md5``/``sha256`` recorded in ``expected`` and ``got``;
    keys absent from ``expected`` are not checked. ``None`` when everything matches."""
    bad = [f"{key} {got[key]} (expected {expected[key]})" for key in ("size", "md5", "sha256")
           if key in expected and expected[key] != got[key]]
    return "; ".join(bad) or None


def _open_url(url: str):
    """Open ``url`` for reading (tests replace this function to serve bytes from memory)."""
    return urllib.request.urlopen(url, timeout=60)


def _download_one(url: str, target: Path, expected: dict, progress: bool) -> None:
    from tqdm import tqdm

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        md5, sha, size = hashlib.md5(), hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, _open_url(url) as response, tqdm(
                total=expected.get("size"), unit="B", unit_scale=True, unit_divisor=1024,
                desc=target.name, disable=not progress, leave=False) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        bad = mismatch(expected, {"size": size, "md5": md5.hexdigest(), "sha256": sha.hexdigest()})
        if bad:
            raise DownloadError(f"checksum mismatch: {bad}")
        os.replace(tmp, target)
    finally:  # also on KeyboardInterrupt
        if os.path.exists(tmp):
            os.unlink(tmp)


def download_file(urls: Sequence[str], target: str | os.PathLike, expected: dict, *, progress: bool = True) -> Path:
    """Download ``target`` from the first of ``urls`` that delivers bytes matching ``expected``
    (a dict with any of ``size``, ``md5``, ``sha256``), with a tqdm progress bar unless
    ``progress=False``. Returns the target path; raises :class:`DownloadError` naming every
    URL tried and what went wrong with it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:
            _download_one(url, target, expected, progress)
            return target
        except (OSError, HTTPException) as err:  # URLError, timeouts, resets, checksum mismatch
            errors.append(f"{url}: {err}")
    raise DownloadError(f"could not download {target.name}:\n    " + "\n    ".join(errors))

"""Data sets for Backprop Lab: IDX files, Fashion-MNIST / MNIST by name, and training helpers.

Lookup order of :func:`load_dataset` (see ``data/README.md``):

1. the ``path`` argument: the folder itself, then ``path/<name>/`` (nothing else is tried);
2. ``$LABLIB_DATA/<name>/``, then the files directly in ``$LABLIB_DATA``;
3. ``data/<name>/`` in the repository;
4. ``/usr/share/datasets/<name>/`` (Debian's package ``dataset-fashion-mnist``);
5. a checksum-verified download into ``data/<name>/``.

A folder counts when it holds all four files, each gzipped (``*.gz``) or not.

The ``ci`` and ``grade`` budget profiles (:mod:`lablib.training`) read a small stratified sample
committed in ``data/sample/<name>/`` instead (Fashion-MNIST only), checksum-verified, so that tests
and autograding need neither the full data set nor a network. ``full`` uses the lookup above.
Command line: ``python -m lablib.data fetch fashion-mnist`` (also ``locate``, ``verify``).
"""
from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import json
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .download import DownloadError, digest, download_file, mismatch

__all__ = [
    "DataError", "DatasetNotFoundError", "DownloadError", "Dataset", "DATASETS",
    "read_idx", "load_dataset", "locate", "fetch", "verify", "sample_folder", "SAMPLE_SIZES",
    "Standardizer", "iterate_minibatches",
]

# Module-level so that tests (and unusual installations) can redirect them.
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CHECKSUMS_FILE = REPO_DATA_DIR / "checksums.json"
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
ENV_VAR = "LABLIB_DATA"

FILES = {  # Dataset field -> official file name without ".gz"
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DATASETS = {
    "fashion-mnist": {
        "mirrors": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        "class_names": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "apt": "dataset-fashion-mnist",
    },
    "mnist": {  # yann.lecun.com is unreliable; these are the mirrors torchvision and TFDS use
        "mirrors": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        "class_names": tuple(str(d) for d in range(10)),
        "apt": None,
    },
}
#: Images per class in the committed sample of each data set, per split (scripts/make_data_sample.py).
#: 4,000 training and 1,000 test images of Fashion-MNIST: 2.2 MB of gzip files.
SAMPLE_SIZES = {"fashion-mnist": {"train": 400, "test": 100}}
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(ValueError):
    """A data file is corrupt, truncated, mismatched or fails its checksum."""


class DatasetNotFoundError(FileNotFoundError):
    """A data set is in none of the places looked at; ``places`` lists (folder, what was wrong)."""

    def __init__(self, message: str, places: list[tuple[str, str]]):
        super().__init__(message)
        self.places = places


@functools.lru_cache(maxsize=None)
def _load_json(file: Path) -> dict:
    return json.loads(file.read_text())


def _checksums() -> dict:
    """``data/checksums.json``: {name: {"<file>.gz": {size, md5, sha256, raw: {size, md5, sha256}}}}."""
    return _load_json(CHECKSUMS_FILE)


def _spec(name: str) -> dict:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def _fetch_command(name: str, dest: Path | None = None) -> str:
    return f"python -m lablib.data fetch {name}" + (f" --dest '{dest}'" if dest else "")


def sample_folder(name: str) -> Path:
    """``data/sample/<name>/``: the committed sample of ``name`` that the ci and grade profiles use."""
    return REPO_DATA_DIR / "sample" / name


def sample_key(name: str) -> str:
    """The entry of ``name``'s sample in ``data/checksums.json``."""
    return f"{name}-sample"


def _refetch_hint(path: Path) -> str:
    if REPO_DATA_DIR / "sample" in path.parents:
        return ("This file of the committed sample was changed: restore it with "
                f"`git checkout -- '{path}'` (or regenerate the sample: python scripts/make_data_sample.py)")
    apt = DATASETS.get(path.parent.name, {}).get("apt")
    if SYSTEM_DATA_DIR in path.parents and apt:
        return f"Reinstall it: sudo apt-get install --reinstall {apt}"
    name = path.parent.name if path.parent.name in DATASETS else "fashion-mnist (or mnist)"
    return f"Delete it and fetch it again: rm '{path}' && {_fetch_command(name)}"


def _fail(path: Path, problem: str) -> DataError:
    return DataError(f"{path}: {problem}. {_refetch_hint(path)}")


def _read_bytes(path: str | os.PathLike) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes 1f 8b."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise _fail(path, f"not a valid gzip file ({err}): it is truncated or corrupt") from None
    return data


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    if len(data) < 4 or data[:2] != b"\0\0":
        found = data[:4].hex(" ") or "nothing"
        raise _fail(path, f"not an IDX file: it must start with the magic bytes 00 00, found {found}")
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise _fail(path, f"unknown IDX data type code 0x{code:02X} (known: "
                    + ", ".join(f"0x{c:02X}" for c in _DTYPES) + ")")
    header = 4 + 4 * ndim
    if ndim == 0:
        raise _fail(path, "IDX header announces 0 dimensions")
    if len(data) < header:
        raise _fail(path, f"IDX header announces {ndim} dimensions but the file is only {len(data)} bytes")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_DTYPES[code])
    expected, found = math.prod(dims) * dtype.itemsize, len(data) - header
    what = {3: "pixel data", 1: "label data"}.get(ndim, "data")
    if found < expected:
        raise _fail(path, f"expected {expected} bytes of {what} for shape {dims}, found {found}: the file is truncated")
    if found > expected:
        raise _fail(path, f"expected {expected} bytes of {what} for shape {dims}, found {found}: "
                    f"{found - expected} extra bytes, the file is corrupt")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip or raw, detected from the content) into a new native-endian array.

    Shape: the dimensions in the header, e.g. (60000, 28, 28) for images, (60000,) for labels.
    Dtype: from the type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64). Raises :class:`DataError` when anything does not add up exactly.
    """
    return _parse_idx(_read_bytes(path), Path(path))


def _scan(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The four files in ``folder`` (any accepted spelling) and the names of those missing."""
    found, missing = {}, []
    for key, stem in FILES.items():
        names = (stem + ".gz", stem, stem.replace("-idx", ".idx"))
        hit = next((folder / n for n in names if (folder / n).is_file()), None)
        if hit:
            found[key] = hit
        else:
            missing.append(stem + "[.gz]")
    return found, missing


def _candidates(name: str, path: str | os.PathLike | None) -> list[tuple[Path, str]]:
    if path is not None:
        p = Path(path).expanduser()
        return [(p, "path argument"), (p / name, "path argument")]
    places = []
    if os.environ.get(ENV_VAR):
        env = Path(os.environ[ENV_VAR]).expanduser()
        places += [(env / name, f"${ENV_VAR}"), (env, f"${ENV_VAR}")]
    apt = _spec(name)["apt"]
    places += [(REPO_DATA_DIR / name, "the repository's data folder"),
               (SYSTEM_DATA_DIR / name, f"Debian package {apt}" if apt else "system data sets")]
    return places


def locate(name: str = "fashion-mnist", path: str | os.PathLike | None = None) -> Path:
    """The first folder in the lookup order that holds all four files of ``name``.

    Raises :class:`DatasetNotFoundError` naming every place looked at and how to fetch the data.
    """
    places = []
    for folder, label in _candidates(name, path):
        found, missing = _scan(folder)
        if not missing:
            return folder
        why = "does not exist" if not folder.is_dir() else "missing " + ", ".join(missing)
        places.append((f"{folder} ({label})", why))
    if path is None and not os.environ.get(ENV_VAR):
        places.insert(0, (f"${ENV_VAR}", "not set"))
    raise _not_found(name, places, path)


def _not_found(name: str, places: list[tuple[str, str]], path=None, download_note: str = "") -> DatasetNotFoundError:
    if download_note:
        places = places + [("download", download_note)]
    lines = [f"Data set {name!r} not found. Looked in, in this order:"]
    lines += [f"  {i}. {where}: {why}" for i, (where, why) in enumerate(places, 1)]
    lines += ["To get it, run:", f"    {_fetch_command(name, Path(path) if path is not None else None)}"]
    if _spec(name)["apt"] and path is None:
        lines += [f"or (Debian/Ubuntu): sudo apt-get install {_spec(name)['apt']}"]
    if path is None:
        lines += [f"or set {ENV_VAR} to a folder holding {name}/ (or the four files) — see data/README.md."]
    return DatasetNotFoundError("\n".join(lines), places)


def fetch(name: str = "fashion-mnist", dest: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """Download the four ``.gz`` files of ``name`` into ``dest`` (default ``data/<name>/``).

    Each file is verified (size, MD5, SHA-256 from ``data/checksums.json``) before it is renamed
    into place; mirrors are tried in order. Files already present and verified are kept.
    Returns the folder. Raises :class:`DownloadError` naming every URL tried and what went wrong.
    """
    mirrors, sums = _spec(name)["mirrors"], _checksums()[name]
    dest = Path(dest).expanduser() if dest is not None else REPO_DATA_DIR / name
    for stem in FILES.values():
        target, expected = dest / f"{stem}.gz", sums[f"{stem}.gz"]
        if target.is_file() and not mismatch(expected, digest(target.read_bytes())):
            continue  # already here and verified
        download_file([base + target.name for base in mirrors], target, expected, progress=progress)
    return dest


def _check_content(raw: bytes, path: Path, name: str, stem: str, full: bool) -> None:
    """Full check: decompressed content against its recorded checksums. Cheap check (labels):
    refuse a file that is recognisably the same file of *another* data set."""
    sums = _checksums()
    if full:
        bad = mismatch(sums[name][stem + ".gz"]["raw"], digest(raw))
        if bad:
            official = "committed" if name.endswith("-sample") else "official"
            raise _fail(path, f"content differs from the {official} {name} {stem}: {bad}")
        return
    md5 = hashlib.md5(raw).hexdigest()
    for other, files in sums.items():
        if other not in (name, sample_key(name)) and not other.startswith("_") \
                and files[stem + ".gz"]["raw"]["md5"] == md5:
            raise DataError(f"{path} is the {other} {stem}, not {name}: this folder holds {other}. "
                            f"Put each data set in its own <name>/ folder (see data/README.md).")


def verify(name: str = "fashion-mnist", path: str | os.PathLike | None = None) -> Path:
    """Locate ``name`` and check every file's decompressed content against ``data/checksums.json``.
    Returns the folder; raises :class:`DataError` on a mismatch."""
    folder = locate(name, path)
    for key, file in _scan(folder)[0].items():
        _check_content(_read_bytes(file), file, name, FILES[key], full=True)
    return folder


@dataclass(frozen=True, repr=False)
class Dataset:
    """A loaded data set. Images uint8 of shape (N, 28, 28), labels int64 of shape (N,):
    60000 training and 10000 test examples for Fashion-MNIST and MNIST."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    class_names: tuple[str, ...]
    source: Path
    sample: bool = False  # the committed sample (ci and grade profiles), not the full data set

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        which = f"{self.name!r} sample" if self.sample else repr(self.name)
        return (f"Dataset({which}: x_train {self.x_train.shape} {self.x_train.dtype}, "
                f"x_test {self.x_test.shape}, {self.num_classes} classes, from {self.source})")


def _use_sample(name: str, path: str | os.PathLike | None, sample: bool | None) -> bool:
    if sample is None:  # as the budget profile says, unless a path was given or there is no sample
        from .training import budget  # lazily: training does not need data, nor data training

        return path is None and name in SAMPLE_SIZES and budget().sample
    if sample and name not in SAMPLE_SIZES:
        raise ValueError(f"there is no committed sample of {name!r} (only of {', '.join(SAMPLE_SIZES)}); "
                         "use sample=False")
    if sample and path is not None:
        raise ValueError("pass either path= or sample=True, not both: the sample lives in data/sample/")
    return bool(sample)


def _load_sample(name: str) -> Dataset:
    """The committed sample, every file verified against its checksums (2 MB: milliseconds)."""
    folder = sample_folder(name)
    files, missing = _scan(folder)
    if missing:
        raise DatasetNotFoundError(
            f"The committed sample of {name!r} is incomplete: {folder} lacks {', '.join(missing)}. "
            f"Restore it with `git checkout -- '{folder}'` (or regenerate it: python scripts/make_data_sample.py), "
            f"or use the full data set: LABLIB_PROFILE=full.", [(str(folder), "missing " + ", ".join(missing))])
    return _read_folder(name, folder, files, sample=True)


def load_dataset(name: str = "fashion-mnist", path: str | os.PathLike | None = None, *,
                 download: bool = True, progress: bool = True, verify: bool = False,
                 sample: bool | None = None) -> Dataset:
    """Load ``"fashion-mnist"`` (default) or ``"mnist"`` from the first place in the lookup order.

    Downloads into ``data/<name>/`` when it is found nowhere (unless ``download=False`` or an
    explicit ``path`` was given). ``verify=True`` also checks every file's checksum (slower).
    ``sample``: ``True`` loads the committed sample (``data/sample/<name>/``, the same number of
    images of every class: ``SAMPLE_SIZES``), ``False`` the full data set;
    ``None`` (default) follows the budget profile: the sample under ``ci`` and ``grade`` (unless a
    ``path`` is given), the full set under ``full``.
    Returns a :class:`Dataset`; raises :class:`DatasetNotFoundError` or :class:`DataError`.
    """
    if _use_sample(name, path, sample):
        return _load_sample(name)
    _spec(name)
    try:
        folder = locate(name, path)
    except DatasetNotFoundError as err:
        if path is not None:
            raise
        if not download:
            raise _not_found(name, err.places, None, "disabled (download=False)") from None
        try:
            folder = fetch(name, progress=progress)
        except OSError as dl:  # DownloadError, or data/<name>/ not writable
            raise _not_found(name, err.places, None, f"failed: {dl}") from dl
    return _read_folder(name, folder, _scan(folder)[0], verify=verify)


def _read_folder(name: str, folder: Path, files: dict[str, Path], *, verify: bool = False,
                 sample: bool = False) -> Dataset:
    """Read and validate the four files of ``name`` in ``folder`` (a sample is always verified)."""
    spec, arrays = _spec(name), {}
    for key, file in files.items():
        raw = _read_bytes(file)
        if sample:
            _check_content(raw, file, sample_key(name), FILES[key], full=True)
        elif verify or key.startswith("y"):
            _check_content(raw, file, name, FILES[key], full=verify)
        arrays[key] = _parse_idx(raw, file)
    for split in ("train", "test"):
        x, y, fx, fy = arrays[f"x_{split}"], arrays[f"y_{split}"], files[f"x_{split}"], files[f"y_{split}"]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise _fail(fx, f"expected uint8 images of shape (N, rows, cols), found {x.dtype} {x.shape}")
        if y.ndim != 1 or y.dtype != np.uint8:
            raise _fail(fy, f"expected uint8 labels of shape (N,), found {y.dtype} {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{fx} holds {len(x)} images but {fy} holds {len(y)} labels: the two files "
                            f"do not belong together. {_refetch_hint(fx)}")
        if len(y) and y.max() >= len(spec["class_names"]):
            raise _fail(fy, f"label {y.max()} is out of range 0..{len(spec['class_names']) - 1}")
        arrays[f"y_{split}"] = y.astype(np.int64)
    return Dataset(**arrays, name=name, class_names=spec["class_names"], source=folder, sample=sample)


class Standardizer:
    """Zero mean, unit variance, with statistics from the training data only.

    ``per_pixel=False`` (default): one scalar mean and std; ``True``: one per pixel (pixels that
    never vary get std 1). ``transform`` flattens (N, 28, 28) to (N, 784) and returns float32.
    """

    def __init__(self, per_pixel: bool = False):
        self.per_pixel = per_pixel
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> "Standardizer":
        """Compute mean and std (float64) of ``x`` of shape (N, ...); returns self."""
        x = np.asarray(x).reshape(len(x), -1)
        if x.size == 0:
            raise ValueError("cannot fit a Standardizer on an empty array")
        axis, n = (0, len(x)) if self.per_pixel else (None, x.size)
        mean = x.mean(axis=axis, dtype=np.float64)  # in chunks: no float64 copy of all of x
        sq = sum(((x[i:i + 4096] - mean) ** 2).sum(axis=axis) for i in range(0, len(x), 4096))
        std = np.sqrt(sq / n)
        self.mean_, self.std_ = mean, np.where(std > 1e-12, std, 1.0)
        return self

    def _check(self, x: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("Standardizer is not fitted: call fit(x_train) first")
        x = np.asarray(x).reshape(len(x), -1)
        if self.per_pixel and x.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"fitted on {self.mean_.shape[0]} features, got {x.shape[1]}")
        return x

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) -> (N, D) float32, standardized with the fitted statistics."""
        x = self._check(x)
        return (x.astype(np.float32) - self.mean_.astype(np.float32)) / self.std_.astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """(N, D) standardized -> (N, D) float32 in the original units."""
        z = self._check(z)
        return (z * self.std_ + self.mean_).astype(np.float32)


def iterate_minibatches(x: np.ndarray, y: np.ndarray, batch_size: int,
                        rng: np.random.Generator | int | None = None, shuffle: bool = True,
                        drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(xb, yb)`` batches of ``batch_size`` rows covering every example once per call.

    With ``shuffle=True`` the order is a permutation drawn from ``rng`` (a Generator or a seed;
    ``None`` draws fresh entropy, not reproducible) and batches are copies; with ``shuffle=False``
    they are views in the original order. ``drop_last`` drops a final incomplete batch.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = np.random.default_rng(rng).permutation(len(x)) if shuffle else None
    stop = len(x) - len(x) % batch_size if drop_last else len(x)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, stop, batch_size):
            if order is None:
                yield x[start:start + batch_size], y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                yield x[idx], y[idx]

    return batches()


def main(argv: list[str] | None = None) -> int:
    """``python -m lablib.data {fetch,locate,verify} [NAME] [--dest DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m lablib.data", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("fetch", "locate", "verify"))
    parser.add_argument("name", nargs="?", default="fashion-mnist", choices=tuple(DATASETS))
    parser.add_argument("--dest", help="fetch: folder to download into (default data/NAME/); "
                                       "locate/verify: folder to look in")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch(args.name, args.dest, progress=not args.no_progress))
        elif args.command == "locate":
            print(locate(args.name, args.dest))
        else:
            print(f"{verify(args.name, args.dest)}: all four files match data/checksums.json")
    except (DatasetNotFoundError, DataError, DownloadError) as err:
        parser.exit(1, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

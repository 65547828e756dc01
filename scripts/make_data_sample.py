"""Regenerate the committed Fashion-MNIST sample (data/sample/fashion-mnist/) and its checksums.

The `ci` and `grade` budget profiles train on this sample, so that the tests, the self-check and
the autograder need neither Debian's package nor a download. It is a stratified subset of the
official files: `SAMPLE_SIZES` images of every class from the training set and from the test set,
drawn with a fixed seed and written as gzip IDX files with a fixed header (no file name, time 0),
so that a rerun writes the same bytes. The checksums go to `data/checksums.json` under
`fashion-mnist-sample` (the `raw` entries are what `load_dataset` verifies).

    python scripts/make_data_sample.py                      # from wherever load_dataset finds the full set
    python scripts/make_data_sample.py --source /usr/share/datasets/fashion-mnist
    python scripts/make_data_sample.py --dest /tmp/sample   # elsewhere; checksums.json is left alone
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without an install

from lablib import data  # noqa: E402 - after the path set-up above
from lablib.download import digest  # noqa: E402

#: Seed of the draw (numpy.random.default_rng): changing it changes the sample and its checksums.
SEED = 0
#: gzip level of the written files (9: smallest; the bytes depend on it).
GZIP_LEVEL = 9


def _idx(arr: np.ndarray) -> bytes:
    """uint8 array -> IDX bytes (type code 0x08, big-endian dimensions)."""
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def stratified(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `per_class` examples of every class of y (N,), in a random order."""
    chosen = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]
    return rng.permutation(np.concatenate(chosen))


def build_sample(source: Path, dest: Path, name: str = "fashion-mnist") -> dict[str, dict]:
    """Write the sample of `name` read from `source` into `dest`; returns its checksums.json entries."""
    full = data.load_dataset(name, path=source, download=False, sample=False)
    rng = np.random.default_rng(SEED)
    sizes = data.SAMPLE_SIZES[name]
    picked = {}
    for split in ("train", "test"):
        idx = stratified(getattr(full, f"y_{split}"), sizes[split], rng)
        picked[f"x_{split}"] = getattr(full, f"x_{split}")[idx]
        picked[f"y_{split}"] = getattr(full, f"y_{split}")[idx].astype(np.uint8)
    dest.mkdir(parents=True, exist_ok=True)
    entries = {}
    for key, stem in data.FILES.items():
        raw = _idx(picked[key])
        packed = gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
        (dest / f"{stem}.gz").write_bytes(packed)
        entries[f"{stem}.gz"] = {**digest(packed), "raw": digest(raw)}
    return entries


def dump_checksums(sums: dict) -> str:
    """checksums.json in its committed layout: one file per block, its `raw` digest on one line."""
    blocks = []
    for name, files in sums.items():
        if not isinstance(files, dict):
            blocks.append(f"  {json.dumps(name)}: {json.dumps(files, ensure_ascii=False)}")
            continue
        entries = []
        for file, entry in files.items():
            fields = [f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in entry.items()]
            entries.append(f"    {json.dumps(file)}: {{\n" + ",\n".join(fields) + "\n    }")
        blocks.append(f"  {json.dumps(name)}: {{\n" + ",\n".join(entries) + "\n  }")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, help="folder of the full data set (default: load_dataset's lookup)")
    parser.add_argument("--dest", type=Path, help="where to write (default data/sample/fashion-mnist/, "
                                                  "which also updates data/checksums.json)")
    args = parser.parse_args(argv)
    name = "fashion-mnist"
    source = args.source or data.locate(name)
    dest = args.dest or data.sample_folder(name)
    entries = build_sample(source, dest, name)
    if args.dest is None:
        sums = json.loads(data.CHECKSUMS_FILE.read_text())
        sums[data.sample_key(name)] = entries
        data.CHECKSUMS_FILE.write_text(dump_checksums(sums))
    total = sum(e["size"] for e in entries.values())
    print(f"{dest}: {total / 1e6:.2f} MB from {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

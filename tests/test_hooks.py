"""L1 normalisation and clamping, in place."""

from __future__ import annotations

import pytest
import torch

from runner.core.hooks import clamp_, normalize_l1_


def test_normalize_rows_to_target_l1_norm():
    w = torch.tensor(
        [[1.0, 3.0, 0.0, 4.0], [0.5, -0.5, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64
    )
    out = normalize_l1_(w, 78.4)
    assert out is w
    # row 0: norm 8 -> scaled by 9.8; row 1: norm 2 -> 39.2, sign kept; zero row stays zero
    assert w[0].tolist() == pytest.approx([9.8, 29.4, 0.0, 39.2], rel=1e-15)
    assert w[1].tolist() == pytest.approx([19.6, -19.6, 0.0, 39.2], rel=1e-15)
    assert w[2].tolist() == [0.0] * 4


def test_normalize_diehl_cook_weights_float32():
    w = torch.rand(100, 784, generator=torch.Generator().manual_seed(0)) * 0.3
    normalize_l1_(w, 78.4)
    assert torch.allclose(w.sum(dim=1), torch.full((100,), 78.4), rtol=1e-5)


def test_normalize_along_another_dim_and_on_a_parameter():
    p = torch.nn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 2.0]]), requires_grad=False)
    normalize_l1_(p, 1.0, dim=0)
    assert p.tolist() == [[0.25, 0.5], [0.75, 0.5]]  # exact: powers of two
    with pytest.raises(ValueError, match="target must be a finite number"):
        normalize_l1_(p, float("nan"))


def test_clamp_in_place_with_numbers_tensors_and_none():
    w = torch.tensor([-1.0, 0.5, 2.0, 12.0])
    assert clamp_(w, min=0.0) is w and w.tolist() == [0.0, 0.5, 2.0, 12.0]
    clamp_(w, max=10.0)
    assert w.tolist() == [0.0, 0.5, 2.0, 10.0]
    clamp_(w, min=torch.tensor([0.0, 1.0, 0.0, 0.0]), max=torch.tensor([9.0, 9.0, 1.5, 9.0]))
    assert w.tolist() == [0.0, 1.0, 1.5, 9.0]
    clamp_(w)
    assert w.tolist() == [0.0, 1.0, 1.5, 9.0]
    with pytest.raises(ValueError, match="min must be <= max"):
        clamp_(w, min=2.0, max=1.0)

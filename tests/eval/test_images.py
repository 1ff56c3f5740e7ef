import pytest
import torch

from stylegan_eval.images import area_downsample, to_uint8


def test_area_downsample_equals_block_means():
    x = torch.randn(2, 3, 8, 8)
    y = area_downsample(x, 2)
    assert y.shape == (2, 3, 2, 2)
    assert torch.allclose(y[1, 2, 1, 0], x[1, 2, 4:8, 0:4].mean())
    assert area_downsample(x, 8) is x


def test_area_downsample_rejects_non_integer_factor():
    with pytest.raises(ValueError, match="integer factor"):
        area_downsample(torch.zeros(1, 1, 6, 6), 4)


def test_to_uint8_matches_official_mapping():
    x = torch.tensor([-1.0, -2.0, 0.0, 1.0, 0.999])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255]

"""stylegan_eval.feature_extractor: the inference form (batch norms folded into the convolutions,
weights channels_last) computes the wrapped network's function."""

import pytest
import torch
from torch import nn

from stylegan_eval.feature_extractor import fold_batch_norms
from stylegan_eval.inception import random_inception_state_dict, substitute_inception


class ConvBN(nn.Module):
    """The BasicConv2d shape: conv, batch norm, ReLU."""

    def __init__(self, conv_bias: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1, bias=conv_bias)
        self.bn = nn.BatchNorm2d(5, eps=1e-3)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


@pytest.mark.parametrize("conv_bias", [False, True])
def test_fold_batch_norms_keeps_the_function(conv_bias):
    torch.manual_seed(0)
    net = nn.Sequential(ConvBN(conv_bias), nn.MaxPool2d(2))
    with torch.no_grad():  # statistics and affine far from the identity, so a wrong fold shows
        bn = net[0].bn
        bn.running_mean.uniform_(-2, 2), bn.running_var.uniform_(0.1, 3)
        bn.weight.uniform_(-2, 2), bn.bias.uniform_(-1, 1)
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        want = net(x)
        folded = fold_batch_norms(net)
        got = folded(x)
    assert isinstance(folded[0].bn, nn.Identity) and folded[0].conv.bias is not None
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_fold_batch_norms_refuses_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(ConvBN(False).train())


def test_extractor_runs_channels_last_and_matches_torch_fidelitys_forward():
    from stylegan_eval.inception import _structure

    extractor = substitute_inception(1)
    convs = [m for m in extractor.net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in extractor.net.modules())
    reference = _structure()
    reference.load_weights(random_inception_state_dict(1))
    x = torch.randint(0, 256, (3, 3, 48, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        (want,) = reference.eval()(x)
        got = extractor(x)
    assert got.shape == (3, 2048)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_inference_form_keeps_batch_independence():
    """A sample's features do not depend on its batch companions (up to float32 rounding)."""
    extractor = substitute_inception(2)
    x = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    whole = extractor(x)
    parts = torch.cat([extractor(x[:1]), extractor(x[1:])])
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-5 * whole.abs().max().item())

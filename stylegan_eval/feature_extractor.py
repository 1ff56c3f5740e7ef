"""The feature networks of the image metrics as one interface: torch-fidelity's extractors
(Inception-v3 pool3 for FID and KID, stylegan_eval.inception; VGG16 fc2 for precision and recall,
stylegan_eval.vgg16) wrapped so that uint8 images [N, 3, H, W] go in and float32 features
[N, dim] come out, with the `identity` records carry and the `digest` (SHA-256 of the weights)
that keys the dataset caches. Test stand-ins provide the same three attributes.

The wrapped network runs in its inference form (`inference_form`): each batch norm folded into
the convolution before it and every weight stored channels_last. On CPU that is about 1.5x faster
for Inception and 1.25x for VGG16 (`benchmarks/test_bench_fid.py`), with features equal to
the library's own forward up to float32 rounding (a few 1e-7 relative).
"""

import torch

from stylegan_eval.fid_cache import tensors_sha256
from stylegan_eval.records import FeatureNetwork


class FeatureExtractor(torch.nn.Module):
    """uint8 images [N, 3, H, W] (any H, W) -> float32 features [N, dim] of a torch-fidelity
    extractor `net` (which returns a one-element tuple, its one requested layer)."""

    def __init__(self, net: torch.nn.Module, identity: FeatureNetwork, digest: str, dim: int):
        super().__init__()
        self.net = inference_form(net.eval().requires_grad_(False))
        self.identity = identity
        self.digest = digest
        self.dim = dim

    @classmethod
    def pretrained(cls, net: torch.nn.Module, name: str, weights, dim: int) -> "FeatureExtractor":
        """`net` holding the checked file `weights` (stylegan_eval.weights.load_pretrained's result)."""
        identity = FeatureNetwork(name=name, weights=str(weights.path), substitute=False, sha256=weights.sha256)
        return cls(net, identity, weights.sha256, dim)

    @classmethod
    def substitute(cls, net: torch.nn.Module, name: str, label: str, dim: int) -> "FeatureExtractor":
        """`net` with seeded random weights, labelled `substitute:<label>` in every record."""
        identity = FeatureNetwork(name=name, weights=f"substitute:{label}", substitute=True)
        return cls(net, identity, tensors_sha256(net.state_dict()), dim)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        (features,) = self.net(images)
        return features  # [N, dim]


@torch.no_grad()
def fold_batch_norms(net: torch.nn.Module) -> torch.nn.Module:
    """In place: every `conv` + `bn` pair (the BasicConv2d of torch-fidelity's and torchvision's
    Inception: convolution, batch norm, ReLU) becomes one convolution with a bias, and the batch
    norm an identity. In eval mode the batch norm is the per-channel affine map
    `(y - mean) * gamma / sqrt(var + eps) + beta`, so this saves one full pass over every
    activation without changing the function."""
    for module in net.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if not (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)):
            continue
        if bn.training or not bn.track_running_stats:
            raise ValueError("fold_batch_norms needs batch norms in eval mode with running statistics")
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        bias = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        conv.weight = torch.nn.Parameter(conv.weight * scale[:, None, None, None], requires_grad=False)
        conv.bias = torch.nn.Parameter(bias, requires_grad=False)
        module.bn = torch.nn.Identity()
    return net


def inference_form(net: torch.nn.Module) -> torch.nn.Module:
    """`net` (eval mode) with its batch norms folded and its weights channels_last. A convolution
    whose weight is channels_last returns channels_last, so the whole network then runs in that
    layout, which the CPU's convolution, pooling and concatenation kernels process without the
    per-layer reorders that NCHW costs them."""
    return fold_batch_norms(net).to(memory_format=torch.channels_last)

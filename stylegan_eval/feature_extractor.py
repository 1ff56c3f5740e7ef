"""The feature networks of the image metrics as one interface: torch-fidelity's extractors
(Inception-v3 pool3 for FID and KID, stylegan_eval.inception; VGG16 fc2 for precision and recall,
stylegan_eval.vgg16) wrapped so that uint8 images [N, 3, H, W] go in and float32 features
[N, dim] come out, with the `identity` records carry and the `digest` (SHA-256 of the weights)
that keys the dataset caches. Test stand-ins provide the same three attributes.
"""

import torch

from stylegan_eval.fid_cache import tensors_sha256
from stylegan_eval.records import FeatureNetwork


class FeatureExtractor(torch.nn.Module):
    """uint8 images [N, 3, H, W] (any H, W) -> float32 features [N, dim] of a torch-fidelity
    extractor `net` (which returns a one-element tuple, its one requested layer)."""

    def __init__(self, net: torch.nn.Module, identity: FeatureNetwork, digest: str, dim: int):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
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

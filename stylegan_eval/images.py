"""Pure image helpers shared by the metrics (no models, no I/O)."""

import torch


def area_downsample(img: torch.Tensor, size: int) -> torch.Tensor:
    """Downsample [N, C, H, W] to [N, C, size, size] by averaging factor x factor blocks.

    As the official code: reshape to blocks and take the mean. H and W must be multiples of size.
    """
    n, c, h, w = img.shape
    if h == size and w == size:
        return img
    if h % size or w % size or h < size or w < size:
        raise ValueError(f"cannot area-downsample {h}x{w} to {size}x{size}: not an integer factor")
    fh, fw = h // size, w // size
    return img.reshape(n, c, size, fh, size, fw).mean(dim=(3, 5))


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Map a generator image in [-1, 1] to uint8 [0, 255] as the official code does:
    x * 127.5 + 128, clamp, truncate (the +0.5 of rounding is folded into +128)."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)

"""The peers' side of the side-by-side benchmarks: the project's networks run the way the
official code (NVlabs/stylegan networks_stylegan.py) and straightforward ports write them, every
op returning a new tensor: nearest upscale then a 3x3 conv (a transposed conv at >= 128), a
depthwise blur, and the layer epilogue noise -> bias -> leaky ReLU -> instance norm -> AdaIN as
separate ops. Same parameters, same outputs up to float rounding; only the computation differs.
"""

import torch
import torch.nn.functional as F

from stylegan_core.generator import Generator
from stylegan_core.layers import blur2d, instance_norm, pixel_norm, upscale2d


class OfficialStructureSynthesis:
    """G.synthesis's interface (lod 0) over the same parameters, computed op by op."""

    def __init__(self, synthesis):
        if float(synthesis.lod) != 0:
            raise ValueError("the official-structure synthesis is written for lod 0")
        self.net = synthesis
        self.noise_shapes = synthesis.noise_shapes
        self.num_ws, self.w_dim = synthesis.num_ws, synthesis.w_dim

    def _epilogue(self, epi, x, w, noise):
        if epi.noise is not None and noise is not None:
            x = x + noise * epi.noise.weight.reshape(1, -1, 1, 1)
        x = F.leaky_relu(x + epi.bias.bias.reshape(1, -1, 1, 1), 0.2)
        if self.net.config.use_pixel_norm:
            x = pixel_norm(x)
        if self.net.config.use_instance_norm:
            x = instance_norm(x)
        if epi.style is not None:
            style = epi.style.affine(w)
            y_s, y_b = style.chunk(2, dim=1)
            x = x * y_s[:, :, None, None] + y_b[:, :, None, None]
        return x

    @staticmethod
    def _up_conv(conv, x):
        w = conv.effective_weight()
        if not conv.fused:
            return F.conv2d(upscale2d(x), w, padding=1)
        w = F.pad(w, (1, 1, 1, 1))
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        return F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=1)

    def __call__(self, ws, noise_mode="random", noise=None, generator=None):
        net, n = self.net, ws.shape[0]
        if noise_mode == "given":
            noises = list(noise) or [None] * net.num_layers
        elif noise_mode == "const" and self.noise_shapes:
            noises = [getattr(net, f"noise_{i}") for i in range(net.num_layers)]
        elif noise_mode == "random" and self.noise_shapes:
            noises = [torch.randn(n, 1, h, w, generator=generator) for h, w in self.noise_shapes]
        else:
            noises = [None] * net.num_layers
        style = (lambda i: ws[:, i]) if net.config.use_styles else (lambda i: ws[:, 0])
        if net.const is not None:
            x = net.const.expand(n, -1, -1, -1)
        else:
            x = net.input_dense(ws[:, 0]).reshape(n, -1, 4, 4)
        x = self._epilogue(net.input_epi, x, style(0), noises[0])
        x = self._epilogue(net.conv4_epi, net.conv4(x), style(1), noises[1])
        for j, block in enumerate(net.blocks):
            x = self._up_conv(block.conv0, x)
            if block.blur:
                x = blur2d(x)
            x = self._epilogue(block.epi0, x, style(2 * j + 2), noises[2 * j + 2])
            x = self._epilogue(block.epi1, block.conv1(x), style(2 * j + 3), noises[2 * j + 3])
        return net.torgb[-1](x)


class OfficialStructureGenerator:
    """A project Generator's interface with the synthesis computed op by op."""

    def __init__(self, G: Generator):
        self.G = G
        self.mapping, self.synthesis = G.mapping, OfficialStructureSynthesis(G.synthesis)
        self.z_dim, self.w_dim, self.num_ws = G.z_dim, G.w_dim, G.num_ws
        self.img_resolution, self.img_channels = G.img_resolution, G.img_channels

    def __call__(self, z, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random", noise=None, generator=None):
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, noise=noise, generator=generator)

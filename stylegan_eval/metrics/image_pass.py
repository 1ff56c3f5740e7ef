"""One pass over generated samples 0..n-1 that serves every image metric at once.

FID, KID and precision/recall measure the same images (sample i from (seed, i): its latent, its
noise), and separability and DCI/MIG/SAP classify those same images (with their z, w and
StyleSpace s); generating them once per metric would
multiply the most expensive step. `image_pass` generates each sample once, and hands each batch
to every consumer that needs it; a batch computes each feature network at most once, so FID and
KID share their Inception features.

The loop mirrors the FID accumulation of stylegan_eval.metrics.fid: fixed chunks of sample
indices, sharded over torch.distributed ranks within a chunk and reduced (statistics) or gathered
in index order (rows) after it, so no result depends on the batch size or the process count.
"""

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from tqdm import tqdm

from stylegan_core import distributed
from stylegan_core.errors import NonFiniteError
from stylegan_eval.images import area_downsample
from stylegan_core.data import PREFETCH_WORKERS
from stylegan_eval.metrics.fid import DEFAULT_CHUNK, RunningStats, batch_schedule, dataset_batches
from stylegan_eval.metrics.generation import generate_float, quantize


@dataclass
class Batch:
    """Samples `indices` of one pass, with what consumers compute from them, each at most once."""

    indices: list[int]
    z: torch.Tensor | None  # [n, z_dim] CPU; None for dataset images
    ws: torch.Tensor | None  # [n, num_ws, w_dim]; None for dataset images
    images: torch.Tensor | None  # float [n, C, H, W] in ~[-1, 1]; None for dataset images
    seed: int
    _uint8: torch.Tensor | None = None
    _features: dict[int, torch.Tensor] = field(default_factory=dict)

    def uint8(self) -> torch.Tensor:
        """uint8 RGB [n, 3, H, W], quantised as the official code."""
        if self._uint8 is None:
            self._uint8 = quantize(self.images, self.indices, self.seed)
        return self._uint8

    def features(self, extractor: torch.nn.Module) -> torch.Tensor:
        """extractor(uint8 images) [n, dim]; computed once per batch and extractor."""
        key = id(extractor)
        if key not in self._features:
            f = extractor(self.uint8())
            if not torch.isfinite(f).all():
                raise NonFiniteError(f"{extractor.identity.name}: the feature network produced NaN or Inf")
            self._features[key] = f
        return self._features[key]


class Consumer(Protocol):
    """What a metric plugs into a pass: it sees samples 0..num-1 of it."""

    num: int

    def update(self, batch: Batch, rows: slice) -> None:
        """Take batch rows `rows` (the batch's samples below `num`)."""

    def end_chunk(self, chunk_size: int) -> None:
        """Collective after each chunk; `chunk_size` = this consumer's samples in the chunk."""


class StatsConsumer:
    """FID: float64 mean/covariance sums of extractor features."""

    def __init__(self, extractor: torch.nn.Module, num: int, device):
        self.extractor, self.num = extractor, num
        self.total, self._local = RunningStats(extractor.dim, device), RunningStats(extractor.dim, device)

    def update(self, batch: Batch, rows: slice) -> None:
        self._local.update(batch.features(self.extractor)[rows])

    def end_chunk(self, chunk_size: int) -> None:
        self._local.all_reduce()
        self.total.merge(self._local)
        self._local = RunningStats(self.extractor.dim, self.total.sum.device)


class LatentsAndProbs:
    """Separability: z, w = ws[:, 0] and the classifier's logits of the images, in index order."""

    def __init__(self, classifier: torch.nn.Module, num: int, z_dim: int, w_dim: int, device):
        self.classifier, self.num, self.device = classifier, num, torch.device(device)
        self.widths = (z_dim, w_dim, len(classifier.attribute_names))
        self._local: list[tuple[torch.Tensor, ...]] = []
        self._chunks: list[list[torch.Tensor]] = [[], [], []]

    def update(self, batch: Batch, rows: slice) -> None:
        img = area_downsample(batch.images[rows].float(), self.classifier.resolution)  # [n, C, res, res]
        logits = self.classifier(img).float()  # [n, A]
        ws = batch.ws[rows]
        if not torch.isfinite(logits).all() or not torch.isfinite(ws).all():
            idx = batch.indices[rows]
            raise NonFiniteError(f"non-finite generator or classifier output in samples {idx[0]}..{idx[-1]}")
        self._local.append((batch.z[rows], ws[:, 0].float(), logits))

    def end_chunk(self, chunk_size: int) -> None:
        for k, width in enumerate(self.widths):
            parts = [t[k].to(self.device) for t in self._local]
            local = torch.cat(parts) if parts else torch.empty((0, width), device=self.device)
            self._chunks[k].append(distributed.gather_by_index(local, chunk_size))  # CPU, index order
        self._local = []

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z [N, z_dim], w [N, w_dim] float32 and probs [N, A] float64 on the CPU; the official
        classifiers' probability of "present" is softmax([l, -l])[0] = sigmoid(2 l)."""
        z, w, logits = (torch.cat(c) for c in self._chunks)
        return z, w, torch.sigmoid(2.0 * logits.double())


class StyleScales:
    """StyleSpace S (stylegan_core.stylespace.style_scales) of the ws each image was generated
    from, float32 in index order on every rank; computed beside the image, so DCI/MIG/SAP in S
    share the pass that separability and the image metrics use."""

    def __init__(self, synthesis: torch.nn.Module, num: int, device):
        from stylegan_core.stylespace import stylespace_dim

        self.synthesis, self.num, self.device = synthesis, num, torch.device(device)
        self.dim = stylespace_dim(synthesis)  # a generator without styles fails here, before the pass
        self._local: list[torch.Tensor] = []
        self._chunks: list[torch.Tensor] = []

    def update(self, batch: Batch, rows: slice) -> None:
        from stylegan_core.stylespace import style_scales

        self._local.append(style_scales(self.synthesis, batch.ws[rows]).float())

    def end_chunk(self, chunk_size: int) -> None:
        local = torch.cat(self._local).to(self.device) if self._local else torch.empty((0, self.dim), device=self.device)
        self._chunks.append(distributed.gather_by_index(local, chunk_size))  # CPU, index order
        self._local = []

    def result(self) -> torch.Tensor:
        """s [N, dim] float32 on the CPU."""
        return torch.cat(self._chunks) if self._chunks else torch.zeros((0, self.dim))


Loader = Callable[[Iterable[list[int]]], Iterator[Batch]]  # index batches -> their Batches, in order


@torch.no_grad()
def run_pass(
    num: int,  # samples 0..num-1 (the largest any consumer needs)
    load: Loader,
    consumers: Sequence[Consumer],
    batch_size: int,
    chunk_size: int = DEFAULT_CHUNK,
    desc: str = "images",
    progress: bool = True,
) -> None:
    """Load every sample once and feed each consumer the samples below its `num`."""
    world = distributed.world_size()
    show = progress and distributed.is_main()
    schedule = batch_schedule(0, num, chunk_size, batch_size)
    wanted_batches = [idx for _, batches in schedule for idx in batches if any(c.num > idx[0] for c in consumers)]
    with tqdm(total=num, desc=desc, unit="img", disable=not show, leave=False) as bar, \
            contextlib.closing(load(wanted_batches)) as loaded:
        for chunk, batches in schedule:
            for indices in batches:
                wanted = [c for c in consumers if c.num > indices[0]]
                if not wanted:
                    continue
                batch = next(loaded)
                for c in wanted:
                    c.update(batch, slice(0, sum(i < c.num for i in indices)))  # indices ascend
                bar.update(min(len(indices) * world, num - bar.n))
            for c in consumers:
                if c.num > chunk.start:
                    c.end_chunk(min(chunk.stop, c.num) - chunk.start)


def generated_loader(G, seed: int, device) -> Loader:
    """Samples of G without truncation (metrics never truncate), as the metric noise rule says;
    generated when the pass asks for them (the generator is the network, nothing to overlap)."""

    def load(batches: Iterable[list[int]]) -> Iterator[Batch]:
        for indices in batches:
            with torch.no_grad():
                z, ws, img = generate_float(G, indices, seed, device)
            yield Batch(indices, z, ws, img, seed)

    return load


def dataset_loader(ds, device, workers: int = PREFETCH_WORKERS) -> Loader:
    """Dataset images as uint8 RGB batches (for feature consumers only), loaded ahead of the
    network by stylegan_eval.metrics.fid.dataset_batches."""

    def load(batches: Iterable[list[int]]) -> Iterator[Batch]:
        batches = list(batches)
        with contextlib.closing(dataset_batches(ds, batches, device, workers)) as loaded:
            for indices, images in zip(batches, loaded):
                batch = Batch(indices, None, None, None, 0)
                batch._uint8 = images
                yield batch

    return load

"""DCI, MIG and SAP of a generator's latent spaces Z, W and StyleSpace S, with attribute classifiers
as the ground-truth factors.

Sampling is linear separability's (stylegan_eval.metrics.separability.sample_latents_and_probs): sample i
has z from (seed, 0, i), per-layer noise from (seed, 1, i), w = mapping(z) without truncation,
the image area-downsampled to the classifier's resolution, and p = sigmoid(2 logit) per attribute.
Then:
- S = the concatenated style scales A_i(w) of every layer (stylegan_core.stylespace); without
  truncation or mixing every layer gets the same w, so S is computed from w;
- factors = the classifier's LABELS, present = p >= 0.5 (the argmax of [p, 1 - p], as LS): all
  three scores are defined for discrete factors; probabilities are not used;
- one sample set of N for every score: DCI and SAP split it into train and test rows by a seeded
  permutation in their protocol's proportion (10,000 : 5,000), MIG bins all N;
- an attribute whose labels have a single class (in the training split for DCI/SAP, in all
  samples for MIG) cannot be measured: it is dropped from that score and listed in
  `excluded_factors`.

Under torchrun every rank samples and classifies its share of the indices; rank 0 fits and
returns the records, other ranks return an empty list.
"""

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from stylegan_core import distributed
from stylegan_core.stylespace import style_scales, stylespace_dim
from stylegan_eval.metrics.disentanglement import (
    PROTOCOLS,
    REGRESSORS,
    SCORES,
    DisentanglementError,
    DisentanglementProtocol,
    Regressor,
    ScoreName,
    dci,
    mig,
    sap,
    split_indices,
)
from stylegan_eval.records import FeatureNetwork, ResultRecord, file_sha256
from stylegan_eval.metrics.separability import labels_from_probs, sample_latents_and_probs

LatentSpace = Literal["z", "w", "s"]
SPACES: tuple[LatentSpace, ...] = ("z", "w", "s")


@dataclass(frozen=True)
class DisentanglementExtras:
    """The `extras` of a disentanglement record: what the report and figures read."""

    score: ScoreName  # "dci" | "mig" | "sap"
    space: LatentSpace  # "z" | "w" | "s"
    dims: int  # D, the dimension of the space
    factors: list[str]  # the K attributes measured, in column order
    excluded_factors: list[str]  # single-class attributes left out of this score
    per_factor: list[float]  # DCI: completeness per factor; MIG, SAP: the normalised top-two gap
    top_codes: list[list[int]]  # [K][2] the most and second most important code per factor
    num_train: int  # samples fitted (MIG: samples binned)
    num_test: int  # held-out samples (0 for MIG)
    processes: int  # torch.distributed processes that sampled
    regressor: str = ""  # DCI: "gbt" | "lasso"; "" for MIG and SAP
    completeness: float | None = None  # DCI only (the record's value is the disentanglement)
    informativeness_train: float | None = None  # DCI: mean predictor accuracy on the train split
    informativeness_test: float | None = None  # DCI: ... on the test split
    test_accuracy: list[float] = field(default_factory=list)  # DCI: per factor
    importance: list[list[float]] = field(default_factory=list)  # DCI: R [D][K]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DisentanglementExtras":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown disentanglement extras {sorted(unknown)}")
        return cls(**d)


@torch.no_grad()
def sample_spaces_and_labels(
    G: torch.nn.Module,  # generator interface; "s" needs a style-based synthesis network
    classifier: torch.nn.Module,  # AttributeClassifier
    num_samples: int,
    batch_size: int,  # per rank; does not change the result
    seed: int,
    device: torch.device,
    spaces: tuple[LatentSpace, ...] = SPACES,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """{space: latents [N, D] float32} and labels int64 [N, A] (present = p >= 0.5), on every rank."""
    z, w, probs = sample_latents_and_probs(G, classifier, num_samples, batch_size, seed, device, progress)
    out = {}
    if "z" in spaces:
        out["z"] = z.numpy()
    if "w" in spaces:
        out["w"] = w.numpy()
    if "s" in spaces:
        parts = [style_scales(G.synthesis, w[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(w), batch_size)]
        out["s"] = torch.cat(parts).numpy()
    return {s: out[s] for s in spaces}, labels_from_probs(probs.numpy())


def _usable(labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Columns of labels with both classes among `rows`."""
    sub = labels[rows]
    return np.array([np.unique(sub[:, k]).size > 1 for k in range(labels.shape[1])], dtype=bool)


def score_space(
    score: ScoreName,
    latents: np.ndarray,  # [N, D]
    labels: np.ndarray,  # [N, A] int
    names: list[str],  # A attribute names
    protocol: DisentanglementProtocol,  # constants; its sample counts are rescaled to N
    space: LatentSpace,
    seed: int,  # split seed
    n_jobs: int = 1,
) -> tuple[float, DisentanglementExtras]:
    """One score of one space: (headline value, extras), after dropping single-class attributes."""
    n = latents.shape[0]
    proto = protocol.with_samples(n) if score != "mig" else dataclasses.replace(protocol, num_train=n, num_test=0)
    rows = np.arange(n) if score == "mig" else split_indices(n, proto.num_test, seed)[0]
    keep = _usable(labels, rows)
    kept = [nm for nm, k in zip(names, keep) if k]
    dropped = [nm for nm, k in zip(names, keep) if not k]
    need = 2 if score == "dci" else 1
    if len(kept) < need:
        raise DisentanglementError(
            f"{score} on {space}: {len(kept)} of {len(names)} attributes have both classes in {n} samples "
            f"(single class: {', '.join(dropped) or 'none'}); {score} needs {need}: use more samples or another classifier"
        )
    y = labels[:, keep]
    common = dict(score=score, space=space, dims=int(latents.shape[1]), factors=kept, excluded_factors=dropped,
                  num_train=proto.num_train, num_test=proto.num_test, processes=distributed.world_size())
    if score == "dci":
        r = dci(latents, y, proto.num_test, seed, proto, n_jobs)
        top = np.argsort(-r.importance, axis=0, kind="stable")[:2].T
        return r.disentanglement, DisentanglementExtras(
            **common, per_factor=r.completeness_per_factor.tolist(), top_codes=top.tolist(), regressor=proto.regressor,
            completeness=r.completeness, informativeness_train=r.informativeness_train,
            informativeness_test=r.informativeness_test, test_accuracy=r.test_accuracy.tolist(),
            importance=r.importance.tolist(),
        )
    r = mig(latents, y, proto.num_bins) if score == "mig" else sap(latents, y, proto.num_test, seed, proto.svm_c, n_jobs)
    return r.score, DisentanglementExtras(**common, per_factor=r.per_factor.tolist(), top_codes=r.top_codes.tolist())


def compute_disentanglement(
    G: torch.nn.Module,  # generator interface of DESIGN.md
    classifier: torch.nn.Module,  # AttributeClassifier (stylegan_eval.classifier)
    spaces: tuple[LatentSpace, ...] = SPACES,
    scores: tuple[ScoreName, ...] = SCORES,
    num_samples: int | None = None,  # None = the protocols' 15,000 (10,000 train + 5,000 test)
    dci_regressor: Regressor = "gbt",  # "gbt" (disentanglement_lib) | "lasso" (for S at scale)
    batch_size: int = 64,  # per rank; the result does not depend on it
    seed: int = 0,  # samples (seed, i) and the train/test split
    device: str | torch.device = "cpu",
    n_jobs: int = 1,  # fits at once on rank 0 (processes)
    model: str = "generator",
    checkpoint: str | None = None,
    preset: str | None = None,
    progress: bool = True,
) -> list[ResultRecord]:
    """Records "<score>_<space>" (e.g. "dci_s", "mig_w") for every requested space and score, in
    space-major order. DCI's value is the disentanglement (completeness and informativeness in
    extras); MIG's and SAP's are the mean top-two gaps."""
    if not spaces or len(set(spaces)) != len(spaces) or not set(spaces) <= set(SPACES):
        raise DisentanglementError(f"spaces must be distinct names from {SPACES}, got {spaces}")
    if not scores or len(set(scores)) != len(scores) or not set(scores) <= set(SCORES):
        raise DisentanglementError(f"scores must be distinct names from {SCORES}, got {scores}")
    if dci_regressor not in REGRESSORS:
        raise DisentanglementError(f"dci_regressor must be one of {REGRESSORS}, got {dci_regressor!r}")
    protocols = {s: PROTOCOLS["dci_lasso" if s == "dci" and dci_regressor == "lasso" else s] for s in scores}
    n = max(p.num_samples for p in protocols.values()) if num_samples is None else num_samples
    if n < 4:
        raise DisentanglementError(f"num_samples must be at least 4, got {n}")
    if batch_size < 1 or n_jobs < 1:
        raise DisentanglementError(f"batch_size and n_jobs must be >= 1, got {batch_size} and {n_jobs}")
    if "s" in spaces:
        stylespace_dim(G.synthesis)  # a generator without styles fails here, before sampling
    device = torch.device(device)
    t0 = time.time()
    latents, labels = sample_spaces_and_labels(G, classifier, n, batch_size, seed, device, spaces, progress)
    if not distributed.is_main():
        return []
    names = list(classifier.attribute_names)
    fn = FeatureNetwork(
        name=f"attribute-classifier-{classifier.resolution}px",
        weights=getattr(classifier, "source", None) or "in-memory",
        substitute=False,
        sha256=getattr(classifier, "sha256", None),
    )
    sha = file_sha256(checkpoint) if checkpoint is not None else None
    sample_time = time.time() - t0
    records = []
    for space in spaces:
        for score in scores:
            t1 = time.time()
            proto = protocols[score]
            value, extras = score_space(score, latents[space], labels, names, proto, space, seed, n_jobs)
            params = {"space": space, "score": score, "preset": preset, "attributes": names,
                      "factors": "classifier labels, present = sigmoid(2 logit) >= 0.5",
                      "classifier_resolution": classifier.resolution, "w_layer": 0 if space == "w" else None,
                      "noise": "per-sample random (seed, 1, i)", "device": device.type}
            if score == "dci":
                params.update(regressor=proto.regressor, gbt=f"{proto.gbt_estimators} trees, depth {proto.gbt_depth}, "
                              f"lr {proto.gbt_learning_rate}", lasso_c=proto.lasso_c)
            elif score == "mig":
                params.update(num_bins=proto.num_bins)
            else:
                params.update(svm=f"LinearSVC(C={proto.svm_c}, class_weight='balanced', random_state=0) per code")
            records.append(ResultRecord(
                metric=f"{score}_{space}", value=float(value), params=params, num_samples=n, seed=seed, model=model,
                checkpoint=checkpoint, checkpoint_sha256=sha, feature_network=fn,
                wall_time_s=sample_time / (len(spaces) * len(scores)) + time.time() - t1, extras=extras.to_dict(),
            ))
    return records

"""DCI, MIG and SAP of a generator's latent spaces Z, W and StyleSpace S, with attribute classifiers
as the ground-truth factors.

Sampling is linear separability's, in the same pass over the generated images
(stylegan_eval.metrics.image_pass, which `stylegan-eval measure` shares between ls and these
scores): sample i has z from (seed, 0, i), per-layer noise from (seed, 1, i), w = mapping(z)
without truncation, the image area-downsampled to the classifier's resolution, and
p = sigmoid(2 logit) per attribute. Then:
- S = the concatenated style scales A_i(w) of every layer (stylegan_core.stylespace), computed
  beside each image from the ws it was generated with;
- factors = the classifier's LABELS, present = p >= 0.5 (the argmax of [p, 1 - p], as LS): all
  three scores are defined for discrete factors; probabilities are not used;
- one sample set for every score, each score taking its first N (its protocol's count, or the
  count asked for): DCI and SAP split them into train and test rows by a seeded permutation in
  their protocol's proportion (10,000 : 5,000 of 15,000), MIG bins all N (10,000, as
  disentanglement_lib's MIG);
- an attribute whose labels have a single class (in the training split for DCI/SAP, in all
  samples for MIG) cannot be measured: it is dropped from that score and listed in
  `excluded_factors`.

`measure_disentanglement(options, config, classifier)` follows the metric contract (typed
`DisentanglementExtras`, records made by `Provenance`); the registry names its protocols dci,
dci_lasso, mig and sap. Under torchrun every rank samples and classifies its share of the
indices; rank 0 fits and returns the results, other ranks return an empty list.
"""

import dataclasses
import time
from collections.abc import Sequence
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
from stylegan_eval.metrics.image_pass import LatentsAndProbs, StyleScales, generated_loader, run_pass
from stylegan_eval.metrics.options import MetricOptions
from stylegan_eval.metrics.separability import check_classifier, labels_from_probs
from stylegan_eval.provenance import MetricResult, Provenance
from stylegan_eval.records import FeatureNetwork, ResultRecord

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
    """{space: latents [N, D] float32} and labels int64 [N, A] (present = p >= 0.5), on every rank:
    one pass over the generated images (stylegan_eval.metrics.image_pass), S computed beside each
    image from the ws it was generated with."""
    check_classifier(G, classifier)
    G = G.to(device).eval()
    classifier = classifier.to(device).eval()
    latents = LatentsAndProbs(classifier, num_samples, G.z_dim, G.w_dim, device)
    styles = StyleScales(G.synthesis, num_samples, device) if "s" in spaces else None
    run_pass(num_samples, generated_loader(G, seed, device), [latents, *([styles] if styles else [])], batch_size,
             desc="disentanglement sampling", progress=progress)
    z, w, probs = latents.result()
    out = {"z": z.numpy(), "w": w.numpy(), **({"s": styles.result().numpy()} if styles else {})}
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


@dataclass(frozen=True)
class DisentanglementConfig:
    """One score in some latent spaces: a named protocol of stylegan_eval.metrics.registry
    ("dci", "dci_lasso", "mig", "sap"). Records "<score>_<space>", e.g. "dci_s"."""

    constants: DisentanglementProtocol  # the score and its constants (regressor, bins, C, train:test proportion)
    spaces: tuple[LatentSpace, ...] = SPACES
    num_samples: int = 15_000  # generated samples 0..n-1; DCI and SAP split them train:test as `constants`
    n_jobs: int = 1  # fits at once on rank 0 (processes); does not change the value

    def __post_init__(self):
        if not self.spaces or len(set(self.spaces)) != len(self.spaces) or not set(self.spaces) <= set(SPACES):
            raise DisentanglementError(f"spaces must be distinct names from {SPACES}, got {self.spaces}")
        if self.num_samples < 4:
            raise DisentanglementError(f"num_samples must be at least 4, got {self.num_samples}")
        if self.n_jobs < 1:
            raise DisentanglementError(f"n_jobs must be >= 1, got {self.n_jobs}")

    @staticmethod
    def of(score: ScoreName, regressor: Regressor = "gbt", spaces: tuple[LatentSpace, ...] = SPACES,
           num_samples: int | None = None, n_jobs: int = 1) -> "DisentanglementConfig":
        """The protocol's constants for `score` (DCI with `regressor`); num_samples None: the
        protocol's (DCI, SAP: 15,000 = 10,000 + 5,000; MIG: 10,000, as disentanglement_lib)."""
        if score not in SCORES:
            raise DisentanglementError(f"scores must be distinct names from {SCORES}, got {score!r}")
        if regressor not in REGRESSORS:
            raise DisentanglementError(f"dci_regressor must be one of {REGRESSORS}, got {regressor!r}")
        constants = PROTOCOLS["dci_lasso" if score == "dci" and regressor == "lasso" else score]
        return DisentanglementConfig(constants, tuple(spaces), constants.num_samples if num_samples is None else num_samples,
                                     n_jobs)


def _classifier_network(classifier) -> FeatureNetwork:
    return FeatureNetwork(
        name=f"attribute-classifier-{classifier.resolution}px",
        weights=getattr(classifier, "source", None) or "in-memory",
        substitute=False,
        sha256=getattr(classifier, "sha256", None),
    )


def disentanglement_results(options: MetricOptions, config: DisentanglementConfig, classifier: torch.nn.Module,
                            latents: dict[str, np.ndarray], labels: np.ndarray, sample_time_s: float) -> list[MetricResult]:
    """Score sampled latents {space: [M, D]} against the classifier's labels [M, A] (0/1, present =
    p >= 0.5; M >= num_samples, the first num_samples rows are used): one result per space. The fits run on rank 0; other
    ranks return an empty list. `sample_time_s`: this score's share of the sampling time."""
    if not distributed.is_main():
        return []
    n, proto, names = config.num_samples, config.constants, list(classifier.attribute_names)
    labels = np.asarray(labels)[:n]
    out = []
    for space in config.spaces:
        t1 = time.time()
        value, extras = score_space(proto.name, latents[space][:n], labels, names, proto, space, options.seed, config.n_jobs)
        params = {"space": space, "score": proto.name, "attributes": names,
                  "factors": "classifier labels, present = sigmoid(2 logit) >= 0.5",
                  "classifier_resolution": classifier.resolution, "w_layer": 0 if space == "w" else None,
                  "noise": "per-sample random (seed, 1, i)", "device": options.device.type}
        if proto.name == "dci":
            params.update(regressor=proto.regressor, gbt=f"{proto.gbt_estimators} trees, depth {proto.gbt_depth}, "
                          f"lr {proto.gbt_learning_rate}", lasso_c=proto.lasso_c)
        elif proto.name == "mig":
            params.update(num_bins=proto.num_bins)
        else:
            params.update(svm=f"LinearSVC(C={proto.svm_c}, class_weight='balanced', random_state=0) per code")
        out.append(MetricResult(f"{proto.name}_{space}", float(value), params, n, options.seed,
                                _classifier_network(classifier), sample_time_s / len(config.spaces) + time.time() - t1,
                                extras))
    return out


def measure_disentanglement(options: MetricOptions, config: DisentanglementConfig | Sequence[DisentanglementConfig],
                            classifier: torch.nn.Module) -> list[MetricResult]:
    """DCI, MIG or SAP of options.G's latent spaces with an AttributeClassifier's labels as factors.

    Several configs share one sample set (samples 0..max n - 1; each score takes its first n):
    one result per config and space, in config order. Under torchrun every rank samples its
    share; rank 0 fits and returns the results, other ranks an empty list.
    """
    configs = [config] if isinstance(config, DisentanglementConfig) else list(config)
    if not configs:
        raise DisentanglementError("no disentanglement score requested")
    spaces = tuple(s for s in SPACES if any(s in c.spaces for c in configs))
    t0 = time.time()
    latents, labels = sample_spaces_and_labels(options.G, classifier, max(c.num_samples for c in configs),
                                               options.batch_size, options.seed, options.device, spaces, options.progress)
    share = (time.time() - t0) / len(configs)
    return [r for c in configs for r in disentanglement_results(options, c, classifier, latents, labels, share)]


def compute_disentanglement(
    G: torch.nn.Module,  # honours stylegan_core.GeneratorInterface
    classifier: torch.nn.Module,  # AttributeClassifier (stylegan_eval.classifier)
    spaces: tuple[LatentSpace, ...] = SPACES,
    scores: tuple[ScoreName, ...] = SCORES,
    num_samples: int | None = None,  # None = each score's protocol count (DCI, SAP 15,000; MIG 10,000)
    dci_regressor: Regressor = "gbt",  # "gbt" (disentanglement_lib) | "lasso" (for S at scale)
    batch_size: int = 64,  # per rank; the result does not depend on it
    seed: int = 0,  # samples (seed, i) and the train/test split
    device: str | torch.device = "cpu",
    n_jobs: int = 1,  # fits at once on rank 0 (processes)
    model: str = "generator",
    checkpoint: str | None = None,  # the file G came from, for the records (hashed once)
    preset: str | None = None,
    progress: bool = True,
) -> list[ResultRecord]:
    """`measure_disentanglement` with keyword arguments: records "<score>_<space>" (e.g. "dci_s",
    "mig_w") for every requested space and score, in space-major order, from one sample set. DCI's
    value is the disentanglement (completeness and informativeness in extras); MIG's and SAP's are
    the mean top-two gaps. Rank 0 returns the records, other ranks an empty list."""
    if not spaces or len(set(spaces)) != len(spaces) or not set(spaces) <= set(SPACES):
        raise DisentanglementError(f"spaces must be distinct names from {SPACES}, got {spaces}")
    if not scores or len(set(scores)) != len(scores) or not set(scores) <= set(SCORES):
        raise DisentanglementError(f"scores must be distinct names from {SCORES}, got {scores}")
    if batch_size < 1:
        raise DisentanglementError(f"batch_size must be >= 1, got {batch_size}")
    configs = [DisentanglementConfig.of(s, dci_regressor, tuple(spaces), num_samples, n_jobs) for s in scores]
    if "s" in spaces:
        stylespace_dim(G.synthesis)  # a generator without styles fails here, before anything is hashed or sampled
    options = MetricOptions(G=G, device=torch.device(device), seed=seed, batch_size=batch_size, progress=progress)
    prov = Provenance.in_memory(model, preset) if checkpoint is None else Provenance.of_checkpoint(checkpoint, model, preset)
    results = measure_disentanglement(options, configs, classifier)
    order = {(c.constants.name, s): (spaces.index(s), i) for i, c in enumerate(configs) for s in c.spaces}
    return [prov.record(r) for r in sorted(results, key=lambda r: order[(r.params["score"], r.params["space"])])]

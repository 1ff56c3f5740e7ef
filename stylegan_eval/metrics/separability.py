"""Linear separability of latent spaces (Karras et al. 2019, section 4.2, Tables 3 and 4).

Generate N images with their latents z and w, label each image with binary attribute
classifiers, and ask how well a linear SVM recovers each label from the latent:

1. probabilities p = softmax([logit, -logit])[0] = sigmoid(2 * logit) per attribute;
2. per attribute keep the `num_keep` most confident samples (largest max(p, 1 - p)), labels
   Y = [p >= 0.5];
3. fit `sklearn.svm.LinearSVC()` (default settings) on the kept latents, predict X on the same
   samples;
4. H(Y | X) in bits from the 2x2 joint frequency table;
5. score = 2 ** (sum over attributes of H(Y | X)); 1.0 is perfectly separable, 2 ** A is
   labels independent of the latents. Lower is better.

This matches NVlabs/stylegan `metrics/linear_separability.py` with these deliberate
differences:
- a failed SVM fit is an error (`SeparabilityError`), never "assume perfect prediction"; an
  attribute whose kept samples all share one label is flagged "single_class" (its H(Y|X) is 0
  because H(Y) is 0, not by assumption) and a ConvergenceWarning is flagged "not_converged";
- W is one layer's w, `ws[:, 0]` (the official code takes the last layer; without truncation or
  mixing every layer's w is the same vector);
- probabilities are float64 (the official float32 softmax saturates at |logit| > ~9, which turns
  the confidence ranking into ties broken by sample order);
- `LinearSVC` gets `random_state=0`: with today's `dual="auto"` the primal solver runs whenever
  N >= D (it ignores random_state); the dual solver used for N < D shuffles, and a fixed seed makes
  parallel fits identical to serial ones. Note that 2019's sklearn defaulted to the dual solver.

Scale: every rank samples and classifies its shard of the indices; rank 0 gathers them and runs
the len(spaces) x A fits, `n_jobs` at a time: in threads when every fit uses the primal solver
(liblinear releases the GIL, and threads share the latents without copies), in processes
otherwise. The result is identical to a serial run.
"""

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from stylegan_core import distributed
from stylegan_core.errors import UserError
from stylegan_eval.metrics.image_pass import LatentsAndProbs, generated_loader, run_pass
from stylegan_eval.metrics.options import MetricOptions
from stylegan_eval.provenance import MetricResult, Provenance, RecordExtras
from stylegan_eval.records import FeatureNetwork, ResultRecord

FitStatus = Literal["ok", "not_converged", "single_class"]
Space = Literal["z", "w"]
_STATUS_CODES: tuple[FitStatus, ...] = ("ok", "not_converged", "single_class")


class SeparabilityError(UserError):
    """An SVM fit failed, or the inputs cannot be measured (shapes, NaN, num_keep)."""


# ---------------------------------------------------------------------------------------------
# Pure math: tables, entropy, pruning.


def conditional_entropy(joint) -> float:
    """H(Y | X) in bits of a joint count or frequency table [X, Y] (rows X = SVM prediction,
    columns Y = classifier label). Empty cells contribute 0. Any non-negative scale works."""
    p = np.asarray(joint, dtype=np.float64)
    if p.ndim != 2 or p.size == 0:
        raise ValueError(f"joint table must be a non-empty 2-D array, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("joint table must hold finite non-negative counts or frequencies")
    total = p.sum()
    if total <= 0:
        raise ValueError("joint table is all zeros")
    p = p / total
    px = p.sum(axis=1, keepdims=True)  # [X, 1] marginal of the prediction
    nz = p > 0
    # -sum p(x,y) log2 p(y|x); p(x) >= p(x,y) > 0 wherever the cell is non-empty.
    h = -np.sum(p[nz] * np.log2(p[nz] / np.broadcast_to(px, p.shape)[nz]))
    return max(0.0, float(h))


def joint_table(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """2x2 int64 counts, [prediction, label] for binary (0/1) arrays of equal length."""
    table = np.zeros((2, 2), dtype=np.int64)
    np.add.at(table, (np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)), 1)
    return table


def prune_confident(probs, num_keep: int) -> np.ndarray:
    """Indices of the `num_keep` most confident samples of one attribute.

    probs: [N] probability of the attribute being present. Confidence is max(p, 1 - p); returns
    int64 [num_keep] in order of decreasing confidence, ties by increasing index (as the
    official stable sort).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"probs must be 1-D [N], got shape {p.shape}")
    if not 0 < num_keep <= p.shape[0]:
        raise ValueError(f"num_keep must be in 1..{p.shape[0]}, got {num_keep}")
    confidence = np.maximum(p, 1.0 - p)
    return np.argsort(-confidence, kind="stable")[:num_keep].astype(np.int64)


def labels_from_probs(probs) -> np.ndarray:
    """argmax of [p, 1 - p] as the official code (ties go to "present"): 1 = present."""
    return (np.asarray(probs, dtype=np.float64) >= 0.5).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# SVM fits (one per space and attribute), parallel in processes.


@dataclass(frozen=True)
class AttributeFit:
    """One attribute's SVM on one latent space."""

    entropy: float  # H(Y | X) in bits
    accuracy: float  # fraction of kept samples the SVM labels as the classifier does
    status: FitStatus  # "ok" | "not_converged" (ConvergenceWarning) | "single_class"
    num_present: int  # kept samples labelled "attribute present"


@dataclass(frozen=True)
class SeparabilityResult:
    """Score of one latent space: 2 ** sum of the per-attribute conditional entropies."""

    score: float
    fits: tuple[AttributeFit, ...]  # one per attribute, in the column order of probs

    @property
    def entropies(self) -> list[float]:
        return [f.entropy for f in self.fits]

    @property
    def accuracies(self) -> list[float]:
        return [f.accuracy for f in self.fits]

    @property
    def statuses(self) -> list[FitStatus]:
        return [f.status for f in self.fits]


def _fit_one(latents: np.ndarray, indices: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, str, str]:
    """Fit LinearSVC on latents[indices] -> labels; return (2x2 table, status, error message).

    Runs in this process, a worker thread or a worker process; `latents` may be a read-only memmap.
    """
    from sklearn.svm import LinearSVC

    if labels.min() == labels.max():
        # H(Y) = 0, so H(Y|X) = 0 whatever the SVM would say; flagged, not assumed.
        return joint_table(labels, labels), "single_class", ""
    x = np.asarray(latents[indices])  # [num_keep, D]
    try:
        svm = LinearSVC(random_state=0).fit(x, labels)
        predictions = svm.predict(x).astype(np.int64)
    except (ValueError, ArithmeticError, MemoryError) as e:
        return np.zeros((2, 2), np.int64), "error", f"{type(e).__name__}: {e}"
    # sklearn warns ConvergenceWarning exactly when liblinear stops at max_iter; reading n_iter_
    # instead of catching the warning stays correct when fits run in threads.
    converged = int(np.max(svm.n_iter_)) < svm.max_iter
    return joint_table(predictions, labels), ("ok" if converged else "not_converged"), ""


def _as_shared(arrays: dict[str, np.ndarray], folder: str) -> dict[str, np.ndarray]:
    """Write each array to a read-only memmap in `folder`; joblib passes memmaps to workers by
    file name instead of pickling (or hashing) hundreds of MB per task."""
    shared = {}
    for key, a in arrays.items():
        path = os.path.join(folder, f"{key}.npy")
        np.save(path, np.ascontiguousarray(a))
        shared[key] = np.load(path, mmap_mode="r", allow_pickle=False)
    return shared


def fit_spaces(
    spaces: dict[str, np.ndarray],  # name -> latents [N, D_name]
    probs: np.ndarray,  # [N, A] probability of each attribute being present
    num_keep: int,  # samples kept per attribute (the most confident)
    n_jobs: int = 1,  # fits at once (threads, or processes for the dual solver); 1 = serial
    attribute_names: list[str] | None = None,  # for error messages only
) -> dict[str, SeparabilityResult]:
    """Prune, fit and score every (space, attribute) pair; result independent of n_jobs."""
    probs = np.asarray(probs, dtype=np.float64)
    spaces = {key: np.asarray(lat) for key, lat in spaces.items()}
    if probs.ndim != 2:
        raise SeparabilityError(f"probs must be [N, A], got shape {tuple(probs.shape)}")
    n, num_attr = probs.shape
    names = attribute_names or [f"attribute {a}" for a in range(num_attr)]
    if len(names) != num_attr:
        raise SeparabilityError(f"{len(names)} attribute names for {num_attr} probability columns")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1:
        raise SeparabilityError("probs must be finite probabilities in [0, 1]")
    if not 0 < num_keep <= n:
        raise SeparabilityError(f"num_keep must be in 1..{n} (the number of samples), got {num_keep}")
    for key, lat in spaces.items():
        if lat.ndim != 2 or lat.shape[0] != n:
            raise SeparabilityError(f"{key} latents must be [N={n}, D], got shape {tuple(lat.shape)}")
        if not np.all(np.isfinite(lat)):
            raise SeparabilityError(f"{key} latents contain NaN or Inf")
    if n_jobs < 1:
        raise SeparabilityError(f"n_jobs must be >= 1, got {n_jobs}")

    kept = [prune_confident(probs[:, a], num_keep) for a in range(num_attr)]
    labels = [labels_from_probs(probs[kept[a], a]) for a in range(num_attr)]
    tasks = [(key, a) for key in spaces for a in range(num_attr)]

    if n_jobs == 1 or len(tasks) == 1:
        outputs = [_fit_one(spaces[key], kept[a], labels[a]) for key, a in tasks]
    elif num_keep >= max(lat.shape[1] for lat in spaces.values()):
        # Every fit takes liblinear's primal solver (dual="auto" with N >= D), which is
        # deterministic and releases the GIL: threads run the fits in parallel and share the
        # latents without copying them into worker processes.
        with ThreadPoolExecutor(max_workers=min(n_jobs, len(tasks))) as pool:
            outputs = list(pool.map(lambda t: _fit_one(spaces[t[0]], kept[t[1]], labels[t[1]]), tasks))
    else:
        # The dual solver (N < D) shuffles with one process-wide RNG, so concurrent threads would
        # race on it; separate processes keep every fit deterministic.
        from joblib import Parallel, delayed

        with tempfile.TemporaryDirectory(prefix="stylegan-eval-ls-") as folder:
            shared = _as_shared(spaces, folder)
            outputs = Parallel(n_jobs=min(n_jobs, len(tasks)), backend="loky")(
                delayed(_fit_one)(shared[key], kept[a], labels[a]) for key, a in tasks
            )

    fits: dict[str, list[AttributeFit]] = {key: [] for key in spaces}
    for (key, a), (table, status, message) in zip(tasks, outputs):
        if status == "error":
            raise SeparabilityError(f"LinearSVC failed on {key} for {names[a]}: {message}")
        fits[key].append(
            AttributeFit(
                entropy=conditional_entropy(table),
                accuracy=float(np.trace(table) / table.sum()),
                status=status,
                num_present=int(labels[a].sum()),
            )
        )
    return {
        key: SeparabilityResult(score=float(2.0 ** sum(f.entropy for f in fs)), fits=tuple(fs))
        for key, fs in fits.items()
    }


def separability_score(latents, probs, num_keep: int, n_jobs: int = 1) -> SeparabilityResult:
    """The separability of one latent space.

    latents: [N, D]; probs: [N, A] probability of each attribute being present; num_keep: the
    most confident samples kept per attribute. Returns the score 2 ** sum_a H(Y_a | X_a) with the
    per-attribute entropies, SVM accuracies and fit statuses.
    """
    return fit_spaces({"latents": np.asarray(latents)}, probs, num_keep, n_jobs)["latents"]


# ---------------------------------------------------------------------------------------------
# Sampling: generator -> (z, w, classifier probabilities), deterministic per sample index.


def check_classifier(G, classifier) -> None:
    """SeparabilityError unless the classifier can label G's images (integer downsampling, channels)."""
    res = classifier.resolution
    if G.img_resolution < res or G.img_resolution % res:
        raise SeparabilityError(
            f"generator images are {G.img_resolution}px; the classifier needs {res}px and images are only "
            "area-downsampled by an integer factor: train a classifier at a resolution that divides it"
        )
    if G.img_channels != classifier.img_channels:
        raise SeparabilityError(
            f"generator makes {G.img_channels}-channel images, the classifier takes {classifier.img_channels}"
        )


@torch.no_grad()
def sample_latents_and_probs(
    G: torch.nn.Module,  # honours stylegan_core.GeneratorInterface
    classifier: torch.nn.Module,  # AttributeClassifier: images [-1, 1] at .resolution -> logits [N, A]
    num_samples: int,  # images to generate (shared across ranks)
    batch_size: int,  # per rank; does not change the result
    seed: int,  # sample i depends only on (seed, i)
    device: torch.device,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """z [N, z_dim], w = ws[:, 0] [N, w_dim] (float32) and probs [N, A] (float64), index order,
    on every rank."""
    check_classifier(G, classifier)
    G = G.to(device).eval()
    classifier = classifier.to(device).eval()
    # The same pass (and per-sample images) as `stylegan-eval measure`, which shares it with FID.
    consumer = LatentsAndProbs(classifier, num_samples, G.z_dim, G.w_dim, device)
    run_pass(num_samples, generated_loader(G, seed, device), [consumer], batch_size, desc="ls sampling", progress=progress)
    return consumer.result()


@dataclass(frozen=True)
class LSExtras(RecordExtras):
    """Details of one space's separability (the record's `extras`); lists run over attributes."""

    attributes: list[str]
    entropies: list[float]  # H(Y|X) in bits
    accuracies: list[float]  # SVM accuracy on the kept samples
    statuses: list[str]  # FitStatus per attribute
    num_present: list[int]  # kept samples labelled present
    num_keep: int
    processes: int
    flagged: list[str]  # attributes whose fit is not "ok"
    # Every kept label one class: the score is 1.0 with nothing separated; reports flag it.
    all_single_class: bool = False

    def entropy_by_attribute(self) -> dict[str, float]:
        return dict(zip(self.attributes, self.entropies))


@dataclass(frozen=True)
class LSConfig:
    num_samples: int = 200_000  # generated images (the paper: 200,000)
    num_keep: int | None = None  # most confident samples kept per attribute; None = half (paper: 100,000)
    spaces: tuple[Space, ...] = ("z", "w")
    n_jobs: int = 1  # SVM fits at once on rank 0 (a 100k x 512 fit adds ~0.7 GB); does not change the value

    def __post_init__(self):
        if self.num_samples < 2:
            raise SeparabilityError(f"num_samples must be at least 2, got {self.num_samples}")
        if not 0 < self.keep <= self.num_samples:
            raise SeparabilityError(f"num_keep must be in 1..{self.num_samples} (num_samples), got {self.num_keep}")
        if not self.spaces or len(set(self.spaces)) != len(self.spaces) or not set(self.spaces) <= {"z", "w"}:
            raise SeparabilityError(f"spaces must be distinct names from ('z', 'w'), got {self.spaces}")

    @property
    def keep(self) -> int:
        return self.num_samples // 2 if self.num_keep is None else self.num_keep


def measure_separability(options: MetricOptions, config: LSConfig, classifier: torch.nn.Module) -> list[MetricResult]:
    """Linear separability of options.G's Z and/or W space with an AttributeClassifier
    (stylegan_eval.classifier): one result per space ("ls_z", "ls_w").

    Under torchrun every rank samples and classifies its share; rank 0 fits the SVMs and every
    rank returns the same results.
    """
    t0 = time.time()
    z, w, probs = sample_latents_and_probs(options.G, classifier, config.num_samples, options.batch_size, options.seed,
                                           options.device, options.progress)
    return separability_results(options, config, classifier, z, w, probs, t0)


def separability_results(options: MetricOptions, config: LSConfig, classifier: torch.nn.Module, z: torch.Tensor,
                         w: torch.Tensor, probs: torch.Tensor, t0: float) -> list[MetricResult]:
    """Fit and score sampled z [N, z_dim], w [N, w_dim], probs [N, A] (every rank holds them; rank 0
    fits, every rank returns the results). `t0`: time.time() when sampling started."""
    num_samples, num_keep, spaces, device, seed = config.num_samples, config.keep, config.spaces, options.device, options.seed
    names = list(classifier.attribute_names)

    # Rank 0 fits; the other ranks receive the table of entropies/accuracies/statuses as a tensor.
    num_attr = len(names)
    summary = torch.zeros(len(spaces), num_attr, 4, dtype=torch.float64)  # entropy, accuracy, status, present
    if distributed.is_main():
        results = fit_spaces({s: (z if s == "z" else w).numpy() for s in spaces}, probs.numpy(), num_keep, config.n_jobs, names)
        for i, s in enumerate(spaces):
            for a, f in enumerate(results[s].fits):
                summary[i, a] = torch.tensor([f.entropy, f.accuracy, _STATUS_CODES.index(f.status), f.num_present])
    summary = distributed.all_reduce_sum(summary.to(device)).cpu()  # on `device` for NCCL
    wall = time.time() - t0

    fn = FeatureNetwork(
        name=f"attribute-classifier-{classifier.resolution}px",
        weights=getattr(classifier, "source", None) or "in-memory",
        substitute=False,
        sha256=getattr(classifier, "sha256", None),
    )
    out = []
    for i, s in enumerate(spaces):
        entropies = [float(v) for v in summary[i, :, 0]]
        statuses = [_STATUS_CODES[int(v)] for v in summary[i, :, 2]]
        extras = LSExtras(
            attributes=names,
            entropies=entropies,
            accuracies=[float(v) for v in summary[i, :, 1]],
            statuses=statuses,
            num_present=[int(v) for v in summary[i, :, 3]],
            num_keep=num_keep,
            processes=distributed.world_size(),
            flagged=[n for n, st in zip(names, statuses) if st != "ok"],
            all_single_class=all(st == "single_class" for st in statuses),
        )
        out.append(
            MetricResult(
                metric=f"ls_{s}",
                value=float(2.0 ** sum(entropies)),
                params={
                    "space": s,
                    "num_keep": num_keep,
                    "attributes": names,
                    "w_layer": 0 if s == "w" else None,
                    "classifier_resolution": classifier.resolution,
                    "svm": "sklearn.svm.LinearSVC() defaults, random_state=0",
                    "noise": "per-sample random (seed, stream 1, i)",
                    "device": device.type,
                },
                num_samples=num_samples,
                seed=seed,
                feature_network=fn,
                wall_time_s=wall,
                extras=extras,
            )
        )
    return out


def compute_separability(
    G: torch.nn.Module,  # honours stylegan_core.GeneratorInterface
    classifier: torch.nn.Module,  # AttributeClassifier (stylegan_eval.classifier)
    num_samples: int = 200_000,  # generated images (the paper: 200,000)
    num_keep: int | None = None,  # most confident samples kept per attribute; None = half (paper: 100,000)
    batch_size: int = 64,  # per rank; the result does not depend on it
    seed: int = 0,
    device: str | torch.device = "cpu",
    spaces: tuple[Space, ...] = ("z", "w"),
    n_jobs: int = 1,  # SVM fits at once on rank 0 (a 100k x 512 fit adds ~0.7 GB)
    model: str = "generator",  # label stored in the records
    checkpoint: str | None = None,  # the file G came from, for the records (hashed)
    preset: str | None = None,  # the checkpoint's preset name, for the records
    progress: bool = True,
) -> list[ResultRecord]:
    """`measure_separability` with keyword arguments: one ResultRecord per space ("ls_z", "ls_w")."""
    if batch_size < 1:
        raise SeparabilityError(f"batch_size must be >= 1, got {batch_size}")
    if n_jobs < 1:
        raise SeparabilityError(f"n_jobs must be >= 1, got {n_jobs}")
    config = LSConfig(num_samples=num_samples, num_keep=num_keep, spaces=tuple(spaces), n_jobs=n_jobs)
    options = MetricOptions(G=G, device=torch.device(device), seed=seed, batch_size=batch_size, progress=progress)
    prov = Provenance.in_memory(model, preset) if checkpoint is None else Provenance.of_checkpoint(checkpoint, model, preset)
    return [prov.record(r) for r in measure_separability(options, config, classifier)]

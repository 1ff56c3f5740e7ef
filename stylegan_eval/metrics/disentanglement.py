"""Supervised disentanglement scores DCI, MIG and SAP of a latent space against discrete factors.

Every score is a function of latents [N, D] (continuous codes) and factors [N, K] (integer class
labels; here the attribute classifiers' labels, present = p >= 0.5), following the definitions of
google-research/disentanglement_lib (evaluation/metrics/dci.py, mig.py, sap_score.py, utils.py):

- DCI (Eastwood and Williams, ICLR 2018). One predictor per factor k gives an importance R[d, k]
  >= 0 of each code d. With P[d, k] = R[d, k] / sum_k' R[d, k'] and entropies in base K,
    disentanglement D = sum_d rho_d (1 - H_K(P[d, :])),  rho_d = sum_k R[d, k] / sum R,
  and with P~[d, k] = R[d, k] / sum_d' R[d', k] in base D,
    completeness C = sum_k rho~_k (1 - H_D(P~[:, k])),  rho~_k = sum_d R[d, k] / sum R;
  informativeness is the predictors' mean accuracy on the train and test split (disentanglement_lib
  names these "informativeness_train/test" and reports accuracies, not errors). Predictors:
  "gbt" = sklearn GradientBoostingClassifier with its defaults, importance = feature_importances_
  (as disentanglement_lib); "lasso" = L1-regularised logistic regression on standardised codes,
  importance = |coefficient| (the paper's lasso, in its classification form: the factors are
  labels). Both add 1e-11 to R before normalising, as disentanglement_lib does.
- MIG (Chen et al., NeurIPS 2018). Each code is discretised into `num_bins` equal-width bins of
  its own range (np.histogram edges, np.digitize on all but the last: bins 1..num_bins);
  I[d, k] = discrete mutual information in nats, H[k] = entropy of factor k in nats;
    MIG = mean_k (I_(1)[k] - I_(2)[k]) / H[k]   (the largest and second largest over codes d).
- SAP (Kumar et al., ICLR 2018), discrete factors. S[d, k] = test accuracy of a 1-D linear SVM
  (sklearn LinearSVC(C=0.01, class_weight="balanced")) fitted on code d alone to predict factor k;
    SAP = mean_k (S_(1)[k] - S_(2)[k]).

Deliberate differences from disentanglement_lib:
- one sample set with a train/test split by a seeded permutation (disentanglement_lib draws the
  two sets separately; generated samples are i.i.d., so this is the same distribution); MIG uses
  all N samples;
- every sklearn model gets random_state=0 so a score is a function of its inputs (GBT breaks
  ties between features at random; liblinear shuffles), identical for any number of parallel jobs;
  with today's sklearn a 1-D LinearSVC takes the primal solver (dual="auto"), 2018's the dual one;
- a factor with a single class is an error (its entropy is 0 and no classifier can be fitted;
  disentanglement_lib would divide by zero or fail inside sklearn); the sampler drops such factors
  and records them.
"""

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from stylegan_core.errors import UserError

Regressor = Literal["gbt", "lasso"]
REGRESSORS: tuple[Regressor, ...] = ("gbt", "lasso")
ScoreName = Literal["dci", "mig", "sap"]
SCORES: tuple[ScoreName, ...] = ("dci", "mig", "sap")


class DisentanglementError(UserError):
    """Latents or factors that a disentanglement score cannot measure (shape, NaN, one class)."""


@dataclass(frozen=True)
class DisentanglementProtocol:
    """The constants of one score, in one place (disentanglement_lib's gin configs for
    dci/mig/sap_score: 10,000 training points, 5,000 test points, 20 bins).

    Cost at S (5088 codes at 1024 px): "gbt" grows 100 depth-3 trees per factor, each split
    scanning every code, which took ~30 s per factor for 300 samples x 4992 codes (F-256) on one
    CPU core and grows with N log N: use "lasso" for S at scale. SAP fits D x K one-dimensional
    SVMs (~4 ms each at 10,000 samples: ~10 min for 5088 codes and 40 attributes on one core).
    Fits run `n_jobs` at a time in separate processes.
    """

    name: ScoreName  # "dci" | "mig" | "sap"
    num_train: int  # samples the predictors are fitted on (MIG: samples it bins)
    num_test: int  # held-out samples for DCI informativeness and the SAP matrix; 0 for MIG
    regressor: Regressor = "gbt"  # DCI predictor: "gbt" (disentanglement_lib) | "lasso" (for S)
    gbt_estimators: int = 100  # sklearn GradientBoostingClassifier defaults, as disentanglement_lib
    gbt_depth: int = 3
    gbt_learning_rate: float = 0.1
    lasso_c: float = 0.1  # inverse L1 strength of the lasso (on codes standardised on the train split)
    num_bins: int = 20  # MIG histogram bins per code
    svm_c: float = 0.01  # SAP: LinearSVC(C=0.01, class_weight="balanced")

    def __post_init__(self):
        if self.name not in SCORES:
            raise DisentanglementError(f"unknown disentanglement score {self.name!r}; choose from {', '.join(SCORES)}")
        if self.regressor not in REGRESSORS:
            raise DisentanglementError(f"unknown DCI regressor {self.regressor!r}; choose from {', '.join(REGRESSORS)}")
        if self.num_train < 2 or self.num_test < 0 or (self.name != "mig" and self.num_test < 1):
            raise DisentanglementError(
                f"{self.name}: num_train must be >= 2 and num_test >= 1 (0 for mig), got {self.num_train}, {self.num_test}"
            )
        if self.num_bins < 2 or self.lasso_c <= 0 or self.svm_c <= 0 or self.gbt_estimators < 1 or self.gbt_depth < 1:
            raise DisentanglementError(f"{self.name}: num_bins >= 2 and positive C, estimators and depth are required")

    @property
    def num_samples(self) -> int:
        return self.num_train + self.num_test

    def with_samples(self, num_samples: int) -> "DisentanglementProtocol":
        """The same protocol on `num_samples` samples, keeping the train/test proportion."""
        num_test = 0 if self.num_test == 0 else max(1, round(num_samples * self.num_test / self.num_samples))
        return dataclasses.replace(self, num_train=num_samples - num_test, num_test=num_test)


PROTOCOLS: dict[str, DisentanglementProtocol] = {
    "dci": DisentanglementProtocol("dci", 10_000, 5_000, regressor="gbt"),
    "dci_lasso": DisentanglementProtocol("dci", 10_000, 5_000, regressor="lasso"),
    "mig": DisentanglementProtocol("mig", 10_000, 0),
    "sap": DisentanglementProtocol("sap", 10_000, 5_000),
}


# ---------------------------------------------------------------------------------------------
# Pure formulas on matrices.


def _entropy_columns(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy in base `base` of each column of the non-negative matrix p (normalised per column)."""
    q = p / p.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * np.log(q), 0.0)
    return -terms.sum(axis=0) / np.log(base)


def dci_from_importance(importance) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(disentanglement, completeness, per-code disentanglement [D], per-factor completeness [K])
    of an importance matrix R [D codes, K factors] (see the module docstring); D, K >= 2."""
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2 or min(r.shape) < 2 or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise DisentanglementError(f"importance must be a finite non-negative [D>=2, K>=2] matrix, got shape {r.shape}")
    smooth = r + 1e-11  # disentanglement_lib's epsilon: an all-zero row or column is uniform
    per_code = 1.0 - _entropy_columns(smooth.T, r.shape[1])  # [D]
    per_factor = 1.0 - _entropy_columns(smooth, r.shape[0])  # [K]
    weights = r if r.sum() > 0 else np.ones_like(r)
    rho_code = weights.sum(axis=1) / weights.sum()
    rho_factor = weights.sum(axis=0) / weights.sum()
    return float(per_code @ rho_code), float(per_factor @ rho_factor), per_code, per_factor


def histogram_discretize(latents, num_bins: int = 20) -> np.ndarray:
    """Bin index 1..num_bins of each value, per column [N, D] -> int64 [N, D]: equal-width bins
    between the column's min and max (numpy.histogram edges; a constant column is one bin)."""
    x = np.asarray(latents, dtype=np.float64)
    out = np.empty(x.shape, dtype=np.int64)
    for d in range(x.shape[1]):
        edges = np.histogram_bin_edges(x[:, d], num_bins)
        out[:, d] = np.digitize(x[:, d], edges[:-1])
    return out


def _joint_counts(codes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contingency tables of every (code column, label column): counts [D, K, B, L] with the
    marginals; codes [N, D] and labels [N, K] are non-negative integers."""
    _, code_idx = np.unique(codes, return_inverse=True)
    _, label_idx = np.unique(labels, return_inverse=True)
    code_idx = code_idx.reshape(codes.shape)
    label_idx = label_idx.reshape(labels.shape)
    nb, nl = int(code_idx.max()) + 1, int(label_idx.max()) + 1
    d, k = codes.shape[1], labels.shape[1]
    counts = np.zeros((d, k, nb * nl), dtype=np.int64)
    for j in range(k):
        cell = code_idx * nl + label_idx[:, j : j + 1]  # [N, D] joint cell of (code value, label)
        offsets = cell + np.arange(d)[None, :] * (nb * nl)
        counts[:, j] = np.bincount(offsets.ravel(), minlength=d * nb * nl).reshape(d, nb * nl)
    joint = counts.reshape(d, k, nb, nl)
    return joint, joint.sum(axis=3), joint.sum(axis=2)


def discrete_mutual_info(codes, labels) -> np.ndarray:
    """I(code_d; factor_k) in nats for integer codes [N, D] and labels [N, K] -> [D, K]
    (sklearn.metrics.mutual_info_score of each pair, computed at once)."""
    codes, labels = np.asarray(codes), np.asarray(labels)
    n = codes.shape[0]
    joint, pc, pl = _joint_counts(codes, labels)
    pxy = joint / n
    px = (pc / n)[..., :, None]
    py = (pl / n)[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pxy > 0, pxy * np.log(pxy / (px * py)), 0.0)
    return np.maximum(terms.sum(axis=(2, 3)), 0.0)


def discrete_entropy(labels) -> np.ndarray:
    """H(factor_k) in nats for integer labels [N, K] -> [K]."""
    labels = np.asarray(labels)
    out = np.empty(labels.shape[1])
    for k in range(labels.shape[1]):
        p = np.unique(labels[:, k], return_counts=True)[1] / labels.shape[0]
        out[k] = -np.sum(p * np.log(p))
    return out


def top_two_gap(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per column k of [D, K]: the largest minus the second largest value, and the two rows
    (int64 [K, 2], largest first; ties by lower index)."""
    m = np.asarray(matrix, dtype=np.float64)
    order = np.argsort(-m, axis=0, kind="stable")[:2].T  # [K, 2]
    cols = np.arange(m.shape[1])
    return m[order[:, 0], cols] - m[order[:, 1], cols], order.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Inputs, split and the per-factor fits (sklearn, deterministic, parallel in processes).


def check_inputs(latents, factors, min_dims: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """latents as float [N, D], factors as int64 [N, K], or DisentanglementError."""
    x, y = np.asarray(latents), np.asarray(factors)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise DisentanglementError(f"latents must be [N, D] and factors [N, K] with the same N, got {x.shape} and {y.shape}")
    if x.shape[1] < min_dims:
        raise DisentanglementError(f"this score needs at least {min_dims} latent dimensions, got {x.shape[1]}")
    if y.shape[1] < 1:
        raise DisentanglementError("factors must have at least one column")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DisentanglementError("latents contain NaN or Inf")
    if not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y)):
        raise DisentanglementError("factors must be integer class labels (e.g. 0/1 attribute labels)")
    return x, y.astype(np.int64)


def split_indices(num: int, num_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices: a permutation of range(num) from numpy's PCG64 seeded by
    `seed`, the last `num_test` rows being the test split (each part sorted)."""
    if not 0 < num_test < num:
        raise DisentanglementError(f"num_test must be in 1..{num - 1} for {num} samples, got {num_test}")
    perm = np.random.default_rng(seed).permutation(num)
    return np.sort(perm[: num - num_test]), np.sort(perm[num - num_test :])


def _require_two_classes(y: np.ndarray, where: str) -> None:
    for k in range(y.shape[1]):
        if np.unique(y[:, k]).size < 2:
            raise DisentanglementError(
                f"factor {k} has a single class in the {where}: its entropy is 0 and no predictor can be fitted; "
                "drop it or use more samples"
            )


def l1_logistic(c: float):
    """sklearn's L1-regularised logistic regression (liblinear, random_state=0) across versions:
    `penalty="l1"` before scikit-learn 1.8, `l1_ratio=1` from 1.8 (where penalty is deprecated)."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
    if (major, minor) >= (1, 8):
        return LogisticRegression(l1_ratio=1.0, C=c, solver="liblinear", random_state=0, max_iter=1000)
    return LogisticRegression(penalty="l1", C=c, solver="liblinear", random_state=0, max_iter=1000)


def _fit_factor(x_train, y_train, x_test, y_test, protocol: DisentanglementProtocol) -> tuple[np.ndarray, float, float]:
    """One DCI predictor: (importance [D], train accuracy, test accuracy)."""
    from sklearn.exceptions import ConvergenceWarning

    if protocol.regressor == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(
            n_estimators=protocol.gbt_estimators, max_depth=protocol.gbt_depth,
            learning_rate=protocol.gbt_learning_rate, random_state=0,
        ).fit(x_train, y_train)
        importance = np.abs(model.feature_importances_)
    else:
        # Standardised codes make |coefficient| comparable across codes of different scales.
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is a protocol constant
            model = l1_logistic(protocol.lasso_c).fit(x_train, y_train)
        importance = np.abs(model.coef_).sum(axis=0)  # [D]; one row for binary factors
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    test_acc = float(np.mean(model.predict(x_test) == y_test))
    return importance.astype(np.float64), train_acc, test_acc


def _sap_column(x_train, y_train, x_test, y_test, c: float) -> np.ndarray:
    """SAP scores of every code for one factor: [D] test accuracies of 1-D LinearSVCs."""
    from sklearn.svm import LinearSVC

    out = np.zeros(x_train.shape[1])
    for d in range(x_train.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # liblinear ConvergenceWarning: the score is still an accuracy
            svm = LinearSVC(C=c, class_weight="balanced", random_state=0).fit(x_train[:, d : d + 1], y_train)
        out[d] = np.mean(svm.predict(x_test[:, d : d + 1]) == y_test)
    return out


def _parallel(fn, tasks: list[tuple], n_jobs: int) -> list:
    """fn(*task) for every task, `n_jobs` processes at a time (joblib memory-maps large arrays);
    liblinear and the tree splitter use process-wide RNG state, so threads would race."""
    if n_jobs < 1:
        raise DisentanglementError(f"n_jobs must be >= 1, got {n_jobs}")
    if n_jobs == 1 or len(tasks) == 1:
        return [fn(*t) for t in tasks]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=min(n_jobs, len(tasks)), backend="loky")(delayed(fn)(*t) for t in tasks)


# ---------------------------------------------------------------------------------------------
# The three scores.


@dataclass(frozen=True)
class DCIResult:
    disentanglement: float
    completeness: float
    informativeness_train: float  # mean accuracy of the K predictors on the train split
    informativeness_test: float  # ... on the test split
    importance: np.ndarray = field(repr=False)  # R [D, K]
    disentanglement_per_code: np.ndarray = field(repr=False)  # [D]
    completeness_per_factor: np.ndarray = field(repr=False)  # [K]
    train_accuracy: np.ndarray = field(repr=False)  # [K]
    test_accuracy: np.ndarray = field(repr=False)  # [K]


@dataclass(frozen=True)
class GapResult:
    """MIG or SAP: the mean over factors of a normalised top-two gap of a [D, K] matrix."""

    score: float
    per_factor: np.ndarray = field(repr=False)  # [K] gap of each factor
    matrix: np.ndarray = field(repr=False)  # [D, K] MIG: I(code; factor) in nats; SAP: accuracies
    top_codes: np.ndarray = field(repr=False)  # int64 [K, 2] the best and second best code per factor


def dci(latents, factors, num_test: int, seed: int = 0, protocol: DisentanglementProtocol = PROTOCOLS["dci"],
        n_jobs: int = 1) -> DCIResult:
    """DCI of latents [N, D>=2] against factors [N, K>=2]: one predictor per factor fitted on the
    train split of `split_indices(N, num_test, seed)`; result independent of n_jobs."""
    x, y = check_inputs(latents, factors, min_dims=2)
    if y.shape[1] < 2:
        raise DisentanglementError("DCI needs at least two factors (disentanglement is an entropy over factors)")
    train, test = split_indices(x.shape[0], num_test, seed)
    _require_two_classes(y[train], "training split")
    x_train, x_test = x[train], x[test]
    outs = _parallel(_fit_factor, [(x_train, y[train, k], x_test, y[test, k], protocol) for k in range(y.shape[1])], n_jobs)
    importance = np.stack([o[0] for o in outs], axis=1)  # [D, K]
    d_score, c_score, per_code, per_factor = dci_from_importance(importance)
    train_acc, test_acc = np.array([o[1] for o in outs]), np.array([o[2] for o in outs])
    return DCIResult(d_score, c_score, float(train_acc.mean()), float(test_acc.mean()), importance, per_code,
                     per_factor, train_acc, test_acc)


def mig(latents, factors, num_bins: int = 20) -> GapResult:
    """Mutual information gap of latents [N, D>=2] against factors [N, K] (all N samples)."""
    x, y = check_inputs(latents, factors, min_dims=2)
    _require_two_classes(y, "samples")
    mi = discrete_mutual_info(histogram_discretize(x, num_bins), y)  # [D, K] nats
    gap, top = top_two_gap(mi)
    per_factor = gap / discrete_entropy(y)
    return GapResult(float(per_factor.mean()), per_factor, mi, top)


def sap(latents, factors, num_test: int, seed: int = 0, svm_c: float = 0.01, n_jobs: int = 1) -> GapResult:
    """SAP of latents [N, D>=2] against discrete factors [N, K]: 1-D SVMs fitted on the train
    split of `split_indices(N, num_test, seed)`, scored on the test split."""
    x, y = check_inputs(latents, factors, min_dims=2)
    if n_jobs < 1:
        raise DisentanglementError(f"n_jobs must be >= 1, got {n_jobs}")
    train, test = split_indices(x.shape[0], num_test, seed)
    _require_two_classes(y[train], "training split")
    x_train, x_test = x[train], x[test]
    # Tasks of (factor, block of codes): enough pieces to keep n_jobs busy at any D.
    num_blocks = 1 if n_jobs == 1 else min(x.shape[1], math.ceil(4 * n_jobs / y.shape[1]))
    blocks = np.array_split(np.arange(x.shape[1]), num_blocks)
    tasks = [(k, b) for k in range(y.shape[1]) for b in blocks]
    cols = _parallel(_sap_column, [(x_train[:, b], y[train, k], x_test[:, b], y[test, k], svm_c) for k, b in tasks], n_jobs)
    matrix = np.zeros((x.shape[1], y.shape[1]))
    for (k, b), col in zip(tasks, cols):
        matrix[b, k] = col
    gap, top = top_two_gap(matrix)
    return GapResult(float(gap.mean()), gap, matrix, top)

"""KID and precision/recall as protocols: their constants, their typed extras, and the step from
feature rows to a MetricResult. The estimators themselves are in stylegan_eval.metrics.kid
(Binkowski et al. 2018, unbiased MMD^2 with the cubic polynomial kernel) and
stylegan_eval.metrics.precision_recall (Kynkaanniemi et al. 2019, k-NN radii). The feature rows
are on disk (stylegan_eval.metrics.feature_store): the dataset's cached under the key of its FID
statistics, the generated ones written by the one pass over the generated images
(stylegan_eval.metrics.image_pass) that FID and separability share.
"""

from dataclasses import dataclass

from stylegan_core import distributed
from stylegan_core.errors import ConfigError
from stylegan_eval.metrics.feature_store import FeatureStore, broadcast_from_main
from stylegan_eval.provenance import MetricResult, RecordExtras
from stylegan_eval.records import FeatureNetwork


@dataclass(frozen=True)
class KIDConfig:
    num_samples: int = 50_000  # generated images
    num_real: int | None = 50_000  # dataset images (first min(num_real, len)); None: all
    num_subsets: int = 100  # kid50k: 100 subsets ...
    subset_size: int = 1000  # ... of 1,000 (clipped to the smaller sample set)

    def __post_init__(self):
        if self.num_samples < 2 or self.num_subsets < 1 or self.subset_size < 2:
            raise ConfigError(f"KID needs num_samples >= 2, num_subsets >= 1, subset_size >= 2, got {self}")


@dataclass(frozen=True)
class PRConfig:
    num_samples: int = 50_000  # generated images
    num_real: int | None = 50_000  # dataset images (first min(num_real, len)); None: all
    k: int = 3  # neighbourhood size of the k-NN radii (pr50k3)
    distance_batch: int = 10_000  # rows and columns per distance tile; does not change the value

    def __post_init__(self):
        if self.num_samples < 2 or self.k < 1 or self.distance_batch < 1:
            raise ConfigError(f"precision/recall needs num_samples >= 2, k >= 1, distance_batch >= 1, got {self}")


@dataclass(frozen=True)
class KIDExtras(RecordExtras):
    std: float  # standard deviation of the subsets' MMD^2 estimates
    num_subsets: int
    subset_size: int  # rows per subset actually used
    num_real: int


@dataclass(frozen=True)
class PRExtras(RecordExtras):
    precision: float  # fraction of generated samples inside the real manifold
    recall: float  # fraction of real samples inside the generated manifold
    k: int
    num_real: int


def _rows(config, real: FeatureStore, fake: FeatureStore) -> tuple[int, int]:
    """(real rows, generated rows) of a protocol: stores hold the most any protocol of the run needs."""
    return min(config.num_real or real.num, real.num), min(config.num_samples, fake.num)


def kid_result(name: str, config: KIDConfig, real: FeatureStore, fake: FeatureStore, seed: int,
               network: FeatureNetwork, wall_time_s: float, device) -> MetricResult:
    """KID of the first `config.num_samples` generated rows against the first `config.num_real`
    real rows; the subsets are drawn from `seed` (so the value depends on the seed and the samples
    only). Rank 0 reads the stores and estimates; every rank gets the result."""
    from stylegan_eval.metrics.kid import kid_from_features

    n_real, n_gen = _rows(config, real, fake)
    values = [0.0, 0.0, 0.0]
    if distributed.is_main():
        kid = kid_from_features(real.load()[:n_real], fake.load()[:n_gen], num_subsets=config.num_subsets,
                                subset_size=config.subset_size, seed=seed)
        values = [kid.mean, kid.std, kid.subset_size]
    mean, std, subset_size = broadcast_from_main(values, device)
    return MetricResult(
        metric=name, value=mean,
        params={"num_gen": n_gen, "num_real": n_real, "num_subsets": config.num_subsets,
                "subset_size": config.subset_size, "kernel": "(x.y / D + 1) ** 3", "truncation_psi": 1.0},
        num_samples=n_gen, seed=seed, feature_network=network, wall_time_s=wall_time_s,
        extras=KIDExtras(std=std, num_subsets=config.num_subsets, subset_size=int(subset_size), num_real=n_real),
    )


def pr_results(name: str, config: PRConfig, real: FeatureStore, fake: FeatureStore, seed: int,
               network: FeatureNetwork, wall_time_s: float, device) -> list[MetricResult]:
    """Two results, `<name>_precision` and `<name>_recall`, of the first `config.num_samples`
    generated rows against the first `config.num_real` real rows (rank 0 computes on `device`,
    every rank gets them)."""
    from stylegan_eval.metrics.precision_recall import precision_recall

    n_real, n_gen = _rows(config, real, fake)
    values = [0.0, 0.0]
    if distributed.is_main():
        pr = precision_recall(real.load()[:n_real], fake.load()[:n_gen], k=config.k, batch=config.distance_batch,
                              device=device)
        values = [pr.precision, pr.recall]
    precision, recall = broadcast_from_main(values, device)  # float32 values: exact in float64
    extras = PRExtras(precision=precision, recall=recall, k=config.k, num_real=n_real)
    params = {"num_gen": n_gen, "num_real": n_real, "k": config.k, "truncation_psi": 1.0}
    return [
        MetricResult(metric=f"{name}_{part}", value=value, params=params, num_samples=n_gen, seed=seed,
                     feature_network=network, wall_time_s=wall_time_s, extras=extras)
        for part, value in (("precision", extras.precision), ("recall", extras.recall))
    ]

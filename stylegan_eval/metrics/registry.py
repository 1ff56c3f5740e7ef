"""Named evaluation protocols, as the official code and stylegan2-ada-pytorch name them.

A protocol fixes every constant of a metric: `fid50k` is FID of 50,000 generated images against
up to 50,000 dataset images; `ppl_wend` is PPL in W at the path ends with 100,000 pairs, eps 1e-4
and the face crop; and so on. `stylegan-eval measure --metrics fid50k,ppl_wend` names them.

| protocol     | kind | generated | constants                                              |
|--------------|------|-----------|--------------------------------------------------------|
| fid50k       | fid  | 50,000    | up to 50,000 real images                               |
| fid50k_full  | fid  | 50,000    | all real images                                        |
| kid50k       | kid  | 50,000    | up to 50,000 real; 100 subsets of 1,000 (Binkowski)    |
| kid50k_full  | kid  | 50,000    | all real images; 100 subsets of 1,000                  |
| pr50k3       | pr   | 50,000    | up to 50,000 real; k = 3 (Kynkaanniemi et al. 2019)   |
| pr50k3_full  | pr   | 50,000    | up to 200,000 real; k = 3                              |
| ppl_zfull .. | ppl  | 100,000   | eps 1e-4, face crop, LPIPS-VGG16; Z/W, full/end        |
| ls           | ls   | 200,000   | the most confident half per attribute, Z and W         |
| dci          | dis. | 15,000    | 10,000 fit : 5,000 test, boosted trees; Z, W and S     |
| dci_lasso    | dis. | 15,000    | as dci with L1 logistic regression (S at scale)        |
| mig          | dis. | 10,000    | 20 equal-width bins per code; Z, W and S               |
| sap          | dis. | 15,000    | 10,000 fit : 5,000 test, 1-D LinearSVC(C=0.01)         |

dci, mig and sap are disentanglement_lib's constants (stylegan_eval.metrics.disentanglement) with
the attribute classifiers' labels as factors; each writes one record per latent space
("dci_z", "mig_s", ...), and `Protocol.with_spaces` picks the spaces.

Scaling down (tests, CPU): `Protocol.with_num_samples(n)` keeps every constant except the number
of generated samples, and the records say so (`params["protocol_num_samples"]`).

Adding a metric: one module in stylegan_eval/metrics with its config, and one line below.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from stylegan_core.errors import ConfigError
from stylegan_eval.metrics.fid import FIDConfig
from stylegan_eval.metrics.image_metrics import KIDConfig, PRConfig
from stylegan_eval.metrics.latent_factors import DisentanglementConfig
from stylegan_eval.metrics.ppl import PPLConfig
from stylegan_eval.metrics.separability import LSConfig

Kind = Literal["fid", "kid", "pr", "ppl", "ls", "disentanglement"]


@dataclass(frozen=True)
class Protocol:
    name: str  # what users type, e.g. "fid50k"
    kind: Kind  # which metric module measures it
    config: Any  # that module's frozen config with the protocol's constants (has `num_samples`)
    protocol_num_samples: int | None = None  # set when scaled down: the count the protocol fixes

    @property
    def num_samples(self) -> int:
        return self.config.num_samples

    def with_num_samples(self, n: int | None) -> "Protocol":
        """The same protocol on n generated samples (None: unchanged)."""
        if n is None or n == self.num_samples:
            return self
        minimum = 4 if self.kind == "disentanglement" else 2  # DCI/SAP need a train and a test split
        if n < minimum:
            raise ConfigError(f"--num-samples must be at least {minimum}" + (f" for {self.name}" if minimum > 2 else "")
                              + f", got {n}")
        return dataclasses.replace(self, config=dataclasses.replace(self.config, num_samples=n),
                                   protocol_num_samples=self.protocol_num_samples or self.num_samples)

    def with_spaces(self, spaces: tuple[str, ...] | None) -> "Protocol":
        """The protocol in the given latent spaces (None: unchanged). ls measures those of z and w;
        dci/mig/sap any of z, w, s; the other protocols have no latent space and stay as they are."""
        if spaces is None or self.kind not in ("ls", "disentanglement"):
            return self
        allowed = ("z", "w") if self.kind == "ls" else ("z", "w", "s")
        unknown = [s for s in spaces if s not in ("z", "w", "s")]
        if unknown or len(set(spaces)) != len(spaces):
            raise ConfigError(f"--spaces must be distinct names from z, w, s separated by commas; got {','.join(spaces)!r}")
        mine = tuple(s for s in spaces if s in allowed)
        if not mine:
            raise ConfigError(f"{self.name} measures {' or '.join(allowed)}; add one of them to --spaces")
        return dataclasses.replace(self, config=dataclasses.replace(self.config, spaces=mine))

    def with_jobs(self, n_jobs: int) -> "Protocol":
        """ls and dci/mig/sap with `n_jobs` fits at once (does not change the value); others unchanged."""
        if self.kind not in ("ls", "disentanglement"):
            return self
        return dataclasses.replace(self, config=dataclasses.replace(self.config, n_jobs=n_jobs))

    def without_crop(self) -> "Protocol":
        """A PPL protocol on the whole image (generators too small for the face crop); the record's
        params say crop=false."""
        if self.kind != "ppl":
            raise ConfigError(f"{self.name} has no face crop")
        return dataclasses.replace(self, config=dataclasses.replace(self.config, crop=False))


def _ppl(space: str, sampling: str) -> Protocol:
    return Protocol(f"ppl_{space}{sampling}", "ppl", PPLConfig(space=space, sampling=sampling, num_samples=100_000,
                                                               epsilon=1e-4, crop=True))


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("fid50k", "fid", FIDConfig(num_samples=50_000, num_real=50_000)),
        Protocol("fid50k_full", "fid", FIDConfig(num_samples=50_000, num_real=None)),
        Protocol("kid50k", "kid", KIDConfig(num_samples=50_000, num_real=50_000, num_subsets=100, subset_size=1000)),
        Protocol("kid50k_full", "kid", KIDConfig(num_samples=50_000, num_real=None, num_subsets=100, subset_size=1000)),
        Protocol("pr50k3", "pr", PRConfig(num_samples=50_000, num_real=50_000, k=3)),
        Protocol("pr50k3_full", "pr", PRConfig(num_samples=50_000, num_real=200_000, k=3)),
        _ppl("z", "full"),
        _ppl("z", "end"),
        _ppl("w", "full"),
        _ppl("w", "end"),
        Protocol("ls", "ls", LSConfig(num_samples=200_000, num_keep=None, spaces=("z", "w"))),
        Protocol("dci", "disentanglement", DisentanglementConfig.of("dci", "gbt")),
        Protocol("dci_lasso", "disentanglement", DisentanglementConfig.of("dci", "lasso")),
        Protocol("mig", "disentanglement", DisentanglementConfig.of("mig")),
        Protocol("sap", "disentanglement", DisentanglementConfig.of("sap")),
    )
}


def get_protocols(names: str | list[str], num_samples: int | None = None) -> list[Protocol]:
    """Protocols by name ("fid50k,kid50k" or a list), optionally scaled to `num_samples`."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"no metrics given; choose from {', '.join(PROTOCOLS)}")
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"unknown metric {', '.join(unknown)}; choose from {', '.join(PROTOCOLS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"a metric is named twice in {', '.join(names)}")
    if {"dci", "dci_lasso"} <= set(names):
        raise ConfigError("dci and dci_lasso both write the records dci_<space>; measure them in separate runs")
    return [PROTOCOLS[n].with_num_samples(num_samples) for n in names]

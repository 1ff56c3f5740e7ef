"""The paper's published numbers, as data, keyed by preset name.

Source: Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial
Networks" (CVPR 2019): Table 1 (FID of configurations A-F), Tables 3 and 4 (perceptual path
length and linear separability on FFHQ), and the official FFHQ model's numbers measured by the
official code (NVlabs/stylegan README).

These are PUBLISHED numbers at 1024x1024 on the paper's datasets, measured with the real
Inception / VGG16 / CelebA-HQ classifiers and the paper's sample counts. Reports show them next to
measured values for orientation only; they are never comparable with a CPU-sized run on the
synthetic dataset. Every value carries the table it came from.

Column names are the report's: "fid", "ppl_zfull", "ppl_zend", "ppl_wfull", "ppl_wend",
"ls_z", "ls_w" (the metric names of the result records).
"""

from dataclasses import dataclass, field
from typing import Literal

METRIC_COLUMNS = ("fid", "ppl_zfull", "ppl_zend", "ppl_wfull", "ppl_wend", "ls_z", "ls_w", "kid", "precision", "recall")

# Sample counts the paper's protocols use; a measured value with fewer is marked in reports.
PAPER_NUM_SAMPLES = {
    "fid": 50_000,  # generated images (against up to 50k real)
    "kid": 50_000,  # kid50k (stylegan2-ada)
    "precision": 50_000,  # pr50k3
    "recall": 50_000,
    "ppl_zfull": 100_000,
    "ppl_zend": 100_000,
    "ppl_wfull": 100_000,
    "ppl_wend": 100_000,
    "ls_z": 200_000,
    "ls_w": 200_000,
}

# Size suffixes of the presets that share a paper configuration (stylegan_core.presets).
PRESET_SUFFIXES = ("-cpu32", "-test16", "-256")

GeneratorKind = Literal["traditional", "style-based"]


@dataclass(frozen=True)
class PublishedRow:
    """One published row: a paper configuration's numbers, each with the table it came from."""

    config: str  # the paper configuration, as a base preset name ("F", "trad-m8", ...)
    label: str  # human description, e.g. "Table 4: style-based, 8 mapping layers"
    dataset: Literal["FFHQ", "CelebA-HQ"]
    values: dict[str, float]  # report column -> published value
    sources: dict[str, str] = field(default_factory=dict)  # report column -> "Table 4" etc.

    def __post_init__(self):
        unknown = set(self.values) - set(METRIC_COLUMNS)
        if unknown:
            raise ValueError(f"published row {self.label!r}: unknown columns {sorted(unknown)}")


def _row(config, label, dataset, source, **values) -> PublishedRow:
    return PublishedRow(config, label, dataset, dict(values), {k: source for k in values})


def _merge(config, label, *rows: PublishedRow) -> PublishedRow:
    """One row from several tables' rows for the same configuration (later rows add columns)."""
    values, sources = {}, {}
    for r in rows:
        for k, v in r.values.items():
            if k in values and values[k] != v:
                raise ValueError(f"{config}: tables disagree on {k}: {values[k]} vs {v}")
            values.setdefault(k, v)
            sources[k] = sources[k] + ", " + r.sources[k] if k in sources else r.sources[k]
    return PublishedRow(config, label, rows[0].dataset, values, sources)


# Table 1: FID (lower is better) on CelebA-HQ and FFHQ.
TABLE1 = {
    "A": (7.79, 8.04, "baseline Progressive GAN"),
    "B": (6.11, 5.25, "+ tuning (bilinear up/down, longer training)"),
    "C": (5.34, 4.85, "+ mapping network and styles"),
    "D": (5.07, 4.88, "+ remove traditional input"),
    "E": (5.06, 4.42, "+ noise inputs"),
    "F": (5.17, 4.40, "+ mixing regularisation"),
}

# Table 3 (FFHQ): PPL full / end and separability, each in the space the paper lists.
_T3 = {
    "B": _row("B", "Table 3: B traditional (Z)", "FFHQ", "Table 3", ppl_zfull=412.0, ppl_zend=415.3, ls_z=10.78),
    "D": _row("D", "Table 3: D style-based (W)", "FFHQ", "Table 3", ppl_wfull=446.2, ppl_wend=376.6, ls_w=3.61),
    "E": _row("E", "Table 3: E + noise inputs (W)", "FFHQ", "Table 3", ppl_wfull=200.5, ppl_wend=160.6, ls_w=3.54),
    "E-mix50": _row("E-mix50", "Table 3: + mixing 50% (W)", "FFHQ", "Table 3", ppl_wfull=231.5, ppl_wend=182.1, ls_w=3.51),
    "F": _row("F", "Table 3: F + mixing 90% (W)", "FFHQ", "Table 3", ppl_wfull=234.0, ppl_wend=195.9, ls_w=3.79),
}

# Table 4 (FFHQ): generator kind and mapping depth -> FID, PPL full / end, separability.
TABLE4_KIND = {
    "trad-m0": ("traditional", 0),
    "trad-m8": ("traditional", 8),
    "style-m0": ("style-based", 0),
    "style-m1": ("style-based", 1),
    "style-m2": ("style-based", 2),
    "style-m8": ("style-based", 8),
}
_T4 = {
    "trad-m0": _row("trad-m0", "", "FFHQ", "Table 4", fid=5.25, ppl_zfull=412.0, ppl_zend=415.3, ls_z=10.78),
    "trad-m8": _row(
        "trad-m8", "", "FFHQ", "Table 4",
        fid=4.87, ppl_zfull=896.2, ppl_zend=902.0, ls_z=170.29, ppl_wfull=324.5, ppl_wend=212.2, ls_w=6.52,
    ),
    "style-m0": _row("style-m0", "", "FFHQ", "Table 4", fid=5.06, ppl_zfull=283.5, ppl_zend=285.5, ls_z=9.88),
    "style-m1": _row("style-m1", "", "FFHQ", "Table 4", fid=4.60, ppl_wfull=219.9, ppl_wend=209.4, ls_w=6.81),
    "style-m2": _row("style-m2", "", "FFHQ", "Table 4", fid=4.43, ppl_wfull=217.8, ppl_wend=199.9, ls_w=6.25),
    "style-m8": _row("style-m8", "", "FFHQ", "Table 4", fid=4.40, ppl_wfull=234.0, ppl_wend=195.9, ls_w=3.79),
}

# The official FFHQ model (configuration F) measured by the official code, NVlabs/stylegan README.
OFFICIAL_FFHQ = _row(
    "F", "official FFHQ model, official code (NVlabs/stylegan README)", "FFHQ", "NVlabs/stylegan README",
    fid=4.4159, ppl_zfull=664.8854, ppl_wfull=233.3059, ppl_zend=666.1057, ppl_wend=197.2266,
    ls_z=165.0106, ls_w=3.7447,
)

# Kind and mapping depth of Table 1's configurations (official train.py flags):
# A and B are traditional generators without a mapping network; C-F are style-based with 8 layers.
CONFIG_KIND: dict[str, tuple[GeneratorKind, int]] = {
    "A": ("traditional", 0),
    "B": ("traditional", 0),
    "C": ("style-based", 8),
    "D": ("style-based", 8),
    "E": ("style-based", 8),
    "E-mix50": ("style-based", 8),
    "F": ("style-based", 8),
    **TABLE4_KIND,
}


def _table1_row(config: str, dataset: str) -> PublishedRow:
    celeba, ffhq, change = TABLE1[config]
    fid = ffhq if dataset == "FFHQ" else celeba
    return _row(config, f"Table 1: {config} {change}", dataset, "Table 1", fid=fid)


def _build() -> dict[str, list[PublishedRow]]:
    rows: dict[str, list[PublishedRow]] = {}
    for config in TABLE1:
        # The FFHQ row merges Table 1's FID with Table 3's PPL / separability (same model).
        parts = [_table1_row(config, "FFHQ")] + ([_T3[config]] if config in _T3 else [])
        label = f"paper config {config}, FFHQ (Table 1" + (", Table 3)" if config in _T3 else ")")
        rows[config] = [_merge(config, label, *parts), _table1_row(config, "CelebA-HQ")]
    rows["E-mix50"] = [_T3["E-mix50"]]
    for name, (kind, depth) in TABLE4_KIND.items():
        label = f"Table 4: {kind}, {depth} mapping layer" + ("" if depth == 1 else "s")
        rows[name] = [_merge(name, label, _T4[name])]
    # Table 4's bottom row and trad-m0 are configurations F and B (same numbers in both tables).
    rows["F"][0] = _merge("F", "paper config F, FFHQ (Tables 1, 3, 4)", rows["F"][0], _T4["style-m8"])
    rows["B"][0] = _merge("B", "paper config B, FFHQ (Tables 1, 3, 4)", rows["B"][0], _T4["trad-m0"])
    rows["F"].insert(1, OFFICIAL_FFHQ)
    return rows


PUBLISHED: dict[str, list[PublishedRow]] = _build()


def base_config(preset: str | None) -> str | None:
    """The paper configuration a preset name reproduces ("F-cpu32" -> "F"), or None."""
    if not preset:
        return None
    for suffix in PRESET_SUFFIXES:
        if preset.endswith(suffix):
            preset = preset[: -len(suffix)]
            break
    return preset if preset in PUBLISHED else None


def published_rows(preset: str | None, dataset: str | None = "FFHQ") -> list[PublishedRow]:
    """Published rows for the paper configuration behind `preset` (any size variant).

    dataset: "FFHQ" (default; Tables 3 and 4 are FFHQ) | "CelebA-HQ" | None (all rows).
    """
    config = base_config(preset)
    if config is None:
        return []
    return [r for r in PUBLISHED[config] if dataset is None or r.dataset == dataset]


def generator_kind(preset: str | None) -> tuple[GeneratorKind, int] | None:
    """(generator kind, mapping layers) of the paper configuration behind `preset`, or None."""
    config = base_config(preset)
    return CONFIG_KIND.get(config) if config else None

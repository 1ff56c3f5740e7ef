"""Report figures (matplotlib, Agg backend, PNG): PPL distance histograms per model and space,
per-attribute conditional entropies (Z vs W), training curves from a run's JSON-lines
statistics. Image grids made by stylegan_core.sampling are embedded as they are.

Inputs are read by field from the records' typed extras: `PPLExtras.dists_file` names a saved .npy
of per-pair distances (`--save-dists`); `LSExtras` carries the per-attribute entropies.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on servers without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stylegan_eval.records import ResultRecord  # noqa: E402

# Keys of the images-shown counter in training statistics, most specific first.
_X_KEYS = ("kimg", "images_shown", "cur_nimg", "nimg", "images", "step", "iteration")


@dataclass(frozen=True)
class FigureFile:
    title: str
    path: Path  # PNG file
    caption: str = ""


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def dists_path(record: ResultRecord, base_dir: str | os.PathLike | None = None) -> Path | None:
    """The per-pair distances (.npy) a PPL record saved (`PPLExtras.dists_file`), if the file exists.

    Relative paths are tried against `base_dir` (the results file's folder), then the cwd."""
    from stylegan_eval.metrics.ppl import PPLExtras

    if not record.metric.startswith("ppl_"):
        return None
    saved = PPLExtras.from_dict(record.extras).dists_file
    if saved is None:
        return None
    p = Path(saved)
    for cand in ([Path(base_dir) / p] if base_dir and not p.is_absolute() else []) + [p]:
        if cand.is_file():
            return cand
    return None


def ppl_histogram(model: str, dists: dict[str, np.ndarray], path: Path) -> FigureFile:
    """Histograms of per-sample PPL distances for one model.

    dists: metric name ("ppl_zfull", "ppl_wend", ...) -> distances [N] (already / eps^2).
    One panel per sampling (full, end), Z and W overlaid, log-spaced bins over the 1st-99th
    percentile range (the range the metric averages over), dashed line at each filtered mean.
    """
    samplings = [s for s in ("full", "end") if any(m.endswith(s) for m in dists)]
    fig, axes = plt.subplots(1, len(samplings), figsize=(5 * len(samplings), 3.2), squeeze=False)
    for ax, s in zip(axes[0], samplings):
        for space, color in (("z", "tab:orange"), ("w", "tab:blue")):
            d = dists.get(f"ppl_{space}{s}")
            if d is None or len(d) == 0:
                continue
            d = np.asarray(d, dtype=np.float64)
            lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
            kept = d[(d >= lo) & (d <= hi)]
            lo_b, hi_b = max(kept.min(), 1e-12), max(kept.max(), 1e-12) * 1.0001
            bins = np.geomspace(lo_b, hi_b, 30) if hi_b > lo_b * 1.01 else 10
            ax.hist(kept, bins=bins, alpha=0.55, color=color, label=f"{space.upper()} (mean {kept.mean():.1f}, n={len(d)})")
            ax.axvline(kept.mean(), color=color, linestyle="--", linewidth=1)
        if isinstance(bins, np.ndarray):
            ax.set_xscale("log")
        ax.set_title(f"{model}: PPL {s}")
        ax.set_xlabel("LPIPS distance / eps^2")
        ax.set_ylabel("samples")
        ax.legend(fontsize=8)
    _save(fig, path)
    return FigureFile(f"PPL distances: {model}", path, "per-sample distances between the 1st and 99th percentile, Z vs W")


def entropies_of(record: ResultRecord) -> dict[str, float] | None:
    """Per-attribute conditional entropies H(Y|X) (bits) of a separability record
    (`LSExtras.attributes` and `.entropies`); None for other records."""
    from stylegan_eval.metrics.separability import LSExtras

    if not record.metric.startswith("ls_"):
        return None
    return LSExtras.from_dict(record.extras).entropy_by_attribute() or None


def entropy_bars(model: str, z: dict[str, float] | None, w: dict[str, float] | None, path: Path) -> FigureFile:
    """Grouped bars of per-attribute conditional entropy, Z vs W (lower = more separable)."""
    names = list(dict.fromkeys(list((z or {}).keys()) + list((w or {}).keys())))
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(names) + 2), 3.4))
    width = 0.4
    for i, (space, ent, color) in enumerate((("Z", z, "tab:orange"), ("W", w, "tab:blue"))):
        if ent:
            vals = [ent.get(n, math.nan) for n in names]
            ax.bar(x + (i - 0.5) * width, vals, width, label=f"{space} (sum {np.nansum(vals):.3f} bits)", color=color)
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("H(Y|X) [bits]")
    ax.set_title(f"{model}: conditional entropy per attribute")
    ax.legend(fontsize=8)
    _save(fig, path)
    return FigureFile(f"Separability per attribute: {model}", path, "conditional entropy of the classifier label given the linear SVM's prediction; lower is more separable")


def read_stats(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Lines of a JSON-lines statistics file that parse as objects (a torn last line is skipped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                rows.append(obj)
    return rows


def _numeric_series(rows: Sequence[dict]) -> dict[str, list[float]]:
    """Flattened numeric fields ("loss/G" for nested {"loss": {"G": ..}}), NaN where absent."""
    flat = []
    for r in rows:
        f = {}
        for k, v in r.items():
            if isinstance(v, dict):
                f.update({f"{k}/{k2}": v2 for k2, v2 in v.items()})
            else:
                f[k] = v
        flat.append(f)
    keys = list(dict.fromkeys(k for f in flat for k, v in f.items() if isinstance(v, (int, float)) and not isinstance(v, bool)))
    return {k: [float(f[k]) if isinstance(f.get(k), (int, float)) else math.nan for f in flat] for k in keys}


def training_curves(stats_path: str | os.PathLike, path: Path, title: str | None = None) -> FigureFile | None:
    """Losses (and other loss-like statistics) against images shown, from a run's stats file.

    Returns None when the file holds no plottable series."""
    series = _numeric_series(read_stats(stats_path))
    xkey = next((k for k in _X_KEYS if k in series), None)
    loss_keys = [k for k in series if "loss" in k.lower() or k.lower().startswith(("g_", "d_", "r1", "gp"))]
    if xkey is None or not loss_keys:
        return None
    x = series[xkey]
    other = [k for k in series if k not in loss_keys and k != xkey and ("per_s" in k or "/s" in k or "lod" in k)]
    fig, axes = plt.subplots(1, 1 + bool(other), figsize=(5 * (1 + bool(other)), 3.2), squeeze=False)
    for k in loss_keys:
        axes[0][0].plot(x, series[k], label=k, linewidth=1)
    axes[0][0].set_xlabel(xkey)
    axes[0][0].set_title("losses")
    axes[0][0].legend(fontsize=7)
    for k in other:
        axes[0][1].plot(x, series[k], label=k, linewidth=1)
    if other:
        axes[0][1].set_xlabel(xkey)
        axes[0][1].legend(fontsize=7)
    name = title or Path(stats_path).parent.name
    fig.suptitle(f"training: {name}")
    _save(fig, path)
    return FigureFile(f"Training curves: {name}", path, f"from {stats_path}")


def sample_figures(G, label: str, style_based: bool, out: Path, device="cpu") -> list[tuple[str, str]]:
    """PNGs made with stylegan_core.sampling, as (title, path): uncurated samples, the truncation
    sweep (paper Fig. 8), interpolation strips in Z and W and, for a style-based G, the
    style-mixing figure (paper Fig. 3)."""
    from stylegan_core import sampling as S

    figs = []
    path = S.save_image_grid(S.generate_images(G, range(32), truncation_psi=1.0, device=device), out / f"{label}_samples.png", cols=8)
    figs.append((f"{label}: uncurated samples (seeds 0-31, no truncation)", str(path)))
    psis = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)
    sweep = S.truncation_sweep(G, range(4), psis, device=device)
    path = S.save_image_grid(sweep.flatten(0, 1), out / f"{label}_truncation.png", cols=len(psis))
    figs.append((f"{label}: truncation sweep, psi = {', '.join(map(str, psis))}", str(path)))
    strips = [S.interpolation_strip(G, 0, 1, 8, space=s, truncation_psi=1.0, device=device) for s in ("z", "w")]
    path = S.save_image_grid(torch.cat(strips), out / f"{label}_interpolation.png", cols=8)
    figs.append((f"{label}: interpolation seed 0 -> 1, top row slerp in Z, bottom row lerp in W", str(path)))
    if style_based and G.num_ws >= 2:
        mix = S.style_mixing_figure(G, [10, 11, 12], [20, 21, 22, 23, 24], ["coarse", "middle", "fine"], device=device)
        path = S.save_image_grid(mix.flat(), out / f"{label}_style_mixing.png", cols=6)
        figs.append((f"{label}: style mixing, rows take coarse / middle / fine styles from the left column", str(path)))
    return figs



def dci_heatmaps(model: str, dci_records: dict[str, ResultRecord], path: Path, top: int = 24) -> FigureFile:
    """Per space, which codes carry which attribute: the DCI importance matrix as a heatmap.

    dci_records: space ("z", "w", "s") -> that space's DCI record (metric "dci_<space>"). Each panel
    shows, for the `top` codes of largest total importance, each attribute's share of its
    importance (R[d, k] / sum_d R[d, k], 0..1), codes grouped by the attribute they matter most
    for: a disentangled and complete space is one bright cell per row, each in its own column."""
    from stylegan_eval.metrics.latent_factors import DisentanglementExtras

    spaces = sorted(dci_records, key=lambda s: ("z", "w", "s").index(s) if s in ("z", "w", "s") else 3)
    extras = {s: DisentanglementExtras.from_dict(dci_records[s].extras) for s in spaces}
    num_factors = max(len(e.factors) for e in extras.values())
    height = 0.9 + (0.3 * num_factors + 1.4) * len(spaces)
    fig, axes = plt.subplots(len(spaces), 1, figsize=(min(14, 2.5 + 0.36 * top), height), squeeze=False,
                             layout="constrained")
    image = None
    for ax, s in zip(axes[:, 0], spaces):
        e = extras[s]
        r = np.asarray(e.importance, dtype=np.float64)  # [D, K]
        totals = r.sum(axis=0, keepdims=True)
        share = r / np.where(totals > 0, totals, 1.0)
        codes = np.argsort(-r.sum(axis=1), kind="stable")[: min(top, r.shape[0])]
        codes = codes[np.lexsort((-share[codes].max(axis=1), share[codes].argmax(axis=1)))]  # by attribute, then share
        image = ax.imshow(share[codes].T, aspect="auto", cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_yticks(range(len(e.factors)), e.factors, fontsize=8)
        ax.set_xticks(range(len(codes)), [str(c) for c in codes], fontsize=7, rotation=90)
        ax.set_title(f"{s.upper()} ({e.dims} dims, {e.regressor}): disentanglement {dci_records[s].value:.2f}, "
                     f"completeness {e.completeness:.2f}, test accuracy {e.informativeness_test:.2f}", fontsize=9)
        ax.set_xlabel(f"the {len(codes)} most important of {e.dims} codes (index)", fontsize=8)
    fig.colorbar(image, ax=axes[:, 0].tolist(), fraction=0.03, pad=0.01, label="share of the attribute's importance")
    fig.suptitle(f"{model}: DCI importance of each code for each attribute", fontsize=10)
    _save(fig, path)
    return FigureFile(f"DCI importance: {model}", path,
                      "each row is an attribute; a bright cell is a code that predicts it. One bright cell per row, each in "
                      "its own column, is a disentangled and complete space")

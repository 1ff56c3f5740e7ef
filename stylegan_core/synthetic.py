"""A procedural, labelled face-like dataset: the embedded default that needs no download.

Each image shows a cartoon head on a background. Ten binary attributes, drawn independently
with CelebA-like unequal probabilities (`SYNTH_ATTRIBUTES`), decide what is drawn and are written
as exact labels; continuous nuisance variation (position, size, colour and lighting jitter, head
turn direction, clothing colour, hair texture and fine pixel noise) gives the generator
stochastic detail to model.

Determinism: image i depends only on (seed, i, resolution). Its parameters and noise come from
its own NumPy generator seeded with [seed, i]; drawing is vectorised over a chunk of images but
uses only element-wise arithmetic (no transcendental functions), so results do not depend on the
chunk size and the same seed gives byte-identical files.

Output layout (`synthesize_dataset`), written into a temporary folder that is renamed into place
only when complete:
    out_dir/images/000000.png ...   RGB PNG, resolution x resolution
    out_dir/list_attr.txt           CelebA `list_attr_celeba.txt` format (count, names, rows of 1/-1)
    out_dir/attributes.csv          filename,<attribute names...> with 1/-1
    out_dir/dataset.json            how it was made (seed, num, resolution, probabilities)
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from stylegan_core.errors import ConfigError, DatasetError

# Bump when the drawing changes, so a dataset's dataset.json says which drawing made it.
SYNTH_VERSION = 1

# name -> probability of +1. Roughly independent; unequal like CelebA's attributes.
SYNTH_PROBABILITIES: dict[str, float] = {
    "Eyeglasses": 0.25,
    "Smiling": 0.48,
    "Wearing_Hat": 0.20,
    "Dark_Hair": 0.60,
    "Long_Hair": 0.35,
    "Beard": 0.20,
    "Pale_Skin": 0.40,
    "Turned_Head": 0.30,
    "Large_Face": 0.40,
    "Light_Background": 0.45,
}
SYNTH_ATTRIBUTES: tuple[str, ...] = tuple(SYNTH_PROBABILITIES)

_NUM_ATTR = len(SYNTH_ATTRIBUTES)
_NUM_UNIFORMS = 40  # per-image uniforms for nuisance parameters (fixed, so streams never shift)
_HAT_COLOURS = np.array(  # saturated hues, far from any hair or skin colour
    [[0.85, 0.12, 0.12], [0.12, 0.25, 0.85], [0.10, 0.65, 0.20], [0.55, 0.15, 0.70], [0.05, 0.60, 0.65]],
    dtype=np.float32,
)


@dataclass(frozen=True)
class SynthBatch:
    """Per-image parameters of a chunk of images (every field has leading dim [B])."""

    labels: np.ndarray  # [B, A] bool
    uniforms: np.ndarray  # [B, _NUM_UNIFORMS] float64 in [0, 1)
    noise: np.ndarray  # [B, 2, R, R] float32 standard normal (0: pixel noise, 1: hair texture)


def _check_resolution(resolution: int) -> None:
    if not (8 <= resolution <= 1024) or resolution & (resolution - 1):
        raise ConfigError(f"synthetic resolution must be a power of two from 8 to 1024, got {resolution}")


def sample_params(seed: int, indices, resolution: int) -> SynthBatch:
    """Draw the parameters of images `indices`; image i uses only np.random.default_rng([seed, i])."""
    if seed < 0:
        raise ConfigError(f"seed must be non-negative, got {seed}")
    labels, uniforms, noise = [], [], []
    probs = np.array(list(SYNTH_PROBABILITIES.values()))
    for i in indices:
        rng = np.random.default_rng([seed, int(i)])
        labels.append(rng.random(_NUM_ATTR) < probs)
        uniforms.append(rng.random(_NUM_UNIFORMS))
        noise.append(rng.standard_normal((2, resolution, resolution), dtype=np.float32))
    return SynthBatch(np.stack(labels), np.stack(uniforms), np.stack(noise))


# ---------------------------------------------------------------------------------------------
# Drawing primitives. Coordinates are in [-1, 1] (x right, y down); every parameter is a [B, 1, 1]
# array so one call draws a shape in all images of the chunk. Alpha is an anti-aliased coverage
# from an approximate signed distance (in pixels) to the shape's edge.


def _coverage(signed_dist: np.ndarray, px: float) -> np.ndarray:
    return np.clip(0.5 - signed_dist / px, 0.0, 1.0)


def _ellipse(x, y, cx, cy, rx, ry, px):
    f = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return _coverage((f - 1.0) * np.minimum(rx, ry), px)


def _rect(x, y, x0, x1, y0, y1, px):
    d = np.maximum(np.maximum(x0 - x, x - x1), np.maximum(y0 - y, y - y1))
    return _coverage(d, px)


def _paint(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """img [B, R, R, 3], alpha [B, R, R], colour [B, 3] or [B, R, R, 3] -> composited img."""
    if colour.ndim == 2:
        colour = colour[:, None, None, :]
    return img + alpha[..., None] * (colour - img)


def _lerp(u, lo, hi):
    return lo + (hi - lo) * u


def render(params: SynthBatch, resolution: int) -> np.ndarray:
    """Draw a chunk: returns uint8 [B, R, R, 3]. Depends on each image's parameters only."""
    _check_resolution(resolution)
    lab = params.labels.astype(np.float32)[:, :, None, None]  # [B, A, 1, 1]
    glasses, smile, hat, dark_hair, long_hair, beard, pale, turned, large, light_bg = (
        lab[:, k] for k in range(_NUM_ATTR)
    )
    u = params.uniforms.astype(np.float32)[:, :, None, None]  # [B, U, 1, 1]
    b = u.shape[0]
    px = 2.0 / resolution
    coords = (np.arange(resolution, dtype=np.float32) + 0.5) * px - 1.0
    y, x = coords[None, :, None], coords[None, None, :]  # [1, R, 1], [1, 1, R]

    def col(idx0, base_lo, base_hi, jitter):
        """A colour [B, 3]: blend between two base colours, plus per-channel jitter."""
        t = u[:, idx0, 0, 0][:, None]
        c = _lerp(t, np.asarray(base_lo, np.float32), np.asarray(base_hi, np.float32))
        return c + (u[:, idx0 + 1 : idx0 + 4, 0, 0] - 0.5) * 2 * jitter

    # Geometry: head centre and size (Large_Face), turn (Turned_Head, direction is nuisance).
    cx = _lerp(u[:, 0], -0.08, 0.08)
    cy = _lerp(u[:, 1], -0.01, 0.11)
    a = np.where(large > 0, _lerp(u[:, 2], 0.50, 0.56), _lerp(u[:, 2], 0.36, 0.42))
    bh = a * _lerp(u[:, 3], 1.18, 1.28)
    direction = np.where(u[:, 4] < 0.5, np.float32(-1), np.float32(1))
    a_face = a * np.where(turned > 0, np.float32(0.86), np.float32(1))
    dx = turned * direction * 0.32 * a  # features slide towards the turn
    eye_dx = a * np.where(turned > 0, np.float32(0.30), np.float32(0.38))

    # Colours.
    bg_level = np.where(light_bg > 0, _lerp(u[:, 5], 0.72, 0.90), _lerp(u[:, 5], 0.08, 0.28))[:, :, 0]
    bg = bg_level + (u[:, 6:9, 0, 0] - 0.5) * 0.12  # [B, 3]
    skin = np.where(
        pale[:, :, 0] > 0,
        col(9, [0.97, 0.86, 0.78], [0.90, 0.76, 0.68], 0.03),
        col(9, [0.70, 0.48, 0.34], [0.45, 0.29, 0.19], 0.03),
    )
    hair = np.where(
        dark_hair[:, :, 0] > 0,
        col(13, [0.06, 0.05, 0.04], [0.30, 0.18, 0.10], 0.03),
        col(13, [0.93, 0.80, 0.45], [0.78, 0.62, 0.30], 0.04),
    )
    hat_idx = np.minimum((u[:, 17, 0, 0] * len(_HAT_COLOURS)).astype(np.int64), len(_HAT_COLOURS) - 1)
    hat_col = _HAT_COLOURS[hat_idx] + (u[:, 18:21, 0, 0] - 0.5) * 0.12
    clothes = _lerp(u[:, 21:24, 0, 0], 0.1, 0.9)
    frame = _lerp(u[:, 24, 0, 0], 0.02, 0.12)[:, None].repeat(3, axis=1)
    light = _lerp(u[:, 25], -0.15, 0.15)  # left-right lighting gradient
    bg_grad = _lerp(u[:, 26], -0.12, 0.12)  # top-bottom background gradient

    # Background with a vertical gradient.
    img = np.broadcast_to(bg[:, None, None, :], (b, resolution, resolution, 3)) * (1 + bg_grad * y)[..., None]

    # Shoulders (clothes) and neck.
    img = _paint(img, _ellipse(x, y, cx, cy + bh + 0.55, a * 1.9, 0.5, px), clothes)
    img = _paint(img, _rect(x, y, cx - 0.42 * a, cx + 0.42 * a, cy + 0.5 * bh, cy + bh + 0.2, px), skin * 0.85)

    # Hair behind the head: a cap, plus a long fall to the shoulders (Long_Hair); hair is textured.
    hair_tex = hair[:, None, None, :] * (1 + 0.10 * params.noise[:, 1, :, :, None])
    cap = _ellipse(x, y, cx, cy - 0.12 * bh, a * 1.12, bh * 1.0, px)
    fall = np.minimum(_rect(x, y, cx - 1.22 * a, cx + 1.22 * a, cy - 0.1 * bh, cy + 1.15 * bh, px), long_hair)
    img = _paint(img, np.maximum(cap, fall), hair_tex)

    # Face (turned heads are narrower), then the hairline over the forehead.
    img = _paint(img, _ellipse(x, y, cx, cy, a_face, bh, px), skin)
    fringe = np.minimum(_ellipse(x, y, cx, cy - 0.12 * bh, a * 1.12, bh * 1.0, px), _rect(x, y, -2, 2, -2, cy - 0.62 * bh, px))
    img = _paint(img, fringe, hair_tex)

    # Beard: lower face and jaw, in a darker shade of the hair colour.
    jaw = np.minimum(_ellipse(x, y, cx + 0.3 * dx, cy + 0.02, a_face * 1.04, bh, px), _rect(x, y, -2, 2, cy + 0.2 * bh, 2, px))
    img = _paint(img, np.minimum(jaw, beard), hair_tex * 0.62)

    # Eyes and nose.
    ey = cy - 0.12 * bh
    erx, ery = np.maximum(0.11 * a, 0.7 * px), np.maximum(0.07 * bh, 0.6 * px)
    eyes = np.maximum(_ellipse(x, y, cx + dx - eye_dx, ey, erx, ery, px), _ellipse(x, y, cx + dx + eye_dx, ey, erx, ery, px))
    img = _paint(img, eyes, np.full((b, 3), 0.06, np.float32))
    img = _paint(img, _ellipse(x, y, cx + 1.3 * dx, cy + 0.12 * bh, 0.07 * a, 0.11 * bh, px), skin * 0.78)

    # Eyeglasses: tinted lenses inside dark rings, and a bridge.
    ring_r = 0.25 * a
    thick = np.maximum(0.08 * a, 0.9 * px)
    lens = np.maximum(
        _ellipse(x, y, cx + dx - eye_dx, ey, ring_r, ring_r * 0.85, px),
        _ellipse(x, y, cx + dx + eye_dx, ey, ring_r, ring_r * 0.85, px),
    )
    inner = np.maximum(
        _ellipse(x, y, cx + dx - eye_dx, ey, ring_r - thick, ring_r * 0.85 - thick, px),
        _ellipse(x, y, cx + dx + eye_dx, ey, ring_r - thick, ring_r * 0.85 - thick, px),
    )
    bridge = _rect(x, y, cx + dx - eye_dx + ring_r * 0.9, cx + dx + eye_dx - ring_r * 0.9, ey - thick / 2, ey + thick / 2, px)
    img = _paint(img, np.minimum(lens * 0.45, glasses), frame)
    img = _paint(img, np.minimum(np.maximum(np.clip(lens - inner, 0, 1), bridge), glasses), frame)

    # Mouth: an open smile (a dark half-disc) or a thin closed line.
    my, mx = cy + 0.45 * bh, cx + 0.9 * dx
    mry = np.maximum(0.24 * bh, 1.8 * px)
    open_mouth = np.minimum(_ellipse(x, y, mx, my, 0.46 * a, mry, px), _rect(x, y, -2, 2, my, 2, px))
    teeth = np.minimum(open_mouth, _rect(x, y, -2, 2, -2, my + 0.45 * mry, px))
    line = _ellipse(x, y, mx, my + 0.05 * bh, 0.26 * a, np.maximum(0.035 * bh, 0.5 * px), px)
    mouth_col = np.broadcast_to(np.array([0.45, 0.08, 0.10], np.float32), (b, 3))
    img = _paint(img, np.minimum(open_mouth, smile), mouth_col)
    img = _paint(img, np.minimum(teeth, smile), np.full((b, 3), 0.96, np.float32))
    img = _paint(img, np.minimum(line, 1 - smile), skin * 0.55 + mouth_col * 0.3)

    # Hat: a crown over the top of the head and a wide brim.
    crown = np.minimum(_ellipse(x, y, cx, cy - 0.70 * bh, a * 0.98, 0.55 * bh, px), _rect(x, y, -2, 2, -2, cy - 0.62 * bh, px))
    brim = _rect(x, y, cx - 1.3 * a, cx + 1.3 * a, cy - 0.72 * bh, cy - 0.58 * bh, px)
    img = _paint(img, np.minimum(np.maximum(crown, brim), hat), hat_col)

    # Lighting across the subject, then fine pixel noise of a per-image strength.
    img = img * (1 + light * x)[..., None]
    sigma = _lerp(u[:, 27], 0.008, 0.03)[..., None]
    img = img + sigma * params.noise[:, 0, :, :, None]
    return (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def synthesize(seed: int, indices, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels in memory: uint8 [B, R, R, 3] and int8 [B, A] of 1/-1."""
    params = sample_params(seed, indices, resolution)
    return render(params, resolution), np.where(params.labels, 1, -1).astype(np.int8)


def _made_here(out_dir: Path) -> bool:
    """True when out_dir holds a dataset this module wrote (its dataset.json says so)."""
    try:
        meta = json.loads((out_dir / "dataset.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("generator") == "stylegan_core.synthetic"


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetError(f"{out_dir} exists and is not a folder; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        # overwrite replaces only an earlier synthetic dataset, never a folder of someone's files.
        if not _made_here(out_dir):
            raise DatasetError(f"{out_dir} exists, is not empty and is not a synthetic dataset (no dataset.json "
                               "from `data synth`); it is never replaced: choose another --out")
        if not overwrite:
            raise DatasetError(f"{out_dir} holds an earlier synthetic dataset; pass --overwrite to replace it, "
                               "or choose another --out")


def synthesize_dataset(
    out_dir: str | os.PathLike,  # folder to create; must be absent or empty unless overwrite
    num: int,  # number of images
    resolution: int,  # side in pixels, a power of two from 8 to 1024
    seed: int,  # image i depends only on (seed, i, resolution)
    *,
    overwrite: bool = False,  # replace a non-empty out_dir (only after the new one is complete)
    chunk_size: int | None = None,  # images drawn per vectorised chunk; None: ~1M pixels per chunk
    progress: bool = False,  # show a tqdm bar
) -> Path:
    """Write the synthetic dataset (layout in the module docstring); returns out_dir.

    The data is written into a hidden sibling folder and renamed into place at the end, so an
    interrupted run never leaves a folder that looks complete.
    """
    _check_resolution(resolution)
    if num < 1:
        raise ConfigError(f"--num must be at least 1, got {num}")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    chunk = chunk_size or max(1, (1 << 20) // (resolution * resolution))
    width = max(6, len(str(num - 1)))
    names = [f"{i:0{width}d}.png" for i in range(num)]
    labels = np.empty((num, _NUM_ATTR), np.int8)
    try:
        (tmp / "images").mkdir(parents=True)
        from tqdm import tqdm

        with tqdm(total=num, unit="img", desc="synthesising", disable=not progress) as bar:
            for start in range(0, num, chunk):
                idx = range(start, min(num, start + chunk))
                imgs, labels[idx.start : idx.stop] = synthesize(seed, idx, resolution)
                for j, i in enumerate(idx):
                    Image.fromarray(imgs[j], "RGB").save(tmp / "images" / names[i], format="PNG")
                bar.update(len(idx))
        _write_labels(tmp, names, labels)
        meta = {
            "generator": "stylegan_core.synthetic",
            "version": SYNTH_VERSION,
            "seed": seed,
            "num": num,
            "resolution": resolution,
            "attributes": SYNTH_PROBABILITIES,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
        _check_out_dir(out_dir, overwrite)  # again: something may have appeared meanwhile
        if out_dir.is_dir():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _write_labels(folder: Path, names: list[str], labels: np.ndarray) -> None:
    """CelebA list_attr format (count line, names line, `name v1 v2 ...` rows) and CSV."""
    rows = [f"{n} " + " ".join(f"{v:2d}" for v in row) for n, row in zip(names, labels.tolist())]
    (folder / "list_attr.txt").write_text(f"{len(names)}\n{' '.join(SYNTH_ATTRIBUTES)}\n" + "\n".join(rows) + "\n")
    csv_rows = [f"{n}," + ",".join(str(v) for v in row) for n, row in zip(names, labels.tolist())]
    (folder / "attributes.csv").write_text("filename," + ",".join(SYNTH_ATTRIBUTES) + "\n" + "\n".join(csv_rows) + "\n")

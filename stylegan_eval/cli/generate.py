"""`stylegan-eval generate`: images, grids and the paper's figures from a checkpoint."""

import argparse

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import MAX_SEED, add_device, add_model_source, add_overwrite, finite_float, int_at_least, load_generator_option

# Image formats by --out extension; anything else is refused rather than written under a misleading name.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

EPILOG = """modes:
  images      one PNG per seed (seed0000.png ...) in the --out folder
  grid        one PNG grid of the seeds
  mixing      the style-mixing figure (paper Fig. 3): column sources A on top, row sources B on the
              left; each cell has A's styles except one crossover range copied from B
  truncation  the truncation sweep (paper Fig. 8): a row per seed, a column per psi
  interp      interpolation strips between consecutive seeds, in Z (slerp) and/or W (lerp)

examples:
  stylegan-eval generate grid --ckpt runs/F-cpu32 --seeds 0-63 --out grid.png
  stylegan-eval generate images --ckpt runs/F-cpu32/snapshot-000200000.pt --seeds 0-9 --out samples/
  stylegan-eval generate mixing --ckpt runs/F-cpu32 --out mixing.png \\
      --row-seeds 1-6 --col-seeds 10-14 --ranges coarse,coarse,coarse,middle,middle,fine
  stylegan-eval generate truncation --ckpt runs/F-cpu32 --seeds 0-3 --psis 1,0.7,0.5,0,-0.5,-1 --out trunc.png
  stylegan-eval generate interp --ckpt runs/F-cpu32 --seeds 0,1,2 --steps 8 --space both --out interp.png

A run folder as --ckpt means its latest snapshot. Seeds: '0-7', '1,5,9' or '0-3,10'; seed k is the
latent np.random.RandomState(k).randn(z_dim), as in the official generate scripts. Truncation
(sampling only; metrics never truncate) defaults to the paper's psi=0.7 on the first 8 styles.
Seeds are 0..4294967295, at most 4,096 per run (all images are held in memory until written).
The file type follows --out's extension (.png, .jpg); an existing file is replaced only with --overwrite.
"""


# Every image of a run is held in memory until its file is written (a 1024x1024 image is 12 MiB
# as floats), so a range like 0-999999999 would exhaust memory long before anything is written.
MAX_SEEDS = 4096


def parse_seeds(text: str) -> list[int]:
    """'0-3,10' -> [0, 1, 2, 3, 10]; at most MAX_SEEDS seeds, each in 0 .. 2**32 - 1."""
    ranges = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                a, b = part.split("-", 1)
                ranges.append((int(a), int(b)))
            else:
                ranges.append((int(part), int(part)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seeds {text!r}; use e.g. '0-7', '1,5,9' or '0-3,10'") from None
    if not ranges or min(a for a, _ in ranges) < 0 or max(b for _, b in ranges) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"seeds must be integers 0..{MAX_SEED} (NumPy RandomState seeds), got {text!r}")
    if any(b < a for a, b in ranges):
        raise argparse.ArgumentTypeError(f"empty seed range in {text!r}; write ranges low-high, e.g. '0-7'")
    count = sum(b - a + 1 for a, b in ranges)  # counted before expanding: the range may be huge
    if count > MAX_SEEDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} names {count:,} seeds; at most {MAX_SEEDS:,} per run, because every image is held in memory "
            "until the file is written (split the range over several runs)"
        )
    return [s for a, b in ranges for s in range(a, b + 1)]


def paper_ranges(rows: int) -> list[str]:
    """The paper's Fig. 3 pattern for any number of rows (3 coarse, 2 middle, 1 fine for 6)."""
    if rows < 3:
        return ["coarse", "fine"][:rows]
    fine, middle = max(1, round(rows / 6)), max(1, round(rows / 3))
    return ["coarse"] * (rows - fine - middle) + ["middle"] * middle + ["fine"] * fine


def _floats(text: str) -> list[float]:
    try:
        return [finite_float(v) for v in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {text!r}") from None


def _cutoff(text: str) -> int | None:
    if text.lower() in ("none", "all"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"cutoff must be a non-negative integer or 'none', got {text!r}")
    return value


def register(subparsers) -> None:
    from stylegan_core.sampling import DEFAULT_TRUNCATION_CUTOFF, DEFAULT_TRUNCATION_PSI

    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("model and sampling")
    add_model_source(g, group=g.add_mutually_exclusive_group(required=True))
    g.add_argument("--out", required=True, metavar="PATH", help="image file to write, .png or .jpg (a folder for 'images')")
    add_overwrite(g, "image files")
    g.add_argument("--truncation-psi", type=finite_float, default=DEFAULT_TRUNCATION_PSI, help="1 = no truncation")
    g.add_argument("--truncation-cutoff", type=_cutoff, default=DEFAULT_TRUNCATION_CUTOFF,
                   help="truncate the first N style inputs; 'none' = all")
    g.add_argument("--noise-mode", choices=["const", "random", "none"], default="const",
                   help="const: the model's stored noise; random: noise drawn per seed; none: no noise")
    g.add_argument("--batch-size", type=int_at_least(1), default=16, help="images per forward pass (does not change them)")
    add_device(g)

    p = subparsers.add_parser(
        "generate",
        help="sample images, grids, style mixing, truncation sweeps, interpolations",
        description="Sample a trained generator: images or a grid for given seeds, and the paper's "
        "style-mixing figure, truncation sweep and interpolation strips.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(title="modes", metavar="MODE", dest="mode", required=True)

    def mode(name, help_text):
        m = sub.add_parser(name, parents=[common], help=help_text, description=help_text, epilog=EPILOG,
                           formatter_class=HelpFormatter)
        m.set_defaults(func=run)
        return m

    mode("images", "one PNG per seed").add_argument("--seeds", type=parse_seeds, default="0-7", help="seeds to draw")
    m = mode("grid", "a PNG grid of the seeds")
    m.add_argument("--seeds", type=parse_seeds, default="0-15", help="seeds to draw, in reading order")
    m.add_argument("--cols", type=int_at_least(1), default=None, help="grid columns; default: a square-ish grid")
    m = mode("mixing", "the style-mixing figure (paper Fig. 3)")
    m.add_argument("--row-seeds", type=parse_seeds, default="1-6", help="sources B, one per row")
    m.add_argument("--col-seeds", type=parse_seeds, default="10-14", help="sources A, one per column")
    m.add_argument("--ranges", default=None,
                   help="styles copied from B, per row (or one for all rows): coarse, middle, fine "
                   "(the paper's 4-8 / 16-32 / 64-1024 split scaled to the model) or layer indices START-STOP; "
                   "default: as the paper, half the rows coarse, a third middle, a sixth fine")
    m = mode("truncation", "the truncation sweep (paper Fig. 8)")
    m.add_argument("--seeds", type=parse_seeds, default="0-3", help="one row per seed")
    m.add_argument("--psis", type=_floats, default="1,0.7,0.5,0,-0.5,-1", help="one column per psi")
    m = mode("interp", "interpolation strips between consecutive seeds")
    m.add_argument("--seeds", type=parse_seeds, default="0,1", help="strips run seeds[0]->seeds[1]->...")
    m.add_argument("--steps", type=int_at_least(2), default=8, help="images per strip, ends included")
    m.add_argument("--space", choices=["z", "w", "both"], default="w", help="'both': a Z row above a W row per pair")


def _check_out(args: argparse.Namespace) -> None:
    """The output file (or, for 'images', the folder and its seed files), before the model is loaded."""
    from pathlib import Path

    from stylegan_eval.outputs import OutputError, check_output_dir, check_output_file

    existing = "overwrite" if args.overwrite else "refuse"
    if args.mode == "images":
        out = check_output_dir(args.out, "--out")  # one probe write for the folder, not one per seed
        taken = [out / f"seed{s:04d}.png" for s in args.seeds if (out / f"seed{s:04d}.png").exists()]
        for path in taken:
            if path.is_dir() or not args.overwrite:
                check_output_file(path, "--out", existing)  # raises: a folder, or an existing file
        return
    suffix = Path(args.out).suffix.lower()
    if suffix not in IMAGE_FORMATS and not Path(args.out).is_dir():  # a folder gets check_output_file's message
        raise OutputError(f"--out {args.out}: unknown image type {suffix or '(no extension)'!r}; "
                          f"end the name in {', '.join(IMAGE_FORMATS)}")
    check_output_file(args.out, "--out", existing)


def _save(images, path: str, cols: int | None) -> None:
    """A grid in the format its file name says, written atomically."""
    from pathlib import Path

    from PIL import Image

    from stylegan_core.atomic import atomic_open
    from stylegan_core.sampling import image_grid

    grid = image_grid(images, cols)
    fmt = IMAGE_FORMATS[Path(path).suffix.lower()]
    with atomic_open(path) as f:
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(f, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))


def _finite(images, args: argparse.Namespace):
    """Refuse NaN/Inf output: it would be written as a plausible-looking black image."""
    import torch

    from stylegan_core.errors import NonFiniteError

    if not torch.isfinite(images).all():
        raise NonFiniteError(f"the generator in {args.ckpt} produced NaN or Inf pixels; nothing was written "
                             "(the checkpoint is broken or diverged: use an earlier snapshot)")
    return images


def run(args: argparse.Namespace) -> int:
    import torch

    from stylegan_core import distributed, sampling
    from stylegan_core.errors import ConfigError

    if args.mode == "interp" and len(args.seeds) < 2:
        raise ConfigError("interp needs at least two seeds, e.g. --seeds 0,1")
    _check_out(args)
    device = distributed.default_device(args.device)
    G = load_generator_option(args, device).G
    psi, cutoff = args.truncation_psi, args.truncation_cutoff
    common = dict(noise_mode=args.noise_mode, batch_size=args.batch_size, device=device)
    res = f"{G.img_resolution}x{G.img_resolution}"
    how = f"psi={psi:g} cutoff={cutoff} noise={args.noise_mode}"

    if args.mode == "images":
        from pathlib import Path

        imgs = _finite(sampling.generate_images(G, args.seeds, psi, cutoff, **common), args)
        out = Path(args.out)
        for seed, img in zip(args.seeds, imgs):
            sampling.save_image_grid(img[None], out / f"seed{seed:04d}.png", cols=1)
        print(f"wrote {len(args.seeds)} images {res} to {out}/seed*.png ({how})")
    elif args.mode == "grid":
        imgs = _finite(sampling.generate_images(G, args.seeds, psi, cutoff, **common), args)
        _save(imgs, args.out, cols=args.cols)
        print(f"wrote {args.out}: {len(args.seeds)} images {res} ({how})")
    elif args.mode == "mixing":
        ranges = args.ranges.split(",") if args.ranges else paper_ranges(len(args.row_seeds))
        fig = sampling.style_mixing_figure(G, args.row_seeds, args.col_seeds, ranges[0] if len(ranges) == 1 else ranges,
                                           psi, cutoff, **common)
        _save(_finite(fig.flat(), args), args.out, cols=len(args.col_seeds) + 1)
        spans = ", ".join(f"{r}:{a}-{b - 1}" for r, (a, b) in zip(args.row_seeds, fig.ranges))
        print(f"wrote {args.out}: style mixing, rows (seed:layers from B) {spans} of {G.num_ws} ({how})")
    elif args.mode == "truncation":
        imgs = _finite(sampling.truncation_sweep(G, args.seeds, args.psis, cutoff, **common), args)
        _save(imgs.flatten(0, 1), args.out, cols=len(args.psis))
        print(f"wrote {args.out}: truncation sweep, psi {', '.join(f'{p:g}' for p in args.psis)} (cutoff={cutoff})")
    else:
        spaces = ["z", "w"] if args.space == "both" else [args.space]
        rows = [sampling.interpolation_strip(G, a, b, args.steps, s, psi, cutoff, **common)
                for a, b in zip(args.seeds, args.seeds[1:]) for s in spaces]
        _save(_finite(torch.cat(rows), args), args.out, cols=args.steps)
        print(f"wrote {args.out}: {len(rows)} strips of {args.steps} ({'/'.join(spaces).upper()}; {how})")
    return 0

"""`stylegan-eval train`: train a preset on a folder/zip of images with the official StyleGAN
procedure (progressive growing, logistic + R1 or WGAN-GP, EMA generator); resumable."""

import argparse
import dataclasses
import signal
from pathlib import Path

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import add_device, dataset_hints, finite_float, float_at_least, int_at_least, seed_value

EPILOG = """examples:
  # the built-in dataset, then ten minutes or so of the 32x32 CPU preset
  stylegan-eval data synth --out data/synth32 --num 20000 --resolution 32 --seed 0
  stylegan-eval train --data data/synth32 --preset F-cpu32 --out runs/f32 --kimg 120

  # Ctrl-C saves a snapshot; continue (options default to the run's own, --kimg may grow)
  stylegan-eval train --out runs/f32 --resume --kimg 300

  # the paper's procedure on 8 GPUs (FFHQ: mirror augmentation, 25M images)
  torchrun --nproc_per_node 8 -m stylegan_eval.cli train --data ffhq.zip --preset F --out runs/ffhq-F --mirror

The run folder holds run.json (configuration), stats.jsonl (one line per tick), and per snapshot
snapshot-<images>.pt (G, G_ema, D, optimisers, RNG states) and snapshot-<images>.png (seeds
0..grid-1, no truncation). Evaluate with --ckpt RUN_DIR (its latest snapshot) or a snapshot file.
Interrupted runs exit with status 130 (SIGINT) or 143 (SIGTERM) after saving a snapshot.
"""

# Options that override a field of TrainingConfig: (flag, field, type, help).
_OVERRIDES = [
    ("--kimg", "total_kimg", float, "length of training in thousands of real images"),
    ("--initial-resolution", "lod_initial_resolution", int, "first resolution trained (official 8)"),
    ("--stab-kimg", "lod_training_kimg", float, "stabilisation phase per resolution, thousands of images (official 600)"),
    ("--fade-kimg", "lod_transition_kimg", float, "fade-in phase per resolution, thousands of images (official 600)"),
    ("--minibatch-repeats", "minibatch_repeats", int, "minibatches between schedule updates (official 4)"),
    ("--r1-gamma", "r1_gamma", float, "R1 penalty weight for the logistic loss (official 10; 0 = off)"),
    ("--ema-kimg", "ema_kimg", float, "half-life of the G_ema weight average, thousands of images (official 10)"),
    ("--snapshot-kimg", "snapshot_kimg", float, "snapshot (checkpoint + grid) every this many thousand images"),
    ("--tick-kimg", "tick_kimg", float, "one line of stats.jsonl every this many thousand images"),
    ("--grid-size", "grid_size", int, "images in each snapshot grid"),
]


def register(subparsers) -> None:
    from stylegan_core.schedule import LOSS_KINDS, SCHEDULES

    p = subparsers.add_parser(
        "train",
        help="train a preset on images (progressive growing, resumable)",
        description="Train a StyleGAN preset on a folder or zip of images with the official procedure: "
        "progressive growing from 8x8 with fade-in, per-resolution minibatch and learning rate, "
        "Adam(0, 0.99, 1e-8) reset per resolution, non-saturating logistic loss with R1 (or WGAN-GP), "
        "style-mixing regularisation and an EMA generator. Options left out on --resume keep the run's values.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    S = argparse.SUPPRESS
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created; never overwritten)")
    p.add_argument("--data", metavar="PATH", default=S, help="folder of PNG/JPEG images (recursive) or a .zip (required unless --resume)")
    p.add_argument("--preset", default=S, help="network preset, e.g. F-cpu32, B-cpu32, F (required unless --resume)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its latest snapshot (same configuration)")
    p.add_argument("--schedule", choices=["auto", *SCHEDULES], default=S,
                   help="base hyper-parameters: 'auto' = 'cpu' for -cpu32/-test16 presets, else 'official' "
                   "(8-GPU minibatch totals; 'official-1gpu' for one GPU); default auto")
    for flag, field, typ, text in _OVERRIDES:
        metavar = "KIMG" if typ is float and "kimg" in flag else ("N" if typ is int else "X")
        # NaN/inf and non-positive counts are refused while parsing; the schedule checks the rest.
        parse = finite_float if typ is float else int_at_least(1)
        p.add_argument(flag, dest=field, type=parse, default=S, metavar=metavar, help=f"{text}; default: from --schedule")
    p.add_argument("--minibatch", type=int_at_least(1), default=S, metavar="N", help="one minibatch size (total over processes) at every resolution")
    p.add_argument("--lrate", type=float_at_least(0, inclusive=False), default=S, metavar="LR", help="one learning rate at every resolution")
    p.add_argument("--loss", choices=LOSS_KINDS, default=S, help="default: the preset's (wgan-gp for A, else logistic-r1)")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=S, help="random horizontal flips of the reals (default off)")
    p.add_argument("--seed", type=seed_value, default=S, metavar="S", help="initial weights, latents, noise, data order (default 0)")
    p.add_argument("--attributes", metavar="FILE", default=None, help="attribute labels to validate with the images (not used by training)")
    p.add_argument("--fit", choices=["error", "resize", "center-crop"], default=S,
                   help="images not already at the preset's resolution: refuse, resize, or centre-crop and resize (default error)")
    p.add_argument("--skip-bad-images", action="store_true", help="skip (and count) unreadable images instead of stopping")
    add_device(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (stats.jsonl is still written)")
    p.set_defaults(func=run)


def _training_config(args: argparse.Namespace, preset, saved: dict | None):
    from stylegan_core.schedule import TrainingConfig, training_config

    given = {field: getattr(args, field) for _, field, _, _ in _OVERRIDES if hasattr(args, field)}
    for name in ("loss", "mirror", "seed"):
        if hasattr(args, name):
            given[name] = getattr(args, name)
    if hasattr(args, "minibatch"):
        given.update(minibatch_base=args.minibatch, minibatch_dict={})
    if hasattr(args, "lrate"):
        given.update(lrate_base=args.lrate, lrate_dict={})
    if saved is not None and not hasattr(args, "schedule"):
        return dataclasses.replace(TrainingConfig.from_dict(saved["training"]), **given)
    name = getattr(args, "schedule", "auto")
    if name == "auto":
        name = "cpu" if preset.name.endswith(("-cpu32", "-test16")) else "official"
    given.setdefault("loss", preset.loss)
    return training_config(name, **given)


def run(args: argparse.Namespace) -> int:
    from stylegan_core import distributed
    from stylegan_core.checkpoint import saved_run_config
    from stylegan_core.data import open_dataset
    from stylegan_core.errors import ConfigError
    from stylegan_core.presets import get_preset
    from stylegan_core.training import train

    from stylegan_eval.outputs import check_output_dir

    check_output_dir(args.out, "--out")
    device = distributed.default_device(args.device)
    distributed.init(device)  # before any output: only rank 0 prints
    out = Path(args.out)
    saved = saved_run_config(out) if args.resume else None
    preset_name = getattr(args, "preset", None) or (saved or {}).get("preset")
    if preset_name is None:
        raise ConfigError("--preset is required (e.g. --preset F-cpu32)")
    preset = get_preset(preset_name)
    config = _training_config(args, preset, saved)
    saved_data = (saved or {}).get("data", {})
    data = getattr(args, "data", None) or saved_data.get("path")
    if data is None:
        raise ConfigError("--data is required: a folder of images or a .zip (e.g. from `stylegan-eval data synth`)")
    fit = getattr(args, "fit", None) or saved_data.get("fit", "error")
    res = preset.generator.synthesis.resolution
    main = distributed.is_main()
    with dataset_hints(skip="--skip-bad-images", fit="--fit", resolution=None):  # the preset fixes the resolution
        ds = open_dataset(data, resolution=res, fit=fit, attributes=args.attributes,
                          on_bad_image="skip" if args.skip_bad_images else "error", progress=main and not args.no_progress)
    data_info = {"path": str(Path(data).resolve()), "fingerprint": ds.fingerprint(), "num_images": len(ds),
                 "resolution": ds.resolution, "fit": fit}
    if main:
        print(f"data: {ds.describe()}")
        print(f"training {preset.name} ({config.loss}, schedule {config.schedule}) for {config.total_kimg:g} kimg "
              f"from {min(config.lod_initial_resolution, res)}x{min(config.lod_initial_resolution, res)} to {res}x{res}; "
              f"run folder {out}")
    result = train(out, ds, preset, config, device=device, resume=args.resume,
                   progress=not args.no_progress, data_info=data_info)
    if not main:
        return 0 if result.status == "finished" else 128 + signal.SIGTERM
    if result.status == "finished":
        print(f"finished at {result.nimg / 1000:g} kimg; snapshot {result.snapshot}, grid {result.snapshot.with_suffix('.png')}")
        return 0
    print(f"interrupted ({result.signal or 'by another process'}) at {result.nimg / 1000:g} kimg; snapshot saved: "
          f"{result.snapshot}; continue with: stylegan-eval train --out {out} --resume")
    return 128 + int(getattr(signal, result.signal or "SIGTERM"))

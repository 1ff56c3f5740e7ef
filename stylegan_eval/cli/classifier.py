"""`stylegan-eval classifier`: train the binary attribute classifiers that linear separability
(`stylegan-eval ls`) labels generated images with, and inspect a saved one."""

import argparse
import json
from pathlib import Path

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import (
    add_device, add_overwrite, float_at_least, int_at_least, seed_value,
)

EPILOG = """examples:
  # all attributes of the built-in synthetic dataset, at 32x32
  stylegan-eval data synth --out data/synth32 --num 20000 --resolution 32
  stylegan-eval classifier train --data data/synth32 --out classifiers/synth32.pt --resolution 32

  # chosen CelebA attributes at 64x64 from 128x128 images (area-downsampled), on a GPU
  stylegan-eval classifier train --data celeba128/ --attrs list_attr_celeba.txt \\
      --attributes Smiling,Eyeglasses,Wearing_Hat --resolution 64 --kimg 2000 --out clf64.pt --device cuda

  stylegan-eval classifier info classifiers/synth32.pt
"""


def register(subparsers) -> None:
    from stylegan_eval.classifier import TrainConfig

    d = TrainConfig()
    p = subparsers.add_parser(
        "classifier",
        help="train or inspect attribute classifiers for linear separability",
        description="Binary attribute classifiers (the discriminator architecture with one logit per attribute "
        "and no minibatch-stddev) trained on labelled real images, as the paper's CelebA-HQ classifiers.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)

    t = sub.add_parser(
        "train",
        help="train on a labelled image folder and report held-out accuracy",
        description="Train one network with a logit per attribute on a seeded split of the images; prints the "
        "per-attribute held-out accuracy (next to always guessing the majority class) and saves a checkpoint.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    t.add_argument("--data", required=True, metavar="DIR", help="folder (or .zip) of images")
    t.add_argument("--attrs", metavar="FILE", help="CelebA list_attr-style file or CSV (default: DIR/list_attr.txt)")
    t.add_argument("--attributes", metavar="A,B,...", help="comma-separated attribute names (default: all in the file)")
    t.add_argument("--out", required=True, metavar="PATH", help="classifier checkpoint to write")
    add_overwrite(t, "classifier files")
    t.add_argument("--resolution", type=int_at_least(1), default=32, help="classifier input side; images are area-downsampled to it")
    t.add_argument("--kimg", type=float_at_least(0, inclusive=False), default=d.kimg, help="thousands of training images shown")
    t.add_argument("--batch", type=int_at_least(1), default=d.batch_size, help="minibatch size")
    t.add_argument("--lr", type=float_at_least(0, inclusive=False), default=d.lr, help="Adam learning rate")
    t.add_argument("--holdout", type=float_at_least(0, inclusive=False), default=d.holdout, help="fraction of images held out for the accuracy report")
    t.add_argument("--mirror", action="store_true", help="random horizontal flips (only if no attribute is left/right specific)")
    t.add_argument("--fmap-base", type=int_at_least(1), default=512, help="feature maps per stage: min(fmap_base / 2**stage, fmap_max)")
    t.add_argument("--fmap-max", type=int_at_least(1), default=64, help="largest number of feature maps")
    t.add_argument("--seed", type=seed_value, default=0, help="held-out split, initial weights and minibatch order")
    add_device(t)
    t.add_argument("--json", action="store_true", help="print the training report as JSON")
    t.set_defaults(func=run_train)

    i = sub.add_parser("info", help="print a saved classifier's attributes, resolution and report",
                       description="Attributes, resolution, architecture and training report of a classifier file.",
                       formatter_class=HelpFormatter)
    i.add_argument("path", metavar="PATH", help="classifier checkpoint")
    i.add_argument("--json", action="store_true", help="print as JSON")
    i.set_defaults(func=run_info)


def _format_report(report) -> str:
    width = max(9, *(len(a) for a in report.attributes))
    lines = [f"{'attribute':<{width}}  held-out  majority  train"]
    for a, h, m, tr in zip(report.attributes, report.heldout_accuracy, report.majority_baseline, report.train_accuracy):
        lines.append(f"{a:<{width}}  {h:8.3f}  {m:8.3f}  {tr:5.3f}")
    lines.append(f"({report.num_train} training / {report.num_heldout} held-out images, {report.images_shown} shown)")
    return "\n".join(lines)


def run_train(args: argparse.Namespace) -> int:
    from stylegan_core import distributed
    from stylegan_core.data import open_dataset
    from stylegan_core.errors import ConfigError
    from stylegan_eval.classifier import TrainConfig, classifier_config, save_classifier, train_classifier

    from stylegan_eval.cli.common import dataset_hints
    from stylegan_eval.outputs import check_output_file

    check_output_file(args.out, "--out", "overwrite" if args.overwrite else "refuse")
    attrs = Path(args.attrs) if args.attrs else Path(args.data) / "list_attr.txt"
    if not attrs.is_file():
        raise ConfigError(f"attribute file {attrs} not found; pass --attrs FILE (CelebA list_attr format or CSV)")
    names = [n.strip() for n in args.attributes.split(",") if n.strip()] if args.attributes else None
    if names is not None and not names:
        raise ConfigError("--attributes is empty; give comma-separated names, e.g. Smiling,Eyeglasses")
    with dataset_hints(fit=None, resolution=None, skip=None):
        ds = open_dataset(args.data, attributes=attrs, attribute_names=names)
    train = TrainConfig(kimg=args.kimg, batch_size=args.batch, lr=args.lr, holdout=args.holdout,
                        mirror=args.mirror, seed=args.seed)
    config = classifier_config(ds.attribute_names, args.resolution, ds.num_channels, args.fmap_base, args.fmap_max)
    print(ds.describe())
    model, report = train_classifier(ds.load_all(), ds.attributes, config, train,
                                     device=distributed.default_device(args.device))
    save_classifier(args.out, model, report)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(_format_report(report))
    print(f"saved {args.out}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from stylegan_eval.classifier import load_classifier, TrainReport

    model = load_classifier(args.path)
    report = model.report
    info = {"path": args.path, "sha256": model.sha256, "config": model.config.to_dict(), "report": report}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.path}: {len(model.attribute_names)} attributes at {model.resolution}x{model.resolution}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    if report:
        print(_format_report(TrainReport(**{k: tuple(v) if isinstance(v, list) else v for k, v in report.items()})))
    else:
        print("attributes: " + ", ".join(model.attribute_names))
    return 0

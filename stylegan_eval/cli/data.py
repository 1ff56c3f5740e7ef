"""`stylegan-eval data`: make the built-in synthetic dataset, or check a dataset before training."""

import argparse
import time

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import dataset_hints, int_at_least, seed_value

EPILOG = """examples:
  # 20,000 labelled 32x32 images (about half a minute on 2 cores), then train on them
  stylegan-eval data synth --out data/synth32 --num 20000 --resolution 32 --seed 0
  stylegan-eval data info data/synth32 --attributes data/synth32/list_attr.txt

  # check your own images: 640x480 photos cropped to 256x256, labels from a CSV
  stylegan-eval data info photos/ --fit center-crop --resolution 256 --attributes labels.csv
"""

SYNTH_EPILOG = """The subject is a cartoon head; ten binary attributes (Eyeglasses, Smiling, Wearing_Hat,
Dark_Hair, Long_Hair, Beard, Pale_Skin, Turned_Head, Large_Face, Light_Background) are drawn
independently with unequal probabilities and written as exact labels:
  OUT/images/000000.png ...   OUT/list_attr.txt (CelebA format)   OUT/attributes.csv   OUT/dataset.json
The same --seed gives byte-identical files. OUT is written to a hidden temporary folder and renamed
into place when complete.

example:
  stylegan-eval data synth --out data/synth32 --num 20000 --resolution 32 --seed 0
"""

INFO_EPILOG = """Scans every image (decoding it), then prints the count, resolution, conversions,
skipped files, attributes with their positive rates, and the content fingerprint.

example:
  stylegan-eval data info data/synth32 --attributes data/synth32/list_attr.txt
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "data",
        help="make the built-in synthetic dataset; check a dataset",
        description="Make the built-in labelled synthetic dataset, or check that a folder/zip of images "
        "(and its attribute file) can be used for training and the metrics.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)

    s = sub.add_parser(
        "synth",
        help="draw the labelled synthetic dataset",
        description="Draw a procedural face-like dataset with exact binary attribute labels (no downloads).",
        epilog=SYNTH_EPILOG,
        formatter_class=HelpFormatter,
    )
    s.add_argument("--out", required=True, metavar="DIR", help="folder to create (must be absent or empty)")
    s.add_argument("--num", type=int_at_least(1), default=20000, help="number of images")
    s.add_argument("--resolution", type=int, default=32, help="image side in pixels (power of two, 8..1024)")
    s.add_argument("--seed", type=seed_value, default=0, help="image i depends only on (seed, i)")
    s.add_argument("--overwrite", action="store_true", help="replace an earlier synthetic dataset in --out (never other folders)")
    s.set_defaults(func=run)

    i = sub.add_parser(
        "info",
        help="scan a folder/zip of images and report what training would see",
        description="Open a dataset exactly as training does and summarise it.",
        epilog=INFO_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_dataset_options(i)
    i.set_defaults(func=run)


def add_dataset_options(p: argparse.ArgumentParser) -> None:
    """The dataset's options, shared with commands that read a dataset (e.g. train)."""
    p.add_argument("data", metavar="PATH", help="folder of PNG/JPEG images (searched recursively) or a .zip")
    p.add_argument("--resolution", type=int_at_least(4), default=None, help="image side; default: the images' own")
    p.add_argument(
        "--fit",
        choices=["error", "resize", "center-crop"],
        default="error",
        help="images that are not square power-of-two of --resolution: refuse, resize (ignores aspect), "
        "or crop the centre square and resize",
    )
    p.add_argument("--attributes", metavar="FILE", help="labels: a CelebA list_attr-style file or a .csv")
    p.add_argument("--skip-bad-images", action="store_true", help="skip (and count) unreadable images instead of stopping")


def open_from_args(args: argparse.Namespace):
    from stylegan_core.data import open_dataset
    from stylegan_core.errors import ConfigError

    if args.fit != "error" and args.resolution is None:
        raise ConfigError(f"--fit {args.fit} needs --resolution N (the side to resize or crop to)")
    with dataset_hints(skip="--skip-bad-images", fit="--fit", resolution="--resolution"):
        return open_dataset(
            args.data,
            resolution=args.resolution,
            fit=args.fit,
            attributes=args.attributes,
            on_bad_image="skip" if args.skip_bad_images else "error",
            progress=True,
        )


def run(args: argparse.Namespace) -> int:
    return run_synth(args) if args.action == "synth" else run_info(args)


def run_synth(args: argparse.Namespace) -> int:
    from stylegan_core.synthetic import synthesize_dataset
    from stylegan_eval.outputs import check_output_dir

    check_output_dir(args.out, "--out")
    t0 = time.perf_counter()
    out = synthesize_dataset(args.out, args.num, args.resolution, args.seed, overwrite=args.overwrite, progress=True)
    print(f"wrote {args.num} images {args.resolution}x{args.resolution} to {out} in {time.perf_counter() - t0:.1f} s")
    print(f"labels: {out / 'list_attr.txt'} (CelebA format), {out / 'attributes.csv'}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    ds = open_from_args(args)
    print(ds.describe())
    if ds.skipped:
        shown = ", ".join(ds.skipped_names[:5]) + (" ..." if ds.skipped > 5 else "")
        print(f"skipped: {shown}")
    if ds.attributes is not None:
        rates = ((ds.attributes == 1).float().mean(0) * 100).tolist()
        for name, r in zip(ds.attribute_names, rates):
            print(f"  {name:<24s} {r:5.1f}% positive")
    print(f"fingerprint: {ds.fingerprint()}")
    return 0

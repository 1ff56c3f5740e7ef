"""`stylegan-eval convert IN.pkl OUT.pt`: an official StyleGAN (v1) TF pickle to a project
checkpoint (state dicts + JSON config, loadable with weights_only); the pickle is read as data."""

import argparse

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import add_overwrite

EPILOG = """examples:
  stylegan-eval convert karras2019stylegan-ffhq-1024x1024.pkl ffhq-1024.pt
  stylegan-eval ppl --ckpt ffhq-1024.pt --space w --sampling end
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="official StyleGAN .pkl -> project checkpoint",
        description="Read an official StyleGAN (v1) TensorFlow pickle without TensorFlow and without running "
        "its embedded code, and write a project checkpoint: G_ema = Gs (the averaged generator), G and D "
        "when present, the configuration and the pickle's truncation defaults as JSON.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("input", metavar="IN.pkl", help="official StyleGAN pickle")
    p.add_argument("output", metavar="OUT.pt", help="checkpoint to write (refused if it exists)")
    add_overwrite(p, "OUT.pt")
    # --force: this command's earlier name for --overwrite, kept so scripts keep working.
    p.add_argument("--force", dest="overwrite", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stylegan_core.errors import CheckpointError
    from stylegan_core.formats.official_tf import is_official_pickle
    from stylegan_core.formats.official_tf_networks import convert_official
    from stylegan_eval.outputs import check_output_file

    src, dst = Path(args.input), Path(args.output)
    if src.is_dir():
        raise CheckpointError(f"{src}: is a folder; give the official .pkl file")
    if not src.is_file():
        raise CheckpointError(f"{src}: no such file")
    if not is_official_pickle(src):
        raise CheckpointError(f"{src}: not an official StyleGAN (TensorFlow) pickle; `stylegan-eval inspect` says what it is")
    check_output_file(dst, "OUT.pt", existing="overwrite" if args.overwrite else "refuse")  # before the (long) read
    summary = convert_official(src, dst)
    print(f"wrote {dst}: {summary}")
    return 0

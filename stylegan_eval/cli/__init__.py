"""`stylegan-eval`: one command line with a sub-command per capability.

Each sub-command lives in its own module in this package with two functions:
`register(subparsers)` adds its parser (with `func=run` as a default) and `run(args) -> int`.
The CLI is thin: parse, build the library's config, call the library, render. Library errors
that a user can fix (`stylegan_core.errors.UserError`) become one line on stderr and exit 2.
"""

import argparse
import importlib
import sys

from stylegan_core.errors import UserError

# Sub-command modules, in the order `--help` lists them.
COMMANDS = ("demo", "data", "train", "generate", "ppl", "classifier", "ls", "disentanglement", "fid", "report")

EPILOG = """examples:
  stylegan-eval demo                      # everything end to end in ~20 min on a 2-core CPU
  stylegan-eval data synth --out data/synth32 --num 20000 --resolution 32
  stylegan-eval train --data data/synth32/images --preset F-cpu32 --out runs/F-cpu32
  stylegan-eval ppl --ckpt runs/F-cpu32 --space w --sampling end --results results.jsonl
  stylegan-eval report results.jsonl runs/F-cpu32 --out reports/compare

Run `stylegan-eval COMMAND --help` for a command's options and more examples.
"""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps example blocks as written."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylegan-eval",
        description="Train and sample StyleGAN; measure PPL, linear separability and FID; compare models.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in COMMANDS:
        importlib.import_module(f"stylegan_eval.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"stylegan-eval {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stylegan-eval {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

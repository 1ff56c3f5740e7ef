"""`stylegan-eval demo`: the README's main command. Synthetic data, a style-based (F) and a
traditional (B) generator trained on it, attribute classifiers, PPL / separability / FID for both,
and a comparison report, within a time budget."""

import argparse

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import add_device, float_at_least, seed_value

EXAMPLE = """examples:
  stylegan-eval demo                         # 20 minutes on a 2-core CPU, report in demo-out/report/
  stylegan-eval demo --out runs/demo --minutes 60 --overwrite
  stylegan-eval demo --device cuda --minutes 30
  stylegan-eval demo --tiny --out demo-smoke    # a one-minute check that everything runs
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="end-to-end comparison of configurations F and B within a time budget",
        description="Builds the synthetic dataset, trains a style-based generator (F-cpu32) and a traditional "
        "baseline (B-cpu32), trains the attribute classifiers, measures PPL (Z/W, full/end), separability (Z/W) "
        "and FID for both, and writes a comparison report saying whether the paper's findings held. Offline, "
        "absent pretrained weights are replaced by labelled substitutes (announced in the console and report).",
        epilog=EXAMPLE,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--out", default="demo-out", metavar="DIR", help="output folder (data, runs, results, report)")
    p.add_argument("--minutes", type=float_at_least(0, inclusive=False), default=20.0, help="wall-clock budget; more minutes = longer training, "
                   "more data and more metric samples")
    add_device(p)
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    p.add_argument("--seed", type=seed_value, default=0, help="dataset, initialisation and metric sampling seed")
    p.add_argument("--tiny", action="store_true", help="smoke test: 16x16 presets, 200 images, a handful of "
                   "samples per metric (about a minute; the numbers mean nothing)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (stage lines are still printed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from stylegan_eval.demo import DemoConfig, run_demo
    from stylegan_eval.outputs import check_output_dir

    check_output_dir(args.out, "--out")
    cfg = DemoConfig.tiny() if args.tiny else DemoConfig.for_minutes(args.minutes)
    cfg = dataclasses.replace(cfg, seed=args.seed)
    run_demo(args.out, cfg, device=args.device, overwrite=args.overwrite, log=lambda s: print(s, flush=True),
             progress=not args.no_progress)
    return 0

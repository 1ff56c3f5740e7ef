"""`stylegan-eval disentanglement`: DCI, MIG and SAP of a checkpoint's Z, W and StyleSpace S, with
the attribute classifiers' labels as the factors (disentanglement_lib's definitions)."""

import argparse
import json

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import (
    add_device, add_label, add_model_source, add_output, add_seed, check_results, int_at_least, load_generator_option,
)

EPILOG = """examples:
  # all three scores in all three spaces (15,000 samples: 10,000 to fit, 5,000 to test)
  stylegan-eval disentanglement --ckpt runs/F-cpu32 --classifier clf.pt --jobs 2 --results results.jsonl

  # StyleSpace at 1024 px has 5088 dimensions: the lasso fits in seconds where boosted trees take hours
  stylegan-eval disentanglement --ckpt runs/F --classifier clf256.pt --spaces s --dci-regressor lasso --jobs 16

  # the same scores as named protocols of `measure`, sharing the images with separability
  stylegan-eval measure --ckpt runs/F-cpu32 --classifier clf.pt --metrics ls,dci,mig,sap --spaces z,w,s

  # a quick look at MIG and SAP only
  stylegan-eval disentanglement --ckpt runs/F-cpu32 --classifier clf.pt --metrics mig,sap --num-samples 2000
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "disentanglement",
        help="DCI, MIG and SAP of the Z, W and StyleSpace S latents",
        description="Generate images with their z, w and StyleSpace s (the concatenated AdaIN style scales "
        "of every layer), label them with the attribute classifiers (present = p >= 0.5), and score how "
        "each space encodes the attributes: DCI (Eastwood and Williams 2018: disentanglement, completeness, "
        "informativeness from per-attribute predictors), MIG (Chen et al. 2018: mutual information gap over "
        "20-bin codes) and SAP (Kumar et al. 2018: gap between the two best 1-D linear SVMs). Higher is more "
        "disentangled. Records '<score>_<space>', e.g. 'dci_s', the same as `measure --metrics dci,mig,sap` "
        "(or dci_lasso); sample i depends only on (seed, i).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_model_source(p)
    p.add_argument("--classifier", required=True, metavar="PATH", help="classifier file from `stylegan-eval classifier train`, or a folder of the paper's official "
                   "celebahq-classifier-NN-NAME.pkl files")
    p.add_argument("--spaces", default="z,w,s", help="latent spaces: any of z, w, s (StyleSpace), comma-separated")
    p.add_argument("--metrics", default="dci,mig,sap", help="scores: any of dci, mig, sap, comma-separated")
    p.add_argument("--num-samples", type=int_at_least(4), default=None,
                   help="generated images for every score; default each protocol's: DCI and SAP 15,000 (split 2:1 into "
                   "train and test), MIG 10,000 (the first of the same samples)")
    p.add_argument("--dci-regressor", choices=("gbt", "lasso"), default="gbt",
                   help="DCI predictors: gradient-boosted trees (disentanglement_lib) or L1 logistic regression")
    p.add_argument("--batch", type=int_at_least(1), default=64, help="images per batch and process (does not change the value)")
    p.add_argument("--jobs", type=int_at_least(1), default=1, help="predictor fits at once on rank 0 (processes)")
    add_label(p)
    add_seed(p)
    add_device(p)
    add_output(p)
    p.set_defaults(func=run)


def _names(text: str, allowed: tuple[str, ...], flag: str) -> tuple:
    from stylegan_core.errors import ConfigError

    names = tuple(s.strip() for s in text.split(",") if s.strip())
    if not names or not set(names) <= set(allowed) or len(set(names)) != len(names):
        raise ConfigError(f"{flag} must be distinct names from {', '.join(allowed)} separated by commas; got {text!r}")
    return names


def summary_table(records) -> str:
    """One line per space: DCI disentanglement, completeness, informativeness (test), MIG, SAP."""
    cells: dict[str, dict[str, str]] = {}
    for r in records:
        row = cells.setdefault(r.params["space"], {})
        if r.params["score"] == "dci":
            row.update(D=f"{r.value:.3f}", C=f"{r.extras['completeness']:.3f}", I=f"{r.extras['informativeness_test']:.3f}")
        else:
            row[r.params["score"].upper()] = f"{r.value:.3f}"
    cols = ["D", "C", "I", "MIG", "SAP"]
    titles = {"D": "DCI-D", "C": "DCI-C", "I": "DCI-I", "MIG": "MIG", "SAP": "SAP"}
    dims = {r.params["space"]: r.extras["dims"] for r in records}
    lines = [f"{'space':<5} {'dims':>5}" + "".join(f"  {titles[c]:>6}" for c in cols)]
    for space, row in cells.items():
        lines.append(f"{space:<5} {dims[space]:>5}" + "".join(f"  {row.get(c, '-'):>6}" for c in cols))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from stylegan_core import distributed
    from stylegan_eval.cli.ls import load_classifier_option
    from stylegan_eval.metrics.disentanglement import SCORES
    from stylegan_eval.metrics.latent_factors import SPACES, compute_disentanglement
    from stylegan_eval.records import append_jsonl

    spaces = _names(args.spaces, SPACES, "--spaces")
    scores = _names(args.metrics, SCORES, "--metrics")
    check_results(args)
    device = distributed.default_device(args.device)
    distributed.init(device)
    gen = load_generator_option(args, device)
    classifier = load_classifier_option([args.classifier], device, args.batch)
    records = compute_disentanglement(
        gen.G,
        classifier,
        spaces=spaces,
        scores=scores,
        num_samples=args.num_samples,
        dci_regressor=args.dci_regressor,
        batch_size=args.batch,
        seed=args.seed,
        device=device,
        n_jobs=args.jobs,
        model=gen.label,
        checkpoint=gen.checkpoint,
        preset=gen.preset,
    )
    if not distributed.is_main():
        return 0
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2, sort_keys=True))
    else:
        print(summary_table(records))
        r0 = records[0]
        print(f"{gen.label}: {max(r.num_samples for r in records)} samples, {len(r0.params['attributes'])} attributes; "
              f"higher is more disentangled  [{sum(r.wall_time_s for r in records):.1f} s]")
        dropped = sorted({n for r in records for n in r.extras["excluded_factors"]})
        if dropped:
            print(f"note: attributes with a single class were left out: {', '.join(dropped)}")
    if args.results:
        for r in records:
            append_jsonl(args.results, r)
    return 0

"""`stylegan-eval ls`: linear separability of a checkpoint's Z and W spaces (paper Tables 3-4),
as NVlabs/stylegan's metric computes it, with attribute classifiers from `classifier train`."""

import argparse
import json

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import (
    add_device, add_label, add_model_source, add_output, add_seed, check_results, int_at_least, load_generator_option,
)

EPILOG = """examples:
  # the paper's protocol: 200,000 images, the 100,000 most confident kept per attribute
  stylegan-eval ls --ckpt runs/F-cpu32 --classifier classifiers/synth32.pt --jobs 2

  # a quick look, appended to a results file for `stylegan-eval report`
  stylegan-eval ls --ckpt runs/F-cpu32/snapshot-0000100000.pt --classifier clf.pt --num-samples 10000 \\
      --results results.jsonl

  # the paper's 40 CelebA-HQ classifiers (a folder of the official .pkl files) on an official model
  stylegan-eval ls --ckpt karras2019stylegan-ffhq-1024x1024.pkl --classifier celebahq-classifiers/ --jobs 16

  # several GPUs share sampling and classification (the value does not depend on their number)
  torchrun --nproc_per_node 4 -m stylegan_eval.cli ls --ckpt runs/F --classifier clf256.pt --jobs 16
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ls",
        help="linear separability of the Z and W spaces",
        description="Generate images with their z and w, label them with the attribute classifiers "
        "(p = softmax([logit, -logit])), keep the most confident samples per attribute, fit "
        "sklearn's LinearSVC() on z and on w, and report 2 ** sum of the conditional entropies H(Y|X) "
        "in bits (lower = more separable). Records 'ls_z' and 'ls_w'; sample i depends only on (seed, i).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_model_source(p)
    p.add_argument("--classifier", required=True, nargs="+", metavar="PATH",
                   help="classifier file from `stylegan-eval classifier train`, or the paper's official "
                   "classifiers: a folder of celebahq-classifier-NN-NAME.pkl files, or such files")
    p.add_argument("--num-samples", type=int_at_least(1), default=200_000, help="generated images (the paper: 200,000)")
    p.add_argument("--num-keep", type=int_at_least(1), default=None, help="most confident samples kept per attribute; default: half")
    p.add_argument("--batch", type=int_at_least(1), default=64, help="images per batch and process (does not change the value)")
    p.add_argument("--jobs", type=int_at_least(1), default=1, help="SVM fits run at once on rank 0 (threads; each adds ~0.7 GB at the paper's 100k x 512)")
    p.add_argument("--spaces", default="z,w", help="latent spaces to measure: z, w or z,w")
    add_label(p)
    add_seed(p)
    add_device(p)
    add_output(p)
    p.set_defaults(func=run)


def _table(records) -> str:
    """Per attribute: share of kept samples labelled present, then H(Y|X) and SVM accuracy per space."""
    names = records[0].extras["attributes"]
    keep = records[0].extras["num_keep"]
    width = max(9, *(len(n) for n in names))
    head = f"{'attribute':<{width}}  present" + "".join(
        f"  {'H(' + r.params['space'] + ')':>6}  {'acc(' + r.params['space'] + ')':>6}" for r in records
    )
    lines = [head]
    for a, n in enumerate(names):
        row = f"{n:<{width}}  {records[0].extras['num_present'][a] / keep:7.3f}"
        for r in records:
            row += f"  {r.extras['entropies'][a]:6.3f}  {r.extras['accuracies'][a]:6.3f}"
        flags = sorted({f"{r.params['space']}: {r.extras['statuses'][a]}" for r in records if r.extras["statuses"][a] != "ok"})
        lines.append(row + (f"  [{'; '.join(flags)}]" if flags else ""))
    return "\n".join(lines)


def _load_classifier(paths: list[str], device):
    """One project classifier file, or official classifier pickles (files and/or folders)."""
    from pathlib import Path

    from stylegan_core.formats.official_tf import is_official_pickle
    from stylegan_eval.classifier import load_classifier
    from stylegan_eval.official_classifiers import load_official_classifiers

    if len(paths) == 1 and Path(paths[0]).is_file() and not is_official_pickle(paths[0]):
        return load_classifier(paths[0], device=device)
    return load_official_classifiers(paths, device=device)


def load_classifier_option(paths: list[str], device, batch: int):
    """The classifier of --classifier (a project file, or official pickles), refused when --batch
    would split its minibatch-stddev groups (the value would then depend on the batch size)."""
    from stylegan_core.errors import ConfigError

    classifier = _load_classifier(paths, device)
    group = getattr(classifier, "group_size", 1)
    if group > 1 and batch % group:
        raise ConfigError(f"--batch {batch}: the classifiers' minibatch-stddev groups hold {group} samples; "
                          f"use a multiple of {group} so the value does not depend on the batch size")
    return classifier


def run(args: argparse.Namespace) -> int:
    from stylegan_core import distributed
    from stylegan_core.errors import ConfigError
    from stylegan_eval.records import append_jsonl
    from stylegan_eval.metrics.separability import compute_separability

    spaces = tuple(s.strip() for s in args.spaces.split(",") if s.strip())
    if not spaces or not set(spaces) <= {"z", "w"} or len(set(spaces)) != len(spaces):
        raise ConfigError(f"--spaces must be z, w or z,w; got {args.spaces!r}")
    check_results(args)
    device = distributed.default_device(args.device)
    distributed.init(device)
    gen = load_generator_option(args, device)
    classifier = load_classifier_option(args.classifier, device, args.batch)
    records = compute_separability(
        gen.G,
        classifier,
        num_samples=args.num_samples,
        num_keep=args.num_keep,
        batch_size=args.batch,
        seed=args.seed,
        device=device,
        spaces=spaces,
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
        print(_table(records))
        scores = "  ".join(f"{r.metric} {r.value:.4f}" for r in records)
        r0 = records[0]
        print(f"{scores}  {gen.label}: {r0.num_samples} samples, {r0.extras['num_keep']} kept per attribute, "
              f"{len(r0.extras['attributes'])} attributes  [{r0.wall_time_s:.1f} s]")
        dim = max(gen.G.z_dim, gen.G.w_dim)
        if r0.extras["num_keep"] < 10 * dim:
            print(f"note: {r0.extras['num_keep']} kept samples in {dim} dimensions: a linear SVM can fit almost any "
                  "labelling of so few points, which biases the score towards 1 (the paper keeps 100,000 in 512)")
        flagged = sorted({n for r in records for n in r.extras["flagged"]})
        if flagged:
            print(f"note: SVM fits flagged (not converged or one class only) for {', '.join(flagged)}")
        for r in records:
            if r.extras.get("all_single_class"):
                print(f"WARNING: {r.metric} {r.value:g} is meaningless: for every attribute the kept samples all got "
                      "one label, so there was nothing to separate (flagged in the record and the report)")
    if args.results:
        for r in records:
            append_jsonl(args.results, r)
    return 0

"""`stylegan-eval measure`: several named protocols (fid50k, kid50k, pr50k3, ppl_wend, ls, ...) on
one checkpoint in one process, each generated image made once for all metrics that share it."""

import argparse
import json

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import (
    add_device, add_label, add_model_source, add_seed, add_substitute, check_results, int_at_least, load_generator_option,
)

EPILOG = """examples:
  # the paper's FID next to KID and precision/recall, PPL in W and separability, in one process
  stylegan-eval measure --ckpt runs/F-cpu32 --metrics fid50k,kid50k,pr50k3,ppl_wend,ls \\
      --data data/synth32/images --classifier classifiers/synth32.pt --results results.jsonl

  # a quick look: every protocol on 2,000 generated samples (recorded as scaled down)
  stylegan-eval measure --ckpt runs/F-cpu32 --metrics fid50k,kid50k --data data/synth32/images --num-samples 2000

  # separability and DCI/MIG/SAP in Z, W and StyleSpace from one pass (each image made and classified once)
  stylegan-eval measure --ckpt runs/F-cpu32 --metrics ppl_wend,ls,dci,mig,sap --spaces z,w,s \\
      --classifier classifiers/synth32.pt --jobs 2 --results results.jsonl

  # several GPUs share the samples (the values do not depend on their number)
  torchrun --nproc_per_node 4 -m stylegan_eval.cli measure --ckpt runs/F/snapshot.pt --metrics fid50k,kid50k --data d/

protocols: {protocols}
"""


def register(subparsers) -> None:
    from stylegan_eval.fid_cache import default_cache_dir
    from stylegan_eval.metrics.registry import PROTOCOLS

    p = subparsers.add_parser(
        "measure",
        help="several metric protocols at once (fid50k, kid50k, pr50k3, ppl_*, ls, dci, mig, sap)",
        description="Measure named protocols on one model. FID, KID, precision/recall, separability and "
        "DCI/MIG/SAP share one pass over the generated images (FID and KID share the Inception features, ls "
        "and dci/mig/sap the classifier's labels and the latents); PPL measures its own image pairs. One record "
        "per metric (pr gives precision and recall, ls and dci/mig/sap one per latent space). "
        "Sample i depends only on (seed, i).",
        epilog=EPILOG.format(protocols=", ".join(PROTOCOLS)),
        formatter_class=HelpFormatter,
    )
    add_model_source(p)
    p.add_argument("--metrics", required=True, metavar="LIST", help="comma-separated protocol names, e.g. fid50k,kid50k,ppl_wend,ls")
    p.add_argument("--data", metavar="DIR", help="reference dataset (folder or .zip) for fid/kid/pr")
    p.add_argument("--classifier", metavar="PATH",
                   help="attribute classifier file for ls, dci, mig, sap (`stylegan-eval classifier train`)")
    p.add_argument("--spaces", metavar="LIST", default=None,
                   help="latent spaces of ls (z, w) and dci/mig/sap (z, w, s), comma-separated; default each protocol's")
    p.add_argument("--num-samples", type=int_at_least(2), default=None,
                   help="generated samples for every protocol instead of its own count (recorded); None: the protocol's")
    p.add_argument("--no-crop", action="store_true",
                   help="PPL on the whole image instead of the face crop (generators below 32x32; recorded as crop=false)")
    p.add_argument("--jobs", type=int_at_least(1), default=1,
                   help="ls / dci / mig / sap fits at once on rank 0 (does not change the values)")
    p.add_argument("--batch", type=int_at_least(1), default=32, help="images per batch and process (does not change the values)")
    p.add_argument("--fit", choices=("error", "resize", "center-crop"), default="error",
                   help="dataset images of another size than the generator's: refuse, resize, or crop and resize")
    p.add_argument("--cache-dir", default=str(default_cache_dir()), metavar="DIR", help="dataset statistics (or $STYLEGAN_EVAL_CACHE)")
    p.add_argument("--no-cache", action="store_true", help="recount the dataset statistics (and refresh the cache)")
    add_seed(p)
    add_device(p)
    add_label(p)
    add_substitute(p)
    p.add_argument("--json", action="store_true", help="print the result records as a JSON list")
    p.add_argument("--results", metavar="FILE", help="append each result record as one JSON line to FILE")
    p.set_defaults(func=run)


def summary(record) -> str:
    """One line per record."""
    net = record.feature_network
    what = "" if net is None else (f"{net.name}, SUBSTITUTE {net.weights}" if net.substitute else net.name)
    extra = ""
    if record.metric.startswith("kid"):
        extra = f" +- {record.extras['std']:.6f}"
    elif record.metric.startswith("dci_"):
        extra = f" (completeness {record.extras['completeness']:.4g}, test accuracy {record.extras['informativeness_test']:.4g})"
    scaled = record.params.get("protocol_num_samples")
    n = f"{record.num_samples} samples" + (f" (protocol: {scaled})" if scaled else "")
    return f"{record.metric} {record.value:.6g}{extra}  {record.model}: {n}  [{what}; {record.wall_time_s:.1f} s]"


def run(args: argparse.Namespace) -> int:
    import sys

    from stylegan_core import distributed
    from stylegan_eval.metrics.measure import MeasureInputs, measure
    from stylegan_eval.metrics.options import MetricOptions
    from stylegan_eval.metrics.registry import get_protocols
    from stylegan_eval.provenance import Provenance
    from stylegan_eval.records import append_jsonl

    protocols = get_protocols(args.metrics, args.num_samples)
    spaces = None if args.spaces is None else tuple(s.strip() for s in args.spaces.split(",") if s.strip())
    protocols = [p.with_spaces(spaces).with_jobs(args.jobs) for p in protocols]
    if args.no_crop:
        protocols = [p.without_crop() if p.kind == "ppl" else p for p in protocols]
    check_results(args)
    device = distributed.default_device(args.device)
    distributed.init(device)
    gen = load_generator_option(args, device)
    classifier = None
    if args.classifier and any(p.kind in ("ls", "disentanglement") for p in protocols):
        from stylegan_eval.cli.ls import load_classifier_option

        classifier = load_classifier_option([args.classifier], device, args.batch)
    options = MetricOptions(G=gen.G, device=device, seed=args.seed, batch_size=args.batch, cache_dir=args.cache_dir,
                            substitute=args.substitute_weights)
    inputs = MeasureInputs(data=args.data, classifier=classifier, fit=args.fit, use_cache=not args.no_cache)
    # hashed once for every record
    prov = Provenance.in_memory(gen.label) if gen.checkpoint is None else Provenance.of_checkpoint(gen.checkpoint, gen.label, gen.preset)
    records = [prov.record(r) for r in measure(protocols, options, inputs)]
    if not distributed.is_main():
        return 0
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2, sort_keys=True))
    else:
        for r in records:
            print(summary(r))
        dropped = sorted({n for r in records if r.metric.startswith(("dci_", "mig_", "sap_"))
                          for n in r.extras.get("excluded_factors", [])})
        if dropped:
            print(f"note: dci/mig/sap left out attributes with a single class: {', '.join(dropped)}")
    subs = sorted({f"{r.feature_network.name} ({r.feature_network.weights})" for r in records
                   if r.feature_network is not None and r.feature_network.substitute})
    if subs:
        print(f"WARNING: measured with SUBSTITUTE weights ({', '.join(subs)}); not comparable with published numbers.",
              file=sys.stderr)
    if args.results:
        for r in records:
            append_jsonl(args.results, r)
    return 0

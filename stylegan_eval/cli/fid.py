"""`stylegan-eval fid`: Fréchet Inception Distance of a checkpoint (or an image folder) against a
dataset, as the paper measures it (50k generated vs up to 50k real, no truncation)."""

import argparse

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import (
    add_device, add_label, add_model_source, add_output, add_seed, add_substitute, check_results, dataset_hints,
    emit_record, finite_float, int_at_least, load_generator_option,
)

EPILOG = """examples:
  # the paper's fid50k of a trained checkpoint (dataset statistics are cached after the first run)
  stylegan-eval fid --ckpt runs/F-cpu32/snapshot-001000.pt --data data/synth32

  # a quick look: 2,000 samples, with a labelled substitute network where Inception is missing
  stylegan-eval fid --ckpt runs/F-cpu32 --data data/synth32 --num-gen 2000 --num-real 2000 --substitute-weights

  # two image folders; several GPUs share the work (the value does not depend on their number)
  torchrun --nproc_per_node 4 -m stylegan_eval.cli fid --gen-folder samples/ --data data/ffhq1024

An interrupted run, restarted with the same arguments, resumes after its last completed chunk.
"""


def register(subparsers) -> None:
    from stylegan_eval.metrics.fid import DEFAULT_CHUNK
    from stylegan_eval.fid_cache import default_cache_dir

    p = subparsers.add_parser(
        "fid",
        help="Fréchet Inception Distance against a dataset",
        description="Fréchet Inception Distance (torch-fidelity inception-v3-compat pool3 features) between "
        "a generator checkpoint, or a folder of images, and a dataset. Generated images are quantised to "
        "uint8 first; sample i depends only on (seed, i).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    add_model_source(p, group=src)
    src.add_argument("--gen-folder", metavar="DIR", help="folder (or .zip) of images to measure instead of a generator")
    p.add_argument("--data", required=True, metavar="DIR", help="reference dataset: folder (or .zip) of images")
    p.add_argument("--num-gen", type=int, default=50_000, help="generated images (a --gen-folder uses at most this many)")
    p.add_argument("--num-real", type=int, default=50_000, help="dataset images (the first min(this, dataset size))")
    p.add_argument("--batch", type=int_at_least(1), default=32, help="images per batch and process (does not change the value)")
    add_seed(p)
    add_device(p)
    p.add_argument("--truncation", type=finite_float, default=1.0, help="truncation psi; 1 = none, as the paper's FID")
    p.add_argument("--truncation-cutoff", type=int_at_least(0), default=None, help="truncate only the first N style inputs; None: all of them")
    p.add_argument("--fit", choices=("error", "resize", "center-crop"), default="error",
                   help="dataset images of another size than the generator's: refuse, resize, or crop and resize")
    p.add_argument("--no-cache", action="store_true", help="recount the dataset statistics (and refresh the cache)")
    p.add_argument("--cache-dir", default=str(default_cache_dir()), metavar="DIR",
                   help="dataset statistics and progress files (or $STYLEGAN_EVAL_CACHE)")
    p.add_argument("--no-resume", action="store_true", help="ignore progress files of an interrupted run")
    p.add_argument("--chunk", type=int_at_least(1), default=DEFAULT_CHUNK, help="generated samples between progress saves")
    p.add_argument("--inception-weights", metavar="FILE", help="Inception weights file; None: the torch hub cache under TORCH_HOME")
    add_label(p)
    add_substitute(p)
    add_output(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stylegan_core import distributed
    from stylegan_core.errors import ConfigError
    from stylegan_eval.metrics.fid import compute_fid

    if args.gen_folder and args.fit != "error":
        raise ConfigError(f"--fit {args.fit} takes the resolution from the generator (--ckpt); with --gen-folder both "
                          "folders must hold images of one size already")
    check_results(args)
    device = distributed.default_device(args.device)
    distributed.init(device)
    if args.ckpt or args.generator:
        gen = load_generator_option(args, device)
        source, label, checkpoint, preset = gen.G, gen.label, gen.checkpoint, gen.preset
    else:
        source, label, checkpoint, preset = args.gen_folder, args.label, None, None
    with dataset_hints(skip=None, fit="--fit" if args.ckpt else None, resolution=None):
        record = compute_fid(
            source,
            args.data,
            num_gen=args.num_gen,
            num_real=args.num_real,
            batch_size=args.batch,
            seed=args.seed,
            device=device,
            truncation_psi=args.truncation,
            truncation_cutoff=args.truncation_cutoff,
            cache_dir=args.cache_dir,
            use_cache=not args.no_cache,
            resume=not args.no_resume,
            chunk_size=args.chunk,
            weights_path=args.inception_weights,
            substitute=args.substitute_weights,
            fit=args.fit,
            label=label,
            checkpoint=checkpoint,
            preset=preset,
        )
    net = record.feature_network
    what = f"{net.name}, SUBSTITUTE {net.weights}" if net.substitute else net.name
    cached = "cached" if record.extras["cache_hit"] else "counted"
    summary = (
        f"FID {record.value:.4f}  {record.model}: {record.num_samples} generated vs {record.extras['num_real']} "
        f"real ({cached}) from {args.data}  [{what}; {record.wall_time_s:.1f} s]"
    )
    emit_record(args, record, summary)
    return 0


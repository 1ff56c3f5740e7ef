"""`stylegan-eval ppl`: perceptual path length of a checkpoint, as the paper measures it
(LPIPS-VGG16 v0.1, face crop, eps = 1e-4, 1st/99th percentile filter, no truncation)."""

import argparse

from stylegan_eval.cli import HelpFormatter
from stylegan_eval.cli.common import (
    add_device, add_label, add_model_source, add_output, add_overwrite, add_seed, add_substitute, check_results,
    emit_record, float_at_least, int_at_least, load_generator_option,
)

EPILOG = """examples:
  # the paper's PPL in W, endpoints only (Table 3 "path length, end")
  stylegan-eval ppl --ckpt runs/F-cpu32/snapshot-0001000000.pt --space w --sampling end

  # a quick look with 2,000 pairs, keeping the distances for a histogram
  stylegan-eval ppl --ckpt runs/F-cpu32 --space z --sampling full --num-samples 2000 --save-dists dists.npy

  # several GPUs share the samples (the value does not depend on their number)
  torchrun --nproc_per_node 4 -m stylegan_eval.cli ppl --ckpt runs/F/snapshot.pt --results results.jsonl

  # a StyleGAN2-ADA pickle (EXECUTES its stored code; NVlabs' repository on PYTHONPATH), or your own generator
  PYTHONPATH=stylegan2-ada-pytorch stylegan-eval ppl --ckpt ffhq.pkl --trust-pickle-code
  stylegan-eval ppl --generator mypkg.models:make_generator

Generators smaller than 32x32 give LPIPS too small an image after the face crop: add --no-crop.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ppl",
        help="perceptual path length (LPIPS-VGG16) in Z or W",
        description="Perceptual path length: LPIPS distance between images at t and t + epsilon along "
        "random latent paths (slerp in Z, lerp in W), divided by epsilon^2, outliers outside the "
        "1st..99th percentile dropped, averaged. Sample i depends only on (seed, i).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_model_source(p)
    p.add_argument("--space", choices=("w", "z"), default="w", help="interpolate w (lerp) or z (slerp)")
    p.add_argument("--sampling", choices=("end", "full"), default="end", help="t = 0 (end) or t ~ U(0, 1) (full)")
    p.add_argument("--num-samples", type=int_at_least(1), default=100_000, help="pairs measured (the paper: 100,000)")
    p.add_argument("--epsilon", type=float_at_least(0, inclusive=False), default=1e-4, help="step along the path")
    p.add_argument("--batch", type=int_at_least(1), default=16, help="pairs per batch and process (does not change the value)")
    p.add_argument("--no-crop", action="store_true", help="measure the whole image instead of the face crop")
    add_seed(p)
    add_device(p)
    add_label(p)
    p.add_argument("--save-dists", metavar="FILE", help="write all per-pair distances to FILE (.npy) for histograms")
    add_overwrite(p, "--save-dists files")
    add_substitute(p)
    add_output(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stylegan_core import distributed
    from stylegan_eval.metrics.ppl import compute_ppl
    from stylegan_eval.outputs import OutputError, check_output_file

    # Every output is checked before an hour of sampling, not after it.
    check_results(args)
    if args.save_dists:
        check_output_file(args.save_dists, "--save-dists", "overwrite" if args.overwrite else "refuse")
    device = distributed.default_device(args.device)
    distributed.init(device)
    gen = load_generator_option(args, device)
    record = compute_ppl(
        gen.G,
        space=args.space,
        sampling=args.sampling,
        num_samples=args.num_samples,
        epsilon=args.epsilon,
        crop=not args.no_crop,
        batch_size=args.batch,
        seed=args.seed,
        device=device,
        substitute_weights=args.substitute_weights,
        label=gen.label,
        checkpoint=gen.checkpoint,
        preset=gen.preset,
        save_dists=args.save_dists,
    )
    net = record.feature_network
    what = f"{net.name}, SUBSTITUTE {net.weights}" if net.substitute else net.name
    ex = record.extras
    summary = (
        f"{record.metric} {record.value:.4f} +- {ex['stderr']:.4f}  {record.model}: {record.num_samples} pairs, "
        f"{ex['num_kept']} kept (unfiltered mean {ex['unfiltered_mean']:.4f}), "
        f"{ex['image_size']}x{ex['image_size']} {'face crop' if record.params['crop'] else 'whole image'}  "
        f"[{what}; {record.wall_time_s:.1f} s]"
    )
    emit_record(args, record, summary)
    if args.save_dists and "dists_file" not in record.extras and distributed.is_main():
        raise OutputError(f"--save-dists {args.save_dists}: not written (see the warning above); the value printed above "
                          "is complete")
    return 0

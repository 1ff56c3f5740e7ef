"""Several protocols on one generator in one process, each generated image made once.

`measure(protocols, options, inputs)` groups the protocols by what they need:
- FID, KID, precision/recall, separability and DCI/MIG/SAP all measure samples 0..n-1 of the
  same definition (latent and noise from (seed, i)), so ONE pass over the generated images feeds
  them all (stylegan_eval.metrics.image_pass); FID and KID share one Inception forward per batch,
  separability and DCI/MIG/SAP one classifier forward (and their z, w; S is computed beside).
- The real side: FID statistics and KID/PR feature rows (on disk), both cached under the same
  dataset key (as `stylegan-eval fid`).
- The generated KID/PR rows are streamed to disk chunk by chunk (stylegan_eval.metrics.feature_store)
  and removed when the run ends.
- PPL measures pairs of images of its own, one protocol after the other.
Results come back in the order the protocols were given (ls gives two, pr two, dci/mig/sap one
per latent space). DCI/MIG/SAP are fitted on rank 0 only: under torchrun the other ranks get no
results for them.
"""

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from stylegan_core.errors import ConfigError
from stylegan_eval.metrics import image_pass as P
from stylegan_eval.metrics.feature_store import StoreConsumer, dataset_features, generated_store, scratch_folder
from stylegan_eval.metrics.fid import FIDExtras, _open, dataset_stats, fid_from_stats
from stylegan_eval.metrics.generation import noise_mode_of
from stylegan_eval.metrics.image_metrics import kid_result, pr_results
from stylegan_eval.metrics.latent_factors import disentanglement_results
from stylegan_eval.metrics.options import MetricOptions
from stylegan_eval.metrics.ppl import check_image_size, measure_ppl
from stylegan_eval.metrics.registry import Protocol
from stylegan_eval.metrics.separability import check_classifier, labels_from_probs, separability_results
from stylegan_eval.provenance import MetricResult

IMAGE_KINDS = ("fid", "kid", "pr")
LATENT_KINDS = ("ls", "disentanglement")  # classify the images and read their latents


@dataclass(frozen=True)
class MeasureInputs:
    """What some protocols need besides the generator."""

    data: str | Path | None = None  # reference dataset (folder / zip) for fid, kid, pr
    classifier: torch.nn.Module | None = None  # AttributeClassifier for ls, dci, mig, sap
    fit: str = "error"  # dataset images of another resolution: "error" | "resize" | "center-crop"
    use_cache: bool = True  # False: recount the dataset's FID statistics
    inception: torch.nn.Module | None = None  # None: stylegan_eval.inception.load_inception
    pr_features: torch.nn.Module | None = None  # None: precision_recall.load_pr_features
    lpips: torch.nn.Module | None = None  # None: LPIPS-VGG16 v0.1


def _params(p: Protocol, result: MetricResult) -> MetricResult:
    """The protocol's name and, when scaled down, the count it fixes, in the result's params."""
    params = {**result.params, "protocol": p.name}
    if p.protocol_num_samples is not None:
        params["protocol_num_samples"] = p.protocol_num_samples
    return dataclasses.replace(result, params=params)


def _check_inputs(protocols: list[Protocol], inputs: MeasureInputs) -> None:
    need_data = [p.name for p in protocols if p.kind in IMAGE_KINDS]
    if need_data and inputs.data is None:
        raise ConfigError(f"{', '.join(need_data)} compare with real images: give the dataset with --data")
    need_classifier = [p.name for p in protocols if p.kind in LATENT_KINDS]
    if need_classifier and inputs.classifier is None:
        raise ConfigError(f"{', '.join(need_classifier)}: the images are labelled by attribute classifiers; "
                          "give --classifier FILE")


def measure(protocols: list[Protocol], options: MetricOptions, inputs: MeasureInputs = MeasureInputs()) -> list[MetricResult]:
    """Results of `protocols` on options.G (see the module docstring). Under torchrun every rank
    calls this with the same arguments and gets the same results."""
    _check_inputs(protocols, inputs)
    G = options.G.to(options.device).eval()
    lpips = inputs.lpips
    if any(p.kind == "ppl" for p in protocols):  # before the long image pass: its errors come first
        if lpips is None:
            from stylegan_eval.lpips_net import load_lpips

            lpips = load_lpips(substitute=options.substitute, device=options.device)
        for p in protocols:
            if p.kind == "ppl":
                check_image_size(G, p.config, lpips)
    if any(p.kind == "disentanglement" and "s" in p.config.spaces for p in protocols):
        from stylegan_core.stylespace import stylespace_dim

        stylespace_dim(G.synthesis)  # a generator without styles has no S: said before the image pass
    results: dict[str, list[MetricResult]] = {}
    shared = [p for p in protocols if p.kind in (*IMAGE_KINDS, *LATENT_KINDS)]
    if shared:
        with scratch_folder(options.resolved_cache_dir()) as scratch:  # the generated KID/PR rows
            results.update(_measure_shared(shared, options, inputs, G, scratch))
    for p in protocols:
        if p.kind == "ppl":
            results[p.name] = [measure_ppl(options, p.config, lpips)]
    return [_params(p, r) for p in protocols for r in results[p.name]]


def _measure_shared(protocols: list[Protocol], options: MetricOptions, inputs: MeasureInputs, G,
                    scratch: Path) -> dict[str, list[MetricResult]]:
    device, t_start = options.device, time.perf_counter()
    kinds = {p.kind for p in protocols}
    inception = pr_net = None
    if kinds & {"fid", "kid"}:
        if inputs.inception is None:
            from stylegan_eval.inception import load_inception

            inception = load_inception(device, substitute=options.substitute)
        else:
            inception = inputs.inception
        inception = inception.to(device)
    if "pr" in kinds:
        if inputs.pr_features is None:
            from stylegan_eval.metrics.precision_recall import load_pr_features

            pr_net = load_pr_features(device, substitute=options.substitute)
        else:
            pr_net = inputs.pr_features
        pr_net = pr_net.to(device)
    classifier = None
    if kinds & set(LATENT_KINDS):
        classifier = inputs.classifier.to(device).eval()
        check_classifier(G, classifier)

    # The real side: FID statistics (cached), KID/PR rows (one pass over the dataset).
    ds = _open(inputs.data, G.img_resolution, inputs.fit) if kinds & set(IMAGE_KINDS) else None
    n_real = {p.name: min(p.config.num_real or len(ds), len(ds)) for p in protocols if p.kind in IMAGE_KINDS}
    cache_dir = options.resolved_cache_dir()
    real_stats = {}
    for p in protocols:
        if p.kind == "fid" and n_real[p.name] not in real_stats:
            real_stats[n_real[p.name]] = dataset_stats(ds, ds.fingerprint(), n_real[p.name], inception, options.batch_size,
                                                       device, cache_dir, inputs.use_cache, True, "FID real images",
                                                       options.progress)
    row_nets = {k: net for k, net in (("kid", inception), ("pr", pr_net)) if k in kinds}
    real_rows = {k: dataset_features(ds, max(n_real[p.name] for p in protocols if p.kind == k), net, options.batch_size,
                                     device, cache_dir, inputs.use_cache, f"{k} real images", options.progress)[0]
                 for k, net in row_nets.items()}
    t_real = time.perf_counter() - t_start

    # The generated side: one pass, every consumer takes the samples it needs.
    stats = {p.name: P.StatsConsumer(inception, p.num_samples, device) for p in protocols if p.kind == "fid"}
    rows = {k: StoreConsumer(net, generated_store(scratch, k, max(p.num_samples for p in protocols if p.kind == k), net),
                             device) for k, net in row_nets.items()}
    ls = styles = None
    if classifier is not None:  # one classifier forward and one copy of z, w for ls and dci/mig/sap
        ls = P.LatentsAndProbs(classifier, max(p.num_samples for p in protocols if p.kind in LATENT_KINDS), G.z_dim,
                               G.w_dim, device)
        with_s = [p.num_samples for p in protocols if p.kind == "disentanglement" and "s" in p.config.spaces]
        styles = P.StyleScales(G.synthesis, max(with_s), device) if with_s else None
    consumers = [*stats.values(), *rows.values(), *(c for c in (ls, styles) if c is not None)]
    t0 = time.perf_counter()
    P.run_pass(max(c.num for c in consumers), P.generated_loader(G, options.seed, device), consumers,
               options.batch_size, desc="generated images", progress=options.progress)
    fake_rows = {k: c.finish() for k, c in rows.items()}
    t_gen = time.perf_counter() - t0

    out: dict[str, list[MetricResult]] = {}
    for p in protocols:
        t0 = time.perf_counter()
        if p.kind == "fid":
            real, hit, t_stats = real_stats[n_real[p.name]]
            value = fid_from_stats(stats[p.name].total, real)
            extras = FIDExtras(num_real=n_real[p.name], cache_hit=hit, time_real_s=t_stats, time_generated_s=t_gen,
                               time_distance_s=time.perf_counter() - t0, world_size=options.world_size, device=str(device))
            params = {"source": "generator", "noise_mode": noise_mode_of(G), "truncation_psi": 1.0,
                      "truncation_cutoff": None, "num_gen": p.num_samples, "num_real": n_real[p.name],
                      "data": str(inputs.data) if isinstance(inputs.data, (str, Path)) else "dataset", "data_fingerprint": ds.fingerprint()}
            out[p.name] = [MetricResult(p.name, value, params, p.num_samples, options.seed, inception.identity,
                                        time.perf_counter() - t_start, extras)]
        elif p.kind == "kid":
            out[p.name] = [kid_result(p.name, p.config, real_rows["kid"], fake_rows["kid"], options.seed,
                                      inception.identity, t_real + t_gen + time.perf_counter() - t0, device)]
        elif p.kind == "pr":
            out[p.name] = pr_results(p.name, p.config, real_rows["pr"], fake_rows["pr"], options.seed, pr_net.identity,
                                     t_real + t_gen + time.perf_counter() - t0, device)
        elif p.kind == "ls":
            z, w, probs = ls.result()
            n = p.num_samples
            out[p.name] = separability_results(options, p.config, classifier, z[:n], w[:n], probs[:n], time.time() - t_gen)
        elif p.kind == "disentanglement":
            z, w, probs = ls.result()
            latents = {"z": z.numpy(), "w": w.numpy(), **({"s": styles.result().numpy()} if styles else {})}
            out[p.name] = disentanglement_results(options, p.config, classifier, latents, labels_from_probs(probs.numpy()),
                                                  t_gen / len([q for q in protocols if q.kind in LATENT_KINDS]))
    return out

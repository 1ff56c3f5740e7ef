"""The demo (`stylegan-eval demo`): the paper's comparison of a style-based generator
(configuration F) with a traditional one (configuration B), end to end at CPU size, in a fixed
wall-clock budget, with nothing downloaded.

Stages: (1) the synthetic labelled dataset; (2) which pretrained feature networks exist (absent
ones are replaced by labelled substitutes, announced in the console and the report); (3) the
attribute classifiers; (4) calibration: seconds per image of each stage on this machine, which
size the metric sample counts to their share of the budget and give training the rest; (5, 6)
training both presets, each for its share of time: chunks of `stylegan_core.training.train`
resumed with a larger `total_kimg` (bit-exact, as one straight run to the final length);
(7) PPL (Z, W; full, end), separability (Z, W), FID and KID for both (KID is unbiased, so it still
means something at the demo's few samples, where FID's covariance is singular); (8) sample figures;
(9) the comparison report, whose findings are computed from the measured records.

`DemoConfig.tiny()` runs the same code at unit-test size (16x16 presets, fixed lengths).
"""

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from stylegan_core.errors import ConfigError, UserError
from stylegan_eval.records import ResultRecord, append_jsonl

MARKER = "demo.json"  # written last; a folder holding it is an earlier demo (safe to replace)
STAGES = 9


@dataclass(frozen=True)
class DemoConfig:
    minutes: float = 20.0  # wall-clock budget for everything; training gets what the rest leaves
    style_preset: str = "F-cpu32"  # the style-based generator (paper configuration F)
    traditional_preset: str = "B-cpu32"  # the traditional baseline (paper configuration B)
    num_images: int = 10_000  # synthetic dataset size
    classifier_kimg: float | None = None  # images shown to the classifier (thousands); None: its budget share
    classifier_share: float = 0.08  # fraction of the budget for training the classifier (when kimg is None)
    classifier_images: int = 3000  # labelled images it trains on (10% held out); its accuracy pass reads them all
    classifier_fmap: tuple[int, int] = (512, 64)  # its (fmap_base, fmap_max): channels per stage
    metrics_share: float = 0.25  # fraction of the budget for PPL, separability and FID
    train_kimg: float | None = None  # None: train for the time left; else exactly this long (tests)
    lod_kimg: float | None = None  # progressive-growing phase length; None: an eighth of the expected run
    ppl_samples: int | None = None  # per PPL metric; None: sized to the budget (at most 100k)
    ls_samples: int | None = None  # separability samples; None: sized to the budget (at most 200k)
    fid_samples: int | None = None  # generated (and real) images; None: sized to the budget (at most 50k)
    disentanglement_samples: int = 600  # DCI/MIG/SAP of the style model's Z, W, S (400 fit, 200 test); 0 = skip
    ppl_crop: bool = True  # the official face crop (a 16x16 generator is too small for it)
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self):
        if not (math.isfinite(self.minutes) and self.minutes > 0):
            raise ConfigError(f"--minutes must be a positive number, got {self.minutes}")
        if self.num_images < 100:
            raise ConfigError(f"the demo needs at least 100 images, got {self.num_images}")
        if not 0 < self.metrics_share < 1:
            raise ConfigError(f"metrics_share must be between 0 and 1, got {self.metrics_share}")
        if self.disentanglement_samples != 0 and self.disentanglement_samples < 4:
            raise ConfigError(f"disentanglement_samples must be 0 (skip) or at least 4, got {self.disentanglement_samples}")
        for name in ("ppl_samples", "ls_samples", "fid_samples"):
            v = getattr(self, name)
            if v is not None and v < 2:
                raise ConfigError(f"{name} must be at least 2, got {v}")

    @staticmethod
    def for_minutes(minutes: float) -> "DemoConfig":
        """The default demo scaled to `minutes`: more data and classifier training with more time."""
        scale = max(1.0, minutes / 20.0)
        return DemoConfig(minutes=minutes, num_images=int(min(50_000, 10_000 * scale)))

    @staticmethod
    def tiny() -> "DemoConfig":
        """Unit-test size: 16x16 presets, a few hundred images, fixed short lengths."""
        return DemoConfig(minutes=5.0, style_preset="F-test16", traditional_preset="B-test16", num_images=200,
                          classifier_kimg=0.25, classifier_fmap=(64, 16), train_kimg=0.1, lod_kimg=0.025,
                          ppl_samples=4, ls_samples=32, fid_samples=4, disentanglement_samples=48, ppl_crop=False,
                          batch_size=16)


@dataclass
class _Clock:
    """Elapsed time, the deadline, and one console line per step."""

    budget_s: float
    log: Callable[[str], None]
    start: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, msg: str) -> None:
        e = int(self.elapsed())
        self.log(f"[demo {e // 60:02d}:{e % 60:02d}] {msg}")

    def stage(self, k: int, name: str):
        clock = self

        class _Stage:
            def __enter__(self):
                clock.say(f"stage {k}/{STAGES}: {name}")
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                clock.stages[name] = round(time.perf_counter() - self.t, 1)

        return _Stage()


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    report_dir: Path
    substitutes: tuple[str, ...]  # feature networks replaced by substitutes ("" if none)
    findings: tuple[tuple[str, str], ...]  # (claim, verdict) as measured
    stage_seconds: dict[str, float]
    total_seconds: float


def missing_weights() -> list[str]:
    """Names of the pretrained feature networks whose weights are absent (and cannot be fetched)."""
    from stylegan_eval.inception import INCEPTION_WEIGHTS
    from stylegan_eval.lpips_net import VGG16_FILE
    from stylegan_eval.weights import MissingWeightsError, resolve

    missing = []
    for name, spec in (("LPIPS VGG16 (PPL)", VGG16_FILE), ("Inception-v3 (FID)", INCEPTION_WEIGHTS)):
        try:
            resolve(spec)
        except MissingWeightsError:
            missing.append(name)
    return missing


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file() and not (out / ".demo-in-progress").is_file():
            raise UserError(f"{out}: exists, is not empty and is not a demo folder; choose another --out")
        if not overwrite:
            raise UserError(f"{out}: holds an earlier demo; pass --overwrite to replace it, or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / ".demo-in-progress").write_text("")


def _time_per_item(fn, n: int, repeats: int = 3, warmup: bool = True) -> float:
    """Seconds per item of fn() processing n items (best of `repeats`, after one warm-up: the best
    filters out moments when other processes take the cores)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    if warmup:
        fn()
    best = math.inf
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best / n


def _calibrate(presets, lpips, inception, classifier, cfg: DemoConfig, device) -> dict[str, float]:
    """Seconds per image on this machine: generation per preset, LPIPS pairs, Inception features,
    the classifier's forward and one training step (untrained networks cost the same)."""
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset
    from stylegan_eval.metrics.ppl import prepare_images

    n = min(cfg.batch_size, 16)
    costs = {}
    with torch.no_grad():
        for name in [presets[0], *presets]:  # the first network run in a process pays one-off set-up costs
            G = Generator(get_preset(name).generator).to(device).eval()
            z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device)
            costs[f"gen:{name}"] = _time_per_item(lambda: G(z), n)
            img = G(z).clamp(-1, 1)
        crops = prepare_images(img, cfg.ppl_crop)
        costs["lpips"] = _time_per_item(lambda: lpips(crops, crops.flip(0)), n)
        u8 = ((img + 1) * 127.5).to(torch.uint8)
        inception(u8[:1])  # warm-up on one image: Inception is the costliest network here
        costs["inception"] = _time_per_item(lambda: inception(u8[:4]), min(n, 4), repeats=2, warmup=False)
        x = torch.zeros(n, 3, classifier.resolution, classifier.resolution, device=device)
        costs["classifier"] = _time_per_item(lambda: classifier(x), n)
    opt = torch.optim.Adam(classifier.parameters())

    def step():
        opt.zero_grad()
        classifier(x).square().mean().backward()
        opt.step()

    costs["classifier_train"] = _time_per_item(step, n)
    return costs


def _size_samples(costs: dict[str, float], presets, seconds: float, cfg: DemoConfig) -> dict[str, int]:
    """Sample counts that fit the metrics budget: 45% PPL (4 metrics), 20% separability, 35% FID."""
    if cfg.ppl_samples and cfg.ls_samples and cfg.fid_samples:
        return {"ppl": cfg.ppl_samples, "ls": cfg.ls_samples, "fid": cfg.fid_samples}
    gen = sum(costs[f"gen:{p}"] for p in presets)  # one image from each model
    m = len(presets)
    ppl = cfg.ppl_samples or int(0.45 * seconds / (4 * (2 * gen + m * costs["lpips"])))
    ls = cfg.ls_samples or int(0.20 * seconds / (gen + m * costs["classifier"]))
    fid = cfg.fid_samples or int(0.35 * seconds / (gen + (m + 1) * costs["inception"]))
    # Floors keep each metric computable (FID's covariance is singular below 2048 samples anyway).
    return {"ppl": int(min(max(ppl, 20), 100_000)), "ls": int(min(max(ls, 100), 200_000)),
            "fid": int(min(max(fid, 20), 50_000))}


def _train_for(run_dir: Path, ds, preset, tcfg, seconds: float | None, device, clock: _Clock, progress: bool) -> Path:
    """Train until `tcfg.total_kimg` (seconds None) or for about `seconds`: chunks resumed with a
    larger total_kimg, each sized from the speed measured on the previous one."""
    from stylegan_core.training import train

    def run(cfg, resume):
        result = train(run_dir, ds, preset, cfg, device=device, resume=resume, progress=progress)
        if result.status == "interrupted":  # SIGINT/SIGTERM: training saved a snapshot; stop the demo too
            raise KeyboardInterrupt
        return result

    if seconds is None:
        return run(tcfg, False).snapshot
    deadline = time.perf_counter() + seconds
    round_imgs = 4 * tcfg.minibatch_base  # one schedule round (minibatch_repeats minibatches)
    nimg, rate, resume, snap, chunk = 0, None, False, None, round_imgs
    while True:
        left = deadline - time.perf_counter()
        if snap is not None and left < max(10.0, 0.03 * seconds):
            return snap
        # At most double the last chunk: the speed drops as progressive growing adds resolutions.
        chunk = round_imgs * 2 if rate is None else max(round_imgs, int(min(rate * left * 0.5, 2 * chunk)))
        t = time.perf_counter()
        result = run(dataclasses.replace(tcfg, total_kimg=(nimg + chunk) / 1000), resume)
        rate = max(1e-3, (result.nimg - nimg) / (time.perf_counter() - t))
        nimg, resume, snap = result.nimg, True, result.snapshot
        clock.say(f"  {preset.name}: {nimg} images, {rate:.0f} img/s, {max(0, int(deadline - time.perf_counter()))} s left")


def _measure(G, label, preset, ckpt, ds, lpips, inception, classifier, n, out, cfg, device, sub, progress):
    """PPL (4), separability (2), FID and KID records of one generator: one provenance (the
    checkpoint hashed once); FID, KID and separability share one pass over the generated images."""
    from stylegan_eval.metrics.measure import MeasureInputs, measure
    from stylegan_eval.metrics.options import MetricOptions
    from stylegan_eval.metrics.ppl import measure_ppl
    from stylegan_eval.metrics.registry import PROTOCOLS
    from stylegan_eval.provenance import Provenance

    prov = Provenance.of_checkpoint(ckpt, label, preset)
    options = MetricOptions(G=G, device=device, seed=cfg.seed, batch_size=cfg.batch_size, cache_dir=out / "fid-cache",
                            substitute=sub, progress=progress)
    recs = []
    for space in ("z", "w"):
        for sampling in ("full", "end"):
            p = PROTOCOLS[f"ppl_{space}{sampling}"].with_num_samples(n["ppl"])
            p = p if cfg.ppl_crop else p.without_crop()
            dists = out / "dists" / f"{label}_ppl_{space}{sampling}.npy"
            recs.append(prov.record(measure_ppl(options, p.config, lpips, save_dists=dists)))
    n_real = min(n["fid"], len(ds))
    fid, kid = (PROTOCOLS[name].with_num_samples(n["fid"]) for name in ("fid50k", "kid50k"))
    fid = dataclasses.replace(fid, config=dataclasses.replace(fid.config, num_real=n_real))
    kid = dataclasses.replace(kid, config=dataclasses.replace(kid.config, num_real=n_real))
    ls = PROTOCOLS["ls"].with_num_samples(n["ls"])
    ls = dataclasses.replace(ls, config=dataclasses.replace(ls.config, n_jobs=min(2, os.cpu_count() or 1)))
    inputs = MeasureInputs(data=ds, classifier=classifier, inception=inception)
    recs += [prov.record(r) for r in measure([ls, fid, kid], options, inputs)]
    return recs


def describe(record: ResultRecord) -> str:
    """One console line per record: KID with its standard deviation; an FID of fewer samples than
    the Inception feature dimension is flagged, not shown as a result (its covariance is singular)."""
    from stylegan_eval.report import FID_MIN_SAMPLES

    if record.metric.startswith("fid") and record.num_samples < FID_MIN_SAMPLES:
        return (f"{record.metric}: not meaningful on {record.num_samples} samples (fewer than the {FID_MIN_SAMPLES} "
                "feature dimensions: singular covariance); see KID")
    if record.metric.startswith("kid"):
        return f"{record.metric} = {record.value:.5f} +- {record.extras['std']:.5f} ({record.num_samples} samples)"
    return f"{record.metric} = {record.value:.4g} ({record.num_samples} samples)"
def _disentanglement_seconds(costs: dict[str, float], cfg: DemoConfig, num_attributes: int) -> float:
    """Planned seconds for DCI/MIG/SAP of the style model: sampling, plus boosted trees (~2e-5 s per
    training sample, code and attribute on one core, measured on a 2-core CPU) and SAP's 1-D SVMs
    (~3 ms each), over two processes."""
    from stylegan_core.presets import get_preset
    from stylegan_core.stylespace import stylespace_dim
    from stylegan_core.synthesis import SynthesisNetwork

    n = cfg.disentanglement_samples
    if n == 0:
        return 0.0
    gcfg = get_preset(cfg.style_preset).generator
    dims = gcfg.mapping.z_dim + gcfg.mapping.w_dim
    if gcfg.synthesis.use_styles:
        dims += stylespace_dim(SynthesisNetwork(gcfg.synthesis))
    fits = (2e-5 * (2 * n / 3) * dims * num_attributes + 3e-3 * dims * num_attributes) / 2
    return n * (costs.get(f"gen:{cfg.style_preset}", 0.0) + costs.get("classifier", 0.0)) + fits + 10.0


def _measure_disentanglement(G, cfg: DemoConfig, ckpt: Path, classifier, results: Path, dev, clock: "_Clock",
                             progress: bool) -> None:
    """DCI, MIG and SAP of the style model's Z, W and StyleSpace S, appended to the results; a score
    that cannot be measured (too few attributes with both classes) is reported and skipped."""
    from stylegan_eval.metrics.disentanglement import DisentanglementError
    from stylegan_eval.metrics.latent_factors import compute_disentanglement

    if cfg.disentanglement_samples == 0:
        return
    spaces = ("z", "w", "s") if G.synthesis.config.use_styles else ("z", "w")  # S needs style modulation
    try:
        recs = compute_disentanglement(G, classifier, spaces=spaces, num_samples=cfg.disentanglement_samples,
                                       batch_size=cfg.batch_size,
                                       seed=cfg.seed, device=dev, n_jobs=min(2, os.cpu_count() or 1),
                                       model=cfg.style_preset, checkpoint=str(ckpt), preset=cfg.style_preset,
                                       progress=progress)
    except DisentanglementError as e:
        clock.say(f"  disentanglement skipped: {e}")
        return
    for r in recs:
        append_jsonl(results, r)
        clock.say(f"  {cfg.style_preset} {r.metric} = {r.value:.4g} ({r.num_samples} samples)")


def run_demo(out_dir: str | os.PathLike, config: DemoConfig = DemoConfig(), device: str = "auto",
             overwrite: bool = False, log: Callable[[str], None] = print, progress: bool = True) -> DemoResult:
    """Run the whole demo into `out_dir` (see the module docstring); returns where the report is."""
    from stylegan_core import distributed
    from stylegan_core.checkpoint import load_generator
    from stylegan_core.data import open_dataset
    from stylegan_core.presets import get_preset
    from stylegan_core.schedule import training_config
    from stylegan_core.synthetic import synthesize_dataset
    from stylegan_eval import classifier as C
    from stylegan_eval.figures import sample_figures
    from stylegan_eval.html_report import ReportOptions, write_report
    from stylegan_eval.inception import load_inception
    from stylegan_eval.lpips_net import load_lpips
    from stylegan_eval.published import generator_kind
    from stylegan_eval.report import load_inputs, model_table, qualitative_findings, records_frame

    cfg, out = config, Path(out_dir)
    presets = {p: get_preset(p) for p in (cfg.style_preset, cfg.traditional_preset)}
    res = presets[cfg.style_preset].generator.synthesis.resolution
    if presets[cfg.traditional_preset].generator.synthesis.resolution != res:
        raise ConfigError(f"{cfg.style_preset} and {cfg.traditional_preset} have different resolutions")
    dev = distributed.default_device(device)
    _prepare_out(out, overwrite)
    clock = _Clock(cfg.minutes * 60.0, log)
    clock.say(f"output folder {out}; budget {cfg.minutes:g} min on {dev}")

    with clock.stage(1, f"synthetic dataset ({cfg.num_images} images, {res}x{res})"):
        data_dir = synthesize_dataset(out / "data", cfg.num_images, res, cfg.seed, progress=progress)
        ds = open_dataset(data_dir / "images", attributes=data_dir / "list_attr.txt")

    with clock.stage(2, "pretrained feature networks"):
        missing = missing_weights()
        banner = ""
        if missing:
            banner = (f"SUBSTITUTE NETWORKS: pretrained weights not found for {' and '.join(missing)}; this run uses "
                      "seeded random-weight substitutes, labelled in every record. Those values are NOT comparable "
                      "with the paper's. Place the weight files in the torch hub cache to measure for real.")
            clock.say("!" * 78 + "\n!!! " + banner + "\n" + "!" * 78)
        lpips = load_lpips(substitute=bool(missing), device=dev)
        inception = load_inception(dev, substitute=bool(missing))

    ccfg = C.classifier_config(ds.attribute_names, res, fmap_base=cfg.classifier_fmap[0], fmap_max=cfg.classifier_fmap[1])
    with clock.stage(3, "calibration and plan"):
        fixed = cfg.ppl_samples and cfg.ls_samples and cfg.fid_samples and cfg.classifier_kimg
        costs = {} if fixed else _calibrate(list(presets), lpips, inception, C.build_classifier(ccfg, 0).to(dev), cfg, dev)
        n_clf = min(cfg.classifier_images, len(ds))
        eval_s = n_clf * costs.get("classifier", 0.0)  # train_classifier's final accuracy pass
        clf_kimg = cfg.classifier_kimg or round(min(100.0, max(2.0, (cfg.classifier_share * clock.budget_s - eval_s)
                                                              / costs["classifier_train"] / 1000)), 1)
        clf_s = clf_kimg * 1000 * costs.get("classifier_train", 0.0) + eval_s
        reserve = clf_s + 30.0 + 0.04 * clock.budget_s  # classifier, figures and report, a 4% margin
        reserve += _disentanglement_seconds(costs, cfg, len(ds.attribute_names))
        # Metrics get their share, but never so much that training falls below 15% of the budget each.
        metrics_budget = min(cfg.metrics_share * clock.budget_s, clock.left() - reserve - 0.3 * clock.budget_s)
        n = _size_samples(costs, list(presets), max(metrics_budget, 0.0), cfg)
        gen = sum(costs.get(f"gen:{p}", 0.0) for p in presets)
        metrics_s = (4 * n["ppl"] * (2 * gen + 2 * costs.get("lpips", 0.0)) + n["ls"] * (gen + 2 * costs.get("classifier", 0.0))
                     + n["fid"] * (gen + 3 * costs.get("inception", 0.0)) + 20.0)
        train_s = None
        if cfg.train_kimg is None:  # training takes what is left
            train_s = (clock.left() - reserve - metrics_s) / 2
        clock.say(f"  plan: train {' and '.join(presets)} {'%.0f s each' % train_s if train_s else '%g kimg each' % cfg.train_kimg}; "
                  f"classifier {clf_kimg:g} kimg (~{clf_s:.0f} s); PPL {n['ppl']} pairs x 4, separability {n['ls']} "
                  f"samples, FID {n['fid']} images (~{metrics_s:.0f} s)")
        if train_s is not None and train_s < 30:
            need = clock.elapsed() + reserve + metrics_s + 2 * 120
            raise UserError(f"--minutes {cfg.minutes:g} leaves {train_s:.0f} s of training per model on this machine; "
                            f"give at least --minutes {math.ceil(need / 60)}")

    with clock.stage(4, f"attribute classifiers ({len(ds.attribute_names)} attributes, {clf_kimg:g} kimg)"):
        model, rep = C.train_classifier(ds.load_all()[:n_clf], ds.attributes[:n_clf], ccfg,
                                        C.TrainConfig(kimg=clf_kimg, seed=cfg.seed), device=dev, progress=progress)
        C.save_classifier(out / "classifier.pt", model, rep)
        classifier = C.load_classifier(out / "classifier.pt", device=dev)
        acc = ", ".join(f"{a} {x:.2f}" for a, x in zip(rep.attributes, rep.heldout_accuracy))
        clock.say(f"  held-out accuracy: {acc}")

    ckpts, figures = {}, []
    for k, (name, preset) in enumerate(presets.items()):
        with clock.stage(5 + k, f"training {name}"):
            tc = training_config("cpu", loss=preset.loss, seed=cfg.seed, snapshot_kimg=1e6, grid_size=16)
            if cfg.lod_kimg is not None:
                lod = cfg.lod_kimg
            else:
                # An eighth of the expected run per phase: 8x8 -> 32x32 fades finish about half-way.
                rate = 1.0 / max(costs.get(f"gen:{name}", 0.01) * 30, 1e-4)  # training ~30x a forward
                lod = max(0.5, rate * (train_s or 60) / 8 / 1000)
            tc = dataclasses.replace(tc, lod_training_kimg=lod, lod_transition_kimg=lod,
                                     total_kimg=cfg.train_kimg or 1.0, tick_kimg=max(0.1, lod / 4))
            ckpts[name] = _train_for(out / "runs" / name, ds, preset, tc, train_s, dev, clock, progress)

    results = out / "results.jsonl"
    with clock.stage(7, "metrics: PPL (Z/W, full/end), separability (Z/W), FID, KID; DCI/MIG/SAP (Z/W/S)"):
        for name, ckpt in ckpts.items():
            G = load_generator(ckpt, device=dev)
            for r in _measure(G, name, name, ckpt, ds, lpips, inception, classifier, n, out, cfg, dev, bool(missing), progress):
                append_jsonl(results, r)
                clock.say(f"  {name} {describe(r)}")
        _measure_disentanglement(load_generator(ckpts[cfg.style_preset], device=dev), cfg, ckpts[cfg.style_preset],
                                 classifier, results, dev, clock, progress)

    with clock.stage(8, "sample figures"):
        for name, ckpt in ckpts.items():
            G = load_generator(ckpt, device=dev)
            kind = generator_kind(name)
            figures += sample_figures(G, name, kind is not None and kind[0] == "style-based", out / "figures", dev)
            figures.append((f"{name}: training snapshot grid ({ckpt.stem})", str(ckpt.with_suffix(".png"))))

    with clock.stage(9, "report"):
        inputs = load_inputs([results, *(out / "runs" / p for p in presets)])
        notes = (
            f"Demo run: {cfg.num_images} synthetic {res}x{res} images, classifiers {clf_kimg:g} kimg on {n_clf} images "
            f"(held-out accuracy {acc}); {' and '.join(f'{p} to {_ckpt_kimg(c):.1f} kimg' for p, c in ckpts.items())}; "
            f"PPL {n['ppl']} pairs per metric, separability {n['ls']} samples, FID {n['fid']} images; DCI/MIG/SAP of "
            f"{cfg.style_preset} {cfg.disentanglement_samples} samples; device {dev}; "
            f"budget {cfg.minutes:g} min. The paper trains 25M images at 1024x1024: values here only show the pipeline "
            "and the direction of the effects at this scale.",
        )
        fig_list = tuple((t, p) for t, p in figures if Path(p).is_file())
        report_dir = write_report(inputs, out / "report", ReportOptions(
            title=f"StyleGAN demo: {cfg.style_preset} vs {cfg.traditional_preset}", notes=notes,
            images=fig_list, include_run_images=False))  # the report adds its own substitute banner
        findings = qualitative_findings(model_table(records_frame(inputs.records)))
    total = clock.elapsed()
    meta = {"config": dataclasses.asdict(cfg), "device": str(dev), "samples": n, "costs_s_per_item": costs,
            "train_seconds_each": train_s, "stages_s": clock.stages, "total_s": round(total, 1), "substitutes": missing,
            "checkpoints": {p: str(c) for p, c in ckpts.items()}}
    (out / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
    (out / ".demo-in-progress").unlink(missing_ok=True)
    for f in findings:
        clock.say(f"finding: {f.verdict.upper()}: {f.claim}")
    if banner:
        clock.say("NOTE: measured with SUBSTITUTE feature networks (see above); not comparable with the paper.")
    clock.say(f"done in {total / 60:.1f} min; report: {report_dir / 'report.html'}")
    return DemoResult(out, report_dir, tuple(missing), tuple((f.claim, f.verdict) for f in findings), clock.stages, total)


def _ckpt_kimg(path: Path) -> float:
    """Images shown (thousands) when a snapshot was written."""
    from stylegan_core.checkpoint import checkpoint_info

    return checkpoint_info(path)["progress"]["nimg"] / 1000

"""`python -m benchmarks.bench`: the project's accuracy and speed goals, measured in one run.

    python -m benchmarks.bench --mnist-dir DIR [--out bench-results/latest.json] [--quick]
                               [--only SECTION ...]

Prints a table (goal, measured, target, PASS/FAIL) and writes JSON with every raw figure,
the verdicts and the machine they were measured on. Accuracies are on MNIST's official test
set (the bundled digits: the 80/20 stratified split of seed 0), seeded and averaged over
seeds. Every speed goal is a ratio against a reference timed in the same run, so the verdict
does not depend on how fast the machine is; timings are medians of repeats, and the two
sides of a ratio alternate (A B B A ...) so a neighbour's load slows both alike. The
references are plain PyTorch at torch's own default thread count; the product runs as
shipped (`models.default_threads()`). Check `uptime` first: on a shared machine a load
above the core count makes every figure slower and the ratios noisy.

`--only job_overhead live_embedding` (for example) runs just those sections and judges
just their goals. `--quick` runs every code path on tiny subsets with one repeat in well under a minute: a
smoke test for CI, whose PASS/FAIL mean nothing. This is not a test (the tests never time
anything); it exits 0 whenever it completes, goals missed or not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.data.datasets import Dataset, load_dataset, subset_indices
from digits_core.nn.models import build_model
from digits_core.presets import FAST, default_cnn_experiment, get_preset
from digits_core.threads import default_threads, setup_torch_threads
from digits_core.training.jobs import TrainingJob, run_experiment
from digits_core.training.learners import make_learner
from digits_core.training.train import Done, Epoch, Step, accuracy, batch_order, train

GIB = 2**30
REPO = Path(__file__).resolve().parents[1]  # where `python -m digits_core` runs from

# The NumPy MLP preset: 784-256-10, He init, no augmentation, momentum SGD, one-cycle, 10 epochs.
NUMPY_MLP = get_preset("mnist-mlp").build()

# The bundled-digits model that beats SVC(): the FAST preset as it is.
DIGITS_BEST = FAST.build()


@dataclass(frozen=True)
class Plan:
    """How much work each measurement does; FULL for the verdicts, QUICK for a smoke test."""

    mnist_train: int | None  # MNIST training images (None = all 60,000)
    mnist_test: int | None  # MNIST test images (None = all 10,000)
    seeds: tuple[int, ...]  # training seeds that accuracies are averaged over
    repeats: int  # repeats of each timing; the median is reported
    cnn_epochs: int  # the default CNN's CLI runs (its goal is for 3 epochs, the preset's own)
    mlp_epochs: int  # the NumPy MLP's run (its goal is for 10 epochs)
    digits_epochs: int  # the bundled-digits CNN's run
    digits_steps: int | None  # batches per digits epoch (None = a full pass)
    checkpoints: int  # test-set evaluations per epoch while timing "time to 99 %"
    tsne_points: int  # feature vectors embedded by t-SNE
    predictions: int  # canvas predictions timed while a training job runs
    cli_train_size: int | None  # --train-size of the CLI trainings (None = all 60,000)
    cli_seeds: tuple[int, ...] = (0, 1, 2)  # seeds of the 3-epoch CLI runs
    live_train_size: int | None = None  # MNIST images of the live-embedding comparison (S4: all)
    best: bool = False  # train the `best` preset (about 10 minutes)


DEFAULT = Plan(  # `make bench`: about 6 minutes; the 3-epoch runs and `best` only with --full
    mnist_train=None, mnist_test=None, seeds=(0, 1, 2), repeats=3, cnn_epochs=3,
    mlp_epochs=NUMPY_MLP.train.epochs, digits_epochs=DIGITS_BEST.train.epochs, digits_steps=None,
    checkpoints=20, tsne_points=2000, predictions=300, cli_train_size=None, cli_seeds=(0,),
)
FULL = replace(DEFAULT, cli_seeds=(0, 1, 2), best=True)  # `make bench-full`
QUICK = Plan(
    mnist_train=512, mnist_test=500, seeds=(0,), repeats=1, cnn_epochs=3, mlp_epochs=2,
    digits_epochs=1, digits_steps=8, checkpoints=4, tsne_points=100, predictions=20,
    cli_train_size=200, cli_seeds=(0,), live_train_size=256,
)

PREDICTION_GAP = 0.010  # seconds between two canvas predictions, as a person drawing would ask
IDLE_PREDICTIONS = 50  # predictions timed with nothing else running, for comparison
TARGET_ACC = 0.99  # "time to 99 %"


# ------------------------------------------------------------------ goals


@dataclass
class Goal:
    key: str  # stable name in the JSON
    goal: str  # what is measured, for a person
    measured: float | None  # None when it could not be measured
    target: float  # the threshold
    better: str  # "higher" or "lower": which side of the target passes
    unit: str  # "%", "x", "ms", "GiB", "pp" (percentage points): how to print it
    note: str = ""  # the figures behind the measurement, for a person
    passed: bool = False

    def __post_init__(self):
        m = self.measured
        ok = m is not None and math.isfinite(m)
        self.passed = ok and (m >= self.target if self.better == "higher" else m <= self.target)


def _fmt(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "%":
        return f"{100 * value:.2f} %"
    if unit == "pp":
        return f"{100 * value:+.2f} pp"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.2f} {unit}"


def table(goals: list[Goal]) -> str:
    rows = [("goal", "measured", "target", "result", "note")]
    for g in goals:
        sign = ">=" if g.better == "higher" else "<="
        rows.append((g.goal, _fmt(g.measured, g.unit), f"{sign} {_fmt(g.target, g.unit)}",
                     "PASS" if g.passed else "FAIL", g.note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ------------------------------------------------------------------ helpers


def median(values) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def alternate(a: Callable[[], float], b: Callable[[], float], repeats: int) -> tuple[list, list]:
    """Run a and b `repeats` times each in the order a b b a a b ..., so that neither side
    always goes first; each returns its own seconds."""
    ta, tb = [], []
    for i in range(repeats):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        t1, t2 = first(), second()
        ta.append(t1 if i % 2 == 0 else t2)
        tb.append(t2 if i % 2 == 0 else t1)
    return ta, tb


@contextmanager
def torch_threads(n: int):
    """Torch's intra-op thread count set to `n` for the calling thread, restored after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def load_mnist_data(mnist_dir: str, plan: Plan) -> Dataset:
    """The official split, cut to the plan's sizes (stratified training subset, first test images)."""
    data = load_dataset(DataConfig(dataset="mnist", split="official", mnist_dir=mnist_dir))
    tr = np.arange(len(data.labels_train))
    if plan.mnist_train is not None and plan.mnist_train < len(tr):
        tr = subset_indices(data.labels_train, plan.mnist_train, 0)
    te = slice(None, plan.mnist_test)
    out = Dataset("mnist", data.images_train[tr], data.labels_train[tr],
                  data.images_test[te], data.labels_test[te], data.normalizer)
    out.x_train, out.x_test  # normalise once, outside every timing
    return out


def with_data(exp: Experiment, mnist_dir: str, **train) -> Experiment:
    exp = Experiment.from_dict(exp.to_dict())
    exp.data.mnist_dir = mnist_dir
    for k, v in train.items():
        setattr(exp.train, k, v)
    return exp


# ------------------------------------------------------------------ default CNN


def cnn_run_with_checkpoints(exp: Experiment, data: Dataset, per_epoch: int) -> dict:
    """Train, evaluating the test set `per_epoch` times an epoch with the clock stopped,
    until it first reads >= 99 % (then at each epoch's end only).

    Returns the checkpoints [(step, training seconds, test accuracy)], the final test
    accuracy, the seconds to the first checkpoint at >= 99 % (None if never) and the model.
    The last checkpoint of each epoch takes the accuracy that train() itself measures then.
    """
    tc = exp.train
    model = build_model(exp.model, data.image_shape, seed=tc.seed, device=tc.device)
    n = len(data.labels_train)
    steps = tc.steps_per_epoch or math.ceil(n / min(tc.batch_size, n))
    marks = {max(1, round(k * steps / per_epoch)) for k in range(1, tc.epochs * per_epoch + 1)}
    clock, resumed, checkpoints, final, crossed = 0.0, time.perf_counter(), [], None, False
    for ev in train(model, data, tc):
        if isinstance(ev, Step) and ev.step % steps and crossed:
            continue  # 99 % is reached: only the epoch's end is scored from here (bench time)
        if isinstance(ev, Step) and (ev.step in marks or ev.step % steps == 0):
            clock += time.perf_counter() - resumed
            epoch_end = ev.step % steps == 0  # train() measures the test set itself next
            acc = None if epoch_end else accuracy(model, data.x_test, data.labels_test)
            checkpoints.append((ev.step, clock, acc))
            crossed = crossed or (acc is not None and acc >= TARGET_ACC)
            resumed = time.perf_counter()
        elif isinstance(ev, Epoch):
            checkpoints[-1] = (*checkpoints[-1][:2], ev.test_acc)
            crossed = crossed or (ev.test_acc is not None and ev.test_acc >= TARGET_ACC)
            resumed = time.perf_counter()
        elif isinstance(ev, Done):
            final = ev.test_acc
    reached = [t for _, t, acc in checkpoints if acc is not None and acc >= TARGET_ACC]
    return dict(checkpoints=checkpoints, final_acc=final, train_s=clock,
                time_to_99=reached[0] if reached else None, model=model)


def lenet_epoch(data: Dataset, seed: int, threads: int) -> dict:
    """The reference: a plain LeNet-style CNN, one epoch, written as a PyTorch tutorial would.

    conv 16 5x5 - pool - conv 32 5x5 - pool - fc 128 - fc 10, Adam 1e-3, batch 128, the
    default (NCHW) memory layout, a DataLoader over a TensorDataset, torch's own default
    thread count (`threads`). Returns its seconds and its test accuracy (measured after the
    clock stops).
    """
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.from_numpy(data.x_train).unsqueeze(1)
    y = torch.from_numpy(data.labels_train)
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))

    def epoch():
        net.train()
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    load = os.getloadavg()[0]
    with torch_threads(threads):
        seconds, _ = timed(epoch)
    net.eval()
    with torch.inference_mode():
        logits = net(torch.from_numpy(data.x_test).unsqueeze(1))
    acc = float((logits.argmax(1).numpy() == data.labels_test).mean())
    return dict(seconds=seconds, test_acc=acc, load_at_start=load)


def bench_default_cnn(data: Dataset, mnist_dir: str, plan: Plan, ref_threads: int) -> tuple[dict, object]:
    """1-epoch runs with checkpoints, each after a reference epoch; returns seed 0's model too."""
    short, refs = [], []
    for seed in plan.seeds:
        refs.append(lenet_epoch(data, seed, ref_threads))
        exp = with_data(default_cnn_experiment(1, seed), mnist_dir)
        short.append(dict(seed=seed, load_at_start=os.getloadavg()[0],
                          **cnn_run_with_checkpoints(exp, data, plan.checkpoints)))
    models = [r.pop("model") for r in short]
    ttt = median([math.inf if r["time_to_99"] is None else r["time_to_99"] for r in short])
    ref = median([r["seconds"] for r in refs])
    out = dict(
        experiment=default_cnn_experiment(1, 0).to_dict(),
        one_epoch=short,
        reference_lenet=dict(runs=refs, median_epoch_s=ref),
        acc_1epoch_mean=float(np.mean([r["final_acc"] for r in short])),
        time_to_99_median_s=None if math.isinf(ttt) else ttt,
        time_to_99_ratio=None if math.isinf(ttt) else ttt / ref,
        epoch_train_s_median=median([r["train_s"] for r in short]),
    )
    return out, models[0]


# ------------------------------------------------------------------ NumPy MLP


def bench_numpy_mlp_accuracy(data: Dataset, mnist_dir: str, plan: Plan) -> dict:
    runs = []
    for seed in plan.seeds:
        exp = with_data(NUMPY_MLP, mnist_dir, epochs=plan.mlp_epochs, seed=seed)
        seconds, job = timed(lambda: run_experiment(exp, data=data))
        h = job.snapshot()
        runs.append(dict(seed=seed, final_acc=h.final_test_acc, seconds=seconds,
                         test_acc_per_epoch=h.test_acc))
    return dict(experiment=NUMPY_MLP.to_dict(), runs=runs,
                acc_mean=float(np.mean([r["final_acc"] for r in runs])))


MLP_SPEED = TrainConfig(epochs=1, batch_size=128, lr=0.05, optimizer="sgd", seed=0)


def numpy_mlp_epoch(data: Dataset, batches: list[np.ndarray]) -> float:
    """One epoch of the NumPy 784-256-10 MLP, SGD, float32, over the given batches."""
    model = build_model(ModelConfig(family="numpy-mlp", hidden=[256]), data.image_shape)
    learner = make_learner(model, MLP_SPEED)
    x, y = learner.prepare(data.x_train, data.labels_train)

    def epoch():
        for idx in batches:
            learner.step(x[idx], y[idx], MLP_SPEED.lr)

    return timed(epoch)[0]


def torch_mlp_epoch(data: Dataset, batches: list[np.ndarray], threads: int) -> float:
    """The same MLP and batches in plain PyTorch on torch's default `threads`; each step also
    reads back the loss and the number of correct predictions, as the NumPy step returns them."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(net.parameters(), lr=MLP_SPEED.lr)
    x = torch.from_numpy(data.x_train.reshape(len(data.x_train), -1))
    y = torch.from_numpy(data.labels_train)

    def epoch():
        for idx in batches:
            i = torch.from_numpy(idx)
            xb, yb = x[i], y[i]
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item(), int((logits.argmax(1) == yb).sum())

    with torch_threads(threads):
        return timed(epoch)[0]


def bench_mlp_speed(data: Dataset, plan: Plan, ref_threads: int) -> dict:
    rng = np.random.default_rng(0)
    batches = list(batch_order(len(data.labels_train), MLP_SPEED, rng))
    ours, ref = alternate(lambda: numpy_mlp_epoch(data, batches),
                          lambda: torch_mlp_epoch(data, batches, ref_threads), plan.repeats)
    return dict(numpy_s=ours, torch_s=ref, numpy_median_s=median(ours),
                torch_median_s=median(ref), ratio=median(ours) / median(ref),
                images=len(data.labels_train), batch_size=MLP_SPEED.batch_size)


# ------------------------------------------------------------------ job overhead


JOB_OVERHEAD_EPOCHS = 5  # about 3 s of training: the first and last frames, the job's start and
# its final checkpoint are fixed costs that a shorter run would not amortise (nor does a user's)


def bench_job_overhead(data: Dataset, mnist_dir: str, plan: Plan) -> dict:
    """A training job as a user's runs (`run_experiment` with a run folder, as the CLI and,
    in a thread, the dashboard run it: events, history, stop and divergence checks, the live
    accuracy, the embedding frames, checkpoints while it trains and the final one) against
    a bare loop over the same model, batches and final test evaluation: JOB_OVERHEAD_EPOCHS
    epochs of the NumPy MLP. One untimed pair first (imports, caches); then 2 * repeats + 1
    pairs, interleaved; the figure is the median of the pairs' ratios."""
    from digits_core.store.recorder import RunRecorder

    exp = Experiment(
        data=DataConfig(dataset="mnist", split="official", mnist_dir=mnist_dir),
        model=ModelConfig(family="numpy-mlp", hidden=[256]),
        train=replace(MLP_SPEED, epochs=1 if plan is QUICK else JOB_OVERHEAD_EPOCHS,
                      eval_test_every_epoch=False), name="overhead",
    )
    measured = []

    def job(runs: str) -> float:
        seconds, ended = timed(lambda: run_experiment(exp, data=data, recorder=RunRecorder(runs, exp)))
        h = ended.snapshot()
        measured.append(dict(probes=len(h.probe_steps), frames=h.frames, status=h.status))
        return seconds

    def bare() -> float:
        def loop():
            tc = exp.train
            model = build_model(exp.model, data.image_shape, seed=tc.seed)
            learner = make_learner(model, tc)
            x, y = learner.prepare(data.x_train, data.labels_train)
            rng = np.random.default_rng(tc.seed)
            for _ in range(tc.epochs):
                for idx in batch_order(len(y), tc, rng):
                    learner.step(learner.take(x, idx), learner.take(y, idx), tc.lr)
            return accuracy(model, data.x_test, data.labels_test)

        return timed(loop)[0]

    with tempfile.TemporaryDirectory() as runs:
        job(runs), bare()  # warm-up, untimed
        measured.clear()
        job_s, bare_s = alternate(lambda: job(runs), bare, 2 * plan.repeats + 1)
    # Each pair ran back to back, so its ratio cancels the load of the moment.
    ratios = [j / b for j, b in zip(job_s, bare_s)]
    return dict(job_s=job_s, bare_s=bare_s, job_median_s=median(job_s), epochs=exp.train.epochs,
                bare_median_s=median(bare_s), overhead=median(ratios) - 1, ratios=ratios,
                probes=median([m["probes"] for m in measured]),
                frames=median([m["frames"] for m in measured]))


def bench_live_embedding(data: Dataset, mnist_dir: str, plan: Plan) -> dict:
    """The S4 system with its live t-SNE (frames of 500 test points re-embedded as it trains,
    the first before its first step and the last after its last included) against the same
    run without it: one epoch on the benchmark's MNIST training set; untimed warm-ups first,
    then `repeats` interleaved pairs, the median of their ratios."""
    exp = with_data(get_preset("S4").build(), mnist_dir, epochs=1)
    if plan.live_train_size is not None:
        keep = subset_indices(data.labels_train, plan.live_train_size, seed=0)
        data = Dataset("mnist", data.images_train[keep], data.labels_train[keep],
                       data.images_test, data.labels_test, data.normalizer)
    live = Experiment.from_dict(exp.to_dict())
    live.train.live_embedding, exp.train.live_embedding = True, False  # the preset has it on
    frames = []

    def run(e: Experiment) -> float:
        seconds, job = timed(lambda: run_experiment(e, data=data))
        if e.train.live_embedding:
            frames.append(job.snapshot().frames)
        return seconds

    run(exp), run(live)  # warm-up: torch's first convolutions, openTSNE's import
    frames.clear()
    live_s, plain_s = alternate(lambda: run(live), lambda: run(exp), plan.repeats)
    ratios = [a / b for a, b in zip(live_s, plain_s)]
    return dict(live_s=live_s, plain_s=plain_s, frames=frames, overhead=median(ratios) - 1, ratios=ratios)


# ------------------------------------------------------------------ t-SNE


def tsne_vs_sklearn(features: np.ndarray, *, seed: int = 0, repeats: int = 3) -> dict[str, float]:
    """Time and quality of `embed(method="tsne")` against sklearn's `TSNE(random_state=seed)`.

    Runs alternate (ours, sklearn, ours, ...) so a load that comes and goes hits both
    alike. Returns medians over `repeats`: time_ours, time_sklearn (wall seconds), ratio
    (time_ours / time_sklearn), trust_ours, trust_sklearn (trustworthiness, 10 neighbours),
    and cpu_ours, cpu_sklearn (process CPU seconds, all threads: steadier than wall time
    on a shared machine, where sklearn's threads also spin waiting for each other).
    """
    from sklearn.manifold import TSNE, trustworthiness

    from digits_core.analysis.embedding import embed

    x = np.ascontiguousarray(features, dtype=np.float64)
    runs = {
        "ours": lambda: embed(x, method="tsne", seed=seed),
        "sklearn": lambda: TSNE(random_state=seed).fit_transform(x),
    }
    samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            y = run()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            samples[name].append((wall, cpu, trustworthiness(x, y, n_neighbors=10)))
    out: dict[str, float] = {}
    for name, rows in samples.items():
        wall, cpu, trust = np.median(np.array(rows), axis=0)
        out |= {f"time_{name}": float(wall), f"cpu_{name}": float(cpu), f"trust_{name}": float(trust)}
    out["ratio"] = out["time_ours"] / out["time_sklearn"]
    return out


def bench_tsne(model, data: Dataset, plan: Plan) -> dict:
    from digits_core.analysis.embedding import sample_points

    idx = sample_points(data.labels_test, plan.tsne_points, seed=0)
    features = model.features(data.x_test[idx])
    out = tsne_vs_sklearn(features, seed=0, repeats=plan.repeats)
    out.update(points=len(idx), feature_dim=int(features.shape[1]),
               trust_gap=out["trust_ours"] - out["trust_sklearn"])
    return out


# ------------------------------------------------------------------ canvas latency


def canvases(data: Dataset, n: int = 16) -> list[np.ndarray]:
    """Test digits enlarged to 280x280 RGBA drawings, white ink on black as the canvas sends."""
    from scipy import ndimage

    out = []
    for img in data.images_test[:n]:
        big = np.clip(ndimage.zoom(img.astype(np.float32), 10, order=1), 0, 255).astype(np.uint8)
        rgba = np.zeros((280, 280, 4), np.uint8)
        rgba[..., :3], rgba[..., 3] = big[..., None], 255
        out.append(rgba)
    return out


def prediction_times(run, drawings: list[np.ndarray], n: int, gap: float) -> list[float]:
    """Milliseconds of `n` predict_canvas calls, `gap` seconds apart."""
    from digits_core.analysis.predict import predict_canvas

    times = []
    for i in range(n):
        t, _ = timed(lambda: predict_canvas(run, drawings[i % len(drawings)]))
        times.append(1000 * t)
        time.sleep(gap)
    return times


def stage_times(run, drawings: list[np.ndarray], n: int, gap: float) -> dict:
    """Where a prediction's time goes: canvas_to_image, then normaliser + model.probs (ms)."""
    from digits_core.images.drawing import canvas_to_image

    pre, model = [], []
    for i in range(n):
        t, image = timed(lambda: canvas_to_image(drawings[i % len(drawings)], "mnist"))
        pre.append(1000 * t)
        model.append(1000 * timed(lambda: run.model.probs(run.normalizer(image[None])))[0])
        time.sleep(gap)
    return dict(preprocess=_percentiles(pre), model=_percentiles(model))


def _percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return dict(p50_ms=float(np.percentile(a, 50)), p90_ms=float(np.percentile(a, 90)),
                p99_ms=float(np.percentile(a, 99)), max_ms=float(a.max()), n=len(a))


def bench_canvas(model, data: Dataset, mnist_dir: str, plan: Plan) -> dict:
    """predict_canvas with the default CNN, idle and while a TrainingJob of it runs."""
    from digits_core.store.history import History
    from digits_core.store.runs import Run

    exp = with_data(default_cnn_experiment(1, 0), mnist_dir)
    run = Run(None, exp, History(), {}, model, data.normalizer, None)
    drawings = canvases(data)
    prediction_times(run, drawings, 5, 0.0)  # warm-up: first calls build caches
    n_idle = min(IDLE_PREDICTIONS, plan.predictions)
    idle = prediction_times(run, drawings, n_idle, PREDICTION_GAP)
    idle_stages = stage_times(run, drawings, n_idle, PREDICTION_GAP)
    job = TrainingJob(with_data(default_cnn_experiment(100, 1), mnist_dir), data=data).start()
    while job.snapshot().active and job.snapshot().step < 3:
        time.sleep(0.05)
    step0 = job.snapshot().step
    busy = prediction_times(run, drawings, plan.predictions, PREDICTION_GAP)
    busy_stages = stage_times(run, drawings, n_idle, PREDICTION_GAP)
    h = job.snapshot()
    job.stop()
    job.wait()
    return dict(idle=_percentiles(idle), busy=_percentiles(busy), busy_ms=busy,
                idle_stages=idle_stages, busy_stages=busy_stages,
                trainer_running_throughout=h.status == "running",
                trainer_steps_during=h.step - step0, trainer_images_per_s=h.images_per_s,
                gap_s=PREDICTION_GAP)


# ------------------------------------------------------------------ the CLI: accuracy and memory


# Runs `python -m digits_core ARGS` as -m would, then writes the process's peak RSS (VmHWM, in
# KiB) to the file named first. Not wait4's ru_maxrss: a child forked from this big process
# inherits this process's high-water mark across exec, and would report it.
_PEAK_RSS_RUNNER = """
import atexit, runpy, sys
out = sys.argv[1]
def peak():
    with open("/proc/self/status") as f:
        kib = next(line.split()[1] for line in f if line.startswith("VmHWM"))
    with open(out, "w") as f:
        f.write(kib)
atexit.register(peak)
sys.argv = ["digits_core", *sys.argv[2:]]
runpy.run_module("digits_core", run_name="__main__", alter_sys=True)
"""


def cli_training(mnist_dir: str, seed: int, epochs: int, train_size: int | None) -> dict:
    """`python -m digits_core train --preset default-cnn` in a child: its test accuracy, seconds
    and peak RSS (the child's own high-water mark; a 20 Hz psutil poll is kept as a check)."""
    import psutil

    with tempfile.TemporaryDirectory(prefix="digitlab-bench-") as tmp:
        args = ["train", "--preset", "default-cnn", "--epochs", str(epochs), "--seed", str(seed),
                "--mnist-dir", mnist_dir, "--out", tmp, "--quiet"]
        if train_size is not None:
            args += ["--train-size", str(train_size)]
        hwm, log = Path(tmp) / "peak", Path(tmp) / "log"
        load, t0, polled = os.getloadavg()[0], time.perf_counter(), 0
        with open(log, "w") as f:
            proc = subprocess.Popen([sys.executable, "-c", _PEAK_RSS_RUNNER, str(hwm), *args],
                                    stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
            while proc.poll() is None:
                polled = max(polled, _tree_rss(psutil, proc.pid))
                time.sleep(0.05)
        seconds, out = time.perf_counter() - t0, log.read_text()
        peak = int(hwm.read_text()) * 1024 if hwm.is_file() else None
    acc = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("test accuracy")]
    return dict(seed=seed, command="python -m digits_core " + " ".join(args),
                returncode=proc.returncode, final_acc=acc[0] if acc else None, seconds=seconds,
                peak_rss_gib=None if peak is None else peak / GIB, polled_peak_rss_gib=polled / GIB,
                load_at_start=load, output_tail=out[-300:])


def _tree_rss(psutil, pid: int) -> int:
    try:
        p = psutil.Process(pid)
        return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)])
    except psutil.Error:
        return 0


def bench_default_cnn_cli(mnist_dir: str, plan: Plan) -> dict:
    """The preset as the CLI trains it, for `plan.cnn_epochs` epochs, once per seed.

    Nothing here is timed, so the seeds run side by side, as many at once as the cores
    hold at the product's own thread count (two of its one-thread runs on two cores).
    """
    from concurrent.futures import ThreadPoolExecutor

    at_once = max(1, (os.cpu_count() or 1) // default_threads())
    with ThreadPoolExecutor(min(at_once, len(plan.cli_seeds))) as pool:
        runs = list(pool.map(
            lambda s: cli_training(mnist_dir, s, plan.cnn_epochs, plan.cli_train_size), plan.cli_seeds))
    ok = [r for r in runs if r["returncode"] == 0 and r["final_acc"] is not None]
    peaks = [r["peak_rss_gib"] for r in ok if r["peak_rss_gib"] is not None]
    return dict(
        runs=runs, failed=len(runs) - len(ok), at_once=at_once, seeds=list(plan.cli_seeds),
        acc_mean=float(np.mean([r["final_acc"] for r in ok])) if len(ok) == len(runs) else None,
        peak_rss_gib=max(peaks) if len(peaks) == len(runs) else None,
        polled_peak_rss_gib=max(r["polled_peak_rss_gib"] for r in runs),
    )


def bench_best(data: Dataset, mnist_dir: str, plan: Plan) -> dict:
    """The `best` preset, once (seed 0): its test accuracy and its training time."""
    if not plan.best:
        return dict(skipped=True)
    exp = with_data(get_preset("best").build(), mnist_dir)
    seconds, job = timed(lambda: run_experiment(exp, data=data))
    return dict(skipped=False, final_acc=job.snapshot().final_test_acc, seconds=seconds)


# ------------------------------------------------------------------ bundled digits


def bench_digits(plan: Plan) -> dict:
    """SVC() as the reference and DIGITS_BEST over the seeds, on the same split."""
    from sklearn.svm import SVC

    data = load_dataset(DIGITS_BEST.data)
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64)  # noqa: E731
    svc = SVC().fit(flat(data.images_train), data.labels_train)
    svc_acc = float((svc.predict(flat(data.images_test)) == data.labels_test).mean())
    runs = []
    for seed in plan.seeds:
        exp = Experiment.from_dict(DIGITS_BEST.to_dict())
        exp.train.seed, exp.train.epochs = seed, plan.digits_epochs
        exp.train.steps_per_epoch = plan.digits_steps
        seconds, job = timed(lambda: run_experiment(exp, data=data))
        runs.append(dict(seed=seed, final_acc=job.snapshot().final_test_acc, seconds=seconds))
    return dict(split=asdict(DIGITS_BEST.data), test_images=len(data.labels_test),
                svc_acc=svc_acc, experiment=DIGITS_BEST.to_dict(), runs=runs,
                acc_mean=float(np.mean([r["final_acc"] for r in runs])),
                acc_min=float(np.min([r["final_acc"] for r in runs])))


SWEEP_WORKERS = (1, 2, 4)  # process-pool sizes the sweep is timed on


def bench_sweep_scaling(plan: Plan) -> dict:
    """One sweep of 8 runs (bundled digits, NumPy MLP, 4 learning rates x 2 widths, no early
    stopping) on 1, 2 and 4 workers of the process pool, each worker training on one thread:
    wall time from Start to the last run's end, with the pool warm (its workers' start is
    not counted). Speed-up t1 / tn and efficiency per worker t1 / (n tn); past the machine's
    free cores the curve flattens."""
    from digits_core.serve.pool import ProcessExecutor
    from digits_core.serve.runner import JobRunner
    from digits_core.serve.sweep import Axis, Sweep, SweepSpec

    base = Experiment(DataConfig(dataset="digits"), ModelConfig(family="numpy-mlp", hidden=[64]),
                      TrainConfig(epochs=2 if plan is QUICK else 40, batch_size=32), name="sweep")
    spec = SweepSpec(base, [Axis("lr", [0.003, 0.01, 0.03, 0.1]), Axis("width", [32, 64])], halving=False)
    workers = SWEEP_WORKERS[:2] if plan is QUICK else SWEEP_WORKERS
    threads = os.environ.get("DIGITLAB_THREADS")
    os.environ["DIGITLAB_THREADS"] = "1"  # a worker per core, as a cluster's one-CPU jobs
    wall, finished = {}, {}
    try:
        for n in workers:
            pool = ProcessExecutor(n)
            try:
                deadline = time.monotonic() + 300
                while len(pool._idle) < n and time.monotonic() < deadline:  # warm: torch imported
                    time.sleep(0.1)
                with tempfile.TemporaryDirectory() as runs:
                    runner = JobRunner(runs, executor=pool, max_jobs=n)
                    sweep = Sweep(runner, spec, tick_s=0.05)
                    wall[n], _ = timed(lambda: sweep.start().wait())
                    finished[n] = sum(r.status == "finished" for r in sweep.results())
            finally:
                pool.close()
    finally:
        if threads is None:
            os.environ.pop("DIGITLAB_THREADS", None)
        else:
            os.environ["DIGITLAB_THREADS"] = threads
    t1 = wall[workers[0]]
    return dict(runs=8, epochs=base.train.epochs, cpus_usable=len(os.sched_getaffinity(0)),
                wall_s={str(n): s for n, s in wall.items()}, finished={str(n): k for n, k in finished.items()},
                speedup={str(n): t1 / s for n, s in wall.items()},
                efficiency={str(n): t1 / (n * s) for n, s in wall.items()})


# ------------------------------------------------------------------ the whole run


def goals(f: dict, plan: Plan) -> list[Goal]:
    """The verdicts, from the raw figures of `run_bench`: those whose sections ran (`--only`)."""
    cnn, cli, mlp, dig = (f.get(k) for k in ("default_cnn", "default_cnn_cli", "numpy_mlp", "digits"))
    speed, job, tsne, canvas = (f.get(k) for k in ("mlp_speed", "job_overhead", "tsne", "canvas"))
    live, best_run = f.get("live_embedding"), f.get("best")
    if cnn is not None:
        ref = cnn["reference_lenet"]["median_epoch_s"]
        best = max(acc or 0.0 for r in cnn["one_epoch"] for _, _, acc in r["checkpoints"])
        reached = cnn["time_to_99_median_s"]
    rows = [  # (the section a goal reads, the goal)
        ("default_cnn", lambda: Goal("cnn_acc_1epoch", "default CNN, MNIST test, 1 epoch (mean of seeds)",
             cnn["acc_1epoch_mean"], 0.991, "higher", "%", _accs(cnn["one_epoch"]))),
        ("default_cnn_cli", lambda: Goal("cnn_acc_3epochs", f"default CNN, MNIST test, {plan.cnn_epochs} epochs (mean of "
             f"{len(cli['runs'])} seed{'s' if len(cli['runs']) > 1 else ''})",
             cli["acc_mean"], 0.994, "higher", "%", _accs(cli["runs"])
             + ("" if len(cli["runs"]) > 1 else "; --full for 3 seeds"))),
        ("best", lambda: Goal("best_acc", "`best` preset, MNIST test, within 10 minutes",
             None if best_run.get("skipped") or best_run["seconds"] > 600 else best_run["final_acc"],
             0.996, "higher", "%", "--full runs it" if best_run.get("skipped")
             else f"{100 * best_run['final_acc']:.2f} % in {best_run['seconds']:.0f} s")),
        ("numpy_mlp", lambda: Goal("numpy_mlp_acc", f"NumPy MLP 784-256-10, MNIST test, {plan.mlp_epochs} epochs (mean)",
             mlp["acc_mean"], 0.982, "higher", "%", _accs(mlp["runs"]))),
        ("digits", lambda: Goal("digits_acc", "bundled digits, best model (mean of seeds)", dig["acc_mean"], 0.992,
             "higher", "%", _accs(dig["runs"]))),
        ("digits", lambda: Goal("digits_vs_svc", "  ... minus SVC() on the same split", dig["acc_mean"] - dig["svc_acc"],
             1e-9, "higher", "pp", f"SVC {100 * dig['svc_acc']:.2f} %")),
        ("default_cnn", lambda: Goal("time_to_99_ratio", "time to 99 % / LeNet reference epoch", cnn["time_to_99_ratio"],
             0.5, "lower", "x",
             (f"{reached:.1f} s" if reached is not None else f"never; best {100 * best:.2f} %")
             + f"; 1-epoch run {cnn['epoch_train_s_median']:.1f} s; reference {ref:.1f} s")),
        ("mlp_speed", lambda: Goal("mlp_epoch_ratio", "NumPy MLP epoch / PyTorch MLP epoch", speed["ratio"], 1.0, "lower",
             "x", f"{speed['numpy_median_s']:.2f} s vs {speed['torch_median_s']:.2f} s")),
        ("job_overhead", lambda: Goal("job_overhead", "training job (run folder, live accuracy, frames) over a bare loop",
             job["overhead"], 0.05, "lower", "%",
             f"{job['job_median_s']:.2f} s vs {job['bare_median_s']:.2f} s, NumPy MLP {job['epochs']} "
             f"epochs, {job['probes']:.0f} probes, {job['frames']:.0f} frames; median of "
             f"{len(job['job_s'])} pairs")),
        ("live_embedding", lambda: Goal("live_embedding_overhead", "S4 with its live t-SNE over S4 without", live["overhead"], 0.10,
             "lower", "%", f"{median(live['live_s']):.1f} s vs {median(live['plain_s']):.1f} s; "
             f"{median(live['frames']) if live['frames'] else 0:.0f} frames; median of "
             f"{len(live['live_s'])} pairs")),
        ("tsne", lambda: Goal("tsne_time_ratio", "t-SNE time / sklearn TSNE()", tsne["ratio"], 0.5, "lower", "x",
             f"{tsne['time_ours']:.1f} s vs {tsne['time_sklearn']:.1f} s")),
        ("tsne", lambda: Goal("tsne_trust_gap", "t-SNE trustworthiness minus sklearn's", tsne["trust_gap"], -0.01,
             "higher", "pp", f"{tsne['trust_ours']:.4f} vs {tsne['trust_sklearn']:.4f}")),
        ("canvas", lambda: Goal("canvas_p50", "canvas prediction p50 while training", canvas["busy"]["p50_ms"], 2.0,
             "lower", "ms", f"idle {canvas['idle']['p50_ms']:.2f} ms; of it preprocessing "
             f"{canvas['busy_stages']['preprocess']['p50_ms']:.2f}, model "
             f"{canvas['busy_stages']['model']['p50_ms']:.2f}")),
        ("canvas", lambda: Goal("canvas_p90", "canvas prediction p90 while training", canvas["busy"]["p90_ms"], 5.0,
             "lower", "ms", f"idle {canvas['idle']['p90_ms']:.2f} ms; max busy {canvas['busy']['max_ms']:.1f} ms")),
        ("default_cnn_cli", lambda: Goal("train_peak_rss", "peak RSS, `train --preset default-cnn` (max of seeds)",
             cli["peak_rss_gib"], 1.5, "lower", "GiB",
             f"20 Hz poll {cli['polled_peak_rss_gib']:.2f} GiB; {cli['failed']} runs failed")),
    ]
    return [make() for section, make in rows if section in f]


def _accs(runs: list[dict]) -> str:
    return "seeds: " + ", ".join("-" if r["final_acc"] is None else f"{100 * r['final_acc']:.2f}"
                                 for r in runs)


def machine_info() -> dict:
    import torch

    def git(*args):
        try:
            r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
            return r.stdout.strip() if r.returncode == 0 else None
        except OSError:
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return dict(
        cpu_count=os.cpu_count(), cpus_usable=len(os.sched_getaffinity(0)),
        torch=torch.__version__, numpy=np.__version__,
        python=platform.python_version(), platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        git_commit=git("rev-parse", "HEAD"), git_dirty=None if status is None else bool(status),
    )


SECTIONS = ("default_cnn", "default_cnn_cli", "numpy_mlp", "mlp_speed", "job_overhead",
            "live_embedding", "digits", "best", "tsne", "canvas", "sweep_scaling")
NEEDS = {"tsne": "default_cnn", "canvas": "default_cnn"}  # they measure the model it trains


def run_bench(mnist_dir: str, plan: Plan, log: Callable[[str], None],
              only: list[str] | None = None) -> dict:
    """Every measurement in turn (or those named in `only`, with the sections they need);
    returns the JSON-ready report."""
    import torch

    ref_threads = torch.get_num_threads()  # torch's own default: what the references run on
    setup_torch_threads()
    started, load_start = time.time(), os.getloadavg()
    data = load_mnist_data(mnist_dir, plan)
    figures, loads, seconds = {}, {}, {}
    cnn_model = None

    wanted = set(only or SECTIONS) | {NEEDS[k] for k in only or () if k in NEEDS}

    def section(name: str, fn: Callable[[], dict]) -> None:
        if name not in wanted:
            return
        log(f"{name} (load {os.getloadavg()[0]:.2f}) ...")
        loads[name] = os.getloadavg()[0]
        seconds[name], figures[name] = timed(fn)

    def default_cnn():
        nonlocal cnn_model
        out, cnn_model = bench_default_cnn(data, mnist_dir, plan, ref_threads)
        return out

    section("default_cnn", default_cnn)
    section("default_cnn_cli", lambda: bench_default_cnn_cli(mnist_dir, plan))
    section("numpy_mlp", lambda: bench_numpy_mlp_accuracy(data, mnist_dir, plan))
    section("mlp_speed", lambda: bench_mlp_speed(data, plan, ref_threads))
    section("job_overhead", lambda: bench_job_overhead(data, mnist_dir, plan))
    section("live_embedding", lambda: bench_live_embedding(data, mnist_dir, plan))
    section("digits", lambda: bench_digits(plan))
    section("best", lambda: bench_best(data, mnist_dir, plan))
    section("tsne", lambda: bench_tsne(cnn_model, data, plan))
    section("canvas", lambda: bench_canvas(cnn_model, data, mnist_dir, plan))
    section("sweep_scaling", lambda: bench_sweep_scaling(plan))
    gs = goals(figures, plan)
    return dict(
        quick=plan is QUICK, plan=asdict(plan), sections=[k for k in SECTIONS if k in wanted],
        started=started, wall_s=time.time() - started,
        machine=dict(machine_info(), load_start=list(load_start), load_end=list(os.getloadavg()),
                     torch_threads_references=ref_threads, torch_threads_product=default_threads()),
        load_1min_at_section=loads, section_s=seconds,
        goals=[asdict(g) for g in gs], all_passed=all(g.passed for g in gs), figures=figures,
    )


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n")[0])
    p.add_argument("--mnist-dir", required=True, help="folder with the four MNIST IDX files")
    p.add_argument("--out", help="JSON report to write (default bench-results/latest.json; "
                   "bench-results/only.json with --only)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run; verdicts mean nothing")
    p.add_argument("--full", action="store_true", help="3 seeds of the 3-epoch runs and the `best` "
                   "preset (about 25 minutes)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                   help="run only these sections (tsne and canvas also run default_cnn, whose "
                   f"model they measure): {', '.join(SECTIONS)}")
    a = p.parse_args(argv)
    a.out = a.out or ("bench-results/only.json" if a.only else "bench-results/latest.json")
    # The benchmark has the machine to itself, as the CLI does: train on every core.
    os.environ.setdefault("DIGITLAB_THREADS", str(os.cpu_count() or 1))
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    report = _jsonable(run_bench(a.mnist_dir, QUICK if a.quick else FULL if a.full else DEFAULT, log,
                                 only=a.only))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(table([Goal(**g) for g in report["goals"]]))
    sw = report["figures"].get("sweep_scaling")
    if sw:
        print("\nsweep of 8 runs on the process pool: " + "; ".join(
            f"{n} worker{'s' if n != '1' else ''} {sw['wall_s'][n]:.1f} s (x{sw['speedup'][n]:.2f}, "
            f"{sw['efficiency'][n]:.0%} per worker)" for n in sw["wall_s"]))
    m = report["machine"]
    print(f"\n{sum(g['passed'] for g in report['goals'])}/{len(report['goals'])} goals met"
          f"{' (quick: verdicts mean nothing)' if a.quick else ''}; "
          f"{report['wall_s']:.0f} s wall; load {m['load_start'][0]:.2f} -> {m['load_end'][0]:.2f} "
          f"on {m['cpu_count']} CPUs; torch {m['torch']}; report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

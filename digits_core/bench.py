"""`python -m digits_core.bench`: the project's accuracy and speed goals, measured in one run.

    python -m digits_core.bench --mnist-dir DIR [--out bench-results/latest.json] [--quick]

Prints a table (goal, measured, target, PASS/FAIL) and writes JSON with every raw figure,
the verdicts and the machine they were measured on. Accuracies are on MNIST's official test
set (the bundled digits: the 80/20 stratified split of seed 0), seeded and averaged over
seeds. Every speed goal is a ratio against a reference timed in the same run, so the verdict
does not depend on how fast the machine is; timings are medians of repeats, and the two
sides of a ratio alternate (A B A B) so a neighbour's load slows both alike.

`--quick` runs every code path on tiny subsets with one repeat in well under a minute: a
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
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .config import ConvBlock, DataConfig, Experiment, ModelConfig, TrainConfig
from .data import Dataset, load_dataset, subset_indices
from .models import build_model, setup_torch_threads
from .presets import FAST, default_cnn_experiment
from .train import Done, Step, TrainingJob, accuracy, batch_order, run_experiment, train

GIB = 2**30

# The NumPy MLP that meets its goal: 784-256-10, He init, no augmentation, 10 epochs.
NUMPY_MLP = Experiment(
    data=DataConfig(dataset="mnist", split="official"),
    model=ModelConfig(family="numpy-mlp", hidden=[256], init="he"),
    train=TrainConfig(
        epochs=10, batch_size=128, lr=0.2, optimizer="momentum", momentum=0.9,
        lr_schedule="onecycle", l2=0.0,
    ),
    name="numpy-mlp-256",
)

# The bundled-digits model that beats SVC(): the FAST preset as it is.
DIGITS_BEST = FAST.build()


@dataclass(frozen=True)
class Plan:
    """How much work each measurement does; FULL for the verdicts, QUICK for a smoke test."""

    mnist_train: int | None  # MNIST training images (None = all 60,000)
    mnist_test: int | None  # MNIST test images (None = all 10,000)
    seeds: tuple[int, ...]  # training seeds that accuracies are averaged over
    repeats: int  # repeats of each timing; the median is reported
    cnn_epochs: int  # the default CNN's longer run (its goal is for 3 epochs)
    mlp_epochs: int  # the NumPy MLP's run (its goal is for 10 epochs)
    digits_epochs: int  # the bundled-digits CNN's run
    digits_steps: int | None  # batches per digits epoch (None = a full pass)
    checkpoints: int  # test-set evaluations per epoch while timing "time to 99 %"
    tsne_points: int  # feature vectors embedded by t-SNE
    predictions: int  # canvas predictions timed while a training job runs
    memory_train_size: int | None  # --train-size of the subprocess whose memory is measured


FULL = Plan(
    mnist_train=None, mnist_test=None, seeds=(0, 1, 2), repeats=3, cnn_epochs=3,
    mlp_epochs=NUMPY_MLP.train.epochs, digits_epochs=DIGITS_BEST.train.epochs, digits_steps=None,
    checkpoints=4, tsne_points=2000, predictions=300, memory_train_size=None,
)
QUICK = Plan(
    mnist_train=512, mnist_test=500, seeds=(0,), repeats=1, cnn_epochs=3, mlp_epochs=2,
    digits_epochs=1, digits_steps=8, checkpoints=4, tsne_points=100, predictions=20,
    memory_train_size=200,
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
    rows = [("goal", "measured", "target", "result")]
    for g in goals:
        sign = ">=" if g.better == "higher" else "<="
        rows.append((g.goal, _fmt(g.measured, g.unit), f"{sign} {_fmt(g.target, g.unit)}",
                     "PASS" if g.passed else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
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
    """Run a, b, a, b, ... `repeats` times each; each returns its own seconds."""
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(a())
        tb.append(b())
    return ta, tb


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
    """Train, evaluating the test set `per_epoch` times an epoch with the clock stopped.

    Returns the checkpoints [(step, training seconds, test accuracy)], the final test
    accuracy, the seconds to the first checkpoint at >= 99 % (None if never) and the model.
    """
    tc = exp.train
    model = build_model(exp.model, data.image_shape, seed=tc.seed, device=tc.device)
    steps = math.ceil(len(data.labels_train) / min(tc.batch_size, len(data.labels_train)))
    every = max(1, steps // per_epoch)
    clock, resumed, checkpoints, final = 0.0, time.perf_counter(), [], None
    for ev in train(model, data, tc):
        if isinstance(ev, Step) and (ev.step % every == 0 or ev.step == ev.total_steps):
            clock += time.perf_counter() - resumed
            checkpoints.append((ev.step, clock, accuracy(model, data.x_test, data.labels_test)))
            resumed = time.perf_counter()
        elif isinstance(ev, Done):
            final = ev.test_acc
    reached = [t for _, t, acc in checkpoints if acc >= TARGET_ACC]
    return dict(checkpoints=checkpoints, final_acc=final, train_s=clock,
                time_to_99=reached[0] if reached else None, model=model)


def lenet_epoch(data: Dataset, seed: int) -> dict:
    """The reference: a plain LeNet-style CNN, one epoch, written as a PyTorch tutorial would.

    conv 16 5x5 - pool - conv 32 5x5 - pool - fc 128 - fc 10, Adam 1e-3, batch 128, the
    default (NCHW) memory layout, a DataLoader over a TensorDataset. Returns its seconds
    and its test accuracy (measured after the clock stops).
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

    seconds, _ = timed(epoch)
    net.eval()
    with torch.inference_mode():
        logits = net(torch.from_numpy(data.x_test).unsqueeze(1))
    acc = float((logits.argmax(1).numpy() == data.labels_test).mean())
    return dict(seconds=seconds, test_acc=acc)


def bench_default_cnn(data: Dataset, mnist_dir: str, plan: Plan) -> tuple[dict, object]:
    """1-epoch runs (with checkpoints) alternating with reference epochs, then longer runs."""
    short, refs = [], []
    for seed in plan.seeds:
        refs.append(lenet_epoch(data, seed))
        short.append(cnn_run_with_checkpoints(
            with_data(default_cnn_experiment(1, seed), mnist_dir), data, plan.checkpoints))
    model = short[0].pop("model")
    for r in short[1:]:
        r.pop("model")
    long = []
    for seed in plan.seeds:
        exp = with_data(default_cnn_experiment(plan.cnn_epochs, seed), mnist_dir)
        seconds, job = timed(lambda: run_experiment(exp, data=data))
        h = job.snapshot()
        long.append(dict(seed=seed, final_acc=h.final_test_acc, seconds=seconds,
                         test_acc_per_epoch=h.test_acc, status=h.status))
    times = [r["time_to_99"] for r in short]
    ttt = median([math.inf if t is None else t for t in times])
    ref = median([r["seconds"] for r in refs])
    out = dict(
        experiment=default_cnn_experiment(1, 0).to_dict(),
        one_epoch=[dict(seed=s, **r) for s, r in zip(plan.seeds, short)],
        reference_lenet=dict(runs=refs, median_epoch_s=ref),
        long=long,
        acc_1epoch_mean=float(np.mean([r["final_acc"] for r in short])),
        acc_long_mean=float(np.mean([r["final_acc"] for r in long])),
        time_to_99_median_s=None if math.isinf(ttt) else ttt,
        time_to_99_ratio=None if math.isinf(ttt) else ttt / ref,
        epoch_train_s_median=median([r["train_s"] for r in short]),
    )
    return out, model


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
    model.begin_training(MLP_SPEED)
    x, y = model.to_backend(data.x_train), model.labels_to_backend(data.labels_train)

    def epoch():
        for idx in batches:
            model.train_step(x[idx], y[idx], MLP_SPEED.lr)

    return timed(epoch)[0]


def torch_mlp_epoch(data: Dataset, batches: list[np.ndarray]) -> float:
    """The same MLP and batches in plain PyTorch; each step also reads back the loss and
    the number of correct predictions, as the NumPy step returns them."""
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

    return timed(epoch)[0]


def bench_mlp_speed(data: Dataset, plan: Plan) -> dict:
    rng = np.random.default_rng(0)
    batches = list(batch_order(len(data.labels_train), MLP_SPEED, rng))
    ours, ref = alternate(lambda: numpy_mlp_epoch(data, batches),
                          lambda: torch_mlp_epoch(data, batches), plan.repeats)
    return dict(numpy_s=ours, torch_s=ref, numpy_median_s=median(ours),
                torch_median_s=median(ref), ratio=median(ours) / median(ref),
                images=len(data.labels_train), batch_size=MLP_SPEED.batch_size)


# ------------------------------------------------------------------ job overhead


def bench_job_overhead(data: Dataset, mnist_dir: str, plan: Plan) -> dict:
    """run_experiment (events, history, stop checks, divergence checks) against a bare loop
    over the same model, batches and final test evaluation: one epoch of the NumPy MLP."""
    exp = Experiment(
        data=DataConfig(dataset="mnist", split="official", mnist_dir=mnist_dir),
        model=ModelConfig(family="numpy-mlp", hidden=[256]),
        train=replace(MLP_SPEED), name="overhead",
    )

    def job() -> float:
        return timed(lambda: run_experiment(exp, data=data))[0]

    def bare() -> float:
        def loop():
            tc = exp.train
            model = build_model(exp.model, data.image_shape, seed=tc.seed)
            model.begin_training(tc)
            x, y = model.to_backend(data.x_train), model.labels_to_backend(data.labels_train)
            for idx in batch_order(len(y), tc, np.random.default_rng(tc.seed)):
                model.train_step(model.take(x, idx), model.take(y, idx), tc.lr)
            return accuracy(model, data.x_test, data.labels_test)

        return timed(loop)[0]

    job_s, bare_s = alternate(job, bare, max(plan.repeats, 2 * plan.repeats - 1))
    return dict(job_s=job_s, bare_s=bare_s, job_median_s=median(job_s),
                bare_median_s=median(bare_s), overhead=median(job_s) / median(bare_s) - 1)


# ------------------------------------------------------------------ t-SNE


def bench_tsne(model, data: Dataset, plan: Plan) -> dict:
    from .embedding import sample_points, tsne_vs_sklearn

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
    from .predict import predict_canvas

    times = []
    for i in range(n):
        t, _ = timed(lambda: predict_canvas(run, drawings[i % len(drawings)]))
        times.append(1000 * t)
        time.sleep(gap)
    return times


def _percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return dict(p50_ms=float(np.percentile(a, 50)), p90_ms=float(np.percentile(a, 90)),
                p99_ms=float(np.percentile(a, 99)), max_ms=float(a.max()), n=len(a))


def bench_canvas(model, data: Dataset, mnist_dir: str, plan: Plan) -> dict:
    """predict_canvas with the default CNN, idle and while a TrainingJob of it runs."""
    from .runs import Run
    from .train import History

    exp = with_data(default_cnn_experiment(1, 0), mnist_dir)
    run = Run(None, exp, History(), {}, model, data.normalizer, None)
    drawings = canvases(data)
    prediction_times(run, drawings, 5, 0.0)  # warm-up: first calls build caches
    idle = prediction_times(run, drawings, min(IDLE_PREDICTIONS, plan.predictions), PREDICTION_GAP)
    job = TrainingJob(with_data(default_cnn_experiment(100, 1), mnist_dir), data=data).start()
    while job.snapshot().active and job.snapshot().step < 3:
        time.sleep(0.05)
    step0 = job.snapshot().step
    busy = prediction_times(run, drawings, plan.predictions, PREDICTION_GAP)
    h = job.snapshot()
    job.stop()
    job.wait()
    return dict(idle=_percentiles(idle), busy=_percentiles(busy), busy_ms=busy,
                trainer_running_throughout=h.status == "running",
                trainer_steps_during=h.step - step0, trainer_images_per_s=h.images_per_s,
                gap_s=PREDICTION_GAP)


# ------------------------------------------------------------------ memory


def bench_memory(mnist_dir: str, plan: Plan) -> dict:
    """Peak RSS of `python -m digits_core train --preset default-cnn --epochs 1` in a child.

    The kernel's own peak for that child (wait4's ru_maxrss) decides; a 20 Hz psutil poll
    of the child's tree is kept as a cross-check.
    """
    import psutil

    with tempfile.TemporaryDirectory(prefix="digitlab-bench-") as tmp:
        cmd = [sys.executable, "-m", "digits_core", "train", "--preset", "default-cnn",
               "--epochs", "1", "--mnist-dir", mnist_dir, "--out", tmp, "--quiet"]
        if plan.memory_train_size is not None:
            cmd += ["--train-size", str(plan.memory_train_size)]
        log = Path(tmp) / "log.txt"
        t0 = time.perf_counter()
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                    cwd=Path(__file__).resolve().parents[1])
            polled = 0
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                polled = max(polled, _tree_rss(psutil, proc.pid))
                time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        tail = log.read_text()[-500:]
    return dict(command=" ".join(cmd), returncode=proc.returncode, seconds=time.perf_counter() - t0,
                peak_rss_gib=usage.ru_maxrss * 1024 / GIB, polled_peak_rss_gib=polled / GIB,
                output_tail=tail)


def _tree_rss(psutil, pid: int) -> int:
    try:
        p = psutil.Process(pid)
        return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)])
    except psutil.Error:
        return 0


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


# ------------------------------------------------------------------ the whole run


def goals(f: dict) -> list[Goal]:
    cnn, mlp, dig, canvas = f["default_cnn"], f["numpy_mlp"], f["digits"], f["canvas"]
    n = cnn["long"][0]["test_acc_per_epoch"] and len(cnn["long"][0]["test_acc_per_epoch"])
    return [
        Goal("cnn_acc_1epoch", "default CNN, MNIST test, 1 epoch (mean of seeds)",
             cnn["acc_1epoch_mean"], 0.990, "higher", "%"),
        Goal("cnn_acc_3epochs", f"default CNN, MNIST test, {n} epochs (mean of seeds)",
             cnn["acc_long_mean"], 0.994, "higher", "%"),
        Goal("numpy_mlp_acc", "NumPy MLP 784-256-10, MNIST test, 10 epochs (mean)",
             mlp["acc_mean"], 0.982, "higher", "%"),
        Goal("digits_acc", "best digits model (mean of seeds)", dig["acc_mean"], 0.992, "higher", "%"),
        Goal("digits_vs_svc", "  ... minus SVC() on the same split",
             dig["acc_mean"] - dig["svc_acc"], 1e-9, "higher", "pp"),
        Goal("time_to_99_ratio", "time to 99 % / LeNet reference epoch",
             cnn["time_to_99_ratio"], 0.5, "lower", "x"),
        Goal("mlp_epoch_ratio", "NumPy MLP epoch / PyTorch MLP epoch",
             f["mlp_speed"]["ratio"], 1.0, "lower", "x"),
        Goal("job_overhead", "training job / bare loop, minus 1",
             f["job_overhead"]["overhead"], 0.05, "lower", "%"),
        Goal("tsne_time_ratio", "t-SNE time / sklearn TSNE()", f["tsne"]["ratio"], 0.5, "lower", "x"),
        Goal("tsne_trust_gap", "t-SNE trustworthiness minus sklearn's",
             f["tsne"]["trust_gap"], -0.01, "higher", "pp"),
        Goal("canvas_p50", "canvas prediction p50 while training",
             canvas["busy"]["p50_ms"], 2.0, "lower", "ms"),
        Goal("canvas_p90", "canvas prediction p90 while training",
             canvas["busy"]["p90_ms"], 5.0, "lower", "ms"),
        Goal("train_peak_rss", "peak RSS, default CNN on full MNIST",
             f["memory"]["peak_rss_gib"] if f["memory"]["returncode"] == 0 else None,
             1.5, "lower", "GiB"),
    ]


def machine_info() -> dict:
    import torch

    repo = Path(__file__).resolve().parents[1]

    def git(*args):
        try:
            r = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
            return r.stdout.strip() if r.returncode == 0 else None
        except OSError:
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return dict(
        cpu_count=os.cpu_count(), cpus_usable=len(os.sched_getaffinity(0)),
        torch=torch.__version__, torch_threads=torch.get_num_threads(), numpy=np.__version__,
        python=platform.python_version(), platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        git_commit=git("rev-parse", "HEAD"), git_dirty=None if status is None else bool(status),
    )


SECTIONS = ("default_cnn", "numpy_mlp", "mlp_speed", "job_overhead", "digits", "tsne",
            "canvas", "memory")


def run_bench(mnist_dir: str, plan: Plan, log: Callable[[str], None]) -> dict:
    """Every measurement in turn; returns the JSON-ready report."""
    setup_torch_threads()
    started, load_start = time.time(), os.getloadavg()
    data = load_mnist_data(mnist_dir, plan)
    figures, loads, seconds = {}, {}, {}
    cnn_model = None

    def section(name: str, fn: Callable[[], dict]) -> None:
        log(f"{name} (load {os.getloadavg()[0]:.2f}) ...")
        loads[name] = os.getloadavg()[0]
        seconds[name], figures[name] = timed(fn)

    def default_cnn():
        nonlocal cnn_model
        out, cnn_model = bench_default_cnn(data, mnist_dir, plan)
        return out

    section("default_cnn", default_cnn)
    section("numpy_mlp", lambda: bench_numpy_mlp_accuracy(data, mnist_dir, plan))
    section("mlp_speed", lambda: bench_mlp_speed(data, plan))
    section("job_overhead", lambda: bench_job_overhead(data, mnist_dir, plan))
    section("digits", lambda: bench_digits(plan))
    section("tsne", lambda: bench_tsne(cnn_model, data, plan))
    section("canvas", lambda: bench_canvas(cnn_model, data, mnist_dir, plan))
    section("memory", lambda: bench_memory(mnist_dir, plan))
    gs = goals(figures)
    return dict(
        quick=plan is QUICK, plan=asdict(plan), started=started, wall_s=time.time() - started,
        machine=dict(machine_info(), load_start=list(load_start), load_end=list(os.getloadavg())),
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
    p = argparse.ArgumentParser(prog="python -m digits_core.bench", description=__doc__.split("\n")[0])
    p.add_argument("--mnist-dir", required=True, help="folder with the four MNIST IDX files")
    p.add_argument("--out", default="bench-results/latest.json", help="JSON report to write")
    p.add_argument("--quick", action="store_true", help="tiny smoke run; verdicts mean nothing")
    a = p.parse_args(argv)
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    report = _jsonable(run_bench(a.mnist_dir, QUICK if a.quick else FULL, log))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(table([Goal(**g) for g in report["goals"]]))
    m = report["machine"]
    print(f"\n{sum(g['passed'] for g in report['goals'])}/{len(report['goals'])} goals met"
          f"{' (quick: verdicts mean nothing)' if a.quick else ''}; "
          f"{report['wall_s']:.0f} s wall; load {m['load_start'][0]:.2f} -> {m['load_end'][0]:.2f} "
          f"on {m['cpu_count']} CPUs; torch {m['torch']}; report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

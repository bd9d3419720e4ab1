"""`python -m digits_core ...`: train, evaluate, predict, presets, runs, fetch-mnist.

This interface is a contract: `train` prints the run folder as its last stdout line,
`evaluate` ends with `accuracy 0.XXXX`, `predict` prints `IMAGE<TAB>DIGIT<TAB>PROBABILITY`.
Bad arguments and bad files exit non-zero with one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from digits_core.config import (
    ACTIVATIONS,
    DATASETS,
    DEVICES,
    FAMILIES,
    INITS,
    LOSSES,
    NORMALIZATIONS,
    OPTIMIZERS,
    SCHEDULES,
    SMOOTHING_UNTIL,
    SPLITS,
    ConvBlock,
    Experiment,
    parse_widths,
)
from digits_core.errors import ConfigError, DigitLabError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as argparse does, without the usage dump
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _ints(text: str) -> list[int]:
    try:
        return parse_widths(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _conv(text: str) -> list[ConvBlock]:
    """'32:5:2:bn:2,64:3:1:bn:2' -> blocks of channels:kernel:padding:bn|nobn:pool."""
    blocks = []
    for part in text.split(","):
        f = part.strip().split(":")
        if len(f) != 5 or f[3] not in ("bn", "nobn"):
            raise argparse.ArgumentTypeError(
                f"conv block {part!r}: expected channels:kernel:padding:bn|nobn:pool"
            )
        try:
            blocks.append(ConvBlock(int(f[0]), int(f[1]), int(f[2]), f[3] == "bn", int(f[4])))
        except ValueError:
            raise argparse.ArgumentTypeError(f"conv block {part!r}: numbers expected") from None
    return blocks


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m digits_core", description="Digit Lab engine")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model and save the run")
    t.add_argument("--preset", help="a preset name (see `presets`); other flags override it")
    t.add_argument("--dataset", choices=DATASETS)
    t.add_argument("--model", choices=FAMILIES)
    t.add_argument("--hidden", type=_ints, help="hidden widths, e.g. 256,128")
    t.add_argument("--conv", type=_conv, help="CNN blocks, e.g. 32:5:2:bn:2,64:3:1:bn:2")
    t.add_argument("--activation", choices=ACTIVATIONS)
    t.add_argument("--no-bias", action="store_true")
    t.add_argument("--init", choices=INITS)
    t.add_argument("--dropout", type=float)
    t.add_argument("--loss", choices=LOSSES)
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--lr", type=float)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--epochs", type=int)
    t.add_argument("--l2", type=float)
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--lr-schedule", choices=SCHEDULES)
    t.add_argument("--augment-pen", action=argparse.BooleanOptionalAction, default=None,
                   help="augmentation also draws as a canvas does (pen redraws, flags on 1s); "
                   "--no-augment-pen: MNIST's own variation only")
    t.add_argument("--warmup", type=float, help="one-cycle: share of the run the learning rate warms up over")
    t.add_argument("--weight-average", type=float,
                   help="the model is a moving average of the trained weights with this decay per step, "
                   "e.g. 0.98 (0 = off; PyTorch models)")
    t.add_argument("--label-smoothing", type=float,
                   help="cross-entropy against targets with this share spread over all ten digits, "
                   f"fading to 0 by {100 * SMOOTHING_UNTIL:.0f} %% of the run, e.g. 0.1 (0 = off; PyTorch models)")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", choices=DEVICES)
    t.add_argument("--split", choices=SPLITS)
    t.add_argument("--test-fraction", type=float)
    t.add_argument("--train-size", type=int, help="train on this many images only")
    t.add_argument("--normalization", choices=NORMALIZATIONS)
    t.add_argument("--mnist-dir", help="folder with the four MNIST IDX files")
    t.add_argument("--out", required=True, help="runs folder to save the run in")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of a saved run")
    e.add_argument("--run", required=True)
    e.add_argument("--mnist-dir")

    pr = sub.add_parser("predict", help="read digits from image files with a saved run")
    pr.add_argument("--run", help="a run folder (default: the ready-made MNIST model)")
    pr.add_argument("images", nargs="+")

    sub.add_parser("presets", help="list the presets")
    r = sub.add_parser("runs", help="list the runs in a folder")
    r.add_argument("runs_dir")
    f = sub.add_parser("fetch-mnist", help="download MNIST into the cache (checksummed)")
    f.add_argument("--data-home", help="cache folder (default: $DIGITLAB_DATA_HOME or ~/.cache/digitlab)")
    return p


def experiment_from_args(a: argparse.Namespace) -> Experiment:
    """The experiment a `train` command line asks for: a preset (or defaults) plus overrides."""
    from digits_core.presets import default_cnn_model, get_preset

    if a.preset:
        exp = get_preset(a.preset).build()
    else:
        if not a.dataset or not a.model:
            raise ConfigError("train needs --preset NAME, or both --dataset and --model")
        exp = Experiment(name=f"{a.dataset}-{a.model}")
        exp.data.dataset = a.dataset
        exp.model.family = a.model
        if a.dataset == "mnist":
            exp.data.split = "official"
        if a.model == "cnn":
            exp.model = default_cnn_model()
            if a.dataset == "mnist":
                from digits_core.presets import default_cnn_experiment

                exp.train = default_cnn_experiment().train
    d, m, t = exp.data, exp.model, exp.train
    for obj, names in (
        (d, ["split", "test_fraction", "train_size", "normalization", "mnist_dir"]),
        (m, ["hidden", "conv", "activation", "init", "dropout"]),
        (t, ["loss", "optimizer", "lr", "batch_size", "epochs", "l2", "augment", "augment_pen", "lr_schedule", "warmup",
             "weight_average", "label_smoothing", "seed", "device"]),
    ):
        for n in names:
            v = getattr(a, n, None)
            if v is not None:
                setattr(obj, n, v)
    if a.seed is not None:
        d.seed = a.seed
    if a.no_bias:
        m.bias = False
    if a.mnist_dir and d.dataset != "mnist":
        raise ConfigError("--mnist-dir is only for --dataset mnist")
    exp.validate()
    return exp


def _bar(done: int, total: int, text: str) -> None:
    width = 30
    k = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * k}{'.' * (width - k)}] {text}")
    sys.stderr.flush()


def cmd_train(a) -> int:
    from digits_core.data.datasets import IMAGE_SHAPE
    from digits_core.nn.shapes import check_size
    from digits_core.store.recorder import RunRecorder
    from digits_core.training.jobs import run_experiment
    from digits_core.training.train import Done, Epoch, Step

    exp = experiment_from_args(a)
    check_size(exp.model, IMAGE_SHAPE[exp.data.dataset])

    def show(ev):
        if a.quiet:
            return
        if isinstance(ev, Step) and (ev.step % 10 == 0 or ev.step == ev.total_steps):
            _bar(ev.step, ev.total_steps, f"epoch {ev.epoch} loss {ev.loss:.4f} "
                 f"{ev.images_per_s:,.0f} img/s ETA {ev.eta:.0f}s   ")
        elif isinstance(ev, Epoch):
            test = "" if ev.test_acc is None else f" test {ev.test_acc:.4f}"
            sys.stderr.write(f"\repoch {ev.epoch}: train {ev.train_acc:.4f}{test} ({ev.elapsed:.1f}s)" + " " * 30 + "\n")
        elif isinstance(ev, Done):
            sys.stderr.write(f"{ev.message}\n")

    new_out = not Path(a.out).exists()
    recorder = RunRecorder(a.out, exp)  # the run is a folder from its first step
    job = run_experiment(exp, recorder=recorder, on_event=show)
    h = job.snapshot()
    if h.status == "failed":
        if job.model is None:  # nothing was trained: no folder left behind, nor the --out made for it
            shutil.rmtree(recorder.path, ignore_errors=True)
            if new_out:
                shutil.rmtree(a.out, ignore_errors=True)
        raise DigitLabError(h.message)
    if recorder.error:
        raise DigitLabError(recorder.error)
    print(f"status {h.status}: {h.message}")
    if h.final_test_acc is not None:
        print(f"test accuracy {h.final_test_acc:.4f}")
    print(recorder.path)
    return 0 if h.status in ("finished", "stopped") else 3


def cmd_evaluate(a) -> int:
    from digits_core.analysis.evaluate import evaluate_probs
    from digits_core.store.runs import load_run, run_dataset

    run = load_run(a.run)
    data = run_dataset(run, mnist_dir=a.mnist_dir)
    rep = evaluate_probs(run.model.probs(run.normalizer(data.images_test)), data.labels_test)
    print("confusion matrix (rows: true 0-9, columns: predicted 0-9)")
    for i, row in enumerate(rep.confusion):
        print(f"{i}: " + " ".join(f"{v:5d}" for v in row))
    print("class precision recall")
    for c in range(10):
        print(f"{c} {rep.precision[c]:.4f} {rep.recall[c]:.4f}")
    print(f"accuracy {rep.accuracy:.4f}")
    return 0


def cmd_predict(a) -> int:
    from digits_core.analysis.predict import predict_canvas
    from digits_core.images.imagefile import load_image_file
    from digits_core.store.pretrained import load_ready_made
    from digits_core.store.runs import load_run

    run = load_run(a.run) if a.run else load_ready_made()
    if run is None:
        raise DigitLabError("no --run given and the ready-made model is not installed")
    failed = 0
    for img in a.images:
        try:
            p = predict_canvas(run, load_image_file(img))
        except DigitLabError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        if p.digit is None:
            print(f"{img}\t-\t0.0000")
        else:
            print(f"{img}\t{p.digit}\t{p.probs[p.digit]:.4f}")
    return 1 if failed else 0


def cmd_presets(a) -> int:
    from digits_core.presets import ALL

    for name, p in ALL.items():
        print(f"{name}\t{p.description}")
    return 0


def cmd_runs(a) -> int:
    from digits_core.store.runs import list_runs

    if not Path(a.runs_dir).is_dir():
        raise DigitLabError(f"{a.runs_dir}: no such runs folder")
    for r in list_runs(a.runs_dir):
        if r.status == "broken":
            print(f"{r.name}\tBROKEN\t{r.reason}")
            continue
        acc = r.meta.get("test_acc")
        if acc is None:
            acc = r.meta.get("last_test_acc")
        acc = f"{acc:.4f}" if isinstance(acc, (int, float)) else "-"
        print(f"{r.name}\t{r.meta.get('family')}\t{r.meta.get('dataset')}\t{acc}\t{r.status}")
    return 0


def cmd_fetch(a) -> int:
    from digits_core.data.mnist import fetch_mnist

    def progress(name, done, total):
        _bar(done, total, f"{name} {done / 1e6:.1f}/{total / 1e6:.1f} MB   ")

    folder = fetch_mnist(data_home=a.data_home, progress=progress)
    sys.stderr.write("\n")
    print(folder)
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "presets": cmd_presets,
    "runs": cmd_runs,
    "fetch-mnist": cmd_fetch,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.cmd](args)
    except DigitLabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory: try a smaller model, batch or training subset", file=sys.stderr)
        return 1

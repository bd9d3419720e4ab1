"""Configuration dataclasses: what to train on, what to train, how to train it.

Every run saves `asdict(Experiment)` as JSON beside its weights and rebuilds it with
`Experiment.from_dict`. Widgets, CLI flags and presets all fill these same classes.
`validate()` refuses absurd settings up front with a ConfigError.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from digits_core.errors import ConfigError, show_value

DATASETS = ("digits", "mnist")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
INITS = ("he", "xavier", "pytorch", "normal-0.01", "uniform-1", "randn-over-h")
LOSSES = ("cross-entropy", "mse-softmax")
OPTIMIZERS = ("sgd", "momentum", "adam")
SPLITS = ("stratified", "random", "ordered", "official")
NORMALIZATIONS = ("unit", "standardize", "raw")
SAMPLINGS = ("shuffle", "sequential", "replacement")
SCHEDULES = ("constant", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
REDUCTIONS = ("mean", "sum")

@dataclass(frozen=True)
class Family:
    """What sets a model family apart, said once: code asks the family (`ModelConfig.kind`),
    never compares its name."""

    name: str
    torch: bool  # trained with PyTorch: CPU threads, a device, weight averaging, label smoothing
    conv: bool  # has conv blocks in front of its dense layers
    weights_file: str  # its weights in a run folder: NumPy arrays, or a torch state_dict


FAMILY = {f.name: f for f in (
    Family("numpy-mlp", torch=False, conv=False, weights_file="weights.npz"),
    Family("torch-mlp", torch=True, conv=False, weights_file="weights.pt"),
    Family("cnn", torch=True, conv=True, weights_file="weights.pt"),
)}
FAMILIES = tuple(FAMILY)

# Caps that keep one run inside a laptop's memory and a class's patience.
MAX_WIDTH = 4096
MAX_LAYERS = 8
MAX_CHANNELS = 256
MAX_EPOCHS = 1000
MAX_BATCH = 8192
MAX_L2 = 1.0  # an L2 penalty over this only shrinks every weight to zero
MAX_SMOOTHING = 0.5  # label smoothing over this teaches the other digits as much as the right one
SMOOTHING_UNTIL = 0.7  # share of the run over which label smoothing fades to 0 (train.smoothing_at)
MAX_PARAMS = 20_000_000
MAX_THREADS = 256
MAX_SEED = 2**32 - 1  # what NumPy's and torch's generators accept alike
MAX_TEXT = 4096  # characters of any text setting (a name, a folder)
MAX_ITEMS = 64  # entries of any list setting read from outside (validate() caps them lower)


@dataclass
class DataConfig:
    dataset: str = "digits"  # "digits" (bundled 8x8) or "mnist" (28x28)
    mnist_dir: str | None = None  # folder holding the four IDX files; None = the download cache
    split: str = "stratified"  # stratified | random (sklearn-style) | ordered (last part is test) | official (MNIST)
    test_fraction: float = 0.2  # share of the bundled digits held out for testing
    train_size: int | None = None  # use only this many training images (None = all)
    normalization: str = "unit"  # unit (0..1) | standardize (per pixel, train stats) | raw
    seed: int = 0  # seeds the split and the training subset

    def validate(self) -> None:
        _choice("dataset", self.dataset, DATASETS)
        _choice("split", self.split, SPLITS)
        _choice("normalization", self.normalization, NORMALIZATIONS)
        if self.split == "official" and self.dataset != "mnist":
            raise ConfigError("split 'official' exists only for MNIST")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be between 0 and 1, got {self.test_fraction}")
        if self.train_size is not None and self.train_size < 10:
            raise ConfigError(f"training images (train_size): at least 10, got {self.train_size} "
                              "(leave it out, or 0 on the Data page, for all of them)")
        _seed(self.seed)


@dataclass
class ConvBlock:
    channels: int = 32  # output channels of the convolution
    kernel: int = 3  # square kernel size
    padding: int = 1  # zero padding on each side
    batchnorm: bool = True  # BatchNorm2d after the convolution
    pool: int = 2  # max-pool size after the activation (1 = no pooling)
    dropout: float = 0.0  # dropout after the block


@dataclass
class ModelConfig:
    family: str = "numpy-mlp"  # numpy-mlp | torch-mlp | cnn
    hidden: list[int] = field(default_factory=lambda: [128])  # widths of the hidden dense layers
    activation: str = "relu"  # relu | tanh | sigmoid
    bias: bool = True  # dense layers have biases
    init: str = "he"  # he | xavier | pytorch (nn.Linear default) | normal-0.01 | uniform-1 | randn-over-h
    dropout: float = 0.0  # inverted dropout on every hidden dense layer
    conv: list[ConvBlock] = field(default_factory=list)  # CNN only: the conv blocks, in order
    channels_last: bool = True  # CNN only: channels_last memory layout (faster on CPU)
    pool_first: bool = False  # CNN only: max-pool straight after each conv (before BN and the activation: cheaper)

    def validate(self) -> None:
        _choice("family", self.family, FAMILIES)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INITS)
        if len(self.hidden) > MAX_LAYERS:
            raise ConfigError(f"at most {MAX_LAYERS} hidden layers, got {len(self.hidden)}")
        for w in self.hidden:
            if not isinstance(w, int) or w < 1:
                raise ConfigError(f"hidden layer widths must be positive integers, got {w!r}")
            if w > MAX_WIDTH:
                raise ConfigError(f"a hidden layer of {w} units is over the cap of {MAX_WIDTH}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.kind.conv:
            if not self.conv:
                raise ConfigError("a CNN needs at least one conv block")
            if len(self.conv) > MAX_LAYERS:
                raise ConfigError(f"at most {MAX_LAYERS} conv blocks, got {len(self.conv)}")
            for b in self.conv:
                if not 1 <= b.channels <= MAX_CHANNELS:
                    raise ConfigError(f"conv channels must be 1..{MAX_CHANNELS}, got {b.channels}")
                if not 1 <= b.kernel <= 9 or b.padding < 0 or b.padding > b.kernel or b.pool < 1:
                    raise ConfigError(
                        f"conv block kernel={b.kernel} padding={b.padding} pool={b.pool} is not sensible"
                    )
                if not 0.0 <= b.dropout < 1.0:
                    raise ConfigError(f"conv dropout must be in [0, 1), got {b.dropout}")
        elif self.conv:
            raise ConfigError(f"conv blocks are only for the cnn family, not {self.family}")

    @property
    def kind(self) -> Family:
        """This family's properties (KeyError for a family `validate` refuses)."""
        return FAMILY[self.family]

    @classmethod
    def from_dict(cls, d: Any) -> ModelConfig:
        """Settings read from JSON -> ModelConfig; see `Experiment.from_dict`."""
        return _from_json(cls, d, "model")


@dataclass
class TrainConfig:
    epochs: int = 10  # passes over the training set (or steps_per_epoch batches each)
    batch_size: int = 64  # images per step
    lr: float = 0.01  # learning rate
    optimizer: str = "adam"  # sgd | momentum | adam
    momentum: float = 0.9  # for optimizer="momentum"
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # for optimizer="adam"
    l2: float = 0.0  # L2 penalty coefficient on weights (not biases)
    loss: str = "cross-entropy"  # cross-entropy | mse-softmax (squared error on softmax, one-hot target)
    loss_reduction: str = "mean"  # mean | sum over the batch (some classic write-ups summed)
    sampling: str = "shuffle"  # shuffle each epoch | sequential | replacement (random batches)
    steps_per_epoch: int | None = None  # None = one full pass; else this many batches per epoch
    stop_at_loss: float | None = None  # stop early once the epoch's mean training loss is below
    augment: bool = False  # random affine + stroke-width changes per batch (image models)
    augment_strength: float = 1.0  # scales every augmentation range (0.5 = half the turn, shift, ...)
    augment_pen: bool = True  # augmentation also draws as a canvas does (half of each batch redrawn with a round pen, flags on some 1s); off: MNIST's own variation only
    lr_schedule: str = "constant"  # constant | onecycle (warm up, then cosine down to ~0)
    warmup: float = 0.15  # onecycle: share of the run the learning rate warms up over
    weight_average: float = 0.0  # torch families: the model is a moving average of the trained weights with this decay per step (0 = off)
    label_smoothing: float = 0.0  # torch families, cross-entropy: this share of each target spread over all ten digits at the start, fading to 0 by SMOOTHING_UNTIL of the run (0 = off)
    seed: int = 0  # seeds initialisation, batch order, dropout and augmentation
    device: str = "auto"  # auto | cpu | cuda (torch families only)
    threads: int = 0  # torch families: CPU threads to train on; 0 = picked when the run starts (cores, runs, load) and recorded in its history
    eval_test_every_epoch: bool = True  # measure test accuracy after every epoch
    live_embedding: bool = False  # t-SNE frames of the last hidden layer as it trains (as S4 drew them)

    def validate(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss", self.loss, LOSSES)
        _choice("loss_reduction", self.loss_reduction, REDUCTIONS)
        _choice("sampling", self.sampling, SAMPLINGS)
        _choice("lr_schedule", self.lr_schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        problems = []  # every number out of range at once: a form shows them together
        if not 0 <= self.seed <= MAX_SEED:
            problems.append(f"seed must be 0..{MAX_SEED}, got {self.seed}")
        if not 0 <= self.threads <= MAX_THREADS:
            problems.append(f"threads must be 0 (picked at the start) to {MAX_THREADS}, got {self.threads}")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            problems.append(f"epochs must be 1..{MAX_EPOCHS}, got {self.epochs}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            problems.append(f"batch size must be 1..{MAX_BATCH}, got {self.batch_size}")
        if not self.lr > 0 or self.lr > 100:
            problems.append(f"learning rate must be > 0 (and sane), got {self.lr}")
        if not 0 < self.augment_strength <= 2:
            problems.append(f"augment_strength must be in (0, 2], got {self.augment_strength}")
        if not 0 <= self.l2 <= MAX_L2:
            problems.append(f"L2 must be 0..{MAX_L2:g}, got {self.l2:g}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            problems.append(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")
        if not 0 <= self.warmup < 1:
            problems.append(f"warmup must be a share of the run in [0, 1), got {self.warmup}")
        if not 0 <= self.weight_average < 1:
            problems.append(f"weight_average must be in [0, 1), got {self.weight_average}")
        if not 0 <= self.label_smoothing <= MAX_SMOOTHING:
            problems.append(f"label smoothing must be 0..{MAX_SMOOTHING:g}, got {self.label_smoothing:g}")
        if self.label_smoothing and self.loss != "cross-entropy":
            problems.append("label smoothing is for the cross-entropy loss")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            problems.append(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        _refuse(problems)


@dataclass
class Experiment:
    """Everything needed to reproduce a run: data, model and training settings."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = ""  # preset name or a user label

    def validate(self) -> None:
        self.data.validate()
        problems = []  # the model's and the training's together: a form shows them at once
        for part in (self.model, self.train):
            try:
                part.validate()
            except ConfigError as e:
                problems += getattr(e, "problems", None) or [str(e)]
        _refuse(problems)
        if self.train.augment and self.data.normalization == "standardize":
            raise ConfigError(
                "augmentation shifts and turns the image, which needs a uniform background: "
                "use unit or raw normalisation with it"
            )
        if not self.model.kind.torch and self.train.weight_average:
            raise ConfigError("weight averaging is for the PyTorch models; the NumPy MLP trains its weights as they are")
        if not self.model.kind.torch and self.train.label_smoothing:
            raise ConfigError("label smoothing is for the PyTorch models; the NumPy MLP learns the labels as they are")
        if not self.model.kind.torch and self.train.device == "cuda":
            raise ConfigError("the NumPy MLP runs on the CPU only")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Experiment:
        """`to_dict()`'s output (or any JSON value) -> Experiment, every field type-checked.

        Unknown keys are ignored (settings of another version); a missing key takes its
        default. Anything else (not an object, a wrong type, NaN, text over MAX_TEXT, a
        list over MAX_ITEMS) raises ConfigError with one line naming the field. Ranges
        are `validate()`'s job: call it before using the result.
        """
        return _from_json(cls, d, "configuration")


def parse_widths(text: str) -> list[int]:
    """'128, 64' -> [128, 64]; '' -> [] (no hidden layer).

    Raises ConfigError saying what is wrong.
    """
    widths = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise ConfigError(
                f"hidden widths must be positive whole numbers separated by commas, like "
                f"'128, 64'; {part!r} is not one"
            )
        widths.append(int(part))
    return widths


CONV_COLUMNS = ("channels", "kernel", "padding", "batchnorm", "pool", "dropout")


def conv_rows(blocks: list[ConvBlock]) -> list[dict]:
    return [{c: getattr(b, c) for c in CONV_COLUMNS} for b in blocks]


def conv_blocks(rows: list[dict]) -> list[ConvBlock]:
    """Rows of the conv-block table -> ConvBlocks; empty cells take the defaults."""
    default = ConvBlock()
    blocks = []
    for row in rows:
        values = {}
        for c in CONV_COLUMNS:
            v = row.get(c)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                v = getattr(default, c)
            values[c] = type(getattr(default, c))(v)
        blocks.append(ConvBlock(**values))
    return blocks


def _from_json(cls: type, d: Any, where: str) -> Any:
    """A JSON object -> the dataclass `cls`, each known field checked against its type."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be an object of settings, got {_show(d)}")
    hints = typing.get_type_hints(cls)
    values = {
        f.name: _typed(hints[f.name], d[f.name], f.name if where == "configuration" else f"{where}.{f.name}")
        for f in fields(cls)
        if f.name in d
    }
    return cls(**values)


def _typed(tp: Any, v: Any, where: str) -> Any:
    """`v` checked against the field type `tp` (str, int, float, bool, X | None, list[X],
    a dataclass); ints are accepted for floats, never bools for numbers."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if v is None and type(None) in args:
            return None
        (tp,) = [a for a in args if a is not type(None)]
    if typing.get_origin(tp) is list:
        if not isinstance(v, list):
            raise ConfigError(f"{where} must be a list, got {_show(v)}")
        if len(v) > MAX_ITEMS:
            raise ConfigError(f"{where} has {len(v)} entries; at most {MAX_ITEMS} are read")
        (item,) = typing.get_args(tp)
        return [_typed(item, x, f"{where}[{i}]") for i, x in enumerate(v)]
    if is_dataclass(tp):
        return _from_json(tp, v, where)
    if tp is bool:
        if isinstance(v, bool):
            return v
        raise ConfigError(f"{where} must be true or false, got {_show(v)}")
    if tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise ConfigError(f"{where} must be a whole number, got {_show(v)}")
    if tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            x = float(v) if abs(v) < 1e300 else math.inf
            if math.isfinite(x):
                return x
        raise ConfigError(f"{where} must be a finite number, got {_show(v)}")
    if tp is str:
        if isinstance(v, str) and len(v) <= MAX_TEXT and "\x00" not in v:
            return v
        raise ConfigError(f"{where} must be a text of at most {MAX_TEXT} characters, got {_show(v)}")
    raise TypeError(f"no JSON reading for a field of type {tp}")  # a new field type: extend _typed


_show = show_value  # one picture of a value for every error message


def _refuse(problems: list[str]) -> None:
    """One ConfigError naming every problem (`problems`: one line each, for a form)."""
    if problems:
        error = ConfigError("; ".join(problems))
        error.problems = problems
        raise error


def _seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be 0..{MAX_SEED}, got {seed}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

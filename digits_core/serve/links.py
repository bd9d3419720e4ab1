"""Configurations as links, and a teacher's locked configuration for a class.

A whole experiment travels in one query parameter (`?exp=`): its JSON, compact, in
URL-safe base64. Opening a link only fills the Train form; the link is read like any
outside input (`Experiment.from_dict` checks every field, `validate()` every range) and a
bad one is refused in one line. A link never carries a server folder: `mnist_dir` is
dropped, so whoever opens it uses their own MNIST.

On a class server the teacher can publish a locked configuration (`class_config.json`
beside the runs): students get its experiment with only the controls the teacher left
open; `apply_open` enforces it on what they start, whatever their browser sent.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

from digits_core.config import Experiment
from digits_core.errors import ConfigError

PARAM = "exp"  # the query parameter holding the experiment
MAX_LINK = 8000  # characters of the parameter read (a real experiment is about 1,400)
CLASS_CONFIG = "class_config.json"

# The Train form's controls a teacher may leave open: name -> (part, field, what a person reads).
CONTROLS: dict[str, tuple[str, str, str]] = {
    "family": ("model", "family", "model family"),
    "hidden": ("model", "hidden", "hidden layer widths"),
    "activation": ("model", "activation", "activation"),
    "init": ("model", "init", "weight initialisation"),
    "dropout": ("model", "dropout", "dropout"),
    "bias": ("model", "bias", "biases"),
    "conv": ("model", "conv", "convolution blocks"),
    "pool_first": ("model", "pool_first", "pooling first"),
    "loss": ("train", "loss", "loss"),
    "optimizer": ("train", "optimizer", "optimiser"),
    "lr": ("train", "lr", "learning rate"),
    "schedule": ("train", "lr_schedule", "learning-rate schedule"),
    "average": ("train", "weight_average", "weight averaging"),
    "batch": ("train", "batch_size", "batch size"),
    "epochs": ("train", "epochs", "epochs"),
    "l2": ("train", "l2", "L2 penalty"),
    "smoothing": ("train", "label_smoothing", "label smoothing"),
    "seed": ("train", "seed", "seed"),
    "augment": ("train", "augment", "augmentation"),
    "live": ("train", "live_embedding", "live t-SNE"),
}


def experiment_link(exp: Experiment) -> str:
    """The value of `?exp=` for `exp` (without its MNIST folder)."""
    d = copy.deepcopy(exp).to_dict()
    d["data"]["mnist_dir"] = None
    text = json.dumps(d, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def experiment_from_link(value: object) -> Experiment:
    """`?exp=`'s value -> a valid Experiment, or ConfigError with one line saying why."""
    if not isinstance(value, str) or not value:
        raise ConfigError("this link carries no configuration")
    if len(value) > MAX_LINK:
        raise ConfigError(f"this link's configuration is {len(value):,} characters, over the "
                          f"{MAX_LINK:,} a configuration can take")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        d = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ConfigError("this link's configuration is damaged (cut short or edited?): "
                          "copy the whole link again") from None
    exp = Experiment.from_dict(d)
    exp.data.mnist_dir = None
    exp.validate()
    return exp


def one_line(e: Exception) -> str:
    """A refusal on one line (a ConfigError may name several problems)."""
    return " ".join(str(e).split())


# ------------------------------------------------------------------ a locked configuration


@dataclass
class LockedConfig:
    experiment: Experiment  # what every student starts from
    open: list[str]  # the CONTROLS students may change; the rest are fixed


def apply_open(locked: LockedConfig, edited: Experiment) -> Experiment:
    """The locked experiment with only the open controls taken from `edited`."""
    out = copy.deepcopy(locked.experiment)
    for name in locked.open:
        part, field, _ = CONTROLS[name]
        setattr(getattr(out, part), field, copy.deepcopy(getattr(getattr(edited, part), field)))
    out.name = edited.name
    out.data.mnist_dir = edited.data.mnist_dir  # where the data is on this server, not a setting
    return out


def publish_locked(runs_dir: str | Path, exp: Experiment, open_controls: list[str]) -> LockedConfig:
    """Publish `exp` to the class with `open_controls` left open (written atomically)."""
    unknown = [c for c in open_controls if c not in CONTROLS]
    if unknown:
        raise ConfigError(f"no control named {', '.join(unknown)}; choose from {', '.join(CONTROLS)}")
    exp.validate()
    path = Path(runs_dir) / CLASS_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{CLASS_CONFIG}.tmp")
    tmp.write_text(json.dumps({"experiment": experiment_link(exp), "open": list(open_controls)}))
    os.replace(tmp, path)
    return LockedConfig(experiment_from_link(experiment_link(exp)), list(open_controls))


def withdraw_locked(runs_dir: str | Path) -> None:
    (Path(runs_dir) / CLASS_CONFIG).unlink(missing_ok=True)


def read_locked(runs_dir: str | Path) -> LockedConfig | None:
    """The class's locked configuration, or None when none is published. A damaged file
    raises ConfigError (one line): students must not silently get a free form."""
    path = Path(runs_dir) / CLASS_CONFIG
    try:
        text = path.read_bytes()[: 2 * MAX_LINK].decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        raise ConfigError("the teacher's locked configuration cannot be read; ask them to publish it again") from None
    try:
        d = json.loads(text)
    except ValueError:
        d = None
    if not isinstance(d, dict) or not isinstance(d.get("open"), list) or \
            not all(isinstance(c, str) and c in CONTROLS for c in d["open"]):
        raise ConfigError("the teacher's locked configuration is damaged; ask them to publish it again")
    return LockedConfig(experiment_from_link(d.get("experiment")), list(dict.fromkeys(d["open"])))


__all__ = ["CLASS_CONFIG", "CONTROLS", "MAX_LINK", "PARAM", "LockedConfig", "apply_open",
           "experiment_from_link", "experiment_link", "one_line", "publish_locked",
           "read_locked", "withdraw_locked"]

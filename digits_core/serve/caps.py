"""What one run and one person may take on a server, checked before anything starts.

Three refusals, each a one-line ConfigError saying what to change: a run whose estimated
peak memory is over the budget (`preflight`: a 256-channel CNN on MNIST with batches of 8192
would take the whole server down), a person who already has their most runs training
(`check_owner_limit`), and a person whose kept runs would go over their quota
(`check_quota`, on `store.quota`'s counting). The runner holds the state (its jobs, its
caps) and asks these; they keep no state of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from digits_core.config import Experiment
from digits_core.data.datasets import IMAGE_SHAPE
from digits_core.errors import ConfigError
from digits_core.nn.classifier import EVAL_CHUNK
from digits_core.nn.shapes import activation_sizes, check_size, count_params
from digits_core.store.quota import Caps, Usage, check_room, folder_bytes, usage_by_owner
from digits_core.store.runs import list_runs

MEMORY_BUDGET_MB = 2048  # default cap on one run's estimated peak memory; $DIGITLAB_MAX_MEMORY_MB


def memory_estimate(experiment: Experiment) -> int:
    """Rough peak bytes of one training step or one evaluation chunk, whichever is larger.

    Training keeps every activation of the batch plus its gradient; the weights come four
    times (values, gradients, two Adam moments). Evaluation runs `EVAL_CHUNK` images at a
    time and holds about two layers at once.
    """
    shape = IMAGE_SHAPE[experiment.data.dataset]
    n_params = count_params(experiment.model, shape)
    sizes = activation_sizes(experiment.model, shape)
    train = 4 * (2 * experiment.train.batch_size * sum(sizes) + 4 * n_params)
    evaluate = 4 * (2 * EVAL_CHUNK * max(sizes) + n_params)
    return max(train, evaluate)


def saved_bytes(n_params: int) -> int:
    """Rough bytes a finished run of `n_params` parameters keeps on disk: float32 weights and
    the optimiser's two moments (Adam's), beside files of a few kB."""
    return 3 * 4 * n_params


def preflight(experiment: Experiment, budget_mb: float | None = None) -> int:
    """Validate `experiment`, refuse it if it would not fit in memory; return its parameter count.

    Raises ConfigError with a one-line reason and what to change.
    """
    experiment.validate()
    n_params = count_params(experiment.model, IMAGE_SHAPE[experiment.data.dataset])
    if budget_mb is None:
        budget_mb = float(os.environ.get("DIGITLAB_MAX_MEMORY_MB", MEMORY_BUDGET_MB))
    need_mb = memory_estimate(experiment) / 2**20
    check_size(experiment.model, IMAGE_SHAPE[experiment.data.dataset], need_mb=need_mb)
    if need_mb > budget_mb:
        raise ConfigError(
            f"this run would need about {need_mb:,.0f} MB of memory, over the limit of "
            f"{budget_mb:,.0f} MB; use a smaller batch, fewer channels, more pooling or "
            "narrower layers"
        )
    return n_params


def check_owner_limit(busy: int, per_owner: int) -> None:
    """Refuse one more run to a person who has `busy` runs training, at most `per_owner`."""
    if busy >= per_owner:
        raise ConfigError(
            f"you already have {busy} run{'s' if busy > 1 else ''} training "
            f"(at most {per_owner} at once); stop one or wait for it to finish"
        )


def usage(runs_dir: str | Path) -> dict[str, Usage]:
    """What each owner keeps in the runs folder: runs (broken ones too) and their bytes."""
    return usage_by_owner((i.owner, folder_bytes(i.path)) for i in list_runs(runs_dir))


def check_quota(runs_dir: str | Path, owner: str, caps: Caps, n_params: list[int]) -> None:
    """Refuse new runs of `n_params` parameters each (one, or a group's members: every one is
    a run the owner keeps) that would take `owner` over `caps`. No caps, no look at the folder."""
    if not caps.any:
        return
    have = usage(runs_dir).get(owner, Usage())
    check_room(Usage(have.items + len(n_params) - 1, have.bytes), caps,
               adding=sum(saved_bytes(n) for n in n_params))


__all__ = ["MEMORY_BUDGET_MB", "check_owner_limit", "check_quota", "memory_estimate", "preflight",
           "saved_bytes", "usage"]

"""Warming a server or a worker up, so that its first Start does not wait for imports.

The engine's training modules are imported with this module; torch and scikit-learn, which
they load only on first use, are loaded here by `warm_up`, meant for a background thread
or a worker's start.
"""

from __future__ import annotations

# What a first job uses: imported here so that the warm-up has loaded them.
from digits_core.images import augment  # noqa: F401
from digits_core.store import runs  # noqa: F401
from digits_core.threads import ThreadShare, setup_torch_threads
from digits_core.training import centre_cache, learners, train  # noqa: F401


def warm_up() -> None:
    """Import and run once what a first job would load lazily (torch, scikit-learn's split,
    an optimiser step), and take a first look at the machine's load (`ThreadShare.look`),
    so that a first run's thread count is judged on the time since."""
    import sklearn.model_selection  # noqa: F401  (data.split_indices)
    import torch

    setup_torch_threads()
    with ThreadShare._lock:
        ThreadShare.look()
    layer = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(layer.parameters())
    layer(torch.zeros(1, 4)).sum().backward()
    opt.step()


__all__ = ["warm_up"]

"""Warming a server or a worker up, so that its first Start does not wait for imports.

`warm_up` loads what a first job would load on first use (torch, scikit-learn's split, the
augmentation and the centre-line cache, which import torch) and runs an optimiser step;
meant for a background thread or a worker's start. Importing this module loads none of it:
the first page of a server must not wait for torch.
"""

from __future__ import annotations

from digits_core.threads import ThreadShare, setup_torch_threads


def warm_up() -> None:
    """Import and run once what a first job would load lazily (torch, scikit-learn's split,
    an optimiser step), and take a first look at the machine's load (`ThreadShare.look`),
    so that a first run's thread count is judged on the time since."""
    # Here, not at the top: these import torch, which the first page must not wait for.
    import sklearn.model_selection  # noqa: F401  (data.split_indices)
    import torch

    from digits_core.images import augment  # noqa: F401
    from digits_core.store import runs  # noqa: F401
    from digits_core.training import centre_cache, learners  # noqa: F401

    setup_torch_threads()
    with ThreadShare._lock:
        ThreadShare.look()
    layer = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(layer.parameters())
    layer(torch.zeros(1, 4)).sum().backward()
    opt.step()


__all__ = ["warm_up"]

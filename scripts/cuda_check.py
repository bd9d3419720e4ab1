"""The CUDA path, on a machine with a GPU: kept centre lines and the augmentation on the
device, then short runs of the default CNN and the `best` preset (weights averaged) on CUDA.

    python scripts/cuda_check.py MNIST_DIR

Prints one line per check and ALL OK; stops with an AssertionError at the first that fails.
Runs and caches go to temporary folders.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(mnist_dir: str) -> None:
    os.environ["DIGITLAB_DATA_HOME"] = tempfile.mkdtemp()
    os.environ["DIGITLAB_RUNS"] = tempfile.mkdtemp()
    import torch

    from digits_core.images.augment import augment_batch, centre_lines
    from digits_core.presets import default_cnn_experiment, get_preset
    from digits_core.training import centre_cache
    from digits_core.training.jobs import run_experiment

    assert torch.cuda.is_available(), "no CUDA device"
    print("torch", torch.__version__, torch.cuda.get_device_name(0))
    x = torch.rand(300, 28, 28, device="cuda") * (torch.rand(300, 28, 28, device="cuda") > 0.7)
    lines = centre_cache.centre_lines_of(x)
    assert lines.device.type == "cuda" and torch.equal(lines.cpu(), centre_lines(x.unsqueeze(1).cpu()))
    g = torch.Generator(device="cuda").manual_seed(0)
    out = augment_batch(x[:128].unsqueeze(1), g, strength=0.5, labels=torch.arange(128, device="cuda") % 10,
                        centres=lines[:128])
    assert out.shape == (128, 1, 28, 28) and out.device.type == "cuda" and torch.isfinite(out).all()
    print("centre lines and augmentation on cuda: ok")
    for name, epochs in (("default-cnn", 1), ("best", 2)):
        exp = default_cnn_experiment(epochs, 0) if name == "default-cnn" else get_preset("best").build()
        exp.train.epochs, exp.train.device, exp.data.mnist_dir = epochs, "cuda", mnist_dir
        start = time.perf_counter()
        h = run_experiment(exp).snapshot()
        print(f"{name}, {epochs} epoch(s) on cuda: {h.status}, test {h.final_test_acc}, "
              f"{h.images_per_s:,.0f} images/s, {time.perf_counter() - start:.1f} s, "
              f"weights averaged at {exp.train.weight_average}")
        assert h.status == "finished" and h.final_test_acc > 0.985, h.message
    print("ALL OK")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mnist")

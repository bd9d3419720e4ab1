"""The benchmark's smoke mode: every code path runs on tiny data and the JSON is complete.

Nothing here is timed or judged: `--quick` verdicts mean nothing, only the report's shape does.
"""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from repo_paths import REPO, SHARED_MNIST

GOALS = {
    "cnn_acc_1epoch", "cnn_acc_3epochs", "numpy_mlp_acc", "digits_acc", "digits_vs_svc",
    "time_to_99_ratio", "mlp_epoch_ratio", "job_overhead", "tsne_time_ratio", "tsne_trust_gap",
    "canvas_p50", "canvas_p90", "train_peak_rss",
}
SECTIONS = {
    "default_cnn", "default_cnn_cli", "numpy_mlp", "mlp_speed", "job_overhead", "digits", "tsne",
    "canvas",
}


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


def tiny_mnist(folder, n_train=600, n_test=300):
    """A few hundred MNIST digits as IDX files; drawn from the bundled digits if MNIST is absent."""
    if (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        from digits_core.mnist import load_mnist

        x_tr, y_tr, x_te, y_te = load_mnist(SHARED_MNIST)
    else:
        from digits_core.data import load_digits

        images, labels = load_digits()
        big = np.kron(images * (255 / 16), np.ones((3, 3))).round().astype(np.uint8)  # (N, 24, 24)
        big = np.pad(big, ((0, 0), (2, 2), (2, 2)))
        x_tr, y_tr, x_te, y_te = big, labels, big[::-1], labels[::-1]
    for name, arr, magic in (
        ("train-images-idx3-ubyte", x_tr[:n_train], 2051),
        ("train-labels-idx1-ubyte", y_tr[:n_train], 2049),
        ("t10k-images-idx3-ubyte", x_te[:n_test], 2051),
        ("t10k-labels-idx1-ubyte", y_te[:n_test], 2049),
    ):
        _write_idx(folder / name, np.asarray(arr), magic)
    return folder


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    mnist = tiny_mnist(tmp_path_factory.mktemp("tiny_mnist"))
    out = tmp_path_factory.mktemp("bench") / "latest.json"
    r = subprocess.run(
        [sys.executable, "-m", "digits_core.bench", "--mnist-dir", mnist, "--out", out, "--quick"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text()), r.stdout


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_report_has_every_goal_with_a_verdict(quick_report):
    report, _ = quick_report
    assert report["quick"] is True
    goals = {g["key"]: g for g in report["goals"]}
    assert set(goals) == GOALS
    for g in goals.values():
        assert isinstance(g["goal"], str) and g["goal"]
        assert g["measured"] is None or _number(g["measured"])
        assert _number(g["target"]) and g["better"] in ("higher", "lower")
        assert isinstance(g["passed"], bool)
    assert report["all_passed"] == all(g["passed"] for g in goals.values())


def test_report_has_machine_info_and_raw_figures(quick_report):
    report, _ = quick_report
    m = report["machine"]
    assert isinstance(m["cpu_count"], int) and m["cpu_count"] >= 1
    assert isinstance(m["torch"], str)
    assert isinstance(m["torch_threads_references"], int) and isinstance(m["torch_threads_product"], int)
    assert len(m["load_start"]) == 3 and all(_number(v) for v in m["load_start"] + m["load_end"])
    assert m["git_commit"] is None or len(m["git_commit"]) == 40
    assert _number(report["wall_s"]) and report["wall_s"] > 0
    f = report["figures"]
    assert set(f) == SECTIONS == set(report["section_s"])
    cnn = f["default_cnn"]
    assert 0 <= cnn["acc_1epoch_mean"] <= 1
    assert cnn["reference_lenet"]["median_epoch_s"] > 0
    assert all(len(c) == 3 for run in cnn["one_epoch"] for c in run["checkpoints"])
    assert f["mlp_speed"]["numpy_median_s"] > 0 and f["mlp_speed"]["torch_median_s"] > 0
    assert f["job_overhead"]["bare_median_s"] > 0
    assert 0 < f["digits"]["svc_acc"] <= 1 and f["digits"]["test_images"] == 360
    assert 0 <= f["tsne"]["trust_ours"] <= 1 and f["tsne"]["time_sklearn"] > 0
    assert f["canvas"]["busy"]["n"] > 0 and f["canvas"]["busy"]["p50_ms"] > 0
    cli = f["default_cnn_cli"]
    assert [r["returncode"] for r in cli["runs"]] == [0] and 0 <= cli["acc_mean"] <= 1
    assert cli["peak_rss_gib"] > 0.05 and cli["polled_peak_rss_gib"] <= cli["peak_rss_gib"] * 1.1


def test_table_prints_one_row_per_goal(quick_report):
    report, stdout = quick_report
    rows = [l for l in stdout.splitlines() if re.search(r"\s(PASS|FAIL)(\s|$)", l)]
    assert len(rows) == len(GOALS)
    assert "quick" in stdout

"""The benchmark (benchmarks/bench.py): its goal table, judged on made-up figures, and its
smoke mode (`--quick`, marked `bench`: every code path on tiny data, the JSON complete).

Nothing here is timed or judged: `--quick` verdicts mean nothing, only the report's shape does.
"""

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
from idx_files import write_mnist
from repo_paths import REPO, SHARED_MNIST

from benchmarks.bench import FULL, Goal, goals, table, tsne_vs_sklearn

GOALS = {
    "cnn_acc_1epoch", "cnn_acc_3epochs", "numpy_mlp_acc", "digits_acc", "digits_vs_svc",
    "best_acc", "time_to_99_ratio", "mlp_epoch_ratio", "job_overhead", "live_embedding_overhead",
    "tsne_time_ratio", "tsne_trust_gap",
    "canvas_p50", "canvas_p90", "train_peak_rss",
}
SECTIONS = {
    "default_cnn", "default_cnn_cli", "numpy_mlp", "mlp_speed", "job_overhead", "live_embedding",
    "digits", "best", "tsne", "canvas", "sweep_scaling",
}


def tiny_mnist(folder, n_train=600, n_test=300):
    """A few hundred MNIST digits as IDX files; drawn from the bundled digits if MNIST is absent."""
    if (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        from digits_core.data.mnist import load_mnist

        x_tr, y_tr, x_te, y_te = load_mnist(SHARED_MNIST)
    else:
        from digits_core.data.datasets import load_digits

        images, labels = load_digits()
        big = np.kron(images * (255 / 16), np.ones((3, 3))).round().astype(np.uint8)  # (N, 24, 24)
        big = np.pad(big, ((0, 0), (2, 2), (2, 2)))
        x_tr, y_tr, x_te, y_te = big, labels, big[::-1], labels[::-1]
    return write_mnist(folder, {"train-images": x_tr[:n_train], "train-labels": y_tr[:n_train],
                                "test-images": x_te[:n_test], "test-labels": y_te[:n_test]}, gz=False)


def figures(**over) -> dict:
    """Raw figures as run_bench returns them, every goal just passing unless overridden."""
    f = {
        "default_cnn": {
            "reference_lenet": {"median_epoch_s": 10.0},
            "one_epoch": [{"seed": 0, "final_acc": 0.991, "checkpoints": [[100, 4.0, 0.991]]}],
            "acc_1epoch_mean": 0.9915, "time_to_99_median_s": 4.0, "time_to_99_ratio": 0.4,
            "epoch_train_s_median": 8.0,
        },
        "default_cnn_cli": {"runs": [{"seed": 0, "final_acc": 0.995}], "acc_mean": 0.995,
                            "peak_rss_gib": 1.0, "polled_peak_rss_gib": 0.9, "failed": 0},
        "numpy_mlp": {"runs": [{"seed": 0, "final_acc": 0.983}], "acc_mean": 0.983},
        "digits": {"runs": [{"seed": 0, "final_acc": 0.995}], "acc_mean": 0.995, "svc_acc": 0.98},
        "best": {"skipped": False, "final_acc": 0.9965, "seconds": 580.0},
        "mlp_speed": {"ratio": 0.8, "numpy_median_s": 0.8, "torch_median_s": 1.0},
        "job_overhead": {"overhead": 0.02, "job_median_s": 1.02, "bare_median_s": 1.0, "epochs": 5,
                         "probes": 40, "frames": 12, "job_s": [1.02] * 7},
        "live_embedding": {"overhead": 0.05, "live_s": [10.5], "plain_s": [10.0], "frames": [6]},
        "tsne": {"ratio": 0.3, "time_ours": 1.0, "time_sklearn": 3.3, "trust_gap": 0.0,
                 "trust_ours": 0.99, "trust_sklearn": 0.99},
        "canvas": {"busy": {"p50_ms": 1.5, "p90_ms": 4.0, "max_ms": 9.0},
                   "idle": {"p50_ms": 1.2, "p90_ms": 2.0},
                   "busy_stages": {"preprocess": {"p50_ms": 1.0}, "model": {"p50_ms": 0.5}}},
    }
    for path, value in over.items():
        section, key = path.split("__")
        f[section][key] = value
    return f


def test_every_goal_passes_on_figures_that_meet_it():
    verdicts = {g.key: g.passed for g in goals(figures(), FULL)}
    assert set(verdicts) == GOALS and all(verdicts.values())


@pytest.mark.parametrize(
    "override, key",
    [
        ({"default_cnn__acc_1epoch_mean": 0.9905}, "cnn_acc_1epoch"),
        ({"best__seconds": 601.0}, "best_acc"),
        ({"best__final_acc": 0.995}, "best_acc"),
        ({"default_cnn_cli__acc_mean": 0.9939}, "cnn_acc_3epochs"),
        ({"default_cnn__time_to_99_ratio": 0.51}, "time_to_99_ratio"),
        ({"default_cnn__time_to_99_ratio": None, "default_cnn__time_to_99_median_s": None},
         "time_to_99_ratio"),
        ({"digits__acc_mean": 0.97}, "digits_vs_svc"),
        ({"job_overhead__overhead": 0.06}, "job_overhead"),
        ({"live_embedding__overhead": 0.11}, "live_embedding_overhead"),
        ({"tsne__trust_gap": -0.02}, "tsne_trust_gap"),
        ({"default_cnn_cli__peak_rss_gib": 1.6}, "train_peak_rss"),
    ],
)
def test_a_figure_past_its_target_fails_that_goal_only(override, key):
    failed = {g.key for g in goals(figures(**override), FULL) if not g.passed}
    assert failed == {key} if key != "digits_vs_svc" else key in failed


def test_a_partial_run_judges_only_the_goals_of_its_sections():
    f = figures()
    partial = {k: f[k] for k in ("job_overhead", "live_embedding")}
    assert [g.key for g in goals(partial, FULL)] == ["job_overhead", "live_embedding_overhead"]


def test_unmeasured_goal_fails_and_prints_na():
    g = Goal("x", "a goal", None, 1.0, "lower", "ms")
    assert not g.passed
    assert "n/a" in table([g]) and "FAIL" in table([g])


def test_table_prints_one_row_per_goal_with_units():
    text = table(goals(figures(), FULL))
    rows = [l for l in text.splitlines() if re.search(r"\s(PASS|FAIL)(\s|$)", l)]
    assert len(rows) == len(GOALS)
    assert "99.15 %" in text and "0.40x" in text and "1.50 ms" in text


@pytest.mark.bench
def test_tsne_vs_sklearn_reports_both():
    from sklearn.datasets import load_digits

    x = load_digits().data[:150]
    out = tsne_vs_sklearn(x, seed=0, repeats=1)
    assert out["ratio"] == pytest.approx(out["time_ours"] / out["time_sklearn"])
    assert 0.5 < out["trust_ours"] <= 1 and 0.5 < out["trust_sklearn"] <= 1


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    mnist = tiny_mnist(tmp_path_factory.mktemp("tiny_mnist"))
    out = tmp_path_factory.mktemp("bench") / "latest.json"
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--mnist-dir", mnist, "--out", out, "--quick"],
        capture_output=True, text=True, cwd=REPO, timeout=900,  # a deadline, not a goal
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text()), r.stdout


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@pytest.mark.bench
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


@pytest.mark.bench
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
    assert f["job_overhead"]["bare_median_s"] > 0 and f["job_overhead"]["frames"] >= 2
    assert 0 < f["digits"]["svc_acc"] <= 1 and f["digits"]["test_images"] == 360
    assert 0 <= f["tsne"]["trust_ours"] <= 1 and f["tsne"]["time_sklearn"] > 0
    assert f["canvas"]["busy"]["n"] > 0 and f["canvas"]["busy"]["p50_ms"] > 0
    cli = f["default_cnn_cli"]
    assert [r["returncode"] for r in cli["runs"]] == [0] and 0 <= cli["acc_mean"] <= 1
    assert cli["peak_rss_gib"] > 0.05 and cli["polled_peak_rss_gib"] <= cli["peak_rss_gib"] * 1.1
    sweep = f["sweep_scaling"]  # every run of the sweep ends, on each pool size timed
    assert set(sweep["finished"]) == set(sweep["wall_s"]) and len(sweep["wall_s"]) >= 2
    assert all(k == sweep["runs"] for k in sweep["finished"].values())
    assert all(s > 0 for s in sweep["wall_s"].values())


@pytest.mark.bench
def test_only_runs_the_named_sections(tmp_path):
    mnist = tiny_mnist(tmp_path / "tiny_mnist")
    out = tmp_path / "only.json"
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--mnist-dir", mnist, "--out", out, "--quick",
         "--only", "job_overhead"],
        capture_output=True, text=True, cwd=REPO, timeout=900,  # a deadline, not a goal
    )
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["figures"]) == {"job_overhead"} and report["sections"] == ["job_overhead"]
    assert [g["key"] for g in report["goals"]] == ["job_overhead"]

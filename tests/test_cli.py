"""The CLI contract, through real subprocesses: last lines, exit codes, one-line errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from repo_paths import REPO


def cli(*args, cwd=REPO):
    """`python -m digits_core ARGS` run in `cwd` (the repository unless a test's own folder)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "digits_core", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_runs")
    r = cli("train", "--dataset", "digits", "--model", "numpy-mlp", "--hidden", "64",
            "--epochs", "8", "--lr", "0.003", "--seed", "3", "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


def test_presets_lists_the_eight_classics():
    r = cli("presets")
    names = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert names[:8] == ["S1a", "S1b", "S1c", "S2a", "S2b", "S3", "S4", "S5"]
    assert all("\t" in line for line in r.stdout.splitlines())


def test_train_prints_run_folder_last_and_evaluate_agrees(trained):
    out, r = trained
    run = r.stdout.strip().splitlines()[-1]
    assert run.startswith(str(out))
    acc_line = [l for l in r.stdout.splitlines() if l.startswith("test accuracy")][0]
    ev = cli("evaluate", "--run", run)
    assert ev.returncode == 0, ev.stderr
    last = ev.stdout.strip().splitlines()[-1]
    assert last.startswith("accuracy 0.") and last.split()[-1] == acc_line.split()[-1]
    assert float(last.split()[-1]) > 0.9
    assert "confusion" in ev.stdout


def test_predict_reads_images_and_says_no_digit_for_blank(trained, tmp_path):
    out, r = trained
    run = r.stdout.strip().splitlines()[-1]
    from digits_core.data.datasets import load_digits

    images, labels = load_digits()
    paths = []
    for i in range(20):
        small = Image.fromarray((images[i].astype(np.int32) * 255 // 16).astype(np.uint8))
        p = tmp_path / f"d{i}.png"
        small.resize((240, 240), Image.BILINEAR).save(p)  # light ink on dark, 240x240
        paths.append(p)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((280, 280), np.uint8)).save(blank)
    pr = cli("predict", "--run", run, *paths, blank)
    assert pr.returncode == 0, pr.stderr
    lines = pr.stdout.strip().splitlines()
    assert len(lines) == 21
    digits = [l.split("\t")[1] for l in lines[:20]]
    # The contract is the output format; the reading itself is tested in test_drawing.py.
    assert sum(d == str(labels[i]) for i, d in enumerate(digits)) >= 14
    assert lines[-1].split("\t")[1] == "-"
    assert all(0 <= float(l.split("\t")[2]) <= 1 for l in lines)


def test_runs_marks_broken_folders(trained):
    out, _ = trained
    (out / "broken-one").mkdir(exist_ok=True)
    r = cli("runs", out)
    assert r.returncode == 0
    broken = [l for l in r.stdout.splitlines() if l.startswith("broken-one")]
    assert broken and "BROKEN" in broken[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--dataset", "digits", "--model", "cnn", "--lr", "-1", "--out", "x"], "learning rate"),
        (["train", "--dataset", "digits", "--model", "torch-mlp", "--hidden", "0", "--out", "x"], "positive"),
        (["train", "--dataset", "digits", "--model", "rnn", "--out", "x"], "invalid choice"),
        (["train", "--dataset", "digits", "--out", "x"], "--model"),
        (["train", "--dataset", "mnist", "--model", "cnn", "--mnist-dir", "/nonexistent", "--out", "x"], "nonexistent"),
        (["evaluate", "--run", "/nonexistent"], "missing"),
        (["predict", "--run", "/nonexistent", "a.png"], "missing"),
        (["runs", "/nonexistent"], "no such"),
        (["train", "--preset", "S9", "--out", "x"], "no preset"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line(args, words, tmp_path):
    r = cli(*args, cwd=tmp_path)  # `--out x` is refused, and nothing may be left behind
    assert r.returncode != 0
    assert list(tmp_path.iterdir()) == []
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert words in err[0]


def test_predict_with_a_corrupt_image(trained, tmp_path):
    out, r = trained
    run = r.stdout.strip().splitlines()[-1]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    pr = cli("predict", "--run", run, bad)
    assert pr.returncode == 1 and "bad.png" in pr.stderr and "Traceback" not in pr.stderr

"""Where the repository and the project's MNIST copy are (for tests and benchmarks only)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

"""The Ray executor on a real multi-node cluster: `ray.cluster_utils.Cluster` starts a head
(which schedules nothing) and three one-CPU worker nodes as separate raylet processes on this
machine, the runs folder shared between them as a real cluster's storage would be.

- A sweep of 8 runs spreads over the nodes (each run's worker process is a child of one
  node's raylet) and every run's folder is complete.
- A node removed mid-run (its raylet and workers killed) leaves its runs interrupted,
  continuable on another node; the runs on the other nodes train on, nothing else lost.

Marked `ray` (`make test-ray`). What this cannot test, a real multi-machine cluster
needs: storage every machine mounts at the same path, and the same Python and wheels on
every machine (docs/executors.md, "On a Ray cluster")."""

import json

import psutil
import pytest
from waiting import wait_for

from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.serve.runner import JobRunner
from digits_core.serve.sweep import Axis, Sweep, SweepSpec
from digits_core.store.runs import inspect_run, load_run

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from digits_core.serve.executors import RayExecutor

NODES = 3
RUN_FILES = {"experiment.json", "meta.json", "history.json", "weights.npz", "normalizer.npz"}


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [c.add_node(num_cpus=1) for _ in range(NODES)]
    c.wait_for_nodes()
    executor = RayExecutor(address=c.address, log_to_driver=False)
    yield c, nodes, executor
    ray.shutdown()
    c.shutdown()


def tiny(epochs: int, width: int = 8) -> Experiment:
    return Experiment(DataConfig(dataset="digits"), ModelConfig(family="numpy-mlp", hidden=[width]),
                      TrainConfig(epochs=epochs, batch_size=32), name="custom")


def node_of(nodes, folder) -> int | None:
    """Which node trained the run in `folder`: the node whose raylet started its worker."""
    pid = json.loads((folder / "meta.json").read_text())["pid"]
    try:
        parents = {p.pid for p in psutil.Process(pid).parents()}
    except psutil.NoSuchProcess:
        return None
    # a removed node has no raylet any more (and no live worker of it can have one as parent)
    raylets = {i: n.all_processes["raylet"][0].process.pid for i, n in enumerate(nodes)
               if n.all_processes.get("raylet")}
    return next((i for i, raylet in raylets.items() if raylet in parents), None)


def test_a_sweep_of_eight_runs_spreads_over_the_nodes_and_every_folder_is_complete(cluster, tmp_path):
    _, nodes, executor = cluster
    runner = JobRunner(tmp_path, executor=executor, max_jobs=NODES)
    # long enough that every node takes some runs; the workers stay up (actors are killed,
    # the worker processes their nodes keep are reused), so the node of each is known after
    spec = SweepSpec(tiny(epochs=30), [Axis("lr", [0.003, 0.01, 0.03, 0.1]), Axis("width", [8, 16])],
                     halving=False)
    sweep = Sweep(runner, spec, tick_s=0.2).start()
    seen: dict[str, int] = {}

    def note_nodes() -> bool:
        for name in sweep.names:
            if name not in seen and runner.history(name).step > 0:
                node = node_of(nodes, tmp_path / name)
                if node is not None:
                    seen[name] = node
        return sweep.done

    assert wait_for(note_nodes, 600)
    results = sweep.results()
    assert [r.status for r in results] == ["finished"] * 8
    for r in results:
        folder = tmp_path / r.name
        assert RUN_FILES <= {p.name for p in folder.iterdir()}, r.name
        info = inspect_run(folder)
        assert info.status == "finished" and info.ok
        run = load_run(folder)
        assert len(run.history.epochs) == 30 and run.history.final_test_acc == r.acc
    assert len(set(seen.values())) >= 2, seen  # more than one node trained


def test_a_node_removed_mid_run_interrupts_its_runs_only_and_they_continue_elsewhere(cluster, tmp_path):
    c, nodes, executor = cluster
    runner = JobRunner(tmp_path, executor=executor, max_jobs=NODES)
    names = runner.start_group([tiny(epochs=1000, width=w) for w in (8, 16, 24)])
    # each has a first checkpoint (a run killed before it has nothing to continue from)
    assert wait_for(lambda: all((tmp_path / n / "weights.npz").is_file() for n in names), 300)
    where = {n: node_of(nodes, tmp_path / n) for n in names}
    assert None not in where.values() and len(set(where.values())) == NODES  # one run per node
    doomed_node = where[names[0]]
    c.remove_node(nodes[doomed_node])  # its raylet and its workers are killed
    doomed = [n for n in names if where[n] == doomed_node]
    others = [n for n in names if n not in doomed]
    assert wait_for(lambda: all(runner.history(n).status == "interrupted" for n in doomed), 120)
    assert "Ray worker" in runner.history(doomed[0]).message
    steps = {n: runner.history(n).step for n in others}
    assert wait_for(lambda: all(runner.history(n).step > steps[n] for n in others), 120)  # train on
    for n in others:
        runner.stop(n)
    assert wait_for(lambda: all(not runner.busy(n) for n in names), 120)
    for n in others:
        assert inspect_run(tmp_path / n).status == "stopped" and inspect_run(tmp_path / n).ok
    for n in doomed:
        info = inspect_run(tmp_path / n)
        assert info.status == "interrupted" and info.ok, info.reason  # its last checkpoint is kept
        epochs_before = len(load_run(tmp_path / n).history.epochs)
        runner.continue_run(n, 2)
        assert wait_for(lambda: runner.history(n).status == "finished", 300)
        assert node_of(nodes, tmp_path / n) != doomed_node
        assert len(load_run(tmp_path / n).history.epochs) == epochs_before + 2

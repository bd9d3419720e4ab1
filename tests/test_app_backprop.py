"""AppTest of the Backprop page's controls: Step, Step x10, a learning rate changed between
steps, Break it (both checks turn red, the chain rule says what is missing), Run/Pause,
another network, and every view of the step drawn.

`run_every` never fires under AppTest: while running, each script run takes one step, as
each timed fragment run does in a browser."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path / "data-home"))


@pytest.fixture
def at() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/8_Backprop.py").run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def loss_points(at: AppTest) -> list[float]:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-bp_loss"))
    return json.loads(chart.proto.spec)["data"][0]["y"]


def checks(at: AppTest) -> tuple[list[str], list[str]]:
    """(passing, failing) check lines."""
    return [s.value for s in at.success], [e.value for e in at.error]


def test_step_and_step_x10_take_steps_and_both_checks_pass(at):
    assert metric(at, "Step") == "0"
    assert any("Press **Step**" in i.value for i in at.info)
    at.button(key="bp_step").click().run()
    ok(at)
    assert metric(at, "Step") == "1" and len(loss_points(at)) == 1
    passing, failing = checks(at)
    assert not failing and len(passing) == 2
    assert metric(at, "Gradient checks") == "✓ FD · ✓ torch"
    assert "Finite differences" in passing[0] and "PyTorch autograd (float64)" in passing[1]
    stepper = at.session_state["bp_stepper"]
    assert loss_points(at) == pytest.approx(stepper.losses)
    # the chain rule's sum is the step's own gradient, to the digits shown
    i, j = at.session_state["bp_i"], at.session_state["bp_j"]
    total = f"{stepper.last.layers[0].dW[i, j]:.4g}"
    assert any(f"= {total}" in line.value for line in at.latex)
    at.button(key="bp_step10").click().run()
    ok(at)
    assert metric(at, "Step") == "11" and len(loss_points(at)) == 11
    assert at.session_state["bp_stepper"].steps == 11


def test_the_learning_rate_changes_between_steps(at):
    at.button(key="bp_step").click().run()
    at.number_input(key="bp_lr").set_value(0.05).run()
    at.button(key="bp_step").click().run()
    ok(at)
    stepper = at.session_state["bp_stepper"]
    assert stepper.last.lr == 0.05 and stepper.steps == 2
    assert metric(at, "Learning rate") == "0.05"
    layer = stepper.last.layers[0]  # plain SGD: the step is -lr x the gradient
    assert abs(layer.W_step + 0.05 * layer.dW).max() < 1e-15


def test_the_rate_break_it_and_the_steps_survive_a_visit_to_another_page(at):
    at.number_input(key="bp_lr").set_value(0.2).run()
    at.toggle(key="bp_broken").set_value(True).run()
    at.button(key="bp_step").click().run()
    at.switch_page("pages/2_Data.py").run()
    at.switch_page("pages/8_Backprop.py").run()
    ok(at)
    assert at.number_input(key="bp_lr").value == 0.2 and at.toggle(key="bp_broken").value is True
    assert metric(at, "Step") == "1"


def test_break_it_is_caught_by_both_checks_and_mending_it_passes_again(at):
    at.button(key="bp_step").click().run()
    at.toggle(key="bp_broken").set_value(True).run()
    at.button(key="bp_step").click().run()
    ok(at)
    passing, failing = checks(at)
    assert not passing and len(failing) == 2
    assert metric(at, "Gradient checks") == "✗ FD · ✗ torch"
    assert "Finite differences" in failing[0] and "above" in failing[0]
    assert "PyTorch autograd" in failing[1] and "W(1)" in failing[1]  # the layer below the activation
    assert any("broken step leaves out" in m.value for m in at.markdown)
    at.toggle(key="bp_broken").set_value(False).run()
    at.button(key="bp_step").click().run()
    passing, failing = checks(at)
    assert not failing and len(passing) == 2


def test_run_steps_on_every_run_until_paused(at):
    at.button(key="bp_run").click().run()
    ok(at)
    assert at.button(key="bp_run").label == "Pause" and at.button(key="bp_step").disabled
    first = at.session_state["bp_stepper"].steps
    at.run()
    assert at.session_state["bp_stepper"].steps == first + 1 >= 2
    at.button(key="bp_run").click().run()
    assert at.button(key="bp_run").label == "Run"
    paused = at.session_state["bp_stepper"].steps
    at.run()
    assert at.session_state["bp_stepper"].steps == paused


def test_the_chain_rule_follows_the_largest_gradient_until_a_weight_is_picked(at):
    at.button(key="bp_step").click().run()
    trace = at.session_state["bp_stepper"].last
    dW = abs(trace.layers[0].dW)
    assert dW[at.session_state["bp_i"], at.session_state["bp_j"]] == dW.max()
    at.number_input(key="bp_i").set_value(20).run()
    at.number_input(key="bp_j").set_value(2).run()
    assert at.checkbox(key="bp_auto").value is False
    at.button(key="bp_step10").click().run()
    ok(at)
    assert (at.session_state["bp_i"], at.session_state["bp_j"]) == (20, 2)
    assert "W^{(1)}_{20,2}" in at.latex[0].value
    at.checkbox(key="bp_auto").check().run()
    trace = at.session_state["bp_stepper"].last
    assert abs(trace.layers[0].dW[at.session_state["bp_i"], at.session_state["bp_j"]]) == abs(trace.layers[0].dW).max()


def widget(items, label: str):
    return next(w for w in items if w.label == label)


@pytest.mark.parametrize("view", ["Forward", "Backward", "Update", "One image"])
def test_another_network_and_every_view_of_its_step(at, view):
    """A 64-8-6-10 tanh network with Adam on batches of 5: its step draws in every view,
    both checks pass, and the update shows Adam's state."""
    widget(at.number_input, "Hidden units").set_value(8)
    widget(at.number_input, "Second hidden layer (0 = none)").set_value(6)
    widget(at.number_input, "Images per step").set_value(5)
    widget(at.radio, "Activation").set_value("tanh")
    widget(at.radio, "Optimiser").set_value("adam")
    widget(at.button, "Start over with this network").click().run()
    ok(at)
    cfg = at.session_state["bp_stepper"].config
    assert (cfg.hidden, cfg.activation, cfg.optimizer, cfg.batch_size) == ((8, 6), "tanh", "adam", 5)
    assert at.session_state["bp_lr"] == 0.03  # Adam's own default rate
    assert "64-8-6-10" in at.expander[0].label
    at.button(key="bp_step").click().run()
    at.radio(key="bp_view").set_value(view).run()
    ok(at)
    passing, failing = checks(at)
    assert not failing and len(passing) == 2
    keys = [c.proto.id for c in at.get("plotly_chart")]
    want = {"Forward": ["bp_f_z0", "bp_f_a1", "bp_f_probs"], "Backward": ["bp_b_dz2", "bp_b_dW0", "bp_b_db1"],
            "Update": ["bp_u_before0", "bp_u_step2", "bp_u_after1", "bp_u_m0", "bp_u_v2"],
            "One image": ["bp_e_x", "bp_e_l0", "bp_e_l2"]}[view]
    for k in want:
        assert any(i.endswith(f"-{k}") for i in keys), (k, keys)

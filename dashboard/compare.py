"""The Compare page's race: pick 2-4 contestants and a finish line, start them together,
watch their test accuracy and loss against time or images seen, then the leaderboard
(`digits_core.race`). A person's newest race and sweep are kept server-side, so a reload or
another page finds them running."""

from __future__ import annotations

import streamlit as st

from digits_core.analysis.drawings_by_shape import visible_inputs
from digits_core.errors import DigitLabError
from digits_core.presets import ALL
from digits_core.serve.links import one_line
from digits_core.serve.race import MAX_CONTESTANTS, Finish, Race

from . import state
from .charts import RUN_COLOURS, figure, inside_legend, layout_for

FORM = "form"
POLL_S = 1.0


@st.cache_resource
def _book() -> dict[str, dict]:
    """owner -> {"race": Race, "sweep": Sweep}: each person's newest of each."""
    return {}


def kept(kind: str):
    return _book().get(state.owner(), {}).get(kind)


def keep(kind: str, thing) -> None:
    _book().setdefault(state.owner(), {})[kind] = thing


def options() -> dict[str, str]:
    """Contestant choices: the Train form, every preset, every saved run's settings."""
    out = {FORM: f"The Train form ({state.experiment().name or 'custom'})"}
    out |= {f"preset:{n}": f"Preset {p.title}" for n, p in ALL.items()}
    out |= {f"run:{i.name}": f"Run {i.label}" for i in state.all_runs() if i.ok}
    return out


def contestant(key: str):
    """(label, experiment) of a choice. Raises RunError for a run that cannot be read."""
    if key == FORM:
        e = state.experiment()
        return e.name or "custom", e
    kind, name = key.split(":", 1)
    if kind == "preset":
        return name, ALL[name].build()
    info = next(i for i in state.all_runs() if i.name == name)
    return info.label, state.load(info).experiment


def start_race() -> None:
    ss = st.session_state
    try:
        finish = Finish(int(ss["race_epochs"])) if ss.get("race_finish", "epochs") == "epochs" \
            else Finish(None, float(ss["race_seconds"]))
        entries = [contestant(k) for k in ss.get("race_picks", [])]
        race = Race(state.runner(), entries, data=state.data_config(), finish=finish,
                    seed=state.experiment().train.seed)
        keep("race", race.start(owner=state.owner(), person=state.person()))
    except (DigitLabError, StopIteration) as e:
        ss["race_error"] = one_line(e) if isinstance(e, DigitLabError) else "that run is gone"


def race_form() -> None:
    choices = options()
    st.multiselect(f"Contestants (2 to {MAX_CONTESTANTS})", list(choices), key="race_picks",
                   format_func=choices.get, max_selections=MAX_CONTESTANTS,
                   placeholder="Presets, saved runs or the Train form…")
    c1, c2, c3 = st.columns([2, 2, 3])
    kind = c1.radio("Finish line", ["epochs", "time"], key="race_finish", horizontal=True,
                    format_func={"epochs": "epochs", "time": "time budget"}.get)
    if kind == "epochs":
        c2.number_input("Epochs", 1, 200, 3, key="race_epochs")
    else:
        c2.number_input("Seconds of training each", 5, 3600, 30, step=5, key="race_seconds")
    d = state.data_config()
    c3.caption(f"All train on **{d.dataset}** ({d.split} split, "
               f"{'all' if d.train_size is None else f'{d.train_size:,}'} images; the Data page's), "
               f"with seed {state.experiment().train.seed}: the same order of images and, where two "
               "models have the same shapes, the same initial weights.")
    st.button("Start the race", type="primary", key="race_start", on_click=start_race,
              icon=":material/flag:")
    if "race_error" in st.session_state:
        st.error(st.session_state.pop("race_error"))


AXES = {"time": ("seconds", "training time (s)"), "images": ("images", "images seen")}


def race_figures(race: Race, axis: str, presenter: bool):
    """Test accuracy and training loss of every contestant against `axis`, one colour each."""
    field, title = AXES[axis]
    acc, loss = [], []
    for i, (name, samples) in enumerate(race.series()):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        xs = [getattr(s, field) for s in samples]
        line = {"color": colour, "width": 3}
        acc.append({"type": "scatter", "x": xs, "y": [s.acc for s in samples], "name": name,
                    "mode": "lines+markers", "line": line, "marker": {"size": 5}})
        loss.append({"type": "scatter", "x": xs, "y": [s.loss for s in samples], "name": name,
                     "mode": "lines+markers", "line": line, "marker": {"size": 4}})
    height = 300
    a = layout_for("Test accuracy", presenter, height, {"title": {"text": title}, "rangemode": "tozero"},
                   {"title": {"text": "accuracy"}, "tickformat": ".0%", "range": [0, 1.005]})
    # a log scale: contestants' losses differ by orders of magnitude (a summed squared error
    # beside a mean cross-entropy), and each one's fall still shows
    b = layout_for("Training loss", presenter, height, {"title": {"text": title}, "rangemode": "tozero"},
                   {"title": {"text": "loss (log scale)"}, "type": "log"})
    return (figure(acc, inside_legend(a, presenter, top=False)),
            figure(loss, inside_legend(b, presenter, top=True)))


def contestant_line(race: Race, i: int, h) -> str:
    c = race.contestants[i]
    dot = f"<span style='color:{RUN_COLOURS[i % len(RUN_COLOURS)]}'>●</span>"
    what = h.status if h is not None else "gone"
    if what == "queued":
        q = state.runner().queue_position(c.name)
        what = f"queued, number {q[0]} in line" if q else "queued"
    elif what == "running" and h.total_steps:
        what = f"running, epoch {max(h.epoch, 1)}"
    elif h is not None and h.message and what not in ("running", "loading"):
        what = h.message
    return f"{dot} **{c.label}** · {c.params:,} parameters · {what}"


def live_view(kind: str, live, presenter: bool):
    """Draw the kept race or sweep (`kind`) with `live(group, presenter, was_running)`, in a
    fragment that polls while it runs; the group, or None when there is none."""
    group = kept(kind)
    if group is not None:
        running = not group.done
        st.fragment(run_every=POLL_S if running else None)(live)(group, presenter, running)
    return group


def drawings_cell(row: dict) -> str:
    """A leaderboard row's accuracy on the collected drawings of its input shape, or "—"."""
    acc, n = row["drawings accuracy"], row["drawings"]
    return "—" if acc is None else f"{acc:.1%} of {n}"


def race_view(presenter: bool) -> None:
    live_view("race", _race_live, presenter)


def _race_live(race: Race, presenter: bool, was_running: bool) -> None:
    for i, h in enumerate(race.histories()):
        st.markdown(contestant_line(race, i, h), unsafe_allow_html=True)
    axis = st.radio("Against", list(AXES), key="race_axis", horizontal=True,
                    format_func={"time": "training time", "images": "images seen (fair when one is slower)"}.get)
    acc, loss = race_figures(race, axis, presenter)
    left, right = st.columns(2)
    left.plotly_chart(acc, key="race_acc")
    right.plotly_chart(loss, key="race_loss")
    drawings = visible_inputs(state.runs_dir(), state.owner(), class_server=state.class_mode()) \
        if race.done else None  # read once the race is over, not on every poll
    rows = race.leaderboard(drawings)
    if race.done:
        win = rows[0]
        if win["test accuracy"] is not None:
            st.success(f"Finish ({race.finish}): **{win['contestant']}** wins with "
                       f"{win['test accuracy']:.2%} test accuracy.", icon=":material/sports_score:")
        else:
            st.warning("No contestant finished with a test accuracy.")
    else:
        st.button("Stop the race", key="race_stop", on_click=race.stop, icon=":material/stop:")
    st.dataframe(
        [{k: r[k] for k in ("place", "contestant", "status", "test accuracy", "parameters", "seconds",
                            "images/s", "images seen", "note")}
         | {"drawings accuracy": drawings_cell(r)} for r in rows],
        column_config={"test accuracy": st.column_config.NumberColumn(format="percent"),
                       "note": st.column_config.TextColumn(width="large")},
        hide_index=True, key="race_board")
    if was_running and race.done:
        st.rerun()  # the whole page: the fragment stops polling


__all__ = ["keep", "kept", "live_view", "race_figures", "race_form", "race_view"]

"""Training-curve figures read at a projector."""

import json

import numpy as np

from dashboard.charts import accuracy_figure
from digits_core.store.history import History


def test_epoch_end_diamonds_shrink_when_there_are_many():
    def size(epochs: int) -> float:
        h = History(epochs=list(range(1, epochs + 1)), test_acc=[0.9] * epochs, steps_per_epoch=10)
        return accuracy_figure(h).data[-1].marker.size

    assert size(5) == 11 and size(40) == 5 and size(300) == 4


def test_a_watched_run_is_drawn_again_only_when_its_history_changed():
    from dashboard.live import curves

    h = History(steps=[1, 2], loss=[2.3, 2.1], steps_per_epoch=10, step=2, status="running")
    first = curves("r-1", h, False, 290, now=100.0)
    polled = curves("r-1", History.from_dict(h.to_dict()), False, 290, now=200.0)  # a poll, nothing new
    assert polled[0] is first[0] and polled[1] is first[1]
    h.steps.append(3), h.loss.append(1.9)
    h.step = 3
    again = curves("r-1", h, False, 290, now=300.0)
    assert again[0] is not first[0] and len(again[0].data[0].x) == 3
    assert curves("r-1", h, True, 300, now=300.0)[0] is not again[0]  # presenter mode has figures of its own


def test_a_running_run_is_redrawn_at_most_every_redraw_s_but_its_first_step_and_its_end_at_once():
    """Each poll that sends a new figure makes the browser redraw the chart with Plotly, CPU
    taken from training on the same machine: a running run's polls within REDRAW_S send the
    last figures again, and the next redraw draws every point since."""
    from dashboard.live import REDRAW_S, curves

    h = History(step=0, steps_per_epoch=10, status="running", start_loss=2.4)
    empty = curves("r-2", h, False, 290, now=0.0)
    h.steps, h.loss, h.step = [1], [2.3], 1
    first = curves("r-2", h, False, 290, now=0.1)  # the first point: at once
    assert first[0] is not empty[0] and len(first[0].data[0].x) == 2
    for step in (2, 3, 4):
        h.steps.append(step), h.loss.append(2.0), h.probe_steps.append(step), h.probe_test_acc.append(0.5)
        h.probe_train_acc.append(0.4)
        h.step = step
        assert curves("r-2", h, False, 290, now=0.1 + REDRAW_S * step / 5)[0] is first[0]
    later = curves("r-2", h, False, 290, now=0.2 + REDRAW_S)
    assert list(later[0].data[0].x) == [0.0, 0.1, 0.2, 0.3, 0.4]  # every step since, none lost
    assert list(later[1].data[0].x) == [0.2, 0.3, 0.4]
    h.steps.append(5), h.loss.append(1.8)
    h.step, h.status = 5, "finished"
    ended = curves("r-2", h, False, 290, now=0.3 + REDRAW_S)  # its end: at once, to the last step
    assert ended[0] is not later[0] and ended[0].data[0].x[-1] == 0.5


def test_the_digit_grid_picture_is_the_mosaic_dark_on_light_with_its_rows_labelled():
    import base64
    import io

    from PIL import Image

    from dashboard.pictures import digit_grid_html

    mosaic = np.zeros((80, 80), np.float32)
    mosaic[8:16, :8] = 16  # one full-ink image: row 1, column 0
    html = digit_grid_html(mosaic, (8, 8), width=320)
    png = base64.b64decode(html.split("data:image/png;base64,")[1].split('"')[0])
    grey = np.asarray(Image.open(io.BytesIO(png)))
    assert grey.shape == (89, 89) and grey[9:17, :8].max() == 0 and grey[:9].min() == 255
    full = digit_grid_html(np.full((80, 80), 16, np.float32), (8, 8))  # every digit all ink
    grey = np.asarray(Image.open(io.BytesIO(base64.b64decode(full.split("base64,")[1].split('"')[0]))))
    assert (grey[:, 8::9] == 255).all() and (grey[8::9] == 255).all()  # white between digits
    assert [f">{k}</div>" in html for k in range(10)] == [True] * 10
    assert "max-width:320px" in html and "image-rendering:pixelated" in html


def test_the_train_page_watches_a_starting_run_closely_and_a_queued_one_seldom():
    from dashboard.live import POLL_S, QUEUED_POLL_S, STARTING_POLL_S, pace, poll_seconds

    assert pace(History(status="queued")) == "queued" and pace(None) == "queued"
    assert pace(History(status="loading")) == "starting"
    assert pace(History(status="running", step=0)) == "starting"
    assert pace(History(status="running", step=1)) == "running"
    assert pace(History(status="stopping", step=5)) == "running"
    assert [poll_seconds(p) for p in ("starting", "running", "queued")] == [STARTING_POLL_S, POLL_S, QUEUED_POLL_S]
    assert STARTING_POLL_S < POLL_S < QUEUED_POLL_S


def _busy_history(steps: int = 5000) -> History:
    rng = np.random.default_rng(0)
    loss = list(np.exp(-np.arange(steps) / 800) + rng.normal(0, 0.05, steps))
    probes = list(range(50, steps, 250))
    return History(steps=list(range(1, steps + 1)), loss=loss, steps_per_epoch=1000, step=steps,
                   probe_steps=probes, probe_test_acc=list(np.linspace(0.5, 0.97, len(probes))),
                   probe_train_acc=list(np.linspace(0.4, 0.98, len(probes))),
                   epochs=[1, 2, 3, 4, 5], test_acc=[0.9, 0.93, 0.95, 0.96, 0.97], status="running")


def test_the_live_figures_are_what_plotly_would_validate_them_to():
    """loss_figure and accuracy_figure skip Plotly's validation (it took most of a poll's
    time); validating their output must change nothing."""

    import plotly.graph_objects as go
    import plotly.io as pio

    from dashboard.charts import loss_figure

    for h in (_busy_history(), History(steps_per_epoch=10)):  # a long run, and one not started
        for make in (loss_figure, accuracy_figure):
            for presenter in (False, True):
                fig = make(h, presenter, 290)
                fast = json.loads(pio.to_json(fig, validate=False))
                checked = json.loads(pio.to_json(go.Figure(fig.to_dict()), validate=True))
                assert fast == checked, (make.__name__, presenter)
                assert fast["layout"]["height"] == 290 + (60 if presenter else 0)
                size = fast["layout"]["xaxis"]["tickfont"]["size"]
                assert size == (18 if presenter else 13)


def test_decimate_keeps_every_buckets_extremes_in_order():
    from dashboard.charts import MAX_CHART_POINTS, decimate

    rng = np.random.default_rng(1)
    for n in (10, MAX_CHART_POINTS, MAX_CHART_POINTS + 1, 7919, 50_000):
        x = np.arange(n, dtype=float)
        y = rng.normal(size=n)
        y[n // 3] = 99.0  # a spike
        y[n // 2] = np.nan  # a diverged step
        dx, dy = decimate(x, y)
        assert len(dx) <= MAX_CHART_POINTS and np.all(np.diff(dx) > 0)
        assert 99.0 in dy and np.nanmin(dy) == np.nanmin(y)
        if n <= MAX_CHART_POINTS:
            assert len(dx) == n
        else:
            assert not np.isnan(dy).any()  # a number is always chosen over NaN
            assert len(dx) >= MAX_CHART_POINTS // 2


def test_the_embedding_frame_figure_is_what_plotly_would_validate_it_to():

    import plotly.graph_objects as go
    import plotly.io as pio

    from dashboard.frames import frame_figure

    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(10), 20)
    preds = np.where(rng.random(200) < 0.1, (labels + 1) % 10, labels)
    frames = {"pca": [rng.normal(size=(200, 2))], "tsne": [rng.normal(size=(200, 2))],
              "labels": labels, "preds": [preds], "epochs": np.array([0.5]), "steps": np.array([10])}
    for presenter in (False, True):
        fig = frame_figure(frames, 0, presenter=presenter)
        fast = json.loads(pio.to_json(fig, validate=False))
        assert fast == json.loads(pio.to_json(go.Figure(fig.to_dict()), validate=True))
        assert fast["layout"]["legend"]["title"]["text"] == "digit"
        assert fast["layout"]["yaxis"]["scaleanchor"] == "x" and not fast["layout"]["xaxis"]["visible"]
        crosses = sum(int((np.asarray(t.marker.symbol) == "x").sum()) for t in fig.data)
        assert crosses == int((preds != labels).sum())


def test_every_embedding_frame_lists_all_ten_digits_and_the_movie_moves_the_same_points():
    """At frame 0 an untrained network reads every point as one digit: the legend still lists
    all ten, each in its own colour, the same at every frame; the movie's frames keep each
    digit's points in one trace, in one order (plotly moves point i to its new place)."""

    import plotly.graph_objects as go
    import plotly.io as pio

    from dashboard.frames import SPEEDS, frame_figure

    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(10), 20)
    preds = [np.full(200, 5), np.where(rng.random(200) < 0.3, (labels + 1) % 10, labels), labels]
    frames = {"pca": [rng.normal(size=(200, 2)) for _ in preds],
              "tsne": [rng.normal(size=(200, 2)) * s for s in (1e-3, 1.0, 30.0)],
              "labels": labels, "preds": preds, "epochs": np.array([0.0, 0.1, 1.0]),
              "steps": np.array([0, 12, 120])}

    def legend(fig):
        return [(t.name, t.marker.color) for t in fig.data if t.showlegend is not False]

    first = frame_figure(frames, 0)
    assert [name for name, _ in legend(first)] == [str(d) for d in range(10)]
    assert legend(first) == legend(frame_figure(frames, 1)) == legend(frame_figure(frames, 2))
    movie = frame_figure(frames, 2, movie=True)
    fast = json.loads(pio.to_json(movie, validate=False))
    assert fast == json.loads(pio.to_json(go.Figure(movie.to_dict()), validate=True))
    assert [b["label"] for b in fast["layout"]["updatemenus"][0]["buttons"]][:len(SPEEDS)] == list(SPEEDS)
    assert len(fast["frames"]) == 3 and fast["layout"]["sliders"][0]["active"] == 2
    plays = fast["layout"]["updatemenus"][0]["buttons"][:len(SPEEDS)]
    assert not any(b["args"][1]["fromcurrent"] for b in plays)  # shown at its end: Play starts over
    lo, hi = movie.layout.xaxis.range
    for f in movie.frames:
        assert [len(t.x) for t in f.data] == [20] * 10
        assert all(lo <= x <= hi for t in f.data for x in t.x)  # one set of axes fits all


def test_a_crowded_server_is_looked_at_less_often_but_a_starting_run_never():
    from dashboard import polling
    from dashboard.live import POLL_S, QUEUED_POLL_S, STARTING_POLL_S, poll_seconds

    assert poll_seconds("running", polling.CROWD) == POLL_S  # up to CROWD tabs: full pace
    assert poll_seconds("running", 3 * polling.CROWD) == 3 * POLL_S
    assert poll_seconds("queued", 100 * polling.CROWD) == polling.MOST_SLOWER * QUEUED_POLL_S
    assert poll_seconds("starting", 100) == STARTING_POLL_S
    polling._seen.clear()
    assert polling.watchers() == 1  # nobody yet: the tab asking counts
    for tab in ("a", "b", "c"):
        polling.seen(tab)
    polling.seen("a")  # a tab counts once
    assert polling.watchers() == 3
    polling._seen["old"] = polling.time.monotonic() - 60  # left a minute ago
    assert polling.watchers() == 3 and "old" not in polling._seen


def test_compared_accuracy_stays_within_0_and_100_percent():
    """One run of one epoch is one point: the axis is drawn around it, never past 100 %."""
    from dashboard.charts import overlay

    one = History(steps=[1, 2], loss=[2.3, 2.1], steps_per_epoch=2, epochs=[1], test_acc=[0.909])
    low, high = overlay([("default-cnn-1", one)])[1].layout.yaxis.range
    assert 0.85 <= low < 0.909 < high <= 1.005
    two = History(steps=[1, 2], loss=[2.3, 2.1], steps_per_epoch=2, epochs=[1, 2], test_acc=[0.1, 0.999])
    low, high = overlay([("a", one), ("b", two)])[1].layout.yaxis.range
    assert low == 0.08 and high == 1.005


def test_compared_runs_show_a_stop_between_epochs_and_keep_a_diverged_loss_off_the_scale():
    """A run stopped before its first epoch ended has one test, taken at its Stop: a point
    where it stopped. Runs with no test at all: an empty 0-100 % axis that says why. A
    diverged run's loss goes off the top instead of flattening the others to the floor."""
    from dashboard.charts import overlay

    stopped = History(steps=[1, 2, 3], loss=[2.3, 1.0, 0.8], steps_per_epoch=10, step=3,
                      status="stopped", final_test_acc=0.9838)
    acc = overlay([("best-2", stopped)])[1]
    [trace] = acc.data
    assert list(trace.x) == [0.3] and list(trace.y) == [0.9838]
    diverged = History(steps=[1, 2, 3], loss=[3.6, 60.0, 974.0], steps_per_epoch=10, step=3,
                       status="diverged")
    loss, acc = overlay([("S1b-2", diverged), ("best-2", stopped)])
    assert loss.data[0].name == "S1b-2 (diverged)"
    low, high = loss.layout.yaxis.range
    assert low == 0 and 2.3 <= high < 3.6  # best-2's curve fills the chart
    assert [t.name for t in acc.data] == ["best-2"]
    none = overlay([("S1b-2", diverged)])[1]
    assert not none.data and list(none.layout.yaxis.range) == [0, 1]
    assert "no test accuracy yet" in none.layout.annotations[0].text
    assert overlay([("S1b-2", diverged)])[0].layout.yaxis.range is None  # alone: its own scale


def test_a_run_that_diverged_at_once_keeps_its_accuracy_axes_and_says_why_they_are_empty():
    """No accuracy point at all: the chart still reads 0-100 % against the epochs it ran
    (Plotly's empty axis read 0..6), and says nothing was measured."""
    from dashboard.charts import accuracy_figure

    diverged = History(steps=[1, 2], loss=[12.5, 1617.0], steps_per_epoch=180, step=2, status="diverged")
    fig = json.loads(accuracy_figure(diverged).to_json())
    assert fig["layout"]["yaxis"]["range"] == [0.0, 1.005]
    low, high = fig["layout"]["xaxis"]["range"]
    assert low == 0 and 0 < high <= 1
    assert "no accuracy" in fig["layout"]["annotations"][0]["text"]


def test_the_presenters_accuracy_legend_sits_below_the_plot_off_the_curves():
    """Inside the plot's bottom right it sat on the dotted training curve."""
    h = History(steps=[1, 2, 3], loss=[2.3, 1.0, 0.5], steps_per_epoch=3, probe_steps=[1, 2, 3],
                probe_test_acc=[0.5, 0.8, 0.95], probe_train_acc=[0.4, 0.7, 0.9], epochs=[1], test_acc=[0.96])
    legend = json.loads(accuracy_figure(h, presenter=True).to_json())["layout"]["legend"]
    assert legend["y"] < 0 and legend["yanchor"] == "top"  # under the x-axis

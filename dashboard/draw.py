"""What the Draw page says about a reading and the model behind it."""

from __future__ import annotations

from dashboard.pictures import png_data_url
from dashboard.plain import plain
from dashboard.state import test_tail
from digits_core.store.runs import saved_test_acc

SURE = 0.70  # below this, the second choice is shown too
# A phone (Streamlit stacks columns under 640 px): the reading goes right under the canvas
# and must be in view with it, so the picture of what the model sees sits small beside the
# digit, the instructions fold away and the bars are shorter.
NARROW_SCREEN_CSS = """<style>
@media (max-width: 640px) {
  [data-testid="stMain"] h1 { font-size: 1.8rem; padding-top: 0; }
  [data-testid="stHorizontalBlock"]:has(.model-input):not(:has([data-testid="stHorizontalBlock"])) {
    flex-wrap: nowrap; gap: .75rem; }
  [data-testid="stHorizontalBlock"]:has(.model-input):not(:has([data-testid="stHorizontalBlock"])) > div {
    min-width: 0 !important; flex: 1 1 0 !important; }
  [data-testid="stHorizontalBlock"]:has(.model-input):not(:has([data-testid="stHorizontalBlock"])) > div:first-child {
    flex: 0 0 140px !important; }
  .st-key-draw_hint { display: none; }
  .st-key-draw_model p { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  [data-testid="stMetric"] { padding: .5rem .75rem !important; }
  .model-input img { width: 84px; }
  .model-input img + img { width: 42px; }
  .model-input figcaption { display: none; }
  .digit-probs > div { height: .8rem !important; font-size: .7rem; }
  .digit-probs > div > span:nth-child(2) { height: .55rem !important; }
  [data-testid="stMetricValue"] { font-size: 1.6rem !important; }
  [data-testid="stMetricLabel"] { display: none; }
}
</style>"""


def model_caption(run) -> str:
    """'Read by S4-2: PyTorch CNN on MNIST, 98.7 % on its test set, 1 epoch, Adam lr 0.001.'"""
    exp, meta = run.experiment, run.meta
    family = {"numpy-mlp": "NumPy MLP", "torch-mlp": "PyTorch MLP", "cnn": "PyTorch CNN"}[exp.model.family]
    acc = saved_test_acc(meta)
    parts = [f"Read by **{plain(run.label)}**: {family} on {exp.data.dataset}"]
    if isinstance(acc, (int, float)):
        parts.append(f"{acc:.1%} on its test set")
    epochs = len(run.history.epochs) or exp.train.epochs
    parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}, {exp.train.optimizer} lr {exp.train.lr:g}"
                 + (", augmented" if exp.train.augment else ""))
    if meta.get("ready_made"):
        parts.append("the ready-made model that ships with Digit Lab")
    return ", ".join(parts) + "."


def ready_made_label(run) -> str:
    """The ready-made model's line in the Draw page's picker, like a run's there."""
    return (f"ready-made MNIST CNN (ships with Digit Lab) · {run.experiment.data.dataset}"
            f"{test_tail(run.meta.get('test_acc'))}")


def reading_text(prediction) -> tuple[str, str]:
    """('93 % sure', '') or ('55 % sure', 'second choice: 7 (38 %)') for an unsure reading."""
    p = prediction.probs
    top = int(p.argmax())
    headline = f"{p[top]:.0%} sure"
    if p[top] >= SURE:
        return headline, ""
    second = int(p.argsort()[-2])
    return headline, f"Not sure: second choice **{second}** ({p[second]:.0%})"


def seen_caption(shape: tuple[int, int], views: int, sure_alone: float) -> str:
    """The caption under what the model sees: with two views, why it looked at the second."""
    h, w = shape
    if views < 2:
        return f"what the model sees ({h}x{w})"
    return (f"what the model sees ({h}x{w}). It was less than {sure_alone:.0%} sure, so it also "
            "read a thinner copy of your drawing (right) and combined the two answers")


def inline_image(grey, caption: str, more: tuple = ()) -> str:
    """A small grey image (and `more` beside it) as inline PNGs with one caption: shown with
    the reading itself, without the extra request a media file would cost on every stroke."""
    imgs = "".join(f'<img src="{png_data_url(g)}" style="image-rendering:pixelated" alt="{caption}"/>'
                   for g in (grey, *more))
    return (f'<figure class="model-input" style="margin:0"><div style="display:flex;gap:6px;'
            f'align-items:flex-end">{imgs}</div><figcaption style="font-size:.8rem;'
            f'color:#808495">{caption}</figcaption></figure>')


def probability_bars(prediction) -> str:
    """The ten probabilities as plain HTML bars (the chosen digit red): a browser draws this
    in a millisecond, where a chart library takes a good part of the stroke's budget. The
    numbers are also in `data-probs`, for whoever reads the page."""
    rows = []
    for d, p in enumerate(prediction.probs):
        colour = "#d62728" if d == prediction.digit else "#9aa5b1"
        rows.append(
            f'<div style="display:flex;align-items:center;gap:.5rem;height:1.6rem">'
            f'<span style="width:1rem;text-align:right">{d}</span>'
            f'<span style="flex:1;background:#f0f2f6;height:1.1rem;border-radius:3px">'
            f'<span style="display:block;width:{100 * float(p):.1f}%;height:100%;background:{colour};'
            f'border-radius:3px"></span></span><span style="width:3rem">{float(p):.0%}</span></div>'
        )
    data = ",".join(f"{float(p):.6f}" for p in prediction.probs)
    return f'<div class="digit-probs" data-probs="{data}">{"".join(rows)}</div>'


__all__ = ["NARROW_SCREEN_CSS", "SURE", "inline_image", "model_caption", "probability_bars", "reading_text", "ready_made_label"]

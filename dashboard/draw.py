"""What the Draw page says about a reading and the model behind it."""

from __future__ import annotations

import plotly.graph_objects as go

SURE = 0.70  # below this, the second choice is shown too


def model_caption(run) -> str:
    """'Read by S4-2: PyTorch CNN on MNIST, 98.7 % on its test set, 1 epoch, Adam lr 0.001.'"""
    exp, meta = run.experiment, run.meta
    family = {"numpy-mlp": "NumPy MLP", "torch-mlp": "PyTorch MLP", "cnn": "PyTorch CNN"}[exp.model.family]
    acc = meta.get("test_acc")
    acc = acc if isinstance(acc, (int, float)) else meta.get("last_test_acc")
    parts = [f"Read by **{run.label}**: {family} on {exp.data.dataset}"]
    if isinstance(acc, (int, float)):
        parts.append(f"{acc:.1%} on its test set")
    epochs = len(run.history.epochs) or exp.train.epochs
    parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}, {exp.train.optimizer} lr {exp.train.lr:g}"
                 + (", augmented" if exp.train.augment else ""))
    if meta.get("ready_made"):
        parts.append("the ready-made model that ships with Digit Lab")
    return ", ".join(parts) + "."


def reading_text(prediction) -> tuple[str, str]:
    """('93 % sure', '') or ('55 % sure', 'second choice: 7 (38 %)') for an unsure reading."""
    p = prediction.probs
    top = int(p.argmax())
    headline = f"{p[top]:.0%} sure"
    if p[top] >= SURE:
        return headline, ""
    second = int(p.argsort()[-2])
    return headline, f"Not sure: second choice **{second}** ({p[second]:.0%})"


def probability_figure(prediction) -> go.Figure:
    colours = ["#d62728" if d == prediction.digit else "#9aa5b1" for d in range(10)]
    fig = go.Figure(go.Bar(
        x=prediction.probs, y=[str(d) for d in range(10)], orientation="h", marker_color=colours,
        text=[f"{p:.0%}" for p in prediction.probs], textposition="outside",
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    fig.update_layout(xaxis=dict(range=[0, 1.15], tickformat=".0%", title="probability"),
                      yaxis=dict(title="digit", type="category", autorange="reversed"),
                      height=360, margin=dict(l=10, r=10, t=10, b=10))
    return fig


__all__ = ["SURE", "model_caption", "probability_figure", "reading_text"]

"""Report figures as PNG bytes (matplotlib, Agg backend: no display needed), and thumbnails.

Each function takes plain data read from the run folder (metrics rows, evaluation curves) and
returns PNG bytes, which the report embeds as base64 (HTML) or writes next to the Markdown.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: reports are written on machines without a display

import matplotlib.pyplot as plt
import numpy as np

from artsim.report.text import label

TASK_COLOURS = {
    "image": "#1f77b4",
    "text": "#d62728",
    "i2t": "#9467bd",
    "t2i": "#8c564b",
    "fused": "#2ca02c",
    "cross": "#ff7f0e",
}
DPI = 100


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _panels(count: int, width: float, height: float = 3.2) -> tuple[plt.Figure, np.ndarray]:
    """A figure of ``count`` panels (one at least), three to a row at most, each ``width`` x
    ``height`` inches; the grid's unused places are hidden. Returns the figure and its 2-D axes."""
    columns = min(3, max(1, count))
    rows = max(1, math.ceil(count / columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(width * columns, height * rows), squeeze=False
    )
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    return figure, axes


def data_uri(png: bytes, mime: str = "image/png") -> str:
    """``data:image/png;base64,...`` for an ``<img src>``."""
    return f"data:{mime};base64,{base64.b64encode(png).decode('ascii')}"


def _points(
    rows: Sequence[Mapping[str, Any]], value_of: Callable[[Mapping[str, Any]], float | None]
) -> tuple[list[float], list[float]]:
    """(epochs, values) of the rows whose ``value_of`` is a finite number; a row without an
    ``epoch`` stands at its place (1 = first)."""
    xs, ys = [], []
    for index, row in enumerate(rows):
        value = value_of(row)
        if value is not None and math.isfinite(value):
            xs.append(row.get("epoch", index + 1))
            ys.append(float(value))
    return xs, ys


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    def number(row: Mapping[str, Any]) -> float | None:
        value = row.get(key)
        return value if isinstance(value, int | float) else None

    return _points(rows, number)


def loss_series(
    rows: Sequence[Mapping[str, Any]],
    split: str,
    comparable: Callable[[Mapping[str, Any], str], float | None] | None = None,
) -> tuple[list[float], list[float]]:
    """(epochs, losses) of ``split``: ``comparable(row, split)`` when given (the parts both
    sides compute: :meth:`artsim.report.reading.RunFolder.comparable_loss`), else the logged
    ``split/loss``."""
    if comparable is None:
        return _series(rows, f"{split}/loss")
    return _points(rows, lambda row: comparable(row, split))


def plot_learning_curves(
    rows: Sequence[Mapping[str, Any]],
    lang: str,
    best_epoch: int | None = None,
    comparable: Callable[[Mapping[str, Any], str], float | None] | None = None,
) -> bytes:
    """Four panels: loss (train, val: the parts both compute when ``comparable`` says which,
    see :func:`loss_series`), losses per modality, accuracies, learning rate."""
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    (total, losses), (accuracy, rate) = axes

    for split, style in (("train", "--"), ("val", "-")):
        xs, ys = loss_series(rows, split, comparable)
        if xs:
            total.plot(xs, ys, style, marker="o", markersize=3, label=label(lang, split))
    total.set_title(label(lang, "comparable_loss_title" if comparable else "total_loss_title"))
    total.set_ylabel(label(lang, "loss"))

    for part in ("image", "text", "i2t", "t2i", "cross"):
        colour = TASK_COLOURS[part]
        xs, ys = _series(rows, f"val/{part}_loss")
        if xs:
            losses.plot(
                xs, ys, "-", color=colour, label=f"{label(lang, part)} ({label(lang, 'val')})"
            )
        xs, ys = _series(rows, f"train/{part}_loss")
        if xs:
            losses.plot(xs, ys, "--", color=colour, alpha=0.6)
    losses.set_title(
        f"{label(lang, 'losses_title')} (— {label(lang, 'val')}, -- {label(lang, 'train')})"
    )
    losses.set_ylabel(label(lang, "loss"))

    xs, ys = _series(rows, "train/triplet_acc")
    if xs:
        accuracy.plot(xs, ys, "--", color="black", label=f"{label(lang, 'train')}")
    xs, ys = _series(rows, "val/triplet_acc")
    if xs:
        accuracy.plot(xs, ys, "-", color="black", label=f"{label(lang, 'val')}")
    for part in ("image", "text", "i2t", "t2i", "cross"):
        xs, ys = _series(rows, f"val/{part}_acc")
        if xs:
            accuracy.plot(xs, ys, "-", color=TASK_COLOURS[part], alpha=0.8, label=label(lang, part))
    accuracy.set_title(label(lang, "accuracy_title"))
    accuracy.set_ylabel(label(lang, "accuracy"))

    xs, ys = _series(rows, "lr")
    if xs:
        rate.plot(xs, ys, "-", marker="o", markersize=3, color="#555555")
        if min(ys) > 0:
            rate.set_yscale("log")
    rate.set_title(label(lang, "learning_rate_title"))
    rate.set_ylabel(label(lang, "lr"))

    for axis in (total, losses, accuracy, rate):
        axis.set_xlabel(label(lang, "epoch"))
        axis.grid(alpha=0.3)
        if best_epoch is not None:
            axis.axvline(best_epoch, color="#999999", linestyle=":", linewidth=1)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def plot_score_histograms(curves: Mapping[str, Mapping[str, Any]], lang: str) -> bytes:
    """Per task, the similarity of matching pairs vs non-matching pairs (each normalised)."""
    tasks = [task for task in curves if curves[task].get("positive")]
    figure, axes = _panels(len(tasks), width=4.2)
    for axis, task in zip(axes.flat, tasks, strict=False):
        for key, colour, name in (
            ("negative", "#d62728", "non_matching"),
            ("positive", "#2ca02c", "matching"),
        ):
            histogram = curves[task][key]
            edges = np.asarray(histogram["edges"])
            counts = np.asarray(histogram["counts"], dtype=float)
            if counts.sum() == 0:
                continue
            density = counts / counts.sum() / np.diff(edges)
            axis.stairs(
                density, edges, fill=True, alpha=0.45, color=colour, label=label(lang, name)
            )
        axis.set_title(label(lang, task))
        axis.set_xlabel(label(lang, "similarity"))
        axis.set_ylabel(label(lang, "density"))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def plot_roc(curves: Mapping[str, Mapping[str, Any]], lang: str) -> bytes:
    """ROC curves of every task: linear axes, and a log-scale zoom on low false-positive rates."""
    figure, (linear, zoom) = plt.subplots(1, 2, figsize=(11, 4.5))
    for task, curve in curves.items():
        roc = curve.get("roc") or {}
        fpr, tpr = roc.get("fpr") or [], roc.get("tpr") or []
        if not fpr:
            continue
        auc = curve.get("roc_auc")
        name = f"{label(lang, task)} (AUC {auc:.3f})" if auc is not None else label(lang, task)
        colour = TASK_COLOURS.get(task)
        linear.plot(fpr, tpr, color=colour, label=name)
        positive = [(f, t) for f, t in zip(fpr, tpr, strict=True) if f > 0]
        if positive:
            zoom.step(*zip(*positive, strict=True), where="post", color=colour)
    linear.plot([0, 1], [0, 1], ":", color="#999999", label=label(lang, "chance"))
    linear.set_xlabel(label(lang, "fpr"))
    zoom.set_xscale("log")
    zoom.set_xlim(1e-3, 1.0)
    zoom.set_xlabel(label(lang, "fpr_log"))
    for axis in (linear, zoom):
        axis.set_ylabel(label(lang, "tpr"))
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    for target in (0.01, 0.05):
        zoom.axvline(target, color="#999999", linestyle="--", linewidth=1)
        zoom.text(target, 0.02, f" {target:g}", fontsize=8, color="#555555")
    linear.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return _png(figure)


def plot_sweep(
    summary: Mapping[str, Mapping[str, Mapping[str, Any]]],
    figures: Sequence[str],
    lang: str,
    config_names: Mapping[str, str],
) -> bytes:
    """Mean and 95% interval per split configuration for each figure, seeds as dots.

    ``summary[figure][config] = {"mean", "low", "high", "values"}``.
    """
    figures = [figure for figure in figures if figure in summary]
    figure_, axes = _panels(len(figures), width=4)
    for axis, name in zip(axes.flat, figures, strict=False):
        configs = list(summary[name])
        for x, config in enumerate(configs):
            cell = summary[name][config]
            values = [v for v in cell.get("values", []) if v is not None]
            if values:
                jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else [0.0]
                axis.scatter(x + np.asarray(jitter), values, s=12, color="#888888", zorder=2)
            if cell.get("mean") is None:
                continue
            low, high = cell.get("low"), cell.get("high")
            if low is not None and high is not None:
                error = [[cell["mean"] - low], [high - cell["mean"]]]
                axis.errorbar([x], [cell["mean"]], yerr=error, fmt="o", color="#1f77b4", capsize=5)
            else:
                axis.plot([x], [cell["mean"]], "o", color="#1f77b4")
        axis.set_xticks(range(len(configs)), [config_names.get(c, c) for c in configs])
        axis.set_xlim(-0.5, len(configs) - 0.5)
        axis.set_title(label(lang, name), fontsize=10)
        axis.grid(alpha=0.3)
    figure_.tight_layout()
    return _png(figure_)


def thumbnail_png(path: str | Path, size: int = 112) -> bytes | None:
    """A small PNG of an image file for the gallery; ``None`` if it cannot be read."""
    from artsim.data.pictures.images import load_rgb  # images are read only when a gallery is drawn

    try:
        image = load_rgb(path)
    except Exception:  # a missing picture leaves a blank cell, not a failed report
        return None
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

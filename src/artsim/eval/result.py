"""The typed result of an evaluation: what ``artsim evaluate`` measures, read by attribute.

:func:`artsim.eval.evaluate.evaluate_run` composes one :class:`EvalResult` from four parts, each
made by its own evaluator:

- :class:`RetrievalResult` (:mod:`artsim.eval.retrieval`): per task and per language, the
  retrieval figures of the trained model;
- :class:`VerificationResult` (:mod:`artsim.eval.verification`): per task, the pair
  verification figures, the open-set figures and the calibration queries' verdicts;
- :class:`BaselinesResult` (:mod:`artsim.eval.baselines`): the perceptual hash, the frozen
  towers and the copy descriptor alone on the same queries;
- :class:`GeneralisationResult` (:mod:`artsim.eval.generalisation`): trained against frozen per
  task (the paired test) and per derivation pattern.

The file format is the contract: :meth:`EvalResult.to_dict` gives exactly the JSON that
``RUN_DIR/eval/<name>.json`` holds, and :meth:`EvalResult.from_dict` reads it back, also the
files of older versions (a part they lack reads as empty or ``None``).

Figures that a metric evaluator names (``"recall@1"``, ``"at_fpr_0.01"``, ``"micro_ap"``) stay
:data:`Figures` dictionaries keyed by those names, as :mod:`artsim.eval.metrics` returns them and
the JSON holds them.

>>> result = read_results("runs/demo")[0]  # the run's own validation first
>>> result.name, result.retrieval.main_task
('val', 'fused')
>>> result.retrieval.figure("fused") == result.to_dict()["tasks"]["fused"]["recall@1"]
True
>>> EvalResult.from_dict(result.to_dict()) == result
True
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artsim import runfolder

__all__ = [
    "BaselineFigures",
    "BaselinesResult",
    "Comparison",
    "Counts",
    "EvalResult",
    "Figures",
    "GeneralisationResult",
    "Paired",
    "Pairs",
    "PatternFigures",
    "RetrievalResult",
    "VerificationResult",
    "read_results",
]

# named figures of one task, as a metric evaluator gives them: {"recall@1": 0.9, "n_queries": 480}
Figures = dict[str, Any]


def _finite(value: Any) -> float | None:
    """``value`` when it is a finite number (not a bool), else ``None``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _mapping(value: Any) -> dict[str, Any]:
    """A JSON object of a file, or ``{}`` where an older (or damaged) file has something else."""
    return value if isinstance(value, dict) else {}


# --- retrieval -----------------------------------------------------------------------------------


@dataclass
class RetrievalResult:
    """Per task (``image``, ``text``, ``i2t``, ``t2i``, ``fused``), the retrieval figures of the
    trained model (recall@k, MRR, mAP, triplet accuracies, ``n_queries``), and the same per
    query language."""

    tasks: dict[str, Figures] = field(default_factory=dict)
    by_lang: dict[str, dict[str, Figures]] = field(default_factory=dict)

    def figure(self, task: str, metric: str = "recall@1") -> float | None:
        """A figure of a task; ``None`` when absent or not finite."""
        return _finite((self.tasks.get(task) or {}).get(metric))

    @property
    def main_task(self) -> str:
        """The task a report leads with: ``fused`` when it has queries, else ``image``."""
        return "fused" if (self.tasks.get("fused") or {}).get("n_queries") else "image"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrievalResult:
        return cls(_mapping(data.get("tasks")), _mapping(data.get("by_lang")))


# --- verification --------------------------------------------------------------------------------


@dataclass
class VerificationResult:
    """Per task: pair verification (``roc_auc``, ``at_fpr_<rate>``: threshold, precision,
    recall, fpr), the open-set figures (thresholds on the best result's score, µAP, recall at
    precision) and the verdicts the open-set calibration gives the queries, by kind of query."""

    tasks: dict[str, Figures] = field(default_factory=dict)
    open_set: dict[str, Figures] = field(default_factory=dict)
    open_set_confusion: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def at_fpr(self, task: str, rate: float) -> Figures:
        """The operating point of a task at a false-positive rate (``{}`` when absent)."""
        return (self.tasks.get(task) or {}).get(f"at_fpr_{rate:g}") or {}

    def thresholds(self) -> dict[str, dict[str, float | None]]:
        """Per task, the score threshold at each false-positive rate measured:
        ``{"fused": {"fpr_0.001": 0.71, ...}}`` (what ``calibration.json`` keeps)."""
        out = {}
        for task, figures in self.tasks.items():
            out[task] = {
                f"fpr_{key.removeprefix('at_fpr_')}": point.get("threshold")
                for key, point in figures.items()
                if key.startswith("at_fpr_") and isinstance(point, dict)
            }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerificationResult:
        return cls(
            _mapping(data.get("verification")),
            _mapping(data.get("open_set")),
            _mapping(data.get("open_set_confusion")),
        )


# --- baselines -----------------------------------------------------------------------------------


@dataclass
class Paired:
    """Per query, did the trained model find the original where a baseline did not (a win) or
    the reverse (a loss); ``p_value`` is the exact two-sided sign test's."""

    wins: int
    losses: int
    queries: int
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "wins": self.wins,
            "losses": self.losses,
            "queries": self.queries,
            "p_value": self.p_value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Paired:
        return cls(data.get("wins"), data.get("losses"), data.get("queries"), data.get("p_value"))


@dataclass
class BaselineFigures:
    """A baseline on one task: its retrieval figures, its open-set summary (thresholds, µAP,
    recall at precision) and, against the frozen towers or the copy descriptor, the paired
    comparison with the trained model."""

    figures: Figures
    open_set: Figures | None = None
    paired: Paired | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.figures)
        if self.open_set is not None:
            out["open_set"] = self.open_set
        if self.paired is not None:
            out["paired"] = self.paired.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineFigures:
        figures = {k: v for k, v in data.items() if k not in ("open_set", "paired")}
        paired = data.get("paired")
        return cls(figures, data.get("open_set"), Paired.from_dict(paired) if paired else None)


def _baselines_from(value: Any) -> dict[str, BaselineFigures | None]:
    return {
        task: BaselineFigures.from_dict(figures) if isinstance(figures, dict) else None
        for task, figures in _mapping(value).items()
    }


@dataclass
class BaselinesResult:
    """Baselines on the same queries and gallery: the perceptual hash (image), the frozen towers
    (image, text, fused; ``None`` for the cross-modal tasks, which have no frozen space, and
    ``frozen_reason`` says why) and the copy descriptor alone (image; ``None`` when the model has
    none)."""

    phash: dict[str, BaselineFigures | None] = field(default_factory=dict)
    frozen: dict[str, BaselineFigures | None] = field(default_factory=dict)
    copy: dict[str, BaselineFigures | None] | None = None
    frozen_reason: str | None = None

    def of(self, kind: str, task: str) -> BaselineFigures | None:
        """The figures of baseline ``kind`` (``phash``, ``frozen``, ``copy``) on ``task``."""
        return (getattr(self, kind) or {}).get(task)

    def figure(self, kind: str, task: str, metric: str = "recall@1") -> float | None:
        """A figure of a baseline on a task; ``None`` when absent or not finite."""
        figures = self.of(kind, task)
        return _finite(figures.figures.get(metric)) if figures else None

    def to_dict(self) -> dict[str, Any]:
        def part(tasks):
            return {task: None if f is None else f.to_dict() for task, f in tasks.items()}

        frozen = part(self.frozen)
        if self.frozen_reason is not None:
            frozen["reason"] = self.frozen_reason
        out = {"phash": part(self.phash), "frozen": frozen}
        if self.copy is not None:
            out["copy"] = part(self.copy)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselinesResult:
        frozen = _mapping(data.get("frozen"))
        reason = frozen.get("reason")
        copied = data.get("copy")
        return cls(
            phash=_baselines_from(data.get("phash")),
            frozen=_baselines_from({k: v for k, v in frozen.items() if k != "reason"}),
            copy=_baselines_from(copied) if isinstance(copied, dict) else None,
            frozen_reason=reason if isinstance(reason, str) else None,
        )


# --- generalisation ------------------------------------------------------------------------------


@dataclass
class Comparison:
    """One task: the trained model's figure next to the frozen towers' and the hash's, the
    queries won and lost against frozen, and whether the task is below frozen (lower, and the
    sign test rejects chance) or lower within chance."""

    trained: float | None
    frozen: float | None
    phash: float | None
    minus_frozen: float | None
    wins: int | None
    losses: int | None
    p_value: float | None
    below_frozen: bool
    lower_within_chance: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "trained": self.trained,
            "frozen": self.frozen,
            "phash": self.phash,
            "minus_frozen": self.minus_frozen,
            "wins": self.wins,
            "losses": self.losses,
            "p_value": self.p_value,
            "below_frozen": self.below_frozen,
            "lower_within_chance": self.lower_within_chance,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        return cls(
            data.get("trained"),
            data.get("frozen"),
            data.get("phash"),
            data.get("minus_frozen"),
            data.get("wins"),
            data.get("losses"),
            data.get("p_value"),
            bool(data.get("below_frozen")),
            bool(data.get("lower_within_chance")),
        )


@dataclass
class PatternFigures:
    """Trained and frozen recall@1 of the queries of one derivation pattern on one task."""

    trained: float | None
    frozen: float | None
    n_queries: int

    def to_dict(self) -> dict[str, Any]:
        return {"trained": self.trained, "frozen": self.frozen, "n_queries": self.n_queries}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatternFigures:
        return cls(data.get("trained"), data.get("frozen"), data.get("n_queries"))


@dataclass
class GeneralisationResult:
    """Trained against its baselines: per task the :class:`Comparison`, the tasks below frozen
    and those lower within chance, and per derivation pattern (held-out manifests carry a
    ``pattern`` column; empty otherwise) trained and frozen recall@1."""

    vs_baselines: dict[str, Comparison] = field(default_factory=dict)
    below_frozen: list[str] = field(default_factory=list)
    lower_within_chance: list[str] = field(default_factory=list)
    by_pattern: dict[str, dict[str, PatternFigures]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneralisationResult:
        return cls(
            {t: Comparison.from_dict(row) for t, row in _mapping(data.get("vs_baselines")).items()},
            list(data.get("below_frozen") or []),
            list(data.get("lower_within_chance") or []),
            {
                pattern: {t: PatternFigures.from_dict(f) for t, f in _mapping(tasks).items()}
                for pattern, tasks in _mapping(data.get("by_pattern")).items()
            },
        )


# --- the whole result ----------------------------------------------------------------------------


@dataclass
class Counts:
    """Items evaluated, queries, originals in the gallery, queries skipped (by reason) and the
    manifest's problems."""

    items: int | None = None
    queries: int | None = None
    gallery: int | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "queries": self.queries,
            "gallery": self.gallery,
            "skipped": dict(self.skipped),
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counts:
        return cls(
            data.get("items"),
            data.get("queries"),
            data.get("gallery"),
            _mapping(data.get("skipped")),
            list(data.get("problems") or []),
        )


@dataclass
class Pairs:
    """Which pairs each kind of figure comes from, in words."""

    tasks: str
    verification: str
    open_set: str

    @classmethod
    def on(cls, split: str) -> Pairs:
        """The pairs of an evaluation of the ``split`` part."""
        return cls(
            tasks=f"each generated item of the {split} part against every original evaluated",
            verification=f"(query, its original) against (query, other original) pairs of "
            f"the {split} part",
            open_set=f"cross-fitted on the {split} part: originals halved by group; "
            "against each half, queries whose original is there are matches, all others "
            "distractors (their original is not in that half)",
        )

    def to_dict(self) -> dict[str, str]:
        return {"tasks": self.tasks, "verification": self.verification, "open_set": self.open_set}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pairs:
        return cls(data.get("tasks", ""), data.get("verification", ""), data.get("open_set", ""))


@dataclass
class EvalResult:
    """One evaluation of a run on a manifest: what was evaluated, and the four parts measured.

    ``calibration`` is the path of the ``calibration.json`` this evaluation wrote (``None`` when
    it wrote none); ``seed_figures`` are the seed's triplet figures on the same items.
    """

    name: str | None
    run: str | None
    model_id: str | None
    manifest: str | None
    data_fingerprint: str | None
    split: str | None
    seed: int | None
    retrieval: RetrievalResult
    verification: VerificationResult
    baselines: BaselinesResult
    generalisation: GeneralisationResult
    seed_figures: dict[str, float] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    pairs: Pairs | None = None
    notes: list[str] = field(default_factory=list)
    calibration: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``RUN_DIR/eval/<name>.json``, key for key in the file's order."""
        generalisation = self.generalisation
        out: dict[str, Any] = {
            "name": self.name,
            "run": self.run,
            "model_id": self.model_id,
            "manifest": self.manifest,
            "data_fingerprint": self.data_fingerprint,
            "split": self.split,
            "seed": self.seed,
            "tasks": self.retrieval.tasks,
            "by_lang": self.retrieval.by_lang,
            "verification": self.verification.tasks,
            "open_set": self.verification.open_set,
            "baselines": self.baselines.to_dict(),
            "notes": self.notes,
            "pairs": self.pairs.to_dict() if self.pairs else None,
        }
        if generalisation.by_pattern:  # only held-out manifests carry patterns
            out["by_pattern"] = {
                pattern: {task: figures.to_dict() for task, figures in tasks.items()}
                for pattern, tasks in generalisation.by_pattern.items()
            }
        out |= {
            "vs_baselines": {t: row.to_dict() for t, row in generalisation.vs_baselines.items()},
            "below_frozen": generalisation.below_frozen,
            "lower_within_chance": generalisation.lower_within_chance,
            "seed_figures": self.seed_figures,
            "counts": self.counts.to_dict(),
            "open_set_confusion": self.verification.open_set_confusion,
            "calibration": self.calibration,
        }
        return copy.deepcopy(out)  # the caller may change it; the result stays as it was

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """Read a result as :meth:`to_dict` (or an older version) wrote it."""
        data = copy.deepcopy(_mapping(data))
        pairs = data.get("pairs")
        return cls(
            name=data.get("name"),
            run=data.get("run"),
            model_id=data.get("model_id"),
            manifest=data.get("manifest"),
            data_fingerprint=data.get("data_fingerprint"),
            split=data.get("split"),
            seed=data.get("seed"),
            retrieval=RetrievalResult.from_dict(data),
            verification=VerificationResult.from_dict(data),
            baselines=BaselinesResult.from_dict(_mapping(data.get("baselines"))),
            generalisation=GeneralisationResult.from_dict(data),
            seed_figures=_mapping(data.get("seed_figures")),
            counts=Counts.from_dict(_mapping(data.get("counts"))),
            pairs=Pairs.from_dict(pairs) if isinstance(pairs, dict) and pairs else None,
            notes=list(data.get("notes") or []),
            calibration=data.get("calibration"),
        )


def read_results(run_dir: str | Path) -> list[EvalResult]:
    """Every evaluation result of a run (``RUN_DIR/eval/<name>.json``), the run's own validation
    first, then by name; unreadable files are skipped (:func:`artsim.runfolder.read_evaluations`).
    """
    return [EvalResult.from_dict(data) for data in runfolder.read_evaluations(run_dir)]

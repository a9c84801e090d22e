"""Where verdicts come from: the open-set calibration of an index's own collection
(``index.json``, fitted by ``artsim calibrate``) or of the run's calibration part
(``calibration.json``, read through :mod:`artsim.runfolder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from artsim import runfolder
from artsim.errors import UserError
from artsim.runfolder import CALIBRATION_FILE
from artsim.verdicts.grades import VERDICT_UNCALIBRATED, OpenSetCalibration, Verdict


@dataclass(frozen=True)
class Calibration:
    """Where verdicts come from: an open-set calibration (:mod:`artsim.verdicts.grades`), fitted
    on the indexed collection (``index.json``) or on the run's calibration part
    (``calibration.json``).

    ``status`` is ``calibrated`` when one applies to this model, else ``uncalibrated`` with
    ``note`` saying why (none measured, another model's, unreadable).
    """

    status: str
    note: str = ""
    open_set: OpenSetCalibration | None = None
    source: str = ""

    @property
    def rate(self) -> float | None:
        return self.open_set.rate if self.open_set else None

    def grade(
        self,
        task: str,
        score: float,
        scores: dict[str, float],
        background: float | None = None,
        rank: int = 1,
    ) -> Verdict:
        """The graded verdict of one result (``uncalibrated`` without a calibration);
        ``background`` and ``rank``: see :meth:`OpenSetCalibration.grade`."""
        if self.status != "calibrated" or self.open_set is None:
            return Verdict(VERDICT_UNCALIBRATED, task, score, None, None)
        return self.open_set.grade(task, score, scores, background, rank)

    def background_rank(self, task: str) -> int:
        """The rank whose score normalises this task's decisions (0: plain scores)."""
        if self.status != "calibrated" or self.open_set is None:
            return 0
        calibration = self.open_set.tasks.get(task)
        return calibration.background_rank if calibration and calibration.normalised else 0

    def to_json(self) -> dict:
        data = {"status": self.status, "note": self.note, "source": self.source}
        if self.open_set is not None:
            data["rate"] = self.open_set.rate
            data["copy_threshold"] = (self.open_set.copy or {}).get("threshold")
            data["thresholds"] = {
                task: calibration.threshold(self.open_set.rate)
                for task, calibration in self.open_set.tasks.items()
            }
            normalised = {
                task: {"rank": c.background_rank, "weight": c.background_weight}
                for task, c in self.open_set.tasks.items()
                if c.normalised
            }
            if normalised:
                # thresholds of these tasks are on score - weight * (the query's score at rank)
                data["background"] = normalised
            if self.open_set.query_crops:
                # image queries are scored with these crops (artsim.index.crops)
                data["query_crops"] = self.open_set.query_crops
            measured = self.open_set.about.get("measured")
            if measured:
                data["measured"] = measured
                on = self.open_set.about.get("on", {})
                data["distractor_queries"] = on.get("distractor_queries")
            look = self.open_set.about.get("look_alikes")
            if look:
                data["look_alikes"] = {key: look.get(key) for key in ("checked", "found", "pairs")}
        return data


def _open_set_note(open_set: OpenSetCalibration, where: str) -> str:
    return (
        f"calibrated on {where}: at most {open_set.rate:.1%} of queries whose original is not "
        "indexed are called derived"
    )


def load_calibration(
    run_dir: str | Path, model_id: str, index_calibration: dict | None = None
) -> Calibration:
    """The verdict calibration: the index's own (``index_calibration``: the ``calibration`` of
    its ``index.json``) first, else the run's ``calibration.json``; never invents a threshold
    when it cannot."""
    if index_calibration:
        try:
            open_set = OpenSetCalibration.from_json(index_calibration)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            return Calibration("uncalibrated", f"the index's calibration is unreadable ({error})")
        if open_set.model_id == model_id:
            return Calibration(
                "calibrated", _open_set_note(open_set, "this collection"), open_set, "collection"
            )
    if not (Path(run_dir) / CALIBRATION_FILE).is_file():
        # the run's name, not its path: this note is also shown by the web service
        return Calibration(
            "uncalibrated",
            f"no {CALIBRATION_FILE} in the run folder {Path(run_dir).name!r} and no calibration "
            "in the index: run `artsim calibrate --index INDEX` to calibrate verdicts",
        )
    try:
        raw = runfolder.read_calibration(run_dir)
        if "open_set" not in raw:
            return Calibration(
                "uncalibrated",
                f"{CALIBRATION_FILE} of the run holds only per-pair thresholds (written before "
                "open-set calibration): run `artsim calibrate --index INDEX`",
            )
        open_set = OpenSetCalibration.from_json(raw["open_set"])
    except (UserError, ValueError, KeyError, TypeError, AttributeError) as error:
        return Calibration("uncalibrated", f"{CALIBRATION_FILE} of the run is unreadable ({error})")
    if open_set.model_id != model_id:
        return Calibration(
            "uncalibrated",
            f"{CALIBRATION_FILE} of the run was measured for model {open_set.model_id}, "
            f"not {model_id}",
        )
    where = f"the run's {raw.get('source', 'evaluation').split(' of ')[0]}"
    return Calibration("calibrated", _open_set_note(open_set, where), open_set, "run")

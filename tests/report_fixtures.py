"""A results dir with every built-in task (synthetic ``results.json`` files of the report tests), shared by the
Markdown golden test and the HTML report tests."""

from __future__ import annotations

from pathlib import Path

from test_report import REC_ACC, _write_job, make_classification_sweep, rec_result
from test_report_tasks import BIAS_RUNS, naming_result, write_keypoint_sweep, write_runs


def make_mixed_dir(root: Path) -> Path:
    """A classification sweep (with a failed and a never-run job), a REC sweep, keypoint runs of both modes (one
    failed) and marking-bias runs."""
    make_classification_sweep(root / "classify")
    for i, ((prompt, seed), accs) in enumerate(REC_ACC.items()):
        _write_job(root / "rec" / str(i), [f"seed={seed}"], rec_result(prompt, seed, accs))
    write_keypoint_sweep(root / "keypoints")
    write_runs(root / "naming", {"0": naming_result()})
    write_runs(root / "bias", BIAS_RUNS)
    return root

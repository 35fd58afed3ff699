"""Results files and the markdown report: atomic JSON, the table and the findings carry the
numbers computed from the records (the tests recompute them), figures by relative path."""
import doctest
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune.experiment import report
from strategies import pruning_records

pytestmark = pytest.mark.report


def pct(x, digits=1):
    return f"{100 * x:.{digits}f}%"


def table_row(text, record):
    """The markdown row of ``record`` (model, scope, criterion, target sparsity)."""
    start = (f"| {record['model']} | {record['scope']} | {record['criterion']} | "
             f"{pct(record['sparsity'], 0)} |")
    rows = [line for line in text.splitlines() if line.startswith(start)]
    assert len(rows) == 1, f"expected one row starting {start!r}, found {len(rows)}"
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


# ---------------------------------------------------------------------- JSON files
def test_write_json_round_trips_and_leaves_no_temporary_file(tmp_path):
    obj = {"a": [1, 2.5, None], "b": np.float32(0.25), "c": np.arange(3), "d": np.int64(7)}
    path = report.write_json(tmp_path / "sub" / "x.json", obj)
    assert json.loads(path.read_text()) == {"a": [1, 2.5, None], "b": 0.25, "c": [0, 1, 2],
                                            "d": 7}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_write_json_refuses_nan_and_keeps_the_old_file(tmp_path):
    path = report.write_json(tmp_path / "x.json", {"ok": 1})
    with pytest.raises(ValueError, match="x.json"):
        report.write_json(path, {"bad": float("nan")})
    with pytest.raises(ValueError, match="JSON"):
        report.write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    with pytest.raises(TypeError, match="path"):
        report.write_json("", {})


@settings(max_examples=10, deadline=None)
@given(pruning_records())
def test_results_round_trip(tmp_path_factory, records):
    """read_results(write_results(records)) gives the records and the meta back."""
    path = tmp_path_factory.mktemp("r") / "results.json"
    report.write_results(path, records, {"seed": 3})
    loaded, meta = report.read_results(path)
    assert loaded == records and meta == {"seed": 3}


def test_results_files_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        report.read_results(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text(json.dumps({"records": []}))
    with pytest.raises(ValueError, match="not an nnprune results file"):
        report.read_results(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not a JSON file"):
        report.read_results(tmp_path / "broken.json")
    with pytest.raises(ValueError, match="lacks the fields"):
        report.write_results(tmp_path / "r.json", [{"model": "mlp"}])
    with pytest.raises(TypeError, match="list of dicts"):
        report.write_results(tmp_path / "r.json", {"model": "mlp"})
    with pytest.raises(TypeError, match="meta"):
        report.write_results(tmp_path / "r.json", [], meta=[1])


# ---------------------------------------------------------------------- table and findings
@settings(max_examples=15, deadline=None)
@given(pruning_records())
def test_table_has_the_numbers_of_every_record(records):
    """One row per record, with its accuracies, sparsities and counts as computed from it."""
    text = report.results_table(records)
    assert len(text.splitlines()) == 2 + len(records)
    for r in records:
        cells = table_row(text, r)
        assert cells[4] == pct(r["sparsity_reached"])
        assert cells[5] == pct(r["accuracy_dense"])
        assert cells[6] == pct(r["accuracy_before_finetune"])
        tuned = r["accuracy_after_finetune"]
        assert cells[7] == ("–" if tuned is None else pct(tuned))
        assert cells[8] == f"{r['nonzero_params']:,} / {r['params']:,}"
        assert cells[9] == f"{r['effective_macs']:,}"


@settings(max_examples=15, deadline=None)
@given(pruning_records(finetuned=True), st.sampled_from([0.5, 0.8, 0.9, 1.0]))
def test_findings_state_the_points_lost_at_the_nearest_sparsity(records, at):
    """For every model and scope, each criterion's sentence gives 100·(dense − accuracy)
    with and without fine-tuning, at the sparsity of the records nearest ``at``."""
    findings = report.key_findings(records, at=at)
    for model in {r["model"] for r in records}:
        rows = [r for r in records if r["model"] == model]
        s = min(sorted({r["sparsity"] for r in rows}), key=lambda v: (abs(v - at), -v))
        for scope in ("global", "layer"):
            line = next(f for f in findings if f.startswith(f"{model}, {scope} pruning at "
                                                           f"{pct(s, 0)} sparsity"))
            for r in rows:
                if r["scope"] != scope or r["sparsity"] != s:
                    continue
                ft = 100 * (r["accuracy_dense"] - r["accuracy_after_finetune"])
                no_ft = 100 * (r["accuracy_dense"] - r["accuracy_before_finetune"])
                verb = lambda p: f"loses {p:.1f}" if p >= 0 else f"gains {-p:.1f}"  # noqa: E731
                assert (f"{r['criterion']} {verb(ft)} points with fine-tuning "
                        f"({verb(no_ft)} without)") in line


def test_findings_compare_global_and_layerwise_magnitude():
    base = {"model": "mlp", "dataset": "digits", "granularity": "weight",
            "schedule": "oneshot", "finetune_epochs": 1, "accuracy_dense": 0.97,
            "params": 10, "nonzero_params": 1, "macs": 10, "effective_macs": 1, "seed": 0}
    records = [{**base, "criterion": "magnitude", "scope": scope, "sparsity": s,
                "sparsity_reached": s, "accuracy_before_finetune": 0.5,
                "accuracy_after_finetune": acc}
               for scope, acc in (("global", 0.96), ("layer", 0.91)) for s in (0.5, 0.9)]
    findings = report.key_findings(records)
    assert any("magnitude at 90% sparsity with fine-tuning: global 96.0%, layer-wise 91.0% "
               "(global is better)" in f for f in findings)


@settings(max_examples=25, deadline=None)
@given(pruning_records(models=("mlp",), criteria=("magnitude",), scopes=("global",)),
       st.sampled_from([0.0, 0.01, 0.05, 0.2]))
def test_tolerated_sparsity_is_the_last_within_tolerance(records, tolerance):
    """Every sparsity up to the answer stays within the tolerance; the next one does not."""
    limit = report.tolerated_sparsity(records, tolerance)
    ordered = sorted(records, key=lambda r: r["sparsity"])
    lost = [r["accuracy_dense"] - r["accuracy_before_finetune"] for r in ordered]
    if limit is None:
        assert lost[0] > tolerance
    else:
        upto = [i for i, r in enumerate(ordered) if r["sparsity"] <= limit]
        assert all(lost[i] <= tolerance for i in upto)
        if len(upto) < len(ordered):
            assert lost[len(upto)] > tolerance


def test_nearest_sparsity_prefers_the_larger_on_a_tie():
    records = [{"sparsity": s} for s in (0.5, 0.7, 0.9)]
    assert report.nearest_sparsity(records, 0.8) == 0.9
    assert report.nearest_sparsity(records, 0.74) == 0.7
    with pytest.raises(ValueError, match="empty"):
        report.nearest_sparsity([], 0.5)


def test_findings_refuse_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        report.key_findings([], at=1.5)


# ---------------------------------------------------------------------- the report
def test_report_has_findings_table_and_relative_figures(tmp_path):
    records = _records()
    figure = tmp_path / "figures" / "acc.png"
    figure.parent.mkdir()
    figure.write_bytes(b"png")
    path = report.write_report(tmp_path / "report.md", records, title="T", intro="Hello.",
                               figures=[("accuracy", figure)], sections=[("Extra", "body")])
    text = path.read_text()
    assert text.startswith("# T\n\nHello.")
    assert "![accuracy](figures/acc.png)" in text
    assert report.results_table(records) in text
    for finding in report.key_findings(records):
        assert f"- {finding}" in text
    assert text.index("## Key findings") < text.index("## Results") < text.index("## Figures") \
        < text.index("## Extra")
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["report.md"]


def _records():
    base = {"model": "mlp", "dataset": "digits", "granularity": "weight", "schedule": "oneshot",
            "finetune_epochs": 2, "accuracy_dense": 0.9749, "params": 50610,
            "macs": 50200, "seed": 0}
    out = []
    for criterion, drop in (("magnitude", 0.01), ("random", 0.3)):
        for s in (0.5, 0.9):
            out.append({**base, "criterion": criterion, "scope": "global", "sparsity": s,
                        "sparsity_reached": s, "accuracy_before_finetune": 0.9749 - drop * s,
                        "accuracy_after_finetune": 0.9749 - drop * s / 3,
                        "nonzero_params": int(50610 * (1 - s)),
                        "effective_macs": int(50200 * (1 - s))})
    return out


def test_report_refuses_empty_records(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        report.write_report(tmp_path / "report.md", [])
    assert not (tmp_path / "report.md").exists()


def test_numbers_in_the_report_follow_the_records(tmp_path):
    """Change one accuracy: the table and the findings change with it."""
    records = _records()
    first = report.write_report(tmp_path / "a.md", records).read_text()
    records[1]["accuracy_after_finetune"] = 0.5
    second = report.write_report(tmp_path / "b.md", records).read_text()
    loss = 100 * (records[1]["accuracy_dense"] - 0.5)
    assert f"magnitude loses {loss:.1f} points with fine-tuning" in second
    assert f"magnitude loses {loss:.1f} points" not in first
    assert re.search(r"\| mlp \| global \| magnitude \| 90% \|.*\| 50\.0% \|", second)


def test_docstring_examples_run():
    assert doctest.testmod(report, raise_on_error=False).failed == 0

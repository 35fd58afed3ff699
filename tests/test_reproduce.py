"""``nnprune reproduce``: the LeNet-300-100 protocol over seeds, its summary and its table."""
import json
import statistics

import pytest

from nnprune.cli import main
from nnprune.experiment.reproduce import METHODS, Protocol, reproduce, table

pytestmark = pytest.mark.report

TINY = Protocol(sparsities=(0.5, 0.9), seeds=(0, 1), epochs=1, finetune_epochs=2, rounds=2,
                lr=0.05, width=0.1)


@pytest.fixture(scope="module")
def result(digits):
    return reproduce(digits, TINY)


def test_summary_is_the_mean_and_sd_of_the_seeds(result):
    """Every cell is (mean, sample sd) in % of the per-seed accuracies."""
    assert [r["seed"] for r in result["seeds"]] == [0, 1]
    for method in METHODS:
        for s in TINY.sparsities:
            values = [100 * r["runs"][method][s] for r in result["seeds"]]
            mean, sd = result["summary"][method][s]
            assert mean == pytest.approx(statistics.fmean(values))
            assert sd == pytest.approx(statistics.stdev(values))
    dense = [100 * r["dense"] for r in result["seeds"]]
    assert result["summary"]["dense"]["dense"][0] == pytest.approx(statistics.fmean(dense))


def test_table_has_a_row_per_method_and_a_column_per_sparsity(result):
    text = table(result)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0] == "| method | 0.5 | 0.9 |"
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == list(METHODS)
    mean, sd = result["summary"]["L1 + fine-tune"][0.9]
    assert f"{mean:.2f} ± {sd:.2f}" in rows[2]


def test_fine_tuning_recovers_what_one_shot_pruning_lost(result):
    """Measured, not assumed: at 90 % fine-tuned magnitude beats the pruned-only model."""
    for r in result["seeds"]:
        assert r["runs"]["L1 + fine-tune"][0.9] >= r["runs"]["L1 one-shot"][0.9]


def test_the_command_writes_the_table_and_every_seed(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["reproduce", "--out", str(out), "--seeds", "3", "--sparsities", "0.8",
                 "--epochs", "1", "--finetune-epochs", "1", "--rounds", "1", "--width", "0.1",
                 "--quiet"]) == 0
    record = json.loads((out / "reproduction.json").read_text())
    assert record["protocol"]["seeds"] == [3] and record["protocol"]["weight_decay"] == 1e-4
    assert "| iterative |" in (out / "reproduction.md").read_text()
    assert "| L1 + fine-tune |" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, match", [
    (dict(rounds=5, finetune_epochs=2), "at least one epoch"),
    (dict(seeds=()), "at least one seed"),
    (dict(sparsities=(0.5, 1.0)), r"in \(0, 1\)"),
    (dict(epochs=0), "epochs must be a positive int"),
])
def test_bad_protocols_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Protocol(**kwargs)

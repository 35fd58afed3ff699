"""Sweeps on every core: --jobs N gives the results file of --jobs 1 (timings aside), --seeds
repeats every run, the means over seeds; and the process map underneath."""
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune.cli import main
from nnprune.experiment.sweep import map_runs
from nnprune.experiment.sweep import mean_over_seeds

pytestmark = pytest.mark.report


@pytest.fixture(scope="module")
def trained(trained_file):
    return trained_file("lenet_300_100", epochs=2, width=1.0)


def without_timings(value):
    """The results file minus its wall-clock fields (``seconds``, ``setup_seconds``, ...)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def sweep_results(trained, out, *extra):
    argv = ["sweep", "--model", str(trained), "--criteria", "magnitude,random",
            "--sparsities", "0.5,0.9", "--finetune-epochs", "1", "--l2", "1e-4", "--quiet",
            "--out", str(out), *extra]  # the L2 penalty travels to the workers too
    assert main(argv) == 0
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def one_job(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    return sweep_results(trained, out), out


def test_two_jobs_write_the_results_file_of_one_job(trained, one_job, tmp_path, capsys):
    """4 runs in 2 worker processes: every record equal, field by field, bit for bit (the
    floats as JSON writes them, i.e. their shortest exact repr), in the same order."""
    one, one_dir = one_job
    two = sweep_results(trained, tmp_path, "--jobs", "2")
    assert len(one["records"]) == 4
    assert without_timings(two) == without_timings(one)
    assert (tmp_path / "report.md").read_text() == (one_dir / "report.md").read_text()


def test_seeds_repeat_every_run_and_the_report_shows_means(trained, one_job, tmp_path, capsys):
    data = sweep_results(trained, tmp_path, "--seeds", "0,1", "--jobs", "2")
    records = data["records"]
    assert len(records) == 8 and data["meta"]["seeds"] == [0, 1]
    assert [r["seed"] for r in records] == [0] * 4 + [1] * 4
    assert without_timings(records[:4]) == without_timings(one_job[0]["records"])
    random0, random1 = (next(r for r in records if r["seed"] == s and r["criterion"] == "random"
                             and r["sparsity"] == 0.5) for s in (0, 1))
    assert random0["accuracy_before_finetune"] != random1["accuracy_before_finetune"]
    report = (tmp_path / "report.md").read_text()
    assert "seeds 0, 1" in report and "means over them" in report
    mean = (random0["accuracy_before_finetune"] + random1["accuracy_before_finetune"]) / 2
    assert f"{100 * mean:.1f}%" in report


def test_bad_jobs_and_seeds_are_one_line_errors(capsys):
    for argv, fragment in ((["--jobs", "0"], "--jobs"), (["--seeds", "0,x"], "--seeds"),
                           (["--seeds", "1,1"], "distinct")):
        assert main(["sweep", "--model", "lenet_300_100", "--out", "x", *argv]) == 2
        assert fragment in capsys.readouterr().err
    with pytest.raises(ValueError, match="jobs must be an int >= 1"):
        list(map_runs(_square_plus, 0, [1, 2], jobs=1.5))


def _square_plus(shared, task):
    return task * task + shared


def test_map_runs_returns_results_in_task_order_from_worker_processes():
    tasks = list(range(7, 0, -1))
    assert list(map_runs(_square_plus, 100, tasks, jobs=2)) == [t * t + 100 for t in tasks]
    assert list(map_runs(_square_plus, 1, [3], jobs=4)) == [10]


@given(st.lists(st.tuples(st.sampled_from(["magnitude", "random"]), st.sampled_from([0.5, 0.9]),
                          st.floats(0, 1)), min_size=1, max_size=12))
def test_mean_over_seeds_averages_each_group_and_keeps_the_range(runs):
    """One record per (criterion, sparsity); its accuracy is the mean of its seeds' and lies
    in the [min, max] it reports; the seeds are listed in order."""
    records = [{"criterion": c, "sparsity": s, "seed": i, "accuracy_before_finetune": a,
                "accuracy_after_finetune": None} for i, (c, s, a) in enumerate(runs)]
    means = mean_over_seeds(records)
    assert len(means) == len({(c, s) for c, s, _ in runs})
    for m in means:
        group = [r for r in records if (r["criterion"], r["sparsity"]) ==
                 (m["criterion"], m["sparsity"])]
        values = [r["accuracy_before_finetune"] for r in group]
        assert m["seeds"] == [r["seed"] for r in group]
        assert m["accuracy_before_finetune"] == pytest.approx(sum(values) / len(values))
        assert m["accuracy_before_finetune_range"] == [min(values), max(values)]

"""Sweep and demo: independent copies of the trained model, records that match the models they
describe, the demo's expectations computed from its records, the structured part (a filter-
pruned model shrunk into a smaller one that computes what the masked one does, timed beside
the dense one) and ``nnprune demo --quick`` end to end. No test asserts a timing."""
import json

import numpy as np
import pytest

from nnprune import models, train
from nnprune.cli import main
from nnprune.count import count
from nnprune.experiment import demo, demo_structured, plots, report, sweep
from nnprune.experiment.report import RECORD_FIELDS

pytestmark = pytest.mark.report


@pytest.fixture(scope="module")
def mlp(digits):
    """A small MLP trained two epochs on the digits."""
    model = models.lenet_300_100(in_channels=1, input_size=8, width=0.25, seed=0)
    sweep.fit_model(model, digits, epochs=2, lr=0.05)
    return model


# ---------------------------------------------------------------------- sweep pieces
def test_clone_model_is_an_independent_copy(mlp):
    copy = sweep.clone_model(mlp)
    for (name, p), (_, q) in zip(mlp.named_parameters(), copy.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
        assert p.data is not q.data
    first = next(copy.parameters())
    first.set_mask(np.zeros(first.shape))
    assert np.count_nonzero(next(mlp.parameters()).data) > 0
    assert next(mlp.parameters()).mask is None
    twice = sweep.clone_model(copy)
    assert np.array_equal(next(twice.parameters()).mask, first.mask)  # masks are copied


def test_representative_run():
    assert sweep.representative(["random", "magnitude"], ["layer", "global"], [0.5, 0.95]) \
        == ("magnitude", "global", 0.95)
    assert sweep.representative(["taylor"], ["layer"], [0.5, 0.8]) == ("taylor", "layer", 0.8)


def test_prune_once_records_what_the_model_holds(mlp, digits):
    """The record's reached sparsity, counts and accuracies are those of the pruned model,
    and the trained model is left untouched."""
    before = [p.data.copy() for p in mlp.parameters()]
    record, pruned = sweep.prune_once(mlp, digits, criterion="magnitude", sparsity=0.75,
                                      scope="layer", finetune_epochs=1, lr=0.01)
    assert set(RECORD_FIELDS) <= set(record)
    for p, old in zip(mlp.parameters(), before):
        np.testing.assert_array_equal(p.data, old)
    for name, s in record["layer_sparsity"].items():
        p = dict(pruned.named_parameters())[name]
        assert s == pytest.approx(np.floor(0.75 * p.size + 0.5) / p.size)
    assert record["nonzero_params"] == sum(int(np.count_nonzero(p.data))
                                           for p in pruned.parameters())
    test = (digits.x_test, digits.y_test)
    assert record["accuracy_after_finetune"] == train.evaluate(pruned, test)["accuracy"]
    assert record["accuracy_dense"] == train.evaluate(mlp, test)["accuracy"]


def test_sweep_runs_every_combination_once(mlp, digits):
    seen = []
    records = sweep.sweep(mlp, digits, criteria=["magnitude", "taylor"], sparsities=[0.5, 0.9],
                          scopes=["global", "layer"], finetune_epochs=0, progress=False,
                          model_name="mlp", on_run=lambda r, m: seen.append((r, m)))
    combos = [(r["scope"], r["criterion"], r["sparsity"]) for r in records]
    assert sorted(combos) == sorted({(s, c, p) for s in ("global", "layer")
                                     for c in ("magnitude", "taylor") for p in (0.5, 0.9)})
    assert all(r["accuracy_after_finetune"] is None for r in records)
    assert [r for r, _ in seen] == records
    assert len({id(m) for _, m in seen}) == len(records)  # one fresh copy per run


@pytest.mark.parametrize("kwargs, match", [
    ({"criteria": []}, "criteria"),
    ({"criteria": "magnitude"}, "criteria"),
    ({"scopes": ["everywhere"]}, "scopes"),
    ({"sparsities": [1.5]}, "sparsities"),
    ({"finetune_epochs": -1}, "finetune_epochs"),
    ({"optimizer": "lbfgs"}, "optimizer"),
])
def test_sweep_refuses_bad_settings(mlp, digits, kwargs, match):
    settings = {"criteria": ["magnitude"], "sparsities": [0.5], "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        sweep.sweep(mlp, digits, **settings)


def test_clone_and_optimizer_refuse_bad_input(mlp):
    with pytest.raises(TypeError, match="Module"):
        sweep.clone_model({"weight": np.ones(2)})
    with pytest.raises(ValueError, match="optimizer"):
        sweep.make_optimizer("rmsprop", mlp, 0.1)


# ---------------------------------------------------------------------- structured part
@pytest.fixture(scope="module")
def cnn(digits):
    """The small CNN trained two epochs on the digits."""
    c, h, w = digits.input_shape
    model = models.simple_cnn(in_channels=c, num_classes=digits.num_classes, input_size=(h, w),
                              seed=0)
    sweep.fit_model(model, digits, epochs=2, lr=0.05)
    return model


def test_structured_run_records_the_shrunk_model(cnn, digits):
    """The shrunk model is smaller, is the one the record counts and measures, and predicts
    what the masked model did; the trained model is left untouched."""
    before = [p.data.copy() for p in cnn.parameters()]
    record, small = demo_structured.structured_run(cnn, digits, sparsity=0.5, finetune_epochs=1,
                                                   lr=0.02, batch_size=64, repeats=2)
    assert set(demo_structured.STRUCTURED_FIELDS) <= set(record)
    for p, old in zip(cnn.parameters(), before):
        np.testing.assert_array_equal(p.data, old)
    cost, dense = count(small, digits.input_shape), count(cnn, digits.input_shape)
    assert (record["params_shrunk"], record["macs_shrunk"]) == (cost.params, cost.macs)
    assert (record["params"], record["macs"]) == (dense.params, dense.macs)
    assert record["params_shrunk"] < record["params"] and record["macs_shrunk"] < record["macs"]
    layers = small.config()["layers"]
    for name, (old, new) in record["widths"].items():
        config = layers[int(name)]
        assert new == config.get("out_channels", config.get("out_features"))
        assert new == (old if name == "9" else old // 2)  # the output layer keeps its classes
    test = (digits.x_test, digits.y_test)
    assert record["accuracy_shrunk"] == train.evaluate(small, test)["accuracy"]
    assert record["accuracy_masked"] == record["accuracy_shrunk"]
    assert record["unstructured"]["sparsity_reached"] == pytest.approx(0.5, abs=0.01)
    assert record["unstructured"]["effective_macs"] < record["macs"]
    assert set(record["predict_seconds"]) == set(demo_structured.TIMED)
    assert all(t > 0 for t in record["predict_seconds"].values())


def test_predict_seconds_times_every_model(cnn, mlp, digits):
    x = digits.x_test[:40]
    seconds = demo_structured.predict_seconds({"cnn": cnn, "mlp": mlp}, x, repeats=2,
                                              batch_size=16)
    assert set(seconds) == {"cnn", "mlp"} and all(t > 0 for t in seconds.values())


@pytest.mark.parametrize("models_, kwargs, error, match", [
    ({}, {}, TypeError, "models"),
    ([("a", None)], {}, TypeError, "models"),
    ({"a": "model"}, {}, TypeError, r"models\['a'\]"),
    (None, {"repeats": 0}, ValueError, "repeats"),
    (None, {"batch_size": 0}, ValueError, "batch_size"),
])
def test_predict_seconds_refuses_bad_input(mlp, digits, models_, kwargs, error, match):
    with pytest.raises(error, match=match):
        demo_structured.predict_seconds({"mlp": mlp} if models_ is None else models_,
                                        digits.x_test[:8], **kwargs)


@pytest.mark.parametrize("sparsities", [[], "0.5", [1.0], [0.0], [True]])
def test_structured_runs_refuse_bad_sparsities(cnn, digits, sparsities):
    with pytest.raises(ValueError, match="sparsities"):
        demo_structured.structured_runs(cnn, digits, sparsities=sparsities, finetune_epochs=0,
                                        lr=0.01, batch_size=64)


def test_structured_run_refuses_a_bad_sparsity(cnn, digits):
    with pytest.raises(ValueError, match="sparsity"):
        demo_structured.structured_run(cnn, digits, sparsity=1.5, finetune_epochs=0, lr=0.01,
                                       batch_size=64)


def test_structured_tables_refuse_records_without_their_fields():
    for table in (demo_structured.structured_table, demo_structured.structured_markdown,
                  demo_structured.structured_console):
        with pytest.raises(ValueError, match="predict_seconds"):
            table([{"model": "m", "sparsity": 0.5}])
    with pytest.raises(ValueError, match="empty"):
        demo_structured.structured_markdown([])


def test_write_results_keeps_extra_lists_beside_the_records(tmp_path):
    rec = {k: None for k in RECORD_FIELDS}
    path = report.write_results(tmp_path / "r.json", [rec], {"seed": 0},
                                extra={"structured": [{"sparsity": 0.5}]})
    assert json.loads(path.read_text())["structured"] == [{"sparsity": 0.5}]
    assert report.read_results(path) == ([rec], {"seed": 0})
    with pytest.raises(ValueError, match="records"):
        report.write_results(tmp_path / "r.json", [rec], extra={"records": []})
    with pytest.raises(TypeError, match="extra"):
        report.write_results(tmp_path / "r.json", [rec], extra=[("structured", [])])
    with pytest.raises(TypeError, match="extra"):
        report.write_results(tmp_path / "r.json", [rec], extra={"structured": "none"})


# ---------------------------------------------------------------------- the demo's checks
def _mlp_records(dense, magnitude, random, no_ft):
    base = {"model": demo.MLP, "scope": "global", "accuracy_dense": dense}
    out = [{**base, "criterion": "magnitude", "sparsity": s, "accuracy_before_finetune": a,
            "accuracy_after_finetune": magnitude if s == 0.9 else a} for s, a in no_ft]
    out.append({**base, "criterion": "random", "sparsity": 0.9, "accuracy_before_finetune": 0.1,
                "accuracy_after_finetune": random})
    return out


def test_demo_checks_are_computed_from_the_records():
    met = demo.demo_checks(_mlp_records(0.97, 0.965, 0.80, [(0.5, 0.968), (0.9, 0.6)]))
    assert [c["met"] for c in met] == [True, True, True]
    assert "loses 0.5 points" in met[0]["detail"]
    missed = demo.demo_checks(_mlp_records(0.97, 0.95, 0.93, [(0.5, 0.95), (0.9, 0.6)]))
    assert [c["met"] for c in missed] == [False, False, False]
    assert "loses 2.0 points" in missed[0]["detail"]
    assert [c["met"] for c in demo.demo_checks([])] == [None, None, None]
    gained = demo.demo_checks(_mlp_records(0.95, 0.96, 0.5, [(0.5, 0.95), (0.9, 0.6)]))
    assert gained[0]["met"] and "gains 1.0 points" in gained[0]["detail"]


def test_demo_refuses_a_bad_seed(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        demo.run_demo(tmp_path, seed=-1)
    with pytest.raises(TypeError, match="quick"):
        demo.run_demo(tmp_path, quick="yes")


def test_quick_demo_end_to_end(capsys, tmp_path):
    """``nnprune demo --quick`` writes results.json, report.md and the figures, and prints
    the table and the three expectations."""
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    records = results["records"]
    settings = demo.QUICK
    assert len(records) == (len(settings.models) * len(settings.criteria)
                            * len(settings.sparsities) * len(settings.scopes))
    assert {r["model"] for r in records} == {"simple_cnn", "lenet_300_100"}
    report = (out / "report.md").read_text()
    figures = sorted(p.name for p in (out / "figures").iterdir())
    # per model: 2 accuracy charts, layer bars, histogram, mask; then accuracy vs MACs and
    # the sensitivity curves of the filter criteria
    assert len(figures) == 2 * 5 + 2
    for name in figures:
        assert f"](figures/{name})" in report
    assert all((out / "figures" / name).stat().st_size > 1000 for name in figures)
    for r in records:
        assert f"{100 * r['accuracy_before_finetune']:.1f}%" in report
    assert "## Expectations" in report
    assert printed.count("[") >= 3 and "wrote" in printed
    structured = results["structured"]
    assert [r["sparsity"] for r in structured] == list(settings.structured)
    assert "## Structured pruning: a really smaller model" in report
    assert "vary from machine to machine" in report
    assert "Seeds behind each number: 1 (seed 0" in report
    for r in structured:
        assert r["model"] == settings.structured_model and r["granularity"] == "filter"
        assert r["params_shrunk"] < r["params"] and r["macs_shrunk"] < r["macs"]
        assert r["accuracy_masked"] == r["accuracy_shrunk"]
        assert all(t > 0 for t in r["predict_seconds"].values())
        assert f"{r['params']:,} → {r['params_shrunk']:,}" in report
        assert f"{r['params']:,}->{r['params_shrunk']:,}" in printed
    criteria = results["criteria"]
    assert [r["criterion"] for r in criteria] == list(settings.filter_criteria)
    assert "## Filter criteria compared" in report
    for r in criteria:
        assert r["macs_shrunk"] < r["macs"] and r["sparsity"] == settings.structured[0]
        assert f"| {r['criterion']} | {100 * r['accuracy_pruned']:.1f}% |" in report
    sensitivity = results["sensitivity"][0]
    assert all(curve[0] == [0.0, sensitivity["accuracy_dense"]]
               for curve in sensitivity["curves"].values())


def test_criteria_report_pieces_refuse_empty_input(tmp_path):
    from nnprune.experiment import demo_criteria

    with pytest.raises(ValueError, match="empty"):
        demo_criteria.criteria_markdown([])
    with pytest.raises(ValueError, match="empty"):
        plots.accuracy_vs_macs([], tmp_path / "x.png")
    path = plots.accuracy_vs_macs([("dense", 1000, 0.9), ("shrunk", 250, 0.88)],
                                  tmp_path / "x.png")
    assert path.stat().st_size > 1000

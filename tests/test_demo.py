"""Sweep and demo: independent copies of the trained model, records that match the models they
describe, the demo's expectations computed from its records, and ``nnprune demo --quick``
end to end."""
import json

import numpy as np
import pytest

from nnprune import data as datasets
from nnprune import models, train
from nnprune.cli import main
from nnprune.experiment import demo, sweep
from nnprune.experiment.report import RECORD_FIELDS

pytestmark = pytest.mark.report


@pytest.fixture(scope="module")
def digits():
    return datasets.digits(seed=0)


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
    assert len(figures) == 2 * 5  # per model: 2 accuracy charts, layer bars, histogram, mask
    for name in figures:
        assert f"](figures/{name})" in report
    assert all((out / "figures" / name).stat().st_size > 1000 for name in figures)
    for r in records:
        assert f"{100 * r['accuracy_before_finetune']:.1f}%" in report
    assert "## Expectations" in report
    assert printed.count("[") >= 3 and "wrote" in printed

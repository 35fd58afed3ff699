"""Checked once along the whole chain: ``nnprune prune`` → ``PruneSpec`` → workflow →
``prune_model`` → masks parses the granularity and checks the sparsity exactly once, and so
does a workflow called with keywords (``oneshot``, ``iterative``) or with specs; a
``TrainSpec`` is checked where it is made and the workflows take it as it is."""
import pytest

from nnprune import models
from nnprune.experiment import workflows
from nnprune.prune.spec import PruneSpec
from nnprune.train import TrainSpec
from nnprune.train import spec as train_spec_module

pytestmark = pytest.mark.report


def mlp():
    """LeNet-300-100 at width 0.1 on 8×8 digits: 64-30-10-10."""
    return models.lenet_300_100(in_channels=1, input_size=8, width=0.1, seed=0)


@pytest.mark.parametrize("granularity, sparsity", [("weight", "0.5"), ("filter", "0.5"),
                                                   ("2:4", None)])
def test_nnprune_prune_parses_and_checks_once(cli, trained_file, tmp_path, counts,
                                              granularity, sparsity):
    """From the command line to the masks: one parse of --granularity (argparse builds the
    Granularity), one check of --sparsity (PruneSpec; N:M given none has nothing to check)."""
    path = trained_file("lenet_300_100", width=0.25)
    argv = ["prune", path, "--granularity", granularity, "--finetune-epochs", "0", "--quiet",
            "--out", tmp_path / "p.npz"] + ([] if sparsity is None else ["--sparsity", sparsity])
    status, _, err = cli(*argv)
    assert status == 0, err
    assert counts == {"parse": 1, "sparsity": 0 if sparsity is None else 1}


@pytest.mark.parametrize("workflow, options", [
    (workflows.oneshot, {}), (workflows.oneshot, {"granularity": "neuron"}),
    (workflows.iterative, {"rounds": 3}), (workflows.iterative, {"kind": "linear"}),
])
def test_a_workflow_called_with_keywords_parses_and_checks_once(digits, counts, workflow,
                                                                options):
    """The keyword form is built into specs once; the rounds of ``iterative`` prune to
    targets derived from the checked one (``schedules.iterative_targets``), so they are not
    checked again."""
    record = workflow(mlp(), digits, sparsity=0.6, finetune_epochs=0, **options)
    assert record["sparsity_reached"] > 0.3
    assert counts["parse"] == 1
    assert counts["sparsity"] == 1


def test_specs_are_trusted_by_the_workflows(digits, counts, monkeypatch):
    """Specs made once, then passed to three runs: no parse, no sparsity check, no TrainSpec
    check after their construction."""
    made = []
    real_init = TrainSpec.__post_init__

    def counting_init(self):
        made.append(self)
        real_init(self)

    monkeypatch.setattr(TrainSpec, "__post_init__", counting_init)
    prune, train = PruneSpec("magnitude", 0.5, "global", "neuron"), TrainSpec(epochs=1)
    assert counts == {"parse": 1, "sparsity": 1} and len(made) == 1
    for _ in range(2):
        workflows.oneshot(mlp(), digits, prune, train)
    workflows.iterative(mlp(), digits, prune, TrainSpec(epochs=0), rounds=2)
    assert counts == {"parse": 1, "sparsity": 1}
    assert len(made) == 2


def test_train_spec_refuses_bad_settings_by_name():
    for bad, error, match in [
        (dict(lr=0.0), ValueError, r"lr must be a finite number > 0, got 0.0"),
        (dict(lr="fast"), TypeError, "lr must be a number, got 'fast' of type str"),
        (dict(epochs=-1), ValueError, "epochs must be an int >= 0, got -1"),
        (dict(batch_size=0), ValueError, "batch_size must be an int >= 1, got 0"),
        (dict(optimizer="rmsprop"), ValueError, "optimizer must be one of"),
        (dict(momentum=1.0), ValueError, r"momentum must be in \[0, 1\), got 1.0"),
        (dict(weight_decay=-1e-4), ValueError, "weight_decay must be a finite number >= 0"),
        (dict(lr_schedule="linear"), ValueError, "lr_schedule must be one of"),
        (dict(regularizer=1e-4), TypeError, "regularizer must be None or callable"),
        (dict(seed=-1), ValueError, "seed must be an int >= 0"),
        (dict(quiet=1), TypeError, "quiet must be a bool"),
    ]:
        with pytest.raises(error, match=match):
            TrainSpec(**bad)
    assert train_spec_module.TrainSpec is TrainSpec


def test_a_workflow_refuses_a_spec_and_its_keywords_together(digits):
    with pytest.raises(TypeError, match="give train=TrainSpec"):
        workflows.oneshot(mlp(), digits, train=TrainSpec(), lr=0.1)
    with pytest.raises(TypeError, match="give prune=PruneSpec"):
        workflows.oneshot(mlp(), digits, PruneSpec("magnitude", 0.5), criterion="random")
    with pytest.raises(TypeError, match="unexpected keyword argument 'sparsty'"):
        workflows.oneshot(mlp(), digits, sparsty=0.5)

"""The bench compares like with like: its kernel-only training step computes the gradients
autograd computes, its FLOP count is 2 · MACs, and it times functions in turns."""
import numpy as np
import pytest

from nnprune import Tensor, functional as F, models, nn
from nnprune.bench.conv import CONV_CASES, conv_flops
from nnprune.bench.step import kernel_backward

pytestmark = pytest.mark.kernels


@pytest.mark.parametrize("build", [
    lambda: models.lenet5(seed=0, dtype=np.float64),
    lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=0, dtype=np.float64),
                          nn.AvgPool2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 5, bias=False, rng=0, dtype=np.float64)),
])
def test_the_kernel_step_has_the_autograd_gradients(build):
    model = build()
    rng = np.random.default_rng(0)
    c = model[0].weight.shape[1]
    x = rng.random((3, c, 28, 28) if c == 1 else (3, c, 8, 8))
    y = rng.integers(0, 5, 3)
    F.cross_entropy(model(Tensor(x)), y).backward()
    expected = {name: p.grad.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    kernel_backward(model, x, y)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_conv_flops_are_two_per_multiply_accumulate():
    """LeNet conv1: 64 images × 6 filters × 24·24 outputs × 1·5·5 MACs, two FLOPs each."""
    assert conv_flops(CONV_CASES[0]) == 2 * 64 * 6 * 24 * 24 * 25
    assert conv_flops(CONV_CASES[3]) == 2 * 64 * 128 * 16 * 16 * 64 * 9


def test_interleaved_timing_calls_each_function_in_turns_after_its_warmups():
    """bench.timing.interleaved: ``warmup`` untimed calls of each function, then ``repeat``
    rounds of one call each in turn; one wall and one CPU time per timed call, never < 0."""
    from nnprune.bench.timing import interleaved

    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    wall, cpu = interleaved(fns, repeat=3, warmup=2)
    assert calls == ["a", "a", "b", "b", "c", "c"] + ["a", "b", "c"] * 3
    for times in (wall, cpu):
        assert list(times) == ["a", "b", "c"]
        assert all(len(t) == 3 and min(t) >= 0 for t in times.values())


def test_grouped_timing_alternates_whole_blocks_of_each_group(monkeypatch):
    """bench.timing.grouped_times: per block, each group in turn gets a pause (the other
    group's threads stop spinning), two warm-up calls of each function and then its rounds;
    the groups never mix within a round. One group alone gets no pause."""
    from nnprune.bench import timing

    calls = []
    monkeypatch.setattr(timing.time, "sleep", lambda seconds: calls.append(seconds))
    groups = [{name: (lambda name=name: calls.append(name)) for name in names}
              for names in ("ab", "t")]
    times = timing.grouped_times(groups, repeat=4, blocks=2)
    block = [timing.PAUSE, "a", "a", "b", "b"] + ["a", "b"] * 2 + [timing.PAUSE, "t", "t", "t", "t"]
    assert calls == block * 2
    calls.clear()
    timing.grouped_times(groups[:1], repeat=2, blocks=1, pause=5.0)
    assert calls == ["a", "a", "b", "b", "a", "b", "a", "b"]
    assert sorted(times) == ["a", "b", "t"]
    assert all(len(block) == 2 and min(block) >= 0 for t in times.values() for block in t)


def test_grouped_times_keep_each_block_and_ratios_pair_blocks_that_ran_together(monkeypatch):
    """bench.timing.grouped_times: one list of ``repeat / blocks`` times per block and
    function; median_ms is the median over all of them; block_ratios divides the medians of
    blocks with the same index, which ran one after the other (here with a fake clock: "a"
    takes 3 s a call in block 0 and 1 s in block 1, "t" 2 s and 1 s)."""
    from nnprune.bench import timing

    monkeypatch.setattr(timing.time, "sleep", lambda seconds: None)
    clock, calls = [0.0], []
    cost = {"a": (3.0, 1.0), "t": (2.0, 1.0)}  # seconds a call takes in block 0, block 1
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(timing.time, "process_time", lambda: clock[0])

    def fn(name):
        def run():  # a block is 2 warm-up calls and 2 timed ones of each function
            clock[0] += cost[name][calls.count(name) // 4]
            calls.append(name)
        return run

    times = timing.grouped_times([{"a": fn("a")}, {"t": fn("t")}], repeat=4, blocks=2)
    assert {name: [len(b) for b in blocks] for name, blocks in times.items()} == {
        "a": [2, 2], "t": [2, 2]}
    assert times["a"] == [[3.0, 3.0], [1.0, 1.0]] and times["t"] == [[2.0, 2.0], [1.0, 1.0]]
    assert timing.block_ratios(times, "a", "t") == [1.5, 1.0]
    assert timing.median_ms(times) == {"a": 2000.0, "t": 1500.0}


def test_conv_row_reports_the_ratio_to_torch_block_by_block():
    """With torch, a row of `bench conv` holds both ratios over all blocks and one per block
    (three blocks), each the ratio of two positive medians; the printed line shows their
    range."""
    torch = pytest.importorskip("torch")
    from nnprune.bench.conv import conv_row

    row, line, _ = conv_row(CONV_CASES[0], repeat=3, peak=100.0, torch=torch)
    for kind in ("fwd", "fwd_bwd"):
        blocks = row[f"ratio_{kind}_blocks"]
        assert len(blocks) == 3 and min(blocks) > 0 and row[f"ratio_{kind}"] > 0
    low, high = min(row["ratio_fwd_blocks"]), max(row["ratio_fwd_blocks"])
    assert f"{low:.2f}–{high:.2f}" in line


def test_ratio_range_prints_least_and_greatest_and_refuses_none():
    from nnprune.bench.timing import ratio_range

    assert ratio_range([1.2]) == "1.20–1.20"
    assert ratio_range([0.987, 1.5, 1.004]) == "0.99–1.50"
    with pytest.raises(ValueError, match="at least one ratio"):
        ratio_range([])

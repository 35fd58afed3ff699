"""`nnprune bench conv` runs and reports every figure it promises (no timing is asserted)."""
import json
import sys

import pytest

from nnprune import heap
from nnprune.cli import main

pytestmark = [pytest.mark.cli, pytest.mark.slow]


def test_bench_conv_writes_every_case(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "conv", "--repeat", "1", "--no-torch", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["case"] for r in result["conv"]] == ["lenet conv1", "lenet conv2", "vgg 3->64 @32",
                                                   "vgg 64->128 @16", "vgg 128->256 @8"]
    assert all(r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 for r in result["conv"])
    assert [r["layout"] for r in result["conv"]] == ["channels_first", "batch_last",
                                                     "channels_first", "channels_last",
                                                     "channels_last"]
    assert result["matmul_peak_gflops"] > 0 and result["lenet5_step"]["kernels_ms"] > 0
    printed = capsys.readouterr().out
    assert "BLAS:" in printed and "LeNet-5 training step" in printed
    assert [r["algorithm"] for r in result["conv"]] == ["im2col", "im2col", "im2col",
                                                        "winograd4", "winograd4"]
    for row in result["conv"][2:]:  # the 3×3 layers: every algorithm timed, errors measured
        assert set(row["algorithms"]) == {"im2col", "winograd2", "winograd4"}
        errors = row["float32_error"]
        assert all(0 < e < 1e-4 for algo in errors.values() for e in algo.values())
        assert errors["im2col"]["out"] < errors["winograd4"]["out"]
    assert "F(4×4) error" in printed
    # both frameworks time with the allocator settings of nnprune's training (glibc keeps
    # freed memory), and the header says which settings held
    kept = sys.platform.startswith("linux") and not heap.user_malloc_settings()
    assert result["freed_memory_kept"] is kept is heap.freed_memory_kept()
    assert ("malloc: freed memory kept" if kept else "malloc: glibc's defaults") in printed


def test_bench_rejects_a_bad_repeat(capsys):
    assert main(["bench", "conv", "--repeat", "0"]) != 0
    assert "repeat" in capsys.readouterr().err


def test_bench_prune_times_dense_masked_and_shrunk(tmp_path, capsys):
    """Every figure of a case is there; the shrunk LeNet-5 has the MACs and parameters of
    LeNet-5 with half its conv1, conv2 and fc1 units (closed form, no timing asserted)."""
    out = tmp_path / "prune.json"
    assert main(["bench", "prune", "--repeat", "1", "--cases", "lenet5-50",
                 "--json", str(out)]) == 0
    row = json.loads(out.read_text())["cases"][0]
    assert row["case"] == "lenet5-50" and row["batch"] == 64
    macs = 10 * 24 * 24 * 25 + 25 * 8 * 8 * 10 * 25 + 25 * 16 * 250 + 250 * 10
    params = (10 * 25 + 10) + (25 * 10 * 25 + 25) + (400 * 250 + 250) + (250 * 10 + 10)
    assert row["macs"] == [2_293_000, macs] and row["params"] == [431_080, params]
    assert row["mac_ratio"] == pytest.approx(2_293_000 / macs)
    assert all(row["ms"][k] > 0 for k in ("dense", "masked", "shrunk"))
    assert row["speedup_shrunk"] == pytest.approx(row["ms"]["dense"] / row["ms"]["shrunk"])
    assert row["speedup_shrunk_cpu"] == pytest.approx(row["cpu_ms"]["dense"] / row["cpu_ms"]["shrunk"])
    assert "MAC ratio" in capsys.readouterr().out


def test_bench_prune_rejects_an_unknown_case(capsys):
    assert main(["bench", "prune", "--cases", "alexnet"]) != 0
    assert "alexnet" in capsys.readouterr().err


def test_bench_hessian_reports_obc_sparsegpt_and_the_diagonals(tmp_path, capsys, monkeypatch):
    """The same code on small layers: every figure present (no timing asserted)."""
    from nnprune.bench import hessian as bench_hessian

    monkeypatch.setattr(bench_hessian, "LAYERS", (("small", 12, 5),))
    monkeypatch.setattr(bench_hessian, "SAMPLES", 40)
    monkeypatch.setattr(bench_hessian, "DIAG_BATCH", 8)
    out = tmp_path / "hessian.json"
    assert main(["bench", "hessian", "--repeat", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    row = result["layers"]["small"]
    assert row["shape"] == [5, 12] and row["obc_seconds"] > 0 and row["sparsegpt_seconds"] > 0
    assert row["obc_loss"] > 0 and row["loss_ratio"] == row["sparsegpt_loss"] / row["obc_loss"]
    assert all(result["diagonals"][k]["backward_passes"] > 0
               for k in ("gauss-newton", "lecun", "fisher"))
    assert "backward passes" in capsys.readouterr().out

"""`nnprune bench conv` runs and reports every figure it promises (no timing is asserted)."""
import json

import pytest

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


def test_bench_rejects_a_bad_repeat(capsys):
    assert main(["bench", "conv", "--repeat", "0"]) != 0
    assert "repeat" in capsys.readouterr().err

"""`nnprune bench train` reads MNIST t10k from a folder (or says why it cannot), times the
LeNet-5 and VGG-16 epochs and reports every figure it promises (no timing is asserted)."""
import gzip
import json

import numpy as np
import pytest

from nnprune import models
from nnprune.bench.train import read_t10k, torch_lenet5, torch_vgg16
from nnprune.cli import main
from nnprune.data.idx import idx_bytes

pytestmark = [pytest.mark.cli, pytest.mark.slow]


def write_t10k(folder, n=70, gz=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    for name, array in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_read_t10k_scales_the_pixels_to_the_unit_interval(tmp_path, gz):
    images, labels = write_t10k(tmp_path, gz=gz)
    x, y = read_t10k(tmp_path)
    assert x.shape == (70, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0] * 255, images, atol=1e-4)
    np.testing.assert_array_equal(y, labels)


def test_read_t10k_names_the_missing_file(tmp_path):
    assert "t10k-images-idx3-ubyte" in read_t10k(tmp_path)


def test_bench_train_reports_both_epochs(tmp_path, capsys):
    write_t10k(tmp_path)
    out = tmp_path / "train.json"
    assert main(["bench", "train", "--no-torch", "--data-dir", str(tmp_path), "--epochs", "1",
                 "--vgg-samples", "8", "--vgg-width", "0.0625", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["lenet5_epoch"]["samples"] == 70 and result["lenet5_epoch"]["nnprune_s"] > 0
    assert result["vgg16_epoch"]["samples"] == 8 and result["vgg16_epoch"]["nnprune_s"] > 0
    assert "LeNet-5, one epoch of MNIST t10k" in capsys.readouterr().out


def test_bench_train_without_data_skips_lenet_and_says_so(tmp_path, capsys):
    assert main(["bench", "train", "--no-torch", "--data-dir", str(tmp_path / "none"),
                 "--epochs", "1", "--vgg-samples", "4", "--vgg-width", "0.0625"]) == 0
    printed = capsys.readouterr().out
    assert "LeNet-5 epoch on MNIST t10k: skipped" in printed and "not found" in printed
    assert "VGG-16 width 0.0625" in printed


def test_torch_mirrors_have_nnprune_parameter_counts():
    torch = pytest.importorskip("torch")
    for ours, theirs in ((models.lenet5(), torch_lenet5(torch)),
                         (models.vgg16(width=0.25), torch_vgg16(torch, 0.25))):
        assert sum(p.data.size for p in ours.parameters()) == \
            sum(p.numel() for p in theirs.parameters())


def test_wall_time_runs_the_command_with_the_thread_count(tmp_path):
    """The child's OPENBLAS_NUM_THREADS is the thread count given; its exit status and a
    positive time come back."""
    import sys

    from nnprune.bench.train import wall_time

    probe = [sys.executable, "-c",
             "import os, sys; sys.exit(int(os.environ.get('OPENBLAS_NUM_THREADS', '0') == '3'))"]
    with_threads = wall_time(probe, cwd=tmp_path, threads=3)
    assert with_threads["exit_status"] == 1 and with_threads["seconds"] > 0
    assert wall_time(probe, cwd=tmp_path, threads=2)["exit_status"] == 0


def test_bench_train_with_torch_pairs_each_epoch_with_torchs(tmp_path, capsys):
    """Epochs run interleaved (nnprune, torch, nnprune, torch): one ratio per pair, and the
    printed line gives their range."""
    pytest.importorskip("torch")
    out = tmp_path / "train.json"
    assert main(["bench", "train", "--data-dir", str(tmp_path / "none"), "--epochs", "2",
                 "--vgg-samples", "8", "--vgg-width", "0.0625", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["vgg16_epoch"]
    assert len(row["ratio_by_epoch"]) == 2 and min(row["ratio_by_epoch"]) > 0
    low, high = min(row["ratio_by_epoch"]), max(row["ratio_by_epoch"])
    assert f"(by epoch {low:.2f}–{high:.2f}×)" in capsys.readouterr().out

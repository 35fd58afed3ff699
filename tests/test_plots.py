"""Figures: every plot writes a real, non-empty PNG at the path it returns; the mask is drawn
as (F, C·kh·kw); bad input gets a clear error."""
import doctest
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune.experiment import plots
from strategies import shapes

pytestmark = pytest.mark.report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def distinct_colours(path):
    """Number of distinct RGBA values in the image: a blank canvas has one."""
    import matplotlib.image

    image = matplotlib.image.imread(path)
    return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0))


@pytest.fixture(scope="module")
def records():
    """Two criteria × two scopes × three sparsities, fine-tuned and not."""
    return [{"criterion": c, "scope": scope, "sparsity": s, "accuracy_dense": 0.97,
             "accuracy_before_finetune": 0.97 - s ** (3 if c == "magnitude" else 1) / 2,
             "accuracy_after_finetune": 0.97 - s ** 4 / 10}
            for c in ("magnitude", "random") for scope in ("global", "layer")
            for s in (0.5, 0.7, 0.9)]


def test_accuracy_vs_sparsity_writes_a_png(tmp_path, records):
    path = plots.accuracy_vs_sparsity(records, tmp_path / "acc.png", title="mlp")
    assert path == tmp_path / "acc.png"
    width, height = png_size(path)
    assert width > 300 and height > 200
    assert distinct_colours(path) > 10  # lines, markers and text, not a blank canvas


def test_accuracy_vs_sparsity_without_finetuning_and_a_nested_folder(tmp_path):
    records = [{"criterion": c, "sparsity": s, "accuracy_before_finetune": 1 - s / 2,
                "accuracy_after_finetune": None} for c in ("magnitude", "random")
               for s in (0.5, 0.9)]
    path = plots.accuracy_vs_sparsity(records, tmp_path / "a" / "b" / "acc.png")
    assert path.is_file() and path.stat().st_size > 1000


def test_layer_sparsity_bars_writes_a_png(tmp_path):
    per_layer = {"global": {"1.weight": 0.78, "3.weight": 0.98, "5.weight": 0.76},
                 "layer-wise": {"1.weight": 0.9, "3.weight": 0.9, "5.weight": 0.9}}
    path = plots.layer_sparsity_bars(per_layer, tmp_path / "bars.png")
    assert png_size(path)[0] > 300
    assert distinct_colours(path) > 10


def test_weight_histograms_write_a_png(tmp_path):
    rng = np.random.default_rng(0)
    before = {"0.weight": rng.standard_normal((16, 1, 3, 3)),
              "1.weight": rng.standard_normal((10, 20))}
    after = {name: np.where(np.abs(w) > 0.8, w, 0.0) for name, w in before.items()}
    path = plots.weight_histograms(before, after, tmp_path / "hist.png", bins=30)
    assert png_size(path)[1] > 200
    assert distinct_colours(path) > 10


def test_weight_histograms_when_everything_is_pruned(tmp_path):
    """All weights pruned: the after histogram is empty, the figure is still drawn."""
    w = np.linspace(-1, 1, 50)
    path = plots.weight_histograms(w, np.zeros_like(w), tmp_path / "hist.png")
    assert path.stat().st_size > 1000


def test_mask_image_writes_a_png(tmp_path):
    mask = (np.random.default_rng(1).random((8, 3, 3, 3)) > 0.7).astype(np.float32)
    path = plots.mask_image(mask, tmp_path / "mask.png", name="0.weight")
    assert png_size(path)[0] > 300
    assert distinct_colours(path) > 2


@settings(max_examples=20, deadline=None)
@given(shapes(min_dims=1, max_dims=4), st.integers(0, 2**32 - 1))
def test_mask_matrix_keeps_one_row_per_output(shape, seed):
    """mask_matrix is (shape[0], rest) for ≥ 2-D masks and (1, n) for 1-D, and row i is
    mask[i] flattened: a conv mask (F, C, kh, kw) becomes (F, C·kh·kw)."""
    mask = (np.random.default_rng(seed).random(shape) > 0.5).astype(np.float64)
    matrix = plots.mask_matrix(mask)
    if mask.ndim == 1:
        assert matrix.shape == (1, mask.size)
        np.testing.assert_array_equal(matrix[0], mask)
    else:
        assert matrix.shape == (shape[0], int(np.prod(shape[1:])))
        for i in range(shape[0]):
            np.testing.assert_array_equal(matrix[i], mask[i].ravel())


# ---------------------------------------------------------------------- bad input
def test_bad_records_are_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plots.accuracy_vs_sparsity([], tmp_path / "a.png")
    with pytest.raises(ValueError, match="lacks the fields"):
        plots.accuracy_vs_sparsity([{"criterion": "magnitude"}], tmp_path / "a.png")
    with pytest.raises(TypeError, match="list of dicts"):
        plots.accuracy_vs_sparsity("records", tmp_path / "a.png")
    with pytest.raises(TypeError, match=r"records\[0\]"):
        plots.accuracy_vs_sparsity([3], tmp_path / "a.png")


def test_bad_paths_are_refused(tmp_path):
    records = [{"criterion": "magnitude", "sparsity": 0.5, "accuracy_before_finetune": 0.9}]
    with pytest.raises(ValueError, match=r"\.png"):
        plots.accuracy_vs_sparsity(records, tmp_path / "a.jpg")
    with pytest.raises(TypeError, match="path"):
        plots.mask_image(np.ones((2, 2)), 42)
    assert not list(tmp_path.iterdir())


def test_bad_layer_sparsities_are_refused(tmp_path):
    with pytest.raises(ValueError, match="non-empty"):
        plots.layer_sparsity_bars({}, tmp_path / "b.png")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plots.layer_sparsity_bars({"global": {"1.weight": 1.5}}, tmp_path / "b.png")
    with pytest.raises(ValueError, match="non-empty"):
        plots.layer_sparsity_bars({"global": {}}, tmp_path / "b.png")


def test_bad_weights_and_masks_are_refused(tmp_path):
    with pytest.raises(ValueError, match="bins"):
        plots.weight_histograms(np.ones(3), np.ones(3), tmp_path / "h.png", bins=0)
    with pytest.raises(ValueError, match="NaN"):
        plots.weight_histograms(np.array([1.0, np.nan]), np.ones(2), tmp_path / "h.png")
    with pytest.raises(ValueError, match="no weights"):
        plots.weight_histograms({}, np.ones(2), tmp_path / "h.png")
    with pytest.raises(ValueError, match="only 0 and 1"):
        plots.mask_image(np.full((2, 2), 0.5), tmp_path / "m.png")
    with pytest.raises(ValueError, match="non-empty"):
        plots.mask_matrix(np.ones(()))


def test_docstring_examples_run():
    assert doctest.testmod(plots, raise_on_error=False).failed == 0

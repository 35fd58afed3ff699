"""threads.chunk_runner runs a batch's chunks side by side with BLAS at one thread, and gives
the results the serial loop gives: in order, exceptions raised, the BLAS thread count
restored; Winograd computed that way equals Winograd computed chunk after chunk."""
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nnprune import threads
from nnprune.functional import conv, winograd

pytestmark = pytest.mark.kernels


@pytest.fixture
def map_calls(monkeypatch):
    """(workers, BLAS threads) of every ChunkMap call in the test, in order."""
    calls = []
    real_map = threads.ChunkMap.__call__

    def recording(self, fn, chunks):
        calls.append((self.workers, threads._blas_controller().threads()))
        return real_map(self, fn, chunks)

    monkeypatch.setattr(threads.ChunkMap, "__call__", recording)
    return calls


def test_chunks_run_on_two_threads_in_order_and_blas_gets_its_threads_back():
    seen = []

    def square(c):
        seen.append(threading.get_ident())
        threading.Event().wait(0.01)  # long enough for the second worker to take a chunk
        return c * c

    with threadpool_limits(2, user_api="blas"):
        with threads.chunk_runner() as map_chunks:
            assert threads._blas_controller().threads() == 1
            assert map_chunks(square, list(range(8))) == [c * c for c in range(8)]
        assert threads._blas_controller().threads() == 2
    assert len(set(seen)) == 2 and threading.get_ident() not in seen


def test_chunks_run_in_the_callers_thread_with_one_blas_thread_or_inside_a_chunk():
    def where(c):
        return threading.get_ident()

    def nested(c):
        with threads.chunk_runner() as inner:
            return set(inner(where, [0, 1]))

    with threadpool_limits(1, user_api="blas"):
        with threads.chunk_runner() as map_chunks:
            assert set(map_chunks(where, [0, 1, 2])) == {threading.get_ident()}
    with threadpool_limits(2, user_api="blas"):
        with threads.chunk_runner() as outer, threads.chunk_runner() as same:
            assert same is outer
            ids = outer(nested, [0, 1])
    assert all(len(i) == 1 for i in ids)  # a runner opened in a worker runs its chunks there


def test_an_exception_in_a_chunk_reaches_the_caller_and_frees_the_pool():
    def fail_on_three(c):
        if c == 3:
            raise ValueError("chunk 3")
        return c

    with threadpool_limits(2, user_api="blas"):
        with pytest.raises(ValueError, match="chunk 3"):
            with threads.chunk_runner() as map_chunks:
                map_chunks(fail_on_three, list(range(6)))
        assert threads._blas_controller().threads() == 2
        with threads.chunk_runner() as map_chunks:
            assert map_chunks(lambda c: c, [1, 2]) == [1, 2]


@pytest.mark.parametrize("m, padding", [(2, 1), (4, 0), (4, 2)])
def test_winograd_on_parallel_chunks_equals_winograd_chunk_after_chunk(monkeypatch, map_calls,
                                                                       m, padding):
    """Small chunks (a few images each) so that the batch makes several, and every layer
    counted large enough (SMALL_LAYER_MACS = 0) for its chunks to run side by side."""
    monkeypatch.setattr(winograd, "CHUNK_ELEMENTS", 4000)
    monkeypatch.setattr(winograd, "SMALL_LAYER_MACS", 0)
    rng = np.random.default_rng(m + padding)
    x, w = rng.standard_normal((7, 3, 9, 10)), rng.standard_normal((5, 3, 3, 3))
    b = rng.standard_normal(5)
    results = {}
    for count in (1, 2):
        with threadpool_limits(count, user_api="blas"):
            out, cache = winograd.winograd_forward(x, w, b, padding, m=m)
            dout = np.random.default_rng(1).standard_normal(out.shape)
            results[count] = (out, *winograd.winograd_backward(dout, cache))
    assert len(cache.chunks) == len(cache.v) >= 3
    assert {workers for workers, _ in map_calls} == {1, 2}
    for serial, parallel in zip(results[1], results[2]):
        np.testing.assert_allclose(parallel, serial, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_runs_chunks_with_a_pool_of_its_own():
    """Threads do not survive fork: the child must not queue work on its parent's pool."""
    import multiprocessing

    with threadpool_limits(2, user_api="blas"):
        with threads.chunk_runner() as map_chunks:  # the parent's pool exists
            assert map_chunks(abs, [-1, -2]) == [1, 2]
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply_async(_chunks_in_child).get(timeout=60) == [1, 4, 9]


def _chunks_in_child():
    with threadpool_limits(2, user_api="blas"):
        with threads.chunk_runner() as map_chunks:
            return map_chunks(lambda c: c * c, [1, 2, 3])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_winograd_chunks_cover_the_batch_in_a_multiple_of_the_workers(monkeypatch, workers):
    """Chunks tile the images in order, none larger than CHUNK_ELEMENTS allows, and their
    number is a multiple of the workers unless there are fewer images."""
    monkeypatch.setattr(winograd, "CHUNK_ELEMENTS", 5 * 36 * (2 * 3 + 4) * 9)  # 5 images
    for n in (1, 2, 5, 9, 11, 64):
        grid = winograd.tile_grid((n, 3, 12, 12), (1, 1), 4)
        chunks = winograd._chunks(grid, 4, workers)
        assert [c.start for c in chunks] == [0] + [c.stop for c in chunks[:-1]]
        assert chunks[-1].stop == n and max(c.stop - c.start for c in chunks) <= 5
        assert len(chunks) % workers == 0 or len(chunks) == n


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("chunk_elements", [1, 3000, 1 << 21])
def test_im2col_on_parallel_chunks_equals_im2col_chunk_after_chunk(monkeypatch, map_calls, layout,
                                                                   chunk_elements):
    """With every layer counted large (SMALL_LAYER_MACS = 0), the im2col chunks run on two
    threads; out, dx, dw and db equal those of the chunks in turn (float64, 1e-12), for
    chunks of one image, of a few, and one chunk (split in two for the two workers)."""
    monkeypatch.setattr(conv, "SMALL_LAYER_MACS", 0)
    monkeypatch.setattr(conv, "CHUNK_ELEMENTS", chunk_elements)
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((7, 3, 9, 8)), rng.standard_normal((5, 3, 3, 2)), np.ones(5)
    dout = rng.standard_normal((7, 5, 9, 9))
    results = {}
    for count in (1, 2):
        with threadpool_limits(count, user_api="blas"):
            out, cache = conv.conv2d_forward(x, w, b, 1, 1, layout=layout)
            results[count] = (out, *conv.conv2d_backward(dout, cache))
    assert {workers for workers, _ in map_calls} == {1, 2}
    for serial, parallel in zip(*results.values()):
        np.testing.assert_allclose(parallel, serial, rtol=1e-12, atol=1e-12)


def test_small_layers_and_batch_last_keep_their_chunks_on_one_thread(monkeypatch, map_calls):
    """Below SMALL_LAYER_MACS, and in batch-last whatever the size (its bands add into one
    dx_pad), the im2col chunks run in the caller's thread, with BLAS's threads untouched."""
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    with threadpool_limits(2, user_api="blas"):
        conv.conv2d_backward(np.ones((4, 4, 6, 6)), conv.conv2d_forward(x, w)[1])
        monkeypatch.setattr(conv, "SMALL_LAYER_MACS", 0)
        conv.conv2d_forward(x, w, layout="batch_last")
    assert map_calls == [(1, 2), (1, 2), (1, 2)]


@pytest.mark.parametrize("units, chunk, workers", [(64, 22, 2), (64, 22, 1), (7, 3, 2),
                                                   (3, 1, 4), (5, 64, 2), (1, 8, 2)])
def test_im2col_chunks_cover_the_batch_in_a_multiple_of_the_workers(units, chunk, workers):
    """The chunks tile the images in order, at most ``chunk`` each, sizes within one of each
    other, as many as a multiple of the workers where there are enough images."""
    g = conv.Geometry((units, 2, 5, 5), (3, 3), (3, 3), (1, 1), (0, 0), (1, 1),
                      "channels_first")
    chunks = conv._Buffers(g, np.float64, chunk, workers).chunks
    assert chunks[0].start == 0 and chunks[-1].stop == units
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
    sizes = [s.stop - s.start for s in chunks]
    assert max(sizes) <= chunk and max(sizes) - min(sizes) <= 1
    assert len(chunks) % workers == 0 or len(chunks) == units


def test_a_small_winograd_layer_runs_its_chunks_in_turn_with_one_blas_thread(map_calls):
    """Below SMALL_LAYER_MACS of GEMM work the chunks stay in the caller's thread, and BLAS
    runs at one thread meanwhile (its second only slowed such layers down)."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((2, 3, 3, 3))
    with threadpool_limits(2, user_api="blas"):
        out, cache = winograd.winograd_forward(x, w, None, 1, m=2)
        winograd.winograd_backward(np.ones(out.shape), cache)
        assert threads._blas_controller().threads() == 2
    assert map_calls and all(call == (1, 1) for call in map_calls)

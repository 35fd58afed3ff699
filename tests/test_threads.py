"""BLAS threads chosen per workload: one for the digits-sized models (a second thread only
spins), the library's default for large layers; a count the user set wins; ``nnprune bench
demo`` alternates 1 and 2 threads and reports both medians."""
import argparse

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nnprune import models, threads
from nnprune.experiment.demo import FULL, QUICK

pytestmark = pytest.mark.train


@pytest.fixture
def free_blas(monkeypatch):
    """No thread count set by the environment (as for a user who set none)."""
    for name in threads.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("spec", FULL.models + QUICK.models, ids=lambda s: s.name)
def test_every_demo_model_gets_one_thread(spec):
    model = models.build_model(spec.name, in_channels=1, num_classes=10, input_size=8)
    assert threads.threads_for(model, (1, 8, 8), spec.batch_size) == 1


def test_a_large_layer_keeps_the_default():
    model = models.vgg16(width=0.5)
    macs = threads.largest_layer_macs(model, (3, 32, 32), 64)
    assert macs >= threads.SMALL_LAYER_MACS
    assert threads.threads_for(model, (3, 32, 32), 64) is None


def test_blas_threads_sets_and_restores_the_count(free_blas):
    before = threads.blas_thread_counts()
    with threads.blas_threads(1):
        assert threads.blas_thread_counts() == [1] * len(before)
    assert threads.blas_thread_counts() == before


def test_a_count_the_user_set_wins(monkeypatch):
    with threads.fixed_blas_threads(2):
        pinned = threads.blas_thread_counts()
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
        with threads.blas_threads(1):
            assert threads.blas_thread_counts() == pinned
        monkeypatch.delenv("OPENBLAS_NUM_THREADS")
        with threads.blas_threads(1):  # inside fixed_blas_threads: unchanged too
            assert threads.blas_thread_counts() == pinned


def test_fit_model_trains_a_small_model_with_one_thread(free_blas, monkeypatch):
    from types import SimpleNamespace

    from nnprune.experiment import runs

    seen = []
    monkeypatch.setattr(runs.train, "fit",
                        lambda *args, **kwargs: seen.append(threads.blas_thread_counts()))
    data = SimpleNamespace(x_train=np.zeros((8, 1, 8, 8), np.float32),
                           y_train=np.zeros(8, np.int64), input_shape=(1, 8, 8))
    model = models.lenet_300_100(input_size=8)
    with threadpool_limits(limits=2, user_api="blas"):  # the default on two cores
        runs.fit_model(model, data, epochs=1, lr=0.01)
    assert seen and all(count == 1 for count in seen[0])


def test_bench_demo_alternates_thread_counts_and_reports_medians(monkeypatch, capsys):
    from nnprune import bench
    from nnprune.bench import demo as bench_demo

    order = []

    def fake(threads_):
        order.append(threads_)
        return {1: 2.0, 2: 5.0}[threads_] + 0.1 * len(order)
    monkeypatch.setattr(bench_demo, "time_demo", fake)
    args = argparse.Namespace(what="demo", repeat=3, json="-", no_torch=True)
    assert bench.run(args) == 0
    out, err = capsys.readouterr()
    assert order == [1, 2, 1, 2, 1, 2]
    result = json.loads(out)
    assert result["median_seconds"] == {"1": pytest.approx(2.3), "2": pytest.approx(5.4)}
    assert result["ratio_2_to_1"] == pytest.approx(5.4 / 2.3)
    assert "load average" in err and ("LOADED" in err or "idle" in err)

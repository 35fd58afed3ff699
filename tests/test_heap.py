"""Training keeps freed memory for the next step: after the first backward, a training step
touches no fresh pages (glibc), and the user's own malloc settings are left alone."""
import resource
import sys

import numpy as np
import pytest

from nnprune import Tensor, functional as F, heap, models
from nnprune.optim import SGD

pytestmark = pytest.mark.train


def _faults_per_step(step, steps=5):
    for _ in range(3):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


@pytest.mark.skipif(not sys.platform.startswith("linux") or heap.user_malloc_settings(),
                    reason="glibc's mallopt, with no MALLOC_* settings in the environment")
def test_a_training_step_touches_no_fresh_pages_after_the_first_backward():
    """LeNet-5 at batch 64 frees ~9 MB of graph per step; with glibc's defaults the heap is
    trimmed and about 2,200 pages are faulted in again every step."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    model = models.lenet5(seed=0)
    optimizer = SGD(model.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(Tensor(x)), y).backward()
        optimizer.step()

    step()
    assert heap.keep_freed_memory()
    assert _faults_per_step(step) < 50


@pytest.mark.parametrize("environ, chosen", [
    ({"PATH": "/bin"}, False),
    ({"MALLOC_TRIM_THRESHOLD_": "1000000"}, True),
    ({"MALLOC_ARENA_MAX": "2"}, False),  # the number of arenas, not a threshold
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}, True),
])
def test_the_users_malloc_settings_win(monkeypatch, environ, chosen):
    """With MALLOC_*_ or GLIBC_TUNABLES set, keep_freed_memory changes nothing."""
    monkeypatch.setattr(heap.os, "environ", environ)
    monkeypatch.setattr(heap, "_done", [])
    assert heap.user_malloc_settings() is chosen
    if chosen:
        assert heap.keep_freed_memory() is False

"""Shared test configuration: hypothesis profiles chosen by HYPOTHESIS_PROFILE.

``dev`` (the default) is quick for a student editing code; ``ci`` draws more examples, the
same ones every run (derandomized); ``explore`` draws new ones from the seed pytest prints
(``--hypothesis-seed=N`` replays a run; ``HYPOTHESIS_EXAMPLES`` sets how many per test).
"""
import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=80,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

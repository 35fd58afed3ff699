"""``python -m nnprune``: the same as the ``nnprune`` command."""
from nnprune.cli import main

raise SystemExit(main())

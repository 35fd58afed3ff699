"""The machine a benchmark runs on (BLAS, CPUs, load average), and where its figures go."""
from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Callable

from nnprune import heap
from nnprune.threads import fixed_blas_threads


def blas_info() -> str:
    """The BLAS NumPy calls, as threadpoolctl (a dependency of nnprune) reports it."""
    from threadpoolctl import threadpool_info

    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')} "
                     f"kernel, {i.get('num_threads')} threads)" for i in libs) or "none found"


def machine() -> dict[str, Any]:
    """The BLAS, OPENBLAS_CORETYPE, the number of CPUs and the load average, now."""
    return {"blas": blas_info(), "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
            "freed_memory_kept": heap.freed_memory_kept()}


def blas_line(result: dict[str, Any]) -> str:
    """'BLAS: ...; OPENBLAS_CORETYPE=...; malloc: ...' from a ``machine()`` dict."""
    malloc = ("freed memory kept (heap.keep_freed_memory)" if result["freed_memory_kept"]
              else "glibc's defaults")
    return (f"BLAS: {result['blas']}; OPENBLAS_CORETYPE={result['OPENBLAS_CORETYPE'] or '(unset)'}"
            f"; malloc: {malloc}")


def blas_threads(threads: int | None) -> Any:
    """A context that runs the BLAS on exactly ``threads`` threads (nothing if None)."""
    return contextlib.nullcontext() if threads is None else fixed_blas_threads(threads)


def import_torch(skip: bool, threads: int | None = None) -> Any:
    """PyTorch on ``threads`` threads (default one per CPU), or None if skipped or absent."""
    if skip:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch


def printer(json_to: str | None) -> Callable[..., None]:
    """``say(line)``: print a line of the table, to standard error if the JSON goes to
    standard output (``json_to == '-'``), else to standard output; flushed at once."""
    out = sys.stderr if json_to == "-" else sys.stdout

    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    return say


def write_json(where: str | None, result: dict[str, Any]) -> None:
    """``result`` as JSON to standard output ('-') or to the file ``where`` (None: nowhere)."""
    if where == "-":
        print(json.dumps(result, indent=2))
    elif where:
        from nnprune.files import atomic_write_text

        atomic_write_text(where, json.dumps(result, indent=2))

"""What the commands read: datasets, saved models, built-in models, input shapes."""
from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from nnprune.models import MODELS

DEFAULT_INPUT = {"lenet_300_100": (1, 28, 28), "lenet5": (1, 28, 28),
                 "simple_cnn": (3, 32, 32), "vgg16": (3, 32, 32)}


def load_data(name: str, *, data_dir: str | None = None, download: bool = False,
              split: str = "official", seed: int = 0) -> Any:
    """The dataset ``name`` as the commands load it (digits need no files)."""
    from nnprune import data

    if name == "digits":
        return data.digits(seed=seed)
    if name in ("mnist", "fashion_mnist"):
        return data.load_dataset(name, root=data_dir, split=split, seed=seed, download=download)
    return data.load_dataset(name, root=data_dir, download=download)


def input_shape(model_name: str | None, given: Sequence[int] | None,
                metadata: dict[str, Any]) -> tuple[int, int, int]:
    """(C, H, W) of one image: --input-shape, else the saved model's, else the model's usual."""
    if given:
        return tuple(given)  # type: ignore[return-value]
    if metadata.get("input_shape"):
        return tuple(int(d) for d in metadata["input_shape"])  # type: ignore[return-value]
    if model_name in DEFAULT_INPUT:
        return DEFAULT_INPUT[model_name]
    raise ValueError("the input shape is unknown: pass --input-shape C H W")


def build(name: str, data: Any, width: float, seed: int) -> Any:
    """A fresh built-in model sized for ``data``'s images and classes."""
    from nnprune.models import build_model

    c, h, w = data.input_shape
    return build_model(name, in_channels=c, num_classes=data.num_classes, input_size=(h, w),
                       width=width, seed=seed)


def saved_model(path: str, args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """(model, metadata, dataset) for a trained file; the split seed, the split and the data
    folder are the ones it was trained with unless another dataset or --data-dir is given."""
    from nnprune import io

    model, metadata = io.load(path)
    name, seed, split = args.data or metadata.get("dataset") or "digits", args.seed, args.split
    data_dir = args.data_dir
    if name == metadata.get("dataset"):  # the same split the model was trained on
        seed, split = metadata.get("data_seed", seed), metadata.get("data_split", split)
        data_dir = data_dir or metadata.get("data_dir")
    data = load_data(name, data_dir=data_dir, download=args.download, split=split,
                     seed=int(seed))
    return model, metadata, data


def fresh_model(metadata: dict[str, Any]) -> Any:
    """The saved model's architecture with the initial weights it was trained from (built
    again from its name, width and training seed), for the init and lottery schedules."""
    from nnprune.models import build_model

    needed = ("model", "input_shape", "num_classes", "train")
    if any(key not in metadata for key in needed) or metadata["model"] not in MODELS:
        raise ValueError("the init and lottery schedules start from the initial weights, which "
                         "can be rebuilt only for a model saved by 'nnprune train'")
    c, h, w = metadata["input_shape"]
    return build_model(metadata["model"], in_channels=c, num_classes=metadata["num_classes"],
                       input_size=(h, w), width=metadata.get("width", 1.0),
                       seed=metadata["train"]["seed"])


def check_converged(history: Any, lr: float) -> None:
    """A loss that became NaN or infinite means the run diverged: say so, save nothing."""
    for entry in history.epochs:
        if not math.isfinite(entry["loss"]):
            raise ValueError(f"training diverged: the loss is {entry['loss']} in epoch "
                             f"{entry['epoch']}; try a smaller --lr (it was {lr})")

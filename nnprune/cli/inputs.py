"""What the commands read: datasets, saved models, built-in models, input shapes."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from nnprune.models import MODELS

DEFAULT_INPUT = {"lenet_300_100": (1, 28, 28), "lenet5": (1, 28, 28),
                 "simple_cnn": (3, 32, 32), "vgg16": (3, 32, 32)}


def load_data(name: str, *, data_dir: str | None = None, download: bool = False,
              split: str = "official", seed: int = 0, split_indices: str | None = None,
              standardize: bool | None = None, stratify: bool | None = None,
              verify: bool = False) -> Any:
    """The dataset ``name`` (or an .npz of arrays) as the commands load it; ``split_indices``
    an .npz of train/test indices; None options mean the defaults (standardised, stratified)."""
    from nnprune import data

    standardize, stratify = standardize is not False, stratify is not False
    index = {} if split_indices is None else dict(zip(
        ("train_index", "test_index"), data.load_split_indices(split_indices)))
    if name.endswith(".npz"):
        return data.load_arrays(name, seed=seed, standardize=standardize, stratify=stratify,
                                **index)
    if index or not stratify:
        if name != "digits" and split != "t10k":
            raise ValueError(f"your own split of {name} (--split-indices, --no-stratify) is a "
                             f"split of the t10k files: add --split t10k")
        x, y, scale = data.split_pool(name, data_dir, download=download)
        return data.from_arrays(x, y, seed=seed, stratify=stratify, standardize=standardize,
                                scale=scale, name=name, **index)
    if name == "digits":
        return data.digits(seed=seed, standardize=standardize)
    mnist_options = {} if name == "cifar10" else {"split": split, "seed": seed}
    return data.load_dataset(name, root=data_dir, download=download, standardize=standardize,
                             verify=verify, **mnist_options)


def data_from(args: argparse.Namespace, name: str, seed: int) -> Any:
    """``load_data`` of ``name`` with the options of ``add_data_options`` in ``args``."""
    return load_data(name, data_dir=args.data_dir, download=args.download, split=args.split,
                     seed=seed, split_indices=args.split_indices,
                     standardize=args.standardize, stratify=args.stratify, verify=args.verify)


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """How the data were chosen, for a saved model's metadata (so prune and sweep load the
    same split): the .npz of arrays and of split indices as absolute paths, the flags."""
    from pathlib import Path

    def absolute(path: str | None) -> str | None:
        return None if path is None else str(Path(path).resolve())

    return {"data_file": absolute(args.data) if args.data.endswith(".npz") else None,
            "split_indices": absolute(args.split_indices),
            "standardize": args.standardize is not False, "stratify": args.stratify is not False}


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


def build(name: str, shape: Sequence[int], num_classes: int, width: float,
          seed: int = 0) -> Any:
    """A fresh built-in model for images of ``shape`` (C, H, W) and ``num_classes``."""
    from nnprune.models import build_model

    c, h, w = shape
    return build_model(name, in_channels=c, num_classes=num_classes, input_size=(h, w),
                       width=width, seed=seed)


def saved_model(path: str, args: argparse.Namespace) -> tuple[Any, dict[str, Any], Any]:
    """(model, metadata, dataset) for a trained file, the data split and scaled as in its
    training unless another dataset or option is given."""
    model, metadata = load_model(path)
    name = (args.data or metadata.get("data_file") or metadata.get("dataset") or "digits")
    seed, split, data_dir = args.seed, args.split, args.data_dir
    indices, standardize, stratify = args.split_indices, args.standardize, args.stratify
    if name in (metadata.get("dataset"), metadata.get("data_file")):  # the training data
        seed, split = metadata.get("data_seed", seed), metadata.get("data_split", split)
        # not the file's data_dir: a file does not choose which folder is read or created
        # (with --download); --data-dir or the default cache does
        indices = indices or metadata.get("split_indices")
        standardize = metadata.get("standardize") if standardize is None else standardize
        stratify = metadata.get("stratify") if stratify is None else stratify
    data = load_data(name, data_dir=data_dir, download=args.download, split=split,
                     seed=int(seed), split_indices=indices, standardize=standardize,
                     stratify=stratify, verify=args.verify)
    return model, metadata, data


def load_model(path: str) -> tuple[Any, dict[str, Any]]:
    """(model, metadata) of a saved file, the metadata fields the commands read checked."""
    from nnprune import io
    from nnprune.metadata import check_metadata

    model, metadata = io.load(path)
    return model, check_metadata(metadata, path)


def fresh_model(metadata: dict[str, Any]) -> Any:
    """The saved model's architecture with the initial weights it was trained from (built
    again from its name, width and training seed), for the init and lottery schedules."""
    needed = ("model", "input_shape", "num_classes", "train")
    if any(key not in metadata for key in needed) or metadata["model"] not in MODELS:
        raise ValueError("the init and lottery schedules start from the initial weights, which "
                         "can be rebuilt only for a model saved by 'nnprune train'")
    return build(metadata["model"], metadata["input_shape"], metadata["num_classes"],
                 metadata.get("width", 1.0), metadata["train"]["seed"])


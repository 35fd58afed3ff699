"""``nnprune export``: a saved model out as ONNX and/or as a PyTorch-named state dict."""
from __future__ import annotations

import argparse
import json

from nnprune.cli.arguments import UsageError, positive_int
from nnprune.cli.inputs import input_shape, load_model
from nnprune.cli.outputs import check_outputs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a saved model as ONNX or a PyTorch state dict",
                       description="Write a saved model (dense, masked or shrunk) as an "
                                   "ONNX graph (needs the onnx package: pip install "
                                   "\"nnprune[onnx]\"), and/or as an .npz of arrays under "
                                   "PyTorch's state_dict names and layouts with its "
                                   "architecture spec beside it (FILE.spec.json).",
                       examples=("nnprune export lenet5.npz --onnx lenet5.onnx",
                                 "nnprune export pruned.npz --state-dict pruned-torch.npz "
                                 "--masks torch"))
    p.add_argument("model", metavar="MODEL.npz", help="a model saved by nnprune")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write the ONNX graph here")
    p.add_argument("--state-dict", metavar="OUT.npz",
                   help="write PyTorch-named arrays here, and the spec to OUT.spec.json")
    p.add_argument("--masks", choices=("apply", "torch"), default="apply",
                   help="state dict: masks applied to the weights, or as torch.nn.utils.prune "
                        "stores them (weight_orig, weight_mask) (default: %(default)s)")
    p.add_argument("--input-shape", type=positive_int, nargs=3, metavar=("C", "H", "W"),
                   help="ONNX: one image's shape (default: the file's, or the model's usual)")
    p.add_argument("--opset", type=positive_int, default=17,
                   help="ONNX opset, 13 or later (default: %(default)s)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from nnprune.files import atomic_open, atomic_write_text
    from nnprune.interop import export_state, to_onnx

    if args.onnx is None and args.state_dict is None:
        raise UsageError("give --onnx OUT.onnx and/or --state-dict OUT.npz")
    spec_path = (None if args.state_dict is None
                 else args.state_dict.removesuffix(".npz") + ".spec.json")
    check_outputs({"MODEL.npz": args.model},
                  {"--onnx": args.onnx, "--state-dict": args.state_dict,
                   "--state-dict (its spec)": spec_path})
    model, metadata = load_model(args.model)
    if args.onnx is not None:
        shape = input_shape(metadata.get("model"), args.input_shape, metadata)
        try:
            to_onnx(model, shape, args.onnx, opset=args.opset)
        except ImportError as err:  # the optional onnx package is missing: say how to get it
            raise ValueError(str(err)) from None
        print(f"wrote {args.onnx} (input (N, {', '.join(map(str, shape))}))")
    if args.state_dict is not None:
        state, spec = export_state(model, masks=args.masks)
        with atomic_open(args.state_dict, "wb") as f:
            np.savez(f, **state)
        atomic_write_text(spec_path, json.dumps(spec, indent=1))
        print(f"wrote {args.state_dict} ({len(state)} arrays) and {spec_path}")
    return 0

"""Other frameworks' weights in and out, with no framework imported.

- ``load_state(model, state)``: a PyTorch ``state_dict`` (as NumPy), Keras weights or any dict
  of arrays into an nnprune model, by name, key map, shape or order, masks included; returns a
  ``LoadReport`` of what went where (``state_in.py``; its source and model units in
  ``state_units.py``, their pairing in ``state_pairing.py``);
- ``export_state(model)``: the arrays under PyTorch's names and layouts and the architecture
  spec; ``torch_module(spec, torch, state)`` builds the equivalent torch model
  (``state_out.py``);
- ``to_onnx(model, input_shape, path)`` and ``from_onnx(path)``: ONNX graphs out and in
  (``onnx_export.py``, ``onnx_import.py``; the ``onnx`` package is an optional extra).
"""
from nnprune.interop.state_in import LoadReport, load_state
from nnprune.interop.state_out import export_state, torch_module
from nnprune.interop.onnx_export import to_onnx
from nnprune.interop.onnx_import import from_onnx

__all__ = ["LoadReport", "load_state", "export_state", "torch_module", "to_onnx", "from_onnx"]

"""Other frameworks' weights in and out (``load_state``, ``export_state``, ``torch_module``)
and ONNX graphs out and in (``to_onnx``, ``from_onnx``; ``onnx`` is an optional extra), with
no framework imported."""
from nnprune.interop.state import LoadReport, export_state, load_state, torch_module
from nnprune.interop.onnx_export import to_onnx
from nnprune.interop.onnx_import import from_onnx

__all__ = ["LoadReport", "load_state", "export_state", "torch_module", "to_onnx", "from_onnx"]

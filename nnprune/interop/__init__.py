"""Other frameworks' weights in and out (``load_state``, ``export_state``, ``torch_module``)
and ONNX graphs out and in (``to_onnx``, ``from_onnx``; ``onnx`` is an optional extra), with
no framework imported."""
from nnprune.interop.state_in import LoadReport, load_state
from nnprune.interop.state_out import export_state, torch_module
from nnprune.interop.onnx_export import to_onnx
from nnprune.interop.onnx_import import from_onnx

__all__ = ["LoadReport", "load_state", "export_state", "torch_module", "to_onnx", "from_onnx"]

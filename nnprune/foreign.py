"""The door for other frameworks' objects: a PyTorch, TensorFlow/Keras or JAX module or tensor
handed to nnprune is refused with a TypeError that says what to pass instead.

Without this a ``torch.nn.Module`` passed to ``prune_model`` ends deep inside, in an
``AttributeError`` about a ``mask``. Nothing here imports a framework.

>>> class Tensor:  # stands in for torch.Tensor
...     __module__ = "torch"
>>> reject_foreign(Tensor(), "x", "array")
Traceback (most recent call last):
...
TypeError: x is a PyTorch tensor (torch.Tensor), not a NumPy array; pass x.detach().cpu().numpy()
"""
from __future__ import annotations

from typing import Any

# top-level module of the type -> the framework's name
FRAMEWORKS = {"torch": "PyTorch", "tensorflow": "TensorFlow", "keras": "Keras",
              "tf_keras": "Keras", "jax": "JAX", "jaxlib": "JAX", "flax": "JAX"}

_TO_ARRAY = {"PyTorch": "{name}.detach().cpu().numpy()", "TensorFlow": "{name}.numpy()",
             "Keras": "keras.ops.convert_to_numpy({name})", "JAX": "np.asarray({name})"}
_WEIGHTS = {"PyTorch": "{{k: v.detach().cpu().numpy() for k, v in {name}.state_dict().items()}}",
            "TensorFlow": "{name}.get_weights()", "Keras": "{name}.get_weights()",
            "JAX": "the parameter pytree's leaves as NumPy arrays"}


def framework_of(obj: Any) -> tuple[str, str] | None:
    """(framework, 'module.Class') when ``obj``'s type or a base class comes from PyTorch,
    TensorFlow, Keras or JAX; None for everything else (nnprune's and NumPy's own objects)."""
    for cls in type(obj).__mro__:
        top = (cls.__module__ or "").split(".")[0]
        if top in FRAMEWORKS:
            return FRAMEWORKS[top], f"{cls.__module__}.{cls.__qualname__}"
    return None


def reject_foreign(obj: Any, name: str, expected: str) -> None:
    """Raise a TypeError saying what to pass instead when ``obj`` belongs to another framework.

    ``expected``: "model" (an nnprune model) or "array" (a NumPy array). Returns None for
    anything else, which the caller then checks as usual.
    """
    found = framework_of(obj)
    if found is None:
        return
    framework, type_name = found
    module = any(callable(getattr(obj, attr, None))  # a layer or model: it holds weights
                 for attr in ("state_dict", "get_weights", "named_parameters"))
    kind = "module" if module else "tensor"
    what = f"{name} is a {framework} {kind} ({type_name})"
    if kind == "tensor" and expected == "array":
        raise TypeError(f"{what}, not a NumPy array; pass {_TO_ARRAY[framework].format(name=name)}")
    if kind == "tensor":
        raise TypeError(f"{what}, not an nnprune model; pass an nnprune.nn.Module (see "
                        f"nnprune.models), or the tensor as a NumPy array, "
                        f"{_TO_ARRAY[framework].format(name=name)}, where an array is wanted")
    weights = _WEIGHTS[framework].format(name=name)
    layout = ", layout='keras'" if framework in ("Keras", "TensorFlow") else ""
    raise TypeError(f"{what}, not an nnprune {expected}. nnprune works on NumPy arrays: prune "
                    f"its weights as arrays (weights = {weights}; nnprune.prune.compute_scores "
                    f"and global_topk_masks return masks to hand back), or build the same "
                    f"architecture in nnprune (nnprune.models, nnprune.nn.Sequential) and load "
                    f"them with nnprune.interop.load_state(model, weights{layout})")

"""The door for other frameworks' objects: a PyTorch/Keras/JAX module or tensor where nnprune
expects its model or an array is a TypeError that says what to pass instead. Stand-ins are
recognised by their module names as the real classes are; the real ones where installed."""
import numpy as np
import pytest

from nnprune import nn, prune
from nnprune.autograd import Tensor
from nnprune.count import count
from nnprune.foreign import framework_of, reject_foreign
from nnprune.interop import load_state
from nnprune.io import save
from nnprune.prune.surgery import shrink
from nnprune.train import evaluate, fit, predict

pytestmark = pytest.mark.interop


def stand_in(module, name, weights=False):
    """An instance of a class called ``name`` defined in ``module`` (e.g. "torch.nn")."""
    body = {"__module__": module}
    if weights:
        body["state_dict"] = lambda self: {}
    return type(name, (), body)()


TORCH_MODULE = stand_in("torch.nn.modules.linear", "Linear", weights=True)
TORCH_TENSOR = stand_in("torch", "Tensor")
KERAS_MODEL = stand_in("keras.src.models.sequential", "Sequential", weights=True)
JAX_ARRAY = stand_in("jaxlib.xla_extension", "ArrayImpl")


def user_subclass_of(base):
    """A user's own module class (defined in __main__) derived from a framework class."""
    return type("MyNet", (type(base),), {"__module__": "__main__"})()


MODEL_ENTRY_POINTS = {
    "prune_model": lambda m: prune.prune_model(m, "magnitude", 0.5),
    "attach_masks": lambda m: prune.attach_masks(m, {}),
    "count": lambda m: count(m, (1, 8, 8)),
    "save": lambda m: save("unused.npz", m),
    "fit": lambda m: fit(m, (np.zeros((2, 3)), np.zeros(2, int)), None, 1),
    "evaluate": lambda m: evaluate(m, (np.zeros((2, 3)), np.zeros(2, int))),
    "predict": lambda m: predict(m, np.zeros((2, 3))),
    "shrink": lambda m: shrink(m, (1, 8, 8)),
    "load_state": lambda m: load_state(m, {}),
    "Sequential": lambda m: nn.Sequential(m),
}


@pytest.mark.parametrize("entry", sorted(MODEL_ENTRY_POINTS))
@pytest.mark.parametrize("module, framework, hint", [
    (TORCH_MODULE, "PyTorch", r"state_dict\(\)"), (user_subclass_of(TORCH_MODULE), "PyTorch",
                                                   "load_state"),
    (KERAS_MODEL, "Keras", r"get_weights\(\).*layout='keras'"),
])
def test_a_foreign_module_where_a_model_goes_says_what_to_pass(entry, module, framework, hint):
    with pytest.raises(TypeError, match=rf"is a {framework} module .*not an nnprune model.*{hint}"):
        MODEL_ENTRY_POINTS[entry](module)


ARRAY_ENTRY_POINTS = {
    "topk_mask": lambda x: prune.topk_mask(x, 0.5),
    "compute_scores": lambda x: prune.compute_scores("magnitude", {"fc.weight": x}),
    "Tensor": lambda x: Tensor(x),
    "model input": lambda x: nn.Linear(2, 2, rng=0)(x),
    "predict": lambda x: predict(nn.Sequential(nn.Linear(2, 2, rng=0)), x),
    "evaluate": lambda x: evaluate(nn.Sequential(nn.Linear(2, 2, rng=0)), (x, np.zeros(2, int))),
    "load_state": lambda x: load_state(nn.Sequential(nn.Linear(2, 2, rng=0)), {"0.weight": x}),
}


@pytest.mark.parametrize("entry", sorted(ARRAY_ENTRY_POINTS))
@pytest.mark.parametrize("tensor, hint", [(TORCH_TENSOR, r"\.detach\(\)\.cpu\(\)\.numpy\(\)"),
                                          (JAX_ARRAY, r"np\.asarray\(")])
def test_a_foreign_tensor_where_an_array_goes_says_how_to_convert(entry, tensor, hint):
    with pytest.raises(TypeError, match=rf"is a (PyTorch|JAX) tensor .*not a NumPy array; pass .*{hint}"):
        ARRAY_ENTRY_POINTS[entry](tensor)


def test_nnprune_and_numpy_objects_pass_the_door():
    for obj in (np.zeros(3), 1.5, [1, 2], nn.Linear(2, 2, rng=0), Tensor(np.ones(2)), None):
        assert framework_of(obj) is None
        assert reject_foreign(obj, "x", "array") is None


def test_a_tensor_where_a_model_goes_is_named_as_a_tensor():
    with pytest.raises(TypeError, match="model is a PyTorch tensor .*not an nnprune model"):
        prune.prune_model(TORCH_TENSOR, "magnitude", 0.5)


def test_real_torch_objects_are_refused_with_the_advice():
    """With PyTorch installed: a real Linear and a real tensor, and the advice works."""
    torch = pytest.importorskip("torch")
    linear = torch.nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"PyTorch module \(torch.nn.modules.linear.Linear\)"):
        prune.prune_model(linear, "magnitude", 0.5)
    weight = linear.weight  # a Parameter that requires grad: np.asarray would fail on it
    with pytest.raises(TypeError, match=r"scores is a PyTorch tensor .*pass scores.detach"):
        prune.topk_mask(weight, 0.5)
    with pytest.raises(TypeError, match=r"data is a PyTorch tensor"):
        nn.Sequential(nn.Linear(3, 2, rng=0))(torch.ones(1, 3))
    weights = {k: v.detach().cpu().numpy() for k, v in linear.state_dict().items()}
    model = nn.Sequential(nn.Linear(3, 2, rng=0))
    load_state(model, weights)
    np.testing.assert_array_equal(model[0].weight.data, linear.weight.detach().numpy())

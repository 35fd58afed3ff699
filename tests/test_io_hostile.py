"""Hostile model files cost nothing: a file that lies about its size, its architecture or its
dtypes is refused with one ``ValueError`` line naming it, before anything big is allocated.

The crafted files: a spec that declares Linear(20000, 20000) or Linear(200000, 200000) over
small arrays, an array whose ``.npy`` header claims 10¹⁰ floats, a deflated archive that
unpacks to 100 MB, complex and string weights, a spec nested 900 deep. A subprocess loads
them under an address-space limit and reports its peak memory. A hypothesis test mutates a
valid file (bytes, JSON fields, array shapes, dtypes, headers) and asserts that loading
returns the same model or one the file describes, or raises the one-line ValueError, never
another exception, and within a memory bound (tracemalloc)."""
import io as bytes_io
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from nnprune import io, nn
from strategies import file_mutations

pytestmark = pytest.mark.io

MB = 2**20


def small_model():
    block = nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, rng=2), nn.BatchNorm2d(2)),
                        nn.Sequential(nn.Conv2d(2, 2, 1, rng=3)))
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=0), nn.BatchNorm2d(2), nn.ReLU(),
                          block, nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3, rng=1))
    model[6].weight.set_mask((np.arange(96).reshape(3, 32) % 3 > 0).astype(np.float32))
    return model


def test_every_kind_of_layer_loads_back_exactly(tmp_path):
    """The checked loader rebuilds convs, BatchNorm buffers, a Residual block with a
    projection shortcut and masks exactly."""
    model = small_model()
    io.save(tmp_path / "m.npz", model)
    loaded, _ = io.load(tmp_path / "m.npz")
    for (name, a), (_, b) in zip(sorted(model.state_dict().items()),
                                 sorted(loaded.state_dict().items())):
        np.testing.assert_array_equal(a, b, err_msg=name)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval()(x).data, model.eval()(x).data)
    assert loaded[6].weight.mask is not None


def npy_bytes(array=None, header=None):
    """The .npy encoding of ``array``, or a bare header dict followed by 16 bytes."""
    buffer = bytes_io.BytesIO()
    if header is None:
        np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    else:
        np.lib.format.write_array_header_1_0(buffer, header)
        buffer.write(b"\0" * 16)
    return buffer.getvalue()


def write_npz(path, members, compress=False):
    """An .npz of ``members`` = {key: array or .npy bytes}."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for key, value in members.items():
            archive.writestr(f"{key}.npy", value if isinstance(value, bytes) else npy_bytes(value))
    return path


def entries(spec, arrays=None, metadata=None):
    """The entries of a model file with this ``spec`` (a dict) and ``arrays``."""
    return {"format": np.array("nnprune.model"), "version": np.array(1),
            "spec": np.array(json.dumps(spec)),
            "metadata": np.array(json.dumps(metadata or {})), **(arrays or {})}


def deflated_zeros(path, n):
    """A model file of Linear(n, n) whose zero weights are deflated (streamed, 1 MB at a time)."""
    write_npz(path, entries(linear_spec(n), {"param/0.bias": np.zeros(n, np.float32)}),
              compress=True)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("param/0.weight.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (n, n)})
            chunk = bytes(MB)
            for start in range(0, 4 * n * n, MB):
                member.write(chunk[:min(MB, 4 * n * n - start)])
    return path


def linear_spec(n):
    return {"type": "Sequential", "layers": [{"type": "Linear", "in_features": n,
                                              "out_features": n, "bias": True,
                                              "dtype": "float32"}]}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    return hostile_files(tmp_path_factory.mktemp("hostile"))


def hostile_files(folder):
    """{name: path} of crafted files, each under 1 MB."""
    small = {"param/0.weight": np.zeros((200, 240), np.float32),
             "param/0.bias": np.zeros(200, np.float32)}
    deep = '{"type": "Sequential", "layers": [' * 900 + "]}" * 900  # too deep for json.dumps
    files = {
        "spec 20000^2": write_npz(folder / "a.npz", entries(linear_spec(20000), small)),
        "spec 200000^2": write_npz(folder / "b.npz", entries(linear_spec(200000), small)),
        "header 1e10 floats": write_npz(folder / "c.npz", entries(linear_spec(100000), {
            "param/0.weight": npy_bytes(header={"descr": "<f4", "fortran_order": False,
                                                "shape": (100000, 100000)}),
            "param/0.bias": np.zeros(100000, np.float32)})),
        "deflated 100 MB": deflated_zeros(folder / "d.npz", 5000),
        "complex weights": write_npz(folder / "e.npz", entries(linear_spec(4), {
            "param/0.weight": np.zeros((4, 4), np.complex64),
            "param/0.bias": np.zeros(4, np.float32)})),
        "string weights": write_npz(folder / "f.npz", entries(linear_spec(4), {
            "param/0.weight": np.full((4, 4), "abc"), "param/0.bias": np.zeros(4, np.float32)})),
        "spec 900 deep": write_npz(folder / "g.npz", {**entries({}), "spec": np.array(deep)}),
        "text 1e8 characters": write_npz(folder / "h.npz", {
            "format": np.array("nnprune.model"), "version": np.array(1),
            "spec": npy_bytes(header={"descr": "<U100000000", "fortran_order": False,
                                      "shape": ()})}),
    }
    for name, path in files.items():
        assert path.stat().st_size < MB, name
    return files


@pytest.mark.parametrize("name, fragment", [
    ("spec 20000^2", "spec declares"), ("spec 200000^2", "spec declares"),
    ("header 1e10 floats", "declares shape (100000, 100000)"),
    ("deflated 100 MB", "more than"), ("complex weights", "real floats"),
    ("string weights", "real floats"), ("spec 900 deep", "nested more than"),
    ("text 1e8 characters", "longer than"),
])
def test_a_hostile_file_is_refused_in_one_line(crafted, name, fragment):
    path = crafted[name]
    with pytest.raises(ValueError) as info:
        io.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and fragment in message


MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    from nnprune import io
    io.load(sys.argv[1])  # warm: every module imported, a valid file read once
    with open("/proc/self/status") as f:
        vm = [int(line.split()[1]) for line in f if line.startswith("VmSize:")][0] * 1024
    # a loader that allocated what the files claim would hit this limit, not the machine
    resource.setrlimit(resource.RLIMIT_AS, (vm + 512 * 2**20, resource.RLIM_INFINITY))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {}
    for path in sys.argv[2:]:
        start = time.perf_counter()
        try:
            io.load(path)
            outcome = "loaded"
        except ValueError:
            outcome = "ValueError"
        except BaseException as err:
            outcome = type(err).__name__
        report[path] = [outcome, time.perf_counter() - start]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"files": report, "rss_kb": peak - base}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_hostile_files_are_refused_in_bounded_memory(tmp_path, crafted):
    """Every crafted file is refused with ValueError, and all of them together raise the
    peak resident memory of a fresh process by less than 100 MB."""
    valid = tmp_path / "valid.npz"
    io.save(valid, small_model())
    files = crafted
    done = subprocess.run([sys.executable, "-c", MEASURE, str(valid), *map(str, files.values())],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    outcomes = {name: report["files"][str(path)][0] for name, path in files.items()}
    assert outcomes == {name: "ValueError" for name in files}
    assert report["rss_kb"] < 100 * 1024


# ---------------------------------------------------------------------- mutated files
def mutate(original, folder, mutation):
    """Write the file ``original`` changed by ``mutation`` (see strategies.file_mutations)."""
    data = original.read_bytes()
    path = folder / "mutated.npz"
    kind = mutation[0]
    if kind == "bytes":
        data = bytearray(data)
        for where, value in mutation[1]:
            data[int(where * len(data))] = value
        path.write_bytes(bytes(data))
        return path
    if kind == "truncate":
        path.write_bytes(data[:int(mutation[1] * len(data))])
        return path
    with np.load(original) as npz:
        arrays = {key: npz[key] for key in npz.files}
    members = dict(arrays)
    names = sorted(k for k in arrays if "/" in k)
    if kind == "spec":
        spec = json.loads(str(arrays["spec"]))
        layers = spec["layers"]
        layers[int(mutation[1] * len(layers))][mutation[2]] = mutation[3]
        members["spec"] = np.array(json.dumps(spec))
    elif kind == "metadata":
        metadata = json.loads(str(arrays["metadata"]))
        metadata[mutation[1]] = mutation[2]
        members["metadata"] = np.array(json.dumps(metadata))
    else:
        key = names[int(mutation[1] * len(names))]
        if kind == "shape":
            members[key] = np.zeros(mutation[2], np.float32)
        elif kind == "dtype":
            members[key] = np.zeros(arrays[key].shape, mutation[2])
        else:
            members[key] = npy_bytes(header={"descr": "<f4", "fortran_order": False,
                                             "shape": mutation[2]})
    return write_npz(path, members)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    path = tmp_path_factory.mktemp("mutations") / "model.npz"
    io.save(path, small_model(), {"accuracy": 0.5, "tags": ["a"]})
    return path


@settings(deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=file_mutations())
def test_a_mutated_file_loads_as_written_or_is_refused_in_one_line(original, tmp_path,
                                                                  mutation):
    """Loading a mutated file returns the original model (the change did not matter), a
    model whose state is the file's arrays (a valid edit), or raises one ValueError line;
    it never raises anything else and never allocates 100 MB."""
    path = mutate(original, tmp_path, mutation)
    tracemalloc.start()
    try:
        model, metadata = io.load(path)
    except ValueError as err:
        assert "\n" not in str(err) and str(path) in str(err), str(err)
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 100 * MB
    assert isinstance(metadata, dict)
    with np.load(path) as npz:
        stored = {key: npz[key] for key in npz.files}
    state = model.state_dict()
    assert {f"param/{n}" for n, _ in model.named_parameters()} | {
        f"buffer/{n}" for n, _ in model.named_buffers()} == {
        k for k in stored if k.startswith(("param/", "buffer/"))}
    for name, p in model.named_parameters():
        expected = stored[f"param/{name}"].astype(p.dtype)
        if p.mask is not None:
            expected = expected * p.mask
        np.testing.assert_array_equal(state[name], expected)
    if mutation[0] in ("bytes", "truncate"):
        reference, _ = io.load(original)
        for name, value in reference.state_dict().items():
            np.testing.assert_array_equal(state[name], value)


def test_max_bytes_lets_a_large_deflated_file_load(tmp_path):
    """A legitimate file that deflates well past the default budget loads when the caller
    raises ``max_bytes``; the default refuses it saying how."""
    path = deflated_zeros(tmp_path / "zeros.npz", 3000)  # 36 MB of weights in a small file
    with pytest.raises(ValueError, match="pass max_bytes"):
        io.load(path)
    model, _ = io.load(path, max_bytes=40 * MB)
    assert model[0].weight.shape == (3000, 3000) and not model[0].weight.data.any()
    with pytest.raises(TypeError, match="max_bytes"):
        io.load(path, max_bytes=-1)


@pytest.mark.data
@pytest.mark.parametrize("x, fragment", [
    (npy_bytes(header={"descr": "<f4", "fortran_order": False, "shape": (100000, 100000)}),
     "declares shape (100000, 100000)"),
    (np.zeros((4, 2), np.complex64), "not real numbers"),
])
def test_a_users_array_file_is_checked_before_it_is_read(tmp_path, x, fragment):
    """data.load_arrays and load_split_indices read through the same checks."""
    from nnprune import data

    path = write_npz(tmp_path / "arrays.npz", {"x": x, "y": np.zeros(4, np.int64)})
    for load in (data.load_arrays, data.load_split_indices):
        with pytest.raises(ValueError) as info:
            load(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message and fragment in message

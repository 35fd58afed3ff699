"""The one check every command runs on its output paths, before any work."""
from __future__ import annotations

import os
from collections.abc import Mapping

from nnprune.cli.arguments import UsageError
from nnprune.files import check_writable, folder_unwritable


def check_outputs(inputs: Mapping[str, str | None], files: Mapping[str, str | None],
                  folders: Mapping[str, str | None] | None = None,
                  overwrite_input: str | None = None) -> None:
    """Refuse, as a usage error naming the option and the path: an output file that cannot
    be written (``files.check_writable``), an output folder that is a file or cannot be
    created or written to, and an output that is the same file as an input or another output
    (after resolving ``..`` and links), so ``summary m.npz --json m.npz`` never replaces the
    model. ``inputs``/``files``/``folders``: {option or argument name: path or None};
    ``overwrite_input``: the output option allowed to replace an input, or None."""
    inputs, files, folders = ({k: v for k, v in (given or {}).items() if v is not None}
                              for given in (inputs, files, folders))
    for option, path in files.items():
        try:
            check_writable(path)
        except (OSError, ValueError) as err:
            raise UsageError(f"argument {option}: {_reason(err, path)}") from None
    for option, path in folders.items():
        _check_folder(option, path)
    seen: dict[str, str] = {}
    for option, path in files.items():
        key = _identity(path)
        if key in seen:
            raise UsageError(f"argument {option}: {path!r} is also given to {seen[key]}; one "
                             f"would overwrite the other: give them different names")
        seen[key] = option
        for name, source in inputs.items():
            if _identity(source) == key and option != overwrite_input:
                hint = ", or pass --overwrite-input to replace it" if overwrite_input else ""
                raise UsageError(f"argument {option}: {path!r} is the input {name} "
                                 f"{source!r}: writing it would destroy the input; give "
                                 f"another name{hint}")


def _identity(path: str) -> str:
    """What two paths naming the same file have in common: the device and inode of an
    existing file, else the absolute path with links resolved."""
    try:
        st = os.stat(path)
        return f"{st.st_dev}:{st.st_ino}"
    except OSError:
        return os.path.realpath(path)


def _reason(err: Exception, path: str) -> str:
    """The error's text, starting with the user's path (as ``check_writable`` words it)."""
    text = str(err)
    return text if text.startswith(os.fspath(path)) or not path else f"{path!r}: {text}"


def _check_folder(option: str, path: str) -> None:
    """An output folder: not an existing file, creatable, writable."""
    if not path:
        raise UsageError(f"argument {option}: the folder name is empty; expected a folder "
                         f"such as 'results'")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"argument {option}: {path!r} is a file; expected a folder for the "
                         f"results")
    folder = os.path.abspath(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise UsageError(f"argument {option}: {path!r} cannot be created: {folder!r} is a file")
    reason = folder_unwritable(folder)
    if reason:
        raise UsageError(f"argument {option}: cannot write to {path!r}: the folder "
                         f"{folder!r} refuses new files ({reason})")

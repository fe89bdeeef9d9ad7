"""Reading and writing parameter files and checkpoints, safely.

Parameter files are `torch.save(state_dict)` in the layout of the original release. They are read with
`weights_only=True` onto the device in use, and every way a file can be wrong ends in one
`ParameterFileError` with a one-line message. Files are written atomically (temporary file, then rename),
so a crash never leaves a half-written file. `check_output_folder` and `check_output_file` find out, before
any work starts, whether a command will be able to write where it was asked to.
"""
from __future__ import annotations

import os
import sys
import pickle
import tempfile
from pathlib import Path

import torch

from .errors import OneLineError, OutputPathError, ParameterFileError  # noqa: F401 (importable from here)
from .network import PlasticNetwork
from .variants import BUILT_IN, class_name, network_class

CLASS_KEY = "network_class"  # in a researcher's class's parameter file: the class's name


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _folder_problem(folder: Path) -> tuple[str | None, Path | None]:
    """Why `folder` cannot be made or written (None if it can), and the topmost folder this call created (None
    if it existed): creates it, writes and removes a probe file."""
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder; give a folder's name", None
    created = None
    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                return f"cannot be created: {above} is a file, not a folder", None
            break
        created = above
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot be created ({_reason(error)})", None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return f"cannot be written ({_reason(error)})", created
    return None, created


def _say_created(created: Path | None, option: str) -> None:
    if created is not None:
        print(f"{option}: created the folder {created.resolve()}", file=sys.stderr, flush=True)


def check_output_folder(path, option: str = "--out", announce: bool = False) -> Path:
    """Create the folder `path` if needed (with `announce`, saying so in one line on standard error: for a
    folder of runs, not for a command's output folder, which the user expects to be made) and prove it
    writable by writing and removing a probe file.

    Raises `OutputPathError`, one line naming `option`, when the folder cannot be created or written."""
    folder = Path(path)
    problem, created = _folder_problem(folder)
    if problem:
        raise OutputPathError(f"{option} {folder}: {problem}" if problem.startswith("is a file")
                              else f"{option} {folder}: this folder {problem}")
    if announce:
        _say_created(created, option)
    return folder


def remove_if_empty(folder, since_created: bool) -> bool:
    """Remove `folder` if this command created it (`since_created`) and nothing was written in it; True if
    removed. For a command stopped before its first file: it leaves no empty folder behind."""
    folder = Path(folder)
    if not since_created or not folder.is_dir() or any(folder.iterdir()):
        return False
    folder.rmdir()
    return True


def check_output_file(path, option: str = "--out", announce: bool = True) -> Path:
    """Prove that the file `path` can be written (atomically, beside its final name): its folder is created
    if needed (with `announce`, saying so in one line on standard error) and must be writable, and `path`
    itself must not be a folder. Raises `OutputPathError`."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder; give a file name (e.g. {path / 'net.dat'})")
    problem, created = _folder_problem(path.parent)
    if problem:
        raise OutputPathError(f"{option} {path}: its folder {path.parent} {problem}")
    if announce:
        _say_created(created, option)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path, write, mode: str = "wb") -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`: an interruption leaves
    the old file or the new one, never half of one (the temporary file is removed). The file gets the mode
    of any newly created file (0666 less the umask), not the owner-only mode of mkstemp's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj, path) -> None:
    """torch.save(obj) into `path`, atomically."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path) -> None:
    _atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_write_bytes(data: bytes, path) -> None:
    _atomic_write(path, lambda f: f.write(data))


# torch.save writes a zip archive (PK..), or a pickle (protocol byte 0x80) in its legacy format.
TORCH_FILE_STARTS = (b"PK\x03\x04", b"PK\x05\x06", b"\x80")


def read_torch_file(path, device="cpu", what="parameter file"):
    path = Path(path)
    if not path.exists():
        raise ParameterFileError(f"{what} not found: {path}")
    if path.is_dir():
        raise ParameterFileError(f"{what} is a folder, not a file: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as error:
        raise ParameterFileError(f"cannot read {what} {path} ({_reason(error)})") from None
    if not head:
        raise ParameterFileError(f"{path} is empty, not a PyTorch {what}")
    if not head.startswith(TORCH_FILE_STARTS):
        raise ParameterFileError(f"{path} is not a PyTorch {what} (it was not written by torch.save)")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated, or holding unsafe objects
        raise ParameterFileError(f"cannot read {what} {path}: {_load_failure(error)}") from None


def _load_failure(error: Exception, longest: int = 100) -> str:
    """Why torch.load failed, in one complete line: what it means, then torch's reason where short (its first
    sentence, cut at a word if longer than `longest` characters)."""
    text = " ".join(str(error).split())
    if isinstance(error, pickle.UnpicklingError) and "weights only" in text.lower():
        meaning = "it holds objects other than tensors, which are not loaded for safety"
    else:
        meaning = "the file is truncated or damaged, not a complete torch file"
    reason = text.split(". ")[0].rstrip(".")
    if len(reason) > longest:
        reason = reason[:longest].rsplit(" ", 1)[0] + " ..."
    return f"{meaning} (torch: {reason})" if reason else meaning


def network_kwargs_for(state_dict: dict) -> dict:
    """The network variant a state dict describes (alpha's shape)."""
    alpha = state_dict.get("alpha")
    if alpha is None or alpha.dim() != 2:
        return {}
    rows, cols = alpha.shape
    return {"alpha_shape": "synapse" if cols > 1 else ("neuron" if rows > 1 else "scalar")}


def trained_network(path) -> str | None:
    """The network class a training run recorded for the parameter file `path` (in its checkpoint beside it,
    net.ckpt), or None where there is no readable checkpoint."""
    checkpoint = Path(path).with_suffix(".ckpt")
    if not checkpoint.is_file():
        return None
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        return saved["config"].get("network", "plastic")
    except Exception:  # noqa: BLE001 - not a checkpoint of ours: nothing recorded
        return None


def load_network(path, device="cpu", network="plastic") -> PlasticNetwork:
    """Load a parameter file (ours, simple.ipynb's, or the original release's) into a network of the class
    `network` names (`transitive.model.variants`: "plastic", a control, FILE.py:Class or a class) on
    `device`. The file must hold exactly that class's parameters, with their shapes, and, where a training
    checkpoint lies beside it, have been trained as that class (one line otherwise)."""
    state_dict = read_torch_file(path, device)
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ParameterFileError(f"{path} does not hold a state_dict of tensors")
    cls = network_class(network)
    made_by = state_dict.pop(CLASS_KEY, None)
    if made_by is not None:
        made_by = bytes(made_by.to(torch.uint8).tolist()).decode("utf-8", "replace")
        if made_by != cls.__name__:
            raise ParameterFileError(f"{path} was made by {made_by} (its '{CLASS_KEY}' entry), not {cls.__name__}: "
                                     f"load it with that class (--network FILE.py:{made_by} or module:{made_by})")
    trained_with = trained_network(path)
    if trained_with is not None and class_name(trained_with) != cls.__name__:
        raise ParameterFileError(f"{path} was trained as {class_name(trained_with)} (network {trained_with!r}, "
                                 f"says its checkpoint {Path(path).with_suffix('.ckpt').name}), not "
                                 f"{cls.__name__}: load it with that network (--network {trained_with})")
    net = cls(**network_kwargs_for(state_dict)).to(device)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    extra = sorted(set(state_dict) - set(expected))
    if missing or extra:
        what = "a plastic-network parameter file" if cls is PlasticNetwork else f"a parameter file of {cls.__name__}"
        hint = "; if another network class made it, name that class (--network)"
        raise ParameterFileError(f"{path} is not {what} (missing keys: {', '.join(missing) or 'none'}; "
                                 f"unexpected keys: {', '.join(extra) or 'none'}){hint}")
    for key, tensor in expected.items():
        if state_dict[key].shape != tensor.shape:
            raise ParameterFileError(f"{path}: '{key}' has shape {tuple(state_dict[key].shape)}, "
                                     f"expected {tuple(tensor.shape)}")
    net.load_state_dict({key: state_dict[key].to(tensor.dtype) for key, tensor in expected.items()})
    return net


def save_network(net: PlasticNetwork, path) -> None:
    """The parameters in the original's format; a researcher's class adds one entry, CLASS_KEY (its name, as
    UTF-8 bytes), so that its file is never read as the published network's (the built-in classes' files keep
    the original format: the published network's and the no-plasticity control's are the original's, the
    no-modulation control's has its own extra key)."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    if type(net) not in BUILT_IN.values():
        state[CLASS_KEY] = torch.tensor(list(type(net).__name__.encode("utf-8")), dtype=torch.uint8)
    atomic_save(state, path)

"""Reading and writing parameter files and checkpoints, safely.

Parameter files are `torch.save(state_dict)` in the layout of the original release. They are read with
`weights_only=True` onto the device in use, and every way a file can be wrong ends in one
`ParameterFileError` with a one-line message. Files are written atomically (temporary file, then rename),
so a crash never leaves a half-written file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .network import PlasticNetwork


class ParameterFileError(Exception):
    """A parameter file or checkpoint that cannot be used; the message is one line for the user."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # an ordinary file, not mkstemp's private one
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(text: str, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_torch_file(path, device="cpu", what="parameter file"):
    path = Path(path)
    if not path.exists():
        raise ParameterFileError(f"{what} not found: {path}")
    if path.is_dir():
        raise ParameterFileError(f"{what} is a folder, not a file: {path}")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated, not a torch file, or holding unsafe objects
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ParameterFileError(f"cannot read {what} {path}: not a complete torch file ({reason[:120]})") from None


def network_kwargs_for(state_dict: dict) -> dict:
    """The network variant a state dict describes (alpha's shape)."""
    alpha = state_dict.get("alpha")
    if alpha is None or alpha.dim() != 2:
        return {}
    rows, cols = alpha.shape
    return {"alpha_shape": "synapse" if cols > 1 else ("neuron" if rows > 1 else "scalar")}


def load_network(path, device="cpu") -> PlasticNetwork:
    """Load a parameter file (ours, simple.ipynb's, or the original release's) into a network on `device`."""
    state_dict = read_torch_file(path, device)
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ParameterFileError(f"{path} does not hold a state_dict of tensors")
    net = PlasticNetwork(**network_kwargs_for(state_dict)).to(device)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    extra = sorted(set(state_dict) - set(expected))
    if missing or extra:
        raise ParameterFileError(f"{path} is not a plastic-network parameter file "
                                 f"(missing keys: {missing or 'none'}; unexpected keys: {extra or 'none'})")
    for key, tensor in expected.items():
        if state_dict[key].shape != tensor.shape:
            raise ParameterFileError(f"{path}: '{key}' has shape {tuple(state_dict[key].shape)}, "
                                     f"expected {tuple(tensor.shape)}")
    net.load_state_dict({k: v.float() for k, v in state_dict.items()})
    return net


def save_network(net: PlasticNetwork, path) -> None:
    atomic_save({k: v.detach().cpu() for k, v in net.state_dict().items()}, path)

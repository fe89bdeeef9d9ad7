"""The package uses only PyTorch's public names (issue 36): nothing imported from a torch module whose name,
or whose module path, has a part starting with "_", and no such attribute reached from a name bound to torch
(`torch._foreach_norm`, `nn._x`, `torch.utils._python_dispatch`), read from the syntax trees of every module
of the package. A private name vanishes or changes between releases without notice: it is what made the
package fail at import on PyTorch 2.1 and 2.2."""
from __future__ import annotations

import ast
import pathlib

import transitive

PACKAGE = pathlib.Path(transitive.__file__).parent

# The one exception, with its reason: (module of the package, the dotted name it uses).
ALLOWED = {
    # PyTorch documents TorchDispatchMode (Extending PyTorch, "Extending all torch API with Modes") only under
    # this module name, and has no public one; only the work counter of `transitive bench` uses it.
    ("scale/benchmark.py", "torch.utils._python_dispatch.TorchDispatchMode"),
}


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _dotted(node: ast.AST) -> list[str] | None:
    """a.b.c of an attribute chain on a plain name, as ["a", "b", "c"]; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


def private_torch_names(source: str) -> list[str]:
    """The private PyTorch names one module's source uses, as dotted names (the torch path they come from)."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # a name of the module -> the torch path it stands for
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "torch":
                    bound[alias.asname or "torch"] = alias.name if alias.asname else "torch"
                    if any(_private(p) for p in alias.name.split(".")):
                        found.append(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "torch":
            for alias in node.names:
                path = f"{node.module}.{alias.name}"
                bound[alias.asname or alias.name] = path
                if any(_private(p) for p in path.split(".")):
                    found.append(path)
    for node in ast.walk(tree):
        chain = None
        if isinstance(node, ast.Attribute):
            chain = _dotted(node)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            base = _dotted(node.args[0])
            chain = base + [node.args[1].value] if base else None
        if chain and chain[0] in bound and any(_private(p) for p in chain[1:]):
            found.append(".".join([bound[chain[0]], *chain[1:]]))
    return sorted(set(found))


def test_the_package_uses_no_private_pytorch_name():
    used = {(str(path.relative_to(PACKAGE)), name) for path in sorted(PACKAGE.rglob("*.py"))
            for name in private_torch_names(path.read_text(encoding="utf-8"))}
    assert used - ALLOWED == set(), f"private PyTorch names: {sorted(used - ALLOWED)}"
    assert ALLOWED <= used, f"allowed but no longer used (remove from ALLOWED): {sorted(ALLOWED - used)}"


def test_the_scan_finds_each_kind_of_private_use():
    """What the package did before (stepping.py and benchmark.py on 2026-12-04), and the other spellings."""
    cases = {
        "from torch.optim.optimizer import _get_scalar_dtype": ["torch.optim.optimizer._get_scalar_dtype"],
        "import torch\nnorms = torch._foreach_norm(grads, 2.0)": ["torch._foreach_norm"],
        "import torch\ntorch._foreach_mul_(member, c)": ["torch._foreach_mul_"],
        "from torch.utils._python_dispatch import TorchDispatchMode": ["torch.utils._python_dispatch.TorchDispatchMode"],
        "import torch._dynamo": ["torch._dynamo"],
        "import torch.nn as nn\nnn.modules._x": ["torch.nn.modules._x"],
        "from torch import optim\noptim.Optimizer._group_tensors_by_device_and_dtype(x)":
            ["torch.optim.Optimizer._group_tensors_by_device_and_dtype"],
        "import torch\nf = getattr(torch, '_foreach_add_')": ["torch._foreach_add_"],
        "from torch import _C": ["torch._C"],
    }
    for source, expected in cases.items():
        assert private_torch_names(source) == expected, source
    public = ("import torch\nv = torch.__version__\nx = torch.nn.utils.clip_grad_norm_(p, 1.0)\n"
              "from torch.optim.adam import adam\nclass A:\n    def f(self):\n        return self._own\n"
              "import numpy\nnumpy._x")
    assert private_torch_names(public) == []

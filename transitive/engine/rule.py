"""Which plasticity rule a network runs, and whether the compiled kernels implement it.

The rule is defined once, by the network class: `PlasticNetwork.step` and the methods it calls (listed in
RULE_METHODS). The compiled kernels (the CPU kernel of `cpu_kernel`, the GPU kernels of `gpu_kernel`) are
hand-written specialisations of that definition. Each records, as `VERIFIED_RULE`, the fingerprint of the
definition it was tested against (tests/test_kernels.py, tests/test_gpu_kernel.py): for every method of
RULE_METHODS, a hash of its source code (its syntax tree, so comments, docstrings and layout do not count)
and of the module constants it reads (PLASTIC_CLIP).

At run time the engine uses a kernel only when the network's rule has that fingerprint and the network has
the parameter layout the kernels read (`kernel_mismatch`). Otherwise, for a subclass that overrides `step`
or one of its helpers, an edited `transitive/model/network.py`, or a method replaced at run time, it runs
the network's own definition step by step, and says so once, in one line.

When the definition is changed on purpose and the kernels are changed to match, the equivalence tests are
re-run and VERIFIED_RULE is updated to `rule_fingerprint(PlasticNetwork)`; tests/test_rule.py fails until
then.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import warnings

from torch import nn

# The methods that make up the rule: one time step and the helpers the published step calls.
RULE_METHODS = ("forward", "step", "modulation", "effective_weights", "hebbian")
# The parameters the kernels read, by name, with their shapes for n neurons and the input size.
KERNEL_LAYOUT = {"w": lambda n, i: {(n, n)}, "alpha": lambda n, i: {(n, n), (n, 1), (1, 1)},
                 "etaet": lambda n, i: {(1,)}, "DAmult": lambda n, i: {(1,)}, "i2h.weight": lambda n, i: {(n, i)},
                 "i2h.bias": lambda n, i: {(n,)}, "h2DA.weight": lambda n, i: {(2, n)}, "h2DA.bias": lambda n, i: {(2,)},
                 "h2o.weight": lambda n, i: {(2, n)}, "h2o.bias": lambda n, i: {(2,)},
                 "h2v.weight": lambda n, i: {(1, n)}, "h2v.bias": lambda n, i: {(1,)}}
LAYERS = ("i2h", "h2DA", "h2o", "h2v")

_cache: dict = {}
_told: set = set()


def _function_hash(function) -> str:
    """A short hash of a function's syntax tree (without its docstring) and the simple constants it reads
    from its module; "unreadable" when its source cannot be found (a lambda typed at a prompt, exec'd code)."""
    function = inspect.unwrap(getattr(function, "__func__", function))
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return "unreadable"
    node = tree.body[0] if tree.body else tree
    body = getattr(node, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:]  # the docstring does not change the rule
    code = getattr(function, "__code__", None)
    constants = []
    if code is not None:
        scope = getattr(function, "__globals__", {})
        constants = sorted(f"{name}={scope[name]!r}" for name in set(code.co_names)
                           if isinstance(scope.get(name), (int, float, bool, str)))
    text = ast.dump(node, annotate_fields=False) + "|" + ";".join(constants)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rule_fingerprint(network_class: type) -> dict:
    """{method: hash} for the methods of RULE_METHODS as `network_class` resolves them."""
    functions = tuple(getattr(network_class, name, None) for name in RULE_METHODS)
    key = (network_class, tuple(id(f) for f in functions))
    if key not in _cache:
        _cache[key] = {name: ("missing" if f is None else _function_hash(f)) for name, f in zip(RULE_METHODS, functions)}
    return dict(_cache[key])


def changed_methods(net: nn.Module, verified: dict) -> list[str]:
    """The methods of RULE_METHODS in which `net`'s rule differs from the verified one (an attribute of
    the instance itself, e.g. `net.step = ...`, counts as a change)."""
    own = [name for name in RULE_METHODS if name in vars(net)]
    fingerprint = rule_fingerprint(type(net))
    return own + [name for name in RULE_METHODS if name not in own and fingerprint[name] != verified.get(name)]


def layout_mismatch(net: nn.Module) -> str | None:
    """Why the kernels cannot read `net`'s parameters (other names or shapes, layers that are not plain
    nn.Linear), or None."""
    parameters = dict(net.named_parameters())
    if set(parameters) != set(KERNEL_LAYOUT):
        added = sorted(set(parameters) - set(KERNEL_LAYOUT))
        lacking = sorted(set(KERNEL_LAYOUT) - set(parameters))
        parts = ([f"adds {', '.join(added)}"] if added else []) + ([f"lacks {', '.join(lacking)}"] if lacking else [])
        return f"its parameters differ from the published network's ({'; '.join(parts)})"
    if any(type(getattr(net, layer, None)) is not nn.Linear for layer in LAYERS):
        return "its input or output layers are not plain linear layers"
    n, inputs = parameters["w"].shape[0], parameters["i2h.weight"].shape[-1]
    for name, shapes in KERNEL_LAYOUT.items():
        if tuple(parameters[name].shape) not in shapes(n, inputs):
            return f"its parameter {name} has shape {tuple(parameters[name].shape)}"
    return None


def kernel_mismatch(net: nn.Module, verified: dict) -> str | None:
    """None when a kernel verified against `verified` implements `net`'s rule; else why not, in a few words
    (e.g. "OjaNetwork.step differs from the verified rule")."""
    changed = changed_methods(net, verified)
    if changed:
        name = type(net).__name__
        return f"{', '.join(f'{name}.{method}' for method in changed)} " \
               f"{'differs' if len(changed) == 1 else 'differ'} from the rule the kernels were verified against"
    return layout_mismatch(net)


def say_once(message: str, category=RuntimeWarning) -> None:
    """A warning of one line (no source line under it), once per message and process."""
    if message not in _told:
        _told.add(message)
        warnings.warn_explicit(message, category, filename="transitive", lineno=0)


def tell_once(reason: str) -> None:
    """Once per reason: the network's own definition runs instead of a kernel, and why."""
    say_once(f"{reason}; running the network's own definition (slower; compiled once it has run a minute, "
             f"TRANSITIVE_KERNEL=compiled: at once)")

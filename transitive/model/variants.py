"""The network classes a run can name: the paper's, two controls, or a researcher's own.

    "plastic"         PlasticNetwork, the paper's network (the default)
    "no-plasticity"   NonPlasticNetwork: alpha fixed at 0, so the plastic weights never act; the step does no
                      work on the trace or the plastic weights at all
    "no-modulation"   UnmodulatedNetwork: m(t) is one learned constant, plain (unmodulated) Hebbian plasticity
    "FILE.py:Class"   a class defined in a Python file (e.g. my_rule.py:OjaNetwork)
    "module:Class"    a class in an importable module (e.g. mylab.rules:OjaNetwork)

A class must be a subclass of PlasticNetwork whose constructor accepts PlasticNetwork's keyword arguments
(alpha_shape, positive_alpha, frozen_input); it changes the rule by overriding `step` or the helpers `step`
calls (docs/extending.md). The two controls are such subclasses. Their parameter files keep the original
format: the no-plasticity control's is an ordinary one (alpha = 0), the no-modulation control's adds one
entry, `modulation_constant`.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import torch
from torch import nn

from .errors import OneLineError
from .network import NetworkState, PlasticNetwork


class NetworkClassError(OneLineError):
    """A network class that cannot be found or used; the message is one line for the user."""


class NonPlasticNetwork(PlasticNetwork):
    """The no-plasticity control: r(t) = tanh(W_in i(t) + b_in + W r(t-1)); alpha is 0 and never trained,
    the trace and the plastic weights are passed on unchanged (zero)."""

    def __init__(self, **options):
        super().__init__(**options)
        with torch.no_grad():
            self.alpha.zero_()
        self.alpha.requires_grad_(False)

    def step(self, inputs: torch.Tensor, state: NetworkState):
        rates = torch.tanh(self.i2h(inputs) + state.rates @ self.recurrent_weights.t())
        return self.h2o(rates), self.h2v(rates).squeeze(-1), self.modulation(rates), \
            NetworkState(rates, state.trace, state.plastic_weights)


class UnmodulatedNetwork(PlasticNetwork):
    """The no-neuromodulation control: m(t) is one learned constant (`modulation_constant`, starting at 0, as
    the published network's m(t) nearly does), whatever the rates: plain Hebbian plasticity. The modulation
    layer (h2DA) and gain stay in the file but no longer act."""

    def __init__(self, **options):
        super().__init__(**options)
        self.modulation_constant = nn.Parameter(torch.zeros(1))

    def modulation(self, rates: torch.Tensor) -> torch.Tensor:
        return self.modulation_constant.expand(rates.shape[:-1])


BUILT_IN = {"plastic": PlasticNetwork, "no-plasticity": NonPlasticNetwork, "no-modulation": UnmodulatedNetwork}


def _from_file(path: Path, name: str):
    if not path.is_file():
        raise NetworkClassError(f"network file not found: {path}")
    module_name = f"transitive_network_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so that its objects pickle (a figures worker, a checkpoint)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the researcher's file: any error is theirs, said in one line
        del sys.modules[module_name]
        raise NetworkClassError(f"cannot run {path} ({type(error).__name__}: {error})") from None
    return module


def network_class(spec: str | type = "plastic") -> type:
    """The class a spec names (see the module docstring); a class is returned as it is, once checked."""
    if isinstance(spec, type):
        found = spec
    elif spec in BUILT_IN:
        found = BUILT_IN[spec]
    else:
        where, colon, name = str(spec).rpartition(":")
        if not colon or not where or not name:
            raise NetworkClassError(f"network {spec!r}: expected {', '.join(BUILT_IN)}, FILE.py:Class or "
                                    f"module:Class")
        if where.endswith(".py"):
            module = _from_file(Path(where), name)
        else:
            try:
                module = importlib.import_module(where)
            except ImportError as error:
                raise NetworkClassError(f"network {spec!r}: cannot import {where} ({error})") from None
        found = getattr(module, name, None)
        if found is None:
            raise NetworkClassError(f"network {spec!r}: {where} defines no {name}")
    if not (isinstance(found, type) and issubclass(found, PlasticNetwork)):
        raise NetworkClassError(f"network {spec!r}: {getattr(found, '__name__', found)} is not a subclass of "
                                f"PlasticNetwork")
    return found


def class_name(spec: str | type) -> str:
    """The name of the class a spec names, without importing anything ("no-modulation" ->
    "UnmodulatedNetwork", "my_rule.py:OjaNetwork" -> "OjaNetwork")."""
    if isinstance(spec, type):
        return spec.__name__
    return BUILT_IN[spec].__name__ if spec in BUILT_IN else str(spec).rpartition(":")[2]


def network_identity(spec: str | type) -> tuple:
    """What a spec resolves to, to compare two specs (not their spelling): a built-in's name; else the file
    that defines the class, resolved, and the class's name. So a file named by a relative or an absolute
    path, and `module:Class` or `FILE.py:Class` of the same file, are the same network."""
    if isinstance(spec, type):
        built_in = [key for key, cls in BUILT_IN.items() if cls is spec]
        if built_in:
            return ("built-in", built_in[0])
        try:
            return (str(Path(inspect.getfile(spec)).resolve()), spec.__qualname__)
        except (TypeError, OSError):
            return (spec.__module__, spec.__qualname__)
    if spec in BUILT_IN:
        return ("built-in", spec)
    where, _, name = str(spec).rpartition(":")
    if where.endswith(".py"):
        return (str(Path(where).resolve()), name)
    try:
        origin = importlib.util.find_spec(where).origin
    except (ImportError, ValueError, AttributeError):
        origin = None
    return (str(Path(origin).resolve()), name) if origin else (where, name)


def same_network(a: str | type, b: str | type) -> bool:
    return network_identity(a) == network_identity(b)


def build_network(spec: str | type = "plastic", **options) -> PlasticNetwork:
    """A new network of the class `spec` names, built with PlasticNetwork's keyword arguments."""
    cls = network_class(spec)
    try:
        return cls(**options)
    except TypeError as error:
        raise NetworkClassError(f"{cls.__name__} cannot be built with PlasticNetwork's options "
                                f"({', '.join(options) or 'none'}): {error}") from None


class RuleOutputError(OneLineError):
    """A network's `step` that does not return what every runner reads; the message is one line."""


EXPECTED_OUTPUTS = "4 values: logits (batch, 2), value (batch,), m(t) (batch,) and a NetworkState of rates " \
                   "(batch, n), trace and P (batch, n, n)"


def _described(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}"
    if isinstance(value, NetworkState):
        return f"NetworkState({', '.join(_described(getattr(value, f)) for f in ('rates', 'trace', 'plastic_weights'))})"
    return type(value).__name__


def check_step_outputs(net, outputs, batch: int) -> None:
    """Raises RuleOutputError (one line naming the class, what its step returned and what is expected) unless
    `outputs` is what `step` must return for a batch of `batch` (shapes only: it costs nothing per step)."""
    n = net.hidden_size
    expected = ((batch, 2), (batch,), (batch,))
    state_shapes = ((batch, n), (batch, n, n), (batch, n, n))
    good = isinstance(outputs, tuple) and len(outputs) == 4 and isinstance(outputs[3], NetworkState) and all(
        isinstance(x, torch.Tensor) and tuple(x.shape) == shape for x, shape in zip(outputs[:3], expected)) and all(
        isinstance(x, torch.Tensor) and tuple(x.shape) == shape for x, shape in zip(
            (outputs[3].rates, outputs[3].trace, outputs[3].plastic_weights), state_shapes))
    if good:
        return
    returned = f"{len(outputs)} values: {', '.join(map(_described, outputs))}" if isinstance(outputs, tuple) \
        else _described(outputs)
    raise RuleOutputError(f"{type(net).__name__}.step returned {returned}; expected {EXPECTED_OUTPUTS} "
                          f"(batch {batch}, n {n})")

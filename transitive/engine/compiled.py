"""The network's own definition, compiled (`torch.compile`) where the kernels step aside.

For a rule the kernels were not verified against (a researcher's subclass, the controls) or where no kernel
can run, every trial of an episode goes through `transitive.engine.definition.trial`: the four steps of the
trial through the network's own `step`. This module compiles that very function (dynamo traces the class's
`step` and the helpers it calls; nothing of the rule is copied) and runs it for every trial of every episode:

- once per process and key: network class, its parameters' shapes, members run as one (vmap) or not, batch,
  neurons, device, dtype, gradients or not, responses drawn or forced. Each key has a function of its own
  (its own dynamo cache), so one key never evicts another, and nothing is recompiled from episode to
  episode: every per-trial tensor is made contiguous, so that the number of trials does not reach its strides;
- `torch.compile(fullgraph=True, dynamic=False)` of the trial with selective activation checkpointing
  inside: what tanh and clamp return (the Hebbian term, whose exp is the costliest thing per synapse, and P
  after each step) is kept for the backward pass, everything else is recomputed from them within the
  backward's own fused loops (SAVED_OPERATIONS; 20-30% less time per training episode than recomputing
  the whole trial from P at its start, for 8 (batch, n, n) tensors per trial more than the eager path keeps:
  about 1.1 GB per episode at batch 32, 200 neurons, 30 trials); on the CPU tanh is generated as
  2 / (1 + exp(-2x)) - 1 (inductor's `cpp.use_decompose_tanh`: about 5x faster than the vectorised library
  tanh, within 2e-7 of it), and the whole graph is one C++ file (`cpp_wrapper`: one compiler run instead of
  one per kernel, about half the compile time);
- compiling = the first run, forward and backward, on zeros of the episode's shapes, so that a failure shows
  there and not in the training's backward pass; then one line says it compiled and how long it took. If it
  fails (no C++ compiler, an operation of a researcher's rule that cannot be traced), one line says why and
  that key runs eagerly from then on: the eager definition is the reference and the fallback.

When (`TRANSITIVE_KERNEL`, `transitive.engine.backends`): `compiled` compiles from the first episode;
`eager` never compiles; unset, `auto` or `torch` compile a key once its episodes have run eagerly for
COMPILE_AFTER_SECONDS in this process, one after the other (about what a compile costs), so a short run or a
test suite never waits for a compile and a long training compiles within its first minutes.
"""
from __future__ import annotations

import functools
import logging
import time
import types
from dataclasses import dataclass

import torch
import torch.utils.checkpoint as activation_checkpoint
from torch.utils.checkpoint import checkpoint

from ..model.errors import OneLineError
from . import rule

MODES = ("auto", "eager", "compiled")
COMPILE_AFTER_SECONDS = 60.0  # eager episode time (forward) of one key before it is compiled, in "auto"
STREAK_GAP = 4.0  # a pause longer than this many times the last eager episode (plus 1 s) restarts the count
CPU_OPTIONS = {"cpp.use_decompose_tanh": True, "cpp_wrapper": True}
# Kept from a compiled trial's forward pass for its backward (the rest is recomputed): see the module docstring.
SAVED_OPERATIONS = (torch.ops.aten.tanh.default, torch.ops.aten.clamp.default, torch.ops.aten.clamp.Tensor)


@dataclass
class _Key:
    """What one compiled function serves (see the module docstring)."""

    network: type
    parameters: tuple  # (name, shape, requires_grad) of every parameter and buffer
    vectorised: bool
    members: int
    batch: int
    neurons: int
    device: str
    dtype: str
    gradients: bool
    forced: bool

    def __hash__(self):
        return hash(tuple(vars(self).values()))

    def describe(self) -> str:
        members = f"{self.members} networks x " if self.members > 1 else ""
        what = "training" if self.gradients else "evaluation"
        return f"{members}batch {self.batch} x {self.neurons} neurons on {self.device}, {what}"


@dataclass
class _Entry:
    eager_seconds: float = 0.0  # of the current run of eager episodes (see `_restart_after_a_pause`)
    last_seconds: float = 0.0
    last_end: float | None = None
    function: object = None  # the compiled trial, once compiled
    failed: str | None = None  # why it could not be compiled


_entries: dict = {}


def mode(requested: str) -> str:
    """The compile mode of a requested backend (`backends.requested`): "eager", "compiled" or "auto"."""
    return requested if requested in MODES else "auto"


def key_of(template, vectorised: bool, members: int, batch: int, forced: bool) -> _Key:
    tensors = list(template.named_parameters()) + list(template.named_buffers())
    weights = tensors[0][1]
    return _Key(type(template), tuple((name, tuple(t.shape), t.requires_grad) for name, t in tensors), vectorised,
                members, batch, template.hidden_size, str(weights.device), str(weights.dtype).replace("torch.", ""),
                torch.is_grad_enabled(), forced)


def count_eager(key: _Key, seconds: float) -> None:
    """Adds the time of an eager episode of `key` (what "auto" compares with COMPILE_AFTER_SECONDS)."""
    entry = _entries.setdefault(key, _Entry())
    entry.eager_seconds += seconds
    entry.last_seconds, entry.last_end = seconds, time.perf_counter()


def _restart_after_a_pause(entry: _Entry) -> None:
    """Whether this key's eager episodes have come one after the other, as in a training or an evaluation
    (the time since the last one at most STREAK_GAP times its own, plus a second); a longer pause starts the
    count again, so that the same small shape met now and then (a test suite) never adds up to a compile."""
    if entry.last_end is not None and time.perf_counter() - entry.last_end > STREAK_GAP * entry.last_seconds + 1.0:
        entry.eager_seconds = 0.0


def _keep_saved_operations(ctx, op, *args, **kwargs):
    """The compiled trial's checkpoint policy: the outputs of SAVED_OPERATIONS are kept for the backward
    pass, everything else is recomputed there."""
    policy = activation_checkpoint.CheckpointPolicy
    return policy.MUST_SAVE if op in SAVED_OPERATIONS else policy.PREFER_RECOMPUTE


class _QuietAboutThePolicy(logging.Filter):
    """Drops torch's general caution that a checkpoint policy meets in-place operations, which compiling
    turns into out-of-place ones before the policy applies (the trial's own in-place writes are checked
    against the eager definition by tests/test_compiled.py): a compile says one line, the package's."""

    def filter(self, record):
        return "context_fn is passed to torch.utils.checkpoint" not in record.getMessage()


def _checkpointed(trial):
    """The trial under activation checkpointing: selective (SAVED_OPERATIONS kept) where this PyTorch has the
    policies (2.4 and later), else the whole trial recomputed in the backward pass (slower, the same result)."""
    selective = getattr(activation_checkpoint, "create_selective_checkpoint_contexts", None)
    options = {} if selective is None else {"context_fn": functools.partial(selective, _keep_saved_operations)}

    def checkpointed_trial(*args):
        return checkpoint(trial, *args, use_reentrant=False, **options)
    return checkpointed_trial


def _own_function(function, name: str):
    """`function` with a code object of its own: dynamo keeps its compiled graphs per code object."""
    code = function.__code__.replace(co_name=name)
    return types.FunctionType(code, function.__globals__, name, function.__defaults__, function.__closure__)


def _zeros_like_inputs(args):
    """Zeros with the shapes, dtypes and gradient flags of the trial's tensor arguments (None stays None)."""
    def zeros(x):
        if not isinstance(x, torch.Tensor):
            return x
        return torch.zeros_like(x).requires_grad_(x.requires_grad)
    return [zeros(x) for x in args]


def _warm_up(function, template, parameters, args) -> None:
    """One run of the compiled trial on zeros, forward and (with gradients) backward: the compile itself."""
    dummy = _zeros_like_inputs(args)
    outputs = function(template, parameters, *dummy)
    if not torch.is_grad_enabled():
        return
    tracked = [x for x in outputs if isinstance(x, torch.Tensor) and x.requires_grad]
    leaves = [x for x in dummy if isinstance(x, torch.Tensor) and x.requires_grad]
    leaves += [p for p in template.parameters() if p.requires_grad] if parameters is None else \
        [p for p in parameters.values() if p.requires_grad]
    if tracked and leaves:
        torch.autograd.grad(sum(x.float().sum() for x in tracked), leaves, allow_unused=True)


def _compile(key: _Key, trial, template, parameters, args):
    """The compiled trial of `key` and how long compiling took; raises what the compiler raised."""
    name = f"trial_{len(_entries)}_{key.network.__name__}"
    function = _own_function(_checkpointed(trial) if key.gradients else trial, name)
    options = CPU_OPTIONS if key.device == "cpu" else None
    compiled = torch.compile(function, fullgraph=True, dynamic=False, options=options)
    start = time.perf_counter()
    quiet = _QuietAboutThePolicy()
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith("torch")]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        _warm_up(compiled, template, parameters, args)
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
    return compiled, time.perf_counter() - start


class CompileError(OneLineError, RuntimeError):
    """TRANSITIVE_KERNEL=compiled, and the definition cannot be compiled (one line for the user)."""


def _reason(error: Exception) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


def trial_function(trial, compile_mode: str, key: _Key, template, parameters, args):
    """What runs each trial of an episode of `key`: the compiled `trial` (compiling it first when it is due),
    or None for the eager path. args: the first trial's tensor arguments after template and parameters."""
    if compile_mode == "eager":
        return None
    entry = _entries.setdefault(key, _Entry())
    _restart_after_a_pause(entry)
    if entry.function is None and entry.failed is None and (
            compile_mode == "compiled" or entry.eager_seconds >= COMPILE_AFTER_SECONDS):
        try:
            entry.function, seconds = _compile(key, trial, template, parameters, args)
        except Exception as error:  # noqa: BLE001 - any failure of the compiler: the eager definition runs
            entry.failed = _reason(error)
        else:
            rule.say_once(f"{key.network.__name__}: the network's own definition compiled for {key.describe()} "
                          f"in {seconds:.0f} s (once per process and shape; TRANSITIVE_KERNEL=eager runs it "
                          f"uncompiled)")
    if entry.failed is not None:
        if compile_mode == "compiled":
            raise CompileError(f"TRANSITIVE_KERNEL=compiled: {key.network.__name__}'s definition cannot be "
                               f"compiled for {key.describe()} ({entry.failed})")
        rule.say_once(f"{key.network.__name__}: the network's own definition could not be compiled for "
                      f"{key.describe()} ({entry.failed}); running it eagerly")
    return entry.function


def failed(key: _Key, error: Exception) -> None:
    """A compiled trial that raised when it ran: said once, and `key` runs eagerly from then on."""
    entry = _entries.setdefault(key, _Entry())
    entry.function, entry.failed = None, _reason(error)
    reason = entry.failed
    rule.say_once(f"{key.network.__name__}: the compiled definition failed for {key.describe()} ({reason[:300]}); "
                  f"running it eagerly")

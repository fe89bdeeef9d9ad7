"""A compiled CPU kernel for one trial of the plastic network: forward and hand-derived backward.

Why: on a CPU, one trial of the fast runner in plain PyTorch makes ~18 passes over (batch, n, n) tensors
forward and twice that backward (autograd), and torch's tanh is slow. Each batch element's trial is
independent of the others, so a small C++ kernel can do a whole trial per batch element in 4 passes
forward and 4 backward, mostly in cache, with a vectorised tanh, and spread the batch over threads.

The kernel is plain C++ (`transitive/engine/csrc/plastic_trial.cpp`, no torch headers: it compiles in a few
seconds), built with the system's g++ (or $CXX) the first time it is needed, cached under torch's extension
directory (one file per source text, flags and CPU, so a shared cache never mixes builds), loaded with
ctypes and called on tensors' data pointers (ctypes releases the GIL). It runs the batch elements on
torch's own OpenMP threads (it links against the libgomp torch loaded; a second OpenMP runtime would spin
against torch's), or on std::threads where that is impossible; torch.get_num_threads() of them. Anything
going wrong (no compiler, another platform) makes the episode engine fall back to its PyTorch backend with
one warning (`transitive.engine.backends`: `TRANSITIVE_KERNEL=torch` forces that path, `TRANSITIVE_KERNEL=cpp` this
kernel, an error when it cannot be built). The kernel runs only for float32 networks on the CPU with a
multiple of 8 neurons.

The equations of one trial, forward and backward pass by pass, are derived in docs/method.md, section 8
("One trial, forward and backward"); this kernel computes them for one batch element at a time, 4 passes
over the n x n matrices forward and 4 backward. Only P, the rates and m2, m3 are saved for the backward;
the Hebbian terms, the trace and the clipped P are recomputed. The parameter gradients are summed per group
of batch elements, then over the groups in a fixed order (reproducible whatever the threads).

tanh of the n x n Hebbian terms uses a rational approximation x p(x^2) / q(x^2) (degree 4 / 4 in x^2 with
p(0) = q(0) = 1, fitted here by iteratively reweighted least squares on the relative error over |x| <= 9,
where tanh rounds to 1 in float32; 2e-8 relative error before rounding). Evaluated in float32 it is
within 1.2 ulp of tanh for |x| <= 1 (the arguments are products of two rates, so always there) and
within 5.3 ulp (3.2e-7) beyond. Rates lie within [-1, 1], and so do their products: when every rate of a
batch element's trial does (checked once per element and step), the kernel evaluates only the first form
of the approximation, which gives exactly the same bits (tested on a dense sample of [-1, 1]) for fewer
instructions. Everything else uses std::tanh.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from importlib import resources

import torch

from ..model.network import PLASTIC_CLIP

ENV_SWITCH = "TRANSITIVE_KERNEL"  # the backend of the episode engine: torch, cpp, triton or unset (auto)

# The definition of the rule this kernel was verified against (`transitive.engine.rule.rule_fingerprint` of
# PlasticNetwork when tests/test_kernels.py last passed); the engine runs the kernel only for that rule.
VERIFIED_RULE = {"forward": "088f37eb7c026ac0", "step": "b956efff317a4dce", "modulation": "f9039534c3fd40b5",
                 "effective_weights": "5ff4b9b3a91f5a31", "hebbian": "4e0992f7ca3cf982"}

SOURCE_FILE = "csrc/plastic_trial.cpp"  # the kernel's C++ source, inside the package

_FLAG_SETS = (["-O3", "-march=native"], ["-O3"])

_lock = threading.Lock()
_library = None
_library_error: str | None = None


def _cpu_identity() -> str:
    """What -march=native depends on, so that a cache shared between machines never mixes builds."""
    identity = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features")):
                    identity += line
                    if line.startswith(("flags", "Features")):
                        break
    except OSError:
        pass
    return identity


def _build_dir() -> str:
    """torch's extension cache ($TORCH_EXTENSIONS_DIR, else ~/.cache/torch_extensions), else a temporary one."""
    from torch.utils.cpp_extension import get_default_build_root
    for root in (os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root(), tempfile.gettempdir()):
        path = os.path.join(root, "transitive_kernels")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise RuntimeError("no writable directory for the compiled kernel")


def _loaded_openmp() -> str | None:
    """The GNU OpenMP runtime torch loaded (Linux), if any: the kernel links against this very file, so
    that its threads are torch's intra-op threads (two runtimes in one process would spin against each
    other; with 2 cores that made the backward several times slower)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/libgomp" in line}
    except OSError:
        return None
    paths = [p for p in paths if os.path.basename(p).startswith("libgomp") and os.path.exists(p)]
    torch_dir = os.path.dirname(os.path.dirname(torch.__file__))  # site-packages: torch/lib, torch.libs
    paths.sort(key=lambda p: (not p.startswith(torch_dir), p))  # torch's own first
    return paths[0] if paths else None


def _build_commands(compiler: str, flags: list, openmp: str | None, source: str, target: str) -> list:
    common = [compiler, *flags, "-std=c++17", "-fPIC"]
    if openmp is None:
        return [common + ["-shared", "-pthread", source, "-o", target]]
    objects = target + ".o"
    return [common + ["-fopenmp", "-c", source, "-o", objects],
            [compiler, "-shared", "-pthread", objects, openmp, f"-Wl,-rpath,{os.path.dirname(openmp)}", "-o", target]]


def source_text() -> str:
    """The kernel's C++ source (`transitive/engine/csrc/plastic_trial.cpp`), read from the installed package."""
    return resources.files(__package__).joinpath(SOURCE_FILE).read_text(encoding="utf-8")


def cache_key(source_code: str, compiler: str, flags: list, runtime: str | None) -> str:
    """The name of a build in the cache: it changes with the source text, the compiler, flags and the CPU."""
    parts = [source_code, compiler, " ".join(flags), str(runtime), _cpu_identity()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _compile() -> ctypes.CDLL:
    source_code = source_text()  # the cache key below depends on this text
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if compiler is None:
        raise RuntimeError("no C++ compiler found (g++, c++ or clang++)")
    openmp = _loaded_openmp()
    errors = []
    for flags in _FLAG_SETS:
        for runtime in ([openmp, None] if openmp else [None]):
            key = cache_key(source_code, compiler, flags, runtime)
            directory = _build_dir()
            target = os.path.join(directory, f"plastic_trial_{key}.so")
            if not os.path.exists(target):
                with tempfile.TemporaryDirectory(dir=directory) as tmp:
                    source = os.path.join(tmp, "plastic_trial.cpp")
                    with open(source, "w") as f:
                        f.write(source_code)
                    built = os.path.join(tmp, "plastic_trial.so")
                    for command in _build_commands(compiler, flags, runtime, source, built):
                        result = subprocess.run(command, capture_output=True, text=True)
                        if result.returncode != 0:
                            errors.append(f"{' '.join(command)}:\n{result.stderr.strip()[-2000:]}")
                            break
                    else:
                        os.replace(built, target)  # atomic: concurrent builders never see a partial file
                if not os.path.exists(target):
                    continue
            try:
                library = ctypes.CDLL(target)
            except OSError as error:
                errors.append(str(error))
                continue
            _declare(library)
            return library
    raise RuntimeError("could not build the trial kernel:\n" + "\n".join(errors))


def _declare(library: ctypes.CDLL) -> None:
    i64, f32, ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
    library.plastic_trial_forward.restype = None
    library.plastic_trial_forward.argtypes = [i64, i64, i64, i64] + [ptr] * 6 + [f32] * 3 + [ptr] * 17
    library.plastic_trial_backward.restype = None
    library.plastic_trial_backward.argtypes = [i64, i64, i64, i64] + [ptr] * 4 + [f32] * 3 + [ptr] * 25
    library.tanh_outer_row_for_tests.restype = None
    library.tanh_outer_row_for_tests.argtypes = [i64, f32, ptr, i64, ptr]


def library() -> ctypes.CDLL:
    """The compiled kernel (built on first use, then cached on disk). Raises RuntimeError if impossible."""
    global _library, _library_error
    with _lock:
        if _library is None and _library_error is None:
            try:
                _library = _compile()
            except Exception as error:  # noqa: BLE001 - any failure means: use the PyTorch path
                _library_error = f"{type(error).__name__}: {error}"
        if _library is None:
            raise RuntimeError(_library_error)
        return _library


GROUPS = 8  # the batch is cut into this many groups (fewer for a smaller batch), see over_batch


def _groups(batch: int) -> int:
    return max(1, min(GROUPS, batch))


def _ptr(tensor: torch.Tensor | None):
    return None if tensor is None else tensor.data_ptr()


_SHAPES = {"plastic": ("b", "n", "n"), "r0": ("b", "n"), "x1": ("b", "n"), "x2c": ("b", 2, "n"), "x3": ("b", "n"),
           "w": ("n", "n"), "alpha": ("n", "n"), "wmod": (2, "n"), "bmod": (2,), "wout": (2, "n"), "bout": (2,),
           "uniform": ("b",)}


def _check(n: int, batch: int, **tensors) -> None:
    """The kernel reads raw memory: insist on the layout it assumes."""
    if n % 8:
        raise ValueError(f"the kernel needs a multiple of 8 neurons, not {n}")
    for name, tensor in tensors.items():
        if tensor is None:
            continue
        shape = tuple({"b": batch, "n": n}.get(d, d) for d in _SHAPES[name])
        if (tensor.dtype != torch.float32 or tensor.device.type != "cpu" or not tensor.is_contiguous()
                or tuple(tensor.shape) != shape):
            raise ValueError(f"{name}: expected a contiguous float32 CPU tensor of shape {shape}, "
                             f"got {tensor.dtype} {tensor.device} {tuple(tensor.shape)}")


class PlasticTrial(torch.autograd.Function):
    """One trial through the compiled kernel (see the module docstring for the equations).

    Inputs: P (B, n, n), r0, x1 (B, n), x2c (B, 2, n), x3 (B, n), W, A (n, n), eta, DAmult (1,),
    W_mod (2, n), b_mod (2,), W_out (2, n), b_out (2,) (used for sampling only, no gradient),
    forced (B,) long or None, uniform (B,) or None, keep_middle, keep_trace (bool).
    Outputs: r1, r2, r3, P after the trial, the response (B,) long, P after step 2 (no gradient) and the
    trace H after step 3 (for the final state); the last two are empty unless kept.
    All tensors must be contiguous float32 on the CPU.
    """

    @staticmethod
    def forward(ctx, plastic, r0, x1, x2c, x3, w, alpha, eta, damult, wmod, bmod, wout, bout, forced, uniform,
                keep_middle, keep_trace):
        lib = library()
        batch, n = r0.shape
        _check(n, batch, plastic=plastic, r0=r0, x1=x1, x2c=x2c, x3=x3, w=w, alpha=alpha, wmod=wmod, bmod=bmod,
               wout=wout, bout=bout, uniform=uniform)
        if forced is not None and (forced.dtype != torch.long or not forced.is_contiguous() or forced.numel() != batch
                                   or bool(((forced != 0) & (forced != 1)).any())):
            raise ValueError("forced actions must be a contiguous long tensor of one action (0 or 1) per batch element")
        if (forced is None) == (uniform is None):
            raise ValueError("give either forced actions or uniform numbers for sampling")
        groups = _groups(batch)
        r1, r2, r3 = (r0.new_empty(batch, n) for _ in range(3))
        m2, m3 = r0.new_empty(batch), r0.new_empty(batch)
        action = torch.empty(batch, dtype=torch.long)
        end = torch.empty_like(plastic)
        middle = torch.empty_like(plastic) if keep_middle else plastic.new_empty(0)
        trace = torch.empty_like(plastic) if keep_trace else plastic.new_empty(0)
        scratch = r0.new_empty(groups, n * n + 3 * n)
        eta_value, gain = float(eta), float(damult)
        lib.plastic_trial_forward(
            batch, n, groups, torch.get_num_threads(), w.data_ptr(), alpha.data_ptr(), wout.data_ptr(),
            bout.data_ptr(), wmod.data_ptr(), bmod.data_ptr(), eta_value, gain, PLASTIC_CLIP, plastic.data_ptr(),
            r0.data_ptr(), x1.data_ptr(), x2c.data_ptr(), x3.data_ptr(), _ptr(forced), _ptr(uniform), r1.data_ptr(),
            r2.data_ptr(), r3.data_ptr(), m2.data_ptr(), m3.data_ptr(), action.data_ptr(), end.data_ptr(),
            _ptr(middle) if keep_middle else None, _ptr(trace) if keep_trace else None, scratch.data_ptr())
        ctx.save_for_backward(plastic, r0, r1, r2, r3, m2, m3, action, w, alpha, wmod, bmod)
        ctx.eta, ctx.eta_shape, ctx.damult, ctx.damult_shape = eta_value, eta.shape, gain, damult.shape
        ctx.mark_non_differentiable(action, middle)
        return r1, r2, r3, end, action, middle, trace

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_r1, g_r2, g_r3, g_end, _g_action, _g_middle, g_trace):
        plastic, r0, r1, r2, r3, m2, m3, action, w, alpha, wmod, bmod = ctx.saved_tensors
        batch, n = r0.shape
        groups = _groups(batch)
        g_r1, g_r2, g_r3 = (torch.zeros_like(r0) if g is None else g.contiguous() for g in (g_r1, g_r2, g_r3))
        g_end = torch.zeros_like(plastic) if g_end is None else g_end.contiguous()
        g_trace = None if g_trace is None or g_trace.numel() == 0 else g_trace.contiguous()
        g_plastic = torch.empty_like(plastic)
        g_r0, g_x1, g_x3 = (r0.new_empty(batch, n) for _ in range(3))
        g_x2c = r0.new_empty(batch, 2, n)
        g_w, g_alpha, g_wmod = r0.new_empty(n, n), r0.new_empty(n, n), r0.new_empty(2, n)
        g_bmod, g_damult, g_eta = r0.new_empty(2), r0.new_empty(ctx.damult_shape), r0.new_empty(ctx.eta_shape)
        scratch = r0.new_empty(groups, 3 * n * n + 7 * n + 8)
        library().plastic_trial_backward(
            batch, n, groups, torch.get_num_threads(), w.data_ptr(), alpha.data_ptr(), wmod.data_ptr(),
            bmod.data_ptr(), ctx.eta, ctx.damult, PLASTIC_CLIP, plastic.data_ptr(), r0.data_ptr(), r1.data_ptr(),
            r2.data_ptr(), r3.data_ptr(), m2.data_ptr(), m3.data_ptr(), action.data_ptr(), g_r1.data_ptr(),
            g_r2.data_ptr(), g_r3.data_ptr(), g_end.data_ptr(), _ptr(g_trace), g_plastic.data_ptr(),
            g_r0.data_ptr(), g_x1.data_ptr(), g_x2c.data_ptr(), g_x3.data_ptr(), g_w.data_ptr(),
            g_alpha.data_ptr(), g_wmod.data_ptr(), g_bmod.data_ptr(), g_damult.data_ptr(), g_eta.data_ptr(),
            scratch.data_ptr())
        return (g_plastic, g_r0, g_x1, g_x2c, g_x3, g_w, g_alpha, g_eta, g_damult, g_wmod, g_bmod,
                None, None, None, None, None, None)

"""Compile every Triton kernel of transitive/engine/gpu_kernel.py for NVIDIA GPUs, without a GPU, and report registers,
spills and the width of the element offsets.

    python tools/compile_gpu_kernels.py                 # sm_90 (H100, H200) at the default rows, sm_75 (T4) at 4
    python tools/compile_gpu_kernels.py --arch 80 --rows 16

Triton's CPU interpreter (which the tests use) checks what the kernels compute, not that they compile: this
compiles them to PTX and assembles them with the ptxas that ships in Triton's wheel, as the GPU would at the
first call. It also reads each kernel's Triton IR: the element index (program_id(0)) must be widened to 64
bits before any arithmetic, since e * (31 n^2), the offset of an element's saved P, passes 2^31 from 1,733
elements (members x batch) at n = 200. Works with Triton 3.1 onwards. Exit status 1 when a kernel fails to
compile, spills registers to memory or computes with a 32-bit element index.
"""
from __future__ import annotations

import argparse
import inspect
import os
import re
import subprocess
import sys
import tempfile

os.environ["TRITON_INTERPRET"] = "0"  # compile for real, whatever the caller's environment says

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from transitive.engine import gpu_kernel  # noqa: E402  (it imports every kernel of gpu_forward and gpu_backward)

# (kernel, compile-time switches, pointers that are not to float32): every variant the episode launches
KERNELS = [
    ("_forward_1", {}, {}),
    ("_forward_2", {"FORCED": False}, {"action_ptr": "*i64"}),
    ("_forward_2", {"FORCED": True}, {"action_ptr": "*i64", "choice_ptr": "*i64"}),
    ("_forward_3", {"MIDDLE": True}, {"middle_ptr": "*fp16"}),
    ("_forward_4", {"TRACE": True}, {}),
    ("_backward_1", {"GH3": True}, {}),
    ("_backward_2", {"GH3": True}, {}),
    ("_backward_3", {}, {"action_ptr": "*i64"}),
    ("_backward_4", {}, {"action_ptr": "*i64"}),
]
FLOATS = {"bound"}
# Triton 3.3 onwards: ASTSource(constexprs=...), and the signature lists the constexpr arguments as "constexpr";
# 3.1 and 3.2: ASTSource(constants=...) by name, and the signature leaves them out.
NEW_SOURCE = "constexprs" in inspect.signature(ASTSource.__init__).parameters


def compile_time_values(kernel, rows: int, columns: int, neurons: int, switches: dict) -> dict:
    """The values of the kernel's tl.constexpr arguments as the episode passes them."""
    values = dict(switches, BR=rows, NC=columns)
    for name in ("n", "nblocks"):
        if name in kernel.arg_names and name in constexpr_names(kernel):
            values[name] = neurons if name == "n" else triton.cdiv(neurons, rows)
    return values


def constexpr_names(kernel) -> set:
    return {p.name for p in kernel.params if p.is_constexpr}


def source_of(kernel, constants: dict, pointers: dict):
    types = {}
    for name in kernel.arg_names:
        if name in constants:
            if NEW_SOURCE:
                types[name] = "constexpr"
        elif name.endswith("_ptr"):
            types[name] = pointers.get(name, "*fp32")
        else:
            types[name] = "fp32" if name in FLOATS else "i32"
    if NEW_SOURCE:
        return ASTSource(kernel, types, constexprs={(kernel.arg_names.index(c),): v for c, v in constants.items()})
    return ASTSource(kernel, types, constants=dict(constants))


def ptxas_path() -> str:
    from triton.backends.nvidia import compiler
    if hasattr(compiler, "get_ptxas"):  # Triton 3.3 onwards (an architecture argument from 3.8)
        try:
            tool = compiler.get_ptxas(90)
        except TypeError:
            tool = compiler.get_ptxas()
        path = getattr(tool, "path", tool)
    else:  # 3.1, 3.2
        path = compiler._path_to_binary("ptxas")
    return path[0] if isinstance(path, tuple) else path


def ptxas_report(ptx: str, arch: int) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    gpu = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"
    try:
        result = subprocess.run([ptxas_path(), "-v", f"--gpu-name={gpu}", f.name, "-o", os.devnull],
                                capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return result.stderr


def narrow_uses_of_element(ttir: str) -> list[str]:
    """The operations that use the element index (program_id(0), a 32-bit value) other than its widening
    to 64 bits and its division by the batch (the member, a quotient that cannot overflow): empty when every
    element offset is computed in 64 bits."""
    found = re.search(r"(%[\w.]+) = tt\.get_program_id x : i32", ttir)
    if found is None:
        return ["program_id(0) not found"]
    name = re.escape(found.group(1))
    uses = [line.strip() for line in ttir.splitlines()
            if re.search(name + r"(?![\w.])", line) and "tt.get_program_id" not in line]
    return [use.split(" loc(")[0] for use in uses
            if not re.search(r"arith\.extsi " + name + r"(?![\w.]) : i32 to i64", use)
            and not re.search(r"arith\.divsi " + name + r", %[\w.]+ : i32", use)]


def check(arch: int, rows: int, neurons: int) -> bool:
    columns = triton.next_power_of_2(neurons)
    ok = True
    for name, switches, pointers in KERNELS:
        kernel = getattr(gpu_kernel, name)
        constants = compile_time_values(kernel, rows, columns, neurons, switches)
        name += "".join(f" {k}={v}" for k, v in switches.items())
        try:
            compiled = triton.compile(source_of(kernel, constants, pointers), target=GPUTarget("cuda", arch, 32))
        except Exception as error:  # noqa: BLE001 - report every kernel
            print(f"sm_{arch} rows {rows} {name}: FAILED to compile: {type(error).__name__}: {error}")
            ok = False
            continue
        report = ptxas_report(compiled.asm["ptx"], arch)
        registers = re.search(r"Used (\d+) registers", report)
        spills = [int(x) for x in re.findall(r"(\d+) bytes spill (?:stores|loads)", report)]
        spilled = any(spills)
        narrow = narrow_uses_of_element(compiled.asm["ttir"])
        print(f"sm_{arch} rows {rows} {name}: {registers.group(1) if registers else '?'} registers, "
              f"{'SPILLS ' + str(spills) if spilled else 'no spills'}, "
              f"{'32-bit element offsets: ' + '; '.join(narrow[:3]) if narrow else '64-bit element offsets'}")
        ok = ok and not spilled and registers is not None and not narrow
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, action="append", help="compute capability x 10, e.g. 90 (repeatable)")
    parser.add_argument("--rows", type=int, help="rows of P per program (default: 8 for sm_80 and above, 4 below)")
    parser.add_argument("--neurons", type=int, default=200, help="network size n (default 200)")
    args = parser.parse_args()
    print(f"Triton {triton.__version__}")
    ok = True
    for arch in args.arch or (90, 75):
        ok = check(arch, args.rows or (8 if arch >= 80 else 4), args.neurons) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

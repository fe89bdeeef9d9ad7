"""Compile every Triton kernel of transitive/engine/gpu_kernel.py for NVIDIA GPUs, without a GPU, and report registers and
spills.

    python tools/compile_gpu_kernels.py                 # sm_90 (H100, H200) at the default rows, sm_75 (T4) at 4
    python tools/compile_gpu_kernels.py --arch 80 --rows 16

Triton's CPU interpreter (which the tests use) checks what the kernels compute, not that they compile: this
compiles them to PTX and assembles them with the ptxas that ships in Triton's wheel, as the GPU would at the
first call. Exit status 1 when a kernel fails to compile or spills registers to memory.
"""
from __future__ import annotations

import argparse
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


def signature(kernel, constants: dict, pointers: dict) -> dict:
    types = {}
    for name in kernel.arg_names:
        if name in constants:
            types[name] = "constexpr"
        elif name.endswith("_ptr"):
            types[name] = pointers.get(name, "*fp32")
        else:
            types[name] = "fp32" if name in FLOATS else "i32"
    return types


def ptxas_report(ptx: str, arch: int) -> str:
    from triton.backends.nvidia.compiler import get_ptxas
    try:
        tool = get_ptxas(arch)
    except TypeError:  # Triton releases before 3.8 take no architecture
        tool = get_ptxas()
    path = getattr(tool, "path", tool)
    path = path[0] if isinstance(path, tuple) else path
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    gpu = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"
    try:
        result = subprocess.run([path, "-v", f"--gpu-name={gpu}", f.name, "-o", os.devnull], capture_output=True,
                                text=True)
    finally:
        os.unlink(f.name)
    return result.stderr


def check(arch: int, rows: int, columns: int) -> bool:
    ok = True
    for name, switches, pointers in KERNELS:
        kernel = getattr(gpu_kernel, name)
        constants = dict(switches, BR=rows, NC=columns)
        name += "".join(f" {k}={v}" for k, v in switches.items())
        source = ASTSource(kernel, signature(kernel, constants, pointers),
                           constexprs={(kernel.arg_names.index(c),): v for c, v in constants.items()})
        try:
            compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32))
        except Exception as error:  # noqa: BLE001 - report every kernel
            print(f"sm_{arch} rows {rows} {name}: FAILED to compile: {type(error).__name__}: {error}")
            ok = False
            continue
        report = ptxas_report(compiled.asm["ptx"], arch)
        registers = re.search(r"Used (\d+) registers", report)
        spills = [int(x) for x in re.findall(r"(\d+) bytes spill (?:stores|loads)", report)]
        spilled = any(spills)
        print(f"sm_{arch} rows {rows} {name}: {registers.group(1) if registers else '?'} registers, "
              f"{'SPILLS ' + str(spills) if spilled else 'no spills'}")
        ok = ok and not spilled and registers is not None
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, action="append", help="compute capability x 10, e.g. 90 (repeatable)")
    parser.add_argument("--rows", type=int, help="rows of P per program (default: 8 for sm_80 and above, 4 below)")
    parser.add_argument("--neurons", type=int, default=200, help="network size n (default 200)")
    args = parser.parse_args()
    columns = triton.next_power_of_2(args.neurons)
    ok = True
    for arch in args.arch or (90, 75):
        ok = check(arch, args.rows or (8 if arch >= 80 else 4), columns) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""GPU memory of a captured training episode, from the tensors it keeps: the capture peak for K members.

    python tools/memory_model.py                         # K = 1, 8, 30 at batch 32, n = 200, 30 trials
    python tools/memory_model.py --members 1 30 --gpu-gib 15

The large tensors of an episode are per-element n x n float32 matrices ("matrices" below: 160 kB at n = 200),
E = K x batch elements. Counted (tests/test_memory_model.py checks the forward's count against the tensors
autograd actually saves, on the CPU):
- kept for the backward: P at the start of every trial and after the last (the GPU kernels' `saved`, T + 1
  matrices); the final P, which the plastic-weight penalty keeps (1); with a gradient path through the blank
  steps (the captured graph always has one: its state is
  an input, zeros for a fresh start), per element 5 matrices for the first blank step (W + A * P for the
  recurrent product, the clamp's input, the clamped P, the Hebbian tanh, the new trace) and 2 for the second
  (W + A * P, the clamp's input);
- the graph's static inputs and outputs: the carried trace and P in, the final trace and P out (4);
- the backward's own: the running gradient of P and the per-element gradient of A (2); the gradient of the
  final trace is the running gradient when the loss does not use it; the column parts of every trial's
  g_r0 (T x blocks x n floats: 3.75 matrices at 8 rows per block, 7.5 at 4, the T4's default);
- outside the graph: each member's carried state (trace and P, 2) and the stacked state handed to the graph
  each episode (2).
The capture peak is one episode's forward and backward in the graphs' pool, plus the same again in the
ordinary pool when the warm-up's cached blocks are not freed before capturing (torch.cuda.make_graphed_callables
warms up and captures in one call, without emptying the cache between: the issue's "twice the steady state").
Small tensors (rates, drives, parameters, Adam's moments) are added exactly; allocator rounding is not
modelled (blocks of 2 MiB: under 1% here).
"""
from __future__ import annotations

import argparse

FLOAT = 4
BLANK_STEP_MATRICES = (5, 2)  # matrices saved by the first and the second blank step (with a gradient path)
GRAPH_INPUT_OUTPUT_MATRICES = 4  # trace and P into the graph, trace and P out of it
BACKWARD_MATRICES = 2  # the running gradient of P, the per-element gradient of A
OUTSIDE_MATRICES = 4  # the members' carried states, and the stacked state copied into the graph


def parameters_per_member(n: int, inputs: int = 37) -> int:
    """w, alpha (n x n), eta, DAmult, i2h (inputs x n + n), h2DA and h2o (2 x n + 2 each), h2v (n + 1)."""
    return 2 * n * n + 2 + (inputs + 1) * n + 2 * (2 * n + 2) + n + 1


def saved_matrices(trials: int, blank_gradient: bool = True) -> int:
    """Per element: the n x n matrices the episode's forward keeps for its backward (P at every trial start and
    after the last, the final P again for the plastic-weight penalty, and the blank steps')."""
    return trials + 1 + 1 + (sum(BLANK_STEP_MATRICES) if blank_gradient else 0)


def capture_peak(members: int, batch: int = 32, n: int = 200, trials: int = 30, warmup_freed: bool = False,
                 blank_gradient: bool = True, rows: int = 8) -> dict:
    """Bytes at the capture of the episode's graphs: {part: bytes} and 'total'. rows: rows of P per program
    of the kernels (8 from compute capability 8.0, 4 below)."""
    elements = members * batch
    matrix = elements * n * n * FLOAT
    vectors = elements * trials * (4 * n * 2 + 5 * n * 2 + 4 * 37 + 64) * FLOAT  # rates, drives, their grads
    backward = BACKWARD_MATRICES * matrix + elements * trials * -(-n // rows) * n * FLOAT  # and g_r0's parts
    episode = (saved_matrices(trials, blank_gradient) + GRAPH_INPUT_OUTPUT_MATRICES) * matrix + backward
    parts = {
        "kept for the backward": saved_matrices(trials, blank_gradient) * matrix,
        "graph inputs and outputs": GRAPH_INPUT_OUTPUT_MATRICES * matrix,
        "backward working set": backward,
        "vectors (rates, drives, gradients)": vectors,
        "carried states outside the graph": OUTSIDE_MATRICES * matrix,
        "parameters, gradients, Adam": 4 * members * parameters_per_member(n) * FLOAT,
    }
    if not warmup_freed:
        parts["warm-up blocks still cached"] = episode + vectors
    parts["total"] = sum(parts.values())
    return parts


def largest_members(gib: float, **options) -> int:
    """The largest K whose capture peak fits in `gib` GiB."""
    k = 0
    while capture_peak(k + 1, **options)["total"] <= gib * 2 ** 30:
        k += 1
    return k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 8, 30])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--neurons", type=int, default=200)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rows", type=int, default=8, help="rows of P per program (8; 4 on a T4)")
    parser.add_argument("--gpu-gib", type=float, default=14.5,
                        help="GPU memory PyTorch can use (a T4: 15 GiB less about 0.5 for the CUDA context)")
    args = parser.parse_args()
    size = dict(batch=args.batch, n=args.neurons, trials=args.trials, rows=args.rows)
    print(f"batch {args.batch}, n = {args.neurons}, {args.trials} trials; one matrix per element = "
          f"{args.neurons ** 2 * FLOAT / 1e3:.0f} kB, kept for the backward: {saved_matrices(args.trials)} per element")
    for freed in (False, True):
        for blank in (True, False):
            label = (f"warm-up blocks {'freed' if freed else 'kept'} before capture, blank steps "
                     f"{'with' if blank else 'without'} a gradient path")
            print(f"\n{label}:")
            for k in args.members:
                parts = capture_peak(k, warmup_freed=freed, blank_gradient=blank, **size)
                print(f"  K = {k:3d}: {parts['total'] / 2 ** 30:6.2f} GiB  (" + ", ".join(
                    f"{name} {value / 2 ** 30:.2f}" for name, value in parts.items() if name != "total") + ")")
            print(f"  largest K within {args.gpu_gib} GiB: "
                  f"{largest_members(args.gpu_gib, warmup_freed=freed, blank_gradient=blank, **size)}")


if __name__ == "__main__":
    main()

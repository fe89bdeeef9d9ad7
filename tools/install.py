"""Install transitive with the tested versions, without a multi-GB CUDA build of PyTorch where it is not needed.

    python tools/install.py              # PyTorch first (CPU build unless an NVIDIA GPU is found), then
                                         # `pip install -r requirements.txt` (the package, notebook, sweep and
                                         # test extras, at the versions in constraints.txt)
    python tools/install.py --keep-torch # keep the PyTorch (and Triton) already installed (Colab, clusters),
                                         # pin the rest
    python tools/install.py --no-triton  # all of it but the test extra's Triton (about 290 MB to download,
                                         # 1 GB installed), which only the GPU kernels' tests use without a
                                         # GPU (in its CPU interpreter): they are then skipped, with the reason

PyTorch. A plain `pip install torch` on Linux takes the CUDA build from PyPI. Without an NVIDIA GPU
(`nvidia-smi` absent or failing) this script installs the pinned release from PyTorch's CPU index instead,
using a copy already on this machine (pip's find-links) when there is one. With a GPU, or on macOS (where
PyPI's build is the CPU one), it installs the pinned release from PyPI. `--cpu` / `--gpu` force either.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
EXTRAS = "notebook,sweep,test"
TEST_EXTRA = "test"


def pip(*args: str, quiet: bool = False) -> bool:
    command = [sys.executable, "-m", "pip", "install", *args]
    print("+", " ".join(command), flush=True)
    output = subprocess.DEVNULL if quiet else None
    return subprocess.run(command, stdout=output, stderr=output, cwd=ROOT).returncode == 0


def pinned_torch() -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        match = re.fullmatch(r"torch==(\S+)", line.strip())
        if match:
            return match.group(1)
    sys.exit("constraints.txt pins no torch version")


def installed_torch() -> str | None:
    from importlib import metadata
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def has_nvidia_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def install_torch(version: str, build: str) -> None:
    requirement = f"torch=={version}"
    if build == "cuda":
        ok = pip(requirement)
    else:  # a local copy first (offline, quick), else PyTorch's CPU index
        ok = pip("--no-index", "--no-deps", requirement, quiet=True) or pip(requirement, "--index-url", CPU_INDEX)
    if not ok:
        sys.exit(f"could not install {requirement} ({build} build); install PyTorch as https://pytorch.org "
                 f"says, then run: python tools/install.py --keep-torch")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--cpu", action="store_true", help="install PyTorch's CPU build, whatever the machine")
    which.add_argument("--gpu", action="store_true", help="install PyTorch's default (CUDA) build from PyPI")
    which.add_argument("--keep-torch", action="store_true", help="keep the installed PyTorch; pin everything else")
    parser.add_argument("--no-triton", action="store_true",
                        help="leave out the test extra's Triton (about 290 MB to download, 1 GB installed): only the "
                             "GPU kernels' tests use it on a machine without a GPU, and they are then skipped")
    args = parser.parse_args(argv)

    version, present = pinned_torch(), installed_torch()
    if args.keep_torch:
        if present is None:
            sys.exit("--keep-torch: PyTorch is not installed")
        # PyTorch's CUDA builds come with the Triton they were built against: keep that one too
        pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines()
                if not line.startswith(("torch==", "triton=="))]
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("\n".join(pins) + "\n")
        ok = install_without_triton(f.name) if args.no_triton else pip("-c", f.name, "-e", f".[{EXTRAS}]")
        Path(f.name).unlink()
    else:
        build = "cpu" if args.cpu else "cuda" if args.gpu or sys.platform == "darwin" or has_nvidia_gpu() else "cpu"
        if present is not None and present.split("+")[0] == version and not (args.cpu or args.gpu):
            print(f"PyTorch {present} already installed")
        else:
            install_torch(version, build)
        ok = install_without_triton("constraints.txt") if args.no_triton else pip("-r", "requirements.txt")
    if not ok:
        sys.exit("installation failed (see pip's message above)")
    check_command()


def install_without_triton(constraints: str) -> bool:
    """The package with its extras, less Triton: the package with its other extras, then the test extra's
    requirements but Triton (as the installed package's metadata lists them), each pinned by `constraints`."""
    others = ",".join(extra for extra in EXTRAS.split(",") if extra != TEST_EXTRA)
    if not pip("-c", constraints, "-e", f".[{others}]"):
        return False
    import importlib
    from importlib import metadata
    importlib.invalidate_caches()
    wanted = []
    for requirement in metadata.requires("transitive") or []:
        spec, _, marker = requirement.partition(";")
        if f"extra == {TEST_EXTRA!r}" in marker.replace('"', "'") and not spec.strip().lower().startswith("triton"):
            wanted.append(spec.strip())
    print("without Triton: the GPU kernels' tests will be skipped (python tools/install.py installs it)", flush=True)
    return pip("-c", constraints, *wanted)


def check_command() -> None:
    """Make the new `transitive` command visible (pyenv needs a rehash) or say where it is."""
    import sysconfig
    scripts = Path(sysconfig.get_path("scripts"))
    if shutil.which("pyenv") is not None:  # pyenv finds new commands only after a rehash
        subprocess.run(["pyenv", "rehash"], capture_output=True)
    if shutil.which("transitive") is None:
        print(f"installed; the `transitive` command is in {scripts}, which is not on PATH: add it to PATH, or use "
              f"`python -m transitive` (the same)")
    else:
        print("installed: the `transitive` command (the same as `python -m transitive`); "
              "the tests: python -m pytest -q -n auto tests")


if __name__ == "__main__":
    main()

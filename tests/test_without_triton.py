"""Installing and testing without Triton (about 290 MB to download, 1 GB installed), which only the GPU kernels'
tests use on a machine without a GPU: `tools/install.py --no-triton` leaves it out, and those tests then skip
with a reason that says why and how to get them."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

from conftest import ROOT, TRITON_MISSING

TRITON_TESTS = ["tests/test_gpu_kernel.py", "tests/test_gpu_probe.py", "tests/test_memory_model.py"]


def installer():
    spec = importlib.util.spec_from_file_location("install", ROOT / "tools" / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def install_calls(monkeypatch, argv, requires):
    """The pip commands tools/install.py runs with `argv` (PyTorch already at the pinned version, no GPU)."""
    tools = installer()
    calls = []
    monkeypatch.setattr(tools, "pip", lambda *args, quiet=False: calls.append(args) or True)
    monkeypatch.setattr(tools, "installed_torch", tools.pinned_torch)
    monkeypatch.setattr(tools, "has_nvidia_gpu", lambda: False)
    monkeypatch.setattr(tools, "check_command", lambda: None)
    monkeypatch.setattr("importlib.metadata.requires", lambda name: requires if name == "transitive" else None)
    tools.main(argv)
    return calls


REQUIRES = ["torch>=2.1", 'pytest>=7; extra == "test"', 'ipywidgets>=8; extra == "test"',
            'triton>=3.2; platform_system == "Linux" and extra == "test"', 'submitit>=1.4; extra == "sweep"']


def test_the_ordinary_install_takes_the_requirements_file_with_triton(monkeypatch):
    assert install_calls(monkeypatch, [], REQUIRES) == [("-r", "requirements.txt")]
    assert "-e .[notebook,sweep,test]" in (ROOT / "requirements.txt").read_text()
    assert any(line.startswith("triton==") for line in (ROOT / "constraints.txt").read_text().splitlines())


def test_no_triton_installs_everything_else_pinned(monkeypatch, capsys):
    calls = install_calls(monkeypatch, ["--no-triton"], REQUIRES)
    assert calls == [("-c", "constraints.txt", "-e", ".[notebook,sweep]"),
                     ("-c", "constraints.txt", "pytest>=7", "ipywidgets>=8")]
    assert "GPU kernels' tests will be skipped" in capsys.readouterr().out


def test_without_triton_its_tests_skip_with_the_reason():
    """In a fresh Python where `import triton` fails, the Triton tests are skipped, not failed, and say why."""
    code = ("import sys; sys.modules['triton'] = None; import pytest; "
            f"sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', *{TRITON_TESTS!r}]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 5), result.stdout[-3000:] + result.stderr[-3000:]  # 5: all skipped
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == len(TRITON_TESTS), result.stdout[-3000:]
    assert all(line.endswith(TRITON_MISSING) for line in skipped)
    assert " passed" not in result.stdout and " failed" not in result.stdout and " error" not in result.stdout

"""The package as installed: its console command, its declared dependencies, the pinned set, the README's set-up."""
import ast
import re
import sys

import pytest

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
# Import name -> distribution name, where they differ.
DISTRIBUTION_OF = {"IPython": "ipython", "PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml"}
# Modules that only a particular runtime provides, imported inside a function that works without them.
RUNTIME_ONLY = {"google": "google.colab, in Colab only: main.ipynb's DRIVEFOLDER mounts Google Drive with it"}


def requirement_name(text: str) -> str:
    return re.split(r"[<>=!~;\[ ]", text, maxsplit=1)[0].strip().lower()


def third_party_imports() -> dict[str, set[str]]:
    """Top-level modules imported anywhere in the package (also inside functions) -> files importing them."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "transitive").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "transitive":
                    found.setdefault(top, set()).add(path.name)
    return found


def test_console_command_is_the_cli_main():
    assert PROJECT["scripts"] == {"transitive": "transitive.interface.cli:main"}
    from transitive.interface import cli
    assert callable(cli.main)
    main_module = (ROOT / "transitive" / "__main__.py").read_text()
    assert "from .interface.cli import main" in main_module and "sys.exit(main())" in main_module


def test_installed_entry_point_matches():
    from importlib import metadata
    points = list(metadata.entry_points(group="console_scripts", name="transitive"))
    if not points:
        pytest.skip("the package is not installed here (tools/install.py installs it)")
    assert points[0].value == "transitive.interface.cli:main"


def test_dependencies_cover_every_third_party_import():
    declared = {requirement_name(r) for r in PROJECT["dependencies"]}
    optional = {requirement_name(r) for extra in PROJECT["optional-dependencies"].values() for r in extra}
    imports = third_party_imports()
    assert {"torch", "numpy", "scipy", "matplotlib", "tqdm"} <= set(imports)  # the scan itself works
    missing = {name: files for name, files in imports.items()
               if DISTRIBUTION_OF.get(name, name).lower() not in declared | optional and name not in RUNTIME_ONLY}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    # the core runs with the required dependencies alone: optional ones are imported only inside functions
    for name in ("submitit", "IPython"):
        assert DISTRIBUTION_OF.get(name, name).lower() not in declared
    # nothing declared that the package never imports (the test and notebook tools excepted)
    unused = declared - {DISTRIBUTION_OF.get(name, name).lower() for name in imports}
    assert not unused, f"declared but never imported: {unused}"


def test_every_requirement_is_pinned_and_requirements_installs_the_extras():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    wanted = PROJECT["dependencies"] + [r for extra in ("notebook", "sweep", "test")
                                        for r in PROJECT["optional-dependencies"][extra]]
    assert {requirement_name(r) for r in wanted} <= set(pins)
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["torch"])  # no +cpu: one line for either build
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["-c constraints.txt", "-e .[notebook,sweep,test]"]
    assert "csrc/*.cpp" in PYPROJECT["tool"]["setuptools"]["package-data"]["transitive.engine"]
    assert list((ROOT / "transitive" / "engine" / "csrc").glob("*.cpp"))


def setup_blocks(readme: str) -> list[list[str]]:
    """The commands of each bash block of the README's Set-up section (comments dropped)."""
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
            for block in blocks]


def test_readme_setup_makes_a_virtual_environment_before_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    venv, commands = setup_blocks(readme)
    assert venv == ["python -m venv .venv && . .venv/bin/activate"]  # the advice comes before the install
    assert len(commands) == 2
    install, tests = commands
    assert install.startswith("python tools/install.py") and "transitive figures net_active.dat --out figures" in install
    assert tests == "python -m pytest -q -n auto tests"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == tests
    assert "python tools/install.py" in ci


def test_the_notebook_extra_opens_the_notebook_in_jupyterlab_and_runs_it_headless():
    notebook = {requirement_name(r) for r in PROJECT["optional-dependencies"]["notebook"]}
    assert {"jupyterlab", "nbconvert", "ipykernel"} <= notebook
    assert "notebook,sweep,test" in (ROOT / "requirements.txt").read_text()
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`jupyter lab main.ipynb`" in readme and "jupyter nbconvert --to notebook --execute main.ipynb" in readme


def test_readme_is_a_few_screens_with_working_links():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for heading in ("## Set-up", "## The notebooks", "## Command line", "## Figures",
                    "## Where the model lives and how to change it", "## Our trained networks"):
        assert f"\n{heading}\n" in readme, heading
    model = readme.split("## Where the model lives and how to change it\n", 1)[1].split("\n## ", 1)[0]
    assert "`PlasticNetwork.step`" in model and "--network FILE.py:Class" in model and "docs/extending.md" in model
    assert 3 <= len(model.strip().splitlines()) <= 6
    linked = set(re.findall(r"\]\(([^)#]+)\)", readme)) | set(re.findall(r'src="([^"]+)"', readme))
    assert {"docs/speed.md", "docs/provenance.md", "docs/commands.md"} <= linked
    missing = [link for link in linked if not link.startswith("http") and not (ROOT / link).exists()]
    assert not missing, missing


def test_every_subpackage_is_packaged():
    """A plain `pip install .` must ship transitive.figures and any other subpackage, not only the top."""
    setuptools = pytest.importorskip("setuptools")
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(setuptools.find_packages(str(ROOT), include=include))
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "transitive").rglob("__init__.py")}
    assert "transitive.figures" in on_disk and on_disk <= found


def test_links_between_the_documents_resolve():
    """Every relative link of README.md and docs/*.md names a file of the repository."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not link.startswith(("http://", "https://", "mailto:")) and not (page.parent / link).exists():
                broken.append(f"{page.relative_to(ROOT)}: {link}")
    assert not broken, broken

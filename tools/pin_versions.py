"""Write constraints.txt: the installed version of every package `transitive[notebook,sweep,test]` needs.

Run after upgrading a dependency and passing the tests (`python tools/pin_versions.py`); requirements.txt and
CI install through this file, so everyone gets the set that was tested. Packages are followed through their
declared requirements (with their extras' markers evaluated for this machine); torch is pinned without its
local label (+cpu), so the same line takes the CPU or the CUDA build.
"""
from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("notebook", "sweep", "test")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[str]) -> dict[str, str]:
    pinned: dict[str, str] = {}
    todo = [(Requirement(text), ()) for text in requirements]
    seen_extras: set[tuple[str, str]] = set()
    while todo:
        requirement, extras = todo.pop()
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in extras or ("",)):
            continue
        name = canonical(requirement.name)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{requirement.name} is required but not installed: install it, run the tests, then rerun")
        new_extras = [e for e in requirement.extras if (name, e) not in seen_extras]
        if name in pinned and not new_extras:
            continue
        pinned[name] = dist.version.split("+")[0]
        seen_extras.update((name, e) for e in requirement.extras)
        for text in dist.requires or ():
            todo.append((Requirement(text), tuple(requirement.extras)))
    return pinned


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in EXTRAS:
        wanted += project["optional-dependencies"][extra]
    pins = closure(wanted)
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    header = ("# Tested versions of everything transitive[notebook,sweep,test] installs (tools/pin_versions.py).\n"
              f"# Python {sys.version.split()[0]}; used by requirements.txt and .ci/run.\n")
    (ROOT / "constraints.txt").write_text(header + "\n".join(lines) + "\n")
    print(f"constraints.txt: {len(lines)} packages")


if __name__ == "__main__":
    main()

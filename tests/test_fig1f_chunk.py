"""tools/fig1f_chunk.sh, the Fig. 1f sweep in chunks on borrowed GPU machines, run end to end on the CPU
with a tiny training: a chunk on one "machine", its archives unpacked on another, a second chunk resuming
there from the checkpoints alone, then `finish`."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "fig1f_chunk.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("tar") is None,
                                reason="needs bash and tar")


def checkout(folder: Path) -> Path:
    """A folder that looks like the repository root to the script (the package and the tools, linked)."""
    folder.mkdir()
    for name in ("transitive", "tools"):
        (folder / name).symlink_to(ROOT / name)
    return folder


def chunk(folder: Path, out: Path, episodes: int) -> str:
    python = Path(sys.executable).parent  # the script calls python3: this interpreter's
    env = {**os.environ, "PATH": f"{python}:{os.environ['PATH']}", "DEVICE": "cpu", "MINUTES": "1",
           "SEEDS": "0-1", "OUT": str(out), "EXTRA": f"--episodes {episodes} --batch 4 --save-every 2"}
    done = subprocess.run(["bash", str(SCRIPT)], cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def run(folder: Path, *args) -> str:
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_chunks_resume_from_the_archived_checkpoints_alone(tmp_path):
    gpu_machine, here, out = checkout(tmp_path / "gpu"), checkout(tmp_path / "here"), tmp_path / "out"
    chunk(gpu_machine, out, episodes=3)
    archives = sorted(p.name for p in out.glob("fig1f_seeds_*.tar.gz"))
    assert archives == ["fig1f_seeds_0-1.tar.gz"]
    assert "episode 3" in run(here, "unpack", str(out))
    kept = sorted(p.relative_to(here).as_posix() for p in (here / "runs").rglob("*") if p.is_file())
    assert kept == ["runs/fig1f/seed_0/net.ckpt", "runs/fig1f/seed_1/net.ckpt"]  # checkpoints only travel

    shutil.rmtree(out)
    said = chunk(here, out, episodes=5)  # resumes both seeds at episode 3: 2 x 2 episodes trained, not 2 x 5
    assert "episode 5/5, 4 member-episodes" in said, said
    for seed in (0, 1):
        saved = torch.load(here / f"runs/fig1f/seed_{seed}/net.ckpt", map_location="cpu", weights_only=True)
        assert saved["episode"] == 5 and saved["config"]["seed"] == seed
    # the same as training 5 episodes in one go (the checkpoint at episode 3 lost nothing)
    one_go = checkout(tmp_path / "one_go")
    chunk(one_go, tmp_path / "out_one_go", episodes=5)
    for seed in (0, 1):
        resumed = torch.load(here / f"runs/fig1f/seed_{seed}/net.dat", map_location="cpu", weights_only=True)
        straight = torch.load(one_go / f"runs/fig1f/seed_{seed}/net.dat", map_location="cpu", weights_only=True)
        assert resumed.keys() == straight.keys()
        assert all(torch.equal(resumed[k], straight[k]) for k in resumed)
    (here / "runs/fig1f/seed_0/net.dat").unlink()
    assert "episode 5" in run(here, "finish")
    assert (here / "runs/fig1f/seed_0/net.dat").stat().st_size > 0
    log = (here / "runs/fig1f/seed_0/net.csv").read_text().splitlines()
    assert log[0].startswith("episode") and len(log) > 1

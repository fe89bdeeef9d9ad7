"""Fig. 1f from a sweep folder: every seed's learning curve (passive runs grey) and a per-seed summary table."""
from __future__ import annotations

import math
from pathlib import Path

from ..training.config import PARAMS_NAME
from ..training.trainer import paths_for, read_curve
from ..scale.sweep import SweepError, seed_folders

SUMMARY_COLUMNS = ("seed", "last_logged_episode", "final_percent_correct", "verdict", "agreement",
                   "near_link_accuracy", "feedback_effect_size", "delay_effect_size")


def final_accuracy(curve: list[dict], points: int = 10) -> float:
    """Mean percent correct of the last `points` logged points."""
    recent = curve[-points:]
    return sum(r["percent_correct"] for r in recent) / len(recent) if recent else float("nan")


def classify_file(params, batch: int = 200, seed: int = 0, device: str = "cpu") -> dict:
    from ..evaluation.classify import classify
    from ..model.io import load_network
    return classify(load_network(params, device), batch=batch, seed=seed)


def learning_curves(folder, out, batch: int = 200, classify: bool = True, seed: int = 0, width: int = 10,
                    classifier=None, device: str = "cpu", echo=print) -> list[dict]:
    """Plot every seed's learning curve (Fig. 1f) and write the per-seed summary table beside the figure.

    Runs classified passive are drawn grey; active ones in colour; unclear or unclassified ones in colour,
    dashed. Returns the table rows (each also has the colour used).
    """
    folders = seed_folders(folder)
    if not folders:
        raise SweepError(f"no seed_<k> folders in {folder}")
    classifier = classifier or (lambda params: classify_file(params, batch=batch, seed=seed, device=device))
    rows, curves = [], {}
    for seed, path in folders.items():
        params = path / PARAMS_NAME
        curve_path = paths_for(params)["curve"]
        curve = read_curve(curve_path) if curve_path.exists() else []
        if not curve:
            echo(f"seed {seed}: no learning curve yet, left out")
            continue
        row = {"seed": seed, "last_logged_episode": int(curve[-1]["episode"]),
               "final_percent_correct": final_accuracy(curve), "verdict": "not classified", "agreement": "",
               "near_link_accuracy": float("nan"), "feedback_effect_size": float("nan"),
               "delay_effect_size": float("nan")}
        if classify and params.exists():
            verdict = classifier(params)
            row.update(verdict=verdict["verdict"], agreement=verdict.get("agreement", ""),
                       near_link_accuracy=verdict.get("behaviour", {}).get("near_link_accuracy", float("nan")),
                       feedback_effect_size=verdict["modulation"]["feedback"]["effect_size"],
                       delay_effect_size=verdict["modulation"]["delay"]["effect_size"])
            echo(f"seed {seed}: {verdict['verdict']} ({verdict.get('agreement', '')})")
        elif classify:
            row["verdict"] = "no network file"
        rows.append(row)
        curves[seed] = curve
    if not rows:
        raise SweepError(f"no learning curves in {folder}")

    from . import plot_learning_curves
    names = {row["seed"]: f"seed {row['seed']}" for row in rows}
    verdicts = {names[row["seed"]]: row["verdict"] for row in rows} if classify else None
    fig = plot_learning_curves({names[row["seed"]]: curves[row["seed"]] for row in rows}, verdicts, width)
    fig.suptitle(f"{len(rows)} run{'s' if len(rows) != 1 else ''}" + (" (grey: passive)" if classify else ""), fontsize=9)
    for row, line in zip(rows, fig.axes[0].lines):  # the accuracy curves, in the order of the rows
        row["colour"] = line.get_color()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)

    table = out.with_suffix(".csv")
    import csv
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def format_summary(rows: list[dict]) -> str:
    def number(x, fmt):
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)
    lines = [f"{'seed':>5} {'last ep.':>9} {'final %':>8}  {'verdict':<16} {'CD/EF/CF':>8} {'d fb':>6} {'d del':>6}  how"]
    for r in rows:
        lines.append(f"{r['seed']:>5} {r['last_logged_episode']:>9} {number(r['final_percent_correct'], '.1f'):>8}  "
                     f"{r['verdict']:<16} {number(r['near_link_accuracy'], '.2f'):>8} "
                     f"{number(r['feedback_effect_size'], '+.2f'):>6} {number(r['delay_effect_size'], '+.2f'):>6}  "
                     f"{r['agreement']}")
    verdicts = [r["verdict"] for r in rows]
    lines.append(", ".join(f"{v}: {verdicts.count(v)}" for v in dict.fromkeys(verdicts)))
    return "\n".join(lines)

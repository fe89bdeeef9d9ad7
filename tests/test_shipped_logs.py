"""The shipped networks' training logs lie beside them, so that the main job draws Fig. 1f for them; the
headline key numbers (what main.ipynb's key-numbers cell shows)."""
from __future__ import annotations

import json

import pytest

from conftest import ROOT, assert_png_drawn

from transitive.evaluation import keynumbers
from transitive.training.trainer import read_curve

SHIPPED = ("net_active", "net_passive")


def test_the_main_job_draws_the_learning_curve_of_a_shipped_network(tmp_path, monkeypatch, capsys):
    """`transitive figures net_active.dat --out figures`, run from the repository root, finds net_active.csv."""
    from transitive.interface.cli import main
    monkeypatch.chdir(ROOT)
    out = tmp_path / "figures"
    assert main(["figures", "net_active.dat", "--out", str(out), "--only", "curve", "--threads", "1"]) == 0
    assert "nothing to plot" not in capsys.readouterr().out
    assert_png_drawn(out / "learning_curve.png")


def test_each_shipped_network_has_its_whole_training_log_beside_it_and_only_there():
    for name in SHIPPED:
        rows = read_curve(ROOT / f"{name}.csv")
        assert rows[0]["episode"] == 0 and rows[-1]["episode"] >= 29_990, name
        assert {"episode", "percent_correct"} <= set(rows[-1])
    assert not list((ROOT / "runs").glob("*/net_*.csv"))  # one copy of each log


def test_the_readme_promises_of_the_learning_curve_match_the_shipped_logs():
    """The modulation panel below the accuracy needs the log's modulation columns, which the shipped logs
    (written before those columns existed) lack: the README must say so."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    for name in SHIPPED:
        header = (ROOT / f"{name}.csv").read_text().splitlines()[0].split(",")
        if "modulation_delay" not in header:
            assert "shipped networks' logs predate the modulation columns" in readme


def test_the_headline_numbers_are_a_short_table_of_the_runs_made():
    numbers = json.loads((ROOT / "runs" / "active" / "evaluation" / "key_numbers.json").read_text())
    rows = keynumbers.headline(numbers)
    assert 12 <= len(rows) <= 22
    shown = {what: value for what, value, _ in rows}
    assert shown["standard test accuracy (trials 21-30)"] == f"{numbers['standard']['test_accuracy']:.3f}"
    assert shown["list linking: across-list accuracy vs sham (Fig. 3a, 3b)"] == "0.877 vs 0.504"
    unlinked = {key: value for key, value in numbers.items() if key not in ("linking", "sham")}
    assert len(keynumbers.headline(unlinked)) == len(rows) - 2  # the linking rows need the linking runs
    table = keynumbers.headline_markdown(numbers)
    assert table.count("\n") == len(rows) + 2 and table.startswith("| | net_active.dat | published")
    full = keynumbers.markdown(numbers)
    assert full.index("## Headline numbers") < full.index("## Every number") < full.index("| standard.test_accuracy |")


def test_the_recoded_fit_row_says_whether_the_fit_converged_and_the_figures_are_valid():
    for loss, verdict in ((-900.0, ": converged, figures valid"), (-795.0, ": within 1% of it, converged, figures valid"),
                          (-700.0, ": not converged, figures from it are unreliable")):
        numbers = {"recoded": {"fit": {"loss": loss, "target": -800.0}}}
        (row,) = keynumbers.headline(numbers)
        assert row[1] == f"loss {loss:.1f}, convergence target -800.0 (lower is better){verdict}"


@pytest.mark.parametrize("rewarded, unrewarded, said", [(0.64, -3.03, "the paper's"), (-0.80, 2.79, "opposite"),
                                                        (0.0, 0.0, "cannot tell")])
def test_the_headline_says_which_sign_convention_m_landed_on(rewarded, unrewarded, said):
    numbers = {"standard": {"modulation": {"delay": {"mean_rewarded": rewarded, "mean_unrewarded": unrewarded}}}}
    rows = {what: value for what, value, _ in keynumbers.headline(numbers)}
    sign = next(value for what, value in rows.items() if what.startswith("sign convention of m(t)"))
    assert sign.startswith(said)
    assert "arbitrary" in next(what for what in rows if what.startswith("sign convention"))

"""The numbers the figures show, from whatever runs have been made (nothing new is run), as JSON and as a
Markdown table. Trials are numbered 1-30 and steps named (stimulus, response, feedback, delay) as in the
paper."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import analysis, stats
from .task import STEP_NAMES

PCA_TRIAL, VIOLIN_TRIAL, FIG6_TRIAL = 19, 4, 18  # 0-based, as in the figure functions


def _by_item(values) -> dict:
    return dict(zip(stats.item_letters(len(values)), [float(v) for v in values]))


def _standard(runs) -> dict:
    run = runs.standard
    behaviour = stats.behaviour(run.test_pairs, run.test_correct).as_dict()
    result = {"episodes": behaviour.pop("episodes"), "test_accuracy": behaviour.pop("accuracy"), **behaviour}
    result["end_anchor"] = stats.end_anchor(result["accuracy_by_pair"])
    result["modulation"] = stats.modulation_summary(run.modulation, run.feedback)
    result[f"cuecorrs_trial{PCA_TRIAL + 1}"] = _by_item(run.alignment[PCA_TRIAL][:, 0].mean(0))
    violin = stats.modulation_by_reward(run.modulation, run.feedback, VIOLIN_TRIAL)
    result[f"violin_trial{VIOLIN_TRIAL + 1}"] = {
        step: {"mean_rewarded": _mean(v["values"][1]), "mean_unrewarded": _mean(v["values"][-1]),
               "mann_whitney_p": v["p"]} for step, v in violin.items()}
    result[f"similarity_preservation_trial{PCA_TRIAL + 1}"] = analysis.similarity_summary(run.similarity)
    pca = analysis.pca(run.trial_rates(PCA_TRIAL)[:, 1], runs.net.output_direction.detach().cpu())
    result[f"pca_response_step_trial{PCA_TRIAL + 1}"] = {
        "pc1_wout_corr": pca["pc1_wout_corr"], "explained_variance": pca["explained"].tolist()}
    return result


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _withheld(run, pair, add_pair=None) -> dict:
    alignment = run.alignment[FIG6_TRIAL][stats.first_shown_at(run.pairs, FIG6_TRIAL, pair, add_pair)]
    changes = analysis.alignment_changes(alignment.numpy())
    return {"episodes": changes["episodes"], "change_at_feedback_step": _by_item(changes["change_feedback"]),
            "change_at_delay_step": _by_item(changes["change_delay"])}


def _recoded(runs) -> dict:
    from .panels import by_order
    from .representations import pearson
    fit, run = runs.recoded, runs.standard
    cos = analysis.reinstatement(run.trial_rates(FIG6_TRIAL), fit.v1)
    split = by_order(run, cos, FIG6_TRIAL)
    corr = pearson(run.trial_rates(FIG6_TRIAL), fit.v2).numpy()
    response = run.response[:, FIG6_TRIAL].numpy()
    return {
        "fit": {"loss": fit.loss, "target": fit.target, "attempts": fit.attempts, "mean_cosine": fit.mean_cosine,
                "sign_flipped": fit.sign_flipped},
        f"fig7b_response_step_trial{FIG6_TRIAL + 1}": {
            order: {"episodes": len(v), **_by_item(v[:, 1].mean(0))} for order, v in split.items() if len(v)},
        f"edfig3_trial{FIG6_TRIAL + 1}": {
            name: dict(zip(STEP_NAMES, corr[mask].mean(0).tolist()))
            for name, mask in (("choose1", response > 0), ("choose2", response < 0)) if mask.any()},
    }


def key_numbers(runs, network: str | None = None) -> dict:
    """Key numbers of every run made so far; `network`: the parameter file's name, recorded in the settings."""
    settings = runs.settings
    numbers = {"settings": {"batch": settings.batch, "linking_batch": settings.linking_batch or 2 * settings.batch,
                            "seed": settings.seed, "experiment": settings.experiment}}
    if network is not None:
        numbers["settings"] = {"network": network, **numbers["settings"]}
    done = runs.done()
    if "standard" in done:
        numbers["standard"] = _standard(runs)
    if "withheld" in done:
        numbers[f"fig6_first_shown_trial{FIG6_TRIAL + 1}"] = _withheld(runs.withheld, settings.barred_pair)
    if "withheld_added" in done:
        numbers[f"fig6_add_first_shown_trial{FIG6_TRIAL + 1}"] = _withheld(runs.withheld_added, settings.barred_pair,
                                                                          settings.add_barred_pair)
    if "recoded" in done:
        numbers["recoded"] = _recoded(runs)
    for name in ("linking", "sham"):
        if name in done:
            run = getattr(runs, name)
            numbers[name] = stats.linking(run.pairs[:, -1], run.correct[:, -1]).as_dict()
    if "massed" in done:
        run = runs.massed
        numbers["massed"] = {"massed_trials": settings.massed_trials,
                             **stats.behaviour(run.test_pairs, run.test_correct).as_dict()}
    if "only_two_last_adjacent" in done:
        run = runs.only_two_last_adjacent
        numbers["only_two_last_adjacent"] = stats.behaviour(run.test_pairs, run.test_correct, nbcues=7).as_dict()
    if "toy" in done:
        numbers["toy_model"] = {rule: {"mean_corr_without": float(r["correlation"][False].mean()),
                                       "mean_corr_with": float(r["correlation"][True].mean()),
                                       "mann_whitney_p": r["p"]} for rule, r in runs.toy.items()}
    return numbers


def write_key_numbers(runs, out, network: str | None = None) -> list[Path]:
    """key_numbers.json and key_numbers.md in the folder `out` (`network`: the parameter file's name)."""
    numbers = key_numbers(runs, network)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "key_numbers.json", out / "key_numbers.md"]
    paths[0].write_text(json.dumps(numbers, indent=1, default=_jsonable) + "\n")
    paths[1].write_text(markdown(numbers))
    return paths


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _rows(prefix: str, value, rows: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _rows(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, (list, tuple)):
        rows.append((prefix, ", ".join(_format(v) for v in value)))
    else:
        rows.append((prefix, _format(value)))


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value)


def markdown(numbers: dict) -> str:
    rows: list = []
    _rows("", numbers, rows)
    lines = ["# Key numbers", "", "Trials are numbered 1-30 and the steps of a trial named stimulus, response, feedback "
             "and delay (the paper's steps 1-4). Accuracies are fractions of trials.", "",
             "| quantity | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"

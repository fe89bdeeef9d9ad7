"""The numbers the figures show, and those the original notebook prints next to them, from whatever runs have
been made (nothing new is run), as JSON and as a Markdown table. Trials are numbered 1-30 and steps named
(stimulus, response, feedback, delay) as in the paper.

`PRINTED` maps a figure to the numbers the original prints in its cell; main.ipynb prints them under the
figure (`printed(runs, name)`), and `key_numbers` writes the same values.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..model.task import DELAY, FEEDBACK, ITEMS, LETTERS, RESPONSE, STEP_NAMES, STIMULUS
from . import analysis, stats
from .item_representations import fit_summary
from .choices import CHANGE_TRIAL, CROSS_DECODING_TRIALS, CUE_TRIAL, SIGN_TRIAL, VIOLIN_TRIAL, caption_trial


def _by_item(values) -> dict:
    return dict(zip(stats.item_letters(len(values)), [float(v) for v in values]))


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


# ---------------------------------------------------------------------------------------------------------
# What the original prints next to a figure.

def _sde(run) -> dict:
    """Fig. 2a (or 3a, 3b): median accuracy per pair over the 10 splits, and the trials scored per pair."""
    return stats.pair_medians_and_counts(run.test_pairs, run.test_correct, nbcues=run.nbcues)


def _cross_step_decoding(run) -> dict:
    """Cross-step decoding: 'item 1 is D' decoded from r at the response step by a decoder fitted on the
    stimulus step, per trial."""
    values = analysis.cross_step_decoding(run, trials=[t for t in CROSS_DECODING_TRIALS if t < run.ntrials],
                                          train_step=STIMULUS, test_step=RESPONSE)
    return {f"trial{t + 1}": v for t, v in values.items()}


def _delay_sign(run) -> dict:
    """The fraction of episodes whose m(t) at the delay step of trial 19 is negative."""
    m = run.modulation[:, CHANGE_TRIAL * 4 + DELAY]
    return {f"fraction_negative_m_delay_step_trial{CHANGE_TRIAL + 1}": float((m < 0).float().mean())}


def _recoded_response(runs) -> dict:
    """How w~_out shows in r at the feedback step, against the response and correctness (trials 19 and 6)."""
    run, fit = runs.main, runs.recoded
    return {f"trial{t + 1}_feedback_step": analysis.recoded_output_vs_response(
        run.trial_rates(t)[:, FEEDBACK], fit.v2, run.response[:, t], run.correct[:, t])
        for t in (CHANGE_TRIAL, SIGN_TRIAL)}


def _last_two_adjacent(run) -> dict:
    return {"last_two_trials_adjacent_accuracy": stats.adjacent_accuracy(run.pairs[:, -2:], run.correct[:, -2:])}


PRINTED = {
    "SDE": lambda runs: _sde(runs.main),
    "SDE_LINKEDLISTS": lambda runs: _sde(runs.linking),
    "SDE_LINKEDLISTS_SHAM": lambda runs: _sde(runs.sham),
    "PCA": lambda runs: analysis.weight_correlations(runs.net),
    "decoding": lambda runs: {"cross_step_decoding_item1_is_D": _cross_step_decoding(runs.main)},
    "adaptedwo": lambda runs: {"recoded_output_vs_response": _recoded_response(runs)},
    "psitildetodeltapsi": lambda runs: _delay_sign(runs.main),
    "only_two_last_adjacent": lambda runs: _last_two_adjacent(runs.only_two_last_adjacent),
}


def printed(runs, name: str) -> str:
    """The numbers the original prints next to figure `name`, one per line, in the paper's numbering."""
    rows: list = []
    _rows("", plain(PRINTED[name](runs)), rows)
    return "\n".join(f"{key}: {value}" for key, value in rows)


# ---------------------------------------------------------------------------------------------------------
# The key numbers of each run.

def evaluation(runs, run) -> dict:
    """The selected experiment's run (standard or massed): behaviour, and the numbers of Figs. 2, 4, 5."""
    behaviour = stats.behaviour(run.test_pairs, run.test_correct).as_dict()
    result = {"episodes": behaviour.pop("episodes"), "test_accuracy": behaviour.pop("accuracy"), **behaviour}
    result["end_anchor"] = stats.end_anchor(result["accuracy_by_pair"])
    result["sde_splits"] = _sde(run)
    result["modulation"] = stats.modulation_summary(run.modulation, run.feedback)
    result.update(_delay_sign(run))
    result[f"cuecorrs_trial{CUE_TRIAL + 1}"] = _by_item(run.alignment[CUE_TRIAL][:, STIMULUS].mean(0))
    violin = stats.modulation_by_reward(run.modulation, run.feedback, VIOLIN_TRIAL)
    result[f"violin_trial{VIOLIN_TRIAL + 1}"] = {
        step: {"mean_rewarded": _mean(v["values"][1]), "mean_unrewarded": _mean(v["values"][-1]),
               "mann_whitney_p": v["p"]} for step, v in violin.items()}
    result[f"similarity_preservation_trial{CUE_TRIAL + 1}"] = analysis.similarity_summary(run.similarity[CUE_TRIAL])
    pca = analysis.pca(run.trial_rates(CUE_TRIAL)[:, RESPONSE], runs.net.output_direction.detach().cpu())
    result[f"pca_response_step_trial{CUE_TRIAL + 1}"] = {
        "pc1_wout_corr": pca["pc1_wout_corr"], "explained_variance": pca["explained"].tolist()}
    result["cross_step_decoding_item1_is_D"] = _cross_step_decoding(run)
    return result


def withheld(run, pair, add_pair=None) -> dict:
    """Fig. 6 (Extended Data Fig. 2): the change of the items' alignment at the feedback and delay steps of the
    trial where `pair` is first shown (and `add_pair` never before)."""
    alignment = run.alignment[CHANGE_TRIAL][stats.first_shown_at(run.pairs, CHANGE_TRIAL, pair, add_pair)]
    changes = analysis.alignment_changes(alignment.numpy())
    return {"episodes": changes["episodes"], "change_at_feedback_step": _by_item(changes["change_feedback"]),
            "change_at_delay_step": _by_item(changes["change_delay"])}


def linking(runs, run) -> dict:
    """List linking or sham: the scores of the last trial."""
    return {**stats.linking(run.pairs[:, -1], run.correct[:, -1]).as_dict(), "sde_splits": _sde(run)}


def only_two_last_adjacent(runs, run) -> dict:
    return {**stats.behaviour(run.test_pairs, run.test_correct, nbcues=7).as_dict(), **_last_two_adjacent(run)}


def _recoded(runs) -> dict:
    from .item_representations import pearson
    fit, run = runs.recoded, runs.main
    cos = analysis.reinstatement(run.trial_rates(CHANGE_TRIAL), fit.v1)
    split = analysis.by_order(run, cos, CHANGE_TRIAL)
    corr = pearson(run.trial_rates(CHANGE_TRIAL), fit.v2).numpy()
    response = run.response[:, CHANGE_TRIAL].numpy()
    return {
        "fit": {"loss": fit.loss, "target": fit.target, "attempts": fit.attempts, "mean_cosine": fit.mean_cosine,
                "sign_flipped": fit.sign_flipped},
        f"fig7b_response_step_trial{CHANGE_TRIAL + 1}": {
            order: {"episodes": len(v), **_by_item(v[:, 1].mean(0))} for order, v in split.items() if len(v)},
        f"edfig3_trial{CHANGE_TRIAL + 1}": {
            name: dict(zip(STEP_NAMES, corr[mask].mean(0).tolist()))
            for name, mask in (("choose1", response > 0), ("choose2", response < 0)) if mask.any()},
        "recoded_output_vs_response": _recoded_response(runs),
    }


def key_numbers(runs, network: str | None = None) -> dict:
    """Key numbers of every run made so far; `network`: the parameter file's name, recorded in the settings."""
    settings = runs.settings
    numbers = {"settings": {"batch": settings.batch, "linking_batch": settings.linking_episodes,
                            "seed": settings.seed, "experiment": settings.experiment}}
    if network is not None:
        numbers["settings"] = {"network": network, **numbers["settings"]}
    numbers["network"] = analysis.weight_correlations(runs.net)
    for experiment, run in runs.made():  # in the registry's order (transitive.evaluation.experiments)
        numbers[experiment.number_key] = experiment.numbers(runs, run)
    done = runs.done()
    if "recoded" in done:
        numbers["recoded"] = _recoded(runs)
    if "toy" in done:
        numbers["toy_model"] = {rule: {"mean_corr_without": float(r["correlation"][False].mean()),
                                       "mean_corr_with": float(r["correlation"][True].mean()),
                                       "mann_whitney_p": r["p"]} for rule, r in runs.toy.items()}
    return numbers


def plain(value):
    """Numbers as written: floats to 12 significant digits (the last bits of a least-squares fit may differ
    from one process to the next), NaN (e.g. a pair never shown) as None, numpy scalars and arrays as Python's."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float):
        return None if value != value else float(f"{value:.12g}")
    return value


def write_key_numbers(runs, out, network: str | None = None) -> list[Path]:
    """key_numbers.json and key_numbers.md in the folder `out` (`network`: the parameter file's name)."""
    numbers = plain(key_numbers(runs, network))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "key_numbers.json", out / "key_numbers.md"]
    paths[0].write_text(json.dumps(numbers, indent=1) + "\n")
    paths[1].write_text(markdown(numbers))
    return paths


def _rows(prefix: str, value, rows: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _rows(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, (list, tuple)):
        rows.append((prefix, ", ".join(_format(v) for v in value)))
    else:
        rows.append((prefix, _format(value)))


def _format(value) -> str:
    if value is None or value != value:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value)


def markdown(numbers: dict) -> str:
    """key_numbers.md: the headline numbers, then every number (one row per value of key_numbers.json)."""
    rows: list = []
    _rows("", numbers, rows)
    lines = ["# Key numbers", "", "Trials are numbered 1-30 and the steps of a trial named stimulus, response, feedback "
             "and delay (the paper's steps 1-4). Accuracies are fractions of trials.", "",
             "## Headline numbers", "", headline_markdown(numbers), "## Every number", "",
             "| quantity | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# The headline numbers: the paper's main results, one row each, with the published values where the paper
# (or its released networks) gives them, as "active / passive".

def _get(numbers: dict, path: str):
    value = numbers
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _fmt(value, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.3f}"


def _joined(numbers: dict, paths, sep: str = " / ", signed: bool = False):
    values = [_get(numbers, path) for path in paths]
    return None if all(v is None for v in values) else sep.join(_fmt(v, signed) for v in values)


def _letters(numbers: dict, path: str, letters, signed: bool = True):
    found = _get(numbers, path)
    return None if not found else ", ".join(f"{k} {_fmt(found.get(k), signed)}" for k in letters)


def _fit(numbers: dict):
    fit = _get(numbers, "recoded.fit")
    if not fit or fit.get("loss") is None:
        return None
    return fit_summary(fit["loss"], fit["target"])


def _sign(numbers: dict):
    delay = _get(numbers, "standard.modulation.delay")
    if not delay:
        return None
    sign = stats.sign_from_means(delay.get("mean_rewarded"), delay.get("mean_unrewarded"))
    return {"same": "the paper's", "opposite": "opposite to the paper's: read this network's m(t) negated",
            None: "cannot tell: m(t) at the delay step does not depend on the reward"}[sign]


# (what, its value from the key numbers or None when that run was not made, published active / passive)
HEADLINES = (
    ("standard test accuracy (trials 21-30)", lambda n: _joined(n, ["standard.test_accuracy"]), "0.91 / 0.82"),
    ("adjacent / non-adjacent pairs", lambda n: _joined(n, ["standard.adjacent_accuracy",
                                                             "standard.nonadjacent_accuracy"]),
     "0.86 / 0.93; 0.77 / 0.83"),
    ("accuracy at symbolic distance 1 ... 7 (Fig. 2a)",
     lambda n: _joined(n, [f"standard.accuracy_by_distance.{d}" for d in range(1, 8)], sep=", "), "0.86 ... 1.00 / -"),
    ("end anchors: AB, GH vs CD, DE, EF", lambda n: _joined(n, ["standard.end_anchor.end_pairs_AB_GH",
                                                                 "standard.end_anchor.middle_pairs_CD_DE_EF"],
                                                             sep=" vs "), "0.92 vs 0.82 / -"),
    ("list linking: across-list accuracy vs sham (Fig. 3a, 3b)",
     lambda n: _joined(n, ["linking.across_list_accuracy", "sham.across_list_accuracy"], sep=" vs "),
     "0.87 vs 0.52 / fails vs 0.55"),
    ("after linking: CD, EF, CF", lambda n: _letters(n, "linking.accuracy_by_pair", ("CD", "EF", "CF"), signed=False),
     "- / far below chance"),
    ("sign convention of m(t) (arbitrary: m(t) and A negated make the same network)", _sign, "-"),
    ("m(t) at the feedback step (3): rewarded vs unrewarded",
     lambda n: _joined(n, ["standard.modulation.feedback.mean_rewarded", "standard.modulation.feedback.mean_unrewarded"],
                       sep=" vs ", signed=True), "- / -0.15 vs +1.51"),
    ("m(t) at the delay step (4): rewarded vs unrewarded (Fig. 5)",
     lambda n: _joined(n, ["standard.modulation.delay.mean_rewarded", "standard.modulation.delay.mean_unrewarded"],
                       sep=" vs ", signed=True), "+0.65 vs -3.03 / -"),
    (f"fraction of episodes with m(t) < 0 at the delay step of trial {caption_trial(CHANGE_TRIAL)}",
     lambda n: _joined(n, [f"standard.fraction_negative_m_delay_step_trial{CHANGE_TRIAL + 1}"]), ""),
    (f"item alignment at trial {CUE_TRIAL + 1}, A ... H (Fig. 4b)",
     lambda n: _letters(n, f"standard.cuecorrs_trial{CUE_TRIAL + 1}", LETTERS[:ITEMS]), ""),
    (f"PC1 of r at the response step vs the output direction, trial {CUE_TRIAL + 1} (Fig. 4a)",
     lambda n: _joined(n, [f"standard.pca_response_step_trial{CUE_TRIAL + 1}.pc1_wout_corr"]), ""),
    (f"similarity preservation at trial {CUE_TRIAL + 1} (mean)",
     lambda n: _joined(n, [f"standard.similarity_preservation_trial{CUE_TRIAL + 1}.mean"]), "0.22 / 0.35"),
    (f"Fig. 6: change of alignment at the feedback step (D, E first shown at trial {caption_trial(CHANGE_TRIAL)})",
     lambda n: _letters(n, f"fig6_first_shown_trial{CHANGE_TRIAL + 1}.change_at_feedback_step", "CDEF"), ""),
    ("Fig. 6: the same at the delay step (the active solution: the neighbours C, F follow)",
     lambda n: _letters(n, f"fig6_first_shown_trial{CHANGE_TRIAL + 1}.change_at_delay_step", "CDEF"), ""),
    *((f"Extended Data Fig. 2{panel}: the same with {pair} first shown", lambda n, panel=panel, near=near: _letters(
        n, f"edfig2{panel}_first_shown_trial{CHANGE_TRIAL + 1}.change_at_delay_step", near), "")
      for panel, pair, near in (("a", "C, D", "BCDE"), ("b", "E, F", "DEFG"))),
    ("recoded representations (Figs. 7, 8): the fit", _fit, ""),
    ("massed presentation: test accuracy", lambda n: _joined(n, ["massed.test_accuracy"]) or
     _joined(n, ["massed.accuracy"]), ""),
    ("only two last adjacent: accuracy on the last two trials",
     lambda n: _joined(n, ["only_two_last_adjacent.last_two_trials_adjacent_accuracy"]), ""),
)


def headline(numbers: dict) -> list[tuple[str, str, str]]:
    """(what, this network's value, published active / passive) for each headline number of the runs made
    (`numbers`: key_numbers.json's content)."""
    rows = []
    for what, value, published in HEADLINES:
        shown = value(numbers)
        if shown is not None:
            rows.append((what, shown, published))
    return rows


def headline_markdown(numbers) -> str:
    """The headline numbers as a Markdown table; `numbers`: key_numbers.json's content or its path."""
    if not isinstance(numbers, dict):
        numbers = json.loads(Path(numbers).read_text())
    network = _get(numbers, "settings.network")
    lines = [f"| | {network or 'this network'} | published (active / passive) |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {published} |" for what, value, published in headline(numbers)]
    return "\n".join(lines) + "\n"

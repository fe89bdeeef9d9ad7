"""Is a trained network "active" or "passive"? Two independent indicators and one documented rule.

The paper finds two kinds of solutions among meta-trained networks (Miconi & Kay 2024, Fig. 1f, Fig. 3,
Fig. 5, ED Fig. 1):

- active: m(t) at the feedback step of a trial (the paper's step 3, reward perceived) is negative whatever
  the reward, and the learning that depends on the outcome happens at the delay step (step 4), where m(t)
  follows the reward. These networks reinstate related items and can link two separately learned lists.
- passive: the outcome-dependent learning happens at the feedback step itself (m(t) there follows the
  reward); the delay step carries little. These networks learn each list but break the pairs around the
  link when two lists are joined.

Indicator 1, behaviour (list linking, docs/method.md "Experiments"). Run list linking and sham linking;
score the last trial. Numbers: accuracy on across-list pairs in both conditions, and the accuracy on the
pairs just around the link, CD, EF and CF (pooled), in the linking condition.
    - no verdict ("unclear") unless linking works at all: across-list accuracy >= 0.70 and at least 0.15
      above sham (otherwise the network has not learned the task well enough for the test to mean much);
    - "passive" when the pooled CD/EF/CF accuracy is below 0.30 (far below chance);
    - "active" when it is 0.40 or more (the paper's active network: about 0.55);
    - "unclear" in between.

Indicator 2, m(t) (standard evaluation). For the feedback and the delay step of every trial, compare m(t)
after rewarded and unrewarded responses with a standardised effect size,
    d = (mean m | rewarded - mean m | unrewarded) / pooled standard deviation   (Cohen's d),
one for the feedback step (d feedback) and one for the delay step (d delay).
    - "unclear" when m(t) hardly depends on the reward at either step: max(|d feedback|, |d delay|) < 1.0;
    - "active" when |d delay| >= 1.5 |d feedback| and the mean m at the feedback step has the same sign
      after rewarded and unrewarded trials (in the paper's active network both are negative);
    - "passive" when |d feedback| >= 1.5 |d delay|;
    - "unclear" otherwise.
The sign of d is not used: the sign of m(t) that means "strengthen" depends on the learned weights.

Overall: "unclear" for a network that has not learned the task (standard test accuracy below 0.65: both
kinds of solution are defined for trained networks only, and an untrained network's m(t) can follow the
reward input by accident). Otherwise the common verdict when the indicators agree; when one is "unclear"
the other decides (reported as agreement "behaviour only" or "m(t) only"); "unclear" when one says active
and the other passive.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ..model.network import PlasticNetwork
from ..model.task import DELAY, FEEDBACK, STEP_NAMES, STEPS_PER_TRIAL
from . import stats
from .runs import Run, Runs, Settings

NEAR_LINK_PAIRS = ("CD", "EF", "CF")  # pairs around the link D-E, within and across the two lists


@dataclass(frozen=True)
class Rule:
    """Thresholds of the classification rule (see the module docstring)."""

    min_across_list: float = 0.70  # linking must work for behaviour to tell anything
    min_link_gain: float = 0.15  # across-list accuracy, linking minus sham
    passive_below: float = 0.30  # pooled CD/EF/CF accuracy after linking
    active_from: float = 0.40
    min_effect: float = 1.0  # max(|d2|, |d3|) below this: m(t) does not follow the reward
    min_test_accuracy: float = 0.65  # standard evaluation, test trials: below this, no overall verdict
    dominance: float = 1.5  # the larger of |d2|, |d3| must be this many times the smaller


# ---------------------------------------------------------------------------------------------------------
# Numbers.

def effect_size(rewarded: torch.Tensor, unrewarded: torch.Tensor) -> float:
    """Cohen's d (pooled standard deviation) of rewarded minus unrewarded; nan if a group has < 2 values."""
    n1, n0 = rewarded.numel(), unrewarded.numel()
    if n1 < 2 or n0 < 2:
        return float("nan")
    rewarded, unrewarded = rewarded.double(), unrewarded.double()
    difference = (rewarded.mean() - unrewarded.mean()).item()
    pooled = (((n1 - 1) * rewarded.var() + (n0 - 1) * unrewarded.var()) / (n1 + n0 - 2)).sqrt().item()
    if pooled == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / pooled


def modulation_numbers(run: Run) -> dict:
    """m(t) at the feedback and delay steps of every trial, split by the trial's reward (the reward input
    at the feedback step), from a standard evaluation."""
    modulation = run.modulation.float()
    rewarded = run.feedback[:, FEEDBACK::STEPS_PER_TRIAL] > 0
    result = {}
    for step in (FEEDBACK, DELAY):
        m = modulation[:, step::STEPS_PER_TRIAL]  # (batch, ntrials)
        after_reward, after_error = m[rewarded], m[~rewarded]
        result[STEP_NAMES[step]] = {
            "mean_rewarded": _mean(after_reward), "mean_unrewarded": _mean(after_error),
            "sd_rewarded": _sd(after_reward), "sd_unrewarded": _sd(after_error),
            "n_rewarded": after_reward.numel(), "n_unrewarded": after_error.numel(),
            "negative_fraction": (m < 0).float().mean().item(),
            "effect_size": effect_size(after_reward, after_error),
        }
    return result


def behaviour_numbers(linked: dict, sham: dict) -> dict:
    """From `linking_summary` of list linking and of sham linking."""
    pairs = linked["accuracy_by_pair"]
    near_counts = linked.get("count_by_pair", {})
    near = [pairs[p] for p in NEAR_LINK_PAIRS]
    counts = [near_counts.get(p) for p in NEAR_LINK_PAIRS]
    if all(c is not None for c in counts) and sum(counts) > 0:
        pooled = sum(a * c for a, c in zip(near, counts) if c) / sum(counts)
    else:
        finite = [a for a in near if not math.isnan(a)]
        pooled = sum(finite) / len(finite) if finite else float("nan")
    return {
        "across_list_linking": linked["across_list_accuracy"],
        "across_list_sham": sham["across_list_accuracy"],
        "link_gain": linked["across_list_accuracy"] - sham["across_list_accuracy"],
        "near_link_accuracy": pooled,
        "near_link_trials": sum(c for c in counts if c) if all(c is not None for c in counts) else None,
        **{f"accuracy_{p}": a for p, a in zip(NEAR_LINK_PAIRS, near)},
        "linking_episodes": linked["episodes"],
    }


def _mean(values: torch.Tensor) -> float:
    return values.double().mean().item() if values.numel() else float("nan")


def _sd(values: torch.Tensor) -> float:
    return values.double().std().item() if values.numel() > 1 else float("nan")


# ---------------------------------------------------------------------------------------------------------
# The rule.

def behaviour_verdict(numbers: dict, rule: Rule = Rule()) -> tuple[str, str]:
    across, gain, near = numbers["across_list_linking"], numbers["link_gain"], numbers["near_link_accuracy"]
    if any(math.isnan(x) for x in (across, gain, near)):
        return "unclear", "missing numbers"
    if across < rule.min_across_list or gain < rule.min_link_gain:
        return "unclear", (f"no list linking to judge (across-list {across:.2f}, {gain:+.2f} over sham; "
                           f"needs >= {rule.min_across_list:.2f} and >= +{rule.min_link_gain:.2f})")
    if near < rule.passive_below:
        return "passive", f"CD/EF/CF after linking {near:.2f} < {rule.passive_below:.2f}: far below chance"
    if near >= rule.active_from:
        return "active", f"CD/EF/CF after linking {near:.2f} >= {rule.active_from:.2f}: kept near chance or above"
    return "unclear", f"CD/EF/CF after linking {near:.2f}, between {rule.passive_below:.2f} and {rule.active_from:.2f}"


def modulation_verdict(numbers: dict, rule: Rule = Rule()) -> tuple[str, str]:
    d2, d3 = numbers["feedback"]["effect_size"], numbers["delay"]["effect_size"]
    if math.isnan(d2) or math.isnan(d3):
        return "unclear", "not enough rewarded or unrewarded trials"
    a2, a3 = abs(d2), abs(d3)
    if max(a2, a3) < rule.min_effect:
        return "unclear", (f"m(t) hardly follows the reward (|d feedback| {a2:.2f}, |d delay| {a3:.2f} < "
                           f"{rule.min_effect:.1f})")
    step2 = numbers["feedback"]
    same_sign = step2["mean_rewarded"] * step2["mean_unrewarded"] > 0
    if a3 >= rule.dominance * a2:
        if same_sign:
            return "active", (f"reward acts at the delay step (|d delay| {a3:.2f} >= {rule.dominance} x "
                              f"|d feedback| {a2:.2f}); m at the feedback step has one sign whatever the reward")
        return "unclear", "reward acts at the delay step, but m at the feedback step changes sign with the reward"
    if a2 >= rule.dominance * a3:
        return "passive", (f"reward acts at the feedback step (|d feedback| {a2:.2f} >= {rule.dominance} x "
                           f"|d delay| {a3:.2f})")
    return "unclear", f"reward acts at both steps alike (|d feedback| {a2:.2f}, |d delay| {a3:.2f})"


def combine(behaviour: str, modulation: str, test_accuracy: float | None = None,
            rule: Rule = Rule()) -> tuple[str, str]:
    """Overall verdict and how it was reached."""
    if test_accuracy is not None and not test_accuracy >= rule.min_test_accuracy:
        return "unclear", f"task not learned (test accuracy {test_accuracy:.2f} < {rule.min_test_accuracy:.2f})"
    if behaviour == modulation:
        return behaviour, ("both" if behaviour != "unclear" else "neither decides")
    if behaviour == "unclear":
        return modulation, "m(t) only"
    if modulation == "unclear":
        return behaviour, "behaviour only"
    return "unclear", "indicators disagree"


# ---------------------------------------------------------------------------------------------------------

def classify(net: PlasticNetwork, batch: int = 1000, seed: int = 0, rule: Rule = Rule(), chunk: int = 128,
             behaviour: bool = True, runs: Runs | None = None, log=None) -> dict:
    """Classify a network; returns the verdicts and every number behind them.

    `batch` episodes are run for each of: standard evaluation, list linking, sham linking (or the runs of
    `runs`, when given, are used: the same runs as the figures). The m(t) indicator is precise already with
    a few hundred episodes; the behavioural one scores one trial per episode, so its pair accuracies rest on
    about batch/28 trials per pair (about 3 x batch/28 pooled). `behaviour=False` skips list linking (the
    behavioural verdict is then "unclear").
    """
    if runs is None:
        runs = Runs(net, Settings(batch=batch, linking_batch=batch, seed=seed, chunk=chunk, progress=log is not None),
                    log=log)
    standard = runs.standard
    m_numbers = modulation_numbers(standard)
    m_verdict, m_reason = modulation_verdict(m_numbers, rule)
    test = standard.test_correct.float().mean().item()
    if behaviour:
        b_numbers = behaviour_numbers(_linking_with_counts(runs.linking), _linking_with_counts(runs.sham))
        b_verdict, b_reason = behaviour_verdict(b_numbers, rule)
    else:
        b_numbers, b_verdict, b_reason = {}, "unclear", "not run"
    verdict, agreement = combine(b_verdict, m_verdict, test, rule)
    return {
        "verdict": verdict, "agreement": agreement, "batch": standard.batch,
        "linking_batch": runs.linking.batch if behaviour else None, "seed": runs.settings.seed,
        "test_accuracy": test,
        "behaviour": {"verdict": b_verdict, "reason": b_reason, **b_numbers},
        "modulation": {"verdict": m_verdict, "reason": m_reason, **m_numbers},
        "rule": asdict(rule),
    }


def _linking_with_counts(run: Run) -> dict:
    last = run.pairs[:, -1]
    summary = stats.linking(last, run.correct[:, -1]).as_dict()
    names = [stats.pair_name(i, j) for i, j in last.tolist()]
    summary["count_by_pair"] = {p: names.count(p) for p in NEAR_LINK_PAIRS}
    return summary


def format_report(result: dict, name: str = "") -> str:
    """A few readable lines."""
    b, m = result["behaviour"], result["modulation"]
    lines = [f"{name + ': ' if name else ''}{result['verdict'].upper()} ({result['agreement']}); "
             f"standard evaluation of {result['batch']} episodes"
             + (f", list linking and sham of {result['linking_batch']}" if result.get("linking_batch") else "")
             + f"; standard test accuracy {result['test_accuracy']:.3f}"]
    if "near_link_accuracy" in b:
        lines.append(f"  behaviour: {b['verdict']} - {b['reason']}")
        lines.append(f"    across-list accuracy: linking {b['across_list_linking']:.3f}, sham {b['across_list_sham']:.3f}; "
                     f"after linking CD {b['accuracy_CD']:.2f}, EF {b['accuracy_EF']:.2f}, CF {b['accuracy_CF']:.2f} "
                     f"(pooled {b['near_link_accuracy']:.3f} over {b['near_link_trials']} trials)")
    else:
        lines.append(f"  behaviour: {b['verdict']} - {b['reason']}")
    lines.append(f"  m(t): {m['verdict']} - {m['reason']}")
    for step in ("feedback", "delay"):
        s = m[step]
        lines.append(f"    {step} step: mean m rewarded {s['mean_rewarded']:+.3f} (sd {s['sd_rewarded']:.3f}), "
                     f"unrewarded {s['mean_unrewarded']:+.3f} (sd {s['sd_unrewarded']:.3f}); "
                     f"d = {s['effect_size']:+.2f}; m < 0 in {100 * s['negative_fraction']:.0f}%")
    return "\n".join(lines)

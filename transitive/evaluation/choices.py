"""The trials, steps and episodes the figures look at, as the original notebook chose them: the one place
these numbers live (the figure functions, the key numbers and the runs read them from here).

Trials and steps are 0-based in the code: `CUE_TRIAL = 19` is the paper's trial 20, step 2 is the paper's
step 3 (feedback). Any other trial can be asked of a run (`Run.alignment[trial]`, `Run.trial_rates(trial)`):
what is not kept yet is computed on first use. A trial or pair out of range raises `ChoiceError`, one line
that names the choice and its allowed values.
"""
from __future__ import annotations

from ..model.errors import ChoiceError
from ..model.schedules import check_pair  # noqa: F401 (the one check of a pair, used from here too)
from ..model.task import ITEMS, LETTERS

CUE_TRIAL = 19  # Fig. 4: the response step of trial 20 (PCA), P at its start (cuecorrs, similarity preservation)
CHANGE_TRIAL = 18  # Figs. 6-8, ED Fig. 3: the 19th trial ("trial 20" in the captions), D,E first shown
FIRST_TRIAL = 0  # adaptedFFcuereps_t1_DEonly: trial 1, before any learning
VIOLIN_TRIAL = 4  # Fig. 5c: trial 5 (in list linking and sham: trial 5 of the linking episode, the scored one)
ZOOM_EPISODE, ZOOM_TRIAL = 1, 4  # Fig. 5b: the second example episode, "trials 4-8" (0-based) in the caption
SIGN_TRIAL = 5  # the recoded w~_out's sign: its cosine with r at the feedback step of trial 6 follows the response
DECODING_STEP = 1  # Supplementary Fig. 5: r at the response step
CROSS_DECODING_TRIALS = (0, 6, 12, 18, 24)  # the original's cross-step decoding: trials 1, 7, 13, 19, 25
# The paper's captions do not always count trials from 1: they call CHANGE_TRIAL (the 19th trial) "trial 20"
# (Figs. 6-8, Extended Data Fig. 3), and Fig. 5b's "trials 4-8" are the 0-based trials ZOOM_TRIAL..ZOOM_TRIAL + 4.
# Titles use the captions' numbers, so that a figure reads as its caption; docs/figures.md maps each to the code.
CAPTION_TRIALS = {CHANGE_TRIAL: 20}


def caption_trial(trial: int) -> int:
    """The number the paper's captions give the code's 0-based `trial`: trial + 1, except CAPTION_TRIALS."""
    return CAPTION_TRIALS.get(trial, trial + 1)


# P after each step of these trials is kept while a run runs (other trials: computed on first use).
SNAPSHOT_TRIALS = (CHANGE_TRIAL, CUE_TRIAL)


def check_trial(trial, ntrials: int, name: str = "trial") -> int:
    """`trial` as an int, if it is one of the run's trials (0-based); else ChoiceError."""
    if isinstance(trial, bool) or not isinstance(trial, int) or not 0 <= trial < ntrials:
        raise ChoiceError(f"{name}: expected a trial from 0 to {ntrials - 1} (0-based: the paper's trials 1-{ntrials}), "
                          f"got {trial!r}")
    return int(trial)


def check_item(item, nbcues: int = ITEMS, name: str = "item") -> int:
    """`item` as an int, if it is one of the run's `nbcues` items; else ChoiceError."""
    letters = LETTERS[:nbcues]
    if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < nbcues:
        raise ChoiceError(f"{name}: expected an item from 0 to {nbcues - 1} ({letters[0]}-{letters[-1]}), got {item!r}")
    return int(item)

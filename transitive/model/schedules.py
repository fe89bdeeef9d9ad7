"""The pair schedules of the evaluation experiments: which ordered pair each episode shows in each trial.

A schedule is a (batch, ntrials, 2) long tensor of item indices (item 0 is "A", the highest rank); an
experiment of several episodes run with the network state carried over is a list of schedules. Nothing
here runs the network: `transitive.evaluation.runs` does. The standard schedule (20 learning trials of adjacent pairs,
then 10 test trials of any pair) is `transitive.model.task.standard_schedule`.

Every function takes an optional `generator` (torch.Generator) for its random draws.
"""
from __future__ import annotations

import torch

from .errors import ChoiceError
from .task import ITEMS, LETTERS, adjacent_pairs, any_pairs, fixed_pairs, random_order, shows, standard_schedule

DE = (3, 4)  # the default barred / massed pair, D and E


def check_pair(pair, nbcues: int = ITEMS, name: str = "pair", adjacent: bool = False, next_to=None,
               next_to_name: str = "the barred pair") -> tuple[int, int]:
    """The one check of a pair of items, wherever it comes from (a figure's choice, a setting, a switch, an
    option): two different items among `nbcues`; with `adjacent`, neighbours in the list; with `next_to` (a
    pair), an adjacent pair other than it that shares one item with it. Returns the pair as a tuple of ints,
    else ChoiceError naming `name`."""
    letters = LETTERS[:nbcues]
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and pair[0] != pair[1]
            and all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k < nbcues for k in pair)):
        raise ChoiceError(f"{name}: expected two different items from 0 to {nbcues - 1} ({letters[0]}-{letters[-1]}), "
                          f"such as (3, 4) for D,E, got {pair!r}", name)
    shown = f"{tuple(pair)} ({letters[pair[0]]},{letters[pair[1]]})"
    if (adjacent or next_to is not None) and abs(pair[0] - pair[1]) != 1:
        raise ChoiceError(f"{name}: expected two adjacent items such as (3, 4) for D,E, got {shown}", name)
    if next_to is not None and (sorted(pair) == sorted(next_to) or not set(pair) & set(next_to)):
        raise ChoiceError(f"{name}: expected an adjacent pair next to {next_to_name} {tuple(next_to)}, such as "
                          f"({min(next_to) - 1}, {min(next_to)}) or ({max(next_to)}, {max(next_to) + 1}), got {shown}", name)
    return int(pair[0]), int(pair[1])


def massed_schedule(batch: int, extra: int, nbcues: int = ITEMS, pair=DE, n_learning: int = 20,
                    n_test: int = 10, generator=None):
    """Massed presentation (Supplementary Note 9, NBMASSEDTRIALS / MASSEDPAIR): after the learning trials,
    `extra` trials all showing `pair` in that order, then the test trials."""
    return torch.cat([adjacent_pairs(batch, n_learning, 0, nbcues - 1, generator=generator),
                      fixed_pairs(batch, [tuple(pair)] * extra),
                      any_pairs(batch, n_test, nbcues, generator=generator)], 1)


def withheld_pair_schedule(batch: int, nbcues: int = ITEMS, pair=DE, reveal_trial: int = 18,
                           n_learning: int = 20, n_test: int = 10, add_pair=None, generator=None):
    """HALFNOBARREDPAIRUNTILT18 / BARREDPAIR: in the batch elements above batch // 2, the learning trials
    before `reveal_trial` (0-based; the paper's trial 19) never show `pair` (in either order) and trial
    `reveal_trial` shows it in random order. The other elements follow the standard schedule.

    `add_pair` (ADDBARREDPAIR, e.g. C,D next to D,E): withheld from the same trials of the same elements.
    The original withholds only `pair` and afterwards keeps the episodes that happen never to show
    `add_pair` before `reveal_trial` (a few dozen of 2000); since the other trials are independent draws,
    withholding it here gives selected episodes of the same distribution, in the whole upper half."""
    withheld = [check_pair(pair, nbcues, "withheld pair", adjacent=True)]
    if add_pair is not None:
        withheld.append(check_pair(add_pair, nbcues, "added withheld pair", next_to=pair))
    if len(withheld) >= nbcues - 1:
        raise ChoiceError(f"withheld pairs: {nbcues} items leave no other adjacent pair to show")
    if not 0 <= reveal_trial < n_learning:
        raise ChoiceError(f"the pair must be revealed during the {n_learning} learning trials")
    pairs = standard_schedule(batch, nbcues, n_learning, n_test, generator=generator)
    rows = slice(batch // 2 + 1, batch)
    count = pairs[rows].shape[0]
    if count == 0:
        return pairs
    learning = pairs[rows, :reveal_trial]
    barred = (lambda x: torch.stack([shows(x, p) for p in withheld]).any(0))
    while barred(learning).any():  # redraw the barred trials among the other adjacent pairs
        redraw = adjacent_pairs(count, reveal_trial, 0, nbcues - 1, generator=generator)
        learning = torch.where(barred(learning).unsqueeze(-1), redraw, learning)
    pairs[rows, :reveal_trial] = learning
    pairs[rows, reveal_trial] = random_order(fixed_pairs(count, [tuple(pair)]), generator)[:, 0]
    return pairs


ONLY_TWO_LAST_ADJACENT_TESTS = ((0, 2), (2, 4), (4, 6), (0, 3), (3, 6))  # AC CE EG AD DG


def only_two_last_adjacent_schedule(batch: int, nbcues: int = 7, n_learning: int = 20, generator=None):
    """ONLYTWOLASTADJ (7 items): test trials 21-28 show AC, CE, EG, AD or DG (either order); the last two
    trials show adjacent pairs not involving A or G."""
    if nbcues != 7:
        raise ValueError("the 'only two last adjacent' schedule needs 7 items")
    choices = torch.tensor(ONLY_TWO_LAST_ADJACENT_TESTS)
    pick = choices[torch.randint(0, len(choices), (batch, 8), generator=generator)]
    return torch.cat([adjacent_pairs(batch, n_learning, 0, nbcues - 1, generator=generator),
                      random_order(pick, generator),
                      adjacent_pairs(batch, 2, 1, nbcues - 2, generator=generator)], 1)


def linking_schedules(batch: int, sham: bool = False, first_half_first: bool = True, generator=None):
    """List linking (Fig. 3a) or sham (Fig. 3b): three episodes run with the state carried over.

    1: 10 trials of adjacent pairs of A-D;  2: 10 trials of adjacent pairs of E-H (SHOWFIRSTHALFFIRST
       False swaps the two lists);
    3: 4 trials of the linking pair D,E in random order (sham: one trial of B,C in that order), then one
       test trial of any pair of A-H, the one scored.
    """
    first = adjacent_pairs(batch, 10, 0, 3, generator=generator)
    second = adjacent_pairs(batch, 10, 4, 7, generator=generator)
    if not first_half_first:
        first, second = second, first
    link = fixed_pairs(batch, [(1, 2)]) if sham else random_order(fixed_pairs(batch, [DE] * 4), generator)
    return [first, second, torch.cat([link, any_pairs(batch, 1, 8, generator=generator)], 1)]

"""A run's records: what one experiment gives for a batch of episodes (`Run`), how consecutive episodes are
run and reduced chunk by chunk (`run_experiment`), and the original's record files (`save_records`).

A `Run` keeps the small per-trial and per-step values of every episode; the rates of every step and the item
alignments of a trial (from the plastic weights P, too large to keep for every trial) are kept for the
trials the figures use and computed for any other trial on first use, by running the same episodes again
(`Run.rerun`, set by `transitive.evaluation.runs.Runs`), then kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..model.network import PlasticNetwork
from ..model.task import REWARD, STEPS_PER_TRIAL, present
from ..engine.episode import run_episode
from .analysis import similarity_preservation
from .choices import SNAPSHOT_TRIALS, ChoiceError, check_pair, check_trial
from .item_representations import output_alignment, psi_t1, psi_t2
from .settings import Settings


class ByTrial(dict):
    """trial -> a run's result for that trial (item alignments, similarity preservation), computed on first
    use (`Run.trial_products`) and kept."""

    def __init__(self, run: "Run", key: str):
        super().__init__()
        self.run, self.key = run, key

    def __missing__(self, trial):
        value = self.run.trial_products(trial)[self.key]
        self[trial] = value
        return value


@dataclass(eq=False)
class Run:
    """One experiment for a batch of episodes, reduced to what the analyses use.

    Per trial: pairs (batch, ntrials, 2), correct, response (+1 for action 1, -1). Per step (nsteps =
    4 * ntrials): modulation m(t), feedback (the reward input, +-1 at the feedback step), actions. Per item:
    psi1, the feedforward representations psi_t1 (batch, K, n). On first use, then kept: `rates` (batch,
    nsteps, n), `trial_rates(trial)`, and per trial `alignment[trial]` (batch, 4, K), corr(psi_t2(X), w_out)
    with P after each step, and `similarity[trial]` (batch,), the similarity preservation with P at the start
    of that trial. Multi-episode experiments are concatenated along the trials (`episode_trials` gives each
    episode's number of trials; `episode(k)` is the k-th episode alone)."""

    name: str
    items: torch.Tensor  # (batch, K, 15)
    pairs: torch.Tensor
    correct: torch.Tensor
    response: torch.Tensor
    modulation: torch.Tensor
    feedback: torch.Tensor
    actions: torch.Tensor
    first_test_trial: int  # 0-based index of the first scored (test) trial
    episode_trials: tuple = ()
    kept_rates: torch.Tensor | None = None  # rates of the steps of trials `rates_from` and later
    rates_from: int = 0
    psi1: torch.Tensor | None = None  # (batch, K, n): feedforward item representations psi_t1
    final_plastic: torch.Tensor | None = None  # (n, n): P at the end of the run, in episode (batch element) 0
    highlight: tuple | None = None  # (first, last) 0-based trials to shade in traces (massed trials)
    products: dict = field(default_factory=dict)  # trial -> {"alignment": ..., "similarity": ...}
    rerun: Callable | None = field(default=None, repr=False)  # rerun(snapshot_trials, rates_from) -> Run
    parent: "Run | None" = field(default=None, repr=False)  # for an episode of a longer run: that run,
    offset: int = 0  # and the index there of this run's first trial

    def __post_init__(self):
        self.alignment = ByTrial(self, "alignment")
        self.similarity = ByTrial(self, "similarity")

    @property
    def batch(self) -> int:
        return self.pairs.shape[0]

    @property
    def ntrials(self) -> int:
        return self.pairs.shape[1]

    @property
    def nbcues(self) -> int:
        return self.items.shape[1]

    @property
    def test_pairs(self) -> torch.Tensor:
        return self.pairs[:, self.first_test_trial:]

    @property
    def test_correct(self) -> torch.Tensor:
        return self.correct[:, self.first_test_trial:]

    def check_trial(self, trial, name: str = "trial") -> int:
        return check_trial(trial, self.ntrials, name)

    def check_pair(self, pair, name: str = "pair") -> tuple[int, int]:
        return check_pair(pair, self.nbcues, name)

    @property
    def rates(self) -> torch.Tensor:
        """(batch, nsteps, n): the rates r(t) of every step."""
        if self.kept_rates is None or self.rates_from > 0:
            if self.parent is not None:
                steps = slice(self.offset * STEPS_PER_TRIAL, (self.offset + self.ntrials) * STEPS_PER_TRIAL)
                self.kept_rates = self.parent.rates[:, steps]
            else:
                self._again(rates_from=0, why="the rates of every step")
            self.rates_from = 0
        return self.kept_rates

    def trial_rates(self, trial: int) -> torch.Tensor:
        """(batch, 4, n): the rates of the 4 steps of one trial (0-based)."""
        trial = self.check_trial(trial)
        if self.kept_rates is not None and trial >= self.rates_from:
            first = (trial - self.rates_from) * STEPS_PER_TRIAL
            return self.kept_rates[:, first:first + STEPS_PER_TRIAL]
        return self.rates[:, trial * STEPS_PER_TRIAL:(trial + 1) * STEPS_PER_TRIAL]

    def trial_products(self, trial: int) -> dict:
        """{"alignment": (batch, 4, K), "similarity": (batch,)} for one trial (0-based), from P after each
        of its steps: computed on first use, by running the same episodes again, and kept."""
        trial = self.check_trial(trial)
        if trial not in self.products:
            if self.parent is not None:
                self.products[trial] = self.parent.trial_products(trial + self.offset)
            else:
                self._again(snapshot_trials=(trial,), why=f"the item alignments of trial {trial + 1}")
        return self.products[trial]

    def _again(self, snapshot_trials=(), rates_from=None, why: str = "") -> None:
        if self.rerun is None:
            raise ChoiceError(f"{self.name}: {why} were not kept and this run cannot be made again")
        again = self.rerun(snapshot_trials=snapshot_trials, rates_from=rates_from, why=why)
        if not (torch.equal(again.pairs, self.pairs) and torch.equal(again.actions, self.actions)):
            raise RuntimeError(f"{self.name}: running the same episodes again for {why} gave other actions "
                               "(a device that is not deterministic?); ask for it before the figures that need it")
        self.products.update(again.products)
        if rates_from is not None:
            self.kept_rates, self.rates_from = again.kept_rates, again.rates_from

    def episode(self, k: int) -> "Run":
        """The trials of the k-th episode (k = -1: the last) of a multi-episode run, numbered from 0: for
        list linking, episode -1 is the linking episode (4 trials of D,E, then the scored trial)."""
        counts = self.episode_trials or (self.ntrials,)
        k = range(len(counts))[k]
        start = sum(counts[:k])
        stop = start + counts[k]
        steps = slice(start * STEPS_PER_TRIAL, stop * STEPS_PER_TRIAL)
        kept = None
        if self.kept_rates is not None and start >= self.rates_from:
            first = (start - self.rates_from) * STEPS_PER_TRIAL
            kept = self.kept_rates[:, first:first + counts[k] * STEPS_PER_TRIAL]
        last = k == len(counts) - 1
        return Run(name=f"{self.name} (episode {k + 1} of {len(counts)})", items=self.items,
                   pairs=self.pairs[:, start:stop], correct=self.correct[:, start:stop],
                   response=self.response[:, start:stop], modulation=self.modulation[:, steps],
                   feedback=self.feedback[:, steps], actions=self.actions[:, steps],
                   first_test_trial=min(max(self.first_test_trial - start, 0), counts[k]), episode_trials=(counts[k],),
                   kept_rates=kept, psi1=self.psi1, final_plastic=self.final_plastic if last else None,
                   parent=self, offset=start)


# ---------------------------------------------------------------------------------------------------------
# Running schedules.

@torch.no_grad()
def run_experiment(net: PlasticNetwork, name: str, schedules: list[torch.Tensor], items: torch.Tensor,
                   generator: torch.Generator, settings=None, first_test_trial: int = 20,
                   rates_from: int | None = 0, snapshot_trials=SNAPSHOT_TRIALS, highlight=None) -> Run:
    """Run consecutive episodes (one per schedule) on the same items with the state carried over, chunk by
    chunk of the batch, and reduce each chunk at once (P snapshots never exist for the whole batch).

    rates_from: keep the rates of this trial and later (0: all; None: none). snapshot_trials: trials of the
    whole run (0-based) whose P after each step gives the item alignments and similarity preservation.
    settings: `transitive.evaluation.settings.Settings` (chunk size, progress bar, resets), by default the defaults."""
    if settings is None:
        settings = Settings()
    device = net.w.device
    batch = schedules[0].shape[0]
    counts = [s.shape[1] for s in schedules]
    offsets = [sum(counts[:e]) for e in range(len(counts))]
    snapshot_trials = tuple(sorted({int(t) for t in snapshot_trials if 0 <= t < sum(counts)}))
    where = {t: max(e for e, o in enumerate(offsets) if o <= t) for t in snapshot_trials}  # trial -> its episode
    options = dict(reset_plastic_every_trial=settings.reset_plastic_every_trial,
                   reset_rates_every_trial=settings.reset_rates_every_trial,
                   reset_trace_every_trial=settings.reset_trace_every_trial)
    parts = []
    chunks = range(0, batch, settings.chunk)
    if settings.progress:
        from ..model.progress import progress_bar  # in a notebook on standard output, kept when done
        chunks = progress_bar(chunks, desc=name, unit="chunk", leave=False)
    for begin in chunks:
        part = slice(begin, min(begin + settings.chunk, batch))
        state, records = None, []
        for e, pairs in enumerate(schedules):
            snapshots = tuple(t - offsets[e] for t in snapshot_trials if where[t] == e)
            if begin == 0 and e == len(schedules) - 1:
                snapshots += (counts[e] - 1,)  # for P at the end of the run, in episode 0
            trials = present(items[part], pairs[part]).to(device)
            record = run_episode(net, trials, state=state, snapshot_trials=snapshots, generator=generator, **options)
            state = record.final_state
            records.append(record)
        snapshot = {t: records[where[t]].snapshots[t - offsets[where[t]]] for t in snapshot_trials}
        parts.append(_reduce(net, records, items[part], snapshot, rates_from, begin == 0))
    cat = (lambda key: torch.cat([p[key] for p in parts]))
    products = {t: {key: torch.cat([p["products"][t][key] for p in parts]) for key in ("alignment", "similarity")}
                for t in snapshot_trials}
    return Run(name=name, items=items, pairs=cat("pairs"), correct=cat("correct"), response=cat("response"),
               modulation=cat("modulation"), feedback=cat("feedback"), actions=cat("actions"),
               first_test_trial=first_test_trial, episode_trials=tuple(counts),
               kept_rates=None if rates_from is None else cat("rates"), rates_from=rates_from or 0, psi1=cat("psi1"),
               final_plastic=parts[0]["final_plastic"], highlight=highlight, products=products)


def _reduce(net, records, items, snapshots: dict, rates_from, first_chunk: bool) -> dict:
    """One chunk's records reduced: per-trial and per-step values joined over the episodes, the item
    alignments and similarity preservation of each snapshot trial, the rates kept."""
    device = net.w.device
    joined = (lambda key: torch.cat([getattr(r, key) for r in records], 1).cpu())
    psi1 = psi_t1(net, items.to(device))
    products = {}
    for t, plastic in snapshots.items():
        psi2 = [psi_t2(net, psi1, plastic[:, s].to(device)) for s in range(STEPS_PER_TRIAL)]
        products[t] = {"alignment": torch.stack([output_alignment(net, p) for p in psi2], 1).cpu(),
                       "similarity": torch.from_numpy(similarity_preservation(psi1.cpu(), psi2[0].cpu()))}
    last = records[-1]
    final = last.snapshots[last.ntrials - 1][0, 3].float().cpu() if first_chunk else None
    rates = None if rates_from is None else joined("rates")[:, rates_from * STEPS_PER_TRIAL:]
    inputs = torch.cat([r.inputs for r in records], 1)
    return dict(pairs=joined("pairs"), correct=joined("correct"), response=joined("response"),
                modulation=joined("modulation"), feedback=inputs[..., REWARD].cpu(), actions=joined("actions"),
                rates=rates, psi1=psi1.cpu(), products=products, final_plastic=final)


def save_records(run: Run, out) -> list:
    """The original's evaluation records of a run, one pair of files per episode k (k = 0 for one episode;
    list linking and sham: 0, 1, 2): outcomes_<k>.npz with c (correct), a (adjacent pair), cp (ordered
    pair), r (response +-1) per trial, ac (the action at every step, (episodes, trials, 4)), as the original,
    plus m (m(t)) and rw (the reward input) per step; and allrates_thisep_<k>.npy, the rates as (episodes,
    n, steps)."""
    import numpy as np
    from pathlib import Path
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(len(run.episode_trials or (run.ntrials,))):
        episode = run.episode(k) if len(run.episode_trials) > 1 else run
        outcomes, rates = out / f"outcomes_{k}.npz", out / f"allrates_thisep_{k}.npy"
        adjacent = (episode.pairs[..., 0] - episode.pairs[..., 1]).abs() == 1
        np.savez_compressed(outcomes, c=episode.correct.long().numpy(), a=adjacent.long().numpy(),
                            cp=episode.pairs.numpy(), r=episode.response.long().numpy(),
                            ac=episode.actions.reshape(episode.batch, episode.ntrials, STEPS_PER_TRIAL).numpy(),
                            m=episode.modulation.numpy(), rw=episode.feedback.numpy())
        np.save(rates, episode.rates.transpose(1, 2).float().numpy())
        paths += [outcomes, rates]
    return paths

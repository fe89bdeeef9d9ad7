"""The evaluation layer: each experiment run at most once per network, batch and seed, reduced to what the
analyses use, and shared by every command, figure and notebook cell.

    runs = Runs(net, Settings(batch=2000, seed=0))
    runs.standard            # 20 learning + 10 test trials, 8 items (run on first use, then kept)
    runs.linking, runs.sham  # list linking and its control: three episodes with the state carried over
    runs.withheld            # D,E withheld until trial 19 in half the batch (Fig. 6)
    runs.massed, runs.only_two_last_adjacent, runs.recoded, runs.toy
    runs.main                # the run of the selected experiment (Settings.experiment)

Every experiment draws from its own random generator, seeded from (seed, experiment), so its result does
not depend on which figure asked for it first, and the caller's global random state is never touched.
Trials and steps are 0-based in the code; `Run.trial_label` gives the paper's numbering (trials 1-30).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import torch

from .analysis import similarity_preservation
from .episode import run_episode
from .network import PlasticNetwork
from .representations import fit_recoded, fix_sign, output_alignment, psi_t1, psi_t2
from .schedules import (linking_schedules, massed_schedule, only_two_last_adjacent_schedule,
                        withheld_pair_schedule)
from .task import REWARD, STEPS_PER_TRIAL, draw_items, present, standard_schedule

ITEMS = 8
EXPERIMENTS = ("standard", "linking", "sham", "massed", "onlytwolastadj")
# Offsets of each experiment's seed (seed * 1000 + offset): independent draws per experiment.
SEED_OFFSETS = {"standard": 0, "withheld": 1, "linking": 2, "sham": 3, "massed": 4, "onlytwolastadj": 5,
                "withheld_added": 6}
ALIGNMENT_TRIALS = (18, 19)  # P snapshots turned into item alignments (Figs. 4b, 6)
SIMILARITY_TRIAL = 19  # psi_t2 with P at the start of this trial (0-based) for the similarity preservation
SIGN_TRIAL = 5  # the recoded w_out's sign is fixed against the response of this trial (0-based)


@dataclass(frozen=True)
class Settings:
    """What the runs depend on. The names in comments are the original notebook's switches."""

    batch: int = 2000  # BATCHSIZE: episodes of the standard evaluation
    linking_batch: int | None = None  # list linking and sham: default 2 * batch (4000 for 2000)
    seed: int = 0
    experiment: str = "standard"  # the selected experiment, see EXPERIMENTS
    chunk: int = 128  # episodes run at once
    fixed_items: bool = False  # FIXEDCUES: the same item vectors in every episode
    reset_plastic_every_trial: bool = False  # RESETPWEVERYTRIAL: control without learning across trials
    reset_rates_every_trial: bool = True  # RESETHIDDENEVERYTRIAL
    reset_trace_every_trial: bool = True  # RESETETEVERYTRIAL
    withhold_in_standard: bool = False  # HALFNOBARREDPAIRUNTILT18: the standard run withholds BARREDPAIR
    barred_pair: tuple = (3, 4)  # BARREDPAIR
    add_barred_pair: tuple | None = None  # ADDBARREDPAIR with SHOWALLSELECTS off: also withheld (corrchanges34_add23)
    massed_trials: int = 10  # NBMASSEDTRIALS (the standard mode's massed figure uses 10)
    massed_pair: tuple = (3, 4)  # MASSEDPAIR
    first_half_first: bool = True  # SHOWFIRSTHALFFIRST: list linking shows A-D before E-H
    recode_steps: int = 1000
    recode_attempts: int = 3
    progress: bool = True  # a progress bar over the chunks of each run

    def validate(self) -> "Settings":
        if self.experiment not in EXPERIMENTS:
            raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}, not {self.experiment!r}")
        if self.batch < 20:
            raise ValueError(f"batch must be at least 20 (10 splits of 2 episodes), not {self.batch}")
        if self.linking_batch is not None and self.linking_batch < 20:
            raise ValueError(f"linking batch must be at least 20, not {self.linking_batch}")
        if self.massed_trials < 1:
            raise ValueError("massed_trials must be at least 1")
        if self.recode_steps < 1 or self.recode_attempts < 1:
            raise ValueError("recode_steps and recode_attempts must be positive")
        return self


@dataclass
class Run:
    """One experiment for a batch of episodes, reduced to what the analyses use.

    Per trial: pairs (batch, ntrials, 2), correct, response (+1 for action 1, -1). Per step (nsteps =
    4 * ntrials): modulation m(t), feedback (the reward input, +-1 at the feedback step), actions, and
    rates r(t) (batch, nsteps, n) where kept. Multi-episode experiments are concatenated along the trials
    (`episode_trials` gives each episode's number of trials)."""

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
    rates: torch.Tensor | None = None
    psi1: torch.Tensor | None = None  # (batch, K, n): feedforward item representations psi_t1
    similarity: torch.Tensor | None = None  # (batch,): item similarity kept from psi_t1 to psi_t2 (trial 20)
    alignment: dict = field(default_factory=dict)  # trial -> (batch, 4, K): corr(psi_t2(X), w_out), P after each step
    final_plastic: torch.Tensor | None = None  # (n, n): P at the end of episode 0
    highlight: tuple | None = None  # (first, last) 0-based trials to shade in traces (massed trials)

    @property
    def batch(self) -> int:
        return self.pairs.shape[0]

    @property
    def ntrials(self) -> int:
        return self.pairs.shape[1]

    @property
    def test_pairs(self) -> torch.Tensor:
        return self.pairs[:, self.first_test_trial:]

    @property
    def test_correct(self) -> torch.Tensor:
        return self.correct[:, self.first_test_trial:]

    def trial_rates(self, trial: int) -> torch.Tensor:
        """(batch, 4, n): the rates of the 4 steps of one trial (0-based)."""
        return self.rates[:, trial * STEPS_PER_TRIAL:(trial + 1) * STEPS_PER_TRIAL]


# ---------------------------------------------------------------------------------------------------------
# Running schedules.

@torch.no_grad()
def run_experiment(net: PlasticNetwork, name: str, schedules: list[torch.Tensor], items: torch.Tensor,
                   generator: torch.Generator, settings: Settings = Settings(), first_test_trial: int = 20,
                   keep_rates: bool = True, alignment_trials=ALIGNMENT_TRIALS, highlight=None) -> Run:
    """Run consecutive episodes (one per schedule) on the same items with the state carried over, chunk by
    chunk of the batch, and reduce each chunk at once (P snapshots never exist for the whole batch)."""
    device = net.w.device
    batch = schedules[0].shape[0]
    alignment_trials = tuple(t for t in alignment_trials if t < schedules[-1].shape[1]) if len(schedules) == 1 else ()
    options = dict(reset_plastic_every_trial=settings.reset_plastic_every_trial,
                   reset_rates_every_trial=settings.reset_rates_every_trial,
                   reset_trace_every_trial=settings.reset_trace_every_trial)
    parts = []
    chunks = range(0, batch, settings.chunk)
    if settings.progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc=name, unit="chunk", leave=False)
    for begin in chunks:
        part = slice(begin, min(begin + settings.chunk, batch))
        state, records = None, []
        snapshots = alignment_trials + ((schedules[0].shape[1] - 1,) if begin == 0 and len(schedules) == 1 else ())
        for pairs in schedules:
            trials = present(items[part], pairs[part]).to(device)
            record = run_episode(net, trials, state=state, snapshot_trials=snapshots, generator=generator, **options)
            state = record.final_state
            records.append(record)
        parts.append(_reduce(net, records, items[part], alignment_trials, keep_rates, begin == 0))
    cat = (lambda key: torch.cat([p[key] for p in parts]))
    return Run(name=name, items=items, pairs=cat("pairs"), correct=cat("correct"), response=cat("response"),
               modulation=cat("modulation"), feedback=cat("feedback"), actions=cat("actions"),
               first_test_trial=first_test_trial, episode_trials=tuple(s.shape[1] for s in schedules),
               rates=cat("rates") if keep_rates else None, psi1=cat("psi1"),
               similarity=cat("similarity") if SIMILARITY_TRIAL in alignment_trials else None,
               alignment={t: torch.cat([p["alignment"][t] for p in parts]) for t in alignment_trials},
               final_plastic=parts[0]["final_plastic"], highlight=highlight)


def _reduce(net, records, items, alignment_trials, keep_rates: bool, first_chunk: bool) -> dict:
    device = net.w.device
    joined = (lambda key: torch.cat([getattr(r, key) for r in records], 1).cpu())
    psi1 = psi_t1(net, items.to(device))
    last = records[-1]
    alignment, similarity = {}, None
    for t in alignment_trials:
        psi2 = [psi_t2(net, psi1, last.snapshots[t][:, s].to(device)) for s in range(STEPS_PER_TRIAL)]
        alignment[t] = torch.stack([output_alignment(net, p) for p in psi2], 1).cpu()
        if t == SIMILARITY_TRIAL:
            similarity = torch.from_numpy(similarity_preservation(psi1.cpu(), psi2[0].cpu()))
    final = None
    if first_chunk and len(records) == 1:
        final = last.snapshots[last.ntrials - 1][0, 3].float().cpu()
    inputs = torch.cat([r.inputs for r in records], 1)
    return dict(pairs=joined("pairs"), correct=joined("correct"), response=joined("response"),
                modulation=joined("modulation"), feedback=inputs[..., REWARD].cpu(), actions=joined("actions"),
                rates=joined("rates") if keep_rates else None, psi1=psi1.cpu(), alignment=alignment,
                similarity=similarity,
                final_plastic=final)


# ---------------------------------------------------------------------------------------------------------

class Runs:
    """The experiments of one network, run on first use and kept (see the module docstring)."""

    def __init__(self, net: PlasticNetwork, settings: Settings = Settings(), log=print, curves: dict | None = None):
        """`curves`: name -> learning-curve CSV written by meta-training (for Fig. 1f)."""
        self.net = net.eval()
        self.settings = settings.validate()
        self.curves = dict(curves or {})
        self._print = log
        self._started = time.perf_counter()

    def log(self, text: str) -> None:
        if self._print:
            self._print(f"[{time.perf_counter() - self._started:6.1f} s] {text}")

    def done(self) -> list[str]:
        """The runs made so far, in the order of this class's properties."""
        return [name for name in ("standard", "withheld", "withheld_added", "linking", "sham", "massed",
                                  "only_two_last_adjacent", "recoded", "toy") if name in self.__dict__]

    # -----------------------------------------------------------------------------------------------------
    def _generators(self, experiment: str) -> tuple[torch.Generator, torch.Generator]:
        """(generator for items and schedules, on the CPU; generator for the episode's sampling, on the
        network's device), both seeded from (seed, experiment)."""
        seed = self.settings.seed * 1000 + SEED_OFFSETS[experiment]
        draws = torch.Generator().manual_seed(seed)
        device = self.net.w.device
        sampling = draws if device.type == "cpu" else torch.Generator(device).manual_seed(seed)
        return draws, sampling

    def _items(self, batch: int, generator, nbcues: int = ITEMS) -> torch.Tensor:
        if self.settings.fixed_items:
            return draw_items(1, nbcues, generator=generator).expand(batch, -1, -1).clone()
        return draw_items(batch, nbcues, generator=generator)

    def _run(self, experiment: str, description: str, make_schedules, nbcues: int = ITEMS, batch: int | None = None,
             **kwargs) -> Run:
        batch = batch or self.settings.batch
        draws, sampling = self._generators(experiment)
        items = self._items(batch, draws, nbcues)
        schedules = make_schedules(batch, draws)
        started = time.perf_counter()
        self.log(f"running {description}: {batch} episodes of {sum(s.shape[1] for s in schedules)} trials")
        run = run_experiment(self.net, experiment, schedules, items, sampling, self.settings, **kwargs)
        self.log(f"done in {time.perf_counter() - started:.1f} s")
        return run

    @cached_property
    def standard(self) -> Run:
        if self.settings.withhold_in_standard:
            return self._withheld("standard")
        return self._run("standard", "the standard evaluation",
                         lambda batch, g: [standard_schedule(batch, ITEMS, generator=g)])

    def _withheld(self, experiment: str, add_pair=None) -> Run:
        pair = self.settings.barred_pair
        name = "ABCDEFGH"[pair[0]] + "ABCDEFGH"[pair[1]] + ("" if add_pair is None else
                                                             " and " + "ABCDEFGH"[add_pair[0]] + "ABCDEFGH"[add_pair[1]])
        return self._run(experiment, f"the evaluation with {name} withheld until trial 19 in half the batch",
                         lambda batch, g: [withheld_pair_schedule(batch, pair=pair, add_pair=add_pair, generator=g)],
                         keep_rates=experiment == "standard")

    @cached_property
    def withheld(self) -> Run:
        """Fig. 6: the barred pair first shown at trial 19 (0-based 18) in half the batch."""
        if self.settings.withhold_in_standard:
            return self.standard
        return self._withheld("withheld")

    @cached_property
    def withheld_added(self) -> Run:
        """corrchanges34_add23: the barred pair and ADDBARREDPAIR both withheld before trial 19 in half the
        batch (the original selected such episodes from a run that withholds the barred pair only)."""
        if self.settings.add_barred_pair is None:
            raise ValueError("no added barred pair (ADDBARREDPAIR with SHOWALLSELECTS = False) in these settings")
        return self._withheld("withheld_added", self.settings.add_barred_pair)

    def _linking(self, sham: bool) -> Run:
        batch = self.settings.linking_batch or 2 * self.settings.batch
        first_half_first = self.settings.first_half_first
        run = self._run("sham" if sham else "linking", "sham linking" if sham else "list linking",
                        lambda b, g: linking_schedules(b, sham=sham, first_half_first=first_half_first, generator=g),
                        batch=batch, keep_rates=False, alignment_trials=())
        return replace(run, first_test_trial=run.ntrials - 1)

    @cached_property
    def linking(self) -> Run:
        return self._linking(sham=False)

    @cached_property
    def sham(self) -> Run:
        return self._linking(sham=True)

    @cached_property
    def massed(self) -> Run:
        k, pair = self.settings.massed_trials, self.settings.massed_pair
        return self._run("massed", f"massed presentation ({k} trials of one pair after learning)",
                         lambda batch, g: [massed_schedule(batch, k, pair=pair, generator=g)],
                         first_test_trial=20 + k, highlight=(20, 20 + k - 1), alignment_trials=())

    @cached_property
    def only_two_last_adjacent(self) -> Run:
        return self._run("onlytwolastadj", "'only two last adjacent' (7 items)",
                         lambda batch, g: [only_two_last_adjacent_schedule(batch, generator=g)], nbcues=7,
                         alignment_trials=())

    @property
    def main(self) -> Run:
        """The run of the selected experiment: the one the analysis cells use in an experiment mode."""
        return {"standard": lambda: self.standard, "linking": lambda: self.linking, "sham": lambda: self.sham,
                "massed": lambda: self.massed,
                "onlytwolastadj": lambda: self.only_two_last_adjacent}[self.settings.experiment]()

    @cached_property
    def recoded(self):
        """Recoded representations of the standard run (Supplementary Note 8), sign fixed against the
        response of trial 6 (0-based 5). The fit keeps the best of its attempts."""
        run = self.standard
        self.log(f"fitting recoded representations: {run.psi1.shape[0]} episodes x {run.psi1.shape[1]} items, "
                 f"{self.settings.recode_steps} Adam steps per attempt, at most {self.settings.recode_attempts} "
                 "attempts (the best is kept)")
        fit = fit_recoded(self.net, run.psi1, steps=self.settings.recode_steps,
                          attempts=self.settings.recode_attempts, seed=self.settings.seed, log=self.log)
        return fix_sign(fit, run.trial_rates(SIGN_TRIAL)[:, 2], run.response[:, SIGN_TRIAL])

    @cached_property
    def toy(self) -> dict:
        from .analysis import toy_model_comparison
        return toy_model_comparison(seed=self.settings.seed)


def save_records(run: Run, out, episode: int = 0) -> list:
    """The original's evaluation records of a run: outcomes_<episode>.npz with c (correct), a (adjacent
    pair), cp (ordered pair), r (response +-1), ac (action at every step), plus m (m(t)) and rw (reward
    input), per trial or per step; and allrates_thisep_<episode>.npy, the rates as (batch, n, nsteps)."""
    import numpy as np
    from pathlib import Path
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes, rates = out / f"outcomes_{episode}.npz", out / f"allrates_thisep_{episode}.npy"
    np.savez_compressed(outcomes, c=run.correct.numpy(), a=((run.pairs[..., 0] - run.pairs[..., 1]).abs() == 1).numpy(),
                        cp=run.pairs.numpy(), r=run.response.numpy(), ac=run.actions.numpy(),
                        m=run.modulation.numpy(), rw=run.feedback.numpy())
    np.save(rates, run.rates.transpose(1, 2).float().numpy())
    return [outcomes, rates]

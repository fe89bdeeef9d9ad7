"""The texts of main.ipynb's cells that tools/build_notebook.py writes around the package's own code: the
introduction (notebook_intro.md), the configuration cell's groups of switches, the library cell's code after
the packed files, the set-up cell, the cells after a figure's, and the last cells."""
from pathlib import Path

MARKER = "GENERATED_BY_MAIN_IPYNB"
# The library cell, after the packed package and files: write the package, import it, write the files.
LIBRARY_CODE = f"""

def _materialise(folder=Path('transitive')):
    marker = folder / {MARKER!r}
    if (folder / '__init__.py').exists() and not marker.exists():
        print(f'using the existing package in {{folder.resolve()}}')
        return
    sources = json.loads(lzma.decompress(base64.b85decode(_PACKAGE)))
    folder.mkdir(exist_ok=True)
    for stale in folder.rglob('*.py'):
        if stale.relative_to(folder).as_posix() not in sources:
            stale.unlink()
    for name, text in sources.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    marker.write_text('written by the library cell of main.ipynb; safe to delete\\n')


_materialise()
if str(Path.cwd()) not in sys.path:
    sys.path.insert(0, str(Path.cwd()))
for _module in [m for m in sys.modules if m == 'transitive' or m.startswith('transitive.')]:
    del sys.modules[_module]
importlib.invalidate_caches()
import transitive
from transitive.interface.notebook import write_bundled

write_bundled(_BUNDLED)  # our networks and training logs, beside the notebook where missing
print(f'transitive ready: {{Path(transitive.__file__).parent}}')
from transitive.interface.threads import use_free_cores
use_free_cores(say=print)  # torch's CPU threads: the cores free now (torch.set_num_threads(N) after it wins)"""

# The title and introduction, the notebook's first cell.
INTRO = (Path(__file__).parent / "notebook_intro.md").read_text()

CONFIG_GROUPS = [
    ("What to do", ["EVAL"]),
    ("Experiments (one at a time; by default the standard evaluation, which makes every figure)",
     ["LINKEDLISTSEVAL", "LINKINGISSHAM", "SHOWFIRSTHALFFIRST", "NBMASSEDTRIALS", "MASSEDPAIR", "ONLYTWOLASTADJ",
      "HALFNOBARREDPAIRUNTILT18", "BARREDPAIR", "SHOWALLSELECTS", "ADDBARREDPAIR"]),
    ("Modifiers of any evaluation",
     ["FIXEDCUES", "RESETPWEVERYTRIAL", "RESETHIDDENEVERYTRIAL", "RESETETEVERYTRIAL", "MIXNETWORKS", "MIXNETWORKSFILE"]),
    ("Network variants and meta-training (the other training settings: transitive.training.TrainConfig, the "
     "paper's values)",
     ["VECTALPHA", "SCALARALPHA", "POSALPHA", "POSALPHAINITONLY", "FROZENINPUTWEIGHTS", "PROBAOLDDATA",
      "NBEPSBWRESETS", "TRAINEPISODES", "NETWORK"]),
    ("Files, sizes and device", ["BATCHSIZE", "NETFILE", "DRIVEFOLDER", "FIGURES", "SEED", "DEVICE"]),
]
SETUP = """\
from pathlib import Path

import torch
from transitive.evaluation import analysis, stats
from transitive import figures
from transitive.figures import panels
from transitive.evaluation.choices import (CHANGE_TRIAL, CUE_TRIAL, DECODING_STEP, FIRST_TRIAL, VIOLIN_TRIAL, ZOOM_EPISODE,
                                ZOOM_TRIAL, caption_trial)
from transitive.evaluation.keynumbers import headline_markdown, printed, write_key_numbers
from transitive.interface.notebook import NotebookConfig, meta_train, save_and_show
from transitive.figures.panels import DE, by_order
from transitive.evaluation.item_representations import pearson
from transitive.model.task import RESPONSE, STIMULUS
from transitive.training.trainer import read_curve

config = NotebookConfig.from_namespace(globals()).validate()  # one clear line for an impossible combination
device = config.device()  # DEVICE: "auto" is the GPU when there is one
if not EVAL:
    meta_train(config, device)  # says where it saves; stops the notebook with one line if interrupted
netfile = config.network_file()  # NETFILE; when net.dat is missing, our net_active.dat (it says so)
net = config.load_network(device, netfile)
runs = config.runs(net, netfile)  # every experiment runs when a cell first needs it, and is kept for the others


def show(fig, name):
    save_and_show(fig, panels.FIGURES[name].file_name(runs.settings), FIGURES)  # PNG + PDF, the original's name


print(f"{netfile}: eta = {net.etaet.item():.2f}, DAmult = {net.DAmult.item():.2f}; experiment: {config.experiment}, "
      f"{BATCHSIZE} episodes on {device}; figures in {FIGURES}/")"""

TAIL = [
    ("## Similarity preservation\n\nPer episode, the correlation between the items' pairwise similarities in their "
     "feedforward representations psi_t1 and in psi_t2 with P at the start of trial 20 (the representations of "
     "Fig. 4b): how much of the items' similarity structure survives into the learned representation.",
     "if config.experiment in (\"standard\", \"massed\"):\n"
     "    summary = analysis.similarity_summary(runs.main.similarity[CUE_TRIAL])  # over the episodes\n"
     "    print(\", \".join(f\"{name} {value:.3g}\" if isinstance(value, float) else f\"{name} {value}\"\n"
     "                    for name, value in summary.items()))"),
    ("## Raw records (optional)\n\nThe original EVAL mode also saved, per episode K of the experiment (list "
     "linking and sham: 0, 1, 2), `outcomes_K.npz` (keys c, a, cp, r, ac; here also m and rw) and "
     "`allrates_thisep_K.npy` (batch x 200 x steps, about 190 MB for 2000 standard episodes).",
     "SAVE_RECORDS = False  # True: write them into the figures folder\n"
     "if SAVE_RECORDS:\n"
     "    from transitive.evaluation.runs import save_records\n"
     "    print(save_records(runs.selected, FIGURES))"),
    ("## Key numbers\n\nThe paper's headline numbers for the network analysed, beside the published ones. Every "
     "number behind the figures is written to `key_numbers.md` and `key_numbers.json` in the figures folder, with "
     "the name of the network analysed (the command `transitive figures NETFILE --batch BATCHSIZE --seed SEED` "
     "writes the same files).",
     "from IPython.display import Markdown, display\n"
     "paths = write_key_numbers(runs, FIGURES, network=netfile.name)\n"
     "display(Markdown(headline_markdown(paths[0])))  # the headline numbers of the runs made\n"
     "print(f\"every key number: {paths[1]} (and {paths[0].name})\")"),
]


# Cells of their own after a figure's cell.
AFTER = {"SDE": 'if config.experiment == "onlytwolastadj":  # the original prints this, then stops (A,B is never '
                'tested)\n    print(printed(runs, "only_two_last_adjacent"))'}

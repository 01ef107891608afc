"""Fit several expressions to the niobium data with one split and one budget;
write the validation errors as JSON and a markdown table (not a test).

    .venv/bin/python benchmarks/compare_nb.py [--expressions 'G16' 'G8 * G8' ...]
        [--data DIR] [--max-evaluations 40] [--out benchmarks/results/compare_nb]

Default expressions: those of the foundation issue's acceptance criteria.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fitting"))

from compot.data import default_data_dir, read_dataset, train_validation_split  # noqa: E402
from compot.evaluation import evaluate_split  # noqa: E402
from compot.io import atomic_write_json, atomic_write_text, write_model  # noqa: E402
from compot.model import Model  # noqa: E402
from compot.trainer import FitSettings, Trainer  # noqa: E402

DEFAULT = ["G16", "E[G8L4]", "G8 * G8", "E[G8L4] + N[E[G8L4]]"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--expressions", nargs="+", default=DEFAULT)
    p.add_argument("--data", default=str(default_data_dir() / "nb-mvl"))
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--max-evaluations", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "compare_nb"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = read_dataset([args.data], group_by="file")
    train, val = train_validation_split(configs, 0.1, args.seed)
    rows = []
    for expr in args.expressions:
        model = Model(expr, ("Nb",), args.cutoff)
        t0 = time.perf_counter()
        Trainer(model, train, FitSettings(max_evaluations=args.max_evaluations, seed=args.seed),
                progress=lambda i: None).fit()
        sec = time.perf_counter() - t0
        mv, _, _, _ = evaluate_split(model, val)
        mt, _, _, _ = evaluate_split(model, train)
        safe = "".join(c if c.isalnum() else "_" for c in expr)
        write_model(model, out / f"{safe}.params")
        rows.append(dict(expression=expr, n_linear=model.n_linear, n_nonlinear=model.n_nonlinear,
                         fit_seconds=sec, train=mt, validation=mv))
        print(f"{expr:28s} {model.n_linear:3d}+{model.n_nonlinear:2d}  val F RMSE {mv['rmse_force']:.4f} eV/Å  "
              f"E RMSE {1000 * mv['rmse_energy_per_atom']:.2f} meV/atom  ({sec:.0f} s)", flush=True)
        atomic_write_json(out / "compare_nb.json", dict(command=" ".join(sys.argv), rows=rows))
    md = ["| configuration | linear | nonlinear | val E RMSE [meV/atom] | val F RMSE [eV/Å] | "
          "val \\|F\\| RMSE [eV/Å] | val angle RMSE [rad] | train F RMSE [eV/Å] | fit [s] |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        v = r["validation"]
        md.append(f"| `{r['expression']}` | {r['n_linear']} | {r['n_nonlinear']} | {1000 * v['rmse_energy_per_atom']:.2f} "
                  f"| {v['rmse_force']:.4f} | {v['rmse_force_amplitude']:.4f} | {v['rmse_force_angle']:.4f} "
                  f"| {r['train']['rmse_force']:.4f} | {r['fit_seconds']:.0f} |")
    atomic_write_text(out / "compare_nb.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

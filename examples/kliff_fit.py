"""Fit the linear parameters of a compot KIM model with KLIFF's own loss and
optimiser, and compare with compot's own fit on the same configurations.

What this is, precisely. compot's trainer (``compot fit``) does not use KLIFF.
What works with KLIFF is the exported model: ``compot export kim --install``
puts a KIM portable model into the KIM user collection, and KLIFF drives it
through the KIM API like any other KIM model. Here KLIFF does the fitting
itself:

* KLIFF's ``KIMModel`` loads the installed model; the linear parameter blocks
  that compot's trainer solves jointly (the ``n<i>_c`` coefficients and the
  ``n<i>_shift`` shifts; their KIM descriptions say ``role linear``) are made
  fittable with ``set_opt_params``, all other parameters stay as exported;
* KLIFF reads the configurations (``Dataset.from_ase``), its legacy
  ``Calculator`` computes energies and forces through the KIM API, and KLIFF's
  ``Loss`` (``kliff.legacy.loss``, residual ``energy_forces_residual`` with
  weights √w_E and √w_F, not divided by the atom count) is minimised by
  ``Loss.minimize`` with SciPy's Levenberg-Marquardt (``method="lm"``;
  KLIFF's loss is half compot's, the minimum is the same). KLIFF 1.0.1 also has
  ``kliff.trainer.kim_trainer.KIMTrainer``, driven by a training manifest; it
  minimises with ``scipy.optimize.minimize`` only (no least-squares method),
  and its loss multiplies the running total by each configuration's weight,
  so the legacy ``Loss`` is the one that solves this least-squares problem;
* compot solves the same problem its own way: the same configurations
  (converted with :func:`compot.export.configurations_from_kliff`), the same
  weights, the model read from the same parameter file, and
  :meth:`compot.trainer.Trainer.solve` on the same linear blocks (SVD least
  squares, paper Eq. 26: L = Σ_m w_E (E_m − Ê_m)² + Σ_i w_F |F_i − F̂_i|²).

Both start from the exported coefficients (fitted to the whole data set) and
end at the least-squares optimum on the chosen configurations. The script
reports both losses (each solution evaluated by both hosts), the largest
difference of their predictions, and of their coefficients along the
directions the configurations determine (singular values of compot's weighted
design matrix ≥ ``--rcond`` × the largest); it exits with status 1 when the
two fits disagree by more than the tolerances.

KLIFF's ``kliff.legacy.loss`` imports PyTorch, and kliff 1.0.1 pins
``numpy<2`` and ``ase<3.23``: use the ``kliff`` extra in a venv of its own
(``pip install torch --index-url https://download.pytorch.org/whl/cpu``, then
``pip install 'compot[kliff]'``).

    python examples/kliff_fit.py examples/nb/model.params \\
        --data $COMPOT_DATA/nb-mvl/Nb_AIMD.extxyz --n-configs 4
    python examples/kliff_fit.py --model Compot_Nb_1a2b3c4d --params model.params ...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def kim_block(name: str) -> str:
    """KIM parameter name of a compot block (``n1.c`` -> ``n1_c``)."""
    return name.replace(".", "_")


def main(argv=None) -> int:
    from compot.data import default_data_dir

    default_data = default_data_dir()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", help="compot parameter file (exported and installed unless --model is given)")
    ap.add_argument("--model", help="an installed KIM model exported from PARAMS (default: export and install "
                    "PARAMS now, under its default name)")
    ap.add_argument("--data", default=str(default_data / "nb-mvl" / "Nb_AIMD.extxyz"),
                    help="extxyz file with energies and forces (default: the Nb AIMD set)")
    ap.add_argument("--n-configs", type=int, default=4, help="evenly spaced configurations used (default 4)")
    ap.add_argument("--energy-weight", type=float, default=1.0, help="w_E [1/eV²] (default 1)")
    ap.add_argument("--force-weight", type=float, default=1.0, help="w_F [Å²/eV²] (default 1)")
    ap.add_argument("--rcond", type=float, default=1e-6,
                    help="directions with singular value below rcond × the largest count as undetermined")
    ap.add_argument("--loss-rtol", type=float, default=1e-6, help="tolerance on the two fits' losses (relative)")
    ap.add_argument("--json", help="write the comparison to this file")
    args = ap.parse_args(argv)

    from kliff.dataset import Dataset
    from kliff.dataset.weight import Weight
    from kliff.legacy.calculators import Calculator
    from kliff.legacy.loss import Loss
    from kliff.models import KIMModel

    from compot.export import configurations_from_kliff, export_kim
    from compot.io import atomic_write_json, read_model
    from compot.trainer import FitSettings, Trainer

    # --- the KIM model, and the same model in compot
    name = args.model
    if name is None:
        name = export_kim(args.params, out_dir=Path.cwd() / "kim_models", install=True,
                          progress=lambda line: print(f"[export] {line}", file=sys.stderr)).name
    ours = read_model(args.params)
    settings = FitSettings(energy_weight=args.energy_weight, force_weight=args.force_weight)

    # --- configurations, read by KLIFF with the loss weights
    weight = Weight(energy_weight=float(np.sqrt(args.energy_weight)),
                    forces_weight=float(np.sqrt(args.force_weight)), stress_weight=None)
    configs = Dataset.from_ase(path=args.data, weight=weight).get_configs()
    pick = np.unique(np.linspace(0, len(configs) - 1, min(args.n_configs, len(configs))).astype(int))
    configs = [configs[i] for i in pick]
    print(f"{name}: {ours.expression}; {len(configs)} configurations of {args.data} "
          f"({sum(c.get_num_atoms() for c in configs)} atoms)")

    # --- compot's own fit of the linear blocks its trainer solves jointly
    trainer = Trainer(ours, configurations_from_kliff(configs), settings)
    groups = trainer.linear_groups(0)
    if len(groups) != 1:
        print(f"{ours.expression} is not affine in all its linear blocks at once (a product); "
              "this comparison needs a sum", file=sys.stderr)
        return 2
    names = groups[0]
    theta_start = ours.vector(names).copy()
    t0 = time.perf_counter()
    trainer.solve(names)
    t_compot = time.perf_counter() - t0
    theta_compot = ours.vector(names).copy()
    A, b = trainer.data.least_squares_rows(ours, names)

    # --- KLIFF: KIMModel + legacy Calculator + Loss, Levenberg-Marquardt
    model = KIMModel(name)
    params = model.get_model_params()
    start = np.concatenate([np.asarray(params[kim_block(n)].get_numpy_array_model_space(), float).ravel()
                            for n in names])
    if not np.array_equal(start, theta_start):
        print("the installed KIM model's coefficients differ from PARAMS: --model is not an export of it",
              file=sys.stderr)
        return 2
    sizes = np.cumsum([0] + [np.size(ours.params[n]) for n in names])
    model.set_opt_params(**{kim_block(n): [[float(v)] for v in theta_start[sizes[i]:sizes[i + 1]]]
                            for i, n in enumerate(names)})
    calc = Calculator(model)
    cas = calc.create(configs, use_energy=True, use_forces=True, use_stress=False)
    loss = Loss(calc, residual_data={"normalize_by_natoms": False})
    t0 = time.perf_counter()
    result = loss.minimize(method="lm", x_scale="jac", ftol=1e-15, xtol=1e-15, gtol=1e-15)
    t_kliff = time.perf_counter() - t0
    theta_kliff = np.asarray(calc.get_opt_params(), dtype=float)

    # --- compare: losses (both hosts), predictions, determined directions
    def kim_predictions(theta):
        calc.update_model_params(theta)
        out = []
        for ca in cas:
            res = calc.compute(ca)
            out.append(np.concatenate([[res["energy"]], np.ravel(res["forces"])]))
        return np.concatenate(out)

    reference = np.concatenate([np.concatenate([[c.energy], np.ravel(c.forces)]) for c in configs])
    rows = np.concatenate([np.concatenate([[np.sqrt(args.energy_weight)],
                                           np.full(3 * c.get_num_atoms(), np.sqrt(args.force_weight))])
                           for c in configs])

    def kim_loss(theta):
        r = rows * (kim_predictions(theta) - reference)
        return float(r @ r)

    def compot_loss(theta):
        r = A @ theta - b
        return float(r @ r)

    pred_k, pred_c = kim_predictions(theta_kliff), kim_predictions(theta_compot)
    calc.update_model_params(theta_kliff)
    loss_table = {
        "start": {"kim": kim_loss(theta_start), "compot": compot_loss(theta_start)},
        "kliff fit": {"kim": kim_loss(theta_kliff), "compot": compot_loss(theta_kliff)},
        "compot fit": {"kim": kim_loss(theta_compot), "compot": compot_loss(theta_compot)},
    }
    _, sv, vt = np.linalg.svd(A, full_matrices=False)
    good = sv >= args.rcond * sv[0]
    scale = max(np.max(np.abs(theta_compot)), 1e-300)
    dev_good = float(np.max(np.abs(vt[good] @ (theta_kliff - theta_compot))) / scale)
    dev_all = float(np.max(np.abs(theta_kliff - theta_compot)) / scale)
    dpred = float(np.max(np.abs(pred_k - pred_c)))
    rel_loss = abs(loss_table["kliff fit"]["kim"] - loss_table["compot fit"]["kim"]) / loss_table["compot fit"]["kim"]

    print(f"{len(theta_start)} linear coefficients in {', '.join(names)}; {A.shape[0]} residuals; design "
          f"condition number {sv[0] / sv[-1]:.3g}, {int(good.sum())} directions determined "
          f"(singular value >= {args.rcond:g} x the largest)")
    print(f"KLIFF Loss.minimize(method='lm'): {result.nfev} loss evaluations in {t_kliff:.1f} s ({result.message})")
    print(f"compot Trainer.solve (SVD least squares): {t_compot:.2f} s")
    print(f"{'':12s} {'loss via KIM [eV²]':>20s} {'loss via compot [eV²]':>22s}")
    for k, v in loss_table.items():
        print(f"{k:12s} {v['kim']:20.10e} {v['compot']:22.10e}")
    print(f"KLIFF fit vs compot fit: losses differ by {rel_loss:.2e} (relative); predictions by at most "
          f"{dpred:.2e} eV or eV/Å; coefficients by {dev_good:.2e} along the determined directions and "
          f"{dev_all:.2e} overall (relative to max |coefficient|)")
    ok = rel_loss <= args.loss_rtol and loss_table["kliff fit"]["kim"] < loss_table["start"]["kim"]
    print("the two fits agree" if ok else "the two fits DISAGREE")
    if args.json:
        atomic_write_json(args.json, {
            "model": name, "expression": ours.expression, "n_configurations": len(configs),
            "n_coefficients": int(len(theta_start)), "blocks": names, "losses": loss_table,
            "loss_relative_difference": rel_loss, "max_prediction_difference": dpred,
            "determined_directions": int(good.sum()), "coefficient_difference_determined": dev_good,
            "coefficient_difference_all": dev_all, "kliff_nfev": int(result.nfev), "agree": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

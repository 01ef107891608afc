"""Physical sanity outside the data, and material properties (MODEL_SPEC §9).

A fitted model is judged where it was not fitted:

* the energy–volume curve of its ground-state lattice from 0.7 to 1.4 × its
  equilibrium lattice constant must have a single minimum and rise
  monotonically under compression;
* a dimer must be repulsive (dE/dr < 0) below 0.8 × the nearest-neighbour
  distance (checked from 0.5 Å);
* no energy may be NaN or far below the equilibrium energy.

Properties reported next to DFT values derived from the data: lattice
constant a0, cubic elastic constants C11, C12, C44 and bulk modulus B from an
energy–strain fit (Lagrangian strain, |η| ≤ 2.1 %) to the ``Elastic`` set, and
surface energies γ = (E_slab − N e_bulk)/(2A) of the ``Surface`` set.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from .model import Model

log = logging.getLogger(__name__)

EV_PER_A3_TO_GPA = 160.21766208
EV_PER_A2_TO_J_PER_M2 = 16.021766208

__all__ = ["sanity_report", "elastic_fit", "surface_energies", "format_sanity", "plot_sanity"]


def _energies(model: Model, atoms_list) -> np.ndarray:
    return model.evaluate(model.system(atoms_list), forces=False, virial=False).energy_m


def _voigt_strain(cell, cell0) -> np.ndarray:
    """Lagrangian strain η = ½(FᵀF − I) in Voigt form (η11, η22, η33, 2η23, 2η13, 2η12)."""
    Ft = np.linalg.solve(cell0, cell)          # rows are lattice vectors: cell = cell0 Fᵀ
    F = Ft.T
    eta = 0.5 * (F.T @ F - np.eye(3))
    return np.array([eta[0, 0], eta[1, 1], eta[2, 2], 2 * eta[1, 2], 2 * eta[0, 2], 2 * eta[0, 1]])


def elastic_fit(cells, energies_per_atom, n_atoms, cell0, max_strain: float = 0.021, stresses=None) -> dict:
    """Cubic elastic constants from energies (and stresses) of strained cells.

    Fits (E − E0)/V0 = p (η1+η2+η3) + ½C11 Σηi² + C12 Σ_{i<j} ηiηj + ½C44 Σ shear²
    (Voigt engineering shear) by linear least squares over cells with
    max |η| ≤ ``max_strain``. When no cell mixes two normal strains (e.g. the
    uniaxial and shear strains of a typical "Elastic" set) C12 is not
    determined by energies; it is then taken from the stress–strain slope
    σ_yy = σ_zz = C12 η_xx of uniaxial cells if ``stresses`` (ASE Voigt,
    eV/Å³) are given, else reported as unavailable (None).

    Parameters
    ----------
    cells : sequence of (3, 3) arrays [Å]
    energies_per_atom : sequence of float [eV/atom]
    n_atoms : int — atoms per cell (all cells alike)
    cell0 : (3, 3) — reference (unstrained, cubic) cell [Å]
    stresses : optional sequence of (6,) arrays [eV/Å³]

    Returns
    -------
    dict with C11, C12, C44, B [GPa] (C12, B may be None), a0 [Å] (zero of the
    hydrostatic pressure when C12 is known), n_used, c12_source.
    """
    V0 = abs(np.linalg.det(cell0))
    rows, rhs, etas, used = [], [], [], []
    for k, (cell, e) in enumerate(zip(cells, energies_per_atom)):
        eta = _voigt_strain(np.asarray(cell), cell0)
        if np.abs(eta).max() > max_strain:
            continue
        e1, e2, e3, e4, e5, e6 = eta
        rows.append([1.0, e1 + e2 + e3, 0.5 * (e1 ** 2 + e2 ** 2 + e3 ** 2), e1 * e2 + e1 * e3 + e2 * e3,
                     0.5 * (e4 ** 2 + e5 ** 2 + e6 ** 2)])
        rhs.append(e * n_atoms / V0)
        etas.append(eta)
        used.append(k)
    if len(rows) < 8:
        raise ValueError(f"elastic fit: only {len(rows)} cells within |η| ≤ {max_strain}; expected at least 8")
    A = np.array(rows)
    etas = np.array(etas)
    normal = np.abs(etas[:, :3]) > 1e-4
    mixed = bool(np.any(normal.sum(axis=1) >= 2))
    cols = [0, 1, 2, 3, 4] if mixed else [0, 1, 2, 4]
    x, *_ = np.linalg.lstsq(A[:, cols], np.array(rhs), rcond=None)
    coef = dict(zip(["E0", "p", "C11", "C12", "C44"] if mixed else ["E0", "p", "C11", "C44"], x))
    source = "energy" if mixed else None
    if not mixed and stresses is not None:
        xs, ys = [], []
        for k, eta in zip(used, etas):
            i = np.flatnonzero(np.abs(eta[:3]) > 1e-4)
            if len(i) == 1 and np.all(np.abs(eta[3:]) < 1e-4):
                others = [j for j in range(3) if j != i[0]]
                for j in others:
                    xs.append(eta[i[0]])
                    ys.append(stresses[k][j])
        if len(xs) >= 4:
            slope, _ = np.polyfit(xs, ys, 1)
            coef["C12"] = slope
            source = "stress"
    out = {"C11": coef["C11"] * EV_PER_A3_TO_GPA, "C44": coef["C44"] * EV_PER_A3_TO_GPA,
           "C12": None, "B": None, "a0": None, "n_used": len(rows), "c12_source": source}
    if "C12" in coef:
        C11, C12 = coef["C11"], coef["C12"]
        out["C12"] = C12 * EV_PER_A3_TO_GPA
        out["B"] = (C11 + 2 * C12) / 3 * EV_PER_A3_TO_GPA
        eta_h = -coef["p"] / (C11 + 2 * C12)
        out["a0"] = float(np.diag(cell0).mean() * np.sqrt(1 + 2 * eta_h))
    return out


def model_elastic_constants(model: Model, symbol: str, lattice: str, a0: float, h: float = 0.005) -> dict:
    """C11, C12, C44, B [GPa] of a model at its lattice constant a0 from
    uniaxial, biaxial and shear strains of ±h and ±2h (energy–strain fit)."""
    base = _lattice(symbol, lattice, a0)
    cell0 = base.cell.array
    cells = [cell0]
    for amp in (-2 * h, -h, h, 2 * h):
        for eps in (np.diag([amp, 0, 0]), np.diag([amp, amp, 0]),
                    np.array([[0, amp / 2, 0], [amp / 2, 0, 0], [0, 0, 0]])):
            cells.append(cell0 @ (np.eye(3) + eps))
    atoms = []
    for c in cells:
        a = base.copy()
        a.set_cell(c, scale_atoms=True)
        atoms.append(a)
    e = _energies(model, atoms) / len(base)
    return elastic_fit(cells, e, len(base), cell0, max_strain=0.05)


def _reference_cell(cells, energies):
    """The cubic cell (diagonal, equal lengths) of lowest energy."""
    best = None
    for c, e in zip(cells, energies):
        c = np.asarray(c)
        d = np.diag(c)
        if np.allclose(c, np.diag(d), atol=1e-6) and np.ptp(d) < 1e-6 * d.mean():
            if best is None or e < best[1]:
                best = (c, e)
    return best


def _surface_label(info: dict) -> str:
    m = re.search(r"Sur'?\s*:\s*'?(\d+)", str(info.get("source_desc", "")))
    return f"({m.group(1)})" if m else "slab"


def surface_energies(slabs: list[Atoms], slab_energies, e_bulk: float) -> dict:
    """γ = (E_slab − N e_bulk)/(2A) [J/m²] for slabs with vacuum along the third cell vector."""
    out = {}
    for at, e in zip(slabs, slab_energies):
        a, b = at.cell[0], at.cell[1]
        area = np.linalg.norm(np.cross(a, b))
        out[_surface_label(at.info)] = (e - len(at) * e_bulk) / (2 * area) * EV_PER_A2_TO_J_PER_M2
    return out


def _lattice(symbol, lattice, a):
    return bulk(symbol, lattice, a=a, cubic=True)


def sanity_report(model: Model, lattice: str = "bcc", a0: float | None = None,
                  elastic_file: str | Path | None = None, surface_file: str | Path | None = None) -> dict:
    """Sanity checks, curves and properties of a single-species model.

    Parameters
    ----------
    model : Model (one species)
    lattice : 'bcc' or 'fcc' — ground-state lattice to scan
    a0 : float, optional — starting guess of the lattice constant [Å]
        (default: from the elastic data, else 3.3)
    elastic_file, surface_file : optional extxyz files of strained cells and
        slabs (DFT energies) for the property comparison

    Returns
    -------
    dict with keys ``checks`` {name: {passed, detail}}, ``passed``,
    ``ev_curve`` {a_over_a0, energy_per_atom}, ``dimer`` {r, energy},
    ``properties`` {name: {model, dft, relative_error}}.
    """
    from ase.io import read
    from scipy.optimize import minimize_scalar

    if len(model.species) != 1:
        return {"passed": None, "checks": {}, "note": "sanity scans need a single-species model"}
    sym = model.species[0]
    elastic = read(elastic_file, ":") if elastic_file else []
    surfaces = read(surface_file, ":") if surface_file else []
    ref = None
    if elastic:
        ref = _reference_cell([a.cell.array for a in elastic], [a.get_potential_energy() / len(a) for a in elastic])
    guess = a0 or (float(np.diag(ref[0]).mean()) if ref else 3.3)
    n_cell = len(_lattice(sym, lattice, guess))

    def e_of_a(a):
        return float(_energies(model, [_lattice(sym, lattice, a)])[0]) / n_cell

    res = minimize_scalar(e_of_a, bounds=(0.85 * guess, 1.15 * guess), method="bounded",
                          options={"xatol": 1e-6})
    a_eq = float(res.x)
    e_eq = float(res.fun)
    checks = {}
    x = np.linspace(0.7, 1.4, 71)
    cells = [_lattice(sym, lattice, a_eq * s) for s in x]
    ev = _energies(model, cells) / n_cell
    finite = bool(np.all(np.isfinite(ev)))
    i_eq = int(np.argmin(np.abs(x - 1.0)))
    comp = ev[: i_eq + 1]
    local_min = [i for i in range(1, len(ev) - 1) if ev[i] < ev[i - 1] and ev[i] <= ev[i + 1]]
    checks["ev_finite"] = {"passed": finite, "detail": "all energies finite" if finite else "NaN/inf energies"}
    checks["ev_single_minimum"] = {
        "passed": finite and len(local_min) == 1 and abs(x[local_min[0]] - 1.0) < 0.03,
        "detail": f"local minima at a/a0 = {', '.join(f'{x[i]:.2f}' for i in local_min) or 'none'}"}
    mono = bool(np.all(np.diff(comp) < 0))
    checks["ev_rises_under_compression"] = {
        "passed": finite and mono,
        "detail": f"E(0.7 a0) − E(a0) = {comp[0] - e_eq:+.3f} eV/atom; "
                  f"{'monotonic' if mono else 'not monotonic'} from 0.7 a0 to a0"}
    d_nn = a_eq * (np.sqrt(3) / 2 if lattice == "bcc" else 1 / np.sqrt(2))
    r = np.linspace(0.5, model.cutoff, 181)
    dimers = [Atoms(f"{sym}2", positions=[[0, 0, 0], [ri, 0, 0]]) for ri in r]
    ed = _energies(model, dimers)
    inner = r <= 0.8 * d_nn
    rep = bool(np.all(np.diff(ed[inner]) < 0))
    checks["dimer_repulsive"] = {
        "passed": bool(np.all(np.isfinite(ed))) and rep,
        "detail": f"dE/dr < 0 for 0.5 Å ≤ r ≤ {0.8 * d_nn:.2f} Å (0.8 d_nn)" if rep else
                  f"dimer energy not monotonically repulsive below {0.8 * d_nn:.2f} Å "
                  f"(minimum {ed[inner].min():.2f} eV at r = {r[inner][np.argmin(ed[inner])]:.2f} Å)"}
    floor = min(np.nanmin(ev), np.nanmin(ed) / 2)
    checks["no_collapse"] = {"passed": bool(np.isfinite(floor) and floor > e_eq - 10.0),
                             "detail": f"lowest energy {floor:.3f} eV/atom vs equilibrium {e_eq:.3f} eV/atom"}
    props = {"a0": {"model": a_eq, "unit": "Å"}}
    if ref is not None:
        cell0 = ref[0]
        pos_el = [a for a in elastic if len(a) == len(elastic[0])]
        stresses = []
        for a in pos_el:
            try:
                stresses.append(a.get_stress())
            except Exception:  # noqa: BLE001 - a file without stresses: C12 then comes from energies only
                stresses = None
                break
        dft = elastic_fit([a.cell.array for a in pos_el], [a.get_potential_energy() / len(a) for a in pos_el],
                          len(pos_el[0]), cell0, stresses=stresses)
        mod = model_elastic_constants(model, sym, lattice, a_eq)
        if dft["a0"] is not None:
            props["a0"]["dft"] = dft["a0"]
        for k in ("C11", "C12", "C44", "B"):
            props[k] = {"model": mod[k], "unit": "GPa"}
            if dft[k] is not None:
                props[k]["dft"] = dft[k]
        props["C12"]["dft_source"] = dft["c12_source"]
        if surfaces:
            e_bulk_dft = ref[1]
            ref_atoms = [a for a in elastic if np.allclose(a.cell.array, cell0)][0].copy()
            ref_atoms.calc = None
            e_bulk_model = float(_energies(model, [ref_atoms])[0]) / len(ref_atoms)
            slabs = []
            for s in surfaces:
                t = s.copy()
                t.calc = None
                slabs.append(t)
            g_dft = surface_energies(surfaces, [s.get_potential_energy() for s in surfaces], e_bulk_dft)
            g_mod = surface_energies(surfaces, _energies(model, slabs), e_bulk_model)
            for k in g_dft:
                props[f"gamma{k}"] = {"model": g_mod[k], "dft": g_dft[k], "unit": "J/m²"}
    for v in props.values():
        if "dft" in v and v["dft"]:
            v["relative_error"] = (v["model"] - v["dft"]) / abs(v["dft"])
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks, "lattice": lattice,
            "ev_curve": {"a_over_a0": x.tolist(), "energy_per_atom": ev.tolist(), "a0": a_eq},
            "dimer": {"r": r.tolist(), "energy": ed.tolist()}, "properties": props}


def format_sanity(rep: dict, markdown: bool = False) -> str:
    """Pass/fail lines and the property table."""
    if rep.get("passed") is None:
        return rep.get("note", "")
    out = []
    for name, c in rep["checks"].items():
        mark = "PASS" if c["passed"] else "FAIL"
        out.append(f"{'- ' if markdown else ''}{mark} {name}: {c['detail']}")
    out.append("")
    if markdown:
        out += ["| property | model | DFT | relative error |", "|---|---|---|---|"]
    else:
        out.append(f"{'property':14s} {'model':>10s} {'DFT':>10s} {'rel. error':>11s}")
    for k, v in rep["properties"].items():
        dft = f"{v['dft']:.4g}" if "dft" in v else "—"
        rel = f"{100 * v['relative_error']:+.1f} %" if "relative_error" in v else "—"
        label = f"{k} [{v['unit']}]"
        if markdown:
            out.append(f"| {label} | {v['model']:.4g} | {dft} | {rel} |")
        else:
            out.append(f"{label:14s} {v['model']:10.4g} {dft:>10s} {rel:>11s}")
    if rep["properties"].get("C12", {}).get("dft_source") == "stress":
        out.append("DFT C12 and B from the stress–strain slope of uniaxial cells: the elastic set has no "
                   "mixed normal strains, so energies alone do not determine C12.")
    out.append("DFT values: energy–strain fit (|η| ≤ 2.1 %) of the elastic set; surface energies of the "
               "unrelaxed DFT slabs, model and DFT on the same geometries.")
    return "\n".join(out)


def plot_sanity(rep: dict, path, title: str) -> Path | None:
    """E–V and dimer curves side by side (PNG, written atomically)."""
    if rep.get("passed") is None:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .evaluation import _savefig

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    ev = rep["ev_curve"]
    a1.plot(ev["a_over_a0"], ev["energy_per_atom"], "o-", ms=2)
    a1.axvspan(0.96, 1.04, color="tab:green", alpha=0.15, label="range of the training data (±4 %)")
    a1.set_xlabel(f"a / a0 (a0 = {ev['a0']:.4f} Å, {rep['lattice']})")
    a1.set_ylabel("energy [eV/atom]")
    a1.legend(fontsize=8)
    ok = "pass" if rep["checks"]["ev_single_minimum"]["passed"] and rep["checks"]["ev_rises_under_compression"]["passed"] else "FAIL"
    a1.set_title(f"energy–volume: {ok}", fontsize=10)
    d = rep["dimer"]
    a2.plot(d["r"], d["energy"], "-")
    a2.set_xlabel("dimer distance r [Å]")
    a2.set_ylabel("dimer energy [eV]")
    e = np.array(d["energy"])
    lo, hi = np.nanmin(e), np.nanpercentile(e, 60)
    a2.set_ylim(lo - 0.1 * abs(hi - lo) - 0.5, max(hi, lo) + abs(hi - lo) + 5)
    a2.set_title(f"dimer: {'pass' if rep['checks']['dimer_repulsive']['passed'] else 'FAIL'}", fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    _savefig(fig, path)
    plt.close(fig)
    return path

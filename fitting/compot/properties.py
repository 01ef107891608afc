"""Material properties of a model next to DFT values derived from the data.

The lattice constant a0, the cubic elastic constants C11, C12, C44 and the bulk
modulus B from an energy–strain fit (Lagrangian strain, |η| ≤ 2.1 %) to the
``Elastic`` set, and surface energies γ = (E_slab − N e_bulk)/(2A) of the
``Surface`` set, model and DFT on the same geometries. ``compot validate`` and
``compot fit`` report them with the sanity checks (:mod:`compot.sanity`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase import Atoms

from . import derive
from .model import Model

__all__ = ["elastic_fit", "model_elastic_constants", "surface_energies", "model_surface_energies", "material_properties",
           "model_energies", "EV_PER_A3_TO_GPA", "EV_PER_A2_TO_J_PER_M2"]

EV_PER_A3_TO_GPA = 160.21766208
EV_PER_A2_TO_J_PER_M2 = 16.021766208


def model_energies(model: Model, atoms_list) -> np.ndarray:
    """Total energies [eV] of a list of ase.Atoms, shape (n_configurations,)."""
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
    base = derive.Lattice(lattice, float(a0), symbol).atoms()
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
    e = model_energies(model, atoms) / len(base)
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
    return f"({m.group(1)})" if m else f" {info.get('label', 'slab')}"


def _reference_atoms(path) -> list[Atoms]:
    """The configurations of a reference file as ase.Atoms carrying their DFT energy, forces and
    stress: extended XYZ through ASE (keeping ``source_desc``), any other format compot reads
    (MVL JSON, ...) through :func:`compot.data.read_configurations` (slabs then labelled by index)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from .data import read_configurations

    path = Path(path)
    if path.suffix.lower() in (".xyz", ".extxyz"):
        from ase.io import read
        return read(path, ":")
    out = []
    for k, c in enumerate(read_configurations(path, min_distance=None)):
        at = c.to_atoms()
        extra = {} if c.stress is None else {"stress": c.stress}
        at.calc = SinglePointCalculator(at, energy=c.energy, forces=c.forces, **extra)
        at.info["label"] = f"{path.stem}:{k}"
        out.append(at)
    return out


def surface_energies(slabs: list[Atoms], slab_energies, e_bulk: float) -> dict:
    """γ = (E_slab − N e_bulk)/(2A) [J/m²] for slabs with vacuum along the third cell vector."""
    out = {}
    for at, e in zip(slabs, slab_energies):
        a, b = at.cell[0], at.cell[1]
        area = np.linalg.norm(np.cross(a, b))
        out[_surface_label(at.info)] = (e - len(at) * e_bulk) / (2 * area) * EV_PER_A2_TO_J_PER_M2
    return out


def model_surface_energies(model: Model, slabs: list[Atoms], bulk: Atoms) -> dict:
    """γ [J/m²] of the model for each slab (:func:`surface_energies`), its bulk energy per
    atom being the model's on the crystal ``bulk``; what the structures carry (a DFT
    calculator, results) is not used."""
    e_bulk = float(model_energies(model, [bulk])[0]) / len(bulk)
    return surface_energies(list(slabs), model_energies(model, list(slabs)), e_bulk)


def material_properties(model: Model, sym: str, lat: derive.Lattice, elastic_file, surface_file) -> dict:
    """Lattice constant, cubic elastic constants and surface energies of a model next to DFT.

    Parameters
    ----------
    model : Model — single species ``sym``
    lat : compot.derive.Lattice — the model's equilibrium lattice (its ``a0`` [Å])
    elastic_file, surface_file : path or None — strained cells and slabs with DFT energies
        (and stresses, for C12); either may be None

    Returns
    -------
    dict name → {model, dft (when known), unit, relative_error}: ``a0`` [Å]; ``C11``,
    ``C12``, ``C44``, ``B`` [GPa] (bcc and fcc with an elastic file); ``gamma(hkl)``
    [J/m²] per slab (with both files).
    """
    a_eq = lat.a0
    props = {"a0": {"model": a_eq, "unit": "Å"}}
    elastic = _reference_atoms(elastic_file) if elastic_file else []
    surfaces = _reference_atoms(surface_file) if surface_file else []
    ref = None
    if elastic:
        ref = _reference_cell([a.cell.array for a in elastic], [a.get_potential_energy() / len(a) for a in elastic])
    if ref is not None and lat.kind in ("bcc", "fcc"):
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
        mod = model_elastic_constants(model, sym, lat.kind, a_eq)
        if dft["a0"] is not None:
            props["a0"]["dft"] = dft["a0"]
        for k in ("C11", "C12", "C44", "B"):
            props[k] = {"model": mod[k], "unit": "GPa"}
            if dft[k] is not None:
                props[k]["dft"] = dft[k]
        props["C12"]["dft_source"] = dft["c12_source"]
        if surfaces:
            bulk = [a for a in elastic if np.allclose(a.cell.array, cell0)][0]
            g_dft = surface_energies(surfaces, [s.get_potential_energy() for s in surfaces], ref[1])
            g_mod = model_surface_energies(model, surfaces, bulk)
            for k in g_dft:
                props[f"gamma{k}"] = {"model": g_mod[k], "dft": g_dft[k], "unit": "J/m²"}
    for v in props.values():
        if "dft" in v and v["dft"]:
            v["relative_error"] = (v["model"] - v["dft"]) / abs(v["dft"])
    return props

"""Does the data's stress agree with its energies? A check before stress is fitted.

The stress is the energy's strain derivative, σ = (1/V) ∂E/∂ε (ASE sign, tensile
positive). Where the data holds two configurations of the same atoms at the same
fractional positions in two cells related by a small homogeneous strain ε (elastic
sets, equation-of-state scans), the energy difference must follow from the two
stresses. In a's frame, with the deformation gradient F (cell_b = cell_a Fᵀ), the
Green–Lagrange strain E = ½ (FᵀF − I) and the second Piola–Kirchhoff stresses
(V σ for a, V_b F⁻¹ σ_b F⁻ᵀ for b), the trapezoidal rule along the strain path gives

    ΔE_σ = ½ (V_a σ_a + V_b F⁻¹ σ_b F⁻ᵀ) : E,

exact to O(|E|³) and blind to rotations (sheared cells in the data are simple shears,
a strain plus a rotation). The check pairs each such configuration with its nearest strained
partner, compares ΔE_σ with the DFT ΔE, and reports per group how many pairs
disagree. Configurations without a strained partner (AIMD snapshots) cannot be
checked. A group whose stresses disagree with its energies can then be left out of
the stress loss by name (``fit.stress_exclude``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .data import Configuration

__all__ = ["stress_energy_consistency", "strain_between", "stress_energy_change", "disagreeing_groups",
           "consistency_markdown"]

#: A group's shear (or normal) stresses disagree when the RMS of ΔE − ΔE_σ over its
#: shear (normal) pairs exceeds this fraction of the RMS of ΔE. Measured on the elastic
#: sets: 0.8–2.6 % for every normal set and for Mo, W shear, 6 % for Ta shear, 23 % for Nb shear.
REL_TOL = 0.1
#: Pairs whose strain (largest |E_ab|) exceeds this are not used.
MAX_STRAIN = 0.03
#: Fewer pairs of a kind than this are not judged (on every 12th configuration of the
#: elastic sets, 3 pairs of 3 % strain steps gave false alarms of 15–30 %).
MIN_PAIRS = 5
#: Nor pairs whose RMS ΔE is below this [eV/atom]: near-identical cells (the NbTa and MoW
#: solid-solution sets hold some, RMS ΔE 0.09–0.5 meV/atom) differ by DFT noise.
MIN_CHANGE = 5e-4
#: Nor a mismatch below this [eV/atom], the energy noise of the DFT data.
MIN_MISMATCH = 2e-4


def strain_between(cell_a: np.ndarray, cell_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strain taking cell a to cell b (lattice vectors as rows, [Å]).

    Returns
    -------
    strain : ndarray, shape (3, 3) — Green–Lagrange strain E = ½ (FᵀF − I) (dimensionless)
    F : ndarray, shape (3, 3) — deformation gradient, cell_b = cell_a Fᵀ
    """
    F = np.linalg.solve(cell_a, cell_b).T
    return 0.5 * (F.T @ F - np.eye(3)), F


def _tensor(voigt: np.ndarray) -> np.ndarray:
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def stress_energy_change(a: Configuration, b: Configuration) -> tuple[float, np.ndarray]:
    """ΔE_σ [eV] from configuration a to b predicted by their stresses, and the strain.

    Parameters
    ----------
    a, b : Configuration — the same atoms at the same fractional positions, with stresses

    Returns
    -------
    dE : float — ½ (V_a σ_a + V_b F⁻¹ σ_b F⁻ᵀ) : E [eV]
    eps : ndarray, shape (3, 3) — the Green–Lagrange strain E
    """
    eps, F = strain_between(a.cell, b.cell)
    va, vb = abs(np.linalg.det(a.cell)), abs(np.linalg.det(b.cell))
    Finv = np.linalg.inv(F)
    work = 0.5 * (va * _tensor(a.stress) + vb * Finv @ _tensor(b.stress) @ Finv.T)
    return float(np.sum(work * eps)), eps


def _key(c: Configuration) -> tuple:
    """Configurations that may be strained copies of each other share this key."""
    frac = np.linalg.solve(c.cell.T, c.positions.T).T % 1.0
    frac = np.round(frac, 3) % 1.0
    return (c.symbols, tuple(np.round(frac, 3).ravel()))


def stress_energy_consistency(configs: Sequence[Configuration]) -> dict:
    """Compare the DFT stresses with the energy–strain slopes, group by group.

    Parameters
    ----------
    configs : sequence of Configuration — only periodic ones with a stress are used

    Returns
    -------
    dict
        ``groups``: per group with checkable pairs, ``n_pairs`` and, for the pairs whose
        strain is mainly ``shear`` and mainly ``normal`` (each when it has ≥ 5 pairs):
        ``n_pairs``, ``rms_mismatch`` = sqrt(mean ((ΔE − ΔE_σ)/N)²) and ``rms_change`` =
        sqrt(mean (ΔE/N)²) [eV/atom], ``relative`` (their ratio), ``slope`` (least squares
        of ΔE on ΔE_σ; 1 when consistent); ``worst`` (sources, ΔE/N and ΔE_σ/N [eV/atom],
        strain) and ``disagrees``: the kinds whose ``relative`` exceeds :data:`REL_TOL`
        (judged only when their RMS ΔE is at least :data:`MIN_CHANGE` and their RMS mismatch
        above :data:`MIN_MISMATCH`).
        ``unchecked``: group → number of configurations with a stress but no strained
        partner; ``tolerances``.
    """
    buckets: dict[tuple, list[Configuration]] = {}
    unchecked: dict[str, int] = {}
    for c in configs:
        if c.stress is None or not np.all(c.pbc) or abs(np.linalg.det(c.cell)) < 1e-12:
            continue
        buckets.setdefault((c.group,) + _key(c), []).append(c)
    groups: dict[str, dict] = {}
    for (group, *_), members in buckets.items():
        pairs = set()
        for i, a in enumerate(members):
            best, best_size = None, np.inf
            for j, b in enumerate(members):
                if i == j:
                    continue
                eps, _ = strain_between(a.cell, b.cell)
                size = float(np.abs(eps).max())
                if 1e-6 < size <= MAX_STRAIN and size < best_size:
                    best, best_size = j, size
            if best is not None:
                pairs.add((min(i, best), max(i, best)))
        checked = {k for p in pairs for k in p}
        if len(checked) < len(members):
            unchecked[group] = unchecked.get(group, 0) + len(members) - len(checked)
        g = groups.setdefault(group, {"rows": []})
        for i, j in sorted(pairs):
            a, b = members[i], members[j]
            de_sigma, eps = stress_energy_change(a, b)
            n = a.n_atoms
            shear = np.abs(eps - np.diag(np.diag(eps))).max() > np.abs(np.diag(eps)).max()
            g["rows"].append(((b.energy - a.energy) / n, de_sigma / n, shear, a.source, b.source,
                              float(np.abs(eps).max())))
    out = {}
    for group, g in sorted(groups.items()):
        rows = g["rows"]
        if not rows:
            continue
        de = np.array([r[0] for r in rows])
        ds = np.array([r[1] for r in rows])
        shear = np.array([r[2] for r in rows])
        entry = {"n_pairs": len(rows)}
        for kind, sel in (("shear", shear), ("normal", ~shear)):
            if sel.sum() < MIN_PAIRS:
                continue
            mis = float(np.sqrt(np.mean((de[sel] - ds[sel]) ** 2)))
            change = float(np.sqrt(np.mean(de[sel] ** 2)))
            entry[kind] = {"n_pairs": int(sel.sum()), "rms_mismatch": mis, "rms_change": change,
                           "relative": mis / change if change > 0 else float("nan"),
                           "slope": float(de[sel] @ ds[sel] / (ds[sel] @ ds[sel])) if ds[sel].any() else float("nan")}
        w = int(np.argmax(np.abs(de - ds)))
        entry["worst"] = {"sources": [rows[w][3], rows[w][4]], "dE_per_atom": float(de[w]),
                          "dE_stress_per_atom": float(ds[w]), "strain": rows[w][5]}
        entry["disagrees"] = [k for k in ("shear", "normal") if k in entry and entry[k]["rms_change"] >= MIN_CHANGE
                              and entry[k]["rms_mismatch"] > MIN_MISMATCH and entry[k]["relative"] > REL_TOL]
        out[group] = entry
    return {"groups": out, "unchecked": unchecked,
            "tolerances": {"relative": REL_TOL, "max_strain": MAX_STRAIN, "min_pairs": MIN_PAIRS,
                           "min_change_eV_per_atom": MIN_CHANGE, "min_mismatch_eV_per_atom": MIN_MISMATCH}}


def disagreeing_groups(report: dict) -> list[str]:
    """Names of the groups of a :func:`stress_energy_consistency` report whose stresses
    disagree with their energies (shear or normal)."""
    return [g for g, r in report["groups"].items() if r["disagrees"]]


def consistency_markdown(report: dict) -> list[str]:
    """Lines of a markdown table of a :func:`stress_energy_consistency` report."""
    lines = ["| group | strain | pairs | RMS ΔE [meV/atom] | RMS (ΔE − ΔE_σ) [meV/atom] | relative | slope | verdict |",
             "|---|---|--:|--:|--:|--:|--:|---|"]
    for g, r in report["groups"].items():
        for kind in ("normal", "shear"):
            if kind in r:
                k = r[kind]
                verdict = ("**disagrees**" if kind in r["disagrees"] else "agrees" if k["rms_change"] >= MIN_CHANGE
                           else "ΔE too small to judge")
                lines.append(f"| {g} | {kind} | {k['n_pairs']} | {1e3 * k['rms_change']:.3f} | "
                             f"{1e3 * k['rms_mismatch']:.3f} | {k['relative']:.3f} | {k['slope']:.3f} | {verdict} |")
    if report["unchecked"]:
        lines += ["", "Configurations without a strained partner (not checkable): "
                  + ", ".join(f"{g} {n}" for g, n in sorted(report["unchecked"].items())) + "."]
    return lines

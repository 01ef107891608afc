"""Error metrics of predicted energies and forces against reference data.

Implements the evaluation of MODEL_SPEC §7, i.e. the four root-mean-square
errors of Sec. IV.2 of [1] (Eqs. 29–33), plus mean absolute errors, which are
what other benchmarks (e.g. mlearn, Zuo et al. 2020) tabulate.

References
----------
.. [1] Y. Wang, M. K. Transtrum, V. Lordi, V. V. Bulatov, A. Samanta,
   "Composable and adaptive design of machine learning interatomic potentials
   guided by Fisher-information analysis", arXiv:2504.19372 (2025).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from compot.data import Configuration
from compot.data.weighted import GPA
from compot.errors import DatasetError

__all__ = [
    "METRIC_KEYS",
    "error_metrics",
    "force_angles",
    "format_markdown_table",
    "format_table",
    "metrics_by_group",
    "offset_energy_errors",
    "offset_residuals",
    "stress_errors",
]

#: Keys of the dictionary returned by :func:`error_metrics`.
METRIC_KEYS = (
    "rmse_energy_per_atom",
    "rmse_force",
    "rmse_force_amplitude",
    "rmse_force_angle",
    "mae_energy_per_atom",
    "mae_force",
    "n_configurations",
    "n_atoms",
    "rmse_stress",
    "mae_stress",
    "n_stress",
    "rmse_energy_offset",
    "mae_energy_offset",
)

#: Reference forces with a norm at or below this [eV/Å] have no direction and
#: are left out of the force-angle RMSE.
ZERO_FORCE = 1e-8


def _gather(
    references: Sequence[Configuration],
    energies: Sequence[float],
    forces: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stack references and predictions, checking counts, shapes and finiteness.

    Returns
    -------
    n_m : ndarray, shape (n_configurations,)
        Atom counts.
    e_ref_m, e_pred_m : ndarray, shape (n_configurations,)
        Total energies [eV].
    f_ref_ac, f_pred_ac : ndarray, shape (n_atoms_total, 3)
        Forces of all atoms of all configurations [eV/Å].
    """
    if len(references) == 0:
        raise DatasetError("error_metrics: no reference configurations; expected at least 1")
    if len(energies) != len(references) or len(forces) != len(references):
        raise DatasetError(
            f"error_metrics: {len(references)} reference configurations but "
            f"{len(energies)} predicted energies and {len(forces)} predicted force arrays; "
            "expected one of each per configuration"
        )
    e_pred_m = np.asarray(energies, dtype=float).reshape(-1)
    if e_pred_m.shape != (len(references),):
        raise DatasetError(
            f"error_metrics: predicted energies have shape {np.shape(energies)}; "
            f"expected ({len(references)},)"
        )
    f_pred = []
    for m, (ref, f) in enumerate(zip(references, forces, strict=True)):
        f = np.asarray(f, dtype=float)
        if f.shape != (ref.n_atoms, 3):
            raise DatasetError(
                f"error_metrics: predicted forces for configuration {m} ({ref.source}) have shape "
                f"{f.shape}; expected (n_atoms, 3) = ({ref.n_atoms}, 3)"
            )
        f_pred.append(f)
    f_pred_ac = np.concatenate(f_pred)
    if not (np.isfinite(e_pred_m).all() and np.isfinite(f_pred_ac).all()):
        raise DatasetError("error_metrics: predicted energies or forces contain NaN or inf")
    n_m = np.array([ref.n_atoms for ref in references], dtype=float)
    e_ref_m = np.array([ref.energy for ref in references], dtype=float)
    f_ref_ac = np.concatenate([ref.forces for ref in references])
    return n_m, e_ref_m, e_pred_m, f_ref_ac, f_pred_ac


def force_angles(f_ref_ac: np.ndarray, f_pred_ac: np.ndarray) -> np.ndarray:
    """Angles between reference and predicted forces, atom by atom.

    θ_i = atan2(|F_i × F̂_i|, F_i · F̂_i), accurate for small and for nearly
    antiparallel angles (unlike arccos of the normalised dot product).

    Parameters
    ----------
    f_ref_ac, f_pred_ac : ndarray, shape (n_atoms, 3)
        Reference and predicted forces [eV/Å].

    Returns
    -------
    ndarray, shape (n_included,)
        Angles [rad] in [0, π] for the atoms whose reference force norm exceeds
        :data:`ZERO_FORCE`. A predicted force of exactly zero has no direction;
        it is given θ = π/2, the mean angle to a uniformly random direction,
        so that it is penalised rather than silently skipped (atan2(0, 0)
        would give 0, a perfect score).
    """
    f_ref_ac = np.asarray(f_ref_ac, dtype=float)
    f_pred_ac = np.asarray(f_pred_ac, dtype=float)
    include = np.linalg.norm(f_ref_ac, axis=1) > ZERO_FORCE
    a = f_ref_ac[include]
    b = f_pred_ac[include]
    theta = np.arctan2(np.linalg.norm(np.cross(a, b), axis=1), np.einsum("ac,ac->a", a, b))
    theta[~np.any(b != 0.0, axis=1)] = 0.5 * np.pi
    return theta


def stress_errors(references: Sequence[Configuration], stresses: Sequence | None) -> dict:
    """Stress errors over the configurations that have both a reference and a predicted stress.

    Parameters
    ----------
    references : sequence of Configuration, length n_configurations
    stresses : sequence of (ndarray, shape (6,), or None), length n_configurations, or None
        Predicted stresses σ̂ [eV/Å³], Voigt order (xx, yy, zz, yz, xz, xy), ASE sign
        (tensile positive), as ``Configuration.stress``; None for a configuration
        without one (no periodic cell).

    Returns
    -------
    dict
        ``rmse_stress`` = sqrt(mean_{m,k} (σ_mk − σ̂_mk)²) and ``mae_stress`` = mean |σ_mk − σ̂_mk|
        over the six components [GPa] (NaN when no configuration has both), ``n_stress``
        the number of configurations counted.

    Raises
    ------
    DatasetError
        A count that differs from the references, or a stress that is not of shape (6,).
    """
    pairs = []
    if stresses is not None:
        if len(stresses) != len(references):
            raise DatasetError(f"stress_errors: {len(references)} reference configurations but "
                               f"{len(stresses)} predicted stresses; expected one (or None) per configuration")
        for m, (ref, s) in enumerate(zip(references, stresses, strict=True)):
            if s is None or ref.stress is None:
                continue
            s = np.asarray(s, dtype=float)
            if s.shape != (6,):
                raise DatasetError(f"stress_errors: predicted stress of configuration {m} ({ref.source}) has "
                                   f"shape {s.shape}; expected (6,) [eV/Å³], Voigt order")
            pairs.append(GPA * (ref.stress - s))
    if not pairs:
        return {"rmse_stress": math.nan, "mae_stress": math.nan, "n_stress": 0}
    d = np.concatenate(pairs)
    return {"rmse_stress": float(np.sqrt(np.mean(d ** 2))), "mae_stress": float(np.mean(np.abs(d))),
            "n_stress": len(pairs)}


def offset_residuals(references: Sequence[Configuration], energies: Sequence[float]) -> np.ndarray:
    """Energy errors per atom that per-species offsets cannot remove.

    Models and peers whose reference energies (isolated atoms, pseudopotentials)
    differ disagree by a constant per species. The offsets μ_s [eV/atom] are the least
    squares of ΔE_m/N_m = (E_m − Ê_m)/N_m on the composition x_ms = N_ms/N_m; what is
    left is r_m = ΔE_m/N_m − Σ_s x_ms μ_s (for one species: the error minus its mean).

    Parameters
    ----------
    references : sequence of Configuration, length n_configurations
    energies : sequence of float — predicted total energies Ê_m [eV]

    Returns
    -------
    ndarray, shape (n_configurations,) — r_m [eV/atom]
    """
    species = sorted({s for ref in references for s in ref.symbols})
    X = np.array([[ref.symbols.count(s) / ref.n_atoms for s in species] for ref in references])
    d = np.array([(ref.energy - e) / ref.n_atoms for ref, e in zip(references, energies, strict=True)])
    mu, *_ = np.linalg.lstsq(X, d, rcond=None)
    return d - X @ mu


def offset_energy_errors(references: Sequence[Configuration], energies: Sequence[float]) -> dict:
    """Energy errors per atom after the best per-species offsets of these configurations
    (:func:`offset_residuals` r_m).

    Returns
    -------
    dict
        ``rmse_energy_offset`` = sqrt(mean_m r_m²), ``mae_energy_offset`` = mean_m |r_m| [eV/atom].
    """
    r = offset_residuals(references, energies)
    return {"rmse_energy_offset": float(np.sqrt(np.mean(r ** 2))), "mae_energy_offset": float(np.mean(np.abs(r)))}


def error_metrics(
    references: Sequence[Configuration],
    energies: Sequence[float],
    forces: Sequence[np.ndarray],
    stresses: Sequence | None = None,
) -> dict:
    """Energy and force errors of predictions against reference configurations.

    The RMSEs are those of MODEL_SPEC §7 (Eqs. 29–33 of [1]), with N_m the
    number of atoms of configuration m, F_i the reference and F̂_i the
    predicted force on atom i (all atoms of all configurations)::

        rmse_energy_per_atom = sqrt(mean_m ((E_m − Ê_m) / N_m)²)      [eV/atom]
        rmse_force           = sqrt(mean_{i,c} (F_ic − F̂_ic)²)        [eV/Å]
        rmse_force_amplitude = sqrt(mean_i (|F_i| − |F̂_i|)²)          [eV/Å]
        rmse_force_angle     = sqrt(mean_i θ_i²), |F_i| > 1e-8 eV/Å    [rad]

    with θ_i from :func:`force_angles` (a predicted force of exactly zero
    against a non-zero reference counts as π/2). ``rmse_force_angle`` is NaN
    when no reference force is non-zero (e.g. the Nb elastic set, whose
    forces vanish by symmetry).

    Parameters
    ----------
    references : sequence of Configuration, length n_configurations
    energies : sequence of float, length n_configurations
        Predicted total energies Ê_m [eV].
    forces : sequence of ndarray, each shape (n_atoms_m, 3)
        Predicted forces F̂ [eV/Å].
    stresses : sequence of (ndarray, shape (6,), or None), optional
        Predicted stresses [eV/Å³] (:func:`stress_errors`).

    Returns
    -------
    dict
        Keys exactly :data:`METRIC_KEYS`: the four RMSEs above,
        ``mae_energy_per_atom`` = mean_m |E_m − Ê_m| / N_m [eV/atom],
        ``mae_force`` = mean_{i,c} |F_ic − F̂_ic| [eV/Å] (floats),
        ``n_configurations``, ``n_atoms`` (ints), the stress errors of
        :func:`stress_errors` [GPa] (NaN without ``stresses``) and the energy errors
        after per-species offsets of :func:`offset_energy_errors` [eV/atom].

    Raises
    ------
    DatasetError
        No references, mismatched counts, a force array of the wrong shape,
        or non-finite predictions.

    References
    ----------
    .. [1] Wang et al., arXiv:2504.19372 (2025), Sec. IV.2.
    """
    n_m, e_ref_m, e_pred_m, f_ref_ac, f_pred_ac = _gather(references, energies, forces)
    de_m = (e_ref_m - e_pred_m) / n_m
    df_ac = f_ref_ac - f_pred_ac
    d_amp_a = np.linalg.norm(f_ref_ac, axis=1) - np.linalg.norm(f_pred_ac, axis=1)
    theta = force_angles(f_ref_ac, f_pred_ac)
    return {
        "rmse_energy_per_atom": float(np.sqrt(np.mean(de_m**2))),
        "rmse_force": float(np.sqrt(np.mean(df_ac**2))),
        "rmse_force_amplitude": float(np.sqrt(np.mean(d_amp_a**2))),
        "rmse_force_angle": float(np.sqrt(np.mean(theta**2))) if theta.size else math.nan,
        "mae_energy_per_atom": float(np.mean(np.abs(de_m))),
        "mae_force": float(np.mean(np.abs(df_ac))),
        "n_configurations": int(len(references)),
        "n_atoms": int(f_ref_ac.shape[0]),
        **stress_errors(references, stresses),
        **offset_energy_errors(references, e_pred_m),
    }


def metrics_by_group(
    references: Sequence[Configuration],
    energies: Sequence[float],
    forces: Sequence[np.ndarray],
    stresses: Sequence | None = None,
) -> dict[str, dict]:
    """:func:`error_metrics` for each group of configurations separately.

    Parameters
    ----------
    references, energies, forces, stresses
        As for :func:`error_metrics`.

    Returns
    -------
    dict of str to dict
        One :func:`error_metrics` dictionary per ``Configuration.group``, in
        sorted group order. For a table with an overall row use
        ``{"all": error_metrics(...), **metrics_by_group(...)}``.
    """
    if len(energies) != len(references) or len(forces) != len(references):
        _gather(references, energies, forces)  # raises the mismatch error
    members: dict[str, list[int]] = {}
    for m, ref in enumerate(references):
        members.setdefault(ref.group, []).append(m)
    return {
        name: error_metrics(
            [references[m] for m in members[name]],
            [energies[m] for m in members[name]],
            [forces[m] for m in members[name]],
            None if stresses is None else [stresses[m] for m in members[name]],
        )
        for name in sorted(members)
    }


#: Table columns: (header, unit, metric key, scale, format).
_COLUMNS = (
    ("configs", "", "n_configurations", 1, "d"),
    ("atoms", "", "n_atoms", 1, "d"),
    ("E RMSE", "meV/atom", "rmse_energy_per_atom", 1e3, ".3f"),
    ("E MAE", "meV/atom", "mae_energy_per_atom", 1e3, ".3f"),
    ("E RMSE after offsets", "meV/atom", "rmse_energy_offset", 1e3, ".3f"),
    ("F RMSE", "eV/Å", "rmse_force", 1, ".4f"),
    ("F MAE", "eV/Å", "mae_force", 1, ".4f"),
    ("σ RMSE", "GPa", "rmse_stress", 1, ".3f"),
    ("σ MAE", "GPa", "mae_stress", 1, ".3f"),
    ("|F| RMSE", "eV/Å", "rmse_force_amplitude", 1, ".4f"),
    ("angle RMSE", "rad", "rmse_force_angle", 1, ".4f"),
)

#: Columns shown only when some row has a value (stress: only data with stresses).
_OPTIONAL = {"rmse_stress": "n_stress", "mae_stress": "n_stress"}


def _cells(rows: dict[str, dict], label: str) -> tuple[list[str], list[list[str]]]:
    """Header strings and formatted cell strings of a metrics table."""
    columns = [c for c in _COLUMNS
               if c[2] not in _OPTIONAL or any(m.get(_OPTIONAL[c[2]]) for m in rows.values())]
    header = [label] + [f"{h} [{u}]" if u else h for h, u, *_ in columns]
    body = []
    for name, metrics in rows.items():
        line = [str(name)]
        for _, _, key, scale, fmt in columns:
            value = metrics.get(key)
            if value is None:
                line.append("-")
            elif isinstance(value, float) and math.isnan(value):
                line.append("n/a")
            else:
                line.append(format(value * scale if scale != 1 else value, fmt))
        body.append(line)
    return header, body


def format_table(rows: dict[str, dict], label: str = "set") -> str:
    """Fixed-width text table of metrics, one row per labelled set.

    Energies are shown in meV/atom, forces in eV/Å, the force angle in rad;
    ``n/a`` marks a NaN (e.g. no non-zero reference force).

    Parameters
    ----------
    rows : dict of str to dict
        Row label → :func:`error_metrics` dictionary (e.g. the output of
        :func:`metrics_by_group`).
    label : str, default "set"
        Header of the label column.

    Returns
    -------
    str
        Lines joined by ``\\n`` (no trailing newline); label column
        left-aligned, numbers right-aligned.
    """
    header, body = _cells(rows, label)
    widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body)])


def format_markdown_table(rows: dict[str, dict], label: str = "set") -> str:
    """The table of :func:`format_table` as a GitHub-flavoured markdown table.

    Parameters
    ----------
    rows : dict of str to dict
        Row label → :func:`error_metrics` dictionary.
    label : str, default "set"
        Header of the label column.

    Returns
    -------
    str
        Markdown table, columns padded for readability as plain text too;
        ``|`` inside a cell (``|F| RMSE``) is escaped as ``\\|``.
    """
    header, body = _cells(rows, label)
    header = [c.replace("|", "\\|") for c in header]
    body = [[c.replace("|", "\\|") for c in row] for row in body]
    widths = [max(3, *(len(r[k]) for r in [header, *body])) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cells[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    align = (
        "|"
        + "|".join([":" + "-" * (widths[0] + 1)] + ["-" * (w + 1) + ":" for w in widths[1:]])
        + "|"
    )
    return "\n".join([line(header), align, *(line(r) for r in body)])

"""Prediction uncertainty of a fitted model from the Fisher information of its loss.

Linearised (Cramér–Rao) uncertainty of the linear coefficients θ of a fitted model
(the paper names it as future work, Wang et al. 2025 [1], Sec. V; the construction is
the standard one of nonlinear least squares, e.g. [2], Sec. 2): with A = √W J the
weighted Jacobian of every prediction in the loss (paper Eq. 26, 34; priors
included, :class:`compot.data.weighted.WeightedData`) and r the weighted residuals
at the fit,

    Σ = s² I⁺,   I = AᵀA,   s² = |r|² / (n_rows − rank),

I⁺ the pseudo-inverse on the significant eigenspace of I. **(choice)** The
eigenspace is taken in the trainer's column-normalised parametrisation
θ̃ = D θ (D the column norms of A, as :meth:`compot.trainer.Trainer.solve` solves):
eigenvalues λ ≥ ``sc_ratio`` · λ_max (default 10⁻¹⁵, MODEL_SPEC §7's
"significant correlations"); the raw parametrisation's columns differ in scale by
up to 10 orders of magnitude, so a relative cut there would depend on units only.
Directions below the cut are those the solve does not determine; they carry no
variance here. Nonlinear parameters (α, β, γ) are held at their fitted values.
A is never held: its triangular factor R (AᵀA = RᵀR, the same column norms, singular
values and right singular vectors) is accumulated batch by batch as the trainer's
streamed solve does (:class:`compot.lstsq.StreamedQR`), so memory does not grow with
the data.

Σ = L Lᵀ with L = D⁻¹ V_r diag(s/√λ_r) (shape (n_parameters, rank)). The variance of
any prediction q with gradient g = ∂q/∂θ is σ²(q) = gᵀ Σ g = |Lᵀ g|²:

* energies and forces: g from :meth:`compot.model.Model.linear_design`;
* stress: g = (1/V) ∂g_E/∂ε by central differences of the energy rows under strain;
* derived quantities (a0, C11, C12, C44, B, surface and vacancy formation energies):
  ∂q/∂ℓ_k by central differences of the quantity's own computation along each
  column ℓ_k of L (:func:`qoi_sigma`), so σ² = Σ_k (∂q/∂ℓ_k)².

Model error makes the raw bound optimistic (the residuals are not independent noise);
:func:`calibration` measures by how much on held-out data and states the post-hoc
inflation factor that makes the force z-scores have unit RMS.

References
----------
[1] Y. Wang, M. K. Transtrum, V. Lordi, V. V. Bulatov, A. Samanta,
    arXiv:2504.19372 (2025).
[2] M. K. Transtrum, B. B. Machta, J. P. Sethna, Phys. Rev. E 83, 036701 (2011).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .analysis import gauge_fixed_columns
from .data.weighted import WeightedData
from .errors import CompotError
from .lstsq import StreamedQR
from .model import Model
from .settings import FitSettings

log = logging.getLogger(__name__)

__all__ = ["UncertaintyError", "ParameterCovariance", "parameter_covariance", "predictive_sigma",
           "stress_jacobian", "qoi_sigma", "model_qois", "vacancy_formation_energy", "calibration",
           "QOI_UNITS"]

#: Units of the derived quantities of :func:`model_qois`.
QOI_UNITS = {"a0": "Å", "C11": "GPa", "C12": "GPa", "C44": "GPa", "B": "GPa", "E_V": "eV"}


class UncertaintyError(CompotError, ValueError):
    """Raised when a covariance cannot be formed: no data rows, no significant
    eigenvalue, or as many significant directions as rows (no residual degrees of
    freedom)."""


@dataclass
class ParameterCovariance:
    """Σ = L Lᵀ of a model's linear coefficients (module docstring).

    Attributes
    ----------
    names : list of str — linear blocks, in column order
    columns : ndarray of int, shape (n_kept,) — columns of ``names``' vector with variance
        (product gauges held, dead columns dropped)
    L : ndarray, shape (n_kept, rank) [parameter units] — Σ restricted to ``columns`` = L Lᵀ
    eigenvalues : ndarray, shape (rank,) — significant eigenvalues of the column-normalised FIM
    s2 : float — residual variance per weighted row [eV²·weight]
    n_rows, rank : int
    inflation : float — factor applied to every σ (1 = the raw Cramér–Rao bound)
    """

    names: list
    columns: np.ndarray
    L: np.ndarray
    eigenvalues: np.ndarray
    s2: float
    n_rows: int
    rank: int
    inflation: float = 1.0
    info: dict = field(default_factory=dict)

    @property
    def n_parameters(self) -> int:
        return int(sum(1 for _ in self.columns))

    def covariance(self) -> np.ndarray:
        """Σ on ``columns``, shape (n_kept, n_kept) [parameter units²] (without ``inflation``)."""
        return self.L @ self.L.T

    def sigma(self, G: np.ndarray) -> np.ndarray:
        """σ of predictions with gradients G = ∂q/∂θ over all columns of ``names``.

        Parameters
        ----------
        G : ndarray, shape (..., n_columns) — one gradient per prediction

        Returns
        -------
        ndarray, shape (...) — inflation · sqrt(gᵀ Σ g), in the predictions' units
        """
        G = np.asarray(G)
        P = G[..., self.columns] @ self.L
        return self.inflation * np.sqrt(np.sum(P * P, axis=-1))

    def perturbed(self, model: Model, k: int, step: float) -> Model:
        """A copy of ``model`` with θ moved by ``step`` · ℓ_k (column k of L)."""
        m = model.copy()
        theta = m.vector(self.names)
        theta[self.columns] += step * self.L[:, k]
        m.set_vector(self.names, theta)
        return m

    def to_json(self) -> dict:
        return {"n_rows": self.n_rows, "rank": self.rank, "n_parameters": int(len(self.columns)),
                "s2": self.s2, "s": float(np.sqrt(self.s2)), "inflation": self.inflation,
                "eigenvalues_normalised": self.eigenvalues.tolist(), **self.info}


def parameter_covariance(model: Model, configs, settings: FitSettings | None = None,
                         sc_ratio: float = 1e-15) -> ParameterCovariance:
    """Σ = s² I⁺ of the linear coefficients of a fitted model (module docstring).

    Parameters
    ----------
    model : Model — fitted; not changed
    configs : list of Configuration — the training data of the fit
    settings : FitSettings — the fit's loss weights and priors (default FitSettings())
    sc_ratio : float — eigenvalues of the column-normalised FIM below sc_ratio · λ_max are
        outside the significant eigenspace

    Returns
    -------
    ParameterCovariance

    Raises
    ------
    UncertaintyError
        No rows, no significant direction, or no residual degrees of freedom.
    """
    settings = settings or FitSettings()
    names = model.blocks("linear")
    data = WeightedData.for_fit(model, configs, settings)
    R, n_rows, rr = _reduced_rows_and_residuals(model, data, names)
    return _covariance_from_rows(R, n_rows, rr, names, model, sc_ratio)


def _reduced_rows_and_residuals(model: Model, data: WeightedData, names: list) -> tuple[np.ndarray, int, float]:
    """The triangular factor R of A = √W J (one row per energy and force component of
    ``data``), the number of rows and |r|², r = √W (target − prediction), accumulated
    batch by batch (:class:`compot.lstsq.StreamedQR`): memory of one batch, not of A.

    A = Q R with orthonormal Q, so AᵀA = RᵀR, and A and R have the same column norms,
    singular values and right singular vectors: everything Σ needs.

    Returns
    -------
    R : ndarray, shape (n_columns, n_columns)
    n_rows : int
    rr : float — |r|² [eV² · weight]
    """
    k = model.vector(names).size
    q = StreamedQR(k)
    rr = 0.0
    for b, sysm in enumerate(data.systems):
        JE, JF, pred = model.linear_design(sysm, names)
        sE = np.sqrt(data.wE[b])
        sF = np.sqrt(data.wF[b])
        A = np.concatenate([JE * sE[:, None], (JF * sF[:, None, None]).reshape(-1, k)])
        r = np.concatenate([(data.E[b] - pred.energy_m) * sE, ((data.F[b] - pred.forces_nc) * sF[:, None]).ravel()])
        q.add(A, r)
        rr += float(r @ r)
    return q.R[:k, :k], q.n_rows, rr


def _covariance_from_rows(R: np.ndarray, n_rows: int, rr: float, names: list, model: Model,
                          sc_ratio: float) -> ParameterCovariance:
    """Σ from the factor R of the weighted rows A (shape (k, k)), their number and the
    residuals' |r|² (:func:`_reduced_rows_and_residuals`)."""
    if n_rows == 0:
        raise UncertaintyError("no data rows: expected at least one energy or force with a non-zero weight")
    keep, held = gauge_fixed_columns(model, names)
    keep = np.asarray(keep, dtype=int)
    norms = np.linalg.norm(R[:, keep], axis=0)
    alive = norms > 1e-14 * norms.max(initial=0.0)
    keep, norms = keep[alive], norms[alive]
    _, sv, Vt = np.linalg.svd(R[:, keep] / norms, full_matrices=False)
    lam = sv ** 2
    sig = lam >= sc_ratio * lam.max(initial=0.0)
    rank = int(sig.sum())
    if rank == 0 or not np.isfinite(lam).all():
        raise UncertaintyError(f"the FIM of {model.expression} has no significant eigenvalue on these data")
    dof = n_rows - rank
    if dof <= 0:
        raise UncertaintyError(f"{n_rows} data rows for {rank} significant directions: expected more rows "
                               "than directions to estimate the residual variance")
    s2 = rr / dof
    L = (Vt[sig].T / sv[sig]) / norms[:, None] * np.sqrt(s2)
    log.info("parameter covariance of %s: %d rows, %d of %d directions significant (λ ≥ %.0e λ_max), s = %.4g",
             model.expression, n_rows, rank, len(keep), sc_ratio, np.sqrt(s2))
    return ParameterCovariance(names, keep, L, lam[sig], s2, n_rows, rank,
                               info={"gauge_held": held, "sc_ratio": sc_ratio})


# ------------------------------------------------------------ predictions
def stress_jacobian(model: Model, atoms, names: list, h: float = 1e-4) -> np.ndarray:
    """∂σ/∂θ of a periodic cell: (1/V) ∂(∂E/∂θ)/∂ε by central differences of the energy
    rows under strain ±h (shear components as symmetric ε_ab = ε_ba = h/2).

    Parameters
    ----------
    atoms : ase.Atoms — periodic in all three directions
    names : list of str — linear blocks
    h : float — strain step [-]

    Returns
    -------
    ndarray, shape (6, n_columns) [eV/Å³ per unit θ], ASE Voigt order (xx yy zz yz xz xy),
    tensile positive as ASE's stress
    """
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    cells = []
    for a, b in pairs:
        for sgn in (1.0, -1.0):
            eps = np.zeros((3, 3))
            if a == b:
                eps[a, a] = sgn * h
            else:
                eps[a, b] = eps[b, a] = sgn * h / 2
            at = atoms.copy()
            at.calc = None
            at.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            cells.append(at)
    JE = model.linear_design(model.system(cells), names, forces=False).JE
    return (JE[0::2] - JE[1::2]) / (2 * h) / atoms.get_volume()


def predictive_sigma(cov: ParameterCovariance, model: Model, atoms_list, stress: bool = True) -> list[dict]:
    """σ of the energy, forces and stress of each configuration.

    Parameters
    ----------
    cov : ParameterCovariance — of ``model``
    atoms_list : list of ase.Atoms or Configuration
    stress : bool — also σ of the stress (fully periodic cells only; 12 extra energy rows each)

    Returns
    -------
    list of dict, one per configuration: ``energy`` [eV], ``energy_per_atom`` [eV/atom],
    ``forces`` ndarray shape (n_atoms, 3) [eV/Å], ``force_rms`` [eV/Å] (RMS of the
    components' σ), and with ``stress`` ``stress`` ndarray shape (6,) [eV/Å³] (None for
    a cell that is not fully periodic)
    """
    atoms_list = [a.to_atoms() if hasattr(a, "to_atoms") else a for a in atoms_list]
    out = []
    for at in atoms_list:
        d = model.linear_design(model.system([at]), cov.names)
        sE = float(cov.sigma(d.JE[0]))
        sF = cov.sigma(d.JF)
        rec = {"energy": sE, "energy_per_atom": sE / len(at), "forces": sF,
               "force_rms": float(np.sqrt(np.mean(sF ** 2)))}
        if stress:
            rec["stress"] = cov.sigma(stress_jacobian(model, at, cov.names)) if at.pbc.all() else None
        out.append(rec)
    return out


# ------------------------------------------------------- derived quantities
def vacancy_formation_energy(model: Model, symbol: str, kind: str, a0: float, min_atoms: int = 50) -> float:
    """Unrelaxed vacancy formation energy E_V = E(N−1) − (N−1)/N E(N) [eV] of a cubic
    supercell of at least ``min_atoms`` atoms at lattice constant ``a0`` [Å] (no ionic
    relaxation: an upper bound of the relaxed value)."""
    from .derive import Lattice
    from .properties import model_energies

    bulk = Lattice(kind, float(a0), symbol).supercell(min_atoms)
    vac = bulk.copy()
    del vac[0]
    e = model_energies(model, [bulk, vac])
    n = len(bulk)
    return float(e[1] - (n - 1) / n * e[0])


def _newton_a0(model: Model, symbol: str, kind: str, a_start: float, h: float = 1e-3, steps: int = 3) -> float:
    """Lattice constant of minimum energy by Newton steps on E(a) from ``a_start`` [Å]
    (three-point differences of step ``h``); for small parameter changes around a known a0."""
    from .derive import Lattice
    from .properties import model_energies

    a = float(a_start)
    lat = Lattice(kind, a, symbol)
    for _ in range(steps):
        e = model_energies(model, [lat.atoms(a - h), lat.atoms(a), lat.atoms(a + h)])
        d1 = (e[2] - e[0]) / (2 * h)
        d2 = (e[2] - 2 * e[1] + e[0]) / h ** 2
        if not d2 > 0:
            break
        a -= d1 / d2
    return a


def model_qois(model: Model, symbol: str, kind: str, a_start: float, surfaces=(), elastic=True,
               vacancy=True) -> dict:
    """The derived quantities whose σ :func:`qoi_sigma` estimates: ``a0`` [Å], ``C11``,
    ``C12``, ``C44``, ``B`` [GPa] (bcc/fcc, at the model's a0), ``E_V`` [eV]
    (:func:`vacancy_formation_energy`), and ``gamma<label>`` [J/m²] of each slab in
    ``surfaces`` (ase.Atoms; bulk reference: the model's crystal at its a0).

    a0 comes from Newton steps from ``a_start`` (:func:`_newton_a0`), so ``a_start`` must
    be close to the model's a0 (e.g. :func:`compot.sanity.model_lattice`'s).
    """
    from .derive import Lattice
    from .properties import model_elastic_constants, model_surface_energies

    a0 = _newton_a0(model, symbol, kind, a_start)
    out = {"a0": a0}
    if elastic and kind in ("bcc", "fcc"):
        c = model_elastic_constants(model, symbol, kind, a0)
        out.update({k: float(c[k]) for k in ("C11", "C12", "C44", "B")})
    if vacancy:
        out["E_V"] = vacancy_formation_energy(model, symbol, kind, a0)
    if len(surfaces):
        gammas = model_surface_energies(model, surfaces, Lattice(kind, a0, symbol).atoms())
        out.update({f"gamma{k}": float(v) for k, v in gammas.items()})
    return out


def qoi_sigma(cov: ParameterCovariance, model: Model, qoi, step: float = 1.0) -> tuple[dict, dict, dict]:
    """σ of derived quantities by central differences along the columns of L.

    σ²(q) = Σ_k ((q(θ + step ℓ_k) − q(θ − step ℓ_k)) / (2 step))², ℓ_k the columns of L
    (Σ = L Lᵀ), i.e. gᵀ Σ g with g the finite-difference gradient; 2·rank evaluations of
    ``qoi``.

    Parameters
    ----------
    qoi : callable Model -> dict name -> float
    step : float — in units of one standard deviation along ℓ_k

    Returns
    -------
    values : dict name -> float — q at the fitted parameters
    sigmas : dict name -> float — inflation · σ(q)
    gradients : dict name -> ndarray, shape (rank,) — ∂q/∂ℓ_k (the QoI's Jacobian in the
        whitened parameters; its FIM for a target σ ε is g gᵀ/ε², :mod:`compot.selection`)
    """
    values = qoi(model)
    grads = {k: np.zeros(cov.rank) for k in values}
    for k in range(cov.rank):
        qp = qoi(cov.perturbed(model, k, step))
        qm = qoi(cov.perturbed(model, k, -step))
        for name in values:
            grads[name][k] = (qp[name] - qm[name]) / (2 * step)
    sig = {k: cov.inflation * float(np.linalg.norm(g)) for k, g in grads.items()}
    return values, sig, grads


# ------------------------------------------------------------- calibration
def calibration(cov: ParameterCovariance, model: Model, configs, symmetric_force: float = 1e-8) -> dict:
    """Calibration of σ on held-out configurations.

    Per configuration m: the energy z-score z_m = (Ê_m − E_m)/σ_E,m and the force
    z-scores of every component; the Spearman rank correlation between the RMS force σ
    and the RMS force error per configuration; and the post-hoc inflation factor
    k = RMS(z_F), the factor by which σ must be multiplied for the force z-scores to
    have unit RMS (k > 1: the raw bound is optimistic).

    Parameters
    ----------
    configs : list of Configuration — held-out data (e.g. the validation split)
    symmetric_force : float [eV/Å] — configurations whose RMS force σ is at most this
        (forces fixed by symmetry, e.g. strained two-atom cells) are left out of the force
        statistics; their number is ``n_symmetric``

    Returns
    -------
    dict with ``z_energy`` (n_configurations,), ``z_force`` (n_components,),
    ``sigma_force_rms`` and ``error_force_rms`` per configuration [eV/Å],
    ``spearman_force`` (ρ, p-value), ``inflation_force``, ``inflation_energy``
    (RMS of the energy z-scores), fractions of |z| ≤ 1, 2 (after inflation)
    """
    from scipy.stats import spearmanr

    from .evaluation import predict

    if not configs:
        raise UncertaintyError("calibration needs at least one held-out configuration")
    e_pred, f_pred = predict(model, configs)
    sig = predictive_sigma(cov, model, configs, stress=False)
    z_e = np.array([(ep - c.energy) / max(s["energy"], 1e-300) for ep, c, s in zip(e_pred, configs, sig)])
    # forces fixed by symmetry (a strained two-atom cell): σ_F and the error are rounding noise
    free = [k for k, s in enumerate(sig) if s["force_rms"] > symmetric_force]
    if not free:
        raise UncertaintyError(f"calibration: every held-out configuration has σ_F ≤ {symmetric_force} eV/Å "
                               "(forces fixed by symmetry); expected at least one with free forces")
    z_f = np.concatenate([((f_pred[k] - configs[k].forces) / np.maximum(sig[k]["forces"], 1e-300)).ravel()
                          for k in free])
    s_rms = np.array([sig[k]["force_rms"] for k in free])
    e_rms = np.array([float(np.sqrt(np.mean((f_pred[k] - configs[k].forces) ** 2))) for k in free])
    rho, p = spearmanr(s_rms, e_rms) if len(free) > 2 else (float("nan"), float("nan"))
    k_f = float(np.sqrt(np.mean(z_f ** 2)))
    k_e = float(np.sqrt(np.mean(z_e ** 2)))
    zf = z_f / k_f
    return {"z_energy": z_e, "z_force": z_f, "sigma_force_rms": s_rms, "error_force_rms": e_rms,
            "spearman_force": (float(rho), float(p)), "inflation_force": k_f, "inflation_energy": k_e,
            "raw_within_1": float(np.mean(np.abs(z_f) <= 1)), "raw_within_2": float(np.mean(np.abs(z_f) <= 2)),
            "inflated_within_1": float(np.mean(np.abs(zf) <= 1)),
            "inflated_within_2": float(np.mean(np.abs(zf) <= 2)), "n_configurations": len(configs),
            "n_symmetric": len(configs) - len(free)}

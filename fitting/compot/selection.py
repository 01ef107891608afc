"""Training-data selection by information matching, and a D-optimal baseline.

Information matching (Kurniawan, Transtrum et al. [1]; for interatomic potentials [2])
chooses the smallest weighted set of candidate configurations whose Fisher information
dominates the information needed to predict chosen quantities of interest (QoIs) to a
target precision:

    minimise Σ_m w_m   subject to   I_prior + Σ_m w_m I_m ⪰ I_QoI,   0 ≤ w_m ≤ w_max,

a semidefinite programme solved by the authors' package ``information-matching``
(:class:`information_matching.ConvexOpt`, CVXPY with SDPA; optional extra
``compot[selection]``). Here, for a fitted model (:mod:`compot.uncertainty`):

* parameters are the model's linear coefficients in whitened coordinates ξ,
  θ = θ̂ + T ξ, T = D⁻¹ V_r Λ_r^(−1/2) (the significant eigenspace of the full pool's
  column-normalised FIM), so that Σ_m B_mᵀ B_m + B_priorᵀ B_prior = 1 over the whole
  pool, B_m = A_m T the weighted Jacobian rows of configuration m (its energy and force
  components) in ξ;
* I_m = B_mᵀ B_m / s² (s² the residual variance of the fit); the priors of the fit
  (``eos_anchor``, ``zbl_anchor``) are always in, as I_prior;
* I_QoI = Σ_q g_q g_qᵀ / ε_q², g_q = ∂q/∂ξ the QoI's gradient
  (:func:`compot.uncertainty.qoi_sigma`), ε_q the target precision;
* w_max = 1 by default: a configuration cannot be used more precisely than it was
  computed, so the target must not be tighter than the full pool's σ.

The D-optimal baseline adds, one at a time, the configuration that most increases
log det(I_prior + Σ_selected I_m + δ·1).

References
----------
[1] Y. Kurniawan, T. B. Neilsen, B. L. Francis, A. M. Stankovic, M. Wen, I. Nikiforov,
    E. B. Tadmor, V. V. Bulatov, V. Lordi, M. K. Transtrum, "An information-matching
    approach to optimal experimental design and active learning", Appl. Phys. Lett.
    128, 064104 (2026), doi:10.1063/5.0296026 (the citation of the package).
[2] arXiv:2606.08148 (information matching applied to interatomic potentials).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.weighted import WeightedData
from .errors import CompotError
from .model import Model
from .uncertainty import ParameterCovariance

log = logging.getLogger(__name__)

__all__ = ["SelectionError", "PoolInformation", "pool_information", "qoi_fim", "information_matching",
           "d_optimal", "parse_precision", "TARGETS", "target_qois", "write_selection", "select",
           "selection_markdown"]


class SelectionError(CompotError, ValueError):
    """Raised for an unknown target, a precision that cannot be read, a missing
    ``information-matching`` package, or a programme the solver reports infeasible."""


@dataclass
class PoolInformation:
    """Per-configuration Fisher information of a candidate pool in whitened coordinates.

    Attributes
    ----------
    B : list of ndarray, each shape (n_rows_m, rank) — weighted Jacobian rows of each
        configuration in ξ [√weight · eV per unit ξ]
    prior : ndarray, shape (rank, rank) — I_prior · s² (the fit's priors)
    s2 : float — residual variance of the fit
    T : ndarray, shape (n_kept, rank) — θ[columns] = θ̂ + T ξ
    """

    B: list
    prior: np.ndarray
    s2: float
    T: np.ndarray

    @property
    def rank(self) -> int:
        return self.T.shape[1]

    def fim(self, m: int) -> np.ndarray:
        """I_m = B_mᵀ B_m / s², shape (rank, rank)."""
        return self.B[m].T @ self.B[m] / self.s2

    def fims(self) -> np.ndarray:
        """Every I_m, shape (n_configurations, rank, rank)."""
        return np.stack([self.fim(m) for m in range(len(self.B))])


def pool_information(cov: ParameterCovariance, model: Model, configs, settings) -> PoolInformation:
    """The per-configuration information of ``configs`` (the pool ``cov`` was computed on,
    with the same ``settings``), in the whitened coordinates of ``cov``.

    Parameters
    ----------
    cov : ParameterCovariance — of ``model`` on ``configs`` (:func:`compot.uncertainty.parameter_covariance`)
    configs : list of Configuration
    settings : FitSettings

    Returns
    -------
    PoolInformation
    """
    T = cov.L / np.sqrt(cov.s2)
    data = WeightedData.for_fit(model, configs, settings)
    B, prior = [], np.zeros((cov.rank, cov.rank))
    for k, sysm in enumerate(data.systems):
        JE, JF, _ = model.linear_design(sysm, cov.names)
        sE, sF = np.sqrt(data.wE[k]), np.sqrt(data.wF[k])
        a = 0
        for i, c in enumerate(data.batches[k]):
            rows = np.vstack([JE[i:i + 1] * sE[i],
                              (JF[a:a + c.n_atoms] * sF[a:a + c.n_atoms, None, None]).reshape(-1, JE.shape[1])])
            a += c.n_atoms
            Bm = rows[:, cov.columns] @ T
            if k < data.n_data_batches:
                B.append(Bm)
            else:
                prior += Bm.T @ Bm
    return PoolInformation(B, prior, cov.s2, T)


def parse_precision(text: str, targets: list[str], values: dict | None = None) -> dict:
    """Target precisions ε_q from ``--precision``: one value for every target, a
    comma-separated list in the order of ``targets``, or NAME=VALUE pairs; a value
    ending in ``%`` is relative to ``values[name]`` (the model's own value).

    Raises
    ------
    SelectionError
        A value that is not a positive number, a count that does not match, an unknown name.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) == 1 and "=" not in parts[0]:
        parts = parts * len(targets)
    pairs = {}
    for k, p in enumerate(parts):
        if "=" in p:
            name, v = (x.strip() for x in p.split("=", 1))
        elif k < len(targets):
            name, v = targets[k], p
        else:
            raise SelectionError(f"--precision: {len(parts)} values for {len(targets)} targets "
                                 f"({', '.join(targets)}); expected one per target or NAME=VALUE pairs")
        if name not in targets:
            raise SelectionError(f"--precision: {name!r} is not a target; expected one of {', '.join(targets)}")
        rel = v.endswith("%")
        try:
            x = float(v.rstrip("%"))
        except ValueError:
            raise SelectionError(f"--precision {name}: expected a positive number (or N%), found {v!r}") from None
        if not x > 0:
            raise SelectionError(f"--precision {name}: expected a positive number, found {v!r}")
        if rel:
            if not values or name not in values:
                raise SelectionError(f"--precision {name}={v}: a relative precision needs the model's value")
            x = x / 100 * abs(values[name])
        pairs[name] = x
    missing = [t for t in targets if t not in pairs]
    if missing:
        raise SelectionError(f"--precision: no value for {', '.join(missing)}")
    return pairs


def qoi_fim(gradients: dict, precision: dict, s: float) -> np.ndarray:
    """I_QoI = Σ_q g_q g_qᵀ / ε_q² in ξ, shape (rank, rank).

    Parameters
    ----------
    gradients : dict name -> ndarray, shape (rank,) — ∂q/∂ℓ_k from
        :func:`compot.uncertainty.qoi_sigma` (ℓ_k = s · T_k, so ∂q/∂ξ = gradient / s)
    precision : dict name -> float — ε_q in the QoI's unit
    s : float — √s² of the fit
    """
    names = list(precision)
    G = np.stack([gradients[n] / s / precision[n] for n in names])
    return G.T @ G


def _convex_opt():
    """``information_matching.ConvexOpt``, imported without its side effects on this
    process: information_matching 1.3 sets the default multiprocessing context's
    reducer to its own Pickle4Reducer, whose pickler fails on every spawn (its
    ``__init__`` assigns into its argument tuple: "'tuple' object does not support
    item assignment"; seen as Dask workers that cannot start), and it reseeds
    NumPy's global random generator. Both are restored after the import.

    Raises
    ------
    ImportError
        When the package is not installed.
    """
    import multiprocessing as mp

    ctx = mp.get_context()
    reducer, rng_state = ctx.reducer, np.random.get_state()
    try:
        from information_matching import ConvexOpt
    finally:
        ctx.reducer = reducer
        np.random.set_state(rng_state)
    return ConvexOpt


def information_matching(info: PoolInformation, target: np.ndarray, weight_bound: float | None = 1.0,
                         zero_tol: float = 1e-6, solver: str | None = None) -> dict:
    """Solve the information-matching programme (module docstring) with
    ``information_matching.ConvexOpt``.

    Parameters
    ----------
    info : PoolInformation
    target : ndarray, shape (rank, rank) — I_QoI
    weight_bound : float or None — w_max (None: unbounded)
    zero_tol : float — weights below this are zero
    solver : CVXPY solver name (default SDPA, the package's default)

    Returns
    -------
    dict with ``weights`` ndarray shape (n_configurations,) (zeros where not selected),
    ``selected`` indices sorted by decreasing weight, ``status``, ``rel_error``, ``seconds``

    Raises
    ------
    SelectionError
        The package is missing, or the solver finds no feasible weights.
    """
    import time

    try:
        import cvxpy as cp
        ConvexOpt = _convex_opt()
    except ImportError as exc:
        raise SelectionError(f"information matching needs the package information-matching ({exc}); "
                             "pip install 'compot[selection]'") from None
    s2 = info.s2
    # the prior is always in: match I_QoI − I_prior (still a linear matrix inequality)
    target_eff = target - info.prior / s2
    fims = info.fims()
    scale = 1.0 / max(np.abs(fims).max(), 1e-300)
    t0 = time.perf_counter()
    opt = ConvexOpt({"fim": target_eff, "fim_scale": scale},
                    {m: {"fim": fims[m], "fim_scale": scale} for m in range(len(fims))},
                    weight_upper_bound=weight_bound)
    kwargs = {"solver": getattr(cp, solver)} if solver else {}
    try:
        opt.solve(**kwargs)
        status = opt.result["status"]
    except (AttributeError, TypeError, cp.error.SolverError):
        # ConvexOpt.solve reads the weights' values, which an infeasible problem does not have
        status = opt.problem.status
    seconds = time.perf_counter() - t0
    if status not in ("optimal", "optimal_inaccurate"):
        raise SelectionError(f"information matching: the solver reports {status!r}; the target precision "
                             f"may be tighter than the whole pool allows (weights bounded by {weight_bound})")
    res = opt.result
    w = np.zeros(len(fims))
    for m, v in opt.get_config_weights(zero_tol=zero_tol, zero_tol_dual=zero_tol).items():
        w[int(m)] = float(v)
    order = [int(i) for i in np.argsort(-w) if w[i] > 0]
    log.info("information matching: %d of %d configurations, Σw = %.4g, status %s, %.1f s", len(order), len(w),
             w.sum(), res["status"], seconds)
    return {"weights": w, "selected": order, "status": res["status"], "rel_error": float(res["rel_error"]),
            "seconds": seconds}


def d_optimal(info: PoolInformation, n: int, start=(), ridge: float = 1e-6) -> list[int]:
    """Greedy D-optimal selection: ``n`` configurations (after those in ``start``), each
    maximising log det(I_prior + Σ_selected I_m + δ 1), δ = ``ridge`` · tr(Σ_pool I_m)/rank.

    Returns
    -------
    list of int — ``start`` followed by the chosen indices, in order of choice
    """
    fims = info.fims()
    delta = ridge * np.trace(fims.sum(axis=0)) / info.rank
    M = info.prior / info.s2 + delta * np.eye(info.rank)
    chosen = list(start)
    for m in chosen:
        M = M + fims[m]
    free = [m for m in range(len(fims)) if m not in set(chosen)]
    for _ in range(min(n, len(free))):
        best, best_val = None, -np.inf
        for m in free:
            sign, val = np.linalg.slogdet(M + fims[m])
            if sign > 0 and val > best_val:
                best, best_val = m, val
        if best is None:
            break
        chosen.append(best)
        free.remove(best)
        M = M + fims[best]
    return chosen


# ------------------------------------------------------------ the command
#: The targets ``compot select --targets`` knows (:func:`compot.uncertainty.model_qois`).
TARGETS = ("a0", "C11", "C12", "C44", "B", "E_V")


def target_qois(model: Model, pool, targets) -> tuple:
    """The QoI function of ``targets`` for a single-species model, and its lattice.

    Returns
    -------
    (qoi : callable Model -> dict, lattice kind, a0 of the model [Å])

    Raises
    ------
    SelectionError
        An unknown target or a model of several species.
    """
    from . import derive
    from .sanity import model_lattice
    from .uncertainty import model_qois

    bad = [t for t in targets if t not in TARGETS]
    if bad:
        raise SelectionError(f"--targets: unknown {', '.join(bad)}; expected some of {', '.join(TARGETS)}")
    if len(model.species) != 1:
        raise SelectionError(f"selection targets are properties of one element; the model has species "
                             f"{', '.join(model.species)}")
    sym = model.species[0]
    lat = derive.detect_lattice(pool, sym)
    a0, _ = model_lattice(model, sym, lat.kind, lat.a0, lat.c_over_a)
    elastic = any(t in targets for t in ("C11", "C12", "C44", "B"))
    vacancy = "E_V" in targets

    def qoi(m: Model) -> dict:
        q = model_qois(m, sym, lat.kind, a0, elastic=elastic, vacancy=vacancy)
        return {t: q[t] for t in targets}

    return qoi, lat.kind, a0


def write_selection(configs, weights, path) -> None:
    """Write configurations with their selection weights as extended XYZ, which
    ``compot fit --data`` reads: ``weight`` = selection weight × the configuration's own
    weight, ``config_type`` = its group, energy, forces and (when known) stress."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for c, w in zip(configs, weights):
        at = c.to_atoms()
        extra = {} if c.stress is None else {"stress": c.stress}
        at.calc = SinglePointCalculator(at, energy=c.energy, forces=c.forces, **extra)
        at.info["weight"] = float(w) * c.weight
        at.info["config_type"] = c.group
        at.info["source"] = c.source
        frames.append(at)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp, frames, format="extxyz")
    tmp.replace(path)


def select(model: Model, pool, settings, targets, precision: str, out, weight_bound: float | None = 1.0) -> dict:
    """``compot select``: information matching of ``pool`` for ``targets`` at ``precision``,
    and the D-optimal baseline of the same size; writes ``out/selected.extxyz`` (the
    information-matching selection with its weights), ``out/d_optimal.extxyz``,
    ``out/selection.json`` and ``out/selection.md``.

    Parameters
    ----------
    model : Model — fitted to ``pool`` with ``settings``
    pool : list of Configuration
    targets : list of str — names of :data:`TARGETS`
    precision : str — :func:`parse_precision`

    Returns
    -------
    dict — the content of selection.json

    Raises
    ------
    SelectionError
        As :func:`parse_precision`, :func:`target_qois`, :func:`information_matching`.
    """
    from .io import atomic_write_json, atomic_write_text
    from .uncertainty import parameter_covariance, qoi_sigma

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    qoi, kind, a0 = target_qois(model, pool, targets)
    cov = parameter_covariance(model, pool, settings)
    values, sig, grads = qoi_sigma(cov, model, qoi)
    eps = parse_precision(precision, list(targets), values)
    tight = [t for t in targets if eps[t] < sig[t]]
    if tight and weight_bound is not None:
        raise SelectionError("target precision tighter than the whole pool's σ for "
                             + ", ".join(f"{t} ({eps[t]:.4g} < {sig[t]:.4g})" for t in tight)
                             + f"; with weights bounded by {weight_bound} no subset can reach it")
    info = pool_information(cov, model, pool, settings)
    im = information_matching(info, qoi_fim(grads, eps, np.sqrt(cov.s2)), weight_bound)
    sel = im["selected"]
    dopt = d_optimal(info, len(sel))
    write_selection([pool[i] for i in sel], im["weights"][sel], out / "selected.extxyz")
    write_selection([pool[i] for i in dopt], np.ones(len(dopt)), out / "d_optimal.extxyz")
    # predicted σ of each target after a fit to the selection (linearised, same s²)
    pred = {}
    for label, idx, w in (("information_matching", sel, im["weights"][sel]), ("d_optimal", dopt, np.ones(len(dopt)))):
        M = info.prior / info.s2 + sum(wi * info.fim(i) for i, wi in zip(idx, w))
        Minv = np.linalg.pinv(M, rcond=1e-12, hermitian=True)
        pred[label] = {t: float(np.sqrt(grads[t] @ Minv @ grads[t] / cov.s2)) for t in targets}
    doc = {"expression": model.expression, "targets": list(targets), "precision": eps, "values": values,
           "sigma_pool": sig, "lattice": kind, "a0": a0, "n_pool": len(pool), "rank": cov.rank,
           "information_matching": {"n_selected": len(sel), "sum_weights": float(im["weights"].sum()),
                                    "status": im["status"], "seconds": im["seconds"],
                                    "selected": [{"source": pool[i].source, "group": pool[i].group,
                                                  "weight": float(im["weights"][i])} for i in sel]},
           "d_optimal": {"n_selected": len(dopt), "selected": [pool[i].source for i in dopt]},
           "predicted_sigma": pred}
    atomic_write_json(out / "selection.json", doc, indent=1)
    atomic_write_text(out / "selection.md", selection_markdown(doc))
    return doc


def selection_markdown(doc: dict) -> str:
    """The report of ``compot select``."""
    im = doc["information_matching"]
    groups: dict = {}
    for s in im["selected"]:
        groups[s["group"]] = groups.get(s["group"], 0) + 1
    lines = [f"# Information-matching selection: {doc['expression']}", "",
             f"Pool: {doc['n_pool']} configurations; {doc['rank']} significant parameter directions. "
             f"Information matching (package information-matching, SDPA) selected {im['n_selected']} "
             f"configurations (Σ weights {im['sum_weights']:.2f}, status {im['status']}, {im['seconds']:.1f} s): "
             + ", ".join(f"{g} {n}" for g, n in sorted(groups.items())) + ". "
             "The D-optimal greedy baseline selected the same number.", "",
             "| target | model | σ (whole pool) | target precision | σ predicted, IM selection | "
             "σ predicted, D-optimal |", "|---|---|---|---|---|---|"]
    for t in doc["targets"]:
        lines.append(f"| {t} | {doc['values'][t]:.4g} | {doc['sigma_pool'][t]:.3g} | {doc['precision'][t]:.3g} | "
                     f"{doc['predicted_sigma']['information_matching'][t]:.3g} | "
                     f"{doc['predicted_sigma']['d_optimal'][t]:.3g} |")
    lines += ["", "σ are raw linearised (Cramér–Rao) values at the pool fit's residual variance; "
              "fit the selection with `compot fit --data selected.extxyz` (weights in the file).", ""]
    return "\n".join(lines)

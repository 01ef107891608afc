"""Composed pair-cluster models: parameters, site energies, forces, virial.

A :class:`Model` is an expression in the paper's notation (parsed by
:mod:`compot.expression`), a tuple of species, a cutoff radius and one array
per parameter block of the parameter file format v1. Evaluation runs on a
:class:`~compot.neighbours.System` (a batch of configurations):

* forward: per basis ĝ_k(r_p) and the two-body cluster functions
  φ_k^(s)(i) = Σ_{j∈N(i), Z_j=s} ĝ_k(r_ij) (paper Eq. 47), the neighbour
  aggregates ρ_k^(s)(i) = Σ_j f_c(r_ij) φ_k^(s)(j) where an N term needs them,
  then every node's per-atom value V(i) (MODEL_SPEC §3–4);
* backward (vector–Jacobian products): per-atom adjoints a_i = ∂E/∂V(i),
  adjoints λ_k(i) = ∂E/∂φ_k(i) per basis, pair gradients G_p = ∂E/∂D_p,
  then forces F = incidence·G and virial W = Σ_p G_p ⊗ D_p (MODEL_SPEC §5).

Where each part lives: the terms' own behaviour (features, values, VJPs, parameter
blocks) in :mod:`compot.terms`, one class per term; the pair geometry (effective
distance, ĝ_k, φ, ρ) in :mod:`compot.pairs`; the format v2 safety layer (inner
window, atom switch, extrapolation grade, switched site energy) in
:mod:`compot.safety`; the per-batch tree walk and caches in :mod:`compot.context`.

The trainer uses the same machinery column by column: :meth:`Model.linear_design`
returns, for a set of parameter blocks in which the model is linear, the
energy and force rows of the least-squares design matrix (MODEL_SPEC §6).

References
----------
[1] Y. Wang, M. K. Transtrum, V. Lordi, V. V. Bulatov, A. Samanta,
    arXiv:2504.19372 (2025).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import Context, PairGradient
from .errors import ExpressionError
from .expression import Layout, layout, parse
from .neighbours import System, voigt_to_matrix
from .safety import RunningMoments, coordination

__all__ = ["Model", "Prediction", "LinearDesign", "DEFAULT_NONLINEAR", "default_embedding"]

#: Default starting values of nonlinear parameters (documented in docs/fitting.md).
DEFAULT_NONLINEAR = {"alpha": 0.5, "beta": 1.6, "gamma": 0.5}

#: Default saturation width τ of the bounded features of format v2 (MODEL_SPEC §10):
#: a feature runs at most τ (in units of its data maximum) past the fitted range.
DEFAULT_TAU = 0.3


def default_embedding(S: int, r: int) -> np.ndarray:
    """The starting species embedding W, shape (S, r) [-]: channel 1 counts every
    neighbour alike (W = 1, SNAP with equal weights), channel c > 1 the cosine
    cos(π (c − 1)(s + ½)/S) of the species index s (the DCT-II basis), so the
    columns are orthogonal and r = S spans the full chemistry."""
    s = np.arange(S)[:, None] + 0.5
    c = np.arange(r)[None, :]
    return np.cos(np.pi * c * s / S)


@dataclass
class Prediction:
    """Model output for a batch.

    energy_m : (m,) total energies [eV]
    energies_n : (n,) site energies [eV]
    forces_nc : (n, 3) forces [eV/Å] (None if not requested)
    virial_mcc : (m, 3, 3) virial W = V σ [eV], ASE sign (tensile positive) (None if not requested)
    """

    energy_m: np.ndarray
    energies_n: np.ndarray
    forces_nc: np.ndarray | None
    virial_mcc: np.ndarray | None


@dataclass
class LinearDesign:
    """Rows of the least-squares problem of :meth:`Model.linear_design`.

    Unpacks as ``JE, JF, pred`` (the virial rows are the attribute ``JW``).

    JE : ndarray, shape (m, n_cols) [eV per unit θ] — energy rows
    JF : ndarray, shape (n, 3, n_cols) or None [eV/Å per unit θ] — force rows
    pred : Prediction at the current parameters (energies and forces, and the
        virial when virial rows were asked for; to form ``rest``)
    JW : ndarray, shape (m, 6, n_cols) or None [eV per unit θ] — virial rows W = V σ in
        Voigt order (xx, yy, zz, yz, xz, xy), ASE sign (tensile positive)
    JS : ndarray, shape (n, n_cols) or None [eV per unit θ] — site-energy rows,
        E_i = Σ_c Jˢ_ic θ_c + rest_i (JE sums them per configuration)
    """

    JE: np.ndarray
    JF: np.ndarray | None
    pred: Prediction
    JW: np.ndarray | None = None
    JS: np.ndarray | None = None

    def __iter__(self):
        return iter((self.JE, self.JF, self.pred))


class Model:
    """A composed pair-cluster potential (MODEL_SPEC §1–5).

    Parameters
    ----------
    expression : str
        Paper notation, e.g. ``"E[G8L4] + N[E[G8L4]] + ZBL(1.6, 2.4)"``.
    species : sequence of str
        Chemical symbols, in the order that indexes every species axis.
    cutoff : float
        Cutoff radius r_c [Å] (fixed hyperparameter).
    params : dict, optional
        Block name → array (see :attr:`layout` ``.blocks``); missing blocks get
        defaults (α = 0.5 Å⁻², β = 1.6, γ_l spread over ±0.5, coefficients and
        shifts 0, scales 1, inner window off (r_a = r_b = 0), τ = 0.3).
    version : int
        Parameter file format whose site energy the model evaluates: 2 (default;
        inner window, saturating features and bounded angular invariants of
        MODEL_SPEC §10) or 1 (as the first release: no window, quadratic
        continuation, unbounded A invariants).
    rank : int or None
        None (default): full chemistry, one neighbour channel per species. r in
        1..S: a species embedding of rank r, φ_k^(c)(i) = Σ_j W_(Z_j c) ĝ_k(r_ij),
        c = 1..r, with the weights ``b<J>.w`` [S, r] nonlinear parameters of each
        basis (docs/parameter-file.md, "Species embedding"); r = S with W = I is
        the full chemistry.

    Raises
    ------
    ExpressionError
        For an invalid expression, species list or cutoff (e.g. ZBL r_out > r_c, a
        term cutoff r_t > r_c).
    """

    def __init__(self, expression: str, species, cutoff: float, params: dict | None = None, version: int = 2,
                 rank: int | None = None):
        self.layout: Layout = layout(parse(expression), tuple(species), version, rank)
        self.cutoff = float(cutoff)
        if not self.cutoff > 0:
            raise ExpressionError(f"cutoff {cutoff!r}: expected a positive radius in Å")
        for n in self.layout.nodes:
            if n.term.is_core and n.term.r_out > self.cutoff:
                raise ExpressionError(f"{n.term}: r_out = {n.term.r_out} Å exceeds the cutoff {self.cutoff} Å")
            r_t = n.term.basis.cutoff if n.term.basis is not None else None
            if r_t is not None and r_t > self.cutoff:
                raise ExpressionError(f"{n.term} needs r_t <= r_c; expected r_t <= {self.cutoff!r} (the cutoff), "
                                      f"found r_t = {r_t!r}")
        self.params: dict[str, np.ndarray] = {}
        for b in self.layout.blocks:
            self.params[b.name] = self._default(b)
        if params:
            for k, v in params.items():
                self.set_block(k, v)

    # ----------------------------------------------------------- metadata
    @property
    def expression(self) -> str:
        return self.layout.expression

    @property
    def species(self) -> tuple[str, ...]:
        return self.layout.species

    @property
    def version(self) -> int:
        """Parameter file format version whose site energy this model evaluates (1 or 2)."""
        return self.layout.version

    @property
    def rank(self) -> int | None:
        """Rank r of the species embedding, None for the full chemistry."""
        return self.layout.rank

    @property
    def n_linear(self) -> int:
        return self.layout.n_linear

    @property
    def n_nonlinear(self) -> int:
        return self.layout.n_nonlinear

    @property
    def influence_distance(self) -> float:
        """2 r_c with an N term (second hop), r_c otherwise [Å]."""
        return 2.0 * self.cutoff if self.layout.has_neighbour_term else self.cutoff

    def _default(self, block) -> np.ndarray:
        leaf = block.name.split(".")[-1]
        if leaf == "gamma":
            L = block.shape[0]
            return np.linspace(-0.5, 0.5, L) if L > 1 else np.array([DEFAULT_NONLINEAR["gamma"]])
        if leaf in ("alpha", "beta"):
            return np.array(DEFAULT_NONLINEAR[leaf])
        if leaf == "rank":
            return np.array(float(self.layout.rank))
        if leaf == "w":
            return default_embedding(*block.shape)
        if leaf in ("phi_max", "rho_max", "q_max"):
            return np.ones(block.shape)
        if leaf == "tau":
            return np.array(DEFAULT_TAU)
        if leaf in ("gamma_lo", "gamma_hi"):      # grade off until fitted: U = 0, so γ = 0
            return np.full(block.shape, 1.0 if leaf == "gamma_lo" else 2.0)
        return np.zeros(block.shape)

    def grade_factor(self) -> np.ndarray:
        """The whitening factors U_Z of the extrapolation grade, unpacked from ``g.U``,
        shape (S, d, d), lower triangular (zeros for format v1 or an unfitted grade)."""
        if self.version < 2:
            return np.zeros((len(self.species), 0, 0))
        packed = self.params["g.U"]
        d = self.params["g.mu"].shape[1]
        U = np.zeros((packed.shape[0], d, d))
        r, c = np.tril_indices(d)
        U[:, r, c] = packed
        return U

    def compute_lower_bound(self, systems: list[System]) -> None:
        """Format v3: set ``w.e_min`` of each species to the lowest fitted site energy
        V_fit [eV] over the atoms of ``systems`` (the fitted data), below which
        V_fit saturates (:meth:`compot.safety.SafetyLayer.bounded_fit`,
        docs/parameter-file.md "Format v3"); a species without atoms gets E_ref
        (bound off). Needs E_ref set first (w = τ (E_ref − e_min)).

        Raises
        ------
        ValueError
            For a model of format v1 or v2 (they have no ``w.e_min``).
        """
        if self.version < 3:
            raise ValueError(f"format v{self.version} has no lower bound of the fitted energy (w.e_min): "
                             "expected a format v3 model")
        low = np.full(len(self.species), np.inf)
        for sys_ in systems:
            ctx = Context(self, sys_)
            np.minimum.at(low, sys_.species_n, ctx.fitted_value())
        e_ref = np.asarray(self.params["w.e_ref"], dtype=float)
        self.params["w.e_min"] = np.where(np.isfinite(low), low, e_ref)

    def compute_grade(self, systems: list[System], margin: float = 9.0, floor: float = 1e-4,
                      headroom: float = 1.0) -> dict:
        """Fit the extrapolation grade (MODEL_SPEC §10) to the atoms of ``systems``.

        Per centre species Z: μ_Z the mean and C_Z the covariance of the atoms'
        feature vectors f (:meth:`compot.safety.SafetyLayer.feature_vector`); C_Z + floor·tr(C_Z)/d·I
        = L Lᵀ (Cholesky) and U_Z = L⁻¹, so γ = |U(f − μ)|² is the squared
        Mahalanobis distance; γ_lo = the largest γ over the atoms (every atom the fit
        saw keeps its fitted energy), γ_hi = ``margin`` × γ_lo. Format v4 also sets
        n_min(Z), the lowest coordination (:func:`compot.safety.coordination`) of the
        atoms of species Z, below which γ grows (off when 0).

        Memory of one batch, whatever the number of atoms: a first pass over the
        batches accumulates μ_Z and C_Z (:class:`compot.safety.RunningMoments`, equal to
        the statistics of all feature vectors stacked to rounding), a second computes
        the batches' feature vectors again for the largest γ. Holding every atom's
        features instead (shape (n_atoms, d)) made this step the peak of a fit's memory,
        growing with the data: 1.6 GB at 64 times the Nb data (benchmarks/scaling_fit.md).

        Parameters
        ----------
        systems : sequence of System — the fitted configurations (priors included),
            iterated twice
        margin : float > 1; floor : float > 0 (relative eigenvalue floor)

        Returns
        -------
        dict {species: {"d", "gamma_lo", "gamma_hi", "n_atoms"}}, and "n_min" in format v4
        """
        if self.version < 2:
            return {}
        self.params["g.U"] = np.zeros(self.params["g.U"].shape)
        if self.version >= 4:
            self.params["g.n_min"] = np.zeros(len(self.species))
        d = self.params["g.mu"].shape[1]
        moments = RunningMoments(len(self.species), d)
        for sys_ in systems:
            ctx = Context(self, sys_)           # the layer holds its Context weakly: keep it alive
            moments.add(ctx.safety.feature_vector(), sys_.species_n)
        fitted, factors = [], {}
        for z in range(len(self.species)):
            if moments.n[z] < 2:
                continue
            C = moments.covariance(z)
            C = C + floor * max(np.trace(C) / d, 1e-300) * np.eye(d)
            L = np.linalg.cholesky(C)
            factors[z] = np.tril(np.linalg.solve(L, np.eye(d)))
            fitted.append(z)
        top = np.zeros(len(self.species))
        n_low = np.full(len(self.species), np.inf)
        for sys_ in systems:
            ctx = Context(self, sys_)
            f = ctx.safety.feature_vector()
            if self.version >= 4 and sys_.n_atoms:
                np.minimum.at(n_low, sys_.species_n, coordination(sys_, self.cutoff)[0])
            for z in fitted:
                at = sys_.species_n == z
                if at.any():
                    gamma = np.sum(((f[at] - moments.mean[z]) @ factors[z].T) ** 2, axis=1)
                    top[z] = max(top[z], float(gamma.max()))
        r, c = np.tril_indices(d)
        out = {}
        for z in fitted:
            sym = self.species[z]
            lo = max(headroom * top[z], 1.0)     # > 0 even for identical atoms
            self.params["g.mu"][z] = moments.mean[z]
            self.params["g.U"][z] = factors[z][r, c]
            self.params["g.gamma_lo"][z] = lo
            self.params["g.gamma_hi"][z] = margin * lo
            out[sym] = {"d": d, "gamma_lo": lo, "gamma_hi": margin * lo, "n_atoms": int(moments.n[z])}
            if self.version >= 4:
                self.params["g.n_min"][z] = out[sym]["n_min"] = float(n_low[z])
        return out

    def window_error(self, pair: str, r_a: float, r_b: float) -> str | None:
        """The format v2 rules tying the inner window [r_a, r_b] of species pair
        ``pair`` (``"Nb-Mo"``) to r_c and to every ZBL r_in (docs/parameter-file.md;
        the C reader's compot_window_error), as a message, or None when they hold."""
        if not r_a <= r_b < self.cutoff:
            return (f"inner window of {pair} needs r_a <= r_b < r_c; expected {r_a!r} <= r_b < {self.cutoff!r}, "
                    f"found r_b = {r_b!r}")
        for node in self.layout.nodes:
            if node.term.is_core and not r_b <= node.term.r_in:
                return (f"{node.term} must be fully on wherever the inner window of {pair} is not; "
                        f"expected r_b <= r_in = {node.term.r_in!r}, found r_b = {r_b!r}")
        return None

    def window_problems(self) -> list[str]:
        """:meth:`window_error` of every species pair's window, empty when all hold
        (always for format v1)."""
        if self.version < 2:
            return []
        pairs = self.layout.block("w.r_a").labels[0]
        errors = (self.window_error(p.replace(".", "-"), ra, rb)
                  for p, ra, rb in zip(pairs, self.params["w.r_a"], self.params["w.r_b"]))
        return [e for e in errors if e]

    def set_block(self, name: str, value) -> None:
        """Set a parameter block, checking its shape; KeyError/ValueError name the block."""
        if name not in self.params:
            raise KeyError(f"unknown parameter block {name!r}; expected one of {', '.join(self.params)}")
        arr = np.array(value, dtype=float)
        want = self.layout.block(name).shape
        if arr.shape != want:
            if arr.size == int(np.prod(want)):
                arr = arr.reshape(want)
            else:
                raise ValueError(f"parameter block {name!r}: expected shape {want}, found {arr.shape}")
        self.params[name] = arr

    def copy(self, version: int | None = None) -> "Model":
        """A copy of the model, in format ``version`` if given (a later version's new
        blocks start at their defaults: v2 → v3 adds ``w.e_min`` = 0, see
        :meth:`compute_lower_bound`)."""
        return Model(self.expression, self.species, self.cutoff, {k: v.copy() for k, v in self.params.items()},
                     self.version if version is None else version, rank=self.rank)

    def blocks(self, role: str | None = None, under: int | None = None) -> list[str]:
        """Block names with a role ('linear', 'nonlinear', 'fixed'), optionally
        restricted to node ``under`` and its descendants (with their bases)."""
        names = [b.name for b in self.layout.blocks if role is None or b.role == role]
        if under is None:
            return names
        sub = set(self.subtree(under))
        bases = {self.layout.nodes[i].basis for i in sub if self.layout.nodes[i].basis is not None}
        keep = {f"n{i}" for i in sub} | {f"b{b + 1}" for b in bases}
        return [n for n in names if n.split(".")[0] in keep]

    def subtree(self, idx: int) -> list[int]:
        out = [idx]
        for c in self.layout.nodes[idx].children:
            out.extend(self.subtree(c))
        return out

    def vector(self, names: list[str]) -> np.ndarray:
        return np.concatenate([self.params[n].ravel() for n in names]) if names else np.zeros(0)

    def set_vector(self, names: list[str], x: np.ndarray) -> None:
        pos = 0
        for n in names:
            size = self.params[n].size
            self.params[n] = np.asarray(x[pos:pos + size], dtype=float).reshape(self.params[n].shape)
            pos += size
        if pos != len(x):
            raise ValueError(f"expected {pos} values for blocks {names}, found {len(x)}")

    # --------------------------------------------------------- evaluation
    def system(self, atoms_list, sources=None) -> System:
        """Neighbour data of a batch of configurations for this model's cutoff."""
        return System.from_atoms(atoms_list, self.species, self.cutoff, sources)

    def context(self, system: System) -> Context:
        """The evaluation state of this model on ``system`` (:class:`compot.context.Context`)."""
        return Context(self, system)

    def evaluate(self, system: System, forces: bool = True, virial: bool = True) -> Prediction:
        """Energies, forces and virial of every configuration of a batch.

        Parameters
        ----------
        system : System
        forces, virial : bool — whether to compute them

        Returns
        -------
        Prediction
        """
        ctx = Context(self, system)
        e_n = ctx.site_energy()
        e_m = system.sum_config @ e_n
        F = W = None
        if forces or virial:
            grad = PairGradient(system, 1)
            ctx.site_energy_vjp(np.ones((system.n_atoms, 1)), grad, slice(0, 1))
            G = grad.finish(ctx)[:, :, 0]
            if forces:
                F = system.forces(G)
            if virial:
                W = system.virials(G)
        return Prediction(e_m, e_n, F, W)

    def compute_scales(self, systems: list[System], bases: list[int] | None = None) -> None:
        """Set φ_max and ρ_max of the given bases (all by default) to the largest
        |φ_k^(s)(i)|, |ρ_k^(s)(i)| over the atoms of ``systems`` (MODEL_SPEC §3),
        and, in format v2, q_max of the A leaves on those bases to the largest
        |q_kp^(s1 s2)(i)| (MODEL_SPEC §10); a channel that never occurs gets scale 1."""
        bases = range(len(self.layout.bases)) if bases is None else bases
        for b in bases:
            spec = self.layout.bases[b].spec
            S = len(self.layout.channels)
            pmax = np.zeros((S, spec.K))
            rmax = np.zeros((S, spec.K))
            users = [self.layout.nodes[i] for i in self.layout.bases[b].users]
            need_rho = any(node.term.needs_rho for node in users)
            for sys_ in systems:
                ctx = Context(self, sys_)
                pmax = np.maximum(pmax, np.abs(ctx.phi(b)).max(axis=0, initial=0.0))
                if need_rho:
                    rmax = np.maximum(rmax, np.abs(ctx.rho(b)).max(axis=0, initial=0.0))
            self.params[f"b{b + 1}.phi_max"] = np.where(pmax > 0, pmax, 1.0)
            self.params[f"b{b + 1}.rho_max"] = np.where(rmax > 0, rmax, 1.0)
            for node in users:
                # term-owned scales (format v2 q_max of an A term), from the new φ scales
                top: dict[str, np.ndarray] = {}
                for sys_ in systems:
                    for name, x in node.term.scale_maxima(Context(self, sys_), node).items():
                        top[name] = np.maximum(top.get(name, np.zeros(self.params[name].shape)), x)
                for name, x in top.items():
                    self.params[name] = np.where(x > 0, x, 1.0)

    # ----------------------------------------------------------- training
    def linear_design(self, system: System, names: list[str], forces: bool = True,
                      virial: bool = False) -> LinearDesign:
        """Rows of the least-squares problem for linear blocks ``names``.

        The model must be linear in the union of those blocks (no two in the two
        factors of one product). Then, for every configuration m and atom i,
        E_m = Σ_c Jᴱ_mc θ_c + rest_m and F_i = Σ_c Jᶠ_ic θ_c + rest_i, with θ the
        blocks' values in order.

        Parameters
        ----------
        system : System
        names : list of str — linear block names (``n1.c``, ``n0.shift``)
        forces : bool — also return force rows
        virial : bool — also return virial rows ``JW`` (W_m = Σ_c Jᵂ_mc θ_c + rest; the
            stress is W_m / V_m) and the rest's virial in ``pred`` (implies ``forces``)

        Returns
        -------
        LinearDesign
            (JE, JF, pred): energy rows, shape (m, n_cols) [eV per unit θ]; force rows,
            shape (n, 3, n_cols) [eV/Å per unit θ] or None; the Prediction at the
            current parameters (to form ``rest``).
        """
        ctx = Context(self, system)
        design = _Design(self, ctx, names)
        pos = design.n_columns
        Phi = np.zeros((system.n_atoms, pos))
        design.columns(0, Phi, np.ones(system.n_atoms))
        # format v2 atom switch (MODEL_SPEC §10): E_i = S_i V_fit(i) + (1 − S_i) E_ref + E_ZBL,
        # so every column is S_i Φ(i); E_ref and ZBL are in the rest
        S_n, dS_p = ctx.switch()
        Phi_fit = Phi
        if self.version >= 2:
            Phi = Phi * S_n[:, None]
        JE = system.sum_config @ Phi
        pred_e = ctx.site_energy()
        JF = None
        G1 = None
        JW = W1 = None
        if forces or virial:
            grad = PairGradient(system, pos + 1)
            design.column_vjp(0, S_n, grad)
            if np.any(dS_p):
                grad.R[:, :pos] += dS_p[:, None] * Phi_fit[system.i_p]
            dS_df = ctx.safety.switch_feature_gradient()
            if dS_df is not None:
                # Φ_c(i) ∂S_i/∂D through the grade: one feature VJP per column
                ctx.safety.features_vjp(dS_df, Phi_fit, grad, slice(0, pos))
            ctx.site_energy_vjp(np.ones((system.n_atoms, 1)), grad, slice(pos, pos + 1))
            if virial:
                Fall, Wall = grad.forces_virials(ctx)
                JW = Wall[:, :, :pos]
                W1 = voigt_to_matrix(Wall[:, :, pos])
            else:
                Fall = grad.forces(ctx)
            JF = Fall[:, :, :pos]
            G1 = Fall[:, :, pos]
        pred = Prediction(system.sum_config @ pred_e, pred_e, G1, W1)
        return LinearDesign(JE, JF, pred, JW, Phi)


class _Design:
    """Columns of the linear design matrix of blocks ``names`` (see
    :meth:`Model.linear_design`): each node fills the columns of its own
    coefficient and shift blocks, and its term those of its children
    (:meth:`compot.terms.Term.design_columns`)."""

    def __init__(self, model: Model, ctx: Context, names: list[str]):
        self.model = model
        self.ctx = ctx
        self.names = names
        self.offsets: dict[str, slice] = {}
        pos = 0
        for n in names:
            self.offsets[n] = slice(pos, pos + model.params[n].size)
            pos += model.params[n].size
        self.n_columns = pos

    def active_under(self, idx: int) -> list[str]:
        """The design's blocks under node idx, in design order."""
        under = self.model.blocks("linear", under=idx)
        return [n for n in self.names if n in under]

    def columns(self, idx: int, Phi: np.ndarray, weight: np.ndarray) -> None:
        """Fill Φ[:, cols] with the per-atom features of the active blocks under
        node idx, each multiplied by ``weight`` (the product of the other factors)."""
        node = self.model.layout.nodes[idx]
        cname = f"n{idx}.c"
        if cname in self.names:
            Phi[:, self.offsets[cname]] = self.ctx.features(idx) * weight[:, None]
        sname = f"n{idx}.shift"
        if sname in self.names:
            Phi[:, self.offsets[sname]] = self.ctx.onehot * weight[:, None]
        node.term.design_columns(self, node, Phi, weight)

    def column_vjp(self, idx: int, weight: np.ndarray, grad: PairGradient) -> None:
        """Gradient of Σ_i Φ_c(i) for every active column c (see :meth:`columns`)."""
        node = self.model.layout.nodes[idx]
        cname = f"n{idx}.c"
        if cname in self.names:
            cols = self.offsets[cname]
            A = np.repeat(weight[:, None], cols.stop - cols.start, axis=1)
            self.ctx.feature_vjp(idx, A, grad, cols)
        node.term.design_column_vjp(self, node, weight, grad)

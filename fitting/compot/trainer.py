"""Dual-bipartite training (paper Sec. IV.1, Fig. 3; MODEL_SPEC §6).

The parameters are split twice: into the parts of a composition and, within
each part, into linear coefficients (solved by linear least squares) and
nonlinear ones (α, β, γ; searched by Bayesian optimisation with sequential
domain reduction, ``bayes_opt``). The plan follows the expression tree:

* a leaf: one search over its nonlinear parameters, every evaluation solving
  its linear coefficients (and the shifts above it);
* a sum X + Y + …: train X, then Y with X fixed, …; nonlinear basis
  parameters shared by several summands are searched with the first one and
  then held; finally one joint linear solve (a sum is linear in all its
  linear coefficients at once) — or alternating solves if it contains products;
* a product X * Y: train X with Y ≡ 1, then Y with X fixed, then alternate
  linear solves of X and Y until the loss stops improving, fixing the scale
  gauge (X·t, Y/t) after every sweep.

Loss (paper Eq. 26): L = Σ_m w_E,m (E_m − Ê_m)² + Σ_m Σ_i w_F,m |F_mi − F̂_mi|².
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.linalg

from .errors import ConfigError, FitError, reject_unknown_keys
from .expression import LEAVES, Product, Sum, ZBL
from .model import Model

__all__ = ["FitSettings", "Trainer", "Stage", "DEFAULT_BOUNDS"]

log = logging.getLogger(__name__)

#: Default search box of nonlinear parameters. α is searched in log space.
DEFAULT_BOUNDS = {"alpha": (0.005, 2.0), "beta": (1.05, 3.0), "gamma": (-3.0, 3.0)}


@dataclass
class FitSettings:
    """Settings of the dual-bipartite trainer (YAML section ``fit``).

    max_evaluations : Bayesian-optimisation evaluations per search stage
    init_points : random evaluations that start each search (after the start point)
    seed : random seed; the procedure is deterministic for a given seed
    energy_weight, force_weight : loss weights w_E, w_F (paper Eq. 26 uses 1, 1)
    energy_per_atom : divide each energy residual by the configuration's atom count
    group_weights : extra weight per configuration group (multiplies both terms)
    ridge : Tikhonov weight added to the linear least squares (0 = none)
    rcond : singular values below rcond·σ_max of the column-normalised design
        matrix are discarded (truncated SVD; near-collinear bases otherwise give
        coefficients so large that rounding alone ruins the fit)
    bounds : search box {alpha, beta, gamma} → (low, high); α [1/Å²] searched in log space
    polish_evaluations : after the Bayesian optimisation, a bounded Powell
        search (SciPy) started from its best point refines the nonlinear
        parameters with at most this many evaluations (0 = off)
    max_sweeps, tol : alternating solves of products stop after max_sweeps or
        when the relative loss decrease of a sweep is below tol
    batch_atoms : atoms per evaluation batch (memory ∝ batch_atoms)
    zbl_anchor : short-range prior for models with a ZBL core, e.g.
        ``{r_min: 1.0, r_max: 2.3, n: 14, weight: 1.0}`` (empty = off): adds
        dimers of every species pair at n distances in [r_min, r_max] Å whose
        target forces are the ZBL forces alone (energies not fitted), so that
        the fitted terms add no force where only the core repulsion is known
        to hold. The data has no pair closer than ~2.1 Å; without a prior the
        fitted terms extrapolate freely there (MODEL_SPEC §9).
    eos_anchor : equation-of-state prior outside the data (empty = off), e.g.
        ``{a0: 3.322, e0: -10.095, bulk_modulus: 173, b_prime: 4.0, lattice: bcc,
        weight: 1.0}``: perfect lattices at ``scales`` × a0 (default 0.72–0.94 and
        1.06–1.40) whose target energies follow the Vinet equation of state
        E(V) = E0 + 2B0V0/(B'−1)² {2 − [5 + 3B'(η−1) − 3η] exp(−3(B'−1)(η−1)/2)},
        η = (V/V0)^(1/3) [Vinet et al., J. Phys. C 19, L467 (1986)], with a0 [Å],
        E0 [eV/atom] and B0 [GPa] from the data (``compot validate`` prints them)
        and B' = 4 unless given. Single-species models only.
    freeze : node names (``n1``) or block names (``b1.alpha``) held fixed ("switches")
    """

    max_evaluations: int = 40
    init_points: int = 8
    polish_evaluations: int = 20
    seed: int = 0
    energy_weight: float = 1.0
    force_weight: float = 1.0
    energy_per_atom: bool = False
    group_weights: dict = field(default_factory=dict)
    ridge: float = 0.0
    rcond: float = 1e-10
    bounds: dict = field(default_factory=lambda: dict(DEFAULT_BOUNDS))
    max_sweeps: int = 30
    tol: float = 1e-7
    batch_atoms: int = 3000
    freeze: list = field(default_factory=list)
    zbl_anchor: dict = field(default_factory=dict)
    eos_anchor: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict, where: str = "fit") -> "FitSettings":
        """Build from a mapping, rejecting unknown keys with the list of allowed ones."""
        reject_unknown_keys(where, d, list(cls.__dataclass_fields__))
        d = dict(d)
        defaults = cls()
        for key, value in list(d.items()):
            want = type(getattr(defaults, key))
            if want in (int, float) and not isinstance(value, bool):
                try:
                    num = float(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"{where}.{key}: expected a number, found {value!r}") from None
                if want is int and num != int(num):
                    raise ConfigError(f"{where}.{key}: expected an integer, found {value!r}")
                d[key] = int(num) if want is int else num
            elif want is bool and not isinstance(value, bool):
                raise ConfigError(f"{where}.{key}: expected true or false, found {value!r}")
            elif want in (dict, list) and not isinstance(value, want):
                raise ConfigError(f"{where}.{key}: expected a {'mapping' if want is dict else 'list'}, "
                                  f"found {value!r}")
        s = cls(**d)
        bounds = dict(DEFAULT_BOUNDS)
        for k, v in (d.get("bounds") or {}).items():
            reject_unknown_keys(f"{where}.bounds", [k], DEFAULT_BOUNDS)
            if len(v) != 2 or not float(v[0]) < float(v[1]):
                raise ConfigError(f"{where}.bounds.{k}: expected [low, high] with low < high, found {v!r}")
            # the rules of the parameter file (docs/parameter-file.md): a fit must
            # not end in a model that no reader accepts
            if (k == "alpha" and not float(v[0]) > 0) or (k == "beta" and not float(v[0]) > 1):
                raise ConfigError(f"{where}.bounds.{k}: expected low > {0 if k == 'alpha' else 1} "
                                  f"({k} > {0 if k == 'alpha' else 1} in a parameter file), found {v!r}")
            bounds[k] = (float(v[0]), float(v[1]))
        s.bounds = bounds
        if s.max_evaluations < 1 or s.init_points < 0:
            raise ConfigError(f"{where}: max_evaluations must be >= 1 and init_points >= 0, "
                              f"found {s.max_evaluations}, {s.init_points}")
        return s


@dataclass
class Stage:
    """One step of the plan: a search (nonlinear + inner linear solve), a
    linear solve, or alternating linear solves over ``groups``."""

    kind: str
    name: str
    nonlinear: list = field(default_factory=list)
    linear: list = field(default_factory=list)
    groups: list = field(default_factory=list)


def zbl_anchor_configurations(model: Model, anchor: dict) -> list:
    """Dimers whose target forces are those of the model's ZBL term alone
    (see ``FitSettings.zbl_anchor``); energy weight 0, group ``zbl_anchor``."""
    if not anchor:
        return []
    reject_unknown_keys("fit.zbl_anchor", anchor, sorted({"r_min", "r_max", "n", "weight"}))
    zbl = [n.term for n in model.layout.nodes if isinstance(n.term, ZBL)]
    if not zbl:
        raise ConfigError(f"fit.zbl_anchor needs a ZBL term in the expression; found {model.expression!r}")
    from .data import Configuration
    from .functions import atomic_number, zbl_pair_fdf

    r = np.linspace(float(anchor.get("r_min", 1.0)), float(anchor.get("r_max", 2.3)), int(anchor.get("n", 14)))
    weight = float(anchor.get("weight", 1.0))
    out = []
    sp = model.species
    for a in range(len(sp)):
        for b in range(a, len(sp)):
            za, zb = atomic_number(sp[a]), atomic_number(sp[b])
            for k, rk in enumerate(r):
                de = sum(zbl_pair_fdf(np.array([rk]), np.array([za]), np.array([zb]), t.r_in, t.r_out)[1][0]
                         for t in zbl)
                forces = np.array([[de, 0.0, 0.0], [-de, 0.0, 0.0]])     # F_0 = +dE/dr x̂ (pushed apart)
                out.append(Configuration(symbols=(sp[a], sp[b]), positions=np.array([[0.0, 0, 0], [rk, 0, 0]]),
                                         cell=np.zeros((3, 3)), pbc=np.array([False] * 3), energy=0.0,
                                         forces=forces, weight=weight, group="zbl_anchor",
                                         source=f"zbl_anchor:{sp[a]}{sp[b]}:{rk:.3f}"))
    return out


def eos_anchor_configurations(model: Model, anchor: dict) -> list:
    """Perfect lattices with Vinet-EOS target energies (see ``FitSettings.eos_anchor``)."""
    if not anchor:
        return []
    reject_unknown_keys("fit.eos_anchor", anchor, sorted({"a0", "e0", "bulk_modulus", "b_prime", "lattice", "scales", "weight"}))
    missing = sorted({"a0", "e0", "bulk_modulus"} - set(anchor))
    if missing:
        raise ConfigError(f"fit.eos_anchor: missing {', '.join(missing)} (a0 [Å], e0 [eV/atom], bulk_modulus [GPa]); "
                          "compot fit derives all three from the training data when none is given")
    if len(model.species) != 1:
        raise ConfigError(f"fit.eos_anchor: single-species models only; found species {model.species}")
    from .data import Configuration
    from .derive import LATTICES, Lattice, vinet_energy

    kind = anchor.get("lattice", "bcc")
    if kind not in LATTICES:
        raise ConfigError(f"fit.eos_anchor.lattice: expected one of {', '.join(LATTICES)}, found {kind!r}")
    scales = anchor.get("scales") or [0.72, 0.76, 0.80, 0.84, 0.88, 0.92, 0.94,
                                      1.06, 1.10, 1.15, 1.20, 1.25, 1.30, 1.35, 1.40]
    lattice = Lattice(kind, float(anchor["a0"]), model.species[0])
    out = []
    for x in scales:
        at = lattice.atoms(lattice.a0 * float(x))
        e = float(vinet_energy(lattice.volume_per_atom(lattice.a0 * float(x)), lattice.volume_per_atom(),
                               float(anchor["e0"]), float(anchor["bulk_modulus"]),
                               float(anchor.get("b_prime", 4.0)))) * len(at)
        out.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                 cell=at.cell.array, pbc=at.pbc, energy=e, forces=np.zeros((len(at), 3)),
                                 weight=float(anchor.get("weight", 1.0)), group="eos_anchor",
                                 source=f"eos_anchor:{kind}:{x:.3f}a0"))
    return out


class _Data:
    """Training batches with targets and row weights."""

    def __init__(self, model: Model, configs, settings: FitSettings, priors=()):
        self.batches = []
        for k, part in enumerate((list(configs), list(priors))):
            batch, natoms = [], 0
            for c in part:
                batch.append(c)
                natoms += c.n_atoms
                if natoms >= settings.batch_atoms:
                    self.batches.append(batch)
                    batch, natoms = [], 0
            if batch:
                self.batches.append(batch)
            if k == 0:
                #: batches [0, n_data_batches) hold the training data, the rest the priors
                self.n_data_batches = len(self.batches)
        self.systems = []
        self.E, self.F, self.wE, self.wF = [], [], [], []
        for b in self.batches:
            self.systems.append(model.system(b, sources=[c.source for c in b]))
            self.E.append(np.array([c.energy for c in b]))
            self.F.append(np.concatenate([c.forces for c in b]))
            gw = np.array([float(settings.group_weights.get(c.group, 1.0)) * c.weight for c in b])
            we = settings.energy_weight * gw * np.array([c.group != "zbl_anchor" for c in b], dtype=float)
            if settings.energy_per_atom:
                we = we / np.array([c.n_atoms for c in b], dtype=float) ** 2
            self.wE.append(we)
            self.wF.append(np.repeat(settings.force_weight * gw, [c.n_atoms for c in b]))
        self.n_rows = sum(len(e) for e in self.E) + 3 * sum(len(f) for f in self.F)


class Trainer:
    """Fit a :class:`~compot.model.Model` to configurations.

    Parameters
    ----------
    model : Model — modified in place
    configs : list of Configuration — training data
    settings : FitSettings
    checkpoint : path, optional — JSON file written after every evaluation; a
        trainer given an existing checkpoint of the same model and settings resumes from it
    progress : callable(dict), optional — called after every evaluation/solve with
        keys stage, n_stages, name, evaluation, max_evaluations, loss, best_loss

    Raises
    ------
    FitError
        Empty data, or a checkpoint that belongs to another model or settings.
    """

    def __init__(self, model: Model, configs, settings: FitSettings | None = None,
                 checkpoint: str | os.PathLike | None = None, progress: Callable | None = None):
        if not configs:
            raise FitError("no training configurations")
        self.model = model
        self.settings = settings or FitSettings()
        self.data = _Data(model, configs, self.settings,
                          zbl_anchor_configurations(model, self.settings.zbl_anchor)
                          + eos_anchor_configurations(model, self.settings.eos_anchor))
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.progress = progress or (lambda info: None)
        self.frozen = self._frozen_blocks()
        self._init_product_factors()
        self.plan = self.make_plan()
        self.history: list[dict] = []

    # ----------------------------------------------------------------- plan
    def _frozen_blocks(self) -> set:
        out = set()
        names = [b.name for b in self.model.layout.blocks]
        for f in self.settings.freeze:
            hit = [n for n in names if n == f or n.split(".")[0] == f]
            if not hit:
                raise ConfigError(f"fit.freeze: {f!r} names no node or parameter block; "
                                  f"nodes are n0..n{len(self.model.layout.nodes) - 1}, blocks e.g. {names[:3]}")
            if f.startswith("n") and "." not in f:
                idx = int(f[1:])
                hit = self.model.blocks(under=idx)
                hit = [h for h in hit if h.startswith("n")]
            out.update(hit)
        return out

    def _init_product_factors(self) -> None:
        """Right factors of products start at V ≡ 1 so that the left factor can be trained alone."""
        for n in self.model.layout.nodes:
            if isinstance(n.term, Product):
                right = n.children[1]
                name = f"n{right}.shift"
                if np.all(self.model.params[name] == 0):
                    self.model.params[name] = np.ones_like(self.model.params[name])

    def _lin(self, idx: int) -> list:
        return [b for b in self.model.blocks("linear", under=idx) if b not in self.frozen]

    def _own(self, idx: int) -> list:
        """Linear blocks of a leaf (its coefficients and its shift)."""
        return [b for b in (f"n{idx}.c", f"n{idx}.shift") if b in self.model.params and b not in self.frozen]

    def _shift(self, idx: int) -> list:
        name = f"n{idx}.shift"
        return [name] if name in self.model.params and name not in self.frozen else []

    def linear_groups(self, idx: int) -> list:
        """Sets of linear blocks in which node idx's value is affine."""
        node = self.model.layout.nodes[idx]
        t = node.term
        if isinstance(t, ZBL):
            return [[]]
        if isinstance(t, LEAVES):
            return [self._own(idx)]
        if isinstance(t, Sum):
            child = [self.linear_groups(c) for c in node.children]
            n = max(len(g) for g in child)
            return [sum((g[min(k, len(g) - 1)] for g in child), []) + self._shift(idx) for k in range(n)]
        left, right = node.children
        return [g + self._shift(idx) for g in self.linear_groups(left) + self.linear_groups(right)]

    def make_plan(self) -> list:
        searched: set = set()
        stages: list = []

        def nonlin(idx):
            out = []
            for b in self.model.blocks("nonlinear", under=idx):
                if b not in searched and b not in self.frozen:
                    out.append(b)
            return out

        def plan(idx: int, extra: list) -> None:
            node = self.model.layout.nodes[idx]
            t = node.term
            if isinstance(t, ZBL):
                return
            if isinstance(t, LEAVES):
                nl = nonlin(idx)
                searched.update(nl)
                lin = self._own(idx) + extra
                stages.append(Stage("search" if nl else "solve", f"n{idx} {t}", nl, lin))
                return
            inner = extra + self._shift(idx)
            for c in node.children:
                plan(c, inner)
            groups = [g + extra for g in self.linear_groups(idx)]
            if len(groups) == 1:
                stages.append(Stage("solve", f"n{idx} {t}: joint linear solve", [], groups[0]))
            else:
                stages.append(Stage("alternate", f"n{idx} {t}: alternating linear solves", [], [], groups))

        plan(0, [])
        return stages

    # ------------------------------------------------------------ solving
    def _system_rows(self, names: list):
        """Stacked weighted design A and right-hand side b for linear blocks ``names``."""
        model = self.model
        theta = model.vector(names)
        # the value is affine in these blocks and their columns do not depend on
        # them: with the blocks at zero the prediction is exactly the rest
        model.set_vector(names, np.zeros_like(theta))
        As, bs = [], []
        try:
            rows = [model.linear_design(sysm, names) for sysm in self.data.systems]
        finally:
            model.set_vector(names, theta)
        for k, (JE, JF, pred) in enumerate(rows):
            restE = pred.energy_m
            restF = pred.forces_nc
            sE = np.sqrt(self.data.wE[k])
            sF = np.sqrt(self.data.wF[k])
            As.append(JE * sE[:, None])
            bs.append((self.data.E[k] - restE) * sE)
            As.append((JF * sF[:, None, None]).reshape(-1, len(theta)))
            bs.append(((self.data.F[k] - restF) * sF[:, None]).ravel())
        return np.concatenate(As), np.concatenate(bs)

    def solve(self, names: list) -> float:
        """Solve the linear blocks ``names`` by SVD least squares (columns scaled
        to unit norm; optional ridge). Updates the model; returns the loss."""
        if not names:
            return self.loss()
        A, b = self._system_rows(names)
        norms = np.linalg.norm(A, axis=0)
        # a column that is ~0 on all training data (a basis function sampled only
        # in its far tail) gets coefficient 0 instead of an astronomically large one
        dead = norms <= 1e-14 * norms.max(initial=0.0)
        norms[dead] = np.inf
        As = A / norms
        if self.settings.ridge > 0:
            k = As.shape[1]
            As = np.vstack([As, math.sqrt(self.settings.ridge) * np.eye(k)])
            b_aug = np.concatenate([b, np.zeros(k)])
        else:
            b_aug = b
        x, *_ = scipy.linalg.lstsq(As, b_aug, cond=self.settings.rcond, lapack_driver="gelsd")
        theta = x / norms
        self.model.set_vector(names, theta)
        r = A @ theta - b
        return float(r @ r)

    def loss(self) -> float:
        """Current loss L (paper Eq. 26) on the training data [eV²]."""
        total = 0.0
        for k, sysm in enumerate(self.data.systems):
            p = self.model.evaluate(sysm, forces=True, virial=False)
            total += float(np.sum(self.data.wE[k] * (p.energy_m - self.data.E[k]) ** 2))
            total += float(np.sum(self.data.wF[k][:, None] * (p.forces_nc - self.data.F[k]) ** 2))
        return total

    def _refresh_scales(self, names: list) -> None:
        bases = sorted({int(n.split(".")[0][1:]) - 1 for n in names if n.startswith("b")})
        if bases:
            # the range is that of everything the fit constrains, priors included: with the
            # range of the training data alone, held-out Mo configurations slightly beyond
            # it met the saturating branch, where the fit's cancelling coefficients no longer
            # cancel (validation F RMSE 2.2 eV/Å instead of 0.1)
            self.model.compute_scales(self.data.systems, bases)

    # ------------------------------------------------------------ search
    def _keys(self, names: list) -> list:
        keys = []
        for n in names:
            size = self.model.params[n].size
            keys += [n] if size == 1 and self.model.params[n].ndim == 0 else [f"{n}.{i + 1}" for i in range(size)]
        return keys

    def _bounds(self, key: str):
        kind = key.split(".")[1]
        lo, hi = self.settings.bounds[kind]
        if kind == "alpha":
            return (math.log(lo), math.log(hi))
        return (lo, hi)

    def _to_params(self, names: list, keys: list, point: dict) -> np.ndarray:
        x = []
        for key in keys:
            v = float(point[key])
            x.append(math.exp(v) if key.split(".")[1] == "alpha" else v)
        return np.array(x)

    def _from_params(self, keys: list, x: np.ndarray) -> dict:
        out = {}
        for key, v in zip(keys, x):
            lo, hi = self._bounds(key)
            v = math.log(v) if key.split(".")[1] == "alpha" else float(v)
            out[key] = min(max(v, lo), hi)
        return out

    def _evaluate(self, stage: Stage, x: np.ndarray) -> float:
        self.model.set_vector(stage.nonlinear, x)
        self._refresh_scales(stage.nonlinear)
        return self.solve(stage.linear)

    def search(self, si: int, stage: Stage, done: list) -> float:
        """Bayesian optimisation over the stage's nonlinear parameters."""
        from bayes_opt import BayesianOptimization, SequentialDomainReductionTransformer

        s = self.settings
        keys = self._keys(stage.nonlinear)
        pbounds = {k: self._bounds(k) for k in keys}
        opt = BayesianOptimization(f=None, pbounds=pbounds, random_state=s.seed + si, verbose=0,
                                   bounds_transformer=SequentialDomainReductionTransformer(minimum_window=0.05),
                                   allow_duplicate_points=False)
        start_params = self.model.vector(stage.nonlinear)
        queue = [self._from_params(keys, start_params)] + opt.random_sample(s.init_points)
        best = (math.inf, None)
        n_eval = 0
        for x, target in done:                       # resumed evaluations
            point = dict(zip(keys, x))
            if opt.space.params_to_array(point) not in opt.space:
                opt.register(point, target)
            loss = 10.0 ** (-target) * self.data.n_rows
            if loss < best[0]:
                best = (loss, point)
            n_eval += 1
            if queue:
                queue.pop(0)
        while n_eval < s.max_evaluations:
            point = queue.pop(0) if queue else opt.suggest()
            point = {k: float(point[k]) for k in keys}
            if opt.space.params_to_array(point) in opt.space:    # a repeat teaches nothing: explore
                point = {k: float(v) for k, v in opt.random_sample(1)[0].items()}
            try:
                loss = self._evaluate(stage, self._to_params(stage.nonlinear, keys, point))
                ok = math.isfinite(loss)
            except (FloatingPointError, np.linalg.LinAlgError, ValueError):
                ok = False
            if not ok:
                loss = math.inf
            target = -math.log10(loss / self.data.n_rows) if ok and loss > 0 else -30.0
            if opt.space.params_to_array(point) not in opt.space:
                opt.register(point, target)
            if not queue and n_eval >= s.init_points and len(opt.space) > 1:
                opt.set_bounds(opt._bounds_transformer.transform(opt.space))
            n_eval += 1
            if loss < best[0]:
                best = (loss, point)
            done.append(([point[k] for k in keys], target))
            self._save_checkpoint(si, done)
            self.progress(dict(stage=si + 1, n_stages=len(self.plan), name=stage.name, evaluation=n_eval,
                               max_evaluations=s.max_evaluations, loss=loss / self.data.n_rows,
                               best_loss=best[0] / self.data.n_rows))
        if best[1] is None:
            raise FitError(f"stage {stage.name}: no evaluation gave a finite loss; check the data and the bounds")
        if s.polish_evaluations > 0:
            best = self._polish(si, stage, keys, pbounds, best, n_eval)
        final = self._evaluate(stage, self._to_params(stage.nonlinear, keys, best[1]))
        at_bound = []
        for k in keys:
            lo, hi = pbounds[k]
            v = best[1][k]
            if min(v - lo, hi - v) <= 1e-3 * (hi - lo):
                at_bound.append(k)
        if at_bound:
            log.warning("stage %s: parameter(s) %s ended on the bound of the search box %s",
                        stage.name, ", ".join(at_bound), {k: pbounds[k] for k in at_bound})
        self.history.append(dict(stage=stage.name, kind="search", loss=final / self.data.n_rows,
                                 evaluations=n_eval, at_bound=at_bound))
        return final

    def _polish(self, si, stage, keys, pbounds, best, n_eval):
        """Bounded Powell refinement of the best point of the search."""
        from scipy.optimize import minimize

        s = self.settings
        state = {"best": best, "n": 0}

        def objective(v):
            point = dict(zip(keys, (float(x) for x in v)))
            try:
                loss = self._evaluate(stage, self._to_params(stage.nonlinear, keys, point))
            except (FloatingPointError, np.linalg.LinAlgError, ValueError):
                loss = math.inf
            if not math.isfinite(loss):
                return 1e300
            state["n"] += 1
            if loss < state["best"][0]:
                state["best"] = (loss, point)
            self.progress(dict(stage=si + 1, n_stages=len(self.plan), name=stage.name + " (polish)",
                               evaluation=n_eval + state["n"], max_evaluations=s.max_evaluations + s.polish_evaluations,
                               loss=loss / self.data.n_rows, best_loss=state["best"][0] / self.data.n_rows))
            return math.log(loss)

        x0 = np.array([best[1][k] for k in keys])
        bounds = [pbounds[k] for k in keys]
        minimize(objective, x0, method="Powell", bounds=bounds,
                 options={"maxfev": s.polish_evaluations, "xtol": 1e-4, "ftol": 1e-6})
        return state["best"]

    def alternate(self, si: int, stage: Stage) -> float:
        """Alternating linear solves over groups until the loss stops improving."""
        prev = math.inf
        loss = math.inf
        for sweep in range(self.settings.max_sweeps):
            for g in stage.groups:
                loss = self.solve(g)
            self._fix_gauges()
            self.progress(dict(stage=si + 1, n_stages=len(self.plan), name=stage.name, evaluation=sweep + 1,
                               max_evaluations=self.settings.max_sweeps, loss=loss / self.data.n_rows,
                               best_loss=loss / self.data.n_rows))
            if math.isfinite(prev) and prev - loss <= self.settings.tol * prev:
                break
            prev = loss
        self.history.append(dict(stage=stage.name, kind="alternate", loss=loss / self.data.n_rows,
                                 sweeps=sweep + 1))
        return loss

    def _homogeneous(self, idx: int) -> bool:
        t = self.model.layout.nodes[idx].term
        if isinstance(t, LEAVES):
            return True
        if isinstance(t, Sum):
            return all(isinstance(self.model.layout.nodes[c].term, LEAVES) for c in self.model.layout.nodes[idx].children)
        return False

    def _fix_gauges(self) -> None:
        """Normalise the right factor of each product to RMS(V) = 1 over the
        training atoms, scaling the left factor inversely (exact gauge X·t, Y/t)."""
        for n in self.model.layout.nodes:
            if not isinstance(n.term, Product):
                continue
            left, right = n.children
            if not (self._homogeneous(left) and self._homogeneous(right)):
                continue
            sq, count = 0.0, 0
            for sysm in self.data.systems:
                v = self.model.context(sysm).value(right)
                sq += float(v @ v)
                count += v.size
            t = math.sqrt(sq / count)
            if not t > 0:
                continue
            for name in self.model.blocks("linear", under=right):
                self.model.params[name] = self.model.params[name] / t
            for name in self.model.blocks("linear", under=left):
                self.model.params[name] = self.model.params[name] * t

    # ----------------------------------------------------------- checkpoint
    def _fingerprint(self) -> str:
        d = dict(expression=self.model.expression, species=self.model.species, cutoff=self.model.cutoff,
                 settings={k: v for k, v in asdict(self.settings).items()},
                 n_configs=sum(len(b) for b in self.data.batches), n_rows=self.data.n_rows)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _save_checkpoint(self, stage_index: int, done: list, finished: bool = False) -> None:
        if not self.checkpoint:
            return
        from .io import atomic_write_text
        state = dict(fingerprint=self._fingerprint(), stage=stage_index, evaluations=done,
                     params={k: v.tolist() for k, v in self._stage_start_params.items()},
                     history=self.history, finished=finished)
        atomic_write_text(self.checkpoint, json.dumps(state))

    def _load_checkpoint(self):
        if not self.checkpoint or not self.checkpoint.exists():
            return 0, []
        state = json.loads(self.checkpoint.read_text())
        if state.get("fingerprint") != self._fingerprint():
            if state.get("stage", 0) >= len(self.plan) or state.get("finished"):
                log.info("%s: previous fit finished with other settings; starting afresh", self.checkpoint)
                return 0, []
            raise FitError(f"{self.checkpoint}: an unfinished fit of another model, data or settings is in this "
                           "folder; resume it with its own settings, or start afresh with --restart")
        for k, v in state["params"].items():
            self.model.set_block(k, np.array(v))
        self.history = state.get("history", [])
        log.info("resuming from %s at stage %d with %d evaluations done", self.checkpoint,
                 state["stage"] + 1, len(state["evaluations"]))
        return state["stage"], [tuple(e) for e in state["evaluations"]]

    def _finish_safety(self) -> None:
        """Format v2 (MODEL_SPEC §10): fit the extrapolation grade to the atoms of the
        training data (not the priors: a grade that counted the compressed lattices of
        the EOS prior as known left a dip where the fitted energy handed over to E_ref),
        and, where no reference site energy was set (compot.recipe sets it from the
        data's equation of state), take the highest fitted site energy of each species
        over the data."""
        if self.model.version < 2:
            return
        self.grade_info = self.model.compute_grade(self.data.systems[:self.data.n_data_batches])
        e_ref = self.model.params["w.e_ref"]
        if np.any(e_ref == 0.0):
            top = np.full(len(self.model.species), -np.inf)
            for sysm in self.data.systems:
                e = self.model.context(sysm).fitted_value()
                np.maximum.at(top, sysm.species_n, e)
            self.model.params["w.e_ref"] = np.where((e_ref == 0.0) & np.isfinite(top), top, e_ref)
        for sym, g in self.grade_info.items():
            log.info("extrapolation grade of %s: %d features, fitted energy fully on up to γ = %.4g, "
                     "off from %.4g; E_ref %.4f eV", sym, g["d"], g["gamma_lo"], g["gamma_hi"],
                     self.model.params["w.e_ref"][self.model.species.index(sym)])

    # ----------------------------------------------------------------- fit
    def fit(self) -> Model:
        """Run the plan; returns the fitted model (the same object)."""
        t0 = time.perf_counter()
        start, done = self._load_checkpoint()
        if start == 0 and not done:
            # every scale (φ_max, ρ_max, q_max), bases without nonlinear parameters
            # included; searched bases refresh theirs per evaluation
            self.model.compute_scales(self.data.systems)
        for si, stage in enumerate(self.plan):
            if si < start:
                continue
            if si > start:
                done = []
            self._stage_start_params = {k: v.copy() for k, v in self.model.params.items()}
            if done:   # resumed mid-stage: parameters at the stage start are in the checkpoint
                pass
            self._save_checkpoint(si, done)
            log.info("stage %d/%d: %s", si + 1, len(self.plan), stage.name)
            if stage.kind == "search":
                loss = self.search(si, stage, list(done))
            elif stage.kind == "solve":
                self._refresh_scales(self.model.blocks("nonlinear"))
                loss = self.solve(stage.linear)
                self.history.append(dict(stage=stage.name, kind="solve", loss=loss / self.data.n_rows))
                self.progress(dict(stage=si + 1, n_stages=len(self.plan), name=stage.name, evaluation=1,
                                   max_evaluations=1, loss=loss / self.data.n_rows, best_loss=loss / self.data.n_rows))
            else:
                loss = self.alternate(si, stage)
        self._finish_safety()
        self._stage_start_params = {k: v.copy() for k, v in self.model.params.items()}
        self._save_checkpoint(len(self.plan), [], finished=True)
        self.seconds = time.perf_counter() - t0
        return self.model

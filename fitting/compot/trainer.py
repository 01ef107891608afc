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

from .data.weighted import WeightedData
from .errors import ConfigError, FitError
from .lstsq import StreamedQR, merge, solve_reduced, solve_scaled
from .model import Model
from .settings import DEFAULT_BOUNDS, FitSettings

__all__ = ["FitSettings", "Trainer", "Stage", "DEFAULT_BOUNDS"]

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """One step of the plan: a search (nonlinear + inner linear solve), a
    linear solve, or alternating linear solves over ``groups``."""

    kind: str
    name: str
    nonlinear: list = field(default_factory=list)
    linear: list = field(default_factory=list)
    groups: list = field(default_factory=list)


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
    client : distributed.Client, optional — with ``settings.lstsq == "streamed"``, the
        batches of every linear solve are reduced as tasks on its workers
        (:func:`compot.execution.reduce_batches`); None = in this process

    Raises
    ------
    FitError
        Empty data, or a checkpoint that belongs to another model or settings.
    """

    def __init__(self, model: Model, configs, settings: FitSettings | None = None,
                 checkpoint: str | os.PathLike | None = None, progress: Callable | None = None,
                 client=None):
        if not configs:
            raise FitError("no training configurations")
        self.model = model
        self.settings = settings or FitSettings()
        self.data = WeightedData.for_fit(model, configs, self.settings)
        self.search_data = self._search_data(model, configs)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.progress = progress or (lambda info: None)
        self.client = client
        self.frozen = self._frozen_blocks()
        self.steepest = self._steepest_allowed()
        self._limited: set = set()
        self._init_product_factors()
        self.plan = self.make_plan()
        self.history: list[dict] = []
        self._base_batches = None       # add_priors / resolve: batches before the first added prior
        self._base_factor = None        # and their triangular factor, (names, R)

    def _search_data(self, model: Model, configs) -> WeightedData:
        """The data the Bayesian-optimisation searches evaluate: all of it, or with
        ``settings.search_atoms`` > 0 and more atoms than that, every group's
        configurations thinned evenly (the same fraction of each group, at least one
        configuration) to about search_atoms atoms, priors kept whole. The solve that
        ends every search, the solves after it and the scales of the model use all of
        the data, so only the choice of the nonlinear parameters comes from the subset."""
        limit = int(self.settings.search_atoms)
        total = sum(c.n_atoms for c in configs)
        if limit <= 0 or total <= limit:
            return self.data
        fraction = limit / total
        groups: dict = {}
        for c in configs:
            groups.setdefault(c.group, []).append(c)
        keep = []
        for members in groups.values():
            n = max(1, round(fraction * len(members)))
            picks = np.unique(np.linspace(0, len(members) - 1, n).round().astype(int))
            keep += [members[i] for i in picks]
        log.info("searches evaluate %d of %d configurations (%d of %d atoms; fit.search_atoms %d); "
                 "every linear solve after a search uses all of them", len(keep), len(configs),
                 sum(c.n_atoms for c in keep), total, limit)
        return WeightedData.for_fit(model, keep, self.settings)

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
            if n.term.has_gauge:
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
        return node.term.affine_groups([self.linear_groups(c) for c in node.children], self._own(idx),
                                       self._shift(idx))

    def make_plan(self) -> list:
        searched: set = set()
        stages: list = []

        def nonlin(idx):
            out = []
            for b in self.model.blocks("nonlinear", under=idx):
                if b not in searched and b not in self.frozen:
                    out.append(b)
            return out

        def riders(idx: int) -> dict:
            """Later summands of node idx that search nothing of their own (every
            nonlinear block already searched by an earlier summand: a shared basis)
            ride along in that summand's search, their linear coefficients solved
            with its own in every evaluation, so that the basis is chosen for all the
            terms on it (the objective of the joint solve that ends the sum)."""
            node = self.model.layout.nodes[idx]
            out: dict = {}
            if len(self.linear_groups(idx)) != 1:
                return out
            owner: dict = {}
            for c in node.children:
                child = self.model.layout.nodes[c]
                if child.term.is_core or not child.is_fitted_leaf:
                    continue
                mine = [b for b in self.model.blocks("nonlinear", under=c)
                        if b not in self.frozen and b not in searched]
                fresh = [b for b in mine if b not in owner]
                if fresh:
                    owner.update({b: c for b in fresh})
                elif mine:
                    host = max(owner[b] for b in mine)
                    out.setdefault(host, []).extend(self._own(c))
            return out

        def plan(idx: int, extra: list, ride: list = ()) -> None:
            node = self.model.layout.nodes[idx]
            t = node.term
            if t.is_core:
                return
            if node.is_fitted_leaf:
                nl = nonlin(idx)
                searched.update(nl)
                lin = self._own(idx) + list(ride) + extra
                stages.append(Stage("search" if nl else "solve", f"n{idx} {t}", nl, lin))
                return
            inner = extra + self._shift(idx)
            along = riders(idx) if self.settings.joint_search else {}
            for c in node.children:
                plan(c, inner, along.get(c, ()))
            groups = [g + extra for g in self.linear_groups(idx)]
            if len(groups) == 1:
                stages.append(Stage("solve", f"n{idx} {t}: joint linear solve", [], groups[0]))
            else:
                stages.append(Stage("alternate", f"n{idx} {t}: alternating linear solves", [], [], groups))

        plan(0, [])
        return stages

    # ------------------------------------------------------------ solving
    def solve(self, names: list, R: np.ndarray | None = None) -> float:
        """Solve the linear blocks ``names`` by SVD least squares (columns scaled
        to unit norm; optional ridge; :func:`compot.lstsq.solve_scaled`), on the streamed
        QR factor of the rows (``settings.lstsq = "streamed"``, memory of one batch), or
        on ``R`` when given (that factor, made by the caller), or on the whole design
        matrix (``"dense"``). Updates the model; returns the loss."""
        if not names:
            return self.loss()
        if R is not None or self.settings.lstsq == "streamed":
            R = self.reduced_rows(names) if R is None else R
            theta, loss = solve_reduced(R, self.settings.rcond, self.settings.ridge)
            self.model.set_vector(names, theta)
            return loss
        A, b = self.data.least_squares_rows(self.model, names)
        theta = solve_scaled(A, b, self.settings.rcond, self.settings.ridge)
        self.model.set_vector(names, theta)
        r = A @ theta - b
        return float(r @ r)

    def reduced_rows(self, names: list, ks=None) -> np.ndarray:
        """Triangular factor of the weighted rows [A | b] of the blocks ``names``
        (:mod:`compot.lstsq`), shape (k + 1, k + 1): batch by batch here, or one task per
        batch on the Dask client ``self.client``; ``ks``: only those batches (indices
        into the data's batches), in this process."""
        if self.client is not None and ks is None:
            from .execution import reduce_batches
            return reduce_batches(self.client, self.data, self.model, names)
        q = StreamedQR(len(self.model.vector(names)))
        for A, b in self.data.least_squares_batches(self.model, names, ks):
            q.add(A, b)
        return q.R

    def loss(self) -> float:
        """Current loss L (paper Eq. 26, plus the stress term of :mod:`compot.data.weighted`) on the training data."""
        total = 0.0
        for k, sysm in enumerate(self.data.systems):
            p = self.model.evaluate(sysm, forces=True, virial=self.data.fit_stress)
            total += float(np.sum(self.data.wE[k] * (p.energy_m - self.data.E[k]) ** 2))
            total += float(np.sum(self.data.wF[k][:, None] * (p.forces_nc - self.data.F[k]) ** 2))
            if self.data.fit_stress:
                total += self.data.stress_loss(k, p.virial_mcc)
            total += self.data.site_loss(k, p.energies_n)
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
        name, kind, *index = key.split(".")
        if kind == "w" and index:           # b<J>.w.<i>: W[s, c] in C order, c = 0 the density channel
            if (int(index[0]) - 1) % self.model.params[f"{name}.w"].shape[1] == 0:
                kind = "w1"
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

    def _steepest_allowed(self) -> dict[int, float]:
        """a_max [Å⁻²] per searched Gaussian basis (``settings.steepest == "data"``):
        ln(1/ε) / (r_t² − r_min²), the exponent at which g_K = exp(−a_K r²) falls by
        the whole double-precision range between the data's shortest pair r_min [Å]
        and the basis's cutoff r_t [Å]. Past it, φ_K of every atom is its closest
        pair's alone: with α at its lower bound and β = 2.8, the Mo data's φ_8 had
        its maximum 1.7e-11 at the shortest pair (1.883 Å) and switched from 0 to
        saturated within 0.03 Å, which stepped the dimer energy by 3 eV; with
        a_12 = 12 Å⁻² a Nb model lost atoms in NVT at 3600 K."""
        if self.settings.steepest != "data":
            return {}
        searched = [b for b in self.model.layout.bases if b.spec.kind == "G"
                    and {f"b{b.index + 1}.alpha", f"b{b.index + 1}.beta"} - self.frozen]
        if not searched:
            return {}
        r_min = math.inf
        for sys_ in self.data.systems[:self.data.n_data_batches]:
            if sys_.n_pairs:
                r_min = min(r_min, float(sys_.r_p.min()))
        out = {}
        for b in searched:
            r_t = b.spec.cutoff if b.spec.cutoff is not None else self.model.cutoff
            if r_min < r_t:
                out[b.index] = -math.log(np.finfo(float).eps) / (r_t * r_t - r_min * r_min)
        return out

    def _limit_steepness(self, names: list) -> None:
        """Lower β (then α) of the searched bases in ``names`` whose steepest
        Gaussian exceeds :meth:`_steepest_allowed`; the model's parameters change."""
        p = self.model.params
        beta_lo = self.settings.bounds.get("beta", DEFAULT_BOUNDS["beta"])[0]
        for b, a_max in self.steepest.items():
            ka, kb = f"b{b + 1}.alpha", f"b{b + 1}.beta"
            if ka not in names and kb not in names:
                continue
            n = self.model.layout.bases[b].spec.K - 1
            alpha, beta = float(p[ka]), float(p[kb])
            if alpha * beta ** n <= a_max:
                continue
            if kb in names and kb not in self.frozen and n > 0:
                beta = max((a_max / alpha) ** (1.0 / n), min(beta, beta_lo))
            if alpha * beta ** n > a_max and ka in names and ka not in self.frozen:
                alpha = a_max / beta ** n
            p[ka], p[kb] = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
            if b not in self._limited:
                self._limited.add(b)
                log.info("basis b%d: steepest Gaussian held at a_K <= %.4g 1/Å² (fit.steepest: data)", b + 1, a_max)

    def _evaluate(self, stage: Stage, x: np.ndarray) -> float:
        self.model.set_vector(stage.nonlinear, x)
        self._limit_steepness(stage.nonlinear)
        self._refresh_scales(stage.nonlinear)
        return self.solve(stage.linear)

    def search(self, si: int, stage: Stage, done: list) -> float:
        """Bayesian optimisation over the stage's nonlinear parameters, evaluated on
        :attr:`search_data`; the best point is then solved on all of the data."""
        full = self.data
        self.data = self.search_data
        try:
            keys, pbounds, best, n_eval = self._search(si, stage, done)
        finally:
            self.data = full
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

    def _search(self, si: int, stage: Stage, done: list):
        from bayes_opt import BayesianOptimization, SequentialDomainReductionTransformer

        s = self.settings
        keys = self._keys(stage.nonlinear)
        pbounds = {k: self._bounds(k) for k in keys}
        shrink = SequentialDomainReductionTransformer(minimum_window=0.05)
        opt = BayesianOptimization(f=None, pbounds=pbounds, random_state=s.seed + si, verbose=0,
                                   bounds_transformer=shrink, allow_duplicate_points=False)
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
                opt.set_bounds(shrink.transform(opt.space))
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
        return keys, pbounds, best, n_eval

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
        node = self.model.layout.nodes[idx]
        if node.is_fitted_leaf:
            return True
        if node.term.merges_children:
            return all(self.model.layout.nodes[c].is_fitted_leaf for c in node.children)
        return False

    def _fix_gauges(self) -> None:
        """Normalise the right factor of each product to RMS(V) = 1 over the
        training atoms, scaling the left factor inversely (exact gauge X·t, Y/t)."""
        for n in self.model.layout.nodes:
            if not n.term.has_gauge:
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
                 # where the neighbour lists are kept does not change the numbers
                 settings={k: v for k, v in asdict(self.settings).items() if k != "neighbour_memory_mb"},
                 n_configs=sum(len(b) for b in self.data.batches), n_rows=self.data.n_rows)
        if self.model.rank is not None:
            # a species embedding (model.chemistry: embedded) has other parameters (its weights
            # W, coefficients per channel) at each rank; a fit of the full chemistry keeps the
            # fingerprint it had before the embedding existed, so its checkpoints still resume
            d["chemistry"] = dict(mode="embedded", rank=int(self.model.rank))
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
        if self.model.version >= 3:
            # the data's atoms, not the priors (as the grade)
            self.model.compute_lower_bound(self.data.systems[:self.data.n_data_batches])
            for z, sym in enumerate(self.model.species):
                log.info("fitted site energy of %s bounded below at e_min = %.4f eV (E_ref %.4f eV)",
                         sym, self.model.params["w.e_min"][z], self.model.params["w.e_ref"][z])
        for sym, g in self.grade_info.items():
            log.info("extrapolation grade of %s: %d features, fitted energy fully on up to γ = %.4g, "
                     "off from %.4g; E_ref %.4f eV%s", sym, g["d"], g["gamma_lo"], g["gamma_hi"],
                     self.model.params["w.e_ref"][self.model.species.index(sym)],
                     f"; lowest coordination of the data n_min = {g['n_min']:.3f}" if "n_min" in g else "")

    def _safety_off(self) -> None:
        """Grade off (U = 0: γ = 0, S_grade = 1; format v4: the coordination term too)
        and the lower bound of the fitted energy off (format v3: e_min = E_ref) until
        :meth:`_finish_safety` or :meth:`resolve` fits them again."""
        p = self.model.params
        if "g.U" in p:
            p["g.U"] = np.zeros(p["g.U"].shape)
        if "g.n_min" in p:
            p["g.n_min"] = np.zeros(len(self.model.species))
        if "w.e_min" in p:
            p["w.e_min"] = np.asarray(p["w.e_ref"], dtype=float).copy()

    def add_priors(self, priors) -> None:
        """Add prior configurations (:mod:`compot.hot_prior`) to the data of every later
        solve; the searches' subset and the data's batches are unchanged."""
        if self._base_batches is None:
            self._base_batches = len(self.data.batches)
        self.data.extend_priors(self.model, list(priors), self.settings)

    def resolve(self) -> float:
        """The plan's last stage again at the current nonlinear parameters and scales:
        its joint linear solve (or the alternating solves of a product), with the grade
        and the lower bound of the fitted energy off while it runs; then the grade as it
        was (it depends on the nonlinear parameters alone) and the lower bound fitted
        again on the data. For priors added after a fit (:meth:`add_priors`): with
        ``lstsq: streamed`` the triangular factor of the batches that were there before
        the first of them is computed once and merged with the added batches' rows, so a
        repeated solve costs the added rows only. Returns the loss [eV² summed over rows]."""
        p = self.model.params
        kept = {k: p[k].copy() for k in ("g.U", "g.n_min") if k in p}
        self._safety_off()
        si, stage = len(self.plan) - 1, self.plan[-1]
        if stage.kind == "alternate":
            loss = self.alternate(si, stage)
        else:
            names, R = stage.linear, None
            if self.settings.lstsq == "streamed" and self._base_batches is not None:
                base = self._base_batches
                if self._base_factor is None or self._base_factor[0] != tuple(names):
                    self._base_factor = (tuple(names), self.reduced_rows(names, range(base)))
                R = merge(self._base_factor[1], self.reduced_rows(names, range(base, len(self.data.batches))))
            loss = self.solve(names, R)
            self.history.append(dict(stage=stage.name + " (again, with the priors added)", kind="solve",
                                     loss=loss / self.data.n_rows))
        p.update(kept)
        if self.model.version >= 3:
            self.model.compute_lower_bound(self.data.systems[:self.data.n_data_batches])
        return loss

    # ----------------------------------------------------------------- fit
    def fit(self) -> Model:
        """Run the plan; returns the fitted model (the same object)."""
        t0 = time.perf_counter()
        start, done = self._load_checkpoint()
        if start == 0 and not done:
            # a grade from an earlier fit (a model read from a file) is switched off
            # (U = 0: γ = 0, S_grade = 1) until _finish_safety fits it again: the scales
            # below move the features it measures, and atoms it switched off would give
            # the solves zero rows (the refit of the shipped Nb model came out all zero)
            self._safety_off()
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

"""Hot-MD prior: the equipartition bound on the model's own hot runs.

A fit sees DFT configurations only; in a long NVT run far above the melting point a
model can walk into configurations the data never showed and find a false well
there. On the NbMoTaW data the rank-1 model paired atoms at 2.2–2.4 Å in liquid Nb
at 3,518 K and fell 1 eV/atom below the perfect crystal after 1.3–1.9 ps; refits with a
tighter site prior fell the same way later (benchmarks/results/hot_nvt.md).

Physics gives a bound without DFT: in equilibrium at temperature T the mean potential
energy per atom of a classical system is at least that of the harmonic crystal,

    ⟨E_pot⟩/N ≥ e0 + (3/2) k_B T,

e0 the perfect crystal's energy per atom (equipartition; a liquid lies higher, and
the DFT data agree: Nb AIMD at the equilibrium volume, mean − e0 = 0.045, 0.125,
0.458 eV/atom at 300, 1000, 3000 K against 0.039, 0.129, 0.388). One snapshot of N
atoms fluctuates about the mean with σ = k_B T √(3/(2N)) (harmonic).

The loop (:func:`harden`): after the fit, run Langevin NVT of every element's
crystal at the NVT check's temperature (:func:`compot.sanity.nvt_check`, the same
run, longer, other seeds); every snapshot after the thermostat's relaxation
(5 / friction) whose energy is below the bound by more than 3σ is a configuration the
model puts too low. Those snapshots (at most ``per_round`` per element, evenly spaced)
join the fit as priors of group ``hot_prior`` whose target is the bound
N (e0 + 3/2 k_B T) and whose forces are not fitted (:mod:`compot.data.weighted`),
the plan's last linear solve runs again at the fitted nonlinear parameters
(:meth:`compot.trainer.Trainer.resolve`; a penalty method for the inequality: the
weight of every snapshot the solved model still puts 3σ below its bound doubles and
the solve runs again, at most :data:`ESCALATIONS` times), and the next round runs new
trajectories, until a round finds nothing below its bound or ``rounds`` are done.
The target is a lower bound, not the DFT energy (unknown): a snapshot's true energy is
higher, so the prior can only raise the model where it is too low.

A second, noise-free bound joins it (``quenches`` per run): a local minimum of the
cell can be no lower than its ground state, e0 per atom. A few snapshots of each run
(evenly spaced after the relaxation) are quenched (FIRE at fixed cell, :func:`quench`);
every quenched cell more than :data:`QUENCH_TOL` below e0 joins with target
N (e0 + QUENCH_TOL) (not escalated: the next round quenches new cells). A cell
quenched below the crystal is not the crystal, so its true energy
lies above e0 by its disorder energy (an amorphous metal's, ~0.1 eV/atom, far above
QUENCH_TOL); the target above e0 keeps the check's tolerance as a margin on both sides
(the prior lifts to e0 + QUENCH_TOL, the check fails below e0 − QUENCH_TOL). On the
NbMoTaW data the model whose hot runs met the equipartition bound still quenched liquid
Nb 0.01–0.07 eV/atom under bcc Nb; with target N e0 and no escalation, six rounds kept
finding Nb cells 0.02–0.12 eV/atom under bcc Nb and the final model quenched one 0.002
under it. Escalating the quenched cells' weights (as the hot snapshots') made it worse:
with their weights doubled up to 6 times per round the loss rose from 0.014 to
0.022 eV²/row in three rounds and round 4 found false wells 0.8–1.4 eV/atom deep in Mo,
Ta, W and the alloy (a fixed cell lifted at any price is paid for elsewhere).

For several species the equiatomic random bcc alloy of the NVT check runs too
(:func:`compot.sanity.random_alloy`, ≥ 250 atoms at 3000 K). Its perfect lattice is
not its ground state (ordering lowers it), so its e0 is a floor instead: the
elements' e0 weighted by the composition plus the regular-solution estimate
Σ x_i x_j Ω_ij of the most negative formation energies the data show for each pair
(:mod:`compot.derive.mixing`; −0.13 eV/atom for equiatomic NbMoTaW). On the NbMoTaW
data the rank-1 model without it held the alloy at 3000 K 0.7–0.8 eV/atom below
that bound; quenched, those cells lay 0.65 eV/atom below the relaxed random alloy,
where the published SNAP puts them 1.1 eV/atom above it.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from .data.anchors import HOT_PRIOR_GROUP
from .data.configurations import Configuration
from .errors import CompotError
from .sanity import QUENCH_TOL, equipartition_bound, quench

__all__ = ["equipartition_bound", "hot_snapshots", "harden"]

log = logging.getLogger(__name__)

#: Langevin friction of the runs [1/fs] (that of :func:`compot.sanity.nvt_check`).
FRICTION = 0.01

#: Interval [fs] of the energy traces kept in the report (and plotted, compot.plots.plot_hot_prior).
TRACE_FS = 50


def hot_snapshots(model, lattice, a0: float, e0: float, temperature: float, steps: int, seed: int,
                  per_round: int, weight: float = 1.0, progress=None, label: str = "hot prior",
                  min_atoms: int = 128, quenches: int = 0) -> tuple[list, dict]:
    """Snapshots of one NVT run that lie below the equipartition bound, and quenched
    snapshots that lie below e0.

    A local minimum of the cell (its inherent structure) can be no lower than the cell's
    ground state, e0 per atom (the perfect crystal at its own a0; for an alloy the floor):
    unlike the equipartition bound this holds with no thermal noise, so a liquid whose
    quenched structures lie under the crystal shows a false well before its hot
    snapshots sink 3σ under the bound (the previous shipped NbMoTaW model: liquid Nb
    quenched 0.01–0.07 eV/atom under bcc Nb, where amorphous metals lie above).

    Parameters
    ----------
    model : compot.model.Model
    lattice : compot.derive.Lattice (or :class:`compot.sanity.OrderedB2`) — the crystal
    a0 : float — its lattice constant [Å]; e0 : float — its energy per atom there [eV]
      (for an alloy the floor of its ground state's, :func:`compot.sanity.random_alloy`)
    temperature : float [K]; steps : int (1 fs each); seed : int
    per_round : int — at most this many snapshots returned, evenly spaced over those found
    min_atoms : int — the supercell has at least this many atoms
    quenches : int — snapshots quenched (:func:`quench`), evenly spaced from the end of the
      thermostat's relaxation to the end of the run; each below e0 by more than
      :data:`QUENCH_TOL` joins with target N (e0 + QUENCH_TOL)

    Returns
    -------
    (list of Configuration of group ``hot_prior``, energy N (e0 + 3/2 k_B T) [eV] (quenched:
    N (e0 + QUENCH_TOL)), forces zero (not fitted), weight ``weight``; dict with ``below`` (snapshots below
    the bound), ``lowest`` (lowest energy per atom after the relaxation), ``quenched``
    [(t [fs], quenched energy per atom − e0 [eV/atom])], ``quench_below`` (how many lie
    below e0), the check's ``detail`` and the run's energy per atom every :data:`TRACE_FS`
    fs, ``t`` [fs] and ``energy`` [eV/atom])
    """
    from .sanity import md_calculator, nvt_check

    found: list = []
    settle = 5.0 / FRICTION
    every = 10                                   # the run's observation interval [fs]
    marks = set() if quenches <= 0 or steps <= settle else \
        {int(round(t / every)) * every for t in np.linspace(settle, steps, quenches + 1)[1:]}
    frozen: list = []
    state = {"lowest": math.inf, "n": 0}
    trace: list = []

    def observe(at, e, t):
        if t % TRACE_FS == 0:
            trace.append((t, e if np.isfinite(e) else None))
        if t in marks and np.isfinite(e):
            frozen.append((t, at.copy()))
        if t < settle or not np.isfinite(e):
            return
        bound, sigma = equipartition_bound(e0, temperature, len(at))
        state["lowest"] = min(state["lowest"], e)
        state["n"] = len(at)
        if e < bound - 3.0 * sigma:
            found.append((at.get_chemical_symbols(), at.positions.copy(), np.array(at.cell), at.pbc.copy(), e, t))

    check = nvt_check(model, lattice, a0, temperature, steps=steps, n_seeds=1, first_seed=seed,
                      friction_per_fs=FRICTION, progress=progress, label=label, observe=observe,
                      min_atoms=min_atoms, every=every)
    picks = np.unique(np.linspace(0, len(found) - 1, min(per_round, len(found))).round().astype(int)) \
        if found else []
    out = []
    for k in picks:
        symbols, pos, cell, pbc, e, t = found[k]
        n = len(symbols)
        bound, _ = equipartition_bound(e0, temperature, n)
        out.append(Configuration(symbols=tuple(symbols), positions=pos, cell=cell, pbc=pbc, energy=n * bound,
                                 forces=np.zeros((n, 3)), stress=None, weight=weight, group=HOT_PRIOR_GROUP,
                                 source=f"hot prior {label}, seed {seed}, {t:g} fs ({e:.4f} eV/atom)"))
    quenched = []
    if frozen:
        calc, _ = md_calculator(model)
        for t, at in frozen:
            try:
                q, e_q = quench(at, calc)
            except CompotError as exc:
                log.warning("hot prior %s: the quench of %g fs failed (%s)", label, t, exc)
                continue
            quenched.append((t, e_q - e0))
            if e_q < e0 - QUENCH_TOL:
                n = len(q)
                out.append(Configuration(symbols=tuple(q.get_chemical_symbols()), positions=q.positions.copy(),
                                         cell=np.array(q.cell), pbc=q.pbc.copy(), energy=n * (e0 + QUENCH_TOL),
                                         forces=np.zeros((n, 3)), stress=None, weight=weight,
                                         group=HOT_PRIOR_GROUP, source=f"hot prior {label}, seed {seed}, {t:g} fs "
                                         f"quenched ({e_q:.4f} eV/atom)"))
    return out, {"below": len(found), "lowest": state["lowest"] if math.isfinite(state["lowest"]) else None,
                 "bound": equipartition_bound(e0, temperature, state["n"] or 128)[0], "detail": check["detail"],
                 "quenched": quenched, "quench_below": sum(d < -QUENCH_TOL for _, d in quenched),
                 "quench_added": len(out) - len(picks),
                 "t": [x[0] for x in trace], "energy": [x[1] for x in trace]}


#: Penalty steps of a round: the energy weight of every snapshot the solved model (its
#: lower bound and grade on, as MD sees it) still puts 3σ below its bound doubles, and
#: the solve runs again, at most this many times (up to 64 × the weight).
ESCALATIONS = 6


def still_low(model, configs, sigma: dict) -> list:
    """The snapshots of ``configs`` (group ``hot_prior``; target N × bound) whose energy
    per atom under ``model`` is more than 3σ below their bound, ``sigma`` {id(config):
    σ [eV/atom]}; configurations without σ (quenched cells) are not escalated."""
    configs = [c for c in configs if id(c) in sigma]
    out = []
    for k in range(0, len(configs), 16):
        part = configs[k:k + 16]
        e = model.evaluate(model.system(part), forces=False, virial=False).energy_m
        for c, ec in zip(part, e):
            bound = c.energy / c.n_atoms
            if ec / c.n_atoms < bound - 3.0 * sigma[id(c)]:
                out.append(c)
    return out


def _run_all(client, model, runs, steps, per_round, weight, quenches, progress, round_no) -> list:
    """:func:`hot_snapshots` of every run of a round (name, lattice, a0, e0, temperature,
    min_atoms, seed), in order: one Dask task each when a ``client`` is given and there
    are several runs (the largest cells first; no progress bars across processes, a log
    line as each ends), else one after another here."""
    def kwargs(s, n_min, seed, bar):
        return dict(seed=seed, per_round=per_round, weight=weight, progress=bar,
                    label=f"hot prior {s}, round {round_no}", min_atoms=n_min, quenches=quenches)

    if client is None or len(runs) < 2:
        return [hot_snapshots(model, lat, a0, e0, temp, steps, **kwargs(s, n, seed, progress))
                for s, lat, a0, e0, temp, n, seed in runs]
    from distributed import as_completed

    order = sorted(range(len(runs)), key=lambda k: -runs[k][5])
    futures = {}
    for k in order:
        s, lat, a0, e0, temp, n, seed = runs[k]
        futures[client.submit(hot_snapshots, model, lat, a0, e0, temp, steps, pure=False,
                              **kwargs(s, n, seed, None))] = k
    log.info("hot prior round %d: %d runs of %d fs on the Dask workers", round_no, len(runs), steps)
    out: list = [None] * len(runs)
    for fut in as_completed(futures):
        k = futures[fut]
        out[k] = fut.result()
        log.info("hot prior round %d: the run of %s ended", round_no, runs[k][0])
    return out


def harden(trainer, data, progress=None) -> dict:
    """The hot-MD prior loop (module docstring) on a fitted ``trainer``
    (:class:`compot.trainer.Trainer`; its model is changed in place), with the NVT
    temperatures and lattices the sanity checks derive from ``data``
    (:func:`compot.sanity.nvt_temperatures`, :func:`compot.sanity.element_lattices`,
    :func:`compot.sanity.random_alloy`); ``compot fit`` passes its training and
    validation configurations, the files ``compot validate`` reads. The temperatures
    are estimated again each round with the changed model and never lowered.

    ``trainer.settings.hot_prior``: ``steps`` (run length [fs], 1 fs steps), ``rounds``
    (at most), ``per_round`` (snapshots per run and round), ``quenches`` (snapshots
    quenched per run), ``seeds`` (independent runs of each element and of the alloy per
    round, default 1; seeds 1000 + round − 1 + 10000 k, reported as "Nb", "Nb (2)", …),
    ``weight`` (of each snapshot's energy row, as a DFT configuration's); empty = off.

    The runs of a round are independent: with a Dask client on the trainer
    (``trainer.client``, :mod:`compot.execution`) they run as one task each.

    Returns
    -------
    dict: ``rounds`` [{round, seconds, elements {symbol: {temperature, e0, bound,
    lowest, below, added, detail}} (for several species also the random alloy's, keyed
    by its species, e.g. ``MoNbTaW``), added, loss}], ``added`` (snapshots in the fit),
    ``converged`` (the last round found none); {} when off or without temperatures.
    """
    from .sanity import ALLOY_ATOMS, ALLOY_TEMPERATURE, element_lattices, nvt_temperatures, random_alloy

    opts = dict(trainer.settings.hot_prior or {})
    if not opts:
        return {}
    model = trainer.model
    steps, rounds = int(opts.get("steps", 5000)), int(opts.get("rounds", 6))
    per_round, weight = int(opts.get("per_round", 32)), float(opts.get("weight", 1.0))
    quenches = int(opts.get("quenches", 0))
    runs_per = max(1, int(opts.get("seeds", 1)))
    per_element, t_all, _ = nvt_temperatures(model, data)
    if t_all is None:
        log.warning("hot prior skipped: no temperature from the data")
        return {}
    report = {"rounds": [], "added": 0, "converged": False, "steps": steps}
    added: list = []
    sigma: dict = {}
    for r in range(rounds):
        t0 = time.perf_counter()
        if r:
            # the temperature estimate uses the model's curvature, which the prior
            # changes: each round at the hottest estimate so far, so the round that
            # finds nothing ran at least as hot as the checks of the final model
            now, t_now, _ = nvt_temperatures(model, data)
            per_element = {s: max(t, per_element.get(s, 0.0)) for s, t in now.items()} or per_element
            t_all = max(t_all, t_now or 0.0)
        lattices = element_lattices(model, data=data)
        runs = [(s, lat, a0, e0, per_element.get(s, t_all), 128) for s, (lat, a0, e0, _) in lattices.items()]
        if len(lattices) > 1:
            alloy, floor = random_alloy(lattices, data)
            runs.append((alloy.species, alloy, alloy.a0, floor, ALLOY_TEMPERATURE, ALLOY_ATOMS))
        # further seeds of a run are labelled "<name> (k)", k = 2, 3, …
        runs = [(s if k == 0 else f"{s} ({k + 1})", *rest, 1000 + r + 10000 * k)
                for k in range(runs_per) for s, *rest in runs]
        new, elements = [], {}
        results = _run_all(getattr(trainer, "client", None), model, runs, steps, per_round, weight,
                           quenches, progress, r + 1)
        for (s, lat, a0, e0, temp, n_min, _), (snaps, info) in zip(runs, results):
            elements[s] = {"temperature": temp, "e0": e0, **info, "added": len(snaps)}
            n_hot = len(snaps) - info["quench_added"]
            sigma.update({id(c): equipartition_bound(e0, temp, c.n_atoms)[1] for c in snaps[:n_hot]})
            log.info("hot prior round %d, %s at %.0f K: %d snapshots below e0 + 3/2 kT = %.4f eV/atom "
                     "(lowest %s), %d of %d quenched below e0 (%s), %d added", r + 1, s, temp, info["below"],
                     info["bound"], f"{info['lowest']:.4f}" if info["lowest"] is not None else "-",
                     info["quench_below"], len(info["quenched"]),
                     ", ".join(f"{d:+.3f}" for _, d in info["quenched"]) or "-", len(snaps))
            new += snaps
        entry = {"round": r + 1, "elements": elements, "added": len(new)}
        if not new:
            entry["seconds"] = time.perf_counter() - t0
            report["rounds"].append(entry)
            report["converged"] = True
            break
        trainer.add_priors(new)
        added += new
        entry["loss"] = trainer.resolve() / trainer.data.n_rows
        entry["escalations"] = 0
        low = still_low(model, added, sigma)
        while low and entry["escalations"] < ESCALATIONS:
            trainer.data.scale_energy_weights(low, 2.0)
            entry["loss"] = trainer.resolve() / trainer.data.n_rows
            entry["escalations"] += 1
            low = still_low(model, added, sigma)
        entry["still_low"] = len(low)
        entry["seconds"] = time.perf_counter() - t0
        report["added"] += len(new)
        report["rounds"].append(entry)
        log.info("hot prior round %d: %d snapshots added (%d in all), linear solve again (%d times their weight "
                 "doubled where still below): loss %.6g eV²/row, %d still below (%.0f s)", r + 1, len(new),
                 report["added"], entry["escalations"], entry["loss"], entry["still_low"], entry["seconds"])
    return report

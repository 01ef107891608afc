"""Physical sanity checks outside the data (MODEL_SPEC §9–10).

A fitted model is judged where it was not fitted. For every element of the
model (in its ground-state lattice, detected from the data, or given) and
every species pair:

``energy_volume``
    the energy–volume curve of the lattice from 0.5 to 1.5 × its lattice
    constant: finite everywhere, a single minimum (near the data's a0), and a
    monotonic rise under compression — nothing astronomically negative;
``push``
    one atom of a supercell pushed along the bond toward a nearest neighbour
    down to 0.5 Å: the energy never goes below the perfect crystal's and rises
    monotonically once the distance is below the data's shortest pair
    distance (a false well there is what the first release had: −28.6 eV at
    1.18 Å);
``dimer``
    the dimer of every species pair is repulsive (dE/dr < 0) from 0.5 Å up to
    0.8 × the nearest-neighbour distance;
``energy_volume B2 X-Y`` (several species)
    the E–V of the ordered B2 cell of every binary, about the model's B2 lattice
    constant, with the same rules;
``nvt alloy`` (several species)
    the NVT run below on an equiatomic random bcc alloy of all the species
    (≥ 250 atoms, 3000 K);
``nvt``
    a Langevin NVT run of a ≥ 128-atom supercell through the C core
    (:mod:`compot.ccore`; the Python model if the core cannot be built) at
    1.1 × the hottest temperature of the data (:func:`compot.derive.hottest_temperature`),
    1 fs steps, ``n_seeds`` independent runs: an atom is *lost* when two atoms
    come closer than 1 Å, the energy per atom is not finite or falls 1 eV/atom
    below the perfect lattice's, or the kinetic temperature exceeds 5 × the
    target (at least 1500 K); and a run fails when its mean energy after the
    thermostat's relaxation lies more than 3σ below the equipartition bound
    e0 + 3/2 k_B T (:mod:`compot.hot_prior`; for the alloy e0 is the
    regular-solution floor of :func:`random_alloy` from the data's binaries), or
    its last cell, quenched at fixed cell, lies below e0 (no local minimum lies
    under the ground state).

Each check returns ``passed``, a one-line ``detail`` and the ``plot`` data of
its curve; :func:`compot.plots.plot_sanity` draws one figure per check.

The report carries the material properties of :mod:`compot.properties` (a0,
C11, C12, C44, B, surface energies) next to DFT values derived from the data.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units

from . import derive
from .errors import CompotError, ConfigError
from .model import Model
from .properties import material_properties, model_energies

log = logging.getLogger(__name__)

#: Values of the ``lattice`` argument.
LATTICE_CHOICES = ("auto",) + derive.LATTICES

__all__ = ["sanity_report", "failed_checks", "format_sanity",
           "energy_volume_check", "push_check", "dimer_check", "nvt_check", "LATTICE_CHOICES",
           "OrderedB2", "RandomAlloy", "b2_energy_volume_check", "random_alloy", "equipartition_bound",
           "md_calculator", "element_lattices", "nvt_temperatures", "ALLOY_TEMPERATURE", "ALLOY_ATOMS",
           "quench", "QUENCH_FMAX", "QUENCH_STEPS", "QUENCH_TOL"]


def _reference_lattice(kind: str, symbol: str, a: float, c_over_a: float | None = None) -> derive.Lattice:
    return derive.Lattice(kind, float(a), symbol, c_over_a)


def _lattice(symbol, lattice, a):
    return _reference_lattice(lattice, symbol, a).atoms()


# --------------------------------------------------------------------- checks
def _check(passed, detail: str, plot: dict) -> dict:
    return {"passed": None if passed is None else bool(passed), "detail": detail, "plot": plot}


def model_lattice(model: Model, symbol: str, kind: str, a_guess: float,
                  c_over_a: float | None = None) -> tuple[float, float]:
    """The model's equilibrium lattice constant [Å] and energy per atom [eV/atom]
    of ``symbol`` in ``kind``, by a bounded minimisation within ±15 % of ``a_guess``
    (hcp at fixed c/a)."""
    from scipy.optimize import minimize_scalar

    lat = _reference_lattice(kind, symbol, a_guess, c_over_a)
    n = len(lat.atoms())

    def e_of_a(a):
        e = float(model_energies(model, [lat.atoms(a)])[0]) / n
        return e if np.isfinite(e) else 1e30

    res = minimize_scalar(e_of_a, bounds=(0.85 * a_guess, 1.15 * a_guess), method="bounded",
                          options={"xatol": 1e-6})
    return float(res.x), float(res.fun)


def lattice_from_model(model: Model, symbol: str) -> derive.Lattice:
    """Ground-state lattice of an element according to the model (no data at hand):
    the lowest energy per atom over bcc, fcc, hcp (ideal c/a) and diamond, each
    scanned with its nearest-neighbour distance from 1.8 to 4.0 Å."""
    best = None
    for kind in derive.LATTICES:
        unit = derive.Lattice(kind, 1.0, symbol)
        dnn1 = unit.d_nn
        a = np.linspace(1.8, 4.0, 45) / dnn1
        cells = [unit.atoms(x) for x in a]
        e = model_energies(model, cells) / len(cells[0])
        e = np.where(np.isfinite(e), e, np.inf)
        k = int(np.argmin(e))
        if best is None or e[k] < best[0]:
            best = (e[k], kind, a[k])
    return derive.Lattice(best[1], float(best[2]), symbol)


def energy_volume_check(model: Model, lattice: derive.Lattice, a0: float, e0: float,
                        x_min: float = 0.5, x_max: float = 1.5, n: int = 101) -> dict:
    """E–V of ``lattice`` (element ``lattice.species``) from ``x_min`` to ``x_max`` × ``a0``.

    Passes when every energy is finite, the curve has a single local minimum,
    within 5 % of a0, and the energy rises monotonically (not strictly: it may
    be flat where the fitted energy is switched off, MODEL_SPEC §10) from it
    down to x_min a0 (so nothing lies below the minimum). ``a0``, ``e0``: the model's
    equilibrium lattice constant [Å] and energy [eV/atom].
    """
    x = np.linspace(x_min, x_max, n)
    cells = [lattice.atoms(a0 * s) for s in x]
    ev = model_energies(model, cells) / len(cells[0])
    finite = bool(np.all(np.isfinite(ev)))
    plot = {"x": x.tolist(), "y": ev.tolist(), "xlabel": f"a / a0 (a0 = {a0:.4f} Å, {lattice.kind})",
            "ylabel": "energy [eV/atom]", "kind": "energy_volume", "e0": e0}
    if not finite:
        bad = x[~np.isfinite(ev)]
        return _check(False, f"non-finite energies at a/a0 = {', '.join(f'{v:.2f}' for v in bad[:4])}", plot)
    # flat to rounding counts as flat (format v2: every atom switched to E_ref, ZBL not yet on)
    tol = 1e-9 * max(1.0, float(np.abs(ev).max()))
    # a minimum is a point (or the first point of a flat run) from which E rises on both
    # sides at the first change; a flat run that E leaves downward on one side is none
    runs = [0] + [i for i in range(1, n) if abs(ev[i] - ev[i - 1]) > tol]
    minima = [runs[k] for k in range(1, len(runs) - 1)
              if ev[runs[k]] < ev[runs[k - 1]] and ev[runs[k]] < ev[runs[k + 1]]]
    i_low = int(np.argmin(ev))
    if ev[i_low] < e0 - 1e-6 and abs(x[i_low] - 1) > 0.05:
        return _check(False, f"collapse: E({x[i_low]:.2f} a0) = {ev[i_low]:.3f} eV/atom, "
                             f"{ev[i_low] - e0:+.3f} eV/atom below the equilibrium", plot)
    if len(minima) != 1 or abs(x[minima[0]] - 1) > 0.05:
        return _check(False, f"local minima at a/a0 = {', '.join(f'{x[i]:.2f}' for i in minima) or 'none'}; "
                             "expected one, at 1", plot)
    comp = ev[: minima[0] + 1]
    # monotonic, not strictly: where every atom is switched to E_ref (format v2) and ZBL is
    # not yet on, E is flat to rounding; a fall of more than that fails
    rises = np.diff(comp) < tol
    if not np.all(rises):
        k = int(np.flatnonzero(~rises)[0])
        return _check(False, f"not monotonic under compression: E falls from {x[k]:.2f} a0 to {x[k + 1]:.2f} a0", plot)
    return _check(True, f"single minimum at a0, rises monotonically to E({x_min:g} a0) − E0 = "
                        f"{ev[0] - e0:+.4g} eV/atom", plot)


def push_check(model: Model, lattice: derive.Lattice, a0: float, d_min: float | None,
               r_end: float = 0.5, step: float = 0.02, min_atoms: int = 54, tol: float = 1e-6) -> dict:
    """One atom pushed toward a bulk nearest neighbour.

    A supercell (≥ ``min_atoms``) of ``lattice`` at ``a0``; atom 0 moves along
    the bond to its nearest neighbour until the two are ``r_end`` apart.
    Passes when every energy is finite and at least the perfect crystal's
    (−``tol`` eV), and the energy rises monotonically (steps of ``step`` Å)
    once the distance is below ``d_min``, the data's shortest distance of the
    pair (0.85 d_nn without data).
    """
    at = lattice.supercell(min_atoms, a0)
    D, d_nn = _first_neighbour(at, 1.2 * lattice.with_a0(a0).d_nn)
    unit = D / d_nn
    dist = np.arange(d_nn, r_end - 1e-9, -step)
    cells = []
    for r in dist:
        b = at.copy()
        b.positions[0] += unit * (d_nn - r)
        cells.append(b)
    e = model_energies(model, [at] + cells)
    e = e[1:] - float(e[0])
    threshold = d_min if d_min is not None and np.isfinite(d_min) else 0.85 * d_nn
    plot = {"x": dist.tolist(), "y": e.tolist(), "xlabel": f"distance of the pushed pair [Å] ({len(at)} atoms, "
            f"{lattice.kind} {lattice.species})", "ylabel": "E − E(perfect crystal) [eV]", "kind": "push",
            "threshold": threshold, "threshold_label": "data's shortest distance" if d_min is not None
            and np.isfinite(d_min) else "0.85 d_nn (no data)"}
    if not np.all(np.isfinite(e)):
        return _check(False, f"non-finite energy at {dist[~np.isfinite(e)][0]:.2f} Å", plot)
    if e.min() < -tol:
        k = int(np.argmin(e))
        return _check(False, f"false well: {e[k]:+.3f} eV below the perfect crystal at {dist[k]:.2f} Å", plot)
    below = dist < threshold
    rises = np.diff(e[below]) > 0
    if below.sum() > 1 and not np.all(rises):
        k = int(np.flatnonzero(~rises)[0])
        r = dist[below]
        return _check(False, f"energy falls from {r[k]:.2f} to {r[k + 1]:.2f} Å, below the data's shortest "
                             f"distance {threshold:.2f} Å", plot)
    return _check(True, f"rises monotonically below {threshold:.2f} Å to {e[-1]:+.4g} eV at {r_end:g} Å; "
                        "never below the perfect crystal", plot)


def _first_neighbour(at: Atoms, cutoff: float):
    """Vector to, and distance of, the nearest neighbour of atom 0."""
    from ase.neighborlist import neighbor_list
    i, D, d = neighbor_list("iDd", at, cutoff)
    k = np.flatnonzero(i == 0)
    k = k[np.argmin(d[k])]
    return D[k], float(d[k])


def dimer_check(model: Model, s1: str, s2: str, d_nn: float, r_start: float = 0.5, n: int = 181) -> dict:
    """Dimer s1–s2 from ``r_start`` to the cutoff: repulsive (dE/dr < 0) up to 0.8 ``d_nn`` [Å]."""
    r = np.linspace(r_start, model.cutoff, n)
    dimers = [Atoms([s1, s2], positions=[[0, 0, 0], [ri, 0, 0]]) for ri in r]
    ed = model_energies(model, dimers)
    limit = 0.8 * d_nn
    inner = r <= limit
    plot = {"x": r.tolist(), "y": ed.tolist(), "xlabel": f"{s1}–{s2} distance r [Å]", "ylabel": "dimer energy [eV]",
            "kind": "dimer", "threshold": limit, "threshold_label": "0.8 d_nn"}
    if not np.all(np.isfinite(ed)):
        return _check(False, f"non-finite energy at r = {r[~np.isfinite(ed)][0]:.2f} Å", plot)
    rep = np.diff(ed[inner]) < 0
    if not np.all(rep):
        k = int(np.flatnonzero(~rep)[0])
        return _check(False, f"not repulsive below {limit:.2f} Å (0.8 d_nn): E rises from {r[k]:.2f} to "
                             f"{r[k + 1]:.2f} Å (lowest {ed[inner].min():.2f} eV at "
                             f"{r[inner][np.argmin(ed[inner])]:.2f} Å)", plot)
    return _check(True, f"dE/dr < 0 for {r_start:g} Å ≤ r ≤ {limit:.2f} Å (0.8 d_nn)", plot)


def md_calculator(model: Model):
    """(calculator, engine name) of the MD runs: the C core's (:class:`compot.ccore.CCoreCalculator`,
    "C core"), or the Python model's with a warning if the core cannot be built."""
    from .calculator import CompotCalculator
    try:
        from .ccore import CCoreCalculator
        return CCoreCalculator(model, mode="exchange"), "C core"
    except CompotError as exc:
        log.warning("NVT check: the C core is not available (%s); running the Python model instead", exc)
        return CompotCalculator(model), "Python model"


#: NVT: a run whose potential energy falls this far [eV/atom] below the perfect lattice it
#: starts from has found a false well (:func:`nvt_check`)
E_DROP = 1.0


def thermalize(atoms, temperature: float, rng) -> None:
    """Momenta of ``atoms`` drawn from the Maxwell–Boltzmann distribution at
    ``temperature`` [K] with ``rng`` (a NumPy Generator): ASE's
    ``thermalize_momenta`` (ASE ≥ 3.29), else ``MaxwellBoltzmannDistribution``,
    which 3.29 deprecated for it (the same draws)."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        return
    thermalize_momenta(atoms, temperature, rng=rng)


def nvt_check(model: Model, lattice: derive.Lattice, a0: float, temperature: float | None, steps: int = 2000,
              n_seeds: int = 1, timestep_fs: float = 1.0, min_atoms: int = 128, friction_per_fs: float = 0.01,
              every: int = 10, progress=None, label: str = "NVT", first_seed: int = 0, observe=None,
              e_floor: float | None = None, quench_final: bool = False) -> dict:
    """Langevin NVT runs in which no atom may be lost and, with ``e_floor``, no false well opens.

    A supercell (≥ ``min_atoms``) of ``lattice`` at ``a0``, velocities from the
    Maxwell–Boltzmann distribution at ``temperature`` [K], ``steps`` steps of
    ``timestep_fs``, friction ``friction_per_fs`` [1/fs] (ASE ``Langevin``),
    one run per seed ``first_seed`` … ``first_seed`` + n_seeds − 1. Every ``every`` steps:
    ``observe(atoms, energy per atom [eV], time [fs])`` if given, then an atom is lost
    when two atoms are closer than 1 Å, the potential energy per atom is not
    finite or falls more than ``E_DROP`` (1 eV/atom) below that of the perfect
    lattice the run starts from (a false well: heat only raises it, and no
    relaxation of a lattice at its own a0 lowers it that far), or the kinetic
    temperature exceeds 5 × max(``temperature``, 300 K) (the floor keeps the
    relaxation of an imperfect ideal lattice at a near-zero target from
    counting as a loss); a run stops at its first loss. With ``e_floor`` [eV/atom] (the
    least energy per atom of the cell's ground state: the perfect crystal's e0 for an
    element, :func:`random_alloy`'s floor for an alloy) a run also fails when its mean
    potential energy per atom after the thermostat's relaxation (5 / friction) lies more
    than 3σ below the equipartition bound e_floor + 3/2 k_B T
    (:func:`equipartition_bound`; σ that of one snapshot, so the mean of
    many is held generously): the model holds the hot cell in a false well shallower
    than 1 eV/atom. With ``e_floor`` and ``quench_final`` the run's last cell is also
    quenched (:func:`quench`, fixed cell), and the run fails when that local minimum lies
    more than :data:`QUENCH_TOL` below e_floor: no minimum lies under the ground state.
    ``temperature`` None skips the check. ``progress(task, done, total, note)``, if
    given, is called every ``every`` steps of each run (the task named after
    ``label``, the temperature and the run; :mod:`compot.progress`).
    """
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary

    from .derive.records import neighbour_list

    plot = {"kind": "nvt", "runs": [], "xlabel": "time [fs]", "ylabel": "kinetic temperature [K]",
            "target": temperature}
    if temperature is None:
        return _check(None, "skipped: no temperature (give the data or a temperature)", plot)
    calc, engine = md_calculator(model)
    plot["engine"] = engine
    t_max = 5.0 * max(temperature, 300.0)
    plot["t_max"] = t_max
    failures = []
    t0 = time.perf_counter()
    for seed in range(first_seed, first_seed + n_seeds):
        rng = np.random.default_rng(seed)
        at = lattice.supercell(min_atoms, a0)
        at.calc = calc
        lost = None
        try:
            e_start = at.get_potential_energy() / len(at)
        except CompotError as exc:      # reported as the run's loss; the run does not start
            e_start, lost = -np.inf, f"the model failed on the perfect lattice: {str(exc)[:120]}"
        thermalize(at, temperature, rng)
        Stationary(at)
        # the centre of mass held by a constraint, as ASE >= 3.28 asks instead of fixcm=True
        at.set_constraint(FixCom())
        dyn = Langevin(at, timestep_fs * units.fs, temperature_K=temperature, friction=friction_per_fs / units.fs,
                       fixcm=False, rng=rng)
        run = {"seed": seed, "t": [], "temperature": [], "energy": [], "min_distance": [], "lost": None}
        done = 0
        task = f"{label} {temperature:.0f} K, run {seed - first_seed + 1}/{n_seeds}"
        if progress:
            progress(task, 0, steps, engine)
        while done < steps and lost is None:
            try:
                dyn.run(min(every, steps - done))
                e = at.get_potential_energy() / len(at)
            except CompotError as exc:
                lost = f"the model failed: {str(exc)[:120]}"
                break
            done += min(every, steps - done)
            tk = at.get_temperature()
            dd = neighbour_list("d", at, 1.0)
            dmin = float(dd.min()) if len(dd) else float(neighbour_list("d", at, 3.0).min(initial=3.0))
            run["t"].append(done * timestep_fs)
            run["temperature"].append(float(tk))
            run["energy"].append(float(e))
            run["min_distance"].append(dmin)
            if observe is not None:
                observe(at, float(e), done * timestep_fs)
            if progress:
                progress(task, done, steps, f"{tk:.0f} K")
            if not np.isfinite(e):
                lost = f"non-finite energy per atom at {done * timestep_fs:g} fs"
            elif e < e_start - E_DROP:
                lost = (f"the energy fell to {e:.3f} eV/atom, {e_start - e:.2f} eV/atom below the perfect "
                        f"lattice's, at {done * timestep_fs:g} fs (a false well)")
            elif len(dd):
                lost = f"two atoms {dmin:.2f} Å apart at {done * timestep_fs:g} fs"
            elif tk > t_max:
                lost = f"kinetic temperature {tk:.0f} K > {t_max:.0f} K at {done * timestep_fs:g} fs"
        if lost is None and e_floor is not None:
            lost = _below_equipartition(run, e_floor, temperature, len(at), friction_per_fs)
        if lost is None and e_floor is not None and quench_final:
            try:
                _, e_q = quench(at, calc)
            except CompotError as exc:
                e_q, lost = None, f"the model failed in the final quench: {str(exc)[:120]}"
            if e_q is not None:
                run["quenched"] = e_q - e_floor
                if e_q < e_floor - QUENCH_TOL:
                    lost = (f"the final cell quenched to {e_q:.4f} eV/atom, {e_floor - e_q:.3f} eV/atom below "
                            f"the ground state's {e_floor:.4f}: a false well")
        run["lost"] = lost
        plot["runs"].append(run)
        if lost:
            failures.append(f"seed {seed}: {lost}")
    seconds = time.perf_counter() - t0
    n_atoms = len(lattice.supercell(min_atoms, a0))
    if failures:
        return _check(False, f"failed in {len(failures)}/{n_seeds} run(s) at {temperature:.0f} K: "
                             f"{failures[0]}", plot)
    tk = np.mean([np.mean(r["temperature"][len(r["temperature"]) // 2:]) for r in plot["runs"]])
    quenched = [r["quenched"] for r in plot["runs"] if "quenched" in r]
    note = f"; last cells quenched {min(quenched):+.3f}…{max(quenched):+.3f} eV/atom from e0" if quenched else ""
    return _check(True, f"{n_seeds} × {steps} steps of {timestep_fs:g} fs, {n_atoms} atoms at {temperature:.0f} K "
                        f"({engine}, {seconds:.0f} s): no atom lost, mean kinetic temperature {tk:.0f} K{note}", plot)


def equipartition_bound(e0: float, temperature: float, n_atoms: int) -> tuple[float, float]:
    """(e0 + 3/2 k_B T, k_B T √(3/(2N))) [eV/atom]: the least mean potential energy per
    atom at ``temperature`` [K] of a crystal whose perfect lattice has ``e0`` [eV/atom],
    and the standard deviation of one snapshot's value about it for N = ``n_atoms``
    (classical harmonic crystal)."""
    kt = units.kB * float(temperature)
    return e0 + 1.5 * kt, kt * math.sqrt(1.5 / n_atoms)


#: Quenches: FIRE (ASE) down to this largest force [eV/Å], at most :data:`QUENCH_STEPS` steps;
#: a quenched cell counts as below e0 when lower by more than :data:`QUENCH_TOL` [eV/atom]
#: (six times what a tighter fmax of 0.02 eV/Å still changes: 1.6e-4 eV/atom on a liquid Nb
#: quench).
QUENCH_FMAX = 0.05
QUENCH_STEPS = 2000
QUENCH_TOL = 1e-3


def quench(atoms, calc) -> tuple:
    """The local minimum below ``atoms`` (ase.Atoms; a copy is relaxed, fixed cell, FIRE
    to :data:`QUENCH_FMAX` eV/Å with calculator ``calc``): (the relaxed copy, its energy
    per atom [eV/atom])."""
    from ase.optimize import FIRE

    at = atoms.copy()
    at.set_constraint()
    at.calc = calc
    FIRE(at, logfile=None).run(fmax=QUENCH_FMAX, steps=QUENCH_STEPS)
    return at, float(at.get_potential_energy()) / len(at)


def _below_equipartition(run: dict, e_floor: float, temperature: float, n_atoms: int,
                         friction_per_fs: float) -> str | None:
    """The failure text of :func:`nvt_check`'s equipartition test of one run, or None."""
    settle = 5.0 / friction_per_fs
    e = [v for t, v in zip(run["t"], run["energy"]) if t >= settle]
    if not e:
        return None
    bound, sigma = equipartition_bound(e_floor, temperature, n_atoms)
    mean = float(np.mean(e))
    if mean < bound - 3.0 * sigma:
        return (f"mean energy {mean:.3f} eV/atom after {settle:g} fs, {bound - mean:.3f} eV/atom below the "
                f"equipartition bound {bound:.3f} (floor {e_floor:.3f} + 3/2 k_B T; 3σ = {3 * sigma:.3f}): "
                "a false well")
    return None


# ------------------------------------------------------- several species
class OrderedB2:
    """The ordered B2 (CsCl) cell of a binary: ``s1`` at the corner, ``s2`` at the centre
    of the cubic cell of edge a [Å]; has the ``kind``, ``atoms`` and ``supercell`` of
    :class:`compot.derive.Lattice` that the checks use."""

    def __init__(self, s1: str, s2: str, a0: float):
        self.s1, self.s2, self.a0 = s1, s2, float(a0)
        self.kind = f"B2 {s1}{s2}"
        self.species = f"{s1}{s2}"

    def atoms(self, a: float | None = None) -> Atoms:
        a = self.a0 if a is None else a
        return Atoms([self.s1, self.s2], scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5)], cell=np.eye(3) * a,
                     pbc=True)

    def supercell(self, min_atoms: int, a: float | None = None) -> Atoms:
        n = int(np.ceil((min_atoms / 2) ** (1 / 3)))
        return self.atoms(a).repeat((n, n, n))


class RandomAlloy:
    """An equiatomic random bcc solid solution of ``species``: the n×n×n repetition of the
    cubic cell of edge a [Å] with at least ``min_atoms`` atoms, the species dealt out in
    equal numbers (± 1) and shuffled with ``seed``; :class:`compot.derive.Lattice`'s
    ``kind``, ``atoms`` and ``supercell`` for the NVT check."""

    def __init__(self, species, a0: float, seed: int = 0):
        self.symbols, self.a0, self.seed = list(species), float(a0), seed
        self.kind = "random bcc " + "".join(self.symbols)
        self.species = "".join(self.symbols)

    def supercell(self, min_atoms: int, a: float | None = None) -> Atoms:
        from ase.build import bulk

        a = self.a0 if a is None else a
        n = int(np.ceil((min_atoms / 2) ** (1 / 3)))
        at = bulk("X", "bcc", a=a, cubic=True).repeat((n, n, n))
        names = [self.symbols[k % len(self.symbols)] for k in range(len(at))]
        np.random.default_rng(self.seed).shuffle(names)
        at.set_chemical_symbols(names)
        return at

    def atoms(self, a: float | None = None) -> Atoms:
        return self.supercell(2, a)


def _bcc_edge(lat) -> float:
    """Cube edge [Å] of the bcc cell with the nearest-neighbour distance of ``lat``."""
    return float(lat.d_nn * 2.0 / np.sqrt(3.0))


#: The random alloy's NVT check and hot-MD prior run: temperature [K] and least number of atoms.
ALLOY_TEMPERATURE = 3000.0
ALLOY_ATOMS = 250


def random_alloy(lattices: dict, data=None, min_atoms: int = ALLOY_ATOMS) -> tuple[RandomAlloy, float | None]:
    """The equiatomic random bcc alloy of all the elements of ``lattices``
    (:func:`element_lattices`' {symbol: (Lattice, a0, e0, source)}) at the mean of
    their bcc cube edges (Vegard), and the floor of its energy per atom [eV/atom]:
    Σ_s x_s e0_s + Σ_{i<j} x_i x_j Ω_ij over its supercell of at least ``min_atoms``
    atoms, Ω from the data's binaries (:func:`compot.derive.mixing_parameters`; the
    training ``data`` without compot's own priors), None without data."""
    from collections import Counter

    from .data.anchors import EOS_ANCHOR_GROUP, HOT_PRIOR_GROUP, ZBL_ANCHOR_GROUP

    alloy = RandomAlloy(list(lattices), float(np.mean([_bcc_edge(v[0]) for v in lattices.values()])))
    if not data:
        return alloy, None
    dft = [c for c in data if getattr(c, "group", None) not in (EOS_ANCHOR_GROUP, HOT_PRIOR_GROUP, ZBL_ANCHOR_GROUP)]
    counts = Counter(alloy.supercell(min_atoms).get_chemical_symbols())
    n = sum(counts.values())
    floor = sum(k / n * lattices[s][2] for s, k in counts.items())
    return alloy, floor + derive.mixing_floor(counts, derive.mixing_parameters(dft))


def b2_energy_volume_check(model: Model, s1: str, s2: str, a_guess: float, **kw) -> dict:
    """:func:`energy_volume_check` of the ordered B2 cell of ``s1``–``s2``, about the model's
    B2 lattice constant (bounded minimisation within ±15 % of ``a_guess`` [Å])."""
    from scipy.optimize import minimize_scalar

    b2 = OrderedB2(s1, s2, a_guess)

    def e_of_a(a):
        e = float(model_energies(model, [b2.atoms(a)])[0]) / 2
        return e if np.isfinite(e) else 1e30

    res = minimize_scalar(e_of_a, bounds=(0.85 * a_guess, 1.15 * a_guess), method="bounded",
                          options={"xatol": 1e-6})
    b2.a0 = float(res.x)
    out = energy_volume_check(model, b2, b2.a0, float(res.fun), **kw)
    out["plot"]["a0"] = b2.a0
    return out


# ---------------------------------------------------------------- the report
def _element_setup(model: Model, symbol: str, lattice: str, a0: float | None, data) -> tuple:
    """(Lattice, a guess) of one element: given kind or detected from the data, else from the model."""
    if lattice == "auto":
        if data:
            try:
                lat = derive.detect_lattice(data, symbol)
                return lat, (a0 or lat.a0), "detected from the data"
            except derive.DeriveError as exc:
                log.warning("sanity: %s; the lattice of %s comes from the model", exc, symbol)
        lat = lattice_from_model(model, symbol)
        return lat, (a0 or lat.a0), "the model's lowest-energy lattice (no data)"
    guess = a0
    c_over_a = None
    if data:
        try:
            det = derive.detect_lattice(data, symbol)
            if det.kind == lattice:
                guess = guess or det.a0
                c_over_a = det.c_over_a
        except derive.DeriveError:
            pass
    if guess is None:
        unit = derive.Lattice(lattice, 1.0, symbol)
        scan = lattice_from_model(model, symbol)
        guess = scan.d_nn / unit.d_nn
    return derive.Lattice(lattice, float(guess), symbol, c_over_a), guess, "given"


def nvt_temperatures(model: Model, data, hottest_quantile: float = 0.9) -> tuple[dict, float | None, str | None]:
    """Temperatures [K] of the NVT check from the training data ``data``: for several
    species each element's 1.1 × :func:`compot.derive.hottest_temperature` of its own
    periodic configurations (:func:`compot.derive.single_species`); an element without
    any takes the hottest of the others', the whole data only when no element has any.

    Returns
    -------
    (per_element {symbol: K}, target K or None (none derivable: logged), source text)
    """
    species = list(model.species)
    per_element: dict = {}
    if len(species) > 1:
        # each element at its own data's hottest temperature: over all the data the
        # quantile belongs to the most numerous configurations (on the NbMoTaW data the
        # binaries', 464 K, while each element's AIMD reaches ~3300 K)
        recs = derive.records(data)
        for s in species:
            alone = derive.single_species(recs, s)
            try:
                t_s = derive.hottest_temperature(alone, model, quantile=hottest_quantile) if alone else None
            except derive.DeriveError:
                t_s = None
            if t_s is not None:
                per_element[s] = 1.1 * t_s
    if per_element:
        return per_element, max(per_element.values()), (
            "1.1 × the hottest temperature of each element's own data: "
            + ", ".join(f"{s} {t / 1.1:.0f} K" for s, t in per_element.items()))
    try:
        t_hot = derive.hottest_temperature(data, model, quantile=hottest_quantile)
    except derive.DeriveError as exc:
        log.warning("NVT check skipped: %s", exc)
        return {}, None, None
    return {}, 1.1 * t_hot, f"1.1 × {t_hot:.0f} K, the hottest temperature of the data"


def element_lattices(model: Model, lattice: str = "auto", a0: float | None = None, data=None) -> dict:
    """Each element's ground-state lattice at the model's own equilibrium:
    {symbol: (Lattice at a0, a0 [Å], e0 [eV/atom], where the lattice came from)}
    (:func:`model_lattice` from the data's lattice, ``lattice`` or the model's lowest)."""
    out = {}
    for s in model.species:
        lat, guess, source = _element_setup(model, s, lattice, a0, data)
        a_eq, e_eq = model_lattice(model, s, lat.kind, guess, lat.c_over_a)
        out[s] = (lat.with_a0(a_eq), a_eq, e_eq, source)
    return out


def sanity_report(model: Model, lattice: str = "auto", a0: float | None = None,
                  elastic_file: str | Path | None = None, surface_file: str | Path | None = None, *,
                  data=None, temperature: float | None = None, nvt_steps: int = 2000, n_seeds: int = 1,
                  nvt: bool = True, hottest_quantile: float = 0.9, progress=None,
                  alloy_temperature: float | None = ALLOY_TEMPERATURE, alloy_atoms: int = ALLOY_ATOMS) -> dict:
    """Sanity checks (MODEL_SPEC §9–10), their curves, and material properties.

    Parameters
    ----------
    model : Model
    lattice : {"auto", "bcc", "fcc", "hcp", "diamond"}
        Ground-state lattice of the elements; "auto" detects it per element
        from ``data`` (:func:`compot.derive.detect_lattice`), or without data
        takes the model's lowest-energy lattice.
    a0 : float, optional
        Starting guess of the lattice constant [Å] (default: from the data).
    elastic_file, surface_file : optional extxyz files of strained cells and
        slabs (DFT energies) for the property comparison (single species)
    data : list of Configuration or ase.Atoms, optional
        The training data: lattices, shortest pair distances (push check) and
        the hottest temperature (NVT check) come from it.
    temperature : float, optional
        NVT temperature [K]; default 1.1 × :func:`compot.derive.hottest_temperature`
        of ``data`` (its ``hottest_quantile``); for several species, each element's of its
        own periodic configurations (:func:`compot.derive.single_species`), an element without
        any taking the hottest of the others', the whole data only when no element has
        any; without either the NVT check is skipped.
    nvt_steps, n_seeds : int
        Length (1 fs steps) and number of the NVT runs per element.
    nvt : bool
        Run the NVT check at all.
    progress : callable(task, done, total, note), optional
        Progress of the NVT runs (:func:`nvt_check`).
    alloy_temperature, alloy_atoms : float [K], int
        Several species only: the NVT check of an equiatomic random bcc alloy of all the
        species (:class:`RandomAlloy`, at least ``alloy_atoms`` atoms, lattice constant the
        mean of the elements' bcc cube edges) at ``alloy_temperature`` (None: not run); with
        ``data`` it also fails below its equipartition bound over the regular-solution floor of
        :func:`random_alloy` (every element's NVT check over its crystal's e0).

    Returns
    -------
    dict
        ``passed`` (True, or False when any check failed; a skipped check,
        ``passed`` None, does not fail the report), ``checks`` {name: {passed,
        detail, plot}} (names ``energy_volume``, ``push``, ``dimer``, ``nvt``,
        with `` X`` / `` X-Y`` appended for a model of several species, which also
        has ``energy_volume B2 X-Y`` for every binary (:func:`b2_energy_volume_check`) and
        ``nvt alloy XY…`` (the random alloy)),
        ``elements`` {symbol: {lattice, c_over_a, a0, e0, lattice_source, d_min}},
        ``temperature``, ``properties`` (single species, with an elastic file),
        and for the first element ``lattice``, ``ev_curve`` and ``dimer``.

    Raises
    ------
    ConfigError
        ``lattice`` not one of the allowed values.
    """
    if lattice not in LATTICE_CHOICES:
        raise ConfigError(f"lattice: expected one of {', '.join(LATTICE_CHOICES)}, found {lattice!r}")
    species = list(model.species)
    multi = len(species) > 1
    d_min = derive.shortest_pair_distances(data, species, cutoff=model.cutoff) if data else {}
    checks: dict = {}
    elements: dict = {}
    lattices: dict = {}

    def name(base, label):
        return f"{base} {label}" if multi else base

    found = element_lattices(model, lattice, a0, data)
    for s, (lat, a_eq, e_eq, source) in found.items():
        lattices[s] = lat
        elements[s] = {"lattice": lat.kind, "c_over_a": lat.c_over_a, "a0": a_eq, "e0": e_eq,
                       "lattice_source": source, "d_min": d_min.get((s, s))}
        checks[name("energy_volume", s)] = energy_volume_check(model, lat, a_eq, e_eq)
        checks[name("push", s)] = push_check(model, lat, a_eq, d_min.get((s, s)))
    for a in range(len(species)):
        for b in range(a, len(species)):
            s1, s2 = species[a], species[b]
            dnn = 0.5 * (lattices[s1].d_nn + lattices[s2].d_nn)
            checks[name("dimer", f"{s1}-{s2}")] = dimer_check(model, s1, s2, dnn)
            if s1 != s2:
                a_b2 = 0.5 * (_bcc_edge(lattices[s1]) + _bcc_edge(lattices[s2]))
                checks[f"energy_volume B2 {s1}-{s2}"] = b2_energy_volume_check(model, s1, s2, a_b2)
    t_target = None
    t_source = None
    per_element: dict = {}
    if nvt:
        if temperature is not None:
            t_target, t_source = float(temperature), "given"
        elif data:
            per_element, t_target, t_source = nvt_temperatures(model, data, hottest_quantile)
        for s in species:
            checks[name("nvt", s)] = nvt_check(model, lattices[s], elements[s]["a0"], per_element.get(s, t_target),
                                               steps=nvt_steps, n_seeds=n_seeds, progress=progress,
                                               label=name("NVT", s), e_floor=elements[s]["e0"],
                                               quench_final=True)
        if multi and alloy_temperature:
            alloy, floor = random_alloy(found, data, alloy_atoms)
            checks[f"nvt alloy {alloy.species}"] = nvt_check(
                model, alloy, alloy.a0, float(alloy_temperature), steps=nvt_steps, n_seeds=n_seeds,
                min_atoms=alloy_atoms, progress=progress, label=f"NVT {alloy.kind}", e_floor=floor,
                quench_final=True)
    out = {"passed": all(c["passed"] is not False for c in checks.values()), "checks": checks,
           "elements": elements, "temperature": {"target": t_target, "source": t_source},
           "lattice": lattices[species[0]].kind, "properties": {}}
    ev = checks[name("energy_volume", species[0])]["plot"]
    out["ev_curve"] = {"a_over_a0": ev["x"], "energy_per_atom": ev["y"], "a0": elements[species[0]]["a0"]}
    dm = checks[name("dimer", f"{species[0]}-{species[0]}")]["plot"]
    out["dimer"] = {"r": dm["x"], "energy": dm["y"]}
    if not multi:
        out["properties"] = material_properties(model, species[0], lattices[species[0]], elastic_file, surface_file)
    return out


def failed_checks(rep: dict) -> dict:
    """{name: detail} of the checks that failed."""
    return {k: c["detail"] for k, c in rep.get("checks", {}).items() if c["passed"] is False}


def format_sanity(rep: dict, markdown: bool = False) -> str:
    """Pass/fail lines (one per check) and the property table."""
    if rep.get("passed") is None:
        return rep.get("note", "")
    out = []
    for name, c in rep["checks"].items():
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}[c["passed"]]
        out.append(f"{'- ' if markdown else ''}{mark} {name}: {c['detail']}")
    t = rep.get("temperature") or {}
    if t.get("target"):
        out.append(f"{'- ' if markdown else ''}NVT temperature {t['target']:.0f} K ({t['source']})")
    props = rep.get("properties") or {}
    if props:
        out.append("")
        if markdown:
            out += ["| property | model | DFT | relative error |", "|---|---|---|---|"]
        else:
            out.append(f"{'property':14s} {'model':>10s} {'DFT':>10s} {'rel. error':>11s}")
        for k, v in props.items():
            dft = f"{v['dft']:.4g}" if "dft" in v else "—"
            rel = f"{100 * v['relative_error']:+.1f} %" if "relative_error" in v else "—"
            label = f"{k} [{v['unit']}]"
            if markdown:
                out.append(f"| {label} | {v['model']:.4g} | {dft} | {rel} |")
            else:
                out.append(f"{label:14s} {v['model']:10.4g} {dft:>10s} {rel:>11s}")
        if props.get("C12", {}).get("dft_source") == "stress":
            out.append("DFT C12 and B from the stress–strain slope of uniaxial cells: the elastic set has no "
                       "mixed normal strains, so energies alone do not determine C12.")
        if len(props) > 1:
            out.append("DFT values: energy–strain fit (|η| ≤ 2.1 %) of the elastic set; surface energies of the "
                       "unrelaxed DFT slabs, model and DFT on the same geometries.")
    return "\n".join(out)



"""compot.hot_prior: the equipartition bound, which hot-MD snapshots violate it, their
rows in the fit (energy only), and the linear solve that lifts them."""

import math

import numpy as np
import pytest
from ase import units

from compot.data import Configuration
from compot.data.anchors import HOT_PRIOR_GROUP
from compot.data.weighted import WeightedData
from compot.hot_prior import equipartition_bound, harden, hot_snapshots, still_low
from compot.io import read_model
from compot.sanity import element_lattices
from compot.settings import FitSettings
from compot.trainer import Trainer

from helpers import random_model, random_structure
from test_trainer import synthetic


def test_equipartition_bound_and_the_fluctuation_of_one_snapshot():
    bound, sigma = equipartition_bound(-10.0, 3000.0, 128)
    kt = units.kB * 3000.0                                       # 0.2585 eV
    assert bound == pytest.approx(-10.0 + 0.38778, abs=2e-5)
    assert bound == pytest.approx(-10.0 + 1.5 * kt, rel=1e-15)
    assert sigma == pytest.approx(kt * math.sqrt(1.5 / 128), rel=1e-15)
    assert sigma == pytest.approx(0.02798, abs=1e-5)


def _hot(at, energy, weight=1.0):
    return Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions, cell=at.cell.array,
                         pbc=at.pbc, energy=energy, forces=np.zeros((len(at), 3)), weight=weight,
                         group=HOT_PRIOR_GROUP, source="test:hot")


def test_hot_prior_rows_have_an_energy_and_no_forces():
    model = random_model("E[G3L2] + G3 + ZBL(1.0, 2.5)", seed=2)
    configs = synthetic(random_model("E[G3L2] + G3 + ZBL(1.0, 2.5)", seed=5), n=3)
    settings = FitSettings(energy_weight=3.0, force_weight=0.5, energy_per_atom=True)
    data = WeightedData.for_fit(model, configs, settings)
    rows, batches = data.n_rows, len(data.batches)
    at = random_structure("triclinic", seed=9)
    data.extend_priors(model, [_hot(at, -7.0 * len(at))], settings)
    assert len(data.batches) == batches + 1 and data.n_data_batches == 1
    assert data.wE[-1] == pytest.approx([3.0 / len(at) ** 2], rel=1e-15)
    assert not data.wF[-1].any() and len(data.wF[-1]) == len(at)
    assert data.E[-1] == pytest.approx([-7.0 * len(at)])
    assert data.n_rows == rows + 1 + 3 * len(at)
    assert all(data.wF[k].all() for k in range(data.n_data_batches))   # the data keep their forces


def _fitted():
    """A trainer fitted to six configurations of a known E[G3L2] + G3 model (nonlinear
    parameters held at the truth's), a triclinic cell and the model's energy per atom there."""
    truth = random_model("E[G3L2] + G3", seed=4)
    configs = synthetic(truth, n=6)
    model = random_model("E[G3L2] + G3", seed=4)
    settings = FitSettings(freeze=model.blocks("nonlinear"), energy_per_atom=True, energy_weight=1.0)
    trainer = Trainer(model, configs, settings)
    trainer.fit()
    at = random_structure("triclinic", seed=11)
    return trainer, configs, settings, at, _energy(model, at)


def _energy(model, at):
    return float(model.evaluate(model.system([at]), virial=False).energy_m[0]) / len(at)


def test_resolve_lifts_a_configuration_the_model_puts_too_low():
    """A hot-prior snapshot 1 eV/atom above the fitted energy: the plan's last solve,
    run again with it, moves the model's energy there towards the bound (almost all the
    way with weight 100, part of the way with weight 1 against six configurations that
    the model fitted exactly), and the data's loss pays for it."""
    trainer, configs, settings, at, e_fit = _fitted()
    model = trainer.model
    data_loss = trainer.loss()
    params = {k: v.copy() for k, v in model.params.items()}
    trainer.add_priors([_hot(at, (e_fit + 1.0) * len(at))])
    trainer.resolve()
    e_one = _energy(model, at)
    assert 0.05 < e_one - e_fit < 0.9
    assert trainer.history[-1]["stage"].endswith("(again, with the priors added)")
    model.params.update({k: v.copy() for k, v in params.items()})
    trainer = Trainer(model, configs, settings)
    trainer.add_priors([_hot(at, (e_fit + 1.0) * len(at), weight=100.0)])
    trainer.resolve()
    e_new = _energy(model, at)
    assert e_new - e_fit > 0.9 and e_new - e_fit > e_one - e_fit
    trainer.data = WeightedData.for_fit(model, configs, settings)
    assert trainer.loss() > data_loss


@pytest.fixture(scope="module")
def nb(repo_root):
    model = read_model(repo_root / "examples" / "nb" / "model.params")
    lat, a0, e0, _ = element_lattices(model, lattice="bcc", a0=3.31)["Nb"]
    return model, lat, a0, e0


def test_hot_snapshots_below_the_bound_and_none_above(nb):
    """The shipped Nb model at 1000 K for 700 fs: no snapshot after the thermostat's
    500 fs is 3σ below e0 + 3/2 kT; with e0 put 1 eV higher every one is, and at most
    per_round come back, spread evenly, with the bound as their energy."""
    model, lat, a0, e0 = nb
    snaps, info = hot_snapshots(model, lat, a0, e0, 1000.0, steps=700, seed=5, per_round=4)
    assert snaps == [] and info["below"] == 0
    assert info["lowest"] > e0 + 1.5 * units.kB * 1000.0 - 3 * equipartition_bound(e0, 1000.0, 128)[1]
    snaps, info = hot_snapshots(model, lat, a0, e0 + 1.0, 1000.0, steps=700, seed=5, per_round=4)
    assert info["below"] == 21                        # 500, 510, ..., 700 fs
    assert len(snaps) == 4 and all(c.group == HOT_PRIOR_GROUP for c in snaps)
    n = len(snaps[0].symbols)
    assert n == 128 and snaps[0].energy == pytest.approx(n * (e0 + 1.0 + 1.5 * units.kB * 1000.0), rel=1e-14)
    assert not any(c.forces.any() for c in snaps)
    times = [float(c.source.split(", ")[-1].split(" fs")[0]) for c in snaps]
    assert times == [500.0, 570.0, 630.0, 700.0]


def test_harden_is_off_without_settings(nb):
    model = nb[0]

    class Bare:
        settings = FitSettings()
    Bare.model = model
    assert harden(Bare(), []) == {}


def test_resolve_reuses_the_data_factor_and_escalates_weights():
    """resolve() merges the kept factor of the batches before the first prior with the
    priors' rows: the same coefficients as a solve over every row; doubling a prior's
    energy weight (scale_energy_weights) lifts it further; still_low finds exactly the
    snapshots 3σ below their bound."""
    trainer, configs, settings, at, e_fit = _fitted()
    model = trainer.model
    hot = _hot(at, (e_fit + 1.0) * len(at))
    trainer.add_priors([hot])
    trainer.resolve()
    names = trainer.plan[-1].linear
    cached = model.vector(names).copy()
    trainer.solve(names)                                   # every batch's rows streamed again
    np.testing.assert_allclose(cached, model.vector(names), rtol=1e-9, atol=1e-12)
    e1 = _energy(model, at)
    sigma = {id(hot): 0.1}
    assert e1 < e_fit + 1.0 - 0.3 and still_low(model, [hot], sigma) == [hot]     # 3σ = 0.3 eV/atom
    assert still_low(model, [hot], {id(hot): 10.0}) == []
    trainer.data.scale_energy_weights([hot], 2.0)
    assert trainer.data.wE[-1][0] == pytest.approx(2.0 / len(at) ** 2, rel=1e-15)
    trainer.resolve()
    e2 = _energy(model, at)
    assert e1 < e2 < e_fit + 1.0


def test_nvt_check_fails_a_run_held_below_the_equipartition_bound(nb):
    """The shipped Nb model at 1000 K for 700 fs holds the mean energy after 500 fs above
    e0 + 3/2 kT − 3σ; with a floor 1 eV higher the same run is a false well."""
    from compot.sanity import nvt_check
    model, lat, a0, e0 = nb
    ok = nvt_check(model, lat, a0, 1000.0, steps=700, e_floor=e0)
    assert ok["passed"] is True
    bad = nvt_check(model, lat, a0, 1000.0, steps=700, e_floor=e0 + 1.0)
    assert bad["passed"] is False and "below the equipartition bound" in bad["detail"]
    mean = np.mean([e for t, e in zip(bad["plot"]["runs"][0]["t"], bad["plot"]["runs"][0]["energy"]) if t >= 500])
    bound = equipartition_bound(e0 + 1.0, 1000.0, 128)[0]
    assert f"{bound - mean:.3f} eV/atom below" in bad["detail"]


def test_random_alloy_floor_is_the_elements_plus_the_regular_solution_of_the_data():
    """random_alloy: Vegard lattice constant; floor Σ x_s e0_s + x_Nb x_Mo Ω with Ω from the
    data's most negative Nb–Mo formation energy (compot's own priors are not data)."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from compot.sanity import random_alloy

    def cell(symbols, e_per_atom, a=3.2):
        at = bulk("Nb", "bcc", a=a, cubic=True).repeat((2, 1, 1))
        at.set_chemical_symbols(symbols)
        at.calc = SinglePointCalculator(at, energy=e_per_atom * len(at), forces=np.zeros((len(at), 3)))
        return at

    model = random_model("G3 + ZBL(1.0, 2.5)", species=("Nb", "Mo"), seed=1)
    lattices = element_lattices(model, lattice="bcc", a0=3.2)
    data = [cell(["Nb"] * 4, -10.0), cell(["Mo"] * 4, -11.0), cell(["Nb", "Mo", "Mo", "Mo"], 0.25 * -10 + 0.75 * -11 - 0.06)]
    alloy, floor = random_alloy(lattices, data)
    assert alloy.symbols == ["Nb", "Mo"]
    edges = [lattices[s][0].d_nn * 2 / 3 ** 0.5 for s in ("Nb", "Mo")]
    assert alloy.a0 == pytest.approx(np.mean(edges), rel=1e-12)
    omega = -0.06 / (0.25 * 0.75)
    assert floor == pytest.approx(0.5 * lattices["Nb"][2] + 0.5 * lattices["Mo"][2] + 0.25 * omega, rel=1e-12)
    prior = _hot(cell(["Nb", "Mo", "Nb", "Mo"], 0.0), -1000.0)           # a hot-MD prior is not data
    assert random_alloy(lattices, data + [prior])[1] == pytest.approx(floor, rel=1e-12)
    assert random_alloy(lattices)[1] is None


def test_harden_runs_every_element_and_the_random_alloy_over_its_floor(monkeypatch):
    """For two species harden runs each element's crystal at its temperature over its e0
    and the random alloy at 3000 K, ≥ 250 atoms, over random_alloy's floor; a round that
    finds nothing ends the loop (converged)."""
    import compot.hot_prior as hp
    import compot.sanity as sanity
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    def cell(symbols, e_per_atom):
        at = bulk("Nb", "bcc", a=3.2, cubic=True).repeat((2, 1, 1))
        at.set_chemical_symbols(symbols)
        at.calc = SinglePointCalculator(at, energy=e_per_atom * len(at), forces=np.zeros((len(at), 3)))
        return at

    data = [cell(["Nb"] * 4, -10.0), cell(["Mo"] * 4, -11.0), cell(["Nb", "Mo", "Mo", "Mo"], -10.81)]
    model = random_model("G3 + ZBL(1.0, 2.5)", species=("Nb", "Mo"), seed=1)
    lattices = element_lattices(model, lattice="bcc", a0=3.2)
    monkeypatch.setattr(sanity, "element_lattices", lambda m, data=None: lattices)
    monkeypatch.setattr(sanity, "nvt_temperatures", lambda m, d: ({"Nb": 2000.0, "Mo": 2500.0}, 2500.0, "test"))
    calls = []

    def fake(model, lat, a0, e0, temperature, steps, seed, per_round, weight=1.0, progress=None, label="",
             min_atoms=128, quenches=0):
        calls.append((lat.kind, e0, temperature, min_atoms, steps, seed, quenches))
        return [], {"below": 0, "lowest": e0 + 1.0, "bound": e0 + 0.5, "detail": "", "t": [], "energy": [],
                    "quenched": [(700, 0.0)], "quench_below": 0, "quench_added": 0}
    monkeypatch.setattr(hp, "hot_snapshots", fake)

    class Stub:
        settings = FitSettings(hot_prior={"steps": 700, "rounds": 3, "quenches": 1})
    Stub.model = model
    rep = harden(Stub(), data)
    alloy, floor = sanity.random_alloy(lattices, data)
    assert calls == [("bcc", lattices["Nb"][2], 2000.0, 128, 700, 1000, 1),
                     ("bcc", lattices["Mo"][2], 2500.0, 128, 700, 1000, 1),
                     ("random bcc NbMo", floor, 3000.0, 250, 700, 1000, 1)]
    assert list(rep["rounds"][0]["elements"]) == ["Nb", "Mo", "NbMo"] and rep["converged"] is True


def _resolving_trainer(model, hot_prior: dict):
    """A stand-in for a fitted Trainer: ``model``, the prior's settings, priors kept in
    ``.priors`` and a resolve that returns a loss of 1."""
    class Stub:
        settings = FitSettings(hot_prior=hot_prior)
        data = type("D", (), {"n_rows": 10})()

        def __init__(self):
            self.model, self.priors = model, []

        def add_priors(self, new):
            self.priors += new

        def resolve(self):
            return 1.0
    return Stub()


def test_harden_estimates_the_temperature_each_round_and_never_lowers_it(monkeypatch):
    """The temperature estimate depends on the model the prior changes: each round asks
    nvt_temperatures again and runs at the hottest estimate so far (2000, then 2000 where
    the estimate fell to 1800, then 2600), so the round that finds nothing ran at least as
    hot as the final model's check."""
    import compot.hot_prior as hp
    import compot.sanity as sanity
    from ase.build import bulk

    model = random_model("G3 + ZBL(1.0, 2.5)", seed=1)
    lattices = element_lattices(model, lattice="bcc", a0=3.2)
    monkeypatch.setattr(sanity, "element_lattices", lambda m, data=None: lattices)
    estimates = iter([2000.0, 1800.0, 2600.0])

    def temperatures(m, d):
        t = next(estimates)
        return {}, t, "test"
    monkeypatch.setattr(sanity, "nvt_temperatures", temperatures)
    sigmas = []
    monkeypatch.setattr(hp, "still_low", lambda m, added, sigma: sigmas.append(dict(sigma)) or [])
    ran = []

    def fake(model, lat, a0, e0, temperature, steps, seed, per_round, weight=1.0, progress=None, label="",
             min_atoms=128, quenches=0):
        ran.append(temperature)            # one hot snapshot and one quenched cell in rounds 1 and 2
        snaps = [_hot(bulk("Nb", "bcc", a=3.2, cubic=True), 0.0) for _ in range(2)] if len(ran) < 3 else []
        return snaps, {"below": len(snaps), "lowest": e0, "bound": e0 + 0.5, "detail": "", "t": [],
                       "energy": [], "quenched": [], "quench_below": len(snaps) // 2,
                       "quench_added": len(snaps) // 2}
    monkeypatch.setattr(hp, "hot_snapshots", fake)

    stub = _resolving_trainer(model, {"steps": 700, "rounds": 5})
    rep = harden(stub, [])
    assert ran == [2000.0, 2000.0, 2600.0]
    assert [e["elements"]["Nb"]["temperature"] for e in rep["rounds"]] == ran
    assert rep["converged"] is True and rep["added"] == 4
    hot, cold = stub.priors[0::2], stub.priors[1::2]       # quenched cells are not escalated
    assert all(id(c) not in sigmas[-1] for c in cold)
    assert [sigmas[-1][id(c)] for c in hot] == [equipartition_bound(0.0, 2000.0, 2)[1]] * 2


def test_harden_runs_seeds_independent_runs_per_element_and_round(monkeypatch):
    """``seeds: 3``: each round runs every element three times with distinct seeds (the
    first the seed of one run per round, 1000 + round − 1), reported as "Nb", "Nb (2)",
    "Nb (3)"; a round converges only when none of them finds anything."""
    import compot.hot_prior as hp
    import compot.sanity as sanity
    from ase.build import bulk

    model = random_model("G3 + ZBL(1.0, 2.5)", seed=1)
    lattices = element_lattices(model, lattice="bcc", a0=3.2)
    monkeypatch.setattr(sanity, "element_lattices", lambda m, data=None: lattices)
    monkeypatch.setattr(sanity, "nvt_temperatures", lambda m, d: ({}, 2000.0, "test"))
    monkeypatch.setattr(hp, "still_low", lambda m, added, sigma: [])
    seeds = []

    def fake(model, lat, a0, e0, temperature, steps, seed, per_round, weight=1.0, progress=None, label="",
             min_atoms=128, quenches=0):
        seeds.append(seed)                 # round 1: only the third run finds a snapshot
        snaps = [_hot(bulk("Nb", "bcc", a=3.2, cubic=True), 0.0)] if seed == 1000 + 20000 else []
        return snaps, {"below": len(snaps), "lowest": e0, "bound": e0 + 0.5, "detail": "", "t": [],
                       "energy": [], "quenched": [], "quench_below": 0, "quench_added": 0}
    monkeypatch.setattr(hp, "hot_snapshots", fake)

    rep = harden(_resolving_trainer(model, {"steps": 700, "rounds": 4, "seeds": 3}), [])
    assert seeds == [1000, 11000, 21000, 1001, 11001, 21001]
    assert [list(e["elements"]) for e in rep["rounds"]] == [["Nb", "Nb (2)", "Nb (3)"]] * 2
    assert [e["added"] for e in rep["rounds"]] == [1, 0] and rep["converged"] is True


def test_quenched_snapshots_below_e0_join_with_e0_plus_the_tolerance_as_target(nb):
    """quenches=2 at 1000 K for 700 fs quench the snapshots of 600 and 700 fs (evenly after
    the 500 fs relaxation): a bcc crystal returns to its lattice (e0 to within the quench's
    tolerance, nothing added); with e0 put 1 eV higher both lie below it and join with
    target N (e0 + 1 + QUENCH_TOL), after the equipartition snapshots, and still_low leaves
    them alone."""
    from compot.hot_prior import QUENCH_TOL
    model, lat, a0, e0 = nb
    snaps, info = hot_snapshots(model, lat, a0, e0, 1000.0, steps=700, seed=5, per_round=4, quenches=2)
    assert [t for t, _ in info["quenched"]] == [600, 700]
    assert all(abs(d) < QUENCH_TOL for _, d in info["quenched"]) and info["quench_below"] == 0
    assert snaps == [] and info["quench_added"] == 0
    snaps, info = hot_snapshots(model, lat, a0, e0 + 1.0, 1000.0, steps=700, seed=5, per_round=4, quenches=2)
    assert len(snaps) == 4 + 2 and info["quench_added"] == 2 and info["quench_below"] == 2
    for c in snaps[4:]:
        assert c.energy == pytest.approx(c.n_atoms * (e0 + 1.0 + QUENCH_TOL), rel=1e-14) and "quenched" in c.source
        e_q = _energy(model, _atoms(c))
        assert e_q == pytest.approx(e0, abs=QUENCH_TOL)
    sigma = {id(c): 0.01 for c in snaps[:4]}
    assert still_low(model, snaps, sigma) == snaps[:4]


def _atoms(c):
    from ase import Atoms
    return Atoms(symbols=list(c.symbols), positions=c.positions, cell=c.cell, pbc=c.pbc)


def test_harden_runs_a_rounds_cells_as_dask_tasks_with_the_same_result(client, monkeypatch, repo_root):
    """The shipped NbMoTaW model at 300 K for 600 fs (each element and the random alloy, one
    quench each): on a 2-worker LocalCluster the round's five runs give the very traces and
    quenches the runs in this process give, nothing lies below its bound, and the loop ends."""
    import compot.sanity as sanity
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    model = read_model(repo_root / "examples" / "nbmotaw" / "model.params")
    lattices = {s: v for s, v in element_lattices(model, lattice="bcc", a0=3.2).items()}
    monkeypatch.setattr(sanity, "element_lattices", lambda m, data=None: lattices)
    monkeypatch.setattr(sanity, "nvt_temperatures", lambda m, d: ({s: 300.0 for s in lattices}, 300.0, "test"))
    monkeypatch.setattr(sanity, "ALLOY_TEMPERATURE", 300.0)
    data = []
    for symbols in [[s, s] for s in lattices] + [[a, b] for a in lattices for b in lattices if a < b]:
        at = bulk("Nb", "bcc", a=3.2, cubic=True)
        at.set_chemical_symbols(symbols)           # each pair mixes at -0.2 eV/atom: floor 0.3 lower
        at.calc = SinglePointCalculator(at, energy=2 * (-10.0 - 0.2 * (symbols[0] != symbols[1])),
                                        forces=np.zeros((2, 3)))
        data.append(at)

    class Stub:
        settings = FitSettings(hot_prior={"steps": 600, "rounds": 2, "quenches": 1})
    Stub.model = model
    here = harden(Stub(), data)
    Stub.client = client
    there = harden(Stub(), data)
    assert list(there["rounds"][0]["elements"]) == ["Mo", "Nb", "Ta", "W", "MoNbTaW"]
    for s, e in there["rounds"][0]["elements"].items():
        ref = here["rounds"][0]["elements"][s]
        assert e["energy"] == ref["energy"] and e["quenched"] == ref["quenched"] and e["t"][-1] == 600.0
        assert e["below"] == 0 and e["quench_below"] == 0 and len(e["quenched"]) == 1
    assert there["converged"] is True and there["added"] == 0


def test_nvt_check_quenches_the_last_cell_and_fails_below_the_ground_state(nb, monkeypatch):
    """quench_final: the shipped Nb model's crystal at 1000 K quenches back to its lattice
    (e0 to within QUENCH_TOL: passes); with the ground state put 1 eV higher (and the
    equipartition test switched off) the same run fails on its quench."""
    import compot.sanity as sanity
    from compot.sanity import QUENCH_TOL, nvt_check
    model, lat, a0, e0 = nb
    ok = nvt_check(model, lat, a0, 1000.0, steps=700, e_floor=e0, quench_final=True)
    assert ok["passed"] is True and abs(ok["plot"]["runs"][0]["quenched"]) < QUENCH_TOL
    monkeypatch.setattr(sanity, "_below_equipartition", lambda *a: None)
    bad = nvt_check(model, lat, a0, 1000.0, steps=700, e_floor=e0 + 1.0, quench_final=True)
    assert bad["passed"] is False and "quenched to" in bad["detail"] and "below the ground state" in bad["detail"]
    assert bad["plot"]["runs"][0]["quenched"] == pytest.approx(-1.0, abs=QUENCH_TOL)

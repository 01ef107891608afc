"""Physics derived from the data (compot.derive): lattices, equation of state,
distances, cutoff, windows, temperature."""

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import kB

from compot import derive
from compot.derive import DeriveError, Lattice


def _with_energy(atoms, energy, forces=None, stress=None):
    atoms.calc = SinglePointCalculator(atoms, energy=energy,
                                       forces=np.zeros((len(atoms), 3)) if forces is None else forces,
                                       **({} if stress is None else {"stress": stress}))
    return atoms


CASES = [("Nb", "bcc", {"a": 3.30, "cubic": True}, None), ("Cu", "fcc", {"a": 3.61, "cubic": True}, None),
         ("Mg", "hcp", {"a": 3.21, "c": 5.21}, 5.21 / 3.21), ("Zn", "hcp", {"a": 2.66, "c": 4.95}, 4.95 / 2.66),
         ("Si", "diamond", {"a": 5.43, "cubic": True}, None)]


@pytest.mark.parametrize("symbol, kind, kw, q", CASES)
@pytest.mark.parametrize("noise", [0.0, 0.06])
def test_ideal_and_thermal_lattices_are_classified(symbol, kind, kw, q, noise):
    at = bulk(symbol, kind, **kw).repeat(2 if kind == "diamond" else 3)
    if noise:
        at.rattle(noise, seed=3)          # ~ 300-1000 K displacements
    got, c_over_a, fraction = derive.classify(at)
    assert got == kind and fraction > 0.95
    lat = derive.detect_lattice([_with_energy(at, -3.0 * len(at))], symbol)
    assert lat.kind == kind
    if q is None:
        assert c_over_a is None
        assert lat.a0 == pytest.approx(kw["a"], rel=1e-9)     # from the volume per atom
    else:
        assert c_over_a == pytest.approx(q, rel=0.01)
        assert lat.a0 == pytest.approx(kw["a"], rel=0.005)


def test_detect_lattice_takes_the_lowest_energy_crystal_and_skips_slabs():
    b = _with_energy(bulk("Fe", "bcc", a=2.87, cubic=True).repeat(2), 16 * -8.0)
    f = _with_energy(bulk("Fe", "fcc", a=3.60, cubic=True).repeat(2), 32 * -7.9)
    assert derive.detect_lattice([f, b], "Fe").kind == "bcc"
    f2 = _with_energy(bulk("Fe", "fcc", a=3.60, cubic=True).repeat(2), 32 * -8.1)
    assert derive.detect_lattice([f2, b], "Fe").kind == "fcc"
    slab = bulk("Fe", "bcc", a=2.87, cubic=True).repeat((2, 2, 1))
    slab.center(vacuum=8.0, axis=2)
    slab = _with_energy(slab, len(slab) * -9.0)        # lowest energy, but not a crystal
    assert derive.detect_lattice([slab, b], "Fe").kind == "bcc"
    with pytest.raises(DeriveError, match="no periodic configuration of W"):
        derive.detect_lattice([b], "W")
    with pytest.raises(DeriveError, match="is a bcc, fcc, hcp, diamond crystal"):
        derive.detect_lattice([slab], "Fe")


def test_shells_and_default_cutoff():
    nb = Lattice("bcc", 3.322, "Nb")
    (d1, n1), (d2, n2), (d3, n3) = nb.shells(3)
    assert (n1, n2, n3) == (8, 6, 12)
    assert d1 == pytest.approx(3.322 * math.sqrt(3) / 2) and d2 == pytest.approx(3.322)
    assert d3 == pytest.approx(3.322 * math.sqrt(2))
    assert derive.default_cutoff(nb) == 4.42           # the shipped Nb model uses 4.4 Å
    cu = Lattice("fcc", 3.61)
    assert [n for _, n in cu.shells(3)] == [12, 6, 24]
    assert derive.default_cutoff(cu) == round(3.61 + 0.8 * (3.61 * math.sqrt(1.5) - 3.61), 2)
    ti = Lattice("hcp", 2.95, c_over_a=4.68 / 2.95)     # first shell split by 2 %: still one shell of 12
    assert ti.shells(2)[0][1] == 12 and ti.shells(2)[1][0] == pytest.approx(4.133, abs=1e-3)
    assert nb.supercell(128).get_global_number_of_atoms() == 128
    assert Lattice("fcc", 3.61).supercell(128).get_global_number_of_atoms() >= 128
    with pytest.raises(DeriveError, match="expected one of bcc, fcc, hcp, diamond"):
        Lattice("sc", 3.0)


def test_vinet_functions():
    v0, e0, b, bp = 18.3, -10.0, 170.0, 4.2
    assert derive.vinet_energy(v0, v0, e0, b, bp) == pytest.approx(e0, abs=1e-14)
    h = 1e-4
    e = lambda v: float(derive.vinet_energy(v, v0, e0, b, bp))   # noqa: E731
    p = -(e(v0 * 0.9 + h) - e(v0 * 0.9 - h)) / (2 * h) * derive.EV_PER_A3_TO_GPA
    assert p == pytest.approx(float(derive.vinet_pressure(v0 * 0.9, v0, b, bp)), rel=1e-7)
    d2 = (e(v0 + h) - 2 * e(v0) + e(v0 - h)) / h ** 2
    assert v0 * d2 * derive.EV_PER_A3_TO_GPA == pytest.approx(b, rel=1e-5)


def _rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def _synthetic_eos_data(a0=3.20, e0=-8.0, b=250.0, bp=4.2, cprime=80.0, c44=60.0, k_spring=3.0, seed=0):
    """bcc cells of a material whose energy is Vinet + cubic shear energy + harmonic thermal energy:
    hydrostatic thermal snapshots at 5 volumes (54 atoms, rattled, F = −k u) and a static elastic set
    (uniaxial and shear strains, 2 atoms), in random orientations."""
    rng = np.random.default_rng(seed)
    v0 = a0 ** 3 / 2
    out = []

    def energy_of(cell0, eps):
        F = np.eye(3) + eps
        C = F.T @ F
        Cb = C / np.linalg.det(C) ** (1 / 3)
        e = 0.5 * (Cb - np.eye(3))
        V = v0 * np.linalg.det(F)
        w = V * (cprime * np.sum(np.diag(e) ** 2) + 2 * c44 * (e[0, 1] ** 2 + e[0, 2] ** 2 + e[1, 2] ** 2))
        return V, float(derive.vinet_energy(V, v0, e0, b, bp)) + w / derive.EV_PER_A3_TO_GPA

    for k, x in enumerate((0.94, 0.97, 1.0, 1.03, 1.06)):
        for t in range(3):
            at = bulk("Mo", "bcc", a=a0 * x, cubic=True).repeat(3)
            u = rng.normal(0, 0.05, (len(at), 3))
            u -= u.mean(axis=0)
            at.positions += u
            R = _rotation(10 * k + t)
            at.set_cell(at.cell.array @ R.T, scale_atoms=False)
            at.positions = at.positions @ R.T
            V, e = energy_of(None, np.diag([x - 1] * 3))
            e_tot = e * len(at) + 0.5 * k_spring * np.sum(u ** 2)
            out.append(_with_energy(at, e_tot, forces=-k_spring * (u @ R.T)))
    for amp in (-0.02, -0.01, 0.01, 0.02):
        for eps in (np.diag([amp, 0, 0]), np.array([[0, amp / 2, 0], [amp / 2, 0, 0], [0, 0, 0]])):
            at = bulk("Mo", "bcc", a=a0, cubic=True)
            at.set_cell(at.cell.array @ (np.eye(3) + eps).T, scale_atoms=True)
            V, e = energy_of(None, eps)
            out.append(_with_energy(at, 2 * e))
    return out


def test_equation_of_state_recovers_a_synthetic_material():
    cfgs = _synthetic_eos_data()
    eos = derive.equation_of_state(cfgs, "Mo")
    assert eos.lattice.kind == "bcc"
    assert eos.a0 == pytest.approx(3.20, rel=1e-4)
    assert eos.e0 == pytest.approx(-8.0, abs=2e-4)
    assert eos.bulk_modulus == pytest.approx(250.0, rel=0.02)
    assert eos.b_prime == pytest.approx(4.2, abs=0.5) or "not determined" in eos.sources["b_prime"]
    assert eos.n_configs == len(cfgs)
    assert "15 thermal" in eos.sources["a0"]
    assert eos.energy_at(3.20) == pytest.approx(eos.e0, abs=1e-12)
    anchor = eos.as_anchor(weight=0.1)
    assert anchor["lattice"] == "bcc" and anchor["weight"] == 0.1 and anchor["bulk_modulus"] == eos.bulk_modulus


def test_thermal_correction_and_shear_strain_of_one_cell():
    from compot.derive.eos import _crystal_state
    from compot.derive.records import records
    cfgs = _synthetic_eos_data()
    st = _crystal_state(records([cfgs[0]])[0], "bcc")
    at = cfgs[0]
    u2 = np.sum(at.get_forces() ** 2) / 3.0 ** 2
    assert st.correction == pytest.approx(-0.5 * 3.0 * u2 / len(at), rel=1e-9)
    assert np.abs(st.e_dev).max() < 1e-10
    sheared = _crystal_state(records([cfgs[-1]])[0], "bcc")
    off = np.abs(sheared.e_dev[np.triu_indices(3, 1)])            # crystal frame up to a cubic symmetry
    assert sheared.correction == 0.0 and off.max() == pytest.approx(0.01, rel=0.01) and np.sort(off)[1] < 1e-6
    vac = bulk("Mo", "bcc", a=3.2, cubic=True).repeat(3)
    del vac[0]
    assert _crystal_state(records([_with_energy(vac, -1.0)])[0], "bcc") is None


def test_bulk_modulus_not_determined_is_an_error_unless_given():
    cells = []
    for amp in (-0.01, 0.0, 0.01):                 # uniaxial only: E = ½ C11 ε², B and C' inseparable
        at = bulk("Mo", "bcc", a=3.2, cubic=True)
        at.set_cell(at.cell.array @ np.diag([1 + amp, 1, 1]), scale_atoms=True)
        cells.append(_with_energy(at, 2 * (-8.0 + 0.5 * 2.5 * amp ** 2 * 16.4)))
    with pytest.raises(DeriveError, match="do not determine the bulk modulus"):
        derive.equation_of_state(cells, "Mo", use_stress=False)
    eos = derive.equation_of_state(cells, "Mo", use_stress=False, bulk_modulus=260.0)
    assert eos.bulk_modulus == 260.0 and eos.sources["bulk_modulus"].startswith("given")
    assert eos.a0 == pytest.approx(3.2, rel=1e-3)


def test_niobium_data(data_dir):
    from compot.data import read_dataset
    cfgs = read_dataset(data_dir / "nb-mvl")
    lat = derive.detect_lattice(cfgs, "Nb")
    assert lat.kind == "bcc"
    eos = derive.equation_of_state(cfgs, "Nb", lat)
    assert eos.a0 == pytest.approx(3.322, rel=0.01)
    assert abs(eos.a0 - 3.322) < 0.003
    assert eos.e0 == pytest.approx(-10.095, abs=0.002)
    assert eos.bulk_modulus == pytest.approx(173.0, rel=0.1)
    d = derive.shortest_pair_distances(cfgs, ["Nb"])
    assert list(d) == [("Nb", "Nb")] and 2.0 < d[("Nb", "Nb")] < 2.3
    assert derive.default_cutoff(eos.lattice) == pytest.approx(4.42, abs=0.01)


def test_shortest_pair_distances_and_windows():
    a = Atoms("MoNb", positions=[[0, 0, 0], [2.3, 0, 0]])
    b = Atoms("Mo", cell=np.eye(3) * 2.5, pbc=True)              # only its periodic image: 2.5 Å
    c = Atoms("Nb2", positions=[[0, 0, 0], [0, 0, 2.7]])
    d = derive.shortest_pair_distances([a, b, c], ["Mo", "Nb", "Ta"])
    assert d[("Mo", "Mo")] == pytest.approx(2.5) and d[("Mo", "Nb")] == pytest.approx(2.3)
    assert d[("Nb", "Nb")] == pytest.approx(2.7) and math.isinf(d[("Mo", "Ta")])
    assert ("Nb", "Mo") not in d
    w = derive.default_windows({("Mo", "Mo"): 2.5, ("Mo", "Nb"): 2.3, ("Nb", "Nb"): 2.7}, d_nn=2.75)
    assert w["inner"][("Mo", "Nb")] == (round(0.95 * 2.3 - 0.5, 2), round(0.95 * 2.3, 2))
    r_in = round(0.95 * 2.7, 2)
    assert w["zbl"] == (r_in, round(r_in + 0.5 * (2.75 - r_in), 2))
    w2 = derive.default_windows({("Mo", "Mo"): 2.0, ("Mo", "Nb"): math.inf, ("Nb", "Nb"): 2.2})
    assert w2["inner"][("Mo", "Nb")][1] == pytest.approx(0.95 * 2.1, abs=0.01)
    assert w2["zbl"][1] == pytest.approx(w2["zbl"][0] + 0.5)
    with pytest.raises(DeriveError, match="not above"):
        derive.default_windows({("Mo", "Mo"): 2.5}, d_nn=2.0)
    # an unlike pair the data never brought closer than its like pairs' windows (relaxed
    # solid solutions only) gets their mean, so ZBL stays well inside the neighbour shell
    w3 = derive.default_windows({("Mo", "Mo"): 2.12, ("Mo", "Ta"): 2.707, ("Ta", "Ta"): 2.016}, d_nn=2.72)
    assert w3["inner"][("Mo", "Ta")][1] == pytest.approx(0.95 * (2.12 + 2.016) / 2, abs=0.006)
    assert w3["zbl"][0] == round(0.95 * 2.12, 2)
    # the distance each window came from: d_min, or the like pairs' mean where that set r_b
    assert w3["reach"][("Mo", "Mo")] == pytest.approx(2.12)
    assert w3["reach"][("Mo", "Ta")] == pytest.approx((2.12 + 2.016) / 2)
    assert w2["reach"][("Mo", "Nb")] == pytest.approx(2.1)
    assert w["reach"][("Mo", "Nb")] == pytest.approx(2.3)


class _Einstein(Calculator):
    """U = ½ k Σ |r_i − r_i⁰|²: ∂²U/∂x² = k exactly."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, ref, k):
        super().__init__()
        self.ref, self.k = ref, k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        u = self.atoms.positions - self.ref
        self.results = {"energy": 0.5 * self.k * np.sum(u ** 2), "forces": -self.k * u}


def test_equipartition_temperature_of_a_canonical_sample():
    rng = np.random.default_rng(1)
    ref = bulk("Nb", "bcc", a=3.3, cubic=True).repeat(3)
    k = 4.0
    cfgs = []
    for T in [300.0] * 10 + [2000.0] * 10:
        at = ref.copy()
        u = rng.normal(0.0, math.sqrt(kB * T / k), (len(at), 3))        # canonical: ⟨u²⟩ = kT/k
        at.positions += u
        cfgs.append(_with_energy(at, 0.5 * k * np.sum(u ** 2), forces=-k * u))
    for n, at in enumerate(cfgs):
        at.info["source"] = f"md:{n:02d}"                             # estimates come in source order
    model = _Einstein(ref.positions, k)
    est = derive.temperature_estimates(cfgs, model, n_probes=1)
    t = np.array([e["temperature"] for e in est])
    assert all(e["mean_curvature"] == pytest.approx(k, rel=1e-6) for e in est)
    assert np.mean(t[:10]) == pytest.approx(300.0, rel=0.1)
    assert np.mean(t[10:]) == pytest.approx(2000.0, rel=0.1)
    hot = derive.hottest_temperature(cfgs, model, quantile=0.9, n_probes=1)
    assert 1900.0 < hot < 2600.0
    subset = derive.temperature_estimates(cfgs, model, n_probes=1, max_configs=7)
    shuffled = derive.temperature_estimates(cfgs[::-1], model, n_probes=1, max_configs=7)
    assert len(subset) == 7 and subset == shuffled                     # the same set, any order
    cfgs[0].info["temperature"] = 5000.0                              # explicit metadata wins
    assert derive.hottest_temperature(cfgs[:3], model, quantile=1.0) == 5000.0
    with pytest.raises(DeriveError, match="no configuration with thermal forces"):
        derive.hottest_temperature([_with_energy(ref.copy(), 0.0)], model)


def test_mixing_parameters_from_the_most_negative_binary_and_the_floor():
    """Ω_ab = min(0, e_form / (x_a x_b)) over the a–b configurations, e_form relative to each
    element's lowest energy per atom; the floor Σ x_i x_j Ω_ij counts a pair without data 0."""
    nb = bulk("Nb", "bcc", a=3.3, cubic=True)
    mo = bulk("Mo", "bcc", a=3.15, cubic=True)
    cells = [_with_energy(nb.copy(), -10.0 * 2), _with_energy(nb.copy(), -9.5 * 2),
             _with_energy(mo.copy(), -11.0 * 2)]
    alloy = bulk("Nb", "bcc", a=3.2, cubic=True).repeat((2, 2, 1))          # 8 atoms: Nb2 Mo6
    alloy.set_chemical_symbols(["Nb", "Nb"] + ["Mo"] * 6)
    cells.append(_with_energy(alloy.copy(), 8 * (0.25 * -10.0 + 0.75 * -11.0 - 0.09)))
    cells.append(_with_energy(alloy.copy(), 8 * (0.25 * -10.0 + 0.75 * -11.0 + 0.30)))   # above: no effect
    ternary = alloy.copy()
    ternary.set_chemical_symbols(["Nb", "W"] + ["Mo"] * 6)
    cells.append(_with_energy(ternary, -1000.0))                            # not a binary: ignored
    slab = alloy.copy()
    slab.pbc = (True, True, False)
    cells.append(_with_energy(slab, -1000.0))                               # not periodic: ignored
    assert derive.element_references(derive.records(cells)) == {"Nb": -10.0, "Mo": -11.0}
    omega = derive.mixing_parameters(cells)
    assert list(omega) == [("Mo", "Nb")]
    assert omega[("Mo", "Nb")] == pytest.approx(-0.09 / (0.25 * 0.75), rel=1e-12)      # -0.48
    assert derive.mixing_floor({"Nb": 1, "Mo": 1, "W": 2}, omega) == pytest.approx(0.25 * 0.25 * -0.48, rel=1e-12)
    assert derive.mixing_floor({"Mo": 3, "Nb": 1}, omega) == pytest.approx(0.75 * 0.25 * -0.48, rel=1e-12)
    assert derive.mixing_floor({"Nb": 5}, omega) == 0.0
    with pytest.raises(DeriveError, match="composition"):
        derive.mixing_floor({}, omega)

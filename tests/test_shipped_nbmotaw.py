"""The shipped Nb-Mo-Ta-W model (examples/nbmotaw/model.params, fitted by
`compot fit examples/nbmotaw/config.yaml`): its size, its safety checks on the
training data's elements, and the C core against Python on a quaternary alloy."""

import numpy as np
import pytest
from ase.build import bulk

from compot.calculator import CompotCalculator
from compot.ccore import CCoreCalculator
from compot.io import read_model
from compot.sanity import sanity_report

SPECIES = ("Mo", "Nb", "Ta", "W")


@pytest.fixture(scope="module")
def shipped(repo_root):
    return read_model(repo_root / "examples" / "nbmotaw" / "model.params")


def test_shipped_nbmotaw_is_small_and_format_v4(shipped):
    assert shipped.version == 4 and shipped.species == SPECIES
    assert shipped.n_linear + shipped.n_nonlinear <= 600                      # issue 14: at most 600
    assert shipped.expression.startswith("E[G8L4] + A[G8P4] + ZBL(")
    assert np.all(shipped.params["g.n_min"] > 4.0) and shipped.params["g.U"].any()


@pytest.fixture(scope="module")
def nbmotaw_data(data_dir):
    """Each element's elastic set and every binary's solid solutions (the alloy's floor
    needs the binaries' formation energies)."""
    from compot.data import read_dataset
    files = [data_dir / "nbmotaw-mvl" / f"{s}_Elastic.json" for s in ("Mo", "Ta", "W")] \
        + [data_dir / "nb-mvl" / "Nb_Elastic.extxyz", data_dir / "nbmo-mvl"] \
        + [data_dir / "nbmotaw-mvl" / f"{p}_SS.json" for p in ("MoTa", "MoW", "NbTa", "NbW", "TaW")]
    return read_dataset(files, species=list(SPECIES), min_distance=0.5)


def test_shipped_nbmotaw_passes_the_checks(shipped, nbmotaw_data):
    """E–V and push of every element, every species pair's dimer and the B2 E–V curve of
    every binary (the NVT runs, 4 × 2000 steps, are in the fit's report and
    benchmarks; here 300 steps of the random quaternary alloy at 3000 K, its last cell
    quenched no lower than the alloy's floor)."""
    rep = sanity_report(shipped, "auto", None, data=nbmotaw_data, nvt_steps=300, temperature=None)
    failed = {k: v["detail"] for k, v in rep["checks"].items() if v["passed"] is False}
    assert not failed, failed
    names = set(rep["checks"])
    assert sum(k.startswith("dimer") for k in names) == 10
    assert sum(k.startswith("energy_volume B2") for k in names) == 6
    assert sum(k.startswith("push") for k in names) == 4


def test_c_core_agrees_with_python_on_a_quaternary_alloy(shipped):
    at = bulk("X", "bcc", a=3.23, cubic=True).repeat(3)
    rng = np.random.default_rng(7)
    at.set_chemical_symbols([SPECIES[k % 4] for k in rng.permutation(len(at))])
    at.rattle(0.08, seed=3)
    ref, c = at.copy(), at.copy()
    ref.calc, c.calc = CompotCalculator(shipped), CCoreCalculator(shipped)
    # issue 14: agreement to 1e-9 (eV, eV/Å); 54 atoms of about -11 eV, summed in another order
    assert c.get_potential_energy() == pytest.approx(ref.get_potential_energy(), rel=0, abs=1e-9)
    np.testing.assert_allclose(c.get_forces(), ref.get_forces(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(c.get_stress(), ref.get_stress(), rtol=0, atol=1e-10)


def test_shipped_nbmotaw_holds_the_hot_random_alloy_above_its_equipartition_bound(shipped, nbmotaw_data):
    """NVT of the random equiatomic alloy (250 atoms, 3000 K, 1000 fs): its mean energy after
    the thermostat's 500 fs stays above the floor (elements' e0 + the regular-solution sum
    of the binaries' most negative formation energies, −0.13 eV/atom) + 3/2 kT − 3σ. The
    first two shipped models held it 0.68 eV/atom below: a false well (compot.hot_prior)."""
    from compot.sanity import element_lattices, nvt_check, random_alloy
    data = nbmotaw_data
    lattices = element_lattices(shipped, data=data)
    alloy, floor = random_alloy(lattices, data)
    assert floor - np.mean([lattices[s][2] for s in SPECIES]) == pytest.approx(-0.129, abs=0.002)
    check = nvt_check(shipped, alloy, alloy.a0, 3000.0, steps=1000, min_atoms=250, e_floor=floor)
    assert check["passed"] is True, check["detail"]

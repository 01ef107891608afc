"""Sanity checks of a model of several species: B2 E–V of every binary and NVT of an
equiatomic random bcc alloy through the C core (compot.sanity)."""

import numpy as np
import pytest

from compot.sanity import OrderedB2, RandomAlloy, b2_energy_volume_check, sanity_report

from helpers import random_model


def test_random_alloy_is_equiatomic_bcc_and_seeded():
    alloy = RandomAlloy(["Mo", "Nb", "Ta", "W"], 3.2, seed=3)
    at = alloy.supercell(250)
    assert len(at) == 250
    counts = sorted(at.get_chemical_symbols().count(s) for s in ("Mo", "Nb", "Ta", "W"))
    assert counts == [62, 62, 63, 63]
    np.testing.assert_allclose(at.cell.lengths(), [16.0, 16.0, 16.0])
    assert at.get_chemical_symbols() == alloy.supercell(250).get_chemical_symbols()
    assert at.get_chemical_symbols() != RandomAlloy(["Mo", "Nb", "Ta", "W"], 3.2, seed=4).supercell(250) \
        .get_chemical_symbols()
    b2 = OrderedB2("Nb", "Mo", 3.2).atoms()
    assert b2.get_chemical_symbols() == ["Nb", "Mo"] and abs(b2.get_volume() - 3.2 ** 3) < 1e-9


def test_several_species_report_has_b2_and_alloy_checks():
    model = random_model("G3 + ZBL(1.0, 2.5)", species=("Nb", "Mo"), seed=1)
    rep = sanity_report(model, "bcc", a0=3.2, nvt_steps=10, alloy_atoms=54)
    names = set(rep["checks"])
    assert {"energy_volume Nb", "energy_volume Mo", "push Nb", "push Mo", "dimer Nb-Nb", "dimer Nb-Mo",
            "dimer Mo-Mo", "energy_volume B2 Nb-Mo", "nvt alloy NbMo"} <= names
    b2 = rep["checks"]["energy_volume B2 Nb-Mo"]
    assert len(b2["plot"]["x"]) == 101 and np.all(np.isfinite(b2["plot"]["y"]))
    nvt = rep["checks"]["nvt alloy NbMo"]
    assert nvt["plot"]["target"] == 3000.0 and nvt["plot"]["runs"] and nvt["plot"]["engine"] in ("C core", "Python model")
    direct = b2_energy_volume_check(model, "Nb", "Mo", 3.2)
    e_min = min(direct["plot"]["y"][40:61])                                  # 0.9–1.1 a0
    assert abs(direct["plot"]["y"][50] - e_min) < 1e-6 or direct["passed"] is False


def test_c_core_equals_python_on_a_quaternary_random_alloy():
    """Energy, forces and stress of the C core (both ghost modes) equal the Python model's
    to 1e-9 relative on a rattled 54-atom equiatomic random MoNbTaW cell."""
    import pytest

    from compot.calculator import CompotCalculator
    from compot.ccore import CCoreCalculator

    species = ("Mo", "Nb", "Ta", "W")
    cell = RandomAlloy(species, 3.25, seed=2).supercell(54)
    cell.rattle(0.1, seed=3)
    model = random_model("E[G3L2] + A[G3P2] + ZBL(1.6, 2.4)", species=species, seed=4, structures=[cell])
    ref = cell.copy()
    ref.calc = CompotCalculator(model)
    e_ref, f_ref, s_ref = ref.get_potential_energy(), ref.get_forces(), ref.get_stress()
    for mode in ("ghosts", "exchange"):
        c = cell.copy()
        c.calc = CCoreCalculator(model, mode=mode)
        assert c.get_potential_energy() == pytest.approx(e_ref, rel=1e-9)
        np.testing.assert_allclose(c.get_forces(), f_ref, rtol=0, atol=1e-9 * np.abs(f_ref).max())
        np.testing.assert_allclose(c.get_stress(), s_ref, rtol=0, atol=1e-9 * np.abs(s_ref).max())


def test_each_element_runs_nvt_at_its_own_datas_temperature():
    """Several species: an element's NVT runs at 1.1 × the hottest temperature of the
    configurations of that element alone, not of the whole data (where the many cold
    binaries would set the quantile)."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    model = random_model("G3 + ZBL(1.0, 2.5)", species=("Nb", "Mo"), seed=1)

    def cell(symbols, t):
        at = bulk("Nb", "bcc", a=3.2, cubic=True).repeat(2)
        at.set_chemical_symbols(symbols * (len(at) // len(symbols)))
        at.calc = SinglePointCalculator(at, energy=0.0, forces=np.zeros((len(at), 3)))
        at.info["temperature"] = t
        return at
    data = [cell(["Nb"], 2000.0), cell(["Mo"], 1000.0)] + [cell(["Nb", "Mo"], 300.0)] * 20
    rep = sanity_report(model, "bcc", a0=3.2, data=data, nvt_steps=5, alloy_temperature=None)
    assert rep["checks"]["nvt Nb"]["plot"]["target"] == pytest.approx(2200.0)
    assert rep["checks"]["nvt Mo"]["plot"]["target"] == pytest.approx(1100.0)
    assert "Nb 2000 K, Mo 1000 K" in rep["temperature"]["source"]

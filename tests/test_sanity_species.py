"""Sanity checks of a model of several species: B2 E–V of every binary and NVT of an
equiatomic random bcc alloy through the C core (compot.sanity)."""

import numpy as np

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

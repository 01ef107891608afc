"""Physical sanity report (MODEL_SPEC §9): elastic fits, surface energies, checks."""

import numpy as np
import pytest
from ase.build import bulk

from compot.plots import plot_sanity
from compot.properties import EV_PER_A3_TO_GPA, elastic_fit, surface_energies
from compot.sanity import format_sanity, sanity_report
from compot.data.anchors import zbl_anchor_configurations
from compot.settings import FitSettings
from compot.model import Model


def _quadratic_energy(eta, C11, C12, C44, p=0.0):
    e1, e2, e3, e4, e5, e6 = eta
    return (p * (e1 + e2 + e3) + 0.5 * C11 * (e1 ** 2 + e2 ** 2 + e3 ** 2)
            + C12 * (e1 * e2 + e1 * e3 + e2 * e3) + 0.5 * C44 * (e4 ** 2 + e5 ** 2 + e6 ** 2))


def _strained(cell0, eps):
    return cell0 @ (np.eye(3) + eps)


@pytest.mark.parametrize("mixed", [True, False])
def test_elastic_fit_recovers_constants(mixed):
    from compot.properties import _voigt_strain
    C11, C12, C44 = 1.5, 0.8, 0.3          # eV/Å³
    cell0 = np.eye(3) * 3.3
    V0 = 3.3 ** 3
    cells, energies, stresses = [], [], []
    for amp in (-0.02, -0.01, 0.01, 0.02):
        epss = [np.diag([amp, 0, 0]), np.diag([0, amp, 0]), np.diag([0, 0, amp]),
                np.array([[0, amp / 2, 0], [amp / 2, 0, 0], [0, 0, 0]])]
        if mixed:
            epss.append(np.diag([amp, amp, 0]))
        for eps in epss:
            c = _strained(cell0, eps)
            eta = _voigt_strain(c, cell0)
            cells.append(c)
            energies.append(_quadratic_energy(eta, C11, C12, C44) * V0 / 2)
            sig = np.array([C11 * eta[0] + C12 * (eta[1] + eta[2]), C11 * eta[1] + C12 * (eta[0] + eta[2]),
                            C11 * eta[2] + C12 * (eta[0] + eta[1]), C44 * eta[3], C44 * eta[4], C44 * eta[5]])
            stresses.append(sig)
    res = elastic_fit(cells, energies, 2, cell0, stresses=None if mixed else stresses)
    assert res["C11"] == pytest.approx(C11 * EV_PER_A3_TO_GPA, rel=1e-6)
    assert res["C44"] == pytest.approx(C44 * EV_PER_A3_TO_GPA, rel=1e-4)   # O(η²) cross terms when C12 is not fitted
    assert res["C12"] == pytest.approx(C12 * EV_PER_A3_TO_GPA, rel=1e-3)
    assert res["c12_source"] == ("energy" if mixed else "stress")
    assert res["a0"] == pytest.approx(3.3, rel=1e-9)


def test_surface_energy_formula():
    slab = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((1, 1, 3))
    slab.center(vacuum=5.0, axis=2)
    slab.info["source_desc"] = "Surface {'Sur': '100'}"
    g = surface_energies([slab], [6 * -10.0 + 2 * 0.1], -10.0)
    assert g == {"(100)": pytest.approx(0.2 / (2 * 3.3 * 3.3) * 16.021766208)}


def _collapsing():
    """Attractive pair model without a core: everything collapses."""
    return Model("G2", ("Nb",), 4.5, {"b1.alpha": 0.3, "b1.beta": 1.5, "n0.c": [[[-1.0, -0.5]]]})


def _repulsive():
    """Screened-Coulomb core plus a weak attraction: sane everywhere."""
    return Model("G1 + ZBL(0.5, 4.0)", ("Nb",), 4.5, {"b1.alpha": 0.3, "n1.c": [[[-0.02]]]})


def test_a_collapsing_model_fails_every_static_check():
    rep = sanity_report(_collapsing(), "bcc", 3.3, nvt=False)
    assert rep["passed"] is False
    for name in ("energy_volume", "push", "dimer"):
        assert rep["checks"][name]["passed"] is False, name
    assert "collapse" in rep["checks"]["energy_volume"]["detail"]
    assert "below the perfect crystal" in rep["checks"]["push"]["detail"]
    assert "nvt" not in rep["checks"]


def test_a_core_plus_weak_pair_passes_and_plots_every_check(tmp_path):
    rep = sanity_report(_repulsive(), "auto", temperature=1000.0, nvt_steps=40)
    assert rep["passed"] is True
    assert set(rep["checks"]) == {"energy_volume", "push", "dimer", "nvt"}
    assert all(c["passed"] for c in rep["checks"].values())
    assert rep["elements"]["Nb"]["lattice_source"].startswith("the model's")
    push = rep["checks"]["push"]["plot"]
    assert min(push["x"]) == pytest.approx(0.5, abs=0.02) and min(push["y"]) >= 0
    text = format_sanity(rep)
    assert "PASS dimer" in text and "PASS nvt" in text and "1000 K (given)" in text
    paths = plot_sanity(rep, tmp_path / "sanity.png", "test")
    assert sorted(p.name for p in paths) == ["sanity_dimer.png", "sanity_energy_volume.png", "sanity_nvt.png",
                                             "sanity_push.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_nvt_loses_atoms_of_a_collapsing_model_and_keeps_a_stable_one():
    from compot.derive import Lattice
    from compot.sanity import model_lattice, nvt_check
    lat = Lattice("bcc", 3.3, "Nb")
    bad = nvt_check(_collapsing(), lat, 3.3, 2000.0, steps=300)
    assert bad["passed"] is False and "Å apart" in bad["detail"]
    assert bad["plot"]["runs"][0]["lost"] and bad["plot"]["runs"][0]["t"][-1] < 300
    good = _repulsive()
    a0, _ = model_lattice(good, "Nb", "bcc", 3.3)
    ok = nvt_check(good, lat.with_a0(a0), a0, 1000.0, steps=60, n_seeds=2)
    assert ok["passed"] is True and len(ok["plot"]["runs"]) == 2 and "C core" in ok["detail"]
    assert min(ok["plot"]["runs"][1]["min_distance"]) > 1.0
    skipped = nvt_check(good, lat, a0, None)
    assert skipped["passed"] is None and "skipped" in skipped["detail"]


def test_nvt_fails_a_false_well_before_atoms_meet():
    """The collapsing pair model ten times stronger: at 2000 K its energy falls more than
    E_DROP (1 eV/atom) below the perfect lattice's within 40 fs, while no two atoms are yet
    closer than 1.8 Å -- a false well that the distance and temperature rules alone let
    run on (the rank-2 NbMoTaW fit of accuracy_nbmotaw.md heated a 3000 K alloy to
    14,000 K that way, its energy 4 eV/atom below the crystals, no atom lost)."""
    from compot.derive import Lattice
    from compot.sanity import E_DROP, nvt_check
    m = Model("G2", ("Nb",), 4.5, {"b1.alpha": 0.3, "b1.beta": 1.5, "n0.c": [[[-10.0, -5.0]]]})
    res = nvt_check(m, Lattice("bcc", 3.3, "Nb"), 3.3, 2000.0, steps=300)
    run = res["plot"]["runs"][0]
    assert res["passed"] is False and "a false well" in res["detail"]
    assert min(run["energy"]) < m.evaluate(m.system([bulk("Nb", "bcc", a=3.3, cubic=True).repeat(4)])
                                          ).energy_m[0] / 128 - E_DROP
    assert min(run["min_distance"]) > 1.5 and run["t"][-1] < 100


def test_nvt_reports_a_model_that_fails_on_the_perfect_lattice(monkeypatch):
    """A model whose evaluation fails on the starting lattice: the run is lost with that
    error, not with a false-well message measured from no start energy."""
    from ase.calculators.calculator import Calculator

    import compot.sanity as sanity
    from compot.derive import Lattice
    from compot.errors import CompotError

    class Failing(Calculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=None, system_changes=None):
            raise CompotError("non-finite energy at particle 0")

    monkeypatch.setattr(sanity, "md_calculator", lambda model: (Failing(), "C core"))
    res = sanity.nvt_check(_repulsive(), Lattice("bcc", 3.9, "Nb"), 3.9, 500.0, steps=10)
    assert res["passed"] is False
    assert "the model failed on the perfect lattice: non-finite energy at particle 0" in res["detail"]
    assert res["plot"]["runs"][0]["t"] == []


def test_nvt_falls_back_to_python_when_the_core_cannot_be_built(monkeypatch, caplog):
    import compot.ccore
    from compot.derive import Lattice
    from compot.sanity import nvt_check

    def no_core(*args, **kwargs):
        raise compot.ccore.CCoreError("cannot build the C core: compiler 'cc' not found")
    monkeypatch.setattr(compot.ccore, "CCoreCalculator", no_core)
    with caplog.at_level("WARNING", logger="compot.sanity"):
        res = nvt_check(_repulsive(), Lattice("bcc", 3.9, "Nb"), 3.9, 500.0, steps=10)
    assert res["passed"] and "Python model" in res["detail"]
    assert any("C core is not available" in r.message for r in caplog.records)


def test_lattice_argument_and_several_species():
    with pytest.raises(ValueError, match="expected one of auto, bcc, fcc, hcp, diamond, found 'sc'"):
        sanity_report(_repulsive(), "sc")
    m = Model("G1 + ZBL(0.5, 4.0)", ("Mo", "Nb"), 4.5, {"b1.alpha": 0.3})
    rep = sanity_report(m, "fcc", 4.5, nvt=False)
    assert set(rep["checks"]) == {"energy_volume Mo", "energy_volume Nb", "push Mo", "push Nb",
                                  "dimer Mo-Mo", "dimer Mo-Nb", "dimer Nb-Nb", "energy_volume B2 Mo-Nb"}
    assert rep["elements"]["Mo"]["lattice"] == "fcc" and rep["properties"] == {}


def test_checks_use_the_data(data_dir):
    from compot.data import read_dataset
    data = read_dataset(data_dir / "nb-mvl" / "Nb_AIMD.extxyz", index="::10")       # 20 AIMD snapshots
    rep = sanity_report(_repulsive(), "auto", data=data, nvt_steps=20)
    el = rep["elements"]["Nb"]
    assert el["lattice"] == "bcc" and el["lattice_source"] == "detected from the data"
    assert 2.0 < el["d_min"] < 2.5
    assert rep["checks"]["push"]["plot"]["threshold"] == pytest.approx(el["d_min"])
    t = rep["temperature"]
    assert t["source"].startswith("1.1 × ") and 300 < t["target"]


def zbl_written_out(r, z1, z2, r_in, r_out):
    """The ZBL pair energy and its r-derivative [eV, eV/Å], written out from
    Ziegler, Biersack, Littmark, "The Stopping and Range of Ions in Solids"
    (1985): E(r) = Z1 Z2 e²/(4πε₀ r) Φ(r/a), universal screening
    Φ(x) = 0.18175 e^(-3.1998 x) + 0.50986 e^(-0.94229 x) + 0.28022 e^(-0.4029 x)
    + 0.02817 e^(-0.20162 x), a = 0.8854 a_B / (Z1^0.23 + Z2^0.23) = 0.4685 Å / (...),
    e²/(4πε₀) = 14.399645 eV·Å; switched to zero at r_out as LAMMPS pair_style
    zbl: E + A t³/3 + B t⁴/4 + C (t = r - r_in ≥ 0, t = 0 below r_in) with A, B,
    C making E, E′, E″ vanish at r_out."""
    a = 0.4685 / (z1 ** 0.23 + z2 ** 0.23)
    k = 14.399645 * z1 * z2
    terms = ((0.18175, 3.1998), (0.50986, 0.94229), (0.28022, 0.4029), (0.02817, 0.20162))

    def e012(x):       # E, E', E'' of the unswitched potential at x [Å]
        phi = sum(c * np.exp(-d * x / a) for c, d in terms)
        dphi = sum(-c * d / a * np.exp(-d * x / a) for c, d in terms)
        d2phi = sum(c * (d / a) ** 2 * np.exp(-d * x / a) for c, d in terms)
        return (k * phi / x, k * (dphi / x - phi / x ** 2),
                k * (d2phi / x - 2 * dphi / x ** 2 + 2 * phi / x ** 3))

    if r >= r_out:
        return 0.0, 0.0
    w = r_out - r_in
    e_c, de_c, d2e_c = e012(r_out)
    A = (-3 * de_c + w * d2e_c) / w ** 2
    B = (2 * de_c - w * d2e_c) / w ** 3
    C = -e_c + w * de_c / 2 - w ** 2 * d2e_c / 12
    t = max(r - r_in, 0.0)
    e, de, _ = e012(r)
    return e + A * t ** 3 / 3 + B * t ** 4 / 4 + C, de + A * t ** 2 + B * t ** 3


def test_zbl_written_out_is_smooth_and_consistent():
    """The written-out formula itself: its derivative is that of its energy
    (central differences), and it goes to zero smoothly at r_out."""
    for r in (0.8, 1.3, 1.9, 2.3):
        h = 1e-6
        e_p, e_m = zbl_written_out(r + h, 41, 42, 1.6, 2.4)[0], zbl_written_out(r - h, 41, 42, 1.6, 2.4)[0]
        assert zbl_written_out(r, 41, 42, 1.6, 2.4)[1] == pytest.approx((e_p - e_m) / (2 * h), rel=1e-7)
    e, de = zbl_written_out(2.4 - 1e-4, 41, 41, 1.6, 2.4)
    assert abs(e) < 1e-9 and abs(de) < 1e-5


def test_zbl_anchor_dimers():
    m = Model("G2 + ZBL(1.6, 2.4)", ("Mo", "Nb"), 5.0)
    anchors = zbl_anchor_configurations(m, {"r_min": 1.0, "r_max": 2.0, "n": 5, "weight": 3.0})
    assert len(anchors) == 15 and all(a.group == "zbl_anchor" and a.weight == 3.0 for a in anchors)
    z = {"Mo": 42, "Nb": 41}
    for a in anchors:
        # target forces are the ZBL forces, computed independently from the formula written out
        r = a.positions[1, 0] - a.positions[0, 0]
        e_ref, de_ref = zbl_written_out(r, z[a.symbols[0]], z[a.symbols[1]], 1.6, 2.4)
        np.testing.assert_allclose(a.forces, [[de_ref, 0, 0], [-de_ref, 0, 0]], rtol=1e-12, atol=1e-12)
        assert a.forces[0, 0] < 0          # atom 0 pushed away from atom 1
        # and the model's own ZBL term (fitted part zero) gives the same energy and forces
        p = m.evaluate(m.system([a]), virial=False)
        assert p.energy_m[0] == pytest.approx(e_ref, rel=1e-12)
        np.testing.assert_allclose(p.forces_nc, a.forces, rtol=1e-12, atol=1e-12)
    assert {tuple(a.symbols) for a in anchors} == {("Mo", "Mo"), ("Mo", "Nb"), ("Nb", "Nb")}
    with pytest.raises(ValueError, match="needs a ZBL term"):
        zbl_anchor_configurations(Model("G2", ("Nb",), 5.0), {"n": 3})
    assert FitSettings.from_dict({"zbl_anchor": {"n": 3}}).zbl_anchor == {"n": 3}


def test_zbl_anchor_ranges_per_pair():
    """``ranges`` (what the recipe derives: [r_a, the data's shortest distance] per
    species pair) puts each pair's dimers in its own range; a pair without a range gets
    none, and a derived prior is left out of a model without ZBL instead of failing."""
    m = Model("G2 + ZBL(1.6, 2.4)", ("Mo", "Nb"), 5.0)
    anchors = zbl_anchor_configurations(m, {"ranges": {"Nb-Mo": [1.5, 2.1], "Nb-Nb": [1.4, 2.2]}, "n": 7})
    by_pair = {}
    for a in anchors:
        by_pair.setdefault(tuple(a.symbols), []).append(a.positions[1, 0])
    assert set(by_pair) == {("Mo", "Nb"), ("Nb", "Nb")}
    np.testing.assert_allclose(by_pair[("Mo", "Nb")], np.linspace(1.5, 2.1, 7), rtol=0, atol=1e-15)
    np.testing.assert_allclose(by_pair[("Nb", "Nb")], np.linspace(1.4, 2.2, 7), rtol=0, atol=1e-15)
    assert zbl_anchor_configurations(Model("G2", ("Nb",), 5.0), {"ranges": {"Nb-Nb": [1.4, 2.2]}}) == []


def test_vinet_eos_anchor():
    from compot.derive import vinet_energy as vinet_v
    from compot.data.anchors import eos_anchor_configurations
    a0, e0, B = 3.3, -10.0, 170.0
    vinet_energy = lambda a, a0, e0, B, bp, n: vinet_v(a ** 3 / n, a0 ** 3 / n, e0, B, bp)
    assert vinet_energy(a0, a0, e0, B, 4.0, 2) == pytest.approx(e0, abs=1e-14)
    # dE/dV = 0 and V d²E/dV² = B at V0 (per-atom volume a³/2)
    h = 1e-4
    V = lambda a: a ** 3 / 2
    e = lambda a: float(vinet_energy(a, a0, e0, B, 4.0, 2))
    dEda = (e(a0 + h) - e(a0 - h)) / (2 * h)
    assert abs(dEda) < 1e-6          # central difference of an O(1) function, h = 1e-4
    d2Eda2 = (e(a0 + h) - 2 * e(a0) + e(a0 - h)) / h ** 2
    dVda = 3 * a0 ** 2 / 2
    assert V(a0) * d2Eda2 / dVda ** 2 * EV_PER_A3_TO_GPA == pytest.approx(B, rel=1e-5)
    m = Model("G2 + ZBL(1.6, 2.4)", ("Nb",), 5.0)
    confs = eos_anchor_configurations(m, {"a0": a0, "e0": e0, "bulk_modulus": B, "scales": [0.8, 1.2]})
    assert [c.n_atoms for c in confs] == [2, 2] and confs[0].energy > 2 * e0 and confs[1].energy > 2 * e0
    with pytest.raises(ValueError, match="missing"):
        eos_anchor_configurations(m, {"a0": a0})


def test_properties_from_mvl_json_reference_files(data_dir):
    # compot fit finds the elastic and surface files among the data, in any format compot reads
    m = Model("G1 + ZBL(0.5, 4.0)", ("Mo",), 4.5, {"b1.alpha": 0.3, "n1.c": [[[-0.02]]]})
    d = data_dir / "nbmotaw-mvl"
    rep = sanity_report(m, "bcc", 3.17, d / "Mo_Elastic.json", d / "Mo_Surface.json", nvt=False)
    props = rep["properties"]
    assert props["a0"]["dft"] == pytest.approx(3.17, rel=0.01)
    assert props["B"]["dft"] == pytest.approx(263, rel=0.1)          # derive's EOS on the same data: 263 GPa
    slabs = [k for k in props if k.startswith("gamma")]
    assert len(slabs) == 11 and all(1.0 < props[k]["dft"] < 5.0 for k in slabs)


def test_eos_anchor_per_species():
    """Several species: one Vinet prior per element, each a lattice of that element alone,
    then (``b2``, default on) the B2 cell of the pair at the compressed scales of the mean
    a0, each atom's site energy that of its own element's equation of state."""
    from compot.data.anchors import eos_anchor_configurations
    from compot.derive import vinet_energy
    m = Model("G2 + ZBL(1.6, 2.4)", ("Mo", "Nb"), 5.0)
    per = {"Nb": {"a0": 3.32, "e0": -10.2, "bulk_modulus": 170.0},
           "Mo": {"a0": 3.17, "e0": -10.9, "bulk_modulus": 260.0, "lattice": "bcc"}}
    confs = eos_anchor_configurations(m, {"weight": 0.5, "scales": [0.9, 1.1], "species": per})
    assert [set(c.symbols) for c in confs] == [{"Nb"}, {"Nb"}, {"Mo"}, {"Mo"}, {"Mo", "Nb"}]
    assert all(c.weight == 0.5 for c in confs)
    b2 = confs[4]
    a = 0.9 * (3.32 + 3.17) / 2
    np.testing.assert_allclose(b2.cell, np.eye(3) * a, rtol=1e-14)
    np.testing.assert_allclose(b2.positions[1], [a / 2] * 3, rtol=1e-14)
    sites = [vinet_energy(a ** 3 / 2, 3.32 ** 3 / 2, -10.2, 170.0, 4.0), vinet_energy(a ** 3 / 2, 3.17 ** 3 / 2, -10.9, 260.0, 4.0)]
    np.testing.assert_allclose(b2.site_energies, sites, rtol=1e-13)
    assert b2.energy == pytest.approx(sum(sites), rel=1e-13) and "B2 NbMo" in b2.source
    assert sites[0] > -10.2 and sites[1] > -10.9
    # their site rows (WeightedData: the data fix only the sum of an unlike pair's site energies)
    from compot.data.weighted import WeightedData
    from compot.trainer import FitSettings
    data = WeightedData(m, [], FitSettings(), priors=confs)
    k = [i for i, b in enumerate(data.batches) if b[-1] is b2][0]
    np.testing.assert_allclose(data.site_e0[k][-2:], sites)
    assert np.all(data.wSite[k][-2:] == 1.0) and np.all(data.wSite[k][:-2] == 0.0)     # σ = 1 eV
    assert len(eos_anchor_configurations(m, {"scales": [0.9, 1.1], "species": per, "b2": False})) == 4
    with pytest.raises(ValueError, match="b2: expected true or false"):
        eos_anchor_configurations(m, {"species": per, "b2": "yes"})
    assert np.cbrt(abs(np.linalg.det(confs[2].cell))) == pytest.approx(0.9 * 3.17, rel=1e-12)
    assert confs[3].energy / confs[3].n_atoms > -10.9 and confs[1].energy / confs[1].n_atoms > -10.2
    with pytest.raises(ValueError, match="several species"):
        eos_anchor_configurations(m, per["Nb"])
    with pytest.raises(ValueError, match=r"species: 'Ta' is not a species of the model \(Mo, Nb\)"):
        eos_anchor_configurations(m, {"species": {"Ta": per["Nb"]}})
    with pytest.raises(ValueError, match=r"species.Mo: missing bulk_modulus"):
        eos_anchor_configurations(m, {"species": {"Mo": {"a0": 3.17, "e0": -10.9}}})


def test_recipe_derives_every_elements_equation_of_state(data_dir):
    """The recipe on Mo and W data together: a prior per element, a0 from each one's data."""
    from compot.data import read_dataset
    from compot.recipe import prepare
    d = data_dir / "nbmotaw-mvl"
    train = read_dataset([d / "Mo_Elastic.json", d / "W_Elastic.json"], group_by="file")
    _, fit_cfg, rec = prepare({"expression": "G4 + ZBL"}, {"eos_anchor": {"weight": 0.1}}, train, ["Mo", "W"])
    per = fit_cfg["eos_anchor"]["species"]
    assert sorted(per) == ["Mo", "W"] and fit_cfg["eos_anchor"]["weight"] == 0.1
    assert per["Mo"]["a0"] == pytest.approx(3.17, abs=0.02) and per["W"]["a0"] == pytest.approx(3.19, abs=0.02)
    assert 200 < per["Mo"]["bulk_modulus"] < 300 < per["W"]["bulk_modulus"] < 350

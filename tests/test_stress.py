"""Stress in the loss: virial rows of the least-squares design, stress weights and the
stress term of the trainer's loss (compot.model, compot.data.weighted, compot.settings)."""

import numpy as np
import pytest

from compot.data import Configuration
from compot.data.weighted import GPA, WeightedData, stress_weights
from compot.errors import ConfigError
from compot.neighbours import VOIGT_PAIRS
from compot.settings import FitSettings
from compot.trainer import Trainer

from helpers import random_model, random_structure


def _voigt(W):
    return np.stack([W[:, a, b] for a, b in VOIGT_PAIRS], axis=1)


@pytest.mark.parametrize("expr,species", [("E[G3L2] + N[E[G3L2]] + ZBL(1.0, 2.5)", ("Nb",)),
                                          ("G3 + A[G3P2]", ("Nb",)),
                                          ("E[G3L2] + A[G3P2]", ("Nb", "Mo")),
                                          ("G3 * G2", ("Nb",))])
def test_virial_rows_times_theta_equal_the_virial(expr, species):
    """W = Jᵂ θ + W_rest for the linear blocks, also through the format v2 switch."""
    structures = [random_structure("triclinic", species=species, seed=s) for s in (1, 2)]
    model = random_model(expr, species=species, structures=structures, window=(2.3, 2.9))
    s = model.system(structures)
    names = model.blocks("linear", under=model.layout.nodes[0].children[0]) if "*" in expr \
        else model.blocks("linear")
    theta = model.vector(names)
    full = model.evaluate(s)
    model.set_vector(names, np.zeros_like(theta))
    d = model.linear_design(s, names, virial=True)
    model.set_vector(names, theta)
    assert d.JW.shape == (2, 6, theta.size)
    W = np.einsum("mkc,c->mk", d.JW, theta) + _voigt(d.pred.virial_mcc)
    np.testing.assert_allclose(W, _voigt(full.virial_mcc), rtol=1e-9, atol=1e-10 * np.abs(full.virial_mcc).max())
    JE, JF, rest = d                                                      # still unpacks as before
    np.testing.assert_allclose(JF @ theta + rest.forces_nc, full.forces_nc, rtol=1e-9,
                               atol=1e-10 * np.abs(full.forces_nc).max())


def _configs(truth, n=3, corrupt=None):
    out = []
    for k in range(n):
        at = random_structure("triclinic", seed=10 + k)
        p = truth.evaluate(truth.system([at]))
        sigma = _voigt(p.virial_mcc)[0] / at.get_volume()               # eV/Å³, ASE sign
        group = "bad" if corrupt is not None and k == 0 else "good"
        out.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                 cell=at.cell.array, pbc=at.pbc, energy=float(p.energy_m[0]),
                                 forces=p.forces_nc, stress=sigma, group=group, source=f"s:{k}"))
    return out


def test_stress_rows_reproduce_the_loss_and_the_exclusion():
    truth = random_model("E[G3L2] + G3", seed=5)
    configs = _configs(truth)
    configs[0].stress = configs[0].stress + 0.01                           # 1.6 GPa off: a nonzero residual
    model = random_model("E[G3L2] + G3", seed=2)
    settings = FitSettings(energy_weight=2.0, force_weight=0.5, stress_weight=0.3,
                           group_weights={"good": 2.0})
    data = WeightedData(model, configs, settings)
    assert data.fit_stress and data.n_rows == 3 + 3 * 3 * 16 + 6 * 3
    names = model.blocks("linear")
    A, b = data.least_squares_rows(model, names)
    r = A @ model.vector(names) - b
    loss = 0.0
    for k, sysm in enumerate(data.systems):
        p = model.evaluate(sysm)
        loss += np.sum(data.wE[k] * (p.energy_m - data.E[k]) ** 2)
        loss += np.sum(data.wF[k][:, None] * (p.forces_nc - data.F[k]) ** 2)
        sig = GPA * _voigt(p.virial_mcc) / sysm.volume_m[:, None]
        loss += np.sum(data.wS[k][:, None] * (sig - data.S[k]) ** 2)
    assert abs(r @ r - loss) <= 1e-9 * loss
    configs[0].group = "bad"
    w = stress_weights(configs, FitSettings(stress_weight=0.3, stress_exclude=["bad"]))
    np.testing.assert_array_equal(w, [0.0, 0.3, 0.3])
    assert not stress_weights(configs, FitSettings()).any()               # default: stress not fitted


def test_a_linear_fit_to_stress_alone_recovers_the_truth():
    """With energies and forces weighted 0, the stress rows alone fix the coefficients
    of a G3 model whose virial they determine."""
    truth = random_model("G3", seed=7)
    configs = _configs(truth, n=4)
    model = random_model("G3", seed=7)
    names = model.blocks("linear")
    c = [n for n in names if n.endswith(".c")]
    model.set_vector(c, np.zeros(model.vector(c).size))
    settings = FitSettings(energy_weight=0.0, force_weight=0.0, stress_weight=1.0, rcond=1e-14)
    trainer = Trainer(model, configs, settings)
    assert trainer.loss() > 1e-3
    trainer.solve(c)
    assert trainer.loss() < 1e-16
    np.testing.assert_allclose(model.vector(c), truth.vector(c), rtol=1e-7)


def test_stress_weight_is_checked():
    assert FitSettings.from_dict({"stress_weight": 0.5, "stress_exclude": ["Nb_Elastic"]}).stress_weight == 0.5
    with pytest.raises(ConfigError, match="stress_weight"):
        FitSettings.from_dict({"stress_weight": -1})


def test_evaluate_split_reports_stress_errors_in_gpa():
    """A model scored on data made by itself, with one stress component moved by 0.01 eV/Å³,
    has rmse_stress = 1.6022 GPa/√(6·3) overall and in its group."""
    from compot.evaluation import evaluate_split

    truth = random_model("E[G3L2] + G3", seed=5)
    configs = _configs(truth, corrupt=True)                                # configuration 0 in group "bad"
    configs[1].stress = configs[1].stress + np.array([0, 0, 0.01, 0, 0, 0])
    m, groups, _, _ = evaluate_split(truth, configs)
    assert m["n_stress"] == 3 and groups["good"]["n_stress"] == 2
    np.testing.assert_allclose(m["rmse_stress"], GPA * 0.01 / np.sqrt(18), rtol=1e-9)
    np.testing.assert_allclose(m["mae_stress"], GPA * 0.01 / 18, rtol=1e-9)
    np.testing.assert_allclose(groups["bad"]["rmse_stress"], 0.0, atol=1e-9)
    assert m["rmse_energy_per_atom"] < 1e-12


def test_offsets_remove_a_per_species_constant_but_not_the_rest():
    from compot.metrics import error_metrics

    rng = np.random.default_rng(0)
    configs, energies = [], []
    for k in range(5):
        at = random_structure("triclinic", species=("Nb", "Mo"), seed=20 + k)
        n_mo = at.get_chemical_symbols().count("Mo")
        configs.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                     cell=at.cell.array, pbc=at.pbc, energy=-10.0 * len(at),
                                     forces=np.zeros((len(at), 3)), group="g", source=f"o:{k}"))
        energies.append(-10.0 * len(at) + 0.3 * (len(at) - n_mo) - 1.2 * n_mo)   # offsets 0.3 (Nb), −1.2 (Mo) eV
    m = error_metrics(configs, energies, [np.zeros((c.n_atoms, 3)) for c in configs])
    assert m["rmse_energy_per_atom"] > 0.1 and m["rmse_energy_offset"] < 1e-12
    energies[2] += 0.16                                                            # not a per-species constant
    m = error_metrics(configs, energies, [np.zeros((c.n_atoms, 3)) for c in configs])
    assert 1e-3 < m["rmse_energy_offset"] < 0.16 / configs[2].n_atoms
    assert np.isnan(m["rmse_stress"]) and m["n_stress"] == 0


def test_stress_parity_plot_is_written_only_with_stresses(tmp_path):
    from compot.evaluation import evaluate_split
    from compot.plots import parity_plots

    truth = random_model("G3", seed=5)
    configs = _configs(truth, corrupt=True)
    *_, e, f, s = evaluate_split(truth, configs, return_stress=True)
    paths = parity_plots({"train": (configs, e, f, s)}, tmp_path, "G3")
    assert [p.name for p in paths] == ["parity_energy.png", "parity_force.png", "parity_stress.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert len(parity_plots({"train": (configs, e, f)}, tmp_path, "G3")) == 2


def _elastic_set(truth, shear_scale=1.0):
    """Strained 2-atom bcc cells (normal and simple-shear strains of 0.25–3 %) with 100 × the
    model's energies and stresses (a stiffer model, so that the shear ΔE is above the
    check's 0.5 meV/atom floor); shear stress components multiplied by ``shear_scale``."""
    from ase.build import bulk

    out = []
    steps = np.linspace(0.0, 0.03, 13)
    for kind in ("normal", "shear"):
        for d in steps:
            at = bulk("Nb", "bcc", a=3.3, cubic=True)
            F = np.eye(3)
            if kind == "normal":
                F[0, 0] += d
            else:
                F[0, 1] += d                                                   # simple shear: strain + rotation
            at.set_cell(at.cell.array @ F.T, scale_atoms=True)
            p = truth.evaluate(truth.system([at]))
            sigma = 100 * _voigt(p.virial_mcc)[0] / at.get_volume()
            sigma[3:] *= shear_scale
            out.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                     cell=at.cell.array, pbc=at.pbc, energy=100 * float(p.energy_m[0]),
                                     forces=100 * p.forces_nc, stress=sigma, group=f"El_{kind}",
                                     source=f"{kind}:{d}"))
    return out


def test_consistency_check_passes_a_model_and_flags_corrupted_shear_stress():
    """A model's own stresses agree with its energies to O(ε³) (relative mismatch < 1 %);
    shear stresses scaled by 1.5 are flagged, by name, and normal ones are not."""
    from compot.stress_check import disagreeing_groups, stress_energy_consistency

    truth = random_model("E[G3L2] + G3", seed=5)
    good = stress_energy_consistency(_elastic_set(truth))
    assert disagreeing_groups(good) == []
    assert good["groups"]["El_normal"]["normal"]["relative"] < 0.01
    assert good["groups"]["El_shear"]["shear"]["relative"] < 0.01
    assert abs(good["groups"]["El_shear"]["shear"]["slope"] - 1) < 0.01
    bad = stress_energy_consistency(_elastic_set(truth, shear_scale=1.5))
    assert disagreeing_groups(bad) == ["El_shear"] and bad["groups"]["El_shear"]["disagrees"] == ["shear"]
    assert abs(bad["groups"]["El_shear"]["shear"]["slope"] - 1 / 1.5) < 0.02


def test_a_cluster_has_no_stress_and_no_stress_rows():
    """A non-periodic configuration gets no predicted stress, no stress error and weight 0."""
    from compot.evaluation import predict
    from compot.metrics import error_metrics

    truth = random_model("G3", seed=5)
    at = random_structure("cluster", seed=1)
    p = truth.evaluate(truth.system([at]))
    c = Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions, cell=at.cell.array,
                      pbc=at.pbc, energy=float(p.energy_m[0]), forces=p.forces_nc, stress=np.ones(6),
                      group="cluster", source="cluster:0")
    e, f, s = predict(truth, [c], stress=True)
    assert s == [None]
    m = error_metrics([c], e, f, s)
    assert m["n_stress"] == 0 and np.isnan(m["rmse_stress"])
    assert stress_weights([c], FitSettings(stress_weight=1.0)).tolist() == [0.0]

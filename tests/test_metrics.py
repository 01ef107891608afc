"""Tests of compot.metrics on hand-computed examples (MODEL_SPEC §7)."""

import math
import re

import numpy as np
import pytest

from compot.data import Configuration, default_data_dir, read_configurations
from compot.errors import DatasetError
from compot.metrics import (
    METRIC_KEYS,
    error_metrics,
    force_angles,
    format_markdown_table,
    format_table,
    metrics_by_group,
)


def _config(forces, energy=0.0, group="g", k=0):
    forces = np.asarray(forces, dtype=float)
    n = len(forces)
    return Configuration(
        symbols=("Nb",) * n,
        positions=np.arange(3 * n, dtype=float).reshape(n, 3) * 2.0,
        cell=np.eye(3) * 100,
        pbc=False,
        energy=energy,
        forces=forces,
        group=group,
        source=f"test:{k}",
    )


def _rot_z(phi):
    c, s = math.cos(phi), math.sin(phi)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_keys_and_perfect_prediction():
    ref = [_config([[1.0, 2, 3], [0, 0, 0]], energy=-5.0)]
    m = error_metrics(ref, [-5.0], [ref[0].forces.copy()])
    assert tuple(m) == METRIC_KEYS
    assert m["n_configurations"] == 1 and m["n_atoms"] == 2
    for k in METRIC_KEYS[:6]:
        assert m[k] == 0.0


def test_energy_per_atom():
    # errors per atom: (1 eV)/2 atoms = 0.5 and (−3 eV)/3 atoms = −1 → RMSE sqrt((0.25+1)/2)
    refs = [_config(np.zeros((2, 3)), energy=-10.0), _config(np.zeros((3, 3)), energy=-20.0, k=1)]
    m = error_metrics(refs, [-11.0, -17.0], [np.zeros((2, 3)), np.zeros((3, 3))])
    assert m["rmse_energy_per_atom"] == pytest.approx(math.sqrt(0.625), rel=1e-15)
    assert m["mae_energy_per_atom"] == pytest.approx(0.75, rel=1e-15)
    assert m["n_atoms"] == 5
    assert math.isnan(m["rmse_force_angle"])  # all reference forces zero


def test_rotated_force_gives_angle():
    phi = 0.3
    f_ref = np.array([[1.0, 0.5, -0.2], [0.0, 2.0, 0.7]])
    f_pred = f_ref @ _rot_z(phi).T  # rotation about z by phi
    ref = [_config(f_ref)]
    m = error_metrics(ref, [0.0], [f_pred])
    # angle between v and R_z(phi) v depends on v's xy projection; compute exactly
    expected = []
    for v in f_ref:
        p = np.hypot(v[0], v[1])
        cos_t = (p**2 * math.cos(phi) + v[2] ** 2) / (v @ v)
        expected.append(math.acos(cos_t))
    assert m["rmse_force_angle"] == pytest.approx(
        math.sqrt(np.mean(np.square(expected))), rel=1e-10
    )
    assert m["rmse_force_amplitude"] == pytest.approx(0.0, abs=1e-15)  # rotation keeps |F|
    # forces in the xy plane: angle is exactly phi
    f_xy = np.array([[1.0, 0, 0], [0, -3.0, 0], [2.0, 2.0, 0]])
    m = error_metrics([_config(f_xy)], [0.0], [f_xy @ _rot_z(phi).T])
    assert m["rmse_force_angle"] == pytest.approx(phi, rel=1e-13)


def test_small_and_antiparallel_angles_are_accurate():
    a = np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]])
    b = np.array([[1.0, 1e-9, 0], [-1.0, 0, 0], [-1.0, 1e-9, 0]])
    theta = force_angles(a, b)
    assert theta[0] == pytest.approx(1e-9, rel=1e-12)  # arccos would give 0
    assert theta[1] == pytest.approx(math.pi, rel=1e-15)
    assert math.pi - theta[2] == pytest.approx(1e-9, rel=1e-6)


def test_zero_prediction_and_zero_reference():
    f_ref = np.array([[0.0, 0, 0], [0, 0, 2.0], [1.0, 0, 0]])
    f_pred = np.array([[5.0, 0, 0], [0, 0, 0], [1.0, 0, 0]])
    theta = force_angles(f_ref, f_pred)
    np.testing.assert_allclose(theta, [math.pi / 2, 0.0])  # zero ref skipped; zero pred → π/2
    m = error_metrics([_config(f_ref)], [0.0], [f_pred])
    assert m["rmse_force_angle"] == pytest.approx(math.pi / 2 / math.sqrt(2), rel=1e-15)


def test_amplitude_scaled_by_two():
    # F̂ = 2F: |F_i| − |F̂_i| = −|F_i|; component error = −F
    f_ref = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])  # norms 5 and 1
    m = error_metrics([_config(f_ref)], [0.0], [2 * f_ref])
    assert m["rmse_force_amplitude"] == pytest.approx(math.sqrt((25 + 1) / 2), rel=1e-15)
    assert m["rmse_force"] == pytest.approx(math.sqrt((9 + 16 + 1) / 6), rel=1e-15)
    assert m["mae_force"] == pytest.approx((3 + 4 + 1) / 6, rel=1e-15)
    assert m["rmse_force_angle"] == pytest.approx(0.0, abs=1e-15)


def test_by_group_and_errors():
    refs = [
        _config([[1.0, 0, 0]], energy=0.0, group="b", k=0),
        _config([[0, 1.0, 0]], energy=0.0, group="a", k=1),
        _config([[0, 0, 1.0]], energy=0.0, group="b", k=2),
    ]
    energies = [0.1, 0.2, 0.3]
    forces = [np.zeros((1, 3))] * 3
    by = metrics_by_group(refs, energies, forces)
    assert list(by) == ["a", "b"]
    assert by["a"]["rmse_energy_per_atom"] == pytest.approx(0.2)
    assert by["b"]["rmse_energy_per_atom"] == pytest.approx(math.sqrt((0.01 + 0.09) / 2))
    assert by["b"]["n_configurations"] == 2
    with pytest.raises(DatasetError, match=r"test:1\) have shape \(2, 3\); expected"):
        error_metrics(refs, energies, [np.zeros((1, 3)), np.zeros((2, 3)), np.zeros((1, 3))])
    with pytest.raises(DatasetError, match="3 reference configurations but 2 predicted energies"):
        metrics_by_group(refs, energies[:2], forces)


def test_tables():
    ref = [_config([[1.0, 0, 0]], energy=0.0)]
    m = error_metrics(ref, [0.0025], [np.array([[1.0, 0.1, 0]])])
    rows = {"all": m, "Nb_Elastic": dict(m, rmse_force_angle=float("nan"))}
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["set", "configs", "atoms"]
    assert "E RMSE [meV/atom]" in lines[0] and "angle RMSE [rad]" in lines[0]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule equally wide
    assert "2.500" in lines[2]  # 2.5 meV/atom
    assert "0.0997" in lines[2]  # atan(0.1) rad
    assert lines[3].rstrip().endswith("n/a")
    md = format_markdown_table(rows).splitlines()
    assert md[0].startswith("| set") and md[1].startswith("|:")
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 11 for line in md)  # 10 columns (σ only with stresses)
    assert "\\|F\\| RMSE" in md[0]  # pipes inside a cell are escaped


def test_metrics_on_real_elastic_data():
    path = default_data_dir() / "nb-mvl" / "Nb_Elastic.extxyz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    refs = read_configurations(path)
    # constant per-atom energy shift of 1 meV and zero forces (the references are zero)
    m = error_metrics(refs, [c.energy + 1e-3 * c.n_atoms for c in refs], [c.forces for c in refs])
    assert m["n_configurations"] == 121 and m["n_atoms"] == 242
    assert m["rmse_energy_per_atom"] == pytest.approx(1e-3, rel=1e-9)
    assert m["rmse_force"] == 0.0
    assert math.isnan(m["rmse_force_angle"])

"""Data from other sources: REF_-style keys (data.keys, --keys), VASP outputs in folders,
and compot eval --group-by."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write
from ase.units import GPa

from compot.cli import main
from compot.config import check_config
from compot.data import data_files, read_configurations, read_dataset
from compot.errors import ConfigError, DatasetError
from compot.pipeline import load_splits

F = np.array([[0.1, -0.2, 0.05], [-0.1, 0.2, -0.05]])
S33 = np.array([[0.01, 0.002, 0.003], [0.002, 0.02, 0.004], [0.003, 0.004, 0.03]])   # eV/Å³
VOIGT = [0.01, 0.02, 0.03, 0.004, 0.003, 0.002]
REF = {"energy": "REF_energy", "forces": "REF_forces", "stress": "REF_stress"}


def _ref_atoms(energy=-20.0, config_type=None):
    """Two-atom bcc Nb with its results under MACE-style REF_ keys only."""
    at = bulk("Nb", "bcc", a=3.3, cubic=True)
    at.info["REF_energy"] = energy
    at.info["REF_stress"] = S33
    at.arrays["REF_forces"] = F.copy()
    if config_type:
        at.info["config_type"] = config_type
    return at


def _ref_file(path, n=2, types=(None, None)):
    write(path, [_ref_atoms(-20.0 - 0.1 * k, types[k % len(types)]) for k in range(n)], format="extxyz")
    return path


# ------------------------------------------------------------------------- key mapping
def test_ref_keys_are_read_through_the_mapping(tmp_path):
    path = _ref_file(tmp_path / "ref.extxyz")
    configs = read_configurations(path, keys=REF)
    assert [c.energy for c in configs] == pytest.approx([-20.0, -20.1])
    assert np.allclose(configs[1].forces, F) and np.allclose(configs[1].stress, VOIGT)
    # a partial mapping keeps the other names; a missing stress is allowed
    partial = read_configurations(path, keys={"energy": "REF_energy", "forces": "REF_forces"})
    assert partial[0].stress is None and partial[0].energy == -20.0


def test_ref_keys_without_mapping_name_the_key_to_map(tmp_path):
    path = _ref_file(tmp_path / "ref.extxyz")
    with pytest.raises(DatasetError) as e:
        read_configurations(path)
    msg = str(e.value)
    assert f"{path}: record 0: missing energy" in msg and "REF_energy" in msg and "--keys energy=NAME" in msg
    with pytest.raises(DatasetError, match=r"record 0: missing forces \(key 'F'\); expected shape \(n_atoms, 3\) "
                                           r"= \(2, 3\).*REF_forces"):
        read_configurations(path, keys={"energy": "REF_energy", "forces": "F"})
    with pytest.raises(ConfigError, match="unknown quantity 'energies'; expected one of energy, forces, stress"):
        read_configurations(path, keys={"energies": "REF_energy"})


def test_data_keys_in_the_configuration(tmp_path):
    path = _ref_file(tmp_path / "ref.extxyz", n=4)
    cfg = check_config({"data": {"train": [str(path)], "keys": {"energy": "REF_energy", "forces": "REF_forces"},
                                 "validation_fraction": 0.25}}, "run.yaml")
    splits = load_splits(cfg, tmp_path)
    assert len(splits.train) == 3 and len(splits.validation) == 1 and splits.species == ["Nb"]
    with pytest.raises(ConfigError, match=r"run.yaml: data.keys: unknown key\(s\) energie; allowed: energy, "
                                          r"forces, stress"):
        check_config({"data": {"keys": {"energie": "REF_energy"}}}, "run.yaml")
    with pytest.raises(ConfigError, match=r"run.yaml: data.keys.forces: expected the name of a key"):
        check_config({"data": {"keys": {"forces": 3}}}, "run.yaml")


# ----------------------------------------------------------------------------- VASP
def _vasprun_xml(atoms, steps) -> str:
    """A small vasprun.xml in the layout ASE's reader parses (ASE writes none):
    ``steps`` = [(energy [eV], forces [eV/Å] (n, 3), stress [kbar, VASP sign] (3, 3))]."""
    def varray(name, rows):
        return (f'<varray name="{name}">'
                + "".join("<v>" + " ".join(f"{x:.10f}" for x in r) + "</v>" for r in rows) + "</varray>")

    def structure(attributes=""):
        return (f"<structure{attributes}><crystal>{varray('basis', atoms.cell.array)}</crystal>"
                f"{varray('positions', atoms.get_scaled_positions())}</structure>")

    def energy(e):
        return f'<energy><i name="e_fr_energy">{e:.8f}</i><i name="e_0_energy">{e:.8f}</i></energy>'

    species = "".join(f"<rc><c>{s}</c><c>1</c></rc>" for s in atoms.get_chemical_symbols())
    calculations = "".join(f"<calculation><scstep>{energy(e)}</scstep>{structure()}{varray('forces', f)}"
                           f"{varray('stress', s)}{energy(e)}</calculation>" for e, f, s in steps)
    initial = structure(' name="initialpos"')
    return ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling><kpoints><varray name="kpointlist">'
            '<v>0 0 0</v></varray><varray name="weights"><v>1</v></varray></kpoints>'
            f'<atominfo><array name="atoms"><set>{species}</set></array></atominfo>'
            f'{initial}{calculations}</modeling>\n')


def _vasp_run(folder, energies, d=None):
    folder.mkdir(parents=True)
    at = bulk("Nb", "bcc", a=3.3, cubic=True)
    if d is not None:
        at.positions[1] = at.positions[0] + [d, 0, 0]
    kbar = -S33 / (0.1 * GPa)
    (folder / "vasprun.xml").write_text(_vasprun_xml(at, [(e, F, kbar) for e in energies]))


def test_folders_pick_up_vasp_outputs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _ref_file(data / "ref.extxyz")
    _vasp_run(data / "run1", [-20.0, -20.5])
    _vasp_run(data / "run2", [-19.0])
    (data / "run2" / "OUTCAR").write_text("the same calculation as run2/vasprun.xml\n")
    assert [f.relative_to(data).as_posix() for f in data_files(data)] == [
        "ref.extxyz", "run1/vasprun.xml", "run2/vasprun.xml"]
    (data / "ref.extxyz").unlink()
    configs = read_dataset(data, group_by="file")
    assert [c.energy for c in configs] == [-20.0, -20.5, -19.0]
    assert [c.group for c in configs] == ["run1", "run1", "run2"]
    assert configs[2].source == f"{data / 'run2' / 'vasprun.xml'}:0"
    assert np.allclose(configs[0].forces, F) and np.allclose(configs[0].stress, VOIGT)


def test_vasp_outputs_are_validated_and_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad"
    _vasp_run(bad / "close", [-20.0], d=0.3)
    with pytest.raises(DatasetError, match=rf"{bad / 'close' / 'vasprun.xml'}: record 0: atoms 0 \(Nb\) and 1 "
                                           r"\(Nb\) are 0.3000 Å apart"):
        read_dataset(bad)
    broken = tmp_path / "broken" / "run"
    broken.mkdir(parents=True)
    (broken / "OUTCAR").write_text("not an OUTCAR\n")
    with pytest.raises(DatasetError, match=rf"{broken / 'OUTCAR'}: (cannot read configurations|no configurations)"):
        read_dataset(tmp_path / "broken")


# ------------------------------------------------------------------- command line
def test_eval_keys_and_group_by(tmp_path, repo_root, capsys):
    model = str(repo_root / "examples" / "nb" / "model.params")
    path = _ref_file(tmp_path / "mixed.extxyz", n=4, types=("bulk", "strained"))
    keys = ["--keys", "energy=REF_energy", "forces=REF_forces"]

    def run(*extra):
        capsys.readouterr()
        rc = main(["eval", model, str(path), "--json", *extra])
        out, err = capsys.readouterr()
        return rc, out, err

    rc, out, _ = run(*keys)
    assert rc == 0 and set(json.loads(out)["groups"]) == {"mixed"}
    rc, out, _ = run("--group-by", "config_type", *keys)
    groups = json.loads(out)["groups"]
    assert rc == 0 and set(groups) == {"bulk", "strained"} and groups["bulk"]["n_configurations"] == 2
    rc, _, err = run()
    assert rc == 2 and "missing energy" in err and "REF_energy" in err and "\n" not in err.strip()
    rc, _, err = run("--keys", "energy")
    assert rc == 2 and "--keys: expected QUANTITY=NAME" in err

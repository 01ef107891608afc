"""Tests of compot.data: reading the shared DFT data, validation errors, splitting."""

import json
import pathlib

import numpy as np
import pytest
from ase.units import GPa

from compot.data import (
    KBAR,
    Configuration,
    default_data_dir,
    default_peers_dir,
    read_configurations,
    read_dataset,
    train_validation_split,
)
from compot.errors import CompotError, ConfigError, DatasetError, SpeciesError

DATA = default_data_dir()
NB = DATA / "nb-mvl"
needs_data = pytest.mark.skipif(not NB.is_dir(), reason=f"shared data not found at {DATA}")

# counts from shared/data/README.md
NB_FILES = {"Nb_AIMD": (200, 10800), "Nb_Elastic": (121, 242), "Nb_Surface": (13, 304)}


@pytest.fixture(scope="module")
def nb_pairs():
    """{stem: (configs from extxyz, configs from raw JSON)} for the three Nb files."""
    if not NB.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return {
        stem: (
            read_configurations(NB / f"{stem}.extxyz"),
            read_configurations(NB / "raw" / f"{stem}.json"),
        )
        for stem in NB_FILES
    }


# --------------------------------------------------------------------------- real data


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPOT_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("COMPOT_DATA")
    repo = pathlib.Path(__file__).resolve().parents[1]
    assert default_data_dir() == repo.parent / "shared" / "data"


def test_default_peers_dir(monkeypatch, tmp_path):
    """$COMPOT_PEERS, else peers next to the data directory ($COMPOT_DATA/../peers)."""
    monkeypatch.delenv("COMPOT_PEERS", raising=False)
    monkeypatch.setenv("COMPOT_DATA", str(tmp_path / "data"))
    assert default_peers_dir() == tmp_path / "peers"
    monkeypatch.setenv("COMPOT_PEERS", str(tmp_path / "p"))
    assert default_peers_dir() == tmp_path / "p"
    monkeypatch.delenv("COMPOT_PEERS")
    monkeypatch.delenv("COMPOT_DATA")
    repo = pathlib.Path(__file__).resolve().parents[1]
    assert default_peers_dir() == repo.parent / "shared" / "peers"


@needs_data
@pytest.mark.parametrize("stem", sorted(NB_FILES))
def test_nb_counts(nb_pairs, stem):
    n_conf, n_atoms = NB_FILES[stem]
    for configs in nb_pairs[stem]:
        assert len(configs) == n_conf
        assert sum(c.n_atoms for c in configs) == n_atoms
        assert {c.group for c in configs} == {"Nb"}  # config_type / JSON "group"
        assert all(c.stress is not None and c.stress.shape == (6,) for c in configs)


@needs_data
def test_nb_first_records(nb_pairs):
    xyz, js = nb_pairs["Nb_Elastic"]
    c = xyz[0]
    assert c.symbols == ("Nb", "Nb")
    assert c.energy == pytest.approx(-20.18734196, abs=1e-12)
    np.testing.assert_allclose(c.cell, np.diag([3.289339, 3.322565, 3.322565]))
    assert c.pbc.tolist() == [True, True, True]
    np.testing.assert_array_equal(c.forces, 0.0)  # Elastic forces vanish by symmetry
    # raw (22.0555298, 14.32592893, 14.32592893) kbar, compressive positive
    np.testing.assert_allclose(
        c.stress,
        [-0.013765979052289015, -0.008941541615334999, -0.008941541615334999, 0, 0, 0],
        rtol=1e-12,
    )
    assert c.source.endswith("Nb_Elastic.extxyz:0")
    assert js[5].source.endswith("Nb_Elastic.json:5")
    aimd = nb_pairs["Nb_AIMD"][0]
    assert all(a.n_atoms == 54 for a in aimd)


@needs_data
@pytest.mark.parametrize("stem", sorted(NB_FILES))
def test_json_and_extxyz_agree(nb_pairs, stem):
    xyz, js = nb_pairs[stem]
    for a, b in zip(xyz, js, strict=True):
        assert a.symbols == b.symbols
        np.testing.assert_allclose(a.cell, b.cell, atol=0)
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)  # extxyz has 8 decimals
        assert a.energy == b.energy
        np.testing.assert_array_equal(a.forces, b.forces)
        # the stress conversion kbar/(xx yy zz xy yz xz)/compressive → ASE is exact
        np.testing.assert_allclose(a.stress, b.stress, rtol=1e-14, atol=1e-18)


@needs_data
def test_json_stress_conversion_sheared(nb_pairs):
    """A sheared Elastic record: the xy shear moves from slot 3 (VASP) to slot 5 (Voigt)."""
    raw = json.loads((NB / "raw" / "Nb_Elastic.json").read_text())
    xyz, js = nb_pairs["Nb_Elastic"]
    m = next(k for k, r in enumerate(raw) if abs(r["outputs"]["stress"][3]) > 1.0)
    s = np.array(raw[m]["outputs"]["stress"])
    expected = -0.1 * GPa * np.array([s[0], s[1], s[2], s[4], s[5], s[3]])
    np.testing.assert_allclose(js[m].stress, expected, rtol=1e-14)
    np.testing.assert_allclose(xyz[m].stress, expected, rtol=1e-14)
    assert KBAR == pytest.approx(1 / 1602.1766, rel=1e-6)


@needs_data
def test_read_dataset_directory_and_index():
    configs = read_dataset(NB)  # sorted: AIMD, Elastic, Surface
    assert len(configs) == 200 + 121 + 13
    assert configs[0].source.endswith("Nb_AIMD.extxyz:0")
    assert configs[-1].source.endswith("Nb_Surface.extxyz:12")
    sub = read_configurations(NB / "Nb_Surface.extxyz", index="2:5", group="surface")
    assert [c.source.rsplit(":", 1)[1] for c in sub] == ["2", "3", "4"]
    assert {c.group for c in sub} == {"surface"}
    last = read_configurations(NB / "raw" / "Nb_Surface.json", index=-1)
    assert len(last) == 1 and last[0].source.endswith(":12")


@needs_data
def test_real_species_filter():
    read_configurations(NB / "Nb_Elastic.extxyz", species=["Nb", "Mo"])
    with pytest.raises(SpeciesError, match=r"Nb_Elastic\.extxyz: record 0: species Nb"):
        read_configurations(NB / "Nb_Elastic.extxyz", species=["Mo"])


def test_roundtrip_atoms():
    c = Configuration(
        symbols=("Nb", "Mo"),
        positions=[[0, 0, 0], [1.5, 1.5, 1.5]],
        cell=np.eye(3) * 3.0,
        pbc=True,
        energy=-1.0,
        forces=[[0.1, 0, 0], [-0.1, 0, 0]],
        stress=np.diag([1.0, 2.0, 3.0]),
        source="x:0",
    )
    assert c.n_atoms == 2 and c.group == "default"
    np.testing.assert_array_equal(c.stress, [1, 2, 3, 0, 0, 0])
    atoms = c.to_atoms()
    assert atoms.calc is None
    assert atoms.get_chemical_symbols() == ["Nb", "Mo"]
    assert atoms.pbc.all() and np.allclose(atoms.cell.array, c.cell)
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=c.forces, stress=c.stress)
    back = Configuration.from_atoms(atoms, "dir/foo.extxyz:3")
    assert back.group == "foo" and back.energy == -1.0
    np.testing.assert_array_equal(back.forces, c.forces)
    np.testing.assert_array_equal(back.stress, c.stress)


# --------------------------------------------------------------------------- bad input

GOOD_HEADER = 'Lattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3:forces:R:3 pbc="T T T"'


def _write_extxyz(path, frames):
    """frames: list of (comment, lines)."""
    text = ""
    for comment, lines in frames:
        text += f"{len(lines)}\n{comment}\n" + "\n".join(lines) + "\n"
    path.write_text(text)
    return path


def _good_frame():
    return (
        GOOD_HEADER + " energy=-2.0",
        ["Nb 0 0 0 0.1 0 0", "Nb 2 2 2 -0.1 0 0"],
    )


def _check(exc_info, name, record):
    msg = str(exc_info.value)
    assert "\n" not in msg
    assert name in msg
    assert f"record {record}" in msg
    assert isinstance(exc_info.value, CompotError) and isinstance(exc_info.value, ValueError)
    return msg


def test_missing_energy(tmp_path):
    f = _write_extxyz(
        tmp_path / "noenergy.extxyz", [_good_frame(), (GOOD_HEADER, _good_frame()[1])]
    )
    with pytest.raises(DatasetError) as e:
        read_configurations(f)
    assert "missing energy" in _check(e, "noenergy.extxyz", 1)


def test_wrong_shape_forces_extxyz(tmp_path):
    header = 'Lattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3:forces:R:2 energy=-1'
    f = _write_extxyz(tmp_path / "shape.extxyz", [(header, ["Nb 0 0 0 0 0", "Nb 2 2 2 0 0"])])
    with pytest.raises(DatasetError) as e:
        read_configurations(f)
    msg = _check(e, "shape.extxyz", 0)
    assert "forces" in msg and "(2, 3)" in msg and "(2, 2)" in msg


def test_nan_force(tmp_path):
    frame = (GOOD_HEADER + " energy=-2.0", ["Nb 0 0 0 0.1 0 0", "Nb 2 2 2 nan 0 0"])
    f = _write_extxyz(tmp_path / "nan.extxyz", [_good_frame(), _good_frame(), frame])
    with pytest.raises(DatasetError) as e:
        read_configurations(f)
    msg = _check(e, "nan.extxyz", 2)
    assert "NaN in forces at atom(s) 1" in msg


def test_inf_energy(tmp_path):
    frame = (GOOD_HEADER + " energy=inf", _good_frame()[1])
    f = _write_extxyz(tmp_path / "inf.extxyz", [frame])
    with pytest.raises(DatasetError) as e:
        read_configurations(f)
    assert "energy is inf" in _check(e, "inf.extxyz", 0)


def test_unsupported_species(tmp_path):
    frame = (GOOD_HEADER + " energy=-2.0", ["Nb 0 0 0 0.1 0 0", "W 2 2 2 -0.1 0 0"])
    f = _write_extxyz(tmp_path / "species.extxyz", [_good_frame(), frame])
    read_configurations(f)  # fine without a species list
    with pytest.raises(SpeciesError) as e:
        read_configurations(f, species=["Nb", "Mo"])
    msg = _check(e, "species.extxyz", 1)
    assert "species W (atom(s) 1)" in msg and "['Mo', 'Nb']" in msg


@pytest.mark.parametrize("name,atoms,where", [
    ("close", ["Nb 0 0 0 0.1 0 0", "Nb 0 0 0.3 -0.1 0 0"], "atoms 0 (Nb) and 1 (Nb)"),
    ("pbc", ["Nb 0.1 2 2 0 0 0", "Nb 3.8 2 2 0 0 0"], "periodic image (-1, 0, 0)"),   # across the boundary
])
def test_atoms_too_close(tmp_path, name, atoms, where):
    f = _write_extxyz(tmp_path / f"{name}.extxyz", [(GOOD_HEADER + " energy=-2.0", atoms)])
    with pytest.raises(DatasetError) as e:
        read_configurations(f)
    msg = _check(e, f"{name}.extxyz", 0)
    assert where in msg and "0.3000 Å" in msg
    assert len(read_configurations(f, min_distance=0.2)) == 1
    assert len(read_configurations(f, min_distance=None)) == 1


def test_nonexistent_and_unreadable(tmp_path):
    with pytest.raises(DatasetError) as e:
        read_configurations(tmp_path / "missing.extxyz")
    msg = str(e.value)
    assert "missing.extxyz" in msg and "No such file" in msg
    bad = tmp_path / "garbage.extxyz"
    bad.write_text("garbage\nfoo\n")
    with pytest.raises(
        DatasetError, match=r"garbage\.extxyz: cannot read configurations; XYZError"
    ):
        read_configurations(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"empty: directory has no data files; expected \*\.extxyz, \*\.xyz, or VASP OUTCAR"):
        read_dataset(empty)


def _mvl_record(**outputs):
    rec = {
        "group": "Nb",
        "tags": ["Strain"],
        "structure": {
            "lattice": {"matrix": [[3.3, 0, 0], [0, 3.3, 0], [0, 0, 3.3]]},
            "sites": [
                {"species": [{"element": "Nb", "occu": 1}], "abc": [0, 0, 0]},
                {"species": [{"element": "Nb", "occu": 1}], "abc": [0.5, 0.5, 0.5]},
            ],
        },
        "outputs": {
            "energy": -20.0,
            "forces": [[0, 0, 0], [0, 0, 0]],
            "stress": [10.0, 20.0, 30.0, 1.0, 2.0, 3.0],
        },
    }
    rec["outputs"].update(outputs)
    return rec


def test_mvl_json_parsing_and_errors(tmp_path):
    good = tmp_path / "mvl.json"
    good.write_text(json.dumps([_mvl_record()]))
    (c,) = read_configurations(good)
    np.testing.assert_allclose(c.positions[1], [1.65, 1.65, 1.65])  # from abc
    np.testing.assert_allclose(c.stress, -np.array([10, 20, 30, 2, 3, 1]) * 0.1 * GPa)
    assert c.group == "Nb"

    bad = tmp_path / "mvlbad.json"
    bad.write_text(json.dumps([_mvl_record(), _mvl_record(forces=[[0, 0, 0]])]))
    with pytest.raises(DatasetError) as e:
        read_configurations(bad)
    msg = _check(e, "mvlbad.json", 1)
    assert "expected (n_atoms, 3) = (2, 3), found (1, 3)" in msg

    bad.write_text(json.dumps([_mvl_record(energy=None)]))
    with pytest.raises(DatasetError) as e:
        read_configurations(bad)
    assert "missing energy" in _check(e, "mvlbad.json", 0)


# --------------------------------------------------------------------------- split


def _fake(group, k):
    return Configuration(
        symbols=("Nb",),
        positions=[[0.0, 0, 0]],
        cell=np.eye(3) * 3,
        pbc=True,
        energy=float(k),
        forces=[[0.0, 0, 0]],
        group=group,
        source=f"fake:{k}",
    )


def test_split_determinism_and_stratification():
    configs = [_fake("a", k) for k in range(20)] + [_fake("b", 20 + k) for k in range(10)]
    configs += [_fake("c", 30), _fake("c", 31), _fake("d", 32)]
    t1, v1 = train_validation_split(configs, 0.3, seed=7)
    t2, v2 = train_validation_split(configs, 0.3, seed=7)
    assert [c.source for c in v1] == [c.source for c in v2]
    assert [c.source for c in t1] == [c.source for c in t2]
    assert len(t1) + len(v1) == len(configs)
    assert {c.source for c in t1}.isdisjoint(c.source for c in v1)
    count = lambda cs, g: sum(c.group == g for c in cs)  # noqa: E731
    assert (count(v1, "a"), count(v1, "b"), count(v1, "c"), count(v1, "d")) == (6, 3, 1, 0)
    assert count(t1, "c") == 1 and count(t1, "d") == 1  # every group keeps a training config
    # original order is preserved inside each part
    assert [c.energy for c in v1] == sorted(c.energy for c in v1)
    _, v3 = train_validation_split(configs, 0.3, seed=8)
    assert [c.source for c in v3] != [c.source for c in v1]
    # nested: a larger fraction with the same seed contains the smaller one
    _, v4 = train_validation_split(configs, 0.5, seed=7)
    assert {c.source for c in v1} <= {c.source for c in v4}
    # a huge fraction still leaves one per group in training
    t5, _ = train_validation_split(configs, 0.99, seed=1)
    assert {c.group for c in t5} == {"a", "b", "c", "d"}


def _fake_file(group, path, k):
    c = _fake(group, k)
    return Configuration(symbols=c.symbols, positions=c.positions, cell=c.cell, pbc=c.pbc, energy=c.energy,
                         forces=c.forces, group=group, source=f"{path}:{k}")


def test_split_by_block_holds_out_a_contiguous_block_or_whole_files():
    """data.validation: by_block (issue 13): one contiguous block per single-file group,
    whole files of a group of several files, every group keeps training data."""
    configs = [_fake_file("aimd", "run.xyz", k) for k in range(20)]
    configs += [_fake_file("md", f"traj{t}.xyz", 20 + 5 * t + k) for t in range(4) for k in range(5)]
    configs += [_fake_file("one", "one.xyz", 40)]
    t1, v1 = train_validation_split(configs, 0.25, seed=3, mode="by_block")
    t2, v2 = train_validation_split(configs, 0.25, seed=3, mode="by_block")
    assert [c.source for c in v1] == [c.source for c in v2] and len(t1) + len(v1) == len(configs)
    block = [int(c.source.rpartition(":")[2]) for c in v1 if c.group == "aimd"]
    assert len(block) == 5 and block == list(range(block[0], block[0] + 5))    # contiguous
    held = {c.source.rpartition(":")[0] for c in v1 if c.group == "md"}
    assert len(held) == 1 and sum(c.group == "md" for c in v1) == 5             # one whole trajectory
    assert not any(c.source.startswith(h) for c in t1 for h in held)
    assert any(c.group == "one" for c in t1) and not any(c.group == "one" for c in v1)
    starts = {min(int(c.source.rpartition(":")[2]) for c in train_validation_split(
        configs, 0.25, seed=s, mode="by_block")[1] if c.group == "aimd") for s in range(8)}
    assert len(starts) > 1                                                      # the start is seeded
    with pytest.raises(ConfigError, match="by_block"):
        train_validation_split(configs, 0.25, seed=0, mode="blocks")


def test_split_zero_and_bad_fraction():
    configs = [_fake("a", k) for k in range(5)]
    train, val = train_validation_split(configs, 0.0, seed=0)
    assert val == [] and train == configs
    with pytest.raises(
        ConfigError, match=r"validation_fraction is 1.0; expected a value in \[0, 1\)"
    ):
        train_validation_split(configs, 1.0, seed=0)


def test_missing_forces(tmp_path):
    header = 'Lattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3 energy=-1 pbc="T T T"'
    f = _write_extxyz(tmp_path / "noforces.extxyz", [(header, ["Nb 0 0 0", "Nb 2 2 2"])])
    with pytest.raises(DatasetError) as e:
        read_configurations(f)
    assert "missing forces; expected shape (n_atoms, 3) = (2, 3)" in _check(e, "noforces.extxyz", 0)

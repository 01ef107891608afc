"""Tests of compot.data: reading the shared DFT data, validation errors, splitting."""

import json
import pathlib

import numpy as np
import pytest
from ase.units import GPa

from compot.data import (
    KBAR,
    Configuration,
    data_files,
    default_data_dir,
    default_peers_dir,
    read_configurations,
    read_dataset,
    train_validation_split,
)
from compot.data.split import detect_runs
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
    with pytest.raises(DatasetError, match=r"empty: directory has no data files; expected \*\.extxyz, \*\.xyz, MVL \*\.json, or VASP OUTCAR"):
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

    # a folder of MVL JSON files stands for them (top level only, by name, grouped by file)
    folder = tmp_path / "mvl_folder"
    (folder / "raw").mkdir(parents=True)
    for name in ("b_AIMD.json", "a_Elastic.json", "raw/c_copy.json"):
        (folder / name).write_text(json.dumps([_mvl_record()] * (2 if "AIMD" in name else 1)))
    assert [g.name for g in data_files(folder)] == ["a_Elastic.json", "b_AIMD.json"]
    assert [c.group for c in read_dataset(folder, group_by="file")] == ["a_Elastic", "b_AIMD", "b_AIMD"]

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


def _snap(desc, k, cell=3.0, n_atoms=1, path="run.xyz"):
    """A configuration of one file with a description (record index k)."""
    return Configuration(symbols=("Nb",) * n_atoms, positions=[[0.0, 0, 0.9 * i] for i in range(n_atoms)],
                         cell=np.eye(3) * cell, pbc=True, energy=float(k), forces=np.zeros((n_atoms, 3)),
                         group="aimd", source=f"{path}:{k}", description=desc)


def _indices(configs):
    return [int(c.source.rpartition(":")[2]) for c in configs]


def test_detect_runs_counter_temperature_cell_atoms():
    """A run continues while only the snapshot counter changes; a temperature in the
    text, the cell or the atom count starts another (issue 13)."""
    d = "Snapshot {} of 40 of AIMD NVT simulation at {} K"
    configs = [_snap(d.format(s, 300), k) for k, s in enumerate([1, 2, 4, 5])]            # 0-3
    configs += [_snap(d.format(s, 3000), 4 + k) for k, s in enumerate([1, 2, 3])]          # 4-6
    configs += [_snap(d.format(s, 3000), 7 + k, cell=3.3) for k, s in enumerate([1, 2])]   # 7-8: cell
    configs += [_snap(d.format(s, 3000), 9 + k, n_atoms=2) for k, s in enumerate([3, 4])]  # 9-10: atoms
    configs += [_snap("", 11), _snap("", 12)]                                              # 11-12
    assert detect_runs(configs) == [[0, 1, 2, 3], [4, 5, 6], [7, 8], [9, 10], [11, 12]]
    # the counter is found where it is: the number that alone changes most often
    md = [_snap(f"Md {{'Md': '{t}-{s}'}}", k) for k, (t, s) in
          enumerate([(300, 37), (300, 38), (3000, 16), (3000, 12), (300, 5), (1000, 2), (1000, 7)])]
    runs = detect_runs(md)
    assert runs == [[4, 0, 1], [3, 2], [5, 6]]      # counter order: a window in time
    # every configuration different (strained cells): runs of one
    strained = [_snap(f"strain {0.01 * k:.4f}", k, cell=3 + 0.01 * k) for k in range(5)]
    assert detect_runs(strained) == [[k] for k in range(5)]


def _runs_file(lengths, shuffle_seed=None):
    """One file, one group, runs of the given lengths at rising temperatures."""
    configs, k = [], 0
    for r, length in enumerate(lengths):
        counters = list(range(1, length + 1))
        if shuffle_seed is not None:
            counters = list(np.random.default_rng(shuffle_seed + r).permutation(counters) + 0)
        for s in counters:
            configs.append(_snap(f"Snapshot {s} of {length} at {300 * 10 ** r} K", k))
            k += 1
    return configs


def test_split_by_block_one_block_per_run():
    """by_block on one file of several runs: one contiguous block per run, lengths
    proportional to the runs' (largest remainder), seeded starts, deterministic."""
    lengths = [35, 37, 36]                       # mo-mlearn AIMD-NVT: 11 held out as 3 + 4 + 4
    configs = _runs_file(lengths)
    bounds = np.cumsum([0] + lengths)
    t1, v1 = train_validation_split(configs, 0.1, seed=0, mode="by_block")
    t2, v2 = train_validation_split(configs, 0.1, seed=0, mode="by_block")
    assert _indices(v1) == _indices(v2) and len(t1) + len(v1) == len(configs) == 108
    held = _indices(v1)
    assert len(held) == 11
    per_run = [[i for i in held if bounds[r] <= i < bounds[r + 1]] for r in range(3)]
    assert [len(p) for p in per_run] == [3, 4, 4]
    for p in per_run:
        assert p == list(range(p[0], p[0] + len(p)))                      # contiguous in its run
    # exact proportions need no rounding; a larger fraction stays proportional
    _, v = train_validation_split(_runs_file([10, 20, 30]), 0.1, seed=1, mode="by_block")
    assert [sum(b <= i < b + n for i in _indices(v)) for b, n in [(0, 10), (10, 20), (30, 30)]] == [1, 2, 3]
    _, v = train_validation_split(configs, 0.5, seed=2, mode="by_block")
    counts = tuple(sum(bounds[r] <= i < bounds[r + 1] for i in _indices(v)) for r in range(3))
    assert len(v) == 54 and counts in {(18, 18, 18), (17, 19, 18)}    # 17.5, 18.5, 18: one tie
    # the starts are seeded
    starts = {tuple(min(p) for p in ([i for i in _indices(train_validation_split(
        configs, 0.1, seed=s, mode="by_block")[1]) if bounds[r] <= i < bounds[r + 1]] for r in range(3)))
        for s in range(6)}
    assert len(starts) > 1
    # snapshots listed out of order: the block is a window of the counter, not of the file
    shuffled = _runs_file([20, 20], shuffle_seed=5)
    _, v = train_validation_split(shuffled, 0.2, seed=0, mode="by_block")
    for r in range(2):
        counters = sorted(int(c.description.split()[1]) for c in v if f"at {300 * 10 ** r} K" in c.description)
        assert len(counters) == 4 and counters == list(range(counters[0], counters[0] + 4))


def test_split_by_block_one_run_is_the_old_block():
    """A group of one file with one run (or no runs recognised) holds out the one
    contiguous block of the split before runs were detected, for every seed."""
    for configs in (_runs_file([30]), [_snap("", k) for k in range(30)],
                    [_snap(f"strain {k}", k, cell=3 + 0.01 * k) for k in range(30)]):
        for seed in range(5):
            rng = np.random.default_rng(seed)
            rng.permutation(30)
            start = int(rng.integers(0, 30 - 3 + 1))
            _, v = train_validation_split(configs, 0.1, seed=seed, mode="by_block")
            assert _indices(v) == list(range(start, start + 3))


def test_description_is_read(tmp_path):
    """The record's text metadata is kept: extxyz info strings/integers, MVL notes and tags."""
    header = GOOD_HEADER + ' energy=-2.0 config_type=AIMD source_desc="Snapshot 7 of 40 at 300 K" step=12 temp=300.5'
    f = _write_extxyz(tmp_path / "d.extxyz", [(header, _good_frame()[1])])
    (c,) = read_configurations(f)
    assert c.description == "config_type=AIMD; source_desc=Snapshot 7 of 40 at 300 K; step=12"
    record = _mvl_record()
    record.update(group="Nb", tags=["Md"], notes={"Md": "300-37"}, _id="5bcf9f")
    path = tmp_path / "d.json"
    path.write_text(json.dumps([record]))
    (c,) = read_configurations(path)
    assert c.description == "group=Nb; notes={'Md': '300-37'}; tags=['Md']"


@needs_data
def test_detect_runs_on_the_shared_data():
    """Runs of the real AIMD groups: mo-mlearn AIMD-NVT 300/3000/6000 K, Vacancy
    300/6000 K; nb-mvl Nb_AIMD 300/1000/3000 K at 100 % volume, 300 K at 90 and 110 %."""
    groups = {}
    for c in read_dataset(DATA / "mo-mlearn", group_by="config_type"):
        groups.setdefault(c.group, []).append(c)
    assert [len(r) for r in detect_runs(groups["AIMD-NVT"])] == [35, 37, 36]
    assert [len(r) for r in detect_runs(groups["Vacancy"])] == [10, 11]
    assert [len(r) for r in detect_runs(read_configurations(NB / "Nb_AIMD.extxyz"))] == [40] * 5


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

"""The C core as a Python library and ASE calculator (compot.ccore) against the Python model."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from compot.calculator import CompotCalculator
from compot.ccore import CCoreCalculator, CCoreError, CoreModel, core_sources, library_path, load_library
from compot.model import Model

from helpers import random_model


def _random_model(expr, species, atoms, seed):
    return random_model(expr, species=tuple(species), cutoff=4.5, seed=seed, structures=[atoms])


@pytest.mark.parametrize("mode", ["ghosts", "exchange"])
@pytest.mark.parametrize("expr", ["E[G3L2] + N[E[G3L2]] + ZBL(1.6, 2.4)", "G3 + A[G3P2]"])
def test_calculator_matches_python(expr, mode):
    rng = np.random.default_rng(0)
    cell = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 3))
    cell.positions += rng.uniform(-0.1, 0.1, cell.positions.shape)
    cell.set_chemical_symbols(rng.choice(["Mo", "Nb"], len(cell)))
    m = _random_model(expr, ["Mo", "Nb"], cell, 1)
    slab = cell.copy()
    slab.pbc = (True, True, False)                  # partly periodic
    dimer = Atoms("MoNb", positions=[[0, 0, 0], [2.4, 0.3, 0.1]])
    for at in (cell, slab, dimer):
        ref = at.copy()
        ref.calc = CompotCalculator(m)
        c = at.copy()
        c.calc = CCoreCalculator(m, mode=mode)
        e_ref = ref.get_potential_energy()
        assert c.get_potential_energy() == pytest.approx(e_ref, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(c.get_forces(), ref.get_forces(), rtol=0, atol=1e-11)
        np.testing.assert_allclose(c.get_potential_energies(), ref.get_potential_energies(), atol=1e-11)
        if at.pbc.all():
            np.testing.assert_allclose(c.get_stress(), ref.get_stress(), atol=1e-12)


def test_library_is_cached_and_rebuilt_when_a_source_changes(tmp_path, monkeypatch):
    built = library_path()
    load_library()                                   # builds into the user's cache once
    monkeypatch.setenv("COMPOT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / built.name).write_bytes(built.read_bytes())   # same sources, same name: no rebuild
    src = tmp_path / "kd"
    src.mkdir()
    for p in core_sources():
        (src / p.name).write_bytes(p.read_bytes())
    for p in core_sources()[0].parent.glob("compot_*.h"):
        (src / p.name).write_bytes(p.read_bytes())
    path = library_path(src)
    so = load_library(src)
    assert path.exists() and path.parent == tmp_path / "cache"
    assert load_library(src) is so
    assert library_path(src, cc="cc -g") != path                  # the compiler command counts
    f = src / core_sources(src)[0].name
    f.write_text(f.read_text() + "\n/* changed */\n")
    assert library_path(src) != path and not library_path(src).exists()   # rebuilt on next load
    core = CoreModel(Model("G2 + ZBL(1.6, 2.4)", ("Nb",), 4.5), library=so)
    assert core.species == ("Nb",) and core.cutoff == 4.5


def test_errors_name_the_compiler_and_the_core_message(tmp_path, monkeypatch):
    with monkeypatch.context() as mp:
        mp.setenv("COMPOT_CACHE", str(tmp_path / "empty"))
        with pytest.raises(CCoreError, match="compiler 'no-such-cc-x' not found.*-std=c99"):
            load_library(cc="no-such-cc-x")
    bad = tmp_path / "bad.params"
    bad.write_text("compot-params 1\nexpression G2\n")
    with pytest.raises(CCoreError, match="bad.params"):
        CoreModel(str(bad))
    core = CoreModel(Model("G2", ("Nb",), 4.5))
    with pytest.raises(CCoreError, match="species W is not in the model"):
        core.evaluate(Atoms("W2", positions=[[0, 0, 0], [2.5, 0, 0]]))

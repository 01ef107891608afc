"""The cross-host reference suite (``tests/reference/*.yaml``) replayed by the
Python reference and by the C core.

Each file holds a model, its structures and the energy, site energies, forces
and virial the Python reference gave when ``tests/reference/generate.py`` wrote
it. Here:

* the suite itself: it covers every term family (G, C, E, N, A, ZBL, sums,
  products), format v1 and v2, and the structures the hosts must handle (a
  periodic cell with a pair inside the inner window, a cell where the
  extrapolation grade acts, two species, a non-orthogonal cell, a cell smaller
  than r_c, a cluster);
* the Python reference (``compot.io.read_model`` + ``Model.evaluate``) still
  gives those numbers, to 1e-12 relative;
* the C core (``compot.ccore``, ctypes) gives them with ghost neighbour lists
  (the KIM way) and with half lists and an exchange (the LAMMPS way), to 1e-12
  relative (C vs Python with the grade off, as ``tests/c/crosscheck_python.py``).

Where the extrapolation grade acts, the reference moves by more than 1e-12
under a rigid translation (the grade amplifies the rounding of the features):
there every host is held to 10 × that floor, recorded in the file.
The same files are replayed through kimpy and LAMMPS ``kim`` (tests/test_kim.py)
and through the LAMMPS plugin (tests/test_plugin.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from compot.io import read_model

from helpers import ReferenceCase, check_against_reference, reference_files

CASES = reference_files()
IDS = [p.stem for p in CASES]
RTOL = 1e-12


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case(request) -> ReferenceCase:
    return ReferenceCase(request.param)


def test_the_suite_covers_every_term_family_and_structure_kind():
    cases = [ReferenceCase(p) for p in CASES]
    assert len(cases) >= 8
    covered = set().union(*(c.covers for c in cases))
    need = {"G", "C", "E", "N", "A", "EA", "ZBL", "sum", "product", "two species", "v1", "v2 window", "v2 grade",
            "v3 bound", "v4 coordination"}
    assert need <= covered, f"not covered: {need - covered}"
    assert {c.version for c in cases} == {1, 2, 3, 4}
    # the expression says what the covers list claims
    for c in cases:
        for family, token in (("E", "E["), ("N", "N["), ("A", "A["), ("EA", "E[A["), ("ZBL", "ZBL("),
                              ("product", "*")):
            assert (family in c.covers) == (token in c.expression), (c.name, family)
    structures = [(c, s) for c in cases for s in c.structures]
    assert all(len(s["atoms"]) <= 60 for _, s in structures)
    kinds = {s["name"] for _, s in structures}
    assert {"bulk_close_pair", "triclinic", "small", "cluster"} <= kinds
    assert any(not s["atoms"].pbc.any() for _, s in structures)
    cell = [s["atoms"].cell.array for _, s in structures if s["name"] == "triclinic"][0]
    assert abs(cell[1, 0]) + abs(cell[2, 0]) + abs(cell[2, 1]) > 0.1, "the triclinic cell is orthogonal"
    assert any(len(set(s["atoms"].get_chemical_symbols())) == 2 for _, s in structures)
    # v2: pairs inside the inner window; the grade acting (atoms in its transition and switched off)
    census = np.sum([list(s["census"].values()) for c, s in structures if c.version >= 2], axis=0)
    assert np.all(census > 0), f"window, grade transition, grade off: {census}"
    # the close pair really is close, and every file's numbers are finite and not trivial
    for c, s in structures:
        at = s["atoms"]
        if s["name"] == "bulk_close_pair":
            assert at.get_distance(0, 1, mic=True) < 2.6   # the bcc shell is at 2.86 Å
        assert np.isfinite(s["energy"]) and np.all(np.isfinite(s["forces"]))
        assert np.max(np.abs(s["forces"])) > 1e-5 and np.max(np.abs(s["virial"])) > 1e-5, (c.name, s["name"])


def test_every_generator_case_has_its_file():
    """tests/reference/generate.py and the committed files name the same cases
    (no file left over from a removed case, none missing)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("reference_generate", CASES[0].parent / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert sorted(generate.CASES) == sorted(IDS)
    for p in CASES:
        assert ReferenceCase(p).name == p.stem


def test_python_replays_reference(case, tmp_path):
    model = read_model(case.write(tmp_path))
    assert model.expression == case.expression and model.species == case.species
    assert model.version == case.version
    for s in case.structures:
        p = model.evaluate(model.system([s["atoms"]]))
        W = p.virial_mcc[0]
        got = {"energy": float(p.energy_m[0]), "energies": p.energies_n, "forces": p.forces_nc,
               "virial": np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])}
        check_against_reference(s, got, RTOL, f"Python, {case.name}")
        assert np.sum(p.energies_n) == pytest.approx(p.energy_m[0], rel=1e-13, abs=1e-12)


@pytest.mark.parametrize("mode", ["ghosts", "exchange"])
def test_c_core_replays_reference(case, mode, tmp_path):
    from compot.ccore import CCoreError, CoreModel, load_library
    try:
        so = load_library()
    except CCoreError as exc:
        pytest.skip(f"needs a C compiler to build the C core: {exc}")
    core = CoreModel(case.write(tmp_path), library=so)
    assert core.expression.replace(" ", "") == case.expression.replace(" ", "")
    assert core.species == case.species
    for s in case.structures:
        E, pe, F, V = core.evaluate(s["atoms"], mode)
        check_against_reference(s, {"energy": E, "energies": pe, "forces": F, "virial": V}, RTOL,
                                f"C core ({mode}), {case.name}")

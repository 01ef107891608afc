"""The species embedding (issue 14, item 4; docs/parameter-file.md, "Species
embedding"): every term kind with r < S channels against finite differences, the
linear design against evaluate, r = S with W = I against the full chemistry, the
parameter counts, and the file round trip."""

import numpy as np
import pytest
from ase.build import bulk

from compot.errors import ParameterFileError
from compot.expression import count_parameters
from compot.gradient import PairGradient
from compot.io import read_model, write_model
from compot.model import Model
from helpers import EMBEDDED, expression_v2, random_model, reference_deviations, switched_model
from test_terms import _affine_groups, _check_linear_design, _fd_errors

SPECIES = ("Nb", "Mo", "Ta")
KINDS = ["G3", "E[G3L2]", "N[E[G3L2]]", "A[G3P2]", "E[A[G3P2]L2]"]


def _structure(species=SPECIES):
    at = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 1))
    rng = np.random.default_rng(3)
    at.set_cell(at.cell.array + rng.uniform(-0.15, 0.15, (3, 3)), scale_atoms=True)
    at.rattle(0.15, seed=4)
    at.set_chemical_symbols([species[k % len(species)] for k in range(len(at))])
    return at


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("expr", KINDS + ["E[G3L2] + A[G3P2] + ZBL(1.0, 2.0)", "G3 * E[A[G3P2]L2]"])
def test_embedded_forces_and_virial_match_finite_differences(expr, rank):
    atoms = _structure()
    model = switched_model(expr, SPECIES, [atoms], rank=rank)
    f_err, w_err = _fd_errors(model, atoms)
    assert f_err < 1e-6
    assert w_err < 1e-6


@pytest.mark.parametrize("expr,species,rank", EMBEDDED, ids=[f"{e}|{len(s)}sp|r{r}" for e, s, r in EMBEDDED])
def test_registry_embedding_python_and_c_core(expr, species, rank, tmp_path):
    """The registry's species-embedding cases (tests/reference/expressions.txt,
    a fourth field; every host runs them): Python's forces and virial against
    finite differences with the atom switch acting (format v2), and the C core
    (compot.ccore, ghost lists and the host exchange) equal to Python to 1e-12
    relative in formats v1 and v2 (grade off)."""
    atoms = _structure(species)
    assert len(set(atoms.get_chemical_symbols())) == len(species)
    f_err, w_err = _fd_errors(switched_model(expression_v2(expr), species, [atoms], rank=rank), atoms)
    assert f_err < 1e-6 and w_err < 1e-6
    from compot.ccore import CCoreError, CoreModel, load_library
    try:
        so = load_library()
    except CCoreError as exc:
        pytest.skip(f"needs a C compiler to build the C core: {exc}")
    for version, e in ((1, expr), (2, expression_v2(expr))):
        m = random_model(e, species, seed=rank, structures=[atoms], window=(2.3, 2.85) if version >= 2 else None,
                         version=version, rank=rank)
        path = tmp_path / f"v{version}.params"
        write_model(m, path)
        core = CoreModel(path, library=so)
        p = m.evaluate(m.system([atoms]))
        W = p.virial_mcc[0]
        ref = {"energy": float(p.energy_m[0]), "energies": p.energies_n, "forces": p.forces_nc,
               "virial": np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])}
        for mode in ("ghosts", "exchange"):
            E, pe, F, V = core.evaluate(atoms, mode)
            dev = reference_deviations(ref, {"energy": E, "energies": pe, "forces": F, "virial": V})
            assert max(dev.values()) <= 1e-12, (version, mode, dev)


@pytest.mark.parametrize("expr", ["E[G3L2] + N[E[G3L2]] + A[G3P2]", "E[A[G3P2]L2] * G3"])
def test_embedded_linear_design_rows_match_evaluate(expr):
    atoms = _structure()
    _check_linear_design(switched_model(expr, SPECIES, [atoms], rank=2), atoms)


@pytest.mark.parametrize("expr", KINDS)
def test_embedded_feature_vjp_matches_finite_differences(expr):
    atoms = _structure()
    model = switched_model(expr, SPECIES, [atoms], rank=2)
    node = model.layout.nodes[0]
    A = np.random.default_rng(6).normal(size=(len(atoms), model.params["n0.c"].size))
    system = model.system([atoms])
    ctx = model.context(system)
    grad = PairGradient(system, A.shape[1])
    node.term.feature_vjp(ctx, node, A, grad, slice(0, A.shape[1]))
    F = system.forces(grad.finish(ctx).sum(axis=2))

    def weighted(at):
        return float(np.sum(A * model.context(model.system([at])).features(0)))

    h = 1e-5
    for a in range(0, len(atoms), 3):
        for c in range(3):
            x = atoms.copy()
            x.positions[a, c] += h
            up = weighted(x)
            x.positions[a, c] -= 2 * h
            assert abs(-(up - weighted(x)) / (2 * h) - F[a, c]) < 1e-6 * max(1.0, np.abs(F).max())


@pytest.mark.parametrize("expr", ["E[G3L2] + N[E[G3L2]] + A[G3P2] + ZBL(1.0, 2.0)", "E[A[G3P2]L2] * G3"])
def test_rank_s_with_identity_weights_is_the_full_chemistry(expr):
    """r = S, W = I: the same parameters under channel names give the full
    chemistry's energies, forces, virials and design rows to 1e-12."""
    atoms = _structure()
    full = switched_model(expr, SPECIES, [atoms])
    emb = Model(expr, SPECIES, full.cutoff, rank=len(SPECIES))
    for name, value in full.params.items():
        emb.params[name] = value.copy()
    for b in range(len(emb.layout.bases)):
        emb.params[f"b{b + 1}.w"] = np.eye(len(SPECIES))
    sf, se = full.system([atoms]), emb.system([atoms])
    pf, pe = full.evaluate(sf), emb.evaluate(se)
    scale = np.abs(pf.energy_m).max()
    assert np.abs(pe.energy_m - pf.energy_m).max() <= 1e-12 * max(1.0, scale)
    assert np.abs(pe.forces_nc - pf.forces_nc).max() <= 1e-12 * max(1.0, np.abs(pf.forces_nc).max())
    assert np.abs(pe.virial_mcc - pf.virial_mcc).max() <= 1e-12 * max(1.0, np.abs(pf.virial_mcc).max())
    for names in _affine_groups(full):
        JEf, JFf, _ = full.linear_design(sf, names)
        JEe, JFe, _ = emb.linear_design(se, names)
        assert np.abs(JEe - JEf).max() <= 1e-12 * max(1.0, np.abs(JEf).max())
        assert np.abs(JFe - JFf).max() <= 1e-12 * max(1.0, np.abs(JFf).max())


def test_embedded_parameter_counts_grow_linearly_with_the_species():
    four = ("Mo", "Nb", "Ta", "W")
    assert count_parameters("E[G8L4] + A[G8P4]", four) == (2116, 6)
    # rank 1: S (E: L K + A: K (P+1)) + S shifts; nonlinear α, β, γ and S weights
    assert count_parameters("E[G8L4] + A[G8P4]", four, rank=1) == (4 * (32 + 40) + 4, 6 + 4)
    assert count_parameters("E[G8L4] + A[G8P4]", four, rank=2) == (4 * (2 * 32 + 3 * 40) + 4, 6 + 8)
    for S in range(1, 7):
        lin, _ = count_parameters("E[G8L4] + A[G8P4]", ("H", "He", "Li", "Be", "B", "C")[:S], rank=1)
        assert lin == S * 73


def test_embedded_file_round_trip_and_rank_errors(tmp_path):
    atoms = _structure()
    model = switched_model("E[G3L2] + A[G3P2]", SPECIES, [atoms], rank=2)
    path = tmp_path / "emb.params"
    write_model(model, path)
    text = path.read_text()
    assert "chemistry.rank 2" in text and "b1.w.Ta.e2" in text and "n1.c.Mo.e2.2.3" in text
    back = read_model(path)
    assert back.rank == 2
    for name, value in model.params.items():
        np.testing.assert_array_equal(back.params[name], value)
    for bad in ("0", "4", "1.5"):
        p = tmp_path / f"rank_{bad}.params"
        p.write_text(text.replace("chemistry.rank 2", f"chemistry.rank {bad}"))
        with pytest.raises(ParameterFileError, match="chemistry.rank' is out of range"):
            read_model(p)


def _synthetic_configs(truth, seed: int, n: int = 3) -> list:
    """``n`` rattled copies of the test structure labelled with ``truth``'s energies and forces."""
    from compot.data import Configuration

    configs = []
    for k in range(n):
        at = _structure()
        at.rattle(0.05, seed=seed + k)
        p = truth.evaluate(truth.system([at]), virial=False)
        configs.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                     cell=at.cell.array, pbc=at.pbc, energy=float(p.energy_m[0]),
                                     forces=p.forces_nc, group="synthetic", source=f"synthetic:{k}"))
    return configs


def test_checkpoint_of_another_chemistry_is_not_resumed(tmp_path):
    """The checkpoint fingerprint of a fit (compot.trainer) includes the
    chemistry: an unfinished fit at rank 1 is refused at rank 2 and in the full
    chemistry with the FitError that names the choices (before, the fingerprints
    were equal and the resume loaded the rank-1 blocks into the other model:
    ValueError on the shape of b1.w, KeyError on chemistry.rank), and resumed
    at rank 1 where it stopped."""
    from compot.errors import FitError
    from compot.trainer import FitSettings, Trainer

    truth = random_model("G3", SPECIES, seed=2, structures=[_structure()], rank=1)
    configs = _synthetic_configs(truth, seed=10)
    settings = FitSettings(max_evaluations=8, init_points=3, seed=0, polish_evaluations=0)
    ckpt = tmp_path / "checkpoint.json"

    class Stop(Exception):
        pass

    def interrupt(info):
        if info["evaluation"] == 4:
            raise Stop

    def trainer(rank, **kw):
        return Trainer(Model("G3", SPECIES, truth.cutoff, rank=rank), configs, settings, checkpoint=ckpt, **kw)

    with pytest.raises(Stop):
        trainer(1, progress=interrupt).fit()
    prints = {rank: trainer(rank)._fingerprint() for rank in (None, 1, 2, 3)}
    assert len(set(prints.values())) == 4
    for rank in (2, None):
        with pytest.raises(FitError, match="unfinished fit"):
            trainer(rank).fit()
    seen = []
    trainer(1, progress=lambda info: seen.append(info["evaluation"])).fit()
    assert seen[:1] == [5]          # the four evaluations done are not repeated


def test_density_channel_weights_are_searched_positive():
    """The first channel of a species embedding is a density: its weights W[s, 1] are
    searched in ``fit.bounds.w1`` (positive), every further channel's in ``fit.bounds.w``
    (signed); a short fit ends with W[s, 1] inside [0.2, 1.5] for every species."""
    from compot.settings import DEFAULT_BOUNDS
    from compot.trainer import FitSettings, Trainer

    truth = random_model("G3", SPECIES, seed=2, structures=[_structure()], rank=2)
    configs = _synthetic_configs(truth, seed=20)
    settings = FitSettings(max_evaluations=6, init_points=3, seed=0, polish_evaluations=0)
    t = Trainer(Model("G3", SPECIES, truth.cutoff, rank=2), configs, settings)
    S = len(SPECIES)
    keys = t._keys(["b1.w"])
    assert len(keys) == 2 * S
    assert [t._bounds(k) for k in keys] == [DEFAULT_BOUNDS["w1"], DEFAULT_BOUNDS["w"]] * S
    assert DEFAULT_BOUNDS["w1"][0] > 0
    t.fit()
    W = t.model.params["b1.w"]
    assert W.shape == (S, 2) and np.all(W[:, 0] >= 0.2) and np.all(W[:, 0] <= 1.5)


def test_config_selects_the_embedding_and_checks_the_rank():
    from compot.errors import ConfigError
    from compot.settings import DEFAULT_BOUNDS, ModelSettings, load_section

    s = load_section(ModelSettings, {"chemistry": "embedded", "rank": 2, "species": ["Mo", "Nb", "Ta"]}, "model")
    assert (s.chemistry, s.rank) == ("embedded", 2)
    assert load_section(ModelSettings, {}, "model").chemistry == "full"
    for bad in ({"chemistry": "compact"}, {"chemistry": "embedded", "rank": 0},
                {"chemistry": "embedded", "rank": 3, "species": ["Mo", "Nb"]}):
        with pytest.raises(ConfigError):
            load_section(ModelSettings, bad, "model")
    assert DEFAULT_BOUNDS["w"][0] < 0 < 1 < DEFAULT_BOUNDS["w"][1]


def test_params_command_counts_the_embedding(capsys):
    from compot.cli import main

    assert main(["params", "E[G8L4] + A[G8P4]", "--species", "Mo", "Nb", "Ta", "W", "--rank", "1"]) == 0
    assert "292 linear + 10 nonlinear = 302 parameters" in capsys.readouterr().out

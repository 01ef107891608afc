"""Every term class, discovered from compot.terms.REGISTRY (not a hand list), alone
and in sums and products with N and A terms: analytic forces and virial against
central finite differences, and the trainer's linear design rows (energies AND
forces) against Model.evaluate (MODEL_SPEC §3–6)."""

import itertools

import numpy as np
import pytest
from ase.build import bulk

from compot.expression import parse
from compot.functions import real_harmonics
from compot.terms import REGISTRY
from helpers import energy, random_model, switched_model


def _walk(term):
    yield term
    for c in term.children():
        yield from _walk(c)


def _leaf_examples() -> list[str]:
    """The example of every fitted leaf class (a term with a basis), by registry."""
    return sorted({cls.example for cls in REGISTRY.values() if parse(cls.example).basis is not None})


def _expressions() -> list[str]:
    """Each class's own example, then every sum and product of two leaf examples."""
    own = sorted({cls.example for cls in REGISTRY.values()})
    leaves = _leaf_examples()
    pairs = [f"{a} + {b}" for a, b in itertools.combinations_with_replacement(leaves, 2)]
    pairs += [f"{a} * {b}" for a, b in itertools.product(leaves, repeat=2)]
    return own + pairs


def _fd_errors(model, atoms, h=2e-6):
    """Largest deviation of the forces and of the virial from a fourth-order central
    difference of the energy (positions, and the cell strained by ±h, ±2h), relative
    to the largest component of each; fourth order because the grade's transition is
    narrow on four atoms (the second-order error reaches 1e-5 at h = 1e-6; the
    fourth-order one falls as h⁴ to ~1e-9 here)."""
    p = model.evaluate(model.system([atoms]))

    def derivative(move):
        e = {k: energy(model, move(k * h)) for k in (-2, -1, 1, 2)}
        return (8.0 * (e[1] - e[-1]) - (e[2] - e[-2])) / (12.0 * h)

    def shifted(a, c):
        def move(d):
            x = atoms.copy()
            x.positions[a, c] += d
            return x
        return move

    def strained(a, b):
        def move(d):
            x = atoms.copy()
            eps = np.eye(3)
            eps[a, b] += d
            x.set_cell(atoms.cell.array @ eps, scale_atoms=True)
            return x
        return move

    F = np.array([[-derivative(shifted(a, c)) for c in range(3)] for a in range(len(atoms))])
    W = np.array([[derivative(strained(a, b)) for b in range(3)] for a in range(3)])
    f_err = np.abs(F - p.forces_nc).max() / max(1e-3, np.abs(p.forces_nc).max())
    w_err = np.abs(W - p.virial_mcc[0]).max() / max(1e-3, np.abs(p.virial_mcc[0]).max())
    return f_err, w_err


def _structure(species):
    at = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 1, 1))
    rng = np.random.default_rng(3)
    at.set_cell(at.cell.array + rng.uniform(-0.15, 0.15, (3, 3)), scale_atoms=True)
    at.rattle(0.15, seed=4)
    if len(species) > 1:
        at.symbols[1] = species[1]
    return at


def _model(expr, species, atoms):
    """A random format v2 model whose inner window (2.3, 2.85) Å and grade act on ``atoms``."""
    return switched_model(expr, species, [atoms], window=(2.3, 2.85))


def test_registry_holds_every_term_of_the_notation():
    assert {cls.__name__ for cls in REGISTRY.values()} >= {
        "Linear", "Exponentiated", "NeighbourExponentiated", "Angular", "ZBL", "Sum", "Product"}
    for name, cls in REGISTRY.items():
        # each class's example contains an instance of it, and prints back as parsed
        tree = parse(cls.example)
        assert any(type(t) is cls for t in _walk(tree)), name
        assert str(parse(str(tree))) == str(tree)


def test_examples_cover_n_and_a_in_compositions():
    symbols = {t.symbol for e in _expressions() if any(op in e for op in "+*") for t in _walk(parse(e))}
    assert {"N", "A", "E", "G", "+", "*", "ZBL"} <= symbols


def _fd_cases():
    """Every expression with one species; each class's own example also with two."""
    own = sorted({cls.example for cls in REGISTRY.values()})
    return [(e, ("Nb",)) for e in _expressions()] + [(e, ("Nb", "Mo")) for e in own]


@pytest.mark.parametrize("expr,species", _fd_cases(), ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_forces_and_virial_match_finite_differences(expr, species):
    atoms = _structure(species)
    model = _model(expr, species, atoms)
    f_err, w_err = _fd_errors(model, atoms)
    assert f_err < 1e-6
    assert w_err < 1e-6


def _affine_groups(model, idx=0) -> list[list[str]]:
    node = model.layout.nodes[idx]
    own = [b for b in (f"n{idx}.c", f"n{idx}.shift") if b in model.params]
    shift = [b for b in (f"n{idx}.shift",) if b in model.params]
    return node.term.affine_groups([_affine_groups(model, c) for c in node.children], own, shift)


@pytest.mark.parametrize("species", [("Nb",), ("Nb", "Mo")], ids=["Nb", "NbMo"])
@pytest.mark.parametrize("expr", _expressions())
def test_linear_design_rows_match_evaluate(expr, species):
    """In every set of blocks in which the model is affine, E(θ') − E(θ) = Jᴱ (θ' − θ) and
    F(θ') − F(θ) = Jᶠ (θ' − θ), and linear_design's prediction is evaluate's."""
    atoms = _structure(species)
    _check_linear_design(_model(expr, species, atoms), atoms)


def _check_linear_design(model, atoms) -> None:
    """linear_design's rows against evaluate in every affine set of blocks of ``model``:
    the prediction equals evaluate, and a random step of θ changes E and F by Jᴱ·step,
    Jᶠ·step (1e-11, 1e-10 of the largest magnitude)."""
    system = model.system([atoms])
    rng = np.random.default_rng(5)
    for names in _affine_groups(model):
        if not names:
            continue
        p0 = model.evaluate(system)
        JE, JF, pred = model.linear_design(system, names)
        np.testing.assert_allclose(pred.energy_m, p0.energy_m, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(pred.forces_nc, p0.forces_nc, rtol=1e-12, atol=1e-12)
        theta = model.vector(names)
        step = rng.uniform(-0.3, 0.3, theta.shape)
        trial = model.copy()
        trial.set_vector(names, theta + step)
        p1 = trial.evaluate(system)
        e_scale = max(1.0, np.abs(p1.energy_m).max(), np.abs(p0.energy_m).max())
        f_scale = max(1.0, np.abs(p1.forces_nc).max(), np.abs(p0.forces_nc).max())
        assert np.abs(p1.energy_m - p0.energy_m - JE @ step).max() < 1e-11 * e_scale, names
        assert np.abs(p1.forces_nc - p0.forces_nc - JF @ step).max() < 1e-10 * f_scale, names


def test_every_leaf_feature_vjp_matches_finite_differences():
    """feature_vjp of each fitted leaf against finite differences of its features."""
    species = ("Nb", "Mo")
    atoms = _structure(species)
    for example in _leaf_examples():
        model = _model(example, species, atoms)
        node = model.layout.nodes[0]
        A = np.random.default_rng(6).normal(size=(len(atoms), model.params["n0.c"].size))

        def weighted(at):
            return float(np.sum(A * model.context(model.system([at])).features(0)))

        system = model.system([atoms])
        ctx = model.context(system)
        from compot.gradient import PairGradient
        grad = PairGradient(system, A.shape[1])
        node.term.feature_vjp(ctx, node, A, grad, slice(0, A.shape[1]))
        F = system.forces(grad.finish(ctx).sum(axis=2))          # −∂/∂r of Σ A·features
        h = 1e-5
        for a in range(len(atoms)):
            for c in range(3):
                x = atoms.copy()
                x.positions[a, c] += h
                up = weighted(x)
                x.positions[a, c] -= 2 * h
                down = weighted(x)
                assert abs(-(up - down) / (2 * h) - F[a, c]) < 1e-6 * max(1.0, np.abs(F).max()), example


def test_real_harmonics_addition_theorem_and_gradient():
    """Σ_(v of degree l) Y_v(a) Y_v(b) = P_l(a·b) (the C core's layout), and dY by finite differences."""
    from numpy.polynomial import legendre
    rng = np.random.default_rng(8)
    u = rng.normal(size=(6, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    P = 7
    H = real_harmonics(u, P)
    assert H.Y.shape == (6, (P + 1) ** 2) and H.dY.shape == (6, 3, (P + 1) ** 2)
    cos = u @ u.T
    for l in range(P + 1):
        c = np.zeros(l + 1)
        c[l] = 1
        v = H.degree == l
        assert v.sum() == 2 * l + 1
        np.testing.assert_allclose(H.Y[:, v] @ H.Y[:, v].T, legendre.legval(cos, c), atol=1e-12)
    h = 1e-6
    for c in range(3):
        up, down = u.copy(), u.copy()
        up[:, c] += h
        down[:, c] -= h
        fd = (real_harmonics(up, P).Y - real_harmonics(down, P).Y) / (2 * h)
        np.testing.assert_allclose(H.dY[:, c, :], fd, atol=1e-6 * max(1.0, np.abs(fd).max()))


#: Term cutoffs (``@r_t``, issue 13): shorter than the model's r_c = 4.5 Å, on every
#: leaf family that takes one, shared and unshared bases, inside a product.
CUTOFF_EXPRESSIONS = ["A[G3P2]@3.1 + E[G3L2]", "G3@2.9 + A[G3P2]@2.9 + E[A[C2P1]L2]@3.6",
                      "G2@3.3 * E[A[G2P1]L1]@3.8 + C3@4.0"]


@pytest.mark.parametrize("species", [("Nb",), ("Nb", "Mo")], ids=["Nb", "NbMo"])
@pytest.mark.parametrize("expr", CUTOFF_EXPRESSIONS)
def test_term_cutoffs_forces_design_rows(expr, species):
    """Forces and virial against finite differences, and linear_design against evaluate,
    with term cutoffs."""
    atoms = _structure(species)
    model = _model(expr, species, atoms)
    f_err, w_err = _fd_errors(model, atoms)
    assert f_err < 1e-6 and w_err < 1e-6
    system = model.system([atoms])
    for names in _affine_groups(model):
        if names:
            JE, JF, pred = model.linear_design(system, names)
            p0 = model.evaluate(system)
            np.testing.assert_allclose(pred.energy_m, p0.energy_m, rtol=1e-13, atol=1e-12)
            np.testing.assert_allclose(pred.forces_nc, p0.forces_nc, rtol=1e-12, atol=1e-12)


def test_term_cutoff_is_the_model_cutoff_of_that_term():
    """A[G3P2]@3.2 in a model of r_c 4.5 Å gives what A[G3P2] gives with r_c = 3.2 Å
    (format v1: no window), and the shared basis of G3@3.2 + A[G3P2]@3.2 is one basis."""
    from compot.model import Model
    atoms = _structure(("Nb",))
    short = Model("A[G3P2]", ("Nb",), 3.2, version=1)
    cut = Model("A[G3P2]@3.2", ("Nb",), 4.5, version=1)
    rng = np.random.default_rng(1)
    for name in short.params:
        short.params[name] = rng.uniform(0.5, 1.5, short.params[name].shape)
        cut.params[name] = short.params[name].copy()
    a, b = short.evaluate(short.system([atoms])), cut.evaluate(cut.system([atoms]))
    np.testing.assert_allclose(b.energy_m, a.energy_m, rtol=1e-13)
    np.testing.assert_allclose(b.forces_nc, a.forces_nc, rtol=1e-12, atol=1e-12)
    assert len(Model("G3@3.2 + A[G3P2]@3.2", ("Nb",), 4.5).layout.bases) == 1
    assert len(Model("G3@3.2 + A[G3P2]", ("Nb",), 4.5).layout.bases) == 2
    assert str(parse("A[G3P2] @ 3.2 + E[A[G2P1]L1]@4")) == "A[G3P2]@3.2 + E[A[G2P1]L1]@4.0"


@pytest.mark.parametrize("rank", [None, 1], ids=["full", "embedded"])
def test_configuration_without_pairs(rank):
    """Two atoms farther apart than the cutoff: no pair, so every fitted term gives its
    value at zero density and no force (the pair folds must accept zero pairs)."""
    from ase import Atoms
    m = random_model("E[G3L2] + A[G3P2] + E[A[G3P2]L2]", species=("Nb", "Mo"), rank=rank)
    atoms = Atoms("NbMo", positions=[[0.0, 0.0, 0.0], [9.0, 0.0, 0.0]], pbc=False)
    s = m.system([atoms])
    assert s.n_pairs == 0
    p = m.evaluate(s)
    assert np.all(p.forces_nc == 0.0) and np.isfinite(p.energy_m).all()
    one = [m.evaluate(m.system([Atoms(x, positions=[[0.0, 0.0, 0.0]], pbc=False)])).energy_m[0] for x in ("Nb", "Mo")]
    assert p.energy_m[0] == pytest.approx(sum(one), rel=1e-12, abs=1e-12)

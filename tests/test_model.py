"""Analytic forces and virial of every term against finite differences;
invariances; extensivity; the angular addition theorem (MODEL_SPEC §3–5)."""

import numpy as np
import pytest
from ase.build import bulk

from helpers import energy, random_model, random_structure

EXPRESSIONS = [
    "G6", "C6", "E[G4L3]", "N[E[G4L3]]", "A[G4P4]", "C4 + ZBL(1.0, 2.5)",
    "G4 * G4", "E[G3L2] + N[E[G3L2]]", "G4 * (E[G3L2] + N[E[G3L2]])",
    "(G3 + A[G3P2]) * N[E[C3L2]] + ZBL(1.2, 2.2)", "G3 * G3 * E[G2L2]",
]


def fd_check(model, atoms, h=1e-5):
    p = model.evaluate(model.system([atoms]))
    F = p.forces_nc
    scale = max(1e-3, np.abs(F).max())
    worst = 0.0
    for a in range(len(atoms)):
        for c in range(3):
            x = atoms.copy()
            x.positions[a, c] += h
            ep = energy(model, x)
            x.positions[a, c] -= 2 * h
            em = energy(model, x)
            worst = max(worst, abs(-(ep - em) / (2 * h) - F[a, c]) / scale)
    W = p.virial_mcc[0]
    wscale = max(1e-3, np.abs(W).max())
    wworst = 0.0
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = h
            x = atoms.copy()
            x.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            ep = energy(model, x)
            x.set_cell(atoms.cell.array @ (np.eye(3) - eps), scale_atoms=True)
            em = energy(model, x)
            wworst = max(wworst, abs((ep - em) / (2 * h) - W[a, b]) / wscale)
    return worst, wworst


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("kind", ["triclinic", "small"])
def test_forces_and_virial_match_finite_differences(expr, kind):
    model = random_model(expr)
    atoms = random_structure(kind)
    model.compute_scales([model.system([atoms])])
    f_err, w_err = fd_check(model, atoms)
    assert f_err < 1e-6
    assert w_err < 1e-6


@pytest.mark.parametrize("expr", ["E[G3L2] + N[E[G3L2]]", "A[G3P3] * G3", "G3 * N[E[G3L2]] + ZBL(1.0, 2.5)"])
def test_two_species_finite_differences(expr):
    model = random_model(expr, species=("Nb", "Mo"))
    atoms = random_structure("triclinic", species=("Nb", "Mo"))
    model.compute_scales([model.system([atoms])])
    f_err, w_err = fd_check(model, atoms)
    assert f_err < 1e-6 and w_err < 1e-6


@pytest.mark.parametrize("expr", ["E[G3L2] + N[E[G3L2]]", "A[G3P3] + G3", "G3 * A[G2P2] + ZBL(2.9, 3.5)",
                                  "N[E[C3L2]] * E[G2L2]"])
@pytest.mark.parametrize("species", [("Nb",), ("Nb", "Mo")])
def test_window_and_saturation_finite_differences(expr, species):
    """Format v2: pairs inside the inner window [2.3, 2.9] Å (the nearest neighbours
    of the rattled bcc cell are at ~2.86 Å), so that atom switches S_i are strictly
    between 0 and 1, and every scale reduced to 0.6–1.2 of its maximum, so that the
    saturating branches of x(γ, u) and of q are used."""
    atoms = random_structure("triclinic", species=species)
    model = random_model(expr, species=species, structures=[atoms], window=(2.3, 2.9))
    S_n = model.context(model.system([atoms])).switch()[0]
    assert np.any((S_n > 0) & (S_n < 1)), "no atom inside the window"
    f_err, w_err = fd_check(model, atoms)
    assert f_err < 1e-6 and w_err < 1e-6


def test_saturation_bounds_the_site_energy():
    """Format v2: under compression to 0.5 a0 the fitted site energy stays within
    the bound |c|·(x(γ, ±1) + x′τ + |x″|τ²/2) summed over features, while the same
    model read as format v1 (quadratic continuation) grows far beyond it."""
    atoms = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))
    v2 = random_model("E[G4L3] + A[G4P2]", cutoff=5.0, structures=[atoms])
    v1 = random_model("E[G4L3] + A[G4P2]", cutoff=5.0, version=1)
    for name in v1.params:
        v1.params[name] = v2.params[name].copy()
    c = v2.params["n1.c"]
    gamma = v2.params["n1.gamma"][None, None, :, None]
    tau = float(v2.params["w.tau"])
    x1 = (np.exp(np.abs(gamma)) - 1) / np.abs(gamma)
    bound_e = float(np.sum(np.abs(c) * (x1 + np.exp(np.abs(gamma)) * tau
                                        + 0.5 * np.abs(gamma) * np.exp(np.abs(gamma)) * tau ** 2)))
    bound_a = float(np.sum(np.abs(v2.params["n2.c"]) * v2.params["n2.q_max"] * (1 + tau)))
    bound = bound_e + bound_a + np.abs(v2.params["n0.shift"]).max()
    small = atoms.copy()
    small.set_cell(atoms.cell.array * 0.5, scale_atoms=True)
    e2 = v2.evaluate(v2.system([small]), forces=False, virial=False).energies_n
    e1 = v1.evaluate(v1.system([small]), forces=False, virial=False).energies_n
    assert np.all(np.abs(e2) <= bound)
    assert np.abs(e1).max() > 10 * bound


def test_window_switches_atoms_to_reference():
    """Format v2: an atom with a pair closer than r_a has the reference site energy
    E_ref (S_i = 0); with all pairs beyond r_b it is exactly as without a window
    (S_i = 1)."""
    from ase import Atoms
    dimer = Atoms("Nb2", positions=[[0, 0, 0], [0, 0, 1.9]])
    far = Atoms("Nb2", positions=[[0, 0, 0], [0, 0, 3.1]])
    on = random_model("E[G3L2] + A[G3P2] + G3", window=(2.0, 2.5))
    on.params["w.e_ref"][:] = -3.25
    off = random_model("E[G3L2] + A[G3P2] + G3")
    assert energy(on, dimer) == pytest.approx(2 * -3.25, abs=1e-14)
    assert energy(off, dimer) != pytest.approx(2 * -3.25, abs=1e-3)
    assert energy(on, far) == pytest.approx(energy(off, far), rel=1e-14)


@pytest.mark.parametrize("expr", ["E[G3L2] + A[G3P2] + ZBL(2.0, 3.0)", "G3 * E[G2L2]"])
def test_grade_switch(expr):
    """The extrapolation grade fitted to a set of rattled cells leaves every one of
    them fully fitted (S = 1, γ ≤ γ_lo); a compressed cell is far outside (S = 0, its
    site energies E_ref + ZBL); forces stay the exact gradient where 0 < S_grade < 1."""
    train = [random_structure("triclinic", seed=k) for k in range(1, 6)]
    model = random_model(expr, structures=train)
    model.params["w.e_ref"][:] = -2.0
    model.compute_grade([model.system([a]) for a in train], margin=4.0)
    lo = model.params["g.gamma_lo"][0]
    for a in train:
        g, S, _ = model.context(model.system([a])).grade()
        assert np.all(g <= lo + 1e-9) and np.all(S == 1.0)
    small = train[0].copy()
    small.set_cell(small.cell.array * 0.8, scale_atoms=True)
    ctx = model.context(model.system([small]))
    assert np.all(ctx.grade()[1] == 0.0)
    zbl = ctx.value(0) - ctx.fitted_value()
    np.testing.assert_allclose(ctx.site_energy(), -2.0 + zbl, rtol=1e-14, atol=1e-14)
    # an atom in the transition: a cell between the data and the compressed one
    model.params["g.gamma_hi"][:] = 50 * lo
    for scale in (0.97, 0.95, 0.93, 0.9):
        mid = train[1].copy()
        mid.set_cell(mid.cell.array * scale, scale_atoms=True)
        S = model.context(model.system([mid])).grade()[1]
        if np.any((S > 0) & (S < 1)):
            break
    assert np.any((S > 0) & (S < 1)), "no atom in the grade transition"
    f_err, w_err = fd_check(model, mid, h=1e-6)     # S_grade is steep: O(h²) error 1e-5 at h = 1e-5
    assert f_err < 1e-6 and w_err < 1e-6


def test_cluster_forces():
    model = random_model("E[G3L2] + N[E[G3L2]]")
    atoms = random_structure("cluster")
    p = model.evaluate(model.system([atoms]), virial=False)
    h = 1e-5
    x = atoms.copy()
    x.positions[3, 1] += h
    ep = energy(model, x)
    x.positions[3, 1] -= 2 * h
    em = energy(model, x)
    assert abs(-(ep - em) / (2 * h) - p.forces_nc[3, 1]) < 1e-6 * max(1e-3, np.abs(p.forces_nc).max())


@pytest.mark.parametrize("expr", ["E[G4L3] + N[E[G4L3]]", "G4 * A[G4P4] + ZBL(1.0, 2.5)"])
def test_invariances_and_extensivity(expr):
    model = random_model(expr)
    atoms = random_structure("triclinic")
    model.compute_scales([model.system([atoms])])
    p = model.evaluate(model.system([atoms]))
    e0 = p.energy_m[0]
    # rotation (cell and positions together)
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ q.T, scale_atoms=False)
    rot.positions = atoms.positions @ q.T
    pr = model.evaluate(model.system([rot]))
    assert abs(pr.energy_m[0] - e0) < 1e-10 * abs(e0)
    np.testing.assert_allclose(pr.forces_nc, p.forces_nc @ q.T, atol=1e-10)
    # translation
    tr = atoms.copy()
    tr.positions += np.array([0.3, -1.7, 2.2])
    assert abs(energy(model, tr) - e0) < 1e-10 * abs(e0)
    # permutation
    perm = rng.permutation(len(atoms))
    pa = atoms[perm]
    pp = model.evaluate(model.system([pa]))
    assert abs(pp.energy_m[0] - e0) < 1e-10 * abs(e0)
    np.testing.assert_allclose(pp.forces_nc, p.forces_nc[perm], atol=1e-12)
    # a 2x1x3 supercell has 6 times the energy, the same per-atom energies
    sc = atoms.repeat((2, 1, 3))
    ps = model.evaluate(model.system([sc]))
    assert abs(ps.energy_m[0] - 6 * e0) < 1e-10 * abs(6 * e0)
    np.testing.assert_allclose(ps.virial_mcc[0], 6 * p.virial_mcc[0], rtol=1e-9, atol=1e-9)


def test_small_cell_equals_supercell_per_atom():
    model = random_model("E[G3L2] + N[E[G3L2]] + A[G3P2]")
    atoms = random_structure("small")
    sc = atoms.repeat((3, 3, 3))
    assert abs(energy(model, sc) - 27 * energy(model, atoms)) < 1e-9 * abs(energy(model, sc))


def test_angular_addition_theorem_equals_double_loop():
    from numpy.polynomial import legendre
    model = random_model("A[G4P6]")
    rng = np.random.default_rng(7)
    for trial in range(3):
        atoms = random_structure("cluster", seed=trial)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        sysm = model.system([atoms])
        ctx = model.context(sysm)
        node = model.layout.nodes[0]
        q = node.term.moments(ctx, node).q[:, 0]        # (n, K, P+1)
        g = ctx.basis(0).g
        for i in range(len(atoms)):
            sel = np.flatnonzero(sysm.i_p == i)
            u = sysm.u_pc[sel]
            cos = np.clip(u @ u.T, -1, 1)
            off = ~np.eye(len(sel), dtype=bool)
            for k in range(4):
                gg = np.outer(g[sel, k], g[sel, k])
                for p in range(7):
                    c = np.zeros(p + 1)
                    c[p] = 1
                    direct = np.sum((gg * legendre.legval(cos, c))[off])
                    assert abs(q[i, k, p] - direct) <= 1e-12 * max(1.0, np.abs(gg).sum())


def test_exp_feature_bounded_and_smooth():
    from compot.functions import exp_feature_fdf
    gamma = np.array([-2.0, -1e-9, 0.0, 1e-7, 1.5])[:, None]
    u = np.linspace(-3, 3, 601)[None, :]
    x, dx = exp_feature_fdf(gamma, u)
    # value and slope continuous at u = ±1, growth at most quadratic outside
    for g_row, x_row, dx_row in zip(gamma[:, 0], x, dx):
        xi, _ = exp_feature_fdf(g_row, np.array([1 - 1e-9, 1 + 1e-9]))
        assert abs(xi[1] - xi[0]) < 1e-8
        assert np.all(np.abs(x_row) <= 3 * np.exp(abs(g_row)) * (1 + u[0] ** 2))
    # γ → 0 limit is the linear feature
    np.testing.assert_allclose(x[2], u[0], atol=1e-12)
    np.testing.assert_allclose(x[1], u[0], atol=1e-8)
    # derivative equals finite differences
    h = 1e-6
    xp, _ = exp_feature_fdf(gamma, u + h)
    xm, _ = exp_feature_fdf(gamma, u - h)
    np.testing.assert_allclose((xp - xm) / (2 * h), dx, rtol=1e-6, atol=1e-6)


def test_zbl_matches_lammps_form():
    """Switched ZBL: zero with zero slope at r_out, the bare ZBL plus a constant below r_in."""
    from compot.functions import _zbl_raw, zbl_pair_fdf
    z = np.array([41.0])
    e, de = zbl_pair_fdf(np.array([2.4 - 1e-9, 2.4]), z.repeat(2), z.repeat(2), 1.6, 2.4)
    assert abs(e[0]) < 1e-12 and abs(de[0]) < 1e-8 and e[1] == 0
    r = np.array([0.8, 1.0, 1.2])
    e, _ = zbl_pair_fdf(r, z.repeat(3), z.repeat(3), 1.6, 2.4)
    raw, _, _ = _zbl_raw(r, z.repeat(3), z.repeat(3))
    shift = e - raw
    assert np.ptp(shift) < 1e-12
    # Nb–Nb at 1 Å: ~ 14.4·41²/1 · Σ c exp(−d r/a): hundreds of eV
    assert 100 < raw[1] < 2000


@pytest.mark.parametrize("expr", ["E[G3L2] + A[G3P2] + ZBL(2.9, 3.5)", "G3 * E[G2L2]"])
def test_linear_design_reproduces_prediction_with_switch(expr):
    """The least-squares rows of the linear blocks, J θ + rest, equal the model's
    energies and forces, also for atoms whose switch S_i is strictly between 0 and 1
    (format v2, MODEL_SPEC §6 and §10). For a product the rows of one factor's
    blocks are linear with the other factor fixed."""
    atoms = random_structure("triclinic")
    model = random_model(expr, structures=[atoms], window=(2.3, 2.9))
    s = model.system([atoms])
    assert np.any((model.context(s).switch()[0] > 0) & (model.context(s).switch()[0] < 1))
    names = model.blocks("linear", under=model.layout.nodes[0].children[0]) if "*" in expr \
        else model.blocks("linear")
    theta = model.vector(names)
    full = model.evaluate(s, virial=False)
    model.set_vector(names, np.zeros_like(theta))
    JE, JF, rest = model.linear_design(s, names)
    model.set_vector(names, theta)
    np.testing.assert_allclose(JE @ theta + rest.energy_m, full.energy_m, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(JF @ theta + rest.forces_nc, full.forces_nc, rtol=1e-9,
                               atol=1e-10 * np.abs(full.forces_nc).max())

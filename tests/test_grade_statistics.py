"""The extrapolation grade's statistics are accumulated batch by batch
(:class:`compot.safety.RunningMoments`, :meth:`compot.model.Model.compute_grade`), in
memory of one batch; they must equal those of every atom's feature vector stacked
(the dense computation compute_grade did before, issue 17) to rounding.

Tolerances: μ and C to 1e-12 relative. U = L⁻¹ (C + floor·tr(C)/d·I = L Lᵀ) inherits the
condition number of C (about 7e5 on the Nb data): the dense computation itself moves U
by 5e-11 relative when the atoms are only reordered, so U is checked through what it
is used for, γ of every atom, and γ_lo, to 1e-9 relative.
"""

import numpy as np
import pytest

from compot.safety import RunningMoments

from helpers import random_model, random_structure

SPECIES = ("Nb", "Mo")


def _dense_grade(model, systems, floor=1e-4):
    """μ_Z, C_Z, U_Z and γ_lo of every species from all feature vectors stacked (the
    computation of compute_grade before it was streamed)."""
    ctxs = [model.context(s) for s in systems]           # the safety layers hold their Contexts weakly
    F = np.concatenate([c.safety.feature_vector() for c in ctxs])
    z_n = np.concatenate([s.species_n for s in systems])
    d = F.shape[1]
    out = {}
    for z in range(len(model.species)):
        Fz = F[z_n == z]
        mu = Fz.mean(axis=0)
        C = np.cov(Fz, rowvar=False).reshape(d, d)
        L = np.linalg.cholesky(C + floor * np.trace(C) / d * np.eye(d))
        U = np.tril(np.linalg.solve(L, np.eye(d)))
        out[z] = mu, C, U, max(float(np.sum(((Fz - mu) @ U.T) ** 2, axis=1).max()), 1.0)
    return out


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_running_moments_equal_the_stacked_ones(offset):
    """Batches of unequal sizes, one without rows of group 1, one with a single row; rows
    far from the origin (offset 1e6, spread 1: naive sums of squares lose every digit)."""
    rng = np.random.default_rng(3)
    sizes = [7, 1, 40, 13, 0, 25]
    rows = [offset + rng.normal(size=(n, 5)) * [1.0, 2.0, 0.5, 3.0, 1e-3] for n in sizes]
    groups = [rng.integers(0, 2, n) for n in sizes]
    groups[3][:] = 0
    m = RunningMoments(2, 5)
    for r, g in zip(rows, groups):
        m.add(r, g)
    F, G = np.concatenate(rows), np.concatenate(groups)
    for z in range(2):
        Fz = F[G == z]
        assert m.n[z] == len(Fz)
        assert _rel(m.mean[z], Fz.mean(axis=0)) < 1e-14
        assert _rel(m.covariance(z), np.cov(Fz, rowvar=False)) < (1e-10 if offset else 1e-13)


def test_running_moments_check_shapes():
    m = RunningMoments(2, 3)
    with pytest.raises(ValueError, match=r"expected rows of shape \(n, 3\)"):
        m.add(np.zeros((4, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="groups of shape"):
        m.add(np.zeros((4, 3)), np.zeros(3, dtype=int))


def test_streamed_grade_equals_the_dense_one():
    """compute_grade over batches of two species (one batch with one atom) against the
    statistics of all atoms stacked; the grade then leaves every atom at S_grade = 1."""
    structures = [random_structure("triclinic", species=SPECIES, seed=k) for k in range(1, 7)]
    structures.append(random_structure("small", seed=9))                    # one Nb atom alone
    model = random_model("E[G3L2] + A[G3P2] + G3", species=SPECIES, structures=structures)
    systems = [model.system(structures[:2]), model.system([structures[6]]), model.system(structures[2:3]),
               model.system(structures[3:6])]
    dense = _dense_grade(model, systems)
    moments = RunningMoments(len(SPECIES), model.params["g.mu"].shape[1])
    for s in systems:
        ctx = model.context(s)
        moments.add(ctx.safety.feature_vector(), s.species_n)
    info = model.compute_grade(systems)
    U_all = model.grade_factor()
    d = model.params["g.mu"].shape[1]
    for z, sym in enumerate(SPECIES):
        mu, C, U, lo = dense[z]
        assert info[sym]["n_atoms"] == sum(int(np.sum(s.species_n == z)) for s in systems)
        assert info[sym]["d"] == d
        assert _rel(model.params["g.mu"][z], mu) < 1e-12
        assert _rel(moments.covariance(z), C) < 1e-12
        assert _rel(model.params["g.gamma_lo"][z], np.array(lo)) < 1e-9
        assert model.params["g.gamma_hi"][z] == pytest.approx(9.0 * lo, rel=1e-9)
        for s in systems:
            ctx = model.context(s)
            f = ctx.safety.feature_vector()[s.species_n == z]
            if len(f):
                assert _rel(np.sum(((f - model.params["g.mu"][z]) @ U_all[z].T) ** 2, axis=1),
                            np.sum(((f - mu) @ U.T) ** 2, axis=1)) < 1e-9
                assert np.all(ctx.grade().S_n == 1.0)

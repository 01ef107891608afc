"""Information-matching data selection on the Nb data: subsets of 10, 25 and 50 % of the
training pool chosen by information matching (compot.selection, package
information-matching), by greedy D-optimality and at random (5 seeds), refitted, and
judged by validation errors, QoI errors against DFT and whether the predicted σ of each
QoI covers the actual error.

    .venv/bin/python benchmarks/selection_nb.py [--fractions 0.1 0.25 0.5] [--seeds 5]

What is refitted (the default, small enough for a shared 2-core machine): the linear
coefficients of the shipped model `examples/nb/model.params` (73, one joint SVD solve
as `compot fit`'s final stage, its settings and priors, the grade off during the solve
and then fitted to the subset's atoms; on the whole pool this reproduces the shipped
coefficients to 6e-8 relative), with its nonlinear parameters (α, β, γ) and scales held; a full dual-bipartite fit per subset (Bayesian optimisation
of the nonlinear parameters) is not run. The pool is the training split of
`examples/nb/config.yaml` (301 configurations), the validation split (33) is never
selected from.

Information matching needs a target precision ε per QoI; a subset size is reached by
scaling ε = c · σ_pool (σ_pool the QoI's σ with the whole pool): the tightest c whose
selection fits in the size, found on a grid of c and then by bisection in ln c between
the two grid points that bracket the size (``--bisections`` steps); the rest of the size
is filled by D-optimal greedy choice given the IM selection (weight 1). The IM subset is
fitted with the IM weights.

The report also gives, per QoI, the share of its information that each group of the
pool carries (gᵀ Σ I_group Σ g / gᵀ Σ g with Σ the pool's covariance: the shares of the
groups and the prior add up to 1) and, per subset, the predicted σ and the deviation
|q − q_whole pool|, which is what information matching controls (the error against DFT
adds the whole-pool model's own error).

Elastic cells are also counted by strain: "large-strain shear" cells have a shear
component and a largest Voigt strain beyond 0.021, the range of the DFT reference fit
(compot.properties.elastic_fit); the whole pool is refitted once without them, to see
how much the model's C44 rests on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fitting"))

from compot.config import load_config, resolve_path  # noqa: E402
from compot.evaluation import evaluate_split  # noqa: E402
from compot.io import atomic_write_json, atomic_write_text, read_model  # noqa: E402
from compot.pipeline import load_splits, property_files  # noqa: E402
from compot.properties import _reference_cell, _voigt_strain, material_properties  # noqa: E402
from compot.recipe import derive_settings  # noqa: E402
from compot.selection import (d_optimal, information_matching, pool_information, qoi_fim,  # noqa: E402
                              target_qois)
from compot.settings import FitSettings  # noqa: E402
from compot.trainer import Trainer  # noqa: E402
from compot.uncertainty import calibration, parameter_covariance, qoi_sigma  # noqa: E402

TARGETS = ["a0", "C11", "C12", "C44", "B", "E_V"]
#: largest strain of the DFT reference elastic fit (compot.properties.elastic_fit's max_strain)
REFERENCE_STRAIN = 0.021
C_GRID = [1.2, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0]


def refit(model, configs, weights, settings):
    """The linear coefficients solved as compot fit's final stage does (grade off during the
    solve), then the grade fitted to the subset's atoms (as the trainer does after it)."""
    m = model.copy()
    m.params["g.U"] = np.zeros_like(m.params["g.U"])
    subset = [replace(c, weight=c.weight * float(w)) for c, w in zip(configs, weights)]
    tr = Trainer(m, subset, settings)
    tr.solve(m.blocks("linear"))
    m.compute_grade(tr.data.systems[:tr.data.n_data_batches])
    return m


def solve_im(info, grads, sig_pool, s, c):
    """Information matching at ε = c · σ_pool: a grid entry (``weights`` or ``error``)."""
    eps = {t: c * sig_pool[t] for t in TARGETS}
    try:
        r = information_matching(info, qoi_fim(grads, eps, s), weight_bound=1.0)
    except Exception as exc:  # noqa: BLE001 - an infeasible or failed solve is recorded
        print(f"IM c = {c:.4g}: {exc}", flush=True)
        return {"c": c, "error": str(exc)}
    print(f"IM c = {c:.4g}: {len(r['selected'])} configurations, Σw {r['weights'].sum():.1f}, {r['seconds']:.1f} s",
          flush=True)
    return {"c": c, "n": len(r["selected"]), "sum_w": float(r["weights"].sum()), "seconds": r["seconds"],
            "weights": r["weights"]}


def tightest_fitting(info, grads, sig_pool, s, im_grid, k, bisections):
    """The entry of the tightest c whose selection has at most ``k`` configurations: the
    tightest such grid point, then ``bisections`` halvings in ln c of the interval to the
    next tighter grid point (which selects more than ``k``, or fails). Returns (entry,
    bisection entries)."""
    ok = [g for g in im_grid if "n" in g and g["n"] <= k]
    if not ok:
        return max((g for g in im_grid if "n" in g), key=lambda g: g["c"]), []
    best = min(ok, key=lambda g: g["c"])
    tighter = [g["c"] for g in im_grid if g["c"] < best["c"]]
    if not tighter:
        return best, []
    lo, steps = max(tighter), []
    for _ in range(bisections):
        g = solve_im(info, grads, sig_pool, s, float(np.sqrt(lo * best["c"])))
        steps.append(g)
        if "n" in g and g["n"] <= k:
            best = g
        else:
            lo = g["c"]
    return best, steps


def information_shares(info, grads, s2, groups):
    """Per QoI, the share of its information carried by each group of the pool and by the
    prior: with M = I_prior + Σ_m I_m and v = M⁻¹ g, share(G) = vᵀ (Σ_(m∈G) I_m) v / vᵀ M v."""
    fims = info.fims()
    M = info.prior / s2 + fims.sum(axis=0)
    Minv = np.linalg.pinv(M, rcond=1e-12, hermitian=True)
    out = {}
    for t, g in grads.items():
        v = Minv @ g
        total = float(v @ M @ v)
        out[t] = {G: float(v @ fims[[m for m, x in enumerate(groups) if x == G]].sum(axis=0) @ v) / total
                  for G in sorted(set(groups))}
        out[t]["prior"] = float(v @ (info.prior / s2) @ v) / total
    return out


def large_shear_cells(pool, elastic) -> set:
    """Indices of the pool's cells of the elastic file with a shear strain and a largest
    Voigt strain |η| > REFERENCE_STRAIN, relative to its cubic cell of lowest energy."""
    if elastic is None:
        return set()
    el = [i for i, c in enumerate(pool) if Path(c.source.rsplit(":", 1)[0]).resolve() == Path(elastic).resolve()]
    if not el:
        return set()
    cell0, _ = _reference_cell([pool[i].cell for i in el], [pool[i].energy / pool[i].n_atoms for i in el])
    out = set()
    for i in el:
        eta = _voigt_strain(pool[i].cell, cell0)
        if np.abs(eta).max() > REFERENCE_STRAIN and (np.abs(eta[3:]) > 1e-4).any():
            out.add(i)
    return out


def predicted_sigma(info, grads, s2, idx, w):
    M = info.prior / s2 + sum(wi * info.fim(i) for i, wi in zip(idx, w))
    Minv = np.linalg.pinv(M, rcond=1e-12, hermitian=True)
    return {t: float(np.sqrt(grads[t] @ Minv @ grads[t] / s2)) for t in grads}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "examples/nb/config.yaml"))
    p.add_argument("--model", default=str(ROOT / "examples/nb/model.params"))
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--bisections", type=int, default=5,
                   help="halvings in ln c between the grid points that bracket a size (default 5)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/selection_nb"))
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    cfg, base = load_config(args.config)
    sp = load_splits(cfg, base, test=False)
    _, fit_cfg = derive_settings(cfg["model"], cfg["fit"], sp.train, sp.species)
    settings = FitSettings.from_dict(fit_cfg)
    model = read_model(args.model)
    pool, val = sp.train, sp.validation
    n = len(pool)
    qoi, kind, a0 = target_qois(model, pool, TARGETS)
    # DFT references (E_V: the data has no vacancy; the full-pool refit stands in)
    from compot import derive
    elastic, _ = property_files([resolve_path(p_, base) for p_ in cfg["data"]["train"]])
    props = material_properties(model, "Nb", derive.Lattice(kind, a0, "Nb"), elastic, None)
    dft = {t: props[t].get("dft") for t in TARGETS if t in props}

    full = refit(model, pool, np.ones(n), settings)
    cov = parameter_covariance(full, pool, settings)
    cal = calibration(cov, full, val)
    k_infl = cal["inflation_force"]
    values, sig_pool, grads = qoi_sigma(cov, full, qoi)
    ref = {t: dft.get(t) if dft.get(t) is not None else values[t] for t in TARGETS}
    info = pool_information(cov, full, pool, settings)
    s = np.sqrt(cov.s2)

    groups = [c.group for c in pool]
    shares = information_shares(info, grads, cov.s2, groups)
    large_shear = large_shear_cells(pool, elastic)

    def judge(m, idx, w):
        q = qoi(m)
        mv, _, _, _ = evaluate_split(m, val)
        ps = predicted_sigma(info, grads, cov.s2, idx, w)
        err = {t: q[t] - ref[t] for t in TARGETS}
        dev = {t: q[t] - values[t] for t in TARGETS}
        return {"n": len(idx), "qoi": q, "error": err, "deviation_from_full": dev, "sigma": ps,
                "groups": {G: sum(1 for i in idx if groups[i] == G) for G in sorted(set(groups))},
                "large_strain_shear": sum(1 for i in idx if int(i) in large_shear),
                "rmse_energy_mev": 1e3 * mv["rmse_energy_per_atom"], "rmse_force": mv["rmse_force"],
                "covers_full_2sigma": {t: abs(dev[t]) <= 2 * ps[t] for t in TARGETS},
                "covers_ref_2sigma_inflated": {t: abs(err[t]) <= 2 * k_infl * ps[t] for t in TARGETS}}

    results = {"full": judge(full, list(range(n)), np.ones(n))}
    if large_shear:
        keep = [i for i in range(n) if i not in large_shear]
        results["without_large_shear"] = judge(refit(full, [pool[i] for i in keep], np.ones(len(keep)), settings),
                                               keep, np.ones(len(keep)))
    # information matching over a grid of precisions c · σ_pool
    im_grid = [solve_im(info, grads, sig_pool, s, c) for c in C_GRID]
    rows = {}
    for f in args.fractions:
        k = int(round(f * n))
        g, steps = tightest_fitting(info, grads, sig_pool, s, im_grid, k, args.bisections)
        w_all = g["weights"]
        sel = [int(i) for i in np.argsort(-w_all) if w_all[i] > 0][:k]
        idx = d_optimal(info, k - len(sel), start=sel)
        w = np.array([w_all[i] if i in sel else 1.0 for i in idx])
        m = refit(full, [pool[i] for i in idx], w, settings)
        row = {"k": k, "c": g["c"], "precision": {t: g["c"] * sig_pool[t] for t in TARGETS},
               "bisection": [{k_: v for k_, v in b.items() if k_ != "weights"} for b in steps],
               "im_selected": len(sel), "im_sum_weights": float(w_all.sum()),
               "im_groups": {G: sum(1 for i in sel if groups[i] == G) for G in sorted(set(groups))},
               "im": judge(m, idx, w)}
        didx = d_optimal(info, k)
        row["d_optimal"] = judge(refit(full, [pool[i] for i in didx], np.ones(k), settings), didx, np.ones(k))
        row["random"] = []
        for seed in range(args.seeds):
            ridx = list(np.random.default_rng(seed).choice(n, k, replace=False))
            row["random"].append(judge(refit(full, [pool[i] for i in ridx], np.ones(k), settings), ridx,
                                       np.ones(k)))
        rows[f] = row
        print(f"{f:.0%} ({k}): IM c = {g['c']:.4g} ({len(sel)} by IM) done", flush=True)
    seconds = time.perf_counter() - t_start
    doc = {"command": "python benchmarks/selection_nb.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "targets": TARGETS, "reference": ref, "dft": dft, "values_full": values, "sigma_pool": sig_pool,
           "inflation_force": k_infl, "n_pool": n, "n_validation": len(val), "rank": cov.rank,
           "pool_groups": {G: groups.count(G) for G in sorted(set(groups))}, "information_shares": shares,
           "im_grid": [{k_: v for k_, v in g.items() if k_ != "weights"} for g in im_grid],
           "full": results["full"], "n_large_strain_shear": len(large_shear),
           "without_large_strain_shear": results.get("without_large_shear"),
           "fractions": {str(f): r for f, r in rows.items()}, "seconds": seconds}
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), doc, indent=1)
    atomic_write_text(out.with_suffix(".md"), report(doc))
    print(f"wrote {out.with_suffix('.md')} ({seconds / 60:.1f} min)")


def _mean_abs(runs, t):
    return float(np.mean([abs(r["error"][t]) for r in runs]))


def report(doc) -> str:
    T = doc["targets"]
    units = {"a0": "Å", "C11": "GPa", "C12": "GPa", "C44": "GPa", "B": "GPa", "E_V": "eV"}
    L = ["# Information-matching selection on the Nb data", "",
         f"`{doc['command']}` ({doc['seconds'] / 60:.1f} min on a shared 2-core machine).", "",
         f"Pool: the training split of `examples/nb/config.yaml` ({doc['n_pool']} configurations); errors on its "
         f"validation split ({doc['n_validation']}). Each subset refits the 73 linear coefficients of the shipped "
         "model (`examples/nb/model.params`; nonlinear parameters, scales and grade held; the fit's priors "
         f"included); {doc['rank']} parameter directions are significant on the whole pool. "
         "QoI errors are against DFT from the data's elastic set (a0, C11, C12, C44, B); the data has no "
         "vacancy, so E_V (unrelaxed, 54-atom cell) is compared with the whole-pool refit. "
         "Information matching: package information-matching (SDPA), weights ≤ 1, target precision "
         "ε = c · σ_pool with c the tightest whose selection fits the size (the grid below, then bisection in "
         "ln c between the grid points that bracket the size), filled up by D-optimal "
         "choice. Random: mean (± standard deviation) over 5 seeds.", "",
         "## Whole pool", "",
         "| | " + " | ".join(f"{t} [{units[t]}]" for t in T) + " |", "|---|" + "---|" * len(T),
         "| DFT / reference | " + " | ".join(f"{doc['reference'][t]:.4g}" for t in T) + " |",
         "| whole-pool refit | " + " | ".join(f"{doc['full']['qoi'][t]:.4g}" for t in T) + " |",
         "| σ (whole pool, raw) | " + " | ".join(f"{doc['sigma_pool'][t]:.3g}" for t in T) + " |", "",
         f"Validation: E {doc['full']['rmse_energy_mev']:.2f} meV/atom, F {doc['full']['rmse_force']:.4f} eV/Å. "
         f"Post-hoc inflation factor (force z-scores on the validation split): {doc['inflation_force']:.2f}.", "",
         "IM over the precision grid: " + ", ".join(
             f"c = {g['c']}: {g.get('n', 'failed')}" for g in doc["im_grid"]) + " configurations.", ""]
    sh = doc.get("information_shares")
    if sh:
        G = list(next(iter(sh.values())))
        L += ["Where each QoI's information comes from in the whole pool (share of gᵀ Σ I_group Σ g in gᵀ Σ g; "
              "pool: " + ", ".join(f"{g} {n_}" for g, n_ in doc["pool_groups"].items()) + " configurations):", "",
              "| QoI | " + " | ".join(G) + " |", "|---|" + "---|" * len(G)]
        L += [f"| {t} | " + " | ".join(f"{100 * sh[t][g]:.1f} %" for g in G) + " |" for t in T]
        L.append("")
    wl = doc.get("without_large_strain_shear")
    if wl:
        L += [f"The pool has {doc['n_large_strain_shear']} large-strain shear cells (a shear strain and a largest "
              f"strain |η| > {REFERENCE_STRAIN}, beyond the DFT reference fit). The whole pool refitted without "
              "them:", "",
              "| | " + " | ".join(T) + " |", "|---|" + "---|" * len(T),
              "| value | " + " | ".join(f"{wl['qoi'][t]:.4g}" for t in T) + " |",
              "| − whole pool | " + " | ".join(f"{wl['deviation_from_full'][t]:+.3g}" for t in T) + " |",
              "| predicted σ (raw) | " + " | ".join(f"{wl['sigma'][t]:.3g}" for t in T) + " |", ""]
    for f, r in doc["fractions"].items():
        k = r["k"]
        bis = r.get("bisection") or []
        bis_text = (" (bisection: " + ", ".join(f"c = {b['c']:.3g}: {b.get('n', 'failed')}" for b in bis) + ")"
                    if bis else "")
        grp = r.get("im_groups")
        grp_text = (" (" + ", ".join(f"{g} {n_}" for g, n_ in grp.items()) + f"; Σ weights {r['im_sum_weights']:.1f})"
                    if grp else "")
        L += [f"## {float(f):.0%} of the pool ({k} configurations)", "",
              f"Information matching at c = {r['c']:.3g}{bis_text} selected {r['im_selected']}{grp_text}, "
              "the rest D-optimal; target precision ε: " + ", ".join(f"{t} {r['precision'][t]:.3g}" for t in T)
              + ".", "",
              "| selection | E RMSE [meV/atom] | F RMSE [eV/Å] | " + " | ".join(f"\\|Δ{t}\\|" for t in T) + " |",
              "|---|---|---|" + "---|" * len(T)]
        full = doc["full"]
        L.append("| whole pool | " + f"{full['rmse_energy_mev']:.2f} | {full['rmse_force']:.4f} | "
                 + " | ".join(f"{abs(full['error'][t]):.3g}" for t in T) + " |")
        for label, runs in (("information matching", [r["im"]]), ("D-optimal", [r["d_optimal"]]),
                            ("random (mean ± sd)", r["random"])):
            e = [x["rmse_energy_mev"] for x in runs]
            fr = [x["rmse_force"] for x in runs]
            if len(runs) == 1:
                cells = [f"{e[0]:.2f}", f"{fr[0]:.4f}"] + [f"{abs(runs[0]['error'][t]):.3g}" for t in T]
            else:
                cells = [f"{np.mean(e):.2f} ± {np.std(e):.2f}", f"{np.mean(fr):.4f} ± {np.std(fr):.4f}"]
                cells += [f"{_mean_abs(runs, t):.3g} ± {np.std([abs(x['error'][t]) for x in runs]):.2g}" for t in T]
            L.append(f"| {label} | " + " | ".join(cells) + " |")
        im = r["im"]
        ok_full = [t for t in T if abs(im["error"][t]) <= abs(full["error"][t]) + r["precision"][t]]
        better = [t for t in T if abs(im["error"][t]) < _mean_abs(r["random"], t)]
        L += ["", f"IM within |whole-pool error| + ε: {len(ok_full)}/{len(T)} ({', '.join(ok_full) or 'none'}); "
              f"better than the mean random subset: {len(better)}/{len(T)} ({', '.join(better) or 'none'}).", "",
              "Predicted σ (raw) / deviation |q − q_whole pool| of each subset's refit (what information matching "
              "controls; the error against DFT above adds the whole-pool model's own error):", "",
              "| selection | " + " | ".join(T) + " |", "|---|" + "---|" * len(T)]
        for label, runs in (("information matching", [r["im"]]), ("D-optimal", [r["d_optimal"]]),
                            ("random (mean)", r["random"])):
            L.append(f"| {label} | " + " | ".join(
                f"{np.mean([x['sigma'][t] for x in runs]):.3g} / "
                f"{np.mean([abs(x['deviation_from_full'][t]) for x in runs]):.3g}" for t in T) + " |")
        if "large_strain_shear" in im:
            L += ["", "Large-strain shear cells in the subset: information matching "
                  f"{im['large_strain_shear']}, D-optimal {r['d_optimal']['large_strain_shear']}, random "
                  + ", ".join(str(x["large_strain_shear"]) for x in r["random"]) + "."]
        closer = [t for t in T if abs(im["deviation_from_full"][t])
                  < np.mean([abs(x["deviation_from_full"][t]) for x in r["random"]])]
        L += ["", f"IM closer to the whole-pool values than the mean random subset: {len(closer)}/{len(T)} "
              f"({', '.join(closer) or 'none'}).", "",
              "σ coverage (predicted σ of the subset's refit, raw): share of QoIs with |q − q_whole pool| ≤ 2σ, "
              "and |q − reference| ≤ 2 k σ (k the inflation factor):", ""]
        for label, runs in (("information matching", [r["im"]]), ("D-optimal", [r["d_optimal"]]),
                            ("random", r["random"])):
            a = np.mean([x["covers_full_2sigma"][t] for x in runs for t in T])
            b = np.mean([x["covers_ref_2sigma_inflated"][t] for x in runs for t in T])
            L.append(f"- {label}: {a:.2f}, {b:.2f}")
        L.append("")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()

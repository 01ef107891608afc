#!/usr/bin/env python3
"""Forces of a several-species model on thermally rattled random bcc cells of every subset
of its species: where the model interpolates between its training chemistries and where it
extrapolates.

For each model, each non-empty subset of its species (elements, binaries, ternaries, the
quaternary) and each displacement amplitude σ [Å] (Gaussian, per Cartesian component; σ ≈
0.05 Å is about 300 K in these metals), ``--cells`` random 128-atom bcc cells (4×4×4 cubic
cells at ``--a0``, species drawn evenly) are evaluated by the C core
(:class:`compot.ccore.CCoreCalculator`), and the largest force component [eV/Å] is reported,
with the median over the cells. A physically sane model gives a few eV/Å at 300 K; tens to
hundreds of eV/Å mean the model extrapolates badly in that chemistry, and MD there loses
atoms (issue 14: the published binary cells are relaxed, max |F| 0.09 eV/Å, so no training
configuration shows an unlike pair away from its lattice site).

    .venv/bin/python benchmarks/alloy_forces.py runs/nbmotaw/model.params [more.params ...]
    .venv/bin/python benchmarks/alloy_forces.py A.params B.params --sigma 0.03 0.05 --cells 3

Writes ``--out``.json and .md (default benchmarks/results/alloy_forces). Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fitting"))

from ase.build import bulk  # noqa: E402

from compot.ccore import CCoreCalculator  # noqa: E402
from compot.io import atomic_write_json, atomic_write_text, read_model  # noqa: E402


def largest_forces(core, subset: tuple[str, ...], sigma: float, a0: float, n_cells: int,
                   rng: np.random.Generator) -> list[float]:
    """Largest |F_i,α| [eV/Å] of each of ``n_cells`` rattled random 128-atom bcc cells of ``subset``,
    evaluated by ``core`` (a :class:`compot.ccore.CCoreCalculator`'s core)."""
    out = []
    for _ in range(n_cells):
        at = bulk("Fe", "bcc", a=a0, cubic=True).repeat(4)
        at.set_chemical_symbols(rng.permutation((list(subset) * len(at))[:len(at)]))
        at.positions += rng.normal(0.0, sigma, at.positions.shape)
        _, _, F, _ = core.evaluate(at)
        out.append(float(np.abs(F).max()))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="parameter files of several-species models")
    p.add_argument("--sigma", type=float, nargs="+", default=[0.03, 0.05, 0.1],
                   help="displacement amplitudes [Å] (default 0.03 0.05 0.1)")
    p.add_argument("--a0", type=float, default=3.22, help="bcc lattice constant [Å] (default 3.22, NbMoTaW)")
    p.add_argument("--cells", type=int, default=3, help="random cells per subset and σ (default 3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/alloy_forces"))
    args = p.parse_args(argv)
    results = {}
    for path in args.models:
        species = read_model(path).species
        core = CCoreCalculator(path).core            # read once, evaluated for every cell
        rng = np.random.default_rng(args.seed)
        rows = {}
        for n in range(1, len(species) + 1):
            for subset in itertools.combinations(species, n):
                for s in args.sigma:
                    f = largest_forces(core, subset, s, args.a0, args.cells, rng)
                    rows["-".join(subset) + f"@{s}"] = f
                    print(f"{Path(path).name} {'-'.join(subset):12s} σ {s}: max |F| "
                          f"{', '.join(f'{x:.2f}' for x in f)} eV/Å", flush=True)
        results[path] = rows
    cmd = "python benchmarks/alloy_forces.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Forces on rattled random bcc cells of every species subset", "",
             f"`{cmd}`: {args.cells} random 128-atom bcc cells (a = {args.a0} Å) per subset and "
             "displacement σ, evaluated by the C core; the median over the cells of the largest force "
             "component [eV/Å] (σ ≈ 0.05 Å is about 300 K).", ""]
    for path, rows in results.items():
        subsets = sorted({k.split("@")[0] for k in rows}, key=lambda s: (s.count("-"), s))
        lines += [f"## {path}", "", "| species | " + " | ".join(f"σ = {s} Å" for s in args.sigma) + " |",
                  "|---|" + "--:|" * len(args.sigma)]
        for sub in subsets:
            lines.append(f"| {sub} | " + " | ".join(f"{np.median(rows[f'{sub}@{s}']):.2f}" for s in args.sigma) + " |")
        lines.append("")
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    atomic_write_json(out.with_suffix(".json"), {"command": cmd, "a0": args.a0, "sigma": args.sigma,
                                                 "cells": args.cells, "max_force": results}, indent=1)
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

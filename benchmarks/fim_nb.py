"""Time of the 256-bit FIM eigenspectrum of the paper's 75-parameter model
E[G8L4] + N[E[G8L4]] on the niobium training data (not a test; target ≤ 30 s).

    .venv/bin/python benchmarks/fim_nb.py [--model examples/nb/paper_e8l4_n8l4.params]

Writes benchmarks/results/fim_nb.json and .md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fitting"))

from compot.analysis import fim_analysis  # noqa: E402
from compot.data import default_data_dir, read_dataset, train_validation_split  # noqa: E402
from compot.io import read_model  # noqa: E402

from _results import write_quantity_table  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "examples" / "nb" / "paper_e8l4_n8l4.params"))
    p.add_argument("--bits", type=int, default=256)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fim_nb"))
    args = p.parse_args(argv)
    model = read_model(args.model)
    configs = read_dataset([default_data_dir() / "nb-mvl"], group_by="file")
    train, _ = train_validation_split(configs, 0.1, 0)
    t0 = time.perf_counter()
    res = fim_analysis(model, train, bits=args.bits)
    total = time.perf_counter() - t0
    ours = res["ours"]
    out = {"command": " ".join([Path(sys.executable).name] + sys.argv), "load_average": os.getloadavg(),
           "expression": model.expression, "n_parameters": res["n_parameters"], "n_rows": res["n_rows"],
           "bits": args.bits, "seconds_total": total, "seconds_spectrum": ours.seconds,
           "seconds_paper_parametrisation": res["paper"].seconds if "paper" in res else None,
           "log10_condition_number": ours.log10_condition_number, "n_significant": ours.n_significant,
           "blocks": {k: v.log10_condition_number for k, v in ours.blocks.items()},
           "paper_log10_condition_number": res["paper"].log10_condition_number if "paper" in res else None}
    write_quantity_table(Path(args.out), out, f"Command: `{out['command']}` (load {out['load_average'][0]:.1f})", [
          f"| {model.expression}: {out['n_parameters']} linear parameters, {out['n_rows']} rows | | |",
          f"| Jacobian + exact FIM + {args.bits}-bit spectra (both parametrisations, blocks) | {total:.1f} s | ≤ 30 s |",
          f"| of which the spectrum as stored | {ours.seconds:.1f} s | |",
          f"| log10 κ (as stored / paper parametrisation) | {ours.log10_condition_number:.2f} / "
          f"{out['paper_log10_condition_number']:.2f} | |",
          f"| SC eigenvalues | {ours.n_significant} | |"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

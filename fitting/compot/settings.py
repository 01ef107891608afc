"""The one schema of compot's YAML configuration (sections model, data, fit, design, execution).

Each section is a dataclass whose fields carry their default and, in the field's
metadata, their meaning (``doc``) and the rules of their value (``choices``,
``keys`` of a mapping). One generic loader, :func:`load_section`, turns a mapping
from a YAML file into a section: it rejects unknown keys naming the file, the key
and the allowed keys, converts numbers, checks every rule and fills in the
defaults. The reference tables of docs/fitting.md are generated from the same
fields (:func:`docs_tables`; ``python -m compot.settings docs/fitting.md``
rewrites them, and a test fails when they differ).

Every check raises :class:`compot.errors.ConfigError`, whose message starts with
where the value was found (``examples/nb/config.yaml: fit.bounds.alpha: …``).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field, fields

from .errors import ConfigError, reject_unknown_keys

__all__ = ["ModelSettings", "DataSettings", "FitSettings", "DesignSettings", "ExecutionSettings", "SECTIONS", "load_section",
           "section_defaults", "docs_tables", "DEFAULT_EXPRESSION", "DEFAULT_FIT", "DEFAULT_BOUNDS",
           "DEFAULT_SINGLE_TERMS", "COMPOSITIONS", "LATTICES", "ZBL_ANCHOR_KEYS", "EOS_ANCHOR_KEYS", "SITE_PRIOR_KEYS", "HOT_PRIOR_KEYS",
           "DATA_KEYS"]

#: The project's recommended composition (MODEL_SPEC §3–4, §10): the exponentiated
#: pair-cluster term, the three-body angular term on the same G8 basis, and the
#: fixed ZBL core with its window from the data.
DEFAULT_EXPRESSION = "E[G8L4] + A[G8P4] + ZBL"

#: Fit settings of the default recipe (compot.recipe), which override the bare
#: trainer's defaults of :class:`FitSettings` key by key. Energies per atom with
#: weight 10⁴ so that energy [eV/atom] and force [eV/Å] errors count alike
#: (10⁴ (meV/atom)² ~ (0.1 eV/Å)²); the EOS prior with a small weight; a truncated
#: SVD that keeps coefficients moderate.
DEFAULT_FIT = {
    "max_evaluations": 30,
    "init_points": 8,
    "polish_evaluations": 20,
    "energy_per_atom": True,
    "energy_weight": 1.0e4,
    "eos_anchor": {"weight": 0.03},
    "site_prior": {"weight": 1.0e-4},     # several species only (compot.recipe)
    "hot_prior": {"steps": 5000, "rounds": 6, "per_round": 32, "quenches": 2},
    "rcond": 1.0e-7,
}

#: Default search box of nonlinear parameters. α [Å⁻²] is searched in log space. A
#: species embedding (``model.chemistry: embedded``) has its first channel's weights
#: W[s, 1] in ``w1``, positive: every neighbour adds density, as SNAP's element weights
#: and EAM's densities do. With signed weights the densities of a mixed environment
#: cancel to values no element's data reach, and the published NbMoTaW binaries (relaxed
#: cells, max |F| 0.09 eV/Å) fix nothing there: a rank-1 fit with W[Nb] = −1.45 gave
#: 150-200 eV/Å on Nb-Ta cells rattled by 0.03-0.05 Å, the same fit with |W| 1.4-2.8 eV/Å
#: in every species subset (benchmarks/results/alloy_forces.md). Further channels
#: (contrasts, signed) in ``w``.
DEFAULT_BOUNDS = {"alpha": (0.005, 2.0), "beta": (1.05, 3.0), "gamma": (-3.0, 3.0), "w1": (0.2, 1.5),
                  "w": (-1.5, 1.5)}

#: Ground-state lattices the recipe and the checks know.
LATTICES = ("bcc", "fcc", "hcp", "diamond")

#: Single-term configurations of the design scan (paper TABLE 6).
DEFAULT_SINGLE_TERMS = (
    [f"G{k}" for k in range(4, 19, 2)]
    + [f"C{k}" for k in (8, 16, 24, 32, 40)]
    + ["E[G4L4]", "E[G4L6]", "E[G4L8]", "E[G6L4]", "E[G6L5]", "E[G8L4]", "E[G8L5]"]
    + ["N[E[G6L5]]", "N[E[G8L4]]"]
    + ["A[G4P2]", "A[G4P4]", "A[G6P4]", "A[G8P4]", "A[G8P6]"]
)

#: Dual-term kinds the design composes from the best single terms.
COMPOSITIONS = ("G*G", "G*E", "E+N", "G+A", "E+A")

#: Keys of ``fit.zbl_anchor`` and ``fit.eos_anchor`` (compot.anchors).
ZBL_ANCHOR_KEYS = ("r_min", "r_max", "n", "weight", "ranges")
EOS_ANCHOR_KEYS = ("a0", "e0", "bulk_modulus", "b_prime", "lattice", "scales", "weight", "species", "b2")
SITE_PRIOR_KEYS = ("weight", "e0")
HOT_PRIOR_KEYS = ("steps", "rounds", "per_round", "quenches", "seeds", "weight")

#: Keys of ``data.keys``: the quantities a data record supplies (compot.data.resolve_keys).
DATA_KEYS = ("energy", "forces", "stress")


def option(default=None, doc: str = "", *, factory=None, choices=None, keys=None, shown: str | None = None):
    """A schema field: its default (or ``factory`` for a mutable one), its meaning
    ``doc`` for docs/fitting.md, the allowed ``choices`` of its value or ``keys`` of
    its mapping, and ``shown``: how the docs show a default that has no YAML value."""
    meta = {"doc": doc, "choices": choices, "keys": keys, "shown": shown}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _copy(value):
    return lambda: (dict(value) if isinstance(value, dict) else list(value))


# ---------------------------------------------------------------------------- sections
@dataclass
class ModelSettings:
    """YAML section ``model``: what to fit (meanings in docs/fitting.md)."""

    expression: str = option(DEFAULT_EXPRESSION, "model in the paper's notation (grammar: "
                             "[parameter-file.md](parameter-file.md)); a bare `ZBL` takes its window from the data")
    cutoff: float | str = option("auto", "cutoff radius r_c [Å], or `auto` (from the data's lattice, above)")
    species: list | None = option(None, "chemical symbols, in the order of every species index",
                                  shown="from the data")
    lattice: str = option("auto", "ground-state lattice (`auto` = detected from the data, `bcc`, `fcc`, `hcp`, "
                          "`diamond`); anything else is an error", choices=("auto",) + LATTICES)
    chemistry: str = option("full", "neighbour channels of every basis: `full`, one per neighbour species "
                            "(MODEL_SPEC §2; coefficients grow as S² for E, N, G and S³ for A), or "
                            "`embedded`, `rank` channels with learned species weights W[s, c] "
                            "(φ_k^(c)(i) = Σ_j W_(Z_j c) ĝ_k(r_ij), SNAP's element weights for rank 1; "
                            "coefficients grow as S); W are nonlinear parameters of each basis, searched with "
                            "its α, β in the boxes `fit.bounds.w1` (first channel, positive) and `fit.bounds.w`",
                            choices=("full", "embedded"))
    rank: int = option(1, "channels r of `chemistry: embedded`, 1 ≤ r ≤ the number of species (r = S spans the "
                       "full chemistry of G and A)")

    def check(self, where: str) -> None:
        if not (isinstance(self.rank, int) and not isinstance(self.rank, bool) and self.rank >= 1):
            raise ConfigError(f"{where}: rank must be an integer >= 1, found {self.rank!r}")
        if self.species is not None and self.chemistry == "embedded" and self.rank > len(self.species):
            raise ConfigError(f"{where}: rank must be <= the number of species ({len(self.species)}), "
                              f"found {self.rank}")
        cut = self.cutoff
        if cut != "auto" and not (isinstance(cut, (int, float)) and not isinstance(cut, bool) and cut > 0):
            raise ConfigError(f"{where}: cutoff must be 'auto' or a positive radius in Å, found {cut!r}")


@dataclass
class DataSettings:
    """YAML section ``data``: the training and test data and their split."""

    train: list = option(doc="files or folders of training data: ASE-readable files (extended XYZ, VASP "
                         "`OUTCAR`, `vasprun.xml`, …) and the MVL JSON format; a folder stands for its "
                         "`*.extxyz`/`*.xyz` files and the `OUTCAR`/`vasprun.xml` files in it and its subfolders "
                         "(of a folder holding both, only `vasprun.xml`)", factory=list, shown="— (required)")
    test: list = option(doc="explicit test files (never used for fitting)", factory=list)
    validation_fraction: float = option(0.1, "share of the training files held out, per group, seeded")
    validation: str = option("random", "how the held-out share is drawn, per group: `random` (random "
                             "snapshots) or `by_block` (snapshots of one AIMD run are correlated, so a random "
                             "split flatters the model): a group of several files holds out whole files; a group "
                             "of one file is cut into runs (a new run where the atoms, the cell or the record's "
                             "description, e.g. extxyz `source_desc`, change in anything but the snapshot "
                             "counter) and holds out one contiguous block of each run in counter order, at a "
                             "seeded start, the blocks proportional to the runs (largest remainder); one run, or "
                             "none recognised, gives one block of the file (`compot.data.split`, \"Validation "
                             "by block\" below)",
                             choices=("random", "by_block"))
    seed: int = option(0, "seed of the split")
    min_distance: float = option(0.5, "smallest allowed interatomic distance [Å]; closer pairs are an error")
    group_by: str = option("file", "group of a configuration: its file stem (`Nb_AIMD`) or the file's "
                           "`config_type`", choices=("file", "config_type"))
    keys: dict = option(doc="names of the reference results in the files, e.g. `{energy: REF_energy, forces: "
                        "REF_forces, stress: REF_stress}` (MACE, nequip, pacemaker data sets); a quantity not "
                        "given keeps its own name (`--keys energy=REF_energy` on the command line)",
                        factory=dict, keys=DATA_KEYS)

    def check(self, where: str) -> None:
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(f"{where}: validation_fraction must be in [0, 1), found {self.validation_fraction!r}")
        for quantity, name in self.keys.items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"{where}.keys.{quantity}: expected the name of a key in the data files, "
                                  f"found {name!r}")


@dataclass
class FitSettings:
    """Settings of the dual-bipartite trainer (YAML section ``fit``, MODEL_SPEC §6).

    The meaning of every field is its ``doc`` metadata, shown in docs/fitting.md.
    The defaults are the bare trainer's; ``compot fit`` and ``compot design`` start
    from :data:`DEFAULT_FIT` instead.
    """

    max_evaluations: int = option(40, "Bayesian-optimisation evaluations per search stage (`bayes_opt`, UCB, "
                                  "sequential domain reduction)")
    init_points: int = option(8, "random evaluations at the start of each search (after the starting point)")
    polish_evaluations: int = option(20, "bounded Powell refinement (SciPy) of the best point afterwards (0 = off)")
    seed: int = option(0, "the procedure is deterministic for a seed")
    energy_weight: float = option(1.0, "loss weight w_E of energies (paper Eq. 26 uses 1); with "
                                  "`energy_per_atom`, 10⁴ (eV/atom)⁻² against 1 (eV/Å)⁻² counts 1 meV/atom like "
                                  "0.1 eV/Å")
    force_weight: float = option(1.0, "loss weight w_F of force components (paper Eq. 26 uses 1)")
    stress_weight: float = option(0.0, "loss weight w_S of stress components [GPa⁻²]: each of the six Voigt "
                                  "components of a periodic configuration's stress σ = W/V enters as w_S (Δσ "
                                  "[GPa])², W the virial; 1 GPa⁻² against 1 (eV/Å)⁻² counts 1 GPa like 1 eV/Å; "
                                  "0 = stress not fitted")
    stress_exclude: list = option(doc="groups whose stress is not fitted (e.g. `[Nb_Elastic]`, whose stresses "
                                  "disagree with its energies; `compot.stress_check` finds such groups)",
                                  factory=list)
    energy_per_atom: bool = option(False, "divide energy residuals by the atom count (then `energy_weight` "
                                   "weighs (ΔE/N)² [eV²/atom²])")
    group_weights: dict = option(doc="extra weight per group (multiplies its energy, force and stress terms), e.g. `{Nb_Elastic: 10}`",
                                 factory=dict)
    ridge: float = option(0.0, "Tikhonov weight on the column-normalised least squares (0 = none)")
    rcond: float = option(1e-10, "singular values below rcond·σ_max of the column-normalised design matrix "
                          "are discarded (truncated SVD); smaller values fit a little better with far larger, "
                          "cancelling coefficients (1e-12 gave 1e8 eV on the Nb data). The recipe's 1e-7 (1e-10 "
                          "until 2026-12-08): on a diamond Si training set the directions between 1e-10 and 1e-7 "
                          "made the fitted energy so steep just outside the data (170 eV/Å on an atom at 1.1 γ_lo) "
                          "that NVT at 2,200 K heated to 13,000 K in 3 of 4 runs; cut at 1e-7 every check passed "
                          "(benchmarks/results/safety_surrogate.md)")
    lstsq: str = option("streamed", "how the linear least squares is formed: `streamed` reduces each batch's "
                        "rows to the triangular factor of a QR and merges the factors (TSQR, `compot.lstsq`; "
                        "memory of one batch, batches spread over the Dask workers when a cluster is used), "
                        "`dense` holds the whole design matrix; both then apply the same scaling, ridge and "
                        "rcond truncation", choices=("streamed", "dense"))
    bounds: dict = option(doc="search box {alpha, beta, gamma, w1, w} → [low, high]; α [Å⁻²] is searched in log "
                          "space; w1 bounds the species-embedding weights of the first channel W[s, 1] (a density: "
                          "positive, so that a mixed environment's densities lie between its elements'; "
                          "`compot.settings.DEFAULT_BOUNDS`), w those of every further channel (contrasts). "
                          "A result on a bound is reported in the log and `report.md`",
                          factory=_copy(DEFAULT_BOUNDS), keys=tuple(DEFAULT_BOUNDS))
    steepest: str = option("data", "limit on the steepest Gaussian of a searched basis, a_K = α β^(K−1) "
                           "[Å⁻²]: `data` caps it where g_K = exp(−a_K r²) falls by the whole double-precision "
                           "range (1/ε) between the training data's shortest pair r_min and the term's cutoff "
                           "r_t, a_K ≤ ln(1/ε)/(r_t² − r_min²), by lowering β (then α); `box` = the search box "
                           "alone (docs/fitting.md, \"The steepest Gaussian\": what each costs and fixes)",
                           choices=("data", "box"))
    joint_search: bool = option(True, "a summand that searches nothing of its own (its basis searched by an "
                                "earlier summand, e.g. `A[G8P4]` in `E[G8L4] + A[G8P4]`) has its linear "
                                "coefficients solved in every evaluation of that search, so the basis is chosen "
                                "for every term on it; `false` = searched for the first term alone")
    search_atoms: int = option(30000, "atoms the Bayesian-optimisation searches evaluate: with more training "
                               "atoms than this, every group's configurations are thinned evenly (the same "
                               "fraction of each, at least one) for the searches, while the solve that ends "
                               "each search, every later solve and the scales use all of the data; "
                               "0 = search on all of it")
    max_sweeps: int = option(30, "alternating solves of products stop after max_sweeps sweeps …")
    tol: float = option(1e-7, "… or when a sweep improves the loss by less than tol (relative)")
    batch_atoms: int = option(3000, "atoms per evaluation batch (memory ∝ batch size)")
    neighbour_memory_mb: float = option(64.0, "memory [MB] for the batches' neighbour lists: each batch's "
                                        "is built once, those beyond this are written to a scratch folder in "
                                        "`$TMPDIR` and read back batch by batch (`compot.data.neighbour_store`; "
                                        "same numbers, a fit's memory then stops growing with the data)")
    freeze: list = option(doc="\"switches\": node names (`n1`) or blocks (`b1.alpha`) held fixed", factory=list)
    zbl_anchor: dict = option(doc="short-range prior for models with a ZBL core, e.g. `{r_min: 1.0, r_max: 2.3, "
                              "n: 14, weight: 10}`: dimers of every species pair at n distances in [r_min, r_max] "
                              "Å whose target forces are the ZBL forces alone (energies not fitted); `ranges` "
                              "(`{A-B: [r_min, r_max]}`) sets them per species pair; without r_min, r_max or "
                              "ranges the recipe derives each pair's range from the data: [r_a of its inner "
                              "window, the distance the window came from: its shortest distance in the data, or "
                              "its like pairs' mean where that set the window] (examples/nb/design.yaml: weight "
                              "0.1; "
                              "off in the default recipe, where it cost up to 15 % in force error); `{}` = off",
                              factory=dict, keys=ZBL_ANCHOR_KEYS)
    eos_anchor: dict = option(doc="equation-of-state prior: perfect lattices at `scales` × a0 (default 0.72–0.94 "
                              "and 1.06–1.40) whose energies follow the Vinet equation of state with a0 [Å], "
                              "E0 [eV/atom] (`e0`), B [GPa] (`bulk_modulus`), B′ (`b_prime`, default 4) and "
                              "`lattice`; with several species, `species` maps each element to its own a0, "
                              "e0, bulk_modulus, b_prime and lattice (a lattice of that element alone), and "
                              "`b2` (default true) adds the ordered B2 cell of every pair of bcc elements at "
                              "the compressed scales (< 1) of their mean a0, each atom's site energy held "
                              "to its own element's equation of state at the cell's volume per atom (the "
                              "data fix only an unlike pair's sum); a0, e0 "
                              "and bulk_modulus are derived from the data when none is given (every element "
                              "with enough cells of its own); `{}` = off", factory=dict, keys=EOS_ANCHOR_KEYS)

    site_prior: dict = option(doc="site-energy prior: rows √weight (E_i − e0[Z_i]) for every atom of the data, "
                              "`weight` [eV⁻²] and `e0` {element: eV}, the element's crystal energy per atom. "
                              "With several species the data fix only the sum of the two site energies of an "
                              "unlike pair's pair-like terms: a transfer between the A and B atoms of every A–B "
                              "pair changes no energy and no force, and fits without this prior used it at "
                              "±10⁴ eV per atom, which no lower bound or grade can hold "
                              "(benchmarks/results/accuracy_nbmotaw.md); the recipe sets it for several species, "
                              "`{weight: 1e-4}` (σ = 100 eV: far wider than any physical site energy's distance "
                              "from e0) with e0 from each element's equation of state; `{}` = off",
                              factory=dict, keys=SITE_PRIOR_KEYS)
    hot_prior: dict = option(doc="hot-MD prior (`compot fit` only; `compot.hot_prior`): after the fit, Langevin NVT "
                             "of every element's crystal at the NVT check's temperature T for `steps` fs (and, "
                             "for several species, of the random equiatomic bcc alloy at 3000 K); "
                             "snapshots whose energy per atom lies more than 3σ below the equipartition bound "
                             "e0 + 3/2 k_B T (σ = k_B T √(3/(2N)), e0 the model's perfect crystal; for the alloy "
                             "the elements' e0 plus the regular-solution floor of the data's binaries) join the fit "
                             "with that bound as their energy target and no force targets (at most `per_round` "
                             "per element and run, each with `weight`), and so do `quenches` snapshots per run quenched "
                             "(FIRE, fixed cell) more than 1 meV/atom below e0, with e0 + 1 meV/atom as their target "
                             "(a local minimum lies no lower than the ground state, a disordered one above it); "
                             "the final linear solve runs again (the weight of "
                             "a snapshot still below doubled, up to 6 times), and new runs follow, at most "
                             "`rounds` times; `seeds` (default 1) independent runs of each element (and of the alloy) per round; "
                             "the recipe's `{steps: 5000, rounds: 6, per_round: 32, quenches: 2}` (in hot "
                             "liquid Nb the first shipped NbMoTaW model fell 1 eV/atom below its crystal after "
                             "1.3–1.9 ps, benchmarks/results/hot_nvt.md); `{}` = off",
                             factory=dict, keys=HOT_PRIOR_KEYS)

    @classmethod
    def from_dict(cls, d: dict, where: str = "fit") -> "FitSettings":
        """:func:`load_section` of this class (the search box completed from
        :data:`DEFAULT_BOUNDS`, each bound a (low, high) tuple).

        Raises
        ------
        ConfigError
            For an unknown key or a value that breaks a rule.
        """
        return load_section(cls, d, where)

    def check(self, where: str) -> None:
        bounds = dict(DEFAULT_BOUNDS)
        for k, v in self.bounds.items():
            if not isinstance(v, (list, tuple)) or len(v) != 2 or not float(v[0]) < float(v[1]):
                raise ConfigError(f"{where}.bounds.{k}: expected [low, high] with low < high, found {v!r}")
            # the rules of the parameter file (docs/parameter-file.md): a fit must
            # not end in a model that no reader accepts
            if (k == "alpha" and not float(v[0]) > 0) or (k == "beta" and not float(v[0]) > 1):
                raise ConfigError(f"{where}.bounds.{k}: expected low > {0 if k == 'alpha' else 1} "
                                  f"({k} > {0 if k == 'alpha' else 1} in a parameter file), found {v!r}")
            bounds[k] = (float(v[0]), float(v[1]))
        self.bounds = bounds
        if not self.stress_weight >= 0:
            raise ConfigError(f"{where}: stress_weight must be >= 0 [GPa⁻²], found {self.stress_weight!r}")
        if not self.neighbour_memory_mb >= 0:
            raise ConfigError(f"{where}: neighbour_memory_mb must be >= 0 [MB], found {self.neighbour_memory_mb!r}")
        if self.max_evaluations < 1 or self.init_points < 0:
            raise ConfigError(f"{where}: max_evaluations must be >= 1 and init_points >= 0, "
                              f"found {self.max_evaluations}, {self.init_points}")


@dataclass
class DesignSettings:
    """YAML section ``design``: the adaptive design loop (MODEL_SPEC §8, compot.design)."""

    single_terms: list = option(doc="single-term scan", factory=_copy(DEFAULT_SINGLE_TERMS))
    compositions: list = option(doc="dual terms composed from the best single terms",
                                factory=_copy(COMPOSITIONS), choices=COMPOSITIONS)
    zbl: str | None = option("ZBL", "core added to every candidate (`null` for none); a bare `ZBL` takes its "
                             "window from the data")
    processes: int = option(2, "candidates fitted in parallel: the workers of the design's LocalCluster "
                            "(`execution.workers`, when not 0, and `execution.scheduler` take precedence)")
    tolerance: float = option(0.05, "force-RMSE window of \"similar\" candidates in the selection rule")
    fim_bits: int = option(256, "precision of the FIM eigenvalues")
    sanity: bool = option(True, "run the sanity checks (`compot validate`: E–V from 0.5 to 1.5 a0, push, dimers, "
                          "one 2000-step NVT at 1.1 × the hottest temperature of the training data) and prefer "
                          "candidates that pass")

    @classmethod
    def from_dict(cls, d: dict, where: str = "design") -> "DesignSettings":
        """:func:`load_section` of this class (raises ConfigError)."""
        return load_section(cls, d, where)

    def check(self, where: str) -> None:
        from .expression import parse
        for t in self.single_terms:
            parse(t)
        if self.processes < 1:
            raise ConfigError(f"{where}.processes: expected >= 1, found {self.processes}")


@dataclass
class ExecutionSettings:
    """YAML section ``execution``: where parallel work runs (compot.execution, Dask)."""

    scheduler: str | None = option(None, "address of a running Dask scheduler (e.g. `tcp://host:8786`, one "
                                   "that dask-jobqueue started on SLURM/PBS); `null` = a LocalCluster on this "
                                   "machine. `--scheduler` on the command line overrides it")
    workers: int = option(0, "worker processes of the LocalCluster (0 = the cores this process may use; "
                          "`compot design` then takes `design.processes`)")

    @classmethod
    def from_dict(cls, d: dict, where: str = "execution") -> "ExecutionSettings":
        """:func:`load_section` of this class (raises ConfigError)."""
        return load_section(cls, d, where)

    def check(self, where: str) -> None:
        if self.workers < 0:
            raise ConfigError(f"{where}.workers: expected >= 0, found {self.workers}")
        if self.scheduler is not None and not isinstance(self.scheduler, str):
            raise ConfigError(f"{where}.scheduler: expected an address such as tcp://host:8786, "
                              f"found {self.scheduler!r}")


#: Section name → schema class.
SECTIONS = {"model": ModelSettings, "data": DataSettings, "fit": FitSettings, "design": DesignSettings,
            "execution": ExecutionSettings}


# ------------------------------------------------------------------------- loader
def _convert(value, default, where: str):
    """``value`` of a field whose default is ``default``, converted like it (numbers
    from YAML strings such as ``1e4``, which YAML 1.1 reads as text)."""
    want = type(default)
    if want in (int, float) and not isinstance(value, bool):
        try:
            num = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, found {value!r}") from None
        if want is int and num != int(num):
            raise ConfigError(f"{where}: expected an integer, found {value!r}")
        return int(num) if want is int else num
    if want is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, found {value!r}")
    if want in (dict, list) and not isinstance(value, want):
        raise ConfigError(f"{where}: expected a {'mapping' if want is dict else 'list'}, found {value!r}")
    return value


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def section_defaults(cls) -> dict:
    """{key: default} of a section class (fresh copies of mutable defaults)."""
    return {f.name: _default(f) for f in fields(cls)}


def load_section(cls, given: dict | None, where: str):
    """A section object from a mapping of a YAML file.

    Parameters
    ----------
    cls : one of the classes of :data:`SECTIONS`
    given : mapping or None — the keys given in the file (None = all defaults)
    where : str — where the mapping was found, e.g. ``"config.yaml: fit"``; starts
        every error message

    Returns
    -------
    an instance of ``cls``: the given values (numbers converted) over the defaults.

    Raises
    ------
    ConfigError
        The mapping is not a mapping, has a key the section does not know (the
        message lists the allowed keys), or a value breaks its field's rules.
    """
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: expected a mapping, found {type(given).__name__}")
    spec = {f.name: f for f in fields(cls)}
    reject_unknown_keys(where, given, list(spec))
    values = {}
    for key, value in given.items():
        f = spec[key]
        default = _default(f)
        value = _convert(value, default, f"{where}.{key}") if default is not None else value
        meta = f.metadata
        if meta.get("keys") and value:
            reject_unknown_keys(f"{where}.{key}", value, list(meta["keys"]))
        choices = meta.get("choices")
        if choices:
            bad = [v for v in (value if isinstance(value, list) else [value]) if v not in choices]
            if bad:
                raise ConfigError(f"{where}.{key}: expected {'values' if isinstance(value, list) else 'one'} of "
                                  f"{', '.join(map(str, choices))}, found {', '.join(map(repr, bad))}")
        values[key] = value
    out = cls(**values)
    out.check(where)
    return out


# --------------------------------------------------------------------- documentation
def _yaml(v) -> str:
    """A default as one would write it in YAML flow style."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != 0 and not 1e-3 <= abs(v) < 1e4:
            mantissa, exponent = f"{v:e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{v:g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml(x) for x in v) + "]"
    return str(v)


def _shown_default(section: str, f: dataclasses.Field) -> str:
    if f.metadata.get("shown"):
        return f.metadata["shown"]
    text = f"`{_yaml(_default(f))}`"
    if section == "fit" and f.name in DEFAULT_FIT and DEFAULT_FIT[f.name] != _default(f):
        text = f"`{_yaml(DEFAULT_FIT[f.name])}` (recipe; {text} for the bare trainer)"
    return text


def docs_tables() -> dict:
    """{section: markdown table of its keys, defaults and meanings} for docs/fitting.md."""
    out = {}
    for section, cls in SECTIONS.items():
        rows = ["| key | default | meaning |", "|---|---|---|"]
        for f in fields(cls):
            meaning = f.metadata["doc"].replace("|", "\\|")
            default = _shown_default(section, f).replace("|", "\\|")
            rows.append(f"| `{f.name}` | {default} | {meaning} |")
        out[section] = "\n".join(rows)
    return out


_BLOCK = re.compile(r"<!-- schema:(\w+) -->\n.*?<!-- /schema:\1 -->", re.S)


def render_docs(text: str) -> str:
    """``text`` (docs/fitting.md) with every block between ``<!-- schema:SECTION -->``
    and ``<!-- /schema:SECTION -->`` replaced by :func:`docs_tables` of SECTION.

    Raises
    ------
    ConfigError
        When a section has no such block.
    """
    tables = docs_tables()
    missing = [s for s in tables if f"<!-- schema:{s} -->" not in text]
    if missing:
        raise ConfigError(f"docs: no <!-- schema:SECTION --> block for {', '.join(missing)}")
    return _BLOCK.sub(lambda m: f"<!-- schema:{m.group(1)} -->\n{tables[m.group(1)]}\n<!-- /schema:{m.group(1)} -->",
                      text)


if __name__ == "__main__":      # python -m compot.settings docs/fitting.md: regenerate its tables
    from pathlib import Path

    for name in sys.argv[1:]:
        p = Path(name)
        p.write_text(render_docs(p.read_text(encoding="utf-8")), encoding="utf-8")

"""The shipped niobium model (examples/nb/model.params, fitted by `make demo`)."""

import pytest
import yaml

from compot.io import read_model
from compot.sanity import sanity_report


@pytest.fixture(scope="module")
def shipped(repo_root):
    return read_model(repo_root / "examples" / "nb" / "model.params")


@pytest.fixture(scope="module")
def nb_data(data_dir):
    from compot.data import read_dataset
    return read_dataset([data_dir / "nb-mvl"], species=["Nb"], min_distance=0.5, group_by="file")


def test_shipped_model_is_its_config_and_the_recipe(shipped, repo_root, nb_data):
    """examples/nb/model.params is format v4, and its cutoff, inner window, ZBL window
    and reference energy are what the default recipe derives from the data (no number
    typed in: examples/nb/config.yaml sets none of them)."""
    from compot.config import load_config
    from compot.data import train_validation_split
    from compot.recipe import derive_settings

    cfg, _ = load_config(repo_root / "examples" / "nb" / "config.yaml")
    assert not {"expression", "cutoff"} & set(yaml.safe_load((repo_root / "examples" / "nb" / "config.yaml")
                                                            .read_text())["model"])
    train, _ = train_validation_split(nb_data, cfg["data"]["validation_fraction"], cfg["data"]["seed"])
    rec, fit = derive_settings(cfg["model"], cfg["fit"], train, ["Nb"])
    assert shipped.version == 4 and shipped.species == ("Nb",)
    assert shipped.cutoff == rec.cutoff
    assert shipped.expression == f"E[G8L4] + A[G8P4] + ZBL({rec.zbl[0]:g}, {rec.zbl[1]:g})"
    assert tuple(shipped.params["w.r_a"]) == (rec.windows[("Nb", "Nb")][0],)
    assert tuple(shipped.params["w.r_b"]) == (rec.windows[("Nb", "Nb")][1],)
    # E_ref comes out of a nonlinear equation-of-state fit, whose last digits follow the
    # library versions: 1.2e-8 relative between numpy 1.26 + ase 3.22 + matscipy 1.0 and
    # numpy 2.4 + ase 3.29 + matscipy 1.3 (what the default install, without kliff, resolves to)
    assert shipped.params["w.e_ref"][0] == pytest.approx(rec.e_ref("Nb"), rel=1e-6)
    assert shipped.params["g.U"].any() and shipped.params["g.gamma_hi"][0] > shipped.params["g.gamma_lo"][0]
    # the coordination term (format v4): the lowest of the training atoms', the surfaces'
    from compot.safety import coordination
    low = min(float(coordination(shipped.system([c.to_atoms()]), shipped.cutoff)[0].min()) for c in train)
    assert shipped.params["g.n_min"][0] == pytest.approx(low, rel=1e-12) and 5.0 < low < 6.0
    assert shipped.n_linear + shipped.n_nonlinear <= 100
    assert {"a0", "e0", "bulk_modulus"} <= set(fit["eos_anchor"]) and "zbl_anchor" not in fit
    # a ZBL prior asked for without a range (examples/nb/design.yaml) gets [r_a, d_min] from the data
    _, fit = derive_settings(cfg["model"], {**cfg["fit"], "zbl_anchor": {"weight": 0.1}}, train, ["Nb"])
    assert fit["zbl_anchor"]["ranges"] == {"Nb-Nb": [rec.windows[("Nb", "Nb")][0], rec.d_min[("Nb", "Nb")]]}


def test_shipped_model_passes_sanity_checks(shipped, data_dir, nb_data):
    """The stronger checks of MODEL_SPEC §10 (E–V 0.5–1.5 a0, push, dimer, a short NVT
    at 1.1 × the data's hottest temperature; the 4 × 2000-step runs are in
    benchmarks/safety.py) and the material properties."""
    rep = sanity_report(shipped, "auto", None, data_dir / "nb-mvl" / "Nb_Elastic.extxyz",
                        data_dir / "nb-mvl" / "Nb_Surface.extxyz", data=nb_data, nvt_steps=500)
    failed = {k: v["detail"] for k, v in rep["checks"].items() if not v["passed"]}
    assert rep["passed"], failed
    assert set(rep["checks"]) == {"energy_volume", "push", "dimer", "nvt"}
    props = rep["properties"]
    assert abs(props["a0"]["relative_error"]) < 0.01
    for k in ("C11", "C12", "C44", "B"):
        assert props[k]["model"] > 0            # mechanically stable bcc
    assert abs(props["gamma(100)"]["relative_error"]) < 0.15

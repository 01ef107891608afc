#!/bin/sh
# Install the compot KIM driver and the two test portable models into the
# user collection (replacing earlier installs), then run check_kim.py.
# The portable models are written by `compot export kim` from the
# hand-written parameter files of tests/c/data (check_kim.py's MODELS).
#   PYTHON   python with kimpy, ase and compot (default: .venv/bin/python)
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
PYTHON=${PYTHON:-$root/.venv/bin/python}
cd "$root"
if [ -e kim_driver/build ]; then
  echo "kim_driver/build exists; the KIM installer would fail: remove it" >&2
  exit 1
fi
log=$(mktemp -d)
kim-api-collections-management install --force user kim_driver > "$log/install.log" 2>&1 \
  || { cat "$log/install.log"; exit 1; }
for model in Compot_Test_Nb:nb_e_n_zbl.params \
             Compot_Test_MoNb:mo_nb_g_times_a.params; do
  name=${model%%:*}
  "$PYTHON" -m compot.cli export kim "tests/c/data/${model#*:}" --name "$name" --out "$log/models" \
    >> "$log/install.log" 2>&1 || { cat "$log/install.log"; exit 1; }
  kim-api-collections-management install --force user "$log/models/$name" >> "$log/install.log" 2>&1 \
    || { cat "$log/install.log"; exit 1; }
done
# run in a scratch directory: KIM writes kim.log into the working directory
cd "$log"
set +e
"$PYTHON" "$root/tests/c/kim/check_kim.py" --params-dir "$root/tests/c/data"
status=$?
rm -rf "$log"
exit $status

#!/bin/sh
# Install the compot KIM driver and the two test portable models into the
# user collection (replacing earlier installs), then run check_kim.py.
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
for d in tests/c/kim/Compot_Test_*; do
  kim-api-collections-management install --force user "$d" >> "$log/install.log" 2>&1 \
    || { cat "$log/install.log"; exit 1; }
done
# run in a scratch directory: KIM writes kim.log into the working directory
cd "$log"
set +e
"$PYTHON" "$root/tests/c/kim/check_kim.py" --params-dir "$root/tests/c/data"
status=$?
rm -rf "$log"
exit $status

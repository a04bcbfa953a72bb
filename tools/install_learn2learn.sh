#!/usr/bin/env bash
# Installs learn2learn and what it imports at import time (benchmarks/requirements-peer.txt) with
# --no-deps into one folder, for benchmarks/algorithm_cost.py; the product's environment is left as it is.
#   tools/install_learn2learn.sh PYTHON TARGET      (make bench-extra: .venv/bin/python .venv/bench-peer)
# learn2learn 0.2.0's source distribution ships C files that Cython 0.29 generated, which do not
# compile for Python 3.11: `cython -3` regenerates them from its three .pyx files before the build.
set -euo pipefail
python=${1:?usage: $0 PYTHON TARGET}
target=${2:?usage: $0 PYTHON TARGET}
requirements=$(cd "$(dirname "$0")/.." && pwd)/benchmarks/requirements-peer.txt
cython=cython==3.3.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

learn2learn=$(grep -oE '^learn2learn==[^ #]+' "$requirements")
"$python" -m pip install -q --no-deps --target "$work/cython" "$cython"
"$python" -m pip download -q --no-deps --no-binary :all: -d "$work" "$learn2learn"
tar xzf "$work"/learn2learn-*.tar.gz -C "$work"
source=$(find "$work" -maxdepth 1 -type d -name 'learn2learn-*')
for pyx in "$source"/learn2learn/data/*.pyx; do
  PYTHONPATH="$work/cython" "$python" -m cython -3 "$pyx"
done
"$python" -m pip wheel -q --no-deps --no-build-isolation -w "$work/wheels" "$source"
"$python" -m pip install -q --no-deps --upgrade --target "$target" \
  --find-links "$work/wheels" --only-binary learn2learn -r "$requirements"
PYTHONPATH="$target" "$python" -W ignore -c \
  "import learn2learn; print('learn2learn', learn2learn.__version__, 'importable from', '$target')"

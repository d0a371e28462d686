#!/usr/bin/env bash
# Build lambdagen's sdist, install it into a fresh venv (compiling the Rust core from the
# sdist alone), and run a smoke test there.  Guards the known maturin pitfall: the PyO3
# crate depends on ../../rust/lambda-core, outside the package folder, which the sdist
# must carry (maturin copies path dependencies into it and rewrites the path).
# Usage: packages/lambdagen/tools/check_sdist.sh [WORKDIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${1:-$(mktemp -d /tmp/lambdagen-sdist.XXXXXX)}"
maturin="${MATURIN:-maturin}"
mkdir -p "$work/dist"
"$maturin" sdist -m "$here/Cargo.toml" -o "$work/dist"
sdist="$(ls "$work"/dist/lambdagen-*.tar.gz)"
echo "sdist: $sdist"
tar -tzf "$sdist" > "$work/sdist-files.txt"
grep -q "/rust/lambda-core/src/lib.rs$" "$work/sdist-files.txt" || { echo "sdist lacks lambda-core sources" >&2; exit 1; }
grep -q "/python/lambdagen/__init__.py$" "$work/sdist-files.txt" || { echo "sdist lacks the Python package" >&2; exit 1; }
uv venv -q "$work/venv"
# Build from a copy outside the repository, so nothing but the sdist's content is used.
cp "$sdist" "$work/"
cd "$work"
VIRTUAL_ENV="$work/venv" uv pip install -q "$repo/packages/datacore" "$work/$(basename "$sdist")"
"$work/venv/bin/python" - <<'PY'
import lambdagen
from lambdagen import normalize, sample_terms
assert normalize("((\\\\1 \\0) \\\\1)").term.text == "\\0"
assert len(sample_terms(100, 7, 3, seed=1)) == 3
print("sdist install OK:", lambdagen.__file__)
PY
"$work/venv/bin/lambdagen" reduce '(\0 \0)'

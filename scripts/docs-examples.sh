#!/usr/bin/env bash
# Runs the documentation's rule-author examples as written, in a fresh copy
# of the repository (what a clone holds: the tracked files only; the
# third-party data the examples read is vendored under third_party/).
# A ```sh block runs when the line before its fence is
#
#   <!-- runs: scripts/docs-examples.sh -->
#
# All documents run in one fresh copy (one build of pipectl), README.md
# first, each document's marked blocks in order, each with
# `bash -euo pipefail` from the copy's root. README's
# `cargo install --path pipectl` puts pipectl on PATH (a private
# CARGO_INSTALL_ROOT; the build cache is the repository's target/), and the
# later documents use that pipectl. A self-test first shows that a failing
# block fails the run.
#
# usage: scripts/docs-examples.sh [DOC...]   (default: README.md docs/*.md)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d /tmp/pipesensor-docs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_INSTALL_ROOT=$WORK/install
export PATH=$CARGO_INSTALL_ROOT/bin:$PATH

# Writes the marked blocks of DOC as DIR/NN.sh; prints how many.
extract() { # DOC DIR
  python3 - "$1" "$2" <<'PY'
import os, re, sys
doc, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
lines = open(doc, encoding="utf-8").read().split("\n")
n, i = 0, 0
while i < len(lines):
    if lines[i].strip() == "<!-- runs: scripts/docs-examples.sh -->":
        if i + 1 >= len(lines) or lines[i + 1].strip() != "```sh":
            sys.exit("%s:%d: the marker must be followed by a ```sh block" % (doc, i + 1))
        j = i + 2
        body = []
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j]); j += 1
        n += 1
        with open(os.path.join(out, "%02d.sh" % n), "w") as f:
            f.write("# %s:%d\n" % (doc, i + 3) + "\n".join(body) + "\n")
        i = j
    i += 1
print(n)
PY
}

# A fresh copy of the tracked files (nothing beside it).
fresh_copy() { # DIR
  mkdir -p "$1/repo"
  git ls-files -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$1/repo"
}

# Runs DOC's marked blocks in the copy DIR/repo; returns non-zero on the
# first failure.
run_doc() { # DOC DIR NAME
  local doc=$1 dir=$2 n b
  n=$(extract "$doc" "$dir/blocks-$3")
  [ "$n" -gt 0 ] || { echo "  (no runnable examples)"; return 0; }
  for b in "$dir/blocks-$3"/*.sh; do
    if (cd "$dir/repo" && bash -euo pipefail "$b") >"$b.log" 2>&1; then
      echo "  ok   $(head -1 "$b" | cut -c3-)"
    else
      echo "  FAIL $(head -1 "$b" | cut -c3-): exit $? (output below)"
      sed 's/^/       /' "$b.log" | tail -30
      return 1
    fi
  done
}

echo "== self-test: a failing example fails the run"
cat >"$WORK/selftest.md" <<'EOF'
<!-- runs: scripts/docs-examples.sh -->
```sh
test -f README.md
false
```
EOF
fresh_copy "$WORK/selftest"
if run_doc "$WORK/selftest.md" "$WORK/selftest" self >/dev/null; then
  echo "self-test FAILED: a block ending in \`false\` passed"; exit 1
fi
echo "  ok   a block that fails is reported"

if [ $# -gt 0 ]; then docs=("$@"); else docs=(README.md docs/*.md); fi
fresh_copy "$WORK/docs"
failed=0
for d in "${docs[@]}"; do
  echo "== $d"
  run_doc "$d" "$WORK/docs" "$(echo "$d" | tr '/.' '__')" || { failed=1; break; }
done
[ $failed = 0 ] && echo "docs examples: all ran" || { echo "docs examples: FAILED"; exit 1; }

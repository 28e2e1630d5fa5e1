#!/usr/bin/env bash
# test:python — the Python package, run for real: builds a Python CDK environment in a temporary
# folder, installs the built cdk_orchestrator wheel (dist/python, from `npx projen package:python`),
# synthesizes examples/python/app.py and checks that its templates are the TypeScript example's
# (examples/app.ts), resource for resource, except CDKMetadata; then checks the Python error path
# (scripts/python/error_paths.py), the README's Python app as written, and a fresh Python CDK app run
# by the packed cdk-orchestrator-local (.ci/consumer-app-python.sh).
#
# Where the Python dependencies come from (printed as "source: ..."):
#   pypi    pip reaches its index (it downloads jsii, constructs and aws-cdk-lib in the versions of
#           node_modules, so both apps synthesize with the same aws-cdk-lib, and their dependencies).
#   vendor  offline: the Python jsii client, typeguard, typing_extensions and publication from
#           ../shared/vendor/python (beside the repository; CDK_ORCHESTRATOR_PYTHON_VENDOR=<folder>
#           to use another), the JS kernel from npm (@jsii/runtime), attrs, cattrs and dateutil from
#           Debian, and the Python bindings of constructs, aws-cdk-lib and aws-cdk-lib's jsii
#           dependencies generated from node_modules with jsii-pacmak.
# CDK_ORCHESTRATOR_PYTHON_SOURCE=pypi|vendor forces one (default: pypi when reachable, else vendor).
#
# Cache: the generated binding wheels (aws-cdk-lib's takes about 40 s and 2 GB to generate) are kept
# in ${XDG_CACHE_HOME:-~/.cache}/cdk-orchestrator/python-bindings, one folder per module, keyed by
# module name, version, jsii-pacmak version and the sha256 of the module's .jsii assembly, written
# under a temporary name and renamed when complete. CDK_ORCHESTRATOR_PYTHON_CACHE=<folder> moves it,
# CDK_ORCHESTRATOR_PYTHON_CACHE=off turns it off. Never cached: our own wheel, the jsii client, the
# venv and both synths. CDK_ORCHESTRATOR_PYTHON_KEEP=1 keeps the temporary folder.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY=/usr/bin/python3 # Debian's: a python3 earlier on PATH may lack the Debian modules used below
T0=$SECONDS
log() { echo "[test:python] $*"; }
fail() {
  echo "[test:python] FAILED: $*" >&2
  exit 1
}
phase() { log "$1 ($((SECONDS - T0)) s)"; }

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
export CDK_DISABLE_CLI_TELEMETRY=true
export PYTHONDONTWRITEBYTECODE=1
export NPM_CONFIG_UPDATE_NOTIFIER=false

[ -x "$PY" ] || fail "$PY is missing (apt-get install python3)"

# --- the wheel under test -------------------------------------------------------------------------
shopt -s nullglob
wheels=("$ROOT"/dist/python/cdk_orchestrator-*.whl)
shopt -u nullglob
[ ${#wheels[@]} -eq 1 ] || fail "expected one dist/python/cdk_orchestrator-*.whl, found ${#wheels[@]}: run \`npx projen package:python\` first"
WHEEL="${wheels[0]}"
if [ -f "$ROOT/.jsii" ] && [ "$ROOT/.jsii" -nt "$WHEEL" ]; then
  fail "$(basename "$WHEEL") is older than .jsii: run \`npx projen package:python\` first"
fi
log "wheel: dist/python/$(basename "$WHEEL")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdk-orchestrator-test-python.XXXXXX")"
if [ "${CDK_ORCHESTRATOR_PYTHON_KEEP:-}" = 1 ]; then
  log "work folder (kept): $WORK"
else
  trap 'rm -rf "$WORK"' EXIT
fi

# Versions the TypeScript side uses; the Python side must use the same.
read -r CDK_LIB_VERSION CONSTRUCTS_VERSION PACMAK_VERSION < <(cd "$ROOT" && node -p "[
  require('aws-cdk-lib/package.json').version,
  require('constructs/package.json').version,
  require('jsii-pacmak/package.json').version].join(' ')")

# --- source of the Python dependencies --------------------------------------------------------------
SOURCE="${CDK_ORCHESTRATOR_PYTHON_SOURCE:-auto}"
case "$SOURCE" in auto | pypi | vendor) ;; *) fail "CDK_ORCHESTRATOR_PYTHON_SOURCE must be pypi or vendor, got '$SOURCE'" ;; esac
PYPI_REQUIREMENTS=("jsii==$PACMAK_VERSION" "constructs==$CONSTRUCTS_VERSION" "aws-cdk-lib==$CDK_LIB_VERSION")
if [ "$SOURCE" != vendor ]; then
  # PyPI is "reachable" when pip, through its own configuration, downloads everything needed (no
  # retries: offline, it fails within seconds); the install then uses only these downloads.
  if "$PY" -m pip download --no-cache-dir --retries 0 --timeout 20 --disable-pip-version-check -q \
    -d "$WORK/pypi" "${PYPI_REQUIREMENTS[@]}" >"$WORK/pypi.log" 2>&1; then
    SOURCE=pypi
  elif [ "$SOURCE" = pypi ]; then
    cat "$WORK/pypi.log" >&2
    fail "CDK_ORCHESTRATOR_PYTHON_SOURCE=pypi, but pip could not download ${PYPI_REQUIREMENTS[*]}"
  else
    SOURCE=vendor
  fi
fi

VENV="$WORK/venv"
if [ "$SOURCE" = pypi ]; then
  log "source: PyPI (jsii $PACMAK_VERSION, constructs $CONSTRUCTS_VERSION, aws-cdk-lib $CDK_LIB_VERSION)"
  "$PY" -m venv "$VENV" || fail "python3 -m venv failed: apt-get install python3-venv"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links "$WORK/pypi" \
    "$WHEEL" "${PYPI_REQUIREMENTS[@]}" || fail "pip could not install $(basename "$WHEEL") with ${PYPI_REQUIREMENTS[*]}"
else
  VENDOR="${CDK_ORCHESTRATOR_PYTHON_VENDOR:-$ROOT/../shared/vendor/python}"
  if [ ! -f "$VENDOR/jsii-python-runtime/setup.py" ]; then
    fail "PyPI is out of reach and the vendored Python sources are missing: expected $VENDOR/jsii-python-runtime (the shared/ folder beside the repository, shared/vendor/python). Set CDK_ORCHESTRATOR_PYTHON_VENDOR to the folder that holds jsii-python-runtime/, typeguard/, typing_extensions/ and publication/."
  fi
  VENDOR="$(cd "$VENDOR" && pwd)"
  log "source: vendored, offline ($VENDOR; JS kernel @jsii/runtime@$PACMAK_VERSION from npm; bindings generated from node_modules)"
  "$PY" -c 'import venv, ensurepip, build, setuptools, wheel, attr, cattr, dateutil' 2>/dev/null \
    || fail "Debian's Python modules are missing: apt-get install -y --no-install-recommends python3-venv python3-build python3-setuptools python3-wheel python3-attr python3-cattr python3-dateutil (.ci/run does it)"

  WHEELS="$WORK/wheels"
  mkdir -p "$WHEELS"
  # Offline pip: no configuration file, index or PIP_* setting of the machine's.
  pip_offline() {
    local unset=()
    for var in $(compgen -e | grep '^PIP_' || true); do unset+=(-u "$var"); done
    env "${unset[@]}" PIP_CONFIG_FILE=/dev/null "$VENV/bin/python" -m pip --disable-pip-version-check "$@"
  }
  build_wheel() { # <source folder> <out folder>
    (cd "$1" && "$PY" -m build --wheel --no-isolation --skip-dependency-check --outdir "$2" . >"$WORK/build.log" 2>&1) \
      || { cat "$WORK/build.log" >&2; fail "building a wheel in $1 failed"; }
  }

  # The jsii client: vendored source + the JS kernel from npm, as upstream's build assembles them.
  JSII_SRC="$WORK/src/jsii-python-runtime"
  mkdir -p "$WORK/src"
  cp -r "$VENDOR/jsii-python-runtime" "$JSII_SRC"
  chmod -R u+w "$JSII_SRC"
  (cd "$WORK" && npm pack -q "@jsii/runtime@$PACMAK_VERSION" >/dev/null 2>"$WORK/npm-pack.log") \
    || { cat "$WORK/npm-pack.log" >&2; fail "npm pack @jsii/runtime@$PACMAK_VERSION failed (the JS kernel of the Python jsii client)"; }
  mkdir -p "$WORK/kernel" && tar -xzf "$WORK"/jsii-runtime-*.tgz -C "$WORK/kernel"
  "$PY" - "$WORK/kernel/package" "$JSII_SRC" "$PACMAK_VERSION" <<'EOF'
import json, os, shutil, sys
kernel, src, version = sys.argv[1:]
embedded = os.path.join(src, "src", "jsii", "_embedded", "jsii")
files = {}
webpack = os.path.join(kernel, "webpack")
for folder, _, names in os.walk(webpack):
    for name in sorted(names):
        rel = os.path.relpath(os.path.join(folder, name), webpack).replace(os.sep, "/")
        flat = rel.replace("/", "__")
        shutil.copyfile(os.path.join(folder, name), os.path.join(embedded, flat))
        files[flat] = rel
if "bin__jsii-runtime.js" not in files:
    sys.exit(f"@jsii/runtime has no webpack/bin/jsii-runtime.js (found {sorted(files)})")
with open(os.path.join(embedded, "__init__.py"), "w") as fp:
    fp.write(f"EMBEDDED_FILES = {json.dumps(dict(sorted(files.items())), indent=4)}\n\n")
    fp.write('ENTRYPOINT = "bin__jsii-runtime.js"\n\n__all__ = ["EMBEDDED_FILES", "ENTRYPOINT"]\n')
with open(os.path.join(kernel, "package.json")) as fp:
    runtime = json.load(fp)
with open(os.path.join(src, "src", "jsii", "_metadata.json"), "w") as fp:
    json.dump({
        "version": version,  # the client speaks the kernel's protocol; same release as jsii-pacmak
        "description": "Python client for jsii runtime",
        "license": "Apache-2.0",
        "author": "Amazon Web Services",
        "jsii-runtime": {"version": runtime["version"]},
        "bugs": "https://github.com/aws/jsii/issues",
        "homepage": "https://github.com/aws/jsii",
        "repository": "https://github.com/aws/jsii.git",
    }, fp, indent=2)
EOF
  build_wheel "$JSII_SRC" "$WHEELS"

  # typeguard, typing_extensions, publication: plain sources; a minimal pyproject makes each a wheel
  # with its name and version, so pip can check the jsii client's requirements against them.
  small_wheel() { # <name> <version> <vendored folder> <py-modules|packages>
    local dir="$WORK/src/$1"
    mkdir -p "$dir/src"
    if [ -d "$3/src" ]; then cp -r "$3/src/." "$dir/src/"; else cp "$3"/*.py "$dir/src/"; fi
    cp "$3/LICENSE" "$dir/"
    chmod -R u+w "$dir"
    printf '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "%s"\nversion = "%s"\n\n[tool.setuptools]\npackage-dir = {"" = "src"}\n%s\n' \
      "$1" "$2" "$4" >"$dir/pyproject.toml"
    build_wheel "$dir" "$WHEELS"
  }
  small_wheel typeguard 2.13.3 "$VENDOR/typeguard" 'packages = ["typeguard"]'
  small_wheel typing_extensions 4.15.0 "$VENDOR/typing_extensions" 'py-modules = ["typing_extensions"]'
  small_wheel publication 0.0.3 "$VENDOR/publication" 'py-modules = ["publication"]'
  phase "jsii client and its pure-Python dependencies built"

  # Python bindings of every jsii module our assembly depends on (transitively), from node_modules.
  CACHE="${CDK_ORCHESTRATOR_PYTHON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cdk-orchestrator/python-bindings}"
  modules="$(cd "$ROOT" && node -e '
    const fs = require("fs"), path = require("path"), zlib = require("zlib"), crypto = require("crypto");
    function assembly(dir) {
      let file = path.join(dir, ".jsii");
      let buf = fs.readFileSync(file);
      const json = JSON.parse(buf.toString("utf-8"));
      if (json.schema === "jsii/file-redirect") {
        file = path.join(dir, json.filename);
        buf = fs.readFileSync(file);
        return { file, buf, json: JSON.parse(zlib.gunzipSync(buf).toString("utf-8")) };
      }
      return { file, buf, json };
    }
    const seen = new Map();
    function visit(name, from) {
      if (seen.has(name)) return;
      const dir = path.dirname(require.resolve(name + "/package.json", { paths: [from] }));
      const a = assembly(dir);
      seen.set(name, { dir, version: a.json.version, sha: crypto.createHash("sha256").update(a.buf).digest("hex").slice(0, 16) });
      for (const dep of Object.keys(a.json.dependencies || {})) visit(dep, dir);
    }
    for (const dep of Object.keys(assembly(".").json.dependencies || {})) visit(dep, process.cwd());
    for (const [name, m] of seen) console.log([name, m.version, m.sha, m.dir].join(" "));
  ')" || fail "could not read the jsii dependencies of .jsii (run \`npx projen compile\`)"
  while read -r name version sha dir; do
    key="$(echo "$name" | tr '/@' '__')-$version-pacmak$PACMAK_VERSION-$sha"
    if [ "$CACHE" != off ] && compgen -G "$CACHE/$key/*.whl" >/dev/null; then
      cp "$CACHE/$key"/*.whl "$WHEELS/"
      log "bindings: $name $version (cached)"
      continue
    fi
    gen="$WORK/gen/$key"
    (cd "$ROOT" && npx jsii-pacmak --target python --code-only --outdir "$gen" "$dir" >"$WORK/pacmak.log" 2>&1) \
      || { cat "$WORK/pacmak.log" >&2; fail "jsii-pacmak --target python failed for $name"; }
    mkdir -p "$WORK/out/$key"
    build_wheel "$gen/python" "$WORK/out/$key"
    rm -rf "$gen"
    cp "$WORK/out/$key"/*.whl "$WHEELS/"
    if [ "$CACHE" != off ]; then
      mkdir -p "$CACHE"
      tmp="$(mktemp -d "$CACHE/.$key.XXXXXX")"
      cp "$WORK/out/$key"/*.whl "$tmp/" && mv -T "$tmp" "$CACHE/$key" 2>/dev/null || rm -rf "$tmp"
    fi
    rm -rf "$WORK/out/$key"
    phase "bindings: $name $version generated"
  done <<<"$modules"

  # attrs, cattrs and dateutil are Debian's (system site packages); everything else from $WHEELS,
  # with dependency resolution: the wheel's requirements must be met by what we test it with.
  "$PY" -m venv --system-site-packages "$VENV" || fail "python3 -m venv failed: apt-get install python3-venv"
  pip_offline install -q --no-index --find-links "$WHEELS" "$WHEEL" \
    || fail "pip could not install $(basename "$WHEEL") from the wheels in $WHEELS ($(ls "$WHEELS" | tr '\n' ' '))"
fi
"$VENV/bin/python" -c 'import cdk_orchestrator, aws_cdk, constructs, jsii; from importlib.metadata import version as v; print("[test:python] installed:", ", ".join(f"{d} {v(d)}" for d in ("cdk-orchestrator", "aws-cdk-lib", "constructs", "jsii", "typeguard")))' \
  || fail "cdk_orchestrator does not import in the venv"
phase "environment ready"

# --- synthesize both apps -----------------------------------------------------------------------------
(cd "$ROOT/examples/python" && PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV" npx cdk synth --no-notices --quiet -o "$WORK/cdk.out.python" >"$WORK/synth-python.log" 2>&1) \
  || { cat "$WORK/synth-python.log" >&2; fail "cdk synth of examples/python/app.py failed"; }
phase "examples/python/app.py synthesized"
(cd "$ROOT/examples" && npx cdk synth --no-notices --quiet -o "$WORK/cdk.out.typescript" >"$WORK/synth-typescript.log" 2>&1) \
  || { cat "$WORK/synth-typescript.log" >&2; fail "cdk synth of examples/app.ts failed"; }
phase "examples/app.ts synthesized"

"$PY" "$ROOT/scripts/python/compare_templates.py" "$WORK/cdk.out.typescript" "$WORK/cdk.out.python" \
  || fail "the Python example's templates are not the TypeScript example's (see above)"

# --- the error path -----------------------------------------------------------------------------------
"$VENV/bin/python" "$ROOT/scripts/python/error_paths.py" || fail "Python error path (see above)"

# --- the README's Python app, as written -------------------------------------------------------------
# The python block after the marker in README.md, saved as app.py next to plugins/fraud_check.py, as
# the README says; run directly (App() writes to CDK_OUTDIR), it must synthesize its stack.
mkdir -p "$WORK/readme/plugins"
cp "$ROOT/examples/python/plugins/fraud_check.py" "$WORK/readme/plugins/"
"$PY" - "$ROOT/README.md" "$WORK/readme/app.py" <<'PYEOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
found = re.search(r"<!-- test:python synthesizes the next python block[^>]*-->\s*```python\n(.*?)```", text, re.S)
if not found:
    sys.exit("README.md has no python block after '<!-- test:python synthesizes the next python block -->'")
open(sys.argv[2], "w", encoding="utf-8").write(found.group(1))
PYEOF
(cd "$WORK/readme" && CDK_OUTDIR="$WORK/readme/cdk.out" "$VENV/bin/python" app.py >"$WORK/readme.log" 2>&1) \
  || { cat "$WORK/readme.log" >&2; fail "README.md's Python app does not run as written"; }
compgen -G "$WORK/readme/cdk.out/*.template.json" >/dev/null || fail "README.md's Python app synthesized no template"
log "README.md's Python app synthesizes as written"

# --- the Python user path -----------------------------------------------------------------------------
# A fresh `cdk init app --language python` app with plugins in a second stack, synthesized with this
# venv, then run by the packed cdk-orchestrator-local (dist/js, from `npx projen package:local`).
"$ROOT/.ci/consumer-app-python.sh" "$VENV" "$ROOT/dist/js" || fail "the Python consumer app did not run to Complete locally (see above)"
phase "a fresh Python CDK app ran locally"

log "passed: source $SOURCE, $((SECONDS - T0)) s"

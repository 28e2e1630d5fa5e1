#!/usr/bin/env bash
# The Python user path, from an empty folder: a fresh `cdk init app --language python` app (weak
# cross-stack references), its app replaced by .ci/consumer-app-python (the orchestrator's stack and
# a plugin stack with a Node.js and a Python plugin and one optional plugin that fails, the plugins
# of .ci/consumer-app), synthesized by the CDK CLI with the Python venv active; then, as the README
# says for Python apps, `npm install --save-dev cdk-orchestrator-local` (the packed tarball),
#   npx cdk-orchestrator-local run ... (Complete, the optional stage Optional Task Error) and
#   python -m unittest (the app's test calls the CLI with --json).
# Usage: .ci/consumer-app-python.sh <venv with cdk_orchestrator, aws-cdk-lib and jsii> [dist/js]
# scripts/test-python.sh calls it with the venv it built (`npx projen test:python`, part of the build).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(cd "${1:?usage: consumer-app-python.sh <venv> [dist/js]}" && pwd)"
dist="$(cd "${2:-$repo/dist/js}" && pwd)"
export CDK_DISABLE_CLI_TELEMETRY=true NPM_CONFIG_UPDATE_NOTIFIER=false NODE_NO_WARNINGS=1 PYTHONDONTWRITEBYTECODE=1
shopt -s nullglob
local_tgz=("$dist"/cdk-orchestrator-local-*.tgz)
shopt -u nullglob
if [ ${#local_tgz[@]} -eq 0 ]; then
  echo "consumer-app-python: the cdk-orchestrator-local tarball expected in $dist (npx projen package:local)" >&2
  exit 2
fi
"$venv/bin/python" -c 'import cdk_orchestrator' || { echo "consumer-app-python: cdk_orchestrator is not installed in $venv" >&2; exit 2; }

label=consumer-app-python
# shellcheck source=.ci/consumer-common.sh
source "$repo/.ci/consumer-common.sh"
# The CDK CLI a user has installed (npm install -g aws-cdk): here the repository's.
cdk() { "$repo/node_modules/.bin/cdk" "$@"; }

# Its output goes outside the folder: cdk init wants an empty one.
step "cdk init" cdk init app --language python --generate-only >"$work/cdk-init.log" 2>&1 || { cat "$work/cdk-init.log" >&2; exit 1; }
grep -q '"@aws-cdk/core:defaultCrossStackReferences": "weak"' cdk.json \
  || { echo "consumer-app-python: expected cdk init to default to weak cross-stack references" >&2; exit 1; }
rm -rf app.py consumer tests README.md
cp -r "$repo/.ci/consumer-app-python/." .
cp -r "$repo/.ci/consumer-app/plugins" plugins
rm -f README.md

# `source .venv/bin/activate`, as the app's README says (the venv holds the built wheel and aws-cdk-lib).
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
step "cdk synth" cdk synth --no-notices --quiet
grep -q '"Fn::GetStackOutput"' cdk.out/ConsumerPlugins.template.json || { echo "consumer-app-python: expected weak references (Fn::GetStackOutput)" >&2; exit 1; }

# What the README tells Python users: a package.json is only where npx finds the CLI.
step "npm install" npm install --save-dev --no-audit --no-fund --loglevel=error "${local_tgz[0]}"
step "cdk-orchestrator-local run" npx cdk-orchestrator-local run --app cdk.out --workflow Onboarding \
  --input '{"uid":"py-app-1","metadata":{"customer":"ACME"}}' --json > run.json
python - <<'PYEOF'
import json, sys
run = json.load(open("run.json"))
doc = run.get("statusDocument") or {}
problems = []
if run["status"] != "SUCCEEDED": problems.append(f"execution {run['status']}: {run.get('error')} {run.get('cause')}")
if doc.get("status", {}).get("state") != "Complete": problems.append(f"run state {doc.get('status')}")
rate = doc.get("activities", {}).get("Rate", {}).get("async", {})
if rate.get("status", {}).get("state") != "Optional Task Error": problems.append(f"Rate parallel stage {rate.get('status')}")
if rate.get("mandatory", {}).get("Rate", {}).get("state") != "Complete": problems.append("Python plugin Rate not Complete")
if problems:
    print("consumer-app-python: " + "; ".join(problems), file=sys.stderr)
    print(json.dumps(run, indent=2), file=sys.stderr)
    sys.exit(1)
print("consumer-app-python: run Complete; Rate parallel stage Optional Task Error; Python plugin Complete")
PYEOF
step "python -m unittest (the app's test)" python -m unittest discover -s tests -t . -v

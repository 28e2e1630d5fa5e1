#!/usr/bin/env bash
# The user path, from an empty folder: a fresh `cdk init` TypeScript app (weak cross-stack
# references, the newest aws-cdk-lib), the two packed packages from dist/js installed, a Node.js and
# a Python plugin in a second stack (the Node.js PRE plugin an ES module) plus one optional plugin that
# fails (.ci/consumer-app), then
#   tsc of every README TypeScript block as a file of the app;
#   npx cdk synth; npx cdk-orchestrator-local run ... (Complete, the optional stage Optional Task Error);
#   npx jest (the app's test on the test API, one shared DynamoDB Local).
# Prints how long each step took: what a user's first local run costs.
# Usage: .ci/consumer-app.sh [dist/js]   (after `npx projen build`, or package + package:local)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dist="$(cd "${1:-$repo/dist/js}" && pwd)"
export CDK_DISABLE_CLI_TELEMETRY=true NPM_CONFIG_UPDATE_NOTIFIER=false NODE_NO_WARNINGS=1
shopt -s nullglob
# jsii-pacmak names it cdk-orchestrator@<version>.jsii.tgz; npm pack cdk-orchestrator-<version>.tgz.
orchestrator_tgz=("$dist"/cdk-orchestrator@*.tgz "$dist"/cdk-orchestrator-[0-9]*.tgz)
local_tgz=("$dist"/cdk-orchestrator-local-*.tgz)
shopt -u nullglob
if [ ${#orchestrator_tgz[@]} -eq 0 ] || [ ${#local_tgz[@]} -eq 0 ]; then
  echo "consumer-app: cdk-orchestrator and cdk-orchestrator-local tarballs expected in $dist" >&2
  exit 2
fi
orchestrator_tgz="${orchestrator_tgz[0]}"
local_tgz="${local_tgz[0]}"

label=consumer-app
# shellcheck source=.ci/consumer-common.sh
source "$repo/.ci/consumer-common.sh"

step "cdk init" npx --prefix "$repo" cdk init app --language typescript --generate-only >/dev/null
grep -q '"@aws-cdk/core:defaultCrossStackReferences": "weak"' cdk.json \
  || node -e 'const f="cdk.json",c=require("./"+f);c.context["@aws-cdk/core:defaultCrossStackReferences"]="weak";require("fs").writeFileSync(f,JSON.stringify(c,null,2))'
rm -f bin/*.ts lib/*.ts test/*.ts
cp -r "$repo/.ci/consumer-app/." .
rm README.md
node -e 'const f="cdk.json",c=require("./"+f);c.app=c.app.replace(/bin\/[\w-]+\.ts/,"bin/consumer.ts");require("fs").writeFileSync(f,JSON.stringify(c,null,2))'
# What the README tells users: the newest aws-cdk-lib, then the two packages.
step "npm install" npm install --no-audit --no-fund --loglevel=error aws-cdk-lib@latest constructs@latest "$orchestrator_tgz" "$local_tgz"
echo "consumer-app: aws-cdk-lib $(node -p 'require("aws-cdk-lib/package.json").version'), typescript $(node -p 'require("typescript/package.json").version')"

# Every TypeScript block of the README compiles on its own as a file of this app (its tsconfig, its
# TypeScript, the packages as installed).
node "$repo/.ci/readme-blocks.mjs" "$repo/README.md" readme-blocks
node -e 'require("fs").writeFileSync("tsconfig.readme.json", JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { noEmit: true, types: ["node", "jest"] }, include: ["readme-blocks/*.ts"] }))'
step "tsc (README blocks)" npx tsc -p tsconfig.readme.json
rm -rf readme-blocks tsconfig.readme.json

step "cdk synth" npx cdk synth --no-notices --quiet
grep -q '"Fn::GetStackOutput"' cdk.out/ConsumerPlugins.template.json || { echo "consumer-app: expected weak references (Fn::GetStackOutput)" >&2; exit 1; }

npx cdk-orchestrator-local check --app cdk.out --workflow Onboarding
step "cdk-orchestrator-local run" npx cdk-orchestrator-local run --app cdk.out --workflow Onboarding \
  --input '{"uid":"app-1","metadata":{"customer":"ACME"}}' --json > run.json
node -e '
  const run = require("./run.json");
  const doc = run.statusDocument;
  const problems = [];
  if (run.status !== "SUCCEEDED") problems.push(`execution ${run.status}: ${run.error} ${run.cause}`);
  if (doc?.status?.state !== "Complete") problems.push(`run state ${doc?.status?.state}`);
  if (doc?.activities?.Rate?.async?.status?.state !== "Optional Task Error") problems.push(`Rate parallel stage ${doc?.activities?.Rate?.async?.status?.state}`);
  if (doc?.activities?.Rate?.async?.mandatory?.Rate?.state !== "Complete") problems.push("Python plugin Rate not Complete");
  const check = doc?.activities?.Check?.pre?.mandatory?.CheckApplication;
  if (check?.state !== "Complete") problems.push(`ES module plugin CheckApplication ${check?.state}: ${check?.message}`);
  if (problems.length) { console.error("consumer-app: " + problems.join("; ")); console.error(JSON.stringify(run, null, 2)); process.exit(1); }
  console.log("consumer-app: run Complete; Rate parallel stage Optional Task Error; Python plugin and ES module plugin Complete");
'
step "jest (test API)" npx jest

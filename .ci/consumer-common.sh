# Sourced by .ci/consumer-app.sh and .ci/consumer-app-python.sh: an empty folder for the app, and
# timed steps. Expects $label (the script's name in its messages); sets $work and enters $work/consumer.
work="$(mktemp -d)"
# CONSUMER_APP_KEEP=1 keeps the app (its path is printed) to look into a failure.
# DynamoDB Local's class-archive writer (a detached process, dynamodb-local-classes.ts) may still be
# writing into the app's node_modules/.cache when the app ends: removal is tried again, and never
# changes the script's exit status (a failed removal failed a passing run).
remove_work() {
  local status=$? try
  for try in 1 2 3 4 5; do rm -rf "$work" 2>/dev/null && break; sleep 1; done
  [ -e "$work" ] && echo "$label: could not remove $work" >&2
  exit "$status"
}
if [ "${CONSUMER_APP_KEEP:-}" = 1 ]; then echo "$label: in $work"; else trap remove_work EXIT; fi
mkdir "$work/consumer" && cd "$work/consumer"
step() { # <name> <command...>: runs it, prints how long it took, keeps its exit code
  local name="$1" t0=$SECONDS rc=0; shift
  "$@" || rc=$?
  echo "$label: $name took $((SECONDS - t0)) s" >&2
  return $rc
}

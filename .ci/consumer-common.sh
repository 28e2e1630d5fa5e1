# Sourced by .ci/consumer-app.sh and .ci/consumer-app-python.sh: an empty folder for the app, and
# timed steps. Expects $label (the script's name in its messages); sets $work and enters $work/consumer.
work="$(mktemp -d)"
# CONSUMER_APP_KEEP=1 keeps the app (its path is printed) to look into a failure.
if [ "${CONSUMER_APP_KEEP:-}" = 1 ]; then echo "$label: in $work"; else trap 'rm -rf "$work"' EXIT; fi
mkdir "$work/consumer" && cd "$work/consumer"
step() { # <name> <command...>: runs it, prints how long it took, keeps its exit code
  local name="$1" t0=$SECONDS rc=0; shift
  "$@" || rc=$?
  echo "$label: $name took $((SECONDS - t0)) s" >&2
  return $rc
}

"""The Python error path of cdk_orchestrator, run by scripts/test-python.sh in its venv.

A Python team's mistakes must fail as Python exceptions whose message names the problem:
- a value of the wrong type: the generated bindings' type checks (typeguard) raise TypeError naming
  the argument and the expected type before any JavaScript runs; what they let through (a str is a
  Sequence[str], an interface is a Protocol) the jsii kernel refuses with a RuntimeError naming the
  property and the expected type;
- an unknown activity, and a valid value in the wrong place: the library's own checks, raised
  through jsii as RuntimeError with the TypeScript message (the construct path, the bad name and
  the known ones).
Each case prints one line; a case that raises nothing, the wrong kind of exception or a message
that does not name the problem fails the run.
"""
import sys

from aws_cdk import App, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from cdk_orchestrator import ActivityStage, Orchestrator, Workflow

ACTIVITIES = ["Step1", "Step2", "Step3"]
failures = []


def stack(name):
    return Stack(App(), name)


def orchestrator(scope):
    return Orchestrator(scope, "Orchestrator", orchestrator_name="errors", activities=ACTIVITIES)


def function(scope):
    return lambda_.Function(
        scope, "Plugin", runtime=lambda_.Runtime.NODEJS_24_X, handler="index.handler",
        code=lambda_.Code.from_inline("exports.handler = async () => ({});"),
    )


def expect(case, error_type, must_name, action):
    """`action` must raise `error_type` (or a subclass) whose message contains every `must_name`."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 - the type is checked below
        message = str(error)
        lines = message.strip().splitlines() or [""]
        first_line = lines[0]
        # For the kernel's multi-line messages, also the line that names the property.
        naming = next((line.strip(" ─╰├│") for line in lines[1:] if must_name[0] in line), None)
        if naming:
            first_line += f" ... {naming}"
        missing = [part for part in must_name if part not in message]
        if not isinstance(error, error_type):
            failures.append(f"{case}: raised {type(error).__name__}, expected {error_type.__name__}: {first_line}")
        elif missing:
            failures.append(f"{case}: the message does not name {', '.join(missing)}: {first_line}")
        else:
            print(f"[test:python] error path ok: {case}: {type(error).__name__}: {first_line}")
        return
    failures.append(f"{case}: raised nothing, expected {error_type.__name__} naming {', '.join(must_name)}")


# Wrong argument types: the generated code checks them (typeguard) and raises TypeError naming the
# argument and the expected type.
expect("a number for a Duration", TypeError, ["parallel_timeout", "Duration", "int"],
       lambda: Orchestrator(stack("WrongType2"), "Orchestrator", activities=ACTIVITIES, parallel_timeout=7200))


def string_stage():
    scope = stack("WrongType3")
    orchestrator(scope).activity("Step2").add_plugin(function(scope), stage="PARALLEL", plugin_name="Rate")


expect("a string for the stage of add_plugin", TypeError, ["stage", "ActivityStage", "str"], string_stage)


def string_orchestrator():
    Workflow(stack("WrongType4"), "Onboarding", orchestrator="errors", activities=ACTIVITIES)


# What typeguard lets through, the jsii kernel refuses, naming the property and the expected type.
expect("a string for the activity list", RuntimeError, ["'activities'", "array<string>", "Step1"],
       lambda: Orchestrator(stack("WrongType1"), "Orchestrator", activities="Step1"))
expect("a string for the orchestrator of a Workflow", RuntimeError, ["'orchestrator'", "IOrchestrator"],
       string_orchestrator)

# Unknown activities: the library's checks, raised through jsii as a Python exception with the
# TypeScript message (the bad name and the known ones).
expect("orchestrator.activity() of an unknown activity", RuntimeError, ["Step9", "unknown activity", "Step1, Step2, Step3"],
       lambda: orchestrator(stack("Unknown1")).activity("Step9"))


def unknown_in_workflow():
    scope = stack("Unknown2")
    Workflow(scope, "Onboarding", orchestrator=orchestrator(scope), activities=["Step1", "Stepp2"])


expect("a Workflow over an unknown activity", RuntimeError, ["Stepp2", "unknown activity"], unknown_in_workflow)


def order_on_parallel():
    # Not a type error: a valid value in the wrong place; the library names it.
    scope = stack("Invalid1")
    orchestrator(scope).activity("Step2").add_plugin(
        function(scope), stage=ActivityStage.PARALLEL, plugin_name="Rate", order=10, timeout=Duration.minutes(5))


expect("order on a PARALLEL plugin", RuntimeError, ["order 10", "PARALLEL"], order_on_parallel)

if failures:
    for failure in failures:
        print(f"[test:python] error path FAILED: {failure}", file=sys.stderr)
    sys.exit(1)

#!/usr/bin/env python3
"""A one-file CDK app in Python: an orchestrator with three activities and one workflow over them.

The Python twin of examples/app.ts; it synthesizes the same stack. See README.md here:
    pip install cdk-orchestrator aws-cdk-lib && cdk synth
"""
from aws_cdk import App, CfnOutput, Duration, Stack
from cdk_orchestrator import ActivityOptions, ActivityStage, Orchestrator, Workflow

app = App()
stack = Stack(
    app,
    "OrchestratorExample",
    description="cdk-orchestrator example: three activities (Step1-Step3) and the Onboarding workflow",
)

orchestrator = Orchestrator(
    stack,
    "Orchestrator",
    orchestrator_name="example",
    activities=["Step1", "Step2", "Step3"],
    # Defaults for every activity...
    parallel_timeout=Duration.hours(2),
    # ...and per-activity overrides.
    activity_options={
        "Step2": ActivityOptions(
            parallel_timeout=Duration.minutes(30),
            parallel_heartbeat=Duration.minutes(5),
            plugin_retries=3,
        ),
    },
    status_retention=Duration.days(90),
)

# TODO(plugins): examples/app.ts is gaining plugins (`activity.addPlugin(...)` with the plugin
# functions in examples/plugins/). `add_plugin` is not in the library yet (src/activity.ts); once it
# is, mirror them here: the same functions (lambda_.Function with Code.from_asset on
# ../plugins/<name>) and `orchestrator.activity("StepN").add_plugin(fn, stage=ActivityStage.PARALLEL, ...)`.

onboarding = Workflow(
    stack,
    "Onboarding",
    orchestrator=orchestrator,
    activities=["Step1", "Step2", "Step3"],
)

CfnOutput(stack, "WorkflowStateMachineArn", value=onboarding.state_machine.state_machine_arn)
CfnOutput(stack, "StatusTableName", value=orchestrator.status_table.table_name)
CfnOutput(stack, "PluginTableName", value=orchestrator.plugin_table.table_name)
CfnOutput(
    stack,
    "Step2ParallelTopicArn",
    value=orchestrator.activity("Step2").topic(ActivityStage.PARALLEL).topic_arn,
)

app.synth()

#!/usr/bin/env python3
"""A CDK app in three stacks, the Python version of examples/app.ts (same stacks, same templates).

The platform team's orchestrator (three activities, one workflow); in a stack of its own, the
plugins other teams add to its stages with `activity.add_plugin`; and an operations team's stack
that uses the orchestrator imported by its attributes (alarm, grants).
    cd examples/python && npx cdk synth      (see README.md)
`npx projen test:python` synthesizes it with the built wheel and checks that its templates are
app.ts's, resource for resource (only CDKMetadata differs).
The plugins are plain Lambda functions (examples/plugins/*.ts, shared with app.ts) that use no
orchestrator code: PRE and POST plugins are invoked synchronously, PARALLEL plugins report through
Lambda destinations, and the queue plugin takes its messages from its own SQS queue. Their
TypeScript is bundled with esbuild as the app synthesizes (offline, no Docker) into
examples/plugins/dist/<name>/index.js, exactly as app.ts does.
"""
import os
import subprocess

from aws_cdk import App, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from cdk_orchestrator import ActivityOptions, ActivityStage, Orchestrator, Workflow
from constructs import Construct

EXAMPLES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

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

onboarding = Workflow(
    stack,
    "Onboarding",
    orchestrator=orchestrator,
    activities=["Step1", "Step2", "Step3"],
)

# Who may start runs: here a role for the service that takes the applications.
starter = iam.Role(
    stack,
    "StarterRole",
    assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
    description="May start runs of the Onboarding workflow",
)
onboarding.grant_start_workflow(starter)
# An alarm of your own on a workflow metric (the orchestrator already alarms on failures).
cloudwatch.Alarm(
    stack,
    "OnboardingSlowAlarm",
    alarm_description="Onboarding runs take more than 30 minutes (p90)",
    metric=onboarding.metric_duration(statistic="p90", period=Duration.minutes(15)),
    threshold=Duration.minutes(30).to_milliseconds(),
    evaluation_periods=2,
    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
)

CfnOutput(stack, "WorkflowStateMachineArn", value=onboarding.state_machine.state_machine_arn)
CfnOutput(stack, "StatusTableName", value=orchestrator.status_table.table_name)
CfnOutput(stack, "PluginTableName", value=orchestrator.plugin_table.table_name)
CfnOutput(
    stack,
    "Step2ParallelTopicArn",
    value=orchestrator.activity("Step2").topic(ActivityStage.PARALLEL).topic_arn,
)

# The plugins: another team's stack. It refers to the orchestrator's stack (topics, plugin table,
# handler roles), never the reverse, so it deploys and changes on its own.
plugins = Stack(
    app,
    "OrchestratorExamplePlugins",
    description="cdk-orchestrator example: plugins of the Step1-Step3 activities",
)


def plugin_function(scope: Construct, construct_id: str, name: str) -> lambda_.Function:
    """A plain Node.js function from examples/plugins/<name>.ts, bundled here with esbuild."""
    outdir = os.path.join(EXAMPLES, "plugins", "dist", name)
    # The esbuild CLI with app.ts's options, run from examples/ like app.ts, so the bundle (and the
    # asset hash) is the same.
    subprocess.run(
        [
            "npx", "esbuild", os.path.join("plugins", f"{name}.ts"),
            f"--outfile={os.path.join(outdir, 'index.js')}",
            "--bundle", "--platform=node", "--target=node20", "--format=cjs",
            "--external:@aws-sdk/*", "--log-level=warning",
        ],
        cwd=EXAMPLES,
        check=True,
    )
    # Its own role, allowed to write to its own log group only (the default role would carry the
    # AWSLambdaBasicExecutionRole managed policy, which cdk-nag's AwsSolutions-IAM4 reports).
    # add_plugin adds what the plugin needs to report its outcome.
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    role = iam.Role(scope, f"{construct_id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    log_group.grant_write(role)
    return lambda_.Function(
        scope,
        construct_id,
        runtime=lambda_.Runtime.NODEJS_24_X,
        architecture=lambda_.Architecture.ARM_64,
        handler="index.handler",
        code=lambda_.Code.from_asset(outdir),
        memory_size=128,
        timeout=Duration.seconds(10),
        description=f"cdk-orchestrator example plugin {construct_id}",
        role=role,
        log_group=log_group,
    )


# Step1, pre stage: checks the application first (sequential: lowest order runs first).
orchestrator.activity("Step1").add_plugin(
    plugin_function(plugins, "CheckApplication", "check-application"),
    stage=ActivityStage.PRE,
    plugin_name="CheckApplication",
    order=10,
    timeout=Duration.seconds(30),
)

# Step2, parallel stage: two mandatory plugins the stage waits for, and an optional one that fails
# (recorded `Error`; the stage ends `Optional Task Error` and the workflow goes on).
step2 = orchestrator.activity("Step2")
# Rate uses the TypeScript plugin SDK (examples/plugins/rate.ts): it reports its own state.
step2.add_plugin(
    plugin_function(plugins, "Rate", "rate"), stage=ActivityStage.PARALLEL, plugin_name="Rate", reports_status=True
)
step2.add_plugin(
    plugin_function(plugins, "FraudCheck", "fraud-check"),
    stage=ActivityStage.PARALLEL,
    plugin_name="FraudCheck",
    # Counts as Error when it has not succeeded 10 minutes after the message (Lambda stops retrying).
    timeout=Duration.minutes(10),
)
step2.add_plugin(
    plugin_function(plugins, "Marketing", "marketing"),
    stage=ActivityStage.PARALLEL,
    plugin_name="Marketing",
    mandatory=False,
    # Only runs whose metadata has product "home" or "car" reach it (an SNS subscription filter on
    # the message attributes; other runs do not wait for it).
    filter_policy={"product": sns.SubscriptionFilter.string_filter(allowlist=["home", "car"])},
)
# A queue plugin: slow or throttled work, one message at a time from its own SQS queue, in order
# per customer (FIFO); it reports its own state (examples/plugins/ledger.ts, plugin SDK).
step2.add_plugin(
    plugin_function(plugins, "Ledger", "ledger"),
    stage=ActivityStage.PARALLEL,
    plugin_name="Ledger",
    queue=True,
    fifo_key="customer",
)

# Step3, post stage: notifies once the work is done.
orchestrator.activity("Step3").add_plugin(
    plugin_function(plugins, "Notify", "notify"),
    stage=ActivityStage.POST,
    plugin_name="Notify",
)

# The operations team's stack: the orchestrator imported by its attributes, as a stack in another
# app would (there, the ARNs come from the SSM parameters the orchestrator publishes under
# /cdk-orchestrator/example/). An alarm on an imported activity's metric, and a support role that
# may read and correct a run's status document.
operations = Stack(
    app,
    "OrchestratorExampleOperations",
    description="cdk-orchestrator example: alarm and support role on the imported orchestrator",
)
imported = Orchestrator.from_orchestrator_attributes(
    operations,
    "ImportedOrchestrator",
    orchestrator_name="example",
    activities=["Step2"],
    status_table_arn=orchestrator.status_table.table_arn,
    plugin_table_arn=orchestrator.plugin_table.table_arn,
)
imported_step2 = imported.find_activity("Step2")
cloudwatch.Alarm(
    operations,
    "Step2FailuresAlarm",
    alarm_description="Step2 failed 3 times in 15 minutes",
    metric=imported_step2.metric_failed(period=Duration.minutes(15)),
    threshold=3,
    evaluation_periods=1,
    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
)
support = iam.Role(
    operations,
    "SupportRole",
    assumed_by=iam.AccountRootPrincipal(),
    description="Reads and corrects run status documents",
)
imported.grant_plugin_status(support)

app.synth()

import os

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from cdk_orchestrator import ActivityStage, Orchestrator
from constructs import Construct

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugins")


class PluginStack(Stack):
    """Plugins in their own stack (weak cross-stack references to the orchestrator's resources)."""

    def __init__(self, scope: Construct, construct_id: str, *, orchestrator: Orchestrator, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)

        def node(name: str, handler: str) -> lambda_.Function:
            return lambda_.Function(
                self, name,
                runtime=lambda_.Runtime.NODEJS_22_X,
                handler=handler,
                code=lambda_.Code.from_asset(os.path.join(PLUGINS, "node")),
                timeout=Duration.seconds(10),
            )

        rate = lambda_.Function(
            self, "Rate",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="rate.handler",
            code=lambda_.Code.from_asset(os.path.join(PLUGINS, "python")),
            timeout=Duration.seconds(10),
        )
        orchestrator.activity("Check").add_plugin(node("CheckApplication", "check.handler"), stage=ActivityStage.PRE, plugin_name="CheckApplication")
        orchestrator.activity("Rate").add_plugin(rate, stage=ActivityStage.PARALLEL, plugin_name="Rate")
        orchestrator.activity("Rate").add_plugin(
            node("Marketing", "marketing.handler"),
            stage=ActivityStage.PARALLEL,
            plugin_name="Marketing",
            mandatory=False,
        )

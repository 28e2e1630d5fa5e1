#!/usr/bin/env python3
"""The Python twin of .ci/consumer-app: the orchestrator's stack and a second stack with plugins."""
import aws_cdk as cdk

from consumer.orchestrator_stack import OrchestratorStack
from consumer.plugin_stack import PluginStack

app = cdk.App()
core = OrchestratorStack(app, "ConsumerOrchestrator")
PluginStack(app, "ConsumerPlugins", orchestrator=core.orchestrator)
app.synth()

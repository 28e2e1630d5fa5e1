from aws_cdk import Stack
from cdk_orchestrator import Orchestrator, Workflow
from constructs import Construct


class OrchestratorStack(Stack):
    """The orchestrator: two activities and one workflow running them in order."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.orchestrator = Orchestrator(self, "Orchestrator", activities=["Check", "Rate"])
        Workflow(self, "Onboarding", orchestrator=self.orchestrator, activities=["Check", "Rate"], workflow_name="Onboarding")

"""PARALLEL plugin (Python): returns normally, so the orchestrator records Complete."""


def handler(event, context):
    return {"state": "Complete", "message": "rated"}

"""A PARALLEL plugin in Python that reports its own state (docs/PLUGIN-PROTOCOL.md), with boto3 only.

Deploy it as a Lambda function (runtime python3.x, handler ``rate.handler``, this directory as its
code: it uses ``status_protocol.py``) and add it with

    activity.add_plugin(fn, stage=ActivityStage.PARALLEL, plugin_name="Rate", reports_status=True)

``reports_status=True`` lets its role read and update the status table, sets
``CDK_ORCHESTRATOR_STATUS_TABLE``, and gives it an on-failure destination only: what it returns is
recorded nowhere, so it reports every outcome itself. A raised exception is retried twice by
Lambda, then recorded ``Error`` by the orchestrator (the on-failure destination).

The run's metadata field ``amount`` decides: missing -> ``Do Not Run``; negative -> ``Error`` (a
business failure, not retried); otherwise a premium is computed and the plugin is ``Complete``.
"""
import json
import os

from status_protocol import entry_kind, entry_state, report

# The message carries no plugin name: a plugin that reports itself must know its own, the name it
# was added with (or answers in the handshake).
PLUGIN_NAME = os.environ.get("PLUGIN_NAME", "Rate")

# The answer to the initialize handshake (run-time registration); unknown fields are ignored.
CONFIGURATION = {"pluginName": PLUGIN_NAME, "mandatory": True, "description": "Rates a quote (Python, reports its own state)"}


def handler(event, context):
    if event.get("initialize") is True:
        return CONFIGURATION
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    kind = entry_kind(message, PLUGIN_NAME)
    if kind is None:
        # Not registered under this name in this run: fail loudly (retried, then recorded Error).
        raise RuntimeError(f"{PLUGIN_NAME} has no entry in {message['activity']}.{message['stage']} of run {message['uid']}")
    if entry_state(message, kind, PLUGIN_NAME) in ("Complete", "Do Not Run"):
        return {"skipped": True}  # a repeated delivery: already done
    if not report(message, kind, PLUGIN_NAME, "In Progress"):
        return {"skipped": True}  # refused: the entry is already final (another delivery finished it)

    amount = message.get("amount")
    if amount is None:
        report(message, kind, PLUGIN_NAME, "Do Not Run")
        return {}
    if amount < 0:
        report(message, kind, PLUGIN_NAME, "Error", f"amount must not be negative, got {amount}")
        return {}
    premium = round(amount * 0.042, 2)
    print(json.dumps({"plugin": PLUGIN_NAME, "uid": message["uid"], "premium": premium}))
    report(message, kind, PLUGIN_NAME, "Complete")
    # Recorded nowhere (reports_status=True: no on-success destination); handy in the logs.
    return {"premium": premium}

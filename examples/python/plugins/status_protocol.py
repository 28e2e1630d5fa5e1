"""The status protocol of docs/PLUGIN-PROTOCOL.md in Python, with boto3 only (no orchestrator code).

Shared by the plugins of this directory that report their own state (``rate.py``, ``archive.py``):
deploy it with them (``Code.from_asset`` of this directory does).

- ``entry_kind(message, plugin_name)``: ``"mandatory"`` or ``"optional"``, where the orchestrator put
  the plugin's entry ("The status document"), read from the message or, for a shortened message,
  from the status item;
- ``report(message, kind, plugin_name, state, text=None)``: the one conditional UpdateItem of
  "Reporting a state"; ``False`` when DynamoDB refused it (the entry is already final, or the run
  has no entry for the plugin): not applied, and not to be retried.
"""
import os
from datetime import datetime, timezone

import boto3

dynamodb = boto3.client("dynamodb")

# Set by activity.add_plugin(fn, ..., reports_status=True) (and queue=True).
STATUS_TABLE = os.environ.get("CDK_ORCHESTRATOR_STATUS_TABLE")

ALLOWED_FROM = ("Not Started", "In Progress")  # every state a plugin reports may come only from these
ENTRY = "#a.#act.#stage.#kind.#plugin"


def now():
    """ISO-8601 in UTC with milliseconds and Z, as the orchestrator writes times (they are compared as strings)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_table(message):
    """The status table: the environment, else a shortened message's statusRef."""
    return STATUS_TABLE or message["statusRef"]["tableName"]


def entry_kind(message, plugin_name):
    """Where the orchestrator put the plugin's entry: "mandatory", "optional", or None (not in this run)."""
    stage = message.get("activities", {}).get(message["activity"], {}).get(message["stage"])
    if not stage or "mandatory" not in stage:
        # A shortened message ("truncated": true) may lack the plugin maps: read the status item.
        item = dynamodb.get_item(
            TableName=status_table(message),
            Key={"uid": {"S": message["uid"]}, "workflow": {"S": message["workflow"]}},
            ConsistentRead=True,
        ).get("Item", {})
        stage_map = item.get("activities", {}).get("M", {}).get(message["activity"], {}).get("M", {}).get(message["stage"], {}).get("M", {})
        stage = {kind: stage_map.get(kind, {}).get("M", {}) for kind in ("mandatory", "optional")}
    for kind in ("mandatory", "optional"):
        if plugin_name in stage.get(kind, {}):
            return kind
    return None


def entry_state(message, kind, plugin_name):
    """The plugin's entry state as the message shows it (None when the message does not show it)."""
    entry = message.get("activities", {}).get(message["activity"], {}).get(message["stage"], {}).get(kind, {}).get(plugin_name)
    return entry.get("state") if entry else None


def report(message, kind, plugin_name, state, text=None):
    """Moves the plugin's entry to `state` (with `text` as its message). False: refused, not applied."""
    names = {
        "#a": "activities", "#act": message["activity"], "#stage": message["stage"], "#kind": kind,
        "#plugin": plugin_name, "#state": "state", "#updatedAt": "updatedAt", "#message": "message",
    }
    values = {
        ":state": {"S": state}, ":now": {"S": now()},
        ":from1": {"S": ALLOWED_FROM[0]}, ":from2": {"S": ALLOWED_FROM[1]},
    }
    expression = f"SET {ENTRY}.#state = :state, {ENTRY}.#updatedAt = :now, #updatedAt = :now"
    if text is None:
        expression += f" REMOVE {ENTRY}.#message"  # no stale message
    else:
        expression += f", {ENTRY}.#message = :message"  # :message only when there is one
        values[":message"] = {"S": text[:180]}  # nobody trims what a plugin writes: keep it short
    try:
        dynamodb.update_item(
            TableName=status_table(message),
            Key={"uid": {"S": message["uid"]}, "workflow": {"S": message["workflow"]}},
            UpdateExpression=expression,
            ConditionExpression=f"{ENTRY}.#state IN (:from1, :from2) AND attribute_exists(uid)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return True
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False

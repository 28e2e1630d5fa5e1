"""A queue plugin in Python (docs/PLUGIN-PROTOCOL.md "Queue plugins"), with boto3 only.

Deploy it as a Lambda function (runtime python3.x, handler ``archive.handler``, this directory as its
code: it uses ``status_protocol.py``) and add it with

    activity.add_plugin(fn, stage=ActivityStage.PARALLEL, plugin_name="Archive", queue=True)

It consumes its own SQS queue: each record's body is the plugin message itself (no SNS envelope),
and the run's scalar metadata fields arrive as SQS message attributes (every value a string: a
boolean ``true`` becomes ``"true"``). It reports its state itself (an SQS invocation has no
destinations). A record it fails on is returned in ``batchItemFailures`` and received again; before
that it writes its error on its entry, so after the last receive (the dead-letter queue) the
orchestrator's ``Error`` keeps that text.

The run's metadata field ``failArchive`` (``true``) makes it fail every time, to show that path.
"""
import json
import os

from status_protocol import entry_kind, entry_state, report

PLUGIN_NAME = os.environ.get("PLUGIN_NAME", "Archive")
CONFIGURATION = {"pluginName": PLUGIN_NAME, "mandatory": True, "description": "Archives the run (Python queue plugin)"}


class ArchiveUnavailable(Exception):
    pass


def work(message, attributes):
    # The same value twice: in the body with its JSON type, as a message attribute as a string.
    if message.get("failArchive") is True and attributes.get("failArchive", {}).get("stringValue") == "true":
        raise ArchiveUnavailable(f"archive unavailable for {message['uid']}")
    print(json.dumps({"plugin": PLUGIN_NAME, "uid": message["uid"], "archived": True}))


def handler(event, context):
    if event.get("initialize") is True:
        return CONFIGURATION
    failures = []
    for record in event["Records"]:  # batch size 1: one record per invocation
        message = json.loads(record["body"])
        kind = entry_kind(message, PLUGIN_NAME)
        if kind is None or entry_state(message, kind, PLUGIN_NAME) in ("Complete", "Do Not Run"):
            continue  # not in this run, or already done: nothing to do, the record is deleted
        if not report(message, kind, PLUGIN_NAME, "In Progress"):
            continue  # the entry is already final
        try:
            work(message, record.get("messageAttributes", {}))
        except Exception as error:
            # Keep the error text on the entry (still In Progress): the dead-letter Error keeps it.
            report(message, kind, PLUGIN_NAME, "In Progress", f"{type(error).__name__}: {error}")
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        report(message, kind, PLUGIN_NAME, "Complete")
    return {"batchItemFailures": failures}

"""A zero-SDK PARALLEL plugin in Python: no orchestrator code, no AWS SDK.

Deploy it as a Lambda function (runtime python3.x, handler ``fraud_check.handler``) and add it with
``activity.add_plugin(fn, stage=ActivityStage.PARALLEL, plugin_name="FraudCheck")``. The
orchestrator delivers the plugin message as an SNS event and records the outcome through the
Lambda destinations ``add_plugin`` configures:

- return normally                         -> ``Complete``
- return ``{"state": "Error", ...}``      -> ``Error`` with the message (a business failure, not retried)
- return ``{"state": "Do Not Run"}``      -> ``Do Not Run`` (nothing to do for this run)
- raise                                   -> retried twice by Lambda, then ``Error``
"""
import json

BLOCKED_COUNTRIES = {"XX"}


def handler(event, context):
    # The plugin message: uid, workflow, activity, stage, status, activities, now, plus the
    # caller's metadata fields (the scalar ones also arrive as SNS message attributes).
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    country = message.get("country")
    if country is None:
        return {"state": "Do Not Run"}
    if country in BLOCKED_COUNTRIES:
        return {"state": "Error", "message": f"sanctions check failed for {message['uid']}"}
    print(json.dumps({"plugin": "FraudCheck", "uid": message["uid"], "result": "clear"}))
    return {"result": "clear"}

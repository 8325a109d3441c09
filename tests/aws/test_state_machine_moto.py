"""The real state machine definition, executed by moto with the real handlers in-process."""

import json

from stedi.stages import STAGES, TABLES


def test_happy_path(stack):
    execution = stack.run({"consent_scope": "reading"})
    _debug(execution)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    assert list(output["checks"]) == list(STAGES)


def _debug(execution):
    for event in execution["history"]:
        details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
        print(event["type"], json.dumps(details, default=str)[:600])

"""The CloudWatch dashboard in template.yaml: its body is valid JSON once CloudFormation fills in
`${...}`, every metric widget has a region, and every metric it graphs is one the code emits (or an
AWS metric of a resource of this stack), as test_template.py does for the alarms."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nudge.domain.delivery import DeliveryStatus
from nudge.domain.models import Reason
from nudge.services.ports import ReceiptOutcome
from nudge.services.sending import SendOutcome
from nudge_local.moto_env import load_template

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = "".join(
    (ROOT / "functions" / f / "app.py").read_text(encoding="utf-8")
    for f in ("plan", "send", "outcomes", "ingest", "receipts")
)
# What a receipt counts is named in one place, for the receipts function and the ingest URL's pushes.
RECEIPT_COUNTING = (ROOT / "layers" / "nudge" / "nudge" / "services" / "receipts.py").read_text(
    encoding="utf-8"
)
AWS_METRICS = {
    "AWS/Lambda": {"Errors", "Throttles", "IteratorAge", "Invocations"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"},
}


@pytest.fixture(scope="module")
def template():
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def body(template):
    text, variables = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([A-Za-z0-9:.]+)\}", text))
    resources = set(template["Resources"])
    for name in names:  # each ${X} is a pseudo parameter, a Sub variable, or a resource of the stack
        base = name.split(".")[0]
        assert name.startswith("AWS::") or name in variables or base in resources, name
    assert variables["OutcomesFunctionName"] == {
        "Fn::If": ["HasOrdersStream", {"Ref": "OutcomesFunction"}, "none"]
    }
    return json.loads(re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda m: m.group(1).replace(":", "-"), text))


def metrics(body):
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for row in widget["properties"]["metrics"]:
            yield widget, row


def test_every_metric_widget_is_complete(body):
    widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    assert widgets
    for w in widgets:
        props = w["properties"]
        assert props["region"] == "AWS--Region" and props["metrics"] and props["title"], w
        assert w["x"] >= 0 and w["x"] + w["width"] <= 24


def emitted(name: str) -> bool:
    if f'name="{name}"' in HANDLERS:
        return True
    # f-string names: one per reason (plan) and one per send outcome (send)
    if name.startswith("Decision_"):
        return 'name=f"Decision_{reason}"' in HANDLERS and name[9:] in {r.value for r in Reason} | {"send"}
    if name.startswith("Send_"):
        return 'name=f"Send_{outcome}"' in HANDLERS and name[5:] in {o.value for o in SendOutcome}
    if name.startswith("Delivery_"):  # one per delivery status (receipts)
        return 'f"Delivery_{receipt.status.value}"' in RECEIPT_COUNTING and name[9:] in {
            d.value for d in DeliveryStatus
        }
    if name.startswith("Receipt_"):
        return 'f"Receipt_{result.outcome.value}"' in RECEIPT_COUNTING and name[8:] in {
            o.value for o in ReceiptOutcome
        }
    return False


def test_every_graphed_metric_is_emitted(body, template):
    custom = set()
    for widget, row in metrics(body):
        namespace, name, *rest = row
        dims = [x for x in rest if not isinstance(x, dict)]
        if namespace == "Nudge":
            custom.add(name)
            assert emitted(name), f"{widget['properties']['title']}: {name} is not emitted by any handler"
            # Powertools adds service=<POWERTOOLS_SERVICE_NAME>, and the handlers add no other dimension.
            service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            assert dims == ["service", service], name
        else:
            assert name in AWS_METRICS[namespace], name
            assert dims[0] == ("FunctionName" if namespace == "AWS/Lambda" else "QueueName"), row
    assert {"RecoveredOrders", "RecoveredRevenue", "HoldoutPaidOrders", "SmsEnqueued", "Send_sent"} <= custom
    # every skip reason is graphed
    assert {f"Decision_{r.value}" for r in Reason} <= custom


def test_the_widgets_design_asks_for(body):
    titles = " | ".join(w["properties"].get("title", "") for w in body["widgets"]).lower()
    for topic in (
        "sent",
        "skipped",
        "recovered",
        "holdout vs reminded",
        "failures",
        "dead-letter",
        "queue age",
        "throttles",
    ):
        assert topic in titles, topic
    graphed = {(row[0], row[1], row[3]) for _, row in metrics(body)}
    for queue in ("SendDLQ", "SchedulerDLQ", "OutcomesDLQ"):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", f"{queue}.QueueName") in graphed
    for fn in ("PlanFunction", "SendFunction", "OutcomesFunctionName"):
        assert ("AWS/Lambda", "Throttles", fn) in graphed and ("AWS/Lambda", "Errors", fn) in graphed

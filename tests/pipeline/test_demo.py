"""`nudge demo`: the whole pipeline on moto as `make demo` runs it."""

from __future__ import annotations

import pytest

from tests.unit.test_cli import run

pytestmark = pytest.mark.aws


def test_demo_runs_the_pipeline_and_sends_nothing_twice(tmp_path):
    page = tmp_path / "report.html"
    code, out = run("demo", "--html", str(page))
    assert code == 0
    assert "SNS received 5 SMS:" in out and "o-1013: not sent at send time: opted_out" in out
    assert "same summary: True" in out and "any number texted twice: none" in out
    # the A/B test of two first-reminder texts: both texts went out, the report compares them
    assert "是付款遇到问题了吗" in out and "付款当天发货" in out
    assert "by variant" in out and "caring" in out and "cutoff" in out
    assert 'id="by-variant"' in page.read_text(encoding="utf-8")


def test_demo_with_end_user_messaging_shows_receipts_and_an_opt_out_by_reply(tmp_path):
    code, out = run("demo", "--gateway", "end-user-messaging", "--html", str(tmp_path / "r.html"))
    assert code == 0 and "End User Messaging received 5 SMS:" in out
    assert "delivery events reach the receipts function" in out and "carrier_unreachable (applied)" in out
    assert "replies 退订: opted_out" in out and "any number texted twice: none" in out
    assert "delivered 4 (80.0% of the SMS with a final receipt)" in out  # nudge report reads them back


def test_demo_with_aliyun_sends_registered_templates_through_the_sdk(tmp_path):
    code, out = run("demo", "--gateway", "aliyun", "--html", str(tmp_path / "r.html"))
    assert code == 0 and "Alibaba Cloud SMS received 6 SMS:" in out  # no opt-out refusal at Alibaba Cloud
    assert (
        "【Nudge Shop】王芳您好，您的订单（¥199.00）还未付款，是付款遇到问题了吗？" in out
    )  # variant caring
    assert "11:00前付款当天发货" in out  # variant cutoff: its own registered template
    assert "templates SMS_480010011, SMS_480010012" in out and "OutId = the claim" not in out
    assert "+1******0143:" in out  # a +1 number is read back as +1, not as a mainland one
    # Alibaba Cloud pushes receipts (SmsReport): answered code 0, each on its SMS's ledger item,
    # a replay changes nothing; nudge report reads them back
    assert 'POST /receipts/aliyun/report/<the stack\'s token>\n   answered 200 {"code": 0' in out
    assert "o-1006 reminder 1 +86138****8004: failed, UNDELIV" in out
    assert "o-1017 reminder 1 +1******0143: expired, EXPIRED" in out
    assert "o-1001 reminder 1 +86138****8001: delivered" in out
    assert "nothing changed: True" in out
    assert "delivered 4 (66.7% of the SMS with a final receipt), expired 1" in out
    assert "failed: UNDELIV 1" in out
    # one buyer's 退订 (SmsUp): answered code 0, and the next plan skips the number
    assert '+86186****5678 replies 退订: answered 200 {"code": 0' in out
    assert "opted out by the 退订 reply in step 2c, now skipped when planning: o-1024" in out
    assert "same summary: True" in out and "any number texted twice: none" in out

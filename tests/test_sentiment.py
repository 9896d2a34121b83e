"""Anger and language, read from the text: rules raise priority on anger, and answers follow the language."""

from __future__ import annotations

import uuid

import pytest

from activities.rules.sentiment import assess, detect_language
from tests.helpers.cases import complaint, eventually, notices, stage_is

FURIOUS = {
    "zh": "我非常生气，你们的产品太垃圾了，骗子！立刻退款！",
    "en": "This is OUTRAGEOUS. You are scammers and I am furious!!!",
}
CALM = {
    "zh": "快递延迟了两天，希望尽快处理",
    "en": "My parcel is two days late, please look into it.",
}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_furious_text_reads_angrier_than_a_calm_one(language):
    furious, calm = assess(FURIOUS[language]), assess(CALM[language])
    assert furious.language == calm.language == language
    assert furious.anger >= 0.6 > 0.3 > calm.anger


def test_language_by_script():
    assert detect_language("订单重复扣费 refund") == "zh"
    assert detect_language("Package never arrived, 快递") == "en"
    assert detect_language("12345 !!!") is None
    assert assess("12345").anger == 0


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_anger_raises_priority_on_the_server(run_worker, language):
    async with run_worker() as redress:
        angry, calm = complaint(text=FURIOUS[language]), complaint(text=CALM[language])
        for data in (angry, calm):
            await redress.submit(data)
        angry_status = await stage_is(redress, angry["complaint_id"], "acknowledged")
        calm_status = await stage_is(redress, calm["complaint_id"], "acknowledged")
        triaged = next(e for e in await redress.timeline(angry["complaint_id"]) if e.kind == "triaged")
    assert angry_status.severity.value == "urgent" and calm_status.severity.value == "general"
    assert "furious-customer-is-urgent" in triaged.data["fired"]
    assert triaged.data["language"] == language and triaged.data["sentiment"]["anger"] >= 0.6


async def test_answers_in_the_language_the_customer_wrote_unless_they_chose_one(run_worker, peer):
    async with run_worker() as redress:
        wrote_chinese = complaint(text=CALM["zh"], customer={"id": f"c-1-{uuid.uuid4().hex[:6]}"})  # no language given
        chose_english = complaint(text=CALM["zh"], customer={"id": f"c-2-{uuid.uuid4().hex[:6]}", "language": "en"})
        for data in (wrote_chinese, chose_english):
            await redress.submit(data)

        async def acknowledged(data):
            return await notices(peer, data["complaint_id"], "acknowledgement")

        first = (await eventually(lambda: acknowledged(wrote_chinese)))[0]
        second = (await eventually(lambda: acknowledged(chose_english)))[0]
    assert first.body["language"] == "zh" and "我们已收到" in first.body["text"]
    assert second.body["language"] == "en"

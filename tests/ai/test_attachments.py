"""The assistant sees a message's files as short descriptions in its data block, never their
bytes or their URLs."""

from __future__ import annotations

import dataclasses

from ai.context import to_turn
from ai.prompt import read_data_block, reply_request
from chatcore.events import Attachment
from tests.ai.conftest import MemorySource


def test_attachments_reach_the_prompt_as_kind_and_name_only() -> None:
    source = MemorySource()
    msg = source.add(40, "what is in these? @assistant")
    files = (Attachment("a" * 24, "plan.png", "image/png", 2048, 64, 48, url="/files/aaa/plan.png?exp=1&sig=x",
                        thumb_url="/files/aaa/plan.png?v=thumb&exp=1&sig=y"),
             Attachment("b" * 24, "call.ogg", "audio/ogg", 9000),
             Attachment("c" * 24, "budget.xlsx", "application/vnd.ms-excel", 1200))
    turn = to_turn(dataclasses.replace(msg, attachments=files), 4000)
    [record] = read_data_block(reply_request("rules", "", [turn]).data)
    assert record["text"] == "what is in these? @assistant [image: plan.png] [audio: call.ogg] [file: budget.xlsx]"
    assert "/files/" not in record["text"] and "sig" not in record["text"]
    only_files = to_turn(dataclasses.replace(msg, body="", attachments=files[:1]), 4000)
    assert only_files.text == "[image: plan.png]"

"""The ready-made automations file: valid Prefect automations on the pipeline's events."""

from __future__ import annotations

from uuid import uuid4

import pytest

from catalog_images.cli.automations import (
    AUTOMATIONS_FILE,
    load_automations,
    split_block_reference,
)
from catalog_images.report import events


def test_the_shipped_file_is_valid_and_every_notification_uses_the_chosen_block():
    block_id = uuid4()
    automations = load_automations(AUTOMATIONS_FILE, str(block_id))
    names = [a.name for a in automations]
    assert names == ["catalog-images: refresh failed", "catalog-images: budget reached",
                     "catalog-images: daily quota exhausted",
                     "catalog-images: report not uploaded"]
    for automation in automations:
        assert automation.actions and all(
            action.block_document_id == block_id for action in automation.actions)
    expected = [sorted(a.trigger.expect) for a in automations]
    assert expected == [["prefect.flow-run.Crashed", "prefect.flow-run.Failed"],
                        [events.BUDGET_REACHED], [events.QUOTA_EXHAUSTED],
                        [events.REPORT_NOT_UPLOADED]]
    failed = automations[0].trigger
    assert failed.match_related.model_dump() == {"prefect.resource.role": "flow",
                                                 "prefect.resource.name": "catalog-refresh"}


def test_a_block_reference_is_slug_slash_name():
    assert split_block_reference("slack-webhook/catalog-alerts") == (
        "slack-webhook", "catalog-alerts")
    with pytest.raises(ValueError, match="BLOCK-TYPE-SLUG/BLOCK-NAME"):
        split_block_reference("catalog-alerts")

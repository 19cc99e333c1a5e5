"""What exists when generation starts is left out of the collector's walks until it ends."""

from __future__ import annotations

import gc

import pytest

from catalog_images.generation.run import YOUNG_OBJECTS_PER_WALK, startup_objects_frozen


def test_objects_made_before_generation_are_frozen_for_it_and_released_after():
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    with pytest.raises(RuntimeError), startup_objects_frozen():
        assert gc.get_freeze_count() > 1000  # modules, classes, pytest: everything so far
        assert gc.get_threshold()[0] == YOUNG_OBJECTS_PER_WALK
        raise RuntimeError("a failed run")
    assert gc.get_freeze_count() == 0  # back in the collector's care, even after a failure
    assert gc.get_threshold() == thresholds

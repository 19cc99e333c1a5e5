"""Provider rate fields say what they mean; the old names still load, with a warning."""

from __future__ import annotations

import warnings

import pytest

from catalog_images.providers.config import (
    RENAMED_FIELDS,
    ConfigError,
    ProviderConfig,
    ProviderFieldRenamed,
    builtin_presets,
    get_provider,
)

BASE = {"name": "relay", "kind": "emulator", "base_url": "http://127.0.0.1:1"}


def _toml(tmp_path, body: str):
    path = tmp_path / "providers.toml"
    path.write_text("[providers.relay]\nkind = \"emulator\"\nbase_url = \"http://127.0.0.1:1\"\n"
                    + body)
    return path


def test_new_names_load_without_warning(tmp_path):
    path = _toml(tmp_path, "requests_per_window = 30\nwindow_s = 6\nrequests_per_day = 900\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = get_provider("relay", path)
    assert (config.requests_per_window, config.window_s, config.requests_per_day) == (30, 6, 900)


def test_old_names_in_a_file_load_under_the_new_names_with_a_warning(tmp_path):
    path = _toml(tmp_path, "rpm = 30\nquota_window_s = 6\nrpd = 900\n")
    with pytest.warns(ProviderFieldRenamed) as caught:
        config = get_provider("relay", path)
    assert (config.requests_per_window, config.window_s, config.requests_per_day) == (30, 6, 900)
    messages = " | ".join(str(w.message) for w in caught)
    for old, new in RENAMED_FIELDS.items():
        assert f"'{old}' is deprecated; use '{new}'" in messages
    assert "not per minute" in messages


def test_an_old_name_in_a_file_overrides_a_preset_set_by_its_new_name(tmp_path):
    assert builtin_presets()["google"]["requests_per_window"] == 300
    path = tmp_path / "providers.toml"
    path.write_text("[providers.google]\nrpm = 100\n")
    with pytest.warns(ProviderFieldRenamed, match="requests_per_window"):
        config = get_provider("google", path)
    assert config.requests_per_window == 100
    assert config.requests_per_day == 1500  # the preset's, untouched


def test_old_names_given_directly_work_too():
    with pytest.warns(ProviderFieldRenamed) as caught:
        config = ProviderConfig(**BASE, rpm=5, quota_window_s=2.0)
    assert len(caught) == 2
    assert "'quota_window_s' is deprecated; use 'window_s'" in str(caught[1].message)
    assert (config.requests_per_window, config.window_s) == (5, 2.0)
    assert "rpm" not in config.model_dump() and config.model_dump()["window_s"] == 2.0


def test_both_names_with_different_values_is_an_error(tmp_path):
    path = _toml(tmp_path, "rpm = 30\nrequests_per_window = 31\n")
    with pytest.raises(ConfigError, match="set 'requests_per_window' only"):
        get_provider("relay", path)
    with pytest.raises(ValueError, match="set 'window_s' only"):
        ProviderConfig(**BASE, quota_window_s=6, window_s=60)


def test_old_attribute_names_read_the_new_fields_with_a_deprecation_warning():
    config = ProviderConfig(**BASE, requests_per_window=7, window_s=3.0, requests_per_day=9)
    with pytest.warns(DeprecationWarning, match=r"ProviderConfig.rpm is deprecated"):
        assert config.rpm == 7
    with pytest.warns(DeprecationWarning, match="window_s"):
        assert config.quota_window_s == 3.0
    with pytest.warns(DeprecationWarning, match="requests_per_day"):
        assert config.rpd == 9


def test_bounds_still_hold_under_the_new_names():
    with pytest.raises(ValueError, match="requests_per_window"):
        ProviderConfig(**BASE, requests_per_window=0)
    with pytest.raises(ValueError, match="window_s"):
        ProviderConfig(**BASE, window_s=0)


def test_presets_use_the_new_names():
    old = {name for entry in builtin_presets().values() for name in entry} & set(RENAMED_FIELDS)
    assert old == set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        relay = get_provider("async-task-relay")
    assert (relay.requests_per_window, relay.window_s) == (20, 10.0)

"""Provider configuration: validation, prices, key lookup, presets and the TOML overlay."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from catalog_images.providers import config as config_module
from catalog_images.providers.config import (
    ConfigError,
    builtin_presets,
    get_provider,
    load_providers,
)
from catalog_images.secrets import redact

from .wire import config


def test_base_url_must_be_http_and_loses_its_trailing_slash():
    assert config(base_url="https://relay.example.com/").base_url == "https://relay.example.com"
    with pytest.raises(ValidationError, match="http"):
        config(base_url="ftp://relay.example.com")


def test_prices_by_resolution_and_the_default_half_price_batch():
    google = config(prices={"1K": 0.134, "2K": 0.134, "4K": 0.24})
    assert [google.prices.for_resolution(r) for r in ("1K", "2K", "4K")] == [0.134, 0.134, 0.24]
    assert google.batch_price("4K") == pytest.approx(0.12)
    explicit = config(batch_prices={"1K": 0.01, "2K": 0.02, "4K": 0.03})
    assert explicit.batch_price("2K") == 0.02


def test_unknown_fields_and_bad_limits_are_refused():
    with pytest.raises(ValidationError):
        config(rmp=10)  # a typo must not pass silently
    with pytest.raises(ValidationError):
        config(max_concurrency=0)


def test_the_key_comes_from_its_environment_variable_and_is_registered_as_a_secret(
        monkeypatch):
    key = "env-key-for-unit-test-42424242"
    monkeypatch.setenv("UNIT_KEY_ENV", key)
    monkeypatch.setattr(config_module, "_secret_block_value",
                        lambda name: pytest.fail("the block is not read when the env has it"))
    assert config(api_key_env="UNIT_KEY_ENV", api_key_block="blk").resolve_api_key() == key
    assert redact(f"x {key} y") == "x *** y"


def test_the_secret_block_is_read_when_the_environment_has_no_key(monkeypatch):
    monkeypatch.setenv("UNIT_KEY_ENV", "")
    monkeypatch.setattr(config_module, "_secret_block_value",
                        lambda name: f"block-value-of-{name}")
    provider = config(api_key_env="UNIT_KEY_ENV", api_key_block="gemini-key")
    assert provider.resolve_api_key() == "block-value-of-gemini-key"


def test_a_missing_key_is_a_config_error_naming_where_to_put_it(monkeypatch):
    monkeypatch.delenv("UNIT_MISSING_KEY", raising=False)
    with pytest.raises(ConfigError, match="UNIT_MISSING_KEY"):
        config(api_key_env="UNIT_MISSING_KEY").resolve_api_key()
    with pytest.raises(ConfigError, match="no API key"):
        config().resolve_api_key()


def test_the_emulator_and_keyless_providers_need_no_key(monkeypatch):
    monkeypatch.delenv("UNIT_MISSING_KEY", raising=False)
    assert config("emulator", api_key_env="UNIT_MISSING_KEY").resolve_api_key() is None
    assert config(auth="none").resolve_api_key() is None


def test_every_builtin_preset_is_valid_and_the_emulator_url_follows_its_variable(monkeypatch):
    monkeypatch.setenv("CATALOG_IMAGES_EMULATOR_URL", "http://127.0.0.1:9999")
    monkeypatch.delenv("CATALOG_IMAGES_PROVIDERS_FILE", raising=False)
    providers = load_providers()
    assert set(providers) == set(builtin_presets())
    assert providers["emulator"].base_url == "http://127.0.0.1:9999"
    assert providers["google"].batch_price("1K") == pytest.approx(0.067)
    assert providers["async-task-relay"].kind == "async-task"


def test_a_providers_file_overrides_only_the_fields_it_sets(tmp_path, monkeypatch):
    path = tmp_path / "providers.toml"
    path.write_text(
        '[providers.google]\nrpm = 10\n\n'
        '[providers.mine]\nkind = "openai-images"\nbase_url = "https://mine.example.com/"\n'
        'auth = "bearer"\n[providers.mine.prices]\n"1K" = 0.01\n', encoding="utf-8")
    monkeypatch.setenv("CATALOG_IMAGES_PROVIDERS_FILE", str(path))
    providers = load_providers()
    assert providers["google"].rpm == 10 and providers["google"].rpd == 1500  # kept
    mine = providers["mine"]
    assert (mine.kind, mine.base_url, mine.prices.k1, mine.prices.k4) == (
        "openai-images", "https://mine.example.com", 0.01, 0.24)
    assert get_provider("mine", path).name == "mine"


@pytest.mark.parametrize(
    ("text", "match"),
    [("[providers\n", "provider file"), ("providers = { x = 1 }\n", r"\[providers.x\]"),
     ('[providers.google]\nrequests_per_window = -1\n', "provider 'google': requests_per_window"),
     ('[providers.bad]\nkind = "fax"\nbase_url = "https://x"\n', "provider 'bad': kind")])
def test_a_bad_providers_file_is_a_config_error(tmp_path, text, match):
    path = tmp_path / "providers.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        load_providers(path)


def test_a_missing_providers_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="provider file"):
        load_providers(tmp_path / "absent.toml")


def test_an_unknown_provider_name_lists_the_known_ones(monkeypatch):
    monkeypatch.delenv("CATALOG_IMAGES_PROVIDERS_FILE", raising=False)
    with pytest.raises(ConfigError, match="known: .*emulator.*google"):
        get_provider("nope")


"""Deployment-safe parameters: what reaches into the worker comes from its own allowlists."""

from __future__ import annotations

import os

import pytest

from catalog_images.providers.config import ProviderConfig, builtin_presets
from catalog_images.settings import RunSettings
from catalog_images.worker_policy import (
    AWS_BLOCKS_ENV,
    CATALOG_ROOTS_ENV,
    DASK_ADDRESSES_ENV,
    KEY_ENV_PATTERN_ENV,
    PROVIDERS_FILES_ENV,
    REPORT_DIR_ENV,
    SHARD_DEPLOYMENTS_ENV,
    UNTRUSTED_ENV,
    ParameterRefused,
    check_parameters,
    check_provider_keys,
    key_problem,
    parameters_untrusted,
)

BASE = {"catalog": "s3://bucket/catalog.csv", "dest": "s3://bucket/out"}
UNTRUSTED = {UNTRUSTED_ENV: "1"}


def _settings(**extra) -> RunSettings:
    return RunSettings(**{**BASE, **extra})


def test_plain_calls_are_trusted_and_the_env_forces_checks():
    assert not parameters_untrusted({})
    assert parameters_untrusted(UNTRUSTED)
    check_parameters(_settings(report_path="/etc/cron.d/x", dask_address="tcp://evil:8786",
                               shards=2), {})  # the shell user's own run


@pytest.mark.parametrize(("extra", "named"), [
    ({"providers_file": "/tmp/evil.toml"}, "providers.providers_file"),
    ({"report_path": "/etc/cron.d/evil"}, "output.report_path"),
    ({"dask_address": "tcp://evil.example:8786", "shards": 2}, "scale_out.dask_address"),
    ({"aws_credentials_block": "prod-admin"}, "output.aws_credentials_block"),
    ({"shard_deployment": "other/deployment", "shards": 2}, "scale_out.shard_deployment"),
])  # named as the run form and prefect.yaml place them
def test_each_route_into_the_worker_is_refused_without_an_allowlist(extra, named):
    with pytest.raises(ParameterRefused) as caught:
        check_parameters(_settings(**extra), UNTRUSTED)
    message = str(caught.value)
    assert named in message
    for value in extra.values():  # the message never echoes where the parameter pointed
        if isinstance(value, str):
            assert value not in message


def test_allowlists_on_the_worker_let_the_named_values_through(tmp_path):
    providers = tmp_path / "providers.toml"
    providers.write_text("")
    reports = tmp_path / "reports"
    reports.mkdir()
    env = {**UNTRUSTED, PROVIDERS_FILES_ENV: str(providers), REPORT_DIR_ENV: str(reports),
           DASK_ADDRESSES_ENV: "tcp://10.0.0.5:8786, tcp://10.0.0.6:8786",
           AWS_BLOCKS_ENV: "catalog-s3", SHARD_DEPLOYMENTS_ENV: "mine/shard"}
    check_parameters(_settings(
        providers_file=str(providers), report_path=str(reports / "r.json"),
        dask_address="tcp://10.0.0.6:8786", shards=2, aws_credentials_block="catalog-s3",
        shard_deployment="mine/shard"), env)


def test_report_path_cannot_leave_the_allowed_folder(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "link").symlink_to(tmp_path)
    env = {**UNTRUSTED, REPORT_DIR_ENV: str(reports)}
    for path in (reports / ".." / "x.json", reports / "link" / "x.json"):
        with pytest.raises(ParameterRefused, match="report_path"):
            check_parameters(_settings(report_path=str(path)), env)


def test_a_local_catalog_outside_configured_roots_is_refused(tmp_path):
    env = {**UNTRUSTED, CATALOG_ROOTS_ENV: str(tmp_path / "catalogs")}
    with pytest.raises(ParameterRefused, match="catalog"):
        check_parameters(_settings(catalog="/etc/passwd.csv"), env)
    check_parameters(_settings(catalog=str(tmp_path / "catalogs" / "c.csv")), env)


def _config(name: str, base_url: str, key_env: str) -> ProviderConfig:
    return ProviderConfig(name=name, kind="gemini", base_url=base_url, api_key_env=key_env)


def test_credentials_are_never_provider_keys_even_for_the_shell_user():
    for name in ("AWS_SECRET_ACCESS_KEY", "MY_S3_API_KEY", "PREFECT_API_KEY"):
        problem = key_problem(_config("x", "https://relay.example.com", name), False, {})
        assert problem and "credential" in problem


def test_untrusted_key_names_follow_the_pattern_and_stay_with_their_host():
    relay = _config("x", "https://evil.example.com", "RELAY_TOKEN")
    assert "pattern" in key_problem(relay, True, {})
    assert key_problem(relay, True, {KEY_ENV_PATTERN_ENV: r"RELAY_\w+"}) is None
    assert key_problem(relay, False, {}) is None
    stolen = _config("x", "https://evil.example.com", "GEMINI_API_KEY")
    assert "another host" in key_problem(stolen, True, {})
    own = _config("google", builtin_presets()["google"]["base_url"], "GEMINI_API_KEY")
    assert key_problem(own, True, {}) is None


def test_the_worker_presets_pass(monkeypatch):
    monkeypatch.setenv(UNTRUSTED_ENV, "1")
    configs = [ProviderConfig(name=name, **entry) for name, entry in builtin_presets().items()]
    check_provider_keys(configs)
    monkeypatch.setenv("CATALOG_IMAGES_EMULATOR_URL", "http://127.0.0.1:1")
    emulator = ProviderConfig(name="emulator", **builtin_presets()["emulator"])
    check_provider_keys([emulator], dict(os.environ))


def test_unresolvable_paths_are_refused_not_crashed():
    for extra in ({"report_path": "/tmp/a\x00b"}, {"providers_file": "/tmp/a\x00b"}):
        with pytest.raises(ParameterRefused):
            check_parameters(_settings(**extra), {**UNTRUSTED, REPORT_DIR_ENV: "/tmp"})

"""Each run parameter is declared once, in RunSettings: the flow and the CLI agree with it."""

from __future__ import annotations

import inspect

import pytest
import typer.main
from prefect.utilities.callables import get_call_parameters, parameter_schema
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from catalog_images.cli import app as cli
from catalog_images.settings import RUN_DEFAULTS, RunSettings
from flows.catalog_refresh import catalog_refresh

REQUIRED = {"catalog": "data/sample_catalog.csv", "dest": "s3://bucket/prefix"}
FIELDS = list(RunSettings.model_fields)


def _settings_default(name: str):
    """What RunSettings holds for ``name`` when the parameter is left out."""
    return getattr(RunSettings(**REQUIRED), name)


def _as_settings(name: str, value):
    """What RunSettings holds for ``name`` when given ``value``."""
    return getattr(RunSettings(**{**REQUIRED, name: value}), name)


@pytest.mark.parametrize("name", [n for n in FIELDS if n not in REQUIRED])
def test_flow_default_is_the_settings_default(name):
    parameter = inspect.signature(catalog_refresh.fn).parameters[name]
    assert parameter.default is RUN_DEFAULTS[name]
    assert _as_settings(name, parameter.default) == _settings_default(name)


def test_flow_has_every_parameter_in_order_and_no_other():
    assert list(inspect.signature(catalog_refresh.fn).parameters) == FIELDS


def test_flow_schema_describes_every_parameter_with_its_default():
    properties = parameter_schema(catalog_refresh).model_dump_for_openapi()["properties"]
    for name, field in RunSettings.model_fields.items():
        assert properties[name]["description"] == field.description, name
        if name not in REQUIRED:
            assert properties[name]["default"] == RUN_DEFAULTS[name], name


def test_flow_called_without_options_gets_plain_values():
    values = get_call_parameters(catalog_refresh.fn, (), dict(REQUIRED))
    values = catalog_refresh.validate_parameters(values)
    assert not [n for n, v in values.items() if isinstance(v, FieldInfo)]
    assert RunSettings(**values) == RunSettings(**REQUIRED)


def _cli_options(command: str) -> dict[str, object]:
    """Option name (python identifier) -> default, as click sees the typer command."""
    group = typer.main.get_command(cli.app)
    return {p.name: p.default for p in group.commands[command].params}


def test_every_setting_has_a_run_option_with_the_same_default():
    options = _cli_options("run")
    field_of = {option: cli.RUN_OPTION_FIELDS.get(option, option) for option in options}
    missing = set(FIELDS) - set(field_of.values())
    assert not missing, f"run has no option for {sorted(missing)}"
    for option, field in field_of.items():
        if field not in RunSettings.model_fields:
            assert option in ("progress", "yes")  # the only CLI-only options
        elif field not in REQUIRED:
            assert _as_settings(field, options[option]) == _settings_default(field), option


def test_run_passes_the_settings_defaults_to_the_run(monkeypatch):
    seen = {}

    def fake_execute_run(show_progress=True, yes=False, **params):
        seen.update(params)
        return 0

    monkeypatch.setattr(cli, "execute_run", fake_execute_run)
    monkeypatch.setattr(cli, "apply_defaults", lambda **_: None)
    result = CliRunner().invoke(cli.app, ["run", "--catalog", REQUIRED["catalog"],
                                          "--dest", REQUIRED["dest"]])
    assert result.exit_code == 0, result.output
    assert set(seen) == set(FIELDS)
    assert RunSettings(**seen) == RunSettings(**REQUIRED)


def test_run_options_reach_their_fields(monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "execute_run",
                        lambda show_progress=True, yes=False, **p: seen.update(p) or 0)
    monkeypatch.setattr(cli, "apply_defaults", lambda **_: None)
    args = ["run", "--catalog", "c.csv", "--dest", "s3://b/p", "--fallback-provider", "a",
            "--fallback-provider", "b", "--report", "r.json", "--max-cost", "2.5",
            "--batch-deadline", "60", "--breaker-cooldown", "3", "--force-sku", "X1"]
    assert CliRunner().invoke(cli.app, args).exit_code == 0
    settings = RunSettings(**seen)
    assert (settings.fallback_providers, settings.report_path, settings.max_cost_usd,
            settings.batch_deadline_s, settings.breaker_cooldown_s, settings.force_skus) == (
        ["a", "b"], "r.json", 2.5, 60.0, 3.0, ["X1"])


def test_estimate_shares_the_run_defaults():
    options = _cli_options("estimate")
    for option in ("provider", "concurrency", "prompt_template", "force", "mode"):
        assert options[option] == RUN_DEFAULTS[option], option


def test_the_run_model_is_a_known_model_or_a_clear_error(monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "execute_run",
                        lambda show_progress=True, yes=False, **p: seen.update(p) or 0)
    monkeypatch.setattr(cli, "apply_defaults", lambda **_: None)
    args = ["run", "--catalog", "c.csv", "--dest", "s3://b/p", "--model",
            "gemini-3.1-flash-image"]
    assert CliRunner().invoke(cli.app, args).exit_code == 0
    assert RunSettings(**seen).model == "gemini-3.1-flash-image"
    with pytest.raises(ValueError, match="model: unknown model 'nano-banana-9'; use one of "
                       "gemini-3-pro-image, gemini-3.1-flash-image"):
        RunSettings(**REQUIRED, model="nano-banana-9")


def test_forced_skus_are_read_as_the_catalog_reads_skus_in_nfc():
    settings = RunSettings(**REQUIRED, force_skus=[" cafe\u0301-mug ", "茶杯-01"])
    assert settings.force_skus == ["caf\u00e9-mug", "茶杯-01"]


def test_wrong_shape_is_one_of_three_policies_quarantine_by_default():
    assert RunSettings(**REQUIRED).wrong_shape == "quarantine"
    assert RunSettings(**REQUIRED, wrong_shape="accept").wrong_shape == "accept"
    with pytest.raises(ValueError, match="wrong_shape"):
        RunSettings(**REQUIRED, wrong_shape="ignore")

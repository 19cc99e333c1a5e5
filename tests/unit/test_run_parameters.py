"""Each run parameter is declared once, in RunSettings: the flow's sections and the CLI agree
with it."""

from __future__ import annotations

import inspect

import pytest
import typer.main
from prefect.utilities.callables import get_call_parameters, parameter_schema
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from catalog_images.cli import app as cli
from catalog_images.run_sections import (
    DEFAULT_SECTIONS,
    SECTION_MODELS,
    SECTION_OF,
    SECTIONS,
    TOP_LEVEL,
    Budget,
    flat_parameters,
    grouped_parameters,
    section_description,
)
from catalog_images.settings import RUN_DEFAULTS, RunSettings, SettingsError
from flows.catalog_refresh import catalog_refresh

REQUIRED = {"catalog": "data/sample_catalog.csv", "dest": "s3://bucket/prefix"}
FIELDS = list(RunSettings.model_fields)


def _settings_default(name: str):
    """What RunSettings holds for ``name`` when the parameter is left out."""
    return getattr(RunSettings(**REQUIRED), name)


def _as_settings(name: str, value):
    """What RunSettings holds for ``name`` when given ``value``."""
    return getattr(RunSettings(**{**REQUIRED, name: value}), name)


def test_every_setting_is_in_exactly_one_place_of_the_form():
    places = [*TOP_LEVEL, *(name for spec in SECTIONS.values() for name in spec[3])]
    assert sorted(places) == sorted(FIELDS)  # none missing, none twice
    assert all(SECTION_OF[name] == section for section, model in SECTION_MODELS.items()
               for name in model.model_fields)


def test_flow_takes_catalog_dest_and_the_sections_in_order():
    parameters = inspect.signature(catalog_refresh.fn).parameters
    assert list(parameters) == [*TOP_LEVEL, *SECTIONS]
    for section, model in SECTION_MODELS.items():
        assert parameters[section].default == model()


@pytest.mark.parametrize("name", [n for n in FIELDS if n not in REQUIRED])
def test_section_field_is_the_settings_field(name):
    field = SECTION_MODELS[SECTION_OF[name]].model_fields[name]
    settings_field = RunSettings.model_fields[name]
    assert (field.annotation, field.description, field.metadata) == (
        settings_field.annotation, settings_field.description, settings_field.metadata)
    section_default = getattr(DEFAULT_SECTIONS[SECTION_OF[name]], name)
    assert _as_settings(name, section_default) == _settings_default(name)
    assert RUN_DEFAULTS[name] in (section_default, None)


def test_flow_schema_renders_each_section_as_an_object_with_descriptions_and_defaults():
    schema = parameter_schema(catalog_refresh).model_dump_for_openapi()
    properties, definitions = schema["properties"], schema["definitions"]
    for name in TOP_LEVEL:
        assert properties[name]["description"] == RunSettings.model_fields[name].description
        assert properties[name]["type"] == "string"
    assert schema["required"] == list(TOP_LEVEL)
    for section, model in SECTION_MODELS.items():
        prop = properties[section]
        assert prop["description"] == section_description(section) != ""
        definition = definitions[prop["$ref"].rsplit("/", 1)[-1]]
        assert definition["type"] == "object" and definition["title"] == SECTIONS[section][1]
        assert list(definition["properties"]) == list(model.model_fields)
        for name, field_schema in definition["properties"].items():
            assert field_schema["description"] == RunSettings.model_fields[name].description
            assert field_schema["title"] == name  # the CLI's, YAML's and README's name
            default = RUN_DEFAULTS[name]
            assert field_schema["default"] == ([] if default is None and name.endswith(
                ("_providers", "_skus")) else default), name
            assert prop["default"][name] == field_schema["default"], name
    budget = definitions["Budget"]["properties"]
    assert budget["approval_timeout_s"]["maximum"] == 86_400  # bounds shown too


def test_flow_called_without_options_gets_the_settings_defaults():
    values = get_call_parameters(catalog_refresh.fn, (), dict(REQUIRED))
    assert not [n for n, v in values.items() if isinstance(v, FieldInfo)]
    assert RunSettings(**flat_parameters(values)) == RunSettings(**REQUIRED)


def test_sections_flatten_into_settings_and_back():
    flat = {**REQUIRED, "concurrency": 4, "approve_above_usd": 0.5, "force_skus": ["A"],
            "mode": "batch", "shards": 1, "report_path": "r.json"}
    grouped = grouped_parameters(flat)
    assert grouped == {**REQUIRED, "providers": {"concurrency": 4},
                       "budget": {"approve_above_usd": 0.5}, "output": {
                           "force_skus": ["A"], "report_path": "r.json"},
                       "batch": {"mode": "batch"}, "scale_out": {"shards": 1}}
    assert flat_parameters(grouped) == flat
    assert SECTION_MODELS["providers"](fallback_providers=None).fallback_providers == []
    as_models = {**REQUIRED, "budget": Budget(approve_above_usd=0.5)}
    assert flat_parameters(as_models) == {**REQUIRED, "approve_above_usd": 0.5}
    settings = RunSettings(**flat_parameters(grouped_parameters(
        RunSettings(**flat).model_dump())))
    assert settings == RunSettings(**flat)


def test_a_bad_section_value_is_named_by_its_field():
    with pytest.raises(SettingsError, match="concurrency: Input should be greater than or "
                       "equal to 1"):
        RunSettings(**flat_parameters({**REQUIRED, "providers": {"concurrency": 0}}))
    with pytest.raises(SettingsError, match=r"budget\.concurrency: concurrency belongs in the "
                       "providers section"):
        flat_parameters({**REQUIRED, "budget": {"concurrency": 4}})
    with pytest.raises(SettingsError, match="budget: expected an object"):
        flat_parameters({**REQUIRED, "budget": 5})
    with pytest.raises(SettingsError, match="budget_usd: Extra inputs are not permitted"):
        RunSettings(**flat_parameters({**REQUIRED, "budget": {"budget_usd": 4}}))
    with pytest.raises(SettingsError, match="no such setting colour"):
        grouped_parameters({**REQUIRED, "colour": "red"})


def test_the_flow_docstring_describes_catalog_dest_and_each_section():
    parsed = parameter_schema(catalog_refresh).model_dump_for_openapi()["properties"]
    assert parsed["providers"]["description"].startswith("Which providers and model")
    assert "approval" in parsed["budget"]["description"]


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

"""One emulator command line: ``catalog-images emulator`` and ``python -m
catalog_images.devtools.emulator`` take the same options, with EmulatorConfig's defaults."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

from bench.harness import emulator_get, emulator_process
from catalog_images.cli.app import app
from catalog_images.devtools.emulator import EmulatorConfig
from catalog_images.devtools.emulator.command import (
    MAPPED_OPTIONS,
    OPTION_FIELDS,
    config_of,
    module_app,
    parse_faults,
)

REPO = Path(__file__).resolve().parents[2]


def _options(command) -> dict[str, object]:
    return {p.name: p.default for p in command.params}


def _module_command():
    """The click command ``python -m catalog_images.devtools.emulator`` runs."""
    return typer.main.get_command(module_app)


def test_both_command_lines_have_the_same_options_and_defaults():
    cli = _options(typer.main.get_command(app).commands["emulator"])
    assert cli == _options(_module_command())
    assert {"port", "host", *OPTION_FIELDS, "api_key_env", "second_host"} == set(cli)


def test_option_defaults_are_the_config_defaults():
    cli = _options(typer.main.get_command(app).commands["emulator"])
    defaults = {name: cli[name] for name in OPTION_FIELDS}
    assert config_of(**defaults) == EmulatorConfig()
    fields = {f.name: f.default for f in dataclasses.fields(EmulatorConfig)}
    for option, field in OPTION_FIELDS.items():
        if option not in MAPPED_OPTIONS:
            assert cli[option] == fields[field], option


def test_faults_parse_and_bad_ones_are_refused():
    assert parse_faults(["503=0.1", "429=0.05"]) == {"503": 0.1, "429": 0.05}
    for bad in ("999=0.1", "503", "503=lots"):
        with pytest.raises(typer.BadParameter, match="KIND=RATE"):
            parse_faults([bad])
    with pytest.raises(typer.BadParameter, match="sum to at most 1"):
        config_of(fault=["503=0.6", "429=0.6"])


def test_module_command_line_serves_what_it_was_told():
    with emulator_process("--latency", "0.2", "--rpm", "5", "--window", "2",
                          "--fault", "503=0.1", "--seed", "3") as url:
        config = emulator_get(url, "config")
    assert (config["latency_s"], config["rpm"], config["quota_window_s"], config["faults"],
            config["seed"]) == (0.2, 5, 2.0, {"503": 0.1}, 3)


def test_a_bad_option_exits_2_with_a_message_on_both_command_lines():
    env = {**os.environ, "COLUMNS": "200"}
    for command in ([sys.executable, "-m", "catalog_images.devtools.emulator"],
                    [sys.executable, "-m", "catalog_images.cli", "emulator"]):
        done = subprocess.run([*command, "--fault", "nope=1"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "expected KIND=RATE" in done.stderr


def test_the_emulator_listens_where_the_emulator_preset_calls():
    from urllib.parse import urlsplit

    from catalog_images.devtools.emulator.command import DEFAULT_PORT
    from catalog_images.providers.config import DEFAULT_EMULATOR_URL

    assert urlsplit(DEFAULT_EMULATOR_URL).port == DEFAULT_PORT


def test_image_bytes_and_wrong_shape_options_set_the_config():
    config = config_of(image_bytes=["realistic", "4K=1e6"], wrong_aspect_ratio="4:5",
                       wrong_image_size="1K", fault=["wrong_shape=0.5"])
    assert config.image_bytes == {"1K": 1_500_000, "2K": 6_000_000, "4K": 1_000_000}
    assert (config.wrong_aspect_ratio, config.wrong_image_size) == ("4:5", "1K")
    assert config.faults == {"wrong_shape": 0.5}
    for bad in ("8K=5", "1K", "1K=lots"):
        with pytest.raises(typer.BadParameter, match="realistic or SIZE=BYTES"):
            config_of(image_bytes=[bad])
    with pytest.raises(typer.BadParameter, match="wrong_aspect_ratio"):
        config_of(wrong_aspect_ratio="7:3")

"""The emulator's one command line: ``catalog-images emulator`` and
``python -m catalog_images.devtools.emulator`` both run :func:`serve`.

Option defaults are EmulatorConfig's; the port is the one the ``emulator`` provider preset
calls (a unit test holds the two together: the emulator never imports the client).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Annotated, Any

import typer

from .config import (
    ASPECT_RATIOS,
    FAULT_KINDS,
    IMAGE_FORMATS,
    IMAGE_SIZES,
    REALISTIC_IMAGE_BYTES,
    EmulatorConfig,
)

# Option -> EmulatorConfig field, for the options that set one.
OPTION_FIELDS: dict[str, str] = {
    "latency": "latency_s", "jitter": "latency_jitter_s", "rpm": "rpm", "window": "quota_window_s",
    "fault": "faults", "seed": "seed", "api_key": "api_key", "image_format": "image_format",
    "max_concurrency": "max_concurrency",
    "wrong_aspect_ratio": "wrong_aspect_ratio", "wrong_image_size": "wrong_image_size",
    "image_bytes": "image_bytes",
}
MAPPED_OPTIONS = ("fault", "image_bytes")  # repeatable KEY=VALUE options (default None)
DEFAULT_PORT = 8790  # the port of the emulator provider preset's URL
DEFAULT_HOST = "127.0.0.1"
_CONFIG = {f.name: f.default for f in dataclasses.fields(EmulatorConfig)}


def _default(option: str) -> Any:
    """EmulatorConfig's default of the field ``option`` sets (None for ``--fault``)."""
    default = _CONFIG[OPTION_FIELDS[option]]
    return None if default is dataclasses.MISSING else default


def parse_faults(items: list[str] | None) -> dict[str, float]:
    """``["503=0.1", "429=0.05"]`` -> ``{"503": 0.1, "429": 0.05}``; typer.BadParameter if wrong."""
    faults: dict[str, float] = {}
    for item in items or []:
        kind, _, rate = item.partition("=")
        try:
            if kind not in FAULT_KINDS:
                raise ValueError(kind)
            faults[kind] = float(rate)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r}: expected KIND=RATE, e.g. 503=0.1, with KIND one of "
                f"{' '.join(FAULT_KINDS)}", param_hint="--fault") from None
    return faults


def parse_image_bytes(items: list[str] | None) -> dict[str, int]:
    """``["realistic"]`` or ``["4K=20000000"]`` -> bytes per image size; BadParameter if wrong."""
    sizes: dict[str, int] = {}
    for item in items or []:
        if item == "realistic":
            sizes.update(REALISTIC_IMAGE_BYTES)
            continue
        size, _, count = item.partition("=")
        try:
            if size not in IMAGE_SIZES:
                raise ValueError(size)
            sizes[size] = int(float(count))
        except ValueError:
            raise typer.BadParameter(
                f"{item!r}: expected realistic or SIZE=BYTES, e.g. 4K=20000000, with SIZE one "
                f"of {' '.join(IMAGE_SIZES)}", param_hint="--image-bytes") from None
    return sizes


def serve(
    port: Annotated[int, typer.Option(help="port to listen on")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="address to bind")] = DEFAULT_HOST,
    latency: Annotated[float, typer.Option(help="seconds per image")] = _default("latency"),
    jitter: Annotated[float, typer.Option(
        help="extra random seconds per image, up to this")] = _default("jitter"),
    rpm: Annotated[int | None, typer.Option(
        help="requests accepted per --window seconds (429 beyond); none: no quota")
    ] = _default("rpm"),
    window: Annotated[float, typer.Option(
        help="length of the --rpm window, in seconds")] = _default("window"),
    fault: Annotated[list[str] | None, typer.Option(
        help=f"KIND=RATE, e.g. 503=0.1 (kinds: {' '.join(FAULT_KINDS)}); repeatable")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed for faults")] = _default("seed"),
    api_key: Annotated[str | None, typer.Option(
        help="require this key (prefer --api-key-env: command lines are visible)")
    ] = _default("api_key"),
    api_key_env: Annotated[str | None, typer.Option(
        help="require the key held in this environment variable")] = None,
    image_format: Annotated[str, typer.Option(
        help=f"type of the images answered: {', '.join(IMAGE_FORMATS)}")
    ] = _default("image_format"),
    second_host: Annotated[bool, typer.Option(
        help="also serve result files from a second host (a free port) that records the "
        "headers it gets: GET /_emulator/foreign")] = False,
    max_concurrency: Annotated[int | None, typer.Option(
        help="the model's capacity: requests beyond this many in service get a 503")
    ] = _default("max_concurrency"),
    wrong_aspect_ratio: Annotated[str | None, typer.Option(
        help="aspect ratio of wrong_shape fault images (default 16:9, or 1:1 if 16:9 was "
        f"asked): {' '.join(ASPECT_RATIOS)}")] = _default("wrong_aspect_ratio"),
    wrong_image_size: Annotated[str | None, typer.Option(
        help="image size of wrong_shape fault images (default: the asked one)")
    ] = _default("wrong_image_size"),
    image_bytes: Annotated[list[str] | None, typer.Option(
        help="PNG answers of realistic size and entropy: 'realistic' (1.5, 6, 20 MB for 1K, "
        "2K, 4K) or SIZE=BYTES; repeatable (default: small images)")] = None,
) -> None:
    """Serve the built-in provider emulator (Gemini, OpenAI-images, async-task) until Ctrl-C."""
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise typer.BadParameter(f"{api_key_env}: that variable is not set",
                                     param_hint="--api-key-env")
    from .server import run_server  # aiohttp and numpy: only when serving

    run_server(config_of(latency=latency, jitter=jitter, rpm=rpm, window=window, fault=fault,
                         seed=seed, api_key=api_key, image_format=image_format,
                         max_concurrency=max_concurrency,
                         wrong_aspect_ratio=wrong_aspect_ratio,
                         wrong_image_size=wrong_image_size, image_bytes=image_bytes),
               host, port, second_host)


def config_of(**options: Any) -> EmulatorConfig:
    """The EmulatorConfig the given option values describe (options from OPTION_FIELDS)."""
    values = {**options, "fault": parse_faults(options.get("fault"))}
    if "image_bytes" in options:
        values["image_bytes"] = parse_image_bytes(options["image_bytes"])
    try:
        return EmulatorConfig(**{OPTION_FIELDS[name]: value for name, value in values.items()})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# ``python -m catalog_images.devtools.emulator``: serve as the only command.
module_app = typer.Typer(add_completion=False)
module_app.command()(serve)


def main(argv: list[str] | None = None) -> None:
    """``python -m catalog_images.devtools.emulator [OPTIONS]``: ``catalog-images emulator``."""
    module_app(args=argv, prog_name="python -m catalog_images.devtools.emulator")

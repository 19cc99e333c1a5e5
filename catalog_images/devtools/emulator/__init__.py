"""Loopback HTTP emulator of image-generation providers.

Wire formats: Gemini native ``generateContent``, Gemini Batch Mode with the Files API subset
it needs, OpenAI-compatible ``/v1/images/generations`` and Kie-style async tasks; all share one
``EmulatorCore`` (auth, quota, faults, images, billing ledger, stats).

Used for dry runs, load tests and CI::

    with Emulator(EmulatorConfig(rpm=30, faults={"503": 0.05})).start() as emu:
        client.post(f"{emu.base_url}/v1beta/models/gemini-3-pro-image:generateContent")
"""

from importlib import import_module
from typing import Any

# Loaded on first use (PEP 562): the CLI registers the `emulator` command from this package
# without paying for the server's imports (aiohttp, numpy) on every other command.
_WHERE = {"ASPECT_RATIOS": ".config", "FAULT_KINDS": ".config", "IMAGE_SIZES": ".config",
          "EmulatorConfig": ".config", "EmulatorCore": ".core", "prompt_key": ".ledger",
          "image_dimensions": ".png", "Emulator": ".server", "run_server": ".server"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name], __name__), name)


__all__ = [
    "ASPECT_RATIOS",
    "FAULT_KINDS",
    "IMAGE_SIZES",
    "Emulator",
    "EmulatorConfig",
    "EmulatorCore",
    "image_dimensions",
    "prompt_key",
    "run_server",
]

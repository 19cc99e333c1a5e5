"""Loopback HTTP emulator of image-generation providers.

Wire formats: Gemini native ``generateContent``, Gemini Batch Mode with the Files API subset
it needs, OpenAI-compatible ``/v1/images/generations`` and Kie-style async tasks; all share one
``EmulatorCore`` (auth, quota, faults, images, billing ledger, stats).

Used for dry runs, load tests and CI::

    with Emulator(EmulatorConfig(rpm=30, faults={"503": 0.05})).start() as emu:
        client.post(f"{emu.base_url}/v1beta/models/gemini-3-pro-image:generateContent")
"""

from .config import ASPECT_RATIOS, FAULT_KINDS, IMAGE_SIZES, EmulatorConfig
from .core import EmulatorCore
from .ledger import prompt_key
from .png import image_dimensions
from .server import Emulator, run_server

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

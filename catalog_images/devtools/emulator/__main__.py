"""``python -m catalog_images.devtools.emulator --port 8000 [--rpm N] [--fault 503=0.05] ...``."""

from __future__ import annotations

import argparse

from .config import FAULT_KINDS, IMAGE_FORMATS, EmulatorConfig
from .server import run_server


def _fault(text: str) -> tuple[str, float]:
    kind, _, prob = text.partition("=")
    if kind not in FAULT_KINDS or not prob:
        raise argparse.ArgumentTypeError(f"expected KIND=P with KIND in {', '.join(FAULT_KINDS)}")
    return kind, float(prob)


def main(argv: list[str] | None = None) -> None:
    """Parse options and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m catalog_images.devtools.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per image")
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--rpm", type=int, default=None)
    parser.add_argument("--window", type=float, default=60.0, help="quota window, seconds")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--fault", type=_fault, action="append", default=[], metavar="KIND=P")
    parser.add_argument("--image-format", choices=IMAGE_FORMATS, default="png",
                        help="type of the images answered")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        latency_s=args.latency,
        latency_jitter_s=args.jitter,
        rpm=args.rpm,
        quota_window_s=args.window,
        api_key=args.api_key,
        seed=args.seed,
        faults=dict(args.fault),
        image_format=args.image_format,
    )
    run_server(config, args.host, args.port)


if __name__ == "__main__":
    main()

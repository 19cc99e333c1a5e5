"""``python -m catalog_images.devtools.emulator [--port N] [--rpm N] [--fault 503=0.05] ...``.

The same command as ``catalog-images emulator`` (see ``command.py``).
"""

from __future__ import annotations

from .command import main

if __name__ == "__main__":
    main()

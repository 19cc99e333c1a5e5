"""``python -m catalog_images.cli``: the same command as ``catalog-images``."""

from catalog_images.cli.app import main

main()

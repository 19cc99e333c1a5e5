"""``python -m catalog_images.cli``: the same command as ``catalog-images``."""

from catalog_images.cli.app import app

app(prog_name="catalog-images")

"""Package data: upstream's `themes_config.json` (a package so wheels always carry it)."""

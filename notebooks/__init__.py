"""Report notebooks, shipped inside the wheel as ``evilent_nb.notebooks``."""

"""infersight."""

"""The PySide6 desktop UI; depends on playground, never the reverse."""

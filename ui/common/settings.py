"""Window and view state kept between launches (QSettings, an ini file in the data dir so tests and several data
dirs stay apart): geometry, docks, splitters, the theme, "Show probabilities"."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from playground import paths

FILE = "window.ini"


def app_settings() -> QSettings:
    return QSettings(str(paths.data_dir() / FILE), QSettings.Format.IniFormat)


def read_bool(key: str, default: bool = False) -> bool:
    value = app_settings().value(key, default)
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")


def write(key: str, value: object) -> None:
    settings = app_settings()
    settings.setValue(key, value)
    settings.sync()

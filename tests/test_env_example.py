""".env.example documents every setting, and only real ones."""

import re
from typing import Any

from app.core.config import ServerSettings, Settings
from app.identity.settings import IdentitySettings
from tests.support import PROJECT_ROOT

# Read by the process environment, not by the settings classes.
OUTSIDE_SETTINGS = {"SECRETS_DIR", "EMBEDDED_POSTGRES_PORT", "DEV_OIDC_PORT"}
SETTINGS_CLASSES = (Settings, ServerSettings, IdentitySettings)


def documented_variables() -> set[str]:
    text = (PROJECT_ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_every_setting_is_documented_and_every_documented_name_is_a_setting():
    settings = {name.upper() for cls in SETTINGS_CLASSES for name in cls.model_fields}

    assert documented_variables() == settings | OUTSIDE_SETTINGS


def active_values() -> dict[str, str]:
    text = (PROJECT_ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE))


def test_every_value_it_sets_is_the_default(monkeypatch):
    values = active_values()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    required: dict[str, Any] = {  # keyword arguments of three classes: any one field's type
        "database_url": "postgresql://app@db.internal/groundwork",
        "oidc_issuer": "https://login.example.com",
        "oidc_audience": "groundwork",
    }

    for cls in SETTINGS_CLASSES:
        fields = cls.model_fields
        read = cls(_env_file=None, **{k: v for k, v in required.items() if k in fields})  # type: ignore[call-arg]
        for name in fields.keys() & {variable.lower() for variable in values}:
            assert getattr(read, name) == fields[name].default, name.upper()

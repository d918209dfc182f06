""".env.example documents every setting, and only real ones."""

import re

from app.core.config import ServerSettings, Settings
from tests.support import PROJECT_ROOT

# Read by the process environment, not by the settings classes.
OUTSIDE_SETTINGS = {"SECRETS_DIR", "EMBEDDED_POSTGRES_PORT"}


def documented_variables() -> set[str]:
    text = (PROJECT_ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_every_setting_is_documented_and_every_documented_name_is_a_setting():
    settings = {name.upper() for name in (*Settings.model_fields, *ServerSettings.model_fields)}

    assert documented_variables() == settings | OUTSIDE_SETTINGS

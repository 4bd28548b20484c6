"""CASTPROXY_HOST, _PORT, _PUBLIC_URL, _SECRET_KEY and _ALLOWED_ORIGINS (comma-separated) win over `server`.

Read from the mapping `load_config` was given, not from os.environ; an empty variable counts as unset.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from castproxy.config.model import HttpUrlText

__all__ = ["ENV_PREFIX", "ServerOverrides", "variable_for"]

ENV_PREFIX = "CASTPROXY_"


class ServerOverrides(BaseModel):
    """The server fields that may come from CASTPROXY_* variables (None: not set)."""

    model_config = ConfigDict(frozen=True)

    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    public_url: HttpUrlText | None = None
    secret_key: SecretStr | None = None
    allowed_origins: list[str] | None = None

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)  # a JSON list is taken as it is, `null` as unset
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServerOverrides:
        """Read the overrides from `environ` (names in any case); raises ValidationError (locations are field names)."""
        prefix = ENV_PREFIX.lower()
        found = {variable.lower().removeprefix(prefix): value for variable, value in environ.items()
                 if variable.lower().startswith(prefix) and value}
        return cls.model_validate({name: value for name, value in found.items() if name in cls.model_fields})

    def values(self) -> dict[str, Any]:
        """The fields that were set, as values for the config's `server` mapping."""
        return {name: value for name, value in self if value is not None}


def variable_for(field: str) -> str:
    return ENV_PREFIX + field.upper()

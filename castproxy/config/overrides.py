"""Environment overrides for the `server` section (containers set these instead of editing the file).

CASTPROXY_HOST, CASTPROXY_PORT, CASTPROXY_PUBLIC_URL, CASTPROXY_SECRET_KEY and
CASTPROXY_ALLOWED_ORIGINS (comma-separated) win over the file. An empty variable counts as unset.
pydantic-settings reads them from the mapping `load_config` was given, not only from os.environ,
so tests and `serve` reloads see exactly the environment they pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from castproxy.config.model import HttpUrlText

ENV_PREFIX = "CASTPROXY_"


class ServerOverrides(BaseSettings):
    """The server fields that may come from CASTPROXY_* variables (None: not set)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True)

    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    public_url: HttpUrlText | None = None
    secret_key: SecretStr | None = None
    allowed_origins: Annotated[list[str], NoDecode] | None = None

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values arrive through `from_environ`; no .env files, no secrets dir, no implicit os.environ.
        return (init_settings,)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServerOverrides:
        """Read the overrides from `environ`; raises ValidationError (locations are field names)."""
        return cls(**_MappingEnvSource(cls, environ)())

    def values(self) -> dict[str, Any]:
        """The fields that were set, as values for the config's `server` mapping."""
        return {name: value for name, value in self if value is not None}


def variable_for(field: str) -> str:
    return ENV_PREFIX + field.upper()


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' env source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


__all__ = ["ENV_PREFIX", "ServerOverrides", "ValidationError", "variable_for"]

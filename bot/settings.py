"""Configuration: every environment variable in one place.

Rules of this module:
- Settings come from the environment and an optional `.env` file.
- A missing or malformed setting stops start-up with one clear line naming it.
- Secrets (the token, the webhook secret) never appear in logs or reprs.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILES = "https://api.telegram.org/file/bot"
MIN_SECRET_LENGTH = 32


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


class Settings(BaseSettings):
    """The bot's configuration."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    bot_api_base_url: str = TELEGRAM_API
    bot_api_file_url: str = TELEGRAM_FILES
    data_dir: Path = Path("data")
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    deadline: dt.date | None = None
    log_level: str = "INFO"
    survey_file: Path | None = None
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    reminder_days: Annotated[tuple[int, ...], NoDecode] = (30, 14, 7, 3, 1, 0)
    reminder_hour: int = Field(default=9, ge=0, le=23)
    timezone: str = "UTC"
    accept_late_submissions: bool = True
    reminders_enabled: bool = True
    reminder_check_seconds: int = Field(default=600, ge=1)
    # The Portuguese a bare Telegram language code "pt" (or pt-AO, pt-MZ …) gets; pt-br is always Brazil.
    portuguese_default: Literal["pt_PT", "pt_BR"] = "pt_PT"
    # Operations: monitoring endpoints when polling, scheduled backups.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_listen: str = "0.0.0.0"
    backup_dir: Path | None = None
    backup_every_hours: float = Field(default=24.0, gt=0)
    backup_keep: int = Field(default=7, ge=1)
    invitation_days: int = Field(default=60, ge=1, le=3650)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not all(p.lstrip("-").isdigit() for p in parts):
                raise ValueError("must be comma-separated numeric Telegram user ids")
            return frozenset(int(p) for p in parts)
        return value

    @field_validator("reminder_days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not all(p.isdigit() for p in parts):
                raise ValueError("must be comma-separated whole numbers of days, e.g. 30,14,7,3,1,0")
            return tuple(sorted({int(p) for p in parts}, reverse=True))
        return value

    @field_validator("portuguese_default", mode="before")
    @classmethod
    def _variant(cls, value: object) -> object:
        if isinstance(value, str) and len(parts := value.strip().replace("-", "_").split("_")) == 2:
            return f"{parts[0].lower()}_{parts[1].upper()}"  # pt-br, PT_BR … → pt_BR
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("bot_api_base_url", "bot_api_file_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        # Telegram delivers webhooks only to public HTTPS addresses.
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be a public https:// URL")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # Anyone who can guess the secret can post updates as any contact: demand a long one.
        if value is not None and info.data.get("webhook_url") and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters when WEBHOOK_URL is set")
        return value

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        head, sep, tail = value.get_secret_value().partition(":")
        if not (sep and head.isdigit() and tail):
            raise ValueError("does not look like a Telegram bot token (digits:letters)")
        return value

    @property
    def regional_defaults(self) -> dict[str, str]:
        """The variant each bare language code stands for (see conversation.i18n.pick_language)."""
        return {"pt": self.portuguese_default}

    @property
    def database_path(self) -> Path:
        """The SQLite file."""
        return self.data_dir / "gnlc.sqlite3"

    @property
    def files_dir(self) -> Path:
        """Where uploaded files are stored, by content hash."""
        return self.data_dir / "files"


# The environment variables the settings are read from (one per field, in upper case).
ENVIRONMENT_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        raise SettingsError(f"{name}: {err['msg']}") from None

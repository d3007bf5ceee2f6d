"""Settings from the environment or a `.env` file (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent
SHARED_DIR = PROJECT_DIR.parent / "shared"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(default=f"sqlite:///{PROJECT_DIR / 'data' / 'motcua.db'}")
    telegram_bot_token: str | None = None
    telegram_bot_username: str | None = None  # for deep links and QR codes (t.me/<username>?start=...)
    telegram_api_base_url: str | None = None  # another Bot API server, e.g. http://127.0.0.1:8081/bot
    zalo_bot_token: str | None = None
    zalo_api_base_url: str | None = None
    # Webhook mode (behind a reverse proxy): the public URL, the secret the platform sends back, where to listen.
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443

    office_name: str = "Bộ phận Một cửa"
    office_address: str | None = None
    office_phone: str | None = None
    office_hours: str | None = None
    office_level: str = "Cấp xã"
    timezone: str = "Asia/Ho_Chi_Minh"  # times shown to staff and citizens

    # The national procedure catalogue, for `bot.py bench --scale` (import it with `bot.py kb import`).
    national_catalogue: Path | None = SHARED_DIR / "data" / "dvcqg" / "procedures_all_ministries.jsonl.gz"
    record_questions: bool = True  # keep unanswered questions for staff (off for evaluation and benchmarks)
    reload_seconds: float = 1.0  # how often a running bot checks whether the knowledge base changed

    log_level: str = "WARNING"

    @property
    def has_channel_token(self) -> bool:
        return bool(self.telegram_bot_token or self.zalo_bot_token)


@lru_cache
def get_settings() -> Settings:
    return Settings()

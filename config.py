"""Settings from the environment or a `.env` file (pydantic-settings)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent
# Reference data beside a developer's clone (the national catalogue, evaluation sets); optional: nothing the bot
# or its tests need lives there. MOTCUA_SHARED_DIR points elsewhere (CI points it at nothing to prove the point).
SHARED_DIR = Path(os.environ.get("MOTCUA_SHARED_DIR") or PROJECT_DIR.parent / "shared")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(default=f"sqlite:///{PROJECT_DIR / 'data' / 'motcua.db'}")
    telegram_bot_token: str | None = None
    telegram_bot_username: str | None = None  # for deep links and QR codes (t.me/<username>?start=...)
    telegram_api_base_url: str | None = None  # another Bot API server, e.g. http://127.0.0.1:8081/bot
    # Messages per second across all chats for the bot's token: replies, announcements and reminders together
    # (channels.limits; replies first). Telegram allows about 30; a little under leaves room for the jitter of
    # requests in flight, which would otherwise turn a burst into 429s. 0 lifts it (a test server).
    telegram_messages_per_second: float = 27.0
    # Messages of one chat waiting for an answer (Telegram and Zalo); more are dropped and the chat is told once,
    # so one chat sending a burst cannot hold up everyone else.
    chat_max_pending: int = Field(default=5, ge=1)
    zalo_bot_token: str | None = None
    zalo_api_base_url: str | None = None
    # Zalo Official Account (channels/zalo_oa.py): the app (developers.zalo.me) and its OA. The access/refresh
    # tokens here seed the database; the bot refreshes them and keeps the newest pair there (encrypted).
    zalo_oa_app_id: str | None = None
    zalo_oa_app_secret: str | None = None  # the app's secret key: OAuth v4 token refresh
    zalo_oa_secret_key: str | None = None  # the OA secret key of the webhook settings: X-ZEvent-Signature
    zalo_oa_id: str | None = None  # for the OA's link and QR code, https://zalo.me/<id>
    zalo_oa_access_token: str | None = None
    zalo_oa_refresh_token: str | None = None
    zalo_oa_api_base_url: str | None = None  # default https://openapi.zalo.me
    zalo_oa_oauth_base_url: str | None = None  # default https://oauth.zaloapp.com
    zalo_oa_zns_base_url: str | None = None  # template messages; default https://business.openapi.zalo.me
    zalo_oa_webhook_path: str = "/zalo_oa"
    zalo_oa_webhook_port: int | None = Field(default=None, ge=0, le=65535)  # default WEBHOOK_PORT + 2
    zalo_oa_webhook_max_age_seconds: float = Field(default=300.0, gt=0)  # older signed events are refused
    # The OA may message a citizen freely only this long after the citizen's last message, this many times.
    zalo_oa_window_hours: float = Field(default=48.0, gt=0)
    zalo_oa_window_messages: int = Field(default=8, ge=1)
    # Approved template (ZNS) ids per reminder kind, for reminders outside the window; unset: none sent.
    zalo_oa_template_received: str | None = None
    zalo_oa_template_needs_documents: str | None = None
    zalo_oa_template_result_ready: str | None = None
    zalo_oa_template_appointment: str | None = None
    zalo_oa_template_late: str | None = None
    zalo_oa_template_rejected: str | None = None
    # Webhook mode (behind a reverse proxy): the public URL, the secret the platform sends back, where to listen.
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    # Operation (operations.py): how long start-up waits for the database before giving up (exit 1); repeated
    # identical warnings/errors are logged once per this many seconds with a count (0: every one); /healthz for a
    # bot that polls (a webhook server serves it on its own port): off unless HEALTH_PORT is set.
    database_wait_seconds: float = Field(default=60.0, ge=0)
    log_repeat_seconds: float = Field(default=60.0, ge=0)
    health_listen: str = "127.0.0.1"
    health_port: int | None = Field(default=None, ge=0, le=65535)

    office_name: str = "Bộ phận Một cửa"
    office_address: str | None = None
    office_phone: str | None = None
    office_hours: str | None = None
    office_level: str = "Cấp xã"
    timezone: str = "Asia/Ho_Chi_Minh"  # times shown to staff and citizens

    # The national procedure catalogue, for `bot.py bench --scale` (import it with `bot.py kb import`); when the
    # file is absent the scale benchmark uses synthetic entries instead.
    national_catalogue: Path | None = SHARED_DIR / "data" / "dvcqg" / "procedures_all_ministries.jsonl.gz"
    record_questions: bool = True  # keep unanswered questions for staff (off for evaluation and benchmarks)
    reload_seconds: float = 1.0  # how often a running bot checks whether the knowledge base changed
    # What the bot remembers of a chat (the subject of follow-ups, choices offered, a staff draft) is kept in the
    # database this long after the chat's last use of it, across restarts; then it starts afresh.
    chat_state_hours: float = Field(default=24.0, gt=0)
    # Processes answering questions beside the channels' own (channels.workers). Unset: 1 on a server with
    # two cores or more (replies stay quick under a burst), else 0 (answer in the channels' process, least memory).
    core_workers: int | None = Field(default=None, ge=0, le=16)

    # Subscriptions and broadcasts
    office_areas: str = ""  # communes/wards the office serves, comma-separated: subscribers may narrow to one
    broadcast_messages_per_second: float | None = None  # overall pace; default the platform's (Telegram: 30)
    broadcast_max_attempts: int = 5  # tries per recipient on network errors and 5xx before it counts as failed
    broadcast_lease_seconds: float = 30.0  # a sending process silent this long is taken over by another
    broadcast_poll_seconds: float = 2.0  # how often a running bot looks for announcements created elsewhere

    # Dossier tracking and reminders
    quiet_hours_start: str = "21:00"  # office time: reminders falling due from then on wait until quiet_hours_end
    quiet_hours_end: str = "07:00"
    appointment_reminder_time: str = "08:00"  # "your appointment is tomorrow" goes out at this time the day before
    uncollected_days: int = 5  # remind once when a ready result has not been collected after this many days
    reminder_scan_seconds: float = 15.0  # how often a running bot looks for due reminders
    reminder_lease_seconds: float = 300.0  # a claimed reminder not marked sent by then is taken up again
    dossier_push_api_key: str | None = None  # set it to accept status updates over HTTP (X-API-Key header)
    dossier_push_listen: str = "127.0.0.1"
    dossier_push_port: int = 8450
    dossier_status_url: str | None = None  # a JSON status feed of the one-stop software, polled
    dossier_poll_seconds: float = 300.0
    dossier_status_fields: dict[str, str] = Field(default_factory=dict)  # our field name -> the feed's, e.g. {"code": "MaHoSo"}
    # Lookups by code (and answers with the 4 digits) per chat and for everyone, in a sliding window kept in the
    # database, so every bot process and a restart count the same; then wrong digits lock a chat out for a while.
    dossier_lookups_per_chat: int = Field(default=10, ge=1)
    dossier_lookups_overall: int = Field(default=300, ge=1)
    dossier_lookup_window_seconds: float = Field(default=600.0, gt=0)
    dossier_max_wrong_digits: int = Field(default=5, ge=1)
    dossier_lockout_seconds: float = Field(default=1800.0, gt=0)
    # For an office whose export has no phone/ID column: anyone with the code sees the status alone (no procedure,
    # dates, notes or refusal reason) of a dossier without stored digits, and may follow it at that level.
    dossier_status_without_verification: bool = False

    # --- web console ---
    # `bot.py web` (and `bot.py run` when WEB_IN_RUN is set) serves the staff console on WEB_LISTEN:WEB_PORT;
    # WEB_PUBLIC_URL is the address staff open (behind a reverse proxy: its https URL), used in sign-in links.
    web_listen: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    web_public_url: str | None = None
    web_in_run: bool = False
    web_session_hours: float = Field(default=12.0, gt=0)
    web_link_minutes: float = Field(default=10.0, gt=0, le=60)

    @property
    def web_url(self) -> str:
        """Where staff open the console (sign-in links point here)."""
        return (self.web_public_url or f"http://{self.web_listen}:{self.web_port}").rstrip("/")


    # --- question log ---
    # Questions are logged (no chat ids) for the overview; a daily job deletes those older than this many days
    # (0 keeps them all). Follows RECORD_QUESTIONS: off, nothing is logged.
    question_log_days: int = Field(default=365, ge=0)

    # --- hand-off ---
    # A citizen may ask for an officer (handlers/handoff.py). When officers answer, in office time: day groups
    # T2..T7, CN with time ranges, groups separated by ";" (e.g. "T2-T6 07:30-11:30,13:30-17:00; T7 07:30-11:30");
    # days the office is closed: dd/mm/yyyy, comma-separated. OFFICE_HOURS stays the text shown by /lienhe.
    handoff_hours: str = "T2-T6 07:30-11:30,13:30-17:00"
    handoff_holidays: str = ""
    handoff_idle_minutes: float = Field(default=30.0, gt=0)  # an answered chat quiet this long is ended (citizen told)
    handoff_telegram_group_id: str | None = None  # a Telegram staff group the bot posts hand-offs to (its chat id)
    handoff_poll_seconds: float = Field(default=1.0, gt=0)  # how often the bot looks for officers' replies to deliver

    log_level: str = "WARNING"

    @property
    def answering_workers(self) -> int:
        """CORE_WORKERS, or the default for this machine."""
        if self.core_workers is not None:
            return self.core_workers
        return 1 if (os.cpu_count() or 1) >= 2 else 0

    @property
    def has_channel_token(self) -> bool:
        return bool(self.telegram_bot_token or self.zalo_bot_token or self.zalo_oa_access_token)


@lru_cache
def get_settings() -> Settings:
    return Settings()

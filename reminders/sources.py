"""Statuses arriving from the office's one-stop software over HTTP: pushed to us, or polled from a JSON URL.

Both read records with the same field names (ours by default, e.g. {"code": ..., "status": ...}; the
feed's own names through the DOSSIER_STATUS_FIELDS setting, e.g. {"code": "MaHoSo"}) and go through
`store.apply_updates`, so a change is noticed once however it arrives. A push is all or nothing (the
sender is told every problem and can fix it); a poll keeps the good records and logs the bad ones,
because nobody is there to read an answer. Timeouts and junk store nothing. Dates outside a plausible
window (importer.check_plausible: from 2000 to 5 years ahead) are a bad record. The filer's `phone` and
`id_number` (full, or just their last 4 digits) are cut to the last 4 digits on arrival; a record without
them leaves what is stored as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from reminders.codes import EXAMPLE, last_four, normalize_code
from reminders.importer import check_plausible, parse_date
from reminders.statuses import known_statuses, parse_status
from reminders.store import ApplyResult, DossierUpdate, apply_updates

log = logging.getLogger(__name__)

FIELDS = ("code", "status", "procedure", "received_at", "due_at", "new_due_at", "note", "delivery", "changed_at",
          "phone", "id_number")
SECOND_FACTOR = {"phone": "phone_last4", "id_number": "id_last4"}  # the feed's full number -> the 4 digits we keep
LIST_KEYS = ("dossiers", "items", "data", "records", "results")
API_KEY_HEADER = "X-API-Key"
PUSH_PATH = "/dossiers/status"
MAX_BODY = 5 * 1024 * 1024
MAX_RECORDS = 20_000
POLL_TIMEOUT = 15.0


class RecordError(ValueError):
    pass


def parse_when(value: object, zone: ZoneInfo) -> datetime:
    """ISO 8601 (a time without zone is office time) or dd/mm/yyyy [hh:mm]."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
            return moment if moment.tzinfo else moment.replace(tzinfo=zone)
        except ValueError:
            pass
        return parse_date(value, zone)
    raise ValueError(f"\"{value}\" không phải ngày (ISO 8601 hoặc dd/mm/yyyy).")


def parse_record(record: object, fields: dict[str, str], zone: ZoneInfo, known: Callable[[str], bool] | None = None,
                 now: datetime | None = None) -> DossierUpdate:
    """One record as an update; raises RecordError naming every problem."""
    if not isinstance(record, dict):
        raise RecordError("bản ghi không phải đối tượng JSON.")
    name = {ours: fields.get(ours, ours) for ours in FIELDS}
    problems: list[str] = []
    raw_code = record.get(name["code"])
    code = normalize_code(raw_code) if isinstance(raw_code, str) else None
    if code is None:
        problems.append(f"{name['code']}: thiếu hoặc sai dạng mã hồ sơ (vd {EXAMPLE})." if raw_code in (None, "")
                        else f"{name['code']}: \"{str(raw_code)[:60]}\" không đúng dạng mã hồ sơ (vd {EXAMPLE}).")
    raw_status = record.get(name["status"])
    status = parse_status(raw_status)
    if status is None:
        problems.append(f"{name['status']}: \"{str(raw_status)[:60]}\" không rõ nghĩa (dùng một trong: {known_statuses()}).")
    values: dict[str, object] = {}
    given: set[str] = set()
    for ours in ("procedure", "note", "delivery"):
        if name[ours] in record:
            value = record[name[ours]]
            if value is not None and not isinstance(value, str):
                problems.append(f"{name[ours]}: phải là chuỗi.")
                continue
            values[ours] = value
            given.add(ours)
    for ours in ("received_at", "due_at", "new_due_at", "changed_at"):
        value = record.get(name[ours])
        if value in (None, ""):
            if name[ours] in record and ours != "changed_at":
                values[ours] = None
                given.add(ours)
            continue
        try:
            values[ours] = check_plausible(parse_when(value, zone), now)
            given.add(ours)
        except ValueError as error:
            problems.append(f"{name[ours]}: {error}")
    for ours, kept in SECOND_FACTOR.items():
        value = record.get(name[ours])
        if value in (None, ""):
            continue  # not sent: what is stored stays
        try:
            values[kept] = last_four(value)  # the reason never repeats the number: it is personal data
            given.add(kept)
        except ValueError as error:
            problems.append(f"{name[ours]}: {error}")
    if code is not None and not values.get("procedure") and known is not None and not known(code):
        problems.append(f"{name['procedure']}: hồ sơ mới cần tên thủ tục.")
    if problems:
        raise RecordError(" ".join(problems))
    given.discard("changed_at")
    return DossierUpdate(code=code, status=status, given=frozenset(given), **values)


def records_in(body: object) -> list:
    """The records of a JSON body: a list, an object holding one under a usual key, or one record."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in LIST_KEYS:
            if isinstance(body.get(key), list):
                return body[key]
        return [body]
    raise RecordError("nội dung JSON phải là một bản ghi hoặc danh sách bản ghi.")


def _known_codes(db: sessionmaker[Session], codes: list[str]) -> set[str]:
    from sqlalchemy import select

    from reminders.models import DossierRow

    found: set[str] = set()
    with db() as session:
        for start in range(0, len(codes), 500):
            found.update(session.scalars(select(DossierRow.code).where(DossierRow.code.in_(codes[start:start + 500]))))
    return found


def _parse_all(records: list, settings: Settings, db: sessionmaker[Session],
               now: datetime | None = None) -> tuple[list[DossierUpdate], list[dict]]:
    zone = ZoneInfo(settings.timezone)
    now = now or datetime.now(UTC)
    fields = settings.dossier_status_fields
    code_field = fields.get("code", "code")
    codes = [normalize_code(r.get(code_field)) for r in records if isinstance(r, dict) and isinstance(r.get(code_field), str)]
    known = _known_codes(db, [c for c in codes if c])
    updates: list[DossierUpdate] = []
    problems: list[dict] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        try:
            update = parse_record(record, fields, zone, known.__contains__, now)
        except RecordError as error:
            problems.append({"index": index, "reason": str(error)})
            continue
        if update.code in seen:
            problems.append({"index": index, "reason": f"mã {update.code} trùng với bản ghi {seen[update.code]}."})
            continue
        seen[update.code] = index
        updates.append(update)
    return updates, problems


def _apply(db: sessionmaker[Session], updates: list[DossierUpdate], source: str, now: datetime | None) -> ApplyResult:
    with db() as session:
        result = apply_updates(session, updates, source, now)
        session.commit()
        return result


# --------------------------------------------------------------------------- push

class PushServer:
    """POST /dossiers/status with the header X-API-Key: one record or a list; all or nothing."""

    def __init__(self, settings: Settings, db: sessionmaker[Session], on_change: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.on_change = on_change
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(PUSH_PATH, self.receive)
        return app

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host or self.settings.dossier_push_listen,
                           self.settings.dossier_push_port if port is None else port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 asked for any free one
        log.warning("dossier status push endpoint on %s:%s%s", host or self.settings.dossier_push_listen, self.port, PUSH_PATH)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def receive(self, request: web.Request) -> web.Response:
        from channels.webhooks import BadPayload, parse_json, secret_matches

        expected = self.settings.dossier_push_api_key or ""
        given = request.headers.get(API_KEY_HEADER)
        if not expected or not secret_matches(given, expected):  # any bytes in the header: a wrong key, not a 500
            log.warning("dossier push refused from %s: %s API key", request.remote, "no" if not given else "wrong")
            return web.json_response({"ok": False, "error": f"thiếu hoặc sai khóa API (header {API_KEY_HEADER})."}, status=401)
        try:
            # Records are flat: the depth limit only refuses forged nesting (deep JSON was a 500).
            records = records_in(parse_json(await request.read(), max_depth=8))
        except web.HTTPRequestEntityTooLarge:
            raise
        except (BadPayload, RecordError) as error:
            log.warning("dossier push from %s refused: %s", request.remote, error)
            reason = str(error) if isinstance(error, RecordError) else "nội dung không phải JSON hợp lệ."
            return web.json_response({"ok": False, "error": reason}, status=400)
        if not records:
            return web.json_response({"ok": False, "error": "không có bản ghi nào."}, status=400)
        if len(records) > MAX_RECORDS:
            return web.json_response({"ok": False, "error": f"quá nhiều bản ghi (tối đa {MAX_RECORDS})."}, status=413)
        updates, problems = await asyncio.to_thread(_parse_all, records, self.settings, self.db)
        if problems:
            return web.json_response({"ok": False, "error": "có bản ghi sai, không ghi gì.", "problems": problems}, status=400)
        result = await asyncio.to_thread(_apply, self.db, updates, "push", None)
        if result.changed and self.on_change:
            self.on_change()
        return web.json_response({"ok": True, "created": result.created, "changed": result.changed, "updated": result.updated})


# --------------------------------------------------------------------------- poll

@dataclass
class PollResult:
    ok: bool
    records: int = 0
    applied: ApplyResult | None = None
    skipped: list[dict] = field(default_factory=list)
    error: str | None = None

    def __str__(self) -> str:
        if not self.ok:
            return f"không đọc được ({self.error}); không ghi gì."
        return f"{self.records} bản ghi; {self.applied.describe() if self.applied else 'không có gì mới'}; bỏ qua {len(self.skipped)} bản ghi sai."


async def poll_once(settings: Settings, db: sessionmaker[Session], now: datetime | None = None,
                    client: httpx.AsyncClient | None = None) -> PollResult:
    """Read the status URL once and apply its good records."""
    url = settings.dossier_status_url
    if not url:
        return PollResult(False, error="chưa đặt DOSSIER_STATUS_URL")
    own = client is None
    client = client or httpx.AsyncClient(timeout=POLL_TIMEOUT, follow_redirects=True)
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_BODY * 4:
            raise RecordError("nội dung quá lớn")
        records = records_in(response.json())
    except httpx.TimeoutException:
        log.warning("dossier status URL timed out: %s", url)
        return PollResult(False, error="hết thời gian chờ")
    except httpx.HTTPStatusError as error:
        log.warning("dossier status URL answered %s", error.response.status_code)
        return PollResult(False, error=f"HTTP {error.response.status_code}")
    except httpx.HTTPError as error:
        log.warning("dossier status URL unreachable: %s", error)
        return PollResult(False, error=f"không kết nối được: {type(error).__name__}")
    except (ValueError, RecordError) as error:
        log.warning("dossier status URL returned junk: %s", error)
        return PollResult(False, error="nội dung không phải JSON bản ghi hồ sơ")
    finally:
        if own:
            await client.aclose()
    records = records[:MAX_RECORDS]
    updates, skipped = await asyncio.to_thread(_parse_all, records, settings, db, now)
    for problem in skipped[:20]:
        log.warning("dossier status record %s skipped: %s", problem["index"], problem["reason"])
    applied = await asyncio.to_thread(_apply, db, updates, "poll", now) if updates else None
    return PollResult(True, len(records), applied, skipped)

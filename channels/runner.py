"""Running the chat channels (Telegram, Zalo, or both) in one process and one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from urllib.parse import urlparse

from background import BackgroundService
from channels.base import Core
from config import Settings
from handlers.core import Router
from redaction import redact

log = logging.getLogger(__name__)
CHANNELS = ("telegram", "zalo", "zalo_oa")


class ChannelError(Exception):
    """A channel that cannot start (no token, rejected token, bad webhook settings)."""


async def run_channels(router: Router, settings: Settings, channels: list[str], webhook: bool = False,
                       services: Sequence[BackgroundService] = ()) -> None:
    """Serve every named channel, and run the background services, until Ctrl+C or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    started: list = []
    try:
        if webhook:
            from channels.webhooks import check_secret

            check_secret(settings.webhook_secret)  # refused in one line before any worker process starts
        core: Core = router
        if settings.answering_workers:
            core, stop_workers = await _start_workers(router, settings)
            started.append(stop_workers)
        if "telegram" in channels:
            started.append(await _start_telegram(core, settings, webhook))
        if "zalo" in channels:
            started.append(await _start_zalo(core, settings, webhook))
        if "zalo_oa" in channels:
            from channels.zalo_oa import start_zalo_oa

            started.append(await start_zalo_oa(core, settings))  # the OA has no polling: always its webhook
        if not webhook and settings.health_port is not None:
            from operations import HealthServer

            started.append((await HealthServer(router.context.db, settings.health_listen, settings.health_port).start()).stop)
        if services:
            started.append(await _start_services(settings, channels, services, router.context.db))
        log.warning("serving %s (%s); Ctrl+C to stop", ", ".join(channels), "webhook" if webhook else "long polling")
        await stop.wait()
    finally:
        for stopper in reversed(started):
            with contextlib.suppress(Exception):
                await stopper()


async def _start_workers(router: Router, settings: Settings):
    """The worker processes (CORE_WORKERS), held here for as long as the channels run: the core in front of
    them for the channels, and how to stop them."""
    from channels.workers import CoreWorkers, WorkerCore

    workers = await CoreWorkers(settings, settings.answering_workers).start()

    async def stop_workers() -> None:
        await asyncio.to_thread(workers.shutdown)

    return WorkerCore(router, workers), stop_workers


async def _start_services(settings: Settings, channels: list[str], services: Sequence[BackgroundService], db=None):
    """One scheduler for all background work; unprompted messages go out on the running channels only."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from channels.outbound import close_all, senders_from_settings

    senders = {name: sender for name, sender in senders_from_settings(settings).items() if name in channels}
    if "zalo_oa" in channels and db is not None:
        from channels.zalo_oa import ZaloOASender

        senders["zalo_oa"] = ZaloOASender(settings, db)
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    running: list[BackgroundService] = []
    for service in services:
        await service.start(scheduler, senders)
        running.append(service)
    scheduler.start()

    async def stop_services() -> None:
        scheduler.shutdown(wait=False)
        for service in reversed(running):
            try:
                await service.stop()
            except Exception:  # noqa: BLE001 - stopping must go on for the others
                log.exception("stopping %s failed", service.name)
        await close_all(senders)

    return stop_services


async def _start_telegram(core: Core, settings: Settings, webhook: bool):
    from channels import telegram

    if not settings.telegram_bot_token:
        raise ChannelError("Chưa đặt TELEGRAM_BOT_TOKEN (lấy từ @BotFather).")
    app = telegram.build_application(core, settings, webhook=webhook)
    hook = None
    if webhook:
        if not settings.webhook_url or not settings.webhook_secret:
            raise ChannelError("Chế độ webhook cần WEBHOOK_URL (địa chỉ công khai) và WEBHOOK_SECRET.")
        public = settings.webhook_url.rstrip("/") + "/telegram"
        # The proxy passes the public path through unchanged, so the local server listens on the same path.
        hook = telegram.Webhook(settings.webhook_listen, settings.webhook_port, urlparse(public).path,
                                public, settings.webhook_secret)
    try:
        await telegram.start(app, hook)
    except Exception as error:  # noqa: BLE001 - PTB raises InvalidToken, NetworkError...
        # PTB's InvalidToken quotes the token, and network errors the URL holding it.
        raise ChannelError(redact(f"Không khởi động được Telegram: {error}")) from None
    return lambda: telegram.stop(app)


async def _start_zalo(core: Core, settings: Settings, webhook: bool):
    from channels.zalo import ZaloApiError, ZaloChannel

    if not settings.zalo_bot_token:
        raise ChannelError("Chưa đặt ZALO_BOT_TOKEN (tạo bot tại bot.zapps.me).")
    channel = ZaloChannel(core, settings, base_url=settings.zalo_api_base_url)
    try:
        if webhook:
            if not settings.webhook_url or not settings.webhook_secret:
                raise ChannelError("Chế độ webhook cần WEBHOOK_URL (địa chỉ công khai) và WEBHOOK_SECRET.")
            await channel.start_webhook(settings.webhook_url.rstrip("/") + "/zalo", settings.webhook_secret,
                                        listen=settings.webhook_listen, port=settings.webhook_port + 1)
        else:
            await channel.start()
    except ZaloApiError as error:
        await channel.stop()
        raise ChannelError(redact(f"Không khởi động được Zalo: {error}")) from None
    return channel.stop

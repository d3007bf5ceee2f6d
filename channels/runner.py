"""Running the chat channels (Telegram, Zalo, or both) in one process and one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from urllib.parse import urlparse

from background import BackgroundService
from config import Settings
from handlers.core import Router
from redaction import redact

log = logging.getLogger(__name__)
CHANNELS = ("telegram", "zalo")


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
        if settings.answering_workers and router.workers is None:
            started.append(await _start_workers(router, settings))
        if "telegram" in channels:
            started.append(await _start_telegram(router, settings, webhook))
        if "zalo" in channels:
            started.append(await _start_zalo(router, settings, webhook))
        if services:
            started.append(await _start_services(settings, channels, services))
        log.warning("serving %s (%s); Ctrl+C to stop", ", ".join(channels), "webhook" if webhook else "long polling")
        await stop.wait()
    finally:
        for stopper in reversed(started):
            with contextlib.suppress(Exception):
                await stopper()


async def _start_workers(router: Router, settings: Settings):
    from channels.workers import CoreWorkers

    router.workers = await CoreWorkers(settings, settings.answering_workers).start()

    async def stop_workers() -> None:
        workers, router.workers = router.workers, None
        await asyncio.to_thread(workers.shutdown)

    return stop_workers


async def _start_services(settings: Settings, channels: list[str], services: Sequence[BackgroundService]):
    """One scheduler for all background work; unprompted messages go out on the running channels only."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from channels.outbound import close_all, senders_from_settings

    senders = {name: sender for name, sender in senders_from_settings(settings).items() if name in channels}
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


async def _start_telegram(router: Router, settings: Settings, webhook: bool):
    from channels import telegram

    if not settings.telegram_bot_token:
        raise ChannelError("Chưa đặt TELEGRAM_BOT_TOKEN (lấy từ @BotFather).")
    app = telegram.build_application(router, settings, webhook=webhook)
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


async def _start_zalo(router: Router, settings: Settings, webhook: bool):
    from channels.zalo import ZaloApiError, ZaloChannel

    if not settings.zalo_bot_token:
        raise ChannelError("Chưa đặt ZALO_BOT_TOKEN (tạo bot tại bot.zapps.me).")
    channel = ZaloChannel(router, settings, base_url=settings.zalo_api_base_url)
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

"""Long lists of choices in pages: at most PAGE_SIZE items a message, with "◀ Trước" / "Sau ▶".

Telegram refuses a message with too many buttons (the national catalogue has ~140 groups), and a long
numbered list is unreadable on a phone. Every page is a numbered reply: its items are numbered 1..N and
the page buttons follow them in the same order, so on a platform without buttons the citizen types the
number shown beside "Sau ▶" to turn the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from handlers.messages import Button, Reply

PAGE_SIZE = 10
MAX_ACTIONS = 2  # buttons under a page besides the arrows ("Mọi chủ đề", "✅ Xong", "↩ Các nhóm")
MAX_BUTTONS = PAGE_SIZE + 2 + MAX_ACTIONS  # the most any reply of the bot carries
PREVIOUS, NEXT = "◀ Trước", "Sau ▶"
LABEL_CHARS = 60


def page_count(total: int) -> int:
    """How many pages `total` items take; a list that fits in a page and its two arrows is shown whole."""
    return 1 if total <= PAGE_SIZE + 2 else -(-total // PAGE_SIZE)


def page_of(index: int, total: int) -> int:
    """The page (from 0) showing the item at `index` of `total`."""
    return 0 if page_count(total) == 1 else max(0, index) // PAGE_SIZE


def paged(head: str, items: Sequence[tuple[str, str]], page: int, turn: Callable[[int], str],
          actions: Sequence[tuple[str, str]] = (), tail: str = "") -> Reply:
    """One page of `items` (label, button data) as a numbered reply; `turn(p)` is the data showing page p.

    A page out of range (the list shrank since the button was sent) shows the nearest one.
    """
    if len(actions) > MAX_ACTIONS:
        raise ValueError(f"at most {MAX_ACTIONS} actions under a page")
    pages = page_count(len(items))
    page = min(max(page, 0), pages - 1)
    shown = items if pages == 1 else items[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    arrows = ([(PREVIOUS, turn(page - 1))] if page > 0 else []) + ([(NEXT, turn(page + 1))] if page < pages - 1 else [])
    where = f" – trang {page + 1}/{pages}" if pages > 1 else ""
    lines = [f"{head}{where} (bấm nút hoặc gõ số thứ tự):"]
    options = [*shown, *arrows, *actions]
    lines += [f"{number}. {label}" for number, (label, _) in enumerate(options, 1)]
    if tail:
        lines.append(tail)
    buttons = [[Button(label[:LABEL_CHARS], data)] for label, data in shown]
    if arrows:
        buttons.append([Button(label, data) for label, data in arrows])
    if actions:
        buttons.append([Button(label[:LABEL_CHARS], data) for label, data in actions])
    return Reply("\n".join(lines), buttons, numbered=True)

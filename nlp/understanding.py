"""Understanding one message in the context of its chat: which entry, which aspect, how sure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from nlp.aspects import Aspect, detect_aspects, strip_aspect_phrases
from nlp.matcher import KnowledgeIndex, Match
from nlp.normalize import fold, normalize

# The bot answers or offers choices only for an entry the question NAMES: it contains most of one of the
# entry's names, or is very close to one of its example phrasings. A look-alike procedure the knowledge
# base lacks ("xin visa", "mã số thuế") does neither, and gets "I don't know" instead of a wrong answer.
NAMED_ALIAS = 0.4
NAMED_PHRASE = 0.75
# A situation described without the procedure's name ("quán ăn muốn nghỉ bán 6 tháng") still counts when
# one entry is far ahead of all others and the question touches its names at least a little.
DOMINANT_SCORE = 0.6
DOMINANT_GAP = 0.35
DOMINANT_ALIAS = 0.2
# Describing a situation takes words: a short question that does not name its procedure ("mã số thuế cá
# nhân tra ở đâu") is about something else, however far ahead one entry is (units as MIN_CONTENT below).
DOMINANT_CONTENT = 1.15
ANSWER_SCORE = 0.40  # a named best entry at least this sure ...
ANSWER_MARGIN = 0.015  # ... and this far ahead of the next one is the answer; otherwise choices
CLARIFY_SCORE = 0.30  # below this nothing is close enough to offer: say we don't know
# Content weights are measured in units of the rarest word's weight, so that the thresholds mean the
# same with 53 entries as with the whole national catalogue (inverse frequencies grow with its size).
MIN_CONTENT = 0.25  # a question whose specific words weigh less than this names no procedure
FOLLOW_UP_CONTENT = 0.64  # after an answer, a question naming less than this is about the same entry ...
NEW_SUBJECT_ALIAS = 0.8  # ... unless it contains one of another entry's names this fully


class Outcome(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    UNKNOWN = "unknown"
    SMALL_TALK = "small_talk"
    EMPTY = "empty"


class SmallTalk(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    ACK = "ack"
    WHO = "who"


_SMALL_TALK = [
    (SmallTalk.THANKS, re.compile(r"\b(cam on|cam ta|thank|thanks|tks|thx)\b")),
    (SmallTalk.GOODBYE, re.compile(r"\b(tam biet|bye|goodbye|hen gap lai)\b")),
    (SmallTalk.WHO, re.compile(r"\b(ban|em|bot) la (ai|gi|nguoi|may|robot)\b|\bai (tao|lam) ra\b|nguoi that")),
    (SmallTalk.GREETING, re.compile(r"^(xin )?chao\b|\b(hello|hi|alo|helo|hey)\b|^(chao )?buoi (sang|chieu|toi)\b|^chao (sang|chieu|toi)\b")),
    (SmallTalk.ACK, re.compile(r"^(ok|oke|okay|vang|da vang|uh|um|u|dung roi|hieu roi|ro roi|duoc roi|tot qua|hay qua)\b(\s+\S+){0,4}$")),
]
_FOLLOW_UP = re.compile(r"^(the|vay|the con|vay con|con|con nua|them|ma)\b|\b(thi sao|the nao nua)\b")


@dataclass(frozen=True)
class Understanding:
    """What the bot made of a message: the outcome, the entry and aspects, and the runners-up."""

    outcome: Outcome
    entry_id: str | None = None
    aspects: tuple[Aspect, ...] = ()
    candidates: tuple[Match, ...] = ()
    follow_up: bool = False
    small_talk: SmallTalk | None = None
    normalized: str = ""
    corrections: dict[str, str] = field(default_factory=dict)

    @property
    def candidate_ids(self) -> list[str]:
        return [m.entry_id for m in self.candidates]


def understand(text: str, index: KnowledgeIndex, last_entry_id: str | None = None) -> Understanding:
    """Read one message: never raises, whatever the text."""
    normalized = normalize(text or "")
    folded = fold(normalized)
    if not folded.strip() or not any(ch.isalnum() for ch in folded):
        return Understanding(Outcome.EMPTY, normalized=normalized)

    aspects = tuple(detect_aspects(folded))
    without_aspects = strip_aspect_phrases(folded)
    query = index.analyse(normalized, muted=without_aspects)
    matches = tuple(_collapse_equivalents(index, index.search(query, limit=8))[:5])
    best = matches[0] if matches else None
    second = matches[1].score if len(matches) > 1 else 0.0
    content = query.content_weight / index.unknown_idf
    gap = best.score - second if best is not None else 0.0
    named = best is not None and (best.alias_hit >= NAMED_ALIAS or best.phrase >= NAMED_PHRASE or (
        best.score >= DOMINANT_SCORE and gap >= DOMINANT_GAP and best.alias_hit >= DOMINANT_ALIAS
        and content >= DOMINANT_CONTENT))
    names_something = named and content >= MIN_CONTENT and best.score >= CLARIFY_SCORE
    confident = named and best.score >= ANSWER_SCORE and best.score - second >= ANSWER_MARGIN

    talk = _small_talk(folded)
    if talk is not None and (talk == SmallTalk.ACK or not confident or content < FOLLOW_UP_CONTENT):
        return Understanding(Outcome.SMALL_TALK, small_talk=talk, normalized=normalized, candidates=matches)

    if last_entry_id is not None and last_entry_id in index.entries:
        asks_more = bool(aspects) or bool(_FOLLOW_UP.search(folded))
        rest = index.content_weight(without_aspects) / index.unknown_idf
        # A question that plainly names another procedure changes the subject, however short it is.
        names_another = confident and best.entry_id != last_entry_id and best.alias_hit >= NEW_SUBJECT_ALIAS
        if asks_more and rest < FOLLOW_UP_CONTENT and not names_another:
            return Understanding(
                Outcome.ANSWER, last_entry_id, aspects or (Aspect.OVERVIEW,), matches, follow_up=True,
                normalized=normalized, corrections=query.corrections,
            )

    if confident:
        return Understanding(Outcome.ANSWER, best.entry_id, aspects or (Aspect.OVERVIEW,), matches,
                             normalized=normalized, corrections=query.corrections)
    if names_something:
        return Understanding(Outcome.CLARIFY, None, aspects, matches[:3], normalized=normalized, corrections=query.corrections)
    return Understanding(Outcome.UNKNOWN, None, aspects, matches, normalized=normalized, corrections=query.corrections)


def _small_talk(folded: str) -> SmallTalk | None:
    for kind, pattern in _SMALL_TALK:
        if pattern.search(folded):
            return kind
    return None


def _collapse_equivalents(index: KnowledgeIndex, matches: list[Match]) -> list[Match]:
    seen: set[str] = set()
    out: list[Match] = []
    for m in matches:
        canonical = index.canonical(m.entry_id)
        if canonical in seen:
            continue
        seen.add(canonical)
        out.append(m if canonical == m.entry_id else Match(canonical, m.score, m.cover, m.phrase, m.alias_hit))
    return out

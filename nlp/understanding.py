"""Where a question is understood: which entry, which aspect, what kind of question, how sure.

Reading a message takes four steps, each its own module:
1. normalise it (`nlp.normalize`: teencode, typos, no-diacritics folding);
2. find candidates with two different retrievers, fused (`nlp.retrieval`: the matcher over names and
   example phrasings, BM25 over names and the procedures' own texts);
3. classify what kind of question it is (`nlp.kinds`: a procedure, a law or policy, a dossier's
   status) and which aspects it asks (`nlp.aspects`);
4. decide (`nlp.decision`): a fitted model gives the probability that the best candidate is right;
   above its answer threshold the bot answers, above its choices threshold it offers the best three,
   below it says it does not know; a law or policy question gets an honest "I explain procedures, not
   the law" with the plainly related procedure as a choice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from nlp.aspects import Aspect, detect_aspects, forget_scores, strip_aspect_phrases
from nlp.decision import NAMED, DecisionModel, decision_model
from nlp.kinds import QuestionKind, decide, kind_scores
from nlp.matcher import KnowledgeIndex
from nlp.normalize import fold, normalize, words
from nlp.retrieval import Candidate, Retrieval, retrieve

# Follow-ups are read by rule, not by the model: after an answer, a question that adds less than this
# (in units of the rarest word's weight, so the same with 53 entries as with the whole catalogue) is
# about the same entry ...
FOLLOW_UP_CONTENT = 0.64
# ... unless it contains one of another entry's names this fully.
NEW_SUBJECT_ALIAS = 0.8
# A question whose specific words weigh less than this names no procedure ("lệ phí bao nhiêu?").
MIN_CONTENT = 0.25
# A question whose every word several entries' names contain equally ("sổ đỏ", "căn cước") does not say
# which of them it means: the family is offered as choices. "Every word": the entries cover this share
# of the question's weight, and none of them is the question's own phrasing.
FAMILY_COVER = 0.97
FAMILY_PHRASE = 0.95
FAMILY_MAX_WORDS = 4
FAMILY_CONTENT = 0.1  # ... and says something specific ("thủ tục", "giấy tờ" name no family)


class Outcome(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    UNKNOWN = "unknown"
    LAW = "law"  # about a rule, right, penalty or policy: the bot explains procedures, not the law
    STATUS = "status"  # about a filed dossier's progress
    ASK_SUBJECT = "ask_subject"  # an aspect asked with no procedure named and none talked about
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
class Reading:
    """Everything read from one question before deciding: the decision model's input."""

    normalized: str
    folded: str
    aspects: tuple[Aspect, ...]
    retrieval: Retrieval
    kinds: dict[QuestionKind, float]
    content: float  # the weight of the question's specific words, in units of the rarest word's weight
    features: dict[str, float]
    # For each of the first CHOICE_DEPTH candidates: what of the question its texts never mention
    # (share, heaviest); see KnowledgeIndex.unexplained.
    unexplained: tuple[tuple[float, float], ...] = ()

    @property
    def candidates(self) -> list[Candidate]:
        return self.retrieval.candidates

    @property
    def kind(self) -> QuestionKind:
        return decide(self.kinds)


@dataclass(frozen=True)
class Understanding:
    """What the bot made of a message: the outcome, the entry and aspects, and the runners-up."""

    outcome: Outcome
    entry_id: str | None = None
    aspects: tuple[Aspect, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    follow_up: bool = False
    small_talk: SmallTalk | None = None
    normalized: str = ""
    corrections: dict[str, str] = field(default_factory=dict)
    confidence: float = 0.0  # the decision model's probability that the best candidate is right
    considered: tuple[Candidate, ...] = ()  # every candidate weighed, best first, shown or not

    @property
    def considered_ids(self) -> list[str]:
        return [c.entry_id for c in self.considered]

    @property
    def candidate_ids(self) -> list[str]:
        return [c.entry_id for c in self.candidates]


def forget_earlier_questions() -> None:
    """Drop what reading earlier questions left in caches (the aspect model's scores), so that a benchmark
    times every question from scratch, as a new question is read. (A question is not tokenized by
    underthesea: its long words are looked up among the index's, `KnowledgeIndex.analyse`.)"""
    forget_scores()


def read_question(text: str, index: KnowledgeIndex,
                  kinds_of: Callable[[str], dict[QuestionKind, float]] = kind_scores) -> Reading | None:
    """Steps 1-3 for one message; None when it has no words at all. `kinds_of`: the kind classifier
    (fitting the decision model passes one that never saw the question)."""
    normalized = normalize(text or "")
    folded = fold(normalized)
    if not folded.strip() or not any(ch.isalnum() for ch in folded):
        return None
    aspects = tuple(detect_aspects(folded))
    retrieval = retrieve(index, normalized, muted=strip_aspect_phrases(folded))
    kinds = kinds_of(normalized)
    content = retrieval.query.content_weight / index.unknown_idf
    unexplained = tuple(index.unexplained(retrieval.query, [c.entry_id for c in retrieval.candidates[:CHOICE_DEPTH]]))
    known_content = max(retrieval.query.content_weight - retrieval.query.unknown_weight, 0.0) / index.unknown_idf
    siblings = index.siblings.get(retrieval.candidates[0].entry_id, frozenset()) if retrieval.candidates else frozenset()
    features = decision_features(retrieval, kinds, content, len(words(normalized)), len(index.entries),
                                 unexplained[0] if unexplained else (1.0, 0.0), known_content, siblings)
    return Reading(normalized, folded, aspects, retrieval, kinds, content, features, unexplained)


def decision_features(retrieval: Retrieval, kinds: dict[QuestionKind, float], content: float, n_words: int,
                      n_entries: int, unexplained: tuple[float, float], known_content: float,
                      siblings: frozenset[str] = frozenset()) -> dict[str, float]:
    """What the decision model reads about the best candidate and the question (the same at fitting);
    `unexplained`: what of the question the best entry's whole text never mentions (share, heaviest);
    `known_content`: the content of the words some entry's names know ("ốm đau" against the starter
    entries says nothing of which entry is meant, and must not make "chế độ" look like a name); `siblings`:
    the best candidate's siblings (`KnowledgeIndex.siblings`: the same procedure filed another way), which
    are not its rivals."""
    ranked = [c for c in retrieval.candidates if c.entry_id not in siblings]
    best = ranked[0] if ranked else None
    rest = ranked[1:]
    query = retrieval.query
    total = sum(query.weights.values()) or 1.0
    if best is None:
        top = {"score": 0.0, "cover": 0.0, "phrase": 0.0, "alias": 0.0, "lexical": 0.0, "lexical_first": 0.0,
               "matcher_first": 0.0, "score_gap": 0.0, "lexical_gap": 0.0, "fused_gap": 0.0, "rivals": 0.0,
               "phrase_gap": 0.0, "alias_gap": 0.0, "name_share": 0.0, "name_share_gap": 0.0, "wording_share": 0.0,
               "wording_share_gap": 0.0}
    else:
        def lead(field: str) -> float:
            """How far the best candidate is ahead of its strongest rival on one score."""
            return getattr(best, field) - max((getattr(c, field) for c in rest), default=0.0)

        top = {
            "score": best.score, "cover": best.cover, "phrase": best.phrase, "alias": best.alias_hit,
            "lexical": best.lexical, "lexical_first": float(best.lexical_rank == 0),
            "matcher_first": float(best.matcher_rank == 0),
            "score_gap": lead("score"), "lexical_gap": lead("lexical"),
            "fused_gap": best.fused - (rest[0].fused if rest else 0.0),
            "rivals": float(sum(1 for c in rest if c.cover >= FAMILY_COVER * best.cover)),
            # How much more closely the question words the best entry's names than any rival's.
            "phrase_gap": lead("phrase"), "alias_gap": lead("alias_hit"),
            "name_share": best.name_share, "name_share_gap": lead("name_share"),
            "wording_share": best.wording_share, "wording_share_gap": lead("wording_share"),
        }
    values = {
        **top,
        **_named(ranked, known_content),
        "content": math.log1p(content),
        "unknown_share": query.unknown_weight / total,
        "words": math.log1p(n_words),
        "corrections": float(len(query.corrections)),
        "law": kinds.get(QuestionKind.LAW, 0.0),
        "status": kinds.get(QuestionKind.STATUS, 0.0),
        "other": kinds.get(QuestionKind.OTHER, 0.0),
        "entries": math.log(max(n_entries, 1)),
        "unexplained": unexplained[0],
        "unexplained_max": unexplained[1],
    }
    # Rounded: a gap that is 0 by arithmetic comes out 0 or -1e-16 and a cosine of a phrasing with itself 1
    # or 0.9999999999999999, and a fitted tree must not split on the last bit of a float.
    return {name: round(value, FEATURE_DIGITS) for name, value in values.items()}


FEATURE_DIGITS = 9


# The earlier hand-set rule, kept as two of the model's inputs because it reads names well: the question
# NAMES the matcher's best entry when it contains most of one of its names, or is very close to one of its
# phrasings, or that entry is far ahead of all others and touched by the question's words.
_NAMED_ALIAS, _NAMED_PHRASE = 0.4, 0.75
_DOMINANT = (0.6, 0.35, 0.2, 1.15)  # score, gap, alias, content
_SURE = (0.40, 0.015)  # score, gap


def _named(ranked: list[Candidate], content: float) -> dict[str, float]:
    """Whether the earlier rule finds the best candidate named, and would have answered with it. Its own
    names are read even when BM25 put it first: "mất hộ chiếu phổ thông" names the lost-passport report
    whether or not the matcher ranked "cấp hộ chiếu phổ thông" above it."""
    if not ranked or ranked[0].matcher_rank is None:
        return {"named": 0.0, "rule_answer": 0.0}
    best = ranked[0]
    by_matcher = sorted((c for c in ranked if c.matcher_rank is not None), key=lambda c: c.matcher_rank)
    runner_up = next((c.score for c in by_matcher if c is not best), 0.0)
    gap = best.score - runner_up
    score, big_gap, alias, words_ = _DOMINANT
    named = best.alias_hit >= _NAMED_ALIAS or best.phrase >= _NAMED_PHRASE or (
        best.score >= score and gap >= big_gap and best.alias_hit >= alias and content >= words_)
    # ... but not when the matcher's own choice names itself more fully ("làm hộ chiếu online" contains
    # all of "làm hộ chiếu" and only half of "báo mất hộ chiếu").
    named = named and best.alias_hit >= by_matcher[0].alias_hit
    sure = named and best.score >= _SURE[0] and gap >= _SURE[1]
    return {"named": float(named), "rule_answer": float(sure)}


def understand(text: str, index: KnowledgeIndex, last_entry_id: str | None = None,
               model: DecisionModel | None = None) -> Understanding:
    """Read one message and decide; never raises, whatever the text."""
    reading = read_question(text, index)
    if reading is None:
        return Understanding(Outcome.EMPTY, normalized=normalize(text or ""))
    model = model or decision_model()
    ranked = tuple(ordered_choices(reading, model)[:5])
    best = ranked[0] if ranked else None
    p = model.probability(reading.features) if best is not None else 0.0
    confident = best is not None and model.answers(reading.features, p)
    corrections = reading.retrieval.query.corrections
    aspects = reading.aspects

    def made(outcome: Outcome, entry_id: str | None = None, shown: tuple[Candidate, ...] = ranked, **extra) -> Understanding:
        return Understanding(outcome, entry_id, extra.pop("aspects", aspects), shown, normalized=reading.normalized,
                             corrections=corrections, confidence=p, considered=ranked, **extra)

    talk = _small_talk(reading.folded)
    if talk is not None and (talk == SmallTalk.ACK or not confident or reading.content < FOLLOW_UP_CONTENT):
        return made(Outcome.SMALL_TALK, small_talk=talk)

    asks_more = bool(aspects) or bool(_FOLLOW_UP.search(reading.folded))
    rest = index.content_weight(reading.retrieval.query.muted_syllables) / index.unknown_idf
    if last_entry_id is not None and last_entry_id in index.entries:
        # A question that plainly names another procedure changes the subject, however short it is.
        names_another = (confident and best.entry_id != last_entry_id and best.alias_hit >= NEW_SUBJECT_ALIAS
                         and _names_beyond_aspects(reading, index, best.entry_id))
        if asks_more and rest < FOLLOW_UP_CONTENT and not names_another:
            return made(Outcome.ANSWER, last_entry_id, follow_up=True, aspects=aspects or (Aspect.OVERVIEW,))
    elif asks_more and reading.content < MIN_CONTENT:
        return made(Outcome.ASK_SUBJECT, shown=())

    kind = reading.kind
    # Where one's own dossier has got to is answered by following it (/theodoi), unless the question names
    # what it asks about: "tra cứu hồ sơ trên cổng dịch vụ công" is the look-up topic, however it is put.
    if kind == QuestionKind.STATUS and not (confident and reading.features[NAMED] > 0):
        return made(Outcome.STATUS, shown=())
    family = _family(reading, index) or _sharing_a_name(reading, index)
    if len(family) > 1:
        return made(Outcome.CLARIFY, shown=family[:3])
    # "Có được / có phải ... không" about a procedure the model is sure of reads like law, yet asks who may
    # or must go through that procedure: its conditions, which its entry answers.
    if confident and (kind != QuestionKind.LAW or aspects[:1] == (Aspect.CONDITIONS,)):
        return made(Outcome.ANSWER, best.entry_id, aspects=aspects or (Aspect.OVERVIEW,))
    if kind == QuestionKind.LAW:
        # The procedure plainly related to a law question is offered, never answered as if asked.
        return made(Outcome.LAW, shown=ranked[:1] if model.offers_choices(reading.features, p) else ())
    if model.offers_choices(reading.features, p):
        return made(Outcome.CLARIFY, shown=ranked[:3])
    return made(Outcome.UNKNOWN)


def _names_beyond_aspects(reading: Reading, index: KnowledgeIndex, entry_id: str) -> bool:
    """Whether the question still names the entry once its aspect phrases are taken out: "gửi về nhà qua
    bưu điện được không" after a passport question asks how the passport comes back, not about the post
    office topic, whose names are the aspect's own words."""
    muted = strip_aspect_phrases(reading.folded)
    found = retrieve(index, muted, muted=None).candidates if muted.strip() else []
    return any(c.entry_id == entry_id and c.alias_hit >= NEW_SUBJECT_ALIAS for c in found[:1])


# How far down the fused list runners-up are read when ordering the choices (as at fitting).
CHOICE_DEPTH = 8


def choice_features(reading: Reading) -> list[dict[str, float]]:
    """What the choice order reads about each of the first CHOICE_DEPTH candidates (the same at fitting)."""
    ranked = reading.candidates[:CHOICE_DEPTH]
    if not ranked:
        return []
    missing = [share for share, _ in reading.unexplained]
    best_fused, least_missing = ranked[0].fused, min(missing)
    return [{"fused_behind": c.fused - best_fused, "unexplained_beyond": m - least_missing, "unexplained": m,
             "place": 1.0 / (n + 1), "alias": c.alias_hit, "phrase": c.phrase}
            for n, (c, m) in enumerate(zip(ranked, missing))]


def ordered_choices(reading: Reading, model: DecisionModel) -> list[Candidate]:
    """The candidates with the best first, as the decision read it, and the runners-up in the fitted order."""
    ranked = reading.candidates
    if model.choice_order is None or len(ranked) < 3:
        return list(ranked)
    scores = [model.choice_order.score(values) for values in choice_features(reading)]
    runners_up = sorted(range(1, len(scores)), key=lambda n: -scores[n])  # stable: ties keep the fused order
    return [ranked[0], *(ranked[n] for n in runners_up), *ranked[len(scores):]]


def _family(reading: Reading, index: KnowledgeIndex) -> tuple[Candidate, ...]:
    """The entries a short question names equally, when it names several and is none's own phrasing (the
    first's siblings, one procedure filed in other ways, are not others)."""
    ranked = reading.candidates
    if len(ranked) < 2 or len(words(reading.normalized)) > FAMILY_MAX_WORDS or reading.content < FAMILY_CONTENT:
        return ()
    if any(c.phrase >= FAMILY_PHRASE for c in ranked[:5]):
        return ()
    siblings = index.siblings.get(ranked[0].entry_id, frozenset())
    return tuple(c for c in ranked[:5] if c.cover >= FAMILY_COVER and c.entry_id not in siblings)


def _sharing_a_name(reading: Reading, index: KnowledgeIndex) -> tuple[Candidate, ...]:
    """The candidates that carry a name the question uses, when the first two both carry it and the first
    names itself no better: "thời hạn đăng ký cư trú" could be temporary or permanent registration."""
    ranked = reading.candidates
    shared = index.shared_names.get(ranked[0].entry_id) if ranked else None
    if not shared or len(ranked) < 2 or ranked[0].alias_hit > ranked[1].alias_hit:
        return ()
    asked = [fold(w) for w in words(reading.normalized)]
    for name, owners in shared:
        if ranked[1].entry_id in owners and _contains(asked, name):
            return tuple(c for c in ranked[:5] if c.entry_id in owners)
    return ()


def _contains(asked: list[str], name: tuple[str, ...]) -> bool:
    n = len(name)
    return any(tuple(asked[i:i + n]) == name for i in range(len(asked) - n + 1))


def _small_talk(folded: str) -> SmallTalk | None:
    for kind, pattern in _SMALL_TALK:
        if pattern.search(folded):
            return kind
    return None

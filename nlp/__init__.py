"""Understanding citizens' questions: text in, understanding out. No database, no chat platform."""

from nlp.matcher import EntryText, KnowledgeIndex
from nlp.understanding import Outcome, Understanding, understand


def prepare() -> None:
    """Fit the text classifiers and read the decision model now, so the first citizen does not wait for it."""
    from nlp import aspects, kinds
    from nlp.decision import decision_model

    aspects.prepare()
    kinds.model()
    decision_model()


__all__ = ["EntryText", "KnowledgeIndex", "Outcome", "Understanding", "prepare", "understand"]

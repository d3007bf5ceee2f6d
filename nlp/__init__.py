"""Understanding citizens' questions: text in, understanding out. No database, no chat platform."""

from nlp.understanding import Outcome, Understanding, understand
from nlp.matcher import EntryText, KnowledgeIndex

__all__ = ["EntryText", "KnowledgeIndex", "Outcome", "Understanding", "understand"]

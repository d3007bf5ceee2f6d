"""Understanding citizens' questions: text in, understanding out. No database, no chat platform."""

from nlp.matcher import EntryText, KnowledgeIndex
from nlp.understanding import Outcome, Understanding, understand

__all__ = ["EntryText", "KnowledgeIndex", "Outcome", "Understanding", "understand"]

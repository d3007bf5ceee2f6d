"""Measuring the bot: the answer contract, evaluation on labelled questions and benchmarks."""

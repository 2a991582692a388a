"""The training corpus of the offline `mini` model: coding tasks, their plans, and transcripts made by running
the plans through the real agent graph, tools and sandbox. Pure Python; no torch.

    python -m agents.corpus --count 2400 --seed 7     # (re)writes agents/corpus/data/transcripts.jsonl.gz

Modules: plan (what a task is, the policy that plays it), build (shared helpers, deliberate mistakes),
examples / bugs / more (the task families), generate (sampling, hold-out, playing, the corpus file).
"""

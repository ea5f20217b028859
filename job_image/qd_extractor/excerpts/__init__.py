"""The second stage: themed excerpts, embedding rerank and entity tagging (upstream §7–§8).

It runs in its own process invocation, after extraction, so extract pods never import torch:
only `rerank` imports sentence-transformers, and only when a model is first needed.
"""

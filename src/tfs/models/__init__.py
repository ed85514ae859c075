"""Complete models with config dataclasses (as nanoGPT's ``GPTConfig``), built from :mod:`tfs.nn`.

Chapters 05 (BERT), 06 (GPT) and 12 (LLaMA) ask the learner to build these; later chapters import them.
"""

"""Complete models with config dataclasses (as nanoGPT's ``GPTConfig``), built from :mod:`tfs.nn`.

Chapters 05 (BERT) and 06 (GPT) ask the learner to build these; later chapters import them.
"""

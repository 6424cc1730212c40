"""Fixtures and helpers every test module shares: the real data, tiny random models, a learnable synthetic task."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BartConfig, BartForSequenceClassification, BertConfig, BertForSequenceClassification

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
import utils  # noqa: E402  (pytest.ini puts the repository root and tests/ on the path)

MNLI_ORDER = {0: "contradiction", 1: "neutral", 2: "entailment"}
CROSS_ENCODER_ORDER = {0: "contradiction", 1: "entailment", 2: "neutral"}  # cross-encoder/nli-*
DOC_WORDS = "apple river stone green house music paper window garden city table letter water school horse".split()
SWAP_WORDS = "rocket violin desert tiger castle pepper".split()


def save_tiny(model_class, config, tokenizer, folder):
    """A randomly initialised model (seed 0) and its tokenizer, saved as a model folder."""
    torch.manual_seed(0)
    model_class(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_bert(folder, id2label=MNLI_ORDER):
    tokenizer = utils.load_tokenizer()
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, id2label=id2label,
                        label2id={v: k for k, v in id2label.items()})
    return save_tiny(BertForSequenceClassification, config, tokenizer, folder)


def tiny_bart(folder):
    tokenizer = utils.load_tokenizer()
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # BART takes no token_type_ids
    # BART classifies from the last </s>; with this WordPiece tokenizer that is [SEP]
    config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
                        decoder_start_token_id=tokenizer.sep_token_id, forced_eos_token_id=None,
                        id2label=CROSS_ENCODER_ORDER, label2id={v: k for k, v in CROSS_ENCODER_ORDER.items()})
    return save_tiny(BartForSequenceClassification, config, tokenizer, folder)


def synthetic_pairs(n_docs, seed):
    """A summary copied from its document (consistent) against one with a word swapped in (inconsistent)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_docs):
        words = list(rng.choice(DOC_WORDS, 10))
        start = rng.integers(0, 6)
        summary = words[start:start + 4]
        swapped = list(summary)
        swapped[rng.integers(0, 4)] = rng.choice(SWAP_WORDS)
        premise = " ".join(words) + "."
        rows.append(dict(premise=premise, hypothesis=" ".join(summary) + ".", label=utils.CONSISTENT, doc_id=f"d{d}"))
        rows.append(dict(premise=premise, hypothesis=" ".join(swapped) + ".", label=utils.INCONSISTENT, doc_id=f"d{d}"))
    return pd.DataFrame(rows).assign(dataset="synthetic")


def small_config(**overrides):
    base = dict(max_length=64, batch_size=4, grad_accum=1, epochs=1, lr=1e-3, warmup_ratio=0.0, eval_every=1,
                eval_batch_size=32, select_metric="validation/roc_auc")
    return utils.get_config("smoke", **{**base, **overrides})


@pytest.fixture
def real_data(monkeypatch):
    """The real raw files in ../shared/data; skipped where they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    monkeypatch.setenv("VF_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty folder laid out like ../shared/data, set as VF_DATA_DIR."""
    monkeypatch.setenv("VF_DATA_DIR", str(tmp_path))
    return tmp_path

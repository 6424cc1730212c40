"""Settings: the Config of a run, the named profiles, the label values and the environment variables."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch


REPO_DIR = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "VF_DATA_DIR"  # folder laid out like ../shared/data; unset and absent -> the hub
USB_DIR_ENV = "VF_USB_DIR"  # folder holding USB's task_datasets/ (default: $VF_DATA_DIR/usb)
PROFILE_ENV = "VF_PROFILE"  # cpu | gpu | original | smoke (unset: gpu with CUDA, else cpu)
RESUME_ENV = "VF_RESUME"  # 1: training continues from the latest checkpoint
MODEL_ENV = "VF_MODEL"  # a model name, hub id or local path instead of the NLI base (Config.model_name)
GENERATED_DIR = REPO_DIR / "data"  # git-ignored processed splits
CONSISTENT, NEUTRAL, INCONSISTENT = 2, 1, 0  # entailment / neutral / contradiction, in MNLI order
NOT_ENTAILED = 3  # a binary NLI set's "not entailed": neutral or contradiction, unknown which
SPLIT_SEED = 1368  # the original's random_state
PAIR_COLUMNS = ["premise", "hypothesis", "label", "doc_id", "dataset"]


class ConfigError(ValueError):
    """A setting that cannot work; the message says which, why and what to set instead."""


class DataError(ValueError):
    """Bad or missing input data; the message says what, where and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Every knob of a run; the defaults are the cpu profile. Saved with the results; frozen, so a profile cannot
    be changed by accident (use get_config(profile, key=value) or dataclasses.replace)."""
    profile: str = "cpu"
    # "nli-minilm": the NLI base (MiniLM after the NLI stage, models/nli_base, built by `make nli-base`);
    # "minilm": the packaged all-MiniLM-L6-v2 with a new head; or any hub id / local path ($VF_MODEL)
    model_name: str = "nli-minilm"
    # the 3 sentences closest to the summary (~106 tokens with it) instead of the whole document, so ~35 training
    # pairs/s on a 2-core bf16 CPU (results/bench.json)
    max_length: int = 160  # tokens per (document, summary) pair; only the document is truncated
    evidence_sentences: int | None = 3  # keep the k document sentences closest to the summary; None: all
    score_as: str = "contradiction_vs_entailment"  # how the head reads P(inconsistent) (scoring.HEAD_READINGS)
    batch_size: int = 16  # pairs per forward pass
    grad_accum: int = 1  # 16 x 1 = 16 pairs per optimizer update
    epochs: int = 8  # 700 balanced FIB pairs / 16 = 44 updates per epoch, 352 in all
    # fib_only trains up to as many updates as USB + FIB (here 632 + 352 = 984; 22 x 44 = 968), stopping earlier when
    # validation stops improving (patience), so that the baseline is trained to convergence
    fib_only_epochs: int = 22
    patience: int | None = 3  # evaluations without a better validation score before a stage stops; None: never
    lr: float = 5e-5  # peak AdamW learning rate, after warmup, then linear decay to 0
    warmup_ratio: float = 0.1  # share of all updates spent warming up
    weight_decay: float = 0.01  # not applied to biases and LayerNorm weights
    max_grad_norm: float = 1.0
    checkpoint_every: int = 44  # optimizer updates between resumable checkpoints (and one at the end)
    resume: bool = False  # continue from the latest checkpoint ($VF_RESUME=1)
    nli_sets: tuple = ("mnli", "snli", "anli", "fever_nli", "mctest_nli", "rte")  # the NLI stage's training sets
    nli_max_pairs_per_set: int | None = 6000  # mnli, snli, fever, anli 6k each + mctest 5.5k + rte 2.6k = ~32k
    nli_epochs: int = 1  # ~32k pairs / 32 = ~1,000 updates
    nli_batch_size: int = 32
    # the detector's base: None, model_name; "nli-full", the full NLI stage's (models/nli_full, make nli-full),
    # chosen on validation (experiments/detector_levers.py, rule 1)
    detector_base: str | None = "nli-full"
    # epochs over the detector's mix (recipe.DETECTOR_MIX), evaluated 3 times an epoch, the kept update chosen on
    # validation; 2 keeps each variant of experiments/detector_levers.py to about 20 minutes on a 2-core CPU
    detector_epochs: int = 2
    detector_nli_pairs: int = 3000  # NLI pairs replayed in that mix, so that entailment is not forgotten
    detector_usb_pairs: int | None = 2000  # USB's Wikipedia sentences in it (5,050 were 60% of the first mix)
    detector_claim_pairs: int | None = 2000  # pairs of each claim set in it (recipe.claim_part)
    detector_leave_out: tuple = ()  # families of parts left out of training and only watched on validation
    # how the detector reads a long document: None, as it trained (its evidence); "chunk": windows over the whole
    # document, the best-supported counting (chosen on validation: experiments/detector_readings.py)
    detector_mode: str | None = None
    # the detector's kept update: "best" on its sources' validation, or "last" (experiments/detector_levers.py, rule 3)
    detector_keep: str = "last"
    # FIB's other distractor sets over training documents in that mix, all inconsistent rewrites of references
    # (1,661 in all; None: every one): as many as FIB train's 350 references, so that a reference-like summary does
    # not lean inconsistent (chosen on validation: experiments/detector_levers.py)
    detector_fib_other_pairs: int | None = 350
    # inconsistent pairs made by rule-based edits (vf/edits.py) of the mix's consistent FIB-XSum and USB training
    # summaries; 0: none (measured on validation: experiments/detector_levers.py)
    detector_synthetic_pairs: int = 0
    # continue the detector on SummEdits (80% of each domain's documents) plus this many pairs of its own mix replayed
    # (guardrail.summedits_stage); whether it does was decided by experiments/detector_domains.py
    detector_summedits: bool = False
    detector_replay_pairs: int = 1000
    ood_source: str = "auto"  # out-of-domain pre-finetuning: "usb", "summedits", or "auto" (USB if it is here)
    # epochs of the out-of-domain stage: USB 5,050 pairs / 16 = 316 updates per epoch; 2 on this CPU, which has no
    # bf16 instructions (the gpu profile runs 3, as the study on MiniLM did: results/levers_gpu/levers.csv)
    ood_epochs: int = 2
    ood_lr: float | None = None  # peak learning rate of that stage; None: lr
    ood_evidence: bool = True  # select evidence in the source's premises too (USB's already are ~67 words of it)
    ood_eval_every: int | None = None  # updates between that stage's evaluations; None: 4 over the stage (+ update 0)
    fib_negatives: str = "balanced"  # FIB training pairs: "balanced" (1:1, 700) or "all" (2,474)
    fib_other_sets: tuple = ()  # add fib/xsum_other sets ("factcc", "mfma", "fir") over FIB-train documents only
    class_weighted: bool = False  # weight the loss by inverse class frequency (for imbalanced training sets)
    eval_every: int = 44  # optimizer updates between evaluations (plus update 0 and the end): once per FIB epoch
    eval_batch_size: int = 64  # pairs per forward pass when scoring; sorted by length, so little padding
    select_metric: str = "fib_validation_all/roc_auc"  # "<eval set>/<metric>" that picks the kept weights
    bf16: bool | None = None  # training under bf16 autocast; None: on CUDA, and on CPUs with bf16 instructions
    # score the in-training evaluations under bf16 (head in fp32); None: as training. Reported results (test sets,
    # figures, detector) are always scored in fp32 (results/bench_evaluation.csv: the time it saves)
    eval_bf16: bool | None = None
    seed: int = 0
    max_docs: int | None = None  # documents kept per split, for quick runs (smoke)
    results_dir: str = "results"
    models_dir: str = "models"  # git-ignored


PROFILES = {
    # the original's settings (its notebooks 2 and 3): the whole document cut at 512 tokens, 16 x 4 = 64 pairs per
    # update; FIB 10 epochs (110 updates), evaluated every 20; USB 10 epochs (790 updates), evaluated every 40
    "original": Config(profile="original", max_length=512, evidence_sentences=None, batch_size=16, grad_accum=4,
                       epochs=10, eval_every=20, checkpoint_every=20, ood_epochs=10, ood_eval_every=40,
                       fib_only_epochs=10, patience=None),
    # sized for a 2-core CPU: the defaults above
    "cpu": Config(),
    # one GPU: the cpu recipe, scoring in batches of 256, in fp32 as in the study (results/study/gpu/): on a GPU
    # scoring is cheap
    "gpu": Config(profile="gpu", ood_epochs=3, fib_only_epochs=30, eval_batch_size=256, eval_bf16=False),
    # a few steps on a tiny subset, for tests and CI
    "smoke": Config(profile="smoke", model_name="models/smoke/nli_base", max_length=128, evidence_sentences=None,
                    batch_size=4, grad_accum=2, epochs=1, eval_every=2,
                    checkpoint_every=33, ood_epochs=1, fib_only_epochs=1, patience=None, detector_epochs=1,
                    detector_base=None,  # the smoke NLI base (model_name): the full stage takes hours
                    detector_nli_pairs=40, detector_claim_pairs=40, detector_replay_pairs=16, nli_max_pairs_per_set=24,
                    nli_batch_size=8,
                    eval_batch_size=16, max_docs=8, results_dir="results/smoke", models_dir="models/smoke"),
}


def default_profile() -> str:
    """$VF_PROFILE if set, else 'gpu' where CUDA is available and 'cpu' elsewhere."""
    return os.environ.get(PROFILE_ENV) or ("gpu" if torch.cuda.is_available() else "cpu")


def get_config(profile: str | None = None, **overrides) -> Config:
    """The named profile (default: default_profile()) with keyword overrides; $VF_MODEL sets the model."""
    profile = profile or default_profile()
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)} "
                          f"(argument or ${PROFILE_ENV}).")
    if os.environ.get(MODEL_ENV) and "model_name" not in overrides:
        overrides["model_name"] = os.environ[MODEL_ENV]
    if os.environ.get(RESUME_ENV, "") not in ("", "0") and "resume" not in overrides:
        overrides["resume"] = True
    return dataclasses.replace(PROFILES[profile], **overrides)


def seed_everything(seed: int) -> None:
    """The one place seeds are set: Python, NumPy and torch (all devices)."""
    from transformers import set_seed
    set_seed(seed)

"""The hand-written training loop: batches, AdamW with a linear schedule, bf16 autocast, evaluation, keeping the best."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import NOT_ENTAILED, Config, ConfigError
from .device import _mean_across_ranks, bf16_fits, join_process_group, pick_device, under_torchrun
from .io import check_pairs_frame
from .reading import tokenize_pairs
from .model import not_entailed_ids, training_label_map
from .checkpoints import RunState, _prepare_checkpoint_dir, load_checkpoint, save_checkpoint
from .evaluate import Evaluator


def param_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups: decay matrices, not biases or LayerNorm weights (decaying those only hurts)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def class_weights(labels, num_labels: int) -> torch.Tensor:
    """Inverse class frequency, n / (classes present x n_c), so a 6:1 imbalance weighs both classes equally."""
    from sklearn.utils.class_weight import compute_class_weight
    labels = np.asarray(labels)
    present = np.unique(labels)
    weights = np.zeros(num_labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return torch.tensor(weights, dtype=torch.float32)


def pair_loss(logits: torch.Tensor, labels: torch.Tensor, class_weight: torch.Tensor | None = None,
              not_entailed: list[int] | None = None) -> torch.Tensor:
    """Cross-entropy; where a label is past the head's classes (a binary set's "not entailed"), its probability is
    the sum over the `not_entailed` classes, so a 3-way head learns from 3-way and binary sets at once."""
    if not_entailed is None:
        return torch.nn.functional.cross_entropy(logits, labels, weight=class_weight)
    log_p = torch.log_softmax(logits, dim=-1)
    merged = torch.logsumexp(log_p[:, not_entailed], dim=-1)
    single = log_p.gather(1, labels.clamp(max=logits.shape[1] - 1)[:, None]).squeeze(1)
    return -torch.where(labels == logits.shape[1], merged, single).mean()


@dataclasses.dataclass
class TrainResult:
    """What a training stage returns: one history row per evaluation, and which weights it kept."""
    history: pd.DataFrame
    best_update: int
    best_score: float
    select_metric: str

    @classmethod
    def from_history(cls, history: pd.DataFrame, select_metric: str) -> "TrainResult":
        """A saved history's result: the first evaluation with the best select_metric, as train() keeps it."""
        best = int(history[select_metric].to_numpy().argmax())
        return cls(history, int(history["update"].iloc[best]), float(history[select_metric].iloc[best]), select_metric)


@dataclasses.dataclass
class TrainingSetup:
    """What the loop needs besides the model: data, optimizer and schedule, device and precision, processes."""
    loader: object
    sampler: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    device: torch.device
    bf16: bool
    ddp_model: object  # the model, or its DistributedDataParallel wrapper under torchrun
    class_weight: torch.Tensor | None
    not_entailed: list[int] | None  # classes a binary set's "not entailed" sums over; None: no such label
    updates_per_epoch: int
    total_updates: int
    rank: int = 0
    world: int = 1

    def sampler_state(self) -> torch.Tensor:  # DistributedSampler needs none: its order is a function of the epoch
        return self.sampler.generator.get_state() if hasattr(self.sampler, "generator") else torch.empty(0, dtype=torch.uint8)

    def no_sync(self, boundary: bool):
        """DDP all-reduces gradients only at the update, not after every accumulated batch."""
        return self.ddp_model.no_sync() if self.world > 1 and not boundary else contextlib.nullcontext()


def _training_batches(features: list[dict], tokenizer, cfg: Config, device: torch.device, rank: int, world: int,
                      pad_to_multiple_of: int | None = None):
    """(sampler, loader) of padded batches: grouped by length in one process, sharded under torchrun; with
    pad_to_multiple_of, batch lengths are rounded up to it (fewer distinct shapes)."""
    from torch.utils.data import DataLoader, DistributedSampler
    from transformers import DataCollatorWithPadding
    from transformers.trainer_pt_utils import LengthGroupedSampler
    if under_torchrun():  # one shuffled order cut into world-size shares, which together
        # make the global batch of one process with batch_size x world
        sampler = DistributedSampler(features, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    else:  # similar lengths per batch, so padding wastes little; own generator, so a resumed run replays its batches
        sampler = LengthGroupedSampler(cfg.batch_size, lengths=[len(f["input_ids"]) for f in features],
                                       generator=torch.Generator().manual_seed(cfg.seed))
    collate = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
    loader = DataLoader(features, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                        generator=torch.Generator().manual_seed(cfg.seed), pin_memory=device.type == "cuda")
    return sampler, loader


def _set_up_training(model, tokenizer, train_df: pd.DataFrame, cfg: Config,
                     pad_to_multiple_of: int | None = None) -> TrainingSetup:
    """Tokenise, batch, and build the optimizer, the schedule and (under torchrun) the DDP wrapper."""
    from transformers import get_scheduler
    rank, world = join_process_group()
    device = pick_device()
    model.to(device)
    label_map = training_label_map(model.config)
    if not set(train_df["label"].unique()) <= set(label_map):
        raise ConfigError(f"training labels {sorted(train_df['label'].unique())} need classes the model lacks "
                          f"({model.config.id2label}).")
    features = tokenize_pairs(tokenizer, train_df, cfg.max_length, label_map, cfg.evidence_sentences, "training split")
    sampler, loader = _training_batches(features, tokenizer, cfg, device, rank, world, pad_to_multiple_of)
    updates_per_epoch = math.ceil(len(loader) / cfg.grad_accum)  # the last partial window is an update too
    total_updates = cfg.epochs * updates_per_epoch
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=round(cfg.warmup_ratio * total_updates),
                              num_training_steps=total_updates)
    bf16 = cfg.bf16 if cfg.bf16 is not None else bf16_fits(device)
    ddp_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    merged = label_map[NOT_ENTAILED] in {f["labels"] for f in features}
    if merged and cfg.class_weighted:
        raise ConfigError("class_weighted=True cannot weigh a binary NLI set's 'not entailed' label; leave it False.")
    class_weight = class_weights([f["labels"] for f in features], model.config.num_labels).to(device) \
        if cfg.class_weighted else None
    if rank == 0:
        print(f"{len(features)} pairs, {len(loader)} batches of {cfg.batch_size} per epoch, {cfg.grad_accum} per "
              f"update:\n  {updates_per_epoch} updates/epoch x {cfg.epochs} epochs = {total_updates} updates on {device}"
              + (" (bf16 autocast)" if bf16 else "") + (f", {world} processes" if world > 1 else ""))
    return TrainingSetup(loader, sampler, optimizer, scheduler, device, bf16, ddp_model, class_weight,
                         not_entailed_ids(model.config) if merged else None, updates_per_epoch, total_updates, rank,
                         world)


def _start_or_resume(model, trainer: TrainingSetup, cfg: Config, checkpoint_dir: Path | None) -> RunState:
    """A fresh run state, or the latest checkpoint's (with cfg.resume)."""
    if under_torchrun() and cfg.resume:
        raise NotImplementedError("resuming is supported in single-process runs only; rerun without VF_RESUME, or "
                                  "resume in one process.")
    if not _prepare_checkpoint_dir(checkpoint_dir, cfg.resume):
        return RunState()
    run = load_checkpoint(checkpoint_dir, model, trainer.optimizer, trainer.scheduler)
    trainer.sampler.generator.set_state(run.sampler_rng)
    return run


def _evaluate_and_keep_best(model, evaluator: "Evaluator", trainer: TrainingSetup, run: RunState, start: float,
                            keep: str = "best") -> None:
    """Log the losses since the last evaluation; rank 0 evaluates, and keeps the weights if they score best (or,
    with keep="last", always: a stage that must not select on its evaluator)."""
    record = dict(update=run.update, epoch=round(run.update / trainer.updates_per_epoch, 3),
                  seconds=round(time.time() - start, 1),
                  train_loss=_mean_across_ranks(run.logged_values(run.losses), trainer.world),
                  grad_norm=_mean_across_ranks(run.logged_values(run.norms), trainer.world),
                  lr=trainer.scheduler.get_last_lr()[0])
    run.losses.clear(), run.norms.clear()
    if trainer.rank != 0:  # the other ranks wait at their next all-reduce
        return
    record.update(evaluator(model))
    if record[evaluator.select_metric] > run.best_score or keep == "last":
        run.best_score, run.best_update = record[evaluator.select_metric], run.update
        run.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    run.history.append(record)
    watched = ", ".join(f"{k} {v:.3f}" for k, v in record.items() if k.endswith("/roc_auc"))
    # one line per evaluation is the progress report: a bar's saved state reads "0%" in an executed notebook
    loss = "-" if math.isnan(record["train_loss"]) else f"{record['train_loss']:.3f}"  # no loss before update 1
    print(f"update {run.update}/{trainer.total_updates}: loss {loss}, {watched}", flush=True)
    model.train()


def _out_of_patience(run: RunState, patience: int | None, trainer: TrainingSetup) -> bool:
    """True when the last `patience` evaluations all scored below the best: validation stopped improving."""
    if patience is None or trainer.world > 1:  # under torchrun only rank 0 evaluates; it trains to the end
        return False
    since_best = len(run.history) - 1 - [r["update"] for r in run.history].index(run.best_update)
    if since_best >= patience and trainer.rank == 0:
        print(f"stopped at update {run.update}: {patience} evaluations without a better score than update "
              f"{run.best_update}")
    return since_best >= patience


def _clip_and_step(model, trainer: TrainingSetup, run: RunState, max_grad_norm: float, where: str) -> None:
    """Clip the gradient, stop on a non-finite one (one host sync per update), step and advance the schedule."""
    run.norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm))
    if not torch.isfinite(run.norms[-1]):  # a NaN or infinite loss makes the gradient norm non-finite too
        raise FloatingPointError(f"non-finite loss or gradient norm at update {run.update + 1} ({where})")
    trainer.optimizer.step()
    trainer.scheduler.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    run.update += 1


def _checkpoint(folder: Path, model, trainer: TrainingSetup, run: RunState, where: tuple[int, int, int],
                seconds: float, epoch_rng: torch.Tensor) -> None:
    """Save a checkpoint after batch `step` of `epoch` (where = epoch, step, batches per epoch), so that a resumed
    run continues with the next batch, or at the next epoch's start after its last batch."""
    epoch, step, n_batches = where
    last_of_epoch = step + 1 == n_batches
    run.epoch, run.step = epoch + last_of_epoch, 0 if last_of_epoch else step + 1
    run.seconds, run.sampler_rng = seconds, trainer.sampler_state() if last_of_epoch else epoch_rng
    save_checkpoint(folder, model, trainer.optimizer, trainer.scheduler, run)


def _finish(model, trainer: TrainingSetup, run: RunState, select_metric: str) -> TrainResult:
    """Load the kept weights (rank 0's choice, on every rank) and return the history."""
    if trainer.world > 1:
        import torch.distributed as dist
        shared = [(run.best_weights, run.best_update, run.best_score)]
        dist.broadcast_object_list(shared, src=0)
        run.best_weights, run.best_update, run.best_score = shared[0]
    model.load_state_dict(run.best_weights)
    if trainer.rank == 0:
        print(f"kept the weights of update {run.best_update}: {select_metric} = {run.best_score:.4f}")
    return TrainResult(pd.DataFrame(run.history), run.best_update, run.best_score, select_metric)


def train(model, tokenizer, train_df: pd.DataFrame, evaluator: "Evaluator | dict[str, pd.DataFrame]", cfg: Config,
          checkpoint_dir: str | os.PathLike | None = None, pad_to_multiple_of: int | None = None,
          keep: str = "best") -> TrainResult:
    """Finetune in place; keep the weights that score best on the evaluator's select_metric (`evaluator` may be
    validation frames to build one from), or with keep="last" those of the last update (the evaluator only watches;
    no early stop). With checkpoint_dir, a checkpoint every cfg.checkpoint_every updates and at the end;
    cfg.resume=True continues from the latest, with the same result as an uninterrupted run."""
    if keep not in ("best", "last"):
        raise ConfigError(f"keep must be 'best' or 'last', got {keep!r}")
    check_pairs_frame(train_df, "training split")
    if not isinstance(evaluator, Evaluator):
        evaluator = Evaluator.from_frames(tokenizer, evaluator, cfg)
    trainer = _set_up_training(model, tokenizer, train_df, cfg, pad_to_multiple_of)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None and trainer.rank == 0 else None
    run = _start_or_resume(model, trainer, cfg, checkpoint_dir)
    start = time.time() - run.seconds
    if not run.history:
        _evaluate_and_keep_best(model, evaluator, trainer, run, start, keep)
    model.train()
    n_batches, first_epoch, first_step, stop = len(trainer.loader), run.epoch, run.step, False
    kept = f"the last good checkpoint is kept in {checkpoint_dir}" if checkpoint_dir else "no checkpoint folder was given"
    for epoch in range(first_epoch, cfg.epochs):
        skip = first_step if epoch == first_epoch else 0  # batches a resumed run already trained on
        if hasattr(trainer.sampler, "set_epoch"):  # DistributedSampler: a new order each epoch
            trainer.sampler.set_epoch(epoch)
        epoch_rng = trainer.sampler_state()
        for step, batch in enumerate(trainer.loader):
            if step < skip:
                continue
            window = min(cfg.grad_accum, n_batches - (step - step % cfg.grad_accum))  # the last may be partial
            boundary = (step + 1) % cfg.grad_accum == 0 or step + 1 == n_batches
            batch = batch.to(trainer.device, non_blocking=True)
            labels = batch.pop("labels")
            with trainer.no_sync(boundary):
                with torch.autocast(trainer.device.type, dtype=torch.bfloat16, enabled=trainer.bf16):
                    logits = trainer.ddp_model(**batch).logits
                loss = pair_loss(logits.float(), labels, trainer.class_weight, trainer.not_entailed)
                (loss / window).backward()
            run.losses.append(loss.detach())  # no host sync per batch: read when logging
            if not boundary:
                continue
            _clip_and_step(model, trainer, run, cfg.max_grad_norm,
                           f"epoch {epoch}, batch {step}; training stopped, {kept}")
            evaluated = run.update % cfg.eval_every == 0 or run.update == trainer.total_updates
            if evaluated:
                _evaluate_and_keep_best(model, evaluator, trainer, run, start, keep)
            stop = evaluated and _out_of_patience(run, cfg.patience, trainer)
            if checkpoint_dir is not None and (run.update % cfg.checkpoint_every == 0
                                               or run.update == trainer.total_updates):
                _checkpoint(checkpoint_dir, model, trainer, run, (epoch, step, n_batches), time.time() - start, epoch_rng)
            if stop:
                break
        if stop:
            break
    return _finish(model, trainer, run, evaluator.select_metric)

"""Resumable checkpoints: the run's state, written atomically, restored with every RNG."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import ConfigError


@dataclasses.dataclass
class RunState:
    """Where a training run is, what it has logged and the best weights so far: what a checkpoint saves."""
    update: int = 0
    epoch: int = 0
    step: int = 0  # batches of `epoch` already trained on
    seconds: float = 0.0
    history: list = dataclasses.field(default_factory=list)
    losses: list = dataclasses.field(default_factory=list)  # since the last evaluation; on the device until logged
    norms: list = dataclasses.field(default_factory=list)
    best_score: float = -math.inf
    best_update: int = 0
    best_weights: dict | None = None
    sampler_rng: torch.Tensor | None = None  # the batch order's generator at the start of `epoch`

    def logged_values(self, values: list) -> list[float]:
        """The losses or norms as floats: one host sync for the lot."""
        values[:] = torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in values]).tolist() if values else []
        return values


def model_fingerprint(model) -> dict:
    """What a checkpoint must match: architecture, labels and every weight's name and shape."""
    shapes = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return {"class": type(model).__name__, "id2label": {str(k): v for k, v in model.config.id2label.items()},
            "weights": hashlib.sha1(shapes.encode()).hexdigest()}


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_checkpoint(folder: Path, model, optimizer, scheduler, run: RunState) -> Path:
    """Write ckpt-<update>/ under a temporary name, rename it, then point latest.json at it; old ones go."""
    from safetensors.torch import save_file, save_model
    folder.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{run.update:06d}"
    tmp = folder / f".tmp-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    if run.best_weights is not None:
        save_file({k: v.contiguous() for k, v in run.best_weights.items()}, str(tmp / "best.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "sampler_rng": run.sampler_rng,
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
               tmp / "trainer_state.pt")
    np_state = np.random.get_state()
    run.logged_values(run.losses), run.logged_values(run.norms)
    # not dataclasses.asdict: it would deep-copy the best weights only to drop them
    meta = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)
            if f.name not in ("best_weights", "sampler_rng")}
    meta.update(fingerprint=model_fingerprint(model), python_rng=random.getstate(),
                numpy_rng=[np_state[0], np_state[1].tolist(), *np_state[2:]])
    (tmp / "meta.json").write_text(json.dumps(meta, default=float), encoding="utf-8")
    os.replace(tmp, folder / name)
    _atomic_write_text(folder / "latest.json", json.dumps({"checkpoint": name}))
    for old in folder.glob("ckpt-*"):
        if old.name != name:
            shutil.rmtree(old)
    return folder / name


def latest_checkpoint(folder: Path) -> Path:
    """The checkpoint folder that `folder`'s latest.json points at (save_checkpoint writes it last)."""
    return Path(folder) / json.loads((Path(folder) / "latest.json").read_text())["checkpoint"]


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> RunState:
    """Restore a checkpoint written by save_checkpoint: weights, optimizer, scheduler, every RNG, the run's state."""
    from safetensors.torch import load_file, load_model
    path = latest_checkpoint(folder)
    meta = json.loads((path / "meta.json").read_text())
    expected = model_fingerprint(model)
    if meta["fingerprint"] != expected:
        raise ConfigError(f"checkpoint {path} was written for another model or label set "
                          f"({meta['fingerprint']['class']}, labels {meta['fingerprint']['id2label']}); this model is "
                          f"{expected['class']} with labels {expected['id2label']}. Use a fresh checkpoint folder.")
    load_model(model, str(path / "model.safetensors"))
    trainer_state = torch.load(path / "trainer_state.pt", weights_only=True)
    optimizer.load_state_dict(trainer_state["optimizer"])
    scheduler.load_state_dict(trainer_state["scheduler"])
    torch.set_rng_state(trainer_state["torch_rng"])
    if trainer_state["cuda_rng"]:
        torch.cuda.set_rng_state_all(trainer_state["cuda_rng"])
    version, internal, gauss = meta.pop("python_rng")
    random.setstate((version, tuple(internal), gauss))
    kind, keys, *rest = meta.pop("numpy_rng")
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    meta.pop("fingerprint")
    best_file = path / "best.safetensors"
    run = RunState(**meta, best_weights=load_file(str(best_file)) if best_file.exists() else None,
                   sampler_rng=trainer_state["sampler_rng"])
    print(f"resumed from {path} (update {run.update}, epoch {run.epoch}, batch {run.step})")
    return run


def _prepare_checkpoint_dir(folder: Path | None, resume: bool) -> bool:
    """True when there is a checkpoint to resume; an old one that is not resumed is moved aside, not overwritten."""
    if folder is None or not (folder / "latest.json").exists():
        return False
    if resume:
        return True
    previous = folder.with_name(folder.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    os.replace(folder, previous)
    print(f"{folder}: an earlier run's checkpoint moved to {previous.name}\n  (VF_RESUME=1 continues a run "
          "instead)")
    return False


def checkpoint_history(folder: Path) -> pd.DataFrame:
    """The evaluation history stored in a stage's latest checkpoint (a run's record when its model was not saved)."""
    latest = Path(folder) / "latest.json"
    if not latest.exists():
        raise FileNotFoundError(f"{latest} is missing: {folder} holds no checkpoint of a run")
    meta = json.loads((latest_checkpoint(folder) / "meta.json").read_text())
    return pd.DataFrame(meta["history"]).assign(best_update=meta["best_update"])

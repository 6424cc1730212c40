"""One training run for test_distributed.py, launched by torchrun: tiny model, fixed pairs, final weights saved."""
import sys
from pathlib import Path

import pandas as pd
import torch

import utils  # the repository root is on PYTHONPATH (test_distributed.py sets it)

model_dir, pairs_path, out_dir, batch_size = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
cfg = utils.get_config("smoke", batch_size=batch_size, grad_accum=2, epochs=2, lr=1e-3, warmup_ratio=0.0,
                       eval_every=1, checkpoint_every=10_000, select_metric="validation/roc_auc", bf16=False,
                       max_length=64, seed=3)
utils.seed_everything(cfg.seed)
tokenizer, model = utils.load_model(model_dir)
pairs = pd.read_json(pairs_path, orient="records", lines=True)
history = utils.train(model, tokenizer, pairs, {"validation": pairs}, cfg, checkpoint_dir=out_dir / "ckpt").history
rank, world = utils.join_process_group()
if rank == 0:
    history.to_csv(out_dir / "history.csv", index=False)
    (out_dir / "world.txt").write_text(str(world))

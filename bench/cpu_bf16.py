"""Is bf16 autocast worth it on this CPU? Training throughput and loss, fp32 against bf16, same batches.

    .venv/bin/python -m bench.cpu_bf16 [--steps 12] [--max-length 320]      # writes results/bench_cpu_bf16.json
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import DataCollatorWithPadding

import utils

PROFILE = utils.get_config("cpu")  # the optimizer settings the benches train with


def run(bf16: bool, batches, steps: int) -> tuple[float, list[float]]:
    utils.seed_everything(0)
    _, model = utils.load_model()
    optimizer = torch.optim.AdamW(utils.param_groups(model, PROFILE.weight_decay), lr=PROFILE.lr)
    model.train()
    losses, start = [], None
    for step, batch in enumerate(batches[:steps + 1]):
        if step == 1:  # the first step warms up allocators and kernels
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    pairs = sum(len(b["input_ids"]) for b in batches[1:steps + 1])
    return pairs / (time.perf_counter() - start), losses


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--max-length", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    tokenizer = utils.load_tokenizer()
    train = utils.fib_splits()["train"].sample(frac=1.0, random_state=0)
    features = utils.tokenize_pairs(tokenizer, train, args.max_length,
                                    {utils.CONSISTENT: 2, utils.INCONSISTENT: 0})
    collate = DataCollatorWithPadding(tokenizer)
    batches = [collate(features[i:i + args.batch_size])
               for i in range(0, (args.steps + 1) * args.batch_size, args.batch_size)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps of "
          f"{args.batch_size} pairs, max {args.max_length} tokens")
    results = {name: run(bf16, batches, args.steps) for name, bf16 in (("fp32", False), ("bf16", True))}
    for name, (speed, losses) in results.items():
        print(f"{name}: {speed:.2f} pairs/s, losses {np.round(losses, 4).tolist()}")
    gap = np.abs(np.array(results["fp32"][1]) - np.array(results["bf16"][1])).max()
    print(f"bf16 / fp32 speed: {results['bf16'][0] / results['fp32'][0]:.2f}x; largest loss gap {gap:.4f}")
    summary = dict(device=utils.device_description(), torch=torch.__version__, threads=torch.get_num_threads(),
                   steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                   pairs_per_s={name: round(speed, 2) for name, (speed, _) in results.items()},
                   bf16_over_fp32=round(results["bf16"][0] / results["fp32"][0], 2), largest_loss_gap=round(float(gap), 5),
                   git_commit=utils.git_commit())
    Path("results/bench_cpu_bf16.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Training throughput of this project's loop against transformers.Trainer, MFU, scoring speed, notebook times.

    .venv/bin/python -m bench.throughput [--pairs 0] [--rounds 2] [--kinds ours ours_512 trainer]
    # writes results/bench.json

Each trial runs in its own process (so its peak memory is its own), alternating ours and Trainer's, on the same
model, the same FIB training pairs, 16 pairs per batch and no accumulation. Run it on an otherwise idle machine.

A trial is one epoch of the FIB stage's 700 training pairs (--pairs 0), because the loop's length-grouped batches
depend on the set's size: transformers' LengthGroupedSampler sorts by length within megabatches of
min(pairs // 64, 50) batches, so on 96 pairs it sorts within single batches, i.e. not at all.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
import utils

PROFILE = utils.get_config("cpu")  # the optimizer settings the benches train with

BATCH = 16
WHOLE = dict(max_length=512, evidence_sentences=None)  # the original's inputs: whole documents, 512 tokens
KINDS = {"ours": {}, "ours_512": WHOLE, "ours_512_pad64": {**WHOLE, "pad_to_multiple_of": 64},
         "ours_512_pad512": {**WHOLE, "pad_to_multiple_of": 512}, "trainer": {}, "trainer_grouped": {}}
DEFAULT_KINDS = ["ours", "ours_512", "trainer", "trainer_grouped"]


def training_pairs(n: int) -> pd.DataFrame:
    """The FIB stage's training pairs (n = 0), or a sample of n of them."""
    pairs = utils.fib_training_pairs(utils.fib_splits(), utils.get_config("cpu"))
    return pairs if n == 0 else pairs.sample(n=n, random_state=0).reset_index(drop=True)


def trial_ours(n_pairs: int, overrides: dict) -> dict:
    """utils.train for one epoch; the evaluations use 4 pairs, so the time is the loop's."""
    pad = overrides.pop("pad_to_multiple_of", None)  # a train() argument, not a config setting
    cfg = utils.get_config("cpu", batch_size=BATCH, grad_accum=1, epochs=1, eval_every=10_000,
                           checkpoint_every=10_000, **overrides)
    utils.seed_everything(0)
    tokenizer, model = utils.load_model()
    pairs = training_pairs(n_pairs)
    tiny_eval = {"fib_validation_all": utils.fib_splits()["validation"].groupby("label").head(2)}
    history = utils.train(model, tokenizer, pairs, tiny_eval, cfg, pad_to_multiple_of=pad).history
    # the same batches again (same seed, same sampler): how many token slots the model computed on
    features = utils.tokenize_pairs(tokenizer, pairs, cfg.max_length, utils.training_label_map(model.config),
                                    cfg.evidence_sentences)
    _, loader = utils._training_batches(features, tokenizer, cfg, torch.device("cpu"), 0, 1, pad)
    return dict(seconds=float(history["seconds"].iloc[-1]), pairs=len(pairs),
                tokens_per_pair=float(np.mean([len(f["input_ids"]) for f in features])),
                slots_per_pair=sum(batch["input_ids"].numel() for batch in loader) / len(pairs))


def trial_trainer(n_pairs: int, grouped: bool) -> dict:
    """transformers.Trainer with the original's inputs (every pair padded to 512 tokens), or with grouped=True its
    own length-grouped batches and dynamic padding (group_by_length, DataCollatorWithPadding)."""
    import datasets
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    utils.seed_everything(0)
    tokenizer, model = utils.load_model()
    pairs = training_pairs(n_pairs)
    label_map = utils.training_label_map(model.config)
    enc = tokenizer(list(pairs["premise"]), list(pairs["hypothesis"]), truncation="only_first", max_length=512,
                    padding=False if grouped else "max_length")
    data = datasets.Dataset.from_dict({**enc, "labels": [label_map[int(v)] for v in pairs["label"]]})
    args = TrainingArguments(output_dir="/tmp/vf_bench_trainer", per_device_train_batch_size=BATCH,
                             gradient_accumulation_steps=1, num_train_epochs=1, learning_rate=PROFILE.lr,
                             weight_decay=PROFILE.weight_decay, warmup_steps=max(1, round(PROFILE.warmup_ratio * len(pairs) / BATCH)),
                             bf16=utils.bf16_fits(utils.pick_device()), report_to=[],
                             train_sampling_strategy="group_by_length" if grouped else "random",
                             save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
                             dataloader_num_workers=0, seed=0, use_cpu=not torch.cuda.is_available())
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer))
    slots = sum(batch["input_ids"].numel() for batch in trainer.get_train_dataloader())
    metrics = trainer.train().metrics
    return dict(seconds=float(metrics["train_runtime"]), pairs=len(pairs),
                tokens_per_pair=float(np.mean([len(ids) for ids in enc["input_ids"]])) if grouped else 512.0,
                slots_per_pair=slots / len(pairs))


def peak_matmul_flops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large square matmul in dtype on this machine: the hardware limit torch can reach."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def training_flops_per_pair(model, tokens: float) -> float:
    """6 x non-embedding parameters x tokens (forward + backward), plus attention scores and mixing: 12 L T^2 d."""
    params = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    c = model.config
    return 6 * params * tokens + 12 * c.num_hidden_layers * tokens ** 2 * c.hidden_size


def profile_steps(cfg, steps: int = 4) -> pd.DataFrame:
    """Where a training step's time goes: wall time per phase (collate, forward, backward, optimizer), self CPU
    time per op group inside them, and the share of padded token slots. Also saved to results/bench_profile*.csv."""
    from torch.profiler import ProfilerActivity, profile, record_function
    from transformers import DataCollatorWithPadding
    tokenizer, model = utils.load_model()
    features = utils.tokenize_pairs(tokenizer, training_pairs(BATCH * (steps + 1)), cfg.max_length,
                                    utils.training_label_map(model.config), cfg.evidence_sentences)
    collate = DataCollatorWithPadding(tokenizer)
    optimizer = torch.optim.AdamW(utils.param_groups(model, PROFILE.weight_decay), lr=PROFILE.lr)
    model.train()
    use_bf16 = utils.cpu_has_fast_bf16()
    padded = real = 0

    def step(chunk):
        nonlocal padded, real
        with record_function("phase: collate"):
            batch = collate(chunk)
        padded += batch["input_ids"].numel()
        real += int(batch["attention_mask"].sum())
        with record_function("phase: forward"), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(**batch).loss
        with record_function("phase: backward"):
            loss.backward()
        with record_function("phase: optimizer"):
            optimizer.step()
            optimizer.zero_grad()

    step(features[:BATCH])  # warm-up
    padded = real = 0
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(1, steps + 1):
            step(features[i * BATCH:(i + 1) * BATCH])
    wall_ms = (time.perf_counter() - start) * 1000
    groups = {"matmul (linear layers)": ("addmm", "aten::mm", "matmul", "linear"),
              "attention (bmm, softmax, sdpa)": ("bmm", "softmax", "scaled_dot_product", "attention"),
              "dropout": ("bernoulli", "dropout"),
              "layer norm, GELU and other elementwise": ("layer_norm", "gelu", "aten::add", "aten::mul", "aten::div",
                                                         "where", "tanh", "aten::sum", "embedding")}
    events = prof.key_averages()
    rows = []
    for event in events:
        if event.key.startswith("phase: "):
            rows.append(dict(kind="phase (wall, incl. children)", name=event.key[7:], ms=event.cpu_time_total / 1000))
    rows.append(dict(kind="phase (wall, incl. children)", name="whole step (timer)", ms=wall_ms))
    phase = {r["name"]: r["ms"] for r in rows}
    ops = [e for e in events if not e.key.startswith(("phase: ", "ProfilerStep"))]
    model_ops = pd.DataFrame([dict(op=e.key, ms=e.self_cpu_time_total / 1000) for e in ops])
    model_ops["group"] = [next((g for g, keys in groups.items() if any(k in op.lower() for k in keys)),
                               "other ops") for op in model_ops["op"]]
    model_ops.sort_values("ms", ascending=False).head(25).round(1).to_csv(REPO / "results" / "bench_profile_ops.csv",
                                                                           index=False)
    # optimizer ops would otherwise land in the elementwise groups: count the optimizer phase on its own
    forward_backward = phase.get("forward", 0) + phase.get("backward", 0)
    by_group = model_ops.groupby("group")["ms"].sum()
    by_group = by_group / by_group.sum() * forward_backward
    for name, ms in by_group.sort_values(ascending=False).items():
        rows.append(dict(kind="forward+backward, by op group (self time, scaled)", name=name, ms=ms))
    rows.append(dict(kind="padding", name=f"padded token slots: {padded}, real tokens: {real}",
                     ms=float("nan")))
    table = pd.DataFrame(rows).assign(share_of_step=lambda d: (d["ms"] / wall_ms).round(3))
    table["padding_share"] = np.where(table["kind"] == "padding", round(1 - real / padded, 3), np.nan)
    table.round(1).to_csv(REPO / "results" / "bench_profile.csv", index=False)
    return table


def scoring_speed(cfg, n: int = 256, bf16: bool = False) -> float:
    """Pairs scored per second: evidence selection and tokenising included, then fp32 (reported results) or bf16
    (the in-training evaluations, utils.eval_bf16_enabled)."""
    tokenizer, model = utils.load_model()
    pairs = utils.fib_splits()["validation_all"]

    def score(df):
        prepared = utils.prepare_pairs(tokenizer, df, cfg.max_length, cfg.eval_batch_size, cfg.evidence_sentences)
        utils.score_prepared(model, prepared, bf16=bf16)
    score(pairs.head(32))  # warm-up
    start = time.perf_counter()
    score(pairs.head(n))
    return n / (time.perf_counter() - start)


def notebook_minutes() -> dict:
    path = REPO / "results" / "notebook_times.csv"
    if not path.exists():
        return {}
    times = pd.read_csv(path)
    latest = times[times["profile"] == "cpu"].drop_duplicates("notebook", keep="last")
    return {row.notebook: round(row.seconds / 60, 1) for row in latest.itertuples()}


def run_trial(kind: str, n_pairs: int, overrides: dict) -> dict:
    cmd = [sys.executable, "-m", "bench.throughput", "--trial", kind, "--pairs", str(n_pairs), "--overrides", json.dumps(overrides)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"trial {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=0, help="training pairs per trial; 0: the FIB stage's 700")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of ours and Trainer's")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=DEFAULT_KINDS)
    parser.add_argument("--trial", choices=list(KINDS))
    parser.add_argument("--overrides", default="{}")
    parser.add_argument("--notebooks-only", action="store_true",
                        help="only refresh notebook_minutes in results/bench.json (from results/notebook_times.csv)")
    parser.add_argument("--profile-only", action="store_true", help="only the op profile (results/bench_profile*.csv)")
    args = parser.parse_args()
    if args.profile_only:
        print(profile_steps(utils.get_config("cpu")).round(3).to_string())
        return
    if args.notebooks_only:
        path = REPO / "results" / "bench.json"
        result = json.loads(path.read_text()) | {"notebook_minutes": notebook_minutes()}
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["notebook_minutes"]))
        return
    if args.trial:  # one trial, in its own process
        overrides = json.loads(args.overrides)
        result = (trial_trainer(args.pairs, grouped=args.trial == "trainer_grouped") if args.trial.startswith("trainer")
                  else trial_ours(args.pairs, overrides))
        result.update(peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result))
        return

    cfg = utils.get_config("cpu")
    trials = {k: [] for k in args.kinds}
    for r in range(args.rounds):
        for kind in args.kinds:
            trials[kind].append(run_trial(kind, args.pairs, KINDS[kind]))
            t = trials[kind][-1]
            print(f"round {r}: {kind:16s} {t['pairs'] / t['seconds']:.2f} pairs/s, {t['tokens_per_pair']:.0f} tokens "
                  f"and {t['slots_per_pair']:.0f} token slots per pair, peak RSS {t['peak_rss_mb']:.0f} MB", flush=True)
    speed = {k: float(np.median([t["pairs"] / t["seconds"] for t in ts])) for k, ts in trials.items()}
    spread = {k: [round(min(t["pairs"] / t["seconds"] for t in ts), 2), round(max(t["pairs"] / t["seconds"] for t in ts), 2)]
              for k, ts in trials.items()}

    _, model = utils.load_model()
    dtype = torch.bfloat16 if utils.cpu_has_fast_bf16() else torch.float32
    peak = peak_matmul_flops(dtype)
    tokens = trials["ours"][0]["tokens_per_pair"]
    achieved = training_flops_per_pair(model, tokens) * speed["ours"]
    profile_table = profile_steps(cfg)
    print(profile_table.round(1).to_string())

    result = dict(
        machine=f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
                f"{'bf16' if dtype == torch.bfloat16 else 'fp32'} training",
        profile={k: getattr(cfg, k) for k in ("max_length", "evidence_sentences", "batch_size", "grad_accum")},
        pairs_per_trial=trials["ours"][0]["pairs"], rounds=args.rounds,
        pairs_per_s={k: round(v, 2) for k, v in speed.items()},
        pairs_per_s_range=spread,
        # token slots computed per pair (padding included) against real tokens per pair
        slots_per_pair={k: round(ts[0]["slots_per_pair"], 1) for k, ts in trials.items()},
        tokens_per_pair={k: round(ts[0]["tokens_per_pair"], 1) for k, ts in trials.items()},
        speedup_vs_trainer=round(speed["ours"] / speed["trainer"], 2),
        # whole documents, 512 tokens, the same pairs: what the original fed Trainer
        speedup_vs_trainer_same_inputs=round(speed["ours_512"] / speed["trainer"], 2),
        **({"speedup_vs_trainer_grouped_same_inputs": round(speed["ours_512"] / speed["trainer_grouped"], 2)}
           if "trainer_grouped" in speed else {}),
        peak_rss_mb={k: round(max(t["peak_rss_mb"] for t in ts)) for k, ts in trials.items()},
        flops_per_pair=training_flops_per_pair(model, tokens),
        matmul_peak_flops=peak,
        mfu=round(achieved / peak, 4),
        score_pairs_per_s=round(scoring_speed(cfg), 1),
        score_pairs_per_s_bf16=round(scoring_speed(cfg, bf16=True), 1),
        notebook_minutes=notebook_minutes(),
    )
    (REPO / "results" / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""The benchmark's FLOP arithmetic, on a model small enough to count by hand."""
import importlib.util
from pathlib import Path

from transformers import BertConfig, BertForSequenceClassification

spec = importlib.util.spec_from_file_location("throughput", Path(__file__).resolve().parents[1] / "bench" / "throughput.py")
throughput = importlib.util.module_from_spec(spec)
spec.loader.exec_module(throughput)


def test_training_flops_count_non_embedding_parameters_and_attention():
    config = BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32, num_labels=3)
    model = BertForSequenceClassification(config)
    # one layer: Q, K, V, O (4 x (8x8 + 8)) + 2 LayerNorms (2 x 16) + FFN (8x16 + 16 + 16x8 + 8);
    # pooler 8x8 + 8; classifier 8x3 + 3
    per_layer = 4 * (64 + 8) + 2 * 16 + (128 + 16 + 128 + 8)
    non_embedding = per_layer + 72 + 27
    tokens = 10
    expected = 6 * non_embedding * tokens + 12 * 1 * tokens ** 2 * 8
    assert throughput.training_flops_per_pair(model, tokens) == expected


def test_the_fib_stage_batches_pad_little_and_a_small_trial_groups_nothing(real_data):
    """Why the loop beats Trainer on the same pairs: on the FIB stage's 700 whole-document pairs its length-grouped
    batches compute ~6% more token slots than real tokens (Trainer, padding to 512: ~1.5x more); on a 96-pair
    sample LengthGroupedSampler sorts within single batches, so it groups nothing (the old bench's parity)."""
    import torch
    import utils
    tokenizer = utils.load_tokenizer()
    cfg = utils.get_config("cpu", max_length=512, evidence_sentences=None, batch_size=16)

    def slots_and_tokens(pairs):
        features = utils.tokenize_pairs(tokenizer, pairs, 512)
        _, loader = utils._training_batches(features, tokenizer, cfg, torch.device("cpu"), 0, 1)
        return sum(batch["input_ids"].numel() for batch in loader), sum(len(f["input_ids"]) for f in features)

    fib_stage = throughput.training_pairs(0)
    assert len(fib_stage) == 700
    slots, tokens = slots_and_tokens(fib_stage)
    assert slots / tokens < 1.10
    assert 512 * 700 / tokens > 1.5  # Trainer's padding to 512
    slots, tokens = slots_and_tokens(throughput.training_pairs(96))
    assert slots / tokens > 1.3


def test_make_all_time_takes_each_steps_latest_record_and_names_a_missing_one():
    import pandas as pd
    import pytest
    from bench.make_all_time import BUILT_STEPS, make_all_steps, notebooks
    steps = BUILT_STEPS + notebooks()
    assert notebooks()[0] == "0_nli_base.ipynb" and len(notebooks()) == 6
    rows = [(step, "cpu", 10, "2026-01-02T00:00:00Z") for step in steps]
    rows += [("detector", "cpu", 999, "2026-01-01T00:00:00Z"),  # an older build: not the latest record
             ("detector", "gpu", 1, "2026-01-03T00:00:00Z")]  # another profile
    times = pd.DataFrame(rows, columns=["notebook", "profile", "seconds", "finished"])
    table = make_all_steps(times, profile="cpu")
    assert table["step"].tolist() == [*steps, "total"]
    assert table.set_index("step").loc["detector", "seconds"] == 10
    assert table.set_index("step").loc["total", "seconds"] == 10 * len(steps)
    with pytest.raises(SystemExit, match="no 'cpu' record of 'nli_full'"):
        make_all_steps(times[times["notebook"] != "nli_full"], "cpu")

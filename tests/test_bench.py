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

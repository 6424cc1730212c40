"""Label resolution, model loading through the real code path, the loop's arithmetic, and a tiny end-to-end run."""
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig

import utils
import vf.device
from conftest import CROSS_ENCODER_ORDER, MNLI_ORDER, small_config, synthetic_pairs, tiny_bart, tiny_bert



def test_label_ids_follow_the_config():
    assert utils.label_ids(BertConfig(id2label=MNLI_ORDER)) == (0, 2)
    assert utils.label_ids(BertConfig(id2label=CROSS_ENCODER_ORDER)) == (0, 1)
    assert utils.label_ids(BertConfig(id2label={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"})) == (0, 2)
    with pytest.raises(ValueError, match="no 'contradiction' label"):
        utils.label_ids(BertConfig(id2label={0: "negative", 1: "positive"}))


def test_tiny_bart_and_bert_load_and_score_through_the_same_code(tmp_path):
    pairs = synthetic_pairs(4, seed=1)
    for folder, expected in ((tiny_bert(tmp_path / "bert"), (0, 2)), (tiny_bart(tmp_path / "bart"), (0, 1))):
        tokenizer, model = utils.load_model(folder)
        assert utils.label_ids(model.config) == expected
        p = utils.predict_proba(model, tokenizer, pairs, max_length=64, batch_size=3)
        assert p.shape == (8,) and np.all((p > 0) & (p < 1))
        # scoring in length-sorted batches returns each pair's own score
        single = [utils.predict_proba(model, tokenizer, pairs.iloc[[i]], 64)[0] for i in range(len(pairs))]
        np.testing.assert_allclose(p, single, rtol=1e-4, atol=1e-5)


def test_bf16_scoring_keeps_fp32_logits_and_the_ranking(tmp_path):
    pairs = synthetic_pairs(8, seed=4)
    for folder, head in ((tiny_bert(tmp_path / "bert"), ["bert.pooler.dense", "classifier"]),
                         (tiny_bart(tmp_path / "bart"), ["classification_head.dense", "classification_head.out_proj"])):
        tokenizer, model = utils.load_model(folder)
        assert utils.head_layers(model) == [model.get_submodule(name) for name in head]
        prepared = utils.prepare_pairs(tokenizer, pairs, 64, batch_size=5)
        fp32, bf16 = utils.score_prepared(model, prepared), utils.score_prepared(model, prepared, bf16=True)
        np.testing.assert_allclose(bf16, fp32, atol=0.02)
        assert len(np.unique(bf16)) == len(np.unique(fp32)) == len(pairs)  # no ties from bf16 rounding
        assert not any("forward" in vars(layer) for layer in utils.head_layers(model))  # their own forward is back
        np.testing.assert_array_equal(utils.score_prepared(model, prepared), fp32)


def test_in_training_scoring_precision_follows_the_config(monkeypatch):
    monkeypatch.setattr(vf.device, "pick_device", lambda: torch.device("cpu"))
    for fast in (True, False):
        monkeypatch.setattr(vf.device, "cpu_has_fast_bf16", lambda: fast)
        assert utils.eval_bf16_enabled(utils.get_config("cpu")) is fast
        assert utils.eval_bf16_enabled(utils.get_config("cpu", bf16=not fast)) is (not fast)  # as training, when set
        assert utils.eval_bf16_enabled(utils.get_config("cpu", bf16=True, eval_bf16=False)) is False


def test_a_model_without_a_logits_layer_is_refused_for_bf16_scoring():
    model = torch.nn.Sequential(torch.nn.Linear(4, 5))
    model.config = BertConfig(num_labels=3)
    with pytest.raises(utils.ConfigError, match="does not end in a linear layer with 3 outputs"):
        utils.head_layers(model)


def test_truncation_cuts_only_the_document():
    tokenizer = utils.load_tokenizer()
    pairs = pd.DataFrame({"premise": ["word " * 500], "hypothesis": ["the summary stays whole"], "label": [2]})
    ids = utils.tokenize_pairs(tokenizer, pairs, max_length=64)[0]["input_ids"]
    assert len(ids) == 64
    assert tokenizer.decode(ids).endswith("word [SEP] the summary stays whole [SEP]")


def test_training_labels_use_the_models_ids(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path, CROSS_ENCODER_ORDER))
    features = utils.tokenize_pairs(tokenizer, synthetic_pairs(1, 0), 64,
                                    {utils.CONSISTENT: 1, utils.INCONSISTENT: 0})
    assert [f["labels"] for f in features] == [1, 0]  # entailment is id 1 in this order, not 2


def test_scheduler_warms_up_then_decays_to_zero(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path))
    pairs = synthetic_pairs(8, seed=2)  # 16 pairs / 4 = 4 updates
    cfg = small_config(warmup_ratio=0.5, lr=1e-3)
    history = utils.train(model, tokenizer, pairs, {"validation": synthetic_pairs(4, 3)}, cfg).history
    # update 0: 0; warmup over 2 updates; then linear decay to 0 at update 4
    np.testing.assert_allclose(history["lr"], [0.0, 5e-4, 1e-3, 5e-4, 0.0], atol=1e-12)


@pytest.mark.parametrize("n_docs, accum, expected_updates", [(5, 2, 2), (6, 3, 1), (7, 2, 2), (8, 1, 4)])
def test_accumulation_boundary_counts_the_last_partial_window(tmp_path, n_docs, accum, expected_updates):
    # 2 pairs per doc, batches of 4: 5 docs -> 3 batches -> windows [2, 1] -> 2 updates; 7 docs -> 4 batches -> 2
    tokenizer, model = utils.load_model(tiny_bert(tmp_path))
    cfg = small_config(grad_accum=accum, epochs=2)
    history = utils.train(model, tokenizer, synthetic_pairs(n_docs, 4), {"validation": synthetic_pairs(4, 3)}, cfg).history
    assert history["update"].iloc[-1] == 2 * expected_updates
    assert history["epoch"].iloc[-1] == 2.0


def test_selection_on_a_test_set_is_refused(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path))
    cfg = small_config(select_metric="test/roc_auc")
    with pytest.raises(ValueError, match="must name a validation set"):
        utils.train(model, tokenizer, synthetic_pairs(4, 0), {"test": synthetic_pairs(4, 1)}, cfg)


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown profile 'fast'.*\['cpu', 'gpu', 'original', 'smoke'\]"):
        utils.get_config("fast")


def test_tiny_end_to_end_run_beats_chance(tmp_path):
    utils.seed_everything(0)
    tokenizer, model = utils.load_model(tiny_bert(tmp_path))
    train, validation, test = synthetic_pairs(150, 10), synthetic_pairs(30, 11), synthetic_pairs(50, 12)
    cfg = small_config(batch_size=16, epochs=4, lr=2e-3, warmup_ratio=0.1, eval_every=10)
    history = utils.train(model, tokenizer, train, {"validation": validation}, cfg).history
    p = utils.predict_proba(model, tokenizer, test, cfg.max_length)
    metrics = utils.compute_metrics(test["label"] == utils.INCONSISTENT, p, test["doc_id"])
    assert history["validation/roc_auc"].iloc[0] < 0.8  # it had to learn
    assert metrics["roc_auc"] > 0.9
    assert metrics["choice_accuracy"] > 0.9


def test_class_weights_balance_the_classes_present():
    weights = utils.class_weights([0] * 6 + [2], num_labels=3)
    # 7 pairs, 2 classes present: 7 / (2 x 6) and 7 / (2 x 1); neutral is absent and weighs nothing
    np.testing.assert_allclose(weights.numpy(), [7 / 12, 0.0, 3.5], rtol=1e-6)


def test_training_label_map_includes_neutral_only_when_the_model_has_it():
    # NOT_ENTAILED (a binary NLI set's label) goes past the head's classes, where the loss sums neutral and contradiction
    assert utils.training_label_map(BertConfig(id2label=CROSS_ENCODER_ORDER)) == {2: 1, 0: 0, 1: 2, 3: 3}
    assert utils.training_label_map(BertConfig(id2label={0: "contradiction", 1: "entailment"})) == {2: 1, 0: 0, 3: 2}


def test_three_way_data_on_a_two_label_model_is_refused(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path, {0: "contradiction", 1: "entailment"}))
    pairs = synthetic_pairs(2, 0)
    pairs.loc[0, "label"] = utils.NEUTRAL
    with pytest.raises(ValueError, match="need classes the model lacks"):
        utils.train(model, tokenizer, pairs, {"validation": synthetic_pairs(2, 1)}, small_config())


def test_fib_negatives_option_is_checked():
    fib = {"train": "balanced split", "train_all": "every negative"}
    assert utils.fib_training_pairs(fib, utils.get_config("smoke", fib_negatives="all")) == "every negative"
    with pytest.raises(ValueError, match="fib_negatives must be one of"):
        utils.fib_training_pairs(fib, utils.get_config("smoke", fib_negatives="most"))


def test_a_model_missing_weights_is_named_and_the_packaged_new_head_explained(tmp_path, capsys):
    from transformers import BertModel
    tokenizer = utils.load_tokenizer()
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, id2label=MNLI_ORDER, label2id={v: k for k, v in MNLI_ORDER.items()})
    BertModel(config).save_pretrained(tmp_path)  # an encoder without the classification head
    tokenizer.save_pretrained(tmp_path)
    utils.load_model(tmp_path)
    assert "lacks ['classifier.bias', 'classifier.weight']" in capsys.readouterr().out
    utils.load_model()
    assert capsys.readouterr().out.startswith("MiniLM loaded with a new 3-label head")


def test_batches_can_be_padded_to_a_multiple_for_fewer_shapes(tmp_path):
    tokenizer, model = utils.load_model(tiny_bert(tmp_path))
    features = utils.tokenize_pairs(tokenizer, synthetic_pairs(6, 0), 64, utils.training_label_map(model.config))
    cfg = small_config()
    for pad, allowed in ((None, None), (16, {16, 32, 48, 64})):
        _, loader = utils._training_batches(features, tokenizer, cfg, utils.torch.device("cpu"), 0, 1, pad)
        lengths = {batch["input_ids"].shape[1] for batch in loader}
        assert lengths <= allowed if allowed else max(lengths) == max(len(f["input_ids"]) for f in features)

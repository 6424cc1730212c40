"""The notebooks' and scripts' one import: the public names of the vf/ package, which holds all the code.

The data flow, and the file that holds each step (each imports only from the files above it):

    config       Config, profiles, label values          device     CPU/GPU, bf16, torchrun
    io           raw files, DataError                    reading    sentences, evidence, window cut, tokenising
    model        load / save the NLI cross-encoder       splits     by document, balanced, no leakage
    sources      FIB, SummEdits, SICK, USB, CNN/DM       nli        the seven NLI sets, split by premise
    edits        synthetic negatives: number, date, name and negation swaps (FactCC's rules)
    metrics      the metric registry, thresholds         scoring    P(inconsistent) from prepared batches
    checkpoints  resumable runs                          results    metrics.csv, run ids, small tables
    evaluate     Evaluator, per-split tables             uncertainty, plots, study (over seeds)
    train        the hand-written loop                   stages     NLI base, out-of-domain, FIB: built once each
    curve        the learning curve over FIB documents   shortcut   who wrote a summary vs whether it is true
    claims       Reading: how the detector reads pairs   calibration  a user's own threshold, pairs needed
    detector     HallucinationDetector.score(documents, summaries), .calibrate(...)
    recipe       the detector's mix: one table of parts  judge      sets never seen, thresholds, speed, model card
    guardrail    the shipped detector's stages and build

Where a change goes: a new data source in sources.py (nli.py for an NLI set, with its licence in NLI_SETS) and, to
pre-finetune on it, its name in OOD_SOURCES there, or to train the detector on it, one Part in recipe.DETECTOR_MIX;
a size or condition of the learning curve, one line in curve.py (CURVE_SIZES, CURVE_CONDITIONS); a new metric in
metrics.py (METRICS); a new reading mode or aggregation in claims.py (MODES, AGGREGATIONS).
Errors: DataError (bad input data) and ConfigError (a setting that cannot work) say what, where and how to fix it.
"""
from vf.config import (
    CONSISTENT, Config, ConfigError, INCONSISTENT, NEUTRAL, NOT_ENTAILED, PROFILES, REPO_DIR, SPLIT_SEED, get_config,
    seed_everything)
from vf.device import (
    bf16_fits, cpu_has_fast_bf16, cpu_model, device_description, eval_bf16_enabled, join_process_group, pick_device)
from vf.io import DataError, data_dir
from vf.reading import document_windows, fit_pairs, select_evidence, split_sentences, tokenize_pairs
from vf.model import (
    PACKAGED_MINILM, label_ids, load_model, load_tokenizer, save_model, training_label_map, weights_digest,
)
from vf.splits import assert_no_document_leakage, limit_documents, save_splits, shuffle_labels, subsample
from vf.sources import (
    OOD_SOURCES, fib_pairs, fib_splits, find_or_fetch_usb, load_fib, load_fib_cnn_dm, load_fib_other,
    load_fib_raw, load_ood_source, load_sick, load_summedits, load_usb, sick_splits, summedits_splits,
    usb_available, usb_splits)
from vf.nli import NLI_SETS, load_nli, nli_splits
from vf.metrics import (
    HIST_BINS, THRESHOLDS, best_f1_threshold, choice_accuracy, compute_metrics, js_divergence,
    precision_recall_at, threshold_for_precision)
from vf.scoring import head_layers, predict_proba, prepare_pairs, score_prepared
from vf.checkpoints import checkpoint_history
from vf.results import (
    SUMMARY_COLUMNS, append_metrics, config_hash, git_commit, latest_run, latest_scores, read_json, settings,
    study_folder, summary_table, upsert_rows)
from vf.evaluate import (
    Evaluator, compare_head_readings, evaluate_condition, evaluate_splits, guardrail_table, score_splits,
    split_sizes)
from vf.uncertainty import DocumentTable, STUDY_METRICS, bootstrap_study
from vf.plots import CLASS_COLORS, condition_color, finish_roc_axes, plot_compare, plot_eval, plot_history, save_figure
from vf.study import (
    BEFORE_NLI, per_seed_metrics, plot_study, seed_interval, study_conditions, study_table,
    write_study_summary)
from vf.train import TrainResult, _training_batches, class_weights, pair_loss, param_groups, train
from vf.stages import (
    Stage, build_nli_base, ensure_nli_base, fib_stage, fib_training_pairs, finetune_fib, keep_nli_base, kept_nli_base,
    kept_weights, nli_results_folder, nli_training_pairs, out_of_domain_config, out_of_domain_stage, restore_nli_base,
    run_stage)
from vf.edits import EDITS, corrupt, synthetic_negatives
from vf.claims import Reading
from vf.detector import HallucinationDetector, compare_readings
from vf.shortcut import shortcut_check, shortcut_frame, shortcut_row, shortcut_table
from vf.recipe import (
    CLAIM_FAMILIES, CLAIM_PARTS, DETECTOR_MIX, MixSources, Part, build_mix, claim_part, detector_mix, leave_family_out,
    mix_validation, mix_validation_names, recipe_parts, weighted)
from vf.judge import (
    choose_thresholds, decision_table, evaluation_sets, held_out_domain_table, model_card, never_trained_on,
    reading_table, recipe_table, source_table, speed_table, system_table, threshold_table, unsupported_examples,
    validation_frame)
from vf.guardrail import (
    SUMMEDITS_DOMAINS, build_detector, detector_stage, ensure_detector, limit_summedits, replay_pairs,
    summedits_held_out, summedits_stage)
from vf.calibration import Calibration, calibrate_threshold, pairs_needed
from vf.curve import (
    CURVE_CONDITIONS, CURVE_LIFTS, CURVE_SIZES, curve_cells, curve_folder, curve_summary, documents_worth, fib_subset,
    curve_table, plot_curve, seeds_per_cell, summarise_curve, worth_table)

import torch  # tests patch utils.torch.cuda

# __all__: what the notebooks and scripts use; the tests also reach ConfigError, DataError, THRESHOLDS,
# append_metrics, best_f1_threshold, choice_accuracy, choose_thresholds, class_weights, compute_metrics, config_hash,
# cpu_model, document_windows, head_layers, js_divergence, label_ids, load_fib, load_fib_other, load_sick,
# load_usb, out_of_domain_config, pair_loss, precision_recall_at, shuffle_labels, sick_splits, split_sentences,
# usb_available
__all__ = [
    "assert_no_document_leakage", "BEFORE_NLI", "bf16_fits", "bootstrap_study", "build_detector", "build_mix",
    "build_nli_base", "calibrate_threshold", "Calibration", "checkpoint_history", "CLAIM_FAMILIES", "claim_part",
    "CLAIM_PARTS", "CLASS_COLORS", "compare_head_readings", "compare_readings", "condition_color", "Config",
    "CONSISTENT", "corrupt", "cpu_has_fast_bf16", "curve_cells", "CURVE_CONDITIONS", "curve_folder", "CURVE_LIFTS",
    "CURVE_SIZES", "curve_summary", "curve_table", "data_dir", "decision_table", "DETECTOR_MIX", "detector_mix",
    "detector_stage", "device_description", "documents_worth", "DocumentTable", "EDITS", "ensure_detector",
    "ensure_nli_base", "eval_bf16_enabled", "evaluate_condition", "evaluate_splits", "evaluation_sets", "Evaluator",
    "fib_pairs", "fib_splits", "fib_stage", "fib_subset", "fib_training_pairs", "find_or_fetch_usb", "finetune_fib",
    "finish_roc_axes", "fit_pairs", "get_config", "git_commit", "guardrail_table", "HallucinationDetector",
    "held_out_domain_table", "HIST_BINS", "INCONSISTENT", "join_process_group", "keep_nli_base", "kept_nli_base",
    "kept_weights", "latest_run", "latest_scores", "leave_family_out", "limit_documents", "limit_summedits",
    "load_fib_cnn_dm", "load_fib_raw", "load_model", "load_nli", "load_ood_source", "load_summedits",
    "load_tokenizer", "mix_validation", "mix_validation_names", "MixSources", "model_card", "NEUTRAL",
    "never_trained_on", "nli_results_folder", "NLI_SETS", "nli_splits", "nli_training_pairs", "NOT_ENTAILED",
    "OOD_SOURCES", "out_of_domain_stage", "PACKAGED_MINILM", "pairs_needed", "param_groups", "Part", "pick_device",
    "plot_compare", "plot_curve", "plot_eval", "plot_history", "predict_proba", "prepare_pairs", "PROFILES",
    "read_json", "Reading", "reading_table", "recipe_parts", "recipe_table", "replay_pairs", "REPO_DIR",
    "restore_nli_base", "run_stage", "save_figure", "save_model", "save_splits", "score_prepared", "score_splits",
    "seed_everything", "seeds_per_cell", "select_evidence", "settings", "shortcut_check", "shortcut_frame",
    "shortcut_row", "shortcut_table", "source_table", "speed_table", "SPLIT_SEED", "split_sizes", "Stage",
    "study_conditions", "study_folder", "STUDY_METRICS", "study_table", "subsample", "summarise_curve",
    "SUMMARY_COLUMNS", "summary_table", "SUMMEDITS_DOMAINS", "summedits_held_out", "summedits_splits",
    "summedits_stage", "synthetic_negatives", "system_table", "threshold_for_precision", "threshold_table",
    "tokenize_pairs", "train", "_training_batches", "training_label_map", "TrainResult", "unsupported_examples",
    "upsert_rows", "usb_splits", "validation_frame", "weighted", "weights_digest", "worth_table",
    "write_study_summary"]

"""Visualizing Finetunes: a small NLI cross-encoder that flags summaries inconsistent with their document.

    from vf import HallucinationDetector
    detector = HallucinationDetector.from_pretrained("models/detector")
    detector.score(documents, summaries)          # P(inconsistent) per pair
    detector.calibrate(documents, summaries, labels, target_precision=0.8)   # a threshold for your own data

The command line: python -m vf score PAIRS.jsonl --model models/detector. The notebooks import utils.py, which
lists the package's files and public names.
"""
from .detector import HallucinationDetector
from .calibration import Calibration

__all__ = ["HallucinationDetector", "Calibration"]

"""The same short real run in two checkouts (before and after a refactor) must give the same history, weights and
scores: 48 FIB training pairs, 60 validation pairs, seed 0, CPU, fp32.

    cd CHECKOUT && PYTHONPATH=. OMP_NUM_THREADS=1 python -m bench.same_run history.csv   # then diff the two files
"""
import hashlib, sys
import pandas as pd
import utils
cfg = utils.get_config("smoke", epochs=2, eval_every=3, bf16=False, select_metric="validation/roc_auc")
utils.seed_everything(cfg.seed)
tokenizer, model = utils.load_model()
fib = utils.fib_splits()
out = utils.train(model, tokenizer, fib["train"].head(48), {"validation": fib["validation_all"].head(60)}, cfg)
history = out if isinstance(out, pd.DataFrame) else out.history
digest = hashlib.sha256(b"".join(v.detach().numpy().tobytes() for v in model.state_dict().values())).hexdigest()
p = utils.predict_proba(model, tokenizer, fib["test_all"].head(100), cfg.max_length, 16, False)
history.drop(columns="seconds").to_csv(sys.argv[1], index=False)
print("weights", digest, "scores", hashlib.sha256(p.tobytes()).hexdigest()[:16])

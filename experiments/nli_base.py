"""An NLI base, restored from its kept compact weights where the repository holds them, else trained here.

    python -m experiments.nli_base [--rebuild] [--profile cpu] [--set nli_sets="('mnli','rte')" ...]
    python -m experiments.nli_base --full [--rebuild]    # models/nli_full: the detector's base (make nli-full)
    python -m experiments.nli_base --full --keep         # after a rebuild: keep its compact weights in git

models/nli_base (make nli-base) is the base the learning curve starts from (kept in results/study/curve/base/), so
that every notebook shares it. --full is the detector's base: every pair of every set, Climate-FEVER's claims too,
for up to 3 epochs with patience on held-out NLI (kept in results/nli_full/kept/). Per-set validation
accuracy goes to results/nli/validation.csv (results/nli_full/), the stage's history and timing beside it.
"""
import utils
from experiments import common
from vf.stages import nli_base_folder

# the full stage: every pair (not 6,000 per set), the claim-level NLI set too, as many epochs as held-out NLI rises
FULL = dict(nli_max_pairs_per_set=None, nli_epochs=3,
            nli_sets=("mnli", "snli", "anli", "fever_nli", "mctest_nli", "rte", "climate_fever"))


def main():
    parser = common.parser_with_config(__doc__)
    parser.add_argument("--rebuild", action="store_true", help="train the NLI base here even where one is kept")
    parser.add_argument("--full", action="store_true", help="the full NLI stage, into models/nli_full")
    parser.add_argument("--keep", action="store_true", help="keep the built base's compact weights and record")
    args = parser.parse_args()
    cfg = utils.get_config(args.profile, **{**(FULL if args.full else {}), **common.parse_overrides(args.set)})
    utils.seed_everything(cfg.seed)
    fib = utils.limit_documents(utils.fib_splits(), cfg.max_docs)
    name = "nli_full" if args.full else "nli_base"
    folder = nli_base_folder(cfg, name)
    if args.keep:
        if not (folder / "model.safetensors").exists():
            raise SystemExit(f"--keep: {folder} holds no model; build it first (--rebuild).")
        print("kept in", utils.keep_nli_base(cfg, folder, name))
        return
    if args.rebuild or not utils.kept_weights(cfg, name).exists():
        folder = utils.build_nli_base(cfg, fib, name)
    else:
        folder = utils.restore_nli_base(cfg, fib, name)
    print("saved to", folder)


if __name__ == "__main__":
    main()

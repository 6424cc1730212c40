"""Raw data from its public origin, for a machine without a local data folder: each set's repository at a pinned
commit, the files the loaders read with their sha256 (data_checksums.json), and its licence, said at download.
A file is downloaded beside its place as <name>.part, checked, and only then renamed into data/raw/. The NLI sets
are converted from their origins' formats (CONVERTED): each converted file's content (premise, hypothesis, label and
original label of every row) must hash to the project's copy, else nothing is kept.

    python -m vf.fetch          # every set up front (make data)
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .config import DATA_DIR_ENV, GENERATED_DIR, DataError

RAW_DIR = GENERATED_DIR / "raw"  # laid out like ../shared/data; git-ignored
MIRROR_ENV = "VF_DATA_MIRROR"  # a base URL standing in for https://raw.githubusercontent.com (a mirror, or tests)
GITHUB_RAW = "https://raw.githubusercontent.com"
_SUMS = json.loads((Path(__file__).with_name("data_checksums.json")).read_text())
CHECKSUMS, CONTENT = _SUMS["files"], _SUMS["content"]  # sha256 of a file; of a converted file's rows (content_digest)


@dataclasses.dataclass(frozen=True)
class Origin:
    """One set's public origin: a GitHub repository at a pinned commit, the folder its files come from, the folder
    under the data folder they go to (the files are those data_checksums.json lists there), and the set's licence."""
    name: str
    repo: str
    commit: str
    source: str
    target: str
    licence: str
    restricted: bool = False  # non-commercial or research use only: said before it is downloaded

    def files(self) -> list[str]:
        """The target paths of this set: the checksummed files directly in its target folder."""
        return sorted(p for p in CHECKSUMS if str(Path(p).parent) == self.target)

    def url(self, path: str) -> str:
        base = os.environ.get(MIRROR_ENV, GITHUB_RAW).rstrip("/")
        return f"{base}/{self.repo}/{self.commit}/{'/'.join(filter(None, [self.source, Path(path).name]))}"


FIB = ("r-three/fib", "53cf4364cbba14845ecdc79f8a1ee3d2c8e3e6e4")
ORIGINS = (
    Origin("FIB XSum", *FIB, "multiple_choice-dataset/xsum/fib", "fib/xsum", "CC BY 4.0"),
    Origin("FIB CNN/DM", *FIB, "multiple_choice-dataset/cnn_dm/fib", "fib/cnn_dm", "CC BY 4.0"),
    *(Origin(f"FIB XSum {part}", *FIB, f"multiple_choice-dataset/xsum/{part}", f"fib/xsum_other/{part}", "CC BY 4.0")
      for part in ("factcc", "mfma", "fir", "factually_consistent-model_generated")),
    Origin("SummEdits", "salesforce/factualNLG", "639f58a55baf34b32fe4b0137c062735fa9e360a", "data/summedits",
           "summedits", "Apache-2.0"),
    Origin("SICK", "kkalouli/SICK-processing", "b55cf253c6ae9f5b5c9b287184e34147a5d7fc67", "", "sick",
           "CC BY-NC-SA 3.0: non-commercial use only", restricted=True),
)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def download(url: str, dest: Path, sha256: str | None, timeout: float = 60) -> Path:
    """Download url to dest through dest.part: renamed into place only when its sha256 is the expected one (None: an
    origin file whose conversion is checked instead), so that an interrupted or altered download is never read."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise DataError(f"could not download {url} ({e}).") from None
    if sha256 is not None and digest.hexdigest() != sha256:
        part.unlink()
        raise DataError(f"{url}: sha256 {digest.hexdigest()[:12]}..., expected {sha256[:12]}... (data_checksums.json): "
                        "the file at the origin is not the one this project was built on. Nothing was kept.")
    os.replace(part, dest)
    return dest


def origin_of(path: str) -> Origin | None:
    return next((o for o in ORIGINS if path in o.files()), None)


# ----------------------------------------------------------------------------- converted sets (the NLI sets)

def nli_row(premise: str, hypothesis: str, label_orig: str, split: str, source: str, id_: str) -> dict:
    """One row of nli/: label 1 = not entailed, 0 = entailed, the set's own label kept."""
    return dict(premise=premise, hypothesis=hypothesis, label=int(label_orig != "entailment"), label_orig=label_orig,
                split=split, source=source, id=id_)


def from_docnli(texts: list[str], target: str, prefix: str, source: str) -> list[dict]:
    """DocNLI's tab-separated `label<TAB>premise<TAB>hypothesis` lines."""
    name = Path(source).name
    rows = [line.split("\t") for line in texts[0].splitlines() if line.strip()]
    return [nli_row(p, h, label, Path(target).stem, source, f"{prefix}-{name}-{i}")
            for i, (label, p, h) in enumerate(rows)]


E_N_C = {"e": "entailment", "n": "neutral", "c": "contradiction"}


def from_anli(texts: list[str], target: str) -> list[dict]:
    """ANLI's jsonl: uid, context (the premise), hypothesis, label e / n / c."""
    records = [json.loads(line) for line in texts[0].splitlines() if line.strip()]
    return [nli_row(r["context"], r["hypothesis"], E_N_C[r["label"]], Path(target).stem, "anli_v1.0", r["uid"])
            for r in records]


def from_control(texts: list[str], target: str) -> list[dict]:
    """ConTRoL's jsonl: uid, premise, hypothesis, label e / n / c."""
    split = Path(target).stem
    records = [json.loads(line) for line in texts[0].splitlines() if line.strip()]
    return [nli_row(r["premise"], r["hypothesis"], E_N_C[r["label"]], split, "ConTRoL",
                    f"control-{split}-{r['uid']}") for r in records]


def from_glue_rte(texts: list[str], target: str) -> list[dict]:
    """GLUE's RTE tsv: index, sentence1, sentence2, label, under a header line; no quoting."""
    split = Path(target).stem
    reader = csv.DictReader(io.StringIO(texts[0]), delimiter="\t", quoting=csv.QUOTE_NONE)
    return [nli_row(r["sentence1"], r["sentence2"], r["label"], split, "GLUE RTE", f"rte-{split}-{i}")
            for i, r in enumerate(reader)]


def detokenize(text: str) -> str:
    """SNLI's PTB-tokenised sentences with the spaces before punctuation and clitics removed."""
    text = re.sub(r" ([.,!?;:%)])", r"\1", text.strip())
    return re.sub(r" (n't|'(?:s|re|ve|m|ll|d)\b)", r"\1", text)


def from_esnli(texts: list[str], target: str) -> list[dict]:
    """e-SNLI's aligned premise, hypothesis and label files (one line each per pair)."""
    split = Path(target).stem
    premises, hypotheses, labels = (t.splitlines() for t in texts)
    return [nli_row(detokenize(p), detokenize(h), label.strip(), split, f"e-SNLI (SNLI 1.0 {split})",
                    f"snli-{split}-{i}") for i, (p, h, label) in enumerate(zip(premises, hypotheses, labels))]


@dataclasses.dataclass(frozen=True)
class Converted:
    """A set converted from its origin's files: each target file from one or more origin files (paths in the
    repository) by `convert` (origin texts, target path) -> rows."""
    name: str
    repo: str
    commit: str
    files: dict
    convert: object
    licence: str
    restricted: bool = False

    def url(self, path: str) -> str:
        return f"{os.environ.get(MIRROR_ENV, GITHUB_RAW).rstrip('/')}/{self.repo}/{self.commit}/{path}"


DOCNLI = ("salesforce/DocNLI", "492992a4d3fbf4bb96a7a48c4c6c95ee11c3234a")
CONVERTED = (
    Converted("MNLI (binary, DocNLI)", *DOCNLI, {f"nli/mnli/{s}.jsonl": (f"Data/binary-MNLI/{s}.txt",)
                                                   for s in ("dev", "test")},
              lambda t, target: from_docnli(t, target, "binary_mnli",
                                            f"DocNLI/Data/binary-MNLI/{Path(target).stem}.txt"),
              "DocNLI BSD-3; MultiNLI text OANC (some genres CC BY-SA 3.0)"),
    Converted("FEVER-NLI (DocNLI)", *DOCNLI, {f"nli/fever_nli/{s}.jsonl": (f"Data/binary-FEVER-NLI/{s}.txt",)
                                                for s in ("dev", "test")},
              lambda t, target: from_docnli(t, target, "binary_fever_nli",
                                            f"DocNLI/Data/binary-FEVER-NLI/{Path(target).stem}.txt"),
              "DocNLI BSD-3; FEVER CC BY-SA 3.0"),
    Converted("MCTest-NLI (DocNLI)", *DOCNLI,
              {f"nli/mctest_nli/{s}.jsonl": (f"Data/MCTest-NLI/{s}_in_entail.txt",)
               for s in ("mc160.train", "mc160.dev", "mc160.test", "mc500.dev", "mc500.test")},
              lambda t, target: from_docnli(t, target, "mctest_nli",
                                            f"DocNLI/Data/MCTest-NLI/{Path(target).stem}_in_entail.txt"),
              "DocNLI BSD-3; MCTest research licence: research use only", restricted=True),
    Converted("ANLI", "eric11eca/curriculum-ling", "1c79904f9be35204e1bd8c760fea5c8180d10b39",
              {f"nli/anli/R{r}_{s}.jsonl": (f"data/anli_v1.0/R{r}/{s}.jsonl",)
               for r in (1, 2, 3) for s in ("dev", "test")},
              from_anli, "CC BY-NC 4.0: non-commercial use only", restricted=True),
    Converted("ConTRoL", "csitfun/ConTRoL-dataset", "d7acc335bef6c716f2830e1413d0d90c133ad6e9",
              {f"nli/control/{s}.jsonl": (f"data/{s}.jsonl",) for s in ("dev", "test")}, from_control,
              "CC BY-NC-SA 4.0: non-commercial use only", restricted=True),
    Converted("RTE (GLUE)", "marcwww/nlu_eval", "ccd55c37de74ebd86c70ae58f67dceb0aa444f43",
              {f"nli/rte/{s}.jsonl": (f"data/RTE/{s}.tsv",) for s in ("train", "dev")}, from_glue_rte,
              "PASCAL RTE via GLUE: research use only", restricted=True),
    Converted("SNLI (e-SNLI)", "OanaMariaCamburu/e-SNLI", "7b585a3f077fdea899780eb0473940522ae44a2e",
              {f"nli/snli/{s}.jsonl": tuple(f"dataset/eSNLI/{f}.{s}" for f in ("s1", "s2", "labels"))
               for s in ("dev", "test")}, from_esnli, "CC BY-SA 4.0"),
)


# ----------------------------------------------------------------------------- converted claim sets

# target file -> [[id, group_id], ...]: the rows the project kept from its origin (rows overlapping reserved
# benchmarks, repeats and rows without a label left out: each set's PROVENANCE.md) and the group each is split by.
# Ids and groups only, no text.
KEPT = json.loads(gzip.decompress(Path(__file__).with_name("claims_kept.json.gz").read_bytes()))


def premise_id(premise: str) -> str:
    """The claim sets' doc_id: SHA-1 of the premise's lower-cased alphanumeric words (first 16 hex)."""
    return hashlib.sha1(" ".join(re.findall(r"[a-z0-9]+", premise.lower())).encode()).hexdigest()[:16]


def kept_rows(parsed: dict[str, dict], target: str, label_of) -> list[dict]:
    """The origin's rows (by id) that the project kept, in its order, with their label, group and doc_id."""
    missing = [id_ for id_, _ in KEPT[target] if id_ not in parsed]
    if missing:
        raise DataError(f"{target}: {len(missing)} of the project's rows are not in the origin's files (e.g. "
                        f"{missing[0]}): the origin is not the one this project was built on. Nothing was kept.")
    return [{**parsed[id_], "label": label_of(parsed[id_]["label_orig"]), "id": id_,
             "doc_id": premise_id(parsed[id_]["premise"]), "group_id": group} for id_, group in KEPT[target]]


def from_factcheck(texts: list[str], target: str) -> list[dict]:
    """Factcheck-GPT's claim-evidence stance jsonl: claim, evidence, stance; only completely-support is supported."""
    records = [json.loads(line) for line in texts[0].splitlines() if line.strip()]
    parsed = {f"factcheck_gpt-{i}": dict(premise=r["evidence"], hypothesis=r["claim"], label_orig=r["stance"],
                                         domain="web_claims") for i, r in enumerate(records)}
    return kept_rows(parsed, target, lambda stance: int(stance != "completely-support"))


def from_begin(texts: list[str], target: str) -> list[dict]:
    """BEGIN's tsv (model_name, data_source, knowledge, message, response, begin_label), no quoting: the response
    against its knowledge snippet; only "Fully attributable" is supported."""
    split = Path(target).stem
    reader = csv.DictReader(io.StringIO(texts[0]), delimiter="\t", quoting=csv.QUOTE_NONE)
    parsed = {f"begin-{split}-{i}": dict(premise=r["knowledge"], hypothesis=r["response"], label_orig=r["begin_label"],
                                        domain="dialogue", model=r["model_name"], data_source=r["data_source"],
                                        history=r["message"]) for i, r in enumerate(reader)}
    return kept_rows(parsed, target, lambda label: int(label != "Fully attributable"))


def from_climate_fever(texts: list[str], target: str) -> list[dict]:
    """Climate-FEVER's jsonl: each claim against each of its evidence sentences (and the sentence's article); only
    SUPPORTS is supported."""
    parsed = {}
    for line in texts[0].splitlines():
        if line.strip():
            r = json.loads(line)
            for j, e in enumerate(r["evidences"]):
                parsed[f"climate_fever-{r['claim_id']}-{j}"] = dict(
                    premise=e["evidence"], hypothesis=r["claim"], label_orig=e["evidence_label"],
                    domain="climate_claims", article=e["article"])
    return kept_rows(parsed, target, lambda label: int(label != "SUPPORTS"))


FAITHDIAL_FILES = tuple(f"data-audit/{model}/{model.lower()}_processed_{source}.csv" for model, sources in (
    ("CTRL", ("cmu", "topicalchat", "wow")), ("DoHA", ("cmu", "topical", "wow")), ("GPT2", ("cmu", "topical", "wow")))
    for source in sources) + tuple(f"data-audit/gold/{source}.csv" for source in ("cmu", "topical", "wow"))


def faithdial_label(label: str) -> int:
    """FaithDial's BEGIN-taxonomy label (its case and spelling vary): entailment alone is supported."""
    return int(label.strip().lower() != "entailment")


def from_faithdial(texts: list[str], target: str) -> list[dict]:
    """FaithDial's audit CSVs, one per model and source (knowledge or evidence, history, the response, the BEGIN
    label): each response against its knowledge snippet."""
    parsed = {}
    for path, text in zip(FAITHDIAL_FILES, texts):
        folder, stem = Path(path).parent.name, Path(path).stem
        reader = csv.DictReader(io.StringIO(text))
        premise = "knowledge" if "knowledge" in reader.fieldnames else "evidence"
        label = "begin_label" if "begin_label" in reader.fieldnames else "BEGIN"
        response = next(c for c in reader.fieldnames if c not in (premise, "history", label, "vrm_label", "VRM"))
        source = stem.rsplit("_", 1)[-1].replace("topicalchat", "topical")
        model = "gold (human)" if folder == "gold" else folder.lower()
        for i, r in enumerate(reader):
            parsed[f"faithdial-{folder}-{stem}-{i}"] = dict(
                premise=r[premise], hypothesis=r[response], label_orig=r[label], domain="dialogue", model=model,
                data_source=source, history=r["history"])
    return kept_rows(parsed, target, faithdial_label)


LFQA_SETTINGS = ("alpaca", "alpaca_wdoc", "gpt3", "gpt3_wdoc", "gpt3_whudoc", "webgpt")


def lfqa_docs(setting: str) -> str:
    """The evidence documents a setting's answers were annotated against: the human answerers' documents for
    gpt3_whudoc (its answers were generated from them), WebGPT's for the others (LFQA's PROVENANCE.md)."""
    return "docs-human.json" if setting == "gpt3_whudoc" else "docs-webgpt.json"


def from_lfqa(texts: list[str], target: str) -> list[dict]:
    """LFQA-Verification's annotations (per question, each answer sentence with 3 annotators' labels) against the
    question's documents, each as its title and text: the majority label (supported; not_supported or partially:
    not supported), sentences without a majority left out."""
    setting = Path(target).stem
    docs = {q["question"]: q for q in json.loads(texts[1])}
    parsed = {}
    for entry in json.loads(texts[0]):
        if entry["question"] not in docs:
            raise DataError(f"{target}: question {entry['question'][:60]!r} has no documents in {lfqa_docs(setting)}.")
        question = docs[entry["question"]]
        premise = "\n\n".join(f"{d['title']}\n{d['text']}" for d in question["docs"])
        for j, a in enumerate(entry["annotations"]):
            votes = a["labels"]
            majority = next((v for v in set(votes) if votes.count(v) >= 2), None)
            if majority is not None:
                parsed[f"lfqa-{setting}-{question['question_id']}-{j}"] = dict(
                    premise=premise, hypothesis=a["answer"], label_orig=majority, domain="lfqa",
                    question_id=question["question_id"], question=entry["question"], docs_file=lfqa_docs(setting),
                    annotator_labels=votes)
    return kept_rows(parsed, target, lambda label: int(label != "supported"))


# DialSummEval's model ids (its paper's table): the reference, two extractive baselines, then the systems
DIALSUMMEVAL_SYSTEMS = dict(zip("ABCDEFGHIJKLMN", (
    "GOLD", "LONGEST_3", "LEAD_3", "PGN", "Transformer", "BART", "PEGASUS", "UniLM", "CODS", "ConvoSumm", "MV_BART",
    "PLM", "PNEP", "S_BART")))


def from_dialsummeval(texts: list[str], target: str) -> list[dict]:
    """DialSummEval's expert judgments: the dialogue one turn a line, the summary as released, the mean of the 3
    experts' consistency ratings (<= 2 inconsistent, >= 4.5 consistent; the kept rows are those two ends)."""
    parsed = {}
    for line in texts[0].splitlines():
        if line.strip():
            r = json.loads(line)
            scores = [a["consistency"] for a in r["annotations"]]
            mean = sum(scores) / len(scores)
            parsed[f"dialsummeval-{r['id']}-{r['model_id']}"] = dict(
                premise="\n".join(t.strip() for t in r["dialogue"].split("|") if t.strip()), hypothesis=r["summary"],
                label_orig=f"expert consistency {scores} mean {mean:.2f}", domain="dialogue_summ",
                system=DIALSUMMEVAL_SYSTEMS[r["model_id"]], model_id=r["model_id"],
                consistency_mean=round(mean, 4))
    return kept_rows(parsed, target, lambda label: int(float(label.rsplit(" ", 1)[1]) <= 2))


CLAIMS = (
    Converted("Factcheck-GPT", "yuxiaw/Factcheck-GPT", "a9e6a04a953ad880806529c504a679dd1ad06528",
              {"claims/factcheck_gpt/subtask3.jsonl": ("subtasks/subtask3_claim_evidence_stance.jsonl",)},
              from_factcheck, "Apache-2.0; evidence is third-party web text: research use", restricted=True),
    Converted("BEGIN", "google/BEGIN-dataset", "6e65f0d5a1ed1b9574643a7640ff1678d4e979b5",
              {f"claims/begin/{split}_{src}.jsonl": (f"{folder}/begin_{split}_{src}.tsv",)
               for split, src, folder in (("dev", "cmu", "cmu-dog"), ("dev", "tc", "topicalchat"),
                                          ("dev", "wow", "wow"), ("test", "wow", "wow"))},
              from_begin, "CC BY 4.0 (WoW, CMU-DoG) / CDLA-Sharing 1.0 (TopicalChat)"),
    Converted("Climate-FEVER", "tdiggelm/climate-fever-dataset", "03de61617b10a5c1935f8e08bb0e8ac1ee775356",
              {"claims/climate_fever/climate_fever.jsonl": ("dataset/climate-fever.jsonl",)}, from_climate_fever,
              "no licence stated: research use; Wikipedia CC BY-SA 3.0", restricted=True),
    Converted("FaithDial (audit)", "McGill-NLP/FaithDial", "25671c6e3aa7d667943b7744a2b91507e7187f83",
              {"claims/faithdial_audit/audit.jsonl": FAITHDIAL_FILES}, from_faithdial,
              "MIT; WoW CC BY 4.0, CMU-DoG and Topical-Chat CDLA-Sharing 1.0"),
    Converted("LFQA-Verification", "timchen0618/LFQA-Verification", "4e905be93fbe919082d62faa77ee32c68e90237c",
              {f"claims/lfqa/{s}.jsonl": (f"data/annotations/annotations-{s}.json", f"data/docs/{lfqa_docs(s)}")
               for s in LFQA_SETTINGS}, from_lfqa, "no licence stated: research use", restricted=True),
    Converted("DialSummEval", "kite99520/DialSummEval", "667118e10ae69ef8cbc5cbddec0ce91b5c9c6187",
              {"dialsummeval/human_judgment.jsonl": ("annotation_campus/human_judgment.jsonl",)}, from_dialsummeval,
              "no licence stated: research use; SAMSum dialogues CC BY-NC-ND 4.0: non-commercial", restricted=True),
)
CONVERTED = CONVERTED + CLAIMS


def content_digest(rows: list[dict]) -> str:
    """sha256 of the fields the loaders read, row by row: premise, hypothesis, label, original label, and the group a
    claim set splits by."""
    text = "\n".join(json.dumps([r["premise"], r["hypothesis"], r["label"], r["label_orig"],
                                 *([r["group_id"]] if "group_id" in r else [])], ensure_ascii=False) for r in rows)
    return hashlib.sha256(text.encode()).hexdigest()


def converted_of(path: str) -> Converted | None:
    return next((c for c in CONVERTED if path in c.files), None)


def convert_into(converted: Converted, target: str, timeout: float = 60) -> Path:
    """Download the origin files of one target file, convert them, check the rows' content digest, write it."""
    texts = []
    for source in converted.files[target]:
        cached = RAW_DIR / ".origin" / converted.repo / converted.commit / source
        if not cached.exists():
            download(converted.url(source), cached, None, timeout)
        texts.append(cached.read_text(encoding="utf-8"))
    rows = converted.convert(texts, target)
    if content_digest(rows) != CONTENT[target]:
        raise DataError(f"{target}: converted from {converted.repo}@{converted.commit[:7]}, its {len(rows)} rows "
                        "differ from the project's copy (content digest in data_checksums.json). Nothing was kept.")
    dest = RAW_DIR / target
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    part.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(part, dest)
    return dest


def fetched(relative: str) -> Path:
    """RAW_DIR/relative, with every file of a known origin under it downloaded first (a file or a folder); a clear
    error, naming the missing files and both ways to get them, where that cannot be done."""
    under = lambda p: p == relative or p.startswith(relative.rstrip("/") + "/")  # noqa: E731
    wanted = [p for p in CHECKSUMS if under(p) and origin_of(p)] + [p for c in CONVERTED for p in c.files if under(p)]
    missing = [p for p in wanted if not (RAW_DIR / p).exists()]
    if not wanted:
        raise DataError(f"{relative}: this repository knows no public origin it can download it from. Set "
                        f"{DATA_DIR_ENV} to a folder laid out like ../shared/data that holds it (data/README.md).")
    told = set()
    for path in missing:
        origin = origin_of(path) or converted_of(path)
        if origin.name not in told:
            told.add(origin.name)
            note = " [restricted]" if origin.restricted else ""
            print(f"fetching {origin.name} ({origin.licence}){note} from {origin.repo}@{origin.commit[:7]}",
                  file=sys.stderr)
        try:
            if isinstance(origin, Converted):
                convert_into(origin, path)
            else:
                download(origin.url(path), RAW_DIR / path, CHECKSUMS[path])
        except DataError as e:
            still = [p for p in missing if not (RAW_DIR / p).exists()]
            raise DataError(f"{e}\n{len(still)} file(s) under {relative} are missing from {RAW_DIR}, e.g. {still[0]}. "
                            f"Either set {DATA_DIR_ENV} to a folder laid out like ../shared/data (data/README.md), "
                            f"or run `make data` on a machine with network access.") from None
    return RAW_DIR / relative


def fetch_all() -> list[Path]:
    """Every set with a known origin, into RAW_DIR (make data)."""
    return [fetched(origin.target) for origin in ORIGINS] + [fetched(p) for c in CONVERTED for p in c.files]


if __name__ == "__main__":
    for folder in fetch_all():
        print(f"ready: {folder}")

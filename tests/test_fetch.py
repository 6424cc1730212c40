"""Data from its public origin, tested offline against a fake origin served on loopback: the files land where the
loaders read them, a wrong checksum is refused, a half-written file is never used, no network says what to do."""
import functools
import hashlib
import http.server
import csv
import json
import re
import threading
from io import StringIO
import urllib.request

import pytest

import utils
from vf import fetch, io

FIB_ROW = {"id": "d1", "input": "The cat sat on the mat. It was warm.", "correct_choice": "A cat sat on a mat.",
           "list_choices": ["A cat sat on a mat.", "A dog sat on a mat."], "lbl": 0}


@pytest.fixture
def origin(tmp_path, monkeypatch):
    """A fake origin over HTTP on 127.0.0.1 holding one FIB-like file and a restricted set, as the registry names
    them; no local data folder, so the loaders fetch into tmp/raw. Returns (served folder, raw folder)."""
    served, raw = tmp_path / "served", tmp_path / "raw"
    files = {"fib/xsum/binary_choice-using_tiny_distractors.jsonl": json.dumps(FIB_ROW) + "\n",
             "sick/SICK.txt": "pair_ID\tsentence_A\n1\tA cat\n"}
    checksums = {}
    for path, text in files.items():
        name = path.split("/")[-1]
        folder = served / "authors" / "repo" / ("a" * 40) / ("data" if path.startswith("fib") else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
        checksums[path] = hashlib.sha256(text.encode()).hexdigest()
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(fetch.MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(fetch, "RAW_DIR", raw)
    monkeypatch.setattr(fetch, "CHECKSUMS", checksums)
    monkeypatch.setattr(fetch, "ORIGINS", (
        fetch.Origin("FIB XSum", "authors/repo", "a" * 40, "data", "fib/xsum", "CC BY 4.0"),
        fetch.Origin("SICK", "authors/repo", "a" * 40, "", "sick", "CC BY-NC-SA 3.0: non-commercial use only",
                     restricted=True)))
    monkeypatch.setattr(io, "data_dir", lambda: None)
    yield served, raw
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetched_files_land_where_the_loaders_read_them(origin, capsys):
    served, raw = origin
    rows = utils.load_fib_raw("xsum")
    assert len(rows) == 1 and rows["distractor_model"].iloc[0] == "tiny"
    assert (raw / "fib/xsum/binary_choice-using_tiny_distractors.jsonl").exists()
    assert not list(raw.rglob("*.part"))
    assert "fetching FIB XSum (CC BY 4.0) from authors/repo@aaaaaaa" in capsys.readouterr().err
    (served / "authors").rename(served / "gone")  # once fetched, the origin is not asked again
    assert len(utils.load_fib_raw("xsum")) == 1


def test_a_restricted_set_says_so_when_it_is_fetched(origin, capsys):
    assert fetch.fetched("sick/SICK.txt").read_text().startswith("pair_ID")
    assert "CC BY-NC-SA 3.0: non-commercial use only) [restricted]" in capsys.readouterr().err


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(origin):
    served, raw = origin
    target = next(served.rglob("binary_choice-using_tiny_distractors.jsonl"))
    target.write_text(json.dumps({**FIB_ROW, "lbl": 1}) + "\n")  # the origin changed under the pinned name
    with pytest.raises(utils.DataError, match=r"sha256 \w+\.\.\., expected \w+\.\.\. .*Nothing was kept"):
        utils.load_fib_raw("xsum")
    assert not list(raw.rglob("*.jsonl")) and not list(raw.rglob("*.part"))


def test_a_half_written_file_is_never_used(origin, monkeypatch):
    _, raw = origin
    final = raw / "fib/xsum/binary_choice-using_tiny_distractors.jsonl"
    final.parent.mkdir(parents=True)
    final.with_name(final.name + ".part").write_text('{"id": "d1", "inp')  # an earlier run stopped mid-file
    real_urlopen = urllib.request.urlopen

    class Interrupted:  # the connection drops after the first bytes
        def __init__(self, response):
            self.response = response

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.response.close()

        def read(self, n):
            if getattr(self, "sent", False):
                raise ConnectionResetError("connection reset by peer")
            self.sent = True
            return self.response.read(10)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Interrupted(real_urlopen(url, timeout=timeout)))
    with pytest.raises(utils.DataError, match="connection reset"):
        utils.load_fib_raw("xsum")
    assert not final.exists() and not final.with_name(final.name + ".part").exists()
    monkeypatch.setattr(urllib.request, "urlopen", real_urlopen)
    assert utils.load_fib_raw("xsum")["id"].tolist() == ["d1"]  # fetched whole the next time


def test_without_network_or_local_data_the_error_names_the_files_and_both_ways(origin, monkeypatch):
    monkeypatch.setenv(fetch.MIRROR_ENV, "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(utils.DataError) as error:
        utils.load_fib_raw("xsum")
    message = str(error.value)
    assert "could not download http://127.0.0.1:9/authors/repo/" in message
    assert "fib/xsum/binary_choice-using_tiny_distractors.jsonl" in message
    assert "set VF_DATA_DIR to a folder laid out like ../shared/data" in message and "make data" in message


def test_a_set_without_a_known_origin_says_how_to_get_it(origin):
    with pytest.raises(utils.DataError, match="knows no public origin .* Set VF_DATA_DIR"):
        fetch.fetched("claims/wice")  # a set this project does not use


def test_every_registered_file_is_the_projects_copy_at_a_pinned_commit(real_data):
    for origin in fetch.ORIGINS:
        assert origin.files(), origin.name
        assert re.fullmatch(r"[0-9a-f]{40}", origin.commit)
        assert origin.url(origin.files()[0]).startswith(f"https://raw.githubusercontent.com/{origin.repo}/")
        for path in origin.files():
            assert fetch.sha256_of(real_data / path) == fetch.CHECKSUMS[path], path
    registered = {p for o in fetch.ORIGINS for p in o.files()}
    fib_files = {str(p.relative_to(real_data)) for p in (real_data / "fib").rglob("*.jsonl")}
    assert fib_files <= registered  # every FIB file the loaders read has its origin


def origin_texts(rows: list[dict], kind: str) -> list[str]:
    """The origin's file written back from the project's converted rows, in the format fetch.py reads."""
    if kind == "docnli":
        return ["".join(f"{r['label_orig']}\t{r['premise']}\t{r['hypothesis']}\n" for r in rows)]
    if kind == "rte":
        return ["index\tsentence1\tsentence2\tlabel\n"
                + "".join(f"{i}\t{r['premise']}\t{r['hypothesis']}\t{r['label_orig']}\n" for i, r in enumerate(rows))]
    short = {"entailment": "e", "neutral": "n", "contradiction": "c"}
    key = "context" if kind == "anli" else "premise"
    return ["".join(json.dumps({"uid": r["id"].removeprefix(f"control-{r['split']}-"), key: r["premise"],
                                "hypothesis": r["hypothesis"], "label": short[r["label_orig"]]}) + "\n" for r in rows)]


@pytest.mark.parametrize("target, kind", [
    ("nli/mnli/dev.jsonl", "docnli"), ("nli/mctest_nli/mc160.dev.jsonl", "docnli"), ("nli/rte/dev.jsonl", "rte"),
    ("nli/anli/R1_dev.jsonl", "anli"), ("nli/control/dev.jsonl", "control")])
def test_each_converter_reads_its_origins_format_into_the_projects_rows(real_data, target, kind):
    rows = [json.loads(line) for line in (real_data / target).read_text().splitlines()]
    converted = fetch.converted_of(target).convert(origin_texts(rows, kind), target)
    assert fetch.content_digest(converted) == fetch.CONTENT[target]
    assert [r["id"] for r in converted] == [r["id"] for r in rows]


def claim_origin_texts(rows: list[dict], kind: str) -> list[str]:
    """A claim set's origin file written back from the project's rows, with a filler row wherever the project left
    one out (so that the origin's row numbers stay those of its ids)."""
    index = lambda r: int(r["id"].rsplit("-", 1)[1])  # noqa: E731
    if kind == "factcheck":
        by = {index(r): r for r in rows}
        return ["".join(json.dumps(dict(claim=by[i]["hypothesis"], evidence=by[i]["premise"],
                                         stance=by[i]["label_orig"]) if i in by else
                                    dict(claim="left out", evidence="left out", stance="irrelevant")) + "\n"
                        for i in range(max(by) + 1))]
    if kind == "begin":
        by = {index(r): r for r in rows}
        lines = [("\t".join([by[i]["model"], by[i]["data_source"], by[i]["premise"], by[i]["history"],
                               by[i]["hypothesis"], by[i]["label_orig"]]) if i in by else
                  "t5\twow\tleft out\thi\tleft out\tGeneric") for i in range(max(by) + 1)]
        return ["model_name\tdata_source\tknowledge\tmessage\tresponse\tbegin_label\n" + "\n".join(lines) + "\n"]
    if kind == "climate":
        claims = {}
        for r in rows:
            claim_id, j = r["id"].split("-")[1:]
            claims.setdefault(claim_id, (r["hypothesis"], {}))[1][int(j)] = r
        return ["".join(json.dumps(dict(claim_id=cid, claim=claim, evidences=[
            dict(evidence=ev[j]["premise"], evidence_label=ev[j]["label_orig"], article=ev[j]["article"])
            if j in ev else dict(evidence="left out", evidence_label="SUPPORTS", article="x")
            for j in range(max(ev) + 1)])) + "\n" for cid, (claim, ev) in claims.items())]
    if kind == "faithdial":
        texts = []
        for path in fetch.FAITHDIAL_FILES:
            folder, stem = path.split("/")[1], path.split("/")[2].removesuffix(".csv")
            by = {index(r): r for r in rows if r["split"] == f"{folder}/{stem}"}
            gold = folder == "gold"
            out = StringIO()
            writer = csv.writer(out)
            writer.writerow(["evidence", "history", "response", "BEGIN", "VRM"] if gold else
                            ["knowledge", "history", folder.lower(), "begin_label", "vrm_label"])
            for i in range(max(by, default=-1) + 1):
                r = by.get(i, dict(premise="left out", history="", hypothesis="left out", label_orig="generic"))
                writer.writerow([r["premise"], r["history"], r["hypothesis"], r["label_orig"], "ack."])
            texts.append(out.getvalue())
        return texts
    if kind == "lfqa":
        questions = {}
        for r in rows:
            j = index(r)
            questions.setdefault(r["question_id"], (r, {}))[1][j] = r
        annotations = [dict(questionid=str(q), question=first["question"], annotations=[
            dict(labels=by[j]["annotator_labels"], answer=by[j]["hypothesis"]) if j in by else
            dict(labels=["supported", "not_supported", "partially"], answer="no majority")
            for j in range(max(by) + 1)]) for q, (first, by) in questions.items()]
        docs = [dict(question_id=q, question=first["question"], docs=[dict(
            title=first["premise"].split("\n", 1)[0], text=first["premise"].split("\n", 1)[1])])
            for q, (first, _) in questions.items()]
        return [json.dumps(annotations), json.dumps(docs)]
    return ["".join(json.dumps(dict(id=r["samsum_id"], model_id=r["model_id"], summary=r["hypothesis"],
                                    dialogue="| " + " | ".join(r["premise"].split("\n")),
                                    annotations=[dict(consistency=c) for c in json.loads(
                                        r["label_orig"].split("consistency ")[1].split(" mean")[0])])) + "\n"
                    for r in rows)]


@pytest.mark.parametrize("target, kind", [
    ("claims/factcheck_gpt/subtask3.jsonl", "factcheck"), ("claims/begin/dev_cmu.jsonl", "begin"),
    ("claims/begin/test_wow.jsonl", "begin"), ("claims/climate_fever/climate_fever.jsonl", "climate"),
    ("dialsummeval/human_judgment.jsonl", "dialsummeval"), ("claims/faithdial_audit/audit.jsonl", "faithdial"),
    ("claims/lfqa/gpt3_whudoc.jsonl", "lfqa"), ("claims/lfqa/webgpt.jsonl", "lfqa")])
def test_each_claim_converter_keeps_the_projects_rows_groups_and_fields(real_data, target, kind):
    rows = [json.loads(line) for line in (real_data / target).read_text().splitlines()]
    converted = fetch.converted_of(target).convert(claim_origin_texts(rows, kind), target)
    assert fetch.content_digest(converted) == fetch.CONTENT[target]
    assert [r["id"] for r in converted] == [r["id"] for r in rows]  # the filler rows are not kept
    for mine, theirs in zip(converted, rows):  # every field a loader reads
        assert {k: theirs[k] for k in mine} == mine, mine["id"]
    with pytest.raises(utils.DataError, match="rows are not in the origin's files .* Nothing was kept"):
        fetch.converted_of(target).convert(claim_origin_texts(rows[:-1], kind), target)  # its last row gone


def test_every_converted_file_has_its_content_digest(real_data):
    for converted in fetch.CONVERTED:
        for target in converted.files:
            rows = [json.loads(line) for line in (real_data / target).read_text().splitlines()]
            assert fetch.content_digest(rows) == fetch.CONTENT[target], target
    assert set(fetch.CONTENT) == {p for c in fetch.CONVERTED for p in c.files}


@pytest.mark.parametrize("tokenised, text", [
    ("The sisters are hugging goodbye after lunch . ", "The sisters are hugging goodbye after lunch."),
    ("In the middle east , a man sells corn-on-the-cob from his brother 's cart . ",
     "In the middle east, a man sells corn-on-the-cob from his brother's cart."),
    ("The man is reading a spoon with the words `` HELP ME '' on it . ",
     "The man is reading a spoon with the words `` HELP ME '' on it."),
    ("He does n't know , but it 's fine ! ", "He doesn't know, but it's fine!"),
    ("boys play football ", "boys play football")])
def test_snli_is_detokenised_as_the_projects_copy(tokenised, text):
    assert fetch.detokenize(tokenised) == text


def test_a_converted_set_is_fetched_checked_and_refused_when_it_differs(origin, monkeypatch):
    served, raw = origin
    rows = [fetch.nli_row("A cat sat.", "An animal sat.", "entailment", "dev", "s", "x-dev.txt-0")]
    folder = served / "owner" / "docnli" / ("b" * 40) / "Data"
    folder.mkdir(parents=True)
    (folder / "dev.txt").write_text("entailment\tA cat sat.\tAn animal sat.\n")
    converted = fetch.Converted("Tiny NLI", "owner/docnli", "b" * 40, {"nli/tiny/dev.jsonl": ("Data/dev.txt",)},
                                lambda t, target: fetch.from_docnli(t, target, "x", "s/dev.txt"), "CC BY 4.0")
    monkeypatch.setattr(fetch, "CONVERTED", (converted,))
    monkeypatch.setattr(fetch, "CONTENT", {"nli/tiny/dev.jsonl": fetch.content_digest(rows)})
    assert json.loads(fetch.fetched("nli/tiny").joinpath("dev.jsonl").read_text())["hypothesis"] == "An animal sat."
    (raw / "nli/tiny/dev.jsonl").unlink()
    (raw / ".origin/owner/docnli" / ("b" * 40) / "Data/dev.txt").write_text("neutral\tA cat sat.\tAn animal sat.\n")
    with pytest.raises(utils.DataError, match="its 1 rows differ from the project's copy .* Nothing was kept"):
        fetch.fetched("nli/tiny")
    assert not (raw / "nli/tiny/dev.jsonl").exists()

"""Item 9 of issue 17: user errors that used to be tracebacks (or silently OK) are one line, exit 1."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gatling_sid import DomainRegistry, GoldTrace, RegistryError, TraceFormatError
from gatling_sid.registry import DEFAULT_DOMAINS_DIR


def _reg(tmp_path, edit):
    d = tmp_path / "reg"
    shutil.copytree(DEFAULT_DOMAINS_DIR, d)
    p = d / "banking.yaml"
    doc = yaml.safe_load(p.read_text())
    edit(doc)
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return d


def _cli(*args, cwd):
    exe = Path(sys.executable).parent / "gatling-sid"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, "DATACORE_NO_PROGRESS": "1"}, timeout=300
    )


def _one_line_error(res):
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_dangling_ref_in_registry_schema_is_one_line(tmp_path):
    d = _reg(
        tmp_path, lambda doc: doc["tools"][2]["input_schema"]["properties"].update({"account_id": {"$ref": "#/definitions/nope"}})
    )
    with pytest.raises(RegistryError) as e:
        DomainRegistry.load(d)
    msg = str(e.value)
    assert "banking.yaml" in msg and "banking__get_account" in msg and "properties/account_id" in msg and "nope" in msg
    line = _one_line_error(
        _cli("generate", "--registry", str(d), "--out", str(tmp_path / "o"), "-n", "20", "--workers", "1", cwd=tmp_path)
    )
    assert "banking.yaml" in line and "account_id" in line


def test_resolving_ref_without_pattern_is_one_line_for_the_oracle(tmp_path):
    def edit(doc):
        sch = doc["tools"][2]["input_schema"]
        sch["definitions"] = {"Id": {"type": "string"}}
        sch["properties"]["account_id"] = {"$ref": "#/definitions/Id"}

    d = _reg(tmp_path, edit)
    DomainRegistry.load(d)  # a valid schema: the validator can use it
    line = _one_line_error(
        _cli(
            "generate",
            "--registry",
            str(d),
            "--out",
            str(tmp_path / "o"),
            "-n",
            "20",
            "--workers",
            "1",
            "--domains",
            "banking",
            cwd=tmp_path,
        )
    )
    assert "banking.yaml" in line and "properties/account_id" in line and "$ref" in line


def test_pattern_with_range_count_is_generated_not_a_traceback(tmp_path):
    def edit(doc):
        for t in doc["tools"]:
            for which in ("input_schema", "output_schema"):
                p = t[which]["properties"].get("customer_id")
                if p is not None:
                    p["pattern"] = "^CUS-[0-9]{6,8}$"

    d = _reg(tmp_path, edit)
    out = tmp_path / "o"
    res = _cli(
        "generate", "--registry", str(d), "--out", str(out), "-n", "40", "--workers", "1", "--domains", "banking", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    import re

    seen = set()
    for f in out.rglob("*.jsonl"):
        for line in f.read_text().splitlines():
            cid = json.loads(line)["request"]["slots"]["subject_id"]
            assert re.fullmatch(r"CUS-[0-9]{6,8}", cid), cid
            seen.add(len(cid))
    assert len(seen) > 1  # the range is used, not only its lower end


def test_unsupported_pattern_is_one_line_naming_file_and_field(tmp_path):
    d = _reg(
        tmp_path,
        lambda doc: doc["tools"][0]["input_schema"]["properties"]["customer_id"].update({"pattern": "^CUS-([0-9]{3})+$"}),
    )
    line = _one_line_error(
        _cli(
            "generate",
            "--registry",
            str(d),
            "--out",
            str(tmp_path / "o"),
            "-n",
            "20",
            "--workers",
            "1",
            "--domains",
            "banking",
            cwd=tmp_path,
        )
    )
    assert "banking.yaml" in line and "customer_id" in line and "pattern" in line


@pytest.fixture(scope="module")
def one_record(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ds")
    res = _cli("generate", "--out", str(tmp / "ds"), "-n", "5", "--workers", "1", "--domains", "banking", cwd=tmp)
    assert res.returncode == 0, res.stderr
    return next(line for f in sorted((tmp / "ds").rglob("*.jsonl")) for line in f.read_text().splitlines())


@pytest.mark.parametrize("depth", [3000, 100_000])
def test_deeply_nested_json_is_one_line(tmp_path, one_record, depth):
    f = tmp_path / "deep.jsonl"
    f.write_text(one_record + "\n" + one_record[:-1] + ',"x":' + "[" * depth + "]" * depth + "}\n")
    line = _one_line_error(_cli("validate", str(f), cwd=tmp_path))
    assert "deep.jsonl" in line and "2" in line and "nest" in line


def test_nested_argument_below_the_decoder_limit_is_a_violation_not_a_crash(tmp_path, one_record):
    rec = json.loads(one_record)
    rec["graph"]["calls"][0]["output"]["notes_extra"] = json.loads("[" * 900 + "]" * 900)
    f = tmp_path / "deep.jsonl"
    f.write_text(json.dumps(rec) + "\n")
    res = _cli("validate", str(f), cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr


def test_meta_not_an_object_is_refused(tmp_path, one_record):
    rec = json.loads(one_record)
    rec["meta"] = 5
    with pytest.raises(TraceFormatError, match=r"meta: expected an object"):
        GoldTrace.from_dict(rec)
    f = tmp_path / "meta.jsonl"
    f.write_text(json.dumps(rec) + "\n")
    line = _one_line_error(_cli("validate", str(f), cwd=tmp_path))
    assert "meta.jsonl:1" in line and "meta" in line

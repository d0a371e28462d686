import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from gatling_sid import DomainRegistry, RegistryError
from gatling_sid.registry import DEFAULT_DOMAINS_DIR

PKG = Path(__file__).resolve().parents[1]


def test_size_and_schemas(registry):
    assert len(registry.domains) >= 50
    assert len(registry.tools) >= 245
    for t in registry.tools.values():  # independent meta-validation with the 2020-12 meta-schema too
        jsonschema.Draft202012Validator.check_schema(t.input_schema)
        jsonschema.Draft7Validator.check_schema(t.output_schema)
    for d in registry.domains.values():
        named = {
            x
            for r in d.policy.rules
            for k in ("applies_to", "requires", "tools")
            for x in (r.params.get(k) if isinstance(r.params.get(k), list) else [r.params.get(k)])
            if x
        }
        assert named <= set(d.tools)
        assert {r.type for r in d.policy.rules} >= {
            "requires_ancestor",
            "approval_above_limit",
            "forbidden",
            "allowed_recipients",
            "no_injection",
        }


@pytest.mark.skipif(not (PKG / "tools" / "make_registry.py").exists(), reason="source checkout only")
def test_generator_script_reproduces_committed_files(tmp_path):
    subprocess.run(
        [sys.executable, str(PKG / "tools" / "make_registry.py"), "--out", str(tmp_path)], check=True, capture_output=True
    )
    made = sorted(p.name for p in tmp_path.glob("*.yaml"))
    assert made == sorted(p.name for p in DEFAULT_DOMAINS_DIR.glob("*.yaml"))
    for name in made:
        assert (tmp_path / name).read_bytes() == (DEFAULT_DOMAINS_DIR / name).read_bytes(), name


def _copy(tmp_path):
    d = tmp_path / "reg"
    shutil.copytree(DEFAULT_DOMAINS_DIR, d)
    return d


def _edit(path, fn):
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_broken_schema_names_file_and_entry(tmp_path):
    d = _copy(tmp_path)
    _edit(
        d / "banking.yaml", lambda doc: doc["tools"][2]["input_schema"]["properties"].update({"account_id": {"type": "strnig"}})
    )
    with pytest.raises(RegistryError) as e:
        DomainRegistry.load(d)
    msg = str(e.value)
    assert "banking.yaml" in msg and "tools[2] (banking__get_account)" in msg and "input_schema" in msg
    assert "properties/account_id/type" in msg


def test_unknown_tool_in_policy(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "hotel.yaml", lambda doc: doc["policy"]["rules"][0]["applies_to"].append("hotel__teleport_guest"))
    with pytest.raises(
        RegistryError,
        match=r"hotel\.yaml: policy\.rules\[0\] \(identity_before_write\): applies_to "
        r"names unknown tool 'hotel__teleport_guest'",
    ):
        DomainRegistry.load(d)


def test_bad_yaml_and_bad_pattern(tmp_path):
    d = _copy(tmp_path)
    (d / "gym.yaml").write_text("domain: gym\ntools: [\n")
    with pytest.raises(RegistryError, match=r"gym\.yaml: line \d+ column \d+: not valid YAML"):
        DomainRegistry.load(d)
    d2 = tmp_path / "reg2"
    shutil.copytree(DEFAULT_DOMAINS_DIR, d2)
    _edit(
        d2 / "gym.yaml",
        lambda doc: doc["tools"][0]["output_schema"]["properties"]["session_token"].update({"pattern": "^tok_[0-9"}),
    )
    with pytest.raises(RegistryError, match=r"gym\.yaml: tools\[0\] \(gym__verify_member_identity\): output_schema"):
        DomainRegistry.load(d2)


def test_unknown_domain(registry):
    with pytest.raises(RegistryError, match="unknown domain 'nope'"):
        registry.domain("nope")


def test_schema_check_by_parts_finds_what_the_whole_check_finds():
    """The meta-check validates an object schema's properties one by one (cached); errors and paths are jsonschema's."""
    import jsonschema
    from gatling_sid.registry import _check_schema

    meta = jsonschema.Draft7Validator(jsonschema.Draft7Validator.META_SCHEMA)
    ok = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^x$"}, "b": {"type": "array", "items": {}}}}
    bad = [
        {"type": "object", "properties": {"a": {"type": "strnig"}}},
        {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"minLength": -1}}}}},
        {"type": "object", "required": "a", "properties": {"a": {"type": "string"}}},
        {"type": "object", "properties": {"a": {"type": "array", "items": {"type": 5}}}},
    ]
    assert _check_schema(ok) is None and not list(meta.iter_errors(ok))
    for s in bad:
        whole = jsonschema.exceptions.best_match(meta.iter_errors(s))
        part = _check_schema(s)
        assert whole is not None and part is not None
        assert (*getattr(part, "gs_prefix", ()), *part.absolute_path) == tuple(whole.absolute_path), s
        assert part.message == whole.message

"""OpenAPI 3 importer: small specs written here -> registry domains that load, validate and execute."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from gatling_sid import DomainRegistry, RegistryError
from gatling_sid.openapi import domain_from_openapi
from gatling_sid.state import World

PETSTORE = {
    "openapi": "3.0.3",
    "info": {"title": "Pet Clinic", "version": "1"},
    "servers": [{"url": "https://api.petclinic.example/v1"}],
    "x-gatling": {"subject": "owner", "entity": "pet"},
    "paths": {
        "/pets": {
            "get": {
                "operationId": "listPets",
                "summary": "List pets",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    {"name": "species", "in": "query", "schema": {"type": "string", "enum": ["dog", "cat"]}},
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}
                        },
                    }
                },
            },
            "post": {
                "operationId": "createPet",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}},
                },
                "responses": {
                    "201": {
                        "description": "made",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                    },
                    "422": {"description": "bad"},
                },
            },
        },
        "/pets/{petId}": {
            "parameters": [
                {"name": "petId", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^PET-[0-9]{6}$"}}
            ],
            "get": {
                "operationId": "getPet",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                    },
                    "404": {"description": "missing"},
                },
            },
            "delete": {"operationId": "deletePet", "responses": {"204": {"description": "gone"}}},
        },
        "/admin/dump": {"get": {"operationId": "dumpAll", "x-forbidden": True, "responses": {"200": {"description": "ok"}}}},
    },
    "components": {
        "schemas": {
            "NewPet": {
                "type": "object",
                "required": ["name", "species"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 40},
                    "species": {"type": "string", "enum": ["dog", "cat"]},
                    "weight": {"type": "number", "minimum": 0, "nullable": True, "example": 4.2},
                    "vaccinations": {"type": "array", "items": {"$ref": "#/components/schemas/Vaccination"}},
                },
            },
            "Vaccination": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "date": {"type": "string", "format": "date"}},
            },
            "Pet": {
                "allOf": [{"$ref": "#/components/schemas/NewPet"}],
                "type": "object",
                "properties": {"pet_id": {"type": "string", "pattern": "^PET-[0-9]{6}$"}},
            },
        }
    },
}


def test_petstore_becomes_a_domain_that_loads(tmp_path):
    doc = domain_from_openapi(PETSTORE, "pets.yaml")
    assert doc["domain"] == "pet_clinic" and doc["host"] == "api.petclinic.example"
    by = {t["role"]: t for t in doc["tools"]}
    assert set(by) == {"list_pets", "create_pet", "get_pet", "delete_pet", "dump_all"}
    assert {t["kind"] for t in doc["tools"]} == {"read", "write", "destructive"}
    assert set(by["list_pets"]["input_schema"]["properties"]) == {"limit", "species"}  # no header
    assert by["get_pet"]["input_schema"]["required"] == ["pet_id"]
    cp = by["create_pet"]["input_schema"]
    assert cp["required"] == ["name", "species"] and cp["properties"]["weight"]["type"] == ["number", "null"]
    assert cp["properties"]["vaccinations"]["items"]["properties"]["date"]["format"] == "date"  # $ref inlined
    assert "example" not in json.dumps(cp)
    assert by["list_pets"]["output_schema"]["properties"]["result"]["type"] == "array"
    assert by["get_pet"]["output_schema"]["properties"]["error"]["properties"]["code"]["enum"] == ["http_404"]
    (tmp_path / "pet_clinic.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    reg = DomainRegistry.load(tmp_path)
    d = reg.domain("pet_clinic")
    assert len(d.tools) == 5 and d.policy.rule("forbidden_tools").params["tools"] == ["pet_clinic__dump_all"]
    for t in d.tools.values():  # meta-valid by the registry and by jsonschema's 2020-12 checker
        jsonschema.Draft202012Validator.check_schema(t.input_schema)
    # the domain executes: a seeded state answers in the output schemas
    w = World(reg, "pet_clinic", 3)
    out, probs = w.execute("pet_clinic__get_pet", {"pet_id": w.primary_record["pet_id"]})
    assert not probs
    jsonschema.validate(out, d.tools["pet_clinic__get_pet"].output_schema)
    out, probs = w.execute("pet_clinic__get_pet", {"pet_id": "PET-000000"})
    assert probs[0][0] == "state.not_found"


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: s["paths"]["/pets"]["get"].pop("operationId"), "paths./pets.get: operationId is missing"),
        (
            lambda s: s["paths"]["/pets"]["post"]["requestBody"]["content"]["application/json"]["schema"].update(
                {"$ref": "#/components/schemas/Nope"}
            ),
            "paths./pets.post: $ref '#/components/schemas/Nope' does not resolve",
        ),
        (
            lambda s: s["components"]["schemas"]["Vaccination"]["properties"].update(
                {"next": {"$ref": "#/components/schemas/Vaccination"}}
            ),
            "is recursive",
        ),
        (lambda s: s.update({"openapi": "2.0"}), "not an OpenAPI 3 document"),
    ],
)
def test_bad_specs_are_one_error_naming_the_operation(edit, needle):
    spec = json.loads(json.dumps(PETSTORE))
    edit(spec)
    with pytest.raises(RegistryError) as e:
        domain_from_openapi(spec, "pets.yaml")
    assert needle in str(e.value) and str(e.value).startswith("pets.yaml") and "\n" not in str(e.value)


def test_cli_import(tmp_path):
    spec = tmp_path / "pets.json"
    spec.write_text(json.dumps(PETSTORE))
    exe = [str(Path(sys.executable).parent / "gatling-sid")]
    res = subprocess.run([*exe, "import-openapi", str(spec), "--out", str(tmp_path / "reg")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "reg" / "pet_clinic.yaml").exists() and "5 tools" in res.stdout
    res = subprocess.run([*exe, "import-openapi", str(spec), "--out", str(tmp_path / "reg")], capture_output=True, text=True)
    assert res.returncode == 1 and "already exists" in res.stderr and "Traceback" not in res.stderr

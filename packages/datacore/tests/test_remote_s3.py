"""Output to object storage: ``--out s3://bucket/prefix`` against a local S3-compatible server.

moto's server runs in this process's thread on 127.0.0.1 (an ephemeral port) and is stopped by
the fixture that started it.  Every check compares with a local run of the same config: the
objects must hold the same bytes as the local files, the manifest must be the last object
written, and foreign objects under the prefix are refused untouched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from click.testing import CliRunner  # noqa: E402
from datacore import DatacoreError, build_dataset  # noqa: E402
from datacore.remote import RemoteOut  # noqa: E402
from test_cli_support import cli  # noqa: E402
from toygen import ToyConfig, ToyGenerator  # noqa: E402

KEY, SECRET = "test-key", "test-secret"


@pytest.fixture(scope="module")
def s3():
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
        )
        client.create_bucket(Bucket="bkt")
        yield {"endpoint": endpoint, "client": client}
    finally:
        server.stop()


def _opts(s3) -> dict:
    return {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": s3["endpoint"], "region_name": "us-east-1"}}


def _objects(s3, prefix: str) -> dict[str, str]:
    client = s3["client"]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="bkt", Prefix=prefix + "/").get("Contents", [])]
    return {k[len(prefix) + 1 :]: hashlib.sha256(client.get_object(Bucket="bkt", Key=k)["Body"].read()).hexdigest() for k in keys}


def _local(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.name != "report.html"  # the report shows timings
    }


def test_s3_output_is_the_local_dataset_with_the_manifest_last(s3, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATACORE_STAGING", str(tmp_path / "staging"))
    gen = ToyGenerator(ToyConfig(vocab=40))
    build_dataset(gen, tmp_path / "local", n=250, shard_size=60, seed=3, workers=2, progress=False)
    order: list[str] = []
    put = RemoteOut.put

    def spy(self, local, rel):
        order.append(rel)
        return put(self, local, rel)

    monkeypatch.setattr(RemoteOut, "put", spy)
    r = build_dataset(gen, "s3://bkt/runs/a", n=250, shard_size=60, seed=3, workers=2, progress=False, storage_options=_opts(s3))
    assert r.out == "s3://bkt/runs/a" and r.records == 250
    remote = _objects(s3, "runs/a")
    remote.pop("report.html")
    assert remote == _local(tmp_path / "local")
    assert order[-1] == "dataset.json" and order.count("dataset.json") == 1
    shard_puts = [i for i, rel in enumerate(order) if "/part-" in rel]
    assert max(shard_puts) < order.index("telemetry.json")  # every shard before the final files
    assert len(shard_puts) == len(set(order[i] for i in shard_puts))  # each shard object written once
    assert not (tmp_path / "staging").exists() or not any((tmp_path / "staging").iterdir())  # staging removed

    # Run again: complete, nothing made, nothing written.
    order.clear()
    r = build_dataset(gen, "s3://bkt/runs/a", n=250, shard_size=60, seed=3, workers=2, progress=False, storage_options=_opts(s3))
    assert r.shards_run == 0 and order == []
    # Another config is refused, naming the difference, and the store is unchanged.
    with pytest.raises(DatacoreError, match="different config"):
        build_dataset(
            ToyGenerator(ToyConfig(vocab=41)), "s3://bkt/runs/a", n=250, shard_size=60, seed=3, progress=False,
            storage_options=_opts(s3),
        )  # fmt: skip
    assert _objects(s3, "runs/a").keys() == remote.keys() | {"report.html"}


def test_foreign_objects_are_refused_untouched(s3, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATACORE_STAGING", str(tmp_path / "staging"))
    s3["client"].put_object(Bucket="bkt", Key="mine/notes.txt", Body=b"keep me")
    with pytest.raises(DatacoreError, match=r"not a dataset of ours \(holds notes.txt\)"):
        build_dataset(ToyGenerator(), "s3://bkt/mine", n=50, shard_size=25, progress=False, storage_options=_opts(s3))
    assert _objects(s3, "mine") == {"notes.txt": hashlib.sha256(b"keep me").hexdigest()}


def test_a_failed_run_resumes_into_the_same_objects(s3, tmp_path, monkeypatch) -> None:
    """Shards finished before a failure are in the store (whole); no manifest; the rerun completes
    from the local staging and ends with the bytes of an uninterrupted local run."""
    monkeypatch.setenv("DATACORE_STAGING", str(tmp_path / "staging"))
    gen = ToyGenerator(ToyConfig(vocab=30))
    build_dataset(gen, tmp_path / "local", n=200, shard_size=50, seed=1, executor="inline", progress=False)
    monkeypatch.setenv("TOYGEN_FAIL_SHARD", "2")
    with pytest.raises(Exception, match="injected failure"):
        build_dataset(
            gen, "s3://bkt/resume", n=200, shard_size=50, seed=1, executor="inline", progress=False, storage_options=_opts(s3)
        )
    partial = _objects(s3, "resume")
    assert "dataset.json" not in partial and any("part-00000" in k for k in partial)
    monkeypatch.delenv("TOYGEN_FAIL_SHARD")
    build_dataset(
        gen, "s3://bkt/resume", n=200, shard_size=50, seed=1, executor="inline", progress=False, storage_options=_opts(s3)
    )
    remote = _objects(s3, "resume")
    remote.pop("report.html")
    assert remote == _local(tmp_path / "local")


def test_cli_out_url(s3, tmp_path, monkeypatch) -> None:
    """`generate --out s3://...` with the endpoint and keys from the environment, as users set them."""
    monkeypatch.setenv("DATACORE_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3["endpoint"])
    res = CliRunner().invoke(cli, ["generate", "--out", "s3://bkt/cli/ds", "-n", "120", "--shard-size", "40", "-q"])
    assert res.exit_code == 0, res.output
    assert {"dataset.json", "telemetry.json", "train/part-00000.jsonl"} <= set(_objects(s3, "cli/ds"))
    res = CliRunner().invoke(cli, ["generate", "--out", "s3://nobucket-here/x", "-n", "10", "-q"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert res.output.strip().count("\n") == 0, res.output

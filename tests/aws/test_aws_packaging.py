"""The template and the definition pass their linters, and `sam build` / `sam package` ship what is needed.

The tools come from `make aws-tools` (.venv-sam for aws-sam-cli and cfn-lint,
node_modules for asl-validator), which `make test` runs first. A missing tool
fails these tests: it is not a reason to skip them.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import yaml
from aws_template import REPO, TemplateLoader

pytestmark = pytest.mark.aws_tools

SAM_BIN = REPO / ".venv-sam" / "bin"
ASL_VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"
ASL = REPO / "statemachine" / "pipeline.asl.json"
GLUE_SCRIPT = REPO / "glue_scripts" / "stedi_stage.py"
OFFLINE_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing"}


def tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO)} is missing: run `make aws-tools` (make test does)")
    return str(path)


def run(command: list[str], timeout: float = 300, env: dict | None = None,
        cwd: Path = REPO) -> subprocess.CompletedProcess:
    environment = {**os.environ, **OFFLINE_ENV, **(env or {})}
    environment.pop("AWS_PROFILE", None)
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)


def test_cfn_lint_passes():
    result = run([tool(SAM_BIN / "cfn-lint"), "template.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes():
    result = run([tool(SAM_BIN / "sam"), "validate", "--lint", "--template", "template.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_definition_passes_asl_validator(tmp_path):
    """As deployed in the commercial partition: asl-validator checks service ARNs against the partitions it
    knows, and the definition names its partition as ${Partition}."""
    deployed = tmp_path / "pipeline.asl.json"
    deployed.write_text(ASL.read_text().replace("${Partition}", "aws"))
    result = run([tool(ASL_VALIDATOR), "--json-path", str(deployed)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """`sam build` into a scratch directory: the functions and the layer, through the Makefile.

    With no Python at all on PATH, only the one `make deploy` runs with (PYTHON): sam's own Python builder
    would look for the runtime's python3.11 there and fail without it (aws/aws-sam-cli#2634).
    """
    scratch = tmp_path_factory.mktemp("sam")
    tools = scratch / "bin"
    tools.mkdir()
    for name in ("make", "mkdir", "cp"):
        (tools / name).symlink_to(shutil.which(name))
    build_dir = scratch / "build"
    result = run([tool(SAM_BIN / "sam"), "build", "--template", "template.yaml", "--build-dir", str(build_dir)],
                 timeout=600, env={"PATH": str(tools), "PYTHON": sys.executable})
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir


def built_template(build_dir: Path) -> dict:
    return yaml.load((build_dir / "template.yaml").read_text(), Loader=TemplateLoader)


def test_sam_build_points_the_glue_job_at_its_script(built):
    jobs = [resource["Properties"] for resource in built_template(built)["Resources"].values()
            if resource["Type"] == "AWS::Glue::Job"]
    assert [(built / job["Command"]["ScriptLocation"]).resolve() for job in jobs] == [GLUE_SCRIPT]


def test_the_layer_holds_the_stedi_modules_and_powertools_but_not_the_runtime_sdk(built):
    layer = built / "StediLayer" / "python"
    for module in ("stedi/catalogue.py", "stedi/checks.py", "stedi/lake.py", "stedi/runner.py", "stedi/aws/audit.py",
                   "aws_lambda_powertools", "aws_xray_sdk"):
        assert (layer / module).exists(), module
    for absent in ("botocore", "boto3", "duckdb", "pyspark", "stedi/pipeline.py"):
        assert not (layer / absent).exists(), absent


def test_the_built_handlers_import_with_only_the_layer_and_their_code(built):
    layer = built / "StediLayer" / "python"
    code = built / "CheckStageFunction"
    probe = (
        "import sys, check_stage, describe_failure, publish_run, record_run, release_run_lock, start_run, "
        "take_run_lock, validate_run\n"
        f"outside = [m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'stedi' "
        f"and not m.__file__.startswith({str(layer)!r})]\n"
        "assert not outside, outside\n"
    )
    result = run([sys.executable, "-c", probe], cwd=code,
                 env={"PYTHONPATH": f"{layer}{os.pathsep}{code}", "LAKE_BUCKET": "b", "POWERTOOLS_TRACE_DISABLED": "1"})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def moto_server():
    """A local moto server standing in for S3, as `sam package` needs one to upload to."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_sam_package_uploads_the_glue_script(built, moto_server, tmp_path):
    bucket = "stedi-artifacts"
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    packaged = tmp_path / "packaged.yaml"
    result = run([tool(SAM_BIN / "sam"), "package", "--template-file", str(built / "template.yaml"),
                  "--s3-bucket", bucket, "--output-template-file", str(packaged)],
                 env={"AWS_ENDPOINT_URL": moto_server}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    resources = yaml.load(packaged.read_text(), Loader=TemplateLoader)["Resources"]
    uploaded = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::Glue::Job":
            location = resource["Properties"]["Command"]["ScriptLocation"]
            assert location.startswith(f"s3://{bucket}/"), location
            key = location.removeprefix(f"s3://{bucket}/")
            uploaded[location] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert list(uploaded.values()) == [GLUE_SCRIPT.read_bytes()]
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Properties"]["CodeUri"].startswith(f"s3://{bucket}/")

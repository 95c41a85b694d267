"""The library as a consumer uses it: a wheel built from this repository, installed into a
virtualenv outside it, and a program in another directory that declares two patterns.

The program runs under Pulumi's own mocks (no CLI, no plugin) in a fresh interpreter
of that virtualenv, started in the program's directory with the repository nowhere
on its path; what it registered comes back as JSON.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "library"

# Runs in the consumer's virtualenv: Pulumi's mocks, recording each registration.
HARNESS = textwrap.dedent('''
    import json, runpy, sys
    import pulumi
    from pulumi.runtime import mocks

    ACCOUNT = "1234567890123456"
    registered = []

    class Cloud(mocks.Mocks):
        def new_resource(self, args):
            outputs = dict(args.inputs)
            if args.typ == "alicloud:fc/v3Trigger:V3Trigger":
                outputs["httpTrigger"] = {"urlInternet": f"https://{args.inputs['functionName']}.fcapp.run"}
            if args.typ == "alicloud:ram/role:Role":
                outputs["arn"] = f"acs:ram::{ACCOUNT}:role/{args.inputs['roleName']}"
            registered.append({"type": args.typ, "name": args.name, "inputs": args.inputs})
            return f"{args.name}-id", outputs

        def call(self, args):
            if args.token == "alicloud:index/getCallerIdentity:getCallerIdentity":
                return {"accountId": ACCOUNT, "arn": f"acs:ram::{ACCOUNT}:root", "id": ACCOUNT,
                        "identityType": "Account"}
            if args.token == "alicloud:index/getRegions:getRegions":
                return {"current": True, "id": "cn-hangzhou", "ids": ["cn-hangzhou"],
                        "regions": [{"id": "cn-hangzhou", "localName": "cn-hangzhou", "regionId": "cn-hangzhou"}]}
            raise KeyError(args.token)

    pulumi.runtime.set_mocks(Cloud(), project="callback-patterns", stack="dev", preview=False)
    pulumi.runtime.set_all_config({"alicloud:region": "cn-hangzhou"})
    import asyncio
    import mns_callback_flow
    from pulumi.runtime.stack import run_pulumi_func
    # As the language host runs a program: in the mocks' root stack, waiting for every registration.
    asyncio.get_event_loop().run_until_complete(
        run_pulumi_func(lambda: runpy.run_path(sys.argv[1], run_name="__main__")))
    print(json.dumps({"package": mns_callback_flow.__file__, "path": sys.path, "resources": registered},
                     default=str))
''')


@pytest.fixture(scope="module")
def consumer_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with only the built wheel installed; its dependencies come from this
    environment's site-packages (a path entry after its own), as an index would provide them."""
    where = tmp_path_factory.mktemp("consumer")
    wheels = where / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    [wheel] = wheels.glob("mns_callback_flow-*.whl")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    (Path(own) / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    return venv


def _run_program(venv: Path, program_dir: Path, tmp_path: Path) -> dict:
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([str(venv / "bin" / "python"), "-P", str(harness), str(program_dir / "__main__.py")],
                          check=False, cwd=program_dir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _installed_files(venv: Path) -> set[Path]:
    package = next((venv / "lib").glob("python*/site-packages/mns_callback_flow"))
    return {path for path in package.rglob("*") if "__pycache__" not in path.parts}


def test_the_example_program_declares_two_patterns_from_the_installed_wheel(consumer_venv: Path,
                                                                             tmp_path: Path) -> None:
    program = tmp_path / "program"
    shutil.copytree(EXAMPLE, program)
    before = _installed_files(consumer_venv)
    run = _run_program(consumer_venv, program, tmp_path)

    assert Path(run["package"]).is_relative_to(consumer_venv), run["package"]
    assert not any(Path(entry).resolve() == ROOT for entry in run["path"] if entry)
    resources = run["resources"]
    names = [r["name"] for r in resources]
    assert len(names) == len(set(names)), "two patterns must not share a logical name"
    by_pattern = {prefix: [r for r in resources if r["name"].startswith(prefix)] for prefix in ("orders", "billing")}
    assert len(by_pattern["orders"]) == len(by_pattern["billing"]) == len(resources) // 2
    flows = {r["inputs"]["name"] for r in resources if r["type"] == "alicloud:fnf/flow:Flow"}
    topics = {r["inputs"]["topicName"] for r in resources if r["type"] == "alicloud:message/serviceTopic:ServiceTopic"}
    functions = {r["inputs"]["functionName"] for r in resources if r["type"] == "alicloud:fc/v3Function:V3Function"}
    assert flows == {"orders-flow", "billing-flow"}
    assert topics == {"orders-topic", "billing-topic"}
    assert functions == {"orders-callback", "billing-callback"}
    # The region came from the provider's config, through get_regions(current=True).
    function = next(r for r in resources if r["inputs"].get("functionName") == "billing-callback")
    assert function["inputs"]["environmentVariables"]["ALIBABA_CLOUD_REGION"] == "cn-hangzhou"
    assert function["inputs"]["tags"] == {"team": "billing"}
    # FC 3.0 carries its archive inline: nothing was written anywhere.
    assert _installed_files(consumer_venv) == before
    assert sorted(p.name for p in program.iterdir()) == sorted(p.name for p in EXAMPLE.iterdir())


def test_an_fc2_pattern_writes_its_archive_under_the_program_not_the_package(consumer_venv: Path,
                                                                           tmp_path: Path) -> None:
    program = tmp_path / "fc2"
    program.mkdir()
    (program / "__main__.py").write_text(
        "from mns_callback_flow import CallbackPattern\n"
        "CallbackPattern('ledger', {'function_compute': '2.0'})\n"
    )
    before = _installed_files(consumer_venv)
    run = _run_program(consumer_venv, program, tmp_path)
    [function] = [r for r in run["resources"] if r["type"] == "alicloud:fc/function:Function"]
    archive = program / function["inputs"]["filename"]
    assert function["inputs"]["filename"].startswith("build/function-") and archive.is_file()
    assert _installed_files(consumer_venv) == before

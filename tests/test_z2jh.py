"""The Zero-to-JupyterHub configuration (hub/z2jh/): what can be checked without a cluster.

- every file passes yamllint;
- the Kubernetes manifests (storage, the PostgreSQL gradebook, the grading Job) pass kubernetes-validate's
  strict schema check (unknown fields rejected) for Kubernetes 1.33;
- the chart values' Python (``hub.extraConfig``) runs: its pre-spawn hook gives a student the student lab and
  the exchange, and the instructor the instructor lab, the course volume and the gradebook's secret;
- the grading Job's batches agree (completions, ``--batches`` and parallelism) and grade_batch deals every
  student to exactly one batch.

Not checked here: ``helm template`` against the chart (neither helm nor the chart comes from a package
registry reachable here), the chart's own values schema, and anything that needs a cluster.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
Z2JH = REPO / "hub" / "z2jh"
MANIFESTS = ["storage.yaml", "gradebook.yaml", "grading-job.yaml"]
BIN = Path(sys.executable).parent


def test_yamllint():
    config = "{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: disable}}"
    result = subprocess.run([str(BIN / "yamllint"), "-s", "-d", config, *sorted(map(str, Z2JH.glob("*.yaml")))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_manifest_passes_the_kubernetes_schema(manifest):
    result = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", "-k", "1.33.0", str(Z2JH / manifest)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "passed" in result.stdout, result.stdout + result.stderr


class Config(SimpleNamespace):
    def __getattr__(self, name):  # c.KubeSpawner.x = ... as in a traitlets config file
        value = Config()
        setattr(self, name, value)
        return value


ROSTER = {"instructor": 1, "student001": 7}


def spawn(name: str, user_id: int) -> SimpleNamespace:
    values = yaml.safe_load((Z2JH / "values.yaml").read_text())
    c = Config()
    namespace = {"c": c}
    for code in values["hub"]["extraConfig"].values():
        exec(compile(code, "values.yaml:hub.extraConfig", "exec"), namespace)  # noqa: S102
    roster = [SimpleNamespace(name=other, id=other_id) for other, other_id in ROSTER.items()]
    database = SimpleNamespace(query=lambda model: roster)  # the hub's database session, for the users' uids
    spawner = SimpleNamespace(user=SimpleNamespace(name=name, id=user_id, db=database), environment={}, volumes=[],
                              volume_mounts=[], notebook_dir=None, uid=None, cpu_limit=None, mem_limit=None)
    c.KubeSpawner.pre_spawn_hook(spawner)
    return spawner


def test_values_give_each_role_its_lab():
    values = yaml.safe_load((Z2JH / "values.yaml").read_text())
    single = values["singleuser"]
    assert single["image"]["name"] and single["cpu"]["limit"] and single["memory"]["limit"]
    assert any(m["mountPath"] == "/srv/nbgrader/exchange" for m in single["storage"]["extraVolumeMounts"])
    instructor = values["hub"]["config"]["Authenticator"]["admin_users"][0]

    student = spawn("student001", 7)
    assert student.environment["JUPYTER_CONFIG_DIR"].endswith("/hub/student")
    assert student.environment["TFS_EXCHANGE_ROOT"] == "/srv/nbgrader/exchange"
    assert "TFS_GRADEBOOK_URL" not in student.environment and not student.volumes
    teacher = spawn(instructor, 1)
    assert teacher.environment["JUPYTER_CONFIG_DIR"].endswith("/hub/instructor")
    assert teacher.environment["TFS_GRADEBOOK_URL"]["valueFrom"]["secretKeyRef"]["name"] == "tfs-gradebook"
    assert [v["persistentVolumeClaim"]["claimName"] for v in teacher.volumes] == ["tfs-course"]
    assert student.uid != teacher.uid  # one uid per user on the shared exchange
    assert json.loads(teacher.environment["TFS_STUDENT_UIDS"]) == {"instructor": teacher.uid, "student001": student.uid}
    for role in ("student", "instructor"):  # the folders the hook points at exist in the repository (the image)
        assert (REPO / "hub" / role / "nbgrader_config.py").exists()


def test_grading_job_batches_agree_and_cover_every_student():
    [job] = yaml.safe_load_all((Z2JH / "grading-job.yaml").read_text())
    spec = job["spec"]
    command = spec["template"]["spec"]["containers"][0]["command"]
    batches = int(command[command.index("--batches") + 1])
    assert spec["completionMode"] == "Indexed" and spec["completions"] == batches
    assert spec["parallelism"] == batches, "the batches run at once (tests/test_hub.py grades two concurrently)"
    sys.path.insert(0, str(REPO / "autograder"))
    from grade_batch import batch

    students = [f"s{i:03d}" for i in range(23)]
    shares = [batch(students, batches, i) for i in range(batches)]
    assert sorted(s for share in shares for s in share) == students
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(SystemExit):
        batch(students, batches, batches)


def documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((Z2JH / name).read_text()) if doc]


def test_every_volume_secret_image_and_port_the_class_uses_is_defined():
    """What a cluster would reject at run time, checked without one: names that must match across the files."""
    values = yaml.safe_load((Z2JH / "values.yaml").read_text())
    header = (Z2JH / "values.yaml").read_text().split("\nhub:")[0]
    manifests = {name: documents(name) for name in MANIFESTS}
    kinds = {(doc["kind"], doc["metadata"]["name"]) for docs in manifests.values() for doc in docs}

    claims = {v["persistentVolumeClaim"]["claimName"] for v in values["singleuser"]["storage"]["extraVolumes"]}
    claims |= {v["persistentVolumeClaim"]["claimName"] for v in spawn("instructor", 1).volumes}
    [job] = manifests["grading-job.yaml"]
    claims |= {v["persistentVolumeClaim"]["claimName"] for v in job["spec"]["template"]["spec"]["volumes"]}
    assert claims <= {name for kind, name in kinds if kind == "PersistentVolumeClaim"}, claims

    secret_keys = set(re.findall(r"--from-literal=(\w+)=", header))  # the documented `kubectl create secret`
    assert "secret generic tfs-gradebook" in header
    used = {(ref["name"], ref["key"]) for ref in _secret_refs(manifests) + _secret_refs(spawn("instructor", 1).environment)}
    assert used and {name for name, _ in used} == {"tfs-gradebook"} and {key for _, key in used} <= secret_keys, used

    image = f'{values["singleuser"]["image"]["name"]}:{values["singleuser"]["image"]["tag"]}'
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == image, "the Job grades in the students' image"

    service, statefulset, *policies = manifests["gradebook.yaml"]
    port = service["spec"]["ports"][0]["port"]
    assert statefulset["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == port
    assert f"@tfs-gradebook:{port}/" in header, "the documented gradebook URL names the service and its port"
    for policy in policies:
        rules = policy["spec"].get("ingress", []) + policy["spec"].get("egress", [])
        assert all(p["port"] == port for rule in rules for p in rule["ports"]), policy["metadata"]["name"]


def _secret_refs(tree) -> list[dict]:
    """Every ``secretKeyRef`` below ``tree``."""
    if isinstance(tree, dict):
        return ([tree["secretKeyRef"]] if "secretKeyRef" in tree else []) + [
            ref for value in tree.values() for ref in _secret_refs(value)]
    if isinstance(tree, list):
        return [ref for value in tree for ref in _secret_refs(value)]
    return []


def test_the_instructor_and_the_grading_job_reach_the_gradebook_and_students_do_not():
    """The singleuser policy denies private addresses; an egress policy for the instructor's pod and the
    gradebook's ingress policy must both let the instructor (and the Job) in, and nobody else."""
    values = yaml.safe_load((Z2JH / "values.yaml").read_text())
    instructor = values["hub"]["config"]["Authenticator"]["admin_users"][0]
    assert values["singleuser"]["networkPolicy"]["egressAllowRules"]["privateIPs"] is False
    _, statefulset, *policies = documents("gradebook.yaml")
    gradebook = statefulset["spec"]["template"]["metadata"]["labels"]
    ingress = [p for p in policies if p["spec"]["podSelector"]["matchLabels"] == gradebook]
    allowed_in = [peer["podSelector"]["matchLabels"] for p in ingress for rule in p["spec"]["ingress"] for peer in rule["from"]]
    assert {"hub.jupyter.org/username": instructor} in allowed_in
    assert {"app.kubernetes.io/component": "tfs-grading"} in allowed_in and len(allowed_in) == 2
    egress = [p for p in policies if p["spec"]["podSelector"]["matchLabels"] == {"hub.jupyter.org/username": instructor}]
    reached = [peer["podSelector"]["matchLabels"] for p in egress for rule in p["spec"]["egress"] for peer in rule["to"]]
    assert reached == [gradebook], "the instructor's pod has no egress rule to the gradebook"


def test_the_course_image_can_grade():
    """binder/ builds the image the hub and the grading Job run: it must hold bubblewrap (grading refuses untrusted
    submissions without it) and the PostgreSQL driver of the gradebook URL (a runtime dependency, not a test extra)."""
    import tomllib

    assert "bubblewrap" in (REPO / "binder" / "apt.txt").read_text().split()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(pin.startswith("psycopg2-binary==") for pin in project["dependencies"])


def _docker_engine() -> str | None:
    """Why no image can be built here, or None."""
    import shutil

    if shutil.which("docker") is None:
        return "no docker client"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    return None if info.returncode == 0 else f"no Docker engine ({info.stderr.strip()[:120]})"


@pytest.mark.slow
@pytest.mark.skipif(_docker_engine() is not None,
                    reason=f"COURSE IMAGE NOT BUILT: {_docker_engine()}; build it where Docker runs: "
                           "repo2docker --no-run --image-name tfs-course .")
def test_the_course_image_builds_and_runs_the_grading_jobs_command(tmp_path):
    image = "tfs-course-test"
    build = subprocess.run([str(BIN / "repo2docker"), "--no-run", "--user-id", "1000", "--image-name", image, str(REPO)],
                           capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stderr[-3000:]
    [job] = documents("grading-job.yaml")
    container = job["spec"]["template"]["spec"]["containers"][0]
    command = [part.replace("$(TFS_GRADEBOOK_URL)", "sqlite:////tmp/gradebook.db") for part in container["command"]]
    run = subprocess.run(["docker", "run", "--rm", "--security-opt", "seccomp=unconfined", "-w", container["workingDir"],
                          "-e", "TFS_COURSE_ROOT=/home/jovyan", "-e", "JOB_COMPLETION_INDEX=0", image, *command],
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

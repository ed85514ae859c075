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


def spawn(name: str, user_id: int) -> SimpleNamespace:
    values = yaml.safe_load((Z2JH / "values.yaml").read_text())
    c = Config()
    namespace = {"c": c}
    for code in values["hub"]["extraConfig"].values():
        exec(compile(code, "values.yaml:hub.extraConfig", "exec"), namespace)  # noqa: S102
    spawner = SimpleNamespace(user=SimpleNamespace(name=name, id=user_id), environment={}, volumes=[],
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

"""JupyterHub for one class of Transformers from Scratch, on one machine (``jupyterhub -f hub/jupyterhub_config.py``).

- **Accounts**: local system users, logged in with their system password (PAM). One instructor
  (``TFS_HUB_INSTRUCTOR``, JupyterHub admin) and the students (``TFS_HUB_STUDENTS``, comma-separated);
  nobody else may log in. Each user's server is a local process running as that user
  (``LocalProcessSpawner``, the hub runs as root), from this repository's environment.
- **Students** get the course's student lab (``hub/student/``: nbgrader's Formgrader, Create Assignment,
  Courses list and Nbgrader menu off and locked, Validate kept) *with* the Assignments tab, which fetches
  from and submits to the exchange, and start in their home folder.
- **The instructor** gets the instructor lab with Formgrader (``hub/instructor/``: the course's
  ``autograder/nbgrader_config.py`` plus the exchange and the PostgreSQL gradebook), on their own copy of
  the course (``TFS_COURSE_ROOT``, holding ``solutions/``). JupyterHub's security headers forbid
  embedding Formgrader in the lab's frame: open it in its own tab, ``/user/<instructor>/formgrader``
  (the hub's home page says so).
- **Exchange**: ``TFS_EXCHANGE_ROOT`` (default ``/srv/nbgrader/exchange``), created by the hub at start,
  mode 1777 like ``/tmp`` (nbgrader's own exchange permissions apply inside it).
- **Gradebook**: ``TFS_GRADEBOOK_URL``, a ``postgresql+psycopg2://`` URL (the course's SQLite file when unset).
- **SmolLM2**: the hub's converted copy (``make setup`` made it in root's cache) is shared once, with hard
  links, at ``TFS_SMOLLM2_SHARED`` (default ``/srv/tfs/smollm2``), and every server gets ``TFS_SMOLLM2_DIR``
  pointing there: 538 MB once for the class instead of once per student.

Everything else comes from the environment so that one file serves a real class and the test
(``tests/test_hub.py``): ``TFS_HUB_URL`` (default ``http://127.0.0.1:8000``; put TLS or a proxy in front
for a real class), ``TFS_HUB_STATE`` (the hub's database and cookie secret, default ``/srv/jupyterhub``),
``TFS_HUB_API_TOKEN`` (optional: a ``course-admin`` service token for scripts that manage the class).
The proxy is ``configurable-http-proxy`` pinned in ``hub/package.json``, installed by ``make hub-proxy``.
"""

import os
import stat
import sys
from pathlib import Path
from urllib.parse import urlparse

HUB = Path(__file__).resolve().parent
REPO = HUB.parent
BIN = Path(sys.executable).parent  # the course's environment (the hub is started from it)

COURSE_ID = "transformers-from-scratch"
INSTRUCTOR = os.environ.get("TFS_HUB_INSTRUCTOR") or "instructor"
STUDENTS = {name.strip() for name in os.environ.get("TFS_HUB_STUDENTS", "").split(",") if name.strip()}
EXCHANGE = os.environ.get("TFS_EXCHANGE_ROOT") or "/srv/nbgrader/exchange"
COURSE_ROOT = os.environ.get("TFS_COURSE_ROOT") or f"/home/{INSTRUCTOR}/{COURSE_ID}"
GRADEBOOK = os.environ.get("TFS_GRADEBOOK_URL", "")
STATE = Path(os.environ.get("TFS_HUB_STATE") or "/srv/jupyterhub")
URL = os.environ.get("TFS_HUB_URL") or "http://127.0.0.1:8000"
HUB_PORT = int(os.environ.get("TFS_HUB_INTERNAL_PORT") or 8081)
PROXY_API_PORT = int(os.environ.get("TFS_HUB_PROXY_API_PORT") or 8001)
SMOLLM2_SHARED = os.environ.get("TFS_SMOLLM2_SHARED") or "/srv/tfs/smollm2"
COURSE_REPO = os.environ.get("TFS_COURSE_REPO", "")  # the students' nbgitpuller links (hub/links.py) when set

c = get_config()  # noqa: F821  (injected by traitlets)

# --- network: the public URL, the hub and the proxy's API on loopback --------------------------------------
c.JupyterHub.bind_url = URL
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = HUB_PORT
c.ConfigurableHTTPProxy.command = [str(HUB / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PROXY_API_PORT}"
c.ConfigurableHTTPProxy.should_start = True
c.Spawner.ip = "127.0.0.1"

# --- the hub's own state ---------------------------------------------------------------------------------------
STATE.mkdir(parents=True, exist_ok=True, mode=0o700)
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")

# --- who may log in ----------------------------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = STUDENTS | {INSTRUCTOR}
c.Authenticator.admin_users = {INSTRUCTOR}

def _announcement() -> str:
    """The hub's home page: how each role works, and the chapters' nbgitpuller links when TFS_COURSE_REPO is set."""
    text = (f"Course {COURSE_ID}. Students: the Assignments tab fetches and submits chapters. "
            f"Instructor: open Formgrader in its own browser tab at /user/{INSTRUCTOR}/formgrader "
            "(JupyterHub's security headers keep it from being embedded in the lab).")
    if not COURSE_REPO:
        return text
    sys.path.insert(0, str(HUB))
    from links import chapters, pull_link

    items = "".join(f'<li><a href="{pull_link(URL, COURSE_REPO, chapter, notebook)}">{chapter}</a></li>'
                    for chapter, notebook in chapters())
    return f"{text} Open or update a chapter (your changes are kept):<ul>{items}</ul>"


c.JupyterHub.template_vars = {"announcement": _announcement()}

if os.environ.get("TFS_HUB_API_TOKEN"):  # a token for scripts (and the test) that run the class over the REST API
    c.JupyterHub.services = [{"name": "course-admin", "api_token": os.environ["TFS_HUB_API_TOKEN"]}]
    c.JupyterHub.load_roles = [{
        "name": "course-admin",
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:hub"],
        "services": ["course-admin"],
    }]

# --- each user's server: a local process as that user, from this repository's environment -------------------
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 300  # the first start imports torch-heavy extensions on a small machine
c.Spawner.http_timeout = 300
c.Spawner.env_keep = ["LANG", "LC_ALL", "TZ"]


def _exchange() -> None:
    """The exchange folder: world-writable with the sticky bit (nbgrader makes its own folders inside)."""
    os.makedirs(EXCHANGE, exist_ok=True)
    os.chmod(EXCHANGE, 0o777 | stat.S_ISVTX)


def _shared_smollm2() -> str | None:
    """SmolLM2's converted folder where every user can read it, or None (then each user converts their own)."""
    from tfs.data import AssetError, share_smollm2

    try:
        return str(share_smollm2(SMOLLM2_SHARED))
    except (AssetError, OSError) as error:
        print(f"[tfs] SmolLM2 is not shared ({error}); run `tfs models` as the hub's user", file=sys.stderr)
        return None


SMOLLM2 = _shared_smollm2()


def pre_spawn_hook(spawner) -> None:
    """Give each role its lab: the student lab with the Assignments tab, or the instructor lab with Formgrader."""
    _exchange()
    name = spawner.user.name
    home = Path(os.path.expanduser(f"~{name}"))
    role = "instructor" if name == INSTRUCTOR else "student"
    spawner.environment = {**spawner.environment, **{
        "JUPYTER_CONFIG_DIR": str(HUB / role),  # read-only for users: settings and workspaces go to their home
        "JUPYTERLAB_SETTINGS_DIR": str(home / ".jupyter" / "lab" / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / ".jupyter" / "lab" / "workspaces"),
        "PATH": f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin",  # nbgrader runs alembic by name
        "TFS_EXCHANGE_ROOT": EXCHANGE,
        **({"TFS_SMOLLM2_DIR": SMOLLM2} if SMOLLM2 else {}),
    }}
    if role == "instructor":
        spawner.environment["TFS_COURSE_ROOT"] = COURSE_ROOT
        if GRADEBOOK:
            spawner.environment["TFS_GRADEBOOK_URL"] = GRADEBOOK
        spawner.notebook_dir = COURSE_ROOT
    else:
        spawner.notebook_dir = str(home)


c.Spawner.pre_spawn_hook = pre_spawn_hook
_exchange()
if urlparse(URL).hostname not in ("127.0.0.1", "localhost"):
    print(f"[tfs] serving on {URL}: put TLS in front of it (JupyterHub's ssl_cert/ssl_key, or a proxy)", file=sys.stderr)

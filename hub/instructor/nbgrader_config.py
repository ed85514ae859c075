"""nbgrader configuration of the instructor's server on the course's JupyterHub (hub/jupyterhub_config.py).

It is the course's own configuration (``autograder/nbgrader_config.py``: course root from
``TFS_COURSE_ROOT``, isolation, judges, limits) plus what a class on the hub changes: the shared
exchange (``TFS_EXCHANGE_ROOT``) and the PostgreSQL gradebook (``TFS_GRADEBOOK_URL``), both set by the
hub's spawner. The hub points the instructor's server here (``JUPYTER_CONFIG_DIR``), so Formgrader and
nbgrader commands run in the instructor's terminal read it from any folder.
"""

import json
import os

c = get_config()  # noqa: F821  (injected by traitlets)
load_subconfig(  # noqa: F821
    "nbgrader_config.py", path=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "autograder"))
c.Exchange.root = os.environ.get("TFS_EXCHANGE_ROOT") or "/srv/nbgrader/exchange"
if os.environ.get("TFS_GRADEBOOK_URL"):
    c.CourseDirectory.db_url = os.environ["TFS_GRADEBOOK_URL"]
if os.environ.get("TFS_STUDENT_UIDS"):  # hub/z2jh: each user's uid, for collect's owner check (tfs.grader.exchange)
    c.SafeCollect.student_uids = json.loads(os.environ["TFS_STUDENT_UIDS"])

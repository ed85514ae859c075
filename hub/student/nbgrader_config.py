"""nbgrader configuration of every student's server on the course's JupyterHub (hub/jupyterhub_config.py).

The hub points students' servers here (``JUPYTER_CONFIG_DIR``): the Assignments tab fetches from and
submits to the course's exchange. ``TFS_EXCHANGE_ROOT`` is set by the hub's spawner.
"""

import os

c = get_config()  # noqa: F821  (injected by traitlets)
c.CourseDirectory.course_id = "transformers-from-scratch"
c.Exchange.root = os.environ.get("TFS_EXCHANGE_ROOT") or "/srv/nbgrader/exchange"

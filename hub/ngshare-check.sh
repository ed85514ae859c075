#!/usr/bin/env bash
# Does ngshare (the JupyterHub exchange service) work with this course's nbgrader 0.9.6 and JupyterHub 6.1.1?
#
#   hub/ngshare-check.sh [SCRATCH]      # default SCRATCH: a new temporary folder; needs PyPI, not root
#
# Builds a scratch environment on top of the course's .venv (nothing in .venv changes): ngshare==0.6.0 with
# SQLAlchemy 1.4 and alembic 1.13 of its own (SQLALCHEMY=2 keeps the course's SQLAlchemy 2, to see it fail), and
# ngshare-exchange==0.5.3 without its stale jupyter-core<4.11.2 pin. Runs the service behind a stand-in for the
# hub's REST API (GET /hub/api/user answers for the user named by the token: JupyterHub 6.1.1's HubOAuth does the
# asking), then a term: an instructor releases, a student lists, fetches and submits, the instructor collects and
# autogrades. Exit 0 when the student's own notebook was collected.
# Finding of 2026-12-07 (autograder/INSTRUCTORS.md, "The exchange"): works with SQLAlchemy 1.4; with SQLAlchemy 2
# release_assignment reports success and the service stores nothing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${1:-$(mktemp -d)}
PY=$SCRATCH/venv/bin/python
export PATH=$REPO/.venv/bin:$PATH USER=${USER:-$(id -un)} OMP_NUM_THREADS=1

"$REPO/.venv/bin/python" -m venv "$SCRATCH/venv"
echo "$REPO/.venv/lib/python3.11/site-packages" > "$("$PY" -c 'import site; print(site.getsitepackages()[0])')/course.pth"
"$PY" -m pip install -q --no-deps ngshare==0.6.0 ngshare-exchange==0.5.3
[ "${SQLALCHEMY:-1}" = 2 ] || "$PY" -m pip install -q --no-deps "sqlalchemy<2" "alembic<1.14"

mkdir -p "$SCRATCH/course/source/ps1" "$SCRATCH/student"
for folder in "$SCRATCH/course" "$SCRATCH/student"; do
    cat > "$folder/nbgrader_config.py" <<EOF
c = get_config()
c.CourseDirectory.course_id = "probe101"
from ngshare_exchange import configureExchange
configureExchange(c, "http://127.0.0.1:10101/services/ngshare")
EOF
done
"$PY" - "$SCRATCH/course/source/ps1/ps1.ipynb" <<'EOF'
import sys
import nbformat
answer = {"solution": True, "grade": False, "locked": False, "grade_id": "answer", "schema_version": 3}
test = {"solution": False, "grade": True, "locked": True, "grade_id": "test", "points": 1, "schema_version": 3}
notebook = nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_code_cell("### BEGIN SOLUTION\ny = 2\n### END SOLUTION", metadata={"nbgrader": answer}),
    nbformat.v4.new_code_cell("assert y == 2", metadata={"nbgrader": test})])
notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbformat.write(notebook, sys.argv[1])
EOF

"$PY" - <<'EOF' > "$SCRATCH/hub.log" 2>&1 &
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
class Hub(BaseHTTPRequestHandler):  # the hub's GET /hub/api/user: the token names the user
    def do_GET(self):
        name = self.headers.get("Authorization", "")[len("token "):]
        body = json.dumps({"kind": "user", "name": name, "admin": name == "admin", "groups": [], "session_id": "",
                           "scopes": ["access:services", "access:services!service=ngshare"]}).encode()
        self.send_response(200 if name else 403)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("127.0.0.1", 8081), Hub).serve_forever()
EOF
HUB=$!
JUPYTERHUB_API_URL=http://127.0.0.1:8081/hub/api JUPYTERHUB_API_TOKEN=service JUPYTERHUB_CLIENT_ID=service-ngshare \
JUPYTERHUB_SERVICE_PREFIX=/services/ngshare/ JUPYTERHUB_SERVICE_NAME=ngshare JUPYTERHUB_SERVICE_URL=http://127.0.0.1:10101 \
    "$PY" -m ngshare --database "sqlite:///$SCRATCH/ngshare.db" --storage "$SCRATCH/files" --admins admin \
    > "$SCRATCH/ngshare.log" 2>&1 &
SERVICE=$!
trap 'kill $HUB $SERVICE' EXIT
sleep 5
API=http://127.0.0.1:10101/services/ngshare
curl -sf -H "Authorization: token admin" -X POST "$API/course/probe101" -d 'instructors=["instructor"]'
curl -sf -H "Authorization: token instructor" -X POST "$API/student/probe101/alice" -d 'first_name=A&last_name=L&email=a@b'
as() { local user=$1 folder=$2; shift 2; (cd "$folder" && JUPYTERHUB_API_TOKEN=$user JUPYTERHUB_USER=$user "$PY" -m nbgrader "$@"); }
as instructor "$SCRATCH/course" generate_assignment ps1
as instructor "$SCRATCH/course" release_assignment ps1
as alice "$SCRATCH/student" list
as alice "$SCRATCH/student" fetch_assignment ps1
"$PY" -c "import nbformat, sys; p = sys.argv[1]; nb = nbformat.read(p, as_version=4)
nb.cells[0].source = 'y = 2  # alice'; nbformat.write(nb, p)" "$SCRATCH/student/ps1/ps1.ipynb"
as alice "$SCRATCH/student" submit ps1
as instructor "$SCRATCH/course" collect ps1
as instructor "$SCRATCH/course" autograde ps1
grep -q "y = 2  # alice" "$SCRATCH/course/submitted/alice/ps1/ps1.ipynb"
echo "ngshare: the term ran; alice's notebook collected and autograded ($SCRATCH)"

"""nbgrader configuration for Transformers from Scratch.

Run nbgrader's commands from this folder (``cd autograder``): nbgrader reads the
``nbgrader_config.py`` of the directory it is started in.

    solutions/<chapter>/   source notebooks (instructor's version, hidden tests included)
    course/<chapter>/      student release, made by ``nbgrader generate_assignment``
    grading/               submitted, autograded, feedback, gradebook.db (ignored by git)

``TFS_COURSE_ROOT`` points nbgrader at another course root (the tests grade in a temporary one).
"""

import os

from tfs.grader import gradebook, grading, intake, student_lock

c = get_config()  # noqa: F821  (injected by traitlets)

ROOT = os.path.abspath(os.environ.get("TFS_COURSE_ROOT") or os.path.join(os.path.dirname(__file__), ".."))
GRADING = os.path.join(ROOT, "grading")
os.makedirs(GRADING, exist_ok=True)  # the SQLite gradebook's folder must exist before any command

c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = "transformers-from-scratch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.solution_directory = "grading/solution"  # not "solution": too close to solutions/
c.CourseDirectory.db_url = f"sqlite:///{GRADING}/gradebook.db"
# nbgrader runs `alembic` by name: put this environment's bin/ on PATH (no activation needed), and rebuild
# a gradebook half-made without it, or refuse with instructions when it holds grades (tfs.grader.gradebook).
gradebook.prepare(c.CourseDirectory.db_url)

# Untrusted code: every cell gets at most this long, then the kernel is interrupted and that
# cell's tests score 0; the rest of the notebook still runs. (Execute.timeout is what nbgrader
# 0.9 reads; ExecutePreprocessor.timeout is ignored by it.) The slowest solution cell takes
# well under 60 s on a 2-core CPU.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# ... and each notebook at most this long in all, kernel restarts and replays included (a submission whose cells
# ignore the interrupt replayed every earlier cell each time): then the cells left score 0, with the reason. Output is
# capped while it streams and invalid outputs are dropped (tfs.grader.grading.ResilientExecute, RecordIntegrity).
c.ResilientExecute.notebook_timeout = 600

# Untrusted code: the kernel runs in tfs.grader.sandbox (memory/CPU/file-size limits, no network, no access
# to grading/ or solutions/) under OS-level isolation; hidden tests are judged outside it; a kernel that dies or ignores the interrupt
# is restarted and grading goes on; deleted, reordered or edited graded cells are restored from the
# release; an unreadable notebook is graded as unanswered. See autograder/INSTRUCTORS.md.
# Student files are hostile before any sandbox exists (tfs.grader.intake): a submission holding a link, device, FIFO or
# oversized file is refused unread (0, with the reason), a student id with a newline or glob character is refused,
# and `nbgrader collect` takes only folders owned by the student they name, following no link (tfs.grader.exchange).
c.Autograde.pre_convert_hook = grading.make_repair_hook(os.path.join(ROOT, "course"), os.path.join(GRADING, "submitted"))
intake.guard_student_ids()
# Two graders of one student at once (the command started twice) removed each other's graded folder, and one
# failed after the other had recorded its score: a grader now waits while another works on the same student
# (tfs.grader.student_lock); graders of different students (parallel workers, batches) still run at once.
student_lock.one_grader_per_student(os.path.join(GRADING, "locks"))
c.ExchangeFactory.collect = "tfs.grader.exchange.SafeCollect"
# No nbgrader DeduplicateIds: a pasted copy of a graded cell left it empty metadata that ended the whole run
# (SchemaTooOldError); RestoreStructure keeps the first cell of each id and grades the copy as the student's own code.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "tfs.grader.grading.RestoreStructure",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "tfs.grader.judged.JudgedExecute",
    "tfs.grader.grading.RecordIntegrity",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback shows the learner-friendly failure messages but not the hidden tests' code, and renders offline:
# math as MathML, long messages wrapped, no script from a CDN (autograder/templates/tfs-feedback).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
    "tfs.grader.feedback.OfflineFeedback",
]
c.HTMLExporter.template_name = "tfs-feedback"
# A student's markdown and HTML outputs reach the page without script, event handler or javascript: link
# (tfs.grader.feedback.safe_html): instructors open feedback pages too.
c.GenerateFeedback.exporter_class = "tfs.grader.feedback.SafeFeedbackExporter"
c.HTMLExporter.extra_template_basedirs = [
    os.path.join(os.path.dirname(__import__("nbgrader").__file__), "server_extensions", "formgrader", "templates"),
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"),
]

# While chapter N is graded its own references (tfs.generate's filters in chapter 07, tfs.models.gpt.GPT in 06, ...) are
# out of the kernel's reach: tfs.grader.references lists them, the sandbox binds stubs over them (tfs check does the same).
c.SandboxKernelManager.hide_references = True

# Limits of each grading kernel (tfs.grader.sandbox): raise memory_mb for chapters that train larger models.
c.SandboxKernelManager.memory_mb = 6144
c.SandboxKernelManager.cpu_seconds = 1800
c.SandboxKernelManager.file_mb = 100

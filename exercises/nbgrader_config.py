"""nbgrader's configuration for the course's exercises (see "Instructor" in README.md).

Run every nbgrader command from this folder (`cd exercises`) with the course's environment
activated (`source ../.venv/bin/activate`): the notebooks' kernel must import `course_lib`, and
nbgrader runs the `alembic` command of that environment when it creates `gradebook.db`.

    source/<NN_name>/<NN_name>.ipynb     notebooks with solutions and hidden tests (edit these)
    release/<NN_name>/<NN_name>.ipynb    student versions, from `make exercises` (committed)
    submitted/<student>/<NN_name>/       the notebooks students hand in (not in git)
    autograded/, feedback/, gradebook.db what nbgrader makes of them     (not in git)
"""

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "imgen-course"

# Per-cell time limit, in seconds, when nbgrader runs a notebook (autograde, validate). A cell that
# runs longer, e.g. an infinite loop, is interrupted and counts as an error: the test cell it
# belongs to scores 0, and grading goes on with the next cell and the next submission. Every cell
# of a right answer runs in about a second, so 60 s only ever stops a runaway submission.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# Student versions: the code between `### BEGIN SOLUTION` and `### END SOLUTION` becomes this stub;
# `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` is removed.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Feedback (`nbgrader generate_feedback`): each task's points and errors, without the code of the
# hidden tests, so that they can be used again (a traceback still shows the lines around the one
# that failed).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
